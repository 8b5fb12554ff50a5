//! Checks repod's dpkg version ordering against the real dpkg.
//!
//! apt installs whatever dpkg considers newest, so "close enough" is a bug:
//! every pair here is compared by `dpkg --compare-versions` and by
//! `version::compare` (and the sort key derived from it), and all must agree.
//! dpkg is required: without it this test fails rather than passing vacuously.

use std::cmp::Ordering;
use std::process::Command;

use repod_deb_core::version;

const DPKG: &str = "dpkg";

/// Pairs chosen for the corners of dpkg's algorithm.
const HAND_PICKED: &[(&str, &str)] = &[
    // Tilde sorts before everything, even the end of the string.
    ("1.0~rc1", "1.0"),
    ("1.0~rc1", "1.0~rc2"),
    ("1.0~~", "1.0~"),
    ("1.0~~a", "1.0~"),
    ("1.0~", "1.0"),
    ("1~", "1"),
    ("1~~", "1~~a"),
    ("1~a", "1~"),
    ("1.0", "1.0~0"),
    ("1.0-1~bpo1", "1.0-1"),
    ("1.0-1", "1.0-1~"),
    ("0~", "0"),
    // Epochs.
    ("1:1.0", "2.0"),
    ("0:1.0", "1.0"),
    ("00:1.0", "0:1.0"),
    ("1:1.0", "01:1.0"),
    ("2:0", "1:999"),
    ("10:1", "9:1"),
    ("1:1:1", "1:1"),
    ("1:1:1", "1:1.1"),
    ("1:1:1-1", "1:1.1-1"),
    // Absent, empty-looking and zero revisions.
    ("1.0", "1.0-0"),
    ("1.0", "1.0-00"),
    ("1.0-0", "1.0-0.0"),
    ("1.0", "1.0-1"),
    ("1.0-0", "1.0-0~"),
    ("1.0-a", "1.0"),
    ("1.0-~", "1.0"),
    ("1.0-1", "1.0-1.0"),
    ("1.0-rc-1", "1.0-1"),
    ("1.0-1-1", "1.0-1"),
    // Letters sort before non-letters, upper before lower case.
    ("1.0a", "1.0+"),
    ("1.0a", "1.0."),
    ("1.0a-1", "1.0--1"),
    ("1.0A", "1.0a"),
    ("1.0Z", "1.0a"),
    ("1.0z", "1.0+"),
    ("1a", "1b"),
    ("1a", "1"),
    ("1a", "1a0"),
    ("1a", "1a1"),
    ("1a0b", "1ab"),
    ("1.a", "1.0"),
    ("1.", "1"),
    ("1.0.", "1.0"),
    ("1+", "1."),
    ("1-+", "1-."),
    ("1:1:", "1:1."),
    ("1:1:", "1:1+"),
    ("1:1-1:1-x", "1:1-1:1-1"),
    // Digit runs compare as numbers; leading zeros do not count.
    ("1.01", "1.1"),
    ("1.001", "1.0001"),
    ("1.010", "1.10"),
    ("1.09", "1.10"),
    ("1.9", "1.10"),
    ("1.0", "1.00"),
    ("0", "00"),
    ("1.2.3", "1.2.10"),
    ("1.2.3", "1.02.3"),
    ("10", "9"),
    ("100", "99"),
    ("1.99999999999999999999", "1.100000000000000000000"),
    ("18446744073709551616", "18446744073709551615"),
    (
        "123456789012345678901234567890",
        "123456789012345678901234567891",
    ),
    ("007", "7"),
    ("0.0.0.0", "0"),
    // `+` and `.` as separators.
    ("1.0+dfsg", "1.0"),
    ("1.0+dfsg-1", "1.0-1"),
    ("1.0+dfsg1", "1.0+dfsg"),
    ("1.0+b1", "1.0.1"),
    ("1.0.1", "1.0+1"),
    ("1.0-1+b1", "1.0-1.1"),
    ("1.0-1ubuntu1", "1.0-1"),
    ("1.0-1ubuntu0.1", "1.0-1ubuntu1"),
    ("1.0-1build1", "1.0-1ubuntu1"),
    ("2.36-0ubuntu1~22.04", "2.36-0ubuntu1"),
    ("5.15.0-91.101", "5.15.0-91.101~20.04"),
    // Identities.
    ("1.0", "1.0"),
    ("1:1.0-1", "1:1.0-1"),
    (
        "1.0~rc1+git20240101.abc-1~bpo12+1",
        "1.0~rc1+git20240101.abc-1~bpo12+1",
    ),
    ("0", "0"),
];

/// xorshift64*: deterministic, so a failure reproduces exactly.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len())]
    }
}

/// Alphabets weighted toward what stresses the algorithm: zeros, tildes,
/// letters of both cases next to digits, and every separator.
const UPSTREAM: &[&str] = &[
    "0", "0", "1", "1", "2", "9", "10", "00", "01", "a", "b", "z", "A", "Z", "~", "~", "+", ".",
    ".", "~~",
];
const REVISION: &[&str] = &[
    "0", "1", "2", "00", "a", "b", "Z", "~", "+", ".", "ubuntu", "build",
];

fn random_version(rng: &mut Rng) -> String {
    let mut v = String::new();
    let epoch = rng.below(4) == 0;
    if epoch {
        v.push_str(rng.pick(&["0", "1", "2", "00", "10"]));
        v.push(':');
    }
    let revision = rng.below(2) == 0;
    v.push_str(rng.pick(&["0", "1", "2", "00", "01", "10", "9"]));
    for _ in 0..rng.below(7) {
        // `-` only inside upstream when a revision follows, `:` only after an epoch.
        let extra = match rng.below(12) {
            0 if revision => "-",
            1 if epoch => ":",
            _ => rng.pick(UPSTREAM),
        };
        v.push_str(extra);
    }
    if revision {
        v.push('-');
        for _ in 0..=rng.below(4) {
            v.push_str(rng.pick(REVISION));
        }
    }
    v
}

/// A small edit of `v` that keeps it valid, so pairs are often near-equal.
fn mutate(rng: &mut Rng, v: &str) -> String {
    match rng.below(7) {
        0 => format!("{v}0"),
        1 => format!("{v}~"),
        2 => format!("{v}a"),
        3 => format!("{v}.0"),
        4 => {
            // Add a leading zero before some digit.
            let digits: Vec<usize> = v
                .char_indices()
                .filter(|(_, c)| c.is_ascii_digit())
                .map(|(i, _)| i)
                .collect();
            let at = digits[rng.below(digits.len())];
            format!("{}0{}", &v[..at], &v[at..])
        }
        // Drop or add an epoch; a colon left in the rest would become an
        // epoch separator, so such versions get a digit appended instead.
        5 => match v.split_once(':') {
            Some((_, rest)) if !rest.contains(':') => rest.to_owned(),
            Some(_) => format!("{v}1"),
            None => format!("0:{v}"),
        },
        _ => {
            if v.contains('-') {
                format!("{v}~")
            } else {
                format!("{v}-0")
            }
        }
    }
}

fn pairs() -> Vec<(String, String)> {
    let mut pairs: Vec<(String, String)> = HAND_PICKED
        .iter()
        .flat_map(|(a, b)| {
            [
                (a.to_string(), b.to_string()),
                (b.to_string(), a.to_string()),
            ]
        })
        .collect();
    let mut rng = Rng(0x005e_ed0f_d9c9_2024);
    for i in 0..240 {
        let a = random_version(&mut rng);
        let b = if i % 2 == 0 {
            random_version(&mut rng)
        } else {
            mutate(&mut rng, &a)
        };
        pairs.push((a, b));
    }
    pairs
}

/// One `dpkg --compare-versions a op b`, as a boolean; anything but exit 0
/// or 1 (dpkg rejected a version) is a test failure.
fn dpkg_says(a: &str, op: &str, b: &str) -> bool {
    let out = Command::new(DPKG)
        .args(["--compare-versions", a, op, b])
        .output()
        .unwrap_or_else(|e| {
            panic!(
                "cannot run `{DPKG} --compare-versions` ({e}); this test needs the real dpkg as \
                 the reference: install it (e.g. `apt-get install dpkg`)"
            )
        });
    match out.status.code() {
        Some(0) => true,
        Some(1) => false,
        other => panic!(
            "dpkg --compare-versions {a:?} {op} {b:?} exited with {other:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        ),
    }
}

fn dpkg_order(a: &str, b: &str) -> Ordering {
    let (lt, eq, gt) = (
        dpkg_says(a, "lt", b),
        dpkg_says(a, "eq", b),
        dpkg_says(a, "gt", b),
    );
    match (lt, eq, gt) {
        (true, false, false) => Ordering::Less,
        (false, true, false) => Ordering::Equal,
        (false, false, true) => Ordering::Greater,
        _ => panic!("dpkg gave inconsistent answers for {a:?} vs {b:?}: lt={lt} eq={eq} gt={gt}"),
    }
}

#[test]
fn matches_dpkg_compare_versions() {
    let pairs = pairs();
    assert!(pairs.len() >= 400, "only {} pairs", pairs.len());
    let mut failures = Vec::new();
    let mut orders = [0usize; 3];
    for (a, b) in &pairs {
        // Valid syntax for dpkg is valid for repod: the generators only make
        // versions dpkg accepts, and dpkg is asked below.
        for v in [a, b] {
            if let Err(e) = version::parse(v) {
                failures.push(format!("{v:?} rejected by repod but accepted by dpkg: {e}"));
            }
        }
        let want = dpkg_order(a, b);
        orders[(want as i8 + 1) as usize] += 1;
        let got = version::compare(a, b);
        if got != want {
            failures.push(format!(
                "{a:?} vs {b:?}: dpkg says {want:?}, repod says {got:?}"
            ));
        }
        let by_key = version::sortable(a).cmp(&version::sortable(b));
        if by_key != want {
            failures.push(format!(
                "{a:?} vs {b:?}: dpkg says {want:?}, sort keys say {by_key:?}"
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} pairs disagree with dpkg:\n{}",
        failures.len(),
        pairs.len(),
        failures.join("\n")
    );
    // Every outcome is exercised, so agreement is not an accident of a
    // one-sided sample.
    assert!(
        orders.iter().all(|n| *n >= 20),
        "outcomes less/equal/greater: {orders:?}"
    );
    println!(
        "{} pairs agree with dpkg (less/equal/greater: {orders:?})",
        pairs.len()
    );
}
