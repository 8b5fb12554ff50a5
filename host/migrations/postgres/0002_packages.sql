-- Package files, stored once each, by SHA-256.
CREATE TABLE blobs (
    sha256 TEXT COLLATE "C" PRIMARY KEY,
    size BIGINT NOT NULL,
    format TEXT COLLATE "C" NOT NULL,
    created_at BIGINT NOT NULL
);

-- A package as it sits in one distribution. The same blob may be in many.
CREATE TABLE packages (
    id TEXT COLLATE "C" PRIMARY KEY,
    distribution TEXT COLLATE "C" NOT NULL,
    name TEXT COLLATE "C" NOT NULL,
    version TEXT COLLATE "C" NOT NULL,
    architecture TEXT COLLATE "C" NOT NULL,
    sha256 TEXT COLLATE "C" NOT NULL REFERENCES blobs (sha256),
    filename TEXT COLLATE "C" NOT NULL,
    uploaded_by TEXT COLLATE "C" NOT NULL,
    created_at BIGINT NOT NULL,
    UNIQUE (distribution, name, version, architecture)
);
CREATE INDEX packages_by_name ON packages (name);
CREATE INDEX packages_by_sha256 ON packages (sha256);

-- Where the published tree shows the package (relative paths).
CREATE TABLE package_paths (
    package_id TEXT COLLATE "C" NOT NULL REFERENCES packages (id) ON DELETE CASCADE,
    path TEXT COLLATE "C" NOT NULL,
    PRIMARY KEY (package_id, path)
);

-- The package's index entries, rendered once by its family plugin.
CREATE TABLE index_entries (
    package_id TEXT COLLATE "C" NOT NULL REFERENCES packages (id) ON DELETE CASCADE,
    seq BIGINT NOT NULL,
    index_path TEXT COLLATE "C" NOT NULL,
    sort_key TEXT COLLATE "C" NOT NULL,
    body TEXT COLLATE "C" NOT NULL,
    PRIMARY KEY (package_id, seq)
);
CREATE INDEX index_entries_by_index ON index_entries (index_path, sort_key);

-- Who changed what, when.
CREATE TABLE audit (
    id TEXT COLLATE "C" PRIMARY KEY,
    at_ms BIGINT NOT NULL,
    actor TEXT COLLATE "C" NOT NULL,
    action TEXT COLLATE "C" NOT NULL,
    target TEXT COLLATE "C" NOT NULL,
    detail TEXT COLLATE "C" NOT NULL
);
CREATE INDEX audit_by_time ON audit (at_ms);
