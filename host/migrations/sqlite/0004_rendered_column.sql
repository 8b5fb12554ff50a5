-- A publish reads every package of a distribution. One row per package,
-- instead of one per index entry and one per pool path, cuts that read
-- several times (see BENCHMARKS.md, RPM publishing). `rendered` is the JSON
-- written by catalog::encode_rendered: {"pool_paths": [..], "entries":
-- [[index path, sort key, text], ..]}. package_paths stays: it is the
-- by-path lookup of the same paths, written in the same transaction.
-- Aggregate ORDER BY needs SQLite 3.44 or later (sqlx bundles 3.46).
ALTER TABLE packages ADD COLUMN rendered TEXT NOT NULL DEFAULT '';

UPDATE packages SET rendered = json_object(
    'pool_paths', (SELECT json_group_array(pp.path ORDER BY pp.path)
                   FROM package_paths pp WHERE pp.package_id = packages.id),
    'entries', (SELECT json_group_array(json_array(e.index_path, e.sort_key, e.body) ORDER BY e.seq)
                FROM index_entries e WHERE e.package_id = packages.id));

DROP TABLE index_entries;
