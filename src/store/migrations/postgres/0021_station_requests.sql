-- Four-eyes on changes that are not about an order (issue 17, item 1): operator and role
-- changes, API tokens, the CA's OCSP signer. Each is a request a second, different operator
-- approves; its states and moves are the service desk's (domain::RequestState). The change is
-- kept as non-secret typed JSON (an operator's name and roles, a token's operator and scopes);
-- no credential or token is ever stored here: the approver's command draws and writes it (postgres).

CREATE TABLE station_requests (
    id            TEXT PRIMARY KEY,              -- UUID
    kind          TEXT NOT NULL,                 -- operator_add, operator_disable, ..., ocsp_signer
    subject       TEXT NOT NULL,                 -- what it is about: an operator, a token id, the CA
    change_json   TEXT NOT NULL,                 -- the change, typed (domain::StationChange), no secret
    state         TEXT NOT NULL,                 -- domain::RequestState
    requested_by  TEXT NOT NULL REFERENCES operators (name),
    requested_at  TEXT NOT NULL,
    decided_by    TEXT REFERENCES operators (name), -- never the requester
    decided_at    TEXT,
    decision_note TEXT,
    updated_at    TEXT NOT NULL
);

-- At most one open request per subject and kind.
CREATE UNIQUE INDEX station_requests_open ON station_requests (kind, subject)
    WHERE state IN ('requested', 'approved', 'executing', 'failed');
CREATE INDEX station_requests_state ON station_requests (state, requested_at);
