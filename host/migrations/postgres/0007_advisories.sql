-- Vulnerability advisories (OSV records), see advisories.rs.

-- One row per OSV record, the newest `modified` seen.
CREATE TABLE advisories (
    id TEXT COLLATE "C" PRIMARY KEY,
    -- RFC 3339, as the record gives it.
    modified TEXT COLLATE "C" NOT NULL,
    -- Set when the record is withdrawn: it matches nothing any more.
    withdrawn TEXT COLLATE "C",
    summary TEXT COLLATE "C" NOT NULL,
    -- One scale for every source (repod_osv::Severity): critical, high,
    -- medium, low, negligible, unknown.
    severity TEXT COLLATE "C" NOT NULL,
    cvss_score DOUBLE PRECISION,
    cvss_vector TEXT COLLATE "C",
    -- Where the severity came from (repod_osv::source).
    severity_source TEXT COLLATE "C" NOT NULL,
    -- The record as imported, verbatim.
    record TEXT COLLATE "C" NOT NULL,
    imported_at BIGINT NOT NULL,
    -- The import that brought this revision.
    import_id TEXT COLLATE "C" NOT NULL
);

-- Other ids of a record (CVE ids, a USN's related ids): lookup by alias.
CREATE TABLE advisory_aliases (
    alias TEXT COLLATE "C" NOT NULL,
    advisory_id TEXT COLLATE "C" NOT NULL REFERENCES advisories (id) ON DELETE CASCADE,
    PRIMARY KEY (alias, advisory_id)
);
CREATE INDEX advisory_aliases_by_advisory ON advisory_aliases (advisory_id);

-- Which (ecosystem, package name) a record's affected entries name: the
-- scanner's index, and what an import changed.
CREATE TABLE advisory_packages (
    ecosystem TEXT COLLATE "C" NOT NULL,
    name TEXT COLLATE "C" NOT NULL,
    advisory_id TEXT COLLATE "C" NOT NULL REFERENCES advisories (id) ON DELETE CASCADE,
    PRIMARY KEY (ecosystem, name, advisory_id)
);
CREATE INDEX advisory_packages_by_advisory ON advisory_packages (advisory_id);

-- Every import (an upload, or a feed sync) and what it did.
CREATE TABLE advisory_imports (
    id TEXT COLLATE "C" PRIMARY KEY,
    -- `upload` or the feed URL.
    source TEXT COLLATE "C" NOT NULL,
    actor TEXT COLLATE "C" NOT NULL,
    started_ms BIGINT NOT NULL,
    finished_ms BIGINT NOT NULL,
    added BIGINT NOT NULL,
    updated BIGINT NOT NULL,
    unchanged BIGINT NOT NULL,
    rejected BIGINT NOT NULL,
    -- JSON list of the rejected records and why.
    rejections TEXT COLLATE "C" NOT NULL,
    -- Why the whole import failed; NULL when it did not.
    error TEXT COLLATE "C"
);
CREATE INDEX advisory_imports_by_time ON advisory_imports (started_ms);
