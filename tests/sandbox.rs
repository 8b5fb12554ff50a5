//! The plugin sandbox, driven directly through the host library: deadlines,
//! memory caps, traps, garbage output, and the compiled-component cache.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use repod::plugins::contract::{DebPackage, Ordering, PackageMetadata, ParsedPackage};
use repod::plugins::{Limits, PluginError, PluginKind, Registry, Runtime, load_plugin};
use repod_tests::{install_first_party, wasm};

const TIMEOUT: Duration = Duration::from_millis(300);

fn runtime(cache: Option<&Path>) -> Arc<Runtime> {
    runtime_with_timeout(cache, TIMEOUT)
}

fn runtime_with_timeout(cache: Option<&Path>, call_timeout: Duration) -> Arc<Runtime> {
    let limits = Limits {
        memory_bytes: 64 << 20,
        call_timeout,
        max_instances: 16,
    };
    Arc::new(Runtime::new(limits, cache.map(Path::to_owned)).unwrap())
}

fn sections(hostile_mode: &str) -> BTreeMap<String, String> {
    BTreeMap::from([(
        "hostile".to_owned(),
        format!(r#"{{"mode":"{hostile_mode}"}}"#),
    )])
}

fn load(
    rt: &Arc<Runtime>,
    artifact: &str,
    mode: &str,
) -> Result<repod::plugins::Plugin, PluginError> {
    let bytes = std::fs::read(wasm(artifact)).unwrap();
    load_plugin(rt, &format!("{artifact}.wasm"), &bytes, &sections(mode))
}

fn family(plugin: &repod::plugins::Plugin) -> &repod::plugins::Family {
    match &plugin.kind {
        PluginKind::Family(f) => f,
        PluginKind::Policy(_) => panic!("not a family"),
    }
}

fn compare(f: &repod::plugins::Family, a: &str) -> Result<usize, PluginError> {
    f.compare_versions(&[(a.to_owned(), "1".to_owned())])
        .map(|v| v.len())
}

fn deb(name: &str) -> ParsedPackage {
    ParsedPackage {
        metadata: PackageMetadata::Deb(DebPackage {
            control: vec![("Package".into(), name.into())],
            files: vec![],
            extensions: vec![],
        }),
        checksums: vec![("sha256".into(), "0".repeat(64))],
        size: 1,
        received: 0,
        extensions: vec![],
    }
}

#[test]
fn a_looping_call_fails_at_the_deadline_and_others_keep_working() {
    let rt = runtime(None);
    let hostile = load(&rt, "repod_plugin_hostile", "").unwrap();
    let debian = load(&rt, "repod_plugin_debian", "").unwrap();
    let (hostile, debian) = (Arc::new(hostile), Arc::new(debian));

    let h = hostile.clone();
    let spinning = std::thread::spawn(move || {
        let started = Instant::now();
        (compare(family(&h), "loop"), started.elapsed())
    });
    // While it spins, another plugin (and the same one) serve calls.
    for _ in 0..20 {
        assert_eq!(compare(family(&debian), "1.0").unwrap(), 1);
    }
    let (result, took) = spinning.join().unwrap();
    assert!(
        matches!(result, Err(PluginError::Timeout { .. })),
        "{result:?}"
    );
    // Bounded well above the deadline: the suite's passes run side by
    // side on two cores, and an endless loop would never end at all.
    assert!(
        took >= TIMEOUT && took < TIMEOUT * 10,
        "deadline {TIMEOUT:?}, took {took:?}"
    );
    // The store that timed out is gone; the next call gets a fresh one.
    assert_eq!(compare(family(&hostile), "1.0").unwrap(), 1);
}

#[test]
fn plugins_see_no_clock_env_args_or_files_and_fixed_randomness() {
    let rt = runtime(None);
    let plugin = load(&rt, "repod_plugin_hostile", "").unwrap();
    let f = family(&plugin);
    let pairs = |a: &str, n: usize| vec![(a.to_owned(), String::new()); n];
    let senses = f.compare_versions(&pairs("senses", 4)).unwrap();
    // clock, environment, arguments, filesystem: none visible.
    assert_eq!(senses, [Ordering::Equal; 4], "{senses:?}");

    let first = f.compare_versions(&pairs("random", 64)).unwrap();
    assert!(first.contains(&Ordering::Greater) && first.contains(&Ordering::Equal));
    for _ in 0..3 {
        assert_eq!(f.compare_versions(&pairs("random", 64)).unwrap(), first);
    }
}

#[test]
fn unbounded_allocation_fails_at_the_cap() {
    // A generous clock: on a loaded machine, growing to 64 MiB can take
    // longer than the loop test's timeout, and the cap must be what stops it.
    let rt = runtime_with_timeout(None, Duration::from_secs(30));
    let hostile = load(&rt, "repod_plugin_hostile", "").unwrap();
    let err = compare(family(&hostile), "alloc").unwrap_err();
    assert!(
        matches!(err, PluginError::MemoryLimit { limit_mib: 64, .. }),
        "{err:?}"
    );
    assert_eq!(compare(family(&hostile), "1.0").unwrap(), 1);
}

#[test]
fn panics_and_traps_fail_cleanly() {
    let rt = runtime(None);
    let hostile = load(&rt, "repod_plugin_hostile", "").unwrap();
    match compare(family(&hostile), "panic").unwrap_err() {
        PluginError::Trapped { message, .. } => {
            assert!(
                message.contains("hostile plugin panics on purpose"),
                "{message}"
            )
        }
        other => panic!("{other:?}"),
    }
    match compare(family(&hostile), "trap").unwrap_err() {
        PluginError::Trapped { message, .. } => {
            assert!(message.contains("unreachable"), "{message}")
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(compare(family(&hostile), "1.0").unwrap(), 1);
}

#[test]
fn garbage_output_is_rejected() {
    let rt = runtime(None);
    let plugin = load(&rt, "repod_plugin_hostile", "").unwrap();
    let f = family(&plugin);
    let dist = f.distribution("hostile-1").unwrap().clone();

    fn bad_output<T>(r: Result<T, PluginError>) -> String {
        match r {
            Err(PluginError::BadOutput { message, .. }) => message,
            Err(other) => panic!("expected BadOutput, got {other:?}"),
            Ok(_) => panic!("expected BadOutput, got success"),
        }
    }
    let prepare = |name: &str| f.prepare(&dist, &[deb(name)]);
    assert!(bad_output(prepare("dotdot")).contains("pool path \"pool/../../../etc/passwd\""));
    assert!(bad_output(prepare("huge")).contains("index entry is 20971520 bytes long"));
    assert!(bad_output(prepare("badindex")).contains("does not declare"));
    assert!(bad_output(prepare("ctrl")).contains("control characters"));
    assert!(bad_output(compare(f, "short")).contains("returned 0 results for 1 inputs"));
    assert!(
        bad_output(f.render_client_config(&dist, "http://x", "http://x/k"))
            .contains("\"../../etc/apt/sources.list\"")
    );
    assert!(bad_output(f.render_top_level(&dist, &[], 0)).contains("public key path"));

    // A well-formed request still goes through.
    let ok = prepare("fine").unwrap();
    assert_eq!(
        ok[0].as_ref().unwrap().pool_paths,
        ["pool/main/h/fine/fine_1.0_amd64.deb"]
    );
}

#[test]
fn misbehaving_describe_keeps_the_plugin_out() {
    let rt = runtime(None);
    let outcome = |mode| {
        load(&rt, "repod_plugin_hostile", mode)
            .err()
            .map(|e| e.to_string())
    };
    let timeout = outcome("loop").unwrap();
    assert!(
        timeout.contains("did not finish within its deadline"),
        "{timeout}"
    );
    assert!(
        outcome("bad-id")
            .unwrap()
            .contains("distribution id \"../etc\" is not a valid id")
    );
    assert!(
        outcome("huge-name")
            .unwrap()
            .contains("display name is 8388608 bytes long")
    );
    assert!(
        outcome("reject")
            .unwrap()
            .contains("rejected its configuration: mode reject")
    );
    assert!(outcome("").is_none());
}

#[test]
fn registry_skips_clashes_and_keeps_the_rest() {
    let rt = runtime(None);
    let dir = tempfile::tempdir().unwrap();
    install_first_party(dir.path());
    std::fs::copy(
        wasm("repod_plugin_hostile"),
        dir.path().join("hostile.wasm"),
    )
    .unwrap();
    std::fs::copy(
        wasm("repod_plugin_debian"),
        dir.path().join("zz-debian-again.wasm"),
    )
    .unwrap();
    let registry = Registry::scan(&rt, dir.path(), &sections("steal"));
    assert_eq!(registry.plugins().count(), 4);
    assert_eq!(registry.distributions().count(), 11);
    let errors: Vec<String> = registry
        .failures()
        .iter()
        .map(|f| format!("{}: {}", f.file, f.error))
        .collect();
    assert_eq!(errors.len(), 2, "{errors:?}");
    assert!(
        errors[0]
            .starts_with("hostile.wasm: distribution jammy is already provided by plugin debian"),
        "{errors:?}"
    );
    assert!(
        errors[1].starts_with(
            "zz-debian-again.wasm: plugin name debian is already taken by debian.wasm"
        ),
        "{errors:?}"
    );
}

#[test]
fn compiled_components_are_cached_on_disk() {
    let cache = tempfile::tempdir().unwrap();
    let rt = runtime(Some(cache.path()));
    let first = load(&rt, "repod_plugin_debian", "").unwrap();
    assert!(!first.meta.load.from_cache);
    let cached: Vec<_> = std::fs::read_dir(cache.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(cached.len(), 1);
    let name = cached[0]
        .file_name()
        .unwrap()
        .to_string_lossy()
        .into_owned();
    assert!(name.starts_with(&first.meta.sha256), "{name}");
    assert!(
        name.contains(&format!("wasmtime{}", repod::plugins::WASMTIME_VERSION)),
        "{name}"
    );

    // A second runtime (a restart) loads the compiled form.
    let rt2 = runtime(Some(cache.path()));
    let second = load(&rt2, "repod_plugin_debian", "").unwrap();
    assert!(second.meta.load.from_cache);
    assert_eq!(compare(family(&second), "1.0").unwrap(), 1);

    // A damaged cache entry is discarded and rebuilt, not trusted.
    std::fs::write(&cached[0], b"not a compiled component").unwrap();
    let rt3 = runtime(Some(cache.path()));
    let third = load(&rt3, "repod_plugin_debian", "").unwrap();
    assert!(!third.meta.load.from_cache);
    assert_eq!(compare(family(&third), "1.0").unwrap(), 1);
    assert!(std::fs::read(&cached[0]).unwrap().len() > 1000);
}

#[test]
fn the_default_policy_decides_through_the_sandbox() {
    use repod::plugins::policy_contract::{Advisory, Case, Severity, Subject, Verdict};
    let rt = runtime(None);
    let plugin = load(&rt, "repod_plugin_policy_default", "").unwrap();
    let PluginKind::Policy(policy) = &plugin.kind else {
        panic!("not a policy")
    };
    let case = |severity| Case {
        subject: Subject {
            name: "openssl".into(),
            version: "3.0.2-0ubuntu1".into(),
            architecture: "amd64".into(),
            distribution: "jammy".into(),
            grype_id: "ubuntu:22.04".into(),
            osv_ecosystem: "Ubuntu:22.04:LTS".into(),
            extensions: vec![],
        },
        advisories: vec![Advisory {
            id: "CVE-2024-0001".into(),
            severity,
            cvss_score: Some(9.8),
            fixed_versions: vec!["3.0.2-0ubuntu1.15".into()],
            summary: String::new(),
            extensions: vec![],
        }],
    };
    let decisions = policy
        .evaluate(&[
            case(Severity::Low),
            case(Severity::High),
            case(Severity::Critical),
        ])
        .unwrap();
    let verdicts: Vec<Verdict> = decisions.iter().map(|d| d.verdict).collect();
    // The defaults: quarantine High and Critical findings that have a fix;
    // never block.
    assert_eq!(
        verdicts,
        [Verdict::Allow, Verdict::Quarantine, Verdict::Quarantine]
    );
    assert!(decisions[2].reason.contains("CVE-2024-0001"));
}
