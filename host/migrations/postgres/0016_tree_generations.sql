-- Published trees kept in an object store ([storage] kind = "s3"): each
-- publish of a distribution stores its generated files content-addressed
-- (trees/sha256/...) and then inserts one row here, which makes it the
-- live generation on every node. `files` maps each generated path to its
-- SHA-256, `pool` each package path to its blob's; both JSON objects.
-- Older rows stay while their files are kept for readers in flight.
CREATE TABLE tree_generations (
    distribution TEXT COLLATE "C" NOT NULL,
    generation BIGINT NOT NULL,
    version BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    files TEXT NOT NULL,
    pool TEXT NOT NULL,
    PRIMARY KEY (distribution, generation)
);
