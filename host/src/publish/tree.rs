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

/// The top-level directory of the served tree the host keeps for its keys.
pub const RESERVED_TOP: &str = "keys";
/// ...and the one under which every kept version's tree is served,
/// `versions/<dist>/<number>/`.
pub const PINNED_TOP: &str = "versions";

/// How long superseded content-addressed files (by-hash copies,
/// checksum-named repodata) stay in a live tree, by default, so a client
/// that fetched the previous Release or repomd.xml can still fetch what it
/// lists; a superseded version (and so its package files) is kept at least
/// as long. Config: `[publish] keep-superseded-seconds`.
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

    /// Hard-links `file`, outside staging, at `to` (a copy across file
    /// systems).
    pub fn link_external(&self, file: &Path, to: &str) -> io::Result<()> {
        let to = self.path(to);
        if let Some(parent) = to.parent() {
            std::fs::create_dir_all(parent)?;
        }
        match std::fs::hard_link(file, &to) {
            Err(e) if e.kind() == io::ErrorKind::CrossesDevices => {
                std::fs::copy(file, &to).map(|_| ())
            }
            other => other,
        }
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
    /// The distribution version the live tree shows.
    #[serde(default)]
    pub version: i64,
    /// Content-addressed files of earlier generations still kept.
    pub superseded: Vec<Generation>,
    /// Content-addressed files of the live generation.
    pub live: BTreeSet<String>,
    /// The directories of the live generation's top-level files.
    pub units: BTreeSet<String>,
    /// Every file of the live generation -> its SHA-256, to check the tree
    /// against at start.
    #[serde(default)]
    pub files: BTreeMap<String, String>,
    /// Written before repository versions: pool paths then kept for a
    /// while after their package was removed. Read once, to clean up.
    #[serde(default, skip_serializing)]
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
}

/// What is wrong with a live tree, if anything: one of its generated
/// `files` (path -> SHA-256) missing or not what was published, or one of
/// the `pool` files its version lists (path -> blob SHA-256) not its blob.
pub fn check(
    repos: &Path,
    files: &BTreeMap<String, String>,
    pool: &BTreeMap<String, String>,
    blob: impl Fn(&str) -> PathBuf,
) -> Option<String> {
    use sha2::{Digest, Sha256};
    for (rel, sha) in files {
        let mut hasher = Sha256::new();
        let hashed = std::fs::File::open(repos.join(rel))
            .and_then(|mut f| io::copy(&mut f, &mut hasher).map(|_| ()));
        match hashed {
            Err(e) => return Some(format!("{rel}: {e}")),
            Ok(()) if hex::encode(hasher.finalize()) != *sha => {
                return Some(format!("{rel}: not the file that was published"));
            }
            Ok(()) => {}
        }
    }
    for (rel, sha) in pool {
        let same = match (
            std::fs::symlink_metadata(repos.join(rel)),
            std::fs::metadata(blob(sha)),
        ) {
            (Ok(a), Ok(b)) => a.ino() == b.ino() && a.dev() == b.dev(),
            _ => false,
        };
        if !same {
            return Some(format!("{rel}: not the stored package file"));
        }
    }
    None
}

/// Moves `from` (if it exists) to `to`, creating `to`'s parents.
pub fn move_aside(from: &Path, to: &Path) -> io::Result<()> {
    if std::fs::symlink_metadata(from).is_err() {
        return Ok(());
    }
    if let Some(parent) = to.parent() {
        std::fs::create_dir_all(parent)?;
    }
    std::fs::rename(from, to)
}

/// Deletes a directory tree if it exists.
pub fn remove_tree(dir: &Path) -> io::Result<()> {
    match std::fs::remove_dir_all(dir) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
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
