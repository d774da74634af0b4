//! One call walking one flow: events in, actions out.

use std::collections::BTreeMap;
use std::sync::Arc;

use jiff::{SignedDuration, Timestamp};

use super::config::{Flow, Lang, Node, Retry};

/// Business hours and holidays, as the caller's calendar sees them (e.g. ticketing's working-day
/// calendar). Any `Fn(Timestamp) -> bool` is one.
pub trait Calendar: Send + Sync {
    /// Whether the hotline's agents work at `at`.
    fn is_open(&self, at: Timestamp) -> bool;
}

impl<F: Fn(Timestamp) -> bool + Send + Sync> Calendar for F {
    fn is_open(&self, at: Timestamp) -> bool {
        self(at)
    }
}

/// A prompt to play: a logical name and the language to play it in
/// (the gateway plays `prompts/<lang>/<name>.wav`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PromptRef {
    /// Logical name (`welcome_12319`, `digits/3`, `status/dispatched`).
    pub name: String,
    /// Language.
    pub lang: Lang,
}

/// Names one timer of one session; a `TimerFired` with another id than the pending one is stale
/// and ignored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TimerId(pub u64);

/// What the ACD reports about a call the flow put in a queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum QueueOutcome {
    /// An agent answered: the call is bridged and the flow is done.
    Answered,
    /// The queue overflowed to a node of this flow (one of the queue node's `overflow` list;
    /// any other name goes to its `fallback`).
    OverflowToNode(String),
    /// The queue sends the caller to voicemail (the queue node's `voicemail` node).
    Voicemail,
    /// The caller asked to be called back; the ACD has stored the callback task
    /// (the flow goes to the queue node's `callback` node).
    CallbackRequested,
}

/// What happened on the call; the gateway (and the ACD) feed these to [`Session::handle`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A DTMF key (`0`-`9`, `*`, `#`; others are ignored).
    Digit(char),
    /// The last [`Action::Play`] ran to its end. A play stopped by [`Action::StopPlayback`] or
    /// replaced by a later `Play` reports nothing.
    PromptFinished,
    /// A timer started by [`Action::StartTimer`] is due.
    TimerFired(TimerId),
    /// The recording started by [`Action::StartRecording`] ended (`#`, max length, silence,
    /// hang-up); the gateway keeps the file.
    RecordingFinished {
        /// Its length.
        duration_ms: u64,
    },
    /// The answer to [`Action::LookUpTicket`].
    TicketStatus {
        /// Whether the number names a ticket.
        found: bool,
        /// The ticket's status code (`dispatched`), when found.
        status: Option<String>,
    },
    /// The answer of the ACD to [`Action::Enqueue`].
    QueueOutcome(QueueOutcome),
    /// The trunk refused the [`Action::Transfer`] or the new call failed: the flow goes on at
    /// the transfer node's `failed` node (or hangs up without one).
    TransferFailed,
    /// The caller hung up.
    CallerHungUp,
}

/// What the gateway must do, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Play these prompts one after the other, replacing any playback; then report
    /// [`Event::PromptFinished`].
    Play(Vec<PromptRef>),
    /// Stop the current playback (the caller barged in); no `PromptFinished` follows.
    StopPlayback,
    /// Report [`Event::TimerFired`] with `id` at `at`.
    StartTimer {
        /// The timer.
        id: TimerId,
        /// When it is due.
        at: Timestamp,
    },
    /// Forget the timer.
    CancelTimer(TimerId),
    /// Record the caller, at most `max_seconds`, ending on silence as the gateway decides; then
    /// report [`Event::RecordingFinished`].
    StartRecording {
        /// Upper bound on the length.
        max_seconds: u64,
    },
    /// End the recording now (the caller pressed `#`).
    StopRecording,
    /// Look the ticket up; answer with [`Event::TicketStatus`].
    LookUpTicket {
        /// Canonical ticket number (`12319-20261123-000042`).
        number: String,
    },
    /// Open a phone-channel ticket with the last recording attached.
    CreateVoicemailTicket,
    /// Hand the call to the ACD; it answers with [`Event::QueueOutcome`].
    Enqueue {
        /// Queue name (`12319-intake`).
        queue: String,
    },
    /// Transfer the call to an external number via a trunk; the flow is done.
    Transfer {
        /// The number to dial.
        number: String,
    },
    /// Hang up; the flow is done.
    Hangup,
}

/// How a finished session ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The flow hung up.
    HungUp,
    /// The caller hung up.
    CallerHungUp,
    /// The call was handed to the trunk to transfer (see [`Event::TransferFailed`]).
    Transferred,
    /// An agent answered the queued call.
    Answered,
}

#[derive(Debug)]
enum After {
    Goto(usize),
    Record(u64),
    Transfer(String),
    Hangup,
}

#[derive(Debug)]
enum State {
    New,
    /// Menu, collect or language node waiting for keys; `playing` while its prompt plays.
    Input {
        playing: bool,
    },
    /// A prompt plays; then `After`.
    Playing(After),
    Recording {
        stopping: bool,
        hung_up: bool,
        next: usize,
    },
    LookingUp {
        keyed: String,
    },
    Queued,
    /// Handed to the trunk; `failed` is where to go should it fail.
    Transferring {
        failed: Option<usize>,
    },
    Finished(Outcome),
}

/// One call in one flow. Feed it events with the current time; carry out the actions it returns.
/// It never reads a clock, does no I/O and never panics.
pub struct Session {
    flow: Flow,
    calendar: Arc<dyn Calendar>,
    lang: Lang,
    vars: BTreeMap<String, String>,
    node: usize,
    state: State,
    retries: u32,
    digits: String,
    timer: Option<TimerId>,
    next_timer: u64,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("flow", &self.flow.file_name())
            .field("node", &self.flow.name(self.node))
            .field("state", &self.state)
            .field("lang", &self.lang)
            .finish_non_exhaustive()
    }
}

impl Session {
    /// A call about to enter `flow`, in Chinese, asking `calendar` about business hours.
    pub fn new(flow: &Flow, calendar: Arc<dyn Calendar>) -> Session {
        Session {
            flow: flow.clone(),
            calendar,
            lang: Lang::Zh,
            vars: BTreeMap::new(),
            node: flow.start(),
            state: State::New,
            retries: 0,
            digits: String::new(),
            timer: None,
            next_timer: 0,
        }
    }

    /// The same, starting in `lang` (e.g. from the dialled number).
    pub fn with_language(mut self, lang: Lang) -> Session {
        self.lang = lang;
        self
    }

    /// The caller's language.
    pub fn language(&self) -> Lang {
        self.lang
    }

    /// The node the call is in (the start node before [`Session::start`]).
    pub fn current_node(&self) -> &str {
        self.flow.name(self.node)
    }

    /// A variable stored by a collect node (`ticket`).
    pub fn variable(&self, name: &str) -> Option<&str> {
        self.vars.get(name).map(String::as_str)
    }

    /// How the session ended, once it has.
    pub fn outcome(&self) -> Option<Outcome> {
        match self.state {
            State::Finished(o) => Some(o),
            State::Transferring { .. } => Some(Outcome::Transferred),
            _ => None,
        }
    }

    /// Whether the session is over: it returns no more actions (but for
    /// [`Event::TransferFailed`] after a transfer).
    pub fn is_finished(&self) -> bool {
        self.outcome().is_some()
    }

    /// The call is answered: enter the start node. A second call does nothing.
    pub fn start(&mut self, now: Timestamp) -> Vec<Action> {
        let mut out = Vec::new();
        if matches!(self.state, State::New) {
            self.enter(now, self.flow.start(), &mut out);
        }
        out
    }

    /// Feeds one event; returns what to do, in order. Events that do not fit the current state
    /// (a stale timer, a key during a plain prompt, anything after the end) are ignored.
    pub fn handle(&mut self, now: Timestamp, event: Event) -> Vec<Action> {
        let mut out = Vec::new();
        if matches!(self.state, State::New | State::Finished(_)) {
            return out;
        }
        match event {
            Event::CallerHungUp => self.caller_hung_up(&mut out),
            Event::Digit(c) if matches!(c, '0'..='9' | '*' | '#' | 'A'..='D') => {
                self.digit(now, c, &mut out)
            }
            Event::Digit(_) => {}
            Event::PromptFinished => self.prompt_finished(now, &mut out),
            Event::TimerFired(id) => {
                if self.timer == Some(id) {
                    self.timer = None;
                    self.timer_fired(now, &mut out);
                }
            }
            Event::RecordingFinished { .. } => {
                if let State::Recording { hung_up, next, .. } = self.state {
                    self.cancel_timer(&mut out);
                    out.push(Action::CreateVoicemailTicket);
                    if hung_up {
                        self.state = State::Finished(Outcome::CallerHungUp);
                    } else {
                        self.enter(now, next, &mut out);
                    }
                }
            }
            Event::TicketStatus { found, status } => {
                if let State::LookingUp { keyed } = &self.state {
                    let keyed = keyed.clone();
                    self.cancel_timer(&mut out);
                    self.ticket_status(now, &keyed, found, status.as_deref(), &mut out);
                }
            }
            Event::QueueOutcome(outcome) => {
                if matches!(self.state, State::Queued) {
                    self.queue_outcome(now, outcome, &mut out);
                }
            }
            Event::TransferFailed => {
                if let State::Transferring { failed } = self.state {
                    match failed {
                        Some(node) => self.enter(now, node, &mut out),
                        None => {
                            out.push(Action::Hangup);
                            self.state = State::Finished(Outcome::HungUp);
                        }
                    }
                }
            }
        }
        out
    }

    // ---- transitions -------------------------------------------------------------------------

    fn enter(&mut self, now: Timestamp, mut idx: usize, out: &mut Vec<Action>) {
        let flow = self.flow.clone();
        // Validation forbids loops without input, so chains of immediate hops are shorter than
        // the flow; the bound is a second line of defence.
        for _ in 0..=flow.len() {
            self.node = idx;
            self.retries = 0;
            self.digits.clear();
            let Some(node) = flow.node(idx) else { break };
            match node {
                Node::Play { prompts, next } => {
                    out.push(Action::Play(self.refs(prompts)));
                    self.state = State::Playing(After::Goto(*next));
                }
                Node::Menu { prompts, .. }
                | Node::Collect { prompts, .. }
                | Node::Language { prompts, .. } => {
                    let refs = self.input_refs(node, &[], prompts);
                    out.push(Action::Play(refs));
                    self.state = State::Input { playing: true };
                }
                Node::Hours { open, closed } => {
                    idx = if self.calendar.is_open(now) {
                        *open
                    } else {
                        *closed
                    };
                    continue;
                }
                Node::Record {
                    prompts,
                    max_seconds,
                    ..
                } => {
                    out.push(Action::Play(self.refs(prompts)));
                    self.state = State::Playing(After::Record(*max_seconds));
                }
                Node::Lookup {
                    var,
                    prefix,
                    not_found_prompts,
                    timeout_ms,
                    not_found,
                    ..
                } => {
                    let keyed = self.vars.get(var).cloned().unwrap_or_default();
                    match canonical_number(prefix, &keyed) {
                        Some(number) => {
                            out.push(Action::LookUpTicket { number });
                            self.start_timer(now, *timeout_ms, out);
                            self.state = State::LookingUp { keyed };
                        }
                        None => {
                            out.push(Action::Play(self.refs(not_found_prompts)));
                            self.state = State::Playing(After::Goto(*not_found));
                        }
                    }
                }
                Node::Queue { queue, .. } => {
                    out.push(Action::Enqueue {
                        queue: queue.clone(),
                    });
                    self.state = State::Queued;
                }
                Node::Transfer {
                    number, prompts, ..
                } => {
                    self.play_then(prompts, After::Transfer(number.clone()), out);
                }
                Node::Hangup { prompts } => self.play_then(prompts, After::Hangup, out),
            }
            return;
        }
        out.push(Action::Hangup);
        self.state = State::Finished(Outcome::HungUp);
    }

    fn play_then(&mut self, prompts: &[String], after: After, out: &mut Vec<Action>) {
        if prompts.is_empty() {
            self.finish_with(after, out);
        } else {
            out.push(Action::Play(self.refs(prompts)));
            self.state = State::Playing(after);
        }
    }

    fn finish_with(&mut self, after: After, out: &mut Vec<Action>) {
        match after {
            After::Transfer(number) => {
                out.push(Action::Transfer { number });
                let failed = match self.flow.node(self.node) {
                    Some(Node::Transfer { failed, .. }) => *failed,
                    _ => None,
                };
                self.state = State::Transferring { failed };
            }
            _ => {
                out.push(Action::Hangup);
                self.state = State::Finished(Outcome::HungUp);
            }
        }
    }

    fn prompt_finished(&mut self, now: Timestamp, out: &mut Vec<Action>) {
        match std::mem::replace(&mut self.state, State::New) {
            State::Input { playing: true } => {
                self.state = State::Input { playing: false };
                let ms = self.retry().map(|r| r.timeout_ms).unwrap_or(5_000);
                self.start_timer(now, ms, out);
            }
            State::Playing(After::Goto(next)) => self.enter(now, next, out),
            State::Playing(After::Record(max_seconds)) => {
                out.push(Action::StartRecording { max_seconds });
                // A guard in case the gateway never reports the end of the recording.
                self.start_timer(
                    now,
                    max_seconds.saturating_mul(1_000).saturating_add(10_000),
                    out,
                );
                let next = match self.flow.node(self.node) {
                    Some(Node::Record { next, .. }) => *next,
                    _ => self.node,
                };
                self.state = State::Recording {
                    stopping: false,
                    hung_up: false,
                    next,
                };
            }
            State::Playing(after) => self.finish_with(after, out),
            other => self.state = other,
        }
    }

    fn digit(&mut self, now: Timestamp, c: char, out: &mut Vec<Action>) {
        match self.state {
            State::Input { playing } => {
                if playing {
                    out.push(Action::StopPlayback);
                    self.state = State::Input { playing: false };
                }
                self.cancel_timer(out);
                self.input(now, c, out);
            }
            State::Recording {
                stopping: false,
                hung_up,
                next,
            } if c == '#' => {
                out.push(Action::StopRecording);
                self.cancel_timer(out);
                self.state = State::Recording {
                    stopping: true,
                    hung_up,
                    next,
                };
            }
            _ => {}
        }
    }

    fn input(&mut self, now: Timestamp, c: char, out: &mut Vec<Action>) {
        let flow = self.flow.clone();
        match flow.node(self.node) {
            Some(Node::Menu { options, .. }) => match options.get(&c) {
                Some(&target) => self.enter(now, target, out),
                None => self.failure(now, false, out),
            },
            Some(Node::Language { choices, next, .. }) => match choices.get(&c) {
                Some(&lang) => {
                    self.lang = lang;
                    self.enter(now, *next, out);
                }
                None => self.failure(now, false, out),
            },
            Some(Node::Collect {
                var,
                min,
                max,
                terminator,
                inter_digit_ms,
                next,
                ..
            }) => {
                if c == *terminator {
                    if self.digits.len() >= *min {
                        self.vars
                            .insert(var.clone(), std::mem::take(&mut self.digits));
                        self.enter(now, *next, out);
                    } else {
                        self.failure(now, self.digits.is_empty(), out);
                    }
                } else if c.is_ascii_digit() {
                    self.digits.push(c);
                    if self.digits.len() >= *max {
                        self.vars
                            .insert(var.clone(), std::mem::take(&mut self.digits));
                        self.enter(now, *next, out);
                    } else {
                        self.start_timer(now, *inter_digit_ms, out);
                    }
                } else {
                    self.failure(now, false, out);
                }
            }
            _ => {}
        }
    }

    fn timer_fired(&mut self, now: Timestamp, out: &mut Vec<Action>) {
        let flow = self.flow.clone();
        match self.state {
            State::Input { playing: false } => {
                if let Some(Node::Collect { var, min, next, .. }) = flow.node(self.node)
                    && !self.digits.is_empty()
                {
                    if self.digits.len() >= *min {
                        self.vars
                            .insert(var.clone(), std::mem::take(&mut self.digits));
                        self.enter(now, *next, out);
                    } else {
                        self.failure(now, false, out);
                    }
                    return;
                }
                self.failure(now, true, out);
            }
            State::Recording {
                stopping: false,
                hung_up,
                next,
            } => {
                out.push(Action::StopRecording);
                self.state = State::Recording {
                    stopping: true,
                    hung_up,
                    next,
                };
            }
            State::LookingUp { .. } => {
                if let Some(Node::Lookup {
                    failed,
                    not_found,
                    not_found_prompts,
                    ..
                }) = flow.node(self.node)
                {
                    match failed {
                        Some(f) => self.enter(now, *f, out),
                        None => {
                            out.push(Action::Play(self.refs(not_found_prompts)));
                            self.state = State::Playing(After::Goto(*not_found));
                        }
                    }
                }
            }
            _ => {}
        }
    }

    /// A timeout (`no_input`) or a wrong key: replay with the matching prompt, or give up.
    fn failure(&mut self, now: Timestamp, no_input: bool, out: &mut Vec<Action>) {
        let flow = self.flow.clone();
        let Some(node) = flow.node(self.node) else {
            return;
        };
        let (Some(retry), Some(prompts)) = (retry_of(node), prompts_of(node)) else {
            return;
        };
        self.digits.clear();
        self.retries = self.retries.saturating_add(1);
        if self.retries > retry.max_retries {
            self.enter(now, retry.fallback, out);
            return;
        }
        let sorry = if no_input {
            &retry.no_input
        } else {
            &retry.invalid
        };
        let refs = self.input_refs(node, sorry, prompts);
        out.push(Action::Play(refs));
        self.state = State::Input { playing: true };
    }

    fn ticket_status(
        &mut self,
        now: Timestamp,
        keyed: &str,
        found: bool,
        status: Option<&str>,
        out: &mut Vec<Action>,
    ) {
        let flow = self.flow.clone();
        let Some(Node::Lookup {
            intro,
            status_intro,
            statuses,
            unknown_status,
            not_found_prompts,
            found: f,
            not_found,
            ..
        }) = flow.node(self.node)
        else {
            return;
        };
        if !found {
            let _ = now;
            out.push(Action::Play(self.refs(not_found_prompts)));
            self.state = State::Playing(After::Goto(*not_found));
            return;
        }
        let mut names: Vec<String> = intro.clone();
        names.extend(keyed.chars().map(|d| format!("digits/{d}")));
        match status.filter(|s| statuses.contains(*s)) {
            Some(s) => {
                names.extend(status_intro.iter().cloned());
                names.push(format!("status/{s}"));
            }
            None => names.extend(unknown_status.iter().cloned()),
        }
        out.push(Action::Play(self.refs(&names)));
        self.state = State::Playing(After::Goto(*f));
    }

    fn queue_outcome(&mut self, now: Timestamp, outcome: QueueOutcome, out: &mut Vec<Action>) {
        let flow = self.flow.clone();
        let Some(Node::Queue {
            fallback,
            voicemail,
            callback,
            overflow,
            ..
        }) = flow.node(self.node)
        else {
            return;
        };
        let target = match outcome {
            QueueOutcome::Answered => {
                self.state = State::Finished(Outcome::Answered);
                return;
            }
            QueueOutcome::OverflowToNode(name) => overflow.get(&name).copied(),
            QueueOutcome::Voicemail => *voicemail,
            QueueOutcome::CallbackRequested => *callback,
        };
        self.enter(now, target.unwrap_or(*fallback), out);
    }

    fn caller_hung_up(&mut self, out: &mut Vec<Action>) {
        self.cancel_timer(out);
        match self.state {
            State::Recording { stopping, next, .. } => {
                if !stopping {
                    out.push(Action::StopRecording);
                }
                // Wait for RecordingFinished: the message still becomes a ticket.
                self.state = State::Recording {
                    stopping: true,
                    hung_up: true,
                    next,
                };
            }
            _ => self.state = State::Finished(Outcome::CallerHungUp),
        }
    }

    // ---- helpers -----------------------------------------------------------------------------

    fn retry(&self) -> Option<&Retry> {
        self.flow.node(self.node).and_then(retry_of)
    }

    fn refs(&self, names: &[String]) -> Vec<PromptRef> {
        names
            .iter()
            .map(|name| PromptRef {
                name: name.clone(),
                lang: self.lang,
            })
            .collect()
    }

    /// A language node speaks each prompt once per language it offers, in key order
    /// (`zh/choose_language`, `en/choose_language`); other nodes speak the caller's language.
    fn input_refs(&self, node: &Node, sorry: &[String], prompts: &[String]) -> Vec<PromptRef> {
        let all = sorry.iter().chain(prompts);
        match node {
            Node::Language { choices, .. } => {
                let mut langs: Vec<Lang> = Vec::new();
                for l in choices.values() {
                    if !langs.contains(l) {
                        langs.push(*l);
                    }
                }
                all.flat_map(|name| {
                    langs.iter().map(move |&lang| PromptRef {
                        name: name.clone(),
                        lang,
                    })
                })
                .collect()
            }
            _ => all
                .map(|name| PromptRef {
                    name: name.clone(),
                    lang: self.lang,
                })
                .collect(),
        }
    }

    fn start_timer(&mut self, now: Timestamp, ms: u64, out: &mut Vec<Action>) {
        self.cancel_timer(out);
        self.next_timer = self.next_timer.wrapping_add(1);
        let id = TimerId(self.next_timer);
        let delay = SignedDuration::from_millis(i64::try_from(ms).unwrap_or(i64::MAX));
        let at = now.checked_add(delay).unwrap_or(Timestamp::MAX);
        self.timer = Some(id);
        out.push(Action::StartTimer { id, at });
    }

    fn cancel_timer(&mut self, out: &mut Vec<Action>) {
        if let Some(id) = self.timer.take() {
            out.push(Action::CancelTimer(id));
        }
    }
}

fn retry_of(node: &Node) -> Option<&Retry> {
    match node {
        Node::Menu { retry, .. } | Node::Collect { retry, .. } | Node::Language { retry, .. } => {
            Some(retry)
        }
        _ => None,
    }
}

fn prompts_of(node: &Node) -> Option<&[String]> {
    match node {
        Node::Menu { prompts, .. }
        | Node::Collect { prompts, .. }
        | Node::Language { prompts, .. } => Some(prompts),
        _ => None,
    }
}

/// The canonical ticket number for what the caller keyed: the 8-digit date and the serial of the
/// day (6 to 9 digits) become `<prefix>-<YYYYMMDD>-<serial>`; anything else names no ticket.
pub fn canonical_number(prefix: &str, keyed: &str) -> Option<String> {
    if !(14..=17).contains(&keyed.len()) || !keyed.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let (date, serial) = keyed.split_at(8);
    Some(format!("{prefix}-{date}-{serial}"))
}
