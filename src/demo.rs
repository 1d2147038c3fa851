//! `nrm demo seed`: a synthetic, realistic data set, so that anyone can try the service and
//! the statistics and oversight routes can be measured at scale (docs/performance.md).
//!
//! Every row is what the service itself would have written: domain codes from the domain
//! enums, receivers that offer the requested service, consent before submission, one
//! history row per transition, sealed free text, and an audit entry per change, chained onto
//! the existing audit head so `nrm audit verify` stays valid. No value describes a real
//! person: pseudonyms are `demo-<n>` and there are no identifying details.
//!
//! Rows are generated in time order and written in multi-row INSERTs, one transaction per
//! chunk, so a million cases take minutes. The generator is deterministic for a given
//! `--seed`.

use chrono::{DateTime, Duration, NaiveDate, Utc};
use diesel::prelude::*;

use crate::crypto::Keyring;
use crate::db::cases::{CaseRow, ConsentRow, IdentificationDecisionRow};
use crate::db::referrals::{HistoryRow, ReferralRow};
use crate::db::schema::{cases, consents, identification_decisions, referral_history, referrals};
use crate::db::{AnyConnection, DbError, Id, Instant, audit, audit::AuditRow, insert_all, write_transaction};
use crate::domain::case::{ContactChannel, Gender, IdentificationStatus, ReporterRole};
use crate::domain::organisation::{OrganisationKind, Registry};
use crate::domain::referral::{DeclineReason, Outcome, ReferralState, Urgency};

/// What to generate.
#[derive(Debug, Clone)]
pub struct SeedPlan {
    pub cases: u64,
    /// Cases are spread evenly over this many days, ending at `until`.
    pub days: u32,
    pub until: DateTime<Utc>,
    /// Cases per transaction.
    pub chunk: usize,
    pub seed: u64,
    /// Add to a database that already holds cases. Without it, seeding refuses, so that
    /// synthetic cases never end up among real ones (and in their statistics) by mistake.
    pub append: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum SeedError {
    /// Synthetic cases never go among real ones (and into their statistics) by mistake.
    #[error(
        "the database already holds {0} cases; synthetic data goes into an empty database \
         (pass --append to add to an earlier demo seed)"
    )]
    NotEmpty(i64),
    #[error(transparent)]
    Database(#[from] DbError),
}

impl From<diesel::result::Error> for SeedError {
    fn from(e: diesel::result::Error) -> Self {
        SeedError::Database(DbError::Query(e))
    }
}

/// What was written.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct SeedReport {
    pub cases: u64,
    pub identification_decisions: u64,
    pub consents: u64,
    pub referrals: u64,
    pub referral_history: u64,
    pub audit_entries: u64,
    pub seconds: f64,
}

/// SplitMix64: small, fast and deterministic; statistical quality is ample for test data.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (n > 0).
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    /// True with probability `percent` / 100.
    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len() as u64) as usize]
    }

    /// A pick by weight: `(weight, value)` pairs.
    fn weighted<T: Copy>(&mut self, items: &[(u64, T)]) -> T {
        let total: u64 = items.iter().map(|(w, _)| w).sum();
        let mut roll = self.below(total);
        for (weight, value) in items {
            if roll < *weight {
                return *value;
            }
            roll -= weight;
        }
        items[items.len() - 1].1
    }

    /// A waiting time with a long tail, as handovers have: mostly near `typical`, sometimes
    /// many times longer.
    fn wait(&mut self, typical: Duration) -> Duration {
        let factor = match self.below(100) {
            0..=49 => 0.2 + self.below(80) as f64 / 100.0,
            50..=89 => 1.0 + self.below(200) as f64 / 100.0,
            _ => 3.0 + self.below(1200) as f64 / 100.0,
        };
        Duration::milliseconds((typical.num_milliseconds() as f64 * factor) as i64)
    }
}

/// Organisations that open cases, with their share: the anonymous chat is the main door.
const CASE_OWNERS: [(u64, &str); 6] = [
    (45, "fier"),
    (20, "slachtofferhulp"),
    (10, "csg"),
    (10, "comensha"),
    (10, "zorgcoordinatie-amsterdam"),
    (5, "zorgcoordinatie-rotterdam"),
];

const REGIONS: [&str; 7] = ["amsterdam", "rotterdam", "utrecht", "noord", "oost", "zuid", "den-haag"];
const NATIONALITIES: [(u64, &str); 10] = [
    (48, "NL"),
    (8, "RO"),
    (6, "BG"),
    (5, "PL"),
    (9, "NG"),
    (5, "MA"),
    (5, "UA"),
    (5, "ER"),
    (5, "VN"),
    (4, "BR"),
];
const EU: [&str; 4] = ["NL", "RO", "BG", "PL"];

/// Referral end states and their share (old and new cases together).
const REFERRAL_STATES: [(u64, ReferralState); 8] = [
    (35, ReferralState::Completed),
    (14, ReferralState::InCare),
    (7, ReferralState::Accepted),
    (6, ReferralState::Acknowledged),
    (8, ReferralState::Submitted),
    (12, ReferralState::Declined),
    (8, ReferralState::Withdrawn),
    (10, ReferralState::Draft),
];

/// Old referrals are mostly finished: a handover still open after three months (or care
/// still running after a year) is the exception oversight chases, not a third of the data.
fn settled(rng: &mut Rng, target: ReferralState, age: Duration) -> ReferralState {
    let finished = [
        (35, ReferralState::Completed),
        (12, ReferralState::Declined),
        (8, ReferralState::Withdrawn),
    ];
    match target {
        ReferralState::Draft | ReferralState::Submitted | ReferralState::Acknowledged | ReferralState::Accepted
            if age > Duration::days(90) && !rng.chance(3) =>
        {
            rng.weighted(&finished)
        }
        ReferralState::InCare if age > Duration::days(365) && !rng.chance(10) => ReferralState::Completed,
        other => other,
    }
}

struct Chunk {
    cases: Vec<CaseRow>,
    /// Each case's pseudonym index, as the service writes it beside the case (so the first
    /// start after a seed has none to make).
    pseudonym_indexes: Vec<(Id, String)>,
    decisions: Vec<IdentificationDecisionRow>,
    consents: Vec<ConsentRow>,
    referrals: Vec<ReferralRow>,
    history: Vec<HistoryRow>,
    /// Audit entries without sequence numbers or hashes: those are given when the chunk is
    /// chained onto the head inside its transaction.
    audit: Vec<AuditRow>,
}

/// Writes `plan.cases` synthetic cases with their consents, referrals, history and audit
/// entries. The registry must be mirrored first (`nrm migrate`).
pub fn seed(
    conn: &mut AnyConnection,
    registry: &Registry,
    keyring: &Keyring,
    plan: &SeedPlan,
    mut progress: impl FnMut(u64),
) -> Result<SeedReport, SeedError> {
    if !plan.append {
        let existing: i64 = cases::table.count().get_result(conn)?;
        if existing > 0 {
            return Err(SeedError::NotEmpty(existing));
        }
    }
    let started = std::time::Instant::now();
    let receivers: Vec<(&str, &[String])> = registry
        .organisations
        .values()
        .filter(|o| o.kind != OrganisationKind::Police)
        .map(|o| (o.slug.as_str(), o.services.as_slice()))
        .collect();
    let focal_point = registry.focal_point().map(|o| o.slug.clone()).unwrap_or_default();
    let mut rng = Rng(plan.seed);
    let span = Duration::days(i64::from(plan.days.max(1)));
    let start = plan.until - span;
    let step_ms = span.num_milliseconds() / plan.cases.max(1) as i64;
    let mut report = SeedReport::default();
    let mut written = 0u64;
    while written < plan.cases {
        let n = (plan.cases - written).min(plan.chunk as u64);
        let mut chunk = Chunk {
            cases: Vec::with_capacity(n as usize),
            pseudonym_indexes: Vec::with_capacity(n as usize),
            decisions: Vec::new(),
            consents: Vec::new(),
            referrals: Vec::new(),
            history: Vec::new(),
            audit: Vec::new(),
        };
        for i in written..written + n {
            let created = start + Duration::milliseconds(step_ms * i as i64 + rng.below(step_ms.max(1) as u64) as i64);
            generate_case(
                &mut rng,
                &mut chunk,
                i,
                created,
                plan.until,
                &receivers,
                &focal_point,
                keyring,
            );
        }
        write_chunk(conn, &mut chunk)?;
        report.cases += chunk.cases.len() as u64;
        report.identification_decisions += chunk.decisions.len() as u64;
        report.consents += chunk.consents.len() as u64;
        report.referrals += chunk.referrals.len() as u64;
        report.referral_history += chunk.history.len() as u64;
        report.audit_entries += chunk.audit.len() as u64;
        written += n;
        progress(written);
    }
    // A bulk load leaves the planner's statistics describing the empty tables, and (on
    // PostgreSQL) no page marked all-visible for index-only scans, until autovacuum comes
    // by; do its work now so the first queries get the plans they will get in steady state.
    let after_load = match conn {
        AnyConnection::Postgresql(_) => "VACUUM (ANALYZE)",
        AnyConnection::Sqlite(_) => "ANALYZE",
    };
    diesel::sql_query(after_load).execute(conn)?;
    report.seconds = started.elapsed().as_secs_f64();
    Ok(report)
}

/// A UUIDv7 for an instant in the past: ids stay time-ordered, as the service's are.
fn id_at(rng: &mut Rng, at: DateTime<Utc>) -> Id {
    let ts = uuid::Timestamp::from_unix(
        uuid::NoContext,
        at.timestamp().max(0) as u64,
        at.timestamp_subsec_nanos(),
    );
    let mut bytes = *uuid::Uuid::new_v7(ts).as_bytes();
    // Random tail from the seeded generator, so a seed gives the same ids each run.
    bytes[8..16].copy_from_slice(&rng.next().to_be_bytes());
    bytes[8] = (bytes[8] & 0x3F) | 0x80;
    Id(uuid::Uuid::from_bytes(bytes))
}

fn at(t: DateTime<Utc>) -> Instant {
    Instant::from_utc(t)
}

fn audit(
    t: DateTime<Utc>,
    sub: &str,
    org: &str,
    roles: &str,
    action: &str,
    resource: (&str, Id),
    case_id: Id,
) -> AuditRow {
    AuditRow {
        seq: 0,
        at: at(t),
        actor_sub: sub.into(),
        actor_org: org.into(),
        actor_roles: roles.into(),
        action: action.into(),
        resource_type: resource.0.into(),
        resource_id: resource.1.0.to_string(),
        case_id: Some(case_id),
        outcome: "ok".into(),
        prev_hash: String::new(),
        hash: String::new(),
        actor_kind: "person".into(),
    }
}

#[allow(clippy::too_many_arguments)]
fn generate_case(
    rng: &mut Rng,
    chunk: &mut Chunk,
    n: u64,
    created: DateTime<Utc>,
    until: DateTime<Utc>,
    receivers: &[(&str, &[String])],
    focal_point: &str,
    keyring: &Keyring,
) {
    let owner = rng.weighted(&CASE_OWNERS);
    let caseworker = format!("demo-caseworker-{}", rng.below(40));
    let case_id = id_at(rng, created);
    // Chat met Fier 2024: 152 of 182 were possible victims; 124 sexual, 47 criminal, 11 both.
    let reporter = if rng.chance(83) {
        ReporterRole::Victim
    } else {
        ReporterRole::ConcernedPerson
    };
    let (sexual, criminal) = match rng.below(182) {
        0..=112 => (true, false),
        113..=148 => (false, true),
        149..=159 => (true, true),
        _ => (false, false),
    };
    let labour = !sexual && !criminal && rng.chance(80);
    let other = !sexual && !criminal && !labour;
    // 41.6% of victims of known age were minors.
    let age = rng.chance(70).then(|| {
        if rng.chance(42) {
            12 + rng.below(6) as i32
        } else {
            18 + rng.below(30) as i32
        }
    });
    let age_uncertain = age.is_none() && rng.chance(30);
    let presumed_minor = age.is_some_and(|a| a < 18) || age_uncertain;
    let nationality = rng.chance(92).then(|| rng.weighted(&NATIONALITIES));
    let third_country = nationality.is_some_and(|c| !EU.contains(&c));
    let status = rng.weighted(&[
        (30, IdentificationStatus::Signal),
        (52, IdentificationStatus::PresumedVictim),
        (12, IdentificationStatus::Identified),
        (6, IdentificationStatus::NotIdentified),
    ]);
    let grounds_at = (status != IdentificationStatus::Signal)
        .then(|| created + rng.wait(Duration::days(3)))
        .filter(|t| *t < until);
    let status = if grounds_at.is_none() {
        IdentificationStatus::Signal
    } else {
        status
    };
    let grounds_on = grounds_at.map(|t| t.date_naive());
    let closed = created + Duration::days(200) < until && rng.chance(40);
    let mut last_change = grounds_at.unwrap_or(created);
    let pseudonym = format!("demo-{n}");
    chunk
        .pseudonym_indexes
        .push((case_id, keyring.pseudonym_index(owner, &pseudonym)));
    let case = CaseRow {
        id: case_id,
        organisation: owner.into(),
        created_by: caseworker.clone(),
        created_at: at(created),
        updated_at: at(created),
        version: 1,
        reporter_role: reporter.as_str().into(),
        contact_channel: if owner == "fier" {
            ContactChannel::Chat.as_str().into()
        } else {
            rng.pick(&ContactChannel::ALL).as_str().into()
        },
        contact_date: created.date_naive(),
        exploitation_sexual: sexual,
        exploitation_criminal: criminal,
        exploitation_labour: labour,
        exploitation_other: other,
        age_at_contact: age,
        age_uncertain,
        presumed_minor,
        gender: Some(
            rng.weighted(&[
                (70, Gender::Female),
                (25, Gender::Male),
                (2, Gender::NonBinary),
                (3, Gender::Unknown),
            ])
            .as_str()
            .into(),
        ),
        nationality: nationality.map(str::to_string),
        region: rng.chance(85).then(|| rng.pick(&REGIONS).to_string()),
        language: Some(if nationality == Some("NL") { "nl" } else { "en" }.into()),
        pseudonym: Some(keyring.seal("cases.pseudonym", case_id, &pseudonym)),
        police_report_intention: None,
        identification_status: status.as_str().into(),
        reasonable_grounds_on: grounds_on,
        reflection_period_end: grounds_on
            .filter(|_| third_country)
            .and_then(|d: NaiveDate| d.checked_add_days(chrono::Days::new(90))),
        last_incident_date: None,
        needs: "[]".into(),
        unaccompanied: presumed_minor && third_country && rng.chance(30),
        closed_at: None,
        closed_reason: None,
        identifying_erased_at: None,
        free_text_erased_at: None,
        erasure_reason: None,
    };
    let roles = "caseworker";
    chunk.audit.push(audit(
        created,
        &caseworker,
        owner,
        roles,
        "case.create",
        ("case", case_id),
        case_id,
    ));
    if let Some(t) = grounds_at {
        let decision_id = id_at(rng, t);
        chunk.decisions.push(IdentificationDecisionRow {
            id: decision_id,
            case_id,
            decision: "reasonable_grounds".into(),
            basis: keyring.seal("identification_decisions.basis", decision_id, "synthetic demo data"),
            actor_sub: format!("demo-coordinator-{}", rng.below(5)),
            actor_org: focal_point.into(),
            decided_at: at(t),
        });
        chunk.audit.push(audit(
            t,
            &format!("demo-coordinator-{}", rng.below(5)),
            focal_point,
            "coordinator",
            "identification.reasonable_grounds",
            ("identification_decision", decision_id),
            case_id,
        ));
    }

    // Referrals only after reasonable grounds: 0, 1 or 2 receivers.
    let count = match (grounds_at, rng.below(100)) {
        (None, _) => 0,
        (Some(_), 0..=14) => 0,
        (Some(_), 15..=84) => 1,
        _ => 2,
    };
    let mut used: Vec<&str> = Vec::new();
    let mut t = grounds_at.unwrap_or(created);
    for _ in 0..count {
        let Some((receiver, services)) = (0..8)
            .map(|_| *rng.pick(receivers))
            .find(|(slug, services)| *slug != owner && !used.contains(slug) && !services.is_empty())
        else {
            continue;
        };
        used.push(receiver);
        t += rng.wait(Duration::hours(2));
        if t >= until {
            break;
        }
        let consent_id = id_at(rng, t);
        chunk.consents.push(ConsentRow {
            id: consent_id,
            case_id,
            scope: "referral".into(),
            organisation: receiver.into(),
            given_by: if presumed_minor { "guardian" } else { "victim" }.into(),
            method: if owner == "fier" { "chat" } else { "verbal" }.into(),
            information_language: "nl".into(),
            recorded_by: caseworker.clone(),
            recorded_at: at(t),
            withdrawn_at: None,
            withdrawn_by: None,
        });
        chunk.audit.push(audit(
            t,
            &caseworker,
            owner,
            roles,
            "consent.create",
            ("consent", consent_id),
            case_id,
        ));
        let service = rng.pick(services).clone();
        t += Duration::minutes(5 + rng.below(30) as i64);
        let referral_id = id_at(rng, t);
        let urgency = rng.weighted(&[(70, Urgency::Routine), (22, Urgency::Urgent), (8, Urgency::Acute)]);
        let mut referral = ReferralRow {
            id: referral_id,
            case_id,
            from_organisation: owner.into(),
            to_organisation: receiver.into(),
            services: serde_json::json!([service]).to_string(),
            urgency: urgency.as_str().into(),
            note: None,
            state: ReferralState::Draft.as_str().into(),
            version: 1,
            consent_id: None,
            created_by: caseworker.clone(),
            created_at: at(t),
            updated_at: at(t),
            submitted_at: None,
            acknowledged_at: None,
            decided_at: None,
            care_started_at: None,
            closed_at: None,
            decline_reason: None,
            outcome: None,
            eligibility_override: None,
            assigned_to: None,
        };
        chunk.audit.push(audit(
            t,
            &caseworker,
            owner,
            roles,
            "referral.create",
            ("referral", referral_id),
            case_id,
        ));
        let drawn = rng.weighted(&REFERRAL_STATES);
        let target = settled(rng, drawn, until - t);
        let intake = format!("demo-intake-{}-{}", receiver, rng.below(6));
        let mut steps: Vec<(&str, ReferralState, Duration, bool)> = Vec::new();
        let by_sender = true;
        match target {
            ReferralState::Draft => {}
            ReferralState::Withdrawn => {
                steps.push(("submit", ReferralState::Submitted, Duration::minutes(10), by_sender));
                steps.push(("withdraw", ReferralState::Withdrawn, Duration::hours(20), by_sender));
            }
            ReferralState::Declined => {
                steps.push(("submit", ReferralState::Submitted, Duration::minutes(10), by_sender));
                steps.push((
                    "acknowledge",
                    ReferralState::Acknowledged,
                    Duration::hours(3),
                    !by_sender,
                ));
                steps.push(("decline", ReferralState::Declined, Duration::hours(30), !by_sender));
            }
            _ => {
                let path = [
                    ("submit", ReferralState::Submitted, Duration::minutes(10), by_sender),
                    (
                        "acknowledge",
                        ReferralState::Acknowledged,
                        Duration::hours(3),
                        !by_sender,
                    ),
                    ("accept", ReferralState::Accepted, Duration::hours(30), !by_sender),
                    ("start_care", ReferralState::InCare, Duration::days(2), !by_sender),
                    ("complete", ReferralState::Completed, Duration::days(60), !by_sender),
                ];
                let last = path.iter().position(|(_, s, _, _)| *s == target).unwrap_or(0);
                steps.extend_from_slice(&path[..=last]);
            }
        }
        for (seq, (action, next, typical, sender_acts)) in (1..).zip(steps) {
            let when = t + rng.wait(typical);
            if when >= until {
                break;
            }
            t = when;
            let from = referral.state.clone();
            referral.state = next.as_str().into();
            referral.version += 1;
            referral.updated_at = at(t);
            let mut reason_code = None;
            let mut outcome_code = None;
            match next {
                ReferralState::Submitted => {
                    referral.submitted_at = Some(at(t));
                    referral.consent_id = Some(consent_id);
                }
                ReferralState::Acknowledged => referral.acknowledged_at = Some(at(t)),
                ReferralState::Accepted => referral.decided_at = Some(at(t)),
                ReferralState::InCare => referral.care_started_at = Some(at(t)),
                ReferralState::Declined => {
                    referral.decided_at = Some(at(t));
                    let code = *rng.pick(&DeclineReason::ALL);
                    referral.decline_reason = Some(code.as_str().into());
                    reason_code = Some(code.as_str().to_string());
                }
                ReferralState::Completed => {
                    let code = *rng.pick(&Outcome::ALL);
                    referral.outcome = Some(code.as_str().into());
                    outcome_code = Some(code.as_str().to_string());
                }
                ReferralState::Draft | ReferralState::Withdrawn => {}
            }
            if next.is_terminal() {
                referral.closed_at = Some(at(t));
            }
            let (sub, org, role) = if sender_acts {
                (caseworker.as_str(), owner, "caseworker")
            } else {
                (intake.as_str(), receiver, "intake")
            };
            let history_id = id_at(rng, t);
            chunk.history.push(HistoryRow {
                id: history_id,
                referral_id,
                seq,
                action: action.into(),
                from_state: from,
                to_state: next.as_str().into(),
                actor_sub: sub.into(),
                actor_org: org.into(),
                at: at(t),
                reason_code,
                reason: None,
                outcome_code,
                outcome: None,
            });
            chunk.audit.push(audit(
                t,
                sub,
                org,
                role,
                &format!("referral.{action}"),
                ("referral", referral_id),
                case_id,
            ));
        }
        last_change = last_change.max(t);
        chunk.referrals.push(referral);
    }
    let mut case = case;
    let open = chunk
        .referrals
        .iter()
        .filter(|r| r.case_id == case_id)
        .any(|r| r.state.parse::<ReferralState>().is_ok_and(|s| s.is_open()));
    if closed && !open {
        let when = last_change + Duration::days(30);
        if when < until {
            case.closed_at = Some(at(when));
            case.closed_reason = Some("support_completed".into());
            case.updated_at = at(when);
            case.version += 1;
            let mut entry = audit(
                when,
                &caseworker,
                owner,
                roles,
                "case.close",
                ("case", case_id),
                case_id,
            );
            entry.outcome = "support_completed".into();
            chunk.audit.push(entry);
        }
    }
    chunk.cases.push(case);
}

fn write_chunk(conn: &mut AnyConnection, chunk: &mut Chunk) -> Result<(), DbError> {
    write_transaction(conn, |conn| -> Result<(), DbError> {
        insert_all!(conn, cases::table, chunk.cases);
        for (id, index) in &chunk.pseudonym_indexes {
            crate::db::cases::set_pseudonym_index(conn, crate::domain::ids::CaseId(id.0), Some(index))?;
        }
        insert_all!(conn, identification_decisions::table, chunk.decisions);
        insert_all!(conn, consents::table, chunk.consents);
        insert_all!(conn, referrals::table, chunk.referrals);
        insert_all!(conn, referral_history::table, chunk.history);
        // Chained last, as the sealer does: the head is held for the audit rows only.
        audit::chain(conn, &mut chunk.audit)?;
        Ok(())
    })
}
