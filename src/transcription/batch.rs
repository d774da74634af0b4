//! `hotline transcribe FILE...`: batches of existing recordings (an older system's archive, say).
//!
//! Files are decoded one after another with all the threads given, each to a transcript in the
//! chosen format; a file that fails is reported and the batch goes on (the exit status says
//! whether any failed).

use std::io::Write as _;
use std::path::{Path, PathBuf};

use anyhow::Context;
use transcribe::engine::{Engine, Language};
use transcribe::timeline;

/// Output format of `hotline transcribe`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// One line per segment: `[mm:ss] 市民：...`.
    Txt,
    /// Subtitles (SRT), the speaker before each cue.
    Srt,
    /// The transcript as JSON (language, duration, segments).
    Json,
}

impl Format {
    fn extension(self) -> &'static str {
        match self {
            Format::Txt => "txt",
            Format::Srt => "srt",
            Format::Json => "json",
        }
    }
}

/// What `hotline transcribe` was asked to do.
#[derive(Debug, Clone)]
pub struct BatchRequest {
    /// The recordings.
    pub files: Vec<PathBuf>,
    /// The model file.
    pub model: PathBuf,
    /// `zh`, `en`, `auto`...
    pub language: String,
    /// Output format.
    pub format: Format,
    /// Where to write `<name>.<format>`; standard output when absent.
    pub out: Option<PathBuf>,
    /// Threads for whisper.
    pub threads: u16,
    /// Beam width; 1 is greedy.
    pub beam: u8,
    /// Words for the decoder's prompt (categories, place names).
    pub prompt_words: Vec<String>,
}

/// Runs a batch; returns how many files failed.
pub fn run_batch(req: &BatchRequest) -> anyhow::Result<usize> {
    let language = Language::parse(&req.language)?;
    if let Some(out) = &req.out {
        std::fs::create_dir_all(out).with_context(|| format!("--out {}", out.display()))?;
    }
    let engine = Engine::load(&req.model)?;
    let options = super::decode_options(language, req.threads, req.beam, &req.prompt_words);
    let bar = indicatif::ProgressBar::new(req.files.len() as u64);
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "{spinner} [{elapsed_precise}] {bar:30} {pos}/{len} {msg}",
        )
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    let mut failed = 0;
    let mut audio_s = 0.0;
    let mut busy_s = 0.0;
    let mut stdout = std::io::stdout().lock();
    for file in &req.files {
        bar.set_message(file.display().to_string());
        match transcribe::recording::transcribe_file(&engine, file, &options) {
            Ok(outcome) => {
                audio_s += outcome.transcript.duration_ms as f64 / 1000.0;
                busy_s += outcome.processing.as_secs_f64();
                let text = render(&outcome.transcript, req.format);
                match &req.out {
                    Some(dir) => {
                        let path = output_path(dir, file, req.format);
                        std::fs::write(&path, text)
                            .with_context(|| format!("writing {}", path.display()))?;
                    }
                    None => {
                        if req.files.len() > 1 {
                            writeln!(stdout, "==> {} <==", file.display())?;
                        }
                        stdout.write_all(text.as_bytes())?;
                        if !text.ends_with('\n') {
                            writeln!(stdout)?;
                        }
                    }
                }
            }
            Err(e) => {
                failed += 1;
                bar.suspend(|| eprintln!("{}: {e}", file.display()));
            }
        }
        bar.inc(1);
    }
    bar.finish_and_clear();
    if audio_s > 0.0 {
        eprintln!(
            "{} file(s), {:.1} s of audio in {:.1} s (real-time factor {:.2}), {failed} failed",
            req.files.len(),
            audio_s,
            busy_s,
            busy_s / audio_s
        );
    }
    Ok(failed)
}

/// The transcript in `format`.
pub fn render(t: &timeline::Transcript, format: Format) -> String {
    match format {
        Format::Txt => timeline::to_text(&t.segments),
        Format::Srt => timeline::to_srt(&t.segments),
        Format::Json => t.to_json(),
    }
}

/// `<out>/<file stem>.<ext>`.
fn output_path(out: &Path, file: &Path, format: Format) -> PathBuf {
    let stem = file
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "transcript".into());
    out.join(format!("{stem}.{}", format.extension()))
}
