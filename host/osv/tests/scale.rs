//! A scan of 50,000 package versions against 20,000 advisories through the
//! index: hash lookups plus only the comparisons of the entries found.

mod common;

use std::cmp::Ordering;
use std::collections::BTreeSet;

use common::evaluate;
use repod_osv::{Index, Limits, comparisons, parse};

const ADVISORIES: usize = 20_000;
const PACKAGES: usize = 50_000;
const NAMES: usize = 5_000;

fn numeric(a: &str, b: &str) -> Ordering {
    a.parse::<u32>().unwrap().cmp(&b.parse::<u32>().unwrap())
}

/// Advisory `i`: package `pkg-{i % NAMES}`; ecosystem `Synth:2` when `i % 10 == 9`
/// (never scanned), else `Synth:1`; open-ended from 0 when `i % 50 == 0`, else
/// `[i % 7, i % 7 + 3)`; withdrawn when `i % 997 == 1`.
fn synthetic_feed() -> String {
    let records: Vec<String> = (0..ADVISORIES)
        .map(|i| {
            let ecosystem = if i % 10 == 9 { "Synth:2" } else { "Synth:1" };
            let events = if i % 50 == 0 {
                r#"{"introduced":"0"}"#.to_owned()
            } else {
                format!(
                    r#"{{"introduced":"{}"}},{{"fixed":"{}"}}"#,
                    i % 7,
                    i % 7 + 3
                )
            };
            let withdrawn = if i % 997 == 1 {
                r#","withdrawn":"2024-02-01T00:00:00Z""#
            } else {
                ""
            };
            format!(
                r#"{{"id":"SYN-{i}","modified":"2024-01-01T00:00:00Z"{withdrawn},
                "affected":[{{"package":{{"ecosystem":"{ecosystem}","name":"pkg-{}"}},
                "ranges":[{{"type":"ECOSYSTEM","events":[{events}]}}]}}]}}"#,
                i % NAMES
            )
        })
        .collect();
    format!("[{}]", records.join(","))
}

/// What the scan must find for `pkg-{n}` at version `v`, from the rules above.
fn expected(n: usize, v: u32) -> BTreeSet<(String, Option<String>)> {
    (n..ADVISORIES)
        .step_by(NAMES)
        .filter(|i| i % 10 != 9 && i % 997 != 1)
        .filter_map(|i| {
            let (from, to) = ((i % 7) as u32, (i % 7 + 3) as u32);
            if i % 50 == 0 {
                Some((format!("SYN-{i}"), None))
            } else if (from..to).contains(&v) {
                Some((format!("SYN-{i}"), Some(to.to_string())))
            } else {
                None
            }
        })
        .collect()
}

#[test]
fn scan_50k_packages_against_20k_advisories() {
    let import = parse(synthetic_feed().as_bytes(), &Limits::default()).unwrap();
    assert!(import.rejected.is_empty());
    assert_eq!(import.advisories.len(), ADVISORIES);
    let advisories = import.advisories;
    let index = Index::new(&advisories);
    // NAMES divides by 10, so names ending in 9 are only in Synth:2, the rest only in Synth:1.
    assert_eq!(index.len(), NAMES);
    assert_eq!(index.lookup("Synth:2", "pkg-19").len(), ADVISORIES / NAMES);
    assert!(index.lookup("Synth:1", "pkg-19").is_empty());

    let mut total_hits = 0;
    let mut total_pairs = 0;
    let mut candidates = 0;
    for j in 0..PACKAGES {
        let (n, v) = (j % NAMES, (j % 13) as u32);
        let (name, version) = (format!("pkg-{n}"), v.to_string());
        let mut found = BTreeSet::new();
        for &(ai, fi) in index.lookup("Synth:1", &name) {
            candidates += 1;
            let affected = &advisories[ai].affected[fi];
            total_pairs += comparisons(affected, &version).len();
            if let Some(hit) = evaluate(affected, &version, numeric) {
                found.insert((advisories[ai].id.clone(), hit.fixed));
            }
        }
        let want = expected(n, v);
        assert_eq!(found, want, "pkg-{n} {v}");
        total_hits += found.len();
    }
    // Each name has 4 advisories, at most 4 are in Synth:1: lookups stay narrow,
    // and each needs at most 3 comparisons (v~introduced, v~fixed, introduced~fixed).
    assert!(candidates <= PACKAGES * 4, "{candidates}");
    assert!(total_pairs <= candidates * 3, "{total_pairs}");
    assert!(
        total_hits > PACKAGES / 2,
        "the synthetic feed must produce plenty of hits: {total_hits}"
    );

    assert!(index.lookup("Synth:1", "pkg-unknown").is_empty());
    assert!(index.lookup("Synth:3", "pkg-1").is_empty());
    assert!(
        index
            .lookup("Synth:1", "pkg-998")
            .iter()
            .all(|&(ai, _)| ai % 997 != 1)
            && index.lookup("Synth:1", "pkg-998").len() == 3,
        "withdrawn advisories are not indexed"
    );
}
