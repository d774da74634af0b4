//! Speech-to-text for recordings (issue 7): whisper model import from CTranslate2 packages,
//! per-channel transcripts, and the transcription job queue. Not built yet.
