-- Seal pictures normalised once, at intake, and kept (issue 19 item 5). The PNG that goes into a
-- seal is a blob like any other (content-addressed, one copy per distinct content); this table
-- says which blob the picture imported as `source_sha256` normalises to, under the version of the
-- normalisation code that made it (`seal::picture::NORMALIZATION_VERSION`). Provisioning uses
-- the kept PNG of the current version and normalises the picture itself when there is none (an
-- order imported before this table, or by older normalisation code).
CREATE TABLE normalized_pictures (
    source_sha256  TEXT NOT NULL REFERENCES blobs (sha256),
    version        BIGINT NOT NULL,
    png_sha256     TEXT NOT NULL REFERENCES blobs (sha256),
    PRIMARY KEY (source_sha256, version)
);
