-- Plugins installed or removed through the API of one node of a cluster
-- (PostgreSQL + object store), in order, so that every node applies
-- them: `sha256` names the .wasm stored in the object store
-- (plugins/sha256/...), NULL a removal. Empty on a single node.
CREATE TABLE plugin_changes (
    seq BIGINT NOT NULL PRIMARY KEY,
    name TEXT COLLATE "C" NOT NULL,
    sha256 TEXT,
    changed_at BIGINT NOT NULL
);
