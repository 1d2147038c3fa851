//! Roll-ups of the statistics report and the flows, per day and organisation, so a report
//! over ten years reads about a row per day and key, not every case (migration 000015).
//!
//! Triggers write an insert-only delta for every change to a counted column, in the
//! transaction of the change: no shared row is locked, so handovers never wait on one
//! another for a counter. One leader per database (`SingletonTask::RollUps`) folds the
//! deltas into the roll-up tables in batches. Reports add the roll-ups of their period to
//! the deltas not folded yet (`stats::Counted::RollUps`), so a stopped folder makes reports
//! slower, never wrong.
//!
//! Only additive counts are rolled up. The response-time percentiles of the flows are
//! nearest-rank order statistics of each receiver's durations: they cannot be summed per
//! day, and an exact structure would be the multiset of durations itself (the seeded
//! durations are milliseconds apart, so a histogram would hold about one entry per
//! referral). They are read from the rows, over a covering index.

use std::time::Duration;

use diesel::prelude::*;
use diesel::sql_types::BigInt;

use super::leader::{Leadership, SingletonTask};
use super::stats::placeholders;
use super::stats::{case_measure_names, case_measures_sql};
use super::{AnyConnection, Db, DbError, snapshot_write_transaction};

/// How often the leader folds what has accumulated.
pub const FOLD_INTERVAL: Duration = Duration::from_secs(1);

/// Deltas of one kind folded in one transaction at most: a backlog (after the migration
/// that introduced the roll-ups, or a large import) is folded in steps that keep each
/// transaction short.
const FOLD_BATCH: i64 = 50_000;

#[derive(QueryableByName)]
struct Last {
    #[diesel(sql_type = diesel::sql_types::Nullable<BigInt>)]
    id: Option<i64>,
}

/// The id of the last delta of the next batch of `table`, if there is one.
fn batch_end(conn: &mut AnyConnection, table: &str) -> QueryResult<Option<i64>> {
    let sql = format!("SELECT MAX(id) AS id FROM (SELECT id FROM {table} ORDER BY id LIMIT {FOLD_BATCH}) b");
    let last: Last = diesel::sql_query(sql).get_result(conn)?;
    Ok(last.id)
}

fn execute(conn: &mut AnyConnection, sql: &str, last: i64) -> QueryResult<usize> {
    match conn {
        AnyConnection::Postgresql(pg) => diesel::sql_query(placeholders(sql, true))
            .bind::<BigInt, _>(last)
            .execute(pg),
        AnyConnection::Sqlite(sqlite) => diesel::sql_query(sql).bind::<BigInt, _>(last).execute(sqlite),
    }
}

/// The three kinds of delta, each with its table and the roll-ups it folds into.
#[derive(Debug, Clone, Copy)]
enum Deltas {
    Cases,
    Referrals,
    ThreeWay,
}

impl Deltas {
    const ALL: [Deltas; 3] = [Self::Cases, Self::Referrals, Self::ThreeWay];

    fn table(self) -> &'static str {
        match self {
            Self::Cases => "case_count_deltas",
            Self::Referrals => "referral_count_deltas",
            Self::ThreeWay => "three_way_count_deltas",
        }
    }

    /// The statements that fold a batch (deltas up to id `?`) into the roll-ups. `WHERE
    /// true`: SQLite needs a WHERE before ON CONFLICT in INSERT ... SELECT to parse it.
    fn fold_statements(self) -> Vec<String> {
        match self {
            Self::Cases => {
                let names = case_measure_names();
                let add = names
                    .iter()
                    .map(|name| format!("{name} = case_rollups.{name} + excluded.{name}"))
                    .collect::<Vec<_>>()
                    .join(", ");
                vec![format!(
                    "INSERT INTO case_rollups (day, organisation, {columns}) \
                     SELECT * FROM ({measures}) m WHERE true \
                     ON CONFLICT (day, organisation) DO UPDATE SET {add}",
                    columns = names.join(", "),
                    measures = case_measures_sql(self.table(), "n", "id <= ?", "contact_date, organisation"),
                )]
            }
            Self::Referrals => vec![
                "INSERT INTO referral_rollups (day, to_organisation, state, outcome, n) \
                 SELECT contact_date, to_organisation, state, COALESCE(outcome, ''), SUM(n) FROM referral_count_deltas \
                 WHERE submitted AND id <= ? GROUP BY contact_date, to_organisation, state, COALESCE(outcome, '') \
                 ON CONFLICT (day, to_organisation, state, outcome) DO UPDATE SET n = referral_rollups.n + excluded.n"
                    .to_string(),
                "INSERT INTO flow_rollups (day, from_organisation, to_organisation, state, overridden, n) \
                 SELECT created_day, from_organisation, to_organisation, state, overridden, SUM(n) FROM referral_count_deltas \
                 WHERE id <= ? GROUP BY created_day, from_organisation, to_organisation, state, overridden \
                 ON CONFLICT (day, from_organisation, to_organisation, state, overridden) DO UPDATE SET n = flow_rollups.n + excluded.n"
                    .to_string(),
            ],
            Self::ThreeWay => vec![
                "INSERT INTO three_way_rollups (day, state, reporting_intention, n) \
                 SELECT contact_date, state, COALESCE(reporting_intention, ''), SUM(n) FROM three_way_count_deltas \
                 WHERE id <= ? GROUP BY contact_date, state, COALESCE(reporting_intention, '') \
                 ON CONFLICT (day, state, reporting_intention) DO UPDATE SET n = three_way_rollups.n + excluded.n"
                    .to_string(),
            ],
        }
    }
}

/// Folds one batch of each kind of delta; returns how many deltas it folded. Each batch is
/// one transaction on one snapshot: on PostgreSQL a delta that commits while the batch runs
/// may have a smaller id than the batch's last, and the snapshot keeps the delete from
/// removing a delta the insert did not count.
pub fn fold_once(conn: &mut AnyConnection) -> QueryResult<u64> {
    let mut folded = 0;
    for deltas in Deltas::ALL {
        let table = deltas.table();
        folded += snapshot_write_transaction(conn, |conn| {
            let Some(last) = batch_end(conn, table)? else {
                return Ok::<u64, diesel::result::Error>(0);
            };
            for statement in deltas.fold_statements() {
                execute(conn, &statement, last)?;
            }
            let deleted = execute(conn, &format!("DELETE FROM {table} WHERE id <= ?"), last)?;
            Ok(deleted as u64)
        })?;
    }
    Ok(folded)
}

/// How many deltas wait to be folded.
pub fn pending(conn: &mut AnyConnection) -> QueryResult<i64> {
    #[derive(QueryableByName)]
    struct Count {
        #[diesel(sql_type = BigInt)]
        n: i64,
    }
    let sql = Deltas::ALL
        .map(|deltas| format!("(SELECT COUNT(*) FROM {})", deltas.table()))
        .join(" + ");
    let count: Count = diesel::sql_query(format!("SELECT CAST({sql} AS BIGINT) AS n")).get_result(conn)?;
    Ok(count.n)
}

/// Folds batches until one was not full, so a backlog goes in one pass of the folder while
/// a steady stream of changes cannot keep it from returning; returns how many it folded.
pub fn fold(conn: &mut AnyConnection) -> QueryResult<u64> {
    let mut total = 0;
    loop {
        let folded = fold_once(conn)?;
        total += folded;
        if folded < FOLD_BATCH as u64 {
            return Ok(total);
        }
    }
}

/// Folds every `FOLD_INTERVAL` while this instance leads the roll-ups, until the process ends.
pub async fn run_folder(db: Db) {
    let mut leadership = Leadership::new(&db, SingletonTask::RollUps);
    loop {
        leadership.next_pass(FOLD_INTERVAL).await;
        match db.run(|conn| fold(conn).map_err(DbError::from)).await {
            Ok(_) => {}
            Err(error) => tracing::error!(error = %error, "folding statistics roll-ups failed"),
        }
    }
}
