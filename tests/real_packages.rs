//! Real packages through the daemon: every deb fetched with `apt-get
//! download` and every rpm built with `rpmbuild` by
//! `scripts/fetch-test-packages` is uploaded, and each record is checked
//! against what `dpkg-deb -f` and `rpm -qp` say about the file.

use std::path::{Path, PathBuf};
use std::process::Command;

use repod_tests::{Daemon, fixtures};

fn files(dir: &Path, ext: &str) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == ext))
        .collect();
    out.sort();
    out
}

fn tool(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn real_debs_and_rpms_ingest_with_the_fields_the_tools_report() {
    let dir = fixtures::real_packages_dir();
    let daemon = Daemon::start();
    let token = daemon.token("uploader", "real");

    let debs = files(&dir.join("deb"), "deb");
    assert!(
        debs.len() >= 30,
        "only {} debs in {}",
        debs.len(),
        dir.display()
    );
    let (mut pre_depends, mut all, mut epochs, mut tilde_or_plus) = (0, 0, 0, 0);
    for deb in &debs {
        let fields = tool(Command::new("dpkg-deb").args(["-f"]).arg(deb).args([
            "Package",
            "Version",
            "Architecture",
        ]));
        let value = |name: &str| {
            fields
                .lines()
                .find_map(|l| l.strip_prefix(&format!("{name}: ")))
                .unwrap_or_else(|| panic!("{name} of {}", deb.display()))
                .to_owned()
        };
        let reply = daemon.upload(
            "/api/v1/packages?distribution=bookworm",
            Some(&token),
            &std::fs::read(deb).unwrap(),
        );
        assert_eq!(reply.status, 201, "{}: {reply:?}", deb.display());
        assert_eq!(reply.body["name"], value("Package"), "{}", deb.display());
        assert_eq!(reply.body["version"], value("Version"), "{}", deb.display());
        assert_eq!(
            reply.body["architecture"],
            value("Architecture"),
            "{}",
            deb.display()
        );
        assert_eq!(reply.body["sha256"], fixtures::sha256_file(deb));
        let control = tool(Command::new("dpkg-deb").args(["-f"]).arg(deb));
        pre_depends += usize::from(control.contains("\nPre-Depends:"));
        all += usize::from(value("Architecture") == "all");
        epochs += usize::from(value("Version").contains(':'));
        tilde_or_plus += usize::from(value("Version").contains(['~', '+']));
    }
    assert!(
        pre_depends > 0 && all > 0 && epochs > 0 && tilde_or_plus > 0,
        "{pre_depends} {all} {epochs} {tilde_or_plus}"
    );

    let rpmdb = tempfile::tempdir().unwrap();
    let rpms = files(&dir.join("rpm"), "rpm");
    let mut arches = std::collections::BTreeSet::new();
    for rpm in &rpms {
        let q = tool(
            Command::new("rpm")
                .arg("--dbpath")
                .arg(rpmdb.path())
                .args([
                    "-qp",
                    "--nosignature",
                    "--nodigest",
                    "--queryformat",
                    "%{NAME}|%{EPOCH}|%{VERSION}|%{RELEASE}|%{ARCH}|%{SOURCEPACKAGE}",
                ])
                .arg(rpm),
        );
        let parts: Vec<&str> = q.split('|').collect();
        let reply = daemon.upload(
            "/api/v1/packages?distribution=almalinux9",
            Some(&token),
            &std::fs::read(rpm).unwrap(),
        );
        if parts[5] == "1" {
            assert!(
                reply.problem(422).contains("source packages"),
                "{}",
                rpm.display()
            );
            continue;
        }
        // A signed and an unsigned build of the same package are different
        // files with the same name, version and architecture.
        if reply.status == 409 {
            assert!(
                rpm.file_name()
                    .unwrap()
                    .to_string_lossy()
                    .starts_with("signed-"),
                "{reply:?}"
            );
            continue;
        }
        assert_eq!(reply.status, 201, "{}: {reply:?}", rpm.display());
        let epoch = if parts[1] == "(none)" || parts[1] == "0" {
            String::new()
        } else {
            format!("{}:", parts[1])
        };
        assert_eq!(reply.body["name"], parts[0]);
        assert_eq!(
            reply.body["version"],
            format!("{epoch}{}-{}", parts[2], parts[3]),
            "{}",
            rpm.display()
        );
        assert_eq!(reply.body["architecture"], parts[4]);
        arches.insert(parts[4].to_owned());
    }
    assert_eq!(
        arches.into_iter().collect::<Vec<_>>(),
        ["aarch64", "noarch", "x86_64"]
    );
    let listed = daemon.get("/api/v1/packages?distribution=bookworm", Some(&token));
    assert_eq!(
        listed.body["packages"].as_array().unwrap().len(),
        debs.len()
    );
}
