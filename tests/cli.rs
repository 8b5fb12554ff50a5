//! Every remote `repod` subcommand against a real daemon: tables a person
//! reads by default, `--output json` that parses and holds the server's
//! answer, and the exit codes scripts rely on (3 refused, 4 not found,
//! 5 unreachable, 2 usage, 1 a batch with failures).

use std::collections::BTreeSet;
use std::process::Command;

use repod_tests::fixtures::small_deb;
use repod_tests::{Daemon, advisories_dir, repod_bin, wasm};
use serde_json::{Value, json};

struct Run {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

/// `repod ARGS --url <daemon> --token TOKEN`.
fn repod(daemon: &Daemon, token: &str, args: &[&str]) -> Run {
    let out = Command::new(repod_bin())
        .args(args)
        .args(["--url", &daemon.url, "--token", token])
        .env_remove("REPOD_URL")
        .env_remove("REPOD_TOKEN")
        .output()
        .unwrap();
    Run {
        code: out.status.code(),
        stdout: String::from_utf8(out.stdout).unwrap(),
        stderr: String::from_utf8(out.stderr).unwrap(),
    }
}

/// Runs `args` with a table; asserts success and returns stdout.
fn table(daemon: &Daemon, token: &str, args: &[&str]) -> String {
    let run = repod(daemon, token, args);
    assert_eq!(run.code, Some(0), "{args:?}: {}{}", run.stdout, run.stderr);
    // Bars and spinners stay off when stderr is not a terminal.
    assert!(!run.stderr.contains(['\r', '\x1b']), "{}", run.stderr);
    run.stdout
}

/// Runs `args --output json`; asserts success and that stdout is one JSON
/// document, and returns it.
fn json_of(daemon: &Daemon, token: &str, args: &[&str]) -> Value {
    let mut args = args.to_vec();
    args.extend(["--output", "json"]);
    let run = repod(daemon, token, &args);
    assert_eq!(run.code, Some(0), "{args:?}: {}{}", run.stdout, run.stderr);
    serde_json::from_str(&run.stdout)
        .unwrap_or_else(|e| panic!("{args:?} printed no JSON ({e}):\n{}", run.stdout))
}

/// Asserts `args` fails with `code` and `words` on stderr.
fn fails(daemon: &Daemon, token: &str, args: &[&str], code: i32, words: &str) {
    let run = repod(daemon, token, args);
    assert_eq!(
        run.code,
        Some(code),
        "{args:?}: {}{}",
        run.stdout,
        run.stderr
    );
    assert!(run.stderr.contains(words), "{args:?}: {}", run.stderr);
}

fn upload(daemon: &Daemon, token: &str, dist: &str, bytes: &[u8]) -> Value {
    let reply = daemon.upload(
        &format!("/api/v1/packages?distribution={dist}"),
        Some(token),
        bytes,
    );
    assert!([201, 202].contains(&reply.status), "{}", reply.body);
    reply.body
}

/// The cells of the table row of `text` that holds `key`.
fn cells(text: &str, key: &str) -> Vec<String> {
    text.lines()
        .find(|l| l.contains(key) && l.contains('┆'))
        .unwrap_or_else(|| panic!("no row with {key}:\n{text}"))
        .split(['│', '┆'])
        .map(|c| c.trim().to_owned())
        .filter(|c| !c.is_empty())
        .collect()
}

fn ids(list: &Value, key: &str) -> BTreeSet<String> {
    list.as_array()
        .unwrap()
        .iter()
        .map(|v| v[key].as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn packages_distributions_and_lifecycle() {
    let daemon = Daemon::start();
    let up = daemon.token("uploader", "ci");
    let maintainer = daemon.token("maintainer", "release");
    let tool = upload(
        &daemon,
        &up,
        "focal",
        &small_deb("tool", "2.0", "amd64", "", "t"),
    );
    let tool_id = tool["id"].as_str().unwrap();

    // upload --output json: every file's outcome.
    let dir = tempfile::tempdir().unwrap();
    let deb = dir.path().join("extra_1.0_amd64.deb");
    std::fs::write(&deb, small_deb("extra", "1.0", "amd64", "", "e")).unwrap();
    let junk = dir.path().join("junk.deb");
    std::fs::write(&junk, "not a package").unwrap();
    let run = repod(
        &daemon,
        &up,
        &[
            "upload",
            "--distribution",
            "noble",
            "--output",
            "json",
            deb.to_str().unwrap(),
            junk.to_str().unwrap(),
        ],
    );
    assert_eq!(run.code, Some(1), "{}", run.stderr);
    let outcomes: Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(outcomes[0]["outcome"], "added", "{outcomes}");
    assert_eq!(outcomes[1]["outcome"], "rejected", "{outcomes}");
    assert!(
        outcomes[1]["detail"].as_str().unwrap().starts_with("422: "),
        "{outcomes}"
    );
    assert_eq!(daemon.package_names("noble"), ["extra"]);

    // packages list / show
    let listed = table(
        &daemon,
        &up,
        &["packages", "list", "--distribution", "focal"],
    );
    let header = listed.lines().nth(1).unwrap();
    for column in ["ID", "DISTRIBUTION", "NAME", "VERSION", "ARCH", "SIZE"] {
        assert!(header.contains(column), "{listed}");
    }
    let row = listed.lines().find(|l| l.contains(tool_id)).expect(&listed);
    for cell in ["focal", "tool", "2.0", "amd64", "ci"] {
        assert!(row.contains(cell), "{row}");
    }
    assert!(listed.ends_with("1 packages\n"), "{listed}");
    let listed = json_of(&daemon, &up, &["packages", "list", "--name", "tool"]);
    assert_eq!(listed["packages"].as_array().unwrap().len(), 1);
    assert_eq!(listed["packages"][0]["id"], tool["id"]);
    let none = json_of(
        &daemon,
        &up,
        &["packages", "list", "--architecture", "s390x"],
    );
    assert_eq!(none["packages"], json!([]));
    let shown = json_of(&daemon, &up, &["packages", "show", tool_id]);
    assert_eq!(shown["sha256"], tool["sha256"]);
    let shown = table(&daemon, &up, &["packages", "show", tool_id]);
    assert!(
        shown
            .lines()
            .any(|l| l.contains("sha256") && l.contains(tool["sha256"].as_str().unwrap())),
        "{shown}"
    );
    fails(
        &daemon,
        &up,
        &["packages", "show", "nope"],
        4,
        "404: no package with id nope",
    );
    // packages show --details, distributions overview, whoami
    let details = json_of(&daemon, &up, &["packages", "show", tool_id, "--details"]);
    assert_eq!(details["package"]["id"], tool["id"]);
    assert_eq!(details["scan"]["state"], "clean", "{details}");
    assert_eq!(details["held"], false);
    assert_eq!(details["memberships"][0]["removed_in"], Value::Null);
    assert!(
        details["entries"][0]["text"]
            .as_str()
            .unwrap()
            .contains("Package: tool\n"),
        "{details}"
    );
    let shown = table(&daemon, &up, &["packages", "show", tool_id, "--details"]);
    assert!(
        shown.contains("scan: clean (worst none), 0 findings"),
        "{shown}"
    );
    assert!(shown.contains("tree path: pool/"), "{shown}");
    let overview = json_of(&daemon, &up, &["distributions", "overview"]);
    let focal = overview["distributions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["id"] == "focal")
        .unwrap();
    assert_eq!(focal["latest"]["packages"], 1, "{focal}");
    assert_eq!(focal["scan_states"], json!({"clean": 1}), "{focal}");
    let overview = table(&daemon, &up, &["distributions", "overview"]);
    let row = overview
        .lines()
        .find(|l| l.contains(" focal "))
        .expect(&overview);
    assert!(row.contains("1 clean"), "{row}");
    let me = json_of(&daemon, &up, &["whoami"]);
    assert_eq!(me, json!({"name": "ci", "role": "uploader"}));
    assert_eq!(table(&daemon, &up, &["whoami"]), "ci (uploader)\n");
    fails(&daemon, "repod_bad", &["packages", "list"], 3, "401");

    // distributions list / show / client-config / compare / publish / vex
    let dists = json_of(&daemon, &up, &["distributions", "list"]);
    let all = ids(&dists["distributions"], "id");
    assert!(
        all.contains("jammy") && all.contains("almalinux9"),
        "{all:?}"
    );
    let text = table(&daemon, &up, &["distributions", "list"]);
    let jammy = text.lines().find(|l| l.contains(" jammy ")).expect(&text);
    assert!(jammy.contains("deb") && jammy.contains("amd64"), "{jammy}");
    let jammy = json_of(&daemon, &up, &["distributions", "show", "jammy"]);
    assert_eq!(jammy["format"], "deb");
    fails(
        &daemon,
        &up,
        &["distributions", "show", "nope"],
        4,
        "no distribution nope",
    );
    let base = "https://repo.example/repos";
    let config = table(
        &daemon,
        &up,
        &[
            "distributions",
            "client-config",
            "jammy",
            "--base-url",
            base,
        ],
    );
    assert!(config.contains(&format!("URIs: {base}")), "{config}");
    let config = json_of(
        &daemon,
        &up,
        &[
            "distributions",
            "client-config",
            "jammy",
            "--base-url",
            base,
        ],
    );
    assert!(
        config["content"].as_str().unwrap().contains(base),
        "{config}"
    );
    assert!(
        config["file_name"].as_str().unwrap().ends_with(".sources"),
        "{config}"
    );
    let compared = table(
        &daemon,
        &up,
        &["distributions", "compare", "jammy", "1.0~rc1", "1.0"],
    );
    assert_eq!(compared, "1.0~rc1 < 1.0\n");
    let compared = json_of(
        &daemon,
        &up,
        &["distributions", "compare", "jammy", "1:0.9", "2.0"],
    );
    assert_eq!(compared["results"], json!([1]));
    let published = json_of(&daemon, &up, &["distributions", "publish", "focal"]);
    assert_eq!(published["distribution"], "focal");
    assert_eq!(published["packages"], 1);
    let published = table(&daemon, &up, &["distributions", "publish", "focal"]);
    assert!(
        published.starts_with("published focal version 1: 1 packages"),
        "{published}"
    );
    let vex = json_of(&daemon, &up, &["distributions", "vex", "jammy"]);
    assert!(
        vex["@context"].as_str().unwrap().contains("openvex"),
        "{vex}"
    );

    // comps: set, show, remove
    let comps = dir.path().join("comps.xml");
    std::fs::write(
        &comps,
        "<?xml version=\"1.0\"?>\n<comps><group><id>tools</id><name>Tools</name></group></comps>\n",
    )
    .unwrap();
    let comps = comps.to_str().unwrap();
    let set = table(
        &daemon,
        &maintainer,
        &["distributions", "comps", "set", "almalinux9", comps],
    );
    assert_eq!(set, "stored the comps.xml of almalinux9\n");
    let shown = table(
        &daemon,
        &up,
        &["distributions", "comps", "show", "almalinux9"],
    );
    assert!(shown.contains("<id>tools</id>"), "{shown}");
    let shown = json_of(
        &daemon,
        &up,
        &["distributions", "comps", "show", "almalinux9"],
    );
    assert!(shown["comps"].as_str().unwrap().contains("<comps>"));
    fails(
        &daemon,
        &up,
        &["distributions", "comps", "remove", "almalinux9"],
        3,
        "403",
    );
    let removed = json_of(
        &daemon,
        &maintainer,
        &["distributions", "comps", "remove", "almalinux9"],
    );
    assert_eq!(removed["comps"], Value::Null);
    fails(
        &daemon,
        &up,
        &["distributions", "comps", "show", "almalinux9"],
        4,
        "no comps set",
    );

    // The lifecycle commands in JSON (their summaries: tests/lifecycle.rs).
    let promoted = json_of(
        &daemon,
        &maintainer,
        &[
            "promote",
            "--package",
            "tool",
            "--from",
            "focal",
            "--to",
            "jammy",
        ],
    );
    assert_eq!(promoted["promoted"][0]["name"], "tool");
    let jammy_tool = promoted["promoted"][0]["id"].as_str().unwrap().to_owned();
    upload(
        &daemon,
        &up,
        "focal",
        &small_deb("lib", "1.0", "all", "", "l"),
    );
    let migrated = json_of(
        &daemon,
        &maintainer,
        &["migrate", "--from", "focal", "--to", "jammy"],
    );
    assert_eq!(
        (
            migrated["copied"].clone(),
            migrated["already_present"].clone()
        ),
        (json!(1), json!(1))
    );
    let versions = json_of(&daemon, &up, &["versions", "--distribution", "jammy"]);
    assert_eq!(versions["latest"], 2);
    let versions = table(&daemon, &up, &["versions", "--distribution", "jammy"]);
    assert!(versions.starts_with("jammy: latest 2"), "{versions}");
    // VERSION, CREATED, ACTION, ADDED, REMOVED, PACKAGES, BY (no reason).
    let row = cells(&versions, " migrate ");
    assert_eq!(row.len(), 7, "{versions}");
    assert_eq!(
        [&row[0], &row[2], &row[3], &row[4], &row[5], &row[6]],
        ["2", "migrate", "1", "0", "2", "release"],
        "{versions}"
    );
    let one = json_of(
        &daemon,
        &up,
        &["versions", "--distribution", "jammy", "--version", "1"],
    );
    assert_eq!(one["added_packages"][0]["name"], "tool");
    let rolled = json_of(
        &daemon,
        &maintainer,
        &[
            "rollback",
            "--distribution",
            "jammy",
            "--version",
            "1",
            "--reason",
            "lib breaks",
        ],
    );
    assert_eq!(rolled["distribution_version"]["number"], 3);
    // --json, the old spelling, still works.
    let run = repod(&daemon, &daemon.admin, &["init", "--json"]);
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    let init: Value = serde_json::from_str(&run.stdout).unwrap();
    assert!(ids(&init["published"], "distribution").contains("jammy"));
    fails(
        &daemon,
        &maintainer,
        &["rollback", "--distribution", "jammy", "--version", "99"],
        4,
        "99",
    );

    // packages remove
    fails(&daemon, &up, &["packages", "remove", &jammy_tool], 3, "403");
    let removed = json_of(
        &daemon,
        &maintainer,
        &["packages", "remove", &jammy_tool, "--reason", "withdrawn"],
    );
    assert_eq!(removed, json!({"removed": jammy_tool}));
    assert_eq!(daemon.package_names("jammy"), Vec::<String>::new());
    let latest = daemon.get("/api/v1/distributions/jammy/versions?limit=1", Some(&up));
    assert_eq!(latest.body["versions"][0]["reason"], "withdrawn");
    fails(
        &daemon,
        &maintainer,
        &["packages", "remove", &jammy_tool],
        4,
        "404",
    );
}

const VULNERABLE: &str = "7.81.0-1ubuntu1.13";

#[test]
fn advisories_scans_and_decisions() {
    let feed = tempfile::tempdir().unwrap();
    std::fs::copy(
        advisories_dir().join("DLA-3008-1.json"),
        feed.path().join("DLA-3008-1.json"),
    )
    .unwrap();
    let daemon = Daemon::builder()
        .config(&format!(
            "[advisories]\nfeeds = [\"{}\"]\nsync-every-minutes = 0\n",
            feed.path().display()
        ))
        .start();
    let up = daemon.token("uploader", "ci");
    let maintainer = daemon.token("maintainer", "security");
    let usn = advisories_dir().join("USN-6429-1.json");
    let alsa = advisories_dir().join("ALSA-2024_4312.json");

    // advisories import: a table line per file; JSON, an array of reports.
    let imported = table(
        &daemon,
        &daemon.admin,
        &["advisories", "import", usn.to_str().unwrap()],
    );
    assert!(
        imported.ends_with("1 added, 0 updated, 0 unchanged, 0 rejected\n"),
        "{imported}"
    );
    let reports = json_of(
        &daemon,
        &daemon.admin,
        &[
            "advisories",
            "import",
            usn.to_str().unwrap(),
            alsa.to_str().unwrap(),
        ],
    );
    assert_eq!(reports[0]["report"]["unchanged"], 1, "{reports}");
    assert_eq!(reports[1]["report"]["added"], 1, "{reports}");
    // A batch with a bad file imports the rest and exits 1; one file alone
    // exits with its refusal's code.
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.json");
    std::fs::write(&bad, "[1, 2]").unwrap();
    let bad = bad.to_str().unwrap();
    fails(
        &daemon,
        &daemon.admin,
        &["advisories", "import", usn.to_str().unwrap(), bad],
        1,
        "1 of 2 files were not imported",
    );
    fails(
        &daemon,
        &daemon.admin,
        &["advisories", "import", bad],
        3,
        "bad.json: 400",
    );
    fails(
        &daemon,
        &maintainer,
        &["advisories", "import", usn.to_str().unwrap()],
        3,
        "403",
    );

    // advisories list / show / imports / feeds / sync
    let listed = json_of(&daemon, &up, &["advisories", "list"]);
    assert_eq!(
        ids(&listed["advisories"], "id"),
        BTreeSet::from(["ALSA-2024:4312".to_owned(), "USN-6429-1".to_owned()])
    );
    let one = json_of(&daemon, &up, &["advisories", "list", "--limit", "1"]);
    assert_eq!(one["advisories"].as_array().unwrap().len(), 1);
    assert_eq!(one["next"], "ALSA-2024:4312");
    let listed = table(&daemon, &up, &["advisories", "list", "--package", "curl"]);
    let row = listed
        .lines()
        .find(|l| l.contains("USN-6429-1"))
        .expect(&listed);
    assert!(row.contains("critical") || row.contains("high"), "{row}");
    assert!(!listed.contains("ALSA"), "{listed}");
    let shown = json_of(&daemon, &up, &["advisories", "show", "USN-6429-1"]);
    assert_eq!(shown["id"], "USN-6429-1");
    assert_eq!(shown["record"]["id"], "USN-6429-1");
    let shown = table(&daemon, &up, &["advisories", "show", "USN-6429-1"]);
    assert!(
        shown.contains("Ubuntu:22.04:LTS") && shown.contains("curl"),
        "{shown}"
    );
    fails(
        &daemon,
        &up,
        &["advisories", "show", "CVE-1999-0001"],
        4,
        "no advisory",
    );
    // Six imports, newest first: the refused file last (twice).
    let imports = json_of(&daemon, &up, &["advisories", "imports"]);
    let added: Vec<&Value> = imports["imports"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| &i["added"])
        .collect();
    assert_eq!(added, [0, 0, 0, 1, 0, 1], "{imports}");
    assert!(
        imports["imports"][0]["error"]
            .as_str()
            .unwrap()
            .contains("no record")
    );
    let imports = table(&daemon, &up, &["advisories", "imports", "--limit", "2"]);
    assert!(
        imports.contains("upload") && imports.contains("admin"),
        "{imports}"
    );
    // advisories feeds / sync: the daemon's one feed is a directory.
    let feeds = json_of(&daemon, &up, &["advisories", "feeds"]);
    assert_eq!(feeds["configured"], json!([feed.path()]));
    assert_eq!(feeds["states"], json!([]));
    assert_eq!(
        table(&daemon, &up, &["advisories", "feeds"]),
        "1 feeds configured, synced on demand only\n(none)\n"
    );
    fails(&daemon, &maintainer, &["advisories", "sync"], 3, "403");
    let synced = json_of(&daemon, &daemon.admin, &["advisories", "sync"]);
    assert_eq!(synced["feeds"][0]["status"], "ok", "{synced}");
    assert_eq!(synced["feeds"][0]["import"]["added"], 1, "{synced}");
    let synced = table(&daemon, &daemon.admin, &["advisories", "sync"]);
    let row = cells(&synced, "unchanged");
    assert_eq!(row[0], feed.path().display().to_string(), "{synced}");
    let feeds = table(&daemon, &up, &["advisories", "feeds"]);
    assert_eq!(cells(&feeds, "unchanged")[1], "unchanged", "{feeds}");
    let dla = json_of(&daemon, &up, &["advisories", "show", "DLA-3008-1"]);
    assert_eq!(dla["id"], "DLA-3008-1");

    // A vulnerable upload is quarantined: scan report / show.
    let held = upload(
        &daemon,
        &up,
        "jammy",
        &small_deb("libcurl4", VULNERABLE, "amd64", "Source: curl\n", "v"),
    );
    let id = held["id"].as_str().unwrap();
    let report = json_of(&daemon, &up, &["scan", "report", "--distribution", "jammy"]);
    assert_eq!(report["states"], json!({"quarantined": 1}));
    assert_eq!(report["packages"][0]["package"]["id"], id);
    let report = table(&daemon, &up, &["scan", "report"]);
    assert!(
        report.starts_with(
            "states: quarantined 1
worst severity: critical 1
"
        ),
        "{report}"
    );
    assert_eq!(
        cells(&report, id),
        [
            "quarantined",
            "critical",
            "libcurl4",
            VULNERABLE,
            "amd64",
            "jammy",
            "1",
            id
        ],
        "{report}"
    );
    let scan = json_of(&daemon, &up, &["scan", "show", id]);
    assert_eq!(scan["state"], "quarantined");
    assert_eq!(scan["findings"][0]["advisory_id"], "USN-6429-1");
    let scan = table(&daemon, &up, &["scan", "show", id]);
    assert!(
        scan.starts_with(&format!("{id}: quarantined (worst ")),
        "{scan}"
    );
    // A findings row: advisory, its CVE, severity, the fixing version.
    assert!(
        scan.lines().any(|l| l.contains("USN-6429-1")
            && l.contains("CVE-2023-38545")
            && l.contains("critical")
            && l.contains("7.81.0-1ubuntu1.14")),
        "{scan}"
    );
    fails(&daemon, &up, &["scan", "show", "nope"], 4, "no package");

    // decision: the justification is required (a usage error), the role too.
    fails(
        &daemon,
        &maintainer,
        &["decision", "approve", id],
        2,
        "--justification",
    );
    fails(
        &daemon,
        &up,
        &["decision", "approve", id, "--justification", "x"],
        3,
        "403",
    );
    let approved = json_of(
        &daemon,
        &maintainer,
        &[
            "decision",
            "approve",
            id,
            "--justification",
            "not reachable in our use",
        ],
    );
    assert_eq!(approved["decision"]["decision"], "approve");
    assert_eq!(
        approved["decision"]["justification"],
        "not reachable in our use"
    );
    assert_eq!(approved["scan"]["state"], "approved");
    assert_eq!(daemon.package_names("jammy"), ["libcurl4"]);
    let rejected = table(
        &daemon,
        &maintainer,
        &[
            "decision",
            "reject",
            id,
            "--justification",
            "policy changed",
        ],
    );
    assert!(
        rejected.starts_with(&format!("reject {id}: scan state rejected; jammy version")),
        "{rejected}"
    );
    assert_eq!(daemon.package_names("jammy"), Vec::<String>::new());
    let scan = table(&daemon, &up, &["scan", "show", id]);
    assert!(scan.contains("decision: reject by security"), "{scan}");
    fails(
        &daemon,
        &maintainer,
        &["decision", "approve", "nope", "--justification", "x"],
        4,
        "404",
    );

    // scan rescan (admin)
    fails(&daemon, &maintainer, &["scan", "rescan"], 3, "403");
    let rescanned = json_of(&daemon, &daemon.admin, &["scan", "rescan"]);
    assert_eq!(rescanned["scanned"], 1);
    let rescanned = table(&daemon, &daemon.admin, &["scan", "rescan"]);
    assert_eq!(rescanned, "scanned 1 packages, 1 with findings\n");
    // The VEX document carries the rejection.
    let vex = json_of(&daemon, &up, &["distributions", "vex", "jammy"]);
    assert_eq!(vex["statements"][0]["status"], "affected", "{vex}");
}

#[test]
fn plugins_tokens_audit_completions_and_parity() {
    let daemon = Daemon::start();
    let admin = daemon.admin.clone();

    // plugins list / remove / add / reload
    let plugins = json_of(&daemon, &admin, &["plugins", "list"]);
    let loaded = plugins["plugins"].as_array().unwrap();
    assert_eq!(loaded.len(), 4, "{plugins}");
    let policy = loaded.iter().find(|p| p["kind"] == "policy").unwrap();
    let policy_name = policy["name"].as_str().unwrap().to_owned();
    let listed = table(&daemon, &admin, &["plugins", "list"]);
    assert!(listed.starts_with("contract "), "{listed}");
    let row = listed
        .lines()
        .find(|l| l.contains(" family ") && l.contains("jammy"))
        .expect(&listed);
    assert!(row.contains("loaded"), "{row}");
    let reader = daemon.token("reader", "viewer");
    fails(
        &daemon,
        &reader,
        &["plugins", "remove", &policy_name],
        3,
        "403",
    );
    let removed = json_of(&daemon, &admin, &["plugins", "remove", &policy_name]);
    assert_eq!(removed, json!({"removed": policy_name}));
    assert_eq!(
        json_of(&daemon, &reader, &["plugins", "list"])["plugins"]
            .as_array()
            .unwrap()
            .len(),
        3
    );
    fails(
        &daemon,
        &admin,
        &["plugins", "remove", &policy_name],
        4,
        "404",
    );
    let file = wasm("repod_plugin_policy_default");
    let added = table(&daemon, &admin, &["plugins", "add", file.to_str().unwrap()]);
    assert!(
        added.starts_with(&format!("added plugin {policy_name} ")),
        "{added}"
    );
    let replaced = json_of(&daemon, &admin, &["plugins", "add", file.to_str().unwrap()]);
    assert_eq!(replaced["name"], policy_name.as_str());
    let dir = tempfile::tempdir().unwrap();
    let junk = dir.path().join("junk.wasm");
    std::fs::write(&junk, b"not wasm").unwrap();
    fails(
        &daemon,
        &admin,
        &["plugins", "add", junk.to_str().unwrap()],
        3,
        "422",
    );
    fails(
        &daemon,
        &admin,
        &["plugins", "add", "/nonexistent.wasm"],
        1,
        "cannot read",
    );
    let reloaded = json_of(&daemon, &admin, &["plugins", "reload"]);
    assert_eq!(
        reloaded["plugins"].as_array().unwrap().len(),
        4,
        "{reloaded}"
    );

    // tokens create / list / revoke
    let run = repod(
        &daemon,
        &admin,
        &["tokens", "create", "--role", "uploader", "--name", "robot"],
    );
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    let secret = run.stdout.lines().last().unwrap().to_owned();
    assert!(secret.starts_with("repod_"), "{}", run.stdout);
    assert!(
        run.stderr.contains("created uploader token robot"),
        "{}",
        run.stderr
    );
    table(&daemon, &secret, &["packages", "list"]);
    let created = json_of(
        &daemon,
        &admin,
        &["tokens", "create", "--role", "reader", "--name", "eyes"],
    );
    assert_eq!(created["role"], "reader");
    assert!(created["token"].as_str().unwrap().starts_with("repod_"));
    fails(
        &daemon,
        &admin,
        &["tokens", "create", "--role", "reader", "--name", "eyes"],
        3,
        "409",
    );
    fails(
        &daemon,
        &admin,
        &["tokens", "create", "--role", "king", "--name", "x"],
        2,
        "king",
    );
    let tokens = json_of(&daemon, &admin, &["tokens", "list"]);
    let robot = tokens["tokens"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "robot")
        .unwrap()
        .clone();
    assert_eq!(robot["role"], "uploader");
    assert!(robot.get("token").is_none(), "no secrets listed: {robot}");
    let tokens = table(&daemon, &admin, &["tokens", "list"]);
    let row = tokens
        .lines()
        .find(|l| l.contains(" robot "))
        .expect(&tokens);
    assert!(
        row.contains("uploader") && row.contains(robot["id"].as_str().unwrap()),
        "{row}"
    );
    fails(&daemon, &reader, &["tokens", "list"], 3, "403");
    let robot_id = robot["id"].as_str().unwrap();
    assert_eq!(
        table(&daemon, &admin, &["tokens", "revoke", robot_id]),
        format!("revoked {robot_id}\n")
    );
    fails(&daemon, &secret, &["packages", "list"], 3, "401");
    fails(
        &daemon,
        &admin,
        &["tokens", "revoke", robot_id],
        4,
        "no token",
    );

    // audit list, filtered
    let audit = json_of(&daemon, &admin, &["audit", "list", "--action", "token."]);
    let actions: BTreeSet<&str> = audit["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(actions, BTreeSet::from(["token.create", "token.revoke"]));
    let revoked = json_of(
        &daemon,
        &admin,
        &["audit", "list", "--target", robot_id, "--actor", "admin"],
    );
    assert_eq!(revoked["entries"].as_array().unwrap().len(), 2, "{revoked}");
    let audit = table(&daemon, &admin, &["audit", "list", "--action", "plugin"]);
    let row = audit
        .lines()
        .find(|l| l.contains("plugin.remove"))
        .expect(&audit);
    assert!(row.contains(&policy_name) && row.contains("admin"), "{row}");
    fails(&daemon, &reader, &["audit", "list"], 3, "403");

    // migrate --fail-on-skip: a skipped package (another file of the same
    // name, version and architecture in the target) fails the batch (1).
    let token = &admin;
    upload(
        &daemon,
        token,
        "focal",
        &small_deb("clash", "1", "amd64", "", "ours"),
    );
    let theirs = small_deb("clash", "1", "amd64", "Source: clash-fork\n", "theirs");
    upload(&daemon, token, "jammy", &theirs);
    let run = repod(
        &daemon,
        token,
        &[
            "migrate",
            "--from",
            "focal",
            "--to",
            "jammy",
            "--fail-on-skip",
        ],
    );
    assert_eq!(run.code, Some(1), "{}{}", run.stdout, run.stderr);
    assert!(
        run.stdout
            .contains("0 copied, 0 already present, 1 skipped"),
        "{}",
        run.stdout
    );
    assert!(
        run.stderr.contains("1 packages were skipped"),
        "{}",
        run.stderr
    );

    // Usage errors are 2, an unreachable daemon 5.
    let run = Command::new(repod_bin())
        .args(["packages", "frobnicate"])
        .output()
        .unwrap();
    assert_eq!(run.status.code(), Some(2));
    let run = Command::new(repod_bin())
        .args([
            "packages",
            "list",
            "--url",
            "http://127.0.0.1:9",
            "--token",
            "x",
            "--output",
            "json",
        ])
        .output()
        .unwrap();
    assert_eq!(run.status.code(), Some(5));
    assert!(run.stdout.is_empty());
    assert!(String::from_utf8_lossy(&run.stderr).contains("cannot reach"));
    let help = Command::new(repod_bin()).arg("--help").output().unwrap();
    let help = String::from_utf8(help.stdout).unwrap();
    assert!(
        help.contains("4  not found") && help.contains("5  the server failed"),
        "{help}"
    );

    // completions
    for shell in ["bash", "zsh", "fish", "elvish", "powershell"] {
        let run = Command::new(repod_bin())
            .args(["completions", shell])
            .output()
            .unwrap();
        assert!(run.status.success(), "{shell}");
        let script = String::from_utf8(run.stdout).unwrap();
        assert!(
            script.contains("advisories") && script.contains("client-config"),
            "{shell}"
        );
    }
    let bash = Command::new(repod_bin())
        .args(["completions", "bash"])
        .output()
        .unwrap();
    let bash = String::from_utf8(bash.stdout).unwrap();
    assert!(bash.contains("complete -F _repod"), "{bash}");

    // Parity: every operation the OpenAPI document lists has a subcommand.
    let doc = daemon.get("/api/v1/openapi.json", None).body;
    let mut routes = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            routes.insert(format!("{} {path}", method.to_uppercase()));
        }
    }
    let covered: BTreeSet<String> = PARITY.iter().map(|(route, _)| route.to_string()).collect();
    assert_eq!(routes, covered, "routes without a subcommand, or gone");
    for (route, words) in PARITY {
        let help = Command::new(repod_bin())
            .args(words.split(' '))
            .arg("--help")
            .output()
            .unwrap();
        assert!(help.status.success(), "{route}: repod {words} --help");
    }
}

/// Each API operation and the subcommand that calls it.
const PARITY: [(&str, &str); 41] = [
    ("GET /plugins", "plugins list"),
    ("POST /plugins", "plugins add"),
    ("POST /plugins/reload", "plugins reload"),
    ("DELETE /plugins/{name}", "plugins remove"),
    ("GET /distributions", "distributions list"),
    ("GET /distributions/{id}", "distributions show"),
    (
        "POST /distributions/{id}/compare-versions",
        "distributions compare",
    ),
    ("POST /distributions/{id}/publish", "distributions publish"),
    (
        "GET /distributions/{id}/client-config",
        "distributions client-config",
    ),
    ("PUT /distributions/{id}/comps", "distributions comps set"),
    ("GET /distributions/{id}/comps", "distributions comps show"),
    (
        "DELETE /distributions/{id}/comps",
        "distributions comps remove",
    ),
    ("GET /distributions/{id}/packages", "packages list"),
    ("GET /distributions/{id}/vex", "distributions vex"),
    ("POST /distributions/promote", "promote"),
    ("POST /distributions/migrate", "migrate"),
    ("POST /distributions/init", "init"),
    ("GET /distributions/{id}/versions", "versions"),
    ("GET /distributions/{id}/versions/{number}", "versions"),
    ("POST /distributions/{id}/rollback", "rollback"),
    ("POST /packages", "upload"),
    ("GET /packages", "packages list"),
    ("GET /packages/{id}", "packages show"),
    ("DELETE /packages/{id}", "packages remove"),
    ("GET /packages/{id}/scan", "scan show"),
    ("POST /packages/{id}/decision", "decision approve"),
    ("GET /scans", "scan report"),
    ("POST /scans/rescan", "scan rescan"),
    ("POST /tokens", "tokens create"),
    ("GET /tokens", "tokens list"),
    ("DELETE /tokens/{id}", "tokens revoke"),
    ("GET /audit", "audit list"),
    ("POST /advisories", "advisories import"),
    ("GET /advisories", "advisories list"),
    ("GET /advisories/{id}", "advisories show"),
    ("GET /advisories/imports", "advisories imports"),
    ("POST /advisories/sync", "advisories sync"),
    ("GET /advisories/feeds", "advisories feeds"),
    ("GET /whoami", "whoami"),
    ("GET /overview", "distributions overview"),
    ("GET /packages/{id}/details", "packages show"),
];
