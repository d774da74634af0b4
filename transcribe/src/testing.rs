//! Test support (feature `testing`): the spoken test corpus made with espeak-ng and sox in the
//! telephone band, and the imported base model, both built once and cached under `target/`, so
//! the crate's tests, the binary's end-to-end tests and the benchmark hear the same audio.
//!
//! Several test processes run at once (nextest): each cache entry is built under a file lock and
//! published by rename, so a reader never sees half a file.

use std::fs::{self, File};
use std::io;
use std::path::{Path, PathBuf};
use std::process::Command;

use sha2::{Digest, Sha256};

/// One sentence of the corpus.
#[derive(Debug, Clone, PartialEq)]
pub struct Utterance {
    /// Short name (`zh01`).
    pub id: String,
    /// `zh` or `en`.
    pub language: String,
    /// What is said: the reference for the error rate.
    pub text: String,
    /// Words the transcript must contain.
    pub keywords: Vec<String>,
}

/// Domain words the tests and the benchmark give the prompt, as a hotline's categories would.
pub const PROMPT_WORDS: [&str; 5] = ["井盖", "占道经营", "渣土车", "路灯", "垃圾"];

/// The corpus of `tests/data/corpus.tsv`: the sentences decoding settings were tuned on.
pub fn corpus() -> Vec<Utterance> {
    parse(include_str!("../tests/data/corpus.tsv"))
}

/// The held-out Mandarin sentences of `tests/data/heldout.tsv`: not used for tuning, so their
/// error rate is the honest one.
pub fn heldout() -> Vec<Utterance> {
    parse(include_str!("../tests/data/heldout.tsv"))
}

fn parse(tsv: &str) -> Vec<Utterance> {
    tsv.lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .map(|line| {
            let f: Vec<&str> = line.split('\t').collect();
            assert!(f.len() >= 3, "test sentences: bad line {line:?}");
            Utterance {
                id: f[0].to_string(),
                language: f[1].to_string(),
                text: f[2].to_string(),
                keywords: f
                    .get(3)
                    .map(|k| k.split(',').map(|w| w.trim().to_string()).collect())
                    .unwrap_or_default(),
            }
        })
        .collect()
}

/// `target/` of the workspace (or `CARGO_TARGET_DIR`).
pub fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../target"))
}

/// Where the spoken corpus is cached.
pub fn audio_dir() -> PathBuf {
    target_dir().join("test-audio")
}

/// The espeak-ng voice for a language: `cmn-latn-pinyin` reads Chinese characters as Mandarin
/// (Debian's plain `cmn` reads them as pinyin in English sounds).
pub fn voice(language: &str) -> &'static str {
    match language {
        "zh" => "cmn-latn-pinyin",
        _ => "en-us",
    }
}

/// The utterance spoken and put through a telephone line: 8 kHz mono, band-limited to
/// 300–3400 Hz, through G.711 A-law and back to 16-bit PCM, as the gateway records a caller.
pub fn telephone_wav(u: &Utterance) -> io::Result<PathBuf> {
    let key = hex::encode(&Sha256::digest(format!("v2|{}|{}", voice(&u.language), u.text))[..6]);
    cached(&audio_dir(), &format!("{}-{key}.wav", u.id), |out| {
        let dir = out.parent().expect("cache file has a parent");
        let raw = dir.join(format!(".{}-{key}.raw.wav", u.id));
        let alaw = dir.join(format!(".{}-{key}.alaw.wav", u.id));
        run(Command::new("espeak-ng")
            .args(["-v", voice(&u.language), "-s", "150", "-w"])
            .arg(&raw)
            .arg(&u.text))?;
        // `-D`: no dither. sox dithers with fresh noise on every run, so each build of the
        // corpus would sound a little different and whisper, on the edge for this audio,
        // would score it differently; a G.711 codec does not dither either.
        run(Command::new("sox")
            .arg("-D")
            .arg(&raw)
            .args(["-r", "8000", "-c", "1", "-e", "a-law"])
            .arg(&alaw)
            .args(["sinc", "300-3400"]))?;
        run(Command::new("sox")
            .arg("-D")
            .arg(&alaw)
            .args(["-e", "signed-integer", "-b", "16"])
            .arg(out))?;
        let _ = fs::remove_file(raw);
        let _ = fs::remove_file(alaw);
        Ok(())
    })
}

/// Builds `dir/name` with `make` (which writes the path it is given) unless it is there,
/// under a lock so concurrent tests build it once.
pub fn cached(
    dir: &Path,
    name: &str,
    make: impl FnOnce(&Path) -> io::Result<()>,
) -> io::Result<PathBuf> {
    let path = dir.join(name);
    if path.is_file() {
        return Ok(path);
    }
    fs::create_dir_all(dir)?;
    let lock = File::create(dir.join(format!(".{name}.lock")))?;
    lock.lock()?;
    if !path.is_file() {
        let tmp = dir.join(format!(".part-{name}"));
        make(&tmp)?;
        fs::rename(&tmp, &path)?;
    }
    Ok(path)
}

fn run(cmd: &mut Command) -> io::Result<()> {
    let out = cmd.output().map_err(|e| {
        io::Error::new(
            e.kind(),
            format!(
                "{:?}: {e} (install espeak-ng and sox: scripts/setup-deps test)",
                cmd.get_program()
            ),
        )
    })?;
    if out.status.success() {
        Ok(())
    } else {
        Err(io::Error::other(format!(
            "{:?} failed: {}",
            cmd.get_program(),
            String::from_utf8_lossy(&out.stderr)
        )))
    }
}

/// Where `scripts/setup-deps` puts the model wheels (`HOTLINE_MODEL_WHEELS` overrides).
pub fn wheels_dir() -> PathBuf {
    std::env::var_os("HOTLINE_MODEL_WHEELS")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(std::env::var_os("HOME").unwrap_or_default())
                .join(".cache/hotline/wheels")
        })
}

/// The base model imported from the wheels, once per `target/` (f16, or q8_0).
pub fn base_model(quantize: crate::model::Quantize) -> PathBuf {
    let wheels = wheels_dir();
    assert!(
        wheels.is_dir(),
        "the model wheels are not in {}: run scripts/setup-deps test",
        wheels.display()
    );
    let dir = target_dir().join("test-models");
    let name = match quantize {
        crate::model::Quantize::F16 => "whisper-base",
        crate::model::Quantize::Q8_0 => "whisper-base-q8_0",
    };
    cached(&dir, &format!("{name}.bin"), |out| {
        let work = out.with_extension("import");
        let _ = fs::remove_dir_all(&work);
        let options = crate::model::ImportOptions {
            name: Some(name.into()),
            quantize,
            make_default: false,
        };
        let info = crate::model::import(std::slice::from_ref(&wheels), &work, &options)
            .map_err(|e| io::Error::other(e.to_string()))?;
        fs::rename(&info.path, out)?;
        let _ = fs::remove_dir_all(&work);
        Ok(())
    })
    .expect("importing the test model")
}
