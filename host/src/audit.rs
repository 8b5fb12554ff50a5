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

/// The most recent entries, newest first.
pub async fn recent(db: &Db, limit: i64) -> Result<Vec<Entry>, sqlx::Error> {
    sqlx::query_as(
        "SELECT id, at_ms, actor, action, target, detail FROM audit ORDER BY at_ms DESC, id DESC LIMIT $1",
    )
    .bind(limit)
    .fetch_all(db)
    .await
}
