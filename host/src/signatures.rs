//! Which RPM signatures a distribution requires (Koji's `dist-repo` keys):
//! its family plugin declares them per distribution in
//! `distribution.extensions` (`repod.require-signatures`: key IDs or
//! fingerprints, comma-separated; `repod.missing-signatures`: `refuse`,
//! `allow` or `skip`), and the host, which reads each RPM's header signature, checks
//! them wherever a package enters a distribution (upload, promotion,
//! migration); under `skip` such packages are taken and the publish leaves
//! them out of the indexes (`publish::snapshot::unlisted`), so a package
//! signed later, or a changed requirement, shows at the next publish. The
//! check is of the signature's *claimed* issuer: clients verify the
//! signature itself against the keys they trust.

use crate::plugins::contract::{Distribution, extension};

pub const REQUIRE: &str = "repod.require-signatures";
/// `true`: the host signs the distribution's RPMs with the repository key
/// (a signed copy is published; the upload is kept next to it).
pub const SIGN: &str = "repod.sign-packages";

/// Whether `dist` has the host sign its RPMs.
pub fn signs(dist: &Distribution) -> bool {
    extension(&dist.extensions, SIGN) == Some("true")
}
pub const MISSING: &str = "repod.missing-signatures";

/// A distribution's signature requirement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Requirement {
    /// Lowercase hex key IDs or fingerprints, in the config's order.
    pub keys: Vec<String>,
    /// What happens to unsigned and otherwise-signed RPMs.
    pub missing: Missing,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Missing {
    /// Refused where they would enter the distribution.
    Refuse,
    /// Taken and published (Koji's `--allow-missing-signatures`).
    Allow,
    /// Taken, but left out of the published tree's indexes (Koji's
    /// `--skip-missing-signatures`): the next publish lists them if the
    /// requirement changes.
    Skip,
}

/// The requirement `dist` declares, if any.
pub fn of(dist: &Distribution) -> Option<Requirement> {
    let get = |key: &str| extension(&dist.extensions, key);
    let keys: Vec<String> = get(REQUIRE)?
        .split(',')
        .map(|k| k.trim().to_ascii_lowercase())
        .filter(|k| !k.is_empty())
        .collect();
    (!keys.is_empty()).then(|| Requirement {
        keys,
        missing: match get(MISSING) {
            Some("allow") => Missing::Allow,
            Some("skip") => Missing::Skip,
            _ => Missing::Refuse,
        },
    })
}

impl Requirement {
    /// Whether a key ID (16 hex digits) is one of the required keys: equal
    /// to a listed key ID, or the last 16 digits of a listed v4 fingerprint
    /// (the first 16 of a v6 one).
    pub fn trusts(&self, key_id: &str) -> bool {
        let id = key_id.to_ascii_lowercase();
        self.keys.iter().any(|k| match k.len() {
            40 => k.ends_with(&id),
            64 => k.starts_with(&id),
            _ => *k == id,
        })
    }

    /// `Ok` if a package signed by `key_id` (`None`: unsigned) may enter
    /// `dist`; else what to tell the uploader.
    pub fn check(&self, dist: &str, package: &str, key_id: Option<&str>) -> Result<(), String> {
        if self.missing != Missing::Refuse || key_id.is_some_and(|id| self.trusts(id)) {
            return Ok(());
        }
        let keys = self.keys.join(", ");
        Err(match key_id {
            None => format!(
                "{dist} requires packages signed by one of the keys {keys}, and {package} is \
                 not signed: sign it (rpmsign --addsign) with one of them and upload it again"
            ),
            Some(id) => format!(
                "{dist} requires packages signed by one of the keys {keys}, and {package} is \
                 signed by key {id}: sign it with one of them, or add {id} to the \
                 distribution's require-signatures"
            ),
        })
    }
}

/// `Ok` if an RPM (`format`) signed by `key_id` may enter `dist` (or `dist`
/// requires nothing, or the package is no RPM); else the uploader's message.
/// A distribution that signs its RPMs takes only copies the repository key
/// (`ours`) signed: an upload is signed before this check, a promotion is
/// not (the target would publish other bytes than the source's).
pub fn admit(
    registry: &crate::plugins::Registry,
    dist: &str,
    format: &str,
    package: &str,
    key_id: Option<&str>,
    ours: &str,
) -> Result<(), String> {
    if format != "rpm" {
        return Ok(());
    }
    let Some((_, d)) = registry.distribution(dist) else {
        return Ok(());
    };
    if signs(d) && key_id != Some(ours) {
        return Err(format!(
            "{dist} publishes RPMs signed by the repository key (sign-packages), and {package} \
             is not signed by it: upload it to {dist}, which signs it, or promote it from a \
             distribution that signs too"
        ));
    }
    match of(d) {
        Some(requirement) => requirement.check(dist, package, key_id),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn requirement(keys: &[&str], allow_missing: bool) -> Requirement {
        Requirement {
            keys: keys.iter().map(|k| (*k).to_owned()).collect(),
            missing: if allow_missing {
                Missing::Allow
            } else {
                Missing::Refuse
            },
        }
    }

    #[test]
    fn key_ids_match_ids_and_fingerprints() {
        let r = requirement(
            &[
                "199e2f91fd431d51",
                "427f73474edfc6e35b4f67f7accbbd2ba2d84479",
            ],
            false,
        );
        assert!(r.trusts("199E2F91FD431D51"));
        assert!(r.trusts("accbbd2ba2d84479"));
        assert!(!r.trusts("427f73474edfc6e3"));
        assert!(r.check("el9", "x", Some("accbbd2ba2d84479")).is_ok());
        let unsigned = r.check("el9", "hello-1.0-1.x86_64", None).unwrap_err();
        assert!(unsigned.contains("is not signed"), "{unsigned}");
        let foreign = r
            .check("el9", "hello", Some("0123456789abcdef"))
            .unwrap_err();
        assert!(
            foreign.contains("signed by key 0123456789abcdef"),
            "{foreign}"
        );
        assert!(
            requirement(&["199e2f91fd431d51"], true)
                .check("el9", "x", None)
                .is_ok()
        );
    }
}
