-- Certificate revocation lists the installation issued (issue 15): every CRL, kept for the
-- record (what relying parties were told, and when), the newest one served and published.
--
-- `number` is the CRL number (RFC 5280 §5.2.3): allocated as MAX + 1 inside the transaction
-- that inserts the row, which holds the audit head (every writing transaction takes it first),
-- so two stations of one installation never allocate the same number and it only grows. The
-- primary key refuses a reused number should anything else ever insert here.
-- `entries`: how many revocations the CRL lists (every revocation recorded when it was made;
-- revocations are never removed, so a larger count in `revocations` means a newer one).
CREATE TABLE crls (
    number       INTEGER PRIMARY KEY,
    this_update  TEXT NOT NULL,             -- RFC 3339 UTC
    next_update  TEXT NOT NULL,             -- RFC 3339 UTC
    der          BLOB NOT NULL,
    station_id   TEXT NOT NULL,             -- the station that issued it
    entries      INTEGER NOT NULL
);
