//! `GET /distributions/{id}/vex`: people's decisions about a distribution's
//! packages as an OpenVEX document (v0.2.0), so scanners such as Grype and
//! Trivy honour them.
//!
//! One statement per decision and advisory it covers: an approval says
//! `not_affected` with the maintainer's justification as the impact
//! statement (OpenVEX accepts one in place of a justification label: repod
//! does not know which label applies); a rejection says `affected`, with
//! the package removed as the action. Products are purls: `pkg:deb/...` or
//! `pkg:rpm/...`, namespaced by the distribution's Grype id (its vendor),
//! with `arch` and `distro` qualifiers.

use axum::Json;
use axum::extract::{Path, State};
use serde_json::{Value, json};

use super::{AppState, Problem};
use crate::tokens::{Caller, Role};

/// Percent-encodes a purl segment or qualifier value (RFC 3986 unreserved
/// characters stay; `+` and `:` too, as purl allows in versions).
fn purl_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' | b'+' | b':' => {
                out.push(b as char)
            }
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

#[derive(sqlx::FromRow)]
struct Row {
    name: String,
    version: String,
    architecture: String,
    format: String,
    decision: String,
    justification: String,
    actor: String,
    at_ms: i64,
    covers: String,
}

#[utoipa::path(
    get,
    path = "/distributions/{id}/vex",
    tag = "scans",
    summary = "The decisions about a distribution's packages as an OpenVEX document (reader)",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "distribution id")),
    responses((status = 200, description = "OpenVEX v0.2.0 document"), (status = 404, description = "unknown distribution"), (status = 401, description = "missing or unknown token"))
)]
pub async fn document(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<Value>, Problem> {
    caller.require(Role::Reader)?;
    let vendor = match state.plugins.registry().distribution(&id) {
        Some((_, d)) => d
            .vulnerability
            .grype
            .split(':')
            .next()
            .unwrap_or("")
            .to_owned(),
        None => {
            return Err(Problem::not_found(format!(
                "no distribution {id}; GET /api/v1/distributions lists them"
            )));
        }
    };
    // The latest live (unexpired) decision about each package the
    // distribution holds now or holds back (quarantined, rejected).
    let rows: Vec<Row> = sqlx::query_as(
        "SELECT p.name, p.version, p.architecture, b.format, d.decision, d.justification, \
         d.actor, d.at_ms, d.covers FROM decisions d JOIN packages p ON p.id = d.package_id \
         JOIN blobs b ON b.sha256 = p.sha256 WHERE p.distribution = $1 \
         AND (p.held = TRUE OR EXISTS (SELECT 1 FROM memberships m WHERE m.package_id = p.id \
              AND m.removed_in IS NULL)) \
         AND (d.expires_ms IS NULL OR d.expires_ms > $2) \
         AND NOT EXISTS (SELECT 1 FROM decisions later WHERE later.package_id = d.package_id \
              AND (later.at_ms > d.at_ms OR (later.at_ms = d.at_ms AND later.id > d.id))) \
         ORDER BY p.name, p.version, p.architecture",
    )
    .bind(&id)
    .bind(crate::scan::now_ms())
    .fetch_all(&state.db)
    .await
    .map_err(Problem::internal)?;
    let mut statements = Vec::new();
    let mut newest = 0;
    for row in rows {
        newest = newest.max(row.at_ms);
        let covers: Vec<String> = serde_json::from_str(&row.covers).unwrap_or_default();
        let purl = format!(
            "pkg:{}/{}/{}@{}?arch={}&distro={}",
            row.format,
            purl_escape(&vendor),
            purl_escape(&row.name),
            purl_escape(&row.version),
            purl_escape(&row.architecture),
            purl_escape(&id)
        );
        for advisory in covers {
            // The CVE ids a scanner matches on, besides the advisory's own.
            let aliases: Vec<(String,)> = sqlx::query_as(
                "SELECT alias FROM advisory_aliases WHERE advisory_id = $1 ORDER BY alias",
            )
            .bind(&advisory)
            .fetch_all(&state.db)
            .await
            .map_err(Problem::internal)?;
            let aliases: Vec<String> = aliases.into_iter().map(|(a,)| a).collect();
            let mut statement = json!({
                "vulnerability": {"name": advisory, "aliases": aliases},
                "products": [{"@id": purl}],
                "timestamp": crate::advisories::rfc3339(row.at_ms),
            });
            if row.decision == "approve" {
                statement["status"] = json!("not_affected");
                statement["impact_statement"] =
                    json!(format!("{} (approved by {})", row.justification, row.actor));
            } else {
                statement["status"] = json!("affected");
                statement["action_statement"] = json!(format!(
                    "removed from {id}: {} (rejected by {})",
                    row.justification, row.actor
                ));
            }
            statements.push(statement);
        }
    }
    Ok(Json(json!({
        "@context": "https://openvex.dev/ns/v0.2.0",
        "@id": format!("urn:repod:vex:{id}:{newest}"),
        "author": "repod",
        "timestamp": crate::advisories::rfc3339(if newest > 0 { newest } else { crate::scan::now_ms() }),
        "version": 1,
        "statements": statements,
    })))
}

#[cfg(test)]
mod tests {
    #[test]
    fn purl_parts_are_escaped() {
        assert_eq!(super::purl_escape("1:2.3+dfsg-1~b1"), "1:2.3+dfsg-1~b1");
        assert_eq!(super::purl_escape("a b/c"), "a%20b%2Fc");
    }
}
