//! Repository versions: every change to a distribution's content makes a
//! new, numbered, immutable version (Pulp's repository versions, Koji's
//! repo ids with `latest` being the newest).
//!
//! A version is not a copy of its content. Each `memberships` row is the
//! interval of versions one package row is in, `[added_in, removed_in)`
//! (`removed_in` NULL while it is still there), so a change writes only
//! what it adds and removes, and version n is every row with
//! `added_in <= n` and `removed_in` NULL or `> n`. Nothing rewrites a
//! membership's interval once closed, so a version never changes.
//!
//! Retention ([`collect`]) keeps a suffix of versions: the last K, those
//! younger than D days, and those superseded less than the publish
//! retention ago (readers still fetching what the previous tree listed).
//! What no kept version lists goes: memberships, then package rows, then
//! (by the caller, after commit) pool files and blobs.

use crate::db::Sql;
use serde::Serialize;
use sqlx::{Any, Transaction};

use super::{BATCH, PackageRecord, SELECT, in_list};
use crate::db::Db;

/// One version of one distribution, as the API shows it.
#[derive(Debug, Clone, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct VersionRecord {
    pub distribution: String,
    pub number: i64,
    /// Unix milliseconds.
    pub created_ms: i64,
    /// The token name that made the change (`repod` for the migration that
    /// introduced versions).
    pub actor: String,
    /// `upload`, `remove`, `promote`, `migrate`, `rollback` or `import`.
    pub action: String,
    pub reason: String,
    /// Packages this version added to / removed from the one before it.
    pub added: i64,
    pub removed: i64,
    /// Packages in this version.
    pub packages: i64,
}

const VERSION_COLUMNS: &str =
    "distribution, number, created_ms, actor, action, reason, added, removed, packages";

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// A change being made to one distribution inside the caller's transaction:
/// its memberships are written with the next version number, and
/// [`Change::finish`] makes that version exist. The caller serialises
/// changes (the catalog write lock), so the number is not contended.
#[derive(Debug)]
pub struct Change {
    dist: String,
    number: i64,
    added: i64,
    removed: i64,
}

impl Change {
    pub async fn begin(tx: &mut Transaction<'_, Any>, dist: &str) -> Result<Change, sqlx::Error> {
        sqlx::query(
            "INSERT INTO distributions (id, latest) VALUES ($1, 0) ON CONFLICT (id) DO NOTHING",
        )
        .bind(dist)
        .execute(&mut **tx)
        .await?;
        let (latest,): (i64,) = sqlx::query_as("SELECT latest FROM distributions WHERE id = $1")
            .bind(dist)
            .fetch_one(&mut **tx)
            .await?;
        Ok(Change {
            dist: dist.to_owned(),
            number: latest + 1,
            added: 0,
            removed: 0,
        })
    }

    pub fn distribution(&self) -> &str {
        &self.dist
    }

    /// The number the version will have if the change is not empty.
    pub fn number(&self) -> i64 {
        self.number
    }

    pub fn is_empty(&self) -> bool {
        self.added == 0 && self.removed == 0
    }

    /// Package rows (of this distribution, not in its current version) that
    /// the new version holds.
    pub async fn add_many(
        &mut self,
        tx: &mut Transaction<'_, Any>,
        ids: &[&str],
    ) -> Result<(), sqlx::Error> {
        for batch in ids.chunks(BATCH / 2) {
            let mut q = Sql::new("INSERT INTO memberships (package_id, distribution, added_in) ");
            q.push_values(batch, |mut b, id| {
                b.push_bind(*id)
                    .push_bind(self.dist.as_str())
                    .push_bind(self.number);
            });
            q.build().execute(&mut **tx).await?;
        }
        self.added += ids.len() as i64;
        Ok(())
    }

    /// Package rows of the current version that the new one no longer holds.
    pub async fn remove_many(
        &mut self,
        tx: &mut Transaction<'_, Any>,
        ids: &[&str],
    ) -> Result<(), sqlx::Error> {
        for batch in ids.chunks(BATCH) {
            let mut q = Sql::new("UPDATE memberships SET removed_in = ");
            q.push_bind(self.number)
                .push(" WHERE distribution = ")
                .push_bind(self.dist.as_str())
                .push(" AND removed_in IS NULL AND package_id IN (");
            q.push_list(batch.iter().copied());
            self.removed += q.build().execute(&mut **tx).await?.rows_affected() as i64;
        }
        Ok(())
    }

    /// Records the version, unless the change added and removed nothing (no
    /// version then). The caller commits.
    pub async fn finish(
        self,
        tx: &mut Transaction<'_, Any>,
        actor: &str,
        action: &str,
        reason: &str,
    ) -> Result<Option<VersionRecord>, sqlx::Error> {
        if self.is_empty() {
            return Ok(None);
        }
        // The version before is the latest, which retention always keeps.
        let before: Option<(i64,)> =
            sqlx::query_as("SELECT packages FROM versions WHERE distribution = $1 AND number = $2")
                .bind(&self.dist)
                .bind(self.number - 1)
                .fetch_optional(&mut **tx)
                .await?;
        let packages = before.map_or(0, |(n,)| n) + self.added - self.removed;
        let record = VersionRecord {
            distribution: self.dist,
            number: self.number,
            created_ms: now_ms(),
            actor: actor.to_owned(),
            action: action.to_owned(),
            reason: reason.to_owned(),
            added: self.added,
            removed: self.removed,
            packages,
        };
        sqlx::query(&format!(
            "INSERT INTO versions ({VERSION_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)"
        ))
        .bind(&record.distribution)
        .bind(record.number)
        .bind(record.created_ms)
        .bind(&record.actor)
        .bind(&record.action)
        .bind(&record.reason)
        .bind(record.added)
        .bind(record.removed)
        .bind(record.packages)
        .execute(&mut **tx)
        .await?;
        sqlx::query("UPDATE distributions SET latest = $1 WHERE id = $2")
            .bind(record.number)
            .bind(&record.distribution)
            .execute(&mut **tx)
            .await?;
        Ok(Some(record))
    }
}

/// The newest version number of `dist`; 0 before its first change.
pub async fn latest(db: &Db, dist: &str) -> Result<i64, sqlx::Error> {
    let row: Option<(i64,)> = sqlx::query_as("SELECT latest FROM distributions WHERE id = $1")
        .bind(dist)
        .fetch_optional(db)
        .await?;
    Ok(row.map_or(0, |(n,)| n))
}

/// Kept versions of `dist` below `before` (all when `None`), newest
/// first, at most `limit`.
pub async fn list(
    db: &Db,
    dist: &str,
    before: Option<i64>,
    limit: i64,
) -> Result<Vec<VersionRecord>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {VERSION_COLUMNS} FROM versions WHERE distribution = $1 AND number < $2 \
         ORDER BY number DESC LIMIT $3"
    ))
    .bind(dist)
    .bind(before.unwrap_or(i64::MAX))
    .bind(limit)
    .fetch_all(db)
    .await
}

/// The oldest and newest kept version numbers of `dist`.
pub async fn kept(db: &Db, dist: &str) -> Result<Option<(i64, i64)>, sqlx::Error> {
    let (first, latest): (Option<i64>, Option<i64>) =
        sqlx::query_as("SELECT MIN(number), MAX(number) FROM versions WHERE distribution = $1")
            .bind(dist)
            .fetch_one(db)
            .await?;
    Ok(first.zip(latest))
}

/// Why version `number` of `dist` cannot be had, saying which are kept.
pub async fn not_kept(db: &Db, dist: &str, number: i64) -> Result<String, sqlx::Error> {
    Ok(match kept(db, dist).await? {
        Some((_, newest)) if number > newest => {
            format!("{dist} has no version {number}: its latest is {newest}")
        }
        Some((oldest, newest)) => format!(
            "{dist} has no version {number}: it keeps versions {oldest} to {newest} (older ones \
             were collected by retention, [versions] in the config)"
        ),
        None => {
            format!("{dist} has no versions yet: its first upload or promotion makes version 1")
        }
    })
}

pub async fn get(db: &Db, dist: &str, number: i64) -> Result<Option<VersionRecord>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {VERSION_COLUMNS} FROM versions WHERE distribution = $1 AND number = $2"
    ))
    .bind(dist)
    .bind(number)
    .fetch_optional(db)
    .await
}

/// The condition "membership `m` is in version `$2` of distribution `$1`".
pub(crate) const IN_VERSION: &str =
    "m.distribution = $1 AND m.added_in <= $2 AND (m.removed_in IS NULL OR m.removed_in > $2)";

/// Every package of version `number`, by name, version and architecture.
pub async fn content(db: &Db, dist: &str, number: i64) -> Result<Vec<PackageRecord>, sqlx::Error> {
    sqlx::query_as(&format!(
        "{SELECT} JOIN memberships m ON m.package_id = p.id WHERE {IN_VERSION} \
         ORDER BY p.name, p.version, p.architecture"
    ))
    .bind(dist)
    .bind(number)
    .fetch_all(db)
    .await
}

/// Package ids of version `number`.
pub async fn content_ids(db: &Db, dist: &str, number: i64) -> Result<Vec<String>, sqlx::Error> {
    let rows: Vec<(String,)> = sqlx::query_as(&format!(
        "SELECT m.package_id FROM memberships m WHERE {IN_VERSION}"
    ))
    .bind(dist)
    .bind(number)
    .fetch_all(db)
    .await?;
    Ok(rows.into_iter().map(|(id,)| id).collect())
}

/// What version `number` added to and removed from the one before it.
pub async fn changed_in(
    db: &Db,
    dist: &str,
    number: i64,
) -> Result<(Vec<PackageRecord>, Vec<PackageRecord>), sqlx::Error> {
    let mut out = Vec::new();
    for column in ["added_in", "removed_in"] {
        out.push(
            sqlx::query_as(&format!(
                "{SELECT} JOIN memberships m ON m.package_id = p.id \
                 WHERE m.distribution = $1 AND m.{column} = $2 ORDER BY p.name, p.version, p.architecture"
            ))
            .bind(dist)
            .bind(number)
            .fetch_all(db)
            .await?,
        );
    }
    let removed = out.pop().expect("two lists");
    let added = out.pop().expect("two lists");
    Ok((added, removed))
}

/// Ids that turn version `from`'s content into version `to`'s (`from` <
/// `to`): content(to) = content(from) - removed + added.
pub async fn diff_ids(
    db: &Db,
    dist: &str,
    from: i64,
    to: i64,
) -> Result<(Vec<String>, Vec<String>), sqlx::Error> {
    let added: Vec<(String,)> = sqlx::query_as(
        "SELECT package_id FROM memberships WHERE distribution = $1 AND added_in > $2 \
         AND added_in <= $3 AND (removed_in IS NULL OR removed_in > $3)",
    )
    .bind(dist)
    .bind(from)
    .bind(to)
    .fetch_all(db)
    .await?;
    let removed: Vec<(String,)> = sqlx::query_as(
        "SELECT package_id FROM memberships WHERE distribution = $1 AND added_in <= $2 \
         AND removed_in > $2 AND removed_in <= $3",
    )
    .bind(dist)
    .bind(from)
    .bind(to)
    .fetch_all(db)
    .await?;
    Ok((
        added.into_iter().map(|(id,)| id).collect(),
        removed.into_iter().map(|(id,)| id).collect(),
    ))
}

/// The blob (SHA-256) of the package file version `number` of `dist`
/// lists at pool path `path`, if it lists one there (what a pinned tree
/// serves).
pub async fn pool_blob(
    db: &Db,
    dist: &str,
    number: i64,
    path: &str,
) -> Result<Option<String>, sqlx::Error> {
    let row: Option<(String,)> = sqlx::query_as(&format!(
        "SELECT p.sha256 FROM package_paths pp JOIN memberships m ON m.package_id = pp.package_id \
         JOIN packages p ON p.id = pp.package_id \
         WHERE {IN_VERSION} AND pp.path = $3 LIMIT 1"
    ))
    .bind(dist)
    .bind(number)
    .bind(path)
    .fetch_optional(db)
    .await?;
    Ok(row.map(|(sha,)| sha))
}

/// How many versions to keep (config `[versions]`, global or per
/// distribution).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retention {
    /// The last K versions.
    pub keep_last: u32,
    /// Every version younger than this many days.
    pub keep_days: u32,
}

impl Default for Retention {
    fn default() -> Self {
        Retention {
            keep_last: 10,
            keep_days: 7,
        }
    }
}

/// What retention decides from: the first and latest version numbers, the
/// oldest version made at or after the keep-days limit, and the oldest made
/// after the publish window's start (the one before it was superseded
/// within the window). One aggregate query each, whatever the number of
/// versions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Span {
    pub first: i64,
    pub latest: i64,
    pub first_within_days: Option<i64>,
    pub first_within_window: Option<i64>,
}

/// The oldest version `retention` keeps: the lowest of the last K, those
/// younger than D days, and those superseded (by the next version's
/// creation) less than the publish window ago. The latest is always kept.
pub fn oldest_kept(span: Span, retention: Retention) -> i64 {
    let mut oldest = span.latest - i64::from(retention.keep_last) + 1;
    if let Some(n) = span.first_within_days {
        oldest = oldest.min(n);
    }
    // Version n was superseded when n + 1 was made.
    if let Some(n) = span.first_within_window {
        oldest = oldest.min(n - 1);
    }
    oldest.min(span.latest).max(span.first)
}

/// What one retention pass deleted; the caller removes the files.
#[derive(Debug, Default)]
pub struct Collected {
    pub versions: Vec<i64>,
    pub packages: usize,
    /// Pool paths no row names any more, recorded in `pool_trash`.
    pub pool_paths: Vec<String>,
    /// Blobs no row refers to any more (their rows are gone).
    pub blobs: Vec<String>,
}

/// Deletes what `dist`'s retention no longer keeps, in the caller's
/// transaction. `live` is the version its live tree shows, kept whatever
/// the retention (the tree lists its files until the next publish).
pub async fn collect(
    tx: &mut Transaction<'_, Any>,
    dist: &str,
    retention: Retention,
    window_ms: i64,
    live: Option<i64>,
) -> Result<Collected, sqlx::Error> {
    let (first, latest): (Option<i64>, Option<i64>) =
        sqlx::query_as("SELECT MIN(number), MAX(number) FROM versions WHERE distribution = $1")
            .bind(dist)
            .fetch_one(&mut **tx)
            .await?;
    let (Some(first), Some(latest)) = (first, latest) else {
        return Ok(Collected::default());
    };
    let now = now_ms();
    let mut since = Vec::with_capacity(2);
    for (compare, limit) in [
        (
            ">=",
            now.saturating_sub(i64::from(retention.keep_days) * 86_400_000),
        ),
        (">", now.saturating_sub(window_ms)),
    ] {
        let (n,): (Option<i64>,) = sqlx::query_as(&format!(
            "SELECT MIN(number) FROM versions WHERE distribution = $1 AND created_ms {compare} $2"
        ))
        .bind(dist)
        .bind(limit)
        .fetch_one(&mut **tx)
        .await?;
        since.push(n);
    }
    let span = Span {
        first,
        latest,
        first_within_days: since[0],
        first_within_window: since[1],
    };
    let mut oldest = oldest_kept(span, retention);
    if let Some(live) = live.filter(|n| *n > 0) {
        oldest = oldest.min(live);
    }
    if oldest <= first {
        return Ok(Collected::default());
    }
    let numbers: Vec<(i64,)> =
        sqlx::query_as("SELECT number FROM versions WHERE distribution = $1 AND number < $2")
            .bind(dist)
            .bind(oldest)
            .fetch_all(&mut **tx)
            .await?;
    let mut collected = Collected {
        versions: numbers.into_iter().map(|(n,)| n).collect(),
        ..Collected::default()
    };
    collected.versions.sort_unstable();
    sqlx::query("DELETE FROM versions WHERE distribution = $1 AND number < $2")
        .bind(dist)
        .bind(oldest)
        .execute(&mut **tx)
        .await?;
    // Memberships that ended at or before the oldest kept version. Those
    // it ended are what it removed: they go now (a removal frees its space
    // with the next retention, even keeping one version), so that version
    // still counts them but no longer lists them.
    let ended: Vec<(String,)> = sqlx::query_as(
        "SELECT package_id FROM memberships WHERE distribution = $1 AND removed_in <= $2",
    )
    .bind(dist)
    .bind(oldest)
    .fetch_all(&mut **tx)
    .await?;
    sqlx::query("DELETE FROM memberships WHERE distribution = $1 AND removed_in <= $2")
        .bind(dist)
        .bind(oldest)
        .execute(&mut **tx)
        .await?;
    let ended: Vec<&str> = ended.iter().map(|(id,)| id.as_str()).collect();
    for batch in ended.chunks(BATCH) {
        // Rows no membership holds any more.
        let mut q = in_list(
            "SELECT p.id, p.sha256 FROM packages p WHERE p.id IN (",
            batch,
        );
        q.push(
            " AND p.held = FALSE AND NOT EXISTS (SELECT 1 FROM memberships m WHERE m.package_id = p.id)",
        );
        let dead: Vec<(String, String)> = q.build_query_as().fetch_all(&mut **tx).await?;
        if dead.is_empty() {
            continue;
        }
        collected.packages += dead.len();
        let ids: Vec<&str> = dead.iter().map(|(id, _)| id.as_str()).collect();
        let paths: Vec<(String,)> = in_list(
            "SELECT DISTINCT path FROM package_paths WHERE package_id IN (",
            &ids,
        )
        .build_query_as()
        .fetch_all(&mut **tx)
        .await?;
        in_list("DELETE FROM package_paths WHERE package_id IN (", &ids)
            .build()
            .execute(&mut **tx)
            .await?;
        in_list("DELETE FROM packages WHERE id IN (", &ids)
            .build()
            .execute(&mut **tx)
            .await?;
        for (path,) in paths {
            let named: Option<(String,)> =
                sqlx::query_as("SELECT package_id FROM package_paths WHERE path = $1 LIMIT 1")
                    .bind(&path)
                    .fetch_optional(&mut **tx)
                    .await?;
            if named.is_none() {
                sqlx::query(
                    "INSERT INTO pool_trash (path) VALUES ($1) ON CONFLICT (path) DO NOTHING",
                )
                .bind(&path)
                .execute(&mut **tx)
                .await?;
                collected.pool_paths.push(path);
            }
        }
        for (_, sha) in dead {
            let used: Option<(String,)> =
                sqlx::query_as("SELECT id FROM packages WHERE sha256 = $1 LIMIT 1")
                    .bind(&sha)
                    .fetch_optional(&mut **tx)
                    .await?;
            if used.is_none() && !collected.blobs.contains(&sha) {
                let deleted = super::delete_blob(tx, &sha).await?;
                collected.blobs.extend(deleted);
            }
        }
    }
    Ok(collected)
}

/// Pool paths whose files may still be on disk though no row names them:
/// those retention deleted, and, when `published` is given, those that
/// distribution's re-preparation stopped naming (its publish just went live
/// without them).
pub async fn pool_trash(db: &Db, published: Option<&str>) -> Result<Vec<String>, sqlx::Error> {
    let rows: Vec<(String,)> = sqlx::query_as(
        "SELECT path FROM pool_trash WHERE after_publish_of IS NULL OR after_publish_of = $1",
    )
    .bind(published)
    .fetch_all(db)
    .await?;
    Ok(rows.into_iter().map(|(p,)| p).collect())
}

/// Whether re-preparing `dist` left pool files its next publish must drop
/// from its live tree before they can go.
pub async fn awaits_publish(db: &Db, dist: &str) -> Result<bool, sqlx::Error> {
    let row: Option<(String,)> =
        sqlx::query_as("SELECT path FROM pool_trash WHERE after_publish_of = $1 LIMIT 1")
            .bind(dist)
            .fetch_optional(db)
            .await?;
    Ok(row.is_some())
}

/// Records `paths` (no row names them any more, `dist`'s live tree still
/// lists them) for unlinking after `dist`'s next publish.
pub async fn trash_after_publish(
    tx: &mut Transaction<'_, Any>,
    dist: &str,
    paths: &[String],
) -> Result<(), sqlx::Error> {
    // One row per path in a statement: an upsert may not touch a row twice
    // in PostgreSQL (SQLite lets the last one win).
    let paths: Vec<&String> = paths
        .iter()
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    for batch in paths.chunks(BATCH / 2) {
        let mut q = Sql::new("INSERT INTO pool_trash (path, after_publish_of) ");
        q.push_values(batch, |mut b, path| {
            b.push_bind(path.as_str()).push_bind(dist);
        });
        q.push(" ON CONFLICT (path) DO UPDATE SET after_publish_of = excluded.after_publish_of");
        q.build().execute(&mut **tx).await?;
    }
    Ok(())
}

/// Forgets trash entries (their files are gone, or a row names them again).
pub async fn clear_trash(db: &Db, paths: &[String]) -> Result<(), sqlx::Error> {
    for batch in paths.chunks(BATCH) {
        let ids: Vec<&str> = batch.iter().map(String::as_str).collect();
        in_list("DELETE FROM pool_trash WHERE path IN (", &ids)
            .build()
            .execute(db)
            .await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: i64 = 86_400_000;

    /// The span of `versions` (number, creation time) at `now`.
    fn span(versions: &[(i64, i64)], r: Retention, window: i64, now: i64) -> Span {
        let first_at = |limit: i64, strict: bool| {
            versions
                .iter()
                .filter(|(_, at)| if strict { *at > limit } else { *at >= limit })
                .map(|v| v.0)
                .min()
        };
        Span {
            first: versions.iter().map(|v| v.0).min().unwrap(),
            latest: versions.iter().map(|v| v.0).max().unwrap(),
            first_within_days: first_at(now - i64::from(r.keep_days) * DAY, false),
            first_within_window: first_at(now - window, true),
        }
    }

    #[test]
    fn retention_keeps_a_suffix() {
        let now = 100 * DAY;
        // Ten versions, one a day, the last made now.
        let versions: Vec<(i64, i64)> = (1..=10).map(|n| (n, now - (10 - n) * DAY)).collect();
        let oldest = |keep_last, keep_days, window| {
            let r = Retention {
                keep_last,
                keep_days,
            };
            oldest_kept(span(&versions, r, window, now), r)
        };
        // Last 3: 8..10; younger than 2 days: 9, 10 (8 is exactly 2 days old: kept).
        assert_eq!(oldest(3, 2, 0), 8);
        // A window keeps the versions superseded within it: 6 was made 4
        // days ago, so 5 was superseded then.
        assert_eq!(oldest(3, 2, 5 * DAY), 5);
        // Keep-days wins when it reaches further.
        assert_eq!(oldest(1, 4, 0), 6);
        // Keep nothing but the latest.
        assert_eq!(oldest(1, 0, 0), 10);
        // Never below the first version.
        assert_eq!(oldest(50, 0, 0), 1);
    }
}
