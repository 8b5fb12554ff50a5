//! Publishing: a distribution version becomes a signed tree under
//! `/repos/`, and the tree follows the versions as they come and go.
//!
//! - `compress`: index bodies cut in content-defined chunks, compressed
//!   piece by piece with a cache, so a republish recompresses what changed.
//! - `build`: one publish of one version (indexes, top-level files,
//!   signatures) into staging, then either live (pool links, the atomic
//!   switch) or pinned (a tree of its own under `versions/<dist>/<n>/`).
//! - `tree`: the filesystem side (staging, `RENAME_EXCHANGE`, superseded
//!   files, checking a live tree against what was published).
//!
//! Scheduling lives here. Every committed change marks its distribution;
//! one worker publishes marked distributions one at a time, after a short
//! pause that lets a burst of uploads land in one publish. A forced publish
//! (`POST .../publish`) skips the pause and its caller waits for a publish
//! that started after its request, so it sees every change committed before.
//! The same worker builds pinned trees on demand, retires the trees of
//! distributions no plugin declares any more, and runs retention after each
//! publish and every few minutes: versions it no longer keeps go, with the
//! package files and blobs only they listed. At start it checks every live
//! tree against its state file and rebuilds those that are missing, behind
//! the database, or not what was published.

mod build;
mod compress;
mod tree;

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::{Notify, oneshot, watch};

pub use build::{Collected, Report};
use build::{Paths, Snapshot, StoredPackage};
use compress::PieceCache;
use tree::State;
pub use tree::{PINNED_TOP, RETAIN_SECS};

use crate::blobs::BlobStore;
use crate::catalog::WriteLock;
use crate::catalog::versions::{self, Retention};
use crate::db::Db;
use crate::plugins::{PluginError, PluginHost};
use crate::signing::SigningKey;

/// How long the worker waits after a change before publishing, to coalesce
/// a burst. Change to live tree stays well under 2 s.
const SETTLE: Duration = Duration::from_millis(250);

/// How often an idle worker runs retention over every distribution (a
/// version also ages out without any publish).
const SWEEP: Duration = Duration::from_secs(300);

#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    #[error("no distribution {0}; GET /api/v1/distributions lists the available ones")]
    UnknownDistribution(String),
    /// A version that does not exist or that retention collected.
    #[error("{0}")]
    NotKept(String),
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

/// Version retention (config `[versions]`): a default and per-distribution
/// overrides.
#[derive(Debug, Clone, Default)]
pub struct RetentionConfig {
    pub default: Retention,
    pub distributions: BTreeMap<String, Retention>,
}

impl RetentionConfig {
    pub fn of(&self, dist: &str) -> Retention {
        self.distributions
            .get(dist)
            .copied()
            .unwrap_or(self.default)
    }
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
    dirty_since: Option<Instant>,
    /// Outcome of the latest publish and the `requested` value it covered.
    last: Option<(u64, Result<Report, String>)>,
}

/// Work other than publishing a distribution's latest version.
enum Task {
    /// Build the tree of one kept version.
    Pin {
        dist: String,
        number: i64,
        reply: oneshot::Sender<Result<PathBuf, PublishError>>,
    },
    /// Move a distribution's trees out of `/repos/`.
    Retire {
        dist: String,
        reply: oneshot::Sender<Result<(), PublishError>>,
    },
    /// Its packages were rendered again: forget what the worker kept, and
    /// the pinned trees rendered the old way.
    Forget { dist: String },
    /// Publish it next from scratch, every pool link checked (init).
    Rebuild { dist: String },
}

#[derive(Default)]
struct Queue {
    seq: u64,
    slots: HashMap<String, Slot>,
    tasks: VecDeque<Task>,
}

/// What a publish needs besides the queue; owned by the worker.
struct Worker {
    db: Db,
    plugins: Arc<PluginHost>,
    key: Arc<SigningKey>,
    blobs: BlobStore,
    writes: WriteLock,
    /// How long superseded files stay, and superseded versions at least
    /// (`[publish]` config).
    keep_secs: i64,
    retention: RetentionConfig,
    paths: Paths,
    caches: HashMap<String, PieceCache>,
    states: HashMap<String, State>,
    known: HashMap<String, Known>,
    /// Distributions whose next publish starts from scratch.
    cold: HashSet<String>,
}

pub struct Publisher {
    /// Held for the daemon's lifetime: one writer of the tree per data dir.
    _lock: std::fs::File,
    queue: Mutex<Queue>,
    wake: Notify,
    /// Bumped after every publish attempt; waiters re-check their slot.
    done: watch::Sender<u64>,
    /// The version each live tree shows, once published or checked.
    shown: Mutex<HashMap<String, i64>>,
    db: Db,
    paths: Paths,
}

/// Everything the publisher is started with.
pub struct Setup {
    pub db: Db,
    pub plugins: Arc<PluginHost>,
    pub key: Arc<SigningKey>,
    pub blobs: BlobStore,
    pub writes: WriteLock,
    pub keep_superseded: Duration,
    pub retention: RetentionConfig,
}

impl Publisher {
    /// Starts the worker. It first checks every live tree against what was
    /// published and the database's latest versions, and rebuilds the ones
    /// that disagree, so the tree matches the database whatever happened
    /// while the daemon was down.
    pub fn start(setup: Setup, data: &Path) -> Result<Arc<Publisher>, PublishError> {
        let lock = lock(data)?;
        let publisher = Arc::new(Publisher {
            _lock: lock,
            queue: Mutex::new(Queue::default()),
            wake: Notify::new(),
            done: watch::Sender::new(0),
            shown: Mutex::new(HashMap::new()),
            db: setup.db.clone(),
            paths: Paths::under(data),
        });
        let worker = Worker::new(setup, data);
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
        slot.dirty_since.get_or_insert_with(Instant::now);
        drop(queue);
        self.wake.notify_one();
    }

    /// Marks every distribution the plugins offer (after a plugin change).
    pub fn changed_all(&self, plugins: &PluginHost) {
        for (_, dist) in plugins.registry().distributions() {
            self.changed(&dist.id);
        }
    }

    /// `dist`'s packages were prepared again: the worker drops what it
    /// kept of them and the pinned trees rendered before, and republishes.
    pub fn changed_rendering(&self, dist: &str) {
        self.task(Task::Forget {
            dist: dist.to_owned(),
        });
        self.changed(dist);
    }

    fn task(&self, task: Task) {
        self.queue
            .lock()
            .expect("publish queue")
            .tasks
            .push_back(task);
        self.wake.notify_one();
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

    /// Rebuilds every distribution's live tree from the database and the
    /// blob store (`POST /distributions/init`): caches dropped, every file
    /// written anew, every pool link checked, pinned trees deleted (they
    /// are built again when asked for), the public key files rewritten.
    pub async fn rebuild_all(
        &self,
        plugins: &PluginHost,
    ) -> Vec<(String, Result<Report, PublishError>)> {
        let dists: Vec<String> = plugins
            .registry()
            .distributions()
            .map(|(_, d)| d.id.clone())
            .collect();
        for dist in &dists {
            self.task(Task::Rebuild { dist: dist.clone() });
        }
        let mut out = Vec::new();
        for dist in dists {
            let result = self.publish(&dist).await;
            out.push((dist, result));
        }
        out
    }

    /// The version `dist`'s live tree shows, if it was published or checked
    /// since start.
    pub fn shown(&self, dist: &str) -> Option<i64> {
        self.shown.lock().expect("shown").get(dist).copied()
    }

    /// Whether `dist`'s live tree shows its latest version.
    pub async fn is_current(&self, dist: &str) -> Result<bool, sqlx::Error> {
        let latest = versions::latest(&self.db, dist).await?;
        Ok(self.shown(dist) == Some(latest))
    }

    /// The directory of version `number`'s tree, built first if needed.
    /// Fails with [`PublishError::NotKept`] for a version that does not
    /// exist or was collected.
    pub async fn pinned(&self, dist: &str, number: i64) -> Result<PathBuf, PublishError> {
        let dir = self.paths.pinned(dist, number);
        if dir.is_dir() {
            return Ok(dir);
        }
        let (reply, answer) = oneshot::channel();
        self.task(Task::Pin {
            dist: dist.to_owned(),
            number,
            reply,
        });
        answer
            .await
            .unwrap_or_else(|_| Err(PublishError::Failed("the publisher stopped".into())))
    }

    /// Whether `path` is a package file version `number` of `dist` lists
    /// (a pinned tree serves those from the shared pool).
    pub async fn lists_pool_path(
        &self,
        dist: &str,
        number: i64,
        path: &str,
    ) -> Result<bool, sqlx::Error> {
        versions::lists_pool_path(&self.db, dist, number, path).await
    }

    /// Takes `dist`'s trees out of `/repos/` (kept aside on disk), with the
    /// package files no served distribution lists.
    pub async fn retire(&self, dist: &str) -> Result<(), PublishError> {
        let (reply, answer) = oneshot::channel();
        self.task(Task::Retire {
            dist: dist.to_owned(),
            reply,
        });
        answer
            .await
            .unwrap_or_else(|_| Err(PublishError::Failed("the publisher stopped".into())))
    }

    fn next_task(&self) -> Option<Task> {
        self.queue.lock().expect("publish queue").tasks.pop_front()
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
    worker.startup(&publisher).await;
    let mut last_sweep = Instant::now();
    loop {
        if let Some(task) = publisher.next_task() {
            worker.task(task, &publisher).await;
            continue;
        }
        let Some((dist, settle)) = publisher.next() else {
            let idle = SWEEP.saturating_sub(last_sweep.elapsed());
            if idle.is_zero() {
                worker.sweep().await;
                last_sweep = Instant::now();
            } else {
                let _ = tokio::time::timeout(idle, publisher.wake.notified()).await;
            }
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
        let mut result = worker.publish(&dist).await;
        match &mut result {
            Ok(report) => {
                publisher
                    .shown
                    .lock()
                    .expect("shown")
                    .insert(dist.clone(), report.version);
                report.collected = worker.collect(&dist).await;
                worker.empty_trash().await;
                tracing::info!(
                    distribution = dist,
                    version = report.version,
                    packages = report.packages,
                    files = report.files,
                    reused = report.pieces_reused,
                    compressed = report.pieces_compressed,
                    ms = format!("{:.1}", report.duration_ms),
                    "published"
                );
            }
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
    setup: Setup,
    data: &Path,
    dists: &[String],
) -> Result<Vec<Report>, PublishError> {
    let _lock = lock(data)?;
    let mut worker = Worker::new(setup, data);
    let mut reports = Vec::new();
    for dist in dists {
        reports.push(worker.publish(dist).await?);
    }
    Ok(reports)
}

impl Worker {
    fn new(setup: Setup, data: &Path) -> Worker {
        Worker {
            db: setup.db,
            plugins: setup.plugins,
            key: setup.key,
            blobs: setup.blobs,
            writes: setup.writes,
            keep_secs: i64::try_from(setup.keep_superseded.as_secs()).unwrap_or(i64::MAX),
            retention: setup.retention,
            paths: Paths::under(data),
            caches: HashMap::new(),
            states: HashMap::new(),
            known: HashMap::new(),
            cold: HashSet::new(),
        }
    }

    fn dists(&self) -> Vec<String> {
        self.plugins
            .registry()
            .distributions()
            .map(|(_, d)| d.id.clone())
            .collect()
    }

    /// At start: finish what a crash interrupted (pool files whose rows
    /// retention deleted), check each live tree, queue a rebuild of those
    /// that fail, and run retention.
    async fn startup(&mut self, publisher: &Publisher) {
        self.empty_trash().await;
        for dist in self.dists() {
            let latest = match versions::latest(&self.db, &dist).await {
                Ok(n) => n,
                Err(e) => {
                    tracing::error!(distribution = dist, "cannot read its versions: {e}");
                    publisher.changed(&dist);
                    continue;
                }
            };
            let path = self.paths.state_file(&dist);
            let repos = self.paths.repos.clone();
            let blobs = self.blobs.clone();
            let (state, problem) = tokio::task::spawn_blocking(move || {
                let state = State::load(&path);
                let problem = if state.units.is_empty() || state.files.is_empty() {
                    Some("it was never published".to_owned())
                } else if state.version != latest {
                    Some(format!("it shows version {} of {latest}", state.version))
                } else {
                    tree::check(&repos, &state, |sha| blobs.path(sha))
                };
                (state, problem)
            })
            .await
            .expect("tree check panicked");
            if !state.retired_pool.is_empty() {
                self.unlink_unnamed(state.retired_pool.keys().cloned().collect())
                    .await;
            }
            match problem {
                None => {
                    publisher
                        .shown
                        .lock()
                        .expect("shown")
                        .insert(dist.clone(), state.version);
                    self.states.insert(dist, state);
                }
                Some(why) => {
                    tracing::info!(distribution = dist, "publishing its tree: {why}");
                    publisher.changed(&dist);
                }
            }
        }
        self.sweep().await;
    }

    async fn task(&mut self, task: Task, publisher: &Publisher) {
        match task {
            Task::Pin {
                dist,
                number,
                reply,
            } => {
                let _ = reply.send(self.pin(&dist, number).await);
            }
            Task::Retire { dist, reply } => {
                publisher.shown.lock().expect("shown").remove(&dist);
                let _ = reply.send(self.retire(&dist).await);
            }
            Task::Forget { dist } => {
                // Pool paths the new rendering no longer names are in the
                // trash: emptied after the next publish, once the live tree
                // no longer lists them.
                self.known.remove(&dist);
                if let Err(e) = tree::remove_tree(&self.paths.repos.join(PINNED_TOP).join(&dist)) {
                    tracing::error!(distribution = dist, "cannot delete its pinned trees: {e}");
                }
            }
            Task::Rebuild { dist } => {
                if let Err(e) = self.key.publish(&self.paths.repos) {
                    tracing::error!("cannot write the public key files: {e}");
                }
                if let Err(e) = tree::remove_tree(&self.paths.repos.join(PINNED_TOP).join(&dist)) {
                    tracing::error!(distribution = dist, "cannot delete its pinned trees: {e}");
                }
                self.cold.insert(dist);
            }
        }
    }

    /// Publishes `dist`'s latest version as its live tree.
    async fn publish(&mut self, dist: &str) -> Result<Report, PublishError> {
        if self.plugins.registry().distribution(dist).is_none() {
            return Err(PublishError::UnknownDistribution(dist.to_owned()));
        }
        if self.cold.remove(dist) {
            self.known.remove(dist);
            self.caches.remove(dist);
            self.states.remove(dist);
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
        let snapshot = match latest_snapshot(&self.db, dist, known).await {
            Ok(s) => s,
            Err(e) => {
                self.states.insert(dist.to_owned(), state);
                return Err(e);
            }
        };
        let mut cache = self.caches.remove(dist).unwrap_or_default();
        let (key, blobs) = (self.key.clone(), self.blobs.clone());
        let paths = self.paths.clone();
        let keep_secs = self.keep_secs;
        let now = crate::db::now();
        let outcome = self
            .plugins
            .blocking(move |registry| {
                // A bug here must not take the worker (and every later
                // publish) down: the panic becomes this publish's error.
                std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || {
                    let result = build::render(&snapshot, &registry, &key, &paths, &mut cache, now)
                        .and_then(|built| {
                            built.go_live(&paths, &blobs, &mut state, keep_secs, first)
                        });
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

    /// Builds the tree of version `number` of `dist` unless it exists.
    async fn pin(&mut self, dist: &str, number: i64) -> Result<PathBuf, PublishError> {
        let dir = self.paths.pinned(dist, number);
        if dir.is_dir() {
            return Ok(dir);
        }
        if self.plugins.registry().distribution(dist).is_none() {
            return Err(PublishError::UnknownDistribution(dist.to_owned()));
        }
        if versions::get(&self.db, dist, number).await?.is_none() {
            let kept = versions::list(&self.db, dist).await?;
            return Err(PublishError::NotKept(match (kept.last(), kept.first()) {
                (Some(oldest), Some(newest)) => format!(
                    "{dist} has no version {number}: it keeps versions {} to {}",
                    oldest.number, newest.number
                ),
                _ => format!("{dist} has no versions yet"),
            }));
        }
        let snapshot = match self.known.get(dist).filter(|k| k.version == number) {
            Some(known) => Snapshot {
                dist: dist.to_owned(),
                version: number,
                packages: known
                    .packages
                    .iter()
                    .map(|(id, p)| (id.clone(), p.clone()))
                    .collect(),
                read_ms: 0.0,
            },
            None => {
                let mut known = Known::default();
                read_version(&self.db, dist, number, &mut known).await?
            }
        };
        let (key, blobs) = (self.key.clone(), self.blobs.clone());
        let paths = self.paths.clone();
        let now = crate::db::now();
        let report = self
            .plugins
            .blocking(move |registry| {
                std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || {
                    let mut cache = PieceCache::default();
                    build::render(&snapshot, &registry, &key, &paths, &mut cache, now)
                        .and_then(|built| built.pin(&paths, &blobs))
                }))
            })
            .await
            .unwrap_or_else(|_| {
                Err(PublishError::Failed(format!(
                    "internal error: building version {number} of {dist} panicked"
                )))
            })?;
        tracing::info!(
            distribution = dist,
            version = number,
            packages = report.packages,
            ms = format!("{:.1}", report.duration_ms),
            "built a pinned tree"
        );
        Ok(dir)
    }

    /// Moves `dist`'s live and pinned trees to `<data>/publish/retired/`,
    /// and unlinks the package files no served distribution lists.
    async fn retire(&mut self, dist: &str) -> Result<(), PublishError> {
        let state = match self.states.remove(dist) {
            Some(state) => state,
            None => State::load(&self.paths.state_file(dist)),
        };
        self.known.remove(dist);
        self.caches.remove(dist);
        let aside = self
            .paths
            .retired
            .join(format!("{dist}-{}", crate::db::now()));
        for unit in &state.units {
            tree::move_aside(&self.paths.repos.join(unit), &aside.join(unit))?;
        }
        tree::move_aside(
            &self.paths.repos.join(PINNED_TOP).join(dist),
            &aside.join(PINNED_TOP),
        )?;
        let _writes = self.writes.lock().await;
        let mut unlinked = 0;
        for path in state.pool.keys() {
            let served: Option<(String,)> = sqlx::query_as(
                "SELECT pp.package_id FROM package_paths pp JOIN packages p ON p.id = pp.package_id \
                 JOIN distributions d ON d.id = p.distribution \
                 WHERE pp.path = $1 AND d.retired_at IS NULL LIMIT 1",
            )
            .bind(path)
            .fetch_optional(&self.db)
            .await?;
            if served.is_none() {
                tree::unlink_pool_file(&self.paths.repos, path)?;
                unlinked += 1;
            }
        }
        match std::fs::remove_file(self.paths.state_file(dist)) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e.into()),
            _ => {}
        }
        tracing::info!(
            distribution = dist,
            kept_in = %aside.display(),
            package_files_unlinked = unlinked,
            "retired its tree from /repos/"
        );
        Ok(())
    }

    /// Retention for `dist`: versions it no longer keeps, then the rows,
    /// pool files, blobs and pinned trees only they had. Never the version
    /// the live tree shows.
    async fn collect(&mut self, dist: &str) -> Collected {
        let live = self.states.get(dist).map(|s| s.version);
        let retention = self.retention.of(dist);
        let window_ms = self.keep_secs.saturating_mul(1000);
        let _writes = self.writes.lock().await;
        let collected = async {
            let mut tx = crate::db::write(&self.db).await?;
            let c = versions::collect(&mut tx, dist, retention, window_ms, live).await?;
            tx.commit().await?;
            Ok::<_, sqlx::Error>(c)
        }
        .await;
        let collected = match collected {
            Ok(c) => c,
            Err(e) => {
                tracing::error!(distribution = dist, "retention failed: {e}");
                return Collected::default();
            }
        };
        for number in &collected.versions {
            if let Err(e) = tree::remove_tree(&self.paths.pinned(dist, *number)) {
                tracing::error!(
                    distribution = dist,
                    version = number,
                    "cannot delete its pinned tree: {e}"
                );
            }
        }
        let mut pool_files = 0;
        for path in &collected.pool_paths {
            match tree::unlink_pool_file(&self.paths.repos, path) {
                Ok(()) => pool_files += 1,
                Err(e) => tracing::error!(path, "cannot unlink a collected package file: {e}"),
            }
        }
        if let Err(e) = versions::clear_trash(&self.db, &collected.pool_paths).await {
            tracing::error!("cannot clear the pool trash: {e}");
        }
        for sha in &collected.blobs {
            if let Err(e) = self.blobs.remove(sha) {
                tracing::error!(sha256 = sha, "cannot delete a collected blob: {e}");
            }
        }
        if !collected.versions.is_empty() {
            tracing::info!(
                distribution = dist,
                versions = ?collected.versions,
                packages = collected.packages,
                pool_files,
                blobs = collected.blobs.len(),
                "retention collected"
            );
        }
        Collected {
            versions: collected.versions.len(),
            packages: collected.packages,
            pool_files,
            blobs: collected.blobs.len(),
        }
    }

    /// Retention over every distribution, and retired trees past it.
    async fn sweep(&mut self) {
        for dist in self.dists() {
            self.collect(&dist).await;
        }
        let horizon = crate::db::now() - i64::from(self.retention.default.keep_days) * 86_400;
        for entry in std::fs::read_dir(&self.paths.retired)
            .into_iter()
            .flatten()
            .flatten()
        {
            let name = entry.file_name().to_string_lossy().into_owned();
            let retired_at = name
                .rsplit_once('-')
                .and_then(|(_, t)| t.parse::<i64>().ok());
            if retired_at.is_some_and(|t| t < horizon)
                && let Err(e) = tree::remove_tree(&entry.path())
            {
                tracing::error!(dir = name, "cannot delete a retired tree: {e}");
            }
        }
    }

    /// Unlinks the pool files in `pool_trash` (left by a crash after
    /// retention committed, or by re-preparation) that no row names.
    async fn empty_trash(&mut self) {
        match versions::pool_trash(&self.db).await {
            Ok(paths) if !paths.is_empty() => {
                self.unlink_unnamed(paths.clone()).await;
                if let Err(e) = versions::clear_trash(&self.db, &paths).await {
                    tracing::error!("cannot clear the pool trash: {e}");
                }
            }
            Ok(_) => {}
            Err(e) => tracing::error!("cannot read the pool trash: {e}"),
        }
    }

    /// Unlinks each of `paths` that no package row names.
    async fn unlink_unnamed(&mut self, paths: Vec<String>) {
        let _writes = self.writes.lock().await;
        for path in paths {
            let named: Result<Option<(String,)>, _> =
                sqlx::query_as("SELECT package_id FROM package_paths WHERE path = $1 LIMIT 1")
                    .bind(&path)
                    .fetch_optional(&self.db)
                    .await;
            match named {
                Ok(None) => {
                    if let Err(e) = tree::unlink_pool_file(&self.paths.repos, &path) {
                        tracing::error!(path, "cannot unlink an unlisted package file: {e}");
                    }
                }
                Ok(Some(_)) => {}
                Err(e) => tracing::error!(path, "cannot check a package file: {e}"),
            }
        }
    }
}

/// Packages of one distribution version the worker has read, by id.
#[derive(Default)]
struct Known {
    version: i64,
    packages: HashMap<String, Arc<StoredPackage>>,
}

/// Ids per `IN (...)` query, well under SQLite's 32766 bound variables.
const ID_BATCH: usize = 500;

/// What `dist`'s latest version publishes. The worker keeps the packages
/// of the version it published last (`known`) and reads only the
/// difference: the ids a few versions added and removed, and the new rows.
async fn latest_snapshot(db: &Db, dist: &str, known: &mut Known) -> Result<Snapshot, PublishError> {
    let started = Instant::now();
    let latest = versions::latest(db, dist).await?;
    if known.version == 0 || known.version > latest {
        *known = Known::default();
        return read_version(db, dist, latest, known).await;
    }
    if known.version < latest {
        let (added, removed) = versions::diff_ids(db, dist, known.version, latest).await?;
        for id in &removed {
            known.packages.remove(id);
        }
        let new: Vec<&str> = added
            .iter()
            .filter(|id| !known.packages.contains_key(*id))
            .map(String::as_str)
            .collect();
        read_ids(db, &mut known.packages, &new).await?;
        known.version = latest;
    }
    Ok(Snapshot {
        dist: dist.to_owned(),
        version: latest,
        packages: known
            .packages
            .iter()
            .map(|(id, p)| (id.clone(), p.clone()))
            .collect(),
        read_ms: started.elapsed().as_secs_f64() * 1000.0,
    })
}

/// Reads every package of version `number` into `known` (one query).
async fn read_version(
    db: &Db,
    dist: &str,
    number: i64,
    known: &mut Known,
) -> Result<Snapshot, PublishError> {
    let started = Instant::now();
    let rows: Vec<(String, String, String)> = sqlx::query_as(&format!(
        "SELECT p.id, p.sha256, p.rendered FROM packages p \
         JOIN memberships m ON m.package_id = p.id WHERE {}",
        versions::IN_VERSION
    ))
    .bind(dist)
    .bind(number)
    .fetch_all(db)
    .await?;
    keep_rows(&mut known.packages, rows)?;
    known.version = number;
    Ok(Snapshot {
        dist: dist.to_owned(),
        version: number,
        packages: known
            .packages
            .iter()
            .map(|(id, p)| (id.clone(), p.clone()))
            .collect(),
        read_ms: started.elapsed().as_secs_f64() * 1000.0,
    })
}

/// Reads the rows of `ids` into `out`.
async fn read_ids(
    db: &Db,
    out: &mut HashMap<String, Arc<StoredPackage>>,
    ids: &[&str],
) -> Result<(), PublishError> {
    for batch in ids.chunks(ID_BATCH) {
        let marks: Vec<String> = (1..=batch.len()).map(|i| format!("${i}")).collect();
        let sql = format!(
            "SELECT id, sha256, rendered FROM packages WHERE id IN ({})",
            marks.join(", ")
        );
        let mut query = sqlx::query_as::<_, (String, String, String)>(&sql);
        for id in batch {
            query = query.bind(*id);
        }
        keep_rows(out, query.fetch_all(db).await?)?;
    }
    Ok(())
}

/// Decodes (id, blob, rendered) rows: one row per package (migration 0004
/// says why).
fn keep_rows(
    out: &mut HashMap<String, Arc<StoredPackage>>,
    rows: Vec<(String, String, String)>,
) -> Result<(), PublishError> {
    for (id, sha256, rendered) in rows {
        let rendered = crate::catalog::decode_rendered(&rendered).map_err(|e| {
            PublishError::Failed(format!(
                "package {id} has an unreadable `rendered` column ({e}); re-upload it"
            ))
        })?;
        out.insert(
            id,
            Arc::new(StoredPackage {
                sha256,
                pool_paths: rendered.pool_paths,
                entries: rendered.entries,
            }),
        );
    }
    Ok(())
}
