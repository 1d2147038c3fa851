-- The transactional outbox: notifications written in the same transaction as the change
-- that causes them, delivered by a worker. Rendered at enqueue time; they never hold
-- personal data (see domain::notification).
CREATE TABLE notifications (
    id               TEXT PRIMARY KEY,
    kind             TEXT NOT NULL,
    recipient        TEXT NOT NULL,
    recipient_org    TEXT NOT NULL,
    referral_id      TEXT,
    subject          TEXT NOT NULL,
    body             TEXT NOT NULL,
    status           TEXT NOT NULL,
    attempts         INTEGER NOT NULL,
    next_attempt_at  TEXT NOT NULL,
    lease_until      TEXT,
    leased_by        TEXT,
    last_error       TEXT,
    created_at       TEXT NOT NULL,
    sent_at          TEXT
);
-- The delivery worker claims due pending messages in order.
CREATE INDEX notifications_due ON notifications (status, next_attempt_at);
-- Admins list by status; organisations see their own.
CREATE INDEX notifications_by_recipient_org ON notifications (recipient_org, status);

-- Each overdue step of a referral is escalated to the focal point exactly once.
CREATE TABLE escalations (
    referral_id   TEXT NOT NULL REFERENCES referrals (id) ON DELETE CASCADE,
    step          TEXT NOT NULL,
    due_at        TEXT NOT NULL,
    escalated_at  TEXT NOT NULL,
    PRIMARY KEY (referral_id, step)
);
