//! The WeChat official account's server URL (`/api/v1/channels/wechat`): the URL check (GET) and
//! follower messages (POST). WeChat expects an answer within 5 seconds and retries three times
//! otherwise, so a slow answer becomes a 503 while the work finishes in the background; the retry
//! then finds the message already handled (see `channels::wechat::account`).

use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use channels::wechat::account::{self, WechatError};
use jiff::Timestamp;

use super::App;

/// Answer before WeChat gives up on the request (5 s), leaving time for the network.
const ANSWER_WITHIN: Duration = Duration::from_millis(4500);

/// WeChat's server URL check: echoes `echostr` when the signature is right.
#[utoipa::path(get, path = "/api/v1/channels/wechat", tag = "channels",
    params(
        ("signature" = String, Query, description = "sha1 of the sorted token, timestamp and nonce"),
        ("timestamp" = String, Query), ("nonce" = String, Query), ("echostr" = String, Query),
    ),
    responses((status = 200, description = "the echostr, as text"), (status = 403, description = "bad signature or stale timestamp"), (status = 404, description = "WeChat is not configured")))]
pub async fn verify(State(app): State<App>, Query(q): Query<account::Query>) -> Response {
    let Some(wechat) = &app.wechat else {
        return not_configured();
    };
    match wechat.verify_url(&q, Timestamp::now()) {
        Ok(echo) => text(StatusCode::OK, echo),
        Err(e) => refuse(&e),
    }
}

/// A follower's message or event, plain or in safe mode; the answer is a passive reply in the
/// same mode, or `success`.
#[utoipa::path(post, path = "/api/v1/channels/wechat", tag = "channels",
    params(
        ("signature" = String, Query), ("timestamp" = String, Query), ("nonce" = String, Query),
        ("openid" = Option<String>, Query), ("encrypt_type" = Option<String>, Query, description = "`aes` in safe mode"),
        ("msg_signature" = Option<String>, Query, description = "safe mode: sha1 of the sorted token, timestamp, nonce and Encrypt"),
    ),
    request_body(content = String, content_type = "text/xml", description = "the message XML"),
    responses((status = 200, description = "passive reply XML, or `success`"), (status = 400, description = "not a WeChat message"), (status = 403, description = "forged or replayed"), (status = 503, description = "not answered in time; WeChat's retry gets the answer")))]
pub async fn receive(
    State(app): State<App>,
    Query(q): Query<account::Query>,
    body: Bytes,
) -> Response {
    let Some(wechat) = app.wechat.clone() else {
        return not_configured();
    };
    let now = Timestamp::now();
    // The work runs in its own task: a slow database must not cancel a half-done intake.
    let work = tokio::spawn(async move { wechat.receive(&q, &body, now).await });
    match tokio::time::timeout(ANSWER_WITHIN, work).await {
        Ok(Ok(Ok(reply))) => {
            metrics::counter!("hotline_wechat_messages_total", "outcome" => "answered")
                .increment(1);
            (
                [(header::CONTENT_TYPE, "application/xml; charset=utf-8")],
                reply,
            )
                .into_response()
        }
        Ok(Ok(Err(e))) => refuse(&e),
        Ok(Err(join)) => {
            tracing::error!(error = %join, "WeChat message handler failed");
            text(StatusCode::INTERNAL_SERVER_ERROR, "error".into())
        }
        Err(_) => {
            metrics::counter!("hotline_wechat_messages_total", "outcome" => "late").increment(1);
            tracing::warn!("WeChat message not answered within 4.5 s; WeChat will retry");
            text(StatusCode::SERVICE_UNAVAILABLE, "busy".into())
        }
    }
}

fn refuse(e: &WechatError) -> Response {
    let code = e.code();
    metrics::counter!("hotline_wechat_messages_total", "outcome" => code).increment(1);
    if e.is_refusal() {
        tracing::warn!(code, error = %e, "WeChat request refused");
        let status = match e {
            WechatError::Xml(_) => StatusCode::BAD_REQUEST,
            _ => StatusCode::FORBIDDEN,
        };
        text(status, code.into())
    } else {
        tracing::error!(code, error = %e, "WeChat message not handled; WeChat will retry");
        text(StatusCode::INTERNAL_SERVER_ERROR, code.into())
    }
}

fn not_configured() -> Response {
    super::problem::Problem::new(
        StatusCode::NOT_FOUND,
        "wechat_not_configured",
        "the WeChat official account is not configured: add [wechat] to hotline.toml or set HOTLINE_WECHAT_TOKEN and HOTLINE_WECHAT_APPID",
    )
    .into_response()
}

fn text(status: StatusCode, body: String) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        body,
    )
        .into_response()
}
