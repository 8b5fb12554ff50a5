//! Client setup snippets.
//!
//! Both point the client at `<base-url>/<id>/$basearch`: dnf and libzypp
//! both expand `$basearch` in repository URLs (checked with zypper 1.14.42 /
//! libzypp 17.25.7: `zypper lr -u` shows `.../x86_64`), so one snippet serves
//! every architecture. Both turn on repository signature checking with the
//! key pinned up front, never trust-on-first-use.

use crate::ClientStyle;
use crate::sdk::{ClientConfig, Distribution};

/// URLs end up in an ini file and a shell command line: refuse anything
/// that could break out of either.
fn check_url(what: &str, url: &str) -> Result<(), String> {
    if url.is_empty() {
        return Err(format!("the {what} is empty"));
    }
    if url.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(format!(
            "the {what} {url:?} contains whitespace or control characters"
        ));
    }
    Ok(())
}

/// Quotes for a POSIX shell: inside single quotes nothing is special except
/// the quote itself, written as `'\''`. Also keeps `$basearch` for zypper.
fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "'\\''"))
}

pub(crate) fn render(
    style: ClientStyle,
    dist: &Distribution,
    base_url: &str,
    key_url: &str,
) -> Result<ClientConfig, String> {
    check_url("base URL", base_url)?;
    check_url("key URL", key_url)?;
    let id = &dist.id;
    let url = format!("{}/{id}/$basearch", base_url.trim_end_matches('/'));
    // The display name comes from config, which refuses control characters;
    // a name line cannot be split. A pinned source reads one version's
    // tree, which stays as it is; its own id lets it sit beside the live one.
    let (repo_id, name) = match repod_family_sdk::pinned_version(dist) {
        Some(n) => (
            format!("repod-{id}-v{n}"),
            format!("{} (repod, version {n})", dist.display_name),
        ),
        None => (
            format!("repod-{id}"),
            format!("{} (repod)", dist.display_name),
        ),
    };
    // Debuginfo repositories (split-debuginfo) are listed, disabled: a
    // developer turns one on to debug (`dnf --enablerepo=...-debuginfo`).
    let debug = crate::splits_debuginfo(dist);
    Ok(match style {
        ClientStyle::Dnf => ClientConfig {
            filename: format!("{repo_id}.repo"),
            media_type: "text/plain".to_owned(),
            content: {
                let section = |id: &str, name: &str, url: &str, enabled: u8| {
                    format!(
                        "[{id}]\n\
                         name={name}\n\
                         baseurl={url}\n\
                         enabled={enabled}\n\
                         gpgcheck=1\n\
                         repo_gpgcheck=1\n\
                         gpgkey={key_url}\n"
                    )
                };
                let mut content = section(&repo_id, &name, &url, 1);
                if debug {
                    content.push('\n');
                    content.push_str(&section(
                        &format!("{repo_id}-debuginfo"),
                        &format!("{name} - debuginfo"),
                        &format!("{url}/debug"),
                        0,
                    ));
                }
                content
            },
        },
        ClientStyle::Zypper => ClientConfig {
            filename: format!("{repo_id}.sh"),
            media_type: "text/x-shellscript".to_owned(),
            content: format!(
                "#!/bin/sh\n\
                 # Adds the repod repository for {display}. Run as root.\n\
                 set -e\n\
                 rpm --import {key}\n\
                 zypper addrepo --refresh --name {quoted_name} {quoted_url} {repo_id}\n\
                 {debug_repo}\
                 zypper refresh {repo_id}\n",
                display = dist.display_name,
                key = shell_quote(key_url),
                quoted_name = shell_quote(&name),
                quoted_url = shell_quote(&url),
                debug_repo = if debug {
                    format!(
                        "zypper addrepo --refresh --disable --name {} {} {repo_id}-debuginfo\n",
                        shell_quote(&format!("{name} - debuginfo")),
                        shell_quote(&format!("{url}/debug")),
                    )
                } else {
                    String::new()
                },
            ),
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::prepare::tests::alma9;

    #[test]
    fn dnf_repo_file() {
        let config = render(
            ClientStyle::Dnf,
            &alma9(),
            "https://repo.example.test/repos/",
            "https://repo.example.test/key.asc",
        )
        .unwrap();
        assert_eq!(config.filename, "repod-almalinux9.repo");
        assert_eq!(config.media_type, "text/plain");
        assert!(
            config
                .content
                .contains("baseurl=https://repo.example.test/repos/almalinux9/$basearch\n")
        );
    }

    #[test]
    fn split_debuginfo_adds_a_disabled_repository() {
        let mut dist = alma9();
        dist.settings
            .push((crate::SPLIT_DEBUGINFO.to_owned(), "true".to_owned()));
        let dnf = render(
            ClientStyle::Dnf,
            &dist,
            "https://r.test/repos",
            "https://r.test/k.asc",
        )
        .unwrap();
        assert!(
            dnf.content.contains(
                "\n[repod-almalinux9-debuginfo]\nname=AlmaLinux 9 (repod) - debuginfo\n\
                 baseurl=https://r.test/repos/almalinux9/$basearch/debug\nenabled=0\n"
            ),
            "{}",
            dnf.content
        );
        let zypper = render(
            ClientStyle::Zypper,
            &dist,
            "https://r.test/repos",
            "https://r.test/k.asc",
        )
        .unwrap();
        assert!(
            zypper.content.contains(
                "zypper addrepo --refresh --disable --name 'AlmaLinux 9 (repod) - debuginfo' \
                 'https://r.test/repos/almalinux9/$basearch/debug' repod-almalinux9-debuginfo\n"
            ),
            "{}",
            zypper.content
        );
    }

    #[test]
    fn a_pinned_repo_has_its_own_id() {
        let mut dist = alma9();
        dist.extensions
            .push((repod_family_sdk::PINNED_VERSION.into(), "3".into()));
        let config = render(
            ClientStyle::Dnf,
            &dist,
            "https://repo.example.test/repos/versions/almalinux9/3",
            "https://repo.example.test/key.asc",
        )
        .unwrap();
        assert_eq!(config.filename, "repod-almalinux9-v3.repo");
        assert!(
            config.content.starts_with("[repod-almalinux9-v3]\nname=AlmaLinux 9 (repod, version 3)\n")
                && config.content.contains(
                    "baseurl=https://repo.example.test/repos/versions/almalinux9/3/almalinux9/$basearch\n"
                ),
            "{}",
            config.content
        );
    }

    #[test]
    fn zypper_snippet_quotes_for_the_shell() {
        let config = render(
            ClientStyle::Zypper,
            &alma9(),
            "https://repo.example.test/it's",
            "https://repo.example.test/key.asc",
        )
        .unwrap();
        assert!(
            config
                .content
                .contains("'https://repo.example.test/it'\\''s/almalinux9/$basearch'"),
            "{}",
            config.content
        );
    }

    #[test]
    fn urls_cannot_inject_lines() {
        let err = render(
            ClientStyle::Dnf,
            &alma9(),
            "https://x\ngpgcheck=0",
            "https://k",
        )
        .unwrap_err();
        assert!(
            err.contains("contains whitespace or control characters"),
            "{err}"
        );
        assert!(render(ClientStyle::Dnf, &alma9(), "https://x", "").is_err());
    }
}
