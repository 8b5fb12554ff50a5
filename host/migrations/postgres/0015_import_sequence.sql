-- The order imports committed in, as a column every database has (it was
-- SQLite's rowid): an upload that scanned before an import committed
-- scans again (ingest.rs). Written as MAX + 1 inside the writer's
-- transaction, so it is never taken twice. PostgreSQL has no rowid: rows
-- from before are numbered in the order they started.
ALTER TABLE advisory_imports ADD COLUMN seq BIGINT NOT NULL DEFAULT 0;
UPDATE advisory_imports SET seq = o.n
    FROM (SELECT id, ROW_NUMBER() OVER (ORDER BY started_ms, id) AS n FROM advisory_imports) o
    WHERE advisory_imports.id = o.id;
