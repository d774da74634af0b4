//! Transcripts of recordings: a call's (`/api/v1/calls/{id}/transcript`, JSON, SRT or text), a
//! ticket's (its voicemail and the calls linked to it), full-text search across all of them, and
//! the transcription queue for supervisors (status, failed jobs, "transcribe again").
//!
//! A transcript says what a recording says, so it is read by the roles that may listen to
//! recordings (agents and supervisors), and every read and search — allowed or not — is written
//! to the audit log before the answer is sent.

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use jiff::Timestamp;
use serde::Deserialize;
use serde_json::json;
use ticketing::transcripts::{
    JobState, Speaker, StoredTranscript, TranscriptHit, TranscriptionJob,
};
use ticketing::{AuditEntry, Role, TicketNumber};
use utoipa::{IntoParams, ToSchema};

use super::App;
use super::audit::audited;
use super::calls::call_not_found;
use super::problem::{ApiPath, ApiQuery, Problem};
use super::session::CurrentUser;
use crate::transcription::worker::Status;

/// Who may read and search transcripts: those who may listen to the recordings.
const READERS: &[Role] = &[Role::Supervisor, Role::Agent];

/// Audit action of a read or search refused for the user's role.
const DENIED: &str = "transcript.denied";

/// Who may see the queue and queue a recording again.
const OPERATORS: &[Role] = &[Role::Supervisor, Role::Admin];

/// How a transcript is sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum TranscriptFormat {
    /// The stored transcript with its segments.
    Json,
    /// Subtitles, the speaker (市民 / 话务员) before each cue: plays beside the recording.
    Srt,
    /// One line per segment: `[mm:ss] 市民：…`.
    Txt,
}

/// `?format=` of a transcript.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct TranscriptQuery {
    /// `json` (default), `srt` or `txt`; without it, `Accept: application/x-subrip` or
    /// `text/plain` choose SRT or text.
    pub format: Option<TranscriptFormat>,
}

/// The transcript of a call's recording: merged caller and hotline segments with times. A call
/// that only left a voicemail answers with the voicemail's (the caller's segments only).
#[utoipa::path(get, path = "/api/v1/calls/{id}/transcript", tag = "transcripts",
    params(("id" = i64, Path, description = "Call id"), TranscriptQuery),
    responses(
        (status = 200, body = StoredTranscript, description = "JSON, or SRT / text as asked"),
        (status = 403, description = "Only agents and supervisors may read transcripts", body = Problem),
        (status = 404, description = "No such call, no recording, or not transcribed yet (the detail says where its job stands)", body = Problem),
    ),
    security(("bearer" = []), ("cookie" = [])))]
pub async fn for_call(
    State(app): State<App>,
    user: CurrentUser,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    ApiPath(id): ApiPath<i64>,
    ApiQuery(q): ApiQuery<TranscriptQuery>,
) -> Result<Response, Problem> {
    let format = q.format.unwrap_or_else(|| from_accept(&headers));
    let result = async {
        user.require(READERS)?;
        let store = app.tickets.store();
        let call = store
            .get_call(id)
            .await?
            .ok_or_else(|| call_not_found(id))?;
        if let Some(t) = store.transcript_for_call(id).await? {
            return Ok(t);
        }
        match store.transcription_job_for_call(id).await? {
            Some(job) => Err(not_transcribed(&format!("call {id}"), Some(job))),
            None if call.recording_path.is_none() => Err(Problem::new(
                StatusCode::NOT_FOUND,
                "no_recording",
                format!("call {id} has no recording"),
            )),
            None => Err(not_transcribed(&format!("call {id}"), None)),
        }
    }
    .await;
    let detail = json!({ "format": format_name(format) });
    let entry = read_entry(&user, peer, "transcript.read", format!("call:{id}"), detail);
    let transcript = audited(&app, entry, DENIED, result, |_| StatusCode::OK).await?;
    Ok(render(transcript, format))
}

/// The transcripts of a ticket's recordings: its voicemail and the calls linked to it.
#[utoipa::path(get, path = "/api/v1/tickets/{number}/transcripts", tag = "transcripts",
    params(("number" = String, Path, description = "Ticket number")),
    responses(
        (status = 200, body = Vec<StoredTranscript>),
        (status = 403, body = Problem),
        (status = 404, description = "No such ticket", body = Problem),
    ),
    security(("bearer" = []), ("cookie" = [])))]
pub async fn for_ticket(
    State(app): State<App>,
    user: CurrentUser,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    ApiPath(number): ApiPath<String>,
) -> Result<axum::Json<Vec<StoredTranscript>>, Problem> {
    let result = async {
        user.require(READERS)?;
        let ticket = app.tickets.get(&number, &user.0.actor()).await?;
        Ok(app
            .tickets
            .store()
            .transcripts_for_ticket(ticket.id)
            .await?)
    }
    .await;
    let target = match TicketNumber::parse(&number) {
        Ok(n) => format!("ticket:{n}"),
        Err(_) => "ticket:?".to_owned(),
    };
    let entry = read_entry(&user, peer, "transcript.read", target, json!({}));
    let transcripts = audited(&app, entry, DENIED, result, |_| StatusCode::OK).await?;
    Ok(axum::Json(transcripts))
}

/// `?q=` of a search.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SearchQuery {
    /// The words to find, as said (`井盖`, `渣土车`, `street light`); case does not matter.
    pub q: String,
    /// At most this many (1–100, default 20).
    pub limit: Option<u32>,
}

/// Transcripts that contain the words, newest first, each with the text around the first match
/// and where in the recording it is said.
#[utoipa::path(get, path = "/api/v1/transcripts", tag = "transcripts",
    params(SearchQuery),
    responses(
        (status = 200, body = Vec<TranscriptHit>),
        (status = 400, description = "No words, or more than 100 characters", body = Problem),
        (status = 403, body = Problem),
    ),
    security(("bearer" = []), ("cookie" = [])))]
pub async fn search(
    State(app): State<App>,
    user: CurrentUser,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    ApiQuery(q): ApiQuery<SearchQuery>,
) -> Result<axum::Json<Vec<TranscriptHit>>, Problem> {
    let words = q.q.trim().to_owned();
    let result = async {
        user.require(READERS)?;
        if words.is_empty() {
            return Err(Problem::new(
                StatusCode::BAD_REQUEST,
                "empty_query",
                "q: give the words to look for",
            ));
        }
        if words.chars().count() > 100 {
            return Err(Problem::new(
                StatusCode::BAD_REQUEST,
                "query_too_long",
                "q: at most 100 characters",
            ));
        }
        Ok(app
            .tickets
            .store()
            .search_transcripts(&words, q.limit.unwrap_or(20))
            .await?)
    }
    .await;
    let detail = json!({ "q": words.chars().take(100).collect::<String>() });
    let entry = read_entry(&user, peer, "transcript.search", "transcripts", detail);
    let hits = audited(&app, entry, DENIED, result, |_| StatusCode::OK).await?;
    Ok(axum::Json(hits))
}

/// Where transcription stands: this node's workers and model, and the queue across all nodes.
#[utoipa::path(get, path = "/api/v1/transcription", tag = "transcripts",
    responses((status = 200, body = Status), (status = 403, body = Problem)),
    security(("bearer" = []), ("cookie" = [])))]
pub async fn status(
    State(app): State<App>,
    user: CurrentUser,
) -> Result<axum::Json<Status>, Problem> {
    user.require(OPERATORS)?;
    let mut status = app
        .transcription
        .as_ref()
        .map(|t| t.status())
        .unwrap_or_default();
    status.backlog = app.tickets.store().transcription_backlog().await?;
    Ok(axum::Json(status))
}

/// `?state=` of the job list.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct JobQuery {
    /// `queued`, `running`, `done` or `failed` (default).
    pub state: Option<JobState>,
    /// At most this many (1–200, default 50).
    pub limit: Option<u32>,
}

/// Transcription jobs in one state, newest first: the failed ones with their last error.
#[utoipa::path(get, path = "/api/v1/transcription/jobs", tag = "transcripts",
    params(JobQuery),
    responses((status = 200, body = Vec<TranscriptionJob>), (status = 403, body = Problem)),
    security(("bearer" = []), ("cookie" = [])))]
pub async fn jobs(
    State(app): State<App>,
    user: CurrentUser,
    ApiQuery(q): ApiQuery<JobQuery>,
) -> Result<axum::Json<Vec<TranscriptionJob>>, Problem> {
    user.require(OPERATORS)?;
    let jobs = app
        .tickets
        .store()
        .list_transcription_jobs(
            q.state.unwrap_or(JobState::Failed),
            q.limit.unwrap_or(50).clamp(1, 200),
        )
        .await?;
    Ok(axum::Json(jobs))
}

/// Transcribes a recording again: a failed job once its cause is fixed, or a done one with a
/// better model (the new transcript replaces the old). Audited.
#[utoipa::path(post, path = "/api/v1/transcription/jobs/{id}/retry", tag = "transcripts",
    params(("id" = i64, Path, description = "Job id")),
    responses(
        (status = 200, body = TranscriptionJob, description = "Queued to run now"),
        (status = 403, body = Problem),
        (status = 404, body = Problem),
        (status = 409, description = "A worker is transcribing it", body = Problem),
    ),
    security(("bearer" = []), ("cookie" = [])))]
pub async fn retry(
    State(app): State<App>,
    user: CurrentUser,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    ApiPath(id): ApiPath<i64>,
) -> Result<axum::Json<TranscriptionJob>, Problem> {
    user.require(OPERATORS)?;
    let store = app.tickets.store();
    let now = Timestamp::now();
    let Some(before) = store.transcription_job(id).await? else {
        return Err(Problem::new(
            StatusCode::NOT_FOUND,
            "job_not_found",
            format!("transcription job {id} not found"),
        ));
    };
    let Some(job) = store.requeue_transcription(id, now).await? else {
        return Err(Problem::new(
            StatusCode::CONFLICT,
            "job_running",
            format!(
                "transcription job {id} is being transcribed by {}",
                before.claimed_by.as_deref().unwrap_or("a worker")
            ),
        ));
    };
    let mut entry = AuditEntry::by(
        &user.0.actor(),
        now,
        "transcription.retry",
        format!("transcription_job:{id}"),
    );
    entry.address = Some(peer.ip().to_string());
    entry.detail = json!({ "state": before.state, "attempts": before.attempts, "last_error": before.last_error });
    store.write_audit(&entry).await?;
    Ok(axum::Json(job))
}

/// The 404 for a recording without a transcript, saying where its job stands.
fn not_transcribed(what: &str, job: Option<TranscriptionJob>) -> Problem {
    let (code, detail) = match job {
        None => (
            "not_transcribed",
            format!("{what} has no transcript and none is queued (transcription is off)"),
        ),
        Some(j) => match j.state {
            JobState::Queued if j.attempts == 0 => (
                "transcript_pending",
                format!("{what}: transcription queued (job {})", j.id),
            ),
            JobState::Queued => (
                "transcript_pending",
                format!(
                    "{what}: transcription will be tried again at {} (job {}, {} tries so far; last error: {})",
                    j.next_at,
                    j.id,
                    j.attempts,
                    j.last_error.as_deref().unwrap_or("none")
                ),
            ),
            JobState::Running => (
                "transcript_pending",
                format!("{what}: being transcribed now (job {})", j.id),
            ),
            JobState::Failed => (
                "transcription_failed",
                format!(
                    "{what}: transcription failed after {} tries (job {}): {}",
                    j.attempts,
                    j.id,
                    j.last_error.as_deref().unwrap_or("no error recorded")
                ),
            ),
            JobState::Done => (
                "not_transcribed",
                format!("{what}: the transcript of job {} is gone", j.id),
            ),
        },
    };
    Problem::new(StatusCode::NOT_FOUND, code, detail)
}

/// SRT or text when the client's `Accept` asks for it and not for JSON.
fn from_accept(headers: &HeaderMap) -> TranscriptFormat {
    let accept = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if accept.contains("application/json") {
        TranscriptFormat::Json
    } else if accept.contains("application/x-subrip") || accept.contains("text/srt") {
        TranscriptFormat::Srt
    } else if accept.contains("text/plain") {
        TranscriptFormat::Txt
    } else {
        TranscriptFormat::Json
    }
}

fn format_name(f: TranscriptFormat) -> &'static str {
    match f {
        TranscriptFormat::Json => "json",
        TranscriptFormat::Srt => "srt",
        TranscriptFormat::Txt => "txt",
    }
}

fn render(t: StoredTranscript, format: TranscriptFormat) -> Response {
    let segments: Vec<transcribe::timeline::Segment> = t
        .segments
        .iter()
        .map(|s| transcribe::timeline::Segment {
            start_ms: u64::try_from(s.start_ms).unwrap_or(0),
            end_ms: u64::try_from(s.end_ms).unwrap_or(0),
            speaker: match s.speaker {
                Speaker::Caller => transcribe::timeline::Speaker::Caller,
                Speaker::Hotline => transcribe::timeline::Speaker::Hotline,
            },
            text: s.text.clone(),
        })
        .collect();
    let (body, content_type) = match format {
        TranscriptFormat::Json => return no_store(axum::Json(t).into_response()),
        TranscriptFormat::Srt => (
            transcribe::timeline::to_srt(&segments),
            "application/x-subrip; charset=utf-8",
        ),
        TranscriptFormat::Txt => (
            transcribe::timeline::to_text(&segments),
            "text/plain; charset=utf-8",
        ),
    };
    no_store(([(header::CONTENT_TYPE, content_type)], body).into_response())
}

/// A cached copy would be a read nobody audited.
fn no_store(mut response: Response) -> Response {
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// The audit entry of a transcript read or search by `user` from `peer`; [`audited`] adds the
/// status it is answered with.
fn read_entry(
    user: &CurrentUser,
    peer: SocketAddr,
    action: &str,
    target: impl Into<String>,
    detail: serde_json::Value,
) -> AuditEntry {
    let mut entry = AuditEntry::by(&user.0.actor(), Timestamp::now(), action, target);
    entry.address = Some(peer.ip().to_string());
    entry.detail = detail;
    entry
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accept_chooses_the_format_and_json_wins() {
        let with = |v: &str| {
            let mut h = HeaderMap::new();
            h.insert(header::ACCEPT, HeaderValue::from_str(v).unwrap());
            from_accept(&h)
        };
        assert_eq!(from_accept(&HeaderMap::new()), TranscriptFormat::Json);
        assert_eq!(with("application/x-subrip"), TranscriptFormat::Srt);
        assert_eq!(with("text/plain"), TranscriptFormat::Txt);
        assert_eq!(with("application/json, text/plain"), TranscriptFormat::Json);
        assert_eq!(with("*/*"), TranscriptFormat::Json);
    }

    #[test]
    fn a_missing_transcript_says_where_its_job_stands() {
        let job = |state, attempts, error: Option<&str>| TranscriptionJob {
            id: 7,
            call_id: Some(3),
            ticket_id: None,
            kind: ticketing::transcripts::JobKind::Call,
            recording_path: "recordings/2026/12/03/a.wav".into(),
            language: None,
            state,
            attempts,
            next_at: "2026-12-03T08:00:00Z".parse().unwrap(),
            claimed_by: None,
            lease_until: None,
            last_error: error.map(str::to_owned),
            created_at: "2026-12-03T07:00:00Z".parse().unwrap(),
            finished_at: None,
        };
        let p = not_transcribed("call 3", None);
        assert_eq!((p.status, p.code), (404, "not_transcribed"));
        let p = not_transcribed("call 3", Some(job(JobState::Queued, 0, None)));
        assert_eq!(p.code, "transcript_pending");
        assert!(p.detail.contains("queued (job 7)"), "{}", p.detail);
        let p = not_transcribed(
            "call 3",
            Some(job(JobState::Failed, 6, Some("no such file"))),
        );
        assert_eq!(p.code, "transcription_failed");
        assert!(
            p.detail.contains("6 tries") && p.detail.contains("no such file"),
            "{}",
            p.detail
        );
    }
}
