//! Recordings in, whisper's input out: a WAV file (any rate, any channel count, 8/16/24/32-bit
//! integer or 32-bit float PCM) decoded into one `f32` vector per channel in [-1, 1], each
//! resampled to [`WHISPER_RATE`] with a band-limited sinc resampler.
//!
//! Channel order is kept: in a call recording channel 0 is the caller and channel 1 the hotline
//! side; a voicemail has one channel. Untrusted headers cannot make this allocate more than the
//! data actually present, and recordings longer than [`DecodeLimits::max_duration`] are refused
//! before any sample is read.

use std::fs::File;
use std::io::{BufReader, Read, Seek, SeekFrom};
use std::path::Path;
use std::time::Duration;

use hound::{SampleFormat, WavReader};
use rubato::audioadapter_buffers::direct::SequentialSliceOfVecs;
use rubato::{
    Async, FixedAsync, Resampler, SincInterpolationParameters, SincInterpolationType,
    WindowFunction,
};

/// The sample rate whisper.cpp is trained on and expects.
pub const WHISPER_RATE: u32 = 16_000;

/// Sinc filter length of the resampler, in input samples. 256 taps with a Blackman-Harris
/// window put the automatic cutoff at about 0.94 of the lower Nyquist frequency with stopband
/// rejection far below 16-bit noise.
const SINC_LEN: usize = 256;

/// Input frames fed to the resampler per call.
const CHUNK_FRAMES: usize = 4096;

/// Largest exact polyphase table the resampler is allowed to build (see [`sinc_parameters`]).
const MAX_EXACT_PHASES: usize = 1024;

/// Sanity bounds on what a header may claim, so nonsense is refused up front.
const MIN_SOURCE_RATE: u32 = 1_000;
const MAX_SOURCE_RATE: u32 = 384_000;

/// Bounds on what [`decode_file`] and [`decode_reader`] accept: a header is untrusted input and
/// a 3-day "recording" is a broken header or a runaway recorder, not a call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecodeLimits {
    /// Longest recording accepted (by the header's frame count).
    pub max_duration: Duration,
    /// Most channels accepted.
    pub max_channels: u16,
}

impl Default for DecodeLimits {
    /// 12 hours and 8 channels: far beyond any hotline call, well within memory.
    fn default() -> Self {
        DecodeLimits {
            max_duration: Duration::from_secs(12 * 3600),
            max_channels: 8,
        }
    }
}

/// A decoded recording at [`WHISPER_RATE`], one vector per source channel.
#[derive(Debug, Clone, PartialEq)]
pub struct Audio {
    /// Samples per channel at [`WHISPER_RATE`], in [-1, 1], in the file's channel order
    /// (call recordings: 0 = caller, 1 = hotline side). All channels have the same length.
    pub channels: Vec<Vec<f32>>,
    /// Sample rate of the file, in Hz.
    pub source_rate: u32,
    /// Channel count of the file.
    pub source_channels: u16,
    /// Length of the recording, from the file's frame count and rate.
    pub duration: Duration,
}

impl Audio {
    /// Number of samples per channel (at [`WHISPER_RATE`]).
    pub fn frames(&self) -> usize {
        self.channels.first().map_or(0, Vec::len)
    }

    /// True when the recording holds no samples (a valid WAV with an empty data chunk).
    pub fn is_empty(&self) -> bool {
        self.frames() == 0
    }

    /// All channels averaged into one, for recordings where the speakers are not separated
    /// (or to detect language once for a whole call). A mono recording is returned as is.
    pub fn mono_mix(&self) -> Vec<f32> {
        match self.channels.as_slice() {
            [] => Vec::new(),
            [only] => only.clone(),
            [first, rest @ ..] => {
                let scale = 1.0 / self.channels.len() as f32;
                let mut mix = first.clone();
                for channel in rest {
                    for (m, s) in mix.iter_mut().zip(channel) {
                        *m += *s;
                    }
                }
                for m in &mut mix {
                    *m *= scale;
                }
                mix
            }
        }
    }
}

/// Why a recording could not be turned into whisper input. Every variant names the file (or the
/// name the caller gave a stream) so a failed transcription job can say which recording to look
/// at.
#[derive(Debug, thiserror::Error)]
pub enum AudioError {
    /// The file could not be opened or read at all.
    #[error("cannot read recording {name}: {source}")]
    Io {
        /// The file or stream.
        name: String,
        /// What the OS said.
        #[source]
        source: std::io::Error,
    },
    /// The file has no bytes.
    #[error("recording {name} is empty (0 bytes): the recorder wrote nothing")]
    Empty {
        /// The file or stream.
        name: String,
    },
    /// The header is not a WAV header hound can read.
    #[error("recording {name} is not a readable WAV file: {source}")]
    Wav {
        /// The file or stream.
        name: String,
        /// hound's reason.
        #[source]
        source: hound::Error,
    },
    /// The header is a WAV header, but for audio this decoder does not take.
    #[error(
        "recording {name} is not supported: {reason}; convert it to PCM WAV (e.g. `sox in.wav -e signed -b 16 out.wav`)"
    )]
    Unsupported {
        /// The file or stream.
        name: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The header claims a recording longer than the limit.
    #[error(
        "recording {name} claims {claimed:?} of audio, more than the {max:?} accepted; the header is probably corrupt"
    )]
    TooLong {
        /// The file or stream.
        name: String,
        /// Duration from the header.
        claimed: Duration,
        /// The limit.
        max: Duration,
    },
    /// The data chunk ends before the number of samples its header announces (a recording cut
    /// off by a crash or a partial copy).
    #[error(
        "recording {name} is truncated: the data chunk stops after {read} of {expected} frames ({source})"
    )]
    Truncated {
        /// The file or stream.
        name: String,
        /// Frames decoded before the data ran out.
        read: u64,
        /// Frames the header announced.
        expected: u64,
        /// The read error.
        #[source]
        source: hound::Error,
    },
    /// The resampler refused the input (should not happen for audio that passed the checks).
    #[error("cannot resample recording {name} from {rate} Hz: {reason}")]
    Resample {
        /// The file or stream.
        name: String,
        /// Source rate.
        rate: u32,
        /// rubato's reason.
        reason: String,
    },
}

/// Decodes and resamples a WAV file with the default [`DecodeLimits`].
pub fn decode_file(path: &Path) -> Result<Audio, AudioError> {
    decode_file_with(path, &DecodeLimits::default())
}

/// Decodes and resamples a WAV file within `limits`.
pub fn decode_file_with(path: &Path, limits: &DecodeLimits) -> Result<Audio, AudioError> {
    let name = path.display().to_string();
    let file = File::open(path).map_err(|source| AudioError::Io {
        name: name.clone(),
        source,
    })?;
    decode_reader_with(BufReader::new(file), &name, limits)
}

/// Decodes and resamples WAV bytes from a stream (an upload, a blob from the store) with the
/// default [`DecodeLimits`]; `name` identifies the stream in errors.
pub fn decode_reader<R: Read + Seek>(reader: R, name: &str) -> Result<Audio, AudioError> {
    decode_reader_with(reader, name, &DecodeLimits::default())
}

/// Decodes and resamples WAV bytes from a stream within `limits`; `name` identifies the stream
/// in errors.
pub fn decode_reader_with<R: Read + Seek>(
    mut reader: R,
    name: &str,
    limits: &DecodeLimits,
) -> Result<Audio, AudioError> {
    let io = |source| AudioError::Io {
        name: name.to_string(),
        source,
    };
    let start = reader.stream_position().map_err(io)?;
    let end = reader.seek(SeekFrom::End(0)).map_err(io)?;
    reader.seek(SeekFrom::Start(start)).map_err(io)?;
    let available_bytes = end.saturating_sub(start);
    if available_bytes == 0 {
        return Err(AudioError::Empty {
            name: name.to_string(),
        });
    }

    let mut wav = WavReader::new(reader).map_err(|source| match source {
        hound::Error::Unsupported => AudioError::Unsupported {
            name: name.to_string(),
            reason:
                "its encoding is not integer or float PCM (A-law, µ-law and ADPCM are not read)"
                    .to_string(),
        },
        source => AudioError::Wav {
            name: name.to_string(),
            source,
        },
    })?;
    let spec = wav.spec();
    check_spec(&spec, name, limits)?;
    let expected_frames = u64::from(wav.duration());
    let claimed = Duration::from_secs_f64(expected_frames as f64 / f64::from(spec.sample_rate));
    if claimed > limits.max_duration {
        return Err(AudioError::TooLong {
            name: name.to_string(),
            claimed,
            max: limits.max_duration,
        });
    }

    let channels = usize::from(spec.channels);
    let bytes_per_frame = u64::from(spec.bits_per_sample.div_ceil(8)) * channels as u64;
    // The header's count is untrusted: reserve no more than the bytes actually present can hold.
    let capacity = expected_frames.min(available_bytes / bytes_per_frame.max(1)) as usize;
    let mut planar: Vec<Vec<f32>> = (0..channels)
        .map(|_| Vec::with_capacity(capacity))
        .collect();
    let truncated = |read: usize, source| AudioError::Truncated {
        name: name.to_string(),
        read: (read / channels) as u64,
        expected: expected_frames,
        source,
    };
    match spec.sample_format {
        SampleFormat::Float => {
            for (i, sample) in wav.samples::<f32>().enumerate() {
                let sample = sample.map_err(|e| truncated(i, e))?;
                let value = if sample.is_finite() {
                    sample.clamp(-1.0, 1.0)
                } else {
                    0.0
                };
                planar[i % channels].push(value);
            }
        }
        SampleFormat::Int => {
            let scale = 1.0 / (1u64 << (spec.bits_per_sample - 1)) as f32;
            for (i, sample) in wav.samples::<i32>().enumerate() {
                let sample = sample.map_err(|e| truncated(i, e))?;
                planar[i % channels].push((sample as f32 * scale).clamp(-1.0, 1.0));
            }
        }
    }

    let resampled = resample(&planar, spec.sample_rate, WHISPER_RATE).map_err(|reason| {
        AudioError::Resample {
            name: name.to_string(),
            rate: spec.sample_rate,
            reason,
        }
    })?;
    tracing::debug!(
        recording = name,
        rate = spec.sample_rate,
        channels = spec.channels,
        bits = spec.bits_per_sample,
        frames = expected_frames,
        "decoded recording"
    );
    Ok(Audio {
        channels: resampled,
        source_rate: spec.sample_rate,
        source_channels: spec.channels,
        duration: claimed,
    })
}

fn check_spec(spec: &hound::WavSpec, name: &str, limits: &DecodeLimits) -> Result<(), AudioError> {
    let unsupported = |reason: String| {
        Err(AudioError::Unsupported {
            name: name.to_string(),
            reason,
        })
    };
    if spec.channels == 0 || spec.channels > limits.max_channels {
        return unsupported(format!(
            "{} channels (1 to {} accepted)",
            spec.channels, limits.max_channels
        ));
    }
    if !(MIN_SOURCE_RATE..=MAX_SOURCE_RATE).contains(&spec.sample_rate) {
        return unsupported(format!(
            "a sample rate of {} Hz ({MIN_SOURCE_RATE} to {MAX_SOURCE_RATE} Hz accepted)",
            spec.sample_rate
        ));
    }
    let bits_ok = match spec.sample_format {
        SampleFormat::Int => matches!(spec.bits_per_sample, 8 | 16 | 24 | 32),
        SampleFormat::Float => spec.bits_per_sample == 32,
    };
    if !bits_ok {
        return unsupported(format!(
            "{}-bit {} samples (8/16/24/32-bit integer or 32-bit float accepted)",
            spec.bits_per_sample,
            match spec.sample_format {
                SampleFormat::Int => "integer",
                SampleFormat::Float => "float",
            }
        ));
    }
    Ok(())
}

/// Resamples planar audio (one vector per channel, all the same length) from `from` Hz to `to`
/// Hz with rubato's band-limited sinc resampler; the resampler's delay is trimmed so sample `n`
/// of the output is at time `n / to`, and the output has `ceil(len * to / from)` samples.
/// Rates equal: returned unchanged. Errors are rubato's, as text.
pub fn resample(channels: &[Vec<f32>], from: u32, to: u32) -> Result<Vec<Vec<f32>>, String> {
    let frames = channels.first().map_or(0, Vec::len);
    if from == to || channels.is_empty() {
        return Ok(channels.to_vec());
    }
    if from == 0 || to == 0 {
        return Err(format!("cannot resample from {from} Hz to {to} Hz"));
    }
    if channels.iter().any(|c| c.len() != frames) {
        return Err("channels differ in length".to_string());
    }
    if frames == 0 {
        return Ok(vec![Vec::new(); channels.len()]);
    }
    let ratio = f64::from(to) / f64::from(from);
    let mut resampler = Async::<f32>::new_sinc(
        ratio,
        1.0,
        &sinc_parameters(from, to),
        CHUNK_FRAMES,
        channels.len(),
        FixedAsync::Input,
    )
    .map_err(|e| e.to_string())?;
    let input =
        SequentialSliceOfVecs::new(channels, channels.len(), frames).map_err(|e| e.to_string())?;
    let output = resampler
        .process_all(&input, frames, None)
        .map_err(|e| e.to_string())?;
    let n = channels.len();
    let interleaved = output.take_data();
    let out_frames = interleaved.len() / n;
    let mut planar: Vec<Vec<f32>> = (0..n).map(|_| Vec::with_capacity(out_frames)).collect();
    for frame in interleaved.chunks_exact(n) {
        for (channel, sample) in planar.iter_mut().zip(frame) {
            channel.push(*sample);
        }
    }
    Ok(planar)
}

/// Filter design for `from` → `to`. When the ratio reduces to `p/q` with a small `p` (8 → 16 kHz
/// is 2/1, 44.1 → 16 kHz is 160/441), every output sample falls on one of `p` sub-sample phases,
/// so an oversampling factor of `p` with nearest-phase lookup is an exact polyphase sinc filter:
/// no interpolation error and one dot product per sample. Other ratios use cubic interpolation
/// between 256 phases.
fn sinc_parameters(from: u32, to: u32) -> SincInterpolationParameters {
    let phases = (to / gcd(from, to)) as usize;
    let params = SincInterpolationParameters::new(SINC_LEN, WindowFunction::BlackmanHarris2);
    if phases <= MAX_EXACT_PHASES {
        params
            .oversampling_factor(phases)
            .interpolation(SincInterpolationType::Nearest)
    } else {
        params
            .oversampling_factor(256)
            .interpolation(SincInterpolationType::Cubic)
    }
}

fn gcd(mut a: u32, mut b: u32) -> u32 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a.max(1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Cursor;

    fn wav_bytes(spec: hound::WavSpec, frames: &[Vec<f64>]) -> Vec<u8> {
        let mut cursor = Cursor::new(Vec::new());
        {
            let mut writer = hound::WavWriter::new(&mut cursor, spec).unwrap();
            for frame in frames {
                for &v in frame {
                    match spec.sample_format {
                        SampleFormat::Float => writer.write_sample(v as f32).unwrap(),
                        SampleFormat::Int => {
                            let max = ((1i64 << (spec.bits_per_sample - 1)) - 1) as f64;
                            writer.write_sample((v * max).round() as i32).unwrap()
                        }
                    }
                }
            }
            writer.finalize().unwrap();
        }
        cursor.into_inner()
    }

    fn spec(rate: u32, channels: u16, bits: u16, format: SampleFormat) -> hound::WavSpec {
        hound::WavSpec {
            channels,
            sample_rate: rate,
            bits_per_sample: bits,
            sample_format: format,
        }
    }

    fn sine(freq: f32, rate: u32, secs: f32, amplitude: f32) -> Vec<f32> {
        let n = (rate as f32 * secs) as usize;
        // Phase in f64: in f32 it loses ~1e-3 rad by the end of a second, which is −60 dB noise.
        (0..n)
            .map(|i| {
                let cycles = f64::from(freq) * i as f64 / f64::from(rate);
                amplitude * (std::f64::consts::TAU * cycles.fract()).sin() as f32
            })
            .collect()
    }

    /// Amplitude of `freq` in `x` (single-bin DFT, exact for whole periods).
    fn tone_amplitude(x: &[f32], freq: f32, rate: u32) -> f32 {
        let (mut re, mut im) = (0.0f64, 0.0f64);
        for (i, &v) in x.iter().enumerate() {
            let phase = 2.0 * std::f64::consts::PI * f64::from(freq) * i as f64 / f64::from(rate);
            re += f64::from(v) * phase.cos();
            im += f64::from(v) * phase.sin();
        }
        (2.0 * (re * re + im * im).sqrt() / x.len() as f64) as f32
    }

    /// Frequency from zero crossings (rising), over the whole signal.
    fn zero_crossing_freq(x: &[f32], rate: u32) -> f32 {
        let rising: Vec<usize> = (1..x.len())
            .filter(|&i| x[i - 1] < 0.0 && x[i] >= 0.0)
            .collect();
        let (first, last) = (rising[0], *rising.last().unwrap());
        (rising.len() - 1) as f32 * rate as f32 / (last - first) as f32
    }

    /// Everything in `x` that is not the tone at `freq` (noise, distortion, images), relative to
    /// the tone, in dB: the tone is fitted by least squares and subtracted.
    fn residual_db(x: &[f32], freq: f32, rate: u32) -> f32 {
        let (mut re, mut im) = (0.0f64, 0.0f64);
        for (i, &v) in x.iter().enumerate() {
            let phase = 2.0 * std::f64::consts::PI * f64::from(freq) * i as f64 / f64::from(rate);
            re += f64::from(v) * phase.sin();
            im += f64::from(v) * phase.cos();
        }
        let (a, b) = (2.0 * re / x.len() as f64, 2.0 * im / x.len() as f64);
        let (mut residual, mut tone) = (0.0f64, 0.0f64);
        for (i, &v) in x.iter().enumerate() {
            let phase = 2.0 * std::f64::consts::PI * f64::from(freq) * i as f64 / f64::from(rate);
            let fit = a * phase.sin() + b * phase.cos();
            residual += (f64::from(v) - fit).powi(2);
            tone += fit * fit;
        }
        (10.0 * (residual / tone).log10()) as f32
    }

    #[test]
    fn telephone_sine_keeps_frequency_and_amplitude_at_16k() {
        let input = sine(1000.0, 8000, 1.0, 0.5);
        let out = resample(&[input], 8000, WHISPER_RATE).unwrap().remove(0);
        assert_eq!(out.len(), 16000);
        // Skip the filter's edge transients.
        let steady = &out[800..15200];
        let freq = zero_crossing_freq(steady, WHISPER_RATE);
        let amp = tone_amplitude(steady, 1000.0, WHISPER_RATE);
        assert!((freq - 1000.0).abs() < 1.0, "frequency {freq}");
        assert!((amp - 0.5).abs() < 0.001, "amplitude {amp}");
        let residual = residual_db(steady, 1000.0, WHISPER_RATE);
        assert!(residual < -100.0, "residual {residual} dB");
        // The image of a 1 kHz tone upsampled without filtering sits at 7 kHz.
        let image = tone_amplitude(steady, 7000.0, WHISPER_RATE);
        assert!(image < 1e-5, "7 kHz image {image}");
    }

    #[test]
    fn resampling_keeps_timing() {
        // An impulse at 0.5 s stays at 0.5 s: the resampler's delay is trimmed (rubato's own
        // delay figure is off by up to two output samples, 0.125 ms, which is left alone).
        let mut x = vec![0.0f32; 8000];
        x[4000] = 1.0;
        let out = resample(&[x], 8000, WHISPER_RATE).unwrap().remove(0);
        let peak = out
            .iter()
            .enumerate()
            .max_by(|a, b| a.1.abs().total_cmp(&b.1.abs()))
            .unwrap()
            .0;
        assert!(
            (peak as i64 - 8000).abs() <= 2,
            "peak at {peak}: {:?}",
            &out[7994..8006]
        );
    }

    #[test]
    fn common_rates_resample_to_16k_without_aliasing() {
        for rate in [11_025, 22_050, 44_100, 48_000, 32_000, 7_999] {
            // 1 kHz should pass; 7.5 kHz (below 16k's Nyquist) should pass; 9.5 kHz (above it)
            // must be filtered out when the source can hold it.
            let secs = 1.0;
            let pass = sine(1000.0, rate, secs, 0.5);
            let out = resample(&[pass], rate, WHISPER_RATE).unwrap().remove(0);
            let expected = (rate as f64 * secs as f64 * 16000.0 / rate as f64).ceil() as usize;
            assert!(
                out.len().abs_diff(expected) <= 1,
                "{rate}: {} samples",
                out.len()
            );
            let amp = tone_amplitude(&out[800..out.len() - 800], 1000.0, WHISPER_RATE);
            assert!((amp - 0.5).abs() < 0.001, "{rate}: amplitude {amp}");
            if rate > 20_000 {
                let alias = sine(9500.0, rate, secs, 0.5);
                let out = resample(&[alias], rate, WHISPER_RATE).unwrap().remove(0);
                let rms = (out[800..out.len() - 800].iter().map(|v| v * v).sum::<f32>()
                    / (out.len() - 1600) as f32)
                    .sqrt();
                assert!(rms < 1e-5, "{rate}: 9.5 kHz leaks at rms {rms}");
            }
        }
    }

    #[test]
    fn any_accepted_rate_and_length_resamples_without_panicking() {
        let rates = [
            1_000, 1_001, 4_000, 6_000, 7_999, 8_000, 11_025, 12_000, 16_000, 22_050, 24_000,
            32_000, 44_100, 47_999, 48_000, 88_200, 96_000, 192_000, 383_999, 384_000,
        ];
        for rate in rates {
            for len in [1usize, 7, CHUNK_FRAMES + 1] {
                let x: Vec<f32> = (0..len)
                    .map(|i| ((i * 7919) % 101) as f32 / 101.0 - 0.5)
                    .collect();
                let out = resample(&[x.clone(), x], rate, WHISPER_RATE).unwrap();
                let expected = (len as u64 * 16_000).div_ceil(u64::from(rate)) as usize;
                assert_eq!(out.len(), 2);
                assert!(
                    out[0].len().abs_diff(expected) <= 1,
                    "{rate} Hz, {len}: {}",
                    out[0].len()
                );
                assert!(out[0].iter().all(|v| v.is_finite()));
            }
        }
    }

    #[test]
    fn stereo_call_keeps_channel_order_and_mono_mix_averages() {
        let caller = sine(300.0, 8000, 0.5, 0.5);
        let hotline = sine(1200.0, 8000, 0.5, 0.25);
        let frames: Vec<Vec<f64>> = caller
            .iter()
            .zip(&hotline)
            .map(|(a, b)| vec![f64::from(*a), f64::from(*b)])
            .collect();
        let bytes = wav_bytes(spec(8000, 2, 16, SampleFormat::Int), &frames);
        let audio = decode_reader(Cursor::new(bytes), "call.wav").unwrap();
        assert_eq!(audio.source_rate, 8000);
        assert_eq!(audio.source_channels, 2);
        assert_eq!(audio.duration, Duration::from_millis(500));
        assert_eq!(audio.channels.len(), 2);
        assert_eq!(audio.frames(), 8000);
        let mid = 1000..7000;
        let a0 = tone_amplitude(&audio.channels[0][mid.clone()], 300.0, WHISPER_RATE);
        let a1 = tone_amplitude(&audio.channels[1][mid.clone()], 1200.0, WHISPER_RATE);
        assert!((a0 - 0.5).abs() < 0.01, "caller {a0}");
        assert!((a1 - 0.25).abs() < 0.01, "hotline {a1}");
        let mono = audio.mono_mix();
        assert_eq!(mono.len(), 8000);
        assert!((tone_amplitude(&mono[mid.clone()], 300.0, WHISPER_RATE) - 0.25).abs() < 0.01);
        assert!((tone_amplitude(&mono[mid], 1200.0, WHISPER_RATE) - 0.125).abs() < 0.01);
    }

    #[test]
    fn every_sample_format_decodes_to_unit_range() {
        let formats = [
            (8, SampleFormat::Int),
            (16, SampleFormat::Int),
            (24, SampleFormat::Int),
            (32, SampleFormat::Int),
            (32, SampleFormat::Float),
        ];
        // 16 kHz so no resampling blurs the values.
        let values = [0.0, 0.5, -0.5, 0.99];
        for (bits, format) in formats {
            let frames: Vec<Vec<f64>> = values.iter().map(|v| vec![*v]).collect();
            let bytes = wav_bytes(spec(16000, 1, bits, format), &frames);
            let audio = decode_reader(Cursor::new(bytes), "voicemail.wav").unwrap();
            assert_eq!(audio.channels.len(), 1);
            for (got, want) in audio.channels[0].iter().zip(values) {
                assert!(
                    (f64::from(*got) - want).abs() < 0.01,
                    "{bits}-bit {format:?}: {got} vs {want}"
                );
            }
        }
    }

    #[test]
    fn float_samples_out_of_range_are_clamped_and_nan_silenced() {
        let frames = vec![vec![2.0], vec![-3.0], vec![f64::NAN]];
        let bytes = wav_bytes(spec(16000, 1, 32, SampleFormat::Float), &frames);
        let audio = decode_reader(Cursor::new(bytes), "x.wav").unwrap();
        assert_eq!(audio.channels[0], vec![1.0, -1.0, 0.0]);
    }

    #[test]
    fn file_path_decodes_and_names_itself_in_errors() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("voicemail-17.wav");
        let frames: Vec<Vec<f64>> = (0..800).map(|_| vec![0.1]).collect();
        std::fs::write(
            &path,
            wav_bytes(spec(8000, 1, 16, SampleFormat::Int), &frames),
        )
        .unwrap();
        let audio = decode_file(&path).unwrap();
        assert_eq!(audio.frames(), 1600);
        assert_eq!(audio.duration, Duration::from_millis(100));

        let missing = dir.path().join("missing.wav");
        let err = decode_file(&missing).unwrap_err();
        assert!(matches!(err, AudioError::Io { .. }));
        assert!(err.to_string().contains("missing.wav"), "{err}");
    }

    #[test]
    fn empty_file_is_a_clear_error() {
        let err = decode_reader(Cursor::new(Vec::new()), "empty.wav").unwrap_err();
        assert!(matches!(err, AudioError::Empty { .. }), "{err:?}");
        assert!(err.to_string().contains("empty.wav"));
    }

    #[test]
    fn wav_without_samples_is_empty_audio() {
        let bytes = wav_bytes(spec(8000, 2, 16, SampleFormat::Int), &[]);
        let audio = decode_reader(Cursor::new(bytes), "hangup.wav").unwrap();
        assert!(audio.is_empty());
        assert_eq!(audio.channels, vec![Vec::<f32>::new(), Vec::new()]);
        assert_eq!(audio.duration, Duration::ZERO);
        assert!(audio.mono_mix().is_empty());
    }

    #[test]
    fn not_a_wav_is_a_clear_error() {
        let err =
            decode_reader(Cursor::new(b"ID3\x03 mp3 data here".to_vec()), "a.mp3").unwrap_err();
        assert!(matches!(err, AudioError::Wav { .. }), "{err:?}");
        assert!(err.to_string().contains("a.mp3"));
    }

    #[test]
    fn truncated_data_chunk_names_the_file_and_the_shortfall() {
        let frames: Vec<Vec<f64>> = (0..1000).map(|_| vec![0.1, -0.1]).collect();
        let mut bytes = wav_bytes(spec(8000, 2, 16, SampleFormat::Int), &frames);
        bytes.truncate(bytes.len() - 2000);
        let err = decode_reader(Cursor::new(bytes), "cut.wav").unwrap_err();
        match &err {
            AudioError::Truncated { read, expected, .. } => {
                assert_eq!(*expected, 1000);
                assert_eq!(*read, 500);
            }
            other => panic!("expected Truncated, got {other:?}"),
        }
        assert!(err.to_string().contains("cut.wav"));
    }

    /// Overwrites a field of a canonical 44-byte header.
    fn patch(bytes: &mut [u8], at: usize, value: &[u8]) {
        bytes[at..at + value.len()].copy_from_slice(value);
    }

    #[test]
    fn absurd_headers_are_refused_without_allocating() {
        let frames: Vec<Vec<f64>> = (0..100).map(|_| vec![0.0]).collect();
        let good = wav_bytes(spec(8000, 1, 16, SampleFormat::Int), &frames);
        // The canonical header: channels at 22, rate at 24, byte rate at 28, block align at 32,
        // bits at 34, data length at 40.
        assert_eq!(&good[36..40], b"data");

        // A data chunk claiming ~4 GB on a 244-byte file: ~74 h at 8 kHz mono 16-bit.
        let mut huge = good.clone();
        patch(&mut huge, 40, &0xFFFF_FFFEu32.to_le_bytes());
        let err = decode_reader(Cursor::new(huge.clone()), "huge.wav").unwrap_err();
        assert!(matches!(err, AudioError::TooLong { .. }), "{err:?}");
        assert!(err.to_string().contains("huge.wav"));

        // With a limit that admits it, the untrusted count reserves nothing big and the
        // shortfall is reported as truncation.
        let lenient = DecodeLimits {
            max_duration: Duration::from_secs(100 * 3600),
            ..DecodeLimits::default()
        };
        let err = decode_reader_with(Cursor::new(huge), "huge.wav", &lenient).unwrap_err();
        assert!(
            matches!(err, AudioError::Truncated { read: 100, .. }),
            "{err:?}"
        );

        // Rate 0 (would divide by zero) and a 1 Hz rate.
        for rate in [0u32, 1] {
            let mut bad = good.clone();
            patch(&mut bad, 24, &rate.to_le_bytes());
            let err = decode_reader(Cursor::new(bad), "rate.wav").unwrap_err();
            assert!(
                matches!(err, AudioError::Unsupported { .. } | AudioError::Wav { .. }),
                "rate {rate}: {err:?}"
            );
        }

        // 40 000 channels.
        let mut bad = good.clone();
        patch(&mut bad, 22, &40_000u16.to_le_bytes());
        assert!(decode_reader(Cursor::new(bad), "ch.wav").is_err());

        // Zero bits per sample, and 12 bits.
        for bits in [0u16, 12] {
            let mut bad = good.clone();
            patch(&mut bad, 34, &bits.to_le_bytes());
            assert!(decode_reader(Cursor::new(bad), "bits.wav").is_err());
        }

        // Every prefix of a valid file fails cleanly or decodes: never panics.
        for len in 0..good.len() {
            let _ = decode_reader(Cursor::new(good[..len].to_vec()), "prefix.wav");
        }
    }

    #[test]
    fn alaw_wav_is_unsupported_with_a_hint() {
        let frames: Vec<Vec<f64>> = (0..100).map(|_| vec![0.0]).collect();
        let mut bytes = wav_bytes(spec(8000, 1, 16, SampleFormat::Int), &frames);
        patch(&mut bytes, 20, &6u16.to_le_bytes()); // WAVE_FORMAT_ALAW
        let err = decode_reader(Cursor::new(bytes), "alaw.wav").unwrap_err();
        assert!(matches!(err, AudioError::Unsupported { .. }), "{err:?}");
        assert!(err.to_string().contains("sox"), "{err}");
    }

    #[test]
    fn long_limit_is_checked_against_the_header() {
        let frames: Vec<Vec<f64>> = (0..16000).map(|_| vec![0.0]).collect();
        let bytes = wav_bytes(spec(8000, 1, 16, SampleFormat::Int), &frames);
        let limits = DecodeLimits {
            max_duration: Duration::from_secs(1),
            ..DecodeLimits::default()
        };
        let err = decode_reader_with(Cursor::new(bytes), "two-seconds.wav", &limits).unwrap_err();
        match err {
            AudioError::TooLong { claimed, max, .. } => {
                assert_eq!(claimed, Duration::from_secs(2));
                assert_eq!(max, Duration::from_secs(1));
            }
            other => panic!("{other:?}"),
        }
    }
}
