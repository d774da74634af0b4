//! Live queue and agent statistics, kept incrementally by the [`Acd`](super::Acd).

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::AgentState;

/// A snapshot of one queue's figures since the ACD started.
///
/// Every call that entered the queue is in exactly one of `answered`, `abandoned`,
/// `overflowed` or `waiting`: `offered == answered + abandoned + overflowed + waiting`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QueueStats {
    /// Callers waiting now (including those whose offer is ringing).
    pub waiting: usize,
    /// How long the caller at the head of the queue has waited.
    pub longest_wait: Duration,
    /// Calls that entered the queue (including overflow from other queues, and calls turned
    /// away at once because the queue was full).
    pub offered: u64,
    /// Calls bridged to an agent.
    pub answered: u64,
    /// Answered within the service-level threshold.
    pub answered_within_service_level: u64,
    /// Callers who hung up while waiting.
    pub abandoned: u64,
    /// Calls sent to the overflow target (max wait or max length).
    pub overflowed: u64,
    /// Calls handled to the end (hung up after being answered).
    pub handled: u64,
    /// Service-level threshold used.
    pub service_level_threshold: Duration,
    /// `answered_within_service_level / (answered + abandoned)`; `None` before any such call.
    /// Overflowed calls are left out (they were served elsewhere).
    pub service_level: Option<f64>,
    /// Mean talk time plus wrap-up of handled calls.
    pub average_handle_time: Option<Duration>,
    /// Mean wait of answered calls.
    pub average_speed_of_answer: Option<Duration>,
}

/// A snapshot of one agent's state and figures.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AgentStats {
    /// Current state.
    pub state: AgentState,
    /// Offers rung to this agent.
    pub offered: u64,
    /// Offers answered.
    pub answered: u64,
    /// Offers missed (ring timeout, rejection).
    pub missed: u64,
    /// Offers missed since the last answer.
    pub missed_in_a_row: u32,
    /// Calls handled to the end.
    pub handled: u64,
    /// Mean talk time plus wrap-up of handled calls.
    pub average_handle_time: Option<Duration>,
}

/// Mean of `total` over `count`, `None` when `count` is zero.
pub(crate) fn mean(total: Duration, count: u64) -> Option<Duration> {
    if count == 0 {
        return None;
    }
    let nanos = total.as_nanos() / u128::from(count);
    Some(Duration::from_nanos(
        u64::try_from(nanos).unwrap_or(u64::MAX),
    ))
}
