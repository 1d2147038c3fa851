//! The focal point's export of a period's cases and referrals in IOM's Human Trafficking
//! Case Data Standard (`domain::htcds`), as CSV, with pseudonymised ids only. Audited.

use std::collections::HashMap;

use chrono::NaiveDate;

use super::{AppError, AppResult, Ctx};
use crate::db::{Instant, cases as case_rows, referrals as referral_rows};
use crate::domain::access;
use crate::domain::htcds::{HEADER, RowFacts, csv_line, row};
use crate::domain::ids::CaseId;
use crate::domain::referral::Referral;

/// A pseudonym for an id in the export: a keyed hash, stable across exports (so a
/// researcher can follow one case over years) and meaningless without the service's key.
fn pseudonym(ctx: &Ctx, kind: &str, id: uuid::Uuid) -> String {
    let hash = ctx.keyring().keyed_hash(format!("htcds-{kind}:{id}").as_bytes());
    hash.chars().take(20).collect()
}

/// Cases and referrals of the days `from` to `to` (inclusive) as HTCDS CSV: a row per
/// referral submitted in the period, and a row per case opened in it that was never handed
/// over (focal point).
#[tracing::instrument(skip_all)]
pub fn export(ctx: &mut Ctx, from: NaiveDate, to: NaiveDate) -> AppResult<String> {
    access::oversee(ctx.actor.principal())?;
    let start = |d: NaiveDate| Instant::from_utc(d.and_time(chrono::NaiveTime::MIN).and_utc());
    let after = to
        .succ_opt()
        .ok_or_else(|| AppError::field("to", "is too far in the future"))?;
    let (from_at, to_at) = (start(from), start(after));
    let referred = referral_rows::submitted_between(ctx.conn, from_at, to_at)?;
    let unreferred = referral_rows::cases_never_referred(ctx.conn, from_at, to_at)?;
    let mut case_ids: Vec<CaseId> = referred.iter().map(|r| r.case_id).collect();
    case_ids.extend(&unreferred);
    case_ids.sort();
    case_ids.dedup();
    let cases: HashMap<CaseId, crate::domain::case::Case> = case_rows::cases(ctx.conn, &case_ids)?
        .into_iter()
        .map(|c| (c.id, c))
        .collect();
    // A case's status depends on all its referrals, also those of other periods.
    let mut all: HashMap<CaseId, Vec<Referral>> = HashMap::new();
    for id in &case_ids {
        all.insert(*id, referral_rows::referrals_of(ctx.conn, *id)?);
    }
    let name = |slug: &str| {
        ctx.registry()
            .get(slug)
            .map(|o| o.name.clone())
            .unwrap_or_else(|| slug.to_string())
    };
    let mut out = csv_line(&HEADER.map(String::from));
    let mut rows = 0_usize;
    let lines: Vec<(CaseId, Option<&Referral>)> = referred
        .iter()
        .map(|r| (r.case_id, Some(r)))
        .chain(unreferred.iter().map(|c| (*c, None)))
        .collect();
    for (case_id, referral) in lines {
        let Some(case) = cases.get(&case_id) else {
            continue;
        };
        let of_case: Vec<&Referral> = all.get(&case_id).map(|v| v.iter().collect()).unwrap_or_default();
        let case_key = pseudonym(ctx, "case", case_id.0);
        let referral_key = referral.map(|r| pseudonym(ctx, "referral", r.id.0)).unwrap_or_default();
        out.push_str(&csv_line(&row(&RowFacts {
            case,
            referrals: &of_case,
            referral,
            case_key: &case_key,
            referral_key: &referral_key,
            name: &name,
        })));
        rows += 1;
    }
    let audit_id = ctx.new_id();
    ctx.audit(
        "export.htcds",
        "export",
        audit_id,
        None,
        &format!("{from}..{to} rows={rows}"),
    )?;
    Ok(out)
}
