//! Multilib, as Koji's `dist-repo` and mash do it: 32-bit x86 (`i686`)
//! packages listed in the `x86_64` repository too, so that dnf on x86_64
//! installs a 32-bit library next to the 64-bit one. Which i686 packages,
//! per distribution (`multilib` in the config; the distribution must list
//! both `i686` and `x86_64` among its architectures):
//!
//! - `"none"` (the default): none; `"all"`: every one;
//! - `"runtime"`: those with a shared library (`*.so*`) in a 32-bit library
//!   directory (`/lib/`, `/usr/lib/`), mash's runtime method;
//! - `"devel"`: the runtime ones and every `-devel` package;
//! - a list of names, where `*` matches any run of characters
//!   (`["glibc", "lib*"]`).
//!
//! The i686 package keeps its own repository too (`<id>/i686/`).

use crate::sdk::{Distribution, RpmFileKind, RpmPackage};

/// `Distribution.settings` key holding the policy ([`Policy::setting`]).
pub(crate) const SETTING: &str = "multilib";

/// (64-bit repository, the 32-bit architecture it may carry).
const PAIRS: &[(&str, &str)] = &[("x86_64", "i686")];

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Policy {
    None,
    All,
    Runtime,
    Devel,
    Names(Vec<String>),
}

impl Policy {
    /// From the config: a word or a list of names.
    pub(crate) fn from_config(value: &serde_json::Value) -> Result<Policy, String> {
        match value {
            serde_json::Value::String(word) => match word.as_str() {
                "none" => Ok(Policy::None),
                "all" => Ok(Policy::All),
                "runtime" => Ok(Policy::Runtime),
                "devel" => Ok(Policy::Devel),
                other => Err(format!(
                    "{other:?} is not \"none\", \"all\", \"runtime\", \"devel\" or a list of \
                     package names"
                )),
            },
            serde_json::Value::Array(items) => items
                .iter()
                .map(|item| match item.as_str() {
                    Some(name)
                        if !name.is_empty()
                            && !name.contains(',')
                            && name.bytes().all(|b| b.is_ascii_graphic()) =>
                    {
                        Ok(name.to_owned())
                    }
                    _ => Err(format!("{item} is not a package name (or a * pattern)")),
                })
                .collect::<Result<_, _>>()
                .map(Policy::Names),
            other => Err(format!("{other} is not a word or a list of names")),
        }
    }

    /// The setting `describe` stores; `None` for [`Policy::None`].
    pub(crate) fn setting(&self) -> Option<String> {
        match self {
            Policy::None => None,
            Policy::All => Some("all".into()),
            Policy::Runtime => Some("runtime".into()),
            Policy::Devel => Some("devel".into()),
            Policy::Names(names) => Some(format!("names:{}", names.join(","))),
        }
    }

    fn from_setting(value: Option<&str>) -> Policy {
        match value {
            Some("all") => Policy::All,
            Some("runtime") => Policy::Runtime,
            Some("devel") => Policy::Devel,
            Some(v) if v.starts_with("names:") => {
                Policy::Names(v[6..].split(',').map(str::to_owned).collect())
            }
            _ => Policy::None,
        }
    }

    fn takes(&self, rpm: &RpmPackage) -> bool {
        match self {
            Policy::None => false,
            Policy::All => true,
            Policy::Runtime => has_32bit_library(rpm),
            Policy::Devel => has_32bit_library(rpm) || rpm.name.ends_with("-devel"),
            Policy::Names(patterns) => patterns.iter().any(|p| wildcard(p, &rpm.name)),
        }
    }
}

/// The architectures a distribution needs for multilib.
pub(crate) fn check(policy: &Policy, architectures: &[String]) -> Result<(), String> {
    if *policy == Policy::None {
        return Ok(());
    }
    for (wide, narrow) in PAIRS {
        if !architectures.iter().any(|a| a == wide) || !architectures.iter().any(|a| a == narrow) {
            return Err(format!(
                "multilib needs both {wide} and {narrow} in architectures (has {})",
                architectures.join(", ")
            ));
        }
    }
    Ok(())
}

/// The 64-bit repositories `rpm` also goes into under `dist`'s policy.
pub(crate) fn also_in<'a>(dist: &Distribution, rpm: &RpmPackage) -> Vec<&'a str> {
    let policy = Policy::from_setting(crate::setting(dist, SETTING));
    PAIRS
        .iter()
        .filter(|(wide, narrow)| {
            rpm.arch == *narrow && dist.architectures.iter().any(|a| a == wide)
        })
        .filter(|_| policy.takes(rpm))
        .map(|(wide, _)| *wide)
        .collect()
}

fn has_32bit_library(rpm: &RpmPackage) -> bool {
    rpm.files.iter().any(|f| {
        f.kind == RpmFileKind::File
            && ["/lib/", "/usr/lib/"].iter().any(|dir| {
                f.path
                    .strip_prefix(dir)
                    .is_some_and(|rest| !rest.contains('/') && rest.contains(".so"))
            })
    })
}

/// `pattern` with `*` matching any run of characters (a few lines, not a
/// glob crate: package names need nothing more).
fn wildcard(pattern: &str, name: &str) -> bool {
    match pattern.split_once('*') {
        None => pattern == name,
        Some((head, tail)) => {
            let Some(rest) = name.strip_prefix(head) else {
                return false;
            };
            (0..=rest.len())
                .filter(|&i| rest.is_char_boundary(i))
                .any(|i| wildcard(tail, &rest[i..]))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn wildcards() {
        assert!(wildcard("lib*", "libfoo"));
        assert!(wildcard("*-devel", "glibc-devel"));
        assert!(wildcard("glibc", "glibc"));
        assert!(!wildcard("glibc", "glibc-devel"));
        assert!(wildcard("a*b*c", "aXbYc"));
        assert!(!wildcard("a*b", "aXc"));
    }

    #[test]
    fn config_words_and_lists() {
        assert_eq!(
            Policy::from_config(&json!("runtime")).unwrap(),
            Policy::Runtime
        );
        assert_eq!(
            Policy::from_config(&json!(["glibc", "lib*"])).unwrap(),
            Policy::Names(vec!["glibc".into(), "lib*".into()])
        );
        assert!(Policy::from_config(&json!("some")).is_err());
        assert!(Policy::from_config(&json!(["a,b"])).is_err());
        assert!(Policy::from_config(&json!(3)).is_err());
        let names = Policy::Names(vec!["glibc".into(), "lib*".into()]);
        assert_eq!(Policy::from_setting(names.setting().as_deref()), names);
        assert!(check(&Policy::All, &["x86_64".into(), "noarch".into()]).is_err());
        assert!(check(&Policy::All, &["x86_64".into(), "i686".into()]).is_ok());
        assert!(check(&Policy::None, &[]).is_ok());
    }
}
