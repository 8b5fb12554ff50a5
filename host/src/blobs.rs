//! Content-addressed storage of package files.
//!
//! An upload is streamed into `<data>/tmp/` while its SHA-256 is computed,
//! then fsynced. Only once it has been parsed and accepted is it moved to
//! `<data>/blobs/sha256/<ab>/<abcdef...>` (rename + directory fsync), before
//! the database rows that refer to it are committed. A crash can therefore
//! leave at worst a blob that no row refers to, which [`BlobStore::orphans`]
//! finds and garbage collection removes; never a row without its blob.

use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};
use tokio::io::AsyncWriteExt;

/// The blob store rooted in the data directory.
#[derive(Debug, Clone)]
pub struct BlobStore {
    blobs: PathBuf,
    tmp: PathBuf,
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
    pub fn open(data: &Path) -> std::io::Result<BlobStore> {
        let store = BlobStore {
            blobs: data.join("blobs").join("sha256"),
            tmp: data.join("tmp"),
        };
        std::fs::create_dir_all(&store.blobs)?;
        std::fs::create_dir_all(&store.tmp)?;
        // Leftovers of uploads interrupted by a crash or restart.
        for entry in std::fs::read_dir(&store.tmp)? {
            let _ = std::fs::remove_file(entry?.path());
        }
        Ok(store)
    }

    /// Where the blob with this SHA-256 lives.
    pub fn path(&self, sha256: &str) -> PathBuf {
        self.blobs.join(&sha256[..2]).join(sha256)
    }

    pub fn root(&self) -> &Path {
        &self.blobs
    }

    /// Starts receiving an upload of at most `limit` bytes.
    pub async fn incoming(&self, limit: u64) -> std::io::Result<Incoming> {
        let mut name = [0u8; 16];
        getrandom::fill(&mut name).expect("OS random source");
        let path = self.tmp.join(format!("upload-{}", hex::encode(name)));
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
        let mut name = [0u8; 16];
        getrandom::fill(&mut name).expect("OS random source");
        let path = self.tmp.join(format!("made-{}", hex::encode(name)));
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

    /// [`BlobStore::commit`] of the received file at `path`.
    pub fn commit_file(&self, path: &Path, sha256: &str) -> std::io::Result<()> {
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

    /// Deletes a blob nothing refers to any more.
    pub fn remove(&self, sha256: &str) -> std::io::Result<()> {
        match std::fs::remove_file(self.path(sha256)) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    }

    /// Every stored blob's SHA-256.
    pub fn list(&self) -> std::io::Result<Vec<String>> {
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
