ALTER TABLE case_identifying_details DROP COLUMN name_index_scheme;
