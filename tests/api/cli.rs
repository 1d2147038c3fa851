//! The `nrm` binary: token, openapi, migrate, and start-up refusals.

use std::process::Command;

use crate::api_test;
use crate::helpers::{TEST_HS256_SECRET, TestApp, expect_problem, manifest_dir};

fn nrm() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_nrm"));
    command.current_dir(manifest_dir());
    // Only what a test sets reaches the binary.
    for (key, _) in std::env::vars() {
        if key.starts_with("NRM__") || key == "DATABASE_URL" {
            command.env_remove(key);
        }
    }
    command.env("RUST_LOG", "warn").env("RUST_BACKTRACE", "0");
    command
}

async fn minted_tokens_open_the_api(app: TestApp) {
    // The environment override sets the same secret the test app verifies with.
    let output = nrm()
        .env("NRM__JWT__HS256_SECRET", TEST_HS256_SECRET)
        .args([
            "token",
            "--sub",
            "alice",
            "--org",
            "fier",
            "--role",
            "caseworker",
            "--role",
            "intake",
            "--ttl",
            "15m",
        ])
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let token = String::from_utf8(output.stdout).unwrap().trim().to_string();
    let response = app.get("/api/v1/organisations", &token).await;
    assert_eq!(response.status(), 200);

    // Signed with the development secret instead: refused by an app with a real secret.
    let output = nrm()
        .args(["token", "--sub", "alice", "--org", "fier", "--role", "caseworker"])
        .output()
        .unwrap();
    assert!(output.status.success());
    let dev_token = String::from_utf8(output.stdout).unwrap().trim().to_string();
    expect_problem(app.get("/api/v1/organisations", &dev_token).await, 401).await;
}
api_test!(minted_tokens_open_the_api);

#[test]
fn token_refuses_unknown_role_org_and_ttl() {
    let out = nrm()
        .args(["token", "--sub", "a", "--org", "fier", "--role", "wizard"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown role `wizard`"));
    let out = nrm()
        .args(["token", "--sub", "a", "--org", "atlantis", "--role", "intake"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("`atlantis` is not in the registry"));
    let out = nrm()
        .args([
            "token", "--sub", "a", "--org", "fier", "--role", "intake", "--ttl", "soon",
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
}

#[test]
fn openapi_command_prints_the_committed_document() {
    let out = nrm().arg("openapi").output().unwrap();
    assert!(out.status.success());
    let committed = std::fs::read_to_string(manifest_dir().join("openapi/nrm.json")).unwrap();
    assert_eq!(String::from_utf8(out.stdout).unwrap(), committed);
}

#[test]
fn production_refuses_to_start_without_key_material() {
    let dir = std::env::temp_dir().join(format!("nrm-prod-{}", uuid::Uuid::now_v7().simple()));
    let out = nrm()
        .env("NRM__ENVIRONMENT", "production")
        .env("NRM__DATABASE__URL", dir.join("x.sqlite"))
        .args(["serve", "--bind", "127.0.0.1:0"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("jwt.hs256_secret"), "{stderr}");
    assert!(stderr.contains("NRM__JWT__HS256_SECRET"), "{stderr}");
    // It refused before touching the database.
    assert!(!dir.exists());

    let out = nrm()
        .env("NRM__ENVIRONMENT", "production")
        .env("NRM__JWT__HS256_SECRET", "short")
        .args(["serve", "--bind", "127.0.0.1:0"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("at least 32 bytes"));

    let out = nrm()
        .env("NRM__ENVIRONMENT", "production")
        .env("NRM__JWT__ALGORITHMS", "[\"RS256\"]")
        .args(["serve", "--bind", "127.0.0.1:0"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("jwt.jwks_url"));
}

#[test]
fn migrate_creates_the_sqlite_file_and_folder() {
    let dir = std::env::temp_dir().join(format!("nrm-migrate-{}", uuid::Uuid::now_v7().simple()));
    let file = dir.join("nested/nrm.sqlite");
    let out = nrm()
        .args(["migrate", "--database-url"])
        .arg(format!("sqlite://{}", file.display()))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(file.exists());
    // Idempotent.
    let out = nrm().env("DATABASE_URL", &file).arg("migrate").output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn bad_registry_or_config_stops_with_file_and_line() {
    let dir = std::env::temp_dir().join(format!("nrm-reg-{}", uuid::Uuid::now_v7().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    let shipped = std::fs::read_to_string(manifest_dir().join("config/organisations.toml")).unwrap();
    let broken = shipped.replacen("services = [\"online_chat\", ", "services = [\"teleportation\", ", 1);
    let registry = dir.join("organisations.toml");
    std::fs::write(&registry, broken).unwrap();
    let out = nrm()
        .env("NRM__REGISTRY__ORGANISATIONS_FILE", &registry)
        .env("NRM__DATABASE__URL", dir.join("x.sqlite"))
        .arg("migrate")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains(&registry.display().to_string()), "{stderr}");
    assert!(stderr.contains("line "), "{stderr}");
    assert!(stderr.contains("teleportation"), "{stderr}");

    // An unknown key in a --config file is refused, naming it.
    let config = dir.join("extra.toml");
    std::fs::write(&config, "[server]\nbnid = \"x\"\n").unwrap();
    let out = nrm().args(["--config"]).arg(&config).arg("openapi").output().unwrap();
    assert!(out.status.success(), "openapi needs no config");
    let out = nrm()
        .args(["--config"])
        .arg(&config)
        .args(["token", "--sub", "a", "--org", "fier", "--role", "intake"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("bnid"));
    let _ = std::fs::remove_dir_all(&dir);
}
