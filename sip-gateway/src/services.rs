//! What the gateway asks of the rest of hotline while a call runs. The gateway owns no tickets
//! and no database: the binary implements [`CallServices`] over `ticketing`, and takes the
//! rest (messages, callback tasks, call records) from [`CallEvent`](crate::CallEvent)s.

use async_trait::async_trait;

/// Answers the IVR's questions about tickets.
#[async_trait]
pub trait CallServices: Send + Sync {
    /// The status code (`dispatched`, `closed`...) of ticket `number`
    /// (`12319-20261123-000042`), `None` when there is no such ticket. An error is a failure
    /// to find out (the database is down); the caller is told the number was not found.
    async fn ticket_status(&self, number: &str) -> Result<Option<String>, String>;
}
