DROP INDEX referrals_by_case;
CREATE INDEX referrals_by_case ON referrals (case_id);
DROP INDEX cases_by_contact_date;
CREATE INDEX cases_by_contact_date ON cases (contact_date);
