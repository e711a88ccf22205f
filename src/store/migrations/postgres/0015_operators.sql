-- Registered operators (issue 17): accounts with roles; a command that changes state acts as one
-- (postgres).

CREATE TABLE operators (
    name            TEXT PRIMARY KEY,             -- the operator's name, as audit records give it
    roles           TEXT NOT NULL,                -- comma-separated: reviewer,provisioner,security_officer,auditor,administrator
    enabled         BIGINT NOT NULL,              -- 1 enabled, 0 disabled
    credential_hash TEXT UNIQUE,                  -- SHA-256 (hex) of the operator's credential token; never the token
    created_by      TEXT NOT NULL,                -- the administrator who added it (station:<id> for the first one)
    created_at      TEXT NOT NULL,
    updated_at      TEXT NOT NULL
);
