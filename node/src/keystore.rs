//! The wallet's keystore: one file per key in a folder, each secret encrypted under a
//! passphrase.
//!
//! The passphrase is stretched with Argon2id (RFC 9106; 64 MiB, 3 passes, 1 lane by default, the
//! parameters and a random 16-byte salt stored in the file) into a 32-byte key for
//! XChaCha20-Poly1305 (a random 24-byte nonce). The address is the associated data: a file whose
//! address was edited, or whose ciphertext was swapped with another file's, does not open. A
//! wrong passphrase and a damaged file both fail the authentication tag, so nothing is ever
//! decrypted into a wrong key.

use std::io::Write;
use std::path::{Path, PathBuf};

use argon2::{Algorithm, Argon2, Params, Version};
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use eyre::{WrapErr, bail, eyre};
use goodwill_ledger::{Address, Keypair};
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

/// The file format's version.
const VERSION: u32 = 1;

/// Argon2id cost: what a Raspberry-Pi-class board opens in about a second.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KdfParams {
    /// Memory in KiB.
    pub memory_kib: u32,
    /// Passes.
    pub iterations: u32,
    /// Lanes.
    pub parallelism: u32,
}

impl Default for KdfParams {
    fn default() -> KdfParams {
        KdfParams { memory_kib: 64 * 1024, iterations: 3, parallelism: 1 }
    }
}

/// Most memory a keystore file may ask for: a file is input, and opening it must not exhaust
/// the machine.
const MAX_MEMORY_KIB: u32 = 1024 * 1024;
/// Most passes and lanes a keystore file may ask for, for the same reason (time, not memory).
const MAX_ITERATIONS: u32 = 64;
const MAX_PARALLELISM: u32 = 16;

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Crypto {
    kdf: String,
    kdf_params: KdfParams,
    salt: String,
    cipher: String,
    nonce: String,
    ciphertext: String,
}

/// One keystore file.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct KeyFile {
    version: u32,
    address: Address,
    name: Option<String>,
    crypto: Crypto,
}

/// A key's entry in the keystore, as listed (the secret stays encrypted).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub address: Address,
    pub name: Option<String>,
    pub path: PathBuf,
}

/// The keystore folder.
pub struct Keystore {
    dir: PathBuf,
}

/// Argon2's parameters for `params`, refused over the limits: opening a file must not exhaust
/// the machine.
fn checked_cost(params: KdfParams) -> eyre::Result<Params> {
    if params.iterations > MAX_ITERATIONS || params.parallelism > MAX_PARALLELISM {
        bail!(
            "the key file asks for {} passes over {} lanes to open; at most {MAX_ITERATIONS} passes and \
             {MAX_PARALLELISM} lanes are allowed",
            params.iterations,
            params.parallelism
        );
    }
    if params.memory_kib > MAX_MEMORY_KIB {
        bail!(
            "the key file asks for {} KiB of memory to open; at most {MAX_MEMORY_KIB} is allowed",
            params.memory_kib
        );
    }
    Params::new(params.memory_kib, params.iterations, params.parallelism, Some(32))
        .map_err(|e| eyre!("key derivation parameters: {e}"))
}

fn derive(passphrase: &[u8], salt: &[u8], params: KdfParams) -> eyre::Result<Zeroizing<[u8; 32]>> {
    let argon = checked_cost(params)?;
    let mut key = Zeroizing::new([0u8; 32]);
    Argon2::new(Algorithm::Argon2id, Version::V0x13, argon)
        .hash_password_into(passphrase, salt, key.as_mut())
        .map_err(|e| eyre!("key derivation: {e}"))?;
    Ok(key)
}

fn random<const N: usize>() -> eyre::Result<[u8; N]> {
    let mut bytes = [0u8; N];
    getrandom::fill(&mut bytes).map_err(|e| eyre!("the system's random source failed: {e}"))?;
    Ok(bytes)
}

impl Keystore {
    /// The keystore in `dir` (created when a key is first added).
    pub fn new(dir: PathBuf) -> Keystore {
        Keystore { dir }
    }

    /// Where the keystore is.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn path_of(&self, address: &Address) -> PathBuf {
        self.dir.join(format!("{address}.json"))
    }

    /// Encrypts `key` under `passphrase` into a new file. Refuses to replace a key.
    pub fn add(
        &self,
        key: &Keypair,
        name: Option<&str>,
        passphrase: &[u8],
        params: KdfParams,
    ) -> eyre::Result<PathBuf> {
        let address = key.address();
        if let Some(name) = name
            && self.list()?.iter().any(|e| e.name.as_deref() == Some(name))
        {
            bail!("a key named {name:?} is in the keystore already");
        }
        let salt: [u8; 16] = random()?;
        let nonce: [u8; 24] = random()?;
        let derived = derive(passphrase, &salt, params)?;
        let cipher = XChaCha20Poly1305::new(derived.as_ref().into());
        let secret = Zeroizing::new(key.secret_bytes());
        let ciphertext = cipher
            .encrypt(XNonce::from_slice(&nonce), Payload { msg: secret.as_ref(), aad: address.as_bytes() })
            .map_err(|_| eyre!("encryption failed"))?;
        let file = KeyFile {
            version: VERSION,
            address,
            name: name.map(str::to_string),
            crypto: Crypto {
                kdf: "argon2id".into(),
                kdf_params: params,
                salt: hex::encode(salt),
                cipher: "xchacha20poly1305".into(),
                nonce: hex::encode(nonce),
                ciphertext: hex::encode(ciphertext),
            },
        };
        std::fs::create_dir_all(&self.dir).wrap_err_with(|| format!("creating {}", self.dir.display()))?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&self.dir, std::fs::Permissions::from_mode(0o700))
                .wrap_err_with(|| format!("making {} private", self.dir.display()))?;
        }
        let path = self.path_of(&address);
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let mut out = options.open(&path).map_err(|e| match e.kind() {
            std::io::ErrorKind::AlreadyExists => {
                eyre!("{address} is in the keystore already ({})", path.display())
            }
            _ => eyre!("writing {}: {e}", path.display()),
        })?;
        let text = serde_json::to_string_pretty(&file)?;
        out.write_all(text.as_bytes())
            .and_then(|()| out.write_all(b"\n"))
            .and_then(|()| out.sync_all())
            .wrap_err_with(|| format!("writing {}", path.display()))?;
        Ok(path)
    }

    /// Every key in the keystore, sorted by address. Files that are not keystore files are
    /// reported, not skipped silently.
    pub fn list(&self) -> eyre::Result<Vec<Entry>> {
        let entries = match std::fs::read_dir(&self.dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(eyre!("reading {}: {e}", self.dir.display())),
        };
        let mut found = Vec::new();
        for entry in entries {
            let path = entry?.path();
            if path.extension().is_none_or(|e| e != "json") {
                continue;
            }
            let file = read(&path)?;
            found.push(Entry { address: file.address, name: file.name, path });
        }
        found.sort_by_key(|e| e.address);
        Ok(found)
    }

    /// The entry for `which`: an address, or a key's name.
    pub fn find(&self, which: &str) -> eyre::Result<Option<Entry>> {
        Ok(self
            .list()?
            .into_iter()
            .find(|e| e.address.to_string() == which || e.name.as_deref() == Some(which)))
    }

    /// Decrypts the key in `entry` with `passphrase`.
    pub fn unlock(&self, entry: &Entry, passphrase: &[u8]) -> eyre::Result<Keypair> {
        let text = std::fs::read_to_string(&entry.path)
            .wrap_err_with(|| format!("reading {}", entry.path.display()))?;
        let sealed = Sealed::parse(&text).map_err(|e| eyre!("{}: {e:#}", entry.path.display()))?;
        sealed.open(passphrase)
    }
}

/// A keystore file, read and checked but still encrypted: its format is known, its fields have
/// their lengths, and opening it costs at most the allowed memory and passes.
pub struct Sealed {
    address: Address,
    params: KdfParams,
    salt: Vec<u8>,
    nonce: [u8; 24],
    ciphertext: Vec<u8>,
}

impl Sealed {
    /// Reads a keystore file's text. Anything a file may hold is refused with a reason, or
    /// accepted: nothing here panics or allocates beyond the text's size.
    pub fn parse(text: &str) -> eyre::Result<Sealed> {
        let file: KeyFile = serde_json::from_str(text).wrap_err("not a Goodwill keystore file")?;
        let crypto = file.crypto;
        if file.version != VERSION || crypto.kdf != "argon2id" || crypto.cipher != "xchacha20poly1305" {
            bail!(
                "unsupported keystore format (version {}, {}, {})",
                file.version,
                crypto.kdf,
                crypto.cipher
            );
        }
        checked_cost(crypto.kdf_params)?;
        let bad = |what: &str| eyre!("{what} is not valid hex of the right length");
        let salt = hex::decode(&crypto.salt).map_err(|_| bad("salt"))?;
        let nonce: [u8; 24] =
            hex::decode(&crypto.nonce).ok().and_then(|n| n.try_into().ok()).ok_or_else(|| bad("nonce"))?;
        let ciphertext = hex::decode(&crypto.ciphertext).map_err(|_| bad("ciphertext"))?;
        Ok(Sealed { address: file.address, params: crypto.kdf_params, salt, nonce, ciphertext })
    }

    /// The address the file names.
    pub fn address(&self) -> Address {
        self.address
    }

    /// What opening it costs.
    pub fn params(&self) -> KdfParams {
        self.params
    }

    /// Decrypts the key with `passphrase`: a wrong passphrase, a damaged file, or a key that does
    /// not sign for the file's address are refused.
    pub fn open(&self, passphrase: &[u8]) -> eyre::Result<Keypair> {
        let derived = derive(passphrase, &self.salt, self.params)?;
        let cipher = XChaCha20Poly1305::new(derived.as_ref().into());
        let secret = Zeroizing::new(
            cipher
                .decrypt(
                    XNonce::from_slice(&self.nonce),
                    Payload { msg: &self.ciphertext, aad: self.address.as_bytes() },
                )
                .map_err(|_| eyre!("wrong passphrase for {} (or the file is damaged)", self.address))?,
        );
        let seed: [u8; 32] =
            secret.as_slice().try_into().map_err(|_| eyre!("the secret is not 32 bytes long"))?;
        let key = Keypair::from_seed(seed);
        if key.address() != self.address {
            bail!("the key does not match its address {}", self.address);
        }
        Ok(key)
    }
}

fn read(path: &Path) -> eyre::Result<KeyFile> {
    let text = std::fs::read_to_string(path).wrap_err_with(|| format!("reading {}", path.display()))?;
    serde_json::from_str(&text)
        .wrap_err_with(|| format!("{} is not a Goodwill keystore file", path.display()))
}

/// Where the passphrase comes from: `GOODWILL_PASSPHRASE_FILE` (its first line),
/// `GOODWILL_PASSPHRASE`, or else a prompt on the terminal (twice when `confirm`).
pub fn passphrase(prompt: &str, confirm: bool) -> eyre::Result<Zeroizing<String>> {
    if let Some(file) = std::env::var_os("GOODWILL_PASSPHRASE_FILE") {
        let text = Zeroizing::new(
            std::fs::read_to_string(&file)
                .wrap_err_with(|| format!("reading {}", Path::new(&file).display()))?,
        );
        return Ok(Zeroizing::new(text.lines().next().unwrap_or("").to_string()));
    }
    if let Ok(text) = std::env::var("GOODWILL_PASSPHRASE") {
        return Ok(Zeroizing::new(text));
    }
    let first = Zeroizing::new(
        rpassword::prompt_password(prompt)
            .wrap_err("reading the passphrase (no terminal? set GOODWILL_PASSPHRASE_FILE)")?,
    );
    if confirm {
        let again = Zeroizing::new(rpassword::prompt_password("Again: ")?);
        if *first != *again {
            bail!("the passphrases differ");
        }
        if first.is_empty() {
            bail!("an empty passphrase protects nothing");
        }
    }
    Ok(first)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Cheap parameters: the format, not the cost, is under test.
    const FAST: KdfParams = KdfParams { memory_kib: 64, iterations: 1, parallelism: 1 };

    #[test]
    fn a_key_round_trips_and_a_wrong_passphrase_or_edit_opens_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let store = Keystore::new(dir.path().join("keys"));
        let key = Keypair::generate().unwrap();
        let path = store.add(&key, Some("savings"), b"correct horse", FAST).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(!text.contains(&hex::encode(key.secret_bytes())), "the secret is stored in clear");

        let entry = store.find("savings").unwrap().unwrap();
        assert_eq!(entry, store.find(&key.address().to_string()).unwrap().unwrap());
        assert_eq!(store.unlock(&entry, b"correct horse").unwrap().address(), key.address());
        let wrong = store.unlock(&entry, b"battery staple").unwrap_err().to_string();
        assert!(wrong.contains("wrong passphrase"), "{wrong}");

        // The same key, or another under the same name, is refused.
        assert!(store.add(&key, None, b"x", FAST).is_err());
        assert!(store.add(&Keypair::generate().unwrap(), Some("savings"), b"x", FAST).is_err());

        // Pointing the file at another address breaks the tag: nothing decrypts.
        let other = Keypair::generate().unwrap().address().to_string();
        let edited = text.replace(&key.address().to_string(), &other);
        std::fs::write(&path, edited).unwrap();
        let entry = store.find(&other).unwrap().unwrap();
        assert!(store.unlock(&entry, b"correct horse").is_err());

        // A file that demands absurd memory is refused before any work.
        let greedy = text.replace("\"memory_kib\": 64", "\"memory_kib\": 4000000000");
        std::fs::write(&path, greedy).unwrap();
        let entry = store.find("savings").unwrap().unwrap();
        let refused = store.unlock(&entry, b"correct horse").unwrap_err().to_string();
        assert!(refused.contains("memory"), "{refused}");
        // So is one that demands endless passes.
        let slow = text.replace("\"iterations\": 1", "\"iterations\": 4000000000");
        std::fs::write(&path, slow).unwrap();
        let entry = store.find("savings").unwrap().unwrap();
        let refused = store.unlock(&entry, b"correct horse").unwrap_err().to_string();
        assert!(refused.contains("passes"), "{refused}");
    }

    #[test]
    fn a_file_that_is_not_a_keystore_file_is_reported() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("junk.json"), "{}").unwrap();
        let error = Keystore::new(dir.path().to_path_buf()).list().unwrap_err();
        assert!(format!("{error:#}").contains("not a Goodwill keystore file"), "{error:#}");
    }
}
