//! Call detail records (CDRs): one row per SIP call, written by the gateway as the call goes —
//! started (INVITE), answered, ended — and read by staff to find a call and play its recording.
//!
//! These are plain values; the queries are in [`crate::store`] (`call_started`, `call_answered`,
//! `call_ended`, `close_interrupted_calls`, `get_call`, `list_calls`). Nothing here knows SIP:
//! the Call-ID and the status code are kept as text and a number.

use std::fmt;
use std::path::{Component, Path, PathBuf};
use std::str::FromStr;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::model::UnknownCode;

/// Who ended a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum EndedBy {
    /// The citizen hung up (BYE or CANCEL from the caller's side).
    Caller,
    /// The centre hung up: an agent, the IVR, or a refusal before answer.
    Hotline,
    /// Neither party: no RTP, session timer, no ACK, a node restart.
    System,
}

impl EndedBy {
    /// Every value.
    pub const ALL: [EndedBy; 3] = [EndedBy::Caller, EndedBy::Hotline, EndedBy::System];

    /// The stable code stored in the database and used in the API.
    pub fn as_str(self) -> &'static str {
        match self {
            EndedBy::Caller => "caller",
            EndedBy::Hotline => "hotline",
            EndedBy::System => "system",
        }
    }
}

impl fmt::Display for EndedBy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for EndedBy {
    type Err = UnknownCode;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        EndedBy::ALL
            .into_iter()
            .find(|x| x.as_str() == s)
            .ok_or_else(|| UnknownCode::new("ended_by", s))
    }
}

/// What the gateway knows when a call arrives (the first INVITE).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewCall {
    /// The SIP Call-ID; a retransmitted INVITE carries the same one and adds no row.
    pub call_id: String,
    /// The hotline it was routed to (`12319`); `None` when refused before routing.
    pub hotline: Option<String>,
    /// The caller's number as the network gave it (user part of From / P-Asserted-Identity).
    pub from_number: Option<String>,
    /// The caller's whole From URI.
    pub from_uri: Option<String>,
    /// The number dialed (Request-URI user part).
    pub to_number: Option<String>,
    /// The peer it came from: `ip:port/transport`, e.g. `10.0.0.5:5060/udp`.
    pub source: Option<String>,
    /// The trunk it came in on, when the peer is a configured trunk.
    pub trunk: Option<String>,
    /// When the INVITE arrived.
    pub started_at: Timestamp,
    /// The node that took the call (to close its calls after a crash).
    pub node: Option<String>,
}

/// How a call ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallEnd {
    /// When.
    pub at: Timestamp,
    /// By whom.
    pub ended_by: EndedBy,
    /// SIP status code: 200 for a BYE after answer, 487 cancelled, 408 no ACK, 486 busy, 503...
    pub code: u16,
    /// In words: `caller hung up`, `no RTP for 30 s`, `session timer expired`.
    pub reason: String,
    /// The language the IVR spoke with the caller (`zh`, `en`); `None` without an IVR.
    pub language: Option<String>,
}

/// One call detail record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct Call {
    /// Database id.
    pub id: i64,
    /// The SIP Call-ID.
    pub call_id: String,
    /// The hotline it was routed to; `None` when refused before routing.
    pub hotline: Option<String>,
    /// The caller's number, in full (only roles that call citizens back may read calls).
    pub from_number: Option<String>,
    /// The caller's From URI.
    pub from_uri: Option<String>,
    /// The number dialed.
    pub to_number: Option<String>,
    /// Peer address and transport.
    pub source: Option<String>,
    /// Trunk it came in on.
    pub trunk: Option<String>,
    /// INVITE received.
    #[schema(value_type = String, format = DateTime)]
    pub started_at: Timestamp,
    /// Answered (200 OK sent), if it was.
    #[schema(value_type = Option<String>, format = DateTime)]
    pub answered_at: Option<Timestamp>,
    /// Ended, if it has.
    #[schema(value_type = Option<String>, format = DateTime)]
    pub ended_at: Option<Timestamp>,
    /// Who ended it.
    pub ended_by: Option<EndedBy>,
    /// SIP status code it ended with; `None` while running or when a restart closed it.
    pub end_code: Option<u16>,
    /// Why it ended, in words.
    pub end_reason: Option<String>,
    /// Talk time in milliseconds, answer to end; `None` when never answered or the end is unknown.
    pub duration_ms: Option<i64>,
    /// The recording, relative to the data directory (`recordings/2026/11/23/<id>.wav`).
    pub recording_path: Option<String>,
    /// Size of the recording when the call ended.
    pub recording_bytes: Option<u64>,
    /// The node that took it.
    pub node: Option<String>,
    /// The ticket opened or linked during the call.
    pub ticket_id: Option<i64>,
    /// The language the IVR spoke with the caller (`zh`, `en`: chosen, or the flow's default);
    /// `None` without an IVR. The recording is transcribed in it.
    pub language: Option<String>,
}

/// Search criteria for the call list; every field narrows the result.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CallFilter {
    /// Routed to this hotline.
    pub hotline: Option<String>,
    /// Part of the caller's or the dialed number.
    pub number: Option<String>,
    /// Started at or after.
    pub since: Option<Timestamp>,
    /// Started before.
    pub until: Option<Timestamp>,
    /// Only answered calls (`true`) or only unanswered ones (`false`).
    pub answered: Option<bool>,
    /// Ended by this party.
    pub ended_by: Option<EndedBy>,
}

/// A stored recording path that would leave the data directory (absolute, `..`, a drive prefix)
/// or is empty: a corrupt or tampered row, never served.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("recording path `{0}` is not a plain path inside the data directory")]
pub struct UnsafeRecordingPath(pub String);

/// The file of a stored recording path: `data_dir` joined with `stored`, which must be relative
/// and made of plain names only. The check is on the text, not the file system, so a data
/// directory whose `recordings/` is a symbolic link to another disk still works.
pub fn recording_file(data_dir: &Path, stored: &str) -> Result<PathBuf, UnsafeRecordingPath> {
    let relative = Path::new(stored);
    let plain = !stored.is_empty()
        && !stored.contains('\\')
        && relative
            .components()
            .all(|c| matches!(c, Component::Normal(_)));
    if plain {
        Ok(data_dir.join(relative))
    } else {
        Err(UnsafeRecordingPath(stored.chars().take(200).collect()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recording_paths_stay_inside_the_data_directory() {
        let data = Path::new("/srv/hotline/data");
        assert_eq!(
            recording_file(data, "recordings/2026/11/23/a.wav").unwrap(),
            Path::new("/srv/hotline/data/recordings/2026/11/23/a.wav")
        );
        for bad in [
            "",
            "/etc/passwd",
            "../hotline.db",
            "recordings/../../etc/passwd",
            "./recordings/a.wav",
            "recordings\\..\\x.wav",
        ] {
            assert!(recording_file(data, bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn ended_by_codes_round_trip() {
        for e in EndedBy::ALL {
            assert_eq!(e.as_str().parse::<EndedBy>().unwrap(), e);
        }
        assert!("nobody".parse::<EndedBy>().is_err());
    }
}
