//! Transcripts of call recordings and voicemails, and the job queue that makes them.
//!
//! Every finished recording (a stereo call: caller left, hotline right; a mono IVR voicemail) is
//! a [`TranscriptionJob`] row first (the outbox): a worker claims it for a lease, transcribes the
//! file, and stores the [`NewTranscript`] — or reports a failure, which is retried after
//! [`retry_delay`] until [`MAX_ATTEMPTS`]. A worker that dies loses its lease and the job becomes
//! claimable again; a worker that comes back after losing its lease cannot finish the job twice.
//!
//! These are plain values and the retry policy (sans-IO, `now` is passed in); the queries are in
//! [`crate::store`]: `enqueue_transcription`, `claim_transcription`,
//! `extend_transcription_lease`, `finish_transcription`, `fail_transcription`,
//! `requeue_transcription`, `retry_failed_transcriptions`, `enqueue_untranscribed_calls`,
//! `enqueue_untranscribed_voicemails`, `transcription_backlog`, `transcription_job_for_call`,
//! `transcript_for_call`, `transcript_for_recording`, `transcripts_for_ticket`,
//! `search_transcripts`.
//!
//! A voicemail's transcript becomes its ticket's content while the content is still the
//! placeholder the IVR wrote ([`voicemail_placeholder`]); the placeholder stays in the ticket's
//! trail (a 补充 event whose data holds the content it replaced).

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::model::{TicketNumber, UnknownCode};

/// Tries a job gets (claims, including those whose worker died) before it is `failed`.
pub const MAX_ATTEMPTS: u32 = 6;

/// How long to wait before the next try after `attempts` failed ones: 30 s, 2 min, 10 min, 1 h,
/// then 1 h each; `None` once [`MAX_ATTEMPTS`] are used up.
pub fn retry_delay(attempts: u32) -> Option<Duration> {
    if attempts >= MAX_ATTEMPTS {
        return None;
    }
    let secs = match attempts {
        0 | 1 => 30,
        2 => 120,
        3 => 600,
        _ => 3600,
    };
    Some(Duration::from_secs(secs))
}

/// What a recording is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum JobKind {
    /// A call between a citizen and an agent: stereo, caller left, hotline right.
    Call,
    /// A voicemail left in the IVR: mono, the caller only; it already opened a ticket.
    Message,
}

impl JobKind {
    /// Every value.
    pub const ALL: [JobKind; 2] = [JobKind::Call, JobKind::Message];

    /// The stable code stored in the database and used in the API.
    pub fn as_str(self) -> &'static str {
        match self {
            JobKind::Call => "call",
            JobKind::Message => "message",
        }
    }
}

/// Where a transcription job stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum JobState {
    /// Waiting until its `next_at`.
    Queued,
    /// Claimed by a worker until its lease ends.
    Running,
    /// Transcribed.
    Done,
    /// Gave up after [`MAX_ATTEMPTS`]; an operator may queue it again.
    Failed,
}

impl JobState {
    /// Every value.
    pub const ALL: [JobState; 4] = [
        JobState::Queued,
        JobState::Running,
        JobState::Done,
        JobState::Failed,
    ];

    /// The stable code stored in the database and used in the API.
    pub fn as_str(self) -> &'static str {
        match self {
            JobState::Queued => "queued",
            JobState::Running => "running",
            JobState::Done => "done",
            JobState::Failed => "failed",
        }
    }
}

/// Who is speaking in a segment: the channel of the stereo recording it came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Speaker {
    /// The citizen (left channel; the only one of a voicemail).
    Caller,
    /// The agent or the IVR (right channel).
    Hotline,
}

impl Speaker {
    /// Every value.
    pub const ALL: [Speaker; 2] = [Speaker::Caller, Speaker::Hotline];

    /// The stable code stored in the database and used in the API.
    pub fn as_str(self) -> &'static str {
        match self {
            Speaker::Caller => "caller",
            Speaker::Hotline => "hotline",
        }
    }
}

macro_rules! code_traits {
    ($ty:ty, $kind:literal) => {
        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl FromStr for $ty {
            type Err = UnknownCode;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                <$ty>::ALL
                    .into_iter()
                    .find(|x| x.as_str() == s)
                    .ok_or_else(|| UnknownCode::new($kind, s))
            }
        }
    };
}

code_traits!(JobKind, "transcription kind");
code_traits!(JobState, "transcription state");
code_traits!(Speaker, "speaker");

/// A recording to transcribe.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewTranscriptionJob {
    /// The call record it belongs to (row id); `None` for a batch import without one.
    pub call_id: Option<i64>,
    /// The ticket it belongs to: set for a voicemail (the ticket it opened).
    pub ticket_id: Option<i64>,
    /// Call or voicemail.
    pub kind: JobKind,
    /// The file, relative to the data directory (as in `calls.recording_path`); one job per file.
    pub recording_path: String,
    /// The language spoken when the call knows it (`en`: the caller chose English in the IVR);
    /// `None` leaves it to the worker's configured language.
    pub language: Option<String>,
}

/// A transcription job as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct TranscriptionJob {
    /// Row id.
    pub id: i64,
    /// The call record, if any.
    pub call_id: Option<i64>,
    /// The ticket, if known when queued (a voicemail's).
    pub ticket_id: Option<i64>,
    /// Call or voicemail.
    pub kind: JobKind,
    /// The file, relative to the data directory.
    pub recording_path: String,
    /// The language spoken, when the call knew it.
    pub language: Option<String>,
    /// Where it stands.
    pub state: JobState,
    /// Claims so far (each claim is a try; the claim's number fences the worker holding it).
    pub attempts: u32,
    /// When it is due: the next try while queued, the lease's end while running.
    #[schema(value_type = String, format = DateTime)]
    pub next_at: Timestamp,
    /// The worker holding (or that last held) it.
    pub claimed_by: Option<String>,
    /// While running: after this, another worker may take it over.
    #[schema(value_type = Option<String>, format = DateTime)]
    pub lease_until: Option<Timestamp>,
    /// Why the last try failed.
    pub last_error: Option<String>,
    /// Queued.
    #[schema(value_type = String, format = DateTime)]
    pub created_at: Timestamp,
    /// Done or given up.
    #[schema(value_type = Option<String>, format = DateTime)]
    pub finished_at: Option<Timestamp>,
}

/// One stretch of speech as the recogniser gives it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct NewSegment {
    /// Whose channel.
    pub speaker: Speaker,
    /// Start, from the start of the recording.
    pub start_ms: i64,
    /// End, from the start of the recording.
    pub end_ms: i64,
    /// What was said.
    pub text: String,
}

/// What a worker made of a recording.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewTranscript {
    /// The model's name (`whisper-base`, `whisper-small`).
    pub model: String,
    /// The language spoken (`zh`, `en`).
    pub language: String,
    /// Length of the recording.
    pub duration_ms: i64,
    /// Time the recogniser took.
    pub processing_ms: i64,
    /// The segments in the order to show them (by start time).
    pub segments: Vec<NewSegment>,
}

impl NewTranscript {
    /// The plain text of all segments, one per line, for reading and searching.
    pub fn text(&self) -> String {
        let mut out = String::new();
        for s in &self.segments {
            let t = s.text.trim();
            if t.is_empty() {
                continue;
            }
            if !out.is_empty() {
                out.push('\n');
            }
            out.push_str(t);
        }
        out
    }
}

/// A stored segment.
pub type Segment = NewSegment;

/// A stored transcript with its segments.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct StoredTranscript {
    /// Row id (kept when the recording is transcribed again).
    pub id: i64,
    /// The job that made it.
    pub job_id: Option<i64>,
    /// The call record, if any.
    pub call_id: Option<i64>,
    /// The ticket: the voicemail's, or the one linked to the call when it was transcribed.
    pub ticket_id: Option<i64>,
    /// The file, relative to the data directory.
    pub recording_path: String,
    /// The model's name.
    pub model: String,
    /// The language spoken.
    pub language: String,
    /// Length of the recording.
    pub duration_ms: i64,
    /// Time the recogniser took.
    pub processing_ms: i64,
    /// All segments' text, one per line.
    pub text: String,
    /// Made (or made again).
    #[schema(value_type = String, format = DateTime)]
    pub created_at: Timestamp,
    /// The segments, in order.
    pub segments: Vec<Segment>,
}

/// One transcript that contains the words searched for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct TranscriptHit {
    /// The transcript.
    pub transcript_id: i64,
    /// Its call record, if any.
    pub call_id: Option<i64>,
    /// Its ticket, if any (the voicemail's, or the one linked to the call).
    pub ticket_id: Option<i64>,
    /// That ticket's number.
    pub ticket_number: Option<TicketNumber>,
    /// The file, relative to the data directory.
    pub recording_path: String,
    /// The text around the first match (`…` where cut).
    pub snippet: String,
    /// Where in the recording the first segment with the words starts, to play from there;
    /// `None` when the words span two segments.
    pub at_ms: Option<i64>,
    /// When the transcript was made.
    #[schema(value_type = String, format = DateTime)]
    pub created_at: Timestamp,
}

/// How many jobs are in each state (for `/metrics` and the console).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, ToSchema)]
pub struct TranscriptionBacklog {
    /// Waiting (due or backing off).
    pub queued: i64,
    /// Claimed by a worker (including leases that ran out and wait for a new claim).
    pub running: i64,
    /// Transcribed.
    pub done: i64,
    /// Given up.
    pub failed: i64,
    /// When the oldest job still waiting was queued (the lag).
    #[schema(value_type = Option<String>, format = DateTime)]
    pub oldest_queued_at: Option<Timestamp>,
}

/// What [`crate::Store::finish_transcription`] stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finished {
    /// The transcript's id.
    pub transcript_id: i64,
    /// The voicemail ticket whose placeholder content the transcript replaced, if it did.
    pub filled_ticket: Option<TicketNumber>,
}

/// The content the IVR gives a voicemail's ticket until its transcript is there:
/// `电话留言（12 秒），内容见录音。` (`（12 秒，英文）` for an English message).
pub fn voicemail_placeholder(seconds: u64, english: bool) -> String {
    let lang = if english { "，英文" } else { "" };
    format!("电话留言（{seconds} 秒{lang}），内容见录音。")
}

/// Whether `line` is a [`voicemail_placeholder`].
pub fn is_voicemail_placeholder(line: &str) -> bool {
    let Some(inner) = line
        .trim()
        .strip_prefix("电话留言（")
        .and_then(|rest| rest.strip_suffix("），内容见录音。"))
    else {
        return false;
    };
    let inner = inner.strip_suffix("，英文").unwrap_or(inner);
    inner
        .strip_suffix(" 秒")
        .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
}

/// The language the caller chose, as a voicemail ticket's content still says it: `en` when its
/// first line is the English [`voicemail_placeholder`], `zh` for the other one; `None` once the
/// placeholder is gone (the transcript or someone replaced it).
pub fn voicemail_placeholder_language(content: &str) -> Option<&'static str> {
    let first = content.split_once('\n').map_or(content, |(first, _)| first);
    if !is_voicemail_placeholder(first) {
        return None;
    }
    Some(if first.contains("，英文）") {
        "en"
    } else {
        "zh"
    })
}

/// A ticket's content with the voicemail placeholder on its first line replaced by `text` (the
/// lines a citizen added after it are kept); `None` when the content does not start with the
/// placeholder — someone wrote it, so it stays.
pub fn content_with_transcript(content: &str, text: &str) -> Option<String> {
    let (first, rest) = match content.split_once('\n') {
        Some((first, rest)) => (first, Some(rest)),
        None => (content, None),
    };
    if !is_voicemail_placeholder(first) || text.trim().is_empty() {
        return None;
    }
    let mut out = text.trim().to_owned();
    if let Some(rest) = rest.filter(|r| !r.trim().is_empty()) {
        out.push('\n');
        out.push_str(rest);
    }
    Some(out)
}

/// The text around the first case-insensitive occurrence of `query` in `text`: up to `before`
/// characters before it and enough after to make about `width` in all, with `…` where cut. When
/// `query` does not occur (the database folds case a little differently), the start of `text`.
pub fn snippet(text: &str, query: &str, before: usize, width: usize) -> String {
    let chars: Vec<char> = text.chars().collect();
    let needle: Vec<char> = query.chars().collect();
    let same = |a: char, b: char| a == b || a.to_lowercase().eq(b.to_lowercase());
    let found = (!needle.is_empty() && needle.len() <= chars.len())
        .then(|| {
            (0..=chars.len() - needle.len())
                .find(|&i| needle.iter().zip(&chars[i..]).all(|(&q, &c)| same(q, c)))
        })
        .flatten();
    let start = found.map_or(0, |i| i.saturating_sub(before));
    let end = (start + width.max(needle.len() + before)).min(chars.len());
    let mut out = String::new();
    if start > 0 {
        out.push('…');
    }
    out.extend(
        chars[start..end]
            .iter()
            .map(|&c| if c == '\n' { ' ' } else { c }),
    );
    if end < chars.len() {
        out.push('…');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retries_back_off_then_give_up() {
        let delays: Vec<_> = (1..=MAX_ATTEMPTS).map(retry_delay).collect();
        assert_eq!(
            delays,
            [
                Some(Duration::from_secs(30)),
                Some(Duration::from_secs(120)),
                Some(Duration::from_secs(600)),
                Some(Duration::from_secs(3600)),
                Some(Duration::from_secs(3600)),
                None,
            ]
        );
    }

    #[test]
    fn codes_round_trip() {
        for k in JobKind::ALL {
            assert_eq!(k.as_str().parse::<JobKind>().unwrap(), k);
        }
        for s in JobState::ALL {
            assert_eq!(s.as_str().parse::<JobState>().unwrap(), s);
        }
        for s in Speaker::ALL {
            assert_eq!(s.as_str().parse::<Speaker>().unwrap(), s);
        }
        assert!("agent".parse::<Speaker>().is_err());
    }

    #[test]
    fn the_placeholder_is_recognised_and_only_it() {
        assert!(is_voicemail_placeholder(&voicemail_placeholder(12, false)));
        assert!(is_voicemail_placeholder(&voicemail_placeholder(7, true)));
        assert!(is_voicemail_placeholder("电话留言（12 秒），内容见录音。"));
        for other in [
            "电话留言（ 秒），内容见录音。",
            "电话留言（十二 秒），内容见录音。",
            "电话留言（12 秒），内容见录音。井盖坏了",
            "井盖坏了",
            "",
        ] {
            assert!(!is_voicemail_placeholder(other), "{other:?}");
        }
    }

    #[test]
    fn the_placeholder_says_the_callers_language() {
        let english = voicemail_placeholder(7, true);
        assert_eq!(voicemail_placeholder_language(&english), Some("en"));
        assert_eq!(
            voicemail_placeholder_language(&format!("{english}\n在学校门口")),
            Some("en")
        );
        assert_eq!(
            voicemail_placeholder_language(&voicemail_placeholder(12, false)),
            Some("zh")
        );
        assert_eq!(voicemail_placeholder_language("人民路井盖坏了"), None);
        assert_eq!(
            voicemail_placeholder_language(&format!("井盖坏了\n{english}")),
            None
        );
    }

    #[test]
    fn the_transcript_replaces_only_the_placeholder() {
        let p = voicemail_placeholder(12, false);
        assert_eq!(
            content_with_transcript(&p, " 人民路井盖坏了 ").as_deref(),
            Some("人民路井盖坏了")
        );
        assert_eq!(
            content_with_transcript(&format!("{p}\n在小学门口"), "人民路井盖坏了").as_deref(),
            Some("人民路井盖坏了\n在小学门口")
        );
        assert_eq!(content_with_transcript("人民路井盖坏了", "别的"), None);
        assert_eq!(content_with_transcript(&p, "  "), None);
    }

    #[test]
    fn snippets_centre_on_the_first_match() {
        let text = "您好这里是12319城市管理热线。\n人民路和解放路路口的井盖坏了，很危险。";
        assert_eq!(snippet(text, "井盖", 5, 12), "…放路路口的井盖坏了，很危…");
        assert_eq!(snippet(text, "您好", 5, 8), "您好这里是123…");
        assert_eq!(
            snippet("Manhole COVER broken", "cover", 3, 12),
            "…le COVER bro…"
        );
        assert_eq!(snippet("短", "没有", 3, 10), "短");
    }
}
