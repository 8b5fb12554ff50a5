//! Severity normalization: every feed's way of saying "how bad" mapped onto one
//! scale. The sources and the word table are documented at the crate root.

use std::cmp::Ordering;

use serde_json::Value;

use crate::cvss::cvss3_base_score;
use crate::model::{Advisory, SeverityEntry};

/// repod's single severity scale.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Severity {
    Critical,
    High,
    Medium,
    Low,
    Negligible,
    Unknown,
}

impl Severity {
    /// 5 for Critical down to 0 for Unknown; the order behind `Ord`.
    pub fn rank(self) -> u8 {
        match self {
            Severity::Critical => 5,
            Severity::High => 4,
            Severity::Medium => 3,
            Severity::Low => 2,
            Severity::Negligible => 1,
            Severity::Unknown => 0,
        }
    }

    /// CVSS qualitative bands; 0.0 ("None" in CVSS) is Negligible.
    pub fn from_score(score: f32) -> Severity {
        match score {
            s if s >= 9.0 => Severity::Critical,
            s if s >= 7.0 => Severity::High,
            s if s >= 4.0 => Severity::Medium,
            s if s >= 0.1 => Severity::Low,
            s if s >= 0.0 => Severity::Negligible,
            _ => Severity::Unknown,
        }
    }

    /// Maps a severity or priority word (any case) used by a feed; `None` for
    /// words that carry no level, such as Ubuntu's `untriaged`.
    pub fn from_word(word: &str) -> Option<Severity> {
        Some(match word.trim().to_ascii_lowercase().as_str() {
            "critical" => Severity::Critical,
            "high" | "important" => Severity::High,
            "medium" | "moderate" => Severity::Medium,
            "low" => Severity::Low,
            "negligible" | "unimportant" => Severity::Negligible,
            _ => return None,
        })
    }

    /// Lowercase name, for storage and display.
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Critical => "critical",
            Severity::High => "high",
            Severity::Medium => "medium",
            Severity::Low => "low",
            Severity::Negligible => "negligible",
            Severity::Unknown => "unknown",
        }
    }
}

impl Ord for Severity {
    fn cmp(&self, other: &Self) -> Ordering {
        self.rank().cmp(&other.rank())
    }
}

impl PartialOrd for Severity {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// A record's normalized severity and where it came from.
#[derive(Debug, Clone, PartialEq)]
pub struct Rated {
    pub level: Severity,
    /// The CVSS base score, when the level came from one.
    pub score: Option<f32>,
    /// The CVSS vector the score was computed from.
    pub vector: Option<String>,
    /// Which field supplied the level; see the crate-level table.
    pub source: &'static str,
}

/// The source names [`Rated::source`] can take.
pub mod source {
    pub const CVSS_V3: &str = "severity.cvss_v3";
    pub const CVSS_V4_SCORE: &str = "severity.cvss_v4_score";
    pub const CVES_MAP_CVSS_V3: &str = "cves_map.cvss_v3";
    pub const DATABASE_SPECIFIC: &str = "database_specific.severity";
    pub const ECOSYSTEM_SPECIFIC: &str = "ecosystem_specific.severity";
    pub const UBUNTU_SEVERITY: &str = "severity.ubuntu";
    pub const UBUNTU_PRIORITY: &str = "ecosystem_specific.ubuntu_priority";
    pub const CVES_MAP_UBUNTU: &str = "cves_map.ubuntu";
    pub const SUMMARY_PREFIX: &str = "summary_prefix";
    pub const NONE: &str = "none";
}

/// Normalizes a record's severity, trying the sources in the crate-level order
/// and taking the worst value within the first source kind that yields one
/// (a notice that bundles several CVEs is as bad as its worst CVE).
pub fn severity(adv: &Advisory) -> Rated {
    if let Some(rated) = from_cvss(adv) {
        return rated;
    }
    if let Some(rated) = from_words(adv) {
        return rated;
    }
    if let Some(rated) = from_ubuntu_priority(adv) {
        return rated;
    }
    if let Some(level) = summary_prefix(adv.summary.as_deref()) {
        return word_rated(level, source::SUMMARY_PREFIX);
    }
    word_rated(Severity::Unknown, source::NONE)
}

fn word_rated(level: Severity, source: &'static str) -> Rated {
    Rated {
        level,
        score: None,
        vector: None,
        source,
    }
}

/// Ubuntu USN records keep per-CVE severities in
/// `affected[].database_specific.cves_map.cves[].severity[]`.
fn cves_map_entries(adv: &Advisory) -> impl Iterator<Item = SeverityEntry> + '_ {
    adv.affected
        .iter()
        .filter_map(|a| a.database_specific.pointer("/cves_map/cves")?.as_array())
        .flatten()
        .filter_map(|cve| cve.get("severity")?.as_array())
        .flatten()
        .filter_map(|s| {
            Some(SeverityEntry {
                kind: s.get("type")?.as_str()?.to_owned(),
                score: s.get("score")?.as_str()?.to_owned(),
            })
        })
}

fn from_cvss(adv: &Advisory) -> Option<Rated> {
    let schema_entries = adv
        .severity
        .iter()
        .chain(adv.affected.iter().flat_map(|a| &a.severity))
        .cloned()
        .map(|e| (e, false));
    let cves_map = cves_map_entries(adv).map(|e| (e, true));
    let mut best: Option<Rated> = None;
    for (entry, in_cves_map) in schema_entries.chain(cves_map) {
        let candidate = match entry.kind.as_str() {
            "CVSS_V3" => cvss3_base_score(&entry.score).map(|score| Rated {
                level: Severity::from_score(score),
                score: Some(score),
                vector: Some(entry.score.clone()),
                source: if in_cves_map {
                    source::CVES_MAP_CVSS_V3
                } else {
                    source::CVSS_V3
                },
            }),
            // CVSS v4 scores are not computed here; only a plain numeric score counts.
            "CVSS_V4" => entry
                .score
                .trim()
                .parse::<f32>()
                .ok()
                .filter(|s| (0.0..=10.0).contains(s))
                .map(|score| Rated {
                    level: Severity::from_score(score),
                    score: Some(score),
                    vector: None,
                    source: source::CVSS_V4_SCORE,
                }),
            _ => None,
        };
        if let Some(c) = candidate
            && best.as_ref().is_none_or(|b| c.score > b.score)
        {
            best = Some(c);
        }
    }
    best
}

/// Highest recognized level among `(word, source)` candidates; first wins ties.
fn worst_word<'a>(candidates: impl Iterator<Item = (&'a str, &'static str)>) -> Option<Rated> {
    let mut best: Option<(Severity, &'static str)> = None;
    for (word, src) in candidates {
        if let Some(level) = Severity::from_word(word)
            && best.is_none_or(|(b, _)| level > b)
        {
            best = Some((level, src));
        }
    }
    best.map(|(level, src)| word_rated(level, src))
}

fn from_words(adv: &Advisory) -> Option<Rated> {
    fn field(v: &Value) -> Option<&str> {
        v.get("severity").and_then(Value::as_str)
    }
    let top = field(&adv.database_specific).map(|w| (w, source::DATABASE_SPECIFIC));
    let per_package = adv.affected.iter().flat_map(|a| {
        [
            field(&a.ecosystem_specific).map(|w| (w, source::ECOSYSTEM_SPECIFIC)),
            field(&a.database_specific).map(|w| (w, source::DATABASE_SPECIFIC)),
        ]
    });
    worst_word(top.into_iter().chain(per_package.flatten()))
}

fn from_ubuntu_priority(adv: &Advisory) -> Option<Rated> {
    let typed = adv
        .severity
        .iter()
        .chain(adv.affected.iter().flat_map(|a| &a.severity))
        .filter(|e| e.kind == "Ubuntu")
        .map(|e| (e.score.as_str(), source::UBUNTU_SEVERITY));
    let priority = adv.affected.iter().filter_map(|a| {
        let word = a.ecosystem_specific.get("ubuntu_priority")?.as_str()?;
        Some((word, source::UBUNTU_PRIORITY))
    });
    if let Some(rated) = worst_word(typed.chain(priority)) {
        return Some(rated);
    }
    let mapped: Vec<SeverityEntry> = cves_map_entries(adv)
        .filter(|e| e.kind == "Ubuntu")
        .collect();
    worst_word(
        mapped
            .iter()
            .map(|e| (e.score.as_str(), source::CVES_MAP_UBUNTU)),
    )
}

/// Red Hat-style summaries (AlmaLinux, Rocky) start with the errata severity:
/// `"Important: xz security update"`.
fn summary_prefix(summary: Option<&str>) -> Option<Severity> {
    let (word, _) = summary?.split_once(':')?;
    match word {
        "Critical" => Some(Severity::Critical),
        "Important" => Some(Severity::High),
        "Moderate" => Some(Severity::Medium),
        "Low" => Some(Severity::Low),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn adv(json: &str) -> Advisory {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn score_bands() {
        assert_eq!(Severity::from_score(10.0), Severity::Critical);
        assert_eq!(Severity::from_score(9.0), Severity::Critical);
        assert_eq!(Severity::from_score(8.9), Severity::High);
        assert_eq!(Severity::from_score(7.0), Severity::High);
        assert_eq!(Severity::from_score(6.9), Severity::Medium);
        assert_eq!(Severity::from_score(4.0), Severity::Medium);
        assert_eq!(Severity::from_score(3.9), Severity::Low);
        assert_eq!(Severity::from_score(0.1), Severity::Low);
        assert_eq!(Severity::from_score(0.0), Severity::Negligible);
        assert_eq!(Severity::from_score(f32::NAN), Severity::Unknown);
    }

    #[test]
    fn ordering_puts_critical_on_top() {
        assert!(Severity::Critical > Severity::High);
        assert!(Severity::Negligible > Severity::Unknown);
        assert_eq!(
            [Severity::Low, Severity::Critical, Severity::Medium]
                .into_iter()
                .max(),
            Some(Severity::Critical)
        );
    }

    #[test]
    fn cvss_wins_over_words_and_takes_the_worst_vector() {
        let a = adv(r#"{"id":"X-1","modified":"2024-01-01T00:00:00Z",
            "summary":"Low: something",
            "severity":[
              {"type":"CVSS_V3","score":"CVSS:3.1/AV:N/AC:H/PR:N/UI:N/S:U/C:N/I:L/A:N"},
              {"type":"CVSS_V3","score":"CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:N/I:N/A:H"},
              {"type":"Ubuntu","score":"low"}],
            "database_specific":{"severity":"LOW"}}"#);
        let r = severity(&a);
        assert_eq!(r.level, Severity::High);
        assert_eq!(r.score, Some(7.5));
        assert_eq!(
            r.vector.as_deref(),
            Some("CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:N/I:N/A:H")
        );
        assert_eq!(r.source, source::CVSS_V3);
    }

    #[test]
    fn cvss_v4_vector_falls_through_but_numeric_v4_counts() {
        let vector_only = adv(r#"{"id":"X-2","modified":"2024-01-01T00:00:00Z",
            "severity":[{"type":"CVSS_V4","score":"CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:H/SC:N/SI:N/SA:N"}],
            "database_specific":{"severity":"MODERATE"}}"#);
        let r = severity(&vector_only);
        assert_eq!(
            (r.level, r.source),
            (Severity::Medium, source::DATABASE_SPECIFIC)
        );
        assert_eq!(r.score, None);

        let numeric = adv(r#"{"id":"X-3","modified":"2024-01-01T00:00:00Z",
            "severity":[{"type":"CVSS_V4","score":"9.3"}]}"#);
        let r = severity(&numeric);
        assert_eq!(
            (r.level, r.score, r.source),
            (Severity::Critical, Some(9.3), source::CVSS_V4_SCORE)
        );
    }

    #[test]
    fn per_package_words_and_unknown_words() {
        let a = adv(r#"{"id":"X-4","modified":"2024-01-01T00:00:00Z",
            "affected":[
              {"package":{"ecosystem":"E","name":"a"},"ecosystem_specific":{"severity":"untriaged"}},
              {"package":{"ecosystem":"E","name":"b"},"ecosystem_specific":{"severity":"low"}},
              {"package":{"ecosystem":"E","name":"c"},"database_specific":{"severity":"Important"}}]}"#);
        let r = severity(&a);
        assert_eq!(
            (r.level, r.source),
            (Severity::High, source::DATABASE_SPECIFIC)
        );
    }

    #[test]
    fn summary_prefix_only_with_red_hat_words() {
        assert_eq!(
            summary_prefix(Some("Important: xz security update")),
            Some(Severity::High)
        );
        assert_eq!(
            summary_prefix(Some("Moderate: zlib")),
            Some(Severity::Medium)
        );
        assert_eq!(
            summary_prefix(Some("Critical: x")),
            Some(Severity::Critical)
        );
        assert_eq!(summary_prefix(Some("Low: x")), Some(Severity::Low));
        assert_eq!(
            summary_prefix(Some("Red Hat Security Advisory: git-lfs")),
            None
        );
        assert_eq!(summary_prefix(Some("Important update")), None);
        assert_eq!(summary_prefix(None), None);
    }

    #[test]
    fn nothing_known_is_unknown() {
        let a = adv(
            r#"{"id":"X-5","modified":"2024-01-01T00:00:00Z","summary":"glibc vulnerabilities"}"#,
        );
        assert_eq!(
            severity(&a),
            Rated {
                level: Severity::Unknown,
                score: None,
                vector: None,
                source: source::NONE
            }
        );
    }
}
