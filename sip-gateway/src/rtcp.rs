//! RTCP (RFC 3550) for a G.711 call: receiver statistics and the compound packets we send and
//! receive.
//!
//! What goes in: for each RTP packet we receive, its sequence number, RTP timestamp and arrival
//! time in RTP units ([`ReceiverStats::on_rtp`]); for each we send, its timestamp and payload
//! size ([`SenderStats::on_rtp_sent`]); RTCP datagrams from the peer ([`parse_compound`]); and
//! the wall-clock time, passed in as a [`SystemTime`] ([`ntp_time`]). What comes
//! out: report blocks, and the bytes of compound SR/RR + SDES (+ BYE) packets to send.
//!
//! *Invariants*: no I/O, no clock reads, no panics on any input: a datagram that does not hold
//! together is refused with an [`RtcpError`] naming the offset and the fault.
//!
//! The wire format is written here rather than taken from `rtc-rtcp` or `rtcp` (webrtc-rs):
//! both pull in a large tree (rand, nix, url/ICU, or tokio) for some 300 lines of fixed
//! layout, and their parsers have had panics on bad block sizes. Only SR, RR, SDES and BYE are
//! understood; APP, feedback (RFC 4585) and XR packets are skipped by their length.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use thiserror::Error;

/// RTCP packet type of a sender report.
pub const PT_SR: u8 = 200;
/// RTCP packet type of a receiver report.
pub const PT_RR: u8 = 201;
/// RTCP packet type of a source description.
pub const PT_SDES: u8 = 202;
/// RTCP packet type of a goodbye.
pub const PT_BYE: u8 = 203;
/// SDES item type of the canonical name.
pub const SDES_CNAME: u8 = 1;

/// The largest count the 5-bit header field holds (report blocks, SDES chunks, BYE sources).
pub const MAX_COUNT: usize = 31;

const VERSION: u8 = 2;
const HEADER_LEN: usize = 4;
const REPORT_BLOCK_LEN: usize = 24;
const SENDER_INFO_LEN: usize = 24; // sender SSRC + NTP (8) + RTP ts + packets + octets
const MAX_TEXT_LEN: usize = 255;
/// The largest packet the 16-bit length field describes.
const MAX_PACKET_LEN: usize = (u16::MAX as usize + 1) * 4;
/// Bytes SDES items may take, leaving room for each chunk's SSRC, terminator and padding.
const SDES_ITEMS_BUDGET: usize = MAX_PACKET_LEN - HEADER_LEN - MAX_COUNT * 8;

/// Seconds from the NTP epoch (1900-01-01) to the Unix epoch (1970-01-01).
const NTP_UNIX_OFFSET_SECS: i128 = 2_208_988_800;

/// RFC 3550 A.1: packets in sequence before a source is valid.
const MIN_SEQUENTIAL: u8 = 2;
/// RFC 3550 A.1: largest forward jump taken as loss rather than a restart.
const MAX_DROPOUT: u16 = 3000;
/// RFC 3550 A.1: largest backward step taken as reordering rather than a restart.
const MAX_MISORDER: u16 = 100;
const RTP_SEQ_MOD: u32 = 1 << 16;

/// Why an RTCP datagram was refused.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum RtcpError {
    /// The datagram ends inside a header or inside the length a header declares.
    #[error(
        "RTCP packet at byte {offset} is cut short: it needs {needed} bytes, {available} are \
         left; the datagram was truncated on the way or is not RTCP"
    )]
    Truncated {
        /// Offset of the packet in the datagram.
        offset: usize,
        /// Bytes the header (or the header's length field) asks for.
        needed: usize,
        /// Bytes left in the datagram.
        available: usize,
    },
    /// The version field is not 2.
    #[error(
        "RTCP packet at byte {offset} has version {version}, not 2; this is not RTCP (STUN, or \
         RTP sent to the RTCP port?)"
    )]
    BadVersion {
        /// Offset of the packet in the datagram.
        offset: usize,
        /// The version found.
        version: u8,
    },
    /// The padding bit is set but the padding count does not fit the packet.
    #[error(
        "RTCP packet at byte {offset} claims {padding} bytes of padding in a packet of {length} \
         bytes; the sender pads wrongly"
    )]
    BadPadding {
        /// Offset of the packet in the datagram.
        offset: usize,
        /// The padding count (last octet of the packet).
        padding: usize,
        /// Length of the packet, header included.
        length: usize,
    },
    /// A known packet type whose content does not fit its length.
    #[error("RTCP {kind} packet at byte {offset} is malformed: {reason}")]
    Malformed {
        /// Offset of the packet in the datagram.
        offset: usize,
        /// `SR`, `RR`, `SDES` or `BYE`.
        kind: &'static str,
        /// What does not fit.
        reason: &'static str,
    },
}

/// A 64-bit NTP timestamp: seconds since 1900 in the high 32 bits, fraction in the low 32.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct NtpTime(pub u64);

impl NtpTime {
    /// The NTP timestamp of a wall-clock time (read by the caller, not here).
    ///
    /// Times before 1900 give 0; after 2036 the seconds wrap into NTP era 1, as on the wire.
    pub fn from_system_time(time: SystemTime) -> NtpTime {
        let (secs, nanos) = match time.duration_since(UNIX_EPOCH) {
            Ok(after) => (
                NTP_UNIX_OFFSET_SECS + i128::from(after.as_secs()),
                after.subsec_nanos(),
            ),
            Err(before) => {
                let before = before.duration();
                let mut secs = NTP_UNIX_OFFSET_SECS - i128::from(before.as_secs());
                let mut nanos = before.subsec_nanos();
                if nanos > 0 {
                    secs -= 1;
                    nanos = 1_000_000_000 - nanos;
                }
                (secs, nanos)
            }
        };
        if secs < 0 {
            return NtpTime(0);
        }
        let secs = (secs as u64) & 0xFFFF_FFFF;
        let fraction = (u64::from(nanos) << 32) / 1_000_000_000;
        NtpTime((secs << 32) | fraction)
    }

    /// Whole seconds since 1900 (modulo the NTP era).
    pub fn seconds(self) -> u32 {
        (self.0 >> 32) as u32
    }

    /// Fraction of a second, in units of 2^-32 s.
    pub fn fraction(self) -> u32 {
        self.0 as u32
    }

    /// The middle 32 bits, in units of 1/65536 s: what LSR and DLSR carry.
    pub fn middle_32(self) -> u32 {
        (self.0 >> 16) as u32
    }
}

/// The NTP timestamp of a wall-clock time read by the caller: shorthand for
/// [`NtpTime::from_system_time`].
pub fn ntp_time(now: SystemTime) -> NtpTime {
    NtpTime::from_system_time(now)
}

/// A duration in the 1/65536 s units of LSR and DLSR.
pub fn duration_from_ntp_short(units: u32) -> Duration {
    Duration::from_nanos((u64::from(units) * 1_000_000_000) >> 16)
}

/// The round-trip time a peer's report block shows (RFC 3550 §6.4.1): `now - LSR - DLSR`,
/// with `now` the arrival time of the report. `None` when the peer has not seen an SR of ours
/// (LSR is 0) or the numbers do not add up (clocks stepped).
pub fn round_trip_time(now: NtpTime, block: &ReportBlock) -> Option<Duration> {
    if block.last_sr == 0 {
        return None;
    }
    let since_sr = now.middle_32().wrapping_sub(block.last_sr);
    if since_sr > u32::MAX / 2 {
        return None; // our SR would have been sent after now
    }
    since_sr
        .checked_sub(block.delay_since_last_sr)
        .map(duration_from_ntp_short)
}

/// One reception report block (RFC 3550 §6.4.1): how we hear one source, or how a peer hears us.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct ReportBlock {
    /// The source this block is about.
    pub ssrc: u32,
    /// Packets lost since the previous report, as a fraction of 256.
    pub fraction_lost: u8,
    /// Packets lost since the start, 24-bit signed (negative with duplicates).
    pub cumulative_lost: i32,
    /// Highest sequence number received, with the count of wraparounds in the high 16 bits.
    pub extended_highest_seq: u32,
    /// Interarrival jitter, in RTP timestamp units (1/8000 s for G.711).
    pub jitter: u32,
    /// Middle 32 bits of the NTP time of the last SR received from the source, 0 if none.
    pub last_sr: u32,
    /// Time since that SR was received, in 1/65536 s, 0 if none.
    pub delay_since_last_sr: u32,
}

impl ReportBlock {
    fn encode(&self, out: &mut Vec<u8>) {
        let lost = self.cumulative_lost.clamp(-0x80_0000, 0x7F_FFFF) as u32 & 0x00FF_FFFF;
        out.extend_from_slice(&self.ssrc.to_be_bytes());
        out.extend_from_slice(&((u32::from(self.fraction_lost) << 24) | lost).to_be_bytes());
        out.extend_from_slice(&self.extended_highest_seq.to_be_bytes());
        out.extend_from_slice(&self.jitter.to_be_bytes());
        out.extend_from_slice(&self.last_sr.to_be_bytes());
        out.extend_from_slice(&self.delay_since_last_sr.to_be_bytes());
    }

    fn decode(bytes: &[u8]) -> Option<ReportBlock> {
        let word = |i: usize| read_u32(bytes, i * 4);
        let loss = word(1)?;
        // Sign-extend the 24-bit cumulative count.
        let cumulative_lost = ((loss << 8) as i32) >> 8;
        Some(ReportBlock {
            ssrc: word(0)?,
            fraction_lost: (loss >> 24) as u8,
            cumulative_lost,
            extended_highest_seq: word(2)?,
            jitter: word(3)?,
            last_sr: word(4)?,
            delay_since_last_sr: word(5)?,
        })
    }
}

/// A sender report (PT 200).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct SenderReport {
    /// SSRC of the sender.
    pub ssrc: u32,
    /// Wall-clock time of the report.
    pub ntp_time: NtpTime,
    /// The RTP timestamp that corresponds to `ntp_time`.
    pub rtp_timestamp: u32,
    /// RTP packets sent since the start.
    pub packet_count: u32,
    /// RTP payload octets sent since the start.
    pub octet_count: u32,
    /// Reception reports (at most [`MAX_COUNT`] are encoded).
    pub reports: Vec<ReportBlock>,
}

impl SenderReport {
    /// The middle 32 bits of the report's NTP time: what [`ReceiverStats::on_sender_report`]
    /// takes and what our next report block echoes as LSR.
    pub fn ntp_middle32(&self) -> u32 {
        self.ntp_time.middle_32()
    }
}

/// A receiver report (PT 201).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct ReceiverReport {
    /// SSRC of the sender of this report.
    pub ssrc: u32,
    /// Reception reports (at most [`MAX_COUNT`] are encoded).
    pub reports: Vec<ReportBlock>,
}

/// One SDES item: a type (1 = CNAME, see [`SDES_CNAME`]) and its text.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SdesItem {
    /// Item type (RFC 3550 §6.5): 1 CNAME, 2 NAME, ... 8 PRIV.
    pub kind: u8,
    /// The text; invalid UTF-8 from the network is replaced, and at most 255 bytes are encoded.
    pub text: String,
}

/// The SDES items about one source.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SdesChunk {
    /// The source described.
    pub ssrc: u32,
    /// Its items, in order.
    pub items: Vec<SdesItem>,
}

impl SdesChunk {
    /// The CNAME item, if present.
    pub fn cname(&self) -> Option<&str> {
        self.items
            .iter()
            .find(|item| item.kind == SDES_CNAME)
            .map(|item| item.text.as_str())
    }
}

/// A source description (PT 202).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct SourceDescription {
    /// One chunk per source (at most [`MAX_COUNT`] are encoded).
    pub chunks: Vec<SdesChunk>,
}

/// A goodbye (PT 203): the sources are leaving.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct Goodbye {
    /// The sources leaving (at most [`MAX_COUNT`] are encoded).
    pub sources: Vec<u32>,
    /// Why, if said (at most 255 bytes are encoded).
    pub reason: Option<String>,
}

/// One RTCP packet of a compound datagram.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum RtcpPacket {
    /// SR, PT 200.
    SenderReport(SenderReport),
    /// RR, PT 201.
    ReceiverReport(ReceiverReport),
    /// SDES, PT 202.
    SourceDescription(SourceDescription),
    /// BYE, PT 203.
    Goodbye(Goodbye),
}

impl RtcpPacket {
    /// Appends this packet's wire form to `out` (no padding bit; text and lists beyond the
    /// field limits are cut, never refused).
    pub fn encode(&self, out: &mut Vec<u8>) {
        let start = out.len();
        match self {
            RtcpPacket::SenderReport(sr) => {
                let reports = &sr.reports[..sr.reports.len().min(MAX_COUNT)];
                push_header(out, reports.len(), PT_SR);
                out.extend_from_slice(&sr.ssrc.to_be_bytes());
                out.extend_from_slice(&sr.ntp_time.0.to_be_bytes());
                out.extend_from_slice(&sr.rtp_timestamp.to_be_bytes());
                out.extend_from_slice(&sr.packet_count.to_be_bytes());
                out.extend_from_slice(&sr.octet_count.to_be_bytes());
                reports.iter().for_each(|block| block.encode(out));
            }
            RtcpPacket::ReceiverReport(rr) => {
                let reports = &rr.reports[..rr.reports.len().min(MAX_COUNT)];
                push_header(out, reports.len(), PT_RR);
                out.extend_from_slice(&rr.ssrc.to_be_bytes());
                reports.iter().for_each(|block| block.encode(out));
            }
            RtcpPacket::SourceDescription(sdes) => {
                let chunks = &sdes.chunks[..sdes.chunks.len().min(MAX_COUNT)];
                push_header(out, chunks.len(), PT_SDES);
                for chunk in chunks {
                    out.extend_from_slice(&chunk.ssrc.to_be_bytes());
                    for item in chunk.items.iter().filter(|item| item.kind != 0) {
                        let text = truncate_utf8(&item.text, MAX_TEXT_LEN);
                        // Keep room for every chunk's SSRC and terminator within the length
                        // field's reach; items past that are dropped.
                        if out.len() - start + 2 + text.len() > SDES_ITEMS_BUDGET {
                            break;
                        }
                        out.push(item.kind);
                        out.push(text.len() as u8);
                        out.extend_from_slice(text.as_bytes());
                    }
                    // The list ends with a null item; the chunk is padded to 32 bits with nulls.
                    out.push(0);
                    pad_to_word(out);
                }
            }
            RtcpPacket::Goodbye(bye) => {
                let sources = &bye.sources[..bye.sources.len().min(MAX_COUNT)];
                push_header(out, sources.len(), PT_BYE);
                sources
                    .iter()
                    .for_each(|ssrc| out.extend_from_slice(&ssrc.to_be_bytes()));
                if let Some(reason) = &bye.reason {
                    let reason = truncate_utf8(reason, MAX_TEXT_LEN);
                    out.push(reason.len() as u8);
                    out.extend_from_slice(reason.as_bytes());
                    pad_to_word(out);
                }
            }
        }
        // Length in 32-bit words minus one. Counts are capped at 31 and texts at 255 bytes, and
        // SDES items stop at `SDES_ITEMS_BUDGET`, so every packet fits the 16-bit field.
        let words = ((out.len() - start) / 4).saturating_sub(1);
        let words = u16::try_from(words).unwrap_or(u16::MAX);
        if let Some(field) = out.get_mut(start + 2..start + 4) {
            field.copy_from_slice(&words.to_be_bytes());
        }
    }
}

/// The wire form of a compound packet: each packet in order.
pub fn encode_compound(packets: &[RtcpPacket]) -> Vec<u8> {
    let mut out = Vec::new();
    packets.iter().for_each(|packet| packet.encode(&mut out));
    out
}

fn push_header(out: &mut Vec<u8>, count: usize, packet_type: u8) {
    out.push((VERSION << 6) | (count.min(MAX_COUNT) as u8));
    out.push(packet_type);
    out.extend_from_slice(&[0, 0]); // length, filled in by `encode`
}

fn pad_to_word(out: &mut Vec<u8>) {
    out.resize(out.len().next_multiple_of(4), 0);
}

fn truncate_utf8(text: &str, max: usize) -> &str {
    let mut end = text.len().min(max);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

fn read_u32(bytes: &[u8], at: usize) -> Option<u32> {
    let word = bytes.get(at..at.checked_add(4)?)?;
    Some(u32::from_be_bytes([word[0], word[1], word[2], word[3]]))
}

/// Parses a compound RTCP datagram into its SR, RR, SDES and BYE packets, in order.
///
/// Other packet types (APP, feedback, XR...) are skipped by their length. The datagram is
/// refused whole when any header is not version 2, a length runs past the end, padding does
/// not fit, or a known packet's counts do not fit its length (RFC 3550 A.2). A compound that
/// does not start with SR or RR is accepted (RFC 5506 reduced-size RTCP).
pub fn parse_compound(datagram: &[u8]) -> Result<Vec<RtcpPacket>, RtcpError> {
    let mut packets = Vec::new();
    let mut offset = 0;
    while offset < datagram.len() {
        let rest = &datagram[offset..];
        let truncated = |needed| RtcpError::Truncated {
            offset,
            needed,
            available: rest.len(),
        };
        let header = rest
            .get(..HEADER_LEN)
            .ok_or_else(|| truncated(HEADER_LEN))?;
        let version = header[0] >> 6;
        if version != VERSION {
            return Err(RtcpError::BadVersion { offset, version });
        }
        let padded = header[0] & 0x20 != 0;
        let count = usize::from(header[0] & 0x1F);
        let packet_type = header[1];
        let length = (usize::from(u16::from_be_bytes([header[2], header[3]])) + 1) * 4;
        let packet = rest.get(..length).ok_or_else(|| truncated(length))?;

        let mut end = length;
        if padded {
            let padding = usize::from(packet[length - 1]);
            if padding == 0 || padding > length - HEADER_LEN {
                return Err(RtcpError::BadPadding {
                    offset,
                    padding,
                    length,
                });
            }
            end -= padding;
        }
        let body = &packet[HEADER_LEN..end];
        let parsed = match packet_type {
            PT_SR => Some(parse_sr(body, count, offset)?),
            PT_RR => Some(parse_rr(body, count, offset)?),
            PT_SDES => Some(parse_sdes(body, count, offset)?),
            PT_BYE => Some(parse_bye(body, count, offset)?),
            _ => None,
        };
        packets.extend(parsed);
        offset += length;
    }
    Ok(packets)
}

fn parse_report_blocks(
    bytes: &[u8],
    count: usize,
    offset: usize,
    kind: &'static str,
) -> Result<Vec<ReportBlock>, RtcpError> {
    if bytes.len() < count * REPORT_BLOCK_LEN {
        return Err(RtcpError::Malformed {
            offset,
            kind,
            reason: "its report count needs more bytes than its length gives",
        });
    }
    // Anything after the blocks is a profile-specific extension, which we skip.
    Ok(bytes
        .chunks_exact(REPORT_BLOCK_LEN)
        .take(count)
        .filter_map(ReportBlock::decode)
        .collect())
}

fn parse_sr(body: &[u8], count: usize, offset: usize) -> Result<RtcpPacket, RtcpError> {
    let malformed = RtcpError::Malformed {
        offset,
        kind: "SR",
        reason: "shorter than the 24 bytes of sender information",
    };
    let info = body.get(..SENDER_INFO_LEN).ok_or(malformed.clone())?;
    let word = |i: usize| read_u32(info, i * 4).ok_or(malformed.clone());
    let ntp = (u64::from(word(1)?) << 32) | u64::from(word(2)?);
    Ok(RtcpPacket::SenderReport(SenderReport {
        ssrc: word(0)?,
        ntp_time: NtpTime(ntp),
        rtp_timestamp: word(3)?,
        packet_count: word(4)?,
        octet_count: word(5)?,
        reports: parse_report_blocks(&body[SENDER_INFO_LEN..], count, offset, "SR")?,
    }))
}

fn parse_rr(body: &[u8], count: usize, offset: usize) -> Result<RtcpPacket, RtcpError> {
    let ssrc = read_u32(body, 0).ok_or(RtcpError::Malformed {
        offset,
        kind: "RR",
        reason: "has no room for the reporter's SSRC",
    })?;
    Ok(RtcpPacket::ReceiverReport(ReceiverReport {
        ssrc,
        reports: parse_report_blocks(body.get(4..).unwrap_or_default(), count, offset, "RR")?,
    }))
}

fn parse_sdes(body: &[u8], count: usize, offset: usize) -> Result<RtcpPacket, RtcpError> {
    let malformed = |reason| RtcpError::Malformed {
        offset,
        kind: "SDES",
        reason,
    };
    let mut chunks = Vec::with_capacity(count);
    let mut at = 0;
    for _ in 0..count {
        let ssrc = read_u32(body, at).ok_or(malformed(
            "its chunk count needs more bytes than its length gives",
        ))?;
        at += 4;
        let mut items = Vec::new();
        // Items run to a null item; the end of the packet also ends the last list.
        while let Some(&kind) = body.get(at) {
            if kind == 0 {
                at += 1;
                break;
            }
            let len = usize::from(
                *body
                    .get(at + 1)
                    .ok_or(malformed("an item has no length octet"))?,
            );
            let text = body.get(at + 2..at + 2 + len).ok_or(malformed(
                "an item's length runs past the end of the packet",
            ))?;
            items.push(SdesItem {
                kind,
                text: String::from_utf8_lossy(text).into_owned(),
            });
            at += 2 + len;
        }
        at = at.next_multiple_of(4);
        chunks.push(SdesChunk { ssrc, items });
    }
    Ok(RtcpPacket::SourceDescription(SourceDescription { chunks }))
}

fn parse_bye(body: &[u8], count: usize, offset: usize) -> Result<RtcpPacket, RtcpError> {
    let malformed = |reason| RtcpError::Malformed {
        offset,
        kind: "BYE",
        reason,
    };
    let ids = body.get(..count * 4).ok_or(malformed(
        "its source count needs more bytes than its length gives",
    ))?;
    let sources = ids
        .chunks_exact(4)
        .map(|id| u32::from_be_bytes([id[0], id[1], id[2], id[3]]))
        .collect();
    let rest = &body[count * 4..];
    let reason = match rest.first() {
        None | Some(0) => None, // no reason, or only padding nulls
        Some(&len) => {
            let text = rest.get(1..1 + usize::from(len)).ok_or(malformed(
                "its reason's length runs past the end of the packet",
            ))?;
            Some(String::from_utf8_lossy(text).into_owned())
        }
    };
    Ok(RtcpPacket::Goodbye(Goodbye { sources, reason }))
}

/// What [`ReceiverStats::on_rtp`] made of a packet's sequence number (RFC 3550 A.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SeqCheck {
    /// Counted as received (in order, late, or a duplicate).
    Valid,
    /// The source is not yet valid: too few packets in sequence so far.
    Probation,
    /// A jump too large to be loss or reordering; a second packet following it restarts the
    /// statistics (the sender restarted its sequence).
    BadJump,
}

/// Reception statistics for one RTP source (RFC 3550 A.1, A.3, A.8). Sans-IO: times come in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceiverStats {
    ssrc: u32,
    started: bool,
    probation: u8,
    max_seq: u16,
    cycles: u32,
    base_seq: u32,
    bad_seq: u32,
    received: u32,
    expected_prior: u32,
    received_prior: u32,
    last_transit: Option<u32>,
    /// Jitter times 16 (the integer form of A.8).
    jitter_x16: u64,
    last_sr: Option<(u32, NtpTime)>,
}

impl ReceiverStats {
    /// Statistics for the source `ssrc`, before its first packet. When the peer's SSRC
    /// changes, start a new one.
    pub fn new(ssrc: u32) -> ReceiverStats {
        ReceiverStats {
            ssrc,
            started: false,
            probation: MIN_SEQUENTIAL,
            max_seq: 0,
            cycles: 0,
            base_seq: 0,
            bad_seq: RTP_SEQ_MOD + 1,
            received: 0,
            expected_prior: 0,
            received_prior: 0,
            last_transit: None,
            jitter_x16: 0,
            last_sr: None,
        }
    }

    /// The source these statistics are about.
    pub fn ssrc(&self) -> u32 {
        self.ssrc
    }

    /// Takes in one received RTP packet: its sequence number, its RTP timestamp, and its
    /// arrival time on a clock of the same rate (8000 Hz for G.711; any origin, may wrap).
    pub fn on_rtp(&mut self, seq: u16, rtp_ts: u32, arrival_rtp_units: u32) -> SeqCheck {
        let check = self.update_seq(seq);
        if check == SeqCheck::Valid {
            self.update_jitter(rtp_ts, arrival_rtp_units);
        }
        check
    }

    fn init_seq(&mut self, seq: u16) {
        self.base_seq = u32::from(seq);
        self.max_seq = seq;
        self.bad_seq = RTP_SEQ_MOD + 1;
        self.cycles = 0;
        self.received = 0;
        self.received_prior = 0;
        self.expected_prior = 0;
        self.last_transit = None;
        self.jitter_x16 = 0;
    }

    /// RFC 3550 A.1 `update_seq`.
    fn update_seq(&mut self, seq: u16) -> SeqCheck {
        if !self.started {
            self.started = true;
            self.init_seq(seq);
            self.max_seq = seq.wrapping_sub(1);
            self.probation = MIN_SEQUENTIAL;
        }
        let udelta = seq.wrapping_sub(self.max_seq);
        if self.probation > 0 {
            if seq == self.max_seq.wrapping_add(1) {
                self.probation -= 1;
                self.max_seq = seq;
                if self.probation == 0 {
                    self.init_seq(seq);
                    self.received += 1;
                    return SeqCheck::Valid;
                }
            } else {
                self.probation = MIN_SEQUENTIAL - 1;
                self.max_seq = seq;
            }
            return SeqCheck::Probation;
        }
        if udelta < MAX_DROPOUT {
            if seq < self.max_seq {
                self.cycles = self.cycles.wrapping_add(RTP_SEQ_MOD); // wrapped around
            }
            self.max_seq = seq;
        } else if u32::from(udelta) <= RTP_SEQ_MOD - u32::from(MAX_MISORDER) {
            if u32::from(seq) == self.bad_seq {
                // Two sequential packets after a big jump: the sender restarted.
                self.init_seq(seq);
            } else {
                self.bad_seq = (u32::from(seq) + 1) & (RTP_SEQ_MOD - 1);
                return SeqCheck::BadJump;
            }
        }
        // else: a duplicate or a reordered packet; counted, max_seq unchanged.
        self.received = self.received.wrapping_add(1);
        SeqCheck::Valid
    }

    /// RFC 3550 A.8, in the integer form; the first packet only sets the reference transit.
    fn update_jitter(&mut self, rtp_ts: u32, arrival: u32) {
        let transit = arrival.wrapping_sub(rtp_ts);
        if let Some(last) = self.last_transit {
            let d = u64::from((transit.wrapping_sub(last) as i32).unsigned_abs());
            // J += (|D| - J) / 16, with J kept times 16; J never exceeds 16 * 2^31.
            self.jitter_x16 = self.jitter_x16 + d - ((self.jitter_x16 + 8) >> 4);
        }
        self.last_transit = Some(transit);
    }

    /// Takes in an SR from this source: the middle 32 bits of its NTP time and when it arrived.
    pub fn on_sender_report(&mut self, ntp_middle32: u32, arrival: NtpTime) {
        self.last_sr = Some((ntp_middle32, arrival));
    }

    /// Whether the source has become valid (passed probation) and been counted.
    pub fn is_valid(&self) -> bool {
        self.started && self.probation == 0
    }

    /// Packets counted as received since the statistics (re)started.
    pub fn received(&self) -> u32 {
        self.received
    }

    /// The highest sequence number received, extended with the wraparound count.
    pub fn extended_highest_seq(&self) -> u32 {
        self.cycles.wrapping_add(u32::from(self.max_seq))
    }

    /// Packets expected since the statistics (re)started (RFC 3550 A.3).
    pub fn expected(&self) -> u32 {
        if !self.is_valid() {
            return 0;
        }
        self.extended_highest_seq()
            .wrapping_sub(self.base_seq)
            .wrapping_add(1)
    }

    /// Packets lost since the start, unclamped; negative when duplicates outnumber losses.
    pub fn packets_lost(&self) -> i64 {
        i64::from(self.expected()) - i64::from(self.received)
    }

    /// Interarrival jitter in RTP timestamp units.
    pub fn jitter(&self) -> u32 {
        u32::try_from(self.jitter_x16 >> 4).unwrap_or(u32::MAX)
    }

    /// The report block about this source at `now`, and the start of the next report interval
    /// (fraction lost counts from here on). LSR/DLSR come from the last SR received, or are 0.
    pub fn report_block(&mut self, now: NtpTime) -> ReportBlock {
        let expected = self.expected();
        let expected_interval = expected.wrapping_sub(self.expected_prior);
        let received_interval = self.received.wrapping_sub(self.received_prior);
        self.expected_prior = expected;
        self.received_prior = self.received;
        let lost_interval = i64::from(expected_interval) - i64::from(received_interval);
        let fraction_lost = if expected_interval == 0 || lost_interval <= 0 {
            0
        } else {
            ((lost_interval << 8) / i64::from(expected_interval)).min(255) as u8
        };
        let (last_sr, delay_since_last_sr) = match self.last_sr {
            Some((middle, arrival)) => {
                let delay = now.0.saturating_sub(arrival.0) >> 16;
                (middle, u32::try_from(delay).unwrap_or(u32::MAX))
            }
            None => (0, 0),
        };
        ReportBlock {
            ssrc: self.ssrc,
            fraction_lost,
            cumulative_lost: self.packets_lost().clamp(-0x80_0000, 0x7F_FFFF) as i32,
            extended_highest_seq: self.extended_highest_seq(),
            jitter: self.jitter(),
            last_sr,
            delay_since_last_sr,
        }
    }
}

/// What we have sent on one RTP stream, and the RTCP packets that report it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SenderStats {
    cname: String,
    packets: u32,
    octets: u32,
    last_rtp_timestamp: Option<u32>,
    /// Packets sent at the last report and at the one before it.
    packets_at_reports: [u32; 2],
}

impl SenderStats {
    /// Statistics for a stream whose SDES CNAME is `cname` (e.g. `hotline@<host>`; at most
    /// 255 bytes are sent).
    pub fn new(cname: impl Into<String>) -> SenderStats {
        SenderStats {
            cname: cname.into(),
            packets: 0,
            octets: 0,
            last_rtp_timestamp: None,
            packets_at_reports: [0; 2],
        }
    }

    /// Takes in one RTP packet we sent: its timestamp and its payload size (header excluded).
    pub fn on_rtp_sent(&mut self, rtp_ts: u32, payload_len: usize) {
        self.packets = self.packets.wrapping_add(1);
        let len = u32::try_from(payload_len).unwrap_or(u32::MAX);
        self.octets = self.octets.wrapping_add(len);
        self.last_rtp_timestamp = Some(rtp_ts);
    }

    /// RTP packets sent (the SR's packet count; wraps at 2^32).
    pub fn packets_sent(&self) -> u32 {
        self.packets
    }

    /// RTP payload octets sent (the SR's octet count; wraps at 2^32).
    pub fn octets_sent(&self) -> u32 {
        self.octets
    }

    /// The timestamp of the last RTP packet sent, from which the caller derives the SR's.
    pub fn last_rtp_timestamp(&self) -> Option<u32> {
        self.last_rtp_timestamp
    }

    /// Whether the next report should be an SR: RTP was sent since the report before last
    /// (RFC 3550 §6.4). On hold, with nothing sent, send [`Self::receiver_report`] instead.
    pub fn should_send_sr(&self) -> bool {
        self.packets != self.packets_at_reports[0]
    }

    fn note_report(&mut self) {
        self.packets_at_reports = [self.packets_at_reports[1], self.packets];
    }

    fn sdes(&self, ssrc: u32) -> RtcpPacket {
        RtcpPacket::SourceDescription(SourceDescription {
            chunks: vec![SdesChunk {
                ssrc,
                items: vec![SdesItem {
                    kind: SDES_CNAME,
                    text: self.cname.clone(),
                }],
            }],
        })
    }

    /// Report blocks beyond the 31 one packet holds go into further RRs (RFC 3550 §6.4.2).
    fn overflow_rrs(ssrc: u32, blocks: &[ReportBlock]) -> impl Iterator<Item = RtcpPacket> + '_ {
        blocks.chunks(MAX_COUNT).map(move |chunk| {
            RtcpPacket::ReceiverReport(ReceiverReport {
                ssrc,
                reports: chunk.to_vec(),
            })
        })
    }

    /// A compound SR + SDES CNAME: `ntp_time` is now, `rtp_ts` the RTP timestamp that
    /// corresponds to now (the last sent timestamp plus the time since, in 8 kHz units).
    pub fn sender_report(
        &mut self,
        ssrc: u32,
        ntp_time: NtpTime,
        rtp_ts: u32,
        report_blocks: &[ReportBlock],
    ) -> Vec<u8> {
        self.note_report();
        let (first, rest) = report_blocks.split_at(report_blocks.len().min(MAX_COUNT));
        let mut packets = vec![RtcpPacket::SenderReport(SenderReport {
            ssrc,
            ntp_time,
            rtp_timestamp: rtp_ts,
            packet_count: self.packets,
            octet_count: self.octets,
            reports: first.to_vec(),
        })];
        packets.extend(Self::overflow_rrs(ssrc, rest));
        packets.push(self.sdes(ssrc));
        encode_compound(&packets)
    }

    /// A compound RR + SDES CNAME, for when we have sent no RTP lately (e.g. on hold).
    pub fn receiver_report(&mut self, ssrc: u32, report_blocks: &[ReportBlock]) -> Vec<u8> {
        self.note_report();
        let mut packets: Vec<RtcpPacket> = Self::overflow_rrs(ssrc, report_blocks).collect();
        if packets.is_empty() {
            packets.push(RtcpPacket::ReceiverReport(ReceiverReport {
                ssrc,
                reports: Vec::new(),
            }));
        }
        packets.push(self.sdes(ssrc));
        encode_compound(&packets)
    }

    /// A compound empty RR + SDES CNAME + BYE, to send when the call ends (RFC 3550 §6.1: a
    /// BYE too goes in a compound that starts with a report).
    pub fn bye(&self, ssrc: u32) -> Vec<u8> {
        encode_compound(&[
            RtcpPacket::ReceiverReport(ReceiverReport {
                ssrc,
                reports: Vec::new(),
            }),
            self.sdes(ssrc),
            RtcpPacket::Goodbye(Goodbye {
                sources: vec![ssrc],
                reason: None,
            }),
        ])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const OUR_SSRC: u32 = 0x1122_3344;
    const PEER_SSRC: u32 = 0xAABB_CCDD;
    /// 20 ms of G.711 in RTP units.
    const FRAME: u32 = 160;

    fn block() -> ReportBlock {
        ReportBlock {
            ssrc: PEER_SSRC,
            fraction_lost: 25,
            cumulative_lost: 100,
            extended_highest_seq: 0x0001_0005,
            jitter: 31,
            last_sr: 0xC3D4_8000,
            delay_since_last_sr: 0x0001_8000,
        }
    }

    /// SR (RC=1) + SDES CNAME, laid out field by field from RFC 3550 §6.4.1 and §6.5.
    const SR_COMPOUND: &[u8] = &[
        0x81, 200, 0x00, 12, // V=2 P=0 RC=1, PT=SR, length 12 words + 1
        0x11, 0x22, 0x33, 0x44, // SSRC of sender
        0xE1, 0xB2, 0xC3, 0xD4, 0x80, 0x00, 0x00, 0x00, // NTP timestamp, x.5 s
        0x00, 0x01, 0x00, 0x00, // RTP timestamp
        0x00, 0x00, 0x00, 100, // sender's packet count
        0x00, 0x00, 0x3E, 0x80, // sender's octet count (16000)
        0xAA, 0xBB, 0xCC, 0xDD, // SSRC_1
        25, 0x00, 0x00, 100, // fraction lost 25/256, cumulative lost 100
        0x00, 0x01, 0x00, 0x05, // extended highest sequence number
        0x00, 0x00, 0x00, 31, // interarrival jitter
        0xC3, 0xD4, 0x80, 0x00, // LSR
        0x00, 0x01, 0x80, 0x00, // DLSR, 1.5 s
        0x81, 202, 0x00, 5, // V=2 SC=1, PT=SDES, length 5 words + 1
        0x11, 0x22, 0x33, 0x44, // SSRC
        1, 11, b'h', b'o', b't', b'l', b'i', b'n', b'e', b'@', b'p', b'b', b'x', // CNAME
        0, 0, 0, // null item, padding to 32 bits
    ];

    /// Empty RR + BYE with a reason.
    const RR_BYE: &[u8] = &[
        0x80, 201, 0x00, 1, // V=2 RC=0, PT=RR, length 1
        0x11, 0x22, 0x33, 0x44, // reporter SSRC
        0x81, 203, 0x00, 3, // V=2 SC=1, PT=BYE, length 3
        0x11, 0x22, 0x33, 0x44, // SSRC leaving
        6, b'h', b'a', b'n', b'g', b'u', b'p', 0, // reason, padded
    ];

    fn sr_packet() -> SenderReport {
        SenderReport {
            ssrc: OUR_SSRC,
            ntp_time: NtpTime(0xE1B2_C3D4_8000_0000),
            rtp_timestamp: 0x0001_0000,
            packet_count: 100,
            octet_count: 16_000,
            reports: vec![block()],
        }
    }

    fn cname_sdes(ssrc: u32, cname: &str) -> RtcpPacket {
        RtcpPacket::SourceDescription(SourceDescription {
            chunks: vec![SdesChunk {
                ssrc,
                items: vec![SdesItem {
                    kind: SDES_CNAME,
                    text: cname.into(),
                }],
            }],
        })
    }

    #[test]
    fn sender_report_encodes_to_the_rfc_layout() {
        let mut sender = SenderStats::new("hotline@pbx");
        for i in 0..100u32 {
            sender.on_rtp_sent(i * FRAME, 160);
        }
        assert!(sender.should_send_sr());
        let bytes = sender.sender_report(
            OUR_SSRC,
            NtpTime(0xE1B2_C3D4_8000_0000),
            0x0001_0000,
            &[block()],
        );
        assert_eq!(bytes, SR_COMPOUND);
    }

    #[test]
    fn sender_report_parses_from_the_rfc_layout() {
        let packets = parse_compound(SR_COMPOUND).unwrap();
        assert_eq!(
            packets,
            [
                RtcpPacket::SenderReport(sr_packet()),
                cname_sdes(OUR_SSRC, "hotline@pbx")
            ]
        );
        let RtcpPacket::SourceDescription(sdes) = &packets[1] else {
            unreachable!()
        };
        assert_eq!(sdes.chunks[0].cname(), Some("hotline@pbx"));
    }

    #[test]
    fn round_trip_time_from_our_sr_and_the_peers_rr() {
        let t0 = UNIX_EPOCH + Duration::from_secs(1_760_000_000);
        let mut us = SenderStats::new("hotline@pbx");
        us.on_rtp_sent(0, 160);
        let sr = us.sender_report(OUR_SSRC, ntp_time(t0), 160, &[]);

        // The peer gets it 40 ms later and reports 460 ms after that.
        let mut peer = ReceiverStats::new(OUR_SSRC);
        let packets = parse_compound(&sr).unwrap();
        let RtcpPacket::SenderReport(report) = &packets[0] else {
            panic!("{packets:?}")
        };
        peer.on_sender_report(
            report.ntp_middle32(),
            ntp_time(t0 + Duration::from_millis(40)),
        );
        let block = peer.report_block(ntp_time(t0 + Duration::from_millis(500)));

        // Back with us 40 ms later: 540 ms since our SR, 460 of them held by the peer.
        let rtt = round_trip_time(ntp_time(t0 + Duration::from_millis(540)), &block).unwrap();
        assert!(
            rtt.abs_diff(Duration::from_millis(80)) < Duration::from_micros(100),
            "{rtt:?}"
        );
    }

    #[test]
    fn bye_with_reason_round_trips_through_known_bytes() {
        let packets = vec![
            RtcpPacket::ReceiverReport(ReceiverReport {
                ssrc: OUR_SSRC,
                reports: vec![],
            }),
            RtcpPacket::Goodbye(Goodbye {
                sources: vec![OUR_SSRC],
                reason: Some("hangup".into()),
            }),
        ];
        assert_eq!(encode_compound(&packets), RR_BYE);
        assert_eq!(parse_compound(RR_BYE).unwrap(), packets);
    }

    #[test]
    fn our_bye_is_a_compound_of_rr_sdes_and_bye() {
        let packets = parse_compound(&SenderStats::new("hotline@pbx").bye(OUR_SSRC)).unwrap();
        assert_eq!(
            packets,
            [
                RtcpPacket::ReceiverReport(ReceiverReport {
                    ssrc: OUR_SSRC,
                    reports: vec![]
                }),
                cname_sdes(OUR_SSRC, "hotline@pbx"),
                RtcpPacket::Goodbye(Goodbye {
                    sources: vec![OUR_SSRC],
                    reason: None
                }),
            ]
        );
    }

    #[test]
    fn on_hold_we_send_receiver_reports() {
        let mut sender = SenderStats::new("hotline@pbx");
        assert!(!sender.should_send_sr(), "nothing sent yet");
        sender.on_rtp_sent(0, 160);
        assert!(sender.should_send_sr());
        sender.sender_report(OUR_SSRC, NtpTime(1 << 32), 0, &[]);
        assert!(
            sender.should_send_sr(),
            "sent within the interval before the last report"
        );
        let rr = sender.receiver_report(OUR_SSRC, &[block()]);
        assert!(
            !sender.should_send_sr(),
            "on hold: nothing sent for two intervals"
        );
        assert_eq!(
            parse_compound(&rr).unwrap(),
            [
                RtcpPacket::ReceiverReport(ReceiverReport {
                    ssrc: OUR_SSRC,
                    reports: vec![block()]
                }),
                cname_sdes(OUR_SSRC, "hotline@pbx"),
            ]
        );
    }

    #[test]
    fn more_than_31_blocks_spill_into_further_receiver_reports() {
        let blocks: Vec<ReportBlock> = (0..40)
            .map(|i| ReportBlock { ssrc: i, ..block() })
            .collect();
        let bytes = SenderStats::new("x").sender_report(OUR_SSRC, NtpTime(0), 0, &blocks);
        let packets = parse_compound(&bytes).unwrap();
        let RtcpPacket::SenderReport(sr) = &packets[0] else {
            panic!("{packets:?}")
        };
        let RtcpPacket::ReceiverReport(rr) = &packets[1] else {
            panic!("{packets:?}")
        };
        assert_eq!((sr.reports.len(), rr.reports.len()), (31, 9));
        assert_eq!(rr.reports[8].ssrc, 39);
    }

    #[test]
    fn negative_cumulative_loss_is_sign_extended() {
        let negative = ReportBlock {
            cumulative_lost: -5,
            ..block()
        };
        let bytes = encode_compound(&[RtcpPacket::ReceiverReport(ReceiverReport {
            ssrc: 1,
            reports: vec![negative],
        })]);
        assert_eq!(&bytes[12..16], &[25, 0xFF, 0xFF, 0xFB]);
        let packets = parse_compound(&bytes).unwrap();
        assert_eq!(
            packets,
            [RtcpPacket::ReceiverReport(ReceiverReport {
                ssrc: 1,
                reports: vec![negative]
            })]
        );
    }

    #[test]
    fn long_cname_is_cut_at_255_bytes_on_a_char_boundary() {
        let cname = "é".repeat(200); // 400 bytes
        let bytes = SenderStats::new(cname).receiver_report(OUR_SSRC, &[]);
        let packets = parse_compound(&bytes).unwrap();
        let RtcpPacket::SourceDescription(sdes) = &packets[1] else {
            panic!()
        };
        assert_eq!(sdes.chunks[0].cname().map(str::len), Some(254));
    }

    #[test]
    fn unknown_packet_types_are_skipped() {
        let mut bytes = RR_BYE[..8].to_vec();
        // APP (204): V=2 subtype 0, length 2: SSRC + name "TEST".
        bytes.extend_from_slice(&[0x80, 204, 0x00, 2, 1, 2, 3, 4, b'T', b'E', b'S', b'T']);
        // Transport feedback (205), generic NACK, length 3.
        bytes.extend_from_slice(&[0x81, 205, 0x00, 3, 1, 2, 3, 4, 5, 6, 7, 8, 0, 1, 0, 0]);
        bytes.extend_from_slice(&RR_BYE[8..]);
        let packets = parse_compound(&bytes).unwrap();
        assert_eq!(packets, parse_compound(RR_BYE).unwrap());
    }

    #[test]
    fn padding_on_the_last_packet_is_removed() {
        // RR with one report block, P bit set and 4 octets of padding.
        let mut bytes = encode_compound(&[RtcpPacket::ReceiverReport(ReceiverReport {
            ssrc: 7,
            reports: vec![block()],
        })]);
        bytes[0] |= 0x20;
        bytes[3] += 1;
        bytes.extend_from_slice(&[0, 0, 0, 4]);
        let packets = parse_compound(&bytes).unwrap();
        assert_eq!(
            packets,
            [RtcpPacket::ReceiverReport(ReceiverReport {
                ssrc: 7,
                reports: vec![block()]
            })]
        );
    }

    #[test]
    fn profile_extensions_after_report_blocks_are_skipped() {
        let mut bytes = RR_BYE[..8].to_vec();
        bytes[3] = 2;
        bytes.extend_from_slice(&[9, 9, 9, 9]);
        assert_eq!(
            parse_compound(&bytes).unwrap(),
            [RtcpPacket::ReceiverReport(ReceiverReport {
                ssrc: OUR_SSRC,
                reports: vec![]
            })]
        );
    }

    #[test]
    fn malformed_datagrams_are_refused_with_the_fault() {
        assert_eq!(parse_compound(&[]), Ok(vec![]));
        assert_eq!(
            parse_compound(&[0x80, 201]),
            Err(RtcpError::Truncated {
                offset: 0,
                needed: 4,
                available: 2
            })
        );
        // Length says 3 words follow, 1 does.
        assert_eq!(
            parse_compound(&[0x80, 201, 0, 3, 1, 2, 3, 4]),
            Err(RtcpError::Truncated {
                offset: 0,
                needed: 16,
                available: 8
            })
        );
        // Second packet of a compound is cut short.
        let mut cut = SR_COMPOUND.to_vec();
        cut.truncate(SR_COMPOUND.len() - 4);
        assert!(matches!(
            parse_compound(&cut),
            Err(RtcpError::Truncated { offset: 52, .. })
        ));
        // RTP (version 2 but PT 0 is RTCP-impossible, so try STUN: version 0).
        assert_eq!(
            parse_compound(&[0x00, 0x01, 0, 0]),
            Err(RtcpError::BadVersion {
                offset: 0,
                version: 0
            })
        );
        // RR claims one report block in an 8-byte packet.
        assert!(matches!(
            parse_compound(&[0x81, 201, 0, 1, 1, 2, 3, 4]),
            Err(RtcpError::Malformed { kind: "RR", .. })
        ));
        // SR without sender info.
        assert!(matches!(
            parse_compound(&[0x80, 200, 0, 1, 1, 2, 3, 4]),
            Err(RtcpError::Malformed { kind: "SR", .. })
        ));
        // Padding count larger than the packet, and zero.
        assert!(matches!(
            parse_compound(&[0xA0, 201, 0, 1, 1, 2, 3, 9]),
            Err(RtcpError::BadPadding { padding: 9, .. })
        ));
        assert!(matches!(
            parse_compound(&[0xA0, 201, 0, 1, 1, 2, 3, 0]),
            Err(RtcpError::BadPadding { padding: 0, .. })
        ));
        // SDES item running past the end; BYE reason running past the end.
        assert!(matches!(
            parse_compound(&[0x81, 202, 0, 2, 1, 2, 3, 4, 1, 9, b'x', 0]),
            Err(RtcpError::Malformed { kind: "SDES", .. })
        ));
        assert!(matches!(
            parse_compound(&[0x81, 203, 0, 2, 1, 2, 3, 4, 9, b'x', 0, 0]),
            Err(RtcpError::Malformed { kind: "BYE", .. })
        ));
        // BYE claiming two sources with room for one.
        assert!(matches!(
            parse_compound(&[0x82, 203, 0, 1, 1, 2, 3, 4]),
            Err(RtcpError::Malformed { kind: "BYE", .. })
        ));
        let message = parse_compound(&[0x00, 0x01, 0, 0]).unwrap_err().to_string();
        assert!(message.contains("not RTCP"), "{message}");
    }

    /// Feeds `seqs` as packets sent every 20 ms and arriving `delay(i)` units late.
    fn feed(
        stats: &mut ReceiverStats,
        seqs: impl IntoIterator<Item = u16>,
        delay: impl Fn(u32) -> u32,
    ) {
        for seq in seqs {
            let ts = u32::from(seq).wrapping_mul(FRAME);
            stats.on_rtp(
                seq,
                ts,
                ts.wrapping_add(1000).wrapping_add(delay(u32::from(seq))),
            );
        }
    }

    #[test]
    fn ten_percent_loss_is_25_of_256() {
        let mut stats = ReceiverStats::new(PEER_SSRC);
        // Every tenth packet (5, 15, ...) lost; packet 0 is spent on probation.
        feed(&mut stats, (0..=1000).filter(|s| s % 10 != 5), |_| 0);
        let report = stats.report_block(NtpTime(0));
        assert_eq!(stats.expected(), 1000);
        assert_eq!(stats.received(), 900);
        assert_eq!(report.fraction_lost, 25);
        assert_eq!(report.cumulative_lost, 100);
        assert_eq!(report.extended_highest_seq, 1000);
        assert_eq!(report.jitter, 0, "steady arrivals have no jitter");
        assert_eq!((report.last_sr, report.delay_since_last_sr), (0, 0));

        // The next interval has no loss: fraction back to 0, cumulative stays.
        feed(&mut stats, 1001..=1100, |_| 0);
        let report = stats.report_block(NtpTime(0));
        assert_eq!((report.fraction_lost, report.cumulative_lost), (0, 100));
    }

    #[test]
    fn sequence_wraparound_counts_a_cycle_not_a_loss() {
        let mut stats = ReceiverStats::new(PEER_SSRC);
        feed(&mut stats, (65_500..=u16::MAX).chain(0..=100), |_| 0);
        let report = stats.report_block(NtpTime(0));
        assert_eq!(report.extended_highest_seq, 65_536 + 100);
        assert_eq!(report.cumulative_lost, 0);
        assert_eq!(report.fraction_lost, 0);
        assert_eq!(stats.expected(), stats.received());
    }

    #[test]
    fn loss_across_the_wrap_is_counted() {
        let mut stats = ReceiverStats::new(PEER_SSRC);
        feed(&mut stats, (65_530..=65_533).chain(3..=10), |_| 0);
        // Expected 65531..=65535 and 0..=10: 16; missing 65534, 65535, 0, 1, 2.
        assert_eq!(stats.expected(), 16);
        assert_eq!(stats.report_block(NtpTime(0)).cumulative_lost, 5);
    }

    #[test]
    fn probation_then_valid() {
        let mut stats = ReceiverStats::new(PEER_SSRC);
        assert_eq!(stats.on_rtp(100, 0, 0), SeqCheck::Probation);
        assert!(!stats.is_valid());
        assert_eq!(
            stats.report_block(NtpTime(0)),
            ReportBlock {
                ssrc: PEER_SSRC,
                extended_highest_seq: 100,
                ..ReportBlock::default()
            }
        );
        // Out of sequence during probation: probation starts over.
        assert_eq!(stats.on_rtp(200, 0, 0), SeqCheck::Probation);
        assert_eq!(stats.on_rtp(201, FRAME, FRAME), SeqCheck::Valid);
        assert!(stats.is_valid());
        assert_eq!((stats.expected(), stats.received()), (1, 1));
    }

    #[test]
    fn a_sender_restart_resets_the_statistics() {
        let mut stats = ReceiverStats::new(PEER_SSRC);
        feed(&mut stats, 0..50, |_| 0);
        assert_eq!(stats.on_rtp(40_000, 0, 0), SeqCheck::BadJump);
        assert_eq!(stats.received(), 49, "the jump is not counted");
        assert_eq!(stats.on_rtp(40_001, FRAME, FRAME), SeqCheck::Valid);
        assert_eq!((stats.expected(), stats.received()), (1, 1));
        assert_eq!(stats.extended_highest_seq(), 40_001);
    }

    #[test]
    fn a_single_stray_jump_is_ignored() {
        let mut stats = ReceiverStats::new(PEER_SSRC);
        feed(&mut stats, 0..50, |_| 0);
        assert_eq!(stats.on_rtp(40_000, 0, 0), SeqCheck::BadJump);
        feed(&mut stats, 50..100, |_| 0);
        assert_eq!((stats.expected(), stats.received()), (99, 99));
    }

    #[test]
    fn duplicates_make_loss_negative_and_late_packets_do_not_move_the_maximum() {
        let mut stats = ReceiverStats::new(PEER_SSRC);
        feed(&mut stats, (0..=20).chain([10, 11, 12]), |_| 0);
        assert_eq!(stats.extended_highest_seq(), 20);
        let report = stats.report_block(NtpTime(0));
        assert_eq!((report.cumulative_lost, report.fraction_lost), (-3, 0));
    }

    #[test]
    fn cumulative_loss_is_clamped_to_24_bits() {
        let mut stats = ReceiverStats::new(PEER_SSRC);
        // Jumps of 2999 (under MAX_DROPOUT) lose 2998 packets each.
        let mut seq: u16 = 0;
        stats.on_rtp(seq, 0, 0);
        for _ in 0..3000 {
            seq = seq.wrapping_add(if stats.is_valid() { 2999 } else { 1 });
            stats.on_rtp(seq, 0, 0);
        }
        assert!(stats.packets_lost() > 0x7F_FFFF);
        assert_eq!(stats.report_block(NtpTime(0)).cumulative_lost, 0x7F_FFFF);
    }

    #[test]
    fn jitter_follows_alternating_delay() {
        let mut stats = ReceiverStats::new(PEER_SSRC);
        // Every other packet 80 units (10 ms) late: |D| = 80 each time, J converges to 80.
        feed(&mut stats, 0..2000, |i| if i % 2 == 0 { 0 } else { 80 });
        let jitter = stats.report_block(NtpTime(0)).jitter;
        assert!((78..=80).contains(&jitter), "jitter {jitter}");
    }

    #[test]
    fn jitter_survives_timestamp_and_arrival_wraparound() {
        let mut stats = ReceiverStats::new(PEER_SSRC);
        let start = u32::MAX - 50 * FRAME;
        for i in 0..100u16 {
            let ts = start.wrapping_add(u32::from(i) * FRAME);
            stats.on_rtp(i, ts, ts.wrapping_add(12_345));
        }
        assert_eq!(stats.jitter(), 0);
    }

    #[test]
    fn lsr_and_dlsr_come_from_the_last_sender_report() {
        let mut stats = ReceiverStats::new(PEER_SSRC);
        feed(&mut stats, 0..10, |_| 0);
        let sr_time = NtpTime(0xE1B2_C3D4_8000_0000);
        let arrival = NtpTime(0xE1B2_C3D5_0000_0000);
        stats.on_sender_report(sr_time.middle_32(), arrival);
        let now = NtpTime(arrival.0 + (3u64 << 31)); // 1.5 s later
        let report = stats.report_block(now);
        assert_eq!(report.last_sr, 0xC3D4_8000);
        assert_eq!(report.delay_since_last_sr, 0x0001_8000);
        // A clock that went backwards gives DLSR 0, not a wrapped huge delay.
        assert_eq!(stats.report_block(NtpTime(0)).delay_since_last_sr, 0);
    }

    #[test]
    fn round_trip_time_from_a_peer_report() {
        let sent = NtpTime::from_system_time(UNIX_EPOCH + Duration::from_secs(1_700_000_000));
        let now = NtpTime(sent.0 + (1u64 << 32)); // report arrives 1 s after our SR
        let block = ReportBlock {
            last_sr: sent.middle_32(),
            delay_since_last_sr: 0x0000_C000,
            ..block()
        }; // held 0.75 s
        let rtt = round_trip_time(now, &block).unwrap();
        assert_eq!(rtt, Duration::from_millis(250));
        assert_eq!(
            round_trip_time(
                now,
                &ReportBlock {
                    last_sr: 0,
                    ..block
                }
            ),
            None
        );
        let impossible = ReportBlock {
            delay_since_last_sr: 0x0002_0000,
            ..block
        };
        assert_eq!(round_trip_time(now, &impossible), None);
    }

    #[test]
    fn ntp_time_from_system_time() {
        let epoch = NtpTime::from_system_time(UNIX_EPOCH);
        assert_eq!((epoch.seconds(), epoch.fraction()), (2_208_988_800, 0));
        let half = NtpTime::from_system_time(UNIX_EPOCH + Duration::from_millis(1500));
        assert_eq!(
            (half.seconds(), half.fraction()),
            (2_208_988_801, 0x8000_0000)
        );
        assert_eq!(half.middle_32(), ((2_208_988_801u64 << 16) as u32) | 0x8000);
        let before = NtpTime::from_system_time(UNIX_EPOCH - Duration::from_millis(500));
        assert_eq!(
            (before.seconds(), before.fraction()),
            (2_208_988_799, 0x8000_0000)
        );
        // 2036-02-07T06:28:16Z is the start of NTP era 1: seconds wrap to 0.
        let era1 = NtpTime::from_system_time(
            UNIX_EPOCH + Duration::from_secs((1u64 << 32) - 2_208_988_800),
        );
        assert_eq!(era1.seconds(), 0);
        assert_eq!(
            duration_from_ntp_short(0x0001_8000),
            Duration::from_millis(1500)
        );
    }

    fn arb_block() -> impl Strategy<Value = ReportBlock> + Clone {
        (
            any::<u32>(),
            any::<u8>(),
            -0x80_0000i32..=0x7F_FFFF,
            any::<u32>(),
            any::<u32>(),
            any::<u32>(),
            any::<u32>(),
        )
            .prop_map(
                |(
                    ssrc,
                    fraction_lost,
                    cumulative_lost,
                    extended_highest_seq,
                    jitter,
                    last_sr,
                    delay_since_last_sr,
                )| ReportBlock {
                    ssrc,
                    fraction_lost,
                    cumulative_lost,
                    extended_highest_seq,
                    jitter,
                    last_sr,
                    delay_since_last_sr,
                },
            )
    }

    fn arb_packet() -> impl Strategy<Value = RtcpPacket> {
        let blocks = proptest::collection::vec(arb_block(), 0..=MAX_COUNT);
        let text = "[a-zA-Z0-9@.é -]{0,40}";
        prop_oneof![
            (
                any::<u32>(),
                any::<u64>(),
                any::<u32>(),
                any::<u32>(),
                any::<u32>(),
                blocks.clone()
            )
                .prop_map(
                    |(ssrc, ntp, rtp_timestamp, packet_count, octet_count, reports)| {
                        RtcpPacket::SenderReport(SenderReport {
                            ssrc,
                            ntp_time: NtpTime(ntp),
                            rtp_timestamp,
                            packet_count,
                            octet_count,
                            reports,
                        })
                    }
                ),
            (any::<u32>(), blocks).prop_map(|(ssrc, reports)| RtcpPacket::ReceiverReport(
                ReceiverReport { ssrc, reports }
            )),
            proptest::collection::vec(
                (
                    any::<u32>(),
                    proptest::collection::vec((1u8..=8, text), 0..4)
                ),
                0..4,
            )
            .prop_map(|chunks| RtcpPacket::SourceDescription(SourceDescription {
                chunks: chunks
                    .into_iter()
                    .map(|(ssrc, items)| SdesChunk {
                        ssrc,
                        items: items
                            .into_iter()
                            .map(|(kind, text)| SdesItem { kind, text })
                            .collect()
                    })
                    .collect(),
            })),
            (
                proptest::collection::vec(any::<u32>(), 0..5),
                proptest::option::of("[a-z ]{1,30}")
            )
                .prop_map(|(sources, reason)| RtcpPacket::Goodbye(Goodbye { sources, reason })),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        #[test]
        fn compounds_round_trip(packets in proptest::collection::vec(arb_packet(), 0..5)) {
            let bytes = encode_compound(&packets);
            prop_assert_eq!(bytes.len() % 4, 0);
            prop_assert_eq!(parse_compound(&bytes), Ok(packets));
        }

        #[test]
        fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
            let _ = parse_compound(&bytes);
            // Also with a plausible first header, so the body parsers get exercised.
            let mut framed = vec![0x80 | (bytes.first().copied().unwrap_or(0) & 0x3F), 200 + bytes.len() as u8 % 5];
            framed.extend_from_slice(&((bytes.len() / 4) as u16).to_be_bytes());
            framed.extend_from_slice(&bytes);
            let _ = parse_compound(&framed);
        }

        #[test]
        fn mutated_valid_compounds_never_panic(
            packets in proptest::collection::vec(arb_packet(), 1..4),
            edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..6),
            cut in any::<prop::sample::Index>(),
        ) {
            let mut bytes = encode_compound(&packets);
            for (at, byte) in edits {
                let i = at.index(bytes.len());
                bytes[i] = byte;
            }
            let _ = parse_compound(&bytes);
            let _ = parse_compound(&bytes[..cut.index(bytes.len() + 1)]);
        }

        #[test]
        fn receiver_stats_never_panic(
            packets in proptest::collection::vec((any::<u16>(), any::<u32>(), any::<u32>()), 0..300),
            sr in any::<(u32, u64)>(),
            now in any::<u64>(),
        ) {
            let mut stats = ReceiverStats::new(1);
            stats.on_sender_report(sr.0, NtpTime(sr.1));
            for (i, (seq, ts, arrival)) in packets.into_iter().enumerate() {
                stats.on_rtp(seq, ts, arrival);
                if i % 50 == 0 {
                    let block = stats.report_block(NtpTime(now));
                    prop_assert!((-0x80_0000..=0x7F_FFFF).contains(&block.cumulative_lost));
                }
            }
        }

        #[test]
        fn ntp_conversion_never_panics(secs in any::<u64>(), nanos in 0u32..1_000_000_000, before in any::<bool>()) {
            let offset = Duration::new(secs % (1 << 40), nanos);
            let time = if before { UNIX_EPOCH.checked_sub(offset) } else { UNIX_EPOCH.checked_add(offset) };
            if let Some(time) = time {
                let _ = NtpTime::from_system_time(time);
            }
        }
    }
}
