//! Reference data the console needs: categories, departments, hotlines.

use axum::extract::State;
use ticketing::Hotline;
use ticketing::category::Category;
use ticketing::department::Department;

use super::App;
use super::session::CurrentUser;

/// Every 小类 with its 大类, limits and default department.
#[utoipa::path(get, path = "/api/v1/categories", tag = "reference",
    responses((status = 200, body = Vec<Category>)),
    security(("bearer" = []), ("cookie" = [])))]
pub async fn categories(State(app): State<App>, _user: CurrentUser) -> axum::Json<Vec<Category>> {
    axum::Json(app.tickets.catalogue().iter().cloned().collect())
}

/// Every department work orders can be dispatched to.
#[utoipa::path(get, path = "/api/v1/departments", tag = "reference",
    responses((status = 200, body = Vec<Department>)),
    security(("bearer" = []), ("cookie" = [])))]
pub async fn departments(
    State(app): State<App>,
    _user: CurrentUser,
) -> axum::Json<Vec<Department>> {
    axum::Json(app.tickets.directory().iter().cloned().collect())
}

/// The hotlines this centre runs.
#[utoipa::path(get, path = "/api/v1/hotlines", tag = "reference",
    responses((status = 200, body = Vec<Hotline>)),
    security(("bearer" = []), ("cookie" = [])))]
pub async fn hotlines(State(app): State<App>, _user: CurrentUser) -> axum::Json<Vec<Hotline>> {
    axum::Json(app.tickets.hotlines().to_vec())
}
