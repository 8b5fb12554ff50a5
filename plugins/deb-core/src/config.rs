//! The plugin's config section and the distributions it yields.
//!
//! An operator tunes a Debian-family plugin without rebuilding it: turn
//! codenames off, rename or re-architecture them, or add a codename the
//! plugin does not know yet. Everything later calls need (Origin, Label,
//! Valid-Until...) is written into each distribution's `settings`, because
//! the host may answer every call with a fresh plugin instance.
//!
//! ```json
//! {
//!   "disable": ["focal"],
//!   "origin": "Example Corp",
//!   "label": "Example",
//!   "valid-until-days": 7,
//!   "distributions": {
//!     "jammy": { "architectures": ["amd64", "all"] },
//!     "oracular": { "display-name": "Ubuntu 24.10", "grype": "ubuntu:24.10", "osv": "Ubuntu:24.10" }
//!   }
//! }
//! ```

use std::collections::BTreeMap;

use repod_family_sdk::{ContainerFormat, Distribution, FamilyInfo, Field, VulnerabilityIds};
use serde::Deserialize;

use crate::Catalog;
use crate::layout::{ARCH_ALL, index_specs};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct Config {
    #[serde(default)]
    disable: Vec<String>,
    origin: Option<String>,
    label: Option<String>,
    valid_until_days: Option<u32>,
    /// Kept as raw JSON so each entry's errors can name the distribution.
    #[serde(default)]
    distributions: BTreeMap<String, serde_json::Value>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct DistConfig {
    display_name: Option<String>,
    architectures: Option<Vec<String>>,
    components: Option<Vec<String>>,
    grype: Option<String>,
    osv: Option<String>,
}

/// Default Origin and Label of the Release files.
pub const DEFAULT_ORIGIN: &str = "repod";

/// The longest display name or vulnerability id the host accepts.
const MAX_NAME: usize = 128;

/// The longest `valid-until-days`: beyond ten years it protects nothing.
const MAX_VALID_UNTIL_DAYS: u32 = 3650;

/// What later calls need about a distribution, carried in its `settings`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    pub origin: String,
    pub label: String,
    pub suite: String,
    pub codename: String,
    pub description: String,
    pub valid_until_days: Option<u32>,
}

impl Settings {
    fn to_fields(&self) -> Vec<Field> {
        let mut fields: Vec<Field> = vec![
            ("origin".into(), self.origin.clone()),
            ("label".into(), self.label.clone()),
            ("suite".into(), self.suite.clone()),
            ("codename".into(), self.codename.clone()),
            ("description".into(), self.description.clone()),
        ];
        if let Some(days) = self.valid_until_days {
            fields.push(("valid-until-days".into(), days.to_string()));
        }
        fields
    }

    /// Reads the settings back from a distribution `describe` returned.
    /// Missing keys fall back to the defaults, so a distribution record built
    /// by hand (tests, an older host cache) still renders sensibly.
    pub fn of(dist: &Distribution) -> Result<Settings, String> {
        let get = |key: &str| {
            dist.settings
                .iter()
                .find(|(k, _)| k == key)
                .map(|(_, v)| v.clone())
        };
        let valid_until_days = match get("valid-until-days") {
            Some(days) => Some(days.parse::<u32>().map_err(|_| {
                format!(
                    "distribution {}: setting valid-until-days {days:?} is not a number",
                    dist.id
                )
            })?),
            None => None,
        };
        let settings = Settings {
            origin: get("origin").unwrap_or_else(|| DEFAULT_ORIGIN.into()),
            label: get("label").unwrap_or_else(|| DEFAULT_ORIGIN.into()),
            suite: get("suite").unwrap_or_else(|| dist.id.clone()),
            codename: get("codename").unwrap_or_else(|| dist.id.clone()),
            description: get("description").unwrap_or_else(|| dist.display_name.clone()),
            valid_until_days,
        };
        // These are written verbatim into Release: one line each, always.
        for (key, value) in [
            ("origin", &settings.origin),
            ("label", &settings.label),
            ("suite", &settings.suite),
            ("codename", &settings.codename),
            ("description", &settings.description),
        ] {
            one_line(value).map_err(|e| format!("distribution {}: setting {key} {e}", dist.id))?;
        }
        Ok(settings)
    }
}

/// Builds the family from the catalog's defaults and the config section.
pub fn describe(catalog: &Catalog, config_json: &str) -> Result<FamilyInfo, String> {
    let context = |e: String| format!("{} config: {e}", catalog.plugin_name);
    let config: Config = serde_json::from_str(config_json).map_err(|e| context(e.to_string()))?;
    let distributions = build(catalog, config).map_err(context)?;
    Ok(FamilyInfo {
        id: catalog.family_id.into(),
        format: ContainerFormat::Deb,
        distributions,
        extensions: vec![],
    })
}

fn build(catalog: &Catalog, config: Config) -> Result<Vec<Distribution>, String> {
    let known: Vec<&str> = catalog.distributions.iter().map(|d| d.id).collect();
    for id in &config.disable {
        if !known.contains(&id.as_str()) {
            return Err(format!(
                "disable: unknown distribution {id:?} (this plugin has: {})",
                known.join(", ")
            ));
        }
        if config.distributions.contains_key(id) {
            return Err(format!(
                "distribution {id:?} is both disabled and configured under distributions; remove one"
            ));
        }
    }
    let origin = config.origin.unwrap_or_else(|| DEFAULT_ORIGIN.into());
    let label = config.label.unwrap_or_else(|| DEFAULT_ORIGIN.into());
    one_line(&origin).map_err(|e| format!("origin {e}"))?;
    one_line(&label).map_err(|e| format!("label {e}"))?;
    if let Some(days) = config.valid_until_days
        && !(1..=MAX_VALID_UNTIL_DAYS).contains(&days)
    {
        return Err(format!(
            "valid-until-days must be between 1 and {MAX_VALID_UNTIL_DAYS}, not {days}"
        ));
    }

    let mut overrides = BTreeMap::new();
    for (id, value) in config.distributions {
        let entry: DistConfig =
            serde_json::from_value(value).map_err(|e| format!("distributions.{id}: {e}"))?;
        overrides.insert(id, entry);
    }

    let mut out = Vec::new();
    for defaults in catalog.distributions {
        if config.disable.iter().any(|d| d == defaults.id) {
            continue;
        }
        let entry = overrides.remove(defaults.id);
        let entry = entry.as_ref();
        out.push(Draft {
            id: defaults.id.into(),
            display_name: entry
                .and_then(|e| e.display_name.clone())
                .unwrap_or_else(|| defaults.display_name.into()),
            architectures: entry
                .and_then(|e| e.architectures.clone())
                .unwrap_or_else(|| owned(defaults.architectures)),
            components: entry
                .and_then(|e| e.components.clone())
                .unwrap_or_else(|| owned(defaults.components)),
            grype: entry
                .and_then(|e| e.grype.clone())
                .unwrap_or_else(|| defaults.grype.into()),
            osv: entry
                .and_then(|e| e.osv.clone())
                .unwrap_or_else(|| defaults.osv.into()),
        });
    }
    // What is left names distributions the plugin does not know: additions.
    for (id, entry) in overrides {
        let missing: Vec<&str> = [
            ("display-name", entry.display_name.is_none()),
            ("grype", entry.grype.is_none()),
            ("osv", entry.osv.is_none()),
        ]
        .into_iter()
        .filter_map(|(k, absent)| absent.then_some(k))
        .collect();
        if !missing.is_empty() {
            return Err(format!(
                "distributions.{id}: {id:?} is not one of this plugin's distributions ({}), so it \
                 is added as a new one and needs display-name, grype and osv (missing: {})",
                known.join(", "),
                missing.join(", ")
            ));
        }
        out.push(Draft {
            display_name: entry.display_name.unwrap_or_default(),
            architectures: entry
                .architectures
                .unwrap_or_else(|| owned(catalog.default_architectures)),
            components: entry.components.unwrap_or_else(|| vec!["main".into()]),
            grype: entry.grype.unwrap_or_default(),
            osv: entry.osv.unwrap_or_default(),
            id,
        });
    }

    out.into_iter()
        .map(|draft| {
            draft
                .check()
                .map_err(|e| format!("distributions.{}: {e}", draft.id))?;
            let settings = Settings {
                origin: origin.clone(),
                label: label.clone(),
                suite: draft.id.clone(),
                codename: draft.id.clone(),
                description: draft.display_name.clone(),
                valid_until_days: config.valid_until_days,
            };
            Ok(Distribution {
                indexes: index_specs(&draft.id, &draft.architectures, &draft.components),
                settings: settings.to_fields(),
                id: draft.id,
                display_name: draft.display_name,
                architectures: draft.architectures,
                components: draft.components,
                vulnerability: VulnerabilityIds {
                    grype: draft.grype,
                    osv: draft.osv,
                },
                // Debian and Ubuntu records name source packages.
                extensions: vec![repod_family_sdk::advisory_names(
                    repod_family_sdk::ADVISORY_NAMES_SOURCE,
                )],
            })
        })
        .collect()
}

fn owned(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| s.to_string()).collect()
}

/// A distribution after merging defaults and config, before checking.
struct Draft {
    id: String,
    display_name: String,
    architectures: Vec<String>,
    components: Vec<String>,
    grype: String,
    osv: String,
}

impl Draft {
    fn check(&self) -> Result<(), String> {
        if !valid_dist_id(&self.id) {
            return Err(format!(
                "{:?} is not a valid distribution id: use 1 to 64 characters from a-z, 0-9, '.', \
                 '+' and '-', starting with a letter or digit",
                self.id
            ));
        }
        one_line(&self.display_name).map_err(|e| format!("display-name {e}"))?;
        for (key, value) in [
            ("display-name", &self.display_name),
            ("grype", &self.grype),
            ("osv", &self.osv),
        ] {
            if value.len() > MAX_NAME {
                return Err(format!("{key} is longer than {MAX_NAME} bytes"));
            }
        }
        for (key, value) in [("grype", &self.grype), ("osv", &self.osv)] {
            if value.is_empty() || value.chars().any(|c| c.is_whitespace() || c.is_control()) {
                return Err(format!(
                    "{key} {value:?} must be a non-empty identifier without spaces, e.g. ubuntu:22.04"
                ));
            }
        }
        check_list("architectures", &self.architectures, valid_arch)?;
        if self
            .architectures
            .iter()
            .any(|a| a == "source" || a == "any")
        {
            return Err(
                "architectures: \"source\" and \"any\" are not binary architectures".into(),
            );
        }
        if self.architectures.iter().all(|a| a == ARCH_ALL) {
            return Err(
                "architectures needs at least one architecture besides \"all\" (packages for \
                 \"all\" are listed in each architecture's Packages file)"
                    .into(),
            );
        }
        check_list("components", &self.components, valid_component)
    }
}

fn check_list(key: &str, list: &[String], valid: fn(&str) -> bool) -> Result<(), String> {
    if list.is_empty() {
        return Err(format!("{key} must not be empty"));
    }
    for (i, item) in list.iter().enumerate() {
        if !valid(item) {
            return Err(format!(
                "{key}: {item:?} is not valid (use lower-case letters, digits and '-', starting \
                 with a letter or digit)"
            ));
        }
        if list[..i].contains(item) {
            return Err(format!("{key}: {item:?} is listed twice"));
        }
    }
    Ok(())
}

/// `[a-z0-9][a-z0-9.+-]{0,63}`, the contract's distribution id.
pub fn valid_dist_id(id: &str) -> bool {
    let b = id.as_bytes();
    !b.is_empty()
        && b.len() <= 64
        && (b[0].is_ascii_lowercase() || b[0].is_ascii_digit())
        && b.iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || b".+-".contains(c))
}

/// Debian architecture names: `amd64`, `arm64`, `ppc64el`, `hurd-i386`...
pub fn valid_arch(arch: &str) -> bool {
    let b = arch.as_bytes();
    !b.is_empty()
        && b.len() <= 32
        && (b[0].is_ascii_lowercase() || b[0].is_ascii_digit())
        && b.iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
}

/// Component names (`main`, `non-free-firmware`): one path segment.
pub fn valid_component(component: &str) -> bool {
    valid_arch(component)
}

/// Text that goes on one line of a deb822 file.
fn one_line(value: &str) -> Result<(), String> {
    if value.trim().is_empty() {
        return Err("must not be empty".into());
    }
    if value.chars().any(char::is_control) {
        return Err(format!(
            "{value:?} must be one line without control characters"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::DistDefaults;

    const CATALOG: Catalog = Catalog {
        family_id: "debian",
        plugin_name: "debian",
        plugin_version: "0.1.0",
        description: "test",
        default_architectures: &["amd64", "arm64", "all"],
        distributions: &[
            DistDefaults {
                id: "jammy",
                display_name: "Ubuntu 22.04 LTS",
                grype: "ubuntu:22.04",
                osv: "Ubuntu:22.04:LTS",
                architectures: &["amd64", "arm64", "all"],
                components: &["main"],
            },
            DistDefaults {
                id: "focal",
                display_name: "Ubuntu 20.04 LTS",
                grype: "ubuntu:20.04",
                osv: "Ubuntu:20.04:LTS",
                architectures: &["amd64", "all"],
                components: &["main"],
            },
        ],
    };

    fn ids(config: &str) -> Vec<String> {
        describe(&CATALOG, config)
            .unwrap()
            .distributions
            .into_iter()
            .map(|d| d.id)
            .collect()
    }

    fn error(config: &str) -> String {
        describe(&CATALOG, config).unwrap_err()
    }

    #[test]
    fn defaults() {
        let info = describe(&CATALOG, "{}").unwrap();
        assert_eq!(info.id, "debian");
        assert_eq!(info.format, ContainerFormat::Deb);
        let jammy = &info.distributions[0];
        assert_eq!(jammy.vulnerability.grype, "ubuntu:22.04");
        assert_eq!(jammy.indexes.len(), 4);
        let settings = Settings::of(jammy).unwrap();
        assert_eq!(
            settings,
            Settings {
                origin: "repod".into(),
                label: "repod".into(),
                suite: "jammy".into(),
                codename: "jammy".into(),
                description: "Ubuntu 22.04 LTS".into(),
                valid_until_days: None,
            }
        );
    }

    #[test]
    fn disable() {
        assert_eq!(ids(r#"{"disable": ["focal"]}"#), ["jammy"]);
        let e = error(r#"{"disable": ["trusty"]}"#);
        assert_eq!(
            e,
            "debian config: disable: unknown distribution \"trusty\" (this plugin has: jammy, focal)"
        );
        let e = error(r#"{"disable": ["focal"], "distributions": {"focal": {}}}"#);
        assert!(e.contains("both disabled and configured"), "{e}");
    }

    #[test]
    fn override_existing() {
        let info = describe(
            &CATALOG,
            r#"{"origin": "Example", "valid-until-days": 7,
                "distributions": {"focal": {"architectures": ["arm64", "all"], "display-name": "Focal"}}}"#,
        )
        .unwrap();
        let focal = &info.distributions[1];
        assert_eq!(focal.architectures, ["arm64", "all"]);
        assert_eq!(focal.display_name, "Focal");
        assert_eq!(focal.vulnerability.osv, "Ubuntu:20.04:LTS");
        assert_eq!(
            focal.extensions,
            [("repod.advisory-names".to_owned(), "source".to_owned())]
        );
        assert_eq!(
            focal.indexes[0].path,
            "dists/focal/main/binary-arm64/Packages"
        );
        let settings = Settings::of(focal).unwrap();
        assert_eq!(settings.origin, "Example");
        assert_eq!(settings.label, "repod");
        assert_eq!(settings.valid_until_days, Some(7));
    }

    #[test]
    fn add_new() {
        let info = describe(
            &CATALOG,
            r#"{"distributions": {"noble-staging": {"display-name": "Noble staging",
                "grype": "ubuntu:24.04", "osv": "Ubuntu:24.04:LTS"}}}"#,
        )
        .unwrap();
        let added = &info.distributions[2];
        assert_eq!(added.id, "noble-staging");
        assert_eq!(added.architectures, ["amd64", "arm64", "all"]);
        assert_eq!(added.components, ["main"]);

        let e = error(r#"{"distributions": {"noble": {"display-name": "Noble"}}}"#);
        assert!(
            e.contains("needs display-name, grype and osv (missing: grype, osv)"),
            "{e}"
        );
    }

    #[test]
    fn unknown_keys_rejected() {
        let e = error(r#"{"orign": "x"}"#);
        assert!(e.starts_with("debian config: unknown field `orign`"), "{e}");
        let e = error(r#"{"distributions": {"jammy": {"arch": ["amd64"]}}}"#);
        assert!(
            e.starts_with("debian config: distributions.jammy: unknown field `arch`"),
            "{e}"
        );
    }

    #[test]
    fn invalid_values_rejected() {
        for (config, why) in [
            (
                r#"{"distributions": {"Bad_Id": {"display-name": "x", "grype": "a:1", "osv": "A:1"}}}"#,
                "not a valid distribution id",
            ),
            (
                r#"{"distributions": {"jammy": {"architectures": ["AMD64"]}}}"#,
                "\"AMD64\" is not valid",
            ),
            (
                r#"{"distributions": {"jammy": {"architectures": ["all"]}}}"#,
                "at least one architecture besides",
            ),
            (
                r#"{"distributions": {"jammy": {"architectures": ["amd64", "amd64"]}}}"#,
                "listed twice",
            ),
            (
                r#"{"distributions": {"jammy": {"components": []}}}"#,
                "components must not be empty",
            ),
            (
                r#"{"distributions": {"jammy": {"components": ["main/../x"]}}}"#,
                "is not valid",
            ),
            (
                r#"{"distributions": {"jammy": {"grype": "ubuntu 22"}}}"#,
                "without spaces",
            ),
            (
                r#"{"distributions": {"jammy": {"display-name": "a\nb"}}}"#,
                "one line",
            ),
            (r#"{"label": ""}"#, "label must not be empty"),
            (r#"{"valid-until-days": 0}"#, "between 1 and 3650"),
        ] {
            let e = error(config);
            assert!(e.contains(why), "{config}: {e}");
        }
    }
}
