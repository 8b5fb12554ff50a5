//! Stock `apt-get`/`apt-cache` in a private root, for end-to-end tests.
//!
//! An [`AptRoot`] is a temporary directory laid out like `/` for apt
//! (`etc/apt`, `var/lib/apt/lists`, `var/cache/apt/archives`, an empty dpkg
//! status) with its own `apt.conf`. Every command runs with `APT_CONFIG`
//! pointing at that file, never at the machine's configuration:
//!
//! * `APT_CONFIG` is read *before* `/etc/apt/apt.conf.d`, and because it sets
//!   `Dir`, the parts directory, the main config, `trusted.gpg(.d)`, the
//!   lists, the caches and the logs all resolve inside the root. (`-o` alone
//!   would be too late: the host's hooks, such as Docker's
//!   `APT::Update::Post-Invoke`, would already be loaded.)
//! * Nothing is trusted globally: `trusted.gpg.d` is the root's, and empty, so
//!   a repository verifies only through its `Signed-By` keyring.
//! * The proxy variables, `LANGUAGE` and the caller's own `APT_CONFIG` are
//!   removed and `LC_ALL=C` is set, so messages can be matched.
//!
//! Signature checking stays on (apt's defaults: unauthenticated repositories
//! are refused). apt 2.6 verifies with `gpgv` through `apt-key`; a keyring
//! whose file name ends in `.asc` may be armored, otherwise it must be
//! binary (`gpg --export`).
//!
//! **Sandbox.** Run as root, apt downloads as the user `_apt`. The root is
//! made traversable (0755 directories, 0644 files) so that works, and apt
//! itself hands the `partial/` directories to `_apt`; the sandbox therefore
//! stays on, as on a real machine. Only when the system has no `_apt` user is
//! `APT::Sandbox::User "root"` written into the config; see
//! [`AptRoot::sandboxed`]. A directory `_apt` cannot write makes apt print
//! `W: Download is performed unsandboxed as root…` and carry on with rc 0,
//! which [`AptOutput::check`] counts as a failure.
//!
//! **apt exits 0 on some failures.** Once lists from a good update exist,
//! an `update` that cannot reach the repository, or whose `InRelease` no
//! longer verifies (wrong key, `BADSIG`; also on a `304 Not Modified`, as
//! apt re-verifies the stored file), prints only `Err:`/`W:` lines and exits
//! 0 (apt 2.6): the old lists are used. So [`AptRoot::run`] always passes
//! `-o APT::Update::Error-Mode=any` to `update` (rc 100 then), and
//! [`AptOutput::check`] also fails on any `W:`, `E:` or `Err:` line.
//!
//! ```ignore
//! let apt = AptRoot::new("amd64", &[]);
//! // `sources` is a deb822 text with `Signed-By: /etc/apt/keyrings/repod.asc`
//! apt.add_signed_source("repod", &sources, "repod.asc", key_asc.as_bytes());
//! apt.update().assert_ok();
//! let plan = apt.install_simulated(&["hello-data"]);
//! assert_eq!(plan, [("libhello", "1.0-1", "amd64"), ("hello-data", "2.0-1", "all")]);
//! let debs = apt.download_only(&["hello-data"]);
//! ```

use std::fmt;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;

/// Environment variables that would let the caller's shell change what apt
/// fetches or prints.
const SCRUBBED_ENV: [&str; 10] = [
    "APT_CONFIG",
    "http_proxy",
    "HTTP_PROXY",
    "https_proxy",
    "HTTPS_PROXY",
    "ftp_proxy",
    "all_proxy",
    "ALL_PROXY",
    "no_proxy",
    "LANGUAGE",
];

/// An apt root for native `arch` (and foreign `extra`) with `dist`
/// configured exactly as the daemon's client-config renders it (`query`
/// appended, e.g. `?version=3` for a pinned source), trusting `key` only.
pub fn root_for(
    daemon: &crate::Daemon,
    dist: &str,
    query: &str,
    arch: &str,
    extra: &[&str],
    key: &[u8],
) -> AptRoot {
    let config = daemon.client_config(dist, query);
    let apt = AptRoot::new(arch, extra);
    apt.add_signed_source(&format!("repod-{dist}"), &config, "repod.asc", key);
    apt
}

/// A private apt root in a temporary directory, removed on drop.
pub struct AptRoot {
    dir: tempfile::TempDir,
    config: PathBuf,
    sandboxed: bool,
}

impl AptRoot {
    /// A root for the native architecture `arch` (e.g. `amd64`) and the
    /// foreign `extra_archs` (e.g. `&["arm64"]`, as `dpkg
    /// --add-architecture` would give).
    pub fn new(arch: &str, extra_archs: &[&str]) -> AptRoot {
        let dir = tempfile::tempdir().expect("temporary directory for the apt root");
        let root = dir.path().to_owned();
        for sub in [
            "etc/apt/apt.conf.d",
            "etc/apt/preferences.d",
            "etc/apt/sources.list.d",
            "etc/apt/trusted.gpg.d",
            "etc/apt/keyrings",
            "var/lib/apt/lists/partial",
            "var/cache/apt/archives/partial",
            "var/lib/dpkg",
            "var/log/apt",
            "download",
        ] {
            std::fs::create_dir_all(root.join(sub)).unwrap();
        }
        write_file(&root.join("var/lib/dpkg/status"), b"");

        // Whoever created the directory is who runs apt.
        let as_root = std::fs::metadata(&root).unwrap().uid() == 0;
        let apt_user = if as_root { sandbox_uid() } else { None };
        let sandboxed = apt_user.is_some();

        let mut archs = vec![arch];
        archs.extend(extra_archs.iter().filter(|a| **a != arch));
        let archs: String = archs.iter().map(|a| format!("\"{a}\"; ")).collect();
        let mut conf = format!(
            "// Written by the repod test harness (tests/harness/apt.rs).\n\
             Dir \"{root}/\";\n\
             Dir::State::status \"{root}/var/lib/dpkg/status\";\n\
             APT::Architecture \"{arch}\";\n\
             APT::Architectures {{ {archs}}};\n\
             Acquire::Languages \"none\";\n\
             Acquire::Retries \"0\";\n\
             Acquire::http::Timeout \"10\";\n\
             Acquire::AllowInsecureRepositories \"false\";\n\
             Acquire::AllowDowngradeToInsecureRepositories \"false\";\n\
             APT::Get::AllowUnauthenticated \"false\";\n\
             APT::Install-Recommends \"false\";\n",
            root = root.display(),
        );
        if as_root && !sandboxed {
            conf.push_str("APT::Sandbox::User \"root\";\n");
        }
        let config = root.join("apt.conf");
        write_file(&config, conf.as_bytes());

        make_traversable(&root);
        if let Some(uid) = apt_user {
            // `apt-get download` writes into its working directory as `_apt`.
            std::os::unix::fs::chown(root.join("download"), Some(uid), None).unwrap();
        }
        AptRoot {
            dir,
            config,
            sandboxed,
        }
    }

    /// The root directory (apt's `Dir`).
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// The `apt.conf` every command runs with (as `APT_CONFIG`).
    pub fn config(&self) -> &Path {
        &self.config
    }

    /// Whether apt drops to `_apt` to download, as on a real machine run as
    /// root. False when not running as root (apt does not sandbox then) or
    /// when the system has no `_apt` user (`APT::Sandbox::User "root"`).
    pub fn sandboxed(&self) -> bool {
        self.sandboxed
    }

    /// Writes `etc/apt/sources.list.d/<name>.sources` (deb822) and returns
    /// its path. Replaces an earlier source of the same name.
    pub fn add_source(&self, name: &str, sources_text: &str) -> PathBuf {
        assert!(
            !name.contains('/') && !name.ends_with(".sources"),
            "source name {name:?}: give the bare name, without .sources"
        );
        let path = self
            .path()
            .join(format!("etc/apt/sources.list.d/{name}.sources"));
        write_file(&path, sources_text.as_bytes());
        path
    }

    /// Removes a source written by [`add_source`](Self::add_source).
    pub fn remove_source(&self, name: &str) {
        let path = self
            .path()
            .join(format!("etc/apt/sources.list.d/{name}.sources"));
        std::fs::remove_file(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    }

    /// Saves a keyring as `etc/apt/keyrings/<file_name>` in the root and
    /// returns its absolute path, for `Signed-By`. Name it `*.asc` for an
    /// armored key, anything else (`*.gpg`) for `gpg --export` output.
    /// Writing the same name again replaces the key in place.
    pub fn install_key(&self, file_name: &str, bytes: &[u8]) -> PathBuf {
        assert!(!file_name.contains('/'), "key file name {file_name:?}");
        let armored = bytes.starts_with(b"-----BEGIN PGP PUBLIC KEY BLOCK-----");
        assert_eq!(
            armored,
            file_name.ends_with(".asc"),
            "apt reads {file_name:?} as {}, but the key is {}",
            if file_name.ends_with(".asc") {
                "armored"
            } else {
                "binary"
            },
            if armored { "armored" } else { "binary" },
        );
        let path = self.path().join("etc/apt/keyrings").join(file_name);
        write_file(&path, bytes);
        path
    }

    /// Installs the key, points the `Signed-By:` of `sources_text` at it
    /// (see [`rewrite_signed_by`]) and adds the source as `<name>.sources`.
    /// The usual way to take a repository's published client config, whose
    /// `Signed-By` names a path on the user's machine.
    pub fn add_signed_source(
        &self,
        name: &str,
        sources_text: &str,
        key_file_name: &str,
        key: &[u8],
    ) -> PathBuf {
        let keyring = self.install_key(key_file_name, key);
        self.add_source(name, &rewrite_signed_by(sources_text, &keyring))
    }

    /// Runs `apt-get -q <args>`. For `update`, `-o APT::Update::Error-Mode=any`
    /// is added so that fetch and signature failures exit non-zero.
    pub fn run(&self, args: &[&str]) -> AptOutput {
        let mut full = vec!["-q"];
        if args.contains(&"update") {
            full.extend(["-o", "APT::Update::Error-Mode=any"]);
        }
        full.extend(args);
        self.run_tool("apt-get", &full)
    }

    /// Runs `apt-cache -q <args>`.
    pub fn cache(&self, args: &[&str]) -> AptOutput {
        let mut full = vec!["-q"];
        full.extend(args);
        self.run_tool("apt-cache", &full)
    }

    /// Runs `tool` (`apt-get`, `apt-cache`, `apt-config`, …) with exactly
    /// `args`: the root's config and clean environment, but none of the
    /// options [`run`](Self::run) adds. For showing apt's own defaults.
    pub fn run_tool(&self, tool: &str, args: &[&str]) -> AptOutput {
        self.run_in(tool, args, self.path())
    }

    fn run_in(&self, tool: &str, args: &[&str], cwd: &Path) -> AptOutput {
        let mut cmd = Command::new(tool);
        for var in SCRUBBED_ENV {
            cmd.env_remove(var);
        }
        cmd.env("APT_CONFIG", &self.config)
            .env("LC_ALL", "C")
            .env("DEBIAN_FRONTEND", "noninteractive")
            .current_dir(cwd)
            .args(args);
        let out = cmd
            .output()
            .unwrap_or_else(|e| panic!("cannot run {tool} (is apt installed?): {e}"));
        AptOutput {
            command: std::iter::once(tool)
                .chain(args.iter().copied())
                .collect::<Vec<_>>()
                .join(" "),
            status: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    /// `apt-get update` with `Error-Mode=any`. Not checked: call
    /// [`AptOutput::assert_ok`] or [`AptOutput::assert_fails`] on it.
    pub fn update(&self) -> AptOutput {
        self.run(&["update"])
    }

    /// `apt-get install -s <pkgs>`: what apt would install, in its order,
    /// from the `Inst` lines. Panics if apt fails or warns.
    pub fn install_simulated(&self, pkgs: &[&str]) -> Vec<Inst> {
        let mut args = vec!["install", "-s"];
        args.extend(pkgs);
        let out = self.run(&args);
        out.assert_ok();
        out.stdout.lines().filter_map(Inst::parse).collect()
    }

    /// `apt-get install -y --download-only <pkgs>`: the `.deb` files in
    /// `var/cache/apt/archives/` afterwards (sorted; earlier downloads
    /// included). apt has checked them against the signed indexes. Panics
    /// if apt fails or warns.
    pub fn download_only(&self, pkgs: &[&str]) -> Vec<PathBuf> {
        let mut args = vec!["install", "-y", "--download-only"];
        args.extend(pkgs);
        self.run(&args).assert_ok();
        debs_in(&self.archives())
    }

    /// `apt-get download <pkgs>` (no dependency resolution, no lock): the
    /// `.deb` files in the root's `download/` directory afterwards. Panics if
    /// apt fails or warns.
    pub fn download(&self, pkgs: &[&str]) -> Vec<PathBuf> {
        let dir = self.path().join("download");
        let mut args = vec!["-q", "download"];
        args.extend(pkgs);
        self.run_in("apt-get", &args, &dir).assert_ok();
        debs_in(&dir)
    }

    /// `var/cache/apt/archives`, where `install --download-only` puts files.
    pub fn archives(&self) -> PathBuf {
        self.path().join("var/cache/apt/archives")
    }

    /// The index files `update` stored in `var/lib/apt/lists` (sorted).
    pub fn lists(&self) -> Vec<PathBuf> {
        let mut files: Vec<PathBuf> = std::fs::read_dir(self.path().join("var/lib/apt/lists"))
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.is_file() && p.file_name().is_some_and(|n| n != "lock"))
            .collect();
        files.sort();
        files
    }

    /// `apt-cache policy <pkgs>`, checked, as text.
    pub fn policy(&self, pkgs: &[&str]) -> String {
        let mut args = vec!["policy"];
        args.extend(pkgs);
        let out = self.cache(&args);
        out.assert_ok();
        out.stdout
    }

    /// `apt-cache show <pkg>`: the package stanzas apt holds, checked.
    pub fn show(&self, pkg: &str) -> String {
        let out = self.cache(&["show", pkg]);
        out.assert_ok();
        out.stdout
    }

    /// `apt-cache madison <pkg>`: every version apt knows, with where it
    /// comes from (`http://… testing/main amd64 Packages`). Empty if none.
    pub fn madison(&self, pkg: &str) -> Vec<Madison> {
        let out = self.cache(&["madison", pkg]);
        out.assert_ok();
        out.stdout
            .lines()
            .filter_map(|line| {
                let mut parts = line.split('|').map(str::trim);
                Some(Madison {
                    package: parts.next()?.to_owned(),
                    version: parts.next()?.to_owned(),
                    source: parts.next()?.to_owned(),
                })
            })
            .collect()
    }
}

/// One line of `apt-cache madison`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Madison {
    pub package: String,
    pub version: String,
    pub source: String,
}

/// One `Inst` line of a simulated install:
/// `Inst libhello:arm64 [0.9-1] (1.0-1 testing [arm64])`. `name` is without
/// the `:arch` suffix; `arch` is the package's (`all` for
/// `Architecture: all`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Inst {
    pub name: String,
    pub version: String,
    pub arch: String,
}

impl Inst {
    fn parse(line: &str) -> Option<Inst> {
        let rest = line.strip_prefix("Inst ")?;
        let name = rest.split_whitespace().next()?;
        let name = name.split(':').next()?.to_owned();
        let inner = &rest[rest.find('(')? + 1..rest.rfind(')')?];
        let version = inner.split_whitespace().next()?.to_owned();
        let arch = inner[inner.rfind('[')? + 1..inner.rfind(']')?].to_owned();
        Some(Inst {
            name,
            version,
            arch,
        })
    }
}

/// Lets plans be compared with `[("libhello", "1.0-1", "amd64"), …]`.
impl PartialEq<(&str, &str, &str)> for Inst {
    fn eq(&self, (name, version, arch): &(&str, &str, &str)) -> bool {
        self.name == *name && self.version == *version && self.arch == *arch
    }
}

impl fmt::Display for Inst {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {} [{}]", self.name, self.version, self.arch)
    }
}

/// What an apt command did.
#[derive(Debug, Clone)]
pub struct AptOutput {
    /// The command line, for messages.
    pub command: String,
    /// The exit code (-1 if killed by a signal).
    pub status: i32,
    pub stdout: String,
    pub stderr: String,
}

impl AptOutput {
    /// The lines that mean something went wrong even when the exit code is
    /// 0: `W:` and `E:` (stderr, sometimes stdout) and `Err:` (a failed
    /// fetch during `update`, stdout).
    pub fn problems(&self) -> Vec<&str> {
        self.stdout
            .lines()
            .chain(self.stderr.lines())
            .filter(|l| l.starts_with("W:") || l.starts_with("E:") || l.starts_with("Err:"))
            .collect()
    }

    /// Ok only for exit code 0 *and* no `W:`/`E:`/`Err:` line; the error is
    /// a report naming the command, the problems and both streams.
    pub fn check(&self) -> Result<(), String> {
        if self.status == 0 && self.problems().is_empty() {
            Ok(())
        } else {
            Err(self.report("failed"))
        }
    }

    /// True when [`check`](Self::check) passes.
    pub fn ok(&self) -> bool {
        self.check().is_ok()
    }

    /// Panics with the report unless [`check`](Self::check) passes.
    pub fn assert_ok(&self) -> &Self {
        if let Err(report) = self.check() {
            panic!("{report}");
        }
        self
    }

    /// Panics unless the command failed (by exit code or a problem line)
    /// and its output contains every one of `needles`, e.g.
    /// `&["BADSIG", "is not signed"]`.
    pub fn assert_fails(&self, needles: &[&str]) -> &Self {
        if self.ok() {
            panic!("{}", self.report("succeeded, but a failure was expected"));
        }
        let text = self.text();
        let missing: Vec<&&str> = needles.iter().filter(|n| !text.contains(**n)).collect();
        if !missing.is_empty() {
            panic!(
                "{}",
                self.report(&format!("failed, but without {missing:?} in its output"))
            );
        }
        self
    }

    /// stdout then stderr.
    pub fn text(&self) -> String {
        format!("{}{}", self.stdout, self.stderr)
    }

    fn report(&self, what: &str) -> String {
        let problems = self.problems();
        let problems = if problems.is_empty() {
            "  (none)".to_owned()
        } else {
            problems
                .iter()
                .map(|l| format!("  {l}"))
                .collect::<Vec<_>>()
                .join("\n")
        };
        format!(
            "`{}` {what} (exit {}).\nproblem lines:\n{problems}\n--- stdout ---\n{}--- stderr ---\n{}",
            self.command, self.status, self.stdout, self.stderr
        )
    }
}

/// Points every `Signed-By:` field of a deb822 sources text at `keyring`,
/// replacing the path it had (e.g. `/etc/apt/keyrings/repod.asc`) or an
/// inline key (the field's continuation lines). Panics if there is no
/// `Signed-By:` field: such a source would not be pinned to a key.
pub fn rewrite_signed_by(sources_text: &str, keyring: &Path) -> String {
    let mut out = String::with_capacity(sources_text.len());
    let mut replaced = 0;
    let mut in_field = false;
    for line in sources_text.split_inclusive('\n') {
        if in_field && (line.starts_with(' ') || line.starts_with('\t')) {
            continue; // continuation of the replaced field (an inline key)
        }
        in_field = false;
        let is_signed_by = line
            .split_once(':')
            .is_some_and(|(field, _)| field.eq_ignore_ascii_case("Signed-By"));
        if is_signed_by {
            out.push_str(&format!("Signed-By: {}\n", keyring.display()));
            replaced += 1;
            in_field = true;
        } else {
            out.push_str(line);
        }
    }
    assert!(
        replaced > 0,
        "no Signed-By: field in the sources text:\n{sources_text}"
    );
    out
}

/// The `*.deb` files directly in `dir`, sorted.
pub fn debs_in(dir: &Path) -> Vec<PathBuf> {
    let mut debs: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "deb"))
        .collect();
    debs.sort();
    debs
}

fn write_file(path: &Path, bytes: &[u8]) {
    std::fs::write(path, bytes).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o644)).unwrap();
}

/// 0755 on `dir` and every directory below it, so `_apt` can reach the
/// keyrings and the `partial/` directories whatever the umask was.
fn make_traversable(dir: &Path) {
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            make_traversable(&path);
        }
    }
}

/// The uid of apt's sandbox user `_apt`, if the system has one.
fn sandbox_uid() -> Option<u32> {
    std::fs::read_to_string("/etc/passwd")
        .ok()?
        .lines()
        .find_map(|l| l.strip_prefix("_apt:"))?
        .split(':')
        .nth(1)?
        .parse()
        .ok()
}

/// `SHA256` section of a Release: relative path -> (size, hex).
pub fn release_sha256(release: &str) -> std::collections::BTreeMap<String, (u64, String)> {
    let mut out = std::collections::BTreeMap::new();
    let mut inside = false;
    for line in release.lines() {
        if !line.starts_with(' ') {
            inside = line == "SHA256:";
            continue;
        }
        if inside {
            let parts: Vec<&str> = line.split_whitespace().collect();
            out.insert(
                parts[2].to_owned(),
                (parts[1].parse().unwrap(), parts[0].to_owned()),
            );
        }
    }
    out
}
