-- The transactional outbox: notifications written in the same transaction as the change
-- that causes them, delivered by a worker. Rendered at enqueue time; they never hold
-- personal data (see domain::notification).
CREATE TABLE notifications (
    id               UUID PRIMARY KEY,
    kind             TEXT NOT NULL,
    recipient        TEXT NOT NULL,
    recipient_org    TEXT NOT NULL,
    referral_id      UUID,
    subject          TEXT NOT NULL,
    body             TEXT NOT NULL,
    status           TEXT NOT NULL,
    attempts         INTEGER NOT NULL,
    next_attempt_at  TIMESTAMPTZ NOT NULL,
    lease_until      TIMESTAMPTZ,
    leased_by        TEXT,
    last_error       TEXT,
    created_at       TIMESTAMPTZ NOT NULL,
    sent_at          TIMESTAMPTZ
);
-- The delivery worker claims due pending messages in order.
CREATE INDEX notifications_due ON notifications (status, next_attempt_at);
-- Admins list by status; organisations see their own.
CREATE INDEX notifications_by_recipient_org ON notifications (recipient_org, status);

-- Each overdue step of a referral is escalated to the focal point exactly once.
CREATE TABLE escalations (
    referral_id   UUID NOT NULL REFERENCES referrals (id) ON DELETE CASCADE,
    step          TEXT NOT NULL,
    due_at        TIMESTAMPTZ NOT NULL,
    escalated_at  TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (referral_id, step)
);
