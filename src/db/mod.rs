//! The database: one connection type over PostgreSQL and SQLite, a pool, embedded migrations,
//! and `Db::run`, which moves blocking diesel work off the async executor.
//!
//! This module knows rows and SQL, never HTTP. The backend is chosen once from the URL
//! scheme, and connections are made explicitly for it, so a refused PostgreSQL connection is
//! reported as such rather than as "invalid connection url".

pub mod audit;
pub mod cases;
pub mod leader;
pub mod organisations;
pub mod outbox;
pub mod privacy;
pub mod referrals;
pub mod rollups;
pub mod schema;
pub mod sessions;
pub mod staff;
pub mod stats;
pub mod types;
pub mod webhooks;

use std::path::PathBuf;
use std::time::Duration;

use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use diesel::r2d2::{self, ManageConnection, Pool, PooledConnection};
use diesel::{PgConnection, SqliteConnection};
use diesel_migrations::{EmbeddedMigrations, MigrationHarness, embed_migrations};

pub use types::{Id, Instant};

/// Rows per multi-row INSERT, under PostgreSQL's 65,535 and SQLite's 32,766 bind parameters
/// for the widest table written this way.
pub const ROWS_PER_INSERT: usize = 1000;

/// Inserts a slice of rows with multi-row INSERTs of `ROWS_PER_INSERT`, on the concrete
/// connection: the multi backend cannot express them.
macro_rules! insert_all {
    ($conn:expr, $table:expr, $rows:expr) => {
        match $conn {
            $crate::db::AnyConnection::Postgresql(pg) => {
                for part in $rows.chunks($crate::db::ROWS_PER_INSERT) {
                    diesel::insert_into($table).values(part).execute(pg)?;
                }
            }
            $crate::db::AnyConnection::Sqlite(sqlite) => {
                for part in $rows.chunks($crate::db::ROWS_PER_INSERT) {
                    diesel::insert_into($table).values(part).execute(sqlite)?;
                }
            }
        }
    };
}
pub(crate) use insert_all;

/// Loads `$query` for claiming: on PostgreSQL with `FOR UPDATE SKIP LOCKED`, so instances
/// claiming at once never take the same rows; on SQLite plainly, inside the caller's
/// immediate transaction (one writer at a time). The outboxes' claim step.
macro_rules! load_for_claim {
    ($conn:expr, $query:expr) => {
        match $conn {
            $crate::db::AnyConnection::Postgresql(pg) => $query.for_update().skip_locked().load(pg)?,
            $crate::db::AnyConnection::Sqlite(lite) => $query.load(lite)?,
        }
    };
}
pub(crate) use load_for_claim;

/// `UPDATE table SET values WHERE filter`, as a statement the database may keep prepared
/// like every other statement of a request. Diesel prepares no UPDATE of its own, because a
/// changeset of optional columns can have a text per combination of them; parsing and
/// planning each one again cost PostgreSQL about as much as running it
/// (`docs/performance.md`, "Part 2, fourth run"). The cache is keyed by the statement's
/// text, so a different text costs another entry, never a wrong statement. Use it where the
/// text is one per call site: a changeset of fixed columns or of a whole row with
/// `treat_none_as_null`, and a filter without a list (`eq_any` gives a text per length on
/// SQLite).
///
/// INSERTs diesel prepares itself when their text is fixed: every `Insertable` row here says
/// `treat_none_as_default_value = false`, so an empty optional column is bound as NULL rather
/// than written as `DEFAULT` (a text per combination). No column with a default is optional
/// in these rows, so nothing else changes.
pub fn update_where<T, V, W>(table: T, values: V, filter: W) -> PreparedUpdate<T::FromClause, V::Changeset, W>
where
    T: diesel::Table,
    V: AsChangeset<Target = T>,
{
    PreparedUpdate {
        from: table.from_clause(),
        values: values.as_changeset(),
        filter,
    }
}

/// See `update_where`.
pub struct PreparedUpdate<F, V, W> {
    from: F,
    values: V,
    filter: W,
}

impl<F, V, W, DB> diesel::query_builder::QueryFragment<DB> for PreparedUpdate<F, V, W>
where
    DB: diesel::backend::Backend,
    F: diesel::query_builder::QueryFragment<DB>,
    V: diesel::query_builder::QueryFragment<DB>,
    W: diesel::query_builder::QueryFragment<DB>,
{
    fn walk_ast<'b>(&'b self, mut out: diesel::query_builder::AstPass<'_, 'b, DB>) -> QueryResult<()> {
        out.push_sql("UPDATE ");
        self.from.walk_ast(out.reborrow())?;
        out.push_sql(" SET ");
        self.values.walk_ast(out.reborrow())?;
        out.push_sql(" WHERE ");
        self.filter.walk_ast(out.reborrow())
    }
}

impl<F, V, W> diesel::query_builder::QueryId for PreparedUpdate<F, V, W> {
    // No type id: the cache key is the SQL text and its bind types.
    type QueryId = ();
    const HAS_STATIC_QUERY_ID: bool = false;
}

impl<F, V, W, Conn> RunQueryDsl<Conn> for PreparedUpdate<F, V, W> {}

#[derive(diesel::MultiConnection)]
pub enum AnyConnection {
    Postgresql(PgConnection),
    Sqlite(SqliteConnection),
}

pub const POSTGRES_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/postgres");
pub const SQLITE_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/sqlite");

/// Where the data lives, parsed from `database.url`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DatabaseLocation {
    Postgres(String),
    SqliteFile(PathBuf),
}

impl DatabaseLocation {
    /// `postgres://` / `postgresql://` select PostgreSQL; anything else is a SQLite path, with
    /// an optional `sqlite://` prefix stripped.
    pub fn parse(url: &str) -> Result<Self, DbError> {
        let url = url.trim();
        if url.is_empty() {
            return Err(DbError::Config("database.url is empty".into()));
        }
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            return Ok(Self::Postgres(url.to_string()));
        }
        let path = url.strip_prefix("sqlite://").unwrap_or(url);
        if path == ":memory:" || path.is_empty() {
            // An in-memory database is one per connection and would split under a pool.
            return Err(DbError::Config(
                "database.url must name a SQLite file (in-memory databases are one per connection)".into(),
            ));
        }
        Ok(Self::SqliteFile(PathBuf::from(path)))
    }

    pub fn backend_name(&self) -> &'static str {
        match self {
            Self::Postgres(_) => "postgresql",
            Self::SqliteFile(_) => "sqlite",
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error("database configuration: {0}")]
    Config(String),
    #[error("cannot connect to the database: {0}")]
    Connect(String),
    #[error("no database connection became free in time: {0}")]
    Pool(#[from] r2d2::PoolError),
    #[error(transparent)]
    Query(#[from] diesel::result::Error),
    #[error("migration failed: {0}")]
    Migration(String),
    #[error("database task was cancelled")]
    Cancelled,
    /// The work failed and its connection no longer answers: the database went away under
    /// it (a failover, a restart), whatever the message said.
    #[error("database connection lost: {0}")]
    ConnectionLost(String),
    #[error(transparent)]
    Row(#[from] RowError),
}

/// A stored value that does not convert to its domain type: a broken database or a bug.
/// Names the column, never the value (it may be personal data).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{table}.{column} holds a value nrm cannot read")]
pub struct RowError {
    pub table: &'static str,
    pub column: &'static str,
}

/// Parses a stored code (an enum's text) of `table.column`.
pub(crate) fn code<T: std::str::FromStr>(table: &'static str, column: &'static str, text: &str) -> Result<T, RowError> {
    text.parse().map_err(|_| RowError { table, column })
}

/// As `code`, for a nullable column.
pub(crate) fn code_opt<T: std::str::FromStr>(
    table: &'static str,
    column: &'static str,
    text: Option<&str>,
) -> Result<Option<T>, RowError> {
    text.map(|t| code(table, column, t)).transpose()
}

/// Makes connections for the pool, and sets SQLite's pragmas on each.
#[derive(Debug, Clone)]
pub struct ConnectionMaker {
    location: DatabaseLocation,
    sqlite_busy_timeout_ms: u32,
}

impl ConnectionMaker {
    pub fn new(location: DatabaseLocation, sqlite_busy_timeout_ms: u32) -> Self {
        Self {
            location,
            sqlite_busy_timeout_ms,
        }
    }

    pub fn connect(&self) -> Result<AnyConnection, DbError> {
        match &self.location {
            DatabaseLocation::Postgres(url) => {
                let mut conn = PgConnection::establish(url).map_err(|e| DbError::Connect(e.to_string()))?;
                // Sessions talk UTC; timestamps are stored as timestamptz.
                conn.batch_execute("SET TIME ZONE 'UTC'")?;
                Ok(AnyConnection::Postgresql(conn))
            }
            DatabaseLocation::SqliteFile(path) => {
                let text = path
                    .to_str()
                    .ok_or_else(|| DbError::Config("SQLite path is not valid UTF-8".into()))?;
                let mut conn = SqliteConnection::establish(text)
                    .map_err(|e| DbError::Connect(format!("{}: {e}", path.display())))?;
                conn.batch_execute(&format!(
                    "PRAGMA busy_timeout = {}; PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; \
                     PRAGMA foreign_keys = ON; PRAGMA secure_delete = ON;",
                    self.sqlite_busy_timeout_ms
                ))?;
                Ok(AnyConnection::Sqlite(conn))
            }
        }
    }
}

/// How long after its last use a pooled connection is handed out again without a `SELECT 1`
/// (HikariCP's "alive bypass window", also 500 ms): a connection in steady use is known to
/// be alive, and the check would be one more round trip on every request.
pub const ALIVE_BYPASS: Duration = Duration::from_millis(500);

/// A connection in the pool, with what the pool knows about its health.
pub struct PoolConnection {
    conn: AnyConnection,
    returned_at: std::time::Instant,
    /// Its work is not seen by the pool (`Db::get`): checked at the next checkout however
    /// recently it was used.
    suspect: bool,
    /// Found dead after failed work: the pool drops it.
    broken: bool,
}

impl PoolConnection {
    /// Marks the connection for a check at its next checkout.
    fn suspect(&mut self) {
        self.suspect = true;
    }
}

impl std::ops::Deref for PoolConnection {
    type Target = AnyConnection;
    fn deref(&self) -> &AnyConnection {
        &self.conn
    }
}

impl std::ops::DerefMut for PoolConnection {
    fn deref_mut(&mut self) -> &mut AnyConnection {
        &mut self.conn
    }
}

impl ManageConnection for ConnectionMaker {
    type Connection = PoolConnection;
    type Error = DbError;

    fn connect(&self) -> Result<PoolConnection, DbError> {
        Ok(PoolConnection {
            conn: ConnectionMaker::connect(self)?,
            returned_at: std::time::Instant::now(),
            suspect: false,
            broken: false,
        })
    }

    /// `SELECT 1` for a connection that was idle longer than [`ALIVE_BYPASS`] or is suspect:
    /// after a database failover or restart, dead connections are replaced instead of
    /// failing requests.
    fn is_valid(&self, conn: &mut PoolConnection) -> Result<(), DbError> {
        if !conn.suspect && conn.returned_at.elapsed() < ALIVE_BYPASS {
            return Ok(());
        }
        conn.conn.batch_execute("SELECT 1").map_err(DbError::from)?;
        conn.suspect = false;
        Ok(())
    }

    fn has_broken(&self, conn: &mut PoolConnection) -> bool {
        conn.returned_at = std::time::Instant::now();
        conn.broken
    }
}

pub type DbPool = Pool<ConnectionMaker>;
pub type DbConnection = PooledConnection<ConnectionMaker>;

/// The pool plus what is needed to run blocking work from async handlers.
#[derive(Clone)]
pub struct Db {
    pool: DbPool,
    location: DatabaseLocation,
    /// The singleton tasks this instance leads (`leader`).
    leading: std::sync::Arc<leader::Leading>,
}

impl Db {
    /// Opens the pool. Creates the SQLite file's folder first, so a fresh checkout just runs.
    pub fn open(url: &str, pool_size: u32, timeout: Duration, sqlite_busy_timeout_ms: u32) -> Result<Self, DbError> {
        let location = DatabaseLocation::parse(url)?;
        if let DatabaseLocation::SqliteFile(path) = &location
            && let Some(parent) = path.parent()
            && !parent.as_os_str().is_empty()
        {
            std::fs::create_dir_all(parent)
                .map_err(|e| DbError::Connect(format!("cannot create {}: {e}", parent.display())))?;
        }
        let maker = ConnectionMaker::new(location.clone(), sqlite_busy_timeout_ms);
        // Connect once up front so configuration mistakes surface with the real cause.
        drop(maker.connect()?);
        let pool = Pool::builder()
            .max_size(pool_size)
            .min_idle(Some(1.min(pool_size)))
            .connection_timeout(timeout)
            // See `ConnectionMaker::is_valid`: checked when idle or suspect.
            .test_on_check_out(true)
            .build(maker)
            .map_err(DbError::Pool)?;
        Ok(Self {
            pool,
            location,
            leading: Default::default(),
        })
    }

    pub fn location(&self) -> &DatabaseLocation {
        &self.location
    }

    /// The singleton tasks this instance leads now.
    pub fn leading(&self) -> std::sync::Arc<leader::Leading> {
        self.leading.clone()
    }

    pub fn is_postgres(&self) -> bool {
        matches!(self.location, DatabaseLocation::Postgres(_))
    }

    /// A pooled connection, for blocking contexts (CLI commands, background workers). How its
    /// work ends is not seen here, so it is checked at its next checkout.
    pub fn get(&self) -> Result<DbConnection, DbError> {
        let mut conn = self.pool.get()?;
        conn.suspect();
        Ok(conn)
    }

    /// Runs blocking database work on the blocking thread pool.
    pub async fn run<T, E, F>(&self, work: F) -> Result<T, E>
    where
        F: FnOnce(&mut AnyConnection) -> Result<T, E> + Send + 'static,
        T: Send + 'static,
        E: From<DbError> + std::fmt::Display + Send + 'static,
    {
        let pool = self.pool.clone();
        actix_web::rt::task::spawn_blocking(move || {
            let mut conn = pool.get().map_err(DbError::from)?;
            // A connection the server dropped within the bypass window fails its work with
            // whatever the server last said ("terminating connection due to administrator
            // command"); one `SELECT 1` tells that apart from a refusal, and a lost
            // connection is dropped and answered as unavailable, not as a bug.
            match work(&mut conn) {
                Err(error) if conn.conn.batch_execute("SELECT 1").is_err() => {
                    conn.broken = true;
                    Err(E::from(DbError::ConnectionLost(error.to_string())))
                }
                done => done,
            }
        })
        .await
        .map_err(|_| E::from(DbError::Cancelled))?
    }

    /// Runs blocking work inside one write transaction (see [`write_transaction`]).
    pub async fn write<T, E, F>(&self, work: F) -> Result<T, E>
    where
        F: FnOnce(&mut AnyConnection) -> Result<T, E> + Send + 'static,
        T: Send + 'static,
        E: From<DbError> + From<diesel::result::Error> + std::fmt::Display + Send + 'static,
    {
        self.run(move |conn| write_transaction(conn, work)).await
    }

    /// Runs blocking reads inside one report transaction (see [`report_transaction`]).
    pub async fn report<T, E, F>(&self, work: F) -> Result<T, E>
    where
        F: FnOnce(&mut AnyConnection) -> Result<T, E> + Send + 'static,
        T: Send + 'static,
        E: From<DbError> + From<diesel::result::Error> + std::fmt::Display + Send + 'static,
    {
        self.run(move |conn| report_transaction(conn, work)).await
    }

    /// Applies pending migrations for this backend; returns the versions applied.
    pub fn migrate(&self) -> Result<Vec<String>, DbError> {
        let mut conn = self.get()?;
        run_migrations(&mut conn)
    }
}

/// One write transaction. On SQLite it starts with `BEGIN IMMEDIATE`: a deferred
/// transaction that reads first and writes later fails at once with "database is locked" when
/// another writer got in between, because busy_timeout cannot help a read lock that must
/// become a write lock. PostgreSQL uses its default (READ COMMITTED) transaction; races are
/// settled by versioned updates and unique indexes.
pub fn write_transaction<T, E, F>(conn: &mut AnyConnection, work: F) -> Result<T, E>
where
    F: FnOnce(&mut AnyConnection) -> Result<T, E>,
    E: From<diesel::result::Error>,
{
    use diesel::connection::{AnsiTransactionManager, TransactionManager};
    type Manager = <AnyConnection as Connection>::TransactionManager;
    match conn {
        AnyConnection::Sqlite(inner) => AnsiTransactionManager::begin_transaction_sql(inner, "BEGIN IMMEDIATE")?,
        AnyConnection::Postgresql(_) => Manager::begin_transaction(conn)?,
    }
    finish_transaction(conn, work)
}

/// A write transaction that reads one snapshot throughout: REPEATABLE READ on PostgreSQL,
/// for work that must not see rows commit between its statements (folding the roll-ups).
/// SQLite's write transaction has one writer and one snapshot anyway.
pub fn snapshot_write_transaction<T, E, F>(conn: &mut AnyConnection, work: F) -> Result<T, E>
where
    F: FnOnce(&mut AnyConnection) -> Result<T, E>,
    E: From<diesel::result::Error>,
{
    use diesel::connection::AnsiTransactionManager;
    match conn {
        AnyConnection::Sqlite(inner) => AnsiTransactionManager::begin_transaction_sql(inner, "BEGIN IMMEDIATE")?,
        AnyConnection::Postgresql(inner) => {
            AnsiTransactionManager::begin_transaction_sql(inner, "BEGIN ISOLATION LEVEL REPEATABLE READ")?
        }
    }
    finish_transaction(conn, work)
}

/// Runs `work` in the transaction just begun: commits on success, rolls back on error.
fn finish_transaction<T, E, F>(conn: &mut AnyConnection, work: F) -> Result<T, E>
where
    F: FnOnce(&mut AnyConnection) -> Result<T, E>,
    E: From<diesel::result::Error>,
{
    use diesel::connection::TransactionManager;
    type Manager = <AnyConnection as Connection>::TransactionManager;
    match work(conn) {
        Ok(value) => {
            Manager::commit_transaction(conn)?;
            Ok(value)
        }
        Err(error) => {
            let _ = Manager::rollback_transaction(conn);
            Err(error)
        }
    }
}

/// Memory PostgreSQL may use per sort or hash in a report, instead of its 4 MB default: the
/// statistics and oversight aggregates sort hundreds of thousands of values at scale, and
/// spilling them to disk triples their time (docs/performance.md).
const REPORT_WORK_MEM: &str = "64MB";

/// A read-only transaction for reports: on PostgreSQL one REPEATABLE READ snapshot, so every
/// figure of a report counts the same data, with `REPORT_WORK_MEM` for its sorts. SQLite
/// reads one snapshot per transaction anyway.
pub fn report_transaction<T, E, F>(conn: &mut AnyConnection, work: F) -> Result<T, E>
where
    F: FnOnce(&mut AnyConnection) -> Result<T, E>,
    E: From<diesel::result::Error>,
{
    use diesel::connection::{AnsiTransactionManager, TransactionManager};
    type Manager = <AnyConnection as Connection>::TransactionManager;
    match conn {
        AnyConnection::Sqlite(inner) => AnsiTransactionManager::begin_transaction_sql(inner, "BEGIN")?,
        AnyConnection::Postgresql(inner) => {
            AnsiTransactionManager::begin_transaction_sql(inner, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")?;
            if let Err(e) = diesel::sql_query(format!("SET LOCAL work_mem = '{REPORT_WORK_MEM}'")).execute(inner) {
                let _ = Manager::rollback_transaction(conn);
                return Err(e.into());
            }
        }
    }
    finish_transaction(conn, work)
}

pub fn migrations_for(conn: &AnyConnection) -> EmbeddedMigrations {
    match conn {
        AnyConnection::Postgresql(_) => POSTGRES_MIGRATIONS,
        AnyConnection::Sqlite(_) => SQLITE_MIGRATIONS,
    }
}

pub fn run_migrations(conn: &mut AnyConnection) -> Result<Vec<String>, DbError> {
    let migrations = migrations_for(conn);
    let applied = match conn {
        AnyConnection::Postgresql(pg) => pg.run_pending_migrations(migrations),
        AnyConnection::Sqlite(lite) => lite.run_pending_migrations(migrations),
    }
    .map_err(|e| DbError::Migration(e.to_string()))?;
    Ok(applied.iter().map(ToString::to_string).collect())
}

/// Whether every embedded migration has been applied (the readiness check).
pub fn migrations_complete(conn: &mut AnyConnection) -> Result<bool, DbError> {
    let migrations = migrations_for(conn);
    let pending = match conn {
        AnyConnection::Postgresql(pg) => pg.has_pending_migration(migrations),
        AnyConnection::Sqlite(lite) => lite.has_pending_migration(migrations),
    }
    .map_err(|e| DbError::Migration(e.to_string()))?;
    Ok(!pending)
}

/// Reverts every migration: used by the test that proves each `down.sql` works.
pub fn revert_all_migrations(conn: &mut AnyConnection) -> Result<usize, DbError> {
    let migrations = migrations_for(conn);
    let reverted = match conn {
        AnyConnection::Postgresql(pg) => pg.revert_all_migrations(migrations),
        AnyConnection::Sqlite(lite) => lite.revert_all_migrations(migrations),
    }
    .map_err(|e| DbError::Migration(e.to_string()))?;
    Ok(reverted.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_selects_backend() {
        assert_eq!(
            DatabaseLocation::parse("postgres://u@h/db").unwrap(),
            DatabaseLocation::Postgres("postgres://u@h/db".into())
        );
        assert_eq!(
            DatabaseLocation::parse("postgresql://u@h/db").unwrap(),
            DatabaseLocation::Postgres("postgresql://u@h/db".into())
        );
        assert_eq!(
            DatabaseLocation::parse("sqlite://data/x.sqlite").unwrap(),
            DatabaseLocation::SqliteFile("data/x.sqlite".into())
        );
        assert_eq!(
            DatabaseLocation::parse("./data/nrm.sqlite").unwrap(),
            DatabaseLocation::SqliteFile("./data/nrm.sqlite".into())
        );
        assert!(DatabaseLocation::parse("").is_err());
        assert!(DatabaseLocation::parse(":memory:").is_err());
    }
}
