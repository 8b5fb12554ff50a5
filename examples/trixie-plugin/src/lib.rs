//! A third-party Debian-family plugin: Debian 13 "trixie", which no
//! first-party plugin offers.
//!
//! It shows how little a new apt distribution takes: a catalog row on top of
//! `repod-deb-core`, which brings dpkg versions, validation, pool placement
//! and index rendering. See README.md for building and loading it.

use repod_deb_core::{Catalog, DistDefaults, deb_family_plugin};

const ARCHITECTURES: &[&str] = &["amd64", "arm64", "all"];

pub const CATALOG: Catalog = Catalog {
    family_id: "debian",
    // Distinct from the first-party `debian` plugin: both can be loaded at
    // once, and this one is configured under `[plugin.debian-trixie]`.
    plugin_name: "debian-trixie",
    plugin_version: env!("CARGO_PKG_VERSION"),
    description: "Debian 13 (trixie) apt repository",
    default_architectures: ARCHITECTURES,
    distributions: &[DistDefaults {
        id: "trixie",
        display_name: "Debian 13",
        grype: "debian:13",
        osv: "Debian:13",
        architectures: ARCHITECTURES,
        components: &["main"],
    }],
};

deb_family_plugin!(Trixie, CATALOG);

#[cfg(test)]
mod tests {
    use super::*;
    use repod_family_sdk::{FamilyGuest, PluginGuest};

    #[test]
    fn describes_trixie() {
        assert_eq!(Trixie::info().name, "debian-trixie");
        let family = Trixie::describe("{}".into()).unwrap();
        assert_eq!(family.id, "debian");
        let [trixie] = family.distributions.as_slice() else {
            panic!("one distribution expected");
        };
        assert_eq!(trixie.id, "trixie");
        assert_eq!(trixie.display_name, "Debian 13");
        assert_eq!(trixie.vulnerability.grype, "debian:13");
        assert_eq!(trixie.vulnerability.osv, "Debian:13");
        assert_eq!(trixie.architectures, ARCHITECTURES);
    }

    #[test]
    fn client_config() {
        let trixie = Trixie::describe("{}".into())
            .unwrap()
            .distributions
            .remove(0);
        let config = Trixie::render_client_config(
            trixie,
            "http://localhost:8000/repos".into(),
            "http://localhost:8000/repos/repod.asc".into(),
        )
        .unwrap();
        assert_eq!(config.filename, "repod-trixie.sources");
        assert!(config.content.contains("\nSuites: trixie\n"));
    }
}
