//! Callback tasks (`callback_tasks`): created once per call that asked (idempotent on the
//! Call-ID), listed oldest first for agents, closed by attempts that are audited in the same
//! transaction.

use ivr::acd::{CallbackOutcome, CallbackTask};
use jiff::Timestamp;
use sqlx::Row;
use sqlx::any::AnyRow;

use super::{Store, StoreError, from_millis, to_millis};
use crate::callbacks::{Callback, CallbackState, outcome_code, outcome_from_code};
use crate::workflow::Actor;

const T: &str = "callback_tasks";

const COLUMNS: &str = "id, call_id, hotline, queue, caller_number, language, requested_at, \
    attempts, last_outcome, last_attempt_at, last_agent, closed_at";

/// Why an attempt could not be recorded.
#[derive(Debug, thiserror::Error)]
pub enum AttemptError {
    /// No task with this id.
    #[error("callback task {0} not found")]
    NotFound(i64),
    /// The task is closed already.
    #[error("callback task {0} is closed already")]
    Closed(i64),
    /// Storage failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<sqlx::Error> for AttemptError {
    fn from(e: sqlx::Error) -> Self {
        AttemptError::Store(e.into())
    }
}

impl Store {
    /// Stores the task the ACD made for `hotline`; a second request from the same call changes
    /// nothing. Returns the task's id.
    pub async fn create_callback(
        &self,
        hotline: &str,
        task: &CallbackTask,
    ) -> Result<i64, StoreError> {
        let mut w = self.write().await?;
        let inserted: Option<i64> = sqlx::query_scalar(
            "INSERT INTO callback_tasks (call_id, hotline, queue, caller_number, language, \
             requested_at) VALUES ($1, $2, $3, $4, $5, $6) \
             ON CONFLICT (call_id) DO NOTHING RETURNING id",
        )
        .bind(&task.call.0)
        .bind(hotline)
        .bind(&task.queue)
        .bind(&task.caller_number)
        .bind(task.language.as_deref())
        .bind(to_millis(task.requested_at))
        .fetch_optional(&mut *w.tx)
        .await?;
        let id = match inserted {
            Some(id) => id,
            None => {
                sqlx::query_scalar("SELECT id FROM callback_tasks WHERE call_id = $1")
                    .bind(&task.call.0)
                    .fetch_one(&mut *w.tx)
                    .await?
            }
        };
        w.commit().await?;
        Ok(id)
    }

    /// One task.
    pub async fn callback(&self, id: i64) -> Result<Option<Callback>, StoreError> {
        let sql = format!("SELECT {COLUMNS} FROM callback_tasks WHERE id = $1");
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(callback_from_row).transpose()
    }

    /// Tasks in `state`, optionally of one hotline, oldest request first (the order to call
    /// back in), at most `limit`.
    pub async fn callbacks(
        &self,
        state: CallbackState,
        hotline: Option<&str>,
        limit: i64,
    ) -> Result<Vec<Callback>, StoreError> {
        let state_sql = match state {
            CallbackState::Open => "closed_at IS NULL",
            CallbackState::Closed => "closed_at IS NOT NULL",
            CallbackState::All => "1 = 1",
        };
        let sql = format!(
            "SELECT {COLUMNS} FROM callback_tasks WHERE {state_sql} \
             AND ($1 IS NULL OR hotline = $1) ORDER BY requested_at, id LIMIT $2"
        );
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(hotline)
            .bind(limit)
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(callback_from_row).collect()
    }

    /// Records an attempt by `agent`: counts it, keeps its outcome, closes the task unless the
    /// outcome calls for another try, and writes `callback.attempt` to the audit log, all in one
    /// transaction. Returns the task as it now is.
    pub async fn callback_attempt(
        &self,
        id: i64,
        agent: &Actor,
        outcome: CallbackOutcome,
        note: Option<&str>,
        now: Timestamp,
    ) -> Result<Callback, AttemptError> {
        let mut w = self.write().await?;
        let closed: Option<Option<i64>> =
            sqlx::query_scalar("SELECT closed_at FROM callback_tasks WHERE id = $1")
                .bind(id)
                .fetch_optional(&mut *w.tx)
                .await?;
        match closed {
            None => return Err(AttemptError::NotFound(id)),
            Some(Some(_)) => return Err(AttemptError::Closed(id)),
            Some(None) => {}
        }
        let closes = !outcome.should_retry();
        sqlx::query(
            "UPDATE callback_tasks SET attempts = attempts + 1, last_outcome = $2, \
             last_attempt_at = $3, last_agent = $4, closed_at = $5 WHERE id = $1",
        )
        .bind(id)
        .bind(outcome_code(outcome))
        .bind(to_millis(now))
        .bind(&agent.name)
        .bind(closes.then(|| to_millis(now)))
        .execute(&mut *w.tx)
        .await?;
        let detail = serde_json::json!({
            "outcome": outcome_code(outcome),
            "closed": closes,
            "note": note,
        });
        sqlx::query(
            "INSERT INTO audit_log (at, actor_id, actor_name, role, action, target, detail, address) \
             VALUES ($1, $2, $3, $4, 'callback.attempt', $5, $6, NULL)",
        )
        .bind(to_millis(now))
        .bind(agent.id)
        .bind(&agent.name)
        .bind(agent.role.as_str())
        .bind(format!("callback:{id}"))
        .bind(detail.to_string())
        .execute(&mut *w.tx)
        .await?;
        let sql = format!("SELECT {COLUMNS} FROM callback_tasks WHERE id = $1");
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(id)
            .fetch_one(&mut *w.tx)
            .await?;
        let task = callback_from_row(&row)?;
        w.commit().await?;
        Ok(task)
    }
}

fn callback_from_row(row: &AnyRow) -> Result<Callback, StoreError> {
    let time = |col: &str| -> Result<Option<Timestamp>, StoreError> {
        row.try_get::<Option<i64>, _>(col)?
            .map(|ms| from_millis(T, ms))
            .transpose()
    };
    let last_outcome: Option<String> = row.try_get("last_outcome")?;
    Ok(Callback {
        id: row.try_get("id")?,
        call_id: row.try_get("call_id")?,
        hotline: row.try_get("hotline")?,
        queue: row.try_get("queue")?,
        caller_number: row.try_get("caller_number")?,
        language: row.try_get("language")?,
        requested_at: from_millis(T, row.try_get("requested_at")?)?,
        attempts: row.try_get("attempts")?,
        last_outcome: match last_outcome {
            Some(code) => Some(
                outcome_from_code(&code)
                    .ok_or_else(|| StoreError::corrupt(T, format!("last_outcome {code}")))?,
            ),
            None => None,
        },
        last_attempt_at: time("last_attempt_at")?,
        last_agent: row.try_get("last_agent")?,
        closed_at: time("closed_at")?,
    })
}
