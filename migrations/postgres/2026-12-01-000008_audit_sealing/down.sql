-- Entries still pending are lost with the table: seal them first (`nrm audit verify`).
DROP TABLE audit_pending;
DROP FUNCTION audit_pending_no_update();
