//! Speech-to-text for recordings: the whisper model imported from CTranslate2 packages
//! ([`model`]), audio decoding and resampling to 16 kHz ([`audio`]), voice activity so silence
//! is not decoded ([`vad`]), the whisper engine per channel ([`engine`]), and one timeline of
//! both speakers with its text, SRT and JSON forms ([`timeline`]); [`recording`] runs them in order
//! on one file. [`cer`] scores transcripts
//! against references for tests and benchmarks.
//!
//! Not here: the job queue and stored transcripts (the `ticketing` store) and the worker that
//! joins the two (the `hotline` binary's `transcription` module).

pub mod audio;
pub mod cer;
pub mod engine;
pub mod model;
pub mod recording;
#[cfg(feature = "testing")]
pub mod testing;
pub mod timeline;
pub mod vad;
