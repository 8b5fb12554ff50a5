//! An example scanner policy, stricter than `policy-default`: a finding
//! with a CVSS score of `block-cvss` (default 7.0) or more that has a fixed
//! version blocks the package; High or Critical findings with a fix and no
//! score quarantine it; the rest is allowed. See README.md.

use repod_policy_sdk::{
    Case, Decision, Field, PluginGuest, PluginInfo, PolicyGuest, PolicyInfo, Severity, Verdict,
};
use serde::Deserialize;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct Config {
    #[serde(default = "default_block")]
    block_cvss: f32,
}

fn default_block() -> f32 {
    7.0
}

fn threshold(settings: &[Field]) -> Option<f32> {
    settings
        .iter()
        .find(|(k, _)| k == "block-cvss")
        .and_then(|(_, v)| v.parse().ok())
}

/// The verdict on one case, given the CVSS threshold.
pub fn decide(block_cvss: f32, case: &Case) -> Decision {
    let fixed = |a: &&repod_policy_sdk::Advisory| !a.fixed_versions.is_empty();
    let blocking: Vec<String> = case
        .advisories
        .iter()
        .filter(fixed)
        .filter(|a| a.cvss_score.is_some_and(|s| s >= block_cvss))
        .map(|a| format!("{} (CVSS {:.1})", a.id, a.cvss_score.unwrap_or(0.0)))
        .collect();
    if !blocking.is_empty() {
        return Decision {
            verdict: Verdict::Block,
            reason: format!(
                "{} fixed upstream with CVSS >= {block_cvss:.1}: upload the fixed version",
                blocking.join(", ")
            ),
        };
    }
    let severe: Vec<&str> = case
        .advisories
        .iter()
        .filter(fixed)
        .filter(|a| a.cvss_score.is_none())
        .filter(|a| matches!(a.severity, Severity::High | Severity::Critical))
        .map(|a| a.id.as_str())
        .collect();
    if !severe.is_empty() {
        return Decision {
            verdict: Verdict::Quarantine,
            reason: format!("{} high or critical with a fix", severe.join(", ")),
        };
    }
    Decision {
        verdict: Verdict::Allow,
        reason: format!(
            "{} findings below the strict thresholds",
            case.advisories.len()
        ),
    }
}

pub struct StrictPolicy;

impl PluginGuest for StrictPolicy {
    fn info() -> PluginInfo {
        PluginInfo {
            name: "strict-policy".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            description: "Block findings with CVSS >= 7.0 that have a fix".into(),
            extensions: vec![],
        }
    }
}

impl PolicyGuest for StrictPolicy {
    fn describe(config: String) -> Result<PolicyInfo, String> {
        let config: Config =
            serde_json::from_str(&config).map_err(|e| format!("strict-policy config: {e}"))?;
        if !(0.0..=10.0).contains(&config.block_cvss) {
            return Err(format!(
                "strict-policy config: block-cvss {} is not a CVSS score (0 to 10)",
                config.block_cvss
            ));
        }
        Ok(PolicyInfo {
            id: "strict".into(),
            description: format!("block fixed findings with CVSS >= {:.1}", config.block_cvss),
            settings: vec![("block-cvss".into(), config.block_cvss.to_string())],
        })
    }

    fn evaluate(settings: Vec<Field>, cases: Vec<Case>) -> Vec<Decision> {
        // Damaged settings fail closed: the strictest threshold.
        let block = threshold(&settings).unwrap_or(0.0);
        cases.iter().map(|c| decide(block, c)).collect()
    }
}

#[cfg(target_arch = "wasm32")]
repod_policy_sdk::export_policy!(StrictPolicy);

#[cfg(test)]
mod tests {
    use super::*;
    use repod_policy_sdk::{Advisory, Subject};

    fn case(advisories: Vec<Advisory>) -> Case {
        Case {
            subject: Subject {
                name: "curl".into(),
                version: "1".into(),
                architecture: "amd64".into(),
                distribution: "noble".into(),
                grype_id: "ubuntu:24.04".into(),
                osv_ecosystem: "Ubuntu:24.04:LTS".into(),
                extensions: vec![],
            },
            advisories,
        }
    }

    fn advisory(id: &str, severity: Severity, cvss: Option<f32>, fixed: bool) -> Advisory {
        Advisory {
            id: id.into(),
            severity,
            cvss_score: cvss,
            fixed_versions: if fixed { vec!["2".into()] } else { vec![] },
            summary: String::new(),
            extensions: vec![],
        }
    }

    #[test]
    fn blocks_scored_fixed_findings_and_quarantines_unscored_severe_ones() {
        let v = |a| decide(7.0, &case(a)).verdict;
        assert_eq!(
            v(vec![advisory("A", Severity::High, Some(7.5), true)]),
            Verdict::Block
        );
        assert_eq!(
            v(vec![advisory("A", Severity::High, Some(7.5), false)]),
            Verdict::Allow
        );
        assert_eq!(
            v(vec![advisory("A", Severity::Medium, Some(6.9), true)]),
            Verdict::Allow
        );
        assert_eq!(
            v(vec![advisory("A", Severity::Critical, None, true)]),
            Verdict::Quarantine
        );
        assert_eq!(v(vec![]), Verdict::Allow);
    }

    #[test]
    fn config_is_checked() {
        assert!(StrictPolicy::describe("{}".into()).is_ok());
        assert!(StrictPolicy::describe(r#"{"block-cvss": 11}"#.into()).is_err());
        assert!(StrictPolicy::describe(r#"{"block": 1}"#.into()).is_err());
    }
}
