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

fn key_path(keys_dir: &Path) -> PathBuf {
    keys_dir.join(KEY_FILE)
}

impl SigningKey {
    /// Loads the key from `keys_dir`, creating it the first time.
    pub fn load_or_create(keys_dir: &Path, user_id: &str) -> Result<SigningKey, SigningError> {
        let path = key_path(keys_dir);
        if path.exists() {
            return SigningKey::from_bytes(&std::fs::read(&path)?);
        }
        let (cert, _revocation) = CertBuilder::new()
            .add_userid(user_id)
            .set_cipher_suite(CipherSuite::RSA4k)
            .set_primary_key_flags(KeyFlags::empty().set_certification().set_signing())
            .set_validity_period(None)
            .generate()?;
        let key = SigningKey::from_cert(cert)?;
        key.store(keys_dir)?;
        Ok(key)
    }

    /// Replaces the stored key with the secret key in `bytes` (armored or
    /// binary). Refuses a public key, an encrypted key or one that cannot
    /// sign, and then leaves the stored key as it was.
    pub fn import(keys_dir: &Path, bytes: &[u8]) -> Result<SigningKey, SigningError> {
        let key = SigningKey::from_bytes(bytes)?;
        key.store(keys_dir)?;
        Ok(key)
    }

    fn from_bytes(bytes: &[u8]) -> Result<SigningKey, SigningError> {
        let cert = openpgp::Cert::from_bytes(bytes)
            .map_err(|e| SigningError::Unusable(format!("not an OpenPGP key: {e}")))?;
        SigningKey::from_cert(cert)
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
