//! dpkg version syntax and ordering.
//!
//! apt decides which package is newer with dpkg's algorithm, so anything repod
//! orders (the newest version of a package, promotion checks) must agree with
//! `dpkg --compare-versions` bit for bit, including on odd inputs. The
//! comparison below follows dpkg's `verrevcmp`; the tests check it against the
//! real dpkg.

use std::cmp::Ordering;

/// A version split the way dpkg splits it: `[epoch:]upstream[-revision]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Version<'a> {
    pub epoch: u32,
    pub upstream: &'a str,
    /// Empty when the version has no `-`; dpkg treats that as equal to `0`.
    pub revision: &'a str,
}

/// The largest epoch dpkg accepts (it stores epochs in a C `int`).
const MAX_EPOCH: u32 = i32::MAX as u32;

/// Parses a version strictly, with dpkg's rules, for validating uploads.
///
/// The error says what is wrong in words an uploader can act on.
pub fn parse(text: &str) -> Result<Version<'_>, String> {
    let bad = |why: String| format!("version {text:?} is not a valid Debian version: {why}");
    if text.is_empty() {
        return Err("version is empty".into());
    }
    if text.chars().any(char::is_whitespace) {
        return Err(bad("it contains whitespace".into()));
    }
    let (epoch, rest) = match text.split_once(':') {
        Some((epoch, rest)) => {
            if epoch.is_empty() {
                return Err(bad("the epoch before ':' is empty".into()));
            }
            if !epoch.bytes().all(|b| b.is_ascii_digit()) {
                return Err(bad(format!("the epoch {epoch:?} is not a number")));
            }
            let epoch = epoch
                .parse::<u32>()
                .ok()
                .filter(|e| *e <= MAX_EPOCH)
                .ok_or_else(|| bad(format!("the epoch {epoch} is too big")))?;
            if rest.is_empty() {
                return Err(bad("nothing follows the epoch's ':'".into()));
            }
            (epoch, rest)
        }
        None => (0, text),
    };
    let (upstream, revision) = match rest.rsplit_once('-') {
        Some((_, "")) => return Err(bad("the revision after the last '-' is empty".into())),
        Some((upstream, revision)) => (upstream, revision),
        None => (rest, ""),
    };
    if upstream.is_empty() {
        return Err(bad("the upstream version is empty".into()));
    }
    if !upstream.starts_with(|c: char| c.is_ascii_digit()) {
        return Err(bad(format!(
            "the upstream version {upstream:?} must start with a digit"
        )));
    }
    if let Some(c) = upstream
        .chars()
        .find(|c| !c.is_ascii_alphanumeric() && !".+~-:".contains(*c))
    {
        return Err(bad(format!(
            "the upstream version contains {c:?} (allowed: letters, digits and . + ~ - :)"
        )));
    }
    if let Some(c) = revision
        .chars()
        .find(|c| !c.is_ascii_alphanumeric() && !".+~".contains(*c))
    {
        return Err(bad(format!(
            "the revision contains {c:?} (allowed: letters, digits and . + ~)"
        )));
    }
    Ok(Version {
        epoch,
        upstream,
        revision,
    })
}

/// Splits any string into a version without failing, so that comparison is
/// total. Valid versions split exactly as [`parse`] does; for invalid ones
/// (which dpkg refuses or warns about) the result is merely deterministic.
fn split_lenient(text: &str) -> Version<'_> {
    let text = text.trim_matches([' ', '\t']);
    let (epoch, rest) = match text.split_once(':') {
        Some((e, rest)) if !e.is_empty() && e.bytes().all(|b| b.is_ascii_digit()) => {
            (e.parse::<u32>().unwrap_or(u32::MAX), rest)
        }
        _ => (0, text),
    };
    let (upstream, revision) = rest.rsplit_once('-').unwrap_or((rest, ""));
    Version {
        epoch,
        upstream,
        revision,
    }
}

/// Orders two versions as `dpkg --compare-versions` does.
pub fn compare(a: &str, b: &str) -> Ordering {
    let (a, b) = (split_lenient(a), split_lenient(b));
    a.epoch
        .cmp(&b.epoch)
        .then_with(|| verrevcmp(a.upstream.as_bytes(), b.upstream.as_bytes()))
        .then_with(|| verrevcmp(a.revision.as_bytes(), b.revision.as_bytes()))
}

/// dpkg's weight of a character in a non-digit run: `~` sorts before the end
/// of the run, letters before everything else. `None` is the end of the run
/// (end of string or start of digits).
fn weight(c: Option<u8>) -> i32 {
    match c {
        None => 0,
        Some(c) if c.is_ascii_digit() => 0,
        Some(c) if c.is_ascii_alphabetic() => i32::from(c),
        Some(b'~') => -1,
        // dpkg reads `char`, which is signed on the platforms it runs on, so
        // bytes above 0x7f weigh less than ASCII punctuation.
        Some(c) => i32::from(c as i8) + 256,
    }
}

/// dpkg's comparison of an upstream version or a revision: alternating runs
/// of non-digits (compared by [`weight`]) and digits (compared as numbers).
fn verrevcmp(a: &[u8], b: &[u8]) -> Ordering {
    let digit = |s: &[u8], i: usize| s.get(i).is_some_and(u8::is_ascii_digit);
    let (mut i, mut j) = (0, 0);
    while i < a.len() || j < b.len() {
        while (i < a.len() && !digit(a, i)) || (j < b.len() && !digit(b, j)) {
            let (wa, wb) = (weight(a.get(i).copied()), weight(b.get(j).copied()));
            if wa != wb {
                return wa.cmp(&wb);
            }
            i += 1;
            j += 1;
        }
        while a.get(i) == Some(&b'0') {
            i += 1;
        }
        while b.get(j) == Some(&b'0') {
            j += 1;
        }
        let mut first_diff = Ordering::Equal;
        while digit(a, i) && digit(b, j) {
            if first_diff == Ordering::Equal {
                first_diff = a[i].cmp(&b[j]);
            }
            i += 1;
            j += 1;
        }
        if digit(a, i) {
            return Ordering::Greater;
        }
        if digit(b, j) {
            return Ordering::Less;
        }
        if first_diff != Ordering::Equal {
            return first_diff;
        }
    }
    Ordering::Equal
}

/// The upstream version with the revision, without the epoch: what goes into
/// a `.deb` file name.
pub fn without_epoch(text: &str) -> &str {
    match text.split_once(':') {
        Some((epoch, rest)) if epoch.bytes().all(|b| b.is_ascii_digit()) => rest,
        _ => text,
    }
}

/// A string whose byte order is dpkg's order of the version.
///
/// The host writes index entries in byte order of their sort key, so a key
/// of `name + sortable(version)` lists the versions of a package oldest
/// first, as apt-ftparchive does, without the host knowing dpkg.
///
/// Each part (upstream, revision) is cut into dpkg's (non-digit run, number)
/// pairs. A non-digit run is written with its characters mapped to bytes in
/// dpkg's weight order, then `"` (the run's end, weight 0, above `~` and
/// below letters), then the number as a 4-digit length and its digits.
/// Trailing pairs equal to ("", 0) are dropped, since dpkg treats a missing
/// pair as that, and the part ends with `"0000"`: a missing pair followed by
/// a byte below any non-empty run. That makes the code prefix-free, so the
/// parts can be concatenated. Only meaningful for versions [`parse`]
/// accepts.
pub fn sortable(text: &str) -> String {
    let v = split_lenient(text);
    let mut out = format!("{:010}", v.epoch);
    encode_part(v.upstream.as_bytes(), &mut out);
    encode_part(v.revision.as_bytes(), &mut out);
    out
}

fn encode_part(part: &[u8], out: &mut String) {
    let mut pairs: Vec<(&[u8], &[u8])> = Vec::new();
    let mut i = 0;
    while i < part.len() {
        let start = i;
        while i < part.len() && !part[i].is_ascii_digit() {
            i += 1;
        }
        let run = &part[start..i];
        while i < part.len() && part[i] == b'0' {
            i += 1;
        }
        let start = i;
        while i < part.len() && part[i].is_ascii_digit() {
            i += 1;
        }
        pairs.push((run, &part[start..i]));
    }
    while pairs
        .last()
        .is_some_and(|(run, number)| run.is_empty() && number.is_empty())
    {
        pairs.pop();
    }
    for (run, number) in pairs {
        for &c in run {
            out.push(match c {
                b'~' => '!',
                c if c.is_ascii_alphabetic() => char::from(c),
                b'+' => '{',
                b'-' => '|',
                b'.' => '}',
                // ':' and anything `parse` rejects.
                _ => '~',
            });
        }
        out.push('"');
        out.push_str(&format!("{:04}", number.len()));
        // Digits only: ASCII, so this cannot fail.
        out.push_str(std::str::from_utf8(number).unwrap_or_default());
    }
    out.push_str("\"0000\"");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basic_order() {
        let ordered = [
            "0~~", "0~", "0", "0a", "0+", "1~rc1", "1", "1-0", "1-1", "1.0", "1.0a", "1.0+b1",
            "1.1", "1.10", "2", "10", "1:0.1", "2:0",
        ];
        for (i, a) in ordered.iter().enumerate() {
            for (j, b) in ordered.iter().enumerate() {
                let got = compare(a, b);
                // "1" and "1-0" are equal in dpkg: an absent revision is "".
                let want = match (*a, *b) {
                    ("1", "1-0") | ("1-0", "1") => Ordering::Equal,
                    _ => i.cmp(&j),
                };
                assert_eq!(got, want, "{a} vs {b}");
            }
        }
        assert_eq!(compare("0:1.0", "1.0"), Ordering::Equal);
        assert_eq!(compare("1.001", "1.1"), Ordering::Equal);
        assert_eq!(compare("1a", "1a0"), Ordering::Equal);
    }

    #[test]
    fn parse_rules() {
        let v = parse("1:2.0-1ubuntu1").unwrap();
        assert_eq!((v.epoch, v.upstream, v.revision), (1, "2.0", "1ubuntu1"));
        let v = parse("2:1.0-rc1-3").unwrap();
        assert_eq!((v.upstream, v.revision), ("1.0-rc1", "3"));
        let v = parse("1:2:3").unwrap();
        assert_eq!(v.upstream, "2:3");
        for (bad, why) in [
            ("", "empty"),
            ("1.0 ", "whitespace"),
            (":1.0", "epoch before ':' is empty"),
            ("a:1.0", "not a number"),
            ("99999999999:1", "too big"),
            ("1:", "nothing follows"),
            ("1.0-", "revision after the last '-' is empty"),
            ("-1", "upstream version is empty"),
            ("a1.0", "must start with a digit"),
            ("1.0_1", "contains '_'"),
            ("1:1.0-1:2", "revision contains ':'"),
            ("1:1.0-a_b", "revision contains '_'"),
        ] {
            let err = parse(bad).unwrap_err();
            assert!(err.contains(why), "{bad:?}: {err}");
        }
    }

    #[test]
    fn epoch_stripped_for_file_names() {
        assert_eq!(without_epoch("1:2.0-1"), "2.0-1");
        assert_eq!(without_epoch("2.0-1"), "2.0-1");
        assert_eq!(without_epoch("1:2:3"), "2:3");
    }

    #[test]
    fn sortable_agrees_with_compare() {
        let versions = [
            "0",
            "00",
            "0~",
            "0~~",
            "0a",
            "0.0",
            "0+",
            "1",
            "1-0",
            "1-00",
            "1-0~",
            "1-a",
            "1~",
            "1~~a",
            "1a",
            "1a0",
            "1a~",
            "1A",
            "1.0",
            "1.0.",
            "1.0~",
            "1+",
            "1-1",
            "1-1.1",
            "1-1+b1",
            "1.01",
            "1.1",
            "1.10",
            "1.9",
            "1:0",
            "01:0",
            "2:1~",
            "1.0a.b",
            "1.0a+",
            "1.0a-1",
            "1:1:1",
            "1:1",
            "10~0",
            "9.99999999999999999999",
            "10.0",
        ];
        for a in versions {
            for b in versions {
                let (ka, kb) = (sortable(a), sortable(b));
                assert_eq!(ka.cmp(&kb), compare(a, b), "{a} vs {b}: {ka} vs {kb}");
            }
        }
    }
}
