-- Cases, consent and referrals (issue: the referral handover state machine).
-- Personal identifying details live in their own table, apart from case facts.

CREATE TABLE cases (
    id                      UUID PRIMARY KEY,
    organisation            TEXT NOT NULL REFERENCES organisations (slug),
    created_by              TEXT NOT NULL,
    created_at              TIMESTAMPTZ NOT NULL,
    updated_at              TIMESTAMPTZ NOT NULL,
    version                 BIGINT NOT NULL,
    reporter_role           TEXT NOT NULL,
    contact_channel         TEXT NOT NULL,
    contact_date            DATE NOT NULL,
    -- Forms of exploitation as flags: statistics group by them without parsing.
    exploitation_sexual     BOOLEAN NOT NULL,
    exploitation_criminal   BOOLEAN NOT NULL,
    exploitation_labour     BOOLEAN NOT NULL,
    exploitation_other      BOOLEAN NOT NULL,
    age_at_contact          INTEGER,
    age_uncertain           BOOLEAN NOT NULL,
    presumed_minor          BOOLEAN NOT NULL,
    gender                  TEXT,
    nationality             TEXT,
    region                  TEXT,
    language                TEXT,
    pseudonym               TEXT,
    police_report_intention TEXT,
    identification_status   TEXT NOT NULL,
    reasonable_grounds_on   DATE,
    reflection_period_end   DATE
);
-- The caller organisation's case list, newest first (UUIDv7 ids are time-ordered).
CREATE INDEX cases_by_organisation ON cases (organisation, id);
-- The statistics report and the EU export select cases by period.
CREATE INDEX cases_by_contact_date ON cases (contact_date);
CREATE INDEX cases_by_reasonable_grounds ON cases (reasonable_grounds_on);

-- Every value here is sealed (XChaCha20-Poly1305, see src/crypto.rs): no column holds a name,
-- date of birth or contact detail in the clear. name_index is a keyed hash for search.
CREATE TABLE case_identifying_details (
    case_id        UUID PRIMARY KEY REFERENCES cases (id) ON DELETE CASCADE,
    name           TEXT,
    date_of_birth  TEXT,
    phone          TEXT,
    email          TEXT,
    address        TEXT,
    name_index     TEXT,
    updated_at     TIMESTAMPTZ NOT NULL
);
-- Search by name through the blind index.
CREATE INDEX identifying_by_name_index ON case_identifying_details (name_index);

CREATE TABLE identification_decisions (
    id            UUID PRIMARY KEY,
    case_id       UUID NOT NULL REFERENCES cases (id) ON DELETE CASCADE,
    decision      TEXT NOT NULL,
    basis         TEXT NOT NULL,
    actor_sub     TEXT NOT NULL,
    actor_org     TEXT NOT NULL,
    decided_at    TIMESTAMPTZ NOT NULL
);
CREATE INDEX identification_decisions_by_case ON identification_decisions (case_id, decided_at);

CREATE TABLE consents (
    id                    UUID PRIMARY KEY,
    case_id               UUID NOT NULL REFERENCES cases (id) ON DELETE CASCADE,
    scope                 TEXT NOT NULL,
    organisation          TEXT NOT NULL REFERENCES organisations (slug),
    given_by              TEXT NOT NULL,
    method                TEXT NOT NULL,
    information_language  TEXT NOT NULL,
    recorded_by           TEXT NOT NULL,
    recorded_at           TIMESTAMPTZ NOT NULL,
    withdrawn_at          TIMESTAMPTZ,
    withdrawn_by          TEXT
);
CREATE INDEX consents_by_case ON consents (case_id);

CREATE TABLE legal_bases (
    id             UUID PRIMARY KEY,
    case_id        UUID NOT NULL REFERENCES cases (id) ON DELETE CASCADE,
    basis          TEXT NOT NULL,
    justification  TEXT NOT NULL,
    recorded_by    TEXT NOT NULL,
    recorded_org   TEXT NOT NULL,
    recorded_at    TIMESTAMPTZ NOT NULL
);
CREATE INDEX legal_bases_by_case ON legal_bases (case_id);

CREATE TABLE referrals (
    id                 UUID PRIMARY KEY,
    case_id            UUID NOT NULL REFERENCES cases (id) ON DELETE CASCADE,
    from_organisation  TEXT NOT NULL REFERENCES organisations (slug),
    to_organisation    TEXT NOT NULL REFERENCES organisations (slug),
    services           TEXT NOT NULL,   -- JSON array of service codes
    urgency            TEXT NOT NULL,
    note               TEXT,
    state              TEXT NOT NULL,
    version            BIGINT NOT NULL,
    -- The consent the submission relied on; NULL for drafts and statutory-basis submissions.
    consent_id         UUID REFERENCES consents (id),
    created_by         TEXT NOT NULL,
    created_at         TIMESTAMPTZ NOT NULL,
    updated_at         TIMESTAMPTZ NOT NULL,
    submitted_at       TIMESTAMPTZ,
    acknowledged_at    TIMESTAMPTZ,
    decided_at         TIMESTAMPTZ,     -- accepted or declined
    care_started_at    TIMESTAMPTZ,
    closed_at          TIMESTAMPTZ,     -- completed, declined or withdrawn
    decline_reason     TEXT,
    outcome            TEXT
);
-- Incoming and outgoing lists, newest first, with or without a state filter.
CREATE INDEX referrals_incoming ON referrals (to_organisation, id);
CREATE INDEX referrals_incoming_by_state ON referrals (to_organisation, state, id);
CREATE INDEX referrals_outgoing ON referrals (from_organisation, id);
CREATE INDEX referrals_outgoing_by_state ON referrals (from_organisation, state, id);
CREATE INDEX referrals_by_case ON referrals (case_id);
-- Case-flow monitoring selects referrals by creation time; the overdue list by state.
CREATE INDEX referrals_by_created_at ON referrals (created_at);
CREATE INDEX referrals_open_by_state ON referrals (state, submitted_at);
-- At most one live handover of a case to an organisation, even under concurrent submits.
CREATE UNIQUE INDEX referrals_one_live_per_receiver ON referrals (case_id, to_organisation)
    WHERE state IN ('submitted', 'acknowledged', 'accepted', 'in_care');

CREATE TABLE referral_history (
    id            UUID PRIMARY KEY,
    referral_id   UUID NOT NULL REFERENCES referrals (id) ON DELETE CASCADE,
    seq           INTEGER NOT NULL,
    action        TEXT NOT NULL,
    from_state    TEXT NOT NULL,
    to_state      TEXT NOT NULL,
    actor_sub     TEXT NOT NULL,
    actor_org     TEXT NOT NULL,
    at            TIMESTAMPTZ NOT NULL,
    reason_code   TEXT,
    reason        TEXT,
    outcome_code  TEXT,
    outcome       TEXT,
    UNIQUE (referral_id, seq)
);

CREATE TABLE three_way_conversations (
    id                   UUID PRIMARY KEY,
    case_id              UUID NOT NULL REFERENCES cases (id) ON DELETE CASCADE,
    organisation         TEXT NOT NULL REFERENCES organisations (slug),
    police_organisation  TEXT NOT NULL REFERENCES organisations (slug),
    police_officer       TEXT,
    state                TEXT NOT NULL,
    version              BIGINT NOT NULL,
    scheduled_for        TIMESTAMPTZ,
    held_at              TIMESTAMPTZ,
    care_evaluation      TEXT,
    police_evaluation    TEXT,
    reporting_intention  TEXT,
    created_by           TEXT NOT NULL,
    created_at           TIMESTAMPTZ NOT NULL,
    updated_at           TIMESTAMPTZ NOT NULL
);
CREATE INDEX three_way_by_case ON three_way_conversations (case_id);
CREATE INDEX three_way_by_officer ON three_way_conversations (police_organisation, police_officer);

-- Anonymous notifications to the focal point: a snapshot of statistical facts only.
CREATE TABLE anonymous_notifications (
    id                      UUID PRIMARY KEY,
    case_id                 UUID NOT NULL UNIQUE REFERENCES cases (id) ON DELETE CASCADE,
    from_organisation       TEXT NOT NULL REFERENCES organisations (slug),
    focal_point             TEXT NOT NULL REFERENCES organisations (slug),
    minor                   BOOLEAN NOT NULL,
    age_at_contact          INTEGER,
    gender                  TEXT,
    nationality_group       TEXT NOT NULL,
    exploitation_sexual     BOOLEAN NOT NULL,
    exploitation_criminal   BOOLEAN NOT NULL,
    exploitation_labour     BOOLEAN NOT NULL,
    exploitation_other      BOOLEAN NOT NULL,
    region                  TEXT,
    contact_date            DATE NOT NULL,
    created_by              TEXT NOT NULL,
    created_at              TIMESTAMPTZ NOT NULL
);

-- Idempotency keys of creating POSTs: the key, a hash of the request, and what it created.
-- No request or response bodies are kept (they may hold personal data).
CREATE TABLE idempotency_keys (
    organisation   TEXT NOT NULL,
    actor_sub      TEXT NOT NULL,
    key            TEXT NOT NULL,
    route          TEXT NOT NULL,
    request_hash   TEXT NOT NULL,
    resource_id    UUID NOT NULL,
    created_at     TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (organisation, actor_sub, key)
);
