//! Published trees in the object store (`[storage] kind = "s3"`), so that
//! every node serves the same tree.
//!
//! An object store has no rename, so a generation cannot be switched in
//! the way `tree.rs` switches a unit. Instead, after the publisher built a
//! distribution's tree (in its data directory, as on one machine), every
//! generated file is stored content-addressed (`trees/sha256/<ab>/<hash>`;
//! package files are already stored as blobs), and only then one row of
//! `tree_generations` is inserted, naming each path's SHA-256 (`files`,
//! `pool`). That insert is the switch: a node serves a path from the rows
//! it has loaded ([`Index`]), fetching the object into its cache on first
//! use. Rows of earlier generations stay while their files are kept for
//! readers in flight (the `keep-superseded-seconds` rule of `tree.rs`), so
//! a client that read the previous Release still finds what it lists.
//!
//! With `[storage.export]`, each generation is also copied to a bucket
//! laid out as the tree itself, for clients (or a CDN) reading the bucket
//! directly: content-addressed files first, then package files, then the
//! other indexes, the top-level files (Release, InRelease, repomd.xml and
//! their signatures) last, so the bucket never shows a top-level file
//! naming a missing file. What no kept generation lists is deleted by the
//! sweep, after retention.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};

use futures_util::StreamExt;

use super::PublishError;
use crate::blobs::BlobStore;
use crate::blobs::remote::Remote;
use crate::db::{self, Db};

/// Uploads (and export copies) in flight at once.
const PARALLEL: usize = 8;

/// What one publish made, as the object store keeps it.
#[derive(Debug, Clone, Default)]
pub struct Published {
    pub version: i64,
    /// Every generated file -> its SHA-256.
    pub files: BTreeMap<String, String>,
    /// Every package file the version lists -> its blob's SHA-256.
    pub pool: BTreeMap<String, String>,
    /// The top-level files and their signatures: exported last.
    pub top: BTreeSet<String>,
    /// Content-addressed files (by-hash, checksum-named): exported first.
    pub addressed: BTreeSet<String>,
}

/// A path a node serves: a generated file or a package's blob.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub sha256: String,
    pub blob: bool,
    /// When its generation was made (Unix seconds): `Last-Modified`.
    pub created_at: i64,
}

/// Every path the loaded generations serve.
#[derive(Debug, Default)]
pub struct Index {
    /// distribution -> its latest generation loaded.
    dists: HashMap<String, Loaded>,
}

#[derive(Debug, Clone)]
struct Loaded {
    generation: i64,
    /// The distribution version it shows.
    version: i64,
    /// The kept rows, oldest first, parsed once.
    rows: Vec<Arc<Row>>,
    /// Its paths, and the superseded files of its kept predecessors.
    paths: HashMap<String, Entry>,
}

/// One `tree_generations` row, parsed.
#[derive(Debug)]
struct Row {
    generation: i64,
    version: i64,
    created_at: i64,
    files: BTreeMap<String, String>,
    pool: BTreeMap<String, String>,
}

impl Loaded {
    /// The paths of `rows` (oldest first: a later generation's file wins
    /// its path).
    fn of(rows: Vec<Arc<Row>>) -> Option<Loaded> {
        let last = rows.last()?.clone();
        let mut paths = HashMap::new();
        for row in &rows {
            for (blob, map) in [(false, &row.files), (true, &row.pool)] {
                for (path, sha256) in map {
                    paths.insert(
                        path.clone(),
                        Entry {
                            sha256: sha256.clone(),
                            blob,
                            created_at: row.created_at,
                        },
                    );
                }
            }
        }
        Some(Loaded {
            generation: last.generation,
            version: last.version,
            rows,
            paths,
        })
    }
}

impl Index {
    pub fn get(&self, path: &str) -> Option<&Entry> {
        self.dists.values().find_map(|d| d.paths.get(path))
    }

    /// The version `dist`'s live generation shows, if one is stored.
    pub fn version(&self, dist: &str) -> Option<i64> {
        self.dists.get(dist).map(|d| d.version)
    }
}

pub struct TreeStore {
    remote: Remote,
    export: Option<Remote>,
    blobs: BlobStore,
    db: Db,
    cache: PathBuf,
    tmp: PathBuf,
    index: RwLock<Arc<Index>>,
    /// The row this node just inserted, parsed already: `refresh` need not
    /// read it back.
    primed: Mutex<HashMap<String, Arc<Row>>>,
    /// Tree objects known to be stored: not asked for again.
    stored: Mutex<HashSet<String>>,
    /// Keys known to be in the export bucket, as (key, SHA-256).
    exported: tokio::sync::Mutex<Option<HashMap<String, String>>>,
    /// The public key files, exported with every generation.
    keys: PathBuf,
    /// In a cluster: whose lead a generation row must be inserted under.
    fence: std::sync::OnceLock<Arc<super::cluster::Cluster>>,
}

/// Runs `jobs`, [`PARALLEL`] at a time; the first error, if any.
async fn all(jobs: Vec<impl Future<Output = std::io::Result<()>>>) -> std::io::Result<()> {
    let results: Vec<std::io::Result<()>> = futures_util::stream::iter(jobs)
        .buffer_unordered(PARALLEL)
        .collect()
        .await;
    results.into_iter().collect()
}

fn tree_rel(sha256: &str) -> String {
    format!("trees/sha256/{}/{sha256}", &sha256[..2])
}

fn failed(what: &str, e: impl std::fmt::Display) -> PublishError {
    PublishError::Failed(format!("{what}: {e}"))
}

/// Which earlier generations are kept: the latest always; each older one
/// while its successor is younger than `keep_secs`, at most `max` of them.
/// `rows` is (generation, created_at), newest first.
pub fn kept(rows: &[(i64, i64)], now: i64, keep_secs: i64, max: usize) -> Vec<i64> {
    let mut out: Vec<i64> = rows.first().map(|r| r.0).into_iter().collect();
    for pair in rows.windows(2) {
        let (older, successor) = (pair[1], pair[0]);
        if out.len() > max || now.saturating_sub(successor.1) >= keep_secs {
            break;
        }
        out.push(older.0);
    }
    out
}

impl TreeStore {
    pub fn new(
        remote: Remote,
        export: Option<Remote>,
        blobs: BlobStore,
        db: Db,
        data: &Path,
        keys: PathBuf,
    ) -> std::io::Result<TreeStore> {
        let cache = data.join("cache").join("trees");
        let tmp = data.join("tmp");
        std::fs::create_dir_all(&cache)?;
        std::fs::create_dir_all(&tmp)?;
        Ok(TreeStore {
            remote,
            export,
            blobs,
            db,
            cache,
            tmp,
            index: RwLock::default(),
            primed: Mutex::default(),
            stored: Mutex::default(),
            exported: tokio::sync::Mutex::new(None),
            keys,
            fence: std::sync::OnceLock::new(),
        })
    }

    /// Inserts generation rows only under the lead of `cluster`.
    pub fn fence_with(&self, cluster: Arc<super::cluster::Cluster>) {
        let _ = self.fence.set(cluster);
    }

    /// The fencing token a publish starting now runs under (`None` when
    /// not in a cluster); see [`TreeStore::store`].
    pub fn fence(&self) -> Option<i64> {
        self.fence.get().map(|c| c.epoch())
    }

    pub fn index(&self) -> Arc<Index> {
        self.index.read().expect("index").clone()
    }

    /// Stores the generated files of a publish of `dist` (read from the
    /// live tree at `root`), then inserts its generation row, then exports
    /// it. Returns the generation's number. With `fence` (the cluster
    /// lead the publish started under) the row is inserted only while that
    /// lead is still the current one.
    pub async fn store(
        &self,
        dist: &str,
        root: &Path,
        published: &Published,
        keep_secs: i64,
        fence: Option<i64>,
    ) -> Result<i64, PublishError> {
        let missing: Vec<(String, String)> = {
            let stored = self.stored.lock().expect("stored");
            let mut seen = HashSet::new();
            published
                .files
                .iter()
                .filter(|(_, sha)| !stored.contains(*sha) && seen.insert(sha.to_string()))
                .map(|(p, s)| (p.clone(), s.clone()))
                .collect()
        };
        let jobs: Vec<_> = missing
            .iter()
            .map(|(path, sha)| {
                let (remote, file, rel) = (self.remote.clone(), root.join(path), tree_rel(sha));
                async move {
                    let size = tokio::fs::metadata(&file).await?.len();
                    remote.put_file(&rel, &file, size, true).await
                }
            })
            .collect();
        all(jobs)
            .await
            .map_err(|e| failed("cannot store the tree in the object store", e))?;
        self.stored
            .lock()
            .expect("stored")
            .extend(missing.into_iter().map(|(_, sha)| sha));

        test_pause().await;
        let files = serde_json::to_string(&published.files).expect("JSON");
        let pool = serde_json::to_string(&published.pool).expect("JSON");
        let now = db::now();
        let mut tx = db::write(&self.db).await?;
        if let Some(epoch) = fence
            && let Some(current) = super::cluster::check_fence(&mut tx, epoch).await?
        {
            return Err(PublishError::Failed(format!(
                "this node lost the lead during the publish of {dist} (lead {epoch}, now \
                 {current}): its generation was not made live; the leader publishes it"
            )));
        }
        let rows: Vec<(i64, i64)> = sqlx::query_as(
            "SELECT generation, created_at FROM tree_generations WHERE distribution = $1 \
             ORDER BY generation DESC",
        )
        .bind(dist)
        .fetch_all(&mut *tx)
        .await?;
        let generation = rows.first().map_or(1, |r| r.0 + 1);
        sqlx::query(
            "INSERT INTO tree_generations (distribution, generation, version, created_at, \
             files, pool) VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(dist)
        .bind(generation)
        .bind(published.version)
        .bind(now)
        .bind(&files)
        .bind(&pool)
        .execute(&mut *tx)
        .await?;
        let mut all = vec![(generation, now)];
        all.extend(rows);
        let keep = kept(&all, now, keep_secs, super::tree::RETAIN_MAX);
        for (old, _) in all.iter().filter(|(g, _)| !keep.contains(g)) {
            sqlx::query("DELETE FROM tree_generations WHERE distribution = $1 AND generation = $2")
                .bind(dist)
                .bind(old)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        let row = Row {
            generation,
            version: published.version,
            created_at: now,
            files: published.files.clone(),
            pool: published.pool.clone(),
        };
        self.primed
            .lock()
            .expect("primed")
            .insert(dist.to_owned(), Arc::new(row));
        self.refresh().await?;
        if let Some(cluster) = self.fence.get() {
            cluster.announce(super::cluster::Ask::Live, dist);
        }
        if let Some(export) = &self.export {
            self.export(export, root, published)
                .await
                .map_err(|e| failed("cannot export the tree", e))?;
        }
        Ok(generation)
    }

    /// Loads the generations committed since the last call (by any node).
    /// [`TreeStore::refresh`] for the background: a failure is logged and
    /// the next call tries again.
    pub async fn reload(&self) {
        if let Err(e) = self.refresh().await {
            tracing::warn!("cannot read the stored tree generations: {e}");
        }
    }

    /// This node's copies of stored tree files (`cache-max-mib` trims it).
    pub fn cache_dir(&self) -> &Path {
        &self.cache
    }

    pub async fn refresh(&self) -> Result<(), PublishError> {
        let latest: Vec<(String, i64)> = sqlx::query_as(
            "SELECT distribution, MAX(generation) FROM tree_generations GROUP BY distribution",
        )
        .fetch_all(&self.db)
        .await?;
        let current = self.index();
        let unchanged = |dist: &str, generation: i64| {
            current
                .dists
                .get(dist)
                .filter(|d| d.generation == generation)
        };
        if latest.len() == current.dists.len()
            && latest.iter().all(|(d, g)| unchanged(d, *g).is_some())
        {
            return Ok(());
        }
        let mut dists = HashMap::new();
        for (dist, generation) in &latest {
            if let Some(loaded) = unchanged(dist, *generation) {
                dists.insert(dist.clone(), loaded.clone());
                continue;
            }
            // The rows kept now; those parsed before are reused, the
            // others read (normally only the newest).
            let kept: Vec<(i64,)> = sqlx::query_as(
                "SELECT generation FROM tree_generations WHERE distribution = $1 \
                 AND generation <= $2 ORDER BY generation",
            )
            .bind(dist)
            .bind(generation)
            .fetch_all(&self.db)
            .await?;
            let mut known: HashMap<i64, Arc<Row>> = current
                .dists
                .get(dist)
                .map(|d| d.rows.iter().map(|r| (r.generation, r.clone())).collect())
                .unwrap_or_default();
            if let Some(row) = self.primed.lock().expect("primed").remove(dist) {
                known.insert(row.generation, row);
            }
            let missing: Vec<i64> = kept
                .iter()
                .map(|(g,)| *g)
                .filter(|g| !known.contains_key(g))
                .collect();
            if let (Some(first), Some(last)) = (missing.first(), missing.last()) {
                let read: Vec<(i64, i64, i64, String, String)> = sqlx::query_as(
                    "SELECT generation, version, created_at, files, pool FROM tree_generations \
                     WHERE distribution = $1 AND generation >= $2 AND generation <= $3",
                )
                .bind(dist)
                .bind(first)
                .bind(last)
                .fetch_all(&self.db)
                .await?;
                for (generation, version, created_at, files, pool) in read {
                    let parse = |json: &str| -> Result<BTreeMap<String, String>, PublishError> {
                        serde_json::from_str(json).map_err(|e| {
                            failed(&format!("generation row of {dist} is unreadable"), e)
                        })
                    };
                    let row = Row {
                        generation,
                        version,
                        created_at,
                        files: parse(&files)?,
                        pool: parse(&pool)?,
                    };
                    known.insert(generation, Arc::new(row));
                }
            }
            let rows: Vec<Arc<Row>> = kept.iter().filter_map(|(g,)| known.remove(g)).collect();
            if let Some(loaded) = Loaded::of(rows) {
                dists.insert(dist.clone(), loaded);
            }
        }
        *self.index.write().expect("index") = Arc::new(Index { dists });
        Ok(())
    }

    /// A local file holding `entry`'s bytes: the cached copy, fetched
    /// first if this node has none.
    pub async fn local(&self, entry: &Entry) -> std::io::Result<PathBuf> {
        if entry.blob {
            let (blobs, sha) = (self.blobs.clone(), entry.sha256.clone());
            return tokio::task::spawn_blocking(move || blobs.local(&sha))
                .await
                .expect("blob fetch panicked");
        }
        let path = self.cache.join(&entry.sha256[..2]).join(&entry.sha256);
        if let Ok(meta) = tokio::fs::metadata(&path).await {
            if crate::blobs::cache::stale(&meta) {
                let touched = path.clone();
                tokio::task::spawn_blocking(move || crate::blobs::cache::touch(&touched, &meta));
            }
            return Ok(path);
        }
        let tmp = self.tmp.join(format!(
            "tree-{}-{}",
            &entry.sha256[..16],
            std::process::id() as u64 ^ rand_u64()
        ));
        let fetched = async {
            self.remote
                .fetch_to(&tree_rel(&entry.sha256), &entry.sha256, &tmp)
                .await?;
            tokio::fs::create_dir_all(path.parent().expect("parent")).await?;
            tokio::fs::rename(&tmp, &path).await
        }
        .await;
        if fetched.is_err() {
            let _ = tokio::fs::remove_file(&tmp).await;
        }
        fetched.map(|()| path)
    }

    /// Forgets `dist`'s generations (it was retired): no node serves it.
    pub async fn retire(&self, dist: &str) -> Result<(), PublishError> {
        let mut tx = db::write(&self.db).await?;
        sqlx::query("DELETE FROM tree_generations WHERE distribution = $1")
            .bind(dist)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        self.refresh().await
    }

    /// Copies `published` into the export bucket in the order that never
    /// shows a top-level file naming a missing file.
    async fn export(
        &self,
        export: &Remote,
        root: &Path,
        published: &Published,
    ) -> std::io::Result<()> {
        let mut exported = self.exported.lock().await;
        if exported.is_none() {
            // What an earlier process exported: listed once, trusted by
            // name (a content-addressed or package path never changes
            // bytes; the others are written again every time).
            let keys = export.list_under("").await?;
            *exported = Some(keys.into_iter().map(|k| (k, String::new())).collect());
        }
        let exported = exported.as_mut().expect("loaded");
        let generated = |paths: &mut dyn Iterator<Item = &String>| -> Vec<(String, String, bool)> {
            paths
                .filter_map(|p| {
                    published
                        .files
                        .get(p)
                        .map(|s| (p.clone(), s.clone(), false))
                })
                .collect()
        };
        let addressed = generated(&mut published.addressed.iter());
        let pool: Vec<(String, String, bool)> = published
            .pool
            .iter()
            .map(|(p, s)| (p.clone(), s.clone(), true))
            .collect();
        let rest = generated(
            &mut published
                .files
                .keys()
                .filter(|p| !published.addressed.contains(*p) && !published.top.contains(*p)),
        );
        let top = generated(&mut published.top.iter());
        for (wave, skip_known) in [(addressed, true), (pool, true), (rest, false), (top, false)] {
            let todo: Vec<(String, String, bool)> = wave
                .into_iter()
                .filter(|(p, s, _)| {
                    if skip_known {
                        !exported.contains_key(p)
                    } else {
                        exported.get(p) != Some(s)
                    }
                })
                .collect();
            // Uploaded from this node's files (the live tree it just
            // built, its blob cache), not copied inside the bucket: s3s-fs
            // answers some CopyObject calls with 500.
            let jobs: Vec<_> = todo
                .iter()
                .map(|(path, sha, blob)| {
                    let (export, to, sha, blob) =
                        (export.clone(), path.clone(), sha.clone(), *blob);
                    let (blobs, file) = (self.blobs.clone(), root.join(path));
                    async move {
                        let file = match blob {
                            true => tokio::task::spawn_blocking(move || blobs.local(&sha))
                                .await
                                .expect("blob fetch panicked")?,
                            false => file,
                        };
                        let size = tokio::fs::metadata(&file).await?.len();
                        export.put_file(&to, &file, size, false).await
                    }
                })
                .collect();
            all(jobs).await?;
            exported.extend(todo.into_iter().map(|(p, s, _)| (p, s)));
        }
        for name in ["repod.asc", "repod.gpg"] {
            let rel = format!("{}/{name}", super::tree::RESERVED_TOP);
            if let std::collections::hash_map::Entry::Vacant(entry) = exported.entry(rel) {
                let bytes = tokio::fs::read(self.keys.join(name)).await?;
                export.put_bytes(entry.key(), bytes).await?;
                entry.insert(String::new());
            }
        }
        Ok(())
    }

    /// Deletes tree objects no generation row names (older than the
    /// store's orphan grace: a publisher stores files before its row), and
    /// exported files no kept generation lists.
    pub async fn sweep(&self) -> Result<usize, PublishError> {
        let rows: Vec<(String, String)> =
            sqlx::query_as("SELECT files, pool FROM tree_generations")
                .fetch_all(&self.db)
                .await?;
        let mut named_trees = HashSet::new();
        let mut listed = HashSet::new();
        for (files, pool) in &rows {
            let files: BTreeMap<String, String> =
                serde_json::from_str(files).map_err(|e| failed("unreadable generation row", e))?;
            let pool: BTreeMap<String, String> =
                serde_json::from_str(pool).map_err(|e| failed("unreadable generation row", e))?;
            named_trees.extend(files.values().cloned());
            listed.extend(files.into_keys());
            listed.extend(pool.into_keys());
        }
        let mut removed = 0;
        let cutoff = chrono::Utc::now()
            - chrono::Duration::from_std(self.remote.orphan_grace).unwrap_or(chrono::Duration::MAX);
        for (key, modified) in self
            .remote
            .list_dated("trees/sha256")
            .await
            .map_err(|e| failed("cannot list the stored trees", e))?
        {
            let sha = key.rsplit('/').next().unwrap_or_default();
            if !named_trees.contains(sha) && modified < cutoff {
                self.remote
                    .delete(&key)
                    .await
                    .map_err(|e| failed("cannot delete a stored tree file", e))?;
                self.stored.lock().expect("stored").remove(sha);
                removed += 1;
            }
        }
        if let Some(export) = &self.export {
            let mut exported = self.exported.lock().await;
            let keys = export
                .list_under("")
                .await
                .map_err(|e| failed("cannot list the export bucket", e))?;
            for key in keys {
                let reserved = key.split('/').next() == Some(super::tree::RESERVED_TOP);
                if !reserved && !listed.contains(&key) {
                    export
                        .delete(&key)
                        .await
                        .map_err(|e| failed("cannot delete an exported file", e))?;
                    if let Some(known) = exported.as_mut() {
                        known.remove(&key);
                    }
                    removed += 1;
                }
            }
        }
        Ok(removed)
    }
}

/// Debug builds only: while the file `REPOD_TEST_PAUSE_BEFORE_GENERATION`
/// names exists (at most 60 s), a publish waits between storing its
/// generation's files and inserting its row, so that a test can kill a
/// node, or cut its lock, in the middle of a publish.
async fn test_pause() {
    if !cfg!(debug_assertions) {
        return;
    }
    let Some(trigger) = std::env::var_os("REPOD_TEST_PAUSE_BEFORE_GENERATION") else {
        return;
    };
    let trigger = std::path::Path::new(&trigger);
    if trigger.exists() {
        tracing::warn!("test hook: pausing between a generation's files and its row");
        let until = tokio::time::Instant::now() + std::time::Duration::from_secs(60);
        while trigger.exists() && tokio::time::Instant::now() < until {
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    }
}

fn rand_u64() -> u64 {
    let mut bytes = [0u8; 8];
    getrandom::fill(&mut bytes).expect("OS random source");
    u64::from_le_bytes(bytes)
}

#[cfg(test)]
mod tests {
    use super::kept;

    #[test]
    fn the_latest_generation_and_recently_superseded_ones_are_kept() {
        // (generation, created_at), newest first; now = 1000, keep 600 s.
        let rows = [(5, 990), (4, 900), (3, 500), (2, 300), (1, 100)];
        // 4 was superseded at 990 (kept), 3 at 900 (kept), 2 at 500 (kept:
        // 500 s ago), 1 at 300 (700 s ago: gone).
        assert_eq!(kept(&rows, 1000, 600, 8), [5, 4, 3, 2]);
        assert_eq!(kept(&rows, 1000, 600, 1), [5, 4]);
        assert_eq!(kept(&rows, 5000, 600, 8), [5]);
        assert_eq!(kept(&[], 0, 600, 8), Vec::<i64>::new());
    }
}
