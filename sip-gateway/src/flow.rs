//! One call's IVR: runs the hotline's [`ivr::flow::Session`] and carries out its actions —
//! prompts to the media task, its one timer, the caller's message (voicemail), ticket look-ups
//! through [`CallServices`], queueing through [`Queues`] — and tells the call task when the
//! flow hangs up or transfers. What to do is the session's decision; this is the shell.

use std::collections::{HashMap, VecDeque};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use ivr::flow::{Action, Event, Lang, PromptRef, QueueOutcome, Session, TimerId};
use jiff::Timestamp;
use tokio::sync::{mpsc, oneshot};
use tracing::{info, warn};

use crate::agent_leg::{self, LegCommand, LegEvent};
use crate::events::{CallEvent, Message};
use crate::media::{MediaCommand, PeerFrame};
use crate::prompt::Prompt;
use crate::queues::QueueEvent;
use crate::recording::{self, RecordingSummary};
use crate::server::Shared;

/// Messages shorter than this are taken for a caller who hung up at the beep: no ticket.
const MIN_MESSAGE: Duration = Duration::from_secs(1);

/// What the call must do after the flow moved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Next {
    /// Nothing: the flow waits for the next event.
    Continue,
    /// The flow is over: hang up.
    HangUp,
    /// Transfer the caller to this number.
    Transfer(String),
    /// The agent the caller talked to hung up: end the call.
    AgentHungUp,
}

/// Something the flow waits for, other than media and signalling.
pub(crate) enum Input {
    /// The pending timer is due.
    Timer(TimerId),
    /// The answer of a ticket look-up.
    Lookup(Result<Option<String>, String>),
    /// The ACD about the queued call (None: the ACD is gone).
    Queue(Option<QueueEvent>),
    /// A leg to an agent's phone.
    Leg(LegEvent),
}

/// The IVR side of one call.
pub(crate) struct CallFlow {
    shared: Arc<Shared>,
    call_id: String,
    hotline: String,
    caller: Option<String>,
    media: mpsc::UnboundedSender<MediaCommand>,
    session: Session,
    next_play: u64,
    /// The play whose end the session waits for.
    flow_play: Option<u64>,
    /// The play of hold music or an announcement while queued.
    hold_play: Option<u64>,
    hold_music: Option<String>,
    timer: Option<(TimerId, tokio::time::Instant)>,
    lookup: Option<oneshot::Receiver<Result<Option<String>, String>>>,
    queue: Option<mpsc::UnboundedReceiver<QueueEvent>>,
    messages: u32,
    message: Option<RecordingSummary>,
    recording_message: bool,
    /// Agents being rung or talking, by agent.
    legs: HashMap<String, mpsc::UnboundedSender<LegCommand>>,
    leg_events: (
        mpsc::UnboundedSender<LegEvent>,
        mpsc::UnboundedReceiver<LegEvent>,
    ),
    /// The bridge ends of agents who answered, until the ACD says which one to connect.
    answered: HashMap<String, (mpsc::Sender<PeerFrame>, mpsc::Receiver<PeerFrame>)>,
    /// The agent the caller is talking to.
    bridged: Option<String>,
}

impl CallFlow {
    /// The flow of `hotline`; None when the hotline has none (the call then hears silence).
    pub fn new(
        shared: Arc<Shared>,
        call_id: &str,
        hotline: &str,
        caller: Option<String>,
        media: mpsc::UnboundedSender<MediaCommand>,
    ) -> Option<CallFlow> {
        let flow = shared.ivr.flows.get(hotline)?;
        let calendar = shared.ivr.calendar(hotline);
        let session = Session::new(flow, calendar);
        Some(CallFlow {
            shared,
            call_id: call_id.to_owned(),
            hotline: hotline.to_owned(),
            caller,
            media,
            session,
            next_play: 0,
            flow_play: None,
            hold_play: None,
            hold_music: None,
            timer: None,
            lookup: None,
            queue: None,
            messages: 0,
            message: None,
            recording_message: false,
            legs: HashMap::new(),
            leg_events: mpsc::unbounded_channel(),
            answered: HashMap::new(),
            bridged: None,
        })
    }

    /// The call is answered: the flow begins.
    pub fn start(&mut self) -> Next {
        let actions = self.session.start(Timestamp::now());
        self.run(actions)
    }

    /// Waits for the timer, a look-up or the queue; pending forever when none is running.
    /// Cancel-safe: nothing is lost when another branch of the call's `select!` wins.
    pub async fn next_input(&mut self) -> Input {
        let timer = self.timer;
        let (lookup, queue, legs) = (&mut self.lookup, &mut self.queue, &mut self.leg_events.1);
        tokio::select! {
            () = async {
                match timer {
                    Some((_, at)) => tokio::time::sleep_until(at).await,
                    None => std::future::pending().await,
                }
            } => Input::Timer(timer.map(|t| t.0).unwrap_or(TimerId(0))),
            r = async {
                match lookup.as_mut() {
                    Some(rx) => rx.await.unwrap_or_else(|_| Err("the look-up was dropped".into())),
                    None => std::future::pending().await,
                }
            } => Input::Lookup(r),
            e = async {
                match queue.as_mut() {
                    Some(rx) => rx.recv().await,
                    None => std::future::pending().await,
                }
            } => Input::Queue(e),
            Some(e) = legs.recv() => Input::Leg(e),
        }
    }

    /// Feeds what [`next_input`](Self::next_input) returned.
    pub fn on_input(&mut self, input: Input) -> Next {
        match input {
            Input::Timer(id) => {
                self.timer = None;
                self.feed(Event::TimerFired(id))
            }
            Input::Lookup(result) => {
                self.lookup = None;
                match result {
                    Ok(status) => self.feed(Event::TicketStatus {
                        found: status.is_some(),
                        status,
                    }),
                    Err(e) => {
                        warn!(call_id = %self.call_id, error = %e, "ticket look-up failed");
                        // The flow's own look-up timeout decides what the caller hears; it
                        // need not wait for it.
                        match self.timer.take() {
                            Some((id, _)) => self.feed(Event::TimerFired(id)),
                            None => Next::Continue,
                        }
                    }
                }
            }
            Input::Queue(None) => {
                self.queue = None;
                warn!(call_id = %self.call_id, "the ACD is gone; the caller leaves a message");
                self.leave_queue(QueueOutcome::Voicemail)
            }
            Input::Queue(Some(event)) => self.on_queue(event),
            Input::Leg(event) => self.on_leg(event),
        }
    }

    /// The trunk refused the transfer the flow asked for, or the new call failed.
    pub fn transfer_failed(&mut self) -> Next {
        self.feed(Event::TransferFailed)
    }

    /// A DTMF key.
    pub fn on_digit(&mut self, digit: char) -> Next {
        self.feed(Event::Digit(digit))
    }

    /// The media task finished (or stopped) play `id`.
    pub fn on_playback_finished(&mut self, id: u64, interrupted: bool) -> Next {
        if self.hold_play == Some(id) {
            self.hold_play = None;
            if !interrupted {
                self.play_hold_music();
            }
            return Next::Continue;
        }
        if self.flow_play == Some(id) && !interrupted {
            self.flow_play = None;
            return self.feed(Event::PromptFinished);
        }
        Next::Continue
    }

    /// The caller's message is on disk (or could not be recorded).
    pub fn on_message_finished(&mut self, result: Result<RecordingSummary, String>) -> Next {
        if !self.recording_message {
            return Next::Continue;
        }
        self.recording_message = false;
        let duration_ms = match result {
            Ok(summary) => {
                let ms = summary.duration.as_millis() as u64;
                self.message = Some(summary);
                ms
            }
            Err(e) => {
                warn!(call_id = %self.call_id, error = %e, "the caller's message could not be recorded");
                metrics::counter!("hotline_recording_failures_total").increment(1);
                self.message = None;
                0
            }
        };
        self.feed(Event::RecordingFinished { duration_ms })
    }

    /// The caller hung up (or the call ended otherwise): leaves the queue, stops the message.
    /// A message still being recorded is finished by the media task; pass it to
    /// [`on_message_finished`](Self::on_message_finished) afterwards.
    pub fn caller_hung_up(&mut self) {
        if self.queue.take().is_some() {
            self.shared.queues.left(&self.call_id);
        }
        for (_, leg) in self.legs.drain() {
            let _ = leg.send(LegCommand::End);
        }
        let actions = self.session.handle(Timestamp::now(), Event::CallerHungUp);
        let _ = self.run(actions);
    }

    /// The language the IVR speaks with the caller (`zh`, `en`): chosen, or the flow's default.
    /// The call's recording is transcribed in it.
    pub fn language(&self) -> &'static str {
        self.session.language().code()
    }

    /// Whether the caller's message is being recorded.
    pub fn is_recording_message(&self) -> bool {
        self.recording_message
    }

    fn feed(&mut self, event: Event) -> Next {
        let actions = self.session.handle(Timestamp::now(), event);
        self.run(actions)
    }

    /// Carries out the session's actions in order. A play whose prompts are all missing counts
    /// as played at once, after the rest of its batch.
    fn run(&mut self, actions: Vec<Action>) -> Next {
        let mut queue: VecDeque<Action> = actions.into();
        let mut next = Next::Continue;
        loop {
            let mut silent_play = false;
            while let Some(action) = queue.pop_front() {
                match action {
                    Action::Play(refs) => {
                        let prompts = self.prompts(&refs);
                        if prompts.is_empty() {
                            self.flow_play = None;
                            silent_play = true;
                        } else {
                            silent_play = false;
                            self.hold_play = None;
                            let id = self.play(prompts);
                            self.flow_play = Some(id);
                        }
                    }
                    Action::StopPlayback => {
                        self.flow_play = None;
                        silent_play = false;
                        let _ = self.media.send(MediaCommand::StopPlayback);
                    }
                    Action::StartTimer { id, at } => {
                        let wait = Duration::try_from(at.duration_since(Timestamp::now()))
                            .unwrap_or(Duration::ZERO);
                        self.timer = Some((id, tokio::time::Instant::now() + wait));
                    }
                    Action::CancelTimer(id) => {
                        if self.timer.is_some_and(|(t, _)| t == id) {
                            self.timer = None;
                        }
                    }
                    Action::StartRecording { max_seconds } => self.start_message(max_seconds),
                    Action::StopRecording => {
                        let _ = self.media.send(MediaCommand::StopMessage);
                    }
                    Action::LookUpTicket { number } => self.look_up(number),
                    Action::CreateVoicemailTicket => self.message_left(),
                    Action::Enqueue { queue } => {
                        info!(call_id = %self.call_id, %queue, "caller queued");
                        let rx = self.shared.queues.enqueue(
                            &self.call_id,
                            &self.hotline,
                            &queue,
                            self.session.language().code(),
                            self.caller.clone(),
                        );
                        self.queue = Some(rx);
                    }
                    Action::Transfer { number } => next = Next::Transfer(number),
                    Action::Hangup => next = Next::HangUp,
                }
            }
            if !silent_play {
                return next;
            }
            queue.extend(self.session.handle(Timestamp::now(), Event::PromptFinished));
        }
    }

    fn on_queue(&mut self, event: QueueEvent) -> Next {
        match event {
            QueueEvent::MusicOnHold(name) => {
                self.hold_music = Some(name);
                if self.hold_play.is_none() {
                    self.play_hold_music();
                }
                Next::Continue
            }
            QueueEvent::Announce {
                position,
                estimated_wait,
            } => {
                let names = announcement(position, estimated_wait);
                let refs: Vec<PromptRef> = names
                    .into_iter()
                    .map(|name| PromptRef {
                        name,
                        lang: self.session.language(),
                    })
                    .collect();
                let prompts = self.prompts(&refs);
                if !prompts.is_empty() {
                    let id = self.play(prompts);
                    self.hold_play = Some(id);
                }
                Next::Continue
            }
            QueueEvent::Outcome(outcome) => {
                self.queue = None;
                self.leave_queue(outcome)
            }
            QueueEvent::Ring { agent, contact } => {
                let leg = agent_leg::ring(
                    self.shared.clone(),
                    &self.call_id,
                    &agent,
                    &contact,
                    self.leg_events.0.clone(),
                );
                self.legs.insert(agent, leg);
                Next::Continue
            }
            QueueEvent::CancelRing { agent } => {
                self.answered.remove(&agent);
                if let Some(leg) = self.legs.remove(&agent) {
                    let _ = leg.send(LegCommand::End);
                }
                Next::Continue
            }
            QueueEvent::Bridge { agent } => {
                let Some((to_agent, from_agent)) = self.answered.remove(&agent) else {
                    warn!(call_id = %self.call_id, %agent, "bridge to an agent whose leg is gone");
                    self.shared.queues.agent_hung_up(&agent, &self.call_id);
                    return Next::AgentHungUp;
                };
                self.hold_music = None;
                if self.hold_play.take().is_some() {
                    let _ = self.media.send(MediaCommand::StopPlayback);
                }
                let _ = self.media.send(MediaCommand::Connect {
                    to_peer: to_agent,
                    from_peer: from_agent,
                });
                info!(call_id = %self.call_id, %agent, "caller talks to the agent");
                self.bridged = Some(agent);
                // The queue's receiver stays: the ACD must hear when the caller hangs up.
                self.feed(Event::QueueOutcome(QueueOutcome::Answered))
            }
        }
    }

    fn on_leg(&mut self, event: LegEvent) -> Next {
        match event {
            LegEvent::Answered {
                agent,
                to_agent,
                from_agent,
            } => {
                if self.legs.contains_key(&agent) {
                    self.answered.insert(agent.clone(), (to_agent, from_agent));
                    self.shared.queues.agent_answered(&agent, &self.call_id);
                }
                Next::Continue
            }
            LegEvent::Failed { agent, why } => {
                if self.legs.remove(&agent).is_some() {
                    info!(call_id = %self.call_id, %agent, why, "agent did not answer");
                    self.shared.queues.agent_no_answer(&agent, &self.call_id);
                }
                Next::Continue
            }
            LegEvent::Ended { agent, by_agent } => {
                self.answered.remove(&agent);
                let ours = self.legs.remove(&agent).is_some();
                if self.bridged.as_deref() == Some(agent.as_str()) {
                    self.bridged = None;
                    self.shared.queues.agent_hung_up(&agent, &self.call_id);
                    if by_agent {
                        return Next::AgentHungUp;
                    }
                } else if ours {
                    // Answered, then gone before the ACD connected it.
                    self.shared.queues.agent_no_answer(&agent, &self.call_id);
                }
                Next::Continue
            }
        }
    }

    fn leave_queue(&mut self, outcome: QueueOutcome) -> Next {
        self.hold_music = None;
        if self.hold_play.take().is_some() {
            let _ = self.media.send(MediaCommand::StopPlayback);
        }
        info!(call_id = %self.call_id, outcome = ?outcome, "caller leaves the queue");
        self.feed(Event::QueueOutcome(outcome))
    }

    fn play_hold_music(&mut self) {
        let Some(name) = self.hold_music.clone() else {
            return;
        };
        let prompts = self.prompts(&[PromptRef {
            name,
            lang: self.session.language(),
        }]);
        if !prompts.is_empty() {
            let id = self.play(prompts);
            self.hold_play = Some(id);
        }
    }

    fn play(&mut self, prompts: Vec<Arc<Prompt>>) -> u64 {
        self.next_play += 1;
        let id = self.next_play;
        let _ = self.media.send(MediaCommand::Play { id, prompts });
        id
    }

    /// The prompt files: `prompts/<lang>/<name>.wav`, else the Chinese one; a missing file is
    /// logged once and skipped.
    fn prompts(&self, refs: &[PromptRef]) -> Vec<Arc<Prompt>> {
        refs.iter()
            .filter_map(|r| {
                let path = self.shared.prompt_path(r.lang, &r.name);
                match self.shared.prompts.get(&path) {
                    Ok(p) => Some(p),
                    Err(e) if r.lang != Lang::Zh => {
                        let fallback = self.shared.prompt_path(Lang::Zh, &r.name);
                        self.shared.prompts.get(&fallback).ok().or_else(|| {
                            self.shared.warn_once(&path, &e.to_string());
                            None
                        })
                    }
                    Err(e) => {
                        self.shared.warn_once(&path, &e.to_string());
                        None
                    }
                }
            })
            .collect()
    }

    fn start_message(&mut self, max_seconds: u64) {
        self.messages += 1;
        let today = Timestamp::now()
            .to_zoned(self.shared.timezone.clone())
            .date();
        let path: PathBuf = recording::recording_path(
            &self.shared.data_dir.join("messages"),
            (today.year(), today.month(), today.day()),
            &format!("{}-{}", self.call_id, self.messages),
        );
        info!(call_id = %self.call_id, path = %path.display(), "recording the caller's message");
        self.recording_message = true;
        self.message = None;
        let _ = self.media.send(MediaCommand::StartMessage {
            path,
            max: Duration::from_secs(max_seconds),
            silence: self.shared.settings.message_silence,
        });
    }

    fn message_left(&mut self) {
        let Some(summary) = self.message.take() else {
            return;
        };
        if summary.duration < MIN_MESSAGE {
            info!(call_id = %self.call_id, ms = summary.duration.as_millis() as u64, "message too short to keep");
            let _ = std::fs::remove_file(&summary.path);
            return;
        }
        let recording = summary
            .path
            .strip_prefix(&self.shared.data_dir)
            .unwrap_or(&summary.path)
            .to_string_lossy()
            .into_owned();
        info!(call_id = %self.call_id, %recording, "the caller left a message");
        metrics::counter!("hotline_messages_total").increment(1);
        let _ = self.shared.events.send(CallEvent::Message(Message {
            call_id: self.call_id.clone(),
            hotline: self.hotline.clone(),
            from_number: self.caller.clone(),
            recording,
            duration_ms: summary.duration.as_millis() as u64,
            language: self.session.language().code(),
            at: Timestamp::now(),
        }));
    }

    fn look_up(&mut self, number: String) {
        let services = self.shared.ivr.services.clone();
        let (tx, rx) = oneshot::channel();
        tokio::spawn(async move {
            let _ = tx.send(services.ticket_status(&number).await);
        });
        self.lookup = Some(rx);
    }
}

/// The prompt names of a queue announcement: callers ahead, then the estimated wait in whole
/// minutes (rounded up) when there is one.
pub(crate) fn announcement(position: usize, estimated_wait: Option<Duration>) -> Vec<String> {
    let mut names = Vec::new();
    let ahead = position.saturating_sub(1);
    if ahead > 0 {
        names.push("queue_ahead".to_owned());
        names.extend(number_prompts(ahead as u64));
        names.push("queue_callers".to_owned());
    } else {
        names.push("all_busy".to_owned());
    }
    if let Some(wait) = estimated_wait {
        let minutes = wait.as_secs().div_ceil(60).max(1);
        names.push("queue_wait".to_owned());
        names.extend(number_prompts(minutes));
        names.push("minutes".to_owned());
    }
    names
}

/// A number spoken digit by digit (`digits/1`, `digits/2` for 12), as ticket numbers are.
fn number_prompts(n: u64) -> impl Iterator<Item = String> {
    n.to_string()
        .chars()
        .map(|d| format!("digits/{d}"))
        .collect::<Vec<_>>()
        .into_iter()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn announcements_say_who_is_ahead_and_how_long() {
        assert_eq!(
            announcement(3, Some(Duration::from_secs(130))),
            [
                "queue_ahead",
                "digits/2",
                "queue_callers",
                "queue_wait",
                "digits/3",
                "minutes"
            ]
        );
        assert_eq!(
            announcement(12, None),
            ["queue_ahead", "digits/1", "digits/1", "queue_callers"]
        );
        // Next in line: no "0 callers ahead of you".
        assert_eq!(
            announcement(1, Some(Duration::from_secs(5))),
            ["all_busy", "queue_wait", "digits/1", "minutes"]
        );
    }
}
