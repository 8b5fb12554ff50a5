-- Advisory feeds the config names, and what their last sync saw, for
-- conditional requests (advisories/feeds.rs).
CREATE TABLE advisory_feeds (
    source TEXT PRIMARY KEY,
    etag TEXT,
    last_modified TEXT,
    -- Unix milliseconds of the last attempt, and of the last success.
    tried_ms BIGINT NOT NULL,
    synced_ms BIGINT,
    -- ok, unchanged (304 or same bytes) or failed
    status TEXT NOT NULL,
    error TEXT,
    -- The import the last change went in with.
    import_id TEXT
);
