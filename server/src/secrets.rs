//! Secrets every replica must share: the registry-token signing key (ES256), the session key
//! (signs session cookies) and the encryption key (stored credentials).
//!
//! **A secret comes from the configuration when given, otherwise from the `secrets` table; the
//! first replica to start generates it and `INSERT … ON CONFLICT DO NOTHING` makes every other
//! replica read the winner's value.** Secrets are never logged (`SecretsConfig`'s `Debug` hides
//! them).

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use jsonwebtoken::{DecodingKey, EncodingKey};
use p256::elliptic_curve::sec1::ToEncodedPoint;
use p256::pkcs8::{DecodePrivateKey, EncodePrivateKey, EncodePublicKey, LineEnding};
use rand::RngCore;
use sha2::{Digest, Sha256};

use crate::config::{ConfigError, SecretsConfig};
use crate::db::{now_ms, Db};

/// The ES256 key pair that signs registry bearer tokens.
#[derive(Clone)]
pub struct TokenKey {
    pub encoding: EncodingKey,
    pub decoding: DecodingKey,
    /// RFC 7638 JWK thumbprint of the public key, used as the JWT `kid`.
    pub kid: String,
    /// The public key as a JWK (for the JWKS document).
    pub jwk: serde_json::Value,
    /// The public key as SPKI PEM (for registries and tools that verify our tokens).
    pub public_pem: String,
}

impl std::fmt::Debug for TokenKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenKey").field("kid", &self.kid).finish_non_exhaustive()
    }
}

impl TokenKey {
    pub fn from_pem(pem: &str) -> Result<Self, String> {
        let secret = p256::SecretKey::from_pkcs8_pem(pem)
            .map_err(|e| format!("not a PKCS#8 PEM P-256 private key: {e}"))?;
        let public = secret.public_key();
        let point = public.to_encoded_point(false);
        let x = URL_SAFE_NO_PAD.encode(point.x().ok_or("invalid public key")?);
        let y = URL_SAFE_NO_PAD.encode(point.y().ok_or("invalid public key")?);
        // RFC 7638: the required members in lexicographic order, no whitespace.
        let canonical = format!(r#"{{"crv":"P-256","kty":"EC","x":"{x}","y":"{y}"}}"#);
        let kid = URL_SAFE_NO_PAD.encode(Sha256::digest(canonical.as_bytes()));
        let public_pem = public.to_public_key_pem(LineEnding::LF).map_err(|e| e.to_string())?;
        let encoding = EncodingKey::from_ec_pem(pem.as_bytes()).map_err(|e| e.to_string())?;
        let decoding = DecodingKey::from_ec_pem(public_pem.as_bytes()).map_err(|e| e.to_string())?;
        let jwk = serde_json::json!({
            "kty": "EC", "crv": "P-256", "x": x, "y": y,
            "use": "sig", "alg": "ES256", "kid": kid,
        });
        Ok(Self { encoding, decoding, kid, jwk, public_pem })
    }

    fn generate_pem() -> String {
        let secret = p256::SecretKey::random(&mut rand::rngs::OsRng);
        secret.to_pkcs8_pem(LineEnding::LF).expect("encode fresh key").to_string()
    }
}

/// All shared secrets, loaded once at start.
#[derive(Clone)]
pub struct Secrets {
    pub token_key: TokenKey,
    pub session_key: [u8; 64],
    pub encryption_key: [u8; 32],
}

impl std::fmt::Debug for Secrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Secrets").field("token_key", &self.token_key).finish_non_exhaustive()
    }
}

/// Checks configured secrets without touching the database (part of config validation).
pub fn validate_config(cfg: &SecretsConfig) -> Result<(), ConfigError> {
    if let Some(pem) = &cfg.token_signing_key {
        TokenKey::from_pem(pem).map_err(|m| ConfigError::new("secrets.token_signing_key", m))?;
    }
    if let Some(k) = &cfg.session_key {
        decode_key::<64>(k).map_err(|m| ConfigError::new("secrets.session_key", m))?;
    }
    if let Some(k) = &cfg.encryption_key {
        decode_key::<32>(k).map_err(|m| ConfigError::new("secrets.encryption_key", m))?;
    }
    Ok(())
}

fn decode_key<const N: usize>(b64: &str) -> Result<[u8; N], String> {
    let bytes = STANDARD.decode(b64.trim()).map_err(|e| format!("not valid base64: {e}"))?;
    bytes.try_into().map_err(|v: Vec<u8>| format!("must be {N} bytes, got {}", v.len()))
}

fn random_key<const N: usize>() -> String {
    let mut k = [0u8; N];
    rand::rngs::OsRng.fill_bytes(&mut k);
    STANDARD.encode(k)
}

/// Reads a secret from the table, generating and storing it first when absent. Concurrent
/// first starts converge on one value.
async fn shared_secret(db: &Db, name: &str, generate: impl FnOnce() -> String) -> anyhow::Result<String> {
    if let Some(v) = sqlx::query_scalar::<_, String>("SELECT value FROM secrets WHERE name = $1")
        .bind(name)
        .fetch_optional(&db.pool)
        .await?
    {
        return Ok(v);
    }
    sqlx::query(
        "INSERT INTO secrets (name, value, created_at) VALUES ($1, $2, $3) ON CONFLICT (name) DO NOTHING",
    )
    .bind(name)
    .bind(generate())
    .bind(now_ms())
    .execute(&db.pool)
    .await?;
    Ok(sqlx::query_scalar::<_, String>("SELECT value FROM secrets WHERE name = $1")
        .bind(name)
        .fetch_one(&db.pool)
        .await?)
}

impl Secrets {
    pub async fn load(db: &Db, cfg: &SecretsConfig) -> anyhow::Result<Secrets> {
        let pem = match &cfg.token_signing_key {
            Some(p) => p.clone(),
            None => shared_secret(db, "token_signing_key", TokenKey::generate_pem).await?,
        };
        let session = match &cfg.session_key {
            Some(k) => k.clone(),
            None => shared_secret(db, "session_key", random_key::<64>).await?,
        };
        let enc = match &cfg.encryption_key {
            Some(k) => k.clone(),
            None => shared_secret(db, "encryption_key", random_key::<32>).await?,
        };
        Ok(Secrets {
            token_key: TokenKey::from_pem(&pem)
                .map_err(|e| anyhow::anyhow!("stored token_signing_key: {e}"))?,
            session_key: decode_key::<64>(&session)
                .map_err(|e| anyhow::anyhow!("stored session_key: {e}"))?,
            encryption_key: decode_key::<32>(&enc)
                .map_err(|e| anyhow::anyhow!("stored encryption_key: {e}"))?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_key_round_trips_and_kid_is_a_thumbprint() {
        let pem = TokenKey::generate_pem();
        let a = TokenKey::from_pem(&pem).unwrap();
        let b = TokenKey::from_pem(&pem).unwrap();
        assert_eq!(a.kid, b.kid);
        assert_eq!(a.kid.len(), 43); // base64url of 32 bytes
        let other = TokenKey::from_pem(&TokenKey::generate_pem()).unwrap();
        assert_ne!(a.kid, other.kid);
        // The key signs and verifies an ES256 JWT.
        let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::ES256);
        header.kid = Some(a.kid.clone());
        let claims = serde_json::json!({"sub": "x", "exp": 4_000_000_000u64});
        let jwt = jsonwebtoken::encode(&header, &claims, &a.encoding).unwrap();
        let v = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::ES256);
        jsonwebtoken::decode::<serde_json::Value>(&jwt, &b.decoding, &v).unwrap();
        assert!(jsonwebtoken::decode::<serde_json::Value>(&jwt, &other.decoding, &v).is_err());
    }

    #[test]
    fn rfc7638_thumbprint_matches_spec_example_shape() {
        // Thumbprint input uses exactly crv, kty, x, y in that order.
        let pem = TokenKey::generate_pem();
        let k = TokenKey::from_pem(&pem).unwrap();
        let canonical = format!(
            r#"{{"crv":"P-256","kty":"EC","x":"{}","y":"{}"}}"#,
            k.jwk["x"].as_str().unwrap(),
            k.jwk["y"].as_str().unwrap()
        );
        assert_eq!(k.kid, URL_SAFE_NO_PAD.encode(Sha256::digest(canonical.as_bytes())));
    }

    #[test]
    fn bad_configured_keys_are_rejected() {
        assert!(decode_key::<64>("AAAA").unwrap_err().contains("must be 64 bytes"));
        assert!(decode_key::<32>("!!").unwrap_err().contains("base64"));
        assert!(TokenKey::from_pem("nope").is_err());
    }
}
