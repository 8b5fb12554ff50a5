//! The `repod` binary itself, as a user runs it.
//!
//! Besides checking the entry point, this integration test makes `cargo test
//! --workspace` (and nextest) build `target/<profile>/repod` with the same
//! dependency features as the test executables, so `scripts/test` needs no
//! separate `cargo build -p repod`, which compiled ~60 crates (wasmtime,
//! sqlx, sequoia...) a second time with other features.

use std::process::Command;

fn repod(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_repod"))
        .args(args)
        .output()
        .expect("run the repod binary")
}

#[test]
fn version_names_the_crate_version() {
    let out = repod(&["--version"]);
    assert!(out.status.success());
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        format!("repod {}", env!("CARGO_PKG_VERSION"))
    );
}

#[test]
fn an_unknown_subcommand_is_a_usage_error() {
    let out = repod(&["frobnicate"]);
    assert_eq!(out.status.code(), Some(2), "usage errors exit 2");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("unrecognized subcommand 'frobnicate'"),
        "{stderr}"
    );
}

#[test]
fn serve_with_a_missing_config_file_says_which_file() {
    let out = repod(&["serve", "--config", "/nonexistent/repod.toml"]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("/nonexistent/repod.toml"), "{stderr}");
}
