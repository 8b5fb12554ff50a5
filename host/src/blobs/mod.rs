//! Content-addressed storage of package files.
//!
//! An upload is streamed into `<data>/tmp/` while its SHA-256 is computed,
//! then fsynced. Only once it has been parsed and accepted is it moved to
//! `<data>/blobs/sha256/<ab>/<abcdef...>` (rename + directory fsync), before
//! the database rows that refer to it are committed. A crash can therefore
//! leave at worst a blob that no row refers to, which [`BlobStore::orphans`]
//! finds and garbage collection removes; never a row without its blob.
//!
//! With `[storage] kind = "s3"` the blobs live in an object store
//! ([`remote`]): commit uploads the accepted file and returns once the
//! store confirmed it, and `<data>/blobs/` becomes this node's cache of the
//! blobs it stored or read ([`BlobStore::local`] fetches a missing one).

pub mod cache;
pub mod remote;

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};
use tokio::io::AsyncWriteExt;

/// The blob store: files in the data directory, or an object store with
/// the data directory as its local cache.
#[derive(Debug, Clone)]
pub struct BlobStore {
    blobs: PathBuf,
    tmp: PathBuf,
    remote: Option<remote::Remote>,
}

/// An upload being received: a temporary file plus its running hash.
/// Dropping it deletes the file, so every early return cleans up.
pub struct Incoming {
    path: PathBuf,
    file: Option<tokio::fs::File>,
    hasher: Sha256,
    size: u64,
    limit: u64,
}

/// A received, fsynced upload that has not been accepted yet.
#[derive(Debug)]
pub struct Received {
    pub path: PathBuf,
    pub sha256: String,
    pub size: u64,
}

impl Drop for Received {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

#[derive(Debug, thiserror::Error)]
pub enum BlobError {
    #[error("upload exceeds {}", human_size(*.0))]
    TooLarge(u64),
    #[error("storage error: {0}")]
    Io(#[from] std::io::Error),
}

fn random_name() -> String {
    let mut name = [0u8; 16];
    getrandom::fill(&mut name).expect("OS random source");
    hex::encode(name)
}

pub fn human_size(bytes: u64) -> String {
    const GIB: u64 = 1 << 30;
    const MIB: u64 = 1 << 20;
    if bytes >= GIB && bytes.is_multiple_of(GIB) {
        format!("{} GiB", bytes / GIB)
    } else if bytes >= MIB && bytes.is_multiple_of(MIB) {
        format!("{} MiB", bytes / MIB)
    } else {
        format!("{bytes} bytes")
    }
}

impl BlobStore {
    /// Opens the store `storage` names (inside the runtime: an object
    /// store is asked whether its bucket answers).
    pub async fn open(data: &Path, storage: &crate::config::Storage) -> std::io::Result<BlobStore> {
        let remote = match storage {
            crate::config::Storage::Filesystem => None,
            crate::config::Storage::S3(config) => Some(remote::Remote::open(config).await?),
        };
        let data = data.to_owned();
        tokio::task::spawn_blocking(move || BlobStore::open_local(&data, remote))
            .await
            .expect("blob store open panicked")
    }

    /// The filesystem store in `data` (tests, tools).
    pub fn open_filesystem(data: &Path) -> std::io::Result<BlobStore> {
        BlobStore::open_local(data, None)
    }

    fn open_local(data: &Path, remote: Option<remote::Remote>) -> std::io::Result<BlobStore> {
        let store = BlobStore {
            blobs: data.join("blobs").join("sha256"),
            tmp: data.join("tmp"),
            remote,
        };
        std::fs::create_dir_all(&store.blobs)?;
        std::fs::create_dir_all(&store.tmp)?;
        // Leftovers of uploads interrupted by a crash or restart.
        for entry in std::fs::read_dir(&store.tmp)? {
            let _ = std::fs::remove_file(entry?.path());
        }
        Ok(store)
    }

    /// Where the blob with this SHA-256 lives on this node: the blob
    /// itself, or its cached copy (see [`BlobStore::local`]).
    pub fn path(&self, sha256: &str) -> PathBuf {
        self.blobs.join(&sha256[..2]).join(sha256)
    }

    /// The directory of [`BlobStore::path`]s (with an object store: this
    /// node's cache of it).
    pub fn path_dir(&self) -> PathBuf {
        self.blobs.clone()
    }

    /// The object store, if blobs live in one.
    pub fn remote(&self) -> Option<&remote::Remote> {
        self.remote.as_ref()
    }

    /// What the store is, for logs: a directory or an object store.
    pub fn describe(&self) -> String {
        match &self.remote {
            None => self.blobs.display().to_string(),
            Some(remote) => format!("{} (cached in {})", remote.label(), self.blobs.display()),
        }
    }

    /// The blob as a local file: [`BlobStore::path`], fetched from the
    /// object store first if this node has no copy. Blocking.
    pub fn local(&self, sha256: &str) -> std::io::Result<PathBuf> {
        let path = self.path(sha256);
        let Some(remote) = &self.remote else {
            return Ok(path);
        };
        if let Ok(meta) = std::fs::metadata(&path) {
            cache::touch(&path, &meta);
            return Ok(path);
        }
        let tmp = self.tmp.join(format!("fetch-{}", random_name()));
        let fetched = remote.fetch(sha256, &tmp).and_then(|()| {
            std::fs::create_dir_all(path.parent().expect("blob path has a parent"))?;
            std::fs::rename(&tmp, &path)
        });
        if fetched.is_err() {
            let _ = std::fs::remove_file(&tmp);
        }
        fetched.map(|()| path)
    }

    /// Starts receiving an upload of at most `limit` bytes.
    pub async fn incoming(&self, limit: u64) -> std::io::Result<Incoming> {
        let path = self.tmp.join(format!("upload-{}", random_name()));
        let file = tokio::fs::File::create(&path).await?;
        Ok(Incoming {
            path,
            file: Some(file),
            hasher: Sha256::new(),
            size: 0,
            limit,
        })
    }

    /// A file `write` makes (blocking), received like an upload: hashed,
    /// fsynced, in the temporary directory until committed.
    pub fn receive_with<E: From<std::io::Error>>(
        &self,
        write: impl FnOnce(&mut dyn std::io::Write) -> Result<(), E>,
    ) -> Result<Received, E> {
        struct Hashing<W> {
            inner: W,
            hasher: Sha256,
            size: u64,
        }
        impl<W: std::io::Write> std::io::Write for Hashing<W> {
            fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
                let n = self.inner.write(buf)?;
                self.hasher.update(&buf[..n]);
                self.size += n as u64;
                Ok(n)
            }
            fn flush(&mut self) -> std::io::Result<()> {
                self.inner.flush()
            }
        }
        let path = self.tmp.join(format!("made-{}", random_name()));
        let file = std::fs::File::create(&path)?;
        // Deleted on every early return, like an upload.
        let mut received = Received {
            path,
            sha256: String::new(),
            size: 0,
        };
        let mut out = Hashing {
            inner: std::io::BufWriter::new(file),
            hasher: Sha256::new(),
            size: 0,
        };
        write(&mut out)?;
        let file = out.inner.into_inner().map_err(|e| e.into_error())?;
        file.sync_all()?;
        received.sha256 = hex::encode(out.hasher.finalize());
        received.size = out.size;
        Ok(received)
    }

    /// Moves an accepted upload into place; a blob that already exists is
    /// kept (same bytes by construction) and the upload dropped.
    pub fn commit(&self, received: &Received) -> std::io::Result<()> {
        self.commit_file(&received.path, &received.sha256)
    }

    /// [`BlobStore::commit`] of the received file at `path`. With an
    /// object store, returns once the store confirmed the object; the
    /// local copy is then kept as cache. Blocking.
    pub fn commit_file(&self, path: &Path, sha256: &str) -> std::io::Result<()> {
        if let Some(remote) = &self.remote {
            remote.put(path, sha256, std::fs::metadata(path)?.len())?;
        }
        let target = self.path(sha256);
        if target.exists() {
            return Ok(());
        }
        let dir = target.parent().expect("blob path has a parent");
        std::fs::create_dir_all(dir)?;
        std::fs::hard_link(path, &target).or_else(|_| std::fs::copy(path, &target).map(|_| ()))?;
        std::fs::File::open(dir)?.sync_all()?;
        std::fs::File::open(&self.blobs)?.sync_all()?;
        Ok(())
    }

    /// Deletes a blob nothing refers to any more (the object, then this
    /// node's copy).
    pub fn remove(&self, sha256: &str) -> std::io::Result<()> {
        if let Some(remote) = &self.remote {
            remote.remove(sha256)?;
        }
        self.remove_local(sha256)
    }

    /// [`BlobStore::remove`] of each, off the async threads; returns the
    /// failures.
    pub async fn remove_many(&self, shas: Vec<String>) -> Vec<(String, std::io::Error)> {
        let blobs = self.clone();
        tokio::task::spawn_blocking(move || {
            shas.into_iter()
                .filter_map(|sha| blobs.remove(&sha).err().map(|e| (sha, e)))
                .collect()
        })
        .await
        .expect("blob removal panicked")
    }

    fn remove_local(&self, sha256: &str) -> std::io::Result<()> {
        match std::fs::remove_file(self.path(sha256)) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    }

    /// Deletes what no row refers to (`known`: every blob a row names):
    /// every such file of a filesystem store, and with an object store
    /// also the objects older than its `orphan-grace-seconds` (see
    /// [`BlobStore::collect_stored`]). Returns how many blobs (not cached
    /// copies) were deleted. Blocking.
    pub fn collect(&self, known: &HashSet<String>) -> std::io::Result<usize> {
        Ok(self.collect_stored(known)? + self.collect_local(known)?)
    }

    /// With an object store: deletes the objects no row refers to that
    /// are older than `orphan-grace-seconds` (younger ones may be another
    /// node's upload whose rows are not committed yet). In a cluster the
    /// leader runs it. Returns how many were deleted. Blocking.
    pub fn collect_stored(&self, known: &HashSet<String>) -> std::io::Result<usize> {
        let Some(remote) = &self.remote else {
            return Ok(0);
        };
        let cutoff = chrono::Utc::now()
            - chrono::Duration::from_std(remote.orphan_grace).unwrap_or(chrono::Duration::MAX);
        let mut removed = 0;
        for (sha, stored) in remote.list()? {
            if !known.contains(&sha) && stored < cutoff {
                remote.remove(&sha)?;
                removed += 1;
            }
        }
        Ok(removed)
    }

    /// Deletes this node's files no row refers to: the blobs of a
    /// filesystem store (counted), or an object store's cached copies (not
    /// counted). Blocking.
    pub fn collect_local(&self, known: &HashSet<String>) -> std::io::Result<usize> {
        let mut removed = 0;
        for sha in self.list_local()? {
            if !known.contains(&sha) {
                self.remove_local(&sha)?;
                if self.remote.is_none() {
                    removed += 1;
                }
            }
        }
        Ok(removed)
    }

    /// Every blob file (or cached copy) in the data directory.
    fn list_local(&self) -> std::io::Result<Vec<String>> {
        let mut out = Vec::new();
        for shard in std::fs::read_dir(&self.blobs)? {
            let shard = shard?;
            if !shard.file_type()?.is_dir() {
                continue;
            }
            for blob in std::fs::read_dir(shard.path())? {
                out.push(blob?.file_name().to_string_lossy().into_owned());
            }
        }
        Ok(out)
    }
}

impl Incoming {
    /// Appends a chunk, failing once the upload passes its limit.
    pub async fn write(&mut self, chunk: &[u8]) -> Result<(), BlobError> {
        self.size += chunk.len() as u64;
        if self.size > self.limit {
            return Err(BlobError::TooLarge(self.limit));
        }
        self.hasher.update(chunk);
        self.file
            .as_mut()
            .expect("not finished")
            .write_all(chunk)
            .await?;
        Ok(())
    }

    /// Flushes and fsyncs the file; returns what was received.
    pub async fn finish(mut self) -> Result<Received, BlobError> {
        let mut file = self.file.take().expect("finished once");
        file.flush().await?;
        file.sync_all().await?;
        drop(file);
        let hasher = std::mem::take(&mut self.hasher);
        let received = Received {
            path: std::mem::take(&mut self.path),
            sha256: hex::encode(hasher.finalize()),
            size: self.size,
        };
        Ok(received)
    }
}

impl Drop for Incoming {
    fn drop(&mut self) {
        if !self.path.as_os_str().is_empty() {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}
