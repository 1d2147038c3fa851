//! The command line: `nrm serve | migrate | token | openapi | ... | demo seed | bench`.

use std::path::PathBuf;

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "nrm",
    version,
    about = "National referral mechanism for victims of human trafficking"
)]
pub struct Cli {
    /// Extra configuration file(s), applied over config/default.toml in order.
    #[arg(long = "config", global = true, value_name = "FILE")]
    pub config: Vec<PathBuf>,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the HTTP service (applies migrations first).
    Serve {
        /// Address to listen on, e.g. 0.0.0.0:8080 (overrides server.bind).
        #[arg(long)]
        bind: Option<String>,
        /// Database URL or SQLite path (overrides database.url).
        #[arg(long)]
        database_url: Option<String>,
    },
    /// Apply pending database migrations and mirror the organisation registry, then exit.
    Migrate {
        #[arg(long)]
        database_url: Option<String>,
    },
    /// Print a JWT signed with the configured HS256 key (development and tests).
    Token {
        /// The user's id (`sub`).
        #[arg(long)]
        sub: String,
        /// The organisation slug (`org`), as in the registry.
        #[arg(long)]
        org: String,
        /// A role: caseworker, intake, coordinator or admin. Repeat for several.
        #[arg(long = "role", required = true)]
        roles: Vec<String>,
        /// Lifetime such as 15m, 1h, 7d (default: jwt.default_token_ttl).
        #[arg(long)]
        ttl: Option<String>,
    },
    /// Print the OpenAPI document.
    Openapi,
    /// Retention of personal data of closed cases.
    Retention {
        #[command(subcommand)]
        command: RetentionCommand,
    },
    /// Encryption keys.
    Keys {
        #[command(subcommand)]
        command: KeysCommand,
    },
    /// The routing rules.
    Routing {
        #[command(subcommand)]
        command: RoutingCommand,
    },
    /// The audit trail.
    Audit {
        #[command(subcommand)]
        command: AuditCommand,
    },
    /// Load benchmark: the handover hot path, a read mix and transitions (beside pgbench
    /// running the same SQL), or statistics and oversight on a seeded database.
    Bench {
        /// Target a running service instead of starting one (its JWT secret must be the
        /// configured `jwt.hs256_secret`; memory is then not measured).
        #[arg(long)]
        url: Option<String>,
        /// Database of the started service and of pgbench. Default: a new SQLite file in the
        /// temporary folder. The benchmark writes to it: use a throwaway database.
        #[arg(long)]
        database_url: Option<String>,
        #[arg(long, default_value_t = 16)]
        concurrency: usize,
        /// Length of each measured phase, e.g. `20s`, `1m`.
        #[arg(long, default_value = "20s")]
        duration: String,
        #[arg(long, value_enum, default_value = "handover")]
        scenario: crate::bench::Scenario,
        /// Skip the pgbench comparison.
        #[arg(long)]
        no_pgbench: bool,
        /// Oversight scenario: timed calls per route.
        #[arg(long, default_value_t = 10)]
        repeat: usize,
        /// Oversight scenario: pages of 20 walked in the incoming list.
        #[arg(long, default_value_t = 50)]
        pages: usize,
        /// Oversight scenario: the organisation whose incoming referrals are listed.
        #[arg(long, default_value = "csg")]
        organisation: String,
    },
    /// Synthetic demonstration data.
    Demo {
        #[command(subcommand)]
        command: DemoCommand,
    },
}

#[derive(Debug, Subcommand)]
pub enum DemoCommand {
    /// Add N synthetic cases with consents, referrals in every state, history and audit
    /// entries (migrates first). Never run it against a database with real cases.
    Seed {
        /// How many cases to add.
        #[arg(long)]
        cases: u64,
        /// Spread them over this many days, ending now.
        #[arg(long, default_value_t = 730)]
        days: u32,
        /// Seed of the generator: the same seed gives the same data.
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Cases per transaction.
        #[arg(long, default_value_t = 5000)]
        chunk: usize,
        /// Add to a database that already holds (demo) cases.
        #[arg(long)]
        append: bool,
        #[arg(long)]
        database_url: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
pub enum RetentionCommand {
    /// Erase what is due now, as the service's retention task does; prints what it did.
    Run {
        /// Only report what is due.
        #[arg(long)]
        dry_run: bool,
        #[arg(long)]
        database_url: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Re-encrypt every sealed value under crypto.current_key. Resumable, and safe while the
    /// service runs; prints how many values each column had re-encrypted.
    Rotate {
        #[arg(long)]
        database_url: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
pub enum RoutingCommand {
    /// Check the registry and routing rules as start-up does; exits non-zero on a problem.
    Check,
}

#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Verify the hash chain; prints {"valid", "entries", "first_invalid_seq"} and exits
    /// non-zero when the chain is broken.
    Verify {
        #[arg(long)]
        database_url: Option<String>,
    },
}
