//! Crash soak: a mixed workload against a real daemon, killed with SIGKILL
//! at random moments and restarted on the same data, checked after every
//! restart. Nothing acknowledged may be lost, nothing refused may have
//! landed, no orphan blob, temporary upload or staged tree may survive the
//! start-up clean-up, and every tree must be whole: each file its signed
//! index lists (and its by-hash copy) present with that hash, each package
//! file a Packages index names present with its hash, and stock apt and dnf
//! accepting every distribution with signatures checked.
//!
//! `REPOD_SOAK_KILLS` kills (default 10, the CI run; `scripts/soak` runs
//! 100), `REPOD_SOAK_SEED` to replay a run (each run prints its seed). The
//! figures go to stderr and, with `REPOD_SOAK_REPORT=FILE`, to FILE.
//!
//! SQLite and the filesystem only: the blob check reads the `blobs` table.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use repod_tests::apt::{release_sha256, root_for};
use repod_tests::rpm::{Dnf, client_config, ok};
use repod_tests::{Daemon, advisory_record, fixtures};
use serde_json::{Value, json};
use sha2::Digest;

const DEB_DISTS: [&str; 3] = ["jammy", "noble", "focal"];
const RPM_DIST: &str = "almalinux9";
const ADVISORIES: [(&str, &str); 3] = [
    ("USN-6429-1.json", "USN-6429-1"),
    ("USN-6409-1.json", "USN-6409-1"),
    ("UBUNTU-CVE-2023-38545.json", "UBUNTU-CVE-2023-38545"),
];

/// A small deterministic generator (xorshift64*), so a seed replays a run.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// What the daemon answered, by kind. "Unsure" is what was in flight when
/// the daemon died: either outcome is allowed.
#[derive(Default)]
struct Ledger {
    /// Acknowledged uploads still meant to be in jammy: id -> (name, sha256).
    jammy: BTreeMap<String, (String, String)>,
    /// Acknowledged removals from jammy (no rollback touches jammy).
    removed: BTreeMap<String, String>,
    /// Ids whose removal got no answer.
    unsure_removals: BTreeSet<String>,
    /// Acknowledged RPM uploads: name -> sha256.
    rpms: BTreeMap<String, String>,
    /// Names promoted to noble with an answer.
    promoted: BTreeSet<String>,
    /// Names of uploads refused with a 4xx: must be nowhere.
    refused: BTreeSet<String>,
    /// Acknowledged repository versions: (distribution, number).
    versions: BTreeSet<(String, i64)>,
    /// Acknowledged decisions: package id -> justification.
    decisions: BTreeMap<String, String>,
    /// Quarantined uploads waiting for a decision.
    held: Vec<String>,
    /// Advisory ids whose import was acknowledged.
    advisories: BTreeSet<String>,
    /// Operations that got a success answer.
    acknowledged: u64,
    /// Operations refused as the workload meant them to be.
    refusals: u64,
}

struct Workload {
    url: String,
    uploader: String,
    maintainer: String,
    admin: String,
    ledger: Mutex<Ledger>,
    dir: tempfile::TempDir,
}

enum Answer {
    Status(u16, Value),
    /// The connection failed: the daemon is dead (or dying).
    Gone,
}

impl Workload {
    fn call(&self, method: &str, path: &str, token: &str, body: Option<Body>) -> Answer {
        let request = ureq::request(method, &format!("{}{path}", self.url))
            .timeout(Duration::from_secs(60))
            .set("Authorization", &format!("Bearer {token}"));
        let sent = match body {
            None => request.call(),
            Some(Body::Json(v)) => request.send_json(v),
            Some(Body::Bytes(b)) => request
                .set("Content-Type", "application/octet-stream")
                .send_bytes(&b),
        };
        let (status, response) = match sent {
            Ok(r) => (r.status(), r),
            Err(ureq::Error::Status(s, r)) => (s, r),
            Err(ureq::Error::Transport(_)) => return Answer::Gone,
        };
        let text = response.into_string().unwrap_or_default();
        Answer::Status(status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    fn upload(&self, dist: &str, bytes: Vec<u8>) -> Answer {
        self.call(
            "POST",
            &format!("/api/v1/packages?distribution={dist}"),
            &self.uploader,
            Some(Body::Bytes(bytes)),
        )
    }

    fn acked_version(ledger: &mut Ledger, body: &Value) {
        let v = &body["distribution_version"];
        if let (Some(dist), Some(n)) = (v["distribution"].as_str(), v["number"].as_i64()) {
            ledger.versions.insert((dist.to_owned(), n));
        }
    }

    /// Books a success answer (a status in `ok`): `promised` notes what it
    /// promised, the version it names is kept, and it counts as
    /// acknowledged.
    fn booked(&self, answer: &Answer, ok: &[u16], promised: impl FnOnce(&mut Ledger, u16, &Value)) {
        if let Answer::Status(status, body) = answer
            && ok.contains(status)
        {
            let mut l = self.ledger.lock().unwrap();
            promised(&mut l, *status, body);
            Self::acked_version(&mut l, body);
            l.acknowledged += 1;
        }
    }

    /// One random operation; false once the daemon is gone.
    fn step(&self, rng: &mut Rng, tag: &str) -> bool {
        let pick = rng.below(100);
        let answer = match pick {
            // A valid .deb into jammy.
            0..=29 => {
                let name = format!("s{tag}");
                let deb = fixtures::small_deb(
                    &name,
                    "1.0",
                    "amd64",
                    "",
                    &"p".repeat(2000 + rng.below(60_000) as usize),
                );
                let answer = self.upload("jammy", deb);
                self.booked(&answer, &[201], |l, _, body| {
                    l.jammy.insert(
                        body["id"].as_str().unwrap().to_owned(),
                        (name, body["sha256"].as_str().unwrap().to_owned()),
                    );
                });
                answer
            }
            // Something that is not a package: 422, and nothing stored.
            30..=37 => {
                let name = format!("bad{tag}");
                let mut junk = fixtures::small_deb(&name, "1.0", "amd64", "", "x");
                let len = junk.len();
                junk.truncate(len / 2);
                let answer = self.upload("jammy", junk);
                match &answer {
                    Answer::Status(422, _) => {
                        let mut l = self.ledger.lock().unwrap();
                        l.refused.insert(name);
                        l.refusals += 1;
                    }
                    Answer::Status(s, b) => panic!("a truncated .deb got {s}: {b}"),
                    Answer::Gone => {}
                }
                answer
            }
            // An RPM into almalinux9.
            38..=47 => {
                let name = format!("r{tag}");
                let file = fixtures::rpm(self.dir.path(), &name, "1.0", "1", "x86_64", "");
                let answer = self.upload(RPM_DIST, std::fs::read(&file).unwrap());
                let _ = std::fs::remove_file(file);
                self.booked(&answer, &[201], |l, _, body| {
                    l.rpms
                        .insert(name, body["sha256"].as_str().unwrap().to_owned());
                });
                answer
            }
            // Remove an acknowledged package from jammy.
            48..=55 => {
                let target = {
                    let l = self.ledger.lock().unwrap();
                    let n = l.jammy.len() as u64;
                    (n > 0).then(|| l.jammy.keys().nth(rng.below(n) as usize).unwrap().clone())
                };
                let Some(id) = target else { return true };
                let answer = self.call(
                    "DELETE",
                    &format!("/api/v1/packages/{id}"),
                    &self.maintainer,
                    None,
                );
                let mut l = self.ledger.lock().unwrap();
                match &answer {
                    Answer::Status(204, _) => {
                        if let Some((name, _)) = l.jammy.remove(&id) {
                            l.removed.insert(id, name);
                        }
                        l.acknowledged += 1;
                    }
                    Answer::Gone => {
                        l.unsure_removals.insert(id);
                    }
                    _ => {}
                }
                answer
            }
            // Promote a jammy package to noble.
            56..=65 => {
                let target = {
                    let l = self.ledger.lock().unwrap();
                    let n = l.jammy.len() as u64;
                    (n > 0).then(|| {
                        l.jammy
                            .values()
                            .nth(rng.below(n) as usize)
                            .unwrap()
                            .0
                            .clone()
                    })
                };
                let Some(name) = target else { return true };
                let answer = self.call(
                    "POST",
                    "/api/v1/distributions/promote",
                    &self.maintainer,
                    Some(Body::Json(
                        json!({"package": name, "from_dist": "jammy", "to_dist": "noble"}),
                    )),
                );
                self.booked(&answer, &[200, 201], |l, _, _| {
                    l.promoted.insert(name);
                });
                answer
            }
            // Migrate jammy into focal.
            66..=70 => {
                let answer = self.call(
                    "POST",
                    "/api/v1/distributions/migrate",
                    &self.maintainer,
                    Some(Body::Json(json!({"from_dist": "jammy", "to_dist": "focal", "reason": format!("soak {tag}")}))),
                );
                self.booked(&answer, &[200, 201], |_, _, _| {});
                answer
            }
            // Roll focal back to one of its acknowledged versions.
            71..=74 => {
                let target = {
                    let l = self.ledger.lock().unwrap();
                    let focal: Vec<i64> = l
                        .versions
                        .iter()
                        .filter(|(d, _)| d == "focal")
                        .map(|(_, n)| *n)
                        .collect();
                    (!focal.is_empty()).then(|| focal[rng.below(focal.len() as u64) as usize])
                };
                let Some(version) = target else { return true };
                let answer = self.call(
                    "POST",
                    "/api/v1/distributions/focal/rollback",
                    &self.maintainer,
                    Some(Body::Json(
                        json!({"version": version, "reason": format!("soak {tag}")}),
                    )),
                );
                self.booked(&answer, &[200, 201], |_, _, _| {});
                answer
            }
            // A vulnerable libcurl4 (quarantined), then a decision on one.
            75..=84 => {
                let held = self.ledger.lock().unwrap().held.pop();
                match held {
                    None => {
                        let version = format!("7.81.0-1ubuntu1.13~s{}", tag.replace('-', "x"));
                        let deb = fixtures::small_deb(
                            "libcurl4",
                            &version,
                            "amd64",
                            "Source: curl\n",
                            tag,
                        );
                        let answer = self.upload("jammy", deb);
                        self.booked(&answer, &[201, 202], |l, status, body| {
                            if status == 202 {
                                l.held.push(body["id"].as_str().unwrap().to_owned());
                            }
                        });
                        answer
                    }
                    Some(id) => {
                        let justification = format!("soak decision {tag}");
                        let answer = self.call(
                            "POST",
                            &format!("/api/v1/packages/{id}/decision"),
                            &self.maintainer,
                            Some(Body::Json(
                                json!({"decision": "approve", "justification": justification}),
                            )),
                        );
                        self.booked(&answer, &[201], |l, _, _| {
                            l.decisions.insert(id, justification);
                        });
                        answer
                    }
                }
            }
            // Import an advisory.
            85..=89 => {
                let (file, id) = ADVISORIES[rng.below(ADVISORIES.len() as u64) as usize];
                let answer = self.call(
                    "POST",
                    "/api/v1/advisories",
                    &self.admin,
                    Some(Body::Bytes(advisory_record(file))),
                );
                self.booked(&answer, &[200], |l, _, _| {
                    l.advisories.insert(id.to_owned());
                });
                answer
            }
            // A forced publish.
            _ => {
                let dist = ["jammy", "noble", "focal", RPM_DIST][rng.below(4) as usize];
                let answer = self.call(
                    "POST",
                    &format!("/api/v1/distributions/{dist}/publish"),
                    &self.uploader,
                    Some(Body::Json(json!({}))),
                );
                self.booked(&answer, &[200], |_, _, _| {});
                answer
            }
        };
        match answer {
            Answer::Gone => false,
            Answer::Status(s, body) if s >= 500 => panic!("{s} from the daemon: {body}"),
            Answer::Status(..) => true,
        }
    }
}

enum Body {
    Json(Value),
    Bytes(Vec<u8>),
}

fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(sha2::Sha256::digest(bytes))
}

/// Every distribution's contents: dist -> [(id, name, sha256)].
fn contents(daemon: &Daemon) -> BTreeMap<String, Vec<(String, String, String)>> {
    DEB_DISTS
        .iter()
        .chain([&RPM_DIST])
        .map(|dist| {
            let reply = daemon.get(
                &format!("/api/v1/distributions/{dist}/packages"),
                Some(&daemon.admin),
            );
            assert_eq!(reply.status, 200, "{}", reply.body);
            let rows = reply.body["packages"]
                .as_array()
                .unwrap()
                .iter()
                .map(|p| {
                    let s = |k: &str| p[k].as_str().unwrap().to_owned();
                    (s("id"), s("name"), s("sha256"))
                })
                .collect();
            (dist.to_string(), rows)
        })
        .collect()
}

/// The ledger's promises, against what the restarted daemon holds.
fn check_ledger(daemon: &Daemon, ledger: &Ledger, round: usize) {
    let contents = contents(daemon);
    let jammy: BTreeMap<&str, &str> = contents["jammy"]
        .iter()
        .map(|(id, _, sha)| (id.as_str(), sha.as_str()))
        .collect();
    for (id, (name, sha)) in &ledger.jammy {
        if ledger.unsure_removals.contains(id) {
            continue;
        }
        assert_eq!(
            jammy.get(id.as_str()),
            Some(&sha.as_str()),
            "round {round}: acknowledged upload {name} ({id}) lost"
        );
    }
    for (id, name) in &ledger.removed {
        assert!(
            !jammy.contains_key(id.as_str()),
            "round {round}: acknowledged removal of {name} undone"
        );
    }
    let noble: BTreeSet<&str> = contents["noble"]
        .iter()
        .map(|(_, n, _)| n.as_str())
        .collect();
    for name in &ledger.promoted {
        assert!(
            noble.contains(name.as_str()),
            "round {round}: acknowledged promotion of {name} lost"
        );
    }
    let rpms: BTreeMap<&str, &str> = contents[RPM_DIST]
        .iter()
        .map(|(_, n, s)| (n.as_str(), s.as_str()))
        .collect();
    for (name, sha) in &ledger.rpms {
        assert_eq!(
            rpms.get(name.as_str()),
            Some(&sha.as_str()),
            "round {round}: acknowledged RPM {name} lost"
        );
    }
    let everywhere: BTreeSet<&str> = contents
        .values()
        .flatten()
        .map(|(_, n, _)| n.as_str())
        .collect();
    for name in &ledger.refused {
        assert!(
            !everywhere.contains(name.as_str()),
            "round {round}: refused upload {name} was stored"
        );
    }
    for dist in DEB_DISTS.iter().chain([&RPM_DIST]) {
        // Every kept version, a page of 1,000 at a time (newest first).
        let mut kept: BTreeSet<i64> = BTreeSet::new();
        let mut before = String::new();
        loop {
            let reply = daemon.get(
                &format!("/api/v1/distributions/{dist}/versions?limit=1000{before}"),
                Some(&daemon.admin),
            );
            assert_eq!(reply.status, 200, "{}", reply.body);
            let page: Vec<i64> = reply.body["versions"]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v["number"].as_i64().unwrap())
                .collect();
            kept.extend(&page);
            match page.iter().min() {
                Some(oldest) if page.len() == 1000 => before = format!("&before={oldest}"),
                _ => break,
            }
        }
        for (_, n) in ledger.versions.iter().filter(|(d, _)| d == dist) {
            assert!(
                kept.contains(n),
                "round {round}: acknowledged version {dist}/{n} lost"
            );
        }
    }
    for (id, justification) in &ledger.decisions {
        let reply = daemon.get(
            &format!("/api/v1/packages/{id}/details"),
            Some(&daemon.admin),
        );
        assert_eq!(
            reply.status, 200,
            "round {round}: approved package {id}: {}",
            reply.body
        );
        assert!(
            reply.body.to_string().contains(justification.as_str()),
            "round {round}: decision {justification:?} on {id} lost"
        );
    }
    for id in &ledger.advisories {
        let reply = daemon.get(&format!("/api/v1/advisories/{id}"), Some(&daemon.admin));
        assert_eq!(
            reply.status, 200,
            "round {round}: imported advisory {id} lost: {}",
            reply.body
        );
    }
}

/// No orphan or torn blob, no temporary upload, no staged tree.
fn check_leftovers(daemon: &Daemon, round: usize) {
    let data = daemon.data.path();
    let files = fixtures::snapshot(&data.join("blobs"));
    let mut on_disk = BTreeSet::new();
    for (path, bytes) in &files {
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        assert_eq!(
            sha256_hex(bytes),
            name,
            "round {round}: blob {name} is torn"
        );
        on_disk.insert(name);
    }
    let out = std::process::Command::new("python3")
        .args(["-c", "import sqlite3,sys; c=sqlite3.connect('file:'+sys.argv[1]+'?mode=ro', uri=True); print('\\n'.join(r[0] for r in c.execute('SELECT sha256 FROM blobs')))"])
        .arg(data.join("repod.db"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let rows: BTreeSet<String> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect();
    assert_eq!(
        on_disk, rows,
        "round {round}: blob files and blob rows differ (orphans or losses)"
    );
    assert!(
        fixtures::snapshot(&data.join("tmp")).is_empty(),
        "round {round}: temporary uploads left"
    );
    let staging = data.join("publish/staging");
    assert!(
        !staging.exists() || fixtures::snapshot(&staging).is_empty(),
        "round {round}: a staged tree survived: {:?}",
        fixtures::snapshot(&staging)
            .iter()
            .map(|(p, _)| p.clone())
            .take(5)
            .collect::<Vec<_>>()
    );
}

/// The trees as the restarted daemon serves them, before anything is
/// published again: every index the signed Release lists (by hash), and
/// every package file a Packages names, with their hashes; the RPM tree's
/// repomd-listed files likewise. Returns the files checked.
///
/// A tree not in `published` (none was served before the first kill) may
/// still be missing; one that is found joins it.
fn check_trees(daemon: &Daemon, round: usize, published: &mut BTreeSet<String>) -> usize {
    let mut checked = 0;
    for dist in DEB_DISTS {
        let (status, in_release) = daemon.get_bytes(&format!("/repos/dists/{dist}/InRelease"));
        if status == 404 && !published.contains(dist) {
            continue;
        }
        assert_eq!(status, 200, "round {round}: {dist} has no InRelease");
        published.insert(dist.to_owned());
        let release = String::from_utf8(in_release).unwrap();
        for (path, (size, sha)) in release_sha256(&release) {
            // By hash: the start-up publishes may replace the plain-named
            // file between reading InRelease and it (apt reads by hash).
            let dir = path.rsplit_once('/').map_or("", |(d, _)| d);
            let by_hash = format!("/repos/dists/{dist}/{dir}/by-hash/SHA256/{sha}");
            let (status, bytes) = daemon.get_bytes(&by_hash);
            if status == 404 && daemon.get_bytes(&format!("/repos/dists/{dist}/{path}")).0 == 404 {
                // Release may list an uncompressed index it does not ship.
                continue;
            }
            assert_eq!(
                (status, bytes.len() as u64, sha256_hex(&bytes)),
                (200, size, sha.clone()),
                "round {round}: {by_hash} ({dist}/{path})"
            );
            checked += 1;
            if path.ends_with("/Packages") {
                let text = String::from_utf8(bytes).unwrap();
                for stanza in text.split("\n\n").filter(|s| !s.trim().is_empty()) {
                    let field = |k: &str| {
                        stanza
                            .lines()
                            .find_map(|l| l.strip_prefix(k))
                            .map(str::trim)
                            .unwrap()
                    };
                    let (file, want) = (field("Filename:"), field("SHA256:"));
                    let (status, deb) = daemon.get_bytes(&format!("/repos/{file}"));
                    assert_eq!(
                        (status, sha256_hex(&deb)),
                        (200, want.to_owned()),
                        "round {round}: {file} listed in {dist}"
                    );
                    checked += 1;
                }
            }
        }
    }
    for arch in ["x86_64", "aarch64"] {
        let tree = format!("{RPM_DIST}/{arch}");
        let (status, repomd) = daemon.get_bytes(&format!("/repos/{tree}/repodata/repomd.xml"));
        if status == 404 && !published.contains(&tree) {
            continue;
        }
        assert_eq!(status, 200, "round {round}: {tree} has no repomd.xml");
        published.insert(tree.clone());
        let repomd = String::from_utf8(repomd).unwrap();
        let doc = roxmltree::Document::parse(&repomd).unwrap();
        for data in doc.descendants().filter(|n| n.has_tag_name("data")) {
            let child = |t: &str| data.children().find(|c| c.has_tag_name(t)).unwrap();
            let href = child("location").attribute("href").unwrap();
            let sum = child("checksum");
            if sum.attribute("type") != Some("sha256") {
                continue;
            }
            let (status, bytes) = daemon.get_bytes(&format!("/repos/{tree}/{href}"));
            assert_eq!(
                (status, sha256_hex(&bytes)),
                (200, sum.text().unwrap().to_owned()),
                "round {round}: {tree}/{href}"
            );
            checked += 1;
        }
    }
    checked
}

/// Stock apt (each deb distribution) and dnf read the trees, signatures on,
/// from fresh roots.
fn check_clients(daemon: &Daemon, key: &[u8]) {
    for dist in DEB_DISTS {
        root_for(daemon, dist, "", "amd64", &[], key)
            .update()
            .assert_ok();
    }
    let dnf = Dnf::new(&client_config(daemon, RPM_DIST), "x86_64");
    ok(&mut dnf.cmd(&["makecache"]));
}

#[test]
fn killed_at_random_moments_loses_nothing_acknowledged() {
    let kills: usize = std::env::var("REPOD_SOAK_KILLS")
        .ok()
        .map_or(10, |v| v.parse().unwrap());
    let seed: u64 = std::env::var("REPOD_SOAK_SEED").ok().map_or_else(
        || {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
                | 1
        },
        |v| v.parse().unwrap(),
    );
    eprintln!("soak: seed {seed} (replay: REPOD_SOAK_SEED={seed}), {kills} kills");
    let mut daemon = Daemon::builder()
        .sqlite()
        .filesystem()
        .config("[versions]\nkeep-last = 100000\n")
        .start();
    let work = Arc::new(Workload {
        url: daemon.url.clone(),
        uploader: daemon.token("uploader", "soak"),
        maintainer: daemon.token("maintainer", "soak-release"),
        admin: daemon.admin.clone(),
        ledger: Mutex::default(),
        dir: tempfile::tempdir().unwrap(),
    });
    let key = daemon.served_key();
    let mut rng = Rng(seed);
    let started = Instant::now();
    let mut files_checked = 0;
    let mut published = BTreeSet::new();
    for round in 0..kills {
        let stop = Arc::new(AtomicBool::new(false));
        let workers: Vec<_> = (0..3)
            .map(|w| {
                let (work, stop) = (work.clone(), stop.clone());
                let mut rng = Rng(rng.next() | 1);
                std::thread::spawn(move || {
                    let mut k = 0;
                    while !stop.load(Ordering::Relaxed)
                        && work.step(&mut rng, &format!("{round}-{w}-{k}"))
                    {
                        k += 1;
                    }
                })
            })
            .collect();
        // Kill somewhere between 0.2 and 3 s into the round.
        std::thread::sleep(Duration::from_millis(200 + rng.below(2800)));
        daemon.kill();
        stop.store(true, Ordering::Relaxed);
        for w in workers {
            w.join().expect("a worker failed (see its panic above)");
        }
        daemon.restart();
        let ledger = work.ledger.lock().unwrap();
        check_ledger(&daemon, &ledger, round);
        drop(ledger);
        files_checked += check_trees(&daemon, round, &mut published);
        // Once the start-up publishes are done, nothing is in flight.
        daemon.publish_all();
        files_checked += check_trees(&daemon, round, &mut published);
        check_leftovers(&daemon, round);
        check_clients(&daemon, &key);
        eprintln!("soak: round {round} survived ({:?} in)", started.elapsed());
    }
    let l = work.ledger.lock().unwrap();
    let report = format!(
        "seed {seed}: {kills} kills survived, {} operations acknowledged ({} uploads kept, {} removals, \
         {} promotions, {} RPMs, {} versions, {} decisions, {} advisories), {} refusals, \
         {files_checked} served files hash-checked, 0 losses, in {:?}",
        l.acknowledged,
        l.jammy.len(),
        l.removed.len(),
        l.promoted.len(),
        l.rpms.len(),
        l.versions.len(),
        l.decisions.len(),
        l.advisories.len(),
        l.refusals,
        started.elapsed()
    );
    eprintln!("soak: {report}");
    if let Ok(path) = std::env::var("REPOD_SOAK_REPORT") {
        std::fs::write(path, format!("{report}\n")).unwrap();
    }
    assert!(
        l.acknowledged >= kills as u64,
        "too little work was acknowledged to prove anything: {report}"
    );
    assert!(
        !l.versions.is_empty() && !l.jammy.is_empty() && !l.refused.is_empty(),
        "{report}"
    );
}
