//! Packages in: upload (raw and multipart), the 201/200/409 answers,
//! content-addressed storage shared across distributions, listing, removal
//! with garbage collection, tokens and the audit log, and a corpus of bad
//! inputs that must each be refused with nothing changed.

use repod_tests::fixtures::{self, Compression};
use repod_tests::{Daemon, Reply};
use serde_json::Value;

fn blobs(daemon: &Daemon) -> Vec<std::path::PathBuf> {
    fixtures::snapshot(&daemon.data.path().join("blobs"))
        .into_iter()
        .map(|(p, _)| p)
        .collect()
}

fn created(reply: &Reply) -> &Value {
    assert_eq!(reply.status, 201, "{reply:?}");
    &reply.body
}

#[test]
fn uploads_are_stored_once_and_answered_201_200_409() {
    let daemon = Daemon::start();
    let dir = tempfile::tempdir().unwrap();
    let uploader = daemon.token("uploader", "ci");
    let deb = fixtures::deb(
        dir.path(),
        "hello",
        "1:2.0~rc1+b1-3",
        "amd64",
        "Pre-Depends: libc6\n",
        "one",
    );
    let bytes = std::fs::read(&deb).unwrap();

    let first = daemon.upload(
        "/api/v1/packages?distribution=jammy",
        Some(&uploader),
        &bytes,
    );
    let mut record = created(&first).clone();
    // The upload made version 1 of jammy, and its scan found nothing (no
    // advisories); the package record is the rest.
    assert_eq!(record["distribution_version"], 1);
    assert_eq!(record["scan"]["state"], "clean");
    for key in ["distribution_version", "scan"] {
        record.as_object_mut().unwrap().remove(key);
    }
    assert_eq!(record["name"], "hello");
    assert_eq!(record["version"], "1:2.0~rc1+b1-3");
    assert_eq!(record["architecture"], "amd64");
    assert_eq!(record["distribution"], "jammy");
    assert_eq!(record["sha256"], fixtures::sha256_file(&deb));
    assert_eq!(record["size"], bytes.len());
    assert_eq!(record["uploaded_by"], "ci");

    let again = daemon.upload(
        "/api/v1/packages?distribution=jammy",
        Some(&uploader),
        &bytes,
    );
    assert_eq!(again.status, 200, "{again:?}");
    assert_eq!(again.body["id"], record["id"]);

    let other = fixtures::deb(
        dir.path(),
        "hello",
        "1:2.0~rc1+b1-3",
        "amd64",
        "Pre-Depends: libc6\n",
        "two",
    );
    let conflict = daemon.upload(
        "/api/v1/packages?distribution=jammy",
        Some(&uploader),
        &std::fs::read(&other).unwrap(),
    );
    let detail = conflict.problem(409);
    assert!(
        detail.contains("jammy already has hello 1:2.0~rc1+b1-3 amd64 from a different file"),
        "{detail}"
    );

    // The same bytes in a second distribution: a new record, the same blob.
    let noble = daemon.upload(
        "/api/v1/packages?distribution=noble",
        Some(&uploader),
        &bytes,
    );
    let noble = created(&noble).clone();
    assert_ne!(noble["id"], record["id"]);
    assert_eq!(noble["sha256"], record["sha256"]);
    let stored = blobs(&daemon);
    assert_eq!(stored.len(), 1, "{stored:?}");
    assert_eq!(std::fs::read(&stored[0]).unwrap(), bytes);

    // Reading back.
    let listed = daemon.get("/api/v1/packages?name=hello", Some(&uploader));
    assert_eq!(listed.body["packages"].as_array().unwrap().len(), 2);
    let jammy = daemon.get("/api/v1/distributions/jammy/packages", Some(&uploader));
    assert_eq!(jammy.body["packages"][0]["id"], record["id"]);
    let shown = daemon.get(
        &format!("/api/v1/packages/{}", record["id"].as_str().unwrap()),
        Some(&uploader),
    );
    assert_eq!(shown.body, record);
    assert!(
        daemon
            .get("/api/v1/packages/nope", Some(&uploader))
            .problem(404)
            .contains("no package")
    );

    // Removal needs maintainer. The blob stays while a kept version lists
    // it (retention collects it: publish_tree.rs).
    let maintainer = daemon.token("maintainer", "release");
    let path = |r: &Value| format!("/api/v1/packages/{}", r["id"].as_str().unwrap());
    assert!(
        daemon
            .delete(&path(&record), Some(&uploader))
            .problem(403)
            .contains("maintainer")
    );
    assert_eq!(daemon.delete(&path(&record), Some(&maintainer)).status, 204);
    assert_eq!(blobs(&daemon).len(), 1, "still in noble");
    assert_eq!(daemon.delete(&path(&noble), Some(&maintainer)).status, 204);
    assert_eq!(blobs(&daemon).len(), 1, "kept versions still list it");
    assert!(
        daemon
            .delete(&path(&noble), Some(&maintainer))
            .problem(404)
            .contains("no package")
    );

    // Every mutation is in the audit log, with who did it.
    let audit = daemon.get("/api/v1/audit", Some(&daemon.admin));
    let entries: Vec<(String, String)> = audit.body["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["actor"].as_str().unwrap().into(),
                e["action"].as_str().unwrap().into(),
            )
        })
        .collect();
    for expected in [
        ("ci", "package.add"),
        ("release", "package.remove"),
        ("cli", "token.create"),
    ] {
        assert!(
            entries.contains(&(expected.0.into(), expected.1.into())),
            "{expected:?} in {entries:?}"
        );
    }
    assert_eq!(
        entries.iter().filter(|(_, a)| a == "package.add").count(),
        2
    );
    assert!(
        daemon
            .get("/api/v1/audit", Some(&maintainer))
            .problem(403)
            .contains("admin")
    );
}

#[test]
fn multipart_and_rpm_uploads() {
    let daemon = Daemon::start();
    let dir = tempfile::tempdir().unwrap();
    let deb = std::fs::read(fixtures::deb(dir.path(), "tool", "1.0-1", "all", "", "x")).unwrap();
    let form = daemon.upload_form(
        "/api/v1/packages",
        Some(&daemon.admin),
        &[
            ("distribution", None, b"bookworm"),
            ("file", Some("tool_1.0-1_all.deb"), &deb),
        ],
    );
    let record = created(&form);
    assert_eq!(record["distribution"], "bookworm");
    assert_eq!(record["architecture"], "all");
    assert_eq!(record["filename"], "tool_1.0-1_all.deb");

    for arch in ["x86_64", "aarch64", "noarch"] {
        let rpm = fixtures::rpm(
            dir.path(),
            "hello",
            "2.0",
            "1",
            arch,
            "Epoch: 3\nRequires(pre): /bin/sh\n",
        );
        let reply = daemon.upload(
            "/api/v1/packages?distribution=almalinux9",
            Some(&daemon.admin),
            &std::fs::read(&rpm).unwrap(),
        );
        let record = created(&reply);
        assert_eq!(record["name"], "hello");
        assert_eq!(record["version"], "3:2.0-1");
        assert_eq!(record["architecture"], arch);
    }
}

#[test]
fn tokens_can_be_created_listed_and_revoked_over_the_api() {
    let daemon = Daemon::start();
    let made = daemon.post_json(
        "/api/v1/tokens",
        Some(&daemon.admin),
        serde_json::json!({"name": "ci-bot", "role": "uploader"}),
    );
    assert_eq!(made.status, 201, "{made:?}");
    let token = made.body["token"].as_str().unwrap().to_owned();
    assert_eq!(daemon.get("/api/v1/packages", Some(&token)).status, 200);

    let listed = daemon.get("/api/v1/tokens", Some(&daemon.admin));
    let text = listed.body.to_string();
    assert!(
        text.contains("ci-bot") && !text.contains(&token[6..]),
        "{text}"
    );

    let dup = daemon.post_json(
        "/api/v1/tokens",
        Some(&daemon.admin),
        serde_json::json!({"name": "ci-bot", "role": "reader"}),
    );
    assert!(dup.problem(409).contains("already exists"));
    let bad = daemon.post_json(
        "/api/v1/tokens",
        Some(&daemon.admin),
        serde_json::json!({"name": "x", "role": "root"}),
    );
    assert!(bad.problem(400).contains("unknown role"));

    let id = made.body["id"].as_str().unwrap();
    assert_eq!(
        daemon
            .delete(&format!("/api/v1/tokens/{id}"), Some(&daemon.admin))
            .status,
        204
    );
    assert!(
        daemon
            .get("/api/v1/packages", Some(&token))
            .problem(401)
            .contains("unknown or revoked")
    );
}

/// Each bad input gets a 4xx problem with an actionable message, and the
/// blob directory and database are byte-for-byte what they were.
/// PostgreSQL stores no NUL in text: a JSON body holding one is refused
/// up front, the same on either database, and changes nothing.
#[test]
fn json_with_a_nul_character_is_refused() {
    let daemon = Daemon::start();
    let before = daemon.get("/api/v1/tokens", Some(&daemon.admin)).body;
    let made = daemon.post_json(
        "/api/v1/tokens",
        Some(&daemon.admin),
        serde_json::json!({"name": "ci\u{0}bot", "role": "uploader"}),
    );
    assert!(made.problem(400).contains("NUL"), "{made:?}");
    let promoted = daemon.post_json(
        "/api/v1/distributions/promote",
        Some(&daemon.admin),
        serde_json::json!({"package": "x", "from_dist": "focal", "to_dist": "jammy",
                           "reason": "because\u{0}"}),
    );
    assert!(promoted.problem(400).contains("NUL"), "{promoted:?}");
    assert_eq!(
        daemon.get("/api/v1/tokens", Some(&daemon.admin)).body,
        before
    );
}

#[test]
fn bad_inputs_are_refused_and_change_nothing() {
    let daemon = Daemon::builder()
        .config("[limits]\nmax-upload-mib = 1\n")
        .start();
    let dir = tempfile::tempdir().unwrap();
    let reader = daemon.token("reader", "r");
    let admin = daemon.admin.clone();

    // Something real already stored, so "unchanged" is not trivially empty.
    let good = std::fs::read(fixtures::deb(dir.path(), "base", "1.0-1", "amd64", "", "b")).unwrap();
    created(&daemon.upload("/api/v1/packages?distribution=jammy", Some(&admin), &good));
    // Every publish done (in the S3 run each one writes a generation row),
    // so that what follows is the only thing that could change anything.
    daemon.publish_all();

    let deb = std::fs::read(fixtures::deb(
        dir.path(),
        "hello",
        "1.0-1",
        "amd64",
        "",
        "h",
    ))
    .unwrap();
    let s390x = std::fs::read(fixtures::deb(
        dir.path(),
        "hello",
        "1.0-1",
        "s390x",
        "",
        "h",
    ))
    .unwrap();
    let rpm = std::fs::read(fixtures::rpm(dir.path(), "hello", "1.0", "1", "x86_64", "")).unwrap();
    let srpm = std::fs::read(fixtures::source_rpm(dir.path(), "hello")).unwrap();
    let tarball = fixtures::compress(&fixtures::tar(&[(b"./hello", b"hi")]), &Compression::Gzip);
    let control = |fields: &str| {
        format!("{fields}Maintainer: T <t@test.invalid>\nDescription: x\n").into_bytes()
    };
    let with_control = |c: Vec<u8>| fixtures::raw_deb(&c, &[(b"./usr/share/x", b"x")]);
    let ok_control = control("Package: evil\nVersion: 1.0\nArchitecture: amd64\n");
    let mut non_utf8 = control("Package: evil\nVersion: 1.0\nArchitecture: amd64\n");
    non_utf8.extend_from_slice(b"Homepage: \xff\xfe\n");

    let state = || {
        let data = daemon.data.path();
        let mut files = fixtures::snapshot(&data.join("blobs"));
        for db in ["repod.db", "repod.db-wal"] {
            if let Ok(bytes) = std::fs::read(data.join(db)) {
                files.push((data.join(db), bytes));
            }
        }
        files
    };
    let before = state();

    let jammy = "/api/v1/packages?distribution=jammy";
    // (what, reply, expected status, expected words in the detail)
    let cases: Vec<(&str, Reply, u16, &str)> = vec![
        (
            "empty",
            daemon.upload(jammy, Some(&admin), b""),
            422,
            "empty upload",
        ),
        (
            "random bytes",
            daemon.upload(
                jammy,
                Some(&admin),
                &(0..5000u32)
                    .map(|i| (i * 31 % 256) as u8)
                    .collect::<Vec<_>>(),
            ),
            422,
            "",
        ),
        (
            "text",
            daemon.upload(jammy, Some(&admin), b"#!/bin/sh\necho hi\n"),
            422,
            "",
        ),
        (
            "truncated deb, half",
            daemon.upload(jammy, Some(&admin), &deb[..deb.len() / 2]),
            422,
            "",
        ),
        (
            "truncated deb, 100 bytes",
            daemon.upload(jammy, Some(&admin), &deb[..100]),
            422,
            "",
        ),
        (
            "truncated deb, ar header only",
            daemon.upload(jammy, Some(&admin), &deb[..8]),
            422,
            "",
        ),
        (
            "truncated rpm",
            daemon.upload(
                "/api/v1/packages?distribution=almalinux9",
                Some(&admin),
                &rpm[..rpm.len() / 3],
            ),
            422,
            "",
        ),
        (
            "renamed tarball",
            daemon.upload(jammy, Some(&admin), &tarball),
            422,
            "",
        ),
        (
            "ar without debian-binary",
            daemon.upload(
                jammy,
                Some(&admin),
                &fixtures::ar(&[("control.tar.gz", tarball.clone())]),
            ),
            422,
            "debian-binary",
        ),
        (
            "gzip bomb in control.tar",
            daemon.upload(
                jammy,
                Some(&admin),
                &fixtures::bomb_deb(64 << 20, Compression::Gzip),
            ),
            422,
            "",
        ),
        (
            "xz bomb in control.tar",
            daemon.upload(
                jammy,
                Some(&admin),
                &fixtures::bomb_deb(64 << 20, Compression::Xz),
            ),
            422,
            "",
        ),
        (
            "../ in package name",
            daemon.upload(
                jammy,
                Some(&admin),
                &with_control(control(
                    "Package: ../../etc\nVersion: 1.0\nArchitecture: amd64\n",
                )),
            ),
            422,
            "",
        ),
        (
            "../ in version",
            daemon.upload(
                jammy,
                Some(&admin),
                &with_control(control(
                    "Package: evil\nVersion: 1.0/../../x\nArchitecture: amd64\n",
                )),
            ),
            422,
            "",
        ),
        (
            "../ in a file name",
            daemon.upload(
                jammy,
                Some(&admin),
                &fixtures::raw_deb(&ok_control, &[(b"../../etc/passwd", b"x")]),
            ),
            422,
            "",
        ),
        (
            "absolute file name",
            daemon.upload(
                jammy,
                Some(&admin),
                &fixtures::raw_deb(&ok_control, &[(b"/etc/passwd", b"x")]),
            ),
            422,
            "",
        ),
        (
            "non-UTF-8 field",
            daemon.upload(jammy, Some(&admin), &with_control(non_utf8)),
            422,
            "",
        ),
        (
            "missing Maintainer",
            daemon.upload(
                jammy,
                Some(&admin),
                &with_control(
                    b"Package: evil\nVersion: 1.0\nArchitecture: amd64\nDescription: x\n".to_vec(),
                ),
            ),
            422,
            "Maintainer",
        ),
        (
            "wrong architecture",
            daemon.upload(jammy, Some(&admin), &s390x),
            422,
            "architecture s390x is not supported by distribution jammy (supported: amd64, arm64, all)",
        ),
        (
            "rpm into an apt distribution",
            daemon.upload(jammy, Some(&admin), &rpm),
            422,
            "an .rpm cannot go into jammy",
        ),
        (
            "deb into an rpm distribution",
            daemon.upload(
                "/api/v1/packages?distribution=almalinux9",
                Some(&admin),
                &deb,
            ),
            422,
            "a .deb cannot go into almalinux9",
        ),
        (
            "source rpm",
            daemon.upload(
                "/api/v1/packages?distribution=almalinux9",
                Some(&admin),
                &srpm,
            ),
            422,
            "source packages",
        ),
        (
            "over the size cap, streamed",
            daemon.upload_chunked(jammy, Some(&admin), &vec![0u8; (1 << 20) + 1]),
            413,
            "upload exceeds 1 MiB",
        ),
        (
            "unknown distribution",
            daemon.upload("/api/v1/packages?distribution=hardy", Some(&admin), &deb),
            404,
            "no distribution hardy",
        ),
        (
            "no distribution",
            daemon.upload("/api/v1/packages", Some(&admin), &deb),
            400,
            "which distribution?",
        ),
        (
            "form without file",
            daemon.upload_form(
                "/api/v1/packages?distribution=jammy",
                Some(&admin),
                &[("distribution", None, b"jammy")],
            ),
            400,
            "no 'file' field",
        ),
        (
            "form with two files",
            daemon.upload_form(
                jammy,
                Some(&admin),
                &[("file", Some("a.deb"), &deb), ("file", Some("b.deb"), &deb)],
            ),
            400,
            "more than one file",
        ),
        (
            "same identity, other bytes",
            daemon.upload(
                jammy,
                Some(&admin),
                &std::fs::read(fixtures::deb(
                    dir.path(),
                    "base",
                    "1.0-1",
                    "amd64",
                    "",
                    "other",
                ))
                .unwrap(),
            ),
            409,
            "already has base 1.0-1 amd64",
        ),
        (
            "no token",
            daemon.upload(jammy, None, &deb),
            401,
            "bearer token",
        ),
        (
            "reader role",
            daemon.upload(jammy, Some(&reader), &deb),
            403,
            "needs the uploader role",
        ),
    ];
    assert!(cases.len() >= 25);
    // Announced too large: refused before a byte of body is sent.
    assert_eq!(daemon.announce_upload(jammy, &admin, 5 << 30), 413);
    for (what, reply, status, words) in &cases {
        let detail = reply.problem(*status);
        eprintln!("{what}: {status} {detail}");
        assert!(detail.contains(words), "{what}: {detail:?} lacks {words:?}");
        assert!(
            detail.len() > 15,
            "{what}: detail too thin to act on: {detail:?}"
        );
    }
    let after = state();
    assert_eq!(before.len(), after.len(), "files appeared or vanished");
    for ((p1, b1), (p2, b2)) in before.iter().zip(&after) {
        assert_eq!(p1, p2);
        assert!(b1 == b2, "{} changed", p1.display());
    }
    assert!(
        fixtures::snapshot(&daemon.data.path().join("tmp")).is_empty(),
        "temporary uploads left behind"
    );
    // Still serving.
    assert_eq!(
        daemon.get("/api/v1/packages", Some(&reader)).body["packages"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
}

/// `/healthz` says the process answers; `/readyz` says it can work: the
/// database answers, a distribution plugin is loaded, the publisher runs.
/// A daemon with no plugin is alive but not ready, and says what to do.
#[test]
fn healthz_and_readyz_tell_alive_from_ready() {
    let daemon = Daemon::start();
    let (status, body) = daemon.get_bytes("/healthz");
    assert_eq!((status, body.as_slice()), (200, &b"ok\n"[..]));
    let ready = daemon.get("/readyz", None);
    assert_eq!(ready.status, 200, "{}", ready.body);
    assert_eq!(ready.body["database"], "ok");
    assert!(
        ready.body["distributions"].as_u64().unwrap() >= 10,
        "{}",
        ready.body
    );
    assert!(
        matches!(
            ready.body["publisher"].as_str(),
            Some("idle" | "publishing")
        ),
        "{}",
        ready.body
    );

    let bare = Daemon::builder().without_first_party().start();
    assert_eq!(bare.get_bytes("/healthz").0, 200);
    let detail = bare.get("/readyz", None).problem(503);
    assert!(
        detail.contains("no distribution plugin is loaded") && detail.contains("plugin directory"),
        "{detail}"
    );
}

/// A client that writes its whole body before it reads (no `Expect:
/// 100-continue`, as ureq does) still gets the problem+json of a request
/// refused before its body was read, not a reset connection; and the
/// connection stays usable after a refusal whose body was drained.
#[test]
fn refused_bodies_are_answered_not_reset() {
    let daemon = Daemon::builder()
        .config("[limits]\nmax-upload-mib = 1\n")
        .start();
    let reader = daemon.token("reader", "looker");
    let url = format!("{}/api/v1/packages?distribution=jammy", daemon.url);
    // Larger than the socket buffers on both sides, so unread bytes are
    // still in flight when the answer is written.
    let body = vec![0u8; 8 << 20];
    let agent = ureq::AgentBuilder::new().build();
    let refused = |token: &str, expected: u16, words: &str| {
        let sent = agent
            .post(&url)
            .set("Authorization", &format!("Bearer {token}"))
            .set("Content-Type", "application/octet-stream")
            .send_bytes(&body);
        match sent {
            Err(ureq::Error::Status(status, response)) => {
                assert_eq!(status, expected);
                assert_eq!(
                    response.header("content-type"),
                    Some("application/problem+json")
                );
                let problem: Value = response.into_json().unwrap();
                let detail = problem["detail"].as_str().unwrap();
                assert!(detail.contains(words), "{detail}");
            }
            other => panic!("{expected} expected, got {other:?}"),
        }
    };
    refused("repod_unknown", 401, "unknown or revoked token");
    refused(&reader, 403, "needs the uploader role");
    refused(&daemon.admin, 413, "upload exceeds");
    // The same agent's next request goes through.
    let ok = agent
        .get(&format!("{}/healthz", daemon.url))
        .call()
        .unwrap();
    assert_eq!(ok.status(), 200);
    assert!(daemon.package_names("jammy").is_empty());
}
