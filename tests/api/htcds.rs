//! The HTCDS export: a period's cases and referrals in IOM's Human Trafficking Case Data
//! Standard field names, for the focal point, with pseudonymised ids only.

use serde_json::{Value, json};

use crate::api_test;
use crate::helpers::{TestApp, adult_case, expect_problem};

async fn export(app: &TestApp, token: &str, query: &str) -> (String, Vec<Vec<String>>) {
    let response = app.get(&format!("/api/v1/exports/htcds?{query}"), token).await;
    assert_eq!(response.status(), 200);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/csv")
    );
    let text = response.text().await.unwrap();
    let rows = parse_csv(&text);
    (text, rows)
}

/// RFC 4180 as a spreadsheet reads it: quoted fields may hold commas and doubled quotes.
fn parse_csv(text: &str) -> Vec<Vec<String>> {
    let mut rows = Vec::new();
    for line in text.split("\r\n").filter(|l| !l.is_empty()) {
        let (mut fields, mut field, mut quoted) = (Vec::new(), String::new(), false);
        let mut chars = line.chars().peekable();
        while let Some(c) = chars.next() {
            match (c, quoted) {
                ('"', false) if field.is_empty() => quoted = true,
                ('"', true) if chars.peek() == Some(&'"') => {
                    field.push('"');
                    chars.next();
                }
                ('"', true) => quoted = false,
                (',', false) => fields.push(std::mem::take(&mut field)),
                (c, _) => field.push(c),
            }
        }
        fields.push(field);
        rows.push(fields);
    }
    rows
}

async fn a_period_in_htcds_fields(app: TestApp) {
    let a = app.actors();
    let fp = &a.comensha_coordinator;
    // A: handed over, taken on, completed; the case then closed.
    let mut facts = adult_case();
    facts["exploitation_forms"] = json!(["sexual", "criminal"]);
    let case_a = app.create_case(&a.fier_caseworker, &facts).await;
    let a_id = case_a["id"].as_str().unwrap();
    app.reasonable_grounds(&a.fier_caseworker, a_id).await;
    app.consent(&a.fier_caseworker, a_id, "referral", "csg").await;
    let draft = app
        .draft_referral(&a.fier_caseworker, a_id, "csg", &["acute_sexual_violence_care"])
        .await;
    let mut r = app.step(&a.fier_caseworker, &draft, json!({"action": "submit"})).await;
    for step in [
        json!({"action": "accept"}),
        json!({"action": "start_care"}),
        json!({"action": "complete", "outcome_code": "support_provided", "outcome": "Afgerond"}),
    ] {
        r = app.step(&a.csg_intake, &r, step).await;
    }
    let referral_a = r["id"].as_str().unwrap().to_string();
    app.post_ok(
        &format!("/api/v1/cases/{a_id}/close"),
        &a.fier_caseworker,
        &json!({"reason_code": "support_completed"}),
        200,
    )
    .await;
    // B: declined; the case stays open.
    let (case_b, r) = app.submitted_referral("slachtofferhulp", &["practical_support"]).await;
    app.step(
        &a.shn_intake,
        &r,
        json!({"action": "decline", "reason_code": "no_capacity", "reason": "Vol"}),
    )
    .await;
    // C: never referred; D: only a draft, which nobody else ever saw.
    let case_c = app.create_case(&a.fier_caseworker, &adult_case()).await;
    let case_d = app.create_case(&a.fier_caseworker, &adult_case()).await;
    let d_id = case_d["id"].as_str().unwrap();
    app.reasonable_grounds(&a.fier_caseworker, d_id).await;
    app.consent(&a.fier_caseworker, d_id, "referral", "csg").await;
    app.draft_referral(&a.fier_caseworker, d_id, "csg", &["acute_sexual_violence_care"])
        .await;

    let today = chrono::Utc::now().date_naive();
    let period = format!("from={today}&to={today}");
    let (text, rows) = export(&app, fp, &period).await;
    assert_eq!(rows[0], nrm::domain::htcds::HEADER.map(String::from).to_vec());
    let body = &rows[1..];
    assert_eq!(body.len(), 4, "{text}");
    let column = |name: &str| nrm::domain::htcds::HEADER.iter().position(|h| *h == name).unwrap();
    let (status, from, to, outgoing, incoming, closure, forms, gender, nationality, state) = (
        column("cas_Status"),
        column("cas_ReferringOrganisation"),
        column("cas_ReferredOrganisation"),
        column("cas_OutgoingReferralDate"),
        column("cas_IncomingReferralDate"),
        column("cas_ReasonForCaseClosure"),
        column("vic_TypeOfExploitation"),
        column("prs_Gender"),
        column("prs_Nationality"),
        column("nrm_ReferralState"),
    );
    let completed = body.iter().find(|r| r[state] == "completed").expect("A's row");
    assert_eq!(completed[status], "ClosedReferred");
    assert_eq!(completed[from], "Fier (Chat met Fier, Keerpunt)");
    assert!(
        text.contains("\"Fier (Chat met Fier, Keerpunt)\""),
        "a name with a comma is quoted"
    );
    assert_eq!(completed[to], "Centrum Seksueel Geweld");
    assert_eq!(completed[outgoing], today.to_string());
    assert_eq!(completed[incoming], today.to_string());
    assert_eq!(completed[closure], "support_completed");
    assert_eq!(completed[forms], "SexualExploitation IllicitActivities");
    assert_eq!(completed[gender], "Female");
    assert_eq!(completed[nationality], "RO");
    assert_eq!(completed[column("nrm_Outcome")], "support_provided");
    let declined = body.iter().find(|r| r[state] == "declined").expect("B's row");
    assert_eq!(declined[status], "FollowUp");
    assert_eq!(declined[incoming], "", "never taken on");
    assert_eq!(declined[column("nrm_DeclineReason")], "no_capacity");
    let never: Vec<&Vec<String>> = body.iter().filter(|r| r[state].is_empty()).collect();
    assert_eq!(never.len(), 2, "C and D, the draft not counting as a handover");
    for row in &never {
        assert_eq!(row[status], "Active");
        assert_eq!(row[from], "");
        assert_eq!(row[column("nrm_ReferralId")], "");
    }

    // Pseudonymised: no id of nrm, no pseudonym, no free text; the same keys next time.
    for id in [
        a_id,
        &referral_a,
        case_b["id"].as_str().unwrap(),
        case_c["id"].as_str().unwrap(),
        d_id,
    ] {
        assert!(!text.contains(id), "{id} in the export");
    }
    for absent in ["zonnebloem88", "Afgerond", "Vol", "Graag contact"] {
        assert!(!text.contains(absent), "{absent} in the export");
    }
    let (again, _) = export(&app, fp, &period).await;
    assert_eq!(again, text, "stable pseudonyms");
    let tomorrow = today.succ_opt().unwrap();
    let (_, later) = export(&app, fp, &format!("from={tomorrow}&to={tomorrow}")).await;
    assert_eq!(later.len(), 1, "another period: the header only");

    // The focal point's coordinators only; bad periods are problem+json; it is audited.
    expect_problem(
        app.get(&format!("/api/v1/exports/htcds?{period}"), &a.fier_caseworker)
            .await,
        403,
    )
    .await;
    let problem = expect_problem(
        app.get(&format!("/api/v1/exports/htcds?from={today}&to=2001-01-01"), fp)
            .await,
        422,
    )
    .await;
    assert_eq!(problem["errors"][0]["field"], "to");
    let audit: Value = app
        .get("/api/v1/audit?action=export.htcds", fp)
        .await
        .json()
        .await
        .unwrap();
    let outcomes: Vec<&str> = audit["items"]
        .as_array()
        .unwrap()
        .iter()
        .inspect(|e| assert_eq!(e["actor_sub"], "coord-femke"))
        .map(|e| e["outcome"].as_str().unwrap())
        .collect();
    let wanted = format!("{today}..{today} rows=4");
    assert_eq!(outcomes.iter().filter(|o| **o == wanted).count(), 2, "{outcomes:?}");
}
api_test!(a_period_in_htcds_fields);
