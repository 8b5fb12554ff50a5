//! repod's openSUSE family: openSUSE Leap, published as rpm-md repositories
//! for zypper.
//!
//! All the logic is in `repod-rpm-core`; this crate is the distribution
//! table.
//!
//! Index compression for Leap 15.6 is zstd: libzypp hands rpm-md files to
//! libsolv, which reads zstd when built with it, as openSUSE builds it. That
//! zypper reads zstd primary/filelists/other was checked end to end with
//! zypper 1.14.42 / libzypp 17.25.7 (shared/recipes/CLIENTS.md section 4);
//! Leap 15.6 ships a newer libzypp (17.3x). Override with
//! `compression = "gzip"` for older SLE/Leap clients.

use repod_rpm_core::{Catalog, ClientStyle, DistroDefaults, IndexCompression};

pub const CATALOG: Catalog = Catalog {
    family: "opensuse",
    plugin_name: "opensuse",
    plugin_version: env!("CARGO_PKG_VERSION"),
    description: "openSUSE family (openSUSE Leap): rpm-md repositories for zypper",
    client: ClientStyle::Zypper,
    default_architectures: &["x86_64", "aarch64", "noarch"],
    distributions: &[DistroDefaults {
        id: "opensuse-leap-15.6",
        display_name: "openSUSE Leap 15.6",
        grype: "opensuse.leap:15.6",
        osv: "openSUSE:Leap 15.6",
        architectures: None,
        compression: IndexCompression::Zstd,
    }],
    // openSUSE records name the source RPM (binaries in
    // `ecosystem_specific.binaries`).
    advisory_names: "source",
};

repod_rpm_core::rpm_family_plugin!(OpenSuse, CATALOG);

#[cfg(test)]
mod tests {
    use super::*;
    use repod_family_sdk::{Compression, ContainerFormat, FamilyGuest, PluginGuest};

    #[test]
    fn info_names_the_plugin() {
        assert_eq!(OpenSuse::info().name, "opensuse");
    }

    #[test]
    fn describes_leap() {
        let family = OpenSuse::describe("{}".to_owned()).unwrap();
        assert_eq!(family.id, "opensuse");
        assert_eq!(family.format, ContainerFormat::Rpm);
        assert_eq!(family.distributions.len(), 1);
        let leap = &family.distributions[0];
        assert_eq!(leap.id, "opensuse-leap-15.6");
        assert_eq!(leap.display_name, "openSUSE Leap 15.6");
        assert_eq!(leap.vulnerability.grype, "opensuse.leap:15.6");
        assert_eq!(leap.vulnerability.osv, "openSUSE:Leap 15.6");
        assert_eq!(leap.architectures, ["x86_64", "aarch64", "noarch"]);
        assert_eq!(
            leap.indexes[0].path,
            "opensuse-leap-15.6/x86_64/repodata/primary.xml"
        );
        assert_eq!(leap.indexes[0].compressions, [Compression::Zstd]);
        assert_eq!(
            leap.extensions,
            [repod_family_sdk::advisory_names(
                repod_family_sdk::ADVISORY_NAMES_SOURCE
            )]
        );
    }

    #[test]
    fn disabling_an_unknown_distribution_fails() {
        let err = OpenSuse::describe(r#"{"disable": ["leap15.5"]}"#.to_owned()).unwrap_err();
        assert_eq!(
            err,
            "opensuse config: disable: unknown distribution \"leap15.5\" (known: opensuse-leap-15.6)"
        );
    }

    #[test]
    fn client_config_snapshot() {
        let family = OpenSuse::describe("{}".to_owned()).unwrap();
        let leap = family.distributions[0].clone();
        let config = OpenSuse::render_client_config(
            leap,
            "https://repo.example.test/repos".to_owned(),
            "https://repo.example.test/repos/key.asc".to_owned(),
        )
        .unwrap();
        assert_eq!(config.filename, "repod-opensuse-leap-15.6.sh");
        assert_eq!(config.media_type, "text/x-shellscript");
        insta::assert_snapshot!(config.content);
    }
}
