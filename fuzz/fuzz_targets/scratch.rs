//! The readers take a path (the host streams uploads to disk first), so each
//! input is written to one scratch file per fuzzing process, on tmpfs when
//! there is one.

use std::path::PathBuf;
use std::sync::LazyLock;

static SCRATCH: LazyLock<PathBuf> = LazyLock::new(|| {
    let dir = if std::path::Path::new("/dev/shm").is_dir() {
        PathBuf::from("/dev/shm")
    } else {
        std::env::temp_dir()
    };
    dir.join(format!("repod-fuzz-{}", std::process::id()))
});

/// Writes `data` to the scratch file and returns its path.
pub fn file_with(data: &[u8]) -> &'static std::path::Path {
    std::fs::write(&*SCRATCH, data).expect("write the scratch file");
    &SCRATCH
}
