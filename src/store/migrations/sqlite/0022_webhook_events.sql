-- The order API's webhook outbox (issue 17, item 3; SQLite): one row per order state change,
-- queued by the store's one transition function in the transaction of the change, keyed by the
-- order and its version after the change (so a change is queued once), sent by the webhook
-- sender (`keystation serve`, `api-token webhook-send`).
--
-- Nothing here is secret: the order number, the two states and the time of the change are all
-- a webhook event says (what the API's progress endpoint shows, and less). The HMAC key lives in
-- `[api.webhook] secret_file` only.
CREATE TABLE webhook_events (
    id               TEXT PRIMARY KEY,          -- UUID; the X-Keystation-Event header
    order_no         TEXT NOT NULL REFERENCES orders (order_no),
    seq              BIGINT NOT NULL,           -- orders.version after the change
    from_state       TEXT NOT NULL,
    to_state         TEXT NOT NULL,
    changed_at       TEXT NOT NULL,
    state            TEXT NOT NULL,             -- queued | sending | sent | failed
    attempts         BIGINT NOT NULL DEFAULT 0,
    next_attempt_at  TEXT NOT NULL,
    last_outcome     TEXT,                      -- delivered | retryable | refused | unknown | interrupted
    last_error       TEXT,
    sending_at       TEXT,
    sent_at          TEXT,
    created_at       TEXT NOT NULL,
    updated_at       TEXT NOT NULL
);
-- At most one event per change.
CREATE UNIQUE INDEX webhook_events_once ON webhook_events (order_no, seq);
CREATE INDEX webhook_events_due ON webhook_events (state, next_attempt_at);
