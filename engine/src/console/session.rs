//! Console sessions: random ids in an HttpOnly, SameSite=Strict cookie (Secure over TLS), kept
//! in memory (a restart logs everyone out).
//!
//! A session is created unauthenticated by the login page (and by any page when the console is
//! open), so that even the login form carries a CSRF token; a successful login replaces it with
//! a new, authenticated id (no fixation). At most [`SESSIONS_MAX`] sessions exist: past it the
//! one expiring first is dropped.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The cookie's name.
pub const COOKIE: &str = "hydrant_console";
/// Sessions kept at most.
pub const SESSIONS_MAX: usize = 4096;
/// Lifetime of a logged-in session.
pub const LOGGED_IN_TTL: Duration = Duration::from_secs(12 * 3600);
/// Lifetime of a session that has not logged in.
pub const ANONYMOUS_TTL: Duration = Duration::from_secs(3600);

#[derive(Clone, Copy, Debug)]
struct Session {
    authenticated: bool,
    expires: Instant,
}

/// The sessions.
#[derive(Debug, Default)]
pub struct Sessions {
    map: Mutex<HashMap<String, Session>>,
}

/// A session found by its cookie.
#[derive(Clone, Debug)]
pub struct Found {
    /// The id.
    pub id: String,
    /// Whether it logged in.
    pub authenticated: bool,
}

fn new_id() -> String {
    let b: [u8; 32] = rand::random();
    b.iter().map(|x| format!("{x:02x}")).collect()
}

impl Sessions {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Session>> {
        self.map
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// A new session; its id.
    pub fn create(&self, authenticated: bool) -> String {
        let ttl = if authenticated {
            LOGGED_IN_TTL
        } else {
            ANONYMOUS_TTL
        };
        let now = Instant::now();
        let id = new_id();
        let mut map = self.lock();
        map.retain(|_, s| s.expires > now);
        if map.len() >= SESSIONS_MAX {
            if let Some(k) = map
                .iter()
                .min_by_key(|(_, s)| s.expires)
                .map(|(k, _)| k.clone())
            {
                map.remove(&k);
            }
        }
        map.insert(
            id.clone(),
            Session {
                authenticated,
                expires: now + ttl,
            },
        );
        debug_assert!(map.len() <= SESSIONS_MAX);
        id
    }

    /// The live session named by a `Cookie` header, if any.
    pub fn find(&self, cookie_header: Option<&str>) -> Option<Found> {
        let id = cookie_header?
            .split(';')
            .filter_map(|c| c.trim().split_once('='))
            .find(|(k, _)| *k == COOKIE)
            .map(|(_, v)| v.trim())?;
        let map = self.lock();
        let s = map.get(id)?;
        (s.expires > Instant::now()).then(|| Found {
            id: id.to_string(),
            authenticated: s.authenticated,
        })
    }

    /// Ends a session.
    pub fn remove(&self, id: &str) {
        self.lock().remove(id);
    }
}

/// The `Set-Cookie` value for session `id`.
#[must_use]
pub fn set_cookie(id: &str, secure: bool) -> String {
    format!(
        "{COOKIE}={id}; Path=/console; HttpOnly; SameSite=Strict{}",
        if secure { "; Secure" } else { "" }
    )
}

/// The `Set-Cookie` value that removes the cookie.
#[must_use]
pub fn clear_cookie(secure: bool) -> String {
    format!(
        "{COOKIE}=; Path=/console; HttpOnly; SameSite=Strict; Max-Age=0{}",
        if secure { "; Secure" } else { "" }
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_live_sessions_by_cookie_only() {
        let s = Sessions::default();
        let a = s.create(false);
        let b = s.create(true);
        let found = s.find(Some(&format!("x=1; {COOKIE}={b}"))).unwrap();
        assert!(found.authenticated);
        assert!(
            !s.find(Some(&format!("{COOKIE}={a}")))
                .unwrap()
                .authenticated
        );
        assert!(s.find(Some(&format!("{COOKIE}=nope"))).is_none());
        assert!(s.find(None).is_none());
        s.remove(&b);
        assert!(s.find(Some(&format!("{COOKIE}={b}"))).is_none());
    }
}
