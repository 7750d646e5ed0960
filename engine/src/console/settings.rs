//! `[console]`: whether the console is served, and the hash of its password.
//!
//! The password is never stored: `password_hash` holds
//! `pbkdf2-sha256$<iterations>$<salt, base64>$<derived key, base64>` (PBKDF2-HMAC-SHA256, 32-byte
//! key), as `hydrantd --hash-console-password` prints it for a password read from standard
//! input. Any tool that computes PBKDF2 makes the same string (Python:
//! `hashlib.pbkdf2_hmac("sha256", password, salt, iterations)`).

use std::num::NonZeroU32;

use base64::Engine as _;
use serde::{Deserialize, Serialize};

/// Iterations of new hashes.
pub const ITERATIONS: u32 = 200_000;
/// Fewest iterations a configured hash may have (weaker ones are refused at start).
pub const ITERATIONS_MIN: u32 = 10_000;
const PREFIX: &str = "pbkdf2-sha256";
const KEY_BYTES: usize = 32;

/// `[console]`.
#[derive(Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ConsoleConfig {
    /// Serve the console at `/console/` (default true).
    pub enabled: bool,
    /// The console password's hash (see the module documentation). Without it (and without
    /// `[auth]` keys) the console answers loopback peers only, without a login.
    pub password_hash: Option<String>,
}

impl Default for ConsoleConfig {
    fn default() -> Self {
        ConsoleConfig {
            enabled: true,
            password_hash: None,
        }
    }
}

impl std::fmt::Debug for ConsoleConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConsoleConfig")
            .field("enabled", &self.enabled)
            .field(
                "password_hash",
                &self.password_hash.as_ref().map(|_| "<set>"),
            )
            .finish()
    }
}

/// A password hash that cannot be used.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("console.password_hash: {0} (expected pbkdf2-sha256$<iterations>$<salt base64>$<key base64>, as `hydrantd --hash-console-password` prints)")]
pub struct HashError(&'static str);

/// A parsed `password_hash`.
#[derive(Clone)]
pub struct PasswordHash {
    iterations: NonZeroU32,
    salt: Vec<u8>,
    key: Vec<u8>,
}

impl std::fmt::Debug for PasswordHash {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PasswordHash")
            .field("iterations", &self.iterations)
            .finish_non_exhaustive()
    }
}

impl PasswordHash {
    /// Parses the configured string.
    ///
    /// # Errors
    /// [`HashError`] naming what is wrong.
    pub fn parse(s: &str) -> Result<PasswordHash, HashError> {
        let b64 = base64::engine::general_purpose::STANDARD;
        let mut parts = s.trim().split('$');
        if parts.next() != Some(PREFIX) {
            return Err(HashError("not a pbkdf2-sha256 hash"));
        }
        let iterations: u32 = parts
            .next()
            .and_then(|i| i.parse().ok())
            .ok_or(HashError("the iterations are not a number"))?;
        if iterations < ITERATIONS_MIN {
            return Err(HashError("fewer than 10000 iterations"));
        }
        let salt = parts
            .next()
            .and_then(|x| b64.decode(x).ok())
            .ok_or(HashError("the salt is not base64"))?;
        let key = parts
            .next()
            .and_then(|x| b64.decode(x).ok())
            .ok_or(HashError("the key is not base64"))?;
        if parts.next().is_some() || salt.len() < 8 || key.len() != KEY_BYTES {
            return Err(HashError(
                "wrong number of fields, a salt under 8 bytes or a key not of 32",
            ));
        }
        Ok(PasswordHash {
            iterations: NonZeroU32::new(iterations).ok_or(HashError("zero iterations"))?,
            salt,
            key,
        })
    }

    /// Whether `password` is the one hashed (constant time in the key comparison).
    #[must_use]
    pub fn verify(&self, password: &str) -> bool {
        ring::pbkdf2::verify(
            ring::pbkdf2::PBKDF2_HMAC_SHA256,
            self.iterations,
            &self.salt,
            password.as_bytes(),
            &self.key,
        )
        .is_ok()
    }
}

/// Hashes `password` with a fresh random salt: the string for `password_hash`.
#[must_use]
pub fn hash_password(password: &str) -> String {
    let b64 = base64::engine::general_purpose::STANDARD;
    let salt: [u8; 16] = rand::random();
    let mut key = [0u8; KEY_BYTES];
    let iterations = NonZeroU32::new(ITERATIONS).unwrap_or(NonZeroU32::MIN);
    ring::pbkdf2::derive(
        ring::pbkdf2::PBKDF2_HMAC_SHA256,
        iterations,
        &salt,
        password.as_bytes(),
        &mut key,
    );
    format!(
        "{PREFIX}${ITERATIONS}${}${}",
        b64.encode(salt),
        b64.encode(key)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hash_verifies_its_password_only() {
        let h = hash_password("correct horse");
        let p = PasswordHash::parse(&h).unwrap();
        assert!(p.verify("correct horse"));
        assert!(!p.verify("correct horsE"));
        assert!(!p.verify(""));
    }

    #[test]
    fn malformed_and_weak_hashes_are_refused() {
        assert!(PasswordHash::parse("plaintext").is_err());
        assert!(PasswordHash::parse("pbkdf2-sha256$1000$c2FsdHNhbHQ=$AAAA").is_err());
        let h = hash_password("x");
        assert!(PasswordHash::parse(&format!("{h}$extra")).is_err());
    }
}
