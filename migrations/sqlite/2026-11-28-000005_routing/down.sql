DROP TABLE organisation_capacity;
ALTER TABLE referrals DROP COLUMN eligibility_override;
ALTER TABLE cases DROP COLUMN unaccompanied;
ALTER TABLE cases DROP COLUMN needs;
ALTER TABLE cases DROP COLUMN last_incident_date;
