//! Consent: what the person (or whoever may speak for them) agreed to, for
//! which organisation, and whether it still stands.
//!
//! Consent is given per scope and per receiving organisation, never in
//! general (CoE Convention Art. 12(7); Directive Art. 11(5)/(6): assistance
//! on an informed and consensual basis). This module only answers "is there
//! a standing consent covering this?"; recording, withdrawing and auditing
//! consent belong to the service and the database layers. No I/O, no clock.

use serde::{Deserialize, Serialize};

use crate::domain::case::text_enum;

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

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn fact(scope: ConsentScope, org: &str, given_by: ConsentGiver, withdrawn: bool) -> ConsentFact {
        ConsentFact {
            scope,
            organisation: org.to_owned(),
            given_by,
            withdrawn,
        }
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
