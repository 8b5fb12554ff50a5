//! A node's caches of the object store (`<data>/blobs/` and
//! `<data>/cache/trees/`), kept under `[storage] cache-max-mib`.
//!
//! Every file in them is a whole, hash-checked copy of an object (fetched
//! into `<data>/tmp` and renamed in), so any of them can be deleted at any
//! moment and is fetched again when next needed. Use is recorded in the
//! file's mtime ([`touch`], at most once a minute per file); the trim
//! deletes the least recently used files until the caches are at 90% of
//! the cap, sparing files used within [`Trim::spare`] (a path handed out a
//! moment ago may not be open yet).

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

/// Whether a cached file with this metadata should be marked as used now
/// (it was not within the last minute).
pub fn stale(meta: &std::fs::Metadata) -> bool {
    meta.modified()
        .ok()
        .and_then(|m| SystemTime::now().duration_since(m).ok())
        .is_none_or(|age| age >= Duration::from_secs(60))
}

/// Marks `path` as used now, unless it was marked within the last minute.
/// Failures are ignored: a missed mark only makes the file look older.
/// Blocking.
pub fn touch(path: &Path, meta: &std::fs::Metadata) {
    if stale(meta)
        && let Ok(file) = std::fs::File::open(path)
    {
        let _ = file.set_modified(SystemTime::now());
    }
}

/// How to trim: the cap and the files spared.
#[derive(Debug, Clone, Copy)]
pub struct Trim {
    pub max_bytes: u64,
    /// Files used more recently than this are never deleted.
    pub spare: Duration,
}

/// What a trim did.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Trimmed {
    pub files: usize,
    pub bytes: u64,
    /// What the caches hold afterwards.
    pub left: u64,
}

/// Deletes the least recently used files of `dirs` (each `<ab>/<hash>`
/// below it) while they hold more than the cap. Blocking.
pub fn trim(dirs: &[PathBuf], how: Trim) -> std::io::Result<Trimmed> {
    let mut files: Vec<(SystemTime, u64, PathBuf)> = Vec::new();
    for dir in dirs {
        let Ok(shards) = std::fs::read_dir(dir) else {
            continue;
        };
        for shard in shards {
            let shard = shard?.path();
            let Ok(entries) = std::fs::read_dir(&shard) else {
                continue;
            };
            for entry in entries {
                let entry = entry?;
                let Ok(meta) = entry.metadata() else {
                    continue;
                };
                if meta.is_file() {
                    let used = meta.modified().unwrap_or(SystemTime::UNIX_EPOCH);
                    files.push((used, meta.len(), entry.path()));
                }
            }
        }
    }
    let mut left: u64 = files.iter().map(|f| f.1).sum();
    let mut done = Trimmed::default();
    if left <= how.max_bytes {
        done.left = left;
        return Ok(done);
    }
    let target = how.max_bytes / 10 * 9;
    let spared_after = SystemTime::now()
        .checked_sub(how.spare)
        .unwrap_or(SystemTime::UNIX_EPOCH);
    files.sort();
    for (used, size, path) in files {
        if left <= target || used > spared_after {
            break;
        }
        match std::fs::remove_file(&path) {
            Ok(()) => {
                done.files += 1;
                done.bytes += size;
                left -= size;
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => left -= size,
            Err(e) => return Err(e),
        }
    }
    done.left = left;
    Ok(done)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(dir: &Path, name: &str, size: usize, age_secs: u64) -> PathBuf {
        let path = dir.join(&name[..2]).join(name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, vec![0u8; size]).unwrap();
        let used = SystemTime::now() - Duration::from_secs(age_secs);
        std::fs::File::open(&path)
            .unwrap()
            .set_modified(used)
            .unwrap();
        path
    }

    #[test]
    fn the_least_recently_used_go_first_down_to_ninety_percent() {
        let root = tempfile::tempdir().unwrap();
        let (blobs, trees) = (root.path().join("blobs"), root.path().join("trees"));
        let oldest = file(&blobs, "aa01", 400, 3000);
        let older = file(&trees, "bb01", 300, 2000);
        let newer = file(&blobs, "cc01", 200, 1000);
        let newest = file(&trees, "dd01", 100, 500);
        let how = Trim {
            max_bytes: 500,
            spare: Duration::from_secs(60),
        };
        let done = trim(&[blobs.clone(), trees.clone()], how).unwrap();
        // 1000 bytes, cap 500, down to 450 or less: the two oldest go.
        assert_eq!(
            done,
            Trimmed {
                files: 2,
                bytes: 700,
                left: 300
            }
        );
        assert!(!oldest.exists() && !older.exists());
        assert!(newer.exists() && newest.exists());
        // Under the cap: nothing more.
        let again = trim(&[blobs, trees], how).unwrap();
        assert_eq!((again.files, again.left), (0, 300));
    }

    #[test]
    fn files_used_within_the_spared_time_stay_even_over_the_cap() {
        let root = tempfile::tempdir().unwrap();
        let old = file(root.path(), "aa01", 500, 3600);
        let recent = file(root.path(), "bb01", 500, 10);
        let how = Trim {
            max_bytes: 100,
            spare: Duration::from_secs(60),
        };
        let done = trim(&[root.path().to_owned()], how).unwrap();
        assert_eq!((done.files, done.left), (1, 500));
        assert!(!old.exists() && recent.exists());
    }

    #[test]
    fn touch_marks_use_at_most_once_a_minute() {
        let root = tempfile::tempdir().unwrap();
        let path = file(root.path(), "aa01", 10, 3600);
        touch(&path, &std::fs::metadata(&path).unwrap());
        let marked = std::fs::metadata(&path).unwrap().modified().unwrap();
        assert!(SystemTime::now().duration_since(marked).unwrap() < Duration::from_secs(5));
        // Within the minute: left as it is.
        let earlier = SystemTime::now() - Duration::from_secs(30);
        std::fs::File::open(&path)
            .unwrap()
            .set_modified(earlier)
            .unwrap();
        touch(&path, &std::fs::metadata(&path).unwrap());
        assert_eq!(
            std::fs::metadata(&path).unwrap().modified().unwrap(),
            earlier
        );
    }
}
