//! Scanning: package rows matched against the stored advisories of their
//! distribution's OSV ecosystem (the family plugin's `vulnerability.osv`),
//! with the family plugin's own version order, never a generic one.
//!
//! A row is matched under the names its family says advisories list it
//! under (the `repod.advisory-names` extension of its distribution, see
//! [`matched_names`]): the source package's for families whose records
//! name source packages, the binary's for those naming binary RPMs (each
//! family plugin says which), either when a family does not
//! say. Both names are stored (`package_names`), so a family that changes
//! its rule needs no re-read of the packages. Candidates come from the
//! `advisory_packages` index; every version comparison a distribution's
//! rows need goes to its plugin in one `compare-versions` call
//! (`repod_osv::comparisons`), then `repod_osv::is_affected` decides.
//! The latest scan of a row replaces its findings.
//!
//! The gate: the distribution's scanner policy (a plugin, `[scan]` in the
//! config) judges a row's findings (allow, quarantine, block), and a
//! person's decision (approve or reject, with the findings it covers)
//! overrides that while it covers every finding and has not expired. The
//! row's state follows: clean, findings (allowed), quarantined, blocked,
//! approved or rejected. At upload a blocked package is refused and a
//! quarantined one held out of the distribution's versions; later scans
//! only flag (a published package is never silently removed).

use std::cmp::Ordering;
use std::collections::{BTreeSet, HashMap};

use crate::db::Sql;
use serde::Serialize;

use crate::config::PolicyConfig;
use crate::db::Db;
use crate::plugins::PluginHost;
use crate::plugins::contract::Ordering as PluginOrdering;
use crate::plugins::policy_contract as policy;

/// Rows per statement.
const BATCH: usize = 500;

/// Advisories parsed from their stored records, by id, with the import
/// that stored the revision: a re-scan parses only records imported since.
#[allow(clippy::type_complexity)]
static PARSED: std::sync::LazyLock<
    std::sync::Mutex<HashMap<String, (String, std::sync::Arc<repod_osv::Advisory>)>>,
> = std::sync::LazyLock::new(Default::default);

/// Parsed advisories kept at most (then the cache starts over).
const PARSED_MAX: usize = 500_000;

/// Version pairs per `compare-versions` call: bounds what one plugin
/// instance holds (its memory limit applies per call).
const COMPARE_BATCH: usize = 50_000;

/// Above this many (ecosystem, name) pairs a scan reads the ecosystems'
/// whole advisory index instead of looking each pair up.
const WHOLE_INDEX_ABOVE: usize = 2000;

#[derive(Debug, thiserror::Error)]
pub enum ScanError {
    #[error(transparent)]
    Plugin(#[from] crate::plugins::PluginError),
    #[error("database error: {0}")]
    Db(#[from] sqlx::Error),
}

/// One advisory a package is affected by.
#[derive(Debug, Clone, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct Finding {
    pub advisory_id: String,
    /// The advisory's other ids (the CVE ids a distribution notice fixes).
    #[sqlx(skip)]
    pub aliases: Vec<String>,
    /// critical, high, medium, low, negligible or unknown.
    pub severity: String,
    pub cvss_score: Option<f64>,
    pub cvss_vector: Option<String>,
    /// The version that fixes it; none: no fix yet.
    pub fixed: Option<String>,
    pub summary: String,
}

/// A row's latest scan.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Scan {
    pub package_id: String,
    /// Unix milliseconds.
    pub scanned_ms: i64,
    pub ecosystem: String,
    /// clean, findings (allowed by the policy), quarantined, blocked,
    /// approved or rejected.
    pub state: String,
    /// The policy that judged the findings ('' when there were none).
    pub policy: String,
    /// Why the policy judged so.
    pub reason: String,
    /// The worst finding's severity, `none` when clean.
    pub worst: String,
    pub findings: Vec<Finding>,
    /// The latest decision about the package, if any.
    pub decision: Option<Decision>,
}

/// A person's approval or rejection of a package.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Decision {
    pub id: String,
    pub package_id: String,
    /// approve or reject
    pub decision: String,
    pub justification: String,
    pub actor: String,
    pub at_ms: i64,
    /// After this (Unix milliseconds) review re-opens.
    pub expires_ms: Option<i64>,
    /// The advisory ids it covers: findings it did not see re-open review.
    pub covers: Vec<String>,
    /// The decision it was copied from when the package was promoted.
    pub inherited_from: Option<String>,
}

/// By hand for `covers`, a JSON list in a TEXT column: sqlx's `json`
/// attribute decodes TEXT only on SQLite (PostgreSQL's driver wants a
/// JSON column).
impl<'r, R: sqlx::Row> sqlx::FromRow<'r, R> for Decision
where
    &'r str: sqlx::ColumnIndex<R>,
    String: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    i64: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
{
    fn from_row(row: &'r R) -> Result<Self, sqlx::Error> {
        let covers: String = row.try_get("covers")?;
        Ok(Decision {
            id: row.try_get("id")?,
            package_id: row.try_get("package_id")?,
            decision: row.try_get("decision")?,
            justification: row.try_get("justification")?,
            actor: row.try_get("actor")?,
            at_ms: row.try_get("at_ms")?,
            expires_ms: row.try_get("expires_ms")?,
            covers: serde_json::from_str(&covers).map_err(|e| sqlx::Error::ColumnDecode {
                index: "covers".into(),
                source: Box::new(e),
            })?,
            inherited_from: row.try_get("inherited_from")?,
        })
    }
}

/// What to scan: one package as a distribution would hold it.
#[derive(Debug, Clone)]
pub struct Subject {
    pub distribution: String,
    pub name: String,
    pub version: String,
    pub architecture: String,
    /// The names advisories may list it under ([`names_of`]).
    pub names: BTreeSet<String>,
}

/// A policy's verdict on one subject's findings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Judgement {
    pub verdict: Verdict,
    pub policy: String,
    pub reason: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Allow,
    Quarantine,
    Block,
}

#[derive(sqlx::FromRow)]
struct Row {
    id: String,
    distribution: String,
    name: String,
    version: String,
    architecture: String,
}

/// The source package a package was built from, as advisories may name
/// it: `Source:` of a deb, the name part of an RPM's source RPM.
pub fn source_name(package: &repod_reader::Package) -> Option<String> {
    match package {
        repod_reader::Package::Deb(deb) => deb
            .control
            .iter()
            .find(|(k, _)| k == "Source")
            // `Source: name (version)` when the versions differ.
            .and_then(|(_, source)| source.split_whitespace().next())
            .map(str::to_owned),
        repod_reader::Package::Rpm(rpm) => {
            // name-version-release.src.rpm
            let mut parts = rpm.sourcerpm.rsplitn(3, '-');
            match (parts.next(), parts.next(), parts.next()) {
                (Some(_), Some(_), Some(name)) if !name.is_empty() => Some(name.to_owned()),
                _ => None,
            }
        }
    }
}

/// The names advisories may list a package under: its own and its source's
/// ([`matched_names`] picks what its family's advisories use).
pub fn names_of(name: &str, source: Option<String>) -> BTreeSet<String> {
    let mut out = BTreeSet::from([name.to_owned()]);
    out.extend(source);
    out
}

/// The `distribution.extensions` key a family plugin declares the names
/// its advisories use under: `source`, `binary` or `both` (the default,
/// also for an unknown value: matching under more names misses nothing).
pub const ADVISORY_NAMES: &str = "repod.advisory-names";

/// Of `names` (a package's own `name` and its source's, [`names_of`]), the
/// ones advisories of a family with `rule` ([`ADVISORY_NAMES`]) list it
/// under. `source` falls back to the package's own name when the package
/// names no other source.
pub fn matched_names<'a>(
    rule: Option<&str>,
    name: &'a str,
    names: &'a BTreeSet<String>,
) -> Vec<&'a str> {
    match rule {
        Some("binary") => vec![name],
        Some("source") => {
            let sources: Vec<&str> = names
                .iter()
                .map(String::as_str)
                .filter(|n| *n != name)
                .collect();
            if sources.is_empty() {
                vec![name]
            } else {
                sources
            }
        }
        _ => names.iter().map(String::as_str).collect(),
    }
}

pub(crate) fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// A stored advisory as the matcher needs it.
struct Stored {
    /// `None` until parsed (then always `Some`).
    advisory: Option<std::sync::Arc<repod_osv::Advisory>>,
    severity: String,
    cvss_score: Option<f64>,
    cvss_vector: Option<String>,
    summary: String,
}

/// Matches `subjects` against the stored advisories: for each, its
/// distribution's ecosystem ('' for a distribution no loaded plugin
/// declares: nothing matched) and its findings, worst first.
pub async fn find(
    db: &Db,
    plugins: &PluginHost,
    subjects: &[Subject],
) -> Result<Vec<(String, Vec<Finding>)>, ScanError> {
    let registry = plugins.registry();
    // Each distribution's ecosystem and the names its advisories use.
    let mut ecosystem_of: HashMap<String, String> = HashMap::new();
    let mut rule_of: HashMap<String, String> = HashMap::new();
    for s in subjects {
        if let Some((_, d)) = registry.distribution(&s.distribution) {
            ecosystem_of.insert(s.distribution.clone(), d.vulnerability.osv.clone());
            if let Some(rule) = crate::plugins::contract::extension(&d.extensions, ADVISORY_NAMES) {
                rule_of.insert(s.distribution.clone(), rule.to_owned());
            }
        }
    }
    drop(registry);
    let names_of: Vec<Vec<&str>> = subjects
        .iter()
        .map(|s| {
            matched_names(
                rule_of.get(&s.distribution).map(String::as_str),
                &s.name,
                &s.names,
            )
        })
        .collect();
    // Candidate advisories per (ecosystem, name).
    let wanted: BTreeSet<(&str, &str)> = subjects
        .iter()
        .zip(&names_of)
        .filter_map(|(s, names)| Some((ecosystem_of.get(&s.distribution)?.as_str(), names)))
        .flat_map(|(eco, names)| names.iter().map(move |n| (eco, *n)))
        .collect();
    let wanted: Vec<(&str, &str)> = wanted.into_iter().collect();
    let mut candidates: HashMap<(String, String), Vec<String>> = HashMap::new();
    // Many names (a full re-scan): one read of the ecosystems' whole index
    // beats thousands of lookups; few (an upload): look them up.
    let ecosystems: BTreeSet<&str> = wanted.iter().map(|(e, _)| *e).collect();
    if wanted.len() > WHOLE_INDEX_ABOVE {
        let wanted: std::collections::HashSet<(&str, &str)> = wanted.iter().copied().collect();
        for ecosystem in ecosystems {
            let rows: Vec<(String, String, String)> = sqlx::query_as(
                "SELECT ecosystem, name, advisory_id FROM advisory_packages WHERE ecosystem = $1",
            )
            .bind(ecosystem)
            .fetch_all(db)
            .await?;
            for (e, n, id) in rows {
                if wanted.contains(&(e.as_str(), n.as_str())) {
                    candidates.entry((e, n)).or_default().push(id);
                }
            }
        }
    }
    let lookups: &[(&str, &str)] = if wanted.len() > WHOLE_INDEX_ABOVE {
        &[]
    } else {
        &wanted
    };
    for batch in lookups.chunks(BATCH) {
        let mut q = Sql::new("WITH wanted (ecosystem, name) AS (");
        q.push_values(batch, |mut b, (e, n)| {
            b.push_bind(*e).push_bind(*n);
        });
        q.push(
            ") SELECT ap.ecosystem, ap.name, ap.advisory_id FROM wanted w CROSS JOIN \
             advisory_packages ap WHERE ap.ecosystem = w.ecosystem AND ap.name = w.name",
        );
        let found: Vec<(String, String, String)> = q.build_query_as().fetch_all(db).await?;
        for (e, n, id) in found {
            candidates.entry((e, n)).or_default().push(id);
        }
    }
    let advisory_ids: BTreeSet<&str> = candidates.values().flatten().map(String::as_str).collect();
    let advisory_ids: Vec<&str> = advisory_ids.into_iter().collect();
    let mut stored: HashMap<String, Stored> = HashMap::new();
    let mut misses: Vec<String> = Vec::new();
    for batch in advisory_ids.chunks(BATCH) {
        let mut q = Sql::new(
            "SELECT id, import_id, severity, cvss_score, cvss_vector, summary FROM advisories \
             WHERE withdrawn IS NULL AND id IN (",
        );
        let mut list = q.separated(", ");
        for id in batch {
            list.push_bind(*id);
        }
        q.push(")");
        type Found = (String, String, String, Option<f64>, Option<String>, String);
        let found: Vec<Found> = q.build_query_as().fetch_all(db).await?;
        let cache = PARSED.lock().expect("advisory cache");
        for (id, import_id, severity, cvss_score, cvss_vector, summary) in found {
            let advisory = cache
                .get(&id)
                .filter(|(from, _)| *from == import_id)
                .map(|(_, a)| a.clone());
            if advisory.is_none() {
                misses.push(id.clone());
            }
            stored.insert(
                id,
                Stored {
                    advisory,
                    severity,
                    cvss_score,
                    cvss_vector,
                    summary,
                },
            );
        }
    }
    // Records not parsed since they were stored: parse them once.
    for batch in misses.chunks(BATCH) {
        let mut q = Sql::new("SELECT id, import_id, record FROM advisories WHERE id IN (");
        let mut list = q.separated(", ");
        for id in batch {
            list.push_bind(id);
        }
        q.push(")");
        let records: Vec<(String, String, String)> = q.build_query_as().fetch_all(db).await?;
        let mut cache = PARSED.lock().expect("advisory cache");
        if cache.len() > PARSED_MAX {
            cache.clear();
        }
        for (id, import_id, record) in records {
            match repod_osv::parse(record.as_bytes(), &repod_osv::Limits::default()) {
                Ok(import) if import.advisories.len() == 1 => {
                    let advisory =
                        std::sync::Arc::new(import.advisories.into_iter().next().expect("one"));
                    cache.insert(id.clone(), (import_id, advisory.clone()));
                    if let Some(s) = stored.get_mut(&id) {
                        s.advisory = Some(advisory);
                    }
                }
                _ => tracing::error!(advisory = id, "a stored advisory no longer parses; skipped"),
            }
        }
    }
    stored.retain(|_, s| s.advisory.is_some());

    // Every (row, advisory, affected entry) to evaluate, and the pairs its
    // distribution's plugin must order.
    let mut work: Vec<(usize, &str, &repod_osv::Affected)> = Vec::new();
    let mut pairs: HashMap<&str, BTreeSet<(String, String)>> = HashMap::new();
    for (i, row) in subjects.iter().enumerate() {
        let Some(eco) = ecosystem_of.get(&row.distribution) else {
            continue;
        };
        let name_refs = &names_of[i];
        let mut seen = BTreeSet::new();
        for name in name_refs {
            for id in candidates
                .get(&(eco.clone(), (*name).to_owned()))
                .into_iter()
                .flatten()
            {
                let Some(advisory) = stored.get(id).and_then(|s| s.advisory.as_deref()) else {
                    continue;
                };
                if !seen.insert(id.as_str()) {
                    continue;
                }
                for affected in repod_osv::matches(advisory, eco, name_refs) {
                    pairs
                        .entry(row.distribution.as_str())
                        .or_default()
                        .extend(repod_osv::comparisons(affected, &row.version));
                    work.push((i, id.as_str(), affected));
                }
            }
        }
    }
    let mut order: HashMap<(String, String), Ordering> = HashMap::new();
    let pairs: Vec<(&str, Vec<(String, String)>)> = pairs
        .into_iter()
        .flat_map(|(dist, set)| {
            let list: Vec<(String, String)> = set.into_iter().collect();
            list.chunks(COMPARE_BATCH)
                .map(|c| (dist, c.to_vec()))
                .collect::<Vec<_>>()
        })
        .collect();
    for (dist, list) in pairs {
        let dist_owned = dist.to_owned();
        let asked = list.clone();
        let answers = plugins
            .blocking(move |registry| match registry.distribution(&dist_owned) {
                Some((family, _)) => family.compare_versions(&asked),
                None => Ok(vec![]),
            })
            .await?;
        for (pair, o) in list.into_iter().zip(answers) {
            let o = match o {
                PluginOrdering::Less => Ordering::Less,
                PluginOrdering::Equal => Ordering::Equal,
                PluginOrdering::Greater => Ordering::Greater,
            };
            order.insert(pair, o);
        }
    }
    let cmp = |a: &str, b: &str| {
        order
            .get(&(a.to_owned(), b.to_owned()))
            .copied()
            .unwrap_or(Ordering::Equal)
    };
    let mut found: Vec<Vec<Finding>> = vec![Vec::new(); subjects.len()];
    for (i, id, affected) in work {
        if found[i].iter().any(|f| f.advisory_id == id) {
            continue;
        }
        if let Some(hit) = repod_osv::is_affected(affected, &subjects[i].version, &cmp) {
            let s = &stored[id];
            found[i].push(Finding {
                advisory_id: id.to_owned(),
                aliases: s
                    .advisory
                    .as_deref()
                    .map(|a| crate::advisories::aliases_of(a).into_iter().collect())
                    .unwrap_or_default(),
                severity: s.severity.clone(),
                cvss_score: s.cvss_score,
                cvss_vector: s.cvss_vector.clone(),
                fixed: hit.fixed,
                summary: s.summary.clone(),
            });
        }
    }

    Ok(subjects
        .iter()
        .zip(found)
        .map(|(s, mut findings)| {
            worst_first(&mut findings);
            let eco = ecosystem_of
                .get(&s.distribution)
                .cloned()
                .unwrap_or_default();
            (eco, findings)
        })
        .collect())
}

fn severity_of(word: &str) -> policy::Severity {
    match word {
        "critical" => policy::Severity::Critical,
        "high" => policy::Severity::High,
        "medium" => policy::Severity::Medium,
        "low" => policy::Severity::Low,
        "negligible" => policy::Severity::Negligible,
        _ => policy::Severity::Unknown,
    }
}

/// Each subject's findings judged by its distribution's policy. No
/// findings: allowed without asking. A policy the config names but no
/// loaded plugin provides: quarantined (fail closed), saying so.
pub async fn judge(
    plugins: &PluginHost,
    policies: &PolicyConfig,
    subjects: &[Subject],
    findings: &[(String, Vec<Finding>)],
) -> Result<Vec<Judgement>, ScanError> {
    let mut out: Vec<Option<Judgement>> = vec![None; subjects.len()];
    // Cases per policy id, with the subject index each answers.
    let mut cases: HashMap<String, Vec<(usize, policy::Case)>> = HashMap::new();
    for (i, (subject, (ecosystem, found))) in subjects.iter().zip(findings).enumerate() {
        if found.is_empty() {
            out[i] = Some(Judgement {
                verdict: Verdict::Allow,
                policy: String::new(),
                reason: String::new(),
            });
            continue;
        }
        let Some(id) = policies.of(&subject.distribution) else {
            out[i] = Some(Judgement {
                verdict: Verdict::Allow,
                policy: String::new(),
                reason: format!(
                    "no scanner policy for {} ([scan] policy = \"none\")",
                    subject.distribution
                ),
            });
            continue;
        };
        let grype = plugins
            .registry()
            .distribution(&subject.distribution)
            .map(|(_, d)| d.vulnerability.grype.clone())
            .unwrap_or_default();
        let case = policy::Case {
            subject: policy::Subject {
                name: subject.name.clone(),
                version: subject.version.clone(),
                architecture: subject.architecture.clone(),
                distribution: subject.distribution.clone(),
                grype_id: grype,
                osv_ecosystem: ecosystem.clone(),
                extensions: vec![],
            },
            advisories: found
                .iter()
                .map(|f| policy::Advisory {
                    id: f.advisory_id.clone(),
                    severity: severity_of(&f.severity),
                    cvss_score: f.cvss_score.map(|s| s as f32),
                    fixed_versions: f.fixed.iter().cloned().collect(),
                    summary: f.summary.clone(),
                    extensions: vec![],
                })
                .collect(),
        };
        cases.entry(id.to_owned()).or_default().push((i, case));
    }
    for (id, batch) in cases {
        let (index, batch): (Vec<usize>, Vec<policy::Case>) = batch.into_iter().unzip();
        let wanted = id.clone();
        let decisions = plugins
            .blocking(move |registry| {
                registry
                    .policies()
                    .find(|p| p.info.id == wanted)
                    .map(|p| p.evaluate(&batch))
                    .transpose()
            })
            .await?;
        for (n, i) in index.into_iter().enumerate() {
            out[i] = Some(match &decisions {
                Some(d) => Judgement {
                    verdict: match d[n].verdict {
                        policy::Verdict::Allow => Verdict::Allow,
                        policy::Verdict::Quarantine => Verdict::Quarantine,
                        policy::Verdict::Block => Verdict::Block,
                    },
                    policy: id.clone(),
                    reason: d[n].reason.clone(),
                },
                None => Judgement {
                    verdict: Verdict::Quarantine,
                    policy: id.clone(),
                    reason: format!(
                        "the scanner policy {id} ([scan] in the config) is not loaded: \
                         quarantined until it is, or until a person decides"
                    ),
                },
            });
        }
    }
    Ok(out
        .into_iter()
        .map(|j| j.expect("every subject judged"))
        .collect())
}

/// The state a row is in: a live decision covering every finding wins over
/// the policy; a rejection always stands.
pub fn state_of(
    findings: &[Finding],
    judgement: &Judgement,
    decision: Option<&Decision>,
    now_ms: i64,
) -> &'static str {
    if let Some(d) = decision {
        if d.decision == "reject" {
            return "rejected";
        }
        let live = d.expires_ms.is_none_or(|at| at > now_ms);
        let covered = findings.iter().all(|f| d.covers.contains(&f.advisory_id));
        if live && covered {
            return "approved";
        }
    }
    if findings.is_empty() {
        return "clean";
    }
    match judgement.verdict {
        Verdict::Allow => "findings",
        Verdict::Quarantine => "quarantined",
        Verdict::Block => "blocked",
    }
}

const DECISION_COLUMNS: &str = "id, package_id, decision, justification, actor, at_ms, expires_ms, \
     covers, inherited_from";

/// Every decision about one row, newest first (inherited ones included).
pub async fn decisions_of(db: &Db, package_id: &str) -> Result<Vec<Decision>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {DECISION_COLUMNS} FROM decisions WHERE package_id = $1 ORDER BY at_ms DESC, id DESC"
    ))
    .bind(package_id)
    .fetch_all(db)
    .await
}

/// The latest decision about each of `ids` that has one.
pub async fn latest_decisions(
    db: &Db,
    ids: &[&str],
) -> Result<HashMap<String, Decision>, sqlx::Error> {
    latest_decisions_in(&mut *db.acquire().await?, ids).await
}

/// [`latest_decisions`] on one connection (a transaction's).
async fn latest_decisions_in(
    db: &mut sqlx::AnyConnection,
    ids: &[&str],
) -> Result<HashMap<String, Decision>, sqlx::Error> {
    let mut out: HashMap<String, Decision> = HashMap::new();
    // Many rows (a full re-scan): one read of every decision (people make
    // few) beats a lookup per batch.
    if ids.len() > WHOLE_INDEX_ABOVE {
        let wanted: std::collections::HashSet<&str> = ids.iter().copied().collect();
        let all: Vec<Decision> = sqlx::query_as(&format!(
            "SELECT {DECISION_COLUMNS} FROM decisions ORDER BY at_ms, id"
        ))
        .fetch_all(&mut *db)
        .await?;
        for d in all {
            if wanted.contains(d.package_id.as_str()) {
                out.insert(d.package_id.clone(), d);
            }
        }
        return Ok(out);
    }
    for batch in ids.chunks(BATCH) {
        let mut q = Sql::new(format!(
            "SELECT {DECISION_COLUMNS} FROM decisions WHERE package_id IN ("
        ));
        let mut list = q.separated(", ");
        for id in batch {
            list.push_bind(*id);
        }
        q.push(") ORDER BY at_ms, id");
        let found: Vec<Decision> = q.build_query_as().fetch_all(&mut *db).await?;
        for d in found {
            out.insert(d.package_id.clone(), d);
        }
    }
    Ok(out)
}

/// Records rows' scans (replacing their previous ones) in the caller's
/// transaction, a few multi-row statements per [`BATCH`] rows. Names given
/// replace the row's stored ones; `None` leaves them.
pub async fn store(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    scans: &[(Scan, Option<&BTreeSet<String>>)],
) -> Result<(), sqlx::Error> {
    // The last scan of a row, if one came twice: an upsert may not touch a
    // row twice in one statement in PostgreSQL (SQLite lets the last win).
    let last: HashMap<&str, usize> = scans
        .iter()
        .enumerate()
        .map(|(i, (scan, _))| (scan.package_id.as_str(), i))
        .collect();
    let scans: Vec<&(Scan, Option<&BTreeSet<String>>)> = scans
        .iter()
        .enumerate()
        .filter(|(i, (scan, _))| last[scan.package_id.as_str()] == *i)
        .map(|(_, s)| s)
        .collect();
    for batch in scans.chunks(BATCH) {
        let mut q = Sql::new("DELETE FROM findings WHERE package_id IN (");
        let mut list = q.separated(", ");
        for (scan, _) in batch {
            list.push_bind(&scan.package_id);
        }
        q.push(")");
        q.build().execute(&mut **tx).await?;
        let renamed: Vec<&str> = batch
            .iter()
            .filter(|(_, names)| names.is_some())
            .map(|(scan, _)| scan.package_id.as_str())
            .collect();
        if !renamed.is_empty() {
            let mut q = Sql::new("DELETE FROM package_names WHERE package_id IN (");
            let mut list = q.separated(", ");
            for id in renamed {
                list.push_bind(id);
            }
            q.push(")");
            q.build().execute(&mut **tx).await?;
        }
        let findings: Vec<(&str, &Finding)> = batch
            .iter()
            .flat_map(|(s, _)| s.findings.iter().map(move |f| (s.package_id.as_str(), f)))
            .collect();
        for rows in findings.chunks(BATCH) {
            let mut q = Sql::new(
                "INSERT INTO findings (package_id, advisory_id, severity, cvss_score, fixed) ",
            );
            q.push_values(rows, |mut b, (id, f)| {
                b.push_bind(*id)
                    .push_bind(&f.advisory_id)
                    .push_bind(&f.severity)
                    .push_real(f.cvss_score)
                    .push_bind(&f.fixed);
            });
            q.build().execute(&mut **tx).await?;
        }
        let names: Vec<(&str, &String)> = batch
            .iter()
            .filter_map(|(s, names)| Some((s, (*names)?)))
            .flat_map(|(s, names)| names.iter().map(move |n| (s.package_id.as_str(), n)))
            .collect();
        for rows in names.chunks(BATCH) {
            let mut q = Sql::new("INSERT INTO package_names (package_id, name) ");
            q.push_values(rows, |mut b, (id, name)| {
                b.push_bind(*id).push_bind(name.as_str());
            });
            q.build().execute(&mut **tx).await?;
        }
        let mut q = Sql::new(
            "INSERT INTO scans (package_id, scanned_ms, ecosystem, findings, worst, state, policy, reason) ",
        );
        q.push_values(batch, |mut b, (scan, _)| {
            b.push_bind(&scan.package_id)
                .push_bind(scan.scanned_ms)
                .push_bind(&scan.ecosystem)
                .push_bind(scan.findings.len() as i64)
                .push_bind(&scan.worst)
                .push_bind(&scan.state)
                .push_bind(&scan.policy)
                .push_bind(&scan.reason);
        });
        q.push(
            " ON CONFLICT (package_id) DO UPDATE SET scanned_ms = excluded.scanned_ms, \
             ecosystem = excluded.ecosystem, findings = excluded.findings, worst = excluded.worst, \
             state = excluded.state, policy = excluded.policy, reason = excluded.reason",
        );
        q.build().execute(&mut **tx).await?;
    }
    Ok(())
}

/// A scan result as stored and answered.
pub fn result(
    package_id: &str,
    ecosystem: String,
    findings: Vec<Finding>,
    judgement: Judgement,
    decision: Option<Decision>,
) -> Scan {
    let scanned_ms = now_ms();
    let state = state_of(&findings, &judgement, decision.as_ref(), scanned_ms);
    Scan {
        package_id: package_id.to_owned(),
        scanned_ms,
        ecosystem,
        state: state.to_owned(),
        policy: judgement.policy,
        reason: judgement.reason,
        worst: findings
            .first()
            .map_or("none".to_owned(), |f| f.severity.clone()),
        findings,
        decision,
    }
}

/// Scans the rows `ids` and stores what it finds (replacing their previous
/// scans). Rows of distributions no loaded plugin declares are skipped.
/// Nothing is published or held here: a row already in a distribution
/// stays; its state flags it.
pub async fn scan(
    db: &Db,
    plugins: &PluginHost,
    policies: &PolicyConfig,
    ids: &[&str],
) -> Result<Vec<Scan>, ScanError> {
    let started = std::time::Instant::now();
    let mut rows: Vec<Row> = Vec::with_capacity(ids.len());
    let mut known: HashMap<String, BTreeSet<String>> = HashMap::new();
    for batch in ids.chunks(BATCH) {
        let mut q = Sql::new(
            "SELECT p.id, p.distribution, p.name, p.version, p.architecture \
             FROM packages p WHERE p.id IN (",
        );
        let mut list = q.separated(", ");
        for id in batch {
            list.push_bind(*id);
        }
        q.push(")");
        rows.extend(q.build_query_as::<Row>().fetch_all(db).await?);
        // The names an earlier scan matched each row under.
        let mut q = Sql::new("SELECT package_id, name FROM package_names WHERE package_id IN (");
        let mut list = q.separated(", ");
        for id in batch {
            list.push_bind(*id);
        }
        q.push(")");
        let names: Vec<(String, String)> = q.build_query_as().fetch_all(db).await?;
        for (id, name) in names {
            known.entry(id).or_default().insert(name);
        }
    }
    scan_rows(db, plugins, policies, rows, known, started).await
}

/// Scans every stored package (`POST /scans/rescan`): the same as [`scan`]
/// with every id, read in two queries instead of two per [`BATCH`].
pub async fn scan_all(
    db: &Db,
    plugins: &PluginHost,
    policies: &PolicyConfig,
) -> Result<Vec<Scan>, ScanError> {
    let started = std::time::Instant::now();
    type Listed = (String, String, String, String, String);
    let listed: Vec<Listed> = sqlx::query_as(
        "SELECT p.id, p.distribution, p.name, p.version, p.architecture FROM packages p",
    )
    .fetch_all(db)
    .await?;
    let names: Vec<(String, String)> = sqlx::query_as("SELECT package_id, name FROM package_names")
        .fetch_all(db)
        .await?;
    let mut known: HashMap<String, BTreeSet<String>> = HashMap::new();
    for (id, name) in names {
        known.entry(id).or_default().insert(name);
    }
    let mut rows = Vec::with_capacity(listed.len());
    for (id, distribution, name, version, architecture) in listed {
        rows.push(Row {
            id,
            distribution,
            name,
            version,
            architecture,
        });
    }
    scan_rows(db, plugins, policies, rows, known, started).await
}

/// Scans `rows`; `known` has the names earlier scans matched rows under
/// (the others are read from what the reader parsed, and stored).
async fn scan_rows(
    db: &Db,
    plugins: &PluginHost,
    policies: &PolicyConfig,
    mut rows: Vec<Row>,
    mut known: HashMap<String, BTreeSet<String>>,
    started: std::time::Instant,
) -> Result<Vec<Scan>, ScanError> {
    let started_ms = now_ms();
    {
        let registry = plugins.registry();
        rows.retain(|r| registry.distribution(&r.distribution).is_some());
    }
    if rows.is_empty() {
        return Ok(Vec::new());
    }
    // Rows never scanned: their source name from what the reader parsed.
    let fresh: Vec<&str> = rows
        .iter()
        .filter(|r| !known.contains_key(&r.id))
        .map(|r| r.id.as_str())
        .collect();
    let fresh_ids: std::collections::HashSet<String> =
        fresh.iter().map(|id| (*id).to_owned()).collect();
    for batch in fresh.chunks(BATCH) {
        let mut q = Sql::new(
            "SELECT p.id, p.name, b.parsed FROM packages p JOIN blobs b ON b.sha256 = p.sha256 \
             WHERE p.id IN (",
        );
        let mut list = q.separated(", ");
        for id in batch {
            list.push_bind(*id);
        }
        q.push(")");
        let parsed: Vec<(String, String, Option<String>)> =
            q.build_query_as().fetch_all(db).await?;
        for (id, name, parsed) in parsed {
            let source = parsed
                .as_deref()
                .and_then(|p| serde_json::from_str::<repod_reader::Package>(p).ok())
                .as_ref()
                .and_then(source_name);
            known.insert(id, names_of(&name, source));
        }
    }
    let subjects: Vec<Subject> = rows
        .iter()
        .map(|r| Subject {
            distribution: r.distribution.clone(),
            name: r.name.clone(),
            version: r.version.clone(),
            architecture: r.architecture.clone(),
            names: known
                .remove(&r.id)
                .unwrap_or_else(|| names_of(&r.name, None)),
        })
        .collect();
    let read = started.elapsed();
    let found = find(db, plugins, &subjects).await?;
    let matched = started.elapsed();
    let judged = judge(plugins, policies, &subjects, &found).await?;
    let decided = started.elapsed();
    // Decisions are read in the write transaction, so one made while the
    // rows were matched is not overwritten with a state that ignores it.
    let mut tx = crate::db::write(db).await?;
    let row_ids: Vec<&str> = rows.iter().map(|r| r.id.as_str()).collect();
    let mut decisions = latest_decisions_in(&mut tx, &row_ids).await?;
    let results: Vec<(Scan, Option<&BTreeSet<String>>)> = rows
        .iter()
        .zip(&subjects)
        .zip(found)
        .zip(judged)
        .map(|(((row, subject), (ecosystem, findings)), judgement)| {
            let decision = decisions.remove(&row.id);
            // Names an earlier scan stored stay as they are.
            let names = fresh_ids.contains(&row.id).then_some(&subject.names);
            let mut scan = result(&row.id, ecosystem, findings, judgement, decision);
            // Stamped with when this scan started: scans are ordered by
            // what they read, not by when they stored (see `newer`).
            scan.scanned_ms = started_ms;
            (scan, names)
        })
        .collect();
    // Rows retention collected since they were read are not stored (many:
    // one read of every id beats a lookup per batch).
    let there: std::collections::HashSet<String> = if results.len() > WHOLE_INDEX_ABOVE {
        let all: Vec<(String,)> = sqlx::query_as("SELECT id FROM packages")
            .fetch_all(&mut *tx)
            .await?;
        all.into_iter().map(|(id,)| id).collect()
    } else {
        let ids: Vec<&str> = results.iter().map(|(s, _)| s.package_id.as_str()).collect();
        crate::catalog::still_there(&mut tx, &ids).await?
    };
    // Nor rows a scan that started later has stored meanwhile (it saw
    // advisories at least as new as these).
    let newer: Vec<(String,)> =
        sqlx::query_as("SELECT package_id FROM scans WHERE scanned_ms > $1")
            .bind(started_ms)
            .fetch_all(&mut *tx)
            .await?;
    let newer: std::collections::HashSet<String> = newer.into_iter().map(|(id,)| id).collect();
    let (results, superseded): (Vec<_>, Vec<_>) = results
        .into_iter()
        .filter(|(s, _)| there.contains(&s.package_id))
        .partition(|(s, _)| !newer.contains(&s.package_id));
    store(&mut tx, &results).await?;
    tx.commit().await?;
    let ms = |d: std::time::Duration| format!("{:.1}", d.as_secs_f64() * 1000.0);
    tracing::info!(
        packages = results.len(),
        with_findings = results
            .iter()
            .filter(|(s, _)| !s.findings.is_empty())
            .count(),
        read_ms = ms(read),
        match_ms = ms(matched - read),
        judge_ms = ms(decided - matched),
        store_ms = ms(started.elapsed() - decided),
        superseded = superseded.len(),
        "scanned"
    );
    let mut out: Vec<Scan> = results.into_iter().map(|(scan, _)| scan).collect();
    // The newer scans stand for the superseded ones (a few at most: only
    // rows scanned twice at once).
    for (scan, _) in superseded {
        out.extend(of(db, &scan.package_id).await?);
    }
    Ok(out)
}

/// Findings worst first, then by advisory id.
fn worst_first(findings: &mut [Finding]) {
    findings.sort_by(|a, b| {
        rank(&b.severity)
            .cmp(&rank(&a.severity))
            .then_with(|| a.advisory_id.cmp(&b.advisory_id))
    });
}

/// A row's latest scan, scanning it now if it never was; `None` for a row
/// of a distribution no loaded plugin declares (or no such row).
pub async fn current(
    db: &Db,
    plugins: &PluginHost,
    policies: &PolicyConfig,
    package_id: &str,
) -> Result<Option<Scan>, ScanError> {
    match of(db, package_id).await? {
        Some(scan) => Ok(Some(scan)),
        None => Ok(scan(db, plugins, policies, &[package_id]).await?.pop()),
    }
}

/// Severity words, worst highest.
fn rank(severity: &str) -> u8 {
    match severity {
        "critical" => 5,
        "high" => 4,
        "medium" => 3,
        "low" => 2,
        "negligible" => 1,
        _ => 0,
    }
}

/// Rows an advisory change touches: those matched under one of `changed`'s
/// names in a distribution of that ecosystem, and rows never scanned.
pub async fn affected_by(
    db: &Db,
    plugins: &PluginHost,
    changed: &BTreeSet<(String, String)>,
) -> Result<Vec<String>, sqlx::Error> {
    let registry = plugins.registry();
    let mut dists_of: HashMap<&str, Vec<String>> = HashMap::new();
    for (_, d) in registry.distributions() {
        dists_of
            .entry(d.vulnerability.osv.as_str())
            .or_default()
            .push(d.id.clone());
    }
    let mut out: BTreeSet<String> = BTreeSet::new();
    let never: Vec<(String,)> = sqlx::query_as(
        "SELECT p.id FROM packages p WHERE NOT EXISTS (SELECT 1 FROM scans s WHERE s.package_id = p.id)",
    )
    .fetch_all(db)
    .await?;
    out.extend(never.into_iter().map(|(id,)| id));
    for (ecosystem, name) in changed {
        let Some(dists) = dists_of.get(ecosystem.as_str()) else {
            continue;
        };
        let mut q = Sql::new(
            "SELECT pn.package_id FROM package_names pn JOIN packages p ON p.id = pn.package_id \
             WHERE pn.name = ",
        );
        q.push_bind(name).push(" AND p.distribution IN (");
        let mut list = q.separated(", ");
        for d in dists {
            list.push_bind(d);
        }
        q.push(")");
        let ids: Vec<(String,)> = q.build_query_as().fetch_all(db).await?;
        out.extend(ids.into_iter().map(|(id,)| id));
    }
    Ok(out.into_iter().collect())
}

/// The ecosystem and findings (worst first, with their aliases) of the rows
/// of `ids` that were scanned, as their latest scans stored them.
pub async fn stored(
    db: &Db,
    ids: &[&str],
) -> Result<HashMap<String, (String, Vec<Finding>)>, sqlx::Error> {
    let mut out: HashMap<String, (String, Vec<Finding>)> = HashMap::new();
    for batch in ids.chunks(BATCH) {
        let mut q = Sql::new("SELECT package_id, ecosystem FROM scans WHERE package_id IN (");
        let mut list = q.separated(", ");
        for id in batch {
            list.push_bind(*id);
        }
        q.push(")");
        let heads: Vec<(String, String)> = q.build_query_as().fetch_all(db).await?;
        out.extend(heads.into_iter().map(|(id, eco)| (id, (eco, Vec::new()))));
        let mut q = Sql::new(
            "SELECT f.package_id, f.advisory_id, f.severity, f.cvss_score, a.cvss_vector, f.fixed, \
             COALESCE(a.summary, '') AS summary FROM findings f \
             LEFT JOIN advisories a ON a.id = f.advisory_id WHERE f.package_id IN (",
        );
        let mut list = q.separated(", ");
        for id in batch {
            list.push_bind(*id);
        }
        q.push(")");
        #[derive(sqlx::FromRow)]
        struct Row {
            package_id: String,
            #[sqlx(flatten)]
            finding: Finding,
        }
        let rows: Vec<Row> = q.build_query_as().fetch_all(db).await?;
        for row in rows {
            if let Some((_, findings)) = out.get_mut(&row.package_id) {
                findings.push(row.finding);
            }
        }
    }
    let ids: BTreeSet<String> = out
        .values()
        .flat_map(|(_, f)| f.iter().map(|f| f.advisory_id.clone()))
        .collect();
    let aliases = aliases_by_id(db, &ids.iter().map(String::as_str).collect::<Vec<_>>()).await?;
    for (_, findings) in out.values_mut() {
        for f in findings.iter_mut() {
            f.aliases = aliases.get(&f.advisory_id).cloned().unwrap_or_default();
        }
        worst_first(findings);
    }
    Ok(out)
}

/// The aliases of each of `ids` that has some, sorted.
async fn aliases_by_id(db: &Db, ids: &[&str]) -> Result<HashMap<String, Vec<String>>, sqlx::Error> {
    let mut out: HashMap<String, Vec<String>> = HashMap::new();
    for batch in ids.chunks(BATCH) {
        let mut q =
            Sql::new("SELECT advisory_id, alias FROM advisory_aliases WHERE advisory_id IN (");
        let mut list = q.separated(", ");
        for id in batch {
            list.push_bind(*id);
        }
        q.push(") ORDER BY advisory_id, alias");
        let rows: Vec<(String, String)> = q.build_query_as().fetch_all(db).await?;
        for (id, alias) in rows {
            out.entry(id).or_default().push(alias);
        }
    }
    Ok(out)
}

/// The latest scan of a row, if it was scanned.
pub async fn of(db: &Db, package_id: &str) -> Result<Option<Scan>, sqlx::Error> {
    type Head = (i64, String, String, String, String, String);
    let head: Option<Head> = sqlx::query_as(
        "SELECT scanned_ms, ecosystem, worst, state, policy, reason FROM scans \
         WHERE package_id = $1",
    )
    .bind(package_id)
    .fetch_optional(db)
    .await?;
    let Some((scanned_ms, ecosystem, worst, state, policy, reason)) = head else {
        return Ok(None);
    };
    let findings = stored(db, &[package_id])
        .await?
        .remove(package_id)
        .map(|(_, findings)| findings)
        .unwrap_or_default();
    let decision = latest_decisions(db, &[package_id])
        .await?
        .remove(package_id);
    Ok(Some(Scan {
        package_id: package_id.to_owned(),
        scanned_ms,
        ecosystem,
        state,
        policy,
        reason,
        worst,
        findings,
        decision,
    }))
}

/// Rows an approval kept `approved` until it expired, scanned again so
/// that review re-opens (their state follows the policy again; a published
/// row stays published, flagged). How many.
pub async fn reopen_expired(
    db: &Db,
    plugins: &PluginHost,
    policies: &PolicyConfig,
) -> Result<usize, ScanError> {
    let due: Vec<(String,)> = sqlx::query_as(
        "SELECT s.package_id FROM scans s WHERE s.state = 'approved' AND \
         (SELECT d.expires_ms FROM decisions d WHERE d.package_id = s.package_id \
          ORDER BY d.at_ms DESC, d.id DESC LIMIT 1) <= $1",
    )
    .bind(now_ms())
    .fetch_all(db)
    .await?;
    if due.is_empty() {
        return Ok(0);
    }
    let ids: Vec<&str> = due.iter().map(|(id,)| id.as_str()).collect();
    let scans = scan(db, plugins, policies, &ids).await?;
    for s in &scans {
        tracing::info!(
            package = s.package_id,
            state = s.state,
            "an approval expired: review re-opened"
        );
    }
    Ok(scans.len())
}

/// Scans again what an advisory import changed (the rows its records name,
/// and rows never scanned); how many rows.
pub async fn rescan_after(
    db: &Db,
    plugins: &PluginHost,
    policies: &PolicyConfig,
    report: &crate::advisories::ImportReport,
) -> Result<usize, ScanError> {
    if report.added + report.updated == 0 {
        return Ok(0);
    }
    let ids = affected_by(db, plugins, &report.changed).await?;
    let ids: Vec<&str> = ids.iter().map(String::as_str).collect();
    Ok(scan(db, plugins, policies, &ids).await?.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matched_names_follow_the_family() {
        let both = names_of("libcurl4", Some("curl".into()));
        let alone = names_of("curl", None);
        let same = names_of("curl", Some("curl".into()));
        assert_eq!(matched_names(Some("source"), "libcurl4", &both), ["curl"]);
        assert_eq!(matched_names(Some("source"), "curl", &alone), ["curl"]);
        assert_eq!(matched_names(Some("source"), "curl", &same), ["curl"]);
        assert_eq!(
            matched_names(Some("binary"), "libcurl4", &both),
            ["libcurl4"]
        );
        assert_eq!(matched_names(None, "libcurl4", &both), ["curl", "libcurl4"]);
        assert_eq!(
            matched_names(Some("odd"), "libcurl4", &both),
            ["curl", "libcurl4"]
        );
    }
}
