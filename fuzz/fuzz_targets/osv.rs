//! OSV import (one JSON record, a JSON array, or an all.zip): any bytes give
//! an import (records accepted and rejected) or an `ImportError`, never a
//! panic, a hang or unbounded memory. Accepted records then go through what
//! the scanner does with them (severity, the version comparisons a range
//! needs, the range walk), since a record that parses can still carry a
//! range the evaluator trips on. Plain byte order stands in for a family's
//! version order: any total order exercises the walk.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let limits = repod_osv::Limits::default();
    if let Ok(import) = repod_osv::parse(data, &limits) {
        for advisory in &import.advisories {
            let _ = repod_osv::severity(advisory);
            for affected in &advisory.affected {
                for version in ["0", "1.0-1", "2:1.2.3~rc1-1ubuntu0.1"] {
                    let _ = repod_osv::comparisons(affected, version);
                    let _ = repod_osv::is_affected(affected, version, &|a: &str, b: &str| a.cmp(b));
                }
            }
        }
    }
});
