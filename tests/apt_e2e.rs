//! Stock apt against trees repod publishes, over HTTP, signature checking on.
//!
//! Every source comes from the daemon's own `client-config` (deb822 with
//! `Signed-By`), pointed at the served key saved in the private apt root.
//! apt is driven by `repod_tests::apt` (private root through `APT_CONFIG`,
//! `Error-Mode=any`, any `W:`/`E:` line counts as a failure).

use std::path::{Path, PathBuf};
use std::process::Command;

use repod::signing::SigningKey;
use repod_tests::apt::AptRoot;
use repod_tests::{Daemon, fixtures};
use sha2::{Digest, Sha256};

fn sha256(path: &Path) -> String {
    hex::encode(Sha256::digest(std::fs::read(path).unwrap()))
}

fn served_key(daemon: &Daemon) -> Vec<u8> {
    daemon.served_key()
}

/// An apt root with `dist` configured exactly as the daemon says.
fn apt_for(daemon: &Daemon, dist: &str, arch: &str, extra: &[&str], key: &[u8]) -> AptRoot {
    repod_tests::apt::root_for(daemon, dist, "", arch, extra, key)
}

fn names(files: &[PathBuf]) -> Vec<String> {
    files
        .iter()
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect()
}

#[test]
fn apt_installs_from_two_codenames_and_two_architectures() {
    let daemon = Daemon::start();
    let token = daemon.token("uploader", "e2e");
    let dir = tempfile::tempdir().unwrap();
    let b = |name: &str, version: &str, arch: &str, extra: &str| {
        let out = dir.path().join(format!("{name}-{version}-{arch}"));
        std::fs::create_dir_all(&out).unwrap();
        fixtures::deb(
            &out,
            name,
            version,
            arch,
            extra,
            &format!("{name} {version} {arch}"),
        )
    };
    let lib_amd64 = b("libhello", "1.0-1", "amd64", "");
    let lib_arm64 = b("libhello", "1.0-1", "arm64", "");
    let data = b("hello-data", "2.0-1", "all", "Depends: libhello (>= 1.0)\n");
    let lib_noble = b("libhello", "1.1-1", "amd64", "");
    let tool_noble = b(
        "hello-tool",
        "3.0-1",
        "amd64",
        "Depends: libhello (>= 1.1), hello-data\n",
    );
    for file in [&lib_amd64, &lib_arm64, &data] {
        daemon.upload_file("jammy", &token, file);
    }
    for file in [&lib_noble, &data, &tool_noble] {
        daemon.upload_file("noble", &token, file);
    }
    daemon.publish("jammy", &token);
    daemon.publish("noble", &token);
    let key = served_key(&daemon);

    // jammy, amd64 with arm64 as a foreign architecture.
    let apt = apt_for(&daemon, "jammy", "amd64", &["arm64"], &key);
    apt.update().assert_ok();
    let plan = apt.install_simulated(&["hello-data"]);
    assert_eq!(
        plan,
        [
            ("libhello", "1.0-1", "amd64"),
            ("hello-data", "2.0-1", "all")
        ],
        "{plan:?}"
    );
    let plan = apt.install_simulated(&["libhello:arm64"]);
    assert_eq!(plan, [("libhello", "1.0-1", "arm64")], "{plan:?}");
    let files = apt.download_only(&["hello-data"]);
    assert_eq!(
        names(&files),
        ["hello-data_2.0-1_all.deb", "libhello_1.0-1_amd64.deb"]
    );
    // The two libhello builds are not Multi-Arch: same, so they cannot be
    // installed together; fetch the arm64 one on its own.
    let arm = apt.download(&["libhello:arm64"]);
    assert_eq!(names(&arm), ["libhello_1.0-1_arm64.deb"]);
    for (got, want) in files
        .iter()
        .chain(&arm)
        .zip([&data, &lib_amd64, &lib_arm64])
    {
        assert_eq!(sha256(got), sha256(want), "{}", got.display());
    }

    // noble: a dependency chain resolved from the repository.
    let apt = apt_for(&daemon, "noble", "amd64", &[], &key);
    apt.update().assert_ok();
    let plan = apt.install_simulated(&["hello-tool"]);
    let mut planned: Vec<String> = plan.iter().map(ToString::to_string).collect();
    planned.sort();
    assert_eq!(
        planned,
        [
            "hello-data 2.0-1 [all]",
            "hello-tool 3.0-1 [amd64]",
            "libhello 1.1-1 [amd64]"
        ]
    );
    let files = apt.download_only(&["hello-tool"]);
    for (got, want) in files.iter().zip([&data, &tool_noble, &lib_noble]) {
        assert_eq!(sha256(got), sha256(want), "{}", got.display());
    }
}

/// The same checks with a gpg-made key loaded by `repod key import` in
/// place of the one the daemon generated (the other tests use that one).
#[test]
fn apt_installs_with_an_imported_key() {
    let signer = repod_tests::rpm::Signer::new();
    let daemon = repod_tests::rpm::daemon_signed_by(&signer);
    let token = daemon.token("uploader", "e2e");
    let dir = tempfile::tempdir().unwrap();
    let deb = fixtures::deb(dir.path(), "imported", "1.0", "amd64", "", "x");
    daemon.upload_file("jammy", &token, &deb);
    daemon.publish("jammy", &token);
    let key = served_key(&daemon);
    // The served key is the imported one, and apt verifies with it.
    let served = dir.path().join("served.asc");
    std::fs::write(&served, &key).unwrap();
    let shown = repod_tests::rpm::ok(
        Command::new("gpg")
            .args(["--show-keys", "--with-colons"])
            .arg(&served),
    );
    assert!(shown.contains(&signer.fingerprint), "{shown}");
    let apt = apt_for(&daemon, "jammy", "amd64", &[], &key);
    apt.update().assert_ok();
    let files = apt.download_only(&["imported"]);
    assert_eq!(names(&files), ["imported_1.0_amd64.deb"]);
    assert_eq!(sha256(&files[0]), sha256(&deb));
}

#[test]
fn apt_refuses_a_foreign_key_and_a_tampered_release() {
    let daemon = Daemon::start();
    let token = daemon.token("uploader", "e2e");
    let dir = tempfile::tempdir().unwrap();
    daemon.upload_file(
        "jammy",
        &token,
        &fixtures::deb(dir.path(), "signed", "1.0", "amd64", "", "x"),
    );
    daemon.publish("jammy", &token);

    // A key that is not the repository's: refused from the first update.
    let other =
        SigningKey::load_or_create(&dir.path().join("other"), "other <o@test.invalid>").unwrap();
    let apt = apt_for(&daemon, "jammy", "amd64", &[], &other.public_armored());
    apt.update().assert_fails(&["NO_PUBKEY", "is not signed"]);

    // The right key works; then the Release text inside InRelease is edited.
    let apt = apt_for(&daemon, "jammy", "amd64", &[], &served_key(&daemon));
    apt.update().assert_ok();
    let served = daemon.served_file("dists/jammy/InRelease");
    let inrelease = std::fs::read_to_string(&served).unwrap();
    let tampered = inrelease.replacen("Suite: jammy", "Suite: jammx", 1);
    assert_ne!(tampered, inrelease);
    std::fs::write(&served, tampered).unwrap();
    // Lists from the good update exist: without Error-Mode=any apt would
    // exit 0 here and keep using them. (In the S3 run the ETag is the
    // stored file's SHA-256, which the tampering did not change: apt's
    // conditional request gets 304, so a fresh root asks for the file.)
    let apt = match daemon.storage {
        None => apt,
        Some(_) => apt_for(&daemon, "jammy", "amd64", &[], &served_key(&daemon)),
    };
    apt.update().assert_fails(&["BADSIG"]);

    // Without InRelease apt falls back to Release + Release.gpg. (Only in
    // the filesystem run: a node serving from the object store cannot lose
    // one file of a generation.)
    if daemon.storage.is_none() {
        let dists = daemon.data.path().join("repos/dists/jammy");
        std::fs::remove_file(dists.join("InRelease")).unwrap();
        let release = std::fs::read_to_string(dists.join("Release")).unwrap();
        std::fs::write(
            dists.join("Release"),
            release.replacen("Codename: jammy", "Codename: jammx", 1),
        )
        .unwrap();
        apt.update().assert_fails(&["BADSIG"]);
    }

    // A republish restores a tree apt accepts. (A fresh root: the root above
    // keeps the rejected InRelease in lists/partial, and apt asks for the
    // rest of it with Range, gets 416 as the sizes match, and re-checks its
    // own tampered copy; `apt-get update` on a real machine does the same
    // until lists/partial is cleared.)
    daemon.publish("jammy", &token);
    apt_for(&daemon, "jammy", "amd64", &[], &served_key(&daemon))
        .update()
        .assert_ok();
}

fn real_debs() -> Vec<PathBuf> {
    repod_tests::apt::debs_in(&fixtures::real_packages_dir().join("deb"))
}

fn control_field(deb: &Path, field: &str) -> String {
    let out = Command::new("dpkg-deb")
        .arg("-f")
        .arg(deb)
        .arg(field)
        .output()
        .unwrap();
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

#[test]
fn real_debian_packages_are_published_fetched_and_resolved() {
    // Only packages from the Debian archive (the fetch script also builds a
    // few with dpkg-deb to cover compressions; they are not "real" here).
    let debs: Vec<PathBuf> = real_debs()
        .into_iter()
        .filter(|p| {
            !p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("repod-")
        })
        .collect();
    assert!(debs.len() >= 30, "only {} real debs", debs.len());
    let daemon = Daemon::start();
    let token = daemon.token("uploader", "real");
    for deb in &debs {
        daemon.upload_file("bookworm", &token, deb);
    }
    daemon.publish("bookworm", &token);

    let apt = apt_for(&daemon, "bookworm", "amd64", &[], &served_key(&daemon));
    apt.update().assert_ok();
    let packages: Vec<(String, String)> = debs
        .iter()
        .map(|d| (control_field(d, "Package"), control_field(d, "Version")))
        .collect();
    // apt-get download checks each file against the signed index.
    let specs: Vec<String> = packages.iter().map(|(n, v)| format!("{n}={v}")).collect();
    let specs: Vec<&str> = specs.iter().map(String::as_str).collect();
    let fetched = apt.download(&specs);
    assert_eq!(fetched.len(), debs.len(), "{:?}", names(&fetched));
    let mut want: Vec<String> = debs.iter().map(|d| sha256(d)).collect();
    let mut got: Vec<String> = fetched.iter().map(|d| sha256(d)).collect();
    want.sort();
    got.sort();
    assert_eq!(got, want, "downloaded files differ from the uploaded ones");

    // Resolution: with this machine's dpkg status (so libc6 and friends
    // count as installed), every real package that is installed here at
    // the same version reinstalls from repod, and the rest resolve or fail
    // only on dependencies that are not in the repository.
    std::fs::copy(
        "/var/lib/dpkg/status",
        apt.path().join("var/lib/dpkg/status"),
    )
    .unwrap();
    let mut resolved = 0;
    for (name, version) in &packages {
        let spec = format!("{name}={version}");
        let out = apt.run(&["install", "-s", "--reinstall", &spec]);
        if out.ok() {
            assert!(
                out.stdout
                    .lines()
                    .any(|l| l.starts_with(&format!("Inst {name} "))
                        || l.starts_with(&format!("Inst {name}:"))),
                "{spec}: no Inst line:\n{}",
                out.stdout
            );
            resolved += 1;
        } else {
            let text = out.text();
            assert!(
                !text.contains("Unable to locate package") && !text.contains("not found"),
                "{spec} is not visible in the repository:\n{text}"
            );
        }
    }
    assert!(
        resolved >= 15,
        "only {resolved} of {} real packages resolved",
        packages.len()
    );
    eprintln!(
        "{resolved} of {} real packages resolved with apt-get install -s",
        packages.len()
    );
}
