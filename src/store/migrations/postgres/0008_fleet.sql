-- Several stations, one installation (issue 14).
--
-- `stations`: the stations that work this installation's queue. The first is registered when
-- the installation is created, every other when it joins (`keystation init` on a database that
-- holds an installation); an id is registered once. A station's heartbeat is the last time one
-- of its processes renewed a lease or made a delivery pass (host and pid of that process).
--
-- `audit_events.station_id`: the station whose process wrote the record, whoever acted (an
-- operator's command names the operator as actor and its station here). Records written before
-- this migration have none; their hash is computed as it always was (see src/audit.rs).
--
-- Numbered 0008: 0007 is taken by the CRL tables being written on another branch.
CREATE TABLE stations (
    station_id         TEXT PRIMARY KEY,
    registered_at      TEXT NOT NULL,
    registered_by      TEXT NOT NULL,      -- 'init' (made the installation), 'join', 'backfill'
    last_heartbeat_at  TEXT,
    last_host          TEXT,               -- host name of the process that beat last
    last_pid           BIGINT
);

-- Stations of an installation made before this migration: every station that wrote a record.
INSERT INTO stations (station_id, registered_at, registered_by)
SELECT substr(actor, 9), MIN(at), 'backfill' FROM audit_events
WHERE actor LIKE 'station:%' GROUP BY substr(actor, 9);

ALTER TABLE audit_events ADD COLUMN station_id TEXT;
