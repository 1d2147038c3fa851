ALTER TABLE audit_pending DROP COLUMN actor_kind;
ALTER TABLE audit_log DROP COLUMN actor_kind;
