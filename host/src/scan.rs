//! Scanning: package rows matched against the stored advisories of their
//! distribution's OSV ecosystem (the family plugin's `vulnerability.osv`),
//! with the family plugin's own version order, never a generic one.
//!
//! A row is matched under its own name and its source package's (Debian
//! family records name source packages; AlmaLinux's name binary RPMs, and
//! a binary RPM's source name is harmless there). Candidates come from the
//! `advisory_packages` index; every version comparison a distribution's
//! rows need goes to its plugin in one `compare-versions` call
//! (`repod_osv::comparisons`), then `repod_osv::is_affected` decides.
//! The latest scan of a row replaces its findings.

use std::cmp::Ordering;
use std::collections::{BTreeSet, HashMap};

use serde::Serialize;
use sqlx::{QueryBuilder, Sqlite};

use crate::db::Db;
use crate::plugins::PluginHost;
use crate::plugins::contract::Ordering as PluginOrdering;

/// Rows per statement.
const BATCH: usize = 500;

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
    /// critical, high, medium, low, negligible or unknown.
    pub severity: String,
    pub cvss_score: Option<f64>,
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
    /// `clean` or `findings`.
    pub state: String,
    /// The worst finding's severity, `none` when clean.
    pub worst: String,
    pub findings: Vec<Finding>,
}

#[derive(sqlx::FromRow)]
struct Row {
    id: String,
    distribution: String,
    name: String,
    version: String,
    parsed: Option<String>,
}

/// The names advisories may list a package under: its own, and its source
/// package's (`Source:` of a deb, the name part of an RPM's source RPM).
fn names(row: &Row) -> BTreeSet<String> {
    let mut out = BTreeSet::from([row.name.clone()]);
    let Some(parsed) = &row.parsed else {
        return out;
    };
    match serde_json::from_str::<repod_reader::Package>(parsed) {
        Ok(repod_reader::Package::Deb(deb)) => {
            if let Some((_, source)) = deb.control.iter().find(|(k, _)| k == "Source") {
                // `Source: name (version)` when the versions differ.
                if let Some(name) = source.split_whitespace().next() {
                    out.insert(name.to_owned());
                }
            }
        }
        Ok(repod_reader::Package::Rpm(rpm)) => {
            // name-version-release.src.rpm
            let mut parts = rpm.sourcerpm.rsplitn(3, '-');
            if let (Some(_), Some(_), Some(name)) = (parts.next(), parts.next(), parts.next())
                && !name.is_empty()
            {
                out.insert(name.to_owned());
            }
        }
        Err(_) => {}
    }
    out
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// A stored advisory as the matcher needs it.
struct Stored {
    advisory: repod_osv::Advisory,
    severity: String,
    cvss_score: Option<f64>,
    summary: String,
}

/// Scans the rows `ids` and stores what it finds (replacing their previous
/// findings). Rows of distributions no loaded plugin declares are skipped.
pub async fn scan(db: &Db, plugins: &PluginHost, ids: &[&str]) -> Result<Vec<Scan>, ScanError> {
    let mut rows: Vec<Row> = Vec::with_capacity(ids.len());
    for batch in ids.chunks(BATCH) {
        let mut q = QueryBuilder::<Sqlite>::new(
            "SELECT p.id, p.distribution, p.name, p.version, b.parsed FROM packages p \
             JOIN blobs b ON b.sha256 = p.sha256 WHERE p.id IN (",
        );
        let mut list = q.separated(", ");
        for id in batch {
            list.push_bind(*id);
        }
        q.push(")");
        rows.extend(q.build_query_as::<Row>().fetch_all(db).await?);
    }
    let registry = plugins.registry();
    let ecosystem_of: HashMap<String, String> = rows
        .iter()
        .filter_map(|r| {
            registry
                .distribution(&r.distribution)
                .map(|(_, d)| (r.distribution.clone(), d.vulnerability.osv.clone()))
        })
        .collect();
    drop(registry);
    rows.retain(|r| ecosystem_of.contains_key(&r.distribution));
    let row_names: Vec<BTreeSet<String>> = rows.iter().map(names).collect();

    // Candidate advisories per (ecosystem, name).
    let wanted: BTreeSet<(&str, &str)> = rows
        .iter()
        .zip(&row_names)
        .flat_map(|(r, names)| {
            let eco = ecosystem_of[&r.distribution].as_str();
            names.iter().map(move |n| (eco, n.as_str()))
        })
        .collect();
    let wanted: Vec<(&str, &str)> = wanted.into_iter().collect();
    let mut candidates: HashMap<(String, String), Vec<String>> = HashMap::new();
    for batch in wanted.chunks(BATCH) {
        let mut q = QueryBuilder::<Sqlite>::new("WITH wanted (ecosystem, name) AS (");
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
    for batch in advisory_ids.chunks(BATCH) {
        let mut q = QueryBuilder::<Sqlite>::new(
            "SELECT id, record, severity, cvss_score, summary FROM advisories \
             WHERE withdrawn IS NULL AND id IN (",
        );
        let mut list = q.separated(", ");
        for id in batch {
            list.push_bind(*id);
        }
        q.push(")");
        let found: Vec<(String, String, String, Option<f64>, String)> =
            q.build_query_as().fetch_all(db).await?;
        for (id, record, severity, cvss_score, summary) in found {
            match repod_osv::parse(record.as_bytes(), &repod_osv::Limits::default()) {
                Ok(import) if import.advisories.len() == 1 => {
                    let advisory = import.advisories.into_iter().next().expect("one");
                    stored.insert(
                        id,
                        Stored {
                            advisory,
                            severity,
                            cvss_score,
                            summary,
                        },
                    );
                }
                _ => tracing::error!(advisory = id, "a stored advisory no longer parses; skipped"),
            }
        }
    }

    // Every (row, advisory, affected entry) to evaluate, and the pairs its
    // distribution's plugin must order.
    let mut work: Vec<(usize, &str, &repod_osv::Affected)> = Vec::new();
    let mut pairs: HashMap<&str, BTreeSet<(String, String)>> = HashMap::new();
    for (i, (row, names)) in rows.iter().zip(&row_names).enumerate() {
        let eco = &ecosystem_of[&row.distribution];
        let name_refs: Vec<&str> = names.iter().map(String::as_str).collect();
        let mut seen = BTreeSet::new();
        for name in names {
            for id in candidates
                .get(&(eco.clone(), name.clone()))
                .into_iter()
                .flatten()
            {
                let Some(s) = stored.get(id) else { continue };
                if !seen.insert(id.as_str()) {
                    continue;
                }
                for affected in repod_osv::matches(&s.advisory, eco, &name_refs) {
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
    for (dist, set) in pairs {
        let list: Vec<(String, String)> = set.into_iter().collect();
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
    let mut found: Vec<Vec<Finding>> = vec![Vec::new(); rows.len()];
    for (i, id, affected) in work {
        if found[i].iter().any(|f| f.advisory_id == id) {
            continue;
        }
        if let Some(hit) = repod_osv::is_affected(affected, &rows[i].version, &cmp) {
            let s = &stored[id];
            found[i].push(Finding {
                advisory_id: id.to_owned(),
                severity: s.severity.clone(),
                cvss_score: s.cvss_score,
                fixed: hit.fixed,
                summary: s.summary.clone(),
            });
        }
    }

    let scanned_ms = now_ms();
    let mut scans = Vec::with_capacity(rows.len());
    let mut tx = crate::db::write(db).await?;
    for ((row, names), mut findings) in rows.iter().zip(&row_names).zip(found) {
        findings.sort_by(|a, b| {
            rank(&b.severity)
                .cmp(&rank(&a.severity))
                .then_with(|| a.advisory_id.cmp(&b.advisory_id))
        });
        let worst = findings
            .first()
            .map_or("none".to_owned(), |f| f.severity.clone());
        for table in ["findings", "package_names"] {
            sqlx::query(&format!("DELETE FROM {table} WHERE package_id = $1"))
                .bind(&row.id)
                .execute(&mut *tx)
                .await?;
        }
        for f in &findings {
            sqlx::query(
                "INSERT INTO findings (package_id, advisory_id, severity, cvss_score, fixed) \
                 VALUES ($1, $2, $3, $4, $5)",
            )
            .bind(&row.id)
            .bind(&f.advisory_id)
            .bind(&f.severity)
            .bind(f.cvss_score)
            .bind(&f.fixed)
            .execute(&mut *tx)
            .await?;
        }
        for name in names {
            sqlx::query("INSERT INTO package_names (package_id, name) VALUES ($1, $2)")
                .bind(&row.id)
                .bind(name)
                .execute(&mut *tx)
                .await?;
        }
        let ecosystem = ecosystem_of[&row.distribution].clone();
        sqlx::query(
            "INSERT INTO scans (package_id, scanned_ms, ecosystem, findings, worst) \
             VALUES ($1, $2, $3, $4, $5) ON CONFLICT (package_id) DO UPDATE SET \
             scanned_ms = excluded.scanned_ms, ecosystem = excluded.ecosystem, \
             findings = excluded.findings, worst = excluded.worst",
        )
        .bind(&row.id)
        .bind(scanned_ms)
        .bind(&ecosystem)
        .bind(findings.len() as i64)
        .bind(&worst)
        .execute(&mut *tx)
        .await?;
        scans.push(Scan {
            package_id: row.id.clone(),
            scanned_ms,
            ecosystem,
            state: if findings.is_empty() {
                "clean"
            } else {
                "findings"
            }
            .to_owned(),
            worst,
            findings,
        });
    }
    tx.commit().await?;
    Ok(scans)
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
        let mut q = QueryBuilder::<Sqlite>::new(
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

/// The latest scan of a row, if it was scanned.
pub async fn of(db: &Db, package_id: &str) -> Result<Option<Scan>, sqlx::Error> {
    let head: Option<(i64, String, String)> =
        sqlx::query_as("SELECT scanned_ms, ecosystem, worst FROM scans WHERE package_id = $1")
            .bind(package_id)
            .fetch_optional(db)
            .await?;
    let Some((scanned_ms, ecosystem, worst)) = head else {
        return Ok(None);
    };
    let mut findings: Vec<Finding> = sqlx::query_as(
        "SELECT f.advisory_id, f.severity, f.cvss_score, f.fixed, \
         COALESCE(a.summary, '') AS summary FROM findings f \
         LEFT JOIN advisories a ON a.id = f.advisory_id WHERE f.package_id = $1",
    )
    .bind(package_id)
    .fetch_all(db)
    .await?;
    findings.sort_by(|a, b| {
        rank(&b.severity)
            .cmp(&rank(&a.severity))
            .then_with(|| a.advisory_id.cmp(&b.advisory_id))
    });
    Ok(Some(Scan {
        package_id: package_id.to_owned(),
        scanned_ms,
        ecosystem,
        state: if findings.is_empty() {
            "clean"
        } else {
            "findings"
        }
        .to_owned(),
        worst,
        findings,
    }))
}
