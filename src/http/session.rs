//! Login, logout and who is asking: the [`CurrentUser`] extractor every protected route takes.

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use jiff::{SignedDuration, Timestamp};
use serde::{Deserialize, Serialize};
use ticketing::store::User;
use ticketing::workflow::Role;
use utoipa::ToSchema;

use super::App;
use super::problem::{ApiJson, Problem};
use crate::auth;

/// Name of the session cookie set at login.
pub const COOKIE: &str = "hotline_session";

/// The logged-in user of a request. Taking it as an argument makes a route require a session
/// (bearer token or cookie).
pub struct CurrentUser(pub User);

impl CurrentUser {
    /// Refuses unless the user has one of `roles`.
    pub fn require(&self, roles: &[Role]) -> Result<(), Problem> {
        if roles.contains(&self.0.role) {
            Ok(())
        } else {
            Err(Problem::forbidden(format!(
                "a user with role {} may not do this",
                self.0.role
            )))
        }
    }
}

fn token_from(headers: &HeaderMap) -> Option<String> {
    if let Some(auth) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        && let Some(token) = auth
            .strip_prefix("Bearer ")
            .or_else(|| auth.strip_prefix("bearer "))
    {
        return Some(token.trim().to_owned());
    }
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE)
        .map(|(_, value)| value.to_owned())
}

impl FromRequestParts<App> for CurrentUser {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, app: &App) -> Result<Self, Self::Rejection> {
        let token = token_from(&parts.headers).ok_or_else(Problem::unauthenticated)?;
        if token.is_empty() || token.len() > 256 {
            return Err(Problem::unauthenticated());
        }
        let session = app
            .tickets
            .store()
            .session(&auth::token_hash(&token), Timestamp::now())
            .await?
            .ok_or_else(Problem::unauthenticated)?;
        Ok(CurrentUser(session.user))
    }
}

/// Credentials.
#[derive(Debug, Deserialize, ToSchema)]
pub struct LoginRequest {
    /// Login name.
    pub username: String,
    /// Password.
    pub password: String,
}

/// A new session.
#[derive(Debug, Serialize, ToSchema)]
pub struct LoginResponse {
    /// Bearer token (also set as the `hotline_session` cookie).
    pub token: String,
    /// When it stops working.
    #[schema(value_type = String, format = DateTime)]
    pub expires_at: Timestamp,
    /// Who logged in.
    pub user: User,
}

/// Logs in; failed attempts are limited per user name and per client address.
#[utoipa::path(post, path = "/api/v1/auth/login", tag = "auth",
    request_body = LoginRequest,
    responses(
        (status = 200, description = "Logged in; the token is also set as a cookie", body = LoginResponse),
        (status = 401, description = "Wrong user name or password", body = Problem),
        (status = 429, description = "Too many failed attempts", body = Problem),
    ))]
pub async fn login(
    State(app): State<App>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: axum::http::HeaderMap,
    ApiJson(req): ApiJson<LoginRequest>,
) -> Result<Response, Problem> {
    let now = Timestamp::now();
    let user_key = format!("user:{}", req.username.trim().to_lowercase());
    let ip_key = format!("ip:{}", app.proxy_trust.client_address(peer, &headers));
    let keys = [user_key.as_str(), ip_key.as_str()];
    if let Some(wait) = app.login_limiter.blocked(&keys, now) {
        let mut p = Problem::new(
            StatusCode::TOO_MANY_REQUESTS,
            "too_many_login_attempts",
            format!("too many failed logins; try again in {wait} seconds"),
        );
        p.retry_after = Some(wait);
        return Err(p);
    }
    let user = app
        .tickets
        .store()
        .user_by_username(req.username.trim())
        .await?
        .filter(|u| u.disabled_at.is_none());
    let hash = user.as_ref().map_or_else(
        || auth::decoy_hash().to_owned(),
        |u| u.password_hash.clone(),
    );
    let password = req.password;
    let ok = tokio::task::spawn_blocking(move || auth::verify_password(&password, &hash))
        .await
        .unwrap_or(false);
    let Some(user) = user.filter(|_| ok) else {
        app.login_limiter.failed(&keys, now);
        tracing::warn!(user = %req.username.chars().take(64).collect::<String>(), peer = %peer.ip(), "failed login");
        return Err(Problem::new(
            StatusCode::UNAUTHORIZED,
            "bad_credentials",
            "wrong user name or password",
        ));
    };
    app.login_limiter.succeeded(&user_key);
    let token = auth::new_token();
    let expires_at = now + SignedDuration::from_hours(i64::from(app.session_hours));
    app.tickets
        .store()
        .create_session(&auth::token_hash(&token), user.id, now, expires_at)
        .await?;
    tracing::info!(user = %user.username, role = %user.role, "login");
    let cookie = format!(
        "{COOKIE}={token}; Path=/; HttpOnly; SameSite=Strict; Max-Age={}{}",
        i64::from(app.session_hours) * 3600,
        if app.secure_cookies { "; Secure" } else { "" }
    );
    let mut response = axum::Json(LoginResponse {
        token,
        expires_at,
        user,
    })
    .into_response();
    if let Ok(v) = HeaderValue::from_str(&cookie) {
        response.headers_mut().insert(header::SET_COOKIE, v);
    }
    Ok(response)
}

/// Ends the session of the token or cookie sent.
#[utoipa::path(post, path = "/api/v1/auth/logout", tag = "auth",
    responses((status = 204, description = "Logged out")),
    security(("bearer" = []), ("cookie" = [])))]
pub async fn logout(State(app): State<App>, headers: HeaderMap) -> Result<Response, Problem> {
    if let Some(token) = token_from(&headers) {
        app.tickets
            .store()
            .delete_session(&auth::token_hash(&token))
            .await?;
    }
    let mut response = StatusCode::NO_CONTENT.into_response();
    response.headers_mut().insert(
        header::SET_COOKIE,
        HeaderValue::from_static("hotline_session=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0"),
    );
    Ok(response)
}

/// The logged-in user.
#[utoipa::path(get, path = "/api/v1/auth/me", tag = "auth",
    responses((status = 200, body = User), (status = 401, body = Problem)),
    security(("bearer" = []), ("cookie" = [])))]
pub async fn me(CurrentUser(user): CurrentUser) -> axum::Json<User> {
    axum::Json(user)
}
