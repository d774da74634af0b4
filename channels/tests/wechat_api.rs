//! `channels::wechat::api` against the WeChat stand-in (`channels::wechat::standin`) and, for
//! replies no real server should send, against a raw TCP server written here: the access_token
//! is fetched once and shared, refreshed ahead of its expiry or when WeChat refuses it; media
//! arrive byte for byte; errors say whether a retry can help.

use std::collections::HashSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use channels::wechat::api::{
    ApiConfig, ApiError, Clock, DEFAULT_MAX_MEDIA_BYTES, REFRESH_AHEAD, TokenCache, WechatApi,
};
use channels::wechat::standin::{SentKind, StandIn};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::task::JoinSet;

// ---------------------------------------------------------------------------------------------
// Fixtures.

const APP_ID: &str = "wx5c4b3a2f1e0d9c8b";
const APP_SECRET: &str = "9f8e7d6c5b4a39281706f5e4d3c2b1a0";
/// A follower's openid (the shape WeChat's docs use).
const OPENID: &str = "o6_bmjrPTlm6_2sgVt7hMZOPfL2M";

fn config(base_url: &str) -> ApiConfig {
    let mut config = ApiConfig::new(APP_ID, APP_SECRET);
    config.base_url = base_url.to_owned();
    config.timeout = Duration::from_secs(5);
    config
}

/// A stand-in and a client pointed at it.
async fn wechat() -> (StandIn, WechatApi) {
    let standin = StandIn::start(APP_ID, APP_SECRET).await;
    let api = WechatApi::new(config(&standin.base_url())).expect("client");
    (standin, api)
}

/// A clock the test moves by hand.
struct ManualClock(Mutex<Instant>);

impl ManualClock {
    fn new() -> Arc<ManualClock> {
        Arc::new(ManualClock(Mutex::new(Instant::now())))
    }

    fn advance(&self, by: Duration) {
        *self.0.lock().unwrap() += by;
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Instant {
        *self.0.lock().unwrap()
    }
}

/// Bytes that are not text: a JPEG header followed by a pseudo-random body.
fn photo_bytes(len: usize) -> Vec<u8> {
    let mut bytes = vec![
        0xFF, 0xD8, 0xFF, 0xE0, 0x00, 0x10, b'J', b'F', b'I', b'F', 0x00,
    ];
    let mut x: u32 = 0x1234_5678;
    while bytes.len() < len {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        bytes.push(x as u8);
    }
    bytes.truncate(len);
    bytes
}

fn assert_api_error(result: Result<impl std::fmt::Debug, ApiError>, expected: i64) -> ApiError {
    match result {
        Err(err @ ApiError::Api { code, .. }) if code == expected => err,
        other => panic!("expected WeChat error {expected}, got {other:?}"),
    }
}

/// A one-request-per-connection HTTP server answering each request line with `answer`'s raw
/// bytes: for replies the stand-in never sends (garbage, chunked, silence).
async fn raw_server<F>(answer: F) -> String
where
    F: Fn(&str) -> Option<Vec<u8>> + Send + Sync + 'static,
{
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let answer = Arc::new(answer);
    tokio::spawn(async move {
        while let Ok((mut conn, _)) = listener.accept().await {
            let answer = answer.clone();
            tokio::spawn(async move {
                let mut head = Vec::new();
                let mut buf = [0u8; 4096];
                while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                    match conn.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => head.extend_from_slice(&buf[..n]),
                    }
                }
                let head = String::from_utf8_lossy(&head);
                let request_line = head.lines().next().unwrap_or("");
                match answer(request_line) {
                    Some(reply) => {
                        let _ = conn.write_all(&reply).await;
                        let _ = conn.shutdown().await;
                    }
                    // Silence: hold the connection open without answering.
                    None => tokio::time::sleep(Duration::from_secs(30)).await,
                }
            });
        }
    });
    base
}

/// A complete HTTP/1.1 response that closes the connection.
fn http(status: &str, content_type: &str, body: &[u8]) -> Vec<u8> {
    let mut reply = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )
    .into_bytes();
    reply.extend_from_slice(body);
    reply
}

fn token_reply() -> Vec<u8> {
    http(
        "200 OK",
        "application/json; encoding=utf-8",
        br#"{"access_token":"RAW_TOKEN_0123456789","expires_in":7200}"#,
    )
}

// ---------------------------------------------------------------------------------------------
// The access_token: fetched once, shared, refreshed.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twenty_concurrent_messages_share_one_token_request() {
    let (standin, api) = wechat().await;
    let mut calls = JoinSet::new();
    for i in 0..20 {
        let api = api.clone();
        calls.spawn(async move { api.send_text(OPENID, &format!("您的工单 {i} 已受理")).await });
    }
    while let Some(result) = calls.join_next().await {
        result.unwrap().expect("send_text");
    }

    assert_eq!(standin.token_requests(), 1);
    let sent = standin.sent();
    assert_eq!(sent.len(), 20);
    let texts: HashSet<_> = sent.iter().filter_map(|m| m.text()).collect();
    let expected: Vec<String> = (0..20).map(|i| format!("您的工单 {i} 已受理")).collect();
    assert_eq!(texts, expected.iter().map(String::as_str).collect());
    for message in &sent {
        assert_eq!(message.kind, SentKind::Custom);
        assert_eq!(message.touser, OPENID);
        assert_eq!(message.json["msgtype"], "text");
    }
}

#[tokio::test]
async fn the_token_is_reused_by_later_calls() {
    let (standin, api) = wechat().await;
    api.send_text(OPENID, "一").await.unwrap();
    api.send_template(OPENID, "TPL", None, &[("first", "二")])
        .await
        .unwrap();
    standin.add_media("M1", b"#!AMR\n".to_vec(), "audio/amr");
    api.download_media("M1").await.unwrap();
    assert_eq!(standin.token_requests(), 1);
    assert_eq!(standin.sent().len(), 2);
}

#[tokio::test]
async fn an_expired_token_is_refreshed_once_and_the_calls_succeed() {
    let (standin, api) = wechat().await;
    api.send_text(OPENID, "before").await.unwrap();
    assert_eq!(standin.token_requests(), 1);

    standin.expire_tokens();
    // Five callers hold the expired token at once; one refresh serves them all.
    let mut calls = JoinSet::new();
    for i in 0..5 {
        let api = api.clone();
        calls.spawn(async move { api.send_text(OPENID, &format!("after {i}")).await });
    }
    while let Some(result) = calls.join_next().await {
        result.unwrap().expect("send_text after the refresh");
    }

    assert_eq!(standin.token_requests(), 2);
    let sent = standin.sent();
    assert_eq!(sent.len(), 6);
    assert_eq!(sent[0].text(), Some("before"));
    let after: HashSet<_> = sent[1..].iter().filter_map(|m| m.text()).collect();
    assert_eq!(after.len(), 5);
}

#[tokio::test]
async fn a_refused_token_is_retried_exactly_once() {
    let (standin, api) = wechat().await;
    // Both the call and its retry are told the token expired.
    standin.fail_next(2, 42001);
    let err = assert_api_error(api.send_text(OPENID, "x").await, 42001);
    assert_eq!(err.code(), "wechat_api_token");
    assert_eq!(standin.token_requests(), 2, "one fetch, one refresh");
    assert!(standin.sent().is_empty());

    api.send_text(OPENID, "y").await.unwrap();
    assert_eq!(standin.token_requests(), 2);
    assert_eq!(standin.sent()[0].text(), Some("y"));
}

#[tokio::test]
async fn media_download_also_refreshes_a_refused_token() {
    let (standin, api) = wechat().await;
    standin.add_media("PHOTO", photo_bytes(1000), "image/jpeg");
    api.download_media("PHOTO").await.unwrap();
    standin.expire_tokens();
    let media = api.download_media("PHOTO").await.unwrap();
    assert_eq!(media.bytes, photo_bytes(1000));
    assert_eq!(standin.token_requests(), 2);
}

#[tokio::test]
async fn the_token_is_replaced_five_minutes_before_it_expires() {
    let standin = StandIn::start(APP_ID, APP_SECRET).await;
    let clock = ManualClock::new();
    let api = WechatApi::with_clock(config(&standin.base_url()), clock.clone()).unwrap();

    api.send_text(OPENID, "t=0").await.unwrap();
    clock.advance(Duration::from_secs(7200) - REFRESH_AHEAD - Duration::from_secs(1));
    api.send_text(OPENID, "t=6899").await.unwrap();
    assert_eq!(
        standin.token_requests(),
        1,
        "still fresh one second before the margin"
    );

    clock.advance(Duration::from_secs(2));
    api.send_text(OPENID, "t=6901").await.unwrap();
    assert_eq!(standin.token_requests(), 2, "replaced inside the margin");
    // The old token was still valid at WeChat: the refresh came from the client's clock.
    assert_eq!(standin.sent().len(), 3);

    clock.advance(Duration::from_secs(6000));
    api.send_text(OPENID, "t=12901").await.unwrap();
    assert_eq!(standin.token_requests(), 2, "the new token is fresh again");
}

#[tokio::test]
async fn a_short_lived_token_is_replaced_at_half_its_life() {
    let standin = StandIn::start(APP_ID, APP_SECRET).await;
    standin.set_token_lifetime(Duration::from_secs(120));
    let clock = ManualClock::new();
    let api = WechatApi::with_clock(config(&standin.base_url()), clock.clone()).unwrap();

    api.send_text(OPENID, "a").await.unwrap();
    clock.advance(Duration::from_secs(59));
    api.send_text(OPENID, "b").await.unwrap();
    assert_eq!(standin.token_requests(), 1);
    clock.advance(Duration::from_secs(2));
    api.send_text(OPENID, "c").await.unwrap();
    assert_eq!(standin.token_requests(), 2);
}

#[test]
fn token_cache_freshness_and_invalidation() {
    let t0 = Instant::now();
    let mut cache = TokenCache::new();
    assert_eq!(cache.fresh(t0), None);

    cache.store("A".into(), Duration::from_secs(7200), t0);
    let at = |secs| t0 + Duration::from_secs(secs);
    assert_eq!(cache.fresh(at(6899)).as_deref(), Some("A"));
    assert_eq!(cache.fresh(at(6900)), None, "due for replacement");
    assert_eq!(cache.usable(at(7199)).as_deref(), Some("A"), "still usable");
    assert_eq!(cache.usable(at(7200)), None, "expired");

    // A caller that used an older token must not throw away the one just fetched.
    assert!(!cache.invalidate("OLD"));
    assert_eq!(cache.fresh(t0).as_deref(), Some("A"));
    assert!(cache.invalidate("A"));
    assert_eq!(cache.usable(t0), None);

    // Degenerate lifetimes do not panic.
    cache.store("Z".into(), Duration::ZERO, t0);
    assert_eq!(cache.fresh(t0), None);
    cache.store("M".into(), Duration::from_secs(u32::MAX as u64), t0);
    assert_eq!(cache.fresh(at(1)).as_deref(), Some("M"));
}

#[tokio::test]
async fn concurrent_callers_share_a_failed_token_request() {
    let token_requests = Arc::new(AtomicUsize::new(0));
    let counter = token_requests.clone();
    let base = raw_server(move |line| {
        assert!(line.contains("/cgi-bin/token"), "{line}");
        counter.fetch_add(1, Ordering::SeqCst);
        Some(http(
            "200 OK",
            "application/json",
            br#"{"errcode":-1,"errmsg":"system error"}"#,
        ))
    })
    .await;
    let api = WechatApi::new(config(&base)).unwrap();

    let mut calls = JoinSet::new();
    for _ in 0..10 {
        let api = api.clone();
        calls.spawn(async move { api.send_text(OPENID, "x").await });
    }
    while let Some(result) = calls.join_next().await {
        let err = assert_api_error(result.unwrap(), -1);
        assert!(err.is_retryable());
    }
    assert_eq!(token_requests.load(Ordering::SeqCst), 1);

    // A later call asks again.
    assert_api_error(api.send_text(OPENID, "x").await, -1);
    assert_eq!(token_requests.load(Ordering::SeqCst), 2);
}

// ---------------------------------------------------------------------------------------------
// Credentials.

#[tokio::test]
async fn a_wrong_secret_is_a_clear_permanent_error() {
    let standin = StandIn::start(APP_ID, APP_SECRET).await;
    let mut wrong = config(&standin.base_url());
    wrong.app_secret = "not-the-secret-0000000000000000".into();
    let api = WechatApi::new(wrong).unwrap();

    let err = assert_api_error(api.send_text(OPENID, "x").await, 40001);
    assert!(!err.is_retryable());
    assert_eq!(err.code(), "wechat_api_credentials");
    let shown = err.to_string();
    assert!(
        shown.contains("40001") && shown.contains("invalid credential"),
        "{shown}"
    );
    assert!(!shown.contains("not-the-secret"), "{shown}");
    assert!(standin.sent().is_empty());
    // A token request refused for its secret is not mistaken for a stale token and retried.
    assert_eq!(standin.token_requests(), 1);
}

#[tokio::test]
async fn a_wrong_app_id_is_40013() {
    let standin = StandIn::start(APP_ID, APP_SECRET).await;
    let mut wrong = config(&standin.base_url());
    wrong.app_id = "wx0000000000000000".into();
    let api = WechatApi::new(wrong).unwrap();
    let err = assert_api_error(api.download_media("M").await, 40013);
    assert!(!err.is_retryable());
    assert!(err.to_string().contains("invalid AppID"), "{err}");
}

#[test]
fn a_bad_configuration_is_refused_up_front() {
    for base in ["not a url", "ftp://api.weixin.qq.com", "mailto:x@y"] {
        let err = WechatApi::new(config(base)).unwrap_err();
        assert_eq!(err.code(), "wechat_api_config", "{base}: {err}");
    }
    let mut no_secret = config("http://127.0.0.1:1");
    no_secret.app_secret.clear();
    assert!(matches!(
        WechatApi::new(no_secret),
        Err(ApiError::Config(_))
    ));
}

#[test]
fn the_secret_is_never_shown() {
    let shown = format!("{:?}", config("http://127.0.0.1:1"));
    assert!(!shown.contains(APP_SECRET), "{shown}");
    assert!(shown.contains(APP_ID));
    let client = WechatApi::new(config("http://127.0.0.1:1")).unwrap();
    assert!(!format!("{client:?}").contains(APP_SECRET));
}

#[tokio::test]
async fn a_base_url_with_a_path_keeps_it() {
    // A reverse proxy in front of WeChat: http://proxy/wechat/cgi-bin/...
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    let base = raw_server(move |line| {
        log.lock().unwrap().push(line.to_owned());
        Some(token_reply())
    })
    .await;
    let api = WechatApi::new(config(&format!("{base}/wechat/"))).unwrap();
    // The token reply is not a send reply (no errcode): the call fails, but the path is right.
    let _ = api.send_text(OPENID, "x").await;
    let seen = seen.lock().unwrap();
    assert!(
        seen[0].starts_with("GET /wechat/cgi-bin/token?"),
        "{seen:?}"
    );
    assert!(
        seen[1].starts_with("POST /wechat/cgi-bin/message/custom/send?access_token=RAW_TOKEN"),
        "{seen:?}"
    );
}

// ---------------------------------------------------------------------------------------------
// Media.

#[tokio::test]
async fn media_arrives_byte_for_byte_with_its_type_and_name() {
    let (standin, api) = wechat().await;
    let photo = photo_bytes(300 * 1024);
    let voice = b"#!AMR\n\x3c\x48\xf5\x1f\x96\x66\x79\xe1\xe0\x01\xe7\xcf\xf0".to_vec();
    standin.add_media("MEDIA_photo_1", photo.clone(), "image/jpeg");
    standin.add_media("MEDIA_voice_1", voice.clone(), "audio/amr");

    let media = api.download_media("MEDIA_photo_1").await.unwrap();
    assert_eq!(media.bytes, photo);
    assert_eq!(media.content_type.as_deref(), Some("image/jpeg"));
    assert_eq!(media.file_name.as_deref(), Some("MEDIA_photo_1.jpg"));

    let media = api.download_media("MEDIA_voice_1").await.unwrap();
    assert_eq!(media.bytes, voice);
    assert_eq!(media.content_type.as_deref(), Some("audio/amr"));
    assert_eq!(media.file_name.as_deref(), Some("MEDIA_voice_1.amr"));
}

#[tokio::test]
async fn unknown_media_is_40007_not_bytes() {
    let (_standin, api) = wechat().await;
    let err = assert_api_error(api.download_media("MEDIA_gone").await, 40007);
    assert!(!err.is_retryable());
    assert_eq!(err.code(), "wechat_api_invalid_media");
}

#[tokio::test]
async fn an_error_sent_as_text_plain_is_still_an_error() {
    // WeChat's media/get answers errors with `Content-Type: text/plain` and a JSON body.
    let base = raw_server(|line| {
        Some(if line.contains("/cgi-bin/token") {
            token_reply()
        } else {
            http(
                "200 OK",
                "text/plain",
                br#"{"errcode":40007,"errmsg":"invalid media_id hint: [xyz]"}"#,
            )
        })
    })
    .await;
    let api = WechatApi::new(config(&base)).unwrap();
    let err = assert_api_error(api.download_media("M").await, 40007);
    assert!(err.to_string().contains("invalid media_id hint"), "{err}");
}

#[tokio::test]
async fn media_larger_than_the_limit_is_refused() {
    let standin = StandIn::start(APP_ID, APP_SECRET).await;
    let mut small = config(&standin.base_url());
    small.max_media_bytes = 1024;
    let api = WechatApi::new(small).unwrap();
    standin.add_media("FITS", photo_bytes(1024), "image/jpeg");
    standin.add_media("BIG", photo_bytes(1025), "image/jpeg");

    assert_eq!(api.download_media("FITS").await.unwrap().bytes.len(), 1024);
    let err = api.download_media("BIG").await.unwrap_err();
    assert_eq!(err, ApiError::TooLarge { limit: 1024 });
    assert!(!err.is_retryable());
    assert_eq!(DEFAULT_MAX_MEDIA_BYTES, 20 * 1024 * 1024);
}

#[tokio::test]
async fn a_chunked_body_without_a_length_is_cut_off_at_the_limit() {
    let base = raw_server(|line| {
        Some(if line.contains("/cgi-bin/token") {
            token_reply()
        } else {
            let mut reply = b"HTTP/1.1 200 OK\r\nContent-Type: image/jpeg\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n".to_vec();
            for _ in 0..64 {
                reply.extend_from_slice(b"400\r\n");
                reply.extend_from_slice(&[0xAB; 0x400]);
                reply.extend_from_slice(b"\r\n");
            }
            reply.extend_from_slice(b"0\r\n\r\n");
            reply
        })
    })
    .await;
    let mut small = config(&base);
    small.max_media_bytes = 10_000;
    let api = WechatApi::new(small).unwrap();
    assert_eq!(
        api.download_media("M").await.unwrap_err(),
        ApiError::TooLarge { limit: 10_000 }
    );
}

// ---------------------------------------------------------------------------------------------
// Messages.

#[tokio::test]
async fn a_template_message_carries_its_fields_and_returns_the_msgid() {
    let (standin, api) = wechat().await;
    let fields = [
        ("first", "您反映的问题已办结"),
        ("keyword1", "12345-20240611-0042"),
        ("keyword2", "已办结"),
        ("keyword3", "2024-06-11 16:20"),
        ("remark", "如不满意，请回复“不满意”。"),
    ];
    let msgid = api
        .send_template(
            OPENID,
            "TPL_status_change",
            Some("https://example.gov.cn/t/42"),
            &fields,
        )
        .await
        .unwrap();
    assert_eq!(msgid, 200_228_332);
    let second = api
        .send_template(OPENID, "TPL_status_change", None, &fields[..1])
        .await
        .unwrap();
    assert_eq!(second, 200_228_333);

    let sent = standin.sent();
    assert_eq!(sent.len(), 2);
    let message = &sent[0];
    assert_eq!(message.kind, SentKind::Template);
    assert_eq!(message.touser, OPENID);
    assert_eq!(message.template_id(), Some("TPL_status_change"));
    assert_eq!(message.url(), Some("https://example.gov.cn/t/42"));
    for (name, value) in fields {
        assert_eq!(message.field(name), Some(value), "{name}");
    }
    assert_eq!(sent[1].url(), None);
    assert!(
        sent[1].json.get("url").is_none(),
        "no url key without a url"
    );
    assert_eq!(sent[1].field("keyword1"), None);
}

#[tokio::test]
async fn a_closed_window_is_permanent_and_a_busy_server_is_retryable() {
    let (standin, api) = wechat().await;
    let permanent = [
        (45015, "wechat_api_window_closed"),
        (45047, "wechat_api_quota"),
        (43004, "wechat_api_unfollowed"),
        (40003, "wechat_api_invalid_openid"),
    ];
    for (code, stable) in permanent {
        standin.fail_next(1, code);
        let err = assert_api_error(api.send_text(OPENID, "工单已办结").await, code);
        assert!(!err.is_retryable(), "{code}");
        assert_eq!(err.code(), stable);
    }
    standin.fail_next(1, -1);
    let err = assert_api_error(
        api.send_template(OPENID, "TPL", None, &[("first", "x")])
            .await,
        -1,
    );
    assert!(err.is_retryable());
    assert_eq!(err.code(), "wechat_api_busy");
    assert!(err.to_string().contains("busy"), "{err}");

    assert!(
        standin.sent().is_empty(),
        "refused messages are not recorded"
    );
    assert_eq!(
        standin.token_requests(),
        1,
        "these errors do not refresh the token"
    );
    api.send_text(OPENID, "重试成功").await.unwrap();
    assert_eq!(standin.sent()[0].text(), Some("重试成功"));
}

#[tokio::test]
async fn an_empty_openid_is_refused_by_the_stand_in_as_wechat_does() {
    let (standin, api) = wechat().await;
    assert_api_error(api.send_text("", "x").await, 40003);
    assert_api_error(api.send_template(OPENID, "", None, &[]).await, 40037);
    assert!(standin.sent().is_empty());
}

// ---------------------------------------------------------------------------------------------
// Transport and garbage.

#[tokio::test]
async fn a_stand_in_that_is_down_is_a_retryable_transport_error() {
    let (standin, api) = wechat().await;
    api.send_text(OPENID, "up").await.unwrap();
    standin.stop().await;

    let err = api.send_text(OPENID, "down").await.unwrap_err();
    assert!(
        matches!(err, ApiError::Transport { timeout: false, .. }),
        "{err:?}"
    );
    assert!(err.is_retryable());
    assert_eq!(err.code(), "wechat_api_unreachable");

    // Fetching a token from a server that is down does not leak the secret into the error.
    let base = api_base_of_down_server().await;
    let fresh = WechatApi::new(config(&base)).unwrap();
    let err = fresh.download_media("M").await.unwrap_err();
    assert!(matches!(err, ApiError::Transport { .. }), "{err:?}");
    let shown = format!("{err} {err:?}");
    assert!(!shown.contains(APP_SECRET), "{shown}");
    assert!(!shown.contains("access_token="), "{shown}");
}

/// The address of a port nobody listens on.
async fn api_base_of_down_server() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    format!("http://{addr}")
}

#[tokio::test]
async fn a_silent_server_times_out() {
    let base = raw_server(|_| None).await;
    let mut quick = config(&base);
    quick.timeout = Duration::from_millis(300);
    let api = WechatApi::new(quick).unwrap();
    let err = api.send_text(OPENID, "x").await.unwrap_err();
    assert!(
        matches!(err, ApiError::Transport { timeout: true, .. }),
        "{err:?}"
    );
    assert_eq!(err.code(), "wechat_api_timeout");
    assert!(err.is_retryable());
}

#[tokio::test]
async fn garbage_replies_are_errors_not_panics() {
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        (
            "html token reply",
            http("200 OK", "text/html", b"<html>nginx</html>"),
            "wechat_api_bad_reply",
        ),
        (
            "token without expiry",
            http("200 OK", "application/json", br#"{"access_token":"T"}"#),
            "wechat_api_bad_reply",
        ),
        (
            "wrong types",
            http(
                "200 OK",
                "application/json",
                br#"{"errcode":"zero","access_token":7}"#,
            ),
            "wechat_api_bad_reply",
        ),
        (
            "huge token reply",
            http("200 OK", "application/json", &vec![b' '; 1 << 20]),
            "wechat_api_too_large",
        ),
        (
            "gateway error",
            http("502 Bad Gateway", "text/html", b"<h1>502</h1>"),
            "wechat_api_http_status",
        ),
        (
            "truncated",
            b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n{\"access".to_vec(),
            "wechat_api_unreachable",
        ),
        (
            "not http",
            b"SSH-2.0-OpenSSH_9.6\r\n".to_vec(),
            "wechat_api_unreachable",
        ),
    ];
    for (name, reply, code) in cases {
        let base = raw_server(move |_| Some(reply.clone())).await;
        let api = WechatApi::new(config(&base)).unwrap();
        let err = api.send_text(OPENID, "x").await.unwrap_err();
        assert_eq!(err.code(), code, "{name}: {err:?}");
        if code != "wechat_api_too_large" {
            assert!(err.is_retryable(), "{name}");
        }
    }
}

#[tokio::test]
async fn a_media_reply_that_is_text_but_not_json_is_refused() {
    let base = raw_server(|line| {
        Some(if line.contains("/cgi-bin/token") {
            token_reply()
        } else {
            http("200 OK", "text/plain; charset=utf-8", b"system maintenance")
        })
    })
    .await;
    let api = WechatApi::new(config(&base)).unwrap();
    let err = api.download_media("M").await.unwrap_err();
    assert!(matches!(err, ApiError::BadReply(_)), "{err:?}");
}
