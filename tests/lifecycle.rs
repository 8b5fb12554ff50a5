//! Rollout tiers over the API: promotion, migration, versions, rollback,
//! pinned trees, retention, init, retirement and re-preparation, against a
//! real daemon. What stock apt and dnf make of it is in `lifecycle_e2e.rs`.

use std::process::Command;
use std::time::{Duration, Instant};

use repod_tests::fixtures::small_deb;
use repod_tests::{Daemon, Reply, repod_bin};
use serde_json::{Value, json};

fn deb(name: &str, version: &str, arch: &str) -> Vec<u8> {
    small_deb(name, version, arch, "", name)
}

/// Uploads `bytes` into `dist`; asserts 201 and returns the package record.
fn upload(daemon: &Daemon, token: &str, dist: &str, bytes: &[u8]) -> Value {
    let reply = daemon.upload(
        &format!("/api/v1/packages?distribution={dist}"),
        Some(token),
        bytes,
    );
    assert_eq!(reply.status, 201, "into {dist}: {}", reply.body);
    reply.body
}

fn promote(daemon: &Daemon, token: &str, body: Value) -> Reply {
    daemon.post_json("/api/v1/distributions/promote", Some(token), body)
}

/// (name, version, architecture, sha256) of a distribution's packages now.
fn content(daemon: &Daemon, dist: &str) -> Vec<(String, String, String, String)> {
    let reply = daemon.get(
        &format!("/api/v1/distributions/{dist}/packages"),
        Some(&daemon.admin),
    );
    assert_eq!(reply.status, 200, "{}", reply.body);
    let mut out: Vec<_> = reply.body["packages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["name"].as_str().unwrap().to_owned(),
                p["version"].as_str().unwrap().to_owned(),
                p["architecture"].as_str().unwrap().to_owned(),
                p["sha256"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    out.sort();
    out
}

fn versions(daemon: &Daemon, dist: &str) -> Value {
    let reply = daemon.get(
        &format!("/api/v1/distributions/{dist}/versions"),
        Some(&daemon.admin),
    );
    assert_eq!(reply.status, 200, "{}", reply.body);
    reply.body
}

fn text(daemon: &Daemon, path: &str) -> String {
    let (status, body) = daemon.get_bytes(path);
    assert_eq!(status, 200, "GET {path}");
    String::from_utf8(body).unwrap()
}

/// `Package` + `Version` pairs of a Packages file.
fn packages_file(daemon: &Daemon, path: &str) -> Vec<(String, String)> {
    let body = text(daemon, path);
    let mut out = Vec::new();
    for stanza in body.split("\n\n").filter(|s| !s.trim().is_empty()) {
        let field = |f: &str| {
            stanza
                .lines()
                .find_map(|l| l.strip_prefix(&format!("{f}: ")))
                .unwrap_or_default()
                .to_owned()
        };
        out.push((field("Package"), field("Version")));
    }
    out.sort();
    out
}

fn audit(daemon: &Daemon) -> Vec<Value> {
    let reply = daemon.get("/api/v1/audit", Some(&daemon.admin));
    assert_eq!(reply.status, 200);
    reply.body["entries"].as_array().unwrap().clone()
}

#[test]
fn promotion_is_by_reference_newest_first_idempotent_and_audited() {
    let daemon = Daemon::start();
    let up = daemon.token("uploader", "ci");
    let maintainer = daemon.token("maintainer", "release");
    let old = upload(&daemon, &up, "jammy", &deb("hello", "1.0-1", "amd64"));
    // 1.10 sorts above 1.9 by dpkg's rules, not by bytes.
    for arch in ["amd64", "arm64"] {
        upload(&daemon, &up, "jammy", &deb("hello", "1.10-1", arch));
    }
    upload(&daemon, &up, "jammy", &deb("hello", "1.9-1", "amd64"));

    let started = Instant::now();
    let reply = promote(
        &daemon,
        &maintainer,
        json!({"package": "hello", "from_dist": "jammy", "to_dist": "noble", "reason": "QA passed"}),
    );
    assert_eq!(reply.status, 201, "{}", reply.body);
    let answer = &reply.body;
    assert_eq!(answer["version"], "1.10-1");
    assert_eq!(answer["promoted"].as_array().unwrap().len(), 2, "{answer}");
    assert_eq!(answer["distribution_version"]["number"], 1);
    assert_eq!(answer["distribution_version"]["action"], "promote");
    assert_eq!(answer["distribution_version"]["actor"], "release");
    assert_eq!(answer["distribution_version"]["reason"], "QA passed");
    // The call returned once noble's tree showed it.
    assert_eq!(answer["publish"]["version"], 1, "{answer}");
    assert_eq!(
        packages_file(&daemon, "/repos/dists/noble/main/binary-arm64/Packages"),
        [("hello".to_owned(), "1.10-1".to_owned())]
    );
    eprintln!("promotion live in {:?}", started.elapsed());

    // Same blobs: the rows point at the jammy uploads' sha256.
    let jammy = content(&daemon, "jammy");
    let noble = content(&daemon, "noble");
    assert_eq!(noble.len(), 2);
    for p in &noble {
        assert!(jammy.contains(p), "{p:?} is not jammy's file");
    }
    let blobs = repod_tests::fixtures::snapshot(&daemon.data.path().join("blobs"));
    assert_eq!(blobs.len(), 4, "no new bytes stored");

    // Again: nothing changes.
    let again = promote(
        &daemon,
        &maintainer,
        json!({"package": "hello", "from_dist": "jammy", "to_dist": "noble"}),
    );
    assert_eq!(again.status, 200, "{}", again.body);
    assert!(again.body["promoted"].as_array().unwrap().is_empty());
    assert_eq!(again.body["already_present"].as_array().unwrap().len(), 2);
    assert!(again.body["distribution_version"].is_null());
    assert_eq!(versions(&daemon, "noble")["latest"], 1);

    // One version and one architecture, asked for.
    let reply = promote(
        &daemon,
        &maintainer,
        json!({"package": "hello", "from_dist": "jammy", "to_dist": "noble",
               "version": "1.0-1", "architecture": "amd64"}),
    );
    assert_eq!(reply.status, 201, "{}", reply.body);
    let promoted = reply.body["promoted"].as_array().unwrap();
    assert_eq!(promoted.len(), 1);
    assert_eq!(promoted[0]["sha256"], old["sha256"]);
    // It remembers where it came from (a scan decision will follow it).
    assert_eq!(promoted[0]["origin"], old["id"]);
    assert!(old["origin"].is_null());
    assert_eq!(reply.body["distribution_version"]["number"], 2);

    let entries = audit(&daemon);
    let promotions: Vec<&Value> = entries
        .iter()
        .filter(|e| e["action"] == "distribution.promote")
        .collect();
    assert_eq!(promotions.len(), 2, "{entries:?}");
    assert!(
        promotions.iter().any(|e| e["actor"] == "release"
            && e["target"] == "noble"
            && e["detail"]
                .as_str()
                .unwrap()
                .contains("hello 1.10-1 (amd64, arm64) jammy -> noble: QA passed")),
        "{promotions:?}"
    );
}

#[test]
fn promotion_refusals_are_clear_and_change_nothing() {
    let daemon = Daemon::builder()
        .config("[plugin.debian.distributions.noble]\narchitectures = [\"amd64\", \"all\"]\n")
        .start();
    let up = daemon.token("uploader", "ci");
    let admin = daemon.admin.clone();
    upload(&daemon, &up, "jammy", &deb("hello", "1.0", "amd64"));
    upload(&daemon, &up, "jammy", &deb("hello", "1.0", "arm64"));
    upload(&daemon, &up, "jammy", &deb("other", "2.0", "amd64"));
    // noble has other 2.0 amd64 from a different file (another source
    // package, so another pool path).
    let mut bytes = small_deb("other", "2.0", "amd64", "Source: other-fork\n", "fork");
    upload(&daemon, &up, "noble", &bytes);
    bytes.clear();
    let before = content(&daemon, "noble");
    let body = |extra: Value| {
        let mut b = json!({"package": "hello", "from_dist": "jammy", "to_dist": "noble"});
        for (k, v) in extra.as_object().unwrap() {
            b[k] = v.clone();
        }
        b
    };

    let cases: Vec<(Value, u16, &str)> = vec![
        (
            body(json!({"to_dist": "nonesuch"})),
            404,
            "no distribution nonesuch",
        ),
        (
            body(json!({"from_dist": "nonesuch"})),
            404,
            "no distribution nonesuch",
        ),
        (
            body(json!({"package": "absent"})),
            404,
            "jammy has no package absent",
        ),
        (
            body(json!({"version": "9.9"})),
            404,
            "jammy has no hello version 9.9 (it has 1.0)",
        ),
        (
            body(json!({"architecture": "s390x"})),
            404,
            "hello 1.0 for amd64, arm64, not s390x",
        ),
        (
            body(json!({"to_dist": "almalinux9"})),
            400,
            "different families",
        ),
        (body(json!({"to_dist": "jammy"})), 400, "both jammy"),
        (
            body(json!({})),
            409,
            "noble does not support architecture arm64 of hello 1.0 (it supports amd64, all)",
        ),
        (
            body(json!({"package": "other"})),
            409,
            "noble already has other 2.0 amd64 from a different file",
        ),
        (
            json!({"package": "hello", "from_dist": "jammy"}),
            400,
            "missing field `to_dist`",
        ),
        (
            body(json!({"priority": 1})),
            400,
            "unknown field `priority`",
        ),
    ];
    for (request, status, needle) in cases {
        let reply = promote(&daemon, &admin, request.clone());
        let detail = reply.problem(status);
        assert!(detail.contains(needle), "{request}: {detail}");
    }
    assert_eq!(content(&daemon, "noble"), before);
    assert_eq!(versions(&daemon, "noble")["latest"], 1, "only the upload");

    // The supported architecture alone goes through.
    let reply = promote(&daemon, &admin, body(json!({"architecture": "amd64"})));
    assert_eq!(reply.status, 201, "{}", reply.body);
}

#[test]
fn migration_copies_everything_it_can_in_one_version_and_says_why_not() {
    let daemon = Daemon::builder()
        .config("[plugin.debian.distributions.jammy]\narchitectures = [\"amd64\", \"all\"]\n")
        .start();
    let up = daemon.token("uploader", "ci");
    let maintainer = daemon.token("maintainer", "release");
    for (name, arch) in [
        ("alpha", "amd64"),
        ("bravo", "arm64"),
        ("charlie", "all"),
        ("delta", "amd64"),
    ] {
        upload(&daemon, &up, "focal", &deb(name, "1.0", arch));
    }
    upload(
        &daemon,
        &up,
        "jammy",
        &small_deb("delta", "1.0", "amd64", "Source: delta-fork\n", "fork"),
    );
    let request = json!({"from_dist": "focal", "to_dist": "jammy", "reason": "new baseline"});
    let reply = daemon.post_json(
        "/api/v1/distributions/migrate",
        Some(&maintainer),
        request.clone(),
    );
    assert_eq!(reply.status, 200, "{}", reply.body);
    let answer = &reply.body;
    assert_eq!(answer["copied"], 2, "{answer}");
    assert_eq!(answer["already_present"], 0);
    assert_eq!(answer["skipped"], 2);
    let skips = answer["skips"].as_array().unwrap();
    assert_eq!(skips[0]["name"], "bravo");
    assert!(
        skips[0]["reason"]
            .as_str()
            .unwrap()
            .contains("jammy does not support architecture arm64"),
        "{skips:?}"
    );
    assert_eq!(skips[1]["name"], "delta");
    assert!(
        skips[1]["reason"]
            .as_str()
            .unwrap()
            .contains("jammy already has delta 1.0 amd64 from a different file"),
        "{skips:?}"
    );
    // One version, one publish, and the source untouched.
    assert_eq!(answer["distribution_version"]["number"], 2);
    assert_eq!(answer["distribution_version"]["added"], 2);
    assert_eq!(answer["publish"]["version"], 2);
    assert_eq!(answer["publish"]["packages"], 3);
    assert_eq!(content(&daemon, "focal").len(), 4);
    let names: Vec<String> = content(&daemon, "jammy").into_iter().map(|p| p.0).collect();
    assert_eq!(names, ["alpha", "charlie", "delta"]);

    let again = daemon.post_json("/api/v1/distributions/migrate", Some(&maintainer), request);
    assert_eq!(again.status, 200);
    assert_eq!(again.body["copied"], 0);
    assert_eq!(again.body["already_present"], 2);
    assert_eq!(again.body["skipped"], 2);
    assert!(again.body["distribution_version"].is_null());
    assert_eq!(versions(&daemon, "jammy")["latest"], 2);
    assert!(audit(&daemon).iter().any(|e| {
        e["action"] == "distribution.migrate"
            && e["detail"]
                .as_str()
                .unwrap()
                .contains("focal -> jammy: 2 copied, 0 already present, 2 skipped: new baseline")
    }),);

    for (request, status) in [
        (json!({"from_dist": "focal", "to_dist": "almalinux9"}), 400),
        (json!({"from_dist": "focal", "to_dist": "focal"}), 400),
        (json!({"from_dist": "gone", "to_dist": "jammy"}), 404),
        (json!({"from_dist": "focal"}), 400),
    ] {
        daemon
            .post_json("/api/v1/distributions/migrate", Some(&maintainer), request)
            .problem(status);
    }
}

#[test]
fn every_change_is_a_version_and_rollback_restores_one_exactly() {
    let daemon = Daemon::start();
    let up = daemon.token("uploader", "ci");
    let maintainer = daemon.token("maintainer", "release");
    let a = upload(&daemon, &up, "jammy", &deb("alpha", "1", "amd64"));
    let b = daemon.upload(
        "/api/v1/packages?distribution=jammy&reason=nightly",
        Some(&up),
        &deb("bravo", "1", "amd64"),
    );
    assert_eq!(b.body["distribution_version"], 2);
    let removed = daemon.delete(
        &format!(
            "/api/v1/packages/{}?reason=broken",
            a["id"].as_str().unwrap()
        ),
        Some(&maintainer),
    );
    assert_eq!(removed.status, 204);

    let rollback = |body: Value| {
        daemon.post_json(
            "/api/v1/distributions/jammy/rollback",
            Some(&maintainer),
            body,
        )
    };
    let reply = rollback(json!({"version": 1, "reason": "b breaks the installer"}));
    assert_eq!(reply.status, 201, "{}", reply.body);
    assert_eq!(reply.body["distribution_version"]["number"], 4);
    assert_eq!(
        (reply.body["added"].clone(), reply.body["removed"].clone()),
        (json!(1), json!(1))
    );
    assert_eq!(reply.body["publish"]["version"], 4);
    let names: Vec<String> = content(&daemon, "jammy").into_iter().map(|p| p.0).collect();
    assert_eq!(names, ["alpha"]);
    // The same row is back: same id, same blob.
    let listed = daemon.get("/api/v1/distributions/jammy/packages", Some(&up));
    assert_eq!(listed.body["packages"][0]["id"], a["id"]);

    let list = versions(&daemon, "jammy");
    assert_eq!(list["latest"], 4);
    assert_eq!(list["oldest"], 1);
    assert_eq!(list["published"], 4);
    // Pages: two at a time, then below the last one shown.
    let page = daemon.get("/api/v1/distributions/jammy/versions?limit=2", Some(&up));
    let numbers = |r: &Reply| -> Vec<i64> {
        r.body["versions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v["number"].as_i64().unwrap())
            .collect()
    };
    assert_eq!(numbers(&page), [4, 3]);
    let next = daemon.get(
        "/api/v1/distributions/jammy/versions?limit=2&before=3",
        Some(&up),
    );
    assert_eq!(numbers(&next), [2, 1]);
    daemon
        .get("/api/v1/distributions/jammy/versions?limit=0", Some(&up))
        .problem(400);
    let rows: Vec<(i64, String, String, i64, i64, i64)> = list["versions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| {
            (
                v["number"].as_i64().unwrap(),
                v["action"].as_str().unwrap().to_owned(),
                v["reason"].as_str().unwrap().to_owned(),
                v["added"].as_i64().unwrap(),
                v["removed"].as_i64().unwrap(),
                v["packages"].as_i64().unwrap(),
            )
        })
        .collect();
    let row = |n, action: &str, reason: &str, added, removed, packages| {
        (
            n,
            action.to_owned(),
            reason.to_owned(),
            added,
            removed,
            packages,
        )
    };
    assert_eq!(
        rows,
        [
            row(4, "rollback", "b breaks the installer", 1, 1, 1),
            row(3, "remove", "broken", 0, 1, 1),
            row(2, "upload", "nightly", 1, 0, 2),
            row(1, "upload", "", 1, 0, 1),
        ]
    );
    let v2 = daemon.get("/api/v1/distributions/jammy/versions/2", Some(&up));
    assert_eq!(v2.status, 200, "{}", v2.body);
    let names = |key: &str| -> Vec<String> {
        v2.body[key]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["name"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(names("content"), ["alpha", "bravo"]);
    assert_eq!(names("added_packages"), ["bravo"]);
    assert!(names("removed_packages").is_empty());
    assert_eq!(v2.body["tree"], "/repos/versions/jammy/2/");
    assert_eq!(v2.body["actor"], "ci");

    // Back to version 4's content: nothing to do.
    let same = rollback(json!({"version": 4}));
    assert_eq!(same.status, 200, "{}", same.body);
    assert!(same.body["distribution_version"].is_null());
    // Forward again, to version 2.
    let forward = rollback(json!({"version": 2}));
    assert_eq!(forward.status, 201);
    let names: Vec<String> = content(&daemon, "jammy").into_iter().map(|p| p.0).collect();
    assert_eq!(names, ["alpha", "bravo"]);

    let detail = rollback(json!({"version": 99})).problem(404);
    assert!(
        detail.contains("jammy has no version 99: its latest is 5"),
        "{detail}"
    );
    rollback(json!({"version": 0})).problem(400);
    rollback(json!({"reason": "x"})).problem(400);
    daemon
        .post_json(
            "/api/v1/distributions/nonesuch/rollback",
            Some(&maintainer),
            json!({"version": 1}),
        )
        .problem(404);
    daemon
        .get("/api/v1/distributions/jammy/versions/99", Some(&up))
        .problem(404);
    daemon
        .get("/api/v1/distributions/jammy/versions/x", Some(&up))
        .problem(400);
    let rollbacks = audit(&daemon)
        .into_iter()
        .filter(|e| e["action"] == "distribution.rollback")
        .count();
    assert_eq!(rollbacks, 2);
}

#[test]
fn a_pinned_tree_keeps_serving_its_version_while_the_tier_moves_on() {
    // Superseded generations are not kept: the old package is in no live
    // tree's files, so the pinned tree must find it on its own.
    let daemon = Daemon::builder()
        .config("[publish]\nkeep-superseded-seconds = 0\n")
        .start();
    let up = daemon.token("uploader", "ci");
    let maintainer = daemon.token("maintainer", "release");
    let old = upload(&daemon, &up, "jammy", &deb("old", "1", "amd64"));
    daemon.publish("jammy", &up);
    upload(&daemon, &up, "jammy", &deb("new", "1", "amd64"));
    let path = format!("/api/v1/packages/{}", old["id"].as_str().unwrap());
    assert_eq!(daemon.delete(&path, Some(&maintainer)).status, 204);
    daemon.publish("jammy", &up);

    let packages = "dists/jammy/main/binary-amd64/Packages";
    assert_eq!(
        packages_file(&daemon, &format!("/repos/{packages}")),
        [("new".to_owned(), "1".to_owned())]
    );
    // Version 1 was never published on its own by name: built on demand.
    let one = |rest: &str| format!("/repos/versions/jammy/1/{rest}");
    assert_eq!(
        packages_file(&daemon, &one(packages)),
        [("old".to_owned(), "1".to_owned())]
    );
    let inrelease = text(&daemon, &one("dists/jammy/InRelease"));
    assert!(inrelease.contains("Codename: jammy"));
    // Its package file comes from the shared pool; files it does not list,
    // and the live tree's indexes, are not served under it.
    let (status, body) = daemon.get_bytes(&one("pool/main/o/old/old_1_amd64.deb"));
    assert_eq!((status, body), (200, deb("old", "1", "amd64")));
    if daemon.storage.is_some() {
        // With an object store every package file is served from the blob
        // store: the publisher links no pool of its own.
        assert!(!daemon.data.path().join("repos/pool").exists());
    }
    assert_eq!(
        daemon.get_bytes(&one("pool/main/n/new/new_1_amd64.deb")).0,
        404
    );
    assert_eq!(daemon.get_bytes(&one("dists/noble/InRelease")).0, 404);
    assert_eq!(
        daemon
            .get_bytes("/repos/versions/jammy/9/dists/jammy/InRelease")
            .0,
        404
    );
    assert_eq!(daemon.get_bytes("/repos/versions/nonesuch/1/x").0, 404);
    // One spelling per version: no second tree for `01` or `+1`.
    for spelling in ["01", "+1", "1.0"] {
        let path = format!("/repos/versions/jammy/{spelling}/dists/jammy/InRelease");
        assert_eq!(daemon.get_bytes(&path).0, 404, "{spelling}");
    }
    // Built once: the same bytes later, after more changes.
    upload(&daemon, &up, "jammy", &deb("newer", "1", "amd64"));
    daemon.publish("jammy", &up);
    assert_eq!(text(&daemon, &one("dists/jammy/InRelease")), inrelease);

    // The client config points at it and is named apart.
    let config = daemon.get(
        "/api/v1/distributions/jammy/client-config?version=1",
        Some(&up),
    );
    assert_eq!(config.status, 200, "{}", config.body);
    let sources = config.body.as_str().unwrap();
    assert!(
        sources.contains(&format!("URIs: {}/repos/versions/jammy/1\n", daemon.url)),
        "{sources}"
    );
    assert!(sources.contains("version 1 (pinned"), "{sources}");
    daemon
        .get(
            "/api/v1/distributions/jammy/client-config?version=77",
            Some(&up),
        )
        .problem(404);
    daemon
        .get(
            "/api/v1/distributions/jammy/client-config?version=-1",
            Some(&up),
        )
        .problem(400);
}

#[test]
fn at_most_sixteen_pinned_trees_stay_on_disk_per_distribution() {
    let daemon = Daemon::builder()
        .config("[versions]\nkeep-last = 30\n")
        .start();
    let up = daemon.token("uploader", "ci");
    for i in 0..18 {
        upload(
            &daemon,
            &up,
            "bookworm",
            &deb(&format!("pkg{i:02}"), "1", "all"),
        );
    }
    let release = |n: usize| format!("/repos/versions/bookworm/{n}/dists/bookworm/Release");
    for n in 1..=18 {
        let body = text(&daemon, &release(n));
        assert!(body.contains("Codename: bookworm"));
    }
    let on_disk = std::fs::read_dir(daemon.data.path().join("repos/versions/bookworm"))
        .unwrap()
        .count();
    assert_eq!(on_disk, 16);
    // An evicted tree is built again when asked for.
    assert_eq!(daemon.get_bytes(&release(1)).0, 200);
}

#[test]
fn a_kept_version_holds_its_path_against_different_bytes_until_collected() {
    // Two versions kept: whenever the worker publishes and runs retention,
    // the version before the latest survives, so what follows is not a race
    // with it.
    let daemon = Daemon::builder()
        .config(
            "[publish]\nkeep-superseded-seconds = 0\n[versions]\nkeep-last = 2\nkeep-days = 0\n",
        )
        .start();
    let up = daemon.token("uploader", "ci");
    let maintainer = daemon.token("maintainer", "release");
    let first = upload(&daemon, &up, "bookworm", &deb("xray", "1.0", "amd64"));
    let path = format!("/api/v1/packages/{}", first["id"].as_str().unwrap());
    assert_eq!(daemon.delete(&path, Some(&maintainer)).status, 204);
    // Version 1, which lists the first file at the pool path, is kept.
    let rebuilt = small_deb("xray", "1.0", "amd64", "", "rebuilt");
    let reply = daemon.upload(
        "/api/v1/packages?distribution=bookworm",
        Some(&up),
        &rebuilt,
    );
    let detail = reply.problem(409);
    assert!(detail.contains("a kept version still lists it"), "{detail}");
    // The same bytes come back as the same row (version 3), and go (4).
    let again = upload(&daemon, &up, "bookworm", &deb("xray", "1.0", "amd64"));
    assert_eq!(again["id"], first["id"]);
    assert_eq!(daemon.delete(&path, Some(&maintainer)).status, 204);
    daemon
        .upload(
            "/api/v1/packages?distribution=bookworm",
            Some(&up),
            &rebuilt,
        )
        .problem(409);
    // Two more versions: after their publish, retention keeps 5 and 6,
    // which do not list the first file, so its row goes and the path is free.
    upload(&daemon, &up, "bookworm", &deb("filler", "1", "amd64"));
    upload(&daemon, &up, "bookworm", &deb("filler", "2", "amd64"));
    daemon.publish("bookworm", &up);
    daemon.get(&path, Some(&up)).problem(404);
    assert_eq!(
        daemon
            .get_bytes("/repos/pool/main/x/xray/xray_1.0_amd64.deb")
            .0,
        404
    );
    let reply = daemon.upload(
        "/api/v1/packages?distribution=bookworm",
        Some(&up),
        &rebuilt,
    );
    assert_eq!(reply.status, 201, "{}", reply.body);
}

#[test]
fn retention_frees_what_the_oldest_kept_version_removed() {
    let daemon = Daemon::builder()
        .config(
            "[publish]\nkeep-superseded-seconds = 0\n[versions]\nkeep-last = 2\nkeep-days = 0\n",
        )
        .start();
    let up = daemon.token("uploader", "ci");
    let maintainer = daemon.token("maintainer", "release");
    let a = upload(&daemon, &up, "bookworm", &deb("able", "1", "amd64"));
    upload(&daemon, &up, "bookworm", &deb("baker", "1", "amd64"));
    let path = format!("/api/v1/packages/{}", a["id"].as_str().unwrap());
    assert_eq!(daemon.delete(&path, Some(&maintainer)).status, 204);
    upload(&daemon, &up, "bookworm", &deb("charlie", "1", "amd64"));
    daemon.publish("bookworm", &up);
    let list = versions(&daemon, "bookworm");
    assert_eq!(
        (list["oldest"].clone(), list["latest"].clone()),
        (json!(3), json!(4))
    );
    // Version 3 removed able; the versions that held it are gone, and so
    // are its row and its pool file. Version 3 still counts the removal.
    let v3 = daemon.get("/api/v1/distributions/bookworm/versions/3", Some(&up));
    assert_eq!(v3.status, 200, "{}", v3.body);
    assert_eq!(v3.body["removed"], 1);
    assert_eq!(v3.body["removed_packages"], json!([]));
    daemon.get(&path, Some(&up)).problem(404);
    assert_eq!(
        daemon
            .get_bytes("/repos/pool/main/a/able/able_1_amd64.deb")
            .0,
        404
    );
    daemon
        .get("/api/v1/distributions/bookworm/versions/2", Some(&up))
        .problem(404);
    let future = daemon
        .get("/api/v1/distributions/bookworm/versions/9", Some(&up))
        .problem(404);
    assert!(future.contains("its latest is 4"), "{future}");
}

#[test]
fn init_rebuilds_every_tree_from_the_database() {
    let daemon = Daemon::start();
    let up = daemon.token("uploader", "ci");
    upload(&daemon, &up, "bookworm", &deb("kept", "1", "amd64"));
    daemon.publish_all();
    let packages = "/repos/dists/bookworm/main/binary-amd64/Packages";
    let before = text(&daemon, packages);
    let key = text(&daemon, "/repos/keys/repod.asc");

    std::fs::remove_dir_all(daemon.data.path().join("repos")).unwrap();
    // In the S3 run the live tree is served from the object store: losing
    // the local copy changes nothing a client sees.
    let expected = if daemon.storage.is_none() { 404 } else { 200 };
    assert_eq!(daemon.get_bytes(packages).0, expected);
    // Admin only.
    daemon
        .post_json("/api/v1/distributions/init", Some(&up), json!({}))
        .problem(403);
    // The seed's curl sends no body.
    let reply = ureq::post(&format!("{}/api/v1/distributions/init", daemon.url))
        .set("Authorization", &format!("Bearer {}", daemon.admin))
        .call()
        .unwrap();
    assert_eq!(reply.status(), 200);
    let answer: Value = serde_json::from_str(&reply.into_string().unwrap()).unwrap();
    let rebuilt: Vec<&str> = answer["published"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["distribution"].as_str().unwrap())
        .collect();
    assert!(
        rebuilt.contains(&"bookworm") && rebuilt.contains(&"almalinux9"),
        "{rebuilt:?}"
    );
    assert_eq!(text(&daemon, packages), before);
    assert_eq!(text(&daemon, "/repos/keys/repod.asc"), key);
    let (status, body) = daemon.get_bytes("/repos/pool/main/k/kept/kept_1_amd64.deb");
    assert_eq!((status, body), (200, deb("kept", "1", "amd64")));
    assert!(
        audit(&daemon)
            .iter()
            .any(|e| e["action"] == "distribution.init" && e["actor"] == "admin")
    );
}

/// Waits up to 20 s for `check` to hold.
fn eventually(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !check() {
        assert!(Instant::now() < deadline, "not within 20 s: {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn start_up_rebuilds_a_damaged_tree_and_leaves_a_sound_one_alone() {
    let mut daemon = Daemon::start();
    let up = daemon.token("uploader", "ci");
    for dist in ["bookworm", "jammy"] {
        upload(&daemon, &up, dist, &deb("kept", "1", "amd64"));
    }
    daemon.publish_all();
    let inrelease =
        |daemon: &Daemon, dist: &str| text(daemon, &format!("/repos/dists/{dist}/InRelease"));
    let (jammy, bookworm) = (inrelease(&daemon, "jammy"), inrelease(&daemon, "bookworm"));
    let noble = inrelease(&daemon, "noble");
    daemon.kill();
    let dists = daemon.data.path().join("repos/dists");
    std::fs::remove_dir_all(dists.join("bookworm")).unwrap();
    std::fs::write(dists.join("jammy/main/binary-amd64/Packages"), "tampered\n").unwrap();
    // Time moves on, so a republish would change the Date.
    std::thread::sleep(Duration::from_millis(1100));
    daemon.restart();
    if daemon.storage.is_some() {
        // In the S3 run clients get the stored generation: the local tree
        // is the publisher's workspace, and its damage shows nowhere.
        daemon.publish("noble", &up);
        assert_eq!(inrelease(&daemon, "jammy"), jammy);
        assert_eq!(inrelease(&daemon, "bookworm"), bookworm);
        assert_ne!(
            daemon
                .get_bytes("/repos/dists/jammy/main/binary-amd64/Packages")
                .1,
            b"tampered\n"
        );
        return;
    }
    eventually("bookworm's tree is back", || {
        daemon.get_bytes("/repos/dists/bookworm/InRelease").0 == 200
    });
    eventually("jammy's Packages is whole again", || {
        daemon
            .get_bytes("/repos/dists/jammy/main/binary-amd64/Packages")
            .1
            != b"tampered\n"
    });
    assert_ne!(inrelease(&daemon, "jammy"), jammy, "jammy was republished");
    assert_ne!(inrelease(&daemon, "bookworm"), bookworm);
    // A sound tree is left as it is, at this start and the next.
    assert_eq!(inrelease(&daemon, "noble"), noble);
    // How often noble's tree was rebuilt since the log was `from` bytes.
    let rebuilt = |daemon: &Daemon, from: usize| {
        daemon.log()[from..]
            .lines()
            .filter(|l| l.contains("publishing its tree") && l.contains("\"noble\""))
            .count()
    };
    let mut from = daemon.log().len();
    for damaged in [false, true] {
        daemon.kill();
        if damaged {
            std::fs::write(dists.join("noble/Release"), "tampered\n").unwrap();
        }
        daemon.restart();
        // The worker checks every tree before its first publish: once a
        // forced publish is done, it has decided about noble too.
        daemon.publish("jammy", &up);
        assert_eq!(
            rebuilt(&daemon, from),
            usize::from(damaged),
            "{}",
            daemon.log()
        );
        from = daemon.log().len();
    }
    // The first restart left it alone; the second healed it.
    eventually("noble's Release is whole again", || {
        daemon.get_bytes("/repos/dists/noble/Release").1 != b"tampered\n"
    });
}

#[test]
fn a_distribution_no_plugin_declares_is_retired_and_comes_back() {
    let daemon = Daemon::start();
    let up = daemon.token("uploader", "ci");
    let dir = tempfile::tempdir().unwrap();
    let rpm = repod_tests::fixtures::rpm(dir.path(), "gone", "1.0", "1", "x86_64", "");
    daemon.upload_file("almalinux9", &up, &rpm);
    daemon.publish("almalinux9", &up);
    let repomd = "/repos/almalinux9/x86_64/repodata/repomd.xml";
    let file = "/repos/almalinux9/x86_64/gone-1.0-1.x86_64.rpm";
    assert_eq!(daemon.get_bytes(repomd).0, 200);
    assert_eq!(daemon.get_bytes(file).0, 200);

    let reply = daemon.delete("/api/v1/plugins/el", Some(&daemon.admin));
    assert_eq!(reply.status, 204, "{}", reply.body);
    assert_eq!(daemon.get_bytes(repomd).0, 404, "a stale tree is served");
    assert_eq!(daemon.get_bytes(file).0, 404);
    let detail = daemon
        .get("/api/v1/distributions/almalinux9", Some(&up))
        .problem(410);
    assert!(detail.contains("almalinux9 was retired"), "{detail}");
    let list = daemon.get("/api/v1/distributions", Some(&up));
    let retired: Vec<&str> = list.body["retired"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap())
        .collect();
    assert!(retired.contains(&"almalinux9"), "{retired:?}");
    // Kept aside on disk, not deleted.
    let aside = std::fs::read_dir(daemon.data.path().join("publish/retired"))
        .unwrap()
        .count();
    assert!(aside >= 1);

    let wasm = std::fs::read(repod_tests::wasm("repod_plugin_el")).unwrap();
    let reply = daemon.post_bytes("/api/v1/plugins", Some(&daemon.admin), wasm);
    assert_eq!(reply.status, 201, "{}", reply.body);
    eventually("almalinux9 is served again", || {
        daemon.get_bytes(repomd).0 == 200 && daemon.get_bytes(file).0 == 200
    });
    assert_eq!(
        daemon
            .get("/api/v1/distributions/almalinux9", Some(&up))
            .status,
        200
    );
}

#[test]
fn a_codename_dropped_from_config_is_retired_at_start() {
    let mut daemon = Daemon::builder().config("").start();
    let up = daemon.token("uploader", "ci");
    upload(&daemon, &up, "focal", &deb("fox", "1", "amd64"));
    daemon.publish("focal", &up);
    daemon.kill();
    std::fs::write(
        daemon.config.as_ref().unwrap(),
        "[plugin.debian]\ndisable = [\"focal\"]\n",
    )
    .unwrap();
    daemon.restart();
    assert_eq!(daemon.get_bytes("/repos/dists/focal/InRelease").0, 404);
    assert_eq!(
        daemon.get_bytes("/repos/pool/main/f/fox/fox_1_amd64.deb").0,
        404
    );
    daemon
        .get("/api/v1/distributions/focal", Some(&up))
        .problem(410);
}

#[test]
fn a_config_change_re_prepares_the_stored_entries() {
    let mut daemon = Daemon::builder().config("").start();
    let up = daemon.token("uploader", "ci");
    upload(&daemon, &up, "jammy", &deb("moved", "1", "amd64"));
    daemon.publish("jammy", &up);
    assert_eq!(
        daemon
            .get_bytes("/repos/pool/main/m/moved/moved_1_amd64.deb")
            .0,
        200
    );
    daemon.kill();
    std::fs::write(
        daemon.config.as_ref().unwrap(),
        "[plugin.debian.distributions.jammy]\ncomponents = [\"universe\"]\n",
    )
    .unwrap();
    daemon.restart();
    let index = "/repos/dists/jammy/universe/binary-amd64/Packages";
    eventually("jammy republished with the new component", || {
        daemon.get_bytes(index).0 == 200
    });
    let body = text(&daemon, index);
    assert!(
        body.contains("Filename: pool/universe/m/moved/moved_1_amd64.deb\n"),
        "{body}"
    );
    let (status, bytes) = daemon.get_bytes("/repos/pool/universe/m/moved/moved_1_amd64.deb");
    assert_eq!((status, bytes), (200, deb("moved", "1", "amd64")));
    // Once the tree no longer lists it, the old path (no row names it) goes.
    eventually("the old pool path is unlinked", || {
        daemon
            .get_bytes("/repos/pool/main/m/moved/moved_1_amd64.deb")
            .0
            == 404
    });
}

#[test]
fn re_preparing_never_moves_a_package_onto_another_file() {
    // noble files its packages under universe; jammy under main.
    let mut daemon = Daemon::builder()
        .config("[plugin.debian.distributions.noble]\ncomponents = [\"universe\"]\n")
        .start();
    let up = daemon.token("uploader", "ci");
    let theirs = small_deb("clash", "1", "amd64", "", "noble's build");
    let ours = deb("clash", "1", "amd64");
    assert_ne!(theirs, ours);
    let reply = daemon.upload("/api/v1/packages?distribution=noble", Some(&up), &theirs);
    assert_eq!(reply.status, 201, "{}", reply.body);
    upload(&daemon, &up, "jammy", &ours);
    daemon.publish_all();
    daemon.kill();
    // Now jammy would file it at noble's path, which holds other bytes.
    std::fs::write(
        daemon.config.as_ref().unwrap(),
        "[plugin.debian.distributions.noble]\ncomponents = [\"universe\"]\n\
         [plugin.debian.distributions.jammy]\ncomponents = [\"universe\"]\n",
    )
    .unwrap();
    daemon.restart();
    daemon.publish_all();
    assert!(
        daemon.log().contains("holds another file"),
        "{}",
        daemon.log()
    );
    let (status, bytes) = daemon.get_bytes("/repos/pool/universe/c/clash/clash_1_amd64.deb");
    assert_eq!((status, bytes == theirs), (200, true));
    // jammy keeps serving its own file where it was.
    let (status, bytes) = daemon.get_bytes("/repos/pool/main/c/clash/clash_1_amd64.deb");
    assert_eq!((status, bytes == ours), (200, true));
}

fn cli(daemon: &Daemon, token: &str, args: &[&str]) -> std::process::Output {
    Command::new(repod_bin())
        .args(args)
        .args(["--url", &daemon.url, "--token", token])
        .output()
        .unwrap()
}

#[test]
fn the_cli_promotes_migrates_rolls_back_and_inits_with_clear_exit_codes() {
    let daemon = Daemon::start();
    let up = daemon.token("uploader", "ci");
    let maintainer = daemon.token("maintainer", "release");
    upload(&daemon, &up, "focal", &deb("tool", "2.0", "amd64"));
    upload(&daemon, &up, "focal", &deb("lib", "1.0", "all"));

    let out = cli(
        &daemon,
        &maintainer,
        &[
            "promote",
            "--package",
            "tool",
            "--from",
            "focal",
            "--to",
            "jammy",
            "--reason",
            "ok",
        ],
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{out:?}");
    assert!(
        stdout.contains("promoted tool 2.0 amd64 (focal -> jammy)"),
        "{stdout}"
    );
    assert!(
        stdout.contains("jammy: version 1; published version 1"),
        "{stdout}"
    );

    let out = cli(
        &daemon,
        &maintainer,
        &["migrate", "--from", "focal", "--to", "jammy"],
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{out:?}");
    assert!(
        stdout.contains("focal -> jammy: 1 copied, 1 already present, 0 skipped; version 2"),
        "{stdout}"
    );

    let out = cli(
        &daemon,
        &maintainer,
        &["versions", "--distribution", "jammy"],
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{out:?}");
    assert!(stdout.contains("jammy: latest 2"), "{stdout}");
    assert!(stdout.contains("migrate"), "{stdout}");

    let out = cli(
        &daemon,
        &maintainer,
        &[
            "rollback",
            "--distribution",
            "jammy",
            "--version",
            "1",
            "--json",
        ],
    );
    assert!(out.status.success(), "{out:?}");
    let answer: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(answer["distribution_version"]["number"], 3);

    // Refusals: the server's detail on stderr, and an exit code per kind
    // (4 not found, 3 refused, 5 unreachable).
    let out = cli(
        &daemon,
        &maintainer,
        &[
            "promote",
            "--package",
            "absent",
            "--from",
            "focal",
            "--to",
            "jammy",
        ],
    );
    assert_eq!(out.status.code(), Some(4), "{out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("404: focal has no package absent"),
        "{stderr}"
    );
    let out = cli(&daemon, &maintainer, &["init"]);
    assert_eq!(out.status.code(), Some(3));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("403"),
        "{out:?}"
    );

    let out = cli(&daemon, &daemon.admin, &["init"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{out:?}");
    assert!(stdout.contains("rebuilt jammy: version 3"), "{stdout}");

    let out = Command::new(repod_bin())
        .args([
            "migrate",
            "--from",
            "focal",
            "--to",
            "jammy",
            "--url",
            "http://127.0.0.1:9",
            "--token",
            "x",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(5));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("cannot reach"),
        "{out:?}"
    );
}
