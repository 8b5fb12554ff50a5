//! Packages for tests: real ones built with the real tools (`dpkg-deb`,
//! `rpmbuild`), and malformed ones assembled by hand, because no real tool
//! will write a decompression bomb or a `../` file name.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

fn run(cmd: &mut Command) {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Builds `<name>_<version>_<arch>.deb` with `dpkg-deb`. `extra` is more
/// control text (e.g. `"Depends: libc6\n"`); `payload` changes the content.
pub fn deb(
    dir: &Path,
    name: &str,
    version: &str,
    arch: &str,
    extra: &str,
    payload: &str,
) -> PathBuf {
    let root = dir.join(format!("build-{name}-{version}-{arch}-{}", payload.len()));
    let _ = std::fs::remove_dir_all(&root);
    std::fs::create_dir_all(root.join("DEBIAN")).unwrap();
    std::fs::create_dir_all(root.join(format!("usr/share/{name}"))).unwrap();
    std::fs::write(root.join(format!("usr/share/{name}/payload")), payload).unwrap();
    std::fs::write(
        root.join("DEBIAN/control"),
        format!(
            "Package: {name}\nVersion: {version}\nArchitecture: {arch}\nMaintainer: Test <t@test.invalid>\nSection: misc\nPriority: optional\n{extra}Description: test package {name}\n a longer description\n .\n second paragraph\n"
        ),
    )
    .unwrap();
    let out = dir.join(format!(
        "{name}_{}_{arch}.deb",
        version.rsplit(':').next().unwrap()
    ));
    run(Command::new("dpkg-deb")
        .args(["--root-owner-group", "-Zgzip", "-b"])
        .arg(&root)
        .arg(&out));
    out
}

/// Builds a binary rpm with `rpmbuild` for `arch` (`noarch`, `x86_64`,
/// `aarch64`); nothing is compiled, so any target works here.
pub fn rpm(
    dir: &Path,
    name: &str,
    version: &str,
    release: &str,
    arch: &str,
    extra: &str,
) -> PathBuf {
    let top = dir.join(format!("rpmbuild-{name}-{arch}"));
    std::fs::create_dir_all(top.join("SPECS")).unwrap();
    let build_arch = if arch == "noarch" {
        "BuildArch: noarch\n"
    } else {
        ""
    };
    let spec = top.join(format!("SPECS/{name}.spec"));
    std::fs::write(
        &spec,
        format!(
            "%global debug_package %{{nil}}\nName: {name}\nVersion: {version}\nRelease: {release}\nSummary: test {name}\nLicense: MIT\n{build_arch}{extra}\n%description\ntest package\n%install\nmkdir -p %{{buildroot}}/usr/share/{name}\necho {name} > %{{buildroot}}/usr/share/{name}/f\n%files\n/usr/share/{name}/f\n"
        ),
    )
    .unwrap();
    let mut cmd = Command::new("rpmbuild");
    cmd.args(["-bb", "--nodeps", "--define"])
        .arg(format!("_topdir {}", top.display()))
        .args(["--define", "_dbpath /nonexistent-rpmdb"]);
    if arch != "noarch" {
        cmd.args(["--target", arch]);
    }
    run(cmd.arg(&spec));
    let file = format!("{name}-{version}-{release}.{arch}.rpm");
    let built = top.join("RPMS").join(arch).join(&file);
    let out = dir.join(file);
    std::fs::copy(&built, &out).unwrap();
    out
}

/// Builds an rpm whose files are `files` (absolute paths, each holding its
/// own path as text): a library's `/usr/lib64/libx.so.1`, say.
pub fn rpm_with_files(
    dir: &Path,
    name: &str,
    version: &str,
    release: &str,
    arch: &str,
    files: &[&str],
) -> PathBuf {
    let top = dir.join(format!("rpmbuild-{name}-{arch}"));
    std::fs::create_dir_all(top.join("SPECS")).unwrap();
    let install: String = files
        .iter()
        .map(|f| {
            let parent = Path::new(f).parent().unwrap().display().to_string();
            format!("mkdir -p %{{buildroot}}{parent}\necho {f} > %{{buildroot}}{f}\n")
        })
        .collect();
    let listed: String = files.iter().map(|f| format!("{f}\n")).collect();
    let spec = top.join(format!("SPECS/{name}.spec"));
    std::fs::write(
        &spec,
        format!(
            "%global debug_package %{{nil}}\n%global __strip /bin/true\nName: {name}\nVersion: {version}\nRelease: {release}\nSummary: test {name}\nLicense: MIT\n\n%description\ntest package\n%install\n{install}%files\n{listed}"
        ),
    )
    .unwrap();
    let mut cmd = Command::new("rpmbuild");
    cmd.args(["-bb", "--nodeps", "--define"])
        .arg(format!("_topdir {}", top.display()))
        .args(["--define", "_dbpath /nonexistent-rpmdb", "--target", arch]);
    run(cmd.arg(&spec));
    let file = format!("{name}-{version}-{release}.{arch}.rpm");
    let out = dir.join(&file);
    std::fs::copy(top.join("RPMS").join(arch).join(&file), &out).unwrap();
    out
}

/// Builds the source rpm of the same kind of spec.
pub fn source_rpm(dir: &Path, name: &str) -> PathBuf {
    let top = dir.join(format!("rpmbuild-src-{name}"));
    std::fs::create_dir_all(top.join("SPECS")).unwrap();
    let spec = top.join(format!("SPECS/{name}.spec"));
    std::fs::write(&spec, format!("Name: {name}\nVersion: 1.0\nRelease: 1\nSummary: s\nLicense: MIT\n%description\nd\n%files\n")).unwrap();
    run(Command::new("rpmbuild")
        .args(["-bs", "--nodeps", "--define"])
        .arg(format!("_topdir {}", top.display()))
        .arg(&spec));
    let srpm = std::fs::read_dir(top.join("SRPMS"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let out = dir.join(srpm.file_name().unwrap());
    std::fs::copy(&srpm, &out).unwrap();
    out
}

pub enum Compression {
    Gzip,
    Xz,
}

/// A tar archive of `(path, bytes)` entries, written without the path
/// checks the `tar` crate's safe API applies.
pub fn tar(entries: &[(&[u8], &[u8])]) -> Vec<u8> {
    let mut builder = tar::Builder::new(Vec::new());
    for (path, bytes) in entries {
        let mut header = tar::Header::new_gnu();
        header.set_size(bytes.len() as u64);
        header.set_mode(0o644);
        header.set_entry_type(tar::EntryType::Regular);
        let name = &mut header.as_old_mut().name;
        name[..path.len()].copy_from_slice(path);
        header.set_cksum();
        builder.append(&header, *bytes).unwrap();
    }
    builder.into_inner().unwrap()
}

pub fn compress(bytes: &[u8], how: &Compression) -> Vec<u8> {
    match how {
        Compression::Gzip => {
            let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
            e.write_all(bytes).unwrap();
            e.finish().unwrap()
        }
        Compression::Xz => {
            let mut e = xz2::write::XzEncoder::new(Vec::new(), 9);
            e.write_all(bytes).unwrap();
            e.finish().unwrap()
        }
    }
}

/// An ar archive of `(member name, bytes)`.
pub fn ar(members: &[(&str, Vec<u8>)]) -> Vec<u8> {
    let mut builder = ar::Builder::new(Vec::new());
    for (name, bytes) in members {
        let header = ar::Header::new(name.as_bytes().to_vec(), bytes.len() as u64);
        builder.append(&header, bytes.as_slice()).unwrap();
    }
    builder.into_inner().unwrap()
}

/// A .deb assembled by hand from a control text and data files.
/// A small deterministic .deb built in memory: the same arguments give the
/// same bytes. `extra` is more control text (`"Depends: x\n"`); `payload`,
/// the one file's content, changes the bytes without changing the identity.
pub fn small_deb(name: &str, version: &str, arch: &str, extra: &str, payload: &str) -> Vec<u8> {
    let control = format!(
        "Package: {name}\nVersion: {version}\nArchitecture: {arch}\nMaintainer: Test <t@test.invalid>\n\
         Section: misc\nPriority: optional\n{extra}Description: test package {name}\n longer text\n"
    );
    let path = format!("./usr/share/{name}/file");
    raw_deb(control.as_bytes(), &[(path.as_bytes(), payload.as_bytes())])
}

pub fn raw_deb(control: &[u8], data: &[(&[u8], &[u8])]) -> Vec<u8> {
    let control_tar = compress(&tar(&[(b"./control", control)]), &Compression::Gzip);
    let data_tar = compress(&tar(data), &Compression::Gzip);
    ar(&[
        ("debian-binary", b"2.0\n".to_vec()),
        ("control.tar.gz", control_tar),
        ("data.tar.gz", data_tar),
    ])
}

/// A .deb whose control.tar expands to `size` bytes of zeros.
pub fn bomb_deb(size: usize, how: Compression) -> Vec<u8> {
    let zeros = vec![0u8; size];
    let control_tar = compress(&tar(&[(b"./control", &zeros)]), &how);
    let member = match how {
        Compression::Gzip => "control.tar.gz",
        Compression::Xz => "control.tar.xz",
    };
    ar(&[
        ("debian-binary", b"2.0\n".to_vec()),
        (member, control_tar),
        ("data.tar.gz", compress(&tar(&[]), &Compression::Gzip)),
    ])
}

/// Lowercase hex SHA-256 of a file.
pub fn sha256_file(path: &Path) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(std::fs::read(path).unwrap()))
}

/// Every file under `dir` with its contents, sorted: to prove nothing moved.
pub fn snapshot(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push((p.clone(), std::fs::read(&p).unwrap()));
            }
        }
    }
    out.sort();
    out
}

/// The real packages of `scripts/fetch-test-packages` (`deb/`, `rpm/`),
/// fetched on first use into `$REPOD_TEST_PACKAGES` or
/// `target/test-packages`, under a lock so parallel tests wait for one fetch.
pub fn real_packages_dir() -> PathBuf {
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let dir = std::env::var_os("REPOD_TEST_PACKAGES")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace.join("target/test-packages"));
    std::fs::create_dir_all(&dir).unwrap();
    let status = Command::new("flock")
        .arg(dir.join(".lock"))
        .arg(workspace.join("scripts/fetch-test-packages"))
        .arg(&dir)
        .stdout(std::process::Stdio::null())
        .status();
    assert!(
        matches!(status, Ok(s) if s.success()),
        "scripts/fetch-test-packages {} failed: {status:?}",
        dir.display()
    );
    dir
}

/// `len` bytes of reproducible noise (xorshift), which no compressor
/// shrinks: for packages and files of a chosen size on disk.
pub fn noise(len: usize) -> Vec<u8> {
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state as u8
        })
        .collect()
}
