-- Remote unlock with an unlock authorisation code (issue 16 item 4; sqlite): SO PIN generations
-- and the unlock requests' public halves. Nothing secret: the SO PINs are re-derived in the
-- vault from the identity and the generation, the code is never stored.

-- The SO PIN generation of a token, by its SO identity (token_bindings.so_identity, which a
-- token keeps across --reinit). No row: generation 0, the derivation every token had before.
-- pending_generation: the next SO PIN an unlock code carried; it becomes current once the
-- customer's tool reported the rotation (`unlock confirm`).
CREATE TABLE so_pin_generations (
    so_identity         TEXT PRIMARY KEY,
    current_generation  BIGINT NOT NULL DEFAULT 0,
    pending_generation  BIGINT,
    pending_request_id  TEXT REFERENCES service_requests (id),
    updated_at          TEXT NOT NULL
);

-- One row per unlock request (service_requests.kind = 'unlock'): what the request code said,
-- and the sending of the authorisation code (claimed before the server is contacted; a send
-- whose outcome is unknown is in_doubt and never repeated without --resend).
CREATE TABLE unlock_requests (
    request_id        TEXT PRIMARY KEY REFERENCES service_requests (id),
    token_serial      TEXT NOT NULL,
    request_nonce     TEXT NOT NULL,                 -- hex, chosen by the tool
    ephemeral_public  TEXT NOT NULL,                 -- hex, the tool's X25519 public key
    send_state        TEXT NOT NULL DEFAULT 'unsent', -- unsent | sending | sent | in_doubt | failed
    sends             BIGINT NOT NULL DEFAULT 0,     -- contacts with the SMTP server
    destination_masked TEXT,
    expires_at        TEXT,                          -- of the code last sent
    sent_at           TEXT,
    last_error        TEXT
);
-- A request code is used once.
CREATE UNIQUE INDEX unlock_requests_once ON unlock_requests (request_nonce);
