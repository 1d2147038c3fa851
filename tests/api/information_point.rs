//! The public information point (`/hulp`): answers without sign-in, in the order the
//! directory gives, and carries what victim-support sites carry: no cookies, nothing from
//! another host, a way out on every page, small pages.

use crate::api_test;
use crate::helpers::TestApp;

struct Page {
    status: u16,
    headers: reqwest::header::HeaderMap,
    body: String,
}

async fn get(app: &TestApp, path: &str, accept_language: Option<&str>) -> Page {
    let mut request = app.client.get(app.url(path));
    if let Some(lang) = accept_language {
        request = request.header("Accept-Language", lang);
    }
    let response = request.send().await.unwrap();
    Page {
        status: response.status().as_u16(),
        headers: response.headers().clone(),
        body: response.text().await.unwrap(),
    }
}

/// The position of each name in the body, in the order given; panics when one is missing.
fn positions(body: &str, names: &[&str]) -> Vec<usize> {
    names
        .iter()
        .map(|name| body.find(name).unwrap_or_else(|| panic!("{name} missing:\n{body}")))
        .collect()
}

/// The part of a results page that lists the organisations that fit.
fn results(body: &str) -> &str {
    let start = body.find("<ol class=\"nrm-results\">").expect("a list of results");
    let end = start + body[start..].find("</ol>").unwrap();
    &body[start..end]
}

async fn a_sixteen_year_old_forced_to_sell_drugs_near_rotterdam_finds_help_in_order(app: TestApp) {
    let question = "age=16&form=criminal&region=rotterdam&language=pl";
    let page = get(&app, &format!("/hulp/nl/zoeken?{question}"), None).await;
    assert_eq!(page.status, 200, "{}", page.body);
    let list = results(&page.body);
    let order = positions(
        list,
        &[
            "id=\"org-fier\"",
            "id=\"org-zorgcoordinatie-rotterdam\"",
            "id=\"org-slachtofferhulp\"",
            "id=\"org-comensha\"",
        ],
    );
    assert!(
        order.windows(2).all(|w| w[0] < w[1]),
        "anonymous chat, the region, then national: {list}"
    );
    for elsewhere in ["zorgcoordinatie-amsterdam", "csg", "offlimits", "police"] {
        let elsewhere = format!("id=\"org-{elsewhere}\"");
        assert!(!list.contains(&elsewhere), "{elsewhere} does not fit:\n{list}");
    }
    assert!(
        list.contains("Anonieme hulp online") && list.contains("In jouw regio"),
        "why each fits"
    );
    assert!(
        list.contains("href=\"https://www.chatmetfier.nl\""),
        "the chat is linked"
    );
    assert!(
        page.body.contains("Geen van deze organisaties noemt Pools als taal"),
        "no organisation lists Polish: say so"
    );
    // The police stand apart: help does not depend on reporting.
    let police = page.body.find("Aangifte doen</h2>").expect("the police apart");
    assert!(police > page.body.find("</ol>").unwrap());
    assert!(page.body.contains("tel:0900-8844") || page.body.contains("tel:09008844"));

    // In English, the same order and the page's own words; the question is kept on switching.
    let english = get(&app, &format!("/hulp/en/zoeken?{question}"), None).await;
    assert_eq!(english.status, 200);
    assert!(english.body.contains("<html lang=\"en\""));
    assert!(english.body.contains("None of these organisations lists Polish"));
    let list = results(&english.body);
    assert!(list.contains("Anonymous help online"));
    assert!(
        list.contains("<p>Chat met Fier is an anonymous chat"),
        "the organisation's own English description"
    );
    assert!(
        page.body
            .contains(&format!("href=\"/hulp/en/zoeken?{}\"", question.replace('&', "&#38;"))),
        "the language switch keeps the question"
    );

    // Nothing answered: everyone who helps, anonymous online help first.
    let all = get(&app, "/hulp/nl/zoeken", None).await;
    assert_eq!(all.status, 200);
    let list = results(&all.body);
    assert!(
        list.starts_with("<ol class=\"nrm-results\">\n<li>\n<article class=\"nrm-org\" id=\"org-fier\""),
        "{list}"
    );
    assert!(list.contains("Centrum Seksueel Geweld") && list.contains("Nidos"));
}
api_test!(a_sixteen_year_old_forced_to_sell_drugs_near_rotterdam_finds_help_in_order);

async fn wrong_answers_are_named_and_nothing_is_kept(app: TestApp) {
    let coordinator = app.actors().comensha_coordinator;
    let audit_size = || async {
        let trail: serde_json::Value = app
            .get("/api/v1/audit?limit=100", &coordinator)
            .await
            .json()
            .await
            .unwrap();
        trail["items"].as_array().unwrap().len()
    };
    let before = audit_size().await;
    let page = get(
        &app,
        "/hulp/nl/zoeken?age=zestien&form=drugs&region=mars&language=klingon",
        None,
    )
    .await;
    assert_eq!(page.status, 422, "{}", page.body);
    for (field, message) in [
        ("age", "Vul je leeftijd in als een getal"),
        ("form", "Kies wat er is gebeurd"),
        ("region", "Kies een regio uit de lijst"),
        ("language", "Kies een taal uit de lijst"),
    ] {
        assert!(
            page.body.contains(&format!("href=\"#q-{field}\">{message}")),
            "{field}:\n{}",
            page.body
        );
        assert!(
            page.body.contains(&format!("id=\"q-{field}-error\"")),
            "{field} tied to its field"
        );
    }
    assert!(!page.body.contains("nrm-results"), "no list for wrong answers");
    assert_eq!(get(&app, "/hulp/nl/zoeken?age=200", None).await.status, 422);
    for missing in ["/hulp/de", "/hulp/NL", "/hulp/nl/voor/iedereen"] {
        let page = get(&app, missing, None).await;
        assert_eq!(page.status, 404, "{missing}");
        assert!(
            page.body.contains("id=\"nrm-leave\""),
            "the way out on the 404 page too"
        );
    }
    for _ in 0..3 {
        get(&app, "/hulp/nl/zoeken?age=16&form=sexual", None).await;
    }
    assert_eq!(audit_size().await, before, "asking leaves no trace in the audit trail");
}
api_test!(wrong_answers_are_named_and_nothing_is_kept);

/// Every page of the information point, in both languages.
fn every_page() -> Vec<String> {
    let mut pages = Vec::new();
    for lang in ["nl", "en"] {
        for rest in [
            "",
            "/voor/slachtoffers",
            "/voor/naasten",
            "/voor/professionals",
            "/zoeken?age=16&form=criminal&region=rotterdam&language=pl",
            "/zoeken",
            "/organisaties",
            "/wat-gebeurt-er",
        ] {
            pages.push(format!("/hulp/{lang}{rest}"));
        }
    }
    pages
}

fn attribute_values<'a>(body: &'a str, attribute: &str) -> Vec<&'a str> {
    body.match_indices(&format!("{attribute}=\""))
        .filter_map(|(i, m)| body[i + m.len()..].split('"').next())
        .collect()
}

async fn every_page_is_small_cookieless_and_has_a_way_out(app: TestApp) {
    let leave_url = &app.settings.web.information_point.leave_url;
    for path in every_page() {
        let page = get(&app, &path, None).await;
        assert_eq!(page.status, 200, "{path}: {}", page.body);
        assert!(page.headers.get("set-cookie").is_none(), "{path} sets no cookie");
        assert_eq!(page.headers["cache-control"], "no-store", "{path}");
        assert_eq!(page.headers["referrer-policy"], "no-referrer", "{path}");
        let csp = page.headers["content-security-policy"].to_str().unwrap();
        assert!(
            csp.starts_with("default-src 'none'") && csp.contains("script-src 'self'"),
            "{path}: {csp}"
        );
        assert!(
            page.body.contains(&format!("id=\"nrm-leave\" href=\"{leave_url}\"")),
            "{path}: the leave link works without script too"
        );
        assert!(
            page.body.contains("In direct gevaar? Bel 112.") || page.body.contains("In immediate danger? Call 112.")
        );
        // Nothing is loaded from anywhere else: scripts and sheets are this site's own.
        let src = attribute_values(&page.body, "src");
        let sheets: Vec<&str> = attribute_values(&page.body, "href")
            .into_iter()
            .filter(|h| h.starts_with("/assets/"))
            .collect();
        assert!(src.iter().all(|s| s.starts_with("/assets/")), "{path}: {src:?}");
        assert!(!page.body.contains("<img") && !page.body.contains("<iframe"), "{path}");
        assert!(
            !page.body.contains("<input type=\"hidden\""),
            "{path}: no token, nothing to track"
        );
        // The page with everything it loads, as a cheap phone fetches it the first time.
        let mut bytes = page.body.len();
        for asset in src.iter().chain(sheets.iter()) {
            let asset = get(&app, &asset.replace("&amp;", "&"), None).await;
            assert_eq!(asset.status, 200);
            bytes += asset.body.len();
        }
        assert!(bytes < 100_000, "{path}: {bytes} bytes with its CSS and script");
        assert_eq!(
            src.len() + sheets.len(),
            3,
            "{path}: the theme, the sheet and the script"
        );
    }
    // The start goes to the browser's language; nothing remembers it.
    let start = get(&app, "/hulp", None).await;
    assert_eq!(
        (start.status, start.headers["location"].to_str().unwrap()),
        (303, "/hulp/nl")
    );
    let start = get(&app, "/hulp", Some("en-GB,en;q=0.9")).await;
    assert_eq!(start.headers["location"], "/hulp/en");
    assert!(start.headers.get("set-cookie").is_none());
}
api_test!(every_page_is_small_cookieless_and_has_a_way_out);

async fn an_organisations_description_keeps_the_language_it_is_written_in(backend: crate::helpers::Backend) {
    // Offlimits described in Dutch and Polish only.
    let shipped = std::fs::read_to_string(crate::helpers::manifest_dir().join("config/organisations.toml")).unwrap();
    let english = shipped
        .lines()
        .find(|l| l.starts_with("about.en = \"Offlimits"))
        .expect("Offlimits' English description");
    let registry = shipped.replace(
        english,
        "about.pl = \"Offlimits pomaga usunąć z internetu zdjęcia o charakterze seksualnym.\"",
    );
    let path = std::env::temp_dir().join(format!("nrm-registry-{}-{:?}.toml", std::process::id(), backend));
    std::fs::write(&path, registry).unwrap();
    let Some(app) = crate::helpers::on(backend, |s| s.registry.organisations_file = path.clone()).await else {
        return;
    };
    let page = get(&app, "/hulp/en/organisaties", None).await;
    assert_eq!(page.status, 200);
    let offlimits = &page.body[page.body.find("id=\"org-offlimits\"").unwrap()..];
    let offlimits = &offlimits[..offlimits.find("</article>").unwrap()];
    assert!(
        offlimits.contains("<p lang=\"nl\">Offlimits helpt"),
        "no English description: the first configured one, marked as Dutch:\n{offlimits}"
    );
    let dutch = get(&app, "/hulp/nl/organisaties", None).await;
    assert!(
        dutch.body.contains("<p>Offlimits helpt"),
        "Dutch on the Dutch page, unmarked"
    );
    let _ = std::fs::remove_file(&path);
}
crate::backend_test!(an_organisations_description_keeps_the_language_it_is_written_in);
