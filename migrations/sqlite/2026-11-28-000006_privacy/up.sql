-- Privacy: case closure, retention and erasure marks, and the disclosure register.
ALTER TABLE cases ADD COLUMN closed_at TEXT;
ALTER TABLE cases ADD COLUMN closed_reason TEXT;
ALTER TABLE cases ADD COLUMN identifying_erased_at TEXT;
ALTER TABLE cases ADD COLUMN free_text_erased_at TEXT;
ALTER TABLE cases ADD COLUMN erasure_reason TEXT;
-- The retention task looks for closed cases whose personal data is due.
CREATE INDEX cases_closed ON cases (closed_at);

-- Every time identifying details were shown to a user of another organisation.
CREATE TABLE disclosures (
    id            TEXT PRIMARY KEY,
    case_id       TEXT NOT NULL REFERENCES cases (id) ON DELETE CASCADE,
    organisation  TEXT NOT NULL,
    actor_sub     TEXT NOT NULL,
    at            TEXT NOT NULL,
    basis_type    TEXT NOT NULL,   -- consent | statutory
    basis_ref     TEXT NOT NULL    -- the consent id, or the statutory basis
);
CREATE INDEX disclosures_by_case ON disclosures (case_id, at);
