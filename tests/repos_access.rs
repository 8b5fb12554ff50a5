//! /repos/ serves the published trees: anonymously by default, behind a
//! reader token when `repos-require-token = true`, and never a file outside
//! the tree.
//!
//! These tests place files in a daemon's tree directory, so their daemons
//! keep the filesystem store in the S3 run too (a node serving from the
//! object store serves only what its generations name: tests/object_store.rs).

use std::io::{Read, Write};

use repod_tests::Daemon;

fn place(daemon: &Daemon) {
    put(daemon, "dists/hello.txt", b"hello\n");
}

/// Dates the file `secs` seconds back: the server sends no Last-Modified
/// for a file younger than a second.
fn age(path: &std::path::Path, secs: u64) {
    let when = std::time::SystemTime::now() - std::time::Duration::from_secs(secs);
    std::fs::File::options()
        .write(true)
        .open(path)
        .unwrap()
        .set_modified(when)
        .unwrap();
}

#[test]
fn repos_are_anonymous_by_default_and_never_escape() {
    let daemon = Daemon::builder().filesystem().start();
    place(&daemon);
    let got = daemon.get("/repos/dists/hello.txt", None);
    assert_eq!((got.status, got.body.as_str()), (200, Some("hello\n")));
    assert_eq!(daemon.get("/repos/dists/missing", None).status, 404);

    let secret = std::fs::read(daemon.data.path().join("keys/signing.key")).unwrap();
    for target in [
        "/repos/../keys/signing.key",
        "/repos/dists/../../keys/signing.key",
        "/repos/%2e%2e/keys/signing.key",
        "/repos/dists/%2e%2e%2f%2e%2e%2fkeys/signing.key",
        "/repos/..%2fkeys/signing.key",
        "/repos/..%2Fkeys/signing.key",
        "/repos/%2E%2E/keys/signing.key",
        "/repos/%2e%2e%2fkeys/signing.key",
        "/repos/dists%2f..%2f..%2fkeys/signing.key",
        "/repos/..%5ckeys/signing.key",
        "/repos/..%5Ckeys/signing.key",
        "/repos/..\\keys/signing.key",
        "/repos/%2e%2e/%2e%2e/%2e%2e/%2e%2e/%2e%2e/%2e%2e/etc/passwd",
        "/repos/..%2f..%2f..%2f..%2f..%2f..%2f..%2fetc%2fpasswd",
        "/repos/%00/../keys/signing.key",
        "/repos//etc/passwd",
    ] {
        let (status, body) = daemon.raw_get(target);
        assert!(matches!(status, 400 | 404), "{target}: {status}");
        assert!(
            !body.windows(16).any(|w| w == &secret[..16]),
            "{target} leaked the signing key"
        );
        assert!(
            !String::from_utf8_lossy(&body).contains("root:x:0:0"),
            "{target} leaked /etc/passwd"
        );
    }

    // The file exists, but only under its plain name: a decoded `%2f` or a
    // NUL is not a path separator.
    for target in [
        "/repos/dists%2fhello.txt",
        "/repos/dists%2Fhello.txt",
        "/repos/dists%5chello.txt",
        "/repos/dists/hello.txt%00",
        "/repos/dists/./hello.txt",
    ] {
        let got = request(&daemon, "GET", target, &[]);
        assert!(matches!(got.status, 400 | 404), "{target}: {got:?}");
        assert!(!got.text().contains("hello"), "{target} served the file");
    }
}

#[test]
fn a_config_switch_makes_repos_need_a_reader_token() {
    let daemon = Daemon::builder()
        .filesystem()
        .config("repos-require-token = true\n")
        .start();
    place(&daemon);
    let anonymous = daemon.get("/repos/dists/hello.txt", None);
    assert!(anonymous.problem(401).contains("bearer token"));
    let reader = daemon.token("reader", "apt-client");
    let got = daemon.get("/repos/dists/hello.txt", Some(&reader));
    assert_eq!((got.status, got.body.as_str()), (200, Some("hello\n")));
    assert!(
        daemon
            .get("/repos/dists/hello.txt", Some("repod_nope"))
            .problem(401)
            .contains("unknown")
    );
}

/// A response read off the wire, headers and body as sent.
#[derive(Debug)]
struct Raw {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Raw {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn etag(&self) -> String {
        self.header("etag")
            .unwrap_or_else(|| panic!("no ETag: {self:?}"))
            .to_owned()
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The media type, without parameters.
    fn media_type(&self) -> String {
        let value = self.header("content-type").unwrap_or("");
        value.split(';').next().unwrap().trim().to_owned()
    }
}

/// Sends `method target` exactly as written, with `headers`, and reads the
/// whole response (the connection is closed after it).
fn request(daemon: &Daemon, method: &str, target: &str, headers: &[(&str, &str)]) -> Raw {
    let addr = daemon.url.trim_start_matches("http://");
    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(std::time::Duration::from_secs(10)))
        .unwrap();
    let mut head = format!("{method} {target} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes()).unwrap();
    let mut response = Vec::new();
    stream.read_to_end(&mut response).unwrap();
    let split = response
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or_else(|| panic!("no header end: {response:?}"));
    let head = String::from_utf8(response[..split].to_vec()).unwrap();
    let mut lines = head.split("\r\n");
    let status = lines.next().unwrap().split_whitespace().nth(1).unwrap();
    let headers: Vec<(String, String)> = lines
        .map(|l| {
            let (n, v) = l.split_once(':').unwrap();
            (n.trim().to_owned(), v.trim().to_owned())
        })
        .collect();
    let mut raw = Raw {
        status: status.parse().unwrap(),
        headers,
        body: response[split + 4..].to_vec(),
    };
    if raw
        .header("transfer-encoding")
        .is_some_and(|t| t.eq_ignore_ascii_case("chunked"))
    {
        raw.body = dechunk(&raw.body);
    }
    raw
}

fn dechunk(mut body: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let line = body.windows(2).position(|w| w == b"\r\n").unwrap();
        let size = std::str::from_utf8(&body[..line]).unwrap();
        let size = usize::from_str_radix(size.split(';').next().unwrap().trim(), 16).unwrap();
        body = &body[line + 2..];
        if size == 0 {
            return out;
        }
        out.extend_from_slice(&body[..size]);
        body = &body[size + 2..];
    }
}

fn get(daemon: &Daemon, target: &str, headers: &[(&str, &str)]) -> Raw {
    request(daemon, "GET", target, headers)
}

/// Writes `bytes` at `rel` under the served tree, creating directories.
fn put(daemon: &Daemon, rel: &str, bytes: &[u8]) {
    let path = daemon.data.path().join("repos").join(rel);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(&path, bytes).unwrap();
    age(&path, 10);
}

/// Replaces `rel` as the publisher does: a new file beside it, renamed over.
fn replace(daemon: &Daemon, rel: &str, bytes: &[u8]) {
    let path = daemon.data.path().join("repos").join(rel);
    let tmp = path.with_extension("new");
    std::fs::write(&tmp, bytes).unwrap();
    age(&tmp, 5);
    std::fs::rename(&tmp, &path).unwrap();
}

#[test]
fn files_carry_validators_and_answer_conditional_requests() {
    let daemon = Daemon::builder().filesystem().start();
    place(&daemon);
    let url = "/repos/dists/hello.txt";
    let first = get(&daemon, url, &[]);
    assert_eq!((first.status, first.text().as_str()), (200, "hello\n"));
    let etag = first.etag();
    assert!(
        etag.len() > 2 && etag.starts_with('"') && etag.ends_with('"'),
        "a strong, quoted ETag: {etag}"
    );
    let modified = first
        .header("last-modified")
        .expect("Last-Modified")
        .to_owned();
    assert!(modified.ends_with(" GMT"), "{modified}");
    assert_eq!(get(&daemon, url, &[]).etag(), etag, "ETag is stable");

    let weak = format!("W/{etag}");
    let list = format!("\"other\", {etag}");
    let not_modified: [&[(&str, &str)]; 5] = [
        &[("If-None-Match", &etag)],
        &[("If-None-Match", &list)],
        // If-None-Match compares weakly.
        &[("If-None-Match", &weak)],
        &[("If-None-Match", "*")],
        &[("If-Modified-Since", &modified)],
    ];
    for headers in not_modified {
        let got = get(&daemon, url, headers);
        assert_eq!(got.status, 304, "{headers:?}: {got:?}");
        assert!(got.body.is_empty(), "304 has no body: {got:?}");
        assert_eq!(got.etag(), etag, "{headers:?}");
    }

    let long_ago = "Sun, 06 Nov 1994 08:49:37 GMT";
    let full: [&[(&str, &str)]; 6] = [
        &[("If-None-Match", "\"other\"")],
        &[("If-Modified-Since", long_ago)],
        // If-None-Match wins over If-Modified-Since (RFC 9110 §13.2.2).
        &[
            ("If-None-Match", "\"other\""),
            ("If-Modified-Since", &modified),
        ],
        &[("If-Match", &etag)],
        &[("If-Match", "*")],
        &[("If-Unmodified-Since", &modified)],
    ];
    for headers in full {
        let got = get(&daemon, url, headers);
        assert_eq!(
            (got.status, got.text().as_str()),
            (200, "hello\n"),
            "{headers:?}"
        );
    }

    let failed: [&[(&str, &str)]; 4] = [
        &[("If-Match", "\"other\"")],
        // If-Match compares strongly.
        &[("If-Match", &weak)],
        &[("If-Unmodified-Since", long_ago)],
        // If-Match wins over If-Unmodified-Since, both ways.
        &[
            ("If-Match", "\"other\""),
            ("If-Unmodified-Since", &modified),
        ],
    ];
    for headers in failed {
        let got = get(&daemon, url, headers);
        assert_eq!(got.status, 412, "{headers:?}: {got:?}");
        assert!(!got.text().contains("hello"), "{headers:?}: {got:?}");
    }
    let got = get(
        &daemon,
        url,
        &[("If-Match", &etag), ("If-Unmodified-Since", long_ago)],
    );
    assert_eq!(
        got.status, 200,
        "If-Match holds, If-Unmodified-Since is not looked at"
    );
}

#[test]
fn a_file_younger_than_a_second_has_no_date_to_revalidate_with() {
    // Dates have one-second resolution. A file replaced within the second
    // its first version was served in would keep the same date, and a
    // client revalidating with If-Modified-Since would keep the old copy.
    // So a file younger than a second is served without Last-Modified.
    let daemon = Daemon::builder().filesystem().start();
    let path = daemon.data.path().join("repos/dists/young.txt");
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(&path, b"new\n").unwrap();
    let url = "/repos/dists/young.txt";
    let got = get(&daemon, url, &[]);
    assert_eq!(got.status, 200);
    assert_eq!(got.header("last-modified"), None, "{got:?}");
    assert!(got.header("etag").is_some(), "{got:?}");
    // Any date the client holds then predates the file: never a 304.
    let now = httpdate::fmt_http_date(std::time::SystemTime::now());
    assert_eq!(
        get(&daemon, url, &[("If-Modified-Since", &now)]).status,
        200
    );
    // Once settled, the date is sent and honoured.
    age(&path, 3);
    let date = get(&daemon, url, &[])
        .header("last-modified")
        .expect("Last-Modified")
        .to_owned();
    assert_eq!(
        get(&daemon, url, &[("If-Modified-Since", &date)]).status,
        304
    );
}

#[test]
fn a_file_replaced_by_rename_gets_a_new_etag() {
    let daemon = Daemon::builder().filesystem().start();
    place(&daemon);
    let url = "/repos/dists/hello.txt";
    let old = get(&daemon, url, &[]).etag();
    // Same size, so only the file's identity and time can tell them apart.
    replace(&daemon, "dists/hello.txt", b"HELLO\n");

    let got = get(&daemon, url, &[("If-None-Match", &old)]);
    assert_eq!((got.status, got.text().as_str()), (200, "HELLO\n"));
    let new = got.etag();
    assert_ne!(new, old);
    assert_eq!(get(&daemon, url, &[("If-None-Match", &new)]).status, 304);
    // A resumed download of the old file must not be glued to the new one.
    let got = get(&daemon, url, &[("Range", "bytes=2-"), ("If-Range", &old)]);
    assert_eq!((got.status, got.text().as_str()), (200, "HELLO\n"));
}

#[test]
fn byte_ranges() {
    let daemon = Daemon::builder().filesystem().start();
    let small = b"0123456789abcdefghij";
    put(&daemon, "pool/small.bin", small);
    let big: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
    put(&daemon, "pool/big.bin", &big);

    let url = "/repos/pool/small.bin";
    for (range, bytes, content_range) in [
        ("bytes=2-5", &small[2..6], "bytes 2-5/20"),
        ("bytes=-3", &small[17..], "bytes 17-19/20"),
        ("bytes=15-", &small[15..], "bytes 15-19/20"),
        ("bytes=10-100", &small[10..], "bytes 10-19/20"),
        ("bytes=0-0", &small[..1], "bytes 0-0/20"),
    ] {
        let got = get(&daemon, url, &[("Range", range)]);
        assert_eq!(got.status, 206, "{range}: {got:?}");
        assert_eq!(got.body, bytes, "{range}");
        assert_eq!(got.header("content-range"), Some(content_range), "{range}");
        assert_eq!(
            got.header("content-length"),
            Some(bytes.len().to_string().as_str()),
            "{range}"
        );
        assert!(got.header("etag").is_some(), "{range}: {got:?}");
    }
    for range in ["bytes=20-", "bytes=1000-2000", "bytes=-0"] {
        let got = get(&daemon, url, &[("Range", range)]);
        assert_eq!(got.status, 416, "{range}: {got:?}");
        assert_eq!(got.header("content-range"), Some("bytes */20"), "{range}");
        assert!(!got.text().contains("0123"), "{range}: {got:?}");
    }

    let first = get(&daemon, url, &[]);
    assert_eq!(first.header("accept-ranges"), Some("bytes"));
    let etag = first.etag();
    let modified = first.header("last-modified").unwrap().to_owned();
    for validator in [etag.as_str(), modified.as_str()] {
        let got = get(
            &daemon,
            url,
            &[("Range", "bytes=4-7"), ("If-Range", validator)],
        );
        assert_eq!(
            (got.status, got.body.as_slice()),
            (206, &small[4..8]),
            "{validator}"
        );
    }
    for stale in ["\"stale\"", "Sun, 06 Nov 1994 08:49:37 GMT"] {
        let got = get(&daemon, url, &[("Range", "bytes=4-7"), ("If-Range", stale)]);
        assert_eq!(
            (got.status, got.body.as_slice()),
            (200, &small[..]),
            "{stale}"
        );
    }

    // Past the first read buffer: the seek and the length limit are right.
    let url = "/repos/pool/big.bin";
    let got = get(&daemon, url, &[("Range", "bytes=200000-200009")]);
    assert_eq!(
        (got.status, got.body.as_slice()),
        (206, &big[200_000..200_010])
    );
    let got = get(&daemon, url, &[("Range", "bytes=70000-")]);
    assert_eq!((got.status, got.body.as_slice()), (206, &big[70_000..]));
    let got = get(&daemon, url, &[]);
    assert_eq!(got.status, 200);
    assert!(got.body == big, "whole file, {} bytes", got.body.len());
}

#[test]
fn head_has_the_headers_and_no_body() {
    let daemon = Daemon::builder().filesystem().start();
    place(&daemon);
    let url = "/repos/dists/hello.txt";
    let etag = get(&daemon, url, &[]).etag();
    let got = request(&daemon, "HEAD", url, &[]);
    assert_eq!(got.status, 200, "{got:?}");
    assert!(got.body.is_empty(), "{got:?}");
    assert_eq!(got.header("content-length"), Some("6"));
    assert_eq!(got.etag(), etag);
    assert!(got.header("last-modified").is_some(), "{got:?}");
    assert_eq!(got.header("accept-ranges"), Some("bytes"));
    assert!(got.header("content-type").is_some(), "{got:?}");
    let got = request(&daemon, "HEAD", url, &[("If-None-Match", &etag)]);
    assert_eq!((got.status, got.body.len()), (304, 0), "{got:?}");
    assert_eq!(
        request(&daemon, "HEAD", "/repos/dists/nope", &[]).status,
        404
    );

    for method in ["POST", "PUT", "DELETE"] {
        let got = request(&daemon, method, url, &[("Content-Length", "0")]);
        assert_eq!(got.status, 405, "{method}: {got:?}");
    }
    assert_eq!(
        std::fs::read(daemon.data.path().join("repos/dists/hello.txt")).unwrap(),
        b"hello\n"
    );
}

#[test]
fn content_types_follow_the_file_names() {
    let daemon = Daemon::builder().filesystem().start();
    let hash = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";
    let cases = [
        ("dists/jammy/InRelease", "text/plain"),
        ("dists/jammy/Release", "text/plain"),
        ("dists/jammy/Release.gpg", "application/pgp-signature"),
        ("dists/jammy/main/binary-amd64/Packages", "text/plain"),
        (
            "dists/jammy/main/binary-amd64/Packages.gz",
            "application/gzip",
        ),
        (
            "dists/jammy/main/binary-amd64/Packages.xz",
            "application/x-xz",
        ),
        (
            "dists/jammy/main/binary-amd64/Packages.bz2",
            "application/x-bzip2",
        ),
        (
            "dists/jammy/main/binary-amd64/Packages.zst",
            "application/zstd",
        ),
        ("dists/jammy/main/Contents-amd64", "text/plain"),
        ("dists/jammy/main/Contents-amd64.gz", "application/gzip"),
        ("dists/jammy/main/source/Sources", "text/plain"),
        (
            &format!("dists/jammy/main/binary-amd64/by-hash/SHA256/{hash}"),
            "application/octet-stream",
        ),
        (
            "pool/main/h/hello/hello_1.0-1_amd64.deb",
            "application/vnd.debian.binary-package",
        ),
        ("jammy.sources", "text/plain"),
        ("el9/x86_64/repodata/repomd.xml", "application/xml"),
        (
            "el9/x86_64/repodata/repomd.xml.asc",
            "application/pgp-signature",
        ),
        ("el9/x86_64/repodata/repomd.xml.key", "application/pgp-keys"),
        (
            "el9/x86_64/repodata/0a1b-primary.xml.zst",
            "application/zstd",
        ),
        (
            "el9/x86_64/repodata/0a1b-primary.xml.gz",
            "application/gzip",
        ),
        (
            "el9/x86_64/Packages/h/hello-1.0-1.el9.x86_64.rpm",
            "application/x-rpm",
        ),
        ("el9.repo", "text/plain"),
        ("keys/extra.asc", "application/pgp-keys"),
        ("misc/notes.bin", "application/octet-stream"),
        // Extensionless files outside by-hash are text (index files).
        ("misc/README", "text/plain"),
    ];
    for (rel, _) in &cases {
        put(&daemon, rel, b"x");
    }
    // The signing key the daemon wrote itself.
    let cases = cases.iter().map(|(r, t)| (r.to_string(), *t)).chain([
        ("keys/repod.asc".to_owned(), "application/pgp-keys"),
        ("keys/repod.gpg".to_owned(), "application/pgp-keys"),
    ]);
    for (rel, media_type) in cases {
        let got = get(&daemon, &format!("/repos/{rel}"), &[]);
        assert_eq!(got.status, 200, "{rel}: {got:?}");
        assert_eq!(got.media_type(), media_type, "{rel}");
    }
}

#[test]
fn symlinks_are_followed_only_inside_the_tree() {
    use std::os::unix::fs::symlink;
    let daemon = Daemon::builder().filesystem().start();
    place(&daemon);
    put(&daemon, "dists/jammy/Release", b"Suite: jammy\n");
    let repos = daemon.data.path().join("repos");
    let link = |target: &str, at: &str| symlink(target, repos.join(at)).unwrap();
    link("hello.txt", "dists/alias.txt");
    link("jammy", "dists/current");
    link("../../dists/hello.txt", "dists/jammy/up-and-back.txt");
    let inside = [
        ("/repos/dists/alias.txt", "hello\n"),
        ("/repos/dists/current/Release", "Suite: jammy\n"),
        ("/repos/dists/jammy/up-and-back.txt", "hello\n"),
    ];
    for (url, text) in inside {
        let got = get(&daemon, url, &[]);
        assert_eq!((got.status, got.text().as_str()), (200, text), "{url}");
    }

    let passwd = std::fs::read("/etc/passwd").unwrap();
    let db = std::fs::read(daemon.data.path().join("keys/signing.key")).unwrap();
    link("/etc/passwd", "dists/passwd");
    link("/etc", "dists/etc");
    link("../../keys/signing.key", "dists/db");
    link("../..", "dists/up");
    let absolute_data = daemon.data.path().join("keys/signing.key");
    link(absolute_data.to_str().unwrap(), "dists/db-absolute");
    for url in [
        "/repos/dists/passwd",
        "/repos/dists/etc/passwd",
        "/repos/dists/db",
        "/repos/dists/up/keys/signing.key",
        "/repos/dists/db-absolute",
    ] {
        let got = get(&daemon, url, &[]);
        assert!(matches!(got.status, 400 | 404), "{url}: {got:?}");
        assert!(!leaks(&got.body, &passwd), "{url} leaked /etc/passwd");
        assert!(!leaks(&got.body, &db), "{url} leaked the signing key");
    }
}

/// Whether `body` holds the first 16 bytes of `secret`.
fn leaks(body: &[u8], secret: &[u8]) -> bool {
    let probe = &secret[..secret.len().min(16)];
    body.windows(probe.len()).any(|w| w == probe)
}

#[test]
fn directories_are_not_listed() {
    let daemon = Daemon::builder().filesystem().start();
    place(&daemon);
    put(&daemon, "dists/jammy/Release", b"Suite: jammy\n");
    for url in [
        "/repos",
        "/repos/",
        "/repos/dists",
        "/repos/dists/",
        "/repos/dists/jammy",
        "/repos/dists/jammy/",
        "/repos/keys/",
    ] {
        let got = get(&daemon, url, &[]);
        assert!(matches!(got.status, 400 | 404), "{url}: {got:?}");
        let text = got.text();
        for name in ["hello.txt", "Release", "jammy", "repod.asc"] {
            assert!(!text.contains(name), "{url} listed {name}: {text}");
        }
    }
}

#[test]
fn with_a_token_required_conditionals_do_not_bypass_it() {
    let daemon = Daemon::builder()
        .filesystem()
        .config("repos-require-token = true\n")
        .start();
    place(&daemon);
    let reader = daemon.token("reader", "apt-client");
    let bearer = format!("Bearer {reader}");
    let url = "/repos/dists/hello.txt";
    let got = get(&daemon, url, &[("Authorization", &bearer)]);
    assert_eq!(got.status, 200);
    let etag = got.etag();
    for headers in [
        &[("If-None-Match", etag.as_str())][..],
        &[("If-None-Match", "*")],
        &[("Range", "bytes=0-1")],
    ] {
        let got = get(&daemon, url, headers);
        assert_eq!(got.status, 401, "{headers:?}: {got:?}");
        assert_eq!(request(&daemon, "HEAD", url, headers).status, 401);
    }
    let got = get(
        &daemon,
        url,
        &[("Authorization", &bearer), ("If-None-Match", &etag)],
    );
    assert_eq!(got.status, 304);
}
