-- Keys that left service (issue 16 item 7): a key reported lost or broken, or returned and
-- retired (退锁, wiped with C_InitToken); a retired key is reusable as a blank key; and a reissue
-- (补办) order names the order whose key it replaces (postgres).

-- What became of an order's key: at most one record per order (lost | broken | retired).
CREATE TABLE key_dispositions (
    order_no     TEXT PRIMARY KEY REFERENCES orders (order_no),
    disposition  TEXT NOT NULL,                  -- lost | broken | retired
    token_serial TEXT,                           -- the key, when one was bound
    recorded_by  TEXT NOT NULL,                  -- the operator
    recorded_at  TEXT NOT NULL
);

-- A returned key wiped at the desk. Its SO PIN is unchanged by C_InitToken: so_identity is what
-- the vault derives it from (as token_bindings.so_identity; an identity, not a secret). A later
-- order provisioned onto the key adopts that identity (reused_by_binding, set once).
CREATE TABLE retired_tokens (
    request_id        TEXT PRIMARY KEY REFERENCES service_requests (id),
    token_serial      TEXT NOT NULL,
    so_identity       TEXT NOT NULL,
    order_no          TEXT NOT NULL REFERENCES orders (order_no),
    binding_id        TEXT NOT NULL,             -- the binding closed
    label             TEXT NOT NULL,             -- the label it was given
    retired_at        TEXT NOT NULL,
    reused_by_binding TEXT                       -- the binding of the order it was reused for
);
-- A key waits for reuse at most once at a time.
CREATE UNIQUE INDEX retired_tokens_one_available ON retired_tokens (token_serial)
    WHERE reused_by_binding IS NULL;

-- Reissue (补办): the order whose lost, broken or retired key this order replaces.
ALTER TABLE orders ADD COLUMN reissue_of TEXT REFERENCES orders (order_no);
CREATE INDEX orders_by_reissue_of ON orders (reissue_of) WHERE reissue_of IS NOT NULL;

-- Renewal onto the company's existing key at the desk: the renewal's binding continues on the
-- original's key (kept_from names the original's binding, released when the renewal was
-- claimed); the token is not re-initialised, the new key pair is made beside the old one.
ALTER TABLE token_bindings ADD COLUMN kept_from TEXT;
