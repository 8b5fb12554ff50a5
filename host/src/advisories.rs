//! Vulnerability advisories: OSV records in, stored verbatim with what the
//! scanner and the API need beside them (one severity scale, aliases, the
//! ecosystem and package names each record's affected entries name).
//!
//! Parsing, validation, severity and range evaluation are `repod-osv`'s;
//! this module stores and finds. An import is all-or-nothing per file: the
//! valid records of a file go in one transaction with its history entry and
//! audit entry, the invalid ones are reported by id and skipped. Of two
//! revisions of a record, the later `modified` wins (the OSV rule), so an
//! older dump imported after a newer one changes nothing.

use std::collections::BTreeSet;

use crate::db::Sql;
use serde::Serialize;

use crate::audit;
use crate::db::Db;

/// Rows per multi-row statement (SQLite allows 32,766 binds).
const BATCH: usize = 2000;

#[derive(Debug, thiserror::Error)]
pub enum AdvisoryError {
    /// The input as a whole is unusable (400); nothing was stored.
    #[error("{0}")]
    Invalid(String),
    #[error("database error: {0}")]
    Db(#[from] sqlx::Error),
}

/// A record an import skipped, and why.
#[derive(Debug, Clone, Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct Rejection {
    /// The record's id, when it has a usable one.
    pub id: Option<String>,
    /// Where in the file: a zip entry name or an array index.
    pub entry: Option<String>,
    pub reason: String,
}

/// What one import did.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ImportReport {
    pub id: String,
    /// `upload`, or the feed's URL.
    pub source: String,
    pub actor: String,
    pub started_ms: i64,
    pub finished_ms: i64,
    /// Records new to repod.
    pub added: usize,
    /// Records replaced by a later revision.
    pub updated: usize,
    /// Records already stored as they are, or whose stored revision is later.
    pub unchanged: usize,
    pub rejected: usize,
    pub rejections: Vec<Rejection>,
    /// Why the whole import failed (nothing stored), if it did.
    pub error: Option<String>,
    /// Packages scanned again because an advisory naming them changed (or
    /// never scanned before).
    pub rescanned: usize,
    /// The (ecosystem, package name) pairs whose advisories changed: what a
    /// re-scan must look at again.
    #[serde(skip)]
    pub changed: BTreeSet<(String, String)>,
}

impl ImportReport {
    fn new(source: &str, actor: &str) -> ImportReport {
        let started_ms = now_ms();
        ImportReport {
            id: crate::db::new_id(),
            source: source.to_owned(),
            actor: actor.to_owned(),
            started_ms,
            finished_ms: started_ms,
            added: 0,
            updated: 0,
            unchanged: 0,
            rejected: 0,
            rejections: vec![],
            error: None,
            rescanned: 0,
            changed: BTreeSet::new(),
        }
    }
}

/// Records, in the import history, that `source` could not be fetched.
pub async fn record_failure(
    db: &Db,
    source: &str,
    actor: &str,
    why: &str,
) -> Result<ImportReport, sqlx::Error> {
    let mut report = ImportReport::new(source, actor);
    report.error = Some(why.to_owned());
    let mut tx = crate::db::write(db).await?;
    record_import(&mut tx, &report).await?;
    tx.commit().await?;
    Ok(report)
}

/// An advisory as the API lists it.
#[derive(Debug, Clone, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct AdvisorySummary {
    pub id: String,
    pub modified: String,
    pub withdrawn: Option<String>,
    pub summary: String,
    /// critical, high, medium, low, negligible or unknown.
    pub severity: String,
    pub cvss_score: Option<f64>,
    pub cvss_vector: Option<String>,
    /// The record field the severity came from.
    pub severity_source: String,
    pub imported_at: i64,
}

/// One advisory in full.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct AdvisoryView {
    #[serde(flatten)]
    pub summary: AdvisorySummary,
    pub aliases: Vec<String>,
    /// The (ecosystem, package) pairs it affects.
    pub packages: Vec<AffectedPackage>,
    /// The OSV record as imported.
    #[schema(value_type = Object)]
    pub record: serde_json::Value,
}

#[derive(Debug, Clone, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct AffectedPackage {
    pub ecosystem: String,
    pub name: String,
}

const SUMMARY: &str = "SELECT id, modified, withdrawn, summary, severity, cvss_score, \
     cvss_vector, severity_source, imported_at FROM advisories";

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// What a record is stored with beside its text.
struct Prepared {
    advisory: repod_osv::Advisory,
    rated: repod_osv::Rated,
    aliases: BTreeSet<String>,
    packages: BTreeSet<(String, String)>,
}

/// Checks repod makes beyond the OSV schema's: every ecosystem a record's
/// affected entries name is one the schema defines (a misspelt ecosystem
/// would silently never match).
fn prepare(advisory: repod_osv::Advisory) -> Result<Prepared, String> {
    let mut packages = BTreeSet::new();
    for affected in &advisory.affected {
        let ecosystem = &affected.package.ecosystem;
        if !repod_osv::ecosystems::is_known(ecosystem) {
            return Err(format!(
                "unknown ecosystem {ecosystem:?}: OSV ecosystems are {} (with an optional \
                 :release, as a distribution's plugin names it)",
                repod_osv::ecosystems::KNOWN.join(", ")
            ));
        }
        if !affected.package.name.is_empty() {
            packages.insert((ecosystem.clone(), affected.package.name.clone()));
        }
    }
    let aliases = aliases_of(&advisory);
    Ok(Prepared {
        rated: repod_osv::severity(&advisory),
        advisory,
        aliases,
        packages,
    })
}

/// The other ids a record is known by: its aliases, and the upstream and
/// related ids distributions list (the CVE ids a notice fixes).
pub(crate) fn aliases_of(advisory: &repod_osv::Advisory) -> BTreeSet<String> {
    advisory
        .aliases
        .iter()
        .chain(&advisory.upstream)
        .chain(&advisory.related)
        .filter(|a| **a != advisory.id)
        .cloned()
        .collect()
}

/// Imports `bytes` (one OSV record, a JSON array of records, or a zip of
/// records) from `source` on behalf of `actor`. A file with no usable
/// record fails as a whole ([`AdvisoryError::Invalid`]) and stores nothing
/// but its history entry.
pub async fn import(
    db: &Db,
    bytes: Vec<u8>,
    source: &str,
    actor: &str,
    limits: repod_osv::Limits,
) -> Result<ImportReport, AdvisoryError> {
    let mut report = ImportReport::new(source, actor);
    let parsed = tokio::task::spawn_blocking(move || {
        repod_osv::parse(&bytes, &limits).map(|import| {
            let mut ready = Vec::with_capacity(import.advisories.len());
            let mut rejected: Vec<Rejection> = import
                .rejected
                .into_iter()
                .map(|r| Rejection {
                    id: r.id,
                    entry: r.entry,
                    reason: r.reason,
                })
                .collect();
            for advisory in import.advisories {
                let id = advisory.id.clone();
                match prepare(advisory) {
                    Ok(p) => ready.push(p),
                    Err(reason) => rejected.push(Rejection {
                        id: Some(id),
                        entry: None,
                        reason,
                    }),
                }
            }
            (ready, rejected)
        })
    })
    .await
    .map_err(|e| AdvisoryError::Invalid(format!("internal error reading the file: {e}")))?;
    let (ready, rejections) = match parsed {
        Ok(parts) => parts,
        Err(e) => return fail(db, report, e.to_string()).await,
    };
    report.rejected = rejections.len();
    report.rejections = rejections;
    if ready.is_empty() && report.rejected > 0 {
        let first: Vec<String> = report
            .rejections
            .iter()
            .take(3)
            .map(|r| {
                let place = r.id.as_deref().or(r.entry.as_deref()).unwrap_or("a record");
                format!("{place}: {}", r.reason)
            })
            .collect();
        let why = format!(
            "no record in the file is usable ({} rejected; {})",
            report.rejected,
            first.join("; ")
        );
        return fail(db, report, why).await;
    }

    let mut tx = crate::db::write(db).await?;
    let imported_at = crate::db::now();
    for p in &ready {
        let stored: Option<(String, String)> =
            sqlx::query_as("SELECT modified, record FROM advisories WHERE id = $1")
                .bind(&p.advisory.id)
                .fetch_optional(&mut *tx)
                .await?;
        match &stored {
            Some((_, record)) if *record == p.advisory.raw => {
                report.unchanged += 1;
                continue;
            }
            Some((modified, _)) if later(modified, &p.advisory.modified) => {
                report.unchanged += 1;
                continue;
            }
            _ => {}
        }
        if stored.is_some() {
            // What the old revision named needs a look too.
            let old: Vec<(String, String)> = sqlx::query_as(
                "SELECT ecosystem, name FROM advisory_packages WHERE advisory_id = $1",
            )
            .bind(&p.advisory.id)
            .fetch_all(&mut *tx)
            .await?;
            report.changed.extend(old);
            sqlx::query("DELETE FROM advisories WHERE id = $1")
                .bind(&p.advisory.id)
                .execute(&mut *tx)
                .await?;
            report.updated += 1;
        } else {
            report.added += 1;
        }
        sqlx::query(
            "INSERT INTO advisories (id, modified, withdrawn, summary, severity, cvss_score, \
             cvss_vector, severity_source, record, imported_at, import_id) \
             VALUES ($1, $2, $3, $4, $5, CAST($6 AS DOUBLE PRECISION), $7, $8, $9, $10, $11)",
        )
        .bind(&p.advisory.id)
        .bind(&p.advisory.modified)
        .bind(&p.advisory.withdrawn)
        .bind(p.advisory.summary.as_deref().unwrap_or(""))
        .bind(p.rated.level.as_str())
        // CVSS scores have one decimal; f32 -> f64 would add noise. Bound
        // as text: see db::REAL.
        .bind(crate::db::real(
            p.rated.score.map(|s| (f64::from(s) * 10.0).round() / 10.0),
        ))
        .bind(&p.rated.vector)
        .bind(p.rated.source)
        .bind(&p.advisory.raw)
        .bind(imported_at)
        .bind(&report.id)
        .execute(&mut *tx)
        .await?;
        let aliases: Vec<&String> = p.aliases.iter().collect();
        for batch in aliases.chunks(BATCH) {
            let mut q = Sql::new("INSERT INTO advisory_aliases (alias, advisory_id) ");
            q.push_values(batch, |mut b, alias| {
                b.push_bind(alias.as_str()).push_bind(&p.advisory.id);
            });
            q.build().execute(&mut *tx).await?;
        }
        let packages: Vec<&(String, String)> = p.packages.iter().collect();
        for batch in packages.chunks(BATCH) {
            let mut q = Sql::new("INSERT INTO advisory_packages (ecosystem, name, advisory_id) ");
            q.push_values(batch, |mut b, (ecosystem, name)| {
                b.push_bind(ecosystem.as_str())
                    .push_bind(name.as_str())
                    .push_bind(&p.advisory.id);
            });
            q.build().execute(&mut *tx).await?;
        }
        report.changed.extend(p.packages.iter().cloned());
    }
    report.finished_ms = now_ms();
    record_import(&mut tx, &report).await?;
    let detail = format!(
        "{}: {} added, {} updated, {} unchanged, {} rejected",
        report.source, report.added, report.updated, report.unchanged, report.rejected
    );
    audit::record(&mut tx, actor, "advisories.import", &report.id, &detail).await?;
    tx.commit().await?;
    tracing::info!(
        import = report.id,
        source = report.source,
        added = report.added,
        updated = report.updated,
        unchanged = report.unchanged,
        rejected = report.rejected,
        ms = report.finished_ms - report.started_ms,
        "advisories imported"
    );
    Ok(report)
}

/// Whether RFC 3339 time `a` is later than `b` (both passed validation;
/// compared as instants, so offsets and fraction digits do not matter).
fn later(a: &str, b: &str) -> bool {
    match (instant(a), instant(b)) {
        (Some(a), Some(b)) => a > b,
        _ => a > b,
    }
}

fn instant(t: &str) -> Option<chrono::DateTime<chrono::FixedOffset>> {
    chrono::DateTime::parse_from_rfc3339(t).ok()
}

/// Unix milliseconds of an RFC 3339 time.
pub(crate) fn unix_ms(t: &str) -> Option<i64> {
    instant(t).map(|i| i.timestamp_millis())
}

/// An RFC 3339 UTC time (seconds) for Unix milliseconds.
pub(crate) fn rfc3339(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .unwrap_or_default()
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// Records a failed import in the history and answers with why.
async fn fail(
    db: &Db,
    mut report: ImportReport,
    why: String,
) -> Result<ImportReport, AdvisoryError> {
    report.finished_ms = now_ms();
    report.error = Some(why.clone());
    let mut tx = crate::db::write(db).await?;
    record_import(&mut tx, &report).await?;
    tx.commit().await?;
    tracing::warn!(
        import = report.id,
        source = report.source,
        "advisory import failed: {why}"
    );
    Err(AdvisoryError::Invalid(why))
}

async fn record_import(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    report: &ImportReport,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO advisory_imports (id, source, actor, started_ms, finished_ms, added, \
         updated, unchanged, rejected, rejections, error, seq) \
         SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, COALESCE(MAX(seq), 0) + 1 \
         FROM advisory_imports",
    )
    .bind(&report.id)
    .bind(&report.source)
    .bind(&report.actor)
    .bind(report.started_ms)
    .bind(report.finished_ms)
    .bind(report.added as i64)
    .bind(report.updated as i64)
    .bind(report.unchanged as i64)
    .bind(report.rejected as i64)
    .bind(serde_json::to_string(&report.rejections).unwrap_or_else(|_| "[]".into()))
    .bind(&report.error)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Past imports, newest first.
pub async fn imports(db: &Db, limit: i64) -> Result<Vec<ImportReport>, sqlx::Error> {
    type Row = (
        String,
        String,
        String,
        i64,
        i64,
        i64,
        i64,
        i64,
        i64,
        String,
        Option<String>,
    );
    let rows: Vec<Row> = sqlx::query_as(
        "SELECT id, source, actor, started_ms, finished_ms, added, updated, unchanged, \
         rejected, rejections, error FROM advisory_imports ORDER BY started_ms DESC, id LIMIT $1",
    )
    .bind(limit)
    .fetch_all(db)
    .await?;
    Ok(rows
        .into_iter()
        .map(
            |(id, source, actor, started_ms, finished_ms, a, u, n, r, rejections, error)| {
                ImportReport {
                    id,
                    source,
                    actor,
                    started_ms,
                    finished_ms,
                    added: a as usize,
                    updated: u as usize,
                    unchanged: n as usize,
                    rejected: r as usize,
                    rejections: serde_json::from_str(&rejections).unwrap_or_default(),
                    error,
                    rescanned: 0,
                    changed: BTreeSet::new(),
                }
            },
        )
        .collect())
}

/// What `GET /advisories` filters on.
#[derive(Debug, Default)]
pub struct Filter {
    pub ecosystem: Option<String>,
    pub package: Option<String>,
    /// An advisory id or an alias (a CVE id).
    pub id: Option<String>,
    /// Only ids after this one (paging).
    pub after: Option<String>,
    pub limit: i64,
}

/// Advisories matching `filter`, by id.
pub async fn list(db: &Db, filter: &Filter) -> Result<Vec<AdvisorySummary>, sqlx::Error> {
    let mut q = Sql::new(SUMMARY);
    q.push(" a WHERE 1 = 1");
    if filter.ecosystem.is_some() || filter.package.is_some() {
        q.push(" AND EXISTS (SELECT 1 FROM advisory_packages ap WHERE ap.advisory_id = a.id");
        if let Some(e) = &filter.ecosystem {
            q.push(" AND ap.ecosystem = ").push_bind(e);
        }
        if let Some(n) = &filter.package {
            q.push(" AND ap.name = ").push_bind(n);
        }
        q.push(")");
    }
    if let Some(id) = &filter.id {
        q.push(" AND (a.id = ")
            .push_bind(id)
            .push(" OR EXISTS (SELECT 1 FROM advisory_aliases al WHERE al.advisory_id = a.id AND al.alias = ")
            .push_bind(id)
            .push("))");
    }
    if let Some(after) = &filter.after {
        q.push(" AND a.id > ").push_bind(after);
    }
    q.push(" ORDER BY a.id LIMIT ").push_bind(filter.limit);
    q.build_query_as().fetch_all(db).await
}

/// What `id` finds: the record with that id, else those listing it as an
/// alias.
pub enum Found {
    One(Box<AdvisoryView>),
    None,
    /// Several records list the alias.
    Several(Vec<String>),
}

pub async fn get(db: &Db, id: &str) -> Result<Found, sqlx::Error> {
    // The record with that id, else those listing it as an alias.
    let ids: Vec<(String,)> = sqlx::query_as(
        "SELECT id FROM advisories WHERE id = $1 UNION ALL \
         SELECT advisory_id FROM advisory_aliases WHERE alias = $1 \
           AND NOT EXISTS (SELECT 1 FROM advisories WHERE id = $1) ORDER BY 1",
    )
    .bind(id)
    .fetch_all(db)
    .await?;
    let ids: Vec<String> = ids.into_iter().map(|(i,)| i).collect();
    match ids.len() {
        0 => Ok(Found::None),
        1 => Ok(Found::One(Box::new(view(db, &ids[0]).await?))),
        _ => Ok(Found::Several(ids)),
    }
}

async fn view(db: &Db, id: &str) -> Result<AdvisoryView, sqlx::Error> {
    let summary: AdvisorySummary = sqlx::query_as(&format!("{SUMMARY} WHERE id = $1"))
        .bind(id)
        .fetch_one(db)
        .await?;
    let (record,): (String,) = sqlx::query_as("SELECT record FROM advisories WHERE id = $1")
        .bind(id)
        .fetch_one(db)
        .await?;
    let aliases: Vec<(String,)> =
        sqlx::query_as("SELECT alias FROM advisory_aliases WHERE advisory_id = $1 ORDER BY alias")
            .bind(id)
            .fetch_all(db)
            .await?;
    let packages: Vec<AffectedPackage> = sqlx::query_as(
        "SELECT ecosystem, name FROM advisory_packages WHERE advisory_id = $1 \
         ORDER BY ecosystem, name",
    )
    .bind(id)
    .fetch_all(db)
    .await?;
    Ok(AdvisoryView {
        summary,
        aliases: aliases.into_iter().map(|(a,)| a).collect(),
        packages,
        record: serde_json::from_str(&record).unwrap_or(serde_json::Value::Null),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_times_compare_as_instants() {
        assert!(later("2024-01-02T00:00:00Z", "2024-01-01T23:59:59Z"));
        assert!(!later("2024-01-01T00:00:00Z", "2024-01-01T00:00:00.000Z"));
        assert!(later("2024-01-01T00:00:00.5Z", "2024-01-01T00:00:00.25Z"));
        // 01:00 at +02:00 is 23:00 the day before.
        assert!(!later("2024-01-02T01:00:00+02:00", "2024-01-01T23:30:00Z"));
        assert!(later(
            "2023-10-11T19:47:24.789222646Z",
            "2023-10-11T19:47:24Z"
        ));
        assert_eq!(unix_ms("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(unix_ms("2000-03-01T00:00:00.5Z"), Some(951_868_800_500));
        assert_eq!(rfc3339(951_868_800_000), "2000-03-01T00:00:00Z");
        assert_eq!(unix_ms("yesterday"), None);
    }
}
