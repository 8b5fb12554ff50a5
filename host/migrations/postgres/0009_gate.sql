-- The vulnerability gate: what the distribution's policy made of a scan,
-- and people's decisions about packages (scan.rs).

-- clean, findings (allowed), quarantined, blocked, approved, rejected.
ALTER TABLE scans ADD COLUMN state TEXT COLLATE "C" NOT NULL DEFAULT 'clean';
-- The policy that judged it and why ('' when nothing needed judging).
ALTER TABLE scans ADD COLUMN policy TEXT COLLATE "C" NOT NULL DEFAULT '';
ALTER TABLE scans ADD COLUMN reason TEXT COLLATE "C" NOT NULL DEFAULT '';

-- A person's approval or rejection of a package, with the findings it
-- covers. Promotion and migration copy a row's decisions to the row they
-- make (`inherited_from` the original decision).
CREATE TABLE decisions (
    id TEXT COLLATE "C" PRIMARY KEY,
    package_id TEXT COLLATE "C" NOT NULL REFERENCES packages (id) ON DELETE CASCADE,
    -- approve or reject
    decision TEXT COLLATE "C" NOT NULL,
    justification TEXT COLLATE "C" NOT NULL,
    actor TEXT COLLATE "C" NOT NULL,
    at_ms BIGINT NOT NULL,
    -- Unix milliseconds after which review re-opens; NULL: never.
    expires_ms BIGINT,
    -- JSON list of the advisory ids the decision covers.
    covers TEXT COLLATE "C" NOT NULL,
    inherited_from TEXT COLLATE "C"
);
CREATE INDEX decisions_by_package ON decisions (package_id, at_ms);
