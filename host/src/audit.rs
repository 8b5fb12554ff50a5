//! The audit log: every mutation, who made it and when. Where the change is
//! a database change, the entry is written in the same transaction, so one
//! never exists without the other.

use serde::Serialize;
use sqlx::AnyConnection;

use crate::db::Db;

#[derive(Debug, Serialize, sqlx::FromRow)]
pub struct Entry {
    pub id: String,
    /// Unix milliseconds.
    pub at_ms: i64,
    pub actor: String,
    pub action: String,
    pub target: String,
    pub detail: String,
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// Records `action` on `target` by `actor`, inside the caller's transaction.
pub async fn record(
    conn: &mut AnyConnection,
    actor: &str,
    action: &str,
    target: &str,
    detail: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO audit (id, at_ms, actor, action, target, detail) VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(crate::db::new_id())
    .bind(now_ms())
    .bind(actor)
    .bind(action)
    .bind(target)
    .bind(detail)
    .execute(conn)
    .await?;
    Ok(())
}

/// Which entries [`recent`] returns; every field set narrows it.
#[derive(Debug, Default)]
pub struct Filter {
    pub actor: Option<String>,
    /// A prefix of the action (`package.` for every package action).
    pub action: Option<String>,
    pub target: Option<String>,
}

/// The most recent entries that match `filter`, newest first.
pub async fn recent(db: &Db, filter: &Filter, limit: i64) -> Result<Vec<Entry>, sqlx::Error> {
    let mut q = crate::db::Sql::new(
        "SELECT id, at_ms, actor, action, target, detail FROM audit WHERE 1 = 1",
    );
    if let Some(actor) = &filter.actor {
        q.push(" AND actor = ").push_bind(actor);
    }
    if let Some(action) = &filter.action {
        // A prefix, compared as text: LIKE would read `_` and `%` in it.
        q.push(" AND substr(action, 1, CAST(")
            .push_bind(action.chars().count() as i64)
            .push(" AS INTEGER)) = ")
            .push_bind(action);
    }
    if let Some(target) = &filter.target {
        q.push(" AND target = ").push_bind(target);
    }
    q.push(" ORDER BY at_ms DESC, id DESC LIMIT ")
        .push_bind(limit);
    q.build_query_as().fetch_all(db).await
}
