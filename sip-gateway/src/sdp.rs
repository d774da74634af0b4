//! SDP offer/answer (RFC 4566, RFC 3264) for hotline's audio-only answering endpoint.
//!
//! What goes in: the SDP body of an INVITE or re-INVITE from a carrier trunk, an SBC or a desk
//! phone. What comes out: a [`Negotiated`] media plan (where to send RTP, which G.711 law, which
//! payload type carries DTMF, whether the call is on hold) and the text of our answer. For
//! re-INVITEs from our side, [`build_offer`] writes an offer.
//!
//! Entry points: [`SessionDescription::parse`], [`negotiate`], [`build_answer`], [`build_offer`].
//!
//! *Invariants*: no I/O, no clock, no panics on any input (the body comes off the network).
//! The parser is tolerant: CRLF or LF line ends, unknown lines and attributes, and malformed
//! attributes are skipped; only the lines that give the session its shape (`v=`, `o=`, `c=`,
//! `m=`) are refused when malformed. Negotiation failures are distinct [`SdpError`] variants that
//! the SIP layer answers with `488 Not Acceptable Here` (see [`SdpError::is_not_acceptable`]).
//!
//! Not here: SRTP, ICE, rtcp-mux in our answers (the offered `a=rtcp-mux` is recorded but not
//! accepted, so the peer falls back to RTCP on port + 1 as RFC 5761 requires), codecs other than
//! G.711, and name resolution (a `c=` with a host name is refused, not looked up).

use std::fmt::{self, Write as _};
use std::net::{IpAddr, SocketAddr};

use thiserror::Error;

use crate::g711::Codec;

/// Our packetisation time in milliseconds: we send 20 ms of audio per RTP packet.
pub const PTIME_MS: u32 = 20;

/// The RFC 4733 events we receive, written into `a=fmtp` for telephone-event: the DTMF digits
/// 0-9, `*`, `#` and A-D. We do not echo a wider offered range (often `0-16`, with flash):
/// the answer lists what *we* can receive, and we do nothing with flash.
pub const TELEPHONE_EVENTS: &str = "0-15";

/// What [`build_offer`] offers when given no codec: both G.711 laws, A-law first (the law of
/// Chinese and European networks).
pub const DEFAULT_OFFER: &[Codec] = &[Codec::Pcma, Codec::Pcmu];

/// The clock rate of G.711 and of the telephone-event stream that goes with it.
const CLOCK_RATE: u32 = 8000;

/// How much of an offending line an error message quotes.
const QUOTE_LIMIT: usize = 80;

/// How many offered formats a [`SdpError::NoCommonCodec`] message lists.
const LISTED_FORMATS_LIMIT: usize = 16;

const ORIGIN_SYNTAX: &str = "expected `o=<username> <sess-id> <sess-version> IN <IP4|IP6> \
                             <address>` with a numeric id and version";
const CONNECTION_SYNTAX: &str = "expected `c=IN <IP4|IP6> <address>`";
const MEDIA_SYNTAX: &str = "expected `m=<media> <port> <proto> <format>...` with a numeric port";

/// Why an SDP body could not be parsed, negotiated or offered.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum SdpError {
    /// The body does not start with `v=` (is the Content-Type really `application/sdp`?).
    #[error(
        "SDP body does not start with a `v=` line; check that the message body really is \
         application/sdp and is not empty"
    )]
    MissingVersion,
    /// `v=` holds something other than 0, the only SDP version there is.
    #[error("SDP version `v={0}` is not supported; only v=0 (RFC 4566) exists")]
    UnsupportedVersion(String),
    /// An `o=`, `c=` or `m=` line does not follow RFC 4566 syntax.
    #[error("SDP line {line} is malformed ({reason}): `{text}`")]
    MalformedLine {
        /// 1-based line number in the body.
        line: usize,
        /// What is wrong with it.
        reason: &'static str,
        /// The start of the offending line.
        text: String,
    },
    /// No `m=audio` stream with RTP/AVP or RTP/AVPF and a non-zero port.
    #[error(
        "the offer has no usable audio stream (an m=audio line with RTP/AVP or RTP/AVPF and a \
         non-zero port); answer 488 Not Acceptable Here"
    )]
    NoAudioStream,
    /// The only audio streams offered are encrypted (RTP/SAVP, RTP/SAVPF, UDP/TLS/RTP/SAVPF).
    #[error(
        "the offer only has encrypted audio (SRTP, `{proto}`) and hotline speaks plain RTP; \
         configure the trunk or SBC to offer RTP/AVP, and answer 488 Not Acceptable Here"
    )]
    SrtpOnly {
        /// The offered transport protocol.
        proto: String,
    },
    /// The offered audio streams list no G.711 law that we accept.
    #[error(
        "none of the offered audio formats ({offered}) is one of ours ({ours}); enable G.711 \
         (PCMA or PCMU) on the peer, and answer 488 Not Acceptable Here"
    )]
    NoCommonCodec {
        /// The formats the offer listed, as `pt` or `pt name/rate`.
        offered: String,
        /// Our preference list, by name.
        ours: String,
    },
    /// The chosen audio stream has no `c=` line, neither in the media section nor at session level.
    #[error(
        "m-line {media_index} (0-based) has no connection address: there is no c= line in the \
         media section nor at session level, so there is nowhere to send RTP"
    )]
    MissingConnection {
        /// 0-based index of the m-line.
        media_index: usize,
    },
    /// The connection address is not an IP literal (an FQDN or a non-`IN` network type).
    #[error(
        "connection address `{address}` is not an IPv4 or IPv6 literal; hotline does not \
         resolve names found in SDP, so configure the peer to put its media IP in c="
    )]
    UnresolvedConnection {
        /// The address as written.
        address: String,
    },
}

impl SdpError {
    /// Whether this is a negotiation failure that SIP answers with `488 Not Acceptable Here`
    /// (as opposed to a malformed body, `400 Bad Request`, or a local programming error).
    pub fn is_not_acceptable(&self) -> bool {
        matches!(
            self,
            SdpError::NoAudioStream
                | SdpError::SrtpOnly { .. }
                | SdpError::NoCommonCodec { .. }
                | SdpError::MissingConnection { .. }
                | SdpError::UnresolvedConnection { .. }
        )
    }
}

/// Media direction attribute (RFC 3264 §5.1), from the point of view of the side that wrote it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Direction {
    /// `a=sendrecv`, the default when no direction is written.
    #[default]
    SendRecv,
    /// `a=sendonly`: the writer sends and will not receive (the usual way to put a call on hold).
    SendOnly,
    /// `a=recvonly`: the writer only receives.
    RecvOnly,
    /// `a=inactive`: no media either way.
    Inactive,
}

impl Direction {
    /// The direction an answer takes to this offered direction (RFC 3264 §6.1):
    /// sendonly → recvonly, recvonly → sendonly, inactive → inactive, sendrecv → sendrecv.
    pub fn answer(self) -> Direction {
        match self {
            Direction::SendRecv => Direction::SendRecv,
            Direction::SendOnly => Direction::RecvOnly,
            Direction::RecvOnly => Direction::SendOnly,
            Direction::Inactive => Direction::Inactive,
        }
    }

    /// The attribute name, as written after `a=`.
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::SendRecv => "sendrecv",
            Direction::SendOnly => "sendonly",
            Direction::RecvOnly => "recvonly",
            Direction::Inactive => "inactive",
        }
    }

    /// Whether the side that wrote this direction sends media.
    pub fn sends(self) -> bool {
        matches!(self, Direction::SendRecv | Direction::SendOnly)
    }

    /// Whether the side that wrote this direction wants to receive media.
    pub fn receives(self) -> bool {
        matches!(self, Direction::SendRecv | Direction::RecvOnly)
    }

    fn from_attribute(name: &str) -> Option<Direction> {
        [
            Direction::SendRecv,
            Direction::SendOnly,
            Direction::RecvOnly,
            Direction::Inactive,
        ]
        .into_iter()
        .find(|d| name.eq_ignore_ascii_case(d.as_str()))
    }
}

impl fmt::Display for Direction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The address of a `c=` line (or of an `a=rtcp` attribute), multicast `/ttl` suffixes removed.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ConnectionAddress {
    /// An IPv4 or IPv6 literal; `0.0.0.0` is the old-style (RFC 2543) hold.
    Ip(IpAddr),
    /// A host name, or an address of a network type other than `IN`: kept as written.
    Unresolved(String),
}

impl ConnectionAddress {
    /// The IP address, when it is a literal.
    pub fn ip(&self) -> Option<IpAddr> {
        match self {
            ConnectionAddress::Ip(ip) => Some(*ip),
            ConnectionAddress::Unresolved(_) => None,
        }
    }

    /// Whether this is `0.0.0.0` (or `::`): old-style hold, "do not send me media".
    pub fn is_hold(&self) -> bool {
        self.ip().is_some_and(|ip| ip.is_unspecified())
    }

    fn parse(network_type: &str, address: &str) -> ConnectionAddress {
        // Multicast addresses carry `/ttl[/count]` (IPv4) or `/count` (IPv6).
        let bare = address.split('/').next().unwrap_or(address);
        match bare.parse::<IpAddr>() {
            Ok(ip) if network_type.eq_ignore_ascii_case("IN") => ConnectionAddress::Ip(ip),
            _ => ConnectionAddress::Unresolved(address.to_owned()),
        }
    }
}

impl fmt::Display for ConnectionAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConnectionAddress::Ip(ip) => ip.fmt(f),
            ConnectionAddress::Unresolved(name) => f.write_str(name),
        }
    }
}

/// The `o=` line: who made the session and which version of it this is.
///
/// In a re-INVITE, an unchanged `session_version` means the SDP is unchanged (RFC 3264 §8).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Origin {
    /// User name, `-` when there is none.
    pub username: String,
    /// Session id, stable for the whole dialog.
    pub session_id: u64,
    /// Session version, incremented at each change.
    pub session_version: u64,
    /// Address of the originating host, as written.
    pub address: String,
}

/// An `a=rtpmap:<pt> <encoding>/<clock rate>[/<channels>]` attribute.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Rtpmap {
    /// RTP payload type the mapping is for.
    pub payload_type: u8,
    /// Encoding name as written (`PCMA`, `telephone-event`, `opus`...); compare case-insensitively.
    pub encoding: String,
    /// Clock rate in Hz.
    pub clock_rate: u32,
    /// Channel count, when written.
    pub channels: Option<u8>,
}

/// An `a=fmtp:<pt> <parameters>` attribute.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Fmtp {
    /// RTP payload type the parameters are for.
    pub payload_type: u8,
    /// The format-specific parameters, as written (`0-16` for telephone-event).
    pub params: String,
}

/// An `a=rtcp:<port> [IN IP4 <address>]` attribute (RFC 3605).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RtcpAttribute {
    /// The port the peer receives RTCP on.
    pub port: u16,
    /// The address, when it differs from the RTP one.
    pub address: Option<ConnectionAddress>,
}

/// One `m=` section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MediaDescription {
    /// Media type: `audio`, `video`, `image`, `application`...
    pub media: String,
    /// Transport port; 0 means the stream is disabled or rejected.
    pub port: u16,
    /// Transport protocol: `RTP/AVP`, `RTP/AVPF`, `RTP/SAVP`, `udptl`...
    pub proto: String,
    /// The format list as written (payload type numbers for RTP).
    pub formats: Vec<String>,
    /// Media-level `c=`, which overrides the session-level one.
    pub connection: Option<ConnectionAddress>,
    /// `a=rtpmap` attributes, in order.
    pub rtpmaps: Vec<Rtpmap>,
    /// `a=fmtp` attributes, in order.
    pub fmtps: Vec<Fmtp>,
    /// `a=ptime` in milliseconds.
    pub ptime: Option<u32>,
    /// `a=maxptime` in milliseconds.
    pub maxptime: Option<u32>,
    /// Media-level direction attribute, which overrides the session-level one.
    pub direction: Option<Direction>,
    /// `a=rtcp`.
    pub rtcp: Option<RtcpAttribute>,
    /// Whether `a=rtcp-mux` is present.
    pub rtcp_mux: bool,
}

impl MediaDescription {
    fn new(media: String, port: u16, proto: String, formats: Vec<String>) -> Self {
        MediaDescription {
            media,
            port,
            proto,
            formats,
            connection: None,
            rtpmaps: Vec::new(),
            fmtps: Vec::new(),
            ptime: None,
            maxptime: None,
            direction: None,
            rtcp: None,
            rtcp_mux: false,
        }
    }

    /// The formats that are RTP payload type numbers (0-127), in offered order.
    pub fn payload_types(&self) -> impl Iterator<Item = u8> + '_ {
        self.formats
            .iter()
            .filter_map(|f| f.parse::<u8>().ok())
            .filter(|pt| *pt <= 127)
    }

    /// The first `a=rtpmap` for a payload type.
    pub fn rtpmap(&self, payload_type: u8) -> Option<&Rtpmap> {
        self.rtpmaps.iter().find(|m| m.payload_type == payload_type)
    }

    /// The first `a=fmtp` for a payload type.
    pub fn fmtp(&self, payload_type: u8) -> Option<&Fmtp> {
        self.fmtps.iter().find(|f| f.payload_type == payload_type)
    }

    /// Whether this is an `m=audio` section.
    pub fn is_audio(&self) -> bool {
        self.media.eq_ignore_ascii_case("audio")
    }

    /// Whether the transport is plain RTP: `RTP/AVP` or `RTP/AVPF`.
    pub fn is_plain_rtp(&self) -> bool {
        self.proto.eq_ignore_ascii_case("RTP/AVP") || self.proto.eq_ignore_ascii_case("RTP/AVPF")
    }

    /// Whether the transport is SRTP (`RTP/SAVP`, `RTP/SAVPF`, `UDP/TLS/RTP/SAVPF`...).
    pub fn is_srtp(&self) -> bool {
        let proto = self.proto.to_ascii_uppercase();
        proto.ends_with("/SAVP") || proto.ends_with("/SAVPF")
    }

    /// The payload type this section uses for `codec` at 8 kHz, if it offers it: either a
    /// dynamic or static type with an `a=rtpmap` naming it, or its static type without rtpmap.
    pub fn payload_type_for(&self, codec: Codec) -> Option<u8> {
        self.payload_types().find(|&pt| match self.rtpmap(pt) {
            Some(map) => {
                Codec::from_name(&map.encoding.to_ascii_uppercase()) == Some(codec)
                    && map.clock_rate == CLOCK_RATE
                    && map.channels.is_none_or(|c| c == 1)
            }
            None => pt < 96 && Codec::from_payload_type(pt) == Some(codec),
        })
    }

    /// The payload type of `telephone-event/8000` (RFC 4733), if offered.
    pub fn telephone_event_payload_type(&self) -> Option<u8> {
        self.payload_types().find(|&pt| {
            self.rtpmap(pt).is_some_and(|map| {
                map.encoding.eq_ignore_ascii_case("telephone-event") && map.clock_rate == CLOCK_RATE
            })
        })
    }

    fn describe_formats(&self) -> String {
        let mut out = String::new();
        for (i, format) in self.formats.iter().enumerate() {
            if i == LISTED_FORMATS_LIMIT {
                out.push_str(", ...");
                break;
            }
            if i > 0 {
                out.push_str(", ");
            }
            out.push_str(format);
            let map = format.parse::<u8>().ok().and_then(|pt| self.rtpmap(pt));
            if let Some(map) = map {
                let _ = write!(out, " {}/{}", map.encoding, map.clock_rate);
            }
        }
        out
    }
}

/// A parsed SDP body: the parts an audio answering endpoint needs, unknown lines left out.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SessionDescription {
    /// The `o=` line, when present.
    pub origin: Option<Origin>,
    /// Session-level `c=`.
    pub connection: Option<ConnectionAddress>,
    /// Session-level direction attribute.
    pub direction: Option<Direction>,
    /// The `m=` sections, in order.
    pub media: Vec<MediaDescription>,
}

impl SessionDescription {
    /// Parses an SDP body (CRLF or LF line ends).
    ///
    /// Unknown lines and attributes, and attributes that do not parse, are skipped. The body
    /// must start with `v=0`; malformed `o=`, `c=` and `m=` lines are refused with their line
    /// number, since guessing at them would answer a session the peer did not offer.
    pub fn parse(sdp: &str) -> Result<SessionDescription, SdpError> {
        let mut session = SessionDescription::default();
        let mut seen_version = false;

        for (index, raw) in sdp.split('\n').enumerate() {
            let line_no = index + 1;
            let line = raw.trim_end();
            if line.is_empty() {
                continue;
            }
            let bytes = line.as_bytes();
            // `<type>=<value>`; `get(2..)` cannot fail once byte 1 is the ASCII '='.
            let (kind, value) = match (bytes.first(), bytes.get(1), line.get(2..)) {
                (Some(&kind), Some(b'='), Some(value)) => (kind, value),
                _ if !seen_version => return Err(SdpError::MissingVersion),
                _ => continue,
            };
            if !seen_version {
                if kind != b'v' {
                    return Err(SdpError::MissingVersion);
                }
                if value.trim() != "0" {
                    return Err(SdpError::UnsupportedVersion(quote(value)));
                }
                seen_version = true;
                continue;
            }
            let malformed = |reason| SdpError::MalformedLine {
                line: line_no,
                reason,
                text: quote(line),
            };
            match kind {
                b'o' => {
                    let origin = parse_origin(value).ok_or_else(|| malformed(ORIGIN_SYNTAX))?;
                    session.origin = Some(origin);
                }
                b'c' => {
                    let connection =
                        parse_connection(value).ok_or_else(|| malformed(CONNECTION_SYNTAX))?;
                    match session.media.last_mut() {
                        // Several c= in one media section (layered multicast): keep the first.
                        Some(media) => {
                            media.connection.get_or_insert(connection);
                        }
                        None => session.connection = Some(connection),
                    }
                }
                b'm' => {
                    let media = parse_media(value).ok_or_else(|| malformed(MEDIA_SYNTAX))?;
                    session.media.push(media);
                }
                b'a' => session.apply_attribute(value),
                _ => {}
            }
        }
        if seen_version {
            Ok(session)
        } else {
            Err(SdpError::MissingVersion)
        }
    }

    /// The connection address of an m-line: its own `c=`, else the session-level one.
    pub fn media_connection(&self, media_index: usize) -> Option<&ConnectionAddress> {
        self.media
            .get(media_index)
            .and_then(|m| m.connection.as_ref())
            .or(self.connection.as_ref())
    }

    /// The direction of an m-line: its own attribute, else the session-level one, else sendrecv.
    pub fn media_direction(&self, media_index: usize) -> Direction {
        self.media
            .get(media_index)
            .and_then(|m| m.direction)
            .or(self.direction)
            .unwrap_or_default()
    }

    fn apply_attribute(&mut self, value: &str) {
        let (name, arg) = match value.split_once(':') {
            Some((name, arg)) => (name.trim(), arg.trim()),
            None => (value.trim(), ""),
        };
        if let Some(direction) = Direction::from_attribute(name) {
            match self.media.last_mut() {
                Some(media) => media.direction = Some(direction),
                None => self.direction = Some(direction),
            }
            return;
        }
        // The remaining attributes we keep are media-level only.
        let Some(media) = self.media.last_mut() else {
            return;
        };
        let name = name.to_ascii_lowercase();
        match name.as_str() {
            "rtpmap" => media.rtpmaps.extend(parse_rtpmap(arg)),
            "fmtp" => media.fmtps.extend(parse_fmtp(arg)),
            "ptime" => media.ptime = parse_milliseconds(arg).or(media.ptime),
            "maxptime" => media.maxptime = parse_milliseconds(arg).or(media.maxptime),
            "rtcp" => media.rtcp = parse_rtcp(arg).or(media.rtcp.take()),
            "rtcp-mux" => media.rtcp_mux = true,
            _ => {}
        }
    }
}

/// The first [`QUOTE_LIMIT`] characters of network text, for an error message.
fn quote(text: &str) -> String {
    match text.char_indices().nth(QUOTE_LIMIT) {
        Some((cut, _)) => format!("{}...", &text[..cut]),
        None => text.to_owned(),
    }
}

fn parse_origin(value: &str) -> Option<Origin> {
    let mut fields = value.split_whitespace();
    let username = fields.next()?.to_owned();
    let session_id = fields.next()?.parse().ok()?;
    let session_version = fields.next()?.parse().ok()?;
    let _network_type = fields.next()?;
    let _address_type = fields.next()?;
    let address = fields.next()?.to_owned();
    Some(Origin {
        username,
        session_id,
        session_version,
        address,
    })
}

fn parse_connection(value: &str) -> Option<ConnectionAddress> {
    let mut fields = value.split_whitespace();
    let network_type = fields.next()?;
    let _address_type = fields.next()?;
    let address = fields.next()?;
    Some(ConnectionAddress::parse(network_type, address))
}

fn parse_media(value: &str) -> Option<MediaDescription> {
    let mut fields = value.split_whitespace();
    let media = fields.next()?.to_owned();
    // `<port>/<number of ports>` is allowed; we only use the first port.
    let port = fields.next()?.split('/').next()?.parse().ok()?;
    let proto = fields.next()?.to_owned();
    let formats = fields.map(str::to_owned).collect();
    Some(MediaDescription::new(media, port, proto, formats))
}

fn parse_payload_type(text: &str) -> Option<u8> {
    text.parse::<u8>().ok().filter(|pt| *pt <= 127)
}

fn parse_rtpmap(arg: &str) -> Option<Rtpmap> {
    let (pt, encoding) = arg.split_once(char::is_whitespace)?;
    let mut parts = encoding.trim().split('/');
    let name = parts.next()?.trim();
    if name.is_empty() {
        return None;
    }
    let clock_rate = parts.next()?.trim().parse().ok()?;
    let channels = match parts.next() {
        Some(channels) => Some(channels.trim().parse().ok()?),
        None => None,
    };
    Some(Rtpmap {
        payload_type: parse_payload_type(pt)?,
        encoding: name.to_owned(),
        clock_rate,
        channels,
    })
}

fn parse_fmtp(arg: &str) -> Option<Fmtp> {
    let (pt, params) = arg.split_once(char::is_whitespace).unwrap_or((arg, ""));
    Some(Fmtp {
        payload_type: parse_payload_type(pt)?,
        params: params.trim().to_owned(),
    })
}

/// `20`, and the `20.0` some devices write.
fn parse_milliseconds(arg: &str) -> Option<u32> {
    let whole = match arg.split_once('.') {
        Some((whole, fraction)) if fraction.bytes().all(|b| b.is_ascii_digit()) => whole,
        Some(_) => return None,
        None => arg,
    };
    whole.parse().ok().filter(|ms| *ms > 0)
}

fn parse_rtcp(arg: &str) -> Option<RtcpAttribute> {
    let mut fields = arg.split_whitespace();
    let port = fields.next()?.parse().ok()?;
    let address = match (fields.next(), fields.next(), fields.next()) {
        (Some(network_type), Some(_), Some(address)) => {
            Some(ConnectionAddress::parse(network_type, address))
        }
        _ => None,
    };
    Some(RtcpAttribute { port, address })
}

/// The media plan agreed from an offer: what the RTP session needs to start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Negotiated {
    /// 0-based index of the chosen m-line in the offer (the others are rejected in the answer).
    pub media_index: usize,
    /// Where to send RTP: the `c=` address of the m-line (media level, else session level);
    /// `0.0.0.0` on an old-style hold.
    pub remote_addr: IpAddr,
    /// Where to send RTP: the m-line's port.
    pub remote_port: u16,
    /// Where to send RTCP: the address of `a=rtcp` when it names one, else `remote_addr`.
    pub remote_rtcp_addr: IpAddr,
    /// Where to send RTCP: the port of `a=rtcp` when offered, else `remote_port + 1` (0 if the
    /// RTP port is 65535 and there is no `a=rtcp`: then there is nowhere to send it).
    pub remote_rtcp_port: u16,
    /// The G.711 law, chosen by our preference order among the offered ones.
    pub codec: Codec,
    /// The payload type the offer uses for that codec (the answer must use the same).
    pub payload_type: u8,
    /// The payload type of `telephone-event/8000` in the offer, if offered.
    pub telephone_event: Option<u8>,
    /// The direction the offer asked for (media level, else session level, else sendrecv);
    /// ours is its [`Direction::answer`].
    pub direction: Direction,
    /// Whether the peer put us on hold: sendonly, inactive, or `c=0.0.0.0`. Send no RTP then.
    pub hold: bool,
    /// The packetisation time we send with, in milliseconds (always [`PTIME_MS`]).
    pub ptime: u32,
    /// The `a=ptime` the peer asked for, if any.
    pub offered_ptime: Option<u32>,
    /// The `a=maxptime` the peer asked for, if any.
    pub offered_maxptime: Option<u32>,
    /// Whether the offer had `a=rtcp-mux` (we do not accept it; recorded for later).
    pub rtcp_mux_offered: bool,
}

impl Negotiated {
    /// The direction our answer takes (see [`Direction::answer`]).
    pub fn answer_direction(&self) -> Direction {
        self.direction.answer()
    }

    /// Where to send RTP, as one socket address.
    pub fn remote_rtp(&self) -> SocketAddr {
        SocketAddr::new(self.remote_addr, self.remote_port)
    }

    /// Where to send RTCP, as one socket address.
    pub fn remote_rtcp(&self) -> SocketAddr {
        SocketAddr::new(self.remote_rtcp_addr, self.remote_rtcp_port)
    }
}

/// Chooses the audio stream and codec of an offer, by our codec preference order `prefs`.
///
/// The stream is the first `m=audio` with RTP/AVP or RTP/AVPF, a non-zero port, and a codec
/// in `prefs` (a static PT 0/8 counts without rtpmap; a dynamic PT with `PCMA/8000` counts
/// too). Streams after it, and SRTP streams next to it (the "SRTP if you can" double offer),
/// are rejected in the answer. Errors, in order of precedence: a plain-RTP audio stream with
/// no common codec ([`SdpError::NoCommonCodec`]), else only SRTP audio ([`SdpError::SrtpOnly`]),
/// else [`SdpError::NoAudioStream`]; then the chosen stream's address may be missing or a
/// host name.
pub fn negotiate(offer: &SessionDescription, prefs: &[Codec]) -> Result<Negotiated, SdpError> {
    let mut no_common_codec: Option<String> = None;
    let mut srtp_proto: Option<&str> = None;

    for (media_index, media) in offer.media.iter().enumerate() {
        if !media.is_audio() || media.port == 0 {
            continue;
        }
        if media.is_srtp() {
            srtp_proto.get_or_insert(&media.proto);
            continue;
        }
        if !media.is_plain_rtp() {
            continue;
        }
        let chosen = prefs
            .iter()
            .find_map(|&codec| media.payload_type_for(codec).map(|pt| (codec, pt)));
        let Some((codec, payload_type)) = chosen else {
            no_common_codec.get_or_insert_with(|| media.describe_formats());
            continue;
        };

        let connection = offer
            .media_connection(media_index)
            .ok_or(SdpError::MissingConnection { media_index })?;
        let ip = connection
            .ip()
            .ok_or_else(|| SdpError::UnresolvedConnection {
                address: quote(&connection.to_string()),
            })?;
        let (remote_rtcp_addr, remote_rtcp_port) = match &media.rtcp {
            Some(rtcp) => (
                rtcp.address
                    .as_ref()
                    .and_then(ConnectionAddress::ip)
                    .unwrap_or(ip),
                rtcp.port,
            ),
            None => (ip, media.port.checked_add(1).unwrap_or(0)),
        };
        let direction = offer.media_direction(media_index);
        let hold =
            matches!(direction, Direction::SendOnly | Direction::Inactive) || ip.is_unspecified();

        return Ok(Negotiated {
            media_index,
            remote_addr: ip,
            remote_port: media.port,
            remote_rtcp_addr,
            remote_rtcp_port,
            codec,
            payload_type,
            telephone_event: media.telephone_event_payload_type(),
            direction,
            hold,
            ptime: PTIME_MS,
            offered_ptime: media.ptime,
            offered_maxptime: media.maxptime,
            rtcp_mux_offered: media.rtcp_mux,
        });
    }

    if let Some(offered) = no_common_codec {
        let ours = prefs
            .iter()
            .map(|c| c.name())
            .collect::<Vec<_>>()
            .join(", ");
        return Err(SdpError::NoCommonCodec {
            offered,
            ours: if ours.is_empty() {
                "none".to_owned()
            } else {
                ours
            },
        });
    }
    match srtp_proto {
        Some(proto) => Err(SdpError::SrtpOnly {
            proto: quote(proto),
        }),
        None => Err(SdpError::NoAudioStream),
    }
}

/// Writes our answer to `offer` (CRLF line ends).
///
/// It has as many m-lines as the offer, in the same order (RFC 3264 §6): the negotiated audio
/// stream at `local_ip:local_port` with the offer's transport, codec payload type and
/// telephone-event payload type, `a=ptime:20` and the direction that answers the offer's; every
/// other m-line with port 0. We write no `a=maxptime`: G.711 is decoded sample by sample, so we
/// can receive any packetisation, and a limit would only constrain the peer. `session_id` stays
/// the same for the dialog; `session_version` goes up by one whenever our SDP changes.
///
/// `neg` must come from [`negotiate`] on the same `offer`; should its index be out of range,
/// the audio m-line is appended after the offer's (the SDP stays well formed).
pub fn build_answer(
    offer: &SessionDescription,
    neg: &Negotiated,
    local_ip: IpAddr,
    local_port: u16,
    session_id: u64,
    session_version: u64,
) -> String {
    let mut sdp = session_header(local_ip, session_id, session_version);
    let mut answered = false;
    for (index, media) in offer.media.iter().enumerate() {
        if index == neg.media_index {
            answered = true;
            write_audio_media(
                &mut sdp,
                local_port,
                &media.proto,
                &[(neg.codec, neg.payload_type)],
                neg.telephone_event,
                neg.answer_direction(),
            );
        } else {
            // Rejected: same media, proto and formats, port 0. The format list cannot be empty.
            let formats = if media.formats.is_empty() {
                "0".to_owned()
            } else {
                media.formats.join(" ")
            };
            let _ = write!(sdp, "m={} 0 {} {}\r\n", media.media, media.proto, formats);
        }
    }
    if !answered {
        write_audio_media(
            &mut sdp,
            local_port,
            "RTP/AVP",
            &[(neg.codec, neg.payload_type)],
            neg.telephone_event,
            neg.answer_direction(),
        );
    }
    sdp
}

/// Writes an offer of our own (CRLF line ends), e.g. for a re-INVITE that puts the peer on hold
/// (`Direction::SendOnly`) or takes it off (`Direction::SendRecv`), or for an INVITE that came
/// without an offer.
///
/// `codecs` is our preference order, each at its static payload type (duplicates dropped);
/// `te_pt` adds `telephone-event/8000` (events 0-15) at that payload type. Bump `version` on
/// each offer whose content changes; keep `session_id`.
///
/// The arguments are ours, not the network's, so nothing is refused; two slips are mended so
/// the SDP stays valid: an empty `codecs` offers [`DEFAULT_OFFER`], and a `te_pt` outside the
/// dynamic range 96..=127 (where it could collide with a codec's type) is replaced by 101.
pub fn build_offer(
    local_ip: IpAddr,
    port: u16,
    codecs: &[Codec],
    te_pt: Option<u8>,
    session_id: u64,
    version: u64,
    direction: Direction,
) -> String {
    let codecs = if codecs.is_empty() {
        DEFAULT_OFFER
    } else {
        codecs
    };
    let mut offered: Vec<(Codec, u8)> = Vec::with_capacity(codecs.len());
    for &codec in codecs {
        if !offered.iter().any(|(c, _)| *c == codec) {
            offered.push((codec, codec.payload_type()));
        }
    }
    let te_pt = te_pt.map(|pt| if (96..=127).contains(&pt) { pt } else { 101 });
    let mut sdp = session_header(local_ip, session_id, version);
    write_audio_media(&mut sdp, port, "RTP/AVP", &offered, te_pt, direction);
    sdp
}

fn address_type(ip: IpAddr) -> &'static str {
    match ip {
        IpAddr::V4(_) => "IP4",
        IpAddr::V6(_) => "IP6",
    }
}

fn session_header(local_ip: IpAddr, session_id: u64, session_version: u64) -> String {
    let kind = address_type(local_ip);
    format!(
        "v=0\r\n\
         o=hotline {session_id} {session_version} IN {kind} {local_ip}\r\n\
         s=hotline\r\n\
         c=IN {kind} {local_ip}\r\n\
         t=0 0\r\n"
    )
}

fn write_audio_media(
    sdp: &mut String,
    port: u16,
    proto: &str,
    codecs: &[(Codec, u8)],
    telephone_event: Option<u8>,
    direction: Direction,
) {
    let _ = write!(sdp, "m=audio {port} {proto}");
    for (_, pt) in codecs {
        let _ = write!(sdp, " {pt}");
    }
    if let Some(te) = telephone_event {
        let _ = write!(sdp, " {te}");
    }
    sdp.push_str("\r\n");
    for (codec, pt) in codecs {
        let _ = write!(sdp, "a=rtpmap:{pt} {}/{CLOCK_RATE}\r\n", codec.name());
    }
    if let Some(te) = telephone_event {
        let _ = write!(
            sdp,
            "a=rtpmap:{te} telephone-event/{CLOCK_RATE}\r\na=fmtp:{te} {TELEPHONE_EVENTS}\r\n"
        );
    }
    let _ = write!(sdp, "a=ptime:{PTIME_MS}\r\na={direction}\r\n");
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::net::{Ipv4Addr, Ipv6Addr};

    /// Asterisk 20 (chan_pjsip) calling out through a trunk.
    const ASTERISK: &str = "v=0\r\n\
        o=- 1675938541 1675938541 IN IP4 192.0.2.10\r\n\
        s=Asterisk\r\n\
        c=IN IP4 192.0.2.10\r\n\
        t=0 0\r\n\
        m=audio 10018 RTP/AVP 0 8 101\r\n\
        a=rtpmap:0 PCMU/8000\r\n\
        a=rtpmap:8 PCMA/8000\r\n\
        a=rtpmap:101 telephone-event/8000\r\n\
        a=fmtp:101 0-16\r\n\
        a=ptime:20\r\n\
        a=maxptime:150\r\n\
        a=sendrecv\r\n";

    /// FreeSWITCH 1.10 with G722 first, comfort noise, and an explicit a=rtcp.
    const FREESWITCH: &str = "v=0\r\n\
        o=FreeSWITCH 1700001234 1700001235 IN IP4 198.51.100.7\r\n\
        s=FreeSWITCH\r\n\
        c=IN IP4 198.51.100.7\r\n\
        t=0 0\r\n\
        m=audio 24680 RTP/AVP 9 0 8 101 13\r\n\
        a=rtpmap:9 G722/8000\r\n\
        a=rtpmap:0 PCMU/8000\r\n\
        a=rtpmap:8 PCMA/8000\r\n\
        a=rtpmap:101 telephone-event/8000\r\n\
        a=fmtp:101 0-16\r\n\
        a=rtpmap:13 CN/8000\r\n\
        a=ptime:20\r\n\
        a=sendrecv\r\n\
        a=rtcp:24681 IN IP4 198.51.100.7\r\n";

    /// Cisco CUBE (IOS-XE): media-level c= differs from the session one; PCMU only, no rtpmap
    /// for the static types on some releases.
    const CISCO_CUBE: &str = "v=0\r\n\
        o=CiscoSystemsSIP-GW-UserAgent 4417 9201 IN IP4 203.0.113.20\r\n\
        s=SIP Call\r\n\
        c=IN IP4 203.0.113.20\r\n\
        t=0 0\r\n\
        m=audio 16384 RTP/AVP 0 101 19\r\n\
        c=IN IP4 203.0.113.21\r\n\
        a=rtpmap:101 telephone-event/8000\r\n\
        a=fmtp:101 0-16\r\n\
        a=rtpmap:19 CN/8000\r\n\
        a=ptime:20\r\n";

    /// A Huawei SoftX / ZTE style carrier SBC: PCMA first, G.729 and G.723 too.
    const HUAWEI_SBC: &str = "v=0\r\n\
        o=HuaweiSoftX3000 1073741829 1073741829 IN IP4 203.0.113.40\r\n\
        s=Sip Call\r\n\
        c=IN IP4 203.0.113.40\r\n\
        t=0 0\r\n\
        m=audio 30000 RTP/AVP 8 0 18 4 101\r\n\
        a=rtpmap:8 PCMA/8000\r\n\
        a=rtpmap:0 PCMU/8000\r\n\
        a=rtpmap:18 G729/8000\r\n\
        a=fmtp:18 annexb=no\r\n\
        a=rtpmap:4 G723/8000\r\n\
        a=rtpmap:101 telephone-event/8000\r\n\
        a=fmtp:101 0-15\r\n\
        a=ptime:20\r\n\
        a=sendrecv\r\n";

    /// SIPp's built-in UAC scenario body after keyword substitution (LF line ends).
    const SIPP: &str = "v=0\n\
        o=user1 53655765 2353687637 IN IP4 127.0.0.1\n\
        s=-\n\
        c=IN IP4 127.0.0.1\n\
        t=0 0\n\
        m=audio 6000 RTP/AVP 0\n\
        a=rtpmap:0 PCMU/8000\n";

    /// The same body as it sits in the scenario file, keywords not substituted.
    const SIPP_TEMPLATE: &str = "v=0\n\
        o=user1 53655765 2353687637 IN IP[local_ip_type] [local_ip]\n\
        s=-\n\
        c=IN IP[media_ip_type] [media_ip]\n\
        t=0 0\n\
        m=audio [media_port] RTP/AVP 0\n\
        a=rtpmap:0 PCMU/8000\n";

    /// Linphone 5: opus and speex first, telephone-event at three clock rates.
    const LINPHONE: &str = "v=0\r\n\
        o=alice 3048 2172 IN IP4 192.0.2.55\r\n\
        s=Talk\r\n\
        c=IN IP4 192.0.2.55\r\n\
        t=0 0\r\n\
        a=rtcp-xr:rcvr-rtt=all:10000 stat-summary=loss,dup,jitt,TTL voip-metrics\r\n\
        a=record:off\r\n\
        m=audio 7078 RTP/AVP 96 97 98 0 8 18 101 99 100\r\n\
        a=rtpmap:96 opus/48000/2\r\n\
        a=fmtp:96 useinbandfec=1\r\n\
        a=rtpmap:97 speex/16000\r\n\
        a=fmtp:97 vbr=on\r\n\
        a=rtpmap:98 speex/8000\r\n\
        a=fmtp:98 vbr=on\r\n\
        a=fmtp:18 annexb=yes\r\n\
        a=rtpmap:101 telephone-event/48000\r\n\
        a=rtpmap:99 telephone-event/16000\r\n\
        a=rtpmap:100 telephone-event/8000\r\n\
        a=rtcp-fb:* trr-int 1000\r\n\
        a=rtcp-fb:* ccm tmmbr\r\n";

    /// baresip 3: opus and G722 first, channel counts written, rtcp-mux offered.
    const BARESIP: &str = "v=0\r\n\
        o=- 1286431349 2064938463 IN IP4 192.0.2.77\r\n\
        s=-\r\n\
        c=IN IP4 192.0.2.77\r\n\
        t=0 0\r\n\
        m=audio 41318 RTP/AVP 96 9 0 8 97\r\n\
        b=AS:128\r\n\
        a=rtpmap:96 opus/48000/2\r\n\
        a=fmtp:96 stereo=1;sprop-stereo=1\r\n\
        a=rtpmap:9 G722/8000/1\r\n\
        a=rtpmap:0 PCMU/8000/1\r\n\
        a=rtpmap:8 PCMA/8000/1\r\n\
        a=rtpmap:97 telephone-event/8000\r\n\
        a=fmtp:97 0-15\r\n\
        a=sendrecv\r\n\
        a=label:1\r\n\
        a=rtcp-mux\r\n\
        a=rtcp-rsize\r\n\
        a=ssrc:1473458223 cname:4b2d1a9e-7b42-4f52-9c4d-b1c0a4d5d2e8\r\n";

    /// A video desk phone: video first, then audio with telephone-event at PT 96.
    const VIDEO_AND_AUDIO: &str = "v=0\r\n\
        o=yealink 1890 1890 IN IP4 192.0.2.90\r\n\
        s=SDP data\r\n\
        c=IN IP4 192.0.2.90\r\n\
        t=0 0\r\n\
        m=video 11802 RTP/AVP 99 100\r\n\
        a=rtpmap:99 H264/90000\r\n\
        a=fmtp:99 profile-level-id=42801F; packetization-mode=0\r\n\
        a=rtpmap:100 VP8/90000\r\n\
        a=sendrecv\r\n\
        m=audio 11800 RTP/AVP 8 0 96\r\n\
        a=rtpmap:8 PCMA/8000\r\n\
        a=rtpmap:0 PCMU/8000\r\n\
        a=rtpmap:96 telephone-event/8000\r\n\
        a=fmtp:96 0-15\r\n\
        a=ptime:20\r\n\
        a=sendrecv\r\n";

    const PREFS: &[Codec] = &[Codec::Pcma, Codec::Pcmu];
    const LOCAL_IP: IpAddr = IpAddr::V4(Ipv4Addr::new(198, 51, 100, 1));

    fn parse(sdp: &str) -> SessionDescription {
        SessionDescription::parse(sdp).expect("fixture parses")
    }

    fn negotiated(sdp: &str, prefs: &[Codec]) -> Negotiated {
        negotiate(&parse(sdp), prefs).expect("fixture negotiates")
    }

    fn refusal(sdp: &str) -> SdpError {
        negotiate(&parse(sdp), PREFS).expect_err("offer must be refused")
    }

    fn v4(a: u8, b: u8, c: u8, d: u8, port: u16) -> SocketAddr {
        SocketAddr::new(IpAddr::V4(Ipv4Addr::new(a, b, c, d)), port)
    }

    /// Builds the answer, parses it back, and checks it answers `offer` as `neg` says.
    fn answer_round_trip(offer: &SessionDescription, neg: &Negotiated) -> SessionDescription {
        let text = build_answer(offer, neg, LOCAL_IP, 40_000, 77, 1);
        let answer = SessionDescription::parse(&text).expect("our answer parses");
        assert_eq!(
            answer.media.len(),
            offer.media.len(),
            "same number of m-lines"
        );
        for (i, (ours, theirs)) in answer.media.iter().zip(&offer.media).enumerate() {
            assert_eq!(ours.media, theirs.media, "m-line {i} keeps its media type");
            assert_eq!(ours.proto, theirs.proto, "m-line {i} keeps its transport");
            if i == neg.media_index {
                assert_eq!(ours.port, 40_000);
            } else {
                assert_eq!(ours.port, 0, "m-line {i} is rejected");
            }
        }
        let back = negotiate(&answer, &[neg.codec]).expect("our answer negotiates");
        assert_eq!(back.media_index, neg.media_index);
        assert_eq!(back.codec, neg.codec);
        assert_eq!(back.payload_type, neg.payload_type);
        assert_eq!(back.telephone_event, neg.telephone_event);
        assert_eq!(back.direction, neg.answer_direction());
        assert_eq!(back.remote_rtp(), SocketAddr::new(LOCAL_IP, 40_000));
        assert_eq!(answer.origin.as_ref().map(|o| o.session_version), Some(1));
        answer
    }

    #[test]
    fn asterisk_offer_gets_our_first_choice_and_dtmf() {
        let neg = negotiated(ASTERISK, PREFS);
        assert_eq!(neg.media_index, 0);
        assert_eq!(neg.codec, Codec::Pcma);
        assert_eq!(neg.payload_type, 8);
        assert_eq!(neg.telephone_event, Some(101));
        assert_eq!(neg.remote_rtp(), v4(192, 0, 2, 10, 10018));
        assert_eq!(neg.remote_rtcp(), v4(192, 0, 2, 10, 10019));
        assert_eq!(neg.direction, Direction::SendRecv);
        assert!(!neg.hold);
        assert_eq!(
            (neg.ptime, neg.offered_ptime, neg.offered_maxptime),
            (20, Some(20), Some(150))
        );
        answer_round_trip(&parse(ASTERISK), &neg);
    }

    #[test]
    fn asterisk_answer_text_is_exactly_what_we_promise() {
        let offer = parse(ASTERISK);
        let neg = negotiate(&offer, PREFS).unwrap();
        let answer = build_answer(&offer, &neg, LOCAL_IP, 40_000, 4242, 1);
        assert_eq!(
            answer,
            "v=0\r\n\
             o=hotline 4242 1 IN IP4 198.51.100.1\r\n\
             s=hotline\r\n\
             c=IN IP4 198.51.100.1\r\n\
             t=0 0\r\n\
             m=audio 40000 RTP/AVP 8 101\r\n\
             a=rtpmap:8 PCMA/8000\r\n\
             a=rtpmap:101 telephone-event/8000\r\n\
             a=fmtp:101 0-15\r\n\
             a=ptime:20\r\n\
             a=sendrecv\r\n"
        );
    }

    #[test]
    fn freeswitch_offer_with_g722_first_uses_a_rtcp() {
        let neg = negotiated(FREESWITCH, &[Codec::Pcmu, Codec::Pcma]);
        assert_eq!((neg.codec, neg.payload_type), (Codec::Pcmu, 0));
        assert_eq!(neg.telephone_event, Some(101));
        assert_eq!(neg.remote_rtp(), v4(198, 51, 100, 7, 24680));
        assert_eq!(neg.remote_rtcp(), v4(198, 51, 100, 7, 24681));
        let offer = parse(FREESWITCH);
        assert_eq!(
            offer
                .origin
                .as_ref()
                .map(|o| (o.session_id, o.session_version)),
            Some((1_700_001_234, 1_700_001_235))
        );
        answer_round_trip(&offer, &neg);
    }

    #[test]
    fn a_rtcp_with_its_own_address() {
        let sdp = FREESWITCH.replace(
            "a=rtcp:24681 IN IP4 198.51.100.7",
            "a=rtcp:53020 IN IP4 198.51.100.9",
        );
        let neg = negotiated(&sdp, PREFS);
        assert_eq!(neg.remote_rtp(), v4(198, 51, 100, 7, 24680));
        assert_eq!(neg.remote_rtcp(), v4(198, 51, 100, 9, 53020));
    }

    #[test]
    fn cisco_cube_media_level_address_wins_and_static_pcmu_needs_no_rtpmap() {
        let neg = negotiated(CISCO_CUBE, PREFS);
        assert_eq!((neg.codec, neg.payload_type), (Codec::Pcmu, 0));
        assert_eq!(neg.remote_rtp(), v4(203, 0, 113, 21, 16384));
        assert_eq!(neg.telephone_event, Some(101));
        assert_eq!(neg.offered_ptime, Some(20));
        answer_round_trip(&parse(CISCO_CUBE), &neg);
    }

    #[test]
    fn huawei_sbc_pcma_first_but_our_order_decides() {
        let neg = negotiated(HUAWEI_SBC, &[Codec::Pcmu, Codec::Pcma]);
        assert_eq!((neg.codec, neg.payload_type), (Codec::Pcmu, 0));
        let neg = negotiated(HUAWEI_SBC, PREFS);
        assert_eq!((neg.codec, neg.payload_type), (Codec::Pcma, 8));
        assert_eq!(neg.direction, Direction::SendRecv);
        assert_eq!(neg.offered_ptime, Some(20));
        assert_eq!(
            parse(HUAWEI_SBC).media[0]
                .fmtp(101)
                .map(|f| f.params.as_str()),
            Some("0-15")
        );
        answer_round_trip(&parse(HUAWEI_SBC), &neg);
    }

    #[test]
    fn sipp_default_offer_with_lf_line_ends() {
        let neg = negotiated(SIPP, PREFS);
        assert_eq!((neg.codec, neg.payload_type), (Codec::Pcmu, 0));
        assert_eq!(neg.telephone_event, None);
        assert_eq!(neg.remote_rtp(), v4(127, 0, 0, 1, 6000));
        let answer = answer_round_trip(&parse(SIPP), &neg);
        assert!(
            answer.media[0].rtpmap(101).is_none(),
            "no DTMF offered, none answered"
        );
    }

    #[test]
    fn sipp_template_without_substitution_is_refused_with_its_line() {
        let err = SessionDescription::parse(SIPP_TEMPLATE).unwrap_err();
        assert!(
            matches!(err, SdpError::MalformedLine { line: 6, .. }),
            "{err:?}"
        );
        assert!(err.to_string().contains("[media_port]"), "{err}");
        assert!(!err.is_not_acceptable());
    }

    #[test]
    fn linphone_offer_picks_g711_and_the_8khz_telephone_event() {
        let neg = negotiated(LINPHONE, PREFS);
        assert_eq!((neg.codec, neg.payload_type), (Codec::Pcma, 8));
        assert_eq!(neg.telephone_event, Some(100), "101 and 99 are not 8000 Hz");
        answer_round_trip(&parse(LINPHONE), &neg);
    }

    #[test]
    fn baresip_offer_with_channel_counts_and_rtcp_mux() {
        let neg = negotiated(BARESIP, &[Codec::Pcmu]);
        assert_eq!((neg.codec, neg.payload_type), (Codec::Pcmu, 0));
        assert_eq!(neg.telephone_event, Some(97));
        assert!(neg.rtcp_mux_offered);
        assert_eq!(
            neg.remote_rtcp().port(),
            41319,
            "we do not accept mux: RTCP on port + 1"
        );
        let answer = answer_round_trip(&parse(BARESIP), &neg);
        assert!(!answer.media[0].rtcp_mux);
    }

    #[test]
    fn video_and_audio_offer_rejects_video_in_place() {
        let offer = parse(VIDEO_AND_AUDIO);
        let neg = negotiate(&offer, PREFS).unwrap();
        assert_eq!(neg.media_index, 1);
        assert_eq!((neg.codec, neg.telephone_event), (Codec::Pcma, Some(96)));
        let answer = answer_round_trip(&offer, &neg);
        assert_eq!(answer.media[0].formats, ["99", "100"]);
        let text = build_answer(&offer, &neg, LOCAL_IP, 40_000, 1, 1);
        assert!(
            text.contains("\r\nm=video 0 RTP/AVP 99 100\r\nm=audio 40000 RTP/AVP 8 96\r\n"),
            "{text}"
        );
    }

    fn with_media_lines(session: &str, media: &str) -> String {
        format!("v=0\r\no=- 1 2 IN IP4 192.0.2.10\r\ns=-\r\n{session}t=0 0\r\n{media}")
    }

    #[test]
    fn hold_by_sendonly_is_answered_recvonly() {
        let sdp = ASTERISK.replace("a=sendrecv", "a=sendonly");
        let neg = negotiated(&sdp, PREFS);
        assert!(neg.hold);
        assert_eq!(neg.direction, Direction::SendOnly);
        let answer = answer_round_trip(&parse(&sdp), &neg);
        assert_eq!(answer.media[0].direction, Some(Direction::RecvOnly));
    }

    #[test]
    fn hold_by_inactive_is_answered_inactive() {
        let sdp = ASTERISK.replace("a=sendrecv", "a=inactive");
        let neg = negotiated(&sdp, PREFS);
        assert!(neg.hold);
        let answer = answer_round_trip(&parse(&sdp), &neg);
        assert_eq!(answer.media[0].direction, Some(Direction::Inactive));
    }

    #[test]
    fn old_style_hold_with_zero_address() {
        let sdp = ASTERISK.replace("c=IN IP4 192.0.2.10", "c=IN IP4 0.0.0.0");
        let neg = negotiated(&sdp, PREFS);
        assert!(neg.hold);
        assert_eq!(neg.direction, Direction::SendRecv);
        assert!(neg.remote_rtp().ip().is_unspecified());
        answer_round_trip(&parse(&sdp), &neg);
    }

    #[test]
    fn recvonly_offer_is_not_hold_and_is_answered_sendonly() {
        let sdp = ASTERISK.replace("a=sendrecv", "a=recvonly");
        let neg = negotiated(&sdp, PREFS);
        assert!(!neg.hold);
        assert_eq!(neg.answer_direction(), Direction::SendOnly);
    }

    #[test]
    fn media_level_direction_wins_over_session_level() {
        let media = "m=audio 5000 RTP/AVP 8\r\na=sendrecv\r\n";
        let sdp = with_media_lines("c=IN IP4 192.0.2.10\r\na=sendonly\r\n", media);
        let neg = negotiated(&sdp, PREFS);
        assert_eq!(neg.direction, Direction::SendRecv);
        assert!(!neg.hold);
        // And without a media-level attribute the session-level one applies.
        let sdp = with_media_lines(
            "c=IN IP4 192.0.2.10\r\na=sendonly\r\n",
            "m=audio 5000 RTP/AVP 8\r\n",
        );
        assert!(negotiated(&sdp, PREFS).hold);
    }

    #[test]
    fn srtp_only_offer_is_refused_as_such() {
        let sdp = with_media_lines(
            "c=IN IP4 192.0.2.10\r\n",
            "m=audio 5004 RTP/SAVP 0 8 101\r\n\
             a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVBR|2^20|1:32\r\n\
             a=rtpmap:101 telephone-event/8000\r\n",
        );
        let err = refusal(&sdp);
        assert_eq!(
            err,
            SdpError::SrtpOnly {
                proto: "RTP/SAVP".into()
            }
        );
        assert!(err.is_not_acceptable());
        assert!(
            err.to_string().contains("RTP/AVP"),
            "says what to configure: {err}"
        );
    }

    #[test]
    fn srtp_if_possible_double_offer_takes_the_plain_stream() {
        let sdp = with_media_lines(
            "c=IN IP4 192.0.2.10\r\n",
            "m=audio 5004 RTP/SAVP 8 0\r\n\
             a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVBR\r\n\
             m=audio 5006 RTP/AVP 8 0\r\n",
        );
        let offer = parse(&sdp);
        let neg = negotiate(&offer, PREFS).unwrap();
        assert_eq!((neg.media_index, neg.remote_rtp().port()), (1, 5006));
        answer_round_trip(&offer, &neg);
    }

    #[test]
    fn avpf_offer_is_answered_with_avpf() {
        let sdp = ASTERISK.replace("RTP/AVP ", "RTP/AVPF ");
        let offer = parse(&sdp);
        let neg = negotiate(&offer, PREFS).unwrap();
        let answer = answer_round_trip(&offer, &neg);
        assert_eq!(answer.media[0].proto, "RTP/AVPF");
    }

    #[test]
    fn ipv6_offer() {
        let sdp = "v=0\r\n\
            o=- 20518 0 IN IP6 2001:db8::10\r\n\
            s=-\r\n\
            c=IN IP6 2001:db8::10\r\n\
            t=0 0\r\n\
            m=audio 49170 RTP/AVP 0 8\r\n";
        let neg = negotiated(sdp, PREFS);
        let ip: Ipv6Addr = "2001:db8::10".parse().unwrap();
        assert_eq!(neg.remote_rtp(), SocketAddr::new(IpAddr::V6(ip), 49170));
        assert_eq!(neg.codec, Codec::Pcma);
        let local = IpAddr::V6("2001:db8::1".parse().unwrap());
        let text = build_answer(&parse(sdp), &neg, local, 40_000, 1, 1);
        assert!(
            text.contains("o=hotline 1 1 IN IP6 2001:db8::1\r\n"),
            "{text}"
        );
        assert!(text.contains("c=IN IP6 2001:db8::1\r\n"), "{text}");
        let back = negotiate(&SessionDescription::parse(&text).unwrap(), PREFS).unwrap();
        assert_eq!(back.remote_rtp(), SocketAddr::new(local, 40_000));
    }

    #[test]
    fn missing_connection_is_refused() {
        let sdp = with_media_lines("", "m=audio 5000 RTP/AVP 0\r\n");
        let err = refusal(&sdp);
        assert_eq!(err, SdpError::MissingConnection { media_index: 0 });
        assert!(err.is_not_acceptable());
    }

    #[test]
    fn host_name_connection_is_refused_not_resolved() {
        let sdp = with_media_lines(
            "c=IN IP4 media.example.net\r\n",
            "m=audio 5000 RTP/AVP 0\r\n",
        );
        assert_eq!(
            refusal(&sdp),
            SdpError::UnresolvedConnection {
                address: "media.example.net".into()
            }
        );
    }

    #[test]
    fn telephone_event_at_dynamic_96_and_pcma_at_a_dynamic_type() {
        let sdp = with_media_lines(
            "c=IN IP4 192.0.2.10\r\n",
            "m=audio 5000 RTP/AVP 110 96\r\n\
             a=rtpmap:110 pcma/8000\r\n\
             a=rtpmap:96 telephone-event/8000\r\n\
             a=fmtp:96 0-15\r\n",
        );
        let neg = negotiated(&sdp, PREFS);
        assert_eq!(
            (neg.codec, neg.payload_type, neg.telephone_event),
            (Codec::Pcma, 110, Some(96))
        );
        let answer = answer_round_trip(&parse(&sdp), &neg);
        assert_eq!(answer.media[0].formats, ["110", "96"]);
    }

    #[test]
    fn pcma_at_the_wrong_clock_rate_does_not_count() {
        let sdp = with_media_lines(
            "c=IN IP4 192.0.2.10\r\n",
            "m=audio 5000 RTP/AVP 110\r\na=rtpmap:110 PCMA/16000\r\n",
        );
        assert!(matches!(refusal(&sdp), SdpError::NoCommonCodec { .. }));
    }

    #[test]
    fn no_common_codec_names_what_was_offered() {
        let sdp = with_media_lines(
            "c=IN IP4 192.0.2.10\r\n",
            "m=audio 5000 RTP/AVP 18 101\r\na=rtpmap:18 G729/8000\r\na=rtpmap:101 telephone-event/8000\r\n",
        );
        let err = refusal(&sdp);
        assert_eq!(
            err,
            SdpError::NoCommonCodec {
                offered: "18 G729/8000, 101 telephone-event/8000".into(),
                ours: "PCMA, PCMU".into()
            }
        );
        assert!(err.is_not_acceptable());
        let err = negotiate(&parse(ASTERISK), &[]).unwrap_err();
        assert!(matches!(err, SdpError::NoCommonCodec { ref ours, .. } if ours == "none"));
    }

    #[test]
    fn no_audio_stream_when_only_video_or_audio_is_disabled() {
        let video = with_media_lines("c=IN IP4 192.0.2.10\r\n", "m=video 5000 RTP/AVP 99\r\n");
        assert_eq!(refusal(&video), SdpError::NoAudioStream);
        let disabled = with_media_lines("c=IN IP4 192.0.2.10\r\n", "m=audio 0 RTP/AVP 0\r\n");
        assert_eq!(refusal(&disabled), SdpError::NoAudioStream);
        let t38 = with_media_lines("c=IN IP4 192.0.2.10\r\n", "m=image 5000 udptl t38\r\n");
        assert_eq!(refusal(&t38), SdpError::NoAudioStream);
        assert_eq!(refusal("v=0\r\n"), SdpError::NoAudioStream);
    }

    #[test]
    fn crlf_and_lf_parse_alike_and_unknown_lines_are_skipped() {
        let lf = ASTERISK.replace("\r\n", "\n");
        assert_eq!(parse(&lf), parse(ASTERISK));
        let noisy = ASTERISK.replace(
            "t=0 0\r\n",
            "t=0 0\r\nb=AS:64\r\nz=garbage\r\nnot an sdp line\r\na=x-custom:whatever\r\n\r\n",
        );
        assert_eq!(parse(&noisy), parse(ASTERISK));
    }

    #[test]
    fn malformed_attributes_are_skipped_not_fatal() {
        let sdp = ASTERISK
            .replace("a=ptime:20", "a=ptime:twenty")
            .replace("a=rtpmap:8 PCMA/8000", "a=rtpmap:8 PCMA")
            .replace("a=fmtp:101 0-16", "a=fmtp:xyz 0-16");
        let offer = parse(&sdp);
        assert_eq!(offer.media[0].ptime, None);
        assert!(offer.media[0].rtpmap(8).is_none());
        // Static PT 8 still counts without its rtpmap.
        assert_eq!(negotiate(&offer, PREFS).unwrap().codec, Codec::Pcma);
    }

    #[test]
    fn decimal_ptime_is_read() {
        let offer = parse(&ASTERISK.replace("a=ptime:20", "a=ptime:20.0"));
        assert_eq!(offer.media[0].ptime, Some(20));
    }

    #[test]
    fn bodies_that_are_not_sdp_are_refused() {
        assert_eq!(SessionDescription::parse(""), Err(SdpError::MissingVersion));
        assert_eq!(
            SessionDescription::parse("<xml/>"),
            Err(SdpError::MissingVersion)
        );
        assert_eq!(
            SessionDescription::parse("o=- 1 1 IN IP4 1.2.3.4\r\nv=0\r\n"),
            Err(SdpError::MissingVersion)
        );
        assert_eq!(
            SessionDescription::parse("v=1\r\n"),
            Err(SdpError::UnsupportedVersion("1".into()))
        );
        let err = SessionDescription::parse("v=0\r\no=- x 1 IN IP4 1.2.3.4\r\n").unwrap_err();
        assert!(matches!(err, SdpError::MalformedLine { line: 2, .. }));
        let err = SessionDescription::parse("v=0\r\nc=IN\r\n").unwrap_err();
        assert!(matches!(err, SdpError::MalformedLine { line: 2, .. }));
    }

    #[test]
    fn long_offending_lines_are_quoted_short() {
        let sdp = format!("v=0\r\nm=audio {} RTP/AVP 0\r\n", "9".repeat(500));
        let err = SessionDescription::parse(&sdp).unwrap_err().to_string();
        assert!(err.len() < 300, "{err}");
    }

    #[test]
    fn our_offer_parses_and_negotiates() {
        let text = build_offer(
            LOCAL_IP,
            40_000,
            &[Codec::Pcma, Codec::Pcmu, Codec::Pcma],
            Some(101),
            9,
            3,
            Direction::SendOnly,
        );
        assert_eq!(
            text,
            "v=0\r\n\
             o=hotline 9 3 IN IP4 198.51.100.1\r\n\
             s=hotline\r\n\
             c=IN IP4 198.51.100.1\r\n\
             t=0 0\r\n\
             m=audio 40000 RTP/AVP 8 0 101\r\n\
             a=rtpmap:8 PCMA/8000\r\n\
             a=rtpmap:0 PCMU/8000\r\n\
             a=rtpmap:101 telephone-event/8000\r\n\
             a=fmtp:101 0-15\r\n\
             a=ptime:20\r\n\
             a=sendonly\r\n"
        );
        let neg = negotiate(&SessionDescription::parse(&text).unwrap(), &[Codec::Pcmu]).unwrap();
        assert_eq!(
            (neg.codec, neg.telephone_event, neg.hold),
            (Codec::Pcmu, Some(101), true)
        );
    }

    #[test]
    fn our_offer_mends_slips_in_its_arguments() {
        let offer = |codecs: &[Codec], te| {
            let text = build_offer(LOCAL_IP, 1, codecs, te, 1, 1, Direction::SendRecv);
            SessionDescription::parse(&text).unwrap().media.remove(0)
        };
        assert_eq!(offer(&[], None).formats, ["8", "0"], "no codec: both laws");
        assert_eq!(
            offer(PREFS, Some(8)).formats,
            ["8", "0", "101"],
            "PT 8 is PCMA's"
        );
        assert_eq!(
            offer(PREFS, Some(128)).telephone_event_payload_type(),
            Some(101)
        );
        assert_eq!(offer(&[Codec::Pcmu], Some(96)).formats, ["0", "96"]);
    }

    #[test]
    fn directions_answer_as_rfc_3264_says() {
        use Direction::*;
        let pairs = [
            (SendRecv, SendRecv),
            (SendOnly, RecvOnly),
            (RecvOnly, SendOnly),
            (Inactive, Inactive),
        ];
        for (offered, answered) in pairs {
            assert_eq!(offered.answer(), answered);
            assert_eq!(Direction::from_attribute(offered.as_str()), Some(offered));
        }
        assert!(SendOnly.sends() && !SendOnly.receives());
    }

    const FIXTURES: &[&str] = &[
        ASTERISK,
        FREESWITCH,
        CISCO_CUBE,
        HUAWEI_SBC,
        SIPP,
        SIPP_TEMPLATE,
        LINPHONE,
        BARESIP,
        VIDEO_AND_AUDIO,
    ];

    /// Any answer we build to an offer we accept parses and negotiates back to the same media.
    fn check_answer_holds(text: &str) {
        let Ok(offer) = SessionDescription::parse(text) else {
            return;
        };
        let Ok(neg) = negotiate(&offer, PREFS) else {
            return;
        };
        let answer = build_answer(&offer, &neg, LOCAL_IP, 40_000, u64::MAX, u64::MAX);
        let parsed = SessionDescription::parse(&answer).expect("our answer always parses");
        assert_eq!(parsed.media.len(), offer.media.len());
        let back = negotiate(&parsed, &[neg.codec]).expect("our answer always negotiates");
        assert_eq!(
            (back.codec, back.payload_type),
            (neg.codec, neg.payload_type)
        );
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        #[test]
        fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
            let text = String::from_utf8_lossy(&bytes);
            check_answer_holds(&text);
            check_answer_holds(&format!("v=0\r\n{text}"));
        }

        #[test]
        fn mutated_real_offers_never_panic(
            fixture in 0..FIXTURES.len(),
            edits in proptest::collection::vec((any::<prop::sample::Index>(), 0u8..3, any::<u8>()), 1..12),
        ) {
            let mut bytes = FIXTURES[fixture].as_bytes().to_vec();
            for (at, op, byte) in edits {
                if bytes.is_empty() { break; }
                let i = at.index(bytes.len());
                match op {
                    0 => bytes[i] = byte,
                    1 => { bytes.remove(i); }
                    _ => bytes.insert(i, byte),
                }
            }
            check_answer_holds(&String::from_utf8_lossy(&bytes));
        }

        #[test]
        fn shuffled_real_lines_never_panic(
            fixture in 0..FIXTURES.len(),
            picks in proptest::collection::vec(any::<prop::sample::Index>(), 0..30),
        ) {
            let lines: Vec<&str> = FIXTURES[fixture].lines().collect();
            let mut text = String::from("v=0\n");
            for pick in picks {
                text.push_str(lines[pick.index(lines.len())]);
                text.push('\n');
            }
            check_answer_holds(&text);
        }
    }
}
