-- PIN delivery: shipments, the delivery outbox and its attempt journal (SQLite).
-- Nothing here is secret: destinations are masked, a message is only kept as its HMAC.

-- A key handed to a courier; at most one shipment per order.
CREATE TABLE shipments (
    order_no     TEXT PRIMARY KEY REFERENCES orders (order_no),
    tracking_no  TEXT NOT NULL,
    carrier      TEXT,
    shipped_at   TEXT NOT NULL,
    shipped_by   TEXT NOT NULL
);

-- The outbox: one row per PIN delivery, queued in the same transaction as the order's state change.
CREATE TABLE deliveries (
    id                  TEXT PRIMARY KEY,          -- UUID; also the SMS OutId / spool file name
    order_no            TEXT NOT NULL REFERENCES orders (order_no),
    station_id          TEXT NOT NULL,             -- the station whose vault sealed the PIN
    channel             TEXT NOT NULL,             -- sms | bank
    state               TEXT NOT NULL,             -- queued | sending | sent | confirmed | failed | needs_operator | cancelled
    destination_masked  TEXT NOT NULL,             -- 138****8000 | ****1234
    attempts            BIGINT NOT NULL DEFAULT 0, -- sends since queued (or since the last operator retry)
    next_attempt_at     TEXT NOT NULL,
    provider_id         TEXT,                      -- BizId, gateway id, spool file name, bank file
    end_to_end_id       TEXT,                      -- bank: EndToEndId of the transfer
    bank_message_id     TEXT,                      -- bank: MsgId (= PmtInfId) of the pain.001
    bank_file           TEXT,                      -- bank: file name in the outbound directory, recorded BEFORE writing it
    last_error          TEXT,
    message_hmac        TEXT,                      -- vault HMAC of the message: the receipt
    sending_at          TEXT,                      -- when the current / last send began
    sent_at             TEXT,
    confirmed_at        TEXT,
    cancel_reason       TEXT,
    superseded_by       TEXT,
    created_at          TEXT NOT NULL,
    updated_at          TEXT NOT NULL
);
-- At most one delivery per order that is not cancelled: a PIN is never queued twice.
CREATE UNIQUE INDEX deliveries_one_live_per_order ON deliveries (order_no) WHERE state <> 'cancelled';
CREATE UNIQUE INDEX deliveries_by_end_to_end_id ON deliveries (end_to_end_id) WHERE end_to_end_id IS NOT NULL;
CREATE INDEX deliveries_due ON deliveries (state, next_attempt_at);

-- One row per contact with a channel (send, file, provider query, restart check), written
-- before the contact (finished_at NULL) and completed after it.
CREATE TABLE delivery_attempts (
    delivery_id  TEXT NOT NULL REFERENCES deliveries (id),
    seq          BIGINT NOT NULL,
    kind         TEXT NOT NULL,                    -- send | file | query | recover | import
    started_at   TEXT NOT NULL,
    finished_at  TEXT,
    outcome      TEXT,                             -- accepted | retryable | permanent | unknown | found | not_found | written | ...
    provider_id  TEXT,
    error        TEXT,
    PRIMARY KEY (delivery_id, seq)
);
