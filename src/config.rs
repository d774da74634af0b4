//! Configuration: `config/hotline.toml` (or `--config`), with environment overrides, checked at
//! start so a mistake stops the service with a message that names the key.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use serde::Deserialize;
use ticketing::Hotline;
use ticketing::calendar::{CalendarConfig, WorkCalendar};
use ticketing::category::Catalogue;
use ticketing::department::Directory;
use ticketing::sla::{Sla, SlaConfig};

/// The whole configuration file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Where the SQLite database, recordings and models live (relative to the working directory).
    #[serde(default = "default_data_dir")]
    pub data_dir: PathBuf,
    /// `sqlite://...` or `postgres://...`; empty means `sqlite://<data_dir>/hotline.db`.
    #[serde(default)]
    pub database_url: String,
    /// The category catalogue, relative to this file.
    #[serde(default = "default_categories")]
    pub categories: PathBuf,
    /// The department list, relative to this file.
    #[serde(default = "default_departments")]
    pub departments: PathBuf,
    /// The IVR's prompt texts (`hotline prompts generate`), relative to this file.
    #[serde(default = "default_prompts")]
    pub prompts: PathBuf,
    /// Call queues (ACD), relative to this file.
    #[serde(default = "default_queues")]
    pub queues: PathBuf,
    /// The folder of IVR flows, one `<number>.toml` per hotline, relative to this file.
    #[serde(default = "default_ivr")]
    pub ivr: PathBuf,
    /// HTTP server settings.
    #[serde(default)]
    pub http: HttpConfig,
    /// SIP gateway settings (`[sip]`, `[[sip.trunk]]`).
    #[serde(default)]
    pub sip: sip_gateway::GatewayConfig,
    /// The hotlines this centre runs.
    #[serde(default, rename = "hotline")]
    pub hotlines: Vec<Hotline>,
    /// Working calendar.
    #[serde(default)]
    pub calendar: CalendarConfig,
    /// Time limits.
    #[serde(default)]
    pub sla: SlaConfig,
    /// Duplicate merging (`[merge]`): on by default.
    #[serde(default)]
    pub merge: ticketing::merge::MergePolicy,
    /// The WeChat official account (`[wechat]`); off when absent and not set by environment.
    #[serde(default)]
    pub wechat: Option<channels::wechat::account::WechatConfig>,
    /// The public web form (`[web_form]`, `/report`): on by default.
    #[serde(default)]
    pub web_form: crate::http::web_form::WebFormConfig,
    /// The citizen app API (`[app]`, `/api/v1/app/`); off when absent and not set by environment.
    #[serde(default)]
    pub app: Option<crate::citizens::AppConfig>,
    /// Transcription of recordings (`[transcription]`): on by default, once a model is imported.
    #[serde(default)]
    pub transcription: crate::transcription::TranscriptionConfig,
}

/// `[http]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HttpConfig {
    /// Address the API and console listen on.
    pub listen: String,
    /// How long a login lasts.
    pub session_hours: u32,
    /// Failed logins allowed per user and address within `login_window_minutes`.
    pub login_attempts: u32,
    /// The window for `login_attempts`.
    pub login_window_minutes: u32,
    /// Send the session cookie with `Secure` (set when served over HTTPS).
    pub secure_cookies: bool,
    /// Behind a reverse proxy: the header it puts the client's address in (`X-Forwarded-For`,
    /// `X-Real-IP`), believed only from `trusted_proxies`; unset, the connection's address counts.
    pub client_ip_header: Option<String>,
    /// Peers whose `client_ip_header` is believed (default: this machine only).
    pub trusted_proxies: Vec<std::net::IpAddr>,
}

impl HttpConfig {
    /// Whose word counts for a client's address (per-address limits).
    pub fn proxy_trust(&self) -> crate::http::rate_limit::ProxyTrust {
        crate::http::rate_limit::ProxyTrust {
            header: self.client_ip_header.clone(),
            trusted: self.trusted_proxies.clone(),
        }
    }
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig {
            listen: "127.0.0.1:8080".into(),
            session_hours: 12,
            login_attempts: 5,
            login_window_minutes: 15,
            secure_cookies: false,
            client_ip_header: None,
            trusted_proxies: vec![
                std::net::IpAddr::from([127, 0, 0, 1]),
                std::net::IpAddr::from(std::net::Ipv6Addr::LOCALHOST),
            ],
        }
    }
}

fn default_data_dir() -> PathBuf {
    PathBuf::from("data")
}
fn default_categories() -> PathBuf {
    PathBuf::from("categories.toml")
}
fn default_departments() -> PathBuf {
    PathBuf::from("departments.toml")
}
fn default_prompts() -> PathBuf {
    PathBuf::from("prompts.toml")
}
fn default_queues() -> PathBuf {
    PathBuf::from("queues.toml")
}
fn default_ivr() -> PathBuf {
    PathBuf::from("ivr")
}

/// The environment variables that override the file, with the key each replaces.
const OVERRIDES: [(&str, &str); 4] = [
    ("HOTLINE_HTTP_LISTEN", "http.listen"),
    ("HOTLINE_SIP_LISTEN", "sip.listen"),
    ("HOTLINE_DATA_DIR", "data_dir"),
    ("HOTLINE_DATABASE_URL", "database_url"),
];

/// The environment variables that set the WeChat account (secrets stay out of the file).
const WECHAT_OVERRIDES: [(&str, &str); 4] = [
    ("HOTLINE_WECHAT_TOKEN", "wechat.token"),
    ("HOTLINE_WECHAT_APPID", "wechat.app_id"),
    ("HOTLINE_WECHAT_AES_KEY", "wechat.encoding_aes_key"),
    ("HOTLINE_WECHAT_SECRET", "wechat.app_secret"),
];

/// Applies the WeChat environment variables (creating `[wechat]` when any is set) and checks the
/// section: a Token WeChat accepts, an AppID, and an EncodingAESKey that decodes.
fn wechat_settings(
    config: &mut Config,
    env: &impl Fn(&str) -> Option<String>,
) -> anyhow::Result<()> {
    for (var, key) in WECHAT_OVERRIDES {
        let Some(value) = env(var).filter(|v| !v.is_empty()) else {
            continue;
        };
        let w = config.wechat.get_or_insert_with(|| {
            toml::from_str("token = \"\"\napp_id = \"\"").expect("the two required keys")
        });
        match key {
            "wechat.token" => w.token = value,
            "wechat.app_id" => w.app_id = value,
            "wechat.encoding_aes_key" => w.encoding_aes_key = Some(value),
            "wechat.app_secret" => w.app_secret = Some(value),
            _ => unreachable!("every WeChat override key is handled"),
        }
    }
    let Some(w) = &config.wechat else {
        return Ok(());
    };
    let from = |key: &str| {
        WECHAT_OVERRIDES
            .iter()
            .find(|(_, k)| *k == key)
            .filter(|(var, _)| env(var).is_some_and(|v| !v.is_empty()))
            .map(|(var, _)| format!(" (from {var})"))
            .unwrap_or_default()
    };
    let token_ok =
        (3..=32).contains(&w.token.len()) && w.token.bytes().all(|b| b.is_ascii_alphanumeric());
    if !token_ok {
        bail!(
            "wechat.token{}: 3-32 letters or digits, as entered on the WeChat platform (or set HOTLINE_WECHAT_TOKEN)",
            from("wechat.token")
        );
    }
    if w.app_id.trim().is_empty() {
        bail!("wechat.app_id: the account's AppID (or set HOTLINE_WECHAT_APPID)");
    }
    if let Some(key) = w
        .encoding_aes_key
        .as_deref()
        .filter(|k| !k.trim().is_empty())
    {
        channels::wechat::crypto::MessageCipher::new(key, &w.app_id).map_err(|e| {
            anyhow::anyhow!(
                "wechat.encoding_aes_key{}: {e}",
                from("wechat.encoding_aes_key")
            )
        })?;
    }
    if w.thread_minutes == 0 || w.thread_minutes > 24 * 60 {
        bail!("wechat.thread_minutes: between 1 and 1440");
    }
    Ok(())
}

/// Everything loaded and checked: the config plus the policy files it points at.
pub struct Loaded {
    /// The configuration after environment overrides.
    pub config: Config,
    /// Parsed `http.listen`.
    pub http_listen: SocketAddr,
    /// Parsed `sip.listen`.
    pub sip_listen: SocketAddr,
    /// The checked `[sip]` section.
    pub sip: sip_gateway::Settings,
    /// Categories.
    pub catalogue: Catalogue,
    /// Departments.
    pub directory: Directory,
    /// SLA policy on the calendar.
    pub sla: Sla,
    /// Where the prompt catalogue is (resolved against the config file's folder).
    pub prompts_path: PathBuf,
    /// The call queues.
    pub queues: ivr::acd::AcdConfig,
    /// Each hotline's IVR flow, by hotline number.
    pub flows: std::collections::BTreeMap<String, ivr::flow::Flow>,
    /// The business hours of hotlines that have `[hotline.hours]`, by number.
    pub hours: std::collections::BTreeMap<String, WorkCalendar>,
}

impl Loaded {
    /// The database URL: the configured one, or the SQLite file in the data directory.
    pub fn database_url(&self) -> String {
        if self.config.database_url.is_empty() {
            format!(
                "sqlite://{}",
                self.config.data_dir.join("hotline.db").display()
            )
        } else {
            self.config.database_url.clone()
        }
    }
}

/// Reads and checks the configuration at `path`, applying `env` (the process environment in
/// production, a fixed list in tests).
pub fn load(path: &Path, env: impl Fn(&str) -> Option<String>) -> anyhow::Result<Loaded> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read config file {}", path.display()))?;
    let mut config: Config = toml::from_str(&text)
        .map_err(|e| anyhow::anyhow!("{}: {}", path.display(), e.to_string().trim_end()))?;
    for (var, key) in OVERRIDES {
        let Some(value) = env(var).filter(|v| !v.is_empty()) else {
            continue;
        };
        match key {
            "http.listen" => config.http.listen = value,
            "sip.listen" => config.sip.listen = value,
            "data_dir" => config.data_dir = PathBuf::from(value),
            "database_url" => config.database_url = value,
            _ => unreachable!("every override key is handled"),
        }
    }
    wechat_settings(&mut config, &env)?;
    crate::citizens::AppConfig::settle(&mut config.app, &env)?;
    if let Some(h) = &config.http.client_ip_header
        && axum::http::HeaderName::from_bytes(h.as_bytes()).is_err()
    {
        anyhow::bail!(
            "{}: http.client_ip_header: `{h}` is not a header name",
            path.display()
        );
    }
    config
        .merge
        .validate()
        .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    config
        .transcription
        .validate()
        .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    let source = |key: &str| {
        OVERRIDES
            .iter()
            .find(|(_, k)| *k == key)
            .and_then(|(var, _)| {
                env(var)
                    .filter(|v| !v.is_empty())
                    .map(|_| format!(" (from {var})"))
            })
            .unwrap_or_default()
    };
    let http_listen: SocketAddr = config.http.listen.parse().map_err(|_| {
        anyhow::anyhow!(
            "http.listen{}: `{}` is not an address like 127.0.0.1:8080",
            source("http.listen"),
            config.http.listen
        )
    })?;
    let sip_listen: SocketAddr = config.sip.listen.parse().map_err(|_| {
        anyhow::anyhow!(
            "sip.listen{}: `{}` is not an address like 0.0.0.0:5060",
            source("sip.listen"),
            config.sip.listen
        )
    })?;
    let sip = config
        .sip
        .settings()
        .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    let url = &config.database_url;
    if !url.is_empty()
        && !["sqlite:", "postgres:", "postgresql:"]
            .iter()
            .any(|p| url.starts_with(p))
    {
        bail!(
            "database_url{}: `{url}` is neither sqlite://PATH nor postgres://...",
            source("database_url")
        );
    }
    if config.http.session_hours == 0 {
        bail!("http.session_hours: must be at least 1");
    }
    if config.http.login_attempts == 0 || config.http.login_window_minutes == 0 {
        bail!("http.login_attempts and http.login_window_minutes: must be at least 1");
    }
    if config.hotlines.is_empty() {
        bail!("hotline: configure at least one [[hotline]] with a number and a name");
    }
    config
        .web_form
        .validate(&config.hotlines)
        .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    for (i, h) in config.hotlines.iter().enumerate() {
        if h.number.is_empty()
            || !h.number.bytes().all(|b| b.is_ascii_alphanumeric())
            || h.number.len() > 16
        {
            bail!(
                "hotline[{i}].number: `{}` must be 1-16 letters or digits",
                h.number
            );
        }
    }
    let base = path.parent().unwrap_or(Path::new("."));
    let categories_path = base.join(&config.categories);
    let catalogue = Catalogue::from_toml(&read(&categories_path, "categories")?)
        .map_err(|e| anyhow::anyhow!("{}: {e}", categories_path.display()))?;
    let departments_path = base.join(&config.departments);
    let directory = Directory::from_toml(&read(&departments_path, "departments")?)
        .map_err(|e| anyhow::anyhow!("{}: {e}", departments_path.display()))?;
    for c in catalogue.iter() {
        if let Some(d) = &c.department
            && directory.get(d).is_none()
        {
            bail!(
                "{}: category {} names department `{d}`, which is not in {}",
                categories_path.display(),
                c.id,
                departments_path.display()
            );
        }
    }
    let calendar = WorkCalendar::from_config(&config.calendar)
        .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    let sla = Sla::new(calendar, config.sla.clone(), &catalogue);
    let mut hours = std::collections::BTreeMap::new();
    for h in &config.hotlines {
        if let Some(open) = &h.hours {
            let cal = open.calendar(&config.calendar).map_err(|e| {
                anyhow::anyhow!(
                    "{}: hotline {} hours: {}",
                    path.display(),
                    h.number,
                    e.to_string().replace("calendar.work_hours", "periods")
                )
            })?;
            hours.insert(h.number.clone(), cal);
        }
    }
    let prompts_path = base.join(&config.prompts);
    let (queues, flows) = load_ivr(&config, base, &prompts_path)?;
    Ok(Loaded {
        hours,
        queues,
        flows,
        prompts_path,
        config,
        http_listen,
        sip_listen,
        sip,
        catalogue,
        directory,
        sla,
    })
}

/// The queues and every hotline's flow, checked against each other and the prompt catalogue:
/// a flow may only queue to configured queues and play prompts the catalogue speaks.
fn load_ivr(
    config: &Config,
    base: &Path,
    prompts_path: &Path,
) -> anyhow::Result<(
    ivr::acd::AcdConfig,
    std::collections::BTreeMap<String, ivr::flow::Flow>,
)> {
    let queues_path = base.join(&config.queues);
    let queues = ivr::acd::AcdConfig::from_toml(&read(&queues_path, "queues")?)
        .and_then(|q| q.validate().map(|()| q))
        .map_err(|e| anyhow::anyhow!("{}: {e}", queues_path.display()))?;
    let catalogue = crate::prompts::Catalogue::from_toml(&read(prompts_path, "prompts")?)
        .map_err(|e| anyhow::anyhow!("{}: {e}", prompts_path.display()))?;
    let mut flows = std::collections::BTreeMap::new();
    for h in &config.hotlines {
        let path = base.join(&config.ivr).join(format!("{}.toml", h.number));
        let name = path.display().to_string();
        let flow = ivr::flow::Flow::from_toml(&name, &read(&path, "ivr")?)?;
        for q in flow.queues() {
            if !queues.queues.iter().any(|c| c.name == q) {
                bail!("{name}: queue `{q}` is not in {}", queues_path.display());
            }
        }
        for p in flow.prompt_names() {
            if !catalogue.prompts.contains_key(&p) {
                bail!("{name}: prompt `{p}` is not in {}", prompts_path.display());
            }
        }
        flows.insert(h.number.clone(), flow);
    }
    for q in &queues.queues {
        if !catalogue.prompts.contains_key(&q.music_on_hold) {
            bail!(
                "{}: queue `{}` plays `{}`, which is not in {}",
                queues_path.display(),
                q.name,
                q.music_on_hold,
                prompts_path.display()
            );
        }
    }
    Ok((queues, flows))
}

fn read(path: &Path, key: &str) -> anyhow::Result<String> {
    std::fs::read_to_string(path).with_context(|| format!("{key}: cannot read {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn example() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("config/hotline.toml")
    }

    #[test]
    fn the_example_config_loads() {
        let loaded = load(&example(), |_| None).unwrap();
        assert!(loaded.catalogue.len() >= 80, "{}", loaded.catalogue.len());
        assert!(loaded.directory.len() >= 10);
        assert_eq!(loaded.config.hotlines[0].number, "12319");
        assert!(loaded.database_url().starts_with("sqlite://"));
    }

    #[test]
    fn wechat_is_off_by_default_and_set_by_environment() {
        assert!(load(&example(), |_| None).unwrap().config.wechat.is_none());
        let env = |var: &str| match var {
            "HOTLINE_WECHAT_TOKEN" => Some("hotlineToken2026".to_owned()),
            "HOTLINE_WECHAT_APPID" => Some("wx5823bf96d3bd56c7".to_owned()),
            "HOTLINE_WECHAT_AES_KEY" => {
                Some("jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C".to_owned())
            }
            _ => None,
        };
        let w = load(&example(), env).unwrap().config.wechat.unwrap();
        assert_eq!(w.token, "hotlineToken2026");
        assert_eq!(w.app_id, "wx5823bf96d3bd56c7");
        assert_eq!(w.thread_minutes, 10);
        assert_eq!(w.api_base, "https://api.weixin.qq.com");
        let bad_key = |var: &str| match var {
            "HOTLINE_WECHAT_AES_KEY" => Some("too-short".to_owned()),
            other => env(other),
        };
        let err = load(&example(), bad_key).err().unwrap().to_string();
        assert!(
            err.contains("wechat.encoding_aes_key (from HOTLINE_WECHAT_AES_KEY)"),
            "{err}"
        );
        let no_app = |var: &str| (var == "HOTLINE_WECHAT_TOKEN").then(|| "tok123".to_owned());
        let err = load(&example(), no_app).err().unwrap().to_string();
        assert!(err.contains("wechat.app_id"), "{err}");
    }

    #[test]
    fn environment_overrides_the_file_and_errors_name_the_variable() {
        let env = |var: &str| match var {
            "HOTLINE_HTTP_LISTEN" => Some("127.0.0.1:9999".to_owned()),
            "HOTLINE_DATABASE_URL" => Some("postgres://x@localhost/db".to_owned()),
            _ => None,
        };
        let loaded = load(&example(), env).unwrap();
        assert_eq!(loaded.http_listen.port(), 9999);
        assert_eq!(loaded.database_url(), "postgres://x@localhost/db");
        let bad = |var: &str| (var == "HOTLINE_SIP_LISTEN").then(|| "five-oh-six-oh".to_owned());
        let err = load(&example(), bad).err().unwrap().to_string();
        assert!(
            err.contains("sip.listen (from HOTLINE_SIP_LISTEN)"),
            "{err}"
        );
        let bad = |var: &str| (var == "HOTLINE_DATABASE_URL").then(|| "mysql://x".to_owned());
        let err = load(&example(), bad).err().unwrap().to_string();
        assert!(
            err.contains("database_url (from HOTLINE_DATABASE_URL)"),
            "{err}"
        );
    }

    #[test]
    fn a_bad_key_in_the_file_is_named() {
        let dir = tempfile::tempdir().unwrap();
        for f in [
            "categories.toml",
            "departments.toml",
            "prompts.toml",
            "queues.toml",
        ] {
            std::fs::copy(example().with_file_name(f), dir.path().join(f)).unwrap();
        }
        std::fs::create_dir(dir.path().join("ivr")).unwrap();
        std::fs::copy(
            example().with_file_name("ivr/12319.toml"),
            dir.path().join("ivr/12319.toml"),
        )
        .unwrap();
        let path = dir.path().join("hotline.toml");
        let write = |text: &str| std::fs::write(&path, text).unwrap();
        let hotline = "[[hotline]]\nnumber = \"12319\"\nname = \"x\"\n";
        write(&format!("{hotline}[http]\nlisten = \"nowhere\"\n"));
        let err = load(&path, |_| None).err().unwrap().to_string();
        assert!(
            err.contains("http.listen") && err.contains("nowhere"),
            "{err}"
        );
        write(&format!("{hotline}[http]\nlisen = \"127.0.0.1:1\"\n"));
        let err = load(&path, |_| None).err().unwrap().to_string();
        assert!(err.contains("lisen"), "{err}");
        write(&format!("{hotline}[sla]\ndispose = \"3 days\"\n"));
        let err = load(&path, |_| None).err().unwrap().to_string();
        assert!(err.contains("dispose") && err.contains("3 days"), "{err}");
        write(&format!(
            "{hotline}[calendar]\nwork_hours = [\"08:00-25:00\"]\n"
        ));
        let err = load(&path, |_| None).err().unwrap().to_string();
        assert!(err.contains("calendar.work_hours"), "{err}");
        write(&format!(
            "{hotline}[hotline.hours]\nperiods = [\"20:00-08:00\"]\n"
        ));
        let err = load(&path, |_| None).err().unwrap().to_string();
        assert!(
            err.contains("hotline 12319 hours") && err.contains("periods"),
            "{err}"
        );
        write(&format!(
            "{hotline}[hotline.hours]\nperiods = [\"08:00-20:00\"]\ndays = \"every_day_but_holidays\"\n"
        ));
        assert_eq!(load(&path, |_| None).unwrap().hours.len(), 1);
        write("[http]\nlisten = \"127.0.0.1:1\"\n");
        let err = load(&path, |_| None).err().unwrap().to_string();
        assert!(err.contains("hotline"), "{err}");
        // A flow that queues to a queue the ACD does not have is named with its file.
        write(hotline);
        load(&path, |_| None).unwrap();
        let flow = std::fs::read_to_string(dir.path().join("ivr/12319.toml")).unwrap();
        std::fs::write(
            dir.path().join("ivr/12319.toml"),
            flow.replace("\"12319-intake\"", "\"12319-nowhere\""),
        )
        .unwrap();
        let err = load(&path, |_| None).err().unwrap().to_string();
        assert!(
            err.contains("ivr/12319.toml") && err.contains("12319-nowhere"),
            "{err}"
        );
    }
}
