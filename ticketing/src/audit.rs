//! The general audit log: who did what to which thing, when and from where — listening to a
//! recording, say. Ticket changes keep their own trail ([`crate::AuditEvent`], per ticket, written
//! in the ticket's transaction); this log is for everything else that must be answerable later.
//! Stored by [`crate::Store::write_audit`], read by [`crate::Store::list_audit`].

use jiff::Timestamp;
use serde::Serialize;
use utoipa::ToSchema;

use crate::workflow::{Actor, Role};

/// One audit log entry.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct AuditEntry {
    /// When.
    #[schema(value_type = String, format = DateTime)]
    pub at: Timestamp,
    /// The user's id; `None` for the system itself.
    pub actor_id: Option<i64>,
    /// The user's display name at the time (or `system`).
    pub actor_name: String,
    /// The user's role at the time; `None` for the system.
    pub role: Option<Role>,
    /// What was done, `area.verb`: `recording.play`, `recording.denied`.
    pub action: String,
    /// What it was done to, `kind:id`: `call:42`.
    pub target: String,
    /// Particulars (the HTTP range asked for, the status answered...).
    #[schema(value_type = Object)]
    pub detail: serde_json::Value,
    /// The client address it came from, when over the network.
    pub address: Option<String>,
}

impl AuditEntry {
    /// An entry for something a user did.
    pub fn by(
        actor: &Actor,
        at: Timestamp,
        action: impl Into<String>,
        target: impl Into<String>,
    ) -> Self {
        AuditEntry {
            at,
            actor_id: Some(actor.id),
            actor_name: actor.name.clone(),
            role: Some(actor.role),
            action: action.into(),
            target: target.into(),
            detail: serde_json::Value::Object(Default::default()),
            address: None,
        }
    }
}
