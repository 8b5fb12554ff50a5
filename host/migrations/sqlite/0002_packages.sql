-- Package files, stored once each, by SHA-256.
CREATE TABLE blobs (
    sha256 TEXT PRIMARY KEY,
    size BIGINT NOT NULL,
    format TEXT NOT NULL,
    created_at BIGINT NOT NULL
);

-- A package as it sits in one distribution. The same blob may be in many.
CREATE TABLE packages (
    id TEXT PRIMARY KEY,
    distribution TEXT NOT NULL,
    name TEXT NOT NULL,
    version TEXT NOT NULL,
    architecture TEXT NOT NULL,
    sha256 TEXT NOT NULL REFERENCES blobs (sha256),
    filename TEXT NOT NULL,
    uploaded_by TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    UNIQUE (distribution, name, version, architecture)
);
CREATE INDEX packages_by_name ON packages (name);
CREATE INDEX packages_by_sha256 ON packages (sha256);

-- Where the published tree shows the package (relative paths).
CREATE TABLE package_paths (
    package_id TEXT NOT NULL REFERENCES packages (id) ON DELETE CASCADE,
    path TEXT NOT NULL,
    PRIMARY KEY (package_id, path)
);

-- The package's index entries, rendered once by its family plugin.
CREATE TABLE index_entries (
    package_id TEXT NOT NULL REFERENCES packages (id) ON DELETE CASCADE,
    seq INTEGER NOT NULL,
    index_path TEXT NOT NULL,
    sort_key TEXT NOT NULL,
    body TEXT NOT NULL,
    PRIMARY KEY (package_id, seq)
);
CREATE INDEX index_entries_by_index ON index_entries (index_path, sort_key);

-- Who changed what, when.
CREATE TABLE audit (
    id TEXT PRIMARY KEY,
    at_ms BIGINT NOT NULL,
    actor TEXT NOT NULL,
    action TEXT NOT NULL,
    target TEXT NOT NULL,
    detail TEXT NOT NULL
);
CREATE INDEX audit_by_time ON audit (at_ms);
