//! DTMF digit recognition for the IVR: RFC 4733 telephone-events carried in RTP, and SIP INFO
//! bodies (`application/dtmf-relay`, `application/dtmf`).
//!
//! A caller's key press must reach the IVR exactly once, although RFC 4733 senders repeat every
//! event many times (updates with growing duration, then usually three end packets) and the
//! network may lose, duplicate or reorder any of them. [`TelephoneEventDetector`] turns that
//! packet stream into one [`Digit`] per press; [`parse_info`] reads the digit out of a SIP INFO
//! body. Both are sans-IO and take untrusted bytes: bad input is a [`DtmfError`] or is ignored,
//! never a panic.
//!
//! Not handled here: retransmitted SIP INFO requests (the same CSeq) are the transaction layer's
//! to absorb, and RFC 2198 redundant payloads must be unwrapped before calling the detector.
//!
//! ```
//! use sip_gateway::dtmf::{Digit, TelephoneEventDetector};
//!
//! let mut detector = TelephoneEventDetector::new();
//! // Event 5, volume 10, duration 400, first packet with the marker bit, then the end packet.
//! assert_eq!(detector.on_packet(8000, true, &[5, 10, 0x01, 0x90]), Ok(Some(Digit::D5)));
//! assert_eq!(detector.on_packet(8000, false, &[5, 0x80 | 10, 0x03, 0x20]), Ok(None));
//! ```

use std::fmt;
use std::time::Duration;

/// A DTMF key: the twelve keys of a telephone keypad plus the rarely used A–D column. This is
/// what the IVR consumes, whichever way the digit travelled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Digit {
    /// Key `0` (RFC 4733 event 0).
    D0,
    /// Key `1` (event 1).
    D1,
    /// Key `2` (event 2).
    D2,
    /// Key `3` (event 3).
    D3,
    /// Key `4` (event 4).
    D4,
    /// Key `5` (event 5).
    D5,
    /// Key `6` (event 6).
    D6,
    /// Key `7` (event 7).
    D7,
    /// Key `8` (event 8).
    D8,
    /// Key `9` (event 9).
    D9,
    /// Key `*` (event 10).
    Star,
    /// Key `#` (event 11).
    Pound,
    /// Key `A` (event 12).
    A,
    /// Key `B` (event 13).
    B,
    /// Key `C` (event 14).
    C,
    /// Key `D` (event 15).
    D,
}

/// Every digit, indexed by its RFC 4733 event code.
const BY_EVENT: [Digit; 16] = [
    Digit::D0,
    Digit::D1,
    Digit::D2,
    Digit::D3,
    Digit::D4,
    Digit::D5,
    Digit::D6,
    Digit::D7,
    Digit::D8,
    Digit::D9,
    Digit::Star,
    Digit::Pound,
    Digit::A,
    Digit::B,
    Digit::C,
    Digit::D,
];

impl Digit {
    /// The digit for an RFC 4733 event code (0–9, 10 = `*`, 11 = `#`, 12–15 = A–D); `None` for
    /// other events (flash, tones), which carry no key press.
    pub fn from_event(code: u8) -> Option<Digit> {
        BY_EVENT.get(usize::from(code)).copied()
    }

    /// The RFC 4733 event code of this digit, for sending it.
    pub fn event(self) -> u8 {
        self as u8
    }

    /// The digit a keypad character stands for: `0`–`9`, `*`, `#`, `A`–`D` (either case).
    pub fn from_char(c: char) -> Option<Digit> {
        match c {
            '0'..='9' => Digit::from_event(c as u8 - b'0'),
            '*' => Some(Digit::Star),
            '#' => Some(Digit::Pound),
            'A'..='D' => Digit::from_event(c as u8 - b'A' + 12),
            'a'..='d' => Digit::from_event(c as u8 - b'a' + 12),
            _ => None,
        }
    }

    /// The keypad character, as menus and logs spell it (`A`–`D` upper case).
    pub fn as_char(self) -> char {
        match self {
            Digit::Star => '*',
            Digit::Pound => '#',
            Digit::A => 'A',
            Digit::B => 'B',
            Digit::C => 'C',
            Digit::D => 'D',
            digit => char::from(b'0' + digit.event()),
        }
    }
}

impl fmt::Display for Digit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.as_char())
    }
}

/// Why a DTMF payload or body could not be read; each names what to check.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DtmfError {
    /// An RFC 4733 payload is 4 bytes; anything shorter is not a telephone-event.
    #[error(
        "telephone-event payload is {len} bytes, RFC 4733 needs at least 4: check that the RTP \
         payload type negotiated for telephone-event in the SDP is the one being decoded as DTMF"
    )]
    ShortPayload {
        /// Length of the payload received.
        len: usize,
    },
    /// The SIP INFO body is not one of the DTMF formats.
    #[error(
        "SIP INFO content type `{0}` carries no DTMF: expected application/dtmf-relay or \
         application/dtmf (other INFO packages must be routed elsewhere)"
    )]
    UnsupportedContentType(String),
    /// An `application/dtmf-relay` body without a usable `Signal` line.
    #[error("application/dtmf-relay body has no Signal value: expected a line like `Signal=5`")]
    MissingSignal,
    /// An `application/dtmf` body with nothing in it.
    #[error("application/dtmf body is empty: expected the digit, e.g. `5` or `#`")]
    EmptyBody,
    /// A signal that is not a keypad digit (e.g. `16`, hook flash, or garbage).
    #[error("DTMF signal `{0}` is not a keypad digit: expected 0-9, *, #, A-D or event code 0-15")]
    UnknownSignal(String),
}

/// One RFC 4733 telephone-event payload (section 2.3), decoded; exposed so the media loop can
/// also act on event ends and durations (e.g. to stop a prompt while a key is held).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TelephoneEvent {
    /// Event code: 0–15 are keypad digits, see [`Digit::from_event`].
    pub event: u8,
    /// E bit: this packet ends the event (senders usually send the end three times).
    pub end: bool,
    /// Volume in -dBm0 (0–63).
    pub volume: u8,
    /// Duration so far, in RTP timestamp units, from the event's timestamp.
    pub duration: u16,
}

impl TelephoneEvent {
    /// Decodes the first 4 bytes of an RTP payload of the telephone-event type; extra bytes are
    /// ignored.
    pub fn parse(payload: &[u8]) -> Result<TelephoneEvent, DtmfError> {
        let [event, flags, d0, d1, ..] = *payload else {
            return Err(DtmfError::ShortPayload { len: payload.len() });
        };
        Ok(TelephoneEvent {
            event,
            end: flags & 0x80 != 0,
            volume: flags & 0x3F,
            duration: u16::from_be_bytes([d0, d1]),
        })
    }
}

/// How many recent events are remembered to recognise their late retransmissions.
const RECENT_EVENTS: usize = 8;
/// A packet whose timestamp is behind the newest event by less than this (in RTP units: 8 s at
/// 8 kHz) belongs to an event already superseded; further behind is taken as a sender restart.
const STALE_WINDOW: u32 = 1 << 16;
/// An event whose duration reached this is near the 16-bit limit; RFC 4733 section 2.5.1.3 then
/// continues it as a new segment with a new timestamp, which is not a new key press.
const SEGMENT_DURATION: u16 = u16::MAX - 8000;

/// Turns the telephone-event packets of one RTP stream into key presses, each reported once.
///
/// An event is identified by its RTP timestamp and event code. The first packet seen of an event
/// reports its digit, whether it is the marker packet, an update, or (when the rest was lost) an
/// end packet; repeats, end packets and late retransmissions of any of the last few events are
/// ignored, as are packets of events older than the newest one. Two presses of the same key
/// have different timestamps and are two digits. Call [`reset`](Self::reset) when the stream's
/// SSRC changes.
#[derive(Debug, Clone, Default)]
pub struct TelephoneEventDetector {
    current: Option<Current>,
    recent: [Option<(u32, u8)>; RECENT_EVENTS],
    next_recent: usize,
    newest_ts: Option<u32>,
    /// Arrival of the last packet of an event that had ended, when arrival times are given.
    ended_at: Option<Duration>,
}

/// A marked start arriving this long after the last packet of an ended event is a new press
/// even with a timestamp seen before. A duplicate of a start packet, sent before the event's
/// 100 ms or more of updates and its end packets, does not trail them by this much.
pub const REPLAYED_PRESS_GAP: Duration = Duration::from_millis(40);

#[derive(Debug, Clone, Copy)]
struct Current {
    ts: u32,
    code: u8,
    ended: bool,
    duration: u16,
}

impl TelephoneEventDetector {
    /// A detector that has seen no event yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Forgets every event seen, for a new RTP source (SSRC change): its timestamps are unrelated.
    pub fn reset(&mut self) {
        *self = Self::default();
    }

    /// Feeds one telephone-event packet: its RTP timestamp, marker bit and payload. Returns the
    /// digit when this packet is the first seen of a new key press, `Ok(None)` for repeats and
    /// for events that are not keypad digits, and an error for a payload shorter than 4 bytes.
    pub fn on_packet(
        &mut self,
        rtp_timestamp: u32,
        marker: bool,
        payload: &[u8],
    ) -> Result<Option<Digit>, DtmfError> {
        self.feed(None, rtp_timestamp, marker, payload)
    }

    /// The same, knowing when the packet arrived (`at`, from any fixed origin). A marked start
    /// that comes [`REPLAYED_PRESS_GAP`] or more after an ended event is a new press even if
    /// its timestamp was seen before: senders that replay one capture per key (SIPp's
    /// `play_pcap_audio`, some IVR bridges) send every press of a key with the same
    /// timestamp. Without arrival times such a packet is taken for a late duplicate.
    pub fn on_packet_at(
        &mut self,
        at: Duration,
        rtp_timestamp: u32,
        marker: bool,
        payload: &[u8],
    ) -> Result<Option<Digit>, DtmfError> {
        self.feed(Some(at), rtp_timestamp, marker, payload)
    }

    fn feed(
        &mut self,
        at: Option<Duration>,
        rtp_timestamp: u32,
        marker: bool,
        payload: &[u8],
    ) -> Result<Option<Digit>, DtmfError> {
        let packet = TelephoneEvent::parse(payload)?;
        let replayed = marker
            && !packet.end
            && self.current.is_some_and(|c| c.ended)
            && matches!((at, self.ended_at), (Some(at), Some(end)) if at.saturating_sub(end) >= REPLAYED_PRESS_GAP);
        if let (Some(at), Some(current)) = (at, self.current.as_ref())
            && (current.ended || packet.end)
            && !replayed
        {
            self.ended_at = Some(at);
        }
        let Some(digit) = Digit::from_event(packet.event) else {
            return Ok(None);
        };
        let ts = rtp_timestamp;
        let fresh_start = replayed;
        if let Some(current) = self.current.as_mut()
            && current.ts == ts
            && current.code == packet.event
            && !fresh_start
        {
            current.ended |= packet.end;
            current.duration = current.duration.max(packet.duration);
            return Ok(None);
        }
        if !fresh_start && self.recent.contains(&Some((ts, packet.event))) {
            return Ok(None);
        }
        // A straggler from before the newest event is dropped, unless it carries the marker
        // bit: that starts a new event whatever its timestamp (a sender that restarted its
        // clock, or replayed captures sharing one SSRC).
        if let Some(newest) = self.newest_ts {
            let behind = newest.wrapping_sub(ts);
            if !marker && behind != 0 && behind < STALE_WINDOW {
                return Ok(None);
            }
        }
        let continues = self.current.is_some_and(|current| {
            !marker
                && current.code == packet.event
                && !current.ended
                && current.duration >= SEGMENT_DURATION
                && ts.wrapping_sub(current.ts) <= u32::from(u16::MAX) + STALE_WINDOW
        });
        self.remember(ts, packet.event);
        self.newest_ts = Some(ts);
        self.current = Some(Current {
            ts,
            code: packet.event,
            ended: packet.end,
            duration: packet.duration,
        });
        Ok(if continues { None } else { Some(digit) })
    }

    fn remember(&mut self, ts: u32, code: u8) {
        if let Some(entry) = self.recent.get_mut(self.next_recent % RECENT_EVENTS) {
            *entry = Some((ts, code));
        }
        self.next_recent = (self.next_recent + 1) % RECENT_EVENTS;
    }
}

/// Reads the digit from a SIP INFO request, given its Content-Type header value and body.
///
/// `application/dtmf-relay` (Cisco, Asterisk, most PBXs): lines of `key=value`, of which the
/// `Signal` line counts (keys in any case, spaces anywhere; the value is a keypad character or
/// an event code such as `10` for `*`). `application/dtmf`: the body is the digit itself. The
/// content type is compared without case and without parameters (`; charset=...`).
pub fn parse_info(content_type: &str, body: &[u8]) -> Result<Digit, DtmfError> {
    let media_type = content_type
        .split_once(';')
        .map_or(content_type, |(media_type, _)| media_type)
        .trim();
    if media_type.eq_ignore_ascii_case("application/dtmf-relay") {
        parse_relay(body)
    } else if media_type.eq_ignore_ascii_case("application/dtmf") {
        match body.trim_ascii() {
            [] => Err(DtmfError::EmptyBody),
            signal => parse_signal(signal),
        }
    } else {
        Err(DtmfError::UnsupportedContentType(excerpt(
            content_type.as_bytes(),
        )))
    }
}

fn parse_relay(body: &[u8]) -> Result<Digit, DtmfError> {
    for line in body.split(|&b| b == b'\n') {
        let Some(separator) = line.iter().position(|&b| b == b'=' || b == b':') else {
            continue;
        };
        let (key, value) = line.split_at(separator);
        if key.trim_ascii().eq_ignore_ascii_case(b"signal") {
            return match value.get(1..).unwrap_or_default().trim_ascii() {
                [] => Err(DtmfError::MissingSignal),
                signal => parse_signal(signal),
            };
        }
    }
    Err(DtmfError::MissingSignal)
}

/// A keypad character, or an event code of one or two decimal digits.
fn parse_signal(signal: &[u8]) -> Result<Digit, DtmfError> {
    let digit = match *signal {
        [c] => Digit::from_char(char::from(c)),
        [tens @ b'0'..=b'9', units @ b'0'..=b'9'] => {
            Digit::from_event((tens - b'0') * 10 + (units - b'0'))
        }
        _ => None,
    };
    digit.ok_or_else(|| DtmfError::UnknownSignal(excerpt(signal)))
}

/// Untrusted bytes made safe for an error message: at most 40 characters, controls escaped.
fn excerpt(bytes: &[u8]) -> String {
    const MAX_CHARS: usize = 40;
    let text = String::from_utf8_lossy(bytes);
    let mut out: String = text
        .chars()
        .take(MAX_CHARS)
        .flat_map(char::escape_debug)
        .collect();
    if text.chars().nth(MAX_CHARS).is_some() {
        out.push('…');
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_marked_event_with_an_older_timestamp_is_a_new_digit() {
        // SIPp's dtmf_2833_2.pcap then dtmf_2833_1.pcap: one SSRC, the second press at 13280
        // after the first at 23200. The marker bit says it is a new event.
        let mut d = TelephoneEventDetector::new();
        let pkt = |ev: u8, end: bool, dur: u16| {
            let mut p = vec![ev, if end { 0x80 } else { 0 } | 10, 0, 0];
            p[2..4].copy_from_slice(&dur.to_be_bytes());
            p
        };
        assert_eq!(
            d.on_packet(23200, true, &pkt(2, false, 0)).unwrap(),
            Some(Digit::D2)
        );
        assert_eq!(
            d.on_packet(23200, false, &pkt(2, true, 2240)).unwrap(),
            None
        );
        assert_eq!(
            d.on_packet(13280, true, &pkt(1, false, 0)).unwrap(),
            Some(Digit::D1)
        );
        assert_eq!(
            d.on_packet(13280, false, &pkt(1, false, 800)).unwrap(),
            None
        );
        assert_eq!(
            d.on_packet(13280, false, &pkt(1, true, 2240)).unwrap(),
            None
        );
        // An unmarked straggler of an older, unknown event is still dropped.
        assert_eq!(
            d.on_packet(12000, false, &pkt(7, true, 2240)).unwrap(),
            None
        );
    }

    use super::*;

    /// An RFC 4733 payload: event, E bit, volume 10, duration.
    fn event(code: u8, end: bool, duration: u16) -> [u8; 4] {
        let [d0, d1] = duration.to_be_bytes();
        [code, if end { 0x80 } else { 0 } | 10, d0, d1]
    }

    /// What a typical sender emits for one press: marker packet, five updates, three ends.
    fn press(code: u8, ts: u32) -> Vec<(u32, bool, [u8; 4])> {
        let mut packets = vec![(ts, true, event(code, false, 0))];
        packets.extend((1..=5).map(|i| (ts, false, event(code, false, i * 400))));
        packets.extend((0..3).map(|_| (ts, false, event(code, true, 2400))));
        packets
    }

    fn feed(detector: &mut TelephoneEventDetector, packets: &[(u32, bool, [u8; 4])]) -> String {
        packets
            .iter()
            .filter_map(|(ts, marker, payload)| {
                detector
                    .on_packet(*ts, *marker, payload)
                    .expect("valid payload")
            })
            .map(Digit::as_char)
            .collect()
    }

    #[test]
    fn digits_round_trip_through_chars_and_events() {
        for code in 0..16 {
            let digit = Digit::from_event(code).expect("keypad event");
            assert_eq!(digit.event(), code);
            assert_eq!(Digit::from_char(digit.as_char()), Some(digit));
            assert_eq!(digit.to_string(), digit.as_char().to_string());
        }
        assert_eq!(
            "0123456789*#ABCD"
                .chars()
                .map(|c| Digit::from_char(c).map(Digit::event))
                .collect::<Vec<_>>(),
            (0..16).map(Some).collect::<Vec<_>>()
        );
        assert_eq!(Digit::from_char('c'), Some(Digit::C));
        assert_eq!(Digit::from_char('E'), None);
        assert_eq!(Digit::from_char('٣'), None);
        assert_eq!(Digit::from_event(16), None);
        assert_eq!(Digit::Pound.to_string(), "#");
    }

    #[test]
    fn a_typical_press_is_one_digit() {
        let mut detector = TelephoneEventDetector::new();
        assert_eq!(feed(&mut detector, &press(5, 16_000)), "5");
    }

    #[test]
    fn the_digit_is_reported_on_the_first_packet() {
        let mut detector = TelephoneEventDetector::new();
        assert_eq!(
            detector.on_packet(1, true, &event(11, false, 0)),
            Ok(Some(Digit::Pound))
        );
        assert_eq!(
            detector.on_packet(1, false, &event(11, false, 400)),
            Ok(None)
        );
    }

    #[test]
    fn the_same_key_pressed_twice_is_two_digits() {
        let mut detector = TelephoneEventDetector::new();
        let packets = [press(1, 16_000), press(1, 19_200)].concat();
        assert_eq!(feed(&mut detector, &packets), "11");
    }

    #[test]
    fn a_press_whose_start_was_lost_is_reported_once_from_its_end_packets() {
        let mut detector = TelephoneEventDetector::new();
        let packets: Vec<_> = press(9, 500)
            .into_iter()
            .filter(|(_, _, p)| p[1] & 0x80 != 0)
            .collect();
        assert_eq!(packets.len(), 3);
        assert_eq!(feed(&mut detector, &packets), "9");
    }

    #[test]
    fn end_packets_arriving_after_the_next_press_started_are_ignored() {
        let mut detector = TelephoneEventDetector::new();
        let first = press(3, 8000);
        let second = press(4, 9600);
        // First press up to its first end; second press starts; the other two ends of the first
        // turn up between the second's packets.
        let mut packets = first[..7].to_vec();
        packets.push(second[0]);
        packets.push(first[7]);
        packets.extend_from_slice(&second[1..3]);
        packets.push(first[8]);
        packets.extend_from_slice(&second[3..]);
        assert_eq!(feed(&mut detector, &packets), "34");
    }

    #[test]
    fn a_superseded_event_whose_start_is_lost_is_not_reported_out_of_order() {
        let mut detector = TelephoneEventDetector::new();
        assert_eq!(feed(&mut detector, &press(2, 8000)), "2");
        // Only the unmarked updates and ends of an older event arrive: stragglers, dropped.
        assert_eq!(
            feed(&mut detector, &press(7, 4000)[1..]),
            "",
            "older than the newest event"
        );
    }

    #[test]
    fn a_different_event_on_the_same_timestamp_after_an_end_is_a_new_digit() {
        let mut detector = TelephoneEventDetector::new();
        let packets = [press(1, 1000), press(2, 1000)].concat();
        assert_eq!(feed(&mut detector, &packets), "12");
        // A late retransmission of the first event's end is still recognised.
        assert_eq!(
            detector.on_packet(1000, false, &event(1, true, 2400)),
            Ok(None)
        );
    }

    #[test]
    fn a_marker_packet_replayed_after_the_end_is_not_a_new_press() {
        let mut detector = TelephoneEventDetector::new();
        let mut packets = press(6, 320);
        packets.push(packets[0]);
        assert_eq!(feed(&mut detector, &packets), "6");
    }

    #[test]
    fn the_same_capture_replayed_for_each_press_gives_each_digit() {
        // SIPp plays one capture per key: every press of a key has the same timestamp, and
        // presses of different keys share it too. With arrival times, each press counts.
        let mut detector = TelephoneEventDetector::new();
        let mut digits = String::new();
        let mut at = Duration::ZERO;
        for key in [2u8, 0, 2, 2, 0] {
            for (ts, marker, payload) in press(key, 320) {
                if let Some(d) = detector.on_packet_at(at, ts, marker, &payload).unwrap() {
                    digits.push(d.as_char());
                }
                at += Duration::from_millis(20);
            }
            at += Duration::from_millis(200);
        }
        assert_eq!(digits, "20220");
        // A duplicate of the start packet arriving just after the end is still no new press.
        let mut detector = TelephoneEventDetector::new();
        let packets = press(6, 320);
        let mut digits = String::new();
        for (i, (ts, marker, payload)) in packets.iter().chain([&packets[0]]).enumerate() {
            let at = Duration::from_millis(20 * i as u64);
            if let Some(d) = detector.on_packet_at(at, *ts, *marker, payload).unwrap() {
                digits.push(d.as_char());
            }
        }
        assert_eq!(digits, "6");
    }

    #[test]
    fn timestamps_wrapping_between_presses_still_give_two_digits() {
        let mut detector = TelephoneEventDetector::new();
        let packets = [press(0, u32::MAX - 1000), press(8, 2200)].concat();
        assert_eq!(feed(&mut detector, &packets), "08");
    }

    #[test]
    fn a_key_held_past_the_duration_limit_is_one_digit() {
        let mut detector = TelephoneEventDetector::new();
        let mut packets = vec![(0, true, event(5, false, 0))];
        packets.extend((1..=163).map(|i| (0, false, event(5, false, i * 400))));
        // RFC 4733 2.5.1.3: a new segment with a new timestamp and no marker.
        packets.extend((1..=5).map(|i| (65_200, false, event(5, false, i * 400))));
        packets.extend((0..3).map(|_| (65_200, false, event(5, true, 2400))));
        assert_eq!(feed(&mut detector, &packets), "5");
    }

    #[test]
    fn a_quick_repeat_whose_ends_and_marker_were_lost_is_still_two_digits() {
        let mut detector = TelephoneEventDetector::new();
        let first: Vec<_> = press(4, 0).into_iter().take(3).collect();
        let second: Vec<_> = press(4, 1600).into_iter().skip(1).collect();
        assert_eq!(feed(&mut detector, &[first, second].concat()), "44");
    }

    #[test]
    fn short_payload_is_an_error_and_other_events_are_ignored() {
        let mut detector = TelephoneEventDetector::new();
        assert_eq!(
            detector.on_packet(0, true, &[5, 0, 1]),
            Err(DtmfError::ShortPayload { len: 3 })
        );
        assert_eq!(
            detector.on_packet(0, true, &[]),
            Err(DtmfError::ShortPayload { len: 0 })
        );
        assert_eq!(
            detector.on_packet(0, true, &event(16, false, 0)),
            Ok(None),
            "flash"
        );
        assert_eq!(detector.on_packet(0, true, &event(255, true, 0)), Ok(None));
        // Ignored events leave no trace: a digit on the same timestamp is still reported.
        assert_eq!(
            detector.on_packet(0, true, &event(5, false, 0)),
            Ok(Some(Digit::D5))
        );
        // Extra bytes after the four are tolerated.
        assert_eq!(
            detector.on_packet(800, true, &[7, 10, 0, 0, 0xFF, 0xFF]),
            Ok(Some(Digit::D7))
        );
    }

    #[test]
    fn reset_forgets_the_previous_source() {
        let mut detector = TelephoneEventDetector::new();
        assert_eq!(feed(&mut detector, &press(1, 50_000)), "1");
        detector.reset();
        // The new source starts its timestamps lower: without reset this would look stale.
        assert_eq!(feed(&mut detector, &press(1, 1000)), "1");
    }

    #[test]
    fn parsed_event_fields() {
        assert_eq!(
            TelephoneEvent::parse(&[11, 0x80 | 0x3F, 0x01, 0x40]),
            Ok(TelephoneEvent {
                event: 11,
                end: true,
                volume: 63,
                duration: 320
            })
        );
    }

    #[test]
    fn info_dtmf_relay_bodies_from_real_devices() {
        let cases: [(&str, &[u8], Digit); 9] = [
            (
                "application/dtmf-relay",
                b"Signal=5\r\nDuration=160\r\n",
                Digit::D5,
            ), // Cisco
            (
                "application/dtmf-relay",
                b"Signal=1\r\nDuration=250\r\n",
                Digit::D1,
            ), // Asterisk
            (
                "application/dtmf-relay",
                b"Signal=*\r\nDuration=100\r\n",
                Digit::Star,
            ),
            (
                "application/dtmf-relay",
                b"Signal=#\r\nDuration=100",
                Digit::Pound,
            ),
            (
                "Application/DTMF-Relay; charset=utf-8",
                b"signal = 10\r\nduration = 160\r\n",
                Digit::Star,
            ),
            (
                "application/dtmf-relay",
                b"Duration=160\r\n  SIGNAL= 11 \r\n",
                Digit::Pound,
            ),
            ("application/dtmf-relay", b"Signal=d\n", Digit::D),
            (
                "application/dtmf-relay",
                b"Signal: 0\r\nDuration: 200\r\n",
                Digit::D0,
            ),
            (" application/dtmf-relay ;foo=bar", b"Signal=B", Digit::B),
        ];
        for (content_type, body, digit) in cases {
            assert_eq!(
                parse_info(content_type, body),
                Ok(digit),
                "{:?}",
                String::from_utf8_lossy(body)
            );
        }
    }

    #[test]
    fn info_dtmf_bodies() {
        assert_eq!(parse_info("application/dtmf", b"5"), Ok(Digit::D5));
        assert_eq!(parse_info("APPLICATION/DTMF", b"#\r\n"), Ok(Digit::Pound));
        assert_eq!(
            parse_info("application/dtmf; charset=us-ascii", b" 11 "),
            Ok(Digit::Pound)
        );
        assert_eq!(
            parse_info("application/dtmf", b"\r\n"),
            Err(DtmfError::EmptyBody)
        );
    }

    #[test]
    fn malformed_info_bodies_are_errors_a_person_can_act_on() {
        assert_eq!(
            parse_info("application/dtmf-relay", b""),
            Err(DtmfError::MissingSignal)
        );
        assert_eq!(
            parse_info("application/dtmf-relay", b"Duration=160\r\n"),
            Err(DtmfError::MissingSignal)
        );
        assert_eq!(
            parse_info("application/dtmf-relay", b"Signal=\r\n"),
            Err(DtmfError::MissingSignal)
        );
        assert_eq!(
            parse_info("application/dtmf-relay", b"Signal=16\r\n"),
            Err(DtmfError::UnknownSignal("16".into()))
        );
        assert_eq!(
            parse_info("application/dtmf-relay", b"Signal=55"),
            Err(DtmfError::UnknownSignal("55".into()))
        );
        assert_eq!(
            parse_info("application/dtmf", b"12 3"),
            Err(DtmfError::UnknownSignal("12 3".into()))
        );
        assert_eq!(
            parse_info("application/dtmf", b"\xff"),
            Err(DtmfError::UnknownSignal("\u{FFFD}".into()))
        );
        let error = parse_info("application/media_control+xml", b"<media_control/>").unwrap_err();
        assert_eq!(
            error,
            DtmfError::UnsupportedContentType("application/media_control+xml".into())
        );
        assert!(
            error.to_string().contains("application/media_control+xml"),
            "{error}"
        );
        // Hostile content types are cut and escaped in the message.
        let DtmfError::UnsupportedContentType(named) =
            parse_info(&"x\n".repeat(100), b"5").unwrap_err()
        else {
            panic!("wrong variant");
        };
        assert!(named.len() < 100 && !named.contains('\n'), "{named}");
    }

    struct XorShift(u64);

    impl XorShift {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }
    }

    #[test]
    fn deterministic_garbage_never_panics() {
        let mut rng = XorShift(7);
        let mut detector = TelephoneEventDetector::new();
        let alphabet = b"Signal=*#0123456789ABCDabcd: \r\n\t;\xff\x00";
        let types = [
            "application/dtmf-relay",
            "application/dtmf",
            "text/plain",
            "",
            ";",
            "application/dtmf;",
        ];
        for _ in 0..200_000 {
            let r = rng.next();
            let len = (r % 9) as usize;
            let bytes: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
            let small_ts = (r >> 32) as u32 % 4096;
            let ts = if r & 0x100 == 0 {
                small_ts
            } else {
                rng.next() as u32
            };
            let _ = detector.on_packet(ts, r & 1 == 0, &bytes);
            let body: Vec<u8> = (0..(r >> 16) % 40)
                .map(|_| alphabet[(rng.next() % alphabet.len() as u64) as usize])
                .collect();
            let _ = parse_info(types[(r >> 8) as usize % types.len()], &body);
        }
    }

    mod prop {
        use super::super::*;
        use super::{event, press};
        use proptest::prelude::*;

        proptest! {
            /// Any number of presses, with any packets lost (but at least one per press kept)
            /// and any duplicated, gives exactly the digits pressed, in order.
            #[test]
            fn every_press_is_reported_exactly_once(
                presses in prop::collection::vec((0u8..16, 800u32..40_000), 1..12),
                fate in prop::collection::vec(0u8..4, 12 * 9),
            ) {
                let mut detector = TelephoneEventDetector::new();
                let mut ts = 12_345u32;
                let mut fate = fate.into_iter().cycle();
                let mut heard = String::new();
                let mut late_ends: Vec<(u32, bool, [u8; 4])> = Vec::new();
                for (code, gap) in &presses {
                    ts = ts.wrapping_add(*gap);
                    let packets = press(*code, ts);
                    let keep: Vec<u8> = packets.iter().map(|_| fate.next().unwrap_or(0)).collect();
                    let survivor = keep.iter().position(|&k| k != 0).unwrap_or(packets.len() - 1);
                    for (i, (t, marker, payload)) in packets.iter().enumerate() {
                        let copies = if i == survivor { keep[i].max(1) } else { keep[i] };
                        for _ in 0..copies {
                            if let Some(digit) = detector.on_packet(*t, *marker, payload).expect("valid") {
                                heard.push(digit.as_char());
                            }
                        }
                    }
                    // Retransmitted ends of the previous press, arriving during this one.
                    for (t, marker, payload) in late_ends.drain(..) {
                        prop_assert_eq!(detector.on_packet(t, marker, &payload), Ok(None));
                    }
                    late_ends.push((ts, false, event(*code, true, 2400)));
                }
                let pressed: String = presses.iter().filter_map(|(c, _)| Digit::from_event(*c)).map(Digit::as_char).collect();
                prop_assert_eq!(heard, pressed);
            }

            #[test]
            fn arbitrary_packets_and_bodies_never_panic(
                packets in prop::collection::vec((any::<u32>(), any::<bool>(), prop::collection::vec(any::<u8>(), 0..8)), 0..64),
                content_type in ".{0,40}",
                body in prop::collection::vec(any::<u8>(), 0..200),
            ) {
                let mut detector = TelephoneEventDetector::new();
                for (ts, marker, payload) in &packets {
                    let _ = detector.on_packet(*ts, *marker, payload);
                }
                let _ = parse_info(&content_type, &body);
                let _ = parse_info("application/dtmf-relay", &body);
                let _ = parse_info("application/dtmf", &body);
            }
        }
    }
}
