//! What happens to a call, decided without I/O: the ACD ([`acd`]: queues, agents, strategies,
//! overflow, callbacks, live statistics) and, next, the IVR flows that lead callers to it.
//!
//! Invariants: no sockets, files or clock — every entry point takes the current time and returns
//! actions for the gateway to carry out; no input can panic.

pub mod acd;
