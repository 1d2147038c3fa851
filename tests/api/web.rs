//! The web pages over HTTP, as a browser without JavaScript uses them: cookies, forms,
//! redirects. The whole handover as a Fier caseworker and a CSG intake worker; refusals
//! without a session or CSRF token; stale forms; what other organisations do not see;
//! session timeouts and sign-out; language.

use std::collections::BTreeMap;

use chrono::{Datelike, Duration};
use serde_json::{Value, json};

use nrm::clock::Clock;

use crate::api_test;
use crate::helpers::TestApp;

/// A browser: keeps cookies, follows no redirect by itself.
struct Browser<'a> {
    app: &'a TestApp,
    client: reqwest::Client,
    cookies: BTreeMap<String, String>,
    accept_language: Option<&'static str>,
}

struct Page {
    status: u16,
    headers: reqwest::header::HeaderMap,
    body: String,
}

impl Page {
    fn location(&self) -> &str {
        self.headers.get("location").and_then(|v| v.to_str().ok()).unwrap_or("")
    }

    /// The value of the first hidden input `name` (`csrf_token`, `version`, `form_id`).
    fn hidden(&self, name: &str) -> String {
        let marker = format!("name=\"{name}\" value=\"");
        let start = self
            .body
            .find(&marker)
            .unwrap_or_else(|| panic!("no {name} in:\n{}", self.body))
            + marker.len();
        self.body[start..].split('"').next().unwrap().to_string()
    }

    fn has(&self, text: &str) -> bool {
        self.body.contains(text)
    }

    /// The first link whose href starts with `prefix`.
    fn link(&self, prefix: &str) -> String {
        let marker = format!("href=\"{prefix}");
        let start = self
            .body
            .find(&marker)
            .unwrap_or_else(|| panic!("no link {prefix} in:\n{}", self.body))
            + 6;
        self.body[start..]
            .split('"')
            .next()
            .unwrap()
            .replace("&#38;", "&")
            .replace("&amp;", "&")
    }
}

impl<'a> Browser<'a> {
    fn new(app: &'a TestApp) -> Self {
        Self {
            app,
            client: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
            cookies: BTreeMap::new(),
            accept_language: None,
        }
    }

    fn cookie_header(&self) -> String {
        self.cookies
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    async fn send(&mut self, request: reqwest::RequestBuilder) -> Page {
        let mut request = request
            .header("cookie", self.cookie_header())
            .header("accept", "text/html,application/xhtml+xml;q=0.9,*/*;q=0.8");
        if let Some(lang) = self.accept_language {
            request = request.header("accept-language", lang);
        }
        let response = request.send().await.unwrap();
        for set in response.headers().get_all("set-cookie") {
            let text = set.to_str().unwrap();
            let (pair, attributes) = text.split_once(';').unwrap_or((text, ""));
            let (name, value) = pair.split_once('=').unwrap();
            let removed = attributes.to_ascii_lowercase().contains("max-age=0") || value.is_empty();
            if removed {
                self.cookies.remove(name);
            } else {
                self.cookies.insert(name.to_string(), value.to_string());
            }
        }
        Page {
            status: response.status().as_u16(),
            headers: response.headers().clone(),
            body: response.text().await.unwrap(),
        }
    }

    async fn get(&mut self, path: &str) -> Page {
        let request = self.client.get(self.app.url(path));
        self.send(request).await
    }

    async fn post(&mut self, path: &str, form: &[(&str, &str)]) -> Page {
        let body: String = form_urlencoded::Serializer::new(String::new())
            .extend_pairs(form)
            .finish();
        let request = self
            .client
            .post(self.app.url(path))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body);
        self.send(request).await
    }

    /// Follows a 303 to the page it names.
    async fn follow(&mut self, page: Page) -> Page {
        assert_eq!(page.status, 303, "expected a redirect, got:\n{}", page.body);
        let location = page.location().to_string();
        self.get(&location).await
    }

    /// Signs in as a development persona (`fier:caseworker`), from the page `return_to`.
    async fn sign_in(&mut self, persona: &str) -> Page {
        let form = self.get("/sign-in").await;
        assert_eq!(form.status, 200);
        let token = form.hidden("csrf_token");
        let done = self
            .post(
                "/sign-in",
                &[("csrf_token", &token), ("persona", persona), ("return_to", "/")],
            )
            .await;
        assert_eq!(done.status, 303, "{}", done.body);
        assert!(self.cookies.contains_key("nrm_session"));
        done
    }

    fn csrf(page: &Page) -> String {
        page.hidden("csrf_token")
    }
}

fn assert_private(page: &Page) {
    assert_eq!(page.headers["cache-control"], "no-store");
    let csp = page.headers["content-security-policy"].to_str().unwrap();
    assert!(
        csp.contains("default-src 'none'") && !csp.contains("unsafe-inline"),
        "{csp}"
    );
    assert!(page.headers["content-type"].to_str().unwrap().starts_with("text/html"));
}

fn today(app: &TestApp) -> String {
    app.clock.now().date_naive().to_string()
}

/// Files a case through the form and returns the case page's path.
async fn file_case(browser: &mut Browser<'_>, pseudonym: &str) -> String {
    let form = browser.get("/cases/new").await;
    assert_eq!(form.status, 200, "{}", form.body);
    assert_private(&form);
    let csrf = Browser::csrf(&form);
    let form_id = form.hidden("form_id");
    let day = today(browser.app);
    let incident = (browser.app.clock.now() - Duration::days(2)).date_naive().to_string();
    let created = browser
        .post(
            "/cases",
            &[
                ("csrf_token", &csrf),
                ("form_id", &form_id),
                ("reporter_role", "victim"),
                ("contact_channel", "chat"),
                ("contact_date", &day),
                ("exploitation_forms", "sexual"),
                ("age_at_contact", "24"),
                ("pseudonym", pseudonym),
                ("region", "amsterdam"),
                ("last_incident_date", &incident),
                ("needs", "medical_care"),
            ],
        )
        .await;
    assert_eq!(created.status, 303, "{}", created.body);
    let location = created.location().to_string();
    assert!(location.starts_with("/cases/"), "{location}");
    location.split('?').next().unwrap().to_string()
}

async fn the_whole_handover_in_pages(app: TestApp) {
    let mut fier = Browser::new(&app);
    let landed = fier.sign_in("fier:caseworker").await;
    assert_eq!(landed.location(), "/");
    let home = fier.get("/").await;
    assert_eq!(home.location(), "/cases");

    let case_path = file_case(&mut fier, "zonnebloem88").await;
    let case = fier.get(&format!("{case_path}?done=case-created")).await;
    assert_eq!(case.status, 200, "{}", case.body);
    assert_private(&case);
    assert!(case.has("De casus is aangemaakt."));
    assert!(case.has("zonnebloem88"), "the owner sees the pseudonym");
    assert!(case.has("Centrum Seksueel Geweld"), "CSG is suggested:\n{}", case.body);

    // Reasonable grounds, then consent to refer to CSG.
    let csrf = Browser::csrf(&case);
    let grounds = fier
        .post(
            &format!("{case_path}/identification"),
            &[
                ("csrf_token", &csrf),
                ("decision", "reasonable_grounds"),
                ("basis", "Signalen in de chat."),
            ],
        )
        .await;
    let case = fier.follow(grounds).await;
    assert!(case.has("De redelijke gronden zijn vastgelegd."), "{}", case.body);
    let consent = fier
        .post(
            &format!("{case_path}/consents"),
            &[
                ("csrf_token", &csrf),
                ("form_id", &case.hidden("form_id")),
                ("scope", "referral"),
                ("organisation", "csg"),
                ("given_by", "victim"),
                ("method", "chat"),
                ("information_language", "nl"),
            ],
        )
        .await;
    let case = fier.follow(consent).await;
    assert!(case.has("De toestemming is vastgelegd."), "{}", case.body);

    // A referral from the suggestion: organisation and services preselected.
    let suggestion = case.link(&format!("{case_path}/referrals/new?to_organisation=csg"));
    let form = fier.get(&suggestion).await;
    assert_eq!(form.status, 200, "{}", form.body);
    assert!(form.has("value=\"csg\" selected"), "{}", form.body);
    assert!(
        form.has("value=\"acute_sexual_violence_care\" checked"),
        "{}",
        form.body
    );
    let drafted = fier
        .post(
            &format!("{case_path}/referrals"),
            &[
                ("csrf_token", &Browser::csrf(&form)),
                ("form_id", &form.hidden("form_id")),
                ("to_organisation", "csg"),
                ("services", "acute_sexual_violence_care"),
                ("urgency", "acute"),
                ("note", "Incident twee dagen geleden."),
            ],
        )
        .await;
    let referral_path = drafted.location().replace("?done=referral-drafted", "");
    assert!(referral_path.starts_with("/referrals/"), "{referral_path}");
    let referral = fier.follow(drafted).await;
    assert_eq!(referral.status, 200, "{}", referral.body);
    assert!(referral.has("Het concept is bewaard."));
    assert!(
        referral.has("Verwijzing indienen"),
        "only the sender's actions: {}",
        referral.body
    );
    assert!(!referral.has("Aannemen"));
    let submitted = fier
        .post(
            &format!("{referral_path}/transition"),
            &[
                ("csrf_token", &Browser::csrf(&referral)),
                ("version", &referral.hidden("version")),
                ("action", "submit"),
            ],
        )
        .await;
    let referral = fier.follow(submitted).await;
    assert!(referral.has("De stap is vastgelegd."), "{}", referral.body);
    assert!(referral.has("<strong>Ingediend</strong>"), "{}", referral.body);

    // CSG intake: the inbox with its deadline, then every step to the outcome.
    let mut csg = Browser::new(&app);
    csg.sign_in("csg:intake").await;
    assert_eq!(csg.get("/").await.location(), "/inbox");
    let inbox = csg.get("/inbox").await;
    assert_eq!(inbox.status, 200);
    assert_private(&inbox);
    assert!(inbox.has(&format!("href=\"{referral_path}\"")), "{}", inbox.body);
    assert!(
        inbox.has("nrm-badge--on-time") || inbox.has("nrm-badge--due-soon"),
        "{}",
        inbox.body
    );
    assert!(!inbox.has("zonnebloem88"), "no pseudonym in lists");
    let mut page = csg.get(&referral_path).await;
    for (action, extra) in [
        ("acknowledge", vec![]),
        ("accept", vec![]),
        ("start_care", vec![]),
        (
            "complete",
            vec![
                ("outcome_code", "support_provided"),
                ("outcome", "Acute zorg gegeven, nazorg gepland."),
            ],
        ),
    ] {
        let csrf = Browser::csrf(&page);
        let version = page.hidden("version");
        let mut form = vec![
            ("csrf_token", csrf.as_str()),
            ("version", version.as_str()),
            ("action", action),
        ];
        form.extend(extra);
        let done = csg.post(&format!("{referral_path}/transition"), &form).await;
        page = csg.follow(done).await;
        assert!(page.has("De stap is vastgelegd."), "{action}: {}", page.body);
    }
    assert!(page.has("<strong>Afgerond</strong>"), "{}", page.body);

    // Back as the Fier caseworker: the outcome and the history.
    let back = fier.get(&referral_path).await;
    assert!(
        back.has("Hulp geboden — Acute zorg gegeven, nazorg gepland."),
        "{}",
        back.body
    );
    for step in [
        "Ingediend",
        "Ontvangst bevestigd",
        "Aangenomen",
        "Zorg gestart",
        "Afgerond",
    ] {
        // The step's label alone, not "Ingediend: Ingediend".
        assert!(
            back.has(&format!("<strong>{step}</strong>")) && !back.has(&format!("<strong>{step}:")),
            "history has {step}: {}",
            back.body
        );
    }
    assert!(!back.has("name=\"action\""), "a completed referral offers no action");
}
api_test!(the_whole_handover_in_pages);

async fn pages_refuse_without_session_or_csrf_token(app: TestApp) {
    let mut anonymous = Browser::new(&app);
    let redirected = anonymous.get("/cases").await;
    assert_eq!(redirected.status, 303);
    assert_eq!(redirected.location(), "/sign-in?return_to=%2Fcases");
    let posted = anonymous.post("/cases", &[("reporter_role", "victim")]).await;
    assert_eq!(
        posted.status, 303,
        "a post without a session changes nothing and asks to sign in"
    );

    let mut fier = Browser::new(&app);
    fier.sign_in("fier:caseworker").await;
    let case_path = file_case(&mut fier, "anemoon").await;
    let count_cases = || async {
        let token = app.actors().fier_caseworker;
        let list: Value = app.get("/api/v1/cases", &token).await.json().await.unwrap();
        list["items"].as_array().unwrap().len()
    };
    assert_eq!(count_cases().await, 1);
    let day = today(&app);
    let case_form = [
        ("reporter_role", "victim"),
        ("contact_channel", "chat"),
        ("contact_date", day.as_str()),
        ("exploitation_forms", "sexual"),
    ];
    let without = fier.post("/cases", &case_form).await;
    assert_eq!(without.status, 403);
    assert_private(&without);
    assert!(without.has("Formulier verlopen"), "{}", without.body);
    let mut forged = case_form.to_vec();
    forged.push(("csrf_token", "forged"));
    assert_eq!(fier.post("/cases", &forged).await.status, 403);
    assert_eq!(count_cases().await, 1, "nothing was created");
    // Another session's token does not do either.
    let mut other = Browser::new(&app);
    other.sign_in("fier:caseworker").await;
    let other_token = Browser::csrf(&other.get("/cases/new").await);
    let mut crossed = case_form.to_vec();
    crossed.push(("csrf_token", &other_token));
    assert_eq!(fier.post("/cases", &crossed).await.status, 403);
    assert_eq!(count_cases().await, 1);
    // The sign-in form needs its token too.
    let mut fresh = Browser::new(&app);
    let signed = fresh.post("/sign-in", &[("persona", "fier:caseworker")]).await;
    assert_eq!(signed.status, 403);
    assert!(!fresh.cookies.contains_key("nrm_session"));
    // A case page is there for its owner only after sign-in.
    assert_eq!(fier.get(&case_path).await.status, 200);
}
api_test!(pages_refuse_without_session_or_csrf_token);

async fn a_stale_form_applies_nothing_and_shows_the_current_state(app: TestApp) {
    let (_, referral) = app.submitted_referral("csg", &["acute_sexual_violence_care"]).await;
    let path = format!("/referrals/{}", referral["id"].as_str().unwrap());
    let mut first = Browser::new(&app);
    first.sign_in("csg:intake").await;
    let mut second = Browser::new(&app);
    second.sign_in("csg:intake").await;
    let seen_by_first = first.get(&path).await;
    let seen_by_second = second.get(&path).await;
    let post = |page: &Page, action: &str| {
        vec![
            ("csrf_token".to_string(), Browser::csrf(page)),
            ("version".to_string(), page.hidden("version")),
            ("action".to_string(), action.to_string()),
        ]
    };
    let pairs = post(&seen_by_first, "acknowledge");
    let pairs: Vec<(&str, &str)> = pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let done = first.post(&format!("{path}/transition"), &pairs).await;
    assert_eq!(done.status, 303);
    let pairs = post(&seen_by_second, "acknowledge");
    let pairs: Vec<(&str, &str)> = pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let stale = second.post(&format!("{path}/transition"), &pairs).await;
    assert_eq!(stale.status, 409, "{}", stale.body);
    assert!(
        stale.has("Iemand anders heeft deze verwijzing intussen gewijzigd"),
        "{}",
        stale.body
    );
    assert!(
        stale.has("<strong>Ontvangen</strong>"),
        "the current state: {}",
        stale.body
    );
    let token = app.actors().csg_intake;
    let now: Value = app.get(&format!("/api/v1{path}"), &token).await.json().await.unwrap();
    let acknowledged = now["history"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|h| h["action"] == "acknowledge")
        .count();
    assert_eq!(acknowledged, 1, "applied once");
}
api_test!(a_stale_form_applies_nothing_and_shows_the_current_state);

async fn other_organisations_and_the_police_see_nothing(app: TestApp) {
    let (case, referral) = app.submitted_referral("csg", &["acute_sexual_violence_care"]).await;
    let case_path = format!("/cases/{}", case["id"].as_str().unwrap());
    let referral_path = format!("/referrals/{}", referral["id"].as_str().unwrap());
    for persona in ["slachtofferhulp:caseworker", "police:intake", "offlimits:intake"] {
        let mut stranger = Browser::new(&app);
        stranger.sign_in(persona).await;
        for path in [&case_path, &referral_path] {
            let page = stranger.get(path).await;
            assert_eq!(page.status, 404, "{persona} {path}: {}", page.body);
            assert!(!page.has("zonnebloem88"));
        }
        let inbox = stranger.get("/inbox").await;
        assert!(!inbox.has(&referral_path), "{persona}'s inbox");
    }
    // The receiver sees the referral, but not the sender's case page.
    let mut csg = Browser::new(&app);
    csg.sign_in("csg:intake").await;
    assert_eq!(csg.get(&referral_path).await.status, 200);
    assert_eq!(
        csg.get(&case_path).await.status,
        404,
        "the sender's case page is not the receiver's"
    );
    // Lists show no pseudonym, even to the owner.
    let mut fier = Browser::new(&app);
    fier.sign_in("fier:caseworker").await;
    let list = fier.get("/cases").await;
    assert!(list.has(&format!("href=\"{case_path}\"")), "{}", list.body);
    assert!(!list.has("zonnebloem88"));
    // Page titles and URLs carry no personal data.
    let page = fier.get(&case_path).await;
    let title = page
        .body
        .split("<title>")
        .nth(1)
        .unwrap()
        .split("</title>")
        .next()
        .unwrap();
    assert!(!title.contains("zonnebloem88"), "{title}");
}
api_test!(other_organisations_and_the_police_see_nothing);

async fn a_known_pseudonym_is_shown_before_another_case_is_made(app: TestApp) {
    let mut fier = Browser::new(&app);
    fier.sign_in("fier:caseworker").await;
    let first = file_case(&mut fier, "Zonnebloem88").await;
    let form = fier.get("/cases/new").await;
    let day = today(&app);
    let mut pairs = vec![
        ("csrf_token".to_string(), Browser::csrf(&form)),
        ("form_id".to_string(), form.hidden("form_id")),
        ("reporter_role".to_string(), "victim".to_string()),
        ("contact_channel".to_string(), "chat".to_string()),
        ("contact_date".to_string(), day),
        ("exploitation_forms".to_string(), "criminal".to_string()),
        // The same pseudonym, another case and width: the caseless form matches.
        ("pseudonym".to_string(), "ZONNEBLOEM88".to_string()),
    ];
    let borrowed: Vec<(&str, &str)> = pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let warned = fier.post("/cases", &borrowed).await;
    assert_eq!(warned.status, 200, "{}", warned.body);
    assert!(warned.has("Dit pseudoniem is al bekend"), "{}", warned.body);
    assert!(warned.has(&format!("href=\"{first}\"")));
    // Another organisation's cases are not searched.
    let mut shn = Browser::new(&app);
    shn.sign_in("slachtofferhulp:caseworker").await;
    let other = file_case(&mut shn, "zonnebloem88").await;
    assert!(other.starts_with("/cases/"), "no warning across organisations");
    // Creating anyway, once.
    pairs.push(("duplicate_checked".into(), "true".into()));
    pairs.retain(|(k, _)| k != "form_id");
    pairs.push(("form_id".into(), warned.hidden("form_id")));
    let borrowed: Vec<(&str, &str)> = pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let created = fier.post("/cases", &borrowed).await;
    assert_eq!(created.status, 303, "{}", created.body);
    let again = fier.post("/cases", &borrowed).await;
    assert_eq!(again.location(), created.location(), "a double click makes one case");
}
api_test!(a_known_pseudonym_is_shown_before_another_case_is_made);

async fn form_problems_are_listed_and_tied_to_their_fields(app: TestApp) {
    let mut fier = Browser::new(&app);
    fier.sign_in("fier:caseworker").await;
    let form = fier.get("/cases/new").await;
    let page = fier
        .post(
            "/cases",
            &[
                ("csrf_token", &Browser::csrf(&form)),
                ("contact_date", "2999-01-01"),
                ("age_at_contact", "twelve"),
            ],
        )
        .await;
    assert_eq!(page.status, 422, "{}", page.body);
    assert!(page.has("Er is een probleem"));
    for field in [
        "reporter_role",
        "contact_channel",
        "contact_date",
        "exploitation_forms",
        "age_at_contact",
    ] {
        assert!(
            page.has(&format!("href=\"#field-{field}\"")),
            "summary links {field}: {}",
            page.body
        );
        assert!(page.has(&format!("id=\"error-{field}\"")), "message beside {field}");
    }
    assert!(page.has("Vul een datum in, niet in de toekomst"), "{}", page.body);
    assert!(page.has("value=\"twelve\""), "what was typed is kept");
}
api_test!(form_problems_are_listed_and_tied_to_their_fields);

async fn sessions_end_when_idle_too_long_after_eight_hours_and_at_sign_out(app: TestApp) {
    let mut fier = Browser::new(&app);
    fier.sign_in("fier:caseworker").await;
    assert_eq!(fier.get("/cases").await.status, 200);
    app.clock.advance(Duration::minutes(14));
    assert_eq!(fier.get("/cases").await.status, 200, "within the idle timeout");
    app.clock.advance(Duration::minutes(16));
    let expired = fier.get("/cases").await;
    assert_eq!(expired.status, 303, "idle for 16 minutes");
    assert!(expired.location().starts_with("/sign-in"));

    let mut busy = Browser::new(&app);
    busy.sign_in("fier:caseworker").await;
    for _ in 0..40 {
        app.clock.advance(Duration::minutes(14));
        if busy.get("/cases").await.status != 200 {
            break;
        }
    }
    assert_eq!(busy.get("/cases").await.status, 303, "ended 8 hours after sign-in");

    let mut leaving = Browser::new(&app);
    leaving.sign_in("fier:caseworker").await;
    let page = leaving.get("/cases").await;
    let secret = leaving.cookies["nrm_session"].clone();
    let out = leaving
        .post("/sign-out", &[("csrf_token", &Browser::csrf(&page))])
        .await;
    assert_eq!(out.location(), "/sign-in");
    let mut replay = Browser::new(&app);
    replay.cookies.insert("nrm_session".into(), secret);
    assert_eq!(
        replay.get("/cases").await.status,
        303,
        "the session ended in the database"
    );

    // Signing in again makes a new session id.
    let mut again = Browser::new(&app);
    again.sign_in("fier:caseworker").await;
    let before = again.cookies["nrm_session"].clone();
    again.sign_in("fier:intake").await;
    assert_ne!(again.cookies["nrm_session"], before);
    let mut old = Browser::new(&app);
    old.cookies.insert("nrm_session".into(), before);
    assert_eq!(
        old.get("/cases").await.status,
        303,
        "the session before sign-in is gone"
    );
}
api_test!(sessions_end_when_idle_too_long_after_eight_hours_and_at_sign_out);

async fn dutch_first_english_on_request(app: TestApp) {
    let mut browser = Browser::new(&app);
    let dutch = browser.get("/sign-in").await;
    assert!(dutch.has("<html lang=\"nl\""));
    assert!(dutch.has("Aanmelden"));
    browser.accept_language = Some("en-GB,en;q=0.9");
    let english = browser.get("/sign-in").await;
    assert!(english.has("<html lang=\"en\""));
    assert!(english.has("Sign in"));
    browser.accept_language = None;
    let switched = browser.get("/language/en?return_to=%2Fsign-in").await;
    assert_eq!(switched.location(), "/sign-in");
    assert!(browser.get("/sign-in").await.has("<html lang=\"en\""));
    let outside = browser
        .get("/language/nl?return_to=https%3A%2F%2Fevil.example%2F")
        .await;
    assert_eq!(outside.location(), "/", "no redirect to another host");
    let missing = browser.get("/no-such-page").await;
    assert_eq!(missing.status, 404);
    assert!(
        missing.headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    let css = browser.get("/assets/theme.css").await;
    assert_eq!(css.status, 200);
    assert!(css.headers["cache-control"].to_str().unwrap().contains("immutable"));
}
api_test!(dutch_first_english_on_request);

/// Every message a page asks for is in both catalogues: the keys in templates and page code,
/// the labels of every stored value, and each form field's label, hint and error.
#[test]
fn every_text_on_the_pages_is_in_both_catalogues() {
    use nrm::web::i18n::{Lang, catalogue};
    let root = crate::helpers::manifest_dir();
    let mut keys: Vec<String> = Vec::new();
    let mut sources = Vec::new();
    for folder in ["web/templates", "src/web"] {
        for entry in std::fs::read_dir(root.join(folder)).unwrap() {
            sources.push(std::fs::read_to_string(entry.unwrap().path()).unwrap());
        }
    }
    let quoted_after = |text: &str, marker: &str| -> Vec<String> {
        text.match_indices(marker)
            .filter_map(|(i, _)| text[i + marker.len()..].split('"').next().map(str::to_string))
            .collect()
    };
    for source in &sources {
        for marker in [
            ".t(\"",
            ".with(\"",
            ".t1(\"",
            "with_notice(\"",
            "anonymous(lang, \"/sign-in\", \"",
        ] {
            keys.extend(quoted_after(source, marker));
        }
        for marker in [".field(\"", ".hint(\""] {
            for name in quoted_after(source, marker) {
                keys.push(format!("field-{name}"));
            }
        }
        // Form fields named in macro calls: label, hint and invalid message.
        // A keyed field (`m::keyed_text(form, tr, "period-from", "from", ...)`) takes its
        // label and hint from the key and its message from the name. A table is no field.
        for call in source.split("{% call m::").skip(1) {
            let args = call.split(')').next().unwrap_or("");
            let quoted: Vec<&str> = args.split('"').skip(1).step_by(2).collect();
            match (
                call.starts_with("keyed_"),
                call.starts_with("table_section"),
                quoted.as_slice(),
            ) {
                (_, true, _) => {}
                (true, _, [key, name, ..]) => {
                    keys.push(format!("field-{key}"));
                    keys.push(format!("hint-{key}"));
                    keys.push(format!("error-{name}"));
                }
                (false, _, [name, ..]) => {
                    for prefix in ["field", "hint", "error"] {
                        keys.push(format!("{prefix}-{name}"));
                    }
                }
                _ => {}
            }
        }
    }
    // The statistics page labels every published row (`domain::stats::rows`).
    for (section, row_keys) in [
        (
            "persons",
            &["total", "victims", "concerned_persons", "professionals"][..],
        ),
        (
            "exploitation",
            &["sexual", "criminal", "labour", "other", "combination"],
        ),
        (
            "age",
            &[
                "known",
                "minors",
                "adults",
                "minor_share_pct",
                "adult_share_pct",
                "mean",
            ],
        ),
        ("gender", &["female", "male", "non_binary", "unknown"]),
        ("nationality", &["dutch", "other_eu", "non_eu", "unknown"]),
        ("referrals", &["total"]),
        ("three_way_conversations", &["offered", "held", "will_report"]),
        ("anonymous_notifications", &["total"]),
        ("registering_organisation", &[]),
        ("referrals.by_destination", &[]),
        ("referrals.by_state", &[]),
        ("referrals.by_outcome", &[]),
    ] {
        keys.push(format!("stats-section-{}", section.replace('.', "-")));
        keys.extend(row_keys.iter().map(|k| format!("stats-{section}-{k}")));
    }
    for notice in nrm::web::parts::NOTICES {
        keys.push(format!("done-{notice}"));
    }
    for kind in [
        "not-found",
        "forbidden",
        "csrf",
        "bad-request",
        "unavailable",
        "internal",
        "sign-in-failed",
    ] {
        keys.push(format!("error-{kind}-title"));
        keys.push(format!("error-{kind}-text"));
    }
    use nrm::domain::case::*;
    use nrm::domain::consent::*;
    use nrm::domain::referral::*;
    let mut labels = |kind: &str, values: Vec<String>| {
        keys.extend(values.into_iter().map(|v| format!("{kind}-{v}")));
    };
    let names = |all: &[&'static str]| all.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    labels("reporter", names(&ReporterRole::ALL.map(|v| v.as_str())));
    labels("channel", names(&ContactChannel::ALL.map(|v| v.as_str())));
    labels("form", names(&ExploitationForm::ALL.map(|v| v.as_str())));
    labels("gender", names(&Gender::ALL.map(|v| v.as_str())));
    labels("status", names(&IdentificationStatus::ALL.map(|v| v.as_str())));
    labels("need", names(&Need::ALL.map(|v| v.as_str())));
    labels("intention", names(&ReportingIntention::ALL.map(|v| v.as_str())));
    labels("scope", names(&ConsentScope::ALL.map(|v| v.as_str())));
    labels("giver", names(&ConsentGiver::ALL.map(|v| v.as_str())));
    labels("given-by", names(&ConsentGiver::ALL.map(|v| v.as_str())));
    use nrm::domain::notification::{DeliveryStatus, NotificationKind};
    labels("delivery", names(&DeliveryStatus::ALL.map(|v| v.as_str())));
    labels("notification", names(&NotificationKind::ALL.map(|v| v.as_str())));
    use nrm::domain::webhook::{DeliveryState, DisabledReason, EventType, SubscriptionStatus};
    labels("webhook-status", names(&SubscriptionStatus::ALL.map(|v| v.as_str())));
    labels("webhook-disabled", names(&DisabledReason::ALL.map(|v| v.as_str())));
    labels("webhook-delivery", names(&DeliveryState::ALL.map(|v| v.as_str())));
    labels(
        "webhook-event",
        EventType::ALL.iter().map(|e| e.as_str().replace('.', "_")).collect(),
    );
    use nrm::domain::three_way::{ThreeWayAction, ThreeWayGuard};
    labels("three-way-do", names(&ThreeWayAction::ALL.map(|v| v.as_str())));
    labels("guard", names(&ThreeWayGuard::ALL.map(|v| v.as_str())));
    labels("method", names(&ConsentMethod::ALL.map(|v| v.as_str())));
    labels("state", names(&ReferralState::ALL.map(|v| v.as_str())));
    labels("action", names(&Action::ALL.map(|v| v.as_str())));
    labels("do", names(&Action::ALL.map(|v| v.as_str())));
    labels("urgency", names(&Urgency::ALL.map(|v| v.as_str())));
    labels("decline", names(&DeclineReason::ALL.map(|v| v.as_str())));
    labels("outcome", names(&Outcome::ALL.map(|v| v.as_str())));
    labels("guard", names(&GuardCode::ALL.map(|v| v.as_str())));
    labels("step", names(&nrm::domain::deadline::Step::ALL.map(|v| v.as_str())));
    labels(
        "three-way",
        names(&nrm::domain::three_way::ThreeWayState::ALL.map(|v| v.as_str())),
    );
    labels("role", names(&nrm::domain::access::Role::ALL.map(|v| v.as_str())));
    // The information point.
    use nrm::domain::information::{Audience, Topic};
    labels("topic", names(&Topic::ALL.map(|v| v.as_str())));
    labels("audience", names(&Audience::ALL.map(|v| v.as_str())));
    labels("info-form", names(&ExploitationForm::ALL.map(|v| v.as_str())));
    labels("info-error", names(&["age", "form", "region", "language"]));
    let info = nrm::web::information_point::LANGUAGES.map(|(code, _)| code);
    labels("language-name", names(&info));
    labels(
        "info-for",
        nrm::web::information_point::AUDIENCES
            .iter()
            .map(|a| format!("{a}-title"))
            .collect(),
    );
    let exclusions = names(&nrm::domain::routing::ExclusionReason::ALL.map(|v| v.as_str()));
    labels(
        "guard",
        exclusions
            .iter()
            .map(|e| format!("{}{e}", nrm::domain::routing::OVERRIDABLE_PREFIX))
            .collect(),
    );
    labels("exclusion", exclusions);
    let registry = nrm::startup::load_registry(&root.join("config/organisations.toml")).unwrap();
    labels("service", registry.services.iter().cloned().collect());
    labels("region", registry.regions.iter().cloned().collect());
    keys.sort();
    keys.dedup();
    for lang in Lang::ALL {
        let missing: Vec<&String> = keys.iter().filter(|k| catalogue(lang).get(k).is_none()).collect();
        assert!(missing.is_empty(), "missing in {}.ftl: {missing:?}", lang.code());
    }
    assert!(keys.len() > 300, "the scan found the keys: {}", keys.len());
}

/// The link in a notification mail leads to the referral's page: sign in first, then
/// straight there.
async fn the_mail_link_leads_through_sign_in_to_the_referral_page(app: TestApp) {
    let (_, referral) = app.submitted_referral("csg", &["acute_sexual_violence_care"]).await;
    let id = referral["id"].as_str().unwrap();
    let db = app.db();
    let bodies: Vec<String> = db
        .run(|conn| -> Result<Vec<String>, nrm::db::DbError> {
            use diesel::prelude::*;
            use nrm::db::schema::notifications;
            Ok(notifications::table.select(notifications::body).load(conn)?)
        })
        .await
        .unwrap();
    let link = bodies
        .iter()
        .find_map(|b| b.split_whitespace().find(|w| w.ends_with(&format!("/referrals/{id}"))))
        .expect("a mail links the referral")
        .to_string();
    let path = link.split_once("://").unwrap().1;
    let path = &path[path.find('/').unwrap()..];
    assert_eq!(path, format!("/referrals/{id}"), "the page, not the JSON API");
    let mut browser = Browser::new(&app);
    let first = browser.get(path).await;
    assert_eq!(first.location(), format!("/sign-in?return_to=%2Freferrals%2F{id}"));
    let form = browser.follow(first).await;
    let signed = browser
        .post(
            "/sign-in",
            &[
                ("csrf_token", &form.hidden("csrf_token")),
                ("persona", "csg:intake"),
                ("return_to", &form.hidden("return_to")),
            ],
        )
        .await;
    assert_eq!(signed.location(), path);
    let page = browser.follow(signed).await;
    assert_eq!(page.status, 200);
    assert!(page.has("Ontvangst bevestigen"), "{}", page.body);
}
api_test!(the_mail_link_leads_through_sign_in_to_the_referral_page);

/// The paper questionnaire asks what the new-case form asks, in the form's own words.
async fn a_printable_sheet_holds_the_intake_questions(app: TestApp) {
    let mut fier = Browser::new(&app);
    fier.sign_in("fier:caseworker").await;
    let sheet = fier.get("/intake-sheet").await;
    assert_eq!(sheet.status, 200, "{}", sheet.body);
    assert_private(&sheet);
    for label in [
        "Wie neemt contact op?",
        "Vormen van uitbuiting",
        "Pseudoniem uit de chat",
        "Criminele uitbuiting",
    ] {
        assert!(sheet.has(label), "{label}");
    }
    let form = fier.get("/cases/new").await;
    assert!(form.has("Wie neemt contact op?") && form.has("href=\"/intake-sheet\""));
    let mut csg = Browser::new(&app);
    csg.sign_in("csg:intake").await;
    assert_eq!(csg.get("/intake-sheet").await.status, 403);
}
api_test!(a_printable_sheet_holds_the_intake_questions);

async fn intake_reports_the_organisations_capacity(app: TestApp) {
    let mut fier = Browser::new(&app);
    fier.sign_in("fier:intake").await;
    let page = fier.get("/capacity").await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(page.has("nog niet gemeld"));
    let csrf = Browser::csrf(&page);
    let done = fier
        .post(
            "/capacity",
            &[
                ("csrf_token", &csrf),
                ("service", "shelter_placement"),
                ("places_free", "3"),
            ],
        )
        .await;
    let page = fier.follow(done).await;
    assert!(page.has("De capaciteit is gemeld."), "{}", page.body);
    assert!(page.has("value=\"3\""), "{}", page.body);
    let token = app.actors().fier_caseworker;
    let org: Value = app
        .get("/api/v1/organisations/fier", &token)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        org["capacity"][0]["places_free"], 3,
        "the API reports what the page set"
    );
    let refused = fier
        .post(
            "/capacity",
            &[
                ("csrf_token", &csrf),
                ("service", "shelter_placement"),
                ("places_free", "-1"),
            ],
        )
        .await;
    assert_eq!(refused.status, 422, "{}", refused.body);
    assert!(
        refused.has("id=\"error-places_free-shelter_placement\""),
        "{}",
        refused.body
    );
    let mut caseworker = Browser::new(&app);
    caseworker.sign_in("fier:caseworker").await;
    assert!(!caseworker.get("/cases").await.has("href=\"/capacity\""));
    assert_eq!(caseworker.get("/capacity").await.status, 403);
}
api_test!(intake_reports_the_organisations_capacity);

async fn three_way_offer_and_anonymous_notification_from_the_case_page(app: TestApp) {
    let mut fier = Browser::new(&app);
    fier.sign_in("fier:caseworker").await;
    let case_path = file_case(&mut fier, "lelie").await;
    let page = fier.get(&case_path).await;
    let csrf = Browser::csrf(&page);
    let offered = fier
        .post(
            &format!("{case_path}/three-way-conversations"),
            &[("csrf_token", &csrf), ("form_id", "x1")],
        )
        .await;
    let page = fier.follow(offered).await;
    assert!(page.has("Het driehoeksgesprek is aangeboden."), "{}", page.body);
    assert!(page.has(": Politie, Aanpak Mensenhandel, Aangeboden"), "{}", page.body);
    assert!(page.has("Anoniem melden bij het coördinatiepunt"));
    let filed = fier
        .post(
            &format!("{case_path}/anonymous-notification"),
            &[("csrf_token", &csrf), ("form_id", "x2")],
        )
        .await;
    let page = fier.follow(filed).await;
    assert!(page.has("De anonieme melding is gedaan."), "{}", page.body);
    assert!(!page.has("Anoniem melden bij het coördinatiepunt"), "filed once");
    let again = fier
        .post(
            &format!("{case_path}/anonymous-notification"),
            &[("csrf_token", &csrf), ("form_id", "x3")],
        )
        .await;
    assert_eq!(again.status, 409, "{}", again.body);
    assert!(again.has("utrecht-alert--error"));
}
api_test!(three_way_offer_and_anonymous_notification_from_the_case_page);

async fn a_three_way_conversation_is_scheduled_held_and_evaluated_in_pages(app: TestApp) {
    let mut fier = Browser::new(&app);
    fier.sign_in("fier:caseworker").await;
    let case_path = file_case(&mut fier, "iris").await;
    let page = fier.get(&case_path).await;
    let csrf = Browser::csrf(&page);
    let offered = fier
        .post(
            &format!("{case_path}/three-way-conversations"),
            &[("csrf_token", &csrf), ("form_id", "3w-1")],
        )
        .await;
    let case = fier.follow(offered).await;
    let path = case.link("/three-way-conversations/");
    let page = fier.get(&path).await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert_private(&page);
    assert!(page.has("<strong>Aangeboden</strong>"));
    let step = |page: &Page, action: &'static str| {
        vec![
            ("csrf_token".to_string(), Browser::csrf(page)),
            ("version".to_string(), page.hidden("version")),
            ("action".to_string(), action.to_string()),
        ]
    };
    let target = format!("{path}/transition");

    // Scheduling needs consent to contact the police: said, nothing changed.
    let mut fields = step(&page, "schedule");
    fields.push(("police_officer".into(), "rechercheur-hans".into()));
    fields.push(("scheduled_for".into(), "2026-12-03T14:00".into()));
    let pairs: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let refused = fier.post(&target, &pairs).await;
    assert_eq!(refused.status, 422, "{}", refused.body);
    assert!(
        refused.has("geen toestemming voor contact met de politie"),
        "{}",
        refused.body
    );
    assert!(refused.has("<strong>Aangeboden</strong>"));

    let case = fier.get(&case_path).await;
    let consent = fier
        .post(
            &format!("{case_path}/consents"),
            &[
                ("csrf_token", &csrf),
                ("form_id", &case.hidden("form_id")),
                ("scope", "police_contact"),
                ("organisation", "police"),
                ("given_by", "victim"),
                ("method", "chat"),
                ("information_language", "nl"),
            ],
        )
        .await;
    assert_eq!(consent.status, 303, "{}", consent.body);
    let scheduled = fier.post(&target, &pairs).await;
    assert_eq!(
        scheduled.location(),
        format!("{path}?done=three-way-step"),
        "{}",
        scheduled.body
    );
    let page = fier.follow(scheduled).await;
    assert!(page.has("<strong>Gepland</strong>"), "{}", page.body);
    // Typed on the Amsterdam clock, shown on it again.
    assert!(page.has("3 dec 2026 14:00"), "{}", page.body);
    assert!(page.has("rechercheur-hans"));

    // The form from before is stale now: nothing applied twice.
    let stale = fier.post(&target, &pairs).await;
    assert_eq!(stale.status, 409, "{}", stale.body);
    assert!(stale.has("Er is niets toegepast"));

    let held: Vec<(String, String)> = step(&page, "hold");
    let pairs: Vec<(&str, &str)> = held.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let done = fier.post(&target, &pairs).await;
    let page = fier.follow(done).await;
    assert!(page.has("<strong>Gehouden</strong>"), "{}", page.body);

    // The evaluation asks for its fields, each tied to its input.
    let bare = step(&page, "evaluate");
    let pairs: Vec<(&str, &str)> = bare.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let problems = fier.post(&target, &pairs).await;
    assert_eq!(problems.status, 422, "{}", problems.body);
    for field in ["reporting_intention", "care_evaluation", "police_evaluation"] {
        assert!(
            problems.has(&format!("href=\"#field-{field}\"")),
            "{field}: {}",
            problems.body
        );
    }
    let mut full = step(&page, "evaluate");
    full.push(("reporting_intention".into(), "undecided".into()));
    full.push(("care_evaluation".into(), "Rustig gesprek, ze denkt erover na.".into()));
    full.push(("police_evaluation".into(), "Uitleg gegeven over aangifte.".into()));
    let pairs: Vec<(&str, &str)> = full.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let done = fier.post(&target, &pairs).await;
    let page = fier.follow(done).await;
    assert!(page.has("<strong>Geëvalueerd</strong>"), "{}", page.body);
    assert!(page.has("Weet het nog niet"));
    assert!(page.has("Rustig gesprek, ze denkt erover na."));
    assert!(!page.has("Volgende stap"), "no step after the evaluation");

    // Another organisation does not learn the conversation exists.
    let mut csg = Browser::new(&app);
    csg.sign_in("csg:caseworker").await;
    assert_eq!(csg.get(&path).await.status, 404);
}
api_test!(a_three_way_conversation_is_scheduled_held_and_evaluated_in_pages);

async fn a_sign_in_at_the_provider_must_belong_to_this_browser(backend: crate::helpers::Backend) {
    // Without a provider there is no way to one.
    let Some(plain) = crate::helpers::on(backend, |_| {}).await else {
        return;
    };
    let mut browser = Browser::new(&plain);
    assert!(!browser.get("/sign-in").await.has("/sign-in/oidc"));
    assert_eq!(browser.get("/sign-in/oidc").await.status, 404);
    drop(plain);

    // A provider that does not answer: a clear "try again", never a 500.
    let Some(app) = crate::helpers::on(backend, |s| {
        s.web.oidc.issuer = "http://127.0.0.1:9".into();
        s.web.oidc.client_id = "nrm-web".into();
        s.web.oidc.client_secret = "secret".into();
    })
    .await
    else {
        return;
    };
    let mut browser = Browser::new(&app);
    let sign_in = browser.get("/sign-in").await;
    assert!(sign_in.has("href=\"/sign-in/oidc?return_to="), "{}", sign_in.body);
    let down = browser.get("/sign-in/oidc?return_to=%2Fcases").await;
    assert_eq!(down.status, 503, "{}", down.body);
    assert!(down.has("Even niet beschikbaar"), "{}", down.body);

    // A callback this browser did not start, with a state other than the one it sent, or
    // with the provider's refusal: no session, a page that says so.
    let refused = |page: &Page| {
        assert_eq!(page.status, 400, "{}", page.body);
        assert!(page.has("Aanmelden is niet gelukt"), "{}", page.body);
        assert!(page.has("href=\"/sign-in\""));
    };
    let mut stranger = Browser::new(&app);
    refused(&stranger.get("/sign-in/callback?code=abc&state=def").await);
    let pending = nrm::auth::oidc::Pending::new("/cases");
    stranger.cookies.insert("nrm_oidc".into(), pending.to_cookie());
    refused(
        &stranger
            .get("/sign-in/callback?code=abc&state=not-the-state-we-sent")
            .await,
    );
    refused(
        &stranger
            .get(&format!(
                "/sign-in/callback?error=access_denied&state={}",
                pending.state
            ))
            .await,
    );
    refused(&stranger.get("/sign-in/callback").await);
    assert!(!stranger.cookies.contains_key("nrm_session"));
    assert_eq!(stranger.get("/cases").await.status, 303, "still not signed in");
}
crate::backend_test!(a_sign_in_at_the_provider_must_belong_to_this_browser);

async fn intake_takes_a_referral_on_and_hands_it_to_a_colleague_in_pages(app: TestApp) {
    let (_, submitted) = app.submitted_referral("csg", &["psychosocial_support"]).await;
    let path = format!("/referrals/{}", submitted["id"].as_str().unwrap());
    let mut colleague = Browser::new(&app);
    colleague.sign_in("csg:intake:2").await;
    let mut carla = Browser::new(&app);
    carla.sign_in("csg:intake").await;

    let page = carla.get(&path).await;
    assert!(page.has("Wie pakt dit op"), "{}", page.body);
    assert!(page.has("Opgepakt door: Niemand"));
    let (csrf, version) = (Browser::csrf(&page), page.hidden("version"));
    let taken = carla
        .post(
            &format!("{path}/assignee"),
            &[
                ("csrf_token", &csrf),
                ("version", &version),
                ("assigned_to", "persona:csg:intake"),
            ],
        )
        .await;
    assert_eq!(taken.location(), format!("{path}?done=assigned"));
    let page = carla.follow(taken).await;
    assert!(page.has("De toewijzing is opgeslagen."));
    assert!(page.has("Opgepakt door: U zelf"), "{}", page.body);
    assert!(!page.has("Ik pak dit op"), "no button for what is already done");
    let mine = carla.get("/inbox?assigned_to=me").await;
    assert!(mine.has(&format!("href=\"{path}\"")), "{}", mine.body);
    assert!(mine.has("aria-current=\"page\""));
    assert!(
        !colleague
            .get("/inbox?assigned_to=me")
            .await
            .has(&format!("href=\"{path}\""))
    );

    // The form from before the change is stale: nothing is applied twice.
    let stale = carla
        .post(
            &format!("{path}/assignee"),
            &[("csrf_token", &csrf), ("version", &version), ("assigned_to", "")],
        )
        .await;
    assert_eq!(stale.status, 409, "{}", stale.body);
    assert!(stale.has("Opgepakt door: U zelf"), "the current state is shown");

    // Handed to the colleague by name, from the list of intake colleagues.
    let page = carla.get(&path).await;
    assert!(
        page.has("<option value=\"persona:csg:intake:2\">Persona: Intake (tweede persoon)</option>"),
        "{}",
        page.body
    );
    let handed = carla
        .post(
            &format!("{path}/assignee"),
            &[
                ("csrf_token", &Browser::csrf(&page)),
                ("version", &page.hidden("version")),
                ("assigned_to", "persona:csg:intake:2"),
            ],
        )
        .await;
    assert_eq!(handed.status, 303, "{}", handed.body);
    let theirs = colleague.get("/inbox?assigned_to=me").await;
    assert!(theirs.has(&format!("href=\"{path}\"")), "{}", theirs.body);
    assert!(theirs.has("U zelf"));
    assert!(
        !carla
            .get("/inbox?assigned_to=me")
            .await
            .has(&format!("href=\"{path}\""))
    );

    // Without the CSRF token nothing changes.
    let page = colleague.get(&path).await;
    let forged = colleague
        .post(
            &format!("{path}/assignee"),
            &[("version", &page.hidden("version")), ("assigned_to", "")],
        )
        .await;
    assert_eq!(forged.status, 403);
    assert!(
        colleague
            .get("/inbox?assigned_to=me")
            .await
            .has(&format!("href=\"{path}\""))
    );

    // The sender sees the referral, not who works on it, and no form to assign it.
    let mut fier = Browser::new(&app);
    fier.sign_in("fier:caseworker").await;
    let sender = fier.get(&path).await;
    assert_eq!(sender.status, 200);
    assert!(!sender.has("Wie pakt dit op"));
    assert!(!sender.has("tweede persoon"));
}
api_test!(intake_takes_a_referral_on_and_hands_it_to_a_colleague_in_pages);

async fn the_focal_point_sees_what_is_open_overdue_and_escalated(backend: crate::helpers::Backend) {
    let Some(app) = crate::helpers::on(backend, |s| {
        s.notifications.deadline_check_interval = "50ms".into();
    })
    .await
    else {
        return;
    };
    let (case, submitted) = app.submitted_referral("csg", &["psychosocial_support"]).await;
    let reference = nrm::web::parts::short_ref(submitted["id"].as_str().unwrap().parse().unwrap());
    let mut coordinator = Browser::new(&app);
    coordinator.sign_in("comensha:coordinator").await;
    assert_eq!(coordinator.get("/").await.location(), "/console");
    let page = coordinator.get("/console").await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert_private(&page);
    assert!(page.has("Niets is over tijd."), "{}", page.body);
    assert!(
        page.has("<th class=\"utrecht-table__header-cell\" scope=\"row\">Centrum Seksueel Geweld</th><td class=\"utrecht-table__cell\">1</td>"),
        "one submitted referral open at CSG:\n{}",
        page.body
    );
    // The diagram draws it, and says what each part is without colour.
    assert!(page.has("<svg class=\"nrm-diagram\""), "{}", page.body);
    assert!(page.has("<title>Ingediend: 1</title>"), "{}", page.body);

    // Two days on, the acknowledgement is overdue; the deadline watcher escalates it. (The
    // session has long timed out: sign in again.)
    app.clock.advance(Duration::days(2));
    coordinator.sign_in("comensha:coordinator").await;
    let mut escalated = None;
    for _ in 0..100 {
        let page = coordinator.get("/console").await;
        assert!(page.has(&reference), "the overdue referral is listed:\n{}", page.body);
        if !page.has("Nog niet") {
            escalated = Some(page);
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let page = escalated.expect("the escalation shows within 10 s");
    assert!(page.has("Ontvangst bevestigen"), "{}", page.body);

    // A period that is not one: said beside the field, the rest of the page still there.
    let wrong = coordinator.get("/console?from=gisteren&to=2026-01-01").await;
    assert_eq!(wrong.status, 422, "{}", wrong.body);
    assert!(wrong.has("href=\"#field-from\""), "{}", wrong.body);

    // The audit trail of the case, and the chain's verification on request.
    let case_id = case["id"].as_str().unwrap();
    let trail = coordinator.get(&format!("/console/audit?case_id={case_id}")).await;
    assert_eq!(trail.status, 200, "{}", trail.body);
    assert_private(&trail);
    for action in ["case.create", "referral.submit"] {
        assert!(
            trail.has(&format!("<code>{action}</code>")),
            "{action}:\n{}",
            trail.body
        );
    }
    assert!(!trail.has("<code>session.start</code>"), "filtered by the case");
    // The button keeps the filter and adds the verification.
    let verify = trail.link("/console/audit?");
    assert!(verify.ends_with("&verify=1"), "{verify}");
    let verified = coordinator.get(&verify).await;
    assert!(verified.has("De keten is intact"), "{}", verified.body);
    assert!(verified.has("<code>referral.submit</code>"));
    let bad = coordinator.get("/console/audit?case_id=not-an-id").await;
    assert_eq!(bad.status, 422);

    // Nobody but the focal point's coordinators opens these pages.
    for persona in ["fier:caseworker", "csg:intake", "comensha:intake", "csg:admin"] {
        let mut other = Browser::new(&app);
        other.sign_in(persona).await;
        let cases = other.get("/").await;
        assert_ne!(cases.location(), "/console", "{persona}");
        for path in ["/console", "/console/audit", "/console/audit?verify=1"] {
            assert_eq!(other.get(path).await.status, 403, "{persona} {path}");
        }
    }
}
crate::backend_test!(the_focal_point_sees_what_is_open_overdue_and_escalated);

/// A sealer that stopped is an alarm on the audit page, not silence: entries that waited
/// longer than allowed are named on the verification, which seals them, so the next
/// verification is quiet again.
async fn a_stalled_sealer_is_shown_on_the_audit_page(backend: crate::helpers::Backend) {
    // The test holds the sealer's leadership before the service starts, so the service's
    // sealer stands by: nothing seals but the verification.
    let held = std::sync::Arc::new(std::sync::Mutex::new(None));
    let holder = held.clone();
    let Some(app) = crate::helpers::on(backend, move |s| {
        *holder.lock().unwrap() = Some(crate::helpers::hold_leadership(
            s,
            nrm::db::leader::SingletonTask::Sealer,
        ));
    })
    .await
    else {
        return;
    };
    crate::helpers::stale_audit_entries(&app, 2);
    let mut coordinator = Browser::new(&app);
    coordinator.sign_in("comensha:coordinator").await;
    let verified = coordinator.get("/console/audit?verify=1").await;
    assert_eq!(verified.status, 200, "{}", verified.body);
    assert!(
        // Two or more: the service's own start-up entries may have waited too by now.
        verified.has("regels wachtten langer dan toegestaan op verzegeling"),
        "{}",
        verified.body
    );
    assert!(verified.has("role=\"alert\""), "{}", verified.body);
    assert!(verified.has("De keten is intact"), "{}", verified.body);
    let again = coordinator.get("/console/audit?verify=1").await;
    assert!(!again.has("wachtten langer dan toegestaan"), "{}", again.body);
    drop(held);
}
crate::backend_test!(a_stalled_sealer_is_shown_on_the_audit_page);

async fn the_statistics_page_shows_what_its_csv_holds(backend: crate::helpers::Backend) {
    let Some(app) = crate::helpers::on(backend, |s| s.stats.min_cell = 2).await else {
        return;
    };
    let a = app.actors();
    app.submitted_referral("csg", &["psychosocial_support"]).await;
    // A second state, so that a section holds more than one row.
    let (_, second) = app.submitted_referral("csg", &["psychosocial_support"]).await;
    app.step(&a.csg_intake, &second, serde_json::json!({"action": "acknowledge"}))
        .await;
    // One case alone of its kind: below min_cell, withheld.
    let mut professional = crate::helpers::adult_case();
    professional["reporter_role"] = serde_json::json!("professional");
    app.create_case(&a.fier_caseworker, &professional).await;
    let mut coordinator = Browser::new(&app);
    coordinator.sign_in("comensha:coordinator").await;
    let today = today(&app);
    let page = coordinator
        .get(&format!("/console/statistics?from=2020-01-01&to={today}"))
        .await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert_private(&page);
    for text in [
        "Mogelijke slachtoffers",
        "Verwijzingen per ontvanger",
        "Centrum Seksueel Geweld",
        "staafdiagram",
    ] {
        assert!(page.has(text), "{text}:\n{}", page.body);
    }
    assert!(
        page.has("minder dan 2"),
        "the lone professional is withheld:\n{}",
        page.body
    );
    assert_eq!(
        page.body.matches("Verwijzingen per stand</h2>").count(),
        1,
        "one table per section:\n{}",
        page.body
    );

    // The CSV is byte for byte the API's, for the same period.
    let csv = coordinator.get(&page.link("/console/statistics.csv?")).await;
    assert_eq!(csv.status, 200);
    assert_eq!(csv.headers["cache-control"], "no-store");
    assert!(csv.headers["content-type"].to_str().unwrap().starts_with("text/csv"));
    let api = app
        .get(
            &format!("/api/v1/stats/report?from=2020-01-01&to={today}&format=csv"),
            &a.comensha_coordinator,
        )
        .await
        .text()
        .await
        .unwrap();
    assert_eq!(csv.body, api);
    assert!(csv.body.contains("persons,professionals,\n"), "{}", csv.body);

    let year = &today[..4];
    let eu = coordinator.get(&format!("/console/eu-export?year={year}")).await;
    assert_eq!(eu.status, 200, "{}", eu.body);
    let api: Value = app
        .get(&format!("/api/v1/stats/eu?year={year}"), &a.comensha_coordinator)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(serde_json::from_str::<Value>(&eu.body).unwrap(), api);

    for persona in ["fier:caseworker", "csg:intake"] {
        let mut other = Browser::new(&app);
        other.sign_in(persona).await;
        for path in [
            "/console/statistics",
            "/console/statistics.csv?from=2020-01-01&to=2026-01-01",
            "/console/eu-export?year=2025",
        ] {
            assert_eq!(other.get(path).await.status, 403, "{persona} {path}");
        }
    }
}
crate::backend_test!(the_statistics_page_shows_what_its_csv_holds);

async fn an_admin_sends_a_dead_letter_again_from_the_outbox_page(backend: crate::helpers::Backend) {
    let mut sink = crate::smtp::SmtpSink::start().await;
    sink.stop();
    let Some(app) = crate::helpers::on(backend, |s| {
        crate::helpers::with_smtp(s, sink.port);
        s.notifications.retry_base = "1s".into();
        s.notifications.max_attempts = 2;
    })
    .await
    else {
        return;
    };
    app.submitted_referral("csg", &["acute_sexual_violence_care"]).await;
    let ops = app.token("admin-ops", "comensha", &["admin"]);
    let dead = || async {
        let list: Value = app
            .get("/api/v1/admin/outbox?status=dead", &ops)
            .await
            .json()
            .await
            .unwrap();
        list["items"].as_array().unwrap().len()
    };
    for _ in 0..200 {
        if dead().await == 1 {
            break;
        }
        app.clock.advance(Duration::seconds(3));
        tokio::time::sleep(std::time::Duration::from_millis(30)).await;
    }
    assert_eq!(dead().await, 1, "the mail to CSG gave up");

    let mut csg_admin = Browser::new(&app);
    csg_admin.sign_in("csg:admin").await;
    assert_eq!(csg_admin.get("/").await.location(), "/admin/outbox");
    let page = csg_admin.get("/admin/outbox").await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert_private(&page);
    assert!(page.has("Verwijzing ontvangen"), "{}", page.body);
    assert!(page.has("Opgegeven"));
    let retry = page
        .body
        .split("action=\"/admin/outbox/")
        .nth(1)
        .map(|rest| format!("/admin/outbox/{}", rest.split('"').next().unwrap()))
        .expect("a retry form");
    assert!(retry.ends_with("/retry"), "{retry}");

    // Another organisation's admin does not see it, nor can send it.
    let mut fier_admin = Browser::new(&app);
    fier_admin.sign_in("fier:admin").await;
    let theirs = fier_admin.get("/admin/outbox").await;
    assert!(theirs.has("Geen berichten met deze status."), "{}", theirs.body);
    let refused = fier_admin
        .post(&retry, &[("csrf_token", &Browser::csrf(&theirs))])
        .await;
    assert_eq!(refused.status, 404, "{}", refused.body);
    // Without a CSRF token nothing is sent.
    assert_eq!(csg_admin.post(&retry, &[]).await.status, 403);
    assert_eq!(dead().await, 1);

    let done = csg_admin.post(&retry, &[("csrf_token", &Browser::csrf(&page))]).await;
    assert_eq!(
        done.location(),
        "/admin/outbox?status=dead&done=retried",
        "{}",
        done.body
    );
    let page = csg_admin.follow(done).await;
    assert!(page.has("Het bericht staat weer in de wachtrij."), "{}", page.body);
    assert!(page.has("Geen berichten met deze status."));
    assert_eq!(dead().await, 0);

    let mut caseworker = Browser::new(&app);
    caseworker.sign_in("fier:caseworker").await;
    assert_eq!(caseworker.get("/admin/outbox").await.status, 403);
}
crate::backend_test!(an_admin_sends_a_dead_letter_again_from_the_outbox_page);

async fn an_admin_sees_the_webhooks_and_pauses_one(backend: crate::helpers::Backend) {
    let Some(app) = crate::helpers::on(backend, |s| s.webhooks.poll_interval = "50ms".into()).await else {
        return;
    };
    let api_admin = app.token("admin-csg", "csg", &["admin"]);
    // An endpoint that resolves to loopback: every delivery fails, and the log says why.
    let made = app
        .post_ok(
            "/api/v1/webhooks",
            &api_admin,
            &json!({"url": "https://localhost:9/hooks", "event_types": ["referral.received", "referral.withdrawn"]}),
            201,
        )
        .await;
    let id = made["id"].as_str().unwrap();
    app.submitted_referral("csg", &["acute_sexual_violence_care"]).await;
    let mut admin = Browser::new(&app);
    admin.sign_in("csg:admin").await;
    let page = admin.get("/admin/webhooks").await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert_private(&page);
    assert!(page.has("https://localhost:9/hooks"));
    assert!(
        page.has("Verwijzing ontvangen, Verwijzing ingetrokken"),
        "{}",
        page.body
    );
    assert!(page.has("Actief"));
    assert!(!page.has("whsec_"), "the secret is never shown in a page");
    let log_path = format!("/admin/webhooks/{id}");
    let started = std::time::Instant::now();
    let log = loop {
        let log = admin.get(&log_path).await;
        if log.has("no address deliveries may reach") {
            break log;
        }
        assert!(started.elapsed() < std::time::Duration::from_secs(20), "{}", log.body);
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    };
    assert!(log.has("In de wachtrij"), "{}", log.body);

    let pause = format!("/admin/webhooks/{id}/pause");
    assert_eq!(admin.post(&pause, &[]).await.status, 403, "no CSRF token, no change");
    let done = admin.post(&pause, &[("csrf_token", &Browser::csrf(&page))]).await;
    assert_eq!(done.location(), "/admin/webhooks?done=webhook-paused");
    let page = admin.follow(done).await;
    assert!(page.has("De webhook is gepauzeerd."), "{}", page.body);
    assert!(page.has("Gepauzeerd"));
    let view: Value = app
        .get(&format!("/api/v1/webhooks/{id}"), &api_admin)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(view["status"], "paused");

    // Another organisation's admin: not there. A caseworker: not for them.
    let mut fier_admin = Browser::new(&app);
    fier_admin.sign_in("fier:admin").await;
    assert!(
        fier_admin
            .get("/admin/webhooks")
            .await
            .has("Uw organisatie heeft geen webhooks.")
    );
    assert_eq!(fier_admin.get(&log_path).await.status, 404);
    let mut caseworker = Browser::new(&app);
    caseworker.sign_in("csg:caseworker").await;
    assert_eq!(caseworker.get("/admin/webhooks").await.status, 403);
}
crate::backend_test!(an_admin_sees_the_webhooks_and_pauses_one);

async fn the_focal_point_sees_how_three_way_conversations_went_per_quarter(backend: crate::helpers::Backend) {
    let Some(app) = crate::helpers::on(backend, |s| s.stats.min_cell = 1).await else {
        return;
    };
    let a = app.actors();
    let case = app.create_case(&a.fier_caseworker, &crate::helpers::adult_case()).await;
    let id = case["id"].as_str().unwrap();
    app.consent(&a.fier_caseworker, id, "police_contact", "police").await;
    let first_day = app.clock.now().date_naive();

    // This quarter: one declined, one held and evaluated (the person will report), one held.
    let declined = crate::three_way::offer(&app, &a.fier_caseworker, id).await;
    assert_eq!(
        crate::three_way::step(&app, &a.fier_caseworker, &declined, json!({"action": "decline"}))
            .await
            .0,
        200
    );
    for intention in [Some("will_report"), None] {
        let offered = crate::three_way::offer(&app, &a.fier_caseworker, id).await;
        let (_, scheduled) = crate::three_way::step(
            &app,
            &a.fier_caseworker,
            &offered,
            json!({"action": "schedule", "police_officer": "rechercheur-hans", "scheduled_for": "2027-01-05T14:00:00Z"}),
        )
        .await;
        let (status, held) =
            crate::three_way::step(&app, &a.fier_caseworker, &scheduled, json!({"action": "hold"})).await;
        assert_eq!(status, 200, "{held}");
        if let Some(intention) = intention {
            let (status, body) = crate::three_way::step(
                &app,
                &a.fier_caseworker,
                &held,
                json!({"action": "evaluate", "care_evaluation": "Rustig verlopen", "police_evaluation": "Uitleg gegeven", "reporting_intention": intention}),
            )
            .await;
            assert_eq!(status, 200, "{body}");
        }
    }
    // Next quarter: one offered, not yet held.
    app.clock.advance(Duration::days(93));
    crate::three_way::offer(&app, &a.fier_caseworker, id).await;
    let last_day = app.clock.now().date_naive();

    let url = format!("/api/v1/stats/three-way-conversations?from={first_day}&to={last_day}");
    let course: Value = app.get(&url, &a.comensha_coordinator).await.json().await.unwrap();
    let quarters = course["quarters"].as_array().unwrap();
    // Two quarters, or three when the 93 days skip one (the middle one is then empty).
    assert!((2..=3).contains(&quarters.len()), "{course}");
    let (now, next) = (&quarters[0], &quarters[quarters.len() - 1]);
    assert_eq!(now["from"], json!(first_day.to_string()));
    assert_eq!(
        (&now["offered"], &now["declined"], &now["awaiting"], &now["held"]),
        (&json!(3), &json!(1), &json!(0), &json!(2)),
        "{now}"
    );
    assert_eq!(
        now["followed_by"],
        json!({"will_report": 1, "undecided": 0, "will_not_report": 0, "not_evaluated": 1})
    );
    assert_eq!((&next["offered"], &next["awaiting"]), (&json!(1), &json!(1)), "{next}");
    assert_eq!(next["to"], json!(last_day.to_string()));
    // Only the focal point's coordinators; bad periods are problems.
    crate::helpers::expect_problem(app.get(&url, &a.fier_caseworker).await, 403).await;
    let problem = crate::helpers::expect_problem(
        app.get(
            "/api/v1/stats/three-way-conversations?from=2026-02-30",
            &a.comensha_coordinator,
        )
        .await,
        422,
    )
    .await;
    assert!(problem.to_string().contains("from"), "{problem}");

    // The console's page: the same figures, per quarter.
    let mut coordinator = Browser::new(&app);
    coordinator.sign_in("comensha:coordinator").await;
    let page = coordinator
        .get(&format!(
            "/console/three-way-conversations?from={first_day}&to={last_day}"
        ))
        .await;
    assert_eq!(page.status, 200, "{}", page.body);
    let rows: Vec<&str> = page.body.split("<tr class=\"utrecht-table__row\">").skip(2).collect();
    assert_eq!(rows.len(), quarters.len(), "{}", page.body);
    let cells = |row: &str| -> Vec<String> {
        row.split('<')
            .filter_map(|part| part.split_once('>').map(|(_, text)| text.trim().to_string()))
            .filter(|text| !text.is_empty())
            .collect()
    };
    let label = format!("{} K{}", first_day.year(), (first_day.month() - 1) / 3 + 1);
    assert_eq!(
        cells(rows[0]),
        [label.as_str(), "3", "1", "0", "2", "1", "0", "0", "1"],
        "{}",
        rows[0]
    );
    assert!(page.has("Daarna: wil aangifte doen"), "{}", page.body);
    let mut caseworker = Browser::new(&app);
    caseworker.sign_in("fier:caseworker").await;
    assert_eq!(caseworker.get("/console/three-way-conversations").await.status, 403);
}
crate::backend_test!(the_focal_point_sees_how_three_way_conversations_went_per_quarter);

async fn the_focal_point_sees_every_organisations_capacity_full_ones_first(app: TestApp) {
    let report = |org: &'static str, places: i64| {
        let app = &app;
        async move {
            let token = app.token(&format!("{org}-intake"), org, &["intake"]);
            let response = app
                .client
                .put(app.url(&format!("/api/v1/organisations/{org}/capacity")))
                .bearer_auth(token)
                .json(&json!({"services": [{"service": "shelter_placement", "places_free": places}]}))
                .send()
                .await
                .unwrap();
            assert_eq!(response.status(), 200);
        }
    };
    report("fier", 4).await;
    report("zorgcoordinatie-rotterdam", 0).await;
    for persona in ["comensha:coordinator", "comensha:admin"] {
        let mut focal_point = Browser::new(&app);
        focal_point.sign_in(persona).await;
        let page = focal_point.get("/admin/capacity").await;
        assert_eq!(page.status, 200, "{persona}: {}", page.body);
        assert_private(&page);
        assert!(page.has("href=\"/admin/capacity\""), "in the menu of {persona}");
        let body = &page.body[page.body.find("<tbody").unwrap()..];
        let full = body.find("Zorgcoördinatie Mensenhandel Rotterdam").unwrap();
        let unreported = body.find("Nidos").unwrap();
        let reported = body.find("Fier (Chat met Fier, Keerpunt)").unwrap();
        assert!(
            full < unreported && unreported < reported,
            "full, never reported, places free:\n{body}"
        );
        assert!(body.contains("vol (0)") && body.contains(">4<"), "{body}");
        assert!(page.has("Vol: 1."), "{}", page.body);
    }
    // The page is the focal point's: not another organisation's admin, not a caseworker.
    for persona in ["csg:admin", "fier:caseworker"] {
        let mut other = Browser::new(&app);
        other.sign_in(persona).await;
        assert_eq!(other.get("/admin/capacity").await.status, 403, "{persona}");
    }
}
api_test!(the_focal_point_sees_every_organisations_capacity_full_ones_first);
