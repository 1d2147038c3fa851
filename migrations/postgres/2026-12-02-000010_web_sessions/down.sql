DROP INDEX cases_by_pseudonym_index;
ALTER TABLE cases DROP COLUMN pseudonym_index;
DROP TABLE web_sessions;
