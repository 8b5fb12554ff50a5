//! The bearer-token extractor. Handlers take a [`Caller`] and state the role
//! they need with [`Caller::require`], so the rule sits next to the route.

use axum::extract::FromRequestParts;
use axum::http::StatusCode;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;

use super::{AppState, Problem};
use crate::tokens::{self, Caller, Role};

impl FromRequestParts<AppState> for Caller {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Caller, Problem> {
        let unauthorized = |detail: &str| {
            Problem::new(StatusCode::UNAUTHORIZED, "unauthorized", detail.to_owned())
        };
        let header = parts.headers.get(AUTHORIZATION).ok_or_else(|| {
            unauthorized("missing bearer token: send 'Authorization: Bearer <token>' (create one with 'repod token create')")
        })?;
        let token = header
            .to_str()
            .ok()
            .and_then(|h| h.strip_prefix("Bearer "))
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .ok_or_else(|| unauthorized("the Authorization header must be 'Bearer <token>'"))?;
        tokens::authenticate(&state.db, token)
            .await
            .map_err(Problem::internal)?
            .ok_or_else(|| unauthorized("unknown or revoked token"))
    }
}

impl Caller {
    /// Fails with 403 unless the caller holds `role` or a stronger one.
    pub fn require(&self, role: Role) -> Result<(), Problem> {
        if self.role >= role {
            Ok(())
        } else {
            Err(Problem::new(
                StatusCode::FORBIDDEN,
                "forbidden",
                format!(
                    "this needs the {} role; token {} has {}",
                    role.as_str(),
                    self.name,
                    self.role.as_str()
                ),
            ))
        }
    }
}
