-- Indexes that keep statistics fast on large data sets (docs/performance.md). SQLite has no
-- INCLUDE; trailing key columns make the same covering index. Each replaces a plain index on
-- the same leading key.

-- The statistics report (`db::stats::case_counts`): the period's cases by first-contact
-- date, carrying every column the report counts.
DROP INDEX cases_by_contact_date;
CREATE INDEX cases_by_contact_date ON cases (contact_date, organisation, reporter_role, age_at_contact,
    gender, nationality, exploitation_sexual, exploitation_criminal, exploitation_labour, exploitation_other);

-- The report's referral counts (`db::stats::referral_counts`): the join from a case to its
-- referrals, carrying what they are grouped by. Still serves every lookup of a case's referrals.
DROP INDEX referrals_by_case;
CREATE INDEX referrals_by_case ON referrals (case_id, to_organisation, state, outcome, submitted_at);
