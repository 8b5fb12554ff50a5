-- Advisory feeds the config names, and what their last sync saw, for
-- conditional requests (advisories/feeds.rs).
CREATE TABLE advisory_feeds (
    source TEXT COLLATE "C" PRIMARY KEY,
    etag TEXT COLLATE "C",
    last_modified TEXT COLLATE "C",
    -- Unix milliseconds of the last attempt, and of the last success.
    tried_ms BIGINT NOT NULL,
    synced_ms BIGINT,
    -- ok, unchanged (304 or same bytes) or failed
    status TEXT COLLATE "C" NOT NULL,
    error TEXT COLLATE "C",
    -- The import the last change went in with.
    import_id TEXT COLLATE "C"
);
