//! Packages in: a received upload is parsed natively (`repod-reader`),
//! handed to the family plugin that owns the distribution (validation,
//! placement, index entries), and only then stored: blob first, then the
//! rows and the audit entry in one transaction.

use std::path::Path;
use std::sync::Arc;

use crate::audit;
use crate::blobs::{BlobStore, Received};
use crate::catalog::{self, Added, Change, NewPackage, PackageRecord, VersionRecord, WriteLock};
use crate::config::PolicyConfig;
use crate::db::Db;
use crate::plugins::contract::{
    DebPackage, PackageMetadata, ParsedPackage, Prepared, RpmChangelog, RpmDependency, RpmFile,
    RpmFileKind, RpmPackage,
};
use crate::plugins::{PluginError, PluginHost};
use crate::publish::Publisher;
use crate::scan::{self, Scan, ScanError, Subject};
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
        "{dist} already has {name} {version} {arch} from a different file (sha256 {sha256}); remove it from {dist} first, or give the new file a new version"
    )]
    Conflict {
        dist: String,
        name: String,
        version: String,
        arch: String,
        sha256: String,
    },
    #[error(
        "{dist} had {name} {version} {arch} from a different file (sha256 {sha256}) and a kept \
         version still lists it, so clients pinned to that version may fetch it at the same path; \
         give the new file a new version number (GET /api/v1/distributions/{dist}/versions shows what is kept)"
    )]
    Retained {
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
    /// The distribution's scanner policy blocks it; nothing was stored.
    #[error(
        "{} {} is blocked by the scanner policy {}: {}; nothing was stored (a fixed version \
         passes; GET /api/v1/advisories/{{id}} has each advisory)",
        .0.findings.len(),
        if .0.findings.len() == 1 { "finding" } else { "findings" },
        .0.policy,
        .0.reason
    )]
    Blocked(Box<Scan>),
    #[error("scanning failed: {0}")]
    Scan(#[from] ScanError),
    #[error("storage error: {0}")]
    Io(#[from] std::io::Error),
    #[error("database error: {0}")]
    Db(#[from] sqlx::Error),
}

impl IngestError {
    /// The refusal `catalog::add` reported, in words; `None` for a success.
    pub(crate) fn from_added(dist: &str, added: &Added) -> Option<IngestError> {
        let who = |r: &PackageRecord| {
            (
                dist.to_owned(),
                r.name.clone(),
                r.version.clone(),
                r.architecture.clone(),
                r.sha256.clone(),
            )
        };
        Some(match added {
            Added::Created(_) | Added::Restored(_) | Added::Existing(_) => return None,
            Added::Conflict(r) => {
                let (dist, name, version, arch, sha256) = who(r);
                IngestError::Conflict {
                    dist,
                    name,
                    version,
                    arch,
                    sha256,
                }
            }
            Added::Retained(r) => {
                let (dist, name, version, arch, sha256) = who(r);
                IngestError::Retained {
                    dist,
                    name,
                    version,
                    arch,
                    sha256,
                }
            }
            Added::PathTaken { path, owner } => IngestError::PathTaken(format!(
                "{path} is already published from a different file ({} {} {} in {}, sha256 {}); \
                 distributions and their kept versions share the pool, so one path holds one \
                 file: use a different version",
                owner.name, owner.version, owner.architecture, owner.distribution, owner.sha256
            )),
        })
    }
}

/// Whether an upload added something new.
pub enum Outcome {
    /// Added; the version it made, and its scan.
    Created(PackageRecord, Option<VersionRecord>, Box<Scan>),
    Existing(PackageRecord),
    /// Stored but held out of the distribution until a person approves it.
    Quarantined(PackageRecord, Box<Scan>),
}

/// Ingestion, removal and the lifecycle operations (promotion, migration,
/// rollback; `lifecycle.rs`), serialised with each other and with
/// retention through the catalog write lock, so garbage collection never
/// deletes a blob an upload is about to reference and version numbers are
/// handed out one at a time.
pub struct Packages {
    pub db: Db,
    pub blobs: BlobStore,
    pub plugins: Arc<PluginHost>,
    /// Told about every committed change, so it reaches the published tree.
    pub publisher: Arc<Publisher>,
    pub limits: repod_reader::Limits,
    pub(crate) writes: WriteLock,
    /// Which scanner policy judges each distribution.
    pub policies: PolicyConfig,
    /// Signs the RPMs of distributions with `sign-packages`.
    pub key: Arc<crate::signing::SigningKey>,
}

impl Packages {
    /// Stores the upload a signed copy (`signed`) was made from as its own
    /// blob, named by the copy's `signed_from` (kept while the copy is).
    async fn keep_original(
        &self,
        tx: &mut sqlx::Transaction<'_, sqlx::Any>,
        upload: &Received,
        parsed: &str,
        signed: &str,
    ) -> Result<(), IngestError> {
        let blobs = self.blobs.clone();
        let (path, sha256) = (upload.path.clone(), upload.sha256.clone());
        tokio::task::spawn_blocking(move || blobs.commit_file(&path, &sha256))
            .await
            .expect("blob commit panicked")?;
        // The signature columns from the parsed package, read here rather
        // than with a JSON function of one database.
        let field = |name: &str| -> Option<String> {
            serde_json::from_str::<serde_json::Value>(parsed)
                .ok()?
                .get(name)?
                .as_str()
                .map(str::to_owned)
        };
        sqlx::query(
            "INSERT INTO blobs (sha256, size, format, created_at, parsed, signature, \
             signature_key_id) VALUES ($1, $2, 'rpm', $3, $4, $5, $6) \
             ON CONFLICT (sha256) DO NOTHING",
        )
        .bind(&upload.sha256)
        .bind(upload.size as i64)
        .bind(crate::db::now())
        .bind(parsed)
        .bind(field("signature"))
        .bind(field("signature_key_id"))
        .execute(&mut **tx)
        .await?;
        sqlx::query("UPDATE blobs SET signed_from = $1 WHERE sha256 = $2")
            .bind(&upload.sha256)
            .bind(signed)
            .execute(&mut **tx)
            .await?;
        Ok(())
    }

    /// A copy of the RPM `original` signed with the repository key: the one
    /// made for these bytes before, if any (so the same upload gives the
    /// same file), else a new one.
    async fn signed_copy(&self, original: &Received, ours: &str) -> Result<Received, IngestError> {
        let earlier: Option<(String,)> = sqlx::query_as(
            "SELECT sha256 FROM blobs WHERE signed_from = $1 AND signature_key_id = $2 LIMIT 1",
        )
        .bind(&original.sha256)
        .bind(ours)
        .fetch_optional(&self.db)
        .await?;
        let (blobs, key, from) = (self.blobs.clone(), self.key.clone(), original.path.clone());
        tokio::task::spawn_blocking(move || match earlier {
            Some((sha256,)) => {
                let path = blobs.local(&sha256)?;
                blobs.receive_with(|out| {
                    std::io::copy(&mut std::fs::File::open(&path)?, out)?;
                    Ok::<(), IngestError>(())
                })
            }
            None => blobs.receive_with(|out| {
                crate::signing::rpm::sign_rpm(&key, &from, out).map_err(|e| match e {
                    crate::signing::SigningError::Io(e) => IngestError::Io(e),
                    other => IngestError::Rejected(other.to_string()),
                })
            }),
        })
        .await
        .expect("signing panicked")
    }

    /// Takes a received upload into `dist`.
    pub async fn ingest(
        &self,
        mut received: Received,
        dist: &str,
        filename: &str,
        caller: &Caller,
        reason: &str,
    ) -> Result<Outcome, IngestError> {
        if self.plugins.registry().distribution(dist).is_none() {
            return Err(IngestError::UnknownDistribution(dist.into()));
        }
        let read = |path: std::path::PathBuf| {
            let limits = self.limits.clone();
            tokio::task::spawn_blocking(move || repod_reader::read(&path, &limits))
        };
        let mut parsed = read(received.path.clone())
            .await
            .expect("reader panicked")?;
        // A distribution that signs its RPMs gets a copy signed with the
        // repository key; the upload is kept next to it.
        let mut original: Option<(Received, String)> = None;
        if let repod_reader::Package::Rpm(_) = &parsed
            && self
                .plugins
                .registry()
                .distribution(dist)
                .is_some_and(|(_, d)| crate::signatures::signs(d))
        {
            // Signed even when it claims to be signed by the repository
            // key already: a claimed issuer is not a verified signature.
            // (A copy repod made itself, uploaded again, is taken as is.)
            let ours = self.key.key_id();
            let (crate::db::Flag(made_here),): (crate::db::Flag,) = sqlx::query_as(
                "SELECT EXISTS (SELECT 1 FROM blobs WHERE sha256 = $1 AND signed_from IS NOT NULL)",
            )
            .bind(&received.sha256)
            .fetch_one(&self.db)
            .await?;
            if !made_here {
                let signed = self.signed_copy(&received, &ours).await?;
                let as_uploaded = serde_json::to_string(&parsed).map_err(std::io::Error::other)?;
                parsed = read(signed.path.clone()).await.expect("reader panicked")?;
                original = Some((std::mem::replace(&mut received, signed), as_uploaded));
            }
        }
        let stored = serde_json::to_string(&parsed).map_err(std::io::Error::other)?;
        let signature = match &parsed {
            repod_reader::Package::Rpm(rpm) => {
                (rpm.signature.clone(), rpm.signature_key_id.clone())
            }
            repod_reader::Package::Deb(_) => (None, None),
        };
        let source = scan::source_name(&parsed);
        if let repod_reader::Package::Rpm(rpm) = &parsed {
            let label = format!("{}-{}-{}.{}", rpm.name, rpm.version, rpm.release, rpm.arch);
            crate::signatures::admit(
                &self.plugins.registry(),
                dist,
                "rpm",
                &label,
                rpm.signature_key_id.as_deref(),
                &self.key.key_id(),
            )
            .map_err(IngestError::Rejected)?;
        }
        let (format, package) = to_contract(parsed, &received.sha256, received.size, now())?;

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
        // The gate: matched and judged before anything is stored.
        let subject = Subject {
            distribution: dist.to_owned(),
            name: prepared.identity.name.clone(),
            version: prepared.identity.version.clone(),
            architecture: prepared.identity.architecture.clone(),
            names: scan::names_of(&prepared.identity.name, source),
        };
        // Imports do not take the catalog lock: one that commits between this
        // scan and the commit below would re-scan before this row exists. So
        // the transaction checks for one and, if so, the gate runs again
        // (imports commit through SQLite's one writer: none can commit while
        // the transaction below is open, and any later one sees this row).
        let mut attempts = 0;
        loop {
            // The newest import so far: one after it committed after this scan.
            let (seen,): (i64,) =
                sqlx::query_as("SELECT COALESCE(MAX(seq), 0) FROM advisory_imports")
                    .fetch_one(&self.db)
                    .await?;
            let (ecosystem, findings) =
                scan::find(&self.db, &self.plugins, std::slice::from_ref(&subject))
                    .await?
                    .pop()
                    .expect("one subject");
            let judgement = scan::judge(
                &self.plugins,
                &self.policies,
                std::slice::from_ref(&subject),
                &[(ecosystem.clone(), findings.clone())],
            )
            .await?
            .pop()
            .expect("one subject");
            // A decision about these very bytes in this distribution (a
            // re-upload of an approved package) stands.
            let earlier: Option<(String, crate::db::Flag)> = sqlx::query_as(
                "SELECT id, EXISTS (SELECT 1 FROM memberships m WHERE m.package_id = packages.id \
                 AND m.removed_in IS NULL) FROM packages WHERE distribution = $1 AND sha256 = $2 \
                 AND name = $3 AND version = $4 AND architecture = $5",
            )
            .bind(dist)
            .bind(&received.sha256)
            .bind(&subject.name)
            .bind(&subject.version)
            .bind(&subject.architecture)
            .fetch_optional(&self.db)
            .await?;
            let decision = match &earlier {
                Some((id, _)) => scan::latest_decisions(&self.db, &[id]).await?.remove(id),
                None => None,
            };
            let verdict = scan::result(
                "",
                ecosystem.clone(),
                findings.clone(),
                judgement.clone(),
                decision.clone(),
            );
            // The same bytes already published answer 200 (nothing changes),
            // whatever the advisories say now: a later scan flags them.
            let published = earlier.as_ref().is_some_and(|(_, current)| current.0);
            if verdict.state == "blocked" && !published {
                return Err(IngestError::Blocked(Box::new(verdict)));
            }
            let hold = matches!(verdict.state.as_str(), "quarantined" | "rejected");
            let new = NewPackage {
                hold,
                name: &prepared.identity.name,
                version: &prepared.identity.version,
                architecture: &prepared.identity.architecture,
                sha256: &received.sha256,
                size: received.size,
                format,
                filename,
                uploaded_by: &caller.name,
                origin: None,
                parsed: Some(&stored),
                pool_paths: &prepared.pool_paths,
                entries: entries(&prepared),
                signature: signature.0.as_deref(),
                signature_key_id: signature.1.as_deref(),
            };
            let writes = self.writes.lock().await;
            let mut tx = crate::db::write(&self.db).await?;
            let (crate::db::Flag(imported),): (crate::db::Flag,) = sqlx::query_as(
                "SELECT EXISTS (SELECT 1 FROM advisory_imports WHERE seq > $1 \
                 AND added + updated > 0)",
            )
            .bind(seen)
            .fetch_one(&mut *tx)
            .await?;
            if imported && attempts < 3 {
                attempts += 1;
                drop(tx);
                drop(writes);
                continue;
            }
            let mut change = Change::begin(&mut tx, dist).await?;
            let added = catalog::add(&mut tx, &mut change, new).await?;
            if let Some(refused) = IngestError::from_added(dist, &added) {
                return Err(refused);
            }
            let record = match added {
                Added::Existing(record) => return Ok(Outcome::Existing(record)),
                Added::Created(record) => {
                    // The blob is durable before the rows that refer to it.
                    let blobs = self.blobs.clone();
                    tokio::task::spawn_blocking(move || blobs.commit(&received).map(|()| received))
                        .await
                        .expect("blob commit panicked")?;
                    if let Some((upload, parsed)) = &original {
                        self.keep_original(&mut tx, upload, parsed, &record.sha256)
                            .await?;
                    }
                    record
                }
                // The row, and so its blob, was kept for an older version.
                Added::Restored(record) => record,
                _ => unreachable!("refusals returned above"),
            };
            let scan = scan::result(&record.id, ecosystem, findings, judgement, decision);
            scan::store(&mut tx, &[(scan.clone(), Some(&subject.names))]).await?;
            if hold {
                let detail = format!(
                    "{} {} {} sha256 {} held out of {dist}: {}",
                    record.name, record.version, record.architecture, record.sha256, scan.reason
                );
                audit::record(
                    &mut tx,
                    &caller.name,
                    "package.quarantine",
                    &record.id,
                    &detail,
                )
                .await?;
                tx.commit().await?;
                return Ok(Outcome::Quarantined(record, Box::new(scan)));
            }
            let detail = format!(
                "{} {} {} sha256 {} into {dist}",
                record.name, record.version, record.architecture, record.sha256
            );
            audit::record(&mut tx, &caller.name, "package.add", &record.id, &detail).await?;
            let version = change
                .finish(&mut tx, &caller.name, "upload", reason)
                .await?;
            tx.commit().await?;
            self.publisher.changed(dist);
            return Ok(Outcome::Created(record, version, Box::new(scan)));
        }
    }

    /// Removes a package from its distribution's next version. Its row,
    /// blob and pool file stay while a kept version lists it (retention
    /// collects them). A package the gate held back (never in a version) is
    /// discarded: row, scan, decisions and (if unused) blob. `None` if no
    /// current or held package has this id.
    pub async fn remove(
        &self,
        id: &str,
        caller: &Caller,
        reason: &str,
    ) -> Result<Option<(PackageRecord, Option<VersionRecord>)>, IngestError> {
        let Some(row) = catalog::get(&self.db, id).await? else {
            return Ok(None);
        };
        let _writes = self.writes.lock().await;
        let mut tx = crate::db::write(&self.db).await?;
        let mut change = Change::begin(&mut tx, &row.distribution).await?;
        let Some(record) = catalog::remove(&mut tx, &mut change, id).await? else {
            // A package the gate held back (never in a version) is discarded.
            let Some((record, blob)) = catalog::discard_held(&mut tx, id).await? else {
                return Ok(None);
            };
            let detail = format!(
                "{} {} {} held out of {}, discarded{}",
                record.name,
                record.version,
                record.architecture,
                record.distribution,
                if reason.is_empty() {
                    String::new()
                } else {
                    format!(": {reason}")
                }
            );
            audit::record(
                &mut tx,
                &caller.name,
                "package.discard",
                &record.id,
                &detail,
            )
            .await?;
            tx.commit().await?;
            for (sha, e) in self.blobs.remove_many(blob.into_iter().collect()).await {
                tracing::error!(
                    sha256 = sha,
                    "cannot delete a discarded package's blob: {e}"
                );
            }
            return Ok(Some((record, None)));
        };
        let detail = format!(
            "{} {} {} from {}",
            record.name, record.version, record.architecture, record.distribution
        );
        audit::record(&mut tx, &caller.name, "package.remove", &record.id, &detail).await?;
        let version = change
            .finish(&mut tx, &caller.name, "remove", reason)
            .await?;
        tx.commit().await?;
        self.publisher.changed(&record.distribution);
        Ok(Some((record, version)))
    }

    /// Deletes blobs that no row refers to: what a crash between storing
    /// a blob and committing its rows leaves behind. `stored`: the object
    /// store's too, not only this node's files (a cluster's leader
    /// collects the store instead, `publish/worker.rs`).
    pub async fn collect_garbage(&self, stored: bool) -> Result<usize, IngestError> {
        let _writes = self.writes.lock().await;
        let known: std::collections::HashSet<String> =
            catalog::blob_hashes(&self.db).await?.into_iter().collect();
        let blobs = self.blobs.clone();
        Ok(tokio::task::spawn_blocking(move || match stored {
            true => blobs.collect(&known),
            false => blobs.collect_local(&known),
        })
        .await
        .expect("blob collection panicked")?)
    }
}

/// A prepared package's entries as `catalog` takes them.
pub(crate) fn entries(prepared: &Prepared) -> Vec<(&str, &str, &str)> {
    prepared
        .entries
        .iter()
        .map(|e| (e.index.as_str(), e.sort_key.as_str(), e.text.as_str()))
        .collect()
}

fn now() -> u64 {
    crate::db::now() as u64
}

/// The reader's view of a package, in the contract's terms. `received`
/// (Unix seconds) is when the file entered the repository: rendered into
/// indexes (rpm-md's `<time file>`), so preparing it again keeps it.
pub(crate) fn to_contract(
    package: repod_reader::Package,
    sha256: &str,
    size: u64,
    received: u64,
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
            checksums: vec![("sha256".into(), sha256.to_owned())],
            size,
            received,
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
