-- Scans: each package row matched against the stored advisories of its
-- distribution's ecosystem (scan.rs).

-- The latest scan of a row.
CREATE TABLE scans (
    package_id TEXT COLLATE "C" PRIMARY KEY REFERENCES packages (id) ON DELETE CASCADE,
    scanned_ms BIGINT NOT NULL,
    -- The ecosystem it was matched in (the distribution's OSV ecosystem).
    ecosystem TEXT COLLATE "C" NOT NULL,
    findings BIGINT NOT NULL,
    -- The worst finding's severity; 'none' when clean.
    worst TEXT COLLATE "C" NOT NULL
);

-- What the latest scan found: one row per matching advisory.
CREATE TABLE findings (
    package_id TEXT COLLATE "C" NOT NULL REFERENCES packages (id) ON DELETE CASCADE,
    advisory_id TEXT COLLATE "C" NOT NULL,
    severity TEXT COLLATE "C" NOT NULL,
    cvss_score DOUBLE PRECISION,
    -- The version that fixes it; NULL: no fix yet.
    fixed TEXT COLLATE "C",
    PRIMARY KEY (package_id, advisory_id)
);
CREATE INDEX findings_by_advisory ON findings (advisory_id);

-- The names a row is matched under (its own, its source package's): an
-- advisory change re-scans the rows one of its names names.
CREATE TABLE package_names (
    package_id TEXT COLLATE "C" NOT NULL REFERENCES packages (id) ON DELETE CASCADE,
    name TEXT COLLATE "C" NOT NULL,
    PRIMARY KEY (package_id, name)
);
CREATE INDEX package_names_by_name ON package_names (name);
