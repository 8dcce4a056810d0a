//! Signing keys, key files, and the well-known insecure development keys.

use std::fs;
use std::io::Write;
use std::path::Path;

use ed25519_dalek::{Signer, SigningKey};
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::Address;

/// An ed25519 signing key and the address it signs for.
pub struct Keypair {
    signing: SigningKey,
}

impl Keypair {
    /// A fresh key from the operating system's random source.
    pub fn generate() -> Result<Keypair, KeyError> {
        let mut seed = [0u8; 32];
        getrandom::fill(&mut seed).map_err(|e| KeyError::Random(e.to_string()))?;
        Ok(Keypair::from_seed(seed))
    }

    /// The key whose 32-byte secret is `seed`.
    pub fn from_seed(seed: [u8; 32]) -> Keypair {
        Keypair { signing: SigningKey::from_bytes(&seed) }
    }

    /// A well-known development key derived from `name`. **Insecure**: anyone can derive it.
    /// Dev and local chains fund `dev` and `dev2`; nothing else should accept them.
    pub fn insecure_dev(name: &str) -> Keypair {
        let seed = crate::Hash::tagged(b"goodwill/insecure-dev-key/v1", name.as_bytes());
        Keypair::from_seed(seed.0)
    }

    /// The address this key signs for.
    pub fn address(&self) -> Address {
        Address(self.signing.verifying_key().to_bytes())
    }

    /// Signs `message`.
    pub fn sign(&self, message: &[u8]) -> [u8; 64] {
        self.signing.sign(message).to_bytes()
    }

    /// The secret this forger reveals in its `index`-th block (counting from 0). Derived from
    /// the key, so a forger needs no other state to recover it after a crash, and no one without
    /// the key can predict it.
    pub fn reveal_secret(&self, index: u64) -> crate::Hash {
        let mut input = self.signing.to_bytes().to_vec();
        input.extend_from_slice(&index.to_be_bytes());
        crate::Hash::tagged(b"goodwill/reveal-secret/v1", &input)
    }

    /// The commitment to [`Keypair::reveal_secret`]`(index)`.
    pub fn reveal_commitment(&self, index: u64) -> crate::Hash {
        crate::lottery::reveal_commitment(&self.reveal_secret(index))
    }

    /// The 32-byte secret. Handle with care.
    pub fn secret_bytes(&self) -> [u8; 32] {
        self.signing.to_bytes()
    }

    /// Writes the key to a new file readable only by its owner. Refuses to overwrite a file.
    pub fn write_file(&self, path: &Path) -> Result<(), KeyError> {
        let text = serde_json::to_string_pretty(&json!({
            "address": self.address(),
            "secret_key": hex::encode(self.secret_bytes()),
        }))
        .map_err(|e| KeyError::Format(path.display().to_string(), e.to_string()))?;
        let mut options = fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let io = |e: std::io::Error| KeyError::Io(path.display().to_string(), e);
        let mut file = options.open(path).map_err(io)?;
        file.write_all(text.as_bytes()).map_err(io)?;
        file.write_all(b"\n").map_err(io)?;
        file.sync_all().map_err(io)
    }

    /// Reads a key file written by [`Keypair::write_file`], checking its address line.
    pub fn read_file(path: &Path) -> Result<Keypair, KeyError> {
        let shown = path.display().to_string();
        let text = fs::read_to_string(path).map_err(|e| KeyError::Io(shown.clone(), e))?;
        Keypair::from_file_text(&text).map_err(|reason| KeyError::Format(shown, reason))
    }

    /// Reads the text of a key file: the secret key, and the address it must sign for if the
    /// file names one. What is wrong is said, in words.
    pub fn from_file_text(text: &str) -> Result<Keypair, String> {
        #[derive(Deserialize, Serialize)]
        #[serde(deny_unknown_fields)]
        struct KeyFile {
            address: Option<Address>,
            secret_key: String,
        }
        let file: KeyFile = serde_json::from_str(text).map_err(|e| e.to_string())?;
        let mut seed = [0u8; 32];
        hex::decode_to_slice(file.secret_key.trim(), &mut seed)
            .map_err(|_| "secret_key must be 64 hexadecimal digits".to_string())?;
        let key = Keypair::from_seed(seed);
        if let Some(address) = file.address
            && address != key.address()
        {
            return Err(format!("the secret key signs for {}, not {address}", key.address()));
        }
        Ok(key)
    }
}

impl std::fmt::Debug for Keypair {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Keypair({})", self.address())
    }
}

/// A key could not be made, read or written.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KeyError {
    /// The operating system's random source failed.
    #[error("could not get randomness from the operating system: {0}")]
    Random(String),
    /// The key file could not be read or written.
    #[error("key file {0}: {1}")]
    Io(String, #[source] std::io::Error),
    /// The key file is not a Goodwill key file.
    #[error("key file {0} is malformed: {1}")]
    Format(String, String),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_file_round_trips_and_is_private() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("key.json");
        let key = Keypair::generate().unwrap();
        key.write_file(&path).unwrap();
        assert_eq!(Keypair::read_file(&path).unwrap().address(), key.address());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        assert!(matches!(key.write_file(&path), Err(KeyError::Io(..))), "overwrote a key");
    }

    #[test]
    fn mismatched_address_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("key.json");
        let other = Keypair::insecure_dev("other").address();
        let text = json!({ "address": other, "secret_key": hex::encode([5u8; 32]) });
        fs::write(&path, text.to_string()).unwrap();
        assert!(matches!(Keypair::read_file(&path), Err(KeyError::Format(..))));
    }
}
