//! `prepare`: validation, placement and rendering of one package.
//!
//! Validation guards three things: paths (name, version, release and arch
//! become a file name under the published tree), the XML (createrepo_c
//! refuses packages whose strings hold control characters, and so do we,
//! rather than silently altering metadata the package was signed with), and
//! plausibility (what rpmbuild itself would have refused).

use crate::config::validate_id;
use crate::sdk::{
    Distribution, IndexEntry, PackageIdentity, PackageMetadata, ParsedPackage, Prepared,
    RpmDependency, RpmPackage,
};
use crate::vercmp::evr_sort_key;
use crate::xml::{self, Stored};
use crate::{IndexKind, repo_arches};

pub(crate) fn prepare(dist: &Distribution, package: &ParsedPackage) -> Result<Prepared, String> {
    let rpm = match &package.metadata {
        PackageMetadata::Rpm(rpm) => rpm,
        PackageMetadata::Deb(_) => {
            return Err(format!(
                "a .deb cannot go into {} (an rpm-md distribution)",
                dist.id
            ));
        }
    };
    validate_id(&dist.id)?;
    validate(dist, rpm)?;
    let sha256 = package
        .checksums
        .iter()
        .find(|(algo, _)| algo == "sha256")
        .map(|(_, hex)| hex.as_str())
        .ok_or_else(|| format!("no sha256 checksum was given for {}", rpm.name))?;
    if sha256.len() != 64
        || !sha256
            .bytes()
            .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
    {
        return Err(format!(
            "the sha256 checksum of {} is not 64 lowercase hex digits",
            rpm.name
        ));
    }

    let file_name = format!(
        "{}-{}-{}.{}.rpm",
        rpm.name, rpm.version, rpm.release, rpm.arch
    );
    if file_name.len() > 255 {
        return Err(format!(
            "{file_name} is longer than 255 bytes, too long for a file name"
        ));
    }
    // A noarch package goes into every architecture's repository.
    let arches: Vec<&str> = if rpm.arch == "noarch" {
        repo_arches(dist).collect()
    } else {
        // Its own repository, and a 64-bit one under a multilib policy.
        let mut arches = vec![rpm.arch.as_str()];
        arches.extend(crate::multilib::also_in(dist, rpm));
        arches
    };
    if arches.is_empty() {
        return Err(format!(
            "distribution {} has no architecture repository for a noarch package",
            dist.id
        ));
    }

    // The repository root is `<id>/<arch>/` and the package sits in it, so
    // the location is the bare file name, the same in every repository: one
    // rendering serves all of them.
    let stored = Stored {
        sha256,
        size: package.size,
        received: package.received,
        href: &file_name,
    };
    let rendered = [
        (IndexKind::Primary, xml::primary(rpm, &stored)),
        (IndexKind::Filelists, xml::filelists(rpm, &stored)),
        (IndexKind::Other, xml::other(rpm, &stored)),
    ];
    let version = identity_version(rpm);
    // Byte order of the key = name, then rpm's EVR order, then arch; the
    // literal version last makes equal-ranking spellings (1.0 / 1_0)
    // deterministic. After U+001F, the source RPM: the host's zchunk
    // group (consecutive packages of one source RPM share a chunk, as
    // createrepo_c --zck cuts them); never decisive for the order, since
    // what precedes it is unique in an index and U+001F sorts first.
    let mut sort_key = format!(
        "{} {} {} {}",
        rpm.name,
        evr_sort_key(rpm.epoch, &rpm.version, &rpm.release),
        rpm.arch,
        version
    );
    // (A source RPM name no sort key can hold leaves the entry a chunk of
    // its own rather than the package refused.)
    if !rpm.sourcerpm.is_empty()
        && rpm.sourcerpm.len() <= 255
        && !rpm.sourcerpm.chars().any(char::is_control)
    {
        sort_key.push('\u{1f}');
        sort_key.push_str(&rpm.sourcerpm);
    }

    let mut pool_paths = Vec::new();
    let mut entries = Vec::new();
    // Debuginfo goes to the debug repositories where they are split off.
    let debug = crate::splits_debuginfo(dist) && crate::is_debuginfo(&rpm.name);
    for arch in arches {
        let root = crate::Repo { arch, debug }.root(&dist.id);
        pool_paths.push(format!("{root}{file_name}"));
        for (kind, text) in &rendered {
            entries.push(IndexEntry {
                index: kind.path(&root),
                sort_key: sort_key.clone(),
                text: text.clone(),
            });
        }
    }
    Ok(Prepared {
        identity: PackageIdentity {
            name: rpm.name.clone(),
            version,
            architecture: rpm.arch.clone(),
        },
        pool_paths,
        entries,
    })
}

/// `[E:]V-R`, the epoch left out when absent or 0 (as rpm and dnf print it).
fn identity_version(rpm: &RpmPackage) -> String {
    match rpm.epoch {
        Some(epoch) if epoch != 0 => format!("{epoch}:{}-{}", rpm.version, rpm.release),
        _ => format!("{}-{}", rpm.version, rpm.release),
    }
}

fn validate(dist: &Distribution, rpm: &RpmPackage) -> Result<(), String> {
    if rpm.name.is_empty() {
        return Err("the package has an empty name".to_owned());
    }
    if !is_rpm_name(&rpm.name) {
        return Err(format!(
            "package name {:?} is not a valid rpm name (letters, digits and . _ + -, \
             starting with a letter, digit or _, without \"..\")",
            rpm.name
        ));
    }
    let name = &rpm.name;
    for (field, value) in [("version", &rpm.version), ("release", &rpm.release)] {
        if value.is_empty() {
            return Err(format!("{name} has an empty {field}"));
        }
        if !is_rpm_verrel(value) {
            return Err(format!(
                "{field} {value:?} of {name} is not a valid rpm {field} \
                 (letters, digits and . _ + ~ ^, without \"..\")"
            ));
        }
    }
    if !dist.architectures.contains(&rpm.arch) || !is_arch(&rpm.arch) {
        return Err(format!(
            "architecture {} is not supported by distribution {} (supported: {})",
            rpm.arch,
            dist.id,
            dist.architectures.join(", ")
        ));
    }
    for file in &rpm.files {
        if !file.path.starts_with('/') {
            return Err(format!(
                "file path {:?} in {name} is not absolute",
                file.path
            ));
        }
        if file.path.split('/').any(|segment| segment == "..") {
            return Err(format!(
                "file path {:?} in {name} has a \"..\" segment",
                file.path
            ));
        }
    }
    let dependency_lists = [
        ("provides", &rpm.provides),
        ("requires", &rpm.requires),
        ("conflicts", &rpm.conflicts),
        ("obsoletes", &rpm.obsoletes),
        ("recommends", &rpm.recommends),
        ("suggests", &rpm.suggests),
        ("supplements", &rpm.supplements),
        ("enhances", &rpm.enhances),
    ];
    for (list, deps) in dependency_lists {
        for dep in deps.iter() {
            if !matches!(dep.relation.as_str(), "" | "LT" | "GT" | "EQ" | "LE" | "GE") {
                return Err(format!(
                    "{list} entry {:?} of {name} has an unknown relation {:?} \
                     (expected LT, GT, EQ, LE, GE or none)",
                    dep.name, dep.relation
                ));
            }
        }
    }
    xml_safe(rpm)
}

/// rpmbuild's rule for names, without the macro characters `%{}` that it
/// only lets through because they would have been expanded: in a built
/// header they are leftovers, and `%` is unsafe in URLs.
fn is_rpm_name(name: &str) -> bool {
    let bytes = name.as_bytes();
    (bytes[0].is_ascii_alphanumeric() || bytes[0] == b'_')
        && bytes
            .iter()
            .all(|&b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_' | b'+'))
        && !name.contains("..")
}

/// rpmbuild's rule for versions and releases (no `-`, which separates them,
/// no `:`, which introduces the epoch), again without `%{}`.
fn is_rpm_verrel(value: &str) -> bool {
    value
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'+' | b'~' | b'^'))
        && !value.contains("..")
}

fn is_arch(arch: &str) -> bool {
    !arch.is_empty() && arch.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// XML 1.0 cannot carry C0 controls other than TAB, LF and CR, nor U+FFFE
/// and U+FFFF. createrepo_c rejects such packages; stripping would publish
/// metadata that differs from the signed header, so we reject too.
fn xml_safe(rpm: &RpmPackage) -> Result<(), String> {
    let name = &rpm.name;
    let check = |what: &str, value: &str| -> Result<(), String> {
        match value.chars().find(|&c| {
            (c < ' ' && !matches!(c, '\t' | '\n' | '\r')) || c == '\u{FFFE}' || c == '\u{FFFF}'
        }) {
            Some(c) => Err(format!(
                "{what} of {name} contains the character U+{:04X}, which XML cannot carry",
                u32::from(c)
            )),
            None => Ok(()),
        }
    };
    for (what, value) in [
        ("the summary", &rpm.summary),
        ("the description", &rpm.description),
        ("the url", &rpm.url),
        ("the license", &rpm.license),
        ("the vendor", &rpm.vendor),
        ("the group", &rpm.group),
        ("the buildhost", &rpm.buildhost),
        ("the sourcerpm", &rpm.sourcerpm),
        ("the packager", &rpm.packager),
    ] {
        check(what, value)?;
    }
    let deps: [&[RpmDependency]; 8] = [
        &rpm.provides,
        &rpm.requires,
        &rpm.conflicts,
        &rpm.obsoletes,
        &rpm.recommends,
        &rpm.suggests,
        &rpm.supplements,
        &rpm.enhances,
    ];
    for dep in deps.into_iter().flatten() {
        for value in [&dep.name, &dep.epoch, &dep.version, &dep.release] {
            check(&format!("dependency {:?}", dep.name), value)?;
        }
    }
    for file in &rpm.files {
        check(&format!("file path {:?}", file.path), &file.path)?;
    }
    for changelog in &rpm.changelogs {
        check("a changelog author", &changelog.author)?;
        check("a changelog entry", &changelog.text)?;
    }
    Ok(())
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::sdk::{DebPackage, IndexSpec, RpmChangelog, RpmFile, RpmFileKind, VulnerabilityIds};

    pub(crate) fn dep(
        name: &str,
        relation: &str,
        evr: (&str, &str, &str),
        pre: bool,
    ) -> RpmDependency {
        RpmDependency {
            name: name.to_owned(),
            relation: relation.to_owned(),
            epoch: evr.0.to_owned(),
            version: evr.1.to_owned(),
            release: evr.2.to_owned(),
            pre,
        }
    }

    /// The header of a real rpm exercising every part of the rendering, as
    /// rpm 4.18 built it (`demo-1.2.3~rc1-4.el9.x86_64.rpm`: epoch, tilde,
    /// pre and weak deps, a config provide, libc symbol versions, rpmlib
    /// requires, dir and ghost files, non-ASCII text). The snapshots of its
    /// entries equal createrepo_c 0.17.3's output for that file.
    pub(crate) fn sample_package() -> RpmPackage {
        let none = ("", "", "");
        let evr = ("2", "1.2.3~rc1", "4.el9");
        let rpmlib = |name: &str, version: &str| dep(name, "LE", ("", version, "1"), false);
        RpmPackage {
            name: "demo".to_owned(),
            epoch: Some(2),
            version: "1.2.3~rc1".to_owned(),
            release: "4.el9".to_owned(),
            arch: "x86_64".to_owned(),
            summary: "A <demo> & \"test\" package".to_owned(),
            description: "Line one & <two>\n\ttabbed \"quote\" 'apos' – ünïcode".to_owned(),
            url: "https://example.test/demo?a=1&b=2".to_owned(),
            license: "MIT AND (BSD-2-Clause OR Apache-2.0)".to_owned(),
            vendor: "Example & Co".to_owned(),
            group: "Applications/System".to_owned(),
            buildhost: "vm".to_owned(),
            sourcerpm: "demo-1.2.3~rc1-4.el9.src.rpm".to_owned(),
            packager: "Jane <jane@example.test>".to_owned(),
            build_time: 1_795_287_692,
            installed_size: 7,
            archive_size: 780,
            header_start: 4504,
            header_end: 7753,
            provides: vec![
                dep("config(demo)", "EQ", evr, false),
                dep("config(demo)", "EQ", evr, false),
                dep("demo", "EQ", evr, false),
                dep("demo(x86-64)", "EQ", evr, false),
                dep("demo-api", "EQ", ("2", "1.2", ""), false),
            ],
            requires: vec![
                dep("/bin/sh", "", none, true),
                dep("/bin/sh", "", none, true),
                dep("/usr/bin/demo", "", none, false),
                dep("/usr/sbin/useradd", "", none, true),
                dep("bar", "", none, false),
                dep("config(demo)", "EQ", evr, false),
                dep("demo-api", "EQ", ("2", "1.2", ""), false),
                dep("libc.so.6()(64bit)", "", none, false),
                dep("libc.so.6(GLIBC_2.2.5)(64bit)", "", none, false),
                dep("libc.so.6(GLIBC_2.34)(64bit)", "", none, false),
                dep("libfoo", "GE", ("", "1.0", ""), false),
                rpmlib("rpmlib(CompressedFileNames)", "3.0.4"),
                rpmlib("rpmlib(FileDigests)", "4.6.0"),
                rpmlib("rpmlib(PayloadFilesHavePrefix)", "4.0"),
                rpmlib("rpmlib(RichDependencies)", "4.12.0"),
                rpmlib("rpmlib(TildeInVersions)", "4.10.0"),
                dep("zlib", "LT", ("", "2", ""), false),
            ],
            conflicts: vec![dep("olddemo", "LE", ("", "0.9", ""), false)],
            obsoletes: vec![dep("demo-legacy", "LT", ("", "1.0", "1"), false)],
            recommends: vec![dep("demo-doc", "", none, false)],
            suggests: vec![dep("demo-extras", "GT", ("", "1", ""), false)],
            supplements: vec![dep("(demo and kernel)", "", none, false)],
            enhances: vec![dep("other", "", none, false)],
            files: vec![
                RpmFile {
                    path: "/etc/demo".to_owned(),
                    kind: RpmFileKind::Dir,
                },
                RpmFile {
                    path: "/etc/demo/demo.conf".to_owned(),
                    kind: RpmFileKind::File,
                },
                RpmFile {
                    path: "/usr/bin/demo".to_owned(),
                    kind: RpmFileKind::File,
                },
                RpmFile {
                    path: "/usr/share/demo".to_owned(),
                    kind: RpmFileKind::Dir,
                },
                RpmFile {
                    path: "/usr/share/demo/data".to_owned(),
                    kind: RpmFileKind::File,
                },
                RpmFile {
                    path: "/var/log/demo.log".to_owned(),
                    kind: RpmFileKind::Ghost,
                },
            ],
            changelogs: vec![
                RpmChangelog {
                    author: "Jane <jane@example.test> - 2:1.2.3~rc1-4".to_owned(),
                    date: 1_704_196_800,
                    text: "- newer entry & <fix>".to_owned(),
                },
                RpmChangelog {
                    author: "José <bob@example.test>   - 1.0-1".to_owned(),
                    date: 1_704_110_400,
                    text: "- older entry".to_owned(),
                },
            ],
            extensions: Vec::new(),
        }
    }

    /// The stored file as the host reports it.
    pub(crate) fn parsed(rpm: RpmPackage) -> ParsedPackage {
        ParsedPackage {
            metadata: PackageMetadata::Rpm(rpm),
            checksums: vec![(
                "sha256".to_owned(),
                "4772a8cc22ebc44a54e9abfe307452ce4ff1b280b4a81d26ab9ffa2420b46371".to_owned(),
            )],
            size: 7930,
            received: 1_795_287_692,
            extensions: Vec::new(),
        }
    }

    pub(crate) fn alma9() -> Distribution {
        Distribution {
            id: "almalinux9".to_owned(),
            display_name: "AlmaLinux 9".to_owned(),
            architectures: vec!["x86_64".into(), "aarch64".into(), "noarch".into()],
            components: Vec::new(),
            vulnerability: VulnerabilityIds {
                grype: "almalinux:9".to_owned(),
                osv: "AlmaLinux:9".to_owned(),
            },
            indexes: Vec::<IndexSpec>::new(),
            settings: vec![("compression".to_owned(), "zstd".to_owned())],
            extensions: Vec::new(),
        }
    }

    fn error_for(edit: impl FnOnce(&mut RpmPackage)) -> String {
        let mut rpm = sample_package();
        edit(&mut rpm);
        prepare(&alma9(), &parsed(rpm)).unwrap_err()
    }

    #[test]
    fn places_an_arch_package_in_its_repository() {
        let prepared = prepare(&alma9(), &parsed(sample_package())).unwrap();
        assert_eq!(prepared.identity.name, "demo");
        assert_eq!(prepared.identity.version, "2:1.2.3~rc1-4.el9");
        assert_eq!(prepared.identity.architecture, "x86_64");
        assert_eq!(
            prepared.pool_paths,
            ["almalinux9/x86_64/demo-1.2.3~rc1-4.el9.x86_64.rpm"]
        );
        let indexes: Vec<&str> = prepared.entries.iter().map(|e| e.index.as_str()).collect();
        assert_eq!(
            indexes,
            [
                "almalinux9/x86_64/repodata/primary.xml",
                "almalinux9/x86_64/repodata/filelists.xml",
                "almalinux9/x86_64/repodata/other.xml",
            ]
        );
        assert!(
            prepared.entries[0]
                .text
                .contains("<location href=\"demo-1.2.3~rc1-4.el9.x86_64.rpm\"/>")
        );
    }

    #[test]
    fn multilib_lists_32_bit_libraries_in_the_64_bit_repository() {
        let mut dist = alma9();
        dist.architectures = vec!["x86_64".into(), "i686".into(), "noarch".into()];
        dist.settings
            .push((crate::multilib::SETTING.to_owned(), "runtime".to_owned()));
        let mut lib = sample_package();
        lib.arch = "i686".to_owned();
        lib.files.push(RpmFile {
            path: "/usr/lib/libdemo.so.2".to_owned(),
            kind: RpmFileKind::File,
        });
        let prepared = prepare(&dist, &parsed(lib.clone())).unwrap();
        assert_eq!(
            prepared.pool_paths,
            [
                "almalinux9/i686/demo-1.2.3~rc1-4.el9.i686.rpm",
                "almalinux9/x86_64/demo-1.2.3~rc1-4.el9.i686.rpm",
            ]
        );
        assert!(
            prepared
                .entries
                .iter()
                .any(|e| e.index == "almalinux9/x86_64/repodata/primary.xml")
        );
        // No 32-bit library: its own repository only.
        let mut tool = lib.clone();
        tool.files.pop();
        let prepared = prepare(&dist, &parsed(tool.clone())).unwrap();
        assert_eq!(
            prepared.pool_paths,
            ["almalinux9/i686/demo-1.2.3~rc1-4.el9.i686.rpm"]
        );
        // "devel" also takes -devel packages; "none" (no setting) nothing.
        dist.settings[1].1 = "devel".to_owned();
        tool.name = "demo-devel".to_owned();
        assert_eq!(prepare(&dist, &parsed(tool)).unwrap().pool_paths.len(), 2);
        dist.settings.pop();
        assert_eq!(prepare(&dist, &parsed(lib)).unwrap().pool_paths.len(), 1);
    }

    #[test]
    fn debuginfo_goes_to_the_debug_repository_when_split() {
        let mut dist = alma9();
        let mut rpm = sample_package();
        rpm.name = "demo-debuginfo".to_owned();
        // Not split: where every package goes.
        let prepared = prepare(&dist, &parsed(rpm.clone())).unwrap();
        assert_eq!(
            prepared.pool_paths,
            ["almalinux9/x86_64/demo-debuginfo-1.2.3~rc1-4.el9.x86_64.rpm"]
        );
        dist.settings
            .push((crate::SPLIT_DEBUGINFO.to_owned(), "true".to_owned()));
        for name in [
            "demo-debuginfo",
            "demo-debugsource",
            "glibc-debuginfo-common",
        ] {
            rpm.name = name.to_owned();
            let prepared = prepare(&dist, &parsed(rpm.clone())).unwrap();
            assert_eq!(
                prepared.pool_paths,
                [format!(
                    "almalinux9/x86_64/debug/{name}-1.2.3~rc1-4.el9.x86_64.rpm"
                )]
            );
            assert_eq!(
                prepared.entries[0].index,
                "almalinux9/x86_64/debug/repodata/primary.xml"
            );
        }
        // Others stay in the main repository.
        rpm.name = "demo-debug-tools".to_owned();
        let prepared = prepare(&dist, &parsed(rpm)).unwrap();
        assert_eq!(
            prepared.entries[0].index,
            "almalinux9/x86_64/repodata/primary.xml"
        );
    }

    #[test]
    fn fans_a_noarch_package_out_to_every_architecture() {
        let mut rpm = sample_package();
        rpm.arch = "noarch".to_owned();
        rpm.epoch = Some(0);
        let prepared = prepare(&alma9(), &parsed(rpm)).unwrap();
        assert_eq!(prepared.identity.version, "1.2.3~rc1-4.el9");
        assert_eq!(
            prepared.pool_paths,
            [
                "almalinux9/x86_64/demo-1.2.3~rc1-4.el9.noarch.rpm",
                "almalinux9/aarch64/demo-1.2.3~rc1-4.el9.noarch.rpm",
            ]
        );
        assert_eq!(prepared.entries.len(), 6);
        assert_eq!(
            prepared.entries[3].index,
            "almalinux9/aarch64/repodata/primary.xml"
        );
        assert_eq!(prepared.entries[0].text, prepared.entries[3].text);
        assert!(prepared.entries[0].text.contains("<version epoch=\"0\""));
    }

    #[test]
    fn sort_keys_order_by_name_then_evr_then_arch() {
        let key = |name: &str, epoch: Option<u32>, version: &str, arch: &str| {
            let mut rpm = sample_package();
            rpm.name = name.to_owned();
            rpm.epoch = epoch;
            rpm.version = version.to_owned();
            rpm.arch = arch.to_owned();
            prepare(&alma9(), &parsed(rpm)).unwrap().entries[0]
                .sort_key
                .clone()
        };
        let ordered = [
            key("demo", None, "1.0~rc1", "x86_64"),
            key("demo", None, "1.0", "aarch64"),
            key("demo", None, "1.0", "x86_64"),
            key("demo", None, "1.0^git1", "x86_64"),
            key("demo", None, "1.0.1", "x86_64"),
            key("demo", None, "9", "x86_64"),
            key("demo", None, "10", "x86_64"),
            key("demo", Some(1), "0.1", "x86_64"),
            key("demo-libs", None, "0.1", "x86_64"),
        ];
        for pair in ordered.windows(2) {
            assert!(pair[0] < pair[1], "{:?} !< {:?}", pair[0], pair[1]);
        }
    }

    /// The three entries of the sample; each equals createrepo_c 0.17.3's
    /// `<package>` element for the same rpm, byte for byte.
    #[test]
    fn entries_snapshot() {
        let prepared = prepare(&alma9(), &parsed(sample_package())).unwrap();
        insta::assert_snapshot!("primary", prepared.entries[0].text);
        insta::assert_snapshot!("filelists", prepared.entries[1].text);
        insta::assert_snapshot!("other", prepared.entries[2].text);
    }

    #[test]
    fn rejects_a_deb() {
        let deb = ParsedPackage {
            metadata: PackageMetadata::Deb(DebPackage {
                control: Vec::new(),
                files: Vec::new(),
                extensions: Vec::new(),
            }),
            ..parsed(sample_package())
        };
        assert_eq!(
            prepare(&alma9(), &deb).unwrap_err(),
            "a .deb cannot go into almalinux9 (an rpm-md distribution)"
        );
    }

    #[test]
    fn rejects_unsupported_architectures() {
        assert_eq!(
            error_for(|p| p.arch = "s390x".to_owned()),
            "architecture s390x is not supported by distribution almalinux9 \
             (supported: x86_64, aarch64, noarch)"
        );
    }

    #[test]
    fn rejects_unsafe_names_versions_and_releases() {
        assert_eq!(
            error_for(|p| p.name.clear()),
            "the package has an empty name"
        );
        for bad in [
            "../x", "a/b", "a b", "-x", ".x", "a..b", "a\u{7}", "x%{y}", "a:b",
        ] {
            let err = error_for(|p| p.name = bad.to_owned());
            assert!(err.contains("is not a valid rpm name"), "{bad}: {err}");
        }
        for ok in ["_x", "a+b", "python3.11-foo_bar", "0ad"] {
            let mut rpm = sample_package();
            rpm.name = ok.to_owned();
            assert!(prepare(&alma9(), &parsed(rpm)).is_ok(), "{ok}");
        }
        assert_eq!(
            error_for(|p| p.release.clear()),
            "demo has an empty release"
        );
        for bad in ["1-2", "1:2", "1/2", "1 2", "1..2", "1\n"] {
            let err = error_for(|p| p.version = bad.to_owned());
            assert!(err.contains("is not a valid rpm version"), "{bad}: {err}");
        }
        let err = error_for(|p| p.release = "1-el9".to_owned());
        assert_eq!(
            err,
            "release \"1-el9\" of demo is not a valid rpm release \
             (letters, digits and . _ + ~ ^, without \"..\")"
        );
    }

    #[test]
    fn rejects_bad_file_paths() {
        let file = |path: &str| RpmFile {
            path: path.to_owned(),
            kind: RpmFileKind::File,
        };
        assert_eq!(
            error_for(|p| p.files.push(file("usr/bin/x"))),
            "file path \"usr/bin/x\" in demo is not absolute"
        );
        assert_eq!(
            error_for(|p| p.files.push(file("/usr/../etc/shadow"))),
            "file path \"/usr/../etc/shadow\" in demo has a \"..\" segment"
        );
        let mut rpm = sample_package();
        rpm.files.push(file("/usr/share/doc/a..b"));
        assert!(prepare(&alma9(), &parsed(rpm)).is_ok());
    }

    #[test]
    fn rejects_characters_xml_cannot_carry() {
        assert_eq!(
            error_for(|p| p.summary = "bell\u{7}".to_owned()),
            "the summary of demo contains the character U+0007, which XML cannot carry"
        );
        let err = error_for(|p| p.changelogs[0].text = "a\u{1b}[31m".to_owned());
        assert!(
            err.contains("a changelog entry of demo contains the character U+001B"),
            "{err}"
        );
        let err = error_for(|p| p.requires[0].name = "x\u{0}".to_owned());
        assert!(err.contains("U+0000"), "{err}");
        let err = error_for(|p| p.description = "\u{FFFF}".to_owned());
        assert!(err.contains("U+FFFF"), "{err}");
        let mut rpm = sample_package();
        rpm.description = "tab\tnewline\ncr\r".to_owned();
        assert!(prepare(&alma9(), &parsed(rpm)).is_ok());
    }

    #[test]
    fn rejects_unknown_relations_and_missing_checksums() {
        let err = error_for(|p| p.requires[4].relation = "~=".to_owned());
        assert_eq!(
            err,
            "requires entry \"bar\" of demo has an unknown relation \"~=\" \
             (expected LT, GT, EQ, LE, GE or none)"
        );
        let mut package = parsed(sample_package());
        package.checksums.clear();
        assert_eq!(
            prepare(&alma9(), &package).unwrap_err(),
            "no sha256 checksum was given for demo"
        );
        package.checksums = vec![("sha256".to_owned(), "ABC".to_owned())];
        assert!(prepare(&alma9(), &package).is_err());
    }
}
