//! Every migration's down.sql works: revert everything, then migrate again.

use crate::api_test;
use crate::helpers::TestApp;

async fn every_migration_reverts_and_reapplies(app: TestApp) {
    let db = nrm::startup::open_database(&app.settings).unwrap();
    let mut conn = db.get().unwrap();
    assert!(nrm::db::migrations_complete(&mut conn).unwrap());
    let reverted = nrm::db::revert_all_migrations(&mut conn).unwrap();
    assert!(reverted >= 1);
    assert!(!nrm::db::migrations_complete(&mut conn).unwrap());
    // Readiness notices pending migrations.
    let ready = app.client.get(app.url("/health/ready")).send().await.unwrap();
    assert_eq!(ready.status(), 503);
    let applied = nrm::db::run_migrations(&mut conn).unwrap();
    assert_eq!(applied.len(), reverted);
    assert!(nrm::db::migrations_complete(&mut conn).unwrap());
}
api_test!(every_migration_reverts_and_reapplies);
