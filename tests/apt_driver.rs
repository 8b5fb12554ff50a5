//! Proves the apt driver (`harness/apt.rs`) against a repository that stock
//! tools publish: debs built with `dpkg-deb`, a tree exported and signed by
//! `reprepro` with a throwaway gpg key, served over loopback HTTP by a small
//! server in this file. Each check is one that fails when the driver is
//! wrong: the right key verifies, the dependency is resolved, the downloaded
//! files are the built ones, and a wrong key, a tampered `InRelease`, a
//! tampered `.deb` or a vanished server each count as failures, including
//! where apt itself exits 0.

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use repod_tests::apt::{AptRoot, rewrite_signed_by};
use repod_tests::fixtures::{deb, sha256_file};

// ---------------------------------------------------------------------------
// A published repository. Generating the two RSA keys is the slow part
// (about 1.5 s), and nextest runs every test in its own process, so the
// finished tree is kept in the target directory's tmp/ under a name derived
// from this file and the package builders: built once, reused by every test
// and every run until that source changes. Tests only read it: each serves
// its own copy.

struct Published {
    /// `target/tmp/apt-driver-repo-<hash>`: `www/apt/{dists,pool}`,
    /// `debs/` (as built), `key.asc`, `key.gpg`, `wrong.asc`.
    dir: PathBuf,
}

impl Published {
    /// The exported tree: `apt/dists/…`, `apt/pool/…`.
    fn www(&self) -> PathBuf {
        self.dir.join("www")
    }

    /// `gpg --armor --export` of the signing key.
    fn key_asc(&self) -> Vec<u8> {
        std::fs::read(self.dir.join("key.asc")).unwrap()
    }

    /// `gpg --export` of the signing key.
    fn key_gpg(&self) -> Vec<u8> {
        std::fs::read(self.dir.join("key.gpg")).unwrap()
    }

    /// `gpg --armor --export` of a key that signed nothing.
    fn wrong_asc(&self) -> Vec<u8> {
        std::fs::read(self.dir.join("wrong.asc")).unwrap()
    }

    /// A package as `dpkg-deb` built it, by file name.
    fn built(&self, file_name: &str) -> PathBuf {
        let path = self.dir.join("debs").join(file_name);
        assert!(path.is_file(), "no built {file_name}");
        path
    }
}

fn checked(cmd: &mut Command) -> Vec<u8> {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// Builds the repository into `out`: keys, debs, a reprepro export.
fn publish(out: &Path) {
    // GNUPGHOME in the system temp dir: gpg-agent's socket path must stay
    // short, whatever the target directory is.
    let gnupg = tempfile::tempdir().unwrap();
    std::fs::set_permissions(gnupg.path(), std::fs::Permissions::from_mode(0o700)).unwrap();
    let gpg = |args: &[&str]| {
        checked(
            Command::new("gpg")
                .env("GNUPGHOME", gnupg.path())
                .args(["--batch", "--quiet", "--passphrase", ""])
                .args(args),
        )
    };
    let result = std::panic::catch_unwind(|| {
        let mut fingerprints = vec![];
        for uid in [
            "Test Repo <repo@test.invalid>",
            "Wrong Key <wrong@test.invalid>",
        ] {
            gpg(&["--quick-gen-key", uid, "rsa3072", "sign", "never"]);
            let email = &uid[uid.find('<').unwrap() + 1..uid.len() - 1];
            let listing = String::from_utf8(gpg(&["--with-colons", "--list-keys", email])).unwrap();
            let fpr = listing
                .lines()
                .find_map(|l| l.strip_prefix("fpr:::::::::"))
                .unwrap()
                .trim_end_matches(':')
                .to_owned();
            fingerprints.push(fpr);
        }
        let (good, wrong) = (&fingerprints[0], &fingerprints[1]);
        std::fs::write(out.join("key.asc"), gpg(&["--armor", "--export", good])).unwrap();
        std::fs::write(out.join("key.gpg"), gpg(&["--export", good])).unwrap();
        std::fs::write(out.join("wrong.asc"), gpg(&["--armor", "--export", wrong])).unwrap();

        let build = out.join("build");
        std::fs::create_dir_all(out.join("debs")).unwrap();
        std::fs::create_dir(&build).unwrap();
        let mut debs = vec![
            deb(&build, "libhello", "1.0-1", "amd64", "", "hello amd64\n"),
            deb(&build, "libhello", "1.0-1", "arm64", "", "hello arm64\n"),
            deb(
                &build,
                "hello-data",
                "2.0-1",
                "all",
                "Depends: libhello (>= 1.0)\n",
                "data\n",
            ),
        ];
        for deb in &mut debs {
            let kept = out.join("debs").join(deb.file_name().unwrap());
            std::fs::rename(&*deb, &kept).unwrap();
            *deb = kept;
        }
        std::fs::remove_dir_all(&build).unwrap();

        let base = out.join("reprepro");
        std::fs::create_dir_all(base.join("conf")).unwrap();
        std::fs::write(
            base.join("conf/distributions"),
            format!(
                "Codename: testing\nSuite: testing\nArchitectures: amd64 arm64\nComponents: main\nSignWith: {good}\n"
            ),
        )
        .unwrap();
        checked(
            Command::new("reprepro")
                .env("GNUPGHOME", gnupg.path())
                .arg("--silent")
                .arg("-b")
                .arg(&base)
                .arg("--outdir")
                .arg(out.join("www/apt"))
                .args(["includedeb", "testing"])
                .args(&debs),
        );
        std::fs::remove_dir_all(&base).unwrap();
        assert!(out.join("www/apt/dists/testing/InRelease").is_file());
    });
    // gpg and reprepro started an agent for this GNUPGHOME.
    let _ = Command::new("gpgconf")
        .arg("--homedir")
        .arg(gnupg.path())
        .args(["--kill", "gpg-agent"])
        .output();
    if let Err(panic) = result {
        std::panic::resume_unwind(panic);
    }
}

/// The shared repository, built on first use (see [`Published`]).
fn published() -> Published {
    use sha2::Digest;
    let mut hash = sha2::Sha256::new();
    hash.update(include_str!("apt_driver.rs"));
    hash.update(include_str!("harness/fixtures.rs"));
    let key = &hex::encode(hash.finalize())[..16];
    let tmp = Path::new(env!("CARGO_TARGET_TMPDIR"));
    let dir = tmp.join(format!("apt-driver-repo-{key}"));
    if !dir.join("www").is_dir() {
        std::fs::create_dir_all(tmp).unwrap();
        // Built aside and renamed into place, so a reader never sees half a
        // tree; when two processes race, the loser's copy is dropped.
        let staging = tempfile::Builder::new()
            .prefix(".apt-driver-repo-")
            .tempdir_in(tmp)
            .unwrap();
        publish(staging.path());
        if std::fs::rename(staging.path(), &dir).is_err() {
            assert!(dir.join("www").is_dir(), "cannot create {}", dir.display());
        }
    }
    Published { dir }
}

// ---------------------------------------------------------------------------
// One test's own copy of the tree, served on 127.0.0.1.

struct Site {
    repo: Published,
    dir: tempfile::TempDir,
    server: Option<Server>,
    /// A deb822 source like the one repod's client-config returns.
    sources: String,
}

impl Site {
    fn new() -> Site {
        let repo = published();
        let dir = tempfile::tempdir().unwrap();
        copy_tree(&repo.www(), dir.path());
        let server = Server::start(dir.path().to_owned());
        let sources = format!(
            "# Test Repo (testing), as a repository would publish it.\n\
             # Fetch the key to /etc/apt/keyrings/repod.asc first.\n\
             Types: deb\n\
             URIs: http://{}/apt\n\
             Suites: testing\n\
             Components: main\n\
             Signed-By: /etc/apt/keyrings/repod.asc\n",
            server.addr
        );
        Site {
            repo,
            dir,
            server: Some(server),
            sources,
        }
    }

    /// A file of the served tree, e.g. `apt/dists/testing/InRelease`.
    fn file(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    fn requests(&self) -> Vec<String> {
        self.server.as_ref().unwrap().log.lock().unwrap().clone()
    }

    /// An apt root with this site's source and the right key (armored).
    fn client(&self) -> AptRoot {
        let apt = AptRoot::new("amd64", &[]);
        apt.add_signed_source("test", &self.sources, "repod.asc", &self.repo.key_asc());
        apt
    }
}

fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_tree(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

/// A static file server: GET and HEAD, HTTP/1.1 keep-alive (apt pipelines
/// requests), no conditional requests, so apt always gets (and verifies)
/// the current `InRelease`.
struct Server {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    /// `"<status> <target>"` per request.
    log: Arc<Mutex<Vec<String>>>,
    thread: Option<JoinHandle<()>>,
}

impl Server {
    fn start(root: PathBuf) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let log = Arc::new(Mutex::new(Vec::new()));
        let thread = {
            let (stop, log) = (stop.clone(), log.clone());
            std::thread::spawn(move || {
                for conn in listener.incoming() {
                    if stop.load(Ordering::SeqCst) {
                        break;
                    }
                    let Ok(conn) = conn else { continue };
                    let (root, log) = (root.clone(), log.clone());
                    std::thread::spawn(move || serve_connection(conn, &root, &log));
                }
            })
        };
        Server {
            addr,
            stop,
            log,
            thread: Some(thread),
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(self.addr); // wakes accept()
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn serve_connection(conn: TcpStream, root: &Path, log: &Mutex<Vec<String>>) {
    conn.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut reader = BufReader::new(conn.try_clone().unwrap());
    let mut writer = conn;
    loop {
        let mut request = String::new();
        if reader.read_line(&mut request).unwrap_or(0) == 0 {
            return;
        }
        let mut close = false;
        loop {
            let mut header = String::new();
            if reader.read_line(&mut header).unwrap_or(0) == 0 {
                return;
            }
            if header.trim().is_empty() {
                break;
            }
            let header = header.to_ascii_lowercase();
            close |= header.starts_with("connection:") && header.contains("close");
        }
        let mut words = request.split_whitespace();
        let (method, target) = (words.next().unwrap_or(""), words.next().unwrap_or("/"));
        let body = match method {
            "GET" | "HEAD" => resolve(root, target).and_then(|p| std::fs::read(p).ok()),
            _ => None,
        };
        let (status, body) = match body {
            Some(b) => ("200 OK", b),
            None => ("404 Not Found", b"not found\n".to_vec()),
        };
        log.lock()
            .unwrap()
            .push(format!("{} {target}", &status[..3]));
        let head = format!(
            "HTTP/1.1 {status}\r\nContent-Length: {}\r\nContent-Type: application/octet-stream\r\n\r\n",
            body.len()
        );
        let sent = writer.write_all(head.as_bytes()).and_then(|()| {
            if method == "HEAD" {
                Ok(())
            } else {
                writer.write_all(&body)
            }
        });
        if sent.is_err() || close {
            return;
        }
    }
}

/// The file a request target names under `root`: percent-decoded, no `..`.
fn resolve(root: &Path, target: &str) -> Option<PathBuf> {
    let path = target.split('?').next()?;
    let bytes = path.as_bytes();
    let mut decoded = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
            decoded.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            decoded.push(bytes[i]);
            i += 1;
        }
    }
    let path = String::from_utf8(decoded).ok()?;
    let mut file = root.to_owned();
    for part in path.split('/').filter(|p| !p.is_empty()) {
        if part == ".." || part == "." {
            return None;
        }
        file.push(part);
    }
    file.is_file().then_some(file)
}

fn file_names(paths: &[PathBuf]) -> Vec<String> {
    paths
        .iter()
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect()
}

// ---------------------------------------------------------------------------

#[test]
fn update_resolves_the_dependency_and_downloads_the_built_debs() {
    let site = Site::new();
    let apt = site.client();
    let source =
        std::fs::read_to_string(apt.path().join("etc/apt/sources.list.d/test.sources")).unwrap();
    let keyring = apt.path().join("etc/apt/keyrings/repod.asc");
    assert!(
        source.contains(&format!("\nSigned-By: {}\n", keyring.display()))
            && !source.contains("Signed-By: /etc/apt/keyrings/repod.asc"),
        "{source}"
    );

    let update = apt.update();
    update.assert_ok();
    assert!(update.stdout.contains("InRelease"), "{}", update.stdout);
    assert!(
        site.requests()
            .iter()
            .any(|r| r == "200 /apt/dists/testing/InRelease"),
        "{:?}",
        site.requests()
    );
    let lists = file_names(&apt.lists());
    assert!(
        lists
            .iter()
            .any(|f| f.ends_with("_dists_testing_InRelease"))
            && lists
                .iter()
                .any(|f| f.ends_with("_main_binary-amd64_Packages")),
        "{lists:?}"
    );
    // Only the native architecture was configured.
    assert!(
        !lists.iter().any(|f| f.contains("binary-arm64")),
        "{lists:?}"
    );

    let plan = apt.install_simulated(&["hello-data"]);
    assert_eq!(
        plan,
        [
            ("libhello", "1.0-1", "amd64"),
            ("hello-data", "2.0-1", "all")
        ]
    );
    let madison = apt.madison("libhello");
    assert_eq!(madison.len(), 1, "{madison:?}");
    assert_eq!(madison[0].version, "1.0-1");
    assert!(
        madison[0].source.ends_with("testing/main amd64 Packages"),
        "{madison:?}"
    );
    assert!(apt.policy(&["hello-data"]).contains("Candidate: 2.0-1"));
    assert!(
        apt.show("hello-data")
            .contains("Depends: libhello (>= 1.0)")
    );

    let debs = apt.download_only(&["hello-data"]);
    assert_eq!(
        file_names(&debs),
        ["hello-data_2.0-1_all.deb", "libhello_1.0-1_amd64.deb"]
    );
    for got in &debs {
        let name = got.file_name().unwrap().to_str().unwrap();
        assert_eq!(
            sha256_file(got),
            sha256_file(&site.repo.built(name)),
            "{name}"
        );
    }
    let fetched = apt.download(&["libhello"]);
    assert_eq!(file_names(&fetched), ["libhello_1.0-1_amd64.deb"]);
    assert_eq!(
        sha256_file(&fetched[0]),
        sha256_file(&site.repo.built("libhello_1.0-1_amd64.deb"))
    );
    // The sandbox stayed on: a root-owned unwritable directory would have
    // made apt warn (and assert_ok fail) above.
    let as_root = std::fs::metadata(apt.path())
        .map(|m| std::os::unix::fs::MetadataExt::uid(&m) == 0)
        .unwrap();
    assert_eq!(apt.sandboxed(), as_root);
}

#[test]
fn foreign_architectures_and_a_binary_keyring() {
    let site = Site::new();
    let apt = AptRoot::new("amd64", &["arm64"]);
    apt.add_signed_source("test", &site.sources, "repod.gpg", &site.repo.key_gpg());
    apt.update().assert_ok();
    assert!(
        site.requests()
            .iter()
            .any(|r| r.starts_with("200 /apt/dists/testing/main/binary-arm64/Packages")),
        "{:?}",
        site.requests()
    );
    assert_eq!(
        apt.install_simulated(&["libhello:arm64"]),
        [("libhello", "1.0-1", "arm64")]
    );
    assert_eq!(
        apt.install_simulated(&["hello-data"]),
        [
            ("libhello", "1.0-1", "amd64"),
            ("hello-data", "2.0-1", "all")
        ]
    );

    // Without the foreign architecture apt does not know the package.
    let native = site.client();
    native.update().assert_ok();
    native
        .run(&["install", "-s", "libhello:arm64"])
        .assert_fails(&["E: Unable to locate package libhello:arm64"]);
}

#[test]
fn a_wrong_key_fails_update_with_empty_lists() {
    let site = Site::new();
    let apt = AptRoot::new("amd64", &[]);
    apt.add_signed_source("test", &site.sources, "repod.asc", &site.repo.wrong_asc());
    let update = apt.update();
    update.assert_fails(&["NO_PUBKEY", "is not signed"]);
    assert_eq!(update.status, 100);
    assert!(
        !file_names(&apt.lists())
            .iter()
            .any(|f| f.ends_with("Packages")),
        "{:?}",
        apt.lists()
    );
    apt.run(&["install", "-s", "hello-data"])
        .assert_fails(&["Unable to locate package hello-data"]);
}

/// apt 2.6 exits 0 when a repository that updated fine before no longer
/// verifies, or cannot be reached: it warns and keeps the old lists.
#[test]
fn failures_after_a_good_update_are_not_silent_successes() {
    let mut site = Site::new();
    let apt = site.client();
    apt.update().assert_ok();

    // The key is replaced in place by one that signed nothing.
    apt.install_key("repod.asc", &site.repo.wrong_asc());
    let plain = apt.run_tool("apt-get", &["-q", "update"]);
    eprintln!("plain update with the wrong key: exit {}", plain.status);
    assert!(plain.check().is_err(), "{plain:?}");
    assert!(
        plain
            .problems()
            .iter()
            .any(|l| l.starts_with("W:") && l.contains("signature verification")),
        "{plain:?}"
    );
    let strict = apt.update();
    strict.assert_fails(&["NO_PUBKEY"]);
    assert_ne!(strict.status, 0, "Error-Mode=any makes it an error");

    // Back to the right key: fine again.
    apt.install_key("repod.asc", &site.repo.key_asc());
    apt.update().assert_ok();

    // The server goes away.
    drop(site.server.take());
    let plain = apt.run_tool("apt-get", &["-q", "update"]);
    eprintln!("plain update, server gone: exit {}", plain.status);
    assert!(
        plain
            .problems()
            .iter()
            .any(|l| l.starts_with("W:") && l.contains("Failed to fetch")),
        "{plain:?}"
    );
    assert!(plain.check().is_err());
    let strict = apt.update();
    strict.assert_fails(&["Failed to fetch"]);
    assert_ne!(strict.status, 0);
}

#[test]
fn a_tampered_inrelease_fails_with_badsig() {
    let site = Site::new();
    let before = site.client();
    before.update().assert_ok();

    // Change one hex digit of the first SHA256 entry: what swapping in
    // another Packages file would need.
    let path = site.file("apt/dists/testing/InRelease");
    let text = std::fs::read_to_string(&path).unwrap();
    let at = text.find("SHA256:\n ").expect("SHA256 section") + "SHA256:\n ".len();
    let flipped = if text.as_bytes()[at] == b'0' {
        "1"
    } else {
        "0"
    };
    let tampered = format!("{}{flipped}{}", &text[..at], &text[at + 1..]);
    assert_ne!(tampered, text);
    std::fs::write(&path, tampered).unwrap();

    let fresh = site.client();
    let update = fresh.update();
    update.assert_fails(&["BADSIG", "is not signed"]);
    assert_eq!(update.status, 100);
    // With lists from the good update, plain apt only warns (exit 0 in
    // apt 2.6); the driver fails either way.
    let plain = before.run_tool("apt-get", &["-q", "update"]);
    eprintln!("plain update, tampered InRelease: exit {}", plain.status);
    assert!(
        plain
            .problems()
            .iter()
            .any(|l| l.starts_with("W:") && l.contains("BADSIG")),
        "{plain:?}"
    );
    before.update().assert_fails(&["BADSIG"]);
}

#[test]
fn a_tampered_deb_is_not_downloaded() {
    let site = Site::new();
    let apt = site.client();
    apt.update().assert_ok();
    let pool = site.file("apt/pool/main/libh/libhello/libhello_1.0-1_amd64.deb");
    let mut bytes = std::fs::read(&pool).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0xff; // same size, other content
    std::fs::write(&pool, bytes).unwrap();

    apt.run(&["install", "-y", "--download-only", "hello-data"])
        .assert_fails(&["Hash Sum mismatch"]);
    let left = file_names(
        &std::fs::read_dir(apt.archives())
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect::<Vec<_>>(),
    );
    assert!(!left.iter().any(|f| f.starts_with("libhello")), "{left:?}");
}

#[test]
fn the_root_ignores_the_machine_configuration() {
    let apt = AptRoot::new("amd64", &["arm64"]);
    let root = apt.path().display().to_string();
    let value = |key: &str| {
        let out = apt.run_tool("apt-config", &["shell", "V", key]);
        out.assert_ok();
        out.stdout
            .trim()
            .strip_prefix("V='")
            .and_then(|v| v.strip_suffix('\''))
            .unwrap_or_else(|| panic!("{key}: {out:?}"))
            .to_owned()
    };
    for key in [
        "Dir::Etc::parts/d",
        "Dir::Etc::main/f",
        "Dir::Etc::trustedparts/d",
        "Dir::Etc::sourceparts/d",
        "Dir::State::lists/d",
        "Dir::Cache::archives/d",
        "Dir::State::status/f",
    ] {
        let v = value(key);
        assert!(v.starts_with(&root), "{key} = {v}, outside {root}");
    }
    assert_eq!(value("APT::Architecture"), "amd64");
    let dump = apt.run_tool("apt-config", &["dump"]);
    dump.assert_ok();
    assert!(
        dump.stdout.contains("APT::Architectures:: \"arm64\";"),
        "{}",
        dump.stdout
    );
    // The host's hooks (Docker's docker-clean, PackageKit) are not loaded.
    for hook in ["Post-Invoke", "Pre-Invoke", "PackageKit"] {
        assert!(!dump.stdout.contains(hook), "{hook} in:\n{}", dump.stdout);
    }
}

#[test]
fn signed_by_is_rewritten_whatever_its_form() {
    let keyring = Path::new("/tmp/root/etc/apt/keyrings/k.asc");
    let path_form = "Types: deb\nURIs: http://x/\nSuites: s\nComponents: main\nSigned-By: /etc/apt/keyrings/repod.asc\n";
    assert_eq!(
        rewrite_signed_by(path_form, keyring),
        "Types: deb\nURIs: http://x/\nSuites: s\nComponents: main\nSigned-By: /tmp/root/etc/apt/keyrings/k.asc\n"
    );
    let inline = "Types: deb\nsigned-by:\n -----BEGIN PGP PUBLIC KEY BLOCK-----\n .\n abc\n -----END PGP PUBLIC KEY BLOCK-----\nSuites: s\n";
    assert_eq!(
        rewrite_signed_by(inline, keyring),
        "Types: deb\nSigned-By: /tmp/root/etc/apt/keyrings/k.asc\nSuites: s\n"
    );
}

#[test]
#[should_panic(expected = "no Signed-By: field")]
fn a_source_without_signed_by_is_refused() {
    rewrite_signed_by("Types: deb\nURIs: http://x/\n", Path::new("/k.asc"));
}
