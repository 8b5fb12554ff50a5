//! Tests on the real OSV records in the shared advisories folder
//! (`REPOD_ADVISORIES`, see `common::advisories_dir`).

mod common;

use std::cmp::Ordering;

use common::{dotted_cmp, dpkg_cmp, evaluate, load, read, record_files, rpm_cmp};
use repod_osv::{Advisory, Event, Hit, Matched, Severity, comparisons, matches, severity, source};

/// The order an ecosystem's versions follow (the product asks its plugins).
fn order_for(ecosystem: &str) -> fn(&str, &str) -> Ordering {
    let base = ecosystem.split(':').next().unwrap();
    match base {
        "Debian" | "Ubuntu" => dpkg_cmp,
        "AlmaLinux" | "Red Hat" | "Rocky Linux" => rpm_cmp,
        "crates.io" => dotted_cmp,
        other => panic!("no test order for ecosystem {other}"),
    }
}

/// All hits of `version` of package `name` in `ecosystem`, over every matching entry.
fn scan(adv: &Advisory, ecosystem: &str, name: &str, version: &str) -> Vec<Hit> {
    matches(adv, ecosystem, &[name])
        .filter_map(|a| evaluate(a, version, order_for(ecosystem)))
        .collect()
}

fn fixed(adv: &Advisory, ecosystem: &str, name: &str, version: &str) -> Option<Option<String>> {
    let hits = scan(adv, ecosystem, name, version);
    assert!(hits.len() <= 1, "{hits:?}");
    hits.into_iter().next().map(|h| h.fixed)
}

#[test]
fn test_orders_behave_like_dpkg_and_rpm() {
    use Ordering::*;
    for (a, b, want) in [
        ("1.0~rc1", "1.0", Less),
        ("1.1.0l-1~deb9u6", "1.1.0l-1", Less),
        ("1:1.0", "2.0", Greater),
        ("2.35-0ubuntu3.10", "2.35-0ubuntu3.4", Greater),
        ("1.0a", "1.0+", Less),
        (
            "0.8.6-svn20061012.debian-5etch1",
            "0.8.6-svn20061012.debian-5.1+etch2",
            Less,
        ),
        ("1.18.26", "1.18.25", Greater),
        ("1.0", "1.00", Equal),
    ] {
        assert_eq!(dpkg_cmp(a, b), want, "dpkg {a} vs {b}");
    }
    for (a, b, want) in [
        ("1.34-5.el9", "2:1.34-6.el9_1", Less),
        ("0:2.13.3-3.el8_6.1", "2.13.3-3.el8_6.1", Equal),
        ("252-32.el9_4", "252-32.el9_4.alma.1", Less),
        ("252-32.el9_4.1", "252-32.el9_4.alma.1", Greater),
        ("1.9.5p2-7.el9_1.1", "1.9.5p2-7.el9_1", Greater),
        ("1.0~beta-1", "1.0-1", Less),
        ("1.0^git1-1", "1.0-1", Greater),
        ("1.010-1", "1.9-1", Greater),
    ] {
        assert_eq!(rpm_cmp(a, b), want, "rpm {a} vs {b}");
    }
}

#[test]
fn every_real_record_imports_verbatim() {
    let files = record_files();
    assert_eq!(files.len(), 33, "the README lists 33 records");
    for file in &files {
        let adv = load(file);
        assert_eq!(adv.id.replace(':', "_") + ".json", *file);
        let text = String::from_utf8(read(file)).unwrap();
        assert_eq!(
            adv.raw,
            text.trim(),
            "{file}: raw JSON must be kept verbatim"
        );
        assert!(!adv.affected.is_empty(), "{file}");
        assert!(!adv.is_withdrawn());
    }
}

#[test]
fn severity_of_every_real_record() {
    use Severity::*;
    let summary = source::SUMMARY_PREFIX;
    // (file, level, source, CVSS score)
    let expected: &[(&str, Severity, &str, Option<f32>)] = &[
        ("ALSA-2022_4940.json", High, summary, None),
        ("ALSA-2022_7314.json", Medium, summary, None),
        ("ALSA-2023_0282.json", High, summary, None),
        ("ALSA-2023_0340.json", Medium, summary, None),
        ("ALSA-2023_0343.json", Medium, summary, None),
        ("ALSA-2023_0954.json", Medium, summary, None),
        ("ALSA-2023_0959.json", Medium, summary, None),
        ("ALSA-2023_2523.json", Low, summary, None),
        ("ALSA-2023_4349.json", Medium, summary, None),
        ("ALSA-2023_5453.json", High, summary, None),
        ("ALSA-2023_5763.json", High, summary, None),
        ("ALSA-2024_0465.json", Medium, summary, None),
        ("ALSA-2024_0533.json", Medium, summary, None),
        ("ALSA-2024_1530.json", Medium, summary, None),
        ("ALSA-2024_2463.json", Medium, summary, None),
        ("ALSA-2024_4312.json", High, summary, None),
        ("ALSA-2025_1330.json", High, summary, None),
        ("ALSA-2026_26275.json", High, summary, None),
        ("DLA-3008-1.json", Unknown, source::NONE, None),
        ("DLA-3012-1.json", Unknown, source::NONE, None),
        ("DLA-3022-1.json", Unknown, source::NONE, None),
        ("DLA-3051-1.json", Unknown, source::NONE, None),
        ("DSA-1819-1.json", Unknown, source::NONE, None),
        ("DSA-3029-1.json", Unknown, source::NONE, None),
        // database_specific.severity "MODERATE"
        (
            "GHSA-wcg3-cvx6-7396.json",
            Medium,
            source::DATABASE_SPECIFIC,
            None,
        ),
        // AV:N/AC:L/PR:N/UI:N/S:U/C:N/I:N/A:H
        ("RHSA-2024_4546.json", High, source::CVSS_V3, Some(7.5)),
        // top-level CVSS_V3 9.8 beats ubuntu_priority "high"
        (
            "UBUNTU-CVE-2023-38545.json",
            Critical,
            source::CVSS_V3,
            Some(9.8),
        ),
        // only {"type":"Ubuntu","score":"medium"}
        (
            "UBUNTU-CVE-2025-38094.json",
            Medium,
            source::UBUNTU_SEVERITY,
            None,
        ),
        ("USN-6409-1.json", Unknown, source::NONE, None),
        // worst of the cves_map vectors: CVE-2023-38545 at 9.8
        (
            "USN-6429-1.json",
            Critical,
            source::CVES_MAP_CVSS_V3,
            Some(9.8),
        ),
        // CVE-2023-5363 C:H at 7.5; the others 5.3
        ("USN-6450-1.json", High, source::CVES_MAP_CVSS_V3, Some(7.5)),
        ("USN-6859-1.json", Unknown, source::NONE, None),
        // CVSS_V4 vector skipped; v3 .../C:L/I:N/A:H at 6.1 is the worst
        (
            "USN-8697-1.json",
            Medium,
            source::CVES_MAP_CVSS_V3,
            Some(6.1),
        ),
    ];
    assert_eq!(
        expected.len(),
        record_files().len(),
        "every record is listed"
    );
    for &(file, level, src, score) in expected {
        let rated = severity(&load(file));
        assert_eq!(
            (rated.level, rated.source, rated.score),
            (level, src, score),
            "{file}: {rated:?}"
        );
        assert_eq!(rated.vector.is_some(), score.is_some(), "{file}");
    }
}

#[test]
fn every_fixed_version_is_unaffected_and_every_listed_version_is_in_range() {
    let mut checked_fixed = 0;
    let mut checked_listed = 0;
    for file in record_files() {
        let adv = load(&file);
        for affected in &adv.affected {
            let order = order_for(&affected.package.ecosystem);
            for range in &affected.ranges {
                for event in &range.events {
                    if let Event::Fixed(v) = event
                        && !affected.versions.contains(v)
                    {
                        assert_eq!(evaluate(affected, v, order), None, "{file}: fixed {v}");
                        checked_fixed += 1;
                    }
                }
            }
            // osv.dev expands ranges into `versions`, so the dpkg order must
            // place every listed version inside the range.
            for v in &affected.versions {
                let hit = evaluate(affected, v, order);
                assert!(
                    matches!(
                        hit,
                        Some(Hit {
                            matched: Matched::Range(0),
                            ..
                        })
                    ),
                    "{file}: listed {v} -> {hit:?}"
                );
                checked_listed += 1;
            }
        }
    }
    assert!(checked_fixed > 300, "{checked_fixed}");
    assert!(checked_listed > 300, "{checked_listed}");
}

#[test]
fn missing_rpm_epoch_is_zero() {
    // ALSA-2023:0959 fixes tar in 2:1.34-6.el9_1; a 1.34-5.el9 without an
    // epoch is epoch 0, so it is affected.
    let adv = load("ALSA-2023_0959.json");
    let eco = "AlmaLinux:9";
    assert_eq!(
        fixed(&adv, eco, "tar", "1.34-5.el9"),
        Some(Some("2:1.34-6.el9_1".into()))
    );
    assert_eq!(
        fixed(&adv, eco, "tar", "1.34-99.el9"),
        Some(Some("2:1.34-6.el9_1".into())),
        "epoch 0 loses to epoch 2 whatever the version"
    );
    assert_eq!(
        fixed(&adv, eco, "tar", "2:1.34-5.el9"),
        Some(Some("2:1.34-6.el9_1".into()))
    );
    assert_eq!(fixed(&adv, eco, "tar", "2:1.34-6.el9_1"), None);
    assert_eq!(fixed(&adv, eco, "tar", "2:1.35-1.el9"), None);
    assert_eq!(
        fixed(&adv, "AlmaLinux:8", "tar", "1.34-5.el9"),
        None,
        "other release"
    );
}

#[test]
fn openssl_epoch_one() {
    let adv = load("ALSA-2023_2523.json");
    let eco = "AlmaLinux:9";
    for name in ["openssl", "openssl-libs", "openssl-devel", "openssl-perl"] {
        assert_eq!(
            fixed(&adv, eco, name, "1:3.0.7-5.el9"),
            Some(Some("1:3.0.7-6.el9_2".into())),
            "{name}"
        );
        assert_eq!(fixed(&adv, eco, name, "1:3.0.7-6.el9_2"), None, "{name}");
        assert_eq!(fixed(&adv, eco, name, "1:3.0.7-27.el9"), None, "{name}");
    }
    // The pitfall the README warns about: the same build read without its
    // epoch counts as epoch 0 and looks vulnerable.
    assert!(fixed(&adv, eco, "openssl-libs", "3.0.7-27.el9").is_some());
    assert_eq!(
        fixed(&adv, eco, "openssl-fips-provider", "1:3.0.7-5.el9"),
        None
    );
}

#[test]
fn two_fixed_versions_in_one_record() {
    let adv = load("ALSA-2024_4312.json");
    let eco = "AlmaLinux:9";
    assert_eq!(
        fixed(&adv, eco, "openssh-server", "8.7p1-38.el9"),
        Some(Some("8.7p1-38.el9_4.1".into()))
    );
    assert_eq!(
        fixed(&adv, eco, "pam_ssh_agent_auth", "0.10.4-5.38.el9"),
        Some(Some("0.10.4-5.38.el9_4.1".into()))
    );
    assert_eq!(fixed(&adv, eco, "openssh-server", "8.7p1-38.el9_4.1"), None);
    assert_eq!(
        fixed(&adv, eco, "pam_ssh_agent_auth", "0.10.4-5.38.el9_4.1"),
        None
    );
    // Each package only against its own entry: 0.10.4 is far below 8.7p1.
    let hits = scan(&adv, eco, "openssh-server", "0.10.4-5.38.el9_4.1");
    assert_eq!(
        hits.len(),
        1,
        "an old openssh is still affected by its own range"
    );
}

#[test]
fn alma_release_suffix_and_red_hat_zero_epoch() {
    let adv = load("ALSA-2024_2463.json");
    let eco = "AlmaLinux:9";
    assert!(fixed(&adv, eco, "systemd", "252-32.el9_4").is_some());
    assert_eq!(fixed(&adv, eco, "systemd", "252-32.el9_4.alma.1"), None);
    assert_eq!(fixed(&adv, eco, "systemd", "252-32.el9_4.1"), None);

    let adv = load("RHSA-2024_4546.json");
    for eco in [
        "Red Hat:rhel_aus:8.6::appstream",
        "Red Hat:rhel_e4s:8.6::appstream",
        "Red Hat:rhel_tus:8.6::appstream",
    ] {
        assert_eq!(
            fixed(&adv, eco, "git-lfs", "2.13.3-3.el8_6"),
            Some(Some("0:2.13.3-3.el8_6.1".into())),
            "{eco}"
        );
        assert_eq!(
            fixed(&adv, eco, "git-lfs", "2.13.3-3.el8_6.1"),
            None,
            "0: equals no epoch"
        );
    }
    assert_eq!(
        fixed(
            &adv,
            "Red Hat:enterprise_linux:8::appstream",
            "git-lfs",
            "1-1"
        ),
        None
    );
}

#[test]
fn ubuntu_records_name_source_packages() {
    let adv = load("USN-6450-1.json");
    let eco = "Ubuntu:22.04:LTS";
    // libssl3 is a binary of the openssl source package: only the source name matches.
    assert_eq!(matches(&adv, eco, &["libssl3"]).count(), 0);
    assert_eq!(matches(&adv, eco, &["libssl3", "openssl"]).count(), 1);
    assert_eq!(
        matches(&adv, "Ubuntu:22.04", &["openssl"]).count(),
        0,
        "`:LTS` is required"
    );
    assert_eq!(
        fixed(&adv, eco, "openssl", "3.0.2-0ubuntu1.10"),
        Some(Some("3.0.2-0ubuntu1.12".into()))
    );
    assert_eq!(fixed(&adv, eco, "openssl", "3.0.2-0ubuntu1.12"), None);
    assert_eq!(fixed(&adv, eco, "openssl", "3.0.2-0ubuntu1.15"), None);

    // One entry per release, each with its own fix.
    let adv = load("USN-6429-1.json");
    assert_eq!(
        fixed(&adv, "Ubuntu:20.04:LTS", "curl", "7.68.0-1ubuntu2.18"),
        Some(Some("7.68.0-1ubuntu2.20".into()))
    );
    assert_eq!(
        fixed(&adv, "Ubuntu:22.04:LTS", "curl", "7.81.0-1ubuntu1.13"),
        Some(Some("7.81.0-1ubuntu1.14".into()))
    );
    assert_eq!(
        fixed(&adv, "Ubuntu:22.04:LTS", "curl", "7.81.0-1ubuntu1.14"),
        None
    );
}

#[test]
fn dpkg_epochs_and_tildes() {
    let adv = load("USN-6859-1.json");
    let eco = "Ubuntu:22.04:LTS";
    assert_eq!(
        fixed(&adv, eco, "openssh", "1:8.9p1-3ubuntu0.6"),
        Some(Some("1:8.9p1-3ubuntu0.10".into())),
        "0.6 < 0.10 numerically"
    );
    assert_eq!(fixed(&adv, eco, "openssh", "1:8.9p1-3ubuntu0.10"), None);
    assert!(
        fixed(&adv, eco, "openssh", "8.9p1-3ubuntu0.13").is_some(),
        "no epoch is 0 < 1"
    );
    assert_eq!(
        fixed(&adv, "Ubuntu:24.04:LTS", "openssh", "1:9.6p1-3ubuntu13"),
        Some(Some("1:9.6p1-3ubuntu13.3".into()))
    );

    let adv = load("DLA-3008-1.json");
    let eco = "Debian:9";
    assert!(fixed(&adv, eco, "openssl", "1.1.0l-1~deb9u5").is_some());
    assert_eq!(fixed(&adv, eco, "openssl", "1.1.0l-1~deb9u6"), None);
    assert_eq!(
        fixed(&adv, eco, "openssl", "1.1.0l-1"),
        None,
        "1~deb9u6 < 1"
    );

    let adv = load("DSA-1819-1.json");
    let eco = "Debian:4.0";
    assert!(fixed(&adv, eco, "vlc", "0.8.6-svn20061012.debian-5etch1").is_some());
    assert!(fixed(&adv, eco, "vlc", "0.8.6-svn20061012.debian-5.1+etch2").is_some());
    assert_eq!(
        fixed(&adv, eco, "vlc", "0.8.6-svn20061012.debian-5.1+etch3"),
        None
    );
}

#[test]
fn no_fix_yet_and_last_affected() {
    let adv = load("UBUNTU-CVE-2025-38094.json");
    let eco = "Ubuntu:Pro:14.04:LTS";
    let hits = scan(&adv, eco, "linux", "3.13.0-999.999");
    assert_eq!(
        hits,
        [Hit {
            fixed: None,
            matched: Matched::Range(0)
        }]
    );
    assert_eq!(
        scan(&adv, "Ubuntu:14.04:LTS", "linux", "3.13.0-1.1").len(),
        0
    );
    let linux = matches(&adv, eco, &["linux"]).next().unwrap();
    assert_eq!(linux.versions.len(), 180);
    assert!(
        comparisons(linux, "3.13.0-999.999").is_empty(),
        "an open range from 0 decides alone; the 180 listed versions need no comparison"
    );

    // GHSA time: SEMVER [0.1, last_affected 0.2] and a second entry [0.2.7, 0.2.23).
    let adv = load("GHSA-wcg3-cvx6-7396.json");
    let hits = |v| scan(&adv, "crates.io", "time", v);
    assert_eq!(
        hits("0.1.5")
            .iter()
            .map(|h| h.fixed.clone())
            .collect::<Vec<_>>(),
        [None]
    );
    assert_eq!(hits("0.2").len(), 1, "last_affected is inclusive");
    assert!(hits("0.2.5").is_empty(), "between the two entries");
    assert_eq!(
        hits("0.2.10")
            .iter()
            .map(|h| h.fixed.clone())
            .collect::<Vec<_>>(),
        [Some("0.2.23".to_owned())]
    );
    assert!(hits("0.2.23").is_empty());
    assert!(hits("0.0.9").is_empty());
}
