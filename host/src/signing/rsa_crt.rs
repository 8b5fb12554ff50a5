//! RSA signatures through OpenSSL with the key's CRT parameters.
//!
//! sequoia's OpenSSL backend (2.4) hands OpenSSL only n, e and d, so each
//! RSA-4096 signature is one full-size exponentiation: ~18 ms on our CI
//! machine, against ~5 ms for OpenSSL with p, q and the CRT exponents
//! (`openssl speed rsa4096`). A publish makes two or more signatures, so
//! this was a third of a small distribution's publish. This module is only
//! that: it builds the OpenSSL key once and implements sequoia's `Signer`;
//! hashing, packets and armor stay sequoia's.

use openpgp::crypto::mpi;
use openpgp::packet::Key;
use openpgp::packet::key::{PublicParts, SecretKeyMaterial, SecretParts, UnspecifiedRole};
use openpgp::types::HashAlgorithm;
use openssl::bn::{BigNum, BigNumContext};
use openssl::md::Md;
use openssl::pkey::{PKey, Private};
use openssl::pkey_ctx::PkeyCtx;
use openssl::rsa::{Padding, Rsa};
use sequoia_openpgp as openpgp;

#[derive(Clone)]
pub(super) struct RsaCrtSigner {
    public: Key<PublicParts, UnspecifiedRole>,
    key: PKey<Private>,
}

/// The digests OpenSSL's PKCS#1 v1.5 signing is given a DigestInfo for.
const HASHES: &[HashAlgorithm] = &[
    HashAlgorithm::SHA512,
    HashAlgorithm::SHA384,
    HashAlgorithm::SHA256,
    HashAlgorithm::SHA224,
];

impl RsaCrtSigner {
    /// `None` for a key that is not an unencrypted RSA key; an error if its
    /// secret factors do not match its public key.
    pub(super) fn new(
        key: &Key<SecretParts, UnspecifiedRole>,
    ) -> Option<Result<RsaCrtSigner, anyhow::Error>> {
        let mpi::PublicKey::RSA { e, n } = key.mpis() else {
            return None;
        };
        let SecretKeyMaterial::Unencrypted(secret) = key.secret() else {
            return None;
        };
        let rsa = secret.map(|secret| match secret {
            mpi::SecretKeyMaterial::RSA { d, p, q, .. } => Some(crt_key(
                n.value(),
                e.value(),
                d.value(),
                p.value(),
                q.value(),
            )),
            _ => None,
        })?;
        Some(rsa.and_then(|rsa| {
            Ok(RsaCrtSigner {
                public: key.parts_as_public().clone(),
                key: PKey::from_rsa(rsa)?,
            })
        }))
    }
}

/// An OpenSSL RSA key from OpenPGP's n, e, d, p, q (OpenPGP's own
/// coefficient is p⁻¹ mod q; OpenSSL wants q⁻¹ mod p, computed here).
///
/// sequoia signs with d alone, so a key whose p and q do not match it still
/// worked there; here it would publish signatures no client accepts. The
/// factors are checked: n = pq and ed ≡ 1 mod p-1 and mod q-1, which is
/// exactly what makes CRT signatures equal plain ones.
fn crt_key(n: &[u8], e: &[u8], d: &[u8], p: &[u8], q: &[u8]) -> anyhow::Result<Rsa<Private>> {
    let mut ctx = BigNumContext::new_secure()?;
    // Secret values live in OpenSSL's secure heap (cleared when freed).
    let secret = |bytes: &[u8]| -> Result<BigNum, openssl::error::ErrorStack> {
        let mut n = BigNum::new_secure()?;
        n.copy_from_slice(bytes)?;
        Ok(n)
    };
    let (n_, e_) = (BigNum::from_slice(n)?, BigNum::from_slice(e)?);
    let (d_, p_, q_) = (secret(d)?, secret(p)?, secret(q)?);
    let one = BigNum::from_u32(1)?;
    let mut p1 = BigNum::new_secure()?;
    p1.checked_sub(&p_, &one)?;
    let mut q1 = BigNum::new_secure()?;
    q1.checked_sub(&q_, &one)?;
    let mut pq = BigNum::new()?;
    pq.checked_mul(&p_, &q_, &mut ctx)?;
    let mut ed = BigNum::new_secure()?;
    ed.checked_mul(&e_, &d_, &mut ctx)?;
    for m in [&p1, &q1] {
        let mut r = BigNum::new_secure()?;
        r.nnmod(&ed, m, &mut ctx)?;
        anyhow::ensure!(
            pq == n_ && r == one,
            "the RSA key's secret factors do not match its public key"
        );
    }
    let mut dmp1 = BigNum::new_secure()?;
    dmp1.nnmod(&d_, &p1, &mut ctx)?;
    let mut dmq1 = BigNum::new_secure()?;
    dmq1.nnmod(&d_, &q1, &mut ctx)?;
    let mut iqmp = BigNum::new_secure()?;
    iqmp.mod_inverse(&q_, &p_, &mut ctx)?;
    Ok(Rsa::from_private_components(
        n_, e_, d_, p_, q_, dmp1, dmq1, iqmp,
    )?)
}

impl openpgp::crypto::Signer for RsaCrtSigner {
    fn public(&self) -> &Key<PublicParts, UnspecifiedRole> {
        &self.public
    }

    fn acceptable_hashes(&self) -> &[HashAlgorithm] {
        HASHES
    }

    fn sign(&mut self, hash_algo: HashAlgorithm, digest: &[u8]) -> openpgp::Result<mpi::Signature> {
        let md = match hash_algo {
            HashAlgorithm::SHA512 => Md::sha512(),
            HashAlgorithm::SHA384 => Md::sha384(),
            HashAlgorithm::SHA256 => Md::sha256(),
            HashAlgorithm::SHA224 => Md::sha224(),
            other => anyhow::bail!("RSA signing with {other} is not supported"),
        };
        let mut ctx = PkeyCtx::new(&self.key)?;
        ctx.sign_init()?;
        ctx.set_rsa_padding(Padding::PKCS1)?;
        ctx.set_signature_md(md)?;
        let mut signature = Vec::new();
        ctx.sign_to_vec(digest, &mut signature)?;
        Ok(mpi::Signature::RSA {
            s: mpi::MPI::new(&signature),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use openpgp::cert::CertBuilder;
    use openpgp::crypto::Signer;

    fn rsa_key() -> Key<SecretParts, UnspecifiedRole> {
        let (cert, _) = CertBuilder::new()
            .set_cipher_suite(openpgp::cert::CipherSuite::RSA2k)
            .generate()
            .unwrap();
        cert.primary_key()
            .key()
            .clone()
            .parts_into_secret()
            .unwrap()
            .role_into_unspecified()
    }

    /// PKCS#1 v1.5 is deterministic: with CRT or without, the same key and
    /// digest give the same bytes, so sequoia's own signer is the oracle.
    #[test]
    fn signatures_equal_sequoias_and_verify() {
        let key = rsa_key();
        let mut crt = RsaCrtSigner::new(&key).unwrap().unwrap();
        let mut plain = key.clone().into_keypair().unwrap();
        for hash in HASHES {
            let digest = vec![0xa5; hash.digest_size().unwrap()];
            let ours = crt.sign(*hash, &digest).unwrap();
            assert_eq!(ours, plain.sign(*hash, &digest).unwrap(), "{hash}");
            key.verify(&ours, *hash, &digest).unwrap();
        }
        assert!(crt.sign(HashAlgorithm::SHA1, &[0; 20]).is_err());
    }

    #[test]
    fn other_algorithms_and_mismatched_factors_are_not_taken() {
        let (cert, _) = CertBuilder::new()
            .set_cipher_suite(openpgp::cert::CipherSuite::Cv25519)
            .generate()
            .unwrap();
        let ed = cert
            .primary_key()
            .key()
            .clone()
            .parts_into_secret()
            .unwrap()
            .role_into_unspecified();
        assert!(RsaCrtSigner::new(&ed).is_none());

        // Another key's secret with this key's public part: refused at load.
        let (mine, theirs) = (rsa_key(), rsa_key());
        let (_, their_secret) = theirs.take_secret();
        let (public, _) = mine.take_secret();
        let mixed = public.add_secret(their_secret).0;
        assert!(RsaCrtSigner::new(&mixed).unwrap().is_err());
    }
}
