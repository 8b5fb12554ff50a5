//! Delta RPMs: for each RPM a distribution publishes, deltas from the few
//! newest older versions of it the distribution still keeps, made with
//! `makedeltarpm` (the deltarpm tools, as Koji's dist-repo and
//! createrepo_c `--deltas` make them) and listed in `prestodelta.xml`.
//!
//! The plugin asks on an index (`index-spec.extensions`): `repod.deltas` =
//! N (older versions per package), `repod.deltas-base` = the directory its
//! packages are published in and `<filename>` paths are relative to (an
//! rpm-md repository root, e.g. `almalinux9/x86_64/`), and optionally
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
//! packages are gone are removed by the next publish that makes deltas.

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

/// The delta entries of every index of `dist` that asks, by index path,
/// for version `view` (making the deltas not made yet).
pub async fn entries(
    db: &Db,
    plugins: &PluginHost,
    blobs: &crate::blobs::BlobStore,
    cache: &Path,
    dist: &str,
    view: &View,
    unlisted: &HashSet<String>,
) -> Result<BTreeMap<String, Vec<Entry>>, PublishError> {
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
    // Every RPM the distribution keeps, in any version: the candidates.
    let rows: Vec<(String, String, String, String, String, i64)> = sqlx::query_as(
        "SELECT p.id, p.name, p.version, p.architecture, p.sha256, b.size FROM packages p \
         JOIN blobs b ON b.sha256 = p.sha256 WHERE p.distribution = $1 AND b.format = 'rpm'",
    )
    .bind(dist)
    .fetch_all(db)
    .await?;
    let by_sha: HashMap<&str, Row> = rows
        .iter()
        .filter(|(id, ..)| !unlisted.contains(id))
        .map(|(_, name, version, arch, sha, size)| {
            (
                sha.as_str(),
                Row {
                    name: name.clone(),
                    version: version.clone(),
                    arch: arch.clone(),
                    sha256: sha.clone(),
                    size: (*size).max(0) as u64,
                },
            )
        })
        .collect();
    let mut groups: HashMap<(&str, &str), Vec<Row>> = HashMap::new();
    for (_, name, version, arch, sha, size) in &rows {
        let group = groups.entry((name, arch)).or_default();
        if !group.iter().any(|r| r.version == *version) {
            group.push(Row {
                name: name.clone(),
                version: version.clone(),
                arch: arch.clone(),
                sha256: sha.clone(),
                size: (*size).max(0) as u64,
            });
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
                targets.push((i, row.clone()));
            }
        }
    }
    // Older versions by the family's order: every pair within a group.
    let mut pairs: Vec<(String, String)> = Vec::new();
    for group in groups.values().filter(|g| g.len() > 1) {
        for a in group {
            for b in group {
                if a.version != b.version {
                    pairs.push((a.version.clone(), b.version.clone()));
                }
            }
        }
    }
    let dist_id = dist.to_owned();
    let order: Vec<Ordering> = if pairs.is_empty() {
        Vec::new()
    } else {
        let asked = pairs.clone();
        plugins
            .blocking(move |registry| {
                let (family, _) = registry
                    .distribution(&dist_id)
                    .ok_or(PublishError::UnknownDistribution(dist_id.clone()))?;
                Ok::<_, PublishError>(family.compare_versions(&asked)?)
            })
            .await?
    };
    let less: HashSet<(&str, &str)> = pairs
        .iter()
        .zip(&order)
        .filter(|(_, o)| **o == Ordering::Less)
        .map(|((a, b), _)| (a.as_str(), b.as_str()))
        .collect();

    // For each target, its `count` newest older versions.
    let mut wanted: Vec<(usize, Row, Vec<Row>)> = Vec::new();
    for (i, target) in targets {
        let ask = &asks[i];
        let group = &groups[&(target.name.as_str(), target.arch.as_str())];
        let mut older: Vec<Row> = group
            .iter()
            .filter(|r| {
                less.contains(&(r.version.as_str(), target.version.as_str()))
                    && r.size < ask.max_size
            })
            .cloned()
            .collect();
        // Newest first: a row is newer than another when that one is less.
        older.sort_by(|a, b| {
            if less.contains(&(b.version.as_str(), a.version.as_str())) {
                std::cmp::Ordering::Less
            } else if less.contains(&(a.version.as_str(), b.version.as_str())) {
                std::cmp::Ordering::Greater
            } else {
                std::cmp::Ordering::Equal
            }
        });
        older.truncate(ask.count);
        if !older.is_empty() {
            wanted.push((i, target, older));
        }
    }

    let jobs: Vec<(String, String)> = wanted
        .iter()
        .flat_map(|(_, t, older)| older.iter().map(|o| (o.sha256.clone(), t.sha256.clone())))
        .collect();
    let known: HashSet<String> = crate::catalog::blob_hashes(db).await?.into_iter().collect();
    let made = {
        let cache = cache.to_owned();
        let blobs = blobs.clone();
        tokio::task::spawn_blocking(move || {
            // Deltas of packages no longer stored go first.
            let removed = collect(&cache, &known)?;
            if removed > 0 {
                tracing::info!(removed, "cached delta files of removed packages deleted");
            }
            make_all(&cache, &blobs, &jobs)
        })
        .await
        .expect("delta thread panicked")?
    };

    let mut out: BTreeMap<String, Vec<Entry>> = BTreeMap::new();
    for ask in &asks {
        out.insert(ask.index.to_owned(), Vec::new());
    }
    for (i, target, older) in wanted {
        let ask = &asks[i];
        let dir = ask.index.rsplit_once('/').map_or("", |(d, _)| d);
        let mut deltas = Vec::new();
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
            let name = file_name(old, &target);
            let path = format!("{dir}/drpms/{name}");
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

/// Makes the deltas of `jobs` (old, new SHA-256) not in the cache, on all
/// cores, and answers what the cache holds for each.
fn make_all(
    cache: &Path,
    blobs: &crate::blobs::BlobStore,
    jobs: &[(String, String)],
) -> Result<HashMap<(String, String), Made>, PublishError> {
    std::fs::create_dir_all(cache)?;
    let mut out = HashMap::new();
    let mut missing = Vec::new();
    for (old, new) in jobs {
        let (_, json) = cached(cache, old, new);
        match std::fs::read(&json)
            .ok()
            .and_then(|b| serde_json::from_slice::<Made>(&b).ok())
        {
            Some(made) => {
                out.insert((old.clone(), new.clone()), made);
            }
            None => missing.push((old.clone(), new.clone())),
        }
    }
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
            .flat_map(|w| w.join().expect("delta worker panicked"))
            .collect()
    });
    for (pair, made) in made {
        out.insert(pair, made?);
    }
    Ok(out)
}

/// Runs makedeltarpm on one pair and records the result in the cache.
fn make(
    cache: &Path,
    blobs: &crate::blobs::BlobStore,
    old: &str,
    new: &str,
) -> Result<Made, PublishError> {
    let (drpm, json) = cached(cache, old, new);
    // Two publishes may make one pair at once: each writes its own files,
    // and the renames leave one whole result.
    static RUN: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let stem = format!(
        ".{old}_{new}.{}.{}",
        std::process::id(),
        RUN.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    );
    let tmp = cache.join(format!("{stem}.drpm.tmp"));
    let seq = cache.join(format!("{stem}.seq.tmp"));
    let run = Command::new("makedeltarpm")
        .arg("-s")
        .arg(&seq)
        .arg(blobs.path(old))
        .arg(blobs.path(new))
        .arg(&tmp)
        .output()?;
    let made = if run.status.success() {
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
    } else {
        let error = String::from_utf8_lossy(&run.stderr).trim().to_owned();
        tracing::warn!(
            old,
            new,
            error,
            "makedeltarpm failed; no delta for this pair"
        );
        let _ = std::fs::remove_file(&tmp);
        Made::Failed { error }
    };
    let _ = std::fs::remove_file(&seq);
    let written = cache.join(format!("{stem}.json.tmp"));
    std::fs::write(&written, serde_json::to_vec(&made).expect("serializable"))?;
    std::fs::rename(&written, &json)?;
    Ok(made)
}

/// makedeltarpm is there, or an error that says how to get it.
fn check_tools() -> Result<(), PublishError> {
    match Command::new("makedeltarpm").arg("-V").output() {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(PublishError::Layout(
            "delta RPMs need makedeltarpm, which is not installed (Debian/Ubuntu: \
             apt-get install deltarpm; Fedora/EL: dnf install deltarpm), or turn deltas off \
             for this distribution"
                .into(),
        )),
        _ => Ok(()),
    }
}

/// Removes cached deltas of packages no longer stored (`known`: the
/// SHA-256 of every stored blob).
fn collect(cache: &Path, known: &HashSet<String>) -> std::io::Result<usize> {
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

#[cfg(test)]
mod tests {
    use super::*;

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
