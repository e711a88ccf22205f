-- The service desk's requests after delivery (PIN reset first), their execution journal, and
-- deliveries of a PIN that replaced a delivered one (sqlite).

-- One row per request; four-eyes: decided_by is never requested_by (the domain's rule).
CREATE TABLE service_requests (
    id             TEXT PRIMARY KEY,             -- UUID
    kind           TEXT NOT NULL,                -- pin_reset
    order_no       TEXT NOT NULL REFERENCES orders (order_no),
    state          TEXT NOT NULL,                -- requested | approved | rejected | cancelled | executing | done | failed
    requested_by   TEXT NOT NULL,
    reason         TEXT NOT NULL,
    evidence       TEXT NOT NULL,                -- what the desk checked (documents seen), free text
    requested_at   TEXT NOT NULL,
    decided_by     TEXT,                         -- who approved or rejected it
    decided_at     TEXT,
    decision_note  TEXT,
    token_serial   TEXT,                         -- the key it acts on, fixed when it starts
    pending_pin    BLOB,                         -- the new PIN, vault-sealed only, until it is queued
    pin_generation BIGINT,                       -- the order's PIN generation it made (1 = first reset)
    delivery_id    TEXT,                         -- the delivery it queued
    last_error     TEXT,
    updated_at     TEXT NOT NULL
);
-- At most one open request of a kind per order.
CREATE UNIQUE INDEX service_requests_one_open ON service_requests (order_no, kind)
    WHERE state IN ('requested', 'approved', 'executing', 'failed');
CREATE INDEX service_requests_by_state ON service_requests (state, requested_at);

-- The execution journal: each step recorded before (started) and after (done) it runs.
CREATE TABLE service_request_steps (
    request_id   TEXT NOT NULL REFERENCES service_requests (id),
    step         TEXT NOT NULL,
    status       TEXT NOT NULL,                  -- started | done
    started_at   TEXT NOT NULL,
    finished_at  TEXT,
    runs         BIGINT NOT NULL DEFAULT 1,      -- how many times it was started (resumed after a crash)
    PRIMARY KEY (request_id, step)
);

-- A PIN reset delivers a new PIN for an order whose first PIN was delivered: deliveries carry
-- the PIN generation they deliver (0 = the PIN set at provisioning), and an order has at most
-- one delivery per generation that is not cancelled.
ALTER TABLE deliveries ADD COLUMN pin_generation BIGINT NOT NULL DEFAULT 0;
DROP INDEX deliveries_one_live_per_order;
CREATE UNIQUE INDEX deliveries_one_live_per_pin ON deliveries (order_no, pin_generation)
    WHERE state <> 'cancelled';
