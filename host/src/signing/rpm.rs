//! RPM header signatures made by the repository key, as `rpmsign
//! --addsign` makes them but without a subprocess: the main header's bytes
//! signed ([`SigningKey::sign_rpm_header`]) and stored as `RPMSIGTAG_RSA`
//! in the signature header, replacing any header signature the package
//! had. The rpm crate parses and writes the headers; lead, main header and
//! payload are copied byte for byte (checked: a package whose headers the
//! crate would not write back identically is refused, not altered).

use std::io::{BufReader, Read, Seek, Write};
use std::path::Path;

use rpm::{Header, HeaderEntry, IndexData, IndexSignatureTag, PackageMetadata};

use super::{SigningError, SigningKey};

/// Signature-header tags of header signatures (v3/v4 RSA and DSA, PGP and
/// GPG header+payload ones, rpm 6's OpenPGP list) and of the region.
const REPLACED: &[u32] = &[
    rpm::HEADER_SIGNATURES,
    IndexSignatureTag::RPMSIGTAG_DSA as u32,
    IndexSignatureTag::RPMSIGTAG_RSA as u32,
    IndexSignatureTag::RPMSIGTAG_PGP as u32,
    IndexSignatureTag::RPMSIGTAG_GPG as u32,
    IndexSignatureTag::RPMSIGTAG_OPENPGP as u32,
];

fn unusable(what: impl std::fmt::Display) -> SigningError {
    SigningError::Unusable(format!("cannot sign this package: {what}"))
}

/// Writes the RPM at `from` to `to`, signed by `key`.
pub fn sign_rpm(
    key: &SigningKey,
    from: &Path,
    to: &mut (impl Write + ?Sized),
) -> Result<(), SigningError> {
    let mut input = BufReader::new(std::fs::File::open(from)?);
    let mut metadata = PackageMetadata::parse(&mut input).map_err(unusable)?;
    let payload_at = input.stream_position()?;
    // The crate must give back exactly the bytes it read, or the header
    // digests and the new signature would not match the file.
    let mut again = Vec::with_capacity(payload_at as usize);
    metadata.write(&mut again).map_err(unusable)?;
    let mut read = vec![0; payload_at as usize];
    let mut file = std::fs::File::open(from)?;
    file.read_exact(&mut read)?;
    if again != read {
        return Err(unusable(
            "its headers do not survive a parse and write byte for byte",
        ));
    }
    let signature = key.sign_rpm_header(&metadata.header_bytes().map_err(unusable)?)?;
    let mut entries: Vec<HeaderEntry> = metadata
        .signature
        .get_all_entries()
        .map_err(unusable)?
        .into_iter()
        .filter(|(tag, _)| !REPLACED.contains(tag))
        .map(|(tag, data)| HeaderEntry::new(tag, data))
        .collect();
    entries.push(HeaderEntry::new(
        IndexSignatureTag::RPMSIGTAG_RSA as u32,
        IndexData::Bin(signature),
    ));
    metadata.signature = Header::from_entries(entries, IndexSignatureTag::HEADER_SIGNATURES);
    metadata.write(&mut &mut *to).map_err(unusable)?;
    std::io::copy(&mut input, to)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use openpgp::cert::prelude::*;
    use sequoia_openpgp as openpgp;
    use std::process::Command;

    fn run(cmd: &mut Command) -> String {
        let out = cmd.output().unwrap();
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(out.status.success(), "{cmd:?}: {text}");
        text
    }

    #[test]
    fn rpm_checks_the_signature_it_adds() {
        let dir = tempfile::tempdir().unwrap();
        let (cert, _) = CertBuilder::new()
            .add_userid("repo <repo@test.invalid>")
            .set_cipher_suite(CipherSuite::RSA2k)
            .set_primary_key_flags(
                openpgp::types::KeyFlags::empty()
                    .set_certification()
                    .set_signing(),
            )
            .generate()
            .unwrap();
        let key = SigningKey::from_cert(super::super::for_rpm(&cert).unwrap()).unwrap();
        // An unsigned package, as rpmbuild makes it.
        let top = dir.path().join("build");
        std::fs::create_dir_all(top.join("SPECS")).unwrap();
        let spec = top.join("SPECS/demo.spec");
        std::fs::write(
            &spec,
            "Name: demo\nVersion: 1\nRelease: 1\nSummary: s\nLicense: MIT\nBuildArch: noarch\n\
             %description\nd\n%install\nmkdir -p %{buildroot}/usr/share/demo\n\
             echo hi > %{buildroot}/usr/share/demo/f\n%files\n/usr/share/demo/f\n",
        )
        .unwrap();
        run(Command::new("rpmbuild")
            .args(["-bb", "--nodeps", "--define"])
            .arg(format!("_topdir {}", top.display()))
            .arg(&spec));
        let unsigned = top.join("RPMS/noarch/demo-1-1.noarch.rpm");
        let signed = dir.path().join("signed.rpm");
        let mut out = std::fs::File::create(&signed).unwrap();
        sign_rpm(&key, &unsigned, &mut out).unwrap();
        drop(out);

        let root = dir.path().join("root");
        let asc = dir.path().join("key.asc");
        std::fs::write(&asc, key.public_armored()).unwrap();
        run(Command::new("rpmkeys")
            .arg("--root")
            .arg(&root)
            .arg("--import")
            .arg(&asc));
        let checked = run(Command::new("rpmkeys")
            .arg("--root")
            .arg(&root)
            .args(["--checksig", "-v"])
            .arg(&signed));
        assert!(
            checked.contains(&format!("key ID {}: OK", &key.key_id()[8..])),
            "{checked}"
        );
        assert!(
            !checked.contains("NOT OK") && !checked.contains("NOKEY"),
            "{checked}"
        );
        // Without the key rpm says so (the signature is really checked).
        let other = dir.path().join("other");
        let out = Command::new("rpmkeys")
            .arg("--root")
            .arg(&other)
            .arg("--checksig")
            .arg(&signed)
            .output()
            .unwrap();
        assert!(!out.status.success());
    }
}
