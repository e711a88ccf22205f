-- Orders, their documents, and the append-only audit trail (SQLite).
-- Timestamps are RFC 3339 UTC text of fixed width (sortable); booleans are 0/1 integers.

CREATE TABLE orders (
    order_no              TEXT PRIMARY KEY,
    state                 TEXT NOT NULL,
    auth_method           TEXT NOT NULL,
    company_name          TEXT NOT NULL,
    uscc                  TEXT NOT NULL,
    order_json            TEXT NOT NULL,          -- the normalised order, as validated
    warnings_json         TEXT NOT NULL,
    uscc_override_reason  TEXT,
    submitted_at          TEXT NOT NULL,
    reviewed_by           TEXT,
    reviewed_at           TEXT,
    review_reason         TEXT,
    updated_at            TEXT NOT NULL,
    version               BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX orders_by_state ON orders (state, submitted_at);

-- Content-addressed document and picture bytes (one copy per distinct content).
CREATE TABLE blobs (
    sha256   TEXT PRIMARY KEY,
    size     BIGINT NOT NULL,
    content  BLOB NOT NULL
);

CREATE TABLE attachments (
    order_no    TEXT NOT NULL REFERENCES orders (order_no),
    role        TEXT NOT NULL,                    -- document | seal
    kind        TEXT NOT NULL,
    file_name   TEXT NOT NULL,
    media_type  TEXT NOT NULL,
    sha256      TEXT NOT NULL REFERENCES blobs (sha256),
    PRIMARY KEY (order_no, role, kind)
);

-- The head of the hash chain. Every writing transaction updates this row first, which both
-- serialises writers (no SQLITE_BUSY_SNAPSHOT upgrades) and orders the audit chain.
CREATE TABLE audit_head (
    id         INTEGER PRIMARY KEY CHECK (id = 1),
    seq        BIGINT NOT NULL,
    hash       TEXT NOT NULL,
    touched_at TEXT
);
INSERT INTO audit_head (id, seq, hash) VALUES (1, 0, '0000000000000000000000000000000000000000000000000000000000000000');

CREATE TABLE audit_events (
    seq           BIGINT PRIMARY KEY,
    at            TEXT NOT NULL,
    actor         TEXT NOT NULL,
    operation_id  TEXT NOT NULL,
    action        TEXT NOT NULL,
    order_no      TEXT,
    token_serial  TEXT,
    cert_serial   TEXT,
    details       TEXT NOT NULL,                  -- JSON; never a secret
    prev_hash     TEXT NOT NULL,                  -- SHA-256 of the previous record's canonical bytes
    hash          TEXT NOT NULL                   -- SHA-256 of this record's canonical bytes
);
CREATE INDEX audit_by_order ON audit_events (order_no, seq);

CREATE TRIGGER audit_events_append_only_update BEFORE UPDATE ON audit_events
BEGIN SELECT RAISE(ABORT, 'audit_events is append-only'); END;
CREATE TRIGGER audit_events_append_only_delete BEFORE DELETE ON audit_events
BEGIN SELECT RAISE(ABORT, 'audit_events is append-only'); END;
