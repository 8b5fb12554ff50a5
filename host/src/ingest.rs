//! Packages in: a received upload is parsed natively (`repod-reader`),
//! handed to the family plugin that owns the distribution (validation,
//! placement, index entries), and only then stored: blob first, then the
//! rows and the audit entry in one transaction.

use std::path::Path;
use std::sync::Arc;

use tokio::sync::Mutex;

use crate::audit;
use crate::blobs::{BlobStore, Received};
use crate::catalog::{self, Added, NewPackage, PackageRecord};
use crate::db::Db;
use crate::plugins::contract::{
    DebPackage, PackageMetadata, ParsedPackage, Prepared, RpmChangelog, RpmDependency, RpmFile,
    RpmFileKind, RpmPackage,
};
use crate::plugins::{PluginError, PluginHost};
use crate::publish::Publisher;
use crate::tokens::Caller;

#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    #[error("no distribution {0}; GET /api/v1/distributions lists the available ones")]
    UnknownDistribution(String),
    #[error("{0}")]
    Unreadable(#[from] repod_reader::ReadError),
    /// The family plugin's own words, for the uploader.
    #[error("{0}")]
    Rejected(String),
    #[error(
        "{dist} already has {name} {version} {arch} from a different file (sha256 {sha256}); remove it or upload a new version"
    )]
    Conflict {
        dist: String,
        name: String,
        version: String,
        arch: String,
        sha256: String,
    },
    /// Another file already sits at one of its pool paths; the message
    /// names it.
    #[error("{0}")]
    PathTaken(String),
    #[error(transparent)]
    Plugin(#[from] PluginError),
    #[error("storage error: {0}")]
    Io(#[from] std::io::Error),
    #[error("database error: {0}")]
    Db(#[from] sqlx::Error),
}

/// Whether an upload added something new.
pub enum Outcome {
    Created(PackageRecord),
    Existing(PackageRecord),
}

/// Ingestion and removal, serialised against each other so garbage
/// collection never deletes a blob an upload is about to reference.
pub struct Packages {
    pub db: Db,
    pub blobs: BlobStore,
    pub plugins: Arc<PluginHost>,
    /// Told about every committed change, so it reaches the published tree.
    pub publisher: Arc<Publisher>,
    pub limits: repod_reader::Limits,
    writes: Mutex<()>,
}

impl Packages {
    pub fn new(
        db: Db,
        blobs: BlobStore,
        plugins: Arc<PluginHost>,
        publisher: Arc<Publisher>,
        limits: repod_reader::Limits,
    ) -> Packages {
        Packages {
            db,
            blobs,
            plugins,
            publisher,
            limits,
            writes: Mutex::new(()),
        }
    }

    /// Takes a received upload into `dist`.
    pub async fn ingest(
        &self,
        received: Received,
        dist: &str,
        filename: &str,
        caller: &Caller,
    ) -> Result<Outcome, IngestError> {
        if self.plugins.registry().distribution(dist).is_none() {
            return Err(IngestError::UnknownDistribution(dist.into()));
        }
        let limits = self.limits.clone();
        let path = received.path.clone();
        let parsed = tokio::task::spawn_blocking(move || repod_reader::read(&path, &limits))
            .await
            .expect("reader panicked")?;
        let (format, package) = to_contract(parsed, &received)?;

        let dist_id = dist.to_owned();
        let prepared = self
            .plugins
            .blocking(move |registry| {
                let (family, distribution) = registry
                    .distribution(&dist_id)
                    .ok_or_else(|| IngestError::UnknownDistribution(dist_id.clone()))?;
                let mut out = family.prepare(distribution, std::slice::from_ref(&package))?;
                out.pop()
                    .expect("checked: one result per package")
                    .map_err(IngestError::Rejected)
            })
            .await?;
        self.store(received, dist, format, filename, caller, &prepared)
            .await
    }

    async fn store(
        &self,
        received: Received,
        dist: &str,
        format: &str,
        filename: &str,
        caller: &Caller,
        prepared: &Prepared,
    ) -> Result<Outcome, IngestError> {
        let id = &prepared.identity;
        let new = NewPackage {
            distribution: dist,
            name: &id.name,
            version: &id.version,
            architecture: &id.architecture,
            sha256: &received.sha256,
            size: received.size,
            format,
            filename,
            uploaded_by: &caller.name,
            pool_paths: &prepared.pool_paths,
            entries: prepared
                .entries
                .iter()
                .map(|e| (e.index.as_str(), e.sort_key.as_str(), e.text.as_str()))
                .collect(),
        };
        let _writes = self.writes.lock().await;
        let mut tx = self.db.begin().await?;
        match catalog::add(&mut tx, &new).await? {
            Added::Existing(record) => Ok(Outcome::Existing(record)),
            Added::Conflict(existing) => Err(IngestError::Conflict {
                dist: dist.into(),
                name: existing.name,
                version: existing.version,
                arch: existing.architecture,
                sha256: existing.sha256,
            }),
            Added::PathTaken { path, owner } => Err(IngestError::PathTaken(format!(
                "{path} is already published from a different file ({} {} {} in {}, sha256 {}); \
                 distributions share the pool, so one path holds one file: use a different version",
                owner.name, owner.version, owner.architecture, owner.distribution, owner.sha256
            ))),
            Added::Created(record) => {
                // The blob is durable before the rows that refer to it.
                let blobs = self.blobs.clone();
                let received =
                    tokio::task::spawn_blocking(move || blobs.commit(&received).map(|()| received))
                        .await
                        .expect("blob commit panicked")?;
                drop(received);
                let detail = format!(
                    "{} {} {} sha256 {}",
                    record.name, record.version, record.architecture, record.sha256
                );
                audit::record(&mut tx, &caller.name, "package.add", &record.id, &detail).await?;
                tx.commit().await?;
                self.publisher.changed(dist);
                Ok(Outcome::Created(record))
            }
        }
    }

    /// Removes a package from its distribution; deletes its blob when no
    /// distribution carries it any more.
    pub async fn remove(
        &self,
        id: &str,
        caller: &Caller,
    ) -> Result<Option<PackageRecord>, IngestError> {
        let _writes = self.writes.lock().await;
        let mut tx = self.db.begin().await?;
        let Some((record, orphaned)) = catalog::remove(&mut tx, id).await? else {
            return Ok(None);
        };
        let detail = format!(
            "{} {} {} from {}",
            record.name, record.version, record.architecture, record.distribution
        );
        audit::record(&mut tx, &caller.name, "package.remove", &record.id, &detail).await?;
        tx.commit().await?;
        self.publisher.changed(&record.distribution);
        if orphaned {
            self.blobs.remove(&record.sha256)?;
        }
        Ok(Some(record))
    }

    /// Deletes blobs on disk that no row refers to: what a crash between
    /// storing a blob and committing its rows leaves behind.
    pub async fn collect_garbage(&self) -> Result<usize, IngestError> {
        let _writes = self.writes.lock().await;
        let known: std::collections::HashSet<String> =
            catalog::blob_hashes(&self.db).await?.into_iter().collect();
        let mut removed = 0;
        for sha in self.blobs.list()? {
            if !known.contains(&sha) {
                self.blobs.remove(&sha)?;
                removed += 1;
            }
        }
        Ok(removed)
    }
}

fn now() -> u64 {
    crate::db::now() as u64
}

/// The reader's view of a package, in the plugin contract's terms.
fn to_contract(
    package: repod_reader::Package,
    received: &Received,
) -> Result<(&'static str, ParsedPackage), IngestError> {
    let (format, metadata) = match package {
        repod_reader::Package::Deb(deb) => (
            "deb",
            PackageMetadata::Deb(DebPackage {
                control: deb.control,
                files: deb.files,
                extensions: vec![],
            }),
        ),
        repod_reader::Package::Rpm(rpm) => {
            if rpm.is_source {
                return Err(IngestError::Rejected(
                    "source packages (.src.rpm) are not accepted: upload the binary rpms built from it".into(),
                ));
            }
            ("rpm", PackageMetadata::Rpm(rpm_to_contract(rpm)))
        }
    };
    Ok((
        format,
        ParsedPackage {
            metadata,
            checksums: vec![("sha256".into(), received.sha256.clone())],
            size: received.size,
            received: now(),
            extensions: vec![],
        },
    ))
}

fn deps(list: Vec<repod_reader::RpmDependency>) -> Vec<RpmDependency> {
    list.into_iter()
        .map(|d| RpmDependency {
            name: d.name,
            relation: d.relation,
            epoch: d.epoch,
            version: d.version,
            release: d.release,
            pre: d.pre,
        })
        .collect()
}

fn rpm_to_contract(r: repod_reader::RpmPackage) -> RpmPackage {
    RpmPackage {
        name: r.name,
        epoch: r.epoch,
        version: r.version,
        release: r.release,
        arch: r.arch,
        summary: r.summary,
        description: r.description,
        url: r.url,
        license: r.license,
        vendor: r.vendor,
        group: r.group,
        buildhost: r.buildhost,
        sourcerpm: r.sourcerpm,
        packager: r.packager,
        build_time: r.build_time,
        installed_size: r.installed_size,
        archive_size: r.archive_size,
        header_start: r.header_start,
        header_end: r.header_end,
        provides: deps(r.provides),
        requires: deps(r.requires),
        conflicts: deps(r.conflicts),
        obsoletes: deps(r.obsoletes),
        recommends: deps(r.recommends),
        suggests: deps(r.suggests),
        supplements: deps(r.supplements),
        enhances: deps(r.enhances),
        files: r
            .files
            .into_iter()
            .map(|f| RpmFile {
                path: f.path,
                kind: match f.kind {
                    repod_reader::RpmFileKind::File => RpmFileKind::File,
                    repod_reader::RpmFileKind::Dir => RpmFileKind::Dir,
                    repod_reader::RpmFileKind::Ghost => RpmFileKind::Ghost,
                },
            })
            .collect(),
        changelogs: r
            .changelogs
            .into_iter()
            .map(|c| RpmChangelog {
                author: c.author,
                date: c.date,
                text: c.text,
            })
            .collect(),
        extensions: vec![],
    }
}

/// The file name part of an uploaded name, for display only.
pub fn clean_filename(name: Option<&str>) -> String {
    let base = name
        .and_then(|n| Path::new(n).file_name())
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let cleaned: String = base.chars().filter(|c| !c.is_control()).take(255).collect();
    if cleaned.is_empty() {
        "upload".into()
    } else {
        cleaned
    }
}
