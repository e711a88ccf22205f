-- Console login by password and TOTP (issue 17) (postgres): the second way an operator proves who
-- they are, beside the credential file the CLI uses. No secret is stored in clear.

ALTER TABLE operators ADD COLUMN password_hash TEXT;      -- argon2id PHC string; NULL: no console password yet
ALTER TABLE operators ADD COLUMN totp_sealed BYTEA;       -- the TOTP secret SEALED by the vault (AES-GCM, AAD = operator); NULL: not enrolled
ALTER TABLE operators ADD COLUMN totp_last_step BIGINT;   -- the last accepted TOTP time step: a code is never accepted twice
