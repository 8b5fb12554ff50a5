//! Scanning with real advisories (`testdata/advisories`) and packages built
//! under the real names and versions: AlmaLinux records name binary RPMs
//! and carry epochs; Ubuntu records name source packages. Versions are
//! compared by the family plugins, per the distribution's ecosystem. These
//! tests are about matching: the gate (policies, quarantine) is off where
//! a finding would otherwise hold the package back (tests/gate.rs has it).

use repod_tests::fixtures::{self, small_deb};
use repod_tests::{Daemon, Reply, advisory_record};
use serde_json::{Value, json};

/// A daemon whose distributions have no scanner policy: findings are
/// recorded, nothing is held.
fn matching_only() -> Daemon {
    Daemon::builder()
        .config("[scan]\npolicy = \"none\"\n")
        .start()
}

fn upload_deb(daemon: &Daemon, token: &str, dist: &str, bytes: &[u8]) -> Value {
    let reply = daemon.upload(
        &format!("/api/v1/packages?distribution={dist}"),
        Some(token),
        bytes,
    );
    assert_eq!(reply.status, 201, "{}", reply.body);
    reply.body
}

fn upload_rpm(daemon: &Daemon, token: &str, path: &std::path::Path) -> Value {
    let reply: Reply = daemon.upload_file("almalinux9", token, path);
    assert_eq!(reply.status, 201, "{}", reply.body);
    reply.body
}

/// (advisory id, severity, fixed) of each finding.
fn findings(scan: &Value) -> Vec<(String, String, Option<String>)> {
    scan["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["advisory_id"].as_str().unwrap().to_owned(),
                f["severity"].as_str().unwrap().to_owned(),
                f["fixed"].as_str().map(str::to_owned),
            )
        })
        .collect()
}

fn finding(id: &str, severity: &str, fixed: Option<&str>) -> (String, String, Option<String>) {
    (id.to_owned(), severity.to_owned(), fixed.map(str::to_owned))
}

#[test]
fn rpms_match_binary_name_records_with_epochs_by_rpm_order() {
    let daemon = Daemon::start();
    let up = daemon.token("uploader", "ci");
    daemon.import_advisories(advisory_record("ALSA-2023_0959.json"));
    daemon.import_advisories(advisory_record("ALSA-2023_2523.json"));
    let dir = tempfile::tempdir().unwrap();

    // tar's header has no Epoch tag; the fix is 2:1.34-6.el9_1: affected.
    let old = fixtures::rpm(dir.path(), "tar", "1.34", "5.el9", "x86_64", "");
    let answer = upload_rpm(&daemon, &up, &old);
    assert_eq!(answer["scan"]["state"], "findings", "{answer}");
    assert_eq!(answer["scan"]["ecosystem"], "AlmaLinux:9");
    assert_eq!(
        findings(&answer["scan"]),
        [finding("ALSA-2023:0959", "medium", Some("2:1.34-6.el9_1"))]
    );
    // With the CVE ids it fixes, for whoever reads the finding.
    assert_eq!(
        answer["scan"]["findings"][0]["aliases"],
        json!(["CVE-2022-48303"])
    );
    // The fixed build itself is clean...
    let fixed = fixtures::rpm(dir.path(), "tar", "1.34", "6.el9_1", "x86_64", "Epoch: 2\n");
    let answer = upload_rpm(&daemon, &up, &fixed);
    assert_eq!(answer["scan"]["state"], "clean", "{answer}");
    // ...and so is a later one without the epoch? No: epoch 0 < 2 whatever
    // the version, as rpm orders it.
    let later = fixtures::rpm(dir.path(), "tar", "1.35", "1.el9", "x86_64", "");
    let answer = upload_rpm(&daemon, &up, &later);
    assert_eq!(answer["scan"]["state"], "findings", "{answer}");

    // A subpackage the record names (openssl-libs), fix with epoch 1.
    let libs = fixtures::rpm(
        dir.path(),
        "openssl-libs",
        "3.0.7",
        "5.el9",
        "x86_64",
        "Epoch: 1\n",
    );
    let answer = upload_rpm(&daemon, &up, &libs);
    assert_eq!(
        findings(&answer["scan"]),
        [finding("ALSA-2023:2523", "low", Some("1:3.0.7-6.el9_2"))],
        "{answer}"
    );
    // A name no record lists is clean.
    let other = fixtures::rpm(dir.path(), "tarball-tools", "1.0", "1.el9", "x86_64", "");
    let answer = upload_rpm(&daemon, &up, &other);
    assert_eq!(answer["scan"]["state"], "clean");
    // AlmaLinux records list binary RPMs (the el family says so): a
    // subpackage built from openssl's source RPM that the record does not
    // list is not matched under its source's name.
    fixtures::rpm(
        dir.path(),
        "openssl",
        "3.0.7",
        "4.el9",
        "x86_64",
        "Epoch: 1\n%package extra\nSummary: s\n%description extra\nd\n%files extra\n",
    );
    let extra = dir
        .path()
        .join("rpmbuild-openssl-x86_64/RPMS/x86_64/openssl-extra-3.0.7-4.el9.x86_64.rpm");
    let answer = upload_rpm(&daemon, &up, &extra);
    assert_eq!(answer["name"], "openssl-extra", "{answer}");
    assert_eq!(answer["scan"]["state"], "clean", "{answer}");

    // The report counts them.
    let report = daemon.get("/api/v1/scans?distribution=almalinux9", Some(&up));
    assert_eq!(report.status, 200, "{}", report.body);
    assert_eq!(report.body["states"], json!({"clean": 3, "findings": 3}));
    assert_eq!(
        report.body["worst"],
        json!({"low": 1, "medium": 2, "none": 3})
    );
    let only = daemon.get(
        "/api/v1/scans?distribution=almalinux9&state=clean",
        Some(&up),
    );
    assert_eq!(only.body["packages"].as_array().unwrap().len(), 3);
    assert_eq!(only.body["next_offset"], json!(null));
    // In pages: the counts are of all, the packages of the page.
    let ids = |body: &serde_json::Value| -> Vec<String> {
        body["packages"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["package"]["id"].as_str().unwrap().to_owned())
            .collect()
    };
    let first = daemon.get(
        "/api/v1/scans?distribution=almalinux9&state=clean&limit=2",
        Some(&up),
    );
    assert_eq!(first.body["states"], report.body["states"]);
    assert_eq!(first.body["next_offset"], 2, "{}", first.body);
    let second = daemon.get(
        "/api/v1/scans?distribution=almalinux9&state=clean&limit=2&offset=2",
        Some(&up),
    );
    assert_eq!(second.body["next_offset"], json!(null));
    assert_eq!(
        [ids(&first.body), ids(&second.body)].concat(),
        ids(&only.body)
    );
    for (bad, words) in [
        ("limit=0", "out of range"),
        ("limit=10001", "out of range"),
        ("offset=-1", "negative"),
    ] {
        let problem = daemon
            .get(&format!("/api/v1/scans?{bad}"), Some(&up))
            .problem(400);
        assert!(problem.contains(words), "{bad}: {problem}");
    }
    daemon
        .get("/api/v1/scans?state=quarantined-ish", Some(&up))
        .problem(400);
}

#[test]
fn debs_match_source_name_records_in_their_own_ecosystem_by_dpkg_order() {
    let daemon = matching_only();
    let up = daemon.token("uploader", "ci");
    daemon.import_advisories(advisory_record("USN-6429-1.json"));

    // libcurl4 is built from curl; USN-6429-1 names curl, fixed in jammy at
    // 7.81.0-1ubuntu1.14.
    let source = "Source: curl\n";
    let vulnerable = small_deb("libcurl4", "7.81.0-1ubuntu1.13", "amd64", source, "a");
    let answer = upload_deb(&daemon, &up, "jammy", &vulnerable);
    assert_eq!(answer["scan"]["ecosystem"], "Ubuntu:22.04:LTS");
    assert_eq!(
        findings(&answer["scan"]),
        [finding(
            "USN-6429-1",
            "critical",
            Some("7.81.0-1ubuntu1.14")
        )],
        "{answer}"
    );
    let first = &answer["scan"]["findings"][0];
    assert_eq!(first["cvss_score"], 9.8);
    assert!(
        first["cvss_vector"]
            .as_str()
            .unwrap()
            .starts_with("CVSS:3."),
        "{first}"
    );
    // A tilde sorts before the release it precedes.
    let tilde = small_deb("libcurl4", "7.81.0-1ubuntu1.14~rc1", "amd64", source, "b");
    assert_eq!(
        upload_deb(&daemon, &up, "jammy", &tilde)["scan"]["state"],
        "findings"
    );
    let fixed = small_deb("libcurl4", "7.81.0-1ubuntu1.14", "amd64", source, "c");
    assert_eq!(
        upload_deb(&daemon, &up, "jammy", &fixed)["scan"]["state"],
        "clean"
    );
    // Without the Source field, libcurl4 is only itself: no record names it.
    let unsourced = small_deb("libcurl4", "7.81.0-1ubuntu1.12", "amd64", "", "d");
    assert_eq!(
        upload_deb(&daemon, &up, "jammy", &unsourced)["scan"]["state"],
        "clean"
    );
    // Ubuntu records name source packages (the debian family says so): a
    // binary called curl built from another source is not curl.
    let other_source = small_deb(
        "curl",
        "7.81.0-1ubuntu1.13",
        "amd64",
        "Source: curl-ng\n",
        "e",
    );
    assert_eq!(
        upload_deb(&daemon, &up, "jammy", &other_source)["scan"]["state"],
        "clean"
    );
    // noble is Ubuntu:24.04:LTS, which USN-6429-1 does not list.
    let answer = upload_deb(&daemon, &up, "noble", &vulnerable);
    assert_eq!(answer["scan"]["ecosystem"], "Ubuntu:24.04:LTS");
    assert_eq!(answer["scan"]["state"], "clean");
}

#[test]
fn an_advisory_change_rescans_what_it_names_and_agrees_with_a_full_rescan() {
    let daemon = matching_only();
    let up = daemon.token("uploader", "ci");
    let source = "Source: curl\n";
    let a = upload_deb(
        &daemon,
        &up,
        "jammy",
        &small_deb("libcurl4", "7.81.0-1ubuntu1.13", "amd64", source, "a"),
    );
    let b = upload_deb(
        &daemon,
        &up,
        "jammy",
        &small_deb("curl", "7.81.0-1ubuntu1.15", "amd64", source, "b"),
    );
    let c = upload_deb(
        &daemon,
        &up,
        "jammy",
        &small_deb(
            "zlib1g",
            "1:1.2.11.dfsg-2ubuntu9",
            "amd64",
            "Source: zlib\n",
            "c",
        ),
    );
    assert_eq!(a["scan"]["state"], "clean", "no advisories yet");
    let scan_of = |v: &Value| {
        daemon
            .get(
                &format!("/api/v1/packages/{}/scan", v["id"].as_str().unwrap()),
                Some(&up),
            )
            .body
    };
    let states = || -> Vec<(String, usize)> {
        [&a, &b, &c]
            .iter()
            .map(|p| {
                let scan = scan_of(p);
                (
                    scan["state"].as_str().unwrap().to_owned(),
                    scan["findings"].as_array().unwrap().len(),
                )
            })
            .collect()
    };

    let imported = daemon.import_advisories(advisory_record("USN-6429-1.json"));
    // Only the two curl packages are named (and none is unscanned).
    assert_eq!(imported["rescanned"], 2, "{imported}");
    let incremental = states();
    assert_eq!(
        incremental,
        [
            ("findings".to_owned(), 1),
            ("clean".to_owned(), 0),
            ("clean".to_owned(), 0)
        ]
    );
    let full = daemon.post_json("/api/v1/scans/rescan", Some(&daemon.admin), json!({}));
    assert_eq!(full.status, 200, "{}", full.body);
    assert_eq!(full.body["scanned"], 3);
    assert_eq!(states(), incremental, "a full re-scan finds the same");

    // A later revision says 7.81.0-1ubuntu1.16 fixes it: b is affected now.
    let mut revised: Value = serde_json::from_slice(&advisory_record("USN-6429-1.json")).unwrap();
    revised["modified"] = json!("2030-01-01T00:00:00Z");
    for affected in revised["affected"].as_array_mut().unwrap() {
        if affected["package"]["ecosystem"] == "Ubuntu:22.04:LTS" {
            affected["ranges"][0]["events"][1]["fixed"] = json!("7.81.0-1ubuntu1.16");
        }
    }
    let imported = daemon.import_advisories(revised.to_string().into_bytes());
    assert_eq!(imported["updated"], 1);
    assert_eq!(imported["rescanned"], 2, "{imported}");
    let incremental = states();
    assert_eq!(incremental[1], ("findings".to_owned(), 1));
    assert_eq!(scan_of(&b)["findings"][0]["fixed"], "7.81.0-1ubuntu1.16");
    let full = daemon.post_json("/api/v1/scans/rescan", Some(&daemon.admin), json!({}));
    assert_eq!(full.body["with_findings"], 2);
    assert_eq!(states(), incremental, "a full re-scan finds the same");
}

#[test]
fn a_codename_added_by_config_scans_in_its_own_ecosystem() {
    // Debian 9 is no first-party codename: the config adds it, with the
    // ecosystem the real DLA records use.
    let daemon = Daemon::builder()
        .config(
            "[scan]\npolicy = \"none\"\n\
             [plugin.debian.distributions.stretch]\n\
             display-name = \"Debian 9\"\ngrype = \"debian:9\"\nosv = \"Debian:9\"\n",
        )
        .start();
    let up = daemon.token("uploader", "ci");
    daemon.import_advisories(advisory_record("DLA-3008-1.json"));
    let source = "Source: openssl\n";
    // DLA-3008-1: openssl in Debian:9, fixed in 1.1.0l-1~deb9u6.
    let cases = [
        ("1.1.0l-1~deb9u5", Some("1.1.0l-1~deb9u6")),
        ("1.1.0f-3+deb9u2", Some("1.1.0l-1~deb9u6")),
        ("1.1.0l-1~deb9u6", None),
        ("1.1.0l-1", None),
    ];
    for (version, fixed) in cases {
        let bytes = small_deb("libssl1.1", version, "amd64", source, version);
        let answer = upload_deb(&daemon, &up, "stretch", &bytes);
        assert_eq!(answer["scan"]["ecosystem"], "Debian:9", "{answer}");
        match fixed {
            Some(fixed) => assert_eq!(
                findings(&answer["scan"]),
                [finding("DLA-3008-1", "unknown", Some(fixed))],
                "{version}"
            ),
            None => assert_eq!(answer["scan"]["state"], "clean", "{version}"),
        }
    }
}
