//! Delta RPMs (`deltas = N`): what repod lists in prestodelta.xml rebuilds
//! each newer package byte for byte with the stock `applydeltarpm`, the
//! sequences check against the old packages, and the entries are those
//! createrepo_c `--deltas` writes for the same files.
//!
//! dnf itself is not driven here: it applies deltas against the installed
//! files through `rpmdumpheader`, which Debian's deltarpm does not ship.
//!
//! The daemon makes deltas in the background and publishes again when they
//! are ready, so the tests wait for the listing they expect.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;

use repod_tests::bench::run;
use repod_tests::{Daemon, fixtures};
use sha2::{Digest, Sha256};

/// One `<delta>` as listed: (new NEVRA, old EVR) -> (filename, sequence,
/// size, sha256).
type Listed = BTreeMap<(String, String), (String, String, u64, String)>;

/// The listing once it has `pairs` deltas (the background job's publish
/// comes within seconds).
fn prestodelta_with(repo: &Path, pairs: usize) -> Listed {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let listed = prestodelta(repo);
        if listed.len() == pairs || std::time::Instant::now() > deadline {
            return listed;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}

fn prestodelta(repo: &Path) -> Listed {
    let repomd = std::fs::read_to_string(repo.join("repodata/repomd.xml")).unwrap();
    let doc = roxmltree::Document::parse(&repomd).unwrap();
    let href = doc
        .descendants()
        .find(|n| n.has_tag_name("data") && n.attribute("type") == Some("prestodelta"))
        .and_then(|d| d.children().find(|c| c.has_tag_name("location")))
        .and_then(|l| l.attribute("href"))
        .unwrap_or_else(|| panic!("no prestodelta in {repomd}"));
    let mut xml = String::new();
    flate2::read::MultiGzDecoder::new(std::fs::File::open(repo.join(href)).unwrap())
        .read_to_string(&mut xml)
        .unwrap();
    let doc = roxmltree::Document::parse(&xml).unwrap();
    let mut out = Listed::new();
    for new in doc.descendants().filter(|n| n.has_tag_name("newpackage")) {
        let a = |n: roxmltree::Node, k: &str| n.attribute(k).unwrap().to_owned();
        let nevra = format!(
            "{}-{}:{}-{}.{}",
            a(new, "name"),
            a(new, "epoch"),
            a(new, "version"),
            a(new, "release"),
            a(new, "arch")
        );
        for delta in new.children().filter(|n| n.has_tag_name("delta")) {
            let old = format!(
                "{}:{}-{}",
                a(delta, "oldepoch"),
                a(delta, "oldversion"),
                a(delta, "oldrelease")
            );
            let text = |k: &str| {
                delta
                    .children()
                    .find(|c| c.has_tag_name(k))
                    .and_then(|c| c.text())
                    .unwrap()
                    .to_owned()
            };
            let duplicate = out.insert(
                (nevra.clone(), old),
                (
                    text("filename"),
                    text("sequence"),
                    text("size").parse().unwrap(),
                    text("checksum"),
                ),
            );
            assert!(duplicate.is_none(), "listed twice: {nevra} {xml}");
        }
    }
    out
}

fn build(dir: &Path, version: &str) -> PathBuf {
    fixtures::rpm_with_files(
        dir,
        "hello",
        version,
        "1",
        "x86_64",
        &["/usr/share/hello/a.txt", "/usr/share/hello/b.txt"],
    )
}

#[test]
fn published_deltas_rebuild_the_packages_and_match_createrepo_c() {
    let work = tempfile::tempdir().unwrap();
    let versions = ["1.0", "1.1", "1.2"];
    let rpms: Vec<PathBuf> = versions
        .iter()
        .map(|v| {
            let dir = work.path().join(v);
            std::fs::create_dir_all(&dir).unwrap();
            build(&dir, v)
        })
        .collect();

    let daemon = Daemon::builder()
        .config("[plugin.el.distributions.almalinux9]\ndeltas = 2\n")
        .start();
    let token = daemon.token("uploader", "deltas");
    for rpm in &rpms {
        daemon.upload_file("almalinux9", &token, rpm);
    }
    daemon.publish("almalinux9", &token);
    let repo = daemon.data.path().join("repos/almalinux9/x86_64");
    let listed = prestodelta_with(&repo, 3);
    daemon.wait_served("almalinux9/x86_64/repodata/repomd.xml");
    // 1.1 from 1.0; 1.2 from its two newest older versions.
    let pairs: Vec<(&str, &str)> = listed
        .keys()
        .map(|(new, old)| (new.as_str(), old.as_str()))
        .collect();
    assert_eq!(
        pairs,
        [
            ("hello-0:1.1-1.x86_64", "0:1.0-1"),
            ("hello-0:1.2-1.x86_64", "0:1.0-1"),
            ("hello-0:1.2-1.x86_64", "0:1.1-1"),
        ]
    );
    let rpm_of = |evr: &str| {
        let version = evr.trim_start_matches("0:").trim_end_matches("-1");
        &rpms[versions.iter().position(|v| *v == version).unwrap()]
    };
    for ((new, old), (filename, sequence, size, sha256)) in &listed {
        let file = repo.join(filename);
        let bytes = std::fs::read(&file).unwrap();
        assert_eq!(bytes.len() as u64, *size, "{filename}");
        assert_eq!(hex::encode(Sha256::digest(&bytes)), *sha256, "{filename}");
        // Served as listed.
        let (status, served) = daemon.get_bytes(&format!("/repos/almalinux9/x86_64/{filename}"));
        assert_eq!((status, served.len()), (200, bytes.len()), "{filename}");
        // The stock tool rebuilds the new package from the old one, byte
        // for byte, and the sequence checks against the old package.
        let old_rpm = rpm_of(old);
        let new_evr = new.trim_start_matches("hello-").trim_end_matches(".x86_64");
        let rebuilt = work.path().join("rebuilt.rpm");
        run(Command::new("applydeltarpm")
            .arg("-r")
            .arg(old_rpm)
            .arg(&file)
            .arg(&rebuilt));
        assert_eq!(
            std::fs::read(&rebuilt).unwrap(),
            std::fs::read(rpm_of(new_evr)).unwrap(),
            "{new} from {old}"
        );
        run(Command::new("applydeltarpm")
            .arg("-r")
            .arg(old_rpm)
            .args(["-s", sequence]));
    }

    // createrepo_c --deltas on the same files: the same pairs and sequences.
    let theirs = work.path().join("createrepo");
    let old = work.path().join("old");
    std::fs::create_dir_all(&theirs).unwrap();
    std::fs::create_dir_all(&old).unwrap();
    for rpm in &rpms {
        std::fs::copy(rpm, theirs.join(rpm.file_name().unwrap())).unwrap();
        std::fs::copy(rpm, old.join(rpm.file_name().unwrap())).unwrap();
    }
    run(Command::new("createrepo_c")
        .args(["--no-database", "--quiet", "--deltas", "--num-deltas", "2"])
        .arg("--oldpackagedirs")
        .arg(&old)
        .arg(&theirs));
    let their_listed = prestodelta(&theirs);
    // repomd.xml lists prestodelta where createrepo_c does, after the
    // metadata and group entries.
    let types = |root: &Path| -> Vec<String> {
        let repomd = std::fs::read_to_string(root.join("repodata/repomd.xml")).unwrap();
        let doc = roxmltree::Document::parse(&repomd).unwrap();
        doc.descendants()
            .filter(|n| n.has_tag_name("data"))
            .map(|n| n.attribute("type").unwrap().to_owned())
            .collect()
    };
    assert_eq!(types(&repo), types(&theirs));
    assert_eq!(
        their_listed.keys().collect::<Vec<_>>(),
        listed.keys().collect::<Vec<_>>()
    );
    for (key, (filename, sequence, size, _)) in &their_listed {
        let ours = &listed[key];
        assert_eq!(&ours.1, sequence, "{key:?} sequence");
        // Justified: createrepo_c puts deltas in drpms/, repod in
        // repodata/drpms/ (inside the directory it replaces atomically),
        // and libdrpm's files are a byte longer than makedeltarpm's.
        assert_eq!(ours.0, format!("repodata/{filename}"), "{key:?}");
        assert!(ours.2.abs_diff(*size) <= 1, "{key:?}: {} vs {size}", ours.2);
    }

    // The newest version removed: the next publish lists deltas to what
    // the tree now holds only. (Older versions stay delta sources while a
    // kept repository version holds them.)
    let listed_packages = daemon.get(
        "/api/v1/distributions/almalinux9/packages",
        Some(&daemon.admin),
    );
    let newest = listed_packages.body["packages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["version"] == "1.2-1")
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let maintainer = daemon.token("maintainer", "m");
    let removed = daemon.delete(&format!("/api/v1/packages/{newest}"), Some(&maintainer));
    assert!(removed.status < 300, "{}", removed.body);
    daemon.publish("almalinux9", &token);
    let pairs: Vec<(String, String)> = prestodelta(&repo).into_keys().collect();
    assert_eq!(
        pairs,
        [("hello-0:1.1-1.x86_64".to_owned(), "0:1.0-1".to_owned())]
    );
    assert!(
        !repo
            .join("repodata/drpms/hello-1.1-1_1.2-1.x86_64.drpm")
            .exists()
    );
}

#[test]
fn packages_at_max_delta_rpm_size_get_none() {
    let daemon = Daemon::builder()
        .config("[plugin.el.distributions.almalinux9]\ndeltas = 1\nmax-delta-rpm-size = 1000\n")
        .start();
    let token = daemon.token("uploader", "deltas");
    let work = tempfile::tempdir().unwrap();
    for v in ["1.0", "1.1"] {
        let dir = work.path().join(v);
        std::fs::create_dir_all(&dir).unwrap();
        let rpm = build(&dir, v);
        assert!(std::fs::metadata(&rpm).unwrap().len() >= 1000);
        daemon.upload_file("almalinux9", &token, &rpm);
    }
    let report = daemon.publish("almalinux9", &token);
    assert_eq!(report["deltas"], 0, "{report}");
    let repo = daemon.data.path().join("repos/almalinux9/x86_64");
    // The index is there (createrepo_c writes it empty too), with nothing.
    assert!(prestodelta(&repo).is_empty());
    assert!(
        !daemon.data.path().join("deltas").exists()
            || std::fs::read_dir(daemon.data.path().join("deltas"))
                .unwrap()
                .next()
                .is_none()
    );
}

#[test]
fn a_distribution_without_deltas_lists_none() {
    let daemon = Daemon::start();
    let token = daemon.token("uploader", "deltas");
    let work = tempfile::tempdir().unwrap();
    for v in ["1.0", "1.1"] {
        let dir = work.path().join(v);
        std::fs::create_dir_all(&dir).unwrap();
        daemon.upload_file("almalinux9", &token, &build(&dir, v));
    }
    daemon.publish("almalinux9", &token);
    let repo = daemon.data.path().join("repos/almalinux9/x86_64");
    let repomd = std::fs::read_to_string(repo.join("repodata/repomd.xml")).unwrap();
    assert!(!repomd.contains("prestodelta"), "{repomd}");
    assert!(!repo.join("repodata/drpms").exists());
}
