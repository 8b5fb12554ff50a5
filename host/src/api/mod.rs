//! The HTTP API under `/api/v1`, JSON in and out, errors as problem+json.

mod auth;
mod distributions;
mod plugins;
mod problem;

use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::{delete, get, post};

pub use problem::Problem;

use crate::db::Db;
use crate::plugins::PluginHost;

/// The largest plugin an admin may upload.
const MAX_PLUGIN_BYTES: usize = 64 << 20;

#[derive(Clone)]
pub struct AppState {
    pub db: Db,
    pub plugins: Arc<PluginHost>,
}

pub fn router(state: AppState) -> Router {
    let api = Router::new()
        .route("/plugins", get(plugins::list).post(plugins::upload))
        .route("/plugins/reload", post(plugins::reload))
        .route("/plugins/{name}", delete(plugins::remove))
        .route("/distributions", get(distributions::list))
        .route("/distributions/{id}", get(distributions::show))
        .route(
            "/distributions/{id}/compare-versions",
            post(distributions::compare_versions),
        )
        .fallback(|| async { Problem::not_found("no such API route") })
        .layer(DefaultBodyLimit::max(MAX_PLUGIN_BYTES));
    Router::new()
        .nest("/api/v1", api)
        .route("/healthz", get(|| async { "ok\n" }))
        .with_state(state)
}
