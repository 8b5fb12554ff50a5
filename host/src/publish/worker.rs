//! The publish worker: the one task that writes the served tree. It
//! publishes latest versions, builds pinned trees, retires distributions,
//! runs retention and, at start, checks every live tree.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

use super::build::{self, Paths};
use super::compress::PieceCache;
use super::snapshot::{Known, latest_snapshot, read_version};
use super::tree::{self, State};
use super::{Collected, PINNED_TOP, PublishError, Publisher, Report, RetentionConfig, Setup, Task};
use crate::blobs::BlobStore;
use crate::catalog::WriteLock;
use crate::catalog::versions;
use crate::db::Db;
use crate::plugins::PluginHost;
use crate::signing::SigningKey;
use std::sync::Arc;

/// What a publish needs besides the queue; owned by the worker.
/// Pinned trees kept on disk per distribution (see `Worker::evict_pinned`).
const MAX_PINNED: usize = 16;

pub(super) struct Worker {
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
    /// How delta RPMs not made yet are made (in the background in the
    /// daemon, see `Publisher::start`).
    pub(super) making: super::deltas::Making,
    /// With an object store: each live tree is stored there too.
    trees: Option<Arc<super::objects::TreeStore>>,
}

impl Worker {
    pub(super) fn new(setup: Setup, data: &Path) -> Worker {
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
            making: super::deltas::Making::Inline,
            trees: setup.trees,
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
    pub(super) async fn startup(&mut self, publisher: &Publisher) {
        self.empty_trash(None).await;
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
            let state = tokio::task::spawn_blocking(move || State::load(&path))
                .await
                .expect("state load panicked");
            let awaits = versions::awaits_publish(&self.db, &dist)
                .await
                .unwrap_or(true);
            let problem = if self.trees.is_some() {
                // Served from the object store: the local tree is only the
                // publisher's workspace. A node that has none (or an old
                // one) serves the stored generation and builds its next
                // publish from scratch.
                let problem = match awaits {
                    true => Some("its packages were prepared again".to_owned()),
                    false => self.stored_problem(&dist, latest).await,
                };
                if problem.is_none() && (state.version != latest || state.files.is_empty()) {
                    self.cold.insert(dist.clone());
                    publisher
                        .shown
                        .lock()
                        .expect("shown")
                        .insert(dist.clone(), latest);
                    continue;
                }
                problem
            } else if state.units.is_empty() || state.files.is_empty() {
                Some("it was never published".to_owned())
            } else if awaits {
                Some("its packages were prepared again".to_owned())
            } else if state.version != latest {
                Some(format!("it shows version {} of {latest}", state.version))
            } else {
                // The version's packages: what the check needs, and what
                // the next publish starts from.
                let mut known = Known::default();
                match read_version(&self.db, &dist, latest, &mut known).await {
                    Err(e) => Some(format!("cannot read version {latest}: {e}")),
                    Ok(snapshot) => {
                        let (repos, blobs, files) = (
                            self.paths.repos.clone(),
                            self.blobs.clone(),
                            state.files.clone(),
                        );
                        let problem = tokio::task::spawn_blocking(move || {
                            tree::check(&repos, &files, &snapshot.view.pool, |sha| blobs.path(sha))
                        })
                        .await
                        .expect("tree check panicked");
                        if problem.is_none() {
                            known.unlinked.clear();
                            self.known.insert(dist.clone(), known);
                        }
                        problem
                    }
                }
            };
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

    pub(super) async fn task(&mut self, task: Task, publisher: &Publisher) {
        match task {
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
    pub(super) async fn publish(&mut self, dist: &str) -> Result<Report, PublishError> {
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
        let read = latest_snapshot(&self.db, dist, known).await;
        // The first publish checks every package file; later ones link
        // what versions added since.
        let link = (!first).then(|| known.unlinked.clone());
        let read = match read {
            Ok(mut s) => extras(self, &mut s).await.map(|()| s),
            Err(e) => Err(e),
        };
        let snapshot = match read {
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
        let storing = self.trees.is_some();
        // The lead this publish runs under, checked when its row goes in.
        let fence = self.trees.as_ref().and_then(|t| t.fence());
        let outcome = self
            .plugins
            .blocking(move |registry| {
                // A bug here must not take the worker (and every later
                // publish) down: the panic becomes this publish's error.
                std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || {
                    let result = build::render(&snapshot, &registry, &key, &paths, &mut cache, now)
                        .and_then(|built| {
                            let published = storing.then(|| built.published());
                            built
                                .go_live(&paths, &blobs, &mut state, keep_secs, link.as_ref())
                                .map(|report| (report, published))
                        });
                    (result, cache, state)
                }))
            })
            .await;
        match outcome {
            Ok((result, cache, state)) => {
                self.caches.insert(dist.to_owned(), cache);
                self.states.insert(dist.to_owned(), state);
                if result.is_ok()
                    && let Some(known) = self.known.get_mut(dist)
                {
                    known.unlinked.clear();
                }
                let (report, published) = result?;
                if let (Some(trees), Some(published)) = (&self.trees, published) {
                    let started = std::time::Instant::now();
                    if let Err(e) = trees
                        .store(dist, &self.paths.repos, &published, self.keep_secs, fence)
                        .await
                    {
                        // The local tree moved on; the stored one did not:
                        // the next publish starts from scratch and stores
                        // every file again.
                        self.cold.insert(dist.to_owned());
                        return Err(e);
                    }
                    let mut report = report;
                    report
                        .phases_ms
                        .insert("store", started.elapsed().as_secs_f64() * 1000.0);
                    report.duration_ms += started.elapsed().as_secs_f64() * 1000.0;
                    return Ok(report);
                }
                Ok(report)
            }
            // Cache and state went with the panic; both are rebuilt (the
            // state from its file) on the next publish.
            Err(_) => Err(PublishError::Failed(format!(
                "internal error: publishing {dist} panicked; the daemon log has the details"
            ))),
        }
    }

    /// Builds the tree of version `number` of `dist` unless it exists.
    pub(super) async fn pin(&mut self, dist: &str, number: i64) -> Result<PathBuf, PublishError> {
        let dir = self.paths.pinned(dist, number);
        if dir.is_dir() {
            return Ok(dir);
        }
        if self.plugins.registry().distribution(dist).is_none() {
            return Err(PublishError::UnknownDistribution(dist.to_owned()));
        }
        if versions::get(&self.db, dist, number).await?.is_none() {
            return Err(PublishError::NotKept(
                versions::not_kept(&self.db, dist, number).await?,
            ));
        }
        let mut snapshot = match self.known.get(dist).filter(|k| k.version == number) {
            Some(known) => known.snapshot(dist, std::time::Instant::now()),
            None => {
                let mut known = Known::default();
                read_version(&self.db, dist, number, &mut known).await?
            }
        };
        // Documents are not versioned: a pinned tree shows today's.
        extras(self, &mut snapshot).await?;
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
        self.evict_pinned(dist, &dir);
        Ok(dir)
    }

    /// Keeps at most [`MAX_PINNED`] pinned trees of `dist` on disk: anyone
    /// may ask for any kept version, and each tree costs a full set of
    /// indexes. The oldest built go (not `keep`); asked for again, a tree is
    /// built again, with the same content and a new signature date.
    fn evict_pinned(&self, dist: &str, keep: &Path) {
        let root = self.paths.repos.join(PINNED_TOP).join(dist);
        let mut trees: Vec<(std::time::SystemTime, PathBuf)> = std::fs::read_dir(&root)
            .into_iter()
            .flatten()
            .flatten()
            .filter(|e| e.path() != keep)
            .filter_map(|e| Some((e.metadata().ok()?.modified().ok()?, e.path())))
            .collect();
        if trees.len() < MAX_PINNED {
            return;
        }
        trees.sort();
        for (_, path) in &trees[..trees.len() + 1 - MAX_PINNED] {
            if let Err(e) = tree::remove_tree(path) {
                tracing::error!(path = %path.display(), "cannot evict a pinned tree: {e}");
            }
        }
    }

    /// Drops what this node kept of its trees' state (it stopped leading:
    /// the next lead starts from the files and the stored generations).
    pub(super) fn forget_trees(&mut self) {
        self.states.clear();
        self.known.clear();
    }

    /// Marks every distribution whose stored generation is behind its
    /// latest version (the leader's safety net for lost announcements).
    pub(super) async fn catch_up(&self, publisher: &Publisher) {
        for dist in self.dists() {
            let Ok(latest) = versions::latest(&self.db, &dist).await else {
                continue;
            };
            if let Some(why) = self.stored_problem(&dist, latest).await {
                tracing::info!(distribution = dist, "publishing its tree: {why}");
                publisher.mark(&dist);
            }
        }
    }

    /// With an object store, why `dist`'s stored tree is not `latest`.
    async fn stored_problem(&self, dist: &str, latest: i64) -> Option<String> {
        self.trees.as_ref()?;
        let stored: Result<Option<(i64,)>, _> = sqlx::query_as(
            "SELECT version FROM tree_generations WHERE distribution = $1 \
             ORDER BY generation DESC LIMIT 1",
        )
        .bind(dist)
        .fetch_optional(&self.db)
        .await;
        match stored {
            Err(e) => Some(format!("cannot read its stored generations: {e}")),
            Ok(None) => Some("its tree is not in the object store".to_owned()),
            Ok(Some((v,))) if v != latest => {
                Some(format!("the object store shows version {v} of {latest}"))
            }
            Ok(Some(_)) => None,
        }
    }

    /// Moves `dist`'s live and pinned trees to `<data>/publish/retired/`,
    /// and unlinks the package files no served distribution lists.
    pub(super) async fn retire(&mut self, dist: &str) -> Result<(), PublishError> {
        let state = match self.states.remove(dist) {
            Some(state) => state,
            None => State::load(&self.paths.state_file(dist)),
        };
        self.known.remove(dist);
        self.caches.remove(dist);
        if let Some(trees) = &self.trees {
            trees.retire(dist).await?;
        }
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
        // Its package files that no served distribution's row names.
        let writes = self.writes.lock().await;
        let paths: Vec<(String,)> = sqlx::query_as(
            "SELECT DISTINCT pp.path FROM package_paths pp JOIN packages p ON p.id = pp.package_id \
             WHERE p.distribution = $1 AND NOT EXISTS (SELECT 1 FROM package_paths o \
               JOIN packages op ON op.id = o.package_id JOIN distributions d ON d.id = op.distribution \
               WHERE o.path = pp.path AND d.retired_at IS NULL AND op.distribution <> $1)",
        )
        .bind(dist)
        .fetch_all(&self.db)
        .await?;
        let mut unlinked = 0;
        for (path,) in &paths {
            tree::unlink_pool_file(&self.paths.repos, path)?;
            unlinked += 1;
        }
        drop(writes);
        match std::fs::remove_file(self.paths.state_file(dist)) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e.into()),
            _ => {}
        }
        // What its re-preparation left for its next publish: there is none.
        self.empty_trash(Some(dist)).await;
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
    pub(super) async fn collect(&mut self, dist: &str) -> Collected {
        // The version the live tree shows: from the state file when the
        // worker holds none (never published since start, or a failed
        // publish): that tree is served all the same.
        let live = match self.states.get(dist) {
            Some(state) => state.version,
            None => {
                let path = self.paths.state_file(dist);
                match tokio::task::spawn_blocking(move || State::load(&path).version).await {
                    Ok(version) => version,
                    Err(_) => return Collected::default(),
                }
            }
        };
        let live = Some(live);
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
        let blobs = collected.blobs.to_vec();
        for (sha, e) in self.blobs.remove_many(blobs).await {
            tracing::error!(sha256 = sha, "cannot delete a collected blob: {e}");
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
    /// Every blob a row names, read once per sweep (stored blobs and the
    /// delta cache are collected against it); `None` logged as `what`.
    async fn known_blobs(&self, what: &str) -> Option<HashSet<String>> {
        let _writes = self.writes.lock().await;
        match crate::catalog::blob_hashes(&self.db).await {
            Ok(known) => Some(known.into_iter().collect()),
            Err(e) => {
                tracing::warn!("cannot collect {what}: {e}");
                None
            }
        }
    }

    /// With an object store: deletes stored blobs no row refers to (past
    /// the orphan grace), what killed uploads on any node left. When the
    /// leader takes the lead and every sweep, by the leader alone.
    pub(super) async fn collect_stored_blobs(&self) {
        if self.blobs.remote().is_none() {
            return;
        }
        if let Some(known) = self.known_blobs("stored blobs").await {
            self.collect_stored_against(known).await;
        }
    }

    async fn collect_stored_against(&self, known: HashSet<String>) {
        let blobs = self.blobs.clone();
        match tokio::task::spawn_blocking(move || blobs.collect_stored(&known)).await {
            Ok(Ok(0)) => {}
            Ok(Ok(n)) => tracing::info!(
                removed = n,
                "stored blobs no row refers to collected (left by interrupted uploads)"
            ),
            Ok(Err(e)) => tracing::warn!("cannot collect stored blobs: {e}"),
            Err(e) => tracing::error!("stored blob collection panicked: {e}"),
        }
    }

    pub(super) async fn sweep(&mut self) {
        for dist in self.dists() {
            self.collect(&dist).await;
        }
        let stored = self.blobs.remote().is_some();
        let deltas = self.paths.deltas.is_dir();
        let known = match stored || deltas {
            true => self.known_blobs("stored blobs or the delta cache").await,
            false => None,
        };
        if let Some(known) = known.clone().filter(|_| stored) {
            self.collect_stored_against(known).await;
        }
        if let Some(trees) = &self.trees {
            match trees.sweep().await {
                Ok(0) => {}
                Ok(n) => tracing::info!(removed = n, "stored and exported tree files collected"),
                Err(e) => tracing::warn!("cannot collect stored tree files: {e}"),
            }
        }
        // Delta RPMs of packages retention took, also once no distribution
        // makes deltas any more.
        if let Some(known) = known.filter(|_| deltas) {
            let cache = self.paths.deltas.clone();
            let removed =
                tokio::task::spawn_blocking(move || super::deltas::collect(&cache, &known)).await;
            match removed {
                Ok(Ok(n)) if n > 0 => tracing::info!(removed = n, "delta cache collected"),
                Ok(Err(e)) => tracing::warn!("cannot collect the delta cache: {e}"),
                _ => {}
            }
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

    /// Unlinks the pool files in `pool_trash` that no row names: those
    /// retention left (a crash after its commit), and, after `published`
    /// went live, those its re-preparation stopped naming. Entries whose
    /// file could not be unlinked stay for the next time.
    pub(super) async fn empty_trash(&mut self, published: Option<&str>) {
        match versions::pool_trash(&self.db, published).await {
            Ok(paths) if !paths.is_empty() => {
                let handled = self.unlink_unnamed(paths).await;
                if let Err(e) = versions::clear_trash(&self.db, &handled).await {
                    tracing::error!("cannot clear the pool trash: {e}");
                }
            }
            Ok(_) => {}
            Err(e) => tracing::error!("cannot read the pool trash: {e}"),
        }
    }

    /// Unlinks each of `paths` that no package row names; returns those
    /// done with (unlinked, or named by a row again).
    async fn unlink_unnamed(&mut self, paths: Vec<String>) -> Vec<String> {
        let _writes = self.writes.lock().await;
        let mut handled = Vec::with_capacity(paths.len());
        for path in paths {
            let named: Result<Option<(String,)>, _> =
                sqlx::query_as("SELECT package_id FROM package_paths WHERE path = $1 LIMIT 1")
                    .bind(&path)
                    .fetch_optional(&self.db)
                    .await;
            match named {
                Ok(None) => match tree::unlink_pool_file(&self.paths.repos, &path) {
                    Ok(()) => handled.push(path),
                    Err(e) => tracing::error!(path, "cannot unlink an unlisted package file: {e}"),
                },
                Ok(Some(_)) => handled.push(path),
                Err(e) => tracing::error!(path, "cannot check a package file: {e}"),
            }
        }
        handled
    }
}

/// What a publish of version `number` of `dist` needs besides its
/// packages: the distribution's documents, and the packages its
/// signature requirement leaves out.
async fn extras(
    worker: &Worker,
    snapshot: &mut super::build::Snapshot,
) -> Result<(), PublishError> {
    let dist = snapshot.dist.as_str();
    snapshot.documents = crate::documents::all(&worker.db, dist).await?;
    let distribution = worker
        .plugins
        .registry()
        .distribution(dist)
        .map(|(_, d)| d.clone())
        .ok_or_else(|| PublishError::UnknownDistribution(dist.to_owned()))?;
    snapshot.unlisted =
        super::snapshot::unlisted(&worker.db, &distribution, snapshot.version).await?;
    let started = std::time::Instant::now();
    let sources = super::deltas::Sources {
        db: &worker.db,
        plugins: &worker.plugins,
        blobs: &worker.blobs,
        cache: &worker.paths.deltas,
        making: &worker.making,
    };
    snapshot.deltas =
        super::deltas::entries(&sources, dist, &snapshot.view, &snapshot.unlisted).await?;
    snapshot.deltas_ms = started.elapsed().as_secs_f64() * 1000.0;
    Ok(())
}
