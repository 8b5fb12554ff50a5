//! The OSV record model: what repod keeps of an advisory.
//!
//! Deserialization is lenient about fields this model does not know (they are
//! ignored here and survive in [`Advisory::raw`]) and about `null` where a list
//! or object is optional, but strict about the required `id` and `modified`
//! and about the shape of range events.

use serde::{Deserialize, Deserializer};
use serde_json::Value;

/// One OSV record.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Advisory {
    /// Unique id, `<DB>-<ENTRYID>` (e.g. `ALSA-2023:0959`, `USN-6409-1`).
    pub id: String,
    /// Last modification time, RFC3339. Of two records with the same id the
    /// later `modified` is authoritative (OSV schema).
    pub modified: String,
    #[serde(default)]
    pub schema_version: Option<String>,
    #[serde(default)]
    pub published: Option<String>,
    /// Set when the record was withdrawn; such a record should not produce findings.
    #[serde(default)]
    pub withdrawn: Option<String>,
    #[serde(default, deserialize_with = "null_default")]
    pub aliases: Vec<String>,
    /// Upstream ids (distros list the CVEs they fix here).
    #[serde(default, deserialize_with = "null_default")]
    pub upstream: Vec<String>,
    #[serde(default, deserialize_with = "null_default")]
    pub related: Vec<String>,
    #[serde(default)]
    pub summary: Option<String>,
    #[serde(default)]
    pub details: Option<String>,
    #[serde(default, deserialize_with = "null_default")]
    pub severity: Vec<SeverityEntry>,
    #[serde(default, deserialize_with = "null_default")]
    pub affected: Vec<Affected>,
    /// Free-form object; `Value::Null` when absent.
    #[serde(default)]
    pub database_specific: Value,
    /// The record's JSON text exactly as it was imported, for verbatim storage.
    #[serde(skip)]
    pub raw: String,
}

impl Advisory {
    /// Whether the record carries a `withdrawn` timestamp.
    pub fn is_withdrawn(&self) -> bool {
        self.withdrawn.is_some()
    }
}

/// A `severity[]` item: a scoring method and its score string.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct SeverityEntry {
    /// `CVSS_V2`, `CVSS_V3`, `CVSS_V4`, `Ubuntu`, or a type this crate does not know.
    #[serde(rename = "type")]
    pub kind: String,
    /// A CVSS vector for the CVSS types, a lowercase priority word for `Ubuntu`.
    pub score: String,
}

/// The package an `affected` entry is about.
#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
pub struct Package {
    /// OSV ecosystem string as the feed writes it, e.g. `AlmaLinux:9`, `Ubuntu:22.04:LTS`.
    pub ecosystem: String,
    /// Package name within the ecosystem (source package for Debian/Ubuntu,
    /// binary RPM in AlmaLinux/Red Hat feeds).
    pub name: String,
    #[serde(default)]
    pub purl: Option<String>,
}

/// One `affected[]` entry: a package and the versions of it that are vulnerable.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Affected {
    /// Absent only in records that describe bare GIT ranges; then it is empty
    /// and never matches a package.
    #[serde(default)]
    pub package: Package,
    /// Per-package severity (the schema forbids it together with a top-level one).
    #[serde(default, deserialize_with = "null_default")]
    pub severity: Vec<SeverityEntry>,
    #[serde(default, deserialize_with = "null_default")]
    pub ranges: Vec<Range>,
    /// Explicitly enumerated affected versions.
    #[serde(default, deserialize_with = "null_default")]
    pub versions: Vec<String>,
    #[serde(default)]
    pub ecosystem_specific: Value,
    #[serde(default)]
    pub database_specific: Value,
}

/// The ordering a range's versions follow.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RangeType {
    /// The ecosystem's own order (dpkg, rpm, ...), supplied by the caller.
    Ecosystem,
    /// SemVer 2.0 precedence; this crate still uses the caller's order.
    Semver,
    /// Git commit hashes; needs the commit graph, so never evaluated here.
    Git,
    /// A type this crate does not know; kept, never evaluated.
    Other(String),
}

impl RangeType {
    /// Whether [`crate::is_affected`] evaluates ranges of this type.
    pub fn is_evaluated(&self) -> bool {
        matches!(self, RangeType::Ecosystem | RangeType::Semver)
    }
}

impl<'de> Deserialize<'de> for RangeType {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Ok(match s.as_str() {
            "ECOSYSTEM" => RangeType::Ecosystem,
            "SEMVER" => RangeType::Semver,
            "GIT" => RangeType::Git,
            _ => RangeType::Other(s),
        })
    }
}

/// One `ranges[]` entry.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Range {
    #[serde(rename = "type")]
    pub kind: RangeType,
    #[serde(default)]
    pub repo: Option<String>,
    #[serde(default, deserialize_with = "null_default")]
    pub events: Vec<Event>,
    #[serde(default)]
    pub database_specific: Value,
}

/// A range event. The schema allows exactly one of the four keys per event object.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(try_from = "RawEvent")]
pub enum Event {
    /// Versions at or above this are affected; `"0"` means "from the beginning".
    Introduced(String),
    /// Versions at or above this are not affected (exclusive end).
    Fixed(String),
    /// Versions above this are not affected (inclusive end).
    LastAffected(String),
    /// Upper bound on the whole range: only versions below some limit are
    /// considered; a version containing `*` means infinity.
    Limit(String),
}

impl Event {
    /// The event's version string.
    pub fn version(&self) -> &str {
        match self {
            Event::Introduced(v) | Event::Fixed(v) | Event::LastAffected(v) | Event::Limit(v) => v,
        }
    }
}

/// The event object as written, before the one-key rule is checked.
#[derive(Deserialize)]
struct RawEvent {
    introduced: Option<String>,
    fixed: Option<String>,
    last_affected: Option<String>,
    limit: Option<String>,
}

impl TryFrom<RawEvent> for Event {
    type Error = String;

    fn try_from(raw: RawEvent) -> Result<Self, String> {
        let present: Vec<(&str, String)> = [
            ("introduced", raw.introduced),
            ("fixed", raw.fixed),
            ("last_affected", raw.last_affected),
            ("limit", raw.limit),
        ]
        .into_iter()
        .filter_map(|(k, v)| v.map(|v| (k, v)))
        .collect();
        let mut present = present.into_iter();
        let (key, version) = match (present.next(), present.next()) {
            (Some(one), None) => one,
            (None, _) => {
                return Err(
                    "range event has none of introduced/fixed/last_affected/limit".to_owned(),
                );
            }
            (Some((a, _)), Some((b, _))) => {
                return Err(format!(
                    "range event has both `{a}` and `{b}`; the OSV schema allows one per event"
                ));
            }
        };
        if version.is_empty() {
            return Err(format!("range event `{key}` has an empty version"));
        }
        Ok(match key {
            "introduced" => Event::Introduced(version),
            "fixed" => Event::Fixed(version),
            "last_affected" => Event::LastAffected(version),
            _ => Event::Limit(version),
        })
    }
}

/// Treats an explicit JSON `null` like an absent field.
fn null_default<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de> + Default,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}
