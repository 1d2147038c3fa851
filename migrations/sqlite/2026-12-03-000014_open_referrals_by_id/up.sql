-- The deadline watcher reads every open referral that may owe a step, in pages by id
-- (db::stats::unescalated_candidates): this index holds only the open ones, in id order, so
-- a pass costs the open referrals, not the whole history, and no page re-reads earlier ones.
-- The query repeats this WHERE clause word for word, as SQLite needs to use a partial index.
CREATE INDEX referrals_open_by_id ON referrals (id)
    WHERE state IN ('submitted', 'acknowledged', 'accepted');
