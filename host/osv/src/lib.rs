//! OSV advisories for repod: import, severity normalization, and matching of
//! stored `.deb`/`.rpm` packages against affected ranges.
//!
//! # Import
//!
//! [`parse`] takes one OSV JSON record, a JSON array of records, or a zip of
//! `*.json` records. Bad records are listed in [`Import::rejected`] and skipped;
//! the rest import, each with its JSON text kept verbatim in [`Advisory::raw`].
//! Per record: `id` non-empty without control characters or slashes,
//! `modified` RFC3339, every range with at least one event, every ECOSYSTEM or
//! SEMVER range with an `introduced`, every event with exactly one of
//! `introduced`/`fixed`/`last_affected`/`limit` and a non-empty version.
//! Unknown fields are ignored; unknown range types are kept but never evaluated.
//!
//! # Severity
//!
//! [`severity`] puts every record on one scale, [`Severity`]. Sources are tried
//! in this order; the first kind that yields a level wins, and within a kind the
//! worst value wins (a notice is as bad as its worst CVE):
//!
//! | # | source (`Rated::source`) | where | how |
//! |---|---|---|---|
//! | 1 | `severity.cvss_v3` | `severity[]` and `affected[].severity[]`, type `CVSS_V3` | base score computed from the vector, then banded |
//! | 1 | `cves_map.cvss_v3` | Ubuntu USN: `affected[].database_specific.cves_map.cves[].severity[]`, type `CVSS_V3` | same |
//! | 1 | `severity.cvss_v4_score` | type `CVSS_V4` whose score is a plain number | banded; a v4 *vector* is not computed and falls through |
//! | 2 | `database_specific.severity` / `ecosystem_specific.severity` | top-level `database_specific.severity` (GHSA), `affected[].database_specific.severity`, `affected[].ecosystem_specific.severity` | word table |
//! | 3 | `severity.ubuntu` / `ecosystem_specific.ubuntu_priority` | `severity[]` type `Ubuntu` (UBUNTU-CVE records), `affected[].ecosystem_specific.ubuntu_priority` | word table |
//! | 3 | `cves_map.ubuntu` | USN `cves_map` entries of type `Ubuntu` (only if #3 above found none) | word table |
//! | 4 | `summary_prefix` | `summary` starting `Critical:`/`Important:`/`Moderate:`/`Low:` (AlmaLinux, Red Hat scale) | Critical→Critical, Important→High, Moderate→Medium, Low→Low |
//! | 5 | `none` | nothing usable | `Unknown` |
//!
//! CVSS score bands: 9.0–10.0 Critical, 7.0–8.9 High, 4.0–6.9 Medium,
//! 0.1–3.9 Low, 0.0 Negligible.
//!
//! Word table (case-insensitive): `critical` → Critical; `high`, `important` →
//! High; `medium`, `moderate` → Medium; `low` → Low; `negligible`,
//! `unimportant` → Negligible. Other words (Ubuntu `untriaged`) carry no level
//! and the next source is tried.
//!
//! # Matching
//!
//! Version order is the ecosystem's (dpkg, rpm), supplied by the caller, so
//! evaluation is two-phase: [`comparisons`] lists every pair of version strings
//! whose order is needed, the caller orders them all in one batch (one call to
//! a version-order plugin), and [`is_affected`] decides from those answers.
//!
//! - [`matches()`] selects `affected` entries by **exact** ecosystem string
//!   (`Ubuntu:22.04:LTS`, `AlmaLinux:9`) and by package name; Debian/Ubuntu
//!   records name *source* packages, AlmaLinux/Red Hat records binary RPMs.
//! - `limit` follows the schema's `BeforeLimits`: a range applies only to
//!   versions below at least one of its limits (`*` is infinity); it is not an
//!   event of the walk. For one limit on a linear order this is the same as an
//!   exclusive upper bound.
//! - [`Index`] maps `(ecosystem, name)` to the entries to evaluate.
//!
//! ```
//! use repod_osv::{comparisons, is_affected, matches, parse, Limits};
//! use std::{cmp::Ordering, collections::HashMap};
//!
//! let json = br#"{"id":"EX-1","modified":"2024-01-01T00:00:00Z",
//!   "affected":[{"package":{"ecosystem":"Toy","name":"pkg"},
//!     "ranges":[{"type":"ECOSYSTEM","events":[{"introduced":"0"},{"fixed":"5"}]}]}]}"#;
//! let import = parse(json, &Limits::default()).unwrap();
//! let adv = &import.advisories[0];
//! let affected = matches(adv, "Toy", &["pkg"]).next().unwrap();
//!
//! // Phase 1: collect pairs; the plugin orders them all at once.
//! let pairs = comparisons(affected, "3");
//! let answers: HashMap<(String, String), Ordering> = pairs
//!     .into_iter()
//!     .map(|(a, b)| {
//!         let o = a.parse::<u32>().unwrap().cmp(&b.parse().unwrap());
//!         ((a, b), o)
//!     })
//!     .collect();
//! // Phase 2: decide from the answers.
//! let hit = is_affected(affected, "3", &|a, b| answers[&(a.to_owned(), b.to_owned())]);
//! assert_eq!(hit.unwrap().fixed.as_deref(), Some("5"));
//! ```

mod cvss;
pub mod ecosystems;
mod eval;
mod import;
mod index;
mod model;
mod severity;

pub use cvss::cvss3_base_score;
pub use eval::{Hit, Matched, comparisons, is_affected, matches};
pub use import::{Import, ImportError, Limits, Rejected, json_has_nul, parse};
pub use index::Index;
pub use model::{Advisory, Affected, Event, Package, Range, RangeType, SeverityEntry};
pub use severity::{Rated, Severity, severity, source};
