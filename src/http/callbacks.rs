//! `/api/v1/callbacks`: the "call me back" tasks queued callers leave when no agent is free.
//! Agents list the open ones (oldest first: the order to call back in) and record each
//! attempt; "no answer" and "busy" keep a task open, anything else closes it. Every attempt is
//! in the audit log.

use axum::extract::State;
use axum::http::StatusCode;
use jiff::Timestamp;
use serde::Deserialize;
use ticketing::Role;
use ticketing::callbacks::{Callback, CallbackState, outcome_from_code};
use ticketing::store::AttemptError;
use utoipa::{IntoParams, ToSchema};

use super::App;
use super::problem::{ApiJson, ApiPath, ApiQuery, Problem};
use super::session::CurrentUser;

/// Who calls citizens back: they see the full numbers.
const CALLERS_BACK: &[Role] = &[Role::Agent, Role::Supervisor];

/// Which tasks to list.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct CallbackQuery {
    /// `open` (default), `closed` or `all`.
    pub state: Option<String>,
    /// Only this hotline's (`12319`).
    pub hotline: Option<String>,
    /// At most this many, 1 to 500 (default 100).
    pub limit: Option<i64>,
}

/// One attempt to call back.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AttemptRequest {
    /// `reached`, `no_answer`, `busy`, `wrong_number` or `no_longer_needed`.
    pub outcome: String,
    /// What was said or agreed, for the audit log.
    pub note: Option<String>,
}

/// Callback tasks, oldest request first.
#[utoipa::path(get, path = "/api/v1/callbacks", tag = "queues",
    params(CallbackQuery),
    responses(
        (status = 200, body = Vec<Callback>),
        (status = 400, body = Problem),
        (status = 403, description = "Role does not call citizens back", body = Problem),
    ),
    security(("bearer" = []), ("cookie" = [])))]
pub async fn list(
    State(app): State<App>,
    user: CurrentUser,
    ApiQuery(q): ApiQuery<CallbackQuery>,
) -> Result<axum::Json<Vec<Callback>>, Problem> {
    user.require(CALLERS_BACK)?;
    let state = match q.state.as_deref().unwrap_or("open") {
        "open" => CallbackState::Open,
        "closed" => CallbackState::Closed,
        "all" => CallbackState::All,
        other => {
            return Err(Problem::new(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                format!("state: `{other}` is not one of open, closed, all"),
            ));
        }
    };
    let limit = q.limit.unwrap_or(100);
    if !(1..=500).contains(&limit) {
        return Err(Problem::new(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "limit: between 1 and 500",
        ));
    }
    let hotline = q.hotline.as_deref().filter(|h| !h.is_empty());
    let tasks = app.tickets.store().callbacks(state, hotline, limit).await?;
    Ok(axum::Json(tasks))
}

/// Records an attempt to call back and returns the task: closed unless the outcome is
/// `no_answer` or `busy`.
#[utoipa::path(post, path = "/api/v1/callbacks/{id}/attempts", tag = "queues",
    params(("id" = i64, Path, description = "Callback task id")),
    request_body = AttemptRequest,
    responses(
        (status = 200, body = Callback),
        (status = 400, body = Problem),
        (status = 403, body = Problem),
        (status = 404, body = Problem),
        (status = 409, description = "The task is closed already", body = Problem),
    ),
    security(("bearer" = []), ("cookie" = [])))]
pub async fn attempt(
    State(app): State<App>,
    user: CurrentUser,
    ApiPath(id): ApiPath<i64>,
    ApiJson(req): ApiJson<AttemptRequest>,
) -> Result<axum::Json<Callback>, Problem> {
    user.require(CALLERS_BACK)?;
    let outcome = outcome_from_code(&req.outcome).ok_or_else(|| {
        Problem::new(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            format!(
                "outcome: `{}` is not one of reached, no_answer, busy, wrong_number, no_longer_needed",
                req.outcome
            ),
        )
    })?;
    let note = req.note.as_deref().map(str::trim).filter(|n| !n.is_empty());
    if note.is_some_and(|n| n.chars().count() > 500) {
        return Err(Problem::new(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "note: at most 500 characters",
        ));
    }
    let actor = user.0.actor();
    match app
        .tickets
        .store()
        .callback_attempt(id, &actor, outcome, note, Timestamp::now())
        .await
    {
        Ok(task) => Ok(axum::Json(task)),
        Err(AttemptError::NotFound(_)) => Err(Problem::new(
            StatusCode::NOT_FOUND,
            "callback_not_found",
            format!("callback task {id} not found"),
        )),
        Err(AttemptError::Closed(_)) => Err(Problem::new(
            StatusCode::CONFLICT,
            "callback_closed",
            format!("callback task {id} is closed already; nothing was recorded"),
        )),
        Err(AttemptError::Store(e)) => Err(e.into()),
    }
}
