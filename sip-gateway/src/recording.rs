//! Stereo call recording: every answered call is written to one WAV file, 8 kHz, 16-bit PCM,
//! left channel = caller, right channel = hotline side (prompts now, the agent later).
//!
//! The media loop owns one [`CallRecorder`] per call and calls [`CallRecorder::write_frame`]
//! once per 20 ms tick. Lost or late packets are the media loop's business: it writes silence
//! for them, so the two channels stay aligned with wall-clock time and with each other.
//!
//! Crash safety: samples go straight to the file (no user-space buffer), and the WAV header is
//! rewritten after every second of audio ([`FLUSH_INTERVAL_SAMPLES`]). A crash or `kill -9`
//! mid-call therefore leaves a file that every player opens, holding the call up to its last
//! full second; [`repair`] (or [`repair_all`] at start-up) then fixes the header from the file
//! length and recovers the last second as well. What is not covered is the loss of the page
//! cache itself (power cut, kernel crash): only [`CallRecorder::finish`] forces the file to disk.
//!
//! Not here: the layout of the recordings tree beyond [`recording_path`], retention, and
//! linking a recording to a ticket.

use std::fmt::Write as _;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Sample rate of every recording, in Hz: G.711's rate, so nothing is resampled.
pub const SAMPLE_RATE: u32 = 8_000;

/// Samples per channel in one 20 ms media tick, the unit the media loop writes.
pub const FRAME_SAMPLES: usize = 160;

/// How many samples per channel may be written between two header rewrites: one second.
/// This bounds what a crash can hide from a player that does not run [`repair`].
pub const FLUSH_INTERVAL_SAMPLES: u64 = SAMPLE_RATE as u64;

/// Bytes of one 16-bit sample.
const BYTES_PER_SAMPLE: u64 = 2;

/// Largest data chunk a RIFF file can describe (its size field is 32 bits), less room for the
/// header: about 37 hours of stereo audio.
const MAX_DATA_BYTES: u64 = u32::MAX as u64 - 64;

/// Longest file name kept from a Call-ID before the hash suffix; with the suffix and `.wav` the
/// name stays far below the 255-byte limit of common file systems.
const MAX_STEM_CHARS: usize = 80;

/// Chunks scanned before the `data` chunk before [`repair`] gives up on a file.
const MAX_HEADER_CHUNKS: usize = 64;

const SPEC: hound::WavSpec = hound::WavSpec {
    channels: CALL_CHANNELS,
    sample_rate: SAMPLE_RATE,
    bits_per_sample: 16,
    sample_format: hound::SampleFormat::Int,
};

/// A call recording is stereo: caller left, hotline right.
const CALL_CHANNELS: u16 = 2;

/// What went wrong while recording or repairing a call recording; every message names the file.
#[derive(Debug, thiserror::Error)]
pub enum RecordingError {
    /// The directory for the recording could not be created.
    #[error(
        "cannot create recording directory {}: {source}; check that the recordings root exists, \
         is writable by hotline and has free space",
        dir.display()
    )]
    CreateDir {
        /// The directory that could not be created.
        dir: PathBuf,
        /// The underlying I/O error.
        source: io::Error,
    },
    /// A file already exists where the recording would go; it is never overwritten.
    #[error(
        "a recording already exists at {}; recordings are never overwritten (a re-sent INVITE or \
         a reused Call-ID must not destroy the earlier call): record this call under another name",
        path.display()
    )]
    AlreadyExists {
        /// The existing file.
        path: PathBuf,
    },
    /// The recording file could not be created.
    #[error(
        "cannot create recording {}: {source}; check permissions and free space on the \
         recordings volume",
        path.display()
    )]
    Create {
        /// The file that could not be created.
        path: PathBuf,
        /// The underlying I/O error.
        source: io::Error,
    },
    /// Writing samples or the header failed (disk full, volume gone...).
    #[error(
        "cannot write recording {}: {source}; check free space on the recordings volume — the \
         file keeps the audio written before this error (run repair on it)",
        path.display()
    )]
    Write {
        /// The recording being written.
        path: PathBuf,
        /// The error hound reported.
        source: hound::Error,
    },
    /// An earlier write failed, so the recorder refuses to append more (it would misalign the
    /// channels after a partial write).
    #[error(
        "recording {} stopped after an earlier write error; finish it, and the file keeps the \
         audio written before that error",
        path.display()
    )]
    Stopped {
        /// The recording that stopped.
        path: PathBuf,
    },
    /// The recording reached the 4 GiB size limit of a WAV file.
    #[error(
        "recording {} reached the WAV size limit of 4 GiB (about 37 hours of stereo audio); \
         finish it and continue in a new file",
        path.display()
    )]
    TooLong {
        /// The full recording.
        path: PathBuf,
    },
    /// Reading or fixing a file for repair failed at the I/O level.
    #[error("cannot read or fix {}: {source}; check that the file is readable and writable", path.display())]
    Io {
        /// The file (or directory, for [`repair_all`]) that failed.
        path: PathBuf,
        /// The underlying I/O error.
        source: io::Error,
    },
    /// The file is not a WAV file that [`repair`] understands.
    #[error(
        "{} is not a repairable WAV recording: {reason}; move it out of the recordings tree \
         (or delete it if it holds no audio)",
        path.display()
    )]
    NotWav {
        /// The offending file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
}

/// Where a call's recording goes: `root/YYYY/MM/DD/<safe Call-ID>.wav`, so a day's calls can
/// be archived or purged as one directory.
///
/// `date` is `(year, month, day)` as `jiff::civil::Date::{year, month, day}` return them (the
/// local date the call was answered). The Call-ID comes from the network, so it is made safe by
/// [`call_id_file_stem`]: the result always lies inside `root`.
pub fn recording_path(root: &Path, date: (i16, i8, i8), call_id: &str) -> PathBuf {
    let (year, month, day) = date;
    root.join(format!("{year:04}"))
        .join(format!("{month:02}"))
        .join(format!("{day:02}"))
        .join(format!("{}.wav", call_id_file_stem(call_id)))
}

/// Maps a Call-ID to a file name stem that is safe, deterministic and unique, so the web side
/// can find a call's recording from its Call-ID alone.
///
/// A Call-ID made only of `[A-Za-z0-9._-]`, not starting with `.`, and at most 80 characters
/// long is used as is. Any other is altered: each other character becomes `_`, a leading `.`
/// becomes `_`, it is cut to 80 characters, and `+` and a 64-bit FNV-1a hash of the original
/// Call-ID (16 hex digits) are appended. `+` never appears in an unaltered name, so an altered
/// name cannot collide with an unaltered one; two altered names collide only if their hashes
/// do, and then [`CallRecorder::create`] refuses to overwrite rather than lose a call.
pub fn call_id_file_stem(call_id: &str) -> String {
    let mut stem = String::with_capacity(call_id.len().min(MAX_STEM_CHARS) + 17);
    let mut altered = call_id.is_empty();
    for (index, c) in call_id.chars().enumerate() {
        if index == MAX_STEM_CHARS {
            altered = true;
            break;
        }
        let keep = c.is_ascii_alphanumeric() || c == '-' || c == '_' || (c == '.' && index > 0);
        if keep {
            stem.push(c);
        } else {
            stem.push('_');
            altered = true;
        }
    }
    if altered {
        // Writing to a String cannot fail.
        let _ = write!(stem, "+{:016x}", fnv1a64(call_id.as_bytes()));
    }
    stem
}

/// FNV-1a, 64 bits: tiny, and unlike `std`'s `DefaultHasher` guaranteed to give the same value
/// in every build, which file names need.
fn fnv1a64(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, &byte| {
        (hash ^ u64::from(byte)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// Records one call to a stereo WAV file; owned by the call's media loop.
///
/// Dropping it without [`finish`](Self::finish) still writes the final header (hound does so on
/// drop), but any error is then lost and the file is not forced to disk.
pub struct CallRecorder {
    writer: hound::WavWriter<File>,
    /// A second handle on the same file, to force it to disk in [`finish`](Self::finish).
    file: File,
    path: PathBuf,
    frames: u64,
    samples_per_channel: u64,
    since_flush: u64,
    failed: bool,
    channels: u16,
}

/// What a finished recording holds, for the call log and metrics.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordingSummary {
    /// The recording file.
    pub path: PathBuf,
    /// Number of [`CallRecorder::write_frame`] calls (20 ms ticks, for the media loop).
    pub frames: u64,
    /// Samples per channel (stereo sample frames) in the file.
    pub samples_per_channel: u64,
    /// Length of the recording.
    pub duration: Duration,
    /// Size of the file in bytes, header included (for the call record and disk-usage metrics).
    pub bytes: u64,
}

impl CallRecorder {
    /// Starts a recording at `path`, creating its parent directories. The file must not exist:
    /// a recording is never overwritten ([`RecordingError::AlreadyExists`]).
    ///
    /// The file is a valid, empty WAV as soon as this returns.
    pub fn create(path: &Path) -> Result<CallRecorder, RecordingError> {
        CallRecorder::open(path, CALL_CHANNELS)
    }

    /// The same for one side only, mono: a caller's message (voicemail) keeps the caller's
    /// samples of each [`write_frame`](Self::write_frame) and drops the hotline's.
    pub fn create_mono(path: &Path) -> Result<CallRecorder, RecordingError> {
        CallRecorder::open(path, 1)
    }

    fn open(path: &Path, channels: u16) -> Result<CallRecorder, RecordingError> {
        if let Some(dir) = path.parent().filter(|dir| !dir.as_os_str().is_empty()) {
            fs::create_dir_all(dir).map_err(|source| RecordingError::CreateDir {
                dir: dir.to_path_buf(),
                source,
            })?;
        }
        let file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(path)
            .map_err(|source| match source.kind() {
                io::ErrorKind::AlreadyExists => RecordingError::AlreadyExists {
                    path: path.to_path_buf(),
                },
                _ => RecordingError::Create {
                    path: path.to_path_buf(),
                    source,
                },
            })?;
        let sync_handle = file.try_clone().map_err(|source| RecordingError::Create {
            path: path.to_path_buf(),
            source,
        })?;
        let write_error = |source| RecordingError::Write {
            path: path.to_path_buf(),
            source,
        };
        // Unbuffered on purpose: each tick is one `write` of 640 bytes, so a killed process
        // loses nothing that `write_frame` returned from.
        let spec = hound::WavSpec { channels, ..SPEC };
        let mut writer = hound::WavWriter::new(file, spec).map_err(write_error)?;
        // hound writes zero sizes at first; make the header consistent from the start.
        writer.flush().map_err(write_error)?;
        Ok(CallRecorder {
            writer,
            file: sync_handle,
            path: path.to_path_buf(),
            frames: 0,
            samples_per_channel: 0,
            since_flush: 0,
            failed: false,
            channels,
        })
    }

    /// Appends one media tick: `caller` to the left channel, `hotline` to the right, normally
    /// 160 samples each (20 ms). If one side is shorter it is padded with silence so both
    /// channels stay aligned in time. Lost packets are not detected here: the media loop passes
    /// silence (or its concealment) for them, so the recording keeps the call's real timing.
    ///
    /// Rewrites the WAV header once per second of audio. After an error the recorder is
    /// stopped (every later call returns [`RecordingError::Stopped`]); [`finish`](Self::finish)
    /// still closes the file properly.
    pub fn write_frame(&mut self, caller: &[i16], hotline: &[i16]) -> Result<(), RecordingError> {
        if self.failed {
            return Err(RecordingError::Stopped {
                path: self.path.clone(),
            });
        }
        let len = caller.len().max(hotline.len());
        if len == 0 {
            return Ok(());
        }
        let total = self.samples_per_channel + len as u64;
        if total * BYTES_PER_SAMPLE * u64::from(self.channels) > MAX_DATA_BYTES {
            return Err(RecordingError::TooLong {
                path: self.path.clone(),
            });
        }
        // Cannot truncate: `total` is below 2^30 samples per channel after the check above.
        let mut samples = self
            .writer
            .get_i16_writer((usize::from(self.channels) * len) as u32);
        for index in 0..len {
            samples.write_sample(caller.get(index).copied().unwrap_or(0));
            if self.channels == CALL_CHANNELS {
                samples.write_sample(hotline.get(index).copied().unwrap_or(0));
            }
        }
        if let Err(source) = samples.flush() {
            self.failed = true;
            return Err(RecordingError::Write {
                path: self.path.clone(),
                source,
            });
        }
        self.frames += 1;
        self.samples_per_channel = total;
        self.since_flush += len as u64;
        if self.since_flush >= FLUSH_INTERVAL_SAMPLES {
            self.since_flush = 0;
            // hound's flush seeks back to offsets 4 and 40, rewrites the RIFF and data sizes
            // from the bytes written so far, and seeks back to the end.
            if let Err(source) = self.writer.flush() {
                self.failed = true;
                return Err(RecordingError::Write {
                    path: self.path.clone(),
                    source,
                });
            }
        }
        Ok(())
    }

    /// The recording file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Length recorded so far.
    pub fn duration(&self) -> Duration {
        samples_to_duration(self.samples_per_channel, SAMPLE_RATE)
    }

    /// Ends the recording: writes the final header and forces the file to disk (`fsync`), so a
    /// finished call survives a power cut. Blocks on the disk: call it off the media thread.
    pub fn finish(self) -> Result<RecordingSummary, RecordingError> {
        let duration = self.duration();
        self.writer
            .finalize()
            .map_err(|source| RecordingError::Write {
                path: self.path.clone(),
                source,
            })?;
        let io_error = |source| RecordingError::Write {
            path: self.path.clone(),
            source: hound::Error::IoError(source),
        };
        self.file.sync_all().map_err(io_error)?;
        let bytes = self.file.metadata().map_err(io_error)?.len();
        Ok(RecordingSummary {
            path: self.path,
            frames: self.frames,
            samples_per_channel: self.samples_per_channel,
            duration,
            bytes,
        })
    }
}

/// What [`repair`] found and did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Repair {
    /// Whether the file was modified. A good file is never modified.
    pub changed: bool,
    /// Samples per channel the file now holds.
    pub samples_per_channel: u64,
    /// Length of the audio the file now holds.
    pub duration: Duration,
    /// Bytes cut from the end of the file (a partial sample frame, or a trailing partial chunk).
    pub bytes_removed: u64,
}

/// Where the parts of a WAV file are, as far as [`repair`] needs them.
struct Layout {
    riff_size: u32,
    data_size_offset: u64,
    data_start: u64,
    declared_data: u32,
    block_align: u16,
    sample_rate: u32,
}

/// Fixes a recording left by a crash: sets the RIFF and data chunk sizes from the file's actual
/// length, cutting a trailing partial sample frame, so the file plays to its last full sample.
///
/// Assumes the data chunk is the last chunk, as [`CallRecorder`] writes it. A file whose sizes
/// already agree with its length is left untouched (not even opened for writing). Run it at
/// start-up, before any call is recorded: repairing a file that a live recorder is writing
/// races with it.
pub fn repair(path: &Path) -> Result<Repair, RecordingError> {
    let io_error = |source| RecordingError::Io {
        path: path.to_path_buf(),
        source,
    };
    let mut file = File::open(path).map_err(io_error)?;
    let len = file.metadata().map_err(io_error)?.len();
    let layout = read_layout(path, &mut file, len)?;
    drop(file);

    let block = u64::from(layout.block_align);
    let available = len - layout.data_start;
    let declared = u64::from(layout.declared_data);
    let riff_end = u64::from(layout.riff_size) + 8;
    if declared <= available && riff_end == len {
        let samples = declared / block;
        return Ok(Repair {
            changed: false,
            samples_per_channel: samples,
            duration: samples_to_duration(samples, layout.sample_rate),
            bytes_removed: 0,
        });
    }

    // The audio that is really there: everything after the data header when the file grew past
    // its header (a crash between two header rewrites) or was cut short; only the declared part
    // when the header is right and something was cut from a chunk after the data.
    let mut data = if riff_end > len && declared <= available {
        declared
    } else {
        available
    };
    let max_data = u64::from(u32::MAX) - (layout.data_start - 8);
    data = data.min(max_data);
    data -= data % block;
    if data % 2 == 1 {
        // RIFF chunks are padded to even sizes; drop one more sample frame than leave a file
        // that needs a pad byte.
        data -= block;
    }
    let new_len = layout.data_start + data;
    let new_riff = u32::try_from(new_len - 8).map_err(|_| RecordingError::NotWav {
        path: path.to_path_buf(),
        reason: "the file is larger than a WAV file can describe (4 GiB)".to_string(),
    })?;
    let new_data = u32::try_from(data).map_err(|_| RecordingError::NotWav {
        path: path.to_path_buf(),
        reason: "the data chunk is larger than a WAV file can describe (4 GiB)".to_string(),
    })?;

    let mut file = OpenOptions::new()
        .write(true)
        .open(path)
        .map_err(io_error)?;
    if new_len != len {
        file.set_len(new_len).map_err(io_error)?;
    }
    file.seek(SeekFrom::Start(4)).map_err(io_error)?;
    file.write_all(&new_riff.to_le_bytes()).map_err(io_error)?;
    file.seek(SeekFrom::Start(layout.data_size_offset))
        .map_err(io_error)?;
    file.write_all(&new_data.to_le_bytes()).map_err(io_error)?;
    file.sync_all().map_err(io_error)?;

    let samples = data / block;
    Ok(Repair {
        changed: true,
        samples_per_channel: samples,
        duration: samples_to_duration(samples, layout.sample_rate),
        bytes_removed: len - new_len,
    })
}

/// Runs [`repair`] on every `*.wav` file under `root` (recursively, not following symbolic
/// links), for start-up after a crash. Returns one result per file, sorted by path; a directory
/// that cannot be read appears with its error. A missing `root` gives an empty list (nothing
/// has been recorded yet).
pub fn repair_all(root: &Path) -> Vec<(PathBuf, Result<Repair, RecordingError>)> {
    let mut results = Vec::new();
    let mut dirs = vec![root.to_path_buf()];
    while let Some(dir) = dirs.pop() {
        let entries = match fs::read_dir(&dir) {
            Ok(entries) => entries,
            Err(source) if source.kind() == io::ErrorKind::NotFound && dir == root => continue,
            Err(source) => {
                results.push((dir.clone(), Err(RecordingError::Io { path: dir, source })));
                continue;
            }
        };
        for entry in entries {
            let entry = match entry {
                Ok(entry) => entry,
                Err(source) => {
                    let path = dir.clone();
                    results.push((dir.clone(), Err(RecordingError::Io { path, source })));
                    continue;
                }
            };
            let path = entry.path();
            let file_type = match entry.file_type() {
                Ok(file_type) => file_type,
                Err(source) => {
                    results.push((path.clone(), Err(RecordingError::Io { path, source })));
                    continue;
                }
            };
            if file_type.is_dir() {
                dirs.push(path);
            } else if file_type.is_file() && is_wav_name(&path) {
                let result = repair(&path);
                results.push((path, result));
            }
        }
    }
    results.sort_by(|a, b| a.0.cmp(&b.0));
    results
}

fn is_wav_name(path: &Path) -> bool {
    path.extension()
        .is_some_and(|ext| ext.eq_ignore_ascii_case("wav"))
}

fn samples_to_duration(samples: u64, rate: u32) -> Duration {
    let rate = u64::from(rate.max(1));
    Duration::from_secs(samples / rate)
        + Duration::from_nanos((samples % rate) * 1_000_000_000 / rate)
}

/// Reads the RIFF header and the chunk headers up to `data`, checking every offset against the
/// file length so that no input makes it read out of bounds or loop forever.
fn read_layout(path: &Path, file: &mut File, len: u64) -> Result<Layout, RecordingError> {
    let not_wav = |reason: String| RecordingError::NotWav {
        path: path.to_path_buf(),
        reason,
    };
    let io_error = |source| RecordingError::Io {
        path: path.to_path_buf(),
        source,
    };
    if len < 12 {
        return Err(not_wav(format!(
            "it is {len} bytes long, shorter than a WAV header"
        )));
    }
    let mut head = [0u8; 12];
    file.read_exact(&mut head).map_err(io_error)?;
    if &head[0..4] != b"RIFF" || &head[8..12] != b"WAVE" {
        return Err(not_wav("it does not start with RIFF....WAVE".to_string()));
    }
    let riff_size = u32::from_le_bytes([head[4], head[5], head[6], head[7]]);

    let mut pos = 12u64;
    let mut format: Option<(u16, u32)> = None;
    for _ in 0..MAX_HEADER_CHUNKS {
        if pos + 8 > len {
            return Err(not_wav(format!(
                "the header stops after {len} bytes, before any audio; the recorder died while \
                 creating the file, so there is nothing to recover"
            )));
        }
        let mut chunk = [0u8; 8];
        file.seek(SeekFrom::Start(pos)).map_err(io_error)?;
        file.read_exact(&mut chunk).map_err(io_error)?;
        let size = u64::from(u32::from_le_bytes([chunk[4], chunk[5], chunk[6], chunk[7]]));
        let body = pos + 8;
        match &chunk[0..4] {
            b"data" => {
                let Some((block_align, sample_rate)) = format else {
                    return Err(not_wav(
                        "its data chunk comes before its fmt chunk".to_string(),
                    ));
                };
                return Ok(Layout {
                    riff_size,
                    data_size_offset: pos + 4,
                    data_start: body,
                    declared_data: size as u32,
                    block_align,
                    sample_rate,
                });
            }
            b"fmt " => {
                if size < 16 || body + 16 > len {
                    return Err(not_wav("its fmt chunk is cut short".to_string()));
                }
                let mut fmt = [0u8; 16];
                file.read_exact(&mut fmt).map_err(io_error)?;
                let channels = u16::from_le_bytes([fmt[2], fmt[3]]);
                let sample_rate = u32::from_le_bytes([fmt[4], fmt[5], fmt[6], fmt[7]]);
                let block_align = u16::from_le_bytes([fmt[12], fmt[13]]);
                if channels == 0 || sample_rate == 0 || block_align == 0 {
                    return Err(not_wav(format!(
                        "its fmt chunk is invalid ({channels} channels, {sample_rate} Hz, \
                         {block_align} bytes per sample frame)"
                    )));
                }
                format = Some((block_align, sample_rate));
            }
            _ => {}
        }
        pos = body + size + (size & 1);
    }
    Err(not_wav(format!(
        "no data chunk among its first {MAX_HEADER_CHUNKS} chunks"
    )))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{BufRead, BufReader};
    use std::time::Instant;

    fn tone(frame: usize, hz: f64, amplitude: f64) -> Vec<i16> {
        (0..FRAME_SAMPLES)
            .map(|i| {
                let t = (frame * FRAME_SAMPLES + i) as f64 / f64::from(SAMPLE_RATE);
                (amplitude * (2.0 * std::f64::consts::PI * hz * t).sin()).round() as i16
            })
            .collect()
    }

    /// A recognisable, frame-dependent left channel and a different right channel.
    fn caller_frame(frame: usize) -> Vec<i16> {
        tone(frame, 440.0, 8000.0)
    }

    fn hotline_frame(frame: usize) -> Vec<i16> {
        (0..FRAME_SAMPLES).map(|i| (frame * 7 + i) as i16).collect()
    }

    fn read_channels(path: &Path) -> (Vec<i16>, Vec<i16>) {
        let mut reader = hound::WavReader::open(path).expect("recording opens");
        assert_eq!(reader.spec(), SPEC);
        let samples: Vec<i16> = reader.samples::<i16>().map(|s| s.unwrap()).collect();
        let left = samples.iter().step_by(2).copied().collect();
        let right = samples.iter().skip(1).step_by(2).copied().collect();
        (left, right)
    }

    fn record(path: &Path, frames: usize) -> CallRecorder {
        let mut recorder = CallRecorder::create(path).unwrap();
        for frame in 0..frames {
            recorder
                .write_frame(&caller_frame(frame), &hotline_frame(frame))
                .unwrap();
        }
        recorder
    }

    fn expected(frames: usize) -> (Vec<i16>, Vec<i16>) {
        (
            (0..frames).flat_map(caller_frame).collect(),
            (0..frames).flat_map(hotline_frame).collect(),
        )
    }

    #[test]
    fn three_seconds_of_call_are_three_seconds_of_stereo() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("2024/05/06/call.wav");
        let mut recorder = CallRecorder::create(&path).unwrap();
        for frame in 0..150 {
            recorder
                .write_frame(&caller_frame(frame), &[0; FRAME_SAMPLES])
                .unwrap();
        }
        let summary = recorder.finish().unwrap();
        assert_eq!(
            summary,
            RecordingSummary {
                path: path.clone(),
                frames: 150,
                samples_per_channel: 24_000,
                duration: Duration::from_secs(3),
                bytes: 44 + 24_000 * 4,
            }
        );
        let reader = hound::WavReader::open(&path).unwrap();
        assert_eq!(reader.duration(), 24_000);
        let (left, right) = read_channels(&path);
        assert_eq!(left, expected(150).0, "caller on the left, as written");
        assert!(
            right.iter().all(|&s| s == 0),
            "silent hotline side on the right"
        );
    }

    #[test]
    fn shorter_side_is_padded_with_silence() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("pad.wav");
        let mut recorder = CallRecorder::create(&path).unwrap();
        recorder.write_frame(&[1; 160], &[2; 100]).unwrap();
        recorder.write_frame(&[3; 50], &[4; 160]).unwrap();
        recorder.write_frame(&[], &[]).unwrap();
        let summary = recorder.finish().unwrap();
        assert_eq!(summary.samples_per_channel, 320);
        assert_eq!(summary.frames, 2, "an empty tick writes nothing");
        let (left, right) = read_channels(&path);
        let want_left: Vec<i16> = [vec![1; 160], vec![3; 50], vec![0; 110]].concat();
        let want_right: Vec<i16> = [vec![2; 100], vec![0; 60], vec![4; 160]].concat();
        assert_eq!(left, want_left);
        assert_eq!(right, want_right);
    }

    #[test]
    fn crash_keeps_the_last_full_second_and_repair_recovers_the_rest() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("crash.wav");
        // 2.5 s: the header was last rewritten at 2.0 s; then the process "dies" without
        // running any destructor.
        std::mem::forget(record(&path, 125));

        let reader = hound::WavReader::open(&path).expect("crashed recording still opens");
        assert_eq!(
            reader.duration(),
            16_000,
            "plays up to the last header rewrite"
        );
        let (left, _) = read_channels(&path);
        assert_eq!(left, expected(100).0);

        let repair = repair(&path).unwrap();
        assert_eq!(
            repair,
            Repair {
                changed: true,
                samples_per_channel: 20_000,
                duration: Duration::from_millis(2500),
                bytes_removed: 0,
            }
        );
        assert_eq!(read_channels(&path), expected(125));
        assert!(
            !super::repair(&path).unwrap().changed,
            "a repaired file is a good file"
        );
    }

    #[test]
    fn snapshot_taken_mid_call_is_repairable() {
        // Copying the bytes of a live recording is what a crash leaves behind, without leaking.
        let dir = tempfile::tempdir().unwrap();
        let live = dir.path().join("live.wav");
        let recorder = record(&live, 130);
        let snapshot = dir.path().join("snapshot.wav");
        fs::copy(&live, &snapshot).unwrap();
        recorder.finish().unwrap();

        assert_eq!(
            hound::WavReader::open(&snapshot).unwrap().duration(),
            16_000
        );
        assert_eq!(repair(&snapshot).unwrap().samples_per_channel, 130 * 160);
        assert_eq!(read_channels(&snapshot), expected(130));
    }

    /// Not a test on its own: the child process of `killed_recorder_leaves_a_playable_file`.
    #[test]
    fn killed_recorder_child() {
        let Some(path) = std::env::var_os("HOTLINE_RECORDER_KILL_CHILD") else {
            return;
        };
        let _recorder = record(Path::new(&path), 125);
        println!("RECORDER-READY");
        // Wait to be killed; if the parent goes away first, stdin closes and this returns.
        let _ = io::stdin().read_line(&mut String::new());
    }

    #[test]
    fn killed_recorder_leaves_a_playable_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("killed.wav");
        let module = module_path!().split_once("::").map_or("", |(_, rest)| rest);
        let mut child = std::process::Command::new(std::env::current_exe().unwrap())
            .args([
                &format!("{module}::killed_recorder_child"),
                "--exact",
                "--nocapture",
            ])
            .env("HOTLINE_RECORDER_KILL_CHILD", &path)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let stdout = BufReader::new(child.stdout.take().unwrap());
        let ready = stdout
            .lines()
            .map_while(Result::ok)
            .any(|line| line.contains("RECORDER-READY"));
        child.kill().unwrap(); // SIGKILL on Unix: no destructor, no final header.
        child.wait().unwrap();
        assert!(ready, "the child process never reported that it recorded");

        assert_eq!(hound::WavReader::open(&path).unwrap().duration(), 16_000);
        assert!(repair(&path).unwrap().changed);
        assert_eq!(read_channels(&path), expected(125));
    }

    #[test]
    fn file_cut_inside_a_sample_is_repaired_to_the_last_full_frame() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cut.wav");
        record(&path, 60).finish().unwrap();
        let header = 44;
        for (cut, removed) in [(1000 * 4 + 3, 3), (999 * 4 + 1, 1), (998 * 4 + 2, 2)] {
            let copy = dir.path().join(format!("cut-{cut}.wav"));
            fs::copy(&path, &copy).unwrap();
            OpenOptions::new()
                .write(true)
                .open(&copy)
                .unwrap()
                .set_len(header + cut)
                .unwrap();
            let repair = repair(&copy).unwrap();
            assert!(repair.changed);
            assert_eq!(repair.bytes_removed, removed);
            assert_eq!(repair.samples_per_channel, cut / 4);
            assert_eq!(fs::metadata(&copy).unwrap().len(), header + cut / 4 * 4);
            let (left, right) = read_channels(&copy);
            let (want_left, want_right) = expected(60);
            assert_eq!(left, want_left[..(cut / 4) as usize]);
            assert_eq!(right, want_right[..(cut / 4) as usize]);
        }
    }

    #[test]
    fn good_file_is_not_touched() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("good.wav");
        record(&path, 75).finish().unwrap();
        let before = fs::read(&path).unwrap();
        let modified = fs::metadata(&path).unwrap().modified().unwrap();
        let repair = repair(&path).unwrap();
        assert_eq!(
            repair,
            Repair {
                changed: false,
                samples_per_channel: 12_000,
                duration: Duration::from_millis(1500),
                bytes_removed: 0,
            }
        );
        assert_eq!(fs::read(&path).unwrap(), before);
        assert_eq!(fs::metadata(&path).unwrap().modified().unwrap(), modified);
    }

    #[test]
    fn recording_crashed_before_its_first_second_is_repaired() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("short.wav");
        std::mem::forget(record(&path, 10));
        assert_eq!(hound::WavReader::open(&path).unwrap().duration(), 0);
        assert_eq!(repair(&path).unwrap().samples_per_channel, 1600);
    }

    #[test]
    fn garbage_is_a_clear_error_and_never_a_panic() {
        let dir = tempfile::tempdir().unwrap();
        let mut noise = Vec::new();
        let mut state = 0x2545_f491_4f6c_dd1du64;
        for _ in 0..1000 {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            noise.push(state as u8);
        }
        let good = dir.path().join("good.wav");
        record(&good, 3).finish().unwrap();
        let good_bytes = fs::read(&good).unwrap();
        for (name, bytes) in [
            ("empty.wav", Vec::new()),
            ("tiny.wav", b"RIFF".to_vec()),
            ("noise.wav", noise),
            (
                "text.wav",
                b"this is not audio, it is a note someone saved as .wav\n".to_vec(),
            ),
            ("header-cut.wav", good_bytes[..30].to_vec()),
        ] {
            let path = dir.path().join(name);
            fs::write(&path, &bytes).unwrap();
            let error = repair(&path).expect_err(name);
            assert!(
                matches!(error, RecordingError::NotWav { .. }),
                "{name}: {error}"
            );
            assert!(
                error.to_string().contains(name),
                "message names the file: {error}"
            );
            assert_eq!(fs::read(&path).unwrap(), bytes, "{name} left as it was");
        }
        assert!(matches!(
            repair(&dir.path().join("missing.wav")),
            Err(RecordingError::Io { .. })
        ));

        // Every header byte set to hostile values, and every truncation of the header: an
        // error or a repair, never a panic.
        let mutant = dir.path().join("mutant.wav");
        for index in 0..44 {
            for value in [0x00, 0x80, 0xff] {
                let mut bytes = good_bytes.clone();
                bytes[index] = value;
                fs::write(&mutant, &bytes).unwrap();
                let _ = repair(&mutant);
            }
        }
        for len in 0..=52 {
            fs::write(&mutant, &good_bytes[..len]).unwrap();
            let _ = repair(&mutant);
        }
    }

    #[test]
    fn repair_all_walks_the_recordings_tree() {
        let dir = tempfile::tempdir().unwrap();
        let day = dir.path().join("2024/05/06");
        std::mem::forget(record(&day.join("crashed.wav"), 60));
        record(&day.join("good.wav"), 10).finish().unwrap();
        fs::write(day.join("broken.WAV"), b"nope").unwrap();
        fs::write(day.join("notes.txt"), b"not a recording").unwrap();

        let results = repair_all(dir.path());
        let summary: Vec<(String, Option<bool>)> = results
            .iter()
            .map(|(path, result)| {
                let name = path.file_name().unwrap().to_string_lossy().into_owned();
                (name, result.as_ref().ok().map(|repair| repair.changed))
            })
            .collect();
        assert_eq!(
            summary,
            [
                ("broken.WAV".to_string(), None),
                ("crashed.wav".to_string(), Some(true)),
                ("good.wav".to_string(), Some(false)),
            ]
        );
        assert_eq!(fs::read(day.join("notes.txt")).unwrap(), b"not a recording");
        assert!(repair_all(&dir.path().join("no-such-root")).is_empty());
    }

    #[test]
    fn an_existing_recording_is_never_overwritten() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("once.wav");
        record(&path, 5).finish().unwrap();
        let before = fs::read(&path).unwrap();
        let error = CallRecorder::create(&path).err().unwrap();
        assert!(
            matches!(error, RecordingError::AlreadyExists { .. }),
            "{error}"
        );
        assert!(error.to_string().contains("once.wav"));
        assert_eq!(fs::read(&path).unwrap(), before);
    }

    #[test]
    fn hostile_call_ids_stay_inside_the_day_directory() {
        let root = Path::new("/srv/recordings");
        let day = root.join("2024/05/06");
        let long = "x".repeat(500);
        let ids = [
            "../../etc/passwd",
            "a/b@c",
            long.as_str(),
            "",
            ".",
            "..",
            ".hidden",
            "a b",
            "C:\\Windows\\x",
            "呼叫@例子",
            "a84b4c76e66710@pc33.atlanta.example.com",
            "a_b",
            "a/b",
            "a\\b",
        ];
        let mut names = std::collections::HashSet::new();
        for id in ids {
            let path = recording_path(root, (2024, 5, 6), id);
            assert_eq!(
                path,
                recording_path(root, (2024, 5, 6), id),
                "deterministic"
            );
            assert_eq!(
                path.parent(),
                Some(day.as_path()),
                "{id:?} -> {}",
                path.display()
            );
            let name = path.file_name().unwrap().to_str().unwrap();
            assert!(name.len() <= 120, "{id:?} -> {name}");
            assert!(!name.starts_with('.'), "{id:?} -> {name}");
            assert!(
                name.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"._-+".contains(&b)),
                "{id:?} -> {name}"
            );
            assert!(names.insert(name.to_string()), "{id:?} collides: {name}");
        }
        assert_eq!(
            call_id_file_stem("a84b4c76e66710.pc33-atlanta_x"),
            "a84b4c76e66710.pc33-atlanta_x"
        );
        assert_eq!(
            call_id_file_stem("../../etc/passwd"),
            format!("_._.._etc_passwd+{:016x}", fnv1a64(b"../../etc/passwd"))
        );
        // Same first 80 characters, different tails: still different files.
        assert_ne!(
            call_id_file_stem(&"y".repeat(300)),
            call_id_file_stem(&"y".repeat(301))
        );
    }

    /// Cost of the media loop's per-tick recording work. Run with
    /// `cargo test --release -- --ignored --nocapture write_frame_cost`.
    #[test]
    #[ignore = "benchmark; run explicitly in release mode"]
    fn write_frame_cost() {
        let dir = tempfile::tempdir().unwrap();
        let caller = caller_frame(0);
        let hotline = hotline_frame(0);

        // One recorder, 10 minutes of audio.
        let frames = 30_000;
        let mut recorder = CallRecorder::create(&dir.path().join("one.wav")).unwrap();
        let start = Instant::now();
        for _ in 0..frames {
            recorder.write_frame(&caller, &hotline).unwrap();
        }
        let one = start.elapsed();
        let start = Instant::now();
        recorder.finish().unwrap();
        let finish = start.elapsed();
        println!(
            "1 recorder: {frames} frames in {one:?} = {:.2} us/frame (incl. a header rewrite per \
             50 frames); finish (finalize + fsync of 19 MB) {finish:?}",
            one.as_secs_f64() * 1e6 / f64::from(frames)
        );

        // 1,000 concurrent recorders, interleaved tick by tick as the media loop would, 5 s each.
        let calls = 1000;
        let ticks = 250;
        let mut recorders: Vec<CallRecorder> = (0..calls)
            .map(|i| CallRecorder::create(&dir.path().join(format!("c{i}.wav"))).unwrap())
            .collect();
        let start = Instant::now();
        for _ in 0..ticks {
            for recorder in &mut recorders {
                recorder.write_frame(&caller, &hotline).unwrap();
            }
        }
        let all = start.elapsed();
        let per_frame = all.as_secs_f64() / f64::from(calls * ticks);
        println!(
            "{calls} recorders x {ticks} ticks in {all:?} = {:.2} us/frame; one 20 ms tick of \
             {calls} calls costs {:.2} ms = {:.1}% of one core",
            per_frame * 1e6,
            per_frame * f64::from(calls) * 1e3,
            per_frame * f64::from(calls) / 0.020 * 100.0
        );
        for recorder in recorders {
            drop(recorder);
        }
    }
}
