//! Work done after a submission is answered: attachments a channel only referenced (a WeChat
//! `media_id`) that a worker fetches, and cursors over the ticket event stream for workers that
//! tell citizens about changes. Both survive restarts: the rows are the queue.

use jiff::Timestamp;
use sqlx::Row;

use super::{Store, StoreError, from_millis, to_millis};
use crate::model::TicketNumber;
use crate::workflow::{ActionKind, Status};

/// An attachment still to be fetched.
#[derive(Debug, Clone, PartialEq)]
pub struct PendingFetch {
    /// The attachment row.
    pub attachment_id: i64,
    /// Its ticket.
    pub ticket: TicketNumber,
    /// Where it is now (`wechat-media:<id>`).
    pub uri: String,
    /// Failed tries so far.
    pub attempts: u32,
}

/// One change on a ticket, for the workers that notify reporters.
#[derive(Debug, Clone, PartialEq)]
pub struct TicketChange {
    /// Position in the event stream.
    pub event_id: i64,
    /// The ticket.
    pub ticket: TicketNumber,
    /// What was done.
    pub action: ActionKind,
    /// The status after it.
    pub status: Status,
    /// When.
    pub at: Timestamp,
    /// The ticket's reporters' WeChat openids.
    pub wechat_openids: Vec<String>,
}

impl Store {
    /// Attachments whose uri starts with `scheme` (`wechat-media:`) that are due for a try.
    pub async fn pending_fetches(
        &self,
        scheme: &str,
        now: Timestamp,
        limit: u32,
    ) -> Result<Vec<PendingFetch>, StoreError> {
        let rows = sqlx::query(
            "SELECT a.id, t.number, a.uri, COALESCE(f.attempts, 0) AS attempts \
             FROM ticket_attachments a JOIN tickets t ON t.id = a.ticket_id \
             LEFT JOIN attachment_fetches f ON f.attachment_id = a.id \
             WHERE a.uri LIKE $1 ESCAPE '\\' AND f.gave_up_at IS NULL AND (f.next_at IS NULL OR f.next_at <= $2) \
             ORDER BY a.id LIMIT $3",
        )
        .bind(format!("{}%", super::escape_like(scheme)))
        .bind(to_millis(now))
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                let number: String = r.try_get("number")?;
                let attempts: i64 = r.try_get("attempts")?;
                Ok(PendingFetch {
                    attachment_id: r.try_get("id")?,
                    ticket: TicketNumber::parse(&number)
                        .map_err(|e| StoreError::corrupt("ticket_attachments", e))?,
                    uri: r.try_get("uri")?,
                    attempts: u32::try_from(attempts).unwrap_or(u32::MAX),
                })
            })
            .collect()
    }

    /// The attachment is now stored at `uri`. Only an attachment still at `from` changes, so a
    /// second worker that fetched it too changes nothing.
    pub async fn fetched(
        &self,
        attachment_id: i64,
        from: &str,
        uri: &str,
        content_type: Option<&str>,
    ) -> Result<bool, StoreError> {
        let mut w = self.write().await?;
        let done = sqlx::query(
            "UPDATE ticket_attachments SET uri = $1, content_type = COALESCE($2, content_type) \
             WHERE id = $3 AND uri = $4",
        )
        .bind(uri)
        .bind(content_type)
        .bind(attachment_id)
        .bind(from)
        .execute(&mut *w.tx)
        .await?
        .rows_affected();
        w.commit().await?;
        Ok(done == 1)
    }

    /// A try failed: try again at `retry_at`, or never when it is `None`.
    pub async fn fetch_failed(
        &self,
        attachment_id: i64,
        error: &str,
        retry_at: Option<Timestamp>,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        let error: String = error.chars().take(500).collect();
        let gave_up = retry_at.is_none().then(|| to_millis(now));
        let mut w = self.write().await?;
        sqlx::query(
            "INSERT INTO attachment_fetches (attachment_id, attempts, next_at, last_error, gave_up_at) \
             VALUES ($1, 1, $2, $3, $4) ON CONFLICT (attachment_id) DO UPDATE SET \
             attempts = attachment_fetches.attempts + 1, next_at = excluded.next_at, \
             last_error = excluded.last_error, gave_up_at = excluded.gave_up_at",
        )
        .bind(attachment_id)
        .bind(retry_at.map(to_millis))
        .bind(error)
        .bind(gave_up)
        .execute(&mut *w.tx)
        .await?;
        w.commit().await
    }

    /// Where the worker `name` stopped reading the event stream; a new worker starts at the end,
    /// so it does not notify citizens of history.
    pub async fn event_cursor(&self, name: &str) -> Result<i64, StoreError> {
        let at: Option<i64> =
            sqlx::query_scalar("SELECT event_id FROM event_cursors WHERE name = $1")
                .bind(name)
                .fetch_optional(&self.pool)
                .await?;
        if let Some(at) = at {
            return Ok(at);
        }
        let end: Option<i64> = sqlx::query_scalar("SELECT MAX(id) FROM ticket_events")
            .fetch_one(&self.pool)
            .await?;
        let end = end.unwrap_or(0);
        self.set_event_cursor(name, end).await?;
        Ok(end)
    }

    /// Records that `name` has handled every event up to `event_id`.
    pub async fn set_event_cursor(&self, name: &str, event_id: i64) -> Result<(), StoreError> {
        let mut w = self.write().await?;
        sqlx::query(
            "INSERT INTO event_cursors (name, event_id) VALUES ($1, $2) \
             ON CONFLICT (name) DO UPDATE SET event_id = excluded.event_id",
        )
        .bind(name)
        .bind(event_id)
        .execute(&mut *w.tx)
        .await?;
        w.commit().await
    }

    /// The changes after `event_id` on tickets with a WeChat reporter, oldest first, and the
    /// last event id read (to move the cursor past changes nobody is told about).
    pub async fn wechat_changes_after(
        &self,
        event_id: i64,
        limit: u32,
    ) -> Result<(Vec<TicketChange>, i64), StoreError> {
        let rows = sqlx::query(
            "SELECT e.id, t.number, e.action, e.to_status, e.at, \
             (SELECT COUNT(*) FROM ticket_reporters r WHERE r.ticket_id = t.id AND r.wechat_openid IS NOT NULL) AS followers \
             FROM ticket_events e JOIN tickets t ON t.id = e.ticket_id WHERE e.id > $1 ORDER BY e.id LIMIT $2",
        )
        .bind(event_id)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        let mut last = event_id;
        let mut out = Vec::new();
        for r in &rows {
            let id: i64 = r.try_get("id")?;
            last = last.max(id);
            let followers: i64 = r.try_get("followers")?;
            if followers == 0 {
                continue;
            }
            let number: String = r.try_get("number")?;
            let ticket = TicketNumber::parse(&number)
                .map_err(|e| StoreError::corrupt("ticket_events", e))?;
            let openids: Vec<String> = sqlx::query_scalar(
                "SELECT DISTINCT r.wechat_openid FROM ticket_reporters r JOIN tickets t ON t.id = r.ticket_id \
                 WHERE t.number = $1 AND r.wechat_openid IS NOT NULL",
            )
            .bind(&number)
            .fetch_all(&self.pool)
            .await?;
            out.push(TicketChange {
                event_id: id,
                ticket,
                action: super::parse("ticket_events", r, "action")?,
                status: super::parse("ticket_events", r, "to_status")?,
                at: from_millis("ticket_events", r.try_get("at")?)?,
                wechat_openids: openids,
            });
        }
        Ok((out, last))
    }
}
