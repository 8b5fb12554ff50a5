//! The apt source entry a person drops into `/etc/apt/sources.list.d/`.
//!
//! deb822 `.sources` files (apt ≥ 1.1) are used rather than one-line
//! `sources.list` entries because they carry `Signed-By` cleanly, which pins
//! the repository to its own key instead of trusting it system-wide.

use repod_family_sdk::{ClientConfig, Distribution};

use crate::config::Settings;

/// Where the instructions put the repository key; `Signed-By` points here.
pub const KEYRING_PATH: &str = "/etc/apt/keyrings/repod.asc";

pub fn render_client_config(
    dist: &Distribution,
    base_url: &str,
    key_url: &str,
) -> Result<ClientConfig, String> {
    let settings = Settings::of(dist)?;
    for (what, url) in [("base URL", base_url), ("key URL", key_url)] {
        if url.is_empty() || url.contains(|c: char| c.is_whitespace() || c.is_control()) {
            return Err(format!(
                "the {what} {url:?} cannot go into an apt source: it must be non-empty, without \
                 spaces or line breaks"
            ));
        }
    }
    // A pinned source reads one version's tree, which stays as it is.
    let (name, pinned) = match repod_family_sdk::pinned_version(dist) {
        Some(n) => (
            format!("repod-{}-v{n}", dist.id),
            format!(
                ", version {n} (pinned: later changes to {} do not show here)",
                dist.id
            ),
        ),
        None => (format!("repod-{}", dist.id), String::new()),
    };
    let content = format!(
        "# {display} ({id}){pinned} from repod.\n\
         # Fetch the repository's signing key first:\n\
         #   sudo install -d -m 0755 /etc/apt/keyrings\n\
         #   curl -fsSL {key_url} | sudo tee {KEYRING_PATH} >/dev/null\n\
         # then save this file as /etc/apt/sources.list.d/{name}.sources and run `sudo apt update`.\n\
         Types: deb\n\
         URIs: {base_url}\n\
         Suites: {suite}\n\
         Components: {components}\n\
         Signed-By: {KEYRING_PATH}\n",
        // Comments are one line each, whatever the display name holds.
        display = dist.display_name.replace(char::is_control, " "),
        id = dist.id,
        suite = settings.suite,
        components = dist.components.join(" "),
    );
    Ok(ClientConfig {
        filename: format!("{name}.sources"),
        media_type: "text/plain".into(),
        content,
    })
}
