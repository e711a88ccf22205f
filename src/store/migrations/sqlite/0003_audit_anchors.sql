-- Signed anchors of the audit chain: the head (seq, hash) signed by the vault's audit-anchor key.
CREATE TABLE audit_anchors (
    seq        BIGINT PRIMARY KEY,        -- the audit record the anchor covers (chain head then)
    head_hash  TEXT NOT NULL,             -- that record's hash
    at         TEXT NOT NULL,
    actor      TEXT NOT NULL,
    signature  TEXT NOT NULL              -- hex DER ECDSA signature over anchor_message()
);
