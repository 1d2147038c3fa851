//! Consent: what the person (or whoever may speak for them) agreed to, for
//! which organisation, and whether it still stands.
//!
//! Consent is given per scope and per receiving organisation, never in
//! general (CoE Convention Art. 12(7); Directive Art. 11(5)/(6): assistance
//! on an informed and consensual basis). This module only answers "is there
//! a standing consent covering this?"; recording, withdrawing and auditing
//! consent belong to the service and the database layers. No I/O, no clock.

use serde::{Deserialize, Serialize};

use chrono::{DateTime, Utc};

use crate::domain::ids::{CaseId, ConsentId};
use crate::domain::text::text_enum;

text_enum! {
    /// What a consent allows.
    pub enum ConsentScope {
        /// Handing the case over to the named organisation.
        Referral = "referral",
        /// Sharing case data with the named organisation beyond a referral.
        DataSharing = "data_sharing",
        /// Contact with the police, e.g. a three-way conversation.
        PoliceContact = "police_contact",
    }
}

text_enum! {
    /// Who gave the consent.
    pub enum ConsentGiver {
        Victim = "victim",
        /// Parent or appointed guardian of a child.
        Guardian = "guardian",
        LegalRepresentative = "legal_representative",
    }
}

text_enum! {
    /// How the consent was given.
    pub enum ConsentMethod {
        Chat = "chat",
        Verbal = "verbal",
        Written = "written",
    }
}

/// One recorded consent, as the database layer loads it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConsentFact {
    pub scope: ConsentScope,
    /// Slug of the organisation the consent names.
    pub organisation: String,
    pub given_by: ConsentGiver,
    /// A withdrawn consent covers nothing from the moment of withdrawal.
    pub withdrawn: bool,
}

/// The first standing (not withdrawn) consent for `scope` that names
/// `organisation`, if any. Slugs are compared exactly.
pub fn covering<'a>(consents: &'a [ConsentFact], scope: ConsentScope, organisation: &str) -> Option<&'a ConsentFact> {
    consents
        .iter()
        .find(|c| !c.withdrawn && c.scope == scope && c.organisation == organisation)
}

/// A consent as recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Consent {
    pub id: ConsentId,
    pub case_id: CaseId,
    pub scope: ConsentScope,
    /// The organisation the consent names.
    pub organisation: String,
    pub given_by: ConsentGiver,
    pub method: ConsentMethod,
    /// The language the person was informed in (Art. 11(5)/(6)).
    pub information_language: String,
    pub recorded_by: String,
    pub recorded_at: DateTime<Utc>,
    pub withdrawn_at: Option<DateTime<Utc>>,
    pub withdrawn_by: Option<String>,
}

impl Consent {
    pub fn standing(&self) -> bool {
        self.withdrawn_at.is_none()
    }

    pub fn fact(&self) -> ConsentFact {
        ConsentFact {
            scope: self.scope,
            organisation: self.organisation.clone(),
            given_by: self.given_by,
            withdrawn: !self.standing(),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use crate::domain::ids::ReferralId;
    use crate::domain::referral::{Referral, ReferralState, Withdrawal, withdrawal};

    fn fact(scope: ConsentScope, org: &str, given_by: ConsentGiver, withdrawn: bool) -> ConsentFact {
        ConsentFact {
            scope,
            organisation: org.to_owned(),
            given_by,
            withdrawn,
        }
    }

    fn consent(n: u128, scope: ConsentScope, org: &str) -> Consent {
        Consent {
            id: ConsentId(uuid::Uuid::from_u128(n)),
            case_id: CaseId(uuid::Uuid::nil()),
            scope,
            organisation: org.into(),
            given_by: ConsentGiver::Victim,
            method: ConsentMethod::Chat,
            information_language: "nl".into(),
            recorded_by: "anna".into(),
            recorded_at: DateTime::UNIX_EPOCH,
            withdrawn_at: None,
            withdrawn_by: None,
        }
    }

    fn referral(n: u128, to: &str, state: ReferralState, consent: Option<u128>) -> Referral {
        let at = DateTime::UNIX_EPOCH;
        Referral {
            id: ReferralId(uuid::Uuid::from_u128(n)),
            case_id: CaseId(uuid::Uuid::nil()),
            from_organisation: "fier".into(),
            to_organisation: to.into(),
            services: Vec::new(),
            urgency: crate::domain::referral::Urgency::Routine,
            note: None,
            state,
            version: 1,
            consent_id: consent.map(|c| ConsentId(uuid::Uuid::from_u128(c))),
            created_by: "anna".into(),
            created_at: at,
            updated_at: at,
            submitted_at: (state != ReferralState::Draft).then_some(at),
            acknowledged_at: None,
            decided_at: None,
            care_started_at: None,
            closed_at: None,
            decline_reason: None,
            outcome: None,
            eligibility_override: None,
            assigned_to: None,
        }
    }

    fn ids(list: &[ReferralId]) -> Vec<u128> {
        list.iter().map(|id| id.0.as_u128()).collect()
    }

    #[test]
    fn withdrawing_consent_withdraws_what_relied_on_it_and_tells_the_receiver() {
        use ConsentScope::*;
        use ReferralState as S;
        let csg = consent(1, Referral, "csg");
        let referrals = [
            referral(10, "csg", S::Submitted, Some(1)),
            referral(11, "csg", S::Draft, None),
            referral(12, "csg", S::Accepted, Some(1)),
            referral(13, "shn", S::Submitted, Some(2)),
            referral(14, "csg", S::Completed, Some(1)),
        ];
        let all = [csg.clone(), consent(2, Referral, "shn")];
        let effect = withdrawal(&csg, &all, &referrals);
        assert_eq!(
            ids(&effect.withdraw),
            vec![10, 11, 12, 14],
            "the system then withdraws what it still may"
        );
        assert_eq!(ids(&effect.tell), vec![10, 12], "open handovers to csg");
        // A second standing consent for csg keeps them going; csg is still told.
        let both = [csg.clone(), consent(3, Referral, "csg")];
        let effect = withdrawal(&csg, &both, &referrals);
        assert!(effect.withdraw.is_empty());
        assert_eq!(ids(&effect.tell), vec![10, 12]);
        // Data sharing: nothing is withdrawn, the receiver is told.
        let sharing = consent(4, DataSharing, "csg");
        let effect = withdrawal(&sharing, std::slice::from_ref(&sharing), &referrals);
        assert!(effect.withdraw.is_empty());
        assert_eq!(ids(&effect.tell), vec![10, 12]);
        // Police contact: no referral rests on it, nobody is mailed.
        let police = consent(5, PoliceContact, "csg");
        assert_eq!(
            withdrawal(&police, std::slice::from_ref(&police), &referrals),
            Withdrawal::default()
        );
    }

    #[test]
    fn covering_needs_same_scope_same_org_and_not_withdrawn() {
        use ConsentGiver as G;
        use ConsentScope as S;
        let consents = vec![
            fact(S::Referral, "shelter-a", G::Victim, true),
            fact(S::DataSharing, "shelter-b", G::Victim, false),
            fact(S::Referral, "shelter-b", G::Guardian, false),
            fact(S::PoliceContact, "police", G::Victim, false),
        ];
        // Withdrawn consent does not cover.
        assert_eq!(covering(&consents, S::Referral, "shelter-a"), None);
        // Same org, right scope.
        assert_eq!(covering(&consents, S::Referral, "shelter-b"), Some(&consents[2]));
        // Scope must match.
        assert_eq!(covering(&consents, S::PoliceContact, "shelter-b"), None);
        assert_eq!(
            covering(&consents, S::DataSharing, "shelter-b").map(|c| c.scope),
            Some(S::DataSharing)
        );
        // Organisation must match exactly.
        assert_eq!(covering(&consents, S::Referral, "Shelter-B"), None);
        assert_eq!(covering(&consents, S::Referral, "shelter"), None);
        assert_eq!(covering(&[], S::Referral, "shelter-b"), None);
    }

    #[test]
    fn a_later_standing_consent_covers_after_an_earlier_withdrawal() {
        use ConsentGiver as G;
        use ConsentScope as S;
        let consents = vec![
            fact(S::Referral, "shelter-a", G::Victim, true),
            fact(S::Referral, "shelter-a", G::LegalRepresentative, false),
        ];
        assert_eq!(
            covering(&consents, S::Referral, "shelter-a").map(|c| c.given_by),
            Some(G::LegalRepresentative)
        );
    }

    #[test]
    fn enum_text_round_trips() {
        for v in ConsentScope::ALL {
            assert_eq!(serde_json::to_string(&v).unwrap(), format!("\"{}\"", v.as_str()));
            assert_eq!(v.as_str().parse(), Ok(v));
        }
        for v in ConsentGiver::ALL {
            assert_eq!(serde_json::to_string(&v).unwrap(), format!("\"{}\"", v.as_str()));
            assert_eq!(v.as_str().parse(), Ok(v));
        }
        for v in ConsentMethod::ALL {
            assert_eq!(serde_json::to_string(&v).unwrap(), format!("\"{}\"", v.as_str()));
            assert_eq!(v.as_str().parse(), Ok(v));
        }
        assert!("everything".parse::<ConsentScope>().is_err());
    }
}
