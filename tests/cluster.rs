//! Three daemons on one PostgreSQL database and one object store: uploads
//! to any node, stock apt and dnf on different nodes seeing the same
//! signed trees, a plugin installed on one node reaching all, and the
//! leader killed with SIGKILL around a publish while a checker reads the
//! trees of the others; and what would make two publishers refused.
//!
//! Needs the S3 run on PostgreSQL (scripts/test runs this binary only
//! there): it fails, not skips, without it.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use repod_tests::rpm::{Dnf, client_config, ok};
use repod_tests::{Daemon, fixtures, wasm};
use sha2::Digest;

fn require_cluster() {
    assert!(
        std::env::var("REPOD_TEST_S3").is_ok() && std::env::var("REPOD_TEST_POSTGRES").is_ok(),
        "this test needs PostgreSQL and an S3-compatible server: run it under \
         scripts/with-postgres scripts/with-s3"
    );
}

fn eventually(what: &str, limit: Duration, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !check() {
        assert!(Instant::now() < deadline, "not within {limit:?}: {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn leads(daemon: &Daemon) -> bool {
    daemon.log().contains("leading: this node publishes")
}

/// The first node of a cluster, leading; while `pause` exists each of its
/// publishes waits between storing its generation's files and inserting
/// its row (a debug-build test hook).
fn leader_held_by(pause: &std::path::Path) -> Daemon {
    let a = Daemon::builder()
        .env(
            "REPOD_TEST_PAUSE_BEFORE_GENERATION",
            pause.to_str().unwrap(),
        )
        .start();
    eventually("the first node leads", Duration::from_secs(10), || {
        leads(&a)
    });
    a
}

/// A node sharing `first`'s database and bucket whose signing key is the
/// one in `first`'s key directory, named by `keys` in its config (it has
/// none of its own: a fresh key would sign differently).
fn another_node(first: &Daemon) -> Daemon {
    Daemon::builder()
        .sharing(first)
        .fresh_key()
        .config(&format!(
            "keys = {:?}\n",
            first.data.path().join("keys").display().to_string()
        ))
        .start()
}

/// GET `url` + `path`: the status and body, or what went wrong.
fn get(url: &str, path: &str) -> Result<(u16, Vec<u8>), String> {
    match ureq::get(&format!("{url}{path}")).call() {
        Ok(r) => {
            let mut body = Vec::new();
            std::io::Read::read_to_end(&mut r.into_reader(), &mut body)
                .map_err(|e| format!("{path}: {e}"))?;
            Ok((200, body))
        }
        Err(ureq::Error::Status(code, _)) => Ok((code, Vec::new())),
        Err(e) => Err(format!("{path}: {e}")),
    }
}

/// Paths a client of the node at `url` may fetch after reading its
/// top-level files that answer other than 200 with the bytes named, and
/// files of the served generation missing from the bucket (listed after
/// the top-level file was read: a generation is stored before its row).
fn broken_paths(url: &str, s3: &repod::config::S3Config) -> Result<Vec<String>, String> {
    let mut broken = Vec::new();
    let (status, inrelease) = get(url, "/repos/dists/jammy/InRelease")?;
    if status != 200 {
        return Err(format!("InRelease: {status}"));
    }
    let stored: std::collections::HashSet<String> = repod_tests::object_keys(s3, "trees/sha256")
        .into_iter()
        .filter_map(|k| k.rsplit('/').next().map(str::to_owned))
        .collect();
    let top = hex::encode(sha2::Sha256::digest(&inrelease));
    if !stored.contains(&top) {
        broken.push(format!("InRelease {top} not in the bucket"));
    }
    let text = String::from_utf8_lossy(&inrelease).into_owned();
    let mut in_sha256 = false;
    for line in text.lines() {
        if line.starts_with("-----BEGIN PGP SIGNATURE") {
            break;
        }
        if !line.starts_with(' ') {
            in_sha256 = line == "SHA256:";
            continue;
        }
        let mut fields = line.split_whitespace();
        let (Some(sha), Some(_), Some(path)) = (fields.next(), fields.next(), fields.next()) else {
            continue;
        };
        if !in_sha256 {
            continue;
        }
        // The package indexes as apt fetches them (Acquire-By-Hash): by
        // their hash, which must give those bytes. Other compressed files
        // (Contents) by name: they must be there. (Release also lists the
        // uncompressed sums of files published only compressed, as
        // Debian's archive does.)
        let dir = path.rsplit_once('/').map_or("", |(d, _)| d);
        if !stored.contains(sha) && (dir.contains("binary-") || path.ends_with(".gz")) {
            broken.push(format!("{path} ({sha}) not in the bucket"));
        }
        if dir.contains("binary-") {
            let by_hash = format!("/repos/dists/jammy/{dir}/by-hash/SHA256/{sha}");
            let (status, body) = get(url, &by_hash)?;
            if status != 200 || hex::encode(sha2::Sha256::digest(&body)) != sha {
                broken.push(format!("{by_hash}: {status}"));
            }
        } else if [".gz", ".xz", ".zst", ".bz2"]
            .iter()
            .any(|e| path.ends_with(e))
        {
            let named = format!("/repos/dists/jammy/{path}");
            let (status, _) = get(url, &named)?;
            if status != 200 {
                broken.push(format!("{named}: {status}"));
            }
        }
    }
    let (status, repomd) = get(url, "/repos/almalinux9/x86_64/repodata/repomd.xml")?;
    if status == 200 {
        let text = String::from_utf8_lossy(&repomd).into_owned();
        for href in text.split("<location href=\"").skip(1) {
            let href = href.split('"').next().unwrap();
            let path = format!("/repos/almalinux9/x86_64/{href}");
            let (status, _) = get(url, &path)?;
            if status != 200 {
                broken.push(format!("{path}: {status}"));
            }
        }
    }
    Ok(broken)
}

#[test]
fn three_nodes_share_uploads_trees_plugins_and_survive_the_leader_s_death() {
    require_cluster();
    // Once `pause` exists, A waits 3 s between storing a generation's
    // files and its row (a debug-build test hook): killed mid-publish.
    let hooks = tempfile::tempdir().unwrap();
    let pause = hooks.path().join("pause");
    let mut a = leader_held_by(&pause);
    let b = another_node(&a);
    let c = another_node(&a);
    assert!(!leads(&b) && !leads(&c), "only one node leads");
    let token = a.token("uploader", "ci");
    let dir = tempfile::tempdir().unwrap();

    // Uploads to the three nodes at once.
    let acknowledged = Mutex::new(BTreeMap::new());
    std::thread::scope(|scope| {
        for (n, node) in [&a, &b, &c].into_iter().enumerate() {
            let (dir, token, acknowledged) = (dir.path(), &token, &acknowledged);
            scope.spawn(move || {
                for i in 0..4 {
                    let name = format!("pkg{n}x{i}");
                    let out = dir.join(&name);
                    std::fs::create_dir_all(&out).unwrap();
                    let deb = fixtures::deb(&out, &name, "1.0-1", "amd64", "", &name);
                    let reply = node.upload_file("jammy", token, &deb);
                    let sha = reply.body["sha256"].as_str().unwrap().to_owned();
                    acknowledged.lock().unwrap().insert(name.clone(), sha);
                    let rpm = fixtures::rpm(&out, &format!("r{name}"), "1.0", "1", "x86_64", "");
                    node.upload_file("almalinux9", token, &rpm);
                }
            });
        }
    });
    // A publish asked of a node that does not lead waits for the leader's.
    let report = b.publish("jammy", &b.admin);
    assert!(report["version"].as_i64().unwrap() >= 12, "{report}");
    c.publish("almalinux9", &c.admin);

    // Every node serves the same signed top-level files.
    let tops = [
        "/repos/dists/jammy/InRelease",
        "/repos/almalinux9/x86_64/repodata/repomd.xml",
    ];
    eventually("the nodes agree", Duration::from_secs(5), || {
        tops.iter().all(|p| {
            let bodies: Vec<Vec<u8>> = [&a, &b, &c].iter().map(|n| n.get_bytes(p).1).collect();
            bodies[0] == bodies[1] && bodies[1] == bodies[2]
        })
    });
    // Stock apt on B and dnf on C, signatures checked with A's key.
    let apt = repod_tests::apt::root_for(&b, "jammy", "", "amd64", &[], &a.served_key());
    apt.update().assert_ok();
    let names: Vec<String> = acknowledged.lock().unwrap().keys().cloned().collect();
    let refs: Vec<&str> = names.iter().map(String::as_str).collect();
    assert_eq!(apt.install_simulated(&refs).len(), 12);
    let dnf = Dnf::new(&client_config(&c, "almalinux9"), "x86_64");
    ok(&mut dnf.cmd(&["makecache"]));
    let listed = ok(&mut dnf.cmd(&["list", "--available"]));
    assert_eq!(listed.matches(".x86_64").count(), 12, "{listed}");

    // A plugin installed on C reaches every node.
    let bytes = std::fs::read(wasm("trixie_plugin")).unwrap();
    let created = c.post_bytes("/api/v1/plugins", Some(&c.admin), bytes);
    assert_eq!(created.status, 201, "{created:?}");
    for node in [&a, &b] {
        eventually(
            "the plugin reaches every node",
            Duration::from_secs(10),
            || node.distribution_ids().contains(&"trixie".to_owned()),
        );
    }
    let sets: Vec<String> = [&a, &b, &c]
        .iter()
        .map(|n| {
            let mut names: Vec<String> = n.get("/api/v1/plugins", Some(&n.admin)).body["plugins"]
                .as_array()
                .unwrap()
                .iter()
                .map(|p| format!("{} {}", p["name"], p["sha256"]))
                .collect();
            names.sort();
            names.join(",")
        })
        .collect();
    assert!(sets[0] == sets[1] && sets[1] == sets[2], "{sets:#?}");

    // The checker reads B's and C's trees the way clients do, throughout.
    let stop = Arc::new(AtomicBool::new(false));
    let checks = Arc::new(AtomicUsize::new(0));
    let violations = Arc::new(Mutex::new(Vec::new()));
    let checker = {
        let (stop, checks, violations) = (stop.clone(), checks.clone(), violations.clone());
        let urls = [b.url.clone(), c.url.clone()];
        let s3 = a.storage.clone().expect("the S3 run");
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                for url in &urls {
                    match broken_paths(url, &s3) {
                        Ok(broken) if broken.is_empty() => {}
                        Ok(broken) => violations.lock().unwrap().push(broken),
                        Err(e) => violations.lock().unwrap().push(vec![e]),
                    }
                    checks.fetch_add(1, Ordering::Relaxed);
                }
            }
        })
    };

    // More uploads on B; A dies in the middle of the publish they cause:
    // its files stored, its generation row not yet inserted.
    let pauses = |d: &Daemon| d.log().matches("test hook: pausing").count();
    let paused_before = pauses(&a);
    std::fs::write(&pause, b"").unwrap();
    for round in 0..3 {
        let name = format!("late{round}");
        let out = dir.path().join(&name);
        std::fs::create_dir_all(&out).unwrap();
        let deb = fixtures::deb(&out, &name, "1.0-1", "amd64", "", &name);
        let reply = b.upload_file("jammy", &token, &deb);
        let sha = reply.body["sha256"].as_str().unwrap().to_owned();
        acknowledged.lock().unwrap().insert(name, sha);
        if round == 0 {
            eventually(
                "A is in the middle of a publish",
                Duration::from_secs(10),
                || pauses(&a) > paused_before,
            );
            a.kill();
        }
    }
    eventually("B or C leads", Duration::from_secs(15), || {
        leads(&b) || leads(&c)
    });
    // The next publish completes, and nothing acknowledged is lost.
    let report = c.publish("jammy", &c.admin);
    assert!(report["version"].as_i64().is_some(), "{report}");
    let apt = repod_tests::apt::root_for(&c, "jammy", "", "amd64", &[], &b.served_key());
    apt.update().assert_ok();
    let acked = acknowledged.lock().unwrap().clone();
    let names: Vec<&str> = acked.keys().map(String::as_str).collect();
    let planned = apt.install_simulated(&names);
    assert_eq!(planned.len(), acked.len(), "{planned:?}");
    let listed = b.get("/api/v1/packages?distribution=jammy", Some(&token));
    for (name, sha) in &acked {
        assert!(
            listed.body["packages"]
                .as_array()
                .unwrap()
                .iter()
                .any(|p| p["name"] == name.as_str() && p["sha256"] == sha.as_str()),
            "acknowledged {name} lost"
        );
    }
    // Every acknowledged package's blob is in the bucket.
    let stored = a.stored_blobs();
    for (name, sha) in &acked {
        assert!(stored.contains(sha), "{name}'s blob is not in the bucket");
    }
    eventually("the checker ran 10 times", Duration::from_secs(60), || {
        checks.load(Ordering::Relaxed) >= 10
    });
    stop.store(true, Ordering::Relaxed);
    checker.join().unwrap();
    let violations = violations.lock().unwrap();
    assert!(
        violations.is_empty(),
        "clients met broken trees: {:?}",
        &violations[..violations.len().min(3)]
    );
    assert!(
        checks.load(Ordering::Relaxed) >= 10,
        "the checker barely ran"
    );
}

/// Runs `cmd` and returns whether it succeeded and its stderr; a command
/// still running after `limit` is killed and fails the test.
fn exits_within(mut cmd: std::process::Command, limit: Duration) -> (bool, String) {
    let stderr = tempfile::NamedTempFile::new().unwrap();
    let mut child = cmd
        .stdout(std::process::Stdio::null())
        .stderr(stderr.reopen().unwrap())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + limit;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "{cmd:?} still running after {limit:?}: {}",
                std::fs::read_to_string(stderr.path()).unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    (
        status.success(),
        std::fs::read_to_string(stderr.path()).unwrap(),
    )
}

/// What would make two publishers of one installation is refused with a
/// message that says what to do: a second daemon on the same PostgreSQL
/// database with a local data directory (it would publish a tree of its
/// own and run the background work again), and an offline `repod publish`
/// while a node leads. The running node is unaffected.
#[test]
fn a_second_publisher_of_one_database_is_refused() {
    require_cluster();
    // PostgreSQL and a local data directory: one daemon per database.
    let alone = Daemon::builder().filesystem().start();
    let other = tempfile::tempdir().unwrap();
    let started = Instant::now();
    let mut second = alone.cli();
    second
        .args(["serve", "--listen", "127.0.0.1:0", "--data"])
        .arg(other.path());
    let (ok, stderr) = exits_within(second, Duration::from_secs(60));
    assert!(!ok, "a second daemon started: {stderr}");
    assert!(
        stderr.contains("another repod already uses this database")
            && stderr.contains("kind = \"s3\""),
        "{stderr}"
    );
    assert!(started.elapsed() < Duration::from_secs(30));
    assert_eq!(alone.get_bytes("/repos/keys/repod.asc").0, 200);

    // A cluster: offline publishing waits for no one, so it is refused
    // while a node leads, from any data directory.
    let node = Daemon::start();
    eventually("the node leads", Duration::from_secs(30), || leads(&node));
    let mut publish = node.cli();
    publish.env("REPOD_DATA", other.path()).args(["publish"]);
    let (ok, stderr) = exits_within(publish, Duration::from_secs(60));
    assert!(!ok, "an offline publish ran: {stderr}");
    assert!(
        stderr.contains("a running repod publishes this installation")
            && stderr.contains("/publish"),
        "{stderr}"
    );
    assert!(node.log().contains("leading: this node publishes"));
}

/// Runs `sql` on the daemon's database with the stock `psql`.
fn psql(daemon: &Daemon, sql: &str) -> String {
    let url = daemon.database.as_deref().expect("PostgreSQL");
    let out = std::process::Command::new("psql")
        .args([
            "-X",
            "-q",
            "-t",
            "-A",
            "-v",
            "ON_ERROR_STOP=1",
            url,
            "-c",
            sql,
        ])
        .output()
        .expect("psql (scripts/setup installs postgresql)");
    assert!(out.status.success(), "psql {sql}: {out:?}");
    String::from_utf8(out.stdout).unwrap()
}

/// A leader whose lock connection dies while it publishes (a network
/// partition from PostgreSQL, not a crash: the process lives on) cannot
/// make that publish live once another lead began: the fencing token
/// moved on, so its row is refused, and the newer generation the next
/// leader published stays the live one.
#[test]
fn a_leader_that_loses_its_lock_mid_publish_makes_nothing_live() {
    require_cluster();
    let hooks = tempfile::tempdir().unwrap();
    let pause = hooks.path().join("pause");
    let a = leader_held_by(&pause);
    let b = another_node(&a);
    let token = a.token("uploader", "ci");
    let dir = tempfile::tempdir().unwrap();
    // A holds its publish of `old` between its files and its row.
    std::fs::write(&pause, b"").unwrap();
    a.upload_file(
        "jammy",
        &token,
        &fixtures::deb(dir.path(), "old", "1.0-1", "amd64", "", "old"),
    );
    eventually(
        "A is in the middle of a publish",
        Duration::from_secs(10),
        || a.log().contains("test hook: pausing"),
    );
    // Cut A's lock connection: the lock is released at once, and a new
    // lead begins (B's, or A's again under a new token).
    let cut = psql(
        &a,
        "SELECT count(pg_terminate_backend(pid)) FROM pg_locks \
         WHERE locktype = 'advisory' AND classid = 1919247461 \
         AND objid = hashtext(current_schema())::oid AND granted",
    );
    assert_eq!(cut.trim(), "1", "one leader lock held");
    let leads_count = |d: &Daemon| d.log().matches("leading: this node").count();
    eventually("a new lead began", Duration::from_secs(15), || {
        leads(&b) || leads_count(&a) > 1
    });
    // The new leader publishes `new` (and `old`) while A is still held...
    b.upload_file(
        "jammy",
        &token,
        &fixtures::deb(dir.path(), "new", "1.0-1", "amd64", "", "new"),
    );
    let packages = |d: &Daemon| {
        String::from_utf8(
            d.get_bytes("/repos/dists/jammy/main/binary-amd64/Packages")
                .1,
        )
        .unwrap()
    };
    if leads(&b) {
        eventually("B publishes new", Duration::from_secs(30), || {
            packages(&b).contains("Package: new\n")
        });
    }
    // ...then A goes on, and its older generation is refused.
    std::fs::remove_file(&pause).unwrap();
    eventually(
        "A's held publish is refused",
        Duration::from_secs(15),
        || a.log().contains("lost the lead during the publish"),
    );
    eventually("both are served", Duration::from_secs(30), || {
        let listed = packages(&b);
        listed.contains("Package: new\n") && listed.contains("Package: old\n")
    });
    // The live generation never went back: versions only grow.
    let versions: Vec<i64> = psql(
        &a,
        "SELECT version FROM tree_generations WHERE distribution = 'jammy' \
         ORDER BY generation",
    )
    .lines()
    .map(|l| l.trim().parse().unwrap())
    .collect();
    assert!(
        versions.windows(2).all(|w| w[0] <= w[1]),
        "jammy's generations went back: {versions:?}"
    );
    let epoch: i64 = psql(&a, "SELECT epoch FROM leader_epochs WHERE id = 1")
        .trim()
        .parse()
        .unwrap();
    assert!(epoch >= 2, "epoch {epoch}");
}

/// Blob garbage collection runs once across the cluster: a node that
/// starts as a follower leaves the bucket alone, and the node that takes
/// the lead collects what no row refers to (here with no grace), keeping
/// every referenced blob.
#[test]
fn the_leader_alone_collects_stored_blobs() {
    require_cluster();
    let mut a = Daemon::builder().orphan_grace(Duration::ZERO).start();
    eventually("the first node leads", Duration::from_secs(10), || {
        leads(&a)
    });
    let b = another_node(&a);
    let dir = tempfile::tempdir().unwrap();
    let deb = fixtures::deb(dir.path(), "kept", "1.0-1", "amd64", "", "kept");
    let kept = a.upload_file("jammy", &a.admin, &deb).body["sha256"]
        .as_str()
        .unwrap()
        .to_owned();
    // What an upload killed between storing its blob and committing its
    // rows leaves: an object no row names.
    let s3 = a.storage.clone().unwrap();
    let stray = "cd".to_owned() + &"0".repeat(62);
    repod_tests::put_object(&s3, &format!("blobs/sha256/cd/{stray}"), b"orphan");
    let stored = || {
        let mut keys = repod_tests::object_keys(&s3, "blobs/sha256");
        keys.iter_mut()
            .for_each(|k| *k = k.rsplit('/').next().unwrap().to_owned());
        keys.sort();
        keys
    };
    let both = {
        let mut v = vec![kept.clone(), stray.clone()];
        v.sort();
        v
    };
    assert_eq!(stored(), both);
    // A follower starting leaves it alone.
    let c = another_node(&a);
    assert!(!leads(&c));
    assert_eq!(stored(), both, "a follower collected the bucket");
    // The next leader collects it on taking the lead.
    a.kill();
    eventually("B or C leads", Duration::from_secs(15), || {
        leads(&b) || leads(&c)
    });
    eventually(
        "the stray object is collected",
        Duration::from_secs(15),
        || stored() == [kept.clone()],
    );
    let leader = if leads(&b) { &b } else { &c };
    assert!(
        leader
            .log()
            .contains("stored blobs no row refers to collected"),
        "{}",
        leader.log()
    );
}
