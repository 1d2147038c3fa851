//! Three-way conversations (*driehoeksgesprek*): the person, their
//! caseworker and the police meet so the person can learn what reporting
//! would involve, without committing to it.
//!
//! Nothing here gates assistance. Whether a conversation is offered,
//! declined, held, or what the person intends afterwards has no bearing on
//! referrals or support (Art. 11(3): assistance is not conditional on
//! cooperation in the investigation or prosecution); no other domain module
//! reads these states. The only guard is the person's own consent to police
//! contact. Pure: no I/O, no clock, no HTTP.

use chrono::{DateTime, Utc};

pub use crate::domain::case::ReportingIntention;
use crate::domain::ids::{CaseId, ConversationId};
use crate::domain::problem::{FieldProblem, check_field};
use crate::domain::text::Sealed;
use crate::domain::text::text_enum;

text_enum! {
    /// Where a three-way conversation stands.
    pub enum ThreeWayState {
        /// The caseworker has offered the conversation to the person.
        Offered = "offered",
        /// Terminal: the person does not want it. Has no consequences.
        Declined = "declined",
        /// A date is agreed; needs standing police-contact consent.
        Scheduled = "scheduled",
        /// The conversation took place; awaiting evaluation.
        Held = "held",
        /// Terminal: care and police recorded their evaluations and the
        /// person's reporting intention.
        Evaluated = "evaluated",
    }
}

impl ThreeWayState {
    /// No action leads out of a terminal state.
    pub fn is_terminal(&self) -> bool {
        matches!(self, Self::Declined | Self::Evaluated)
    }
}

text_enum! {
    /// A step in a three-way conversation.
    pub enum ThreeWayAction {
        Decline = "decline",
        Schedule = "schedule",
        Hold = "hold",
        Evaluate = "evaluate",
    }
}

text_enum! {
    /// A condition that must hold for a three-way step.
    pub enum ThreeWayGuard {
        /// No standing `police_contact` consent: the conversation cannot be
        /// scheduled.
        NoPoliceContactConsent = "no_police_contact_consent",
    }
}

impl ThreeWayGuard {
    /// A short English sentence for people reading an error.
    pub fn description(&self) -> &'static str {
        match self {
            Self::NoPoliceContactConsent => {
                "The person has not given (or has withdrawn) consent to contact with the police."
            }
        }
    }
}

/// One row of the three-way state machine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ThreeWayTransition {
    pub action: ThreeWayAction,
    pub from: ThreeWayState,
    pub to: ThreeWayState,
}

/// The three-way state machine; one row per action.
pub const THREE_WAY_TRANSITIONS: &[ThreeWayTransition] = {
    use ThreeWayAction as A;
    use ThreeWayState as S;
    &[
        ThreeWayTransition {
            action: A::Decline,
            from: S::Offered,
            to: S::Declined,
        },
        ThreeWayTransition {
            action: A::Schedule,
            from: S::Offered,
            to: S::Scheduled,
        },
        ThreeWayTransition {
            action: A::Hold,
            from: S::Scheduled,
            to: S::Held,
        },
        ThreeWayTransition {
            action: A::Evaluate,
            from: S::Held,
            to: S::Evaluated,
        },
    ]
};

/// The actions the state allows, in table order. The consent guard is not
/// considered here.
pub fn allowed_actions(state: ThreeWayState) -> Vec<ThreeWayAction> {
    THREE_WAY_TRANSITIONS
        .iter()
        .filter(|t| t.from == state)
        .map(|t| t.action)
        .collect()
}

/// A three-way conversation as stored, evaluations sealed.
#[derive(Debug, Clone, PartialEq)]
pub struct Conversation {
    pub id: ConversationId,
    pub case_id: CaseId,
    /// The organisation holding the case, whose caseworkers record the steps.
    pub organisation: String,
    pub police_organisation: String,
    /// The invited investigator's `sub`, once scheduled.
    pub police_officer: Option<String>,
    pub state: ThreeWayState,
    pub version: i64,
    pub scheduled_for: Option<DateTime<Utc>>,
    pub held_at: Option<DateTime<Utc>>,
    pub care_evaluation: Option<Sealed>,
    pub police_evaluation: Option<Sealed>,
    pub reporting_intention: Option<ReportingIntention>,
    pub created_by: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// A request to take a step, with the fields of every step in one place: `schedule` needs
/// the investigator and the time, `evaluate` both evaluations and the intention; no other
/// step takes any field.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ThreeWayRequest {
    pub action: ThreeWayAction,
    /// With `schedule`: the investigator's `sub`.
    pub police_officer: Option<String>,
    /// With `schedule`: when.
    pub scheduled_for: Option<DateTime<Utc>>,
    /// The caseworker's evaluation.
    pub care_evaluation: Option<String>,
    /// The police's evaluation.
    pub police_evaluation: Option<String>,
    pub reporting_intention: Option<ReportingIntention>,
}

impl ThreeWayRequest {
    /// A request for `action` with no fields.
    pub fn new(action: ThreeWayAction) -> Self {
        Self {
            action,
            police_officer: None,
            scheduled_for: None,
            care_evaluation: None,
            police_evaluation: None,
            reporting_intention: None,
        }
    }
}

/// The conversation after a decided step at `now`: the state, the version, and what the
/// step records (texts still to be sealed by the caller).
pub fn apply(
    conversation: &Conversation,
    request: &ThreeWayRequest,
    next: ThreeWayState,
    now: DateTime<Utc>,
) -> Conversation {
    let mut after = conversation.clone();
    after.state = next;
    after.version += 1;
    after.updated_at = now;
    match request.action {
        ThreeWayAction::Schedule => {
            after.police_officer = request.police_officer.clone();
            after.scheduled_for = request.scheduled_for;
        }
        ThreeWayAction::Hold => after.held_at = Some(now),
        ThreeWayAction::Evaluate => after.reporting_intention = request.reporting_intention,
        ThreeWayAction::Decline => {}
    }
    after
}

/// Why a three-way step was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ThreeWayRefusal {
    /// The state does not allow the action (HTTP 409).
    #[error("cannot {action} a three-way conversation that is {state}")]
    NotAllowed {
        action: ThreeWayAction,
        state: ThreeWayState,
        allowed: Vec<ThreeWayAction>,
    },
    /// A guard does not hold (HTTP 422, listing the codes).
    #[error("guards not met: {}", .0.iter().map(ThreeWayGuard::as_str).collect::<Vec<_>>().join(", "))]
    GuardFailed(Vec<ThreeWayGuard>),
    /// Required fields missing or blank, or fields the action does not take
    /// (HTTP 422).
    #[error("invalid fields: {}", .0.iter().map(|p| p.field).collect::<Vec<_>>().join(", "))]
    MissingFields(Vec<FieldProblem>),
}

/// The state `request` leads to from `state`, or why not. Checked in this
/// order: the state, then the consent guard, then the fields; so the
/// conflicts (409) come before the field problems (422), as for referrals.
pub fn decide(
    state: ThreeWayState,
    request: &ThreeWayRequest,
    police_contact_consent: bool,
) -> Result<ThreeWayState, ThreeWayRefusal> {
    let action = request.action;
    let Some(row) = THREE_WAY_TRANSITIONS
        .iter()
        .find(|t| t.action == action && t.from == state)
    else {
        return Err(ThreeWayRefusal::NotAllowed {
            action,
            state,
            allowed: allowed_actions(state),
        });
    };
    if action == ThreeWayAction::Schedule && !police_contact_consent {
        return Err(ThreeWayRefusal::GuardFailed(vec![
            ThreeWayGuard::NoPoliceContactConsent,
        ]));
    }
    let evaluating = action == ThreeWayAction::Evaluate;
    let scheduling = action == ThreeWayAction::Schedule;
    let filled = |text: &Option<String>| text.as_deref().map(|t| !t.trim().is_empty());
    let mut problems = Vec::new();
    check_field(
        &mut problems,
        action,
        "police_officer",
        scheduling,
        filled(&request.police_officer),
    );
    check_field(
        &mut problems,
        action,
        "scheduled_for",
        scheduling,
        request.scheduled_for.map(|_| true),
    );
    check_field(
        &mut problems,
        action,
        "care_evaluation",
        evaluating,
        filled(&request.care_evaluation),
    );
    check_field(
        &mut problems,
        action,
        "police_evaluation",
        evaluating,
        filled(&request.police_evaluation),
    );
    check_field(
        &mut problems,
        action,
        "reporting_intention",
        evaluating,
        request.reporting_intention.map(|_| true),
    );
    if !problems.is_empty() {
        return Err(ThreeWayRefusal::MissingFields(problems));
    }
    Ok(row.to)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use ThreeWayAction as A;
    use ThreeWayState as S;

    const ALL_STATES: [S; 5] = [S::Offered, S::Declined, S::Scheduled, S::Held, S::Evaluated];
    const ALL_ACTIONS: [A; 4] = [A::Decline, A::Schedule, A::Hold, A::Evaluate];

    /// Written out by hand: (from, action, to).
    const EXPECTED: &[(S, A, S)] = &[
        (S::Offered, A::Decline, S::Declined),
        (S::Offered, A::Schedule, S::Scheduled),
        (S::Scheduled, A::Hold, S::Held),
        (S::Held, A::Evaluate, S::Evaluated),
    ];

    fn valid_request(action: A) -> ThreeWayRequest {
        let mut r = ThreeWayRequest::new(action);
        if action == A::Schedule {
            r.police_officer = Some("rechercheur-hans".into());
            r.scheduled_for = Some(DateTime::UNIX_EPOCH);
        }
        if action == A::Evaluate {
            r.care_evaluation = Some("client felt heard".into());
            r.police_evaluation = Some("information given on reporting".into());
            r.reporting_intention = Some(ReportingIntention::Undecided);
        }
        r
    }

    fn problem_fields(result: Result<S, ThreeWayRefusal>) -> Vec<&'static str> {
        match result {
            Err(ThreeWayRefusal::MissingFields(p)) => p.into_iter().map(|p| p.field).collect(),
            other => panic!("expected MissingFields, got {other:?}"),
        }
    }

    #[test]
    fn enums_cover_exactly_the_expected_variants() {
        assert_eq!(ThreeWayState::ALL, ALL_STATES);
        assert_eq!(ThreeWayAction::ALL, ALL_ACTIONS);
    }

    #[test]
    fn every_state_and_action_with_consent() {
        let mut ok = 0;
        for state in ALL_STATES {
            let expected_allowed: Vec<A> = EXPECTED
                .iter()
                .filter(|(f, _, _)| *f == state)
                .map(|(_, a, _)| *a)
                .collect();
            assert_eq!(allowed_actions(state), expected_allowed, "{state}");
            for action in ALL_ACTIONS {
                let want = match EXPECTED.iter().find(|(f, a, _)| *f == state && *a == action) {
                    Some((_, _, to)) => {
                        ok += 1;
                        Ok(*to)
                    }
                    None => Err(ThreeWayRefusal::NotAllowed {
                        action,
                        state,
                        allowed: expected_allowed.clone(),
                    }),
                };
                assert_eq!(decide(state, &valid_request(action), true), want, "{state}/{action}");
            }
        }
        assert_eq!(ok, 4);
    }

    #[test]
    fn terminal_states_refuse_everything() {
        for state in [S::Declined, S::Evaluated] {
            assert!(state.is_terminal());
            for action in ALL_ACTIONS {
                assert_eq!(
                    decide(state, &valid_request(action), true),
                    Err(ThreeWayRefusal::NotAllowed {
                        action,
                        state,
                        allowed: vec![]
                    })
                );
            }
        }
        assert!(!S::Held.is_terminal());
    }

    #[test]
    fn scheduling_needs_police_contact_consent() {
        assert_eq!(
            decide(S::Offered, &valid_request(A::Schedule), false),
            Err(ThreeWayRefusal::GuardFailed(vec![
                ThreeWayGuard::NoPoliceContactConsent
            ]))
        );
        assert_eq!(decide(S::Offered, &valid_request(A::Schedule), true), Ok(S::Scheduled));
    }

    #[test]
    fn only_scheduling_is_guarded() {
        assert_eq!(decide(S::Offered, &valid_request(A::Decline), false), Ok(S::Declined));
        assert_eq!(decide(S::Scheduled, &valid_request(A::Hold), false), Ok(S::Held));
        assert_eq!(decide(S::Held, &valid_request(A::Evaluate), false), Ok(S::Evaluated));
    }

    #[test]
    fn state_is_checked_before_the_guard_and_the_guard_before_fields() {
        // Wrong state, no consent: NotAllowed.
        assert!(matches!(
            decide(S::Held, &valid_request(A::Schedule), false),
            Err(ThreeWayRefusal::NotAllowed { .. })
        ));
        // Right state, no consent, stray field: GuardFailed.
        let mut r = valid_request(A::Schedule);
        r.care_evaluation = Some("x".into());
        assert!(matches!(
            decide(S::Offered, &r, false),
            Err(ThreeWayRefusal::GuardFailed(_))
        ));
        // With consent, the stray field is reported.
        assert_eq!(problem_fields(decide(S::Offered, &r, true)), vec!["care_evaluation"]);
    }

    #[test]
    fn evaluation_needs_both_notes_and_an_intention() {
        let none = ThreeWayRequest::new(A::Evaluate);
        assert_eq!(
            problem_fields(decide(S::Held, &none, true)),
            vec!["care_evaluation", "police_evaluation", "reporting_intention"]
        );
        let mut blank = valid_request(A::Evaluate);
        blank.police_evaluation = Some("   ".into());
        match decide(S::Held, &blank, true) {
            Err(ThreeWayRefusal::MissingFields(p)) => {
                assert_eq!(p.len(), 1);
                assert_eq!(p[0].field, "police_evaluation");
                assert!(p[0].message.contains("blank"), "{}", p[0].message);
            }
            other => panic!("expected MissingFields, got {other:?}"),
        }
        let mut no_intention = valid_request(A::Evaluate);
        no_intention.reporting_intention = None;
        assert_eq!(
            problem_fields(decide(S::Held, &no_intention, true)),
            vec!["reporting_intention"]
        );
        for intention in ReportingIntention::ALL {
            let mut r = valid_request(A::Evaluate);
            r.reporting_intention = Some(intention);
            assert_eq!(decide(S::Held, &r, true), Ok(S::Evaluated));
        }
    }

    #[test]
    fn scheduling_needs_the_investigator_and_the_time_and_nothing_else_takes_them() {
        let bare = ThreeWayRequest::new(A::Schedule);
        assert_eq!(
            problem_fields(decide(S::Offered, &bare, true)),
            vec!["police_officer", "scheduled_for"]
        );
        let mut blank = valid_request(A::Schedule);
        blank.police_officer = Some("  ".into());
        assert_eq!(problem_fields(decide(S::Offered, &blank, true)), vec!["police_officer"]);
        let mut decline = ThreeWayRequest::new(A::Decline);
        decline.police_officer = Some("rechercheur-hans".into());
        decline.scheduled_for = Some(DateTime::UNIX_EPOCH);
        assert_eq!(
            problem_fields(decide(S::Offered, &decline, true)),
            vec!["police_officer", "scheduled_for"]
        );
        // State and consent come first, as for referrals.
        assert!(matches!(
            decide(S::Held, &bare, true),
            Err(ThreeWayRefusal::NotAllowed { .. })
        ));
        assert!(matches!(
            decide(S::Offered, &bare, false),
            Err(ThreeWayRefusal::GuardFailed(_))
        ));
    }

    #[test]
    fn evaluation_fields_do_not_belong_to_other_steps() {
        let mut hold = ThreeWayRequest::new(A::Hold);
        hold.reporting_intention = Some(ReportingIntention::WillReport);
        hold.police_evaluation = Some("early".into());
        assert_eq!(
            problem_fields(decide(S::Scheduled, &hold, true)),
            vec!["police_evaluation", "reporting_intention"]
        );
        let mut decline = ThreeWayRequest::new(A::Decline);
        decline.care_evaluation = Some(String::new());
        assert_eq!(
            problem_fields(decide(S::Offered, &decline, true)),
            vec!["care_evaluation"]
        );
    }

    #[test]
    fn enum_text_round_trips() {
        for v in ThreeWayState::ALL {
            assert_eq!(serde_json::to_string(&v).unwrap(), format!("\"{}\"", v.as_str()));
            assert_eq!(v.as_str().parse(), Ok(v));
        }
        for v in ThreeWayAction::ALL {
            assert_eq!(serde_json::to_string(&v).unwrap(), format!("\"{}\"", v.as_str()));
            assert_eq!(v.as_str().parse(), Ok(v));
        }
        for v in ReportingIntention::ALL {
            assert_eq!(serde_json::to_string(&v).unwrap(), format!("\"{}\"", v.as_str()));
            assert_eq!(v.as_str().parse(), Ok(v));
        }
        assert_eq!(
            ThreeWayGuard::NoPoliceContactConsent.as_str(),
            "no_police_contact_consent"
        );
        assert!(ThreeWayGuard::NoPoliceContactConsent.description().ends_with('.'));
        assert_eq!(ReportingIntention::WillNotReport.as_str(), "will_not_report");
    }
}
