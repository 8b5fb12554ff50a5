//! Plugins shared by the nodes of a cluster (PostgreSQL + object store).
//!
//! Each node loads its own plugin directory. A plugin installed or removed
//! through one node's API is also recorded: its `.wasm` stored in the
//! object store (`plugins/sha256/<ab>/<hash>`), and a row appended to
//! `plugin_changes`. Every node follows the rows (at start and every
//! second) and applies the latest change of each name to its own
//! directory and registry, so all of them end with the same plugin set.

use std::collections::BTreeMap;
use std::path::PathBuf;

use sha2::{Digest, Sha256};

use super::{InstallError, PluginHost};
use crate::blobs::remote::Remote;
use crate::db::{self, Db};

pub struct SharedPlugins {
    db: Db,
    remote: Remote,
    tmp: PathBuf,
    /// The last `plugin_changes.seq` this node applied.
    applied: tokio::sync::Mutex<i64>,
}

fn object(sha256: &str) -> String {
    format!("plugins/sha256/{}/{sha256}", &sha256[..2])
}

impl SharedPlugins {
    pub fn new(db: Db, remote: Remote, tmp: PathBuf) -> SharedPlugins {
        SharedPlugins {
            db,
            remote,
            tmp,
            applied: tokio::sync::Mutex::new(0),
        }
    }

    /// Records an install this node made (`wasm` is its file).
    pub async fn installed(&self, name: &str, wasm: Vec<u8>) -> Result<(), InstallError> {
        let sha = hex::encode(Sha256::digest(&wasm));
        self.remote
            .put_bytes(&object(&sha), wasm)
            .await
            .map_err(InstallError::Io)?;
        self.append(name, Some(&sha)).await
    }

    /// Records a removal this node made.
    pub async fn removed(&self, name: &str) -> Result<(), InstallError> {
        self.append(name, None).await
    }

    async fn append(&self, name: &str, sha: Option<&str>) -> Result<(), InstallError> {
        let mut applied = self.applied.lock().await;
        let io = |e: sqlx::Error| InstallError::Io(std::io::Error::other(e));
        let mut tx = db::write(&self.db).await.map_err(io)?;
        let (last,): (i64,) = sqlx::query_as("SELECT COALESCE(MAX(seq), 0) FROM plugin_changes")
            .fetch_one(&mut *tx)
            .await
            .map_err(io)?;
        sqlx::query(
            "INSERT INTO plugin_changes (seq, name, sha256, changed_at) VALUES ($1, $2, $3, $4)",
        )
        .bind(last + 1)
        .bind(name)
        .bind(sha)
        .bind(db::now())
        .execute(&mut *tx)
        .await
        .map_err(io)?;
        tx.commit().await.map_err(io)?;
        // Changes before this one that this node had not applied yet are
        // applied by the next `follow`, which reads from `applied` on.
        if *applied == last {
            *applied = last + 1;
        }
        Ok(())
    }

    /// Applies the changes other nodes recorded since the last call.
    /// Returns the names whose plugin changed here.
    pub async fn follow(&self, host: &PluginHost) -> Result<Vec<String>, InstallError> {
        let mut applied = self.applied.lock().await;
        let io = |e: sqlx::Error| InstallError::Io(std::io::Error::other(e));
        let rows: Vec<(i64, String, Option<String>)> = sqlx::query_as(
            "SELECT seq, name, sha256 FROM plugin_changes WHERE seq > $1 ORDER BY seq",
        )
        .bind(*applied)
        .fetch_all(&self.db)
        .await
        .map_err(io)?;
        let Some(last) = rows.last().map(|r| r.0) else {
            return Ok(vec![]);
        };
        // The latest change of each name is what counts.
        let latest: BTreeMap<String, Option<String>> =
            rows.into_iter().map(|(_, name, sha)| (name, sha)).collect();
        let mut changed = Vec::new();
        for (name, sha) in latest {
            let here = host.registry().plugin(&name).map(|p| p.meta.sha256.clone());
            match sha {
                None if here.is_some() => match host.remove(&name).await {
                    Ok(()) | Err(InstallError::NotFound(_)) => changed.push(name),
                    Err(e) => return Err(e),
                },
                Some(sha) if here.as_deref() != Some(sha.as_str()) => {
                    let tmp = self.tmp.join(format!("plugin-{sha}"));
                    let fetched = self.remote.fetch_to(&object(&sha), &sha, &tmp).await;
                    let wasm = fetched.and_then(|()| std::fs::read(&tmp));
                    let _ = std::fs::remove_file(&tmp);
                    host.install(wasm.map_err(InstallError::Io)?).await?;
                    changed.push(name);
                }
                _ => {}
            }
        }
        *applied = last;
        Ok(changed)
    }
}
