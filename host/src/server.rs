//! Wiring: settings -> data directory, database, plugins, HTTP listener.

use std::sync::Arc;

use anyhow::Context;

use crate::api::{self, AppState};
use crate::blobs::BlobStore;
use crate::catalog::WriteLock;
use crate::config::Settings;
use crate::db;
use crate::ingest::Packages;
use crate::plugins::shared::SharedPlugins;
use crate::plugins::{PluginHost, PluginKind};
use crate::publish::cluster::Cluster;
use crate::publish::objects::TreeStore;
use crate::publish::{Publisher, Setup};
use crate::signing::SigningKey;

/// The user id of a key repod creates itself.
pub const SIGNING_USER_ID: &str = "repod repository signing key <repod@localhost>";

/// Runs the daemon until SIGINT or SIGTERM.
pub async fn serve(settings: Settings) -> anyhow::Result<()> {
    let Parts {
        db,
        plugins,
        key,
        blobs,
        trees,
        _sole,
    } = open_parts(&settings, Opener::Daemon).await?;
    // PostgreSQL and an object store: other nodes may share the work.
    let cluster_remote = blobs.remote().cloned();
    let cluster = match (&settings.database, &trees) {
        (db::Location::Postgres(url), Some(_)) => {
            let cluster = Cluster::join(url, db.clone()).await?;
            if let Some(trees) = &trees {
                trees.fence_with(cluster.clone());
            }
            tokio::spawn(cluster.clone().contend());
            Some(cluster)
        }
        _ => None,
    };
    let writes = WriteLock::default();
    let publisher = Publisher::start(
        Setup {
            db: db.clone(),
            plugins: plugins.clone(),
            key: key.clone(),
            blobs: blobs.clone(),
            writes: writes.clone(),
            keep_superseded: settings.keep_superseded,
            retention: settings.retention.clone(),
            trees: trees.clone(),
            cluster,
        },
        &settings.data,
    )?;
    if let crate::config::Storage::S3(s3) = &settings.storage
        && let (Some(max_bytes), Some(trees)) = (s3.cache_max_bytes, &trees)
    {
        tokio::spawn(trim_caches(
            vec![blobs.path_dir(), trees.cache_dir().to_owned()],
            max_bytes,
        ));
    }
    if let Some(trees) = trees {
        tokio::spawn(follow_generations(trees));
    }
    let packages = Arc::new(Packages {
        db: db.clone(),
        blobs,
        plugins: plugins.clone(),
        publisher: publisher.clone(),
        limits: repod_reader::Limits::default(),
        writes,
        policies: settings.policies.clone(),
        key,
    });
    // In a cluster the leader collects the object store (when it takes
    // the lead, then every sweep); a node alone does it here.
    let collected = packages.collect_garbage(!publisher.clustered()).await?;
    if collected > 0 {
        tracing::info!(
            "removed {collected} unreferenced blobs (left by an interrupted upload or retention)"
        );
    }
    // In a cluster: plugin changes other nodes made, applied before the
    // database is matched to the plugin set.
    let shared_plugins = match (&cluster_remote, publisher.clustered()) {
        (Some(remote), true) => {
            let shared = Arc::new(SharedPlugins::new(
                db.clone(),
                remote.clone(),
                settings.data.join("tmp"),
            ));
            shared.follow(&plugins).await?;
            Some(shared)
        }
        _ => None,
    };
    // Plugins may have changed while the daemon was down.
    // A distribution that fails here is logged and served as it was.
    packages
        .sync_distributions()
        .await
        .context("cannot match the database to the loaded plugins")?;
    let metrics = Arc::new(crate::metrics::Metrics::new(
        plugins.calls(),
        publisher.publishes(),
    ));
    let state = AppState {
        db,
        plugins,
        packages,
        publisher,
        metrics,
        max_upload: settings.max_upload,
        feeds: Arc::new(settings.feeds.clone()),
        shared_plugins,
    };
    tokio::spawn(reopen_expired(state.clone()));
    if state.shared_plugins.is_some() {
        tokio::spawn(follow_plugins(state.clone()));
    }
    if let Some(every) = settings.feeds.every
        && !settings.feeds.feeds.is_empty()
    {
        tokio::spawn(sync_feeds(state.clone(), every));
    }
    let listener = tokio::net::TcpListener::bind(settings.listen)
        .await
        .with_context(|| format!("cannot listen on {}", settings.listen))?;
    tracing::info!(
        "repod listening on http://{} (data {}, plugins {})",
        listener.local_addr()?,
        settings.data.display(),
        settings.plugins.display()
    );
    std::fs::create_dir_all(settings.repos_dir())?;
    let app = api::router(state, &settings);
    crate::http::serve(listener, app, &settings.http, shutdown()).await?;
    Ok(())
}

/// Syncs the advisory feeds now and every `every`, re-scanning what their
/// imports change. Failures are logged and recorded (import history, feed
/// status); the data of the last good sync stays.
async fn sync_feeds(state: AppState, every: std::time::Duration) {
    loop {
        // In a cluster, the leader syncs for every node.
        if !state.publisher.leading() {
            tokio::time::sleep(crate::publish::cluster::RETRY).await;
            continue;
        }
        for source in &state.feeds.feeds {
            let synced = crate::feeds::sync_and_rescan(
                &state.db,
                &state.plugins,
                &state.packages.policies,
                source,
            )
            .await;
            if let Err(e) = synced {
                tracing::error!(
                    feed = source,
                    "feed sync or the re-scan after it failed: {e}"
                );
            }
        }
        tokio::time::sleep(every).await;
    }
}

/// How often a node looks for tree generations other nodes stored: in a
/// cluster each new one is announced and loaded at once (`Ask::Live`);
/// this catches one announced while the listener was reconnecting.
const GENERATIONS_POLL: std::time::Duration = std::time::Duration::from_secs(5);

/// Keeps this node's copies of the object store under `cache-max-mib`,
/// checked every minute (debug builds: every second with nothing spared
/// while `REPOD_TEST_CACHE_TRIM` is set, for the tests).
async fn trim_caches(dirs: Vec<std::path::PathBuf>, max_bytes: u64) {
    use crate::blobs::cache::{Trim, trim};
    use std::time::Duration;
    let fast = cfg!(debug_assertions) && std::env::var_os("REPOD_TEST_CACHE_TRIM").is_some();
    let (every, spare) = match fast {
        true => (Duration::from_secs(1), Duration::ZERO),
        false => (Duration::from_secs(60), Duration::from_secs(120)),
    };
    let how = Trim { max_bytes, spare };
    loop {
        tokio::time::sleep(every).await;
        let dirs = dirs.clone();
        match tokio::task::spawn_blocking(move || trim(&dirs, how)).await {
            Ok(Ok(done)) if done.files > 0 => tracing::info!(
                files = done.files,
                bytes = done.bytes,
                left = done.left,
                "cache trimmed to cache-max-mib"
            ),
            Ok(Ok(_)) => {}
            Ok(Err(e)) => tracing::warn!("cannot trim the caches: {e}"),
            Err(e) => tracing::error!("cache trim panicked: {e}"),
        }
    }
}

/// Keeps the served index in step with the generations in the database
/// (this node's publishes refresh it at once; other nodes' when announced,
/// or within a poll).
async fn follow_generations(trees: Arc<TreeStore>) {
    loop {
        tokio::time::sleep(GENERATIONS_POLL).await;
        trees.reload().await;
    }
}

/// Applies, every second, the plugin changes other nodes recorded.
async fn follow_plugins(state: AppState) {
    let shared = state.shared_plugins.clone().expect("cluster");
    loop {
        tokio::time::sleep(GENERATIONS_POLL).await;
        match shared.follow(&state.plugins).await {
            Ok(changed) if changed.is_empty() => {}
            Ok(changed) => {
                tracing::info!(plugins = ?changed, "applied plugin changes made on another node");
                // The database follows the plugin set on every node; the
                // leader republishes (its own follow brings it the change).
                if let Err(e) = state.packages.sync_distributions().await {
                    tracing::error!("after another node's plugin change: {e}");
                }
                if state.publisher.leading() {
                    state.publisher.changed_all(&state.plugins);
                }
            }
            Err(e) => tracing::warn!("cannot apply another node's plugin change: {e}"),
        }
    }
}

/// How often approvals are checked for expiry.
const EXPIRY_CHECK: std::time::Duration = std::time::Duration::from_secs(5);

/// Re-opens review of packages whose approval expired, within
/// [`EXPIRY_CHECK`] of the expiry (not only at their next scan).
async fn reopen_expired(state: AppState) {
    loop {
        tokio::time::sleep(EXPIRY_CHECK).await;
        if !state.publisher.leading() {
            continue;
        }
        let reopened =
            crate::scan::reopen_expired(&state.db, &state.plugins, &state.packages.policies).await;
        if let Err(e) = reopened {
            tracing::error!("re-opening review of expired approvals failed: {e}");
        }
    }
}

/// Who opens the parts: what must hold the installation's leader lock.
#[derive(PartialEq)]
enum Opener {
    /// A daemon: on PostgreSQL with a local data directory it must be the
    /// only one (a second would publish a tree of its own and run the
    /// background work again); with an object store it contends instead.
    Daemon,
    /// `repod publish`: on PostgreSQL never beside a node that publishes.
    OfflinePublish,
}

/// What both the daemon and `repod publish` open in the data directory.
struct Parts {
    db: db::Db,
    plugins: Arc<PluginHost>,
    key: Arc<SigningKey>,
    blobs: BlobStore,
    /// With an object store: the published trees kept there.
    trees: Option<Arc<TreeStore>>,
    /// The leader lock, held while this lives, when the opener needs it.
    _sole: Option<sqlx::PgConnection>,
}

/// Refuses a data directory the daemon cannot write (a read-only mount,
/// wrong ownership) up front, in words, rather than at the first write
/// deep inside SQLite or the blob store.
fn writable(data: &std::path::Path) -> anyhow::Result<()> {
    let probe = data.join(format!(".repod-write-test-{}", std::process::id()));
    std::fs::write(&probe, b"")
        .and_then(|()| std::fs::remove_file(&probe))
        .with_context(|| {
            format!(
                "data directory {} is not writable: repod keeps its database, uploads and \
                 trees there; mount it read-write, fix its ownership, or pick another with --data",
                data.display()
            )
        })
}

async fn open_parts(settings: &Settings, opener: Opener) -> anyhow::Result<Parts> {
    std::fs::create_dir_all(&settings.data)
        .with_context(|| format!("cannot create data directory {}", settings.data.display()))?;
    writable(&settings.data)?;
    let db = db::open(&settings.database).await?;
    let local = matches!(settings.storage, crate::config::Storage::Filesystem);
    let sole = match &settings.database {
        db::Location::Postgres(url) if opener == Opener::OfflinePublish || local => {
            let held = Cluster::take_sole(url).await?;
            Some(held.ok_or_else(|| match opener {
                Opener::Daemon => anyhow::anyhow!(
                    "another repod already uses this database (a daemon, or `repod publish`); \
                     with a local data directory one daemon serves a database: stop the other, \
                     or give every node the same [storage] kind = \"s3\" to run several"
                ),
                Opener::OfflinePublish => anyhow::anyhow!(
                    "a running repod publishes this installation: ask it instead \
                     (POST /api/v1/distributions/<id>/publish), or stop it first"
                ),
            })?)
        }
        _ => None,
    };
    let plugins = load_plugins(settings).await?;
    let key = load_key(settings).await?;
    let blobs = BlobStore::open(&settings.data, &settings.storage)
        .await
        .with_context(|| format!("cannot open the blob store of {}", settings.data.display()))?;
    tracing::info!(blobs = blobs.describe(), "blob store ready");
    let trees = match (blobs.remote(), &settings.storage) {
        (Some(remote), crate::config::Storage::S3(s3)) => {
            let export = s3.export_prefix.as_deref().map(|p| remote.with_prefix(p));
            let trees = TreeStore::new(
                remote.clone(),
                export,
                blobs.clone(),
                db.clone(),
                &settings.data,
                settings.repos_dir().join(crate::publish::RESERVED_TOP),
            )?;
            trees.refresh().await?;
            Some(Arc::new(trees))
        }
        _ => None,
    };
    Ok(Parts {
        db,
        plugins,
        key,
        blobs,
        trees,
        _sole: sole,
    })
}

/// Loads the plugin directory and logs what it holds.
async fn load_plugins(settings: &Settings) -> anyhow::Result<Arc<PluginHost>> {
    let plugins = {
        let s = settings.clone();
        tokio::task::spawn_blocking(move || {
            let cache = s.component_cache();
            PluginHost::start(s.limits, &s.plugins, Some(cache), s.plugin_sections)
        })
        .await??
    };
    let registry = plugins.registry();
    for plugin in registry.plugins() {
        let what = match &plugin.kind {
            PluginKind::Family(f) => format!("{} distributions", f.info.distributions.len()),
            PluginKind::Policy(_) => "policy".to_owned(),
        };
        tracing::info!(
            plugin = plugin.meta.name,
            version = plugin.meta.version,
            cached = plugin.meta.load.from_cache,
            load_ms = format!("{:.1}", plugin.meta.load.millis),
            "loaded plugin ({what})"
        );
    }
    if registry.plugins().next().is_none() {
        tracing::warn!(dir = %settings.plugins.display(), "no plugins loaded: no distribution is available");
    }

    Ok(Arc::new(plugins))
}

/// Loads (or creates) the signing key and publishes its public half.
async fn load_key(settings: &Settings) -> anyhow::Result<Arc<SigningKey>> {
    let (keys, repos) = (settings.keys_dir(), settings.repos_dir());
    let key = tokio::task::spawn_blocking(move || -> anyhow::Result<SigningKey> {
        let key = SigningKey::load_or_create(&keys, SIGNING_USER_ID)?;
        key.publish(&repos)?;
        Ok(key)
    })
    .await??;
    tracing::info!(
        fingerprint = key.fingerprint(),
        "signing key ready; public key at /repos/keys/repod.asc and repod.gpg"
    );
    Ok(Arc::new(key))
}

/// `repod publish`: one cold publish of `dists` (all when empty).
pub async fn publish_once(
    settings: Settings,
    dists: Vec<String>,
) -> anyhow::Result<Vec<crate::publish::Report>> {
    let Parts {
        db,
        plugins,
        key,
        blobs,
        trees,
        _sole,
    } = open_parts(&settings, Opener::OfflinePublish).await?;
    let registry = plugins.registry();
    let dists = if dists.is_empty() {
        registry
            .distributions()
            .map(|(_, d)| d.id.clone())
            .collect()
    } else {
        for d in &dists {
            if registry.distribution(d).is_none() {
                anyhow::bail!("no distribution {d} in the loaded plugins");
            }
        }
        dists
    };
    Ok(crate::publish::publish_offline(
        Setup {
            db,
            plugins,
            key,
            blobs,
            writes: WriteLock::default(),
            keep_superseded: settings.keep_superseded,
            retention: settings.retention.clone(),
            trees,
            // Offline: this process publishes what it is asked to.
            cluster: None,
        },
        &settings.data,
        &dists,
    )
    .await?)
}

async fn shutdown() {
    let ctrl_c = tokio::signal::ctrl_c();
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .expect("install SIGTERM handler");
    tokio::select! {
        _ = ctrl_c => {}
        _ = term.recv() => {}
    }
    tracing::info!("shutting down");
}
