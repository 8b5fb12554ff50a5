//! The vulnerability gate end to end with real advisories and stock apt:
//! a vulnerable upload is quarantined and apt cannot see it, a fixed one is
//! published, a maintainer's approval (with its justification) publishes
//! the vulnerable one, promotion carries the decision, a finding only the
//! target's ecosystem has re-opens review there; a stricter policy plugin,
//! loaded at runtime, blocks in its tier only.

use repod_tests::apt::root_for;
use repod_tests::fixtures::{self, small_deb};
use repod_tests::rpm::{Dnf, Signer, client_config, daemon_signed_by};
use repod_tests::{Daemon, Reply, advisory_record, wasm};
use serde_json::{Value, json};

/// libcurl4 built from curl, as Ubuntu ships it.
fn libcurl(version: &str, payload: &str) -> Vec<u8> {
    small_deb("libcurl4", version, "amd64", "Source: curl\n", payload)
}

fn upload(daemon: &Daemon, token: &str, dist: &str, bytes: &[u8]) -> Reply {
    daemon.upload(
        &format!("/api/v1/packages?distribution={dist}"),
        Some(token),
        bytes,
    )
}

fn decide(daemon: &Daemon, token: &str, id: &str, body: Value) -> Reply {
    daemon.post_json(
        &format!("/api/v1/packages/{id}/decision"),
        Some(token),
        body,
    )
}

fn scan_of(daemon: &Daemon, id: &str) -> Value {
    let reply = daemon.get(&format!("/api/v1/packages/{id}/scan"), Some(&daemon.admin));
    assert_eq!(reply.status, 200, "{}", reply.body);
    reply.body
}

/// A promoted row's scan once the background scan in its own ecosystem
/// replaced the one the promotion carried (the source's findings).
fn rescanned_in(daemon: &Daemon, id: &str, ecosystem: &str) -> Value {
    for _ in 0..100 {
        let scan = scan_of(daemon, id);
        if scan["ecosystem"] == ecosystem {
            return scan;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    panic!(
        "{id} was not re-scanned in {ecosystem}: {}",
        scan_of(daemon, id)
    );
}

const VULNERABLE: &str = "7.81.0-1ubuntu1.13";
const FIXED: &str = "7.81.0-1ubuntu1.14";

#[test]
fn quarantine_approval_and_promotion_as_apt_sees_them() {
    let daemon = Daemon::start();
    let up = daemon.token("uploader", "ci");
    let maintainer = daemon.token("maintainer", "security");
    daemon.import_advisories(advisory_record("USN-6429-1.json"));
    let key = daemon.served_key();

    // Critical with a fix: the default policy quarantines it.
    let held = upload(&daemon, &up, "jammy", &libcurl(VULNERABLE, "v"));
    assert_eq!(held.status, 202, "{}", held.body);
    assert_eq!(held.body["scan"]["state"], "quarantined");
    assert_eq!(held.body["scan"]["policy"], "default");
    assert_eq!(
        held.body["scan"]["findings"][0]["advisory_id"],
        "USN-6429-1"
    );
    assert_eq!(held.body["scan"]["findings"][0]["fixed"], FIXED);
    assert!(held.body["distribution_version"].is_null());
    assert!(
        held.body["held"].as_str().unwrap().contains("/decision"),
        "{}",
        held.body
    );
    let id = held.body["id"].as_str().unwrap().to_owned();
    // The fixed version goes straight in.
    let fixed = upload(&daemon, &up, "jammy", &libcurl(FIXED, "f"));
    assert_eq!(fixed.status, 201, "{}", fixed.body);
    assert_eq!(fixed.body["scan"]["state"], "clean");
    daemon.publish("jammy", &up);

    let jammy = root_for(&daemon, "jammy", "", "amd64", &[], &key);
    jammy.update().assert_ok();
    let policy = jammy.policy(&["libcurl4"]);
    assert!(policy.contains(FIXED), "{policy}");
    assert!(
        !policy.contains(VULNERABLE),
        "apt sees the quarantined one: {policy}"
    );

    let report = daemon.get("/api/v1/scans?distribution=jammy", Some(&up));
    assert_eq!(
        report.body["states"],
        json!({"clean": 1, "quarantined": 1}),
        "{}",
        report.body
    );

    // Decisions: maintainers only, a justification, a future expiry.
    decide(
        &daemon,
        &up,
        &id,
        json!({"decision": "approve", "justification": "x"}),
    )
    .problem(403);
    let detail = decide(
        &daemon,
        &maintainer,
        &id,
        json!({"decision": "approve", "justification": "  "}),
    )
    .problem(400);
    assert!(detail.contains("justification"), "{detail}");
    decide(
        &daemon,
        &maintainer,
        &id,
        json!({"decision": "allow", "justification": "x"}),
    )
    .problem(400);
    decide(
        &daemon,
        &maintainer,
        &id,
        json!({"decision": "approve", "justification": "x", "expires": "2001-01-01"}),
    )
    .problem(400);
    decide(
        &daemon,
        &maintainer,
        "no-such-id",
        json!({"decision": "approve", "justification": "x"}),
    )
    .problem(404);
    assert_eq!(
        scan_of(&daemon, &id)["state"],
        "quarantined",
        "refusals change nothing"
    );

    let why =
        "the libcurl4 build carries the upstream fix for CVE-2023-38545 (checked by security)";
    let approved = decide(
        &daemon,
        &maintainer,
        &id,
        json!({"decision": "approve", "justification": why}),
    );
    assert_eq!(approved.status, 201, "{}", approved.body);
    assert_eq!(approved.body["distribution_version"]["action"], "approve");
    assert_eq!(approved.body["scan"]["state"], "approved");
    assert_eq!(approved.body["decision"]["covers"], json!(["USN-6429-1"]));
    assert_eq!(approved.body["decision"]["actor"], "security");
    assert!(
        approved.body["publish"]["version"].is_number(),
        "{}",
        approved.body
    );
    jammy.update().assert_ok();
    let fetched = jammy.download(&[&format!("libcurl4={VULNERABLE}")]);
    assert_eq!(
        std::fs::read(&fetched[0]).unwrap(),
        libcurl(VULNERABLE, "v")
    );
    let audit = daemon.get("/api/v1/audit", Some(&daemon.admin));
    let entries = audit.body["entries"].as_array().unwrap();
    assert!(entries.iter().any(|e| e["action"] == "package.quarantine"));
    assert!(entries.iter().any(|e| e["action"] == "package.decision"
        && e["actor"] == "security"
        && e["detail"].as_str().unwrap().contains(why)));

    // The decision as OpenVEX, for Grype and Trivy.
    let vex = daemon.get("/api/v1/distributions/jammy/vex", Some(&up));
    assert_eq!(vex.status, 200, "{}", vex.body);
    assert_eq!(vex.body["@context"], "https://openvex.dev/ns/v0.2.0");
    let statements = vex.body["statements"].as_array().unwrap();
    assert_eq!(statements.len(), 1, "{}", vex.body);
    assert_eq!(statements[0]["status"], "not_affected");
    assert_eq!(statements[0]["vulnerability"]["name"], "USN-6429-1");
    assert_eq!(
        statements[0]["products"][0]["@id"],
        format!("pkg:deb/ubuntu/libcurl4@{VULNERABLE}?arch=amd64&distro=jammy")
    );
    assert!(
        statements[0]["impact_statement"]
            .as_str()
            .unwrap()
            .contains(why)
    );

    // Promotion carries the decision; noble (Ubuntu 24.04) has no finding.
    let promoted = daemon.post_json(
        "/api/v1/distributions/promote",
        Some(&maintainer),
        json!({"package": "libcurl4", "version": VULNERABLE, "from_dist": "jammy", "to_dist": "noble"}),
    );
    assert_eq!(promoted.status, 201, "{}", promoted.body);
    let noble_id = promoted.body["promoted"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    // Judged at once with what jammy knew (its findings, the approval)...
    assert_eq!(promoted.body["held"], json!([]), "{}", promoted.body);
    // ...then re-scanned in noble's ecosystem, in the background.
    let noble_scan = rescanned_in(&daemon, &noble_id, "Ubuntu:24.04:LTS");
    assert_eq!(noble_scan["state"], "approved", "{noble_scan}");
    assert_eq!(
        noble_scan["decision"]["inherited_from"],
        approved.body["decision"]["id"]
    );
    assert_eq!(noble_scan["decision"]["justification"], why);
    let noble = root_for(&daemon, "noble", "", "amd64", &[], &key);
    noble.update().assert_ok();
    assert!(noble.policy(&["libcurl4"]).contains(VULNERABLE));

    // An advisory only 24.04 has (written for this test: no real record
    // names one ecosystem alone) re-opens review in noble, not in jammy;
    // the package stays published there, flagged.
    let noble_only = json!({
        "id": "TEST-NOBLE-1",
        "modified": "2026-11-01T00:00:00Z",
        "summary": "a curl flaw only the 24.04 package has (test record)",
        "severity": [{"type": "CVSS_V3", "score": "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H"}],
        "affected": [{
            "package": {"ecosystem": "Ubuntu:24.04:LTS", "name": "curl"},
            "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "7.81.0-1ubuntu1.20"}]}]
        }]
    });
    let imported = daemon.import_advisories(noble_only.to_string().into_bytes());
    assert!(imported["rescanned"].as_u64().unwrap() >= 1, "{imported}");
    let noble_scan = scan_of(&daemon, &noble_id);
    assert_eq!(noble_scan["state"], "quarantined", "{noble_scan}");
    assert_eq!(noble_scan["findings"][0]["advisory_id"], "TEST-NOBLE-1");
    assert_eq!(scan_of(&daemon, &id)["state"], "approved");
    noble.update().assert_ok();
    assert!(
        noble.policy(&["libcurl4"]).contains(VULNERABLE),
        "never silently removed"
    );
    let report = daemon.get("/api/v1/scans?state=quarantined", Some(&up));
    let flagged: Vec<&str> = report.body["packages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["package"]["id"].as_str().unwrap())
        .collect();
    assert_eq!(flagged, [noble_id.as_str()]);
}

#[test]
fn rejection_removes_and_expiry_reopens() {
    let daemon = Daemon::start();
    let up = daemon.token("uploader", "ci");
    let maintainer = daemon.token("maintainer", "security");
    daemon.import_advisories(advisory_record("USN-6429-1.json"));
    let held = upload(&daemon, &up, "jammy", &libcurl(VULNERABLE, "v"));
    let id = held.body["id"].as_str().unwrap().to_owned();

    // Approved until shortly: once it expires, review re-opens.
    let expires = (chrono::Utc::now() + chrono::Duration::seconds(2))
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let approved = decide(
        &daemon,
        &maintainer,
        &id,
        json!({"decision": "approve", "justification": "until the fixed build lands", "expires": expires}),
    );
    assert_eq!(approved.status, 201, "{}", approved.body);
    assert_eq!(approved.body["scan"]["state"], "approved");
    // The daemon notices within seconds, without a scan being asked for.
    let reopened = (0..100).any(|_| {
        std::thread::sleep(std::time::Duration::from_millis(100));
        scan_of(&daemon, &id)["state"] == "quarantined"
    });
    assert!(reopened, "{}", scan_of(&daemon, &id));
    // Still published: flagged, not removed. A rejection removes it.
    let listed = |daemon: &Daemon| {
        daemon
            .get("/api/v1/distributions/jammy/packages", Some(&up))
            .body["packages"]
            .as_array()
            .unwrap()
            .len()
    };
    assert_eq!(listed(&daemon), 1);
    let rejected = decide(
        &daemon,
        &maintainer,
        &id,
        json!({"decision": "reject", "justification": "the fix did not land; use 1.14"}),
    );
    assert_eq!(rejected.status, 201, "{}", rejected.body);
    assert_eq!(rejected.body["distribution_version"]["action"], "reject");
    assert_eq!(rejected.body["scan"]["state"], "rejected");
    assert_eq!(listed(&daemon), 0);
    // A rollback to a version that had it does not bring it back.
    let before = rejected.body["distribution_version"]["number"]
        .as_i64()
        .unwrap()
        - 1;
    let rollback = daemon.post_json(
        "/api/v1/distributions/jammy/rollback",
        Some(&maintainer),
        json!({"version": before, "reason": "undo"}),
    );
    assert!(
        rollback.status == 200 || rollback.status == 201,
        "{}",
        rollback.body
    );
    assert_eq!(rollback.body["held_back"], 1, "{}", rollback.body);
    assert_eq!(listed(&daemon), 0);
    // The rejection is in the VEX document: affected, removed.
    let vex = daemon.get("/api/v1/distributions/jammy/vex", Some(&up));
    let statements = vex.body["statements"].as_array().unwrap();
    assert_eq!(statements.len(), 1, "{}", vex.body);
    assert_eq!(statements[0]["status"], "affected");
    assert!(
        statements[0]["action_statement"]
            .as_str()
            .unwrap()
            .contains("the fix did not land"),
        "{}",
        vex.body
    );
    // The same bytes again stay out.
    let again = upload(&daemon, &up, "jammy", &libcurl(VULNERABLE, "v"));
    assert_eq!(again.status, 202, "{}", again.body);
    assert_eq!(again.body["scan"]["state"], "rejected");
    assert_eq!(listed(&daemon), 0);

    // The same report from the CLI.
    let report = |args: &[&str]| {
        std::process::Command::new(repod_tests::repod_bin())
            .args(["scan", "report"])
            .args(args)
            .args(["--url", &daemon.url, "--token", &up])
            .output()
            .unwrap()
    };
    let out = report(&["--distribution", "jammy"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(
        text.starts_with("states: rejected 1\nworst severity: critical 1\n"),
        "{text}"
    );
    // One table row: state, worst, name, version, arch, distribution,
    // findings, id.
    let row: Vec<&str> = text
        .lines()
        .find(|l| l.contains(&id))
        .expect(&text)
        .split(['│', '┆'])
        .map(str::trim)
        .filter(|c| !c.is_empty())
        .collect();
    assert_eq!(
        row,
        [
            "rejected",
            "critical",
            "libcurl4",
            VULNERABLE,
            "amd64",
            "jammy",
            "1",
            id.as_str()
        ],
        "{text}"
    );
    let out = report(&["--state", "sideways"]);
    assert_eq!(out.status.code(), Some(3));
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown state"));

    // A quarantined package can be discarded outright: another build of
    // the same version is then judged afresh.
    let other = upload(&daemon, &up, "jammy", &libcurl("7.81.0-1ubuntu1.12", "h"));
    assert_eq!(other.status, 202, "{}", other.body);
    let other_id = other.body["id"].as_str().unwrap();
    let rebuilt = upload(
        &daemon,
        &up,
        "jammy",
        &libcurl("7.81.0-1ubuntu1.12", "rebuilt"),
    );
    assert_eq!(
        rebuilt.status, 409,
        "the held build keeps its name: {}",
        rebuilt.body
    );
    let path = format!("/api/v1/packages/{other_id}?reason=bad+build");
    assert_eq!(daemon.delete(&path, Some(&maintainer)).status, 204);
    daemon
        .get(&format!("/api/v1/packages/{other_id}"), Some(&up))
        .problem(404);
    let rebuilt = upload(
        &daemon,
        &up,
        "jammy",
        &libcurl("7.81.0-1ubuntu1.12", "rebuilt"),
    );
    assert_eq!(rebuilt.status, 202, "{}", rebuilt.body);
    let audit = daemon.get("/api/v1/audit", Some(&daemon.admin));
    assert!(
        audit.body["entries"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["action"] == "package.discard"
                && e["detail"].as_str().unwrap().ends_with(": bad build"))
    );
}

/// Names of what a distribution publishes now.

#[test]
fn promotion_and_migration_are_judged_by_the_target_tiers_policy() {
    // Three tiers of one release (one ecosystem): dev has no policy, qa the
    // default one, prod the strict example plugin.
    let tier = |id: &str| {
        format!(
            "[plugin.debian.distributions.{id}]\ndisplay-name = \"{id}\"\n\
             grype = \"ubuntu:22.04\"\nosv = \"Ubuntu:22.04:LTS\"\n"
        )
    };
    let daemon = Daemon::builder()
        .config(&format!(
            "[scan.distribution.jammy]\npolicy = \"none\"\n\
             [scan.distribution.jammy-prod]\npolicy = \"strict\"\n{}{}",
            tier("jammy-qa"),
            tier("jammy-prod")
        ))
        .start();
    let strict = std::fs::read(wasm("strict_policy")).unwrap();
    let loaded = daemon.post_bytes("/api/v1/plugins", Some(&daemon.admin), strict);
    assert_eq!(loaded.status, 201, "{}", loaded.body);
    let up = daemon.token("uploader", "ci");
    let maintainer = daemon.token("maintainer", "release");
    daemon.import_advisories(advisory_record("USN-6429-1.json"));

    // dev takes the vulnerable build (findings, allowed) and a clean one.
    let dev = upload(&daemon, &up, "jammy", &libcurl(VULNERABLE, "a"));
    assert_eq!(dev.status, 201, "{}", dev.body);
    assert_eq!(dev.body["scan"]["state"], "findings");
    let hello = small_deb("hello", "2.10-2", "amd64", "", "h");
    assert_eq!(upload(&daemon, &up, "jammy", &hello).status, 201);

    // Promoted into qa: its policy quarantines the critical finding with a
    // fix, so the row is stored but not published.
    let request = |to: &str| json!({"package": "libcurl4", "version": VULNERABLE, "from_dist": "jammy", "to_dist": to});
    let qa = daemon.post_json(
        "/api/v1/distributions/promote",
        Some(&maintainer),
        request("jammy-qa"),
    );
    // 200: stored, but the distribution's content did not change.
    assert_eq!(qa.status, 200, "{}", qa.body);
    assert_eq!(qa.body["promoted"], json!([]), "{}", qa.body);
    assert_eq!(qa.body["distribution_version"], Value::Null);
    let held = &qa.body["held"][0];
    assert_eq!(held["scan"]["state"], "quarantined", "{}", qa.body);
    assert_eq!(held["scan"]["policy"], "default");
    assert_eq!(held["scan"]["findings"][0]["advisory_id"], "USN-6429-1");
    assert!(
        held["scan"]["findings"][0]["aliases"]
            .as_array()
            .unwrap()
            .contains(&json!("UBUNTU-CVE-2023-38545")),
        "{held}"
    );
    let held_id = held["id"].as_str().unwrap().to_owned();
    assert_eq!(daemon.package_names("jammy-qa"), Vec::<String>::new());
    assert_eq!(scan_of(&daemon, &held_id)["state"], "quarantined");
    let audit = daemon.get("/api/v1/audit", Some(&daemon.admin));
    assert!(
        audit.body["entries"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["action"] == "package.quarantine" && e["target"] == held_id.as_str()),
        "{}",
        audit.body
    );

    // Into prod, whose strict policy blocks it: refused, nothing changed.
    // (Which rows have scans, in which states: the background scan of the
    // qa row may store a newer scan of it meanwhile.)
    let scanned = || {
        let mut rows: Vec<(String, String)> =
            daemon.get("/api/v1/scans", Some(&up)).body["packages"]
                .as_array()
                .unwrap()
                .iter()
                .map(|p| {
                    (
                        p["package"]["id"].as_str().unwrap().to_owned(),
                        p["state"].as_str().unwrap().to_owned(),
                    )
                })
                .collect();
        rows.sort();
        rows
    };
    let before = scanned();
    let blocked = daemon.post_json(
        "/api/v1/distributions/promote",
        Some(&maintainer),
        request("jammy-prod"),
    );
    let detail = blocked.problem(422);
    assert!(
        detail.contains("jammy-prod's scanner policy strict blocks"),
        "{detail}"
    );
    assert!(detail.contains("nothing changed"), "{detail}");
    assert_eq!(blocked.body["findings"][0]["advisory_id"], "USN-6429-1");
    assert_eq!(daemon.package_names("jammy-prod"), Vec::<String>::new());
    assert_eq!(scanned(), before);
    // A migration skips it, saying why, and copies the rest.
    let migrated = daemon.post_json(
        "/api/v1/distributions/migrate",
        Some(&maintainer),
        json!({"from_dist": "jammy", "to_dist": "jammy-prod"}),
    );
    assert_eq!(migrated.status, 200, "{}", migrated.body);
    assert_eq!(migrated.body["copied"], 1, "{}", migrated.body);
    assert_eq!(migrated.body["skipped"], 1);
    assert!(
        migrated.body["skips"][0]["reason"]
            .as_str()
            .unwrap()
            .contains("scanner policy strict blocks it"),
        "{}",
        migrated.body
    );
    assert_eq!(daemon.package_names("jammy-prod"), ["hello"]);

    // A maintainer approves it in qa (published there); the approval
    // travels to prod, where the strict policy then lets it in.
    let why = "curl is only used against our own mirror; fixed build follows";
    let approved = decide(
        &daemon,
        &maintainer,
        &held_id,
        json!({"decision": "approve", "justification": why}),
    );
    assert_eq!(approved.status, 201, "{}", approved.body);
    assert_eq!(daemon.package_names("jammy-qa"), ["libcurl4"]);
    let prod = daemon.post_json(
        "/api/v1/distributions/promote",
        Some(&maintainer),
        json!({"package": "libcurl4", "from_dist": "jammy-qa", "to_dist": "jammy-prod"}),
    );
    assert_eq!(prod.status, 201, "{}", prod.body);
    assert_eq!(prod.body["held"], json!([]));
    let prod_id = prod.body["promoted"][0]["id"].as_str().unwrap();
    let scan = scan_of(&daemon, prod_id);
    assert_eq!(scan["state"], "approved", "{scan}");
    assert_eq!(scan["decision"]["justification"], why);
    assert_eq!(daemon.package_names("jammy-prod"), ["hello", "libcurl4"]);
}

#[test]
fn a_stricter_policy_loaded_at_runtime_blocks_in_its_tier_only() {
    let daemon = Daemon::builder()
        .config("[scan.distribution.noble]\npolicy = \"strict\"\n")
        .start();
    let up = daemon.token("uploader", "ci");
    daemon.import_advisories(advisory_record("UBUNTU-CVE-2023-38545.json"));

    // The policy noble names is not loaded yet: fail closed (quarantine).
    let held = upload(&daemon, &up, "noble", &libcurl("7.81.0-1ubuntu1.12", "a"));
    assert_eq!(held.status, 202, "{}", held.body);
    assert!(
        held.body["scan"]["reason"]
            .as_str()
            .unwrap()
            .contains("strict ([scan] in the config) is not loaded"),
        "{}",
        held.body
    );

    let strict = std::fs::read(wasm("strict_policy")).unwrap();
    let loaded = daemon.post_bytes("/api/v1/plugins", Some(&daemon.admin), strict);
    assert_eq!(loaded.status, 201, "{}", loaded.body);
    let before = daemon.get("/api/v1/scans", Some(&up)).body;

    // CVSS 9.8 with a fix in 24.04: blocked, nothing stored.
    let blocked = upload(&daemon, &up, "noble", &libcurl(VULNERABLE, "b"));
    let detail = blocked.problem(422);
    assert!(
        detail.contains("blocked by the scanner policy strict"),
        "{detail}"
    );
    assert!(detail.contains("CVSS >= 7.0"), "{detail}");
    assert_eq!(
        blocked.body["findings"][0]["advisory_id"],
        "UBUNTU-CVE-2023-38545"
    );
    assert_eq!(blocked.body["findings"][0]["fixed"], "8.2.1-1ubuntu3.1");
    assert_eq!(daemon.get("/api/v1/scans", Some(&up)).body, before);
    // jammy keeps the default policy: quarantined, not blocked.
    let jammy = upload(&daemon, &up, "jammy", &libcurl(VULNERABLE, "b"));
    assert_eq!(jammy.status, 202, "{}", jammy.body);
    assert_eq!(jammy.body["scan"]["policy"], "default");
    // The fixed version passes the strict tier.
    let fixed = upload(&daemon, &up, "noble", &libcurl("8.2.1-1ubuntu3.1", "c"));
    assert_eq!(fixed.status, 201, "{}", fixed.body);
    assert_eq!(fixed.body["scan"]["state"], "clean");
}

#[test]
fn dnf_cannot_see_a_quarantined_rpm_until_it_is_approved() {
    let signer = Signer::new();
    let daemon = daemon_signed_by(&signer);
    let up = daemon.token("uploader", "ci");
    let maintainer = daemon.token("maintainer", "security");
    // ALSA-2023:0282: sudo, Important (High), fixed in 1.9.5p2-7.el9_1.1.
    daemon.import_advisories(advisory_record("ALSA-2023_0282.json"));
    let dir = tempfile::tempdir().unwrap();
    let build = |release: &str| {
        let file = fixtures::rpm(dir.path(), "sudo", "1.9.5p2", release, "x86_64", "");
        signer.sign_rpm(&file);
        file
    };
    let (vulnerable, fixed) = (build("7.el9"), build("7.el9_1.1"));
    let held = upload(
        &daemon,
        &up,
        "almalinux9",
        &std::fs::read(&vulnerable).unwrap(),
    );
    assert_eq!(held.status, 202, "{}", held.body);
    assert_eq!(
        held.body["scan"]["findings"][0]["advisory_id"],
        "ALSA-2023:0282"
    );
    assert_eq!(held.body["scan"]["findings"][0]["severity"], "high");
    let published = daemon.upload_file("almalinux9", &up, &fixed);
    assert_eq!(published.status, 201, "{}", published.body);
    daemon.publish("almalinux9", &up);

    let dnf = Dnf::new(&client_config(&daemon, "almalinux9"), "x86_64");
    // The first makecache imports the repository key (repo_gpgcheck).
    repod_tests::rpm::ok(&mut dnf.cmd(&["makecache"]));
    // Every version dnf can see, not only the newest.
    let all = || -> Vec<String> {
        let out = repod_tests::rpm::ok(&mut dnf.cmd(&[
            "-q",
            "repoquery",
            "--showduplicates",
            "--qf",
            "%{name}-%{version}-%{release}.%{arch}",
        ]));
        let mut names: Vec<String> = out.lines().map(str::to_owned).collect();
        names.sort();
        names
    };
    assert_eq!(all(), ["sudo-1.9.5p2-7.el9_1.1.x86_64"]);
    let approved = decide(
        &daemon,
        &maintainer,
        held.body["id"].as_str().unwrap(),
        json!({"decision": "approve", "justification": "needed on the build hosts until the rebuild"}),
    );
    assert_eq!(approved.status, 201, "{}", approved.body);
    repod_tests::rpm::ok(&mut dnf.cmd(&["makecache"]));
    assert_eq!(
        all(),
        ["sudo-1.9.5p2-7.el9.x86_64", "sudo-1.9.5p2-7.el9_1.1.x86_64"]
    );
}
