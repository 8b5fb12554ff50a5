//! The plugin's config section and the distribution table it produces.
//!
//! The host hands over the plugin's section of the daemon config as JSON
//! (`{}` when there is none). Keys are kebab-case; unknown keys are errors,
//! so a typo never silently does nothing:
//!
//! ```toml
//! [plugins.el]
//! disable = ["rocky8"]                    # built-in ids only
//!
//! [plugins.el.distributions.almalinux9]   # override fields of a built-in one
//! compression = "gzip"
//!
//! [plugins.el.distributions.almalinux10]  # or add a new one
//! display-name = "AlmaLinux 10"           # required for a new one
//! grype = "almalinux:10"                  # required for a new one
//! osv = "AlmaLinux:10"                    # required for a new one
//! architectures = ["x86_64", "noarch"]    # default: the family's list
//! compression = "zstd"                    # default: gzip, which every client reads
//! require-signatures = ["199e2f91fd431d51"]  # key IDs or fingerprints (Koji's keys)
//! missing-signatures = "refuse"           # "allow" (Koji's --allow-missing-signatures) or
//!                                         # "skip" (--skip-missing-signatures: taken, not listed)
//! sign-packages = true                    # the host signs each RPM with the repository key
//! split-debuginfo = true                  # -debuginfo/-debugsource in <id>/<arch>/debug/
//! zchunk = true                           # also primary/filelists/other/comps .zck
//!                                         # (createrepo_c --zck; the host needs libzck)
//! deltas = 2                              # delta RPMs from the 2 newest older versions
//!                                         # kept (createrepo_c --deltas --num-deltas 2;
//!                                         # the host needs makedeltarpm); 0 = off
//! max-delta-rpm-size = 100000000          # no deltas for packages this big or bigger
//! architectures = ["x86_64", "i686", "noarch"]
//! multilib = "runtime"                    # i686 packages in the x86_64 repository too:
//!                                         # "none", "all", "runtime", "devel" or names
//!                                         # (see multilib.rs)
//! ```
//!
//! Signature requirements travel to the host as `distribution.extensions`
//! (`repod.require-signatures`, `repod.missing-signatures`): the host reads
//! each RPM's header signature, so it enforces them.
//!
//! Everything later calls need per distribution (the compression) is
//! written into `Distribution.settings`, because the host may call a fresh
//! instance that never saw the config.

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::sdk::{ContainerFormat, Distribution, FamilyInfo, IndexSpec, VulnerabilityIds};
use crate::{Catalog, IndexCompression, IndexKind};

/// Settings key holding the distribution's [`IndexCompression`] name.
pub(crate) const COMPRESSION: &str = "compression";

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct Config {
    #[serde(default)]
    disable: Vec<String>,
    #[serde(default)]
    distributions: BTreeMap<String, DistroConfig>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct DistroConfig {
    display_name: Option<String>,
    architectures: Option<Vec<String>>,
    grype: Option<String>,
    osv: Option<String>,
    compression: Option<String>,
    require_signatures: Option<Vec<String>>,
    missing_signatures: Option<String>,
    sign_packages: Option<bool>,
    multilib: Option<serde_json::Value>,
    split_debuginfo: Option<bool>,
    zchunk: Option<bool>,
    deltas: Option<u32>,
    max_delta_rpm_size: Option<u64>,
}

/// A distribution after configuration.
struct Resolved {
    id: String,
    display_name: String,
    architectures: Vec<String>,
    grype: String,
    osv: String,
    compression: IndexCompression,
    /// Lowercase hex key IDs or fingerprints.
    require_signatures: Vec<String>,
    /// `refuse`, `allow` or `skip`.
    missing_signatures: String,
    sign_packages: bool,
    multilib: crate::multilib::Policy,
    split_debuginfo: bool,
    zchunk: bool,
    /// Older versions to make deltas from; 0 = none.
    deltas: u32,
    max_delta_rpm_size: Option<u64>,
}

pub(crate) fn describe(catalog: &Catalog, json: &str) -> Result<FamilyInfo, String> {
    let prefix = format!("{} config", catalog.plugin_name);
    let config: Config = if json.trim().is_empty() {
        Config::default()
    } else {
        let value: serde_json::Value =
            serde_json::from_str(json).map_err(|e| format!("{prefix}: invalid JSON: {e}"))?;
        // serde would also accept a list for a struct; only a table makes sense.
        if !value.is_object() {
            return Err(format!("{prefix}: expected a table of settings"));
        }
        serde_json::from_value(value).map_err(|e| format!("{prefix}: {e}"))?
    };
    let known = || {
        catalog
            .distributions
            .iter()
            .map(|d| d.id)
            .collect::<Vec<_>>()
            .join(", ")
    };

    for id in &config.disable {
        if !catalog.distributions.iter().any(|d| d.id == id) {
            return Err(format!(
                "{prefix}: disable: unknown distribution {id:?} (known: {})",
                known()
            ));
        }
        if config.distributions.contains_key(id) {
            return Err(format!(
                "{prefix}: distribution {id:?} is both disabled and configured in distributions"
            ));
        }
    }

    let mut resolved = Vec::new();
    for default in catalog.distributions {
        if config.disable.iter().any(|id| id == default.id) {
            continue;
        }
        let mut dist = Resolved {
            id: default.id.to_owned(),
            display_name: default.display_name.to_owned(),
            architectures: default
                .architectures
                .unwrap_or(catalog.default_architectures)
                .iter()
                .map(|a| (*a).to_owned())
                .collect(),
            grype: default.grype.to_owned(),
            osv: default.osv.to_owned(),
            compression: default.compression,
            require_signatures: Vec::new(),
            missing_signatures: "refuse".to_owned(),
            sign_packages: false,
            multilib: crate::multilib::Policy::None,
            split_debuginfo: false,
            zchunk: false,
            deltas: 0,
            max_delta_rpm_size: None,
        };
        if let Some(over) = config.distributions.get(default.id) {
            apply(&mut dist, over, &prefix)?;
        }
        resolved.push(dist);
    }

    for (id, added) in &config.distributions {
        if catalog.distributions.iter().any(|d| d.id == id) {
            continue;
        }
        let at = format!("{prefix}: distributions.{id}");
        validate_id(id).map_err(|e| format!("{at}: {e}"))?;
        let required = |value: &Option<String>, key: &str| {
            value.clone().ok_or_else(|| {
                format!(
                    "{at}: {key} is required for a new distribution \
                     (built-in ones, which only need overrides: {})",
                    known()
                )
            })
        };
        let mut dist = Resolved {
            id: id.clone(),
            display_name: required(&added.display_name, "display-name")?,
            architectures: catalog
                .default_architectures
                .iter()
                .map(|a| (*a).to_owned())
                .collect(),
            grype: required(&added.grype, "grype")?,
            osv: required(&added.osv, "osv")?,
            // gzip is the one compression every rpm-md client ever shipped
            // reads; a newer distribution can opt into zstd explicitly.
            compression: IndexCompression::Gzip,
            require_signatures: Vec::new(),
            missing_signatures: "refuse".to_owned(),
            sign_packages: false,
            multilib: crate::multilib::Policy::None,
            split_debuginfo: false,
            zchunk: false,
            deltas: 0,
            max_delta_rpm_size: None,
        };
        apply(&mut dist, added, &prefix)?;
        resolved.push(dist);
    }

    Ok(FamilyInfo {
        id: catalog.family.to_owned(),
        format: ContainerFormat::Rpm,
        distributions: resolved
            .into_iter()
            .map(|d| to_distribution(d, catalog.advisory_names))
            .collect(),
        extensions: Vec::new(),
    })
}

/// Applies the fields set in `over` to `dist`, validating each.
fn apply(dist: &mut Resolved, over: &DistroConfig, prefix: &str) -> Result<(), String> {
    let at = format!("{prefix}: distributions.{}", dist.id);
    if let Some(name) = &over.display_name {
        validate_label(name, 128, false).map_err(|e| format!("{at}: display-name: {e}"))?;
        dist.display_name = name.clone();
    }
    if let Some(grype) = &over.grype {
        validate_label(grype, 64, false).map_err(|e| format!("{at}: grype: {e}"))?;
        dist.grype = grype.clone();
    }
    if let Some(osv) = &over.osv {
        validate_label(osv, 64, true).map_err(|e| format!("{at}: osv: {e}"))?;
        dist.osv = osv.clone();
    }
    if let Some(arches) = &over.architectures {
        validate_architectures(arches).map_err(|e| format!("{at}: architectures: {e}"))?;
        dist.architectures = arches.clone();
    }
    if let Some(keys) = &over.require_signatures {
        dist.require_signatures = keys
            .iter()
            .map(|k| {
                let k = k.trim().to_ascii_lowercase();
                let hex = k.bytes().all(|b| b.is_ascii_hexdigit());
                if hex && matches!(k.len(), 16 | 40 | 64) {
                    Ok(k)
                } else {
                    Err(format!(
                        "{at}: require-signatures: {k:?} is not a key ID (16 hex digits) or a \
                         fingerprint (40 or 64): `rpm -qi` shows a package's, `gpg --list-keys` \
                         a key's"
                    ))
                }
            })
            .collect::<Result<_, _>>()?;
    }
    if let Some(missing) = &over.missing_signatures {
        match missing.as_str() {
            "refuse" | "allow" | "skip" => dist.missing_signatures = missing.clone(),
            other => {
                return Err(format!(
                    "{at}: missing-signatures {other:?} is not \"refuse\", \"allow\" or \"skip\""
                ));
            }
        }
    }
    if let Some(split) = over.split_debuginfo {
        dist.split_debuginfo = split;
    }
    if let Some(zchunk) = over.zchunk {
        dist.zchunk = zchunk;
    }
    if let Some(deltas) = over.deltas {
        dist.deltas = deltas;
    }
    if let Some(max) = over.max_delta_rpm_size {
        if max == 0 {
            return Err(format!("{at}: max-delta-rpm-size must be more than 0"));
        }
        dist.max_delta_rpm_size = Some(max);
    }
    if let Some(sign) = over.sign_packages {
        dist.sign_packages = sign;
    }
    if let Some(policy) = &over.multilib {
        dist.multilib = crate::multilib::Policy::from_config(policy)
            .map_err(|e| format!("{at}: multilib: {e}"))?;
    }
    crate::multilib::check(&dist.multilib, &dist.architectures)
        .map_err(|e| format!("{at}: {e}"))?;
    if let Some(name) = &over.compression {
        dist.compression = IndexCompression::parse(name).ok_or_else(|| {
            format!("{at}: compression {name:?} is not one of \"gzip\", \"zstd\", \"xz\"")
        })?;
    }
    Ok(())
}

fn to_distribution(dist: Resolved, advisory_names: &str) -> Distribution {
    let arches = dist
        .architectures
        .iter()
        .map(String::as_str)
        .filter(|a| *a != "noarch");
    // zchunk variants are the host's (libzck); the plugin only asks.
    let zchunk = || {
        if dist.zchunk {
            vec![(repod_family_sdk::ZCHUNK.to_owned(), "true".to_owned())]
        } else {
            Vec::new()
        }
    };
    // Every rpm-md index is checksum-named with a SHA-256, as createrepo_c
    // names them.
    let spec = |path: String,
                compression: crate::sdk::Compression,
                keep_uncompressed: bool,
                extensions: Vec<(String, String)>| IndexSpec {
        path,
        compressions: vec![compression],
        keep_uncompressed,
        checksum_named: true,
        by_hash: Vec::new(),
        checksums: vec!["sha256".to_owned()],
        extensions,
    };
    let gzip = crate::sdk::Compression::Gzip;
    let indexes = crate::repos_of(arches, dist.split_debuginfo)
        .into_iter()
        .flat_map(|repo| {
            let root = repo.root(&dist.id);
            let mut specs: Vec<IndexSpec> = IndexKind::ALL
                .into_iter()
                .map(|kind| spec(kind.path(&root), dist.compression.to_sdk(), false, zchunk()))
                .collect();
            if !repo.debug {
                // prestodelta.xml, gzipped as createrepo_c publishes it; the
                // host fills it (family-sdk DELTAS).
                if dist.deltas > 0 {
                    let mut extensions = vec![
                        (repod_family_sdk::DELTAS.to_owned(), dist.deltas.to_string()),
                        (repod_family_sdk::DELTAS_BASE.to_owned(), root.clone()),
                    ];
                    if let Some(max) = dist.max_delta_rpm_size {
                        extensions.push((
                            repod_family_sdk::DELTAS_MAX_SIZE.to_owned(),
                            max.to_string(),
                        ));
                    }
                    specs.push(spec(
                        crate::prestodelta_path(&root),
                        gzip,
                        false,
                        extensions,
                    ));
                }
                // comps.xml, plain and gzipped as createrepo_c publishes it.
                let mut extensions = zchunk();
                extensions.push((
                    repod_family_sdk::DOCUMENT.to_owned(),
                    crate::COMPS.to_owned(),
                ));
                specs.push(spec(crate::comps_path(&root), gzip, true, extensions));
            }
            specs
        })
        .collect();
    Distribution {
        id: dist.id,
        display_name: dist.display_name,
        architectures: dist.architectures,
        components: Vec::new(),
        vulnerability: VulnerabilityIds {
            grype: dist.grype,
            osv: dist.osv,
        },
        indexes,
        settings: {
            let mut settings = vec![(COMPRESSION.to_owned(), dist.compression.name().to_owned())];
            if let Some(policy) = dist.multilib.setting() {
                settings.push((crate::multilib::SETTING.to_owned(), policy));
            }
            if dist.split_debuginfo {
                settings.push((crate::SPLIT_DEBUGINFO.to_owned(), "true".to_owned()));
            }
            settings
        },
        extensions: {
            let mut extensions = vec![repod_family_sdk::advisory_names(advisory_names)];
            if !dist.require_signatures.is_empty() {
                extensions.push((
                    repod_family_sdk::REQUIRE_SIGNATURES.to_owned(),
                    dist.require_signatures.join(","),
                ));
                extensions.push((
                    repod_family_sdk::MISSING_SIGNATURES.to_owned(),
                    dist.missing_signatures.clone(),
                ));
            }
            if dist.sign_packages {
                extensions.push((
                    repod_family_sdk::SIGN_PACKAGES.to_owned(),
                    "true".to_owned(),
                ));
            }
            extensions
        },
    }
}

/// `[a-z0-9][a-z0-9.+-]{0,63}`, as the contract requires of ids.
pub(crate) fn validate_id(id: &str) -> Result<(), String> {
    let ok = !id.is_empty()
        && id.len() <= 64
        && id.bytes().enumerate().all(|(i, b)| {
            b.is_ascii_lowercase()
                || b.is_ascii_digit()
                || (i > 0 && matches!(b, b'.' | b'+' | b'-'))
        });
    if ok {
        Ok(())
    } else {
        Err(format!(
            "invalid distribution id {id:?} (expected [a-z0-9][a-z0-9.+-]{{0,63}})"
        ))
    }
}

/// rpm architecture names as they appear in file names and `$basearch`:
/// `[a-z][a-z0-9_]{0,31}`. At least one must be a real architecture, since
/// `noarch` alone gets no repository.
fn validate_architectures(arches: &[String]) -> Result<(), String> {
    for (i, arch) in arches.iter().enumerate() {
        let ok = !arch.is_empty()
            && arch.len() <= 32
            && arch.bytes().enumerate().all(|(i, b)| {
                b.is_ascii_lowercase() || (i > 0 && (b.is_ascii_digit() || b == b'_'))
            });
        if !ok {
            return Err(format!(
                "invalid architecture {arch:?} (expected [a-z][a-z0-9_]{{0,31}}, e.g. x86_64)"
            ));
        }
        if arches[..i].contains(arch) {
            return Err(format!("architecture {arch:?} is listed twice"));
        }
    }
    if !arches.iter().any(|a| a != "noarch") {
        return Err("at least one architecture other than noarch is needed".to_owned());
    }
    Ok(())
}

/// Labels: bounded (in bytes, as the host counts), no control characters
/// (they end up in `.repo` files and shell snippets). Only the OSV ecosystem
/// may be empty: it means OSV has no ecosystem for the distribution.
fn validate_label(value: &str, max: usize, allow_empty: bool) -> Result<(), String> {
    if !allow_empty && value.trim().is_empty() {
        return Err("must not be empty".to_owned());
    }
    if value.len() > max {
        return Err(format!("longer than {max} bytes"));
    }
    if value.chars().any(char::is_control) {
        return Err("contains control characters".to_owned());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{ClientStyle, DistroDefaults};

    const TEST: Catalog = Catalog {
        family: "el",
        plugin_name: "el",
        plugin_version: "0.1.0",
        description: "test",
        client: ClientStyle::Dnf,
        default_architectures: &["x86_64", "aarch64", "noarch"],
        distributions: &[
            DistroDefaults {
                id: "almalinux8",
                display_name: "AlmaLinux 8",
                grype: "almalinux:8",
                osv: "AlmaLinux:8",
                architectures: None,
                compression: IndexCompression::Gzip,
            },
            DistroDefaults {
                id: "almalinux9",
                display_name: "AlmaLinux 9",
                grype: "almalinux:9",
                osv: "AlmaLinux:9",
                architectures: None,
                compression: IndexCompression::Zstd,
            },
        ],
        advisory_names: "binary",
    };

    fn ids(info: &FamilyInfo) -> Vec<&str> {
        info.distributions.iter().map(|d| d.id.as_str()).collect()
    }

    #[test]
    fn empty_config_gives_the_built_in_table() {
        for json in ["{}", "", "  "] {
            let info = describe(&TEST, json).unwrap();
            assert_eq!(info.id, "el");
            assert_eq!(info.format, ContainerFormat::Rpm);
            assert_eq!(ids(&info), ["almalinux8", "almalinux9"]);
            for d in &info.distributions {
                assert_eq!(
                    d.extensions,
                    [("repod.advisory-names".to_owned(), "binary".to_owned())]
                );
            }
        }
        let info = describe(&TEST, "{}").unwrap();
        let alma9 = &info.distributions[1];
        assert_eq!(alma9.architectures, ["x86_64", "aarch64", "noarch"]);
        assert_eq!(alma9.vulnerability.grype, "almalinux:9");
        assert_eq!(
            alma9.settings,
            [("compression".to_owned(), "zstd".to_owned())]
        );
        let paths: Vec<_> = alma9.indexes.iter().map(|i| i.path.as_str()).collect();
        assert_eq!(
            paths,
            [
                "almalinux9/x86_64/repodata/primary.xml",
                "almalinux9/x86_64/repodata/filelists.xml",
                "almalinux9/x86_64/repodata/other.xml",
                "almalinux9/x86_64/repodata/comps.xml",
                "almalinux9/aarch64/repodata/primary.xml",
                "almalinux9/aarch64/repodata/filelists.xml",
                "almalinux9/aarch64/repodata/other.xml",
                "almalinux9/aarch64/repodata/comps.xml",
            ]
        );
        let spec = &alma9.indexes[0];
        assert!(spec.checksum_named && !spec.keep_uncompressed);
        // comps.xml: the document the host fills, plain and gzipped.
        let comps = &alma9.indexes[3];
        assert!(comps.checksum_named && comps.keep_uncompressed);
        assert_eq!(
            comps.extensions,
            [("repod.document".to_owned(), "comps".to_owned())]
        );
        assert_eq!(spec.checksums, ["sha256"]);
        assert_eq!(spec.compressions, [crate::sdk::Compression::Zstd]);
        assert_eq!(
            info.distributions[0].indexes[0].compressions,
            [crate::sdk::Compression::Gzip]
        );
    }

    #[test]
    fn disable_removes_and_rejects_unknown_ids() {
        let info = describe(&TEST, r#"{"disable": ["almalinux8"]}"#).unwrap();
        assert_eq!(ids(&info), ["almalinux9"]);
        let err = describe(&TEST, r#"{"disable": ["rhel9"]}"#).unwrap_err();
        assert_eq!(
            err,
            "el config: disable: unknown distribution \"rhel9\" (known: almalinux8, almalinux9)"
        );
        let err = describe(
            &TEST,
            r#"{"disable": ["almalinux8"], "distributions": {"almalinux8": {"compression": "xz"}}}"#,
        )
        .unwrap_err();
        assert!(err.contains("both disabled and configured"), "{err}");
    }

    #[test]
    fn override_changes_only_the_given_fields() {
        let info = describe(
            &TEST,
            r#"{"distributions": {"almalinux9": {"compression": "gzip",
                "architectures": ["x86_64", "noarch"], "display-name": "Alma 9"}}}"#,
        )
        .unwrap();
        let alma9 = &info.distributions[1];
        assert_eq!(alma9.display_name, "Alma 9");
        assert_eq!(alma9.vulnerability.osv, "AlmaLinux:9");
        assert_eq!(alma9.architectures, ["x86_64", "noarch"]);
        assert_eq!(alma9.indexes.len(), 4);
        assert_eq!(alma9.settings[0].1, "gzip");
    }

    #[test]
    fn new_distributions_need_names_and_get_defaults() {
        let info = describe(
            &TEST,
            r#"{"distributions": {"almalinux10": {"display-name": "AlmaLinux 10",
                "grype": "almalinux:10", "osv": "AlmaLinux:10"}}}"#,
        )
        .unwrap();
        assert_eq!(ids(&info), ["almalinux8", "almalinux9", "almalinux10"]);
        let new = &info.distributions[2];
        assert_eq!(new.architectures, ["x86_64", "aarch64", "noarch"]);
        assert_eq!(new.settings[0].1, "gzip");

        let err = describe(
            &TEST,
            r#"{"distributions": {"almalinux10": {"grype": "almalinux:10", "osv": "x"}}}"#,
        )
        .unwrap_err();
        assert!(
            err.starts_with(
                "el config: distributions.almalinux10: display-name is required for a new distribution"
            ),
            "{err}"
        );
        let err = describe(
            &TEST,
            r#"{"distributions": {"Alma_10": {"display-name": "x", "grype": "x", "osv": "x"}}}"#,
        )
        .unwrap_err();
        assert!(err.contains("invalid distribution id \"Alma_10\""), "{err}");
    }

    #[test]
    fn unknown_keys_and_bad_values_are_rejected() {
        let err = describe(&TEST, r#"{"disabled": []}"#).unwrap_err();
        assert!(
            err.starts_with("el config: unknown field `disabled`"),
            "{err}"
        );
        let err = describe(
            &TEST,
            r#"{"distributions": {"almalinux9": {"gpgkey": "x"}}}"#,
        )
        .unwrap_err();
        assert!(err.contains("unknown field `gpgkey`"), "{err}");
        let err = describe(
            &TEST,
            r#"{"distributions": {"almalinux9": {"compression": "bzip2"}}}"#,
        )
        .unwrap_err();
        assert_eq!(
            err,
            "el config: distributions.almalinux9: compression \"bzip2\" is not one of \"gzip\", \"zstd\", \"xz\""
        );
        for (arches, want) in [
            (
                r#"["noarch"]"#,
                "at least one architecture other than noarch",
            ),
            (r#"["x86_64", "x86_64"]"#, "listed twice"),
            (r#"["x86-64"]"#, "invalid architecture \"x86-64\""),
            (r#"["../x"]"#, "invalid architecture"),
            (r#"[]"#, "at least one architecture"),
        ] {
            let json =
                format!(r#"{{"distributions": {{"almalinux9": {{"architectures": {arches}}}}}}}"#);
            let err = describe(&TEST, &json).unwrap_err();
            assert!(err.contains(want), "{arches}: {err}");
        }
        let err = describe(
            &TEST,
            r#"{"distributions": {"almalinux9": {"display-name": "a\nb"}}}"#,
        )
        .unwrap_err();
        assert!(
            err.contains("display-name: contains control characters"),
            "{err}"
        );
        assert_eq!(
            describe(&TEST, "[]").unwrap_err(),
            "el config: expected a table of settings"
        );
        assert!(
            describe(&TEST, "{")
                .unwrap_err()
                .starts_with("el config: invalid JSON")
        );
    }

    #[test]
    fn zchunk_and_deltas_become_index_extensions() {
        let info = describe(
            &TEST,
            r#"{"distributions": {"almalinux9": {"zchunk": true, "deltas": 2,
                "max-delta-rpm-size": 5000000}}}"#,
        )
        .unwrap();
        let dist = &info.distributions[1];
        let ext = |path: &str| {
            let spec = dist.indexes.iter().find(|s| s.path == path).unwrap();
            spec.extensions.clone()
        };
        let zck = |k: &str, v: &str| (k.to_owned(), v.to_owned());
        assert_eq!(
            ext("almalinux9/x86_64/repodata/primary.xml"),
            [zck("repod.zchunk", "true")]
        );
        assert_eq!(
            ext("almalinux9/x86_64/repodata/prestodelta.xml"),
            [
                zck("repod.deltas", "2"),
                zck("repod.deltas-base", "almalinux9/x86_64/"),
                zck("repod.deltas-max-size", "5000000"),
            ]
        );
        // Off by default: no zchunk, no delta index.
        let plain = describe(&TEST, "{}").unwrap();
        assert!(plain.distributions[1].indexes.iter().all(|s| {
            !s.path.ends_with("prestodelta.xml")
                && !s.extensions.iter().any(|(k, _)| k == "repod.zchunk")
        }));
        for (json, want) in [
            (r#"{"deltas": -1}"#, "invalid value"),
            (r#"{"deltas": "two"}"#, "invalid type"),
            (
                r#"{"max-delta-rpm-size": 0}"#,
                "max-delta-rpm-size must be more than 0",
            ),
            (r#"{"zchunk": "yes"}"#, "invalid type"),
        ] {
            let json = format!(r#"{{"distributions": {{"almalinux9": {json}}}}}"#);
            let err = describe(&TEST, &json).unwrap_err();
            assert!(err.contains(want), "{json}: {err}");
        }
    }

    #[test]
    fn ids_follow_the_contract_pattern() {
        for ok in ["a", "0", "opensuse-leap-15.6", "c++", &"a".repeat(64)] {
            assert!(validate_id(ok).is_ok(), "{ok}");
        }
        for bad in ["", "-a", ".a", "A", "a_b", "a/b", &"a".repeat(65)] {
            assert!(validate_id(bad).is_err(), "{bad}");
        }
    }
}
