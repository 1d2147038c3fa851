//! The command line: `nrm serve | migrate | token | openapi`.

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
