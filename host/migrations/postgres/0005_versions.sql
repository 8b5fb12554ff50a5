-- Repository versions (see catalog/versions.rs).
--
-- A `packages` row is a package prepared for one distribution; it no
-- longer leaves when the package is removed. Which rows a distribution
-- holds, and since when, is `memberships`: each row an interval of
-- version numbers [added_in, removed_in), removed_in NULL while the
-- package is still there. Version n of a distribution is every membership
-- with added_in <= n and (removed_in IS NULL or removed_in > n). Retention
-- deletes versions, then the memberships no kept version needs, then the
-- rows, blobs and pool files nothing refers to any more.

-- What the host read from the file (JSON of repod_reader::Package), so a
-- package can be prepared for another distribution, or again after its
-- plugin changed, without reading the file. NULL for blobs stored before
-- this migration: filled from the file the first time it is needed.
ALTER TABLE blobs ADD COLUMN parsed TEXT COLLATE "C";

-- The row a promoted or migrated package was prepared from (NULL for an
-- upload): a decision about the package can follow it from tier to tier.
ALTER TABLE packages ADD COLUMN origin TEXT COLLATE "C";

-- One row per distribution that ever held content.
CREATE TABLE distributions (
    id TEXT COLLATE "C" PRIMARY KEY,
    -- Newest version number; 0 before the first change.
    latest BIGINT NOT NULL DEFAULT 0,
    -- Fingerprint of the plugin and distribution record the rows were
    -- prepared with; '' = unknown (adopt the current one).
    rendered_with TEXT COLLATE "C" NOT NULL DEFAULT '',
    -- Unix seconds since no loaded plugin declares it; NULL while it is served.
    retired_at BIGINT
);

CREATE TABLE versions (
    distribution TEXT COLLATE "C" NOT NULL,
    number BIGINT NOT NULL,
    created_ms BIGINT NOT NULL,
    actor TEXT COLLATE "C" NOT NULL,
    -- upload, remove, promote, migrate, rollback, import
    action TEXT COLLATE "C" NOT NULL,
    reason TEXT COLLATE "C" NOT NULL,
    added BIGINT NOT NULL,
    removed BIGINT NOT NULL,
    -- Packages in this version.
    packages BIGINT NOT NULL,
    PRIMARY KEY (distribution, number)
);
-- Retention asks for the oldest version younger than a date.
CREATE INDEX versions_by_time ON versions (distribution, created_ms);

CREATE TABLE memberships (
    package_id TEXT COLLATE "C" NOT NULL REFERENCES packages (id),
    distribution TEXT COLLATE "C" NOT NULL,
    added_in BIGINT NOT NULL,
    removed_in BIGINT,
    PRIMARY KEY (package_id, added_in)
);
CREATE INDEX memberships_added ON memberships (distribution, added_in);
CREATE INDEX memberships_removed ON memberships (distribution, removed_in);

-- Pool files whose last row retention deleted, unlinked right after the
-- commit; what a crash leaves here is unlinked at the next start.
CREATE TABLE pool_trash (
    path TEXT COLLATE "C" PRIMARY KEY
);

-- The content so far becomes version 1 of each distribution.
INSERT INTO distributions (id, latest)
    SELECT DISTINCT distribution, 1 FROM packages;
INSERT INTO versions (distribution, number, created_ms, actor, action, reason, added, removed, packages)
    SELECT distribution, 1, MAX(created_at) * 1000, 'repod', 'import',
           'the content before repository versions existed', COUNT(*), 0, COUNT(*)
    FROM packages GROUP BY distribution;
INSERT INTO memberships (package_id, distribution, added_in, removed_in)
    SELECT id, distribution, 1, NULL FROM packages;
