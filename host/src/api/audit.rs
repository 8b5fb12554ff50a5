//! `GET /api/v1/audit` (admin): the newest audit entries.

use axum::Json;
use axum::extract::{Query, State};
use serde::Deserialize;
use serde_json::{Value, json};

use super::{AppState, Problem};
use crate::audit;
use crate::tokens::{Caller, Role};

#[derive(Deserialize)]
pub struct AuditQuery {
    limit: Option<i64>,
    /// Only entries by this token name.
    actor: Option<String>,
    /// Only entries whose action starts with this (`package.`, `token.create`).
    action: Option<String>,
    /// Only entries about this target (a package, token or distribution id).
    target: Option<String>,
}

#[utoipa::path(
    get,
    path = "/audit",
    tag = "audit",
    summary = "Newest audit entries (admin)",
    security(("bearer" = [])),
    params(("limit" = Option<i64>, Query, description = "at most this many, default 100"), ("actor" = Option<String>, Query, description = "only by this token name"), ("action" = Option<String>, Query, description = "only actions starting with this"), ("target" = Option<String>, Query, description = "only about this id")),
    responses((status = 200, description = "entries"), (status = 401, description = "missing or unknown token"), (status = 403, description = "role too weak"))
)]
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    Query(q): Query<AuditQuery>,
) -> Result<Json<Value>, Problem> {
    caller.require(Role::Admin)?;
    let limit = q.limit.unwrap_or(100).clamp(1, 10_000);
    // An empty field (a cleared form input) filters nothing.
    let given = |v: Option<String>| v.filter(|v| !v.is_empty());
    let filter = audit::Filter {
        actor: given(q.actor),
        action: given(q.action),
        target: given(q.target),
    };
    let entries = audit::recent(&state.db, &filter, limit)
        .await
        .map_err(Problem::internal)?;
    Ok(Json(json!({ "entries": entries })))
}
