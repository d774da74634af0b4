//! What happens to a call, decided without I/O: the IVR flows ([`flow`]: menus, digit collection,
//! business hours, language, voicemail, ticket status read-back, queueing, transfer) and the ACD
//! ([`acd`]: queues, agents, strategies, overflow, callbacks, live statistics).
//!
//! Invariants: no sockets, files or clock — every entry point takes the current time and returns
//! actions for the gateway to carry out; no input can panic.

pub mod acd;
pub mod flow;
