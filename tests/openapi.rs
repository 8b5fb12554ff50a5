//! The OpenAPI document served at /api/v1/openapi.json matches the API:
//! every route is documented, and every documented operation is routed.

use repod_tests::Daemon;

/// Every `/api/v1` operation, as the other tests exercise them.
const ROUTES: [(&str, &str); 41] = [
    ("get", "/plugins"),
    ("post", "/plugins"),
    ("post", "/plugins/reload"),
    ("delete", "/plugins/{name}"),
    ("get", "/distributions"),
    ("get", "/distributions/{id}"),
    ("post", "/distributions/{id}/compare-versions"),
    ("post", "/distributions/{id}/publish"),
    ("get", "/distributions/{id}/client-config"),
    ("put", "/distributions/{id}/comps"),
    ("get", "/distributions/{id}/comps"),
    ("delete", "/distributions/{id}/comps"),
    ("get", "/distributions/{id}/packages"),
    ("post", "/distributions/promote"),
    ("post", "/distributions/migrate"),
    ("post", "/distributions/init"),
    ("get", "/distributions/{id}/versions"),
    ("get", "/distributions/{id}/versions/{number}"),
    ("post", "/distributions/{id}/rollback"),
    ("post", "/packages"),
    ("get", "/packages"),
    ("get", "/packages/{id}"),
    ("delete", "/packages/{id}"),
    ("post", "/tokens"),
    ("get", "/tokens"),
    ("delete", "/tokens/{id}"),
    ("get", "/audit"),
    ("post", "/advisories"),
    ("get", "/advisories"),
    ("get", "/advisories/imports"),
    ("get", "/advisories/{id}"),
    ("get", "/packages/{id}/scan"),
    ("get", "/scans"),
    ("post", "/scans/rescan"),
    ("post", "/packages/{id}/decision"),
    ("get", "/distributions/{id}/vex"),
    ("post", "/advisories/sync"),
    ("get", "/advisories/feeds"),
    ("get", "/whoami"),
    ("get", "/overview"),
    ("get", "/packages/{id}/details"),
];

#[test]
fn every_route_is_in_the_openapi_document_and_back() {
    let daemon = Daemon::start();
    let doc = daemon.get("/api/v1/openapi.json", None);
    assert_eq!(doc.status, 200, "{doc:?}");
    assert!(doc.body["openapi"].as_str().unwrap().starts_with("3."));
    let paths = doc.body["paths"].as_object().unwrap();

    let mut documented = Vec::new();
    for (path, ops) in paths {
        for method in ops.as_object().unwrap().keys() {
            documented.push((method.clone(), path.clone()));
        }
    }
    for (method, path) in ROUTES {
        let op = &doc.body["paths"][path][method];
        assert!(op.is_object(), "{method} {path} is not documented");
        assert!(
            !op["summary"].as_str().unwrap_or("").is_empty(),
            "{method} {path} has no summary"
        );
        assert!(
            op["security"].is_array(),
            "{method} {path} does not say it needs a token"
        );
    }
    assert_eq!(documented.len(), ROUTES.len(), "documented: {documented:?}");
    assert!(doc.body["components"]["securitySchemes"]["bearer"].is_object());

    // Each documented operation reaches a handler: without a token the
    // handler's auth answers 401, where an unknown route would be a 404.
    for (method, path) in &documented {
        let concrete = format!(
            "/api/v1{}",
            path.replace("{id}", "x")
                .replace("{name}", "x")
                .replace("{number}", "1")
        );
        let reply = match method.as_str() {
            "get" => daemon.get(&concrete, None),
            "delete" => daemon.delete(&concrete, None),
            "put" => daemon.put_bytes(&concrete, None, b"<comps/>".to_vec()),
            _ => daemon.post_json(&concrete, None, serde_json::json!({})),
        };
        assert_eq!(reply.status, 401, "{method} {concrete}: {reply:?}");
    }
    assert!(
        daemon
            .get("/api/v1/nothing-here", None)
            .problem(404)
            .contains("no such API route")
    );
}
