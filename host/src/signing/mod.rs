//! The repository's OpenPGP signing key.
//!
//! Created at first start (RSA-4096: every apt, dnf, rpm and zypper we
//! target verifies it), or imported with `repod key import`. The private
//! key lives in `<data>/keys/signing.key` (directory 0700, file 0600),
//! outside the served tree; only the public key is published, as
//! `/repos/keys/repod.asc` (armored, for rpm/dnf/zypper) and
//! `/repos/keys/repod.gpg` (binary, for apt's `signed-by` and gpgv).
//!
//! Keys are v4 (RFC 4880 profile) for gpgv 2.2, rpm 4.14+ and libzypp. The
//! primary key certifies and signs, with no subkeys, and never expires:
//! a repository key that silently expired would break every client.
//!
//! rpm's own OpenPGP parser (rpm 4.14 to 4.18, the rpm of the RPM
//! distributions we target and of Debian's rpm package) refuses a whole key, "key 1 import failed", when one of its
//! signatures carries a *critical* subpacket it does not implement; up to
//! 4.16 it compared the raw tag byte, so even a critical creation time
//! fails. Sequoia marks creation time, key flags and the primary-user-ID
//! flag critical (RFC 4880 allows it); gpg marks none. So the key's
//! self-signatures are issued again with no critical subpacket
//! ([`for_rpm`]): at creation, and once for a stored or imported key that
//! has them (same key, same fingerprint, new self-signatures).

pub mod rpm;
mod rsa_crt;

use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use openpgp::armor;
use openpgp::cert::prelude::*;
use openpgp::crypto::KeyPair;
use openpgp::parse::Parse;
use openpgp::policy::StandardPolicy;
use openpgp::serialize::SerializeInto;
use openpgp::serialize::stream::{Armorer, Message, Signer};
use openpgp::types::KeyFlags;
use sequoia_openpgp as openpgp;

#[derive(Debug, thiserror::Error)]
pub enum SigningError {
    #[error("{0}")]
    Unusable(String),
    #[error("OpenPGP error: {0}")]
    Pgp(#[from] anyhow::Error),
    #[error("key storage error: {0}")]
    Io(#[from] std::io::Error),
}

pub struct SigningKey {
    cert: openpgp::Cert,
    signer: KeySigner,
}

/// What makes the signatures: OpenSSL with CRT parameters for RSA keys
/// (see `rsa_crt`), sequoia's own key pair for every other algorithm.
#[derive(Clone)]
enum KeySigner {
    Rsa(rsa_crt::RsaCrtSigner),
    Other(KeyPair),
}

impl openpgp::crypto::Signer for KeySigner {
    fn public(
        &self,
    ) -> &openpgp::packet::Key<
        openpgp::packet::key::PublicParts,
        openpgp::packet::key::UnspecifiedRole,
    > {
        match self {
            KeySigner::Rsa(s) => s.public(),
            KeySigner::Other(s) => s.public(),
        }
    }

    fn acceptable_hashes(&self) -> &[openpgp::types::HashAlgorithm] {
        match self {
            KeySigner::Rsa(s) => s.acceptable_hashes(),
            KeySigner::Other(s) => s.acceptable_hashes(),
        }
    }

    fn sign(
        &mut self,
        hash_algo: openpgp::types::HashAlgorithm,
        digest: &[u8],
    ) -> openpgp::Result<openpgp::crypto::mpi::Signature> {
        match self {
            KeySigner::Rsa(s) => s.sign(hash_algo, digest),
            KeySigner::Other(s) => s.sign(hash_algo, digest),
        }
    }
}

const KEY_FILE: &str = "signing.key";

/// Whether rpm's own parser refuses `cert` as exported: some signature in
/// it has a critical subpacket (see the module docs).
pub fn rpm_refuses(cert: &openpgp::Cert) -> bool {
    use openpgp::Packet;
    cert.clone()
        .strip_secret_key_material()
        .into_packets()
        .any(|p| match p {
            Packet::Signature(sig) => sig
                .hashed_area()
                .iter()
                .chain(sig.unhashed_area().iter())
                .any(|sp| sp.critical()),
            _ => false,
        })
}

/// A builder whose creation time and `values` are hashed subpackets, none
/// critical (sequoia's own creation time is).
fn non_critical(
    builder: openpgp::packet::signature::SignatureBuilder,
    now: std::time::SystemTime,
    values: Vec<openpgp::packet::signature::subpacket::SubpacketValue>,
) -> openpgp::Result<openpgp::packet::signature::SignatureBuilder> {
    use openpgp::packet::signature::subpacket::{Subpacket, SubpacketValue};
    builder
        .suppress_signature_creation_time()?
        .modify_hashed_area(|mut area| {
            area.add(Subpacket::new(
                SubpacketValue::SignatureCreationTime(now.try_into()?),
                false,
            )?)?;
            for value in values {
                area.add(Subpacket::new(value, false)?)?;
            }
            Ok(area)
        })
}

/// `cert` with new self-signatures that have no critical subpacket: each
/// user ID certified again (key flags, primary user ID, expiry as before),
/// each signing subkey bound again (with its back-signature); encryption
/// subkeys and third-party certifications are left out (a repository key
/// only signs). Needs the primary key's secret, unencrypted.
pub fn for_rpm(cert: &openpgp::Cert) -> Result<openpgp::Cert, SigningError> {
    use openpgp::Packet;
    use openpgp::packet::signature::SignatureBuilder;
    use openpgp::packet::signature::subpacket::SubpacketValue;
    use openpgp::types::SignatureType;
    let policy = StandardPolicy::new();
    let primary = cert
        .primary_key()
        .key()
        .clone()
        .parts_into_secret()
        .map_err(|_| {
            SigningError::Unusable(
                "its primary key's secret is not in the file (exported with \
                 --export-secret-subkeys?); export it with --export-secret-keys"
                    .into(),
            )
        })?;
    if !primary.has_unencrypted_secret() {
        return Err(SigningError::Unusable(
            "its primary key's secret is passphrase-protected".into(),
        ));
    }
    let mut signer = primary.clone().into_keypair()?;
    let valid = cert.with_policy(&policy, None)?;
    let flags = valid
        .primary_key()
        .key_flags()
        .unwrap_or_else(|| KeyFlags::empty().set_certification().set_signing());
    let expiry = valid.primary_key().key_validity_period();
    let now = std::time::SystemTime::now();
    let mut packets: Vec<Packet> = vec![primary.clone().into()];
    let expiry_of = |period: Option<std::time::Duration>| -> openpgp::Result<Vec<SubpacketValue>> {
        Ok(match period {
            Some(d) => vec![SubpacketValue::KeyExpirationTime(d.try_into()?)],
            None => Vec::new(),
        })
    };
    // The key's own primary user ID stays primary; revoked ones are left out.
    let primary_uid = valid.primary_userid().ok().map(|u| u.userid().clone());
    for ua in valid.userids().revoked(false) {
        let mut values = vec![SubpacketValue::KeyFlags(flags.clone())];
        if primary_uid.as_ref() == Some(ua.userid()) {
            values.push(SubpacketValue::PrimaryUserID(true));
        }
        values.extend(expiry_of(expiry)?);
        let sig = non_critical(
            SignatureBuilder::new(SignatureType::PositiveCertification),
            now,
            values,
        )?
        .sign_userid_binding(&mut signer, None, ua.userid())?;
        packets.push(ua.userid().clone().into());
        packets.push(sig.into());
    }
    for ka in valid.keys().subkeys().for_signing().secret() {
        let subkey = ka.key().clone();
        if !subkey.has_unencrypted_secret() {
            continue;
        }
        let mut subkey_signer = subkey.clone().into_keypair()?;
        let back = non_critical(
            SignatureBuilder::new(SignatureType::PrimaryKeyBinding),
            now,
            vec![],
        )?
        .sign_primary_key_binding(
            &mut subkey_signer,
            primary.parts_as_public(),
            &subkey,
        )?;
        let mut values = vec![
            SubpacketValue::KeyFlags(KeyFlags::empty().set_signing()),
            SubpacketValue::EmbeddedSignature(back),
        ];
        values.extend(expiry_of(ka.key_validity_period())?);
        let binding = non_critical(
            SignatureBuilder::new(SignatureType::SubkeyBinding),
            now,
            values,
        )?
        .sign_subkey_binding(&mut signer, None, &subkey)?;
        packets.push(subkey.into());
        packets.push(binding.into());
    }
    let fixed = openpgp::Cert::from_packets(packets.into_iter())?;
    if rpm_refuses(&fixed) {
        return Err(SigningError::Unusable(
            "its new self-signatures still carry a critical subpacket".into(),
        ));
    }
    Ok(fixed)
}

fn key_path(keys_dir: &Path) -> PathBuf {
    keys_dir.join(KEY_FILE)
}

impl SigningKey {
    /// Loads the key from `keys_dir`, creating it the first time.
    pub fn load_or_create(keys_dir: &Path, user_id: &str) -> Result<SigningKey, SigningError> {
        let path = key_path(keys_dir);
        if path.exists() {
            let (key, note) = SigningKey::from_bytes(&std::fs::read(&path)?)?;
            if let Some(note) = note {
                tracing::warn!("signing key: {note}");
                if !rpm_refuses(&key.cert) {
                    key.store(keys_dir)?;
                }
            }
            return Ok(key);
        }
        let (cert, _revocation) = CertBuilder::new()
            .add_userid(user_id)
            .set_cipher_suite(CipherSuite::RSA4k)
            .set_primary_key_flags(KeyFlags::empty().set_certification().set_signing())
            .set_validity_period(None)
            .generate()?;
        let key = SigningKey::from_cert(for_rpm(&cert)?)?;
        key.store(keys_dir)?;
        Ok(key)
    }

    /// Replaces the stored key with the secret key in `bytes` (armored or
    /// binary). Refuses a public key, an encrypted key or one that cannot
    /// sign, and then leaves the stored key as it was. The note says what
    /// was done for rpm ([`for_rpm`]), or why rpm will refuse the key.
    pub fn import(
        keys_dir: &Path,
        bytes: &[u8],
    ) -> Result<(SigningKey, Option<String>), SigningError> {
        let (key, note) = SigningKey::from_bytes(bytes)?;
        key.store(keys_dir)?;
        Ok((key, note))
    }

    /// The key in `bytes`, its self-signatures issued again if rpm would
    /// refuse them; the note says so (or why that was not possible).
    fn from_bytes(bytes: &[u8]) -> Result<(SigningKey, Option<String>), SigningError> {
        let cert = openpgp::Cert::from_bytes(bytes)
            .map_err(|e| SigningError::Unusable(format!("not an OpenPGP key: {e}")))?;
        // Usable at all, before anything is re-issued.
        SigningKey::from_cert(cert.clone())?;
        if !rpm_refuses(&cert) {
            return Ok((SigningKey::from_cert(cert)?, None));
        }
        match for_rpm(&cert) {
            Ok(fixed) => Ok((
                SigningKey::from_cert(fixed)?,
                Some(format!(
                    "rpm 4.14-4.18 would refuse key {} (a self-signature has a critical \
                     subpacket); its self-signatures were issued again without one \
                     (same key and fingerprint)",
                    cert.fingerprint()
                )),
            )),
            Err(e) => Ok((
                SigningKey::from_cert(cert.clone())?,
                Some(format!(
                    "rpm 4.14-4.18 will refuse key {} (\"key 1 import failed\": a \
                     self-signature has a critical subpacket), and it cannot be fixed here: \
                     {e}. dnf, zypper and rpmkeys users cannot import it",
                    cert.fingerprint()
                )),
            )),
        }
    }

    fn from_cert(cert: openpgp::Cert) -> Result<SigningKey, SigningError> {
        let policy = StandardPolicy::new();
        let fingerprint = cert.fingerprint();
        let key = cert
            .keys()
            .with_policy(&policy, None)
            .supported()
            .alive()
            .revoked(false)
            .for_signing()
            .secret()
            .next()
            .ok_or_else(|| {
                SigningError::Unusable(format!(
                    "key {fingerprint} has no valid secret signing key (a public key, an expired or revoked key?)"
                ))
            })?;
        let secret = key.key().clone();
        if !secret.has_unencrypted_secret() {
            return Err(SigningError::Unusable(format!(
                "the secret key of {fingerprint} is passphrase-protected; export it without a passphrase (e.g. gpg --export-secret-keys after gpg --passwd with an empty one)"
            )));
        }
        let signer = match rsa_crt::RsaCrtSigner::new(&secret) {
            Some(rsa) => KeySigner::Rsa(rsa?),
            None => KeySigner::Other(secret.into_keypair()?),
        };
        Ok(SigningKey { cert, signer })
    }

    /// Writes the private key, readable by the daemon's user only.
    fn store(&self, keys_dir: &Path) -> Result<(), SigningError> {
        std::fs::create_dir_all(keys_dir)?;
        std::fs::set_permissions(keys_dir, std::fs::Permissions::from_mode(0o700))?;
        let path = key_path(keys_dir);
        let tmp = path.with_extension("tmp");
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)?;
        file.write_all(&self.cert.as_tsk().armored().to_vec()?)?;
        file.sync_all()?;
        std::fs::rename(&tmp, &path)?;
        Ok(())
    }

    pub fn fingerprint(&self) -> String {
        self.cert.fingerprint().to_hex()
    }

    /// The key ID the signatures name (16 lowercase hex digits): the
    /// signing key's, which is the primary key of a generated key.
    pub fn key_id(&self) -> String {
        use openpgp::crypto::Signer as _;
        self.signer.public().keyid().to_hex().to_ascii_lowercase()
    }

    /// An RPM header signature (`RPMSIGTAG_RSA`, what `rpmsign --addsign`
    /// adds): a binary OpenPGP v4 signature packet over the main header's
    /// bytes, SHA-256, with no critical subpacket (rpm 4.14-4.16 would
    /// refuse a critical creation time; see the module docs).
    pub fn sign_rpm_header(&self, header: &[u8]) -> Result<Vec<u8>, SigningError> {
        use openpgp::packet::signature::SignatureBuilder;
        use openpgp::packet::signature::subpacket::SubpacketValue;
        use openpgp::types::{HashAlgorithm, SignatureType};
        let mut signer = self.signer.clone();
        let issuer = {
            use openpgp::crypto::Signer as _;
            let key = signer.public();
            vec![
                SubpacketValue::Issuer(key.keyid()),
                SubpacketValue::IssuerFingerprint(key.fingerprint()),
            ]
        };
        let signature = non_critical(
            SignatureBuilder::new(SignatureType::Binary).set_hash_algo(HashAlgorithm::SHA256),
            std::time::SystemTime::now(),
            issuer,
        )?
        .sign_message(&mut signer, header)?;
        Ok(openpgp::Packet::from(signature).to_vec()?)
    }

    /// The public key, ASCII-armored.
    pub fn public_armored(&self) -> Vec<u8> {
        self.cert
            .armored()
            .to_vec()
            .expect("serialising a public key cannot fail")
    }

    /// The public key, binary (an OpenPGP keyring gpgv and apt accept).
    pub fn public_binary(&self) -> Vec<u8> {
        self.cert
            .to_vec()
            .expect("serialising a public key cannot fail")
    }

    /// Writes the public key files into the served tree.
    pub fn publish(&self, repos_dir: &Path) -> Result<(), SigningError> {
        let dir = repos_dir.join("keys");
        std::fs::create_dir_all(&dir)?;
        for (name, bytes) in [
            ("repod.asc", self.public_armored()),
            ("repod.gpg", self.public_binary()),
        ] {
            let tmp = dir.join(format!(".{name}.tmp"));
            std::fs::write(&tmp, bytes)?;
            std::fs::rename(&tmp, dir.join(name))?;
        }
        Ok(())
    }

    /// An OpenPGP cleartext-signed copy of `text` (APT's InRelease).
    pub fn sign_cleartext(&self, text: &[u8]) -> Result<Vec<u8>, SigningError> {
        let mut out = Vec::new();
        self.sign(Message::new(&mut out), true, text)?;
        Ok(out)
    }

    /// An ASCII-armored detached signature (Release.gpg, repomd.xml.asc).
    pub fn sign_detached_armored(&self, data: &[u8]) -> Result<Vec<u8>, SigningError> {
        let mut out = Vec::new();
        let message = Armorer::new(Message::new(&mut out))
            .kind(armor::Kind::Signature)
            .build()?;
        self.sign(message, false, data)?;
        Ok(out)
    }

    /// A binary detached signature.
    pub fn sign_detached_binary(&self, data: &[u8]) -> Result<Vec<u8>, SigningError> {
        let mut out = Vec::new();
        self.sign(Message::new(&mut out), false, data)?;
        Ok(out)
    }

    /// Signs `data` into `message`: a cleartext-signed copy, or a detached
    /// signature.
    fn sign(&self, message: Message<'_>, cleartext: bool, data: &[u8]) -> Result<(), SigningError> {
        let signer = Signer::new(message, self.signer.clone())?;
        let signer = if cleartext {
            signer.cleartext()
        } else {
            signer.detached()
        };
        let mut signer = signer.build()?;
        signer.write_all(data)?;
        signer.finalize()?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `rpmkeys --import` of `cert`'s public key into a fresh root.
    fn rpm_imports(cert: &openpgp::Cert) -> Result<(), String> {
        let dir = tempfile::tempdir().unwrap();
        let key = dir.path().join("key.asc");
        std::fs::write(&key, cert.armored().to_vec().unwrap()).unwrap();
        let out = std::process::Command::new("rpmkeys")
            .arg("--root")
            .arg(dir.path().join("root"))
            .arg("--import")
            .arg(&key)
            .output()
            .expect("rpmkeys (scripts/setup installs rpm)");
        if out.status.success() {
            Ok(())
        } else {
            Err(String::from_utf8_lossy(&out.stderr).into_owned())
        }
    }

    #[test]
    fn sequoias_critical_self_signatures_are_issued_again_for_rpm() {
        // What CertBuilder makes (critical creation time, key flags and
        // primary user ID), with a signing and an encryption subkey.
        let (cert, _) = CertBuilder::new()
            // The primary one sorts last: it must stay primary.
            .add_userid("zeta <zeta@test.invalid>")
            .add_userid("alpha <alpha@test.invalid>")
            .set_cipher_suite(CipherSuite::RSA2k)
            .add_signing_subkey()
            .add_transport_encryption_subkey()
            .generate()
            .unwrap();
        assert!(rpm_refuses(&cert));
        let refused = rpm_imports(&cert).unwrap_err();
        assert!(refused.contains("import failed"), "{refused}");

        let fixed = for_rpm(&cert).unwrap();
        assert!(!rpm_refuses(&fixed));
        rpm_imports(&fixed).unwrap();
        assert_eq!(fixed.fingerprint(), cert.fingerprint());
        let policy = StandardPolicy::new();
        let valid = fixed.with_policy(&policy, None).unwrap();
        assert_eq!(valid.userids().count(), 2);
        assert_eq!(
            valid.primary_userid().unwrap().userid().value(),
            b"zeta <zeta@test.invalid>"
        );
        // The signing subkey is bound again; the encryption one left out.
        assert_eq!(valid.keys().subkeys().count(), 1);
        assert_eq!(valid.keys().subkeys().for_signing().count(), 1);
        SigningKey::from_cert(fixed).unwrap();
    }

    #[test]
    fn a_stored_key_rpm_refuses_is_fixed_once_and_kept() {
        let dir = tempfile::tempdir().unwrap();
        let (cert, _) = CertBuilder::new()
            .add_userid("repo <repo@test.invalid>")
            .set_cipher_suite(CipherSuite::RSA2k)
            .set_primary_key_flags(KeyFlags::empty().set_certification().set_signing())
            .generate()
            .unwrap();
        let (imported, note) =
            SigningKey::import(dir.path(), &cert.as_tsk().armored().to_vec().unwrap()).unwrap();
        assert!(note.unwrap().contains("issued again"));
        assert_eq!(imported.fingerprint(), cert.fingerprint().to_hex());
        assert!(!rpm_refuses(&imported.cert));
        // Stored as fixed: loading it again changes nothing.
        let stored = std::fs::read(key_path(dir.path())).unwrap();
        let loaded = SigningKey::load_or_create(dir.path(), "unused").unwrap();
        assert_eq!(loaded.public_armored(), imported.public_armored());
        assert_eq!(std::fs::read(key_path(dir.path())).unwrap(), stored);
    }
}
