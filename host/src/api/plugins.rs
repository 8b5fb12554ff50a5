//! `/api/v1/plugins`: list, upload (add or replace), reload, remove.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::Serialize;

use super::distributions::DistributionView;
use super::{AppState, Problem};
use crate::plugins::{Plugin, PluginKind, PluginMeta, Registry};
use crate::tokens::{Caller, Role};

#[derive(Serialize)]
#[serde(tag = "status", rename_all = "lowercase")]
pub enum PluginView {
    Loaded {
        #[serde(flatten)]
        meta: PluginMeta,
        kind: &'static str,
        /// Family id, or policy id.
        id: String,
        distributions: Vec<DistributionView>,
    },
    Failed {
        file: String,
        error: String,
    },
}

impl PluginView {
    fn of(plugin: &Plugin) -> PluginView {
        let (kind, id, distributions) = match &plugin.kind {
            PluginKind::Family(f) => (
                "family",
                f.info.id.clone(),
                f.info
                    .distributions
                    .iter()
                    .map(|d| DistributionView::of(f, d))
                    .collect(),
            ),
            PluginKind::Policy(p) => ("policy", p.info.id.clone(), vec![]),
        };
        PluginView::Loaded {
            meta: plugin.meta.clone(),
            kind,
            id,
            distributions,
        }
    }
}

#[derive(Serialize)]
pub struct PluginList {
    contract: &'static str,
    plugins: Vec<PluginView>,
}

fn listing(registry: &Registry) -> PluginList {
    let mut plugins: Vec<PluginView> = registry.plugins().map(|p| PluginView::of(p)).collect();
    plugins.extend(registry.failures().iter().map(|f| PluginView::Failed {
        file: f.file.clone(),
        error: f.error.clone(),
    }));
    PluginList {
        contract: crate::plugins::CONTRACT_VERSION,
        plugins,
    }
}

pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<PluginList>, Problem> {
    caller.require(Role::Reader)?;
    Ok(Json(listing(&state.plugins.registry())))
}

pub async fn reload(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<PluginList>, Problem> {
    caller.require(Role::Admin)?;
    let registry = state.plugins.reload().await;
    tracing::info!(by = caller.name, "plugins reloaded");
    Ok(Json(listing(&registry)))
}

/// The body is the `.wasm` itself.
pub async fn upload(
    State(state): State<AppState>,
    caller: Caller,
    body: Bytes,
) -> Result<(StatusCode, Json<PluginView>), Problem> {
    caller.require(Role::Admin)?;
    if body.is_empty() {
        return Err(Problem::bad_request(
            "empty body: send the plugin's .wasm file as the request body",
        ));
    }
    let (plugin, replaced) = state.plugins.install(body.to_vec()).await?;
    tracing::info!(
        by = caller.name,
        plugin = plugin.meta.name,
        replaced,
        "plugin installed"
    );
    let status = if replaced {
        StatusCode::OK
    } else {
        StatusCode::CREATED
    };
    Ok((status, Json(PluginView::of(&plugin))))
}

pub async fn remove(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
) -> Result<StatusCode, Problem> {
    caller.require(Role::Admin)?;
    state.plugins.remove(&name).await?;
    tracing::info!(by = caller.name, plugin = name, "plugin removed");
    Ok(StatusCode::NO_CONTENT)
}
