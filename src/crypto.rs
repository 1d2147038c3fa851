//! Encryption at rest of personal data: identifying details, pseudonyms and free text.
//!
//! XChaCha20-Poly1305 (RustCrypto) with a fresh random 192-bit nonce per value. The
//! associated data binds each ciphertext to its table column and record id, so a ciphertext
//! copied to another record or field does not open. A sealed value reads
//! `v1.<key id>.<base64(nonce || ciphertext)>`; the key id lets old values open after a key
//! rotation (`nrm keys rotate` re-encrypts them under the current key).
//!
//! Names are searched through a blind index: an HMAC-SHA256 of the normalised name under a
//! separate key, so the database never holds a name in the clear.

use std::collections::BTreeMap;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use chacha20poly1305::aead::{Aead, KeyInit, OsRng, Payload};
use chacha20poly1305::{AeadCore, XChaCha20Poly1305, XNonce};
use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::config::{Environment, Settings};

#[derive(Debug, thiserror::Error)]
pub enum CryptoError {
    #[error("{0}")]
    Config(String),
    #[error("a sealed value could not be opened (wrong key, record or field, or tampered)")]
    Open,
}

/// Built-in key material for development only; `production` refuses it.
const DEVELOPMENT_KEY: [u8; 32] = *b"nrm-development-key-not-for-prod";
const DEVELOPMENT_INDEX_KEY: [u8; 32] = *b"nrm-dev-blind-index-not-for-prod";
const DEVELOPMENT_KEY_ID: &str = "dev";

/// The id of the record a value is sealed to (bound into its associated data, so a value
/// copied to another record does not open).
pub trait RecordId: Copy {
    fn record_uuid(&self) -> uuid::Uuid;
}

impl RecordId for uuid::Uuid {
    fn record_uuid(&self) -> uuid::Uuid {
        *self
    }
}

pub struct Keyring {
    keys: BTreeMap<String, XChaCha20Poly1305>,
    current: String,
    index_key: Vec<u8>,
    development: bool,
}

fn decode_key(setting: &str, text: &str) -> Result<Vec<u8>, CryptoError> {
    let bytes = B64
        .decode(text.trim())
        .map_err(|_| CryptoError::Config(format!("{setting}: not valid base64")))?;
    if bytes.len() != 32 {
        return Err(CryptoError::Config(format!(
            "{setting}: must be 32 bytes (base64 of 32 random bytes)"
        )));
    }
    Ok(bytes)
}

impl Keyring {
    pub fn from_settings(settings: &Settings) -> Result<Self, CryptoError> {
        let crypto = &settings.crypto;
        if crypto.keys.is_empty() {
            if settings.environment == Environment::Production {
                return Err(CryptoError::Config(
                    "environment = production needs an encryption key: set [crypto] keys (a list of { id, key }), \
                     current_key and blind_index_key (NRM__CRYPTO__KEYS, NRM__CRYPTO__CURRENT_KEY, \
                     NRM__CRYPTO__BLIND_INDEX_KEY); generate keys with `openssl rand -base64 32`"
                        .into(),
                ));
            }
            let mut keys = BTreeMap::new();
            keys.insert(
                DEVELOPMENT_KEY_ID.to_string(),
                XChaCha20Poly1305::new((&DEVELOPMENT_KEY).into()),
            );
            return Ok(Self {
                keys,
                current: DEVELOPMENT_KEY_ID.into(),
                index_key: DEVELOPMENT_INDEX_KEY.to_vec(),
                development: true,
            });
        }
        let mut keys = BTreeMap::new();
        for entry in &crypto.keys {
            if entry.id.is_empty() || entry.id.contains('.') {
                return Err(CryptoError::Config(
                    "crypto.keys: each key needs an id without dots".into(),
                ));
            }
            let bytes = decode_key(&format!("crypto.keys `{}`", entry.id), &entry.key)?;
            let cipher = XChaCha20Poly1305::new_from_slice(&bytes).map_err(|e| CryptoError::Config(e.to_string()))?;
            if keys.insert(entry.id.clone(), cipher).is_some() {
                return Err(CryptoError::Config(format!(
                    "crypto.keys: id `{}` is used twice",
                    entry.id
                )));
            }
        }
        if !keys.contains_key(&crypto.current_key) {
            return Err(CryptoError::Config(format!(
                "crypto.current_key: `{}` is not one of crypto.keys",
                crypto.current_key
            )));
        }
        if crypto.blind_index_key.is_empty() {
            return Err(CryptoError::Config(
                "crypto.blind_index_key is required when crypto.keys are set".into(),
            ));
        }
        let index_key = decode_key("crypto.blind_index_key", &crypto.blind_index_key)?;
        Ok(Self {
            keys,
            current: crypto.current_key.clone(),
            index_key,
            development: false,
        })
    }

    /// Whether the built-in development key is in use.
    pub fn is_development(&self) -> bool {
        self.development
    }

    pub fn current_key_id(&self) -> &str {
        &self.current
    }

    fn aad(field: &str, record: impl RecordId) -> String {
        format!("nrm:v1:{field}:{}", record.record_uuid())
    }

    /// Encrypts `plaintext` for `field` of `record` under the current key.
    pub fn seal(&self, field: &str, record: impl RecordId, plaintext: &str) -> String {
        let Some(cipher) = self.keys.get(&self.current) else {
            return String::new();
        };
        let nonce = XChaCha20Poly1305::generate_nonce(&mut OsRng);
        let aad = Self::aad(field, record);
        match cipher.encrypt(
            &nonce,
            Payload {
                msg: plaintext.as_bytes(),
                aad: aad.as_bytes(),
            },
        ) {
            Ok(ciphertext) => {
                let mut blob = nonce.to_vec();
                blob.extend_from_slice(&ciphertext);
                format!("v1.{}.{}", self.current, B64.encode(blob))
            }
            // Encryption of in-memory data cannot fail for XChaCha20-Poly1305; keep nothing
            // rather than plaintext if it ever did.
            Err(_) => String::new(),
        }
    }

    pub fn seal_opt(&self, field: &str, record: impl RecordId, plaintext: Option<&str>) -> Option<String> {
        plaintext.map(|p| self.seal(field, record, p))
    }

    /// Decrypts a value sealed for `field` of `record`.
    pub fn open(&self, field: &str, record: impl RecordId, sealed: &str) -> Result<String, CryptoError> {
        let mut parts = sealed.splitn(3, '.');
        let (Some("v1"), Some(key_id), Some(blob)) = (parts.next(), parts.next(), parts.next()) else {
            return Err(CryptoError::Open);
        };
        let cipher = self.keys.get(key_id).ok_or(CryptoError::Open)?;
        let blob = B64.decode(blob).map_err(|_| CryptoError::Open)?;
        if blob.len() < 24 {
            return Err(CryptoError::Open);
        }
        let (nonce, ciphertext) = blob.split_at(24);
        let aad = Self::aad(field, record);
        let plaintext = cipher
            .decrypt(
                XNonce::from_slice(nonce),
                Payload {
                    msg: ciphertext,
                    aad: aad.as_bytes(),
                },
            )
            .map_err(|_| CryptoError::Open)?;
        String::from_utf8(plaintext).map_err(|_| CryptoError::Open)
    }

    pub fn open_opt(
        &self,
        field: &str,
        record: impl RecordId,
        sealed: Option<&str>,
    ) -> Result<Option<String>, CryptoError> {
        sealed.map(|s| self.open(field, record, s)).transpose()
    }

    /// Whether a sealed value is under the current key (key rotation skips those).
    pub fn is_current(&self, sealed: &str) -> bool {
        sealed.starts_with(&format!("v1.{}.", self.current))
    }

    /// A keyed hash (HMAC-SHA256 under the blind-index key) of arbitrary bytes.
    pub fn keyed_hash(&self, bytes: &[u8]) -> String {
        let Ok(mut mac) = <Hmac<Sha256> as Mac>::new_from_slice(&self.index_key) else {
            return String::new();
        };
        mac.update(bytes);
        mac.finalize().into_bytes().iter().map(|b| format!("{b:02x}")).collect()
    }

    /// The blind index of a pseudonym within one organisation (duplicate check before a
    /// new case): the same caseless form as names, keyed apart from them.
    pub fn pseudonym_index(&self, organisation: &str, pseudonym: &str) -> String {
        let normalised = crate::domain::text::name_key(pseudonym);
        self.keyed_hash(format!("pseudonym\0{organisation}\0{normalised}").as_bytes())
    }

    /// The blind index of a name: HMAC-SHA256 of its caseless form (`domain::text::name_key`,
    /// scheme `NAME_KEY_SCHEME`).
    pub fn blind_index(&self, name: &str) -> String {
        let normalised = crate::domain::text::name_key(name);
        let Ok(mut mac) = <Hmac<Sha256> as Mac>::new_from_slice(&self.index_key) else {
            return String::new();
        };
        mac.update(normalised.as_bytes());
        mac.finalize().into_bytes().iter().map(|b| format!("{b:02x}")).collect()
    }
}

/// `bytes` random bytes from the operating system (webhook signing secrets).
pub fn random_bytes(bytes: usize) -> Vec<u8> {
    use chacha20poly1305::aead::rand_core::RngCore;
    let mut buffer = vec![0u8; bytes];
    OsRng.fill_bytes(&mut buffer);
    buffer
}

/// A secret of `bytes` random bytes from the operating system, base64url without padding
/// (session ids, CSRF tokens).
pub fn random_token(bytes: usize) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(random_bytes(bytes))
}

/// SHA-256 of `text`, in hex: how a session's secret is stored.
pub fn sha256_hex(text: &str) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(text.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Compares two secrets in time independent of where they differ.
pub fn same_secret(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::db::Id;

    fn keyring() -> Keyring {
        Keyring::from_settings(&Settings::defaults().unwrap()).unwrap()
    }

    #[test]
    fn seal_and_open_round_trip_with_fresh_nonces() {
        let k = keyring();
        let id = Id(uuid::Uuid::now_v7());
        let a = k.seal("cases.pseudonym", id, "zonnebloem88");
        let b = k.seal("cases.pseudonym", id, "zonnebloem88");
        assert_ne!(a, b, "a fresh nonce per value");
        assert!(!a.contains("zonnebloem"));
        assert_eq!(k.open("cases.pseudonym", id, &a).unwrap(), "zonnebloem88");
    }

    #[test]
    fn a_ciphertext_does_not_open_for_another_record_or_field() {
        let k = keyring();
        let id = Id(uuid::Uuid::now_v7());
        let sealed = k.seal("cases.pseudonym", id, "x");
        assert!(k.open("cases.pseudonym", Id(uuid::Uuid::now_v7()), &sealed).is_err());
        assert!(k.open("referrals.note", id, &sealed).is_err());
        let mut tampered = sealed.clone();
        tampered.pop();
        tampered.push(if sealed.ends_with('A') { 'B' } else { 'A' });
        assert!(k.open("cases.pseudonym", id, &tampered).is_err());
    }

    #[test]
    fn rotation_keeps_old_values_readable() {
        let mut settings = Settings::defaults().unwrap();
        let old = B64.encode([1u8; 32]);
        let new = B64.encode([2u8; 32]);
        settings.crypto.keys = vec![crate::config::CryptoKey {
            id: "2025".into(),
            key: old.clone(),
        }];
        settings.crypto.current_key = "2025".into();
        settings.crypto.blind_index_key = B64.encode([3u8; 32]);
        let before = Keyring::from_settings(&settings).unwrap();
        let id = Id(uuid::Uuid::now_v7());
        let sealed = before.seal("f", id, "Maria");
        settings.crypto.keys.push(crate::config::CryptoKey {
            id: "2026".into(),
            key: new,
        });
        settings.crypto.current_key = "2026".into();
        let after = Keyring::from_settings(&settings).unwrap();
        assert!(!after.is_current(&sealed));
        assert_eq!(after.open("f", id, &sealed).unwrap(), "Maria");
        assert!(after.is_current(&after.seal("f", id, "Maria")));
        assert_eq!(before.blind_index(" Maria  Jansen "), after.blind_index("maria jansen"));
    }

    #[test]
    fn production_refuses_to_run_without_keys() {
        let mut settings = Settings::defaults().unwrap();
        settings.environment = Environment::Production;
        let problem = Keyring::from_settings(&settings).err().unwrap().to_string();
        assert!(
            problem.contains("crypto") && problem.contains("NRM__CRYPTO__KEYS"),
            "{problem}"
        );
    }
}
