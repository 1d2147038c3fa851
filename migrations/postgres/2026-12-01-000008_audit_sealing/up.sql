-- Audit entries wait here, written in the transaction of the change they record, until the
-- sealer (`db::audit::seal`) moves them into `audit_log` in batches, giving each its chain
-- position and hash. Requests then never wait on the chain head: only the sealer takes it,
-- once per batch instead of once per write (docs/architecture.md, "The audit trail").
-- Same fields as audit_log minus the chain; no personal data.
CREATE TABLE audit_pending (
    id             BIGSERIAL PRIMARY KEY,
    at             TIMESTAMPTZ NOT NULL,
    actor_sub      TEXT NOT NULL,
    actor_org      TEXT NOT NULL,
    actor_roles    TEXT NOT NULL,
    action         TEXT NOT NULL,
    resource_type  TEXT NOT NULL,
    resource_id    TEXT NOT NULL,
    case_id        UUID,
    outcome        TEXT NOT NULL
);

-- Only the sealer deletes (the rows it has just sealed); nothing updates.
CREATE FUNCTION audit_pending_no_update() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'audit_pending rows are sealed, not changed';
END;
$$ LANGUAGE plpgsql;
CREATE TRIGGER audit_pending_no_update BEFORE UPDATE ON audit_pending
    FOR EACH ROW EXECUTE FUNCTION audit_pending_no_update();
