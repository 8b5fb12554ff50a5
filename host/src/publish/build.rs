//! One publish of one distribution: the stored entries become index files,
//! the family plugin renders the top-level files from their checksums, the
//! host signs them, and the result replaces the live units atomically.
//!
//! The plugin is called twice per publish (frames, top level) whatever the
//! number of packages: entries were rendered once, at ingest.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};

use md5::Md5;
use serde::Serialize;
use sha1::Sha1;
use sha2::{Digest, Sha256, Sha512};

use super::PublishError;
use super::compress::{Body, Codec, PieceCache};
use super::tree::{self, RESERVED_TOP, Staging, State};
use crate::blobs::BlobStore;
use crate::plugins::Registry;
use crate::plugins::contract::{
    Compression, Distribution, IndexSpec, PublishedFile, SignatureKind,
};
use crate::signing::SigningKey;

/// What a publish reads from the database, taken before any file is built.
pub struct Snapshot {
    pub dist: String,
    pub packages: u64,
    /// (index path, sort key, text), ordered by index path then sort key.
    pub entries: Vec<(String, String, String)>,
    /// Pool path -> blob SHA-256.
    pub pool: BTreeMap<String, String>,
    /// Pool paths this distribution published before, no longer its own,
    /// that no other package refers to: deleted after the switch.
    pub orphaned_pool: Vec<String>,
}

/// Where a publish writes.
pub struct Paths {
    pub repos: PathBuf,
    pub staging: PathBuf,
    pub state: PathBuf,
}

impl Paths {
    pub fn under(data: &Path) -> Paths {
        Paths {
            repos: data.join("repos"),
            staging: data.join("publish").join("staging"),
            state: data.join("publish").join("state"),
        }
    }

    pub fn state_file(&self, dist: &str) -> PathBuf {
        self.state.join(format!("{dist}.json"))
    }
}

/// What a publish did, as the API reports it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Report {
    pub distribution: String,
    /// Unix seconds, the `Date` of the top-level files.
    pub published_at: i64,
    pub packages: u64,
    /// Index and top-level files written (by-hash copies not counted).
    pub files: usize,
    /// Bytes of those files.
    pub bytes: u64,
    /// Compressed pieces taken from the previous publish / compressed anew.
    pub pieces_reused: usize,
    pub pieces_compressed: usize,
    /// Pool links added or replaced, and removed.
    pub pool_linked: usize,
    pub pool_removed: usize,
    pub duration_ms: f64,
}

fn codec(c: Compression) -> Codec {
    match c {
        Compression::Gzip => Codec::Gzip,
        Compression::Xz => Codec::Xz,
        Compression::Zstd => Codec::Zstd,
        Compression::Bzip2 => Codec::Bzip2,
    }
}

fn contract_compression(c: Codec) -> Compression {
    match c {
        Codec::Gzip => Compression::Gzip,
        Codec::Xz => Compression::Xz,
        Codec::Zstd => Compression::Zstd,
        Codec::Bzip2 => Compression::Bzip2,
    }
}

/// The checksums `algos` asks for, plus SHA-256 always, lowercase hex.
fn checksums(bytes: &[u8], algos: &[String]) -> Result<Vec<(String, String)>, PublishError> {
    let mut out = vec![("sha256".to_owned(), hex::encode(Sha256::digest(bytes)))];
    for algo in algos {
        let hex = match algo.as_str() {
            "sha256" => continue,
            "sha512" => hex::encode(Sha512::digest(bytes)),
            "sha1" => hex::encode(Sha1::digest(bytes)),
            "md5" => hex::encode(Md5::digest(bytes)),
            other => {
                return Err(PublishError::Layout(format!(
                    "index checksum {other:?} is not one of md5, sha1, sha256, sha512"
                )));
            }
        };
        out.push((algo.clone(), hex));
    }
    Ok(out)
}

/// APT's by-hash directory names.
fn by_hash_dir(algo: &str) -> Result<&'static str, PublishError> {
    Ok(match algo {
        "md5" => "MD5Sum",
        "sha1" => "SHA1",
        "sha256" => "SHA256",
        "sha512" => "SHA512",
        other => {
            return Err(PublishError::Layout(format!(
                "by-hash algorithm {other:?} is not one of md5, sha1, sha256, sha512"
            )));
        }
    })
}

fn split_dir(path: &str) -> (&str, &str) {
    match path.rsplit_once('/') {
        Some((dir, name)) => (dir, name),
        None => ("", path),
    }
}

fn join(dir: &str, name: &str) -> String {
    if dir.is_empty() {
        name.to_owned()
    } else {
        format!("{dir}/{name}")
    }
}

fn reserved(path: &str) -> bool {
    path.split('/').next() == Some(RESERVED_TOP)
}

/// The blocking part of a publish. `verify_pool` re-checks every pool link
/// instead of trusting the previous publish (first publish after start).
#[allow(clippy::too_many_arguments)]
pub fn build(
    snapshot: Snapshot,
    registry: &Registry,
    key: &SigningKey,
    blobs: &BlobStore,
    paths: &Paths,
    cache: &mut PieceCache,
    state: &mut State,
    verify_pool: bool,
    now: i64,
) -> Result<Report, PublishError> {
    let started = std::time::Instant::now();
    let (family, dist) = registry
        .distribution(&snapshot.dist)
        .ok_or_else(|| PublishError::UnknownDistribution(snapshot.dist.clone()))?;
    let dist: &Distribution = dist;

    // Entries grouped by index, in the order the plugin declared its indexes.
    let mut by_index: HashMap<&str, Vec<(&str, &str)>> = HashMap::new();
    for (index, key, text) in &snapshot.entries {
        by_index
            .entry(index.as_str())
            .or_default()
            .push((key.as_str(), text.as_str()));
    }
    for index in by_index.keys() {
        if !dist.indexes.iter().any(|s| s.path == *index) {
            tracing::warn!(
                distribution = dist.id,
                index,
                "stored entries name an index the plugin no longer declares; they are not published"
            );
        }
    }
    let counts: Vec<(String, u64)> = dist
        .indexes
        .iter()
        .map(|s| {
            let n = by_index.get(s.path.as_str()).map_or(0, Vec::len);
            (s.path.clone(), n as u64)
        })
        .collect();
    let frames = family.render_frames(dist, &counts)?;

    let bodies: Vec<Body> = dist
        .indexes
        .iter()
        .zip(&frames)
        .map(|(spec, frame)| {
            let mut body = Body::new(&frame.head);
            for (key, text) in by_index.get(spec.path.as_str()).into_iter().flatten() {
                body.push_entry(key, text.as_bytes());
            }
            body.finish(&frame.tail)
        })
        .collect();
    let jobs: Vec<(&Body, Vec<Codec>)> = bodies
        .iter()
        .zip(&dist.indexes)
        .map(|(body, spec)| (body, spec.compressions.iter().map(|&c| codec(c)).collect()))
        .collect();
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let (compressed, reuse) = cache.compress(&jobs, threads)?;

    let staging = Staging::create(&paths.staging, &dist.id)?;
    let mut published: Vec<PublishedFile> = Vec::new();
    let mut written: BTreeSet<String> = BTreeSet::new();
    let mut addressed: BTreeSet<String> = BTreeSet::new();
    let mut bytes = 0u64;
    for ((spec, body), files) in dist.indexes.iter().zip(&bodies).zip(compressed) {
        let open_checksums = checksums(&body.bytes, &spec.checksums)?;
        let mut variants: Vec<(Option<Codec>, Vec<u8>)> = Vec::new();
        if spec.keep_uncompressed {
            variants.push((None, body.bytes.clone()));
        }
        for (&c, file) in spec.compressions.iter().zip(files) {
            variants.push((Some(codec(c)), file));
        }
        if variants.is_empty() {
            return Err(PublishError::Layout(format!(
                "index {} is published neither uncompressed nor compressed",
                spec.path
            )));
        }
        for (codec, content) in variants {
            let file = write_variant(
                &staging,
                spec,
                codec,
                &content,
                &open_checksums,
                body.bytes.len() as u64,
                &mut addressed,
            )?;
            bytes += file.size;
            written.insert(file.path.clone());
            published.push(file);
        }
    }

    let publication = family.render_top_level(dist, &published, now.max(0) as u64)?;
    let mut units = BTreeSet::new();
    for file in &publication.files {
        units.insert(split_dir(&file.path).0.to_owned());
        staging.write(&file.path, file.content.as_bytes())?;
        bytes += file.content.len() as u64;
        written.insert(file.path.clone());
        for request in &file.signatures {
            let data = file.content.as_bytes();
            let signature = match request.kind {
                SignatureKind::Cleartext => key.sign_cleartext(data)?,
                SignatureKind::DetachedArmored => key.sign_detached_armored(data)?,
                SignatureKind::DetachedBinary => key.sign_detached_binary(data)?,
            };
            staging.write(&request.path, &signature)?;
            bytes += signature.len() as u64;
            written.insert(request.path.clone());
        }
    }
    for path in &publication.public_key_paths {
        staging.write(path, &key.public_armored())?;
        written.insert(path.clone());
    }
    check_layout(&units, &written, &addressed, &snapshot.pool)?;

    // Pool links first: the new indexes must never name a missing file.
    let mut pool_linked = 0;
    for (path, sha) in &snapshot.pool {
        if verify_pool || state.pool.get(path) != Some(sha) {
            if tree::link_pool_file(&paths.repos, path, &blobs.path(sha))? {
                pool_linked += 1;
            }
        }
    }

    // Keep recently superseded content-addressed files for readers in flight.
    let keep = state.advance(addressed.clone(), now);
    for rel in &keep {
        if tree::unit_of(&units, rel).is_none() {
            continue;
        }
        let live = paths.repos.join(rel);
        let staged = staging.path(rel);
        if live.exists() && !staged.exists() {
            if let Some(parent) = staged.parent() {
                std::fs::create_dir_all(parent)?;
            }
            std::fs::hard_link(&live, &staged)?;
        }
    }
    for unit in &units {
        tree::switch(&staging, &paths.repos, unit)?;
    }

    let mut pool_removed = 0;
    for path in &snapshot.orphaned_pool {
        tree::unlink_pool_file(&paths.repos, path)?;
        pool_removed += 1;
    }
    state.pool = snapshot.pool;
    state.units = units;
    state.save(&paths.state_file(&dist.id))?;

    Ok(Report {
        distribution: dist.id.clone(),
        published_at: now,
        packages: snapshot.packages,
        files: written.len(),
        bytes,
        pieces_reused: reuse.reused,
        pieces_compressed: reuse.compressed,
        pool_linked,
        pool_removed,
        duration_ms: started.elapsed().as_secs_f64() * 1000.0,
    })
}

/// Writes one variant of an index (and its by-hash links) into staging.
fn write_variant(
    staging: &Staging,
    spec: &IndexSpec,
    codec: Option<Codec>,
    content: &[u8],
    open_checksums: &[(String, String)],
    open_size: u64,
    addressed: &mut BTreeSet<String>,
) -> Result<PublishedFile, PublishError> {
    let sums = checksums(content, &spec.checksums)?;
    let sha256 = &sums[0].1;
    let (dir, name) = split_dir(&spec.path);
    let name = match codec {
        Some(c) => format!("{name}.{}", c.extension()),
        None => name.to_owned(),
    };
    let path = if spec.checksum_named {
        let path = join(dir, &format!("{sha256}-{name}"));
        addressed.insert(path.clone());
        path
    } else {
        join(dir, &name)
    };
    staging.write(&path, content)?;
    for algo in &spec.by_hash {
        let hex = &sums
            .iter()
            .find(|(a, _)| a == algo)
            .ok_or_else(|| {
                PublishError::Layout(format!(
                    "index {} asks for by-hash/{algo} without the {algo} checksum",
                    spec.path
                ))
            })?
            .1;
        let link = join(dir, &format!("by-hash/{}/{hex}", by_hash_dir(algo)?));
        staging.link(&path, &link)?;
        addressed.insert(link);
    }
    Ok(PublishedFile {
        path,
        index: spec.path.clone(),
        compression: codec.map(contract_compression),
        size: content.len() as u64,
        checksums: sums,
        open_size,
        open_checksums: open_checksums.to_vec(),
    })
}

/// Every generated file must sit in a unit (the directory of a top-level
/// file), units must not nest, and package files must stay outside them:
/// otherwise the atomic switch would drop or hide something.
fn check_layout(
    units: &BTreeSet<String>,
    written: &BTreeSet<String>,
    addressed: &BTreeSet<String>,
    pool: &BTreeMap<String, String>,
) -> Result<(), PublishError> {
    let bad = |m: String| Err(PublishError::Layout(m));
    if units.is_empty() {
        return bad("the plugin rendered no top-level file (Release, repomd.xml)".into());
    }
    for unit in units {
        if unit.is_empty() {
            return bad("a top-level file sits at the root of the tree".into());
        }
        if let Some(outer) = tree::unit_of(units, unit) {
            return bad(format!(
                "top-level directories {outer} and {unit} nest; each must be separate"
            ));
        }
    }
    for path in written.iter().chain(addressed) {
        if reserved(path) {
            return bad(format!(
                "{path} is under /{RESERVED_TOP}/, which repod keeps for its keys"
            ));
        }
        if tree::unit_of(units, path).is_none() {
            return bad(format!(
                "{path} is outside the directories of the top-level files ({})",
                units.iter().cloned().collect::<Vec<_>>().join(", ")
            ));
        }
    }
    for path in pool.keys() {
        if reserved(path) {
            return bad(format!("package path {path} is under /{RESERVED_TOP}/"));
        }
        if let Some(unit) = tree::unit_of(units, path) {
            return bad(format!(
                "package path {path} is inside {unit}, which is replaced on every publish"
            ));
        }
    }
    Ok(())
}
