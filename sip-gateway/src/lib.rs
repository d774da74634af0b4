//! The SIP/RTP edge of hotline: answers 12319/12345 calls from carrier trunks, SBCs and desk
//! phones, runs each call through its hotline's IVR flow and the call queues (the decisions are
//! the `ivr` crate's; this crate carries them out: prompts, DTMF, messages, look-ups, REFER
//! transfers, ringing agents' phones and bridging them), records every answered call as a
//! stereo WAV and reports each call's life as [`events::CallEvent`]s.
//!
//! Signalling rides on `rsipstack` (transports, transactions, dialogs); what we decide is in
//! sans-IO modules that take bytes and time and return decisions: [`guard`] (malformed
//! messages), [`trunk`] (who may call), [`routing`] (which hotline), [`sdp`] (offer/answer),
//! [`session_timer`] (RFC 4028), [`g711`], [`jitter`], [`dtmf`], [`rtcp`] and the media core in
//! [`media`]. The async shell is [`server`] (listeners and the transaction loop), `call` (one
//! call's task) and [`media::run`] (one call's RTP loop).
//!
//! Invariants: nothing here touches the database or tickets — the binary turns events into call
//! records; no input from the network can panic (the parsers are fuzzed by property tests);
//! every answered call's media is paced by a monotonic 20-ms clock.
//!
//! Entry point: [`Gateway::start`].

pub mod config;
pub mod dtmf;
pub mod events;
pub mod g711;
pub mod guard;
pub mod jitter;
pub mod media;
pub mod message;
pub mod ports;
pub mod prompt;
pub mod queues;
pub mod recording;
pub mod routing;
pub mod rtcp;
pub mod sdp;
pub mod server;
pub mod services;
pub mod session_timer;
pub mod transport;
pub mod trunk;

mod agent_leg;
mod call;
mod flow;

pub use config::{GatewayConfig, Settings};
pub use events::{CallEvent, CallStart, EndedBy, Message};
pub use queues::{Queues, Snapshot};
pub use server::{Gateway, GatewayOptions, IvrOptions, StartError};
pub use services::CallServices;
