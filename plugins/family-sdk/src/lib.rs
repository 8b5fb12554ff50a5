//! Guest-side bindings of the `distro-family` world in `wit/`.
//!
//! Family plugins depend on this crate instead of running `wit-bindgen`
//! themselves, so the contract is turned into bindings in one place. A plugin
//! implements [`PluginGuest`] and [`FamilyGuest`] on one type and calls
//! `repod_family_sdk::export_family!(ThatType);`.
//!
//! The policy world lives in its own crate (`repod-policy-sdk`) because both
//! worlds export the `plugin` interface and wit-bindgen's exported macros
//! would clash in one crate.

wit_bindgen::generate!({
    path: "../../wit",
    world: "distro-family",
    pub_export_macro: true,
    export_macro_name: "export_family",
    default_bindings_module: "repod_family_sdk",
});

pub use exports::repod::plugin::family::Guest as FamilyGuest;
pub use exports::repod::plugin::family::*;
pub use exports::repod::plugin::plugin::{Guest as PluginGuest, PluginInfo};
pub use repod::plugin::types::{ContainerFormat, Field};

/// The `distribution.extensions` key under which the host passes a pinned
/// version number to `render-client-config` (the source then points at
/// that version's tree, which does not follow later changes).
pub const PINNED_VERSION: &str = "repod.version";

/// The `distribution.extensions` key under which a family says which names
/// vulnerability advisories list its packages under (contract 0.1, added
/// without a version change: an older host ignores it, and a family that
/// does not set it gets the host's default, both names):
///
/// - `source` ([`ADVISORY_NAMES_SOURCE`]): the source package's (a deb's `Source:`,
///   the name part of an RPM's source RPM), the package's own when it has
///   none. Debian, Ubuntu and openSUSE records do this.
/// - `binary` ([`ADVISORY_NAMES_BINARY`]): the package's own name. AlmaLinux records
///   list binary RPMs.
/// - `both` ([`ADVISORY_NAMES_BOTH`]): either.
pub const ADVISORY_NAMES: &str = "repod.advisory-names";
pub const ADVISORY_NAMES_SOURCE: &str = "source";
pub const ADVISORY_NAMES_BINARY: &str = "binary";
pub const ADVISORY_NAMES_BOTH: &str = "both";

/// The extension that declares `names` ([`ADVISORY_NAMES`]).
pub fn advisory_names(names: &str) -> Field {
    (ADVISORY_NAMES.to_owned(), names.to_owned())
}

/// The `distribution.extensions` key listing the signing keys a
/// distribution requires of its RPMs: key IDs or fingerprints, lowercase
/// hex, comma-separated. The host reads each RPM's header signature and
/// refuses an upload or promotion signed by none of them.
pub const REQUIRE_SIGNATURES: &str = "repod.require-signatures";

/// With [`REQUIRE_SIGNATURES`]: `refuse` (the default), `allow` (Koji's
/// `--allow-missing-signatures`: unsigned or otherwise-signed packages in)
/// or `skip` (`--skip-missing-signatures`: taken, but left out of the
/// published indexes).
pub const MISSING_SIGNATURES: &str = "repod.missing-signatures";

/// The `distribution.extensions` key (`true`) asking the host to sign the
/// distribution's RPMs with the repository key: it publishes a signed copy
/// of each upload (header signature, as `rpmsign --addsign` adds) and keeps
/// the upload next to it.
pub const SIGN_PACKAGES: &str = "repod.sign-packages";

/// The `index-spec.extensions` key naming a document the host fills the
/// index with (whole, as its only entry; empty while none is set): e.g.
/// `comps` for an rpm-md comps.xml, set with `PUT
/// /api/v1/distributions/{id}/comps`. The document must be XML whose root
/// element has that name.
pub const DOCUMENT: &str = "repod.document";

/// The `index-spec.extensions` key (`true`) asking the host to also publish
/// the index as a zchunk file (`<name>.zck`, one chunk per entry, as
/// createrepo_c `--zck` cuts them). Contract 0.1 has no compression case
/// for it, so `render-top-level` sees that variant with `compression` none,
/// a path ending `.zck`, and two more `checksums` entries:
/// [`ZCHUNK_HEADER_SHA256`] and [`ZCHUNK_HEADER_SIZE`] (see [`zchunk_header`]).
pub const ZCHUNK: &str = "repod.zchunk";
/// In a zchunk variant's `checksums`: the SHA-256 of its header, hex.
pub const ZCHUNK_HEADER_SHA256: &str = "zck-header-sha256";
/// In a zchunk variant's `checksums`: its header's size in bytes, decimal.
pub const ZCHUNK_HEADER_SIZE: &str = "zck-header-size";

/// The header checksum (SHA-256 hex) and size of a zchunk variant, `None`
/// for any other published file.
pub fn zchunk_header(file: &PublishedFile) -> Option<(&str, u64)> {
    let get = |key: &str| {
        file.checksums
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    };
    if file.compression.is_some() || !file.path.ends_with(".zck") {
        return None;
    }
    Some((
        get(ZCHUNK_HEADER_SHA256)?,
        get(ZCHUNK_HEADER_SIZE)?.parse().ok()?,
    ))
}

/// The `index-spec.extensions` key (a number N > 0) asking the host to
/// fill that index with delta RPM entries (rpm-md `prestodelta.xml`): for
/// each RPM published directly in [`DELTAS_BASE`], deltas from its N newest
/// older versions the distribution keeps, made with makedeltarpm and
/// published in `<index dir>/drpms/`. The index's frame is the plugin's;
/// each entry is a `<newpackage>` element (contract 0.1 has no call to
/// pass delta facts to a plugin, so the host writes them).
pub const DELTAS: &str = "repod.deltas";
/// With [`DELTAS`]: the tree directory (ending in `/`) whose packages get
/// deltas and that `<filename>` paths are relative to.
pub const DELTAS_BASE: &str = "repod.deltas-base";
/// With [`DELTAS`]: packages of this many bytes or more get no deltas
/// (createrepo_c's `--max-delta-rpm-size`; default 100000000).
pub const DELTAS_MAX_SIZE: &str = "repod.deltas-max-size";

/// The pinned version number `render-client-config` was asked for, if any.
pub fn pinned_version(dist: &Distribution) -> Option<u64> {
    dist.extensions
        .iter()
        .find(|(k, _)| k == PINNED_VERSION)
        .and_then(|(_, v)| v.parse().ok())
}
