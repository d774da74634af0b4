//! A client for the WeChat official account's HTTP API (公众号接口): the access_token, downloading
//! the media a follower sent (临时素材), customer-service messages (客服消息) and template messages
//! (模板消息).
//!
//! - One [`WechatApi`] per official account, cloned freely: clones share the HTTP connection pool
//!   and the access_token.
//! - The access_token is fetched on first use, cached, and refreshed [`REFRESH_AHEAD`] before it
//!   expires; concurrent callers share one token request (success or failure). When WeChat says
//!   the token is bad (40001, 40014, 42001) the client refreshes it and retries the call once.
//! - The expiry rule is the sans-IO [`TokenCache`]; the time comes from a [`Clock`], so tests can
//!   move it without waiting two hours.
//! - Every reply is untrusted: bodies are read with a size limit, JSON is parsed leniently and
//!   nothing a server sends can panic. [`ApiError::is_retryable`] tells an outbox whether to try
//!   again later or give up.
//! - Neither the AppSecret nor a whole access_token is ever logged or put in an error.

use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use reqwest::header::{CONTENT_DISPOSITION, CONTENT_TYPE, HeaderMap};
use reqwest::{Method, Url};
use serde::Deserialize;
use serde_json::{Value, json};

/// WeChat's API server.
pub const DEFAULT_BASE_URL: &str = "https://api.weixin.qq.com";
/// How long before its expiry an access_token is replaced.
pub const REFRESH_AHEAD: Duration = Duration::from_secs(5 * 60);
/// The largest media file [`WechatApi::download_media`] accepts unless configured otherwise
/// (WeChat's temporary material is at most 10 MB for video, less for images and voice).
pub const DEFAULT_MAX_MEDIA_BYTES: usize = 20 * 1024 * 1024;
/// The largest JSON reply read; WeChat's are well under 1 KiB.
const MAX_JSON_BYTES: usize = 64 * 1024;

/// Where and as whom the client talks to WeChat.
#[derive(Clone)]
pub struct ApiConfig {
    /// The API's root, without a trailing path: [`DEFAULT_BASE_URL`], or a stand-in's address.
    pub base_url: String,
    /// The official account's AppID (开发者ID).
    pub app_id: String,
    /// The official account's AppSecret (开发者密码). Never logged.
    pub app_secret: String,
    /// The longest one HTTP request may take, connecting and reading the whole body included.
    pub timeout: Duration,
    /// The largest media file accepted by [`WechatApi::download_media`].
    pub max_media_bytes: usize,
}

impl ApiConfig {
    /// A configuration for WeChat's own server with a 30-second timeout and a 20 MiB media limit.
    pub fn new(app_id: impl Into<String>, app_secret: impl Into<String>) -> ApiConfig {
        ApiConfig {
            base_url: DEFAULT_BASE_URL.to_owned(),
            app_id: app_id.into(),
            app_secret: app_secret.into(),
            timeout: Duration::from_secs(30),
            max_media_bytes: DEFAULT_MAX_MEDIA_BYTES,
        }
    }
}

impl fmt::Debug for ApiConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ApiConfig")
            .field("base_url", &self.base_url)
            .field("app_id", &self.app_id)
            .field("app_secret", &"<redacted>")
            .field("timeout", &self.timeout)
            .field("max_media_bytes", &self.max_media_bytes)
            .finish()
    }
}

/// Why a call to the WeChat API failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ApiError {
    /// The client could not be built from its configuration.
    #[error("the WeChat API client is misconfigured: {0}")]
    Config(String),
    /// The server could not be reached, or did not answer in time.
    #[error("the WeChat API did not answer: {message}")]
    Transport {
        /// What went wrong, without the URL (it carries the token).
        message: String,
        /// The request timed out (as opposed to failing to connect or breaking off).
        timeout: bool,
    },
    /// The server answered with an HTTP error status and no WeChat error code.
    #[error("the WeChat API answered HTTP {status}")]
    Status {
        /// The HTTP status code.
        status: u16,
    },
    /// WeChat refused the call with an error code (全局返回码).
    #[error("WeChat API error {code}{}: {message}", meaning(*.code).map(|m| format!(" ({m})")).unwrap_or_default())]
    Api {
        /// WeChat's `errcode`.
        code: i64,
        /// WeChat's `errmsg`.
        message: String,
    },
    /// The reply is not what the API sends (bad JSON, missing fields, wrong content type).
    #[error("the WeChat API's reply was not understood: {0}")]
    BadReply(String),
    /// The reply is larger than the configured limit.
    #[error("the WeChat API's reply is larger than the {limit}-byte limit")]
    TooLarge {
        /// The limit, in bytes.
        limit: usize,
    },
}

/// What a WeChat error code means, for the codes this client deals with.
fn meaning(code: i64) -> Option<&'static str> {
    Some(match code {
        -1 => "WeChat is busy, try again later",
        40001 => "invalid AppSecret or access_token",
        40003 => "invalid openid",
        40007 => "invalid media_id (temporary media expires after 3 days)",
        40013 => "invalid AppID",
        40014 => "invalid access_token",
        40037 => "invalid template_id",
        40164 => "this server's IP address is not in the account's whitelist",
        41001 => "access_token missing",
        42001 => "access_token expired",
        43004 => "the user has unfollowed the account",
        45009 => "daily API quota reached",
        45011 => "API called too often",
        45015 => "the 48-hour customer-service window has passed",
        45047 => "customer-service message quota for this user used up",
        47001 => "malformed request body",
        _ => return None,
    })
}

/// Error codes meaning "this access_token is no good": refresh it and retry once.
fn is_token_error(code: i64) -> bool {
    matches!(code, 40001 | 40014 | 42001)
}

impl ApiError {
    /// True when the same call may succeed later (network trouble, WeChat busy or rate-limited,
    /// a 5xx or garbled reply): retry with backoff. False when retrying cannot help: the user
    /// unfollowed (43004), the customer-service window passed (45015) or its quota is spent
    /// (45047), an invalid openid/media_id/template (40003, 40007, 40037), wrong credentials or
    /// whitelist (40001, 40013, 40164: fix the configuration), or a reply over the size limit.
    pub fn is_retryable(&self) -> bool {
        match self {
            ApiError::Transport { .. } | ApiError::BadReply(_) => true,
            ApiError::Status { status } => *status >= 500 || *status == 429,
            // 40014/42001 here means a freshly fetched token was refused too: transient.
            ApiError::Api { code, .. } => matches!(code, -1 | 40014 | 42001 | 45009 | 45011),
            ApiError::Config(_) | ApiError::TooLarge { .. } => false,
        }
    }

    /// WeChat's error code, when WeChat sent one.
    pub fn api_code(&self) -> Option<i64> {
        match self {
            ApiError::Api { code, .. } => Some(*code),
            _ => None,
        }
    }

    /// A stable code for logs and metrics.
    pub fn code(&self) -> &'static str {
        match self {
            ApiError::Config(_) => "wechat_api_config",
            ApiError::Transport { timeout: true, .. } => "wechat_api_timeout",
            ApiError::Transport { .. } => "wechat_api_unreachable",
            ApiError::Status { .. } => "wechat_api_http_status",
            ApiError::BadReply(_) => "wechat_api_bad_reply",
            ApiError::TooLarge { .. } => "wechat_api_too_large",
            ApiError::Api { code, .. } => match code {
                -1 => "wechat_api_busy",
                40001 | 40013 | 40125 | 40164 => "wechat_api_credentials",
                40014 | 41001 | 42001 => "wechat_api_token",
                40003 => "wechat_api_invalid_openid",
                40007 => "wechat_api_invalid_media",
                40037 => "wechat_api_invalid_template",
                43004 => "wechat_api_unfollowed",
                45009 | 45011 => "wechat_api_rate_limited",
                45015 => "wechat_api_window_closed",
                45047 => "wechat_api_quota",
                _ => "wechat_api_error",
            },
        }
    }

    fn transport(err: reqwest::Error) -> ApiError {
        let timeout = err.is_timeout();
        // The URL carries the access_token or the AppSecret: never keep it.
        let err = err.without_url();
        let mut message = err.to_string();
        let mut source = std::error::Error::source(&err);
        while let Some(cause) = source {
            message.push_str(": ");
            message.push_str(&cause.to_string());
            source = cause.source();
        }
        ApiError::Transport { message, timeout }
    }
}

/// A monotonic clock. [`WechatApi::new`] uses tokio's (so `tokio::time::pause` moves it); tests
/// may pass their own to [`WechatApi::with_clock`].
pub trait Clock: Send + Sync + 'static {
    /// The current instant.
    fn now(&self) -> Instant;
}

/// The clock of the tokio runtime: real time, or paused time in tests.
#[derive(Debug, Default, Clone, Copy)]
pub struct TokioClock;

impl Clock for TokioClock {
    fn now(&self) -> Instant {
        tokio::time::Instant::now().into_std()
    }
}

/// The access_token and when it must be replaced, without I/O: the caller says what time it is.
///
/// A token is *fresh* until [`REFRESH_AHEAD`] (or, for short-lived tokens, half its lifetime)
/// before it expires, and *usable* until it expires: a stale but usable token is still used when
/// fetching a new one fails.
#[derive(Debug, Clone)]
pub struct TokenCache {
    current: Option<Cached>,
}

#[derive(Debug, Clone)]
struct Cached {
    token: Arc<str>,
    refresh_at: Instant,
    expires_at: Instant,
}

impl TokenCache {
    /// An empty cache.
    pub fn new() -> TokenCache {
        TokenCache { current: None }
    }

    /// The token, if it does not need replacing yet at `now`.
    pub fn fresh(&self, now: Instant) -> Option<Arc<str>> {
        self.current
            .as_ref()
            .filter(|c| now < c.refresh_at)
            .map(|c| c.token.clone())
    }

    /// The token, if it has not expired at `now` (it may be due for replacement).
    pub fn usable(&self, now: Instant) -> Option<Arc<str>> {
        self.current
            .as_ref()
            .filter(|c| now < c.expires_at)
            .map(|c| c.token.clone())
    }

    /// Keeps a token WeChat issued at `now`, valid for `expires_in`.
    pub fn store(&mut self, token: Arc<str>, expires_in: Duration, now: Instant) {
        let early = expires_in.saturating_sub(REFRESH_AHEAD).max(expires_in / 2);
        self.current = Some(Cached {
            token,
            refresh_at: now + early,
            expires_at: now + expires_in,
        });
    }

    /// Forgets `token` because WeChat refused it; returns false (and keeps the cache) when the
    /// cache already holds another token, e.g. one a concurrent caller just fetched.
    pub fn invalidate(&mut self, token: &str) -> bool {
        match &self.current {
            Some(c) if &*c.token == token => {
                self.current = None;
                true
            }
            _ => false,
        }
    }
}

impl Default for TokenCache {
    fn default() -> TokenCache {
        TokenCache::new()
    }
}

/// A file a follower sent, as downloaded from WeChat.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Media {
    /// The file's bytes.
    pub bytes: Vec<u8>,
    /// The `Content-Type` WeChat sent (e.g. `image/jpeg`, `audio/amr`), if any.
    pub content_type: Option<String>,
    /// The file name from `Content-Disposition`, as sent: untrusted, never use it as a path.
    pub file_name: Option<String>,
}

/// The WeChat official-account API client. Cheap to clone; clones share the token and the
/// connection pool and may be used concurrently.
#[derive(Clone)]
pub struct WechatApi {
    inner: Arc<Inner>,
}

struct Inner {
    http: reqwest::Client,
    base: Url,
    app_id: String,
    app_secret: String,
    max_media_bytes: usize,
    clock: Arc<dyn Clock>,
    token: Mutex<TokenState>,
    /// Held while a token is fetched, so that concurrent callers share one request.
    refresh: tokio::sync::Mutex<()>,
}

struct TokenState {
    cache: TokenCache,
    /// Token requests completed so far, and how the last one failed (shared with its waiters).
    attempts: u64,
    last_failure: Option<ApiError>,
}

impl fmt::Debug for WechatApi {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WechatApi")
            .field("base_url", &self.inner.base.as_str())
            .field("app_id", &self.inner.app_id)
            .finish_non_exhaustive()
    }
}

/// The first characters of a token, for logs.
fn redact(token: &str) -> String {
    let head: String = token.chars().take(6).collect();
    format!("{head}…")
}

/// The fields of WeChat's JSON replies this client reads.
#[derive(Debug, Default, Deserialize)]
struct Reply {
    errcode: Option<i64>,
    errmsg: Option<String>,
    access_token: Option<String>,
    expires_in: Option<u64>,
    msgid: Option<Value>,
}

impl Reply {
    /// The reply as an error, if it carries a non-zero errcode.
    fn error(&self) -> Option<ApiError> {
        match self.errcode {
            Some(code) if code != 0 => Some(ApiError::Api {
                code,
                message: self.errmsg.clone().unwrap_or_default(),
            }),
            _ => None,
        }
    }
}

fn parse_reply(body: &[u8]) -> Result<Reply, ApiError> {
    serde_json::from_slice(body).map_err(|e| ApiError::BadReply(format!("not WeChat's JSON: {e}")))
}

/// Reads a body in chunks, refusing it as soon as it grows past `limit`.
async fn read_limited(mut resp: reqwest::Response, limit: usize) -> Result<Vec<u8>, ApiError> {
    if resp.content_length().is_some_and(|len| len > limit as u64) {
        return Err(ApiError::TooLarge { limit });
    }
    let mut body = Vec::new();
    while let Some(chunk) = resp.chunk().await.map_err(ApiError::transport)? {
        if body.len() + chunk.len() > limit {
            return Err(ApiError::TooLarge { limit });
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// The `filename` parameter of a `Content-Disposition` header.
fn file_name(headers: &HeaderMap) -> Option<String> {
    let value = headers.get(CONTENT_DISPOSITION)?.to_str().ok()?;
    value.split(';').find_map(|part| {
        let (key, val) = part.trim().split_once('=')?;
        if !key.trim().eq_ignore_ascii_case("filename") {
            return None;
        }
        let name = val.trim().trim_matches('"');
        (!name.is_empty()).then(|| name.to_owned())
    })
}

impl WechatApi {
    /// A client for the account in `config`, on tokio's clock. No request is made yet.
    pub fn new(config: ApiConfig) -> Result<WechatApi, ApiError> {
        WechatApi::with_clock(config, Arc::new(TokioClock))
    }

    /// A client that reads the time from `clock` (tests move it to expire tokens).
    pub fn with_clock(config: ApiConfig, clock: Arc<dyn Clock>) -> Result<WechatApi, ApiError> {
        let mut base = Url::parse(config.base_url.trim_end_matches('/')).map_err(|e| {
            ApiError::Config(format!(
                "the base URL `{}` is not a URL: {e}",
                config.base_url
            ))
        })?;
        if !matches!(base.scheme(), "http" | "https") || base.cannot_be_a_base() {
            return Err(ApiError::Config(format!(
                "the base URL `{}` must be an http(s) URL such as {DEFAULT_BASE_URL}",
                config.base_url
            )));
        }
        // `Url::join` would drop a last path segment without a trailing slash.
        if !base.path().ends_with('/') {
            let path = format!("{}/", base.path());
            base.set_path(&path);
        }
        if config.app_id.is_empty() || config.app_secret.is_empty() {
            return Err(ApiError::Config(
                "the AppID and AppSecret must both be set (公众号后台 → 设置与开发 → 基本配置)"
                    .into(),
            ));
        }
        let http = reqwest::Client::builder()
            .timeout(config.timeout)
            .connect_timeout(config.timeout)
            .user_agent(concat!("hotline/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| ApiError::Config(format!("cannot build the HTTP client: {e}")))?;
        Ok(WechatApi {
            inner: Arc::new(Inner {
                http,
                base,
                app_id: config.app_id,
                app_secret: config.app_secret,
                max_media_bytes: config.max_media_bytes,
                clock,
                token: Mutex::new(TokenState {
                    cache: TokenCache::new(),
                    attempts: 0,
                    last_failure: None,
                }),
                refresh: tokio::sync::Mutex::new(()),
            }),
        })
    }

    /// Sends a customer-service text message (客服消息) to a follower. WeChat accepts these only
    /// within 48 hours of the follower's last message (45015 after that) and at most a few per
    /// such message (45047).
    pub async fn send_text(&self, openid: &str, content: &str) -> Result<(), ApiError> {
        let body = json!({ "touser": openid, "msgtype": "text", "text": { "content": content } });
        self.post("cgi-bin/message/custom/send", &body).await?;
        Ok(())
    }

    /// Sends a template message (模板消息) built from `fields` (`("first", "…")`,
    /// `("keyword1", "…")`, …, `("remark", "…")`), optionally linking to `url`; returns WeChat's
    /// msgid (0 if WeChat sent none).
    pub async fn send_template(
        &self,
        openid: &str,
        template_id: &str,
        url: Option<&str>,
        fields: &[(&str, &str)],
    ) -> Result<i64, ApiError> {
        let data: serde_json::Map<String, Value> = fields
            .iter()
            .map(|(key, value)| ((*key).to_owned(), json!({ "value": value })))
            .collect();
        let mut body = json!({ "touser": openid, "template_id": template_id, "data": data });
        if let Some(url) = url {
            body["url"] = Value::from(url);
        }
        let reply = self.post("cgi-bin/message/template/send", &body).await?;
        let msgid = reply.msgid.as_ref().and_then(|v| {
            v.as_i64()
                .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
        });
        Ok(msgid.unwrap_or(0))
    }

    /// Downloads a temporary media file (临时素材) a follower sent: a photo, a voice message.
    /// Refuses files larger than the configured limit; WeChat's error replies (e.g. 40007 for an
    /// unknown or expired media_id) come back as [`ApiError::Api`], never as bytes.
    pub async fn download_media(&self, media_id: &str) -> Result<Media, ApiError> {
        self.with_token(|token| self.download_once(token, media_id))
            .await
    }

    async fn download_once(&self, token: Arc<str>, media_id: &str) -> Result<Media, ApiError> {
        let mut url = self.url("cgi-bin/media/get")?;
        url.query_pairs_mut()
            .append_pair("access_token", &token)
            .append_pair("media_id", media_id);
        let resp = self
            .inner
            .http
            .get(url)
            .send()
            .await
            .map_err(ApiError::transport)?;
        let status = resp.status();
        let headers = resp.headers().clone();
        let content_type = headers
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(|v| v.trim().to_owned());
        let body = read_limited(resp, self.inner.max_media_bytes).await?;

        let mime = content_type.as_deref().unwrap_or("").to_ascii_lowercase();
        let textual = mime.starts_with("application/json") || mime.starts_with("text/");
        if textual || !status.is_success() || body.trim_ascii_start().starts_with(b"{") {
            let parsed = serde_json::from_slice::<Reply>(&body).ok();
            if let Some(err) = parsed.as_ref().and_then(Reply::error) {
                return Err(err);
            }
            if !status.is_success() {
                return Err(ApiError::Status {
                    status: status.as_u16(),
                });
            }
            if textual && parsed.is_none() {
                return Err(ApiError::BadReply(format!(
                    "expected media, got `{mime}` that is not WeChat's JSON"
                )));
            }
            // JSON without an error (e.g. a video's `video_url`) or a binary file that happens
            // to start with `{`: hand it over as it is.
        }
        Ok(Media {
            bytes: body,
            content_type,
            file_name: file_name(&headers),
        })
    }

    /// POSTs a JSON body with the access_token; the reply if its errcode is 0.
    async fn post(&self, path: &str, body: &Value) -> Result<Reply, ApiError> {
        self.with_token(|token| self.post_once(token, path, body))
            .await
    }

    async fn post_once(
        &self,
        token: Arc<str>,
        path: &str,
        body: &Value,
    ) -> Result<Reply, ApiError> {
        let mut url = self.url(path)?;
        url.query_pairs_mut().append_pair("access_token", &token);
        let resp = self
            .inner
            .http
            .request(Method::POST, url)
            .json(body)
            .send()
            .await
            .map_err(ApiError::transport)?;
        let reply = self.json_reply(resp).await?;
        match reply.error() {
            Some(err) => Err(err),
            None if reply.errcode.is_none() => {
                Err(ApiError::BadReply("no errcode in the reply".into()))
            }
            None => Ok(reply),
        }
    }

    /// Reads a JSON reply; a non-2xx status without a WeChat errcode becomes [`ApiError::Status`].
    async fn json_reply(&self, resp: reqwest::Response) -> Result<Reply, ApiError> {
        let status = resp.status();
        let body = read_limited(resp, MAX_JSON_BYTES).await?;
        let parsed = parse_reply(&body);
        if status.is_success() {
            return parsed;
        }
        match parsed.ok().as_ref().and_then(Reply::error) {
            Some(err) => Err(err),
            None => Err(ApiError::Status {
                status: status.as_u16(),
            }),
        }
    }

    /// Runs `call` with the access_token; if WeChat says the token is bad, refreshes it and runs
    /// `call` once more.
    async fn with_token<T, F, Fut>(&self, call: F) -> Result<T, ApiError>
    where
        F: Fn(Arc<str>) -> Fut,
        Fut: Future<Output = Result<T, ApiError>>,
    {
        let token = self.token().await?;
        match call(token.clone()).await {
            Err(ApiError::Api { code, .. }) if is_token_error(code) => {
                tracing::info!(code, token = %redact(&token), "WeChat refused the access_token; refreshing it");
                self.state().cache.invalidate(&token);
                let token = self.token().await?;
                call(token).await
            }
            other => other,
        }
    }

    fn state(&self) -> MutexGuard<'_, TokenState> {
        self.inner
            .token
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// A fresh access_token: the cached one, or one fetched now (by this caller or by a
    /// concurrent one it waits for).
    async fn token(&self) -> Result<Arc<str>, ApiError> {
        let seen = {
            let state = self.state();
            if let Some(token) = state.cache.fresh(self.inner.clock.now()) {
                return Ok(token);
            }
            state.attempts
        };
        let _refreshing = self.inner.refresh.lock().await;
        {
            let state = self.state();
            let now = self.inner.clock.now();
            if let Some(token) = state.cache.fresh(now) {
                return Ok(token);
            }
            // A request finished while this caller waited, and failed: share its outcome
            // rather than asking again at once.
            if state.attempts != seen
                && let Some(err) = &state.last_failure
            {
                return state.cache.usable(now).ok_or_else(|| err.clone());
            }
        }
        let fetched = self.fetch_token().await;
        let mut state = self.state();
        state.attempts += 1;
        let now = self.inner.clock.now();
        match fetched {
            Ok((token, expires_in)) => {
                tracing::debug!(token = %redact(&token), expires_in = expires_in.as_secs(), "fetched a WeChat access_token");
                state.cache.store(token.clone(), expires_in, now);
                state.last_failure = None;
                Ok(token)
            }
            Err(err) => {
                state.last_failure = Some(err.clone());
                match state.cache.usable(now) {
                    Some(token) => {
                        tracing::warn!(error = %err, "could not refresh the WeChat access_token; using the old one until it expires");
                        Ok(token)
                    }
                    None => {
                        tracing::warn!(error = %err, code = err.code(), "could not fetch a WeChat access_token");
                        Err(err)
                    }
                }
            }
        }
    }

    async fn fetch_token(&self) -> Result<(Arc<str>, Duration), ApiError> {
        let mut url = self.url("cgi-bin/token")?;
        url.query_pairs_mut()
            .append_pair("grant_type", "client_credential")
            .append_pair("appid", &self.inner.app_id)
            .append_pair("secret", &self.inner.app_secret);
        let resp = self
            .inner
            .http
            .get(url)
            .send()
            .await
            .map_err(ApiError::transport)?;
        let reply = self.json_reply(resp).await?;
        if let Some(err) = reply.error() {
            return Err(err);
        }
        match (reply.access_token, reply.expires_in) {
            (Some(token), Some(expires_in)) if !token.is_empty() => {
                Ok((token.into(), Duration::from_secs(expires_in)))
            }
            _ => Err(ApiError::BadReply(
                "the token reply has no access_token or expires_in".into(),
            )),
        }
    }

    fn url(&self, path: &str) -> Result<Url, ApiError> {
        self.inner
            .base
            .join(path)
            .map_err(|e| ApiError::Config(format!("cannot build the URL for {path}: {e}")))
    }
}
