//! SIP gateway load: call set-up rate and concurrent recorded calls, driven by SIPp against the
//! release `hotline` binary on this machine.
//!
//! ```text
//! cargo bench --bench sip
//! HOTLINE_BENCH_RATES=100,200,300 HOTLINE_BENCH_CALLS=500,1000 HOTLINE_BENCH_HOLD_SECS=40 cargo bench --bench sip
//! ```
//!
//! 1. **Set-up rate**: for each rate, SIPp places `rate × 10` calls at that rate (each held 1 s,
//!    answered, recorded, greeted, then hung up by the caller). Reported: calls completed, failed,
//!    and the achieved rate.
//! 2. **Concurrent recorded calls**: for each N, SIPp opens N calls at 100/s, each streaming PCMA
//!    RTP both ways (SIPp loops an A-law file; the hotline sends its greeting, then silence) for
//!    the hold time, every call recorded as stereo WAV. While all N are up, the hotline
//!    process's CPU and resident memory are sampled for 10 s. Loss is the jitter buffer's count
//!    of 20-ms slots played as silence over the packets received (`hotline_rtp_packets_*`).
//!
//! SIPp and the hotline share the machine's cores, so the figures are a floor, not a ceiling.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use sip_gateway::g711;

const BIN: &str = env!("CARGO_BIN_EXE_hotline");
const ROOT: &str = env!("CARGO_MANIFEST_DIR");

fn env_list(name: &str, default: &[u32]) -> Vec<u32> {
    std::env::var(name)
        .ok()
        .map(|v| v.split(',').filter_map(|x| x.trim().parse().ok()).collect())
        .filter(|v: &Vec<u32>| !v.is_empty())
        .unwrap_or_else(|| default.to_vec())
}

struct Hotline {
    child: Child,
    http: String,
    sip: String,
}

impl Drop for Hotline {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start(dir: &Path) -> Hotline {
    let data = dir.join("data");
    std::fs::create_dir_all(data.join("prompts/zh")).unwrap();
    write_greeting(&data.join("prompts/zh/welcome_12319.wav"));
    let config = format!(
        r#"data_dir = "{data}"
categories = "{root}/config/categories.toml"
departments = "{root}/config/departments.toml"
prompts = "{root}/config/prompts.toml"
queues = "{root}/config/queues.toml"
ivr = "{root}/config/ivr"
[http]
listen = "127.0.0.1:0"
[sip]
listen = "127.0.0.1:0"
rtp_ports = "20000-39999"
max_calls = 5000
no_rtp_seconds = 60
[[sip.trunk]]
name = "sipp"
addresses = ["127.0.0.1"]
[[hotline]]
number = "12319"
name = "城市管理服务热线"
"#,
        data = data.display(),
        root = ROOT
    );
    let path = dir.join("hotline.toml");
    std::fs::write(&path, config).unwrap();
    let mut child = Command::new(BIN)
        .arg("--config")
        .arg(&path)
        .arg("serve")
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(dir.join("hotline.log")).unwrap())
        .spawn()
        .expect("start hotline");
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let http = lines.next().unwrap().unwrap();
    let sip = lines.next().unwrap().unwrap();
    let http = http.trim_start_matches("hotline listening on ").to_string();
    let sip = sip
        .split_whitespace()
        .find_map(|w| w.strip_prefix("udp:"))
        .unwrap()
        .to_string();
    Hotline { child, http, sip }
}

/// A 2-second greeting at 16 kHz, so every call plays a resampled prompt first.
fn write_greeting(path: &Path) {
    let spec = hound::WavSpec {
        channels: 1,
        sample_rate: 16000,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut w = hound::WavWriter::create(path, spec).unwrap();
    for i in 0..32000 {
        let t = i as f64 / 16000.0;
        w.write_sample(((t * 440.0 * std::f64::consts::TAU).sin() * 12000.0) as i16)
            .unwrap();
    }
    w.finalize().unwrap();
}

/// Raw A-law for SIPp's rtp_stream: 4 s of two tones, like a voice's energy.
fn write_caller_audio(path: &Path) {
    let pcm: Vec<i16> = (0..32000)
        .map(|i| {
            let t = i as f64 / 8000.0;
            ((t * 300.0 * std::f64::consts::TAU).sin() * 6000.0
                + (t * 1200.0 * std::f64::consts::TAU).sin() * 3000.0) as i16
        })
        .collect();
    let mut out = Vec::new();
    g711::Codec::Pcma.encode(&pcm, &mut out);
    std::fs::write(path, out).unwrap();
}

fn metric(http: &str, name: &str) -> f64 {
    let addr = http.trim_start_matches("http://");
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    write!(s, "GET /metrics HTTP/1.0\r\nHost: x\r\n\r\n").unwrap();
    let mut body = String::new();
    std::io::Read::read_to_string(&mut s, &mut body).unwrap();
    body.lines()
        .filter(|l| l.starts_with(name) && !l.starts_with('#'))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// (user+system CPU seconds, resident bytes) of a process.
fn usage(pid: u32) -> (f64, u64) {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let after = stat.rsplit(')').next().unwrap_or("");
    let f: Vec<&str> = after.split_whitespace().collect();
    let ticks = 100.0; // USER_HZ on Linux
    let cpu = f.get(11).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0)
        + f.get(12).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let rss_kb = status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
        .unwrap_or(0);
    (cpu / ticks, rss_kb * 1024)
}

fn sipp(dir: &Path, scenario: &Path, target: &str, args: &[String]) -> Child {
    Command::new("sipp")
        .current_dir(dir)
        .arg("-sf")
        .arg(scenario)
        .args([
            "-s",
            "12319",
            target,
            "-i",
            "127.0.0.1",
            "-nostdin",
            "-trace_stat",
            "-fd",
            "1",
        ])
        .args(["-stf", "stats.csv"])
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("sipp (Debian package sip-tester) must be installed")
}

/// The last row of SIPp's statistics file as (header, value) pairs.
fn last_stats(dir: &Path) -> Vec<(String, String)> {
    let text = std::fs::read_to_string(dir.join("stats.csv")).unwrap_or_default();
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().unwrap_or("").split(';').collect();
    let last: Vec<&str> = lines.last().unwrap_or("").split(';').collect();
    header
        .iter()
        .zip(last)
        .map(|(h, v)| (h.to_string(), v.to_string()))
        .collect()
}

fn stat(stats: &[(String, String)], name: &str) -> String {
    stats
        .iter()
        .find(|(h, _)| h == name)
        .map(|(_, v)| v.clone())
        .unwrap_or_default()
}

fn main() {
    // `cargo bench` passes --bench; `cargo test --benches` passes nothing: only run on --bench.
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    let rates = env_list("HOTLINE_BENCH_RATES", &[100, 200, 300, 400]);
    let concurrency = env_list("HOTLINE_BENCH_CALLS", &[250, 500, 1000, 1500]);
    let hold = env_list("HOTLINE_BENCH_HOLD_SECS", &[40])[0];
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let hotline = start(dir);
    let scenarios: PathBuf = Path::new(ROOT).join("tests/sipp");
    // Resident memory of the freshly started service: per-call memory is counted above it.
    let (_, idle_rss) = usage(hotline.child.id());
    println!(
        "machine: {} cores; hotline pid {}; SIP {}",
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(0),
        hotline.child.id(),
        hotline.sip
    );

    println!("\n== call set-up rate (each call answered, greeted, recorded, held 1 s) ==");
    println!(
        "{:>8} {:>8} {:>8} {:>10}",
        "target", "calls", "failed", "achieved"
    );
    for rate in &rates {
        let _ = std::fs::remove_file(dir.join("stats.csv"));
        let calls = rate * 10;
        let started = Instant::now();
        let mut child = sipp(
            dir,
            &scenarios.join("caller_hears_prompt.xml"),
            &hotline.sip,
            &[
                "-r".into(),
                rate.to_string(),
                "-m".into(),
                calls.to_string(),
                "-l".into(),
                (rate * 4).to_string(),
                "-d".into(),
                "1000".into(),
                "-timeout".into(),
                "120s".into(),
                "-p".into(),
                "0".into(),
                "-mp".into(),
                "41000".into(),
            ],
        );
        let _ = child.wait();
        // Placing the calls takes calls/rate seconds; the last call then lasts 1 s.
        let placing = started.elapsed().as_secs_f64() - 1.0;
        let stats = last_stats(dir);
        let ok: u32 = stat(&stats, "SuccessfulCall(C)").parse().unwrap_or(0);
        let failed: u32 = stat(&stats, "FailedCall(C)").parse().unwrap_or(0);
        println!(
            "{:>6}/s {:>8} {:>8} {:>8.0}/s",
            rate,
            ok,
            failed,
            f64::from(ok) / placing.max(0.001),
        );
        std::thread::sleep(Duration::from_secs(3));
    }

    println!("\n== concurrent recorded calls (PCMA both ways, {hold} s each) ==");
    println!(
        "{:>6} {:>9} {:>10} {:>9} {:>10} {:>10} {:>12} {:>11}",
        "calls", "up", "loss", "CPU", "CPU/call", "RSS", "RSS/call", "sipp CPU"
    );
    let audio = dir.join("caller.al");
    write_caller_audio(&audio);
    let scenario = dir.join("load_call.xml");
    let template = std::fs::read_to_string(scenarios.join("load_call.xml")).unwrap();
    std::fs::write(
        &scenario,
        template.replace("RTP_FILE", &audio.to_string_lossy()),
    )
    .unwrap();
    let pid = hotline.child.id();
    for n in &concurrency {
        let lost0 = metric(&hotline.http, "hotline_rtp_packets_lost_total");
        let recv0 = metric(&hotline.http, "hotline_rtp_packets_received_total");
        let ramp = Duration::from_secs_f64(f64::from(*n) / 100.0);
        let mut child = sipp(
            dir,
            &scenario,
            &hotline.sip,
            &[
                "-r".into(),
                "100".into(),
                "-m".into(),
                n.to_string(),
                "-l".into(),
                n.to_string(),
                "-d".into(),
                (hold * 1000).to_string(),
                "-timeout".into(),
                format!("{}s", hold * 3 + 60),
                "-p".into(),
                "0".into(),
                "-mp".into(),
                "42000".into(),
                "-rtp_threadtasks".into(),
                "100".into(),
            ],
        );
        // Wait for the ramp and 3 s of settling, then sample 10 s with all calls up.
        std::thread::sleep(ramp + Duration::from_secs(3));
        let up = metric(&hotline.http, "hotline_calls_active");
        let (cpu0, _) = usage(pid);
        let (scpu0, _) = usage(child.id());
        let t0 = Instant::now();
        std::thread::sleep(Duration::from_secs(10));
        let secs = t0.elapsed().as_secs_f64();
        let (cpu1, rss) = usage(pid);
        let (scpu1, _) = usage(child.id());
        let _ = child.wait();
        std::thread::sleep(Duration::from_secs(2));
        let lost = metric(&hotline.http, "hotline_rtp_packets_lost_total") - lost0;
        let recv = metric(&hotline.http, "hotline_rtp_packets_received_total") - recv0;
        let cpu = (cpu1 - cpu0) / secs;
        println!(
            "{:>6} {:>9} {:>9.4}% {:>8.0}% {:>9.3}% {:>7.0} MB {:>9.0} KB {:>10.0}%",
            n,
            up,
            100.0 * lost / recv.max(1.0),
            100.0 * cpu,
            100.0 * cpu / up.max(1.0),
            rss as f64 / 1e6,
            (rss.saturating_sub(idle_rss)) as f64 / 1e3 / up.max(1.0),
            100.0 * (scpu1 - scpu0) / secs,
        );
        std::thread::sleep(Duration::from_secs(3));
    }
    println!(
        "\n(CPU and CPU/call: share of one core; RSS/call: resident memory above idle, per call.)"
    );
}
