//! Work that must run once per database, however many instances serve it: the audit sealer,
//! the deadline watcher, retention and the statistics roll-ups each have one leader.
//!
//! On PostgreSQL the leader holds a session-level advisory lock on a connection of its own
//! (outside the pool): the lock lives exactly as long as that connection, so a killed
//! instance hands over as soon as PostgreSQL notices the connection is gone, and no lease
//! times out while its holder is merely slow. Instances that do not hold it try again on
//! every pass of their task. On SQLite, whose file serves one host, the lock is an exclusive
//! lock on a file beside the database (`<database>.<task>.lock`), which the kernel releases
//! when the process ends. Either way the check is cheap enough to make before every pass.
//!
//! Leadership is what keeps the work single, not what keeps it safe: every task still
//! re-reads its items in the transaction that changes them (an escalation's primary key, an
//! erasure's state, the chain head), so the short overlap of a hand-over cannot double it.

use std::fs::{File, TryLockError};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use diesel::prelude::*;
use diesel::sql_types::{Bool, Integer};
use diesel::{Connection, PgConnection};

use super::{DatabaseLocation, Db};

/// How often an instance that does not lead a task tries for it, however long the task's
/// own interval.
pub const STANDBY_RETRY: Duration = Duration::from_secs(1);

/// A task with a single leader per database.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SingletonTask {
    Sealer,
    DeadlineWatcher,
    Retention,
    RollUps,
}

/// The first half of every advisory lock key `nrm` takes ("nrm" in ASCII), so its locks
/// cannot collide with another application's on a shared server.
const LOCK_CLASS: i32 = 0x006e_726d;

impl SingletonTask {
    pub const ALL: [SingletonTask; 4] = [Self::Sealer, Self::DeadlineWatcher, Self::Retention, Self::RollUps];

    pub fn name(self) -> &'static str {
        match self {
            Self::Sealer => "sealer",
            Self::DeadlineWatcher => "deadline-watcher",
            Self::Retention => "retention",
            Self::RollUps => "roll-ups",
        }
    }

    fn lock_key(self) -> i32 {
        match self {
            Self::Sealer => 1,
            Self::DeadlineWatcher => 2,
            Self::Retention => 3,
            Self::RollUps => 4,
        }
    }
}

/// Which tasks this instance leads now, for its readiness answer. Shared by the instance's
/// `Db` handles.
#[derive(Debug, Default)]
pub struct Leading([AtomicBool; 4]);

impl Leading {
    fn set(&self, task: SingletonTask, leading: bool) {
        self.0[task.lock_key() as usize - 1].store(leading, Ordering::Relaxed);
    }

    /// The tasks led, by name.
    pub fn tasks(&self) -> Vec<&'static str> {
        SingletonTask::ALL
            .into_iter()
            .filter(|t| self.0[t.lock_key() as usize - 1].load(Ordering::Relaxed))
            .map(SingletonTask::name)
            .collect()
    }
}

enum Held {
    /// A connection that tries for the lock, or holds it.
    Postgres { conn: PgConnection, leading: bool },
    /// The locked file: the lock lasts while it is open.
    File(#[allow(dead_code)] File),
}

/// One instance's claim to lead one task.
pub struct Leadership {
    task: SingletonTask,
    location: DatabaseLocation,
    held: Option<Held>,
    leading: Arc<Leading>,
}

impl Drop for Leadership {
    fn drop(&mut self) {
        self.leading.set(self.task, false);
    }
}

impl Leadership {
    pub fn new(db: &Db, task: SingletonTask) -> Self {
        Self {
            task,
            location: db.location().clone(),
            held: None,
            leading: db.leading(),
        }
    }

    /// Whether this instance leads the task now: keeps the lock it holds, after checking that
    /// its connection still lives, or tries to take it. Blocking; see `lead`.
    pub fn lead_blocking(&mut self) -> bool {
        let was_leading = is_leading(&self.held);
        let outcome = try_lead(self.task, &self.location, &mut self.held);
        self.settle(was_leading, outcome)
    }

    /// Waits until this instance leads the task and its next pass is due: `interval` after the
    /// last pass while it leads; while it does not (at start, too), it tries at once and then
    /// every `STANDBY_RETRY` at most, and passes as soon as it leads. So a killed leader's
    /// hourly task moves within a second or so, not within the hour.
    pub async fn next_pass(&mut self, interval: Duration) {
        if is_leading(&self.held) {
            tokio::time::sleep(interval).await;
        }
        while !self.lead().await {
            tokio::time::sleep(interval.min(STANDBY_RETRY)).await;
        }
    }

    /// As `lead_blocking`, off the async executor.
    pub async fn lead(&mut self) -> bool {
        let was_leading = is_leading(&self.held);
        let (task, location, mut held) = (self.task, self.location.clone(), self.held.take());
        let outcome = tokio::task::spawn_blocking(move || {
            let outcome = try_lead(task, &location, &mut held);
            (held, outcome)
        })
        .await;
        match outcome {
            Ok((held, outcome)) => {
                self.held = held;
                self.settle(was_leading, outcome)
            }
            Err(_) => self.settle(was_leading, Err("the leadership check was cancelled".into())),
        }
    }

    fn settle(&mut self, was_leading: bool, outcome: Result<bool, String>) -> bool {
        let leading = match outcome {
            Ok(leading) => leading,
            Err(problem) => {
                // A lost connection lost the lock with it: start over on the next pass.
                self.held = None;
                tracing::warn!(task = self.task.name(), %problem, "leadership could not be checked");
                false
            }
        };
        self.leading.set(self.task, leading);
        if leading != was_leading {
            if leading {
                tracing::info!(task = self.task.name(), "this instance now leads the task");
            } else {
                tracing::warn!(task = self.task.name(), "this instance no longer leads the task");
            }
        }
        leading
    }
}

fn is_leading(held: &Option<Held>) -> bool {
    match held {
        Some(Held::Postgres { leading, .. }) => *leading,
        Some(Held::File(_)) => true,
        None => false,
    }
}

fn try_lead(task: SingletonTask, location: &DatabaseLocation, held: &mut Option<Held>) -> Result<bool, String> {
    match location {
        DatabaseLocation::Postgres(url) => {
            if held.is_none() {
                let conn = PgConnection::establish(url).map_err(|e| e.to_string())?;
                *held = Some(Held::Postgres { conn, leading: false });
            }
            let Some(Held::Postgres { conn, leading }) = held else {
                return Err("leadership state does not match the database".into());
            };
            if *leading {
                // The lock is the session's: a live session still holds it.
                diesel::sql_query("SELECT 1").execute(conn).map_err(|e| e.to_string())?;
            } else {
                *leading = try_advisory_lock(conn, task.lock_key()).map_err(|e| e.to_string())?;
            }
            Ok(*leading)
        }
        DatabaseLocation::SqliteFile(path) => {
            if held.is_some() {
                return Ok(true);
            }
            let lock_path = lock_file(path, task);
            let file = File::options()
                .create(true)
                .truncate(false)
                .write(true)
                .open(&lock_path)
                .map_err(|e| format!("{}: {e}", lock_path.display()))?;
            match file.try_lock() {
                Ok(()) => {
                    *held = Some(Held::File(file));
                    Ok(true)
                }
                Err(TryLockError::WouldBlock) => Ok(false),
                Err(TryLockError::Error(e)) => Err(format!("{}: {e}", lock_path.display())),
            }
        }
    }
}

fn try_advisory_lock(conn: &mut PgConnection, key: i32) -> QueryResult<bool> {
    #[derive(QueryableByName)]
    struct Taken {
        #[diesel(sql_type = Bool)]
        taken: bool,
    }
    let row: Taken = diesel::sql_query("SELECT pg_try_advisory_lock($1, $2) AS taken")
        .bind::<Integer, _>(LOCK_CLASS)
        .bind::<Integer, _>(key)
        .get_result(conn)?;
    Ok(row.taken)
}

/// `nrm.sqlite3` → `nrm.sqlite3.sealer.lock`, beside it.
fn lock_file(database: &std::path::Path, task: SingletonTask) -> PathBuf {
    let mut name = database.as_os_str().to_owned();
    name.push(format!(".{}.lock", task.name()));
    PathBuf::from(name)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn sqlite(path: &std::path::Path, task: SingletonTask) -> Leadership {
        Leadership {
            task,
            location: DatabaseLocation::SqliteFile(path.to_path_buf()),
            held: None,
            leading: Arc::default(),
        }
    }

    #[test]
    fn one_of_two_claims_on_a_sqlite_file_leads_until_it_lets_go() {
        let dir = std::env::temp_dir().join(format!("nrm-leader-{}", uuid::Uuid::now_v7()));
        std::fs::create_dir_all(&dir).unwrap();
        let database = dir.join("nrm.sqlite3");
        let mut first = sqlite(&database, SingletonTask::Sealer);
        let mut second = sqlite(&database, SingletonTask::Sealer);
        assert!(first.lead_blocking());
        assert!(!second.lead_blocking(), "the lock is held by the first claim");
        assert!(first.lead_blocking(), "the leader keeps leading");
        // Another task has a lock of its own.
        assert!(sqlite(&database, SingletonTask::Retention).lead_blocking());
        drop(first);
        assert!(second.lead_blocking(), "the lock is free once its holder is gone");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
