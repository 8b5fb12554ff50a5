//! Blobs in an S3-compatible object store (`[storage] kind = "s3"`),
//! through the `object_store` crate.
//!
//! Objects are keyed `<prefix>/blobs/sha256/<ab>/<hash>`, like the
//! filesystem store's files. A blob is uploaded when it is committed (after
//! its upload was read, judged and accepted), and [`Remote::put`] returns
//! only once the store confirmed the whole object, so the rows committed
//! after it never name a missing object. The node keeps a local copy of
//! what it stored or fetched (the tree links it, makedeltarpm and the RPM
//! signer read it); that copy is a cache, the object store is the truth.

use std::path::Path;
use std::sync::Arc;

use object_store::path::Path as Key;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload, WriteMultipart};
use sha2::{Digest, Sha256};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::config::S3Config;

/// Files up to this size go up in one PUT; larger ones in parts of
/// [`PART`], [`PARALLEL_PARTS`] at a time.
const SINGLE_PUT: u64 = 16 << 20;
const PART: usize = 8 << 20;
const PARALLEL_PARTS: usize = 4;

/// The object store holding the blobs, and the runtime that drives it from
/// the blocking threads that call the blob store.
#[derive(Clone)]
pub struct Remote {
    store: Arc<dyn ObjectStore>,
    prefix: String,
    runtime: tokio::runtime::Handle,
    /// What `Display` shows: the endpoint and bucket, never a credential.
    label: String,
    /// See [`S3Config::orphan_grace`].
    pub orphan_grace: std::time::Duration,
}

impl std::fmt::Debug for Remote {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.label)
    }
}

/// The client for `config`: credentials from the environment
/// (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`),
/// everything else from the config. Plain `http://` endpoints are allowed
/// (a store on loopback or a private network).
pub fn client(config: &S3Config) -> std::io::Result<Arc<dyn ObjectStore>> {
    let mut builder = object_store::aws::AmazonS3Builder::from_env()
        .with_bucket_name(&config.bucket)
        .with_region(&config.region);
    if let Some(endpoint) = &config.endpoint {
        builder = builder
            .with_endpoint(endpoint)
            .with_allow_http(endpoint.starts_with("http://"));
    }
    let store = builder
        .build()
        .map_err(|e| std::io::Error::other(format!("cannot configure the S3 client: {e}")))?;
    Ok(Arc::new(store))
}

/// Joins a key prefix and a relative key.
pub fn key(prefix: &str, rel: &str) -> Key {
    if rel.is_empty() {
        Key::from(prefix)
    } else if prefix.is_empty() {
        Key::from(rel)
    } else {
        Key::from(format!("{prefix}/{rel}"))
    }
}

fn io(e: object_store::Error) -> std::io::Error {
    match e {
        object_store::Error::NotFound { path, .. } => std::io::Error::new(
            std::io::ErrorKind::NotFound,
            format!("object store: {path} not found"),
        ),
        e => std::io::Error::other(format!("object store: {e}")),
    }
}

impl Remote {
    /// Connects to the store (must be called inside the runtime) and
    /// checks that the bucket answers.
    pub async fn open(config: &S3Config) -> std::io::Result<Remote> {
        let store = client(config)?;
        let remote = Remote {
            store,
            prefix: config.prefix.clone(),
            runtime: tokio::runtime::Handle::current(),
            label: config.label(),
            orphan_grace: config.orphan_grace,
        };
        let probe = remote.key("blobs/sha256");
        remote
            .store
            .list_with_delimiter(Some(&probe))
            .await
            .map_err(|e| std::io::Error::other(format!("{}: {e}", remote.label)))?;
        Ok(remote)
    }

    pub fn label(&self) -> &str {
        &self.label
    }

    /// The same store and bucket under another key prefix.
    pub fn with_prefix(&self, prefix: &str) -> Remote {
        Remote {
            prefix: prefix.to_owned(),
            label: format!("{} (prefix {prefix})", self.label),
            ..self.clone()
        }
    }

    fn key(&self, rel: &str) -> Key {
        key(&self.prefix, rel)
    }

    /// Runs `future` to completion from a blocking thread.
    fn block_on<T>(&self, future: impl Future<Output = T>) -> T {
        self.runtime.block_on(future)
    }

    /// Uploads the file at `path` as blob `sha256` unless the store has an
    /// object of that name and size already (content-addressed: same name,
    /// same bytes). Returns once the store confirmed it. Blocking.
    pub fn put(&self, path: &Path, sha256: &str, size: u64) -> std::io::Result<()> {
        self.block_on(self.put_file(&blob_rel(sha256), path, size, true))
    }

    /// Uploads the file at `path` (`size` bytes) as `rel`; with
    /// `unless_there`, not if an object of that size is there already
    /// (for content-addressed names).
    pub async fn put_file(
        &self,
        rel: &str,
        path: &Path,
        size: u64,
        unless_there: bool,
    ) -> std::io::Result<()> {
        let key = self.key(rel);
        if unless_there {
            match self.store.head(&key).await {
                Ok(meta) if meta.size == size => return Ok(()),
                Ok(_) | Err(object_store::Error::NotFound { .. }) => {}
                Err(e) => return Err(io(e)),
            }
        }
        let mut file = tokio::fs::File::open(path).await?;
        if size <= SINGLE_PUT {
            let mut bytes = Vec::with_capacity(size as usize);
            file.read_to_end(&mut bytes).await?;
            self.store
                .put(&key, PutPayload::from(bytes))
                .await
                .map_err(io)?;
            return Ok(());
        }
        let upload = self.store.put_multipart(&key).await.map_err(io)?;
        let mut parts = WriteMultipart::new_with_chunk_size(upload, PART);
        let mut buf = vec![0u8; PART];
        loop {
            let n = match file.read(&mut buf).await {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) => {
                    let _ = parts.abort().await;
                    return Err(e);
                }
            };
            if let Err(e) = parts.wait_for_capacity(PARALLEL_PARTS).await {
                let _ = parts.abort().await;
                return Err(io(e));
            }
            parts.write(&buf[..n]);
        }
        parts.finish().await.map_err(io)?;
        Ok(())
    }

    /// Downloads blob `sha256` to `to` (a temporary file), checking that
    /// the bytes hash to the name. Blocking.
    pub fn fetch(&self, sha256: &str, to: &Path) -> std::io::Result<()> {
        self.block_on(self.fetch_to(&blob_rel(sha256), sha256, to))
    }

    /// Downloads `rel` to `to`, checking that the bytes hash to `sha256`.
    pub async fn fetch_to(&self, rel: &str, sha256: &str, to: &Path) -> std::io::Result<()> {
        {
            let got = self.store.get(&self.key(rel)).await.map_err(io)?;
            let mut stream = got.into_stream();
            let mut file = tokio::fs::File::create(to).await?;
            let mut hasher = Sha256::new();
            use futures_util::StreamExt;
            while let Some(chunk) = stream.next().await {
                let chunk = chunk.map_err(io)?;
                hasher.update(&chunk);
                file.write_all(&chunk).await?;
            }
            file.flush().await?;
            let got = hex::encode(hasher.finalize());
            if got != sha256 {
                return Err(std::io::Error::other(format!(
                    "object store returned bytes hashing to {got} for {rel}, not {sha256}"
                )));
            }
            Ok(())
        }
    }

    /// Stores `bytes` as `rel`.
    pub async fn put_bytes(&self, rel: &str, bytes: Vec<u8>) -> std::io::Result<()> {
        self.store
            .put(&self.key(rel), PutPayload::from(bytes))
            .await
            .map(|_| ())
            .map_err(io)
    }

    /// Deletes `rel`; one that is not there is not an error.
    pub async fn delete(&self, rel: &str) -> std::io::Result<()> {
        match self.store.delete(&self.key(rel)).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(io(e)),
        }
    }

    /// Every key under `rel`, relative to this store's prefix.
    pub async fn list_under(&self, rel: &str) -> std::io::Result<Vec<String>> {
        let listed = self.list_dated(rel).await?;
        Ok(listed.into_iter().map(|(key, _)| key).collect())
    }

    /// Deletes blob `sha256`; one that is not there is not an error.
    pub fn remove(&self, sha256: &str) -> std::io::Result<()> {
        self.block_on(self.delete(&blob_rel(sha256)))
    }

    /// Every stored blob with the time it was stored. Blocking.
    pub fn list(&self) -> std::io::Result<Vec<(String, chrono::DateTime<chrono::Utc>)>> {
        let listed = self.block_on(self.list_dated("blobs/sha256"))?;
        Ok(listed
            .into_iter()
            .filter_map(|(key, stored)| {
                let name = key.rsplit('/').next()?.to_owned();
                is_sha256(&name).then_some((name, stored))
            })
            .collect())
    }

    /// Every key under `rel` (relative to this store's prefix) with the
    /// time it was stored.
    pub async fn list_dated(
        &self,
        rel: &str,
    ) -> std::io::Result<Vec<(String, chrono::DateTime<chrono::Utc>)>> {
        use futures_util::TryStreamExt;
        let metas: Vec<object_store::ObjectMeta> = self
            .store
            .list(Some(&self.key(rel)))
            .try_collect()
            .await
            .map_err(io)?;
        Ok(metas
            .into_iter()
            .filter_map(|m| Some((self.unprefixed(m.location.as_ref())?, m.last_modified)))
            .collect())
    }

    fn unprefixed(&self, key: &str) -> Option<String> {
        if self.prefix.is_empty() {
            return Some(key.to_owned());
        }
        key.strip_prefix(&self.prefix)?
            .strip_prefix('/')
            .map(str::to_owned)
    }
}

/// A blob's key below the prefix.
pub fn blob_rel(sha256: &str) -> String {
    format!("blobs/sha256/{}/{sha256}", &sha256[..2])
}

fn is_sha256(name: &str) -> bool {
    name.len() == 64 && name.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}
