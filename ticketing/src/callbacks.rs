//! Callback tasks (回电): a caller who could not wait in a queue left their number; an agent
//! calls back and records how each attempt went. A task stays open after "no answer" or
//! "busy" and closes on any other outcome. Attempts are audited (`callback.attempt`).
//!
//! The task itself is the ACD's ([`ivr::acd::CallbackTask`]); this module is its stored form.

use ivr::acd::CallbackOutcome;
use jiff::Timestamp;
use serde::Serialize;
use utoipa::ToSchema;

/// A stored callback task.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct Callback {
    /// Database id.
    pub id: i64,
    /// The SIP Call-ID of the call in which the caller asked.
    pub call_id: String,
    /// The hotline called.
    pub hotline: String,
    /// The queue the caller waited in (its agents call back).
    pub queue: String,
    /// The number to call back.
    pub caller_number: String,
    /// The language the caller chose (`zh`, `en`).
    pub language: Option<String>,
    /// When the caller asked.
    #[schema(value_type = String, format = DateTime)]
    pub requested_at: Timestamp,
    /// Attempts made so far.
    pub attempts: i32,
    /// How the last attempt went.
    #[schema(value_type = Option<String>)]
    pub last_outcome: Option<CallbackOutcome>,
    /// When the last attempt ended.
    #[schema(value_type = Option<String>, format = DateTime)]
    pub last_attempt_at: Option<Timestamp>,
    /// Who made the last attempt.
    pub last_agent: Option<String>,
    /// When the task was closed; `None` while open.
    #[schema(value_type = Option<String>, format = DateTime)]
    pub closed_at: Option<Timestamp>,
}

impl Callback {
    /// Whether agents still have to call.
    pub fn is_open(&self) -> bool {
        self.closed_at.is_none()
    }
}

/// The stable code of an outcome (`no_answer`), as stored and in the API.
pub fn outcome_code(outcome: CallbackOutcome) -> &'static str {
    match outcome {
        CallbackOutcome::Reached => "reached",
        CallbackOutcome::NoAnswer => "no_answer",
        CallbackOutcome::Busy => "busy",
        CallbackOutcome::WrongNumber => "wrong_number",
        CallbackOutcome::NoLongerNeeded => "no_longer_needed",
    }
}

/// The outcome with this code.
pub fn outcome_from_code(code: &str) -> Option<CallbackOutcome> {
    [
        CallbackOutcome::Reached,
        CallbackOutcome::NoAnswer,
        CallbackOutcome::Busy,
        CallbackOutcome::WrongNumber,
        CallbackOutcome::NoLongerNeeded,
    ]
    .into_iter()
    .find(|o| outcome_code(*o) == code)
}

/// Which tasks to list.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum CallbackState {
    /// Still to call (the default).
    #[default]
    Open,
    /// Done.
    Closed,
    /// Both.
    All,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outcome_codes_round_trip_and_match_serde() {
        for code in [
            "reached",
            "no_answer",
            "busy",
            "wrong_number",
            "no_longer_needed",
        ] {
            let o = outcome_from_code(code).unwrap();
            assert_eq!(outcome_code(o), code);
            assert_eq!(serde_json::to_value(o).unwrap(), code);
        }
        assert_eq!(outcome_from_code("maybe"), None);
    }
}
