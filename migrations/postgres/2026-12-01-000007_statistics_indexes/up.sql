-- Indexes that keep statistics and oversight fast at a million cases (docs/performance.md).
-- Both replace a plain index on the same key, so writes maintain no more indexes than before.

-- The statistics report (`db::stats::case_counts`): one index-only scan of the period's
-- cases by first-contact date that carries every column the report counts.
DROP INDEX cases_by_contact_date;
CREATE INDEX cases_by_contact_date ON cases (contact_date)
    INCLUDE (organisation, reporter_role, age_at_contact, gender, nationality,
             exploitation_sexual, exploitation_criminal, exploitation_labour, exploitation_other);

-- The report's referral counts (`db::stats::referral_counts`) join referrals to the
-- period's cases and group by receiver, state and outcome: carried here, so the join reads
-- no referral rows. Still serves every lookup of a case's referrals.
DROP INDEX referrals_by_case;
CREATE INDEX referrals_by_case ON referrals (case_id)
    INCLUDE (to_organisation, state, outcome, submitted_at);
