-- Web sessions, kept server-side so every instance knows them. The cookie holds a random
-- secret; this table only its SHA-256, so a copy of the table opens no session.
CREATE TABLE web_sessions (
    id_hash        TEXT PRIMARY KEY,
    csrf_token     TEXT NOT NULL,
    actor_sub      TEXT NOT NULL,
    organisation   TEXT NOT NULL REFERENCES organisations (slug),
    roles          TEXT NOT NULL,
    display_name   TEXT NOT NULL,
    id_token_hint  TEXT,
    created_at     TIMESTAMPTZ NOT NULL,
    last_seen_at   TIMESTAMPTZ NOT NULL
);
CREATE INDEX web_sessions_by_last_seen ON web_sessions (last_seen_at);

-- The duplicate check before a new case: a keyed hash of the pseudonym's caseless form,
-- per organisation (crypto::Keyring::pseudonym_index). Cleared with the pseudonym.
ALTER TABLE cases ADD COLUMN pseudonym_index TEXT;
CREATE INDEX cases_by_pseudonym_index ON cases (organisation, pseudonym_index);
