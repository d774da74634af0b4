//! The whisper engine: one loaded model ([`Engine`]) shared by every worker thread, and the
//! decoding of one channel's speech into timed text ([`Engine::transcribe_speech`]).
//!
//! Whisper always encodes a 30-second window, however little of it is speech, so the speech
//! regions found by voice activity are packed into windows of up to [`MAX_WINDOW_MS`] with a short
//! pause between them ([`pack`]), each window is decoded once, and the segment times whisper gives
//! inside a window are mapped back to the recording's clock. A call with a dozen short turns
//! therefore costs a few encoder passes, not a dozen, and silence costs nothing.
//!
//! Three more things keep a window cheap and its text honest:
//! - the encoder runs over the window's length ([`audio_ctx`]), not always 30 s: a four-second
//!   turn costs a fifth of a full pass;
//! - the decoder may write at most [`text_token_budget`] tokens for a window, a generous bound on
//!   what a person can say in that time, so a decoder stuck in a loop stops early instead of
//!   running to 220 tokens at every fallback temperature;
//! - a segment that merely recites the initial prompt ([`is_prompt_echo`]) is dropped: on
//!   unclear audio whisper tends to repeat what it was told came before.

use std::ops::Range;
use std::path::{Path, PathBuf};

use whisper_rs::{FullParams, SamplingStrategy, WhisperContext, WhisperContextParameters};

/// Samples per second of the audio the engine takes (whisper's rate).
pub const RATE: usize = 16_000;

/// Longest window decoded at once, in milliseconds: whisper's 30 s less a margin, so a packed
/// window never spills into a second encoder pass.
pub const MAX_WINDOW_MS: u64 = 28_000;

/// Pause put between two packed speech regions, in milliseconds: long enough for whisper to end
/// a segment there, short enough not to waste the window.
pub const PACK_GAP_MS: u64 = 400;

/// Fewest encoder frames (20 ms each) a window is encoded with: much shorter contexts make
/// whisper, trained on 30 s windows, lose its place.
pub const MIN_AUDIO_CTX: usize = 256;

/// Encoder frames of a full 30 s window (whisper's `n_audio_ctx`).
pub const FULL_AUDIO_CTX: usize = 1500;

/// Tokens per second of window the decoder may write ([`text_token_budget`]): fast Mandarin is
/// about 5 characters a second, roughly one token each, plus timestamps; this leaves twice that.
pub const TOKENS_PER_SECOND: usize = 12;

/// Tokens any window may write, however short (timestamps and a short sentence).
pub const MIN_TOKENS: usize = 16;

/// Temperature step of the fallback: 0.0, then 0.4 and 0.8 (whisper's 0.2 doubles the retries
/// for little gain on telephone speech).
pub const FALLBACK_STEP: f32 = 0.4;

/// Average log-probability under which a window's text is retried at a higher temperature.
pub const FALLBACK_LOGPROB: f32 = -1.0;

/// Compression threshold (whisper.cpp's entropy) under which the text is taken for a loop.
pub const FALLBACK_ENTROPY: f32 = 2.4;

/// A segment whisper thinks is this likely not speech, and is short, is dropped.
pub const NO_SPEECH: f32 = 0.8;

/// The default [`DecodeOptions::no_repeat_ngram`].
pub const NO_REPEAT_NGRAM: usize = 0;

/// Units (Chinese characters or words) a segment needs before it can be taken for an echo of
/// the prompt: a caller saying just "井盖" is speech, not an echo.
pub const ECHO_MIN_UNITS: usize = 6;

/// What can go wrong loading a model or decoding.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// The model file is missing or whisper.cpp refused it.
    #[error("cannot load the whisper model {path}: {reason}")]
    Load {
        /// The file.
        path: PathBuf,
        /// whisper.cpp's or the file system's answer.
        reason: String,
    },
    /// whisper.cpp failed while decoding.
    #[error("whisper failed: {0}")]
    Decode(#[from] whisper_rs::WhisperError),
    /// A language code whisper does not know.
    #[error("unknown language {0:?} (use a code such as zh, en, or auto)")]
    Language(String),
}

/// Which language to decode in.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Language {
    /// A known language code (`zh`, `en`, ...).
    Code(String),
    /// Let whisper detect it per window.
    Auto,
}

impl Language {
    /// Parses `zh`, `en`, `auto`... checking the code against whisper's list.
    pub fn parse(s: &str) -> Result<Language, EngineError> {
        let s = s.trim().to_ascii_lowercase();
        if s == "auto" {
            return Ok(Language::Auto);
        }
        match whisper_rs::get_lang_id(&s) {
            Some(_) => Ok(Language::Code(s)),
            None => Err(EngineError::Language(s)),
        }
    }

    /// The code, or `auto`.
    pub fn as_str(&self) -> &str {
        match self {
            Language::Code(c) => c,
            Language::Auto => "auto",
        }
    }
}

/// How to search for the best text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Search {
    /// Take the most likely token each step (fastest).
    Greedy,
    /// Keep this many hypotheses (slower, fewer errors on hard audio).
    Beam(u8),
}

/// Decoding settings for one transcription.
#[derive(Debug, Clone)]
pub struct DecodeOptions {
    /// The language spoken.
    pub language: Language,
    /// CPU threads whisper may use.
    pub threads: u16,
    /// Greedy or beam search.
    pub search: Search,
    /// Retry a window at higher temperatures when the text looks like a loop or is improbable
    /// (whisper's temperature fallback).
    pub temperature_fallback: bool,
    /// Text given to the decoder as if it came before: sets the script (simplified Chinese) and
    /// the vocabulary of the domain. Without one, Chinese gets [`SIMPLIFIED_CHINESE_PROMPT`].
    pub prompt: Option<String>,
    /// A run of this many text tokens may not come twice in one window (0: no limit): the
    /// decoder is kept from starting a loop rather than cut off inside one.
    pub no_repeat_ngram: usize,
}

impl DecodeOptions {
    /// The prompt the decoder is given: the one set, or for Chinese the simplified-script
    /// sentence (whisper writes traditional characters without it).
    pub fn effective_prompt(&self) -> Option<&str> {
        match self.prompt.as_deref() {
            Some(p) if !p.trim().is_empty() => Some(p),
            _ if self.language == Language::Code("zh".into()) => Some(SIMPLIFIED_CHINESE_PROMPT),
            _ => None,
        }
    }
}

impl Default for DecodeOptions {
    fn default() -> DecodeOptions {
        DecodeOptions {
            language: Language::Code("zh".into()),
            threads: 2,
            search: Search::Beam(5),
            temperature_fallback: true,
            prompt: None,
            no_repeat_ngram: NO_REPEAT_NGRAM,
        }
    }
}

/// The prompt that makes whisper write simplified Chinese: without one it tends to traditional
/// characters.
pub const SIMPLIFIED_CHINESE_PROMPT: &str = "以下是普通话的句子。";

/// Builds the initial prompt: the simplified-Chinese sentence, then the domain words (category
/// names, local place names) so whisper prefers 井盖 to 景概. Words are deduplicated and the
/// prompt kept short: whisper gives a prompt at most half its 448-token context, and a long list
/// of words invites the decoder to recite it.
pub fn domain_prompt<'a>(language: &Language, words: impl IntoIterator<Item = &'a str>) -> String {
    const MAX_CHARS: usize = 120;
    let mut seen = std::collections::BTreeSet::new();
    let mut list = String::new();
    for w in words {
        let w = w.trim();
        if w.is_empty() || !seen.insert(w.to_string()) {
            continue;
        }
        if list.chars().count() + w.chars().count() + 1 > MAX_CHARS {
            break;
        }
        if !list.is_empty() {
            list.push('、');
        }
        list.push_str(w);
    }
    let english = matches!(language, Language::Code(c) if c == "en");
    match (english, list.is_empty()) {
        (true, true) => String::new(),
        (true, false) => format!("A call to the city service hotline about {list}."),
        (false, true) => SIMPLIFIED_CHINESE_PROMPT.to_string(),
        (false, false) => format!("以下是普通话的句子，是市民打给城市管理热线的电话，说到{list}。"),
    }
}

/// One piece of decoded text on the recording's clock.
#[derive(Debug, Clone, PartialEq)]
pub struct TimedText {
    /// Start, in milliseconds from the start of the recording.
    pub start_ms: u64,
    /// End, in milliseconds.
    pub end_ms: u64,
    /// The text, trimmed.
    pub text: String,
}

/// What one channel gave.
#[derive(Debug, Clone, PartialEq)]
pub struct ChannelText {
    /// Segments in time order.
    pub segments: Vec<TimedText>,
    /// The language decoded in (detected when asked for `auto`).
    pub language: String,
}

/// A loaded whisper model. Loading takes a moment and the weights are read-only, so one engine
/// is shared (`Arc`) by all workers; each decode makes its own state.
pub struct Engine {
    ctx: WhisperContext,
    path: PathBuf,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine").field("path", &self.path).finish()
    }
}

impl Engine {
    /// Loads a ggml model file (as written by `hotline model import`).
    pub fn load(path: &Path) -> Result<Engine, EngineError> {
        if !path.is_file() {
            return Err(EngineError::Load {
                path: path.to_path_buf(),
                reason: "no such file".into(),
            });
        }
        whisper_rs::install_logging_hooks();
        let ctx = WhisperContext::new_with_params(path, WhisperContextParameters::default())
            .map_err(|e| EngineError::Load {
                path: path.to_path_buf(),
                reason: e.to_string(),
            })?;
        Ok(Engine {
            ctx,
            path: path.to_path_buf(),
        })
    }

    /// The model file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Decodes the `speech` regions (sample ranges at [`RATE`]) of one channel's `samples`.
    /// Regions longer than a window are cut into window-sized pieces; the caller's voice activity
    /// should already have split them at pauses.
    pub fn transcribe_speech(
        &self,
        samples: &[f32],
        speech: &[Range<usize>],
        options: &DecodeOptions,
    ) -> Result<ChannelText, EngineError> {
        let mut state = self.ctx.create_state()?;
        let mut segments = Vec::new();
        let mut language = options.language.as_str().to_string();
        let prompt = options.effective_prompt();
        for window in pack(speech, samples.len()) {
            let audio = window.assemble(samples);
            if audio.is_empty() {
                continue;
            }
            let mut budget = TokenBudget {
                max: text_token_budget(audio.len()),
                no_repeat: options.no_repeat_ngram,
            };
            let mut params = full_params(options, prompt);
            params.set_audio_ctx(audio_ctx(audio.len()) as i32);
            // SAFETY: `limit_tokens` only writes the `n_vocab` logits whisper.cpp hands it and
            // reads `budget`, which lives on this stack frame until `full` has returned.
            unsafe {
                params.set_filter_logits_callback(Some(limit_tokens));
                params.set_filter_logits_callback_user_data(
                    (&raw mut budget).cast::<std::ffi::c_void>(),
                );
            }
            state.full(params, &audio)?;
            if options.language == Language::Auto {
                let id = state.full_lang_id_from_state();
                if let Some(code) = whisper_rs::get_lang_str(id) {
                    language = code.to_string();
                }
            }
            for segment in state.as_iter() {
                // A text cut by the token budget may end inside a character: drop the pieces.
                let text = segment.to_str_lossy()?.replace('\u{FFFD}', "");
                let text = collapse_repeats(text.trim());
                if text.is_empty()
                    || segment.no_speech_probability() > NO_SPEECH && text.len() < 12
                    || prompt.is_some_and(|p| is_prompt_echo(&text, p))
                {
                    continue;
                }
                let t0 = segment.start_timestamp().max(0) as u64 * 10;
                let t1 = segment.end_timestamp().max(0) as u64 * 10;
                let (start_ms, end_ms) = window.to_source_ms(t0, t1.max(t0));
                segments.push(TimedText {
                    start_ms,
                    end_ms,
                    text,
                });
            }
        }
        Ok(ChannelText { segments, language })
    }
}

/// The encoder context for a window of `samples` at [`RATE`]: its length in 20 ms frames plus a
/// second of margin, at least [`MIN_AUDIO_CTX`], at most [`FULL_AUDIO_CTX`].
pub fn audio_ctx(samples: usize) -> usize {
    let frames = samples.div_ceil(RATE / 50) + 50;
    frames.clamp(MIN_AUDIO_CTX, FULL_AUDIO_CTX)
}

/// The most tokens the decoder may write for a window of `samples` at [`RATE`].
pub fn text_token_budget(samples: usize) -> usize {
    MIN_TOKENS + samples * TOKENS_PER_SECOND / RATE
}

/// What the logits filter needs: the window's token budget and the n-gram no text may repeat.
struct TokenBudget {
    max: usize,
    no_repeat: usize,
}

/// whisper.cpp's logits filter. Once the sequence has used its budget only end-of-text may
/// follow, so a repetition loop ends where a person would have stopped talking; before that,
/// no token may complete a run of text tokens already written ([`repeat_completions`]).
unsafe extern "C" fn limit_tokens(
    ctx: *mut whisper_rs::whisper_rs_sys::whisper_context,
    _state: *mut whisper_rs::whisper_rs_sys::whisper_state,
    tokens: *const whisper_rs::whisper_rs_sys::whisper_token_data,
    n_tokens: std::ffi::c_int,
    logits: *mut f32,
    user_data: *mut std::ffi::c_void,
) {
    if ctx.is_null() || logits.is_null() || user_data.is_null() {
        return;
    }
    let n_tokens = usize::try_from(n_tokens).unwrap_or(0);
    // SAFETY: `user_data` is the `TokenBudget` set next to this callback; `logits` holds
    // `whisper_n_vocab(ctx)` floats for the token being sampled and `tokens` the `n_tokens`
    // tokens of the sequence so far.
    unsafe {
        let budget = &*user_data.cast::<TokenBudget>();
        let n_vocab =
            usize::try_from(whisper_rs::whisper_rs_sys::whisper_n_vocab(ctx)).unwrap_or(0);
        let eot = whisper_rs::whisper_rs_sys::whisper_token_eot(ctx);
        let Ok(eot_index) = usize::try_from(eot) else {
            return;
        };
        if eot_index >= n_vocab {
            return;
        }
        let logits = std::slice::from_raw_parts_mut(logits, n_vocab);
        if n_tokens >= budget.max {
            for (i, l) in logits.iter_mut().enumerate() {
                if i != eot_index {
                    *l = f32::NEG_INFINITY;
                }
            }
            return;
        }
        if budget.no_repeat < 2 || tokens.is_null() || n_tokens < budget.no_repeat {
            return;
        }
        let text: Vec<i32> = std::slice::from_raw_parts(tokens, n_tokens)
            .iter()
            .map(|t| t.id)
            .filter(|&id| id < eot)
            .collect();
        for id in repeat_completions(&text, budget.no_repeat) {
            if let Some(l) = usize::try_from(id).ok().and_then(|i| logits.get_mut(i)) {
                *l = f32::NEG_INFINITY;
            }
        }
    }
}

/// The tokens that would make the last `n` of `text` a run of `n` tokens that already came:
/// those that followed each earlier occurrence of the last `n - 1`. (Hugging Face's
/// `no_repeat_ngram_size`.)
pub fn repeat_completions(text: &[i32], n: usize) -> Vec<i32> {
    if n < 2 || text.len() < n {
        return Vec::new();
    }
    let prefix = &text[text.len() - (n - 1)..];
    let mut banned: Vec<i32> = text
        .windows(n)
        .filter(|w| &w[..n - 1] == prefix)
        .map(|w| w[n - 1])
        .collect();
    banned.sort_unstable();
    banned.dedup();
    banned
}

/// Removes what whisper repeats in a loop: a piece of text said three or more times running
/// ("鸿鸿鸿鸿", or a whole clause over and over, the last copy often cut off) is kept once.
/// Twice is left alone: 谢谢, 看看 and "very, very" are speech.
pub fn collapse_repeats(text: &str) -> String {
    const MAX_PERIOD: usize = 64;
    let c: Vec<char> = text.chars().collect();
    let n = c.len();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while i < n {
        let period = (1..=MAX_PERIOD.min((n - i) / 3)).find(|&p| {
            c[i..i + p] == c[i + p..i + 2 * p] && c[i..i + p] == c[i + 2 * p..i + 3 * p]
        });
        let Some(p) = period else {
            out.push(c[i]);
            i += 1;
            continue;
        };
        out.extend(&c[i..i + p]);
        let mut j = i + 3 * p;
        while j + p <= n && c[j..j + p] == c[i..i + p] {
            j += p;
        }
        // A last copy cut off by the end of the text goes too.
        if c[j..].len() < p && c[j..] == c[i..i + (n - j)] {
            j = n;
        }
        i = j;
    }
    out.trim().to_string()
}

/// Whether `text` only recites `prompt`: it has at least [`ECHO_MIN_UNITS`] units (CJK
/// characters, other words) and four in five of its adjacent unit pairs occur in the prompt.
/// Real speech about the same things ("路边有人占道经营") brings pairs of its own.
pub fn is_prompt_echo(text: &str, prompt: &str) -> bool {
    let units = |s: &str| -> Vec<String> {
        let mut out = Vec::new();
        let mut word = String::new();
        for c in s.chars() {
            if c.is_alphanumeric() && !is_cjk(c) {
                word.extend(c.to_lowercase());
                continue;
            }
            if !word.is_empty() {
                out.push(std::mem::take(&mut word));
            }
            if is_cjk(c) {
                out.push(c.to_string());
            }
        }
        if !word.is_empty() {
            out.push(word);
        }
        out
    };
    let said = units(text);
    if said.len() < ECHO_MIN_UNITS {
        return false;
    }
    let told = units(prompt);
    let pairs: std::collections::HashSet<(&str, &str)> = told
        .windows(2)
        .map(|w| (w[0].as_str(), w[1].as_str()))
        .collect();
    let total = said.len() - 1;
    let found = said
        .windows(2)
        .filter(|w| pairs.contains(&(w[0].as_str(), w[1].as_str())))
        .count();
    found * 5 >= total * 4
}

fn is_cjk(c: char) -> bool {
    matches!(c, '\u{3400}'..='\u{4DBF}' | '\u{4E00}'..='\u{9FFF}' | '\u{F900}'..='\u{FAFF}')
}

fn full_params<'a>(options: &'a DecodeOptions, prompt: Option<&'a str>) -> FullParams<'a, 'a> {
    let strategy = match options.search {
        Search::Greedy => SamplingStrategy::Greedy { best_of: 1 },
        Search::Beam(n) => SamplingStrategy::BeamSearch {
            beam_size: i32::from(n.max(1)),
            patience: -1.0,
        },
    };
    let mut p = FullParams::new(strategy);
    p.set_n_threads(i32::from(options.threads.max(1)));
    match &options.language {
        Language::Code(c) => p.set_language(Some(c.as_str())),
        Language::Auto => {
            p.set_language(Some("auto"));
        }
    }
    p.set_translate(false);
    p.set_no_context(true);
    p.set_suppress_blank(true);
    p.set_suppress_nst(true);
    p.set_print_progress(false);
    p.set_print_realtime(false);
    p.set_print_special(false);
    p.set_print_timestamps(false);
    if options.temperature_fallback {
        p.set_temperature_inc(FALLBACK_STEP);
        p.set_logprob_thold(FALLBACK_LOGPROB);
        p.set_entropy_thold(FALLBACK_ENTROPY);
    } else {
        p.set_temperature_inc(0.0);
    }
    if let Some(prompt) = prompt {
        p.set_initial_prompt(prompt);
    }
    p
}

/// One decoding window: pieces of the source laid end to end with pauses between them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Window {
    /// `(source range, offset in the window)`, in samples, in order.
    pub pieces: Vec<(Range<usize>, usize)>,
    /// Length of the window in samples.
    pub len: usize,
}

impl Window {
    /// The window's audio: the pieces with silence between them.
    pub fn assemble(&self, samples: &[f32]) -> Vec<f32> {
        let mut out = vec![0.0; self.len];
        for (range, offset) in &self.pieces {
            let src = &samples[range.clone()];
            out[*offset..*offset + src.len()].copy_from_slice(src);
        }
        out
    }

    /// Maps a time span inside the window back to the source, in milliseconds. A point in a pause
    /// goes to the nearest piece edge.
    pub fn to_source_ms(&self, start_ms: u64, end_ms: u64) -> (u64, u64) {
        let map = |ms: u64, is_end: bool| -> u64 {
            let at = (ms as usize).saturating_mul(RATE) / 1000;
            let mut best = None;
            for (range, offset) in &self.pieces {
                let len = range.end - range.start;
                if at < *offset {
                    // In the pause before this piece: a start snaps forward, an end back.
                    best = Some(if is_end {
                        best.unwrap_or(range.start)
                    } else {
                        range.start
                    });
                    break;
                }
                if at <= offset + len {
                    best = Some(range.start + (at - offset));
                    break;
                }
                best = Some(range.end);
            }
            (best.unwrap_or(0) as u64) * 1000 / RATE as u64
        };
        let s = map(start_ms, false);
        let e = map(end_ms, true).max(s);
        (s, e)
    }
}

/// Packs speech regions (sample ranges, clipped to `total` samples) into decoding windows of at
/// most [`MAX_WINDOW_MS`], [`PACK_GAP_MS`] apart; a region longer than a window is cut.
pub fn pack(speech: &[Range<usize>], total: usize) -> Vec<Window> {
    let max = (MAX_WINDOW_MS as usize) * RATE / 1000;
    let gap = (PACK_GAP_MS as usize) * RATE / 1000;
    let mut windows = Vec::new();
    let mut current = Window {
        pieces: Vec::new(),
        len: 0,
    };
    let mut regions: Vec<Range<usize>> = speech
        .iter()
        .map(|r| r.start.min(total)..r.end.min(total))
        .filter(|r| r.start < r.end)
        .collect();
    regions.sort_by_key(|r| r.start);
    for region in regions {
        let mut start = region.start;
        while start < region.end {
            let lead = if current.pieces.is_empty() { 0 } else { gap };
            let room = max.saturating_sub(current.len + lead);
            if room < RATE / 2 && !current.pieces.is_empty() {
                windows.push(std::mem::replace(
                    &mut current,
                    Window {
                        pieces: Vec::new(),
                        len: 0,
                    },
                ));
                continue;
            }
            let take = (region.end - start).min(room.max(1));
            let offset = current.len + lead;
            current.pieces.push((start..start + take, offset));
            current.len = offset + take;
            start += take;
        }
    }
    if !current.pieces.is_empty() {
        windows.push(current);
    }
    windows
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: usize = RATE;

    #[test]
    fn short_regions_share_one_window_with_pauses_between() {
        let w = pack(&[S..2 * S, 5 * S..6 * S, 10 * S..11 * S], 20 * S);
        assert_eq!(w.len(), 1);
        let gap = PACK_GAP_MS as usize * RATE / 1000;
        assert_eq!(
            w[0].pieces,
            vec![
                (S..2 * S, 0),
                (5 * S..6 * S, S + gap),
                (10 * S..11 * S, 2 * S + 2 * gap)
            ]
        );
        assert_eq!(w[0].len, 3 * S + 2 * gap);
    }

    #[test]
    fn a_long_region_is_cut_into_windows() {
        let whole = 0..70 * S;
        let w = pack(std::slice::from_ref(&whole), 70 * S);
        assert_eq!(w.len(), 3);
        let max = MAX_WINDOW_MS as usize * RATE / 1000;
        assert_eq!(w[0].pieces, vec![(0..max, 0)]);
        assert_eq!(w[1].pieces, vec![(max..2 * max, 0)]);
        assert_eq!(w[2].pieces, vec![(2 * max..70 * S, 0)]);
    }

    #[test]
    fn regions_past_the_end_are_clipped_and_empty_ones_dropped() {
        let w = pack(&[5 * S..5 * S, 8 * S..12 * S], 10 * S);
        assert_eq!(w.len(), 1);
        assert_eq!(w[0].pieces, vec![(8 * S..10 * S, 0)]);
        assert!(pack(&[], 10).is_empty());
    }

    #[test]
    fn window_times_map_back_to_the_recording() {
        let w = pack(&[S..2 * S, 5 * S..6 * S], 10 * S);
        let gap_ms = PACK_GAP_MS;
        // Inside the first piece.
        assert_eq!(w[0].to_source_ms(0, 500), (1000, 1500));
        // Inside the second piece.
        let second = 1000 + gap_ms;
        assert_eq!(w[0].to_source_ms(second + 100, second + 900), (5100, 5900));
        // A segment spanning the pause covers both pieces.
        assert_eq!(w[0].to_source_ms(200, second + 500), (1200, 5500));
        // A start inside the pause snaps to the next piece.
        assert_eq!(w[0].to_source_ms(1000 + gap_ms / 2, second + 200).0, 5000);
    }

    #[test]
    fn assembling_puts_silence_between_pieces() {
        let samples: Vec<f32> = (0..10 * S).map(|i| (i / S) as f32 + 1.0).collect();
        let w = pack(&[S..2 * S, 5 * S..6 * S], samples.len());
        let a = w[0].assemble(&samples);
        assert_eq!(a.len(), w[0].len);
        assert!(a[..S].iter().all(|&x| x == 2.0));
        assert!(a[S..S + 10].iter().all(|&x| x == 0.0));
        assert!(a[a.len() - S..].iter().all(|&x| x == 6.0));
    }

    #[test]
    fn the_prompt_names_the_domain_once_and_stays_short() {
        let zh = Language::Code("zh".into());
        let p = domain_prompt(&zh, ["井盖", "占道经营", "井盖", " ", "渣土车"]);
        assert_eq!(
            p,
            "以下是普通话的句子，是市民打给城市管理热线的电话，说到井盖、占道经营、渣土车。"
        );
        assert_eq!(domain_prompt(&zh, []), SIMPLIFIED_CHINESE_PROMPT);
        let many: Vec<String> = (0..200).map(|i| format!("地名{i}")).collect();
        let long = domain_prompt(&zh, many.iter().map(String::as_str));
        assert!(long.chars().count() < 180, "{long}");
        let en = domain_prompt(&Language::Code("en".into()), ["manhole covers"]);
        assert!(en.contains("manhole covers"));
    }

    #[test]
    fn the_encoder_runs_over_the_window_not_thirty_seconds() {
        assert_eq!(audio_ctx(0), MIN_AUDIO_CTX);
        assert_eq!(audio_ctx(2 * S), MIN_AUDIO_CTX);
        // 10 s: 500 frames and a second of margin.
        assert_eq!(audio_ctx(10 * S), 550);
        assert_eq!(audio_ctx(28 * S), 1450);
        assert_eq!(audio_ctx(40 * S), FULL_AUDIO_CTX);
    }

    #[test]
    fn the_token_budget_grows_with_the_window() {
        assert_eq!(text_token_budget(0), MIN_TOKENS);
        assert_eq!(text_token_budget(10 * S), MIN_TOKENS + 120);
        // A short turn stops far below whisper's own cap of 220 tokens a window.
        assert!(text_token_budget(5 * S) < 100);
    }

    #[test]
    fn a_run_of_tokens_may_not_come_twice() {
        // "a b c d" then "a b": c would repeat "a b c".
        assert_eq!(repeat_completions(&[1, 2, 3, 4, 1, 2], 3), [3]);
        // Every token that followed the prefix is banned, once each.
        assert_eq!(
            repeat_completions(&[1, 2, 3, 1, 2, 5, 1, 2, 3, 1, 2], 3),
            [3, 5]
        );
        // A token said three times: a fourth would repeat the run of three.
        assert_eq!(repeat_completions(&[7, 7, 7], 3), [7]);
        assert_eq!(repeat_completions(&[7, 7], 3), Vec::<i32>::new());
        // Nothing repeated, too short, or no limit.
        assert!(repeat_completions(&[1, 2, 3, 4, 5], 3).is_empty());
        assert!(repeat_completions(&[1, 2], 3).is_empty());
        assert!(repeat_completions(&[1, 1, 1, 1], 0).is_empty());
    }

    #[test]
    fn loops_are_kept_once_and_doubled_words_left_alone() {
        assert_eq!(collapse_repeats("鸿鸿鸿鸿鱼。"), "鸿鱼。");
        assert_eq!(
            collapse_repeats("谢谢你们，天天都来。"),
            "谢谢你们，天天都来。"
        );
        let clause = "小区门口的路灯坏了，";
        let looped = format!("{clause}{clause}{clause}小区门口的");
        assert_eq!(collapse_repeats(&looped), "小区门口的路灯坏了，");
        // A loop after real words keeps the words.
        let looped = format!("请问，{clause}{clause}{clause}{clause}谢谢。");
        assert_eq!(
            collapse_repeats(&looped),
            "请问，小区门口的路灯坏了，谢谢。"
        );
        assert_eq!(collapse_repeats("very, very good"), "very, very good");
        assert_eq!(collapse_repeats("no no no no"), "no");
        assert_eq!(collapse_repeats(""), "");
    }

    #[test]
    fn a_recited_prompt_is_an_echo_but_speech_about_the_same_things_is_not() {
        let prompt = domain_prompt(&Language::Code("zh".into()), ["井盖", "占道经营", "渣土车"]);
        assert!(is_prompt_echo("以下是普通话的句子。", &prompt));
        assert!(is_prompt_echo("说到井盖、占道经营、渣土车。", &prompt));
        assert!(!is_prompt_echo("路边有人占道经营，堵住了人行道。", &prompt));
        // Too short to tell: a caller may say just the word.
        assert!(!is_prompt_echo("井盖", &prompt));
        assert!(!is_prompt_echo("占道经营", &prompt));
        let en = "A call to the city service hotline about street lights.";
        assert!(is_prompt_echo("a call to the city service hotline", en));
        assert!(!is_prompt_echo(
            "The street light outside my building is broken.",
            en
        ));
    }

    #[test]
    fn chinese_without_a_prompt_is_told_to_write_simplified_characters() {
        let zh = DecodeOptions::default();
        assert_eq!(zh.effective_prompt(), Some(SIMPLIFIED_CHINESE_PROMPT));
        let en = DecodeOptions {
            language: Language::Code("en".into()),
            ..DecodeOptions::default()
        };
        assert_eq!(en.effective_prompt(), None);
        let set = DecodeOptions {
            prompt: Some("以下是普通话的句子，说到井盖。".into()),
            ..DecodeOptions::default()
        };
        assert_eq!(
            set.effective_prompt(),
            Some("以下是普通话的句子，说到井盖。")
        );
    }

    #[test]
    fn languages_are_checked() {
        assert_eq!(Language::parse("ZH").unwrap(), Language::Code("zh".into()));
        assert_eq!(Language::parse("auto").unwrap(), Language::Auto);
        assert!(matches!(
            Language::parse("klingon"),
            Err(EngineError::Language(_))
        ));
    }

    #[test]
    fn a_missing_model_is_a_clear_error() {
        let e = Engine::load(Path::new("/nonexistent/model.bin")).unwrap_err();
        assert!(e.to_string().contains("/nonexistent/model.bin"), "{e}");
    }
}
