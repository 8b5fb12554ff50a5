//! `application/problem+json` (RFC 9457) errors with a message a person can
//! act on. Every error the API returns goes through [`Problem`].

use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::plugins::{InstallError, PluginError};

#[derive(Debug)]
pub struct Problem {
    pub status: StatusCode,
    /// Short machine-readable slug; the `type` is `urn:repod:problem:<slug>`.
    pub kind: &'static str,
    pub detail: String,
    /// Extension members (RFC 9457 §3.2), e.g. the findings behind a block.
    pub extra: Option<(&'static str, serde_json::Value)>,
}

impl Problem {
    pub fn new(status: StatusCode, kind: &'static str, detail: impl Into<String>) -> Problem {
        Problem {
            status,
            kind,
            detail: detail.into(),
            extra: None,
        }
    }

    /// Adds the extension member `name`.
    pub fn with(mut self, name: &'static str, value: serde_json::Value) -> Problem {
        self.extra = Some((name, value));
        self
    }

    /// 422 `blocked`: the vulnerability gate refuses a package; the
    /// findings say why.
    pub fn blocked(detail: impl Into<String>, scan: &crate::scan::Scan) -> Problem {
        let findings = serde_json::to_value(&scan.findings).unwrap_or_default();
        Problem::new(StatusCode::UNPROCESSABLE_ENTITY, "blocked", detail).with("findings", findings)
    }

    pub fn not_found(detail: impl Into<String>) -> Problem {
        Problem::new(StatusCode::NOT_FOUND, "not-found", detail)
    }

    pub fn bad_request(detail: impl Into<String>) -> Problem {
        Problem::new(StatusCode::BAD_REQUEST, "bad-request", detail)
    }

    pub fn internal(err: impl std::fmt::Display) -> Problem {
        let message = err.to_string();
        if let Some(cause) = storage_full(&message) {
            tracing::error!("out of space: {message}");
            return Problem::new(
                StatusCode::INSUFFICIENT_STORAGE,
                "insufficient-storage",
                format!(
                    "the daemon's storage is full ({cause}); nothing was changed: \
                     free space (or raise the quota) and send this again"
                ),
            );
        }
        tracing::error!("internal error: {message}");
        Problem::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "internal error; the daemon log has the details",
        )
    }
}

/// Whether an error's message says a file system or database ran out of
/// space, and in which words. Matched on the rendered message because the
/// errors arrive wrapped in many types (blob store, SQLite, PostgreSQL,
/// publisher); the phrases are the operating system's (ENOSPC, EDQUOT, as
/// `std::io::Error` renders them) and SQLite's and PostgreSQL's own.
pub(crate) fn storage_full(message: &str) -> Option<&'static str> {
    [
        "No space left on device",
        "Disk quota exceeded",
        "database or disk is full",
        "could not extend file",
    ]
    .into_iter()
    .find(|phrase| message.contains(phrase))
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let mut body = json!({
            "type": format!("urn:repod:problem:{}", self.kind),
            "title": self.status.canonical_reason().unwrap_or("Error"),
            "status": self.status.as_u16(),
            "detail": self.detail,
        });
        if let Some((name, value)) = self.extra {
            body[name] = value;
        }
        (
            self.status,
            [(header::CONTENT_TYPE, "application/problem+json")],
            body.to_string(),
        )
            .into_response()
    }
}

impl From<PluginError> for Problem {
    fn from(e: PluginError) -> Problem {
        let (status, kind) = match &e {
            PluginError::Timeout { .. } => (StatusCode::GATEWAY_TIMEOUT, "plugin-timeout"),
            PluginError::MemoryLimit { .. } => (StatusCode::BAD_GATEWAY, "plugin-memory-limit"),
            PluginError::Trapped { .. } => (StatusCode::BAD_GATEWAY, "plugin-failed"),
            PluginError::BadOutput { .. } => (StatusCode::BAD_GATEWAY, "plugin-bad-output"),
            PluginError::Rejected(_) => (StatusCode::UNPROCESSABLE_ENTITY, "rejected"),
            PluginError::Load(_) => (StatusCode::UNPROCESSABLE_ENTITY, "plugin-unloadable"),
        };
        if status.is_server_error() {
            tracing::warn!("{e}");
        }
        Problem::new(status, kind, e.to_string())
    }
}

impl From<InstallError> for Problem {
    fn from(e: InstallError) -> Problem {
        match e {
            InstallError::Broken(inner) => Problem::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "plugin-unloadable",
                format!("the plugin cannot be loaded: {inner}"),
            ),
            InstallError::Conflict(msg) => {
                Problem::new(StatusCode::CONFLICT, "plugin-conflict", msg)
            }
            InstallError::NotFound(name) => {
                Problem::not_found(format!("no plugin named {name} is loaded"))
            }
            InstallError::Io(e) => Problem::internal(e),
        }
    }
}
