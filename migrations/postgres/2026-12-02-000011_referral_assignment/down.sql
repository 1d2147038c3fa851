DROP TABLE staff_members;
DROP INDEX referrals_by_assignee;
ALTER TABLE referrals DROP COLUMN assigned_to;
