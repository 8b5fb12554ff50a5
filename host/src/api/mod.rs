//! The HTTP API under `/api/v1`, JSON in and out, errors as problem+json.

mod advisories;
mod audit;
mod auth;
mod distributions;
mod drain;
mod lifecycle;
mod packages;
pub(crate) mod plugins;
mod problem;
mod repos;
mod scans;
mod timeout;
mod tokens;
mod vex;
mod views;

use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::get;
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub use problem::Problem;

use crate::db::Db;
use crate::ingest::Packages;
use crate::plugins::PluginHost;

/// The largest plugin an admin may upload.
const MAX_PLUGIN_BYTES: usize = 64 << 20;

#[derive(Clone)]
pub struct AppState {
    pub db: Db,
    pub plugins: Arc<PluginHost>,
    pub packages: Arc<Packages>,
    pub publisher: Arc<crate::publish::Publisher>,
    /// Largest package upload accepted, in bytes.
    pub max_upload: u64,
    /// Advisory feeds (`[advisories]`).
    pub feeds: Arc<crate::config::FeedConfig>,
    /// In a cluster: plugin changes every node applies.
    pub shared_plugins: Option<Arc<crate::plugins::shared::SharedPlugins>>,
    /// What `GET /metrics` shows; the API records uploads and requests.
    pub metrics: Arc<crate::metrics::Metrics>,
}

#[derive(utoipa::OpenApi)]
#[openapi(
    info(title = "repod", description = "Package repository daemon API"),
    servers((url = "/api/v1")),
    modifiers(&BearerAuth)
)]
struct ApiDoc;

struct BearerAuth;

impl utoipa::Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
        openapi
            .components
            .get_or_insert_with(Default::default)
            .add_security_scheme(
                "bearer",
                SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
            );
    }
}

/// The `/api/v1` routes and their OpenAPI document, declared together so
/// neither can list a route the other lacks.
fn api() -> (Router<AppState>, utoipa::openapi::OpenApi) {
    let uploads = OpenApiRouter::new()
        .routes(routes!(packages::upload))
        .layer(DefaultBodyLimit::disable());
    let advisory_files = OpenApiRouter::new()
        .routes(routes!(advisories::import, advisories::list))
        .layer(DefaultBodyLimit::max(advisories::MAX_ADVISORY_BYTES));
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(plugins::list, plugins::upload))
        .routes(routes!(plugins::reload))
        .routes(routes!(plugins::remove))
        .routes(routes!(distributions::list))
        .routes(routes!(distributions::show))
        .routes(routes!(distributions::compare_versions))
        .routes(routes!(distributions::publish))
        .routes(routes!(distributions::client_config))
        .routes(routes!(
            distributions::set_comps,
            distributions::get_comps,
            distributions::delete_comps
        ))
        .routes(routes!(lifecycle::promote))
        .routes(routes!(lifecycle::migrate))
        .routes(routes!(lifecycle::init))
        .routes(routes!(lifecycle::versions))
        .routes(routes!(lifecycle::version))
        .routes(routes!(lifecycle::rollback))
        .routes(routes!(packages::in_distribution))
        .routes(routes!(packages::list))
        .routes(routes!(packages::show, packages::remove))
        .routes(routes!(tokens::list, tokens::create))
        .routes(routes!(tokens::revoke))
        .routes(routes!(audit::list))
        .routes(routes!(advisories::imports))
        .routes(routes!(advisories::sync))
        .routes(routes!(advisories::feeds))
        .routes(routes!(advisories::show))
        .routes(routes!(scans::package))
        .routes(routes!(scans::list))
        .routes(routes!(scans::rescan))
        .routes(routes!(scans::decide))
        .routes(routes!(vex::document))
        .routes(routes!(views::whoami))
        .routes(routes!(views::overview))
        .routes(routes!(views::package_details))
        .layer(DefaultBodyLimit::max(MAX_PLUGIN_BYTES))
        .layer(axum::middleware::from_fn(refuse_nul))
        .merge(uploads)
        .merge(advisory_files)
        .split_for_parts()
}

/// A JSON body with a NUL character in a text field is refused before its
/// handler sees it: PostgreSQL stores no NUL in text, so it would fail late
/// (a 500) there and succeed on SQLite. Bodies of other types pass.
async fn refuse_nul(
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Result<axum::response::Response, Problem> {
    let json = request
        .headers()
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|t| {
            let t = t.split(';').next().unwrap_or("").trim();
            t.eq_ignore_ascii_case("application/json") || t.ends_with("+json")
        });
    if !json {
        return Ok(next.run(request).await);
    }
    let (parts, body) = request.into_parts();
    let bytes = axum::body::to_bytes(body, MAX_PLUGIN_BYTES)
        .await
        .map_err(|_| {
            Problem::new(
                axum::http::StatusCode::PAYLOAD_TOO_LARGE,
                "too-large",
                format!("a JSON body is at most {} MiB", MAX_PLUGIN_BYTES >> 20),
            )
        })?;
    if repod_osv::json_has_nul(&bytes) {
        return Err(Problem::bad_request(
            "a text field holds a NUL character (\\u0000), which no field may contain; \
             remove it and send the request again",
        ));
    }
    Ok(next
        .run(axum::extract::Request::from_parts(
            parts,
            axum::body::Body::from(bytes),
        ))
        .await)
}

/// The OpenAPI document of `/api/v1`.
pub fn openapi() -> utoipa::openapi::OpenApi {
    api().1
}

/// Every response the console did not mark gets [`repod_console::ELSEWHERE_POLICY`].
async fn sandbox_elsewhere(mut response: axum::response::Response) -> axum::response::Response {
    let csp = axum::http::header::CONTENT_SECURITY_POLICY;
    if !response.headers().contains_key(&csp) {
        response.headers_mut().insert(
            csp,
            axum::http::HeaderValue::from_static(repod_console::ELSEWHERE_POLICY),
        );
    }
    response
}

/// Published trees: files under `repos_dir`, anonymous unless the operator
/// asked for a reader token. `repos::service` serves them (validators, ranges,
/// content types) and never leaves the tree.
fn repos(state: &AppState, repos_dir: &std::path::Path, require_token: bool) -> Router<AppState> {
    let files =
        Router::new().nest_service("/repos", repos::service(repos_dir, state.publisher.clone()));
    if require_token {
        files.layer(axum::middleware::from_fn_with_state(
            state.clone(),
            require_reader,
        ))
    } else {
        files
    }
}

async fn require_reader(
    caller: crate::tokens::Caller,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Result<axum::response::Response, Problem> {
    caller.require(crate::tokens::Role::Reader)?;
    Ok(next.run(request).await)
}

/// `GET /readyz`: whether this daemon can do its work now: the database
/// answers, at least one distribution plugin is loaded, and the publisher
/// runs. 200 with what was checked, or 503 problem+json naming what is not.
async fn readyz(
    axum::extract::State(state): axum::extract::State<AppState>,
) -> Result<axum::Json<serde_json::Value>, Problem> {
    let unready = |what: String| {
        Problem::new(
            axum::http::StatusCode::SERVICE_UNAVAILABLE,
            "not-ready",
            what,
        )
    };
    let ping = sqlx::query("SELECT 1").execute(&state.db);
    match tokio::time::timeout(std::time::Duration::from_secs(2), ping).await {
        Ok(Ok(_)) => {}
        Ok(Err(e)) => return Err(unready(format!("the database does not answer: {e}"))),
        Err(_) => return Err(unready("the database did not answer within 2 s".into())),
    }
    let registry = state.plugins.registry();
    let distributions = registry.distributions().count();
    if distributions == 0 {
        return Err(unready(format!(
            "no distribution plugin is loaded ({} failed to load; GET /api/v1/plugins says why): \
             put the .wasm files in the plugin directory or upload one",
            registry.failures().len()
        )));
    }
    if !state.publisher.worker_running() {
        return Err(unready(
            "the publisher stopped; the daemon log says why: restart the daemon".into(),
        ));
    }
    let pending = state.publisher.pending();
    Ok(axum::Json(serde_json::json!({
        "database": "ok",
        "distributions": distributions,
        "publisher": if pending == 0 { "idle" } else { "publishing" },
        "pending": pending,
    })))
}

/// `GET /metrics`: the exposition, its gauges read from the database now.
async fn metrics(
    axum::extract::State(state): axum::extract::State<AppState>,
) -> Result<axum::response::Response, Problem> {
    use axum::response::IntoResponse;
    let text = state
        .metrics
        .render(&state.db)
        .await
        .map_err(Problem::internal)?;
    Ok((
        [(
            axum::http::header::CONTENT_TYPE,
            crate::metrics::CONTENT_TYPE,
        )],
        text,
    )
        .into_response())
}

/// Counts every answered request by method, route pattern and status.
/// The route is the one axum matched (`/api/v1/packages/{id}`), never the
/// raw path, so the label set stays bounded: everything under `/repos/` is
/// one route, a path no route matched is `unmatched`.
async fn track(
    axum::extract::State(metrics): axum::extract::State<Arc<crate::metrics::Metrics>>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    use axum::http::Method;
    // The `/repos` service is nested whole, so axum records no matched
    // path for it: its prefix names it.
    let path = request.uri().path();
    let route = match request.extensions().get::<axum::extract::MatchedPath>() {
        Some(m) => m.as_str().to_owned(),
        None if path == "/repos" || path.starts_with("/repos/") => "/repos/".to_owned(),
        None => "unmatched".to_owned(),
    };
    let method = match *request.method() {
        Method::GET => "GET",
        Method::HEAD => "HEAD",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::PATCH => "PATCH",
        Method::OPTIONS => "OPTIONS",
        _ => "other",
    };
    let started = std::time::Instant::now();
    let response = next.run(request).await;
    metrics.request(
        method,
        &route,
        response.status().as_u16(),
        started.elapsed(),
    );
    response
}

pub fn router(state: AppState, settings: &crate::config::Settings) -> Router {
    let repos_dir = &settings.repos_dir();
    let repos_require_token = settings.repos_require_token;
    let metrics_access = settings.metrics_access;
    let body_timeout = settings.http.body_timeout;
    let (api, doc) = api();
    let doc = Arc::new(doc.to_json().expect("OpenAPI document serialises"));
    let api = api
        .route(
            "/openapi.json",
            get(move || async move {
                (
                    [(axum::http::header::CONTENT_TYPE, "application/json")],
                    (*doc).clone(),
                )
            }),
        )
        .fallback(|| async { Problem::not_found("no such API route") });
    let mut metrics_route = Router::new().route("/metrics", get(metrics));
    if metrics_access == crate::config::MetricsAccess::Reader {
        metrics_route = metrics_route.layer(axum::middleware::from_fn_with_state(
            state.clone(),
            require_reader,
        ));
    }
    Router::new()
        .nest("/api/v1", api)
        .merge(repos(&state, repos_dir, repos_require_token))
        .merge(metrics_route)
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .merge(repod_console::router())
        .layer(axum::middleware::map_response(sandbox_elsewhere))
        .layer(axum::middleware::from_fn_with_state(
            state.metrics.clone(),
            track,
        ))
        .layer(axum::middleware::from_fn(drain::answer_refusals))
        // Outermost, so the drain's reading is on the clock too.
        .layer(axum::middleware::from_fn(move |request, next| {
            timeout::stalled_bodies(body_timeout, request, next)
        }))
        .with_state(state)
}
