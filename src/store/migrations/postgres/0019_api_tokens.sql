-- The order API (issue 17, item 3): scoped API tokens, each belonging to a registered operator
-- and stored only as the SHA-256 of its text; and the orders submitted through the API, with
-- the SHA-256 of the request that made them, so a repeated submission is recognised (postgres).

CREATE TABLE api_tokens (
    id          BIGINT PRIMARY KEY,               -- 1, 2, ... (`api-token revoke ID`)
    operator    TEXT NOT NULL REFERENCES operators (name), -- who acts through it (audit records name it)
    scopes      TEXT NOT NULL,                    -- comma-separated: orders:submit,orders:read
    token_hash  TEXT NOT NULL UNIQUE,             -- SHA-256 (hex) of the token; never the token
    created_by  TEXT NOT NULL,                    -- the administrator who added it
    created_at  TEXT NOT NULL,
    revoked_by  TEXT,                             -- the administrator who revoked it
    revoked_at  TEXT
);

CREATE TABLE api_submissions (
    order_no        TEXT PRIMARY KEY REFERENCES orders (order_no),
    request_sha256  TEXT NOT NULL,                -- SHA-256 (hex) of the request body, canonical JSON
    token_id        BIGINT NOT NULL REFERENCES api_tokens (id),
    submitted_at    TEXT NOT NULL
);

-- `GET /api/v1/orders?since=`: orders changed since a time, in the order they changed.
CREATE INDEX orders_updated ON orders (updated_at, order_no);
