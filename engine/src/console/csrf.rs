//! CSRF tokens: HMAC-SHA256 of the session id under a key drawn at start, in a hidden field of
//! every form. A state-changing request is served only with the session's cookie (sent by the
//! browser on same-site requests only: SameSite=Strict) and the token derived from it (which
//! another site cannot read).

use ring::hmac;

/// The key.
#[derive(Debug)]
pub struct Csrf {
    key: hmac::Key,
}

impl Default for Csrf {
    fn default() -> Self {
        let secret: [u8; 32] = rand::random();
        Csrf {
            key: hmac::Key::new(hmac::HMAC_SHA256, &secret),
        }
    }
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn unhex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

impl Csrf {
    /// The token of session `session`.
    #[must_use]
    pub fn token(&self, session: &str) -> String {
        hex(hmac::sign(&self.key, session.as_bytes()).as_ref())
    }

    /// Whether `token` is session `session`'s (constant time).
    #[must_use]
    pub fn check(&self, session: &str, token: &str) -> bool {
        unhex(token).is_some_and(|t| hmac::verify(&self.key, session.as_bytes(), &t).is_ok())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_belongs_to_one_session_and_one_key() {
        let c = Csrf::default();
        let t = c.token("a");
        assert!(c.check("a", &t));
        assert!(!c.check("b", &t));
        assert!(!c.check("a", ""));
        assert!(!c.check("a", "zz"));
        assert!(!Csrf::default().check("a", &t));
    }
}
