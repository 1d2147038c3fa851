//! HTTP routes. Handlers are thin: parse, authorise, call the domain, persist in one
//! transaction, respond. This module also assembles the OpenAPI document from the handlers
//! and maps extractor failures (bad JSON, bad path or query) to problem+json.

pub mod admin;
pub mod cases;
pub mod common;
pub mod context;
pub mod fhir;
pub mod health;
pub mod input;
pub mod organisations;
pub mod oversight;
pub mod privacy;
pub mod referrals;
pub mod routing;
pub mod three_way;
pub mod webhooks;

use actix_web::error::{JsonPayloadError, PathError, QueryPayloadError};
use actix_web::{HttpRequest, HttpResponse, get, web};
use utoipa::openapi::RefOr;
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::{Modify, OpenApi};
use utoipa_actix_web::AppExt;
use utoipa_actix_web::service_config::ServiceConfig;

use crate::error::{ApiError, FieldError, Problem};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "nrm — national referral mechanism",
        description = "Explicit, consented, timed and audited handovers of possible victims of human \
                       trafficking between partner organisations (Directive (EU) 2024/1712)."
    ),
    modifiers(&BearerAuth),
    components(schemas(Problem, FieldError)),
    tags(
        (name = "health", description = "Liveness and readiness, without authentication"),
        (name = "organisations", description = "The registry of partner organisations"),
        (name = "cases", description = "Cases, identification and the anonymous notification"),
        (name = "consent", description = "Informed consent and statutory bases"),
        (name = "referrals", description = "Handovers between organisations and their state machine"),
        (name = "routing", description = "Explained suggestions of where a case could go next"),
        (name = "privacy", description = "Disclosures, subject access, closure, erasure and search by name"),
        (name = "three-way conversations", description = "Conversations with a police investigator in the chat"),
        (name = "oversight", description = "Audit trail and case-flow monitoring for the national focal point"),
        (name = "statistics", description = "Published figures, without personal data"),
        (name = "admin", description = "Operating the service: the notification outbox"),
        (name = "meta", description = "This API's own description"),
    )
)]
struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        let mut scheme = Http::new(HttpAuthScheme::Bearer);
        scheme.bearer_format = Some("JWT".into());
        scheme.description = Some("A JWT with claims sub, org, roles, exp, iat, iss and aud.".into());
        components.add_security_scheme("bearer", SecurityScheme::Http(scheme));
    }
}

/// Registers every route. Used for the real app and for the OpenAPI document alike.
pub fn configure(cfg: &mut ServiceConfig) {
    cfg.service(health::live)
        .service(health::ready)
        .service(fhir::task)
        .service(fhir::search)
        .service(
            utoipa_actix_web::scope("/api/v1")
                .service(openapi_json)
                .service(organisations::list)
                .service(organisations::get)
                .service(privacy::search)
                .service(cases::create)
                .service(cases::list)
                .service(cases::get)
                .service(cases::update)
                .service(cases::identification)
                .service(cases::create_consent)
                .service(cases::list_consents)
                .service(cases::withdraw_consent)
                .service(cases::legal_basis)
                .service(cases::anonymous_notification)
                .service(cases::list_anonymous_notifications)
                .service(routing::suggestions)
                .service(privacy::disclosures)
                .service(privacy::export)
                .service(privacy::close)
                .service(privacy::erase)
                .service(organisations::set_capacity)
                .service(referrals::create)
                .service(referrals::list)
                .service(referrals::get)
                .service(referrals::transition)
                .service(referrals::assign)
                .service(three_way::create)
                .service(three_way::list_for_case)
                .service(three_way::list_invited)
                .service(three_way::get)
                .service(three_way::transition)
                .service(oversight::audit_list)
                .service(oversight::audit_verify)
                .service(oversight::flows)
                .service(oversight::report)
                .service(oversight::three_way_course)
                .service(oversight::eu_export)
                .service(oversight::htcds_export)
                .service(admin::outbox_list)
                .service(admin::outbox_retry)
                .service(webhooks::create)
                .service(webhooks::list)
                .service(webhooks::get)
                .service(webhooks::remove)
                .service(webhooks::rotate_secret)
                .service(webhooks::pause)
                .service(webhooks::resume)
                .service(webhooks::deliveries),
        );
}

/// The OpenAPI document the code describes: committed as `openapi/nrm.json`.
pub fn openapi() -> utoipa::openapi::OpenApi {
    let (_, mut document) = actix_web::App::new()
        .into_utoipa_app()
        .openapi(ApiDoc::openapi())
        .configure(configure)
        .split_for_parts();
    // Every /api/v1 and /fhir route needs a bearer token, except the document itself.
    for (path, item) in document.paths.paths.iter_mut() {
        if (path.starts_with("/api/v1") || path.starts_with("/fhir/")) && path != "/api/v1/openapi.json" {
            for operation in operations_mut(item) {
                operation.security = Some(vec![utoipa::openapi::security::SecurityRequirement::new(
                    "bearer",
                    Vec::<String>::new(),
                )]);
                add_shared_responses(operation);
            }
        }
    }
    let components = document.components.get_or_insert_with(Default::default);
    for (name, _, response) in shared_responses() {
        components.responses.insert(name.to_string(), RefOr::T(response));
    }
    document
}

/// The refusals every operation of a kind can answer, defined once under
/// `components/responses` and referenced by each operation they apply to: what an
/// operation documents is what it can answer.
fn shared_responses() -> Vec<(&'static str, &'static str, utoipa::openapi::Response)> {
    let problem = serde_json::json!({
        "application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}
    });
    let definitions = [
        (
            "BadRequest",
            "400",
            "The request is malformed: a body that is not JSON, or a header in the wrong form (e.g. `Idempotency-Key`).",
            None,
        ),
        (
            "Unauthorized",
            "401",
            "No valid bearer token. `WWW-Authenticate: Bearer error=\"invalid_token\"` when one was sent.",
            Some(("WWW-Authenticate", "The authentication scheme (RFC 6750).")),
        ),
        (
            "NotFound",
            "404",
            "No such resource, or one the caller may not know of.",
            None,
        ),
        (
            "RequestTimeout",
            "408",
            "The request body did not arrive within `server.body_read_timeout`.",
            None,
        ),
        (
            "PreconditionFailed",
            "412",
            "`If-Match` does not name the current version (compared strongly): fetch the resource again.",
            None,
        ),
        (
            "PayloadTooLarge",
            "413",
            "The body is larger than `server.body_limit_bytes`.",
            None,
        ),
        (
            "UnsupportedMediaType",
            "415",
            "The body is not `application/json`.",
            None,
        ),
        (
            "Invalid",
            "422",
            "One or more fields or query parameters are invalid; `errors` names each.",
            None,
        ),
        (
            "PreconditionRequired",
            "428",
            "`If-Match` is missing (or `*`): a change must name the version the person saw.",
            None,
        ),
        (
            "TooManyRequests",
            "429",
            "Over the rate limit: wait as `Retry-After` says.",
            Some(("Retry-After", "Seconds to wait.")),
        ),
        (
            "Unavailable",
            "503",
            "The database is busy or unreachable; retry later.",
            None,
        ),
    ];
    definitions
        .into_iter()
        .filter_map(|(name, status, description, header)| {
            let mut response = serde_json::json!({"description": description, "content": problem});
            if let Some((header, about)) = header {
                response["headers"] = serde_json::json!({
                    header: {"description": about, "schema": {"type": "string"}}
                });
            }
            serde_json::from_value(response).ok().map(|r| (name, status, r))
        })
        .collect()
}

/// Adds the shared refusals that apply to `operation`, by what it takes: every one can be
/// unauthorised, rate limited or unavailable; a body can be malformed, too large, of the
/// wrong type, invalid or too slow; query parameters can be invalid; a path id can be
/// unknown; `If-Match` can be missing or stale.
fn add_shared_responses(operation: &mut utoipa::openapi::path::Operation) {
    use utoipa::openapi::path::ParameterIn;
    let parameters: Vec<&utoipa::openapi::path::Parameter> = operation
        .parameters
        .iter()
        .flatten()
        .filter_map(|p| match p {
            RefOr::T(parameter) => Some(parameter),
            RefOr::Ref(_) => None,
        })
        .collect();
    let takes = |place: ParameterIn| parameters.iter().any(|p| p.parameter_in == place);
    let header = |name: &str| {
        parameters
            .iter()
            .any(|p| p.parameter_in == ParameterIn::Header && p.name == name)
    };
    let body = operation.request_body.is_some();
    let mut apply = vec!["Unauthorized", "TooManyRequests", "Unavailable"];
    if body {
        apply.extend([
            "BadRequest",
            "RequestTimeout",
            "PayloadTooLarge",
            "UnsupportedMediaType",
            "Invalid",
        ]);
    }
    if takes(ParameterIn::Query) {
        apply.push("Invalid");
    }
    if header("Idempotency-Key") {
        apply.push("BadRequest");
    }
    if takes(ParameterIn::Path) {
        apply.push("NotFound");
    }
    if header("If-Match") {
        apply.extend(["PreconditionFailed", "PreconditionRequired"]);
    }
    for (name, status, _) in shared_responses() {
        if apply.contains(&name) {
            operation.responses.responses.insert(
                status.to_string(),
                RefOr::Ref(utoipa::openapi::Ref::new(format!("#/components/responses/{name}"))),
            );
        }
    }
}

fn operations_mut(item: &mut utoipa::openapi::PathItem) -> Vec<&mut utoipa::openapi::path::Operation> {
    [
        item.get.as_mut(),
        item.put.as_mut(),
        item.post.as_mut(),
        item.delete.as_mut(),
        item.patch.as_mut(),
    ]
    .into_iter()
    .flatten()
    .collect()
}

/// The document as pretty JSON, exactly as committed in `openapi/nrm.json`.
pub fn openapi_json_text() -> String {
    let mut text = openapi().to_pretty_json().unwrap_or_else(|_| "{}".into());
    text.push('\n');
    text
}

/// The pre-rendered OpenAPI document, shared by workers.
pub struct OpenApiText(pub String);

/// The OpenAPI 3.1 document of this service.
#[utoipa::path(
    tag = "meta",
    responses((status = 200, description = "The OpenAPI document", content_type = "application/json"))
)]
#[get("/openapi.json")]
async fn openapi_json(text: web::Data<OpenApiText>) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/json")
        .insert_header(("Cache-Control", "no-cache"))
        .body(text.0.clone())
}

/// Extractor settings: limits and problem+json for every kind of bad input.
pub fn extractor_configs(
    body_limit: usize,
) -> (web::JsonConfig, web::PathConfig, web::QueryConfig, web::PayloadConfig) {
    let json = web::JsonConfig::default().limit(body_limit).error_handler(json_error);
    let path = web::PathConfig::default().error_handler(path_error);
    let query = web::QueryConfig::default().error_handler(query_error);
    let payload = web::PayloadConfig::default().limit(body_limit);
    (json, path, query, payload)
}

fn json_error(error: JsonPayloadError, _req: &HttpRequest) -> actix_web::Error {
    let api = match &error {
        JsonPayloadError::OverflowKnownLength { .. } | JsonPayloadError::Overflow { .. } => ApiError::PayloadTooLarge,
        JsonPayloadError::ContentType => ApiError::UnsupportedMediaType,
        JsonPayloadError::Payload(e) if crate::connections::is_body_timeout(e) => ApiError::RequestTimeout,
        JsonPayloadError::Deserialize(e) if e.is_data() => ApiError::Validation(vec![field_error_from_serde(e)]),
        JsonPayloadError::Deserialize(e) => ApiError::BadRequest(format!(
            "the body is not valid JSON (line {}, column {})",
            e.line(),
            e.column()
        )),
        _ => ApiError::BadRequest("the request body could not be read".into()),
    };
    api.into()
}

/// A serde data error as a field error. serde's message names the field and the expected
/// shape; values a client sent are cut off so they cannot echo back (or into logs).
fn field_error_from_serde(error: &serde_json::Error) -> FieldError {
    let message = error.to_string();
    let message = message.split(" at line ").next().unwrap_or(&message).to_string();
    let field = message
        .split('`')
        .nth(1)
        .filter(|_| message.starts_with("unknown field") || message.starts_with("missing field"))
        .unwrap_or("body")
        .to_string();
    FieldError::new(field, redact_serde_message(&message))
}

/// Removes client values from serde messages (`invalid value: string "Jan"`,
/// `unknown variant `Jan``), keeping what was expected.
fn redact_serde_message(message: &str) -> String {
    let mut text = message.to_string();
    if let Some(start) = text.find(": string \"")
        && let Some(end_rel) = text[start + 10..].find('"')
    {
        let end = start + 10 + end_rel + 1;
        text = format!("{}: a string{}", &text[..start], &text[end..]);
    }
    for lead in ["unknown variant `", "invalid type: string `", "invalid value: string `"] {
        if let Some(start) = text.find(lead)
            && let Some(end_rel) = text[start + lead.len()..].find('`')
        {
            let end = start + lead.len() + end_rel + 1;
            text = format!("{}{}", &text[..start + lead.len() - 2], &text[end..]);
        }
    }
    text
}

fn path_error(error: PathError, _req: &HttpRequest) -> actix_web::Error {
    let detail = match &error {
        PathError::Deserialize(e) => format!("a path parameter is invalid: {}", redact_serde_message(&e.to_string())),
        _ => "a path parameter is invalid".into(),
    };
    ApiError::BadRequest(detail).into()
}

fn query_error(error: QueryPayloadError, _req: &HttpRequest) -> actix_web::Error {
    let detail = match &error {
        QueryPayloadError::Deserialize(e) => redact_serde_message(&e.to_string()),
        _ => "the query string is invalid".into(),
    };
    ApiError::Validation(vec![FieldError::new("query", detail)]).into()
}

/// The routes of the API by path template, with their methods, from the OpenAPI document:
/// what tells a wrong method (405 with `Allow`) from a wrong path (404).
pub struct RouteTable(Vec<(Vec<String>, Vec<String>)>);

impl RouteTable {
    pub fn from_document(document: &utoipa::openapi::OpenApi) -> Self {
        let routes = document
            .paths
            .paths
            .iter()
            .map(|(path, item)| {
                let segments = path.split('/').map(str::to_string).collect();
                let methods = [
                    (item.get.is_some(), "GET"),
                    (item.put.is_some(), "PUT"),
                    (item.post.is_some(), "POST"),
                    (item.delete.is_some(), "DELETE"),
                    (item.patch.is_some(), "PATCH"),
                ]
                .into_iter()
                .filter(|(present, _)| *present)
                .map(|(_, method)| method.to_string())
                .collect();
                (segments, methods)
            })
            .collect();
        Self(routes)
    }

    /// The methods of the route `path` matches, if it matches one; `{x}` matches any segment.
    pub fn methods(&self, path: &str) -> Option<Vec<String>> {
        let asked: Vec<&str> = path.split('/').collect();
        let mut methods: Vec<String> = Vec::new();
        for (template, route_methods) in &self.0 {
            let matches = template.len() == asked.len()
                && template
                    .iter()
                    .zip(&asked)
                    .all(|(t, a)| (t.starts_with('{') && t.ends_with('}') && !a.is_empty()) || t == a);
            if matches {
                methods.extend(route_methods.iter().cloned());
            }
        }
        (!methods.is_empty()).then_some(methods)
    }
}

/// Requests no route took: 405 with `Allow` when the path exists with other methods,
/// otherwise 404. Both problem+json.
pub async fn not_found(req: HttpRequest, routes: web::Data<RouteTable>) -> Result<HttpResponse, ApiError> {
    match routes.methods(req.path()) {
        Some(methods) => Err(ApiError::MethodNotAllowed {
            allow: methods.join(", "),
        }),
        None => Err(ApiError::NotFound),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serde_values_are_redacted() {
        let message = "invalid value: string \"Jan Jansen\", expected a date";
        let redacted = redact_serde_message(message);
        assert!(!redacted.contains("Jan"));
        assert!(redacted.contains("expected a date"));
        let redacted = redact_serde_message("unknown variant `Jan`, expected one of `victim`");
        assert!(!redacted.contains("Jan"), "{redacted}");
        assert!(redacted.contains("expected one of `victim`"), "{redacted}");
    }
}
