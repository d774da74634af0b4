//! The domain core of hotline: tickets (工单), their one workflow, SLA deadlines on a working
//! calendar, categories, departments, and their storage.
//!
//! Entry points: [`Tickets`] (the one intake and the one way to change a ticket), [`workflow::apply`]
//! (the state machine, sans-IO), [`sla::Sla`] (due times), [`store::Store`] (SQLite or PostgreSQL),
//! [`calls`] (call detail records the SIP gateway writes), [`audit`] (the general audit log),
//! [`citizens`] (city-app login codes, points and ratings, sans-IO) and [`app`] (a citizen's own
//! tickets as the app shows them), [`transcripts`] (the transcription job queue and transcripts of
//! recordings and voicemails).
//!
//! Invariants: nothing here knows about SIP, HTTP or WeChat; no function reads the clock — `now`
//! is always passed in; only [`store`] writes ticket rows, and every change writes its audit event
//! in the same transaction.

pub mod app;
pub mod audit;
pub mod calendar;
pub mod callbacks;
pub mod calls;
pub mod category;
pub mod citizens;
pub mod department;
pub mod limit;
pub mod merge;
pub mod model;
pub mod service;
pub mod sla;
pub mod store;
pub mod transcripts;
pub mod workflow;

#[cfg(feature = "testing")]
pub mod testing;

pub use audit::AuditEntry;
pub use calls::{Call, CallEnd, CallFilter, EndedBy, NewCall};
pub use model::{Channel, NewTicket, Priority, Ticket, TicketNumber};
pub use service::{Error, Hotline, Intake, Supplementing, Tickets};
pub use store::Store;
pub use workflow::{Action, ActionKind, Actor, AuditEvent, Role, Status};
