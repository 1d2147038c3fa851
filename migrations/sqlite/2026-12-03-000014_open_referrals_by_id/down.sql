DROP INDEX referrals_open_by_id;
