//! The city app's citizens, binary side: the `[app]` configuration, the pluggable sender of login
//! codes ([`CodeSender`]; [`LogSender`] for development), code and token hashing, and the points
//! worker that follows the ticket event stream. The decisions are `ticketing::citizens`'s; the
//! rows are `ticketing::store`'s; the HTTP routes are `http::app`'s.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::bail;
use serde::Deserialize;
use ticketing::Tickets;
use ticketing::citizens::{CodePolicy, RewardRule};
use ticketing::model::PhoneNumber;

use crate::auth;

/// `[app]`: the citizen app API (`/api/v1/app/`). Off when the section is absent and no
/// `HOTLINE_APP_*` variable is set.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AppConfig {
    /// How login codes reach citizens: `log` (development: the code is written to the log and,
    /// with `code_file`, appended to that file). `HOTLINE_APP_SENDER` overrides it.
    pub sender: String,
    /// The development sender also appends `<phone> <code>` lines here (tests read them).
    /// `HOTLINE_APP_CODE_FILE` overrides it.
    pub code_file: Option<PathBuf>,
    /// How long a code is valid, in seconds.
    pub code_ttl_seconds: u32,
    /// Wrong tries allowed on one code.
    pub code_attempts: u32,
    /// Codes sent to one phone within an hour.
    pub codes_per_hour: u32,
    /// Least seconds between two codes to one phone.
    pub code_interval_seconds: u32,
    /// Codes one client address may ask for at once (phones behind one address: a few).
    pub codes_per_address_burst: u32,
    /// Codes per hour one client address may ask for after its burst: one address trying many
    /// phone numbers (an SMS bill, or a guessing run) is stopped here.
    pub codes_per_address_per_hour: u32,
    /// How long a citizen's login (bearer token) lasts, in days.
    pub token_days: u32,
    /// How often the points worker reads new ticket events, in milliseconds.
    pub points_every_ms: u64,
    /// The reward rule (`[app.points]`).
    pub points: RewardRule,
}

impl Default for AppConfig {
    fn default() -> Self {
        let p = CodePolicy::default();
        AppConfig {
            sender: "log".into(),
            code_file: None,
            code_ttl_seconds: p.ttl.as_secs() as u32,
            code_attempts: p.attempts,
            codes_per_hour: p.per_hour,
            code_interval_seconds: p.interval.as_secs() as u32,
            codes_per_address_burst: 10,
            codes_per_address_per_hour: 30,
            token_days: 30,
            points_every_ms: 5000,
            points: RewardRule::default(),
        }
    }
}

/// The environment variables that set `[app]` (creating it when any is set).
pub const APP_OVERRIDES: [(&str, &str); 2] = [
    ("HOTLINE_APP_SENDER", "app.sender"),
    ("HOTLINE_APP_CODE_FILE", "app.code_file"),
];

impl AppConfig {
    /// Applies the `HOTLINE_APP_*` variables to `app` (creating it when any is set) and checks it.
    pub fn settle(
        app: &mut Option<AppConfig>,
        env: &impl Fn(&str) -> Option<String>,
    ) -> anyhow::Result<()> {
        for (var, key) in APP_OVERRIDES {
            let Some(value) = env(var).filter(|v| !v.is_empty()) else {
                continue;
            };
            let a = app.get_or_insert_with(AppConfig::default);
            match key {
                "app.sender" => a.sender = value,
                "app.code_file" => a.code_file = Some(PathBuf::from(value)),
                _ => unreachable!("every app override key is handled"),
            }
        }
        let Some(a) = app else {
            return Ok(());
        };
        let from = |key: &str| {
            APP_OVERRIDES
                .iter()
                .find(|(_, k)| *k == key)
                .filter(|(var, _)| env(var).is_some_and(|v| !v.is_empty()))
                .map(|(var, _)| format!(" (from {var})"))
                .unwrap_or_default()
        };
        if a.sender != "log" {
            bail!(
                "app.sender{}: `{}` is not a code sender; the one available is `log` (development: codes go to the log)",
                from("app.sender"),
                a.sender
            );
        }
        if a.code_ttl_seconds == 0 || a.code_ttl_seconds > 3600 {
            bail!("app.code_ttl_seconds: between 1 and 3600");
        }
        if a.code_attempts == 0 || a.codes_per_hour == 0 {
            bail!("app.code_attempts and app.codes_per_hour: at least 1");
        }
        if a.token_days == 0 || a.token_days > 365 {
            bail!("app.token_days: between 1 and 365");
        }
        if a.points_every_ms < 100 {
            bail!("app.points_every_ms: at least 100");
        }
        Ok(())
    }

    /// The code policy this section sets.
    pub fn code_policy(&self) -> CodePolicy {
        CodePolicy {
            ttl: jiff::SignedDuration::from_secs(i64::from(self.code_ttl_seconds)),
            attempts: self.code_attempts,
            per_hour: self.codes_per_hour,
            interval: jiff::SignedDuration::from_secs(i64::from(self.code_interval_seconds)),
        }
    }

    /// The sender this section names.
    pub fn sender(&self) -> Arc<dyn CodeSender> {
        tracing::warn!(
            "app.sender = \"log\": citizens' login codes are written to the log (development only)"
        );
        Arc::new(LogSender {
            file: self.code_file.clone(),
        })
    }
}

/// Delivers a login code to a citizen's phone (an SMS gateway in production).
#[async_trait::async_trait]
pub trait CodeSender: Send + Sync {
    /// Sends `code` to `phone`; an error means the citizen did not get it.
    async fn send(&self, phone: &PhoneNumber, code: &str) -> anyhow::Result<()>;
}

/// The development sender: logs the code (clearly marked) and, if configured, appends
/// `<phone> <code>` to a file.
pub struct LogSender {
    /// Where to append the codes as well.
    pub file: Option<PathBuf>,
}

#[async_trait::async_trait]
impl CodeSender for LogSender {
    async fn send(&self, phone: &PhoneNumber, code: &str) -> anyhow::Result<()> {
        tracing::info!(
            phone = phone.full(),
            code,
            "DEVELOPMENT code sender (app.sender = \"log\"): login code NOT sent by SMS"
        );
        if let Some(path) = &self.file {
            use tokio::io::AsyncWriteExt as _;
            let mut f = tokio::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .await?;
            f.write_all(format!("{} {code}\n", phone.full()).as_bytes())
                .await?;
            f.flush().await?;
        }
        Ok(())
    }
}

/// A fresh 6-digit code.
pub fn new_code() -> String {
    let n: u32 = rand::random_range(0..1_000_000);
    format!("{n:06}")
}

/// What the database keeps for a code: a salted Argon2 hash bound to the phone. A code has only
/// a million values, so a fast hash would give it away to anyone who can read the database within
/// its five minutes; Argon2 makes each guess cost what a login does.
pub fn code_hash(phone: &PhoneNumber, code: &str) -> anyhow::Result<String> {
    auth::hash_password(&code_secret(phone, code))
}

/// Whether `code`, typed for `phone`, is the code `stored` was made from.
pub fn code_matches(phone: &PhoneNumber, code: &str, stored: &str) -> bool {
    auth::verify_password(&code_secret(phone, code), stored)
}

fn code_secret(phone: &PhoneNumber, code: &str) -> String {
    format!("app-code:{}:{code}", phone.full())
}

/// What the database keeps for a citizen's bearer token (distinct from staff tokens: they live in
/// another table and carry a prefix, so neither is accepted for the other).
pub fn citizen_token_hash(token: &str) -> String {
    auth::token_hash(token)
}

/// A fresh citizen token: `app_` + 32 random bytes.
pub fn new_citizen_token() -> String {
    format!("app_{}", auth::new_token())
}

/// The event-stream cursor of the points worker.
const CURSOR: &str = "app_points";

/// Gives points for verified reports: reads the ticket events after its cursor every `every`.
pub async fn award_points(tickets: Tickets, rule: RewardRule, every: Duration) {
    let store = tickets.store().clone();
    loop {
        let round = async {
            let cursor = store.event_cursor(CURSOR).await?;
            let (awarded, last) = store
                .award_points_after(cursor, 200, &rule, tickets.sla().calendar())
                .await?;
            if last != cursor {
                store.set_event_cursor(CURSOR, last).await?;
            }
            Ok::<_, ticketing::store::StoreError>((awarded, last != cursor))
        };
        match round.await {
            // More events may be waiting: go on at once.
            Ok((_, true)) => continue,
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "app points: round failed; retried next round"),
        }
        tokio::time::sleep(every).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_six_digits_and_hashes_bind_the_phone() {
        for _ in 0..100 {
            let c = new_code();
            assert!(ticketing::citizens::is_code_shaped(&c), "{c}");
        }
        let a = PhoneNumber::parse("13800000001").unwrap();
        let b = PhoneNumber::parse("13800000002").unwrap();
        let stored = code_hash(&a, "123456").unwrap();
        assert!(stored.starts_with("$argon2"), "{stored}");
        assert_ne!(stored, code_hash(&a, "123456").unwrap(), "salted");
        assert!(code_matches(&a, "123456", &stored));
        assert!(!code_matches(&b, "123456", &stored), "bound to the phone");
        assert!(!code_matches(&a, "123457", &stored));
        assert!(!code_matches(&a, "123456", "not a hash"));
        assert!(new_citizen_token().starts_with("app_"));
    }

    #[test]
    fn the_commented_example_in_hotline_toml_is_valid() {
        let text = include_str!("../config/hotline.toml");
        let start = text.find("# [app]\n").expect("an [app] example");
        let block: String = text[start..]
            .lines()
            .take_while(|l| l.starts_with('#'))
            .map(|l| l.trim_start_matches('#').trim_start())
            // Sections and `key = value` lines; the prose around them is not TOML.
            .filter(|l| {
                l.starts_with('[')
                    || l.split_once(" = ").is_some_and(|(k, _)| {
                        !k.is_empty() && k.bytes().all(|b| b.is_ascii_lowercase() || b == b'_')
                    })
            })
            .collect::<Vec<_>>()
            .join("\n");
        #[derive(Deserialize)]
        struct File {
            app: AppConfig,
        }
        let file: File = toml::from_str(&block).unwrap_or_else(|e| panic!("{e}\n{block}"));
        let mut app = Some(file.app);
        AppConfig::settle(&mut app, &|_: &str| None).unwrap();
        let app = app.unwrap();
        assert_eq!(app.code_policy(), CodePolicy::default());
        assert_eq!(app.points, RewardRule::default());
    }

    #[test]
    fn app_is_off_by_default_and_checked() {
        let none = |_: &str| None;
        let mut app = None;
        AppConfig::settle(&mut app, &none).unwrap();
        assert!(app.is_none());
        let env = |v: &str| (v == "HOTLINE_APP_CODE_FILE").then(|| "/tmp/codes".to_owned());
        AppConfig::settle(&mut app, &env).unwrap();
        let a = app.clone().unwrap();
        assert_eq!(a.code_file, Some(PathBuf::from("/tmp/codes")));
        assert_eq!(a.code_policy(), CodePolicy::default());
        let env = |v: &str| (v == "HOTLINE_APP_SENDER").then(|| "sms".to_owned());
        let err = AppConfig::settle(&mut app, &env).unwrap_err().to_string();
        assert!(
            err.contains("app.sender (from HOTLINE_APP_SENDER)"),
            "{err}"
        );
    }
}
