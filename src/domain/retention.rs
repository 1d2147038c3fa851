//! Storage limitation (GDPR Art. 5(1)(e)): how long personal data of a closed case is kept.
//! Statistical facts are kept; identifying details go first, pseudonym and free text later.

use chrono::{DateTime, Duration, Utc};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetentionPolicy {
    /// Identifying details are erased this long after closure.
    pub identifying_after: Duration,
    /// Pseudonym and free text this long after closure.
    pub free_text_after: Duration,
}

/// What is due for erasure now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Due {
    pub identifying: bool,
    pub free_text: bool,
}

/// Decides for one case. Open cases (no `closed_at`) keep everything.
pub fn due(
    policy: &RetentionPolicy,
    closed_at: Option<DateTime<Utc>>,
    identifying_erased: bool,
    free_text_erased: bool,
    now: DateTime<Utc>,
) -> Due {
    let Some(closed) = closed_at else { return Due::default() };
    Due {
        identifying: !identifying_erased && now - closed >= policy.identifying_after,
        free_text: !free_text_erased && now - closed >= policy.free_text_after,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    #[test]
    fn identifying_details_go_first_then_free_text() {
        let policy = RetentionPolicy {
            identifying_after: Duration::days(180),
            free_text_after: Duration::days(730),
        };
        let closed = Utc.with_ymd_and_hms(2024, 1, 1, 0, 0, 0).unwrap();
        let at = |days| closed + Duration::days(days);
        assert_eq!(
            due(&policy, None, false, false, at(10_000)),
            Due::default(),
            "open cases keep everything"
        );
        assert_eq!(due(&policy, Some(closed), false, false, at(179)), Due::default());
        assert_eq!(
            due(&policy, Some(closed), false, false, at(180)),
            Due {
                identifying: true,
                free_text: false
            }
        );
        assert_eq!(due(&policy, Some(closed), true, false, at(729)), Due::default());
        assert_eq!(
            due(&policy, Some(closed), true, false, at(730)),
            Due {
                identifying: false,
                free_text: true
            }
        );
        assert_eq!(
            due(&policy, Some(closed), true, true, at(5000)),
            Due::default(),
            "nothing twice"
        );
    }
}
