//! The default scanner policy.
//!
//! Each matched advisory is ranked by severity. The worst one decides:
//! at or above `block-at` the package is blocked, at or above `quarantine-at`
//! it is quarantined, otherwise allowed. By default an advisory without a
//! fixed version does not count (`ignore-unfixed`): there is nothing to
//! upgrade to, so holding the package back helps no one; with
//! `ignore-unfixed = false` it counts, one step more leniently if
//! `unfixed-lenient` says so. So out of the box: quarantine on High or
//! Critical findings that have a fix, never block. Thresholds come from the
//! plugin's config section, e.g.
//!
//! ```toml
//! [plugin.policy-default]
//! block-at = "never"
//! quarantine-at = "high"
//! ignore-unfixed = true
//! unfixed-lenient = false
//! ```

use repod_policy_sdk::{
    Advisory, Case, Decision, Field, PluginGuest, PluginInfo, PolicyGuest, PolicyInfo, Severity,
    Verdict,
};
use serde::Deserialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Deserialize)]
#[serde(rename_all = "lowercase")]
enum Level {
    Unknown,
    Negligible,
    Low,
    Medium,
    High,
    Critical,
    /// Never reached: disables a threshold.
    Never,
}

impl Level {
    fn of(severity: Severity) -> Level {
        match severity {
            Severity::Unknown => Level::Unknown,
            Severity::Negligible => Level::Negligible,
            Severity::Low => Level::Low,
            Severity::Medium => Level::Medium,
            Severity::High => Level::High,
            Severity::Critical => Level::Critical,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Level::Unknown => "unknown",
            Level::Negligible => "negligible",
            Level::Low => "low",
            Level::Medium => "medium",
            Level::High => "high",
            Level::Critical => "critical",
            Level::Never => "never",
        }
    }

    fn parse(name: &str) -> Result<Level, String> {
        serde_json::from_value(serde_json::Value::String(name.to_owned()))
            .map_err(|_| format!("unknown severity {name:?} (expected unknown, negligible, low, medium, high, critical or never)"))
    }

    /// One step down, for advisories that have no fix yet.
    fn lenient(self) -> Level {
        match self {
            Level::Critical => Level::High,
            Level::High => Level::Medium,
            Level::Medium => Level::Low,
            Level::Low => Level::Negligible,
            other => other,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct Config {
    #[serde(default = "default_block")]
    block_at: Level,
    #[serde(default = "default_quarantine")]
    quarantine_at: Level,
    #[serde(default = "yes")]
    ignore_unfixed: bool,
    #[serde(default)]
    unfixed_lenient: bool,
}

fn yes() -> bool {
    true
}

fn default_block() -> Level {
    Level::Never
}
fn default_quarantine() -> Level {
    Level::High
}

/// The policy after configuration, as carried in `settings`.
#[derive(Debug, PartialEq)]
pub struct Thresholds {
    block_at: Level,
    quarantine_at: Level,
    ignore_unfixed: bool,
    unfixed_lenient: bool,
}

impl Thresholds {
    fn from_config(json: &str) -> Result<Thresholds, String> {
        let config: Config =
            serde_json::from_str(json).map_err(|e| format!("policy-default config: {e}"))?;
        if config.quarantine_at > config.block_at {
            return Err(format!(
                "policy-default config: quarantine-at ({}) is above block-at ({})",
                config.quarantine_at.name(),
                config.block_at.name()
            ));
        }
        Ok(Thresholds {
            block_at: config.block_at,
            quarantine_at: config.quarantine_at,
            ignore_unfixed: config.ignore_unfixed,
            unfixed_lenient: config.unfixed_lenient,
        })
    }

    fn to_settings(&self) -> Vec<Field> {
        vec![
            ("block-at".into(), self.block_at.name().into()),
            ("quarantine-at".into(), self.quarantine_at.name().into()),
            ("ignore-unfixed".into(), self.ignore_unfixed.to_string()),
            ("unfixed-lenient".into(), self.unfixed_lenient.to_string()),
        ]
    }

    fn from_settings(settings: &[Field]) -> Result<Thresholds, String> {
        let get = |key: &str| {
            settings
                .iter()
                .find(|(k, _)| k == key)
                .map(|(_, v)| v.as_str())
                .ok_or_else(|| format!("setting {key} missing"))
        };
        Ok(Thresholds {
            block_at: Level::parse(get("block-at")?)?,
            quarantine_at: Level::parse(get("quarantine-at")?)?,
            ignore_unfixed: get("ignore-unfixed")? == "true",
            unfixed_lenient: get("unfixed-lenient")? == "true",
        })
    }

    /// The level an advisory counts at; `None` when it does not count.
    fn effective(&self, advisory: &Advisory) -> Option<Level> {
        let level = Level::of(advisory.severity);
        let unfixed = advisory.fixed_versions.is_empty();
        match (unfixed, self.ignore_unfixed, self.unfixed_lenient) {
            (true, true, _) => None,
            (true, false, true) => Some(level.lenient()),
            _ => Some(level),
        }
    }

    pub fn decide(&self, case: &Case) -> Decision {
        let worst = case
            .advisories
            .iter()
            .filter_map(|a| self.effective(a).map(|level| (level, a)))
            .max_by_key(|(level, _)| *level);
        let Some((level, _)) = worst else {
            return Decision {
                verdict: Verdict::Allow,
                reason: if case.advisories.is_empty() {
                    "no matching advisories".into()
                } else {
                    format!(
                        "{} advisories, none with a fix yet (ignore-unfixed)",
                        case.advisories.len()
                    )
                },
            };
        };
        let verdict = if level >= self.block_at {
            Verdict::Block
        } else if level >= self.quarantine_at {
            Verdict::Quarantine
        } else {
            Verdict::Allow
        };
        let ids: Vec<&str> = case
            .advisories
            .iter()
            .filter(|a| self.effective(a) == Some(level))
            .map(|a| a.id.as_str())
            .collect();
        let reason = match verdict {
            Verdict::Allow => format!(
                "{} advisories, worst {} ({}): below quarantine-at {}",
                case.advisories.len(),
                level.name(),
                ids.join(", "),
                self.quarantine_at.name()
            ),
            Verdict::Quarantine => format!(
                "{} severity {} reaches quarantine-at {}",
                ids.join(", "),
                level.name(),
                self.quarantine_at.name()
            ),
            Verdict::Block => format!(
                "{} severity {} reaches block-at {}",
                ids.join(", "),
                level.name(),
                self.block_at.name()
            ),
        };
        Decision { verdict, reason }
    }
}

pub struct DefaultPolicy;

impl PluginGuest for DefaultPolicy {
    fn info() -> PluginInfo {
        PluginInfo {
            name: "policy-default".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            description: "Block or quarantine packages by the worst matched advisory severity"
                .into(),
            extensions: vec![],
        }
    }
}

impl PolicyGuest for DefaultPolicy {
    fn describe(config: String) -> Result<PolicyInfo, String> {
        let thresholds = Thresholds::from_config(&config)?;
        Ok(PolicyInfo {
            id: "default".into(),
            description: format!(
                "block at {}, quarantine at {}{}",
                thresholds.block_at.name(),
                thresholds.quarantine_at.name(),
                match (thresholds.ignore_unfixed, thresholds.unfixed_lenient) {
                    (true, _) => ", advisories without a fix ignored",
                    (false, true) => ", one step lenient on advisories without a fix",
                    (false, false) => "",
                }
            ),
            settings: thresholds.to_settings(),
        })
    }

    fn evaluate(settings: Vec<Field>, cases: Vec<Case>) -> Vec<Decision> {
        match Thresholds::from_settings(&settings) {
            Ok(t) => cases.iter().map(|c| t.decide(c)).collect(),
            // Settings are ours, round-tripped by the host; if they are
            // damaged, fail closed: quarantine rather than allow.
            Err(e) => cases
                .iter()
                .map(|_| Decision {
                    verdict: Verdict::Quarantine,
                    reason: format!("policy settings unreadable ({e}); quarantined for review"),
                })
                .collect(),
        }
    }
}

// Exported only in the component: the export symbol names are not valid in a
// native linker's version script, and native builds exist for unit tests.
#[cfg(target_arch = "wasm32")]
repod_policy_sdk::export_policy!(DefaultPolicy);

#[cfg(test)]
mod tests {
    use super::*;
    use repod_policy_sdk::Subject;

    fn advisory(id: &str, severity: Severity, fixed: bool) -> Advisory {
        Advisory {
            id: id.into(),
            severity,
            cvss_score: None,
            fixed_versions: if fixed { vec!["2.0".into()] } else { vec![] },
            summary: String::new(),
            extensions: vec![],
        }
    }

    fn case(advisories: Vec<Advisory>) -> Case {
        Case {
            subject: Subject {
                name: "nginx".into(),
                version: "1.0".into(),
                architecture: "amd64".into(),
                distribution: "d".into(),
                grype_id: "x:1".into(),
                osv_ecosystem: "X:1".into(),
                extensions: vec![],
            },
            advisories,
        }
    }

    fn verdicts(config: &str, cases: Vec<Case>) -> Vec<(Verdict, String)> {
        let info = DefaultPolicy::describe(config.into()).unwrap();
        DefaultPolicy::evaluate(info.settings, cases)
            .into_iter()
            .map(|d| (d.verdict, d.reason))
            .collect()
    }

    #[test]
    fn default_thresholds_quarantine_high_with_a_fix_and_never_block() {
        let out = verdicts(
            "{}",
            vec![
                case(vec![]),
                case(vec![advisory("CVE-1", Severity::Medium, true)]),
                case(vec![
                    advisory("CVE-1", Severity::Low, true),
                    advisory("CVE-2", Severity::High, true),
                ]),
                case(vec![
                    advisory("CVE-3", Severity::Critical, true),
                    advisory("CVE-2", Severity::High, true),
                ]),
                case(vec![advisory("CVE-4", Severity::Critical, false)]),
            ],
        );
        let v: Vec<Verdict> = out.iter().map(|(v, _)| *v).collect();
        assert_eq!(
            v,
            [
                Verdict::Allow,
                Verdict::Allow,
                Verdict::Quarantine,
                Verdict::Quarantine,
                Verdict::Allow
            ]
        );
        assert_eq!(out[2].1, "CVE-2 severity high reaches quarantine-at high");
        assert_eq!(
            out[4].1,
            "1 advisories, none with a fix yet (ignore-unfixed)"
        );
    }

    #[test]
    fn blocking_and_unfixed_handling_are_configurable() {
        let out = verdicts(
            r#"{"block-at": "critical", "ignore-unfixed": false, "unfixed-lenient": true}"#,
            vec![
                case(vec![advisory("CVE-3", Severity::Critical, false)]),
                case(vec![advisory("CVE-3", Severity::Critical, true)]),
            ],
        );
        assert_eq!(out[0].0, Verdict::Quarantine);
        assert_eq!(out[1].0, Verdict::Block);
        assert_eq!(
            out[1].1,
            "CVE-3 severity critical reaches block-at critical"
        );
        let out = verdicts(
            r#"{"ignore-unfixed": false}"#,
            vec![case(vec![advisory("CVE-3", Severity::High, false)])],
        );
        assert_eq!(out[0].0, Verdict::Quarantine);
    }

    #[test]
    fn never_disables_blocking() {
        let out = verdicts(
            r#"{"block-at": "never", "quarantine-at": "never"}"#,
            vec![case(vec![advisory("CVE-3", Severity::Critical, true)])],
        );
        assert_eq!(out[0].0, Verdict::Allow);
    }

    #[test]
    fn bad_config_is_rejected() {
        assert!(DefaultPolicy::describe(r#"{"block-at": "severe"}"#.into()).is_err());
        assert!(DefaultPolicy::describe(r#"{"blockat": "high"}"#.into()).is_err());
        let err = DefaultPolicy::describe(r#"{"block-at": "low", "quarantine-at": "high"}"#.into())
            .unwrap_err();
        assert!(err.contains("above block-at"), "{err}");
    }

    #[test]
    fn damaged_settings_fail_closed() {
        let d = DefaultPolicy::evaluate(vec![], vec![case(vec![])]);
        assert_eq!(d[0].verdict, Verdict::Quarantine);
    }
}
