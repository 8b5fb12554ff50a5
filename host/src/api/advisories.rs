//! Vulnerability advisories over HTTP: import OSV records (admin), list
//! and show them, and the import history.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use serde::Serialize;

use super::{AppState, Problem};
use crate::advisories::{self, AdvisoryError, AdvisorySummary, AdvisoryView, Found, ImportReport};
use crate::tokens::{Caller, Role};

/// The largest advisory file an admin may upload (an OSV `all.zip` of one
/// ecosystem is tens of MiB).
pub const MAX_ADVISORY_BYTES: usize = 512 << 20;

impl From<AdvisoryError> for Problem {
    fn from(e: AdvisoryError) -> Problem {
        match e {
            AdvisoryError::Invalid(m) => Problem::bad_request(format!(
                "{m}; nothing was imported (GET /api/v1/advisories/imports has the history)"
            )),
            AdvisoryError::Db(_) => Problem::internal(e),
        }
    }
}

#[utoipa::path(
    post,
    path = "/advisories",
    tag = "advisories",
    summary = "Import OSV advisories: one record, a JSON array of records, or a zip of *.json records (admin)",
    security(("bearer" = [])),
    request_body(content = Vec<u8>, content_type = "application/octet-stream", description = "the file"),
    responses((status = 200, description = "imported; rejected records are listed with why", body = ImportReport), (status = 400, description = "the file as a whole is unusable (not JSON or zip, a zip bomb, no valid record): nothing imported"), (status = 401, description = "missing or unknown token"), (status = 403, description = "role too weak"), (status = 413, description = "larger than 512 MiB"))
)]
pub async fn import(
    State(state): State<AppState>,
    caller: Caller,
    body: Bytes,
) -> Result<Json<ImportReport>, Problem> {
    caller.require(Role::Admin)?;
    if body.is_empty() {
        return Err(Problem::bad_request(
            "the body is empty: send an OSV record, a JSON array of records, or a zip of them",
        ));
    }
    let mut report = advisories::import(
        &state.db,
        body.to_vec(),
        "upload",
        &caller.name,
        repod_osv::Limits::default(),
    )
    .await?;
    report.rescanned = rescan(&state, &report).await?;
    Ok(Json(report))
}

#[derive(serde::Deserialize, utoipa::IntoParams)]
pub struct AdvisoryQuery {
    /// An OSV ecosystem (`<name>:<release>`), as a distribution's
    /// `vulnerability.osv` names it.
    ecosystem: Option<String>,
    /// A package name as the records name it (a source package for the
    /// deb families).
    package: Option<String>,
    /// An advisory id or an alias (e.g. a CVE id).
    id: Option<String>,
    /// Only ids after this one (the next page).
    after: Option<String>,
    /// At most this many (default 100, at most 1000).
    limit: Option<i64>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct AdvisoryList {
    pub advisories: Vec<AdvisorySummary>,
    /// The `after` of the next page, when this one is full.
    pub next: Option<String>,
}

#[utoipa::path(
    get,
    path = "/advisories",
    tag = "advisories",
    summary = "List advisories by ecosystem, package name, id or alias",
    security(("bearer" = [])),
    params(AdvisoryQuery),
    responses((status = 200, description = "advisories, by id", body = AdvisoryList), (status = 400, description = "bad limit"), (status = 401, description = "missing or unknown token"))
)]
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    Query(q): Query<AdvisoryQuery>,
) -> Result<Json<AdvisoryList>, Problem> {
    caller.require(Role::Reader)?;
    let limit = q.limit.unwrap_or(100);
    if !(1..=1000).contains(&limit) {
        return Err(Problem::bad_request(format!(
            "limit {limit} is out of range: 1 to 1000"
        )));
    }
    let filter = advisories::Filter {
        ecosystem: q.ecosystem,
        package: q.package,
        id: q.id,
        after: q.after,
        limit,
    };
    let found = advisories::list(&state.db, &filter)
        .await
        .map_err(Problem::internal)?;
    let next = (found.len() as i64 == limit)
        .then(|| found.last().map(|a| a.id.clone()))
        .flatten();
    Ok(Json(AdvisoryList {
        advisories: found,
        next,
    }))
}

#[utoipa::path(
    get,
    path = "/advisories/{id}",
    tag = "advisories",
    summary = "One advisory in full, by its id or an alias that only it lists",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "an advisory id (ALSA-2023:0959) or alias (CVE-2023-38545)")),
    responses((status = 200, description = "the advisory", body = AdvisoryView), (status = 300, description = "several advisories list this alias; the detail names them"), (status = 404, description = "no such advisory or alias"), (status = 401, description = "missing or unknown token"))
)]
pub async fn show(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<AdvisoryView>, Problem> {
    caller.require(Role::Reader)?;
    match advisories::get(&state.db, &id)
        .await
        .map_err(Problem::internal)?
    {
        Found::One(view) => Ok(Json(*view)),
        Found::None => Err(Problem::not_found(format!(
            "no advisory has the id or alias {id}; POST /api/v1/advisories imports records"
        ))),
        Found::Several(ids) => Err(Problem::new(
            StatusCode::MULTIPLE_CHOICES,
            "several-advisories",
            format!(
                "{} advisories list {id}: {}; GET /api/v1/advisories/{{id}} with one of them, or \
                 GET /api/v1/advisories?id={id} for all",
                ids.len(),
                ids.join(", ")
            ),
        )),
    }
}

#[derive(serde::Deserialize, utoipa::IntoParams)]
pub struct ImportsQuery {
    /// At most this many, newest first (default 50, at most 1000).
    limit: Option<i64>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct ImportList {
    pub imports: Vec<ImportReport>,
}

#[utoipa::path(
    get,
    path = "/advisories/imports",
    tag = "advisories",
    summary = "Advisory imports, newest first, with what each did and what it rejected",
    security(("bearer" = [])),
    params(ImportsQuery),
    responses((status = 200, description = "imports", body = ImportList), (status = 400, description = "bad limit"), (status = 401, description = "missing or unknown token"))
)]
pub async fn imports(
    State(state): State<AppState>,
    caller: Caller,
    Query(q): Query<ImportsQuery>,
) -> Result<Json<ImportList>, Problem> {
    caller.require(Role::Reader)?;
    let limit = q.limit.unwrap_or(50);
    if !(1..=1000).contains(&limit) {
        return Err(Problem::bad_request(format!(
            "limit {limit} is out of range: 1 to 1000"
        )));
    }
    let imports = advisories::imports(&state.db, limit)
        .await
        .map_err(Problem::internal)?;
    Ok(Json(ImportList { imports }))
}

/// Scans again the packages `report`'s changed advisories name (and those
/// never scanned); how many.
async fn rescan(state: &AppState, report: &ImportReport) -> Result<usize, Problem> {
    crate::scan::rescan_after(&state.db, &state.plugins, &state.packages.policies, report)
        .await
        .map_err(|e| {
            Problem::internal(format!(
                "the advisories were imported, but scanning the packages they name failed: {e}"
            ))
        })
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct SyncAnswer {
    pub feeds: Vec<crate::feeds::Synced>,
}

#[utoipa::path(
    post,
    path = "/advisories/sync",
    tag = "advisories",
    summary = "Sync every configured advisory feed now (conditional requests; a failing feed keeps its last good data) and re-scan what changed (admin)",
    security(("bearer" = [])),
    responses((status = 200, description = "each feed's outcome", body = SyncAnswer), (status = 409, description = "no feeds are configured ([advisories] feeds)"), (status = 401, description = "missing or unknown token"), (status = 403, description = "role too weak"))
)]
pub async fn sync(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<SyncAnswer>, Problem> {
    caller.require(Role::Admin)?;
    if state.feeds.feeds.is_empty() {
        return Err(Problem::new(
            StatusCode::CONFLICT,
            "no-feeds",
            "no advisory feeds are configured: name them in [advisories] feeds, or import files \
             with POST /api/v1/advisories",
        ));
    }
    let mut feeds = Vec::new();
    for source in &state.feeds.feeds {
        let synced = crate::feeds::sync_and_rescan(
            &state.db,
            &state.plugins,
            &state.packages.policies,
            source,
        )
        .await
        .map_err(Problem::internal)?;
        feeds.push(synced);
    }
    let detail = feeds
        .iter()
        .map(|f| format!("{}: {}", f.source, f.status))
        .collect::<Vec<_>>()
        .join("; ");
    let mut conn = state.db.acquire().await.map_err(Problem::internal)?;
    crate::audit::record(&mut conn, &caller.name, "advisories.sync", "feeds", &detail)
        .await
        .map_err(Problem::internal)?;
    Ok(Json(SyncAnswer { feeds }))
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct FeedList {
    /// Feeds the config names, and what each last sync saw (absent: never
    /// synced).
    pub configured: Vec<String>,
    pub states: Vec<crate::feeds::FeedState>,
    /// Minutes between scheduled syncs; none: on demand only.
    pub sync_every_minutes: Option<u64>,
}

#[utoipa::path(
    get,
    path = "/advisories/feeds",
    tag = "advisories",
    summary = "The configured advisory feeds and their last syncs",
    security(("bearer" = [])),
    responses((status = 200, description = "feeds", body = FeedList), (status = 401, description = "missing or unknown token"))
)]
pub async fn feeds(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<FeedList>, Problem> {
    caller.require(Role::Reader)?;
    let states = crate::feeds::states(&state.db)
        .await
        .map_err(Problem::internal)?;
    Ok(Json(FeedList {
        configured: state.feeds.feeds.clone(),
        states,
        sync_every_minutes: state.feeds.every.map(|d| d.as_secs() / 60),
    }))
}
