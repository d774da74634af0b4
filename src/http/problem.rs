//! Errors as `application/problem+json` (RFC 9457) with a stable `code`, mapped in one place.

use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use ticketing::store::StoreError;
use ticketing::workflow::WorkflowError;
use utoipa::ToSchema;

/// An error response. `code` is stable; `detail` says what to do in words.
#[derive(Debug, Serialize, ToSchema)]
pub struct Problem {
    /// Always `about:blank`: `code` tells the kind.
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// HTTP reason phrase.
    pub title: String,
    /// HTTP status code.
    pub status: u16,
    /// Stable machine-readable code, e.g. `illegal_transition`.
    pub code: &'static str,
    /// What went wrong.
    pub detail: String,
    /// Seconds to wait before trying again (rate limits).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retry_after: Option<u64>,
}

impl Problem {
    /// A problem with this status, code and detail.
    pub fn new(status: StatusCode, code: &'static str, detail: impl Into<String>) -> Self {
        Problem {
            kind: "about:blank",
            title: status.canonical_reason().unwrap_or("Error").to_owned(),
            status: status.as_u16(),
            code,
            detail: detail.into(),
            retry_after: None,
        }
    }

    /// 401: no valid session.
    pub fn unauthenticated() -> Self {
        Problem::new(
            StatusCode::UNAUTHORIZED,
            "unauthenticated",
            "log in first: POST /api/v1/auth/login, then send the token as `Authorization: Bearer ...` or the session cookie",
        )
    }

    /// 403: the role may not use this route.
    pub fn forbidden(detail: impl Into<String>) -> Self {
        Problem::new(StatusCode::FORBIDDEN, "forbidden", detail)
    }

    /// 500 for a failure the client cannot fix; the cause goes to the log, not the client.
    pub fn internal(err: &dyn std::fmt::Display) -> Self {
        tracing::error!(error = %err, "request failed");
        Problem::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal_error",
            "the server failed to handle this request; it has been logged",
        )
    }
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let retry = self.retry_after;
        let mut response = (status, axum::Json(self)).into_response();
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        if let Some(secs) = retry {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        response
    }
}

impl From<ticketing::Error> for Problem {
    fn from(err: ticketing::Error) -> Self {
        use ticketing::Error as E;
        let status = match &err {
            E::NotFound(_) => StatusCode::NOT_FOUND,
            E::Invalid { .. } => StatusCode::UNPROCESSABLE_ENTITY,
            E::Forbidden(_) => StatusCode::FORBIDDEN,
            E::Workflow(w) => match w {
                WorkflowError::Forbidden { .. } | WorkflowError::NotYourDepartment => {
                    StatusCode::FORBIDDEN
                }
                WorkflowError::Missing { .. } | WorkflowError::ExtensionNotLater { .. } => {
                    StatusCode::UNPROCESSABLE_ENTITY
                }
                _ => StatusCode::CONFLICT,
            },
            E::Store(StoreError::Duplicate(_)) => StatusCode::CONFLICT,
            E::Store(e) => return Problem::internal(e),
        };
        Problem::new(status, err.code(), err.to_string())
    }
}

impl From<ticketing::store::StoreError> for Problem {
    fn from(err: StoreError) -> Self {
        ticketing::Error::Store(err).into()
    }
}

impl From<JsonRejection> for Problem {
    fn from(r: JsonRejection) -> Self {
        let status = r.status();
        let code = if status == StatusCode::UNSUPPORTED_MEDIA_TYPE {
            "unsupported_media_type"
        } else {
            "invalid_json"
        };
        Problem::new(status, code, r.body_text())
    }
}

impl From<QueryRejection> for Problem {
    fn from(r: QueryRejection) -> Self {
        Problem::new(StatusCode::BAD_REQUEST, "invalid_query", r.body_text())
    }
}

impl From<PathRejection> for Problem {
    fn from(r: PathRejection) -> Self {
        Problem::new(StatusCode::BAD_REQUEST, "invalid_path", r.body_text())
    }
}

/// `Json<T>` whose rejection is a [`Problem`].
#[derive(axum::extract::FromRequest)]
#[from_request(via(axum::Json), rejection(Problem))]
pub struct ApiJson<T>(pub T);

/// `Query<T>` whose rejection is a [`Problem`].
#[derive(axum::extract::FromRequestParts)]
#[from_request(via(axum::extract::Query), rejection(Problem))]
pub struct ApiQuery<T>(pub T);

/// `Path<T>` whose rejection is a [`Problem`].
#[derive(axum::extract::FromRequestParts)]
#[from_request(via(axum::extract::Path), rejection(Problem))]
pub struct ApiPath<T>(pub T);
