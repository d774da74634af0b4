//! Conversation threads: which ticket a citizen's next message on a messaging channel adds to.

use jiff::Timestamp;

use super::{Store, StoreError, from_millis, to_millis};
use crate::model::{Channel, TicketNumber};

/// The ticket a sender's conversation is about, and when they last wrote.
#[derive(Debug, Clone, PartialEq)]
pub struct Thread {
    /// The ticket their messages add to.
    pub ticket: TicketNumber,
    /// Their last message.
    pub last_at: Timestamp,
}

impl Store {
    /// The sender's current thread on `channel`, if they have one.
    pub async fn thread(
        &self,
        channel: Channel,
        sender: &str,
    ) -> Result<Option<Thread>, StoreError> {
        let row: Option<(String, i64)> = sqlx::query_as(
            "SELECT t.number, h.last_at FROM threads h JOIN tickets t ON t.id = h.ticket_id \
             WHERE h.channel = $1 AND h.sender = $2",
        )
        .bind(channel.as_str())
        .bind(sender)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|(number, last)| {
            Ok(Thread {
                ticket: TicketNumber::parse(&number)
                    .map_err(|e| StoreError::corrupt("threads", e))?,
                last_at: from_millis("threads", last)?,
            })
        })
        .transpose()
    }

    /// Points the sender's thread at `ticket` as of `at` (never moving `last_at` back).
    pub async fn touch_thread(
        &self,
        channel: Channel,
        sender: &str,
        ticket: &TicketNumber,
        at: Timestamp,
    ) -> Result<(), StoreError> {
        let mut w = self.write().await?;
        let id: Option<i64> = sqlx::query_scalar("SELECT id FROM tickets WHERE number = $1")
            .bind(ticket.as_str())
            .fetch_optional(&mut *w.tx)
            .await?;
        if let Some(id) = id {
            upsert(&mut w.tx, channel, sender, id, at).await?;
        }
        w.commit().await
    }

    /// Ends the sender's thread: their next message starts a new report.
    pub async fn end_thread(&self, channel: Channel, sender: &str) -> Result<(), StoreError> {
        let mut w = self.write().await?;
        sqlx::query("DELETE FROM threads WHERE channel = $1 AND sender = $2")
            .bind(channel.as_str())
            .bind(sender)
            .execute(&mut *w.tx)
            .await?;
        w.commit().await
    }
}

/// Points a thread at a ticket inside a caller's transaction (see [`super::Origin`]).
pub(super) async fn upsert(
    conn: &mut sqlx::AnyConnection,
    channel: Channel,
    sender: &str,
    ticket_id: i64,
    at: Timestamp,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO threads (channel, sender, ticket_id, last_at) VALUES ($1, $2, $3, $4) \
         ON CONFLICT (channel, sender) DO UPDATE SET ticket_id = excluded.ticket_id, \
         last_at = CASE WHEN excluded.last_at > threads.last_at THEN excluded.last_at ELSE threads.last_at END",
    )
    .bind(channel.as_str())
    .bind(sender)
    .bind(ticket_id)
    .bind(to_millis(at))
    .execute(conn)
    .await?;
    Ok(())
}
