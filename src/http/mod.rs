//! The HTTP API (`/api/v1`), operations endpoints and the OpenAPI document. Handlers are thin:
//! they take typed extractors, call one `ticketing` function and map errors in [`problem`].

pub mod app;
mod audit;
pub mod callbacks;
pub mod calls;
pub mod ops;
pub mod problem;
pub mod queues;
pub mod rate_limit;
pub mod reference;
pub mod report_form;
pub mod session;
pub mod tickets;
pub mod transcripts;
pub mod users;
pub mod web_form;
pub mod wechat;

use std::path::PathBuf;
use std::sync::Arc;

use axum::Router;
use axum::routing::{get, post};
use metrics_exporter_prometheus::PrometheusHandle;
use ticketing::Tickets;
use tower_http::trace::TraceLayer;
use utoipa::OpenApi;
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};

use crate::auth::LoginLimiter;

/// What every handler shares; cheap to clone.
#[derive(Clone)]
pub struct App {
    /// The ticket service.
    pub tickets: Tickets,
    /// Failed-login counter.
    pub login_limiter: Arc<LoginLimiter>,
    /// Whose word counts for a client's address (`[http]` `client_ip_header`).
    pub proxy_trust: Arc<rate_limit::ProxyTrust>,
    /// Session length.
    pub session_hours: u32,
    /// Whether cookies carry `Secure`.
    pub secure_cookies: bool,
    /// Prometheus renderer.
    pub metrics: PrometheusHandle,
    /// The data directory (`data_dir` in the configuration): stored recording paths are relative
    /// to it.
    pub data_dir: PathBuf,
    /// The call queues (ACD) of this node's SIP gateway; None when it runs none.
    pub queues: Option<sip_gateway::Queues>,
    /// The WeChat official account's server; None when `[wechat]` is not configured.
    pub wechat: Option<channels::wechat::account::OfficialAccount>,
    /// The public web form (`/report`); None when the router is built without one.
    pub web_form: Option<Arc<web_form::WebForm>>,
    /// The citizen app API (`/api/v1/app/`); None when `[app]` is not configured.
    pub citizen_app: Option<Arc<app::CitizenApp>>,
    /// This node's transcription workers, for their status; None when the router is built
    /// without them.
    pub transcription: Option<crate::transcription::worker::Handle>,
}

/// The OpenAPI document, generated from the handlers and types.
#[derive(OpenApi)]
#[openapi(
    info(title = "hotline API", description = "Municipal service hotline (12319 / 12345): tickets, workflow, SLA, calls, queues."),
    paths(
        session::login, session::logout, session::me,
        tickets::list, tickets::create, tickets::get, tickets::transition, tickets::events,
        tickets::merge, tickets::unmerge, tickets::duplicates, tickets::reject_duplicate,
        calls::list, calls::get, calls::recording,
        transcripts::for_call, transcripts::for_ticket, transcripts::search,
        transcripts::status, transcripts::jobs, transcripts::retry,
        queues::list, queues::set_agent_state, callbacks::list, callbacks::attempt,
        reference::categories, reference::departments, reference::hotlines,
        users::list, users::create,
        ops::healthz, ops::metrics,
        wechat::verify, wechat::receive,
        web_form::form, web_form::submit, web_form::lookup,
        app::request_code, app::login, app::logout, app::me, app::submit, app::list, app::one,
        app::rate, app::points,
    ),
    components(schemas(problem::Problem)),
    modifiers(&Security),
    tags(
        (name = "auth", description = "Login sessions"),
        (name = "tickets", description = "工单: intake, workflow, audit trail"),
        (name = "calls", description = "Call detail records and recordings (every play audited)"),
        (name = "transcripts", description = "语音转写: transcripts of calls and voicemails, full-text search (every read audited), the transcription queue"),
        (name = "queues", description = "Call queues (live figures) and callback tasks (回电)"),
        (name = "reference", description = "Categories, departments, hotlines"),
        (name = "users", description = "Staff accounts"),
        (name = "ops", description = "Health and metrics"),
        (name = "channels", description = "Citizen channels: the WeChat official account's server URL"),
        (name = "app", description = "The city app (城市App): citizens log in by phone code, report with photos, follow and rate their reports, earn points"),
        (name = "web", description = "The public web form (网上反映, no login): report with photos, look up by number and phone"),
    )
)]
pub struct ApiDoc;

struct Security;

impl utoipa::Modify for Security {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
        components.add_security_scheme(
            "cookie",
            SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::new(session::COOKIE))),
        );
    }
}

async fn openapi() -> axum::Json<utoipa::openapi::OpenApi> {
    axum::Json(ApiDoc::openapi())
}

async fn not_found() -> problem::Problem {
    problem::Problem::new(
        axum::http::StatusCode::NOT_FOUND,
        "no_such_route",
        "no such route; the API is described at /api/v1/openapi.json",
    )
}

/// The whole router.
pub fn router(app: App) -> Router {
    let api = Router::new()
        .route("/auth/login", post(session::login))
        .route("/auth/logout", post(session::logout))
        .route("/auth/me", get(session::me))
        .route("/tickets", get(tickets::list).post(tickets::create))
        .route("/tickets/{number}", get(tickets::get))
        .route("/tickets/{number}/transitions", post(tickets::transition))
        .route("/tickets/{number}/events", get(tickets::events))
        .route("/tickets/{number}/merge", post(tickets::merge))
        .route("/tickets/{number}/unmerge", post(tickets::unmerge))
        .route("/tickets/{number}/duplicates", get(tickets::duplicates))
        .route(
            "/tickets/{number}/duplicates/{other}/reject",
            post(tickets::reject_duplicate),
        )
        .route("/calls", get(calls::list))
        .route("/calls/{id}", get(calls::get))
        .route("/calls/{id}/recording", get(calls::recording))
        .route("/calls/{id}/transcript", get(transcripts::for_call))
        .route(
            "/tickets/{number}/transcripts",
            get(transcripts::for_ticket),
        )
        .route("/transcripts", get(transcripts::search))
        .route("/transcription", get(transcripts::status))
        .route("/transcription/jobs", get(transcripts::jobs))
        .route("/transcription/jobs/{id}/retry", post(transcripts::retry))
        .route("/queues", get(queues::list))
        .route("/agents/me/state", post(queues::set_agent_state))
        .route("/callbacks", get(callbacks::list))
        .route("/callbacks/{id}/attempts", post(callbacks::attempt))
        .route("/categories", get(reference::categories))
        .route("/departments", get(reference::departments))
        .route("/hotlines", get(reference::hotlines))
        .route("/users", get(users::list).post(users::create))
        .route(
            "/channels/wechat",
            get(wechat::verify).post(wechat::receive),
        )
        .route("/openapi.json", get(openapi));
    // The API takes at most 2 MiB a request; routes that take photos are merged outside it with
    // a limit of their own (`report_form::upload_body_limit`).
    let web_photos = app
        .web_form
        .as_ref()
        .map(|f| *f.photo_limits())
        .unwrap_or_default();
    let app_photos = app
        .citizen_app
        .as_ref()
        .map(|a| a.limits)
        .unwrap_or_default();
    Router::new()
        .nest(
            "/api/v1",
            api.layer(tower_http::limit::RequestBodyLimitLayer::new(
                2 * 1024 * 1024,
            )),
        )
        .merge(web_form::routes(&web_photos))
        .merge(app::routes(&app_photos))
        .route("/healthz", get(ops::healthz))
        .route("/metrics", get(ops::metrics))
        .fallback(not_found)
        .layer(axum::middleware::from_fn(ops::track))
        .layer(TraceLayer::new_for_http())
        .with_state(app)
}
