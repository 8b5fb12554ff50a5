//! What a publish reads from the database, and the worker keeps between
//! publishes: the packages of one version, arranged as the indexes list
//! them, read whole once and then by difference between versions.
//!
//! Arranging 50,000 packages (grouping their entries by index, sorting by
//! sort key, mapping pool paths) costs more than a publish's other steps
//! but compression; kept up to date by difference it costs what changed.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Instant;

use super::PublishError;
use super::build::{Snapshot, StoredPackage};
use crate::catalog::versions;
use crate::db::Db;

/// One entry of one index: `package.entries[at]`.
#[derive(Clone)]
pub struct Entry {
    package: Arc<StoredPackage>,
    at: usize,
}

impl Entry {
    pub fn text(&self) -> &str {
        &self.package.entries[self.at].2
    }
}

/// A version's packages as a publish lists them.
#[derive(Clone, Default)]
pub struct View {
    /// Index path -> its entries by (sort key, package id, the entry's place
    /// among the package's own): the order they are written in.
    pub indexes: HashMap<String, BTreeMap<(String, String, usize), Entry>>,
    /// Pool path -> blob SHA-256.
    pub pool: BTreeMap<String, String>,
    pub packages: usize,
}

/// The packages of one distribution version the worker has read.
#[derive(Default)]
pub(super) struct Known {
    pub(super) version: i64,
    packages: HashMap<String, Arc<StoredPackage>>,
    view: Arc<View>,
    /// Pool paths added (or given other bytes) since the last publish that
    /// went live: what that publish must link.
    pub(super) unlinked: BTreeMap<String, String>,
}

impl Known {
    /// What a publish of the version kept here needs; `started` is when
    /// reading it began.
    pub(super) fn snapshot(&self, dist: &str, started: Instant) -> Snapshot {
        Snapshot {
            dist: dist.to_owned(),
            version: self.version,
            view: self.view.clone(),
            documents: Default::default(),
            unlisted: Default::default(),
            deltas: Default::default(),
            deltas_ms: 0.0,
            read_ms: started.elapsed().as_secs_f64() * 1000.0,
        }
    }

    fn add(&mut self, id: String, package: Arc<StoredPackage>) {
        if self.packages.contains_key(&id) {
            self.remove(&id);
        }
        let view = Arc::make_mut(&mut self.view);
        for (at, (index, key, _)) in package.entries.iter().enumerate() {
            view.indexes.entry(index.clone()).or_default().insert(
                (key.clone(), id.clone(), at),
                Entry {
                    package: package.clone(),
                    at,
                },
            );
        }
        for path in &package.pool_paths {
            if view.pool.get(path) != Some(&package.sha256) {
                view.pool.insert(path.clone(), package.sha256.clone());
                self.unlinked.insert(path.clone(), package.sha256.clone());
            }
        }
        view.packages += 1;
        self.packages.insert(id, package);
    }

    fn remove(&mut self, id: &str) {
        let Some(package) = self.packages.remove(id) else {
            return;
        };
        let view = Arc::make_mut(&mut self.view);
        for (at, (index, key, _)) in package.entries.iter().enumerate() {
            if let Some(entries) = view.indexes.get_mut(index) {
                entries.remove(&(key.clone(), id.to_owned(), at));
            }
        }
        // One path, one file: no other package of the version has it.
        for path in &package.pool_paths {
            view.pool.remove(path);
            self.unlinked.remove(path);
        }
        view.packages -= 1;
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
            known.remove(id);
        }
        let new: Vec<&str> = added
            .iter()
            .filter(|id| !known.packages.contains_key(*id))
            .map(String::as_str)
            .collect();
        for (id, package) in read_ids(db, &new).await? {
            known.add(id, package);
        }
        known.version = latest;
    }
    Ok(known.snapshot(dist, started))
}

/// The RPMs of version `number` of `dist` its signature requirement
/// leaves out of the indexes (`missing-signatures = "skip"`): none
/// otherwise, without a query.
pub(super) async fn unlisted(
    db: &Db,
    dist: &crate::plugins::contract::Distribution,
    number: i64,
) -> Result<std::collections::HashSet<String>, PublishError> {
    let Some(requirement) =
        crate::signatures::of(dist).filter(|r| r.missing == crate::signatures::Missing::Skip)
    else {
        return Ok(Default::default());
    };
    let rows: Vec<(String, Option<String>)> = sqlx::query_as(&format!(
        "SELECT p.id, b.signature_key_id FROM packages p JOIN blobs b ON b.sha256 = p.sha256 \
         JOIN memberships m ON m.package_id = p.id WHERE {} AND b.format = 'rpm'",
        versions::IN_VERSION
    ))
    .bind(&dist.id)
    .bind(number)
    .fetch_all(db)
    .await?;
    Ok(rows
        .into_iter()
        .filter(|(_, key)| !key.as_deref().is_some_and(|k| requirement.trusts(k)))
        .map(|(id, _)| id)
        .collect())
}

/// Reads every package of version `number` into an empty `known` (one
/// query).
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
    for (id, package) in decode(rows)? {
        known.add(id, package);
    }
    known.version = number;
    Ok(known.snapshot(dist, started))
}

/// Reads the rows of `ids`.
async fn read_ids(
    db: &Db,
    ids: &[&str],
) -> Result<Vec<(String, Arc<StoredPackage>)>, PublishError> {
    let mut out = Vec::with_capacity(ids.len());
    for batch in ids.chunks(crate::catalog::BATCH) {
        let rows = crate::catalog::in_list(
            "SELECT id, sha256, rendered FROM packages WHERE id IN (",
            batch,
        )
        .build_query_as()
        .fetch_all(db)
        .await?;
        out.extend(decode(rows)?);
    }
    Ok(out)
}

/// Decodes (id, blob, rendered) rows: one row per package (migration 0004
/// says why).
fn decode(
    rows: Vec<(String, String, String)>,
) -> Result<Vec<(String, Arc<StoredPackage>)>, PublishError> {
    rows.into_iter()
        .map(|(id, sha256, rendered)| {
            let rendered = crate::catalog::decode_rendered(&rendered).map_err(|e| {
                PublishError::Failed(format!(
                    "package {id} has an unreadable `rendered` column ({e}); re-upload it"
                ))
            })?;
            let package = StoredPackage {
                sha256,
                pool_paths: rendered.pool_paths,
                entries: rendered.entries,
            };
            Ok((id, Arc::new(package)))
        })
        .collect()
}
