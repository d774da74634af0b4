//! SIP/RTP gateway of hotline (issue 4): transports, transactions and dialogs over `rsipstack`,
//! G.711 media, DTMF (RFC 4733 and SIP INFO), prompt playback and stereo call recording.
//!
//! Not built yet: this crate holds its place in the workspace so the crate map in
//! `docs/ARCHITECTURE.md` is the one the code follows. It does no ticket work; it talks to `ivr`
//! through events and actions only.
