//! The sans-IO ACD state machine.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::time::Duration;

use jiff::Timestamp;

use super::stats::mean;
use super::{
    AcdAction, AcdConfig, AcdEvent, AgentId, AgentState, AgentStats, CallId, CallbackTask,
    ConfigError, OverflowTarget, QueueConfig, QueueStats, Strategy,
};

/// The automatic call distributor: queues, agents, offers and statistics.
///
/// Feed it events with the current time ([`Acd::handle`]); carry out the returned actions in
/// order; call `handle(t, AcdEvent::Tick)` at the time [`Acd::poll_timeout`] gives. Timers due at
/// or before `now` fire at the start of every `handle`, whatever the event.
#[derive(Debug, Clone)]
pub struct Acd {
    service_level: Duration,
    max_missed_offers: u32,
    queues: Vec<Queue>,
    queue_index: BTreeMap<String, usize>,
    agents: BTreeMap<AgentId, Agent>,
    calls: BTreeMap<CallId, Call>,
}

#[derive(Debug, Clone)]
struct Queue {
    config: QueueConfig,
    waiting: VecDeque<CallId>,
    round_robin_last: Option<AgentId>,
    offered: u64,
    answered: u64,
    within_service_level: u64,
    abandoned: u64,
    overflowed: u64,
    handled: u64,
    handle_total: Duration,
    answer_wait_total: Duration,
}

#[derive(Debug, Clone)]
struct Call {
    queue: usize,
    entered_at: Timestamp,
    language: Option<String>,
    caller_number: Option<String>,
    state: CallState,
}

#[derive(Debug, Clone)]
enum CallState {
    Waiting {
        ringing: Vec<AgentId>,
        ring_deadline: Option<Timestamp>,
        tried: BTreeSet<AgentId>,
        max_wait_at: Timestamp,
        next_announce: Option<Timestamp>,
    },
    Connected {
        agent: AgentId,
        answered_at: Timestamp,
    },
}

#[derive(Debug, Clone)]
struct Agent {
    skills: BTreeSet<String>,
    languages: BTreeSet<String>,
    state: AgentMode,
    idle_since: Timestamp,
    /// State to enter when the current call ends instead of wrap-up (break or offline).
    after_call: Option<AgentState>,
    offered: u64,
    answered: u64,
    missed: u64,
    missed_in_a_row: u32,
    handled: u64,
    handle_total: Duration,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum AgentMode {
    Offline,
    Available,
    Ringing(CallId),
    Busy(CallId),
    WrapUp {
        since: Timestamp,
        until: Timestamp,
        queue: usize,
    },
    Break,
}

impl AgentMode {
    fn public(&self) -> AgentState {
        match self {
            AgentMode::Offline => AgentState::Offline,
            AgentMode::Available => AgentState::Available,
            AgentMode::Ringing(_) => AgentState::Ringing,
            AgentMode::Busy(_) => AgentState::Busy,
            AgentMode::WrapUp { .. } => AgentState::WrapUp,
            AgentMode::Break => AgentState::Break,
        }
    }
}

impl Agent {
    fn qualifies(&self, queue: &QueueConfig, language: Option<&str>) -> bool {
        queue.skills.iter().all(|s| self.skills.contains(s))
            && (queue.languages.is_empty()
                || queue.languages.iter().any(|l| self.languages.contains(l)))
            && language.is_none_or(|l| self.languages.contains(l))
    }
    fn staffed(&self) -> bool {
        !matches!(self.state, AgentMode::Offline | AgentMode::Break)
    }
}

/// `t + d`, saturating at the end of representable time.
fn after(t: Timestamp, d: Duration) -> Timestamp {
    t.checked_add(d).unwrap_or(Timestamp::MAX)
}

/// `to - from`, zero if `to` is earlier.
fn since(from: Timestamp, to: Timestamp) -> Duration {
    Duration::try_from(to.duration_since(from)).unwrap_or_default()
}

fn min_opt(a: Option<Timestamp>, b: Option<Timestamp>) -> Option<Timestamp> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

impl Acd {
    /// Builds an ACD from a configuration, validating it first.
    pub fn new(config: AcdConfig) -> Result<Self, ConfigError> {
        config.validate()?;
        let queue_index = config
            .queues
            .iter()
            .enumerate()
            .map(|(i, q)| (q.name.clone(), i))
            .collect();
        let queues = config
            .queues
            .into_iter()
            .map(|config| Queue {
                config,
                waiting: VecDeque::new(),
                round_robin_last: None,
                offered: 0,
                answered: 0,
                within_service_level: 0,
                abandoned: 0,
                overflowed: 0,
                handled: 0,
                handle_total: Duration::ZERO,
                answer_wait_total: Duration::ZERO,
            })
            .collect();
        Ok(Acd {
            service_level: Duration::from_secs(config.service_level_secs),
            max_missed_offers: config.max_missed_offers,
            queues,
            queue_index,
            agents: BTreeMap::new(),
            calls: BTreeMap::new(),
        })
    }

    /// Processes one event at time `now` and returns what the gateway must do, in order.
    pub fn handle(&mut self, now: Timestamp, event: AcdEvent) -> Vec<AcdAction> {
        let mut out = Vec::new();
        self.fire_timers(now, &mut out);
        match event {
            AcdEvent::Tick => {}
            AcdEvent::CallQueued {
                call,
                queue,
                language,
                caller_number,
            } => {
                if self.calls.contains_key(&call) {
                    // Already queued or connected: a retransmission, nothing to do.
                } else if let Some(&qi) = self.queue_index.get(&queue) {
                    self.enqueue(call, qi, language, caller_number, now, 0, &mut out);
                } else {
                    // No such queue: the caller must not be lost, so they leave a message.
                    out.push(AcdAction::Overflow {
                        call,
                        to: OverflowTarget::Voicemail,
                    });
                }
            }
            AcdEvent::CallerHungUp { call } => self.caller_hung_up(&call, now, &mut out),
            AcdEvent::AgentAnswered { agent, call } => self.answered(agent, call, now, &mut out),
            AcdEvent::AgentRejected { agent, call } | AcdEvent::AgentNoAnswer { agent, call } => {
                if self.withdraw_offer(&agent, &call) {
                    self.missed(&agent, now, &mut out);
                }
            }
            AcdEvent::AgentHungUp { agent, call } => {
                let connected_here = matches!(
                    self.calls.get(&call).map(|c| &c.state),
                    Some(CallState::Connected { agent: a, .. }) if *a == agent
                );
                if connected_here {
                    self.end_connected(&call, now, &mut out);
                }
            }
            AcdEvent::AgentLogin {
                agent,
                skills,
                languages,
            } => self.login(agent, skills, languages, now, &mut out),
            AcdEvent::AgentLogout { agent } => {
                self.leave(&agent, AgentState::Offline, now, &mut out)
            }
            AcdEvent::AgentBreak { agent } => self.leave(&agent, AgentState::Break, now, &mut out),
            AcdEvent::AgentReady { agent } => self.ready(&agent, now, &mut out),
        }
        self.dispatch(now, &mut out);
        out
    }

    /// The earliest time at which `handle(t, AcdEvent::Tick)` has work to do, if any.
    pub fn poll_timeout(&self) -> Option<Timestamp> {
        let mut next = None;
        for agent in self.agents.values() {
            if let AgentMode::WrapUp { until, .. } = agent.state {
                next = min_opt(next, Some(until));
            }
        }
        for call in self.calls.values() {
            if let CallState::Waiting {
                ring_deadline,
                max_wait_at,
                next_announce,
                ..
            } = &call.state
            {
                next = min_opt(next, *ring_deadline);
                next = min_opt(next, Some(*max_wait_at));
                next = min_opt(next, *next_announce);
            }
        }
        next
    }

    /// Live figures of a queue at time `now` (for the longest current wait); `None` if unknown.
    pub fn stats(&self, queue: &str, now: Timestamp) -> Option<QueueStats> {
        let q = self.queues.get(*self.queue_index.get(queue)?)?;
        let longest_wait = q
            .waiting
            .front()
            .and_then(|c| self.calls.get(c))
            .map_or(Duration::ZERO, |c| since(c.entered_at, now));
        let decided = q.answered + q.abandoned;
        Some(QueueStats {
            waiting: q.waiting.len(),
            longest_wait,
            offered: q.offered,
            answered: q.answered,
            answered_within_service_level: q.within_service_level,
            abandoned: q.abandoned,
            overflowed: q.overflowed,
            handled: q.handled,
            service_level_threshold: self.service_level,
            service_level: (decided > 0).then(|| q.within_service_level as f64 / decided as f64),
            average_handle_time: mean(q.handle_total, q.handled),
            average_speed_of_answer: mean(q.answer_wait_total, q.answered),
        })
    }

    /// The queues' names, in priority order.
    pub fn queue_names(&self) -> impl Iterator<Item = &str> {
        self.queues.iter().map(|q| q.config.name.as_str())
    }

    /// Every agent that ever logged in, by id.
    pub fn agent_ids(&self) -> impl Iterator<Item = &AgentId> {
        self.agents.keys()
    }

    /// Live figures of an agent; `None` if the agent never logged in.
    pub fn agent_stats(&self, agent: &AgentId) -> Option<AgentStats> {
        let a = self.agents.get(agent)?;
        Some(AgentStats {
            state: a.state.public(),
            offered: a.offered,
            answered: a.answered,
            missed: a.missed,
            missed_in_a_row: a.missed_in_a_row,
            handled: a.handled,
            average_handle_time: mean(a.handle_total, a.handled),
        })
    }

    /// Calls waiting in a queue, head first (empty for an unknown queue).
    pub fn waiting_calls(&self, queue: &str) -> Vec<CallId> {
        self.queue_index
            .get(queue)
            .and_then(|&i| self.queues.get(i))
            .map(|q| q.waiting.iter().cloned().collect())
            .unwrap_or_default()
    }

    // ----- timers -----

    fn fire_timers(&mut self, now: Timestamp, out: &mut Vec<AcdAction>) {
        let wrap_done: Vec<AgentId> = self
            .agents
            .iter()
            .filter(|(_, a)| matches!(a.state, AgentMode::WrapUp { until, .. } if until <= now))
            .map(|(id, _)| id.clone())
            .collect();
        for id in wrap_done {
            self.end_wrap_up(&id, now, AgentMode::Available, out);
        }

        let mut rang_out = Vec::new();
        let mut too_long = Vec::new();
        let mut announce = Vec::new();
        for (id, call) in &self.calls {
            if let CallState::Waiting {
                ring_deadline,
                max_wait_at,
                next_announce,
                ..
            } = &call.state
            {
                if *max_wait_at <= now {
                    too_long.push(id.clone());
                } else {
                    if ring_deadline.is_some_and(|t| t <= now) {
                        rang_out.push(id.clone());
                    }
                    if next_announce.is_some_and(|t| t <= now) {
                        announce.push(id.clone());
                    }
                }
            }
        }
        for id in rang_out {
            let ringing = match self.calls.get_mut(&id).map(|c| &mut c.state) {
                Some(CallState::Waiting {
                    ringing,
                    ring_deadline,
                    ..
                }) => {
                    *ring_deadline = None;
                    std::mem::take(ringing)
                }
                _ => continue,
            };
            for agent in ringing {
                out.push(AcdAction::CancelRing {
                    agent: agent.clone(),
                    call: id.clone(),
                });
                self.missed(&agent, now, out);
            }
        }
        for id in too_long {
            self.overflow(&id, now, 0, out);
        }
        for id in announce {
            // Skip calls that left, or moved to another queue and were announced on entry.
            let due = matches!(
                self.calls.get(&id).map(|c| &c.state),
                Some(CallState::Waiting { next_announce: Some(t), .. }) if *t <= now
            );
            if due {
                self.announce(&id, now, out);
            }
        }
    }

    fn end_wrap_up(
        &mut self,
        id: &AgentId,
        now: Timestamp,
        next: AgentMode,
        out: &mut Vec<AcdAction>,
    ) {
        let Some(agent) = self.agents.get_mut(id) else {
            return;
        };
        let AgentMode::WrapUp {
            since: started,
            until,
            queue,
        } = agent.state
        else {
            return;
        };
        let end = until.min(now);
        let wrap = since(started, end);
        agent.handle_total = agent.handle_total.saturating_add(wrap);
        if let Some(q) = self.queues.get_mut(queue) {
            q.handle_total = q.handle_total.saturating_add(wrap);
        }
        agent.idle_since = end;
        agent.state = next;
        out.push(AcdAction::AgentStateChanged {
            agent: id.clone(),
            state: agent.state.public(),
        });
    }

    // ----- calls -----

    #[allow(clippy::too_many_arguments)]
    fn enqueue(
        &mut self,
        call: CallId,
        qi: usize,
        language: Option<String>,
        caller_number: Option<String>,
        now: Timestamp,
        depth: usize,
        out: &mut Vec<AcdAction>,
    ) {
        let Some(queue) = self.queues.get_mut(qi) else {
            out.push(AcdAction::Overflow {
                call,
                to: OverflowTarget::Voicemail,
            });
            return;
        };
        queue.offered += 1;
        if queue.waiting.len() >= queue.config.max_length {
            queue.overflowed += 1;
            let target = queue.config.overflow.clone();
            let queue_name = queue.config.name.clone();
            self.send_to(
                call,
                target,
                queue_name,
                language,
                caller_number,
                now,
                depth,
                out,
            );
            return;
        }
        queue.waiting.push_back(call.clone());
        let cfg = &queue.config;
        self.calls.insert(
            call.clone(),
            Call {
                queue: qi,
                entered_at: now,
                language,
                caller_number,
                state: CallState::Waiting {
                    ringing: Vec::new(),
                    ring_deadline: None,
                    tried: BTreeSet::new(),
                    max_wait_at: after(now, cfg.max_wait()),
                    next_announce: cfg.announce_every().map(|_| now),
                },
            },
        );
        out.push(AcdAction::PlayMusicOnHold {
            call: call.clone(),
            prompt: cfg.music_on_hold.clone(),
        });
        if cfg.announce_every().is_some() {
            self.announce(&call, now, out);
        }
    }

    /// Sends a call that has left (or never entered) `from` to an overflow target.
    #[allow(clippy::too_many_arguments)]
    fn send_to(
        &mut self,
        call: CallId,
        target: OverflowTarget,
        from: String,
        language: Option<String>,
        caller_number: Option<String>,
        now: Timestamp,
        depth: usize,
        out: &mut Vec<AcdAction>,
    ) {
        match target {
            OverflowTarget::Queue(name) => {
                // Validation forbids cycles; the depth guard keeps that true for any input.
                match self.queue_index.get(&name).copied() {
                    Some(qi) if depth <= self.queues.len() => {
                        out.push(AcdAction::Overflow {
                            call: call.clone(),
                            to: OverflowTarget::Queue(name),
                        });
                        self.enqueue(call, qi, language, caller_number, now, depth + 1, out);
                    }
                    _ => out.push(AcdAction::Overflow {
                        call,
                        to: OverflowTarget::Voicemail,
                    }),
                }
            }
            OverflowTarget::Voicemail => out.push(AcdAction::Overflow {
                call,
                to: OverflowTarget::Voicemail,
            }),
            OverflowTarget::Callback => match caller_number {
                Some(number) if !number.trim().is_empty() => {
                    out.push(AcdAction::Overflow {
                        call: call.clone(),
                        to: OverflowTarget::Callback,
                    });
                    out.push(AcdAction::CreateCallbackTask(CallbackTask {
                        call,
                        caller_number: number,
                        queue: from,
                        language,
                        requested_at: now,
                    }));
                }
                // No number to call back (withheld CLI): a message is the next best thing.
                _ => out.push(AcdAction::Overflow {
                    call,
                    to: OverflowTarget::Voicemail,
                }),
            },
        }
    }

    /// Removes a waiting call from its queue, cancelling its rings. Returns the call record.
    fn take_waiting(&mut self, id: &CallId, out: &mut Vec<AcdAction>) -> Option<Call> {
        if !matches!(self.calls.get(id)?.state, CallState::Waiting { .. }) {
            return None;
        }
        let call = self.calls.remove(id)?;
        if let Some(q) = self.queues.get_mut(call.queue) {
            q.waiting.retain(|c| c != id);
        }
        if let CallState::Waiting { ringing, .. } = &call.state {
            for agent in ringing {
                out.push(AcdAction::CancelRing {
                    agent: agent.clone(),
                    call: id.clone(),
                });
                if let Some(a) = self.agents.get_mut(agent)
                    && a.state == AgentMode::Ringing(id.clone())
                {
                    a.state = AgentMode::Available;
                    out.push(AcdAction::AgentStateChanged {
                        agent: agent.clone(),
                        state: AgentState::Available,
                    });
                }
            }
        }
        Some(call)
    }

    fn overflow(&mut self, id: &CallId, now: Timestamp, depth: usize, out: &mut Vec<AcdAction>) {
        let Some(call) = self.take_waiting(id, out) else {
            return;
        };
        let Some(queue) = self.queues.get_mut(call.queue) else {
            return;
        };
        queue.overflowed += 1;
        let target = queue.config.overflow.clone();
        let from = queue.config.name.clone();
        self.send_to(
            id.clone(),
            target,
            from,
            call.language,
            call.caller_number,
            now,
            depth,
            out,
        );
    }

    fn caller_hung_up(&mut self, id: &CallId, now: Timestamp, out: &mut Vec<AcdAction>) {
        match self.calls.get(id).map(|c| &c.state) {
            Some(CallState::Waiting { .. }) => {
                if let Some(call) = self.take_waiting(id, out)
                    && let Some(q) = self.queues.get_mut(call.queue)
                {
                    q.abandoned += 1;
                }
            }
            Some(CallState::Connected { .. }) => self.end_connected(id, now, out),
            None => {}
        }
    }

    fn end_connected(&mut self, id: &CallId, now: Timestamp, out: &mut Vec<AcdAction>) {
        let Some(call) = self.calls.remove(id) else {
            return;
        };
        let CallState::Connected {
            agent: agent_id,
            answered_at,
        } = call.state
        else {
            return;
        };
        let talk = since(answered_at, now);
        let wrap_up = self
            .queues
            .get(call.queue)
            .map_or(Duration::ZERO, |q| q.config.wrap_up());
        if let Some(q) = self.queues.get_mut(call.queue) {
            q.handled += 1;
            q.handle_total = q.handle_total.saturating_add(talk);
        }
        let Some(agent) = self.agents.get_mut(&agent_id) else {
            return;
        };
        if agent.state != AgentMode::Busy(id.clone()) {
            return;
        }
        agent.handled += 1;
        agent.handle_total = agent.handle_total.saturating_add(talk);
        agent.idle_since = now;
        agent.state = match agent.after_call.take() {
            Some(AgentState::Offline) => AgentMode::Offline,
            Some(_) => AgentMode::Break,
            None if wrap_up.is_zero() => AgentMode::Available,
            None => AgentMode::WrapUp {
                since: now,
                until: after(now, wrap_up),
                queue: call.queue,
            },
        };
        out.push(AcdAction::AgentStateChanged {
            agent: agent_id,
            state: agent.state.public(),
        });
    }

    fn answered(&mut self, agent: AgentId, call: CallId, now: Timestamp, out: &mut Vec<AcdAction>) {
        let offered_to_agent = self
            .agents
            .get(&agent)
            .is_some_and(|a| a.state == AgentMode::Ringing(call.clone()))
            && matches!(
                self.calls.get(&call).map(|c| &c.state),
                Some(CallState::Waiting { ringing, .. }) if ringing.contains(&agent)
            );
        if !offered_to_agent {
            // Too late (caller gone, offer withdrawn, someone else answered): tear the leg down.
            out.push(AcdAction::CancelRing { agent, call });
            return;
        }
        // Withdraw the other rings (ring_all), then take the call out of the queue.
        if let Some(CallState::Waiting { ringing, .. }) =
            self.calls.get_mut(&call).map(|c| &mut c.state)
        {
            ringing.retain(|a| *a != agent);
        }
        let Some(record) = self.take_waiting(&call, out) else {
            return;
        };
        let wait = since(record.entered_at, now);
        if let Some(q) = self.queues.get_mut(record.queue) {
            q.answered += 1;
            q.answer_wait_total = q.answer_wait_total.saturating_add(wait);
            if wait <= self.service_level {
                q.within_service_level += 1;
            }
        }
        if let Some(a) = self.agents.get_mut(&agent) {
            a.answered += 1;
            a.missed_in_a_row = 0;
            a.state = AgentMode::Busy(call.clone());
        }
        self.calls.insert(
            call.clone(),
            Call {
                state: CallState::Connected {
                    agent: agent.clone(),
                    answered_at: now,
                },
                ..record
            },
        );
        out.push(AcdAction::Bridge {
            call,
            agent: agent.clone(),
        });
        out.push(AcdAction::AgentStateChanged {
            agent,
            state: AgentState::Busy,
        });
    }

    /// Removes `agent` from the rings of `call` if it is ringing there. Returns whether it was.
    fn withdraw_offer(&mut self, agent: &AgentId, call: &CallId) -> bool {
        let ringing_here = self
            .agents
            .get(agent)
            .is_some_and(|a| a.state == AgentMode::Ringing(call.clone()));
        if !ringing_here {
            return false;
        }
        if let Some(CallState::Waiting {
            ringing,
            ring_deadline,
            ..
        }) = self.calls.get_mut(call).map(|c| &mut c.state)
        {
            ringing.retain(|a| a != agent);
            if ringing.is_empty() {
                *ring_deadline = None;
            }
        }
        true
    }

    /// An offer to `agent` was missed: back to available at the end of the idle line, or on
    /// break after `max_missed_offers` in a row.
    fn missed(&mut self, id: &AgentId, now: Timestamp, out: &mut Vec<AcdAction>) {
        let Some(agent) = self.agents.get_mut(id) else {
            return;
        };
        if !matches!(agent.state, AgentMode::Ringing(_)) {
            return;
        }
        agent.missed += 1;
        agent.missed_in_a_row = agent.missed_in_a_row.saturating_add(1);
        agent.idle_since = now;
        agent.state =
            if self.max_missed_offers > 0 && agent.missed_in_a_row >= self.max_missed_offers {
                AgentMode::Break
            } else {
                AgentMode::Available
            };
        out.push(AcdAction::AgentStateChanged {
            agent: id.clone(),
            state: agent.state.public(),
        });
    }

    fn announce(&mut self, id: &CallId, now: Timestamp, out: &mut Vec<AcdAction>) {
        let Some(call) = self.calls.get(id) else {
            return;
        };
        let Some(queue) = self.queues.get(call.queue) else {
            return;
        };
        let Some(position) = queue.waiting.iter().position(|c| c == id).map(|p| p + 1) else {
            return;
        };
        let staffed = self
            .agents
            .values()
            .filter(|a| a.staffed() && a.qualifies(&queue.config, call.language.as_deref()))
            .count();
        let estimated_wait = estimated_wait(queue, position, staffed);
        let every = queue.config.announce_every();
        if let Some(Call {
            state: CallState::Waiting { next_announce, .. },
            ..
        }) = self.calls.get_mut(id)
        {
            *next_announce = every.map(|d| after(now, d));
        }
        out.push(AcdAction::Announce {
            call: id.clone(),
            position,
            estimated_wait,
        });
    }

    // ----- agents -----

    fn login(
        &mut self,
        id: AgentId,
        skills: Vec<String>,
        languages: Vec<String>,
        now: Timestamp,
        out: &mut Vec<AcdAction>,
    ) {
        let agent = self.agents.entry(id.clone()).or_insert_with(|| Agent {
            skills: BTreeSet::new(),
            languages: BTreeSet::new(),
            state: AgentMode::Offline,
            idle_since: now,
            after_call: None,
            offered: 0,
            answered: 0,
            missed: 0,
            missed_in_a_row: 0,
            handled: 0,
            handle_total: Duration::ZERO,
        });
        agent.skills = skills.into_iter().collect();
        agent.languages = languages.into_iter().collect();
        if agent.after_call == Some(AgentState::Offline) {
            agent.after_call = None;
        }
        if agent.state == AgentMode::Offline {
            agent.state = AgentMode::Available;
            agent.idle_since = now;
            agent.missed_in_a_row = 0;
            out.push(AcdAction::AgentStateChanged {
                agent: id,
                state: AgentState::Available,
            });
        }
    }

    /// Logout or break: immediately, or after the current call.
    fn leave(&mut self, id: &AgentId, to: AgentState, now: Timestamp, out: &mut Vec<AcdAction>) {
        let Some(agent) = self.agents.get(id) else {
            return;
        };
        let mode = if to == AgentState::Offline {
            AgentMode::Offline
        } else {
            AgentMode::Break
        };
        match agent.state.clone() {
            AgentMode::Offline => {}
            AgentMode::Break if to == AgentState::Break => {}
            AgentMode::Available | AgentMode::Break => self.set(id, mode, out),
            AgentMode::WrapUp { .. } => self.end_wrap_up(id, now, mode, out),
            AgentMode::Ringing(call) => {
                // The offer is withdrawn; dispatch gives the call to the next agent.
                self.withdraw_offer(id, &call);
                out.push(AcdAction::CancelRing {
                    agent: id.clone(),
                    call,
                });
                self.set(id, mode, out);
            }
            AgentMode::Busy(_) => {
                if let Some(a) = self.agents.get_mut(id) {
                    a.after_call = Some(to);
                }
            }
        }
    }

    fn ready(&mut self, id: &AgentId, now: Timestamp, out: &mut Vec<AcdAction>) {
        let Some(agent) = self.agents.get_mut(id) else {
            return;
        };
        match agent.state {
            AgentMode::Break => {
                agent.idle_since = now;
                agent.missed_in_a_row = 0;
                self.set(id, AgentMode::Available, out);
            }
            AgentMode::WrapUp { .. } => self.end_wrap_up(id, now, AgentMode::Available, out),
            AgentMode::Busy(_) => agent.after_call = None,
            AgentMode::Offline | AgentMode::Available | AgentMode::Ringing(_) => {}
        }
    }

    fn set(&mut self, id: &AgentId, mode: AgentMode, out: &mut Vec<AcdAction>) {
        if let Some(a) = self.agents.get_mut(id) {
            a.state = mode;
            out.push(AcdAction::AgentStateChanged {
                agent: id.clone(),
                state: a.state.public(),
            });
        }
    }

    // ----- offers -----

    fn dispatch(&mut self, now: Timestamp, out: &mut Vec<AcdAction>) {
        for qi in 0..self.queues.len() {
            if !self
                .agents
                .values()
                .any(|a| a.state == AgentMode::Available)
            {
                return;
            }
            let waiting: Vec<CallId> = self
                .queues
                .get(qi)
                .map(|q| q.waiting.iter().cloned().collect())
                .unwrap_or_default();
            for call in waiting {
                self.offer(qi, &call, now, out);
            }
        }
    }

    fn offer(&mut self, qi: usize, id: &CallId, now: Timestamp, out: &mut Vec<AcdAction>) {
        let Acd {
            queues,
            agents,
            calls,
            ..
        } = self;
        let Some(queue) = queues.get_mut(qi) else {
            return;
        };
        let Some(call) = calls.get_mut(id) else {
            return;
        };
        let CallState::Waiting {
            ringing,
            ring_deadline,
            tried,
            ..
        } = &mut call.state
        else {
            return;
        };
        if !ringing.is_empty() {
            return;
        }
        let language = call.language.as_deref();
        let eligible: Vec<(&AgentId, Timestamp)> = agents
            .iter()
            .filter(|(_, a)| {
                a.state == AgentMode::Available && a.qualifies(&queue.config, language)
            })
            .map(|(id, a)| (id, a.idle_since))
            .collect();
        if eligible.is_empty() {
            return;
        }
        let mut candidates: Vec<(&AgentId, Timestamp)> = eligible
            .iter()
            .filter(|(a, _)| !tried.contains(*a))
            .copied()
            .collect();
        if candidates.is_empty() {
            // Everyone qualified has been tried: start another round.
            tried.clear();
            candidates = eligible;
        }
        let picks: Vec<AgentId> = match queue.config.strategy {
            Strategy::LongestIdle => candidates
                .iter()
                .min_by_key(|(a, idle)| (*idle, *a))
                .map(|(a, _)| (*a).clone())
                .into_iter()
                .collect(),
            Strategy::RoundRobin => {
                // Candidates are in agent-id order (BTreeMap); take the first after the last one.
                let next = match &queue.round_robin_last {
                    Some(last) => candidates
                        .iter()
                        .find(|(a, _)| *a > last)
                        .or(candidates.first()),
                    None => candidates.first(),
                };
                next.map(|(a, _)| (*a).clone()).into_iter().collect()
            }
            Strategy::RingAll => candidates.iter().map(|(a, _)| (*a).clone()).collect(),
        };
        if picks.is_empty() {
            return;
        }
        if queue.config.strategy == Strategy::RoundRobin {
            queue.round_robin_last = picks.first().cloned();
        }
        for agent_id in picks {
            if let Some(agent) = agents.get_mut(&agent_id) {
                agent.state = AgentMode::Ringing(id.clone());
                agent.offered += 1;
            }
            tried.insert(agent_id.clone());
            ringing.push(agent_id.clone());
            out.push(AcdAction::RingAgent {
                agent: agent_id.clone(),
                call: id.clone(),
            });
            out.push(AcdAction::AgentStateChanged {
                agent: agent_id,
                state: AgentState::Ringing,
            });
        }
        *ring_deadline = Some(after(now, queue.config.ring_timeout()));
    }

    /// Checks the links between agents and calls; used by the tests after every step.
    #[cfg(test)]
    pub(crate) fn check_consistency(&self) {
        for (aid, a) in &self.agents {
            match &a.state {
                AgentMode::Ringing(c) => assert!(
                    matches!(self.calls.get(c).map(|c| &c.state), Some(CallState::Waiting { ringing, .. }) if ringing.contains(aid)),
                    "{aid} ringing for {c} which does not ring it"
                ),
                AgentMode::Busy(c) => assert!(
                    matches!(self.calls.get(c).map(|c| &c.state), Some(CallState::Connected { agent, .. }) if agent == aid),
                    "{aid} busy with {c} which is not connected to it"
                ),
                _ => {}
            }
        }
        for (cid, c) in &self.calls {
            let in_queue = self
                .queues
                .get(c.queue)
                .is_some_and(|q| q.waiting.contains(cid));
            match &c.state {
                CallState::Waiting {
                    ringing,
                    ring_deadline,
                    ..
                } => {
                    assert!(in_queue, "{cid} waiting but not in its queue");
                    assert_eq!(
                        ringing.is_empty(),
                        ring_deadline.is_none(),
                        "{cid} ring deadline"
                    );
                    for r in ringing {
                        assert_eq!(
                            self.agents.get(r).map(|a| &a.state),
                            Some(&AgentMode::Ringing(cid.clone()))
                        );
                    }
                }
                CallState::Connected { agent, .. } => {
                    assert!(!in_queue, "{cid} connected but still queued");
                    assert_eq!(
                        self.agents.get(agent).map(|a| &a.state),
                        Some(&AgentMode::Busy(cid.clone()))
                    );
                }
            }
        }
        for q in &self.queues {
            let waiting = q.waiting.len() as u64;
            assert_eq!(
                q.offered,
                q.answered + q.abandoned + q.overflowed + waiting,
                "queue {} counts",
                q.config.name
            );
        }
    }
}

/// Estimated wait for the caller at `position`: `position × handle time ÷ staffed agents`,
/// using the queue's average handle time once known and `assumed_handle_secs` before.
/// `None` when no qualified agent is logged in and ready (the wait cannot be estimated).
fn estimated_wait(queue: &Queue, position: usize, staffed: usize) -> Option<Duration> {
    if staffed == 0 {
        return None;
    }
    let handle = mean(queue.handle_total, queue.handled)
        .unwrap_or(Duration::from_secs(queue.config.assumed_handle_secs));
    let position = u32::try_from(position).unwrap_or(u32::MAX);
    let staffed = u32::try_from(staffed).unwrap_or(u32::MAX);
    Some(handle.saturating_mul(position) / staffed)
}
