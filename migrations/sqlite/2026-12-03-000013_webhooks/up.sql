-- Webhook subscriptions of partner organisations (Standard Webhooks). The signing secrets
-- are sealed like personal data (crypto.rs): a database dump does not let anyone forge a
-- delivery. During a rotation the previous secret signs too, until previous_secret_until.
CREATE TABLE webhook_subscriptions (
    id                     TEXT PRIMARY KEY,
    organisation           TEXT NOT NULL REFERENCES organisations (slug),
    url                    TEXT NOT NULL,
    -- Space-separated event types, e.g. "referral.received referral.withdrawn".
    event_types            TEXT NOT NULL,
    -- Where the organisation hears that the endpoint was disabled; empty: its intake address.
    contact_email          TEXT NOT NULL,
    secret                 TEXT NOT NULL,
    previous_secret        TEXT,
    previous_secret_until  TEXT,
    -- active | paused | disabled
    status                 TEXT NOT NULL,
    -- Why it was disabled: gone (the endpoint answered 410) | failing
    disabled_reason        TEXT,
    -- The first failed attempt since the last success.
    failing_since          TEXT,
    created_by             TEXT NOT NULL,
    created_at             TEXT NOT NULL,
    updated_at             TEXT NOT NULL
);
CREATE INDEX webhook_subscriptions_by_organisation ON webhook_subscriptions (organisation, status);

-- The outbox of webhooks: one row per event and subscription, written in the transaction of
-- the change. Its id is the webhook-id of every attempt. The body is thin (ids and links).
CREATE TABLE webhook_deliveries (
    id                  TEXT PRIMARY KEY,
    subscription_id     TEXT NOT NULL REFERENCES webhook_subscriptions (id) ON DELETE CASCADE,
    event_type          TEXT NOT NULL,
    body                TEXT NOT NULL,
    -- pending | delivered | failed
    status              TEXT NOT NULL,
    attempts            INTEGER NOT NULL,
    next_attempt_at     TEXT NOT NULL,
    lease_until         TEXT,
    leased_by           TEXT,
    -- The last attempt: the HTTP status (none when no answer came), how long it took, and
    -- what went wrong in a few words. Response bodies are never stored.
    last_status         INTEGER,
    last_latency_ms     INTEGER,
    last_error          TEXT,
    created_at          TEXT NOT NULL,
    delivered_at        TEXT
);
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (status, next_attempt_at);
CREATE INDEX webhook_deliveries_by_subscription ON webhook_deliveries (subscription_id, created_at);
