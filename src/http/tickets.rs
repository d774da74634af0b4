//! `/api/v1/tickets`: open, read, search, move through the workflow, read the audit trail.

use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use ticketing::model::{Attachment, Location, Reporter};
use ticketing::sla::Stage;
use ticketing::store::{Origin, Page, TicketFilter, TicketSummary};
use ticketing::workflow::{self, Counters, ExtensionRequest, Satisfaction, StageClock};
use ticketing::{Action, ActionKind, AuditEvent, Channel, NewTicket, Priority, Status, Ticket};
use utoipa::{IntoParams, ToSchema};

use super::App;
use super::problem::{ApiJson, ApiPath, ApiQuery, Problem};
use super::session::CurrentUser;

/// A ticket as the API shows it: what was reported, where it stands, its deadlines, and what the
/// asking user can do next.
#[derive(Debug, Serialize, ToSchema)]
pub struct TicketView {
    /// Public number.
    #[schema(value_type = String, example = "12319-20261123-000042")]
    pub number: String,
    /// Owning hotline.
    pub hotline: String,
    /// Where it came in.
    pub channel: Channel,
    /// Where it stands.
    pub status: Status,
    /// The status in Chinese (待派遣...).
    pub status_label: &'static str,
    /// 紧急 or 一般.
    pub priority: Priority,
    /// Category ID.
    pub category: Option<String>,
    /// Category name (大类/小类).
    pub category_name: Option<String>,
    /// Department dispatched to.
    pub department: Option<String>,
    /// Department name.
    pub department_name: Option<String>,
    /// Reporters (phone numbers masked for roles that do not call back).
    pub reporters: Vec<Reporter>,
    /// What was reported.
    pub content: String,
    /// Where.
    pub location: Location,
    /// Photos, recordings.
    pub attachments: Vec<Attachment>,
    /// When the running stage is due.
    #[schema(value_type = Option<String>, format = DateTime)]
    pub due: Option<Timestamp>,
    /// Whether the running stage is past due.
    pub overdue: bool,
    /// Every stage clock: due, finished, on time (按期).
    pub deadlines: Vec<DeadlineView>,
    /// Loop counters (督办, 返工, 退单, reopen, 延期).
    pub counters: Counters,
    /// A 延期 request waiting for a decision.
    pub extension: Option<ExtensionRequest>,
    /// The last 回访 result (of a merged ticket: the least satisfied reporter's).
    pub satisfaction: Option<Satisfaction>,
    /// This round's 回访 answers by reporter (index in `reporters`): a merged ticket waits in
    /// 待回访 until every reporter has been asked.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub callbacks: Vec<ticketing::workflow::CallbackAnswer>,
    /// Citizens' own ratings of the result (city app), in the single-ticket view.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub citizen_ratings: Vec<ticketing::store::StoredRating>,
    /// Ticket this was merged into.
    #[schema(value_type = Option<String>)]
    pub merged_into: Option<String>,
    /// How many citizens reported it (反映次数): more than one after merges.
    pub reported_times: usize,
    /// Open tickets that may report the same problem, for the agent to merge or reject (only
    /// in the answer to the intake).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub possible_duplicates: Vec<ticketing::store::Suggestion>,
    /// Steps the asking user may take now.
    pub available_actions: Vec<ActionKind>,
    /// Received.
    #[schema(value_type = String, format = DateTime)]
    pub created_at: Timestamp,
    /// Last change.
    #[schema(value_type = String, format = DateTime)]
    pub updated_at: Timestamp,
}

/// One stage clock.
#[derive(Debug, Serialize, ToSchema)]
pub struct DeadlineView {
    /// Which stage.
    pub stage: Stage,
    /// Its Chinese name.
    pub stage_label: &'static str,
    /// Started.
    #[schema(value_type = String, format = DateTime)]
    pub started_at: Timestamp,
    /// Due.
    #[schema(value_type = String, format = DateTime)]
    pub due: Timestamp,
    /// Finished, if it has.
    #[schema(value_type = Option<String>, format = DateTime)]
    pub finished_at: Option<Timestamp>,
    /// 按期: finished by the due time (`null` while running).
    pub on_time: Option<bool>,
    /// Past due now (running) or finished late.
    pub overdue: bool,
}

impl DeadlineView {
    fn new(c: &StageClock, now: Timestamp) -> Self {
        DeadlineView {
            stage: c.stage,
            stage_label: c.stage.label_zh(),
            started_at: c.started_at,
            due: c.due,
            finished_at: c.finished_at,
            on_time: c.on_time(),
            overdue: c.overdue_at(now),
        }
    }
}

impl TicketView {
    pub(super) fn new(app: &App, t: Ticket, user: &CurrentUser, now: Timestamp) -> Self {
        let work = &t.work;
        let category_name = work
            .category
            .as_deref()
            .and_then(|id| app.tickets.catalogue().get(id))
            .map(|c| format!("{}/{}", c.major_name, c.name));
        let department_name = work
            .department
            .as_deref()
            .and_then(|code| app.tickets.directory().get(code))
            .map(|d| d.name.clone());
        TicketView {
            number: t.number.to_string(),
            hotline: t.hotline,
            channel: t.channel,
            status: work.status,
            status_label: work.status.label_zh(),
            priority: work.priority,
            category: work.category.clone(),
            category_name,
            department: work.department.clone(),
            department_name,
            reported_times: t.reporters.len(),
            possible_duplicates: Vec::new(),
            reporters: t.reporters,
            content: t.content,
            location: t.location,
            attachments: t.attachments,
            due: work.current_due(),
            overdue: work.is_overdue(now),
            deadlines: work
                .clocks
                .iter()
                .map(|c| DeadlineView::new(c, now))
                .collect(),
            counters: work.counters,
            extension: work.extension.clone(),
            satisfaction: work.satisfaction,
            callbacks: work.callbacks.clone(),
            citizen_ratings: Vec::new(),
            merged_into: t.merged_into.map(|n| n.to_string()),
            available_actions: workflow::available(work, &user.0.actor(), now),
            created_at: t.created_at,
            updated_at: t.updated_at,
        }
    }
}

/// List filters.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct TicketQuery {
    /// Comma-separated statuses (`filed,dispatched`).
    pub status: Option<String>,
    /// Category ID or prefix (`C01`).
    pub category: Option<String>,
    /// Department code.
    pub department: Option<String>,
    /// Channel.
    pub channel: Option<Channel>,
    /// Only overdue (`true`) or only not overdue (`false`).
    pub overdue: Option<bool>,
    /// Received at or after (RFC 3339).
    #[param(value_type = Option<String>, format = DateTime)]
    pub from: Option<Timestamp>,
    /// Received before (RFC 3339).
    #[param(value_type = Option<String>, format = DateTime)]
    pub to: Option<Timestamp>,
    /// Text in content, address or number.
    pub q: Option<String>,
    /// Page, from 1.
    pub page: Option<u32>,
    /// Page size, 1 to 200 (default 50).
    pub per_page: Option<u32>,
}

/// Searches tickets, newest first. Department users see only their department's.
#[utoipa::path(get, path = "/api/v1/tickets", tag = "tickets",
    params(TicketQuery),
    responses((status = 200, body = Page<TicketSummary>), (status = 400, body = Problem)),
    security(("bearer" = []), ("cookie" = [])))]
pub async fn list(
    State(app): State<App>,
    user: CurrentUser,
    ApiQuery(q): ApiQuery<TicketQuery>,
) -> Result<axum::Json<Page<TicketSummary>>, Problem> {
    let status = q
        .status
        .as_deref()
        .unwrap_or("")
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| {
            s.parse::<Status>()
                .map_err(|e| Problem::new(StatusCode::BAD_REQUEST, "invalid_query", e.to_string()))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let filter = TicketFilter {
        status,
        category: q.category.filter(|s| !s.is_empty()),
        department: q.department.filter(|s| !s.is_empty()),
        channel: q.channel,
        overdue: q.overdue,
        from: q.from,
        to: q.to,
        text: q.q,
        reporter: None,
        page: q.page.unwrap_or(1),
        per_page: q.per_page.unwrap_or(50),
    };
    let page = app
        .tickets
        .list(filter, &user.0.actor(), Timestamp::now())
        .await?;
    Ok(axum::Json(page))
}

/// Opens a ticket (受理). Answered only after it is committed.
#[utoipa::path(post, path = "/api/v1/tickets", tag = "tickets",
    request_body = NewTicket,
    responses(
        (status = 201, description = "Created", body = TicketView),
        (status = 422, description = "A field is wrong", body = Problem),
    ),
    security(("bearer" = []), ("cookie" = [])))]
pub async fn create(
    State(app): State<App>,
    user: CurrentUser,
    ApiJson(new): ApiJson<NewTicket>,
) -> Result<Response, Problem> {
    let now = Timestamp::now();
    let actor = user.0.actor();
    let intake = app
        .tickets
        .intake_once(new, &Origin::default(), &actor, now)
        .await?;
    let ticket = intake.ticket;
    metrics::counter!("hotline_tickets_created_total", "channel" => ticket.channel.as_str())
        .increment(1);
    let location = format!("/api/v1/tickets/{}", ticket.number);
    let possible_duplicates = if intake.suggestions.is_empty() {
        Vec::new()
    } else {
        app.tickets
            .duplicates(ticket.number.as_str(), &actor, now)
            .await?
    };
    let mut view = TicketView::new(&app, ticket, &user, now);
    view.possible_duplicates = possible_duplicates;
    let mut response = (StatusCode::CREATED, axum::Json(view)).into_response();
    if let Ok(v) = HeaderValue::from_str(&location) {
        response.headers_mut().insert(header::LOCATION, v);
    }
    Ok(response)
}

/// One ticket with its deadlines and the steps the asking user may take.
#[utoipa::path(get, path = "/api/v1/tickets/{number}", tag = "tickets",
    params(("number" = String, Path, description = "Ticket number, e.g. 12319-20261123-000042")),
    responses((status = 200, body = TicketView), (status = 404, body = Problem)),
    security(("bearer" = []), ("cookie" = [])))]
pub async fn get(
    State(app): State<App>,
    user: CurrentUser,
    ApiPath(number): ApiPath<String>,
) -> Result<axum::Json<TicketView>, Problem> {
    let ticket = app.tickets.get(&number, &user.0.actor()).await?;
    let ratings = app.tickets.store().ratings_of(ticket.id).await?;
    let mut view = TicketView::new(&app, ticket, &user, Timestamp::now());
    view.citizen_ratings = ratings;
    Ok(axum::Json(view))
}

/// The result of a workflow step.
#[derive(Debug, Serialize, ToSchema)]
pub struct TransitionResponse {
    /// The ticket after the step.
    pub ticket: TicketView,
    /// The audit event written with it.
    pub event: AuditEvent,
}

/// Takes one workflow step (立案, 派遣, 签收, 办结, 核查, 回访, 结案, 退单, 延期, 督办...).
#[utoipa::path(post, path = "/api/v1/tickets/{number}/transitions", tag = "tickets",
    params(("number" = String, Path, description = "Ticket number")),
    request_body = Action,
    responses(
        (status = 200, body = TransitionResponse),
        (status = 403, description = "Role or department may not take this step", body = Problem),
        (status = 404, body = Problem),
        (status = 409, description = "Not possible in the ticket's status", body = Problem),
        (status = 422, description = "A required field is missing", body = Problem),
    ),
    security(("bearer" = []), ("cookie" = [])))]
pub async fn transition(
    State(app): State<App>,
    user: CurrentUser,
    ApiPath(number): ApiPath<String>,
    ApiJson(action): ApiJson<Action>,
) -> Result<axum::Json<TransitionResponse>, Problem> {
    let now = Timestamp::now();
    let (ticket, event) = app
        .tickets
        .act(&number, &user.0.actor(), &action, now)
        .await?;
    metrics::counter!("hotline_ticket_transitions_total", "action" => event.action.as_str())
        .increment(1);
    Ok(axum::Json(TransitionResponse {
        ticket: TicketView::new(&app, ticket, &user, now),
        event,
    }))
}

/// The audit trail: every step, who took it, when, from and to which status.
#[utoipa::path(get, path = "/api/v1/tickets/{number}/events", tag = "tickets",
    params(("number" = String, Path, description = "Ticket number")),
    responses((status = 200, body = Vec<AuditEvent>), (status = 404, body = Problem)),
    security(("bearer" = []), ("cookie" = [])))]
pub async fn events(
    State(app): State<App>,
    user: CurrentUser,
    ApiPath(number): ApiPath<String>,
) -> Result<axum::Json<Vec<AuditEvent>>, Problem> {
    Ok(axum::Json(
        app.tickets.history(&number, &user.0.actor()).await?,
    ))
}

/// Which ticket to merge into.
#[derive(Debug, serde::Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MergeRequest {
    /// The open ticket that handles the same problem.
    pub into: String,
}

/// The two tickets after a merge or unmerge.
#[derive(Debug, Serialize, ToSchema)]
pub struct MergeResponse {
    /// The report that was merged (now closed into `target`) or restored.
    pub ticket: TicketView,
    /// The ticket it went into or came out of.
    #[schema(value_type = String)]
    pub target: String,
    /// Citizens who reported the problem, on the target.
    pub reported_times: Option<usize>,
}

/// 并单: the agent confirms that this report duplicates `into`; it is closed into it and its
/// reporters join it.
#[utoipa::path(post, path = "/api/v1/tickets/{number}/merge", tag = "tickets",
    params(("number" = String, Path, description = "The duplicate report")),
    request_body = MergeRequest,
    responses((status = 200, body = MergeResponse), (status = 404, body = Problem), (status = 409, body = Problem), (status = 422, body = Problem)),
    security(("bearer" = []), ("cookie" = [])))]
pub async fn merge(
    State(app): State<App>,
    user: CurrentUser,
    ApiPath(number): ApiPath<String>,
    ApiJson(req): ApiJson<MergeRequest>,
) -> Result<axum::Json<MergeResponse>, Problem> {
    let now = Timestamp::now();
    let (ticket, target) = app
        .tickets
        .merge_into(&number, &req.into, &user.0.actor(), now)
        .await?;
    Ok(axum::Json(MergeResponse {
        target: target.number.to_string(),
        reported_times: Some(target.reporters.len()),
        ticket: TicketView::new(&app, ticket, &user, now),
    }))
}

/// 撤销并单: restores a merged report as it was, and takes its reporters off the target.
#[utoipa::path(post, path = "/api/v1/tickets/{number}/unmerge", tag = "tickets",
    params(("number" = String, Path, description = "The merged report")),
    responses((status = 200, body = MergeResponse), (status = 404, body = Problem), (status = 409, body = Problem), (status = 422, body = Problem)),
    security(("bearer" = []), ("cookie" = [])))]
pub async fn unmerge(
    State(app): State<App>,
    user: CurrentUser,
    ApiPath(number): ApiPath<String>,
) -> Result<axum::Json<MergeResponse>, Problem> {
    let now = Timestamp::now();
    let (ticket, from) = app.tickets.unmerge(&number, &user.0.actor(), now).await?;
    Ok(axum::Json(MergeResponse {
        target: from.to_string(),
        reported_times: None,
        ticket: TicketView::new(&app, ticket, &user, now),
    }))
}

/// Possible duplicates of a ticket that no one has decided on yet, best first.
#[utoipa::path(get, path = "/api/v1/tickets/{number}/duplicates", tag = "tickets",
    params(("number" = String, Path, description = "Ticket number")),
    responses((status = 200, body = Vec<ticketing::store::Suggestion>), (status = 404, body = Problem)),
    security(("bearer" = []), ("cookie" = [])))]
pub async fn duplicates(
    State(app): State<App>,
    user: CurrentUser,
    ApiPath(number): ApiPath<String>,
) -> Result<axum::Json<Vec<ticketing::store::Suggestion>>, Problem> {
    Ok(axum::Json(
        app.tickets
            .duplicates(&number, &user.0.actor(), Timestamp::now())
            .await?,
    ))
}

/// The agent says `other` is not a duplicate of this ticket.
#[utoipa::path(post, path = "/api/v1/tickets/{number}/duplicates/{other}/reject", tag = "tickets",
    params(("number" = String, Path), ("other" = String, Path, description = "The suggested ticket")),
    responses((status = 204), (status = 404, body = Problem)),
    security(("bearer" = []), ("cookie" = [])))]
pub async fn reject_duplicate(
    State(app): State<App>,
    user: CurrentUser,
    ApiPath((number, other)): ApiPath<(String, String)>,
) -> Result<StatusCode, Problem> {
    app.tickets
        .reject_duplicate(&number, &other, &user.0.actor(), Timestamp::now())
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
