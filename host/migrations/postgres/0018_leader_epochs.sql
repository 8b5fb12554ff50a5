-- The leader's fencing token (cluster mode, `publish/cluster.rs`): each
-- process that takes the leader lock bumps `epoch`, and a generation row
-- is inserted only while the epoch its publish started under is current,
-- so a leader that lost its lock mid-publish cannot make a stale tree
-- live. One row (id 1), made by the first leader; empty on a single node.
CREATE TABLE leader_epochs (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    epoch BIGINT NOT NULL
);
