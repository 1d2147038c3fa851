//! A referral as HL7 FHIR R4 sees it: a `Task` (the handover, with its status and owner)
//! that focuses on a contained `ServiceRequest` (what was asked for). Pure: the referral and
//! the organisations' names come in, JSON goes out. `docs/integration.md` §3 has the mapping.
//!
//! The person appears only as the case's id, pseudonymous, never by pseudonym or name: a
//! partner's system that needs more reads the referral through the API under its rules.

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{Value, json};

use crate::domain::notification::reference;
use crate::domain::referral::{Referral, ReferralState, Urgency};

/// FHIR `Task.status` for each state of the referral state machine.
pub fn task_status(state: ReferralState) -> &'static str {
    match state {
        ReferralState::Draft => "draft",
        ReferralState::Submitted => "requested",
        ReferralState::Acknowledged => "received",
        ReferralState::Accepted => "accepted",
        ReferralState::InCare => "in-progress",
        ReferralState::Completed => "completed",
        ReferralState::Declined => "rejected",
        ReferralState::Withdrawn => "cancelled",
    }
}

/// The state a `Task.status` search names: the mapping is one to one.
pub fn state_of_task_status(status: &str) -> Option<ReferralState> {
    ReferralState::ALL.into_iter().find(|s| task_status(*s) == status)
}

/// The `ServiceRequest.status` of the request the task fulfils.
fn request_status(state: ReferralState) -> &'static str {
    match state {
        ReferralState::Draft => "draft",
        ReferralState::Submitted | ReferralState::Acknowledged | ReferralState::Accepted | ReferralState::InCare => {
            "active"
        }
        ReferralState::Completed => "completed",
        ReferralState::Declined | ReferralState::Withdrawn => "revoked",
    }
}

fn priority(urgency: Urgency) -> &'static str {
    match urgency {
        Urgency::Routine => "routine",
        Urgency::Urgent => "urgent",
        Urgency::Acute => "stat",
    }
}

/// FHIR `instant` / `dateTime`: RFC 3339 with milliseconds and `Z`.
fn instant(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// What the mapping needs besides the referral.
pub struct TaskContext<'a> {
    /// The service's public base URL: code systems and identifiers live under it.
    pub base: &'a str,
    pub from_name: &'a str,
    pub to_name: &'a str,
}

impl TaskContext<'_> {
    fn system(&self, name: &str) -> String {
        format!("{}/fhir/{name}", self.base.trim_end_matches('/'))
    }

    fn organisation(&self, slug: &str, name: &str) -> Value {
        json!({
            "type": "Organization",
            "identifier": { "system": self.system("sid/organisation"), "value": slug },
            "display": name,
        })
    }

    fn code(&self, system: &str, code: &str) -> Value {
        json!({ "coding": [{ "system": self.system(system), "code": code }], "text": code })
    }
}

/// The referral as a FHIR R4 `Task` with its `ServiceRequest` contained.
pub fn task(referral: &Referral, cx: &TaskContext) -> Value {
    let id = referral.id.0.to_string();
    let person = json!({
        "identifier": { "system": cx.system("sid/case"), "value": referral.case_id.0.to_string() },
    });
    let requester = cx.organisation(&referral.from_organisation, cx.from_name);
    let owner = cx.organisation(&referral.to_organisation, cx.to_name);
    let mut request = json!({
        "resourceType": "ServiceRequest",
        "id": "request",
        "status": request_status(referral.state),
        "intent": "order",
        "category": referral.services.iter().map(|s| cx.code("CodeSystem/service", s)).collect::<Vec<_>>(),
        "priority": priority(referral.urgency),
        "subject": person,
        "authoredOn": instant(referral.submitted_at.unwrap_or(referral.created_at)),
        "requester": requester,
        "performer": [owner],
    });
    if referral.services.is_empty() {
        request.as_object_mut().map(|o| o.remove("category"));
    }
    let mut task = json!({
        "resourceType": "Task",
        "id": id,
        "meta": { "versionId": referral.version.to_string(), "lastUpdated": instant(referral.updated_at) },
        "contained": [request],
        "identifier": [
            { "system": "urn:ietf:rfc:3986", "value": format!("urn:uuid:{id}") },
            { "system": cx.system("sid/referral-reference"), "value": reference(&referral.id.0) },
        ],
        "status": task_status(referral.state),
        // The state machine's own name, where FHIR's statuses are coarser.
        "businessStatus": cx.code("CodeSystem/referral-state", referral.state.as_str()),
        "intent": "order",
        "priority": priority(referral.urgency),
        "code": {
            "coding": [{ "system": "http://hl7.org/fhir/CodeSystem/task-code", "code": "fulfill" }],
        },
        "focus": { "reference": "#request" },
        "for": person,
        "authoredOn": instant(referral.created_at),
        "lastModified": instant(referral.updated_at),
        "requester": requester,
        "owner": owner,
    });
    let Some(fields) = task.as_object_mut() else {
        return task;
    };
    if let Some(reason) = referral
        .decline_reason
        .filter(|_| referral.state == ReferralState::Declined)
    {
        fields.insert(
            "statusReason".into(),
            cx.code("CodeSystem/decline-reason", reason.as_str()),
        );
    }
    if let Some(started) = referral.care_started_at {
        let mut period = json!({ "start": instant(started) });
        if let Some(closed) = referral.closed_at {
            period["end"] = json!(instant(closed));
        }
        fields.insert("executionPeriod".into(), period);
    }
    if let Some(outcome) = referral.outcome.filter(|_| referral.state == ReferralState::Completed) {
        fields.insert(
            "output".into(),
            json!([{
                "type": { "text": "outcome" },
                "valueCodeableConcept": cx.code("CodeSystem/outcome", outcome.as_str()),
            }]),
        );
    }
    task
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::domain::ids::{CaseId, ReferralId};
    use crate::domain::referral::{DeclineReason, Outcome};

    fn referral(state: ReferralState) -> Referral {
        let at = DateTime::<Utc>::UNIX_EPOCH + chrono::Duration::days(20_000);
        Referral {
            id: ReferralId(uuid::Uuid::nil()),
            case_id: CaseId(uuid::Uuid::max()),
            from_organisation: "fier".into(),
            to_organisation: "csg".into(),
            services: vec!["acute_sexual_violence_care".into()],
            urgency: Urgency::Acute,
            note: None,
            state,
            version: 3,
            consent_id: None,
            created_by: "cw-anna".into(),
            created_at: at,
            updated_at: at,
            submitted_at: Some(at),
            acknowledged_at: None,
            decided_at: None,
            care_started_at: None,
            closed_at: None,
            decline_reason: Some(DeclineReason::NoCapacity),
            outcome: Some(Outcome::SupportProvided),
            eligibility_override: None,
            assigned_to: Some("intake-carla".into()),
        }
    }

    const CX: TaskContext = TaskContext {
        base: "https://nrm.example/",
        from_name: "Fier",
        to_name: "Centrum Seksueel Geweld",
    };

    #[test]
    fn every_state_has_its_own_status_and_back() {
        let mut seen = std::collections::BTreeSet::new();
        for state in ReferralState::ALL {
            assert!(seen.insert(task_status(state)), "{state:?} shares a status");
            assert_eq!(state_of_task_status(task_status(state)), Some(state));
        }
        assert_eq!(task_status(ReferralState::Submitted), "requested");
        assert_eq!(task_status(ReferralState::InCare), "in-progress");
        assert_eq!(task_status(ReferralState::Declined), "rejected");
        assert_eq!(task_status(ReferralState::Withdrawn), "cancelled");
        assert_eq!(state_of_task_status("on-hold"), None);
    }

    #[test]
    fn reasons_and_outcomes_appear_only_in_their_states() {
        let declined = task(&referral(ReferralState::Declined), &CX);
        assert_eq!(declined["status"], "rejected");
        assert_eq!(declined["statusReason"]["coding"][0]["code"], "no_capacity");
        assert!(declined.get("output").is_none());
        let completed = task(&referral(ReferralState::Completed), &CX);
        assert_eq!(
            completed["output"][0]["valueCodeableConcept"]["coding"][0]["code"],
            "support_provided"
        );
        assert!(completed.get("statusReason").is_none());
        let accepted = task(&referral(ReferralState::Accepted), &CX);
        assert!(accepted.get("output").is_none() && accepted.get("statusReason").is_none());
        assert_eq!(accepted["owner"]["identifier"]["value"], "csg");
        assert_eq!(accepted["requester"]["display"], "Fier");
        assert_eq!(accepted["priority"], "stat");
        assert_eq!(accepted["focus"]["reference"], "#request");
        assert_eq!(accepted["contained"][0]["status"], "active");
        assert_eq!(
            accepted["identifier"][1]["system"],
            "https://nrm.example/fhir/sid/referral-reference"
        );
    }

    #[test]
    fn the_person_is_the_case_id_and_nothing_else() {
        let text = task(&referral(ReferralState::InCare), &CX).to_string();
        assert!(text.contains(&uuid::Uuid::max().to_string()));
        for absent in ["cw-anna", "intake-carla", "note", "pseudonym"] {
            assert!(!text.contains(absent), "{absent} in {text}");
        }
    }
}
