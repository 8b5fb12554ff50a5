//! Advisories in: the real OSV records of `testdata/advisories` imported
//! over HTTP and with the CLI, one by one, as an array and as an OSV
//! `all.zip`; found by id, alias, ecosystem and package; bad input refused
//! with nothing stored.

use std::io::Write;
use std::path::PathBuf;
use std::process::Command;

use repod_tests::{Daemon, repod_bin};
use serde_json::{Value, json};

/// Every real record file, by name.
fn record_files() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(repod_tests::advisories_dir())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    files.sort();
    files
}

fn zip_of(entries: &[(String, Vec<u8>)]) -> Vec<u8> {
    let mut writer = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let options = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated);
    for (name, bytes) in entries {
        writer.start_file(name.as_str(), options).unwrap();
        writer.write_all(bytes).unwrap();
    }
    writer.finish().unwrap().into_inner()
}

fn import(daemon: &Daemon, bytes: Vec<u8>) -> repod_tests::Reply {
    daemon.post_bytes("/api/v1/advisories", Some(&daemon.admin), bytes)
}

fn ids(reply: &repod_tests::Reply) -> Vec<String> {
    reply.body["advisories"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["id"].as_str().unwrap().to_owned())
        .collect()
}

fn all_ids(daemon: &Daemon) -> Vec<String> {
    ids(&daemon.get("/api/v1/advisories?limit=1000", Some(&daemon.admin)))
}

#[test]
fn real_records_import_and_are_found_by_id_alias_ecosystem_and_package() {
    let daemon = Daemon::start();
    let files = record_files();
    assert!(files.len() >= 30, "{files:?}");
    // One all.zip of every record, as osv.dev ships them.
    let entries: Vec<(String, Vec<u8>)> = files
        .iter()
        .map(|f| {
            (
                f.file_name().unwrap().to_string_lossy().into_owned(),
                std::fs::read(f).unwrap(),
            )
        })
        .collect();
    let reply = import(&daemon, zip_of(&entries));
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(reply.body["added"], files.len(), "{}", reply.body);
    assert_eq!(reply.body["rejected"], 0, "{}", reply.body);
    assert_eq!(all_ids(&daemon).len(), files.len());

    let reader = daemon.token("reader", "r");
    // By id, in full, on one severity scale.
    let tar = daemon.get("/api/v1/advisories/ALSA-2023:0959", Some(&reader));
    assert_eq!(tar.status, 200, "{}", tar.body);
    assert_eq!(
        tar.body["severity"], "medium",
        "Moderate: on Red Hat's scale"
    );
    assert_eq!(tar.body["severity_source"], "summary_prefix");
    assert_eq!(tar.body["aliases"], json!(["CVE-2022-48303"]));
    assert_eq!(
        tar.body["packages"],
        json!([{"ecosystem": "AlmaLinux:9", "name": "tar"}])
    );
    assert_eq!(tar.body["record"]["id"], "ALSA-2023:0959");
    let curl = daemon.get("/api/v1/advisories/USN-6429-1", Some(&reader));
    assert_eq!(curl.body["severity"], "critical", "{}", curl.body);
    assert_eq!(curl.body["cvss_score"], 9.8);
    // By an alias only one record lists...
    let by_cve = daemon.get("/api/v1/advisories/CVE-2022-48303", Some(&reader));
    assert_eq!(by_cve.body["id"], "ALSA-2023:0959", "{}", by_cve.body);
    // ...and one several list: they are named, and the list has them all.
    let detail = daemon
        .get("/api/v1/advisories/CVE-2023-38545", Some(&reader))
        .problem(300);
    assert!(detail.contains("ALSA-2023:5763"), "{detail}");
    let listed = daemon.get("/api/v1/advisories?id=CVE-2023-38545", Some(&reader));
    assert!(
        ids(&listed).contains(&"ALSA-2023:5763".to_owned()),
        "{}",
        listed.body
    );
    assert!(ids(&listed).len() >= 2, "{}", listed.body);
    // By ecosystem and package name (Ubuntu records name source packages).
    let listed = daemon.get(
        "/api/v1/advisories?ecosystem=Ubuntu:22.04:LTS&package=curl",
        Some(&reader),
    );
    let found = ids(&listed);
    assert!(found.contains(&"USN-6429-1".to_owned()), "{found:?}");
    assert!(
        found
            .iter()
            .all(|id| id.contains("CVE-2023-38545") || id.starts_with("USN"))
    );
    let listed = daemon.get(
        "/api/v1/advisories?ecosystem=AlmaLinux:9&package=tar",
        Some(&reader),
    );
    assert_eq!(ids(&listed), ["ALSA-2023:0959"]);
    // Paging by id.
    let page = daemon.get("/api/v1/advisories?limit=5", Some(&reader));
    let first = ids(&page);
    assert_eq!(first.len(), 5);
    let next = page.body["next"].as_str().unwrap();
    let page2 = daemon.get(
        &format!("/api/v1/advisories?limit=5&after={next}"),
        Some(&reader),
    );
    assert!(ids(&page2)[0] > first[4]);
    daemon
        .get("/api/v1/advisories?limit=0", Some(&reader))
        .problem(400);
    daemon
        .get("/api/v1/advisories/NOPE-1", Some(&reader))
        .problem(404);

    // The same file again changes nothing.
    let again = import(&daemon, zip_of(&entries));
    assert_eq!(
        (
            again.body["added"].clone(),
            again.body["updated"].clone(),
            again.body["unchanged"].clone()
        ),
        (json!(0), json!(0), json!(files.len()))
    );
    // A later revision replaces a record; an earlier one does not.
    let mut later: Value =
        serde_json::from_slice(&repod_tests::advisory_record("ALSA-2023_0959.json")).unwrap();
    later["modified"] = json!("2030-01-01T00:00:00Z");
    later["summary"] = json!("Important: tar security update");
    let reply = import(&daemon, later.to_string().into_bytes());
    assert_eq!(reply.body["updated"], 1, "{}", reply.body);
    let tar = daemon.get("/api/v1/advisories/ALSA-2023:0959", Some(&reader));
    assert_eq!(tar.body["severity"], "high");
    let reply = import(&daemon, repod_tests::advisory_record("ALSA-2023_0959.json"));
    assert_eq!(reply.body["unchanged"], 1, "{}", reply.body);
    let tar = daemon.get("/api/v1/advisories/ALSA-2023:0959", Some(&reader));
    assert_eq!(tar.body["modified"], "2030-01-01T00:00:00Z");

    // The history and the audit log have every import.
    let history = daemon.get("/api/v1/advisories/imports", Some(&reader));
    assert_eq!(history.body["imports"].as_array().unwrap().len(), 4);
    let audit = daemon.get("/api/v1/audit", Some(&daemon.admin));
    let imports = audit.body["entries"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["action"] == "advisories.import" && e["actor"] == "admin")
        .count();
    assert_eq!(imports, 4);
}

#[test]
fn bad_advisory_input_is_refused_and_changes_nothing() {
    let daemon = Daemon::start();
    let reply = import(&daemon, repod_tests::advisory_record("ALSA-2023_0959.json"));
    assert_eq!(reply.status, 200, "{}", reply.body);
    let before = all_ids(&daemon);

    let refused = |bytes: Vec<u8>, expect: &str| {
        let detail = import(&daemon, bytes).problem(400);
        assert!(detail.contains(expect), "{expect:?} not in: {detail}");
        assert!(detail.contains("nothing was imported"), "{detail}");
        assert_eq!(all_ids(&daemon), before);
    };
    refused(b"not json at all".to_vec(), "expected an OSV record");
    refused(b"{\"id\": \"X-1\",".to_vec(), "not valid JSON");
    // The wrong schema: no `modified`, an event with two kinds.
    refused(
        br#"{"id": "X-2", "summary": "no modified"}"#.to_vec(),
        "no record in the file is usable",
    );
    refused(
        br#"{"id": "X-3", "modified": "2024-01-01T00:00:00Z", "affected": [{"package": {"ecosystem": "Debian:12", "name": "x"}, "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0", "fixed": "1"}]}]}]}"#.to_vec(),
        "X-3",
    );
    // An ecosystem OSV does not define (a typo would never match).
    refused(
        br#"{"id": "X-4", "modified": "2024-01-01T00:00:00Z", "affected": [{"package": {"ecosystem": "Debain:12", "name": "x"}, "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}]}]}]}"#.to_vec(),
        "unknown ecosystem \"Debain:12\"",
    );
    // A huge record (over 4 MiB).
    let huge = format!(
        r#"{{"id": "X-5", "modified": "2024-01-01T00:00:00Z", "details": "{}"}}"#,
        "a".repeat(5 << 20)
    );
    refused(huge.into_bytes(), "over the limit of 4194304 bytes");
    // A zip bomb: one entry that inflates a thousandfold.
    let bomb = zip_of(&[("bomb.json".to_owned(), vec![b' '; 50 << 20])]);
    assert!(bomb.len() < 1 << 20);
    refused(bomb, "bomb.json");
    daemon
        .post_bytes("/api/v1/advisories", Some(&daemon.admin), vec![])
        .problem(400);

    // One bad record in an array: named, the rest imported.
    let mut ubuntu: Value =
        serde_json::from_slice(&repod_tests::advisory_record("USN-6409-1.json")).unwrap();
    ubuntu["modified"] = json!("yesterday");
    let array = json!([
        serde_json::from_slice::<Value>(&repod_tests::advisory_record("DLA-3008-1.json")).unwrap(),
        ubuntu
    ]);
    let reply = import(&daemon, array.to_string().into_bytes());
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(reply.body["added"], 1);
    assert_eq!(reply.body["rejected"], 1);
    assert_eq!(reply.body["rejections"][0]["id"], "USN-6409-1");
    assert!(
        reply.body["rejections"][0]["reason"]
            .as_str()
            .unwrap()
            .contains("modified"),
        "{}",
        reply.body
    );
    assert_eq!(all_ids(&daemon), ["ALSA-2023:0959", "DLA-3008-1"]);
    // Failed imports are in the history with why.
    let history = daemon.get("/api/v1/advisories/imports?limit=100", Some(&daemon.admin));
    let failed = history.body["imports"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|i| !i["error"].is_null())
        .count();
    assert_eq!(failed, 7, "{}", history.body);
}

#[test]
fn the_cli_imports_files_and_fails_when_one_is_refused() {
    let daemon = Daemon::start();
    let files = [
        repod_tests::advisories_dir().join("ALSA-2024_4312.json"),
        repod_tests::advisories_dir().join("USN-6859-1.json"),
    ];
    let run = |args: &[&std::ffi::OsStr], token: &str| {
        Command::new(repod_bin())
            .arg("advisories")
            .arg("import")
            .args(args)
            .args(["--url", &daemon.url, "--token", token])
            .output()
            .unwrap()
    };
    let out = run(&[files[0].as_os_str(), files[1].as_os_str()], &daemon.admin);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        stdout
            .matches("1 added, 0 updated, 0 unchanged, 0 rejected")
            .count(),
        2,
        "{stdout}"
    );
    assert_eq!(all_ids(&daemon), ["ALSA-2024:4312", "USN-6859-1"]);

    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.json");
    std::fs::write(&bad, "[1, 2]").unwrap();
    let out = run(&[bad.as_os_str()], &daemon.admin);
    assert_eq!(out.status.code(), Some(3));
    assert!(String::from_utf8_lossy(&out.stderr).contains("bad.json"));
    // Admin only.
    let maintainer = daemon.token("maintainer", "m");
    let out = run(&[files[0].as_os_str()], &maintainer);
    assert_eq!(out.status.code(), Some(3));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("403"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A tiny HTTP server on loopback serving `body` at `/osv/all.zip` with
/// `etag`, answering 304 to a matching `If-None-Match`, 404 elsewhere.
/// Returns its base URL; `seen` collects each request's path and whether
/// it was conditional.
struct Feed {
    url: String,
    content: std::sync::Arc<std::sync::Mutex<(Vec<u8>, String)>>,
    seen: std::sync::Arc<std::sync::Mutex<Vec<(String, bool)>>>,
}

fn feed_server(body: Vec<u8>, etag: &str) -> Feed {
    use std::io::{BufRead, BufReader};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let content = std::sync::Arc::new(std::sync::Mutex::new((body, etag.to_owned())));
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let (c, s) = (content.clone(), seen.clone());
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut line = String::new();
            reader.read_line(&mut line).unwrap();
            let path = line.split_whitespace().nth(1).unwrap_or("").to_owned();
            let mut if_none_match = None;
            loop {
                let mut header = String::new();
                reader.read_line(&mut header).unwrap();
                if header.trim().is_empty() {
                    break;
                }
                if let Some((k, v)) = header.split_once(':')
                    && k.eq_ignore_ascii_case("if-none-match")
                {
                    if_none_match = Some(v.trim().to_owned());
                }
            }
            s.lock()
                .unwrap()
                .push((path.clone(), if_none_match.is_some()));
            let (body, etag) = c.lock().unwrap().clone();
            let head = |status: &str, len: usize| {
                format!(
                    "HTTP/1.1 {status}\r\nETag: {etag}\r\nContent-Length: {len}\r\nConnection: close\r\n\r\n"
                )
            };
            let reply = if path != "/osv/all.zip" {
                head("404 Not Found", 0).into_bytes()
            } else if if_none_match.as_deref() == Some(etag.as_str()) {
                head("304 Not Modified", 0).into_bytes()
            } else {
                let mut r = head("200 OK", body.len()).into_bytes();
                r.extend_from_slice(&body);
                r
            };
            let _ = stream.write_all(&reply);
        }
    });
    Feed { url, content, seen }
}

#[test]
fn feeds_sync_conditionally_and_keep_the_last_good_data() {
    let names = [
        "ALSA-2023_0959.json",
        "ALSA-2023_2523.json",
        "USN-6429-1.json",
    ];
    let zip = zip_of(
        &names
            .iter()
            .map(|n| (n.to_string(), repod_tests::advisory_record(n)))
            .collect::<Vec<_>>(),
    );
    let feed = feed_server(zip, "\"v1\"");
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("DLA-3008-1.json"),
        repod_tests::advisory_record("DLA-3008-1.json"),
    )
    .unwrap();
    let sources = [
        format!("{}/osv/all.zip", feed.url),
        dir.path().display().to_string(),
        format!("{}/missing.zip", feed.url),
    ];
    let daemon = Daemon::builder()
        .config(&format!(
            "[advisories]\nfeeds = [\"{}\", \"{}\", \"{}\"]\nsync-every-minutes = 0\n",
            sources[0], sources[1], sources[2]
        ))
        .start();
    let sync = || {
        let reply = daemon.post_json("/api/v1/advisories/sync", Some(&daemon.admin), json!({}));
        assert_eq!(reply.status, 200, "{}", reply.body);
        reply.body["feeds"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f["status"].as_str().unwrap().to_owned())
            .collect::<Vec<_>>()
    };
    let reader = daemon.token("reader", "r");
    daemon
        .post_json("/api/v1/advisories/sync", Some(&reader), json!({}))
        .problem(403);

    assert_eq!(sync(), ["ok", "ok", "failed"]);
    assert_eq!(
        all_ids(&daemon),
        [
            "ALSA-2023:0959",
            "ALSA-2023:2523",
            "DLA-3008-1",
            "USN-6429-1"
        ]
    );
    // Nothing changed: a conditional request answered 304, and the
    // directory's files are as they were.
    assert_eq!(sync(), ["unchanged", "unchanged", "failed"]);
    let seen = feed.seen.lock().unwrap().clone();
    let zip_requests: Vec<bool> = seen
        .iter()
        .filter(|(p, _)| p == "/osv/all.zip")
        .map(|(_, conditional)| *conditional)
        .collect();
    assert_eq!(zip_requests, [false, true]);

    // The feed breaks: the last good data stays, and the failure is shown.
    *feed.content.lock().unwrap() = (b"<html>maintenance</html>".to_vec(), "\"v2\"".to_owned());
    assert_eq!(sync()[0], "failed");
    assert_eq!(all_ids(&daemon).len(), 4);
    let feeds = daemon.get("/api/v1/advisories/feeds", Some(&reader));
    assert_eq!(feeds.status, 200, "{}", feeds.body);
    let zip_state = feeds.body["states"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["source"] == sources[0].as_str())
        .unwrap()
        .clone();
    assert_eq!(zip_state["status"], "failed");
    assert!(
        zip_state["error"]
            .as_str()
            .unwrap()
            .contains("expected an OSV record")
    );
    assert_eq!(
        zip_state["etag"], "\"v1\"",
        "the last good sync's validator stays"
    );
    let missing = feeds.body["states"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["source"] == sources[2].as_str())
        .unwrap()
        .clone();
    assert!(
        missing["error"].as_str().unwrap().contains("404"),
        "{missing}"
    );
    // The history has every attempt, failures with why.
    let history = daemon.get("/api/v1/advisories/imports?limit=100", Some(&reader));
    let failed = history.body["imports"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|i| !i["error"].is_null())
        .count();
    assert_eq!(failed, 4, "{}", history.body);
    let audit = daemon.get("/api/v1/audit", Some(&daemon.admin));
    let syncs = audit.body["entries"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["action"] == "advisories.sync")
        .count();
    assert_eq!(syncs, 3);

    // With no feeds configured, a sync is refused with what to do.
    let plain = Daemon::start();
    let detail = plain
        .post_json("/api/v1/advisories/sync", Some(&plain.admin), json!({}))
        .problem(409);
    assert!(detail.contains("[advisories] feeds"), "{detail}");
}

#[test]
fn a_scheduled_feed_is_synced_at_start() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("USN-6429-1.json"),
        repod_tests::advisory_record("USN-6429-1.json"),
    )
    .unwrap();
    let daemon = Daemon::builder()
        .config(&format!(
            "[advisories]\nfeeds = [\"file://{}\"]\nsync-every-minutes = 60\n",
            dir.path().display()
        ))
        .start();
    // No sync asked for: the schedule's first run is at start.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while all_ids(&daemon).is_empty() {
        assert!(std::time::Instant::now() < deadline, "{}", daemon.log());
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert_eq!(all_ids(&daemon), ["USN-6429-1"]);
    let feeds = daemon.get("/api/v1/advisories/feeds", Some(&daemon.admin));
    assert_eq!(feeds.body["sync_every_minutes"], 60);
    assert_eq!(feeds.body["states"][0]["status"], "ok");
    assert_eq!(
        feeds.body["states"][0]["source"],
        dir.path().display().to_string()
    );
    let history = daemon.get("/api/v1/advisories/imports", Some(&daemon.admin));
    assert_eq!(history.body["imports"][0]["actor"], "feed");
}

/// `python3 -m http.server` serving `dir` on loopback; killed on drop.
struct DirServer {
    url: String,
    child: std::process::Child,
}

impl Drop for DirServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn serve_dir(dir: &std::path::Path) -> DirServer {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let child = std::process::Command::new("python3")
        .args(["-m", "http.server", "--bind", "127.0.0.1"])
        .arg(port.to_string())
        .current_dir(dir)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("python3 (scripts/setup installs it)");
    let url = format!("http://127.0.0.1:{port}/osv/");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            std::time::Instant::now() < deadline,
            "http.server did not start"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    DirServer { url, child }
}

#[test]
fn a_web_directory_of_records_is_a_feed() {
    let root = tempfile::tempdir().unwrap();
    let osv = root.path().join("osv");
    std::fs::create_dir(&osv).unwrap();
    // A name with a colon, as OSV ids have (the listing percent-encodes it).
    for (file, record) in [
        ("ALSA-2023:0959.json", "ALSA-2023_0959.json"),
        ("USN-6429-1.json", "USN-6429-1.json"),
    ] {
        std::fs::write(osv.join(file), repod_tests::advisory_record(record)).unwrap();
    }
    std::fs::write(osv.join("README.md"), "not a record").unwrap();
    let server = serve_dir(root.path());
    let daemon = Daemon::builder()
        .config(&format!(
            "[advisories]\nfeeds = [\"{}\"]\nsync-every-minutes = 0\n",
            server.url
        ))
        .start();
    let sync = || {
        let reply = daemon.post_json("/api/v1/advisories/sync", Some(&daemon.admin), json!({}));
        assert_eq!(reply.status, 200, "{}", reply.body);
        reply.body["feeds"][0].clone()
    };
    let first = sync();
    assert_eq!(first["status"], "ok", "{first}");
    assert_eq!(first["import"]["added"], 2, "{first}");
    assert_eq!(all_ids(&daemon), ["ALSA-2023:0959", "USN-6429-1"]);
    // The listing did not change: nothing fetched again.
    assert_eq!(sync()["status"], "unchanged");
    // A new record changes the listing.
    std::fs::write(
        osv.join("DLA-3008-1.json"),
        repod_tests::advisory_record("DLA-3008-1.json"),
    )
    .unwrap();
    let third = sync();
    assert_eq!(third["status"], "ok", "{third}");
    assert_eq!(third["import"]["added"], 1, "{third}");
    assert_eq!(third["import"]["unchanged"], 2, "{third}");
    // A listing that links no record fails, and keeps the data.
    for file in ["ALSA-2023:0959.json", "USN-6429-1.json", "DLA-3008-1.json"] {
        std::fs::remove_file(osv.join(file)).unwrap();
    }
    let failed = sync();
    assert_eq!(failed["status"], "failed");
    assert!(
        failed["error"]
            .as_str()
            .unwrap()
            .contains("lists no *.json record"),
        "{failed}"
    );
    assert_eq!(all_ids(&daemon).len(), 3);
}
