//! `/repos/`: the published trees, read by apt, dnf and zypper.
//!
//! A small handler rather than tower-http's `ServeDir`, because what the
//! clients and mirrors need is exactly what `ServeDir` lacks or gets wrong:
//!
//! - it sends no `ETag` and ignores `If-None-Match`, `If-Match` and
//!   `If-Range`; a wrapper adding them would have to `stat` the file
//!   separately from the one `ServeDir` opens, so after a publish renames a
//!   file over, the validator could describe a different file than the body;
//! - it guesses content types from extensions (`mime_guess`), which knows
//!   nothing of `InRelease`, `Packages` or signatures versus keys;
//! - it follows symlinks wherever they point.
//!
//! Here each request opens its file exactly once, beneath the tree root,
//! with `cap-std` (on Linux `openat2(RESOLVE_BENEATH)`, checked component by
//! component elsewhere): `..`, absolute symlinks and relative symlinks that
//! climb out of the root fail in the kernel, with no check-then-open race.
//! Relative symlinks that stay inside the tree are followed. The open file's
//! own `fstat` gives the strong `ETag` (inode, size, mtime in nanoseconds:
//! a publish replaces files by rename, so every replacement changes it),
//! `Last-Modified` and the length, so headers and body always describe the
//! same inode. Preconditions follow RFC 9110 §13.2.2; `Range` is parsed by
//! `http-range-header` (the parser `ServeDir` uses), dates by `httpdate`.
//! One byte range is served as 206; a multi-range request gets the whole
//! file (RFC 9110 §14.2 lets a server ignore `Range`), which no package
//! client sends anyway. Directories are never listed.

use std::io::{self, SeekFrom};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::body::Body;
use axum::extract::Request;
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodRouter, any};
use http_range_header::{EndPosition, RangeUnsatisfiableError, StartPosition};
use tokio::io::{AsyncReadExt, AsyncSeekExt};

use super::Problem;
use crate::publish::{PINNED_TOP, PublishError, Publisher};

const TEXT: &str = "text/plain; charset=utf-8";
const KEYS: &str = "application/pgp-keys";
const SIGNATURE: &str = "application/pgp-signature";
const BINARY: &str = "application/octet-stream";

/// The service to nest at `/repos`: it sees request paths relative to the
/// tree, still percent-encoded. `publisher` builds pinned trees on demand.
pub fn service(root: &Path, publisher: Arc<Publisher>) -> MethodRouter {
    let root: Arc<Path> = root.into();
    any(move |request: Request| serve(root.clone(), publisher.clone(), request))
}

/// Where a path under `versions/<dist>/<n>/` is served from. The version's
/// generated files (Release, repomd.xml, indexes) are in its own directory,
/// built the first time anyone asks; a package path the version lists is
/// served from its blob (the blob store keeps every blob a kept version
/// lists; with an object store, fetched into this node's cache). Anything
/// else is not found.
async fn pinned(root: &Path, publisher: &Publisher, path: String) -> Result<Source, Response> {
    let Some(rest) = path
        .strip_prefix(PINNED_TOP)
        .and_then(|r| r.strip_prefix('/'))
    else {
        return Ok(Source::Tree(path));
    };
    let mut parts = rest.splitn(3, '/');
    let (Some(dist), Some(number), Some(tail)) = (parts.next(), parts.next(), parts.next()) else {
        return Err(not_found());
    };
    // One spelling per version (`5`, not `05` or `+5`): one tree per version.
    let Some(number) = number
        .parse::<i64>()
        .ok()
        .filter(|n| *n > 0 && n.to_string() == number)
    else {
        return Err(not_found());
    };
    match publisher.pinned(dist, number).await {
        Ok(_) => {}
        Err(e @ (PublishError::NotKept(_) | PublishError::UnknownDistribution(_))) => {
            return Err(Problem::not_found(e.to_string()).into_response());
        }
        Err(e @ PublishError::Busy(_)) => {
            let mut response = Problem::new(StatusCode::SERVICE_UNAVAILABLE, "busy", e.to_string())
                .into_response();
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
            return Err(response);
        }
        Err(e) => return Err(Problem::internal(e).into_response()),
    }
    if tokio::fs::metadata(root.join(&path))
        .await
        .is_ok_and(|m| m.is_file())
    {
        return Ok(Source::Tree(path));
    }
    match publisher.pool_blob(dist, number, tail).await {
        Ok(Some(blob)) => Ok(Source::Blob(path, blob)),
        Ok(None) => Err(not_found()),
        Err(e) => Err(Problem::internal(e).into_response()),
    }
}

/// What a request path is served from.
enum Source {
    /// A path of the tree: the live trees, pinned trees' own files.
    Tree(String),
    /// A package file a pinned tree lists (the request path and the blob).
    Blob(String, std::path::PathBuf),
}

async fn serve(root: Arc<Path>, publisher: Arc<Publisher>, request: Request) -> Response {
    let method = request.method().clone();
    if method != Method::GET && method != Method::HEAD {
        let mut response = Problem::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "method-not-allowed",
            "the published trees are read-only: GET or HEAD",
        )
        .into_response();
        response
            .headers_mut()
            .insert(header::ALLOW, HeaderValue::from_static("GET, HEAD"));
        return response;
    }
    let Some(path) = tree_path(request.uri().path()) else {
        return not_found();
    };
    let (path, blob) = match pinned(&root, &publisher, path).await {
        Ok(Source::Tree(path)) => (path, None),
        Ok(Source::Blob(path, blob)) => (path, Some(blob)),
        Err(response) => return response,
    };
    let stored = publisher.trees().filter(|_| !local_only(&path));
    // Read ahead only for a plain GET: a conditional one (apt re-checking
    // InRelease) mostly ends in 304 and would read the file for nothing.
    let whole = method == Method::GET
        && !request.headers().contains_key(header::IF_NONE_MATCH)
        && !request.headers().contains_key(header::IF_MODIFIED_SINCE);
    let opened = match (blob, stored) {
        (Some(blob), _) => tokio::task::spawn_blocking(move || {
            let mut file = std::fs::File::open(blob)?;
            let meta = file.metadata()?;
            let validators = Validators::of(&meta);
            let content = read_small(&mut file, &meta, whole)?;
            Ok((file, meta, validators, content))
        })
        .await
        .unwrap_or_else(|e| Err(io::Error::other(e))),
        (None, Some(trees)) => open_stored(trees, &path)
            .await
            .map(|(file, meta, validators)| (file, meta, validators, None)),
        (None, None) => {
            let path = path.clone();
            tokio::task::spawn_blocking(move || {
                let (mut file, meta) = open_beneath(&root, &path)?;
                let validators = Validators::of(&meta);
                let content = read_small(&mut file, &meta, whole)?;
                Ok((file, meta, validators, content))
            })
            .await
            .unwrap_or_else(|e| Err(io::Error::other(e)))
        }
    };
    let (file, meta, validators, content) = match opened {
        Ok(opened) => opened,
        Err(e) if is_absent(&e) => return not_found(),
        Err(e) => return Problem::internal(format_args!("/repos/{path}: {e}")).into_response(),
    };

    let headers = request.headers();
    match preconditions(headers, &validators) {
        Precondition::NotModified => {
            return validators.apply(StatusCode::NOT_MODIFIED.into_response());
        }
        Precondition::Failed => {
            return validators.apply(
                Problem::new(
                    StatusCode::PRECONDITION_FAILED,
                    "precondition-failed",
                    "the file does not match If-Match / If-Unmodified-Since",
                )
                .into_response(),
            );
        }
        Precondition::Passed => {}
    }

    let len = meta.len();
    let range = if method == Method::GET && if_range_holds(headers, &validators) {
        byte_range(headers, len)
    } else {
        Wanted::Whole
    };
    let (status, start, count) = match range {
        Wanted::Whole => (StatusCode::OK, 0, len),
        Wanted::Bytes(first, last) => (StatusCode::PARTIAL_CONTENT, first, last - first + 1),
        Wanted::Unsatisfiable => {
            let mut response = Problem::new(
                StatusCode::RANGE_NOT_SATISFIABLE,
                "range-not-satisfiable",
                format!("the file is {len} bytes long"),
            )
            .into_response();
            response.headers_mut().insert(
                header::CONTENT_RANGE,
                HeaderValue::try_from(format!("bytes */{len}")).expect("ascii"),
            );
            return validators.apply(response);
        }
    };

    let body = if method == Method::HEAD {
        Body::empty()
    } else if let Some(content) = content {
        let range = start as usize..(start + count) as usize;
        Body::from(axum::body::Bytes::from(content).slice(range))
    } else {
        let mut file = tokio::fs::File::from_std(file);
        if start > 0
            && let Err(e) = file.seek(SeekFrom::Start(start)).await
        {
            return Problem::internal(format_args!("/repos/{path}: {e}")).into_response();
        }
        // tokio::fs reads each chunk on the blocking pool: large chunks
        // keep those trips few.
        Body::from_stream(tokio_util::io::ReaderStream::with_capacity(
            file.take(count),
            256 << 10,
        ))
    };
    let mut response = Response::new(body);
    *response.status_mut() = status;
    let out = response.headers_mut();
    out.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(content_type(&path)),
    );
    out.insert(header::CONTENT_LENGTH, HeaderValue::from(count));
    out.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    out.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    if status == StatusCode::PARTIAL_CONTENT {
        out.insert(
            header::CONTENT_RANGE,
            HeaderValue::try_from(format!("bytes {start}-{}/{len}", start + count - 1))
                .expect("ascii"),
        );
    }
    validators.apply(response)
}

fn not_found() -> Response {
    Problem::not_found("no such file in the published trees").into_response()
}

/// The request path (relative to the tree, percent-encoded) as a relative
/// file path, or `None` for anything that is not plainly a file name below
/// the root: empty, `.` or `..` segments, and segments whose decoding holds
/// a `/`, a `\`, a NUL or invalid UTF-8. The empty path (the root) is
/// refused too: directories are not listed.
fn tree_path(raw: &str) -> Option<String> {
    let raw = raw.strip_prefix('/').unwrap_or(raw);
    let mut path = String::with_capacity(raw.len());
    for segment in raw.split('/') {
        let segment = percent_encoding::percent_decode_str(segment)
            .decode_utf8()
            .ok()?;
        if segment.is_empty()
            || segment == "."
            || segment == ".."
            || segment.contains(['/', '\\', '\0'])
        {
            return None;
        }
        if !path.is_empty() {
            path.push('/');
        }
        path.push_str(&segment);
    }
    Some(path)
}

/// Paths every node serves from its own directory even when live trees
/// come from the object store: the public keys (each node writes the same
/// ones) and pinned trees (built on the node that is asked).
fn local_only(path: &str) -> bool {
    matches!(
        path.split('/').next(),
        Some(crate::publish::RESERVED_TOP | PINNED_TOP)
    )
}

/// Opens the file the stored generations name at `path`, from this node's
/// cache (fetched first if missing); validators from its SHA-256 and its
/// generation's time, the same on every node.
/// Files up to this size are read whole in the blocking task that opens
/// them: one trip to the blocking pool per request, where streaming takes
/// one per read (the small indexes apt asks for most, InRelease above all).
const READ_WHOLE: u64 = 1 << 20;

/// The whole content of a small file for a GET; `None` to stream it.
/// Published files are never written in place (a publish renames new ones
/// over them), so the length read is the length the metadata gave.
fn read_small(
    file: &mut std::fs::File,
    meta: &std::fs::Metadata,
    wanted: bool,
) -> io::Result<Option<Vec<u8>>> {
    if !wanted || meta.len() > READ_WHOLE {
        return Ok(None);
    }
    let mut content = Vec::with_capacity(meta.len() as usize);
    std::io::Read::read_to_end(
        &mut std::io::Read::take(&mut *file, meta.len()),
        &mut content,
    )?;
    if content.len() as u64 != meta.len() {
        return Err(io::Error::other("the file changed while it was read"));
    }
    Ok(Some(content))
}

async fn open_stored(
    trees: &crate::publish::objects::TreeStore,
    path: &str,
) -> io::Result<(std::fs::File, std::fs::Metadata, Validators)> {
    let Some(entry) = trees.index().get(path).cloned() else {
        return Err(io::ErrorKind::NotFound.into());
    };
    let local = trees.local(&entry).await?;
    let file = tokio::fs::File::open(local).await?.into_std().await;
    let meta = file.metadata()?;
    Ok((
        file,
        meta,
        Validators::stored(&entry.sha256, entry.created_at),
    ))
}

/// Opens `path` beneath `root` (symlinks followed only while they stay
/// inside) and returns it with its metadata, or `NotFound` for anything but
/// a regular file. Blocking.
fn open_beneath(root: &Path, path: &str) -> io::Result<(std::fs::File, std::fs::Metadata)> {
    let dir = cap_std::fs::Dir::open_ambient_dir(root, cap_std::ambient_authority())?;
    // Look before opening: opening a FIFO for reading would block.
    if !dir.metadata(path)?.is_file() {
        return Err(io::ErrorKind::NotFound.into());
    }
    let file = dir.open(path)?.into_std();
    let meta = file.metadata()?;
    if !meta.is_file() {
        return Err(io::ErrorKind::NotFound.into());
    }
    Ok((file, meta))
}

/// Errors that mean "no such file here" (including a path that would leave
/// the tree, which cap-std reports as `PermissionDenied`), as opposed to a
/// fault of the server.
fn is_absent(e: &io::Error) -> bool {
    use io::ErrorKind::*;
    // ELOOP has no stable `ErrorKind` yet.
    e.raw_os_error() == Some(rustix::io::Errno::LOOP.raw_os_error())
        || matches!(
            e.kind(),
            NotFound
                | PermissionDenied
                | NotADirectory
                | IsADirectory
                | CrossesDevices
                | InvalidFilename
                | InvalidInput
        )
}

/// The content type by file name. The host names no index file, so
/// extensionless files (Release, Packages, Contents-<arch>... in the trees
/// plugins render today) are text, except under a `by-hash` directory,
/// where a content-addressed copy may hold compressed bytes. OpenPGP files
/// are told apart by place: `.gpg` and `.asc` under a `keys/` directory,
/// and any `.key`, are keys; elsewhere they are detached signatures
/// (`Release.gpg`, `repomd.xml.asc`).
fn content_type(path: &str) -> &'static str {
    let (dirs, name) = path.rsplit_once('/').unwrap_or(("", path));
    let in_keys = dirs.split('/').any(|d| d == "keys");
    let Some((_, extension)) = name.rsplit_once('.') else {
        let by_hash = dirs.split('/').any(|d| d == "by-hash");
        return if by_hash { BINARY } else { TEXT };
    };
    match extension {
        "gz" => "application/gzip",
        "xz" => "application/x-xz",
        "zst" => "application/zstd",
        "bz2" => "application/x-bzip2",
        "xml" => "application/xml",
        "deb" | "udeb" | "ddeb" => "application/vnd.debian.binary-package",
        "rpm" => "application/x-rpm",
        "sources" | "repo" | "list" => TEXT,
        "key" => KEYS,
        "gpg" | "asc" if in_keys => KEYS,
        "gpg" | "asc" => SIGNATURE,
        _ => BINARY,
    }
}

/// What the open file's `fstat` says about it.
struct Validators {
    etag: String,
    /// The modification time in whole seconds, as `Last-Modified` sends it;
    /// `None` for a file changed less than a second ago (see [`Validators::of`]).
    modified: Option<SystemTime>,
}

impl Validators {
    fn of(meta: &std::fs::Metadata) -> Validators {
        use std::os::unix::fs::MetadataExt;
        let etag = format!(
            "\"{:x}-{:x}-{:x}.{:09}\"",
            meta.ino(),
            meta.size(),
            meta.mtime(),
            meta.mtime_nsec()
        );
        // httpdate cannot format times before 1970 or after 9999.
        const LAST: u64 = 253_402_300_799;
        let seconds = u64::try_from(meta.mtime()).unwrap_or(0).min(LAST);
        let modified = UNIX_EPOCH + Duration::from_secs(seconds);
        // Dates have one-second resolution: a file replaced twice within a
        // second keeps its Last-Modified, and a client revalidating with
        // If-Modified-Since would keep the older copy (a publish right after
        // another does exactly that). Apache's rule avoids it: no date for a
        // file younger than a second; the ETag still validates it.
        let settled = meta
            .modified()
            .ok()
            .and_then(|m| SystemTime::now().duration_since(m).ok())
            .is_some_and(|age| age >= Duration::from_secs(1));
        Validators {
            etag,
            modified: settled.then_some(modified),
        }
    }

    /// Validators of a stored file: its SHA-256, and the time its
    /// generation was stored. No date within its first second, as above;
    /// the time is in whole seconds, so "a second old" is sure only two
    /// seconds after the second it names began.
    fn stored(sha256: &str, created_at: i64) -> Validators {
        let created = UNIX_EPOCH + Duration::from_secs(u64::try_from(created_at).unwrap_or(0));
        let settled = SystemTime::now()
            .duration_since(created)
            .is_ok_and(|age| age >= Duration::from_secs(2));
        Validators {
            etag: format!("\"{sha256}\""),
            modified: settled.then_some(created),
        }
    }

    fn apply(&self, mut response: Response) -> Response {
        let headers = response.headers_mut();
        headers.insert(
            header::ETAG,
            HeaderValue::try_from(&self.etag).expect("ascii"),
        );
        if let Some(modified) = self.modified {
            headers.insert(
                header::LAST_MODIFIED,
                HeaderValue::try_from(httpdate::fmt_http_date(modified)).expect("ascii"),
            );
        }
        response
    }

    /// Our tag without its quotes: what weak and strong comparison compare.
    fn opaque(&self) -> &str {
        self.etag.trim_matches('"')
    }
}

enum Precondition {
    Passed,
    NotModified,
    Failed,
}

/// RFC 9110 §13.2.2 for GET and HEAD: If-Match, else If-Unmodified-Since
/// (412); then If-None-Match, else If-Modified-Since (304).
fn preconditions(headers: &HeaderMap, validators: &Validators) -> Precondition {
    if let Some(tags) = tag_list(headers, &header::IF_MATCH) {
        let held = match tags {
            Tags::Any => true,
            Tags::List(list) => list
                .iter()
                .any(|(weak, tag)| !weak && *tag == validators.opaque()),
        };
        if !held {
            return Precondition::Failed;
        }
    } else if let Some(date) = date(headers, &header::IF_UNMODIFIED_SINCE)
        && validators.modified.is_none_or(|m| m > date)
    {
        return Precondition::Failed;
    }
    if let Some(tags) = tag_list(headers, &header::IF_NONE_MATCH) {
        let matched = match tags {
            Tags::Any => true,
            Tags::List(list) => list.iter().any(|(_, tag)| *tag == validators.opaque()),
        };
        if matched {
            return Precondition::NotModified;
        }
    } else if let Some(date) = date(headers, &header::IF_MODIFIED_SINCE)
        && validators.modified.is_some_and(|m| m <= date)
    {
        return Precondition::NotModified;
    }
    Precondition::Passed
}

/// `If-Range` (RFC 9110 §13.1.5): true when absent, or when it names the
/// current representation (strong ETag comparison, or exactly the
/// `Last-Modified` date); when false the `Range` is ignored.
fn if_range_holds(headers: &HeaderMap, validators: &Validators) -> bool {
    let Some(value) = headers.get(header::IF_RANGE) else {
        return true;
    };
    let Ok(value) = value.to_str() else {
        return false;
    };
    let value = value.trim();
    if value.starts_with('"') || value.starts_with("W/") {
        matches!(entity_tags(value).as_slice(), [(false, tag)] if *tag == validators.opaque())
    } else {
        httpdate::parse_http_date(value).is_ok_and(|date| Some(date) == validators.modified)
    }
}

enum Tags<'a> {
    Any,
    /// (weak, opaque tag without quotes)
    List(Vec<(bool, &'a str)>),
}

/// An `If-Match` / `If-None-Match` field (all its lines), or `None` when
/// absent.
fn tag_list<'a>(headers: &'a HeaderMap, name: &HeaderName) -> Option<Tags<'a>> {
    let mut values = headers.get_all(name).iter().peekable();
    values.peek()?;
    let mut list = Vec::new();
    for value in values {
        // A value that is not text names no tag of ours.
        let Ok(value) = value.to_str() else { continue };
        if value.trim() == "*" {
            return Some(Tags::Any);
        }
        list.extend(entity_tags(value));
    }
    Some(Tags::List(list))
}

/// The entity-tags of a comma-separated list; parsing stops at the first
/// malformed one. Each is (weak, opaque tag without quotes).
fn entity_tags(mut s: &str) -> Vec<(bool, &str)> {
    let mut tags = Vec::new();
    loop {
        s = s.trim_start_matches([' ', '\t', ',']);
        if s.is_empty() {
            return tags;
        }
        let weak = match s.strip_prefix("W/") {
            Some(rest) => {
                s = rest;
                true
            }
            None => false,
        };
        let Some((tag, rest)) = s.strip_prefix('"').and_then(|s| s.split_once('"')) else {
            return tags;
        };
        tags.push((weak, tag));
        s = rest;
    }
}

/// A header's HTTP-date; an invalid date counts as absent (RFC 9110).
fn date(headers: &HeaderMap, name: &HeaderName) -> Option<SystemTime> {
    httpdate::parse_http_date(headers.get(name)?.to_str().ok()?).ok()
}

enum Wanted {
    Whole,
    /// First and last byte, inclusive.
    Bytes(u64, u64),
    Unsatisfiable,
}

/// The `Range` to serve. Malformed fields and other units are ignored, as
/// are several ranges (the whole file is a correct answer to those).
fn byte_range(headers: &HeaderMap, len: u64) -> Wanted {
    let Some(value) = headers.get(header::RANGE).and_then(|v| v.to_str().ok()) else {
        return Wanted::Whole;
    };
    let parsed = match http_range_header::parse_range_header(value) {
        Ok(parsed) => parsed,
        // `bytes=-0`: well-formed, but selects nothing.
        Err(RangeUnsatisfiableError::ZeroSuffix) => return Wanted::Unsatisfiable,
        Err(_) => return Wanted::Whole,
    };
    let [one] = parsed.ranges.as_slice() else {
        return Wanted::Whole;
    };
    // `bytes=5-3` is invalid syntax (RFC 9110 §14.1.1), not unsatisfiable.
    if let (StartPosition::Index(first), EndPosition::Index(last)) = (&one.start, &one.end)
        && last < first
    {
        return Wanted::Whole;
    }
    match parsed.validate(len).as_deref() {
        Ok([range]) if len > 0 => Wanted::Bytes(*range.start(), *range.end()),
        _ => Wanted::Unsatisfiable,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_that_are_not_plain_names_below_the_root_are_refused() {
        assert_eq!(
            tree_path("/dists/a%2Bb.deb").as_deref(),
            Some("dists/a+b.deb")
        );
        for bad in [
            "/",
            "//etc/passwd",
            "/dists/",
            "/../x",
            "/./x",
            "/%2e%2e/x",
            "/a%2fb",
            "/a%2Fb",
            "/a%5cb",
            "/a%00",
            "/a%ff",
        ] {
            assert_eq!(tree_path(bad), None, "{bad}");
        }
    }

    #[test]
    fn entity_tag_lists() {
        assert_eq!(
            entity_tags(r#""a", W/"b" ,"c,d""#),
            vec![(false, "a"), (true, "b"), (false, "c,d")]
        );
        assert_eq!(entity_tags(r#""a", bogus, "b""#), vec![(false, "a")]);
    }
}
