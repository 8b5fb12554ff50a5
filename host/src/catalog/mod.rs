//! Packages in distributions: the rows that say which blob is which
//! package where, with the index entries its plugin rendered for that
//! distribution.
//!
//! A `packages` row is *content* (Pulp's word): one file prepared for one
//! distribution, immutable but for its rendering (re-prepared when the
//! family plugin or its config changes). Which rows a distribution holds is
//! its *versions* ([`versions`]): removing a package ends its membership in
//! the next version but keeps the row, the blob and the pool file for as
//! long as a kept version lists them.
//!
//! A package's pool paths and entries are kept together in one column,
//! `rendered`, so that a publish reads one row per package (see
//! [`encode_rendered`]).

pub mod versions;

use std::collections::{HashMap, HashSet};

use crate::db::Sql;
use serde::Serialize;
use sqlx::{Any, Transaction};

use crate::db::{Db, Flag, new_id, now};
pub use versions::{Change, VersionRecord};

/// A package in one distribution, as the API shows it.
#[derive(Debug, Clone, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct PackageRecord {
    pub id: String,
    pub distribution: String,
    pub name: String,
    pub version: String,
    pub architecture: String,
    pub sha256: String,
    pub size: i64,
    pub filename: String,
    pub uploaded_by: String,
    pub created_at: i64,
    /// The row this one was promoted or migrated from (`None` for an
    /// upload): the same blob, prepared for another distribution. Lets a
    /// decision about the package follow it from tier to tier.
    pub origin: Option<String>,
    /// An RPM's header signature, as `rpm -K -v` words it (not verified
    /// here; clients check it against the keys they trust).
    pub signature: Option<String>,
    /// The key ID (16 hex digits) the signature names as its issuer.
    pub signature_key_id: Option<String>,
}

/// The columns of a [`PackageRecord`], from `packages p` and `blobs b`.
macro_rules! columns {
    () => {
        "p.id, p.distribution, p.name, p.version, p.architecture, p.sha256, \
         b.size, p.filename, p.uploaded_by, p.created_at, p.origin, b.signature, \
         b.signature_key_id"
    };
}
pub(crate) const COLUMNS: &str = columns!();

pub(crate) const SELECT: &str = concat!(
    "SELECT ",
    columns!(),
    " FROM packages p JOIN blobs b ON b.sha256 = p.sha256"
);

/// Serialises this process's catalog writes (ingest, removal, promotion,
/// migration, rollback, re-preparation, retention): version numbers are
/// handed out one change at a time, and retention never deletes a blob or
/// pool file a change is about to refer to again.
pub type WriteLock = std::sync::Arc<tokio::sync::Mutex<()>>;

/// Values per `IN (..)` list.
pub(crate) const BATCH: usize = 500;
/// Bound values per multi-row `INSERT`: well under SQLite's 32766 (and
/// PostgreSQL's 65535).
pub(crate) const INSERT_BINDS: usize = 5000;

/// `head` (ending in `IN (`) followed by `values` and `)`.
pub(crate) fn in_list<'a>(head: impl Into<String>, values: &[&'a str]) -> Sql<'a> {
    let mut q = Sql::new(head);
    q.push_list(values.iter().copied());
    q
}

/// The distinct values of `items`, in first-seen order.
fn distinct<'a>(items: impl Iterator<Item = &'a str>) -> Vec<&'a str> {
    let mut seen = HashSet::new();
    items.filter(|v| seen.insert(*v)).collect()
}

/// What ingest, promotion and migration hand over to be stored.
pub struct NewPackage<'a> {
    pub name: &'a str,
    pub version: &'a str,
    pub architecture: &'a str,
    pub sha256: &'a str,
    pub size: u64,
    pub format: &'a str,
    pub filename: &'a str,
    pub uploaded_by: &'a str,
    /// The row it is promoted or migrated from.
    pub origin: Option<&'a str>,
    /// What the reader parsed (JSON), for an upload; `None` for a package
    /// whose blob is stored already (promotion, migration).
    pub parsed: Option<&'a str>,
    pub pool_paths: &'a [String],
    /// (index path, sort key, text)
    pub entries: Vec<(&'a str, &'a str, &'a str)>,
    /// Store the row (and blob) but keep it out of the distribution's
    /// versions: a quarantined upload, published once a person approves.
    pub hold: bool,
    /// An RPM's header signature and its issuer's key ID (the reader's).
    pub signature: Option<&'a str>,
    pub signature_key_id: Option<&'a str>,
}

/// What a publish needs of a package besides its blob: its pool paths and
/// its index entries (index path, sort key, text) in the order the plugin
/// rendered them.
#[derive(Debug, Default, serde::Deserialize)]
pub struct Rendered {
    pub pool_paths: Vec<String>,
    pub entries: Vec<(String, String, String)>,
}

/// The `packages.rendered` column: JSON, which SQL can also write (the
/// migration that introduced it did) and `sqlite3` can show.
pub fn encode_rendered(pool_paths: &[String], entries: &[(&str, &str, &str)]) -> String {
    #[derive(Serialize)]
    struct Column<'a> {
        pool_paths: &'a [String],
        entries: &'a [(&'a str, &'a str, &'a str)],
    }
    serde_json::to_string(&Column {
        pool_paths,
        entries,
    })
    .expect("strings serialise")
}

pub fn decode_rendered(column: &str) -> Result<Rendered, serde_json::Error> {
    serde_json::from_str(column)
}

/// The outcome of adding a package to a distribution's next version.
#[derive(Debug)]
pub enum Added {
    /// A new row, now in the distribution.
    Created(PackageRecord),
    /// The distribution held these bytes before (an older version still
    /// lists them); the same row is back.
    Restored(PackageRecord),
    /// The same bytes are already there.
    Existing(PackageRecord),
    /// Another file already has this name, version and architecture.
    Conflict(PackageRecord),
    /// Another file had this name, version and architecture, was removed,
    /// and is still listed by a kept version (a pinned client may fetch it).
    Retained(PackageRecord),
    /// Another file is already published at one of its pool paths (the
    /// pool is shared by the distributions of a family, and by versions).
    PathTaken { path: String, owner: PackageRecord },
}

#[derive(Debug, Default)]
pub struct Filter {
    pub distribution: Option<String>,
    pub name: Option<String>,
    pub architecture: Option<String>,
}

/// Name, version, architecture.
type Identity = (String, String, String);

/// Adds `packages` to `change`'s distribution, in order; each gets its own
/// outcome and a refused one changes nothing. Queries are batched, so a
/// migration of thousands costs a few dozen statements, not thousands.
pub async fn add_many(
    tx: &mut Transaction<'_, Any>,
    change: &mut Change,
    packages: &[NewPackage<'_>],
) -> Result<Vec<Added>, sqlx::Error> {
    let dist = change.distribution().to_owned();
    // Rows of the distribution with the same identity, current or retained
    // (looked up by the unique index, so the cost follows what is found).
    let mut same: HashMap<Identity, (PackageRecord, bool)> = HashMap::new();
    for batch in packages.chunks(BATCH) {
        let mut q = Sql::new("WITH wanted (name, version, architecture) AS (");
        q.push_values(batch, |mut b, p| {
            b.push_bind(p.name)
                .push_bind(p.version)
                .push_bind(p.architecture);
        });
        // CROSS JOIN keeps `wanted` the outer loop in SQLite (without
        // statistics it would scan the distribution's rows once per wanted
        // row instead of looking each one up); PostgreSQL plans it as it
        // likes.
        q.push(format!(
            ") SELECT {COLUMNS}, (SELECT COUNT(*) FROM memberships m \
             WHERE m.package_id = p.id AND m.removed_in IS NULL) AS current \
             FROM wanted w CROSS JOIN packages p JOIN blobs b ON b.sha256 = p.sha256 \
             WHERE p.distribution = "
        ));
        q.push_bind(&dist);
        q.push(
            " AND p.name = w.name AND p.version = w.version AND p.architecture = w.architecture",
        );
        let rows: Vec<CurrentRow> = q.build_query_as().fetch_all(&mut **tx).await?;
        for row in rows {
            let key = (
                row.record.name.clone(),
                row.record.version.clone(),
                row.record.architecture.clone(),
            );
            same.insert(key, (row.record, row.current > 0));
        }
    }
    // Pool paths another file holds (any distribution, any kept row):
    // (path, the bytes wanted there) -> the row holding other bytes.
    let mut taken_by: HashMap<(String, String), String> = HashMap::new();
    let wanted: Vec<(&str, &str)> = {
        let mut seen = HashSet::new();
        packages
            .iter()
            .flat_map(|p| p.pool_paths.iter().map(|path| (path.as_str(), p.sha256)))
            .filter(|pair| seen.insert(*pair))
            .collect()
    };
    for batch in wanted.chunks(BATCH) {
        let mut q = Sql::new("WITH wanted (path, sha256) AS (");
        q.push_values(batch, |mut b, (path, sha)| {
            b.push_bind(*path).push_bind(*sha);
        });
        q.push(
            ") SELECT w.path, w.sha256, p.id FROM wanted w \
             CROSS JOIN package_paths pp JOIN packages p ON p.id = pp.package_id \
             WHERE pp.path = w.path AND p.sha256 <> w.sha256",
        );
        let rows: Vec<(String, String, String)> = q.build_query_as().fetch_all(&mut **tx).await?;
        for (path, sha, id) in rows {
            taken_by.entry((path, sha)).or_insert(id);
        }
    }
    // ...and the paths this call's earlier packages claim: path -> (blob, row).
    let mut claimed: HashMap<String, (String, String)> = HashMap::new();
    let mut known_blobs: HashSet<String> = HashSet::new();
    let uploads = packages.iter().filter(|p| p.parsed.is_some());
    for batch in distinct(uploads.map(|p| p.sha256)).chunks(BATCH) {
        let rows: Vec<(String,)> = in_list("SELECT sha256 FROM blobs WHERE sha256 IN (", batch)
            .build_query_as()
            .fetch_all(&mut **tx)
            .await?;
        known_blobs.extend(rows.into_iter().map(|(s,)| s));
    }

    let created_at = now();
    let mut outcomes: Vec<Option<Added>> = Vec::with_capacity(packages.len());
    let mut new_blobs: Vec<&NewPackage> = Vec::new();
    let mut new_rows: Vec<(String, &NewPackage)> = Vec::new();
    let mut restored: Vec<String> = Vec::new();
    // Refusals for a taken path: (outcome index, path, owner row id); the
    // owners' records are read (or taken from `created`) at the end.
    let mut taken: Vec<(usize, String, String)> = Vec::new();
    let mut created: HashMap<String, PackageRecord> = HashMap::new();
    for p in packages {
        let key = (
            p.name.to_owned(),
            p.version.to_owned(),
            p.architecture.to_owned(),
        );
        if let Some((existing, current)) = same.get(&key).cloned() {
            let outcome = match (existing.sha256 == p.sha256, current) {
                (true, true) => Added::Existing(existing),
                (true, false) => {
                    restored.push(existing.id.clone());
                    same.insert(key, (existing.clone(), true));
                    Added::Restored(existing)
                }
                (false, true) => Added::Conflict(existing),
                (false, false) => Added::Retained(existing),
            };
            outcomes.push(Some(outcome));
            continue;
        }
        if let Some((path, owner)) = p.pool_paths.iter().find_map(|path| {
            let held = taken_by
                .get(&(path.clone(), p.sha256.to_owned()))
                .or_else(|| {
                    claimed
                        .get(path)
                        .filter(|(sha, _)| sha != p.sha256)
                        .map(|(_, id)| id)
                });
            held.map(|id| (path, id))
        }) {
            taken.push((outcomes.len(), path.clone(), owner.clone()));
            outcomes.push(None);
            continue;
        }
        let record = PackageRecord {
            id: new_id(),
            distribution: dist.clone(),
            name: p.name.to_owned(),
            version: p.version.to_owned(),
            architecture: p.architecture.to_owned(),
            sha256: p.sha256.to_owned(),
            size: p.size as i64,
            filename: p.filename.to_owned(),
            uploaded_by: p.uploaded_by.to_owned(),
            created_at,
            origin: p.origin.map(str::to_owned),
            signature: p.signature.map(str::to_owned),
            signature_key_id: p.signature_key_id.map(str::to_owned),
        };
        // Later packages of the same call see this one.
        for path in p.pool_paths {
            claimed
                .entry(path.clone())
                .or_insert_with(|| (record.sha256.clone(), record.id.clone()));
        }
        same.insert(key, (record.clone(), true));
        if p.parsed.is_some() && known_blobs.insert(p.sha256.to_owned()) {
            new_blobs.push(p);
        }
        new_rows.push((record.id.clone(), p));
        created.insert(record.id.clone(), record.clone());
        outcomes.push(Some(Added::Created(record)));
    }
    if !taken.is_empty() {
        let ids: Vec<&str> = taken.iter().map(|(_, _, id)| id.as_str()).collect();
        for batch in distinct(ids.into_iter()).chunks(BATCH) {
            let mut q = Sql::new(SELECT);
            q.push(" WHERE p.id IN (");
            q.push_list(batch.iter().copied());
            let read: Vec<PackageRecord> = q.build_query_as().fetch_all(&mut **tx).await?;
            for record in read {
                created.insert(record.id.clone(), record);
            }
        }
        for (at, path, owner) in taken {
            let owner = created[&owner].clone();
            outcomes[at] = Some(Added::PathTaken { path, owner });
        }
    }

    for batch in new_blobs.chunks(INSERT_BINDS / 7) {
        let mut q = Sql::new(
            "INSERT INTO blobs (sha256, size, format, created_at, parsed, signature, \
             signature_key_id) ",
        );
        q.push_values(batch, |mut b, p| {
            b.push_bind(p.sha256)
                .push_bind(p.size as i64)
                .push_bind(p.format)
                .push_bind(created_at)
                .push_bind(p.parsed)
                .push_bind(p.signature)
                .push_bind(p.signature_key_id);
        });
        q.build().execute(&mut **tx).await?;
    }
    for batch in new_rows.chunks(INSERT_BINDS / 11) {
        let mut q = Sql::new(
            "INSERT INTO packages (id, distribution, name, version, architecture, sha256, filename, uploaded_by, created_at, rendered, origin) ",
        );
        q.push_values(batch, |mut b, (id, p)| {
            b.push_bind(id.as_str())
                .push_bind(dist.as_str())
                .push_bind(p.name)
                .push_bind(p.version)
                .push_bind(p.architecture)
                .push_bind(p.sha256)
                .push_bind(p.filename)
                .push_bind(p.uploaded_by)
                .push_bind(created_at)
                .push_bind(encode_rendered(p.pool_paths, &p.entries))
                .push_bind(p.origin);
        });
        q.build().execute(&mut **tx).await?;
    }
    let paths: Vec<(&str, &str)> = new_rows
        .iter()
        .flat_map(|(id, p)| {
            p.pool_paths
                .iter()
                .map(move |path| (id.as_str(), path.as_str()))
        })
        .collect();
    for batch in paths.chunks(INSERT_BINDS / 2) {
        let mut q = Sql::new("INSERT INTO package_paths (package_id, path) ");
        q.push_values(batch, |mut b, (id, path)| {
            b.push_bind(*id).push_bind(*path);
        });
        q.build().execute(&mut **tx).await?;
    }
    let held: HashSet<&str> = packages
        .iter()
        .zip(&outcomes)
        .filter(|(p, _)| p.hold)
        .filter_map(|(_, o)| match o {
            Some(Added::Created(r) | Added::Restored(r)) => Some(r.id.as_str()),
            _ => None,
        })
        .collect();
    let members: Vec<&str> = new_rows
        .iter()
        .map(|(id, _)| id.as_str())
        .chain(restored.iter().map(String::as_str))
        .filter(|id| !held.contains(id))
        .collect();
    change.add_many(tx, &members).await?;
    // Held rows are marked (retention keeps them, decisions release them);
    // a row added to a version is not held any more.
    let held: Vec<&str> = held.into_iter().collect();
    for (ids, flag) in [(&held, true), (&members, false)] {
        for batch in ids.chunks(BATCH) {
            let mut q = Sql::new("UPDATE packages SET held = ");
            q.push_bind(flag).push(" WHERE id IN (");
            q.push_list(batch.iter().copied());
            q.build().execute(&mut **tx).await?;
        }
    }
    Ok(outcomes
        .into_iter()
        .map(|o| o.expect("every outcome decided"))
        .collect())
}

#[derive(sqlx::FromRow)]
struct CurrentRow {
    #[sqlx(flatten)]
    record: PackageRecord,
    current: i64,
}

/// [`add_many`] for one package.
pub async fn add(
    tx: &mut Transaction<'_, Any>,
    change: &mut Change,
    p: NewPackage<'_>,
) -> Result<Added, sqlx::Error> {
    Ok(add_many(tx, change, std::slice::from_ref(&p))
        .await?
        .pop()
        .expect("one outcome per package"))
}

/// Any row, current or kept for an older version.
pub async fn get(db: &Db, id: &str) -> Result<Option<PackageRecord>, sqlx::Error> {
    sqlx::query_as(&format!("{SELECT} WHERE p.id = $1"))
        .bind(id)
        .fetch_optional(db)
        .await
}

/// The packages distributions hold now (their latest versions).
pub async fn list(db: &Db, filter: &Filter) -> Result<Vec<PackageRecord>, sqlx::Error> {
    // Only the conditions that apply are emitted: PostgreSQL cannot type an
    // untyped `$1 IS NULL`, so the usual optional-filter trick is not portable.
    let mut query = Sql::new(SELECT);
    query.push(" JOIN memberships m ON m.package_id = p.id AND m.removed_in IS NULL");
    let mut sep = " WHERE ";
    for (column, value) in [
        ("p.distribution", &filter.distribution),
        ("p.name", &filter.name),
        ("p.architecture", &filter.architecture),
    ] {
        if let Some(value) = value {
            query.push(sep).push(column).push(" = ").push_bind(value);
            sep = " AND ";
        }
    }
    query.push(" ORDER BY p.distribution, p.name, p.version, p.architecture");
    query.build_query_as().fetch_all(db).await
}

/// Ends the package's membership in its distribution with `change`'s
/// version. The row, its blob and its pool file stay while a kept version
/// lists them. `None` if there is no such row in the current version.
pub async fn remove(
    tx: &mut Transaction<'_, Any>,
    change: &mut Change,
    id: &str,
) -> Result<Option<PackageRecord>, sqlx::Error> {
    let record: Option<PackageRecord> = sqlx::query_as(&format!(
        "{SELECT} JOIN memberships m ON m.package_id = p.id AND m.removed_in IS NULL WHERE p.id = $1"
    ))
    .bind(id)
    .fetch_optional(&mut **tx)
    .await?;
    let Some(record) = record else {
        return Ok(None);
    };
    if record.distribution != change.distribution() {
        return Ok(None);
    }
    change.remove_many(tx, &[id]).await?;
    Ok(Some(record))
}

/// Deletes a row the vulnerability gate holds back (not in the current
/// version), with its pool paths, scans and decisions; its blob too when no
/// other row uses it (the caller deletes the file after the commit). A held
/// row a kept version still lists is only un-held (retention collects it
/// with that version). `None` if there is no such row.
pub async fn discard_held(
    tx: &mut Transaction<'_, Any>,
    id: &str,
) -> Result<Option<(PackageRecord, Vec<String>)>, sqlx::Error> {
    let record: Option<PackageRecord> = sqlx::query_as(&format!(
        "{SELECT} WHERE p.id = $1 AND p.held = TRUE AND NOT EXISTS (SELECT 1 FROM memberships m \
         WHERE m.package_id = p.id AND m.removed_in IS NULL)"
    ))
    .bind(id)
    .fetch_optional(&mut **tx)
    .await?;
    let Some(record) = record else {
        return Ok(None);
    };
    let (Flag(listed),): (Flag,) =
        sqlx::query_as("SELECT EXISTS (SELECT 1 FROM memberships WHERE package_id = $1)")
            .bind(id)
            .fetch_one(&mut **tx)
            .await?;
    if listed {
        sqlx::query("UPDATE packages SET held = FALSE WHERE id = $1")
            .bind(id)
            .execute(&mut **tx)
            .await?;
        return Ok(Some((record, Vec::new())));
    }
    // Never published, so no tree lists its paths and no pool file was
    // linked for it; a row with the same bytes keeps them in any case.
    sqlx::query("DELETE FROM package_paths WHERE package_id = $1")
        .bind(id)
        .execute(&mut **tx)
        .await?;
    sqlx::query("DELETE FROM packages WHERE id = $1")
        .bind(id)
        .execute(&mut **tx)
        .await?;
    let used: Option<(String,)> =
        sqlx::query_as("SELECT id FROM packages WHERE sha256 = $1 LIMIT 1")
            .bind(&record.sha256)
            .fetch_optional(&mut **tx)
            .await?;
    let blobs = if used.is_none() {
        delete_blob(tx, &record.sha256).await?
    } else {
        Vec::new()
    };
    Ok(Some((record, blobs)))
}

/// Deletes the row of blob `sha256`, which no package row uses any more,
/// and that of the upload it was signed from (`signed_from`) when nothing
/// uses that either; the SHA-256s deleted, whose files go next. An upload
/// a signed copy was made from stays while the copy does.
pub(crate) async fn delete_blob(
    tx: &mut Transaction<'_, Any>,
    sha256: &str,
) -> Result<Vec<String>, sqlx::Error> {
    let (Flag(original_of_a_copy),): (Flag,) =
        sqlx::query_as("SELECT EXISTS (SELECT 1 FROM blobs WHERE signed_from = $1)")
            .bind(sha256)
            .fetch_one(&mut **tx)
            .await?;
    if original_of_a_copy {
        return Ok(Vec::new());
    }
    let from: Option<(Option<String>,)> =
        sqlx::query_as("SELECT signed_from FROM blobs WHERE sha256 = $1")
            .bind(sha256)
            .fetch_optional(&mut **tx)
            .await?;
    sqlx::query("DELETE FROM blobs WHERE sha256 = $1")
        .bind(sha256)
        .execute(&mut **tx)
        .await?;
    let mut deleted = vec![sha256.to_owned()];
    if let Some((Some(original),)) = from {
        let (Flag(used),): (Flag,) = sqlx::query_as(
            "SELECT EXISTS (SELECT 1 FROM packages WHERE sha256 = $1) \
             OR EXISTS (SELECT 1 FROM blobs WHERE signed_from = $1)",
        )
        .bind(&original)
        .fetch_one(&mut **tx)
        .await?;
        if !used {
            sqlx::query("DELETE FROM blobs WHERE sha256 = $1")
                .bind(&original)
                .execute(&mut **tx)
                .await?;
            deleted.push(original);
        }
    }
    Ok(deleted)
}

/// SHA-256 of every blob the database knows.
pub async fn blob_hashes(db: &Db) -> Result<Vec<String>, sqlx::Error> {
    let rows: Vec<(String,)> = sqlx::query_as("SELECT sha256 FROM blobs")
        .fetch_all(db)
        .await?;
    Ok(rows.into_iter().map(|(h,)| h).collect())
}

/// A package row with what preparing it again needs: its blob's parsed
/// metadata (`None` for blobs stored before migration 0005).
#[derive(Debug, sqlx::FromRow)]
pub struct Source {
    #[sqlx(flatten)]
    pub record: PackageRecord,
    pub format: String,
    pub parsed: Option<String>,
}

/// Rows of `ids`, with their blobs' parsed metadata, by name, version and
/// architecture.
pub async fn sources(db: &Db, ids: &[&str]) -> Result<Vec<Source>, sqlx::Error> {
    let mut out = Vec::with_capacity(ids.len());
    for batch in ids.chunks(BATCH) {
        let mut q = in_list(format!("{SOURCES} WHERE p.id IN ("), batch);
        out.extend(q.build_query_as::<Source>().fetch_all(db).await?);
    }
    Ok(by_identity(out))
}

/// Every package `dist` holds now, with its blob's parsed metadata, by
/// name, version and architecture (one query).
pub async fn current_sources(db: &Db, dist: &str) -> Result<Vec<Source>, sqlx::Error> {
    let out = sqlx::query_as(&format!(
        "{SOURCES} JOIN memberships m ON m.package_id = p.id AND m.removed_in IS NULL \
         WHERE p.distribution = $1"
    ))
    .bind(dist)
    .fetch_all(db)
    .await?;
    Ok(by_identity(out))
}

const SOURCES: &str = concat!(
    "SELECT ",
    columns!(),
    ", b.format, b.parsed FROM packages p JOIN blobs b ON b.sha256 = p.sha256"
);

fn by_identity(mut out: Vec<Source>) -> Vec<Source> {
    out.sort_by(|a, b| {
        let key = |s: &Source| {
            (
                s.record.name.clone(),
                s.record.version.clone(),
                s.record.architecture.clone(),
            )
        };
        key(a).cmp(&key(b))
    });
    out
}

/// Which of `ids` still exist, in the caller's transaction (under the write
/// lock: rows read before it may have been collected meanwhile).
pub async fn still_there(
    tx: &mut Transaction<'_, Any>,
    ids: &[&str],
) -> Result<HashSet<String>, sqlx::Error> {
    let mut out = HashSet::with_capacity(ids.len());
    for batch in ids.chunks(BATCH) {
        let rows: Vec<(String,)> = in_list("SELECT id FROM packages WHERE id IN (", batch)
            .build_query_as()
            .fetch_all(&mut **tx)
            .await?;
        out.extend(rows.into_iter().map(|(id,)| id));
    }
    Ok(out)
}

/// Which of `ids` the vulnerability gate holds, in the caller's transaction.
pub async fn held(
    tx: &mut Transaction<'_, Any>,
    ids: &[&str],
) -> Result<HashSet<String>, sqlx::Error> {
    let mut out = HashSet::new();
    for batch in ids.chunks(BATCH) {
        let mut q = in_list(
            "SELECT id FROM packages WHERE held = TRUE AND id IN (",
            batch,
        );
        let rows: Vec<(String,)> = q.build_query_as().fetch_all(&mut **tx).await?;
        out.extend(rows.into_iter().map(|(id,)| id));
    }
    Ok(out)
}

/// Records what the reader parsed from a blob stored before it was kept.
pub async fn set_parsed(db: &Db, sha256: &str, parsed: &str) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE blobs SET parsed = $1 WHERE sha256 = $2")
        .bind(parsed)
        .bind(sha256)
        .execute(db)
        .await?;
    Ok(())
}

/// What [`rerender`] did with one row.
#[derive(Debug)]
pub enum Rerendered {
    /// The row has its new rendering; these pool paths (its old ones) no
    /// row names any more.
    Done { orphaned: Vec<String> },
    /// The row no longer exists (retention collected it meanwhile).
    Gone,
    /// A new pool path holds another file (row `by`): one path, one file,
    /// so the row keeps its rendering.
    PathTaken { path: String, by: String },
}

/// Replaces a row's rendering (pool paths and entries) after its family
/// plugin or config changed.
pub async fn rerender(
    tx: &mut Transaction<'_, Any>,
    record: &PackageRecord,
    pool_paths: &[String],
    entries: &[(&str, &str, &str)],
) -> Result<Rerendered, sqlx::Error> {
    let old: Vec<(String,)> =
        sqlx::query_as("SELECT path FROM package_paths WHERE package_id = $1")
            .bind(&record.id)
            .fetch_all(&mut **tx)
            .await?;
    let old: Vec<String> = old.into_iter().map(|(p,)| p).collect();
    for path in pool_paths.iter().filter(|p| !old.contains(p)) {
        let by: Option<(String,)> = sqlx::query_as(
            "SELECT p.id FROM package_paths pp JOIN packages p ON p.id = pp.package_id \
             WHERE pp.path = $1 AND p.sha256 <> $2 LIMIT 1",
        )
        .bind(path)
        .bind(&record.sha256)
        .fetch_optional(&mut **tx)
        .await?;
        if let Some((by,)) = by {
            return Ok(Rerendered::PathTaken {
                path: path.clone(),
                by,
            });
        }
    }
    let updated = sqlx::query("UPDATE packages SET rendered = $1 WHERE id = $2")
        .bind(encode_rendered(pool_paths, entries))
        .bind(&record.id)
        .execute(&mut **tx)
        .await?;
    if updated.rows_affected() == 0 {
        return Ok(Rerendered::Gone);
    }
    if old.as_slice() == pool_paths {
        return Ok(Rerendered::Done { orphaned: vec![] });
    }
    sqlx::query("DELETE FROM package_paths WHERE package_id = $1")
        .bind(&record.id)
        .execute(&mut **tx)
        .await?;
    for path in pool_paths {
        sqlx::query("INSERT INTO package_paths (package_id, path) VALUES ($1, $2)")
            .bind(&record.id)
            .bind(path)
            .execute(&mut **tx)
            .await?;
    }
    let mut orphaned = Vec::new();
    for path in old.into_iter().filter(|p| !pool_paths.contains(p)) {
        let users: Option<(String,)> =
            sqlx::query_as("SELECT package_id FROM package_paths WHERE path = $1 LIMIT 1")
                .bind(&path)
                .fetch_optional(&mut **tx)
                .await?;
        if users.is_none() {
            orphaned.push(path);
        }
    }
    Ok(Rerendered::Done { orphaned })
}
