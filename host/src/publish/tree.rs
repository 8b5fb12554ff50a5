//! The published tree on disk: staging directories, the atomic switch,
//! pool links and the content-addressed files kept for readers in flight.
//!
//! A distribution's generated files live in *units*: the directory of each
//! top-level file (`dists/<codename>` for a Release, `<dist>/<arch>/repodata` for a
//! repomd.xml). A publish builds every unit complete in a staging directory
//! on the same filesystem and swaps it with the live one in one
//! `renameat2(RENAME_EXCHANGE)`, so a reader sees the old unit or the new
//! one, never a mix. Package files are not in units: they are hard links to
//! the blob store, added before the switch and removed after it.

use std::collections::{BTreeMap, BTreeSet};
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// The top-level directory of the served tree the host keeps for itself.
pub const RESERVED_TOP: &str = "keys";

/// How long superseded content-addressed files (by-hash copies,
/// checksum-named repodata) and removed packages' pool files stay, by
/// default, so a client that fetched the previous Release or repomd.xml can
/// still fetch what it lists. Config: `[publish] keep-superseded-seconds`.
pub const RETAIN_SECS: i64 = 600;
/// ...but never more than this many superseded generations.
pub const RETAIN_MAX: usize = 8;

/// A directory beside the live tree where one publish is assembled.
pub struct Staging {
    pub root: PathBuf,
}

impl Staging {
    pub fn create(staging_root: &Path, dist: &str) -> io::Result<Staging> {
        std::fs::create_dir_all(staging_root)?;
        let stamp = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos();
        let root = staging_root.join(format!("{dist}-{stamp}"));
        std::fs::create_dir(&root)?;
        Ok(Staging { root })
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.root.join(rel)
    }

    pub fn write(&self, rel: &str, bytes: &[u8]) -> io::Result<()> {
        let path = self.path(rel);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::write(path, bytes)
    }

    /// Hard-links the staged file `from` at `to` (by-hash copies).
    pub fn link(&self, from: &str, to: &str) -> io::Result<()> {
        let to = self.path(to);
        if let Some(parent) = to.parent() {
            std::fs::create_dir_all(parent)?;
        }
        match std::fs::hard_link(self.path(from), &to) {
            // Two variants with equal content (an empty index, say).
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(()),
            other => other,
        }
    }
}

impl Drop for Staging {
    fn drop(&mut self) {
        // After a switch this holds the superseded units; after a failure,
        // the half-built ones. Either way it goes.
        let _ = std::fs::remove_dir_all(&self.root);
    }
}

/// Makes the staged `unit` live under `repos`, atomically.
pub fn switch(staging: &Staging, repos: &Path, unit: &str) -> io::Result<()> {
    let staged = staging.path(unit);
    let live = repos.join(unit);
    if let Some(parent) = live.parent() {
        std::fs::create_dir_all(parent)?;
    }
    match std::fs::symlink_metadata(&live) {
        Ok(meta) if meta.is_dir() => rustix::fs::renameat_with(
            rustix::fs::CWD,
            &staged,
            rustix::fs::CWD,
            &live,
            rustix::fs::RenameFlags::EXCHANGE,
        )
        .map_err(io::Error::from),
        Ok(_) => Err(io::Error::other(format!(
            "{} exists and is not a directory; refusing to replace it",
            live.display()
        ))),
        Err(e) if e.kind() == io::ErrorKind::NotFound => std::fs::rename(&staged, &live),
        Err(e) => Err(e),
    }
}

/// Links `rel` in the served tree to the blob, replacing a link to
/// anything else. Returns whether the tree changed.
pub fn link_pool_file(repos: &Path, rel: &str, blob: &Path) -> io::Result<bool> {
    let path = repos.join(rel);
    let blob_meta = std::fs::metadata(blob)?;
    match std::fs::symlink_metadata(&path) {
        Ok(meta) if meta.ino() == blob_meta.ino() && meta.dev() == blob_meta.dev() => {
            return Ok(false);
        }
        Ok(_) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    let parent = path.parent().expect("pool paths have a directory");
    std::fs::create_dir_all(parent)?;
    let tmp = parent.join(format!(
        ".{}.link",
        path.file_name().unwrap_or_default().to_string_lossy()
    ));
    let _ = std::fs::remove_file(&tmp);
    std::fs::hard_link(blob, &tmp)?;
    std::fs::rename(&tmp, &path)?;
    Ok(true)
}

/// Removes a pool link and the directories it leaves empty, up to `repos`.
pub fn unlink_pool_file(repos: &Path, rel: &str) -> io::Result<()> {
    let path = repos.join(rel);
    match std::fs::remove_file(&path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
        _ => {}
    }
    let mut dir = path.parent();
    while let Some(d) = dir {
        if d == repos || std::fs::remove_dir(d).is_err() {
            break;
        }
        dir = d.parent();
    }
    Ok(())
}

/// What a distribution has published, kept outside the served tree.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct State {
    /// Content-addressed files of earlier generations still kept.
    pub superseded: Vec<Generation>,
    /// Content-addressed files of the live generation.
    pub live: BTreeSet<String>,
    /// Pool path -> blob SHA-256 of the live generation.
    pub pool: BTreeMap<String, String>,
    /// The directories of the live generation's top-level files.
    pub units: BTreeSet<String>,
    /// Pool paths no package names any more -> when that was first seen
    /// (unix seconds). Their files stay for the retention time.
    #[serde(default)]
    pub retired_pool: BTreeMap<String, i64>,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct Generation {
    /// Unix seconds.
    pub superseded_at: i64,
    pub files: BTreeSet<String>,
}

impl State {
    pub fn load(path: &Path) -> State {
        std::fs::read(path)
            .ok()
            .and_then(|bytes| serde_json::from_slice(&bytes).ok())
            .unwrap_or_default()
    }

    pub fn save(&self, path: &Path) -> io::Result<()> {
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)?;
        }
        let tmp = path.with_extension("tmp");
        std::fs::write(&tmp, serde_json::to_vec(self).map_err(io::Error::other)?)?;
        std::fs::rename(tmp, path)
    }

    /// Moves the live generation to the superseded list, drops what has
    /// aged out, and returns every file still to keep that the new
    /// generation does not publish itself.
    pub fn advance(
        &mut self,
        new_live: BTreeSet<String>,
        now: i64,
        keep_secs: i64,
    ) -> BTreeSet<String> {
        let old = std::mem::replace(&mut self.live, new_live);
        if !old.is_empty() {
            self.superseded.push(Generation {
                superseded_at: now,
                files: old,
            });
        }
        self.superseded
            .retain(|g| now.saturating_sub(g.superseded_at) < keep_secs);
        let excess = self.superseded.len().saturating_sub(RETAIN_MAX);
        self.superseded.drain(..excess);
        self.superseded
            .iter()
            .flat_map(|g| g.files.iter())
            .filter(|f| !self.live.contains(*f))
            .cloned()
            .collect()
    }

    /// Records the pool paths no package names any more (`orphaned`) and
    /// returns those that have been so for `keep_secs`: their files may go
    /// now. The caller takes each out of `retired_pool` once that is done.
    /// A retired path that a package names again is no longer retired.
    pub fn retire_pool(
        &mut self,
        orphaned: &BTreeSet<String>,
        now: i64,
        keep_secs: i64,
    ) -> Vec<String> {
        self.retired_pool.retain(|path, _| orphaned.contains(path));
        for path in orphaned {
            self.retired_pool.entry(path.clone()).or_insert(now);
        }
        self.retired_pool
            .iter()
            .filter(|(_, since)| now.saturating_sub(**since) >= keep_secs)
            .map(|(path, _)| path.clone())
            .collect()
    }

    /// Every pool path this distribution's tree still holds a file for.
    pub fn pool_paths(&self) -> impl Iterator<Item = &String> {
        self.pool.keys().chain(self.retired_pool.keys())
    }
}

/// The unit (directory of a top-level file) that holds `rel`, if any.
pub fn unit_of<'a>(units: &'a BTreeSet<String>, rel: &str) -> Option<&'a str> {
    units
        .iter()
        .find(|u| {
            rel.strip_prefix(u.as_str())
                .is_some_and(|r| r.starts_with('/'))
        })
        .map(String::as_str)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn switch_exchanges_a_whole_directory() {
        let dir = tempfile::tempdir().unwrap();
        let repos = dir.path().join("repos");
        let staging = Staging::create(&dir.path().join("staging"), "d").unwrap();
        staging.write("dists/d/Release", b"one").unwrap();
        switch(&staging, &repos, "dists/d").unwrap();
        assert_eq!(
            std::fs::read(repos.join("dists/d/Release")).unwrap(),
            b"one"
        );
        drop(staging);

        let staging = Staging::create(&dir.path().join("staging"), "d").unwrap();
        staging.write("dists/d/Release", b"two").unwrap();
        staging.write("dists/d/new", b"n").unwrap();
        std::fs::write(repos.join("dists/d/stale"), b"s").unwrap();
        switch(&staging, &repos, "dists/d").unwrap();
        assert_eq!(
            std::fs::read(repos.join("dists/d/Release")).unwrap(),
            b"two"
        );
        assert!(repos.join("dists/d/new").exists());
        assert!(!repos.join("dists/d/stale").exists());
        // The superseded unit sits in staging until it is dropped.
        assert!(staging.path("dists/d/stale").exists());
        let root = staging.root.clone();
        drop(staging);
        assert!(!root.exists());
    }

    #[test]
    fn retention_keeps_recent_generations_only() {
        let set = |names: &[&str]| names.iter().map(|s| s.to_string()).collect::<BTreeSet<_>>();
        let mut state = State::default();
        let keep = RETAIN_SECS;
        assert!(state.advance(set(&["a"]), 1000, keep).is_empty());
        assert_eq!(state.advance(set(&["b"]), 1001, keep), set(&["a"]));
        assert_eq!(state.advance(set(&["a", "c"]), 1002, keep), set(&["b"]));
        // Much later, only the generation superseded just now is kept.
        assert_eq!(
            state.advance(set(&["d"]), 1002 + keep, keep),
            set(&["a", "c"])
        );
        for i in 0..RETAIN_MAX + 5 {
            state.advance(set(&[&format!("g{i}")]), 5000, keep);
        }
        assert_eq!(state.superseded.len(), RETAIN_MAX);
        // With no retention, nothing superseded is kept.
        assert!(state.advance(set(&["z"]), 5001, 0).is_empty());
    }

    #[test]
    fn retired_pool_files_go_after_the_retention_time() {
        let set = |names: &[&str]| names.iter().map(|s| s.to_string()).collect::<BTreeSet<_>>();
        let mut state = State::default();
        assert!(state.retire_pool(&set(&["p/a", "p/b"]), 100, 60).is_empty());
        // Still orphaned 59 s later: kept. "p/b" is named again: not retired.
        assert!(state.retire_pool(&set(&["p/a", "p/c"]), 159, 60).is_empty());
        assert_eq!(
            state.retired_pool.keys().collect::<Vec<_>>(),
            ["p/a", "p/c"]
        );
        // "p/a" is due at 160; "p/c", retired at 159, at 219.
        assert_eq!(state.retire_pool(&set(&["p/a", "p/c"]), 160, 60), ["p/a"]);
        // Until the caller has removed its file, a due path stays due.
        assert_eq!(state.retire_pool(&set(&["p/a", "p/c"]), 161, 60), ["p/a"]);
        state.retired_pool.remove("p/a");
        assert_eq!(state.retire_pool(&set(&["p/c"]), 219, 60), ["p/c"]);
        state.retired_pool.remove("p/c");
        // With no retention a path goes at once.
        assert_eq!(state.retire_pool(&set(&["p/d"]), 300, 0), ["p/d"]);
    }

    #[test]
    fn pool_links_point_at_the_blob() {
        let dir = tempfile::tempdir().unwrap();
        let blob = dir.path().join("blob");
        let other = dir.path().join("other");
        std::fs::write(&blob, b"deb").unwrap();
        std::fs::write(&other, b"old").unwrap();
        let repos = dir.path().join("repos");
        assert!(link_pool_file(&repos, "pool/main/h/hello/h.deb", &blob).unwrap());
        assert!(!link_pool_file(&repos, "pool/main/h/hello/h.deb", &blob).unwrap());
        assert!(link_pool_file(&repos, "pool/main/h/hello/h.deb", &other).unwrap());
        assert_eq!(
            std::fs::read(repos.join("pool/main/h/hello/h.deb")).unwrap(),
            b"old"
        );
        unlink_pool_file(&repos, "pool/main/h/hello/h.deb").unwrap();
        assert!(!repos.join("pool").exists());
        assert!(repos.exists());
    }
}
