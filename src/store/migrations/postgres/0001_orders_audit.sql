-- Orders, their documents, and the append-only audit trail (PostgreSQL).
-- Same shape as the SQLite schema so one query text serves both (timestamps as RFC 3339 text).

CREATE TABLE orders (
    order_no              TEXT PRIMARY KEY,
    state                 TEXT NOT NULL,
    auth_method           TEXT NOT NULL,
    company_name          TEXT NOT NULL,
    uscc                  TEXT NOT NULL,
    order_json            TEXT NOT NULL,
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

CREATE TABLE blobs (
    sha256   TEXT PRIMARY KEY,
    size     BIGINT NOT NULL,
    content  BYTEA NOT NULL
);

CREATE TABLE attachments (
    order_no    TEXT NOT NULL REFERENCES orders (order_no),
    role        TEXT NOT NULL,
    kind        TEXT NOT NULL,
    file_name   TEXT NOT NULL,
    media_type  TEXT NOT NULL,
    sha256      TEXT NOT NULL REFERENCES blobs (sha256),
    PRIMARY KEY (order_no, role, kind)
);

CREATE TABLE audit_head (
    id         BIGINT PRIMARY KEY CHECK (id = 1),
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
    details       TEXT NOT NULL,
    prev_hash     TEXT NOT NULL,
    hash          TEXT NOT NULL
);
CREATE INDEX audit_by_order ON audit_events (order_no, seq);

CREATE FUNCTION audit_events_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit_events is append-only';
END;
$$;
CREATE TRIGGER audit_events_append_only BEFORE UPDATE OR DELETE ON audit_events
FOR EACH ROW EXECUTE FUNCTION audit_events_append_only();
