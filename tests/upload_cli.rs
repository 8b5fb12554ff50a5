//! `repod upload`, the bulk client, against a real daemon.

use std::process::Command;

use repod_tests::{Daemon, fixtures, repod_bin};

#[test]
fn bulk_upload_reports_added_present_and_rejected() {
    let daemon = Daemon::start();
    let token = daemon.token("uploader", "bulk");
    let dir = tempfile::tempdir().unwrap();
    let pkgs = dir.path().join("pkgs");
    std::fs::create_dir_all(pkgs.join("nested")).unwrap();
    for i in 0..6 {
        fixtures::deb(&pkgs, &format!("tool{i}"), "1.0-1", "amd64", "", "x");
    }
    fixtures::deb(&pkgs.join("nested"), "data", "2.0", "all", "", "y");
    fixtures::deb(&pkgs, "mainframe", "1.0", "s390x", "", "z");
    std::fs::write(pkgs.join("README.txt"), "not a package, not picked up").unwrap();
    // dpkg-deb's build trees are directories with no packages in them.

    let upload = || {
        Command::new(repod_bin())
            .args([
                "upload",
                "--distribution",
                "jammy",
                "--jobs",
                "3",
                "--url",
                &daemon.url,
            ])
            .arg(&pkgs)
            .env("REPOD_TOKEN", &token)
            .output()
            .unwrap()
    };
    let first = upload();
    let out = String::from_utf8(first.stdout).unwrap();
    assert_eq!(first.status.code(), Some(1), "{out}");
    assert!(
        out.ends_with("7 added, 0 quarantined, 0 already present, 1 rejected\n"),
        "{out}"
    );
    assert!(out.contains("mainframe_1.0_s390x.deb: 422: architecture s390x is not supported by distribution jammy"), "{out}");

    let second = upload();
    let out = String::from_utf8(second.stdout).unwrap();
    assert!(
        out.ends_with("0 added, 0 quarantined, 7 already present, 1 rejected\n"),
        "{out}"
    );
    let listed = daemon.get("/api/v1/distributions/jammy/packages", Some(&token));
    assert_eq!(listed.body["packages"].as_array().unwrap().len(), 7);

    let no_token = Command::new(repod_bin())
        .args([
            "upload",
            "--distribution",
            "jammy",
            "--url",
            &daemon.url,
            "--token",
            "repod_bad",
        ])
        .arg(pkgs.join("tool0_1.0-1_amd64.deb"))
        .output()
        .unwrap();
    let out = String::from_utf8(no_token.stdout).unwrap();
    assert!(
        out.contains("401: unknown or revoked token")
            && out.ends_with("0 added, 0 quarantined, 0 already present, 1 rejected\n"),
        "{out}"
    );
}
