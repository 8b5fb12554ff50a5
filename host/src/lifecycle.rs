//! Moving content between rollout tiers, and back in time: promotion,
//! migration and rollback, plus re-preparing a distribution's packages when
//! its plugin or config changed.
//!
//! Promotion and migration add packages to another distribution *by
//! reference*: the same blob (no bytes are copied or uploaded again),
//! prepared by the target's family plugin from the metadata the host read
//! at upload (`blobs.parsed`), so the target's settings apply. Each
//! operation is one change, hence at most one version and one publish of
//! the target, and waits until the target's tree shows it.

use std::collections::{BTreeSet, HashMap, HashSet};

use serde::Serialize;

use crate::audit;
use crate::catalog::{
    self, Added, Change, NewPackage, PackageRecord, Rerendered, Source, VersionRecord,
};
use crate::ingest::{IngestError, Packages, entries, to_contract};
use crate::plugins::contract::{Ordering, ParsedPackage, Prepared};
use crate::plugins::{PluginError, Registry};
use crate::publish::{PublishError, Report};
use crate::tokens::Caller;

/// Packages per `prepare` call: bounds what one plugin instance holds.
const PREPARE_BATCH: usize = 500;

#[derive(Debug, thiserror::Error)]
pub enum LifecycleError {
    /// 404
    #[error("{0}")]
    NotFound(String),
    /// 400
    #[error("{0}")]
    BadRequest(String),
    /// 409
    #[error("{0}")]
    Conflict(String),
    /// 422: the target's plugin refused a package.
    #[error("{0}")]
    Rejected(String),
    /// 422: the target's scanner policy blocks a package (its findings).
    #[error("{message}")]
    Blocked {
        message: String,
        scan: Box<crate::scan::Scan>,
    },
    #[error(transparent)]
    Plugin(#[from] PluginError),
    #[error("the change was made, but publishing {dist} failed: {error}")]
    Publish { dist: String, error: PublishError },
    #[error("storage error: {0}")]
    Io(#[from] std::io::Error),
    #[error("database error: {0}")]
    Db(#[from] sqlx::Error),
}

impl From<IngestError> for LifecycleError {
    fn from(e: IngestError) -> Self {
        match e {
            IngestError::UnknownDistribution(_) => LifecycleError::NotFound(e.to_string()),
            IngestError::Conflict { .. }
            | IngestError::Retained { .. }
            | IngestError::PathTaken(_) => LifecycleError::Conflict(e.to_string()),
            IngestError::Rejected(m) => LifecycleError::Rejected(m),
            IngestError::Unreadable(r) => LifecycleError::Io(std::io::Error::other(r.to_string())),
            IngestError::Plugin(p) => LifecycleError::Plugin(p),
            IngestError::Blocked(scan) => LifecycleError::Blocked {
                message: format!("blocked by the vulnerability gate: {}", scan.reason),
                scan,
            },
            IngestError::Scan(e) => e.into(),
            IngestError::Io(e) => LifecycleError::Io(e),
            IngestError::Db(e) => LifecycleError::Db(e),
        }
    }
}

impl From<crate::scan::ScanError> for LifecycleError {
    fn from(e: crate::scan::ScanError) -> Self {
        match e {
            crate::scan::ScanError::Plugin(p) => LifecycleError::Plugin(p),
            crate::scan::ScanError::Db(e) => LifecycleError::Db(e),
        }
    }
}

fn unknown(id: &str) -> LifecycleError {
    LifecycleError::NotFound(format!(
        "no distribution {id}; GET /api/v1/distributions lists the ones loaded plugins provide"
    ))
}

#[derive(Debug, Clone, serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PromoteRequest {
    /// Package name, e.g. `nginx`.
    pub package: String,
    pub from_dist: String,
    pub to_dist: String,
    /// Default: the newest in `from_dist`, by the family's version order.
    pub version: Option<String>,
    /// Default: every architecture of that version.
    pub architecture: Option<String>,
    pub reason: Option<String>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Promoted {
    pub package: String,
    pub version: String,
    pub from_dist: String,
    pub to_dist: String,
    /// Rows added to `to_dist`.
    pub promoted: Vec<PackageRecord>,
    /// Already in `to_dist` with the same bytes: left as they were.
    pub already_present: Vec<PackageRecord>,
    /// Added to `to_dist` but held out of its versions: its scanner policy
    /// quarantines them (or a person rejected them) until a maintainer
    /// approves (`POST /api/v1/packages/{id}/decision`).
    pub held: Vec<Held>,
    /// The version of `to_dist` the promotion made (none when nothing was
    /// added).
    pub distribution_version: Option<VersionRecord>,
    /// The publish the call waited for.
    pub publish: Option<Report>,
}

/// A package the target distribution's vulnerability gate holds back.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Held {
    #[serde(flatten)]
    pub package: PackageRecord,
    /// The source's findings judged by the target's policy, with the
    /// decision that travelled with the package.
    pub scan: crate::scan::Scan,
}

#[derive(Debug, Clone, serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MigrateRequest {
    pub from_dist: String,
    pub to_dist: String,
    pub reason: Option<String>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Skipped {
    pub name: String,
    pub version: String,
    pub architecture: String,
    pub reason: String,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Migrated {
    pub from_dist: String,
    pub to_dist: String,
    /// Rows added and published (held ones not counted).
    pub copied: usize,
    pub already_present: usize,
    /// Copied but held out of `to_dist`'s versions by its vulnerability
    /// gate (quarantined, or rejected), until a maintainer approves.
    pub held: Vec<Held>,
    pub skipped: usize,
    /// Why each skipped package was skipped.
    pub skips: Vec<Skipped>,
    pub distribution_version: Option<VersionRecord>,
    pub publish: Option<Report>,
}

#[derive(Debug, Clone, serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RollbackRequest {
    /// The version whose content the new version takes.
    pub version: i64,
    pub reason: Option<String>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct RolledBack {
    pub distribution: String,
    /// The version whose content was restored.
    pub to: i64,
    /// The version the rollback made; none when the content already was
    /// that version's.
    pub distribution_version: Option<VersionRecord>,
    pub added: usize,
    pub removed: usize,
    /// Packages of that version the vulnerability gate holds now (rejected
    /// since): left out.
    pub held_back: usize,
    pub publish: Option<Report>,
}

/// Two distributions a package may move between: same family (hence
/// format), and not the same one.
fn check_pair(registry: &Registry, from: &str, to: &str) -> Result<(), LifecycleError> {
    let (from_family, _) = registry.distribution(from).ok_or_else(|| unknown(from))?;
    let (to_family, _) = registry.distribution(to).ok_or_else(|| unknown(to))?;
    if from == to {
        return Err(LifecycleError::BadRequest(format!(
            "from_dist and to_dist are both {from}: name two different distributions"
        )));
    }
    if from_family.info.format != to_family.info.format || from_family.info.id != to_family.info.id
    {
        return Err(LifecycleError::BadRequest(format!(
            "{from} ({} family, {:?} packages) and {to} ({} family, {:?} packages) are different \
             families: packages move only between distributions of one family",
            from_family.info.id, from_family.info.format, to_family.info.id, to_family.info.format
        )));
    }
    Ok(())
}

impl Packages {
    /// The parsed metadata of each source, in the contract's terms, read
    /// from the database (or, for blobs stored before it was kept, from the
    /// file once, then stored). `again`: the rows themselves are prepared
    /// again, so they keep the time they were received; otherwise they are
    /// received into another distribution now.
    async fn parsed(
        &self,
        sources: &[Source],
        again: bool,
    ) -> Result<Vec<ParsedPackage>, LifecycleError> {
        let now = crate::db::now();
        let mut out = Vec::with_capacity(sources.len());
        for source in sources {
            let package: repod_reader::Package = match &source.parsed {
                Some(json) => serde_json::from_str(json).map_err(|e| {
                    std::io::Error::other(format!(
                        "stored metadata of blob {} is unreadable: {e}",
                        source.record.sha256
                    ))
                })?,
                None => {
                    let (blobs, sha) = (self.blobs.clone(), source.record.sha256.clone());
                    let limits = self.limits.clone();
                    let package = tokio::task::spawn_blocking(move || {
                        repod_reader::read(&blobs.local(&sha)?, &limits)
                            .map_err(|e| std::io::Error::other(e.to_string()))
                    })
                    .await
                    .expect("reader panicked")?;
                    let json = serde_json::to_string(&package).map_err(std::io::Error::other)?;
                    catalog::set_parsed(&self.db, &source.record.sha256, &json).await?;
                    package
                }
            };
            let (_, parsed) = to_contract(
                package,
                &source.record.sha256,
                source.record.size as u64,
                if again { source.record.created_at } else { now }.max(0) as u64,
            )?;
            out.push(parsed);
        }
        Ok(out)
    }

    /// Prepares `sources` for `dist` with its family plugin, in batches:
    /// one result per source. `again` as for [`Packages::parsed`].
    async fn prepare_for(
        &self,
        dist: &str,
        sources: &[Source],
        again: bool,
    ) -> Result<Vec<Result<Prepared, String>>, LifecycleError> {
        let mut out = Vec::with_capacity(sources.len());
        for batch in sources.chunks(PREPARE_BATCH) {
            let parsed = self.parsed(batch, again).await?;
            let dist = dist.to_owned();
            let prepared = self
                .plugins
                .blocking(move |registry| {
                    let (family, d) = registry.distribution(&dist).ok_or_else(|| unknown(&dist))?;
                    Ok::<_, LifecycleError>(family.prepare(d, &parsed)?)
                })
                .await?;
            out.extend(prepared);
        }
        Ok(out)
    }

    /// The newest of `versions` by `dist`'s family order: pairwise rounds,
    /// one plugin call per round.
    async fn newest(
        &self,
        dist: &str,
        mut versions: Vec<String>,
    ) -> Result<String, LifecycleError> {
        while versions.len() > 1 {
            let pairs: Vec<(String, String)> = versions
                .chunks(2)
                .filter(|c| c.len() == 2)
                .map(|c| (c[0].clone(), c[1].clone()))
                .collect();
            let dist = dist.to_owned();
            let order = self
                .plugins
                .blocking(move |registry| {
                    let (family, _) = registry.distribution(&dist).ok_or_else(|| unknown(&dist))?;
                    Ok::<_, LifecycleError>(family.compare_versions(&pairs)?)
                })
                .await?;
            let mut next: Vec<String> = versions
                .chunks(2)
                .zip(order.iter().map(Some).chain(std::iter::repeat(None)))
                .map(|(c, o)| match (c, o) {
                    ([_, b], Some(Ordering::Less)) => b.clone(),
                    ([a, _], Some(_)) => a.clone(),
                    ([a], _) => a.clone(),
                    _ => unreachable!("chunks of one or two"),
                })
                .collect();
            std::mem::swap(&mut versions, &mut next);
        }
        Ok(versions.pop().expect("at least one version"))
    }

    /// Promotes one package (one version, all or one of its architectures)
    /// from `from_dist` to `to_dist`.
    pub async fn promote(
        &self,
        request: &PromoteRequest,
        caller: &Caller,
    ) -> Result<Promoted, LifecycleError> {
        let (from, to) = (request.from_dist.as_str(), request.to_dist.as_str());
        let registry = self.plugins.registry();
        check_pair(&registry, from, to)?;
        let filter = catalog::Filter {
            distribution: Some(from.to_owned()),
            name: Some(request.package.clone()),
            architecture: None,
        };
        let rows = catalog::list(&self.db, &filter).await?;
        if rows.is_empty() {
            return Err(LifecycleError::NotFound(format!(
                "{from} has no package {} (GET /api/v1/distributions/{from}/packages lists what it has)",
                request.package
            )));
        }
        let versions: Vec<String> = rows
            .iter()
            .map(|r| r.version.clone())
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        let version = match &request.version {
            Some(v) if versions.contains(v) => v.clone(),
            Some(v) => {
                return Err(LifecycleError::NotFound(format!(
                    "{from} has no {} version {v} (it has {})",
                    request.package,
                    versions.join(", ")
                )));
            }
            None => self.newest(from, versions).await?,
        };
        let mut rows: Vec<PackageRecord> =
            rows.into_iter().filter(|r| r.version == version).collect();
        if let Some(arch) = &request.architecture {
            let has: Vec<String> = rows.iter().map(|r| r.architecture.clone()).collect();
            rows.retain(|r| &r.architecture == arch);
            if rows.is_empty() {
                return Err(LifecycleError::NotFound(format!(
                    "{from} has {} {version} for {}, not {arch}",
                    request.package,
                    has.join(", ")
                )));
            }
        }
        let (_, target) = registry.distribution(to).ok_or_else(|| unknown(to))?;
        let unsupported: Vec<&str> = rows
            .iter()
            .map(|r| r.architecture.as_str())
            .filter(|a| !target.architectures.iter().any(|t| t == a))
            .collect();
        if !unsupported.is_empty() {
            return Err(LifecycleError::Conflict(format!(
                "{to} does not support architecture {} of {} {version} (it supports {}); \
                 promote one architecture with \"architecture\"",
                unsupported.join(", "),
                request.package,
                target.architectures.join(", ")
            )));
        }
        drop(registry);

        let ids: Vec<&str> = rows.iter().map(|r| r.id.as_str()).collect();
        let sources = catalog::sources(&self.db, &ids).await?;
        let prepared = self.prepare_for(to, &sources, false).await?;
        let mut ready = Vec::with_capacity(sources.len());
        for (source, result) in sources.iter().zip(prepared) {
            let prepared = result.map_err(|m| {
                LifecycleError::Rejected(format!(
                    "{to} refuses {} {} {}: {m}",
                    source.record.name, source.record.version, source.record.architecture
                ))
            })?;
            ready.push((source, prepared));
        }
        for (source, _) in &ready {
            self.signed_well_enough(to, source)
                .map_err(LifecycleError::Rejected)?;
        }
        // The target's gate, on what is known (no re-scan).
        let gated: Vec<&Source> = ready.iter().map(|(s, _)| *s).collect();
        let verdicts = self.carried(to, &gated).await?;
        if let Some((source, scan)) = gated
            .iter()
            .zip(&verdicts)
            .find(|(_, v)| v.state == "blocked")
        {
            return Err(LifecycleError::Blocked {
                message: format!(
                    "{to}'s scanner policy {} blocks {} {} {}: {}; nothing changed. A \
                     maintainer's approval of it in {from} (POST /api/v1/packages/{}/decision) \
                     travels with it",
                    scan.policy,
                    source.record.name,
                    source.record.version,
                    source.record.architecture,
                    scan.reason,
                    source.record.id
                ),
                scan: Box::new(scan.clone()),
            });
        }
        let new: Vec<NewPackage> = ready
            .iter()
            .zip(&verdicts)
            .map(|((s, p), v)| NewPackage {
                hold: holds(v),
                ..new_package(s, p)
            })
            .collect();

        let reason = request.reason.clone().unwrap_or_default();
        let writes = self.writes.lock().await;
        let mut tx = crate::db::write(&self.db).await?;
        if catalog::still_there(&mut tx, &ids).await?.len() < ids.len() {
            return Err(LifecycleError::Conflict(format!(
                "{} {version} left {from} while it was being promoted (removed, and its rows \
                 collected by retention); nothing changed: promote what {from} has now",
                request.package
            )));
        }
        let mut change = Change::begin(&mut tx, to).await?;
        let outcomes = catalog::add_many(&mut tx, &mut change, &new).await?;
        let (mut promoted, mut present, mut held) = (Vec::new(), Vec::new(), Vec::new());
        let mut scans = Vec::new();
        for (added, verdict) in outcomes.into_iter().zip(verdicts) {
            if let Some(refused) = IngestError::from_added(to, &added) {
                return Err(refused.into());
            }
            match added {
                Added::Created(r) | Added::Restored(r) => {
                    // The decision travels with the package.
                    if let Some(origin) = &r.origin {
                        inherit_decision(&mut tx, origin, &r.id).await?;
                    }
                    let scan = crate::scan::Scan {
                        package_id: r.id.clone(),
                        ..verdict
                    };
                    scans.push((scan.clone(), None));
                    if holds(&scan) {
                        held.push(Held { package: r, scan });
                    } else {
                        promoted.push(r);
                    }
                }
                Added::Existing(r) => present.push(r),
                _ => unreachable!("refusals returned above"),
            }
        }
        crate::scan::store(&mut tx, &scans).await?;
        quarantine_audit(&mut tx, &caller.name, to, &held).await?;
        let version_record = if promoted.is_empty() && held.is_empty() {
            None
        } else {
            let archs = |rows: &mut dyn Iterator<Item = &PackageRecord>| {
                rows.map(|r| r.architecture.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            };
            let held_note = if held.is_empty() {
                String::new()
            } else {
                format!(
                    ", held by the gate: {}",
                    archs(&mut held.iter().map(|h| &h.package))
                )
            };
            let detail = format!(
                "{} {version} ({}{held_note}) {from} -> {to}{}",
                request.package,
                archs(&mut promoted.iter()),
                reason_suffix(&reason)
            );
            audit::record(&mut tx, &caller.name, "distribution.promote", to, &detail).await?;
            let v = change
                .finish(&mut tx, &caller.name, "promote", &reason)
                .await?;
            tx.commit().await?;
            v
        };
        drop(writes);
        let publish = self.publish_target(to, version_record.is_some()).await?;
        self.rescan_later(
            promoted
                .iter()
                .chain(held.iter().map(|h| &h.package))
                .map(|r| r.id.clone())
                .collect(),
        );
        Ok(Promoted {
            package: request.package.clone(),
            version,
            from_dist: from.to_owned(),
            to_dist: to.to_owned(),
            promoted,
            already_present: present,
            held,
            distribution_version: version_record,
            publish,
        })
    }

    /// Publishes `dist` and waits when it changed, or when its tree is
    /// behind its latest version (an earlier publish failed); `None` when
    /// the tree already shows the latest version.
    async fn publish_target(
        &self,
        dist: &str,
        changed: bool,
    ) -> Result<Option<Report>, LifecycleError> {
        if !changed && self.publisher.is_current(dist).await? {
            return Ok(None);
        }
        self.publisher
            .publish(dist)
            .await
            .map(Some)
            .map_err(|error| LifecycleError::Publish {
                dist: dist.to_owned(),
                error,
            })
    }

    /// Copies every package `from_dist` holds into `to_dist`; one version,
    /// one publish.
    pub async fn migrate(
        &self,
        request: &MigrateRequest,
        caller: &Caller,
    ) -> Result<Migrated, LifecycleError> {
        let (from, to) = (request.from_dist.as_str(), request.to_dist.as_str());
        let registry = self.plugins.registry();
        check_pair(&registry, from, to)?;
        let (_, target) = registry.distribution(to).ok_or_else(|| unknown(to))?;
        let supported: HashSet<String> = target.architectures.iter().cloned().collect();
        drop(registry);

        let (sources, unsupported): (Vec<Source>, Vec<Source>) =
            catalog::current_sources(&self.db, from)
                .await?
                .into_iter()
                .partition(|s| supported.contains(&s.record.architecture));
        let skip = |r: &PackageRecord, reason: String| Skipped {
            name: r.name.clone(),
            version: r.version.clone(),
            architecture: r.architecture.clone(),
            reason,
        };
        let mut skips: Vec<Skipped> = unsupported
            .iter()
            .map(|s| {
                skip(
                    &s.record,
                    format!(
                        "{to} does not support architecture {}",
                        s.record.architecture
                    ),
                )
            })
            .collect();
        let prepared = self.prepare_for(to, &sources, false).await?;
        let mut ready = Vec::with_capacity(sources.len());
        for (source, result) in sources.iter().zip(prepared) {
            match result {
                Ok(p) => ready.push((source, p)),
                Err(m) => skips.push(skip(&source.record, format!("{to} refuses it: {m}"))),
            }
        }
        // Signatures the target requires.
        ready.retain(|(source, _)| {
            let admitted = self.signed_well_enough(to, source);
            if let Err(why) = &admitted {
                skips.push(skip(&source.record, why.clone()));
            }
            admitted.is_ok()
        });
        // The target's gate, on what is known (no re-scan): blocked ones
        // are skipped, quarantined ones copied but held.
        let gated: Vec<&Source> = ready.iter().map(|(s, _)| *s).collect();
        let verdicts = self.carried(to, &gated).await?;
        let mut ready: Vec<(&Source, Prepared, crate::scan::Scan)> = ready
            .into_iter()
            .zip(verdicts)
            .filter_map(|((source, prepared), verdict)| {
                if verdict.state == "blocked" {
                    skips.push(skip(
                        &source.record,
                        format!(
                            "{to}'s scanner policy {} blocks it: {}",
                            verdict.policy, verdict.reason
                        ),
                    ));
                    None
                } else {
                    Some((source, prepared, verdict))
                }
            })
            .collect();
        let reason = request.reason.clone().unwrap_or_default();
        let writes = self.writes.lock().await;
        let mut tx = crate::db::write(&self.db).await?;
        let ids: Vec<&str> = ready.iter().map(|(s, _, _)| s.record.id.as_str()).collect();
        let there = catalog::still_there(&mut tx, &ids).await?;
        let gone: Vec<_>;
        (ready, gone) = ready
            .into_iter()
            .partition(|(s, _, _)| there.contains(&s.record.id));
        skips.extend(gone.iter().map(|(s, _, _)| {
            skip(
                &s.record,
                format!(
                    "it left {from} while the migration ran (removed, and collected by retention)"
                ),
            )
        }));
        let new: Vec<NewPackage> = ready
            .iter()
            .map(|(s, p, v)| NewPackage {
                hold: holds(v),
                ..new_package(s, p)
            })
            .collect();
        let mut change = Change::begin(&mut tx, to).await?;
        let outcomes = catalog::add_many(&mut tx, &mut change, &new).await?;
        let (mut copied, mut present) = (0, 0);
        let mut new_rows = Vec::new();
        let (mut held, mut scans) = (Vec::new(), Vec::new());
        for ((source, _, verdict), added) in ready.iter().zip(&outcomes) {
            match added {
                Added::Created(r) | Added::Restored(r) => {
                    inherit_decision(&mut tx, &source.record.id, &r.id).await?;
                    new_rows.push(r.id.clone());
                    let scan = crate::scan::Scan {
                        package_id: r.id.clone(),
                        ..verdict.clone()
                    };
                    scans.push((scan.clone(), None));
                    if holds(&scan) {
                        held.push(Held {
                            package: r.clone(),
                            scan,
                        });
                    } else {
                        copied += 1;
                    }
                }
                Added::Existing(_) => present += 1,
                refused => {
                    let why = IngestError::from_added(to, refused).expect("a refusal");
                    skips.push(skip(&source.record, why.to_string()));
                }
            }
        }
        crate::scan::store(&mut tx, &scans).await?;
        quarantine_audit(&mut tx, &caller.name, to, &held).await?;
        let version_record = if copied == 0 && held.is_empty() {
            None
        } else {
            let held_note = match held.len() {
                0 => String::new(),
                n => format!(", {n} held by the gate"),
            };
            let detail = format!(
                "{from} -> {to}: {copied} copied{held_note}, {present} already present, {} \
                 skipped{}",
                skips.len(),
                reason_suffix(&reason)
            );
            audit::record(&mut tx, &caller.name, "distribution.migrate", to, &detail).await?;
            change
                .finish(&mut tx, &caller.name, "migrate", &reason)
                .await?
        };
        // Committed (or ended) before the publish: the publisher writes too.
        tx.commit().await?;
        drop(writes);
        let publish = self.publish_target(to, version_record.is_some()).await?;
        self.rescan_later(new_rows);
        skips.sort_by(|a, b| {
            (&a.name, &a.version, &a.architecture).cmp(&(&b.name, &b.version, &b.architecture))
        });
        Ok(Migrated {
            from_dist: from.to_owned(),
            to_dist: to.to_owned(),
            copied,
            already_present: present,
            held,
            skipped: skips.len(),
            skips,
            distribution_version: version_record,
            publish,
        })
    }

    /// Makes a new version of `dist` whose content is exactly version
    /// `request.version`'s, and publishes it.
    pub async fn rollback(
        &self,
        dist: &str,
        request: &RollbackRequest,
        caller: &Caller,
    ) -> Result<RolledBack, LifecycleError> {
        if self.plugins.registry().distribution(dist).is_none() {
            return Err(unknown(dist));
        }
        let to = request.version;
        let reason = request.reason.clone().unwrap_or_default();
        let writes = self.writes.lock().await;
        if catalog::versions::get(&self.db, dist, to).await?.is_none() {
            return Err(LifecycleError::NotFound(
                catalog::versions::not_kept(&self.db, dist, to).await?,
            ));
        }
        let mut tx = crate::db::write(&self.db).await?;
        let mut change = Change::begin(&mut tx, dist).await?;
        let latest = change.number() - 1;
        let current: HashSet<String> = catalog::versions::content_ids(&self.db, dist, latest)
            .await?
            .into_iter()
            .collect();
        let wanted: HashSet<String> = catalog::versions::content_ids(&self.db, dist, to)
            .await?
            .into_iter()
            .collect();
        let remove: Vec<&str> = current.difference(&wanted).map(String::as_str).collect();
        // Rows the gate holds (rejected since) do not come back with a
        // rollback: only a decision releases them.
        let returning: Vec<&str> = wanted.difference(&current).map(String::as_str).collect();
        let held = catalog::held(&mut tx, &returning).await?;
        let add: Vec<&str> = returning
            .into_iter()
            .filter(|id| !held.contains(*id))
            .collect();
        change.remove_many(&mut tx, &remove).await?;
        change.add_many(&mut tx, &add).await?;
        let version_record = if change.is_empty() {
            None
        } else {
            let detail = format!(
                "{dist} to the content of version {to} (+{} -{}){}",
                add.len(),
                remove.len(),
                reason_suffix(&reason)
            );
            audit::record(
                &mut tx,
                &caller.name,
                "distribution.rollback",
                dist,
                &detail,
            )
            .await?;
            let v = change
                .finish(&mut tx, &caller.name, "rollback", &reason)
                .await?;
            tx.commit().await?;
            v
        };
        drop(writes);
        let publish = self.publish_target(dist, version_record.is_some()).await?;
        Ok(RolledBack {
            distribution: dist.to_owned(),
            to,
            distribution_version: version_record,
            added: add.len(),
            removed: remove.len(),
            held_back: held.len(),
            publish,
        })
    }

    /// Brings the database's view of distributions in line with the loaded
    /// plugins: a distribution whose plugin or config changed has its
    /// packages prepared again (so their entries follow the new settings);
    /// one no plugin declares any more is retired from the served tree, and
    /// one that is back is served again. Runs at start and after every
    /// plugin change. A distribution that cannot be re-prepared or retired
    /// does not stop the others: its failure is logged and returned, and
    /// it keeps its fingerprint, so the next start or plugin change tries
    /// again.
    pub async fn sync_distributions(&self) -> Result<Vec<String>, LifecycleError> {
        let mut failures = Vec::new();
        let registry = self.plugins.registry();
        let known: Vec<(String, String, Option<i64>)> =
            sqlx::query_as("SELECT id, rendered_with, retired_at FROM distributions")
                .fetch_all(&self.db)
                .await?;
        let known: HashMap<String, (String, Option<i64>)> = known
            .into_iter()
            .map(|(id, with, retired)| (id, (with, retired)))
            .collect();
        for (_, dist) in registry.distributions() {
            let fingerprint = registry
                .fingerprint(&dist.id)
                .expect("a loaded distribution");
            match known.get(&dist.id) {
                None => {
                    sqlx::query(
                        "INSERT INTO distributions (id, latest, rendered_with) VALUES ($1, 0, $2) \
                         ON CONFLICT (id) DO NOTHING",
                    )
                    .bind(&dist.id)
                    .bind(&fingerprint)
                    .execute(&self.db)
                    .await?;
                }
                Some((with, retired)) => {
                    if retired.is_some() {
                        tracing::info!(
                            distribution = dist.id,
                            "a loaded plugin declares this retired distribution again; serving it"
                        );
                        sqlx::query("UPDATE distributions SET retired_at = NULL WHERE id = $1")
                            .bind(&dist.id)
                            .execute(&self.db)
                            .await?;
                        self.publisher.changed(&dist.id);
                    }
                    if with.is_empty() {
                        // Rows from before fingerprints: taken as current.
                        self.set_fingerprint(&dist.id, &fingerprint).await?;
                    } else if *with != fingerprint
                        && let Err(e) = self.reprepare(&dist.id, &fingerprint).await
                    {
                        tracing::error!(
                            distribution = dist.id,
                            "cannot prepare its packages again after its plugin or config changed: {e}"
                        );
                        failures.push(format!("{}: {e}", dist.id));
                    }
                }
            }
        }
        for (id, (_, retired)) in &known {
            if registry.distribution(id).is_none() && retired.is_none() {
                tracing::warn!(
                    distribution = id,
                    "no loaded plugin declares this distribution any more; retiring its tree from /repos/ (its packages and versions stay in the database)"
                );
                // The tree first: if that fails, the next sync tries again.
                if let Err(e) = self.publisher.retire(id).await {
                    tracing::error!(distribution = id, "cannot retire its tree: {e}");
                    failures.push(format!("{id}: {e}"));
                    continue;
                }
                sqlx::query("UPDATE distributions SET retired_at = $1 WHERE id = $2")
                    .bind(crate::db::now())
                    .bind(id)
                    .execute(&self.db)
                    .await?;
            }
        }
        Ok(failures)
    }

    async fn set_fingerprint(&self, dist: &str, fingerprint: &str) -> Result<(), sqlx::Error> {
        sqlx::query("UPDATE distributions SET rendered_with = $1 WHERE id = $2")
            .bind(fingerprint)
            .bind(dist)
            .execute(&self.db)
            .await?;
        Ok(())
    }

    /// Prepares every row of `dist` (current and kept) again with its
    /// plugin as loaded now, and republishes. A package the plugin now
    /// refuses, or whose new pool path holds another file, keeps its
    /// previous rendering (logged), so nothing vanishes from a tree without
    /// a person deciding it. Pool files the old renderings named wait in
    /// the trash until `dist`'s next publish no longer lists them.
    async fn reprepare(&self, dist: &str, fingerprint: &str) -> Result<(), LifecycleError> {
        let started = std::time::Instant::now();
        let mut tally = Tally::default();
        let result = self.reprepare_rows(dist, &mut tally).await;
        if tally.committed {
            // Even after a failure part-way: the rows re-rendered so far
            // are what the next publish must show, and pinned trees
            // rendered the old way must go.
            self.publisher.changed_rendering(dist);
        }
        result?;
        // Only now: a failure above leaves the old fingerprint, so the next
        // start prepares the rest (preparing a row again is idempotent).
        self.set_fingerprint(dist, fingerprint).await?;
        tracing::info!(
            distribution = dist,
            updated = tally.updated,
            kept = tally.kept,
            gone = tally.gone,
            ms = started.elapsed().as_millis() as u64,
            "re-prepared packages after a plugin or config change"
        );
        Ok(())
    }

    async fn reprepare_rows(&self, dist: &str, tally: &mut Tally) -> Result<(), LifecycleError> {
        let ids: Vec<(String,)> = sqlx::query_as("SELECT id FROM packages WHERE distribution = $1")
            .bind(dist)
            .fetch_all(&self.db)
            .await?;
        let ids: Vec<&str> = ids.iter().map(|(id,)| id.as_str()).collect();
        for batch in ids.chunks(PREPARE_BATCH) {
            let sources = catalog::sources(&self.db, batch).await?;
            let prepared = self.prepare_for(dist, &sources, true).await?;
            let _writes = self.writes.lock().await;
            let mut tx = crate::db::write(&self.db).await?;
            let mut orphaned = Vec::new();
            for (source, result) in sources.iter().zip(prepared) {
                let r = &source.record;
                let p = match result {
                    Ok(p)
                        if p.identity.name == r.name
                            && p.identity.version == r.version
                            && p.identity.architecture == r.architecture =>
                    {
                        p
                    }
                    Ok(p) => {
                        tally.kept += 1;
                        tracing::warn!(
                            distribution = dist,
                            package = r.id,
                            "re-prepared as {} {} {}, not {} {} {}: keeping the previous rendering",
                            p.identity.name,
                            p.identity.version,
                            p.identity.architecture,
                            r.name,
                            r.version,
                            r.architecture
                        );
                        continue;
                    }
                    Err(m) => {
                        tally.kept += 1;
                        tracing::warn!(
                            distribution = dist,
                            package = r.id,
                            "{} {} {} is refused under the new settings ({m}); keeping the previous rendering: remove it if it no longer belongs",
                            r.name,
                            r.version,
                            r.architecture
                        );
                        continue;
                    }
                };
                match catalog::rerender(&mut tx, r, &p.pool_paths, &entries(&p)).await? {
                    Rerendered::Done { orphaned: paths } => {
                        orphaned.extend(paths);
                        tally.updated += 1;
                    }
                    Rerendered::Gone => tally.gone += 1,
                    Rerendered::PathTaken { path, by } => {
                        tally.kept += 1;
                        tracing::warn!(
                            distribution = dist,
                            package = r.id,
                            "{} {} {} would move to {path}, which holds another file (package {by}); keeping the previous rendering",
                            r.name,
                            r.version,
                            r.architecture
                        );
                    }
                }
            }
            catalog::versions::trash_after_publish(&mut tx, dist, &orphaned).await?;
            tx.commit().await?;
            tally.committed = true;
        }
        Ok(())
    }
}

/// What re-preparing a distribution did.
#[derive(Default)]
struct Tally {
    updated: usize,
    kept: usize,
    /// Rows retention collected meanwhile.
    gone: usize,
    /// Some batch was committed.
    committed: bool,
}

/// Copies the latest decision about row `from` to row `to` (promotion,
/// migration): a person's decision follows the package from tier to tier.
async fn inherit_decision(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    from: &str,
    to: &str,
) -> Result<(), sqlx::Error> {
    let latest: Option<(String,)> = sqlx::query_as(
        "SELECT id FROM decisions WHERE package_id = $1 ORDER BY at_ms DESC, id DESC LIMIT 1",
    )
    .bind(from)
    .fetch_optional(&mut **tx)
    .await?;
    let Some((decision,)) = latest else {
        return Ok(());
    };
    sqlx::query(
        "INSERT INTO decisions (id, package_id, decision, justification, actor, at_ms, \
         expires_ms, covers, inherited_from) SELECT $1, $2, decision, justification, actor, \
         at_ms, expires_ms, covers, id FROM decisions WHERE id = $3",
    )
    .bind(crate::db::new_id())
    .bind(to)
    .bind(&decision)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// `POST /packages/{id}/decision`.
#[derive(Debug, Clone, serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DecisionRequest {
    /// `approve` or `reject`.
    pub decision: String,
    /// Why: required, and kept with the decision.
    pub justification: String,
    /// When review re-opens: a date (`2027-03-31`, midnight UTC) or an RFC
    /// 3339 time; must be in the future.
    pub expires: Option<String>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Decided {
    pub decision: crate::scan::Decision,
    /// The package's scan with the decision applied.
    pub scan: Option<crate::scan::Scan>,
    /// The version an approval (of a held package) or a rejection (of a
    /// published one) made.
    pub distribution_version: Option<VersionRecord>,
    pub publish: Option<Report>,
}

/// Unix milliseconds of `expires`, which must be in the future.
fn expiry(expires: &str) -> Result<i64, LifecycleError> {
    let text = if expires.len() == 10 {
        format!("{expires}T00:00:00Z")
    } else {
        expires.to_owned()
    };
    let at = crate::advisories::unix_ms(&text).ok_or_else(|| {
        LifecycleError::BadRequest(format!(
            "expires {expires:?} is not a date (2027-03-31) or an RFC 3339 time"
        ))
    })?;
    if at <= crate::scan::now_ms() {
        return Err(LifecycleError::BadRequest(format!(
            "expires {expires} is not in the future: a decision that has expired decides nothing"
        )));
    }
    Ok(at)
}

impl Packages {
    /// A person's decision about a package's findings: recorded with who,
    /// when and the findings it covers. Approving a held (quarantined)
    /// package publishes it; rejecting a published one removes it; each of
    /// those is a new version of its distribution.
    pub async fn decide(
        &self,
        id: &str,
        request: &DecisionRequest,
        caller: &Caller,
    ) -> Result<Decided, LifecycleError> {
        if !matches!(request.decision.as_str(), "approve" | "reject") {
            return Err(LifecycleError::BadRequest(format!(
                "decision {:?}: say \"approve\" or \"reject\"",
                request.decision
            )));
        }
        let justification = request.justification.trim();
        if justification.is_empty() {
            return Err(LifecycleError::BadRequest(
                "the justification is empty: say why, for the people who read the audit log".into(),
            ));
        }
        let expires_ms = request.expires.as_deref().map(expiry).transpose()?;
        let row = catalog::get(&self.db, id)
            .await?
            .ok_or_else(|| LifecycleError::NotFound(format!("no package with id {id}")))?;
        let dist = row.distribution.clone();
        if self.plugins.registry().distribution(&dist).is_none() {
            return Err(unknown(&dist));
        }
        // The findings the decision covers: those of its latest scan.
        let scan = crate::scan::current(&self.db, &self.plugins, &self.policies, id)
            .await
            .map_err(|e| LifecycleError::Io(std::io::Error::other(e.to_string())))?;
        let covers: Vec<String> = scan
            .iter()
            .flat_map(|s| s.findings.iter().map(|f| f.advisory_id.clone()))
            .collect();
        let decision = crate::scan::Decision {
            id: crate::db::new_id(),
            package_id: id.to_owned(),
            decision: request.decision.clone(),
            justification: justification.to_owned(),
            actor: caller.name.clone(),
            at_ms: crate::scan::now_ms(),
            expires_ms,
            covers,
            inherited_from: None,
        };

        let writes = self.writes.lock().await;
        let mut tx = crate::db::write(&self.db).await?;
        sqlx::query(
            "INSERT INTO decisions (id, package_id, decision, justification, actor, at_ms, \
             expires_ms, covers) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(&decision.id)
        .bind(id)
        .bind(&decision.decision)
        .bind(&decision.justification)
        .bind(&decision.actor)
        .bind(decision.at_ms)
        .bind(decision.expires_ms)
        .bind(serde_json::to_string(&decision.covers).map_err(std::io::Error::other)?)
        .execute(&mut *tx)
        .await?;
        let (crate::db::Flag(held), crate::db::Flag(current)): (crate::db::Flag, crate::db::Flag) =
            sqlx::query_as(
                "SELECT held = TRUE, EXISTS (SELECT 1 FROM memberships WHERE package_id = $1 \
             AND removed_in IS NULL) FROM packages WHERE id = $1",
            )
            .bind(id)
            .fetch_one(&mut *tx)
            .await?;
        let mut change = Change::begin(&mut tx, &dist).await?;
        // Approval releases a held row into the next version; rejection
        // takes a current one out and holds it (retention keeps it, DELETE
        // discards it).
        let held_now = match (decision.decision.as_str(), held, current) {
            ("approve", true, false) => {
                change.add_many(&mut tx, &[id]).await?;
                false
            }
            ("approve", _, _) => false,
            ("reject", _, true) => {
                change.remove_many(&mut tx, &[id]).await?;
                true
            }
            _ => held,
        };
        sqlx::query("UPDATE packages SET held = $1 WHERE id = $2")
            .bind(held_now)
            .bind(id)
            .execute(&mut *tx)
            .await?;
        let detail = format!(
            "{} {} {} {} in {dist} (covers {}): {justification}",
            decision.decision,
            row.name,
            row.version,
            row.architecture,
            if decision.covers.is_empty() {
                "no findings".to_owned()
            } else {
                decision.covers.join(", ")
            }
        );
        audit::record(&mut tx, &caller.name, "package.decision", id, &detail).await?;
        let action = decision.decision.clone();
        let version_record = change
            .finish(&mut tx, &caller.name, &action, justification)
            .await?;
        tx.commit().await?;
        drop(writes);
        let scan = crate::scan::scan(&self.db, &self.plugins, &self.policies, &[id])
            .await
            .map_err(|e| LifecycleError::Io(std::io::Error::other(e.to_string())))?
            .pop();
        let publish = self.publish_target(&dist, version_record.is_some()).await?;
        Ok(Decided {
            decision,
            scan,
            distribution_version: version_record,
            publish,
        })
    }

    /// Whether `source`'s signature lets it into `to` (`signatures::admit`).
    fn signed_well_enough(&self, to: &str, source: &Source) -> Result<(), String> {
        crate::signatures::admit(
            &self.plugins.registry(),
            to,
            &source.format,
            &label(&source.record),
            source.record.signature_key_id.as_deref(),
            &self.key.key_id(),
        )
    }

    /// The target's gate on packages carried into `to` (promotion,
    /// migration), one scan per source and without re-scanning: each
    /// source row's stored findings (a row never scanned is scanned now)
    /// judged by `to`'s scanner policy, with the decision that travels with
    /// it. The background scan that follows adds what only `to`'s ecosystem
    /// has, and flags (never removes).
    async fn carried(
        &self,
        to: &str,
        sources: &[&Source],
    ) -> Result<Vec<crate::scan::Scan>, LifecycleError> {
        use crate::scan;
        let ids: Vec<&str> = sources.iter().map(|s| s.record.id.as_str()).collect();
        let mut stored = scan::stored(&self.db, &ids).await?;
        let never: Vec<&str> = ids
            .iter()
            .copied()
            .filter(|id| !stored.contains_key(*id))
            .collect();
        if !never.is_empty() {
            scan::scan(&self.db, &self.plugins, &self.policies, &never).await?;
            stored.extend(scan::stored(&self.db, &never).await?);
        }
        let mut decisions = scan::latest_decisions(&self.db, &ids).await?;
        let subjects: Vec<scan::Subject> = sources
            .iter()
            .map(|s| scan::Subject {
                distribution: to.to_owned(),
                name: s.record.name.clone(),
                version: s.record.version.clone(),
                architecture: s.record.architecture.clone(),
                names: BTreeSet::new(),
            })
            .collect();
        let found: Vec<(String, Vec<scan::Finding>)> = ids
            .iter()
            .map(|id| stored.remove(*id).unwrap_or_default())
            .collect();
        let judgements = scan::judge(&self.plugins, &self.policies, &subjects, &found).await?;
        Ok(found
            .into_iter()
            .zip(judgements)
            .zip(&ids)
            .map(|(((ecosystem, findings), judgement), id)| {
                scan::result("", ecosystem, findings, judgement, decisions.remove(*id))
            })
            .collect())
    }

    /// Scans `ids` in the background (after a promotion or migration, which
    /// do not re-scan synchronously: the decision travelled with them).
    fn rescan_later(&self, ids: Vec<String>) {
        if ids.is_empty() {
            return;
        }
        let (db, plugins, policies) =
            (self.db.clone(), self.plugins.clone(), self.policies.clone());
        tokio::spawn(async move {
            let ids: Vec<&str> = ids.iter().map(String::as_str).collect();
            if let Err(e) = crate::scan::scan(&db, &plugins, &policies, &ids).await {
                tracing::error!("scanning promoted packages failed: {e}");
            }
        });
    }
}

/// Whether the gate keeps a package out of its distribution's versions.
fn holds(scan: &crate::scan::Scan) -> bool {
    matches!(scan.state.as_str(), "quarantined" | "rejected")
}

/// One `package.quarantine` audit entry per held row.
async fn quarantine_audit(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    actor: &str,
    dist: &str,
    held: &[Held],
) -> Result<(), sqlx::Error> {
    for h in held {
        let r = &h.package;
        let detail = format!(
            "{} {} {} sha256 {} held out of {dist}: {}",
            r.name, r.version, r.architecture, r.sha256, h.scan.reason
        );
        audit::record(tx, actor, "package.quarantine", &r.id, &detail).await?;
    }
    Ok(())
}

/// `name version architecture` of a row, for messages.
fn label(r: &PackageRecord) -> String {
    format!("{} {} {}", r.name, r.version, r.architecture)
}

fn reason_suffix(reason: &str) -> String {
    if reason.is_empty() {
        String::new()
    } else {
        format!(": {reason}")
    }
}

/// A source row prepared for another distribution, as `catalog` takes it.
fn new_package<'a>(source: &'a Source, prepared: &'a Prepared) -> NewPackage<'a> {
    NewPackage {
        name: &prepared.identity.name,
        version: &prepared.identity.version,
        architecture: &prepared.identity.architecture,
        sha256: &source.record.sha256,
        size: source.record.size as u64,
        format: &source.format,
        filename: &source.record.filename,
        uploaded_by: &source.record.uploaded_by,
        origin: Some(&source.record.id),
        parsed: None,
        pool_paths: &prepared.pool_paths,
        entries: entries(prepared),
        hold: false,
        signature: source.record.signature.as_deref(),
        signature_key_id: source.record.signature_key_id.as_deref(),
    }
}
