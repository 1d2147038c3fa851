//! Identification: reasonable grounds recorded by the owning organisation's caseworkers
//! (Art. 11(2)), the final decision by the national focal point's coordinators.

use super::access::{case_for_identification, writable};
use super::cases::{CaseBundle, CaseView};
use super::{AppError, AppResult, Ctx};
use crate::db::Id;
use crate::db::cases::{self as case_rows, IdentificationDecisionRow};
use crate::domain::access::Role;
use crate::domain::case::{IdentificationActor, IdentificationDecision, IdentificationRefusal, decide_identification};
use crate::domain::ids::CaseId;
use crate::domain::text::Text;

/// Records an identification decision. Reasonable grounds for a third-country national
/// start the reflection and recovery period.
#[tracing::instrument(skip_all, fields(case = %id, decision = %decision))]
pub fn record(ctx: &mut Ctx, id: CaseId, decision: IdentificationDecision, basis: Text) -> AppResult<CaseView> {
    // Visibility and role before the case's state: a closed or erased case of another
    // organisation answers like a random id.
    let mut case = case_for_identification(ctx, id)?;
    let who = IdentificationActor {
        caseworker_of_owner: case.organisation == ctx.actor.org && ctx.actor.has(Role::Caseworker),
        coordinator_of_focal_point: ctx.actor.principal().is_focal_point_coordinator(),
    };
    let decided = decide_identification(case.identification_status, decision, who);
    if decided != Err(IdentificationRefusal::Forbidden) {
        writable(&case)?;
    }
    let next = decided.map_err(|refusal| match refusal {
        IdentificationRefusal::Forbidden => AppError::Forbidden(match decision {
            IdentificationDecision::ReasonableGrounds => {
                "reasonable grounds are recorded by a caseworker of the owning organisation".into()
            }
            _ => "identification is decided by a coordinator of the national focal point".into(),
        }),
        IdentificationRefusal::NotAllowedFrom { status } => AppError::conflict(format!(
            "`{}` cannot be decided while the case is `{}`",
            decision.as_str(),
            status.as_str()
        )),
    })?;
    let version = case.version;
    case.identification_status = next;
    if decision == IdentificationDecision::ReasonableGrounds {
        case.record_reasonable_grounds(ctx.today(), ctx.services.settings.cases.reflection_period_days);
    }
    case.version += 1;
    case.updated_at = ctx.now.0;
    if !case_rows::save_case(ctx.conn, &case, version)? {
        return Err(AppError::StaleVersion);
    }
    let decision_id = Id(ctx.new_id());
    case_rows::insert_identification_decision(
        ctx.conn,
        &IdentificationDecisionRow {
            id: decision_id,
            case_id: Id(id.0),
            decision: decision.as_str().into(),
            basis: ctx
                .keyring()
                .seal("identification_decisions.basis", decision_id, basis.as_str()),
            actor_sub: ctx.actor.sub.clone(),
            actor_org: ctx.actor.org.clone(),
            decided_at: ctx.now,
        },
    )?;
    let action = format!("identification.{}", decision.as_str());
    ctx.audit(&action, "case", id.0, Some(id), next.as_str())?;
    Ok(CaseBundle::load(ctx, id)?.view())
}
