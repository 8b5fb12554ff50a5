//! `/api/v1/distributions`: what the loaded family plugins declare.

use axum::Json;
use axum::extract::{Path, State};
use serde::{Deserialize, Serialize};

use super::{AppState, Problem};
use crate::plugins::Family;
use crate::plugins::contract::{ContainerFormat, Distribution, Ordering};
use crate::tokens::{Caller, Role};

#[derive(Serialize)]
pub struct Vulnerability {
    grype: String,
    osv: String,
}

#[derive(Serialize)]
pub struct DistributionView {
    id: String,
    display_name: String,
    family: String,
    plugin: String,
    format: &'static str,
    architectures: Vec<String>,
    components: Vec<String>,
    vulnerability: Vulnerability,
}

impl DistributionView {
    pub fn of(family: &Family, d: &Distribution) -> DistributionView {
        DistributionView {
            id: d.id.clone(),
            display_name: d.display_name.clone(),
            family: family.info.id.clone(),
            plugin: family.plugin_name().to_owned(),
            format: match family.info.format {
                ContainerFormat::Deb => "deb",
                ContainerFormat::Rpm => "rpm",
            },
            architectures: d.architectures.clone(),
            components: d.components.clone(),
            vulnerability: Vulnerability {
                grype: d.vulnerability.grype.clone(),
                osv: d.vulnerability.osv.clone(),
            },
        }
    }
}

#[derive(Serialize)]
pub struct DistributionList {
    distributions: Vec<DistributionView>,
    /// Distributions that held content but that no loaded plugin declares
    /// any more: not served, their packages and versions kept.
    retired: Vec<Retired>,
}

#[derive(Serialize, sqlx::FromRow)]
pub struct Retired {
    id: String,
    /// Unix seconds.
    retired_at: i64,
    latest_version: i64,
}

async fn retired(state: &AppState) -> Result<Vec<Retired>, Problem> {
    sqlx::query_as(
        "SELECT id, retired_at, latest AS latest_version FROM distributions \
         WHERE retired_at IS NOT NULL ORDER BY id",
    )
    .fetch_all(&state.db)
    .await
    .map_err(Problem::internal)
}

#[utoipa::path(
    get,
    path = "/distributions",
    tag = "distributions",
    summary = "Distributions the family plugins declare (reader)",
    security(("bearer" = [])),
    responses((status = 200, description = "distributions"), (status = 401, description = "missing or unknown token"), (status = 403, description = "role too weak"))
)]
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<DistributionList>, Problem> {
    caller.require(Role::Reader)?;
    let registry = state.plugins.registry();
    let distributions = registry
        .distributions()
        .map(|(f, d)| DistributionView::of(f, d))
        .collect();
    Ok(Json(DistributionList {
        distributions,
        retired: retired(&state).await?,
    }))
}

pub(crate) fn unknown(id: &str) -> Problem {
    Problem::not_found(format!(
        "no distribution {id}; GET /api/v1/distributions lists the ones loaded plugins provide"
    ))
}

#[utoipa::path(
    get,
    path = "/distributions/{id}",
    tag = "distributions",
    summary = "One distribution (reader)",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "distribution id")),
    responses((status = 200, description = "the distribution"), (status = 404, description = "unknown distribution"), (status = 410, description = "retired: no loaded plugin declares it any more"), (status = 401, description = "missing or unknown token"), (status = 403, description = "role too weak"))
)]
pub async fn show(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<DistributionView>, Problem> {
    caller.require(Role::Reader)?;
    let registry = state.plugins.registry();
    match registry.distribution(&id) {
        Some((family, dist)) => Ok(Json(DistributionView::of(family, dist))),
        None => Err(
            match retired(&state).await?.into_iter().find(|r| r.id == id) {
                Some(r) => Problem::new(
                    axum::http::StatusCode::GONE,
                    "retired",
                    format!(
                        "{id} was retired at {} (unix time): no loaded plugin declares it any more, \
                     so its tree is no longer served; its packages and {} versions are kept. \
                     Reinstall the plugin or re-enable the distribution in its config to serve it again",
                        r.retired_at, r.latest_version
                    ),
                ),
                None => unknown(&id),
            },
        ),
    }
}

#[derive(Deserialize)]
pub struct ComparePairs {
    /// `[[a, b], ...]`: each compared with the distribution's version rules.
    pairs: Vec<(String, String)>,
}

#[derive(Serialize)]
pub struct CompareResults {
    /// `-1` (a < b), `0` or `1`, one per pair.
    results: Vec<i8>,
}

const MAX_PAIRS: usize = 10_000;

/// The `distribution.extensions` key `render-client-config` finds the
/// pinned version number under (contract 0.1: extensions carry additions).
pub const PINNED_VERSION_EXTENSION: &str = "repod.version";

#[utoipa::path(
    post,
    path = "/distributions/{id}/compare-versions",
    tag = "distributions",
    summary = "Compare versions with the family rules; body {\"pairs\": [[a, b]]} (reader)",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "distribution id")),
    responses((status = 200, description = "results: -1, 0 or 1 per pair"), (status = 400, description = "too many pairs"), (status = 404, description = "unknown distribution"), (status = 502, description = "the plugin failed"), (status = 504, description = "the plugin timed out"), (status = 401, description = "missing or unknown token"), (status = 403, description = "role too weak"))
)]
pub async fn compare_versions(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    Json(body): Json<ComparePairs>,
) -> Result<Json<CompareResults>, Problem> {
    caller.require(Role::Reader)?;
    if body.pairs.len() > MAX_PAIRS {
        return Err(Problem::bad_request(format!(
            "{} pairs sent; at most {MAX_PAIRS} per request",
            body.pairs.len()
        )));
    }
    if state.plugins.registry().distribution(&id).is_none() {
        return Err(unknown(&id));
    }
    let orderings = state
        .plugins
        .blocking(move |registry| {
            let (family, _) = registry.distribution(&id).ok_or_else(|| unknown(&id))?;
            family.compare_versions(&body.pairs).map_err(Problem::from)
        })
        .await?;
    let results = orderings
        .into_iter()
        .map(|o| match o {
            Ordering::Less => -1,
            Ordering::Equal => 0,
            Ordering::Greater => 1,
        })
        .collect();
    Ok(Json(CompareResults { results }))
}

#[utoipa::path(
    post,
    path = "/distributions/{id}/publish",
    tag = "distributions",
    summary = "Publish now; returns once the tree reflects every change committed before the call (uploader)",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "distribution id")),
    responses((status = 200, description = "what the publish did", body = crate::publish::Report), (status = 404, description = "unknown distribution"), (status = 500, description = "the publish failed; detail says why"), (status = 401, description = "missing or unknown token"), (status = 403, description = "role too weak"))
)]
pub async fn publish(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<crate::publish::Report>, Problem> {
    caller.require(Role::Uploader)?;
    if state.plugins.registry().distribution(&id).is_none() {
        return Err(unknown(&id));
    }
    Ok(Json(publish_now(&state, &id, "").await?))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ClientConfigQuery {
    /// URL clients reach the published tree at (default:
    /// `http://<Host header>/repos`), e.g. `https://repo.example.com/repos`.
    #[serde(rename = "base-url")]
    #[param(rename = "base-url")]
    base_url: Option<String>,
    /// Pin the client to this version (`/repos/versions/<id>/<n>/`), which
    /// stays as it is while the distribution moves on (until retention
    /// collects it). Default: the live tree, which follows every change.
    version: Option<String>,
}

#[utoipa::path(
    get,
    path = "/distributions/{id}/client-config",
    tag = "distributions",
    summary = "Client setup for this distribution, rendered by its plugin: a deb822 .sources entry, a .repo file... (reader)",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "distribution id"), ClientConfigQuery),
    responses((status = 200, description = "the file, with the plugin's media type and a suggested file name in Content-Disposition"), (status = 400, description = "no usable base URL"), (status = 404, description = "unknown distribution"), (status = 502, description = "the plugin failed"), (status = 401, description = "missing or unknown token"), (status = 403, description = "role too weak"))
)]
pub async fn client_config(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    axum::extract::Query(query): axum::extract::Query<ClientConfigQuery>,
    headers: axum::http::HeaderMap,
) -> Result<axum::response::Response, Problem> {
    use axum::http::header;
    use axum::response::IntoResponse;

    caller.require(Role::Reader)?;
    if state.plugins.registry().distribution(&id).is_none() {
        return Err(unknown(&id));
    }
    let pinned = match query.version.as_deref() {
        None => None,
        Some(text) => {
            let number = super::lifecycle::version_number(text)?;
            if crate::catalog::versions::get(&state.db, &id, number)
                .await
                .map_err(Problem::internal)?
                .is_none()
            {
                return Err(super::lifecycle::not_kept(&state, &id, number).await);
            }
            // Built now, so the client's first update does not wait for it.
            let (publisher, dist) = (state.publisher.clone(), id.clone());
            tokio::spawn(async move {
                if let Err(e) = publisher.pinned(&dist, number).await {
                    tracing::warn!(distribution = dist, version = number, "pinned tree: {e}");
                }
            });
            Some(number)
        }
    };
    let base = match query.base_url {
        Some(url) => url,
        None => {
            let host = headers
                .get(header::HOST)
                .and_then(|h| h.to_str().ok())
                .filter(|h| !h.is_empty() && !h.contains(['/', ' ']))
                .ok_or_else(|| {
                    Problem::bad_request(
                        "the request has no usable Host header; pass ?base-url=https://your.host/repos",
                    )
                })?;
            format!("http://{host}/repos")
        }
    };
    let base = base.trim_end_matches('/').to_owned();
    if !(base.starts_with("http://") || base.starts_with("https://")) {
        return Err(Problem::bad_request(format!(
            "base-url {base:?} must be an http:// or https:// URL"
        )));
    }
    let key_url = format!("{base}/keys/repod.asc");
    let base = match pinned {
        Some(n) => format!("{base}/{}/{id}/{n}", crate::publish::PINNED_TOP),
        None => base,
    };
    let config = state
        .plugins
        .blocking(move |registry| {
            let (family, dist) = registry.distribution(&id).ok_or_else(|| unknown(&id))?;
            // The plugin may name a pinned source apart from the live one.
            let mut dist = dist.clone();
            if let Some(n) = pinned {
                dist.extensions
                    .push((PINNED_VERSION_EXTENSION.to_owned(), n.to_string()));
            }
            family
                .render_client_config(&dist, &base, &key_url)
                .map_err(Problem::from)
        })
        .await?;
    let disposition = format!(
        "attachment; filename=\"{}\"",
        config.filename.replace(['"', '\\'], "_")
    );
    Ok((
        [
            (header::CONTENT_TYPE, config.media_type),
            (header::CONTENT_DISPOSITION, disposition),
        ],
        config.content,
    )
        .into_response())
}

/// What setting a document did, with the publish it waited for.
#[derive(Serialize, utoipa::ToSchema)]
pub struct DocumentSet {
    pub distribution: String,
    pub name: String,
    pub sha256: String,
    pub bytes: usize,
    pub publish: crate::publish::Report,
}

/// The distribution `id`, if its plugin publishes a document `name`.
fn with_document(state: &AppState, id: &str, name: &str) -> Result<(), Problem> {
    let registry = state.plugins.registry();
    let (_, dist) = registry.distribution(id).ok_or_else(|| unknown(id))?;
    if !crate::documents::declared(dist, name) {
        return Err(Problem::not_found(format!(
            "distribution {id} publishes no {name} document (its family plugin declares none)"
        )));
    }
    Ok(())
}

/// Publishes `id` now; a failure is a 500 whose detail starts with `done`
/// (what the call already changed).
async fn publish_now(
    state: &AppState,
    id: &str,
    done: &str,
) -> Result<crate::publish::Report, Problem> {
    state.publisher.publish(id).await.map_err(|e| {
        tracing::error!(distribution = id, "forced publish failed: {e}");
        let status = match super::problem::storage_full(&e.to_string()) {
            Some(_) => axum::http::StatusCode::INSUFFICIENT_STORAGE,
            None => axum::http::StatusCode::INTERNAL_SERVER_ERROR,
        };
        Problem::new(
            status,
            "publish-failed",
            format!("{done}publishing {id} failed: {e}; the tree served is the last good one"),
        )
    })
}

#[utoipa::path(
    put,
    path = "/distributions/{id}/comps",
    tag = "distributions",
    summary = "Set the package groups (comps.xml) of an rpm-md distribution; published as repomd.xml's group and group_gz (maintainer)",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "distribution id")),
    request_body(content = String, content_type = "application/xml", description = "a comps.xml: well-formed XML, root element <comps>, no DOCTYPE, at most 16 MiB"),
    responses((status = 200, description = "stored and published", body = DocumentSet), (status = 400, description = "not a comps document; nothing changed"), (status = 404, description = "unknown distribution, or one that takes no comps"), (status = 401, description = "missing or unknown token"), (status = 403, description = "role too weak"))
)]
pub async fn set_comps(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> Result<Json<DocumentSet>, Problem> {
    caller.require(Role::Maintainer)?;
    let name = crate::documents::COMPS;
    with_document(&state, &id, name)?;
    let content = crate::documents::validate(name, &body).map_err(Problem::bad_request)?;
    let sha256 = crate::documents::set(&state.db, &id, name, &content, &caller.name)
        .await
        .map_err(Problem::internal)?;
    let publish = publish_now(&state, &id, "the document was stored, but ").await?;
    Ok(Json(DocumentSet {
        distribution: id,
        name: name.to_owned(),
        sha256,
        bytes: content.len(),
        publish,
    }))
}

#[utoipa::path(
    get,
    path = "/distributions/{id}/comps",
    tag = "distributions",
    summary = "The package groups (comps.xml) set for a distribution (reader)",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "distribution id")),
    responses((status = 200, description = "the comps.xml", content_type = "application/xml", body = String), (status = 404, description = "unknown distribution, or no comps set"), (status = 401, description = "missing or unknown token"), (status = 403, description = "role too weak"))
)]
pub async fn get_comps(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<axum::response::Response, Problem> {
    caller.require(Role::Reader)?;
    let name = crate::documents::COMPS;
    with_document(&state, &id, name)?;
    let stored = crate::documents::get(&state.db, &id, name)
        .await
        .map_err(Problem::internal)?
        .ok_or_else(|| {
            Problem::not_found(format!(
                "{id} has no {name} set (PUT /api/v1/distributions/{id}/{name} sets one)"
            ))
        })?;
    Ok(axum::response::IntoResponse::into_response((
        [(axum::http::header::CONTENT_TYPE, "application/xml")],
        stored.content,
    )))
}

#[utoipa::path(
    delete,
    path = "/distributions/{id}/comps",
    tag = "distributions",
    summary = "Remove a distribution's package groups; the next tree has none (maintainer)",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "distribution id")),
    responses((status = 204, description = "removed and published"), (status = 404, description = "unknown distribution, or no comps set"), (status = 401, description = "missing or unknown token"), (status = 403, description = "role too weak"))
)]
pub async fn delete_comps(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<axum::http::StatusCode, Problem> {
    caller.require(Role::Maintainer)?;
    let name = crate::documents::COMPS;
    with_document(&state, &id, name)?;
    if !crate::documents::delete(&state.db, &id, name, &caller.name)
        .await
        .map_err(Problem::internal)?
    {
        return Err(Problem::not_found(format!("{id} has no {name} set")));
    }
    publish_now(&state, &id, "the document was removed, but ").await?;
    Ok(axum::http::StatusCode::NO_CONTENT)
}
