//! The web console in headless Chromium against a real daemon: a maintainer
//! signs in, uploads a real .deb and a vulnerable one with the upload form,
//! finds them in the package list, approves the quarantined one from the
//! review queue (stock apt then finds it), promotes it from its package page
//! (apt finds it in the target) and rolls the distribution back after
//! reading the diff (apt no longer finds it). A reader sees no action, and
//! the API refuses the action when the reader's page sends it anyway.
//! An admin sees a failed plugin's reason, adds a plugin with the form,
//! migrates a distribution, drops a file on the upload zone and filters
//! the audit log. Hostile package metadata shows as text, and every console
//! response carries the Content-Security-Policy.
//!
//! With `REPOD_SCREENSHOTS=<dir>` (scripts/screenshots) the first test saves
//! the README's screenshots there.

use repod_tests::apt::root_for;
use repod_tests::browser::Browser;
use repod_tests::fixtures::{raw_deb, real_packages_dir, small_deb};
use repod_tests::{Daemon, advisory_record, wasm};
use serde_json::json;

const VULNERABLE: &str = "7.81.0-1ubuntu1.13";
const FIXED: &str = "7.81.0-1ubuntu1.14";

/// The id of `name` in `dist`, by the API.
fn package_id(daemon: &Daemon, dist: &str, name: &str) -> String {
    let reply = daemon.get(
        &format!("/api/v1/packages?distribution={dist}&name={name}"),
        Some(&daemon.admin),
    );
    reply.body["packages"][0]["id"]
        .as_str()
        .unwrap_or_else(|| panic!("no {name} in {dist}: {}", reply.body))
        .to_owned()
}

/// The id of a package the gate holds in `dist`, by the scan report.
fn package_id_held(daemon: &Daemon, dist: &str, name: &str) -> String {
    let reply = daemon.get(
        &format!("/api/v1/scans?distribution={dist}&name={name}&state=quarantined"),
        Some(&daemon.admin),
    );
    reply.body["packages"][0]["package"]["id"]
        .as_str()
        .unwrap_or_else(|| panic!("no held {name} in {dist}: {}", reply.body))
        .to_owned()
}

/// The daemon's answer to a GET of `path`, whatever its status.
fn answer(daemon: &Daemon, path: &str) -> ureq::Response {
    match ureq::get(&format!("{}{path}", daemon.url)).call() {
        Ok(r) | Err(ureq::Error::Status(_, r)) => r,
        Err(e) => panic!("{path}: {e}"),
    }
}

/// The texts of the elements matching `css`.
fn texts(browser: &Browser, css: &str) -> Vec<String> {
    browser.all(css).iter().map(|e| browser.text(e)).collect()
}

#[test]
fn a_maintainer_uploads_reviews_promotes_and_rolls_back_in_the_browser() {
    let daemon = Daemon::start();
    let maintainer = daemon.token("maintainer", "release");
    let reader = daemon.token("reader", "auditor");
    daemon.import_advisories(advisory_record("USN-6429-1.json"));
    let key = daemon.served_key();
    let files = tempfile::tempdir().unwrap();
    let vulnerable = files
        .path()
        .join(format!("libcurl4_{VULNERABLE}_amd64.deb"));
    std::fs::write(
        &vulnerable,
        small_deb("libcurl4", VULNERABLE, "amd64", "Source: curl\n", "v"),
    )
    .unwrap();
    let real = real_packages_dir().join("deb/adduser_3.134_all.deb");
    assert!(real.exists(), "{} missing", real.display());

    let browser = Browser::start();
    browser.sign_in(&daemon.url, &maintainer);
    assert!(
        !browser.current_url().contains(&maintainer),
        "the token went into the URL: {}",
        browser.current_url()
    );
    assert_eq!(
        texts(&browser, "#nav a"),
        [
            "Overview", "Packages", "Review", "Upload", "Versions", "Migrate", "Plugins"
        ],
        "a maintainer's menu"
    );

    // Upload with the form: a real package, then a vulnerable one.
    browser.goto(&format!("{}/#/upload", daemon.url));
    browser.choose("select[name=distribution]", "jammy");
    let input = browser.find("input[type=file]");
    browser.send_file(&input, &real);
    browser.wait_text("stored as adduser 3.134 all in jammy (version 1)");
    browser.send_file(&input, &vulnerable);
    browser.wait_text(&format!("stored as libcurl4 {VULNERABLE} amd64 in jammy"));
    browser.wait("the quarantined badge", || {
        (texts(&browser, ".uploads .badge") == ["clean", "quarantined"]).then_some(())
    });
    browser.screenshot("upload");

    // The package list shows both, with their scan states.
    browser.goto(&format!("{}/#/packages?distribution=jammy", daemon.url));
    let rows: Vec<Vec<String>> = browser.wait("the package list", || {
        let rows = browser.rows("main tbody tr");
        (rows.len() == 2).then(|| rows.into_iter().map(|r| r[..6].to_vec()).collect())
    });
    assert_eq!(
        rows,
        [
            ["adduser", "3.134", "all", "jammy", "clean", "none"],
            [
                "libcurl4",
                VULNERABLE,
                "amd64",
                "jammy",
                "quarantined",
                "critical"
            ],
        ],
    );
    browser.screenshot("packages");
    // Searching by part of the name, any case, with the filter form.
    browser.fill("input[name=search]", "CURL");
    browser.click_button("Filter");
    browser.wait("the search's rows", || {
        let rows = browser.rows("main tbody tr");
        (rows.len() == 1 && rows[0][0] == "libcurl4").then_some(())
    });
    assert!(
        browser
            .current_url()
            .ends_with("#/packages?distribution=jammy&search=CURL")
    );

    // The review queue: the finding, its CVE ids and fix; approve it.
    browser.goto(&format!("{}/#/review", daemon.url));
    browser.wait_text("USN-6429-1");
    let queue = browser.page_text();
    for expected in ["UBUNTU-CVE-2023-38545", FIXED, "quarantined (1)"] {
        assert!(queue.contains(expected), "{expected} missing: {queue}");
    }
    browser.screenshot("review");
    // No choice and no justification: the browser's own check refuses;
    // a blank justification: the page's. Neither asks the API.
    browser.click_button("Record decision");
    assert_eq!(
        browser.eval(
            "return [...document.querySelectorAll('form.decision :is(input, textarea):invalid')].map(e => e.name);"
        ),
        json!(["decision", "decision", "justification"])
    );
    browser.click("input[name=decision][value=approve]");
    browser.fill("textarea[name=justification]", "   ");
    browser.click_button("Record decision");
    browser.wait_text("A decision needs a justification.");
    let id = package_id_held(&daemon, "jammy", "libcurl4");
    let scan = daemon.get(&format!("/api/v1/packages/{id}/scan"), Some(&daemon.admin));
    assert_eq!(scan.body["state"], "quarantined", "{}", scan.body);
    browser.fill(
        "textarea[name=justification]",
        "SOCKS5 proxies are not used on these hosts",
    );
    browser.click_button("Record decision");
    browser.wait_text(&format!("Approved libcurl4 {VULNERABLE}: jammy version 2"));
    daemon.publish("jammy", &daemon.admin);
    let jammy = root_for(&daemon, "jammy", "", "amd64", &[], &key);
    jammy.update().assert_ok();
    let policy = jammy.policy(&["libcurl4"]);
    assert!(policy.contains(VULNERABLE), "apt misses it: {policy}");

    // Promote from the package page; the decision goes with it.
    browser.goto(&format!("{}/#/package/{id}", daemon.url));
    browser.wait_text("SOCKS5 proxies are not used on these hosts");
    browser.screenshot("package");
    browser.choose("select[name=to_dist]", "noble");
    browser.click_button("Promote");
    browser.wait_text(&format!("Promoted libcurl4 {VULNERABLE} to noble"));
    let noble = root_for(&daemon, "noble", "", "amd64", &[], &key);
    noble.update().assert_ok();
    let policy = noble.policy(&["libcurl4"]);
    assert!(
        policy.contains(VULNERABLE),
        "apt misses it in noble: {policy}"
    );
    // The package page lists the copy.
    browser.goto(&format!("{}/#/package/{id}", daemon.url));
    browser.wait_text("Same file elsewhere");
    assert_eq!(texts(&browser, "main ul li a"), ["noble"]);

    // Roll jammy back to version 1, reading what it would change first.
    browser.goto(&format!("{}/#/versions/jammy", daemon.url));
    browser.click_button("Roll back to #1");
    browser.wait_text("Rolling back to #1 (from #2) would");
    let diff = browser.page_text();
    assert!(
        diff.contains(&format!("Remove (1)\nlibcurl4 {VULNERABLE} amd64")),
        "{diff}"
    );
    assert!(!diff.contains("Add ("), "{diff}");
    browser.fill(
        "form[aria-label='Confirm rollback'] input",
        "back to the audited set",
    );
    browser.screenshot("rollback");
    browser.click_button("Make #1's content current");
    browser.wait_text("jammy now has version #1's content as version #3.");
    daemon.publish("jammy", &daemon.admin);
    jammy.update().assert_ok();
    let policy = jammy.policy(&["libcurl4"]);
    assert!(!policy.contains(VULNERABLE), "apt still sees it: {policy}");

    // The overview: tiers, versions, scan states, client setup.
    browser.goto(&format!("{}/#/", daemon.url));
    browser.wait_text("Ubuntu 22.04 LTS");
    let jammy_row = browser.find("a[href='#/packages?distribution=jammy']");
    assert_eq!(browser.text(&jammy_row), "Ubuntu 22.04 LTS");
    browser.click("button[aria-label='Client setup for jammy']");
    browser.wait_text("Types: deb");
    browser.screenshot("overview");

    // A maintainer sees actions on the noble copy's page; a reader none.
    let copy = package_id(&daemon, "noble", "libcurl4");
    browser.goto(&format!("{}/#/package/{copy}", daemon.url));
    browser.wait_text("Actions");
    assert!(!browser.all("section.actions form").is_empty());
    browser.sign_out();
    browser.sign_in(&daemon.url, &reader);
    assert_eq!(
        texts(&browser, "#nav a"),
        ["Overview", "Packages", "Review", "Versions", "Plugins"],
        "a reader's menu"
    );
    browser.goto(&format!("{}/#/package/{copy}", daemon.url));
    browser.wait_text("Same file elsewhere");
    assert!(browser.all("form").is_empty(), "a reader gets a form");
    assert_eq!(texts(&browser, "main button"), Vec::<String>::new());
    browser.goto(&format!("{}/#/versions/jammy", daemon.url));
    browser.wait_text("#3");
    assert!(
        !browser.page_text().contains("Roll back"),
        "a reader may roll back"
    );
    browser.goto(&format!("{}/#/upload", daemon.url));
    browser.wait_text("Not for this token");
    // The same promotion sent by the reader's page: refused by the API.
    let status = browser.eval(
        "return fetch('/api/v1/distributions/promote', {method: 'POST', headers: {\
         'Authorization': 'Bearer ' + sessionStorage.getItem('repod.token'), \
         'Content-Type': 'application/json'}, body: JSON.stringify({package: 'libcurl4', \
         from_dist: 'noble', to_dist: 'focal'})}).then(r => r.status);",
    );
    assert_eq!(status, json!(403));
    let reply = daemon.post_json(
        "/api/v1/distributions/promote",
        Some(&reader),
        json!({"package": "libcurl4", "from_dist": "noble", "to_dist": "focal"}),
    );
    reply.problem(403);
    assert!(
        daemon
            .package_names("focal")
            .iter()
            .all(|n| n != "libcurl4"),
        "a refused promotion changed focal"
    );
}

#[test]
fn hostile_metadata_shows_as_text_and_every_console_response_has_the_csp() {
    let daemon = Daemon::start();
    let control = "Package: hostile\nVersion: 1.0\nArchitecture: all\n\
                   Maintainer: <img src=x onerror=\"window.pwned=2\">\n\
                   Description: <script>window.pwned=1</script>\n <b>bold</b> & \"quoted\"\n";
    let reply = daemon.upload(
        "/api/v1/packages?distribution=jammy",
        Some(&daemon.admin),
        &raw_deb(control.as_bytes(), &[(b"./usr/share/hostile", b"x")]),
    );
    assert_eq!(reply.status, 201, "{}", reply.body);
    let id = reply.body["id"].as_str().unwrap();

    let browser = Browser::start();
    browser.sign_in(&daemon.url, &daemon.admin);
    browser.goto(&format!("{}/#/package/{id}", daemon.url));
    browser.wait_text("Description: <script>window.pwned=1</script>");
    let page = browser.page_text();
    assert!(page.contains("<b>bold</b> & \"quoted\""), "{page}");
    assert!(
        page.contains("<img src=x onerror=\"window.pwned=2\">"),
        "{page}"
    );
    assert_eq!(
        browser.eval("return typeof window.pwned;"),
        json!("undefined")
    );
    assert_eq!(
        browser.eval("return document.querySelectorAll('script').length;"),
        json!(1),
        "only the console's own module script"
    );
    assert_eq!(
        browser.eval("return document.querySelectorAll('main img, main b').length;"),
        json!(0),
        "metadata became markup"
    );
    // The audit log shows the upload's detail as text too.
    browser.goto(&format!("{}/#/audit?action=package.", daemon.url));
    browser.wait_text("hostile 1.0 all");
    assert_eq!(
        browser.eval("return document.querySelectorAll('main img, main b').length;"),
        json!(0)
    );
    // A route with a broken escape says so instead of a blank page.
    browser.goto(&format!("{}/#/package/%E0%A4%A", daemon.url));
    browser.wait_text("URI malformed");

    // A token revoked while a tab holds it: back to the sign-in form.
    let temp = daemon.token("reader", "temporary");
    browser.sign_out();
    browser.sign_in(&daemon.url, &temp);
    let tokens = daemon.get("/api/v1/tokens", Some(&daemon.admin)).body;
    let id = tokens["tokens"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "temporary")
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        daemon
            .delete(&format!("/api/v1/tokens/{id}"), Some(&daemon.admin))
            .status,
        204
    );
    browser.eval("location.reload(); return null;");
    browser.find("#token");
    browser.wait_text("That token is unknown or revoked.");

    for path in [
        "/",
        "/console/app.js",
        "/console/dom.js",
        "/console/views.js",
        "/console/style.css",
        "/console/missing.js",
    ] {
        let response = answer(&daemon, path);
        let csp = response
            .header("content-security-policy")
            .unwrap_or_else(|| panic!("{path} has no Content-Security-Policy"))
            .to_owned();
        assert!(csp.contains("script-src 'self'"), "{path}: {csp}");
        assert!(csp.contains("frame-ancestors 'none'"), "{path}: {csp}");
        assert!(!csp.contains("unsafe"), "{path}: {csp}");
        assert_eq!(response.header("x-content-type-options"), Some("nosniff"));
    }
    // Everything else is sandboxed: a published file opened in the
    // console's tab (a comps.xml with a script in it) runs in an opaque
    // origin that cannot read the tab's token.
    for path in [
        "/repos/keys/repod.asc",
        "/api/v1/openapi.json",
        "/healthz",
        "/nowhere",
    ] {
        let response = answer(&daemon, path);
        let csp = response
            .header("content-security-policy")
            .unwrap_or_default();
        assert!(csp.starts_with("sandbox"), "{path}: {csp:?}");
    }
}

#[test]
fn an_admin_adds_a_plugin_migrates_drops_a_file_and_reads_the_audit_log() {
    let daemon = Daemon::builder()
        .plugin_file("broken.wasm", b"not a component".to_vec())
        .start();
    let reply = daemon.upload(
        "/api/v1/packages?distribution=jammy",
        Some(&daemon.admin),
        &small_deb("thing", "1.0", "all", "", "t"),
    );
    assert_eq!(reply.status, 201, "{}", reply.body);
    let pool_path = reply.body["filename"].as_str().unwrap().to_owned();

    let browser = Browser::start();
    browser.sign_in(&daemon.url, &daemon.admin);
    assert_eq!(
        texts(&browser, "#nav a"),
        [
            "Overview",
            "Packages",
            "Review",
            "Upload",
            "Versions",
            "Migrate",
            "Audit log",
            "Plugins"
        ],
        "an admin's menu"
    );

    // Plugins: the failed one with its reason; add one with the form.
    browser.goto(&format!("{}/#/plugins", daemon.url));
    browser.wait_text("broken.wasm");
    let rows = browser.rows("main tbody tr");
    let failed = rows.iter().find(|r| r[4] == "broken.wasm").unwrap();
    assert_eq!(failed[0], "failed");
    assert!(failed[5].len() > 10, "no reason shown: {failed:?}");
    assert_eq!(
        rows.iter().filter(|r| r[0] == "loaded").count(),
        4,
        "{rows:?}"
    );
    let input = browser.find("input[name=plugin]");
    browser.send_file(&input, &wasm("trixie_plugin"));
    browser.click_button("Upload");
    browser.wait_text("Loaded plugin debian-trixie.");
    browser.wait("the new plugin's row", || {
        browser
            .rows("main tbody tr")
            .iter()
            .any(|r| r[1] == "debian-trixie" && r[5] == "trixie")
            .then_some(())
    });
    assert!(daemon.distribution_ids().contains(&"trixie".to_owned()));

    // Migrate jammy into focal.
    browser.goto(&format!("{}/#/migrate", daemon.url));
    browser.choose("select[name=from_dist]", "jammy");
    browser.choose("select[name=to_dist]", "focal");
    browser.fill("input[name=reason]", "focal joins the tier");
    browser.click_button("Migrate every package");
    browser.wait_text("Copied 1 packages from jammy to focal");
    assert_eq!(daemon.package_names("focal"), ["thing"]);

    // Drop a file on the upload zone: the new distribution is offered, and
    // the dropped bytes (the package as jammy's tree serves it) go there.
    browser.goto(&format!("{}/#/upload", daemon.url));
    browser.find("select[name=distribution] option[value=trixie]");
    browser.choose("select[name=distribution]", "trixie");
    let served = daemon
        .get(
            &format!(
                "/api/v1/packages/{}/details",
                reply.body["id"].as_str().unwrap()
            ),
            Some(&daemon.admin),
        )
        .body["tree_paths"][0]
        .as_str()
        .unwrap()
        .to_owned();
    let dropped = browser.eval(&format!(
        "return fetch('/repos/{served}').then(r => r.blob()).then(b => {{\
           const files = new DataTransfer();\
           files.items.add(new File([b], {name}));\
           document.querySelector('.dropzone').dispatchEvent(\
             new DragEvent('drop', {{dataTransfer: files, bubbles: true, cancelable: true}}));\
           return b.size; }});",
        name = json!(pool_path),
    ));
    assert!(dropped.as_u64().unwrap() > 0, "{dropped}");
    browser.wait_text("stored as thing 1.0 all in trixie (version 1)");
    assert_eq!(daemon.package_names("trixie"), ["thing"]);

    // Remove the migrated copy from its package page: back to the list.
    let copy = package_id(&daemon, "focal", "thing");
    browser.goto(&format!("{}/#/package/{copy}", daemon.url));
    browser.fill(
        "form[aria-label=Remove] input[name=reason]",
        "not for focal",
    );
    browser.click_button("Remove from focal");
    browser.wait_text("Removed thing 1.0 from focal.");
    browser.wait("the list", || {
        browser
            .current_url()
            .ends_with("#/packages?distribution=focal")
            .then_some(())
    });
    assert!(daemon.package_names("focal").is_empty());

    // Remove the plugin again, in two steps.
    browser.goto(&format!("{}/#/plugins", daemon.url));
    browser.wait_text("debian-trixie");
    browser.eval(
        "[...document.querySelectorAll('main tbody tr')]\
           .find(r => r.cells[1].innerText === 'debian-trixie')\
           .querySelector('button').click(); return null;",
    );
    browser.click_button("Confirm: remove debian-trixie");
    browser.wait_text("Removed plugin debian-trixie.");
    assert!(!daemon.distribution_ids().contains(&"trixie".to_owned()));

    // The audit log, filtered with its form.
    browser.goto(&format!("{}/#/audit", daemon.url));
    browser.wait_text("package.add");
    browser.fill("input[name=action]", "plugin.");
    browser.click_button("Filter");
    browser.wait("the filtered audit log", || {
        browser
            .current_url()
            .contains("action=plugin.")
            .then_some(())
    });
    let actions: Vec<String> = browser.wait("only plugin entries", || {
        let actions: Vec<String> = browser
            .rows("main tbody tr")
            .into_iter()
            .map(|r| r[2].clone())
            .collect();
        (!actions.is_empty() && actions.iter().all(|a| a.starts_with("plugin."))).then_some(actions)
    });
    assert_eq!(actions, ["plugin.remove", "plugin.add"]);
}
