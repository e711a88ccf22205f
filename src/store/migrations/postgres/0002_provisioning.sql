-- Provisioning: which token an order is bound to, the step journal, certificates, sealed PINs.

-- One row per binding attempt; at most one active (released_at IS NULL) per order and per token.
CREATE TABLE token_bindings (
    binding_id     TEXT PRIMARY KEY,
    order_no       TEXT NOT NULL REFERENCES orders (order_no),
    station_id     TEXT NOT NULL,
    so_identity    TEXT NOT NULL,      -- what the SO PIN is derived from (not secret)
    token_serial   TEXT,               -- known once the token has one (SoftHSM: after C_InitToken)
    token_label    TEXT NOT NULL,
    key_algorithm  TEXT NOT NULL,
    key_id         TEXT,               -- CKA_ID, hex
    public_key     BYTEA,               -- SubjectPublicKeyInfo DER
    bound_at       TEXT NOT NULL,
    released_at    TEXT,
    release_reason TEXT
);
CREATE UNIQUE INDEX token_bindings_one_per_order ON token_bindings (order_no) WHERE released_at IS NULL;
CREATE UNIQUE INDEX token_bindings_one_per_token ON token_bindings (token_serial)
    WHERE released_at IS NULL AND token_serial IS NOT NULL;

-- The journal: each step recorded before (started) and after (done / failed) it runs.
CREATE TABLE provision_steps (
    order_no     TEXT NOT NULL REFERENCES orders (order_no),
    attempt      BIGINT NOT NULL,
    step         TEXT NOT NULL,
    status       TEXT NOT NULL,        -- started | done | failed
    started_at   TEXT NOT NULL,
    finished_at  TEXT,
    detail       TEXT,                 -- error text or non-secret facts
    PRIMARY KEY (order_no, attempt, step)
);

CREATE TABLE certificates (
    serial              TEXT PRIMARY KEY,   -- hex, as in the certificate
    order_no            TEXT NOT NULL REFERENCES orders (order_no),
    binding_id          TEXT NOT NULL,
    token_serial        TEXT,
    der                 BYTEA NOT NULL,
    fingerprint_sha256  TEXT NOT NULL,
    not_before          TEXT NOT NULL,
    not_after           TEXT NOT NULL,
    status              TEXT NOT NULL,      -- reserved (serial taken before signing) | issued | on_token | revoked
    issued_at           TEXT NOT NULL
);
CREATE INDEX certificates_by_order ON certificates (order_no);

CREATE TABLE revocations (
    serial      TEXT PRIMARY KEY REFERENCES certificates (serial),
    order_no    TEXT NOT NULL,
    reason      TEXT NOT NULL,              -- RFC 5280 reason name
    detail      TEXT,
    revoked_at  TEXT NOT NULL,
    revoked_by  TEXT NOT NULL
);

-- A user PIN exists here only sealed by the vault HSM (AES-GCM, AAD = order + token).
CREATE TABLE sealed_pins (
    order_no      TEXT PRIMARY KEY REFERENCES orders (order_no),
    token_serial  TEXT NOT NULL,
    sealed        BYTEA NOT NULL,
    created_at    TEXT NOT NULL
);

-- Facts about the station's own HSM material (CA certificate, key labels), written at init.
CREATE TABLE station_material (
    name   TEXT PRIMARY KEY,
    value  TEXT NOT NULL
);
