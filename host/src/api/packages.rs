//! `/api/v1/packages`: upload, list, show, remove.
//!
//! An upload body is either the raw package (`application/octet-stream`,
//! `?distribution=ID`) or `multipart/form-data` with a `file` field and an
//! optional `distribution` field. Either way it is streamed to disk while
//! hashed; a package is never held in memory.

use axum::Json;
use axum::extract::{Path, Query, Request, State};
use axum::http::{StatusCode, header};
use futures_util::StreamExt;
use serde::Deserialize;

use super::{AppState, Problem};
use crate::blobs::{BlobError, Incoming};
use crate::catalog::{self, Filter, PackageRecord};
use crate::ingest::{IngestError, Outcome, clean_filename};
use crate::tokens::{Caller, Role};
use repod_upload_form::FormError;

#[derive(Deserialize)]
pub struct UploadQuery {
    distribution: Option<String>,
    filename: Option<String>,
    /// Recorded with the version the upload makes.
    reason: Option<String>,
}

/// A package record and the distribution version its arrival (or
/// departure) made.
#[derive(serde::Serialize)]
pub struct Changed {
    #[serde(flatten)]
    package: PackageRecord,
    /// The version number; absent when nothing changed.
    distribution_version: Option<i64>,
    /// What matching it against the stored advisories found, and the
    /// policy's verdict.
    #[serde(skip_serializing_if = "Option::is_none")]
    scan: Option<crate::scan::Scan>,
    /// Why the package is stored but not published (quarantined).
    #[serde(skip_serializing_if = "Option::is_none")]
    held: Option<String>,
}

/// The package's latest scan, scanning it now if it never was. A scan that
/// fails is logged and left out of the answer: the upload itself stands.
async fn scanned(state: &AppState, id: &str) -> Option<crate::scan::Scan> {
    match crate::scan::current(&state.db, &state.plugins, &state.packages.policies, id).await {
        Ok(scan) => scan,
        Err(e) => {
            tracing::error!(package = id, "scan failed: {e}");
            None
        }
    }
}

impl From<IngestError> for Problem {
    fn from(e: IngestError) -> Problem {
        match e {
            IngestError::UnknownDistribution(_) => Problem::not_found(e.to_string()),
            IngestError::Unreadable(ref r) if r.is_bad_input() => Problem::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "unreadable-package",
                e.to_string(),
            ),
            IngestError::Unreadable(_) => Problem::internal(e),
            IngestError::Rejected(_) => {
                Problem::new(StatusCode::UNPROCESSABLE_ENTITY, "rejected", e.to_string())
            }
            IngestError::Conflict { .. }
            | IngestError::Retained { .. }
            | IngestError::PathTaken(_) => {
                Problem::new(StatusCode::CONFLICT, "conflict", e.to_string())
            }
            IngestError::Plugin(p) => p.into(),
            IngestError::Blocked(ref scan) => Problem::blocked(e.to_string(), scan),
            IngestError::Scan(_) | IngestError::Io(_) | IngestError::Db(_) => Problem::internal(e),
        }
    }
}

impl From<BlobError> for Problem {
    fn from(e: BlobError) -> Problem {
        match e {
            BlobError::TooLarge(_) => {
                Problem::new(StatusCode::PAYLOAD_TOO_LARGE, "too-large", e.to_string())
            }
            BlobError::Io(io) => Problem::internal(io),
        }
    }
}

/// A form's `file` field goes straight into the blob store's incoming file.
impl repod_upload_form::Sink for Incoming {
    type Received = crate::blobs::Received;
    type Error = BlobError;
    async fn write(&mut self, chunk: &[u8]) -> Result<(), BlobError> {
        Incoming::write(self, chunk).await
    }
    async fn finish(self) -> Result<Self::Received, BlobError> {
        Incoming::finish(self).await
    }
}

async fn receive_stream(
    mut incoming: Incoming,
    mut stream: impl futures_util::Stream<Item = Result<axum::body::Bytes, axum::Error>> + Unpin,
) -> Result<crate::blobs::Received, Problem> {
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| Problem::bad_request(format!("upload interrupted: {e}")))?;
        incoming.write(&chunk).await?;
    }
    Ok(incoming.finish().await?)
}

#[utoipa::path(
    post,
    path = "/packages",
    tag = "packages",
    summary = "Upload a .deb or .rpm: raw body with ?distribution=ID, or multipart with file and distribution fields (uploader)",
    security(("bearer" = [])),
    params(("distribution" = Option<String>, Query, description = "target distribution"), ("filename" = Option<String>, Query, description = "original file name, informational"), ("reason" = Option<String>, Query, description = "recorded with the version the upload makes")),
    responses((status = 201, description = "added: a new version of the distribution"), (status = 200, description = "the same file was already there"), (status = 400, description = "no distribution, malformed form"), (status = 404, description = "unknown distribution"), (status = 409, description = "a different file has this name, version and architecture (now, or in a kept version)"), (status = 413, description = "over the size cap"), (status = 422, description = "not a valid package, or refused by the distribution"), (status = 401, description = "missing or unknown token"), (status = 403, description = "role too weak"))
)]
pub async fn upload(
    State(state): State<AppState>,
    // Taken as a result so that an upload without a valid token is counted.
    caller: Result<Caller, Problem>,
    Query(query): Query<UploadQuery>,
    request: Request,
) -> Result<(StatusCode, Json<Changed>), Problem> {
    let answer = take_upload(&state, caller, query, request).await;
    let (outcome, stored) = match &answer {
        Ok((StatusCode::CREATED, Json(changed))) => ("added", changed.package.size as u64),
        Ok((StatusCode::ACCEPTED, Json(changed))) => ("quarantined", changed.package.size as u64),
        Ok(_) => ("duplicate", 0),
        Err(p) if p.kind == "blocked" => ("blocked", 0),
        Err(p) if p.status == StatusCode::CONFLICT => ("conflict", 0),
        Err(p) if matches!(p.status, StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN) => {
            ("unauthorized", 0)
        }
        Err(p) if p.status.is_client_error() => ("invalid", 0),
        Err(_) => ("failed", 0),
    };
    state.metrics.upload(outcome, stored);
    answer
}

/// [`upload`] before its outcome is counted.
async fn take_upload(
    state: &AppState,
    caller: Result<Caller, Problem>,
    query: UploadQuery,
    request: Request,
) -> Result<(StatusCode, Json<Changed>), Problem> {
    let caller = caller?;
    caller.require(Role::Uploader)?;
    let limit = state.max_upload;
    let too_large = || Problem::from(BlobError::TooLarge(limit));
    let declared = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit) {
        return Err(too_large());
    }
    // Refuse a named but unknown distribution before reading the body.
    if let Some(dist) = query.distribution.as_deref()
        && state.plugins.registry().distribution(dist).is_none()
    {
        return Err(IngestError::UnknownDistribution(dist.to_owned()).into());
    }
    let multipart = request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .filter(|v| v.starts_with("multipart/form-data"))
        .map(str::to_owned);
    let incoming = state
        .packages
        .blobs
        .incoming(limit)
        .await
        .map_err(Problem::internal)?;

    let (received, distribution, filename) = if let Some(content_type) = multipart {
        let form =
            repod_upload_form::multipart(&content_type, request.into_body().into_data_stream())
                .map_err(|e| Problem::bad_request(format!("malformed multipart body: {e}")))?;
        let form = repod_upload_form::read(form, incoming)
            .await
            .map_err(|e| match e {
                FormError::Sink(e) => Problem::from(e),
                client => Problem::bad_request(client.to_string()),
            })?;
        (
            form.received,
            form.distribution.or(query.distribution),
            query.filename.or(form.filename),
        )
    } else {
        let stream = request.into_body().into_data_stream();
        let received = receive_stream(incoming, stream).await?;
        (received, query.distribution, query.filename)
    };

    let distribution = distribution.filter(|d| !d.is_empty()).ok_or_else(|| {
        Problem::bad_request(
            "which distribution? add ?distribution=ID (GET /api/v1/distributions lists them)",
        )
    })?;
    if received.size == 0 {
        return Err(Problem::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "unreadable-package",
            "empty upload: the body must be a .deb or .rpm file",
        ));
    }
    let filename = clean_filename(filename.as_deref());
    let reason = query.reason.unwrap_or_default();
    let outcome = state
        .packages
        .ingest(received, &distribution, &filename, &caller, &reason)
        .await?;
    Ok(match outcome {
        Outcome::Created(record, version, scan) => {
            tracing::info!(
                by = caller.name,
                id = record.id,
                package = record.name,
                version = record.version,
                dist = record.distribution,
                scan = scan.state,
                "package added"
            );
            (
                StatusCode::CREATED,
                Json(Changed {
                    package: record,
                    distribution_version: version.map(|v| v.number),
                    scan: Some(*scan),
                    held: None,
                }),
            )
        }
        Outcome::Quarantined(record, scan) => {
            tracing::info!(
                by = caller.name,
                id = record.id,
                package = record.name,
                version = record.version,
                dist = record.distribution,
                "package quarantined: {}",
                scan.reason
            );
            let held = format!(
                "stored but not published: {} ({}); a maintainer publishes it with POST \
                 /api/v1/packages/{}/decision {{\"decision\": \"approve\", \"justification\": \"...\"}}",
                scan.state, scan.reason, record.id
            );
            (
                StatusCode::ACCEPTED,
                Json(Changed {
                    package: record,
                    distribution_version: None,
                    scan: Some(*scan),
                    held: Some(held),
                }),
            )
        }
        Outcome::Existing(record) => (
            StatusCode::OK,
            Json(Changed {
                scan: scanned(state, &record.id).await,
                package: record,
                distribution_version: None,
                held: None,
            }),
        ),
    })
}

#[derive(Deserialize)]
pub struct ListQuery {
    distribution: Option<String>,
    name: Option<String>,
    architecture: Option<String>,
}

#[utoipa::path(
    get,
    path = "/packages",
    tag = "packages",
    summary = "List packages, filtered (reader)",
    security(("bearer" = [])),
    params(("distribution" = Option<String>, Query), ("name" = Option<String>, Query), ("architecture" = Option<String>, Query)),
    responses((status = 200, description = "packages"), (status = 401, description = "missing or unknown token"), (status = 403, description = "role too weak"))
)]
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    Query(q): Query<ListQuery>,
) -> Result<Json<serde_json::Value>, Problem> {
    caller.require(Role::Reader)?;
    let filter = Filter {
        distribution: q.distribution,
        name: q.name,
        architecture: q.architecture,
    };
    listing(&state, &filter).await
}

async fn listing(state: &AppState, filter: &Filter) -> Result<Json<serde_json::Value>, Problem> {
    let packages = catalog::list(&state.db, filter)
        .await
        .map_err(Problem::internal)?;
    Ok(Json(serde_json::json!({ "packages": packages })))
}

#[utoipa::path(
    get,
    path = "/distributions/{id}/packages",
    tag = "packages",
    summary = "Packages in one distribution (reader)",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "distribution id")),
    responses((status = 200, description = "packages"), (status = 404, description = "unknown distribution"), (status = 401, description = "missing or unknown token"), (status = 403, description = "role too weak"))
)]
pub async fn in_distribution(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<serde_json::Value>, Problem> {
    caller.require(Role::Reader)?;
    if state.plugins.registry().distribution(&id).is_none() {
        return Err(IngestError::UnknownDistribution(id).into());
    }
    let filter = Filter {
        distribution: Some(id),
        ..Filter::default()
    };
    listing(&state, &filter).await
}

#[utoipa::path(
    get,
    path = "/packages/{id}",
    tag = "packages",
    summary = "One package record (reader)",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "package id")),
    responses((status = 200, description = "the package"), (status = 404, description = "no such package"), (status = 401, description = "missing or unknown token"), (status = 403, description = "role too weak"))
)]
pub async fn show(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<PackageRecord>, Problem> {
    caller.require(Role::Reader)?;
    catalog::get(&state.db, &id)
        .await
        .map_err(Problem::internal)?
        .map(Json)
        .ok_or_else(|| Problem::not_found(format!("no package with id {id}")))
}

#[derive(Deserialize)]
pub struct RemoveQuery {
    reason: Option<String>,
}

/// Removes the package from its distribution's next version.
#[utoipa::path(
    delete,
    path = "/packages/{id}",
    tag = "packages",
    summary = "Remove a package from its distribution: a new version without it; kept versions still list it. A quarantined package (never published) is discarded (maintainer)",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "package id"), ("reason" = Option<String>, Query, description = "recorded with the version the removal makes")),
    responses((status = 204, description = "removed"), (status = 404, description = "no such package in its distribution's current version"), (status = 401, description = "missing or unknown token"), (status = 403, description = "role too weak"))
)]
pub async fn remove(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    Query(query): Query<RemoveQuery>,
) -> Result<StatusCode, Problem> {
    caller.require(Role::Maintainer)?;
    let reason = query.reason.unwrap_or_default();
    match state.packages.remove(&id, &caller, &reason).await? {
        Some((record, _)) => {
            tracing::info!(
                by = caller.name,
                id,
                package = record.name,
                dist = record.distribution,
                "package removed"
            );
            Ok(StatusCode::NO_CONTENT)
        }
        None => Err(Problem::not_found(format!(
            "no package with id {id} in its distribution's current version"
        ))),
    }
}
