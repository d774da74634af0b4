//! A local stand-in for WeChat's API server (feature `testing`): it speaks the same HTTP API as
//! `api.weixin.qq.com` for the calls [`super::api::WechatApi`] makes, so tests (this crate's and
//! the `hotline` binary's end-to-end ones) can point a client at [`StandIn::base_url`].
//!
//! It issues random access_tokens with a configurable lifetime and can expire them on demand,
//! serves media the test registered, records every message it accepts, can fail the next calls
//! with a chosen errcode, and counts token requests.
//!
//! ```no_run
//! # async fn demo() {
//! use channels::wechat::api::{ApiConfig, WechatApi};
//! use channels::wechat::standin::StandIn;
//!
//! let wechat = StandIn::start("wx0123456789abcdef", "secret").await;
//! let mut config = ApiConfig::new("wx0123456789abcdef", "secret");
//! config.base_url = wechat.base_url();
//! let api = WechatApi::new(config).unwrap();
//! api.send_text("o6_bmjrPTlm6_2sgVt7hMZOPfL2M", "您的工单已受理").await.unwrap();
//! assert_eq!(wechat.sent()[0].text(), Some("您的工单已受理"));
//! # }
//! ```

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// Which API a recorded message came through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SentKind {
    /// `cgi-bin/message/custom/send` (客服消息).
    Custom,
    /// `cgi-bin/message/template/send` (模板消息).
    Template,
}

/// A message the stand-in accepted.
#[derive(Debug, Clone, PartialEq)]
pub struct SentMessage {
    /// Which API it came through.
    pub kind: SentKind,
    /// The recipient's openid.
    pub touser: String,
    /// The whole request body.
    pub json: Value,
}

impl SentMessage {
    /// The text of a customer-service text message.
    pub fn text(&self) -> Option<&str> {
        self.json.pointer("/text/content")?.as_str()
    }

    /// The template of a template message.
    pub fn template_id(&self) -> Option<&str> {
        self.json.get("template_id")?.as_str()
    }

    /// The link of a template message.
    pub fn url(&self) -> Option<&str> {
        self.json.get("url")?.as_str()
    }

    /// The value of a template message's field (`first`, `keyword1`, …, `remark`).
    pub fn field(&self, name: &str) -> Option<&str> {
        self.json.get("data")?.get(name)?.get("value")?.as_str()
    }
}

/// A running stand-in server on `127.0.0.1`. Dropping it stops the server.
#[derive(Debug)]
pub struct StandIn {
    addr: SocketAddr,
    state: Arc<Mutex<Inner>>,
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

#[derive(Debug)]
struct Inner {
    app_id: String,
    app_secret: String,
    token_lifetime: Duration,
    /// Every token issued and until when it is valid (`None` once expired on demand).
    tokens: HashMap<String, Option<Instant>>,
    token_requests: usize,
    media: HashMap<String, (Vec<u8>, String)>,
    sent: Vec<SentMessage>,
    failures: Option<(usize, i64)>,
    next_msgid: i64,
}

type Shared = Arc<Mutex<Inner>>;

fn lock(state: &Shared) -> MutexGuard<'_, Inner> {
    state.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A WeChat error reply: JSON with HTTP 200, as WeChat sends it.
fn error(code: i64, message: &str) -> Response {
    axum::Json(json!({ "errcode": code, "errmsg": message })).into_response()
}

/// An errcode and errmsg to answer with.
type Refusal = (i64, &'static str);

fn ok() -> Response {
    axum::Json(json!({ "errcode": 0, "errmsg": "ok" })).into_response()
}

/// What WeChat says about an access_token, or `None` if it is good.
fn check_token(inner: &Inner, query: &HashMap<String, String>) -> Option<Refusal> {
    let Some(token) = query.get("access_token").filter(|t| !t.is_empty()) else {
        return Some((41001, "access_token missing"));
    };
    match inner.tokens.get(token) {
        None => Some((
            40001,
            "invalid credential, access_token is invalid or not latest",
        )),
        Some(Some(until)) if Instant::now() < *until => None,
        Some(_) => Some((42001, "access_token expired")),
    }
}

/// The token check, then an injected failure if one is pending.
fn admit(inner: &mut Inner, query: &HashMap<String, String>) -> Option<Refusal> {
    if let Some(refused) = check_token(inner, query) {
        return Some(refused);
    }
    match inner.failures {
        Some((left, code)) if left > 0 => {
            inner.failures = (left > 1).then_some((left - 1, code));
            Some((code, "injected failure"))
        }
        _ => None,
    }
}

async fn token(State(state): State<Shared>, Query(q): Query<HashMap<String, String>>) -> Response {
    let mut inner = lock(&state);
    inner.token_requests += 1;
    if q.get("grant_type").map(String::as_str) != Some("client_credential") {
        return error(40002, "invalid grant_type");
    }
    if q.get("appid") != Some(&inner.app_id) {
        return error(40013, "invalid appid");
    }
    if q.get("secret") != Some(&inner.app_secret) {
        return error(
            40001,
            "invalid credential, access_token is invalid or not latest",
        );
    }
    let token = format!(
        "{:032x}{:032x}",
        rand::random::<u128>(),
        rand::random::<u128>()
    );
    let lifetime = inner.token_lifetime;
    inner
        .tokens
        .insert(token.clone(), Some(Instant::now() + lifetime));
    axum::Json(json!({ "access_token": token, "expires_in": lifetime.as_secs() })).into_response()
}

async fn media(State(state): State<Shared>, Query(q): Query<HashMap<String, String>>) -> Response {
    let mut inner = lock(&state);
    if let Some((code, message)) = admit(&mut inner, &q) {
        return error(code, message);
    }
    let id = q.get("media_id").map(String::as_str).unwrap_or("");
    let Some((bytes, content_type)) = inner.media.get(id).cloned() else {
        return error(40007, "invalid media_id");
    };
    let disposition = format!("attachment; filename=\"{id}.{}\"", extension(&content_type));
    let mut resp = bytes.into_response();
    let headers = resp.headers_mut();
    for (name, value) in [
        (header::CONTENT_TYPE, content_type),
        (header::CONTENT_DISPOSITION, disposition),
    ] {
        if let Ok(value) = HeaderValue::from_str(&value) {
            headers.insert(name, value);
        }
    }
    resp
}

fn extension(content_type: &str) -> &'static str {
    match content_type {
        "image/jpeg" => "jpg",
        "image/png" => "png",
        "image/gif" => "gif",
        "audio/amr" => "amr",
        "audio/speex" => "speex",
        "audio/mpeg" => "mp3",
        "video/mp4" => "mp4",
        _ => "bin",
    }
}

/// Checks and records a message; its msgid, or the errcode WeChat would answer.
fn accept(
    state: &Shared,
    q: &HashMap<String, String>,
    body: &[u8],
    kind: SentKind,
) -> Result<i64, Refusal> {
    let mut inner = lock(state);
    if let Some(refused) = admit(&mut inner, q) {
        return Err(refused);
    }
    let Ok(json) = serde_json::from_slice::<Value>(body) else {
        return Err((47001, "data format error"));
    };
    let Some(touser) = json
        .get("touser")
        .and_then(Value::as_str)
        .filter(|t| !t.is_empty())
    else {
        return Err((40003, "invalid openid"));
    };
    let touser = touser.to_owned();
    match kind {
        SentKind::Custom if json.get("msgtype").and_then(Value::as_str).is_none() => {
            return Err((40008, "invalid message type"));
        }
        SentKind::Template
            if json
                .get("template_id")
                .and_then(Value::as_str)
                .is_none_or(str::is_empty) =>
        {
            return Err((40037, "invalid template_id"));
        }
        _ => {}
    }
    inner.sent.push(SentMessage { kind, touser, json });
    inner.next_msgid += 1;
    Ok(inner.next_msgid)
}

async fn custom_send(
    State(state): State<Shared>,
    Query(q): Query<HashMap<String, String>>,
    body: Bytes,
) -> Response {
    match accept(&state, &q, &body, SentKind::Custom) {
        Ok(_) => ok(),
        Err((code, message)) => error(code, message),
    }
}

async fn template_send(
    State(state): State<Shared>,
    Query(q): Query<HashMap<String, String>>,
    body: Bytes,
) -> Response {
    match accept(&state, &q, &body, SentKind::Template) {
        Ok(msgid) => {
            axum::Json(json!({ "errcode": 0, "errmsg": "ok", "msgid": msgid })).into_response()
        }
        Err((code, message)) => error(code, message),
    }
}

impl StandIn {
    /// Starts a stand-in for the account `app_id` / `app_secret` on a free port of `127.0.0.1`,
    /// issuing tokens valid for 7200 s. Must be called within a tokio runtime.
    ///
    /// # Panics
    /// If no local port can be bound.
    pub async fn start(app_id: &str, app_secret: &str) -> StandIn {
        let state = Arc::new(Mutex::new(Inner {
            app_id: app_id.to_owned(),
            app_secret: app_secret.to_owned(),
            token_lifetime: Duration::from_secs(7200),
            tokens: HashMap::new(),
            token_requests: 0,
            media: HashMap::new(),
            sent: Vec::new(),
            failures: None,
            next_msgid: 200_228_331,
        }));
        let app = Router::new()
            .route("/cgi-bin/token", get(token))
            .route("/cgi-bin/media/get", get(media))
            .route("/cgi-bin/message/custom/send", post(custom_send))
            .route("/cgi-bin/message/template/send", post(template_send))
            .with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("the WeChat stand-in cannot bind a port on 127.0.0.1");
        let addr = listener
            .local_addr()
            .expect("the WeChat stand-in's socket has no address");
        let (shutdown, stop) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            let serve = axum::serve(listener, app).with_graceful_shutdown(async move {
                let _ = stop.await;
            });
            if let Err(e) = serve.await {
                tracing::warn!(error = %e, "the WeChat stand-in stopped");
            }
        });
        StandIn {
            addr,
            state,
            shutdown: Some(shutdown),
            task: Some(task),
        }
    }

    /// The URL to use as the client's base URL, e.g. `http://127.0.0.1:41234`.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Makes tokens issued from now on valid for `lifetime` (whole seconds are reported as
    /// `expires_in`).
    pub fn set_token_lifetime(&self, lifetime: Duration) {
        lock(&self.state).token_lifetime = lifetime;
    }

    /// Expires every token issued so far: calls with them get 42001 (access_token expired).
    pub fn expire_tokens(&self) {
        for until in lock(&self.state).tokens.values_mut() {
            *until = None;
        }
    }

    /// How many token requests arrived (successful or not).
    pub fn token_requests(&self) -> usize {
        lock(&self.state).token_requests
    }

    /// Registers a media file to serve for `media_id`, with its `Content-Type`; it is sent with a
    /// `Content-disposition` file name of `{media_id}.{extension}`.
    pub fn add_media(&self, media_id: &str, bytes: impl Into<Vec<u8>>, content_type: &str) {
        lock(&self.state)
            .media
            .insert(media_id.to_owned(), (bytes.into(), content_type.to_owned()));
    }

    /// Answers the next `calls` media and message calls that carry a valid token with `errcode`
    /// (e.g. 45015, 43004, -1) instead of serving them; token requests are not affected.
    pub fn fail_next(&self, calls: usize, errcode: i64) {
        lock(&self.state).failures = (calls > 0).then_some((calls, errcode));
    }

    /// Every message accepted so far, oldest first.
    pub fn sent(&self) -> Vec<SentMessage> {
        lock(&self.state).sent.clone()
    }

    /// Stops the server and waits until it no longer listens.
    pub async fn stop(mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        if let Some(task) = self.task.take() {
            let abort = task.abort_handle();
            if tokio::time::timeout(Duration::from_secs(5), task)
                .await
                .is_err()
            {
                abort.abort();
            }
        }
    }
}

impl Drop for StandIn {
    fn drop(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
    }
}
