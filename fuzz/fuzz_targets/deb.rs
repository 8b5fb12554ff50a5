//! `.deb` reader: any bytes give a package or a `ReadError`, never a panic,
//! a hang or unbounded memory; and what it reads survives the JSON round trip
//! the host stores it through (a package is prepared again from that JSON).
#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "scratch.rs"]
mod scratch;

fuzz_target!(|data: &[u8]| {
    let path = scratch::file_with(data);
    if let Ok(package) = repod_reader::read_deb(path, &repod_reader::Limits::default()) {
        let package = repod_reader::Package::Deb(package);
        let json = serde_json::to_vec(&package).expect("a read package serialises");
        let back: repod_reader::Package =
            serde_json::from_slice(&json).expect("its JSON reads back");
        assert_eq!(back, package, "the JSON round trip changed the package");
    }
});
