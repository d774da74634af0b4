//! `/api/v1/users`: staff accounts, for administrators.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use jiff::Timestamp;
use serde::Deserialize;
use ticketing::Role;
use ticketing::store::{NewUser, User};
use utoipa::ToSchema;

use super::App;
use super::problem::{ApiJson, Problem};
use super::session::CurrentUser;
use crate::auth;

/// A new staff account.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewUserRequest {
    /// Login name (1-64 characters, no spaces).
    pub username: String,
    /// Name shown in the audit trail.
    pub display_name: Option<String>,
    /// Role.
    pub role: Role,
    /// Department code, for department users.
    pub department: Option<String>,
    /// Initial password, at least 8 characters.
    pub password: String,
}

/// Every staff account.
#[utoipa::path(get, path = "/api/v1/users", tag = "users",
    responses((status = 200, body = Vec<User>), (status = 403, body = Problem)),
    security(("bearer" = []), ("cookie" = [])))]
pub async fn list(
    State(app): State<App>,
    user: CurrentUser,
) -> Result<axum::Json<Vec<User>>, Problem> {
    user.require(&[Role::Admin, Role::Supervisor])?;
    Ok(axum::Json(app.tickets.store().users().await?))
}

/// Adds a staff account (admins only).
#[utoipa::path(post, path = "/api/v1/users", tag = "users",
    request_body = NewUserRequest,
    responses((status = 201, body = User), (status = 403, body = Problem), (status = 409, body = Problem), (status = 422, body = Problem)),
    security(("bearer" = []), ("cookie" = [])))]
pub async fn create(
    State(app): State<App>,
    user: CurrentUser,
    ApiJson(req): ApiJson<NewUserRequest>,
) -> Result<Response, Problem> {
    user.require(&[Role::Admin])?;
    let invalid =
        |detail: &str| Problem::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_request", detail);
    let username = req.username.trim().to_owned();
    if username.is_empty() || username.len() > 64 || username.chars().any(char::is_whitespace) {
        return Err(invalid("username: 1-64 characters without spaces"));
    }
    if req.password.chars().count() < 8 {
        return Err(invalid("password: at least 8 characters"));
    }
    match (&req.role, &req.department) {
        (Role::Department, None) => {
            return Err(invalid(
                "department: a department user needs a department code",
            ));
        }
        (Role::Department, Some(d)) if app.tickets.directory().get(d).is_none() => {
            return Err(invalid("department: no such department"));
        }
        (r, Some(_)) if *r != Role::Department => {
            return Err(invalid(
                "department: only department users belong to a department",
            ));
        }
        _ => {}
    }
    let password = req.password;
    let hash = tokio::task::spawn_blocking(move || auth::hash_password(&password))
        .await
        .map_err(|e| Problem::internal(&e))?
        .map_err(|e| Problem::internal(&e))?;
    let created = app
        .tickets
        .store()
        .add_user(
            &NewUser {
                display_name: req
                    .display_name
                    .filter(|n| !n.trim().is_empty())
                    .unwrap_or_else(|| username.clone()),
                username,
                role: req.role,
                department: req.department,
                password_hash: hash,
            },
            Timestamp::now(),
        )
        .await?;
    tracing::info!(by = %user.0.username, user = %created.username, role = %created.role, "user added");
    Ok((StatusCode::CREATED, axum::Json(created)).into_response())
}
