//! Content digests (`sha256:<64 hex>`, `sha512:<128 hex>`) and the resumable hasher that makes
//! chunked uploads single-pass across requests and replicas.

use std::fmt;
use std::str::FromStr;

use sha2::digest::common::hazmat::SerializableState;
use sha2::{Digest as _, Sha256, Sha512};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Algorithm {
    Sha256,
    Sha512,
}

impl Algorithm {
    pub fn name(self) -> &'static str {
        match self {
            Algorithm::Sha256 => "sha256",
            Algorithm::Sha512 => "sha512",
        }
    }
    pub fn hex_len(self) -> usize {
        match self {
            Algorithm::Sha256 => 64,
            Algorithm::Sha512 => 128,
        }
    }
}

/// A validated digest. `Display` gives the canonical `alg:hex` form.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Digest {
    pub algorithm: Algorithm,
    pub hex: String,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DigestError {
    #[error("unsupported digest algorithm {0:?} (sha256 and sha512 are supported)")]
    Unsupported(String),
    #[error("invalid digest {0:?}")]
    Invalid(String),
}

impl FromStr for Digest {
    type Err = DigestError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (alg, hex) = s.split_once(':').ok_or_else(|| DigestError::Invalid(s.into()))?;
        let algorithm = match alg {
            "sha256" => Algorithm::Sha256,
            "sha512" => Algorithm::Sha512,
            // The grammar allows other algorithms; we refuse them clearly.
            a if !a.is_empty()
                && a.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"+._-".contains(&b)) =>
            {
                return Err(DigestError::Unsupported(a.into()))
            }
            _ => return Err(DigestError::Invalid(s.into())),
        };
        if hex.len() != algorithm.hex_len()
            || !hex.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        {
            return Err(DigestError::Invalid(s.into()));
        }
        Ok(Digest { algorithm, hex: hex.into() })
    }
}

/// For row types (`#[sqlx(try_from = "String")]`).
impl TryFrom<String> for Digest {
    type Error = DigestError;

    fn try_from(s: String) -> Result<Self, DigestError> {
        s.parse()
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.algorithm.name(), self.hex)
    }
}

impl Digest {
    /// Digest of a complete byte string.
    pub fn of(algorithm: Algorithm, data: &[u8]) -> Digest {
        let hex = match algorithm {
            Algorithm::Sha256 => hex(&Sha256::digest(data)),
            Algorithm::Sha512 => hex(&Sha512::digest(data)),
        };
        Digest { algorithm, hex }
    }

    /// Digest of a stream, read once.
    pub async fn of_stream(
        algorithm: Algorithm,
        mut data: crate::storage::ByteStream,
    ) -> std::io::Result<Digest> {
        use futures::StreamExt;
        let mut h256 = Sha256::new();
        let mut h512 = Sha512::new();
        while let Some(chunk) = data.next().await {
            let chunk = chunk?;
            match algorithm {
                Algorithm::Sha256 => h256.update(&chunk),
                Algorithm::Sha512 => h512.update(&chunk),
            }
        }
        let hex = match algorithm {
            Algorithm::Sha256 => hex(&h256.finalize()),
            Algorithm::Sha512 => hex(&h512.finalize()),
        };
        Ok(Digest { algorithm, hex })
    }

    pub fn sha256(data: &[u8]) -> Digest {
        Self::of(Algorithm::Sha256, data)
    }

    /// Storage key of the content with this digest (see `storage` for the layout).
    pub fn blob_key(&self) -> String {
        format!("blobs/{}/{}/{}/data", self.algorithm.name(), &self.hex[..2], self.hex)
    }
}

pub fn hex(bytes: &[u8]) -> String {
    const H: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(H[(b >> 4) as usize] as char);
        s.push(H[(b & 15) as usize] as char);
    }
    s
}

/// SHA-256 over an upload, resumable: its state is saved in the upload's row after every
/// request and restored by whichever replica receives the next one.
#[derive(Clone, Default)]
pub struct UploadHasher(Sha256);

impl UploadHasher {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn restore(state: &[u8]) -> Option<Self> {
        let arr = state.try_into().ok()?;
        Sha256::deserialize(arr).ok().map(UploadHasher)
    }

    pub fn save(&self) -> Vec<u8> {
        self.0.serialize().to_vec()
    }

    pub fn update(&mut self, data: &[u8]) {
        self.0.update(data);
    }

    pub fn finish(self) -> Digest {
        Digest { algorithm: Algorithm::Sha256, hex: hex(&self.0.finalize()) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_rejects() {
        let d: Digest =
            "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855".parse().unwrap();
        assert_eq!(d, Digest::sha256(b""));
        assert_eq!(d.to_string(), "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
        assert_eq!(d.blob_key(), format!("blobs/sha256/e3/{}/data", d.hex));
        let d512 = Digest::of(Algorithm::Sha512, b"abc");
        assert_eq!(d512.to_string().parse::<Digest>().unwrap(), d512);
        assert!(matches!("md5:abc".parse::<Digest>(), Err(DigestError::Unsupported(_))));
        for bad in [
            "",
            "sha256",
            "sha256:",
            "sha256:E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA495991B7852B855",
            "sha256:e3b0",
            "sha256:../../etc/passwd",
            ":abc",
            "SHA256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
        ] {
            assert!(bad.parse::<Digest>().is_err(), "{bad}");
        }
    }

    #[test]
    fn hasher_state_survives_serialisation() {
        let data: Vec<u8> = (0..100_000u32).map(|i| (i * 31 % 251) as u8).collect();
        let mut h = UploadHasher::new();
        h.update(&data[..12_345]);
        let saved = h.save();
        let mut h2 = UploadHasher::restore(&saved).unwrap();
        h2.update(&data[12_345..]);
        assert_eq!(h2.finish(), Digest::sha256(&data));
        assert!(UploadHasher::restore(b"short").is_none());
    }
}
