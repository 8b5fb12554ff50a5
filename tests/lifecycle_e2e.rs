//! Rollout tiers as stock clients see them, over HTTP with signatures
//! checked: a promotion made with the seed's documented curl line, found
//! and fetched by apt; promotion and migration between EL distributions
//! read by dnf (`repo_gpgcheck=1`, signed packages); rollbacks followed by
//! a live apt root while a pinned one stays put; and init restoring a
//! deleted tree that apt and dnf accept.

use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use repod_tests::apt::{AptRoot, root_for};
use repod_tests::rpm::{Dnf, Signer, client_config, daemon_signed_by, ok, sha256};
use repod_tests::{Daemon, fixtures};
use serde_json::{Value, json};

fn blob(daemon: &Daemon, sha: &str) -> std::path::PathBuf {
    daemon
        .data
        .path()
        .join(format!("blobs/sha256/{}/{sha}", &sha[..2]))
}

fn same_inode(a: &Path, b: &Path) -> bool {
    let (a, b) = (std::fs::metadata(a).unwrap(), std::fs::metadata(b).unwrap());
    (a.dev(), a.ino()) == (b.dev(), b.ino())
}

/// The seed's promote example, character for character; `localhost:8000`
/// is mapped to the test daemon by a `.curlrc` (`connect-to`), so nothing
/// in the command line itself is changed.
const SEED_PROMOTE: &str = r#"curl -X POST -H "Authorization: Bearer $TOKEN" \
-H "Content-Type: application/json" \
http://localhost:8000/api/v1/distributions/promote \
-d '{"package":"nginx","from_dist":"jammy","to_dist":"noble"}'"#;

#[test]
fn apt_finds_a_package_promoted_with_the_seed_curl_line() {
    let daemon = Daemon::start();
    let up = daemon.token("uploader", "ci");
    let maintainer = daemon.token("maintainer", "release");
    let dir = tempfile::tempdir().unwrap();
    let nginx = fixtures::deb(dir.path(), "nginx", "1.24.0-1", "amd64", "", "web server");
    let uploaded = daemon.upload_file("jammy", &up, &nginx);
    daemon.publish("jammy", &up);
    daemon.publish("noble", &up);
    let key = daemon.served_key();
    // Not in noble yet.
    let noble = root_for(&daemon, "noble", "", "amd64", &[], &key);
    noble.update().assert_ok();
    assert!(!noble.cache(&["show", "nginx"]).ok());

    let curl_home = tempfile::tempdir().unwrap();
    let port = daemon.url.rsplit(':').next().unwrap();
    std::fs::write(
        curl_home.path().join(".curlrc"),
        format!("connect-to = \"localhost:8000:127.0.0.1:{port}\"\nsilent\n"),
    )
    .unwrap();
    let started = Instant::now();
    let out = Command::new("sh")
        .arg("-c")
        .arg(SEED_PROMOTE)
        .env("TOKEN", &maintainer)
        .env("CURL_HOME", curl_home.path())
        .output()
        .unwrap();
    let elapsed = started.elapsed();
    assert!(out.status.success(), "{out:?}");
    let answer: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(answer["promoted"][0]["name"], "nginx", "{answer}");
    assert_eq!(answer["to_dist"], "noble");
    eprintln!("promotion answered (tree published) in {elapsed:?}");

    // No publish call, no wait: the answer came once noble's tree had it.
    noble.update().assert_ok();
    let plan = noble.install_simulated(&["nginx"]);
    assert_eq!(plan, [("nginx", "1.24.0-1", "amd64")], "{plan:?}");
    let fetched = noble.download(&["nginx"]);
    assert_eq!(fetched.len(), 1);
    assert_eq!(
        sha256(&fetched[0]),
        sha256(&nginx),
        "byte-identical to jammy's"
    );

    // One file on disk: the blob, and the one pool link both codenames
    // list. With an object store: one object, and no pool on the node
    // (package files are served from the blob store).
    let sha = uploaded.body["sha256"].as_str().unwrap();
    let pool = daemon
        .data
        .path()
        .join("repos/pool/main/n/nginx/nginx_1.24.0-1_amd64.deb");
    if daemon.storage.is_none() {
        assert!(same_inode(&pool, &blob(&daemon, sha)));
        assert_eq!(std::fs::metadata(&pool).unwrap().nlink(), 2);
    } else {
        assert_eq!(daemon.stored_blobs(), [sha]);
        assert!(!pool.exists());
    }
    let jammy = root_for(&daemon, "jammy", "", "amd64", &[], &key);
    jammy.update().assert_ok();
    let from_jammy = jammy.download(&["nginx"]);
    assert_eq!(sha256(&from_jammy[0]), sha256(&fetched[0]));
}

#[test]
fn dnf_sees_promotion_and_migration_between_el_distributions() {
    let signer = Signer::new();
    let daemon = daemon_signed_by(&signer);
    let up = daemon.token("uploader", "ci");
    let maintainer = daemon.token("maintainer", "release");
    let dir = tempfile::tempdir().unwrap();
    let mut built = Vec::new();
    for (name, arch) in [
        ("hello", "x86_64"),
        ("hello", "noarch"),
        ("extra", "x86_64"),
    ] {
        let file = fixtures::rpm(dir.path(), name, "1.0", "1", arch, "");
        signer.sign_rpm(&file);
        built.push(file);
    }
    let mut shas = Vec::new();
    for file in &built {
        let reply = daemon.upload_file("almalinux9", &up, file);
        shas.push(reply.body["sha256"].as_str().unwrap().to_owned());
    }

    let reply = daemon.post_json(
        "/api/v1/distributions/promote",
        Some(&maintainer),
        json!({"package": "hello", "from_dist": "almalinux9", "to_dist": "rocky9"}),
    );
    assert_eq!(reply.status, 201, "{}", reply.body);
    assert_eq!(reply.body["promoted"].as_array().unwrap().len(), 2);

    let repo = client_config(&daemon, "rocky9");
    let dnf = Dnf::new(&repo, "x86_64");
    ok(&mut dnf.cmd(&["makecache"]));
    assert_eq!(
        dnf.repoquery(),
        ["hello-1.0-1.noarch", "hello-1.0-1.x86_64"]
    );
    let dest = dnf.dir.path().join("dl");
    ok(dnf
        .cmd(&["install", "--downloadonly"])
        .arg(format!("--destdir={}", dest.display()))
        .arg("hello.x86_64"));
    assert_eq!(
        sha256(&dest.join("hello-1.0-1.x86_64.rpm")),
        sha256(&built[0])
    );
    // rocky9's file is a link to the one blob almalinux9's is (with an
    // object store: both are served from the one stored blob).
    let repos = daemon.data.path().join("repos");
    for dist in ["almalinux9", "rocky9"] {
        let file = repos.join(format!("{dist}/x86_64/hello-1.0-1.x86_64.rpm"));
        match daemon.storage {
            None => assert!(same_inode(&file, &blob(&daemon, &shas[0]))),
            Some(_) => {
                assert!(!file.exists());
                assert!(daemon.stored_blobs().contains(&shas[0]));
            }
        }
    }

    let reply = daemon.post_json(
        "/api/v1/distributions/migrate",
        Some(&maintainer),
        json!({"from_dist": "almalinux9", "to_dist": "rocky9", "reason": "EL9 baseline"}),
    );
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(reply.body["copied"], 1, "{}", reply.body);
    assert_eq!(reply.body["already_present"], 2);
    ok(&mut dnf.cmd(&["makecache"]));
    assert_eq!(
        dnf.repoquery(),
        [
            "extra-1.0-1.x86_64",
            "hello-1.0-1.noarch",
            "hello-1.0-1.x86_64"
        ]
    );
    ok(dnf
        .cmd(&["install", "--downloadonly"])
        .arg(format!("--destdir={}", dest.display()))
        .arg("extra"));
    assert_eq!(
        sha256(&dest.join("extra-1.0-1.x86_64.rpm")),
        sha256(&built[2])
    );
}

fn shows(apt: &AptRoot, package: &str) -> bool {
    apt.update().assert_ok();
    apt.cache(&["show", package]).ok()
}

#[test]
fn apt_follows_rollbacks_while_a_pinned_root_stays_on_its_version() {
    let daemon = Daemon::start();
    let up = daemon.token("uploader", "ci");
    let maintainer = daemon.token("maintainer", "release");
    let dir = tempfile::tempdir().unwrap();
    let tool = fixtures::deb(dir.path(), "tool", "1.0-1", "amd64", "", "tool");
    let extra = fixtures::deb(dir.path(), "extra", "1.0-1", "all", "", "extra");
    daemon.upload_file("jammy", &up, &tool);
    daemon.upload_file("jammy", &up, &extra);
    daemon.publish("jammy", &up);
    let key = daemon.served_key();
    let live = root_for(&daemon, "jammy", "", "amd64", &[], &key);
    // Version 1 holds tool only; a client pinned to it.
    let pinned = root_for(&daemon, "jammy", "?version=1", "amd64", &[], &key);
    let pinned_ok = |when: &str| {
        assert!(shows(&pinned, "tool"), "pinned root lost tool {when}");
        assert!(!shows(&pinned, "extra"), "pinned root sees extra {when}");
        let plan = pinned.install_simulated(&["tool"]);
        assert_eq!(plan, [("tool", "1.0-1", "amd64")]);
    };
    assert!(shows(&live, "extra"));
    pinned_ok("at first");

    let rollback = |to: i64| {
        let reply = daemon.post_json(
            "/api/v1/distributions/jammy/rollback",
            Some(&maintainer),
            json!({"version": to, "reason": format!("back to {to}")}),
        );
        assert_eq!(reply.status, 201, "{}", reply.body);
    };
    rollback(1);
    assert!(
        !shows(&live, "extra"),
        "extra still listed after the rollback to 1"
    );
    assert!(shows(&live, "tool"));
    pinned_ok("after the rollback to 1");

    rollback(2);
    assert!(
        shows(&live, "extra"),
        "extra did not come back with version 2"
    );
    let files = live.download(&["extra"]);
    assert_eq!(sha256(&files[0]), sha256(&extra));
    pinned_ok("after the rollback to 2");
}

/// The decompressed primary.xml of an EL repository, as repomd.xml lists it.
fn primary(daemon: &Daemon, dist: &str) -> Vec<u8> {
    let base = format!("/repos/{dist}/x86_64");
    let (_, repomd) = daemon.get_bytes(&format!("{base}/repodata/repomd.xml"));
    let repomd = String::from_utf8(repomd).unwrap();
    let doc = roxmltree::Document::parse(&repomd).unwrap();
    let href = doc
        .descendants()
        .find(|n| n.has_tag_name("data") && n.attribute("type") == Some("primary"))
        .and_then(|n| n.children().find(|c| c.has_tag_name("location")))
        .and_then(|l| l.attribute("href"))
        .unwrap()
        .to_owned();
    let (status, bytes) = daemon.get_bytes(&format!("{base}/{href}"));
    assert_eq!(status, 200, "{href}");
    zstd::decode_all(bytes.as_slice()).unwrap()
}

fn wait_for(daemon: &Daemon, path: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while daemon.get_bytes(path).0 != 200 {
        assert!(Instant::now() < deadline, "{path} not back in 30 s");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn init_restores_a_deleted_tree_that_apt_and_dnf_accept() {
    let signer = Signer::new();
    let mut daemon = daemon_signed_by(&signer);
    let up = daemon.token("uploader", "ci");
    let dir = tempfile::tempdir().unwrap();
    let deb = fixtures::deb(dir.path(), "restored", "2.0-1", "amd64", "", "x");
    daemon.upload_file("bookworm", &up, &deb);
    let rpm = fixtures::rpm(dir.path(), "restored", "2.0", "1", "x86_64", "");
    signer.sign_rpm(&rpm);
    daemon.upload_file("almalinux9", &up, &rpm);
    daemon.publish_all();
    let packages_path = "/repos/dists/bookworm/main/binary-amd64/Packages";
    let packages = daemon.get_bytes(packages_path).1;
    let primary_before = primary(&daemon, "almalinux9");
    let key = daemon.served_key();

    std::fs::remove_dir_all(daemon.data.path().join("repos")).unwrap();
    let reply = daemon.post_json("/api/v1/distributions/init", Some(&daemon.admin), json!({}));
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(
        daemon.get_bytes(packages_path).1,
        packages,
        "Packages differs"
    );
    assert_eq!(
        primary(&daemon, "almalinux9"),
        primary_before,
        "primary differs"
    );
    assert_eq!(daemon.served_key(), key);

    let apt = root_for(&daemon, "bookworm", "", "amd64", &[], &key);
    apt.update().assert_ok();
    let fetched = apt.download(&["restored"]);
    assert_eq!(sha256(&fetched[0]), sha256(&deb));
    let dnf = Dnf::new(&client_config(&daemon, "almalinux9"), "x86_64");
    ok(&mut dnf.cmd(&["makecache"]));
    assert_eq!(dnf.repoquery(), ["restored-2.0-1.x86_64"]);
    let dest = dnf.dir.path().join("dl");
    ok(dnf
        .cmd(&["install", "--downloadonly"])
        .arg(format!("--destdir={}", dest.display()))
        .arg("restored"));

    // One distribution's tree deleted while the daemon is down: the start
    // heals it.
    daemon.kill();
    std::fs::remove_dir_all(daemon.data.path().join("repos/dists/bookworm")).unwrap();
    daemon.restart();
    wait_for(&daemon, "/repos/dists/bookworm/InRelease");
    assert_eq!(daemon.get_bytes(packages_path).1, packages);
    let apt = root_for(&daemon, "bookworm", "", "amd64", &[], &key);
    apt.update().assert_ok();
    assert_eq!(
        apt.install_simulated(&["restored"]),
        [("restored", "2.0-1", "amd64")]
    );
}
