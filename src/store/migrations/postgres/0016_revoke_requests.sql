-- Four-eyes revocation (issue 17): `order revoke` and `cert revoke` record a service request
-- (service_requests.kind = 'revoke' | 'revoke_certificate') that a second operator approves
-- before anything is revoked; what is to be revoked, and how, is kept here (postgres).
CREATE TABLE revoke_requests (
    request_id   TEXT PRIMARY KEY REFERENCES service_requests (id),
    cert_serial  TEXT,                           -- the one certificate (revoke_certificate), hex
    crl_reason   TEXT NOT NULL,                  -- RFC 5280 reason name
    detail       TEXT                            -- the operator's free text
);
