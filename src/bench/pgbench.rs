//! The database's own limit: the statements of one recorded transition, written as a
//! pgbench custom script and run at the same concurrency against the same database.
//!
//! The script is the recorded transaction with its values written in as literals, except
//! where a literal would make every run after the first fail or measure something else:
//!
//! - the referral and its case are each pgbench client's own, so clients do not queue on one
//!   row, like the service's; a client moves on to another referral every [`TURNS_PER_REFERRAL`]
//!   transactions (looked up before the transaction, outside `BEGIN`), so the history each
//!   transaction reads stays as short as a real referral's. On one referral for the whole
//!   run, the history read grew by one entry per transaction, to a thousand and more, and
//!   made the recorded SQL look slower than the service's;
//! - the optimistic version check reads and bumps that referral's version;
//! - new primary keys are `gen_random_uuid()`;
//! - the history sequence number counts on from the referral's last one (read with the
//!   referral), as the service takes the next after the history it reads.
//!
//! The audit entry is an INSERT into `audit_pending` with literal values. Sealing it into the
//! chain happens later, in batches, outside the transition (`db::audit::seal`); pgbench does
//! not do that work, the service does, so the comparison does not flatter the service.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

use chrono::{DateTime, Duration, NaiveDate, Utc};
use uuid::Uuid;

use super::capture::{Param, Reader, Statement};

/// What the benchmark knows about the transition it recorded.
#[derive(Debug, Clone, Copy)]
pub struct Recorded {
    pub referral: Uuid,
    pub case: Uuid,
}

/// Transactions a pgbench client runs on one referral before it takes the next: a handover
/// has four transitions, and a referral's history about as many entries.
pub const TURNS_PER_REFERRAL: u32 = 5;

/// Before each transaction, outside it: the client's referral, with its version and last
/// history number. Client `c` of `n` starts on the referral at `c` in id order and every
/// [`TURNS_PER_REFERRAL`] transactions moves `n` on (round again when through), so no two
/// clients share one; each look-up walks `n` index entries at most. `:clients` is set by
/// [`run`] (`-D clients=N`).
pub fn preamble() -> String {
    let turns = TURNS_PER_REFERRAL;
    let referral = "SELECT r.id AS rid, r.case_id AS cid, r.version AS r_version, \
         (SELECT COALESCE(max(h.seq), 0) FROM referral_history h WHERE h.referral_id = r.id) AS h_seq \
         FROM referrals r WHERE r.id = ";
    format!(
        "\\if :first\n\
         {referral}(SELECT id FROM referrals ORDER BY id OFFSET :client_id LIMIT 1) \\gset\n\
         \\set turn 0\n\
         \\set first 0\n\
         \\elif :turn % {turns} = 0\n\
         {referral}(SELECT id FROM (\
         (SELECT id FROM referrals WHERE id > CAST(:rid AS uuid) ORDER BY id OFFSET :clients - 1 LIMIT 1) \
         UNION ALL (SELECT id FROM referrals ORDER BY id OFFSET :client_id LIMIT 1) LIMIT 1) next) \\gset\n\
         \\endif\n\
         \\set turn :turn + 1\n"
    )
}

/// The statements of the transaction that changed the referral: from the `BEGIN` before its
/// `UPDATE "referrals"` to the `COMMIT` after it, on that connection.
pub fn transition_transaction(recorded: &[Statement]) -> Result<Vec<Statement>, String> {
    let update = recorded
        .iter()
        .position(|s| s.sql.starts_with("UPDATE \"referrals\""))
        .ok_or("no UPDATE of referrals was recorded")?;
    let connection = recorded[update].connection;
    let on_connection: Vec<&Statement> = recorded.iter().filter(|s| s.connection == connection).collect();
    let at = on_connection
        .iter()
        .position(|s| std::ptr::eq(*s, &recorded[update]))
        .ok_or("recording is inconsistent")?;
    let begin = on_connection[..at]
        .iter()
        .rposition(|s| is_begin(&s.sql))
        .ok_or("no BEGIN before the UPDATE")?;
    let commit = on_connection[at..]
        .iter()
        .position(|s| s.sql.trim().eq_ignore_ascii_case("COMMIT"))
        .ok_or("no COMMIT after the UPDATE")?;
    Ok(on_connection[begin..=at + commit]
        .iter()
        .map(|s| (*s).clone())
        .collect())
}

fn is_begin(sql: &str) -> bool {
    sql.trim().to_ascii_uppercase().starts_with("BEGIN")
}

/// The pgbench script for one recorded transition transaction.
pub fn script(transaction: &[Statement], recorded: Recorded) -> Result<String, String> {
    let mut out = preamble();
    let mut versions_bound = 0;
    for statement in transaction {
        let shape = Shape::of(&statement.sql);
        let mut sql = String::new();
        let mut rest = statement.sql.as_str();
        while let Some(dollar) = rest.find('$') {
            sql.push_str(&rest[..dollar]);
            let digits = rest[dollar + 1..].chars().take_while(char::is_ascii_digit).count();
            if digits == 0 {
                sql.push('$');
                rest = &rest[dollar + 1..];
                continue;
            }
            let n: usize = rest[dollar + 1..dollar + 1 + digits]
                .parse()
                .map_err(|_| "bad placeholder")?;
            let param = statement
                .params
                .get(n - 1)
                .ok_or_else(|| format!("placeholder ${n} without a value in: {}", statement.sql))?;
            let expression = match shape.role_of(n) {
                Some(Role::NewKey) => "gen_random_uuid()".to_string(),
                Some(Role::NextVersion) => {
                    versions_bound += 1;
                    "CAST(:r_version AS bigint) + 1".to_string()
                }
                Some(Role::ExpectedVersion) => {
                    versions_bound += 1;
                    "CAST(:r_version AS bigint)".to_string()
                }
                Some(Role::HistorySeq) => "CAST(:h_seq AS bigint) + 1".to_string(),
                None => match uuid_of(param) {
                    Some(u) if u == recorded.referral => "CAST(:rid AS uuid)".to_string(),
                    Some(u) if u == recorded.case => "CAST(:cid AS uuid)".to_string(),
                    _ => literal(param)?,
                },
            };
            sql.push_str(&expression);
            rest = &rest[dollar + 1 + digits..];
        }
        sql.push_str(rest);
        let sql = sql.replace('\n', " ");
        writeln!(out, "{sql};").map_err(|e| e.to_string())?;
    }
    if versions_bound != 2 {
        return Err(format!(
            "expected the referral UPDATE to bind the expected and the next version, found {versions_bound} version placeholders"
        ));
    }
    out.push_str("\\set r_version :r_version + 1\n\\set h_seq :h_seq + 1\n");
    Ok(out)
}

/// What a placeholder stands for, where a literal would not do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    NewKey,
    ExpectedVersion,
    NextVersion,
    HistorySeq,
}

/// The placeholders of one statement whose role matters, found from diesel's SQL shapes:
/// `INSERT INTO "t" ("a", "b") VALUES ($1, DEFAULT)` and `UPDATE "t" SET "a" = $1 ... WHERE`.
struct Shape {
    roles: Vec<(usize, Role)>,
}

impl Shape {
    fn of(sql: &str) -> Shape {
        let mut roles = Vec::new();
        if let Some(table) = sql.strip_prefix("INSERT INTO \"").and_then(|s| s.split('"').next()) {
            let columns: Vec<&str> = between(sql, "(", ")")
                .map(|c| c.split(',').map(|c| c.trim().trim_matches('"')).collect())
                .unwrap_or_default();
            let values: Vec<&str> = sql
                .find(" VALUES ")
                .and_then(|at| between(&sql[at..], "(", ")"))
                .map(|v| v.split(',').map(str::trim).collect())
                .unwrap_or_default();
            for (column, value) in columns.iter().zip(&values) {
                let Some(n) = value.strip_prefix('$').and_then(|n| n.parse::<usize>().ok()) else {
                    continue;
                };
                let role = match (table, *column) {
                    (_, "id") => Some(Role::NewKey),
                    ("referral_history", "seq") => Some(Role::HistorySeq),
                    _ => None,
                };
                if let Some(role) = role {
                    roles.push((n, role));
                }
            }
        } else if sql.starts_with("UPDATE \"referrals\"") {
            let (set, filter) = sql.split_once(" WHERE ").unwrap_or((sql, ""));
            if let Some(n) = placeholder_after(set, "\"version\" = $") {
                roles.push((n, Role::NextVersion));
            }
            if let Some(n) = placeholder_after(filter, "\"version\" = $") {
                roles.push((n, Role::ExpectedVersion));
            }
        }
        Shape { roles }
    }

    fn role_of(&self, n: usize) -> Option<Role> {
        self.roles.iter().find(|(at, _)| *at == n).map(|(_, role)| *role)
    }
}

fn between<'a>(text: &'a str, open: &str, close: &str) -> Option<&'a str> {
    let start = text.find(open)? + open.len();
    let end = text[start..].find(close)? + start;
    Some(&text[start..end])
}

fn placeholder_after(text: &str, marker: &str) -> Option<usize> {
    let at = text.find(marker)? + marker.len();
    let digits: String = text[at..].chars().take_while(char::is_ascii_digit).collect();
    digits.parse().ok()
}

fn uuid_of(param: &Param) -> Option<Uuid> {
    match param {
        Param::Value {
            oid: 2950,
            binary: true,
            bytes,
        } => Uuid::from_slice(bytes).ok(),
        Param::Value {
            oid: 2950,
            binary: false,
            bytes,
        } => Uuid::parse_str(&String::from_utf8_lossy(bytes)).ok(),
        _ => None,
    }
}

fn type_name(oid: u32) -> Option<&'static str> {
    Some(match oid {
        16 => "boolean",
        17 => "bytea",
        20 => "bigint",
        21 => "smallint",
        23 => "integer",
        25 => "text",
        114 => "json",
        700 => "real",
        701 => "double precision",
        1043 => "varchar",
        1082 => "date",
        1114 => "timestamp",
        1184 => "timestamptz",
        2950 => "uuid",
        3802 => "jsonb",
        1000 => "boolean[]",
        1005 => "smallint[]",
        1007 => "integer[]",
        1009 => "text[]",
        1016 => "bigint[]",
        2951 => "uuid[]",
        _ => return None,
    })
}

/// An SQL string literal (E'' form) that pgbench passes through untouched: pgbench reads
/// `:name` anywhere in a command as a variable, so a colon is written `\072` (diesel's SQL
/// itself has no literals); backslash and quote are escaped too.
fn quote(text: &str) -> String {
    let mut out = String::from("E'");
    for c in text.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\'' => out.push_str("\\'"),
            ':' => out.push_str("\\072"),
            c => out.push(c),
        }
    }
    out.push('\'');
    out
}

/// A recorded parameter as a typed SQL literal.
pub fn literal(param: &Param) -> Result<String, String> {
    match param {
        Param::Null { oid } => Ok(match type_name(*oid) {
            Some(name) => format!("CAST(NULL AS {name})"),
            None => "NULL".into(),
        }),
        Param::Value { oid, binary, bytes } => {
            let text = if *binary {
                binary_as_text(*oid, bytes)?
            } else {
                String::from_utf8_lossy(bytes).into_owned()
            };
            Ok(match type_name(*oid) {
                Some(name) => format!("CAST({} AS {name})", quote(&text)),
                None => quote(&text),
            })
        }
    }
}

fn postgres_epoch() -> DateTime<Utc> {
    NaiveDate::from_ymd_opt(2000, 1, 1)
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map(|t| t.and_utc())
        .unwrap_or_default()
}

fn fixed<const N: usize>(bytes: &[u8]) -> Result<[u8; N], String> {
    bytes
        .try_into()
        .map_err(|_| format!("expected {N} bytes, got {}", bytes.len()))
}

/// PostgreSQL's binary format of the types the service binds, in their text form.
fn binary_as_text(oid: u32, bytes: &[u8]) -> Result<String, String> {
    Ok(match oid {
        16 => (if bytes.first() == Some(&1) { "true" } else { "false" }).to_string(),
        20 => i64::from_be_bytes(fixed(bytes)?).to_string(),
        21 => i16::from_be_bytes(fixed(bytes)?).to_string(),
        23 => i32::from_be_bytes(fixed(bytes)?).to_string(),
        700 => f32::from_be_bytes(fixed(bytes)?).to_string(),
        701 => f64::from_be_bytes(fixed(bytes)?).to_string(),
        25 | 1043 | 114 | 0 => String::from_utf8_lossy(bytes).into_owned(),
        3802 => String::from_utf8_lossy(bytes.get(1..).unwrap_or_default()).into_owned(),
        17 => bytes.iter().fold(String::from("\\x"), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        }),
        2950 => Uuid::from_slice(bytes).map_err(|e| e.to_string())?.to_string(),
        1114 | 1184 => {
            let micros = i64::from_be_bytes(fixed(bytes)?);
            let t = postgres_epoch() + Duration::microseconds(micros);
            let zone = if oid == 1184 { "+00" } else { "" };
            format!("{}{zone}", t.format("%Y-%m-%d %H:%M:%S%.6f"))
        }
        1082 => {
            let days = i32::from_be_bytes(fixed(bytes)?);
            (postgres_epoch() + Duration::days(i64::from(days)))
                .format("%Y-%m-%d")
                .to_string()
        }
        1000 | 1005 | 1007 | 1009 | 1016 | 2951 => array_as_text(bytes)?,
        _ => return Err(format!("no literal form for parameter type oid {oid}")),
    })
}

/// A one-dimensional array in binary form, as an array literal (`{a,b}`).
fn array_as_text(bytes: &[u8]) -> Result<String, String> {
    let mut r = Reader::new(bytes);
    let io = |e: std::io::Error| e.to_string();
    let dimensions = r.u32().map_err(io)?;
    let _has_nulls = r.u32().map_err(io)?;
    let element = r.u32().map_err(io)?;
    if dimensions == 0 {
        return Ok("{}".into());
    }
    if dimensions != 1 {
        return Err("only one-dimensional arrays are recorded".into());
    }
    let count = r.u32().map_err(io)?;
    let _lower_bound = r.u32().map_err(io)?;
    let mut items = Vec::new();
    for _ in 0..count {
        let size = r.u32().map_err(io)? as i32;
        if size < 0 {
            items.push("NULL".to_string());
            continue;
        }
        let text = binary_as_text(element, r.bytes(size as usize).map_err(io)?)?;
        items.push(format!("\"{}\"", text.replace('\\', "\\\\").replace('"', "\\\"")));
    }
    Ok(format!("{{{}}}", items.join(",")))
}

/// The outcome of one pgbench run.
#[derive(Debug, Clone)]
pub struct PgbenchResult {
    pub transactions: u64,
    pub tps: f64,
    pub failed: u64,
    /// Per-transaction latencies from pgbench's own log, in microseconds.
    pub latencies_us: Vec<u64>,
}

/// Runs pgbench with the given scripts (equal weights) and reads its transaction log.
pub fn run(
    conninfo: &str,
    scripts: &[PathBuf],
    clients: usize,
    seconds: u64,
    work_dir: &Path,
) -> Result<PgbenchResult, String> {
    let prefix = work_dir.join("pgbench_log");
    let mut command = timed(&prefix, clients, seconds);
    command.args(["-D", "first=1", "-D", &format!("clients={clients}")]);
    for script in scripts {
        command.arg("-f").arg(script);
    }
    command.arg(conninfo);
    finish(command, &prefix, work_dir)
}

/// pgbench's tables at this scale (100,000 accounts each): well above the clients, so
/// `-N` clients seldom touch the same account.
const SIMPLE_UPDATE_SCALE: &str = "10";

/// pgbench's own `-N` ("simple update": three statements on `pgbench_accounts` and an insert
/// into `pgbench_history` per transaction) on the same database, after `pgbench -i` made
/// its tables there: how fast this database commits small write transactions at all.
pub fn run_simple_update(
    conninfo: &str,
    clients: usize,
    seconds: u64,
    work_dir: &Path,
) -> Result<PgbenchResult, String> {
    let init = Command::new("pgbench")
        .args(["-i", "-q", "-s", SIMPLE_UPDATE_SCALE])
        .arg(conninfo)
        .output()
        .map_err(|e| format!("cannot run pgbench (is it installed?): {e}"))?;
    if !init.status.success() {
        return Err(format!(
            "pgbench -i failed ({}):\n{}",
            init.status,
            String::from_utf8_lossy(&init.stderr)
        ));
    }
    let prefix = work_dir.join("pgbench_n_log");
    let mut command = timed(&prefix, clients, seconds);
    command.arg("-N").arg(conninfo);
    finish(command, &prefix, work_dir)
}

/// pgbench for `seconds` at `clients`, logging every transaction under `prefix`.
fn timed(prefix: &Path, clients: usize, seconds: u64) -> Command {
    let mut command = Command::new("pgbench");
    command
        .args(["-n", "-M", "prepared", "--log"])
        .arg(format!("--log-prefix={}", prefix.display()))
        .args(["-c", &clients.to_string(), "-j", &clients.clamp(1, 2).to_string()])
        .args(["-T", &seconds.to_string()]);
    command
}

/// Runs the command and reads its rate, failures and per-transaction latencies.
fn finish(mut command: Command, prefix: &Path, work_dir: &Path) -> Result<PgbenchResult, String> {
    let output = command
        .output()
        .map_err(|e| format!("cannot run pgbench (is it installed?): {e}"))?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    if !output.status.success() {
        return Err(format!("pgbench failed ({}):\n{stdout}\n{stderr}", output.status));
    }
    let number = |label: &str| -> Option<f64> {
        stdout
            .lines()
            .find_map(|line| line.trim().strip_prefix(label))
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|n| n.parse().ok())
    };
    let tps = number("tps = ").ok_or_else(|| format!("no tps in pgbench output:\n{stdout}"))?;
    let transactions = number("number of transactions actually processed: ").unwrap_or(0.0) as u64;
    let failed = number("number of failed transactions: ").unwrap_or(0.0) as u64;
    let mut latencies_us = Vec::new();
    let name = prefix
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    for entry in std::fs::read_dir(work_dir).map_err(|e| e.to_string())? {
        let entry = entry.map_err(|e| e.to_string())?;
        if !entry.file_name().to_string_lossy().starts_with(&name) {
            continue;
        }
        let text = std::fs::read_to_string(entry.path()).map_err(|e| e.to_string())?;
        latencies_us.extend(parse_log(&text));
        let _ = std::fs::remove_file(entry.path());
    }
    Ok(PgbenchResult {
        transactions,
        tps,
        failed,
        latencies_us,
    })
}

/// Latencies (third field, microseconds) from pgbench's per-transaction log lines:
/// `client_id transaction_no time script_no time_epoch time_us`.
pub fn parse_log(text: &str) -> Vec<u64> {
    text.lines()
        .filter_map(|line| line.split_whitespace().nth(2))
        .filter_map(|latency| latency.parse().ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bench::capture::Sent;

    fn value(oid: u32, bytes: &[u8]) -> Param {
        Param::Value {
            oid,
            binary: true,
            bytes: bytes.to_vec(),
        }
    }

    fn statement(sql: &str, params: Vec<Param>) -> Statement {
        Statement {
            connection: 3,
            sql: sql.into(),
            params,
            sent: Sent::Prepared,
        }
    }

    #[test]
    fn literals_are_typed_and_survive_pgbench_variable_syntax() {
        assert_eq!(
            literal(&value(20, &7i64.to_be_bytes())).unwrap(),
            "CAST(E'7' AS bigint)"
        );
        assert_eq!(
            literal(&value(25, b"it's a:b\\c")).unwrap(),
            "CAST(E'it\\'s a\\072b\\\\c' AS text)"
        );
        assert_eq!(literal(&Param::Null { oid: 25 }).unwrap(), "CAST(NULL AS text)");
        // 2026-12-01 00:00:00 UTC is 9831 days after the PostgreSQL epoch.
        let micros = 9831i64 * 86_400 * 1_000_000;
        assert_eq!(
            literal(&value(1184, &micros.to_be_bytes())).unwrap(),
            "CAST(E'2026-12-01 00\\07200\\07200.000000+00' AS timestamptz)"
        );
        let id = Uuid::from_u128(0x0193_0000_0000_7000_8000_0000_0000_0001);
        assert_eq!(
            literal(&value(2950, id.as_bytes())).unwrap(),
            format!("CAST(E'{id}' AS uuid)")
        );
        assert!(literal(&value(9999, b"?")).is_err());
    }

    #[test]
    fn binary_arrays_become_array_literals() {
        let mut bytes = Vec::new();
        for n in [1u32, 0, 25, 2, 1] {
            bytes.extend(n.to_be_bytes());
        }
        for item in [&b"a"[..], &b"b\"c"[..]] {
            bytes.extend((item.len() as u32).to_be_bytes());
            bytes.extend(item);
        }
        assert_eq!(
            literal(&value(1009, &bytes)).unwrap(),
            "CAST(E'{\"a\",\"b\\\\\"c\"}' AS text[])"
        );
    }

    fn recorded_transition() -> (Vec<Statement>, Recorded) {
        let referral = Uuid::from_u128(1);
        let case = Uuid::from_u128(2);
        let fresh = Uuid::from_u128(3);
        let uuid = |u: Uuid| value(2950, u.as_bytes());
        let int = |n: i64| value(20, &n.to_be_bytes());
        let text = |t: &str| value(25, t.as_bytes());
        let statements = vec![
            statement("SELECT 1", vec![]),
            statement("BEGIN", vec![]),
            statement(
                "SELECT \"referrals\".\"id\" FROM \"referrals\" WHERE (\"referrals\".\"id\" = $1)",
                vec![uuid(referral)],
            ),
            statement(
                "UPDATE \"referrals\" SET \"state\" = $1, \"version\" = $2 WHERE ((\"referrals\".\"id\" = $3) AND (\"referrals\".\"version\" = $4))",
                vec![text("accepted"), int(4), uuid(referral), int(3)],
            ),
            statement(
                "SELECT \"referral_history\".\"seq\" FROM \"referral_history\" WHERE (\"referral_history\".\"referral_id\" = $1) ORDER BY \"referral_history\".\"seq\"",
                vec![uuid(referral)],
            ),
            statement(
                "INSERT INTO \"referral_history\" (\"id\", \"referral_id\", \"seq\", \"note\") VALUES ($1, $2, $3, DEFAULT)",
                vec![uuid(fresh), uuid(referral), int(2)],
            ),
            statement(
                "INSERT INTO \"audit_pending\" (\"action\", \"case_id\", \"outcome\") VALUES ($1, $2, $3)",
                vec![text("referral.accept"), uuid(case), text("ok")],
            ),
            statement("COMMIT", vec![]),
        ];
        // Another connection's work in between is not part of the transaction.
        let mut recorded = statements.clone();
        recorded.insert(
            4,
            Statement {
                connection: 1,
                sql: "SELECT 2".into(),
                params: vec![],
                sent: Sent::Simple,
            },
        );
        (recorded, Recorded { referral, case })
    }

    #[test]
    fn the_transaction_is_cut_from_begin_to_commit_on_the_updating_connection() {
        let (recorded, _) = recorded_transition();
        let transaction = transition_transaction(&recorded).unwrap();
        let sql: Vec<&str> = transaction.iter().map(|s| s.sql.as_str()).collect();
        assert_eq!(sql.first(), Some(&"BEGIN"));
        assert_eq!(sql.last(), Some(&"COMMIT"));
        assert_eq!(sql.len(), 7);
        assert!(!sql.contains(&"SELECT 2"));
        assert!(transition_transaction(&recorded[..2]).is_err());
    }

    #[test]
    fn the_script_keeps_each_run_valid() {
        let (recorded, known) = recorded_transition();
        let script = script(&transition_transaction(&recorded).unwrap(), known).unwrap();
        assert!(script.starts_with(&preamble()));
        assert!(script.contains(
            "\"version\" = CAST(:r_version AS bigint) + 1 WHERE ((\"referrals\".\"id\" = CAST(:rid AS uuid)) AND (\"referrals\".\"version\" = CAST(:r_version AS bigint)))"
        ), "{script}");
        assert!(
            script.contains(
                "FROM \"referral_history\" WHERE (\"referral_history\".\"referral_id\" = CAST(:rid AS uuid)) ORDER BY \"referral_history\".\"seq\";"
            ),
            "{script}"
        );
        assert!(
            script.contains("VALUES (gen_random_uuid(), CAST(:rid AS uuid), CAST(:h_seq AS bigint) + 1, DEFAULT);"),
            "{script}"
        );
        assert!(
            script.contains("VALUES (CAST(E'referral.accept' AS text), CAST(:cid AS uuid), CAST(E'ok' AS text));"),
            "{script}"
        );
        assert!(
            script.ends_with("COMMIT;\n\\set r_version :r_version + 1\n\\set h_seq :h_seq + 1\n"),
            "{script}"
        );
    }

    #[test]
    fn a_transaction_without_the_version_check_is_refused() {
        let (mut recorded, known) = recorded_transition();
        recorded[3].sql = "UPDATE \"referrals\" SET \"state\" = $1 WHERE (\"referrals\".\"id\" = $3)".into();
        let transaction = transition_transaction(&recorded).unwrap();
        assert!(script(&transaction, known).is_err());
    }

    #[test]
    fn pgbench_log_lines_give_latencies() {
        assert_eq!(
            parse_log("0 1 1520 0 1700000000 12\n3 9 880 1 1700000000 99\n\n"),
            vec![1520, 880]
        );
    }
}
