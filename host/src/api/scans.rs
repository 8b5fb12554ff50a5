//! Scan reports: one package's findings, and a distribution's packages by
//! scan state with counts per severity.

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::{Path, Query, State};
use serde::Serialize;

use super::{AppState, Problem};
use crate::catalog::{self, PackageRecord};
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
    if let Some(scan) = crate::scan::of(&state.db, &id)
        .await
        .map_err(Problem::internal)?
    {
        return Ok(Json(scan));
    }
    let mut scans = crate::scan::scan(&state.db, &state.plugins, &[id.as_str()])
        .await
        .map_err(Problem::internal)?;
    scans.pop().map(Json).ok_or_else(|| {
        Problem::not_found(format!(
            "package {id} is in a distribution no loaded plugin declares: it is not scanned"
        ))
    })
}

#[derive(serde::Deserialize, utoipa::IntoParams)]
pub struct ScansQuery {
    /// Only this distribution's current packages.
    distribution: Option<String>,
    /// `clean` or `findings`.
    state: Option<String>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct ScanRow {
    pub package: PackageRecord,
    pub state: String,
    pub worst: String,
    pub findings: i64,
    pub scanned_ms: i64,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct ScanReport {
    /// Packages per state.
    pub states: BTreeMap<String, i64>,
    /// Packages per worst severity (`none` when clean).
    pub worst: BTreeMap<String, i64>,
    pub packages: Vec<ScanRow>,
}

const STATES: [&str; 2] = ["clean", "findings"];

#[utoipa::path(
    get,
    path = "/scans",
    tag = "scans",
    summary = "Scanned packages (current ones of every or one distribution) by state, with counts per state and worst severity (reader)",
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
    if let Some(d) = &q.distribution
        && state.plugins.registry().distribution(d).is_none()
    {
        return Err(Problem::not_found(format!(
            "no distribution {d}; GET /api/v1/distributions lists them"
        )));
    }
    let filter = catalog::Filter {
        distribution: q.distribution.clone(),
        name: None,
        architecture: None,
    };
    let packages = catalog::list(&state.db, &filter)
        .await
        .map_err(Problem::internal)?;
    let heads: Vec<(String, i64, i64, String)> =
        sqlx::query_as("SELECT package_id, scanned_ms, findings, worst FROM scans")
            .fetch_all(&state.db)
            .await
            .map_err(Problem::internal)?;
    let heads: std::collections::HashMap<String, (i64, i64, String)> = heads
        .into_iter()
        .map(|(id, at, n, worst)| (id, (at, n, worst)))
        .collect();
    let mut report = ScanReport {
        states: BTreeMap::new(),
        worst: BTreeMap::new(),
        packages: Vec::new(),
    };
    for package in packages {
        let Some((scanned_ms, findings, worst)) = heads.get(&package.id).cloned() else {
            continue;
        };
        let row_state = if findings == 0 { "clean" } else { "findings" };
        *report.states.entry(row_state.to_owned()).or_default() += 1;
        *report.worst.entry(worst.clone()).or_default() += 1;
        if q.state.as_deref().is_none_or(|s| s == row_state) {
            report.packages.push(ScanRow {
                package,
                state: row_state.to_owned(),
                worst,
                findings,
                scanned_ms,
            });
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
    let ids: Vec<(String,)> = sqlx::query_as("SELECT id FROM packages")
        .fetch_all(&state.db)
        .await
        .map_err(Problem::internal)?;
    let ids: Vec<&str> = ids.iter().map(|(id,)| id.as_str()).collect();
    let scans = crate::scan::scan(&state.db, &state.plugins, &ids)
        .await
        .map_err(Problem::internal)?;
    Ok(Json(Rescanned {
        scanned: scans.len(),
        with_findings: scans.iter().filter(|s| !s.findings.is_empty()).count(),
    }))
}
