//! Receive-side jitter buffer for G.711 audio (PCMU/PCMA, 8 kHz RTP clock, ptime 20 ms).
//!
//! RTP packets arrive late, early, twice or not at all; the call recording and the speech
//! pipeline need one 20 ms frame every 20 ms, in order, with time kept aligned. This type sits
//! between the two. It is sans-IO: it reads no clock and owns no socket. The media loop calls
//! [`JitterBuffer::push`] when a packet arrives and [`JitterBuffer::pop`] exactly once every
//! 20 ms from its monotonic clock; each pop is one 20 ms slot of the caller's channel, and
//! anything that is not [`Frame::Audio`] must be written as silence so the recording stays in time.
//!
//! # Model
//!
//! * A frame slot is 160 samples of RTP timestamp. The buffer is a fixed ring of [`CAPACITY`]
//!   slots (about 16 KiB) allocated once; packets are written into slots by timestamp (a 40 ms packet fills two
//!   slots, a 10 ms packet half of one), so no allocation happens per packet. Sample coverage is
//!   tracked in 10-sample blocks, which is how duplicates are recognised; uncovered samples of a
//!   partly filled slot are the codec's silence byte ([`PCMU_SILENCE`] unless
//!   [`JitterBuffer::with_silence`] says otherwise).
//! * Timestamps and sequence numbers are compared in serial-number arithmetic, so the 16-bit
//!   sequence and 32-bit timestamp wraparounds are invisible.
//! * **Start**: playout starts once `depth` slots are buffered, or once the first packet has waited
//!   `depth` pops (so a lone packet is still played). Before that, pops return [`Frame::Idle`].
//! * **Loss**: a slot with nothing in it while later audio is buffered is played as
//!   [`Frame::Missing`] and counted in [`Stats::lost`]; a packet for a slot already played is
//!   [`Push::Late`]. Every `Missing` after playout started counts in `lost`.
//! * **Underrun** (the buffer is empty when a slot is due: sender on hold, silence suppression,
//!   network stall, sender clock slower than ours): the pop returns [`Frame::Missing`], the play
//!   position freezes, and the next packet re-buffers to `depth` before playout resumes; this adds
//!   delay instead of discarding audio that was merely delayed. After [`STOP_AFTER_SLOTS`] empty
//!   pops the stream counts as stopped and pops return [`Frame::Idle`] (not counted as lost).
//!   Nothing grows while nothing arrives.
//! * **Latency trim** (sender clock faster than ours, or a burst after a stall): if the buffered
//!   depth stayed above `depth + 1` for a whole second of pops, one frame is dropped; an empty slot
//!   at the head is skipped at once whenever the depth is above `depth + 1`.
//! * **Resync**: a new SSRC, a sequence jump beyond RFC 3550's limits, or a timestamp more than
//!   [`CAPACITY`] slots away from the play position (in either direction: "too early" included)
//!   flush the buffer and start again from the new packet ([`Push::Resynced`]).
//!
//! Push only PCMU/PCMA payloads here; telephone-event and comfort-noise packets belong to
//! [`crate::dtmf`] and the media loop respectively.
//!
//! ```
//! use sip_gateway::jitter::{Frame, JitterBuffer, Push};
//!
//! let mut jb = JitterBuffer::new(2);
//! assert_eq!(jb.push(1, 0, 0xcafe, true, &[0x55; 160]), Push::Accepted);
//! assert_eq!(jb.push(2, 160, 0xcafe, false, &[0x66; 160]), Push::Accepted);
//! assert_eq!(jb.pop(), Frame::Audio([0x55; 160]));
//! assert_eq!(jb.pop(), Frame::Audio([0x66; 160]));
//! assert_eq!(jb.pop(), Frame::Missing); // nothing arrived: silence, time keeps running
//! ```

/// Samples (and bytes: G.711 is one byte per sample) in one 20 ms frame at 8 kHz; the unit of
/// playout.
pub const FRAME_SAMPLES: usize = 160;

/// Number of frame slots the ring holds (2 s): the furthest ahead a packet may land, and the
/// bound on buffered state whatever the network does.
pub const CAPACITY: usize = 100;

/// Largest target depth [`JitterBuffer::new`] accepts (1 s); larger requests are clamped so the
/// latency trim always has room inside the ring.
pub const MAX_DEPTH: usize = CAPACITY / 2;

/// Consecutive empty pops after which the stream counts as stopped and pops return
/// [`Frame::Idle`] instead of [`Frame::Missing`] (1 s).
pub const STOP_AFTER_SLOTS: u32 = 50;

/// G.711 μ-law (PCMU) encoding of a zero sample: the default fill for uncovered samples.
pub const PCMU_SILENCE: u8 = 0xFF;

/// G.711 A-law (PCMA) encoding of a zero sample, for [`JitterBuffer::with_silence`].
pub const PCMA_SILENCE: u8 = 0xD5;

/// Pops over which the minimum depth is measured before trimming one frame (1 s).
const DRIFT_WINDOW: u32 = 50;
/// Frames above the target depth tolerated before trimming.
const DRIFT_MARGIN: usize = 1;
/// RFC 3550 appendix A.1: a sequence number this far ahead is a jump, not loss.
const MAX_DROPOUT: u16 = 3000;
/// RFC 3550 appendix A.1: a sequence number up to this far behind is reordering, not a jump.
const MAX_MISORDER: u16 = 100;
/// Granularity of sample coverage inside a slot (16 blocks of 10 samples = 160).
const BLOCK_SAMPLES: usize = 10;
/// Samples covered by the whole ring.
const WINDOW_SAMPLES: i64 = (CAPACITY * FRAME_SAMPLES) as i64;
const FRAME_SAMPLES_I64: i64 = FRAME_SAMPLES as i64;

/// What [`JitterBuffer::push`] did with a packet, so the media loop can count and log it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Push {
    /// The packet (or the part of it still ahead of the play position) is buffered.
    Accepted,
    /// Every sample of the packet was already buffered: a network or sender duplicate.
    Duplicate,
    /// The packet's slots were already played (as audio or as [`Frame::Missing`]); dropped.
    Late,
    /// The packet had no payload; nothing to buffer.
    Empty,
    /// The packet did not fit the current stream, so the buffer was flushed and restarted with
    /// this packet as its first (which is buffered).
    Resynced(Resync),
}

/// Why the buffer restarted, for logs and metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resync {
    /// The SSRC changed: another source (transfer, re-INVITE, media server switch).
    NewSource,
    /// The sequence number jumped further than RFC 3550 allows for loss or reordering.
    SequenceJump,
    /// The timestamp is more than [`CAPACITY`] slots ahead of or behind the play position.
    TimestampJump,
}

/// One 20 ms slot of playout, as returned by [`JitterBuffer::pop`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame {
    /// Audio for this slot: exactly [`FRAME_SAMPLES`] G.711 bytes; samples no packet covered
    /// (a 10 ms packet lost out of two) hold the silence byte.
    Audio([u8; FRAME_SAMPLES]),
    /// Playout is running but this slot has no audio (lost, late, sender paused, re-buffering):
    /// write silence or concealment so time stays aligned.
    Missing,
    /// No stream: playout has not started yet, or nothing has arrived for
    /// [`STOP_AFTER_SLOTS`] slots. The channel is silent.
    Idle,
}

/// Counters for call-quality metrics and logs: `received`, `duplicates`, `late` and `resyncs`
/// count packets; `lost`, `underrun`, `dropped` and `depth` count 20 ms slots.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    /// Packets passed to [`JitterBuffer::push`], whatever became of them.
    pub received: u64,
    /// Packets whose samples were all buffered already.
    pub duplicates: u64,
    /// Packets that arrived after their slots were played.
    pub late: u64,
    /// Slots played as [`Frame::Missing`] after playout started, whatever the cause: the
    /// caller's channel had silence there instead of audio.
    pub lost: u64,
    /// The part of `lost` where the buffer was empty or re-buffering (sender paused, silence
    /// suppression, network stall, slow sender clock, or a loss burst longer than the buffer);
    /// `lost - underrun` are holes with later audio already buffered.
    pub underrun: u64,
    /// Slots discarded unplayed to bring latency back to the target depth.
    pub dropped: u64,
    /// Times the buffer was flushed and restarted ([`Push::Resynced`]).
    pub resyncs: u64,
    /// Slots currently buffered, from the play position to the furthest received sample.
    pub depth: usize,
    /// SSRC of the stream being played (the latest source), for RTCP report blocks; `None`
    /// before the first packet.
    pub ssrc: Option<u32>,
}

/// Receive-side jitter buffer for one RTP audio stream; see the [module docs](self) for the model.
#[derive(Debug, Clone)]
pub struct JitterBuffer {
    target: usize,
    silence: u8,
    ring: Box<[Slot; CAPACITY]>,
    /// Ring index of the slot at the play position.
    head: usize,
    /// RTP timestamp of the first sample of the slot at `head`.
    head_ts: u32,
    /// Slots from `head` through the furthest one holding any sample; 0 when empty.
    span: usize,
    phase: Phase,
    /// Timestamp up to which output has been produced since the last (re)start: nothing before
    /// it may be buffered again. `None` until the first slot is played.
    played_to: Option<u32>,
    /// Playout has started and the stream has not stopped: empty slots are `Missing`, not `Idle`.
    streaming: bool,
    empty_pops: u32,
    source: Option<Source>,
    drift: Drift,
    stats: Stats,
}

#[derive(Debug, Clone, Copy)]
struct Slot {
    samples: [u8; FRAME_SAMPLES],
    /// Bit `i` set: some of samples `10 * i .. 10 * i + 10` arrived.
    covered: u16,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Nothing buffered: before the first packet, or after an underrun.
    Waiting,
    /// Anchored on a packet, filling up to the target depth; `waited` pops so far.
    Buffering { waited: usize },
    /// Each pop plays the head slot.
    Playing,
}

#[derive(Debug, Clone, Copy)]
struct Source {
    ssrc: u32,
    max_seq: u16,
}

#[derive(Debug, Clone, Copy)]
struct Drift {
    pops: u32,
    min_depth: usize,
}

impl Drift {
    const NEW: Drift = Drift {
        pops: 0,
        min_depth: usize::MAX,
    };
}

impl JitterBuffer {
    /// A buffer that starts playout once `depth` frames (20 ms each) are buffered; 2–3 suits most
    /// networks. `depth` is clamped to `1..=`[`MAX_DEPTH`].
    pub fn new(depth: usize) -> Self {
        let silence = PCMU_SILENCE;
        JitterBuffer {
            target: depth.clamp(1, MAX_DEPTH),
            silence,
            ring: Box::new([Slot::silent(silence); CAPACITY]),
            head: 0,
            head_ts: 0,
            span: 0,
            phase: Phase::Waiting,
            played_to: None,
            streaming: false,
            empty_pops: 0,
            source: None,
            drift: Drift::NEW,
            stats: Stats::default(),
        }
    }

    /// Sets the byte written into samples no packet covered: [`PCMU_SILENCE`] (the default) for
    /// PCMU, [`PCMA_SILENCE`] for PCMA. A PCMA call must set it, or a partly filled slot decodes
    /// with a DC step. Call before the first push.
    pub fn with_silence(mut self, silence: u8) -> Self {
        self.silence = silence;
        for slot in self.ring.iter_mut() {
            *slot = Slot::silent(silence);
        }
        self
    }

    /// The target depth in frames, after clamping.
    pub fn target_depth(&self) -> usize {
        self.target
    }

    /// Counters so far, with the current depth.
    pub fn stats(&self) -> Stats {
        Stats {
            depth: self.span,
            ssrc: self.source.map(|source| source.ssrc),
            ..self.stats
        }
    }

    /// Buffers one received RTP packet's G.711 payload. `seq`, `timestamp` and `ssrc` come from
    /// its RTP header. `marker` (start of a talkspurt) is accepted for completeness but not needed:
    /// the timestamp alone places the packet, and the gap before a talkspurt is handled as an
    /// underrun. Any input is safe: nothing here can panic or grow beyond [`CAPACITY`].
    pub fn push(
        &mut self,
        seq: u16,
        timestamp: u32,
        ssrc: u32,
        marker: bool,
        payload: &[u8],
    ) -> Push {
        let _ = marker;
        self.stats.received += 1;
        if payload.is_empty() {
            return Push::Empty;
        }
        let Some(source) = self.source.as_mut() else {
            self.restart(ssrc, seq, timestamp);
            return self.write(0, payload);
        };
        if source.ssrc != ssrc {
            return self.resync(Resync::NewSource, ssrc, seq, timestamp, payload);
        }
        let ahead = seq.wrapping_sub(source.max_seq);
        if ahead < MAX_DROPOUT {
            source.max_seq = seq;
        } else if ahead < u16::MAX - MAX_MISORDER {
            return self.resync(Resync::SequenceJump, ssrc, seq, timestamp, payload);
        }

        let len = payload.len() as i64;
        match self.phase {
            Phase::Waiting => {
                let anchor = match self.played_to {
                    None => timestamp,
                    Some(floor) => {
                        let rel = serial_diff(timestamp, floor);
                        if rel < -WINDOW_SAMPLES {
                            return self.resync(
                                Resync::TimestampJump,
                                ssrc,
                                seq,
                                timestamp,
                                payload,
                            );
                        }
                        if rel + len <= 0 {
                            self.stats.late += 1;
                            return Push::Late;
                        }
                        // A packet straddling the floor keeps only its unplayed part.
                        if rel < 0 { floor } else { timestamp }
                    }
                };
                self.head_ts = anchor;
                self.phase = Phase::Buffering { waited: 0 };
                self.write(serial_diff(timestamp, anchor), payload)
            }
            Phase::Buffering { .. } | Phase::Playing => {
                let mut rel = serial_diff(timestamp, self.head_ts);
                if !(-WINDOW_SAMPLES..WINDOW_SAMPLES).contains(&rel) {
                    return self.resync(Resync::TimestampJump, ssrc, seq, timestamp, payload);
                }
                if rel < 0 && self.phase != Phase::Playing {
                    rel = self.extend_back(rel);
                }
                self.write(rel, payload)
            }
        }
    }

    /// Plays the next 20 ms slot. Call exactly once every 20 ms of the media clock, whether or not
    /// packets arrived.
    pub fn pop(&mut self) -> Frame {
        match self.phase {
            Phase::Waiting => self.pop_empty(),
            Phase::Buffering { waited } => {
                if self.span >= self.target || waited >= self.target {
                    self.phase = Phase::Playing;
                    self.streaming = true;
                    self.drift = Drift::NEW;
                    self.pop_playing()
                } else {
                    self.phase = Phase::Buffering { waited: waited + 1 };
                    if self.streaming {
                        self.stats.lost += 1;
                        self.stats.underrun += 1;
                        Frame::Missing
                    } else {
                        Frame::Idle
                    }
                }
            }
            Phase::Playing => self.pop_playing(),
        }
    }

    fn pop_playing(&mut self) -> Frame {
        if self.span == 0 {
            // Underrun: freeze the play position and re-buffer from the next packet.
            self.phase = Phase::Waiting;
            self.played_to = Some(self.head_ts);
            self.empty_pops = 0;
            return self.pop_empty();
        }
        self.trim_latency();
        let slot = self.take_head();
        if slot.covered == 0 {
            self.stats.lost += 1;
            Frame::Missing
        } else {
            Frame::Audio(slot.samples)
        }
    }

    fn pop_empty(&mut self) -> Frame {
        if !self.streaming {
            return Frame::Idle;
        }
        self.empty_pops = self.empty_pops.saturating_add(1);
        if self.empty_pops > STOP_AFTER_SLOTS {
            self.streaming = false;
            return Frame::Idle;
        }
        self.stats.lost += 1;
        self.stats.underrun += 1;
        Frame::Missing
    }

    /// Drops a frame after a second spent above `target + margin`, and skips empty head slots
    /// while above it. Leaves at least `target` slots, so never empties the buffer.
    fn trim_latency(&mut self) {
        let ceiling = self.target + DRIFT_MARGIN;
        self.drift.min_depth = self.drift.min_depth.min(self.span);
        self.drift.pops += 1;
        if self.drift.pops >= DRIFT_WINDOW {
            if self.drift.min_depth > ceiling {
                self.take_head();
                self.stats.dropped += 1;
            }
            self.drift = Drift::NEW;
        }
        while self.span > ceiling && self.slot(0).covered == 0 {
            self.take_head();
            self.stats.dropped += 1;
        }
    }

    /// Removes the head slot, advances the play position, and returns what the slot held.
    fn take_head(&mut self) -> Slot {
        let fresh = Slot::silent(self.silence);
        let slot = std::mem::replace(self.slot_mut(0), fresh);
        self.head = (self.head + 1) % CAPACITY;
        self.head_ts = self.head_ts.wrapping_add(FRAME_SAMPLES as u32);
        self.span = self.span.saturating_sub(1);
        self.played_to = Some(self.head_ts);
        slot
    }

    /// Before playout, lets a reordered packet that belongs before the first one move the play
    /// position back, as long as that neither exceeds the trim ceiling nor replays old time.
    /// Returns the packet's offset from the (possibly new) play position.
    fn extend_back(&mut self, rel: i64) -> i64 {
        let slots = usize::try_from(rel.unsigned_abs())
            .unwrap_or(usize::MAX)
            .div_ceil(FRAME_SAMPLES);
        if self.span.saturating_add(slots) > self.target + DRIFT_MARGIN {
            return rel;
        }
        // `slots` is at most MAX_DEPTH + 1 here, so these conversions are exact.
        let back = (slots * FRAME_SAMPLES) as u32;
        let new_ts = self.head_ts.wrapping_sub(back);
        if let Some(floor) = self.played_to
            && serial_diff(new_ts, floor) < 0
        {
            return rel;
        }
        self.head = (self.head + CAPACITY - slots % CAPACITY) % CAPACITY;
        self.head_ts = new_ts;
        self.span += slots;
        rel + i64::from(back)
    }

    fn resync(
        &mut self,
        cause: Resync,
        ssrc: u32,
        seq: u16,
        timestamp: u32,
        payload: &[u8],
    ) -> Push {
        self.stats.resyncs += 1;
        self.restart(ssrc, seq, timestamp);
        self.write(0, payload);
        Push::Resynced(cause)
    }

    /// Flushes everything and anchors a new timeline at `timestamp`. Keeps `streaming`: a source
    /// change mid-call still needs time to run on.
    fn restart(&mut self, ssrc: u32, seq: u16, timestamp: u32) {
        for slot in self.ring.iter_mut() {
            *slot = Slot::silent(self.silence);
        }
        self.head = 0;
        self.head_ts = timestamp;
        self.span = 0;
        self.phase = Phase::Buffering { waited: 0 };
        self.played_to = None;
        self.empty_pops = 0;
        self.source = Some(Source { ssrc, max_seq: seq });
        self.drift = Drift::NEW;
    }

    /// Copies `payload`, whose first sample is `rel` samples after the play position, into the
    /// slots it covers inside the ring; parts before the play position or beyond the ring are cut.
    fn write(&mut self, rel: i64, payload: &[u8]) -> Push {
        let start = rel.max(0);
        let end = rel.saturating_add(payload.len() as i64).min(WINDOW_SAMPLES);
        if start >= end {
            self.stats.late += 1;
            return Push::Late;
        }
        // 0 <= start < end <= WINDOW_SAMPLES, so slot numbers are below CAPACITY.
        let first = (start / FRAME_SAMPLES_I64) as usize;
        let last = ((end - 1) / FRAME_SAMPLES_I64) as usize;
        let pieces = (first..=last).map(move |k| {
            let slot_start = k as i64 * FRAME_SAMPLES_I64;
            let lo = (start.max(slot_start) - slot_start) as usize;
            let hi = (end.min(slot_start + FRAME_SAMPLES_I64) - slot_start) as usize;
            let from = (slot_start + lo as i64 - rel) as usize;
            (k, lo, hi, from)
        });
        let fresh = pieces.clone().any(|(k, lo, hi, _)| {
            let mask = block_mask(lo, hi);
            self.slot(k).covered & mask != mask
        });
        if !fresh {
            self.stats.duplicates += 1;
            return Push::Duplicate;
        }
        for (k, lo, hi, from) in pieces {
            let slot = self.slot_mut(k);
            if let (Some(dst), Some(src)) = (slot.samples.get_mut(lo..hi), payload.get(from..)) {
                for (d, s) in dst.iter_mut().zip(src) {
                    *d = *s;
                }
                slot.covered |= block_mask(lo, hi);
            }
        }
        self.span = self.span.max(last + 1);
        Push::Accepted
    }

    /// The slot `offset` frames after the play position. The modulo keeps every index inside the
    /// ring, so no input can make this panic.
    fn slot(&self, offset: usize) -> &Slot {
        &self.ring[(self.head + offset) % CAPACITY]
    }

    fn slot_mut(&mut self, offset: usize) -> &mut Slot {
        &mut self.ring[(self.head + offset) % CAPACITY]
    }
}

impl Slot {
    fn silent(silence: u8) -> Slot {
        Slot {
            samples: [silence; FRAME_SAMPLES],
            covered: 0,
        }
    }
}

/// `a - b` in RTP timestamp serial arithmetic: positive when `a` is later.
fn serial_diff(a: u32, b: u32) -> i64 {
    i64::from(a.wrapping_sub(b) as i32)
}

/// Coverage bits for samples `lo..hi` of a slot (`lo < hi <= FRAME_SAMPLES`).
fn block_mask(lo: usize, hi: usize) -> u16 {
    let first = lo / BLOCK_SAMPLES;
    let last = hi.saturating_sub(1) / BLOCK_SAMPLES;
    let bits = (1u32 << (last + 1).min(16)) - (1u32 << first.min(16));
    bits as u16
}

#[cfg(test)]
mod tests {
    use super::*;

    const SSRC: u32 = 0x1234_5678;

    /// A frame whose every byte says which packet it came from (never the silence byte).
    fn voice(n: u32) -> [u8; FRAME_SAMPLES] {
        [(n % 200) as u8; FRAME_SAMPLES]
    }

    /// Pushes 20 ms packet `n` of a stream starting at (`seq0`, `ts0`).
    fn push_nth(jb: &mut JitterBuffer, seq0: u16, ts0: u32, n: u32) -> Push {
        let seq = seq0.wrapping_add(n as u16);
        let ts = ts0.wrapping_add(n * FRAME_SAMPLES as u32);
        jb.push(seq, ts, SSRC, n == 0, &voice(n))
    }

    fn audio(n: u32) -> Frame {
        Frame::Audio(voice(n))
    }

    #[test]
    fn in_order_stream_plays_every_frame_after_the_target_depth() {
        let mut jb = JitterBuffer::new(3);
        assert_eq!(jb.pop(), Frame::Idle, "nothing received yet");
        for n in 0..3 {
            assert_eq!(push_nth(&mut jb, 100, 1000, n), Push::Accepted);
        }
        for n in 3..200 {
            assert_eq!(jb.pop(), audio(n - 3));
            assert_eq!(push_nth(&mut jb, 100, 1000, n), Push::Accepted);
        }
        let stats = jb.stats();
        assert_eq!(
            (stats.received, stats.lost, stats.late, stats.duplicates),
            (200, 0, 0, 0)
        );
        assert_eq!(stats.depth, 3);
    }

    #[test]
    fn the_deepest_buffer_delays_by_its_depth_and_drops_nothing() {
        let mut jb = JitterBuffer::new(MAX_DEPTH + 10);
        assert_eq!((jb.target_depth(), jb.stats().ssrc), (MAX_DEPTH, None));
        let mut out = Vec::new();
        for n in 0..500 {
            push_nth(&mut jb, 0, 0, n);
            out.push(jb.pop());
        }
        let first_audio = out.iter().position(|f| matches!(f, Frame::Audio(_)));
        assert_eq!(first_audio, Some(MAX_DEPTH - 1));
        assert_eq!(
            out[MAX_DEPTH - 1..].to_vec(),
            (0..(501 - MAX_DEPTH) as u32).map(audio).collect::<Vec<_>>()
        );
        let stats = jb.stats();
        assert_eq!((stats.lost, stats.dropped, stats.ssrc), (0, 0, Some(SSRC)));
    }

    #[test]
    fn playout_waits_for_depth_then_starts() {
        let mut jb = JitterBuffer::new(2);
        push_nth(&mut jb, 0, 0, 0);
        assert_eq!(jb.pop(), Frame::Idle, "one frame of two buffered");
        push_nth(&mut jb, 0, 0, 1);
        assert_eq!(jb.pop(), audio(0));
    }

    #[test]
    fn a_lone_packet_is_played_after_waiting_depth_pops() {
        let mut jb = JitterBuffer::new(3);
        push_nth(&mut jb, 0, 0, 0);
        assert_eq!(
            [jb.pop(), jb.pop(), jb.pop()],
            [Frame::Idle, Frame::Idle, Frame::Idle]
        );
        assert_eq!(jb.pop(), audio(0));
        assert_eq!(jb.pop(), Frame::Missing);
    }

    #[test]
    fn reordering_within_depth_is_repaired() {
        let mut jb = JitterBuffer::new(3);
        // Arrival order 1, 0, 2, then pairs swapped: 4, 3, 6, 5, ...
        let order: Vec<u32> = [1, 0, 2]
            .into_iter()
            .chain((3..101).map(|n| if n % 2 == 1 { n + 1 } else { n - 1 }))
            .collect();
        let mut played = Vec::new();
        for (i, &n) in order.iter().enumerate() {
            assert_eq!(push_nth(&mut jb, 7, 7, n), Push::Accepted, "packet {n}");
            if i >= 2 {
                played.push(jb.pop());
            }
        }
        let expected: Vec<Frame> = (0..played.len() as u32).map(audio).collect();
        assert_eq!(played, expected);
        assert_eq!(jb.stats().lost, 0);
    }

    #[test]
    fn lost_packets_are_missing_for_exactly_their_slots() {
        let mut jb = JitterBuffer::new(3);
        let lost = [10, 11, 12, 40, 77];
        let mut out = Vec::new();
        for n in 0..103 {
            if !lost.contains(&n) {
                push_nth(&mut jb, 0, 0, n);
            }
            if n >= 2 {
                out.push(jb.pop());
            }
        }
        assert_eq!(out.len(), 101);
        for (n, frame) in out.iter().enumerate() {
            let n = n as u32;
            let want = if lost.contains(&n) {
                Frame::Missing
            } else {
                audio(n)
            };
            assert_eq!(*frame, want, "slot {n}");
        }
        // The burst of three outlasted the buffer (depth 3, two frames left): an underrun.
        assert_eq!(jb.stats().lost, lost.len() as u64);
        assert_eq!(jb.stats().underrun, 3);
    }

    #[test]
    fn duplicates_are_reported_and_played_once() {
        let mut jb = JitterBuffer::new(2);
        assert_eq!(push_nth(&mut jb, 0, 0, 0), Push::Accepted);
        assert_eq!(push_nth(&mut jb, 0, 0, 0), Push::Duplicate);
        assert_eq!(push_nth(&mut jb, 0, 0, 1), Push::Accepted);
        assert_eq!(push_nth(&mut jb, 0, 0, 1), Push::Duplicate);
        assert_eq!(
            [jb.pop(), jb.pop(), jb.pop()],
            [audio(0), audio(1), Frame::Missing]
        );
        assert_eq!(jb.stats().duplicates, 2);
        // A duplicate of a frame already played is late, not replayed.
        assert_eq!(push_nth(&mut jb, 0, 0, 1), Push::Late);
    }

    #[test]
    fn late_packet_is_dropped_after_its_slot_played_as_missing() {
        let mut jb = JitterBuffer::new(2);
        for n in [0, 1, 3, 4] {
            push_nth(&mut jb, 0, 0, n);
        }
        assert_eq!(
            [jb.pop(), jb.pop(), jb.pop()],
            [audio(0), audio(1), Frame::Missing]
        );
        assert_eq!(push_nth(&mut jb, 0, 0, 2), Push::Late);
        assert_eq!(jb.pop(), audio(3));
        let stats = jb.stats();
        assert_eq!((stats.late, stats.lost), (1, 1));
    }

    #[test]
    fn sequence_and_timestamp_wraparound_are_seamless() {
        let mut jb = JitterBuffer::new(2);
        let seq0 = u16::MAX - 5;
        let ts0 = u32::MAX - 7 * FRAME_SAMPLES as u32 + 1;
        let mut out = Vec::new();
        for n in 0..30 {
            // Swap 6 and 7 so a reordered packet straddles both wraps.
            let n = match n {
                6 => 7,
                7 => 6,
                n => n,
            };
            assert_eq!(
                push_nth(&mut jb, seq0, ts0, n),
                Push::Accepted,
                "packet {n}"
            );
            if n >= 1 && n != 6 {
                out.push(jb.pop());
            }
        }
        let expected: Vec<Frame> = (0..out.len() as u32).map(audio).collect();
        assert_eq!(out, expected);
        assert_eq!(jb.stats().resyncs, 0);
    }

    #[test]
    fn ssrc_change_resyncs_to_the_new_source() {
        let mut jb = JitterBuffer::new(2);
        for n in 0..5 {
            push_nth(&mut jb, 0, 0, n);
        }
        assert_eq!(jb.pop(), audio(0));
        assert_eq!(
            jb.push(9000, 123_456, 0xBEEF, true, &voice(99)),
            Push::Resynced(Resync::NewSource)
        );
        assert_eq!(
            jb.push(9001, 123_616, 0xBEEF, false, &voice(98)),
            Push::Accepted
        );
        assert_eq!([jb.pop(), jb.pop()], [audio(99), audio(98)]);
        let stats = jb.stats();
        assert_eq!((stats.resyncs, stats.ssrc), (1, Some(0xBEEF)));
        // The old source is gone: its packets now count as a new source change again.
        assert_eq!(
            push_nth(&mut jb, 0, 0, 5),
            Push::Resynced(Resync::NewSource)
        );
    }

    #[test]
    fn timestamp_jump_far_ahead_resyncs() {
        let mut jb = JitterBuffer::new(2);
        for n in 0..3 {
            push_nth(&mut jb, 0, 0, n);
        }
        jb.pop();
        let far = (CAPACITY as u32 + 10) * FRAME_SAMPLES as u32;
        assert_eq!(
            jb.push(3, far, SSRC, false, &voice(50)),
            Push::Resynced(Resync::TimestampJump)
        );
        assert_eq!(
            jb.push(4, far + 160, SSRC, false, &voice(51)),
            Push::Accepted
        );
        // The new timeline starts at the jump: nothing of the old one is left to play.
        assert_eq!([jb.pop(), jb.pop()], [audio(50), audio(51)]);
    }

    #[test]
    fn sequence_jump_resyncs() {
        let mut jb = JitterBuffer::new(2);
        push_nth(&mut jb, 0, 0, 0);
        assert_eq!(
            jb.push(20_000, 160, SSRC, false, &voice(1)),
            Push::Resynced(Resync::SequenceJump)
        );
        // Reordering by less than 100 is not a jump.
        assert_eq!(jb.push(19_950, 0, SSRC, false, &voice(0)), Push::Accepted);
    }

    #[test]
    fn forty_ms_packets_fill_two_slots() {
        let mut jb = JitterBuffer::new(2);
        let mut packet = [0u8; 2 * FRAME_SAMPLES];
        for (i, b) in packet.iter_mut().enumerate() {
            *b = (i / FRAME_SAMPLES) as u8 + 1;
        }
        assert_eq!(jb.push(0, 0, SSRC, true, &packet), Push::Accepted);
        assert_eq!(jb.stats().depth, 2);
        assert_eq!(jb.pop(), Frame::Audio([1; FRAME_SAMPLES]));
        assert_eq!(jb.pop(), Frame::Audio([2; FRAME_SAMPLES]));
        assert_eq!(jb.push(0, 0, SSRC, true, &packet), Push::Late);
    }

    #[test]
    fn ten_and_thirty_ms_packets_are_assembled_into_slots() {
        let mut jb = JitterBuffer::new(2);
        // 30 ms, then 10 ms: exactly two slots.
        assert_eq!(jb.push(0, 0, SSRC, true, &[1; 240]), Push::Accepted);
        assert_eq!(jb.push(1, 240, SSRC, false, &[2; 80]), Push::Accepted);
        assert_eq!(jb.push(1, 240, SSRC, false, &[2; 80]), Push::Duplicate);
        // Only the first half of the third slot arrives: the rest is padded with silence.
        assert_eq!(jb.push(2, 320, SSRC, false, &[3; 80]), Push::Accepted);
        assert_eq!(jb.pop(), Frame::Audio([1; 160]));
        let mut second = [1; 160];
        second[80..].fill(2);
        assert_eq!(jb.pop(), Frame::Audio(second));
        let mut third = [PCMU_SILENCE; 160];
        third[..80].fill(3);
        assert_eq!(jb.pop(), Frame::Audio(third));
    }

    #[test]
    fn pcma_silence_pads_partial_slots() {
        let mut jb = JitterBuffer::new(1).with_silence(PCMA_SILENCE);
        jb.push(0, 0, SSRC, true, &[7; 80]);
        let mut want = [PCMA_SILENCE; 160];
        want[..80].fill(7);
        assert_eq!(jb.pop(), Frame::Audio(want));
    }

    #[test]
    fn sender_pause_gives_missing_then_idle_and_resumes_without_growing() {
        let mut jb = JitterBuffer::new(2);
        for n in 0..10 {
            push_nth(&mut jb, 0, 0, n);
            if n >= 1 {
                assert_eq!(jb.pop(), audio(n - 1));
            }
        }
        assert_eq!(jb.pop(), audio(9));
        // On hold: the sender is silent for 10 minutes.
        let mut missing = 0;
        for _ in 0..30_000 {
            match jb.pop() {
                Frame::Missing => missing += 1,
                Frame::Idle => {}
                Frame::Audio(_) => panic!("audio from nowhere"),
            }
            assert_eq!(jb.stats().depth, 0);
        }
        assert_eq!(missing, STOP_AFTER_SLOTS);
        assert_eq!(jb.stats().underrun, u64::from(STOP_AFTER_SLOTS));
        assert_eq!(jb.stats().lost, u64::from(STOP_AFTER_SLOTS));
        // The sender resumes where its clock now is (timestamps kept running): playout restarts.
        // Sequence numbers continue where they stopped; the timestamp has moved on by 10 minutes.
        let resume_ts = (10 + 30_000) * FRAME_SAMPLES as u32;
        assert_eq!(
            jb.push(10, resume_ts, SSRC, true, &voice(10)),
            Push::Accepted
        );
        assert_eq!(
            jb.push(11, resume_ts + 160, SSRC, false, &voice(11)),
            Push::Accepted
        );
        assert_eq!(jb.pop(), audio(10));
        assert_eq!(jb.pop(), audio(11));
        assert_eq!(jb.stats().resyncs, 0);
    }

    #[test]
    fn short_stall_rebuffers_instead_of_losing_delayed_audio() {
        let mut jb = JitterBuffer::new(2);
        for n in 0..4 {
            push_nth(&mut jb, 0, 0, n);
        }
        let mut out: Vec<Frame> = (0..6).map(|_| jb.pop()).collect();
        // Packets 4.. arrive 40 ms late, all of them: none is lost, the delay grows instead.
        for n in 4..40 {
            push_nth(&mut jb, 0, 0, n);
            out.push(jb.pop());
        }
        let audio_out: Vec<&Frame> = out
            .iter()
            .filter(|f| matches!(f, Frame::Audio(_)))
            .collect();
        let expected: Vec<Frame> = (0..audio_out.len() as u32).map(audio).collect();
        assert_eq!(audio_out.into_iter().cloned().collect::<Vec<_>>(), expected);
        assert!(out.iter().all(|f| *f != Frame::Idle));
        let stats = jb.stats();
        assert_eq!(stats.late, 0);
        assert!(stats.underrun > 0);
        assert_eq!(stats.lost, stats.underrun, "no hole, only re-buffering");
    }

    #[test]
    fn burst_after_ahead_jump_skips_the_hole_at_once() {
        let mut jb = JitterBuffer::new(2);
        for n in 0..3 {
            push_nth(&mut jb, 0, 0, n);
        }
        assert_eq!(jb.pop(), audio(0));
        // The timestamp leaps 600 ms forward (within the ring): the hole is skipped, not played.
        for n in 32..35 {
            push_nth(&mut jb, 0, 0, n);
        }
        assert_eq!(
            [jb.pop(), jb.pop(), jb.pop()],
            [audio(1), audio(2), audio(32)]
        );
    }

    /// Simulates a sender whose 20 ms is `period_us` of our clock, with deterministic network
    /// jitter up to `jitter_us`, for `pops` pops. Returns stats, the maximum depth seen, and how
    /// many pops were audio; checks that audio is played in order and never twice.
    fn simulate(depth: usize, period_us: u64, jitter_us: u64, pops: u64) -> (Stats, usize, u64) {
        let mut rng = XorShift(0x9E37_79B9_7F4A_7C15);
        let packets = pops * 20_000 / period_us + 100;
        let mut arrivals: Vec<(u64, u32)> = (0..packets as u32)
            .map(|n| {
                (
                    u64::from(n) * period_us + 30_000 + rng.below(jitter_us + 1),
                    n,
                )
            })
            .collect();
        arrivals.sort_unstable();
        let mut jb = JitterBuffer::new(depth);
        let mut next = arrivals.iter().peekable();
        let (mut max_depth, mut audio_frames, mut last_played) = (0, 0, None::<u32>);
        for pop in 0..pops {
            let now = pop * 20_000 + 7_000;
            while let Some(&&(_, n)) = next.peek().filter(|(at, _)| *at <= now) {
                // Frame id in the first two bytes: the payload identifies its packet.
                let mut payload = [0x42u8; FRAME_SAMPLES];
                payload[..4].copy_from_slice(&n.to_be_bytes());
                jb.push(n as u16, n.wrapping_mul(160), SSRC, n == 0, &payload);
                next.next();
            }
            if let Frame::Audio(samples) = jb.pop() {
                let id = u32::from_be_bytes([samples[0], samples[1], samples[2], samples[3]]);
                assert!(
                    last_played.is_none_or(|last| id > last),
                    "frame {id} after {last_played:?}"
                );
                last_played = Some(id);
                audio_frames += 1;
            }
            max_depth = max_depth.max(jb.stats().depth);
        }
        (jb.stats(), max_depth, audio_frames)
    }

    const THIRTY_MINUTES: u64 = 30 * 60 * 50;

    #[test]
    fn thirty_minutes_with_a_fast_sender_stays_bounded() {
        // 0.1 % faster: 90 frames too many over 30 minutes.
        let (stats, max_depth, audio) = simulate(3, 19_980, 15_000, THIRTY_MINUTES);
        assert!(max_depth <= 3 + DRIFT_MARGIN + 2, "max depth {max_depth}");
        assert!((80..=110).contains(&stats.dropped), "{stats:?}");
        assert_eq!(
            (stats.lost, stats.late, stats.resyncs),
            (0, 0, 0),
            "{stats:?}"
        );
        assert!(audio >= THIRTY_MINUTES - 10, "{audio} audio frames");
    }

    #[test]
    fn thirty_minutes_with_a_slow_sender_stays_bounded() {
        // 0.1 % slower: 90 frames too few over 30 minutes, filled by re-buffering.
        let (stats, max_depth, audio) = simulate(3, 20_020, 15_000, THIRTY_MINUTES);
        assert!(max_depth <= 3 + DRIFT_MARGIN + 2, "max depth {max_depth}");
        assert_eq!(
            (stats.late, stats.resyncs, stats.dropped),
            (0, 0, 0),
            "{stats:?}"
        );
        assert_eq!(
            stats.lost, stats.underrun,
            "only re-buffering, no hole: {stats:?}"
        );
        // Every frame the sender produced was played.
        assert!(
            audio + 100 >= THIRTY_MINUTES * 20_000 / 20_020,
            "{audio} audio frames"
        );
        assert!(stats.underrun > 0);
    }

    #[test]
    fn thirty_minutes_with_matched_clocks_and_jitter_below_depth_loses_nothing() {
        // Up to 40 ms of jitter against a 60 ms buffer: every frame arrives in time.
        let (stats, max_depth, audio) = simulate(3, 20_000, 40_000, THIRTY_MINUTES);
        assert!(max_depth <= 3 + DRIFT_MARGIN + 2, "max depth {max_depth}");
        assert_eq!(
            (stats.lost, stats.late, stats.dropped, stats.resyncs),
            (0, 0, 0, 0),
            "{stats:?}"
        );
        assert!(
            audio + 10 >= THIRTY_MINUTES,
            "{audio} audio frames, {stats:?}"
        );
    }

    #[test]
    fn jitter_beyond_the_depth_costs_little_audio_and_stays_bounded() {
        // 120 ms of jitter against a 60 ms buffer: re-buffering and trimming fight it out.
        let (stats, max_depth, audio) = simulate(3, 20_000, 120_000, THIRTY_MINUTES);
        assert!(
            max_depth <= 3 + DRIFT_MARGIN + 7,
            "max depth {max_depth}, {stats:?}"
        );
        assert!(
            audio * 10 >= THIRTY_MINUTES * 9,
            "{audio} audio frames, {stats:?}"
        );
        assert_eq!(stats.resyncs, 0);
    }

    struct XorShift(u64);

    impl XorShift {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }

        fn below(&mut self, n: u64) -> u64 {
            self.next() % n.max(1)
        }
    }

    #[test]
    fn deterministic_garbage_never_panics_and_stays_within_capacity() {
        let mut rng = XorShift(42);
        let payload = [0xA5u8; 3000];
        for depth in [0, 1, 3, 100] {
            let mut jb = JitterBuffer::new(depth);
            let (mut seq, mut ts) = (0u16, 0u32);
            for _ in 0..200_000 {
                let r = rng.next();
                match r % 8 {
                    0 => {
                        jb.pop();
                    }
                    1 => {
                        // Arbitrary header and size.
                        let len = rng.below(payload.len() as u64 + 1) as usize;
                        jb.push(
                            rng.next() as u16,
                            rng.next() as u32,
                            (r >> 8) as u32 % 3,
                            r & 1 == 0,
                            &payload[..len],
                        );
                    }
                    _ => {
                        // A plausible but noisy stream.
                        seq = seq.wrapping_add(rng.below(4) as u16).wrapping_sub(1);
                        ts = ts
                            .wrapping_add((rng.below(5) as u32) * 80)
                            .wrapping_sub(160);
                        let len = [0, 80, 160, 240, 320, 17][rng.below(6) as usize];
                        jb.push(seq, ts, 1, false, &payload[..len]);
                        jb.pop();
                    }
                }
                assert!(jb.stats().depth <= CAPACITY);
            }
        }
    }

    mod prop {
        use super::super::*;
        use proptest::prelude::*;

        #[derive(Debug, Clone)]
        enum Op {
            Pop,
            Push {
                seq: u16,
                ts: u32,
                ssrc: u32,
                marker: bool,
                len: usize,
            },
        }

        fn op() -> impl Strategy<Value = Op> {
            prop_oneof![
                Just(Op::Pop),
                (
                    any::<u16>(),
                    any::<u32>(),
                    0u32..3,
                    any::<bool>(),
                    0usize..2000
                )
                    .prop_map(|(seq, ts, ssrc, marker, len)| Op::Push {
                        seq,
                        ts,
                        ssrc,
                        marker,
                        len
                    }),
                // Near-sequential packets, so the buffer spends time in every phase.
                (0u16..8, 0u32..12, 0usize..400).prop_map(|(seq, slot, len)| Op::Push {
                    seq,
                    ts: slot * 80,
                    ssrc: 0,
                    marker: false,
                    len
                }),
            ]
        }

        proptest! {
            #[test]
            fn any_input_keeps_depth_within_capacity(depth in 0usize..60, ops in prop::collection::vec(op(), 0..400)) {
                let mut jb = JitterBuffer::new(depth);
                let payload = vec![0x11u8; 2000];
                let mut pops = 0u64;
                for op in ops {
                    match op {
                        Op::Pop => {
                            jb.pop();
                            pops += 1;
                        }
                        Op::Push { seq, ts, ssrc, marker, len } => {
                            jb.push(seq, ts, ssrc, marker, &payload[..len]);
                        }
                    }
                    let stats = jb.stats();
                    prop_assert!(stats.depth <= CAPACITY);
                    prop_assert!(stats.underrun <= stats.lost && stats.lost <= pops);
                }
            }
        }
    }
}
