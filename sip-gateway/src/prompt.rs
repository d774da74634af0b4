//! Prompt playback: voice prompts ("welcome to the 12345 hotline...") loaded once from WAV
//! files, converted to 8 kHz mono, encoded once to both G.711 laws, and played to callers one
//! 20 ms frame at a time.
//!
//! - [`Prompt`] is one prompt, ready to send: 8 kHz PCM plus its PCMU and PCMA bytes, each
//!   padded to a whole number of 20 ms frames.
//! - [`PromptCache`] is shared by all calls; it loads each file on first use (or at start-up
//!   through [`PromptCache::preload`]) and hands out the same `Arc<Prompt>` afterwards.
//! - [`PromptPlayer`] is sans-IO: the media loop asks it for the next frame on every 20 ms tick
//!   of its own monotonic clock, sends the encoded bytes as RTP, and gives the PCM to the
//!   recorder as the hotline side. It reads no clock and touches no file.
//!
//! Input files may be 8, 11.025, 16, 22.05, 44.1 or 48 kHz (any rate from 4 to 192 kHz in
//! fact), mono or multi-channel (mixed down by averaging), 8/16/24/32-bit integer or 32-bit
//! float. Resampling uses rubato's synchronous FFT resampler: a fixed-ratio, whole-clip job is
//! exactly what it is for, and its windowed-sinc low-pass (Blackman-Harris², cut-off about
//! 3.9 kHz here) removes everything above the 4 kHz Nyquist limit of telephone audio, so a
//! 48 kHz studio recording does not alias into the call.

use std::collections::HashMap;
use std::fs::{self, File};
use std::io::{self, BufReader};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use rubato::audioadapter_buffers::direct::InterleavedSlice;
use rubato::{Fft, FixedSync, Resampler, WindowFunction};

use crate::g711::{self, Codec};

/// Sample rate of prompts as played, in Hz (G.711).
pub const SAMPLE_RATE: u32 = 8_000;

/// Samples (and G.711 bytes) in one 20 ms frame, the unit of playback.
pub const FRAME_SAMPLES: usize = 160;

/// Length of one frame; the media loop calls [`PromptPlayer::next_frame`] once per this.
pub const FRAME_DURATION: Duration = Duration::from_millis(20);

/// Longest prompt accepted. Prompts are held in memory for the life of the process, and a
/// file far longer than any prompt is more likely a mistake in the configuration.
pub const MAX_PROMPT_DURATION: Duration = Duration::from_secs(30 * 60);

const MIN_RATE: u32 = 4_000;
const MAX_RATE: u32 = 192_000;

/// Target block size of the FFT resampler. Larger blocks give a sharper low-pass: about
/// 3.9 kHz cut-off for every supported rate at 4096, against 2.7 to 3.6 kHz at 256.
const RESAMPLER_CHUNK: usize = 4096;

/// Why a prompt file could not be used; every message names the file and says what to do.
#[derive(Debug, thiserror::Error)]
pub enum PromptError {
    /// The file does not exist.
    #[error(
        "prompt file {} does not exist; check the prompt paths in the IVR configuration",
        path.display()
    )]
    Missing {
        /// The path as configured.
        path: PathBuf,
    },
    /// The file exists but could not be read.
    #[error("cannot read prompt file {}: {source}; check its permissions", path.display())]
    Io {
        /// The prompt file.
        path: PathBuf,
        /// The underlying I/O error.
        source: io::Error,
    },
    /// The file is not a WAV file (or its header is damaged).
    #[error(
        "prompt file {} is not a usable WAV file ({reason}); export it again as WAV, e.g. \
         `sox input -r 8000 -c 1 -b 16 output.wav`",
        path.display()
    )]
    NotWav {
        /// The prompt file.
        path: PathBuf,
        /// What the WAV parser found wrong.
        reason: String,
    },
    /// A WAV file in an encoding this module does not decode.
    #[error(
        "prompt file {} uses an unsupported format ({detail}); export it as 16-bit PCM WAV, \
         e.g. `sox input -r 8000 -c 1 -b 16 output.wav`",
        path.display()
    )]
    Unsupported {
        /// The prompt file.
        path: PathBuf,
        /// The format found.
        detail: String,
    },
    /// The data chunk ends before the number of samples its header announces.
    #[error(
        "prompt file {} is truncated: its header announces {expected} samples but only \
         {found} are there; copy or export it again",
        path.display()
    )]
    Truncated {
        /// The prompt file.
        path: PathBuf,
        /// Samples (over all channels) the header announces.
        expected: u64,
        /// Samples actually read.
        found: u64,
    },
    /// The file holds no audio at all.
    #[error(
        "prompt file {} holds no audio; record the prompt again or remove it from the IVR \
         configuration",
        path.display()
    )]
    Empty {
        /// The prompt file.
        path: PathBuf,
    },
    /// The prompt is longer than [`MAX_PROMPT_DURATION`].
    #[error(
        "prompt file {} lasts {seconds} s, longer than the {} s allowed for a prompt; cut it, \
         or check that the configuration points at the right file",
        path.display(),
        MAX_PROMPT_DURATION.as_secs()
    )]
    TooLong {
        /// The prompt file.
        path: PathBuf,
        /// Its length in whole seconds.
        seconds: u64,
    },
    /// The resampler refused the job (should not happen for supported rates).
    #[error(
        "cannot resample prompt file {} from {rate} Hz to 8 kHz: {detail}; export it at 8 kHz",
        path.display()
    )]
    Resample {
        /// The prompt file.
        path: PathBuf,
        /// Its sample rate.
        rate: u32,
        /// The resampler's message.
        detail: String,
    },
}

/// Which G.711 law a buffer is in; the module's own copy so that it needs nothing of `Codec`
/// beyond its two variants.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Law {
    Mu,
    A,
}

impl From<Codec> for Law {
    fn from(codec: Codec) -> Self {
        match codec {
            Codec::Pcmu => Law::Mu,
            Codec::Pcma => Law::A,
        }
    }
}

/// One prompt, ready to play on any call: decoded, resampled and encoded once, then shared.
#[derive(Debug)]
pub struct Prompt {
    name: String,
    /// Samples of the prompt itself, before padding.
    len: usize,
    /// 8 kHz mono PCM, zero-padded to a whole number of frames. The buffers are boxed, not
    /// `Arc`ed: a `Prompt` is always shared as a whole through `Arc<Prompt>`.
    pcm: Box<[i16]>,
    /// µ-law bytes, padded with the µ-law silence byte 0xFF.
    pcmu: Box<[u8]>,
    /// A-law bytes, padded with the A-law silence byte 0xD5.
    pcma: Box<[u8]>,
}

impl Prompt {
    /// Loads a prompt from a WAV file, converting it to 8 kHz mono and encoding it to both
    /// G.711 laws. Its name is the file stem. This does file I/O and some CPU work
    /// (milliseconds per second of audio): use [`PromptCache`] rather than calling it per call.
    pub fn load(path: &Path) -> Result<Prompt, PromptError> {
        let (mono, rate) = read_mono(path)?;
        let resampled = resample_to_8k(path, mono, rate)?;
        let samples: Vec<i16> = resampled
            .iter()
            .map(|&x| (x * 32768.0).round().clamp(-32768.0, 32767.0) as i16)
            .collect();
        let name = path.file_stem().map_or_else(
            || path.display().to_string(),
            |s| s.to_string_lossy().into_owned(),
        );
        Ok(Prompt::from_pcm(name, samples))
    }

    /// Builds a prompt from audio that is already 8 kHz mono 16-bit (synthesized speech, a
    /// tone, tests).
    pub fn from_pcm(name: impl Into<String>, samples: Vec<i16>) -> Prompt {
        let len = samples.len();
        let padded_len = len.div_ceil(FRAME_SAMPLES) * FRAME_SAMPLES;
        let mut pcmu = Vec::with_capacity(padded_len);
        Codec::Pcmu.encode(&samples, &mut pcmu);
        pcmu.resize(padded_len, g711::ulaw_encode(0));
        let mut pcma = Vec::with_capacity(padded_len);
        Codec::Pcma.encode(&samples, &mut pcma);
        pcma.resize(padded_len, g711::alaw_encode(0));
        let mut pcm = samples;
        pcm.resize(padded_len, 0);
        Prompt {
            name: name.into(),
            len,
            pcm: pcm.into_boxed_slice(),
            pcmu: pcmu.into_boxed_slice(),
            pcma: pcma.into_boxed_slice(),
        }
    }

    /// The prompt's name (the file stem), for logs and traces.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The prompt's 8 kHz mono samples, without the padding of the last frame.
    pub fn samples(&self) -> &[i16] {
        &self.pcm[..self.len]
    }

    /// How long the prompt lasts (without the padding of the last frame).
    pub fn duration(&self) -> Duration {
        Duration::from_nanos(self.len as u64 * 1_000_000_000 / u64::from(SAMPLE_RATE))
    }

    /// Number of 20 ms frames needed to play it; the last one is padded with silence.
    pub fn frames(&self) -> usize {
        self.pcm.len() / FRAME_SAMPLES
    }

    /// The G.711 payload of frame `index` in `codec`: 160 bytes, the last frame padded with the
    /// codec's silence byte (0xFF for PCMU, 0xD5 for PCMA). `None` past the end.
    pub fn frame(&self, codec: Codec, index: usize) -> Option<&[u8; FRAME_SAMPLES]> {
        self.encoded(Law::from(codec), index)
    }

    /// The PCM of frame `index`, zero-padded at the end, for the hotline side of the call
    /// recording. `None` past the end.
    pub fn frame_pcm(&self, index: usize) -> Option<&[i16; FRAME_SAMPLES]> {
        frame_of(&self.pcm, index)
    }

    fn encoded(&self, law: Law, index: usize) -> Option<&[u8; FRAME_SAMPLES]> {
        match law {
            Law::Mu => frame_of(&self.pcmu, index),
            Law::A => frame_of(&self.pcma, index),
        }
    }
}

fn frame_of<T>(buffer: &[T], index: usize) -> Option<&[T; FRAME_SAMPLES]> {
    let start = index.checked_mul(FRAME_SAMPLES)?;
    buffer
        .get(start..start.checked_add(FRAME_SAMPLES)?)?
        .try_into()
        .ok()
}

/// Reads a WAV file into mono `f32` samples in [-1, 1], with its sample rate.
fn read_mono(path: &Path) -> Result<(Vec<f32>, u32), PromptError> {
    let file = File::open(path).map_err(|source| match source.kind() {
        io::ErrorKind::NotFound => PromptError::Missing {
            path: path.to_path_buf(),
        },
        _ => PromptError::Io {
            path: path.to_path_buf(),
            source,
        },
    })?;
    let file_len = file
        .metadata()
        .map_err(|source| PromptError::Io {
            path: path.to_path_buf(),
            source,
        })?
        .len();
    let mut reader =
        hound::WavReader::new(BufReader::new(file)).map_err(|error| header_error(path, error))?;
    let spec = reader.spec();
    let unsupported = |detail: String| PromptError::Unsupported {
        path: path.to_path_buf(),
        detail,
    };
    let describe = || {
        format!(
            "{:?} {}-bit, {} channel(s), {} Hz",
            spec.sample_format, spec.bits_per_sample, spec.channels, spec.sample_rate
        )
    };
    if !(MIN_RATE..=MAX_RATE).contains(&spec.sample_rate) {
        return Err(unsupported(format!(
            "{}: the sample rate must be between {MIN_RATE} and {MAX_RATE} Hz",
            describe()
        )));
    }
    match (spec.sample_format, spec.bits_per_sample) {
        (hound::SampleFormat::Int, 8 | 16 | 24 | 32) | (hound::SampleFormat::Float, 32) => {}
        _ => return Err(unsupported(describe())),
    }
    if spec.channels == 0 {
        return Err(unsupported(describe()));
    }
    let channels = usize::from(spec.channels);
    let frames = u64::from(reader.duration());
    if frames == 0 {
        return Err(PromptError::Empty {
            path: path.to_path_buf(),
        });
    }
    let seconds = frames / u64::from(spec.sample_rate);
    if seconds >= MAX_PROMPT_DURATION.as_secs() {
        return Err(PromptError::TooLong {
            path: path.to_path_buf(),
            seconds,
        });
    }

    // The header's count is not trusted for allocation: a damaged one could ask for gigabytes.
    let bytes_per_frame = u64::from(spec.bits_per_sample).div_ceil(8) * channels as u64;
    let capacity = frames.min(file_len / bytes_per_frame.max(1));
    let mut mono = Vec::with_capacity(capacity as usize);
    let expected = u64::from(reader.len());
    let mut found = 0u64;
    let mut mix = |sample: Result<f32, hound::Error>| -> Result<(), PromptError> {
        let sample = sample.map_err(|error| match error {
            hound::Error::IoError(ref source) if is_short_read(source) => PromptError::Truncated {
                path: path.to_path_buf(),
                expected,
                found,
            },
            hound::Error::IoError(source) => PromptError::Io {
                path: path.to_path_buf(),
                source,
            },
            other => PromptError::NotWav {
                path: path.to_path_buf(),
                reason: other.to_string(),
            },
        })?;
        let sample = if sample.is_finite() { sample } else { 0.0 };
        let channel = (found % channels as u64) as usize;
        if channel == 0 {
            mono.push(sample);
        } else if let Some(last) = mono.last_mut() {
            *last += sample;
        }
        found += 1;
        Ok(())
    };
    match spec.sample_format {
        hound::SampleFormat::Float => {
            for sample in reader.samples::<f32>() {
                mix(sample)?;
            }
        }
        hound::SampleFormat::Int => {
            let scale = 1.0 / (1u64 << (spec.bits_per_sample - 1)) as f32;
            for sample in reader.samples::<i32>() {
                mix(sample.map(|s| s as f32 * scale))?;
            }
        }
    }
    if channels > 1 {
        let inverse = 1.0 / channels as f32;
        for sample in &mut mono {
            *sample *= inverse;
        }
    }
    Ok((mono, spec.sample_rate))
}

/// Whether hound hit the end of the file. hound 3.5 reports a short read as
/// `ErrorKind::Other` ("Failed to read enough bytes."), not as `UnexpectedEof`; real read
/// failures of a file (EIO...) have other kinds.
fn is_short_read(error: &io::Error) -> bool {
    matches!(
        error.kind(),
        io::ErrorKind::UnexpectedEof | io::ErrorKind::Other
    )
}

fn header_error(path: &Path, error: hound::Error) -> PromptError {
    let path = path.to_path_buf();
    match error {
        hound::Error::IoError(source) if is_short_read(&source) => PromptError::NotWav {
            path,
            reason: "the file ends inside its header".to_string(),
        },
        hound::Error::IoError(source) => PromptError::Io { path, source },
        hound::Error::FormatError(reason) => PromptError::NotWav {
            path,
            reason: reason.to_string(),
        },
        hound::Error::Unsupported => PromptError::Unsupported {
            path,
            detail: "a WAV encoding other than PCM or 32-bit float (A-law, µ-law, ADPCM, MP3...)"
                .to_string(),
        },
        other => PromptError::Unsupported {
            path,
            detail: other.to_string(),
        },
    }
}

fn resample_to_8k(path: &Path, mono: Vec<f32>, rate: u32) -> Result<Vec<f32>, PromptError> {
    if rate == SAMPLE_RATE {
        return Ok(mono);
    }
    let error = |detail: String| PromptError::Resample {
        path: path.to_path_buf(),
        rate,
        detail,
    };
    let mut resampler = Fft::<f32>::new_custom(
        rate as usize,
        SAMPLE_RATE as usize,
        RESAMPLER_CHUNK,
        1,
        1,
        WindowFunction::BlackmanHarris2,
        FixedSync::Both,
    )
    .map_err(|e| error(e.to_string()))?;
    let input = InterleavedSlice::new(&mono, 1, mono.len()).map_err(|e| error(e.to_string()))?;
    let output = resampler
        .process_all(&input, mono.len(), None)
        .map_err(|e| error(e.to_string()))?;
    Ok(output.take_data())
}

type Slot = Arc<Mutex<Option<Arc<Prompt>>>>;

/// All loaded prompts, shared by every call (clone it freely: clones share one cache).
///
/// Keyed by canonical path, so `prompts/welcome.wav` and `./prompts/../prompts/welcome.wav`
/// are one prompt. A prompt is loaded once and kept for the life of the process: a file
/// changed on disk is not reloaded (restart, or build a new cache). Failed loads are not
/// remembered, so a file fixed on disk loads on the next try. Loading does blocking file I/O:
/// [`preload`](Self::preload) every configured prompt at start-up so calls only hit memory.
#[derive(Debug, Clone, Default)]
pub struct PromptCache {
    slots: Arc<Mutex<HashMap<PathBuf, Slot>>>,
}

impl PromptCache {
    /// An empty cache.
    pub fn new() -> PromptCache {
        PromptCache::default()
    }

    /// The prompt at `path`, loaded on first use; every later call returns the same `Arc`.
    ///
    /// Two calls asking for the same new prompt at once load it once (the second waits);
    /// calls for other prompts are not held up by a load in progress.
    pub fn get(&self, path: &Path) -> Result<Arc<Prompt>, PromptError> {
        let key = fs::canonicalize(path).map_err(|source| match source.kind() {
            io::ErrorKind::NotFound => PromptError::Missing {
                path: path.to_path_buf(),
            },
            _ => PromptError::Io {
                path: path.to_path_buf(),
                source,
            },
        })?;
        let slot = {
            let mut slots = self.slots.lock().unwrap_or_else(PoisonError::into_inner);
            Arc::clone(slots.entry(key.clone()).or_default())
        };
        let mut slot = slot.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(prompt) = slot.as_ref() {
            return Ok(Arc::clone(prompt));
        }
        let prompt = Arc::new(Prompt::load(&key)?);
        *slot = Some(Arc::clone(&prompt));
        Ok(prompt)
    }

    /// Loads every prompt in `paths` now (at start-up), so that no call waits for the disk and
    /// a broken file is reported before the first caller hears silence. Stops at the first
    /// file that fails; returns how many were loaded.
    pub fn preload<I, P>(&self, paths: I) -> Result<usize, PromptError>
    where
        I: IntoIterator<Item = P>,
        P: AsRef<Path>,
    {
        let mut loaded = 0;
        for path in paths {
            self.get(path.as_ref())?;
            loaded += 1;
        }
        Ok(loaded)
    }
}

/// Plays a sequence of prompts back to back, one 20 ms frame per call, for one call's media
/// loop.
///
/// Sans-IO: the media loop calls [`next_frame`](Self::next_frame) on each tick of its own
/// monotonic clock (every [`FRAME_DURATION`]), sends the bytes as one RTP packet and writes the
/// PCM to the recording's hotline channel. Each prompt's last frame is padded with silence, so
/// prompts in a sequence are separated by less than 20 ms of silence.
#[derive(Debug, Clone)]
pub struct PromptPlayer {
    prompts: Vec<Arc<Prompt>>,
    law: Law,
    prompt: usize,
    frame: usize,
    stopped: bool,
}

impl PromptPlayer {
    /// A player for `prompts`, in order, encoded as `codec` (the one negotiated for the call).
    pub fn new(prompts: Vec<Arc<Prompt>>, codec: Codec) -> PromptPlayer {
        PromptPlayer {
            prompts,
            law: Law::from(codec),
            prompt: 0,
            frame: 0,
            stopped: false,
        }
    }

    /// The next frame: 160 encoded bytes to send and the 160 PCM samples they carry (for the
    /// recording). `None` once every prompt has played or after [`stop`](Self::stop).
    pub fn next_frame(&mut self) -> Option<(&[u8; FRAME_SAMPLES], &[i16; FRAME_SAMPLES])> {
        if self.stopped {
            return None;
        }
        self.skip_played();
        let prompt = self.prompts.get(self.prompt)?;
        let index = self.frame;
        self.frame += 1;
        Some((prompt.encoded(self.law, index)?, prompt.frame_pcm(index)?))
    }

    /// Switches the encoding from the next frame on, without losing the position: a re-INVITE
    /// may change the call's codec while a prompt plays.
    pub fn set_codec(&mut self, codec: Codec) {
        self.law = Law::from(codec);
    }

    /// Stops playback at once (barge-in: the caller pressed a key or started talking).
    pub fn stop(&mut self) {
        self.stopped = true;
    }

    /// Whether playback is over, played to the end or stopped; the IVR starts its input
    /// timeout from here.
    pub fn is_finished(&self) -> bool {
        self.stopped
            || self
                .prompts
                .iter()
                .skip(self.prompt)
                .map(|prompt| prompt.frames())
                .sum::<usize>()
                <= self.frame
    }

    /// Moves past prompts whose frames have all been played (and empty ones).
    fn skip_played(&mut self) {
        while let Some(prompt) = self.prompts.get(self.prompt) {
            if self.frame < prompt.frames() {
                break;
            }
            self.prompt += 1;
            self.frame = 0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::f64::consts::PI;

    fn spec(rate: u32, channels: u16, bits: u16, float: bool) -> hound::WavSpec {
        hound::WavSpec {
            channels,
            sample_rate: rate,
            bits_per_sample: bits,
            sample_format: if float {
                hound::SampleFormat::Float
            } else {
                hound::SampleFormat::Int
            },
        }
    }

    /// Writes `seconds` of `signal(t, channel)` (values in [-1, 1]) in the format of `spec`.
    fn write_wav(
        path: &Path,
        spec: hound::WavSpec,
        seconds: f64,
        signal: impl Fn(f64, u16) -> f64,
    ) {
        let mut writer = hound::WavWriter::create(path, spec).unwrap();
        let frames = (seconds * f64::from(spec.sample_rate)).round() as u64;
        let full = ((1u64 << (spec.bits_per_sample - 1)) - 1) as f64;
        for n in 0..frames {
            let t = n as f64 / f64::from(spec.sample_rate);
            for channel in 0..spec.channels {
                let x = signal(t, channel);
                match (spec.sample_format, spec.bits_per_sample) {
                    (hound::SampleFormat::Float, _) => writer.write_sample(x as f32).unwrap(),
                    (_, 8) => writer.write_sample((x * full).round() as i8).unwrap(),
                    (_, 16) => writer.write_sample((x * full).round() as i16).unwrap(),
                    _ => writer.write_sample((x * full).round() as i32).unwrap(),
                }
            }
        }
        writer.finalize().unwrap();
    }

    fn sine(hz: f64, amplitude: f64) -> impl Fn(f64, u16) -> f64 {
        move |t, _| amplitude * (2.0 * PI * hz * t).sin()
    }

    /// RMS of the prompt, 100 ms in from both ends (away from the edges of the clip).
    fn rms_middle(samples: &[i16]) -> f64 {
        let middle = &samples[800..samples.len() - 800];
        (middle.iter().map(|&s| f64::from(s).powi(2)).sum::<f64>() / middle.len() as f64).sqrt()
    }

    /// Sign changes in the middle of the prompt, per second.
    fn crossings_per_second(samples: &[i16]) -> f64 {
        let middle = &samples[800..samples.len() - 800];
        let crossings = middle
            .windows(2)
            .filter(|pair| (pair[0] >= 0) != (pair[1] >= 0))
            .count();
        crossings as f64 * f64::from(SAMPLE_RATE) / middle.len() as f64
    }

    #[test]
    fn every_common_format_becomes_8khz_mono_of_the_same_length_and_pitch() {
        let dir = tempfile::tempdir().unwrap();
        let cases = [
            ("44k1-stereo-16", spec(44_100, 2, 16, false), 1.0),
            ("16k-mono-float", spec(16_000, 1, 32, true), 0.73),
            ("8k-mono-8bit", spec(8_000, 1, 8, false), 0.5),
            ("11k025-mono-24", spec(11_025, 1, 24, false), 0.61),
            ("22k05-stereo-32", spec(22_050, 2, 32, false), 0.8),
            ("48k-mono-16", spec(48_000, 1, 16, false), 1.234),
            ("48k-stereo-float", spec(48_000, 2, 32, true), 0.5),
        ];
        for (name, spec, seconds) in cases {
            let path = dir.path().join(format!("{name}.wav"));
            write_wav(&path, spec, seconds, sine(1000.0, 0.5));
            let prompt = Prompt::load(&path).unwrap();
            assert_eq!(prompt.name(), name);
            let want = seconds * 8000.0;
            let got = prompt.samples().len() as f64;
            assert!(
                (got - want).abs() <= 160.0,
                "{name}: {got} samples, want {want}"
            );
            let wanted = Duration::from_secs_f64(seconds);
            assert!(
                prompt.duration().abs_diff(wanted) <= FRAME_DURATION,
                "{name}"
            );
            assert_eq!(
                prompt.frames(),
                prompt.samples().len().div_ceil(160),
                "{name}"
            );
            // 1 kHz: 2000 sign changes per second.
            let rate = crossings_per_second(prompt.samples());
            assert!((rate - 2000.0).abs() < 10.0, "{name}: {rate} crossings/s");
            // Amplitude kept: RMS of a 0.5 sine is 0.354 of full scale (8-bit is coarser).
            let rms = rms_middle(prompt.samples()) / 32768.0;
            assert!((rms - 0.3536).abs() < 0.01, "{name}: rms {rms}");
        }
    }

    #[test]
    fn tone_above_4khz_is_filtered_out_not_aliased() {
        // 6 kHz at 44.1 kHz would fold to 2 kHz at 8 kHz without an anti-aliasing low-pass.
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("6k.wav");
        write_wav(&path, spec(44_100, 1, 16, false), 1.0, sine(6000.0, 0.5));
        let prompt = Prompt::load(&path).unwrap();
        let input_rms = 0.5 / 2f64.sqrt() * 32768.0;
        let attenuation_db = 20.0 * (input_rms / rms_middle(prompt.samples()).max(1e-9)).log10();
        assert!(attenuation_db > 30.0, "only {attenuation_db:.1} dB");

        // And the telephone band is untouched: 3.3 kHz keeps its level within 1 dB.
        let path = dir.path().join("3k3.wav");
        write_wav(&path, spec(44_100, 1, 16, false), 1.0, sine(3300.0, 0.5));
        let prompt = Prompt::load(&path).unwrap();
        let loss_db = 20.0 * (input_rms / rms_middle(prompt.samples())).log10();
        assert!(loss_db.abs() < 1.0, "3.3 kHz changed by {loss_db:.2} dB");
    }

    #[test]
    fn stereo_is_mixed_down_by_averaging() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("left-only.wav");
        write_wav(&path, spec(8_000, 2, 16, false), 0.5, |t, channel| {
            if channel == 0 {
                0.5 * (2.0 * PI * 440.0 * t).sin()
            } else {
                0.0
            }
        });
        let rms = rms_middle(Prompt::load(&path).unwrap().samples()) / 32768.0;
        assert!(
            (rms - 0.1768).abs() < 0.002,
            "left-only mixes to half level: {rms}"
        );

        let path = dir.path().join("opposite.wav");
        write_wav(&path, spec(44_100, 2, 16, false), 0.5, |t, channel| {
            let x = 0.5 * (2.0 * PI * 440.0 * t).sin();
            if channel == 0 { x } else { -x }
        });
        let prompt = Prompt::load(&path).unwrap();
        assert!(
            prompt.samples().iter().all(|&s| s.abs() <= 1),
            "opposite channels cancel"
        );
    }

    #[test]
    fn frames_are_160_bytes_and_the_last_is_padded_with_the_silence_byte() {
        let samples: Vec<i16> = (0..1000).map(|i| ((i % 50) * 300 - 7000) as i16).collect();
        let prompt = Prompt::from_pcm("menu", samples.clone());
        assert_eq!(prompt.frames(), 7);
        assert_eq!(prompt.duration(), Duration::from_millis(125));
        let mut pcmu = Vec::new();
        Codec::Pcmu.encode(&samples, &mut pcmu);
        let mut pcma = Vec::new();
        Codec::Pcma.encode(&samples, &mut pcma);

        let last_u = prompt.frame(Codec::Pcmu, 6).unwrap();
        let last_a = prompt.frame(Codec::Pcma, 6).unwrap();
        let last_pcm = prompt.frame_pcm(6).unwrap();
        assert_eq!(last_u[..40], pcmu[960..]);
        assert_eq!(last_a[..40], pcma[960..]);
        assert!(last_u[40..].iter().all(|&b| b == 0xFF));
        assert!(last_a[40..].iter().all(|&b| b == 0xD5));
        assert_eq!(last_pcm[..40], samples[960..]);
        assert!(last_pcm[40..].iter().all(|&s| s == 0));
        assert_eq!(prompt.frame(Codec::Pcmu, 0).unwrap()[..], pcmu[..160]);
        assert!(prompt.frame(Codec::Pcmu, 7).is_none());
        assert!(prompt.frame_pcm(usize::MAX).is_none());
    }

    #[test]
    fn player_plays_each_prompt_to_its_padded_end_then_finishes() {
        let welcome = Arc::new(Prompt::from_pcm("welcome", vec![1000; 1000])); // 7 frames
        let menu = Arc::new(Prompt::from_pcm("menu", vec![-1000; 320])); // 2 frames
        let empty = Arc::new(Prompt::from_pcm("empty", Vec::new())); // 0 frames
        let mut player = PromptPlayer::new(vec![welcome, empty, menu], Codec::Pcma);
        let mut frames = Vec::new();
        while let Some((bytes, pcm)) = player.next_frame() {
            frames.push((*bytes, *pcm));
        }
        assert_eq!(frames.len(), 7 + 2);
        assert!(player.is_finished());
        assert!(player.next_frame().is_none());
        let (bytes, pcm) = frames[6];
        assert_eq!(pcm[39], 1000);
        assert_eq!(pcm[40], 0);
        assert!(bytes[40..].iter().all(|&b| b == 0xD5));
        assert!(
            frames[7].1.iter().all(|&s| s == -1000),
            "menu follows on the next frame"
        );
    }

    #[test]
    fn codec_change_mid_prompt_keeps_the_position() {
        let samples: Vec<i16> = (0..480).map(|i| (i * 37 % 20_000) as i16).collect();
        let prompt = Arc::new(Prompt::from_pcm("menu", samples));
        let mut player = PromptPlayer::new(vec![Arc::clone(&prompt)], Codec::Pcmu);
        assert_eq!(
            player.next_frame().unwrap().0,
            prompt.frame(Codec::Pcmu, 0).unwrap()
        );
        player.set_codec(Codec::Pcma);
        let (bytes, pcm) = player.next_frame().unwrap();
        assert_eq!(bytes, prompt.frame(Codec::Pcma, 1).unwrap());
        assert_eq!(pcm, prompt.frame_pcm(1).unwrap());
    }

    #[test]
    fn stop_ends_playback_at_once() {
        let prompt = Arc::new(Prompt::from_pcm("long", vec![500; 8000]));
        let mut player = PromptPlayer::new(vec![prompt], Codec::Pcmu);
        assert!(!player.is_finished());
        for _ in 0..3 {
            assert!(player.next_frame().is_some());
        }
        player.stop();
        assert!(player.is_finished());
        assert!(player.next_frame().is_none());
        assert!(PromptPlayer::new(Vec::new(), Codec::Pcmu).is_finished());
    }

    #[test]
    fn cache_loads_a_file_once_and_shares_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("welcome.wav");
        write_wav(&path, spec(16_000, 1, 16, false), 0.3, sine(440.0, 0.3));
        let cache = PromptCache::new();
        let first = cache.get(&path).unwrap();
        let other_spelling = dir.path().join(".").join("welcome.wav");
        assert!(Arc::ptr_eq(
            &first,
            &cache.clone().get(&other_spelling).unwrap()
        ));

        // Changing the file does not reload it: the cache is what every call plays.
        write_wav(&path, spec(16_000, 1, 16, false), 2.0, sine(440.0, 0.3));
        let again = cache.get(&path).unwrap();
        assert!(Arc::ptr_eq(&first, &again));
        assert_eq!(again.samples().len(), first.samples().len());

        // Many calls asking for a new prompt at once share one load.
        let menu = dir.path().join("menu.wav");
        write_wav(&menu, spec(48_000, 2, 16, false), 1.0, sine(440.0, 0.3));
        let prompts: Vec<Arc<Prompt>> = std::thread::scope(|scope| {
            let handles: Vec<_> = (0..8)
                .map(|_| scope.spawn(|| cache.get(&menu).unwrap()))
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        assert!(prompts.iter().all(|p| Arc::ptr_eq(p, &prompts[0])));
        assert!(!Arc::ptr_eq(&prompts[0], &first));

        assert_eq!(cache.preload([&path, &menu]).unwrap(), 2);
        let missing = dir.path().join("missing.wav");
        let error = cache.preload([&path, &missing]).unwrap_err();
        assert!(matches!(error, PromptError::Missing { .. }), "{error}");
    }

    #[test]
    fn a_fixed_file_loads_after_a_failed_load() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("later.wav");
        fs::write(&path, b"not yet").unwrap();
        let cache = PromptCache::new();
        assert!(cache.get(&path).is_err());
        write_wav(&path, spec(8_000, 1, 16, false), 0.1, sine(440.0, 0.3));
        assert_eq!(cache.get(&path).unwrap().samples().len(), 800);
    }

    #[test]
    fn broken_files_give_errors_that_name_them() {
        let dir = tempfile::tempdir().unwrap();
        let good = dir.path().join("good.wav");
        write_wav(&good, spec(8_000, 1, 16, false), 0.1, sine(440.0, 0.3));
        let good_bytes = fs::read(&good).unwrap();
        let silent = dir.path().join("silent.wav");
        write_wav(&silent, spec(8_000, 1, 16, false), 0.0, sine(440.0, 0.3));
        let silent_bytes = fs::read(&silent).unwrap();
        let mut noise = Vec::new();
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        for _ in 0..4096 {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            noise.push(state as u8);
        }
        // A WAV header announcing 0x0002 (MS ADPCM) data.
        let mut adpcm = good_bytes.clone();
        adpcm[20] = 2;

        let cases: Vec<(&str, Vec<u8>, &str)> = vec![
            ("noise.wav", noise, "NotWav"),
            (
                "text.wav",
                b"Welcome to the hotline. Press 1 for water.\n".to_vec(),
                "NotWav",
            ),
            ("header-cut.wav", good_bytes[..30].to_vec(), "NotWav"),
            ("data-cut.wav", good_bytes[..44 + 700].to_vec(), "Truncated"),
            ("no-audio.wav", silent_bytes, "Empty"),
            ("empty.wav", Vec::new(), "NotWav"),
            ("adpcm.wav", adpcm, "Unsupported"),
        ];
        let cache = PromptCache::new();
        for (name, bytes, kind) in cases {
            let path = dir.path().join(name);
            fs::write(&path, bytes).unwrap();
            let error = cache.get(&path).unwrap_err();
            let variant = format!("{error:?}");
            assert!(variant.starts_with(kind), "{name}: {variant}");
            assert!(error.to_string().contains(name), "{name}: {error}");
        }
        let error = cache.get(&dir.path().join("nowhere.wav")).unwrap_err();
        assert!(matches!(error, PromptError::Missing { .. }));
        assert!(error.to_string().contains("nowhere.wav"));

        let mut writer =
            hound::WavWriter::create(dir.path().join("rate.wav"), spec(2_000, 1, 16, false))
                .unwrap();
        writer.write_sample(0i16).unwrap();
        writer.finalize().unwrap();
        let error = Prompt::load(&dir.path().join("rate.wav")).unwrap_err();
        assert!(matches!(error, PromptError::Unsupported { .. }), "{error}");
    }

    #[test]
    fn damaged_headers_never_panic() {
        let dir = tempfile::tempdir().unwrap();
        let good = dir.path().join("good.wav");
        write_wav(&good, spec(22_050, 2, 16, false), 0.05, sine(440.0, 0.3));
        let good_bytes = fs::read(&good).unwrap();
        let mutant = dir.path().join("mutant.wav");
        for index in 0..44 {
            for value in [0x00, 0x01, 0x03, 0x7f, 0x80, 0xfe, 0xff] {
                let mut bytes = good_bytes.clone();
                bytes[index] = value;
                fs::write(&mutant, &bytes).unwrap();
                let _ = Prompt::load(&mutant);
            }
        }
        for len in 0..64 {
            fs::write(&mutant, &good_bytes[..len]).unwrap();
            let _ = Prompt::load(&mutant);
        }
    }
}
