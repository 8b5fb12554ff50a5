//! `/api/v1/tokens` (admin): create, list, revoke.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::{Value, json};

use super::{AppState, Problem};
use crate::audit;
use crate::tokens::{self, Caller, Role, TokenError};

#[derive(Deserialize)]
pub struct NewToken {
    name: String,
    role: String,
}

#[utoipa::path(
    post,
    path = "/tokens",
    tag = "tokens",
    summary = "Create a token; body {\"name\", \"role\"} (admin)",
    security(("bearer" = [])),
    responses((status = 201, description = "the token, shown once"), (status = 400, description = "bad name or role"), (status = 409, description = "name taken"), (status = 401, description = "missing or unknown token"), (status = 403, description = "role too weak"))
)]
pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    Json(body): Json<NewToken>,
) -> Result<(StatusCode, Json<Value>), Problem> {
    caller.require(Role::Admin)?;
    let role = Role::parse(&body.role).ok_or_else(|| {
        Problem::bad_request(format!(
            "unknown role {:?}: use reader, uploader, maintainer or admin",
            body.role
        ))
    })?;
    let mut tx = state.db.begin().await.map_err(Problem::internal)?;
    let (id, token) = match tokens::create(&mut tx, &body.name, role).await {
        Ok(created) => created,
        Err(e @ TokenError::NameTaken(_)) => {
            return Err(Problem::new(
                StatusCode::CONFLICT,
                "conflict",
                e.to_string(),
            ));
        }
        Err(e @ TokenError::BadName) => return Err(Problem::bad_request(e.to_string())),
        Err(TokenError::Db(e)) => return Err(Problem::internal(e)),
    };
    audit::record(
        &mut tx,
        &caller.name,
        "token.create",
        &id,
        &format!("{} ({})", body.name, role.as_str()),
    )
    .await
    .map_err(Problem::internal)?;
    tx.commit().await.map_err(Problem::internal)?;
    Ok((
        StatusCode::CREATED,
        Json(json!({ "id": id, "name": body.name, "role": role.as_str(), "token": token })),
    ))
}

#[utoipa::path(
    get,
    path = "/tokens",
    tag = "tokens",
    summary = "List tokens, never their secrets (admin)",
    security(("bearer" = [])),
    responses((status = 200, description = "tokens"), (status = 401, description = "missing or unknown token"), (status = 403, description = "role too weak"))
)]
pub async fn list(State(state): State<AppState>, caller: Caller) -> Result<Json<Value>, Problem> {
    caller.require(Role::Admin)?;
    let tokens = tokens::list(&state.db).await.map_err(Problem::internal)?;
    Ok(Json(json!({ "tokens": tokens })))
}

#[utoipa::path(
    delete,
    path = "/tokens/{id}",
    tag = "tokens",
    summary = "Revoke a token (admin)",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "token id")),
    responses((status = 204, description = "revoked"), (status = 404, description = "no such token"), (status = 401, description = "missing or unknown token"), (status = 403, description = "role too weak"))
)]
pub async fn revoke(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<StatusCode, Problem> {
    caller.require(Role::Admin)?;
    let mut tx = state.db.begin().await.map_err(Problem::internal)?;
    if !tokens::revoke(&mut tx, &id)
        .await
        .map_err(Problem::internal)?
    {
        return Err(Problem::not_found(format!("no token with id {id}")));
    }
    audit::record(&mut tx, &caller.name, "token.revoke", &id, "")
        .await
        .map_err(Problem::internal)?;
    tx.commit().await.map_err(Problem::internal)?;
    Ok(StatusCode::NO_CONTENT)
}
