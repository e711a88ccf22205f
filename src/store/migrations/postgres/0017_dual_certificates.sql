-- SM2 dual certificates (双证书, issue 18 item 5): what a certificate's key is for, and the
-- escrow copy of an encryption key pair the station made (postgres).

-- signing: the key made on the token (every certificate so far); encryption: the key pair made
-- by the station's key management, enveloped to the token, with its escrow copy below.
ALTER TABLE certificates ADD COLUMN purpose TEXT NOT NULL DEFAULT 'signing';

-- The escrow copy of an encryption certificate's private key, only ever SEALED by the vault
-- (AES-GCM inside the vault HSM, AAD = order + certificate serial): never plain here.
CREATE TABLE escrowed_keys (
    serial       TEXT PRIMARY KEY REFERENCES certificates (serial),
    order_no     TEXT NOT NULL REFERENCES orders (order_no),
    public_point TEXT NOT NULL,                  -- hex 04 || x || y
    sealed       BYTEA NOT NULL,
    escrowed_at  TEXT NOT NULL
);
CREATE INDEX escrowed_keys_by_order ON escrowed_keys (order_no);
