//! `hotline prompts generate`: the IVR's prompt set, spoken from `config/prompts.toml` with
//! espeak-ng (and tones synthesised here) into `<data_dir>/prompts/<lang>/<name>.wav`.
//!
//! Reproducible: the same voice, speed and text give the same file, and a manifest of what each
//! file was made from lets a second run skip everything unchanged. A centre's own studio
//! recordings survive with `keep = true`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, bail};
use serde::Deserialize;
use sha2::{Digest, Sha256};

/// `config/prompts.toml`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Catalogue {
    /// Language code → espeak-ng voice.
    pub voices: BTreeMap<String, Voice>,
    /// Prompt name → texts or tone.
    #[serde(rename = "prompt")]
    pub prompts: BTreeMap<String, PromptDef>,
}

/// One language's voice.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Voice {
    /// espeak-ng voice name.
    pub voice: String,
    /// Words per minute.
    #[serde(default = "default_speed")]
    pub speed: u32,
}

fn default_speed() -> u32 {
    160
}

/// One prompt: a text per language, or a tone.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PromptDef {
    /// Mandarin text.
    pub zh: Option<String>,
    /// English text.
    pub en: Option<String>,
    /// A synthesised tone instead of speech.
    pub tone: Option<Tone>,
    /// Never overwrite an existing file (a studio recording).
    #[serde(default)]
    pub keep: bool,
}

/// Frequencies played together for `ms`, or `notes` one after another for `note_ms` each.
#[derive(Debug, Deserialize, Clone)]
#[serde(deny_unknown_fields)]
pub struct Tone {
    /// Frequencies sounded together.
    #[serde(default)]
    pub hz: Vec<f64>,
    /// Length of the chord.
    #[serde(default)]
    pub ms: u32,
    /// A melody.
    #[serde(default)]
    pub notes: Vec<f64>,
    /// Length of each note.
    #[serde(default)]
    pub note_ms: u32,
}

impl PromptDef {
    fn text(&self, lang: &str) -> Option<&str> {
        match lang {
            "zh" => self.zh.as_deref(),
            "en" => self.en.as_deref(),
            _ => None,
        }
    }
}

impl Catalogue {
    /// Parses and checks the catalogue; errors name the prompt and what is wrong.
    pub fn from_toml(text: &str) -> anyhow::Result<Catalogue> {
        let c: Catalogue =
            toml::from_str(text).map_err(|e| anyhow::anyhow!("{}", e.to_string().trim_end()))?;
        if c.voices.is_empty() {
            bail!("[voices]: name at least one language's voice");
        }
        for lang in c.voices.keys() {
            if !matches!(lang.as_str(), "zh" | "en") {
                bail!("voices.{lang}: only zh and en have texts");
            }
        }
        for (name, p) in &c.prompts {
            if name.is_empty()
                || name.starts_with('/')
                || name.contains("..")
                || !name
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'/')
            {
                bail!("prompt.{name}: names use a-z, 0-9, _ and / only");
            }
            match &p.tone {
                Some(t) => {
                    let chord = !t.hz.is_empty() && t.ms > 0;
                    let melody = !t.notes.is_empty() && t.note_ms > 0;
                    if chord == melody {
                        bail!("prompt.{name}.tone: give hz with ms, or notes with note_ms");
                    }
                }
                None => {
                    for lang in c.voices.keys() {
                        if p.text(lang).is_none_or(|t| t.trim().is_empty()) {
                            bail!("prompt.{name}: no {lang} text");
                        }
                    }
                }
            }
        }
        Ok(c)
    }
}

/// What a run did.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Report {
    /// Files written.
    pub written: usize,
    /// Files already up to date.
    pub unchanged: usize,
    /// Files kept as the centre's own.
    pub kept: usize,
}

/// Speaks (or synthesises) every prompt into `<out>/<lang>/<name>.wav`.
pub fn generate(catalogue: &Catalogue, out: &Path, force: bool) -> anyhow::Result<Report> {
    let manifest_path = out.join("manifest.json");
    let mut manifest: BTreeMap<String, String> = std::fs::read(&manifest_path)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_default();
    let mut report = Report::default();
    let espeak_checked = std::cell::Cell::new(false);
    for (name, prompt) in &catalogue.prompts {
        for (lang, voice) in &catalogue.voices {
            let path: PathBuf = out.join(lang).join(format!("{name}.wav"));
            let key = format!("{lang}/{name}");
            if prompt.keep && path.exists() {
                report.kept += 1;
                continue;
            }
            let recipe = match &prompt.tone {
                Some(t) => format!("tone {:?} {} {:?} {}", t.hz, t.ms, t.notes, t.note_ms),
                None => format!(
                    "espeak-ng {} {} {}",
                    voice.voice,
                    voice.speed,
                    prompt.text(lang).unwrap_or("")
                ),
            };
            let digest = hex::encode(Sha256::digest(recipe.as_bytes()));
            if !force && path.exists() && manifest.get(&key) == Some(&digest) {
                report.unchanged += 1;
                continue;
            }
            if let Some(parent) = path.parent() {
                std::fs::create_dir_all(parent)
                    .with_context(|| format!("cannot create {}", parent.display()))?;
            }
            match &prompt.tone {
                Some(t) => write_tone(t, &path)?,
                None => {
                    if !espeak_checked.get() {
                        check_espeak()?;
                        espeak_checked.set(true);
                    }
                    speak(voice, prompt.text(lang).unwrap_or(""), &path)
                        .with_context(|| format!("prompt {key}"))?;
                }
            }
            manifest.insert(key, digest);
            report.written += 1;
        }
    }
    std::fs::create_dir_all(out).with_context(|| format!("cannot create {}", out.display()))?;
    std::fs::write(&manifest_path, serde_json::to_vec_pretty(&manifest)?)
        .with_context(|| format!("cannot write {}", manifest_path.display()))?;
    Ok(report)
}

fn check_espeak() -> anyhow::Result<()> {
    match Command::new("espeak-ng").arg("--version").output() {
        Ok(o) if o.status.success() => Ok(()),
        _ => bail!("espeak-ng is not installed: apt-get install espeak-ng (scripts/run does this)"),
    }
}

/// espeak-ng writes a 22,050 Hz WAV; the gateway resamples prompts to 8 kHz when it loads them.
fn speak(voice: &Voice, text: &str, path: &Path) -> anyhow::Result<()> {
    let tmp = path.with_extension("wav.tmp");
    let out = Command::new("espeak-ng")
        .args(["-v", &voice.voice, "-s", &voice.speed.to_string(), "-w"])
        .arg(&tmp)
        .arg("--")
        .arg(text)
        .output()
        .context("running espeak-ng")?;
    if !out.status.success() {
        bail!(
            "espeak-ng failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    std::fs::rename(&tmp, path).with_context(|| format!("cannot write {}", path.display()))?;
    Ok(())
}

/// Samples of a tone at 8 kHz: sine waves with 10-ms fades so nothing clicks.
pub fn tone_samples(t: &Tone) -> Vec<i16> {
    const RATE: f64 = 8000.0;
    let segment = |freqs: &[f64], ms: u32, out: &mut Vec<i16>| {
        let n = (RATE * f64::from(ms) / 1000.0) as usize;
        let fade = (RATE * 0.010) as usize;
        for i in 0..n {
            let t = i as f64 / RATE;
            let v: f64 = freqs
                .iter()
                .map(|f| (t * f * std::f64::consts::TAU).sin())
                .sum::<f64>()
                / freqs.len().max(1) as f64;
            let ramp = (i.min(n - 1 - i) as f64 / fade as f64).min(1.0);
            out.push((v * ramp * 0.3 * f64::from(i16::MAX)) as i16);
        }
    };
    let mut out = Vec::new();
    if !t.notes.is_empty() {
        for note in &t.notes {
            segment(std::slice::from_ref(note), t.note_ms, &mut out);
        }
    } else {
        segment(&t.hz, t.ms, &mut out);
    }
    out
}

fn write_tone(t: &Tone, path: &Path) -> anyhow::Result<()> {
    let spec = hound::WavSpec {
        channels: 1,
        sample_rate: 8000,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut w = hound::WavWriter::create(path, spec)
        .with_context(|| format!("cannot write {}", path.display()))?;
    for s in tone_samples(t) {
        w.write_sample(s)?;
    }
    w.finalize()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `config/prompts.toml` as shipped.
    fn shipped() -> Catalogue {
        let text =
            std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/config/prompts.toml"))
                .unwrap();
        Catalogue::from_toml(&text).unwrap()
    }

    #[test]
    fn the_shipped_catalogue_is_complete() {
        let c = shipped();
        for d in 0..10 {
            assert!(c.prompts.contains_key(&format!("digits/{d}")), "digits/{d}");
        }
        for s in ticketing::Status::ALL {
            assert!(
                c.prompts.contains_key(&format!("status/{}", s.as_str())),
                "status/{s}"
            );
        }
        for name in [
            "welcome_12319",
            "welcome_12345",
            "goodbye",
            "beep",
            "hold_music",
            "enter_ticket",
        ] {
            assert!(c.prompts.contains_key(name), "{name}");
        }
    }

    #[test]
    fn a_missing_text_or_a_bad_name_is_named() {
        let voices = "[voices]\nzh = { voice = \"cmn-latn-pinyin\" }\nen = { voice = \"en-us\" }\n";
        let err = Catalogue::from_toml(&format!("{voices}[prompt.hello]\nzh = \"你好\"\n"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("prompt.hello: no en text"), "{err}");
        let err = Catalogue::from_toml(&format!(
            "{voices}[prompt.\"../x\"]\ntone = {{ hz = [1], ms = 1 }}\n"
        ))
        .unwrap_err()
        .to_string();
        assert!(err.contains("names use"), "{err}");
        let err = Catalogue::from_toml(&format!("{voices}[prompt.b]\ntone = {{ hz = [1000] }}\n"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("prompt.b.tone"), "{err}");
    }

    #[test]
    fn the_shipped_tones_are_not_speech_to_the_transcriber() {
        // The beep before a message and the music a queued caller hears are on the hotline side
        // of the recording: decoded, whisper would write words for them.
        let c = shipped();
        for name in ["beep", "hold_music"] {
            let tone = c.prompts[name].tone.as_ref().unwrap();
            // Three times over, as a queue loops its music, with the line's quiet noise floor.
            let once: Vec<f32> = tone_samples(tone)
                .iter()
                .map(|&v| f32::from(v) / 32_768.0)
                .collect();
            // Two seconds of line before and after, at −60 dBFS.
            let mut seed = 0x2545_f491_u32;
            let mut line = |v: f32| {
                seed = seed.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
                v + (f32::from((seed >> 16) as u16) / 65_536.0 - 0.5) * 0.0035
            };
            let quiet = std::iter::repeat_n(0.0, 16_000);
            let looped: Vec<f32> = quiet
                .clone()
                .chain(once.iter().cycle().take(once.len() * 3).copied())
                .chain(quiet)
                .map(&mut line)
                .collect();
            let at16 = transcribe::audio::resample(&[looped], 8000, 16_000).unwrap();
            let config = transcribe::vad::VadConfig::default();
            assert_eq!(
                transcribe::vad::detect(&at16[0], &config),
                Vec::<std::ops::Range<usize>>::new(),
                "{name} is taken for speech"
            );
            let loud = transcribe::vad::VadConfig {
                min_tone_ms: 0,
                ..config
            };
            assert!(
                !transcribe::vad::detect(&at16[0], &loud).is_empty(),
                "{name} is loud enough to pass for speech on level alone"
            );
        }
    }

    #[test]
    fn tones_have_their_length_and_pitch() {
        let beep = tone_samples(&Tone {
            hz: vec![1000.0],
            ms: 400,
            notes: vec![],
            note_ms: 0,
        });
        assert_eq!(beep.len(), 3200);
        let crossings = beep.windows(2).filter(|w| (w[0] < 0) != (w[1] < 0)).count();
        assert!(
            (790..=810).contains(&crossings),
            "{crossings} zero crossings in 0.4 s of 1 kHz"
        );
        assert_eq!(beep[0], 0, "fades in");
        let melody = tone_samples(&Tone {
            hz: vec![],
            ms: 0,
            notes: vec![440.0, 880.0],
            note_ms: 250,
        });
        assert_eq!(melody.len(), 4000);
    }
}
