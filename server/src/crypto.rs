//! Secrets at rest (a registry endpoint's password or token), encrypted with the cluster's
//! encryption key (`Secrets::encryption_key`, the same on every replica).
//!
//! Format: `v1:` + base64(nonce ‖ ciphertext ‖ tag) — AES-256-GCM with a random 96-bit nonce
//! per encryption, so encrypting the same secret twice gives different strings. The version
//! prefix lets a later format (or key rotation) coexist with stored `v1` values.
//!
//! **Every ciphertext is bound to where it is stored** by the associated data (`purpose`, e.g.
//! `registries/7/access_secret`): a value copied into another row or column does not decrypt.
//! Callers pass the same `purpose` to `encrypt` and `decrypt`.
//!
//! Decryption never panics: a malformed value, a wrong key, a tampered value or a value moved
//! to another row are all a `CryptoError`.

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use rand::RngCore;

const PREFIX_V1: &str = "v1:";
const NONCE_LEN: usize = 12;
/// The GCM authentication tag appended to every ciphertext.
const TAG_LEN: usize = 16;

/// Why a stored secret could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CryptoError {
    /// Not a value `encrypt` wrote (unknown version, bad base64, too short).
    #[error("the stored secret is not in a known format: {0}")]
    Format(&'static str),
    /// Authentication failed: another encryption key, a modified value, or a value encrypted
    /// for another row.
    #[error(
        "the stored secret cannot be decrypted (another encryption key, or the value was modified or moved)"
    )]
    Decrypt,
}

/// Encrypts `plaintext` for `purpose` (the associated data).
pub fn encrypt(key: &[u8; 32], purpose: &str, plaintext: &str) -> String {
    let cipher = Aes256Gcm::new(key.into());
    let mut nonce = [0u8; NONCE_LEN];
    rand::rngs::OsRng.fill_bytes(&mut nonce);
    // Encryption with a valid key and nonce length fails only for inputs beyond GCM's limit
    // (64 GiB), which no secret approaches; the type makes it a Result all the same.
    let sealed = cipher
        .encrypt(&Nonce::from(nonce), Payload { msg: plaintext.as_bytes(), aad: purpose.as_bytes() })
        .unwrap_or_default();
    let mut out = Vec::with_capacity(NONCE_LEN + sealed.len());
    out.extend_from_slice(&nonce);
    out.extend_from_slice(&sealed);
    format!("{PREFIX_V1}{}", STANDARD.encode(out))
}

/// Decrypts a value `encrypt` wrote for the same `purpose` with the same key.
pub fn decrypt(key: &[u8; 32], purpose: &str, stored: &str) -> Result<String, CryptoError> {
    let b64 = stored.strip_prefix(PREFIX_V1).ok_or(CryptoError::Format("no v1: prefix"))?;
    let raw = STANDARD.decode(b64).map_err(|_| CryptoError::Format("invalid base64"))?;
    if raw.len() < NONCE_LEN + TAG_LEN {
        return Err(CryptoError::Format("too short"));
    }
    let (nonce, sealed) = raw.split_at(NONCE_LEN);
    let nonce: [u8; NONCE_LEN] = nonce.try_into().map_err(|_| CryptoError::Format("too short"))?;
    let cipher = Aes256Gcm::new(key.into());
    let plain = cipher
        .decrypt(&Nonce::from(nonce), Payload { msg: sealed, aad: purpose.as_bytes() })
        .map_err(|_| CryptoError::Decrypt)?;
    String::from_utf8(plain).map_err(|_| CryptoError::Format("not UTF-8"))
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: [u8; 32] = [7; 32];

    #[test]
    fn round_trip() {
        for secret in ["", "p", "pässwörd with spaces and ✓", &"x".repeat(4096)] {
            let s = encrypt(&KEY, "registries/1/access_secret", secret);
            assert!(s.starts_with("v1:"));
            if secret.len() >= 8 {
                assert!(!s.contains(secret), "{s}");
            }
            assert_eq!(decrypt(&KEY, "registries/1/access_secret", &s).unwrap(), secret);
        }
    }

    #[test]
    fn two_encryptions_differ() {
        let a = encrypt(&KEY, "p", "secret");
        let b = encrypt(&KEY, "p", "secret");
        assert_ne!(a, b);
        assert_eq!(decrypt(&KEY, "p", &a).unwrap(), decrypt(&KEY, "p", &b).unwrap());
    }

    #[test]
    fn tampering_is_an_error() {
        let s = encrypt(&KEY, "p", "secret");
        let mut raw = STANDARD.decode(&s[3..]).unwrap();
        for i in [0, NONCE_LEN, raw.len() - 1] {
            raw[i] ^= 1;
            let t = format!("v1:{}", STANDARD.encode(&raw));
            assert_eq!(decrypt(&KEY, "p", &t), Err(CryptoError::Decrypt), "byte {i}");
            raw[i] ^= 1;
        }
        // Truncated, garbage, unknown version, empty.
        let short = format!("v1:{}", STANDARD.encode(&raw[..NONCE_LEN + TAG_LEN - 1]));
        assert_eq!(decrypt(&KEY, "p", &short), Err(CryptoError::Format("too short")));
        let cut = format!("v1:{}", STANDARD.encode(&raw[..raw.len() - 1]));
        assert_eq!(decrypt(&KEY, "p", &cut), Err(CryptoError::Decrypt));
        assert!(matches!(decrypt(&KEY, "p", "v1:!!!"), Err(CryptoError::Format(_))));
        assert!(matches!(decrypt(&KEY, "p", &s.replacen("v1:", "v2:", 1)), Err(CryptoError::Format(_))));
        assert!(matches!(decrypt(&KEY, "p", ""), Err(CryptoError::Format(_))));
    }

    #[test]
    fn wrong_key_or_purpose_is_an_error() {
        let s = encrypt(&KEY, "registries/1/access_secret", "secret");
        assert_eq!(decrypt(&[8; 32], "registries/1/access_secret", &s), Err(CryptoError::Decrypt));
        assert_eq!(decrypt(&KEY, "registries/2/access_secret", &s), Err(CryptoError::Decrypt));
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig { cases: 2_000, failure_persistence: None, ..Default::default() })]

        /// Whatever the column holds, decrypting returns an error or a value, never panics.
        #[test]
        fn decrypt_is_total(s in proptest::prelude::any::<String>(), raw in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..64)) {
            proptest::prop_assert!(decrypt(&KEY, "p", &s).is_err() || s.starts_with("v1:"));
            let shaped = format!("v1:{}", STANDARD.encode(&raw));
            proptest::prop_assert!(decrypt(&KEY, "p", &shaped).is_err());
        }
    }
}
