//! Stock dnf and zypper against the rpm-md trees repod publishes, over HTTP,
//! with metadata signature checking on (`repo_gpgcheck=1`) and package
//! signatures checked too: the test signs its RPMs with the same key the
//! daemon signs repomd.xml with, as an organisation with one release key
//! would. Each runs twice: with the key the daemon generated at first
//! start (rpm 4.14-4.18 refused sequoia's critical subpackets until the
//! daemon issued its self-signatures without them), and with a gpg-made
//! key imported with `repod key import`.
//!
//! Recipes and traps: ../shared/recipes/CLIENTS.md §4-5 (Debian's dnf.conf
//! has `skip_if_unavailable=True`, which turns a bad signature into rc 0;
//! it is overridden here).

use std::path::{Path, PathBuf};
use std::process::Command;

use repod_tests::rpm::{Dnf, Signer, client_config, daemon_signed_by, ok, run, sha256, text};
use repod_tests::{Daemon, fixtures};
use sha2::{Digest, Sha256};

/// A daemon with the key it generated itself, and a signer holding it.
fn with_own_key() -> (Daemon, Signer) {
    let daemon = Daemon::builder().fresh_key().start();
    let signer = Signer::of_daemon(&daemon);
    (daemon, signer)
}

/// A daemon signing with an imported gpg-made key, and that key.
fn with_imported_key() -> (Daemon, Signer) {
    let signer = Signer::new();
    (daemon_signed_by(&signer), signer)
}

#[test]
fn dnf_reads_two_el_distributions_with_the_daemons_own_key() {
    let (daemon, signer) = with_own_key();
    dnf_reads_two_el_distributions(&daemon, &signer);
}

#[test]
fn dnf_reads_two_el_distributions_with_an_imported_key() {
    let (daemon, signer) = with_imported_key();
    dnf_reads_two_el_distributions(&daemon, &signer);
}

fn dnf_reads_two_el_distributions(daemon: &Daemon, signer: &Signer) {
    let token = daemon.token("uploader", "rpm");
    let dir = tempfile::tempdir().unwrap();
    let mut built = Vec::new();
    for arch in ["x86_64", "aarch64", "noarch"] {
        let file = fixtures::rpm(dir.path(), "hello", "1.0", "1", arch, "");
        signer.sign_rpm(&file);
        built.push(file);
    }
    // almalinux9 publishes zstd repodata, rocky8 gzip (the plugin's choice).
    for dist in ["almalinux9", "rocky8"] {
        for file in &built {
            daemon.upload_file(dist, &token, file);
        }
        daemon.publish(dist, &token);
    }

    // The noarch file is listed in both architectures of both distributions
    // and stored once: the blob and four hard links to it (with an object
    // store: one object, served at all four paths).
    let noarch = &built[2];
    let blob = daemon.data.path().join(format!(
        "blobs/sha256/{}/{}",
        &sha256(noarch)[..2],
        sha256(noarch)
    ));
    if daemon.storage.is_none() {
        let links = std::os::unix::fs::MetadataExt::nlink(&std::fs::metadata(&blob).unwrap());
        assert_eq!(links, 5, "blob + almalinux9/rocky8 x x86_64/aarch64");
    } else {
        assert!(daemon.stored_blobs().contains(&sha256(noarch)));
    }
    for dist in ["almalinux9", "rocky8"] {
        for arch in ["x86_64", "aarch64"] {
            let path = format!("/repos/{dist}/{arch}/hello-1.0-1.noarch.rpm");
            let (status, served) = daemon.get_bytes(&path);
            assert_eq!(status, 200, "{path}");
            assert_eq!(
                hex::encode(Sha256::digest(&served)),
                sha256(noarch),
                "{path}"
            );
        }
    }

    for dist in ["almalinux9", "rocky8"] {
        let repo = client_config(daemon, dist);
        for (arch, want) in [
            ("x86_64", ["hello-1.0-1.noarch", "hello-1.0-1.x86_64"]),
            ("aarch64", ["hello-1.0-1.aarch64", "hello-1.0-1.noarch"]),
        ] {
            let dnf = Dnf::new(&repo, arch);
            let out = ok(&mut dnf.cmd(&["makecache"]));
            assert!(
                out.contains("Metadata cache created"),
                "{dist} {arch}: {out}"
            );
            assert_eq!(dnf.repoquery(), want, "{dist} {arch}");
            // install --downloadonly checks each package's signature too.
            let dest = dnf.dir.path().join("dl");
            ok(dnf
                .cmd(&["install", "--downloadonly"])
                .arg(format!("--destdir={}", dest.display()))
                .arg(format!("hello.{arch}")));
            let got = dest.join(format!("hello-1.0-1.{arch}.rpm"));
            let sent = built
                .iter()
                .find(|b| b.ends_with(format!("hello-1.0-1.{arch}.rpm")))
                .unwrap();
            assert_eq!(sha256(&got), sha256(sent), "{dist} {arch}");
        }
    }
}

#[test]
fn dnf_installs_a_32_bit_library_next_to_the_64_bit_one() {
    // Multilib as Koji does it: almalinux9 takes i686 packages, and lists
    // the 32-bit libraries ("runtime") in its x86_64 repository too. With
    // zchunk files: Debian's librepo is built without zchunk, so dnf here
    // is a client that must keep to the gzip files.
    let daemon = Daemon::builder()
        .config(
            "[plugin.el.distributions.almalinux9]\n\
             architectures = [\"x86_64\", \"i686\", \"noarch\"]\nmultilib = \"runtime\"\n\
             zchunk = true\n",
        )
        .start();
    let signer = Signer::of_daemon(&daemon);
    let token = daemon.token("uploader", "rpm");
    let dir = tempfile::tempdir().unwrap();
    let built = [
        fixtures::rpm_with_files(
            dir.path(),
            "libdemo",
            "1.0",
            "1",
            "x86_64",
            &["/usr/lib64/libdemo.so.1"],
        ),
        fixtures::rpm_with_files(
            dir.path(),
            "libdemo",
            "1.0",
            "1",
            "i686",
            &["/usr/lib/libdemo.so.1"],
        ),
        fixtures::rpm_with_files(
            dir.path(),
            "demotool",
            "1.0",
            "1",
            "i686",
            &["/usr/bin/demotool"],
        ),
    ];
    for file in &built {
        signer.sign_rpm(file);
        daemon.upload_file("almalinux9", &token, file);
    }
    daemon.publish("almalinux9", &token);
    let repomd = x86_64_repomd(&daemon);
    assert!(repomd.contains("<data type=\"primary_zck\">"), "{repomd}");
    let repo = client_config(&daemon, "almalinux9");
    let dnf = Dnf::new(&repo, "x86_64");
    ok(&mut dnf.cmd(&["makecache"]));
    // The 32-bit tool stays in the i686 repository.
    assert_eq!(
        dnf.repoquery(),
        ["libdemo-1.0-1.i686", "libdemo-1.0-1.x86_64"]
    );
    ok(&mut dnf.cmd(&["install", "libdemo.x86_64", "libdemo.i686"]));
    for lib in ["usr/lib64/libdemo.so.1", "usr/lib/libdemo.so.1"] {
        assert!(dnf.dir.path().join("root").join(lib).exists(), "{lib}");
    }
    let installed = ok(Command::new("rpm")
        .arg("--root")
        .arg(dnf.dir.path().join("root"))
        .args(["-q", "libdemo"]));
    assert_eq!(installed.trim(), "libdemo-1.0-1.x86_64\nlibdemo-1.0-1.i686");
    // The tool is only in the i686 repository (no EL 9 client reads it:
    // dnf's $basearch for i686 is i386; it is there for completeness).
    let served = |path: &str| daemon.get_bytes(&format!("/repos/almalinux9/{path}")).0;
    assert_eq!(served("i686/demotool-1.0-1.i686.rpm"), 200);
    assert_eq!(served("x86_64/demotool-1.0-1.i686.rpm"), 404);
    assert_eq!(served("x86_64/libdemo-1.0-1.i686.rpm"), 200);
}

#[test]
fn repod_signs_the_rpms_of_a_distribution_that_asks_and_rpm_and_dnf_accept_them() {
    let daemon = Daemon::builder()
        .config(
            "[publish]\nkeep-superseded-seconds = 0\n[versions]\nkeep-last = 1\nkeep-days = 0\n\
             [plugin.el.distributions.almalinux9]\nsign-packages = true\n",
        )
        .start();
    let ours = Signer::of_daemon(&daemon).fingerprint[24..].to_ascii_lowercase();
    let token = daemon.token("uploader", "rpm");
    let maintainer = daemon.token("maintainer", "m");
    let dir = tempfile::tempdir().unwrap();
    let unsigned = fixtures::rpm(dir.path(), "signme", "1.0", "1", "x86_64", "");
    let answer = daemon.upload_file("almalinux9", &token, &unsigned);
    assert_eq!(answer.status, 201, "{}", answer.body);
    assert_eq!(
        answer.body["signature_key_id"],
        ours.as_str(),
        "{}",
        answer.body
    );
    let signed_sha = answer.body["sha256"].as_str().unwrap().to_owned();
    assert_ne!(signed_sha, sha256(&unsigned));
    // The same upload again is the same signed file (200, nothing new).
    let again = daemon.upload_file("almalinux9", &token, &unsigned);
    assert_eq!(again.status, 200, "{}", again.body);
    assert_eq!(again.body["sha256"], signed_sha.as_str());
    // Both are stored: the signed copy and the upload it was made from.
    let blob = |sha: &str| {
        daemon
            .data
            .path()
            .join(format!("blobs/sha256/{}/{sha}", &sha[..2]))
    };
    assert!(blob(&signed_sha).exists() && blob(&sha256(&unsigned)).exists());
    // A package another key signed is signed again, by the repository key.
    let foreign = Signer::new();
    let other = fixtures::rpm(dir.path(), "othersigned", "1.0", "1", "x86_64", "");
    foreign.sign_rpm(&other);
    let answer = daemon.upload_file("almalinux9", &token, &other);
    assert_eq!(
        answer.body["signature_key_id"],
        ours.as_str(),
        "{}",
        answer.body
    );
    daemon.publish("almalinux9", &token);

    // rpm checks the published file against the served key...
    let work = tempfile::tempdir().unwrap();
    let published = work.path().join("signme-1.0-1.x86_64.rpm");
    let (status, served) = daemon.get_bytes("/repos/almalinux9/x86_64/signme-1.0-1.x86_64.rpm");
    assert_eq!(status, 200);
    std::fs::write(&published, served).unwrap();
    assert_eq!(sha256(&published), signed_sha);
    let key = work.path().join("repod.asc");
    std::fs::write(
        &key,
        daemon
            .get("/repos/keys/repod.asc", None)
            .body
            .as_str()
            .unwrap(),
    )
    .unwrap();
    let root = work.path().join("root");
    ok(Command::new("rpmkeys")
        .arg("--root")
        .arg(&root)
        .arg("--import")
        .arg(&key));
    let checked = ok(Command::new("rpmkeys")
        .arg("--root")
        .arg(&root)
        .arg("--checksig")
        .arg(&published));
    assert!(checked.contains("digests signatures OK"), "{checked}");
    // ...and dnf installs it with gpgcheck=1.
    let dnf = Dnf::new(&client_config(&daemon, "almalinux9"), "x86_64");
    ok(&mut dnf.cmd(&["makecache"]));
    let dest = dnf.dir.path().join("dl");
    ok(dnf
        .cmd(&["install", "--downloadonly"])
        .arg(format!("--destdir={}", dest.display()))
        .args(["signme", "othersigned"]));
    assert_eq!(sha256(&dest.join("signme-1.0-1.x86_64.rpm")), signed_sha);

    // Promotion into it takes only what the repository key signed.
    let plain = fixtures::rpm(dir.path(), "plainrocky", "1.0", "1", "x86_64", "");
    daemon.upload_file("rocky9", &token, &plain);
    let refused = daemon.post_json(
        "/api/v1/distributions/promote",
        Some(&maintainer),
        serde_json::json!({"package": "plainrocky", "from_dist": "rocky9", "to_dist": "almalinux9"}),
    );
    let detail = refused.problem(422);
    assert!(detail.contains("not signed by it"), "{detail}");

    // Retention collects the signed copy and, with it, the upload.
    let id = answer_id(&daemon, "signme");
    assert_eq!(
        daemon
            .delete(&format!("/api/v1/packages/{id}"), Some(&maintainer))
            .status,
        204
    );
    let report = daemon.publish("almalinux9", &token);
    assert_eq!(report["collected"]["blobs"], 2, "{report}");
    assert!(!blob(&signed_sha).exists() && !blob(&sha256(&unsigned)).exists());
}

/// The id of the package `name` in almalinux9.
fn answer_id(daemon: &Daemon, name: &str) -> String {
    let listed = daemon.get(
        "/api/v1/distributions/almalinux9/packages",
        Some(&daemon.admin),
    );
    listed.body["packages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == name)
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

#[test]
fn debuginfo_is_split_into_a_repository_dnf_has_disabled() {
    let daemon = Daemon::builder()
        .config("[plugin.el.distributions.almalinux9]\nsplit-debuginfo = true\n")
        .start();
    let signer = Signer::of_daemon(&daemon);
    let token = daemon.token("uploader", "rpm");
    let dir = tempfile::tempdir().unwrap();
    for name in ["hello", "hello-debuginfo", "hello-debugsource"] {
        let file = fixtures::rpm(dir.path(), name, "1.0", "1", "x86_64", "");
        signer.sign_rpm(&file);
        daemon.upload_file("almalinux9", &token, &file);
    }
    daemon.publish("almalinux9", &token);
    let repo = client_config(&daemon, "almalinux9");
    assert!(repo.contains("[repod-almalinux9-debuginfo]"), "{repo}");
    let dnf = Dnf::new(&repo, "x86_64");
    ok(&mut dnf.cmd(&["makecache"]));
    // The main repository no longer lists them...
    assert_eq!(dnf.repoquery(), ["hello-1.0-1.x86_64"]);
    // ...the debuginfo one does, once enabled, signatures checked as well.
    ok(&mut dnf.cmd(&["--enablerepo=repod-almalinux9-debuginfo", "makecache"]));
    let out = ok(&mut dnf.cmd(&[
        "-q",
        "--enablerepo=repod-almalinux9-debuginfo",
        "repoquery",
        "--qf",
        "%{name}-%{version}-%{release}.%{arch} %{repoid}",
    ]));
    let mut listed: Vec<&str> = out.lines().collect();
    listed.sort();
    assert_eq!(
        listed,
        [
            "hello-1.0-1.x86_64 repod-almalinux9",
            "hello-debuginfo-1.0-1.x86_64 repod-almalinux9-debuginfo",
            "hello-debugsource-1.0-1.x86_64 repod-almalinux9-debuginfo",
        ]
    );
    let dest = dnf.dir.path().join("dl");
    ok(dnf
        .cmd(&[
            "--enablerepo=repod-almalinux9-debuginfo",
            "install",
            "--downloadonly",
        ])
        .arg(format!("--destdir={}", dest.display()))
        .arg("hello-debuginfo"));
    assert!(dest.join("hello-debuginfo-1.0-1.x86_64.rpm").exists());
}

#[test]
fn dnf_refuses_a_tampered_repomd() {
    let signer = Signer::new();
    let daemon = daemon_signed_by(&signer);
    let token = daemon.token("uploader", "rpm");
    let dir = tempfile::tempdir().unwrap();
    let file = fixtures::rpm(dir.path(), "tamper", "1.0", "1", "noarch", "");
    daemon.upload_file("almalinux9", &token, &file);
    daemon.publish("almalinux9", &token);
    let repomd = daemon.served_file("almalinux9/x86_64/repodata/repomd.xml");
    let original = std::fs::read_to_string(&repomd).unwrap();
    let edited = original.replacen("<revision>", "<revision>1", 1);
    assert_ne!(edited, original, "repomd.xml has a <revision> to edit");
    std::fs::write(&repomd, edited).unwrap();
    let dnf = Dnf::new(&client_config(&daemon, "almalinux9"), "x86_64");
    let out = run(&mut dnf.cmd(&["makecache"]));
    assert!(
        !out.status.success(),
        "dnf accepted a tampered repomd.xml:\n{}",
        text(&out)
    );
    assert!(
        text(&out).contains("GPG signature verification error"),
        "{}",
        text(&out)
    );
}

#[test]
fn zypper_refreshes_and_downloads_from_opensuse_leap_with_the_daemons_own_key() {
    let (daemon, signer) = with_own_key();
    zypper_refreshes_and_downloads(&daemon, &signer);
}

#[test]
fn zypper_refreshes_and_downloads_from_opensuse_leap_with_an_imported_key() {
    let (daemon, signer) = with_imported_key();
    zypper_refreshes_and_downloads(&daemon, &signer);
}

fn zypper_refreshes_and_downloads(daemon: &Daemon, signer: &Signer) {
    let token = daemon.token("uploader", "rpm");
    let dir = tempfile::tempdir().unwrap();
    let file = fixtures::rpm(dir.path(), "leaphello", "1.0", "1", "x86_64", "");
    signer.sign_rpm(&file);
    daemon.upload_file("opensuse-leap-15.6", &token, &file);
    daemon.publish("opensuse-leap-15.6", &token);

    // The zypper command the daemon renders names the repository URL.
    let config = client_config(daemon, "opensuse-leap-15.6");
    let url = config
        .split_whitespace()
        .map(|w| w.trim_matches(|c| c == '\'' || c == '"'))
        .find(|w| w.starts_with("http://") && !w.contains("/keys/"))
        .unwrap_or_else(|| panic!("no repository URL in:\n{config}"))
        .replace("$basearch", "x86_64");
    let work = tempfile::tempdir().unwrap();
    let root = work.path().join("root");
    std::fs::create_dir_all(&root).unwrap();
    // Pin the served key in the root's rpmdb: no trust on first use.
    let key = work.path().join("repod.asc");
    let served = ureq::get(&format!("{}/repos/keys/repod.asc", daemon.url))
        .call()
        .unwrap();
    std::fs::write(&key, served.into_string().unwrap()).unwrap();
    ok(Command::new("rpmkeys")
        .arg("--root")
        .arg(&root)
        .arg("--import")
        .arg(&key));
    let zypper = || {
        let mut cmd = Command::new("zypper");
        cmd.env("ZYPP_LOGFILE", work.path().join("zypper.log"))
            .env("ZYPPTMPDIR", work.path())
            .arg("--root")
            .arg(&root)
            .arg("--non-interactive");
        cmd
    };
    ok(zypper().args(["ar", "-f", &url, "repod"]));
    let out = ok(zypper().args(["refresh", "-f"]));
    assert!(
        out.contains("All repositories have been refreshed"),
        "{out}"
    );
    let cache = work.path().join("dl");
    ok(zypper()
        .arg("--pkg-cache-dir")
        .arg(&cache)
        .args(["download", "leaphello"]));
    // `zypper download` exits 0 even when verification fails: the file
    // must be there.
    let got = walk(&cache)
        .into_iter()
        .find(|p| {
            p.file_name()
                .is_some_and(|n| n == "leaphello-1.0-1.x86_64.rpm")
        })
        .unwrap_or_else(|| panic!("nothing downloaded into {}", cache.display()));
    assert_eq!(sha256(&got), sha256(&file));
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push(p);
            }
        }
    }
    out
}

#[test]
fn comps_groups_are_published_and_dnf_lists_them() {
    let daemon = Daemon::start();
    let signer = Signer::of_daemon(&daemon);
    let token = daemon.token("uploader", "rpm");
    let maintainer = daemon.token("maintainer", "m");
    let dir = tempfile::tempdir().unwrap();
    let file = fixtures::rpm(dir.path(), "hello", "1.0", "1", "x86_64", "");
    signer.sign_rpm(&file);
    daemon.upload_file("almalinux9", &token, &file);
    let comps = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<comps>\n  <group>\n    \
                 <id>repod-tools</id>\n    <name>Repod Tools</name>\n    \
                 <description>What repod publishes</description>\n    \
                 <default>false</default>\n    <uservisible>true</uservisible>\n    \
                 <packagelist>\n      <packagereq type=\"mandatory\">hello</packagereq>\n    \
                 </packagelist>\n  </group>\n</comps>\n";
    let path = "/api/v1/distributions/almalinux9/comps";

    // Bad input changes nothing.
    for (bad, status, words) in [
        ("<groups/>", 400, "root element is <groups>"),
        ("<comps><group></comps>", 400, "not well-formed"),
    ] {
        let reply = daemon.put_bytes(path, Some(&maintainer), bad.as_bytes().to_vec());
        assert!(reply.problem(status).contains(words), "{bad}");
    }
    assert!(
        daemon
            .get(path, Some(&token))
            .problem(404)
            .contains("no comps set")
    );
    let deb = daemon.put_bytes(
        "/api/v1/distributions/jammy/comps",
        Some(&maintainer),
        comps.as_bytes().to_vec(),
    );
    assert!(deb.problem(404).contains("publishes no comps document"));

    let set = daemon.put_bytes(path, Some(&maintainer), comps.as_bytes().to_vec());
    assert_eq!(set.status, 200, "{}", set.body);
    assert_eq!(set.body["bytes"], comps.len());
    let got = daemon.get(path, Some(&token));
    assert_eq!(got.body.as_str().unwrap(), comps);
    let repomd = x86_64_repomd(&daemon);
    assert!(
        repomd.contains("<data type=\"group\">") && repomd.contains("<data type=\"group_gz\">"),
        "{repomd}"
    );

    let dnf = Dnf::new(&client_config(&daemon, "almalinux9"), "x86_64");
    ok(&mut dnf.cmd(&["makecache"]));
    let groups = ok(&mut dnf.cmd(&["group", "list", "--hidden"]));
    assert!(groups.contains("Repod Tools"), "{groups}");
    let info = ok(&mut dnf.cmd(&["group", "info", "repod-tools"]));
    assert!(
        info.contains("Mandatory Packages:") && info.contains("hello"),
        "{info}"
    );

    // Removed: the next tree has no groups.
    assert_eq!(daemon.delete(path, Some(&maintainer)).status, 204);
    let repomd = x86_64_repomd(&daemon);
    assert!(!repomd.contains("type=\"group"), "{repomd}");
}

/// almalinux9's x86_64 repomd.xml as published.
fn x86_64_repomd(daemon: &Daemon) -> String {
    std::fs::read_to_string(
        daemon
            .data
            .path()
            .join("repos/almalinux9/x86_64/repodata/repomd.xml"),
    )
    .unwrap()
}
