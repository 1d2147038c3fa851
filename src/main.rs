//! Thin entry point: parse the command line, load configuration, run the command.

use std::process::ExitCode;

use clap::Parser;
use nrm::auth::{self, Role};
use nrm::cli::{AuditCommand, Cli, Command, DemoCommand, KeysCommand, RetentionCommand, RoutingCommand};
use nrm::config::{Settings, parse_duration};
use nrm::startup::{self, Application};
use nrm::telemetry;

/// Prints a command's output. A reader that went away (`nrm openapi | head`) ends the
/// command quietly, as it does for other command-line tools, instead of a panic.
macro_rules! say {
    ($($arg:tt)*) => {
        write_out(&format!("{}\n", format_args!($($arg)*)))
    };
}

fn write_out(text: &str) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    if let Err(error) = out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        if error.kind() == std::io::ErrorKind::BrokenPipe {
            std::process::exit(0);
        }
        eprintln!("nrm: cannot write the output: {error}");
        std::process::exit(1);
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("nrm: {message}");
            ExitCode::FAILURE
        }
    }
}

fn settings_with(cli: &Cli, overrides: &[(&str, &Option<String>)]) -> Result<Settings, String> {
    let mut settings = Settings::load(&cli.config).map_err(|e| e.to_string())?;
    for (key, value) in overrides {
        if let Some(value) = value {
            settings = settings.with_override(key, value).map_err(|e| e.to_string())?;
        }
    }
    Ok(settings)
}

fn run(cli: Cli) -> Result<(), String> {
    // rustls needs one process-wide crypto provider (JWKS over https, SMTP over TLS).
    let _ = rustls::crypto::ring::default_provider().install_default();
    match &cli.command {
        Command::Serve { bind, database_url } => {
            let settings = settings_with(&cli, &[("server.bind", bind), ("database.url", database_url)])?;
            telemetry::init(&settings.log);
            actix_web::rt::System::new().block_on(async move {
                let app = Application::build(settings).await.map_err(|e| e.to_string())?;
                app.run_until_stopped().await.map_err(|e| e.to_string())
            })
        }
        Command::Migrate { database_url } => {
            let settings = settings_with(&cli, &[("database.url", database_url)])?;
            telemetry::init(&settings.log);
            let registry = startup::load_registry(settings.registry.organisations_path()).map_err(|e| e.to_string())?;
            let mut conn = startup::connect_once(&settings).map_err(|e| e.to_string())?;
            startup::prepare(&mut conn, &registry).map_err(|e| e.to_string())?;
            let backend = match conn {
                nrm::db::AnyConnection::Postgresql(_) => "postgresql",
                nrm::db::AnyConnection::Sqlite(_) => "sqlite",
            };
            say!("migrations applied; database ready ({backend})");
            Ok(())
        }
        Command::Token { sub, org, roles, ttl } => {
            let settings = settings_with(&cli, &[])?;
            let ttl = parse_duration(ttl.as_deref().unwrap_or(&settings.jwt.default_token_ttl))?;
            let roles = roles
                .iter()
                .map(|r| {
                    Role::parse(r)
                        .ok_or_else(|| format!("unknown role `{r}` (use caseworker, intake, coordinator or admin)"))
                })
                .collect::<Result<Vec<_>, _>>()?;
            let registry = startup::load_registry(settings.registry.organisations_path()).map_err(|e| e.to_string())?;
            if registry.get(org).is_none() {
                return Err(format!("organisation `{org}` is not in the registry"));
            }
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_err(|e| e.to_string())?
                .as_secs();
            let token = auth::mint_token(&settings, sub, org, &roles, ttl, now).map_err(|e| e.to_string())?;
            say!("{token}");
            Ok(())
        }
        Command::Openapi => {
            write_out(&nrm::api::openapi_json_text());
            Ok(())
        }
        Command::Retention {
            command: RetentionCommand::Run { dry_run, database_url },
        } => {
            let settings = settings_with(&cli, &[("database.url", database_url)])?;
            telemetry::init(&settings.log);
            let policy = nrm::retention::policy(&settings)?;
            let mut conn = startup::connect_once(&settings).map_err(|e| e.to_string())?;
            let now = nrm::db::Instant::from_utc(chrono::Utc::now());
            let report = nrm::retention::run_once(&mut conn, &policy, now, *dry_run).map_err(|e| e.to_string())?;
            say!("{}", serde_json::to_string(&report).map_err(|e| e.to_string())?);
            Ok(())
        }
        Command::Keys {
            command: KeysCommand::Rotate { database_url },
        } => {
            let settings = settings_with(&cli, &[("database.url", database_url)])?;
            telemetry::init(&settings.log);
            let keyring = nrm::crypto::Keyring::from_settings(&settings).map_err(|e| e.to_string())?;
            let mut conn = startup::connect_once(&settings).map_err(|e| e.to_string())?;
            let mut counts = serde_json::Map::new();
            for column in nrm::db::privacy::SealedColumn::ALL {
                let mut total = 0;
                loop {
                    let done =
                        nrm::db::privacy::rotate_batch(&mut conn, &keyring, column, 500).map_err(|e| e.to_string())?;
                    total += done;
                    if done == 0 {
                        break;
                    }
                }
                counts.insert(column.field().to_string(), total.into());
            }
            // SQLite keeps old page versions in the WAL until a checkpoint: fold them in, so the
            // file holds only values under the current key (secure_delete zeroes freed space).
            if matches!(conn, nrm::db::AnyConnection::Sqlite(_)) {
                use diesel::connection::SimpleConnection;
                conn.batch_execute("PRAGMA wal_checkpoint(TRUNCATE)")
                    .map_err(|e| e.to_string())?;
            }
            let reindexed = nrm::db::privacy::reindex_names(&mut conn, &keyring).map_err(|e| e.to_string())?;
            say!(
                "{}",
                serde_json::json!({
                    "current_key": keyring.current_key_id(),
                    "reencrypted": counts,
                    "names_reindexed": reindexed,
                })
            );
            Ok(())
        }
        Command::Routing {
            command: RoutingCommand::Check,
        } => {
            let settings = settings_with(&cli, &[])?;
            let registry = startup::load_registry(settings.registry.organisations_path()).map_err(|e| e.to_string())?;
            let rules = startup::load_routing(&settings.registry.routing_file, &registry).map_err(|e| e.to_string())?;
            say!(
                "routing rules OK: {} rules over {} organisations ({} and {})",
                rules.rules.len(),
                registry.organisations.len(),
                settings.registry.organisations_file.display(),
                settings.registry.routing_file.display()
            );
            Ok(())
        }
        Command::Audit {
            command: AuditCommand::Verify { database_url },
        } => {
            let settings = settings_with(&cli, &[("database.url", database_url)])?;
            telemetry::init(&settings.log);
            let mut conn = startup::connect_once(&settings).map_err(|e| e.to_string())?;
            let now = nrm::db::Instant::from_utc(chrono::Utc::now());
            let verdict = nrm::db::audit::verify(&mut conn, now).map_err(|e| e.to_string())?;
            say!("{}", serde_json::to_string(&verdict).map_err(|e| e.to_string())?);
            if !verdict.valid {
                Err("the audit chain is broken".into())
            } else if verdict.sealing_overdue() {
                // Sealed now, but a running service should have sealed them long ago.
                Err(format!(
                    "{} audit entries had waited longer than {} s for their seal: is the sealer running?",
                    verdict.overdue_unsealed,
                    nrm::db::audit::SEAL_OVERDUE_AFTER.as_secs()
                ))
            } else {
                Ok(())
            }
        }
        Command::Bench {
            url,
            database_url,
            concurrency,
            duration,
            scenario,
            no_pgbench,
            repeat,
            pages,
            organisation,
        } => {
            let settings = settings_with(&cli, &[])?;
            telemetry::init(&settings.log);
            // Without a database, a new SQLite file that goes when the benchmark is done.
            let scratch = std::env::temp_dir().join(format!("nrm-bench-{}.sqlite", std::process::id()));
            let database_url = match (database_url, url) {
                (Some(url), _) => url.clone(),
                (None, Some(_)) => settings.database.url.clone(),
                (None, None) => scratch.display().to_string(),
            };
            let plan = nrm::bench::BenchPlan {
                url: url.clone(),
                database_url,
                concurrency: (*concurrency).max(1),
                duration: parse_duration(duration)?,
                scenario: *scenario,
                pgbench: !no_pgbench,
                repeat: (*repeat).max(1),
                pages: *pages,
                organisation: organisation.clone(),
                config_files: cli.config.clone(),
                executable: std::env::current_exe().map_err(|e| e.to_string())?,
            };
            let outcome = nrm::bench::run(plan, settings);
            for suffix in ["", "-wal", "-shm"] {
                let _ = std::fs::remove_file(format!("{}{suffix}", scratch.display()));
            }
            outcome
        }
        Command::Demo {
            command:
                DemoCommand::Seed {
                    cases,
                    days,
                    seed,
                    chunk,
                    append,
                    database_url,
                },
        } => {
            let settings = settings_with(&cli, &[("database.url", database_url)])?;
            telemetry::init(&settings.log);
            let registry = startup::load_registry(settings.registry.organisations_path()).map_err(|e| e.to_string())?;
            let keyring = nrm::crypto::Keyring::from_settings(&settings).map_err(|e| e.to_string())?;
            let mut conn = startup::connect_once(&settings).map_err(|e| e.to_string())?;
            startup::prepare(&mut conn, &registry).map_err(|e| e.to_string())?;
            let plan = nrm::demo::SeedPlan {
                cases: *cases,
                days: *days,
                until: chrono::Utc::now(),
                chunk: (*chunk).max(1),
                seed: *seed,
                append: *append,
            };
            let mut last_report = std::time::Instant::now();
            let report = nrm::demo::seed(&mut conn, &registry, &keyring, &plan, |done| {
                if last_report.elapsed() >= std::time::Duration::from_secs(10) {
                    eprintln!("nrm demo seed: {done} of {cases} cases");
                    last_report = std::time::Instant::now();
                }
            })
            .map_err(|e| e.to_string())?;
            say!("{}", serde_json::to_string(&report).map_err(|e| e.to_string())?);
            Ok(())
        }
    }
}
