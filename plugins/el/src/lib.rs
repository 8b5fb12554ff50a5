//! repod's Enterprise Linux family: AlmaLinux, Rocky Linux, CentOS Stream
//! and Fedora, published as rpm-md repositories for dnf.
//!
//! All the logic is in `repod-rpm-core`; this crate is the distribution
//! table. Index compression per distribution is the newest every one of its
//! dnf versions reads:
//!
//! - EL 8 (AlmaLinux 8, Rocky Linux 8): gzip. Its libsolv/librepo
//!   generation predates zstd-compressed repodata being a safe assumption;
//!   gzip is what EL 8's own createrepo_c writes and every client reads.
//! - EL 9 (AlmaLinux 9, Rocky Linux 9, CentOS Stream 9) and Fedora 42:
//!   zstd. Their libsolv and librepo read zstd repodata (Fedora's own
//!   repositories publish it), and it is smaller and faster to decompress.

use repod_rpm_core::{Catalog, ClientStyle, DistroDefaults, IndexCompression};

/// `None`: the family's `default_architectures`.
const fn el(
    id: &'static str,
    display_name: &'static str,
    grype: &'static str,
    osv: &'static str,
    compression: IndexCompression,
) -> DistroDefaults {
    DistroDefaults {
        id,
        display_name,
        grype,
        osv,
        architectures: None,
        compression,
    }
}

pub const CATALOG: Catalog = Catalog {
    family: "el",
    plugin_name: "el",
    plugin_version: env!("CARGO_PKG_VERSION"),
    description: "Enterprise Linux family (AlmaLinux, Rocky Linux, CentOS Stream, Fedora): rpm-md repositories for dnf",
    client: ClientStyle::Dnf,
    default_architectures: &["x86_64", "aarch64", "noarch"],
    distributions: &[
        el(
            "almalinux8",
            "AlmaLinux 8",
            "almalinux:8",
            "AlmaLinux:8",
            IndexCompression::Gzip,
        ),
        el(
            "almalinux9",
            "AlmaLinux 9",
            "almalinux:9",
            "AlmaLinux:9",
            IndexCompression::Zstd,
        ),
        el(
            "rocky8",
            "Rocky Linux 8",
            "rockylinux:8",
            "Rocky Linux:8",
            IndexCompression::Gzip,
        ),
        el(
            "rocky9",
            "Rocky Linux 9",
            "rockylinux:9",
            "Rocky Linux:9",
            IndexCompression::Zstd,
        ),
        // OSV has no CentOS ecosystem. CentOS Stream 9 is the upstream of
        // RHEL 9 and carries the same sources, so Red Hat's RHEL 9 advisories
        // are the closest data. OSV spells Red Hat ecosystems as
        // `Red Hat:<CPE>` with a repository suffix
        // (`Red Hat:enterprise_linux:9::appstream`, `...::baseos`), so this
        // is the common prefix a consumer matches against.
        el(
            "centos-stream9",
            "CentOS Stream 9",
            "centos:9",
            "Red Hat:enterprise_linux:9",
            IndexCompression::Zstd,
        ),
        // OSV has no Fedora ecosystem either, and no ecosystem is close:
        // Fedora builds its packages independently of RHEL, so RHEL advisories
        // (and their fixed versions) would be wrong for it. Empty means "no
        // OSV lookup"; vulnerability data for Fedora comes from grype only.
        el(
            "fedora",
            "Fedora 42",
            "fedora:42",
            "",
            IndexCompression::Zstd,
        ),
    ],
    // AlmaLinux (and Red Hat) records list binary RPMs.
    advisory_names: "binary",
};

repod_rpm_core::rpm_family_plugin!(El, CATALOG);

#[cfg(test)]
mod tests {
    use super::*;
    use repod_family_sdk::{Compression, ContainerFormat, FamilyGuest, Ordering, PluginGuest};

    #[test]
    fn info_names_the_plugin() {
        let info = El::info();
        assert_eq!(info.name, "el");
        assert_eq!(info.version, env!("CARGO_PKG_VERSION"));
    }

    #[test]
    fn describes_the_distribution_table() {
        let family = El::describe("{}".to_owned()).unwrap();
        assert_eq!(family.id, "el");
        assert_eq!(family.format, ContainerFormat::Rpm);
        let table: Vec<(&str, &str, &str, &str, Compression)> = family
            .distributions
            .iter()
            .map(|d| {
                (
                    d.id.as_str(),
                    d.display_name.as_str(),
                    d.vulnerability.grype.as_str(),
                    d.vulnerability.osv.as_str(),
                    d.indexes[0].compressions[0],
                )
            })
            .collect();
        assert_eq!(
            table,
            [
                (
                    "almalinux8",
                    "AlmaLinux 8",
                    "almalinux:8",
                    "AlmaLinux:8",
                    Compression::Gzip
                ),
                (
                    "almalinux9",
                    "AlmaLinux 9",
                    "almalinux:9",
                    "AlmaLinux:9",
                    Compression::Zstd
                ),
                (
                    "rocky8",
                    "Rocky Linux 8",
                    "rockylinux:8",
                    "Rocky Linux:8",
                    Compression::Gzip
                ),
                (
                    "rocky9",
                    "Rocky Linux 9",
                    "rockylinux:9",
                    "Rocky Linux:9",
                    Compression::Zstd
                ),
                (
                    "centos-stream9",
                    "CentOS Stream 9",
                    "centos:9",
                    "Red Hat:enterprise_linux:9",
                    Compression::Zstd
                ),
                ("fedora", "Fedora 42", "fedora:42", "", Compression::Zstd),
            ]
        );
        for dist in &family.distributions {
            assert_eq!(dist.architectures, ["x86_64", "aarch64", "noarch"]);
            // primary, filelists, other and comps for x86_64 and aarch64.
            assert_eq!(dist.indexes.len(), 8);
        }
    }

    #[test]
    fn compression_can_be_overridden() {
        let family =
            El::describe(r#"{"distributions": {"almalinux8": {"compression": "xz"}}}"#.to_owned())
                .unwrap();
        assert_eq!(
            family.distributions[0].indexes[0].compressions,
            [Compression::Xz]
        );
    }

    #[test]
    fn compares_versions_like_rpm() {
        let pairs = [
            ("1:1.0-1", "2.0-1"),
            ("1.0~rc1-1", "1.0-1"),
            ("1.0-1", "1_0-1"),
        ]
        .map(|(a, b)| (a.to_owned(), b.to_owned()));
        assert_eq!(
            El::compare_versions(pairs.to_vec()),
            [Ordering::Greater, Ordering::Less, Ordering::Equal]
        );
    }

    #[test]
    fn client_config_snapshot() {
        let family = El::describe("{}".to_owned()).unwrap();
        let alma9 = family.distributions[1].clone();
        let config = El::render_client_config(
            alma9,
            "https://repo.example.test/repos".to_owned(),
            "https://repo.example.test/repos/key.asc".to_owned(),
        )
        .unwrap();
        assert_eq!(config.filename, "repod-almalinux9.repo");
        assert_eq!(config.media_type, "text/plain");
        insta::assert_snapshot!(config.content);
    }
}
