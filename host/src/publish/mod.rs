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
pub mod cluster;
mod compress;
mod deltas;
pub mod objects;
mod snapshot;
mod tree;
mod worker;
mod zchunk;

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::{Notify, oneshot, watch};

use build::Paths;
pub use build::{Collected, Report};
pub use tree::{PINNED_TOP, RESERVED_TOP, RETAIN_SECS};
use worker::Worker;

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
/// How often an idle cluster leader compares each distribution's stored
/// generation with its latest version (announcements can be lost).
const CATCH_UP: Duration = Duration::from_secs(5);

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
    #[error(transparent)]
    Zchunk(#[from] zchunk::ZchunkError),
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

/// Pinned trees waiting to be built at most: anyone may ask for any kept
/// version, and each build costs about a publish; beyond this, askers are
/// told to come back (503) rather than queued without bound.
const MAX_PENDING_PINS: usize = 4;

type PinReply = oneshot::Sender<Result<PathBuf, PublishError>>;

/// Work other than publishing a distribution's latest version.
enum Task {
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
    /// Pinned trees to build, in order asked, each once whoever asks; the
    /// worker builds one between publishes, so they never hold up a tier.
    pins: VecDeque<(String, i64)>,
    pin_waiters: HashMap<(String, i64), Vec<PinReply>>,
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
    blobs: BlobStore,
    /// With an object store: what `/repos/` serves live trees from.
    trees: Option<Arc<objects::TreeStore>>,
    cluster: Option<Arc<cluster::Cluster>>,
    /// Whether the worker task still runs (`/readyz`).
    running: std::sync::atomic::AtomicBool,
    /// Each publish's duration or failure, by distribution (`/metrics`).
    publishes: crate::metrics::Publishes,
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
    /// With an object store: where each live tree goes (`objects.rs`).
    pub trees: Option<Arc<objects::TreeStore>>,
    /// With PostgreSQL and an object store: the nodes sharing the work
    /// (`cluster.rs`); only the leading node publishes.
    pub cluster: Option<Arc<cluster::Cluster>>,
}

impl Publisher {
    /// Starts the worker. It first checks every live tree against what was
    /// published and the database's latest versions, and rebuilds the ones
    /// that disagree, so the tree matches the database whatever happened
    /// while the daemon was down.
    pub fn start(setup: Setup, data: &Path) -> Result<Arc<Publisher>, PublishError> {
        let lock = lock(data)?;
        // What a process killed mid-publish left staged was never live, and
        // with the lock held no other publisher writes there: it goes.
        tree::remove_tree(&Paths::under(data).staging)?;
        let publisher = Arc::new(Publisher {
            _lock: lock,
            queue: Mutex::new(Queue::default()),
            wake: Notify::new(),
            done: watch::Sender::new(0),
            shown: Mutex::new(HashMap::new()),
            db: setup.db.clone(),
            paths: Paths::under(data),
            blobs: setup.blobs.clone(),
            trees: setup.trees.clone(),
            cluster: setup.cluster.clone(),
            running: std::sync::atomic::AtomicBool::new(true),
            publishes: crate::metrics::Publishes::default(),
        });
        if let Some(cluster) = &publisher.cluster {
            // The leader acts on what other nodes announce; every other
            // node loads a new generation as soon as it is announced.
            let weak = Arc::downgrade(&publisher);
            tokio::spawn(cluster.clone().listen(move |ask, dist| {
                let Some(publisher) = weak.upgrade() else {
                    return;
                };
                if ask == cluster::Ask::Live {
                    if let Some(trees) = publisher.trees().filter(|_| !publisher.leading()) {
                        let trees = trees.clone();
                        tokio::spawn(async move { trees.reload().await });
                    }
                    return;
                }
                if !publisher.leading() {
                    return;
                }
                match ask {
                    cluster::Ask::Changed => publisher.mark(dist),
                    cluster::Ask::Rendering => publisher.changed_rendering(dist),
                    cluster::Ask::Live => {}
                    cluster::Ask::Force | cluster::Ask::Rebuild => {
                        if ask == cluster::Ask::Rebuild {
                            publisher.task(Task::Rebuild {
                                dist: dist.to_owned(),
                            });
                        }
                        let dist = dist.to_owned();
                        tokio::spawn(async move {
                            let _ = publisher.publish(&dist).await;
                        });
                    }
                }
            }));
        }
        let mut worker = Worker::new(setup, data);
        // Deltas made in the background ask for the publish that lists them.
        let weak = Arc::downgrade(&publisher);
        worker.making = deltas::Making::Background(deltas::Background::new(move |dist| {
            if let Some(publisher) = weak.upgrade() {
                publisher.changed(dist);
            }
        }));
        tokio::spawn(run(publisher.clone(), worker));
        Ok(publisher)
    }

    /// With an object store: the stored trees every node serves.
    pub fn trees(&self) -> Option<&Arc<objects::TreeStore>> {
        self.trees.as_ref()
    }

    /// Whether the worker that publishes and builds pinned trees still
    /// runs (it stops only if it panicked outside a publish).
    pub fn worker_running(&self) -> bool {
        self.running.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// The publish metrics (`GET /metrics` registers them).
    pub fn publishes(&self) -> &crate::metrics::Publishes {
        &self.publishes
    }

    /// Distributions with a change or request no finished publish has
    /// taken yet.
    pub fn pending(&self) -> usize {
        let queue = self.queue.lock().expect("queue");
        queue
            .slots
            .values()
            .filter(|s| s.requested > s.published)
            .count()
    }

    /// Whether this node is one of a cluster's.
    pub fn clustered(&self) -> bool {
        self.cluster.is_some()
    }

    /// Whether this node publishes: always alone, and in a cluster while
    /// it leads.
    pub fn leading(&self) -> bool {
        self.cluster.as_ref().is_none_or(|c| c.leading())
    }

    /// Marks `dist` as changed: it is published within [`SETTLE`] plus the
    /// time a publish takes (by the leader, told by `NOTIFY`, when this
    /// node does not lead).
    pub fn changed(&self, dist: &str) {
        match &self.cluster {
            Some(cluster) if !cluster.leading() => {
                cluster.announce(cluster::Ask::Changed, dist);
            }
            _ => self.mark(dist),
        }
    }

    /// Marks `dist` in this node's queue.
    pub(crate) fn mark(&self, dist: &str) {
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
        if let Some(cluster) = self.cluster.as_ref().filter(|c| !c.leading()) {
            // The leader keeps the snapshot that went stale.
            cluster.announce(cluster::Ask::Rendering, dist);
            return;
        }
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
        if let Some(cluster) = self.cluster.as_ref().filter(|c| !c.leading()) {
            return self
                .publish_elsewhere(cluster, cluster::Ask::Force, dist)
                .await;
        }
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

    /// [`Publisher::publish`] on a node that does not lead: asks the
    /// leader, then waits for a generation row newer than the ones there
    /// were. Its report has what the row says (version, time); the
    /// leader's log has the rest.
    async fn publish_elsewhere(
        &self,
        cluster: &Arc<cluster::Cluster>,
        ask: cluster::Ask,
        dist: &str,
    ) -> Result<Report, PublishError> {
        const WAIT: Duration = Duration::from_secs(120);
        let newest = async || -> Result<Option<(i64, i64, i64)>, PublishError> {
            Ok(sqlx::query_as(
                "SELECT generation, version, created_at FROM tree_generations \
                 WHERE distribution = $1 ORDER BY generation DESC LIMIT 1",
            )
            .bind(dist)
            .fetch_optional(&self.db)
            .await?)
        };
        let before = newest().await?.map_or(0, |r| r.0);
        cluster.announce(ask, dist);
        let started = Instant::now();
        let mut announced = Instant::now();
        loop {
            tokio::time::sleep(Duration::from_millis(50)).await;
            // Again every few seconds: an announcement can be lost while
            // the leader's listener reconnects, or the lead moves.
            if announced.elapsed() > Duration::from_secs(3) {
                cluster.announce(ask, dist);
                announced = Instant::now();
            }
            if let Some((generation, version, created_at)) = newest().await?
                && generation > before
            {
                // This node serves it before it answers.
                if let Some(trees) = &self.trees {
                    trees.refresh().await?;
                }
                return Ok(Report::stored(dist, version, created_at, started.elapsed()));
            }
            if started.elapsed() > WAIT {
                return Err(PublishError::Failed(format!(
                    "no node published {dist} within {} s: is a leader running? (its log says why)",
                    WAIT.as_secs()
                )));
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
        if let Some(cluster) = self.cluster.as_ref().filter(|c| !c.leading()) {
            // The leader rebuilds (it holds the caches to drop).
            let mut out = Vec::new();
            for dist in dists {
                let result = self
                    .publish_elsewhere(cluster, cluster::Ask::Rebuild, &dist)
                    .await;
                out.push((dist, result));
            }
            return out;
        }
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
        // With an object store, what every node serves: the stored
        // generation (this node may not be the one that published it).
        if let Some(trees) = &self.trees {
            return trees.index().version(dist);
        }
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
    /// Fails with [`PublishError::Busy`] when too many other pinned trees
    /// are waiting to be built.
    pub async fn pinned(&self, dist: &str, number: i64) -> Result<PathBuf, PublishError> {
        if versions::get(&self.db, dist, number).await?.is_none() {
            return Err(PublishError::NotKept(
                versions::not_kept(&self.db, dist, number).await?,
            ));
        }
        let dir = self.paths.pinned(dist, number);
        if dir.is_dir() {
            return Ok(dir);
        }
        let (reply, answer) = oneshot::channel();
        {
            let mut queue = self.queue.lock().expect("publish queue");
            let key = (dist.to_owned(), number);
            let pending = queue.pins.len();
            match queue.pin_waiters.get_mut(&key) {
                Some(waiters) => waiters.push(reply),
                None if pending >= MAX_PENDING_PINS => {
                    return Err(PublishError::Busy(format!(
                        "{MAX_PENDING_PINS} pinned trees are being built; ask again in a few seconds"
                    )));
                }
                None => {
                    queue.pins.push_back(key.clone());
                    queue.pin_waiters.insert(key, vec![reply]);
                }
            }
        }
        self.wake.notify_one();
        answer
            .await
            .unwrap_or_else(|_| Err(PublishError::Failed("the publisher stopped".into())))
    }

    /// The blob behind package path `path` of version `number` of `dist`,
    /// as a local file (fetched from the object store if this node has no
    /// copy), if the version lists a package there: a pinned tree serves
    /// its package files from the blob store, not from any live tree.
    pub async fn pool_blob(
        &self,
        dist: &str,
        number: i64,
        path: &str,
    ) -> Result<Option<PathBuf>, PublishError> {
        let Some(sha) = versions::pool_blob(&self.db, dist, number, path).await? else {
            return Ok(None);
        };
        let blobs = self.blobs.clone();
        let local = tokio::task::spawn_blocking(move || blobs.local(&sha))
            .await
            .map_err(|e| PublishError::Failed(format!("blob fetch panicked: {e}")))??;
        Ok(Some(local))
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

    fn next_pin(&self) -> Option<(String, i64)> {
        self.queue.lock().expect("publish queue").pins.pop_front()
    }

    /// Answers everyone who asked for `pin`.
    fn pinned_done(&self, pin: &(String, i64), result: &Result<PathBuf, PublishError>) {
        let waiters = self
            .queue
            .lock()
            .expect("publish queue")
            .pin_waiters
            .remove(pin)
            .unwrap_or_default();
        for waiter in waiters {
            let answer = match result {
                Ok(dir) => Ok(dir.clone()),
                Err(PublishError::NotKept(m)) => Err(PublishError::NotKept(m.clone())),
                Err(PublishError::UnknownDistribution(d)) => {
                    Err(PublishError::UnknownDistribution(d.clone()))
                }
                Err(e) => Err(PublishError::Failed(e.to_string())),
            };
            let _ = waiter.send(answer);
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
    /// Marks the worker stopped however `run` ends (a panic included).
    struct Stopped(Arc<Publisher>);
    impl Drop for Stopped {
        fn drop(&mut self) {
            self.0
                .running
                .store(false, std::sync::atomic::Ordering::Relaxed);
        }
    }
    let _stopped = Stopped(publisher.clone());
    let mut started = false;
    let mut last_sweep = Instant::now();
    let mut last_catch_up = Instant::now();
    loop {
        // In a cluster only the leader publishes and sweeps; every node
        // builds its own pinned trees and runs its own tasks.
        let leading = publisher.leading();
        if leading && !started {
            worker.startup(&publisher).await;
            if publisher.clustered() {
                worker.collect_stored_blobs().await;
            }
            started = true;
            last_sweep = Instant::now();
        } else if !leading && started {
            // Another node publishes now: what this one kept may go stale.
            worker.forget_trees();
            started = false;
        }
        if let Some(task) = publisher.next_task() {
            worker.task(task, &publisher).await;
            continue;
        }
        let next = if leading { publisher.next() } else { None };
        // A due publish goes first; a pinned tree is built while nothing
        // is due (one at a time, so a tier waits at most one build).
        if next.as_ref().is_none_or(|(_, settle)| !settle.is_zero())
            && let Some(pin) = publisher.next_pin()
        {
            let result = worker.pin(&pin.0, pin.1).await;
            publisher.pinned_done(&pin, &result);
            continue;
        }
        let Some((dist, settle)) = next else {
            if !leading {
                let _ = tokio::time::timeout(cluster::RETRY, publisher.wake.notified()).await;
                continue;
            }
            let idle = SWEEP.saturating_sub(last_sweep.elapsed());
            if idle.is_zero() {
                worker.sweep().await;
                last_sweep = Instant::now();
            } else if publisher.clustered() {
                // A notification lost while the listener reconnected must
                // not leave a change unpublished: the leader also looks.
                let wait = idle.min(CATCH_UP);
                let _ = tokio::time::timeout(wait, publisher.wake.notified()).await;
                if last_catch_up.elapsed() >= CATCH_UP {
                    worker.catch_up(&publisher).await;
                    last_catch_up = Instant::now();
                }
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
        let started = Instant::now();
        let mut result = worker.publish(&dist).await;
        match &result {
            Ok(_) => publisher.publishes.published(&dist, started.elapsed()),
            Err(_) => publisher.publishes.failed(&dist),
        }
        match &mut result {
            Ok(report) => {
                publisher
                    .shown
                    .lock()
                    .expect("shown")
                    .insert(dist.clone(), report.version);
                report.collected = worker.collect(&dist).await;
                worker.empty_trash(Some(&dist)).await;
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
