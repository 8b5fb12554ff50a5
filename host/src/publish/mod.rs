//! Publishing: the database's view of a distribution becomes a signed tree
//! under `/repos/`.
//!
//! - `compress`: index bodies cut in content-defined chunks, compressed
//!   piece by piece with a cache, so a republish recompresses what changed.
//! - `build`: one publish of one distribution (indexes, top-level files,
//!   signatures, pool links, the atomic switch).
//! - `tree`: the filesystem side (staging, `RENAME_EXCHANGE`, retention).
//!
//! Scheduling lives here. Every committed change marks its distribution;
//! one worker publishes marked distributions one at a time, after a short
//! pause that lets a burst of uploads land in one publish. A forced publish
//! (`POST .../publish`) skips the pause and its caller waits for a publish
//! that started after its request, so it sees every change committed before.

mod build;
mod compress;
mod tree;

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{Notify, watch};

pub use build::Report;
use build::{Paths, Snapshot, StoredPackage};
use compress::PieceCache;
pub use tree::RETAIN_SECS;
use tree::State;

use crate::blobs::BlobStore;
use crate::db::Db;
use crate::plugins::{PluginError, PluginHost};
use crate::signing::SigningKey;

/// How long the worker waits after a change before publishing, to coalesce
/// a burst. Change to live tree stays well under 2 s.
const SETTLE: Duration = Duration::from_millis(250);

#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    #[error("no distribution {0}; GET /api/v1/distributions lists the available ones")]
    UnknownDistribution(String),
    #[error(transparent)]
    Plugin(#[from] PluginError),
    /// The plugin's layout cannot be published safely.
    #[error("cannot publish this layout: {0}")]
    Layout(String),
    #[error("signing failed: {0}")]
    Signing(#[from] crate::signing::SigningError),
    #[error("storage error: {0}")]
    Io(#[from] std::io::Error),
    #[error("database error: {0}")]
    Db(#[from] sqlx::Error),
    #[error("{0}")]
    Busy(String),
    /// The publish that covered this request failed; the message says why.
    #[error("{0}")]
    Failed(String),
}

#[derive(Default)]
struct Slot {
    /// Sequence number of the latest change or request.
    requested: u64,
    /// The `requested` value the latest finished publish started from.
    published: u64,
    urgent: bool,
    /// The first change not yet taken by a publish: the pause counts from
    /// it, so a steady stream of uploads still publishes every [`SETTLE`].
    dirty_since: Option<std::time::Instant>,
    /// Outcome of the latest publish and the `requested` value it covered.
    last: Option<(u64, Result<Report, String>)>,
}

#[derive(Default)]
struct Queue {
    seq: u64,
    slots: HashMap<String, Slot>,
}

/// What a publish needs besides the queue; owned by the worker.
struct Worker {
    db: Db,
    plugins: Arc<PluginHost>,
    key: Arc<SigningKey>,
    blobs: BlobStore,
    /// How long superseded and retired files stay (`[publish]` config).
    keep_secs: i64,
    paths: Paths,
    caches: HashMap<String, PieceCache>,
    states: HashMap<String, State>,
    known: HashMap<String, Known>,
}

pub struct Publisher {
    /// Held for the daemon's lifetime: one writer of the tree per data dir.
    _lock: std::fs::File,
    queue: Mutex<Queue>,
    wake: Notify,
    /// Bumped after every publish attempt; waiters re-check their slot.
    done: watch::Sender<u64>,
}

impl Publisher {
    /// Starts the worker. Every distribution is published once at start, so
    /// the tree matches the database whatever happened while it was down.
    pub fn start(
        db: Db,
        plugins: Arc<PluginHost>,
        key: Arc<SigningKey>,
        blobs: BlobStore,
        data: &Path,
        keep_superseded: std::time::Duration,
    ) -> Result<Arc<Publisher>, PublishError> {
        let lock = lock(data)?;
        let publisher = Arc::new(Publisher {
            _lock: lock,
            queue: Mutex::new(Queue::default()),
            wake: Notify::new(),
            done: watch::Sender::new(0),
        });
        let worker = Worker::new(db, plugins, key, blobs, data, keep_superseded);
        publisher.changed_all(&worker.plugins);
        tokio::spawn(run(publisher.clone(), worker));
        Ok(publisher)
    }

    /// Marks `dist` as changed: it is published within [`SETTLE`] plus the
    /// time a publish takes.
    pub fn changed(&self, dist: &str) {
        let mut queue = self.queue.lock().expect("publish queue");
        queue.seq += 1;
        let seq = queue.seq;
        let slot = queue.slots.entry(dist.to_owned()).or_default();
        slot.requested = seq;
        slot.dirty_since.get_or_insert_with(std::time::Instant::now);
        drop(queue);
        self.wake.notify_one();
    }

    /// Marks every distribution the plugins offer (after a plugin change).
    pub fn changed_all(&self, plugins: &PluginHost) {
        for (_, dist) in plugins.registry().distributions() {
            self.changed(&dist.id);
        }
    }

    /// Publishes `dist` now and returns once a publish that started after
    /// this call has finished.
    pub async fn publish(&self, dist: &str) -> Result<Report, PublishError> {
        let mut done = self.done.subscribe();
        let target = {
            let mut queue = self.queue.lock().expect("publish queue");
            queue.seq += 1;
            let seq = queue.seq;
            let slot = queue.slots.entry(dist.to_owned()).or_default();
            slot.requested = seq;
            slot.urgent = true;
            seq
        };
        self.wake.notify_one();
        loop {
            {
                let queue = self.queue.lock().expect("publish queue");
                if let Some((covered, result)) = queue.slots.get(dist).and_then(|s| s.last.as_ref())
                    && *covered >= target
                {
                    return result.clone().map_err(PublishError::Failed);
                }
            }
            if done.changed().await.is_err() {
                return Err(PublishError::Failed("the publisher stopped".into()));
            }
        }
    }

    /// The next distribution to publish and how long to let it settle.
    fn next(&self) -> Option<(String, Duration)> {
        let queue = self.queue.lock().expect("publish queue");
        let pending = queue
            .slots
            .iter()
            .filter(|(_, s)| s.requested > s.published);
        let mut best: Option<(&String, &Slot)> = None;
        for (dist, slot) in pending {
            best = match best {
                Some((_, b)) if b.urgent >= slot.urgent => best,
                _ => Some((dist, slot)),
            };
        }
        best.map(|(d, s)| {
            let settle = match (s.urgent, s.dirty_since) {
                (false, Some(at)) => SETTLE.saturating_sub(at.elapsed()),
                _ => Duration::ZERO,
            };
            (d.clone(), settle)
        })
    }
}

async fn run(publisher: Arc<Publisher>, mut worker: Worker) {
    loop {
        let Some((dist, settle)) = publisher.next() else {
            publisher.wake.notified().await;
            continue;
        };
        if !settle.is_zero() {
            // Let a burst land; an urgent request cuts the wait short.
            let _ = tokio::time::timeout(settle, publisher.wake.notified()).await;
            continue;
        }
        let target = {
            let mut queue = publisher.queue.lock().expect("publish queue");
            let slot = queue.slots.entry(dist.clone()).or_default();
            slot.urgent = false;
            slot.dirty_since = None;
            slot.requested
        };
        let result = worker.publish(&dist).await;
        match &result {
            Ok(report) => tracing::info!(
                distribution = dist,
                packages = report.packages,
                files = report.files,
                reused = report.pieces_reused,
                compressed = report.pieces_compressed,
                ms = format!("{:.1}", report.duration_ms),
                "published"
            ),
            Err(e) => tracing::error!(distribution = dist, "publish failed: {e}"),
        }
        {
            let mut queue = publisher.queue.lock().expect("publish queue");
            let slot = queue.slots.entry(dist.clone()).or_default();
            slot.published = target;
            slot.last = Some((target, result.map_err(|e| e.to_string())));
        }
        publisher.done.send_modify(|n| *n += 1);
    }
}

/// Takes the data directory's publish lock, or says who holds it.
fn lock(data: &Path) -> Result<std::fs::File, PublishError> {
    let dir = data.join("publish");
    std::fs::create_dir_all(&dir)?;
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(dir.join("lock"))?;
    rustix::fs::flock(&file, rustix::fs::FlockOperation::NonBlockingLockExclusive).map_err(
        |_| {
            PublishError::Busy(format!(
                "another repod process publishes from {} (a running daemon?); stop it, or ask it \
             with POST /api/v1/distributions/{{id}}/publish",
                data.display()
            ))
        },
    )?;
    Ok(file)
}

/// Publishes `dists` once, outside the daemon (`repod publish`): the same
/// code with cold caches, so it also measures a full publish.
pub async fn publish_offline(
    db: Db,
    plugins: Arc<PluginHost>,
    key: Arc<SigningKey>,
    blobs: BlobStore,
    data: &Path,
    keep_superseded: std::time::Duration,
    dists: &[String],
) -> Result<Vec<Report>, PublishError> {
    let _lock = lock(data)?;
    let mut worker = Worker::new(db, plugins, key, blobs, data, keep_superseded);
    let mut reports = Vec::new();
    for dist in dists {
        reports.push(worker.publish(dist).await?);
    }
    Ok(reports)
}

impl Worker {
    /// The pool paths `dist` would delete now that another distribution's
    /// tree still holds: the pool is shared, and a distribution that listed
    /// a file keeps it until its own retention time is over.
    async fn held_elsewhere(
        &self,
        dist: &str,
        state: &State,
        snapshot: &Snapshot,
        now: i64,
    ) -> std::collections::HashSet<String> {
        let due: Vec<&String> = snapshot
            .orphaned_pool
            .iter()
            .filter(|p| {
                let since = state.retired_pool.get(*p).copied().unwrap_or(now);
                now.saturating_sub(since) >= self.keep_secs
            })
            .collect();
        let mut held = std::collections::HashSet::new();
        if due.is_empty() {
            return held;
        }
        // Every distribution that ever published has a state file; those
        // published by this process are also in memory, and current.
        let others: Vec<String> = std::fs::read_dir(&self.paths.state)
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|e| {
                let name = e.file_name().to_string_lossy().into_owned();
                name.strip_suffix(".json").map(str::to_owned)
            })
            .filter(|other| other != dist)
            .collect();
        for other in others {
            let loaded;
            let state = match self.states.get(&other) {
                Some(state) => state,
                None => {
                    let path = self.paths.state_file(&other);
                    loaded = tokio::task::spawn_blocking(move || State::load(&path))
                        .await
                        .expect("state load panicked");
                    &loaded
                }
            };
            held.extend(
                due.iter()
                    .filter(|p| {
                        state.pool.contains_key(**p) || state.retired_pool.contains_key(**p)
                    })
                    .map(|p| (*p).clone()),
            );
        }
        held
    }

    fn new(
        db: Db,
        plugins: Arc<PluginHost>,
        key: Arc<SigningKey>,
        blobs: BlobStore,
        data: &Path,
        keep_superseded: std::time::Duration,
    ) -> Worker {
        Worker {
            db,
            plugins,
            key,
            blobs,
            keep_secs: i64::try_from(keep_superseded.as_secs()).unwrap_or(i64::MAX),
            paths: Paths::under(data),
            caches: HashMap::new(),
            states: HashMap::new(),
            known: HashMap::new(),
        }
    }

    async fn publish(&mut self, dist: &str) -> Result<Report, PublishError> {
        if self.plugins.registry().distribution(dist).is_none() {
            return Err(PublishError::UnknownDistribution(dist.to_owned()));
        }
        let first = !self.states.contains_key(dist);
        let mut state = match self.states.remove(dist) {
            Some(state) => state,
            None => {
                let path = self.paths.state_file(dist);
                tokio::task::spawn_blocking(move || State::load(&path))
                    .await
                    .expect("state load panicked")
            }
        };
        let known = self.known.entry(dist.to_owned()).or_default();
        let mut snapshot = match snapshot(&self.db, dist, &state, known).await {
            Ok(s) => s,
            Err(e) => {
                self.states.insert(dist.to_owned(), state);
                return Err(e);
            }
        };
        let now = crate::db::now();
        snapshot.held_elsewhere = self.held_elsewhere(dist, &state, &snapshot, now).await;
        let mut cache = self.caches.remove(dist).unwrap_or_default();
        let (key, blobs) = (self.key.clone(), self.blobs.clone());
        let paths = Paths {
            repos: self.paths.repos.clone(),
            staging: self.paths.staging.clone(),
            state: self.paths.state.clone(),
        };
        let keep_secs = self.keep_secs;
        let outcome = self
            .plugins
            .blocking(move |registry| {
                // A bug here must not take the worker (and every later
                // publish) down: the panic becomes this publish's error.
                std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || {
                    let result = build::build(
                        snapshot,
                        &registry,
                        &key,
                        &blobs,
                        &paths,
                        &mut cache,
                        &mut state,
                        build::Options {
                            now,
                            keep_secs,
                            verify_pool: first,
                        },
                    );
                    (result, cache, state)
                }))
            })
            .await;
        match outcome {
            Ok((result, cache, state)) => {
                self.caches.insert(dist.to_owned(), cache);
                self.states.insert(dist.to_owned(), state);
                result
            }
            // Cache and state went with the panic; both are rebuilt (the
            // state from its file) on the next publish.
            Err(_) => Err(PublishError::Failed(format!(
                "internal error: publishing {dist} panicked; the daemon log has the details"
            ))),
        }
    }
}

/// Packages of one distribution the worker has read before, by id.
type Known = HashMap<String, Arc<StoredPackage>>;

/// Above this many new packages one query for the whole distribution beats
/// one query per batch of ids.
const BULK_READ: usize = 2000;
/// Ids per `IN (...)` query, well under SQLite's 32766 bound variables.
const ID_BATCH: usize = 500;

/// Reads what `dist` publishes: the ids of its packages, and the rows of
/// those not in `known` (which is updated). Pool paths it published before
/// and no longer has are orphaned unless another package still names them.
async fn snapshot(
    db: &Db,
    dist: &str,
    state: &State,
    known: &mut Known,
) -> Result<Snapshot, PublishError> {
    let started = std::time::Instant::now();
    let mut fresh: HashMap<String, StoredPackage> = HashMap::new();
    let ids: std::collections::HashSet<String> = if known.is_empty() {
        // The first read of a distribution (at start, or `repod publish`)
        // takes every row in one query, which also gives the ids.
        read_rows(db, &mut fresh, "distribution = $1", &[dist]).await?;
        fresh.keys().cloned().collect()
    } else {
        let ids: Vec<(String,)> = sqlx::query_as("SELECT id FROM packages WHERE distribution = $1")
            .bind(dist)
            .fetch_all(db)
            .await?;
        let ids: std::collections::HashSet<String> = ids.into_iter().map(|(id,)| id).collect();
        known.retain(|id, _| ids.contains(id));
        let new: Vec<&String> = ids.iter().filter(|id| !known.contains_key(*id)).collect();
        if new.len() > BULK_READ {
            read_rows(db, &mut fresh, "distribution = $1", &[dist]).await?;
            fresh.retain(|id, _| ids.contains(id) && !known.contains_key(id));
        } else {
            for batch in new.chunks(ID_BATCH) {
                let filter = format!("id IN ({})", placeholders(batch.len()));
                let batch: Vec<&str> = batch.iter().map(|s| s.as_str()).collect();
                read_rows(db, &mut fresh, &filter, &batch).await?;
            }
        }
        ids
    };
    for (id, package) in fresh {
        known.insert(id, Arc::new(package));
    }
    let packages: Vec<(String, Arc<StoredPackage>)> = known
        .iter()
        .filter(|(id, _)| ids.contains(*id))
        .map(|(id, p)| (id.clone(), p.clone()))
        .collect();

    let current: std::collections::HashSet<&str> = packages
        .iter()
        .flat_map(|(_, p)| p.pool_paths.iter().map(String::as_str))
        .collect();
    let gone: Vec<&str> = state
        .pool_paths()
        .map(String::as_str)
        .filter(|p| !current.contains(p))
        .collect();
    let mut used = std::collections::HashSet::new();
    for batch in gone.chunks(ID_BATCH) {
        let sql = format!(
            "SELECT DISTINCT path FROM package_paths WHERE path IN ({})",
            placeholders(batch.len())
        );
        let mut query = sqlx::query_as::<_, (String,)>(&sql);
        for path in batch {
            query = query.bind(*path);
        }
        used.extend(query.fetch_all(db).await?.into_iter().map(|(p,)| p));
    }
    Ok(Snapshot {
        dist: dist.to_owned(),
        packages,
        orphaned_pool: gone
            .into_iter()
            .filter(|p| !used.contains(*p))
            .map(str::to_owned)
            .collect(),
        held_elsewhere: Default::default(),
        read_ms: started.elapsed().as_secs_f64() * 1000.0,
    })
}

/// `$1, $2, .. $n`: the bind marks of an `IN (..)` list of `n` values.
fn placeholders(n: usize) -> String {
    let marks: Vec<String> = (1..=n).map(|i| format!("${i}")).collect();
    marks.join(", ")
}

/// Reads the blob, pool paths and index entries of the packages matching
/// `filter` (a condition on `packages`, with `$1`.. bound to `binds`) into
/// `out`: one row per package (migration 0004 says why).
async fn read_rows(
    db: &Db,
    out: &mut HashMap<String, StoredPackage>,
    filter: &str,
    binds: &[&str],
) -> Result<(), PublishError> {
    let sql = format!("SELECT id, sha256, rendered FROM packages WHERE {filter}");
    let mut query = sqlx::query_as::<_, (String, String, String)>(&sql);
    for b in binds {
        query = query.bind(*b);
    }
    for (id, sha256, rendered) in query.fetch_all(db).await? {
        let rendered = crate::catalog::decode_rendered(&rendered).map_err(|e| {
            PublishError::Failed(format!(
                "package {id} has an unreadable `rendered` column ({e}); re-upload it"
            ))
        })?;
        out.insert(
            id,
            StoredPackage {
                sha256,
                pool_paths: rendered.pool_paths,
                entries: rendered.entries,
            },
        );
    }
    Ok(())
}
