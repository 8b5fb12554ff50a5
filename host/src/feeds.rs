//! Advisory feeds: OSV data the config names (`[advisories] feeds`),
//! synced on a schedule and on demand (`POST /api/v1/advisories/sync`).
//!
//! A feed is an `http(s)://` URL of an OSV file (an ecosystem's `all.zip`,
//! a JSON array, one record), an `http(s)://` URL ending in `/` whose
//! directory listing (nginx or Apache autoindex, `python3 -m http.server`)
//! links `*.json` records, or a local directory of `*.json` records.
//! Fetches are conditional (`If-None-Match` / `If-Modified-Since` from the
//! last answer; for a directory, a fingerprint of its listing, or of its
//! files' names, sizes and times), so an unchanged feed costs one request. A fetch or import
//! that fails keeps the data of the last good sync, and is recorded in the
//! import history and the feed's status.

use std::time::Duration;

use serde::Serialize;

use crate::advisories::{self, AdvisoryError, ImportReport};
use crate::db::Db;

/// The largest feed file taken (an ecosystem's all.zip is tens of MiB).
const MAX_FEED_BYTES: u64 = 1 << 30;

/// The actor feed imports are recorded under.
pub const FEED_ACTOR: &str = "feed";

/// What one sync of one feed did.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Synced {
    pub source: String,
    /// `ok` (imported), `unchanged` (not modified since the last sync) or
    /// `failed` (the last good data stays).
    pub status: String,
    pub error: Option<String>,
    pub import: Option<ImportReport>,
}

/// A feed's state, as `GET /advisories/feeds` shows it.
#[derive(Debug, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct FeedState {
    pub source: String,
    pub etag: Option<String>,
    pub last_modified: Option<String>,
    pub tried_ms: i64,
    pub synced_ms: Option<i64>,
    pub status: String,
    pub error: Option<String>,
    pub import_id: Option<String>,
}

/// What a fetch brought.
enum Fetched {
    NotModified,
    Body {
        bytes: Vec<u8>,
        etag: Option<String>,
        last_modified: Option<String>,
    },
}

fn is_web(source: &str) -> bool {
    source.starts_with("http://") || source.starts_with("https://")
}

/// GETs `url`, conditionally on what the last sync saw.
fn fetch_http(url: &str, etag: Option<&str>, since: Option<&str>) -> Result<Fetched, String> {
    let agent = ureq::AgentBuilder::new()
        .timeout_connect(Duration::from_secs(15))
        .timeout(Duration::from_secs(600))
        .build();
    let mut request = agent.get(url);
    if let Some(etag) = etag {
        request = request.set("If-None-Match", etag);
    }
    if let Some(since) = since {
        request = request.set("If-Modified-Since", since);
    }
    let response = match request.call() {
        Ok(r) => r,
        Err(ureq::Error::Status(status, r)) => {
            return Err(format!("{url} answered {status} {}", r.status_text()));
        }
        Err(e) => return Err(format!("cannot fetch {url}: {e}")),
    };
    if response.status() == 304 {
        return Ok(Fetched::NotModified);
    }
    let etag = response.header("ETag").map(str::to_owned);
    let last_modified = response.header("Last-Modified").map(str::to_owned);
    let mut bytes = Vec::new();
    std::io::Read::read_to_end(
        &mut std::io::Read::take(response.into_reader(), MAX_FEED_BYTES + 1),
        &mut bytes,
    )
    .map_err(|e| format!("reading {url}: {e}"))?;
    if bytes.len() as u64 > MAX_FEED_BYTES {
        return Err(format!("{url} is larger than {MAX_FEED_BYTES} bytes"));
    }
    Ok(Fetched::Body {
        bytes,
        etag,
        last_modified,
    })
}

/// The `*.json` records a directory listing links, as relative hrefs in
/// page order (no absolute, parent or query links).
fn listed_records(html: &str) -> Vec<&str> {
    html.split("href=\"")
        .skip(1)
        .filter_map(|rest| rest.split('"').next())
        .filter(|href| {
            href.ends_with(".json")
                && !href.starts_with('/')
                && !href.contains("://")
                && !href.contains('?')
                && !href.split('/').any(|part| part == "..")
        })
        .collect()
}

/// Reads the records a web directory's listing links as one JSON array,
/// with a fingerprint of the listing as the "ETag": nginx and Apache
/// listings show each file's size and time, so a changed record changes
/// the listing; a listing without them (python's http.server) notices
/// added and removed records only.
fn fetch_http_dir(url: &str, etag: Option<&str>) -> Result<Fetched, String> {
    // Unconditional GETs: a 304 to one is the server's error.
    let get = |url: &str| match fetch_http(url, None, None)? {
        Fetched::Body { bytes, .. } => Ok(bytes),
        Fetched::NotModified => Err(format!("{url} answered 304 to an unconditional request")),
    };
    let page = get(url)?;
    let page = String::from_utf8_lossy(&page);
    let fingerprint = format!("listing:{}", crate::plugins::sha256_hex(page.as_bytes()));
    if etag == Some(fingerprint.as_str()) {
        return Ok(Fetched::NotModified);
    }
    let records = listed_records(&page);
    if records.is_empty() {
        return Err(format!(
            "{url} lists no *.json record (a feed URL ending in / must be a directory \
             listing; name an all.zip or a .json file otherwise)"
        ));
    }
    let mut bytes = b"[".to_vec();
    for (i, href) in records.iter().enumerate() {
        if i > 0 {
            bytes.push(b',');
        }
        bytes.extend_from_slice(&get(&format!("{url}{href}"))?);
        if bytes.len() as u64 > MAX_FEED_BYTES {
            return Err(format!(
                "{url} lists more than {MAX_FEED_BYTES} bytes of records"
            ));
        }
    }
    bytes.push(b']');
    Ok(Fetched::Body {
        bytes,
        etag: Some(fingerprint),
        last_modified: None,
    })
}

/// Reads a directory of records as one JSON array, with a fingerprint of
/// its files as the "ETag".
fn fetch_dir(dir: &str, etag: Option<&str>) -> Result<Fetched, String> {
    let mut files: Vec<(String, std::fs::Metadata)> = std::fs::read_dir(dir)
        .map_err(|e| format!("cannot read the feed directory {dir}: {e}"))?
        .filter_map(Result::ok)
        .filter(|e| e.file_name().to_string_lossy().ends_with(".json"))
        .filter_map(|e| Some((e.path().to_string_lossy().into_owned(), e.metadata().ok()?)))
        .collect();
    files.sort_by(|a, b| a.0.cmp(&b.0));
    let fingerprint = {
        let mut text = String::new();
        for (path, meta) in &files {
            let modified = meta
                .modified()
                .ok()
                .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                .map_or(0, |d| d.as_nanos());
            text.push_str(&format!("{path}\t{}\t{modified}\n", meta.len()));
        }
        crate::plugins::sha256_hex(text.as_bytes())
    };
    if etag == Some(fingerprint.as_str()) {
        return Ok(Fetched::NotModified);
    }
    let mut bytes = b"[".to_vec();
    for (i, (path, _)) in files.iter().enumerate() {
        if i > 0 {
            bytes.push(b',');
        }
        let record = std::fs::read(path).map_err(|e| format!("cannot read {path}: {e}"))?;
        bytes.extend_from_slice(&record);
        if bytes.len() as u64 > MAX_FEED_BYTES {
            return Err(format!(
                "{dir} holds more than {MAX_FEED_BYTES} bytes of records"
            ));
        }
    }
    bytes.push(b']');
    Ok(Fetched::Body {
        bytes,
        etag: Some(fingerprint),
        last_modified: None,
    })
}

async fn state(db: &Db, source: &str) -> Result<Option<FeedState>, sqlx::Error> {
    sqlx::query_as(
        "SELECT source, etag, last_modified, tried_ms, synced_ms, status, error, import_id \
         FROM advisory_feeds WHERE source = $1",
    )
    .bind(source)
    .fetch_optional(db)
    .await
}

/// Every feed's state, by source.
pub async fn states(db: &Db) -> Result<Vec<FeedState>, sqlx::Error> {
    sqlx::query_as(
        "SELECT source, etag, last_modified, tried_ms, synced_ms, status, error, import_id \
         FROM advisory_feeds ORDER BY source",
    )
    .fetch_all(db)
    .await
}

async fn save(db: &Db, s: &FeedState) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO advisory_feeds (source, etag, last_modified, tried_ms, synced_ms, status, \
         error, import_id) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (source) DO UPDATE \
         SET etag = excluded.etag, last_modified = excluded.last_modified, \
         tried_ms = excluded.tried_ms, synced_ms = excluded.synced_ms, status = excluded.status, \
         error = excluded.error, import_id = excluded.import_id",
    )
    .bind(&s.source)
    .bind(&s.etag)
    .bind(&s.last_modified)
    .bind(s.tried_ms)
    .bind(s.synced_ms)
    .bind(&s.status)
    .bind(&s.error)
    .bind(&s.import_id)
    .execute(db)
    .await?;
    Ok(())
}

/// Syncs one feed.
pub async fn sync(db: &Db, source: &str) -> Result<Synced, sqlx::Error> {
    let previous = state(db, source).await?;
    let now = crate::scan::now_ms();
    let mut next = FeedState {
        source: source.to_owned(),
        etag: previous.as_ref().and_then(|p| p.etag.clone()),
        last_modified: previous.as_ref().and_then(|p| p.last_modified.clone()),
        tried_ms: now,
        synced_ms: previous.as_ref().and_then(|p| p.synced_ms),
        status: String::new(),
        error: None,
        import_id: previous.as_ref().and_then(|p| p.import_id.clone()),
    };
    tracing::info!(feed = source, "syncing advisory feed");
    let (url, etag, since) = (
        source.to_owned(),
        next.etag.clone(),
        next.last_modified.clone(),
    );
    let fetched = tokio::task::spawn_blocking(move || {
        if is_web(&url) && url.ends_with('/') {
            fetch_http_dir(&url, etag.as_deref())
        } else if is_web(&url) {
            fetch_http(&url, etag.as_deref(), since.as_deref())
        } else {
            fetch_dir(&url, etag.as_deref())
        }
    })
    .await
    .unwrap_or_else(|e| Err(format!("internal error fetching: {e}")));
    let synced = match fetched {
        Ok(Fetched::NotModified) => {
            tracing::info!(
                feed = source,
                "advisory feed not modified since the last sync"
            );
            next.status = "unchanged".into();
            next.synced_ms = Some(now);
            Synced {
                source: source.to_owned(),
                status: "unchanged".into(),
                error: None,
                import: None,
            }
        }
        Ok(Fetched::Body {
            bytes,
            etag,
            last_modified,
        }) => {
            tracing::info!(
                feed = source,
                bytes = bytes.len(),
                "advisory feed fetched; importing"
            );
            match advisories::import(db, bytes, source, FEED_ACTOR, repod_osv::Limits::default())
                .await
            {
                Ok(report) => {
                    next.status = "ok".into();
                    next.etag = etag;
                    next.last_modified = last_modified;
                    next.synced_ms = Some(now);
                    next.import_id = Some(report.id.clone());
                    Synced {
                        source: source.to_owned(),
                        status: "ok".into(),
                        error: None,
                        import: Some(report),
                    }
                }
                // The history has it (advisories::import records failures).
                Err(AdvisoryError::Invalid(why)) => failed(&mut next, source, why),
                Err(AdvisoryError::Db(e)) => return Err(e),
            }
        }
        Err(why) => {
            advisories::record_failure(db, source, FEED_ACTOR, &why).await?;
            failed(&mut next, source, why)
        }
    };
    save(db, &next).await?;
    Ok(synced)
}

fn failed(next: &mut FeedState, source: &str, why: String) -> Synced {
    tracing::warn!(
        feed = source,
        "advisory feed sync failed, keeping the last good data: {why}"
    );
    next.status = "failed".into();
    next.error = Some(why.clone());
    Synced {
        source: source.to_owned(),
        status: "failed".into(),
        error: Some(why),
        import: None,
    }
}

/// Syncs one feed and re-scans the packages its import changed (their
/// count in the report's `rescanned`).
pub async fn sync_and_rescan(
    db: &Db,
    plugins: &crate::plugins::PluginHost,
    policies: &crate::config::PolicyConfig,
    source: &str,
) -> Result<Synced, crate::scan::ScanError> {
    let mut synced = sync(db, source).await?;
    if let Some(report) = &mut synced.import {
        report.rescanned = crate::scan::rescan_after(db, plugins, policies, report).await?;
    }
    Ok(synced)
}

#[cfg(test)]
mod tests {
    #[test]
    fn listings_link_records() {
        // python3 -m http.server, then nginx autoindex.
        let python = r#"<ul><li><a href="ALSA-2023%3A0959.json">ALSA-2023:0959.json</a></li>
<li><a href="README.md">README.md</a></li><li><a href="sub/">sub/</a></li></ul>"#;
        assert_eq!(super::listed_records(python), ["ALSA-2023%3A0959.json"]);
        let nginx = r#"<a href="../">../</a>
<a href="USN-6429-1.json">USN-6429-1.json</a>   29-Nov-2026 04:00   4242
<a href="/etc/passwd.json">x</a><a href="../up.json">x</a><a href="http://x/y.json">x</a>"#;
        assert_eq!(super::listed_records(nginx), ["USN-6429-1.json"]);
    }
}
