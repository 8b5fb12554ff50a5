//! The ecosystem names the OSV schema defines (its `ecosystems.txt`), so an
//! import can tell a record meant for an ecosystem repod does not know from
//! a typo. An ecosystem string is `<name>` or `<name>:<release>` (e.g.
//! `Debian:12`, `Ubuntu:22.04:LTS`, `Rocky Linux:9`).

/// Ecosystem names as the OSV schema spells them.
pub const KNOWN: &[&str] = &[
    "AlmaLinux",
    "Alpaquita",
    "Alpine",
    "Android",
    "Azure Linux",
    "BellSoft Hardened Containers",
    "Bioconductor",
    "Bitnami",
    "Chainguard",
    "CleanStart",
    "ConanCenter",
    "CRAN",
    "crates.io",
    "Debian",
    "Docker Hardened Images",
    "Echo",
    "FreeBSD",
    "GHC",
    "GitHub Actions",
    "Go",
    "Hackage",
    "Hex",
    "Julia",
    "Kubernetes",
    "Linux",
    "Mageia",
    "Maven",
    "MinimOS",
    "npm",
    "NuGet",
    "openEuler",
    "openSUSE",
    "OSS-Fuzz",
    "Packagist",
    "Photon OS",
    "Pub",
    "PyPI",
    "Red Hat",
    "Rocky Linux",
    "RubyGems",
    "SUSE",
    "SwiftURL",
    "Ubuntu",
    "VSCode",
    "Wolfi",
];

/// Whether `ecosystem` (`<name>` or `<name>:<release>`) names an ecosystem
/// of the OSV schema.
pub fn is_known(ecosystem: &str) -> bool {
    let name = ecosystem.split(':').next().unwrap_or(ecosystem);
    KNOWN.contains(&name)
}

#[cfg(test)]
mod tests {
    #[test]
    fn names_with_and_without_release() {
        assert!(super::is_known("Debian:12"));
        assert!(super::is_known("Ubuntu:22.04:LTS"));
        assert!(super::is_known("Rocky Linux:9"));
        assert!(super::is_known("crates.io"));
        assert!(!super::is_known("Debain:12"));
        assert!(!super::is_known("ubuntu:22.04"));
    }
}
