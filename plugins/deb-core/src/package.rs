//! Admitting one `.deb` into a distribution: validate, place, render.
//!
//! Everything a publish needs from a package is rendered here once (its
//! Packages stanza and Contents lines), so a publish is concatenation. The
//! entries are keyed by name and dpkg version order.

use repod_family_sdk::{
    DebPackage, Distribution, IndexEntry, PackageIdentity, PackageMetadata, ParsedPackage, Prepared,
};

use crate::control::{Stanza, check_package_name, parse_source};
use crate::layout::{
    ARCH_ALL, binary_archs, contents_path, packages_path, pool_path, upload_component,
};
use crate::version;

/// File names longer than this cannot be stored on common file systems.
const MAX_FILE_NAME: usize = 255;

/// The column Contents lines align the package list to, as apt-ftparchive.
const CONTENTS_COLUMN: usize = 60;

/// Validates, places and renders one package for `dist`.
pub fn prepare(dist: &Distribution, pkg: &ParsedPackage) -> Result<Prepared, String> {
    let deb = match &pkg.metadata {
        PackageMetadata::Deb(deb) => deb,
        PackageMetadata::Rpm(_) => {
            return Err(format!(
                "an .rpm cannot go into {} (an apt distribution); upload a .deb, or choose an rpm \
                 distribution",
                dist.id
            ));
        }
    };
    let checked = Checked::new(dist, deb)?;
    let component = upload_component(dist)?;
    let file_name = format!(
        "{}_{}_{}.deb",
        checked.name,
        version::without_epoch(&checked.version),
        checked.arch
    );
    if file_name.len() > MAX_FILE_NAME {
        return Err(format!(
            "the pool file name {file_name:?} would be {} bytes long, more than the {MAX_FILE_NAME} \
             a file system allows; shorten the package name or version",
            file_name.len()
        ));
    }
    let pool = pool_path(component, &checked.source, &file_name);

    let mut stanza = String::new();
    checked.stanza.render(&mut stanza);
    stanza.push_str(&format!("Filename: {pool}\nSize: {}\n", pkg.size));
    stanza.push_str(&checksum_lines(pkg)?);
    // The blank line that ends the stanza, so entries concatenate into a
    // valid Packages file.
    stanza.push('\n');

    let contents = contents_lines(&checked, deb);
    let sort_key = format!(
        "{} {} {}",
        checked.name,
        version::sortable(&checked.version),
        checked.arch
    );

    // An `all` package is installable everywhere, and apt only reads the
    // Packages of its own architectures: list it in each of them.
    let targets: Vec<&str> = if checked.arch == ARCH_ALL {
        binary_archs(&dist.architectures).collect()
    } else {
        vec![checked.arch.as_str()]
    };
    let mut entries = Vec::with_capacity(targets.len() * 2);
    for arch in targets {
        entries.push(IndexEntry {
            index: packages_path(&dist.id, component, arch),
            sort_key: sort_key.clone(),
            text: stanza.clone(),
        });
        if !contents.is_empty() {
            entries.push(IndexEntry {
                index: contents_path(&dist.id, component, arch),
                sort_key: sort_key.clone(),
                text: contents.clone(),
            });
        }
    }

    Ok(Prepared {
        identity: PackageIdentity {
            name: checked.name,
            version: checked.version,
            architecture: checked.arch,
        },
        pool_paths: vec![pool],
        entries,
    })
}

/// A package's control data after every check passed.
struct Checked {
    stanza: Stanza,
    name: String,
    version: String,
    arch: String,
    /// The source package name, which names the pool directory.
    source: String,
    section: Option<String>,
}

impl Checked {
    fn new(dist: &Distribution, deb: &DebPackage) -> Result<Checked, String> {
        let stanza = Stanza::check(&deb.control)?;
        // Present and non-empty: `Stanza::check` enforces the required fields.
        let field = |name: &str| stanza.get(name).unwrap_or_default().to_owned();
        let (name, version, arch) = (field("Package"), field("Version"), field("Architecture"));

        check_package_name("package name", &name)?;
        version::parse(&version)?;
        if !dist.architectures.contains(&arch) {
            return Err(format!(
                "architecture {arch} is not supported by distribution {} (supported: {})",
                dist.id,
                dist.architectures.join(", ")
            ));
        }
        let source = match stanza.get("Source") {
            Some(value) => parse_source(value)?.0.to_owned(),
            None => name.clone(),
        };
        let section = stanza.get("Section").map(str::to_owned);
        if let Some(section) = &section
            && section.contains(|c: char| c.is_whitespace() || c == ',')
        {
            return Err(format!(
                "control field Section {section:?} is not valid: a section is one word such as \
                 \"utils\" or \"contrib/net\""
            ));
        }
        for path in &deb.files {
            check_file_path(path)?;
        }
        Ok(Checked {
            stanza,
            name,
            version,
            arch,
            source,
            section,
        })
    }
}

/// Paths that would escape or confuse the tree are refused outright, even
/// though repod never unpacks them: they are a sign of a crafted package and
/// would be written into Contents.
fn check_file_path(path: &str) -> Result<(), String> {
    let refuse = |why: &str| {
        Err(format!(
            "the package contains the file {path:?}, {why}; repod refuses packages with such paths"
        ))
    };
    let relative = path.strip_prefix("./").unwrap_or(path);
    if relative.is_empty() {
        return refuse("an empty path");
    }
    if relative.starts_with('/') {
        return refuse("an absolute path");
    }
    if relative.split('/').any(|segment| segment == "..") {
        return refuse("which contains a '..' segment");
    }
    if relative.contains(char::is_control) {
        return refuse("which contains a control character");
    }
    Ok(())
}

/// `MD5sum`, `SHA1`, `SHA256`, `SHA512` lines, in apt-ftparchive's order,
/// for the checksums the host computed (`sha256` always).
fn checksum_lines(pkg: &ParsedPackage) -> Result<String, String> {
    let mut out = String::new();
    let mut has_sha256 = false;
    for (algo, field, hex_len) in [
        ("md5", "MD5sum", 32),
        ("sha1", "SHA1", 40),
        ("sha256", "SHA256", 64),
        ("sha512", "SHA512", 128),
    ] {
        let Some((_, hex)) = pkg.checksums.iter().find(|(k, _)| k == algo) else {
            continue;
        };
        let well_formed = hex.len() == hex_len
            && hex
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
        if !well_formed {
            return Err(format!(
                "internal error: the host gave a malformed {algo} checksum {hex:?}"
            ));
        }
        has_sha256 |= algo == "sha256";
        out.push_str(&format!("{field}: {hex}\n"));
    }
    if !has_sha256 {
        return Err("internal error: the host gave no sha256 checksum for the package".into());
    }
    Ok(out)
}

/// The package's lines of a Contents file: `path`, padding to column 60,
/// then `[section/]name`, as apt-ftparchive writes them.
fn contents_lines(checked: &Checked, deb: &DebPackage) -> String {
    let qualified = match &checked.section {
        Some(section) => format!("{}/{}", section.trim_end_matches('/'), checked.name),
        None => checked.name.clone(),
    };
    let mut paths: Vec<&str> = deb
        .files
        .iter()
        .map(|p| p.strip_prefix("./").unwrap_or(p))
        .collect();
    paths.sort_unstable();
    paths.dedup();
    let mut out = String::new();
    for path in paths {
        out.push_str(path);
        pad_to_column(&mut out, path.chars().count(), CONTENTS_COLUMN);
        out.push_str(&qualified);
        out.push('\n');
    }
    out
}

/// Tabs while the next tab stop stays before `target`, then spaces; at least
/// one blank even when the text already reaches the column.
fn pad_to_column(out: &mut String, mut current: usize, target: usize) {
    let target = target.max(current + 1);
    while (current / 8 + 1) * 8 < target {
        out.push('\t');
        current = (current / 8 + 1) * 8;
    }
    while current < target {
        out.push(' ');
        current += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use repod_family_sdk::{RpmPackage, VulnerabilityIds};

    pub(crate) fn dist() -> Distribution {
        Distribution {
            id: "jammy".into(),
            display_name: "Ubuntu 22.04 LTS".into(),
            architectures: vec!["amd64".into(), "arm64".into(), "all".into()],
            components: vec!["main".into()],
            vulnerability: VulnerabilityIds {
                grype: "ubuntu:22.04".into(),
                osv: "Ubuntu:22.04:LTS".into(),
            },
            indexes: vec![],
            settings: vec![],
            extensions: vec![],
        }
    }

    fn deb(control: &[(&str, &str)], files: &[&str]) -> ParsedPackage {
        ParsedPackage {
            metadata: PackageMetadata::Deb(DebPackage {
                control: control
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
                files: files.iter().map(|f| f.to_string()).collect(),
                extensions: vec![],
            }),
            checksums: vec![("sha256".into(), "ab".repeat(32))],
            size: 1234,
            received: 0,
            extensions: vec![],
        }
    }

    fn control<'a>(name: &'a str, version: &'a str, arch: &'a str) -> Vec<(&'a str, &'a str)> {
        vec![
            ("Package", name),
            ("Version", version),
            ("Architecture", arch),
            ("Maintainer", "Jane Doe <jane@example.org>"),
            ("Description", "a test package"),
        ]
    }

    fn err(control: &[(&str, &str)], files: &[&str]) -> String {
        prepare(&dist(), &deb(control, files)).unwrap_err()
    }

    #[test]
    fn rpm_is_refused() {
        let rpm = ParsedPackage {
            metadata: PackageMetadata::Rpm(RpmPackage {
                name: "x".into(),
                epoch: None,
                version: "1".into(),
                release: "1".into(),
                arch: "x86_64".into(),
                summary: String::new(),
                description: String::new(),
                url: String::new(),
                license: String::new(),
                vendor: String::new(),
                group: String::new(),
                buildhost: String::new(),
                sourcerpm: String::new(),
                packager: String::new(),
                build_time: 0,
                installed_size: 0,
                archive_size: 0,
                header_start: 0,
                header_end: 0,
                provides: vec![],
                requires: vec![],
                conflicts: vec![],
                obsoletes: vec![],
                recommends: vec![],
                suggests: vec![],
                supplements: vec![],
                enhances: vec![],
                files: vec![],
                changelogs: vec![],
                extensions: vec![],
            }),
            checksums: vec![],
            size: 0,
            received: 0,
            extensions: vec![],
        };
        let err = prepare(&dist(), &rpm).unwrap_err();
        assert!(
            err.starts_with("an .rpm cannot go into jammy (an apt distribution)"),
            "{err}"
        );
    }

    #[test]
    fn architecture_not_supported() {
        assert_eq!(
            err(&control("hello", "1.0", "s390x"), &[]),
            "architecture s390x is not supported by distribution jammy (supported: amd64, arm64, all)"
        );
    }

    #[test]
    fn bad_name_version_source_section() {
        let e = err(&control("Hello", "1.0", "amd64"), &[]);
        assert!(
            e.starts_with("package name \"Hello\" is not a valid Debian package name"),
            "{e}"
        );
        let e = err(&control("h", "1.0", "amd64"), &[]);
        assert!(e.contains("at least two characters"), "{e}");
        let e = err(&control("hello", "v1.0", "amd64"), &[]);
        assert!(e.contains("must start with a digit"), "{e}");
        let e = err(&control("hello", "1.0 beta", "amd64"), &[]);
        assert!(e.contains("whitespace"), "{e}");

        let mut c = control("hello", "1.0", "amd64");
        c.push(("Source", "Hello-Src"));
        let e = err(&c, &[]);
        assert!(
            e.starts_with("control field Source \"Hello-Src\" is not valid"),
            "{e}"
        );

        let mut c = control("hello", "1.0", "amd64");
        c.push(("Section", "my section"));
        assert!(err(&c, &[]).contains("a section is one word"));
    }

    #[test]
    fn missing_and_empty_fields() {
        let mut c = control("hello", "1.0", "amd64");
        c.remove(3);
        assert!(err(&c, &[]).starts_with("control field Maintainer is missing"));
        let mut c = control("hello", "1.0", "amd64");
        c[4].1 = "";
        assert_eq!(err(&c, &[]), "control field Description is empty");
    }

    #[test]
    fn injected_stanza_is_refused() {
        let mut c = control("hello", "1.0", "amd64");
        c.push(("Depends", "libc6\n\nPackage: evil\nVersion: 9"));
        assert!(err(&c, &[]).contains("line break not followed by a space"));
    }

    #[test]
    fn path_tricks_are_refused() {
        let c = control("hello", "1.0", "amd64");
        for (path, why) in [
            ("usr/../../etc/passwd", "'..' segment"),
            ("..", "'..' segment"),
            ("/etc/passwd", "absolute path"),
            ("usr/bin/a\nb", "control character"),
            ("", "empty path"),
        ] {
            let e = err(&c, &["usr/bin/ok", path]);
            assert!(e.contains(why), "{path:?}: {e}");
        }
        assert!(prepare(&dist(), &deb(&c, &["usr/bin/..hidden", "./usr/bin/x"])).is_ok());
    }

    #[test]
    fn placement() {
        let p = prepare(
            &dist(),
            &deb(&control("libhello1", "1:2.0-1", "amd64"), &[]),
        )
        .unwrap();
        assert_eq!(
            p.pool_paths,
            ["pool/main/libh/libhello1/libhello1_2.0-1_amd64.deb"]
        );
        assert_eq!(p.identity.version, "1:2.0-1");

        let mut c = control("hello-doc", "2.0-1", "all");
        c.push(("Source", "hello (2.0-1)"));
        let p = prepare(&dist(), &deb(&c, &[])).unwrap();
        assert_eq!(p.pool_paths, ["pool/main/h/hello/hello-doc_2.0-1_all.deb"]);

        let mut long = control("hello", "1.0", "amd64");
        let version = format!("1.{}", "0".repeat(300));
        long[1].1 = &version;
        assert!(err(&long, &[]).contains("more than the 255"));
    }

    #[test]
    fn all_fans_out_to_every_binary_arch() {
        let p = prepare(
            &dist(),
            &deb(
                &control("hello-doc", "1.0", "all"),
                &["usr/share/doc/hello-doc/README"],
            ),
        )
        .unwrap();
        let indexes: Vec<&str> = p.entries.iter().map(|e| e.index.as_str()).collect();
        assert_eq!(
            indexes,
            [
                "dists/jammy/main/binary-amd64/Packages",
                "dists/jammy/main/Contents-amd64",
                "dists/jammy/main/binary-arm64/Packages",
                "dists/jammy/main/Contents-arm64",
            ]
        );
        assert_eq!(p.entries[0].text, p.entries[2].text);
        assert!(p.entries[0].text.contains("Architecture: all\n"));
    }

    #[test]
    fn stanza_and_contents() {
        let mut c = control("hello", "1.0-1", "amd64");
        c.push(("Section", "utils"));
        let mut pkg = deb(
            &c,
            &[
                "usr/bin/hello",
                "usr/share/doc/hello/a-rather-long-file-name-that-passes-column-60",
            ],
        );
        pkg.checksums.push(("md5".into(), "0".repeat(32)));
        let p = prepare(&dist(), &pkg).unwrap();
        let stanza = &p.entries[0].text;
        assert!(stanza.ends_with(&format!(
            "Section: utils\nFilename: pool/main/h/hello/hello_1.0-1_amd64.deb\nSize: 1234\n\
             MD5sum: {}\nSHA256: {}\n\n",
            "0".repeat(32),
            "ab".repeat(32)
        )));
        assert_eq!(
            p.entries[1].text,
            "usr/bin/hello\t\t\t\t\t\t    utils/hello\n\
             usr/share/doc/hello/a-rather-long-file-name-that-passes-column-60 utils/hello\n"
        );
        // No files, no Contents entry.
        let p = prepare(&dist(), &deb(&control("hello", "1.0", "amd64"), &[])).unwrap();
        assert_eq!(p.entries.len(), 1);
    }

    #[test]
    fn sort_keys_follow_dpkg_order() {
        let key = |name: &str, version: &str| {
            prepare(&dist(), &deb(&control(name, version, "amd64"), &[]))
                .unwrap()
                .entries[0]
                .sort_key
                .clone()
        };
        let ordered = [
            key("hello", "1.0~rc1"),
            key("hello", "1.0"),
            key("hello", "1.0-1"),
            key("hello", "1.10"),
            key("hello", "1:0.1"),
            key("hello-doc", "0.1"),
        ];
        assert!(ordered.is_sorted(), "{ordered:#?}");
    }

    #[test]
    fn malformed_host_checksum() {
        let mut pkg = deb(&control("hello", "1.0", "amd64"), &[]);
        pkg.checksums = vec![("sha256".into(), "XYZ".into())];
        assert!(
            prepare(&dist(), &pkg)
                .unwrap_err()
                .contains("malformed sha256")
        );
        pkg.checksums = vec![];
        assert!(prepare(&dist(), &pkg).unwrap_err().contains("no sha256"));
    }
}
