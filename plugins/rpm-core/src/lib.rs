//! Everything an rpm-md ("yum repository") family plugin does, shared by
//! every RPM distribution family (Enterprise Linux, openSUSE, ...).
//!
//! The families differ only in data: their distribution table, their
//! default index compression and how clients are told to add the repository
//! (a dnf `.repo` file or zypper commands). That data is a [`Catalog`]; the
//! [`rpm_family_plugin!`] macro turns a catalog into a complete plugin, so a
//! family's component crate is a table and one macro call:
//!
//! ```
//! use repod_rpm_core::sdk::FamilyGuest;
//! use repod_rpm_core::{Catalog, ClientStyle, DistroDefaults, IndexCompression};
//!
//! const CATALOG: Catalog = Catalog {
//!     family: "el",
//!     plugin_name: "el",
//!     plugin_version: "0.1.0",
//!     description: "Enterprise Linux: rpm-md repositories for dnf",
//!     client: ClientStyle::Dnf,
//!     default_architectures: &["x86_64", "aarch64", "noarch"],
//!     distributions: &[DistroDefaults {
//!         id: "almalinux9",
//!         display_name: "AlmaLinux 9",
//!         grype: "almalinux:9",
//!         osv: "AlmaLinux:9",
//!         architectures: None, // the default_architectures
//!         compression: IndexCompression::Zstd,
//!     }],
//!     advisory_names: "binary",
//! };
//! repod_rpm_core::rpm_family_plugin!(El, CATALOG);
//!
//! // Natively, tests call the guest traits directly.
//! let family = El::describe("{}".to_owned()).unwrap();
//! assert_eq!(family.distributions[0].id, "almalinux9");
//! ```
//!
//! The plugin keeps no state between calls (the host may use a fresh
//! instance per call): whatever a later call needs about a distribution is
//! put into `Distribution.settings` by `describe` and read back from there.
//!
//! Layout of a published distribution `<id>`: one rpm-md repository per
//! real architecture, `<id>/<arch>/` holding the packages and
//! `repodata/`. A `noarch` package appears in every one of them (the host
//! hard-links one blob), which is what dnf and zypper expect from a
//! `$basearch` repository.

mod client;
mod config;
mod multilib;
mod prepare;
mod repomd;
pub mod vercmp;
mod xml;

pub use repod_family_sdk as sdk;
pub use vercmp::{Evr, evr_cmp, evr_sort_key, rpmvercmp};

use sdk::{
    ClientConfig, Distribution, FamilyInfo, Frame, ParsedPackage, PluginInfo, Prepared,
    Publication, PublishedFile,
};

/// How a family's users add a repository.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientStyle {
    /// A `/etc/yum.repos.d/*.repo` file (dnf, yum).
    Dnf,
    /// A shell snippet: `rpm --import` and `zypper addrepo`.
    Zypper,
}

/// The compressions repod publishes rpm-md indexes in. bzip2 exists in the
/// contract but no current client prefers it, so it is not offered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IndexCompression {
    Gzip,
    Zstd,
    Xz,
}

impl IndexCompression {
    pub fn name(self) -> &'static str {
        match self {
            IndexCompression::Gzip => "gzip",
            IndexCompression::Zstd => "zstd",
            IndexCompression::Xz => "xz",
        }
    }

    pub fn parse(name: &str) -> Option<IndexCompression> {
        match name {
            "gzip" => Some(IndexCompression::Gzip),
            "zstd" => Some(IndexCompression::Zstd),
            "xz" => Some(IndexCompression::Xz),
            _ => None,
        }
    }

    pub fn to_sdk(self) -> sdk::Compression {
        match self {
            IndexCompression::Gzip => sdk::Compression::Gzip,
            IndexCompression::Zstd => sdk::Compression::Zstd,
            IndexCompression::Xz => sdk::Compression::Xz,
        }
    }
}

/// A distribution a family ships with, before configuration.
#[derive(Debug, Clone, Copy)]
pub struct DistroDefaults {
    pub id: &'static str,
    pub display_name: &'static str,
    /// Grype distro id, e.g. `almalinux:9`.
    pub grype: &'static str,
    /// OSV ecosystem, e.g. `AlmaLinux:9`.
    pub osv: &'static str,
    /// `None`: the catalog's `default_architectures`.
    pub architectures: Option<&'static [&'static str]>,
    /// What every client of this distribution can read.
    pub compression: IndexCompression,
}

/// A family: its identity and its built-in distribution table.
#[derive(Debug, Clone, Copy)]
pub struct Catalog {
    /// Family id (`family-info.id`), e.g. `el`.
    pub family: &'static str,
    /// Plugin name (`plugin-info.name`), also its config section.
    pub plugin_name: &'static str,
    pub plugin_version: &'static str,
    pub description: &'static str,
    pub client: ClientStyle,
    /// Architectures of built-in distributions without their own list, and
    /// of distributions added in config without `architectures`.
    pub default_architectures: &'static [&'static str],
    pub distributions: &'static [DistroDefaults],
    /// The names the family's advisories list packages under
    /// (`repod_family_sdk::ADVISORY_NAMES`): `"binary"` for AlmaLinux's
    /// binary-RPM records, `"source"` for openSUSE's source-RPM ones.
    pub advisory_names: &'static str,
}

impl Catalog {
    /// `plugin.info`.
    pub fn info(&self) -> PluginInfo {
        PluginInfo {
            name: self.plugin_name.to_owned(),
            version: self.plugin_version.to_owned(),
            description: self.description.to_owned(),
            extensions: Vec::new(),
        }
    }

    /// `family.describe`: the distribution table after applying the
    /// plugin's config section (JSON; the schema is in the `config` module's
    /// docs).
    pub fn describe(&self, config_json: &str) -> Result<FamilyInfo, String> {
        config::describe(self, config_json)
    }

    /// `family.prepare`: validate, place and render each package.
    pub fn prepare(
        &self,
        dist: &Distribution,
        packages: &[ParsedPackage],
    ) -> Vec<Result<Prepared, String>> {
        packages
            .iter()
            .map(|package| prepare::prepare(dist, package))
            .collect()
    }

    /// `family.compare-versions`, with rpm 4.18's EVR comparison.
    pub fn compare_versions(&self, pairs: &[(String, String)]) -> Vec<sdk::Ordering> {
        pairs
            .iter()
            .map(|(a, b)| match evr_cmp(a, b) {
                std::cmp::Ordering::Less => sdk::Ordering::Less,
                std::cmp::Ordering::Equal => sdk::Ordering::Equal,
                std::cmp::Ordering::Greater => sdk::Ordering::Greater,
            })
            .collect()
    }

    /// `family.render-frames`: the XML prolog/root element of primary,
    /// filelists and other.
    pub fn render_frames(
        &self,
        dist: &Distribution,
        indexes: &[(String, u64)],
    ) -> Result<Vec<Frame>, String> {
        repomd::render_frames(dist, indexes)
    }

    /// `family.render-top-level`: one signed `repomd.xml` per architecture.
    pub fn render_top_level(
        &self,
        dist: &Distribution,
        files: &[PublishedFile],
        now: u64,
    ) -> Result<Publication, String> {
        repomd::render_top_level(dist, files, now)
    }

    /// `family.render-client-config`.
    pub fn render_client_config(
        &self,
        dist: &Distribution,
        base_url: &str,
        key_url: &str,
    ) -> Result<ClientConfig, String> {
        client::render(self.client, dist, base_url, key_url)
    }
}

/// Defines `pub struct $ty` implementing the `plugin` and `family` guest
/// traits by delegating to the [`Catalog`] `$catalog`, and exports it as the
/// component's `distro-family` world on wasm32.
///
/// The calling crate must depend on `repod-family-sdk` itself: the export
/// macro wit-bindgen generates refers to it by that name. The export is
/// wasm32-only because its symbol names clash when linking natively; native
/// tests call the trait methods directly.
#[macro_export]
macro_rules! rpm_family_plugin {
    ($ty:ident, $catalog:expr) => {
        /// The plugin: an rpm-core `Catalog` made into a component.
        pub struct $ty;

        impl $crate::sdk::PluginGuest for $ty {
            fn info() -> $crate::sdk::PluginInfo {
                $catalog.info()
            }
        }

        impl $crate::sdk::FamilyGuest for $ty {
            fn prepare(
                dist: $crate::sdk::Distribution,
                packages: ::std::vec::Vec<$crate::sdk::ParsedPackage>,
            ) -> ::std::vec::Vec<::std::result::Result<$crate::sdk::Prepared, ::std::string::String>>
            {
                $catalog.prepare(&dist, &packages)
            }

            fn compare_versions(
                pairs: ::std::vec::Vec<(::std::string::String, ::std::string::String)>,
            ) -> ::std::vec::Vec<$crate::sdk::Ordering> {
                $catalog.compare_versions(&pairs)
            }

            fn render_frames(
                dist: $crate::sdk::Distribution,
                indexes: ::std::vec::Vec<(::std::string::String, u64)>,
            ) -> ::std::result::Result<::std::vec::Vec<$crate::sdk::Frame>, ::std::string::String>
            {
                $catalog.render_frames(&dist, &indexes)
            }

            fn render_top_level(
                dist: $crate::sdk::Distribution,
                files: ::std::vec::Vec<$crate::sdk::PublishedFile>,
                now: u64,
            ) -> ::std::result::Result<$crate::sdk::Publication, ::std::string::String> {
                $catalog.render_top_level(&dist, &files, now)
            }

            fn render_client_config(
                dist: $crate::sdk::Distribution,
                base_url: ::std::string::String,
                key_url: ::std::string::String,
            ) -> ::std::result::Result<$crate::sdk::ClientConfig, ::std::string::String> {
                $catalog.render_client_config(&dist, &base_url, &key_url)
            }

            fn describe(
                config: ::std::string::String,
            ) -> ::std::result::Result<$crate::sdk::FamilyInfo, ::std::string::String> {
                $catalog.describe(&config)
            }
        }

        #[cfg(target_arch = "wasm32")]
        ::repod_family_sdk::export_family!($ty);
    };
}

/// Reads a plugin-private setting that `describe` stored.
fn setting<'a>(dist: &'a Distribution, key: &str) -> Option<&'a str> {
    dist.settings
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
}

/// The architectures that get their own repository: all but `noarch`.
fn repo_arches(dist: &Distribution) -> impl Iterator<Item = &str> {
    dist.architectures
        .iter()
        .map(String::as_str)
        .filter(|a| *a != "noarch")
}

/// Settings key, `true` when the distribution's debuginfo packages go to
/// repositories of their own (`<id>/<arch>/debug/`, Koji's
/// `--split-debuginfo`).
pub(crate) const SPLIT_DEBUGINFO: &str = "split-debuginfo";

/// One rpm-md repository of a distribution: an architecture's, or (with
/// [`SPLIT_DEBUGINFO`]) its debuginfo companion.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Repo<'a> {
    arch: &'a str,
    debug: bool,
}

impl Repo<'_> {
    /// `<id>/<arch>/` or `<id>/<arch>/debug/`.
    fn root(&self, dist_id: &str) -> String {
        if self.debug {
            format!("{dist_id}/{}/debug/", self.arch)
        } else {
            format!("{dist_id}/{}/", self.arch)
        }
    }
}

/// The repositories of `arches`, each followed by its debuginfo one when
/// `split`.
fn repos_of<'a>(arches: impl Iterator<Item = &'a str>, split: bool) -> Vec<Repo<'a>> {
    arches
        .flat_map(|arch| {
            [Repo { arch, debug: false }, Repo { arch, debug: true }]
                .into_iter()
                .take(if split { 2 } else { 1 })
        })
        .collect()
}

/// Every repository `dist` publishes.
fn repos(dist: &Distribution) -> Vec<Repo<'_>> {
    repos_of(repo_arches(dist), splits_debuginfo(dist))
}

fn splits_debuginfo(dist: &Distribution) -> bool {
    setting(dist, SPLIT_DEBUGINFO) == Some("true")
}

/// A debuginfo or debugsource package, by the names rpmbuild gives them.
fn is_debuginfo(name: &str) -> bool {
    name.ends_with("-debuginfo") || name.ends_with("-debugsource") || name.contains("-debuginfo-")
}

/// The document name (`repod.document`) of a repository's comps.xml, the
/// package groups `dnf group list` shows; set with `PUT
/// /api/v1/distributions/{id}/comps`, published as repomd.xml's `group`
/// and `group_gz` when set.
pub(crate) const COMPS: &str = "comps";

/// `<root>repodata/prestodelta.xml` of a main repository (with deltas on).
fn prestodelta_path(root: &str) -> String {
    format!("{root}repodata/prestodelta.xml")
}

/// `<root>repodata/comps.xml` of a main (not debuginfo) repository.
fn comps_path(root: &str) -> String {
    format!("{root}repodata/comps.xml")
}

/// The three indexes of one repository.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum IndexKind {
    Primary,
    Filelists,
    Other,
}

impl IndexKind {
    const ALL: [IndexKind; 3] = [IndexKind::Primary, IndexKind::Filelists, IndexKind::Other];

    fn name(self) -> &'static str {
        match self {
            IndexKind::Primary => "primary",
            IndexKind::Filelists => "filelists",
            IndexKind::Other => "other",
        }
    }

    /// `<root>repodata/<kind>.xml`, the root a [`Repo::root`].
    fn path(self, root: &str) -> String {
        format!("{root}repodata/{}.xml", self.name())
    }

    /// The repository and kind of one of `dist`'s index paths.
    fn parse<'a>(dist: &'a Distribution, path: &str) -> Option<(Repo<'a>, IndexKind)> {
        repos(dist).into_iter().find_map(|repo| {
            let root = repo.root(&dist.id);
            IndexKind::ALL
                .into_iter()
                .find(|kind| kind.path(&root) == path)
                .map(|kind| (repo, kind))
        })
    }
}
