//! Checks `rpmvercmp` and `evr_cmp` against the real rpm (4.18).
//!
//! All pairs go to ONE `rpm --eval` call running a Lua script: rpm 4.18's
//! `rpm.vercmp(a, b)` parses both arguments as `[epoch:]version[-release]`
//! (`rpmverParse`) and compares them with `rpmverCmp`, exactly what
//! `evr_cmp` implements. Plain `rpmvercmp` on a single version string `v`
//! is reached through the EVR `0:v-0`: rpm takes the digits before `:` as the
//! epoch and the text after the *last* `-` as the release, so the version
//! part is exactly `v` (whatever `-` or `:` it contains) and the epochs and
//! releases tie.
//!
//! rpm must be installed: a missing rpm fails the test, it never skips it.

use std::cmp::Ordering;
use std::fmt::Write as _;
use std::process::Command;

use repod_rpm_core::{evr_cmp, rpmvercmp};

/// Small deterministic generator (xorshift64*), so failures reproduce.
struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len())]
    }
}

/// A version-ish string from pieces that exercise every rpmvercmp rule.
fn random_version(rng: &mut XorShift) -> String {
    const PIECES: &[&str] = &[
        "0",
        "1",
        "2",
        "9",
        "10",
        "01",
        "007",
        "123",
        "99999999999999999999",
        "a",
        "b",
        "rc",
        "alpha",
        "Z",
        "git",
        ".",
        ".",
        "_",
        "+",
        "~",
        "~",
        "^",
        "^",
        "-",
        ":",
        "..",
        "é",
    ];
    let len = rng.below(7);
    (0..len).map(|_| rng.pick(PIECES)).collect()
}

/// A second string close to the first, so many pairs tie deep inside.
fn mutate(rng: &mut XorShift, s: &str) -> String {
    const EDITS: &[&str] = &[
        "", "0", "1", ".1", "a", "~", "^", "~rc1", "^git", "_", ".0", "-",
    ];
    let mut chars: Vec<char> = s.chars().collect();
    match rng.below(4) {
        0 => chars.extend(rng.pick(EDITS).chars()),
        1 if !chars.is_empty() => {
            let at = rng.below(chars.len());
            chars.remove(at);
        }
        2 => {
            let at = rng.below(chars.len() + 1);
            for (i, c) in rng.pick(EDITS).chars().enumerate() {
                chars.insert(at + i, c);
            }
        }
        _ => return random_version(rng),
    }
    chars.into_iter().collect()
}

fn random_evr(rng: &mut XorShift) -> String {
    let mut evr = String::new();
    if rng.below(4) == 0 {
        evr.push_str(rng.pick(&["0:", "1:", "2:", "10:", "01:", ":"]));
    }
    evr.push_str(&random_version(rng));
    // rpm refuses an empty EVR, so an empty one always gets a release.
    if evr.is_empty() || rng.below(3) > 0 {
        evr.push('-');
        evr.push_str(&random_version(rng));
    }
    evr
}

/// A Lua string literal with every byte escaped, so nothing needs quoting.
fn lua_string(s: &str) -> String {
    let mut out = String::from("\"");
    for b in s.bytes() {
        let _ = write!(out, "\\{b}");
    }
    out.push('"');
    out
}

/// Asks rpm for `rpm.vercmp(a, b)` of every pair, in one process. `label`
/// keeps the script files of tests running in parallel apart.
fn rpm_vercmp(label: &str, pairs: &[(String, String)]) -> Vec<Ordering> {
    let mut script = String::from("local pairs = {\n");
    for (a, b) in pairs {
        let _ = writeln!(script, "{{{}, {}}},", lua_string(a), lua_string(b));
    }
    script.push_str(
        "}\nlocal out = {}\n\
         for i, p in ipairs(pairs) do\n\
           local r = rpm.vercmp(p[1], p[2])\n\
           out[i] = (r < 0 and '<') or (r > 0 and '>') or '='\n\
         end\n\
         print(table.concat(out))\n",
    );
    let path =
        std::env::temp_dir().join(format!("repod-vercmp-{label}-{}.lua", std::process::id()));
    std::fs::write(&path, script).expect("write the Lua script");
    let output = Command::new("rpm")
        .arg("--eval")
        .arg(format!("%{{lua: dofile(\"{}\")}}", path.display()))
        .output();
    let _ = std::fs::remove_file(&path);
    let output = output.unwrap_or_else(|e| {
        panic!(
            "cannot run rpm ({e}): this test compares against the real rpm 4.18; \
             install it (apt-get install rpm / dnf install rpm)"
        )
    });
    assert!(
        output.status.success(),
        "rpm --eval failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let stdout = String::from_utf8(output.stdout).expect("rpm output is ASCII");
    let results: Vec<Ordering> = stdout
        .trim()
        .chars()
        .map(|c| match c {
            '<' => Ordering::Less,
            '>' => Ordering::Greater,
            '=' => Ordering::Equal,
            other => panic!("unexpected rpm output {other:?} in {stdout:?}"),
        })
        .collect();
    assert_eq!(results.len(), pairs.len(), "rpm answered {stdout:?}");
    results
}

/// Hand-picked single version/release strings.
const VERSIONS: &[(&str, &str)] = &[
    ("1.0", "1.0"),
    ("1.0", "2.0"),
    ("2.0", "1.0"),
    ("2.0.1", "2.0.1"),
    ("2.0", "2.0.1"),
    ("2.0.1a", "2.0.1a"),
    ("2.0.1a", "2.0.1"),
    ("5.5p1", "5.5p1"),
    ("5.5p1", "5.5p2"),
    ("5.5p10", "5.5p1"),
    ("10xyz", "10.1xyz"),
    ("xyz10", "xyz10"),
    ("xyz10", "xyz10.1"),
    ("xyz.4", "xyz.4"),
    ("xyz.4", "8"),
    ("xyz.4", "2"),
    ("5.5p2", "5.6p1"),
    ("5.6p1", "6.5p1"),
    ("6.0.rc1", "6.0"),
    ("10b2", "10a1"),
    ("10a2", "10b2"),
    ("1.0aa", "1.0aa"),
    ("1.0a", "1.0aa"),
    ("10.0001", "10.0001"),
    ("10.0001", "10.1"),
    ("10.0001", "10.0039"),
    ("4.999.9", "5.0"),
    ("20101121", "20101121"),
    ("20101121", "20101122"),
    ("2_0", "2_0"),
    ("2.0", "2_0"),
    ("a", "a"),
    ("a+", "a+"),
    ("a+", "a_"),
    ("+a", "+a"),
    ("+a", "_a"),
    ("+_", "+_"),
    ("_+", "+_"),
    ("_+", "_"),
    ("+", "_"),
    ("1.0~rc1", "1.0~rc1"),
    ("1.0~rc1", "1.0"),
    ("1.0~rc1", "1.0~rc2"),
    ("1.0~rc1~git123", "1.0~rc1~git123"),
    ("1.0~rc1~git123", "1.0~rc1"),
    ("1.0^", "1.0^"),
    ("1.0^", "1.0"),
    ("1.0", "1.0git1^"),
    ("1.0^git1", "1.0"),
    ("1.0^git1", "1.01"),
    ("1.0^20160101", "1.0^20160101"),
    ("1.0^20160101", "1.0.1"),
    ("1.0^20160102", "1.0^20160101"),
    ("1.0~rc1^git1", "1.0~rc1^git1"),
    ("1.0~rc1^git1", "1.0~rc1"),
    ("1.0^git1~pre", "1.0^git1~pre"),
    ("1.0^git1", "1.0^git1~pre"),
    ("1.0^git1~pre", "1.0^git1"),
    ("1.0~", "1.0^"),
    ("1.0^", "1.0~"),
    ("~", "^"),
    ("~", ""),
    ("^", ""),
    ("~~", "~"),
    ("^^", "^"),
    ("", ""),
    ("", "0"),
    ("0", "00"),
    ("007", "7"),
    ("0.0.0", "0"),
    ("1.0.", "1.0"),
    (".", ""),
    ("..", "."),
    ("_.+", ""),
    ("a", "1"),
    ("1", "a"),
    ("alpha", "beta"),
    ("Alpha", "alpha"),
    ("Z", "a"),
    ("1a", "1.a"),
    ("99999999999999999999999999", "99999999999999999999999998"),
    (
        "123456789012345678901234567890",
        "1234567890123456789012345679",
    ),
    ("1.2.3-4", "1.2.3-5"),
    ("1:2", "1:3"),
    ("1é", "1"),
    ("1.el9", "1.el9_3"),
    ("3.el9_2.1", "3.el9_3"),
];

/// Hand-picked full EVR strings.
const EVRS: &[(&str, &str)] = &[
    ("1.0-1", "1.0-1"),
    ("1.0-1", "1.0-2"),
    ("1.0-10", "1.0-9"),
    ("1.0-1", "1.0"),
    ("1.0", "1.0-1"),
    ("1.0-", "1.0"),
    ("1.0-", "1.0-0"),
    ("0:1.0-1", "1.0-1"),
    ("1:1.0-1", "1.0-1"),
    ("1:1.0-1", "2:0.1-1"),
    ("1:1.0", "2.0"),
    ("10:1", "9:2"),
    ("01:1", "1:1"),
    (":1.0", "0:1.0"),
    (":1.0", "1.0"),
    ("2:", "1:9"),
    ("1:1.0~rc1-1", "1:1.0-1"),
    ("1.0^git1-1", "1.0-2"),
    ("1.0-1.el9", "1.0-1.el9_1"),
    ("1.0-1-2", "1.0-1-3"),
    ("1.0-1-2", "1.0-2"),
    ("1-2:3", "1-2:4"),
    ("a:1", "1"),
    ("-1", "0-1"),
    ("1.2.3-4.el8", "1.2.3-4.el9"),
    ("4.18.0-477.el8", "4.18.0-513.el8"),
    ("2:8.2.2637-20.el9_1", "2:8.2.2637-16.el9"),
    ("1.0-1~", "1.0-1"),
    ("1.0-1^", "1.0-1"),
];

#[test]
fn rpmvercmp_matches_rpm() {
    let mut rng = XorShift(0x9E37_79B9_7F4A_7C15);
    let mut pairs: Vec<(String, String)> = VERSIONS
        .iter()
        .map(|(a, b)| ((*a).to_owned(), (*b).to_owned()))
        .collect();
    for _ in 0..250 {
        let a = random_version(&mut rng);
        let b = if rng.below(2) == 0 {
            mutate(&mut rng, &a)
        } else {
            random_version(&mut rng)
        };
        pairs.push((a, b));
    }
    let wrapped: Vec<(String, String)> = pairs
        .iter()
        .map(|(a, b)| (format!("0:{a}-0"), format!("0:{b}-0")))
        .collect();
    let expected = rpm_vercmp("plain", &wrapped);
    let mut failures = Vec::new();
    for ((a, b), want) in pairs.iter().zip(&expected) {
        let got = rpmvercmp(a, b);
        if got != *want {
            failures.push(format!(
                "rpmvercmp({a:?}, {b:?}) = {got:?}, rpm says {want:?}"
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} mismatches:\n{}",
        failures.len(),
        failures.join("\n")
    );
    eprintln!("rpmvercmp: {} pairs agree with rpm", pairs.len());
    assert!(pairs.len() >= 300);
}

#[test]
fn evr_cmp_matches_rpm() {
    let mut rng = XorShift(0xD1B5_4A32_D192_ED03);
    let mut pairs: Vec<(String, String)> = EVRS
        .iter()
        .map(|(a, b)| ((*a).to_owned(), (*b).to_owned()))
        .collect();
    for _ in 0..250 {
        let a = random_evr(&mut rng);
        let b = if rng.below(2) == 0 {
            let mutated = mutate(&mut rng, &a);
            if mutated.is_empty() {
                "0".to_owned()
            } else {
                mutated
            }
        } else {
            random_evr(&mut rng)
        };
        pairs.push((a, b));
    }
    let expected = rpm_vercmp("evr", &pairs);
    let mut failures = Vec::new();
    for ((a, b), want) in pairs.iter().zip(&expected) {
        let got = evr_cmp(a, b);
        if got != *want {
            failures.push(format!(
                "evr_cmp({a:?}, {b:?}) = {got:?}, rpm says {want:?}"
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} mismatches:\n{}",
        failures.len(),
        failures.join("\n")
    );
    eprintln!("evr_cmp: {} pairs agree with rpm", pairs.len());
    assert!(pairs.len() >= 250);
}
