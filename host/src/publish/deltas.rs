//! Delta RPMs: for each RPM a distribution publishes, deltas from the few
//! newest older versions of it the distribution still keeps, made with
//! `makedeltarpm` (the deltarpm tools, as Koji's dist-repo and
//! createrepo_c `--deltas` make them) and listed in `prestodelta.xml`.
//!
//! The plugin asks on an index (`index-spec.extensions`): `repod.deltas` =
//! N (older versions per package), `repod.deltas-base` = the directory its
//! packages are published in and `<filename>` paths are relative to (an
//! rpm-md repository root, e.g. `<dist>/x86_64/`), and optionally
//! `repod.deltas-max-size` (bytes; createrepo_c's `--max-delta-rpm-size`,
//! default 100 MB). The host fills that index with one `<newpackage>`
//! entry per package that has deltas, and publishes the files next to it
//! in `<index dir>/drpms/` (inside the unit, so they switch atomically
//! with the index that lists them). Contract 0.1 has no call to hand delta
//! facts to the plugin, so the host writes the entries: the one piece of
//! rpm-md it renders (contract 0.2 should move it to the plugin).
//!
//! Deltas are cached in `data/deltas/` by the SHA-256s of the two packages
//! (a pair is made once, whatever the number of publishes or
//! distributions), with a small JSON file of what the index lists; a pair
//! makedeltarpm failed on is remembered and not retried. Entries whose
//! packages are gone are removed by the worker's idle sweep.
//!
//! In the daemon a publish lists the deltas already made and never waits
//! for new ones: those are made in the background (one job per
//! distribution at a time, each makedeltarpm run bounded in time), and the
//! distribution is published again when they are ready. `repod publish`
//! makes them inline, so its tree is complete.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::process::Command;

use serde::{Deserialize, Serialize};

use super::PublishError;
use super::snapshot::View;
use crate::db::Db;
use crate::plugins::PluginHost;
use crate::plugins::contract::{IndexSpec, Ordering, extension};

const DELTAS: &str = "repod.deltas";
const BASE: &str = "repod.deltas-base";
const MAX_SIZE: &str = "repod.deltas-max-size";
/// createrepo_c's default `--max-delta-rpm-size`.
const DEFAULT_MAX_SIZE: u64 = 100_000_000;

/// What one index asks for.
struct Ask<'a> {
    index: &'a str,
    count: usize,
    base: &'a str,
    max_size: u64,
}

fn ask(spec: &IndexSpec) -> Result<Option<Ask<'_>>, PublishError> {
    let Some(count) = extension(&spec.extensions, DELTAS) else {
        return Ok(None);
    };
    let bad = |what: String| PublishError::Layout(format!("index {}: {what}", spec.path));
    let count: usize = count
        .parse()
        .map_err(|_| bad(format!("{DELTAS} {count:?} is not a number")))?;
    if !spec.path.contains('/') {
        return Err(bad(format!(
            "{DELTAS} needs an index in a directory (its deltas go to <dir>/drpms/)"
        )));
    }
    let base = extension(&spec.extensions, BASE).unwrap_or("");
    if !(base.is_empty() || base.ends_with('/')) || !spec.path.starts_with(base) {
        return Err(bad(format!(
            "{BASE} {base:?} must be a directory (ending in /) holding the index"
        )));
    }
    let max_size = match extension(&spec.extensions, MAX_SIZE) {
        Some(max) => max
            .parse()
            .map_err(|_| bad(format!("{MAX_SIZE} {max:?} is not a number")))?,
        None => DEFAULT_MAX_SIZE,
    };
    Ok((count > 0).then_some(Ask {
        index: &spec.path,
        count,
        base,
        max_size,
    }))
}

/// One `<newpackage>` entry and the delta files it lists.
#[derive(Clone, Debug)]
pub struct Entry {
    pub sort_key: String,
    pub text: String,
    /// (tree path, cached file, SHA-256).
    pub files: Vec<(String, PathBuf, String)>,
}

/// What the cache keeps of a delta: what the index lists, or why there is
/// none.
#[derive(Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
enum Made {
    Delta {
        sha256: String,
        size: u64,
        sequence: String,
    },
    Failed {
        error: String,
    },
}

/// A package row as deltas need it.
#[derive(Clone)]
struct Row {
    name: String,
    version: String,
    arch: String,
    sha256: String,
    size: u64,
}

/// What finding and making deltas uses.
pub struct Sources<'a> {
    pub db: &'a Db,
    pub plugins: &'a PluginHost,
    pub blobs: &'a crate::blobs::BlobStore,
    /// The cache directory (`Paths::deltas`).
    pub cache: &'a Path,
    pub making: &'a Making,
}

/// The delta entries of every index of `dist` that asks, by index path,
/// for version `view` without the `unlisted` packages: the deltas made,
/// the missing ones made first or in the background (`Sources::making`).
pub async fn entries(
    sources: &Sources<'_>,
    dist: &str,
    view: &View,
    unlisted: &HashSet<String>,
) -> Result<BTreeMap<String, Vec<Entry>>, PublishError> {
    let Sources {
        db,
        plugins,
        blobs,
        cache,
        making,
    } = *sources;
    let registry = plugins.registry();
    let Some((_, distribution)) = registry.distribution(dist) else {
        return Err(PublishError::UnknownDistribution(dist.to_owned()));
    };
    let asks: Vec<Ask> = distribution
        .indexes
        .iter()
        .filter_map(|s| ask(s).transpose())
        .collect::<Result<_, _>>()?;
    if asks.is_empty() {
        return Ok(BTreeMap::new());
    }
    // Every RPM a kept version of the distribution lists: the candidates
    // (not a held one, which no client can have had from here).
    let rows: Vec<(String, String, String, String, String, i64)> = sqlx::query_as(
        "SELECT p.id, p.name, p.version, p.architecture, p.sha256, b.size FROM packages p \
         JOIN blobs b ON b.sha256 = p.sha256 WHERE p.distribution = $1 AND b.format = 'rpm' \
         AND p.held = FALSE AND EXISTS (SELECT 1 FROM memberships m WHERE m.package_id = p.id)",
    )
    .bind(dist)
    .fetch_all(db)
    .await?;
    let rows: Vec<Row> = rows
        .into_iter()
        .filter(|(id, ..)| !unlisted.contains(id))
        .map(|(_, name, version, arch, sha256, size)| Row {
            name,
            version,
            arch,
            sha256,
            size: size.max(0) as u64,
        })
        .collect();
    let by_sha: HashMap<&str, &Row> = rows.iter().map(|r| (r.sha256.as_str(), r)).collect();
    let mut groups: HashMap<(&str, &str), Vec<Row>> = HashMap::new();
    for row in &rows {
        let group = groups.entry((&row.name, &row.arch)).or_default();
        if !group.iter().any(|r| r.version == row.version) {
            group.push(row.clone());
        }
    }
    // Targets: the packages published directly in each asking directory.
    let mut targets: Vec<(usize, Row)> = Vec::new();
    for (i, ask) in asks.iter().enumerate() {
        for (path, sha) in &view.pool {
            let Some(file) = path.strip_prefix(ask.base) else {
                continue;
            };
            if file.contains('/') {
                continue;
            }
            if let Some(row) = by_sha.get(sha.as_str())
                && row.size < ask.max_size
            {
                targets.push((i, (*row).clone()));
            }
        }
    }
    let wanted = choose(plugins, dist, &asks, &groups, targets).await?;

    let mut jobs: Vec<(String, String)> = wanted
        .iter()
        .flat_map(|(_, t, older)| older.iter().map(|o| (o.sha256.clone(), t.sha256.clone())))
        .collect();
    jobs.sort();
    jobs.dedup();
    // (The cache of packages no longer stored is collected by the worker's
    // idle sweep, not here on every publish.)
    let made = {
        let cache = cache.to_owned();
        let blobs = blobs.clone();
        let dist = dist.to_owned();
        let making = making.clone();
        tokio::task::spawn_blocking(move || {
            let (made, missing) = look_up(&cache, &jobs)?;
            match making {
                Making::Inline => {
                    let mut made = made;
                    made.extend(make_all(&cache, &blobs, &missing)?);
                    Ok::<_, PublishError>(made)
                }
                Making::Background(ref background) if !missing.is_empty() => {
                    background.start(dist, cache, blobs, missing);
                    Ok(made)
                }
                Making::Background(_) => Ok(made),
            }
        })
        .await
        .map_err(|e| PublishError::Failed(format!("making delta RPMs failed: {e}")))??
    };

    let mut out: BTreeMap<String, Vec<Entry>> = BTreeMap::new();
    for ask in &asks {
        out.insert(ask.index.to_owned(), Vec::new());
    }
    for (i, target, older) in wanted {
        let ask = &asks[i];
        let dir = ask.index.rsplit_once('/').map_or("", |(d, _)| d);
        let mut deltas = Vec::new();
        let mut names = HashSet::new();
        for old in &older {
            let key = (old.sha256.clone(), target.sha256.clone());
            let Some(Made::Delta {
                sha256,
                size,
                sequence,
            }) = made.get(&key)
            else {
                continue;
            };
            // A delta no smaller than the package helps no client.
            if *size >= target.size {
                continue;
            }
            // Names leave out epochs (as createrepo_c's): of two old
            // versions that differ only there, the newer one's delta.
            let name = file_name(old, &target);
            if !names.insert(name.clone()) {
                continue;
            }
            let path = format!("{dir}/drpms/{name}");
            crate::plugins::checks::tree_path("delta file", &path).map_err(|e| {
                PublishError::Layout(format!("cannot publish a delta of {}: {e}", target.name))
            })?;
            if name.contains('/') {
                return Err(PublishError::Layout(format!(
                    "cannot publish a delta of {}: its file name {name:?} has a /",
                    target.name
                )));
            }
            let href = path.strip_prefix(ask.base).unwrap_or(&path).to_owned();
            deltas.push((old, href, path, *size, sha256.clone(), sequence.clone()));
        }
        if deltas.is_empty() {
            continue;
        }
        let (epoch, version, release) = evr(&target.version);
        let mut text = format!(
            "  <newpackage name=\"{}\" epoch=\"{epoch}\" version=\"{}\" release=\"{}\" arch=\"{}\">\n",
            esc(&target.name),
            esc(version),
            esc(release),
            esc(&target.arch),
        );
        let mut files = Vec::new();
        for (old, href, path, size, sha256, sequence) in deltas {
            let (old_epoch, old_version, old_release) = evr(&old.version);
            text.push_str(&format!(
                "    <delta oldepoch=\"{old_epoch}\" oldversion=\"{}\" oldrelease=\"{}\">\n      \
                 <filename>{}</filename>\n      \
                 <sequence>{}</sequence>\n      \
                 <size>{size}</size>\n      \
                 <checksum type=\"sha256\">{sha256}</checksum>\n    \
                 </delta>\n",
                esc(old_version),
                esc(old_release),
                esc(&href),
                esc(&sequence),
            ));
            files.push((path, cached(cache, &old.sha256, &target.sha256).0, sha256));
        }
        text.push_str("  </newpackage>\n");
        out.entry(ask.index.to_owned()).or_default().push(Entry {
            sort_key: format!("{} {} {}", target.name, target.arch, target.version),
            text,
            files,
        });
    }
    for entries in out.values_mut() {
        entries.sort_by(|a, b| a.sort_key.cmp(&b.sort_key));
    }
    Ok(out)
}

fn esc(s: &str) -> std::borrow::Cow<'_, str> {
    quick_xml::escape::escape(s)
}

/// `[E:]V-R` as (epoch, version, release), epoch "0" when absent.
fn evr(full: &str) -> (&str, &str, &str) {
    let (epoch, rest) = match full.split_once(':') {
        Some((e, rest)) => (e, rest),
        None => ("0", full),
    };
    let (version, release) = rest.rsplit_once('-').unwrap_or((rest, ""));
    (epoch, version, release)
}

/// createrepo_c's name: `name-oldver-oldrel_newver-newrel.arch.drpm`, no
/// epochs.
fn file_name(old: &Row, new: &Row) -> String {
    let vr = |row: &Row| {
        let (_, v, r) = evr(&row.version);
        format!("{v}-{r}")
    };
    format!("{}-{}_{}.{}.drpm", new.name, vr(old), vr(new), new.arch)
}

/// The cached delta file of a pair and its description.
fn cached(cache: &Path, old: &str, new: &str) -> (PathBuf, PathBuf) {
    let stem = format!("{old}_{new}");
    (
        cache.join(format!("{stem}.drpm")),
        cache.join(format!("{stem}.json")),
    )
}

/// How a publish gets the deltas not made yet.
#[derive(Clone)]
pub enum Making {
    /// Made before the publish goes on (`repod publish`).
    Inline,
    /// Made in the background; the publish lists what is ready.
    Background(Background),
}

/// The daemon's background delta jobs: one per distribution at a time,
/// which asks for a publish of it when done.
#[derive(Clone)]
pub struct Background {
    running: std::sync::Arc<std::sync::Mutex<HashSet<String>>>,
    done: std::sync::Arc<dyn Fn(&str) + Send + Sync>,
}

impl Background {
    /// `done(dist)` is called when a job for `dist` made its deltas.
    pub fn new(done: impl Fn(&str) + Send + Sync + 'static) -> Background {
        Background {
            running: Default::default(),
            done: std::sync::Arc::new(done),
        }
    }

    /// Makes `missing` for `dist` unless a job for it runs already (the
    /// publish its end asks for finds what is still missing).
    fn start(
        &self,
        dist: String,
        cache: PathBuf,
        blobs: crate::blobs::BlobStore,
        missing: Vec<(String, String)>,
    ) {
        if !self
            .running
            .lock()
            .expect("delta jobs")
            .insert(dist.clone())
        {
            return;
        }
        let this = self.clone();
        std::thread::spawn(move || {
            let count = missing.len();
            let started = std::time::Instant::now();
            match make_all(&cache, &blobs, &missing) {
                Ok(_) => tracing::info!(
                    distribution = dist,
                    count,
                    seconds = started.elapsed().as_secs_f64(),
                    "delta RPMs made"
                ),
                Err(e) => {
                    tracing::warn!(distribution = dist, error = %e, "making delta RPMs failed")
                }
            }
            this.running.lock().expect("delta jobs").remove(&dist);
            (this.done)(&dist);
        });
    }
}

/// For each target, its `count` newest older versions by the family's
/// order: one batched comparison of each target against its group, then
/// knock-out rounds (one batched call each) for the newest of what is left,
/// `count` times. Calls carry at most [`PAIRS_PER_CALL`] pairs.
async fn choose(
    plugins: &PluginHost,
    dist: &str,
    asks: &[Ask<'_>],
    groups: &HashMap<(&str, &str), Vec<Row>>,
    targets: Vec<(usize, Row)>,
) -> Result<Vec<(usize, Row, Vec<Row>)>, PublishError> {
    // Older: every other version of the group below the target.
    let mut pairs = Vec::new();
    let mut candidates: Vec<Vec<Row>> = Vec::with_capacity(targets.len());
    for (i, target) in &targets {
        let group = &groups[&(target.name.as_str(), target.arch.as_str())];
        let others: Vec<Row> = group
            .iter()
            .filter(|r| r.version != target.version && r.size < asks[*i].max_size)
            .cloned()
            .collect();
        pairs.extend(
            others
                .iter()
                .map(|r| (r.version.clone(), target.version.clone())),
        );
        candidates.push(others);
    }
    let mut order = compare(plugins, dist, pairs).await?.into_iter();
    for older in &mut candidates {
        older.retain(|_| order.next() == Some(Ordering::Less));
    }
    // The newest of the rest, `count` times.
    let mut chosen: Vec<Vec<Row>> = vec![Vec::new(); targets.len()];
    let rounds = asks.iter().map(|a| a.count).max().unwrap_or(0);
    for _ in 0..rounds {
        // Knock-out: each pool halves per round until one is left.
        let mut pools: Vec<Vec<Row>> = candidates
            .iter()
            .zip(&targets)
            .zip(&chosen)
            .map(|((older, (i, _)), chosen)| {
                if chosen.len() < asks[*i].count {
                    older.clone()
                } else {
                    Vec::new()
                }
            })
            .collect();
        while pools.iter().any(|p| p.len() > 1) {
            let pairs: Vec<(String, String)> = pools
                .iter()
                .flat_map(|p| {
                    p.chunks_exact(2)
                        .map(|c| (c[0].version.clone(), c[1].version.clone()))
                })
                .collect();
            let mut order = compare(plugins, dist, pairs).await?.into_iter();
            for pool in &mut pools {
                let mut next = Vec::with_capacity(pool.len().div_ceil(2));
                for c in pool.chunks(2) {
                    match c {
                        [a, b] => next.push(if order.next() == Some(Ordering::Less) {
                            b.clone()
                        } else {
                            a.clone()
                        }),
                        [a] => next.push(a.clone()),
                        _ => unreachable!("chunks of one or two"),
                    }
                }
                *pool = next;
            }
        }
        for ((pool, chosen), older) in pools.into_iter().zip(&mut chosen).zip(&mut candidates) {
            if let Some(newest) = pool.into_iter().next() {
                older.retain(|r| r.version != newest.version);
                chosen.push(newest);
            }
        }
    }
    Ok(targets
        .into_iter()
        .zip(chosen)
        .filter(|(_, older)| !older.is_empty())
        .map(|((i, target), older)| (i, target, older))
        .collect())
}

/// Pairs per compare-versions call: a bounded request and answer, far
/// inside a plugin's memory and time limits.
const PAIRS_PER_CALL: usize = 20_000;

/// The family's order of each pair.
async fn compare(
    plugins: &PluginHost,
    dist: &str,
    pairs: Vec<(String, String)>,
) -> Result<Vec<Ordering>, PublishError> {
    let mut out = Vec::with_capacity(pairs.len());
    for batch in pairs.chunks(PAIRS_PER_CALL) {
        let (dist, batch) = (dist.to_owned(), batch.to_vec());
        let n = batch.len();
        let answer = plugins
            .blocking(move |registry| {
                let (family, _) = registry
                    .distribution(&dist)
                    .ok_or(PublishError::UnknownDistribution(dist.clone()))?;
                Ok::<_, PublishError>(family.compare_versions(&batch)?)
            })
            .await?;
        if answer.len() != n {
            return Err(PublishError::Failed(format!(
                "the family plugin compared {} version pairs of {n}",
                answer.len()
            )));
        }
        out.extend(answer);
    }
    Ok(out)
}

/// What the cache holds for `jobs` (old, new SHA-256), and the pairs it
/// does not hold (or holds a delta whose file is gone or not whole).
#[allow(clippy::type_complexity)]
fn look_up(
    cache: &Path,
    jobs: &[(String, String)],
) -> Result<(HashMap<(String, String), Made>, Vec<(String, String)>), PublishError> {
    std::fs::create_dir_all(cache)?;
    let mut out = HashMap::new();
    let mut missing = Vec::new();
    for (old, new) in jobs {
        let (drpm, json) = cached(cache, old, new);
        let made = std::fs::read(&json)
            .ok()
            .and_then(|b| serde_json::from_slice::<Made>(&b).ok())
            .filter(|made| match made {
                Made::Delta { size, .. } => {
                    std::fs::metadata(&drpm).is_ok_and(|m| m.len() == *size)
                }
                Made::Failed { .. } => true,
            });
        match made {
            Some(made) => {
                out.insert((old.clone(), new.clone()), made);
            }
            None => missing.push((old.clone(), new.clone())),
        }
    }
    Ok((out, missing))
}

/// Makes the deltas of `missing` (old, new SHA-256) on all cores.
fn make_all(
    cache: &Path,
    blobs: &crate::blobs::BlobStore,
    missing: &[(String, String)],
) -> Result<HashMap<(String, String), Made>, PublishError> {
    let mut out = HashMap::new();
    if missing.is_empty() {
        return Ok(out);
    }
    check_tools()?;
    let next = std::sync::atomic::AtomicUsize::new(0);
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let made: Vec<((String, String), Result<Made, PublishError>)> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads.min(missing.len()))
            .map(|_| {
                scope.spawn(|| {
                    let mut done = Vec::new();
                    loop {
                        let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        let Some((old, new)) = missing.get(i) else {
                            return done;
                        };
                        done.push(((old.clone(), new.clone()), make(cache, blobs, old, new)));
                    }
                })
            })
            .collect();
        workers
            .into_iter()
            .flat_map(|w| w.join().unwrap_or_default())
            .collect()
    });
    for (pair, made) in made {
        out.insert(pair, made?);
    }
    Ok(out)
}

/// How long one makedeltarpm run may take (a 100 MB package takes seconds).
const MAKE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(300);

/// Runs makedeltarpm on one pair and records the result in the cache: a
/// delta, or a failure that is not retried. A run that was killed or timed
/// out records nothing (the next publish tries again).
fn make(
    cache: &Path,
    blobs: &crate::blobs::BlobStore,
    old: &str,
    new: &str,
) -> Result<Made, PublishError> {
    let (drpm, json) = cached(cache, old, new);
    // Two processes may make one pair at once (two distributions holding
    // the same packages): each writes its own files, and the renames leave
    // one whole result (makedeltarpm's output is deterministic).
    static RUN: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let stem = format!(
        ".{old}_{new}.{}.{}",
        std::process::id(),
        RUN.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    );
    let tmp = cache.join(format!("{stem}.drpm.tmp"));
    let seq = cache.join(format!("{stem}.seq.tmp"));
    let cleanup = || {
        let _ = std::fs::remove_file(&tmp);
        let _ = std::fs::remove_file(&seq);
    };
    let mut child = Command::new("makedeltarpm")
        .arg("-s")
        .arg(&seq)
        .arg(blobs.local(old)?)
        .arg(blobs.local(new)?)
        .arg(&tmp)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()?;
    let started = std::time::Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait()? {
            break status;
        }
        if started.elapsed() > MAKE_TIMEOUT {
            let _ = child.kill();
            let _ = child.wait();
            cleanup();
            return Err(PublishError::Failed(format!(
                "makedeltarpm ran over {} s on {old} -> {new}",
                MAKE_TIMEOUT.as_secs()
            )));
        }
        // Most runs take 10-20 ms: look often at first, then rarely.
        std::thread::sleep(if started.elapsed() < std::time::Duration::from_secs(1) {
            std::time::Duration::from_millis(2)
        } else {
            std::time::Duration::from_millis(50)
        });
    };
    let mut stderr = String::new();
    if let Some(mut err) = child.stderr.take() {
        use std::io::Read;
        let _ = err.read_to_string(&mut stderr);
    }
    let made = if status.success() {
        let bytes = std::fs::read(&tmp)?;
        let sequence = std::fs::read_to_string(&seq)?.trim().to_owned();
        use sha2::Digest;
        let made = Made::Delta {
            sha256: hex::encode(sha2::Sha256::digest(&bytes)),
            size: bytes.len() as u64,
            sequence,
        };
        std::fs::rename(&tmp, &drpm)?;
        made
    } else if status.code().is_some() {
        let error = stderr.trim().to_owned();
        tracing::warn!(
            old,
            new,
            error,
            "makedeltarpm failed; no delta for this pair"
        );
        Made::Failed { error }
    } else {
        cleanup();
        return Err(PublishError::Failed(format!(
            "makedeltarpm was killed ({status}) on {old} -> {new}"
        )));
    };
    cleanup();
    let written = cache.join(format!("{stem}.json.tmp"));
    std::fs::write(&written, serde_json::to_vec(&made).expect("serializable"))?;
    std::fs::rename(&written, &json)?;
    Ok(made)
}

/// makedeltarpm is there, or an error that says how to get it.
fn check_tools() -> Result<(), PublishError> {
    match Command::new("makedeltarpm").arg("-V").output() {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(PublishError::Failed(
            "delta RPMs need makedeltarpm, which is not installed (install the deltarpm \
             package of this machine's system), or turn deltas off \
             for this distribution"
                .into(),
        )),
        _ => Ok(()),
    }
}

/// Removes cached deltas of packages no longer stored (`known`: the
/// SHA-256 of every stored blob).
pub(super) fn collect(cache: &Path, known: &HashSet<String>) -> std::io::Result<usize> {
    let Ok(dir) = std::fs::read_dir(cache) else {
        return Ok(0);
    };
    let mut removed = 0;
    for entry in dir {
        let path = entry?.path();
        let Some(stem) = path.file_stem().and_then(|s| s.to_str()) else {
            continue;
        };
        if stem.starts_with('.') {
            // A temporary file of a run that died long ago.
            let old =
                entry_age(&path).is_some_and(|age| age > std::time::Duration::from_secs(3600));
            if old {
                std::fs::remove_file(&path)?;
                removed += 1;
            }
            continue;
        }
        let stale = match stem.split_once('_') {
            Some((old, new)) => !known.contains(old) || !known.contains(new),
            None => false,
        };
        if stale {
            std::fs::remove_file(&path)?;
            removed += 1;
        }
    }
    Ok(removed)
}

fn entry_age(path: &Path) -> Option<std::time::Duration> {
    std::fs::metadata(path)
        .ok()?
        .modified()
        .ok()?
        .elapsed()
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn collection_keeps_the_pairs_of_stored_packages_only() {
        let dir = tempfile::tempdir().unwrap();
        for name in [
            "a_b.drpm",
            "a_b.json",
            "a_gone.drpm",
            "gone_b.json",
            ".a_b.1.2.drpm.tmp",
        ] {
            std::fs::write(dir.path().join(name), b"x").unwrap();
        }
        let known: HashSet<String> = ["a", "b"].map(String::from).into();
        assert_eq!(collect(dir.path(), &known).unwrap(), 2);
        let mut left: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        left.sort();
        // A fresh temporary file belongs to a run in progress.
        assert_eq!(left, [".a_b.1.2.drpm.tmp", "a_b.drpm", "a_b.json"]);
        assert_eq!(collect(&dir.path().join("none"), &known).unwrap(), 0);
    }

    #[test]
    fn evr_and_file_names_follow_createrepo_c() {
        assert_eq!(evr("3:2.1-1.el9"), ("3", "2.1", "1.el9"));
        assert_eq!(evr("1.2-1"), ("0", "1.2", "1"));
        let row = |version: &str| Row {
            name: "hello".into(),
            version: version.into(),
            arch: "noarch".into(),
            sha256: String::new(),
            size: 0,
        };
        assert_eq!(
            file_name(&row("3:1.0-1"), &row("3:1.2-1")),
            "hello-1.0-1_1.2-1.noarch.drpm"
        );
    }
}
