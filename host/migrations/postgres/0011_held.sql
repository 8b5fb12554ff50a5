-- A row the vulnerability gate holds back (quarantined or rejected at
-- upload, or rejected later): in no version until a decision approves it,
-- and never collected by retention while held (scan.rs, lifecycle.rs).
ALTER TABLE packages ADD COLUMN held BOOLEAN NOT NULL DEFAULT FALSE;
UPDATE packages SET held = TRUE
    WHERE NOT EXISTS (SELECT 1 FROM memberships m WHERE m.package_id = packages.id);
