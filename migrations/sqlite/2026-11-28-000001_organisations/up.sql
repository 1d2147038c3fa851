-- The organisation registry, mirrored from config/organisations.toml at every start.
-- Organisations are never deleted: referrals and audit entries keep pointing at them.
CREATE TABLE organisations (
    slug            TEXT PRIMARY KEY,
    name            TEXT NOT NULL,
    kind            TEXT NOT NULL,
    services        TEXT NOT NULL,   -- JSON array of service codes
    regions         TEXT NOT NULL,   -- JSON array of region codes, or ["national"]
    intake_email    TEXT NOT NULL,
    accepts_minors  BOOLEAN NOT NULL,
    available_24_7  BOOLEAN NOT NULL,
    focal_point     BOOLEAN NOT NULL,
    active          BOOLEAN NOT NULL DEFAULT 1,
    updated_at      TEXT NOT NULL
);
