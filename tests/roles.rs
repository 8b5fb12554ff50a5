//! The role matrix: every `/api/v1` route, called with no token, a forged
//! token, and a token of each role. Below the route's role: 401 or 403 with
//! a problem. At or above: never 401/403.

use repod_tests::{Daemon, Reply, fixtures, wasm};
use serde_json::json;

const ROLES: [&str; 4] = ["reader", "uploader", "maintainer", "admin"];

#[test]
fn every_route_with_every_role() {
    let daemon = Daemon::start();
    let tokens: Vec<String> = ROLES
        .iter()
        .map(|r| daemon.token(r, &format!("matrix-{r}")))
        .collect();
    let dir = tempfile::tempdir().unwrap();
    let deb = std::fs::read(fixtures::deb(dir.path(), "matrix", "1.0", "all", "", "m")).unwrap();
    let trixie = std::fs::read(wasm("trixie_plugin")).unwrap();

    // (method, path, weakest role index)
    let routes: [(&str, &str, usize); 38] = [
        ("GET", "/api/v1/plugins", 0),
        ("POST", "/api/v1/plugins", 3),
        ("POST", "/api/v1/plugins/reload", 3),
        ("DELETE", "/api/v1/plugins/no-such-plugin", 3),
        ("GET", "/api/v1/distributions", 0),
        ("GET", "/api/v1/distributions/jammy", 0),
        ("POST", "/api/v1/distributions/jammy/compare-versions", 0),
        ("POST", "/api/v1/distributions/jammy/publish", 1),
        ("GET", "/api/v1/distributions/jammy/client-config", 0),
        ("GET", "/api/v1/distributions/jammy/packages", 0),
        ("POST", "/api/v1/distributions/promote", 2),
        ("POST", "/api/v1/distributions/migrate", 2),
        ("POST", "/api/v1/distributions/init", 3),
        ("GET", "/api/v1/distributions/jammy/versions", 0),
        ("GET", "/api/v1/distributions/jammy/versions/1", 0),
        ("POST", "/api/v1/distributions/jammy/rollback", 2),
        ("POST", "/api/v1/packages?distribution=bookworm", 1),
        ("GET", "/api/v1/packages", 0),
        ("GET", "/api/v1/packages/no-such-id", 0),
        ("DELETE", "/api/v1/packages/no-such-id", 2),
        ("POST", "/api/v1/tokens", 3),
        ("GET", "/api/v1/tokens", 3),
        ("DELETE", "/api/v1/tokens/no-such-id", 3),
        ("GET", "/api/v1/audit", 3),
        ("POST", "/api/v1/advisories", 3),
        ("GET", "/api/v1/advisories", 0),
        ("GET", "/api/v1/advisories/imports", 0),
        ("GET", "/api/v1/advisories/NO-SUCH-1", 0),
        ("GET", "/api/v1/packages/no-such-id/scan", 0),
        ("GET", "/api/v1/scans", 0),
        ("POST", "/api/v1/scans/rescan", 3),
        ("POST", "/api/v1/packages/no-such-id/decision", 2),
        ("GET", "/api/v1/distributions/jammy/vex", 0),
        ("POST", "/api/v1/advisories/sync", 3),
        ("GET", "/api/v1/advisories/feeds", 0),
        ("PUT", "/api/v1/distributions/almalinux9/comps", 2),
        ("GET", "/api/v1/distributions/almalinux9/comps", 0),
        ("DELETE", "/api/v1/distributions/almalinux9/comps", 2),
    ];
    let mut created_tokens = 0;
    let mut call = |method: &str, path: &str, token: Option<&str>, allowed: bool| -> Reply {
        match (method, path) {
            ("GET", _) => daemon.get(path, token),
            ("DELETE", _) => daemon.delete(path, token),
            ("PUT", _) => daemon.put_bytes(path, token, b"<comps/>".to_vec()),
            // A refused upload is answered before its body is read (and the
            // connection closed), so only allowed callers send a large body.
            ("POST", "/api/v1/plugins") => daemon.post_bytes(
                path,
                token,
                if allowed {
                    trixie.clone()
                } else {
                    trixie[..512].to_vec()
                },
            ),
            ("POST", p) if p.starts_with("/api/v1/packages") => daemon.upload(p, token, &deb),
            ("POST", "/api/v1/tokens") => {
                created_tokens += 1;
                daemon.post_json(
                    path,
                    token,
                    json!({"name": format!("made-{created_tokens}"), "role": "reader"}),
                )
            }
            ("POST", p) if p.ends_with("compare-versions") => {
                daemon.post_json(path, token, json!({"pairs": [["1", "2"]]}))
            }
            _ => daemon.post_json(path, token, json!({})),
        }
    };
    for (method, path, weakest) in routes {
        assert!(
            call(method, path, None, false)
                .problem(401)
                .contains("bearer token"),
            "{method} {path}"
        );
        assert!(
            call(method, path, Some("repod_forged"), false)
                .problem(401)
                .contains("unknown"),
            "{method} {path}"
        );
        for (i, token) in tokens.iter().enumerate() {
            let allowed = i >= weakest;
            let reply = call(method, path, Some(token), allowed);
            if allowed {
                assert!(
                    ![401, 403].contains(&reply.status),
                    "{method} {path} as {}: {reply:?}",
                    ROLES[i]
                );
                assert!(
                    reply.status < 500,
                    "{method} {path} as {}: {reply:?}",
                    ROLES[i]
                );
            } else {
                let detail = reply.problem(403);
                assert!(
                    detail.contains(&format!("needs the {} role", ROLES[weakest])),
                    "{detail}"
                );
                assert!(detail.contains(&format!("has {}", ROLES[i])), "{detail}");
            }
        }
    }
}
