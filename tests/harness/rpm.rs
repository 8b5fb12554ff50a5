//! Stock dnf (and rpm tooling) in private roots, for end-to-end tests.
//!
//! Recipes and traps: ../shared/recipes/CLIENTS.md §4-5 (Debian's dnf.conf
//! has `skip_if_unavailable=True`, which turns a bad signature into rc 0;
//! it is overridden here). A [`Signer`] is a throwaway gpg key that signs
//! both the RPMs and (imported with `repod key import`) the repository.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use sha2::{Digest, Sha256};

use crate::Daemon;

pub fn sha256(path: &Path) -> String {
    hex::encode(Sha256::digest(std::fs::read(path).unwrap()))
}

pub fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

pub fn run(cmd: &mut Command) -> Output {
    cmd.output()
        .unwrap_or_else(|e| panic!("{cmd:?}: {e} (is it installed?)"))
}

pub fn ok(cmd: &mut Command) -> String {
    let out = run(cmd);
    assert!(out.status.success(), "{cmd:?} failed:\n{}", text(&out));
    text(&out)
}

/// A throwaway RSA key in its own GNUPGHOME, used for the repository and
/// the packages alike.
pub struct Signer {
    pub home: tempfile::TempDir,
    pub fingerprint: String,
}

impl Signer {
    /// Generates a key: slow, and nothing a `Default` should do.
    #[allow(clippy::new_without_default)]
    pub fn new() -> Signer {
        let home = tempfile::tempdir().unwrap();
        let gpg = || {
            let mut cmd = Command::new("gpg");
            cmd.env("GNUPGHOME", home.path()).args(["-q", "--batch"]);
            cmd
        };
        ok(gpg().args([
            "--passphrase",
            "",
            "--quick-gen-key",
            "repod rpm test <rpm@test.invalid>",
            "rsa3072",
            "sign",
            "never",
        ]));
        Signer::in_home(home)
    }

    /// The signer whose secret key is the one in `home`.
    fn in_home(home: tempfile::TempDir) -> Signer {
        let listing = ok(Command::new("gpg").env("GNUPGHOME", home.path()).args([
            "-q",
            "--batch",
            "--with-colons",
            "--list-secret-keys",
        ]));
        let fingerprint = listing
            .lines()
            .find(|l| l.starts_with("fpr"))
            .unwrap()
            .split(':')
            .nth(9)
            .unwrap()
            .to_owned();
        Signer { home, fingerprint }
    }

    /// The daemon's own key (the one it generated at first start, in its
    /// data directory), imported into a private gpg home so that the test
    /// can sign packages with it as an organisation would.
    pub fn of_daemon(daemon: &Daemon) -> Signer {
        let home = tempfile::tempdir().unwrap();
        let gpg = || {
            let mut cmd = Command::new("gpg");
            cmd.env("GNUPGHOME", home.path()).args(["-q", "--batch"]);
            cmd
        };
        ok(gpg()
            .arg("--import")
            .arg(daemon.data.path().join("keys/signing.key")));
        Signer::in_home(home)
    }

    pub fn secret_key(&self) -> PathBuf {
        let path = self.home.path().join("secret.asc");
        let out = ok(Command::new("gpg")
            .env("GNUPGHOME", self.home.path())
            .args(["-q", "--batch", "--armor", "--export-secret-keys"])
            .arg(&self.fingerprint));
        std::fs::write(&path, out).unwrap();
        path
    }

    pub fn sign_rpm(&self, rpm: &Path) {
        ok(Command::new("rpmsign")
            .env("GNUPGHOME", self.home.path())
            .args(["--define", "__gpg /usr/bin/gpg", "--define"])
            .arg(format!("_gpg_name {}", self.fingerprint))
            .arg("--addsign")
            .arg(rpm)
            .stdin(std::process::Stdio::null()));
    }
}

impl Drop for Signer {
    fn drop(&mut self) {
        let _ = Command::new("gpgconf")
            .env("GNUPGHOME", self.home.path())
            .args(["--kill", "gpg-agent"])
            .status();
    }
}

/// A daemon whose signing key is `signer`'s.
pub fn daemon_signed_by(signer: &Signer) -> Daemon {
    let mut daemon = Daemon::start();
    ok(daemon
        .cli()
        .args(["key", "import"])
        .arg(signer.secret_key()));
    daemon.kill();
    daemon.restart();
    daemon
}

pub fn client_config(daemon: &Daemon, dist: &str) -> String {
    daemon.client_config(dist, "")
}

/// dnf in a private installroot, configured only by the daemon's `.repo`.
pub struct Dnf {
    pub dir: tempfile::TempDir,
    pub arch: &'static str,
}

impl Dnf {
    pub fn new(repo_file: &str, arch: &'static str) -> Dnf {
        let dir = tempfile::tempdir().unwrap();
        let repos = dir.path().join("repos.d");
        std::fs::create_dir_all(&repos).unwrap();
        std::fs::create_dir_all(dir.path().join("root")).unwrap();
        std::fs::write(
            dir.path().join("dnf.conf"),
            format!(
                "[main]\nreposdir={}\ngpgcheck=1\nrepo_gpgcheck=1\nskip_if_unavailable=False\n\
                 install_weak_deps=False\nmetadata_expire=0\n",
                repos.display()
            ),
        )
        .unwrap();
        assert!(repo_file.contains("gpgcheck=1\n") && repo_file.contains("repo_gpgcheck=1\n"));
        std::fs::write(repos.join("repod.repo"), repo_file).unwrap();
        Dnf { dir, arch }
    }

    pub fn cmd(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new("dnf");
        cmd.arg("-c")
            .arg(self.dir.path().join("dnf.conf"))
            .arg(format!(
                "--installroot={}",
                self.dir.path().join("root").display()
            ))
            .args(["--releasever=9", "--noplugins", "-y"])
            .arg(format!("--forcearch={}", self.arch))
            .args(args);
        cmd
    }

    pub fn repoquery(&self) -> Vec<String> {
        let out = ok(&mut self.cmd(&[
            "-q",
            "repoquery",
            "--qf",
            "%{name}-%{version}-%{release}.%{arch}",
        ]));
        let mut names: Vec<String> = out.lines().map(str::to_owned).collect();
        names.sort();
        names
    }
}

impl Drop for Dnf {
    fn drop(&mut self) {
        // librepo leaves a gpg-agent per repository keyring.
        for ring in glob_pubrings(&self.dir.path().join("root/var/cache/dnf")) {
            let _ = Command::new("gpgconf")
                .arg("--homedir")
                .arg(ring)
                .args(["--kill", "gpg-agent"])
                .status();
        }
    }
}

pub fn glob_pubrings(cache: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(cache)
        .map(|entries| {
            entries
                .filter_map(|e| Some(e.ok()?.path().join("pubring")))
                .filter(|p| p.exists())
                .collect()
        })
        .unwrap_or_default()
}
