//! Queues and agent selection (ACD): the "Queues (ACD)" half of issue 5.
//!
//! Calls that an IVR flow sends to a named queue wait there, hearing music on hold and position /
//! estimated-wait announcements, until an agent with the queue's skills and the caller's language
//! answers an offer. Queues choose agents by longest idle, round robin or ring all; an offer that
//! rings out goes to the next agent; callers who wait too long, or find the queue full, overflow to
//! another queue, to voicemail, or to a callback task ("leave your number"), so no caller is lost.
//!
//! **Invariant: no I/O, no clock.** [`Acd`] is a state machine like `quinn_proto::Connection`: the
//! gateway feeds it [`AcdEvent`]s with the current [`jiff::Timestamp`] through [`Acd::handle`],
//! carries out the returned [`AcdAction`]s in order, and calls `handle(t, AcdEvent::Tick)` at the
//! time [`Acd::poll_timeout`] returns. Nothing here panics on any event sequence; events that no
//! longer apply (an answer after the caller hung up, a hang-up for an unknown call) are ignored or
//! answered with a [`AcdAction::CancelRing`] that tears the stale leg down.
//!
//! Policies decided here:
//! - **Missed offers.** A ring timeout, `AgentRejected` or `AgentNoAnswer` puts the agent back to
//!   available at the end of the longest-idle line; after `max_missed_offers` misses in a row
//!   (default 2) the agent goes to break ("not ready") and must say ready again. The call rings the
//!   next qualified agent; when all have been tried, a new round starts.
//! - **Agent leaves while rung.** Break or logout during an offer cancels the ring (not counted as a
//!   miss) and the call goes to the next agent. During a call they take effect when it ends,
//!   instead of wrap-up.
//! - **Wrap-up.** After each call the agent is in wrap-up for the queue's `wrap_up_secs`; `AgentReady`
//!   ends it early. Handle time = talk time + wrap-up actually spent.
//! - **Service level** = answered within `service_level_secs` (default 20, GB/T 33358 asks 15) ÷
//!   (answered + abandoned), measured from entry into the queue that answered.
//! - **Overflow** to another queue restarts max wait there; a callback without a caller number
//!   (withheld CLI) falls back to voicemail; a call for an unknown queue goes to voicemail.
//!
//! ```
//! use ivr::acd::{Acd, AcdAction, AcdConfig, AcdEvent};
//! use jiff::Timestamp;
//!
//! let config = AcdConfig::from_toml(
//!     r#"
//!     [[queue]]
//!     name = "12319-intake"
//!     ring_timeout_secs = 15
//!     "#,
//! )?;
//! let mut acd = Acd::new(config)?;
//! let now = Timestamp::from_second(1_763_900_000)?;
//! acd.handle(now, AcdEvent::AgentLogin {
//!     agent: "a1".into(),
//!     skills: vec![],
//!     languages: vec!["zh".into()],
//! });
//! let actions = acd.handle(now, AcdEvent::CallQueued {
//!     call: "call-1".into(),
//!     queue: "12319-intake".into(),
//!     language: Some("zh".into()),
//!     caller_number: Some("13800000000".into()),
//! });
//! assert!(actions.contains(&AcdAction::RingAgent { agent: "a1".into(), call: "call-1".into() }));
//! // The gateway sleeps until then and sends `AcdEvent::Tick` (here: the ring timeout).
//! assert_eq!(acd.poll_timeout(), Some(now.checked_add(jiff::SignedDuration::from_secs(15))?));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! Entry points: [`AcdConfig::from_toml`], [`Acd::new`], [`Acd::handle`], [`Acd::poll_timeout`],
//! [`Acd::stats`], [`Acd::agent_stats`].
#![cfg_attr(
    not(test),
    deny(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic,
        clippy::indexing_slicing
    )
)]

mod callback;
mod config;
mod engine;
mod stats;
mod types;

#[cfg(test)]
mod tests;

pub use callback::{CallbackAttempt, CallbackOutcome, CallbackTask};
pub use config::{AcdConfig, ConfigError, OverflowTarget, QueueConfig, Strategy};
pub use engine::Acd;
pub use stats::{AgentStats, QueueStats};
pub use types::{AcdAction, AcdEvent, AgentId, AgentState, CallId};
