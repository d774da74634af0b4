//! Identifiers, agent states, and the events and actions of the [`Acd`](super::Acd).

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::{CallbackTask, OverflowTarget};

/// A call, identified by the gateway (its SIP Call-ID, or any unique string).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct CallId(pub String);

/// An agent (受理员) seat, identified by the desk (login name or extension).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct AgentId(pub String);

impl From<&str> for CallId {
    fn from(s: &str) -> Self {
        CallId(s.to_owned())
    }
}
impl From<&str> for AgentId {
    fn from(s: &str) -> Self {
        AgentId(s.to_owned())
    }
}
impl fmt::Display for CallId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}
impl fmt::Display for AgentId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// What an agent is doing, as the ACD sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AgentState {
    /// Not logged in; never offered calls.
    Offline,
    /// Logged in, ready, waiting for a call.
    Available,
    /// A call is being offered (the desk is ringing).
    Ringing,
    /// On a call.
    Busy,
    /// After-call work; offered calls again when it ends or the agent says ready.
    WrapUp,
    /// Logged in but not ready (break, or put there after missing offers).
    Break,
}

/// Input to [`Acd::handle`](super::Acd::handle).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AcdEvent {
    /// The IVR put a call into a queue.
    CallQueued {
        /// The call.
        call: CallId,
        /// Queue name; an unknown queue sends the call to voicemail.
        queue: String,
        /// Language chosen in the IVR (`zh`, `en`...), if any.
        language: Option<String>,
        /// Caller's number (CLI), if presented; needed for a callback.
        caller_number: Option<String>,
    },
    /// The caller hung up (waiting: abandoned; connected: the call ends, agent goes to wrap-up).
    CallerHungUp {
        /// The call.
        call: CallId,
    },
    /// An agent picked up an offered call.
    AgentAnswered {
        /// The agent.
        agent: AgentId,
        /// The call they answered.
        call: CallId,
    },
    /// An agent declined an offer (counts as a missed offer).
    AgentRejected {
        /// The agent.
        agent: AgentId,
        /// The offered call.
        call: CallId,
    },
    /// The gateway gave up ringing the agent (SIP 408/480/486...); same as the ACD's own ring timeout.
    AgentNoAnswer {
        /// The agent.
        agent: AgentId,
        /// The offered call.
        call: CallId,
    },
    /// The agent ended a connected call; the agent goes to wrap-up.
    AgentHungUp {
        /// The agent.
        agent: AgentId,
        /// The call.
        call: CallId,
    },
    /// An agent logged in (or updated their skills); they become available.
    AgentLogin {
        /// The agent.
        agent: AgentId,
        /// Skills held (compared with a queue's `skills`).
        skills: Vec<String>,
        /// Languages spoken (compared with a call's language).
        languages: Vec<String>,
    },
    /// An agent logged out (during a call: after the call ends).
    AgentLogout {
        /// The agent.
        agent: AgentId,
    },
    /// An agent goes on break (during a call: after the call ends, skipping wrap-up).
    AgentBreak {
        /// The agent.
        agent: AgentId,
    },
    /// An agent is ready for calls again (ends a break or wrap-up early).
    AgentReady {
        /// The agent.
        agent: AgentId,
    },
    /// Time passed: fire due ring timeouts, max waits, announcements and wrap-up ends.
    Tick,
}

/// Output of [`Acd::handle`](super::Acd::handle), for the gateway to carry out in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AcdAction {
    /// Ring this agent's desk with this call.
    RingAgent {
        /// The agent.
        agent: AgentId,
        /// The call.
        call: CallId,
    },
    /// Stop ringing this agent (timeout, another agent answered, caller left, agent went away),
    /// or tear down an answer that came too late.
    CancelRing {
        /// The agent.
        agent: AgentId,
        /// The call.
        call: CallId,
    },
    /// Connect the caller with the agent who answered.
    Bridge {
        /// The call.
        call: CallId,
        /// The agent.
        agent: AgentId,
    },
    /// Tell the caller their place in the queue and the estimated wait.
    Announce {
        /// The call.
        call: CallId,
        /// 1 = next to be served.
        position: usize,
        /// Unknown (`None`) while no agent who could take the call is logged in.
        estimated_wait: Option<Duration>,
    },
    /// Play hold music to the caller.
    PlayMusicOnHold {
        /// The call.
        call: CallId,
        /// Prompt name from the queue's `music_on_hold`.
        prompt: String,
    },
    /// The call leaves its queue. For `Queue(..)` the ACD has already queued it there (the
    /// gateway may just keep the music going); for voicemail and callback the IVR takes it back.
    Overflow {
        /// The call.
        call: CallId,
        /// Where it goes.
        to: OverflowTarget,
    },
    /// Persist this callback task (outbox); it follows `Overflow { to: Callback }`.
    CreateCallbackTask(CallbackTask),
    /// An agent's state changed (for the agent desk and the wallboard).
    AgentStateChanged {
        /// The agent.
        agent: AgentId,
        /// The new state.
        state: AgentState,
    },
}
