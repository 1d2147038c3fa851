//! Cases and referrals in IOM's Human Trafficking Case Data Standard (HTCDS, field names of
//! version 2, github.com/UNMigration/HTCDS): one CSV row per handed-over referral, and one
//! per case without any. Pure: cases, referrals and the organisations' names come in, text
//! goes out. `docs/integration.md` §4 has the mapping and what `nrm` does not hold.
//!
//! Ids are pseudonymised by the caller (a keyed hash): the export names no `nrm` id, no
//! pseudonym, no name and no free text.

use crate::domain::case::{Case, ExploitationForm, Gender};
use crate::domain::referral::{Referral, ReferralState};

/// The columns, in order: HTCDS fields first (their prefixes say their table), then the few
/// `nrm_` columns HTCDS has no field for.
pub const HEADER: [&str; 16] = [
    "cas_CaseId",
    "cas_Status",
    "cas_ReferringOrganisation",
    "cas_ReferredOrganisation",
    "cas_OutgoingReferralDate",
    "cas_IncomingReferralDate",
    "cas_ReasonForOutgoingReferral",
    "cas_ReasonForCaseClosure",
    "vic_TypeOfExploitation",
    "prs_Gender",
    "prs_Nationality",
    "nrm_ReferralId",
    "nrm_ReferralState",
    "nrm_Minor",
    "nrm_DeclineReason",
    "nrm_Outcome",
];

/// HTCDS `cas_Status`: `Closed` or `ClosedReferred` for a closed case (the latter when a
/// referral of it was taken on), `FollowUp` for an open case whose referrals all ended,
/// `Active` otherwise.
pub fn case_status(case: &Case, referrals: &[&Referral]) -> &'static str {
    let taken_on = referrals.iter().any(|r| {
        matches!(
            r.state,
            ReferralState::Accepted | ReferralState::InCare | ReferralState::Completed
        )
    });
    let handed_over: Vec<&&Referral> = referrals.iter().filter(|r| r.handed_over()).collect();
    match (case.closed_at.is_some(), taken_on) {
        (true, true) => "ClosedReferred",
        (true, false) => "Closed",
        (false, _) if !handed_over.is_empty() && handed_over.iter().all(|r| r.state.is_terminal()) => "FollowUp",
        (false, _) => "Active",
    }
}

/// HTCDS `vic_TypeOfExploitation` values, space-separated as its multi-select fields are.
pub fn exploitation(case: &Case) -> String {
    case.forms
        .iter()
        .map(|form| match form {
            ExploitationForm::Sexual => "SexualExploitation",
            ExploitationForm::Labour => "ForcedLabour",
            // Criminal exploitation (forced criminality) is HTCDS's "illicit activities".
            ExploitationForm::Criminal => "IllicitActivities",
            ExploitationForm::Other => "Other",
        })
        .collect::<Vec<_>>()
        .join(" ")
}

fn gender(case: &Case) -> &'static str {
    match case.gender {
        Some(Gender::Female) => "Female",
        Some(Gender::Male) => "Male",
        Some(Gender::NonBinary) => "Transgender/NonConforming",
        Some(Gender::Unknown) | None => "Unknown",
    }
}

/// One row's facts: the case, the referral (none for a case never referred), the
/// pseudonymised ids and the organisations' names.
pub struct RowFacts<'a> {
    pub case: &'a Case,
    /// All referrals of the case, for its status.
    pub referrals: &'a [&'a Referral],
    pub referral: Option<&'a Referral>,
    pub case_key: &'a str,
    pub referral_key: &'a str,
    pub name: &'a dyn Fn(&str) -> String,
}

/// The row's values, in `HEADER` order.
pub fn row(f: &RowFacts) -> Vec<String> {
    let date = |at: Option<chrono::DateTime<chrono::Utc>>| at.map(|t| t.date_naive().to_string()).unwrap_or_default();
    let r = f.referral;
    let taken_on = r.filter(|r| {
        matches!(
            r.state,
            ReferralState::Accepted | ReferralState::InCare | ReferralState::Completed
        )
    });
    vec![
        f.case_key.to_string(),
        case_status(f.case, f.referrals).to_string(),
        r.map(|r| (f.name)(&r.from_organisation)).unwrap_or_default(),
        r.map(|r| (f.name)(&r.to_organisation)).unwrap_or_default(),
        date(r.and_then(|r| r.submitted_at)),
        // HTCDS: "the date that the organisation accepted an incoming case referral".
        date(taken_on.and_then(|r| r.decided_at)),
        // Every handover in nrm is for services the sender cannot give itself.
        r.map(|_| "AdditionalServicesRequired".to_string()).unwrap_or_default(),
        f.case.closed_reason.clone().unwrap_or_default(),
        exploitation(f.case),
        gender(f.case).to_string(),
        f.case.nationality.map(|n| n.as_str().to_string()).unwrap_or_default(),
        f.referral_key.to_string(),
        r.map(|r| r.state.as_str().to_string()).unwrap_or_default(),
        f.case.is_minor().to_string(),
        r.and_then(|r| r.decline_reason)
            .map(|d| d.as_str().to_string())
            .unwrap_or_default(),
        r.and_then(|r| r.outcome)
            .map(|o| o.as_str().to_string())
            .unwrap_or_default(),
    ]
}

/// One CSV line (RFC 4180): fields quoted where they hold a comma, quote or line break, and
/// a leading `=`, `+`, `-` or `@` neutralised so a spreadsheet does not run it as a formula.
pub fn csv_line(fields: &[String]) -> String {
    let mut line = fields
        .iter()
        .map(|field| {
            let safe = if field.starts_with(['=', '+', '-', '@']) {
                format!("'{field}")
            } else {
                field.clone()
            };
            if safe.contains([',', '"', '\n', '\r']) {
                format!("\"{}\"", safe.replace('"', "\"\""))
            } else {
                safe
            }
        })
        .collect::<Vec<_>>()
        .join(",");
    line.push_str("\r\n");
    line
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn csv_quotes_and_defuses_formulas() {
        let line = csv_line(&["a,b".into(), "say \"hi\"".into(), "=1+1".into(), "plain".into()]);
        assert_eq!(line, "\"a,b\",\"say \"\"hi\"\"\",'=1+1,plain\r\n");
        assert_eq!(csv_line(&HEADER.map(String::from)).split(',').count(), HEADER.len());
    }
}
