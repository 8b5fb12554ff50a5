//! The repository signing key: created at first start, kept private (0600,
//! outside the served tree), served as armored and binary public keys, and
//! producing signatures that the real `gpgv` (what apt 2.6 runs) accepts,
//! and rejects when the data or the key is wrong.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;

use repod::signing::SigningKey;
use repod_tests::Daemon;

fn gpgv(keyring: &Path, args: &[&Path]) -> (bool, String) {
    let out = Command::new("gpgv")
        .arg("--keyring")
        .arg(keyring)
        .args(args)
        .output()
        .expect("gpgv (Debian package gpgv) is needed");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn signatures_verify_with_gpgv_and_tampering_is_caught() {
    let dir = tempfile::tempdir().unwrap();
    let key =
        SigningKey::load_or_create(&dir.path().join("keys"), "test <t@test.invalid>").unwrap();
    let other =
        SigningKey::load_or_create(&dir.path().join("other"), "other <o@test.invalid>").unwrap();
    let keyring = dir.path().join("repo.gpg");
    std::fs::write(&keyring, key.public_binary()).unwrap();
    let wrong_keyring = dir.path().join("wrong.gpg");
    std::fs::write(&wrong_keyring, other.public_binary()).unwrap();

    let release = b"Origin: repod\nSuite: test\nSHA256:\n 0123 10 main/binary-amd64/Packages\n";
    let file = |name: &str, bytes: &[u8]| {
        let p = dir.path().join(name);
        std::fs::write(&p, bytes).unwrap();
        p
    };
    let data = file("Release", release);
    let inrelease = file("InRelease", &key.sign_cleartext(release).unwrap());
    let detached = file("Release.gpg", &key.sign_detached_armored(release).unwrap());
    let binary = file("Release.sig", &key.sign_detached_binary(release).unwrap());
    assert!(
        std::fs::read_to_string(&inrelease)
            .unwrap()
            .starts_with("-----BEGIN PGP SIGNED MESSAGE-----")
    );

    for (what, args) in [
        ("cleartext", vec![inrelease.as_path()]),
        ("armored", vec![detached.as_path(), data.as_path()]),
        ("binary", vec![binary.as_path(), data.as_path()]),
    ] {
        let (ok, log) = gpgv(&keyring, &args);
        assert!(ok, "{what}: {log}");
        assert!(log.contains(&key.fingerprint()[24..]), "{what}: {log}");
        let (ok, log) = gpgv(&wrong_keyring, &args);
        assert!(!ok, "{what} verified with the wrong key: {log}");
    }
    let tampered = file(
        "Release.tampered",
        b"Origin: evil\nSuite: test\nSHA256:\n 0123 10 main/binary-amd64/Packages\n",
    );
    let (ok, log) = gpgv(&keyring, &[detached.as_path(), tampered.as_path()]);
    assert!(!ok && log.contains("BAD signature"), "{log}");
    let edited = std::fs::read_to_string(&inrelease)
        .unwrap()
        .replace("Suite: test", "Suite: evil");
    let edited = file("InRelease.edited", edited.as_bytes());
    let (ok, log) = gpgv(&keyring, &[edited.as_path()]);
    assert!(!ok && log.contains("BAD signature"), "{log}");
}

#[test]
fn the_daemon_creates_keeps_and_serves_only_the_public_key() {
    let mut daemon = Daemon::builder().fresh_key().start();
    let keys = daemon.data.path().join("keys");
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&keys), 0o700);
    assert_eq!(mode(&keys.join("signing.key")), 0o600);

    let asc = daemon.get("/repos/keys/repod.asc", None);
    assert_eq!(asc.status, 200);
    let asc = asc.body.as_str().unwrap().to_owned();
    assert!(
        asc.starts_with("-----BEGIN PGP PUBLIC KEY BLOCK-----"),
        "{asc}"
    );
    assert!(!asc.contains("PRIVATE"));
    let (status, gpg) = daemon.raw_get("/repos/keys/repod.gpg");
    assert_eq!(status, 200);
    let body_at = gpg.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
    let keyring = daemon.data.path().join("served.gpg");
    std::fs::write(&keyring, &gpg[body_at..]).unwrap();
    let listed = Command::new("gpg")
        .args(["--no-default-keyring", "--keyring"])
        .arg(&keyring)
        .args(["--with-colons", "--list-keys"])
        .output()
        .unwrap();
    let listed = String::from_utf8_lossy(&listed.stdout).into_owned();
    assert!(
        listed.contains("pub:") && listed.contains(":4096:1:"),
        "an RSA-4096 public key: {listed}"
    );
    assert!(!listed.contains("sec:"));
    for escape in [
        "/repos/../keys/signing.key",
        "/repos/keys/../../keys/signing.key",
        "/repos/%2e%2e/keys/signing.key",
    ] {
        let (status, _) = daemon.raw_get(escape);
        assert!(matches!(status, 400 | 404), "{escape}: {status}");
    }

    // A restart keeps the same key.
    daemon.kill();
    daemon.restart();
    assert_eq!(
        daemon
            .get("/repos/keys/repod.asc", None)
            .body
            .as_str()
            .unwrap(),
        asc
    );
}

#[test]
fn rpm_imports_the_key_the_daemon_generated() {
    // As a new user would: no imported key, the served one into rpm.
    let daemon = Daemon::builder().fresh_key().start();
    let asc = daemon.get("/repos/keys/repod.asc", None);
    assert_eq!(asc.status, 200);
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("repod.asc");
    std::fs::write(&key, asc.body.as_str().unwrap()).unwrap();
    let root = dir.path().join("root");
    let out = Command::new("rpmkeys")
        .arg("--root")
        .arg(&root)
        .arg("--import")
        .arg(&key)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // It is in the rpmdb, under the key id's last 8 hex digits.
    let fingerprint = std::fs::read_to_string(daemon.data.path().join("daemon.log"))
        .unwrap()
        .lines()
        .find_map(|l| l.split("fingerprint=").nth(1))
        .map(|f| {
            f.split_whitespace()
                .next()
                .unwrap()
                .trim_matches('"')
                .to_lowercase()
        })
        .expect("the daemon logs its key's fingerprint");
    let listed = Command::new("rpm")
        .arg("--root")
        .arg(&root)
        .args(["-q", "gpg-pubkey"])
        .output()
        .unwrap();
    let listed = String::from_utf8_lossy(&listed.stdout).into_owned();
    assert!(
        listed.starts_with(&format!("gpg-pubkey-{}-", &fingerprint[32..])),
        "{listed} / {fingerprint}"
    );
}

#[test]
fn an_existing_key_can_be_imported_and_bad_ones_change_nothing() {
    let gnupg = tempfile::tempdir().unwrap();
    let gpg = |args: &[&str]| {
        let out = Command::new("gpg")
            .env("GNUPGHOME", gnupg.path())
            .args(["--batch", "--quiet", "--passphrase", ""])
            .args(args)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "gpg {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        out.stdout
    };
    gpg(&[
        "--quick-gen-key",
        "Imported Repo <imported@test.invalid>",
        "rsa3072",
        "sign",
        "never",
    ]);
    let secret = gpg(&["--export-secret-keys", "--armor"]);
    let public = gpg(&["--export"]);
    let listing = String::from_utf8(gpg(&["--with-colons", "--list-keys"])).unwrap();
    let fingerprint = listing
        .lines()
        .find_map(|l| l.strip_prefix("fpr:::::::::"))
        .unwrap()
        .trim_end_matches(':')
        .to_owned();

    let mut daemon = Daemon::start();
    let generated = daemon.get("/repos/keys/repod.asc", None).body;
    daemon.kill();
    let import = |bytes: &[u8]| {
        let file = daemon.data.path().join("import.key");
        std::fs::write(&file, bytes).unwrap();
        daemon
            .cli()
            .args(["key", "import"])
            .arg(&file)
            .output()
            .unwrap()
    };
    let key_file = daemon.data.path().join("keys/signing.key");
    let before = std::fs::read(&key_file).unwrap();
    for (what, bytes, words) in [
        (
            "public key only",
            public.as_slice(),
            "no valid secret signing key",
        ),
        ("garbage", b"hello".as_slice(), "not an OpenPGP key"),
    ] {
        let out = import(bytes);
        assert!(!out.status.success(), "{what} accepted");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(words), "{what}: {stderr}");
        assert_eq!(
            std::fs::read(&key_file).unwrap(),
            before,
            "{what} changed the stored key"
        );
    }
    let out = import(&secret);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert_eq!(stdout.lines().last(), Some(fingerprint.as_str()));

    daemon.restart();
    let served = daemon.get("/repos/keys/repod.asc", None).body;
    assert_ne!(served, generated);
    let keyring = daemon.data.path().join("served.asc");
    std::fs::write(&keyring, served.as_str().unwrap()).unwrap();
    let shown = Command::new("gpg")
        .args(["--show-keys", "--with-colons"])
        .arg(&keyring)
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&shown.stdout).contains(&fingerprint));
}
