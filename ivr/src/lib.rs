//! What happens to a call (issue 5): IVR flows, digit collection, business hours, voicemail,
//! status look-up and call queues (ACD).
//!
//! Invariant: this crate does no I/O and reads no clock. It is a state machine fed events with the
//! current time and returning actions for `sip-gateway` to carry out. Not built yet.
