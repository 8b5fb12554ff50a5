//! The first-party Debian family plugin: the Ubuntu and Debian releases
//! repod serves out of the box.
//!
//! All apt logic lives in `repod-deb-core`; this crate is only the list of
//! codenames, so adding a release is a table row. Operators can disable,
//! override or add codenames in `[plugin.debian]` without a rebuild.

use repod_deb_core::{Catalog, DistDefaults, deb_family_plugin};

const ARCHITECTURES: &[&str] = &["amd64", "arm64", "all"];
const COMPONENTS: &[&str] = &["main"];

pub const CATALOG: Catalog = Catalog {
    family_id: "debian",
    plugin_name: "debian",
    plugin_version: env!("CARGO_PKG_VERSION"),
    description: "Debian and Ubuntu apt repositories (jammy, noble, focal, bookworm)",
    default_architectures: ARCHITECTURES,
    distributions: &[
        DistDefaults {
            id: "jammy",
            display_name: "Ubuntu 22.04 LTS",
            grype: "ubuntu:22.04",
            osv: "Ubuntu:22.04:LTS",
            architectures: ARCHITECTURES,
            components: COMPONENTS,
        },
        DistDefaults {
            id: "noble",
            display_name: "Ubuntu 24.04 LTS",
            grype: "ubuntu:24.04",
            osv: "Ubuntu:24.04:LTS",
            architectures: ARCHITECTURES,
            components: COMPONENTS,
        },
        DistDefaults {
            id: "focal",
            display_name: "Ubuntu 20.04 LTS",
            grype: "ubuntu:20.04",
            osv: "Ubuntu:20.04:LTS",
            architectures: ARCHITECTURES,
            components: COMPONENTS,
        },
        DistDefaults {
            id: "bookworm",
            display_name: "Debian 12",
            grype: "debian:12",
            osv: "Debian:12",
            architectures: ARCHITECTURES,
            components: COMPONENTS,
        },
    ],
};

deb_family_plugin!(Debian, CATALOG);

#[cfg(test)]
mod tests {
    use super::*;
    use repod_family_sdk::{
        ContainerFormat, DebPackage, FamilyGuest, Ordering, PackageMetadata, ParsedPackage,
        PluginGuest,
    };

    #[test]
    fn info() {
        let info = Debian::info();
        assert_eq!(info.name, "debian");
        assert_eq!(info.version, env!("CARGO_PKG_VERSION"));
    }

    #[test]
    fn distributions() {
        let family = Debian::describe("{}".into()).unwrap();
        assert_eq!(family.id, "debian");
        assert_eq!(family.format, ContainerFormat::Deb);
        let rows: Vec<(&str, &str, &str, &str)> = family
            .distributions
            .iter()
            .map(|d| {
                assert_eq!(d.architectures, ARCHITECTURES);
                assert_eq!(d.components, COMPONENTS);
                (
                    d.id.as_str(),
                    d.display_name.as_str(),
                    d.vulnerability.grype.as_str(),
                    d.vulnerability.osv.as_str(),
                )
            })
            .collect();
        assert_eq!(
            rows,
            [
                (
                    "jammy",
                    "Ubuntu 22.04 LTS",
                    "ubuntu:22.04",
                    "Ubuntu:22.04:LTS"
                ),
                (
                    "noble",
                    "Ubuntu 24.04 LTS",
                    "ubuntu:24.04",
                    "Ubuntu:24.04:LTS"
                ),
                (
                    "focal",
                    "Ubuntu 20.04 LTS",
                    "ubuntu:20.04",
                    "Ubuntu:20.04:LTS"
                ),
                ("bookworm", "Debian 12", "debian:12", "Debian:12"),
            ]
        );
    }

    #[test]
    fn config_reaches_the_plugin() {
        let family = Debian::describe(r#"{"disable": ["focal", "bookworm"]}"#.into()).unwrap();
        assert_eq!(family.distributions.len(), 2);
        let err = Debian::describe(r#"{"nope": 1}"#.into()).unwrap_err();
        assert!(
            err.starts_with("debian config: unknown field `nope`"),
            "{err}"
        );
    }

    #[test]
    fn prepare_and_compare_through_the_guest_traits() {
        let noble = Debian::describe("{}".into())
            .unwrap()
            .distributions
            .remove(1);
        let control = [
            ("Package", "nginx"),
            ("Version", "1.24.0-1"),
            ("Architecture", "arm64"),
            ("Maintainer", "Ops <ops@example.org>"),
            ("Description", "web server"),
        ];
        let pkg = ParsedPackage {
            metadata: PackageMetadata::Deb(DebPackage {
                control: control
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
                files: vec!["usr/sbin/nginx".into()],
                extensions: vec![],
            }),
            checksums: vec![("sha256".into(), "0".repeat(64))],
            size: 1,
            received: 0,
            extensions: vec![],
        };
        let prepared = Debian::prepare(noble, vec![pkg]).remove(0).unwrap();
        assert_eq!(
            prepared.pool_paths,
            ["pool/main/n/nginx/nginx_1.24.0-1_arm64.deb"]
        );
        assert_eq!(
            prepared.entries[0].index,
            "dists/noble/main/binary-arm64/Packages"
        );
        assert_eq!(
            Debian::compare_versions(vec![("1.24.0-1".into(), "1.24.0-1ubuntu1".into())]),
            [Ordering::Less]
        );
    }
}
