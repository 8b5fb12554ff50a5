//! Range evaluation against a caller-supplied version order, in two phases so
//! that all comparisons can be batched into one call to a version-order plugin:
//! [`comparisons`] lists the pairs, [`is_affected`] decides using only those.

use std::cmp::Ordering;
use std::collections::HashSet;

use crate::model::{Advisory, Affected, Event, Range};

/// Why a version matched an `affected` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Matched {
    /// The range at this index of `Affected::ranges` contains the version.
    Range(usize),
    /// The version is in the explicit `versions` list (and no range contains it).
    Versions,
}

/// A positive match.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hit {
    /// The version that fixes it. For a range match: the next `fixed` event of
    /// that range, `None` when the range has no fix yet (open-ended, or closed
    /// only by `last_affected`/`limit`). For a `versions` match: the first
    /// `fixed` event above the version in any evaluated range, if any.
    pub fixed: Option<String>,
    pub matched: Matched,
}

/// `affected` entries of `advisory` for `ecosystem` whose package name is one of
/// `names` (e.g. a `.deb`'s binary and source names).
///
/// The ecosystem is compared as an exact string: `Ubuntu:22.04:LTS` does not
/// match `Ubuntu:22.04`, nor `AlmaLinux:9` match `AlmaLinux:9.4`. Callers must
/// build the ecosystem string the way the feed writes it.
pub fn matches<'a>(
    advisory: &'a Advisory,
    ecosystem: &str,
    names: &[&str],
) -> impl Iterator<Item = &'a Affected> {
    advisory.affected.iter().filter(move |a| {
        a.package.ecosystem == ecosystem && names.contains(&a.package.name.as_str())
    })
}

/// `introduced: "0"` sorts before every version and needs no comparison.
fn is_zero(event: &Event) -> bool {
    matches!(event, Event::Introduced(v) if v == "0")
}

/// A `limit` containing `*` is infinity and needs no comparison.
fn is_unbounded_limit(event: &Event) -> bool {
    matches!(event, Event::Limit(v) if v.contains('*'))
}

fn evaluated(affected: &Affected) -> impl Iterator<Item = (usize, &Range)> {
    affected
        .ranges
        .iter()
        .enumerate()
        .filter(|(_, r)| r.kind.is_evaluated())
}

/// Every `(a, b)` pair whose order [`is_affected`] may ask for, deduplicated.
/// Pairs are `(version, event version)`, `(version, listed version)`, and
/// `(event version, event version)` for sorting the events of a range (the
/// schema does not require events to be sorted). Identical strings and the
/// special `introduced: "0"` / `limit: "*"` are left out. GIT and unknown
/// range types contribute nothing.
pub fn comparisons(affected: &Affected, version: &str) -> Vec<(String, String)> {
    let mut seen: HashSet<(&str, &str)> = HashSet::new();
    let mut out = Vec::new();
    let mut push = |a, b| {
        if a != b && seen.insert((a, b)) {
            out.push((a.to_owned(), b.to_owned()));
        }
    };
    for (_, range) in evaluated(affected) {
        let walked: Vec<&str> = range
            .events
            .iter()
            .filter(|e| !is_zero(e) && !matches!(e, Event::Limit(_)))
            .map(Event::version)
            .collect();
        for e in range
            .events
            .iter()
            .filter(|e| !is_zero(e) && !is_unbounded_limit(e))
        {
            push(version, e.version());
        }
        for (i, a) in walked.iter().enumerate() {
            for b in &walked[i + 1..] {
                push(a, b);
            }
        }
    }
    // `versions` is consulted only when no range matched; a range open from
    // "0" with no bound matches every version, so the list is never reached.
    let always = evaluated(affected).any(|(_, r)| {
        !r.events.is_empty() && r.events.iter().all(|e| is_zero(e) || is_unbounded_limit(e))
    });
    if !always && !affected.versions.iter().any(|v| v == version) {
        for listed in &affected.versions {
            push(version, listed);
        }
    }
    out
}

/// Whether `version` of the package is affected, per the OSV schema's
/// evaluation algorithm, using `cmp` as the ecosystem's version order.
/// `cmp` is only asked about pairs that [`comparisons`] lists, in that
/// orientation, so a caller can answer from a batch result.
///
/// Per range (ECOSYSTEM and SEMVER; others are ignored): the version must be
/// below at least one `limit` (none, or `*`, means no limit); then the events
/// are sorted (`introduced: "0"` lowest) and walked: `introduced` (v ≥ e)
/// makes it affected, `fixed` (v ≥ e) unaffected, `last_affected` (v > e)
/// unaffected. Then the `versions` list is checked by exact string, then by
/// `cmp == Equal`. The first matching range wins.
pub fn is_affected(
    affected: &Affected,
    version: &str,
    cmp: &dyn Fn(&str, &str) -> Ordering,
) -> Option<Hit> {
    let against = |e: &str| {
        if e == version {
            Ordering::Equal
        } else {
            cmp(version, e)
        }
    };
    for (index, range) in evaluated(affected) {
        if !before_limits(range, &against) {
            continue;
        }
        let walk = sorted_walk(range, cmp);
        let mut vulnerable = false;
        let mut last_applied = None;
        for (pos, event) in walk.iter().enumerate() {
            let applies = match event {
                Event::Introduced(_) if is_zero(event) => true,
                Event::Introduced(v) | Event::Fixed(v) => against(v) != Ordering::Less,
                Event::LastAffected(v) => against(v) == Ordering::Greater,
                Event::Limit(_) => false,
            };
            if applies {
                vulnerable = matches!(event, Event::Introduced(_));
                last_applied = Some(pos);
            }
        }
        if vulnerable {
            let after = last_applied.map_or(0, |p| p + 1);
            return Some(Hit {
                fixed: next_fix(&walk[after..]),
                matched: Matched::Range(index),
            });
        }
    }
    let listed = affected.versions.iter().any(|v| v == version)
        || affected
            .versions
            .iter()
            .any(|v| against(v) == Ordering::Equal);
    listed.then(|| Hit {
        fixed: evaluated(affected).find_map(|(_, range)| {
            sorted_walk(range, cmp).into_iter().find_map(|e| match e {
                Event::Fixed(v) if against(v) == Ordering::Less => Some(v.clone()),
                _ => None,
            })
        }),
        matched: Matched::Versions,
    })
}

/// The schema's `BeforeLimits`: true without limits, else below some limit.
fn before_limits(range: &Range, against: &dyn Fn(&str) -> Ordering) -> bool {
    let mut limits = range.events.iter().filter(|e| matches!(e, Event::Limit(_)));
    let mut any = false;
    let below = limits.any(|e| {
        any = true;
        is_unbounded_limit(e) || against(e.version()) == Ordering::Less
    });
    below || !any
}

/// The range's non-limit events in version order; equal versions keep their
/// order in the record. A stable insertion sort: ranges have a handful of
/// events, and unlike `slice::sort_by` it cannot panic if a plugin's order is
/// inconsistent. Pairs are compared in record order, as [`comparisons`] lists them.
fn sorted_walk<'r>(range: &'r Range, cmp: &dyn Fn(&str, &str) -> Ordering) -> Vec<&'r Event> {
    let order = |(i, a): (usize, &Event), (j, b): (usize, &Event)| match (is_zero(a), is_zero(b)) {
        (true, true) => Ordering::Equal,
        (true, false) => Ordering::Less,
        (false, true) => Ordering::Greater,
        _ if a.version() == b.version() => Ordering::Equal,
        _ if i < j => cmp(a.version(), b.version()),
        _ => cmp(b.version(), a.version()).reverse(),
    };
    let mut walk: Vec<(usize, &Event)> = Vec::with_capacity(range.events.len());
    for item in range.events.iter().enumerate() {
        if matches!(item.1, Event::Limit(_)) {
            continue;
        }
        let mut at = walk.len();
        while at > 0 && order(walk[at - 1], item) == Ordering::Greater {
            at -= 1;
        }
        walk.insert(at, item);
    }
    walk.into_iter().map(|(_, e)| e).collect()
}

/// The first `fixed` among the events after the one that opened the affected
/// state, unless a `last_affected` closes it first.
fn next_fix(rest: &[&Event]) -> Option<String> {
    for event in rest {
        match event {
            Event::Fixed(v) => return Some(v.clone()),
            Event::LastAffected(_) => return None,
            _ => {}
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Package, RangeType};
    use serde_json::Value;

    /// Dotted numeric order: "1.10" > "1.9", missing parts are 0 ("1.5" == "1.5.0").
    fn toy(a: &str, b: &str) -> Ordering {
        let parts = |s: &str| -> Vec<u64> { s.split('.').map(|p| p.parse().unwrap()).collect() };
        let (a, b) = (parts(a), parts(b));
        (0..a.len().max(b.len()))
            .map(|i| a.get(i).unwrap_or(&0).cmp(b.get(i).unwrap_or(&0)))
            .find(|o| o.is_ne())
            .unwrap_or(Ordering::Equal)
    }

    fn ev(kind: &str, v: &str) -> Event {
        match kind {
            "introduced" => Event::Introduced(v.into()),
            "fixed" => Event::Fixed(v.into()),
            "last_affected" => Event::LastAffected(v.into()),
            "limit" => Event::Limit(v.into()),
            _ => unreachable!(),
        }
    }

    fn range(kind: RangeType, events: &[(&str, &str)]) -> Range {
        Range {
            kind,
            repo: None,
            events: events.iter().map(|(k, v)| ev(k, v)).collect(),
            database_specific: Value::Null,
        }
    }

    fn affected(ranges: Vec<Range>, versions: &[&str]) -> Affected {
        Affected {
            package: Package {
                ecosystem: "Toy".into(),
                name: "pkg".into(),
                purl: None,
            },
            severity: vec![],
            ranges,
            versions: versions.iter().map(|v| v.to_string()).collect(),
            ecosystem_specific: Value::Null,
            database_specific: Value::Null,
        }
    }

    fn eco(events: &[(&str, &str)]) -> Affected {
        affected(vec![range(RangeType::Ecosystem, events)], &[])
    }

    /// Runs the two phases and checks that `is_affected` asks only for listed pairs.
    fn check(a: &Affected, version: &str) -> Option<Hit> {
        let pairs: HashSet<(String, String)> = comparisons(a, version).into_iter().collect();
        is_affected(a, version, &|x, y| {
            assert!(
                pairs.contains(&(x.to_owned(), y.to_owned())),
                "is_affected asked ({x}, {y}), which comparisons() did not list"
            );
            toy(x, y)
        })
    }

    fn fixed_of(a: &Affected, version: &str) -> Option<Option<String>> {
        check(a, version).map(|h| h.fixed)
    }

    #[test]
    fn introduced_zero_and_fixed() {
        let a = eco(&[("introduced", "0"), ("fixed", "2")]);
        assert_eq!(fixed_of(&a, "0.1"), Some(Some("2".into())));
        assert_eq!(fixed_of(&a, "1.9"), Some(Some("2".into())));
        assert_eq!(check(&a, "2"), None);
        assert_eq!(check(&a, "2.0"), None);
        assert_eq!(check(&a, "3"), None);
        assert_eq!(
            comparisons(&a, "1"),
            vec![("1".to_owned(), "2".to_owned())],
            "introduced 0 needs no comparison"
        );
    }

    #[test]
    fn last_affected_is_inclusive() {
        let a = eco(&[("introduced", "1"), ("last_affected", "2")]);
        assert_eq!(check(&a, "0.5"), None);
        assert_eq!(fixed_of(&a, "1"), Some(None));
        assert_eq!(
            fixed_of(&a, "2"),
            Some(None),
            "last_affected itself is affected"
        );
        assert_eq!(check(&a, "2.1"), None);
    }

    #[test]
    fn limit_bounds_the_range() {
        let a = eco(&[("introduced", "0"), ("limit", "3")]);
        assert_eq!(fixed_of(&a, "2.9"), Some(None), "a limit is not a fix");
        assert_eq!(check(&a, "3"), None, "limit is exclusive");
        assert_eq!(check(&a, "4"), None);

        let with_fix = eco(&[("introduced", "1"), ("fixed", "4"), ("limit", "3")]);
        assert_eq!(fixed_of(&with_fix, "2"), Some(Some("4".into())));
        assert_eq!(check(&with_fix, "3.5"), None, "outside the limit");

        // Schema: below *any* limit is enough.
        let two = eco(&[("introduced", "0"), ("limit", "2"), ("limit", "5")]);
        assert!(check(&two, "4").is_some());
        assert_eq!(check(&two, "5"), None);

        let star = eco(&[("introduced", "1"), ("limit", "*")]);
        assert!(check(&star, "999").is_some());
        assert!(
            comparisons(&star, "5").iter().all(|(_, b)| b != "*"),
            "`*` needs no comparison"
        );
    }

    #[test]
    fn explicit_versions() {
        let a = affected(vec![], &["1.0", "1.5"]);
        let hit = check(&a, "1.5").unwrap();
        assert_eq!(hit.matched, Matched::Versions);
        assert_eq!(hit.fixed, None);
        assert_eq!(
            comparisons(&a, "1.5"),
            vec![],
            "an exact string match needs no comparison"
        );
        assert_eq!(
            check(&a, "1.5.0").map(|h| h.matched),
            Some(Matched::Versions),
            "equal under the order"
        );
        assert_eq!(check(&a, "1.6"), None);

        // Listed although outside the range: still affected (the schema ORs them),
        // and the range's fix above it is offered.
        let both = affected(
            vec![range(
                RangeType::Ecosystem,
                &[("introduced", "2"), ("fixed", "3")],
            )],
            &["1"],
        );
        let hit = check(&both, "1").unwrap();
        assert_eq!(hit.matched, Matched::Versions);
        assert_eq!(hit.fixed.as_deref(), Some("3"));
    }

    #[test]
    fn several_intervals_in_one_range() {
        let a = eco(&[
            ("introduced", "1"),
            ("fixed", "2"),
            ("introduced", "3"),
            ("fixed", "4"),
        ]);
        assert_eq!(check(&a, "0.5"), None);
        assert_eq!(fixed_of(&a, "1.5"), Some(Some("2".into())));
        assert_eq!(check(&a, "2.5"), None);
        assert_eq!(fixed_of(&a, "3"), Some(Some("4".into())));
        assert_eq!(fixed_of(&a, "3.5"), Some(Some("4".into())));
        assert_eq!(check(&a, "4"), None);
    }

    #[test]
    fn several_ranges_report_the_matching_one() {
        let a = affected(
            vec![
                range(RangeType::Ecosystem, &[("introduced", "1"), ("fixed", "2")]),
                range(RangeType::Ecosystem, &[("introduced", "3"), ("fixed", "4")]),
            ],
            &[],
        );
        assert_eq!(check(&a, "2.5"), None);
        assert_eq!(
            check(&a, "3.5"),
            Some(Hit {
                fixed: Some("4".into()),
                matched: Matched::Range(1)
            })
        );
        assert_eq!(check(&a, "1.5").unwrap().matched, Matched::Range(0));
    }

    #[test]
    fn no_fix_yet() {
        let a = affected(
            vec![range(RangeType::Ecosystem, &[("introduced", "0")])],
            &["0.5", "1.0"],
        );
        for v in ["0", "1", "99.99"] {
            assert_eq!(
                check(&a, v),
                Some(Hit {
                    fixed: None,
                    matched: Matched::Range(0)
                })
            );
        }
        assert!(
            comparisons(&a, "1").is_empty(),
            "every version is affected: neither events nor `versions` need comparing"
        );
    }

    #[test]
    fn a_range_without_events_matches_nothing() {
        // Import rejects this; a hand-built `Affected` must still keep the contract.
        let a = affected(vec![range(RangeType::Ecosystem, &[])], &["2"]);
        assert_eq!(check(&a, "1"), None);
        assert_eq!(check(&a, "2.0").map(|h| h.matched), Some(Matched::Versions));
    }

    #[test]
    fn unsorted_events_are_sorted_first() {
        let a = eco(&[
            ("fixed", "4"),
            ("introduced", "3"),
            ("fixed", "2"),
            ("introduced", "1"),
        ]);
        assert_eq!(check(&a, "0.5"), None);
        assert_eq!(fixed_of(&a, "1.5"), Some(Some("2".into())));
        assert_eq!(check(&a, "2.5"), None);
        assert_eq!(fixed_of(&a, "3.5"), Some(Some("4".into())));
        assert_eq!(check(&a, "5"), None);
        let pairs = comparisons(&a, "2.5");
        assert!(
            pairs.contains(&("4".into(), "3".into())),
            "event pairs in record order"
        );
    }

    #[test]
    fn semver_uses_the_callers_order_git_and_unknown_are_ignored() {
        let semver = affected(
            vec![range(
                RangeType::Semver,
                &[("introduced", "1.2"), ("fixed", "1.10")],
            )],
            &[],
        );
        assert!(
            check(&semver, "1.9").is_some(),
            "1.9 < 1.10 in the caller's order"
        );

        let git = affected(
            vec![
                range(RangeType::Git, &[("introduced", "abc123")]),
                range(RangeType::Other("FUTURE".into()), &[("introduced", "0")]),
            ],
            &[],
        );
        assert_eq!(check(&git, "1"), None);
        assert!(comparisons(&git, "1").is_empty());
    }

    #[test]
    fn comparisons_are_deduplicated() {
        let a = affected(
            vec![
                range(RangeType::Ecosystem, &[("introduced", "1"), ("fixed", "2")]),
                range(RangeType::Ecosystem, &[("introduced", "1"), ("fixed", "2")]),
            ],
            &["2", "1.5"],
        );
        let pairs = comparisons(&a, "1.5");
        let unique: HashSet<_> = pairs.iter().collect();
        assert_eq!(pairs.len(), unique.len());
        assert_eq!(
            unique,
            [("1.5", "1"), ("1.5", "2"), ("1", "2")]
                .iter()
                .map(|(a, b)| (a.to_string(), b.to_string()))
                .collect::<Vec<_>>()
                .iter()
                .collect()
        );
    }

    #[test]
    fn an_inconsistent_order_does_not_panic() {
        let a = eco(&[
            ("introduced", "1"),
            ("fixed", "2"),
            ("introduced", "3"),
            ("fixed", "4"),
            ("last_affected", "5"),
        ]);
        for answer in [Ordering::Less, Ordering::Greater, Ordering::Equal] {
            let _ = is_affected(&a, "3", &|_, _| answer);
        }
        let flip = std::cell::Cell::new(false);
        let _ = is_affected(&a, "3", &|_, _| {
            flip.set(!flip.get());
            if flip.get() {
                Ordering::Less
            } else {
                Ordering::Greater
            }
        });
    }

    #[test]
    fn matches_by_exact_ecosystem_and_name() {
        let adv: Advisory = serde_json::from_str(
            r#"{"id":"T-1","modified":"2024-01-01T00:00:00Z","affected":[
                {"package":{"ecosystem":"Ubuntu:22.04:LTS","name":"openssl"}},
                {"package":{"ecosystem":"Ubuntu:24.04:LTS","name":"openssl"}},
                {"package":{"ecosystem":"Ubuntu:22.04:LTS","name":"curl"}}]}"#,
        )
        .unwrap();
        let names = |eco: &str, names: &[&str]| -> Vec<String> {
            matches(&adv, eco, names)
                .map(|a| format!("{}/{}", a.package.ecosystem, a.package.name))
                .collect()
        };
        assert_eq!(
            names("Ubuntu:22.04:LTS", &["libssl3", "openssl"]),
            ["Ubuntu:22.04:LTS/openssl"]
        );
        assert_eq!(
            names("Ubuntu:22.04:LTS", &["openssl", "curl"]),
            ["Ubuntu:22.04:LTS/openssl", "Ubuntu:22.04:LTS/curl"]
        );
        assert!(names("Ubuntu:22.04", &["openssl"]).is_empty());
        assert!(names("ubuntu:22.04:lts", &["openssl"]).is_empty());
        assert!(names("Ubuntu:22.04:LTS", &["libssl3"]).is_empty());
    }
}
