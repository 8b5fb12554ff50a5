//! One publish of one distribution: the stored entries become index files,
//! the family plugin renders the top-level files from their checksums, the
//! host signs them, and the result replaces the live units atomically.
//!
//! The plugin is called twice per publish (frames, top level) whatever the
//! number of packages: entries were rendered once, at ingest.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use md5::Md5;
use serde::Serialize;
use sha1::Sha1;
use sha2::{Digest, Sha256, Sha512};

use super::PublishError;
use super::compress::{Body, Codec, PieceCache};
use super::snapshot::View;
use super::tree::{self, RESERVED_TOP, Staging, State};
use crate::blobs::BlobStore;
use crate::plugins::Registry;
use crate::plugins::contract::{
    Compression, Distribution, IndexSpec, PublishedFile, SignatureKind,
};
use crate::signing::SigningKey;

/// A package as a publish needs it. Rows change only when their
/// distribution's plugin or config changes (re-preparation, after which the
/// worker forgets what it kept), so the worker keeps these between
/// publishes and reads only what a new version adds.
pub struct StoredPackage {
    pub sha256: String,
    pub pool_paths: Vec<String>,
    /// (index path, sort key, text), in the order the plugin rendered them.
    pub entries: Vec<(String, String, String)>,
}

/// What a publish reads from the database, taken before any file is built.
pub struct Snapshot {
    pub dist: String,
    /// The version published (0: the distribution never had content).
    pub version: i64,
    /// Its packages, arranged by index (kept by the worker between
    /// publishes).
    pub view: std::sync::Arc<View>,
    /// The distribution's documents (`documents.rs`), by name.
    pub documents: std::collections::BTreeMap<String, String>,
    /// Packages of the version its indexes leave out: RPMs not signed as
    /// the distribution requires, under `missing-signatures = "skip"`.
    pub unlisted: std::collections::HashSet<String>,
    /// Delta RPM entries of the indexes that ask for them, by index.
    pub deltas: BTreeMap<String, Vec<super::deltas::Entry>>,
    /// How long finding (and making) them took.
    pub deltas_ms: f64,
    /// How long reading all this took.
    pub read_ms: f64,
}

/// Where a publish writes.
#[derive(Clone)]
pub struct Paths {
    pub repos: PathBuf,
    pub staging: PathBuf,
    pub state: PathBuf,
    /// Trees moved out of `repos` when their distribution was retired.
    pub retired: PathBuf,
    /// Delta RPMs made so far (`deltas.rs`).
    pub deltas: PathBuf,
}

impl Paths {
    pub fn under(data: &Path) -> Paths {
        Paths {
            repos: data.join("repos"),
            staging: data.join("publish").join("staging"),
            state: data.join("publish").join("state"),
            retired: data.join("publish").join("retired"),
            deltas: data.join("deltas"),
        }
    }

    pub fn state_file(&self, dist: &str) -> PathBuf {
        self.state.join(format!("{dist}.json"))
    }

    /// Where the served tree of version `number` of `dist` lives (its
    /// generated files only; package files come from the shared pool).
    pub fn pinned(&self, dist: &str, number: i64) -> PathBuf {
        self.repos
            .join(tree::PINNED_TOP)
            .join(dist)
            .join(number.to_string())
    }
}

/// What retention collected: versions no longer kept, and the package
/// rows, pool files and blobs only they listed.
#[derive(Debug, Clone, Default, Serialize, utoipa::ToSchema)]
pub struct Collected {
    pub versions: usize,
    pub packages: usize,
    pub pool_files: usize,
    pub blobs: usize,
}

/// What a publish did, as the API reports it.
#[derive(Debug, Clone, Default, Serialize, utoipa::ToSchema)]
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
    /// The distribution version the tree shows.
    pub version: i64,
    /// Pool links added or replaced.
    pub pool_linked: usize,
    /// Packages of the version the indexes leave out (not signed as the
    /// distribution requires, `missing-signatures = "skip"`).
    pub skipped_unsigned: usize,
    /// Delta RPMs listed (`deltas = N`).
    pub deltas: usize,
    /// What the retention pass after this publish collected.
    pub collected: Collected,
    /// Wall time of the whole publish, database read included.
    pub duration_ms: f64,
    /// Where that time went, in milliseconds: `read` (database), `render`
    /// (plugin calls), `deltas` (finding and making delta RPMs), `compress`,
    /// `zchunk`, `write` (hashing and writing indexes), `sign`, `pool`,
    /// `switch`.
    pub phases_ms: BTreeMap<&'static str, f64>,
}

impl Report {
    /// What a node that did not publish knows of another node's publish:
    /// the stored generation's version and time.
    pub fn stored(dist: &str, version: i64, at: i64, waited: std::time::Duration) -> Report {
        Report {
            distribution: dist.to_owned(),
            published_at: at,
            version,
            duration_ms: waited.as_secs_f64() * 1000.0,
            ..Report::default()
        }
    }
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

/// One checksum, lowercase hex.
fn digest(algo: &str, bytes: &[u8]) -> Result<String, PublishError> {
    Ok(match algo {
        "sha256" => hex::encode(Sha256::digest(bytes)),
        "sha512" => hex::encode(Sha512::digest(bytes)),
        "sha1" => hex::encode(Sha1::digest(bytes)),
        "md5" => hex::encode(Md5::digest(bytes)),
        other => {
            return Err(PublishError::Layout(format!(
                "index checksum {other:?} is not one of md5, sha1, sha256, sha512"
            )));
        }
    })
}

/// The checksums each job asks for, plus SHA-256 always (first), computed
/// one (job, algorithm) pair per task on up to `threads` threads.
fn parallel_checksums(
    jobs: &[(&[u8], &[String])],
    threads: usize,
) -> Result<Vec<Vec<(String, String)>>, PublishError> {
    let mut tasks: Vec<(usize, &[u8], String)> = Vec::new();
    for (j, (bytes, algos)) in jobs.iter().enumerate() {
        tasks.push((j, bytes, "sha256".to_owned()));
        for algo in algos.iter().filter(|a| *a != "sha256") {
            tasks.push((j, bytes, algo.clone()));
        }
    }
    // Longest first, so the big files do not start last.
    tasks.sort_by_key(|(_, bytes, algo)| {
        std::cmp::Reverse(bytes.len() * (1 + usize::from(algo == "sha512")))
    });
    let next = std::sync::atomic::AtomicUsize::new(0);
    let results = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads.clamp(1, tasks.len().max(1)))
            .map(|_| {
                scope.spawn(|| {
                    let mut done = Vec::new();
                    loop {
                        let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        let Some((j, bytes, algo)) = tasks.get(i) else {
                            return done;
                        };
                        done.push((*j, algo.clone(), digest(algo, bytes)));
                    }
                })
            })
            .collect();
        workers
            .into_iter()
            .flat_map(|w| w.join().expect("checksum thread panicked"))
            .collect::<Vec<_>>()
    });
    let mut out: Vec<Vec<(String, String)>> = vec![Vec::new(); jobs.len()];
    for (j, algo, hex) in results {
        out[j].push((algo, hex?));
    }
    // sha256 first, then the order the index asked for.
    for ((_, algos), sums) in jobs.iter().zip(&mut out) {
        sums.sort_by_key(|(a, _)| {
            if a == "sha256" {
                0
            } else {
                1 + algos.iter().position(|x| x == a).unwrap_or(0)
            }
        });
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
    path.split('/')
        .next()
        .is_some_and(|top| top == RESERVED_TOP || top == tree::PINNED_TOP)
}

/// A publish rendered into a staging directory, not yet live.
pub struct Built {
    staging: Staging,
    /// The directories of the top-level files.
    units: BTreeSet<String>,
    /// Content-addressed files (checksum-named, by-hash).
    addressed: BTreeSet<String>,
    /// The top-level files, their signatures and public keys.
    top: BTreeSet<String>,
    /// Every file written, with its SHA-256: what a later check of the
    /// live tree compares against.
    files: BTreeMap<String, String>,
    /// The version's packages: their pool paths are linked.
    view: std::sync::Arc<View>,
    bytes: u64,
    reuse: super::compress::Reuse,
    phases: Phases,
    started: std::time::Instant,
    read_ms: f64,
    deltas_ms: f64,
    dist: String,
    version: i64,
    now: i64,
    /// Packages left out of the indexes (`Snapshot::unlisted`).
    skipped: usize,
    deltas: usize,
}

/// The blocking part of a publish up to the signatures: entries become
/// index files, the plugin renders the top-level files, the host signs
/// them, all in a new staging directory. `cache` holds the compressed
/// pieces of the previous publish and is left holding this one's.
pub fn render(
    snapshot: &Snapshot,
    registry: &Registry,
    key: &SigningKey,
    paths: &Paths,
    cache: &mut PieceCache,
    now: i64,
) -> Result<Built, PublishError> {
    let started = std::time::Instant::now();
    let mut phases = Phases::new(snapshot.read_ms);
    if !snapshot.deltas.is_empty() {
        phases.done.insert("deltas", snapshot.deltas_ms);
    }
    let (family, dist) = registry
        .distribution(&snapshot.dist)
        .ok_or_else(|| PublishError::UnknownDistribution(snapshot.dist.clone()))?;
    let dist: &Distribution = dist;

    // Entries by index, each in (sort key, package id) order, arranged by
    // the worker as versions came.
    let by_index = &snapshot.view.indexes;
    for index in by_index.keys() {
        if !dist.indexes.iter().any(|s| s.path == *index) {
            tracing::warn!(
                distribution = dist.id,
                index,
                "stored entries name an index the plugin no longer declares; they are not published"
            );
        }
    }
    let listed = |id: &str| !snapshot.unlisted.contains(id);
    let counts: Vec<(String, u64)> = dist
        .indexes
        .iter()
        .map(|s| {
            if let Some(deltas) = snapshot.deltas.get(&s.path) {
                return (s.path.clone(), deltas.len() as u64);
            }
            let n = by_index.get(s.path.as_str()).map_or(0, |e| {
                // Counting entry by entry only when some are left out.
                if snapshot.unlisted.is_empty() {
                    e.len()
                } else {
                    e.keys().filter(|(_, id, _)| listed(id)).count()
                }
            });
            (s.path.clone(), n as u64)
        })
        .collect();
    let frames = family.render_frames(dist, &counts)?;
    phases.lap("render");

    let bodies: Vec<Body> = dist
        .indexes
        .iter()
        .zip(&frames)
        .map(|(spec, frame)| {
            let mut body = if zchunked(spec) {
                Body::marking_entries(&frame.head)
            } else {
                Body::new(&frame.head)
            };
            for ((key, id, _), entry) in by_index.get(spec.path.as_str()).into_iter().flatten() {
                if listed(id) {
                    body.push_entry(key, entry.text().as_bytes());
                }
            }
            // A document index holds the document (nothing while unset).
            if let Some(text) =
                crate::documents::of_index(spec).and_then(|name| snapshot.documents.get(name))
            {
                body.push_entry("", text.as_bytes());
            }
            for delta in snapshot.deltas.get(&spec.path).into_iter().flatten() {
                body.push_entry(&delta.sort_key, delta.text.as_bytes());
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
    phases.lap("compress");

    // The uncompressed variant is the body itself: its sums serve as both.
    let open_sums = {
        let jobs: Vec<(&[u8], &[String])> = dist
            .indexes
            .iter()
            .zip(&bodies)
            .map(|(spec, body)| (body.bytes.as_slice(), spec.checksums.as_slice()))
            .collect();
        parallel_checksums(&jobs, threads)?
    };
    // zchunk variants: last publish's where the index did not change, else
    // one libzck run per index, side by side.
    let mut zchunk_keys = std::collections::HashMap::new();
    let zchunks: Vec<Option<std::sync::Arc<super::zchunk::Zchunk>>> =
        std::thread::scope(|scope| {
            let runs: Vec<_> =
                dist.indexes
                    .iter()
                    .zip(&bodies)
                    .zip(&open_sums)
                    .map(|((spec, body), sums)| {
                        if !zchunked(spec) {
                            return None;
                        }
                        let ends = body.entry_ranges().expect("marked for zchunk");
                        let key = PieceCache::zchunk_key(&sums[0].1, &ends);
                        let cached = cache.zchunk(&key);
                        Some((
                            key,
                            scope.spawn(move || match cached {
                                Some(zck) => Ok(zck),
                                None => super::zchunk::encode(&body.bytes, &ends)
                                    .map(std::sync::Arc::new),
                            }),
                        ))
                    })
                    .collect();
            runs.into_iter()
                .map(|run| {
                    run.map(|(key, r)| {
                        let zck = r.join().expect("zchunk thread panicked")?;
                        zchunk_keys.insert(key, zck.clone());
                        Ok(zck)
                    })
                    .transpose()
                })
                .collect::<Result<Vec<_>, super::zchunk::ZchunkError>>()
        })?;
    if zchunks.iter().any(Option::is_some) {
        phases.lap("zchunk");
    }
    cache.keep_zchunks(zchunk_keys);

    let staging = Staging::create(&paths.staging, &dist.id)?;
    let mut published: Vec<PublishedFile> = Vec::new();
    let mut files: BTreeMap<String, String> = BTreeMap::new();
    let mut addressed: BTreeSet<String> = BTreeSet::new();
    let mut bytes = 0u64;
    // Every variant of every index, then all their checksums at once, spread
    // over the cores (SHA-512 of a 30 MB Packages file is the long pole).
    let mut variants: Vec<(usize, Variant, std::borrow::Cow<'_, [u8]>)> = Vec::new();
    for (i, (((spec, body), files), zck)) in dist
        .indexes
        .iter()
        .zip(&bodies)
        .zip(compressed)
        .zip(&zchunks)
        .enumerate()
    {
        if spec.keep_uncompressed {
            variants.push((
                i,
                Variant::Plain,
                std::borrow::Cow::Borrowed(body.bytes.as_slice()),
            ));
        }
        for (&c, file) in spec.compressions.iter().zip(files) {
            variants.push((
                i,
                Variant::Compressed(codec(c)),
                std::borrow::Cow::Owned(file),
            ));
        }
        if let Some(zck) = zck {
            variants.push((
                i,
                Variant::Zchunk {
                    header_sha256: &zck.header_sha256,
                    header_size: zck.header_size,
                },
                std::borrow::Cow::Borrowed(zck.bytes.as_slice()),
            ));
        }
        if !spec.keep_uncompressed && spec.compressions.is_empty() {
            return Err(PublishError::Layout(format!(
                "index {} is published neither uncompressed nor compressed",
                spec.path
            )));
        }
    }
    let variant_sums = {
        let jobs: Vec<(&[u8], &[String])> = variants
            .iter()
            .filter(|(_, v, _)| !matches!(v, Variant::Plain))
            .map(|(i, _, bytes)| (bytes.as_ref(), dist.indexes[*i].checksums.as_slice()))
            .collect();
        parallel_checksums(&jobs, threads)?
    };
    let mut variant_sums = variant_sums.into_iter();
    for (i, variant, content) in &variants {
        let spec = &dist.indexes[*i];
        let sums = match variant {
            Variant::Plain => open_sums[*i].clone(),
            _ => variant_sums.next().expect("one per compressed variant"),
        };
        let file = write_variant(
            &staging,
            spec,
            variant,
            content,
            sums,
            (&open_sums[*i], bodies[*i].bytes.len() as u64),
            (&mut addressed, &mut files),
        )?;
        bytes += file.size;
        published.push(file);
    }

    // Delta RPMs, linked from the cache next to the index listing them.
    for (path, file, sha256) in snapshot.deltas.values().flatten().flat_map(|d| &d.files) {
        staging.link_external(file, path)?;
        files.insert(path.clone(), sha256.clone());
    }
    phases.lap("write");
    let publication = family.render_top_level(dist, &published, now.max(0) as u64)?;
    phases.lap("render");
    let mut units = BTreeSet::new();
    let mut top = BTreeSet::new();
    for file in &publication.files {
        units.insert(split_dir(&file.path).0.to_owned());
        top.insert(file.path.clone());
        staging.write(&file.path, file.content.as_bytes())?;
        bytes += file.content.len() as u64;
        files.insert(file.path.clone(), sha256_hex(file.content.as_bytes()));
    }
    // An RSA-4096 signature is ~5 ms of one core, and a distribution asks
    // for two or more (one per unit, or InRelease and Release.gpg).
    let requests: Vec<(&str, &_)> = publication
        .files
        .iter()
        .flat_map(|f| f.signatures.iter().map(|r| (f.content.as_str(), r)))
        .collect();
    let signatures = std::thread::scope(|scope| {
        let signing: Vec<_> = requests
            .iter()
            .map(|&(content, request)| {
                scope.spawn(move || {
                    let data = content.as_bytes();
                    match request.kind {
                        SignatureKind::Cleartext => key.sign_cleartext(data),
                        SignatureKind::DetachedArmored => key.sign_detached_armored(data),
                        SignatureKind::DetachedBinary => key.sign_detached_binary(data),
                    }
                })
            })
            .collect();
        signing
            .into_iter()
            .map(|t| t.join().expect("signing thread panicked"))
            .collect::<Result<Vec<_>, _>>()
    })?;
    for ((_, request), signature) in requests.iter().zip(signatures) {
        staging.write(&request.path, &signature)?;
        top.insert(request.path.clone());
        bytes += signature.len() as u64;
        files.insert(request.path.clone(), sha256_hex(&signature));
    }
    for path in &publication.public_key_paths {
        let public = key.public_armored();
        staging.write(path, &public)?;
        top.insert(path.clone());
        files.insert(path.clone(), sha256_hex(&public));
    }
    check_layout(&units, &files, &addressed, &snapshot.view.pool)?;
    phases.lap("sign");
    Ok(Built {
        staging,
        units,
        addressed,
        top,
        files,
        view: snapshot.view.clone(),
        bytes,
        reuse,
        phases,
        started,
        read_ms: snapshot.read_ms,
        deltas_ms: snapshot.deltas_ms,
        dist: dist.id.clone(),
        version: snapshot.version,
        now,
        skipped: snapshot.unlisted.len(),
        deltas: snapshot
            .deltas
            .values()
            .flatten()
            .map(|d| d.files.len())
            .sum(),
    })
}

fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

impl Built {
    fn report(mut self, pool_linked: usize) -> Report {
        self.phases.lap("switch");
        Report {
            distribution: self.dist,
            published_at: self.now,
            version: self.version,
            packages: self.view.packages.saturating_sub(self.skipped) as u64,
            skipped_unsigned: self.skipped,
            deltas: self.deltas,
            files: self.files.len(),
            bytes: self.bytes,
            pieces_reused: self.reuse.reused,
            pieces_compressed: self.reuse.compressed,
            pool_linked,
            collected: Collected::default(),
            duration_ms: self.read_ms
                + self.deltas_ms
                + self.started.elapsed().as_secs_f64() * 1000.0,
            phases_ms: self.phases.done,
        }
    }

    /// Links package files into the shared pool: `only` those, or every
    /// one the version lists (each checked, relinked if it is not its blob).
    /// Not with an object store: there the local tree is the publisher's
    /// workspace, every node serves package files from the blob store, and
    /// linking would fetch every blob other nodes stored to this one.
    fn link_pool(
        &self,
        repos: &Path,
        blobs: &BlobStore,
        only: Option<&BTreeMap<String, String>>,
    ) -> Result<usize, PublishError> {
        if blobs.remote().is_some() {
            return Ok(0);
        }
        let mut linked = 0;
        for (path, sha) in only.unwrap_or(&self.view.pool) {
            if tree::link_pool_file(repos, path, &blobs.local(sha)?)? {
                linked += 1;
            }
        }
        Ok(linked)
    }

    /// What the object store keeps of this build (`objects.rs`).
    pub fn published(&self) -> super::objects::Published {
        super::objects::Published {
            version: self.version,
            files: self.files.clone(),
            pool: self.view.pool.clone(),
            top: self.top.clone(),
            addressed: self.addressed.clone(),
        }
    }

    /// Makes the build the distribution's live tree: pool links first (the
    /// new indexes must never name a missing file), superseded
    /// content-addressed files carried over for readers in flight, then
    /// each unit exchanged with the live one. Package files are never
    /// removed here: retention does that once no kept version lists them.
    pub fn go_live(
        mut self,
        paths: &Paths,
        blobs: &BlobStore,
        state: &mut State,
        keep_secs: i64,
        link: Option<&BTreeMap<String, String>>,
    ) -> Result<Report, PublishError> {
        let pool_linked = self.link_pool(&paths.repos, blobs, link)?;
        self.phases.lap("pool");

        let keep = state.advance(self.addressed.clone(), self.now, keep_secs);
        for rel in &keep {
            if tree::unit_of(&self.units, rel).is_none() {
                continue;
            }
            let live = paths.repos.join(rel);
            let staged = self.staging.path(rel);
            if live.exists() && !staged.exists() {
                if let Some(parent) = staged.parent() {
                    std::fs::create_dir_all(parent)?;
                }
                std::fs::hard_link(&live, &staged)?;
            }
        }
        for unit in &self.units {
            tree::switch(&self.staging, &paths.repos, unit)?;
        }
        state.units = self.units.clone();
        state.files = std::mem::take(&mut self.files);
        state.version = self.version;
        state.save(&paths.state_file(&self.dist))?;
        let files = state.files.len();
        let mut report = self.report(pool_linked);
        report.files = files;
        Ok(report)
    }

    /// Makes the build the tree of version `self.version`, at
    /// [`Paths::pinned`]: created once, never replaced. Its package files
    /// are the shared pool's (linked here if a version that was never live
    /// lists files no live tree did).
    pub fn pin(mut self, paths: &Paths, blobs: &BlobStore) -> Result<Report, PublishError> {
        let pool_linked = self.link_pool(&paths.repos, blobs, None)?;
        self.phases.lap("pool");
        let target = paths.pinned(&self.dist, self.version);
        let parent = target.parent().expect("pinned trees have a parent");
        std::fs::create_dir_all(parent)?;
        match std::fs::rename(&self.staging.root, &target) {
            Ok(()) => {}
            // Built meanwhile by someone else: theirs stays.
            Err(_) if target.is_dir() => {}
            Err(e) => return Err(e.into()),
        }
        Ok(self.report(pool_linked))
    }
}

/// Milliseconds per phase; a phase that occurs twice adds up.
struct Phases {
    last: std::time::Instant,
    done: BTreeMap<&'static str, f64>,
}

impl Phases {
    fn new(read_ms: f64) -> Phases {
        Phases {
            last: std::time::Instant::now(),
            done: BTreeMap::from([("read", read_ms)]),
        }
    }

    fn lap(&mut self, phase: &'static str) {
        let now = std::time::Instant::now();
        *self.done.entry(phase).or_default() += (now - self.last).as_secs_f64() * 1000.0;
        self.last = now;
    }
}

/// One published form of an index.
enum Variant<'a> {
    Plain,
    Compressed(Codec),
    /// A zchunk file (`repod.zchunk`) and its header's checksum and size.
    Zchunk {
        header_sha256: &'a str,
        header_size: u64,
    },
}

/// Whether the plugin asked for a zchunk variant of `spec`.
fn zchunked(spec: &IndexSpec) -> bool {
    crate::plugins::contract::extension(&spec.extensions, ZCHUNK) == Some("true")
}

/// `index-spec.extensions` key asking for a zchunk variant (family-sdk's
/// `ZCHUNK`), and the two `checksums` entries that describe its header.
const ZCHUNK: &str = "repod.zchunk";
const ZCHUNK_HEADER_SHA256: &str = "zck-header-sha256";
const ZCHUNK_HEADER_SIZE: &str = "zck-header-size";

/// Writes one variant of an index (and its by-hash links) into staging.
fn write_variant(
    staging: &Staging,
    spec: &IndexSpec,
    variant: &Variant,
    content: &[u8],
    mut sums: Vec<(String, String)>,
    (open_checksums, open_size): (&[(String, String)], u64),
    (addressed, files): (&mut BTreeSet<String>, &mut BTreeMap<String, String>),
) -> Result<PublishedFile, PublishError> {
    let compression = match variant {
        Variant::Compressed(c) => Some(contract_compression(*c)),
        Variant::Plain => None,
        Variant::Zchunk {
            header_sha256,
            header_size,
        } => {
            sums.push((ZCHUNK_HEADER_SHA256.to_owned(), (*header_sha256).to_owned()));
            sums.push((ZCHUNK_HEADER_SIZE.to_owned(), header_size.to_string()));
            None
        }
    };
    let sha256 = &sums[0].1;
    let (dir, name) = split_dir(&spec.path);
    let name = match variant {
        Variant::Plain => name.to_owned(),
        Variant::Compressed(c) => format!("{name}.{}", c.extension()),
        Variant::Zchunk { .. } => format!("{name}.zck"),
    };
    let path = if spec.checksum_named {
        let path = join(dir, &format!("{sha256}-{name}"));
        addressed.insert(path.clone());
        path
    } else {
        join(dir, &name)
    };
    staging.write(&path, content)?;
    files.insert(path.clone(), sha256.clone());
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
        files.insert(link.clone(), sha256.clone());
        addressed.insert(link);
    }
    Ok(PublishedFile {
        path,
        index: spec.path.clone(),
        compression,
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
    written: &BTreeMap<String, String>,
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
    for path in written.keys().chain(addressed) {
        if reserved(path) {
            return bad(format!(
                "{path} is under /{}/, which repod keeps for itself",
                path.split('/').next().unwrap_or_default()
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
            return bad(format!(
                "package path {path} is under /{}/, which repod keeps for itself",
                path.split('/').next().unwrap_or_default()
            ));
        }
        if let Some(unit) = tree::unit_of(units, path) {
            return bad(format!(
                "package path {path} is inside {unit}, which is replaced on every publish"
            ));
        }
    }
    Ok(())
}
