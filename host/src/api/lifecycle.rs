//! Rollout tiers over HTTP: promotion, migration, init, repository
//! versions and rollback. The first three are the seed's documented
//! endpoints, with its JSON bodies.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::Serialize;

use super::{AppState, Problem};
use crate::catalog::{self, PackageRecord, VersionRecord};
use crate::lifecycle::{
    LifecycleError, MigrateRequest, Migrated, PromoteRequest, Promoted, RollbackRequest, RolledBack,
};
use crate::publish::Report;
use crate::tokens::{Caller, Role};

impl From<LifecycleError> for Problem {
    fn from(e: LifecycleError) -> Problem {
        match e {
            LifecycleError::NotFound(m) => Problem::not_found(m),
            LifecycleError::BadRequest(m) => Problem::bad_request(m),
            LifecycleError::Conflict(m) => Problem::new(StatusCode::CONFLICT, "conflict", m),
            LifecycleError::Rejected(m) => {
                Problem::new(StatusCode::UNPROCESSABLE_ENTITY, "rejected", m)
            }
            LifecycleError::Blocked { ref scan, .. } => Problem::blocked(e.to_string(), scan),
            LifecycleError::Plugin(p) => p.into(),
            LifecycleError::Publish { .. } => {
                tracing::error!("{e}");
                Problem::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "publish-failed",
                    format!(
                        "{e}; the change is committed and the next publish retries it \
                         (POST /api/v1/distributions/{{id}}/publish)"
                    ),
                )
            }
            LifecycleError::Io(_) | LifecycleError::Db(_) => Problem::internal(e),
        }
    }
}

/// `serde_json` rejections of a request body as a 400 problem that names
/// the fields expected.
pub(super) fn body<T>(
    body: Result<Json<T>, axum::extract::rejection::JsonRejection>,
    expected: &str,
) -> Result<T, Problem> {
    body.map(|Json(b)| b).map_err(|e| {
        Problem::bad_request(format!("{}; the body is JSON: {expected}", e.body_text()))
    })
}

pub(super) fn status_of(changed: bool) -> StatusCode {
    if changed {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    }
}

#[utoipa::path(
    post,
    path = "/distributions/promote",
    tag = "lifecycle",
    summary = "Promote a package to another distribution of its family, by reference; returns once the target's tree shows it (maintainer)",
    security(("bearer" = [])),
    request_body = PromoteRequest,
    responses((status = 201, description = "promoted", body = Promoted), (status = 200, description = "already there: nothing changed", body = Promoted), (status = 400, description = "malformed body, same distribution twice, or different families"), (status = 404, description = "unknown distribution, or no such package/version/architecture in from_dist"), (status = 409, description = "architectures the target does not support, or a different file with this name/version/architecture in the target"), (status = 422, description = "the target's plugin refuses it"), (status = 401, description = "missing or unknown token"), (status = 403, description = "role too weak"))
)]
pub async fn promote(
    State(state): State<AppState>,
    caller: Caller,
    request: Result<Json<PromoteRequest>, axum::extract::rejection::JsonRejection>,
) -> Result<(StatusCode, Json<Promoted>), Problem> {
    caller.require(Role::Maintainer)?;
    let request = body(
        request,
        r#"{"package": "NAME", "from_dist": "DIST", "to_dist": "DIST"} plus optional "version", "architecture", "reason""#,
    )?;
    let promoted = state.packages.promote(&request, &caller).await?;
    tracing::info!(
        by = caller.name,
        package = promoted.package,
        version = promoted.version,
        from = promoted.from_dist,
        to = promoted.to_dist,
        added = promoted.promoted.len(),
        "promoted"
    );
    Ok((status_of(!promoted.promoted.is_empty()), Json(promoted)))
}

#[utoipa::path(
    post,
    path = "/distributions/migrate",
    tag = "lifecycle",
    summary = "Copy every package of a distribution into another of its family, by reference, in one version and one publish (maintainer)",
    security(("bearer" = [])),
    request_body = MigrateRequest,
    responses((status = 200, description = "counts, and the reason for every skipped package", body = Migrated), (status = 400, description = "malformed body, same distribution twice, or different families"), (status = 404, description = "unknown distribution"), (status = 401, description = "missing or unknown token"), (status = 403, description = "role too weak"))
)]
pub async fn migrate(
    State(state): State<AppState>,
    caller: Caller,
    request: Result<Json<MigrateRequest>, axum::extract::rejection::JsonRejection>,
) -> Result<Json<Migrated>, Problem> {
    caller.require(Role::Maintainer)?;
    let request = body(
        request,
        r#"{"from_dist": "DIST", "to_dist": "DIST"} plus an optional "reason""#,
    )?;
    let migrated = state.packages.migrate(&request, &caller).await?;
    tracing::info!(
        by = caller.name,
        from = migrated.from_dist,
        to = migrated.to_dist,
        copied = migrated.copied,
        present = migrated.already_present,
        skipped = migrated.skipped,
        "migrated"
    );
    Ok(Json(migrated))
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct Initialized {
    /// One publish report per distribution.
    pub published: Vec<Report>,
    /// Distributions whose rebuild failed, with why.
    pub failed: Vec<Failed>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct Failed {
    pub distribution: String,
    pub error: String,
}

#[utoipa::path(
    post,
    path = "/distributions/init",
    tag = "lifecycle",
    summary = "Rebuild every published tree from the database and the blob store, e.g. after a backup was restored without the tree (admin)",
    security(("bearer" = [])),
    responses((status = 200, description = "every tree rebuilt", body = Initialized), (status = 500, description = "some trees could not be rebuilt; detail says which"), (status = 401, description = "missing or unknown token"), (status = 403, description = "role too weak"))
)]
pub async fn init(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<Initialized>, Problem> {
    caller.require(Role::Admin)?;
    let mut published = Vec::new();
    let mut failed = Vec::new();
    for (dist, result) in state.publisher.rebuild_all(&state.plugins).await {
        match result {
            Ok(report) => published.push(report),
            Err(e) => failed.push(Failed {
                distribution: dist,
                error: e.to_string(),
            }),
        }
    }
    let detail = format!(
        "{} trees rebuilt{}",
        published.len(),
        if failed.is_empty() {
            String::new()
        } else {
            format!(
                ", failed: {}",
                failed
                    .iter()
                    .map(|f| f.distribution.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        }
    );
    let mut conn = state.db.acquire().await.map_err(Problem::internal)?;
    crate::audit::record(&mut conn, &caller.name, "distribution.init", "*", &detail)
        .await
        .map_err(Problem::internal)?;
    tracing::info!(by = caller.name, "init: {detail}");
    if !failed.is_empty() {
        return Err(Problem::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "init-failed",
            format!(
                "{detail}: {}; the daemon log has the details",
                failed
                    .iter()
                    .map(|f| format!("{}: {}", f.distribution, f.error))
                    .collect::<Vec<_>>()
                    .join("; ")
            ),
        ));
    }
    Ok(Json(Initialized { published, failed }))
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct VersionList {
    pub distribution: String,
    /// The newest version (0: none yet).
    pub latest: i64,
    /// The oldest version retention keeps.
    pub oldest: Option<i64>,
    /// The version the live tree at /repos/ shows.
    pub published: Option<i64>,
    /// Kept versions, newest first: at most `limit`, below `before`.
    pub versions: Vec<VersionRecord>,
}

#[derive(serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct VersionPage {
    /// At most this many (default 100, at most 1000).
    limit: Option<i64>,
    /// Only versions below this number (the next page starts below the
    /// last one shown).
    before: Option<i64>,
}

/// 404 unless a loaded plugin declares `id`.
fn known(state: &AppState, id: &str) -> Result<(), Problem> {
    if state.plugins.registry().distribution(id).is_none() {
        return Err(super::distributions::unknown(id));
    }
    Ok(())
}

#[utoipa::path(
    get,
    path = "/distributions/{id}/versions",
    tag = "lifecycle",
    summary = "Kept versions of a distribution, newest first (reader)",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "distribution id"), VersionPage),
    responses((status = 200, description = "versions", body = VersionList), (status = 400, description = "a limit out of range"), (status = 404, description = "unknown distribution"), (status = 401, description = "missing or unknown token"), (status = 403, description = "role too weak"))
)]
pub async fn versions(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    axum::extract::Query(page): axum::extract::Query<VersionPage>,
) -> Result<Json<VersionList>, Problem> {
    caller.require(Role::Reader)?;
    known(&state, &id)?;
    let limit = page.limit.unwrap_or(100);
    if !(1..=1000).contains(&limit) {
        return Err(Problem::bad_request(format!(
            "limit {limit}: ask for 1 to 1000 versions per page (and ?before= for the next page)"
        )));
    }
    let versions = catalog::versions::list(&state.db, &id, page.before, limit)
        .await
        .map_err(Problem::internal)?;
    let kept = catalog::versions::kept(&state.db, &id)
        .await
        .map_err(Problem::internal)?;
    Ok(Json(VersionList {
        published: state.publisher.shown(&id),
        distribution: id,
        latest: kept.map_or(0, |k| k.1),
        oldest: kept.map(|k| k.0),
        versions,
    }))
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct VersionView {
    #[serde(flatten)]
    pub version: VersionRecord,
    /// Where apt/dnf can read this version, whatever the distribution does
    /// next (relative to the daemon; client-config?version=N gives the
    /// whole source entry).
    pub tree: String,
    pub added_packages: Vec<PackageRecord>,
    /// What it removed. For the oldest kept version, retention may already
    /// have collected these (a removal frees its space with the next
    /// retention): `removed` still counts them, this list no longer has them.
    pub removed_packages: Vec<PackageRecord>,
    /// Every package of the version.
    pub content: Vec<PackageRecord>,
}

#[utoipa::path(
    get,
    path = "/distributions/{id}/versions/{number}",
    tag = "lifecycle",
    summary = "One version: what it changed and its full content (reader)",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "distribution id"), ("number" = i64, Path, description = "version number")),
    responses((status = 200, description = "the version", body = VersionView), (status = 404, description = "unknown distribution, or a version that does not exist or was collected"), (status = 401, description = "missing or unknown token"), (status = 403, description = "role too weak"))
)]
pub async fn version(
    State(state): State<AppState>,
    caller: Caller,
    Path((id, number)): Path<(String, String)>,
) -> Result<Json<VersionView>, Problem> {
    caller.require(Role::Reader)?;
    known(&state, &id)?;
    let number = version_number(&number)?;
    let Some(version) = catalog::versions::get(&state.db, &id, number)
        .await
        .map_err(Problem::internal)?
    else {
        return Err(not_kept(&state, &id, number).await);
    };
    let (added_packages, removed_packages) = catalog::versions::changed_in(&state.db, &id, number)
        .await
        .map_err(Problem::internal)?;
    let content = catalog::versions::content(&state.db, &id, number)
        .await
        .map_err(Problem::internal)?;
    Ok(Json(VersionView {
        tree: format!("/repos/{}/{id}/{number}/", crate::publish::PINNED_TOP),
        version,
        added_packages,
        removed_packages,
        content,
    }))
}

pub(crate) fn version_number(text: &str) -> Result<i64, Problem> {
    text.parse::<i64>().ok().filter(|n| *n > 0).ok_or_else(|| {
        Problem::bad_request(format!(
            "version {text:?} is not a version number (1, 2, ...)"
        ))
    })
}

/// 404 for a version that does not exist or was collected, saying which
/// are kept.
pub(crate) async fn not_kept(state: &AppState, id: &str, number: i64) -> Problem {
    match catalog::versions::not_kept(&state.db, id, number).await {
        Ok(message) => Problem::not_found(message),
        Err(e) => Problem::internal(e),
    }
}

#[utoipa::path(
    post,
    path = "/distributions/{id}/rollback",
    tag = "lifecycle",
    summary = "Make a new version whose content is exactly version N's, and publish it; body {\"version\": N, \"reason\": \"...\"} (maintainer)",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "distribution id")),
    request_body = RollbackRequest,
    responses((status = 201, description = "rolled back: a new version", body = RolledBack), (status = 200, description = "the content already was version N's: nothing changed", body = RolledBack), (status = 400, description = "malformed body"), (status = 404, description = "unknown distribution, or a version that does not exist or was collected"), (status = 401, description = "missing or unknown token"), (status = 403, description = "role too weak"))
)]
pub async fn rollback(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    request: Result<Json<RollbackRequest>, axum::extract::rejection::JsonRejection>,
) -> Result<(StatusCode, Json<RolledBack>), Problem> {
    caller.require(Role::Maintainer)?;
    known(&state, &id)?;
    let request = body(request, r#"{"version": 3, "reason": "why"}"#)?;
    if request.version < 1 {
        return Err(Problem::bad_request(format!(
            "version {} is not a version number (1, 2, ...)",
            request.version
        )));
    }
    let rolled = state.packages.rollback(&id, &request, &caller).await?;
    tracing::info!(
        by = caller.name,
        distribution = id,
        to = rolled.to,
        added = rolled.added,
        removed = rolled.removed,
        "rolled back"
    );
    Ok((
        status_of(rolled.distribution_version.is_some()),
        Json(rolled),
    ))
}
