//! `/api/v1/app/`: the city app's API (城市 app, like 我家亳州). A citizen logs in with their
//! phone and a one-time code, reports a problem with photos and a location (multipart, read by
//! [`ReportForm`]; an `Idempotency-Key` makes a retry on a bad mobile network harmless), follows
//! their reports, rates the result once closed, and sees their points (积分).
//!
//! Citizens' bearer tokens are not staff tokens: they start with `app_`, live in their own table
//! and open only these routes (and staff tokens open none of them). Every error is a problem
//! document with a Chinese `detail`.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::{ConnectInfo, DefaultBodyLimit, FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use channels::photo::PhotoLimits;
use jiff::{SignedDuration, Timestamp};
use serde::{Deserialize, Serialize};
use ticketing::app::{CitizenTicket, CitizenTicketSummary, RateError};
use ticketing::citizens::{self, CodeCheck, CodePolicy, Rating, RatingError};
use ticketing::model::{Location, PhoneNumber, Reporter};
use ticketing::store::{Citizen, Origin, Page, PointsEntry, StoredRating};
use ticketing::{Actor, Channel, NewTicket, Role};
use utoipa::{IntoParams, ToSchema};

use super::App;
use super::problem::{ApiJson, ApiPath, ApiQuery, Problem};
use super::rate_limit::RateLimiter;
use super::report_form::{ApiMultipart, ReportForm, intake_saved, upload_body_limit};
use crate::citizens::{self as app_citizens, AppConfig, CodeSender};

/// The city app's settings and code sender, shared by its handlers.
pub struct CitizenApp {
    /// How codes are handed out.
    pub policy: CodePolicy,
    /// Delivers the codes.
    pub sender: Arc<dyn CodeSender>,
    /// Code requests per client address (the policy limits them per phone).
    pub code_requests: RateLimiter,
    /// How long a login lasts.
    pub token_ttl: SignedDuration,
    /// Photo limits of a report.
    pub limits: PhotoLimits,
}

impl CitizenApp {
    /// The app as `[app]` configures it.
    pub fn new(cfg: &AppConfig) -> CitizenApp {
        CitizenApp {
            policy: cfg.code_policy(),
            sender: cfg.sender(),
            code_requests: RateLimiter::new(
                cfg.codes_per_address_burst,
                cfg.codes_per_address_per_hour,
            ),
            token_ttl: SignedDuration::from_hours(24 * i64::from(cfg.token_days)),
            limits: PhotoLimits::default(),
        }
    }
}

/// The routes, to merge into the main router (full paths). The report upload has its own body
/// limit (nine photos at their largest), so this router must not sit under the API's 2 MiB limit;
/// the JSON routes get a small one here.
pub fn routes(limits: &PhotoLimits) -> Router<App> {
    let json = Router::new()
        .route("/api/v1/app/auth/code", post(request_code))
        .route("/api/v1/app/auth/login", post(login))
        .route("/api/v1/app/auth/logout", post(logout))
        .route("/api/v1/app/me", get(me))
        .route("/api/v1/app/reports", get(list))
        .route("/api/v1/app/reports/{number}", get(one))
        .route("/api/v1/app/reports/{number}/rating", post(rate))
        .route("/api/v1/app/points", get(points))
        .layer(DefaultBodyLimit::max(64 * 1024));
    Router::new()
        .route(
            "/api/v1/app/reports",
            post(submit).layer(DefaultBodyLimit::max(upload_body_limit(limits))),
        )
        .merge(json)
}

fn app_of(app: &App) -> Result<&Arc<CitizenApp>, Problem> {
    app.citizen_app.as_ref().ok_or_else(|| {
        Problem::new(
            StatusCode::NOT_FOUND,
            "app_disabled",
            "城市App服务未开通（the citizen app API is not configured: add [app] to hotline.toml）",
        )
    })
}

fn unauthenticated() -> Problem {
    Problem::new(
        StatusCode::UNAUTHORIZED,
        "unauthenticated",
        "请先登录：POST /api/v1/app/auth/code 获取验证码，再 POST /api/v1/app/auth/login，并以 `Authorization: Bearer app_…` 发送令牌",
    )
}

/// The logged-in citizen of a request (bearer token from `/api/v1/app/auth/login`).
pub struct CurrentCitizen {
    /// Who.
    pub citizen: Citizen,
    /// The hash of their token (to log out).
    token_hash: String,
}

impl FromRequestParts<App> for CurrentCitizen {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, app: &App) -> Result<Self, Self::Rejection> {
        app_of(app)?;
        let token = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| {
                v.strip_prefix("Bearer ")
                    .or_else(|| v.strip_prefix("bearer "))
            })
            .map(str::trim)
            .filter(|t| t.starts_with("app_") && t.len() <= 256)
            .ok_or_else(unauthenticated)?;
        let token_hash = app_citizens::citizen_token_hash(token);
        let citizen = app
            .tickets
            .store()
            .citizen_by_token(&token_hash, Timestamp::now())
            .await?
            .ok_or_else(unauthenticated)?;
        Ok(CurrentCitizen {
            citizen,
            token_hash,
        })
    }
}

fn phone_of(raw: &str) -> Result<PhoneNumber, Problem> {
    let phone = PhoneNumber::parse(raw).map_err(|_| {
        Problem::new(
            StatusCode::BAD_REQUEST,
            "invalid_phone",
            "手机号码格式不正确，请填写 11 位手机号",
        )
    })?;
    let digits = phone.full().trim_start_matches('+');
    if !(7..=15).contains(&digits.len()) {
        return Err(Problem::new(
            StatusCode::BAD_REQUEST,
            "invalid_phone",
            "手机号码格式不正确，请填写 11 位手机号",
        ));
    }
    Ok(phone)
}

fn too_many(code: &'static str, detail: String, retry_after: u64) -> Problem {
    let mut p = Problem::new(StatusCode::TOO_MANY_REQUESTS, code, detail);
    p.retry_after = Some(retry_after);
    p
}

/// Asks for a login code.
#[derive(Debug, Deserialize, ToSchema)]
pub struct CodeRequest {
    /// The citizen's mobile number.
    #[schema(example = "13812345678")]
    pub phone: String,
}

/// A code is on its way.
#[derive(Debug, Serialize, ToSchema)]
pub struct CodeSent {
    /// The number it went to, masked.
    pub phone: String,
    /// Seconds the code stays valid.
    pub expires_in: i64,
    /// Seconds before another code may be asked for.
    pub resend_after: i64,
}

/// Sends a 6-digit login code to a phone (limited per phone: one a minute, a few an hour; and per
/// client address).
#[utoipa::path(post, path = "/api/v1/app/auth/code", tag = "app",
    request_body = CodeRequest,
    responses(
        (status = 202, description = "code sent", body = CodeSent),
        (status = 400, description = "not a phone number", body = Problem),
        (status = 429, description = "too many codes for this phone or from this address; see Retry-After", body = Problem),
        (status = 503, description = "the code could not be sent", body = Problem),
    ))]
pub async fn request_code(
    State(app): State<App>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    ApiJson(req): ApiJson<CodeRequest>,
) -> Result<(StatusCode, Json<CodeSent>), Problem> {
    let cfg = app_of(&app)?;
    let phone = phone_of(&req.phone)?;
    let client = app.proxy_trust.client_address(peer, &headers);
    if let Err(wait) = cfg.code_requests.take(client, std::time::Instant::now()) {
        let wait = wait.as_secs().max(1);
        tracing::warn!(%client, wait, "app: login code refused (too many from this address)");
        return Err(too_many(
            "code_rate_limited",
            format!(
                "此网络获取验证码过于频繁，请 {} 分钟后再试",
                wait.div_ceil(60)
            ),
            wait,
        ));
    }
    let store = app.tickets.store();
    let now = Timestamp::now();
    let sent = store
        .code_sends_since(phone.full(), now - SignedDuration::from_hours(1))
        .await?;
    if let Err(refusal) = cfg.policy.may_send(&sent, now) {
        let wait = refusal.retry_after();
        let detail = match refusal {
            citizens::SendRefusal::TooSoon { .. } => {
                format!("验证码发送过于频繁，请 {wait} 秒后再试")
            }
            citizens::SendRefusal::HourlyLimit { .. } => format!(
                "该号码一小时内获取验证码已达 {} 次，请 {} 分钟后再试",
                cfg.policy.per_hour,
                wait.div_ceil(60)
            ),
        };
        tracing::warn!(%phone, wait, "app: login code refused (rate limit)");
        return Err(too_many("code_rate_limited", detail, wait));
    }
    let code = app_citizens::new_code();
    let expires = now + cfg.policy.ttl;
    let hash = app_citizens::code_hash(&phone, &code).map_err(|e| {
        tracing::error!(error = %e, "app: cannot hash a login code");
        Problem::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "code_not_sent",
            "验证码暂时无法发送，请稍后再试",
        )
    })?;
    let id = store.add_code(phone.full(), &hash, now, expires).await?;
    if let Err(e) = cfg.sender.send(&phone, &code).await {
        tracing::error!(%phone, error = %e, "app: login code not sent");
        store.remove_code(id).await?;
        return Err(Problem::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "code_not_sent",
            "验证码发送失败，请稍后再试",
        ));
    }
    tracing::info!(%phone, "app: login code sent");
    Ok((
        StatusCode::ACCEPTED,
        Json(CodeSent {
            phone: phone.masked(),
            expires_in: cfg.policy.ttl.as_secs(),
            resend_after: cfg.policy.interval.as_secs(),
        }),
    ))
}

/// Logs in with the code.
#[derive(Debug, Deserialize, ToSchema)]
pub struct AppLoginRequest {
    /// The phone the code went to.
    pub phone: String,
    /// The 6 digits received.
    pub code: String,
}

/// A citizen's login.
#[derive(Debug, Serialize, ToSchema)]
pub struct AppLogin {
    /// Bearer token for the other `/api/v1/app/` routes (`app_…`).
    pub token: String,
    /// When it stops working.
    #[schema(value_type = String, format = DateTime)]
    pub expires_at: Timestamp,
    /// Who logged in.
    pub citizen: CitizenView,
}

/// A citizen as the app shows them.
#[derive(Debug, Serialize, ToSchema)]
pub struct CitizenView {
    /// Account id.
    pub id: i64,
    /// Their phone, masked.
    pub phone: String,
    /// Points balance.
    pub points: i64,
}

impl From<&Citizen> for CitizenView {
    fn from(c: &Citizen) -> Self {
        CitizenView {
            id: c.id,
            phone: PhoneNumber::parse(&c.phone)
                .map(|p| p.masked())
                .unwrap_or_default(),
            points: c.points,
        }
    }
}

/// Logs a citizen in with the code sent to their phone (the account is made on first login).
#[utoipa::path(post, path = "/api/v1/app/auth/login", tag = "app",
    request_body = AppLoginRequest,
    responses(
        (status = 200, description = "logged in", body = AppLogin),
        (status = 400, description = "not a phone number, or not a 6-digit code", body = Problem),
        (status = 401, description = "wrong, expired or no code (`code_wrong`, `code_expired`, `no_code`)", body = Problem),
        (status = 429, description = "too many wrong tries on this code: ask for a new one", body = Problem),
    ))]
pub async fn login(
    State(app): State<App>,
    ApiJson(req): ApiJson<AppLoginRequest>,
) -> Result<Json<AppLogin>, Problem> {
    let cfg = app_of(&app)?;
    let phone = phone_of(&req.phone)?;
    let code = req.code.trim();
    if !citizens::is_code_shaped(code) {
        return Err(Problem::new(
            StatusCode::BAD_REQUEST,
            "invalid_code",
            "验证码为 6 位数字",
        ));
    }
    let store = app.tickets.store();
    let now = Timestamp::now();
    let pending = store.latest_code(phone.full()).await?;
    let check = cfg.policy.check(
        pending.as_ref(),
        |stored| app_citizens::code_matches(&phone, code, stored),
        now,
    );
    let unauthorized = |code, detail: &str| Problem::new(StatusCode::UNAUTHORIZED, code, detail);
    let pending = match (check, pending) {
        (CodeCheck::Accepted, Some(p)) => p,
        (CodeCheck::Wrong { left }, Some(p)) => {
            store.code_failed(p.id).await?;
            tracing::warn!(%phone, left, "app: wrong login code");
            return Err(if left == 0 {
                too_many(
                    "code_attempts_exhausted",
                    "验证码错误次数过多，该验证码已失效，请重新获取".into(),
                    cfg.policy.interval.as_secs().max(1) as u64,
                )
            } else {
                unauthorized("code_wrong", &format!("验证码不正确，还可尝试 {left} 次"))
            });
        }
        (CodeCheck::Expired, _) => {
            return Err(unauthorized("code_expired", "验证码已过期，请重新获取"));
        }
        (CodeCheck::Exhausted, _) => {
            return Err(too_many(
                "code_attempts_exhausted",
                "验证码错误次数过多，该验证码已失效，请重新获取".into(),
                cfg.policy.interval.as_secs().max(1) as u64,
            ));
        }
        _ => return Err(unauthorized("no_code", "请先获取验证码")),
    };
    let token = app_citizens::new_citizen_token();
    let expires_at = now + cfg.token_ttl;
    let citizen = store
        .redeem_code(
            pending.id,
            phone.full(),
            &app_citizens::citizen_token_hash(&token),
            now,
            expires_at,
        )
        .await?
        .ok_or_else(|| unauthorized("no_code", "该验证码已使用，请重新获取"))?;
    tracing::info!(citizen = citizen.id, "app: citizen logged in");
    Ok(Json(AppLogin {
        token,
        expires_at,
        citizen: CitizenView::from(&citizen),
    }))
}

/// Ends the citizen's login: the token stops working.
#[utoipa::path(post, path = "/api/v1/app/auth/logout", tag = "app",
    security(("bearer" = [])),
    responses((status = 204, description = "logged out"), (status = 401, body = Problem)))]
pub async fn logout(State(app): State<App>, who: CurrentCitizen) -> Result<StatusCode, Problem> {
    app.tickets
        .store()
        .end_citizen_token(&who.token_hash)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The logged-in citizen.
#[utoipa::path(get, path = "/api/v1/app/me", tag = "app",
    security(("bearer" = [])),
    responses((status = 200, body = CitizenView), (status = 401, body = Problem)))]
pub async fn me(who: CurrentCitizen) -> Json<CitizenView> {
    Json(CitizenView::from(&who.citizen))
}

/// The multipart fields of an app report (for the OpenAPI document; read by [`ReportForm`]).
#[derive(ToSchema)]
#[allow(dead_code)] // documents the upload; the fields are read by ReportForm
pub struct AppReportUpload {
    /// What is wrong (required, at most 5,000 characters).
    content: String,
    /// A category code (`C0101`); suggested from the words when absent.
    category: Option<String>,
    /// Where, in words.
    address: Option<String>,
    /// WGS-84 latitude; when absent with `lon`, the first photo's EXIF GPS is used.
    lat: Option<f64>,
    /// WGS-84 longitude.
    lon: Option<f64>,
    /// The citizen's name, if they give it.
    name: Option<String>,
    /// Up to 9 photos (JPEG, PNG or WebP, checked by content; metadata is stripped).
    #[schema(value_type = Vec<String>, format = Binary)]
    photo: Vec<Vec<u8>>,
}

/// A report received.
#[derive(Debug, Serialize, ToSchema)]
pub struct AppSubmitted {
    /// The ticket number to quote.
    #[schema(example = "12319-20261202-000042")]
    pub number: String,
    /// Whether this was a retry of a report already received (nothing new was made).
    pub replayed: bool,
    /// The report as the citizen sees it.
    pub ticket: CitizenTicket,
}

/// The key of a retry-safe submission: 1–128 letters, digits, `-`, `_`, `.` or `:`.
fn idempotency_key(headers: &HeaderMap) -> Result<Option<String>, Problem> {
    let Some(v) = headers.get("idempotency-key") else {
        return Ok(None);
    };
    let key = v.to_str().unwrap_or_default().trim();
    let ok = (1..=128).contains(&key.len())
        && key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':'));
    if !ok {
        return Err(Problem::new(
            StatusCode::BAD_REQUEST,
            "invalid_idempotency_key",
            "Idempotency-Key 须为 1–128 个字母、数字或 - _ . :（例如一个 UUID）",
        ));
    }
    Ok(Some(key.to_owned()))
}

/// The system actor app tickets are opened by.
fn app_actor() -> Actor {
    Actor {
        id: 0,
        name: "城市App".into(),
        role: Role::Agent,
        department: None,
    }
}

/// Reports a problem (受理): text, optional category (suggested from the words when absent), up
/// to 9 photos, a location (or the first photo's EXIF GPS). With an `Idempotency-Key`, a retry
/// returns the ticket the first submission made (200) instead of a second one (201).
#[utoipa::path(post, path = "/api/v1/app/reports", tag = "app",
    security(("bearer" = [])),
    params(("Idempotency-Key" = Option<String>, Header, description = "one per report (a UUID), resent on retry")),
    request_body(content = inline(AppReportUpload), content_type = "multipart/form-data"),
    responses(
        (status = 201, body = AppSubmitted, description = "ticket opened"),
        (status = 200, body = AppSubmitted, description = "a retry: the ticket the first submission opened"),
        (status = 400, body = Problem, description = "a field is missing or wrong, or more than 9 photos"),
        (status = 401, body = Problem),
        (status = 413, body = Problem, description = "a photo or the whole upload is too large"),
        (status = 415, body = Problem, description = "a photo is not a JPEG, PNG or WebP image, or the body is not multipart"),
        (status = 422, body = Problem, description = "the ticket service refused the report (an unknown category)"),
    ))]
pub async fn submit(
    State(app): State<App>,
    who: CurrentCitizen,
    headers: HeaderMap,
    ApiMultipart(multipart): ApiMultipart,
) -> Result<Response, Problem> {
    let cfg = app_of(&app)?;
    let key = idempotency_key(&headers)?;
    let report = ReportForm::read(multipart, &cfg.limits).await?;
    let citizen = &who.citizen;
    let now = Timestamp::now();
    let day = app.tickets.sla().calendar().local_date(now);
    let photos = report.save_photos(&app.data_dir, day).await?;
    let new = NewTicket {
        hotline: None,
        channel: Some(Channel::App),
        reporter: Reporter {
            name: report.name.clone(),
            // The verified account number, not whatever the form says.
            phone: PhoneNumber::parse(&citizen.phone).ok(),
            wechat_openid: None,
            app_user: Some(citizen.app_user()),
        },
        content: report.content.clone(),
        category: report.category.clone(),
        location: Location {
            address: report.address.clone(),
            lat: report.lat,
            lon: report.lon,
            grid_code: None,
        },
        priority: Default::default(),
        attachments: photos.clone(),
    };
    let origin_key = key.map(|k| format!("app:{}:{k}", citizen.id));
    let origin = origin_key.as_deref().map(Origin::keyed).unwrap_or_default();
    let intake = intake_saved(&app.tickets, &app.data_dir, new, &origin, &app_actor(), now).await?;
    let number = intake.ticket.number.to_string();
    tracing::info!(ticket = %number, citizen = citizen.id, replayed = intake.replayed, photos = photos.len(), "app: report received");
    let ticket = app.tickets.citizen_ticket(citizen, &number).await?;
    let status = if intake.replayed {
        StatusCode::OK
    } else {
        StatusCode::CREATED
    };
    Ok((
        status,
        Json(AppSubmitted {
            number,
            replayed: intake.replayed,
            ticket,
        }),
    )
        .into_response())
}

/// Paging of "my reports".
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// 1-based page.
    #[serde(default = "first_page")]
    pub page: u32,
    /// Page size (1–100, default 20).
    #[serde(default = "page_size")]
    pub per_page: u32,
}

fn first_page() -> u32 {
    1
}
fn page_size() -> u32 {
    20
}

/// The citizen's own reports, newest first.
#[utoipa::path(get, path = "/api/v1/app/reports", tag = "app",
    security(("bearer" = [])), params(ListQuery),
    responses((status = 200, body = inline(Page<CitizenTicketSummary>)), (status = 401, body = Problem)))]
pub async fn list(
    State(app): State<App>,
    who: CurrentCitizen,
    ApiQuery(q): ApiQuery<ListQuery>,
) -> Result<Json<Page<CitizenTicketSummary>>, Problem> {
    Ok(Json(
        app.tickets
            .citizen_tickets(&who.citizen, q.page, q.per_page, Timestamp::now())
            .await?,
    ))
}

/// One of the citizen's reports: where it stands, its steps in plain words, their rating.
#[utoipa::path(get, path = "/api/v1/app/reports/{number}", tag = "app",
    security(("bearer" = [])),
    params(("number" = String, Path, description = "ticket number")),
    responses((status = 200, body = CitizenTicket), (status = 401, body = Problem),
        (status = 404, description = "no such report of this citizen", body = Problem)))]
pub async fn one(
    State(app): State<App>,
    who: CurrentCitizen,
    ApiPath(number): ApiPath<String>,
) -> Result<Json<CitizenTicket>, Problem> {
    Ok(Json(
        app.tickets
            .citizen_ticket(&who.citizen, &number)
            .await
            .map_err(not_found_in_chinese)?,
    ))
}

fn not_found_in_chinese(e: ticketing::Error) -> Problem {
    match e {
        ticketing::Error::NotFound(n) => Problem::new(
            StatusCode::NOT_FOUND,
            "ticket_not_found",
            format!("没有找到您反映的工单 {n}"),
        ),
        e => e.into(),
    }
}

/// Rates the result of a closed report (1–5 stars and an optional comment), once.
#[utoipa::path(post, path = "/api/v1/app/reports/{number}/rating", tag = "app",
    security(("bearer" = [])),
    params(("number" = String, Path, description = "ticket number")),
    request_body = Rating,
    responses(
        (status = 201, body = StoredRating, description = "rating recorded"),
        (status = 400, body = Problem, description = "stars outside 1–5 or a comment too long"),
        (status = 401, body = Problem),
        (status = 404, body = Problem),
        (status = 409, body = Problem, description = "not closed yet (`not_closed`) or already rated (`already_rated`)"),
    ))]
pub async fn rate(
    State(app): State<App>,
    who: CurrentCitizen,
    ApiPath(number): ApiPath<String>,
    ApiJson(rating): ApiJson<Rating>,
) -> Result<(StatusCode, Json<StoredRating>), Problem> {
    match app
        .tickets
        .rate(&who.citizen, &number, &rating, Timestamp::now())
        .await
    {
        Ok(stored) => Ok((StatusCode::CREATED, Json(stored))),
        Err(RateError::Refused(e)) => {
            let (status, code) = match e {
                RatingError::Stars | RatingError::CommentTooLong => {
                    (StatusCode::BAD_REQUEST, "invalid_rating")
                }
                RatingError::NotClosed(_) => (StatusCode::CONFLICT, "not_closed"),
                RatingError::AlreadyRated => (StatusCode::CONFLICT, "already_rated"),
            };
            Err(Problem::new(status, code, e.to_string()))
        }
        Err(RateError::Ticket(e)) => Err(not_found_in_chinese(e)),
    }
}

/// A citizen's points.
#[derive(Debug, Serialize, ToSchema)]
pub struct PointsView {
    /// The balance.
    pub balance: i64,
    /// How they were earned, newest first.
    pub ledger: Vec<PointsEntry>,
}

/// The citizen's points (积分) and how they earned them.
#[utoipa::path(get, path = "/api/v1/app/points", tag = "app",
    security(("bearer" = [])),
    responses((status = 200, body = PointsView), (status = 401, body = Problem)))]
pub async fn points(
    State(app): State<App>,
    who: CurrentCitizen,
) -> Result<Json<PointsView>, Problem> {
    let (balance, ledger) = app.tickets.store().points_ledger(who.citizen.id).await?;
    Ok(Json(PointsView { balance, ledger }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn idempotency_keys_are_checked() {
        let mut h = HeaderMap::new();
        assert_eq!(idempotency_key(&h).unwrap(), None);
        h.insert("idempotency-key", "3f2a-11ee:b.c_9".parse().unwrap());
        assert_eq!(
            idempotency_key(&h).unwrap().as_deref(),
            Some("3f2a-11ee:b.c_9")
        );
        for bad in ["a b", "", &"x".repeat(129), "键"] {
            let mut h = HeaderMap::new();
            h.insert(
                "idempotency-key",
                bad.parse()
                    .unwrap_or(axum::http::HeaderValue::from_bytes(bad.as_bytes()).unwrap()),
            );
            let p = idempotency_key(&h).unwrap_err();
            assert_eq!(
                (p.status, p.code),
                (400, "invalid_idempotency_key"),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn phones_are_checked() {
        assert_eq!(phone_of("138 1234 5678").unwrap().full(), "13812345678");
        for bad in ["123", "call me", "1234567890123456789"] {
            assert_eq!(phone_of(bad).unwrap_err().code, "invalid_phone", "{bad}");
        }
    }
}
