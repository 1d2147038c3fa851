//! Who sees what: every route of the OpenAPI document × organisations × roles (none, each,
//! several), against the rules of `docs/privacy.md` §2 written out here independently of the
//! code. A route added to the document without an entry here fails the test.

use std::collections::BTreeSet;

use serde_json::{Value, json};

use crate::api_test;
use crate::helpers::{TestApp, adult_case};

/// What a principal should get from a probe.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Expect {
    /// Past every access check: a success, or a refusal about the resource's state or the
    /// request (409, 412, 422), never 401, 403 or 404.
    Allowed,
    /// 403: the caller may know the resource but lacks the role.
    Forbidden,
    /// 404: the caller may not learn that the resource exists.
    Hidden,
}

use Expect::{Allowed, Forbidden, Hidden};

const ORGS: [&str; 6] = ["fier", "csg", "slachtofferhulp", "comensha", "police", "offlimits"];
const ROLE_SETS: [&[&str]; 7] = [
    &[],
    &["caseworker"],
    &["intake"],
    &["coordinator"],
    &["admin"],
    &["intake", "coordinator"],
    &["caseworker", "intake", "coordinator", "admin"],
];
/// The investigator invited to the conversation: every police principal carries this `sub`.
const OFFICER: &str = "rechercheur-hans";

#[derive(Debug, Clone, Copy)]
struct Who {
    org: &'static str,
    roles: &'static [&'static str],
}

impl Who {
    fn has(&self, role: &str) -> bool {
        self.roles.contains(&role)
    }
    fn any(&self, roles: &[&str]) -> bool {
        roles.iter().any(|r| self.has(r))
    }
    fn is(&self, org: &str) -> bool {
        self.org == org
    }
    fn fp_coordinator(&self) -> bool {
        self.is("comensha") && self.has("coordinator")
    }
    fn sub(&self) -> String {
        if self.is("police") {
            OFFICER.to_string()
        } else {
            format!("m-{}-{}", self.org, self.roles.join("+"))
        }
    }
}

fn when(condition: bool, then: Expect, otherwise: Expect) -> Expect {
    if condition { then } else { otherwise }
}

/// Owner-only case actions: the owning organisation's staff with `roles`, 403 for its other
/// staff, 404 for everyone else (receivers and the focal point included).
fn owner_action(w: Who, roles: &[&str]) -> Expect {
    match (w.is("fier"), w.any(roles)) {
        (true, true) => Allowed,
        (true, false) => Forbidden,
        _ => Hidden,
    }
}

struct Fixture {
    case: String,
    erasable: String,
    consent: String,
    submitted: Value,
    draft: Value,
    conversation: Value,
    message: String,
    /// A webhook subscription of csg, and a second one for the delete probe.
    webhook: String,
    deletable_webhook: String,
}

async fn fixture(app: &TestApp) -> Fixture {
    let a = app.actors();
    let case = app.create_case(&a.fier_caseworker, &adult_case()).await;
    let id = case["id"].as_str().unwrap().to_string();
    app.reasonable_grounds(&a.fier_caseworker, &id).await;
    app.consent(&a.fier_caseworker, &id, "referral", "csg").await;
    app.consent(&a.fier_caseworker, &id, "police_contact", "police").await;
    let consent = app.consent(&a.fier_caseworker, &id, "data_sharing", "offlimits").await;
    let draft = app
        .draft_referral(&a.fier_caseworker, &id, "csg", &["acute_sexual_violence_care"])
        .await;
    let submitted = app.step(&a.fier_caseworker, &draft, json!({"action": "submit"})).await;
    let draft = app
        .draft_referral(&a.fier_caseworker, &id, "slachtofferhulp", &["practical_support"])
        .await;
    let offered = app
        .post_ok(
            &format!("/api/v1/cases/{id}/three-way-conversations"),
            &a.fier_caseworker,
            &json!({}),
            201,
        )
        .await;
    let response = app
        .client
        .post(app.url(&format!(
            "/api/v1/three-way-conversations/{}/transitions",
            offered["id"].as_str().unwrap()
        )))
        .bearer_auth(&a.fier_caseworker)
        .header("If-Match", "\"1\"")
        .json(&json!({"action": "schedule", "police_officer": OFFICER, "scheduled_for": "2025-03-01T14:00:00Z"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let conversation: Value = response.json().await.unwrap();
    let erasable = app.create_case(&a.fier_caseworker, &adult_case()).await;
    let ops = app.token("ops", "comensha", &["admin"]);
    let outbox: Value = app.get("/api/v1/admin/outbox", &ops).await.json().await.unwrap();
    let message = outbox["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["recipient_org"] == "csg")
        .expect("the submit notice to csg")["id"]
        .as_str()
        .unwrap()
        .to_string();
    let csg_admin = app.token("m-csg-admin", "csg", &["admin"]);
    let subscribe = json!({"url": "https://hooks.csg.example/nrm", "event_types": ["referral.received"]});
    let webhook = app.post_ok("/api/v1/webhooks", &csg_admin, &subscribe, 201).await;
    let deletable = app.post_ok("/api/v1/webhooks", &csg_admin, &subscribe, 201).await;
    Fixture {
        webhook: webhook["id"].as_str().unwrap().to_string(),
        deletable_webhook: deletable["id"].as_str().unwrap().to_string(),
        case: id,
        erasable: erasable["id"].as_str().unwrap().to_string(),
        consent: consent["id"].as_str().unwrap().to_string(),
        submitted,
        draft,
        conversation,
        message,
    }
}

/// One request to try, and who should get through.
struct Probe {
    method: &'static str,
    /// The route as the OpenAPI document names it.
    route: &'static str,
    /// The concrete path (with query) to call.
    path: String,
    body: Option<Value>,
    if_match: Option<&'static str>,
    expect: fn(Who) -> Expect,
}

fn probes(f: &Fixture) -> Vec<Probe> {
    let case = &f.case;
    let submitted = f.submitted["id"].as_str().unwrap();
    let draft = f.draft["id"].as_str().unwrap();
    let conversation = f.conversation["id"].as_str().unwrap();
    let p = |method, route, path: String, body: Option<Value>, if_match, expect| Probe {
        method,
        route,
        path,
        body,
        if_match,
        expect,
    };
    vec![
        p("GET", "/health/live", "/health/live".into(), None, None, |_| Allowed),
        p("GET", "/health/ready", "/health/ready".into(), None, None, |_| Allowed),
        p(
            "GET",
            "/api/v1/openapi.json",
            "/api/v1/openapi.json".into(),
            None,
            None,
            |_| Allowed,
        ),
        p(
            "GET",
            "/api/v1/organisations",
            "/api/v1/organisations".into(),
            None,
            None,
            |_| Allowed,
        ),
        p(
            "GET",
            "/api/v1/organisations/{slug}",
            "/api/v1/organisations/csg".into(),
            None,
            None,
            |_| Allowed,
        ),
        p(
            "PUT",
            "/api/v1/organisations/{slug}/capacity",
            "/api/v1/organisations/csg/capacity".into(),
            Some(json!({})),
            None,
            |w| when(w.is("csg") && w.any(&["intake", "admin"]), Allowed, Forbidden),
        ),
        p(
            "POST",
            "/api/v1/cases",
            "/api/v1/cases".into(),
            Some(adult_case()),
            None,
            |w| when(w.has("caseworker"), Allowed, Forbidden),
        ),
        p("GET", "/api/v1/cases", "/api/v1/cases".into(), None, None, |w| {
            when(w.any(&["caseworker", "admin"]), Allowed, Forbidden)
        }),
        p(
            "POST",
            "/api/v1/cases/search",
            "/api/v1/cases/search".into(),
            Some(json!({"name": "Niemand Bekend"})),
            None,
            |w| when(w.any(&["caseworker", "admin"]), Allowed, Forbidden),
        ),
        p(
            "GET",
            "/api/v1/cases/{id}",
            format!("/api/v1/cases/{case}"),
            None,
            None,
            |w| {
                if (w.is("fier") && w.any(&["caseworker", "admin"]))
                    || w.fp_coordinator()
                    || (w.is("csg") && w.any(&["intake", "caseworker"]))
                {
                    Allowed
                } else if w.is("fier") || w.is("csg") {
                    Forbidden
                } else {
                    Hidden
                }
            },
        ),
        p(
            "PATCH",
            "/api/v1/cases/{id}",
            format!("/api/v1/cases/{case}"),
            Some(json!({"language": "nl"})),
            Some("\"0\""),
            |w| owner_action(w, &["caseworker"]),
        ),
        p(
            "POST",
            "/api/v1/cases/{id}/identification",
            format!("/api/v1/cases/{case}/identification"),
            Some(json!({"decision": "identified", "basis": "Besluit van het focal point"})),
            None,
            // The focal point decides; the owner's caseworkers may use the route for
            // reasonable grounds only, so `identified` is refused to them with 403.
            |w| {
                if w.fp_coordinator() {
                    Allowed
                } else if w.is("fier") {
                    Forbidden
                } else {
                    Hidden
                }
            },
        ),
        p(
            "GET",
            "/api/v1/cases/{id}/consents",
            format!("/api/v1/cases/{case}/consents"),
            None,
            None,
            |w| owner_action(w, &["caseworker"]),
        ),
        p(
            "POST",
            "/api/v1/cases/{id}/consents",
            format!("/api/v1/cases/{case}/consents"),
            Some(
                json!({"scope": "data_sharing", "organisation": "csg", "given_by": "victim", "method": "chat", "information_language": "nl"}),
            ),
            None,
            |w| owner_action(w, &["caseworker"]),
        ),
        p(
            "POST",
            "/api/v1/cases/{id}/consents/{consent_id}/withdraw",
            format!("/api/v1/cases/{case}/consents/{}/withdraw", f.consent),
            None,
            None,
            |w| owner_action(w, &["caseworker"]),
        ),
        p(
            "POST",
            "/api/v1/cases/{id}/legal-basis",
            format!("/api/v1/cases/{case}/legal-basis"),
            Some(json!({"basis": "child_protection", "justification": "Toets"})),
            None,
            |w| owner_action(w, &["caseworker"]),
        ),
        p(
            "POST",
            "/api/v1/cases/{id}/anonymous-notification",
            format!("/api/v1/cases/{case}/anonymous-notification"),
            Some(json!({})),
            None,
            |w| owner_action(w, &["caseworker"]),
        ),
        p(
            "GET",
            "/api/v1/cases/{id}/routing",
            format!("/api/v1/cases/{case}/routing"),
            None,
            None,
            |w| owner_action(w, &["caseworker"]),
        ),
        p(
            "POST",
            "/api/v1/cases/{id}/referrals",
            format!("/api/v1/cases/{case}/referrals"),
            Some(json!({"to_organisation": "offlimits", "services": ["image_removal"], "urgency": "routine"})),
            None,
            |w| owner_action(w, &["caseworker"]),
        ),
        p(
            "GET",
            "/api/v1/cases/{id}/three-way-conversations",
            format!("/api/v1/cases/{case}/three-way-conversations"),
            None,
            None,
            |w| owner_action(w, &["caseworker"]),
        ),
        p(
            "POST",
            "/api/v1/cases/{id}/three-way-conversations",
            format!("/api/v1/cases/{case}/three-way-conversations"),
            Some(json!({})),
            None,
            |w| owner_action(w, &["caseworker"]),
        ),
        p(
            "GET",
            "/api/v1/cases/{id}/disclosures",
            format!("/api/v1/cases/{case}/disclosures"),
            None,
            None,
            |w| owner_action(w, &["caseworker", "admin"]),
        ),
        p(
            "GET",
            "/api/v1/cases/{id}/export",
            format!("/api/v1/cases/{case}/export"),
            None,
            None,
            |w| owner_action(w, &["caseworker", "admin"]),
        ),
        p(
            "POST",
            "/api/v1/cases/{id}/close",
            format!("/api/v1/cases/{case}/close"),
            Some(json!({"reason_code": "support_completed"})),
            None,
            |w| owner_action(w, &["caseworker", "admin"]),
        ),
        p(
            "POST",
            "/api/v1/cases/{id}/erase",
            format!("/api/v1/cases/{}/erase", f.erasable),
            Some(json!({"reason": "data_subject_request"})),
            None,
            |w| owner_action(w, &["admin"]),
        ),
        p(
            "GET",
            "/api/v1/referrals",
            "/api/v1/referrals?direction=incoming".into(),
            None,
            None,
            |w| when(w.any(&["caseworker", "intake", "admin"]), Allowed, Forbidden),
        ),
        p(
            "GET",
            "/api/v1/referrals",
            "/api/v1/referrals?direction=outgoing".into(),
            None,
            None,
            |w| when(w.any(&["caseworker", "intake", "admin"]), Allowed, Forbidden),
        ),
        p(
            "GET",
            "/api/v1/referrals/{id}",
            format!("/api/v1/referrals/{submitted}"),
            None,
            None,
            |w| match (w.is("fier") || w.is("csg"), w.any(&["caseworker", "intake", "admin"])) {
                (true, true) => Allowed,
                (true, false) => Forbidden,
                _ => Hidden,
            },
        ),
        p(
            "GET",
            "/api/v1/referrals/{id}",
            format!("/api/v1/referrals/{draft}"),
            None,
            None,
            // A draft is the sender's alone: the would-be receiver cannot see it.
            |w| match (w.is("fier"), w.any(&["caseworker", "intake", "admin"])) {
                (true, true) => Allowed,
                (true, false) => Forbidden,
                _ => Hidden,
            },
        ),
        p(
            "POST",
            "/api/v1/referrals/{id}/transitions",
            format!("/api/v1/referrals/{submitted}/transitions"),
            Some(json!({"action": "acknowledge"})),
            Some("\"0\""),
            |w| {
                if (w.is("fier") && w.has("caseworker")) || (w.is("csg") && w.has("intake")) {
                    Allowed
                } else if w.is("fier") || w.is("csg") {
                    Forbidden
                } else {
                    Hidden
                }
            },
        ),
        p(
            "PUT",
            "/api/v1/referrals/{id}/assignee",
            format!("/api/v1/referrals/{submitted}/assignee"),
            Some(json!({"assigned_to": null})),
            Some("\"0\""),
            // The receiver's intake staff divide its work; the sender may see, not assign.
            |w| {
                if w.is("csg") && w.has("intake") {
                    Allowed
                } else if w.is("fier") || w.is("csg") {
                    Forbidden
                } else {
                    Hidden
                }
            },
        ),
        p(
            "GET",
            "/api/v1/three-way-conversations",
            "/api/v1/three-way-conversations".into(),
            None,
            None,
            |w| when(w.any(&["intake", "caseworker"]), Allowed, Forbidden),
        ),
        p(
            "GET",
            "/api/v1/three-way-conversations/{id}",
            format!("/api/v1/three-way-conversations/{conversation}"),
            None,
            None,
            |w| {
                if (w.is("fier") && w.has("caseworker")) || (w.is("police") && w.any(&["intake", "caseworker"])) {
                    Allowed
                } else if w.is("fier") || w.is("police") {
                    Forbidden
                } else {
                    Hidden
                }
            },
        ),
        p(
            "POST",
            "/api/v1/three-way-conversations/{id}/transitions",
            format!("/api/v1/three-way-conversations/{conversation}/transitions"),
            Some(json!({"action": "hold"})),
            Some("\"0\""),
            |w| {
                if w.is("fier") && w.has("caseworker") {
                    Allowed
                } else if w.is("fier") || w.is("police") {
                    Forbidden
                } else {
                    Hidden
                }
            },
        ),
        p(
            "GET",
            "/api/v1/anonymous-notifications",
            "/api/v1/anonymous-notifications".into(),
            None,
            None,
            |w| when(w.fp_coordinator(), Allowed, Forbidden),
        ),
        p("GET", "/api/v1/audit", "/api/v1/audit".into(), None, None, |w| {
            when(w.fp_coordinator(), Allowed, Forbidden)
        }),
        p(
            "GET",
            "/api/v1/audit/verify",
            "/api/v1/audit/verify".into(),
            None,
            None,
            |w| when(w.fp_coordinator(), Allowed, Forbidden),
        ),
        p(
            "GET",
            "/api/v1/oversight/flows",
            "/api/v1/oversight/flows?from=2020-01-01&to=2030-12-31".into(),
            None,
            None,
            |w| when(w.fp_coordinator(), Allowed, Forbidden),
        ),
        p(
            "GET",
            "/api/v1/stats/report",
            "/api/v1/stats/report?from=2024-01-01&to=2024-12-31".into(),
            None,
            None,
            |w| when(w.fp_coordinator(), Allowed, Forbidden),
        ),
        p(
            "GET",
            "/api/v1/stats/three-way-conversations",
            "/api/v1/stats/three-way-conversations?from=2024-01-01&to=2024-12-31".into(),
            None,
            None,
            |w| when(w.fp_coordinator(), Allowed, Forbidden),
        ),
        p(
            "GET",
            "/api/v1/stats/eu",
            "/api/v1/stats/eu?year=2024".into(),
            None,
            None,
            |w| when(w.fp_coordinator(), Allowed, Forbidden),
        ),
        p(
            "GET",
            "/api/v1/exports/htcds",
            "/api/v1/exports/htcds?from=2024-01-01&to=2024-12-31".into(),
            None,
            None,
            |w| when(w.fp_coordinator(), Allowed, Forbidden),
        ),
        p(
            "GET",
            "/api/v1/admin/outbox",
            "/api/v1/admin/outbox".into(),
            None,
            None,
            |w| when(w.has("admin"), Allowed, Forbidden),
        ),
        p(
            "POST",
            "/api/v1/admin/outbox/{id}/retry",
            format!("/api/v1/admin/outbox/{}/retry", f.message),
            None,
            None,
            // A message to csg: its admins, and the focal point's, who see every outbox.
            |w| match (w.has("admin"), w.is("csg") || w.is("comensha")) {
                (true, true) => Allowed,
                (true, false) => Hidden,
                (false, _) => Forbidden,
            },
        ),
        // The FHIR view reads exactly as the referral routes do.
        p(
            "GET",
            "/fhir/Task/{id}",
            format!("/fhir/Task/{submitted}"),
            None,
            None,
            |w| match (w.is("fier") || w.is("csg"), w.any(&["caseworker", "intake", "admin"])) {
                (true, true) => Allowed,
                (true, false) => Forbidden,
                _ => Hidden,
            },
        ),
        p(
            "GET",
            "/fhir/Task",
            "/fhir/Task?status=requested".into(),
            None,
            None,
            |w| when(w.any(&["caseworker", "intake", "admin"]), Allowed, Forbidden),
        ),
        p(
            "POST",
            "/api/v1/webhooks",
            "/api/v1/webhooks".into(),
            Some(json!({"url": "https://hooks.example.org/nrm", "event_types": ["referral.accepted"]})),
            None,
            |w| when(w.has("admin"), Allowed, Forbidden),
        ),
        p("GET", "/api/v1/webhooks", "/api/v1/webhooks".into(), None, None, |w| {
            when(w.has("admin"), Allowed, Forbidden)
        }),
        // One organisation's subscription: its own admins; not even the focal point's see it.
        p(
            "GET",
            "/api/v1/webhooks/{id}",
            format!("/api/v1/webhooks/{}", f.webhook),
            None,
            None,
            csg_admins,
        ),
        p(
            "GET",
            "/api/v1/webhooks/{id}/deliveries",
            format!("/api/v1/webhooks/{}/deliveries", f.webhook),
            None,
            None,
            csg_admins,
        ),
        p(
            "POST",
            "/api/v1/webhooks/{id}/rotate-secret",
            format!("/api/v1/webhooks/{}/rotate-secret", f.webhook),
            Some(json!({"overlap_seconds": 3600})),
            None,
            csg_admins,
        ),
        p(
            "POST",
            "/api/v1/webhooks/{id}/pause",
            format!("/api/v1/webhooks/{}/pause", f.webhook),
            None,
            None,
            csg_admins,
        ),
        p(
            "POST",
            "/api/v1/webhooks/{id}/resume",
            format!("/api/v1/webhooks/{}/resume", f.webhook),
            None,
            None,
            csg_admins,
        ),
        p(
            "DELETE",
            "/api/v1/webhooks/{id}",
            format!("/api/v1/webhooks/{}", f.deletable_webhook),
            None,
            None,
            csg_admins,
        ),
    ]
}

fn csg_admins(w: Who) -> Expect {
    match (w.is("csg"), w.has("admin")) {
        (true, true) => Allowed,
        (true, false) => Forbidden,
        _ => Hidden,
    }
}

fn classify(status: u16) -> Option<Expect> {
    match status {
        200..=299 | 409 | 412 | 422 | 428 => Some(Allowed),
        403 => Some(Forbidden),
        404 => Some(Hidden),
        _ => None,
    }
}

/// What the list routes show an allowed principal: only their own organisation's
/// referrals, no one else's drafts.
fn check_referral_list(who: Who, path: &str, body: &Value) {
    for item in body["items"].as_array().unwrap() {
        if path.ends_with("incoming") {
            assert_eq!(item["to_organisation"], who.org, "{path} as {who:?}: {item}");
            assert_ne!(
                item["state"], "draft",
                "{path} as {who:?}: a draft is the sender's alone"
            );
        } else {
            assert_eq!(item["from_organisation"], who.org, "{path} as {who:?}: {item}");
        }
    }
}

async fn every_route_checks_who_may_see_and_do_what(app: TestApp) {
    let fixture = fixture(&app).await;
    let probes = probes(&fixture);

    // Every route of the served document has a probe, and every probe a route.
    let document: Value = app
        .client
        .get(app.url("/api/v1/openapi.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let mut documented = BTreeSet::new();
    for (path, item) in document["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            documented.insert((method.to_uppercase(), path.clone()));
        }
    }
    let probed: BTreeSet<(String, String)> = probes
        .iter()
        .map(|p| (p.method.to_string(), p.route.to_string()))
        .collect();
    assert_eq!(
        documented, probed,
        "every documented route needs its row in this matrix (and no row may name a route that is gone)"
    );

    let mut failures = Vec::new();
    let mut allowed_somewhere = BTreeSet::new();
    for probe in &probes {
        for org in ORGS {
            for roles in ROLE_SETS {
                let who = Who { org, roles };
                let token = app.token(&who.sub(), org, roles);
                let mut request = match probe.method {
                    "GET" => app.client.get(app.url(&probe.path)),
                    "POST" => app.client.post(app.url(&probe.path)),
                    "PATCH" => app.client.patch(app.url(&probe.path)),
                    "PUT" => app.client.put(app.url(&probe.path)),
                    "DELETE" => app.client.delete(app.url(&probe.path)),
                    other => panic!("no probe for method {other}"),
                }
                .bearer_auth(&token);
                if let Some(body) = &probe.body {
                    request = request.json(body);
                } else if probe.method != "GET" && probe.method != "DELETE" {
                    request = request.json(&json!({}));
                }
                if let Some(tag) = probe.if_match {
                    request = request.header("If-Match", tag);
                }
                let response = request.send().await.unwrap();
                let status = response.status().as_u16();
                let body: Value = response.json().await.unwrap_or(Value::Null);
                let expected = (probe.expect)(who);
                let got = classify(status);
                if got != Some(expected) {
                    failures.push(format!(
                        "{} {} as {org} {roles:?}: expected {expected:?}, got {status} {body}",
                        probe.method, probe.path
                    ));
                    continue;
                }
                if expected == Allowed {
                    allowed_somewhere.insert(probe.route);
                    if probe.route == "/api/v1/referrals" {
                        check_referral_list(who, &probe.path, &body);
                    }
                    if probe.route == "/api/v1/cases/{id}" && body["access"] == "focal_point" {
                        assert!(
                            body.get("pseudonym").is_none(),
                            "the focal point never sees the pseudonym"
                        );
                    }
                }
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} mismatches:\n{}",
        failures.len(),
        failures.join("\n")
    );
    for probe in &probes {
        assert!(
            allowed_somewhere.contains(probe.route),
            "{} {}: nobody got through, the probe tests nothing",
            probe.method,
            probe.route
        );
    }
}
api_test!(every_route_checks_who_may_see_and_do_what);
