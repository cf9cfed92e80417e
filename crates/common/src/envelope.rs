//! Envelope encryption of stored secrets (provider credentials).
//!
//! Each secret is encrypted with AES-256-GCM under a data key of its own,
//! and the data key is encrypted (wrapped) under a master key. Master keys
//! come from the environment or a mounted file (a Kubernetes Secret) and
//! are read again at every use, so a key file can be rotated without a
//! restart: list the new key first (it wraps from then on) and keep the old
//! one (it still unwraps), then rewrap every secret and drop the old key.
//! Rewrapping re-encrypts only the data key; the secret's ciphertext stays.
//!
//! The master keys' value is `ID:BASE64` entries separated by commas or
//! newlines, each key 32 bytes: `k2:3q2+7w…=,k1:AAEC…=`.

use std::collections::BTreeMap;

use aes_gcm::{
    Aes256Gcm, KeyInit, Nonce,
    aead::{Aead, Payload},
};
use base64::{Engine, engine::general_purpose::STANDARD};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::SecretSource;

/// Bytes of an AES-256 key.
const KEY_BYTES: usize = 32;
/// Bytes of an AES-GCM nonce.
const NONCE_BYTES: usize = 12;

/// The `credentials` section: where the master keys are read.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct CredentialsConfig {
    /// `ID:BASE64` master keys, the first the one that encrypts
    /// (`{env: SWITCHYARD_MASTER_KEYS}` or `{file: /run/secrets/master-keys}`).
    /// Stored credentials are off when absent.
    pub master_keys: Option<SecretSource>,
}

/// A secret as stored: its ciphertext, and its data key wrapped by a master key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sealed {
    /// The id of the master key that wraps the data key.
    pub master_key_id: String,
    /// The data key, encrypted under the master key (with its tag).
    pub wrapped_key: Vec<u8>,
    /// The nonce the data key was wrapped with.
    pub key_nonce: Vec<u8>,
    /// The nonce the secret was encrypted with.
    pub nonce: Vec<u8>,
    /// The secret, encrypted under the data key (with its tag).
    pub ciphertext: Vec<u8>,
}

/// Why a secret cannot be sealed, opened or rewrapped. Never holds a key or
/// a secret.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EnvelopeError {
    /// The master keys cannot be read.
    #[error("the master keys cannot be read: {0}")]
    Unreadable(String),
    /// The master keys are not `ID:BASE64` entries of 32-byte keys.
    #[error("the master keys are malformed: {0}")]
    Malformed(String),
    /// No configured master key has the id the secret was wrapped with.
    #[error("no master key `{0}` is configured (was it dropped before a rewrap?)")]
    UnknownKey(String),
    /// Decryption failed: a wrong key, or altered data.
    #[error("the stored secret does not decrypt: wrong master key or altered data")]
    Corrupt,
    /// The operating system's random generator failed.
    #[error("cannot draw a data key: {0}")]
    Random(String),
}

/// The master keys, read from their source at each use.
#[derive(Debug, Clone)]
pub struct Keyring {
    source: SecretSource,
    environment: BTreeMap<String, String>,
}

/// Master keys as read: the current one's id, and every key by id.
struct MasterKeys {
    current: String,
    keys: BTreeMap<String, [u8; KEY_BYTES]>,
}

impl Keyring {
    /// A keyring reading `source` (resolved against `environment`).
    pub fn new(source: SecretSource, environment: BTreeMap<String, String>) -> Self {
        Self {
            source,
            environment,
        }
    }

    /// The keyring the `credentials` section configures; `None` when it
    /// configures none. Fails when the keys cannot be read or parsed.
    pub fn from_config(
        config: &CredentialsConfig,
        environment: &BTreeMap<String, String>,
    ) -> Result<Option<Self>, EnvelopeError> {
        let Some(source) = &config.master_keys else {
            return Ok(None);
        };
        let keyring = Self::new(source.clone(), environment.clone());
        keyring.read()?;
        Ok(Some(keyring))
    }

    /// The id of the master key that wraps new data keys.
    pub fn current_key_id(&self) -> Result<String, EnvelopeError> {
        Ok(self.read()?.current)
    }

    fn read(&self) -> Result<MasterKeys, EnvelopeError> {
        let text = self
            .source
            .resolve(&self.environment)
            .map_err(|error| EnvelopeError::Unreadable(error.to_string()))?;
        let mut keys = BTreeMap::new();
        let mut current = None;
        for entry in text
            .expose()
            .split([',', '\n'])
            .map(str::trim)
            .filter(|entry| !entry.is_empty())
        {
            let (id, encoded) = entry.split_once(':').ok_or_else(|| {
                EnvelopeError::Malformed("an entry is not `ID:BASE64`".to_owned())
            })?;
            let bytes = STANDARD
                .decode(encoded.trim())
                .map_err(|_| EnvelopeError::Malformed(format!("key `{id}` is not base64")))?;
            let key: [u8; KEY_BYTES] = bytes.try_into().map_err(|_| {
                EnvelopeError::Malformed(format!("key `{id}` is not {KEY_BYTES} bytes"))
            })?;
            if keys.insert(id.to_owned(), key).is_some() {
                return Err(EnvelopeError::Malformed(format!(
                    "key `{id}` is listed twice"
                )));
            }
            current.get_or_insert_with(|| id.to_owned());
        }
        let current = current.ok_or_else(|| EnvelopeError::Malformed("no key".to_owned()))?;
        Ok(MasterKeys { current, keys })
    }

    /// Encrypts `secret` under a fresh data key, wrapped by the current
    /// master key. `binding` (the credential's id) is authenticated with it:
    /// a ciphertext moved to another credential does not decrypt.
    pub fn seal(&self, binding: &str, secret: &[u8]) -> Result<Sealed, EnvelopeError> {
        let keys = self.read()?;
        let data_key = random::<KEY_BYTES>()?;
        let nonce = random::<NONCE_BYTES>()?;
        let ciphertext = encrypt(&data_key, &nonce, secret, binding.as_bytes())?;
        let (master_key_id, wrapped_key, key_nonce) = keys.wrap(&data_key)?;
        Ok(Sealed {
            master_key_id,
            wrapped_key,
            key_nonce,
            nonce: nonce.to_vec(),
            ciphertext,
        })
    }

    /// Decrypts a secret sealed for `binding`.
    pub fn open(&self, binding: &str, sealed: &Sealed) -> Result<Vec<u8>, EnvelopeError> {
        let keys = self.read()?;
        let data_key = unwrap_key(&keys, sealed)?;
        decrypt(
            &data_key,
            &sealed.nonce,
            &sealed.ciphertext,
            binding.as_bytes(),
        )
    }

    /// Wraps `sealed`'s data key under the current master key; the secret's
    /// ciphertext is kept, and never decrypted. Unchanged when already there.
    pub fn rewrap(&self, sealed: &Sealed) -> Result<Sealed, EnvelopeError> {
        let keys = self.read()?;
        if sealed.master_key_id == keys.current {
            return Ok(sealed.clone());
        }
        let data_key = unwrap_key(&keys, sealed)?;
        let (master_key_id, wrapped_key, key_nonce) = keys.wrap(&data_key)?;
        Ok(Sealed {
            master_key_id,
            wrapped_key,
            key_nonce,
            ..sealed.clone()
        })
    }
}

impl MasterKeys {
    /// Wraps `data_key` under the current master key: its id, the wrapped
    /// key and the nonce used.
    fn wrap(&self, data_key: &[u8]) -> Result<(String, Vec<u8>, Vec<u8>), EnvelopeError> {
        let master = self
            .keys
            .get(&self.current)
            .ok_or_else(|| EnvelopeError::UnknownKey(self.current.clone()))?;
        let key_nonce = random::<NONCE_BYTES>()?;
        let wrapped = encrypt(master, &key_nonce, data_key, self.current.as_bytes())?;
        Ok((self.current.clone(), wrapped, key_nonce.to_vec()))
    }
}

fn unwrap_key(keys: &MasterKeys, sealed: &Sealed) -> Result<Vec<u8>, EnvelopeError> {
    let master = keys
        .keys
        .get(&sealed.master_key_id)
        .ok_or_else(|| EnvelopeError::UnknownKey(sealed.master_key_id.clone()))?;
    decrypt(
        master,
        &sealed.key_nonce,
        &sealed.wrapped_key,
        sealed.master_key_id.as_bytes(),
    )
}

fn random<const N: usize>() -> Result<[u8; N], EnvelopeError> {
    let mut bytes = [0_u8; N];
    getrandom::fill(&mut bytes).map_err(|error| EnvelopeError::Random(error.to_string()))?;
    Ok(bytes)
}

fn cipher(key: &[u8]) -> Result<Aes256Gcm, EnvelopeError> {
    Aes256Gcm::new_from_slice(key).map_err(|_| EnvelopeError::Corrupt)
}

fn encrypt(key: &[u8], nonce: &[u8], msg: &[u8], aad: &[u8]) -> Result<Vec<u8>, EnvelopeError> {
    cipher(key)?
        .encrypt(Nonce::from_slice(nonce), Payload { msg, aad })
        .map_err(|_| EnvelopeError::Corrupt)
}

fn decrypt(key: &[u8], nonce: &[u8], msg: &[u8], aad: &[u8]) -> Result<Vec<u8>, EnvelopeError> {
    if nonce.len() != NONCE_BYTES {
        return Err(EnvelopeError::Corrupt);
    }
    cipher(key)?
        .decrypt(Nonce::from_slice(nonce), Payload { msg, aad })
        .map_err(|_| EnvelopeError::Corrupt)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(byte: u8) -> String {
        STANDARD.encode([byte; KEY_BYTES])
    }

    fn keyring(value: &str) -> Keyring {
        Keyring::new(
            SecretSource::env("KEYS"),
            BTreeMap::from([("KEYS".to_owned(), value.to_owned())]),
        )
    }

    #[test]
    fn a_sealed_secret_opens_for_its_binding_only_and_hides_the_value() {
        let keyring = keyring(&format!("k1:{}", key(1)));
        let sealed = keyring.seal("openai-main", b"sk-live-123").expect("sealed");
        assert_eq!(sealed.master_key_id, "k1");
        assert!(
            !sealed
                .ciphertext
                .windows(11)
                .any(|window| window == b"sk-live-123")
        );
        assert_eq!(
            keyring.open("openai-main", &sealed).expect("opens"),
            b"sk-live-123"
        );
        assert_eq!(keyring.open("other", &sealed), Err(EnvelopeError::Corrupt));
        let mut altered = sealed.clone();
        altered.ciphertext[0] ^= 1;
        assert_eq!(
            keyring.open("openai-main", &altered),
            Err(EnvelopeError::Corrupt)
        );
    }

    #[test]
    fn rotation_keeps_old_secrets_readable_and_rewrap_moves_them_to_the_new_key() {
        let old = keyring(&format!("k1:{}", key(1)));
        let sealed = old.seal("c", b"value").expect("sealed");
        // Rotated: k2 wraps from now on, k1 still unwraps.
        let rotated = keyring(&format!("k2:{},\nk1:{}", key(2), key(1)));
        assert_eq!(rotated.open("c", &sealed).expect("old key opens"), b"value");
        assert_eq!(rotated.seal("d", b"x").expect("sealed").master_key_id, "k2");
        let rewrapped = rotated.rewrap(&sealed).expect("rewrapped");
        assert_eq!(rewrapped.master_key_id, "k2");
        assert_eq!(
            rewrapped.ciphertext, sealed.ciphertext,
            "the secret is not re-encrypted"
        );
        // With k1 dropped, only the rewrapped copy opens.
        let only_new = keyring(&format!("k2:{}", key(2)));
        assert_eq!(only_new.open("c", &rewrapped).expect("opens"), b"value");
        assert_eq!(
            only_new.open("c", &sealed),
            Err(EnvelopeError::UnknownKey("k1".to_owned()))
        );
    }

    #[test]
    fn malformed_keys_are_refused_without_showing_them() {
        for bad in [
            "",
            "k1",
            "k1:not-base64!",
            &format!("k1:{}", STANDARD.encode([1; 16])),
        ] {
            let error = keyring(bad).current_key_id().expect_err(bad);
            assert!(!error.to_string().contains("AQEB"), "{error}");
        }
        let twice = keyring(&format!("k1:{0},k1:{0}", key(1)));
        assert!(twice.current_key_id().is_err());
    }
}
