//! One call's media: RTP in and out, DTMF from RFC 4733 events, prompt playback with barge-in,
//! the stereo recording, RTCP reports and the no-RTP watchdog.
//!
//! [`MediaCore`] is sans-IO: it is handed received packets and a 20-ms tick, and returns the
//! packet to send, the two PCM frames to record, and events. [`run`] is the thin async shell:
//! two UDP sockets, a monotonic 20-ms interval (`tokio::time::interval` schedules from a fixed
//! start, so there is no drift over a long call: 30 minutes is exactly 90,000 ticks), a command
//! channel from the call, and the recorder.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use rtp_rs::{RtpPacketBuilder, RtpReader, Seq};
use tokio::net::UdpSocket;
use tokio::sync::mpsc;

use crate::dtmf::{Digit, TelephoneEventDetector};
use crate::g711::Codec;
use crate::jitter::{Frame, JitterBuffer, Push, Resync};
use crate::message::MessageEnd;
use crate::prompt::{Prompt, PromptPlayer};
use crate::recording::{CallRecorder, RecordingSummary};
use crate::rtcp;

/// Samples in one 20-ms G.711 frame.
pub const FRAME: usize = 160;
/// The pacing interval.
pub const PTIME: Duration = Duration::from_millis(20);
/// RTCP report interval (RFC 3550 allows a fixed 5 s for a two-party session).
const RTCP_EVERY_TICKS: u64 = 250;

/// What the negotiated session says about media; changes on re-INVITE/UPDATE.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MediaParams {
    /// Where the caller said to send RTP (replaced by the latched source once packets arrive).
    pub remote_rtp: Option<SocketAddr>,
    /// Where to send RTCP.
    pub remote_rtcp: Option<SocketAddr>,
    /// The audio codec.
    pub codec: Codec,
    /// Its payload type in this session.
    pub payload_type: u8,
    /// RFC 4733 telephone-event payload type, if offered.
    pub telephone_event: Option<u8>,
    /// Whether we send (false while the caller holds us with sendonly/inactive).
    pub send: bool,
    /// Whether the caller sends (false on hold: the no-RTP watchdog sleeps).
    pub receive: bool,
}

/// Something the call should know about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MediaEvent {
    /// A DTMF digit from RFC 4733 events.
    Digit(Digit),
    /// The prompt sequence `id` finished (or was stopped by a digit).
    PlaybackFinished {
        /// The id it was started with.
        id: u64,
        /// Stopped by barge-in rather than played to the end.
        interrupted: bool,
    },
    /// No RTP from the caller for the configured time.
    NoRtp,
    /// The recorder failed (disk full...); the call goes on unrecorded.
    RecordingFailed(String),
    /// The caller's message (voicemail) is over (`#`, its maximum length, silence) and on disk;
    /// or it could not be recorded.
    MessageFinished(Result<RecordingSummary, String>),
}

/// Orders from the call.
#[derive(Debug)]
pub enum MediaCommand {
    /// Play these prompts back to back, replacing what is playing; `id` comes back in
    /// [`MediaEvent::PlaybackFinished`] so a late report of an older play is recognised.
    Play {
        /// Chosen by the caller of the command.
        id: u64,
        /// The prompts.
        prompts: Vec<Arc<Prompt>>,
    },
    /// Stop the prompt (barge-in by a SIP INFO digit).
    StopPlayback,
    /// New session parameters after re-INVITE or UPDATE.
    Update(MediaParams),
    /// Record the caller's side to a mono WAV at `path` (a message for voicemail) until
    /// [`MediaCommand::StopMessage`], `max`, or `silence` without voice; then report
    /// [`MediaEvent::MessageFinished`].
    StartMessage {
        /// The file to create.
        path: std::path::PathBuf,
        /// Longest message.
        max: Duration,
        /// Silence that ends it.
        silence: Option<Duration>,
    },
    /// End the message now (the caller pressed `#`, or hung up).
    StopMessage,
    /// Bridge to another leg (a caller to an agent): each tick, what this side receives goes
    /// to `to_peer`, and the newest frame from `from_peer` is what this side hears (prompts,
    /// if any play, win).
    Connect {
        /// Frames this leg's remote party says.
        to_peer: mpsc::Sender<PeerFrame>,
        /// Frames the other leg's remote party says.
        from_peer: mpsc::Receiver<PeerFrame>,
    },
    /// End: stop, finish the recording, report.
    Stop,
}

/// One 20-ms frame of PCM passed between two bridged legs.
pub type PeerFrame = [i16; FRAME];

/// The packets and frames of one tick.
#[derive(Debug)]
pub struct Tick<'a> {
    /// The RTP packet to send, if sending.
    pub packet: Option<&'a [u8]>,
    /// The caller's 160 samples (silence for lost packets).
    pub caller: &'a [i16],
    /// The hotline side's 160 samples (the prompt, or silence).
    pub hotline: &'a [i16],
}

/// Sans-IO media state of one call.
pub struct MediaCore {
    params: MediaParams,
    latched: bool,
    jitter: JitterBuffer,
    jitter_frames: usize,
    dtmf: TelephoneEventDetector,
    player: Option<PromptPlayer>,
    play_id: u64,
    barge_in: bool,
    live: Option<PeerFrame>,
    rx: Option<rtcp::ReceiverStats>,
    tx: rtcp::SenderStats,
    ssrc: u32,
    seq: u16,
    timestamp: u32,
    marker: bool,
    ticks: u64,
    last_rx: Option<Instant>,
    silence_since: Instant,
    no_rtp: Option<Duration>,
    no_rtp_reported: bool,
    caller_pcm: Vec<i16>,
    hotline_pcm: Vec<i16>,
    payload: Vec<u8>,
    packet: Vec<u8>,
    events: Vec<MediaEvent>,
    start: Instant,
}

impl MediaCore {
    /// New media state; `ssrc` and `initial` (sequence, timestamp) come from the caller's RNG.
    pub fn new(
        params: MediaParams,
        jitter_frames: usize,
        no_rtp: Option<Duration>,
        ssrc: u32,
        initial: (u16, u32),
        now: Instant,
    ) -> MediaCore {
        MediaCore {
            params: params.clone(),
            latched: false,
            jitter: JitterBuffer::new(jitter_frames).with_silence(params.codec.silence()),
            jitter_frames,
            dtmf: TelephoneEventDetector::new(),
            player: None,
            play_id: 0,
            barge_in: true,
            live: None,
            rx: None,
            tx: rtcp::SenderStats::new("hotline"),
            ssrc,
            seq: initial.0,
            timestamp: initial.1,
            marker: true,
            ticks: 0,
            last_rx: None,
            silence_since: now,
            no_rtp,
            no_rtp_reported: false,
            caller_pcm: Vec::with_capacity(FRAME * 2),
            hotline_pcm: Vec::with_capacity(FRAME),
            payload: Vec::with_capacity(FRAME),
            packet: vec![0; 12 + FRAME * 2],
            events: Vec::new(),
            start: now,
        }
    }

    /// The current session parameters.
    pub fn params(&self) -> &MediaParams {
        &self.params
    }

    /// Where RTP goes now (the latched source, or the SDP address).
    pub fn remote(&self) -> Option<SocketAddr> {
        self.params.remote_rtp
    }

    /// Applies a re-INVITE/UPDATE. A changed address re-opens latching.
    pub fn update(&mut self, params: MediaParams, now: Instant) {
        if params.remote_rtp != self.params.remote_rtp {
            self.latched = false;
        }
        if params.codec != self.params.codec {
            // Another codec: buffered frames would decode as noise, and silence differs.
            self.jitter =
                JitterBuffer::new(self.jitter_frames).with_silence(params.codec.silence());
            if let Some(p) = self.player.as_mut() {
                p.set_codec(params.codec);
            }
        }
        if !self.params.receive && params.receive {
            // Back from hold: give the caller a full timeout to start sending again.
            self.silence_since = now;
            self.last_rx = None;
        }
        self.params = params;
    }

    /// Whether an RFC 4733 digit stops the prompt by itself (the default). An IVR flow that
    /// decides barge-in per node turns this off and sends [`MediaCommand::StopPlayback`].
    pub fn set_barge_in(&mut self, on: bool) {
        self.barge_in = on;
    }

    /// What the hotline side says on the next tick when no prompt plays (a bridged leg's voice).
    pub fn set_live_frame(&mut self, frame: PeerFrame) {
        self.live = Some(frame);
    }

    /// Starts prompt sequence `id` (replacing one that plays, which reports nothing).
    pub fn play(&mut self, id: u64, prompts: Vec<Arc<Prompt>>) {
        self.play_id = id;
        self.player = Some(PromptPlayer::new(prompts, self.params.codec));
    }

    /// Stops the prompt now; reports `PlaybackFinished { interrupted: true }` if one played.
    pub fn stop_playback(&mut self) {
        if let Some(mut p) = self.player.take() {
            p.stop();
            self.events.push(MediaEvent::PlaybackFinished {
                id: self.play_id,
                interrupted: true,
            });
        }
    }

    /// Whether a prompt is playing.
    pub fn is_playing(&self) -> bool {
        self.player.is_some()
    }

    /// Jitter buffer and RTP counters for metrics and the call record.
    pub fn lost_packets(&self) -> u64 {
        self.jitter.stats().lost
    }

    /// Packets received from the caller.
    pub fn received_packets(&self) -> u64 {
        self.jitter.stats().received
    }

    /// Events since the last call.
    pub fn drain_events(&mut self) -> std::vec::Drain<'_, MediaEvent> {
        self.events.drain(..)
    }

    /// A datagram arrived on the RTP port from `from`.
    pub fn on_rtp(&mut self, datagram: &[u8], from: SocketAddr, now: Instant) {
        let Ok(rtp) = RtpReader::new(datagram) else {
            return;
        };
        let pt = rtp.payload_type();
        let is_audio = pt == self.params.payload_type;
        let is_event = Some(pt) == self.params.telephone_event;
        if !is_audio && !is_event {
            return; // comfort noise, unknown payloads
        }
        // Symmetric RTP: learn the caller's real address from its first packets (NAT).
        if !self.latched || Some(from) != self.params.remote_rtp {
            if !self.latched {
                self.params.remote_rtp = Some(from);
                self.latched = true;
            } else {
                // A latched stream from elsewhere is ignored (RTP injection).
                return;
            }
        }
        self.last_rx = Some(now);
        let seq: u16 = rtp.sequence_number().into();
        let arrival = (now.duration_since(self.start).as_micros() / 125) as u32; // 8 kHz units
        let ssrc = rtp.ssrc();
        let rx = match &mut self.rx {
            Some(rx) if rx.ssrc() == ssrc => rx,
            slot => slot.insert(rtcp::ReceiverStats::new(ssrc)),
        };
        rx.on_rtp(seq, rtp.timestamp(), arrival);
        if is_event {
            if let Ok(Some(digit)) = self.dtmf.on_packet_at(
                now.duration_since(self.start),
                rtp.timestamp(),
                rtp.mark(),
                rtp.payload(),
            ) {
                self.events.push(MediaEvent::Digit(digit));
                if self.barge_in {
                    self.stop_playback();
                }
            }
            return;
        }
        if let Push::Resynced(Resync::NewSource) =
            self.jitter
                .push(seq, rtp.timestamp(), rtp.ssrc(), rtp.mark(), rtp.payload())
        {
            // A new source's events may carry lower timestamps than the old one's.
            self.dtmf.reset();
        }
    }

    /// An RTCP datagram arrived.
    pub fn on_rtcp(&mut self, datagram: &[u8], now: SystemTime) {
        if let Ok(packets) = rtcp::parse_compound(datagram) {
            for p in packets {
                if let rtcp::RtcpPacket::SenderReport(sr) = p
                    && let Some(rx) = self.rx.as_mut()
                {
                    rx.on_sender_report(sr.ntp_middle32(), rtcp::ntp_time(now));
                }
            }
        }
    }

    /// The 20-ms tick: one frame each way.
    pub fn on_tick(&mut self, now: Instant) -> Tick<'_> {
        self.ticks += 1;
        // Caller side: what the jitter buffer plays out, silence for lost or late packets.
        self.caller_pcm.clear();
        if let Frame::Audio(payload) = self.jitter.pop() {
            self.params.codec.decode(&payload, &mut self.caller_pcm);
        }
        self.caller_pcm.resize(FRAME, 0);
        self.caller_pcm.truncate(FRAME);

        // Hotline side: the prompt frame, or silence.
        self.payload.clear();
        self.hotline_pcm.clear();
        let mut finished = false;
        if let Some(player) = self.player.as_mut() {
            match player.next_frame() {
                Some((encoded, pcm)) => {
                    self.payload.extend_from_slice(encoded);
                    self.hotline_pcm.extend_from_slice(pcm);
                }
                None => finished = true,
            }
        }
        if finished {
            self.player = None;
            self.events.push(MediaEvent::PlaybackFinished {
                id: self.play_id,
                interrupted: false,
            });
            self.marker = true;
        }
        if let Some(live) = self.live.take()
            && self.payload.is_empty()
        {
            self.params.codec.encode(&live, &mut self.payload);
            self.hotline_pcm.clear();
            self.hotline_pcm.extend_from_slice(&live);
        }
        if self.payload.is_empty() {
            self.payload.resize(FRAME, self.params.codec.silence());
        }
        self.hotline_pcm.resize(FRAME, 0);

        // The watchdog: only while the caller is expected to send.
        if self.params.receive {
            let quiet_since = self.last_rx.unwrap_or(self.silence_since);
            if let Some(limit) = self.no_rtp
                && now.duration_since(quiet_since) >= limit
                && !self.no_rtp_reported
            {
                self.no_rtp_reported = true;
                self.events.push(MediaEvent::NoRtp);
            }
        }

        let packet = if self.params.send && self.params.remote_rtp.is_some() {
            let built = RtpPacketBuilder::new()
                .payload_type(self.params.payload_type)
                .ssrc(self.ssrc)
                .sequence(Seq::from(self.seq))
                .timestamp(self.timestamp)
                .marked(self.marker)
                .payload(&self.payload)
                .build_into(&mut self.packet);
            self.marker = false;
            self.seq = self.seq.wrapping_add(1);
            match built {
                Ok(len) => {
                    self.tx.on_rtp_sent(self.timestamp, self.payload.len());
                    Some(len)
                }
                Err(_) => None,
            }
        } else {
            None
        };
        // The RTP clock runs whether or not we send, so a resumed stream has the right timestamps.
        self.timestamp = self.timestamp.wrapping_add(FRAME as u32);
        Tick {
            packet: packet.map(|len| &self.packet[..len]),
            caller: &self.caller_pcm,
            hotline: &self.hotline_pcm,
        }
    }

    /// Whether an RTCP report is due on this tick.
    pub fn rtcp_due(&self) -> bool {
        self.ticks.is_multiple_of(RTCP_EVERY_TICKS)
    }

    /// The compound RTCP report (SR while sending, RR otherwise) for `now`.
    pub fn rtcp_report(&mut self, now: SystemTime) -> Vec<u8> {
        let ntp = rtcp::ntp_time(now);
        let blocks: Vec<rtcp::ReportBlock> = self
            .rx
            .as_mut()
            .filter(|r| r.is_valid())
            .map(|r| r.report_block(ntp))
            .into_iter()
            .collect();
        if self.params.send {
            self.tx
                .sender_report(self.ssrc, ntp, self.timestamp, &blocks)
        } else {
            self.tx.receiver_report(self.ssrc, &blocks)
        }
    }

    /// A BYE for RTCP at the end of the call.
    pub fn rtcp_bye(&self) -> Vec<u8> {
        self.tx.bye(self.ssrc)
    }
}

/// The result of a finished media session.
#[derive(Debug, Default)]
pub struct MediaSummary {
    /// The recording, if one was made.
    pub recording: Option<RecordingSummary>,
    /// RTP packets received.
    pub received: u64,
    /// Caller packets lost (played as silence).
    pub lost: u64,
    /// A caller's message still being recorded when the call ended, finished with it.
    pub message: Option<Result<RecordingSummary, String>>,
}

/// Sockets and settings for [`run`].
pub struct MediaSetup {
    /// RTP socket.
    pub rtp: UdpSocket,
    /// RTCP socket.
    pub rtcp: UdpSocket,
    /// The sans-IO state.
    pub core: MediaCore,
    /// The recorder, if recording.
    pub recorder: Option<CallRecorder>,
}

/// Runs one call's media until [`MediaCommand::Stop`] (or the command channel closes).
pub async fn run(
    mut setup: MediaSetup,
    mut commands: mpsc::UnboundedReceiver<MediaCommand>,
    events: mpsc::UnboundedSender<MediaEvent>,
) -> MediaSummary {
    let mut ticker = tokio::time::interval(PTIME);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let mut rtp_buf = vec![0u8; 2048];
    let mut rtcp_buf = vec![0u8; 1500];
    let core = &mut setup.core;
    let mut recorder = setup.recorder.take();
    let mut message: Option<(CallRecorder, MessageEnd)> = None;
    let mut peer: Option<(mpsc::Sender<PeerFrame>, mpsc::Receiver<PeerFrame>)> = None;
    loop {
        tokio::select! {
            biased;
            cmd = commands.recv() => match cmd {
                Some(MediaCommand::Play { id, prompts }) => core.play(id, prompts),
                Some(MediaCommand::StopPlayback) => core.stop_playback(),
                Some(MediaCommand::Update(p)) => core.update(p, Instant::now()),
                Some(MediaCommand::StartMessage { path, max, silence }) => {
                    if let Some(old) = message.take() {
                        finish_message(old.0, events.clone());
                    }
                    match CallRecorder::create_mono(&path) {
                        Ok(rec) => message = Some((rec, MessageEnd::new(max, silence))),
                        Err(e) => {
                            let _ = events.send(MediaEvent::MessageFinished(Err(e.to_string())));
                        }
                    }
                }
                Some(MediaCommand::StopMessage) => {
                    if let Some((rec, _)) = message.take() {
                        finish_message(rec, events.clone());
                    }
                }
                Some(MediaCommand::Connect { to_peer, from_peer }) => peer = Some((to_peer, from_peer)),
                Some(MediaCommand::Stop) | None => break,
            },
            r = setup.rtp.recv_from(&mut rtp_buf) => {
                if let Ok((n, from)) = r {
                    core.on_rtp(&rtp_buf[..n], from, Instant::now());
                }
            }
            r = setup.rtcp.recv_from(&mut rtcp_buf) => {
                if let Ok((n, _)) = r {
                    core.on_rtcp(&rtcp_buf[..n], SystemTime::now());
                }
            }
            _ = ticker.tick() => {
                if let Some((_, from_peer)) = peer.as_mut() {
                    // One frame a tick; when the two loops' phases drift and frames pile up,
                    // drop the backlog rather than let it add delay.
                    while from_peer.len() > 2 {
                        let _ = from_peer.try_recv();
                    }
                    if let Ok(frame) = from_peer.try_recv() {
                        core.set_live_frame(frame);
                    }
                }
                let remote = core.remote();
                let tick = core.on_tick(Instant::now());
                if let Some((to_peer, _)) = peer.as_ref() {
                    let mut frame = [0i16; FRAME];
                    let n = tick.caller.len().min(FRAME);
                    frame[..n].copy_from_slice(&tick.caller[..n]);
                    let _ = to_peer.try_send(frame);
                }
                if let (Some(packet), Some(to)) = (tick.packet, remote) {
                    let _ = setup.rtp.try_send_to(packet, to);
                }
                if let Some(rec) = recorder.as_mut()
                    && let Err(e) = rec.write_frame(tick.caller, tick.hotline)
                {
                    let _ = events.send(MediaEvent::RecordingFailed(e.to_string()));
                    recorder = None;
                }
                if let Some((rec, end)) = message.as_mut() {
                    let over = match rec.write_frame(tick.caller, &[]) {
                        Ok(()) => end.on_frame(tick.caller),
                        Err(e) => {
                            tracing::warn!(error = %e, "recording the caller's message failed");
                            true
                        }
                    };
                    if over && let Some((rec, _)) = message.take() {
                        finish_message(rec, events.clone());
                    }
                }
                if core.rtcp_due()
                    && let Some(to) = core.params().remote_rtcp
                {
                    let report = core.rtcp_report(SystemTime::now());
                    let _ = setup.rtcp.try_send_to(&report, to);
                }
            }
        }
        for e in core.drain_events() {
            let _ = events.send(e);
        }
    }
    if let Some(to) = core.params().remote_rtcp {
        let _ = setup.rtcp.try_send_to(&core.rtcp_bye(), to);
    }
    // Finishing syncs the file to disk (tens of milliseconds): off the runtime's threads.
    let recording = match recorder {
        Some(rec) => match tokio::task::spawn_blocking(move || rec.finish()).await {
            Ok(Ok(summary)) => Some(summary),
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "finishing the recording failed");
                None
            }
            Err(e) => {
                tracing::warn!(error = %e, "finishing the recording panicked");
                None
            }
        },
        None => None,
    };
    let message = match message {
        Some((rec, _)) => Some(
            tokio::task::spawn_blocking(move || rec.finish().map_err(|e| e.to_string()))
                .await
                .unwrap_or_else(|e| Err(e.to_string())),
        ),
        None => None,
    };
    MediaSummary {
        recording,
        received: core.received_packets(),
        lost: core.lost_packets(),
        message,
    }
}

/// Finishes a caller's message off the media loop (it syncs the file) and reports it.
fn finish_message(rec: CallRecorder, events: mpsc::UnboundedSender<MediaEvent>) {
    tokio::task::spawn_blocking(move || {
        let result = rec.finish().map_err(|e| e.to_string());
        let _ = events.send(MediaEvent::MessageFinished(result));
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    const CALLER: &str = "192.0.2.10:40000";

    fn params() -> MediaParams {
        MediaParams {
            remote_rtp: Some("192.0.2.10:30000".parse().unwrap()),
            remote_rtcp: Some("192.0.2.10:30001".parse().unwrap()),
            codec: Codec::Pcma,
            payload_type: 8,
            telephone_event: Some(101),
            send: true,
            receive: true,
        }
    }

    fn core(now: Instant) -> MediaCore {
        MediaCore::new(
            params(),
            2,
            Some(Duration::from_secs(2)),
            7,
            (100, 1000),
            now,
        )
    }

    fn rtp(pt: u8, seq: u16, ts: u32, marker: bool, payload: &[u8]) -> Vec<u8> {
        RtpPacketBuilder::new()
            .payload_type(pt)
            .ssrc(42)
            .sequence(Seq::from(seq))
            .timestamp(ts)
            .marked(marker)
            .payload(payload)
            .build()
            .unwrap()
    }

    fn tone() -> Arc<Prompt> {
        let pcm = (0..1600)
            .map(|i| if i % 20 < 10 { 8000 } else { -8000 })
            .collect();
        Arc::new(Prompt::from_pcm("tone", pcm))
    }

    fn energy(pcm: &[i16]) -> u64 {
        pcm.iter().map(|s| u64::from(s.unsigned_abs())).sum()
    }

    #[test]
    fn the_first_packets_teach_the_callers_real_address() {
        let t = Instant::now();
        let mut m = core(t);
        let from: SocketAddr = CALLER.parse().unwrap();
        m.on_rtp(&rtp(8, 1, 0, true, &[0xd5; 160]), from, t);
        assert_eq!(
            m.remote(),
            Some(from),
            "symmetric RTP: answer where packets come from"
        );
        // Once latched, a stream from elsewhere is injection: ignored.
        let other: SocketAddr = "198.51.100.7:5000".parse().unwrap();
        m.on_rtp(&rtp(8, 2, 160, false, &[0xd5; 160]), other, t);
        assert_eq!(m.remote(), Some(from));
        assert_eq!(m.received_packets(), 1);
    }

    #[test]
    fn a_digit_stops_the_prompt_and_is_reported_once() {
        let t = Instant::now();
        let mut m = core(t);
        let from: SocketAddr = CALLER.parse().unwrap();
        m.play(1, vec![tone()]);
        let tick = m.on_tick(t);
        assert!(energy(tick.hotline) > 0, "the prompt plays");
        // RFC 4733 "5": a marked start, then the repeats and three ends.
        m.on_rtp(&rtp(101, 1, 8000, true, &[5, 10, 0, 0]), from, t);
        m.on_rtp(&rtp(101, 2, 8000, false, &[5, 10, 1, 64]), from, t);
        for seq in 3..6 {
            m.on_rtp(&rtp(101, seq, 8000, false, &[5, 0x80 | 10, 3, 32]), from, t);
        }
        let events: Vec<_> = m.drain_events().collect();
        assert_eq!(
            events,
            vec![
                MediaEvent::Digit(crate::dtmf::Digit::D5),
                MediaEvent::PlaybackFinished {
                    id: 1,
                    interrupted: true
                }
            ]
        );
        assert!(!m.is_playing());
        let tick = m.on_tick(t + PTIME);
        assert_eq!(energy(tick.hotline), 0, "silence after barge-in");
        assert_eq!(tick.packet.map(<[u8]>::len), Some(172), "RTP keeps flowing");
    }

    #[test]
    fn without_barge_in_a_digit_is_reported_and_the_prompt_goes_on() {
        let t = Instant::now();
        let mut m = core(t);
        m.set_barge_in(false);
        let from: SocketAddr = CALLER.parse().unwrap();
        m.play(3, vec![tone()]);
        let _ = m.on_tick(t);
        m.on_rtp(&rtp(101, 1, 8000, true, &[5, 10, 0, 0]), from, t);
        assert_eq!(
            m.drain_events().collect::<Vec<_>>(),
            vec![MediaEvent::Digit(crate::dtmf::Digit::D5)]
        );
        assert!(
            m.is_playing(),
            "the flow decides whether a key stops the prompt"
        );
        assert!(energy(m.on_tick(t + PTIME).hotline) > 0);
    }

    #[test]
    fn a_bridged_leg_says_the_peer_frame_unless_a_prompt_plays() {
        let t = Instant::now();
        let mut m = core(t);
        let voice: PeerFrame = std::array::from_fn(|i| ((i as f64 * 0.2).sin() * 6000.0) as i16);
        m.set_live_frame(voice);
        let tick = m.on_tick(t);
        // The recording's hotline side is the peer's voice, and so is what goes out.
        assert_eq!(tick.hotline, &voice[..]);
        let packet = tick.packet.unwrap().to_vec();
        let mut decoded = Vec::new();
        Codec::Pcma.decode(&packet[12..], &mut decoded);
        let err: i64 = decoded
            .iter()
            .zip(voice)
            .map(|(a, b)| (i64::from(*a) - i64::from(b)).abs())
            .max()
            .unwrap();
        assert!(err < 200, "A-law of the peer's frame (max error {err})");
        // No new frame: silence, not the old frame again.
        assert_eq!(energy(m.on_tick(t + PTIME).hotline), 0);
        // A prompt wins over the peer.
        m.play(1, vec![tone()]);
        m.set_live_frame(voice);
        let tick = m.on_tick(t + PTIME * 2);
        assert_ne!(tick.hotline, &voice[..]);
    }

    #[test]
    fn a_prompt_plays_to_its_end_and_says_so() {
        let t = Instant::now();
        let mut m = core(t);
        m.play(7, vec![tone()]); // 1600 samples: 10 frames
        for i in 0..10 {
            let tick = m.on_tick(t + PTIME * i);
            assert!(energy(tick.hotline) > 0, "frame {i}");
        }
        let _ = m.on_tick(t + PTIME * 10);
        assert_eq!(
            m.drain_events().collect::<Vec<_>>(),
            vec![MediaEvent::PlaybackFinished {
                id: 7,
                interrupted: false
            }]
        );
    }

    #[test]
    fn lost_packets_are_silence_in_time_on_the_caller_channel() {
        let t = Instant::now();
        let mut m = core(t);
        let from: SocketAddr = CALLER.parse().unwrap();
        let loud = {
            let mut v = Vec::new();
            Codec::Pcma.encode(&[9000; 160], &mut v);
            v
        };
        // Packets 0, 1, 3 arrive; 2 is lost.
        for seq in [0u16, 1, 3] {
            m.on_rtp(&rtp(8, seq, u32::from(seq) * 160, seq == 0, &loud), from, t);
        }
        let mut caller = Vec::new();
        for i in 0..4 {
            let tick = m.on_tick(t + PTIME * i);
            caller.push(energy(tick.caller) > 0);
        }
        assert_eq!(caller, vec![true, true, false, true]);
    }

    #[test]
    fn silence_from_the_caller_ends_the_call_but_hold_does_not() {
        let t = Instant::now();
        let mut m = core(t);
        for i in 0..99 {
            let _ = m.on_tick(t + PTIME * i);
        }
        assert!(m.drain_events().next().is_none(), "not yet 2 s");
        let _ = m.on_tick(t + Duration::from_secs(2));
        assert_eq!(
            m.drain_events().collect::<Vec<_>>(),
            vec![MediaEvent::NoRtp]
        );

        // Held with a=inactive (or recvonly): the caller is not expected to send.
        let mut m = core(t);
        m.update(
            MediaParams {
                send: true,
                receive: false,
                ..params()
            },
            t,
        );
        for i in 0..500 {
            let _ = m.on_tick(t + PTIME * i);
        }
        assert!(
            m.drain_events().next().is_none(),
            "a held call is quiet, not dead"
        );
        // Held with a=sendonly: the caller plays its music on hold, we send nothing.
        m.update(
            MediaParams {
                send: false,
                receive: true,
                ..params()
            },
            t + Duration::from_secs(10),
        );
        assert!(m.on_tick(t + Duration::from_secs(10)).packet.is_none());
    }

    #[test]
    fn rtp_out_is_numbered_and_timed_and_rtcp_reports_it() {
        let t = Instant::now();
        let mut m = core(t);
        let a = m.on_tick(t).packet.unwrap().to_vec();
        let b = m.on_tick(t + PTIME).packet.unwrap().to_vec();
        let (ra, rb) = (RtpReader::new(&a).unwrap(), RtpReader::new(&b).unwrap());
        assert!(ra.mark() && !rb.mark(), "marker on the first packet only");
        assert_eq!(
            u16::from(rb.sequence_number()),
            u16::from(ra.sequence_number()).wrapping_add(1)
        );
        assert_eq!(rb.timestamp(), ra.timestamp().wrapping_add(160));
        assert_eq!(ra.payload_type(), 8);
        let report = m.rtcp_report(SystemTime::now());
        let packets = rtcp::parse_compound(&report).unwrap();
        assert!(
            matches!(packets[0], rtcp::RtcpPacket::SenderReport(_)),
            "{packets:?}"
        );
    }

    #[test]
    fn garbage_on_the_rtp_port_is_ignored() {
        let t = Instant::now();
        let mut m = core(t);
        let from: SocketAddr = CALLER.parse().unwrap();
        for len in 0..40 {
            m.on_rtp(&vec![0x80; len], from, t);
            m.on_rtcp(&vec![0x81; len], SystemTime::now());
        }
        m.on_rtp(&rtp(13, 1, 0, false, &[0; 1]), from, t); // comfort noise: not ours
        assert_eq!(m.received_packets(), 0);
    }
}
