-- Job leases: the one live process allowed to work on a job (provisioning an order) right now.
-- A row exists while a job runs; the holder renews expires_at every third of the lease and
-- deletes the row when the job ends. lease_id is fresh per job: a job's writes commit only while
-- the row still carries its id (fencing). See src/domain/lease.rs.
--
-- Numbered 0006 on both backends (PostgreSQL already has a 0005) so that the lease table has
-- one migration number everywhere.
CREATE TABLE leases (
    kind           TEXT NOT NULL,       -- provision
    subject        TEXT NOT NULL,       -- the order number
    lease_id       TEXT NOT NULL,       -- one per job: the fencing token
    station_id     TEXT NOT NULL,
    instance_id    TEXT NOT NULL,       -- random per process start
    host           TEXT NOT NULL,       -- host name and boot id of the holder's machine
    pid            BIGINT NOT NULL,
    process_start  TEXT NOT NULL,       -- the holder's start time: tells a reused pid apart
    acquired_at    TEXT NOT NULL,
    renewed_at     TEXT NOT NULL,
    expires_at     TEXT NOT NULL,
    PRIMARY KEY (kind, subject)
);
CREATE INDEX leases_by_station ON leases (station_id, expires_at);
