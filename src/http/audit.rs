//! The audit of what staff read: a recording played, a transcript read or searched is written
//! to the audit log with the status it is answered with — allowed or not — before the answer is
//! sent. No audit record, no answer.

use axum::http::StatusCode;
use ticketing::AuditEntry;

use super::App;
use super::problem::Problem;

/// Writes `entry` with the status `answer` is sent with (`ok_status` of a success, the
/// problem's otherwise) in its detail, as `denied` instead of its action when the user's role
/// was refused (403), and only then hands the answer back; a failed write refuses the request.
pub(super) async fn audited<T>(
    app: &App,
    mut entry: AuditEntry,
    denied: &str,
    answer: Result<T, Problem>,
    ok_status: impl FnOnce(&T) -> StatusCode,
) -> Result<T, Problem> {
    let status = match &answer {
        Ok(answer) => ok_status(answer).as_u16(),
        Err(problem) => problem.status,
    };
    if status == StatusCode::FORBIDDEN.as_u16() {
        entry.action = denied.to_owned();
    }
    if let Some(detail) = entry.detail.as_object_mut() {
        detail.insert("status".into(), status.into());
    }
    app.tickets
        .store()
        .write_audit(&entry)
        .await
        .map_err(|e| Problem::internal(&e))?;
    answer
}
