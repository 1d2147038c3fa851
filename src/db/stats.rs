//! Aggregates for oversight and statistics, computed by the database (GROUP BY and
//! conditional sums), never by loading rows into the service.
//!
//! Portable SQL where it can be; where the backends differ (interval arithmetic), the query
//! is written per backend.

use std::collections::BTreeMap;

use chrono::NaiveDate;
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Date, Double, Nullable, Text};

use super::schema::{anonymous_notifications, cases, referrals, three_way_conversations};
use super::types::UtcTime;
use super::{AnyConnection, Id, Instant};
use crate::domain::case::EU_MEMBER_STATES;
use crate::domain::deadline::Step;
use crate::domain::referral::Urgency;
use crate::domain::stats::{CaseCounts, ReferralCounts, ThreeWayCounts};

/// `?` placeholders become `$1, $2, ...` for PostgreSQL.
pub(super) fn placeholders(sql: &str, postgres: bool) -> String {
    if !postgres {
        return sql.to_string();
    }
    let mut out = String::with_capacity(sql.len() + 8);
    let mut n = 0;
    for c in sql.chars() {
        if c == '?' {
            n += 1;
            out.push_str(&format!("${n}"));
        } else {
            out.push(c);
        }
    }
    out
}

/// Runs the same query body on whichever backend the connection is.
macro_rules! on_backend {
    ($conn:expr, $postgres:ident, |$inner:ident| $body:expr) => {
        match $conn {
            AnyConnection::Postgresql($inner) => {
                let $postgres = true;
                $body
            }
            AnyConnection::Sqlite($inner) => {
                let $postgres = false;
                $body
            }
        }
    };
}

fn other_eu_list() -> String {
    EU_MEMBER_STATES
        .iter()
        .filter(|c| **c != "NL")
        .map(|c| format!("'{c}'"))
        .collect::<Vec<_>>()
        .join(", ")
}

#[derive(QueryableByName, Debug)]
struct CaseCountsRow {
    #[diesel(sql_type = Text)]
    organisation: String,
    #[diesel(sql_type = BigInt)]
    total: i64,
    #[diesel(sql_type = BigInt)]
    victims: i64,
    #[diesel(sql_type = BigInt)]
    concerned_persons: i64,
    #[diesel(sql_type = BigInt)]
    professionals: i64,
    #[diesel(sql_type = BigInt)]
    sexual_only: i64,
    #[diesel(sql_type = BigInt)]
    criminal_only: i64,
    #[diesel(sql_type = BigInt)]
    labour_only: i64,
    #[diesel(sql_type = BigInt)]
    other_only: i64,
    #[diesel(sql_type = BigInt)]
    combination: i64,
    #[diesel(sql_type = BigInt)]
    age_known: i64,
    #[diesel(sql_type = BigInt)]
    age_minors: i64,
    #[diesel(sql_type = BigInt)]
    age_sum: i64,
    #[diesel(sql_type = BigInt)]
    female: i64,
    #[diesel(sql_type = BigInt)]
    male: i64,
    #[diesel(sql_type = BigInt)]
    non_binary: i64,
    #[diesel(sql_type = BigInt)]
    gender_unknown: i64,
    #[diesel(sql_type = BigInt)]
    dutch: i64,
    #[diesel(sql_type = BigInt)]
    other_eu: i64,
    #[diesel(sql_type = BigInt)]
    nationality_unknown: i64,
}

fn u(value: i64) -> u64 {
    u64::try_from(value).unwrap_or(0)
}

/// Where a report's additive counts come from. Reports read the roll-ups the database keeps
/// per day (`db::rollups`), plus the deltas not folded into them yet; the rows are the
/// definition the roll-ups are tested against (and what a report read before them).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Counted {
    RollUps,
    Rows,
}

/// The case measures of the report, by column name, over rows that carry a case's counted
/// columns, its number of forms of exploitation (`forms`) and a weight `n`: 1 for a case, +1
/// or -1 for a delta (`case_count_deltas`). The columns of `case_rollups` are these.
fn case_measures() -> Vec<(&'static str, String)> {
    let sum = |condition: &str| format!("CAST(COALESCE(SUM(CASE WHEN {condition} THEN n ELSE 0 END), 0) AS BIGINT)");
    let known_victim_age = "reporter_role = 'victim' AND age_at_contact IS NOT NULL";
    vec![
        ("total", "CAST(COALESCE(SUM(n), 0) AS BIGINT)".to_string()),
        ("victims", sum("reporter_role = 'victim'")),
        ("concerned_persons", sum("reporter_role = 'concerned_person'")),
        ("professionals", sum("reporter_role = 'professional'")),
        ("sexual_only", sum("forms = 1 AND exploitation_sexual")),
        ("criminal_only", sum("forms = 1 AND exploitation_criminal")),
        ("labour_only", sum("forms = 1 AND exploitation_labour")),
        ("other_only", sum("forms = 1 AND exploitation_other")),
        ("combination", sum("forms >= 2")),
        ("age_known", sum(known_victim_age)),
        (
            "age_minors",
            sum(&format!("{known_victim_age} AND age_at_contact < 18")),
        ),
        (
            "age_sum",
            format!(
                "CAST(COALESCE(SUM(CASE WHEN {known_victim_age} THEN age_at_contact * n ELSE 0 END), 0) AS BIGINT)"
            ),
        ),
        ("female", sum("gender = 'female'")),
        ("male", sum("gender = 'male'")),
        ("non_binary", sum("gender = 'non_binary'")),
        ("gender_unknown", sum("gender IS NULL OR gender = 'unknown'")),
        ("dutch", sum("nationality = 'NL'")),
        ("other_eu", sum(&format!("nationality IN ({})", other_eu_list()))),
        ("nationality_unknown", sum("nationality IS NULL")),
    ]
}

/// The names of the case measures, in `case_measures` order.
pub(super) fn case_measure_names() -> Vec<&'static str> {
    case_measures().into_iter().map(|(name, _)| name).collect()
}

/// The case measures per `keys` over the rows of `table` that `filter` selects, each row
/// weighing `weight`.
pub(super) fn case_measures_sql(table: &str, weight: &str, filter: &str, keys: &str) -> String {
    let measures = case_measures()
        .into_iter()
        .map(|(name, sql)| format!("{sql} AS {name}"))
        .collect::<Vec<_>>()
        .join(", ");
    format!(
        "SELECT {keys}, {measures} \
         FROM (SELECT {keys}, reporter_role, age_at_contact, gender, nationality, exploitation_sexual, exploitation_criminal, \
                      exploitation_labour, exploitation_other, \
                      (CASE WHEN exploitation_sexual THEN 1 ELSE 0 END + CASE WHEN exploitation_criminal THEN 1 ELSE 0 END \
                       + CASE WHEN exploitation_labour THEN 1 ELSE 0 END + CASE WHEN exploitation_other THEN 1 ELSE 0 END) AS forms, \
                      {weight} AS n \
               FROM {table} WHERE {filter}) c GROUP BY {keys}"
    )
}

/// Runs a roll-up query: its first two placeholders bound to the period's days in the
/// roll-ups, the next two to the same days in the deltas not folded yet.
fn rolled_up<R>(conn: &mut AnyConnection, sql: &str, from: NaiveDate, to: NaiveDate) -> QueryResult<Vec<R>>
where
    R: QueryableByName<diesel::pg::Pg> + QueryableByName<diesel::sqlite::Sqlite> + 'static,
{
    Ok(on_backend!(conn, postgres, |inner| {
        diesel::sql_query(placeholders(sql, postgres))
            .bind::<Date, _>(from)
            .bind::<Date, _>(to)
            .bind::<Date, _>(from)
            .bind::<Date, _>(to)
            .load(inner)?
    }))
}

/// Every case-level count of the report, and the cases per registering organisation:
/// counted per organisation by the database, summed here. From the rows, one pass over the
/// period's cases; from the roll-ups, the period's days plus the deltas not folded yet.
pub fn case_counts(
    conn: &mut AnyConnection,
    from: NaiveDate,
    to: NaiveDate,
    counted: Counted,
) -> QueryResult<(CaseCounts, BTreeMap<String, u64>)> {
    let period = "contact_date >= ? AND contact_date <= ?";
    let sql = match counted {
        Counted::Rows => case_measures_sql("cases", "1", period, "organisation"),
        Counted::RollUps => {
            let names = case_measure_names();
            let sums = names
                .iter()
                .map(|name| format!("CAST(SUM({name}) AS BIGINT) AS {name}"))
                .collect::<Vec<_>>()
                .join(", ");
            format!(
                "SELECT organisation, {sums} FROM (\
                   SELECT organisation, {columns} FROM case_rollups WHERE day >= ? AND day <= ? \
                   UNION ALL {pending}) x \
                 GROUP BY organisation HAVING SUM(total) <> 0",
                columns = names.join(", "),
                pending = case_measures_sql("case_count_deltas", "n", period, "organisation"),
            )
        }
    };
    let rows: Vec<CaseCountsRow> = match counted {
        Counted::Rows => on_backend!(conn, postgres, |inner| {
            diesel::sql_query(placeholders(&sql, postgres))
                .bind::<Date, _>(from)
                .bind::<Date, _>(to)
                .load(inner)?
        }),
        Counted::RollUps => rolled_up(conn, &sql, from, to)?,
    };
    let by_organisation: BTreeMap<String, u64> = rows.iter().map(|r| (r.organisation.clone(), u(r.total))).collect();
    let sum = |field: fn(&CaseCountsRow) -> i64| rows.iter().map(field).sum::<i64>();
    let row = CaseCountsRow {
        organisation: String::new(),
        total: sum(|r| r.total),
        victims: sum(|r| r.victims),
        concerned_persons: sum(|r| r.concerned_persons),
        professionals: sum(|r| r.professionals),
        sexual_only: sum(|r| r.sexual_only),
        criminal_only: sum(|r| r.criminal_only),
        labour_only: sum(|r| r.labour_only),
        other_only: sum(|r| r.other_only),
        combination: sum(|r| r.combination),
        age_known: sum(|r| r.age_known),
        age_minors: sum(|r| r.age_minors),
        age_sum: sum(|r| r.age_sum),
        female: sum(|r| r.female),
        male: sum(|r| r.male),
        non_binary: sum(|r| r.non_binary),
        gender_unknown: sum(|r| r.gender_unknown),
        dutch: sum(|r| r.dutch),
        other_eu: sum(|r| r.other_eu),
        nationality_unknown: sum(|r| r.nationality_unknown),
    };
    let anonymous: i64 = anonymous_notifications::table
        .filter(anonymous_notifications::contact_date.ge(from))
        .filter(anonymous_notifications::contact_date.le(to))
        .count()
        .get_result(conn)?;
    let total = u(row.total);
    let counts = CaseCounts {
        total,
        victims: u(row.victims),
        concerned_persons: u(row.concerned_persons),
        professionals: u(row.professionals),
        sexual_only: u(row.sexual_only),
        criminal_only: u(row.criminal_only),
        labour_only: u(row.labour_only),
        other_only: u(row.other_only),
        combination: u(row.combination),
        age_known: u(row.age_known),
        age_minors: u(row.age_minors),
        age_sum: u(row.age_sum),
        female: u(row.female),
        male: u(row.male),
        non_binary: u(row.non_binary),
        gender_unknown: u(row.gender_unknown),
        dutch: u(row.dutch),
        other_eu: u(row.other_eu),
        non_eu: total.saturating_sub(u(row.dutch) + u(row.other_eu) + u(row.nationality_unknown)),
        nationality_unknown: u(row.nationality_unknown),
        anonymous_notifications: u(anonymous),
    };
    Ok((counts, by_organisation))
}

/// Submitted referrals (drafts never handed over are not referrals yet) of the period's cases.
pub fn referral_counts(
    conn: &mut AnyConnection,
    from: NaiveDate,
    to: NaiveDate,
    counted: Counted,
) -> QueryResult<ReferralCounts> {
    let rows: Vec<(String, String, Option<String>, i64)> = match counted {
        Counted::Rows => referrals::table
            .inner_join(cases::table)
            .filter(cases::contact_date.ge(from))
            .filter(cases::contact_date.le(to))
            .filter(referrals::submitted_at.is_not_null())
            .group_by((referrals::to_organisation, referrals::state, referrals::outcome))
            .select((
                referrals::to_organisation,
                referrals::state,
                referrals::outcome,
                diesel::dsl::count_star(),
            ))
            .load(conn)?,
        Counted::RollUps => {
            #[derive(QueryableByName)]
            struct Row {
                #[diesel(sql_type = Text)]
                to_organisation: String,
                #[diesel(sql_type = Text)]
                state: String,
                #[diesel(sql_type = Text)]
                outcome: String,
                #[diesel(sql_type = BigInt)]
                n: i64,
            }
            let sql = "SELECT to_organisation, state, outcome, CAST(SUM(n) AS BIGINT) AS n FROM (\
                         SELECT to_organisation, state, outcome, n FROM referral_rollups WHERE day >= ? AND day <= ? \
                         UNION ALL SELECT to_organisation, state, COALESCE(outcome, '') AS outcome, n FROM referral_count_deltas \
                           WHERE submitted AND contact_date >= ? AND contact_date <= ?) x \
                       GROUP BY to_organisation, state, outcome HAVING SUM(n) <> 0";
            let rows: Vec<Row> = rolled_up(conn, sql, from, to)?;
            rows.into_iter()
                .map(|r| {
                    (
                        r.to_organisation,
                        r.state,
                        Some(r.outcome).filter(|o| !o.is_empty()),
                        r.n,
                    )
                })
                .collect()
        }
    };
    let mut counts = ReferralCounts::default();
    for (to_org, state, outcome, n) in rows {
        let n = u(n);
        counts.total += n;
        *counts.by_destination.entry(to_org).or_default() += n;
        *counts.by_state.entry(state).or_default() += n;
        if let Some(outcome) = outcome {
            *counts.by_outcome.entry(outcome).or_default() += n;
        }
    }
    Ok(counts)
}

/// The three-way conversations a query selects, grouped by state and intention and folded
/// into counts.
macro_rules! three_way_by_state {
    ($query:expr, $conn:expr) => {{
        let rows: Vec<(String, Option<String>, i64)> = $query
            .group_by((
                three_way_conversations::state,
                three_way_conversations::reporting_intention,
            ))
            .select((
                three_way_conversations::state,
                three_way_conversations::reporting_intention,
                diesel::dsl::count_star(),
            ))
            .load($conn)?;
        Ok(fold_three_way(rows))
    }};
}

pub fn three_way_counts(
    conn: &mut AnyConnection,
    from: NaiveDate,
    to: NaiveDate,
    counted: Counted,
) -> QueryResult<ThreeWayCounts> {
    if counted == Counted::Rows {
        return three_way_by_state!(
            three_way_conversations::table
                .inner_join(cases::table)
                .filter(cases::contact_date.ge(from))
                .filter(cases::contact_date.le(to)),
            conn
        );
    }
    #[derive(QueryableByName)]
    struct Row {
        #[diesel(sql_type = Text)]
        state: String,
        #[diesel(sql_type = Text)]
        reporting_intention: String,
        #[diesel(sql_type = BigInt)]
        n: i64,
    }
    let sql = "SELECT state, reporting_intention, CAST(SUM(n) AS BIGINT) AS n FROM (\
                 SELECT state, reporting_intention, n FROM three_way_rollups WHERE day >= ? AND day <= ? \
                 UNION ALL SELECT state, COALESCE(reporting_intention, '') AS reporting_intention, n \
                   FROM three_way_count_deltas WHERE contact_date >= ? AND contact_date <= ?) x \
               GROUP BY state, reporting_intention HAVING SUM(n) <> 0";
    let rows: Vec<Row> = rolled_up(conn, sql, from, to)?;
    Ok(fold_three_way(
        rows.into_iter()
            .map(|r| (r.state, Some(r.reporting_intention).filter(|i| !i.is_empty()), r.n))
            .collect(),
    ))
}

/// Three-way conversations offered (created) in [from, to), by where they stand now.
pub fn three_way_offered_in(conn: &mut AnyConnection, from: Instant, to: Instant) -> QueryResult<ThreeWayCounts> {
    three_way_by_state!(
        three_way_conversations::table
            .filter(three_way_conversations::created_at.ge(from))
            .filter(three_way_conversations::created_at.lt(to)),
        conn
    )
}

fn fold_three_way(rows: Vec<(String, Option<String>, i64)>) -> ThreeWayCounts {
    let mut counts = ThreeWayCounts::default();
    for (state, intention, n) in rows {
        counts.add(&state, intention.as_deref(), u(n));
    }
    counts
}

// ---------------------------------------------------------------------------
// Case-flow monitoring
// ---------------------------------------------------------------------------

/// The instants bounding whole UTC days `from` to `to`, inclusive.
pub fn day_bounds(from: NaiveDate, to: NaiveDate) -> (Instant, Instant) {
    let start = from.and_time(chrono::NaiveTime::MIN).and_utc();
    let end = (to + chrono::Duration::days(1))
        .and_time(chrono::NaiveTime::MIN)
        .and_utc();
    (Instant::from_utc(start), Instant::from_utc(end))
}

/// Referrals made on the UTC days `from` to `to`, by sender, receiver and current state.
pub fn flow_counts(
    conn: &mut AnyConnection,
    from: NaiveDate,
    to: NaiveDate,
    counted: Counted,
) -> QueryResult<Vec<(String, String, String, i64)>> {
    if counted == Counted::Rows {
        let (start, end) = day_bounds(from, to);
        return referrals::table
            .filter(referrals::created_at.ge(start))
            .filter(referrals::created_at.lt(end))
            .group_by((
                referrals::from_organisation,
                referrals::to_organisation,
                referrals::state,
            ))
            .select((
                referrals::from_organisation,
                referrals::to_organisation,
                referrals::state,
                diesel::dsl::count_star(),
            ))
            .order_by((
                referrals::from_organisation,
                referrals::to_organisation,
                referrals::state,
            ))
            .load(conn);
    }
    #[derive(QueryableByName)]
    struct Row {
        #[diesel(sql_type = Text)]
        from_organisation: String,
        #[diesel(sql_type = Text)]
        to_organisation: String,
        #[diesel(sql_type = Text)]
        state: String,
        #[diesel(sql_type = BigInt)]
        n: i64,
    }
    let sql = "SELECT from_organisation, to_organisation, state, CAST(SUM(n) AS BIGINT) AS n FROM (\
                 SELECT from_organisation, to_organisation, state, n FROM flow_rollups WHERE day >= ? AND day <= ? \
                 UNION ALL SELECT from_organisation, to_organisation, state, n FROM referral_count_deltas \
                   WHERE created_day >= ? AND created_day <= ?) x \
               GROUP BY from_organisation, to_organisation, state HAVING SUM(n) <> 0 \
               ORDER BY from_organisation, to_organisation, state";
    let rows: Vec<Row> = rolled_up(conn, sql, from, to)?;
    Ok(rows
        .into_iter()
        .map(|r| (r.from_organisation, r.to_organisation, r.state, r.n))
        .collect())
}

/// Referrals made on the UTC days `from` to `to` that were submitted against the service
/// directory's eligibility with a caseworker's reason, by receiver.
pub fn eligibility_overrides(
    conn: &mut AnyConnection,
    from: NaiveDate,
    to: NaiveDate,
    counted: Counted,
) -> QueryResult<Vec<(String, i64)>> {
    if counted == Counted::Rows {
        let (start, end) = day_bounds(from, to);
        return referrals::table
            .filter(referrals::created_at.ge(start))
            .filter(referrals::created_at.lt(end))
            .filter(referrals::eligibility_override.is_not_null())
            .group_by(referrals::to_organisation)
            .select((referrals::to_organisation, diesel::dsl::count_star()))
            .order_by(referrals::to_organisation)
            .load(conn);
    }
    #[derive(QueryableByName)]
    struct Row {
        #[diesel(sql_type = Text)]
        to_organisation: String,
        #[diesel(sql_type = BigInt)]
        n: i64,
    }
    let sql = "SELECT to_organisation, CAST(SUM(n) AS BIGINT) AS n FROM (\
                 SELECT to_organisation, n FROM flow_rollups WHERE overridden AND day >= ? AND day <= ? \
                 UNION ALL SELECT to_organisation, n FROM referral_count_deltas \
                   WHERE overridden AND created_day >= ? AND created_day <= ?) x \
               GROUP BY to_organisation HAVING SUM(n) <> 0 ORDER BY to_organisation";
    let rows: Vec<Row> = rolled_up(conn, sql, from, to)?;
    Ok(rows.into_iter().map(|r| (r.to_organisation, r.n)).collect())
}

/// Open (handed over, not finished) referrals by receiver and state, whenever created.
pub fn open_counts(conn: &mut AnyConnection) -> QueryResult<Vec<(String, String, i64)>> {
    referrals::table
        .filter(referrals::state.eq_any(["submitted", "acknowledged", "accepted", "in_care"]))
        .group_by((referrals::to_organisation, referrals::state))
        .select((referrals::to_organisation, referrals::state, diesel::dsl::count_star()))
        .order_by((referrals::to_organisation, referrals::state))
        .load(conn)
}

#[derive(QueryableByName, Debug, Clone)]
pub struct StepDurations {
    #[diesel(sql_type = Text)]
    pub organisation: String,
    #[diesel(sql_type = BigInt)]
    pub n: i64,
    #[diesel(sql_type = Nullable<Double>)]
    pub p50: Option<f64>,
    #[diesel(sql_type = Nullable<Double>)]
    pub p90: Option<f64>,
}

/// The steps whose durations oversight reports, as (start, end) timestamp columns.
pub const STEPS: [(&str, &str); 3] = [
    ("submitted_at", "acknowledged_at"),
    ("submitted_at", "decided_at"),
    ("decided_at", "care_started_at"),
];

/// Median and 90th percentile hours of each of `STEPS` (by index), per receiving
/// organisation, for referrals created in [from, to). Nearest-rank percentiles: the k-th
/// smallest value with k = ceil(p * n). PostgreSQL computes all three steps in one pass with
/// `percentile_disc` (exactly that definition); on SQLite, which has no ordered-set
/// aggregates, the values are read once and selected here.
pub fn step_durations(
    conn: &mut AnyConnection,
    from: Instant,
    to: Instant,
) -> QueryResult<Vec<(usize, StepDurations)>> {
    match conn {
        AnyConnection::Postgresql(pg) => {
            #[derive(QueryableByName)]
            struct Row {
                #[diesel(sql_type = Text)]
                organisation: String,
                #[diesel(sql_type = BigInt)]
                n0: i64,
                #[diesel(sql_type = Nullable<Double>)]
                p50_0: Option<f64>,
                #[diesel(sql_type = Nullable<Double>)]
                p90_0: Option<f64>,
                #[diesel(sql_type = BigInt)]
                n1: i64,
                #[diesel(sql_type = Nullable<Double>)]
                p50_1: Option<f64>,
                #[diesel(sql_type = Nullable<Double>)]
                p90_1: Option<f64>,
                #[diesel(sql_type = BigInt)]
                n2: i64,
                #[diesel(sql_type = Nullable<Double>)]
                p50_2: Option<f64>,
                #[diesel(sql_type = Nullable<Double>)]
                p90_2: Option<f64>,
            }
            let mut columns = Vec::new();
            let mut hours = Vec::new();
            for (i, (start, end)) in STEPS.iter().enumerate() {
                hours.push(format!("date_part('epoch', {end} - {start}) / 3600 AS h{i}"));
                columns.push(format!(
                    "COUNT(h{i}) AS n{i}, percentile_disc(0.5) WITHIN GROUP (ORDER BY h{i}) AS p50_{i}, \
                     percentile_disc(0.9) WITHIN GROUP (ORDER BY h{i}) AS p90_{i}"
                ));
            }
            let sql = format!(
                "SELECT organisation, {} FROM (SELECT to_organisation AS organisation, {} FROM referrals \
                 WHERE created_at >= $1 AND created_at < $2) d GROUP BY organisation ORDER BY organisation",
                columns.join(", "),
                hours.join(", ")
            );
            let rows: Vec<Row> = diesel::sql_query(sql)
                .bind::<UtcTime, _>(from)
                .bind::<UtcTime, _>(to)
                .load(pg)?;
            let mut out = Vec::new();
            for row in rows {
                for (i, n, p50, p90) in [
                    (0, row.n0, row.p50_0, row.p90_0),
                    (1, row.n1, row.p50_1, row.p90_1),
                    (2, row.n2, row.p50_2, row.p90_2),
                ] {
                    if n > 0 {
                        out.push((
                            i,
                            StepDurations {
                                organisation: row.organisation.clone(),
                                n,
                                p50,
                                p90,
                            },
                        ));
                    }
                }
            }
            Ok(out)
        }
        AnyConnection::Sqlite(sqlite) => {
            // SQLite has no ordered-set aggregates, and with window functions it sorts each
            // step's values in a temporary B-tree: 1.5 s per step over ten years at 1 M
            // cases. SQLite runs in this process, so its sort and this code share the same
            // memory and cores: the values are read once for all three steps (8 bytes each)
            // and the k-th smallest is found by linear selection.
            #[derive(QueryableByName)]
            struct Row {
                #[diesel(sql_type = Text)]
                organisation: String,
                #[diesel(sql_type = Nullable<Double>)]
                h0: Option<f64>,
                #[diesel(sql_type = Nullable<Double>)]
                h1: Option<f64>,
                #[diesel(sql_type = Nullable<Double>)]
                h2: Option<f64>,
            }
            let hours = STEPS
                .iter()
                .enumerate()
                .map(|(i, (start, end))| format!("((julianday({end}) - julianday({start})) * 24.0) AS h{i}"))
                .collect::<Vec<_>>()
                .join(", ");
            let sql = format!(
                "SELECT to_organisation AS organisation, {hours} FROM referrals \
                 WHERE created_at >= ? AND created_at < ? ORDER BY to_organisation"
            );
            let mut values: BTreeMap<String, [Vec<f64>; 3]> = BTreeMap::new();
            for row in diesel::sql_query(sql)
                .bind::<UtcTime, _>(from)
                .bind::<UtcTime, _>(to)
                .load_iter::<Row, diesel::connection::DefaultLoadingMode>(sqlite)?
            {
                let row = row?;
                let steps = values.entry(row.organisation).or_default();
                for (i, h) in [row.h0, row.h1, row.h2].into_iter().enumerate() {
                    steps[i].extend(h);
                }
            }
            let mut out = Vec::new();
            for i in 0..STEPS.len() {
                for (organisation, steps) in values.iter_mut() {
                    let measured = &mut steps[i];
                    if measured.is_empty() {
                        continue;
                    }
                    let n = measured.len();
                    out.push((
                        i,
                        StepDurations {
                            organisation: organisation.clone(),
                            n: n as i64,
                            p50: Some(nearest_rank(measured, n.div_ceil(2))),
                            p90: Some(nearest_rank(measured, (9 * n).div_ceil(10))),
                        },
                    ));
                }
            }
            Ok(out)
        }
    }
}

/// The k-th smallest of `values` (1-based), as percentile_disc gives it.
fn nearest_rank(values: &mut [f64], k: usize) -> f64 {
    *values.select_nth_unstable_by(k - 1, f64::total_cmp).1
}

/// Candidates for the overdue list: open referrals whose clock started before `cutoff`
/// (the shortest limit ago). The domain decides which steps are really overdue.
pub fn overdue_candidates(
    conn: &mut AnyConnection,
    ack_cutoff: Instant,
    care_cutoff: Instant,
    limit: i64,
) -> QueryResult<Vec<super::referrals::ReferralRow>> {
    referrals::table
        .filter(
            referrals::state
                .eq_any(["submitted", "acknowledged"])
                .and(referrals::submitted_at.lt(ack_cutoff))
                .or(referrals::state
                    .eq("accepted")
                    .and(referrals::decided_at.lt(care_cutoff))),
        )
        // An erased case is frozen: its accepted referrals go on outside `nrm` and are not chased.
        .filter(diesel::dsl::not(diesel::dsl::exists(
            super::schema::cases::table
                .filter(super::schema::cases::id.eq(referrals::case_id))
                .filter(super::schema::cases::erasure_reason.is_not_null()),
        )))
        .order(referrals::submitted_at.asc())
        .limit(limit)
        .select(super::referrals::ReferralRow::as_select())
        .load(conn)
}

/// One page of the open referrals whose `step` is due (their clock started before the
/// cutoff of their urgency, `DeadlineLimits::cutoffs`) and not yet escalated, by id after
/// `after`: the deadline watcher's work list, read to its end on every pass. A pass costs
/// what is due, not what is merely open; the domain confirms each step
/// (`deadline::overdue_steps`).
///
/// The page walks the partial index `referrals_open_by_id` (migration 000014), so a pass
/// costs the open referrals once, whatever the statistics say: SQLite is told to
/// (`INDEXED BY`; it would otherwise sort every candidate for each page), PostgreSQL's
/// planner takes it for `ORDER BY id LIMIT`.
pub fn unescalated_candidates(
    conn: &mut AnyConnection,
    step: Step,
    cutoffs: [(Urgency, Instant); 3],
    after: Option<Id>,
    limit: i64,
) -> QueryResult<Vec<super::referrals::ReferralRow>> {
    #[derive(QueryableByName)]
    struct Candidate {
        #[diesel(sql_type = super::types::DbUuid)]
        id: Id,
    }
    let (states, clock) = match step {
        Step::Acknowledge => ("r.state = 'submitted'", "r.submitted_at"),
        Step::Decide => ("r.state IN ('submitted', 'acknowledged')", "r.submitted_at"),
        Step::StartCare => ("r.state = 'accepted'", "r.decided_at"),
    };
    let sql = |hint: &str| {
        format!(
            "SELECT r.id AS id FROM referrals r {hint} \
             WHERE r.state IN ('submitted', 'acknowledged', 'accepted') AND {states} \
               AND ((r.urgency = ? AND {clock} < ?) OR (r.urgency = ? AND {clock} < ?) OR (r.urgency = ? AND {clock} < ?)) \
               AND r.id > ? \
               AND NOT EXISTS (SELECT 1 FROM escalations e WHERE e.referral_id = r.id AND e.step = ?) \
               AND NOT EXISTS (SELECT 1 FROM cases c WHERE c.id = r.case_id AND c.erasure_reason IS NOT NULL) \
             ORDER BY r.id LIMIT ?"
        )
    };
    // The smallest id there is, as the start of the first page.
    let after = after.unwrap_or(Id(uuid::Uuid::nil()));
    let ids: Vec<Candidate> = on_backend!(conn, postgres, |inner| {
        let hint = if postgres {
            ""
        } else {
            "INDEXED BY referrals_open_by_id"
        };
        let [(u1, c1), (u2, c2), (u3, c3)] = cutoffs;
        diesel::sql_query(placeholders(&sql(hint), postgres))
            .bind::<Text, _>(u1.as_str())
            .bind::<UtcTime, _>(c1)
            .bind::<Text, _>(u2.as_str())
            .bind::<UtcTime, _>(c2)
            .bind::<Text, _>(u3.as_str())
            .bind::<UtcTime, _>(c3)
            .bind::<super::types::DbUuid, _>(after)
            .bind::<Text, _>(step.as_str())
            .bind::<BigInt, _>(limit)
            .load(inner)?
    });
    let ids: Vec<Id> = ids.into_iter().map(|c| c.id).collect();
    let mut rows: Vec<super::referrals::ReferralRow> = referrals::table
        .filter(referrals::id.eq_any(&ids))
        .select(super::referrals::ReferralRow::as_select())
        .load(conn)?;
    rows.sort_by_key(|r| r.id.0);
    Ok(rows)
}

// ---------------------------------------------------------------------------
// EU data collection
// ---------------------------------------------------------------------------

/// Registered victims of a year by identification status and one breakdown, where
/// `dimension` is a fixed SQL expression chosen by the caller.
pub fn registered_by(
    conn: &mut AnyConnection,
    dimension: &str,
    from: NaiveDate,
    to: NaiveDate,
) -> QueryResult<Vec<(String, String, i64)>> {
    #[derive(QueryableByName)]
    struct Row {
        #[diesel(sql_type = Text)]
        status: String,
        #[diesel(sql_type = Text)]
        key: String,
        #[diesel(sql_type = BigInt)]
        n: i64,
    }
    let sql = format!(
        "SELECT identification_status AS status, {dimension} AS key, CAST(COUNT(*) AS BIGINT) AS n FROM cases \
         WHERE identification_status IN ('presumed_victim', 'identified') \
           AND reasonable_grounds_on >= ? AND reasonable_grounds_on <= ? \
         GROUP BY identification_status, {dimension} ORDER BY 1, 2"
    );
    let rows: Vec<Row> = on_backend!(conn, postgres, |inner| {
        diesel::sql_query(placeholders(&sql, postgres))
            .bind::<Date, _>(from)
            .bind::<Date, _>(to)
            .load(inner)?
    });
    Ok(rows.into_iter().map(|r| (r.status, r.key, r.n)).collect())
}

/// The breakdowns of the EU data collection, as SQL expressions over `cases`.
pub fn eu_dimensions() -> Vec<(&'static str, String)> {
    let forms = "(CASE WHEN exploitation_sexual THEN 1 ELSE 0 END + CASE WHEN exploitation_criminal THEN 1 ELSE 0 END \
                 + CASE WHEN exploitation_labour THEN 1 ELSE 0 END + CASE WHEN exploitation_other THEN 1 ELSE 0 END)";
    vec![
        ("registering_organisation", "organisation".to_string()),
        ("sex", "COALESCE(gender, 'unknown')".to_string()),
        (
            "age_group",
            "(CASE WHEN age_at_contact < 18 THEN 'child' \
                   WHEN presumed_minor AND (age_at_contact IS NULL OR age_uncertain) THEN 'child' \
                   WHEN age_at_contact IS NULL THEN 'unknown' ELSE 'adult' END)"
                .to_string(),
        ),
        ("citizenship", "COALESCE(nationality, 'unknown')".to_string()),
        (
            "form_of_exploitation",
            format!(
                "(CASE WHEN {forms} >= 2 THEN 'combination' WHEN exploitation_sexual THEN 'sexual' \
                       WHEN exploitation_criminal THEN 'criminal' WHEN exploitation_labour THEN 'labour' ELSE 'other' END)"
            ),
        ),
    ]
}

/// Anonymous notifications counted by (minor, gender, nationality group).
pub type AnonymousCounts = Vec<(bool, Option<String>, String, i64)>;

/// Anonymous notifications of a period by their snapshot facts.
pub fn anonymous_by(conn: &mut AnyConnection, from: Instant, to: Instant) -> QueryResult<AnonymousCounts> {
    anonymous_notifications::table
        .filter(anonymous_notifications::created_at.ge(from))
        .filter(anonymous_notifications::created_at.lt(to))
        .group_by((
            anonymous_notifications::minor,
            anonymous_notifications::gender,
            anonymous_notifications::nationality_group,
        ))
        .select((
            anonymous_notifications::minor,
            anonymous_notifications::gender,
            anonymous_notifications::nationality_group,
            diesel::dsl::count_star(),
        ))
        .load(conn)
}
