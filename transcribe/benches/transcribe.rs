//! Transcription speed and accuracy on this machine, with the imported whisper base model.
//!
//! ```text
//! cargo bench -p transcribe --bench transcribe             # every decoding setting
//! cargo bench -p transcribe --bench transcribe -- q8_0 beam # the settings whose name has both
//! cargo bench -p transcribe --bench transcribe -- pool     # the worker pool
//! ```
//!
//! 1. **Settings**: each decoding setting transcribes the spoken corpus and the held-out
//!    sentences (espeak-ng through the 8 kHz A-law telephone band) on 2 threads. Reported: the
//!    real-time factor (decoding time / audio time; below 1 is faster than the audio plays) and
//!    the character error rate for Chinese (corpus and held out) and English.
//! 2. **Pool**: the same recordings, several times over, shared by workers of a given size
//!    (workers × threads each), once on an idle machine and once with one core kept busy (as
//!    live calls would). Reported: audio hours transcribed per hour of wall time.
//!
//! The machine's other work shows in the figures: compare settings run side by side.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use transcribe::cer;
use transcribe::engine::{DecodeOptions, Engine, Language, NO_REPEAT_NGRAM, Search, domain_prompt};
use transcribe::model::Quantize;
use transcribe::recording::transcribe_file;
use transcribe::testing::{self, Utterance};

struct Setting {
    name: &'static str,
    quantize: Quantize,
    search: Search,
    fallback: bool,
    /// The domain prompt (category words) rather than only the simplified-Chinese sentence.
    domain: bool,
    /// [`DecodeOptions::no_repeat_ngram`].
    no_repeat: usize,
}

const SETTINGS: [Setting; 8] = [
    Setting {
        name: "f16 beam5 fallback domain-prompt (default)",
        quantize: Quantize::F16,
        search: Search::Beam(5),
        fallback: true,
        domain: true,
        no_repeat: 0,
    },
    Setting {
        name: "f16 beam5 fallback domain-prompt no-repeat-4gram",
        quantize: Quantize::F16,
        search: Search::Beam(5),
        fallback: true,
        domain: true,
        no_repeat: 4,
    },
    Setting {
        name: "f16 beam5 fallback plain-prompt",
        quantize: Quantize::F16,
        search: Search::Beam(5),
        fallback: true,
        domain: false,
        no_repeat: 0,
    },
    Setting {
        name: "f16 greedy fallback domain-prompt",
        quantize: Quantize::F16,
        search: Search::Greedy,
        fallback: true,
        domain: true,
        no_repeat: 0,
    },
    Setting {
        name: "f16 greedy fallback plain-prompt",
        quantize: Quantize::F16,
        search: Search::Greedy,
        fallback: true,
        domain: false,
        no_repeat: 0,
    },
    Setting {
        name: "f16 greedy domain-prompt",
        quantize: Quantize::F16,
        search: Search::Greedy,
        fallback: false,
        domain: true,
        no_repeat: 0,
    },
    Setting {
        name: "q8_0 beam5 fallback domain-prompt",
        quantize: Quantize::Q8_0,
        search: Search::Beam(5),
        fallback: true,
        domain: true,
        no_repeat: 0,
    },
    Setting {
        name: "q8_0 greedy fallback domain-prompt",
        quantize: Quantize::Q8_0,
        search: Search::Greedy,
        fallback: true,
        domain: true,
        no_repeat: 0,
    },
];

fn options(
    u: &Utterance,
    search: Search,
    fallback: bool,
    domain: bool,
    no_repeat: usize,
    threads: u16,
) -> DecodeOptions {
    let language = Language::parse(&u.language).expect("corpus languages are known");
    let words: &[&str] = if domain { &testing::PROMPT_WORDS } else { &[] };
    DecodeOptions {
        prompt: Some(domain_prompt(&language, words.iter().copied())),
        language,
        threads,
        search,
        temperature_fallback: fallback,
        no_repeat_ngram: no_repeat,
    }
}

/// Edits and reference characters, summed.
#[derive(Default)]
struct Errors {
    edits: usize,
    chars: usize,
}

impl Errors {
    fn add(&mut self, reference: &str, text: &str) {
        let c = cer::char_edits(reference, text);
        self.edits += c.substitutions + c.deletions + c.insertions;
        self.chars += cer::normalize(reference).chars().count();
    }

    fn rate(&self) -> f64 {
        self.edits as f64 / self.chars.max(1) as f64
    }
}

fn settings(filters: &[String], set: &[(Utterance, bool, PathBuf)]) {
    println!(
        "{:<44} {:>6} {:>7} {:>9} {:>7} {:>9}",
        "setting (2 threads)", "RTF", "zh CER", "held out", "en CER", "keywords"
    );
    for s in SETTINGS
        .iter()
        .filter(|s| filters.iter().all(|f| s.name.contains(f.as_str())))
    {
        let engine = Engine::load(&testing::base_model(s.quantize)).expect("model loads");
        let (mut audio, mut busy) = (Duration::ZERO, Duration::ZERO);
        let (mut zh, mut held, mut en) = (Errors::default(), Errors::default(), Errors::default());
        let (mut found, mut keywords) = (0, 0);
        for (u, is_heldout, wav) in set {
            let o = options(u, s.search, s.fallback, s.domain, s.no_repeat, 2);
            let out = transcribe_file(&engine, wav, &o).expect("the corpus transcribes");
            audio += Duration::from_millis(out.transcript.duration_ms);
            busy += out.processing;
            let text = transcribe::timeline::plain_text(&out.transcript.segments);
            let lower = text.to_lowercase();
            keywords += u.keywords.len();
            found += u
                .keywords
                .iter()
                .filter(|k| lower.contains(&k.to_lowercase()))
                .count();
            match (u.language.as_str(), is_heldout) {
                ("zh", false) => zh.add(&u.text, &text),
                ("zh", true) => held.add(&u.text, &text),
                _ => en.add(&u.text, &text),
            }
        }
        println!(
            "{:<44} {:>6.3} {:>7.3} {:>9.3} {:>7.3} {:>9}",
            s.name,
            busy.as_secs_f64() / audio.as_secs_f64(),
            zh.rate(),
            held.rate(),
            en.rate(),
            format!("{found}/{keywords}")
        );
    }
}

/// Transcribes `rounds` copies of the set with `workers` threads of `threads` each; returns
/// audio hours per wall-clock hour.
fn pool(
    engine: &Arc<Engine>,
    set: &Arc<Vec<(Utterance, bool, PathBuf)>>,
    workers: usize,
    threads: u16,
    rounds: usize,
) -> f64 {
    let next = Arc::new(AtomicUsize::new(0));
    let audio_ms = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let handles: Vec<_> = (0..workers)
        .map(|_| {
            let (engine, set, next, audio_ms) = (
                Arc::clone(engine),
                Arc::clone(set),
                Arc::clone(&next),
                Arc::clone(&audio_ms),
            );
            std::thread::spawn(move || {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= set.len() * rounds {
                        break;
                    }
                    let (u, _, wav) = &set[i % set.len()];
                    let o = options(u, Search::Beam(5), true, true, NO_REPEAT_NGRAM, threads);
                    let out = transcribe_file(&engine, wav, &o).expect("the corpus transcribes");
                    audio_ms.fetch_add(out.transcript.duration_ms as usize, Ordering::Relaxed);
                }
            })
        })
        .collect();
    for h in handles {
        h.join().expect("worker thread");
    }
    let wall = started.elapsed().as_secs_f64();
    audio_ms.load(Ordering::Relaxed) as f64 / 1000.0 / wall
}

/// Keeps one core busy until dropped, as live calls' media would.
struct Load(Arc<AtomicBool>, Option<std::thread::JoinHandle<()>>);

impl Load {
    fn start() -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        let handle = std::thread::spawn(move || {
            let mut x = 0u64;
            while !flag.load(Ordering::Relaxed) {
                for i in 0..10_000u64 {
                    x = std::hint::black_box(x.wrapping_mul(6364136223846793005).wrapping_add(i));
                }
            }
        });
        Load(stop, Some(handle))
    }
}

impl Drop for Load {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
        if let Some(h) = self.1.take() {
            let _ = h.join();
        }
    }
}

fn main() {
    // `cargo bench` passes --bench; `cargo test --benches` and nextest pass nothing: only run on
    // --bench, so the test run builds this file without spending minutes in it.
    let args: Vec<String> = std::env::args().skip(1).collect();
    if !args.iter().any(|a| a == "--bench") {
        return;
    }
    let filters: Vec<String> = args.into_iter().filter(|a| !a.starts_with("--")).collect();
    let mut set: Vec<(Utterance, bool, PathBuf)> = Vec::new();
    for (u, heldout) in testing::corpus()
        .into_iter()
        .map(|u| (u, false))
        .chain(testing::heldout().into_iter().map(|u| (u, true)))
    {
        let wav = testing::telephone_wav(&u).expect("espeak-ng and sox make the corpus");
        set.push((u, heldout, wav));
    }
    println!(
        "machine: {} cores; {} recordings",
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(0),
        set.len()
    );
    if filters.iter().any(|f| f == "pool") {
        let engine = Arc::new(Engine::load(&testing::base_model(Quantize::F16)).expect("model"));
        let set = Arc::new(set);
        println!("\n== worker pool, f16 beam5 fallback: audio hours per hour ==");
        println!(
            "{:<22} {:>8} {:>14}",
            "workers x threads", "idle", "one core busy"
        );
        for (workers, threads) in [(1, 1), (1, 2), (2, 1)] {
            let idle = pool(&engine, &set, workers, threads, 2);
            let loaded = {
                let _load = Load::start();
                pool(&engine, &set, workers, threads, 2)
            };
            println!(
                "{:<22} {:>8.1} {:>14.1}",
                format!("{workers} x {threads}"),
                idle,
                loaded
            );
        }
    } else {
        settings(&filters, &set);
    }
}
