//! IVR flows: what a caller hears and which keys lead where, for one hotline (issue 5).
//!
//! A [`Flow`] is read from `config/ivr/<hotline>.toml` with [`Flow::from_toml`] and checked at
//! start: every target names a node, every node is reachable from `start`, no loop can be walked
//! without the caller pressing a key, prompt lists and digit keys are well formed. Errors
//! ([`FlowError`]) name the file, the node and the problem.
//!
//! A [`Session`] is one call walking a flow. It is sans-IO: the gateway calls
//! [`Session::start`] and then [`Session::handle`] with the current time and an [`Event`] (a DTMF
//! key, a prompt that finished, a timer that fired, the ticket status, the queue's outcome, a
//! hang-up), and carries out the [`Action`]s returned, in order (play prompts, start and cancel
//! timers, record, look a ticket up, enqueue, transfer, hang up). The session reads no clock:
//! timeouts are [`Action::StartTimer`] with an id and a due time, and a fired timer whose id is
//! no longer pending is ignored. Business hours come from the [`Calendar`] passed in.
//!
//! Prompts are logical names (`welcome_12319`, `digits/3`, `status/dispatched`); each
//! [`PromptRef`] carries the session's language and the gateway plays
//! `prompts/<lang>/<name>.wav`. [`Flow::prompt_names`] lists every name a flow may play.
//!
//! Node kinds (`kind = "..."` in each `[nodes.<name>]` table):
//! - `play`: `prompts`, then `next`. Keys are ignored while it plays.
//! - `menu`: `prompts`, `options = { "1" = "node", ... }`; a key during the prompt stops it
//!   (barge-in) and counts. A timeout (`timeout_ms`) replays `no_input_prompts` + `prompts`, a
//!   wrong key `invalid_prompts` + `prompts`; after `max_retries` replays (both kinds counted
//!   together) the next failure goes to `fallback`.
//! - `collect`: `prompts`, `min_digits`..=`max_digits` keys into variable `var`, ended by
//!   `terminator` (`#`), by reaching `max_digits`, or by `inter_digit_timeout_ms` with at least
//!   `min_digits`; `first_digit_timeout_ms` is the no-input timeout; retries as in `menu`; then `next`.
//! - `hours`: `open` or `closed`, as [`Calendar::is_open`] says at the current time.
//! - `language`: `choices = { "1" = "zh", "2" = "en" }`; its prompts are played once per offered
//!   language; a choice sets the session language; retries as in `menu`, then `next` in the
//!   language the call had.
//! - `record`: `prompts` then the `beep` prompt, then [`Action::StartRecording`] for
//!   `max_seconds`; `#` stops it; when the recording ends, [`Action::CreateVoicemailTicket`], then
//!   `next`. A caller who hangs up while recording still leaves a message.
//! - `lookup`: turns the digits in `var` into the canonical number (`<prefix>-<YYYYMMDD>-<serial>`,
//!   see [`canonical_number`]), asks [`Action::LookUpTicket`], and on [`Event::TicketStatus`]
//!   plays `intro_prompts`, the keyed digits as `digits/N`, `status_intro_prompts` and
//!   `status/<status>` (for a status listed in `statuses`; else `unknown_status_prompts`), then
//!   `found`; or `not_found_prompts`, then `not_found`. No answer within `timeout_ms` goes to
//!   `failed` (or is treated as not found).
//! - `queue`: [`Action::Enqueue`]; the ACD owns the call until its [`QueueOutcome`]: answered
//!   ends the flow; overflow goes to the named node if listed in `overflow`; `voicemail` and
//!   `callback` go to those nodes; anything else to `fallback`.
//! - `transfer`: optional `prompts`, then [`Action::Transfer`] to `number`; should the trunk
//!   refuse or the new call fail ([`Event::TransferFailed`]), `failed` (else hang up).
//! - `hangup`: optional `prompts` (goodbye), then [`Action::Hangup`].
//!
//! The gateway's side of the contract: one `PromptFinished` per `Play` that ran to its end (none
//! for a play stopped or replaced); `TimerFired` when a started timer is due; one
//! `RecordingFinished` per `StartRecording`.

mod config;
mod session;
#[cfg(test)]
mod tests;

pub use config::{Flow, FlowError, Lang, Problem};
pub use session::{
    Action, Calendar, Event, Outcome, PromptRef, QueueOutcome, Session, TimerId, canonical_number,
};
