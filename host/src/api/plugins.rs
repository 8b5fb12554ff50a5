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

#[utoipa::path(
    get,
    path = "/plugins",
    tag = "plugins",
    summary = "List loaded and failed plugins (reader)",
    security(("bearer" = [])),
    responses((status = 200, description = "plugins"), (status = 401, description = "missing or unknown token"), (status = 403, description = "role too weak"))
)]
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<PluginList>, Problem> {
    caller.require(Role::Reader)?;
    Ok(Json(listing(&state.plugins.registry())))
}

#[utoipa::path(
    post,
    path = "/plugins/reload",
    tag = "plugins",
    summary = "Rescan the plugin directory (admin)",
    security(("bearer" = [])),
    responses((status = 200, description = "plugins after the reload"), (status = 401, description = "missing or unknown token"), (status = 403, description = "role too weak"))
)]
pub async fn reload(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<PluginList>, Problem> {
    caller.require(Role::Admin)?;
    let registry = state.plugins.reload().await;
    plugins_changed(&state).await;
    tracing::info!(by = caller.name, "plugins reloaded");
    audit_plugin(&state, &caller, "plugin.reload", "*", "").await?;
    Ok(Json(listing(&registry)))
}

/// The body is the `.wasm` itself.
#[utoipa::path(
    post,
    path = "/plugins",
    tag = "plugins",
    summary = "Add or replace a plugin; the body is the .wasm (admin)",
    security(("bearer" = [])),
    responses((status = 201, description = "added"), (status = 200, description = "replaced a plugin of the same name"), (status = 400, description = "empty body"), (status = 409, description = "name or distribution clash"), (status = 422, description = "not a loadable plugin"), (status = 401, description = "missing or unknown token"), (status = 403, description = "role too weak"))
)]
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
    if let Some(shared) = &state.shared_plugins {
        shared.installed(&plugin.meta.name, body.to_vec()).await?;
    }
    plugins_changed(&state).await;
    tracing::info!(
        by = caller.name,
        plugin = plugin.meta.name,
        replaced,
        "plugin installed"
    );
    let detail = format!(
        "{} {} from {} sha256 {}",
        plugin.meta.name, plugin.meta.version, plugin.meta.file, plugin.meta.sha256
    );
    let action = if replaced {
        "plugin.replace"
    } else {
        "plugin.add"
    };
    audit_plugin(&state, &caller, action, &plugin.meta.name, &detail).await?;
    let status = if replaced {
        StatusCode::OK
    } else {
        StatusCode::CREATED
    };
    Ok((status, Json(PluginView::of(&plugin))))
}

#[utoipa::path(
    delete,
    path = "/plugins/{name}",
    tag = "plugins",
    summary = "Unload and delete a plugin (admin)",
    security(("bearer" = [])),
    params(("name" = String, Path, description = "plugin name")),
    responses((status = 204, description = "removed"), (status = 404, description = "no such plugin"), (status = 401, description = "missing or unknown token"), (status = 403, description = "role too weak"))
)]
pub async fn remove(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
) -> Result<StatusCode, Problem> {
    caller.require(Role::Admin)?;
    state.plugins.remove(&name).await?;
    if let Some(shared) = &state.shared_plugins {
        shared.removed(&name).await?;
    }
    plugins_changed(&state).await;
    tracing::info!(by = caller.name, plugin = name, "plugin removed");
    audit_plugin(&state, &caller, "plugin.remove", &name, "").await?;
    Ok(StatusCode::NO_CONTENT)
}

/// After a plugin change: packages of changed distributions are prepared
/// again, vanished distributions retired, and every tree republished (its
/// top-level files may render differently). Returns once the database
/// agrees with the new plugin set; publishing follows within a second.
pub(crate) async fn plugins_changed(state: &AppState) {
    // Per-distribution failures are logged where they happen.
    if let Err(e) = state.packages.sync_distributions().await {
        tracing::error!("after the plugin change: {e}");
    }
    state.publisher.changed_all(&state.plugins);
}

/// Plugin changes live in the plugin directory, not the database, so the
/// audit entry is written right after the change.
async fn audit_plugin(
    state: &AppState,
    caller: &Caller,
    action: &str,
    target: &str,
    detail: &str,
) -> Result<(), Problem> {
    let mut conn = state.db.acquire().await.map_err(Problem::internal)?;
    crate::audit::record(&mut conn, &caller.name, action, target, detail)
        .await
        .map_err(Problem::internal)
}
