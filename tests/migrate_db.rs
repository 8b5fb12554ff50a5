//! `repod migrate-db`: an installation moved to another database serves
//! the same signed trees to stock apt and dnf, and goes on taking changes.
//!
//! The source is always SQLite (the default). The target is a fresh
//! PostgreSQL schema when the suite runs on PostgreSQL (scripts/test's
//! second run), another SQLite file otherwise.

use repod_tests::rpm::{Dnf, client_config, ok};
use repod_tests::{Daemon, fixtures};

#[test]
fn apt_and_dnf_see_the_same_trees_after_migrate_db() {
    let mut daemon = Daemon::builder().sqlite().start();
    let up = daemon.token("uploader", "ci");
    let maintainer = daemon.token("maintainer", "release");
    let dir = tempfile::tempdir().unwrap();
    let deb = |name: &str, version: &str| {
        let out = dir.path().join(format!("{name}-{version}"));
        std::fs::create_dir_all(&out).unwrap();
        fixtures::deb(&out, name, version, "amd64", "", name)
    };
    for file in [
        deb("hello", "1.0-1"),
        deb("hello", "1.1-1"),
        deb("tool", "2.0-1"),
    ] {
        daemon.upload_file("jammy", &up, &file);
    }
    let rpm = |name: &str| fixtures::rpm(dir.path(), name, "1.0", "1", "x86_64", "");
    for file in [rpm("alpha"), rpm("beta")] {
        daemon.upload_file("almalinux9", &up, &file);
    }
    // History worth keeping: a removal (a later version) and a promotion.
    let tool = daemon.get("/api/v1/packages?distribution=jammy&name=tool", Some(&up));
    let tool_id = tool.body["packages"][0]["id"].as_str().unwrap().to_owned();
    assert_eq!(
        daemon
            .delete(&format!("/api/v1/packages/{tool_id}"), Some(&maintainer))
            .status,
        204
    );
    let promoted = daemon.post_json(
        "/api/v1/distributions/promote",
        Some(&maintainer),
        serde_json::json!({"package": "alpha", "from_dist": "almalinux9", "to_dist": "rocky9"}),
    );
    assert_eq!(promoted.status, 201, "{}", promoted.body);
    for dist in ["jammy", "almalinux9", "rocky9"] {
        daemon.publish(dist, &maintainer);
    }
    let tops = [
        "/repos/dists/jammy/InRelease",
        "/repos/almalinux9/x86_64/repodata/repomd.xml",
    ];
    let before: Vec<Vec<u8>> = tops.iter().map(|p| daemon.fetch(p)).collect();
    let versions_before = daemon.get("/api/v1/distributions/jammy/versions", Some(&up));
    assert_eq!(versions_before.status, 200, "{}", versions_before.body);

    // Stopped, moved, started on the new database with the same data dir.
    daemon.kill();
    let target = repod_tests::fresh_database()
        .unwrap_or_else(|| format!("sqlite:{}", dir.path().join("moved.db").display()));
    let source = format!("sqlite:{}", daemon.data.path().join("repod.db").display());
    let migrate = |from: &str, to: &str| {
        daemon
            .cli()
            .args(["migrate-db", "--from", from, "--to", to])
            .output()
            .unwrap()
    };
    let out = migrate(&source, &target);
    assert!(out.status.success(), "{out:?}");
    let table = String::from_utf8(out.stdout).unwrap();
    for line in ["packages\t6", "blobs\t5", "tokens\t3", "memberships\t"] {
        assert!(table.contains(line), "{line} in\n{table}");
    }
    // Into a database that holds rows: refused, nothing changed.
    let again = migrate(&source, &target);
    assert!(!again.status.success());
    let stderr = String::from_utf8_lossy(&again.stderr);
    assert!(stderr.contains("is not empty"), "{stderr}");
    let missing = migrate(
        &format!("sqlite:{}", dir.path().join("nothing.db").display()),
        &target,
    );
    assert!(String::from_utf8_lossy(&missing.stderr).contains("does not exist"));

    daemon.database = Some(target);
    daemon.restart();
    let after: Vec<Vec<u8>> = tops.iter().map(|p| daemon.fetch(p)).collect();
    assert!(before == after, "the top-level files changed: republished?");
    // The same versions, and (once the publisher has looked at the tree it
    // found at start) the same one published.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let after = daemon.get("/api/v1/distributions/jammy/versions", Some(&up));
        if after.body == versions_before.body {
            break;
        }
        assert!(
            after.body["published"].is_null() && std::time::Instant::now() < deadline,
            "{} vs {}",
            after.body,
            versions_before.body
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }

    let key = daemon.served_key();
    let apt = repod_tests::apt::root_for(&daemon, "jammy", "", "amd64", &[], &key);
    apt.update().assert_ok();
    let plan = apt.install_simulated(&["hello"]);
    assert_eq!(plan, [("hello", "1.1-1", "amd64")]);
    assert!(!apt.policy(&["tool"]).contains("2.0-1"), "tool was removed");

    let dnf = Dnf::new(&client_config(&daemon, "almalinux9"), "x86_64");
    ok(&mut dnf.cmd(&["makecache"]));
    assert_eq!(dnf.repoquery(), ["alpha-1.0-1.x86_64", "beta-1.0-1.x86_64"]);
    let rocky = Dnf::new(&client_config(&daemon, "rocky9"), "x86_64");
    ok(&mut rocky.cmd(&["makecache"]));
    assert_eq!(rocky.repoquery(), ["alpha-1.0-1.x86_64"]);

    // It goes on: an upload makes the next version and apt sees it.
    daemon.upload_file("jammy", &up, &deb("hello", "1.2-1"));
    let report = daemon.publish("jammy", &maintainer);
    let latest = versions_before.body["latest"].as_i64().unwrap();
    assert!(latest >= 4, "{}", versions_before.body);
    assert_eq!(report["version"], latest + 1, "{report}");
    apt.update().assert_ok();
    let plan = apt.install_simulated(&["hello"]);
    assert_eq!(plan, [("hello", "1.2-1", "amd64")]);
}
