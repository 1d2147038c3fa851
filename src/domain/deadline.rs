//! Deadlines of handover steps: when each step of a referral is due, and which are overdue.
//!
//! Pure: timestamps and `now` come in; overdue steps go out.

use chrono::{DateTime, Duration, Utc};
use serde::Serialize;

use crate::domain::referral::{ReferralState, Urgency};

crate::domain::text::text_enum! {
    /// A step the receiving organisation owes.
    pub enum Step {
        /// submitted → acknowledged
        Acknowledge = "acknowledge",
        /// submitted → accepted or declined
        Decide = "decide",
        /// accepted → in care
        StartCare = "start_care",
    }
}

/// Time allowed per step for one urgency.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub acknowledge: Duration,
    pub decide: Duration,
    pub start_care: Duration,
}

impl Limits {
    pub fn of(&self, step: Step) -> Duration {
        match step {
            Step::Acknowledge => self.acknowledge,
            Step::Decide => self.decide,
            Step::StartCare => self.start_care,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeadlineLimits {
    pub routine: Limits,
    pub urgent: Limits,
    pub acute: Limits,
}

impl DeadlineLimits {
    pub fn for_urgency(&self, urgency: Urgency) -> &Limits {
        match urgency {
            Urgency::Routine => &self.routine,
            Urgency::Urgent => &self.urgent,
            Urgency::Acute => &self.acute,
        }
    }

    /// The shortest limit of any urgency for `step`: anything younger cannot be overdue.
    pub fn shortest(&self, step: Step) -> Duration {
        [self.routine, self.urgent, self.acute]
            .iter()
            .map(|l| l.of(step))
            .min()
            .unwrap_or_else(Duration::zero)
    }

    /// For each urgency, the moment before which a clock started for `step` is overdue at
    /// `now`: what the deadline watcher asks the database for.
    pub fn cutoffs(&self, step: Step, now: DateTime<Utc>) -> [(Urgency, DateTime<Utc>); 3] {
        [Urgency::Routine, Urgency::Urgent, Urgency::Acute].map(|u| (u, now - self.for_urgency(u).of(step)))
    }
}

/// The timestamps a referral's deadlines are counted from.
#[derive(Debug, Clone, Copy)]
pub struct StepClock {
    pub state: ReferralState,
    pub urgency: Urgency,
    pub submitted_at: Option<DateTime<Utc>>,
    /// When it was accepted (or declined).
    pub decided_at: Option<DateTime<Utc>>,
}

/// A step that is past its deadline.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Overdue {
    pub step: Step,
    /// The deadline; overdue since then.
    pub due_at: DateTime<Utc>,
}

/// The steps still owed in this state, each with its deadline.
pub fn pending_steps(clock: &StepClock, limits: &DeadlineLimits) -> Vec<Overdue> {
    let limits = limits.for_urgency(clock.urgency);
    let mut steps = Vec::new();
    match (clock.state, clock.submitted_at, clock.decided_at) {
        (ReferralState::Submitted, Some(submitted), _) => {
            steps.push(Overdue {
                step: Step::Acknowledge,
                due_at: submitted + limits.acknowledge,
            });
            steps.push(Overdue {
                step: Step::Decide,
                due_at: submitted + limits.decide,
            });
        }
        (ReferralState::Acknowledged, Some(submitted), _) => {
            steps.push(Overdue {
                step: Step::Decide,
                due_at: submitted + limits.decide,
            });
        }
        (ReferralState::Accepted, _, Some(accepted)) => {
            steps.push(Overdue {
                step: Step::StartCare,
                due_at: accepted + limits.start_care,
            });
        }
        _ => {}
    }
    steps
}

/// The owed steps whose deadline has passed at `now`.
pub fn overdue_steps(clock: &StepClock, limits: &DeadlineLimits, now: DateTime<Utc>) -> Vec<Overdue> {
    pending_steps(clock, limits)
        .into_iter()
        .filter(|o| now > o.due_at)
        .collect()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    fn limits() -> DeadlineLimits {
        let l = |a, d, s| Limits {
            acknowledge: Duration::hours(a),
            decide: Duration::hours(d),
            start_care: Duration::hours(s),
        };
        DeadlineLimits {
            routine: l(24, 120, 168),
            urgent: l(4, 24, 72),
            acute: l(1, 4, 24),
        }
    }

    fn at(hours: i64) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2024, 1, 1, 0, 0, 0).unwrap() + Duration::hours(hours)
    }

    fn clock(state: ReferralState, urgency: Urgency) -> StepClock {
        StepClock {
            state,
            urgency,
            submitted_at: Some(at(0)),
            decided_at: Some(at(10)),
        }
    }

    #[test]
    fn routine_submission_becomes_overdue_step_by_step() {
        let c = clock(ReferralState::Submitted, Urgency::Routine);
        assert!(
            overdue_steps(&c, &limits(), at(24)).is_empty(),
            "exactly at the limit is not overdue yet"
        );
        let steps: Vec<Step> = overdue_steps(&c, &limits(), at(25)).iter().map(|o| o.step).collect();
        assert_eq!(steps, vec![Step::Acknowledge]);
        let steps: Vec<Step> = overdue_steps(&c, &limits(), at(121)).iter().map(|o| o.step).collect();
        assert_eq!(steps, vec![Step::Acknowledge, Step::Decide]);
    }

    #[test]
    fn acknowledged_owes_only_the_decision_and_accepted_the_start_of_care() {
        let c = clock(ReferralState::Acknowledged, Urgency::Urgent);
        let steps: Vec<Step> = overdue_steps(&c, &limits(), at(25)).iter().map(|o| o.step).collect();
        assert_eq!(steps, vec![Step::Decide]);
        let c = clock(ReferralState::Accepted, Urgency::Acute);
        let overdue = overdue_steps(&c, &limits(), at(35));
        assert_eq!(
            overdue,
            vec![Overdue {
                step: Step::StartCare,
                due_at: at(34)
            }]
        );
    }

    #[test]
    fn other_states_owe_nothing() {
        for state in [
            ReferralState::Draft,
            ReferralState::InCare,
            ReferralState::Completed,
            ReferralState::Declined,
            ReferralState::Withdrawn,
        ] {
            assert!(
                overdue_steps(&clock(state, Urgency::Acute), &limits(), at(10_000)).is_empty(),
                "{state:?}"
            );
        }
    }

    #[test]
    fn shortest_limit_per_step() {
        assert_eq!(limits().shortest(Step::Acknowledge), Duration::hours(1));
        assert_eq!(limits().shortest(Step::StartCare), Duration::hours(24));
    }

    #[test]
    fn the_cutoffs_the_watcher_queries_by_agree_with_the_overdue_steps() {
        // A clock started before the cutoff is exactly a step overdue, for every urgency,
        // step and moment around the limits.
        for urgency in [Urgency::Routine, Urgency::Urgent, Urgency::Acute] {
            for (state, step) in [
                (ReferralState::Submitted, Step::Acknowledge),
                (ReferralState::Acknowledged, Step::Decide),
                (ReferralState::Accepted, Step::StartCare),
            ] {
                for hours in [0, 1, 4, 5, 23, 24, 25, 119, 120, 121, 168, 169, 500] {
                    let c = clock(state, urgency);
                    let now = at(hours);
                    let started = if step == Step::StartCare {
                        c.decided_at
                    } else {
                        c.submitted_at
                    }
                    .unwrap();
                    let (_, cutoff) = limits()
                        .cutoffs(step, now)
                        .into_iter()
                        .find(|(u, _)| *u == urgency)
                        .unwrap();
                    let overdue = overdue_steps(&c, &limits(), now).iter().any(|o| o.step == step);
                    assert_eq!(started < cutoff, overdue, "{urgency:?} {step:?} at {hours} h");
                }
            }
        }
    }
}
