//! A family plugin that misbehaves on request. Test-only: never install it.
//!
//! The behaviour is chosen by the input, so one build covers every case:
//! - `describe` config `{"mode": M}`: `loop`, `bad-id`, `huge-name`,
//!   `steal` (declares `jammy`, owned by the debian plugin), `reject`;
//!   anything else describes one well-formed distribution `hostile-1`.
//! - `compare-versions` with `a` = `loop`, `alloc`, `panic`, `trap`, or
//!   `short` (returns no results): the named failure. With `a` = `senses`
//!   it reports what of the host it can observe, one pair each: clock,
//!   environment, arguments, filesystem (`greater` = visible). With
//!   `random` it returns the bits of a std `RandomState` hash (`greater` =
//!   1), so a test can see whether randomness is fixed. Otherwise `equal`.
//! - `prepare` of a deb whose `Package` is `dotdot` (pool path escaping the
//!   tree), `huge` (a 20 MiB entry), `badindex` (an undeclared index),
//!   `ctrl` (a control character in the name): the named garbage.
//! - `render-client-config`: always a file name with `..`.

use repod_family_sdk::{
    ClientConfig, ContainerFormat, Distribution, FamilyGuest, FamilyInfo, Frame, IndexEntry,
    IndexSpec, Ordering, PackageIdentity, PackageMetadata, ParsedPackage, PluginGuest, PluginInfo,
    Prepared, Publication, PublishedFile, VulnerabilityIds,
};

pub struct Hostile;

impl PluginGuest for Hostile {
    fn info() -> PluginInfo {
        PluginInfo {
            name: "hostile".into(),
            version: "0.0.1".into(),
            description: "misbehaves on request (tests only)".into(),
            extensions: vec![],
        }
    }
}

fn distribution(id: &str, display_name: String) -> Distribution {
    Distribution {
        id: id.into(),
        display_name,
        architectures: vec!["amd64".into()],
        components: vec!["main".into()],
        vulnerability: VulnerabilityIds {
            grype: "hostile:1".into(),
            osv: "Hostile:1".into(),
        },
        indexes: vec![IndexSpec {
            path: format!("dists/{id}/main/binary-amd64/Packages"),
            compressions: vec![],
            keep_uncompressed: true,
            checksum_named: false,
            by_hash: vec![],
            checksums: vec!["sha256".into()],
            extensions: vec![],
        }],
        settings: vec![],
        extensions: vec![],
    }
}

#[allow(clippy::empty_loop)]
fn spin() -> ! {
    loop {}
}

impl FamilyGuest for Hostile {
    fn describe(config: String) -> Result<FamilyInfo, String> {
        let config: serde_json::Value = serde_json::from_str(&config).map_err(|e| e.to_string())?;
        let dist = match config["mode"].as_str().unwrap_or("") {
            "loop" => spin(),
            "bad-id" => distribution("../etc", "escape".into()),
            "huge-name" => distribution("hostile-1", "x".repeat(8 << 20)),
            "steal" => distribution("jammy", "Not really Ubuntu".into()),
            "reject" => return Err("mode reject: refusing this configuration".into()),
            _ => distribution("hostile-1", "Hostile 1".into()),
        };
        Ok(FamilyInfo {
            id: "hostile".into(),
            format: ContainerFormat::Deb,
            distributions: vec![dist],
            extensions: vec![],
        })
    }

    fn prepare(dist: Distribution, packages: Vec<ParsedPackage>) -> Vec<Result<Prepared, String>> {
        packages
            .iter()
            .map(|p| {
                let PackageMetadata::Deb(deb) = &p.metadata else {
                    return Err("only debs".into());
                };
                let name = deb
                    .control
                    .iter()
                    .find(|(k, _)| k == "Package")
                    .map(|(_, v)| v.clone())
                    .unwrap_or_default();
                let index = dist.indexes[0].path.clone();
                let mut prepared = Prepared {
                    identity: PackageIdentity {
                        name: name.clone(),
                        version: "1.0".into(),
                        architecture: "amd64".into(),
                    },
                    pool_paths: vec![format!("pool/main/h/{name}/{name}_1.0_amd64.deb")],
                    entries: vec![IndexEntry {
                        index,
                        sort_key: name.clone(),
                        text: format!("Package: {name}\n\n"),
                    }],
                };
                match name.as_str() {
                    "dotdot" => prepared.pool_paths = vec!["pool/../../../etc/passwd".into()],
                    "huge" => prepared.entries[0].text = "x".repeat(20 << 20),
                    "badindex" => prepared.entries[0].index = "dists/other/Packages".into(),
                    "ctrl" => prepared.identity.name = "evil\u{1b}[2J".into(),
                    _ => {}
                }
                Ok(prepared)
            })
            .collect()
    }

    fn compare_versions(pairs: Vec<(String, String)>) -> Vec<Ordering> {
        let seen = |visible: bool| {
            if visible {
                Ordering::Greater
            } else {
                Ordering::Equal
            }
        };
        match pairs.first().map(|(a, _)| a.as_str()) {
            Some("senses") => {
                let epoch = std::time::SystemTime::UNIX_EPOCH;
                return vec![
                    seen(std::time::SystemTime::now() != epoch),
                    seen(std::env::vars().next().is_some()),
                    seen(std::env::args().next().is_some()),
                    seen(
                        std::fs::read_dir("/").is_ok() || std::fs::metadata("/etc/passwd").is_ok(),
                    ),
                ];
            }
            Some("random") => {
                use std::hash::BuildHasher;
                let bits = std::collections::hash_map::RandomState::new().hash_one("repod");
                return (0..64).map(|i| seen(bits >> i & 1 == 1)).collect();
            }
            _ => {}
        }
        let mut out = Vec::new();
        for (a, _) in &pairs {
            match a.as_str() {
                "loop" => spin(),
                "alloc" => {
                    let mut hoard: Vec<Vec<u8>> = Vec::new();
                    loop {
                        hoard.push(vec![1u8; 1 << 20]);
                    }
                }
                "panic" => panic!("hostile plugin panics on purpose"),
                "trap" => {
                    #[cfg(target_arch = "wasm32")]
                    core::arch::wasm32::unreachable();
                }
                "short" => return vec![],
                _ => {}
            }
            out.push(Ordering::Equal);
        }
        out
    }

    fn render_frames(_: Distribution, indexes: Vec<(String, u64)>) -> Result<Vec<Frame>, String> {
        Ok(indexes
            .iter()
            .map(|_| Frame {
                head: String::new(),
                tail: String::new(),
            })
            .collect())
    }

    fn render_top_level(
        _: Distribution,
        _: Vec<PublishedFile>,
        _: u64,
    ) -> Result<Publication, String> {
        Ok(Publication {
            files: vec![],
            public_key_paths: vec!["../../root/.ssh/authorized_keys".into()],
        })
    }

    fn render_client_config(_: Distribution, _: String, _: String) -> Result<ClientConfig, String> {
        Ok(ClientConfig {
            filename: "../../etc/apt/sources.list".into(),
            media_type: "text/plain".into(),
            content: String::new(),
        })
    }
}

#[cfg(target_arch = "wasm32")]
repod_family_sdk::export_family!(Hostile);
