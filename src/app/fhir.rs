//! The FHIR R4 view of referrals: `Task` resources for the organisations that may read the
//! referral through the API, under the same rules (`domain::access::read_referral`), so a
//! partner's system can pull what a webhook announced. The mapping is `domain::fhir`.

use serde_json::{Value, json};

use super::access::readable_referral;
use super::{AppResult, Ctx, Page};
use crate::db::referrals as referral_rows;
use crate::domain::access;
use crate::domain::fhir::{TaskContext, task};
use crate::domain::ids::ReferralId;
use crate::domain::referral::{Referral, ReferralState};

/// A task search: `owner` (an organisation slug) and `status` (as `domain::fhir` maps it).
#[derive(Debug, Clone)]
pub struct TaskSearch {
    pub owner: Option<String>,
    pub status: Option<ReferralState>,
    /// The FHIR status as asked, for the bundle's links.
    pub status_text: Option<String>,
    pub page: Page,
}

fn base(ctx: &Ctx) -> String {
    ctx.services
        .settings
        .notifications
        .public_base_url
        .trim_end_matches('/')
        .to_string()
}

fn as_task(ctx: &Ctx, referral: &Referral) -> Value {
    let name = |slug: &str| {
        ctx.registry()
            .get(slug)
            .map(|o| o.name.clone())
            .unwrap_or_else(|| slug.to_string())
    };
    let (from_name, to_name) = (name(&referral.from_organisation), name(&referral.to_organisation));
    let base = base(ctx);
    task(
        referral,
        &TaskContext {
            base: &base,
            from_name: &from_name,
            to_name: &to_name,
        },
    )
}

/// One referral as a `Task` (sender's and receiver's staff, machines with `nrm:referral.read`).
#[tracing::instrument(skip_all, fields(referral = %id))]
pub fn get_task(ctx: &mut Ctx, id: ReferralId) -> AppResult<Value> {
    let referral = readable_referral(ctx, id)?;
    Ok(as_task(ctx, &referral))
}

/// The referrals the caller may read as a `searchset` Bundle, newest first, with a `next`
/// link while more follow.
#[tracing::instrument(skip_all)]
pub fn search_tasks(ctx: &mut Ctx, search: TaskSearch) -> AppResult<Value> {
    access::list_referrals(ctx.actor.principal())?;
    let org = ctx.actor.org.clone();
    let rows = referral_rows::task_page(
        ctx.conn,
        &org,
        search.owner.as_deref(),
        search.status,
        search.page.before.map(ReferralId),
        search.page.fetch(),
    )?;
    let (rows, next) = search.page.finish(rows, |r| r.id.0);
    let base = base(ctx);
    let link = |cursor: Option<&str>| {
        let mut query = form_urlencoded::Serializer::new(String::new());
        if let Some(owner) = &search.owner {
            query.append_pair("owner", owner);
        }
        if let Some(status) = &search.status_text {
            query.append_pair("status", status);
        }
        query.append_pair("_count", &search.page.limit.to_string());
        if let Some(cursor) = cursor {
            query.append_pair("_cursor", cursor);
        }
        format!("{base}/fhir/Task?{}", query.finish())
    };
    let mut links = vec![json!({ "relation": "self", "url": link(None) })];
    if let Some(cursor) = &next {
        links.push(json!({ "relation": "next", "url": link(Some(cursor)) }));
    }
    let entries: Vec<Value> = rows
        .iter()
        .map(|r| {
            json!({
                "fullUrl": format!("{base}/fhir/Task/{}", r.id.0),
                "resource": as_task(ctx, r),
                "search": { "mode": "match" },
            })
        })
        .collect();
    Ok(json!({
        "resourceType": "Bundle",
        "type": "searchset",
        "link": links,
        "entry": entries,
    }))
}
