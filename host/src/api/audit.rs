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
}

#[utoipa::path(
    get,
    path = "/audit",
    tag = "audit",
    summary = "Newest audit entries (admin)",
    security(("bearer" = [])),
    params(("limit" = Option<i64>, Query, description = "at most this many, default 100")),
    responses((status = 200, description = "entries"), (status = 401, description = "missing or unknown token"), (status = 403, description = "role too weak"))
)]
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    Query(q): Query<AuditQuery>,
) -> Result<Json<Value>, Problem> {
    caller.require(Role::Admin)?;
    let limit = q.limit.unwrap_or(100).clamp(1, 10_000);
    let entries = audit::recent(&state.db, limit)
        .await
        .map_err(Problem::internal)?;
    Ok(Json(json!({ "entries": entries })))
}
