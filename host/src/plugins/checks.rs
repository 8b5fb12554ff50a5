//! Checks on everything a plugin returns, before the host acts on it.
//!
//! A plugin is untrusted code: it may return `..` in a pool path, a megabyte
//! of display name, or an id that collides with URL routing. Nothing it says
//! reaches the filesystem, the database or a client without passing here.

use std::collections::HashSet;

use super::contract::{
    ClientConfig, Distribution, FamilyInfo, Frame, IndexEntry, Prepared, Publication,
};

/// Largest single piece of rendered text (a stanza, an XML fragment, a
/// Release file).
pub const MAX_TEXT: usize = 16 << 20;
/// Largest short label (names, versions, display names).
const MAX_LABEL: usize = 256;
const MAX_PATH: usize = 1024;
const MAX_DISTRIBUTIONS: usize = 512;
const MAX_LIST: usize = 256;

pub type CheckResult = Result<(), String>;

/// `[a-z0-9][a-z0-9.+-]*`, at most `max` bytes: plugin names, distribution,
/// family ids. These end up in URLs and file names.
pub fn id(what: &str, value: &str, max: usize) -> CheckResult {
    let ok = !value.is_empty()
        && value.len() <= max
        && value.as_bytes()[0].is_ascii_alphanumeric()
        && value.bytes().all(|b| {
            b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'.' | b'+' | b'-')
        });
    if ok {
        Ok(())
    } else {
        Err(format!(
            "{what} {:?} is not a valid id ([a-z0-9][a-z0-9.+-]*, at most {max} bytes)",
            shorten(value)
        ))
    }
}

/// Architecture and component names: `[a-z0-9][a-z0-9_.+-]*`, short.
fn token(what: &str, value: &str) -> CheckResult {
    let ok = !value.is_empty()
        && value.len() <= 64
        && value.as_bytes()[0].is_ascii_alphanumeric()
        && value.bytes().all(|b| {
            b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'_' | b'.' | b'+' | b'-')
        });
    if ok {
        Ok(())
    } else {
        Err(format!("{what} {:?} is not a valid name", shorten(value)))
    }
}

/// Free text shown to people: bounded, no control characters.
pub fn label(what: &str, value: &str, max: usize) -> CheckResult {
    if value.len() > max {
        return Err(format!(
            "{what} is {} bytes long (limit {max})",
            value.len()
        ));
    }
    if value.chars().any(char::is_control) {
        return Err(format!(
            "{what} {:?} contains control characters",
            shorten(value)
        ));
    }
    Ok(())
}

/// A path inside the published tree: relative, `/`-separated, no empty,
/// `.`-leading or `..` segment, and only characters package file names use.
pub fn tree_path(what: &str, value: &str) -> CheckResult {
    let bad = |why: &str| Err(format!("{what} {:?} {why}", shorten(value)));
    if value.is_empty() || value.len() > MAX_PATH {
        return bad("is empty or too long");
    }
    if value.starts_with('/') {
        return bad("is absolute");
    }
    for segment in value.split('/') {
        if segment.is_empty() || segment.len() > 255 {
            return bad("has an empty or over-long segment");
        }
        if segment.starts_with('.') {
            return bad("has a segment starting with '.' (such as '..')");
        }
        if !segment.bytes().all(|b| {
            b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'+' | b'~' | b'^' | b'-' | b'%')
        }) {
            return bad("has characters outside [A-Za-z0-9._+~^%-]");
        }
    }
    Ok(())
}

fn text(what: &str, value: &str) -> CheckResult {
    if value.len() > MAX_TEXT {
        return Err(format!(
            "{what} is {} bytes long (limit {MAX_TEXT})",
            value.len()
        ));
    }
    Ok(())
}

fn bounded<T>(what: &str, list: &[T], max: usize) -> CheckResult {
    if list.len() > max {
        return Err(format!("{what} has {} items (limit {max})", list.len()));
    }
    Ok(())
}

fn shorten(s: &str) -> String {
    if s.len() <= 80 {
        s.to_owned()
    } else {
        let mut end = 80;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        format!("{}...", &s[..end])
    }
}

pub fn family_info(info: &FamilyInfo) -> CheckResult {
    id("family id", &info.id, 64)?;
    bounded("distribution list", &info.distributions, MAX_DISTRIBUTIONS)?;
    let mut seen = HashSet::new();
    for d in &info.distributions {
        distribution(d)?;
        if !seen.insert(d.id.as_str()) {
            return Err(format!("distribution {} is declared twice", d.id));
        }
    }
    Ok(())
}

pub fn distribution(d: &Distribution) -> CheckResult {
    id("distribution id", &d.id, 64)?;
    let ctx = |what: &str| format!("distribution {}: {what}", d.id);
    label(&ctx("display name"), &d.display_name, 128)?;
    bounded(&ctx("architecture list"), &d.architectures, MAX_LIST)?;
    bounded(&ctx("component list"), &d.components, MAX_LIST)?;
    if d.architectures.is_empty() {
        return Err(ctx("declares no architecture"));
    }
    for a in &d.architectures {
        token(&ctx("architecture"), a)?;
    }
    for c in &d.components {
        token(&ctx("component"), c)?;
    }
    label(&ctx("grype id"), &d.vulnerability.grype, 128)?;
    label(&ctx("OSV ecosystem"), &d.vulnerability.osv, 128)?;
    bounded(&ctx("index list"), &d.indexes, 4096)?;
    let mut seen = HashSet::new();
    for ix in &d.indexes {
        tree_path(&ctx("index path"), &ix.path)?;
        if !seen.insert(ix.path.as_str()) {
            return Err(ctx(&format!("index {} is declared twice", ix.path)));
        }
        for algo in ix.checksums.iter().chain(&ix.by_hash) {
            if !matches!(algo.as_str(), "md5" | "sha1" | "sha256" | "sha512") {
                return Err(ctx(&format!(
                    "index {} asks for unknown checksum {algo:?}",
                    ix.path
                )));
            }
        }
    }
    for (k, v) in d.settings.iter().chain(&d.extensions) {
        label(&ctx("setting name"), k, MAX_LABEL)?;
        text(&ctx("setting value"), v)?;
    }
    Ok(())
}

/// One package's rendering for `dist`.
pub fn prepared(dist: &Distribution, p: &Prepared) -> CheckResult {
    label("package name", &p.identity.name, MAX_LABEL)?;
    label("package version", &p.identity.version, MAX_LABEL)?;
    token("package architecture", &p.identity.architecture)?;
    if p.identity.name.is_empty() || p.identity.version.is_empty() {
        return Err("package name or version is empty".into());
    }
    if p.pool_paths.is_empty() {
        return Err("no pool path".into());
    }
    bounded("pool path list", &p.pool_paths, MAX_LIST)?;
    for path in &p.pool_paths {
        tree_path("pool path", path)?;
    }
    bounded("index entry list", &p.entries, 4096)?;
    for e in &p.entries {
        entry(dist, e)?;
    }
    Ok(())
}

fn entry(dist: &Distribution, e: &IndexEntry) -> CheckResult {
    if !dist.indexes.iter().any(|ix| ix.path == e.index) {
        return Err(format!(
            "entry targets index {:?}, which distribution {} does not declare",
            shorten(&e.index),
            dist.id
        ));
    }
    // U+001F is the one control character a sort key may hold: it opens
    // the entry's zchunk group (`publish::compress::zchunk_group`).
    label("sort key", &e.sort_key.replace('\u{1f}', " "), 1024)?;
    text("index entry", &e.text)
}

pub fn frames(frames: &[Frame], expected: usize) -> CheckResult {
    if frames.len() != expected {
        return Err(format!(
            "returned {} frames for {expected} indexes",
            frames.len()
        ));
    }
    for f in frames {
        text("frame head", &f.head)?;
        text("frame tail", &f.tail)?;
    }
    Ok(())
}

pub fn publication(p: &Publication) -> CheckResult {
    bounded("top-level file list", &p.files, 4096)?;
    for f in &p.files {
        tree_path("top-level file path", &f.path)?;
        text("top-level file", &f.content)?;
        for s in &f.signatures {
            tree_path("signature path", &s.path)?;
        }
    }
    for k in &p.public_key_paths {
        tree_path("public key path", k)?;
    }
    Ok(())
}

pub fn client_config(c: &ClientConfig) -> CheckResult {
    tree_path("client config file name", &c.filename)?;
    label("client config media type", &c.media_type, 128)?;
    if c.content.len() > 64 << 10 {
        return Err(format!(
            "client config is {} bytes (limit 65536)",
            c.content.len()
        ));
    }
    Ok(())
}

pub fn count<T>(what: &str, got: &[T], expected: usize) -> CheckResult {
    if got.len() != expected {
        return Err(format!(
            "{what}: returned {} results for {expected} inputs",
            got.len()
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tree_paths() {
        for ok in [
            "pool/main/libh/libhello/libhello_1.0-1_amd64.deb",
            "dist9/x86_64/foo-1.0^git1-1.x86_64.rpm",
            "dists/x/main/binary-amd64/Index",
        ] {
            assert_eq!(tree_path("p", ok), Ok(()), "{ok}");
        }
        for bad in [
            "",
            "/etc/passwd",
            "../etc/passwd",
            "pool/../../etc",
            "pool/./x",
            "pool//x",
            "pool/.hidden",
            "pool/a b",
            "pool/a\\b",
            "pool/a\nb",
            "pool/%2e%2e/x/..",
        ] {
            assert!(tree_path("p", bad).is_err(), "{bad:?} accepted");
        }
        assert!(tree_path("p", &"a/".repeat(600)).is_err());
    }

    #[test]
    fn ids() {
        assert!(id("d", "some-distro-15.6", 64).is_ok());
        assert!(id("d", "Upper", 64).is_err());
        assert!(id("d", "-x", 64).is_err());
        assert!(id("d", "a/b", 64).is_err());
        assert!(id("d", &"a".repeat(65), 64).is_err());
    }

    #[test]
    fn labels() {
        assert!(label("l", "Example Linux 22.04 LTS", 128).is_ok());
        assert!(label("l", "a\u{1b}[31m", 128).is_err());
        assert!(label("l", &"x".repeat(129), 128).is_err());
    }
}
