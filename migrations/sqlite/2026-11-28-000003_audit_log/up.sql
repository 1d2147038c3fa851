-- The tamper-evident audit trail: one row per change or read of identifying details,
-- hash-chained (each row holds the previous row's hash and its own). No personal data.
CREATE TABLE audit_log (
    seq            BIGINT PRIMARY KEY,
    at             TEXT NOT NULL,
    actor_sub      TEXT NOT NULL,
    actor_org      TEXT NOT NULL,
    actor_roles    TEXT NOT NULL,
    action         TEXT NOT NULL,
    resource_type  TEXT NOT NULL,
    resource_id    TEXT NOT NULL,
    case_id        TEXT,
    outcome        TEXT NOT NULL,
    prev_hash      TEXT NOT NULL,
    hash           TEXT NOT NULL
);
-- Audit queries filter by case, organisation, actor or time.
CREATE INDEX audit_by_case ON audit_log (case_id, seq);
CREATE INDEX audit_by_org ON audit_log (actor_org, seq);
CREATE INDEX audit_by_at ON audit_log (at);

-- The chain head: one row, written by each appender (SQLite writers are serialised).
CREATE TABLE audit_head (
    id        INTEGER PRIMARY KEY CHECK (id = 1),
    last_seq  BIGINT NOT NULL,
    last_hash TEXT NOT NULL
);
INSERT INTO audit_head (id, last_seq, last_hash)
VALUES (1, 0, '0000000000000000000000000000000000000000000000000000000000000000');

-- Append-only, enforced by the database too.
CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
BEGIN
    SELECT RAISE(ABORT, 'audit_log is append-only');
END;
CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log
BEGIN
    SELECT RAISE(ABORT, 'audit_log is append-only');
END;
