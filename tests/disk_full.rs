//! Out of space: an upload or a publish on a data directory that has filled
//! up is refused with a 507 problem and leaves nothing half-stored, the tree
//! served stays the last good one, and once space returns the daemon works
//! again without a restart. A read-only data directory at start is a clear
//! error, not a panic. (The data directory is a small tmpfs of its own.)

use std::path::{Path, PathBuf};
use std::process::Command;

use repod_tests::apt::root_for;
use repod_tests::{Daemon, fixtures, repod_bin};

/// Bytes free on the file system holding `path`.
fn free_bytes(path: &Path) -> u64 {
    let out = Command::new("df")
        .args(["--output=avail", "-B1"])
        .arg(path)
        .output()
        .unwrap();
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .nth(1)
        .unwrap()
        .trim()
        .parse()
        .unwrap()
}

/// Takes all but `leave` bytes of the data directory's file system, in a
/// file named `name`.
fn fill(daemon: &Daemon, name: &str, leave: u64) -> PathBuf {
    let filler = daemon.data.path().join(name);
    let size = free_bytes(daemon.data.path()).saturating_sub(leave);
    let chunk = vec![0x5au8; 1 << 20];
    let mut file = std::fs::File::create(&filler).unwrap();
    let mut written = 0;
    while written < size {
        let n = chunk.len().min((size - written) as usize);
        use std::io::Write;
        if file.write_all(&chunk[..n]).is_err() {
            break;
        }
        written += n as u64;
    }
    filler
}

/// A .deb of about `size` bytes that gzip cannot shrink.
fn incompressible_deb(name: &str, size: usize) -> Vec<u8> {
    let payload = fixtures::noise(size);
    let control = format!(
        "Package: {name}\nVersion: 1.0\nArchitecture: amd64\nMaintainer: T <t@test.invalid>\nDescription: big\n big\n"
    );
    let path = format!("./usr/share/{name}/blob");
    fixtures::raw_deb(control.as_bytes(), &[(path.as_bytes(), &payload)])
}

fn files_in(dir: &Path) -> usize {
    fixtures::snapshot(dir).len()
}

#[test]
fn a_full_disk_refuses_with_507_changes_nothing_and_recovers() {
    let daemon = Daemon::builder()
        .sqlite()
        .filesystem()
        .data_on_tmpfs(48)
        .start();
    let up = daemon.token("uploader", "ci");
    let upload =
        |bytes: &[u8]| daemon.upload("/api/v1/packages?distribution=jammy", Some(&up), bytes);
    assert_eq!(
        upload(&fixtures::small_deb("first", "1.0", "amd64", "", "x")).status,
        201
    );
    daemon.publish_all();
    let in_release = daemon.fetch("/repos/dists/jammy/InRelease");
    let blobs = daemon.data.path().join("blobs");
    assert_eq!(files_in(&blobs), 1);

    // Half a MiB left: a 2 MiB package does not fit.
    let filler = fill(&daemon, "filler", 512 << 10);
    let big = incompressible_deb("big", 2 << 20);
    let detail = upload(&big).problem(507);
    assert!(
        detail.contains("storage is full") && detail.contains("free space"),
        "{detail}"
    );
    assert_eq!(daemon.package_names("jammy"), ["first"]);
    assert_eq!(files_in(&blobs), 1, "half-stored blob");
    assert_eq!(
        files_in(&daemon.data.path().join("tmp")),
        0,
        "temporary upload left"
    );

    // Nothing left at all: a publish fails the same way, and the tree
    // served is the last good one.
    let rest = fill(&daemon, "rest", 0);
    let reply = daemon.post_json(
        "/api/v1/distributions/jammy/publish",
        Some(&up),
        serde_json::json!({}),
    );
    let detail = reply.problem(507);
    assert!(detail.contains("last good one"), "{detail}");
    assert_eq!(daemon.fetch("/repos/dists/jammy/InRelease"), in_release);
    assert!(
        !daemon.data.path().join("publish/staging").exists()
            || files_in(&daemon.data.path().join("publish/staging")) == 0,
        "a half-built tree was left in staging"
    );
    let small = upload(&fixtures::small_deb("second", "1.0", "amd64", "", "y"));
    assert_eq!(small.status, 507, "{:?}", small.body);
    assert_eq!(daemon.package_names("jammy"), ["first"]);

    // Space returns: no restart needed.
    std::fs::remove_file(&filler).unwrap();
    std::fs::remove_file(&rest).unwrap();
    assert_eq!(upload(&big).status, 201);
    daemon.publish("jammy", &up);
    let apt = root_for(&daemon, "jammy", "", "amd64", &[], &daemon.served_key());
    apt.update().assert_ok();
    assert!(
        apt.cache(&["show", "big"]).ok(),
        "apt does not see the package stored after the disk was freed"
    );
    assert!(daemon.log().contains("out of space"), "{}", daemon.log());
}

#[test]
fn a_read_only_data_directory_is_a_clear_error_at_start() {
    let mut daemon = Daemon::builder()
        .sqlite()
        .filesystem()
        .data_on_tmpfs(32)
        .start();
    daemon.kill();
    let data = daemon.data.path().to_owned();
    let remount = |how: &str| {
        let status = Command::new("mount")
            .args(["-o", &format!("remount,{how}")])
            .arg(&data)
            .status()
            .unwrap();
        assert!(status.success());
    };
    remount("ro");
    let out = Command::new(repod_bin())
        .args(["serve", "--listen", "127.0.0.1:0", "--data"])
        .arg(&data)
        .env("RUST_LOG", "warn")
        .output()
        .unwrap();
    remount("rw");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success(),
        "started on a read-only data directory: {stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(
        stderr.contains("read-only") || stderr.contains("Read-only"),
        "{stderr}"
    );
    assert!(
        stderr.contains(&*data.to_string_lossy()),
        "the message should name the directory: {stderr}"
    );
}
