//! "Leave your number for a callback": the task value type. Storing and closing tasks is the
//! gateway's and ticketing's job; this crate only creates them.

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use super::CallId;

/// A request to call a citizen back, created when a queue overflows to `callback`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CallbackTask {
    /// The call in which the caller asked for a callback.
    pub call: CallId,
    /// Number to call back.
    pub caller_number: String,
    /// Queue the caller was waiting in (whose agents should call back).
    pub queue: String,
    /// Language the caller chose, if any.
    pub language: Option<String>,
    /// When the caller asked.
    pub requested_at: Timestamp,
}

/// How a callback attempt ended, recorded by the agent who closes the task.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CallbackOutcome {
    /// The citizen was reached and served.
    Reached,
    /// Rang out without answer.
    NoAnswer,
    /// The line was busy.
    Busy,
    /// The number does not belong to the caller or does not exist.
    WrongNumber,
    /// The citizen no longer needs the call.
    NoLongerNeeded,
}

impl CallbackOutcome {
    /// Whether the task should stay open for another attempt (no answer, busy).
    pub fn should_retry(self) -> bool {
        matches!(self, CallbackOutcome::NoAnswer | CallbackOutcome::Busy)
    }
}

/// A closed attempt on a [`CallbackTask`]: what storage records when an agent closes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CallbackAttempt {
    /// The task.
    pub task: CallbackTask,
    /// Who called.
    pub agent: super::AgentId,
    /// When the attempt ended.
    pub at: Timestamp,
    /// How it ended.
    pub outcome: CallbackOutcome,
}
