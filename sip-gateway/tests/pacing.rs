//! The media loop is paced by a monotonic clock with deadlines fixed from the start, so it does
//! not drift: over 10 real seconds a call sends exactly 500 packets (±1 for where the window
//! falls) with consecutive sequence numbers and timestamps 160 apart, and records exactly as long.
//! A loop that slept 20 ms after each frame would fall 2–5 % behind (timer rounding).

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use sip_gateway::g711::Codec;
use sip_gateway::media::{self, MediaCommand, MediaCore, MediaParams, MediaSetup};
use sip_gateway::recording::CallRecorder;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_seconds_of_call_are_500_packets_and_10_s_of_recording() {
    let peer = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let peer_addr: SocketAddr = peer.local_addr().unwrap();
    let rtp = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let rtcp = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("pacing.wav");
    let params = MediaParams {
        remote_rtp: Some(peer_addr),
        remote_rtcp: None,
        codec: Codec::Pcma,
        payload_type: 8,
        telephone_event: Some(101),
        send: true,
        receive: true,
    };
    let core = MediaCore::new(
        params,
        3,
        None,
        0x1234_5678,
        (65_000, 4_294_960_000),
        Instant::now(),
    );
    let (commands, commands_rx) = tokio::sync::mpsc::unbounded_channel();
    let (events, _events_rx) = tokio::sync::mpsc::unbounded_channel();
    let task = tokio::spawn(media::run(
        MediaSetup {
            rtp,
            rtcp,
            core,
            recorder: Some(CallRecorder::create(&path).unwrap()),
        },
        commands_rx,
        events,
    ));

    let mut buf = [0u8; 512];
    let mut packets = Vec::new(); // (sequence, timestamp, arrival)
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(12) {
        let (n, _) = peer.recv_from(&mut buf).await.unwrap();
        assert_eq!(n, 12 + 160, "one 20-ms PCMA frame per packet");
        let seq = u16::from_be_bytes([buf[2], buf[3]]);
        let ts = u32::from_be_bytes([buf[4], buf[5], buf[6], buf[7]]);
        packets.push((seq, ts, Instant::now()));
    }
    commands.send(MediaCommand::Stop).unwrap();
    let summary = task.await.unwrap();

    // Consecutive numbering across the 16- and 32-bit wraps.
    for w in packets.windows(2) {
        assert_eq!(w[1].0, w[0].0.wrapping_add(1), "sequence");
        assert_eq!(w[1].1, w[0].1.wrapping_add(160), "timestamp");
    }
    // Skip the first second (start-up), then count a 10-second window.
    let t0 = packets[50].2;
    let in_window = packets
        .iter()
        .filter(|p| p.2 >= t0 && p.2 < t0 + Duration::from_secs(10))
        .count();
    assert!(
        (499..=501).contains(&in_window),
        "{in_window} packets in 10 s: the pacing drifts"
    );
    // The recording is as long as the call, frame for frame with the packets sent.
    let recording = summary.recording.expect("a recording");
    let reader = hound::WavReader::open(&path).unwrap();
    assert_eq!(reader.spec().channels, 2);
    let frames = u64::from(reader.duration()) / 160;
    assert!(
        frames.abs_diff(packets.len() as u64) <= 2,
        "{frames} frames recorded, {} packets sent",
        packets.len()
    );
    assert!(
        recording.duration.as_millis().abs_diff(12_000) <= 100,
        "recorded {:?} of a 12 s call",
        recording.duration
    );
}
