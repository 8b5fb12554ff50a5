//! rpm's version ordering, reimplemented byte for byte.
//!
//! Clients (dnf, zypper, rpm itself) decide what is "newer" with rpm's
//! `rpmvercmp`; repod must agree with them exactly or it would, say, promote
//! or prune the wrong build. So this is a literal port of rpm 4.18's
//! `rpmvercmp()` (rpmio/rpmvercmp.c) and `rpmverCmp()`/`parseEVR()`
//! (rpmio/rpmver.c), checked against the real `rpm` in `tests/vercmp_rpm.rs`.
//!
//! Also here: [`evr_sort_key`], an encoding of an EVR whose *byte order* is
//! rpm's order, because the host sorts index entries by plain byte comparison.

use std::cmp::Ordering;

/// What sits at the current position of a version string once separators
/// are skipped. rpmvercmp orders these kinds as declared here, and compares
/// two segments of the same kind by content.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Token<'a> {
    /// `~`: sorts before everything, even the end of the string.
    Tilde,
    End,
    /// `^`: after the end of the string, before any segment.
    Caret,
    Alpha(&'a [u8]),
    /// Digits with leading zeros already stripped.
    Numeric(&'a [u8]),
}

fn is_separator(b: u8) -> bool {
    !b.is_ascii_alphanumeric() && b != b'~' && b != b'^'
}

/// Reads the token at `pos` (after skipping separators) and returns it with
/// the position after it.
fn next_token(s: &[u8], mut pos: usize) -> (Token<'_>, usize) {
    while pos < s.len() && is_separator(s[pos]) {
        pos += 1;
    }
    let Some(&b) = s.get(pos) else {
        return (Token::End, pos);
    };
    match b {
        b'~' => (Token::Tilde, pos + 1),
        b'^' => (Token::Caret, pos + 1),
        b'0'..=b'9' => {
            let start = pos;
            while pos < s.len() && s[pos].is_ascii_digit() {
                pos += 1;
            }
            let digits = &s[start..pos];
            let first_nonzero = digits
                .iter()
                .position(|&d| d != b'0')
                .unwrap_or(digits.len());
            (Token::Numeric(&digits[first_nonzero..]), pos)
        }
        _ => {
            let start = pos;
            while pos < s.len() && s[pos].is_ascii_alphabetic() {
                pos += 1;
            }
            (Token::Alpha(&s[start..pos]), pos)
        }
    }
}

fn cmp_tokens(a: Token<'_>, b: Token<'_>) -> Ordering {
    match (a, b) {
        // Longer (zero-stripped) number wins, then digit-wise comparison.
        (Token::Numeric(x), Token::Numeric(y)) => x.len().cmp(&y.len()).then_with(|| x.cmp(y)),
        (Token::Alpha(x), Token::Alpha(y)) => x.cmp(y),
        _ => a.cmp(&b),
    }
}

/// rpm's `rpmvercmp()` on one version or release string.
///
/// The C code walks both strings segment by segment; the walk is equivalent
/// to a lexicographic comparison of token sequences, each ended by an end
/// token, with tokens ordered `~` < end < `^` < letters < digits (letters by
/// bytes, numbers by value), which is how it is written here. Non-ASCII
/// bytes are separators, as with rpm's `risalnum()`.
pub fn rpmvercmp(a: &str, b: &str) -> Ordering {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    if a == b {
        return Ordering::Equal;
    }
    let (mut i, mut j) = (0, 0);
    loop {
        let (ta, ni) = next_token(a, i);
        let (tb, nj) = next_token(b, j);
        match cmp_tokens(ta, tb) {
            Ordering::Equal if ta == Token::End => return Ordering::Equal,
            Ordering::Equal => (i, j) = (ni, nj),
            other => return other,
        }
    }
}

/// An `[epoch:]version[-release]` string split the way rpm's `parseEVR()`
/// splits it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Evr<'a> {
    /// `None` when there is no `digits:` prefix; `Some("0")` for a bare `:`.
    pub epoch: Option<&'a str>,
    pub version: &'a str,
    /// `None` when there is no `-`; the text after the *last* `-` otherwise.
    pub release: Option<&'a str>,
}

impl<'a> Evr<'a> {
    /// Splits like rpm: the epoch is a leading run of digits followed by `:`;
    /// the release starts after the last `-` found after that digit run.
    pub fn parse(s: &'a str) -> Evr<'a> {
        let digits = s.bytes().take_while(u8::is_ascii_digit).count();
        let last_dash = s[digits..].rfind('-').map(|p| p + digits);
        let (epoch, version_start) = if s[digits..].starts_with(':') {
            let epoch = if digits == 0 { "0" } else { &s[..digits] };
            (Some(epoch), digits + 1)
        } else {
            (None, 0)
        };
        match last_dash {
            Some(dash) => Evr {
                epoch,
                version: &s[version_start..dash],
                release: Some(&s[dash + 1..]),
            },
            None => Evr {
                epoch,
                version: &s[version_start..],
                release: None,
            },
        }
    }
}

impl Ord for Evr<'_> {
    /// rpm 4.18's `rpmverCmp()`: a missing epoch is `0`; a missing release is
    /// older than any present one (even an empty one), and two missing
    /// releases are equal.
    fn cmp(&self, other: &Self) -> Ordering {
        rpmvercmp(self.epoch.unwrap_or("0"), other.epoch.unwrap_or("0"))
            .then_with(|| rpmvercmp(self.version, other.version))
            .then_with(|| match (self.release, other.release) {
                (Some(a), Some(b)) => rpmvercmp(a, b),
                (a, b) => a.is_some().cmp(&b.is_some()),
            })
    }
}

impl PartialOrd for Evr<'_> {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// Compares two full `[epoch:]version[-release]` strings as rpm 4.18 does
/// (`rpm.vercmp()` in rpm's Lua, `rpmverCmp(rpmverParse(a), rpmverParse(b))`
/// in C). rpm rejects an empty string as invalid; here it is simply the
/// empty version, which sorts before any non-empty one.
pub fn evr_cmp(a: &str, b: &str) -> Ordering {
    Evr::parse(a).cmp(&Evr::parse(b))
}

/// Appends an encoding of one version string whose byte order is
/// [`rpmvercmp`]'s order. Every byte written is printable ASCII.
///
/// Each token becomes a kind byte (ordered like [`Token`]) and, for
/// segments, a payload: alpha runs end with `!` (below every letter, so a
/// prefix sorts first); numbers carry their digit count, itself prefixed by
/// the count's length, so longer numbers sort after shorter ones. The final
/// `End` token makes a string sort before its own extensions, except for
/// `~`, which sorts before `End`.
fn push_version_key(out: &mut String, s: &str) {
    let bytes = s.as_bytes();
    let mut pos = 0;
    loop {
        let (token, next) = next_token(bytes, pos);
        match token {
            Token::Tilde => out.push('0'),
            Token::End => {
                out.push('1');
                return;
            }
            Token::Caret => out.push('2'),
            Token::Alpha(a) => {
                out.push('3');
                out.extend(a.iter().map(|&b| b as char));
                out.push('!');
            }
            Token::Numeric(n) => {
                out.push('4');
                let len = n.len().to_string();
                out.push_str(&len.len().to_string());
                out.push_str(&len);
                out.extend(n.iter().map(|&b| b as char));
            }
        }
        pos = next;
    }
}

/// A string whose byte order is the order of [`evr_cmp`] on EVRs that have
/// a release (as every packaged rpm does): epoch, version and release keys,
/// each self-terminating, concatenated.
pub fn evr_sort_key(epoch: Option<u32>, version: &str, release: &str) -> String {
    let mut key = String::new();
    push_version_key(&mut key, &epoch.unwrap_or(0).to_string());
    push_version_key(&mut key, version);
    push_version_key(&mut key, release);
    key
}

#[cfg(test)]
mod tests {
    use super::*;
    use Ordering::*;

    #[test]
    fn segments_follow_rpm_rules() {
        let cases = [
            ("1.0", "1.0", Equal),
            ("1.0", "1_0", Equal),
            ("01.0", "1.00", Equal),
            ("1.0", "1.0.1", Less),
            ("1.0a", "1.0", Greater),
            ("1.0a", "1.0.1", Less),
            ("2", "10", Less),
            ("a", "1", Less),
            ("1.0~rc1", "1.0", Less),
            ("1.0~rc1", "1.0~rc2", Less),
            ("1.0~~", "1.0~", Less),
            ("1.0^", "1.0", Greater),
            ("1.0^git1", "1.0.1", Less),
            ("1.0^git1", "1.0~rc1", Greater),
            ("1.0^", "1.0^git1", Less),
            ("", "", Equal),
            ("", "~", Greater),
            ("..", "", Equal),
            (
                "99999999999999999999999",
                "99999999999999999999998",
                Greater,
            ),
        ];
        for (a, b, want) in cases {
            assert_eq!(rpmvercmp(a, b), want, "{a} vs {b}");
            assert_eq!(rpmvercmp(b, a), want.reverse(), "{b} vs {a}");
        }
    }

    #[test]
    fn evr_parsing_matches_parse_evr() {
        let e = Evr::parse("2:1.0-3-4");
        assert_eq!(
            (e.epoch, e.version, e.release),
            (Some("2"), "1.0-3", Some("4"))
        );
        let e = Evr::parse(":1");
        assert_eq!((e.epoch, e.version, e.release), (Some("0"), "1", None));
        let e = Evr::parse("12-3");
        assert_eq!((e.epoch, e.version, e.release), (None, "12", Some("3")));
        let e = Evr::parse("1-2:3");
        assert_eq!((e.epoch, e.version, e.release), (None, "1", Some("2:3")));
        let e = Evr::parse("a:1");
        assert_eq!((e.epoch, e.version, e.release), (None, "a:1", None));
    }

    #[test]
    fn evr_compares_epoch_then_version_then_release() {
        assert_eq!(evr_cmp("1:1.0-1", "2.0-1"), Greater);
        assert_eq!(evr_cmp("0:1.0-1", "1.0-1"), Equal);
        assert_eq!(evr_cmp("1.0-1", "1.0"), Greater);
        assert_eq!(evr_cmp("1.0-", "1.0"), Greater);
        assert_eq!(evr_cmp("1.0-1", "1.0-1.el9"), Less);
    }

    #[test]
    fn sort_key_orders_like_evr_cmp_on_random_evrs() {
        // xorshift64: deterministic, so a failure reproduces.
        struct Rng(u64);
        impl Rng {
            fn below(&mut self, n: usize) -> usize {
                self.0 ^= self.0 << 13;
                self.0 ^= self.0 >> 7;
                self.0 ^= self.0 << 17;
                (self.0 % n as u64) as usize
            }
            fn version(&mut self) -> String {
                const PIECES: &[&str] = &[
                    "0", "1", "2", "10", "01", "999", "a", "b", "rc", "Z", ".", "_", "+", "~", "^",
                ];
                let len = 1 + self.below(5);
                (0..len).map(|_| PIECES[self.below(PIECES.len())]).collect()
            }
        }
        let mut rng = Rng(0x2545_F491_4F6C_DD1D);
        let evrs: Vec<(Option<u32>, String, String)> = (0..300)
            .map(|_| {
                let epoch = [None, Some(0), Some(1), Some(10)][rng.below(4)];
                (epoch, rng.version(), rng.version())
            })
            .collect();
        let evr = |(e, v, r): &(Option<u32>, String, String)| format!("{}:{v}-{r}", e.unwrap_or(0));
        for a in &evrs {
            for b in &evrs {
                let want = evr_cmp(&evr(a), &evr(b));
                let got = evr_sort_key(a.0, &a.1, &a.2).cmp(&evr_sort_key(b.0, &b.1, &b.2));
                assert_eq!(got, want, "{} vs {}", evr(a), evr(b));
            }
        }
    }

    #[test]
    fn sort_key_orders_like_evr_cmp() {
        let evrs = [
            (None, "1.0", "1"),
            (Some(0), "1.0", "2"),
            (Some(1), "0.1", "1"),
            (None, "1.0~rc1", "1"),
            (None, "1.0^git1", "1"),
            (None, "1.0.1", "1"),
            (None, "1.0a", "1"),
            (None, "1.0", "1.el9"),
            (None, "10", "1"),
            (None, "9", "1"),
            (None, "1.0", "1~"),
            (None, "abc", "1"),
            (None, "abcd", "1"),
            (None, "ab", "1"),
            (None, "0001.0", "1"),
        ];
        for a in &evrs {
            for b in &evrs {
                let full = |(e, v, r): &(Option<u32>, &str, &str)| match e {
                    Some(e) => format!("{e}:{v}-{r}"),
                    None => format!("{v}-{r}"),
                };
                let want = evr_cmp(&full(a), &full(b));
                let got = evr_sort_key(a.0, a.1, a.2).cmp(&evr_sort_key(b.0, b.1, b.2));
                assert_eq!(got, want, "{} vs {}", full(a), full(b));
            }
        }
    }
}
