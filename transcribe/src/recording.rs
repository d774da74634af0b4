//! One recording to one transcript: decode and resample ([`crate::audio`]), find the speech in
//! each channel ([`crate::vad`]), decode each channel's speech ([`crate::engine`]), and merge the
//! channels into one timeline ([`crate::timeline`]).
//!
//! A call recording is stereo, caller left and hotline right, so each side is decoded alone and
//! the speaker is known without guessing; a voicemail is mono (the caller). A file from another
//! system with more channels is mixed down and counted as the caller.

use std::borrow::Cow;
use std::path::Path;
use std::time::{Duration, Instant};

use crate::audio::{self, Audio, AudioError};
use crate::engine::{DecodeOptions, Engine, EngineError};
use crate::timeline::{self, Segment, Speaker, Transcript};
use crate::vad::{self, VadConfig};

/// Why a recording could not be transcribed.
#[derive(Debug, thiserror::Error)]
pub enum TranscribeError {
    /// The file could not be read or is not audio we take.
    #[error(transparent)]
    Audio(#[from] AudioError),
    /// whisper failed.
    #[error(transparent)]
    Engine(#[from] EngineError),
}

/// A transcript and what it cost.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    /// The transcript.
    pub transcript: Transcript,
    /// Wall-clock time spent decoding (without reading the file).
    pub processing: Duration,
    /// Speech found, per channel, in milliseconds (what was decoded).
    pub speech_ms: u64,
}

/// Which speaker each channel of `audio` is, by the recording conventions above. Channels are
/// borrowed: only a mix-down is a new buffer.
pub fn speakers(audio: &Audio) -> Vec<(Speaker, Cow<'_, [f32]>)> {
    match audio.channels.as_slice() {
        [] => Vec::new(),
        [caller] => vec![(Speaker::Caller, Cow::Borrowed(caller.as_slice()))],
        [caller, hotline] => vec![
            (Speaker::Caller, Cow::Borrowed(caller.as_slice())),
            (Speaker::Hotline, Cow::Borrowed(hotline.as_slice())),
        ],
        _ => vec![(Speaker::Caller, Cow::Owned(audio.mono_mix()))],
    }
}

/// Transcribes a WAV file (any rate and channel count).
pub fn transcribe_file(
    engine: &Engine,
    path: &Path,
    options: &DecodeOptions,
) -> Result<Outcome, TranscribeError> {
    let audio = audio::decode_file(path)?;
    transcribe_audio(engine, &audio, options)
}

/// Transcribes decoded audio.
pub fn transcribe_audio(
    engine: &Engine,
    audio: &Audio,
    options: &DecodeOptions,
) -> Result<Outcome, TranscribeError> {
    let started = Instant::now();
    let vad_config = VadConfig::default();
    let mut channels = Vec::new();
    let mut language = options.language.as_str().to_string();
    let mut speech_ms = 0;
    for (speaker, samples) in speakers(audio) {
        let speech = vad::detect(&samples, &vad_config);
        speech_ms += speech
            .iter()
            .map(|r| {
                let (start, end) = vad::range_ms(r, vad_config.rate);
                end - start
            })
            .sum::<u64>();
        if speech.is_empty() {
            continue;
        }
        let decoded = engine.transcribe_speech(&samples, &speech, options)?;
        if speaker == Speaker::Caller || language == "auto" {
            language = decoded.language.clone();
        }
        let segments = decoded
            .segments
            .into_iter()
            .map(|t| Segment {
                start_ms: t.start_ms,
                end_ms: t.end_ms,
                speaker,
                text: t.text,
            })
            .collect();
        channels.push((speaker, segments));
    }
    Ok(Outcome {
        transcript: Transcript {
            language,
            duration_ms: audio.duration.as_millis() as u64,
            segments: timeline::merge(channels),
        },
        processing: started.elapsed(),
        speech_ms,
    })
}
