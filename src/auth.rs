//! Passwords, session tokens and the failed-login limiter.
//!
//! Passwords are stored as Argon2id PHC strings. A session token is 32 random bytes (URL-safe
//! base64) handed to the client once; the database keeps only its SHA-256.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use base64::Engine as _;
use jiff::{SignedDuration, Timestamp};
use sha2::{Digest, Sha256};

/// Hashes a password for storage.
pub fn hash_password(password: &str) -> anyhow::Result<String> {
    let mut bytes = [0u8; 16];
    rand::fill(&mut bytes);
    let salt =
        SaltString::encode_b64(&bytes).map_err(|e| anyhow::anyhow!("cannot make a salt: {e}"))?;
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| anyhow::anyhow!("cannot hash password: {e}"))
}

/// Checks a password against a stored hash; a malformed hash never matches.
pub fn verify_password(password: &str, phc: &str) -> bool {
    PasswordHash::new(phc)
        .map(|h| {
            Argon2::default()
                .verify_password(password.as_bytes(), &h)
                .is_ok()
        })
        .unwrap_or(false)
}

/// A hash that verifies no password, used to spend the same time on unknown user names as on
/// known ones (so response time does not tell which names exist).
pub fn decoy_hash() -> &'static str {
    static DECOY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DECOY.get_or_init(|| hash_password("decoy password that nobody has").unwrap_or_default())
}

/// A fresh session token for the client.
pub fn new_token() -> String {
    let mut bytes = [0u8; 32];
    rand::fill(&mut bytes);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// What the database stores for a token.
pub fn token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// A random password for accounts created without one.
pub fn random_password() -> String {
    let mut bytes = [0u8; 12];
    rand::fill(&mut bytes);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// Counts failed logins per key (a user name, a client address) in a sliding window. Sans-IO:
/// the caller passes the time.
pub struct LoginLimiter {
    attempts: usize,
    window: SignedDuration,
    failures: Mutex<HashMap<String, VecDeque<Timestamp>>>,
}

/// Above this many tracked keys, expired entries are swept before adding more.
const SWEEP_ABOVE: usize = 10_000;

impl LoginLimiter {
    /// `attempts` failures within `window` lock a key until the oldest one leaves the window.
    pub fn new(attempts: u32, window: SignedDuration) -> Self {
        LoginLimiter {
            attempts: attempts.max(1) as usize,
            window,
            failures: Mutex::new(HashMap::new()),
        }
    }

    /// `Some(seconds to wait)` when any of `keys` is locked at `now`.
    pub fn blocked(&self, keys: &[&str], now: Timestamp) -> Option<u64> {
        let map = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        keys.iter()
            .filter_map(|k| map.get(*k))
            .filter_map(|times| {
                let recent: Vec<&Timestamp> = times
                    .iter()
                    .filter(|t| now.duration_since(**t) < self.window)
                    .collect();
                (recent.len() >= self.attempts).then(|| {
                    let oldest = *recent[recent.len() - self.attempts];
                    let wait = (oldest + self.window).duration_since(now);
                    wait.as_secs().max(1) as u64
                })
            })
            .max()
    }

    /// Records a failed attempt against every key.
    pub fn failed(&self, keys: &[&str], now: Timestamp) {
        let mut map = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        if map.len() > SWEEP_ABOVE {
            map.retain(|_, times| {
                times
                    .back()
                    .is_some_and(|t| now.duration_since(*t) < self.window)
            });
        }
        for key in keys {
            let times = map.entry((*key).to_owned()).or_default();
            while times
                .front()
                .is_some_and(|t| now.duration_since(*t) >= self.window)
            {
                times.pop_front();
            }
            times.push_back(now);
            if times.len() > self.attempts {
                times.pop_front();
            }
        }
    }

    /// Forgets failures for a key after a successful login.
    pub fn succeeded(&self, key: &str) {
        let mut map = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        map.remove(key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_verify_only_themselves() {
        let h = hash_password("s3cret").unwrap();
        assert!(h.starts_with("$argon2id$"));
        assert!(verify_password("s3cret", &h));
        assert!(!verify_password("s3cret ", &h));
        assert!(!verify_password("s3cret", "not a hash"));
        assert!(!verify_password("anything", decoy_hash()));
    }

    #[test]
    fn tokens_are_random_and_hashed() {
        let (a, b) = (new_token(), new_token());
        assert_ne!(a, b);
        assert_eq!(a.len(), 43);
        assert_eq!(token_hash(&a).len(), 64);
        assert_ne!(token_hash(&a), a);
    }

    #[test]
    fn limiter_locks_after_the_allowed_failures_and_unlocks_with_time() {
        let limiter = LoginLimiter::new(3, SignedDuration::from_mins(15));
        let t0: Timestamp = "2026-11-23T08:00:00Z".parse().unwrap();
        let keys = ["user:alice", "ip:10.0.0.1"];
        for i in 0..3 {
            assert_eq!(limiter.blocked(&keys, t0), None, "attempt {i}");
            limiter.failed(&keys, t0 + SignedDuration::from_mins(i));
        }
        let t = t0 + SignedDuration::from_mins(3);
        assert_eq!(limiter.blocked(&keys, t), Some(12 * 60));
        // Another user from the same address is blocked too; the same user elsewhere as well.
        assert!(limiter.blocked(&["user:bob", "ip:10.0.0.1"], t).is_some());
        assert!(limiter.blocked(&["user:alice", "ip:10.0.0.2"], t).is_some());
        // 15 minutes after the first failure, one slot frees up.
        assert_eq!(
            limiter.blocked(&keys, t0 + SignedDuration::from_mins(15)),
            None
        );
        limiter.succeeded("user:alice");
        assert!(limiter.blocked(&["user:alice"], t).is_none());
    }
}
