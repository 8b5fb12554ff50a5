//! A package's entries in primary.xml, filelists.xml and other.xml.
//!
//! The output is what createrepo_c 0.17 writes for the same header, byte for
//! byte (checked against createrepo_c 0.17.3 on real rpms): the same elements
//! in the same order, libxml2's two-space indentation with `<package>` at
//! column 0, and libxml2's escaping. That includes createrepo_c's editing of
//! the dependency lists (see [`primary_requires`]) and of changelogs (see
//! [`other`]), so dnf and zypper resolve exactly as they would against a
//! createrepo_c repository.
//!
//! Text is escaped with quick-xml's `partial_escape`, which escapes exactly
//! what libxml2 escapes in text (`<`, `>`, `&`, CR). Attribute values get
//! libxml2's extra attribute rules on top (see [`attr`]).
//!
//! Strings are assumed free of characters XML 1.0 cannot carry; validation
//! rejects such packages before rendering (createrepo_c refuses them too).
//!
//! Deliberate differences from createrepo_c:
//! - `time file` is when the host received the package, not a file mtime.
//! - Entries are ordered by name, EVR and arch, not by file name.
//! - A require is dropped as "provided by the package itself" when its name,
//!   flags and `[epoch:]version[-release]` equal a provide's; createrepo_c
//!   compares the raw header strings, we compare the strings reassembled
//!   from the host's parsed fields. They differ only if the host normalised
//!   an EVR (e.g. wrote epoch `0` where the header had none).
//! - Changelog date tie-breaking uses 64-bit dates (createrepo_c's uses a
//!   32-bit `int`, which would wrap after 2038).
//! - A dependency list whose entries all have empty names is left out
//!   instead of written as an empty element (rpm never builds such lists).

use std::borrow::Cow;
use std::collections::{HashMap, HashSet};
use std::fmt::Write;

use quick_xml::escape::partial_escape;

use crate::sdk::{RpmDependency, RpmFile, RpmFileKind, RpmPackage};
use crate::vercmp::rpmvercmp;

/// How many changelog entries other.xml keeps: createrepo_c's default
/// `--changelog-limit`, the newest ones.
pub(crate) const CHANGELOG_LIMIT: usize = 10;

/// Escapes text content as libxml2 does.
fn text(s: &str) -> Cow<'_, str> {
    partial_escape(s)
}

/// Escapes an attribute value as libxml2 does when serialising a node
/// without a document encoding (createrepo_c's `xmlNodeDump(buf, NULL, ..)`):
/// the text escapes plus `"`, LF and TAB as references, and every non-ASCII
/// character as an uppercase hex reference (`é` → `&#xE9;`). `'` stays.
fn attr(s: &str) -> String {
    let escaped = partial_escape(s);
    let mut out = String::with_capacity(escaped.len());
    for c in escaped.chars() {
        match c {
            '"' => out.push_str("&quot;"),
            '\n' => out.push_str("&#10;"),
            '\t' => out.push_str("&#9;"),
            c if !c.is_ascii() => {
                let _ = write!(out, "&#x{:X};", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out
}

/// Inputs beyond the header that the entries carry.
pub(crate) struct Stored<'a> {
    /// Lowercase hex SHA-256 of the file: the package id.
    pub sha256: &'a str,
    /// File size in bytes.
    pub size: u64,
    /// When the host received the file; stands for the file mtime.
    pub received: u64,
    /// `location href`, relative to the repository root.
    pub href: &'a str,
}

/// createrepo_c's "primary file" rule: these paths are listed in primary.xml
/// (so file requires on them resolve without filelists), all paths in
/// filelists.xml.
pub(crate) fn is_primary_file(path: &str) -> bool {
    path.starts_with("/etc/") || path == "/usr/lib/sendmail" || path.contains("bin/")
}

fn epoch_string(pkg: &RpmPackage) -> String {
    pkg.epoch.unwrap_or(0).to_string()
}

/// `<version epoch=".." ver=".." rel=".."/>` as in all three files.
fn version_element(out: &mut String, pkg: &RpmPackage) {
    let _ = writeln!(
        out,
        "  <version epoch=\"{}\" ver=\"{}\" rel=\"{}\"/>",
        epoch_string(pkg),
        attr(&pkg.version),
        attr(&pkg.release)
    );
}

fn file_elements(out: &mut String, indent: &str, files: &[&RpmFile]) {
    for file in files {
        let kind = match file.kind {
            RpmFileKind::File => "",
            RpmFileKind::Dir => " type=\"dir\"",
            RpmFileKind::Ghost => " type=\"ghost\"",
        };
        let _ = writeln!(out, "{indent}<file{kind}>{}</file>", text(&file.path));
    }
}

fn text_element(out: &mut String, indent: &str, name: &str, value: &str) {
    let _ = writeln!(out, "{indent}<{name}>{}</{name}>", text(value));
}

/// The dependency's `[epoch:]version[-release]` as rpm stores it in the
/// header: createrepo_c compares these strings, not parsed EVRs.
fn evr_string(dep: &RpmDependency) -> String {
    let mut s = String::new();
    if !dep.epoch.is_empty() {
        s.push_str(&dep.epoch);
        s.push(':');
    }
    s.push_str(&dep.version);
    if !dep.release.is_empty() {
        s.push('-');
        s.push_str(&dep.release);
    }
    s
}

/// createrepo_c drops dependencies whose epoch is not a number (with a
/// warning); so do we.
fn has_valid_epoch(dep: &RpmDependency) -> bool {
    dep.epoch.bytes().all(|b| b.is_ascii_digit())
}

/// The requires createrepo_c 0.17 lists, in its order. It leaves out:
/// `rpmlib(...)` requires (rpm's own feature checks); requires on files the
/// package itself contains that are primary files; requires identical (name,
/// flags, EVR string) to one of the package's provides; a repeat of the
/// previous kept require of the same name with the same flags, EVR and pre;
/// and of all `libc.so.6...` requires it keeps only the one with the highest
/// symbol version, moved to the end.
pub(crate) fn primary_requires(pkg: &RpmPackage) -> Vec<&RpmDependency> {
    let own_files: HashSet<&str> = pkg.files.iter().map(|f| f.path.as_str()).collect();
    let provided: HashSet<(&str, &str, String)> = pkg
        .provides
        .iter()
        .filter(|d| has_valid_epoch(d))
        .map(|d| (d.name.as_str(), d.relation.as_str(), evr_string(d)))
        .collect();
    let mut last_kept: HashMap<&str, (&str, String, bool)> = HashMap::new();
    let mut libc: Option<&RpmDependency> = None;
    let mut kept = Vec::new();
    for dep in &pkg.requires {
        let name = dep.name.as_str();
        if name.starts_with("rpmlib(") {
            continue;
        }
        if name.starts_with('/') && own_files.contains(name) && is_primary_file(name) {
            continue;
        }
        let evr = evr_string(dep);
        if provided.contains(&(name, dep.relation.as_str(), evr.clone())) {
            continue;
        }
        let signature = (dep.relation.as_str(), evr, dep.pre);
        if last_kept.get(name) == Some(&signature) {
            continue;
        }
        if !has_valid_epoch(dep) {
            continue;
        }
        if name.starts_with("libc.so.6") {
            if libc.is_none_or(|current| libc_version_is_higher(&current.name, name)) {
                libc = Some(dep);
            }
            continue;
        }
        kept.push(dep);
        last_kept.insert(name, signature);
    }
    kept.extend(libc);
    kept
}

/// createrepo_c's `cr_compare_dependency(current, candidate) == 2`: whether
/// `candidate` (e.g. `libc.so.6(GLIBC_2.34)(64bit)`) names a higher symbol
/// version than `current`. A name with a `(...)` beats one without; the
/// versions compared start at the first digit after `(` and end at `)`.
fn libc_version_is_higher(current: &str, candidate: &str) -> bool {
    let (open1, open2) = match (current.find('('), candidate.find('(')) {
        (None, None) | (Some(_), None) => return false,
        (None, Some(_)) => return true,
        (Some(a), Some(b)) => (a, b),
    };
    let close = |s: &str, open: usize| s[open..].find(')').map(|p| p + open);
    let (close1, close2) = match (close(current, open1), close(candidate, open2)) {
        (None, None) | (Some(_), None) => return false,
        (None, Some(_)) => return true,
        (Some(a), Some(b)) => (a, b),
    };
    let (start1, start2) = (open1 + 1, open2 + 1);
    match (start1 == close1, start2 == close2) {
        (true, true) | (false, true) => return false,
        (true, false) => return true,
        (false, false) => {}
    }
    // The search for the first digit is not bounded by the `)`.
    let first_digit = |s: &str, from: usize| {
        s[from..]
            .find(|c: char| c.is_ascii_digit())
            .map_or(s.len(), |p| p + from)
    };
    let (digit1, digit2) = (first_digit(current, start1), first_digit(candidate, start2));
    match (digit1 > close1, digit2 > close2) {
        (true, true) | (false, true) => false,
        (true, false) => true,
        (false, false) => rpmvercmp(&current[digit1..close1], &candidate[digit2..close2]).is_lt(),
    }
}

/// The entries createrepo_c keeps of a dependency list other than requires.
fn valid(deps: &[RpmDependency]) -> Vec<&RpmDependency> {
    deps.iter().filter(|d| has_valid_epoch(d)).collect()
}

fn dependency_block(out: &mut String, element: &str, deps: &[&RpmDependency], requires: bool) {
    let deps: Vec<&&RpmDependency> = deps.iter().filter(|d| !d.name.is_empty()).collect();
    if deps.is_empty() {
        return;
    }
    let _ = writeln!(out, "    <rpm:{element}>");
    for dep in deps {
        let _ = write!(out, "      <rpm:entry name=\"{}\"", attr(&dep.name));
        if !dep.relation.is_empty() {
            let _ = write!(out, " flags=\"{}\"", attr(&dep.relation));
            let has_evr =
                !dep.epoch.is_empty() || !dep.version.is_empty() || !dep.release.is_empty();
            if has_evr {
                // createrepo_c parses the EVR string and fills in epoch 0.
                let epoch = if dep.epoch.is_empty() {
                    "0"
                } else {
                    &dep.epoch
                };
                let _ = write!(out, " epoch=\"{}\"", attr(epoch));
            }
            if !dep.version.is_empty() {
                let _ = write!(out, " ver=\"{}\"", attr(&dep.version));
            }
            if !dep.release.is_empty() {
                let _ = write!(out, " rel=\"{}\"", attr(&dep.release));
            }
        }
        if requires && dep.pre {
            out.push_str(" pre=\"1\"");
        }
        out.push_str("/>\n");
    }
    let _ = writeln!(out, "    </rpm:{element}>");
}

/// The `<package type="rpm">` entry of primary.xml.
pub(crate) fn primary(pkg: &RpmPackage, stored: &Stored<'_>) -> String {
    let mut out = String::with_capacity(2048);
    out.push_str("<package type=\"rpm\">\n");
    text_element(&mut out, "  ", "name", &pkg.name);
    text_element(&mut out, "  ", "arch", &pkg.arch);
    version_element(&mut out, pkg);
    let _ = writeln!(
        out,
        "  <checksum type=\"sha256\" pkgid=\"YES\">{}</checksum>",
        text(stored.sha256)
    );
    text_element(&mut out, "  ", "summary", &pkg.summary);
    text_element(&mut out, "  ", "description", &pkg.description);
    text_element(&mut out, "  ", "packager", &pkg.packager);
    text_element(&mut out, "  ", "url", &pkg.url);
    let _ = writeln!(
        out,
        "  <time file=\"{}\" build=\"{}\"/>",
        stored.received, pkg.build_time
    );
    let _ = writeln!(
        out,
        "  <size package=\"{}\" installed=\"{}\" archive=\"{}\"/>",
        stored.size, pkg.installed_size, pkg.archive_size
    );
    let _ = writeln!(out, "  <location href=\"{}\"/>", attr(stored.href));
    out.push_str("  <format>\n");
    text_element(&mut out, "    ", "rpm:license", &pkg.license);
    text_element(&mut out, "    ", "rpm:vendor", &pkg.vendor);
    text_element(&mut out, "    ", "rpm:group", &pkg.group);
    text_element(&mut out, "    ", "rpm:buildhost", &pkg.buildhost);
    text_element(&mut out, "    ", "rpm:sourcerpm", &pkg.sourcerpm);
    let _ = writeln!(
        out,
        "    <rpm:header-range start=\"{}\" end=\"{}\"/>",
        pkg.header_start, pkg.header_end
    );
    // createrepo_c's order, which is not the order of the fields.
    dependency_block(&mut out, "provides", &valid(&pkg.provides), false);
    dependency_block(&mut out, "requires", &primary_requires(pkg), true);
    dependency_block(&mut out, "conflicts", &valid(&pkg.conflicts), false);
    dependency_block(&mut out, "obsoletes", &valid(&pkg.obsoletes), false);
    dependency_block(&mut out, "suggests", &valid(&pkg.suggests), false);
    dependency_block(&mut out, "enhances", &valid(&pkg.enhances), false);
    dependency_block(&mut out, "recommends", &valid(&pkg.recommends), false);
    dependency_block(&mut out, "supplements", &valid(&pkg.supplements), false);
    let files: Vec<&RpmFile> = pkg
        .files
        .iter()
        .filter(|f| is_primary_file(&f.path))
        .collect();
    file_elements(&mut out, "    ", &files);
    out.push_str("  </format>\n</package>\n");
    out
}

/// `<package pkgid=".." name=".." arch="..">` opening filelists and other
/// entries.
fn package_open(out: &mut String, pkg: &RpmPackage, stored: &Stored<'_>) {
    let _ = writeln!(
        out,
        "<package pkgid=\"{}\" name=\"{}\" arch=\"{}\">",
        attr(stored.sha256),
        attr(&pkg.name),
        attr(&pkg.arch)
    );
    version_element(out, pkg);
}

/// The entry of filelists.xml: every path, in header order.
pub(crate) fn filelists(pkg: &RpmPackage, stored: &Stored<'_>) -> String {
    let mut out = String::with_capacity(256 + 64 * pkg.files.len());
    package_open(&mut out, pkg, stored);
    let files: Vec<&RpmFile> = pkg.files.iter().collect();
    file_elements(&mut out, "  ", &files);
    out.push_str("</package>\n");
    out
}

/// The entry of other.xml: the newest [`CHANGELOG_LIMIT`] changelog entries,
/// oldest first, edited as createrepo_c edits them.
///
/// `changelogs` are expected newest first, the order rpm stores them in the
/// header. createrepo_c strips trailing spaces from authors and, where
/// consecutive entries share a date, moves the newer ones one second later
/// each, so that dates are unique and ordered (tools key changelogs by date).
pub(crate) fn other(pkg: &RpmPackage, stored: &Stored<'_>) -> String {
    struct Entry<'a> {
        author: &'a str,
        date: u64,
        text: &'a str,
    }
    let mut entries: Vec<Entry<'_>> = Vec::new();
    let mut last_date = 0;
    for changelog in pkg.changelogs.iter().take(CHANGELOG_LIMIT) {
        // Trailing spaces go, but createrepo_c's loop never clears the
        // first character.
        let trimmed = changelog.author.trim_end_matches(' ');
        let author = if trimmed.is_empty() && !changelog.author.is_empty() {
            &changelog.author[..1]
        } else {
            trimmed
        };
        entries.push(Entry {
            author,
            date: changelog.date,
            text: &changelog.text,
        });
        if changelog.date == last_date {
            // Walk back over the newer entries: the one right before this
            // shares its date, the one before that the date + 1 (after its
            // own bump), and so on.
            let newer = entries.len() - 1;
            let chain = (changelog.date..).zip(entries[..newer].iter_mut().rev());
            for (date, previous) in chain {
                if previous.date != date {
                    break;
                }
                previous.date += 1;
            }
        } else {
            last_date = changelog.date;
        }
    }

    let mut out = String::with_capacity(512);
    package_open(&mut out, pkg, stored);
    for entry in entries.iter().rev() {
        let _ = writeln!(
            out,
            "  <changelog author=\"{}\" date=\"{}\">{}</changelog>",
            attr(entry.author),
            entry.date,
            text(entry.text)
        );
    }
    out.push_str("</package>\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dep(name: &str, relation: &str, epoch: &str, version: &str, release: &str) -> RpmDependency {
        RpmDependency {
            name: name.to_owned(),
            relation: relation.to_owned(),
            epoch: epoch.to_owned(),
            version: version.to_owned(),
            release: release.to_owned(),
            pre: false,
        }
    }

    #[test]
    fn escaping_matches_libxml2() {
        assert_eq!(text("a<b>&\"'\r\n\té"), "a&lt;b&gt;&amp;\"'&#13;\n\té");
        assert_eq!(
            attr("a<b>&\"'\r\n\té☃"),
            "a&lt;b&gt;&amp;&quot;'&#13;&#10;&#9;&#xE9;&#x2603;"
        );
    }

    #[test]
    fn primary_file_rule() {
        for yes in [
            "/etc/x",
            "/usr/bin/x",
            "/usr/sbin/x",
            "/opt/bin/",
            "/usr/lib/sendmail",
        ] {
            assert!(is_primary_file(yes), "{yes}");
        }
        for no in [
            "/etc",
            "/usr/lib/x",
            "/bin",
            "/usr/lib/sendmail.d",
            "/usr/share/binary",
        ] {
            assert!(!is_primary_file(no), "{no}");
        }
    }

    #[test]
    fn libc_highest_symbol_version_wins() {
        assert!(libc_version_is_higher("libc.so.6", "libc.so.6()(64bit)"));
        assert!(!libc_version_is_higher("libc.so.6()(64bit)", "libc.so.6"));
        assert!(libc_version_is_higher(
            "libc.so.6()(64bit)",
            "libc.so.6(GLIBC_2.2.5)(64bit)"
        ));
        assert!(libc_version_is_higher(
            "libc.so.6(GLIBC_2.2.5)(64bit)",
            "libc.so.6(GLIBC_2.34)(64bit)"
        ));
        assert!(!libc_version_is_higher(
            "libc.so.6(GLIBC_2.34)(64bit)",
            "libc.so.6(GLIBC_2.4)(64bit)"
        ));
        // Both without a digit inside the first parentheses: equal, keep.
        assert!(!libc_version_is_higher("libc.so.6(x)", "libc.so.6(y)"));
    }

    #[test]
    fn requires_are_edited_like_createrepo_c() {
        let mut pkg = crate::prepare::tests::sample_package();
        pkg.files = vec![RpmFile {
            path: "/usr/bin/demo".to_owned(),
            kind: RpmFileKind::File,
        }];
        pkg.provides = vec![dep("demo-api", "EQ", "2", "1.2", "")];
        let mut pre_sh = dep("/bin/sh", "", "", "", "");
        pre_sh.pre = true;
        pkg.requires = vec![
            pre_sh.clone(),
            dep("/bin/sh", "", "", "", ""),
            dep("/usr/bin/demo", "", "", "", ""),
            dep("bar", "", "", "", ""),
            dep("bar", "", "", "", ""),
            dep("demo-api", "EQ", "2", "1.2", ""),
            dep("demo-api", "GE", "2", "1.2", ""),
            dep("libc.so.6(GLIBC_2.34)(64bit)", "", "", "", ""),
            dep("libc.so.6()(64bit)", "", "", "", ""),
            dep("rpmlib(CompressedFileNames)", "LE", "", "3.0.4", "1"),
            dep("weird", "GE", "x", "1", ""),
            dep("zlib", "LT", "", "2", ""),
        ];
        let kept: Vec<(&str, bool)> = primary_requires(&pkg)
            .into_iter()
            .map(|d| (d.name.as_str(), d.pre))
            .collect();
        assert_eq!(
            kept,
            [
                ("/bin/sh", true),
                ("/bin/sh", false),
                ("bar", false),
                ("demo-api", false),
                ("zlib", false),
                ("libc.so.6(GLIBC_2.34)(64bit)", false),
            ]
        );
    }

    #[test]
    fn changelogs_are_limited_reordered_and_dated_uniquely() {
        let mut pkg = crate::prepare::tests::sample_package();
        pkg.changelogs = (0..12u64)
            .map(|i| crate::sdk::RpmChangelog {
                author: format!("A{i}  "),
                // Newest first; entries 0..3 share one date.
                date: if i < 3 { 1000 } else { 1000 - i * 10 },
                text: format!("- {i}"),
            })
            .collect();
        let stored = Stored {
            sha256: "00",
            size: 1,
            received: 2,
            href: "x.rpm",
        };
        let out = other(&pkg, &stored);
        let lines: Vec<&str> = out.lines().filter(|l| l.contains("<changelog")).collect();
        assert_eq!(lines.len(), CHANGELOG_LIMIT);
        assert_eq!(
            lines[0],
            "  <changelog author=\"A9\" date=\"910\">- 9</changelog>"
        );
        assert_eq!(
            &lines[7..],
            [
                "  <changelog author=\"A2\" date=\"1000\">- 2</changelog>",
                "  <changelog author=\"A1\" date=\"1001\">- 1</changelog>",
                "  <changelog author=\"A0\" date=\"1002\">- 0</changelog>",
            ]
        );
    }
}
