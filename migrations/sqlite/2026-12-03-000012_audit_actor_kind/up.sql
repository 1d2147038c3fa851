-- Whether a person or a machine client (client credentials) acted. Entries from before
-- machine clients existed were all people's (or the service's, `system`).
ALTER TABLE audit_log ADD COLUMN actor_kind TEXT NOT NULL DEFAULT 'person';
ALTER TABLE audit_pending ADD COLUMN actor_kind TEXT NOT NULL DEFAULT 'person';
