//! The metadata database. SQLite (WAL) in the data directory by default.
//!
//! Queries are plain SQL that PostgreSQL also accepts: ids are text, times
//! are integer unix seconds, no SQLite-only types or upserts.

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use anyhow::Context;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};

pub type Db = SqlitePool;

/// Opens (creating if needed) the database at `path` and runs migrations.
pub async fn open(path: &Path) -> anyhow::Result<Db> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let options = SqliteConnectOptions::from_str(&format!("sqlite://{}", path.display()))?
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Full)
        .foreign_keys(true)
        .busy_timeout(Duration::from_secs(10));
    let pool = SqlitePoolOptions::new()
        .max_connections(8)
        .connect_with(options)
        .await
        .with_context(|| format!("cannot open database {}", path.display()))?;
    sqlx::migrate!("./migrations/sqlite")
        .run(&pool)
        .await
        .context("database migration failed")?;
    // Statistics for the query planner, where SQLite judges them useful.
    sqlx::query("PRAGMA optimize=0x10002")
        .execute(&pool)
        .await
        .context("PRAGMA optimize")?;
    Ok(pool)
}

/// A transaction that writes. It takes SQLite's write lock at `BEGIN
/// IMMEDIATE`, so one that reads before it writes cannot fail on a stale
/// snapshot when another connection (a CLI, a token or audit insert)
/// wrote in between; waiting for the lock follows the busy timeout.
pub async fn write(db: &Db) -> Result<sqlx::Transaction<'static, sqlx::Sqlite>, sqlx::Error> {
    db.begin_with("BEGIN IMMEDIATE").await
}

pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// A random 128-bit id, as hex: portable across SQLite and PostgreSQL.
pub fn new_id() -> String {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes).expect("OS random source");
    hex::encode(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A database at `<dir>/repod.db` with the migrations named below
    /// `before` applied and `rows` inserted, as an older repod left it.
    async fn older_database(dir: &Path, before: &str, rows: &[&str]) -> std::path::PathBuf {
        let old = dir.join("old-migrations");
        std::fs::create_dir(&old).unwrap();
        let all = Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations/sqlite");
        for entry in std::fs::read_dir(&all).unwrap() {
            let name = entry.unwrap().file_name();
            if name.to_string_lossy().as_ref() < before {
                std::fs::copy(all.join(&name), old.join(&name)).unwrap();
            }
        }
        let path = dir.join("repod.db");
        let options = SqliteConnectOptions::from_str(&format!("sqlite://{}", path.display()))
            .unwrap()
            .create_if_missing(true);
        let pool = SqlitePool::connect_with(options).await.unwrap();
        sqlx::migrate::Migrator::new(old.as_path())
            .await
            .unwrap()
            .run(&pool)
            .await
            .unwrap();
        for sql in rows {
            sqlx::query(sql).execute(&pool).await.unwrap();
        }
        pool.close().await;
        path
    }

    fn block_on<F: std::future::Future>(f: F) -> F::Output {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(f)
    }

    /// Migration 0004 folds `index_entries` and `package_paths` into
    /// `packages.rendered`: a database written before it must publish the
    /// same entries, in the plugin's order, after it.
    #[test]
    fn rendered_column_backfills_old_rows() {
        let dir = tempfile::tempdir().unwrap();
        block_on(async {
            let path = older_database(
                dir.path(),
                "0004",
                &[
                    "INSERT INTO blobs VALUES ('b', 1, 'deb', 0)",
                    "INSERT INTO packages VALUES ('p1', 'd', 'n', '1', 'all', 'b', 'f', 'u', 0)",
                    "INSERT INTO packages VALUES ('p2', 'd', 'm', '1', 'all', 'b', 'f', 'u', 0)",
                    "INSERT INTO package_paths VALUES ('p1', 'pool/z.deb'), ('p1', 'pool/a.deb')",
                    // Inserted out of order, with text JSON must escape.
                    "INSERT INTO index_entries VALUES ('p1', 1, 'i/B', 'k2', 'second \"quoted\"\n\ttab')",
                    "INSERT INTO index_entries VALUES ('p1', 0, 'i/A', 'k1', 'first <x a=\"1\"/>')",
                ],
            )
            .await;
            let db = open(&path).await.unwrap();
            let rows: Vec<(String, String)> =
                sqlx::query_as("SELECT id, rendered FROM packages ORDER BY id")
                    .fetch_all(&db)
                    .await
                    .unwrap();
            let p1 = crate::catalog::decode_rendered(&rows[0].1).unwrap();
            assert_eq!(p1.pool_paths, ["pool/a.deb", "pool/z.deb"]);
            let entry = |i: &str, k: &str, b: &str| (i.to_owned(), k.to_owned(), b.to_owned());
            assert_eq!(
                p1.entries,
                [
                    entry("i/A", "k1", "first <x a=\"1\"/>"),
                    entry("i/B", "k2", "second \"quoted\"\n\ttab"),
                ]
            );
            let p2 = crate::catalog::decode_rendered(&rows[1].1).unwrap();
            assert!(p2.pool_paths.is_empty() && p2.entries.is_empty());
            let gone: Option<(String,)> = sqlx::query_as(
                "SELECT name FROM sqlite_master WHERE type = 'table' AND name = 'index_entries'",
            )
            .fetch_optional(&db)
            .await
            .unwrap();
            assert!(gone.is_none());
        });
    }
    /// Migration 0012 copies each RPM blob's signature out of what the
    /// reader parsed (older readers had no key ID field: it comes from the
    /// summary).
    #[test]
    fn blob_signatures_backfill_from_the_parsed_metadata() {
        let dir = tempfile::tempdir().unwrap();
        block_on(async {
            let path = older_database(
                dir.path(),
                "0012",
                &[
                    "INSERT INTO blobs (sha256, size, format, created_at, parsed) VALUES \
                     ('signed', 1, 'rpm', 0, '{\"format\":\"rpm\",\"signature\":\"RSA/SHA256, key ID 199E2F91FD431D51\"}'), \
                     ('unsigned', 1, 'rpm', 0, '{\"format\":\"rpm\",\"signature\":null}'), \
                     ('deb', 1, 'deb', 0, '{\"format\":\"deb\"}'), \
                     ('none', 1, 'rpm', 0, NULL)",
                ],
            )
            .await;
            let db = open(&path).await.unwrap();
            let rows: Vec<(String, Option<String>, Option<String>)> = sqlx::query_as(
                "SELECT sha256, signature, signature_key_id FROM blobs ORDER BY sha256",
            )
            .fetch_all(&db)
            .await
            .unwrap();
            let row = |s: &str, sig: Option<&str>, id: Option<&str>| {
                (s.to_owned(), sig.map(str::to_owned), id.map(str::to_owned))
            };
            assert_eq!(
                rows,
                [
                    row("deb", None, None),
                    row("none", None, None),
                    row(
                        "signed",
                        Some("RSA/SHA256, key ID 199E2F91FD431D51"),
                        Some("199e2f91fd431d51")
                    ),
                    row("unsigned", None, None),
                ]
            );
        });
    }

    /// Migration 0005 makes the content so far version 1 of each
    /// distribution: every package a member since 1, nothing removed.
    #[test]
    fn versions_start_from_the_content_before_them() {
        let dir = tempfile::tempdir().unwrap();
        block_on(async {
            let path = older_database(
                dir.path(),
                "0005",
                &[
                    "INSERT INTO blobs VALUES ('b', 1, 'deb', 0)",
                    "INSERT INTO packages VALUES ('p1', 'dist-a', 'n', '1', 'all', 'b', 'f', 'u', 7, '')",
                    "INSERT INTO packages VALUES ('p2', 'dist-a', 'm', '1', 'all', 'b', 'f', 'u', 9, '')",
                    "INSERT INTO packages VALUES ('p3', 'dist-b', 'n', '1', 'all', 'b', 'f', 'u', 8, '')",
                ],
            )
            .await;
            let db = open(&path).await.unwrap();
            let versions: Vec<(String, i64, i64, String, i64, i64)> = sqlx::query_as(
                "SELECT distribution, number, created_ms, action, added, packages FROM versions ORDER BY distribution",
            )
            .fetch_all(&db)
            .await
            .unwrap();
            assert_eq!(
                versions,
                [
                    ("dist-a".into(), 1, 9000, "import".into(), 2, 2),
                    ("dist-b".into(), 1, 8000, "import".into(), 1, 1)
                ]
            );
            let latest: Vec<(String, i64)> =
                sqlx::query_as("SELECT id, latest FROM distributions ORDER BY id")
                    .fetch_all(&db)
                    .await
                    .unwrap();
            assert_eq!(latest, [("dist-a".into(), 1), ("dist-b".into(), 1)]);
            let mut first = crate::catalog::versions::content_ids(&db, "dist-a", 1)
                .await
                .unwrap();
            first.sort();
            assert_eq!(first, ["p1", "p2"]);
            let current = crate::catalog::list(&db, &crate::catalog::Filter::default())
                .await
                .unwrap();
            assert_eq!(current.len(), 3);
            let parsed: Option<String> = sqlx::query_scalar("SELECT parsed FROM blobs")
                .fetch_one(&db)
                .await
                .unwrap();
            assert_eq!(parsed, None, "filled from the file when first needed");
        });
    }
}
