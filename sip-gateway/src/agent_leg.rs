//! The leg to an agent's phone: when the ACD rings an agent, the caller's call task starts one
//! of these. It INVITEs the agent's contact (a SIP desk phone or softphone) with our offer,
//! reports the answer or the failure, and once answered runs the leg's media, whose audio the
//! caller's media loop exchanges frame by frame (the bridge). Cancelled while ringing, it sends
//! CANCEL; told to hang up, BYE; a BYE from the agent ends it.

use std::sync::Arc;
use std::time::Instant;

use rsipstack::dialog::dialog::DialogState;
use rsipstack::dialog::invitation::InviteOption;
use rsipstack::sip::{Header, StatusCode, Uri};
use tokio::sync::mpsc;
use tracing::{info, warn};

use crate::media::{self, MediaCommand, MediaCore, MediaParams, MediaSetup, PeerFrame};
use crate::sdp::{self, Direction, SessionDescription};
use crate::server::Shared;

/// Frames buffered between two bridged legs (each 20 ms).
const BRIDGE_FRAMES: usize = 8;

/// What the call task tells a leg.
#[derive(Debug)]
pub(crate) enum LegCommand {
    /// Stop ringing (CANCEL), or hang up if answered (BYE).
    End,
}

/// What a leg tells the call task.
#[derive(Debug)]
pub(crate) enum LegEvent {
    /// The agent answered; these are the caller side's ends of the bridge.
    Answered {
        /// The agent.
        agent: String,
        /// Where the caller's voice goes.
        to_agent: mpsc::Sender<PeerFrame>,
        /// The agent's voice.
        from_agent: mpsc::Receiver<PeerFrame>,
    },
    /// The agent's phone did not answer (busy, rejected, unreachable, cancelled).
    Failed {
        /// The agent.
        agent: String,
        /// Why, for the log.
        why: String,
    },
    /// The answered leg ended (the agent hung up, or we did).
    Ended {
        /// The agent.
        agent: String,
        /// The agent hung up (rather than us).
        by_agent: bool,
    },
}

/// Starts ringing `agent` at `contact` for `call_id`; commands go in on the returned sender.
pub(crate) fn ring(
    shared: Arc<Shared>,
    call_id: &str,
    agent: &str,
    contact: &str,
    events: mpsc::UnboundedSender<LegEvent>,
) -> mpsc::UnboundedSender<LegCommand> {
    let (tx, rx) = mpsc::unbounded_channel();
    let (call_id, agent, contact) = (call_id.to_owned(), agent.to_owned(), contact.to_owned());
    tokio::spawn(async move {
        if let Err(why) = run(shared, &call_id, &agent, &contact, rx, &events).await {
            warn!(%call_id, %agent, %contact, why, "agent leg failed");
            let _ = events.send(LegEvent::Failed { agent, why });
        }
    });
    tx
}

async fn run(
    shared: Arc<Shared>,
    call_id: &str,
    agent: &str,
    contact: &str,
    mut commands: mpsc::UnboundedReceiver<LegCommand>,
    events: &mpsc::UnboundedSender<LegEvent>,
) -> Result<(), String> {
    let callee = Uri::try_from(contact).map_err(|e| format!("contact {contact}: {e}"))?;
    let ports = shared
        .ports
        .allocate(shared.media_ip_bind())
        .map_err(|e| format!("no RTP ports: {e}"))?;
    let session_id = u64::from(rand::random::<u32>());
    let offer = sdp::build_offer(
        shared.media_ip,
        ports.port(),
        &shared.settings.codecs,
        Some(101),
        session_id,
        1,
        Direction::SendRecv,
    );
    let me = shared.contact.clone();
    let option = InviteOption {
        caller_display_name: Some("hotline".into()),
        caller: me.clone(),
        callee,
        contact: me,
        content_type: Some("application/sdp".into()),
        offer: Some(offer.into_bytes()),
        headers: Some(vec![Header::Other("X-Hotline-Call".into(), call_id.into())]),
        ..Default::default()
    };
    let (state_tx, mut states) = shared.dialogs.new_dialog_state_channel();
    let (dialog, join) = shared
        .dialogs
        .do_invite_async(option, state_tx)
        .map_err(|e| e.to_string())?;
    info!(%call_id, %agent, %contact, "ringing the agent");
    tokio::pin!(join);
    let answered = loop {
        tokio::select! {
            result = &mut join => break result,
            cmd = commands.recv() => {
                if matches!(cmd, Some(LegCommand::End) | None) {
                    let _ = dialog.cancel().await;
                    let _ = (&mut join).await;
                    shared.dialogs.remove_dialog(&dialog.id());
                    return Err("ringing stopped".into());
                }
            }
        }
    };
    let (dialog_id, response) = match answered {
        Ok(Ok((id, Some(resp)))) => (id, resp),
        Ok(Ok((_, None))) => return Err("no final response".into()),
        Ok(Err(e)) => return Err(e.to_string()),
        Err(e) => return Err(e.to_string()),
    };
    if response.status_code != StatusCode::OK {
        shared.dialogs.remove_dialog(&dialog_id);
        return Err(format!("answered {}", response.status_code));
    }
    let params = match answer_params(&shared, &response.body) {
        Ok(p) => p,
        Err(why) => {
            let _ = dialog.bye().await;
            shared.dialogs.remove_dialog(&dialog_id);
            return Err(why);
        }
    };

    // Media of the leg, and the two ends of the bridge.
    let crate::ports::PortPair { rtp, rtcp, lease } = ports;
    let (rtp, rtcp) = match (
        tokio::net::UdpSocket::from_std(rtp),
        tokio::net::UdpSocket::from_std(rtcp),
    ) {
        (Ok(a), Ok(b)) => (a, b),
        _ => {
            let _ = dialog.bye().await;
            shared.dialogs.remove_dialog(&dialog_id);
            return Err("media sockets failed".into());
        }
    };
    let mut core = MediaCore::new(
        params,
        shared.settings.jitter_frames,
        None,
        rand::random(),
        (rand::random(), rand::random()),
        Instant::now(),
    );
    core.set_barge_in(false);
    let (cmd_tx, cmd_rx) = mpsc::unbounded_channel();
    let (media_events, _media_rx) = mpsc::unbounded_channel();
    let media_task = tokio::spawn(media::run(
        MediaSetup {
            rtp,
            rtcp,
            core,
            recorder: None,
        },
        cmd_rx,
        media_events,
    ));
    let (to_agent, from_caller) = mpsc::channel(BRIDGE_FRAMES);
    let (to_caller, from_agent) = mpsc::channel(BRIDGE_FRAMES);
    let _ = cmd_tx.send(MediaCommand::Connect {
        to_peer: to_caller,
        from_peer: from_caller,
    });
    info!(%call_id, %agent, "agent answered");
    let _ = events.send(LegEvent::Answered {
        agent: agent.to_owned(),
        to_agent,
        from_agent,
    });

    let by_agent = loop {
        tokio::select! {
            state = states.recv() => match state {
                Some(DialogState::Terminated(..)) | None => break true,
                Some(_) => {}
            },
            cmd = commands.recv() => {
                if matches!(cmd, Some(LegCommand::End) | None) {
                    let _ = dialog.bye().await;
                    break false;
                }
            }
        }
    };
    let _ = cmd_tx.send(MediaCommand::Stop);
    let _ = media_task.await;
    drop(lease);
    shared.dialogs.remove_dialog(&dialog_id);
    info!(%call_id, %agent, by_agent, "agent leg ended");
    let _ = events.send(LegEvent::Ended {
        agent: agent.to_owned(),
        by_agent,
    });
    Ok(())
}

/// The media parameters the agent phone's SDP answer implies.
fn answer_params(shared: &Shared, body: &[u8]) -> Result<MediaParams, String> {
    let text = String::from_utf8_lossy(body);
    let sd = SessionDescription::parse(&text).map_err(|e| format!("answer SDP: {e}"))?;
    let neg =
        sdp::negotiate(&sd, &shared.settings.codecs).map_err(|e| format!("answer SDP: {e}"))?;
    Ok(crate::call::media_params(&neg))
}
