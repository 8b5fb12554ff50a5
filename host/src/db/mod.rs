//! The metadata database: SQLite (WAL) in the data directory by default,
//! or PostgreSQL (`database = "postgres://..."`) for a cluster.
//!
//! The rest of the host goes through sqlx's `Any` driver and writes SQL both
//! engines accept: ids are text, times integer unix seconds (or ms), flags
//! `TRUE`/`FALSE`, no engine-only functions or upserts, `$N` placeholders
//! (built with [`Sql`], since sqlx's `QueryBuilder` writes `?` for `Any`).
//! Each engine has its own migration set (`migrations/sqlite`,
//! `migrations/postgres`), with the same tables and the same backfills.

use std::fmt::Write as _;

pub mod copy;

use anyhow::Context;
use sqlx::any::{AnyArguments, AnyPoolOptions, AnyRow};
use sqlx::{Any, Arguments, Decode, Encode, Type};

pub type Db = sqlx::AnyPool;
/// A transaction on [`Db`].
pub type Tx = sqlx::Transaction<'static, Any>;

/// Which database an installation uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    /// An SQLite file (the default: `<data>/repod.db`).
    Sqlite(std::path::PathBuf),
    /// A PostgreSQL URL (`postgres://user@host:port/database`).
    Postgres(String),
}

impl Location {
    /// `sqlite:PATH`, `postgres://...`/`postgresql://...`, or a bare path.
    pub fn parse(text: &str) -> anyhow::Result<Location> {
        if text.starts_with("postgres://") || text.starts_with("postgresql://") {
            return Ok(Location::Postgres(text.to_owned()));
        }
        if let Some(path) = text.strip_prefix("sqlite:") {
            let path = path.strip_prefix("//").unwrap_or(path);
            if path.is_empty() {
                anyhow::bail!("database URL {text:?} names no file: use sqlite:/path/to/repod.db");
            }
            return Ok(Location::Sqlite(path.into()));
        }
        if text.contains("://") {
            anyhow::bail!(
                "database URL {text:?}: only sqlite: and postgres:// databases are supported"
            );
        }
        Ok(Location::Sqlite(text.into()))
    }

    /// For messages: the file, or the URL without its password.
    pub fn display(&self) -> String {
        match self {
            Location::Sqlite(path) => path.display().to_string(),
            Location::Postgres(url) => redact(url),
        }
    }
}

/// `scheme://user:***@host/...`: a URL fit for a log line.
fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let authority_end = rest.find('/').unwrap_or(rest.len());
    match rest[..authority_end].rfind('@') {
        Some(at) => match rest[..at].split_once(':') {
            Some((user, _)) => format!("{scheme}://{user}:***{}", &rest[at..]),
            None => url.to_owned(),
        },
        None => url.to_owned(),
    }
}

/// `url` with `schema` as its search path: one database, many
/// installations (or test daemons), each in its own schema.
pub fn in_schema(url: &str, schema: &str) -> String {
    let sep = if url.contains('?') { '&' } else { '?' };
    format!("{url}{sep}options=-c%20search_path%3D{schema}")
}

/// Which engine a pool talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Engine {
    Sqlite,
    Postgres,
}

pub fn engine(db: &Db) -> Engine {
    if db.connect_options().database_url.scheme() == "sqlite" {
        Engine::Sqlite
    } else {
        Engine::Postgres
    }
}

/// Opens (creating if needed) the database and runs its migrations.
pub async fn open(location: &Location) -> anyhow::Result<Db> {
    sqlx::any::install_default_drivers();
    let engine = match location {
        Location::Sqlite(_) => Engine::Sqlite,
        Location::Postgres(_) => Engine::Postgres,
    };
    opened(engine);
    let url = match location {
        Location::Sqlite(path) => {
            if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                std::fs::create_dir_all(dir)
                    .with_context(|| format!("cannot create {}", dir.display()))?;
            }
            let path = path
                .to_str()
                .with_context(|| format!("database path {} is not UTF-8", path.display()))?;
            // `%`, `?` and `#` would be read as URL syntax.
            let path = path
                .replace('%', "%25")
                .replace('?', "%3F")
                .replace('#', "%23");
            format!("sqlite://{path}?mode=rwc")
        }
        Location::Postgres(url) => url.clone(),
    };
    let options = AnyPoolOptions::new().after_connect(move |conn, _| {
        Box::pin(async move {
            if engine == Engine::Sqlite {
                // Durable commits, concurrent readers, and waiting (not
                // failing) for another connection's write lock.
                for pragma in [
                    "PRAGMA journal_mode = WAL",
                    "PRAGMA synchronous = FULL",
                    "PRAGMA foreign_keys = ON",
                    "PRAGMA busy_timeout = 10000",
                ] {
                    sqlx::Executor::execute(&mut *conn, pragma).await?;
                }
            }
            Ok(())
        })
    });
    let pool = match engine {
        Engine::Sqlite => options.max_connections(8),
        Engine::Postgres => options.max_connections(16),
    }
    .connect(&url)
    .await
    .with_context(|| format!("cannot open database {}", location.display()))?;
    match engine {
        Engine::Sqlite => sqlx::migrate!("./migrations/sqlite").run(&pool).await,
        Engine::Postgres => sqlx::migrate!("./migrations/postgres").run(&pool).await,
    }
    .with_context(|| format!("migrating database {} failed", location.display()))?;
    if engine == Engine::Sqlite {
        // Statistics for the query planner, where SQLite judges them useful.
        sqlx::query("PRAGMA optimize=0x10002")
            .execute(&pool)
            .await
            .context("PRAGMA optimize")?;
    }
    Ok(pool)
}

/// The advisory lock every writing transaction takes on PostgreSQL: the
/// catalog's writes are serialised cluster-wide, as SQLite serialises them
/// in one file. Keyed by schema as well, so installations (or test
/// daemons) sharing one database in separate schemas do not wait on each
/// other.
const WRITE_LOCK: &str =
    "SELECT pg_advisory_xact_lock(1919247460, hashtext(current_schema())) IS NULL";

/// A transaction that writes. On SQLite it takes the write lock at `BEGIN
/// IMMEDIATE`, so one that reads before it writes cannot fail on a stale
/// snapshot when another connection (a CLI, a token or audit insert) wrote
/// in between; waiting for the lock follows the busy timeout. On
/// PostgreSQL the same is a transaction-scoped advisory lock, released at
/// commit or rollback (or when the holder's connection dies).
pub async fn write(db: &Db) -> Result<Tx, sqlx::Error> {
    match engine(db) {
        Engine::Sqlite => db.begin_with("BEGIN IMMEDIATE").await,
        Engine::Postgres => {
            let mut tx = db.begin().await?;
            // As SQLite's busy timeout: a writer stuck behind another for
            // this long fails instead of waiting for ever.
            sqlx::query("SET LOCAL lock_timeout = '30s'")
                .execute(&mut *tx)
                .await?;
            sqlx::query(WRITE_LOCK).execute(&mut *tx).await?;
            Ok(tx)
        }
    }
}

/// How [`Sql`] marks its bound values: 0 until a database is opened, 1
/// when every database this process opened is SQLite (anonymous `?`), 2
/// once one is PostgreSQL (`$N`, which both engines read).
///
/// Why not always `$N`: SQLite keeps named parameters (`$N`, `?NNN`) in a
/// list that `sqlite3_bind_parameter_name` searches linearly, and sqlx asks
/// it for every parameter it binds, so a multi-row statement with
/// thousands of values costs quadratic time to bind (a full re-scan of
/// 50,000 packages spent ~3 s more storing its results). Anonymous `?`
/// are not in that list. A process with both engines open (`repod
/// migrate-db`) uses `$N` throughout.
static PLACEHOLDERS: std::sync::atomic::AtomicU8 = std::sync::atomic::AtomicU8::new(0);

fn opened(engine: Engine) {
    use std::sync::atomic::Ordering;
    let _ = PLACEHOLDERS.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |now| {
        Some(match (now, engine) {
            (0 | 1, Engine::Sqlite) => 1,
            _ => 2,
        })
    });
}

/// SQL with bound values, built in pieces: what sqlx's `QueryBuilder` does,
/// with placeholders every engine this process opened reads (see
/// [`PLACEHOLDERS`]; sqlx's `QueryBuilder` writes `?` for `Any`, which
/// PostgreSQL does not take).
pub struct Sql<'a> {
    text: String,
    args: AnyArguments<'a>,
}

impl<'a> Sql<'a> {
    pub fn new(head: impl Into<String>) -> Sql<'a> {
        Sql {
            text: head.into(),
            args: AnyArguments::default(),
        }
    }

    pub fn push(&mut self, text: impl std::fmt::Display) -> &mut Self {
        write!(self.text, "{text}").expect("writing to a String");
        self
    }

    /// Appends the next placeholder and binds `value` to it.
    pub fn push_bind<T>(&mut self, value: T) -> &mut Self
    where
        T: 'a + Encode<'a, Any> + Type<Any>,
    {
        self.args
            .add(value)
            .expect("Any encodes every bindable type");
        if PLACEHOLDERS.load(std::sync::atomic::Ordering::SeqCst) == 1 {
            self.text.push('?');
        } else {
            write!(self.text, "${}", self.args.len()).expect("writing to a String");
        }
        self
    }

    /// Appends `v1, v2, ..)`: the rest of an `IN (` list.
    pub fn push_list<T>(&mut self, values: impl IntoIterator<Item = T>) -> &mut Self
    where
        T: 'a + Encode<'a, Any> + Type<Any>,
    {
        let mut list = self.separated(", ");
        for v in values {
            list.push_bind(v);
        }
        self.push(")")
    }

    /// Binds values with `separator` between them.
    pub fn separated(&mut self, separator: &'static str) -> Separated<'_, 'a> {
        Separated {
            sql: self,
            separator,
            first: true,
        }
    }

    /// Appends `VALUES (..), (..)`, one tuple per row; `row` binds each
    /// row's values with [`Separated::push_bind`].
    pub fn push_values<I, F>(&mut self, rows: I, mut row: F) -> &mut Self
    where
        I: IntoIterator,
        F: FnMut(Separated<'_, 'a>, I::Item),
    {
        self.text.push_str("VALUES ");
        for (i, item) in rows.into_iter().enumerate() {
            if i > 0 {
                self.text.push_str(", ");
            }
            self.text.push('(');
            row(self.separated(", "), item);
            self.text.push(')');
        }
        self
    }

    pub fn build(&mut self) -> sqlx::query::Query<'_, Any, AnyArguments<'_>> {
        sqlx::query_with(&self.text, std::mem::take(&mut self.args))
    }

    pub fn build_query_as<T>(&mut self) -> sqlx::query::QueryAs<'_, Any, T, AnyArguments<'_>>
    where
        T: for<'r> sqlx::FromRow<'r, AnyRow>,
    {
        sqlx::query_as_with(&self.text, std::mem::take(&mut self.args))
    }
}

/// Values bound with a separator between them: an `IN` list, a row of
/// [`Sql::push_values`].
pub struct Separated<'s, 'a> {
    sql: &'s mut Sql<'a>,
    separator: &'static str,
    first: bool,
}

impl<'a> Separated<'_, 'a> {
    /// The separator before every value but the first.
    fn next(&mut self) -> &mut Sql<'a> {
        if !self.first {
            self.sql.text.push_str(self.separator);
        }
        self.first = false;
        self.sql
    }

    pub fn push_bind<T>(&mut self, value: T) -> &mut Self
    where
        T: 'a + Encode<'a, Any> + Type<Any>,
    {
        self.next().push_bind(value);
        self
    }

    /// A floating-point value that may be NULL, bound as [`real`] says.
    pub fn push_real(&mut self, value: Option<f64>) -> &mut Self {
        self.next()
            .push("CAST(")
            .push_bind(real(value))
            .push(" AS DOUBLE PRECISION)");
        self
    }
}

/// A floating-point value that may be NULL, as it is bound: text, cast in
/// the statement (`CAST($n AS DOUBLE PRECISION)`). sqlx 0.8's `Any` sends
/// a NULL `f64` to PostgreSQL as a `float4`, and the statement it caches
/// then refuses a non-NULL `float8` in the same place ("incorrect binary
/// data format"). Text converts exactly (Rust prints the shortest string
/// that reads back the same).
pub fn real(value: Option<f64>) -> Option<String> {
    value.map(|v| v.to_string())
}

/// A truth value as either engine returns it: PostgreSQL a boolean, SQLite
/// an integer (through `Any`, a boolean expression reads as its storage
/// class).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Flag(pub bool);

impl Type<Any> for Flag {
    fn type_info() -> sqlx::any::AnyTypeInfo {
        <bool as Type<Any>>::type_info()
    }

    fn compatible(ty: &sqlx::any::AnyTypeInfo) -> bool {
        <bool as Type<Any>>::compatible(ty) || <i64 as Type<Any>>::compatible(ty)
    }
}

impl<'r> Decode<'r, Any> for Flag {
    fn decode(value: sqlx::any::AnyValueRef<'r>) -> Result<Self, sqlx::error::BoxDynError> {
        match <bool as Decode<Any>>::decode(value.clone()) {
            Ok(b) => Ok(Flag(b)),
            Err(_) => Ok(Flag(<i64 as Decode<Any>>::decode(value)? != 0)),
        }
    }
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

    /// Where a test's database goes: `<dir>/repod.db`, or a new schema in
    /// the PostgreSQL database `REPOD_TEST_POSTGRES` names (the suite's
    /// second run, scripts/test).
    pub(crate) async fn test_location(dir: &std::path::Path) -> Location {
        sqlx::any::install_default_drivers();
        let Ok(base) = std::env::var("REPOD_TEST_POSTGRES") else {
            return Location::Sqlite(dir.join("repod.db"));
        };
        let schema = format!("u_{}", new_id());
        let mut conn = <sqlx::AnyConnection as sqlx::Connection>::connect(&base)
            .await
            .unwrap();
        sqlx::Executor::execute(&mut conn, format!("CREATE SCHEMA {schema}").as_str())
            .await
            .unwrap();
        Location::Postgres(in_schema(&base, &schema))
    }

    /// A database with the migrations named below `before` applied and
    /// `rows` inserted, as an older repod left it.
    async fn older_database(dir: &std::path::Path, before: &str, rows: &[&str]) -> Location {
        let location = test_location(dir).await;
        let set = match location {
            Location::Sqlite(_) => "sqlite",
            Location::Postgres(_) => "postgres",
        };
        let old = dir.join("old-migrations");
        std::fs::create_dir(&old).unwrap();
        let all = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("migrations")
            .join(set);
        for entry in std::fs::read_dir(&all).unwrap() {
            let name = entry.unwrap().file_name();
            if name.to_string_lossy().as_ref() < before {
                std::fs::copy(all.join(&name), old.join(&name)).unwrap();
            }
        }
        let url = match &location {
            Location::Sqlite(path) => format!("sqlite://{}?mode=rwc", path.display()),
            Location::Postgres(url) => url.clone(),
        };
        let pool = sqlx::AnyPool::connect(&url).await.unwrap();
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
        location
    }

    /// Whether the table exists, in either engine's catalog.
    async fn has_table(db: &Db, name: &str) -> bool {
        let sql = match engine(db) {
            Engine::Sqlite => {
                "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = $1"
            }
            Engine::Postgres => {
                "SELECT COUNT(*) FROM information_schema.tables \
                 WHERE table_schema = current_schema() AND table_name = $1"
            }
        };
        let (n,): (i64,) = sqlx::query_as(sql).bind(name).fetch_one(db).await.unwrap();
        n > 0
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
            let location = older_database(
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
            let db = open(&location).await.unwrap();
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
            assert!(has_table(&db, "packages").await);
            assert!(!has_table(&db, "index_entries").await);
        });
    }
    /// Migration 0012 copies each RPM blob's signature out of what the
    /// reader parsed (older readers had no key ID field: it comes from the
    /// summary).
    #[test]
    fn blob_signatures_backfill_from_the_parsed_metadata() {
        let dir = tempfile::tempdir().unwrap();
        block_on(async {
            let location = older_database(
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
            let db = open(&location).await.unwrap();
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
            let location = older_database(
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
            let db = open(&location).await.unwrap();
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
