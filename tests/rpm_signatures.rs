//! Koji `dist-repo` settings of the el family, end to end.
//!
//! Signed packages by key ID: the host records each RPM's header signature
//! (the API shows it), and a distribution whose plugin config lists
//! `require-signatures` refuses unsigned and otherwise-signed RPMs at
//! upload, promotion and migration, unless it has `missing-signatures =
//! "allow"`. Packages are signed with stock rpmsign and gpg keys. Bad
//! signature and multilib settings are config errors (multilib itself is
//! in rpm_e2e.rs, with dnf).

use repod_tests::rpm::{Dnf, Signer, ok};
use repod_tests::{Daemon, fixtures};
use serde_json::{Value, json};

fn upload(daemon: &Daemon, token: &str, dist: &str, file: &std::path::Path) -> repod_tests::Reply {
    daemon.upload(
        &format!("/api/v1/packages?distribution={dist}"),
        Some(token),
        &std::fs::read(file).unwrap(),
    )
}

#[test]
fn required_keys_refuse_unsigned_and_foreign_signed_rpms() {
    let trusted = Signer::new();
    let foreign = Signer::new();
    let key_id = |s: &Signer| s.fingerprint[24..].to_ascii_lowercase();
    // almalinux9 names the trusted key by fingerprint and refuses others;
    // rocky9 by key ID and takes the rest (Koji's --allow-missing-signatures).
    let daemon = Daemon::builder()
        .config(&format!(
            "[scan]\npolicy = \"none\"\n\
             [plugin.el.distributions.almalinux9]\nrequire-signatures = [\"{}\"]\n\
             [plugin.el.distributions.rocky9]\nrequire-signatures = [\"{}\"]\n\
             missing-signatures = \"allow\"\n",
            trusted.fingerprint,
            key_id(&trusted).to_ascii_uppercase()
        ))
        .start();
    let up = daemon.token("uploader", "ci");
    let maintainer = daemon.token("maintainer", "release");
    let dir = tempfile::tempdir().unwrap();
    let build = |name: &str| fixtures::rpm(dir.path(), name, "1.0", "1", "x86_64", "");

    let unsigned = build("plain");
    let detail = upload(&daemon, &up, "almalinux9", &unsigned).problem(422);
    assert!(detail.contains("is not signed"), "{detail}");
    assert!(
        detail.contains(&trusted.fingerprint.to_ascii_lowercase()),
        "{detail}"
    );

    let other = build("other");
    foreign.sign_rpm(&other);
    let detail = upload(&daemon, &up, "almalinux9", &other).problem(422);
    assert!(
        detail.contains(&format!("is signed by key {}", key_id(&foreign))),
        "{detail}"
    );
    assert_eq!(daemon.package_names("almalinux9"), Vec::<String>::new());

    let signed = build("signed");
    trusted.sign_rpm(&signed);
    let answer = upload(&daemon, &up, "almalinux9", &signed);
    assert_eq!(answer.status, 201, "{}", answer.body);
    assert_eq!(answer.body["signature_key_id"], key_id(&trusted).as_str());
    assert!(
        answer.body["signature"]
            .as_str()
            .unwrap()
            .starts_with("RSA/SHA"),
        "{}",
        answer.body
    );
    let id = answer.body["id"].as_str().unwrap();
    let shown = daemon.get(&format!("/api/v1/packages/{id}"), Some(&up));
    assert_eq!(shown.body["signature_key_id"], key_id(&trusted).as_str());

    // rocky9 allows missing signatures: all three are taken.
    for file in [&unsigned, &other, &signed] {
        assert_eq!(upload(&daemon, &up, "rocky9", file).status, 201);
    }
    let plain = daemon.get("/api/v1/distributions/rocky9/packages", Some(&up));
    let plain = plain.body["packages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "plain")
        .cloned()
        .unwrap();
    assert_eq!(plain["signature"], Value::Null);

    // Promotion and migration into almalinux9 check the same.
    let promoted = daemon.post_json(
        "/api/v1/distributions/promote",
        Some(&maintainer),
        json!({"package": "plain", "from_dist": "rocky9", "to_dist": "almalinux9"}),
    );
    let detail = promoted.problem(422);
    assert!(
        detail.contains("plain 1.0-1 x86_64 is not signed"),
        "{detail}"
    );
    let migrated = daemon.post_json(
        "/api/v1/distributions/migrate",
        Some(&maintainer),
        json!({"from_dist": "rocky9", "to_dist": "almalinux9"}),
    );
    assert_eq!(migrated.status, 200, "{}", migrated.body);
    let skipped: Vec<(&str, &str)> = migrated.body["skips"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| (s["name"].as_str().unwrap(), s["reason"].as_str().unwrap()))
        .collect();
    assert_eq!(skipped.len(), 2, "{}", migrated.body);
    assert!(
        skipped
            .iter()
            .any(|(n, r)| *n == "plain" && r.contains("is not signed"))
    );
    assert!(
        skipped
            .iter()
            .any(|(n, r)| *n == "other" && r.contains("is signed by key"))
    );
    assert_eq!(daemon.package_names("almalinux9"), ["signed"]);
}

#[test]
fn bad_signature_and_multilib_settings_are_config_errors() {
    for (config, words) in [
        (
            "[plugin.el.distributions.almalinux9]\nmultilib = \"all\"\n",
            "multilib needs both x86_64 and i686 in architectures",
        ),
        (
            "[plugin.el.distributions.almalinux9]\narchitectures = [\"x86_64\", \"i686\"]\nmultilib = \"most\"\n",
            "is not \\\"none\\\"",
        ),
        (
            "[plugin.el.distributions.almalinux9]\nrequire-signatures = [\"nothex\"]\n",
            "is not a key ID",
        ),
        (
            "[plugin.el.distributions.almalinux9]\nrequire-signatures = [\"199e2f91fd431d51\"]\nmissing-signatures = \"maybe\"\n",
            "is not \\\"refuse\\\", \\\"allow\\\" or \\\"skip\\\"",
        ),
    ] {
        let daemon = Daemon::builder().config(config).start();
        let plugins = daemon.get("/api/v1/plugins", Some(&daemon.admin));
        let text = plugins.body.to_string();
        assert!(text.contains(words), "{config}: {text}");
    }
}

#[test]
fn skipped_unsigned_rpms_are_taken_but_not_listed() {
    // Koji's --skip-missing-signatures: taken, left out of the indexes.
    let trusted = Signer::new();
    let daemon = Daemon::builder()
        .config(&format!(
            "[scan]\npolicy = \"none\"\n\
             [plugin.el.distributions.almalinux9]\nrequire-signatures = [\"{}\"]\n\
             missing-signatures = \"skip\"\n",
            trusted.fingerprint
        ))
        .start();
    let up = daemon.token("uploader", "ci");
    let dir = tempfile::tempdir().unwrap();
    let unsigned = fixtures::rpm(dir.path(), "plain", "1.0", "1", "x86_64", "");
    let signed = fixtures::rpm(dir.path(), "signed", "1.0", "1", "x86_64", "");
    trusted.sign_rpm(&signed);
    for file in [&unsigned, &signed] {
        assert_eq!(upload(&daemon, &up, "almalinux9", file).status, 201);
    }
    // The distribution holds both...
    assert_eq!(daemon.package_names("almalinux9"), ["plain", "signed"]);
    // ...its tree lists the signed one only.
    let report = daemon.publish("almalinux9", &up);
    assert_eq!(report["skipped_unsigned"], 1, "{report}");
    assert_eq!(report["packages"], 1, "{report}");
    let dnf = Dnf::new(
        &repod_tests::rpm::client_config(&daemon, "almalinux9"),
        "x86_64",
    );
    ok(&mut dnf.cmd(&["makecache"]));
    assert_eq!(dnf.repoquery(), ["signed-1.0-1.x86_64"]);
}
