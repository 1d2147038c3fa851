//! Stylesheets, embedded in the binary: a fresh clone serves the whole application with no
//! npm step and no request to another host. URLs carry a hash of the content, so browsers
//! may keep a file for a year and still see a new one after an upgrade.

use std::sync::OnceLock;

use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpRequest, HttpResponse, get, web};

struct Asset {
    name: &'static str,
    content_type: &'static str,
    body: &'static [u8],
}

const ASSETS: &[Asset] = &[
    Asset {
        name: "component-library.css",
        content_type: "text/css; charset=utf-8",
        body: include_bytes!("../../web/vendor/utrecht/component-library.css"),
    },
    Asset {
        name: "theme.css",
        content_type: "text/css; charset=utf-8",
        body: include_bytes!("../../web/static/theme.css"),
    },
    Asset {
        name: "app.css",
        content_type: "text/css; charset=utf-8",
        body: include_bytes!("../../web/static/app.css"),
    },
    Asset {
        name: "public.css",
        content_type: "text/css; charset=utf-8",
        body: include_bytes!("../../web/static/public.css"),
    },
    Asset {
        name: "leave.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_bytes!("../../web/static/leave.js"),
    },
];

/// In the order pages link them: the components, the theme's tokens, the layout.
pub const STYLESHEETS: [&str; 3] = ["component-library.css", "theme.css", "app.css"];

fn hashes() -> &'static Vec<String> {
    static HASHES: OnceLock<Vec<String>> = OnceLock::new();
    HASHES.get_or_init(|| {
        ASSETS
            .iter()
            .map(|a| {
                use sha2::Digest;
                let digest = sha2::Sha256::digest(a.body);
                digest.iter().take(6).map(|b| format!("{b:02x}")).collect()
            })
            .collect()
    })
}

/// The URL of an asset, with its content hash.
pub fn url(name: &str) -> String {
    match ASSETS.iter().position(|a| a.name == name) {
        Some(index) => format!("/assets/{}?v={}", name, hashes()[index]),
        None => format!("/assets/{name}"),
    }
}

#[get("/assets/{name}")]
pub async fn serve(req: HttpRequest, name: web::Path<String>) -> HttpResponse {
    let Some(index) = ASSETS.iter().position(|a| a.name == name.as_str()) else {
        return HttpResponse::NotFound()
            .content_type("text/plain; charset=utf-8")
            .body("404 Not Found");
    };
    let asset = &ASSETS[index];
    let etag = format!("\"{}\"", hashes()[index]);
    let fresh = req
        .headers()
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == etag));
    let mut response = if fresh {
        HttpResponse::NotModified()
    } else {
        HttpResponse::Ok()
    };
    response
        .insert_header((header::ETAG, etag))
        .insert_header((
            header::CACHE_CONTROL,
            HeaderValue::from_static("public, max-age=31536000, immutable"),
        ))
        .insert_header((header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff")));
    if fresh {
        response.finish()
    } else {
        response.content_type(asset.content_type).body(asset.body)
    }
}
