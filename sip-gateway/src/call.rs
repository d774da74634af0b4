//! One answered-or-answering call: rings, answers with the SDP answer, starts media and the
//! recording, runs the hotline's IVR flow ([`crate::flow`]), follows the dialog
//! (re-INVITE/UPDATE for hold and codec changes, INFO digits, OPTIONS, BYE), transfers by
//! REFER when the flow says so, enforces the no-RTP, session-timer and maximum-length limits,
//! and reports its end. The dialog and transaction work is rsipstack's; the decisions are in
//! the sans-IO modules this task calls.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use jiff::Timestamp;
use rsipstack::dialog::dialog::{
    DialogState, DialogStateReceiver, TerminatedReason, TransactionHandle,
};
use rsipstack::dialog::invite_dialog::InviteDialog;
use rsipstack::sip::{HasHeaders, Header, Method, Request, StatusCode};
use tokio::sync::mpsc;
use tracing::{debug, info, warn};

use crate::dtmf;
use crate::events::{CallEvent, EndedBy};
use crate::flow::{CallFlow, Next};
use crate::media::{self, MediaCommand, MediaCore, MediaEvent, MediaParams, MediaSetup};
use crate::ports::PortPair;
use crate::recording::{self, CallRecorder};
use crate::sdp::{self, Direction, Negotiated, SessionDescription};
use crate::server::{Shared, warning};
use crate::session_timer::{SessionTimer, TimerAction};

/// Everything a new call starts with once the INVITE passed the checks.
pub(crate) struct CallSetup {
    pub shared: Arc<Shared>,
    pub dialog: InviteDialog,
    pub states: DialogStateReceiver,
    pub call_id: String,
    pub hotline: String,
    /// The caller's offer; None for a delayed offer (INVITE without SDP).
    pub offer: Option<(SessionDescription, Negotiated)>,
    pub timer: Option<SessionTimer>,
    pub ports: PortPair,
    /// The caller's number (From user part), if any.
    pub caller: Option<String>,
    /// Where the INVITE came from: a transfer's REFER names a target there.
    pub peer: Option<SocketAddr>,
}

/// How the call ended, for the call record.
struct End {
    by: EndedBy,
    code: u16,
    reason: String,
    /// The language the IVR spoke with the caller, once there was an IVR.
    language: Option<&'static str>,
}

impl End {
    fn new(by: EndedBy, code: u16, reason: impl Into<String>) -> End {
        End {
            by,
            code,
            reason: reason.into(),
            language: None,
        }
    }
}

/// Our SDP session: the id stays, the version goes up with each new description we send.
struct LocalSdp {
    ip: IpAddr,
    port: u16,
    id: u64,
    version: u64,
}

/// Runs the call to its end and reports it.
pub(crate) async fn run(setup: CallSetup) {
    let CallSetup {
        shared,
        dialog,
        mut states,
        call_id,
        hotline,
        offer,
        mut timer,
        ports,
        caller,
        peer,
    } = setup;
    let settings = &shared.settings;
    let mut local = LocalSdp {
        ip: shared.media_ip,
        port: ports.port(),
        id: rand::random::<u32>() as u64,
        version: 1,
    };

    // 180, then answer after the configured delay unless the caller cancels first.
    if let Err(e) = dialog.ringing(None, None) {
        warn!(%call_id, error = %e, "sending 180 failed");
    }
    if !settings.answer_delay.is_zero() {
        let wait = tokio::time::sleep(settings.answer_delay);
        tokio::pin!(wait);
        loop {
            tokio::select! {
                () = &mut wait => break,
                state = states.recv() => match state {
                    Some(DialogState::Terminated(_, reason)) => {
                        let end = terminated(&reason);
                        finish(&shared, &call_id, end, None);
                        return;
                    }
                    Some(_) => {}
                    None => {
                        finish(&shared, &call_id, End::new(EndedBy::System, 500, "dialog vanished"), None);
                        return;
                    }
                },
            }
        }
    }

    // The answer (or our offer, for a delayed offer).
    let (body, params, awaiting_answer) = match &offer {
        Some((sd, neg)) => (
            sdp::build_answer(sd, neg, local.ip, local.port, local.id, local.version),
            media_params(neg),
            false,
        ),
        None => (
            sdp::build_offer(
                local.ip,
                local.port,
                &settings.codecs,
                Some(101),
                local.id,
                local.version,
                Direction::SendRecv,
            ),
            MediaParams {
                remote_rtp: None,
                remote_rtcp: None,
                codec: settings.codecs[0],
                payload_type: settings.codecs[0].payload_type(),
                telephone_event: Some(101),
                send: false,
                receive: true,
            },
            true,
        ),
    };
    let mut headers = answer_headers();
    headers.push(sdp_type());
    if let Some(t) = &timer {
        for (name, value) in t.response_headers() {
            headers.push(Header::Other(name.into(), value));
        }
    }
    if let Err(e) = dialog.accept(Some(headers), Some(body.into_bytes())) {
        warn!(%call_id, error = %e, "sending 200 OK failed");
        finish(
            &shared,
            &call_id,
            End::new(EndedBy::System, 500, "could not answer"),
            None,
        );
        return;
    }
    let answered = Instant::now();
    info!(%call_id, %hotline, "call answered");

    // Recording and media.
    let (recorder, recording_rel) = open_recorder(&shared, &call_id);
    let _ = shared.events.send(CallEvent::Answered {
        call_id: call_id.clone(),
        at: Timestamp::now(),
        recording: recording_rel.clone(),
    });
    let PortPair { rtp, rtcp, lease } = ports;
    let sockets = (
        tokio::net::UdpSocket::from_std(rtp),
        tokio::net::UdpSocket::from_std(rtcp),
    );
    let (rtp, rtcp) = match sockets {
        (Ok(a), Ok(b)) => (a, b),
        _ => {
            let _ = dialog
                .bye_with_reason("SIP;cause=500;text=\"media setup failed\"".into())
                .await;
            finish(
                &shared,
                &call_id,
                End::new(EndedBy::System, 500, "media sockets failed"),
                None,
            );
            return;
        }
    };
    let mut core = MediaCore::new(
        params.clone(),
        settings.jitter_frames,
        settings.no_rtp,
        rand::random(),
        (rand::random(), rand::random()),
        Instant::now(),
    );
    // The flow decides which prompts a key interrupts.
    core.set_barge_in(false);
    let (cmd_tx, cmd_rx) = mpsc::unbounded_channel();
    let (ev_tx, mut media_events) = mpsc::unbounded_channel();
    let media_task = tokio::spawn(media::run(
        MediaSetup {
            rtp,
            rtcp,
            core,
            recorder,
        },
        cmd_rx,
        ev_tx,
    ));
    let mut flow = CallFlow::new(shared.clone(), &call_id, &hotline, caller, cmd_tx.clone());
    if flow.is_none() {
        warn!(%call_id, %hotline, "no IVR flow for this hotline: the call is answered in silence");
    }
    let mut next = flow.as_mut().map_or(Next::Continue, CallFlow::start);

    let mut ctl = Control {
        shared: shared.clone(),
        dialog: dialog.clone(),
        call_id: call_id.clone(),
        media: cmd_tx,
        params,
        awaiting_answer,
    };
    let max_end = tokio::time::Instant::from_std(answered + settings.max_call);
    let mut transfer: Option<Transfer> = None;
    let mut end = loop {
        match std::mem::replace(&mut next, Next::Continue) {
            Next::Continue => {}
            Next::HangUp => {
                ctl.hang_up(200, "call completed").await;
                break End::new(EndedBy::Hotline, 200, "the IVR ended the call");
            }
            Next::AgentHungUp => {
                ctl.hang_up(200, "agent hung up").await;
                break End::new(EndedBy::Hotline, 200, "the agent hung up");
            }
            Next::Transfer(number) => match ctl.transfer(&number, peer).await {
                Ok(()) => {
                    transfer = Some(Transfer {
                        number,
                        deadline: tokio::time::Instant::now() + TRANSFER_TIMEOUT,
                    });
                }
                Err(why) => {
                    warn!(%call_id, %number, why, "transfer refused");
                    if let Some(f) = flow.as_mut() {
                        next = f.transfer_failed();
                        continue;
                    }
                    ctl.hang_up(480, "transfer failed").await;
                    break End::new(
                        EndedBy::Hotline,
                        480,
                        format!("transfer to {number} failed: {why}"),
                    );
                }
            },
        }
        let transfer_deadline = transfer.as_ref().map(|t| t.deadline);
        let transfer_sleep = async {
            match transfer_deadline {
                Some(at) => tokio::time::sleep_until(at).await,
                None => std::future::pending().await,
            }
        };
        let flow_input = async {
            match flow.as_mut() {
                Some(f) => f.next_input().await,
                None => std::future::pending().await,
            }
        };
        let timer_deadline = timer.as_ref().map(|t| t.deadline());
        let timer_sleep = async {
            match timer_deadline {
                Some((at, _)) => tokio::time::sleep_until(tokio::time::Instant::from_std(at)).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            state = states.recv() => match state {
                None => break End::new(EndedBy::System, 500, "dialog vanished"),
                Some(DialogState::Terminated(_, reason)) => break terminated(&reason),
                Some(DialogState::Confirmed(..)) => ctl.on_ack().await,
                Some(DialogState::Updated(_, req, handle)) => {
                    if ctl.on_offer(&req, handle, &mut local, timer.as_ref()).await
                        && let Some(t) = timer.as_mut()
                    {
                        t.refreshed(Instant::now(), session_interval(&req));
                    }
                }
                Some(DialogState::Info(_, req, handle)) => {
                    if let Some(d) = ctl.on_info(&req, handle).await
                        && let Some(f) = flow.as_mut()
                    {
                        next = f.on_digit(d.as_char());
                    }
                }
                Some(DialogState::Options(_, _, handle)) => {
                    let _ = handle.respond(StatusCode::OK, Some(answer_headers()), None).await;
                }
                Some(DialogState::Notify(_, req, handle)) if transfer.is_some() => {
                    let _ = handle.respond(StatusCode::OK, None, None).await;
                    // `respond` hands the 200 to the NOTIFY's transaction task; give it the
                    // moment it needs to leave before a BYE overtakes it.
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    if let Some(code) = sipfrag_status(req.body()) && code >= 200 {
                        let number = transfer.take().map(|t| t.number).unwrap_or_default();
                        if (200..300).contains(&code) {
                            ctl.hang_up(200, "transferred").await;
                            break End::new(EndedBy::Hotline, 200, format!("transferred to {number}"));
                        }
                        warn!(%call_id, %number, code, "the transferred call failed");
                        if let Some(f) = flow.as_mut() {
                            next = f.transfer_failed();
                            continue;
                        }
                        ctl.hang_up(480, "transfer failed").await;
                        break End::new(EndedBy::Hotline, 480, format!("transfer to {number} failed with {code}"));
                    }
                }
                Some(DialogState::Message(_, _, handle))
                | Some(DialogState::Notify(_, _, handle))
                | Some(DialogState::Refer(_, _, handle))
                | Some(DialogState::Publish(_, _, handle)) => {
                    let _ = handle.respond(StatusCode::MethodNotAllowed, Some(answer_headers()), None).await;
                }
                Some(other) => debug!(%call_id, state = %other, "dialog state"),
            },
            input = flow_input => {
                if let Some(f) = flow.as_mut() {
                    next = f.on_input(input);
                }
            }
            () = transfer_sleep => {
                let number = transfer.take().map(|t| t.number).unwrap_or_default();
                warn!(%call_id, %number, "no outcome of the transfer");
                if let Some(f) = flow.as_mut() {
                    next = f.transfer_failed();
                    continue;
                }
                ctl.hang_up(408, "transfer timed out").await;
                break End::new(EndedBy::Hotline, 408, format!("transfer to {number}: no result"));
            }
            event = media_events.recv() => match event {
                Some(MediaEvent::Digit(d)) => {
                    ctl.digit(d, "rfc4733");
                    if let Some(f) = flow.as_mut() {
                        next = f.on_digit(d.as_char());
                    }
                }
                Some(MediaEvent::NoRtp) => {
                    let secs = settings.no_rtp.map(|d| d.as_secs()).unwrap_or(0);
                    ctl.hang_up(408, "RTP timeout").await;
                    break End::new(EndedBy::System, 408, format!("no RTP for {secs} s"));
                }
                Some(MediaEvent::RecordingFailed(e)) => {
                    warn!(%call_id, error = %e, "recording failed; the call goes on unrecorded");
                    metrics::counter!("hotline_recording_failures_total").increment(1);
                }
                Some(MediaEvent::PlaybackFinished { id, interrupted }) => {
                    if let Some(f) = flow.as_mut() {
                        next = f.on_playback_finished(id, interrupted);
                    }
                }
                Some(MediaEvent::MessageFinished(result)) => {
                    if let Some(f) = flow.as_mut() {
                        next = f.on_message_finished(result);
                    }
                }
                None => break End::new(EndedBy::System, 500, "media ended"),
            },
            () = timer_sleep => {
                match timer_deadline.map(|(_, a)| a) {
                    Some(TimerAction::Expire) => {
                        ctl.hang_up(408, "session timer expired").await;
                        break End::new(EndedBy::System, 408, "session timer expired (no refresh)");
                    }
                    _ => {
                        ctl.refresh().await;
                        if let Some(t) = timer.as_mut() {
                            t.refreshed(Instant::now(), None);
                        }
                    }
                }
            }
            () = tokio::time::sleep_until(max_end) => {
                ctl.hang_up(200, "maximum call length").await;
                break End::new(EndedBy::Hotline, 200, "maximum call length reached");
            }
            () = shared.cancel.cancelled() => {
                ctl.hang_up(503, "service shutting down").await;
                break End::new(EndedBy::System, 503, "service shutting down");
            }
        }
    };

    if let Some(f) = flow.as_mut() {
        f.caller_hung_up();
        end.language = Some(f.language());
    }
    let _ = ctl.media.send(MediaCommand::Stop);
    let mut summary = media_task.await.unwrap_or_default();
    // A message that ended just before the call did, or that the end of the call ended, is
    // still left (a caller who hangs up after speaking has left a message).
    if let Some(f) = flow.as_mut() {
        while let Ok(event) = media_events.try_recv() {
            if let MediaEvent::MessageFinished(result) = event {
                let _ = f.on_message_finished(result);
            }
        }
        if let Some(result) = summary.message.take() {
            let _ = f.on_message_finished(result);
        }
        if f.is_recording_message() {
            // Finished by a blocking task that had not reported yet: wait for it briefly.
            if let Ok(Some(MediaEvent::MessageFinished(result))) =
                tokio::time::timeout(Duration::from_secs(2), media_events.recv()).await
            {
                let _ = f.on_message_finished(result);
            }
        }
    }
    drop(lease);
    metrics::counter!("hotline_rtp_packets_lost_total").increment(summary.lost);
    metrics::counter!("hotline_rtp_packets_received_total").increment(summary.received);
    finish(
        &shared,
        &call_id,
        end,
        summary
            .recording
            .as_ref()
            .map(|r| (r.bytes, r.duration.as_millis() as u64)),
    );
}

/// What the call loop needs to answer in-dialog requests.
struct Control {
    shared: Arc<Shared>,
    dialog: InviteDialog,
    call_id: String,
    media: mpsc::UnboundedSender<MediaCommand>,
    params: MediaParams,
    /// We sent an offer (delayed-offer INVITE or re-INVITE without SDP); the answer comes in ACK.
    awaiting_answer: bool,
}

impl Control {
    /// ACK arrived; with a delayed offer it carries the caller's answer.
    async fn on_ack(&mut self) {
        if !self.awaiting_answer {
            return;
        }
        self.awaiting_answer = false;
        let Some(ack) = self.dialog.last_remote_ack() else {
            return;
        };
        let text = String::from_utf8_lossy(ack.body());
        let negotiated = SessionDescription::parse(&text)
            .map_err(|e| e.to_string())
            .and_then(|sd| {
                sdp::negotiate(&sd, &self.shared.settings.codecs).map_err(|e| e.to_string())
            });
        match negotiated {
            Ok(neg) => self.apply(media_params(&neg)),
            Err(e) => {
                warn!(call_id = %self.call_id, error = %e, "the answer in the ACK is unusable; hanging up");
                self.hang_up(488, "unusable SDP answer in ACK").await;
            }
        }
    }

    /// re-INVITE or UPDATE: hold/unhold, codec or address change, or a session refresh.
    /// Returns whether it was answered 2xx (a refresh).
    async fn on_offer(
        &mut self,
        req: &Request,
        handle: TransactionHandle,
        local: &mut LocalSdp,
        timer: Option<&SessionTimer>,
    ) -> bool {
        let mut headers = answer_headers();
        if let Some(t) = timer {
            let mut t = t.clone();
            if let Some(i) = session_interval(req) {
                t.refreshed(Instant::now(), Some(i));
            }
            for (name, value) in t.response_headers() {
                headers.push(Header::Other(name.into(), value));
            }
        }
        if req.body().is_empty() {
            if req.method == Method::Invite {
                // No offer: we offer what we use now; the answer comes in the ACK.
                local.version += 1;
                let body = sdp::build_offer(
                    local.ip,
                    local.port,
                    &[self.params.codec],
                    self.params.telephone_event,
                    local.id,
                    local.version,
                    Direction::SendRecv,
                );
                self.awaiting_answer = true;
                headers.push(sdp_type());
                return handle
                    .respond(StatusCode::OK, Some(headers), Some(body.into_bytes()))
                    .await
                    .is_ok();
            }
            // UPDATE without a body: a pure session refresh.
            return handle
                .respond(StatusCode::OK, Some(headers), None)
                .await
                .is_ok();
        }
        let text = String::from_utf8_lossy(req.body());
        let parsed = match SessionDescription::parse(&text) {
            Ok(sd) => sd,
            Err(e) => {
                refuse(handle, StatusCode::BadRequest, &e.to_string()).await;
                return false;
            }
        };
        // Our preference first, but keep the current codec if it is still offered.
        let mut prefs = vec![self.params.codec];
        prefs.extend(
            self.shared
                .settings
                .codecs
                .iter()
                .copied()
                .filter(|c| *c != self.params.codec),
        );
        match sdp::negotiate(&parsed, &prefs) {
            Ok(neg) => {
                local.version += 1;
                let body =
                    sdp::build_answer(&parsed, &neg, local.ip, local.port, local.id, local.version);
                let params = media_params(&neg);
                info!(call_id = %self.call_id, hold = neg.hold, codec = neg.codec.name(), "session changed");
                self.apply(params);
                headers.push(sdp_type());
                handle
                    .respond(StatusCode::OK, Some(headers), Some(body.into_bytes()))
                    .await
                    .is_ok()
            }
            Err(e) => {
                refuse(handle, StatusCode::NotAcceptableHere, &e.to_string()).await;
                false
            }
        }
    }

    fn apply(&mut self, params: MediaParams) {
        self.params = params.clone();
        let _ = self.media.send(MediaCommand::Update(params));
    }

    /// SIP INFO: `application/dtmf-relay` or `application/dtmf` digits; returns the digit.
    async fn on_info(&mut self, req: &Request, handle: TransactionHandle) -> Option<dtmf::Digit> {
        let content_type = req
            .headers()
            .iter()
            .find_map(|h| match h {
                Header::ContentType(ct) => Some(ct.value().to_string()),
                _ => None,
            })
            .unwrap_or_default();
        match dtmf::parse_info(&content_type, req.body()) {
            Ok(digit) => {
                let _ = handle.respond(StatusCode::OK, None, None).await;
                self.digit(digit, "info");
                return Some(digit);
            }
            Err(dtmf::DtmfError::UnsupportedContentType(_)) if req.body().is_empty() => {
                // An empty INFO is a keepalive some gateways send.
                let _ = handle.respond(StatusCode::OK, None, None).await;
            }
            Err(e @ dtmf::DtmfError::UnsupportedContentType(_)) => {
                let _ = handle
                    .respond(
                        StatusCode::UnsupportedMediaType,
                        Some(vec![
                            Header::Other(
                                "Accept".into(),
                                "application/dtmf-relay, application/dtmf".into(),
                            ),
                            warning(&e.to_string()),
                        ]),
                        None,
                    )
                    .await;
            }
            Err(e) => {
                refuse(handle, StatusCode::BadRequest, &e.to_string()).await;
            }
        }
        None
    }

    fn digit(&self, digit: dtmf::Digit, via: &'static str) {
        info!(call_id = %self.call_id, digit = %digit, via, "DTMF");
        metrics::counter!("hotline_dtmf_digits_total", "via" => via).increment(1);
        let _ = self.shared.events.send(CallEvent::Digit {
            call_id: self.call_id.clone(),
            digit: digit.as_char(),
            via,
        });
    }

    /// We refresh the session (RFC 4028 refresher=uas): UPDATE without a body.
    async fn refresh(&mut self) {
        if let Err(e) = self.dialog.update(None, None).await {
            warn!(call_id = %self.call_id, error = %e, "session refresh failed");
        }
    }

    /// Blind transfer (RFC 3515): REFER the caller to `number` at the trunk the call came
    /// from. Ok when the REFER was accepted; the NOTIFYs then say how the new call went.
    async fn transfer(&self, number: &str, peer: Option<SocketAddr>) -> Result<(), String> {
        let Some(peer) = peer else {
            return Err("the caller's address is unknown".into());
        };
        let target = format!("<sip:{number}@{peer}>");
        info!(call_id = %self.call_id, %target, "transferring by REFER");
        match self.dialog.refer(target, None, None).await {
            Ok(Some(resp))
                if resp.status_code.kind() == rsipstack::sip::StatusCodeKind::Successful =>
            {
                Ok(())
            }
            Ok(Some(resp)) => Err(format!("REFER answered {}", resp.status_code)),
            Ok(None) => Err("no answer to REFER".into()),
            Err(e) => Err(e.to_string()),
        }
    }

    /// BYE with a Reason header.
    async fn hang_up(&self, cause: u16, text: &str) {
        let reason = format!("SIP;cause={cause};text=\"{text}\"");
        if let Err(e) = self.dialog.bye_with_reason(reason).await {
            debug!(call_id = %self.call_id, error = %e, "BYE failed");
        }
    }
}

/// Answers an in-dialog request with a failure and a Warning saying why.
async fn refuse(handle: TransactionHandle, status: StatusCode, why: &str) {
    let _ = handle.respond(status, Some(vec![warning(why)]), None).await;
}

/// The media parameters a negotiated SDP implies.
pub(crate) fn media_params(neg: &Negotiated) -> MediaParams {
    let remote = (!neg.remote_addr.is_unspecified() && neg.remote_port != 0)
        .then(|| SocketAddr::new(neg.remote_addr, neg.remote_port));
    let rtcp = remote.map(|_| neg.remote_rtcp());
    MediaParams {
        remote_rtp: remote,
        remote_rtcp: rtcp,
        codec: neg.codec,
        payload_type: neg.payload_type,
        telephone_event: neg.telephone_event,
        // The offer's direction is the caller's; we do the mirror of it.
        send: matches!(neg.direction, Direction::SendRecv | Direction::RecvOnly)
            && remote.is_some(),
        receive: matches!(neg.direction, Direction::SendRecv | Direction::SendOnly) && !neg.hold,
    }
}

/// `Content-Type: application/sdp`, on the responses that carry a description.
fn sdp_type() -> Header {
    Header::ContentType("application/sdp".into())
}

/// Headers on every 2xx we send in the dialog.
fn answer_headers() -> Vec<Header> {
    vec![
        Header::Other("Allow".into(), crate::server::ALLOW.into()),
        Header::Other("Supported".into(), "timer".into()),
        Header::Other(
            "Accept".into(),
            "application/sdp, application/dtmf-relay, application/dtmf".into(),
        ),
    ]
}

/// `Session-Expires` of an in-dialog request, if any.
fn session_interval(req: &Request) -> Option<u32> {
    req.headers().iter().find_map(|h| match h {
        Header::SessionExpires(se) => se.value().split(';').next()?.trim().parse().ok(),
        _ => None,
    })
}

fn terminated(reason: &TerminatedReason) -> End {
    match reason {
        TerminatedReason::UacBye => End::new(EndedBy::Caller, 200, "caller hung up"),
        TerminatedReason::UacCancel => {
            End::new(EndedBy::Caller, 487, "caller cancelled before answer")
        }
        TerminatedReason::Timeout => End::new(EndedBy::System, 408, "no ACK for the 200 OK"),
        TerminatedReason::UasBye => End::new(EndedBy::Hotline, 200, "hotline hung up"),
        TerminatedReason::UacBusy | TerminatedReason::UasBusy => {
            End::new(EndedBy::System, 486, "busy")
        }
        TerminatedReason::UasDecline => End::new(EndedBy::Hotline, 603, "declined"),
        TerminatedReason::ProxyError(code)
        | TerminatedReason::UacOther(code)
        | TerminatedReason::UasOther(code) => End::new(
            EndedBy::System,
            u16::from(code.clone()),
            format!("ended with {code}"),
        ),
        TerminatedReason::ProxyAuthRequired => {
            End::new(EndedBy::System, 407, "proxy authentication required")
        }
    }
}

/// Opens `recordings/YYYY/MM/DD/<call-id>.wav`; on failure the call goes on unrecorded.
fn open_recorder(shared: &Shared, call_id: &str) -> (Option<CallRecorder>, Option<String>) {
    if !shared.settings.record {
        return (None, None);
    }
    let today = Timestamp::now().to_zoned(shared.timezone.clone()).date();
    let path = recording::recording_path(
        &shared.recordings_root(),
        (today.year(), today.month(), today.day()),
        call_id,
    );
    match CallRecorder::create(&path) {
        Ok(rec) => {
            let rel = path
                .strip_prefix(&shared.data_dir)
                .unwrap_or(&path)
                .to_string_lossy()
                .into_owned();
            (Some(rec), Some(rel))
        }
        Err(e) => {
            warn!(%call_id, error = %e, "cannot record this call");
            metrics::counter!("hotline_recording_failures_total").increment(1);
            (None, None)
        }
    }
}

/// How long a transfer may take to report its outcome before we give up on it.
const TRANSFER_TIMEOUT: Duration = Duration::from_secs(60);

/// A REFER that was accepted: waiting for its final NOTIFY.
struct Transfer {
    number: String,
    deadline: tokio::time::Instant,
}

/// The status code of a `message/sipfrag` body (`SIP/2.0 200 OK`).
fn sipfrag_status(body: &[u8]) -> Option<u16> {
    let text = std::str::from_utf8(body).ok()?;
    let line = text.lines().next()?;
    let mut words = line.split_whitespace();
    if !words.next()?.eq_ignore_ascii_case("SIP/2.0") {
        return None;
    }
    words.next()?.parse().ok()
}

/// Reports the end.
fn finish(shared: &Shared, call_id: &str, end: End, recording: Option<(u64, u64)>) {
    info!(%call_id, ended_by = end.by.as_str(), code = end.code, reason = %end.reason, "call ended");
    metrics::counter!("hotline_calls_ended_total", "ended_by" => end.by.as_str()).increment(1);
    let _ = shared.events.send(CallEvent::Ended {
        call_id: call_id.to_string(),
        at: Timestamp::now(),
        ended_by: end.by,
        code: end.code,
        reason: end.reason,
        language: end.language,
        recording_bytes: recording.map(|r| r.0),
        recording_ms: recording.map(|r| r.1),
    });
}
