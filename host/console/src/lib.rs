//! The web console: a few static files compiled into the daemon and served
//! at `/` and `/console/*`. The pages hold no server-side state and have no
//! powers of their own: the script in them calls `/api/v1` with the bearer
//! token the person signed in with (kept in the tab's `sessionStorage`),
//! exactly as the CLI does. With no cookie there is nothing a cross-site
//! request could ride on, so CSRF is impossible by construction.
//!
//! Every response of the console carries [`SECURITY_HEADERS`]: a strict
//! Content-Security-Policy (only this origin's script and style, no inline
//! script, no framing), no MIME sniffing, no referrer.

use axum::Router;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

/// The Content-Security-Policy of every console response. The pages load
/// `/console/app.js` and `/console/style.css`, talk to `/api/v1` on the same
/// origin, and nothing else.
/// Trusted Types make the browser itself refuse any string written as
/// HTML (`innerHTML` and kin), the rule `dom.js` follows by hand.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; \
     style-src 'self'; img-src 'self'; connect-src 'self'; form-action 'none'; \
     frame-ancestors 'none'; base-uri 'none'; require-trusted-types-for 'script'";

/// The Content-Security-Policy of every response that is not the console's
/// (published files, API answers): a document opened from one (a comps.xml
/// with a script in it, say) runs sandboxed, in an opaque origin that
/// cannot read the console's token from the tab's storage. apt, dnf and
/// zypper ignore it.
pub const ELSEWHERE_POLICY: &str = "sandbox; default-src 'none'";

/// Headers on every console response, the CSP first.
pub const SECURITY_HEADERS: [(header::HeaderName, &str); 5] = [
    (header::CONTENT_SECURITY_POLICY, CONTENT_SECURITY_POLICY),
    (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
    (header::REFERRER_POLICY, "no-referrer"),
    (header::X_FRAME_OPTIONS, "DENY"),
    // Small files that change with the daemon: revalidate, never stale.
    (header::CACHE_CONTROL, "no-cache"),
];

/// The console's files, by the name they are served under.
const ASSETS: &[(&str, &str, &str)] = &[
    (
        "app.js",
        "text/javascript; charset=utf-8",
        include_str!("../assets/app.js"),
    ),
    (
        "dom.js",
        "text/javascript; charset=utf-8",
        include_str!("../assets/dom.js"),
    ),
    (
        "views.js",
        "text/javascript; charset=utf-8",
        include_str!("../assets/views.js"),
    ),
    (
        "style.css",
        "text/css; charset=utf-8",
        include_str!("../assets/style.css"),
    ),
];

const INDEX: &str = include_str!("../assets/index.html");

fn respond(status: StatusCode, content_type: &'static str, body: &'static str) -> Response {
    (
        status,
        SECURITY_HEADERS,
        [(header::CONTENT_TYPE, content_type)],
        body,
    )
        .into_response()
}

async fn index() -> Response {
    respond(StatusCode::OK, "text/html; charset=utf-8", INDEX)
}

async fn asset(axum::extract::Path(name): axum::extract::Path<String>) -> Response {
    match ASSETS.iter().find(|(n, _, _)| *n == name) {
        Some((_, content_type, body)) => respond(StatusCode::OK, content_type, body),
        None => respond(
            StatusCode::NOT_FOUND,
            "text/plain; charset=utf-8",
            "no such console file\n",
        ),
    }
}

/// `/` and `/console/{file}`, for any router state.
pub fn router<S: Clone + Send + Sync + 'static>() -> Router<S> {
    Router::new()
        .route("/", get(index))
        .route("/console/{file}", get(asset))
}

/// Bytes the browser loads for the first page: the HTML and every asset.
pub fn first_page_bytes() -> usize {
    INDEX.len() + ASSETS.iter().map(|(_, _, body)| body.len()).sum::<usize>()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_page_is_under_100_kb() {
        assert!(first_page_bytes() < 100_000, "{} bytes", first_page_bytes());
    }

    #[test]
    fn no_html_from_strings_and_no_inline_script() {
        // Trusted Types would make these throw at run time; finding one here
        // is cheaper than finding a page that silently does nothing.
        let sinks = [
            "innerHTML",
            "outerHTML",
            "insertAdjacentHTML",
            "document.write",
            "DOMParser",
            "createContextualFragment",
            "eval(",
            "new Function",
        ];
        for (name, _, body) in ASSETS {
            for sink in sinks {
                assert!(!body.contains(sink), "{name} uses {sink}");
            }
        }
        // Every script element loads a file (the CSP blocks inline ones).
        for tag in INDEX.split("<script").skip(1) {
            let tag = &tag[..tag.find('>').unwrap()];
            assert!(
                tag.contains(" src=\"/console/"),
                "inline script in index.html"
            );
        }
        assert!(!INDEX.contains(" style="), "inline style in index.html");
        let handler = INDEX.split(" on").skip(1).find(|rest| {
            let name: String = rest.chars().take_while(char::is_ascii_alphabetic).collect();
            !name.is_empty() && rest[name.len()..].starts_with('=')
        });
        assert!(handler.is_none(), "inline event handler in index.html");
    }
}
