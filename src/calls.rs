//! Turns the SIP gateway's call events into call detail records, messages left in the IVR into
//! phone tickets, and callback requests into tasks; answers the IVR's ticket look-ups; and
//! tidies up after a crash: calls this node left open are closed and their recordings' headers
//! repaired, so every file opens and plays up to its last second.

use std::path::Path;

use jiff::Timestamp;
use sip_gateway::{CallEvent, EndedBy, Message};
use ticketing::calls::{self, CallEnd, NewCall};
use ticketing::model::{Attachment, AttachmentKind, PhoneNumber, Reporter};
use ticketing::transcripts::{JobKind, NewTranscriptionJob};
use ticketing::{Actor, Channel, NewTicket, Role, Store, TicketNumber, Tickets};
use tokio::sync::mpsc;

use crate::transcription::worker::Queue;

/// This node's name in call records: `HOTLINE_NODE`, else the host name.
pub fn node_name() -> String {
    std::env::var("HOTLINE_NODE")
        .ok()
        .filter(|n| !n.is_empty())
        .or_else(|| {
            std::fs::read_to_string("/proc/sys/kernel/hostname")
                .ok()
                .map(|h| h.trim().to_string())
        })
        .filter(|n| !n.is_empty())
        .unwrap_or_else(|| "local".into())
}

/// Closes the calls this node left running and repairs the recordings of the last three days.
/// Days are counted in the calendar's time zone, as the gateway files recordings by it.
pub async fn recover(
    store: &Store,
    data_dir: &Path,
    node: &str,
    timezone: &jiff::tz::TimeZone,
) -> anyhow::Result<()> {
    let closed = store
        .close_interrupted_calls(Timestamp::now(), Some(node))
        .await?;
    if closed > 0 {
        tracing::warn!(
            closed,
            "closed calls left open by an earlier run of this node"
        );
    }
    let root = data_dir.join("recordings");
    let today = Timestamp::now().to_zoned(timezone.clone()).date();
    let days: Vec<_> = (0..3)
        .filter_map(|d| today.checked_sub(jiff::Span::new().days(d)).ok())
        .map(|d| root.join(format!("{:04}/{:02}/{:02}", d.year(), d.month(), d.day())))
        .collect();
    let repaired = tokio::task::spawn_blocking(move || {
        let mut changed = 0usize;
        for day in days {
            for (path, result) in sip_gateway::recording::repair_all(&day) {
                match result {
                    Ok(r) if r.changed => {
                        changed += 1;
                        tracing::info!(path = %path.display(), seconds = r.duration.as_secs_f64(), "recording repaired after a crash");
                    }
                    Ok(_) => {}
                    Err(e) => tracing::warn!(path = %path.display(), error = %e, "recording cannot be repaired"),
                }
            }
        }
        changed
    })
    .await?;
    if repaired > 0 {
        tracing::warn!(repaired, "recordings repaired");
    }
    Ok(())
}

/// The IVR as it appears in ticket trails: the system, acting for the caller.
fn ivr_actor() -> Actor {
    Actor {
        id: 0,
        name: "IVR".into(),
        role: Role::Agent,
        department: None,
    }
}

/// Ticket status for the IVR's look-up node.
pub struct TicketStatus {
    /// The store to read.
    pub store: Store,
}

#[async_trait::async_trait]
impl sip_gateway::CallServices for TicketStatus {
    async fn ticket_status(&self, number: &str) -> Result<Option<String>, String> {
        let Ok(number) = TicketNumber::parse(number) else {
            return Ok(None);
        };
        match self.store.ticket(&number).await {
            Ok(t) => Ok(t.map(|t| t.work.status.as_str().to_owned())),
            Err(e) => Err(e.to_string()),
        }
    }
}

/// A message left in the IVR becomes a phone ticket (受理) with the recording attached, linked
/// to its call. Its content says it is a message until the transcript fills it in.
async fn open_message_ticket(tickets: &Tickets, m: &Message) -> anyhow::Result<(String, i64)> {
    let seconds = m.duration_ms.div_ceil(1000);
    let phone = m
        .from_number
        .as_deref()
        .and_then(|n| PhoneNumber::parse(n).ok());
    // The number stays in the reporter (masked for departments), never in the content.
    let new = NewTicket {
        hotline: Some(m.hotline.clone()),
        channel: Some(Channel::Phone),
        reporter: Reporter {
            phone,
            ..Reporter::default()
        },
        // The transcript replaces this placeholder once it is ready (ticketing::transcripts).
        content: ticketing::transcripts::voicemail_placeholder(seconds, m.language == "en"),
        attachments: vec![Attachment {
            kind: AttachmentKind::Recording,
            uri: m.recording.clone(),
            content_type: Some("audio/wav".into()),
            note: Some(format!("留言录音，{seconds} 秒")),
        }],
        ..NewTicket::default()
    };
    let ticket = tickets.intake(new, &ivr_actor(), m.at).await?;
    tickets
        .store()
        .link_call_ticket(&m.call_id, ticket.id)
        .await?;
    Ok((ticket.number.to_string(), ticket.id))
}

/// Queues an ended call's recording for transcription — unless the call left a voicemail whose
/// job is queued: the recording holds the IVR's prompts and the message again, and the message's
/// transcript answers for the call. A call bridged to an agent ends when either side hangs up,
/// so a caller who left a voicemail talked to no agent — unless a flow sends callers from a
/// message on to a queue: call records do not say who talked to an agent, and such a flow's
/// conversations would go untranscribed. A failure is logged, not returned: the call record is
/// written, and the start-up backfill queues what was missed.
async fn queue_call_recording(
    store: &Store,
    queue: &Queue,
    call_id: &str,
    recording_bytes: Option<u64>,
) {
    // A bare WAV header: answered and hung up at once.
    if recording_bytes.is_some_and(|b| b <= 44) {
        return;
    }
    let call = match store.get_call_by_call_id(call_id).await {
        Ok(Some(call)) => call,
        Ok(None) => return,
        Err(e) => {
            tracing::warn!(%call_id, error = %e, "cannot read the call to queue its transcription");
            return;
        }
    };
    let Some(path) = call.recording_path else {
        return;
    };
    match store.transcription_job_for_call(call.id).await {
        Ok(Some(job)) if job.kind == JobKind::Message => {
            tracing::debug!(%call_id, job = job.id, "voicemail only: its message is transcribed, not the call");
            return;
        }
        Ok(_) => {}
        // Queued all the same: a recording transcribed twice costs less than one never.
        Err(e) => {
            tracing::warn!(%call_id, error = %e, "cannot read the call's voicemail job");
        }
    }
    let job = NewTranscriptionJob {
        call_id: Some(call.id),
        ticket_id: None,
        kind: JobKind::Call,
        recording_path: path,
        // The IVR's language: a caller who chose English talks English with the agent too.
        language: call.language,
    };
    if let Err(e) = queue.enqueue(&job).await {
        tracing::warn!(%call_id, error = %e, "cannot queue the call's transcription");
    }
}

/// Queues a voicemail for transcription in the language the caller chose; its transcript then
/// becomes the ticket's content.
async fn queue_message(store: &Store, queue: &Queue, m: &Message, ticket_id: i64) {
    let call = store.get_call_by_call_id(&m.call_id).await.ok().flatten();
    let job = NewTranscriptionJob {
        call_id: call.map(|c| c.id),
        ticket_id: Some(ticket_id),
        kind: JobKind::Message,
        recording_path: m.recording.clone(),
        language: Some(m.language.to_owned()),
    };
    if let Err(e) = queue.enqueue(&job).await {
        tracing::error!(call_id = %m.call_id, error = %e, "cannot queue the voicemail's transcription");
    }
}

/// Writes call events as they come until the gateway drops its sender. With `transcription`,
/// each finished recording and each voicemail is queued to be transcribed.
pub async fn write_records(
    tickets: Tickets,
    mut events: mpsc::UnboundedReceiver<CallEvent>,
    node: String,
    transcription: Option<Queue>,
) {
    let store = tickets.store().clone();
    while let Some(event) = events.recv().await {
        let result = match &event {
            CallEvent::Started(s) => store
                .call_started(&NewCall {
                    call_id: s.call_id.clone(),
                    hotline: s.hotline.clone(),
                    from_number: Some(s.from_number.clone()).filter(|n| !n.is_empty()),
                    from_uri: Some(s.from_uri.clone()).filter(|n| !n.is_empty()),
                    to_number: Some(s.to_number.clone()).filter(|n| !n.is_empty()),
                    source: Some(s.source.clone()).filter(|n| !n.is_empty()),
                    trunk: s.trunk.clone(),
                    started_at: s.at,
                    node: Some(node.clone()),
                })
                .await
                .map(|_| ()),
            CallEvent::Answered {
                call_id,
                at,
                recording,
            } => store
                .call_answered(call_id, *at, recording.as_deref())
                .await
                .map(|_| ()),
            CallEvent::Ended {
                call_id,
                at,
                ended_by,
                code,
                reason,
                language,
                recording_bytes,
                ..
            } => {
                let end = CallEnd {
                    at: *at,
                    ended_by: match ended_by {
                        EndedBy::Caller => calls::EndedBy::Caller,
                        EndedBy::Hotline => calls::EndedBy::Hotline,
                        EndedBy::System => calls::EndedBy::System,
                    },
                    code: *code,
                    reason: reason.clone(),
                    language: language.map(str::to_owned),
                };
                match store.call_ended(call_id, &end, *recording_bytes).await {
                    Ok(true) => {
                        if let Some(queue) = &transcription {
                            queue_call_recording(&store, queue, call_id, *recording_bytes).await;
                        }
                        Ok(())
                    }
                    Ok(false) => Ok(()),
                    Err(e) => Err(e),
                }
            }
            CallEvent::Digit { .. } => Ok(()),
            CallEvent::Message(m) => {
                match open_message_ticket(&tickets, m).await {
                    Ok((number, ticket_id)) => {
                        tracing::info!(call_id = %m.call_id, ticket = %number, "message left in the IVR is a ticket");
                        if let Some(queue) = &transcription {
                            queue_message(&store, queue, m, ticket_id).await;
                        }
                    }
                    Err(e) => {
                        tracing::error!(call_id = %m.call_id, recording = %m.recording, error = %e, "the message could not be made a ticket; the recording is kept");
                        metrics::counter!("hotline_message_ticket_failures_total").increment(1);
                    }
                }
                Ok(())
            }
            CallEvent::CallbackRequested { hotline, task } => store
                .create_callback(hotline, task)
                .await
                .map(|id| tracing::info!(callback = id, call_id = %task.call, "callback task stored")),
        };
        if let Err(e) = result {
            tracing::error!(error = %e, ?event, "writing the call record failed");
            metrics::counter!("hotline_cdr_write_failures_total").increment(1);
        }
    }
}
