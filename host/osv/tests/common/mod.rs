//! Test support: the real advisories, and the dpkg/rpm version orders the
//! family plugins use (their core crates, natively), so the tests evaluate
//! real records as the daemon does.
#![allow(dead_code)]

use std::cmp::Ordering;
use std::collections::HashMap;
use std::path::PathBuf;

use repod_osv::{Advisory, Affected, Hit, Limits, comparisons, is_affected, parse};

/// The real OSV records: `$REPOD_ADVISORIES`, or the repository's
/// `testdata/advisories` (its README gives each record's provenance).
pub fn advisories_dir() -> PathBuf {
    std::env::var_os("REPOD_ADVISORIES")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/../../testdata/advisories"
            ))
        })
}

/// Names of all `*.json` files in the advisories folder, sorted.
pub fn record_files() -> Vec<String> {
    let dir = advisories_dir();
    let entries = std::fs::read_dir(&dir).unwrap_or_else(|e| {
        panic!(
            "cannot read the advisories folder {} ({e}); set REPOD_ADVISORIES",
            dir.display()
        )
    });
    let mut names: Vec<String> = entries
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.ends_with(".json"))
        .collect();
    names.sort();
    names
}

pub fn read(file: &str) -> Vec<u8> {
    let path = advisories_dir().join(file);
    std::fs::read(&path).unwrap_or_else(|e| {
        panic!(
            "{}: {e} (set REPOD_ADVISORIES to the advisories folder)",
            path.display()
        )
    })
}

/// Parses one file that must hold exactly one valid record.
pub fn load(file: &str) -> Advisory {
    let import = parse(&read(file), &Limits::default()).unwrap();
    assert!(import.rejected.is_empty(), "{file}: {:?}", import.rejected);
    assert_eq!(import.advisories.len(), 1, "{file}");
    import.advisories.into_iter().next().unwrap()
}

/// Both phases as the daemon runs them: every pair answered in one batch, then
/// the decision made from the answers alone (a missing pair panics).
pub fn evaluate(
    affected: &Affected,
    version: &str,
    order: fn(&str, &str) -> Ordering,
) -> Option<Hit> {
    let batch: HashMap<(String, String), Ordering> = comparisons(affected, version)
        .into_iter()
        .map(|(a, b)| {
            let o = order(&a, &b);
            ((a, b), o)
        })
        .collect();
    is_affected(affected, version, &|a, b| {
        *batch
            .get(&(a.to_owned(), b.to_owned()))
            .unwrap_or_else(|| panic!("({a}, {b}) was not in comparisons()"))
    })
}

/// dpkg's order, as the Debian-family plugins compare (`repod-deb-core`).
pub fn dpkg_cmp(a: &str, b: &str) -> Ordering {
    repod_deb_core::version::compare(a, b)
}

/// rpm's EVR order, as the rpm-md family plugins compare (`repod-rpm-core`).
pub fn rpm_cmp(a: &str, b: &str) -> Ordering {
    repod_rpm_core::vercmp::evr_cmp(a, b)
}

/// Dotted numeric order with missing parts as 0, enough for the SemVer record.
pub fn dotted_cmp(a: &str, b: &str) -> Ordering {
    let parts = |s: &str| -> Vec<u64> { s.split('.').map(|p| p.parse().unwrap()).collect() };
    let (a, b) = (parts(a), parts(b));
    (0..a.len().max(b.len()))
        .map(|i| a.get(i).unwrap_or(&0).cmp(b.get(i).unwrap_or(&0)))
        .find(|o| o.is_ne())
        .unwrap_or(Ordering::Equal)
}
