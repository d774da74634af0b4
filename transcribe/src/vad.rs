//! Voice activity: which stretches of a channel hold speech, so whisper decodes those and not
//! the minutes of line noise, hold and silence around them (decoding silence is slow and is
//! where whisper hallucinates "谢谢观看").
//!
//! Sans-IO: [`detect`] takes samples at [`VadConfig::rate`] (16 kHz from [`crate::audio`]) and
//! returns sample ranges. Energy-based: a 30 ms frame is speech when its level is well above
//! an adaptive noise floor (the quietest frame within ±1.5 s, digital silence left out) *and* above an absolute level, so steady line or comfort noise of any level is not
//! speech. Speech runs closer than [`VadConfig::merge_gap_ms`] are joined, blips shorter than
//! [`VadConfig::min_speech_ms`] dropped, each region padded by [`VadConfig::padding_ms`] so word
//! edges survive, and regions longer than [`VadConfig::max_region_ms`] cut at their quietest
//! point so each fits one whisper window.
//!
//! Loud is not always voice: the hotline's side carries beeps and tones (the voicemail beep, a
//! tone prompt, ringback), the caller's side in-band DTMF. Their spectrum holds still from frame
//! to frame, which speech never does for long (measured on espeak Mandarin and English: no run
//! of frames above [`TONE_SIMILARITY`] longer than 30 ms; a tone: all of it), so a run of
//! [`VadConfig::min_tone_ms`] or more of such frames is not speech. whisper would otherwise hear
//! words in it, and a window starting with a beep gives its text the beep's start time.

use std::collections::VecDeque;
use std::ops::Range;

use realfft::RealFftPlanner;

/// Cosine similarity of two frames' magnitude spectra above which the sound held still.
pub const TONE_SIMILARITY: f32 = 0.98;

/// Frames quieter than this (dBFS) are digital silence (muted, on hold, the recorder's
/// padding): they say nothing about the line's noise, so the floor estimate skips them.
const DIGITAL_SILENCE_DBFS: f32 = -80.0;

/// Level given to an all-zero frame.
const SILENT_DBFS: f32 = -120.0;

/// Frames averaged (in power) when choosing where to cut a long region, so the cut lands in a
/// pause rather than in one quiet frame between syllables.
const SMOOTH_FRAMES: usize = 5;

/// Tuning of [`detect`]. Levels are RMS in dB relative to full scale (a full-scale square wave
/// is 0 dBFS, a full-scale sine −3 dBFS).
#[derive(Debug, Clone, PartialEq)]
pub struct VadConfig {
    /// Sample rate of the input, in Hz.
    pub rate: u32,
    /// Analysis frame, in milliseconds.
    pub frame_ms: u32,
    /// How far above the noise floor a frame must be to be speech, in dB.
    pub threshold_db: f32,
    /// Frames quieter than this are never speech, whatever the floor (guards quiet comfort
    /// noise next to digital silence, where the floor would be meaningless).
    pub min_level_dbfs: f32,
    /// Width of the window the noise floor is the minimum of, centred on the frame.
    pub noise_window_ms: u32,
    /// Added before and after each region so soft word onsets and endings are kept.
    pub padding_ms: u32,
    /// Speech runs separated by less than this are one region (pauses within a sentence).
    pub merge_gap_ms: u32,
    /// Regions with less speech than this (before padding) are clicks or line pops: dropped.
    pub min_speech_ms: u32,
    /// Regions longer than this are cut at their quietest frame (whisper's window is 30 s).
    pub max_region_ms: u32,
    /// A sound whose spectrum holds still this long is a tone, not speech; 0 keeps tones.
    pub min_tone_ms: u32,
}

impl Default for VadConfig {
    /// Tuned for telephone speech at 16 kHz: −50 dBFS line noise is not speech, −20 dBFS speech
    /// is, and regions fit whisper's 30 s window.
    fn default() -> Self {
        VadConfig {
            rate: 16_000,
            frame_ms: 30,
            threshold_db: 10.0,
            min_level_dbfs: -45.0,
            noise_window_ms: 3_000,
            padding_ms: 300,
            merge_gap_ms: 800,
            min_speech_ms: 150,
            max_region_ms: 28_000,
            min_tone_ms: 200,
        }
    }
}

impl VadConfig {
    fn samples(&self, ms: u32) -> usize {
        (u64::from(ms) * u64::from(self.rate) / 1000) as usize
    }

    fn frame_len(&self) -> usize {
        self.samples(self.frame_ms).max(1)
    }

    fn frames(&self, ms: u32) -> usize {
        (u64::from(ms) / u64::from(self.frame_ms.max(1))) as usize
    }
}

/// The speech regions of `samples`, as sample ranges in time order, non-overlapping, each at
/// most [`VadConfig::max_region_ms`] long (padding included) and within `0..samples.len()`.
/// Non-finite samples count as silence.
pub fn detect(samples: &[f32], config: &VadConfig) -> Vec<Range<usize>> {
    let levels = frame_levels(samples, config);
    if levels.is_empty() {
        return Vec::new();
    }
    let smoothed = smooth(&levels);
    let floor = noise_floor(&levels, config.frames(config.noise_window_ms) / 2);
    let mut speech: Vec<bool> = levels
        .iter()
        .zip(&floor)
        .map(|(&level, &floor)| {
            level > floor + config.threshold_db && level > config.min_level_dbfs
        })
        .collect();
    if config.min_tone_ms > 0 {
        let tones = steady_frames(samples, &levels, config);
        for (s, tone) in speech.iter_mut().zip(tones) {
            *s &= !tone;
        }
    }

    // Runs of speech frames, as frame ranges.
    let mut runs: Vec<Range<usize>> = Vec::new();
    for (i, &is_speech) in speech.iter().enumerate() {
        if !is_speech {
            continue;
        }
        match runs.last_mut() {
            Some(last) if last.end == i => last.end = i + 1,
            _ => runs.push(i..i + 1),
        }
    }

    let frame = config.frame_len();
    let total = samples.len();
    let to_samples = |r: &Range<usize>| (r.start * frame).min(total)..(r.end * frame).min(total);
    let runs: Vec<Range<usize>> = runs.iter().map(to_samples).collect();
    let merged = merge_close(runs, config.samples(config.merge_gap_ms));
    let min_speech = config.samples(config.min_speech_ms);
    let kept = merged.into_iter().filter(|r| r.len() >= min_speech.max(1));
    let padding = config.samples(config.padding_ms);
    let padded: Vec<Range<usize>> = kept
        .map(|r| r.start.saturating_sub(padding)..(r.end.saturating_add(padding)).min(total))
        .collect();
    let padded = merge_close(padded, 0);

    let max = config.samples(config.max_region_ms).max(2 * frame);
    let mut regions = Vec::with_capacity(padded.len());
    for region in padded {
        split_long(region, max, frame, &smoothed, &mut regions);
    }
    regions
}

/// Start and end of a sample range in milliseconds, at `rate` Hz.
pub fn range_ms(range: &Range<usize>, rate: u32) -> (u64, u64) {
    let rate = u64::from(rate.max(1));
    (
        range.start as u64 * 1000 / rate,
        range.end as u64 * 1000 / rate,
    )
}

/// RMS level of each frame in dBFS, DC removed; the last frame may be partial.
fn frame_levels(samples: &[f32], config: &VadConfig) -> Vec<f32> {
    samples
        .chunks(config.frame_len())
        .map(|chunk| {
            let finite = |v: &f32| if v.is_finite() { f64::from(*v) } else { 0.0 };
            let n = chunk.len() as f64;
            let mean = chunk.iter().map(finite).sum::<f64>() / n;
            let power = chunk
                .iter()
                .map(|v| (finite(v) - mean).powi(2))
                .sum::<f64>()
                / n;
            power_db(power)
        })
        .collect()
}

/// Which frames belong to a run of at least [`VadConfig::min_tone_ms`] whose spectrum holds
/// still: each frame's magnitude spectrum (Hann window) within [`TONE_SIMILARITY`] of the one
/// before, both frames above [`VadConfig::min_level_dbfs`] (`levels`: a quiet sound is not
/// speech anyway, and the idle pattern of a codec is as steady as a tone).
fn steady_frames(samples: &[f32], levels: &[f32], config: &VadConfig) -> Vec<bool> {
    let frame = config.frame_len();
    let n = frame.next_power_of_two();
    let fft = RealFftPlanner::<f32>::new().plan_fft_forward(n);
    let window: Vec<f32> = (0..frame)
        .map(|i| 0.5 - 0.5 * (std::f32::consts::TAU * i as f32 / frame as f32).cos())
        .collect();
    let mut input = fft.make_input_vec();
    let mut output = fft.make_output_vec();
    let mut scratch = fft.make_scratch_vec();
    // Spectra of this frame and the one before; empty when that frame was quiet (not analysed:
    // most of a channel is silence).
    let mut current: Vec<f32> = Vec::new();
    let mut previous: Vec<f32> = Vec::new();
    let mut still = Vec::with_capacity(levels.len());
    for (chunk, &level) in samples.chunks(frame).zip(levels) {
        std::mem::swap(&mut current, &mut previous);
        current.clear();
        if level > config.min_level_dbfs {
            input.fill(0.0);
            for ((x, &v), w) in input.iter_mut().zip(chunk).zip(&window) {
                *x = if v.is_finite() { v * w } else { 0.0 };
            }
            if fft
                .process_with_scratch(&mut input, &mut output, &mut scratch)
                .is_ok()
            {
                current.extend(output.iter().map(|c| c.norm()));
            }
        }
        still.push(cosine(&previous, &current) > TONE_SIMILARITY);
    }
    // A frame is steady when it matches the one before; a run of k such frames spans k + 1.
    // (`still[0]` is false: there is no frame before it; `cosine` of an empty spectrum is 0.)
    let min_frames = config.frames(config.min_tone_ms).max(2);
    let mut tone = vec![false; still.len()];
    let mut i = 0;
    while i < still.len() {
        if !still[i] {
            i += 1;
            continue;
        }
        let start = i;
        while i < still.len() && still[i] {
            i += 1;
        }
        // With the frames where the tone starts and stops, half tone and half not.
        if i - start + 1 >= min_frames {
            tone[start.saturating_sub(2)..(i + 1).min(still.len())].fill(true);
        }
    }
    tone
}

/// Cosine similarity of two spectra; 0 when either is empty or silent.
fn cosine(a: &[f32], b: &[f32]) -> f32 {
    if a.len() != b.len() || a.is_empty() {
        return 0.0;
    }
    let dot: f32 = a.iter().zip(b).map(|(x, y)| x * y).sum();
    let norm = |v: &[f32]| v.iter().map(|x| x * x).sum::<f32>().sqrt();
    let d = norm(a) * norm(b);
    if d > 0.0 { dot / d } else { 0.0 }
}

fn power_db(power: f64) -> f32 {
    if power > 0.0 {
        ((10.0 * power.log10()) as f32).max(SILENT_DBFS)
    } else {
        SILENT_DBFS
    }
}

/// Centred moving average of the levels over [`SMOOTH_FRAMES`], in the power domain.
fn smooth(levels: &[f32]) -> Vec<f32> {
    let power: Vec<f64> = levels
        .iter()
        .map(|db| 10f64.powf(f64::from(*db) / 10.0))
        .collect();
    let half = SMOOTH_FRAMES / 2;
    (0..levels.len())
        .map(|i| {
            let window = &power[i.saturating_sub(half)..(i + half + 1).min(power.len())];
            power_db(window.iter().sum::<f64>() / window.len() as f64)
        })
        .collect()
}

/// For each frame, the minimum level within `half` frames either side, skipping
/// digital silence; where a window holds nothing but digital silence the floor is
/// [`DIGITAL_SILENCE_DBFS`].
fn noise_floor(levels: &[f32], half: usize) -> Vec<f32> {
    let n = levels.len();
    let value = |j: usize| {
        let v = levels[j];
        if v < DIGITAL_SILENCE_DBFS {
            f32::INFINITY
        } else {
            v
        }
    };
    let mut floor = Vec::with_capacity(n);
    // Monotone deque of indices whose values increase: the front is the window's minimum.
    let mut deque: VecDeque<usize> = VecDeque::new();
    for j in 0..n + half {
        if j < n {
            while deque.back().is_some_and(|&b| value(b) >= value(j)) {
                deque.pop_back();
            }
            deque.push_back(j);
        }
        let Some(i) = j.checked_sub(half) else {
            continue;
        };
        if i >= n {
            break;
        }
        while deque.front().is_some_and(|&f| f + half < i) {
            deque.pop_front();
        }
        let min = deque.front().map_or(f32::INFINITY, |&f| value(f));
        floor.push(if min.is_finite() {
            min
        } else {
            DIGITAL_SILENCE_DBFS
        });
    }
    floor
}

/// Joins sorted ranges whose gap is below `gap` (or that touch or overlap).
fn merge_close(ranges: Vec<Range<usize>>, gap: usize) -> Vec<Range<usize>> {
    let mut merged: Vec<Range<usize>> = Vec::with_capacity(ranges.len());
    for r in ranges {
        match merged.last_mut() {
            Some(last) if r.start <= last.end || r.start - last.end < gap => {
                last.end = last.end.max(r.end);
            }
            _ => merged.push(r),
        }
    }
    merged
}

/// Cuts `region` into pieces of at most `max` samples, each cut at the quietest frame of the
/// latter half of the allowed span (so pieces are between `max / 2` and `max` long).
fn split_long(
    mut region: Range<usize>,
    max: usize,
    frame: usize,
    smoothed: &[f32],
    out: &mut Vec<Range<usize>>,
) {
    while region.len() > max {
        let first = (region.start + max / 2).div_ceil(frame);
        let last = (region.start + max) / frame;
        let quietest = (first..last.max(first + 1))
            .filter(|&f| f < smoothed.len())
            .min_by(|&a, &b| smoothed[a].total_cmp(&smoothed[b]));
        let cut = quietest
            .map(|f| f * frame + frame / 2)
            .filter(|&c| c > region.start && c - region.start <= max)
            .unwrap_or(region.start + max);
        out.push(region.start..cut);
        region.start = cut;
    }
    if !region.is_empty() {
        out.push(region);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::f32::consts::PI;

    const RATE: usize = 16_000;

    fn ms(ms: usize) -> usize {
        ms * RATE / 1000
    }

    /// Deterministic white noise with the given RMS level.
    fn noise(len: usize, dbfs: f32, seed: u64) -> Vec<f32> {
        let mut state = seed.wrapping_mul(6364136223846793005).wrapping_add(1);
        let rms = 10f32.powf(dbfs / 20.0);
        // Uniform in [-a, a] has RMS a / sqrt(3).
        let a = rms * 3f32.sqrt();
        (0..len)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                let u = (state >> 11) as f32 / (1u64 << 53) as f32;
                a * (2.0 * u - 1.0)
            })
            .collect()
    }

    /// A voiced-sounding burst: 150 Hz with harmonics, RMS at `dbfs`.
    fn voice(len: usize, dbfs: f32) -> Vec<f32> {
        // Syllables of 120 ms, each with its own pitch and vowel (harmonic weights), so the
        // spectrum moves as speech's does; a steady harmonic stack would be a tone.
        let syllable = ms(120);
        let raw: Vec<f32> = (0..len)
            .map(|i| {
                let t = i as f32 / RATE as f32;
                let k = i / syllable;
                let f0 = 120.0 + 15.0 * (k % 5) as f32;
                let vowel = (k * 7 + 3) % 5;
                let envelope = 0.3 + 0.7 * (PI * (i % syllable) as f32 / syllable as f32).sin();
                envelope
                    * (1..=6)
                        .map(|h| {
                            let weight = if (h + vowel).is_multiple_of(3) {
                                1.0
                            } else {
                                0.25
                            };
                            weight * (2.0 * PI * f0 * h as f32 * t).sin() / h as f32
                        })
                        .sum::<f32>()
            })
            .collect();
        let rms = (raw.iter().map(|v| v * v).sum::<f32>() / len as f32).sqrt();
        let gain = 10f32.powf(dbfs / 20.0) / rms;
        raw.into_iter().map(|v| v * gain).collect()
    }

    /// A pure tone (a beep, a tone prompt) at `hz`, `dbfs` RMS.
    fn tone(len: usize, hz: &[f32], dbfs: f32) -> Vec<f32> {
        let amplitude = 10f32.powf(dbfs / 20.0) * 2f32.sqrt() / hz.len() as f32;
        (0..len)
            .map(|i| {
                let t = i as f32 / RATE as f32;
                hz.iter()
                    .map(|f| amplitude * (2.0 * PI * f * t).sin())
                    .sum()
            })
            .collect()
    }

    /// `base` with `burst` added at `at`.
    fn add(base: &mut [f32], at: usize, burst: &[f32]) {
        for (b, s) in base[at..].iter_mut().zip(burst) {
            *b += s;
        }
    }

    fn detect_default(x: &[f32]) -> Vec<Range<usize>> {
        detect(x, &VadConfig::default())
    }

    fn assert_near(got: usize, want: usize, tolerance_ms: usize, what: &str) {
        assert!(
            got.abs_diff(want) <= ms(tolerance_ms),
            "{what}: {} ms, want {} ms",
            got * 1000 / RATE,
            want * 1000 / RATE
        );
    }

    #[test]
    fn beeps_and_dtmf_are_not_speech() {
        let mut x = noise(ms(4_000), -55.0, 3);
        add(&mut x, ms(500), &tone(ms(800), &[1_000.0], -12.0));
        add(&mut x, ms(2_500), &tone(ms(400), &[770.0, 1_336.0], -15.0));
        assert_eq!(detect_default(&x), Vec::<Range<usize>>::new());
        // Kept with the tone check off: they are loud enough.
        let config = VadConfig {
            min_tone_ms: 0,
            ..VadConfig::default()
        };
        assert_eq!(detect(&x, &config).len(), 2);
    }

    #[test]
    fn a_beep_before_speech_does_not_open_the_region() {
        // The voicemail beep, a pause, then the caller: the region starts at the voice.
        let mut x = noise(ms(5_000), -55.0, 4);
        add(&mut x, ms(200), &tone(ms(500), &[1_000.0], -10.0));
        add(&mut x, ms(1_200), &voice(ms(2_500), -20.0));
        let regions = detect_default(&x);
        assert_eq!(regions.len(), 1, "{regions:?}");
        assert_near(regions[0].start, ms(1_200 - 300), 40, "start");
        assert_near(regions[0].end, ms(3_700 + 300), 40, "end");
    }

    #[test]
    fn silence_and_empty_input_have_no_speech() {
        assert!(detect_default(&[]).is_empty());
        assert!(detect_default(&[0.0; 10]).is_empty());
        assert!(detect_default(&vec![0.0; ms(10_000)]).is_empty());
        assert!(detect_default(&vec![f32::NAN; ms(1_000)]).is_empty());
    }

    #[test]
    fn line_noise_at_minus_50_dbfs_is_not_speech() {
        assert!(detect_default(&noise(ms(20_000), -50.0, 1)).is_empty());
    }

    #[test]
    fn steady_loud_noise_is_not_speech_either() {
        // A noisy line (−30 dBFS hiss) is still noise: the floor follows it.
        assert!(detect_default(&noise(ms(20_000), -30.0, 2)).is_empty());
    }

    #[test]
    fn comfort_noise_after_digital_silence_is_not_speech() {
        // Muted for 3 s, then comfort noise at −40 dBFS: digital silence must not drag the floor
        // down and make the noise look like speech.
        let mut x = vec![0.0; ms(3_000)];
        x.extend(noise(ms(6_000), -40.0, 3));
        x.extend(vec![0.0; ms(3_000)]);
        assert!(detect_default(&x).is_empty(), "{:?}", detect_default(&x));
    }

    #[test]
    fn speech_at_minus_20_over_line_noise_is_found_and_padded() {
        let mut x = noise(ms(10_000), -50.0, 4);
        add(&mut x, ms(2_000), &voice(ms(1_000), -20.0));
        add(&mut x, ms(6_000), &voice(ms(500), -20.0));
        let regions = detect_default(&x);
        assert_eq!(regions.len(), 2, "{regions:?}");
        assert_near(regions[0].start, ms(1_700), 30, "first start");
        assert_near(regions[0].end, ms(3_300), 30, "first end");
        assert_near(regions[1].start, ms(5_700), 30, "second start");
        assert_near(regions[1].end, ms(6_800), 30, "second end");
        assert_eq!(range_ms(&regions[1], 16_000).0 / 100, 57);
    }

    #[test]
    fn speech_in_loud_background_noise_is_found() {
        let mut x = noise(ms(8_000), -32.0, 5);
        add(&mut x, ms(3_000), &voice(ms(1_500), -12.0));
        let regions = detect_default(&x);
        assert_eq!(regions.len(), 1, "{regions:?}");
        assert_near(regions[0].start, ms(2_700), 30, "start");
        assert_near(regions[0].end, ms(4_800), 30, "end");
    }

    #[test]
    fn speech_at_the_very_start_and_end_is_kept_and_clamped() {
        let mut x = voice(ms(1_000), -20.0);
        x.extend(noise(ms(4_000), -50.0, 6));
        x.extend(voice(ms(1_000), -20.0));
        let regions = detect_default(&x);
        assert_eq!(regions.len(), 2, "{regions:?}");
        assert_eq!(regions[0].start, 0);
        assert_eq!(regions[1].end, x.len());
    }

    #[test]
    fn short_pauses_merge_long_pauses_split() {
        let mut x = noise(ms(12_000), -50.0, 7);
        // Words with 500 ms pauses: one region.
        for at in [1_000, 1_900, 2_800] {
            add(&mut x, ms(at), &voice(ms(400), -20.0));
        }
        // A 1.5 s pause, then another word: a second region.
        add(&mut x, ms(4_700), &voice(ms(400), -20.0));
        let regions = detect_default(&x);
        assert_eq!(regions.len(), 2, "{regions:?}");
        assert_near(regions[0].start, ms(700), 30, "start");
        assert_near(regions[0].end, ms(3_500), 30, "end of the merged words");
        assert_near(regions[1].start, ms(4_400), 30, "second start");
    }

    #[test]
    fn clicks_are_dropped_short_words_kept() {
        let mut x = noise(ms(10_000), -50.0, 8);
        add(&mut x, ms(2_000), &voice(ms(60), -10.0)); // a line pop
        add(&mut x, ms(6_000), &voice(ms(250), -20.0)); // "对"
        let regions = detect_default(&x);
        assert_eq!(regions.len(), 1, "{regions:?}");
        assert_near(regions[0].start, ms(5_700), 30, "word start");
    }

    #[test]
    fn long_speech_is_cut_at_its_quietest_point_into_whisper_windows() {
        let mut x = noise(ms(52_000), -50.0, 9);
        // 50 s of syllables (200 ms on, 60 ms off) with one longer breath, 19.92 s to 20.5 s.
        for at in (1_000..51_000).step_by(260) {
            if !(19_800..20_300).contains(&at) {
                add(&mut x, ms(at), &voice(ms(200), -20.0));
            }
        }
        let regions = detect_default(&x);
        assert!(regions.len() >= 2, "{regions:?}");
        let max = ms(28_000);
        for r in &regions {
            assert!(r.len() <= max, "{r:?} is longer than 28 s");
        }
        for pair in regions.windows(2) {
            assert!(pair[0].end <= pair[1].start, "{regions:?} overlap");
        }
        // The first cut falls in the breath.
        let cut = regions[0].end;
        assert!(
            (ms(19_920)..=ms(20_500)).contains(&cut),
            "cut at {} ms",
            cut * 1000 / RATE
        );
        // Nothing of the speech is lost to the cuts.
        assert_near(regions[0].start, ms(700), 30, "start");
        assert_near(
            regions.last().unwrap().end,
            ms(50_920 + 200 + 300),
            30,
            "end",
        );
    }

    #[test]
    fn nonsense_config_does_not_panic() {
        let x = noise(ms(2_000), -20.0, 10);
        let config = VadConfig {
            rate: 0,
            frame_ms: 0,
            noise_window_ms: 0,
            max_region_ms: 0,
            ..VadConfig::default()
        };
        let regions = detect(&x, &config);
        for r in regions {
            assert!(r.end <= x.len() && r.start <= r.end);
        }
        assert_eq!(range_ms(&(0..16_000), 0), (0, 16_000_000));
    }

    /// A sentence spoken by espeak-ng (and band-limited to a telephone line by sox when it is
    /// installed), padded with 2 s of line noise either side: the region covers the utterance
    /// and little of the padding. Skipped when espeak-ng is missing.
    #[test]
    fn spoken_sentence_is_covered_and_padding_excluded() {
        let dir = tempfile::tempdir().unwrap();
        let spoken = dir.path().join("spoken.wav");
        let ok = std::process::Command::new("espeak-ng")
            .args(["-v", "en", "-w"])
            .arg(&spoken)
            .arg("The manhole cover on Station Road is broken, please send someone today.")
            .status()
            .is_ok_and(|s| s.success());
        if !ok {
            eprintln!("espeak-ng not available: skipping");
            return;
        }
        let telephone = dir.path().join("telephone.wav");
        let sox = std::process::Command::new("sox")
            .arg(&spoken)
            .args(["-r", "8000", "-b", "16"])
            .arg(&telephone)
            .args(["highpass", "300", "lowpass", "3400"])
            .status()
            .is_ok_and(|s| s.success());
        let source = if sox { &telephone } else { &spoken };
        let audio = crate::audio::decode_file(source).unwrap();
        let speech = audio.mono_mix();

        // Where the utterance really is: first and last sample above 3% of the peak.
        let peak = speech.iter().fold(0.0f32, |m, v| m.max(v.abs()));
        let loud = |v: &f32| v.abs() > 0.03 * peak;
        let first = speech.iter().position(loud).unwrap();
        let last = speech.iter().rposition(loud).unwrap();

        let pad = ms(2_000);
        let mut x = noise(speech.len() + 2 * pad, -50.0, 11);
        add(&mut x, pad, &speech);
        let (utt_start, utt_end) = (pad + first, pad + last + 1);

        let regions = detect_default(&x);
        assert!(!regions.is_empty());
        let covered: usize = regions.iter().map(|r| r.len()).sum();
        let start = regions[0].start;
        let end = regions.last().unwrap().end;
        eprintln!(
            "spoken sentence ({} source): utterance {}..{} ms, regions {:?} ms, {} ms of {} ms padding included",
            if sox { "8 kHz telephone" } else { "22.05 kHz" },
            utt_start * 1000 / RATE,
            utt_end * 1000 / RATE,
            regions
                .iter()
                .map(|r| range_ms(r, 16_000))
                .collect::<Vec<_>>(),
            (covered - (utt_end - utt_start).min(covered)) * 1000 / RATE,
            (x.len() - (utt_end - utt_start)) * 1000 / RATE,
        );
        // Covers the utterance, with its padding in front and behind ...
        assert!(start <= utt_start.saturating_sub(ms(150)), "starts late");
        assert!(end >= utt_end + ms(150), "ends early");
        // ... every loud sample is inside a region ...
        for (i, v) in x.iter().enumerate() {
            if v.abs() > 0.1 * peak {
                assert!(
                    regions.iter().any(|r| r.contains(&i)),
                    "sample at {i} left out"
                );
            }
        }
        // ... and the 2 s of padding either side is mostly left out.
        assert!(
            start >= utt_start - ms(400),
            "starts {} ms early",
            (utt_start - start) / 16
        );
        assert!(
            end <= utt_end + ms(400),
            "ends {} ms late",
            (end - utt_end) / 16
        );
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(48))]

        #[test]
        fn regions_are_ordered_bounded_and_fit_a_window(
            bursts in proptest::collection::vec((0usize..20_000, 1usize..40_000, -60.0f32..0.0), 0..8),
            noise_db in -90.0f32..-20.0,
            max_region_ms in 500u32..30_000,
        ) {
            let mut x = noise(ms(20_000), noise_db, 12);
            for (at, len, db) in bursts {
                let len = len.min(x.len() - ms(at));
                add(&mut x, ms(at), &voice(len, db));
            }
            let config = VadConfig { max_region_ms, ..VadConfig::default() };
            let regions = detect(&x, &config);
            for r in &regions {
                proptest::prop_assert!(r.start < r.end && r.end <= x.len());
                proptest::prop_assert!(r.len() <= ms(max_region_ms as usize).max(2 * ms(30)));
            }
            for pair in regions.windows(2) {
                proptest::prop_assert!(pair[0].end <= pair[1].start);
            }
        }
    }
}
