//! Reads packages with the default limits and prints what the host would
//! get, with the time each took: `cargo run --release -p repod-reader
//! --example read_package -- FILE...`.

use std::time::Instant;

use repod_reader::{Limits, Package, read};

fn main() {
    let limits = Limits::default();
    for path in std::env::args_os().skip(1).map(std::path::PathBuf::from) {
        let size = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
        // Best of three, so the page cache and allocator warm-up do not count.
        let mut best = None;
        let mut result = None;
        for _ in 0..3 {
            let started = Instant::now();
            let outcome = read(&path, &limits);
            let took = started.elapsed();
            best = Some(best.map_or(took, |b: std::time::Duration| b.min(took)));
            result = Some(outcome);
        }
        let took = best.unwrap_or_default();
        match result.expect("ran") {
            Ok(Package::Deb(deb)) => println!(
                "{}: deb {} {} ({} fields, {} files), {size} bytes in {took:?}",
                path.display(),
                deb.field("Package").unwrap_or("?"),
                deb.field("Version").unwrap_or("?"),
                deb.control.len(),
                deb.files.len()
            ),
            Ok(Package::Rpm(rpm)) => println!(
                "{}: rpm {}-{}-{}.{} ({} files, {} requires, signature {:?}), {size} bytes in {took:?}",
                path.display(),
                rpm.name,
                rpm.version,
                rpm.release,
                rpm.arch,
                rpm.files.len(),
                rpm.requires.len(),
                rpm.signature
            ),
            Err(e) => println!("{}: refused: {e}", path.display()),
        }
    }
}
