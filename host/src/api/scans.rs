//! Scan reports: one package's findings, and a distribution's packages by
//! scan state with counts per severity.

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use serde::Serialize;

use super::{AppState, Problem};
use crate::catalog::{self, PackageRecord};
use crate::lifecycle::{Decided, DecisionRequest};
use crate::scan::Scan;
use crate::tokens::{Caller, Role};

#[utoipa::path(
    get,
    path = "/packages/{id}/scan",
    tag = "scans",
    summary = "A package's latest scan: its findings, worst first (reader)",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "package id")),
    responses((status = 200, description = "the scan", body = Scan), (status = 404, description = "no such package"), (status = 401, description = "missing or unknown token"))
)]
pub async fn package(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<Scan>, Problem> {
    caller.require(Role::Reader)?;
    if catalog::get(&state.db, &id)
        .await
        .map_err(Problem::internal)?
        .is_none()
    {
        return Err(Problem::not_found(format!("no package with id {id}")));
    }
    let scan = crate::scan::current(&state.db, &state.plugins, &state.packages.policies, &id)
        .await
        .map_err(Problem::internal)?;
    scan.map(Json).ok_or_else(|| {
        Problem::not_found(format!(
            "package {id} is in a distribution no loaded plugin declares: it is not scanned"
        ))
    })
}

#[derive(serde::Deserialize, utoipa::IntoParams)]
pub struct ScansQuery {
    /// Only this distribution's current packages.
    distribution: Option<String>,
    /// clean, findings, quarantined, blocked, approved or rejected.
    state: Option<String>,
    /// Packages listed from this place on (the `next_offset` of the page
    /// before); the counts are of every page, in every state.
    offset: Option<i64>,
    /// Packages listed at most: 1 to 10000, default 1000.
    limit: Option<i64>,
    /// Only packages of this name.
    name: Option<String>,
    /// Only packages whose name contains this, ignoring case.
    search: Option<String>,
    /// Only packages of this architecture.
    architecture: Option<String>,
    /// List each listed package's findings too (a review queue's page).
    #[serde(default)]
    with_findings: bool,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct ScanRow {
    pub package: PackageRecord,
    pub state: String,
    pub worst: String,
    pub findings: i64,
    pub scanned_ms: i64,
    /// The findings themselves, worst first, when `with_findings` asked.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub finding_list: Option<Vec<crate::scan::Finding>>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct ScanReport {
    /// Packages per state.
    pub states: BTreeMap<String, i64>,
    /// Packages per worst severity (`none` when clean).
    pub worst: BTreeMap<String, i64>,
    /// One page of the packages (`offset`, `limit`).
    pub packages: Vec<ScanRow>,
    /// The `offset` of the next page, while there is one.
    pub next_offset: Option<i64>,
}

const STATES: [&str; 6] = [
    "clean",
    "findings",
    "quarantined",
    "blocked",
    "approved",
    "rejected",
];

#[utoipa::path(
    get,
    path = "/scans",
    tag = "scans",
    summary = "Scanned packages of every or one distribution (current, held back, rejected) by state, with counts per state and worst severity (reader)",
    security(("bearer" = [])),
    params(ScansQuery),
    responses((status = 200, description = "the report", body = ScanReport), (status = 400, description = "unknown state"), (status = 404, description = "unknown distribution"), (status = 401, description = "missing or unknown token"))
)]
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    Query(q): Query<ScansQuery>,
) -> Result<Json<ScanReport>, Problem> {
    caller.require(Role::Reader)?;
    if let Some(s) = &q.state
        && !STATES.contains(&s.as_str())
    {
        return Err(Problem::bad_request(format!(
            "unknown state {s:?}: one of {}",
            STATES.join(", ")
        )));
    }
    let limit = q.limit.unwrap_or(1000);
    if !(1..=10_000).contains(&limit) {
        return Err(Problem::bad_request(format!(
            "limit {limit} is out of range: 1 to 10000"
        )));
    }
    let offset = q.offset.unwrap_or(0);
    if offset < 0 {
        return Err(Problem::bad_request(format!(
            "offset {offset} is negative: pages start at 0"
        )));
    }
    if let Some(d) = &q.distribution
        && state.plugins.registry().distribution(d).is_none()
    {
        return Err(Problem::not_found(format!(
            "no distribution {d}; GET /api/v1/distributions lists them"
        )));
    }
    // Current packages and held ones (quarantined, or rejected), with
    // their latest scans.
    #[derive(sqlx::FromRow)]
    struct Scanned {
        #[sqlx(flatten)]
        package: PackageRecord,
        scanned_ms: i64,
        findings: i64,
        worst: String,
        state: String,
    }
    let sql = format!(
        "SELECT {}, s.scanned_ms, s.findings, s.worst, s.state FROM packages p \
         JOIN blobs b ON b.sha256 = p.sha256 JOIN scans s ON s.package_id = p.id \
         WHERE (p.held = TRUE OR EXISTS (SELECT 1 FROM memberships m WHERE m.package_id = p.id \
         AND m.removed_in IS NULL)) {} ORDER BY p.distribution, p.name, p.version, p.architecture",
        catalog::COLUMNS,
        if q.distribution.is_some() {
            "AND p.distribution = $1"
        } else {
            ""
        }
    );
    let mut rebuilt = sqlx::query_as::<_, Scanned>(&sql);
    if let Some(d) = &q.distribution {
        rebuilt = rebuilt.bind(d);
    }
    let rows: Vec<Scanned> = rebuilt
        .fetch_all(&state.db)
        .await
        .map_err(Problem::internal)?;
    let mut report = ScanReport {
        states: BTreeMap::new(),
        worst: BTreeMap::new(),
        packages: Vec::new(),
        next_offset: None,
    };
    let search = q.search.as_deref().map(str::to_lowercase);
    let mut listed = 0i64;
    for row in rows {
        // Name and architecture narrow the counts too (like distribution);
        // the state filter and the page do not.
        let selected = q.name.as_deref().is_none_or(|n| n == row.package.name)
            && search
                .as_deref()
                .is_none_or(|s| row.package.name.to_lowercase().contains(s))
            && (q.architecture.as_deref()).is_none_or(|a| a == row.package.architecture);
        if !selected {
            continue;
        }
        *report.states.entry(row.state.clone()).or_default() += 1;
        *report.worst.entry(row.worst.clone()).or_default() += 1;
        if q.state.as_deref().is_none_or(|s| s == row.state) {
            listed += 1;
            if listed <= offset {
                continue;
            }
            if report.packages.len() as i64 == limit {
                report.next_offset = Some(offset + limit);
                continue;
            }
            report.packages.push(ScanRow {
                package: row.package,
                state: row.state,
                worst: row.worst,
                findings: row.findings,
                scanned_ms: row.scanned_ms,
                finding_list: None,
            });
        }
    }
    if q.with_findings {
        let ids: Vec<&str> = report
            .packages
            .iter()
            .map(|r| r.package.id.as_str())
            .collect();
        let mut found = crate::scan::stored(&state.db, &ids)
            .await
            .map_err(Problem::internal)?;
        for row in &mut report.packages {
            row.finding_list = Some(
                found
                    .remove(&row.package.id)
                    .map(|(_, f)| f)
                    .unwrap_or_default(),
            );
        }
    }
    Ok(Json(report))
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct Rescanned {
    pub scanned: usize,
    pub with_findings: usize,
}

#[utoipa::path(
    post,
    path = "/scans/rescan",
    tag = "scans",
    summary = "Scan every stored package again against every stored advisory (admin); imports re-scan only what they change",
    security(("bearer" = [])),
    responses((status = 200, description = "every package scanned", body = Rescanned), (status = 401, description = "missing or unknown token"), (status = 403, description = "role too weak"))
)]
pub async fn rescan(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<Rescanned>, Problem> {
    caller.require(Role::Admin)?;
    let scans = crate::scan::scan_all(&state.db, &state.plugins, &state.packages.policies)
        .await
        .map_err(Problem::internal)?;
    Ok(Json(Rescanned {
        scanned: scans.len(),
        with_findings: scans.iter().filter(|s| !s.findings.is_empty()).count(),
    }))
}

#[utoipa::path(
    post,
    path = "/packages/{id}/decision",
    tag = "scans",
    summary = "Approve or reject a package's findings, with a justification; approving a quarantined package publishes it, rejecting a published one removes it (maintainer)",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "package id")),
    request_body = DecisionRequest,
    responses((status = 201, description = "decided; a new version was made", body = Decided), (status = 200, description = "decided; the distribution's content did not change", body = Decided), (status = 400, description = "not approve/reject, empty justification, or a bad or past expiry"), (status = 404, description = "no such package"), (status = 401, description = "missing or unknown token"), (status = 403, description = "role too weak"))
)]
pub async fn decide(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    request: Result<Json<DecisionRequest>, axum::extract::rejection::JsonRejection>,
) -> Result<(StatusCode, Json<Decided>), Problem> {
    caller.require(Role::Maintainer)?;
    let request = super::lifecycle::body(
        request,
        r#"{"decision": "approve" | "reject", "justification": "why"} plus optional "expires""#,
    )?;
    let decided = state.packages.decide(&id, &request, &caller).await?;
    let status = super::lifecycle::status_of(decided.distribution_version.is_some());
    Ok((status, Json(decided)))
}
