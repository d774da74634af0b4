//! When a caller's message (留言, voicemail) is over: sans-IO, fed the caller's 20-ms frames.
//!
//! A message ends at `#` or hang-up (the flow and the call decide those), at the flow's maximum
//! length, or after a stretch of silence — the caller finished talking but did not press `#` or
//! hang up, as many callers do. Voice is told from line noise by the mean absolute sample: a
//! telephone line's noise floor sits well below [`VOICE_LEVEL`], speech well above it.

use std::time::Duration;

use crate::media::{FRAME, PTIME};

/// Mean absolute sample (16-bit) at or above which a frame counts as voice (about −47 dBFS).
pub const VOICE_LEVEL: u32 = 150;

/// Decides when a message being recorded is over.
#[derive(Debug, Clone)]
pub struct MessageEnd {
    max_frames: u64,
    silence_frames: Option<u64>,
    frames: u64,
    quiet_run: u64,
}

impl MessageEnd {
    /// A message of at most `max`, ended early by `silence` without voice (None: never).
    pub fn new(max: Duration, silence: Option<Duration>) -> MessageEnd {
        let frames = |d: Duration| (d.as_millis() / PTIME.as_millis()).max(1) as u64;
        MessageEnd {
            max_frames: frames(max),
            silence_frames: silence.map(frames),
            frames: 0,
            quiet_run: 0,
        }
    }

    /// One frame of the caller (160 samples); true when the message is over with it.
    pub fn on_frame(&mut self, pcm: &[i16]) -> bool {
        self.frames += 1;
        if is_voice(pcm) {
            self.quiet_run = 0;
        } else {
            self.quiet_run += 1;
        }
        self.frames >= self.max_frames || self.silence_frames.is_some_and(|s| self.quiet_run >= s)
    }

    /// Length so far.
    pub fn duration(&self) -> Duration {
        PTIME * u32::try_from(self.frames).unwrap_or(u32::MAX)
    }
}

/// Whether a frame carries voice rather than line noise or silence.
pub fn is_voice(pcm: &[i16]) -> bool {
    if pcm.is_empty() {
        return false;
    }
    let total: u64 = pcm.iter().map(|s| u64::from(s.unsigned_abs())).sum();
    total / pcm.len() as u64 >= u64::from(VOICE_LEVEL)
}

// The detector assumes the media loop's frame size.
const _: () = assert!(FRAME == 160);

#[cfg(test)]
mod tests {
    use super::*;

    fn voice() -> Vec<i16> {
        (0..160)
            .map(|i| ((f64::from(i) * 0.3).sin() * 4000.0) as i16)
            .collect()
    }

    fn noise() -> Vec<i16> {
        (0..160)
            .map(|i| if i % 2 == 0 { 40 } else { -40 })
            .collect()
    }

    #[test]
    fn silence_after_speech_ends_the_message() {
        let mut end = MessageEnd::new(Duration::from_secs(120), Some(Duration::from_secs(2)));
        for _ in 0..150 {
            assert!(!end.on_frame(&voice()), "3 s of speech");
        }
        // 2 s of line noise = 100 frames; the 100th ends it.
        for i in 1..100 {
            assert!(!end.on_frame(&noise()), "quiet frame {i}");
        }
        assert!(end.on_frame(&noise()));
        assert_eq!(end.duration(), Duration::from_secs(5));
    }

    #[test]
    fn a_word_restarts_the_silence_count() {
        let mut end = MessageEnd::new(Duration::from_secs(120), Some(Duration::from_secs(1)));
        for _ in 0..49 {
            assert!(!end.on_frame(&[0; 160]));
        }
        assert!(!end.on_frame(&voice()));
        for _ in 0..49 {
            assert!(!end.on_frame(&[0; 160]));
        }
        assert!(end.on_frame(&[0; 160]));
    }

    #[test]
    fn the_maximum_length_ends_a_message_that_keeps_talking() {
        let mut end = MessageEnd::new(Duration::from_secs(1), None);
        for _ in 0..49 {
            assert!(!end.on_frame(&voice()));
        }
        assert!(end.on_frame(&voice()));
    }

    #[test]
    fn without_a_silence_limit_quiet_goes_on_to_the_maximum() {
        let mut end = MessageEnd::new(Duration::from_millis(600), None);
        let ended: Vec<bool> = (0..30).map(|_| end.on_frame(&[])).collect();
        assert_eq!(ended.iter().filter(|e| **e).count(), 1);
        assert!(ended[29]);
    }
}
