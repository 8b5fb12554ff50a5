-- Publishing asks "does any package still use this pool path?" and ingest
-- "does another file already own it?".
CREATE INDEX package_paths_by_path ON package_paths (path);
