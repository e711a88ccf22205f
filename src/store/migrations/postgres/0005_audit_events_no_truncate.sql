-- audit_events is append-only: the row triggers of 0001 refuse UPDATE and DELETE, but row
-- triggers do not fire on TRUNCATE, which emptied the trail in one statement. A statement-level
-- trigger refuses it too. (SQLite has no TRUNCATE; its DELETE triggers already cover the case.)
--
-- Numbered 0003, not 0002: 0002 is taken by the provisioning tables being written on main.

CREATE TRIGGER audit_events_no_truncate BEFORE TRUNCATE ON audit_events
FOR EACH STATEMENT EXECUTE FUNCTION audit_events_append_only();
