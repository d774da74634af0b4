//! The public web form (网上反映): a page at `/report` where anyone, without logging in, reports
//! a problem with photos and a location, and looks a ticket up by its number and phone
//! (`/report/lookup`).
//!
//! The page is plain HTML, CSS and JavaScript from `web/report/`, embedded in the binary (nothing
//! is fetched from the internet) and served with content-hashed asset URLs: the HTML is
//! revalidated on every visit, the assets are cached for a year. It talks to four public
//! endpoints:
//!
//! - `GET /api/v1/web/form`: what the form offers (categories, photo limits);
//! - `POST /api/v1/web/reports`: a report as `multipart/form-data` (read by the shared
//!   [`ReportForm`]), opened with [`ticketing::Tickets::intake_once`] keyed by the page's
//!   `Idempotency-Key`, so a double click or a retry after a lost answer never makes two tickets;
//! - `POST /api/v1/web/lookup`: number + phone → the status and time line in citizens' words. A
//!   wrong phone gets the same "not found" as a number that does not exist, so the form tells
//!   nobody which tickets exist;
//!
//! Both POSTs are rate-limited per client address ([`RateLimiter`], token buckets configured in
//! `[web_form]`); the address comes from a proxy header only when one is configured and the
//! request came from a trusted proxy. Every refusal is a problem+json whose `detail` is Chinese
//! and is shown on the page as it is.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{ConnectInfo, DefaultBodyLimit, FromRequest, Request, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use channels::photo::PhotoLimits;
use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use ticketing::model::{Location, PhoneNumber, Reporter};
use ticketing::store::Origin;
use ticketing::{Actor, Channel, NewTicket, Role, Status, Ticket};
use utoipa::ToSchema;

use super::App;
use super::problem::{ApiJson, Problem};
use super::rate_limit::RateLimiter;
use super::report_form::{ApiMultipart, ReportForm, intake_saved, upload_body_limit};

/// Fewest characters of a description that can be acted on.
pub const CONTENT_MIN_CHARS: usize = 5;
/// Most characters of a description on the web form.
pub const CONTENT_MAX_CHARS: usize = 2000;
/// Most characters of a name (the ticket keeps at most 64).
const NAME_MAX_CHARS: usize = 64;

// =============================================================================================
// Configuration
// =============================================================================================

/// `[web_form]` in hotline.toml: the public web form.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WebFormConfig {
    /// Serve the page and its endpoints (on by default).
    pub enabled: bool,
    /// The hotline web reports belong to; the first configured one when absent.
    pub hotline: Option<String>,
    /// Reports one address may send at once before it is slowed down.
    pub report_burst: u32,
    /// Reports per hour one address may send after its burst.
    pub reports_per_hour: u32,
    /// Look-ups one address may make at once.
    pub lookup_burst: u32,
    /// Look-ups per hour one address may make after its burst.
    pub lookups_per_hour: u32,
    /// Most photos in one report.
    pub max_photos: usize,
    /// Largest photo, in MiB.
    pub max_photo_mb: usize,
}

impl Default for WebFormConfig {
    fn default() -> Self {
        WebFormConfig {
            enabled: true,
            hotline: None,
            report_burst: 5,
            reports_per_hour: 20,
            lookup_burst: 10,
            lookups_per_hour: 120,
            max_photos: PhotoLimits::DEFAULT.max_count,
            max_photo_mb: PhotoLimits::DEFAULT.max_bytes / (1024 * 1024),
        }
    }
}

impl WebFormConfig {
    /// Checks the section against the configured hotline numbers; the message names the key.
    pub fn validate(&self, hotlines: &[ticketing::Hotline]) -> Result<(), String> {
        if self.report_burst == 0 || self.reports_per_hour == 0 {
            return Err("web_form.report_burst and web_form.reports_per_hour: at least 1".into());
        }
        if self.lookup_burst == 0 || self.lookups_per_hour == 0 {
            return Err("web_form.lookup_burst and web_form.lookups_per_hour: at least 1".into());
        }
        if self.max_photos > 20 {
            return Err(format!(
                "web_form.max_photos: at most 20 (is {})",
                self.max_photos
            ));
        }
        if !(1..=50).contains(&self.max_photo_mb) {
            return Err(format!(
                "web_form.max_photo_mb: between 1 and 50 (is {})",
                self.max_photo_mb
            ));
        }
        if let Some(n) = &self.hotline
            && !hotlines.iter().any(|h| &h.number == n)
        {
            return Err(format!(
                "web_form.hotline: `{n}` is not a configured [[hotline]] number"
            ));
        }
        Ok(())
    }

    /// The photo limits of one report.
    pub fn photo_limits(&self) -> PhotoLimits {
        PhotoLimits {
            max_bytes: self.max_photo_mb * 1024 * 1024,
            max_count: self.max_photos,
            ..PhotoLimits::DEFAULT
        }
    }
}

// =============================================================================================
// The service: configuration, limiters and the embedded page
// =============================================================================================

/// The web form's state, shared by its handlers.
pub struct WebForm {
    cfg: WebFormConfig,
    limits: PhotoLimits,
    reports: RateLimiter,
    lookups: RateLimiter,
    page: Asset,
    assets: Vec<(&'static str, Asset)>,
}

/// One embedded file with its headers.
struct Asset {
    body: Vec<u8>,
    content_type: &'static str,
    etag: String,
    cache: &'static str,
}

impl Asset {
    fn new(body: Vec<u8>, content_type: &'static str, cache: &'static str) -> Asset {
        let etag = format!("\"{}\"", version(&body));
        Asset {
            body,
            content_type,
            etag,
            cache,
        }
    }
}

fn version(bytes: &[u8]) -> String {
    hex::encode(&Sha256::digest(bytes)[..8])
}

const PAGE: &str = include_str!("../../web/report/index.html");
const STYLE: &str = include_str!("../../web/report/report.css");
const SCRIPT: &str = include_str!("../../web/report/report.js");
const ICON: &str = include_str!("../../web/report/icon.svg");

impl WebForm {
    /// The form with `cfg` (checked with [`WebFormConfig::validate`]).
    pub fn new(cfg: WebFormConfig) -> WebForm {
        let css = version(STYLE.as_bytes());
        let js = version(SCRIPT.as_bytes());
        let icon = version(ICON.as_bytes());
        let page = PAGE
            .replace("{{css}}", &format!("/report/assets/report.css?v={css}"))
            .replace("{{js}}", &format!("/report/assets/report.js?v={js}"))
            .replace("{{icon}}", &format!("/report/assets/icon.svg?v={icon}"));
        const YEAR: &str = "public, max-age=31536000, immutable";
        WebForm {
            limits: cfg.photo_limits(),
            reports: RateLimiter::new(cfg.report_burst, cfg.reports_per_hour),
            lookups: RateLimiter::new(cfg.lookup_burst, cfg.lookups_per_hour),
            cfg,
            page: Asset::new(page.into_bytes(), "text/html; charset=utf-8", "no-cache"),
            assets: vec![
                (
                    "report.css",
                    Asset::new(STYLE.into(), "text/css; charset=utf-8", YEAR),
                ),
                (
                    "report.js",
                    Asset::new(SCRIPT.into(), "text/javascript; charset=utf-8", YEAR),
                ),
                ("icon.svg", Asset::new(ICON.into(), "image/svg+xml", YEAR)),
            ],
        }
    }

    /// The photo limits applied to one report.
    pub fn photo_limits(&self) -> &PhotoLimits {
        &self.limits
    }
}

/// The routes of the page and its endpoints, to merge into the main router. The report route
/// has its own body limit (every photo at its largest), so it must not sit under the API's
/// 2 MiB limit.
pub fn routes(limits: &PhotoLimits) -> Router<App> {
    Router::new()
        .route("/report", get(page))
        .route("/report/", get(page))
        .route("/report/lookup", get(page))
        .route("/report/assets/{file}", get(asset))
        .route("/api/v1/web/form", get(form))
        .route(
            "/api/v1/web/reports",
            post(submit).layer(DefaultBodyLimit::max(upload_body_limit(limits))),
        )
        .route("/api/v1/web/lookup", post(lookup))
}

fn form_of(app: &App) -> Result<&Arc<WebForm>, Problem> {
    match &app.web_form {
        Some(f) if f.cfg.enabled => Ok(f),
        _ => Err(Problem::new(
            StatusCode::NOT_FOUND,
            "web_form_disabled",
            "网上反映暂未开放，请拨打服务热线反映问题（the web form is off: [web_form] enabled = false）",
        )),
    }
}

// =============================================================================================
// The page
// =============================================================================================

fn serve(asset: &Asset, headers: &HeaderMap) -> Response {
    let fresh = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == asset.etag));
    let status = if fresh {
        StatusCode::NOT_MODIFIED
    } else {
        StatusCode::OK
    };
    let mut response = if fresh {
        status.into_response()
    } else {
        (status, asset.body.clone()).into_response()
    };
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(asset.content_type),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static(asset.cache));
    if let Ok(etag) = HeaderValue::from_str(&asset.etag) {
        h.insert(header::ETAG, etag);
    }
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    response
}

/// The form and the look-up (one page; `/report/lookup` opens on the look-up).
pub async fn page(State(app): State<App>, headers: HeaderMap) -> Result<Response, Problem> {
    let form = form_of(&app)?;
    let mut response = serve(&form.page, &headers);
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'self'; img-src 'self' blob: data:; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
        ),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(
        HeaderName::from_static("permissions-policy"),
        HeaderValue::from_static("geolocation=(self), camera=(), microphone=()"),
    );
    Ok(response)
}

/// The page's stylesheet, script and icon.
pub async fn asset(
    State(app): State<App>,
    axum::extract::Path(file): axum::extract::Path<String>,
    headers: HeaderMap,
) -> Result<Response, Problem> {
    let form = form_of(&app)?;
    form.assets
        .iter()
        .find(|(name, _)| *name == file)
        .map(|(_, a)| serve(a, &headers))
        .ok_or_else(|| Problem::new(StatusCode::NOT_FOUND, "no_such_file", "没有这个文件"))
}

// =============================================================================================
// The endpoints
// =============================================================================================

/// What the form offers: the hotline, the categories a citizen may choose, and the limits.
#[derive(Debug, Serialize, ToSchema)]
pub struct FormInfo {
    /// The hotline's number (`12319`), to call instead.
    pub hotline: String,
    /// The hotline's name.
    pub hotline_name: String,
    /// Categories to choose from (optional on the form).
    pub categories: Vec<PublicCategory>,
    /// Most photos in one report.
    pub max_photos: usize,
    /// Largest photo, in bytes.
    pub max_photo_bytes: usize,
    /// Shortest description, in characters.
    pub content_min_chars: usize,
    /// Longest description, in characters.
    pub content_max_chars: usize,
}

/// A category as a citizen chooses it.
#[derive(Debug, Serialize, ToSchema)]
pub struct PublicCategory {
    /// The ID to send as `category` (`C0101`).
    pub id: String,
    /// The group it is shown in (大类 with 部件/事件).
    pub group: String,
    /// Its name (上水井盖).
    pub name: String,
}

/// The web form's choices and limits (public, no login).
#[utoipa::path(get, path = "/api/v1/web/form", tag = "web",
    responses((status = 200, body = FormInfo), (status = 404, body = Problem, description = "the web form is off")))]
pub async fn form(State(app): State<App>) -> Result<Response, Problem> {
    let form = form_of(&app)?;
    let (hotline, hotline_name) = hotline_of(&app, form);
    let categories = app
        .tickets
        .catalogue()
        .iter()
        .map(|c| PublicCategory {
            id: c.id.clone(),
            group: format!("{}（{}）", c.major_name, kind_zh(&c.id)),
            name: c.name.clone(),
        })
        .collect();
    let info = FormInfo {
        hotline,
        hotline_name,
        categories,
        max_photos: form.limits.max_count,
        max_photo_bytes: form.limits.max_bytes,
        content_min_chars: CONTENT_MIN_CHARS,
        content_max_chars: CONTENT_MAX_CHARS,
    };
    let mut response = axum::Json(info).into_response();
    response.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=300"),
    );
    Ok(response)
}

fn kind_zh(id: &str) -> &'static str {
    if id.starts_with('C') {
        "部件"
    } else {
        "事件"
    }
}

fn hotline_of(app: &App, form: &WebForm) -> (String, String) {
    let hotlines = app.tickets.hotlines();
    let h = match &form.cfg.hotline {
        Some(n) => hotlines.iter().find(|h| &h.number == n),
        None => hotlines.first(),
    };
    h.map(|h| (h.number.clone(), h.name.clone()))
        .unwrap_or_default()
}

/// The multipart fields of a web report (for the OpenAPI document; read by [`ReportForm`]).
#[derive(Debug, ToSchema)]
#[allow(dead_code)] // documents the upload; the fields are read by ReportForm
pub struct WebReportUpload {
    /// 问题描述, 5–2000 characters.
    content: String,
    /// 问题类型: a category ID from `/api/v1/web/form`; suggested from the text when absent.
    category: Option<String>,
    /// 地址.
    address: Option<String>,
    /// WGS-84 latitude (the browser's geolocation), with `lon`.
    lat: Option<f64>,
    /// WGS-84 longitude, with `lat`.
    lon: Option<f64>,
    /// 姓名.
    name: Option<String>,
    /// 手机号码, a mainland mobile number (1[3-9] and 9 digits); needed to look the ticket up.
    phone: String,
    /// Up to `max_photos` photos (JPEG, PNG or WebP, checked by content), each a part named
    /// `photo`.
    #[schema(value_type = Vec<String>, format = Binary)]
    photo: Vec<Vec<u8>>,
}

/// A report the form accepted.
#[derive(Debug, Serialize, ToSchema)]
pub struct Submitted {
    /// 工单编号, to look the ticket up with.
    #[schema(example = "12319-20261202-000042")]
    pub number: String,
    /// The `Idempotency-Key` had been used: this is the ticket the first submission made.
    pub replayed: bool,
    /// Where it stands, in citizens' words.
    pub status_text: &'static str,
    /// When it was received (local time, `YYYY-MM-DD HH:MM`).
    pub received_at: String,
    /// The ticket the report was merged into (someone reported the same problem).
    pub merged_into: Option<String>,
    /// Photos attached.
    pub photos: usize,
}

/// Reports a problem (网上反映): a multipart form with an `Idempotency-Key` header; a retry with
/// the same key returns the ticket the first one made (200) instead of a new one (201).
#[utoipa::path(post, path = "/api/v1/web/reports", tag = "web",
    params(("Idempotency-Key" = Option<String>, Header, description = "one per report (a UUID), resent on retry; 8–128 letters, digits, `-` or `_`")),
    request_body(content = inline(WebReportUpload), content_type = "multipart/form-data"),
    responses(
        (status = 201, body = Submitted, description = "ticket opened"),
        (status = 200, body = Submitted, description = "a retry: the ticket the first submission opened"),
        (status = 400, body = Problem, description = "a field is missing or wrong (the detail says which, in Chinese)"),
        (status = 413, body = Problem, description = "a photo or the whole upload is too large"),
        (status = 415, body = Problem, description = "a photo is not a JPEG, PNG or WebP image, or the body is not multipart"),
        (status = 429, body = Problem, description = "too many reports from this address; see Retry-After"),
    ))]
pub async fn submit(
    State(app): State<App>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    ApiMultipart(multipart): ApiMultipart,
) -> Response {
    match submit_inner(&app, peer, &headers, multipart).await {
        Ok((status, body)) => (status, axum::Json(body)).into_response(),
        Err(p) => for_citizens(p).into_response(),
    }
}

async fn submit_inner(
    app: &App,
    peer: SocketAddr,
    headers: &HeaderMap,
    multipart: axum::extract::Multipart,
) -> Result<(StatusCode, Submitted), Problem> {
    let form = form_of(app)?;
    let client = app.proxy_trust.client_address(peer, headers);
    if let Err(wait) = form.reports.take(client, Instant::now()) {
        metrics::counter!("hotline_web_reports_total", "outcome" => "rate_limited").increment(1);
        tracing::warn!(%client, "web form: too many reports from one address");
        return Err(rate_limited(wait, "提交"));
    }
    let key = idempotency_key(headers)?;
    let report = ReportForm::read(multipart, &form.limits).await?;
    let new = web_ticket(app, form, &report)?;
    let now = Timestamp::now();
    let day = app.tickets.sla().calendar().local_date(now);
    let photos = report.save_photos(&app.data_dir, day).await?;
    let mut new = new;
    new.attachments = photos.clone();
    let origin_key = key.map(|k| format!("web:{k}"));
    let origin = origin_key.as_deref().map(Origin::keyed).unwrap_or_default();
    let intake = intake_saved(&app.tickets, &app.data_dir, new, &origin, &web_actor(), now).await?;
    let outcome = if intake.replayed {
        "replayed"
    } else {
        "opened"
    };
    metrics::counter!("hotline_web_reports_total", "outcome" => outcome).increment(1);
    let t = &intake.ticket;
    let status = if intake.replayed {
        StatusCode::OK
    } else {
        StatusCode::CREATED
    };
    Ok((
        status,
        Submitted {
            number: t.number.to_string(),
            replayed: intake.replayed,
            status_text: channels::wechat::account::status_for_citizens(t.work.status),
            received_at: local_time(app, t.created_at),
            merged_into: t.merged_into.as_ref().map(|n| n.to_string()),
            photos: t.attachments.len(),
        },
    ))
}

/// The system actor web tickets are opened by.
fn web_actor() -> Actor {
    Actor {
        id: 0,
        name: "网上反映".into(),
        role: Role::Agent,
        department: None,
    }
}

fn idempotency_key(headers: &HeaderMap) -> Result<Option<String>, Problem> {
    let Some(v) = headers.get("idempotency-key") else {
        return Ok(None);
    };
    let key = v.to_str().unwrap_or_default().trim();
    let ok = (8..=128).contains(&key.len())
        && key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if !ok {
        return Err(bad(
            "invalid_idempotency_key",
            "页面提交标识无效，请刷新页面后重新提交（Idempotency-Key: 8-128 letters, digits, - or _）",
        ));
    }
    Ok(Some(key.to_owned()))
}

/// The report as a web ticket, after the web form's own checks (a mobile number is required
/// here, the description has a length range, the category must exist).
fn web_ticket(app: &App, form: &WebForm, r: &ReportForm) -> Result<NewTicket, Problem> {
    let chars = r.content.chars().count();
    if chars < CONTENT_MIN_CHARS {
        return Err(bad(
            "content_too_short",
            format!("问题描述太短，请至少写 {CONTENT_MIN_CHARS} 个字，说明什么地方出了什么问题"),
        ));
    }
    if chars > CONTENT_MAX_CHARS {
        return Err(bad(
            "field_too_long",
            format!("问题描述最多 {CONTENT_MAX_CHARS} 个字（现有 {chars} 个字）"),
        ));
    }
    let phone = match r.phone.as_deref() {
        None => {
            return Err(bad(
                "phone_missing",
                "请填写手机号码：查询进度和回访都要用到",
            ));
        }
        Some(p) => mobile(p).ok_or_else(|| {
            bad(
                "invalid_phone",
                "手机号码格式不正确：请填写 11 位手机号码，例如 13812345678",
            )
        })?,
    };
    if r.name
        .as_ref()
        .is_some_and(|n| n.chars().count() > NAME_MAX_CHARS)
    {
        return Err(bad(
            "field_too_long",
            format!("姓名最多 {NAME_MAX_CHARS} 个字"),
        ));
    }
    if let Some(c) = &r.category
        && app.tickets.catalogue().get(c).is_none()
    {
        return Err(bad(
            "invalid_category",
            "所选问题类型不存在，请刷新页面后重新选择，或不选由我们判断",
        ));
    }
    let phone =
        PhoneNumber::parse(&phone).map_err(|_| bad("invalid_phone", "手机号码格式不正确"))?;
    Ok(NewTicket {
        hotline: Some(hotline_of(app, form).0).filter(|h| !h.is_empty()),
        channel: Some(Channel::Web),
        reporter: Reporter {
            name: r.name.clone(),
            phone: Some(phone),
            ..Reporter::default()
        },
        content: r.content.clone(),
        category: r.category.clone(),
        location: Location {
            address: r.address.clone(),
            lat: r.lat,
            lon: r.lon,
            grid_code: None,
        },
        ..NewTicket::default()
    })
}

/// A mainland mobile number (`1[3-9]` and 9 more digits) from what a citizen typed: spaces and
/// dashes are dropped, a `+86`/`86` prefix is removed. `None` when it is not one.
pub fn mobile(raw: &str) -> Option<String> {
    let digits: String = raw
        .trim()
        .chars()
        .filter(|c| !matches!(c, ' ' | '-' | '(' | ')'))
        .collect();
    let digits = digits
        .strip_prefix("+86")
        .or_else(|| digits.strip_prefix("0086"))
        .or_else(|| {
            (digits.len() == 13)
                .then(|| digits.strip_prefix("86"))
                .flatten()
        })
        .unwrap_or(&digits);
    let b = digits.as_bytes();
    let ok = b.len() == 11
        && b[0] == b'1'
        && (b'3'..=b'9').contains(&b[1])
        && b.iter().all(u8::is_ascii_digit);
    ok.then(|| digits.to_owned())
}

/// A ticket number and the phone it was reported with.
#[derive(Debug, Deserialize, ToSchema)]
pub struct LookupRequest {
    /// 工单编号 (`12319-20261202-000042`).
    pub number: String,
    /// The mobile number given in the report.
    pub phone: String,
}

/// Where a ticket stands, in citizens' words; nothing staff-internal (no notes, no names).
#[derive(Debug, Serialize, ToSchema)]
pub struct Progress {
    /// 工单编号.
    pub number: String,
    /// The status code (`filed`...).
    pub status: Status,
    /// The status in citizens' words (已立案，待派遣...).
    pub status_text: &'static str,
    /// The problem type, if set.
    pub category: Option<String>,
    /// The department handling it (承办单位), once dispatched.
    pub department: Option<String>,
    /// The report's beginning, to recognise it by.
    pub summary: String,
    /// When it was received (local time).
    pub received_at: String,
    /// Last change (local time).
    pub updated_at: String,
    /// The ticket it is handled with, when someone else reported the same problem.
    pub merged_into: Option<String>,
    /// What happened, oldest first.
    pub timeline: Vec<Step>,
}

/// One step of the time line.
#[derive(Debug, Serialize, ToSchema)]
pub struct Step {
    /// When (local time, `YYYY-MM-DD HH:MM`).
    pub at: String,
    /// What happened, in citizens' words.
    pub text: &'static str,
}

/// JSON or an HTML form's urlencoded body, with a [`Problem`] as rejection.
pub struct JsonOrForm<T>(pub T);

impl<S, T> FromRequest<S> for JsonOrForm<T>
where
    S: Send + Sync,
    T: serde::de::DeserializeOwned,
{
    type Rejection = Problem;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let is_form = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
        if is_form {
            axum::Form::<T>::from_request(req, state)
                .await
                .map(|axum::Form(t)| JsonOrForm(t))
                .map_err(|r| {
                    bad(
                        "invalid_form",
                        format!("请填写工单编号和手机号码（{}）", r.body_text()),
                    )
                })
        } else {
            ApiJson::<T>::from_request(req, state)
                .await
                .map(|ApiJson(t)| JsonOrForm(t))
        }
    }
}

/// Looks a ticket up by its number and the phone it was reported with (查询进度). A wrong phone
/// and an unknown number get the same 404.
#[utoipa::path(post, path = "/api/v1/web/lookup", tag = "web",
    request_body(content = LookupRequest, description = "JSON, or an HTML form (application/x-www-form-urlencoded)"),
    responses(
        (status = 200, body = Progress),
        (status = 400, body = Problem, description = "number or phone missing or malformed"),
        (status = 404, body = Problem, description = "no ticket with this number and phone"),
        (status = 429, body = Problem, description = "too many look-ups from this address; see Retry-After"),
    ))]
pub async fn lookup(
    State(app): State<App>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Result<JsonOrForm<LookupRequest>, Problem>,
) -> Response {
    let result = async {
        let form = form_of(&app)?;
        let client = app.proxy_trust.client_address(peer, &headers);
        if let Err(wait) = form.lookups.take(client, Instant::now()) {
            tracing::warn!(%client, "web form: too many look-ups from one address");
            return Err(rate_limited(wait, "查询"));
        }
        let JsonOrForm(req) = body?;
        progress(&app, &req).await
    }
    .await;
    match result {
        Ok(p) => axum::Json(p).into_response(),
        Err(p) => for_citizens(p).into_response(),
    }
}

async fn progress(app: &App, req: &LookupRequest) -> Result<Progress, Problem> {
    if req.number.trim().is_empty() || req.phone.trim().is_empty() {
        return Err(bad("lookup_missing", "请填写工单编号和手机号码"));
    }
    let phone = mobile(&req.phone).ok_or_else(|| {
        bad(
            "invalid_phone",
            "手机号码格式不正确：请填写反映问题时留下的 11 位手机号码",
        )
    })?;
    let not_found = || {
        Problem::new(
            StatusCode::NOT_FOUND,
            "not_found",
            "未找到该工单：请核对工单编号和手机号码（须为反映问题时留下的号码）",
        )
    };
    let actor = web_actor();
    let ticket = match app.tickets.get(req.number.trim(), &actor).await {
        Ok(t) => t,
        Err(ticketing::Error::NotFound(_)) => return Err(not_found()),
        Err(e) => return Err(e.into()),
    };
    let reported = ticket.reporters.iter().any(|r| {
        r.phone
            .as_ref()
            .and_then(|p| mobile(p.full()))
            .is_some_and(|p| p == phone)
    });
    if !reported {
        return Err(not_found());
    }
    // A merged report is handled with the ticket it went into: show that one's progress.
    let handled: Ticket = match &ticket.merged_into {
        Some(target) => match app.tickets.get(target.as_str(), &actor).await {
            Ok(t) => t,
            Err(ticketing::Error::NotFound(_)) => return Err(not_found()),
            Err(e) => return Err(e.into()),
        },
        None => ticket.clone(),
    };
    let events = app.tickets.history(handled.number.as_str(), &actor).await?;
    let timeline = events
        .iter()
        .filter_map(|e| {
            ticketing::citizens::step_for_citizens(e.action, e.to).map(|text| Step {
                at: local_time(app, e.at),
                text,
            })
        })
        .collect();
    let category = handled
        .work
        .category
        .as_deref()
        .and_then(|c| app.tickets.catalogue().get(c))
        .map(|c| c.name.clone());
    let department = handled
        .work
        .department
        .as_deref()
        .and_then(|d| app.tickets.directory().get(d))
        .map(|d| d.name.clone());
    Ok(Progress {
        number: ticket.number.to_string(),
        status: handled.work.status,
        status_text: channels::wechat::account::status_for_citizens(handled.work.status),
        category,
        department,
        summary: ticket.content.chars().take(80).collect(),
        received_at: local_time(app, ticket.created_at),
        updated_at: local_time(app, handled.updated_at),
        merged_into: ticket.merged_into.as_ref().map(|n| n.to_string()),
        timeline,
    })
}

fn local_time(app: &App, t: Timestamp) -> String {
    let zone = app.tickets.sla().calendar().timezone().clone();
    t.to_zoned(zone).strftime("%Y-%m-%d %H:%M").to_string()
}

fn bad(code: &'static str, detail: impl Into<String>) -> Problem {
    Problem::new(StatusCode::BAD_REQUEST, code, detail)
}

fn rate_limited(wait: Duration, what: &str) -> Problem {
    let secs = wait.as_secs().max(1);
    let when = if secs < 60 {
        format!("{secs} 秒")
    } else {
        format!("{} 分钟", secs.div_ceil(60))
    };
    let mut p = Problem::new(
        StatusCode::TOO_MANY_REQUESTS,
        "rate_limited",
        format!("{what}过于频繁，请 {when}后再试；情况紧急请直接拨打服务热线"),
    );
    p.retry_after = Some(secs);
    p
}

/// The problem as the page shows it: Chinese only. The shared checks add an English gloss in
/// parentheses for API clients; a gloss without any Chinese is dropped here, and a server failure
/// reads as one sentence a citizen can act on.
fn for_citizens(mut p: Problem) -> Problem {
    if p.status >= 500 {
        p.detail = "服务暂时不可用，请稍后再试；情况紧急请直接拨打服务热线".into();
        return p;
    }
    if p.status == 422 {
        // The intake refused something the form's checks let through.
        p.detail = "提交的内容有误，请检查后重新提交".into();
        return p;
    }
    p.detail = drop_glosses(&p.detail);
    p
}

fn drop_glosses(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(open) = rest.find('（') {
        let after = &rest[open + '（'.len_utf8()..];
        let Some(close) = after.find('）') else {
            break;
        };
        let inner = &after[..close];
        out.push_str(&rest[..open]);
        if inner.chars().any(is_cjk) {
            out.push('（');
            out.push_str(inner);
            out.push('）');
        }
        rest = &after[close + '）'.len_utf8()..];
    }
    out.push_str(rest);
    out
}

fn is_cjk(c: char) -> bool {
    matches!(c, '\u{4e00}'..='\u{9fff}' | '\u{3400}'..='\u{4dbf}')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mobile_numbers_are_mainland_mobiles() {
        assert_eq!(mobile("13812345678").as_deref(), Some("13812345678"));
        assert_eq!(mobile("138-1234-5678").as_deref(), Some("13812345678"));
        assert_eq!(mobile("+86 139 0000 1234").as_deref(), Some("13900001234"));
        assert_eq!(mobile("8619912345678").as_deref(), Some("19912345678"));
        for bad in [
            "12812345678",
            "1381234567",
            "138123456789",
            "0551-12319",
            "1381234567x",
            "",
            "１３８１２３４５６７８",
        ] {
            assert_eq!(mobile(bad), None, "{bad}");
        }
    }

    #[test]
    fn english_glosses_are_dropped_and_chinese_ones_kept() {
        assert_eq!(
            drop_glosses("请填写问题描述（field `content` is required）"),
            "请填写问题描述"
        );
        assert_eq!(
            drop_glosses(
                "第 1 张照片不是可接受的图片（网页），只接受 JPEG、PNG 或 WebP 格式的照片（the content is a web page）"
            ),
            "第 1 张照片不是可接受的图片（网页），只接受 JPEG、PNG 或 WebP 格式的照片"
        );
        assert_eq!(drop_glosses("没有括号"), "没有括号");
        assert_eq!(drop_glosses("未闭合（abc"), "未闭合（abc");
        let p = for_citizens(Problem::internal(&"db down"));
        assert_eq!(p.status, 500);
        assert!(p.detail.starts_with("服务暂时不可用"), "{}", p.detail);
    }

    #[test]
    fn the_section_is_checked() {
        let hotlines = vec![ticketing::Hotline {
            number: "12319".into(),
            name: "城市管理服务热线".into(),
            aliases: vec![],
            hours: None,
        }];
        assert_eq!(WebFormConfig::default().validate(&hotlines), Ok(()));
        let cfg: WebFormConfig = toml::from_str("report_burst = 0").unwrap();
        assert!(
            cfg.validate(&hotlines)
                .unwrap_err()
                .contains("report_burst")
        );
        assert!(
            toml::from_str::<WebFormConfig>("client_ip_header = \"X-Real-IP\"").is_err(),
            "the proxy header is an [http] key"
        );
        let cfg: WebFormConfig = toml::from_str("hotline = \"12345\"").unwrap();
        assert!(
            cfg.validate(&hotlines)
                .unwrap_err()
                .contains("web_form.hotline")
        );
        assert!(toml::from_str::<WebFormConfig>("burst = 3").is_err());
        let cfg: WebFormConfig = toml::from_str("max_photos = 3\nmax_photo_mb = 2").unwrap();
        let l = cfg.photo_limits();
        assert_eq!((l.max_count, l.max_bytes), (3, 2 * 1024 * 1024));
    }
}
