//! Real packages, read by repod-reader and by the distributions' own tools,
//! must agree field for field.
//!
//! Packages come from `$REPOD_TEST_PACKAGES` (default
//! `<workspace>/target/test-packages`, filled by `scripts/fetch-test-packages`
//! when missing): Debian packages from the archive plus a few built with
//! dpkg-deb, and RPMs built with rpmbuild. Each `.deb` is compared with
//! `dpkg-deb -f` / `dpkg-deb -c`, each `.rpm` with `rpm -qp --queryformat`
//! and `rpm -qlp`. Missing tools or packages fail the test: a silent skip
//! would let the check rot.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use repod_reader::{Format, Limits, Package, RpmDependency, RpmFileKind, read, read_deb, read_rpm};

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Both tests share one directory. nextest runs each test in its own
/// process, so the (idempotent) fetch script always runs under `flock`:
/// whoever comes second waits and then finds everything in place.
fn packages_dir() -> PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(find_or_fetch).clone()
}

fn find_or_fetch() -> PathBuf {
    let dir = std::env::var_os("REPOD_TEST_PACKAGES")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace().join("target/test-packages"));
    {
        let script = workspace().join("scripts/fetch-test-packages");
        std::fs::create_dir_all(&dir).expect("create the test package directory");
        let status = Command::new("flock")
            .arg(dir.join(".lock"))
            .arg(&script)
            .arg(&dir)
            .stdout(std::process::Stdio::null())
            .status();
        assert!(
            matches!(status, Ok(s) if s.success()),
            "no test packages in {} and `{} {}` failed ({status:?}); run it by hand (as root on \
             Debian, with network access to the Debian archive), or point REPOD_TEST_PACKAGES at \
             a directory it filled",
            dir.display(),
            script.display(),
            dir.display()
        );
    }
    dir
}

fn tool(name: &str, package: &str) {
    let found = Command::new(name)
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(found, "{name} is not installed: apt-get install {package}");
}

fn listed(dir: &Path, extension: &str) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("cannot list {}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == extension))
        .collect();
    files.sort();
    files
}

fn run(program: &str, args: &[&str], file: &Path) -> String {
    let output = Command::new(program)
        .args(args)
        .arg(file)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {program}: {e}"));
    assert!(
        output.status.success(),
        "{program} {args:?} {} failed: {}",
        file.display(),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).expect("tool output is UTF-8")
}

/// Parses `dpkg-deb -f` output (a control stanza) into fields in order.
fn stanza(text: &str) -> Vec<(String, String)> {
    let mut fields: Vec<(String, String)> = Vec::new();
    for line in text.lines() {
        if line.starts_with([' ', '\t']) {
            let value = &mut fields.last_mut().expect("continuation after a field").1;
            value.push('\n');
            value.push_str(line);
        } else if let Some((name, value)) = line.split_once(':') {
            fields.push((name.to_owned(), value.trim_start().to_owned()));
        }
    }
    fields
}

/// Regular files, hard links and symlinks from `dpkg-deb -c`, without `./`.
fn deb_files(listing: &str) -> Vec<String> {
    listing
        .lines()
        .filter_map(|line| {
            let kind = line.chars().next()?;
            // perms owner/group size date time name[ -> target| link to target]
            let mut rest = line;
            for _ in 0..5 {
                rest = rest.trim_start().split_once(' ')?.1;
            }
            let name = rest.trim_start();
            let name = match kind {
                '-' => name,
                'h' => name.split_once(" link to ")?.0,
                'l' => name.split_once(" -> ")?.0,
                _ => return None,
            };
            Some(name.strip_prefix("./").unwrap_or(name).to_owned())
        })
        .collect()
}

#[test]
fn debs_match_dpkg_deb() {
    tool("dpkg-deb", "dpkg");
    let dir = packages_dir().join("deb");
    let debs = listed(&dir, "deb");
    let limits = Limits::default();
    let mut checked = Vec::new();
    let mut parsed = Vec::new();
    let mut slowest = (Duration::ZERO, PathBuf::new());
    for path in &debs {
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let started = Instant::now();
        let pkg = read_deb(path, &limits).unwrap_or_else(|e| panic!("{name}: {e}"));
        let took = started.elapsed();
        if took > slowest.0 {
            slowest = (took, path.clone());
        }
        match read(path, &limits) {
            Ok(Package::Deb(again)) => {
                assert_eq!(again, pkg, "{name}: read() and read_deb() differ")
            }
            other => panic!("{name}: read() gave {other:?}"),
        }

        let expected = stanza(&run("dpkg-deb", &["-f"], path));
        assert_eq!(
            pkg.control, expected,
            "{name}: control fields differ from dpkg-deb -f"
        );
        for (field, value) in &pkg.control {
            // Each value exactly as dpkg-deb prints it alone (multi-line included).
            let single = Command::new("dpkg-deb")
                .args(["-f"])
                .arg(path)
                .arg(field)
                .output()
                .expect("dpkg-deb runs");
            let single = String::from_utf8(single.stdout).expect("UTF-8");
            assert_eq!(
                single.strip_suffix('\n').unwrap_or(&single),
                value,
                "{name}: field {field}"
            );
        }

        let files = deb_files(&run("dpkg-deb", &["-c"], path));
        assert_eq!(
            pkg.files, files,
            "{name}: file list differs from dpkg-deb -c"
        );
        checked.push(name);
        parsed.push(pkg);
    }
    let kinds = |field: &str, test: &dyn Fn(&str) -> bool| {
        parsed
            .iter()
            .filter(|pkg| pkg.field(field).is_some_and(test))
            .count()
    };
    println!(
        "checked {} debs: {}; slowest {:?} ({})",
        checked.len(),
        checked.join(", "),
        slowest.0,
        slowest.1.display()
    );
    assert!(
        checked.len() >= 30,
        "only {} debs in {}",
        checked.len(),
        dir.display()
    );
    assert!(
        kinds("Pre-Depends", &|_| true) >= 3,
        "too few packages with Pre-Depends"
    );
    assert!(
        kinds("Architecture", &|a| a == "all") >= 3,
        "too few Architecture: all packages"
    );
    assert!(
        kinds("Version", &|v| v.contains(':')) >= 3,
        "too few epochs"
    );
    assert!(
        kinds("Version", &|v| v.contains('~')) >= 3,
        "too few ~ versions"
    );
    assert!(
        kinds("Version", &|v| v.contains('+')) >= 3,
        "too few + versions"
    );
}

/// One `rpm -qp --queryformat` answer for `file`, with a private rpmdb so
/// nothing is created in the home directory.
fn rpm_query(db: &Path, file: &Path, format: &str) -> String {
    let output = Command::new("rpm")
        .arg("--dbpath")
        .arg(db)
        .args(["-qp", "--queryformat", format])
        .arg(file)
        .output()
        .expect("rpm runs");
    assert!(
        output.status.success(),
        "rpm -qp {}: {}",
        file.display(),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).expect("rpm output is UTF-8")
}

fn none_empty(value: String) -> String {
    if value == "(none)" {
        String::new()
    } else {
        value
    }
}

fn joined(dep: &RpmDependency) -> String {
    let mut evr = String::new();
    if !dep.epoch.is_empty() {
        evr.push_str(&dep.epoch);
        evr.push(':');
    }
    evr.push_str(&dep.version);
    if !dep.release.is_empty() {
        evr.push('-');
        evr.push_str(&dep.release);
    }
    evr
}

fn relation(flags: u32) -> &'static str {
    match flags & 0b1110 {
        2 => "LT",
        4 => "GT",
        8 => "EQ",
        10 => "LE",
        12 => "GE",
        _ => "",
    }
}

/// The header range as createrepo_c computes it from the raw bytes.
fn header_range(file: &Path) -> (u64, u64) {
    let bytes = std::fs::read(file).unwrap();
    let be = |at: usize| u64::from(u32::from_be_bytes(bytes[at..at + 4].try_into().unwrap()));
    let sig = be(104) * 16 + be(108);
    let start = 112 + sig + (8 - sig % 8) % 8;
    let s = start as usize;
    let end = start + 16 + be(s + 8) * 16 + be(s + 12);
    (start, end)
}

#[test]
fn rpms_match_rpm_queries() {
    tool("rpm", "rpm");
    let dir = packages_dir().join("rpm");
    let rpms = listed(&dir, "rpm");
    let db = std::env::temp_dir().join(format!("repod-reader-rpmdb-{}", std::process::id()));
    std::fs::create_dir_all(&db).unwrap();
    let limits = Limits::default();
    let mut checked = Vec::new();
    let mut arches = BTreeMap::new();
    for path in &rpms {
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let pkg = read_rpm(path, &limits).unwrap_or_else(|e| panic!("{name}: {e}"));
        match read(path, &limits) {
            Ok(again) => {
                assert_eq!(again.format(), Format::Rpm);
                assert_eq!(
                    again,
                    Package::Rpm(pkg.clone()),
                    "{name}: read() and read_rpm() differ"
                );
            }
            Err(e) => panic!("{name}: read(): {e}"),
        }
        let q = |format: &str| rpm_query(&db, path, format);

        let scalars = q(
            "%{NAME}\n%{EPOCH}\n%{VERSION}\n%{RELEASE}\n%{ARCH}\n%{SUMMARY}\n%{LICENSE}\n%{VENDOR}\n%{GROUP}\n%{BUILDHOST}\n%{SOURCERPM}\n%{BUILDTIME}\n%{LONGSIZE}\n%{LONGARCHIVESIZE}\n%{URL}\n%{PACKAGER}\n",
        );
        let s: Vec<String> = scalars.lines().map(|l| none_empty(l.to_owned())).collect();
        assert_eq!(pkg.name, s[0], "{name}: NAME");
        assert_eq!(
            pkg.epoch.map(|e| e.to_string()).unwrap_or_default(),
            s[1],
            "{name}: EPOCH"
        );
        assert_eq!(pkg.version, s[2], "{name}: VERSION");
        assert_eq!(pkg.release, s[3], "{name}: RELEASE");
        assert_eq!(pkg.arch, s[4], "{name}: ARCH");
        assert_eq!(pkg.summary, s[5], "{name}: SUMMARY");
        assert_eq!(pkg.license, s[6], "{name}: LICENSE");
        assert_eq!(pkg.vendor, s[7], "{name}: VENDOR");
        // rpm shows "Unspecified" for a missing Group, which rpmbuild writes too.
        assert_eq!(pkg.group, s[8], "{name}: GROUP");
        assert_eq!(pkg.buildhost, s[9], "{name}: BUILDHOST");
        assert_eq!(pkg.sourcerpm, s[10], "{name}: SOURCERPM");
        assert_eq!(pkg.build_time.to_string(), s[11], "{name}: BUILDTIME");
        assert_eq!(pkg.installed_size.to_string(), s[12], "{name}: LONGSIZE");
        assert_eq!(
            pkg.archive_size.to_string(),
            s[13],
            "{name}: LONGARCHIVESIZE"
        );
        assert_eq!(pkg.url, s[14], "{name}: URL");
        assert_eq!(pkg.packager, s[15], "{name}: PACKAGER");
        assert_eq!(pkg.description, q("%{DESCRIPTION}"), "{name}: DESCRIPTION");
        assert_eq!(
            pkg.is_source,
            name.ends_with(".src.rpm"),
            "{name}: source package"
        );
        assert_eq!(
            (pkg.header_start, pkg.header_end),
            header_range(path),
            "{name}: header range"
        );

        let lists: [(&str, &[RpmDependency]); 8] = [
            ("PROVIDE", &pkg.provides),
            ("REQUIRE", &pkg.requires),
            ("CONFLICT", &pkg.conflicts),
            ("OBSOLETE", &pkg.obsoletes),
            ("RECOMMEND", &pkg.recommends),
            ("SUGGEST", &pkg.suggests),
            ("SUPPLEMENT", &pkg.supplements),
            ("ENHANCE", &pkg.enhances),
        ];
        for (kind, ours) in lists {
            let theirs = q(&format!(
                "[%{{{kind}NAME}}\t%{{{kind}FLAGS}}\t%{{{kind}VERSION}}\n]"
            ));
            let theirs: Vec<(String, u32, String)> = theirs
                .lines()
                .map(|l| {
                    let mut parts = l.split('\t');
                    let n = parts.next().unwrap().to_owned();
                    let f: u32 = parts.next().unwrap().parse().unwrap();
                    let v = parts.next().unwrap_or("").to_owned();
                    (n, f, v)
                })
                // Legacy MISSINGOK requires are recommends in repodata.
                .filter(|(_, f, _)| kind != "REQUIRE" || f & (1 << 19) == 0)
                .collect();
            assert_eq!(ours.len(), theirs.len(), "{name}: number of {kind}s");
            for (dep, (n, f, v)) in ours.iter().zip(&theirs) {
                assert_eq!(&dep.name, n, "{name}: {kind} name");
                assert_eq!(dep.relation, relation(*f), "{name}: {kind} {n} flags {f}");
                assert_eq!(&joined(dep), v, "{name}: {kind} {n} version");
                let pre = kind == "REQUIRE" && f & (64 | 512 | 1024) != 0;
                assert_eq!(dep.pre, pre, "{name}: {kind} {n} pre");
            }
        }

        let listed_files: Vec<String> =
            run("rpm", &["--dbpath", db.to_str().unwrap(), "-qlp"], path)
                .lines()
                .filter(|l| *l != "(contains no files)")
                .map(str::to_owned)
                .collect();
        let ours: Vec<String> = pkg.files.iter().map(|f| f.path.clone()).collect();
        assert_eq!(ours, listed_files, "{name}: files differ from rpm -qlp");
        let kinds = q("[%{FILEMODES}\t%{FILEFLAGS}\n]");
        for (file, line) in pkg.files.iter().zip(kinds.lines()) {
            let (mode, flags) = line.split_once('\t').unwrap();
            let (mode, flags): (u32, u32) = (mode.parse().unwrap(), flags.parse().unwrap());
            let kind = if mode & 0o170000 == 0o040000 {
                RpmFileKind::Dir
            } else if flags & 64 != 0 {
                RpmFileKind::Ghost
            } else {
                RpmFileKind::File
            };
            assert_eq!(file.kind, kind, "{name}: kind of {}", file.path);
        }

        let log = q("[%{CHANGELOGTIME}\t%{CHANGELOGNAME}\n]");
        let texts = q("[%{CHANGELOGTEXT}\n@@\n]");
        let texts: Vec<&str> = texts.split("\n@@\n").filter(|t| !t.is_empty()).collect();
        assert_eq!(
            pkg.changelogs.len(),
            log.lines().count(),
            "{name}: changelog entries"
        );
        for ((entry, line), text) in pkg.changelogs.iter().zip(log.lines()).zip(texts) {
            let (time, author) = line.split_once('\t').unwrap();
            assert_eq!(entry.date.to_string(), time, "{name}: changelog date");
            assert_eq!(entry.author, author, "{name}: changelog author");
            assert_eq!(entry.text, text, "{name}: changelog text");
        }

        let signature =
            q("%|DSAHEADER?{%{DSAHEADER:pgpsig}}:{%|RSAHEADER?{%{RSAHEADER:pgpsig}}:{(none)}|}|");
        if signature == "(none)" {
            assert_eq!(pkg.signature, None, "{name}: unsigned");
        } else {
            // rpm: "EdDSA/SHA256, Sat Nov 21 19:50:04 2026, Key ID de485ea1eb6d7d73"
            let ours = pkg
                .signature
                .clone()
                .unwrap_or_else(|| panic!("{name}: signature missing"));
            let algorithm = signature.split(',').next().unwrap();
            let key = signature.rsplit("Key ID ").next().unwrap();
            assert_eq!(
                ours,
                format!("{algorithm}, key ID {key}"),
                "{name}: signature"
            );
        }

        *arches.entry(pkg.arch.clone()).or_insert(0) += 1;
        checked.push(name);
    }
    std::fs::remove_dir_all(&db).ok();
    println!(
        "checked {} rpms: {}; by arch: {arches:?}",
        checked.len(),
        checked.join(", ")
    );
    assert!(
        checked.len() >= 9,
        "only {} rpms in {}",
        checked.len(),
        dir.display()
    );
    for arch in ["x86_64", "aarch64", "noarch"] {
        assert!(
            arches.get(arch).copied().unwrap_or(0) >= 3,
            "fewer than 3 {arch} rpms"
        );
    }
}
