//! The ACD's async shell: one task owns this node's [`Acd`] (queue state is owned by one node,
//! see DESIGN.md), feeds it the calls that flows put in queues, callers who hang up, agents'
//! state changes and the clock — it sleeps until [`Acd::poll_timeout`] — and carries out what
//! it decides: hold music and position announcements go to the waiting call, overflows back to
//! the call's flow, callback tasks out as [`CallEvent::CallbackRequested`].
//!
//! The decisions are all in `ivr::acd`; this file only moves messages.

use std::collections::HashMap;
use std::time::Duration;

use ivr::acd::{
    Acd, AcdAction, AcdConfig, AcdEvent, AgentId, AgentStats, CallId, ConfigError, OverflowTarget,
    QueueStats,
};
use ivr::flow::QueueOutcome;
use jiff::Timestamp;
use tokio::sync::{mpsc, oneshot};
use tracing::{info, warn};

use crate::events::CallEvent;

/// What the ACD tells one waiting call.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum QueueEvent {
    /// Play this hold music (a prompt name), looped, until told otherwise.
    MusicOnHold(String),
    /// Tell the caller their place and the estimated wait, then go back to the music.
    Announce {
        /// 1 = next to be served.
        position: usize,
        /// None while no agent who could take the call is logged in.
        estimated_wait: Option<Duration>,
    },
    /// The call leaves the queue: back to its flow.
    Outcome(QueueOutcome),
    /// Ring this agent's phone at `contact` for the call.
    Ring {
        /// The agent.
        agent: String,
        /// Their SIP URI.
        contact: String,
    },
    /// Stop ringing the agent (or hang up a late answer).
    CancelRing {
        /// The agent.
        agent: String,
    },
    /// Connect the caller with the agent who answered.
    Bridge {
        /// The agent.
        agent: String,
    },
}

enum Command {
    Enqueue {
        call: CallId,
        hotline: String,
        queue: String,
        language: Option<String>,
        caller_number: Option<String>,
        to_call: mpsc::UnboundedSender<QueueEvent>,
    },
    Left {
        call: CallId,
    },
    Agent(AcdEvent),
    AgentLogin {
        agent: AgentId,
        contact: String,
        skills: Vec<String>,
        languages: Vec<String>,
    },
    Snapshot {
        reply: oneshot::Sender<Snapshot>,
    },
}

/// Live figures of every queue and agent on this node, for the API and the wallboard.
#[derive(Debug, Clone, PartialEq)]
pub struct Snapshot {
    /// When they were taken.
    pub at: Timestamp,
    /// Each queue by name, in priority order.
    pub queues: Vec<(String, QueueStats)>,
    /// Each agent that logged in since start.
    pub agents: Vec<(AgentId, AgentStats)>,
}

/// A handle on the ACD task; cheap to clone. The task ends when every handle is gone.
#[derive(Clone)]
pub struct Queues {
    tx: mpsc::UnboundedSender<Command>,
}

impl Queues {
    /// Builds the ACD from `config` and starts its task; callback tasks go to `events`.
    pub fn start(
        config: AcdConfig,
        events: mpsc::UnboundedSender<CallEvent>,
    ) -> Result<Queues, ConfigError> {
        let acd = Acd::new(config)?;
        let (tx, rx) = mpsc::unbounded_channel();
        tokio::spawn(run(acd, rx, events));
        Ok(Queues { tx })
    }

    /// Puts a call in `queue`; what the ACD decides for it arrives on the returned channel.
    pub(crate) fn enqueue(
        &self,
        call: &str,
        hotline: &str,
        queue: &str,
        language: &str,
        caller_number: Option<String>,
    ) -> mpsc::UnboundedReceiver<QueueEvent> {
        let (to_call, rx) = mpsc::unbounded_channel();
        let _ = self.tx.send(Command::Enqueue {
            call: CallId(call.to_owned()),
            hotline: hotline.to_owned(),
            queue: queue.to_owned(),
            language: Some(language.to_owned()),
            caller_number,
            to_call,
        });
        rx
    }

    /// The caller hung up (or the call ended otherwise) while the ACD had it.
    pub(crate) fn left(&self, call: &str) {
        let _ = self.tx.send(Command::Left {
            call: CallId(call.to_owned()),
        });
    }

    /// An agent is ready at `contact` (a SIP URI their phone answers): logs them in, or
    /// ends their break or wrap-up (updating the contact).
    pub fn agent_ready(
        &self,
        agent: &str,
        contact: Option<String>,
        skills: Vec<String>,
        languages: Vec<String>,
    ) {
        let agent = AgentId(agent.to_owned());
        let _ = self.tx.send(match contact {
            Some(contact) => Command::AgentLogin {
                agent,
                contact,
                skills,
                languages,
            },
            None => Command::Agent(AcdEvent::AgentReady { agent }),
        });
    }

    /// An agent takes a break (after the current call, if any).
    pub fn agent_break(&self, agent: &str) {
        let agent = AgentId(agent.to_owned());
        let _ = self.tx.send(Command::Agent(AcdEvent::AgentBreak { agent }));
    }

    /// An agent logs out (after the current call, if any).
    pub fn agent_logout(&self, agent: &str) {
        let agent = AgentId(agent.to_owned());
        let _ = self
            .tx
            .send(Command::Agent(AcdEvent::AgentLogout { agent }));
    }

    /// The agent's phone answered the call's offer.
    pub(crate) fn agent_answered(&self, agent: &str, call: &str) {
        let (agent, call) = (AgentId(agent.to_owned()), CallId(call.to_owned()));
        let _ = self
            .tx
            .send(Command::Agent(AcdEvent::AgentAnswered { agent, call }));
    }

    /// The agent's phone did not answer (busy, rejected, unreachable).
    pub(crate) fn agent_no_answer(&self, agent: &str, call: &str) {
        let (agent, call) = (AgentId(agent.to_owned()), CallId(call.to_owned()));
        let _ = self
            .tx
            .send(Command::Agent(AcdEvent::AgentNoAnswer { agent, call }));
    }

    /// The agent hung up a connected call.
    pub(crate) fn agent_hung_up(&self, agent: &str, call: &str) {
        let (agent, call) = (AgentId(agent.to_owned()), CallId(call.to_owned()));
        let _ = self
            .tx
            .send(Command::Agent(AcdEvent::AgentHungUp { agent, call }));
    }

    /// The live figures; None if the ACD task is gone.
    pub async fn snapshot(&self) -> Option<Snapshot> {
        let (reply, rx) = oneshot::channel();
        self.tx.send(Command::Snapshot { reply }).ok()?;
        rx.await.ok()
    }
}

/// A call the ACD holds, as the shell knows it.
struct Waiting {
    hotline: String,
    to_call: mpsc::UnboundedSender<QueueEvent>,
}

async fn run(
    mut acd: Acd,
    mut commands: mpsc::UnboundedReceiver<Command>,
    events: mpsc::UnboundedSender<CallEvent>,
) {
    let mut calls: HashMap<CallId, Waiting> = HashMap::new();
    let mut contacts: HashMap<AgentId, String> = HashMap::new();
    // Events the shell feeds back (an agent without a phone to ring does not answer).
    let mut feedback: Vec<AcdEvent> = Vec::new();
    loop {
        if let Some(event) = feedback.pop() {
            let now = Timestamp::now();
            for action in acd.handle(now, event) {
                carry_out(action, &mut calls, &contacts, &mut feedback, &events);
            }
            continue;
        }
        let deadline = acd.poll_timeout();
        let sleep = async {
            match deadline {
                Some(at) => {
                    let wait = at.duration_since(Timestamp::now());
                    let wait = Duration::try_from(wait).unwrap_or(Duration::ZERO);
                    tokio::time::sleep(wait).await;
                }
                None => std::future::pending().await,
            }
        };
        let event = tokio::select! {
            cmd = commands.recv() => match cmd {
                None => return,
                Some(Command::Enqueue { call, hotline, queue, language, caller_number, to_call }) => {
                    info!(call_id = %call, %queue, "call queued");
                    calls.insert(call.clone(), Waiting { hotline, to_call });
                    AcdEvent::CallQueued { call, queue, language, caller_number }
                }
                Some(Command::Left { call }) => {
                    calls.remove(&call);
                    AcdEvent::CallerHungUp { call }
                }
                Some(Command::Agent(event)) => {
                    if let AcdEvent::AgentLogout { agent } = &event {
                        contacts.remove(agent);
                    }
                    event
                }
                Some(Command::AgentLogin { agent, contact, skills, languages }) => {
                    info!(%agent, %contact, "agent ready");
                    let known = contacts.insert(agent.clone(), contact).is_some();
                    if known {
                        AcdEvent::AgentReady { agent }
                    } else {
                        AcdEvent::AgentLogin { agent, skills, languages }
                    }
                }
                Some(Command::Snapshot { reply }) => {
                    let now = Timestamp::now();
                    let queues = acd
                        .queue_names()
                        .filter_map(|q| acd.stats(q, now).map(|s| (q.to_owned(), s)))
                        .collect();
                    let agents = acd
                        .agent_ids()
                        .filter_map(|a| acd.agent_stats(a).map(|s| (a.clone(), s)))
                        .collect();
                    let _ = reply.send(Snapshot { at: now, queues, agents });
                    continue;
                }
            },
            () = sleep => AcdEvent::Tick,
        };
        let now = Timestamp::now();
        for action in acd.handle(now, event) {
            carry_out(action, &mut calls, &contacts, &mut feedback, &events);
        }
        for name in acd.queue_names() {
            if let Some(s) = acd.stats(name, now) {
                metrics::gauge!("hotline_queue_waiting", "queue" => name.to_owned())
                    .set(s.waiting as f64);
            }
        }
    }
}

fn carry_out(
    action: AcdAction,
    calls: &mut HashMap<CallId, Waiting>,
    contacts: &HashMap<AgentId, String>,
    feedback: &mut Vec<AcdEvent>,
    events: &mpsc::UnboundedSender<CallEvent>,
) {
    let tell = |calls: &HashMap<CallId, Waiting>, call: &CallId, event: QueueEvent| {
        if let Some(w) = calls.get(call) {
            let _ = w.to_call.send(event);
        }
    };
    match action {
        AcdAction::PlayMusicOnHold { call, prompt } => {
            tell(calls, &call, QueueEvent::MusicOnHold(prompt))
        }
        AcdAction::Announce {
            call,
            position,
            estimated_wait,
        } => tell(
            calls,
            &call,
            QueueEvent::Announce {
                position,
                estimated_wait,
            },
        ),
        AcdAction::Overflow { call, to } => {
            info!(call_id = %call, to = ?to, "queue overflow");
            metrics::counter!("hotline_queue_overflows_total").increment(1);
            let outcome = match to {
                // The ACD moved the call to the other queue itself; the music goes on.
                OverflowTarget::Queue(_) => return,
                OverflowTarget::Voicemail => QueueOutcome::Voicemail,
                OverflowTarget::Callback => QueueOutcome::CallbackRequested,
            };
            tell(calls, &call, QueueEvent::Outcome(outcome.clone()));
            // The callback task follows; it needs the call's hotline.
            if outcome != QueueOutcome::CallbackRequested {
                calls.remove(&call);
            }
        }
        AcdAction::CreateCallbackTask(task) => {
            let hotline = calls
                .remove(&task.call)
                .map(|w| w.hotline)
                .unwrap_or_default();
            info!(call_id = %task.call, queue = %task.queue, "callback requested");
            let _ = events.send(CallEvent::CallbackRequested { hotline, task });
        }
        AcdAction::AgentStateChanged { agent, state } => {
            info!(%agent, ?state, "agent state");
        }
        AcdAction::RingAgent { agent, call } => match (contacts.get(&agent), calls.get(&call)) {
            (Some(contact), Some(_)) => tell(
                calls,
                &call,
                QueueEvent::Ring {
                    agent: agent.0.clone(),
                    contact: contact.clone(),
                },
            ),
            _ => {
                warn!(%agent, call_id = %call, "no phone to ring for this agent or call");
                feedback.push(AcdEvent::AgentNoAnswer { agent, call });
            }
        },
        AcdAction::CancelRing { agent, call } => {
            tell(calls, &call, QueueEvent::CancelRing { agent: agent.0 })
        }
        AcdAction::Bridge { call, agent } => {
            info!(%agent, call_id = %call, "caller and agent connected");
            tell(calls, &call, QueueEvent::Bridge { agent: agent.0 });
        }
    }
}
