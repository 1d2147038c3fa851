-- Which normalisation a name's blind index was computed with: 1 = lower case and single
-- spaces, 2 = Unicode compatibility caseless form (`domain::text::name_key`). Rows below
-- the current scheme are re-indexed by the service at start-up (`db::privacy::reindex_names`).
ALTER TABLE case_identifying_details ADD COLUMN name_index_scheme INTEGER NOT NULL DEFAULT 1;
