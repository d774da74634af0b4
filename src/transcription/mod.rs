//! Transcription in the binary: the service's workers that turn every finished recording into a
//! transcript (`worker`), `hotline transcribe` for batches of old recordings (`batch`), and what
//! both share — the `[transcription]` settings, the model to load, the decoder's options and
//! its domain prompt.

pub mod batch;
pub mod worker;

use std::path::{Path, PathBuf};

use anyhow::bail;
use serde::Deserialize;
use transcribe::engine::{DecodeOptions, Language, Search};

pub use batch::{BatchRequest, Format, run_batch};

/// `[transcription]`: how this node transcribes recordings.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TranscriptionConfig {
    /// Queue every finished recording and transcribe it. Off, nothing is queued.
    pub enabled: bool,
    /// Recordings this node transcribes at once; 0 queues them for other nodes only. Default:
    /// half the cores, so live calls keep the other half.
    pub workers: u16,
    /// CPU threads each worker gives whisper. Default 1: whisper's threads wait for each other
    /// at every step, and when live calls take a core they spin; one thread per worker and more
    /// workers transcribe more audio per hour on a busy machine (`cargo bench -p transcribe
    /// --bench transcribe -- pool`).
    pub threads: u16,
    /// Niceness of the transcription threads (0–19): the media of live calls comes first.
    pub nice: i32,
    /// The language spoken (`zh`, `en`, or `auto` to detect it), unless the call knows it.
    pub language: String,
    /// Beam width; 1 is greedy (faster, a few more errors).
    pub beam: u8,
    /// The model file; unset, the default model imported into `<data_dir>/models`.
    pub model: Option<PathBuf>,
    /// Local place names (streets, districts, estates) for the decoder's prompt, beside the
    /// categories' words: whisper then writes 人民路 rather than a homophone.
    pub place_names: Vec<String>,
    /// At start, calls that ended this many days back without a job are queued (transcription
    /// was off, or the node stopped before queueing them).
    pub backfill_days: u32,
    /// While there is no model, how often to look for one (seconds).
    pub model_check_seconds: u64,
}

impl Default for TranscriptionConfig {
    fn default() -> Self {
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        TranscriptionConfig {
            enabled: true,
            workers: u16::try_from((cores / 2).clamp(1, 8)).unwrap_or(1),
            threads: 1,
            nice: 10,
            language: "zh".into(),
            beam: 5,
            model: None,
            place_names: Vec::new(),
            backfill_days: 7,
            model_check_seconds: 10,
        }
    }
}

impl TranscriptionConfig {
    /// Checks what serde cannot: the language code, the ranges.
    pub fn validate(&self) -> anyhow::Result<()> {
        Language::parse(&self.language)
            .map_err(|e| anyhow::anyhow!("transcription.language: {e}"))?;
        if self.threads == 0 {
            bail!("transcription.threads must be at least 1");
        }
        if !(0..=19).contains(&self.nice) {
            bail!("transcription.nice must be 0 to 19");
        }
        if self.beam == 0 || self.beam > 16 {
            bail!("transcription.beam must be 1 (greedy) to 16");
        }
        if self.model_check_seconds == 0 {
            bail!("transcription.model_check_seconds must be at least 1");
        }
        Ok(())
    }
}

/// The decoder's options for `language`, `threads` and `beam` (1 = greedy), with the domain
/// prompt made of `words`.
pub fn decode_options(
    language: Language,
    threads: u16,
    beam: u8,
    words: &[String],
) -> DecodeOptions {
    DecodeOptions {
        prompt: Some(transcribe::engine::domain_prompt(
            &language,
            words.iter().map(String::as_str),
        )),
        language,
        threads,
        search: if beam <= 1 {
            Search::Greedy
        } else {
            Search::Beam(beam)
        },
        ..DecodeOptions::default()
    }
}

/// The model to use: the given path, or the default model imported into `<data dir>/models`.
pub fn resolve_model(given: Option<PathBuf>, data_dir: &Path) -> anyhow::Result<PathBuf> {
    if let Some(path) = given {
        return Ok(path);
    }
    let dir = models_dir(data_dir);
    match transcribe::model::default_model(&dir) {
        Some(path) => Ok(path),
        None => bail!("{}", no_model_hint(&dir)),
    }
}

/// Where `hotline model import` puts models.
pub fn models_dir(data_dir: &Path) -> PathBuf {
    data_dir.join("models")
}

/// What to tell an operator when there is no model.
pub fn no_model_hint(models_dir: &Path) -> String {
    format!(
        "no speech model in {}: import one with `hotline model import ~/.cache/hotline/wheels` \
         (scripts/setup-deps fetches the wheels), or set transcription.model",
        models_dir.display()
    )
}

/// Domain words for the decoder's prompt: the word citizens most often use for each category
/// (its first keyword, else its name), most common classes first as the catalogue lists them,
/// then the configured place names.
pub fn prompt_words(
    catalogue: &ticketing::category::Catalogue,
    place_names: &[String],
) -> Vec<String> {
    catalogue
        .iter()
        .map(|c| {
            c.keywords
                .first()
                .cloned()
                .unwrap_or_else(|| c.name.clone())
        })
        .chain(place_names.iter().cloned())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_defaults_are_valid_and_bad_values_are_named() {
        TranscriptionConfig::default().validate().unwrap();
        for (cfg, key) in [
            (
                TranscriptionConfig {
                    language: "klingon".into(),
                    ..TranscriptionConfig::default()
                },
                "transcription.language",
            ),
            (
                TranscriptionConfig {
                    threads: 0,
                    ..TranscriptionConfig::default()
                },
                "transcription.threads",
            ),
            (
                TranscriptionConfig {
                    nice: 20,
                    ..TranscriptionConfig::default()
                },
                "transcription.nice",
            ),
            (
                TranscriptionConfig {
                    beam: 0,
                    ..TranscriptionConfig::default()
                },
                "transcription.beam",
            ),
        ] {
            let err = cfg.validate().unwrap_err().to_string();
            assert!(err.contains(key), "{err}");
        }
    }

    #[test]
    fn greedy_is_a_beam_of_one_and_the_prompt_carries_the_words() {
        let words = vec!["井盖".to_string(), "人民路".to_string()];
        let o = decode_options(Language::Code("zh".into()), 3, 1, &words);
        assert_eq!(o.search, Search::Greedy);
        assert_eq!(o.threads, 3);
        let prompt = o.prompt.unwrap();
        assert!(
            prompt.contains("井盖") && prompt.contains("人民路"),
            "{prompt}"
        );
        let o = decode_options(Language::Code("zh".into()), 2, 5, &words);
        assert_eq!(o.search, Search::Beam(5));
    }
}
