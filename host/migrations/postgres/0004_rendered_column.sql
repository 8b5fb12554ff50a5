-- A publish reads every package of a distribution. One row per package,
-- instead of one per index entry and one per pool path, cuts that read
-- several times (see BENCHMARKS.md, RPM publishing). `rendered` is the JSON
-- written by catalog::encode_rendered: {"pool_paths": [..], "entries":
-- [[index path, sort key, text], ..]}. package_paths stays: it is the
-- by-path lookup of the same paths, written in the same transaction.
-- The PostgreSQL form of SQLite's json_group_array backfill: json_agg gives
-- NULL for no rows where SQLite gives [], hence the COALESCE.
ALTER TABLE packages ADD COLUMN rendered TEXT COLLATE "C" NOT NULL DEFAULT '';

UPDATE packages SET rendered = json_build_object(
    'pool_paths', COALESCE((SELECT json_agg(pp.path ORDER BY pp.path)
                            FROM package_paths pp WHERE pp.package_id = packages.id), '[]'::json),
    'entries', COALESCE((SELECT json_agg(json_build_array(e.index_path, e.sort_key, e.body) ORDER BY e.seq)
                         FROM index_entries e WHERE e.package_id = packages.id), '[]'::json))::text;

DROP TABLE index_entries;
