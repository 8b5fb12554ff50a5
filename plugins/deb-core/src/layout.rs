//! Where things live in an apt tree.
//!
//! One place computes the index paths, so the index list published at
//! `describe`, the entries rendered at `prepare` and the checks in
//! `render-frames` cannot drift apart.

use repod_family_sdk::{Compression, Distribution, IndexSpec};

/// The pseudo-architecture of architecture-independent packages. It has no
/// Packages file of its own: such packages are listed in every other one.
pub const ARCH_ALL: &str = "all";

/// The architectures that get their own `binary-<arch>` directory.
pub fn binary_archs(architectures: &[String]) -> impl Iterator<Item = &str> {
    architectures
        .iter()
        .map(String::as_str)
        .filter(|a| *a != ARCH_ALL)
}

pub fn dist_dir(dist_id: &str) -> String {
    format!("dists/{dist_id}")
}

pub fn packages_path(dist_id: &str, component: &str, arch: &str) -> String {
    format!("dists/{dist_id}/{component}/binary-{arch}/Packages")
}

pub fn contents_path(dist_id: &str, component: &str, arch: &str) -> String {
    format!("dists/{dist_id}/{component}/Contents-{arch}")
}

/// Every index a distribution publishes: per component and binary
/// architecture, a Packages file and a Contents file.
///
/// Packages stay available uncompressed (small clients and debugging) and
/// get gzip and xz, which every apt since Debian 7 reads. Contents are big
/// and only read by tools like apt-file, so gzip alone.
///
/// The Release file says `Acquire-By-Hash: yes`, so apt fetches every index
/// through `by-hash/<ALGO>/<hex>`, choosing the strongest hash Release lists
/// for it: SHA512 here. by-hash copies therefore exist for SHA512 (what apt
/// asks for) and SHA256 (for clients that stop there); with SHA256 alone
/// apt's by-hash requests would 404 and it would fall back to plain names,
/// losing the consistency by-hash exists for.
fn by_hash() -> Vec<String> {
    vec!["sha256".into(), "sha512".into()]
}

pub fn index_specs(
    dist_id: &str,
    architectures: &[String],
    components: &[String],
) -> Vec<IndexSpec> {
    let mut specs = Vec::new();
    for component in components {
        for arch in binary_archs(architectures) {
            specs.push(IndexSpec {
                path: packages_path(dist_id, component, arch),
                compressions: vec![Compression::Gzip, Compression::Xz],
                keep_uncompressed: true,
                checksum_named: false,
                by_hash: by_hash(),
                checksums: vec!["sha256".into(), "sha512".into()],
                extensions: vec![],
            });
            specs.push(IndexSpec {
                path: contents_path(dist_id, component, arch),
                compressions: vec![Compression::Gzip],
                keep_uncompressed: false,
                checksum_named: false,
                by_hash: by_hash(),
                checksums: vec!["sha256".into(), "sha512".into()],
                extensions: vec![],
            });
        }
    }
    specs
}

/// The component new packages go into: the distribution's first.
pub fn upload_component(dist: &Distribution) -> Result<&str, String> {
    dist.components
        .first()
        .map(String::as_str)
        .ok_or_else(|| format!("distribution {} has no components", dist.id))
}

/// The pool directory prefix of a source package, as Debian archives shard
/// them: `libh` for `libhello`, `h` for `hello`.
pub fn pool_prefix(source: &str) -> &str {
    if source.len() > 3 && source.starts_with("lib") {
        &source[..4]
    } else {
        &source[..source.len().min(1)]
    }
}

/// `pool/<component>/<prefix>/<source>/<name>_<version>_<arch>.deb`, the
/// version without its epoch (apt and dpkg never put the epoch in a file
/// name). Inputs must be validated: names and architectures are then plain
/// ASCII without `/`.
pub fn pool_path(component: &str, source: &str, file_name: &str) -> String {
    format!(
        "pool/{component}/{}/{source}/{file_name}",
        pool_prefix(source)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes() {
        assert_eq!(pool_prefix("libhello"), "libh");
        assert_eq!(pool_prefix("lib"), "l");
        assert_eq!(pool_prefix("lib0"), "lib0");
        assert_eq!(pool_prefix("nginx"), "n");
        assert_eq!(pool_prefix("0ad"), "0");
    }

    #[test]
    fn specs_skip_all() {
        let archs = vec!["amd64".to_string(), "all".into(), "arm64".into()];
        let specs = index_specs("jammy", &archs, &["main".into()]);
        let paths: Vec<&str> = specs.iter().map(|s| s.path.as_str()).collect();
        assert_eq!(
            paths,
            [
                "dists/jammy/main/binary-amd64/Packages",
                "dists/jammy/main/Contents-amd64",
                "dists/jammy/main/binary-arm64/Packages",
                "dists/jammy/main/Contents-arm64",
            ]
        );
    }
}
