//! The published apt tree, checked file by file over HTTP: the Release is
//! signed by the served key and lists every index with the right size and
//! hashes, by-hash copies exist, package files are the uploaded bytes stored
//! once, changes go live by themselves within 2 s, and readers never meet
//! an index that disagrees with the Release they fetched.

use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use repod_tests::Daemon;
use repod_tests::apt::release_sha256;
use repod_tests::fixtures::small_deb;
use sha2::{Digest, Sha256};

fn sha256(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// A small deterministic .deb (same bytes every run).
fn deb(name: &str, version: &str, arch: &str, extra: &str) -> Vec<u8> {
    small_deb(name, version, arch, extra, name)
}

fn get(daemon: &Daemon, path: &str) -> (u16, Vec<u8>) {
    daemon.get_bytes(path)
}

fn fetch(daemon: &Daemon, path: &str) -> Vec<u8> {
    let (status, body) = get(daemon, path);
    assert_eq!(status, 200, "GET {path}");
    body
}

/// The Release text inside an InRelease, after gpgv checked it with the
/// served binary key.
fn verified_release(daemon: &Daemon, dist: &str, dir: &Path) -> String {
    let keyring = dir.join("repod.gpg");
    std::fs::write(&keyring, fetch(daemon, "/repos/keys/repod.gpg")).unwrap();
    let inrelease = dir.join("InRelease");
    std::fs::write(
        &inrelease,
        fetch(daemon, &format!("/repos/dists/{dist}/InRelease")),
    )
    .unwrap();
    let out = Command::new("gpgv")
        .arg("--keyring")
        .arg(&keyring)
        .arg("--output")
        .arg("-")
        .arg(&inrelease)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "gpgv: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn the_tree_is_signed_complete_and_stores_each_file_once() {
    // Pool files as hard links of blobs: the filesystem store's tree (with
    // an object store, package files are served from the blob store).
    let daemon = Daemon::builder().filesystem().start();
    let dir = tempfile::tempdir().unwrap();
    let token = daemon.token("uploader", "ci");
    let lib = deb("libhello", "1.0-1", "amd64", "");
    let data = deb("hello-data", "2.0-1", "all", "Depends: libhello (>= 1.0)\n");
    for (dist, file) in [("jammy", &lib), ("jammy", &data), ("noble", &data)] {
        let reply = daemon.upload(
            &format!("/api/v1/packages?distribution={dist}"),
            Some(&token),
            file,
        );
        assert_eq!(reply.status, 201, "{}", reply.body);
    }
    let report = daemon.publish("jammy", &token);
    assert_eq!(report["packages"], 2, "{report}");

    let release = verified_release(&daemon, "jammy", dir.path());
    for field in [
        "Origin: repod",
        "Suite: jammy",
        "Codename: jammy",
        "Acquire-By-Hash: yes",
        "Components: main",
    ] {
        assert!(
            release.contains(&format!("{field}\n")),
            "{field} missing:\n{release}"
        );
    }
    assert!(
        release.contains("\nArchitectures: amd64 arm64\n"),
        "{release}"
    );
    let listed = release_sha256(&release);
    for name in [
        "main/binary-amd64/Packages",
        "main/binary-amd64/Packages.gz",
        "main/binary-amd64/Packages.xz",
        "main/binary-arm64/Packages.xz",
        "main/Contents-amd64",
        "main/Contents-amd64.gz",
    ] {
        assert!(
            listed.contains_key(name),
            "{name} not in Release:\n{release}"
        );
    }
    // Every listed file that exists matches; its by-hash copy does too.
    let mut checked = 0;
    for (name, (size, hex)) in &listed {
        let (status, body) = get(&daemon, &format!("/repos/dists/jammy/{name}"));
        if name.ends_with("Contents-amd64") || name.ends_with("Contents-arm64") {
            assert_eq!(status, 404, "Contents are published compressed only");
            continue;
        }
        assert_eq!(status, 200, "{name}");
        assert_eq!(
            (body.len() as u64, sha256(&body)),
            (*size, hex.clone()),
            "{name}"
        );
        let dir_of = name.rsplit_once('/').unwrap().0;
        let by_hash = fetch(
            &daemon,
            &format!("/repos/dists/jammy/{dir_of}/by-hash/SHA256/{hex}"),
        );
        assert_eq!(sha256(&by_hash), *hex, "by-hash of {name}");
        checked += 1;
    }
    assert!(checked >= 8, "{checked}");

    // The all package is in both architectures; the amd64 one only in amd64.
    let amd64 = String::from_utf8(fetch(
        &daemon,
        "/repos/dists/jammy/main/binary-amd64/Packages",
    ))
    .unwrap();
    let arm64 = String::from_utf8(fetch(
        &daemon,
        "/repos/dists/jammy/main/binary-arm64/Packages",
    ))
    .unwrap();
    assert!(
        amd64.contains("Package: libhello\n") && amd64.contains("Package: hello-data\n"),
        "{amd64}"
    );
    assert!(
        arm64.contains("Package: hello-data\n") && !arm64.contains("Package: libhello\n"),
        "{arm64}"
    );

    // Pool files are the uploaded bytes, and one inode with the blob.
    let pool = "pool/main/h/hello-data/hello-data_2.0-1_all.deb";
    assert!(amd64.contains(&format!("Filename: {pool}\n")), "{amd64}");
    assert_eq!(fetch(&daemon, &format!("/repos/{pool}")), data);
    let blob = daemon.data.path().join(format!(
        "blobs/sha256/{}/{}",
        &sha256(&data)[..2],
        sha256(&data)
    ));
    let on_disk = daemon.data.path().join("repos").join(pool);
    assert_eq!(
        std::fs::metadata(&blob).unwrap().ino(),
        std::fs::metadata(&on_disk).unwrap().ino()
    );
    assert_eq!(
        fetch(
            &daemon,
            "/repos/pool/main/libh/libhello/libhello_1.0-1_amd64.deb"
        ),
        lib
    );
    // noble lists the same pool file without a second copy.
    daemon.publish("noble", &token);
    let noble = String::from_utf8(fetch(
        &daemon,
        "/repos/dists/noble/main/binary-amd64/Packages",
    ))
    .unwrap();
    assert!(noble.contains(&format!("Filename: {pool}\n")), "{noble}");
    assert_eq!(
        std::fs::metadata(&on_disk).unwrap().nlink(),
        2,
        "blob + one pool link"
    );
}

#[test]
fn a_change_is_live_within_two_seconds_without_any_call() {
    let daemon = Daemon::start();
    let token = daemon.token("uploader", "ci");
    // The startup publish creates the empty tree.
    daemon.publish("bookworm", &token);
    let reply = daemon.upload(
        "/api/v1/packages?distribution=bookworm",
        Some(&token),
        &deb("auto", "1", "amd64", ""),
    );
    assert_eq!(reply.status, 201, "{}", reply.body);
    let uploaded = Instant::now();
    loop {
        let (_, body) = get(&daemon, "/repos/dists/bookworm/main/binary-amd64/Packages");
        if String::from_utf8_lossy(&body).contains("Package: auto\n") {
            break;
        }
        assert!(
            uploaded.elapsed() < Duration::from_secs(2),
            "not live after 2 s"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let id = reply.body["id"].as_str().unwrap().to_owned();
    let maintainer = daemon.token("maintainer", "m");
    assert_eq!(
        daemon
            .delete(&format!("/api/v1/packages/{id}"), Some(&maintainer))
            .status,
        204
    );
    let removed = Instant::now();
    loop {
        let (_, body) = get(&daemon, "/repos/dists/bookworm/main/binary-amd64/Packages");
        if !String::from_utf8_lossy(&body).contains("Package: auto\n") {
            break;
        }
        assert!(
            removed.elapsed() < Duration::from_secs(2),
            "still listed 2 s after removal"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    // Its pool file stays (10 minutes by default) for clients that read the
    // previous Packages.
    let (status, body) = get(&daemon, "/repos/pool/main/a/auto/auto_1_amd64.deb");
    assert_eq!(status, 200);
    assert_eq!(body, deb("auto", "1", "amd64", ""));
}

/// A removed package's file stays while a kept version lists it (a pinned
/// client may still fetch it), and goes with the last such version.
#[test]
fn a_removed_packages_file_goes_with_the_last_version_that_lists_it() {
    let daemon = Daemon::builder()
        .config(
            "[publish]\nkeep-superseded-seconds = 1\n[versions]\nkeep-last = 2\nkeep-days = 0\n",
        )
        .start();
    let token = daemon.token("uploader", "ci");
    let maintainer = daemon.token("maintainer", "m");
    let file = "/repos/pool/main/k/kept/kept_1_amd64.deb";
    let reply = daemon.upload(
        "/api/v1/packages?distribution=bookworm",
        Some(&token),
        &deb("kept", "1", "amd64", ""),
    );
    assert_eq!(reply.status, 201, "{}", reply.body);
    assert_eq!(reply.body["distribution_version"], 1, "{}", reply.body);
    let id = reply.body["id"].as_str().unwrap().to_owned();
    let sha = reply.body["sha256"].as_str().unwrap().to_owned();
    daemon.publish("bookworm", &token);
    assert_eq!(get(&daemon, file).0, 200);

    let path = format!("/api/v1/packages/{id}");
    assert_eq!(daemon.delete(&path, Some(&maintainer)).status, 204);
    let report = daemon.publish("bookworm", &token);
    assert_eq!(report["version"], 2, "{report}");
    assert_eq!(report["collected"]["versions"], 0, "{report}");
    assert_eq!(get(&daemon, file).0, 200, "version 1 still lists it");
    assert_eq!(
        get(
            &daemon,
            &format!("/repos/versions/bookworm/1{}", &file["/repos".len()..])
        )
        .0,
        200,
        "served under version 1's tree"
    );

    // Version 3, more than the publish retention (1 s) after version 2:
    // only versions 2 and 3 are kept, and nothing kept lists the file.
    std::thread::sleep(Duration::from_secs(2));
    let other = daemon.upload(
        "/api/v1/packages?distribution=bookworm",
        Some(&token),
        &deb("other", "1", "amd64", ""),
    );
    assert_eq!(other.status, 201, "{}", other.body);
    let report = daemon.publish("bookworm", &token);
    assert_eq!(report["version"], 3, "{report}");
    assert_eq!(
        report["collected"],
        serde_json::json!({"versions": 1, "packages": 1, "pool_files": 1, "blobs": 1}),
        "{report}"
    );
    assert_eq!(get(&daemon, file).0, 404);
    let dir = daemon.data.path().join("repos/pool/main/k");
    assert!(!dir.exists(), "empty pool directories are removed too");
    let blob = daemon
        .data
        .path()
        .join(format!("blobs/sha256/{}/{sha}", &sha[..2]));
    assert!(!blob.exists(), "the blob went with its last row");
    let listed = daemon.get("/api/v1/distributions/bookworm/versions", Some(&token));
    let numbers: Vec<i64> = listed.body["versions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["number"].as_i64().unwrap())
        .collect();
    assert_eq!(numbers, [3, 2]);
    assert_eq!(
        daemon.get(&path, Some(&token)).status,
        404,
        "its row is gone"
    );
}

/// The pool is shared: when jammy's retention drops its row of a file,
/// the file stays while noble's row still names it.
#[test]
fn a_pool_file_another_distribution_still_lists_outlives_its_retention() {
    // The pool file on disk: the filesystem store's tree.
    let daemon = Daemon::builder()
        .filesystem()
        .config(
            "[publish]\nkeep-superseded-seconds = 0\n[versions]\nkeep-last = 1\nkeep-days = 0\n",
        )
        .start();
    let token = daemon.token("uploader", "ci");
    let maintainer = daemon.token("maintainer", "m");
    let bytes = deb("shared", "1", "amd64", "");
    let file = daemon
        .data
        .path()
        .join("repos/pool/main/s/shared/shared_1_amd64.deb");
    let remove = |id: &serde_json::Value| {
        let path = format!("/api/v1/packages/{}", id.as_str().unwrap());
        assert_eq!(daemon.delete(&path, Some(&maintainer)).status, 204);
    };
    let mut ids = Vec::new();
    for dist in ["jammy", "noble"] {
        let reply = daemon.upload(
            &format!("/api/v1/packages?distribution={dist}"),
            Some(&token),
            &bytes,
        );
        assert_eq!(reply.status, 201, "{}", reply.body);
        ids.push(reply.body["id"].clone());
        daemon.publish(dist, &token);
    }
    assert!(file.exists());

    remove(&ids[0]);
    let report = daemon.publish("jammy", &token);
    assert_eq!(
        report["collected"],
        serde_json::json!({"versions": 1, "packages": 1, "pool_files": 0, "blobs": 0}),
        "{report}"
    );
    assert!(
        file.exists(),
        "jammy's retention removed a file noble lists"
    );

    remove(&ids[1]);
    let report = daemon.publish("noble", &token);
    assert_eq!(
        report["collected"],
        serde_json::json!({"versions": 1, "packages": 1, "pool_files": 1, "blobs": 1}),
        "{report}"
    );
    assert!(!file.exists());
}

#[test]
fn readers_during_publishes_always_see_indexes_matching_their_release() {
    let daemon = Daemon::start();
    let token = daemon.token("uploader", "ci");
    daemon.publish("focal", &token);
    let dir = tempfile::tempdir().unwrap();
    let stop = AtomicBool::new(false);
    let rounds = AtomicUsize::new(0);
    std::thread::scope(|scope| {
        let reader = scope.spawn(|| {
            while !stop.load(Ordering::Relaxed) {
                // What apt does: InRelease, then each index by its hash.
                let release = verified_release(&daemon, "focal", dir.path());
                for (name, (size, hex)) in release_sha256(&release) {
                    if !name.ends_with("Packages.xz") && !name.ends_with("Packages.gz") {
                        continue;
                    }
                    let dir_of = name.rsplit_once('/').unwrap().0;
                    let (status, body) = get(
                        &daemon,
                        &format!("/repos/dists/focal/{dir_of}/by-hash/SHA256/{hex}"),
                    );
                    assert_eq!(status, 200, "{name} by-hash/{hex} vanished");
                    assert_eq!((body.len() as u64, sha256(&body)), (size, hex), "{name}");
                }
                rounds.fetch_add(1, Ordering::Relaxed);
            }
        });
        for i in 0..15 {
            let file = deb(&format!("churn{i}"), "1.0", "amd64", "");
            let reply = daemon.upload("/api/v1/packages?distribution=focal", Some(&token), &file);
            assert_eq!(reply.status, 201, "{}", reply.body);
            if i % 3 == 0 {
                daemon.publish("focal", &token);
            }
        }
        daemon.publish("focal", &token);
        stop.store(true, Ordering::Relaxed);
        reader.join().unwrap();
    });
    assert!(rounds.load(Ordering::Relaxed) >= 5, "the reader barely ran");
    let packages = String::from_utf8(fetch(
        &daemon,
        "/repos/dists/focal/main/binary-amd64/Packages",
    ))
    .unwrap();
    assert_eq!(packages.matches("Package: churn").count(), 15);
}

#[test]
fn a_pool_path_holds_one_file_across_distributions() {
    let daemon = Daemon::start();
    let token = daemon.token("uploader", "ci");
    let first = deb("clash", "1.0", "amd64", "");
    let other = deb(
        "clash",
        "1.0",
        "amd64",
        "Homepage: https://example.invalid\n",
    );
    assert_eq!(
        daemon
            .upload("/api/v1/packages?distribution=jammy", Some(&token), &first)
            .status,
        201
    );
    let reply = daemon.upload("/api/v1/packages?distribution=noble", Some(&token), &other);
    let detail = reply.problem(409);
    assert!(
        detail.contains("pool/main/c/clash/clash_1.0_amd64.deb") && detail.contains("jammy"),
        "{detail}"
    );
    // The same file is welcome in another distribution.
    assert_eq!(
        daemon
            .upload("/api/v1/packages?distribution=noble", Some(&token), &first)
            .status,
        201
    );
}

#[test]
fn publishing_an_unknown_distribution_is_a_clear_404() {
    let daemon = Daemon::start();
    let token = daemon.token("uploader", "ci");
    let reply = daemon.post_json(
        "/api/v1/distributions/nope/publish",
        Some(&token),
        serde_json::json!({}),
    );
    assert!(reply.problem(404).contains("no distribution nope"));
}

#[test]
fn client_config_is_a_deb822_source_with_signed_by() {
    let daemon = Daemon::start();
    let reader = daemon.token("reader", "r");
    let reply = daemon.get("/api/v1/distributions/jammy/client-config", Some(&reader));
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert!(
        reply.content_type.starts_with("text/plain"),
        "{}",
        reply.content_type
    );
    let text = reply.body.as_str().unwrap();
    let port = daemon.url.rsplit(':').next().unwrap();
    for line in [
        "Types: deb\n".to_owned(),
        format!("URIs: http://127.0.0.1:{port}/repos\n"),
        "Suites: jammy\n".to_owned(),
        "Components: main\n".to_owned(),
        "Signed-By: /etc/apt/keyrings/repod.asc\n".to_owned(),
        format!("http://127.0.0.1:{port}/repos/keys/repod.asc"),
    ] {
        assert!(text.contains(&line), "{line:?} missing:\n{text}");
    }
    let custom = daemon.get(
        "/api/v1/distributions/jammy/client-config?base-url=https://repo.example.com/repos/",
        Some(&reader),
    );
    let custom = custom.body.as_str().unwrap();
    assert!(
        custom.contains("URIs: https://repo.example.com/repos\n"),
        "{custom}"
    );
    let bad = daemon.get(
        "/api/v1/distributions/jammy/client-config?base-url=ftp://x",
        Some(&reader),
    );
    assert!(bad.problem(400).contains("http://"));
}

#[test]
fn a_restarted_daemon_republishes_the_same_tree_from_the_database() {
    let mut daemon = Daemon::start();
    let token = daemon.token("uploader", "ci");
    for i in 0..5 {
        let file = deb(
            &format!("kept{i}"),
            "1.0",
            if i == 0 { "all" } else { "amd64" },
            "",
        );
        let reply = daemon.upload("/api/v1/packages?distribution=jammy", Some(&token), &file);
        assert_eq!(reply.status, 201, "{}", reply.body);
    }
    daemon.publish("jammy", &token);
    let before = fetch(&daemon, "/repos/dists/jammy/main/binary-amd64/Packages");
    daemon.kill();
    // The tree is wiped: the next start must rebuild it from the rows
    // alone (the first read of a distribution takes them all at once).
    std::fs::remove_dir_all(daemon.data.path().join("repos/dists")).unwrap();
    daemon.restart();
    daemon.publish("jammy", &token);
    let after = fetch(&daemon, "/repos/dists/jammy/main/binary-amd64/Packages");
    assert_eq!(
        String::from_utf8(after).unwrap(),
        String::from_utf8(before).unwrap()
    );
    let dir = tempfile::tempdir().unwrap();
    let release = verified_release(&daemon, "jammy", dir.path());
    assert!(
        release.contains("main/binary-amd64/Packages.xz"),
        "{release}"
    );
    let arm64 = String::from_utf8(fetch(
        &daemon,
        "/repos/dists/jammy/main/binary-arm64/Packages",
    ))
    .unwrap();
    assert_eq!(arm64.matches("Package: ").count(), 1, "{arm64}");
}
