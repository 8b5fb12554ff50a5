//! What a publish reads from the database: the packages of one version,
//! read whole once and then by difference between versions.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use super::PublishError;
use super::build::{Snapshot, StoredPackage};
use crate::catalog::versions;
use crate::db::Db;

/// Packages of one distribution version the worker has read, by id.
#[derive(Default)]
pub(super) struct Known {
    pub(super) version: i64,
    pub(super) packages: HashMap<String, Arc<StoredPackage>>,
}

impl Known {
    /// What a publish of the version kept here needs; `started` is when
    /// reading it began.
    pub(super) fn snapshot(&self, dist: &str, started: Instant) -> Snapshot {
        Snapshot {
            dist: dist.to_owned(),
            version: self.version,
            packages: self
                .packages
                .iter()
                .map(|(id, p)| (id.clone(), p.clone()))
                .collect(),
            read_ms: started.elapsed().as_secs_f64() * 1000.0,
        }
    }
}

/// What `dist`'s latest version publishes. The worker keeps the packages
/// of the version it published last (`known`) and reads only the
/// difference: the ids a few versions added and removed, and the new rows.
pub(super) async fn latest_snapshot(
    db: &Db,
    dist: &str,
    known: &mut Known,
) -> Result<Snapshot, PublishError> {
    let started = Instant::now();
    let latest = versions::latest(db, dist).await?;
    if known.version == 0 || known.version > latest {
        *known = Known::default();
        return read_version(db, dist, latest, known).await;
    }
    if known.version < latest {
        let (added, removed) = versions::diff_ids(db, dist, known.version, latest).await?;
        for id in &removed {
            known.packages.remove(id);
        }
        let new: Vec<&str> = added
            .iter()
            .filter(|id| !known.packages.contains_key(*id))
            .map(String::as_str)
            .collect();
        read_ids(db, &mut known.packages, &new).await?;
        known.version = latest;
    }
    Ok(known.snapshot(dist, started))
}

/// Reads every package of version `number` into `known` (one query).
pub(super) async fn read_version(
    db: &Db,
    dist: &str,
    number: i64,
    known: &mut Known,
) -> Result<Snapshot, PublishError> {
    let started = Instant::now();
    let rows: Vec<(String, String, String)> = sqlx::query_as(&format!(
        "SELECT p.id, p.sha256, p.rendered FROM packages p \
         JOIN memberships m ON m.package_id = p.id WHERE {}",
        versions::IN_VERSION
    ))
    .bind(dist)
    .bind(number)
    .fetch_all(db)
    .await?;
    keep_rows(&mut known.packages, rows)?;
    known.version = number;
    Ok(known.snapshot(dist, started))
}

/// Reads the rows of `ids` into `out`.
async fn read_ids(
    db: &Db,
    out: &mut HashMap<String, Arc<StoredPackage>>,
    ids: &[&str],
) -> Result<(), PublishError> {
    for batch in ids.chunks(crate::catalog::BATCH) {
        let rows = crate::catalog::in_list(
            "SELECT id, sha256, rendered FROM packages WHERE id IN (",
            batch,
        )
        .build_query_as()
        .fetch_all(db)
        .await?;
        keep_rows(out, rows)?;
    }
    Ok(())
}

/// Decodes (id, blob, rendered) rows: one row per package (migration 0004
/// says why).
fn keep_rows(
    out: &mut HashMap<String, Arc<StoredPackage>>,
    rows: Vec<(String, String, String)>,
) -> Result<(), PublishError> {
    for (id, sha256, rendered) in rows {
        let rendered = crate::catalog::decode_rendered(&rendered).map_err(|e| {
            PublishError::Failed(format!(
                "package {id} has an unreadable `rendered` column ({e}); re-upload it"
            ))
        })?;
        out.insert(
            id,
            Arc::new(StoredPackage {
                sha256,
                pool_paths: rendered.pool_paths,
                entries: rendered.entries,
            }),
        );
    }
    Ok(())
}
