//! Read views that gather what one screen shows in one round trip: the
//! caller's own identity, every distribution at a glance, and one package
//! with everything known about it. The console's pages use them, and so can
//! any client; they grant nothing the other reader routes do not.

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::{Path, State};
use serde::Serialize;

use super::distributions::DistributionView;
use super::{AppState, Problem};
use crate::catalog::{self, PackageRecord};
use crate::db::Flag;
use crate::scan::{Decision, Scan};
use crate::tokens::{Caller, Role};

#[derive(Serialize, utoipa::ToSchema)]
pub struct Whoami {
    /// The token's name.
    pub name: String,
    /// reader, uploader, maintainer or admin.
    pub role: &'static str,
}

#[utoipa::path(
    get,
    path = "/whoami",
    tag = "tokens",
    summary = "The calling token's name and role (reader)",
    security(("bearer" = [])),
    responses((status = 200, description = "who is calling", body = Whoami), (status = 401, description = "missing or unknown token"))
)]
pub async fn whoami(caller: Caller) -> Result<Json<Whoami>, Problem> {
    caller.require(Role::Reader)?;
    Ok(Json(Whoami {
        role: caller.role.as_str(),
        name: caller.name,
    }))
}

#[derive(Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct LatestVersion {
    pub number: i64,
    /// Unix milliseconds.
    pub created_ms: i64,
    pub actor: String,
    pub action: String,
    /// Packages in this version.
    pub packages: i64,
}

#[derive(Serialize)]
pub struct TierSummary {
    #[serde(flatten)]
    distribution: DistributionView,
    /// `None` before the first change.
    latest: Option<LatestVersion>,
    /// Current and held packages per scan state.
    scan_states: BTreeMap<String, i64>,
}

#[derive(Serialize)]
pub struct Overview {
    distributions: Vec<TierSummary>,
}

#[utoipa::path(
    get,
    path = "/overview",
    tag = "distributions",
    summary = "Every served distribution with its latest version and its packages per scan state (reader)",
    security(("bearer" = [])),
    responses((status = 200, description = "the overview"), (status = 401, description = "missing or unknown token"))
)]
pub async fn overview(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<Overview>, Problem> {
    caller.require(Role::Reader)?;
    let latest: Vec<(String, i64, i64, String, String, i64)> = sqlx::query_as(
        "SELECT v.distribution, v.number, v.created_ms, v.actor, v.action, v.packages \
         FROM versions v JOIN distributions d ON d.id = v.distribution AND v.number = d.latest",
    )
    .fetch_all(&state.db)
    .await
    .map_err(Problem::internal)?;
    let mut latest: BTreeMap<String, LatestVersion> = latest
        .into_iter()
        .map(|(dist, number, created_ms, actor, action, packages)| {
            let v = LatestVersion {
                number,
                created_ms,
                actor,
                action,
                packages,
            };
            (dist, v)
        })
        .collect();
    let states: Vec<(String, String, i64)> = sqlx::query_as(
        "SELECT p.distribution, s.state, COUNT(*) FROM packages p \
         JOIN scans s ON s.package_id = p.id \
         WHERE p.held = TRUE OR EXISTS (SELECT 1 FROM memberships m \
           WHERE m.package_id = p.id AND m.removed_in IS NULL) \
         GROUP BY p.distribution, s.state",
    )
    .fetch_all(&state.db)
    .await
    .map_err(Problem::internal)?;
    let mut by_dist: BTreeMap<String, BTreeMap<String, i64>> = BTreeMap::new();
    for (dist, s, n) in states {
        by_dist.entry(dist).or_default().insert(s, n);
    }
    let registry = state.plugins.registry();
    let distributions = registry
        .distributions()
        .map(|(f, d)| TierSummary {
            latest: latest.remove(&d.id),
            scan_states: by_dist.remove(&d.id).unwrap_or_default(),
            distribution: DistributionView::of(f, d),
        })
        .collect();
    Ok(Json(Overview { distributions }))
}

#[derive(Serialize)]
pub struct IndexEntry {
    /// The index file the entry goes into (relative to the tree).
    index: String,
    /// The text the family plugin rendered for it.
    text: String,
}

#[derive(Serialize)]
pub struct Sibling {
    id: String,
    distribution: String,
    /// In the distribution's latest version.
    current: bool,
    /// Held back by the vulnerability gate (quarantined or rejected).
    held: bool,
}

#[derive(Serialize, sqlx::FromRow)]
pub struct Membership {
    /// The version that added it.
    added_in: i64,
    /// The version that removed it; `None` while it is there.
    removed_in: Option<i64>,
}

#[derive(Serialize)]
pub struct PackageDetails {
    package: PackageRecord,
    /// Held back by the vulnerability gate: in no version.
    held: bool,
    /// Where the published tree shows the file.
    tree_paths: Vec<String>,
    /// The package's metadata as its index files carry it.
    entries: Vec<IndexEntry>,
    /// Which versions of its distribution hold it.
    memberships: Vec<Membership>,
    /// Other rows of the same file: the distributions it was promoted or
    /// migrated to (or from).
    same_file: Vec<Sibling>,
    /// Its latest scan; `None` for a distribution no plugin serves.
    scan: Option<Scan>,
    /// Every decision about it, newest first.
    decisions: Vec<Decision>,
}

#[utoipa::path(
    get,
    path = "/packages/{id}/details",
    tag = "packages",
    summary = "One package with its metadata, tree paths, versions, the other distributions that carry the same file, its scan and its decisions (reader)",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "package id")),
    responses((status = 200, description = "the package"), (status = 404, description = "no such package"), (status = 401, description = "missing or unknown token"))
)]
pub async fn package_details(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<PackageDetails>, Problem> {
    caller.require(Role::Reader)?;
    let package = catalog::get(&state.db, &id)
        .await
        .map_err(Problem::internal)?
        .ok_or_else(|| Problem::not_found(format!("no package with id {id}")))?;
    // Gone since the read above (a held package discarded): 404 as well.
    let (rendered, Flag(held)): (String, Flag) =
        sqlx::query_as("SELECT rendered, held FROM packages WHERE id = $1")
            .bind(&id)
            .fetch_optional(&state.db)
            .await
            .map_err(Problem::internal)?
            .ok_or_else(|| Problem::not_found(format!("no package with id {id}")))?;
    let rendered = catalog::decode_rendered(&rendered).map_err(Problem::internal)?;
    let memberships = sqlx::query_as(
        "SELECT added_in, removed_in FROM memberships WHERE package_id = $1 ORDER BY added_in",
    )
    .bind(&id)
    .fetch_all(&state.db)
    .await
    .map_err(Problem::internal)?;
    let same_file: Vec<(String, String, Flag, Flag)> = sqlx::query_as(
        "SELECT p.id, p.distribution, EXISTS (SELECT 1 FROM memberships m \
           WHERE m.package_id = p.id AND m.removed_in IS NULL) AS current, p.held \
         FROM packages p WHERE p.sha256 = $1 AND p.id <> $2 ORDER BY p.distribution",
    )
    .bind(&package.sha256)
    .bind(&id)
    .fetch_all(&state.db)
    .await
    .map_err(Problem::internal)?;
    let scan = crate::scan::current(&state.db, &state.plugins, &state.packages.policies, &id)
        .await
        .map_err(Problem::internal)?;
    let decisions = crate::scan::decisions_of(&state.db, &id)
        .await
        .map_err(Problem::internal)?;
    Ok(Json(PackageDetails {
        package,
        held,
        tree_paths: rendered.pool_paths,
        entries: rendered
            .entries
            .into_iter()
            .map(|(index, _, text)| IndexEntry { index, text })
            .collect(),
        memberships,
        same_file: same_file
            .into_iter()
            .map(|(id, distribution, Flag(current), Flag(held))| Sibling {
                id,
                distribution,
                current,
                held,
            })
            .collect(),
        scan,
        decisions,
    }))
}
