//! Debian-family logic for repod plugins.
//!
//! Ubuntu, Debian and every derivative publish the same apt tree: dpkg
//! versions, `pool/` placement, Packages/Contents indexes, a signed Release.
//! Only the list of codenames differs. This crate holds all of that once, so
//! a family plugin is a [`Catalog`] (its codenames) plus one macro call:
//!
//! ```
//! use repod_deb_core::{Catalog, DistDefaults, deb_family_plugin};
//!
//! const CATALOG: Catalog = Catalog {
//!     family_id: "debian",
//!     plugin_name: "debian-trixie",
//!     plugin_version: env!("CARGO_PKG_VERSION"),
//!     description: "Debian 13 (trixie)",
//!     default_architectures: &["amd64", "arm64", "all"],
//!     distributions: &[DistDefaults {
//!         id: "trixie",
//!         display_name: "Debian 13",
//!         grype: "debian:13",
//!         osv: "Debian:13",
//!         architectures: &["amd64", "arm64", "all"],
//!         components: &["main"],
//!     }],
//! };
//!
//! deb_family_plugin!(Trixie, CATALOG);
//! ```
//!
//! The plugin crate must depend on `repod-family-sdk` itself: the component
//! export macro it expands to names that crate. Every function here is pure
//! and takes what it needs as arguments (the host may use a fresh instance
//! per call), so the same code runs in the component and in native tests.

pub mod client;
pub mod config;
pub mod control;
pub mod layout;
pub mod package;
pub mod release;
pub mod version;

pub use repod_family_sdk as sdk;

use repod_family_sdk::{
    ClientConfig, Distribution, FamilyInfo, Frame, Ordering, ParsedPackage, PluginInfo, Prepared,
    Publication, PublishedFile,
};

/// What makes one Debian-family plugin different from another.
#[derive(Debug, Clone, Copy)]
pub struct Catalog {
    /// The family id (`debian` for every apt-based plugin).
    pub family_id: &'static str,
    /// The plugin's name, `[a-z0-9-]{1,64}`; it selects its config section.
    pub plugin_name: &'static str,
    /// Usually `env!("CARGO_PKG_VERSION")` of the plugin crate.
    pub plugin_version: &'static str,
    /// One line for humans.
    pub description: &'static str,
    /// Architectures of a distribution added through config without any.
    pub default_architectures: &'static [&'static str],
    /// The distributions the plugin offers, in order.
    pub distributions: &'static [DistDefaults],
}

/// One distribution as the plugin ships it; config may override each field.
#[derive(Debug, Clone, Copy)]
pub struct DistDefaults {
    /// The codename, e.g. `jammy`.
    pub id: &'static str,
    pub display_name: &'static str,
    /// Grype distro id, e.g. `ubuntu:22.04`.
    pub grype: &'static str,
    /// OSV ecosystem, e.g. `Ubuntu:22.04:LTS`.
    pub osv: &'static str,
    pub architectures: &'static [&'static str],
    /// The first one receives uploads.
    pub components: &'static [&'static str],
}

/// `plugin.info`.
pub fn plugin_info(catalog: &Catalog) -> PluginInfo {
    PluginInfo {
        name: catalog.plugin_name.into(),
        version: catalog.plugin_version.into(),
        description: catalog.description.into(),
        extensions: vec![],
    }
}

/// `family.describe`: the catalog merged with the plugin's config section.
pub fn describe(catalog: &Catalog, config_json: &str) -> Result<FamilyInfo, String> {
    config::describe(catalog, config_json)
}

/// `family.prepare`: one result per package, in order.
pub fn prepare(dist: &Distribution, packages: &[ParsedPackage]) -> Vec<Result<Prepared, String>> {
    packages
        .iter()
        .map(|pkg| package::prepare(dist, pkg))
        .collect()
}

/// `family.compare-versions` with dpkg's ordering.
pub fn compare_versions(pairs: &[(String, String)]) -> Vec<Ordering> {
    pairs
        .iter()
        .map(|(a, b)| match version::compare(a, b) {
            std::cmp::Ordering::Less => Ordering::Less,
            std::cmp::Ordering::Equal => Ordering::Equal,
            std::cmp::Ordering::Greater => Ordering::Greater,
        })
        .collect()
}

/// `family.render-frames`: Packages and Contents files are bare
/// concatenations of entries, so every frame is empty. The paths are still
/// checked, so a host mix-up fails loudly instead of publishing nonsense.
pub fn render_frames(dist: &Distribution, indexes: &[(String, u64)]) -> Result<Vec<Frame>, String> {
    indexes
        .iter()
        .map(|(path, _)| {
            if dist.indexes.iter().any(|spec| &spec.path == path) {
                Ok(Frame {
                    head: String::new(),
                    tail: String::new(),
                })
            } else {
                Err(format!(
                    "index {path} does not belong to distribution {}",
                    dist.id
                ))
            }
        })
        .collect()
}

/// `family.render-top-level`: the Release file and its signatures.
pub fn render_top_level(
    dist: &Distribution,
    files: &[PublishedFile],
    now: u64,
) -> Result<Publication, String> {
    release::render_top_level(dist, files, now)
}

/// `family.render-client-config`: a deb822 `.sources` file.
pub fn render_client_config(
    dist: &Distribution,
    base_url: &str,
    key_url: &str,
) -> Result<ClientConfig, String> {
    client::render_client_config(dist, base_url, key_url)
}

/// Declares `pub struct $name`, implements the `plugin` and `family` guest
/// traits on it from a [`Catalog`], and exports it from the component.
///
/// The export only happens on `wasm32`: its symbol names are not valid in a
/// native linker's version script, and native builds exist for tests, which
/// call the trait methods directly.
#[macro_export]
macro_rules! deb_family_plugin {
    ($name:ident, $catalog:expr) => {
        /// The plugin's guest type, generated by `repod_deb_core::deb_family_plugin!`.
        pub struct $name;

        impl $crate::sdk::PluginGuest for $name {
            fn info() -> $crate::sdk::PluginInfo {
                $crate::plugin_info(&$catalog)
            }
        }

        impl $crate::sdk::FamilyGuest for $name {
            fn prepare(
                dist: $crate::sdk::Distribution,
                packages: ::std::vec::Vec<$crate::sdk::ParsedPackage>,
            ) -> ::std::vec::Vec<::std::result::Result<$crate::sdk::Prepared, ::std::string::String>>
            {
                $crate::prepare(&dist, &packages)
            }

            fn compare_versions(
                pairs: ::std::vec::Vec<(::std::string::String, ::std::string::String)>,
            ) -> ::std::vec::Vec<$crate::sdk::Ordering> {
                $crate::compare_versions(&pairs)
            }

            fn render_frames(
                dist: $crate::sdk::Distribution,
                indexes: ::std::vec::Vec<(::std::string::String, u64)>,
            ) -> ::std::result::Result<
                ::std::vec::Vec<$crate::sdk::Frame>,
                ::std::string::String,
            > {
                $crate::render_frames(&dist, &indexes)
            }

            fn render_top_level(
                dist: $crate::sdk::Distribution,
                files: ::std::vec::Vec<$crate::sdk::PublishedFile>,
                now: u64,
            ) -> ::std::result::Result<$crate::sdk::Publication, ::std::string::String> {
                $crate::render_top_level(&dist, &files, now)
            }

            fn render_client_config(
                dist: $crate::sdk::Distribution,
                base_url: ::std::string::String,
                key_url: ::std::string::String,
            ) -> ::std::result::Result<$crate::sdk::ClientConfig, ::std::string::String> {
                $crate::render_client_config(&dist, &base_url, &key_url)
            }

            fn describe(
                config: ::std::string::String,
            ) -> ::std::result::Result<$crate::sdk::FamilyInfo, ::std::string::String> {
                $crate::describe(&$catalog, &config)
            }
        }

        #[cfg(target_arch = "wasm32")]
        repod_family_sdk::export_family!($name);
    };
}
