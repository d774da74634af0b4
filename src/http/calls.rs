//! `/api/v1/calls`: call detail records and their recordings.
//!
//! Reading CDRs is for the roles that call citizens back (they see full numbers); listening to a
//! recording is for agents and supervisors only, and every attempt — allowed or not, whole file or
//! a byte range — is written to the audit log before a byte is sent.

use std::net::SocketAddr;

use axum::body::Body;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use jiff::Timestamp;
use serde::Deserialize;
use serde_json::json;
use ticketing::calls::recording_file;
use ticketing::store::Page;
use ticketing::{AuditEntry, Call, CallFilter, EndedBy, Role};
use tower_http::services::ServeFile;
use utoipa::IntoParams;

use super::App;
use super::audit::audited;
use super::problem::{ApiPath, ApiQuery, Problem};
use super::session::CurrentUser;

/// Who may read call detail records. Every one of these roles may see full phone numbers
/// ([`Role::sees_phone_numbers`]), so CDRs are shown unmasked.
const CALL_READERS: &[Role] = &[Role::Supervisor, Role::Agent, Role::Admin];

/// Who may listen to recordings.
const RECORDING_LISTENERS: &[Role] = &[Role::Supervisor, Role::Agent];

/// Audit action of a recording request that was let through (whatever the file answered).
const PLAY: &str = "recording.play";
/// Audit action of a recording request refused for the user's role.
const DENIED: &str = "recording.denied";

/// Call list filters.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct CallQuery {
    /// Routed to this hotline (`12319`).
    pub hotline: Option<String>,
    /// Part of the caller's or the dialed number (spaces and dashes ignored).
    pub number: Option<String>,
    /// Started at or after (RFC 3339).
    #[param(value_type = Option<String>, format = DateTime)]
    pub since: Option<Timestamp>,
    /// Started before (RFC 3339).
    #[param(value_type = Option<String>, format = DateTime)]
    pub until: Option<Timestamp>,
    /// Only answered (`true`) or only unanswered (`false`) calls.
    pub answered: Option<bool>,
    /// Ended by `caller`, `hotline` or `system`.
    pub ended_by: Option<EndedBy>,
    /// Page, from 1.
    pub page: Option<u32>,
    /// Page size, 1 to 200 (default 50).
    pub per_page: Option<u32>,
}

/// Searches call detail records, newest first.
#[utoipa::path(get, path = "/api/v1/calls", tag = "calls",
    params(CallQuery),
    responses(
        (status = 200, body = Page<Call>),
        (status = 400, body = Problem),
        (status = 403, description = "Role may not read calls", body = Problem),
    ),
    security(("bearer" = []), ("cookie" = [])))]
pub async fn list(
    State(app): State<App>,
    user: CurrentUser,
    ApiQuery(q): ApiQuery<CallQuery>,
) -> Result<axum::Json<Page<Call>>, Problem> {
    user.require(CALL_READERS)?;
    let filter = CallFilter {
        hotline: q.hotline.filter(|s| !s.is_empty()),
        number: q.number.filter(|s| !s.trim().is_empty()),
        since: q.since,
        until: q.until,
        answered: q.answered,
        ended_by: q.ended_by,
    };
    let page = app
        .tickets
        .store()
        .list_calls(&filter, q.page.unwrap_or(1), q.per_page.unwrap_or(50))
        .await?;
    Ok(axum::Json(page))
}

/// One call detail record.
#[utoipa::path(get, path = "/api/v1/calls/{id}", tag = "calls",
    params(("id" = i64, Path, description = "Call id (not the SIP Call-ID)")),
    responses(
        (status = 200, body = Call),
        (status = 403, body = Problem),
        (status = 404, body = Problem),
    ),
    security(("bearer" = []), ("cookie" = [])))]
pub async fn get(
    State(app): State<App>,
    user: CurrentUser,
    ApiPath(id): ApiPath<i64>,
) -> Result<axum::Json<Call>, Problem> {
    user.require(CALL_READERS)?;
    let call = app
        .tickets
        .store()
        .get_call(id)
        .await?
        .ok_or_else(|| call_not_found(id))?;
    Ok(axum::Json(call))
}

/// The call's recording (stereo WAV), whole or a byte range (`Range`, `If-Range`, `HEAD`).
/// Every request is written to the audit log with the user, the range and the client address.
#[utoipa::path(get, path = "/api/v1/calls/{id}/recording", tag = "calls",
    params(
        ("id" = i64, Path, description = "Call id"),
        ("Range" = Option<String>, Header, description = "One byte range, e.g. `bytes=0-65535`"),
    ),
    responses(
        (status = 200, description = "The whole recording", content_type = "audio/wav"),
        (status = 206, description = "The range asked for", content_type = "audio/wav"),
        (status = 403, description = "Only agents and supervisors may listen", body = Problem),
        (status = 404, description = "No such call, no recording, or the file is gone", body = Problem),
        (status = 416, description = "Range outside the file"),
    ),
    security(("bearer" = []), ("cookie" = [])))]
pub async fn recording(
    State(app): State<App>,
    user: CurrentUser,
    ApiPath(id): ApiPath<i64>,
    request: Request,
) -> Result<Response, Problem> {
    let mut entry = AuditEntry::by(
        &user.0.actor(),
        Timestamp::now(),
        PLAY,
        format!("call:{id}"),
    );
    entry.address = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(peer)| peer.ip().to_string());
    let headers = request.headers();
    entry.detail = json!({
        "method": request.method().as_str(),
        "range": header_text(headers, header::RANGE),
        "if_range": header_text(headers, header::IF_RANGE),
        // Unverified (any client can send it); kept for the reader of the log behind a proxy.
        "forwarded_for": header_text(headers, "x-forwarded-for"),
    });
    let served = serve_recording(&app, &user, id, request).await;
    audited(&app, entry, DENIED, served, Response::status).await
}

async fn serve_recording(
    app: &App,
    user: &CurrentUser,
    id: i64,
    request: Request,
) -> Result<Response, Problem> {
    user.require(RECORDING_LISTENERS)?;
    let call = app
        .tickets
        .store()
        .get_call(id)
        .await?
        .ok_or_else(|| call_not_found(id))?;
    let stored = call.recording_path.ok_or_else(|| {
        Problem::new(
            StatusCode::NOT_FOUND,
            "no_recording",
            format!("call {id} has no recording"),
        )
    })?;
    let path = recording_file(&app.data_dir, &stored).map_err(|e| {
        tracing::error!(call = id, error = %e, "refusing to serve a recording outside the data directory");
        Problem::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "recording_path_refused",
            format!("the stored recording path of call {id} is not inside the data directory; the row needs repair"),
        )
    })?;
    let gone = || {
        Problem::new(
            StatusCode::NOT_FOUND,
            "recording_missing",
            format!("the recording of call {id} is no longer on disk"),
        )
    };
    let modified = match tokio::fs::metadata(&path).await {
        Ok(meta) if meta.is_file() => meta.modified().ok(),
        Ok(_) => return Err(gone()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(gone()),
        Err(e) => return Err(Problem::internal(&e)),
    };
    let (mut parts, _) = request.into_parts();
    if !if_range_holds(&parts.headers, modified) {
        parts.headers.remove(header::RANGE);
    }
    let mut response = ServeFile::new(&path)
        .try_call(Request::from_parts(parts, Body::empty()))
        .await
        .map_err(|e| Problem::internal(&e))?
        .map(Body::new);
    if response.status() == StatusCode::NOT_FOUND {
        // Removed between the look and the open.
        return Err(gone());
    }
    let success = response.status().is_success();
    let headers = response.headers_mut();
    if success {
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("audio/wav"));
    }
    // A cached copy would be a play nobody audited.
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(response.into_response())
}

/// `If-Range` (RFC 9110 §13.1.5): a range applies only while the file is the one the client saw.
/// We send no entity tags, so only a date equal to the file's `Last-Modified` keeps the range;
/// anything else (or no date to compare) means the whole file is sent.
fn if_range_holds(headers: &HeaderMap, modified: Option<std::time::SystemTime>) -> bool {
    let Some(value) = headers.get(header::IF_RANGE) else {
        return true;
    };
    let (Some(value), Some(modified)) = (value.to_str().ok(), modified) else {
        return false;
    };
    let Ok(asked) = jiff::fmt::rfc2822::DateTimeParser::new().parse_timestamp(value.trim()) else {
        return false;
    };
    Timestamp::try_from(modified).is_ok_and(|m| m.as_second() == asked.as_second())
}

fn header_text(headers: &HeaderMap, name: impl header::AsHeaderName) -> Option<String> {
    headers.get(name).map(|v| {
        String::from_utf8_lossy(v.as_bytes())
            .chars()
            .take(200)
            .collect()
    })
}

/// The 404 of a call id with no record.
pub(super) fn call_not_found(id: i64) -> Problem {
    Problem::new(
        StatusCode::NOT_FOUND,
        "call_not_found",
        format!("call {id} not found"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn call_readers_see_full_numbers() {
        assert!(CALL_READERS.iter().all(|r| r.sees_phone_numbers()));
        assert!(RECORDING_LISTENERS.iter().all(|r| CALL_READERS.contains(r)));
    }

    #[test]
    fn if_range_keeps_the_range_only_for_the_same_date() {
        let modified: std::time::SystemTime = "2026-11-23T01:02:03.5Z"
            .parse::<Timestamp>()
            .unwrap()
            .into();
        let with = |v: &str| {
            let mut h = HeaderMap::new();
            h.insert(header::IF_RANGE, HeaderValue::from_str(v).unwrap());
            h
        };
        assert!(if_range_holds(&HeaderMap::new(), Some(modified)));
        assert!(if_range_holds(
            &with("Mon, 23 Nov 2026 01:02:03 GMT"),
            Some(modified)
        ));
        assert!(!if_range_holds(
            &with("Mon, 23 Nov 2026 01:02:04 GMT"),
            Some(modified)
        ));
        assert!(!if_range_holds(&with("\"v1\""), Some(modified)));
        assert!(!if_range_holds(
            &with("Mon, 23 Nov 2026 01:02:03 GMT"),
            None
        ));
    }
}
