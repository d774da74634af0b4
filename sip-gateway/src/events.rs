//! What the gateway tells the rest of hotline about calls: the facts a call detail record is
//! made of, and digits for whoever listens. The binary turns them into rows; this crate writes
//! no database.

use jiff::Timestamp;

/// Who ended a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EndedBy {
    /// The caller hung up (BYE or CANCEL).
    Caller,
    /// The hotline side hung up (its flow, an agent, the maximum call length).
    Hotline,
    /// The system ended it (no ACK, no RTP, session timer, refused, shutdown).
    System,
}

impl EndedBy {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            EndedBy::Caller => "caller",
            EndedBy::Hotline => "hotline",
            EndedBy::System => "system",
        }
    }
}

/// A call arrived from an admitted trunk.
#[derive(Debug, Clone, PartialEq)]
pub struct CallStart {
    /// SIP Call-ID.
    pub call_id: String,
    /// The hotline it was routed to (None: unknown number).
    pub hotline: Option<String>,
    /// Caller number (From user part).
    pub from_number: String,
    /// The whole From URI.
    pub from_uri: String,
    /// The dialed number (Request-URI user part).
    pub to_number: String,
    /// Peer address and transport (`udp:10.1.2.3:5060`).
    pub source: String,
    /// The trunk it came through.
    pub trunk: Option<String>,
    /// When the INVITE arrived.
    pub at: Timestamp,
}

/// A change in a call's life.
#[derive(Debug, Clone, PartialEq)]
pub enum CallEvent {
    /// Arrived.
    Started(CallStart),
    /// Answered (200 OK sent); the recording, if any, relative to the data directory.
    Answered {
        /// SIP Call-ID.
        call_id: String,
        /// When.
        at: Timestamp,
        /// `recordings/YYYY/MM/DD/<id>.wav`.
        recording: Option<String>,
    },
    /// A DTMF digit.
    Digit {
        /// SIP Call-ID.
        call_id: String,
        /// `0`-`9`, `*`, `#`, `A`-`D`.
        digit: char,
        /// `rfc4733` or `info`.
        via: &'static str,
    },
    /// The caller left a message (voicemail) in the IVR; it is on disk. The binary opens a
    /// phone ticket with it attached.
    Message(Message),
    /// A caller waiting in a queue asked to be called back ("leave your number"); the binary
    /// stores the task for agents.
    CallbackRequested {
        /// The hotline the call came in on.
        hotline: String,
        /// The task, as the ACD made it.
        task: ivr::acd::CallbackTask,
    },
    /// Over.
    Ended {
        /// SIP Call-ID.
        call_id: String,
        /// When.
        at: Timestamp,
        /// Who ended it.
        ended_by: EndedBy,
        /// The SIP status that describes the end (200 normal, 487 cancelled, 408 no ACK...).
        code: u16,
        /// In words.
        reason: String,
        /// The language the IVR spoke with the caller (`zh`, `en`); `None` without an IVR.
        language: Option<&'static str>,
        /// Size of the finished recording.
        recording_bytes: Option<u64>,
        /// Its length in milliseconds.
        recording_ms: Option<u64>,
    },
}

/// A caller's message left in the IVR.
#[derive(Debug, Clone, PartialEq)]
pub struct Message {
    /// SIP Call-ID of the call it was left in.
    pub call_id: String,
    /// The hotline.
    pub hotline: String,
    /// Caller number (From user part), if any.
    pub from_number: Option<String>,
    /// The mono WAV, relative to the data directory (`messages/YYYY/MM/DD/<id>-1.wav`).
    pub recording: String,
    /// Its length in milliseconds.
    pub duration_ms: u64,
    /// Language the caller chose (`zh`, `en`).
    pub language: &'static str,
    /// When the message ended.
    pub at: Timestamp,
}
