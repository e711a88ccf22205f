-- Notices to the applicant (issue 16; SQLite): review outcome, shipped, PIN sent, certificate expiring,
-- certificate revoked; one row per notice and medium, queued in the transaction of the state
-- change that causes it, sent by the delivery worker.
--
-- Nothing here is secret: `notice` holds the notice's parameters (order number, reason,
-- carrier and tracking number, PIN channel with its masked destination, dates, serials); the
-- text is rendered from the station's templates when sent. Destinations are masked; the real
-- address is read from the order at send time, like a PIN delivery's.
CREATE TABLE notifications (
    id                  TEXT PRIMARY KEY,          -- UUID; the e-mail Message-ID, the SMS id
    order_no            TEXT NOT NULL REFERENCES orders (order_no),
    kind                TEXT NOT NULL,             -- approved | rejected | shipped | pin_sent | expiring | revoked
    event_ref           TEXT NOT NULL,             -- review | shipment | delivery id | 30d:serial | serial
    medium              TEXT NOT NULL,             -- sms | email
    notice              TEXT NOT NULL,             -- JSON parameters (no secret)
    state               TEXT NOT NULL,             -- queued | sending | sent | failed
    destination_masked  TEXT NOT NULL,             -- 139****9000 | l***@example.com
    attempts            BIGINT NOT NULL DEFAULT 0,
    next_attempt_at     TEXT NOT NULL,
    provider_id         TEXT,
    last_error          TEXT,
    sending_at          TEXT,
    sent_at             TEXT,
    created_at          TEXT NOT NULL,
    updated_at          TEXT NOT NULL
);
-- At most one notice per event and medium.
CREATE UNIQUE INDEX notifications_once ON notifications (order_no, kind, event_ref, medium);
CREATE INDEX notifications_due ON notifications (state, next_attempt_at);

-- One row per contact with the server, written before it (finished_at NULL) and completed after.
CREATE TABLE notification_attempts (
    notification_id  TEXT NOT NULL REFERENCES notifications (id),
    seq              BIGINT NOT NULL,
    started_at       TEXT NOT NULL,
    finished_at      TEXT,
    outcome          TEXT,                         -- accepted | retryable | permanent | unknown | interrupted
    provider_id      TEXT,
    error            TEXT,
    PRIMARY KEY (notification_id, seq)
);
