//! Console sessions: signing in with the admin token gives a cookie that proves it, and every
//! change carries a CSRF token bound to that session.
//!
//! The cookie is `<expiry>.<nonce>.<mac>`: the expiry in Unix seconds, 16 random bytes, and an
//! HMAC-SHA256 of both keyed with a key derived from the admin token. Nothing is kept per
//! session, so every instance sharing the token accepts it and a restart keeps it; changing
//! the token ends every session. Signing out forgets the nonce in this process
//! ([`Sessions::revoke`], up to [`DEFAULT_REVOKED_SESSIONS`] until they expire) and clears the
//! cookie. The CSRF token is an HMAC of the nonce under the same key, so a page of one
//! session cannot be used with another's cookie, and a request without it changes nothing.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use ring::rand::{SecureRandom, SystemRandom};
use subtle::ConstantTimeEq;

use crate::signing::hmac_sha256_hex;

/// How long a sign-in lasts.
pub const DEFAULT_SESSION_TTL: Duration = Duration::from_secs(12 * 3600);

/// How many signed-out sessions a process remembers (until each would have expired); past
/// that, the one closest to expiry is forgotten first.
pub const DEFAULT_REVOKED_SESSIONS: usize = 10_000;

/// The cookie's name.
pub const COOKIE: &str = "switchyard_console";

/// A valid session: its nonce (hex) and when it expires (Unix seconds).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    pub nonce: String,
    pub expires: u64,
}

/// Issues and checks sessions for one admin token.
pub struct Sessions {
    key: Vec<u8>,
    revoked: Mutex<HashMap<String, u64>>,
}

impl Sessions {
    pub fn new(admin_token: &str) -> Sessions {
        // A key of its own, so a session cookie is never a signature made with the token.
        let key = hmac_sha256_hex(admin_token.as_bytes(), b"switchyard console session v1");
        Sessions {
            key: key.into_bytes(),
            revoked: Mutex::new(HashMap::new()),
        }
    }

    fn mac(&self, what: &str) -> String {
        hmac_sha256_hex(&self.key, what.as_bytes())
    }

    /// A new session valid from `now` (Unix seconds) for `ttl`: its cookie value.
    pub fn issue(&self, now: u64, ttl: Duration) -> String {
        let mut nonce = [0u8; 16];
        // The system's generator does not fail on Linux; a zero nonce would still be signed.
        let _ = SystemRandom::new().fill(&mut nonce);
        let nonce = hex::encode(nonce);
        let expires = now.saturating_add(ttl.as_secs());
        let mac = self.mac(&format!("session\n{expires}\n{nonce}"));
        format!("{expires}.{nonce}.{mac}")
    }

    /// The session of a cookie value, if it is signed by this key, not expired at `now` and
    /// not signed out.
    pub fn check(&self, cookie: &str, now: u64) -> Option<Session> {
        let mut parts = cookie.split('.');
        let (expires, nonce, mac) = (parts.next()?, parts.next()?, parts.next()?);
        if parts.next().is_some() || nonce.len() != 32 {
            return None;
        }
        let want = self.mac(&format!("session\n{expires}\n{nonce}"));
        if !bool::from(want.as_bytes().ct_eq(mac.as_bytes())) {
            return None;
        }
        let expires: u64 = expires.parse().ok()?;
        if expires <= now {
            return None;
        }
        let revoked = self.revoked.lock().unwrap_or_else(|e| e.into_inner());
        if revoked.contains_key(nonce) {
            return None;
        }
        Some(Session {
            nonce: nonce.to_string(),
            expires,
        })
    }

    /// The CSRF token of a session, for its forms.
    pub fn csrf(&self, session: &Session) -> String {
        self.mac(&format!("csrf\n{}", session.nonce))
    }

    /// Whether `given` is the session's CSRF token (constant time).
    pub fn csrf_matches(&self, session: &Session, given: &str) -> bool {
        bool::from(self.csrf(session).as_bytes().ct_eq(given.as_bytes()))
    }

    /// Signs a session out in this process.
    pub fn revoke(&self, session: &Session, now: u64) {
        let mut revoked = self.revoked.lock().unwrap_or_else(|e| e.into_inner());
        revoked.retain(|_, expires| *expires > now);
        if revoked.len() >= DEFAULT_REVOKED_SESSIONS {
            if let Some(soonest) = revoked
                .iter()
                .min_by_key(|(_, e)| **e)
                .map(|(n, _)| n.clone())
            {
                revoked.remove(&soonest);
            }
        }
        revoked.insert(session.nonce.clone(), session.expires);
    }
}

/// The value of cookie `name` in a `Cookie` header.
pub fn cookie_value<'a>(header: &'a str, name: &str) -> Option<&'a str> {
    header.split(';').find_map(|pair| {
        let (k, v) = pair.trim().split_once('=')?;
        (k == name).then_some(v)
    })
}

/// The `Set-Cookie` value of a session (HttpOnly, SameSite=Strict, path /ui; Secure over
/// HTTPS).
pub fn set_cookie(value: &str, ttl: Duration, secure: bool) -> String {
    format!(
        "{COOKIE}={value}; Path=/ui; Max-Age={}; HttpOnly; SameSite=Strict{}",
        ttl.as_secs(),
        if secure { "; Secure" } else { "" }
    )
}

/// The `Set-Cookie` value that removes the session cookie.
pub fn clear_cookie(secure: bool) -> String {
    set_cookie("", Duration::ZERO, secure)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_session_is_valid_until_it_expires_or_is_signed_out() {
        let s = Sessions::new("tok");
        let cookie = s.issue(1_000, Duration::from_secs(60));
        let session = s.check(&cookie, 1_030).expect("valid");
        assert!(s.check(&cookie, 1_060).is_none(), "expired");
        s.revoke(&session, 1_030);
        assert!(s.check(&cookie, 1_031).is_none(), "signed out");
        // Another session of the same key is not affected.
        let other = s.issue(1_000, Duration::from_secs(60));
        assert!(s.check(&other, 1_031).is_some());
    }

    #[test]
    fn forged_or_foreign_cookies_are_refused() {
        let s = Sessions::new("tok");
        let cookie = s.issue(1_000, Duration::from_secs(60));
        // Signed with another token.
        assert!(Sessions::new("other").check(&cookie, 1_001).is_none());
        // A later expiry with the old signature.
        let (_, rest) = cookie.split_once('.').unwrap();
        assert!(s.check(&format!("9999999999.{rest}"), 1_001).is_none());
        for bad in ["", "a.b.c", "1.2", "x.y.z.w", &format!("{cookie}.x")] {
            assert!(s.check(bad, 1_001).is_none(), "{bad}");
        }
    }

    #[test]
    fn the_csrf_token_belongs_to_its_session() {
        let s = Sessions::new("tok");
        let a = s.check(&s.issue(0, DEFAULT_SESSION_TTL), 1).unwrap();
        let b = s.check(&s.issue(0, DEFAULT_SESSION_TTL), 1).unwrap();
        let token = s.csrf(&a);
        assert!(s.csrf_matches(&a, &token));
        assert!(!s.csrf_matches(&b, &token));
        assert!(!s.csrf_matches(&a, ""));
    }

    #[test]
    fn revoked_sessions_are_bounded() {
        let s = Sessions::new("tok");
        for i in 0..DEFAULT_REVOKED_SESSIONS + 5 {
            let session = Session {
                nonce: format!("{i:032x}"),
                expires: 10_000 + i as u64,
            };
            s.revoke(&session, 0);
        }
        assert_eq!(
            s.revoked.lock().unwrap().len(),
            DEFAULT_REVOKED_SESSIONS,
            "the oldest are forgotten"
        );
    }

    #[test]
    fn cookies_are_read_by_name() {
        let h = "a=1; switchyard_console=x.y.z;b=2";
        assert_eq!(cookie_value(h, COOKIE), Some("x.y.z"));
        assert_eq!(cookie_value(h, "b"), Some("2"));
        assert_eq!(cookie_value(h, "c"), None);
        let set = set_cookie("v", Duration::from_secs(5), true);
        assert!(
            set.contains("HttpOnly") && set.contains("SameSite=Strict") && set.contains("Secure")
        );
        assert!(clear_cookie(false).contains("Max-Age=0"));
    }
}
