//! `/api/v1/queues`: the call queues' live figures on this node — callers waiting, the
//! longest wait, answered within the service level, abandoned, handle time — and the agents'
//! states, for supervisors' wallboards and the agent desk.

use axum::extract::State;
use axum::http::StatusCode;
use serde::Serialize;
use ticketing::Role;
use utoipa::ToSchema;

use super::App;
use super::problem::Problem;
use super::session::CurrentUser;

/// Who watches the queues.
const WATCHERS: &[Role] = &[Role::Agent, Role::Supervisor, Role::Admin, Role::Dispatcher];

/// The queues and agents now.
#[derive(Debug, Serialize, ToSchema)]
pub struct QueuesView {
    /// When the figures were taken.
    #[schema(value_type = String, format = DateTime)]
    pub at: jiff::Timestamp,
    /// Each queue, in priority order.
    pub queues: Vec<QueueView>,
    /// Agents who logged in since the node started.
    pub agents: Vec<AgentView>,
}

/// One queue's figures since the node started. Every call that entered is answered,
/// abandoned, overflowed or still waiting.
#[derive(Debug, Serialize, ToSchema)]
pub struct QueueView {
    /// Queue name (`12319-intake`).
    pub name: String,
    /// Callers waiting now.
    pub waiting: usize,
    /// Seconds the longest-waiting caller has waited.
    pub longest_wait_seconds: f64,
    /// Calls that entered.
    pub offered: u64,
    /// Calls answered by an agent.
    pub answered: u64,
    /// Of those, answered within the service-level threshold.
    pub answered_within_service_level: u64,
    /// The threshold, in seconds.
    pub service_level_seconds: u64,
    /// answered within threshold ÷ (answered + abandoned); null before any such call.
    pub service_level: Option<f64>,
    /// Callers who hung up while waiting.
    pub abandoned: u64,
    /// Calls sent to the overflow target (max wait or max length).
    pub overflowed: u64,
    /// Calls handled to the end.
    pub handled: u64,
    /// Mean talk plus wrap-up time, seconds.
    pub average_handle_seconds: Option<f64>,
    /// Mean wait of answered calls, seconds.
    pub average_answer_seconds: Option<f64>,
}

/// One agent.
#[derive(Debug, Serialize, ToSchema)]
pub struct AgentView {
    /// Agent id (login name or extension).
    pub agent: String,
    /// offline, available, ringing, busy, wrap_up or break.
    pub state: String,
    /// Offers rung.
    pub offered: u64,
    /// Offers answered.
    pub answered: u64,
    /// Offers missed.
    pub missed: u64,
    /// Calls handled to the end.
    pub handled: u64,
    /// Mean talk plus wrap-up time, seconds.
    pub average_handle_seconds: Option<f64>,
}

/// Live queue and agent figures.
#[utoipa::path(get, path = "/api/v1/queues", tag = "queues",
    responses(
        (status = 200, body = QueuesView),
        (status = 403, body = Problem),
        (status = 503, description = "The ACD is not running", body = Problem),
    ),
    security(("bearer" = []), ("cookie" = [])))]
pub async fn list(
    State(app): State<App>,
    user: CurrentUser,
) -> Result<axum::Json<QueuesView>, Problem> {
    user.require(WATCHERS)?;
    let unavailable = || {
        Problem::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "queues_unavailable",
            "the call queues are not running on this node",
        )
    };
    let queues = app.queues.as_ref().ok_or_else(unavailable)?;
    let snap = queues.snapshot().await.ok_or_else(unavailable)?;
    let secs = |d: std::time::Duration| d.as_secs_f64();
    Ok(axum::Json(QueuesView {
        at: snap.at,
        queues: snap
            .queues
            .into_iter()
            .map(|(name, s)| QueueView {
                name,
                waiting: s.waiting,
                longest_wait_seconds: secs(s.longest_wait),
                offered: s.offered,
                answered: s.answered,
                answered_within_service_level: s.answered_within_service_level,
                service_level_seconds: s.service_level_threshold.as_secs(),
                service_level: s.service_level,
                abandoned: s.abandoned,
                overflowed: s.overflowed,
                handled: s.handled,
                average_handle_seconds: s.average_handle_time.map(secs),
                average_answer_seconds: s.average_speed_of_answer.map(secs),
            })
            .collect(),
        agents: snap
            .agents
            .into_iter()
            .map(|(agent, s)| AgentView {
                agent: agent.0,
                state: serde_json::to_value(s.state)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_owned))
                    .unwrap_or_default(),
                offered: s.offered,
                answered: s.answered,
                missed: s.missed,
                handled: s.handled,
                average_handle_seconds: s.average_handle_time.map(secs),
            })
            .collect(),
    }))
}

/// Who takes queued calls.
const AGENTS: &[Role] = &[Role::Agent, Role::Supervisor];

/// An agent's state change, from the agent desk.
#[derive(Debug, serde::Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AgentStateRequest {
    /// `ready` (log in, or end a break or wrap-up), `break`, or `offline` (log out).
    pub state: String,
    /// The SIP URI the agent's phone answers (`sip:8001@10.0.0.21:5060`); needed for the first
    /// `ready`, and replaces the old one when given again.
    pub contact: Option<String>,
    /// Languages the agent speaks (`zh`, `en`); default `zh`.
    pub languages: Option<Vec<String>>,
    /// Skills the agent has (a queue's `skills` must all be among them).
    pub skills: Option<Vec<String>>,
}

/// Sets the logged-in user's agent state; returns the queues and agents as they are after it.
/// Queued calls ring the agent's `contact`, and an answer connects the caller.
#[utoipa::path(post, path = "/api/v1/agents/me/state", tag = "queues",
    request_body = AgentStateRequest,
    responses(
        (status = 200, body = QueuesView),
        (status = 400, body = Problem),
        (status = 403, body = Problem),
        (status = 503, body = Problem),
    ),
    security(("bearer" = []), ("cookie" = [])))]
pub async fn set_agent_state(
    State(app): State<App>,
    user: CurrentUser,
    super::problem::ApiJson(req): super::problem::ApiJson<AgentStateRequest>,
) -> Result<axum::Json<QueuesView>, Problem> {
    user.require(AGENTS)?;
    let bad = |m: String| Problem::new(StatusCode::BAD_REQUEST, "invalid_request", m);
    let queues = app.queues.as_ref().ok_or_else(|| {
        Problem::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "queues_unavailable",
            "the call queues are not running on this node",
        )
    })?;
    let agent = user.0.username.clone();
    if let Some(c) = &req.contact
        && !valid_contact(c)
    {
        return Err(bad(format!(
            "contact: `{c}` is not a SIP URI like sip:8001@10.0.0.21:5060"
        )));
    }
    match req.state.as_str() {
        "ready" => queues.agent_ready(
            &agent,
            req.contact,
            req.skills.unwrap_or_default(),
            req.languages.unwrap_or_else(|| vec!["zh".into()]),
        ),
        "break" => queues.agent_break(&agent),
        "offline" => queues.agent_logout(&agent),
        other => {
            return Err(bad(format!(
                "state: `{other}` is not one of ready, break, offline"
            )));
        }
    }
    list(State(app), user).await
}

/// A SIP or SIPS URI with a user and a host, short and without spaces.
fn valid_contact(c: &str) -> bool {
    let rest = c.strip_prefix("sip:").or_else(|| c.strip_prefix("sips:"));
    c.len() <= 200
        && !c
            .chars()
            .any(|ch| ch.is_whitespace() || ch.is_control() || ch == '<' || ch == '>')
        && rest.is_some_and(|r| {
            r.split_once('@')
                .is_some_and(|(u, h)| !u.is_empty() && !h.is_empty())
        })
}
