DROP TABLE disclosures;
DROP INDEX cases_closed;
ALTER TABLE cases DROP COLUMN erasure_reason;
ALTER TABLE cases DROP COLUMN free_text_erased_at;
ALTER TABLE cases DROP COLUMN identifying_erased_at;
ALTER TABLE cases DROP COLUMN closed_reason;
ALTER TABLE cases DROP COLUMN closed_at;
