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
    loop {
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
                    if calls.remove(&call).is_none() {
                        continue;
                    }
                    AcdEvent::CallerHungUp { call }
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
            carry_out(action, &mut calls, &events);
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
        AcdAction::RingAgent { agent, call } => {
            // Agents reach the ACD through the agent desk, which is not built yet: no agent
            // can log in, so the ACD never rings one. Should it, the caller must not wait on a
            // desk that cannot ring.
            warn!(%agent, call_id = %call, "no agent endpoint to ring");
        }
        AcdAction::CancelRing { .. } => {}
        AcdAction::Bridge { call, agent } => {
            warn!(%agent, call_id = %call, "no agent endpoint to bridge");
        }
    }
}
