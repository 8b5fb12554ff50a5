//! Packages in distributions: the rows that say which blob is which
//! package where, with the index entries its plugin rendered at ingest.
//!
//! A package's pool paths and entries are also kept together in one column,
//! `rendered`, so that a publish reads one row per package (see
//! [`encode_rendered`]).

use serde::Serialize;
use sqlx::{Sqlite, Transaction};

use crate::db::{Db, new_id, now};

/// A package in one distribution, as the API shows it.
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
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
}

const SELECT: &str = "SELECT p.id, p.distribution, p.name, p.version, p.architecture, p.sha256, \
     b.size, p.filename, p.uploaded_by, p.created_at FROM packages p JOIN blobs b ON b.sha256 = p.sha256";

/// What ingest hands over to be stored.
pub struct NewPackage<'a> {
    pub distribution: &'a str,
    pub name: &'a str,
    pub version: &'a str,
    pub architecture: &'a str,
    pub sha256: &'a str,
    pub size: u64,
    pub format: &'a str,
    pub filename: &'a str,
    pub uploaded_by: &'a str,
    pub pool_paths: &'a [String],
    /// (index path, sort key, text)
    pub entries: Vec<(&'a str, &'a str, &'a str)>,
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
    serde_json::json!({ "pool_paths": pool_paths, "entries": entries }).to_string()
}

pub fn decode_rendered(column: &str) -> Result<Rendered, serde_json::Error> {
    serde_json::from_str(column)
}

/// The outcome of adding a package to a distribution.
pub enum Added {
    Created(PackageRecord),
    /// The same bytes were already there.
    Existing(PackageRecord),
    /// Another file already has this name, version and architecture.
    Conflict(PackageRecord),
    /// Another file is already published at one of its pool paths (the
    /// pool is shared by the distributions of a family).
    PathTaken {
        path: String,
        owner: PackageRecord,
    },
}

#[derive(Debug, Default)]
pub struct Filter {
    pub distribution: Option<String>,
    pub name: Option<String>,
    pub architecture: Option<String>,
}

pub async fn find_identity(
    tx: &mut Transaction<'_, Sqlite>,
    distribution: &str,
    name: &str,
    version: &str,
    architecture: &str,
) -> Result<Option<PackageRecord>, sqlx::Error> {
    sqlx::query_as(&format!(
        "{SELECT} WHERE p.distribution = $1 AND p.name = $2 AND p.version = $3 AND p.architecture = $4"
    ))
    .bind(distribution)
    .bind(name)
    .bind(version)
    .bind(architecture)
    .fetch_optional(&mut **tx)
    .await
}

/// Inserts the package (and its blob row if new) unless its identity is
/// taken; the caller commits the transaction.
pub async fn add(
    tx: &mut Transaction<'_, Sqlite>,
    p: &NewPackage<'_>,
) -> Result<Added, sqlx::Error> {
    if let Some(existing) =
        find_identity(tx, p.distribution, p.name, p.version, p.architecture).await?
    {
        return Ok(if existing.sha256 == p.sha256 {
            Added::Existing(existing)
        } else {
            Added::Conflict(existing)
        });
    }
    for path in p.pool_paths {
        let owner: Option<PackageRecord> = sqlx::query_as(&format!(
            "{SELECT} JOIN package_paths pp ON pp.package_id = p.id WHERE pp.path = $1 AND p.sha256 <> $2 LIMIT 1"
        ))
        .bind(path)
        .bind(p.sha256)
        .fetch_optional(&mut **tx)
        .await?;
        if let Some(owner) = owner {
            return Ok(Added::PathTaken {
                path: path.clone(),
                owner,
            });
        }
    }
    let known: Option<(String,)> = sqlx::query_as("SELECT sha256 FROM blobs WHERE sha256 = $1")
        .bind(p.sha256)
        .fetch_optional(&mut **tx)
        .await?;
    if known.is_none() {
        sqlx::query("INSERT INTO blobs (sha256, size, format, created_at) VALUES ($1, $2, $3, $4)")
            .bind(p.sha256)
            .bind(p.size as i64)
            .bind(p.format)
            .bind(now())
            .execute(&mut **tx)
            .await?;
    }
    let id = new_id();
    sqlx::query(
        "INSERT INTO packages (id, distribution, name, version, architecture, sha256, filename, uploaded_by, created_at, rendered) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
    )
    .bind(&id)
    .bind(p.distribution)
    .bind(p.name)
    .bind(p.version)
    .bind(p.architecture)
    .bind(p.sha256)
    .bind(p.filename)
    .bind(p.uploaded_by)
    .bind(now())
    .bind(encode_rendered(p.pool_paths, &p.entries))
    .execute(&mut **tx)
    .await?;
    for path in p.pool_paths {
        sqlx::query("INSERT INTO package_paths (package_id, path) VALUES ($1, $2)")
            .bind(&id)
            .bind(path)
            .execute(&mut **tx)
            .await?;
    }
    let record = sqlx::query_as(&format!("{SELECT} WHERE p.id = $1"))
        .bind(&id)
        .fetch_one(&mut **tx)
        .await?;
    Ok(Added::Created(record))
}

pub async fn get(db: &Db, id: &str) -> Result<Option<PackageRecord>, sqlx::Error> {
    sqlx::query_as(&format!("{SELECT} WHERE p.id = $1"))
        .bind(id)
        .fetch_optional(db)
        .await
}

pub async fn list(db: &Db, filter: &Filter) -> Result<Vec<PackageRecord>, sqlx::Error> {
    // Only the conditions that apply are emitted: PostgreSQL cannot type an
    // untyped `$1 IS NULL`, so the usual optional-filter trick is not portable.
    let mut query = sqlx::QueryBuilder::new(SELECT);
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

/// Removes a package from its distribution. Returns the removed record and
/// whether its blob is now unreferenced (the caller deletes the file after
/// commit).
pub async fn remove(
    tx: &mut Transaction<'_, Sqlite>,
    id: &str,
) -> Result<Option<(PackageRecord, bool)>, sqlx::Error> {
    let Some(record): Option<PackageRecord> = sqlx::query_as(&format!("{SELECT} WHERE p.id = $1"))
        .bind(id)
        .fetch_optional(&mut **tx)
        .await?
    else {
        return Ok(None);
    };
    sqlx::query("DELETE FROM packages WHERE id = $1")
        .bind(id)
        .execute(&mut **tx)
        .await?;
    let (users,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM packages WHERE sha256 = $1")
        .bind(&record.sha256)
        .fetch_one(&mut **tx)
        .await?;
    if users == 0 {
        sqlx::query("DELETE FROM blobs WHERE sha256 = $1")
            .bind(&record.sha256)
            .execute(&mut **tx)
            .await?;
    }
    Ok(Some((record, users == 0)))
}

/// SHA-256 of every blob the database knows.
pub async fn blob_hashes(db: &Db) -> Result<Vec<String>, sqlx::Error> {
    let rows: Vec<(String,)> = sqlx::query_as("SELECT sha256 FROM blobs")
        .fetch_all(db)
        .await?;
    Ok(rows.into_iter().map(|(h,)| h).collect())
}
