//! /repos/ serves the published trees: anonymously by default, behind a
//! reader token when `repos-require-token = true`, and never a file outside
//! the tree.

use repod_tests::Daemon;

fn place(daemon: &Daemon) {
    let repos = daemon.data.path().join("repos");
    std::fs::create_dir_all(repos.join("dists")).unwrap();
    std::fs::write(repos.join("dists/hello.txt"), "hello\n").unwrap();
}

#[test]
fn repos_are_anonymous_by_default_and_never_escape() {
    let daemon = Daemon::start();
    place(&daemon);
    let got = daemon.get("/repos/dists/hello.txt", None);
    assert_eq!((got.status, got.body.as_str()), (200, Some("hello\n")));
    assert_eq!(daemon.get("/repos/dists/missing", None).status, 404);

    let secret = std::fs::read(daemon.data.path().join("repod.db")).unwrap();
    for target in [
        "/repos/../repod.db",
        "/repos/dists/../../repod.db",
        "/repos/%2e%2e/repod.db",
        "/repos/dists/%2e%2e%2f%2e%2e%2frepod.db",
        "/repos/..%2frepod.db",
        "/repos//etc/passwd",
    ] {
        let (status, body) = daemon.raw_get(target);
        assert!(matches!(status, 400 | 404), "{target}: {status}");
        assert!(
            !body.windows(16).any(|w| w == &secret[..16]),
            "{target} leaked the database"
        );
        assert!(
            !String::from_utf8_lossy(&body).contains("root:x:0:0"),
            "{target} leaked /etc/passwd"
        );
    }
}

#[test]
fn a_config_switch_makes_repos_need_a_reader_token() {
    let daemon = Daemon::builder()
        .config("repos-require-token = true\n")
        .start();
    place(&daemon);
    let anonymous = daemon.get("/repos/dists/hello.txt", None);
    assert!(anonymous.problem(401).contains("bearer token"));
    let reader = daemon.token("reader", "apt-client");
    let got = daemon.get("/repos/dists/hello.txt", Some(&reader));
    assert_eq!((got.status, got.body.as_str()), (200, Some("hello\n")));
    assert!(
        daemon
            .get("/repos/dists/hello.txt", Some("repod_nope"))
            .problem(401)
            .contains("unknown")
    );
}
