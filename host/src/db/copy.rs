//! `repod migrate-db`: copies an installation's metadata from one database
//! to another (SQLite to PostgreSQL, or back), blobs and trees untouched.
//!
//! Both ends are opened (and so migrated) by this build, so they have the
//! same tables; the target must be empty. The source is read in one
//! transaction (a consistent snapshot) and the target written in one, so a
//! failure leaves the target as empty as it was. Column types are the
//! target's: SQLite keeps flags as integers where PostgreSQL has booleans.

use std::collections::BTreeMap;

use anyhow::{Context, bail};
use futures_util::TryStreamExt;
use sqlx::{Any, Decode, Row, Type};

use super::{Db, Engine, Location, Sql, engine, open};

/// Every table of the schema, parents before children (foreign keys).
/// A migration that adds a table must add it here: [`copy`] refuses a
/// schema with a table it does not name.
pub const TABLES: &[&str] = &[
    "leader_epochs",
    "tokens",
    "audit",
    "blobs",
    "packages",
    "package_paths",
    "distributions",
    "versions",
    "memberships",
    "pool_trash",
    "distribution_documents",
    "advisories",
    "advisory_aliases",
    "advisory_packages",
    "advisory_imports",
    "advisory_feeds",
    "scans",
    "findings",
    "package_names",
    "decisions",
    "tree_generations",
    "plugin_changes",
];

/// Bound values per `INSERT`, under both engines' limits.
const BINDS: usize = 4000;

/// How a column's values are bound in the target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Int,
    Bool,
    Float,
    Text,
}

/// One value, as either engine returns it.
#[derive(Debug, Clone)]
enum Cell {
    Int(i64),
    Float(f64),
    Text(String),
    Bool(bool),
}

impl Type<Any> for Cell {
    fn type_info() -> sqlx::any::AnyTypeInfo {
        <String as Type<Any>>::type_info()
    }

    fn compatible(_: &sqlx::any::AnyTypeInfo) -> bool {
        true
    }
}

impl<'r> Decode<'r, Any> for Cell {
    fn decode(value: sqlx::any::AnyValueRef<'r>) -> Result<Self, sqlx::error::BoxDynError> {
        if let Ok(i) = <i64 as Decode<Any>>::decode(value.clone()) {
            return Ok(Cell::Int(i));
        }
        if let Ok(f) = <f64 as Decode<Any>>::decode(value.clone()) {
            return Ok(Cell::Float(f));
        }
        if let Ok(b) = <bool as Decode<Any>>::decode(value.clone()) {
            return Ok(Cell::Bool(b));
        }
        Ok(Cell::Text(<String as Decode<Any>>::decode(value)?))
    }
}

/// What was copied: rows per table.
pub type Counts = BTreeMap<String, u64>;

/// Copies every row of `from` into `to`, which must hold none.
pub async fn copy(from: &Location, to: &Location) -> anyhow::Result<Counts> {
    if from == to {
        bail!("--from and --to name the same database");
    }
    if let Location::Sqlite(path) = from
        && !path.is_file()
    {
        bail!("{} does not exist: nothing to copy", path.display());
    }
    let source = open(from)
        .await
        .with_context(|| format!("source {}", from.display()))?;
    let target = open(to)
        .await
        .with_context(|| format!("target {}", to.display()))?;
    let tables = columns(&target).await?;
    for table in tables.keys() {
        if !TABLES.contains(&table.as_str()) {
            bail!("table {table} is not known to migrate-db (a newer migration?): nothing copied");
        }
    }
    for table in TABLES {
        if !tables.contains_key(*table) {
            bail!("the target has no table {table}: nothing copied");
        }
        let (n,): (i64,) = sqlx::query_as(&format!("SELECT COUNT(*) FROM {table}"))
            .fetch_one(&target)
            .await?;
        if n > 0 {
            bail!(
                "the target database is not empty ({table} has {n} rows): \
                 migrate-db copies into a new, empty database only; nothing copied"
            );
        }
    }

    let mut read = source.begin().await?;
    let mut write = super::write(&target).await?;
    let mut counts = Counts::new();
    for table in TABLES {
        let cols = &tables[*table];
        let names: Vec<&str> = cols.iter().map(|(n, _)| n.as_str()).collect();
        let list = names.join(", ");
        let per_insert = (BINDS / cols.len()).max(1);
        let select = format!("SELECT {list} FROM {table}");
        let mut rows = sqlx::query(&select).fetch(&mut *read);
        let mut batch: Vec<Vec<Option<Cell>>> = Vec::with_capacity(per_insert);
        let mut copied = 0u64;
        while let Some(row) = rows.try_next().await? {
            let values = cols
                .iter()
                .enumerate()
                .map(|(i, (name, _))| {
                    row.try_get::<Option<Cell>, _>(i)
                        .with_context(|| format!("reading {table}.{name}"))
                })
                .collect::<anyhow::Result<Vec<_>>>()?;
            batch.push(values);
            if batch.len() == per_insert {
                insert(&mut write, table, &list, cols, &batch).await?;
                copied += batch.len() as u64;
                batch.clear();
            }
        }
        if !batch.is_empty() {
            insert(&mut write, table, &list, cols, &batch).await?;
            copied += batch.len() as u64;
        }
        drop(rows);
        let (n,): (i64,) = sqlx::query_as(&format!("SELECT COUNT(*) FROM {table}"))
            .fetch_one(&mut *read)
            .await?;
        if n as u64 != copied {
            bail!("{table}: read {copied} rows of {n}; nothing copied");
        }
        counts.insert((*table).to_owned(), copied);
    }
    write.commit().await?;
    read.rollback().await?;
    source.close().await;
    target.close().await;
    Ok(counts)
}

async fn insert(
    tx: &mut super::Tx,
    table: &str,
    list: &str,
    cols: &[(String, Kind)],
    rows: &[Vec<Option<Cell>>],
) -> anyhow::Result<()> {
    let mut q = Sql::new(format!("INSERT INTO {table} ({list}) "));
    let mut failure = None;
    q.push_values(rows, |mut b, row| {
        for ((name, kind), cell) in cols.iter().zip(row) {
            match (kind, cell.clone()) {
                (Kind::Int, None) => b.push_bind(None::<i64>),
                (Kind::Bool, None) => b.push_bind(None::<bool>),
                (Kind::Float, None) => b.push_bind(None::<f64>),
                (Kind::Text, None) => b.push_bind(None::<String>),
                (Kind::Int, Some(Cell::Int(i))) => b.push_bind(i),
                (Kind::Int, Some(Cell::Bool(v))) => b.push_bind(v as i64),
                (Kind::Bool, Some(Cell::Bool(v))) => b.push_bind(v),
                (Kind::Bool, Some(Cell::Int(i))) => b.push_bind(i != 0),
                (Kind::Float, Some(Cell::Float(f))) => b.push_bind(f),
                (Kind::Float, Some(Cell::Int(i))) => b.push_bind(i as f64),
                (Kind::Text, Some(Cell::Text(t))) => b.push_bind(t),
                (kind, Some(other)) => {
                    failure.get_or_insert(format!(
                        "{table}.{name}: a {other:?} cannot go into a {kind:?} column"
                    ));
                    b.push_bind(None::<String>)
                }
            };
        }
    });
    if let Some(failure) = failure {
        bail!("{failure}; nothing copied");
    }
    q.build()
        .execute(&mut **tx)
        .await
        .with_context(|| format!("writing {table}"))?;
    Ok(())
}

/// The target's tables (but sqlx's own) and their columns, in order.
async fn columns(db: &Db) -> anyhow::Result<BTreeMap<String, Vec<(String, Kind)>>> {
    let rows: Vec<(String, String, String)> =
        match engine(db) {
            Engine::Postgres => {
                sqlx::query_as(
                    "SELECT table_name::text, column_name::text, data_type::text \
                 FROM information_schema.columns WHERE table_schema = current_schema() \
                 ORDER BY table_name, ordinal_position",
                )
                .fetch_all(db)
                .await?
            }
            Engine::Sqlite => sqlx::query_as(
                "SELECT m.name, c.name, c.type FROM sqlite_master m, pragma_table_info(m.name) c \
                 WHERE m.type = 'table' AND m.name NOT LIKE 'sqlite_%' ORDER BY m.name, c.cid",
            )
            .fetch_all(db)
            .await?,
        };
    let mut tables: BTreeMap<String, Vec<(String, Kind)>> = BTreeMap::new();
    for (table, column, ty) in rows {
        if table.starts_with("_sqlx") {
            continue;
        }
        let kind = match ty.to_ascii_lowercase().as_str() {
            "bigint" | "integer" => Kind::Int,
            "boolean" => Kind::Bool,
            "double precision" | "real" => Kind::Float,
            "text" => Kind::Text,
            other => bail!("{table}.{column} has type {other}, which migrate-db cannot copy"),
        };
        tables.entry(table).or_default().push((column, kind));
    }
    Ok(tables)
}
