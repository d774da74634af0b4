//! The SIP end-to-end fixture: a `hotline serve` process in its own data directory, SIPp runs
//! against it, and what a supervisor reads back over HTTP (call records, recordings), with
//! helpers that judge audio by its content.
#![allow(dead_code)]

use std::cell::Cell;
use std::fs::File;
use std::io::{BufRead, BufReader, Cursor};
use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::Value;

use super::Api;

pub const BIN: &str = env!("CARGO_BIN_EXE_hotline");
pub const ROOT: &str = env!("CARGO_MANIFEST_DIR");
pub const PASSWORD: &str = "correct horse battery";
/// The caller number every scenario puts in From.
pub const CALLER: &str = "13900001234";
/// How long a call record may take to be written after the call ends.
pub const RECORD_TIMEOUT: Duration = Duration::from_secs(5);
// =============================================================================================
// The fixture: a hotline process with its own data directory
// =============================================================================================

/// `[sip]` settings a test changes; the rest are the shipped defaults.
pub struct Sip {
    /// A TLS listener on this port, with a self-signed certificate made by `openssl`.
    pub tls_port: Option<u16>,
    pub answer_delay_ms: u64,
    pub no_rtp_seconds: u64,
    pub max_calls: usize,
    pub retry_after_seconds: u32,
    pub trunks: Vec<Trunk>,
    /// Today (and the days around it) is a public holiday and the hotline closes on holidays:
    /// the IVR takes the after-hours branch.
    pub closed_today: bool,
    /// The queues file to use instead of the shipped `config/queues.toml`.
    pub queues: Option<String>,
    /// Every prompt of the catalogue as a tone of its own ([`ToneMap`]), so which prompts a
    /// caller heard can be read off the recording; without it only the 440 Hz greeting exists.
    pub tone_prompts: bool,
    /// More sections appended to hotline.toml (`[wechat]`).
    pub extra: String,
    /// `database_url` (a PostgreSQL test schema's); the data directory's SQLite file when None.
    pub database_url: Option<String>,
}

/// One `[[sip.trunk]]`.
pub struct Trunk {
    pub name: &'static str,
    pub addresses: Vec<&'static str>,
    pub credentials: Option<(&'static str, &'static str)>,
}

impl Default for Sip {
    fn default() -> Sip {
        Sip {
            tls_port: None,
            answer_delay_ms: 0,
            no_rtp_seconds: 30,
            max_calls: 1000,
            retry_after_seconds: 30,
            trunks: vec![Trunk {
                name: "local",
                addresses: vec!["127.0.0.1"],
                credentials: None,
            }],
            closed_today: false,
            queues: None,
            tone_prompts: false,
            extra: String::new(),
            database_url: None,
        }
    }
}

impl Sip {
    pub fn to_toml(&self) -> String {
        let mut out = format!(
            "[sip]\nlisten = \"127.0.0.1:0\"\nanswer_delay_ms = {}\nno_rtp_seconds = {}\nmax_calls = {}\nretry_after_seconds = {}\n",
            self.answer_delay_ms, self.no_rtp_seconds, self.max_calls, self.retry_after_seconds
        );
        if let Some(port) = self.tls_port {
            out.push_str(&format!(
                "tls_listen = \"127.0.0.1:{port}\"\ntls_cert = \"tls/cert.pem\"\ntls_key = \"tls/key.pem\"\n"
            ));
        }
        for t in &self.trunks {
            let addresses: Vec<String> = t.addresses.iter().map(|a| format!("{a:?}")).collect();
            out.push_str(&format!(
                "\n[[sip.trunk]]\nname = {:?}\naddresses = [{}]\n",
                t.name,
                addresses.join(", ")
            ));
            if let Some((user, password)) = t.credentials {
                out.push_str(&format!("username = {user:?}\npassword = {password:?}\n"));
            }
        }
        out
    }
}

/// A running `hotline serve` in a temporary directory (config, database, prompts, recordings,
/// its log, SIPp's logs). Killed when dropped; on a failing test its log and SIPp's are printed.
pub struct Hotline {
    pub dir: tempfile::TempDir,
    pub child: Option<Child>,
    pub _stdout: Option<BufReader<ChildStdout>>,
    pub http: String,
    pub sip: SocketAddr,
    pub tcp: SocketAddr,
    pub runs: Cell<u32>,
}

impl Hotline {
    /// Writes the configuration and the greeting, adds a supervisor, starts serving.
    pub fn start(configure: impl FnOnce(&mut Sip)) -> Hotline {
        let dir = tempfile::tempdir().unwrap();
        let mut sip = Sip::default();
        configure(&mut sip);
        let data = dir.path().join("data");
        // The calendar is the shipped one (Asia/Shanghai): it dates the recordings' folders.
        let queues = match &sip.queues {
            Some(text) => {
                let path = dir.path().join("queues.toml");
                std::fs::write(&path, text).unwrap();
                path.display().to_string()
            }
            None => format!("{ROOT}/config/queues.toml"),
        };
        let (hours, holidays) = if sip.closed_today {
            let today = jiff::Timestamp::now()
                .in_tz("Asia/Shanghai")
                .unwrap()
                .date();
            let (from, to) = (today.yesterday().unwrap(), today.tomorrow().unwrap());
            (
                "[hotline.hours]\nperiods = [\"00:00-24:00\"]\ndays = \"every_day_but_holidays\"\n\n"
                    .to_owned(),
                format!("holidays = [\"{from}..{to}\"]\n"),
            )
        } else {
            (String::new(), String::new())
        };
        let database = sip
            .database_url
            .as_ref()
            .map(|url| format!("database_url = {url:?}\n"))
            .unwrap_or_default();
        let config = format!(
            "{database}data_dir = {data:?}\ncategories = \"{ROOT}/config/categories.toml\"\ndepartments = \"{ROOT}/config/departments.toml\"\nprompts = \"{ROOT}/config/prompts.toml\"\nqueues = {queues:?}\nivr = \"{ROOT}/config/ivr\"\n\n\
             [http]\nlisten = \"127.0.0.1:0\"\n\n{sip}\n\
             [[hotline]]\nnumber = \"12319\"\nname = \"城市管理服务热线\"\naliases = [\"+8655112319\"]\n{hours}\n\
             [calendar]\ntimezone = \"Asia/Shanghai\"\n{holidays}\n{extra}",
            extra = sip.extra,
            data = data.display().to_string(),
            sip = sip
                .to_toml()
                .replace("\"tls/", &format!("\"{}/tls/", dir.path().display())),
        );
        std::fs::write(dir.path().join("hotline.toml"), config).unwrap();
        if sip.tls_port.is_some() {
            std::fs::create_dir_all(dir.path().join("tls")).unwrap();
            let out = Command::new("openssl")
                .current_dir(dir.path())
                .args([
                    "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                ])
                .args([
                    "-subj",
                    "/CN=localhost",
                    "-keyout",
                    "tls/key.pem",
                    "-out",
                    "tls/cert.pem",
                ])
                .output()
                .expect("openssl must be installed");
            assert!(
                out.status.success(),
                "openssl: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        if sip.tone_prompts {
            ToneMap::shipped().write(&data.join("prompts"));
        } else {
            write_greeting(&data.join("prompts/zh/welcome_12319.wav"));
        }
        let mut hotline = Hotline {
            dir,
            child: None,
            _stdout: None,
            http: String::new(),
            sip: "0.0.0.0:0".parse().unwrap(),
            tcp: "0.0.0.0:0".parse().unwrap(),
            runs: Cell::new(0),
        };
        let out = hotline
            .command()
            .args(["user", "add", "supervisor", "--role", "supervisor"])
            .env("HOTLINE_USER_PASSWORD", PASSWORD)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "user add: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let out = hotline
            .command()
            .args(["user", "add", "agent", "--role", "agent"])
            .env("HOTLINE_USER_PASSWORD", PASSWORD)
            .output()
            .unwrap();
        assert!(out.status.success());
        hotline.serve();
        hotline
    }

    pub fn command(&self) -> Command {
        let mut cmd = Command::new(BIN);
        cmd.arg("--config")
            .arg(self.dir.path().join("hotline.toml"))
            .env("RUST_LOG", "info,rsipstack=warn")
            .env_remove("HOTLINE_CONFIG")
            .env_remove("HOTLINE_DATA_DIR")
            .env_remove("HOTLINE_DATABASE_URL")
            .env_remove("HOTLINE_HTTP_LISTEN")
            .env_remove("HOTLINE_SIP_LISTEN")
            .env_remove("HOTLINE_WECHAT_TOKEN")
            .env_remove("HOTLINE_WECHAT_APPID")
            .env_remove("HOTLINE_WECHAT_AES_KEY")
            .env_remove("HOTLINE_WECHAT_SECRET")
            .env_remove("HOTLINE_APP_SENDER")
            .env_remove("HOTLINE_APP_CODE_FILE");
        cmd
    }

    /// `hotline serve`, waiting for its two address lines.
    pub fn serve(&mut self) {
        let log = File::options()
            .create(true)
            .append(true)
            .open(self.log_path())
            .unwrap();
        let mut child = self
            .command()
            .arg("serve")
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .unwrap();
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        self.child = Some(child);
        let mut line = String::new();
        stdout.read_line(&mut line).unwrap();
        self.http = line
            .trim()
            .strip_prefix("hotline listening on ")
            .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
            .to_owned();
        line.clear();
        stdout.read_line(&mut line).unwrap();
        let mut words = line
            .trim()
            .strip_prefix("hotline SIP on ")
            .unwrap_or_else(|| panic!("unexpected second line {line:?}"))
            .split(' ');
        let mut addr = |scheme: &str| -> SocketAddr {
            words
                .next()
                .and_then(|w| w.strip_prefix(scheme))
                .and_then(|a| a.parse().ok())
                .unwrap_or_else(|| panic!("no {scheme} address in {line:?}"))
        };
        self.sip = addr("udp:");
        self.tcp = addr("tcp:");
        self._stdout = Some(stdout);
    }

    /// SIGKILL, as `kill -9` does: no shutdown, no final header, no call record.
    pub fn kill_9(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().unwrap();
            child.wait().unwrap();
        }
        self._stdout = None;
    }

    /// Starts the binary again on the same configuration and data.
    pub fn restart(&mut self) {
        self.kill_9();
        self.serve();
    }

    pub fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    pub fn log_path(&self) -> PathBuf {
        self.dir.path().join("hotline.log")
    }

    /// Everything the hotline wrote to stderr so far (both runs, after a restart).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.log_path()).unwrap_or_default()
    }

    /// The digits the hotline recognised in one call, in order, with how they came
    /// (`"2 by rfc4733"`).
    pub fn digits(&self, call_id: &str) -> Vec<String> {
        self.log()
            .lines()
            .filter(|l| {
                l.contains("sip_gateway::call: DTMF ") && l.contains(&format!("call_id={call_id} "))
            })
            .map(|l| {
                format!(
                    "{} by {}",
                    field(l, "digit"),
                    field(l, "via").trim_matches('"')
                )
            })
            .collect()
    }

    /// The process still runs and nothing in it panicked.
    pub fn assert_alive(&mut self) {
        let child = self.child.as_mut().expect("started");
        assert_eq!(child.try_wait().unwrap(), None, "the hotline exited");
        assert!(
            !self.log().contains("panicked"),
            "a task in the hotline panicked"
        );
    }

    /// A SIPp run of `tests/sipp/<scenario>.xml` against this hotline, as 13900001234 → 12319.
    pub fn sipp(&self, scenario: &str) -> Sipp {
        let n = self.runs.get() + 1;
        self.runs.set(n);
        Sipp {
            dir: self.dir.path().to_owned(),
            name: format!("{n}-{scenario}"),
            scenario: format!("{ROOT}/tests/sipp/{scenario}.xml"),
            target: self.sip,
            ip: "127.0.0.1".into(),
            number: "12319".into(),
            pause_ms: 1000,
            extra: Vec::new(),
            port: None,
        }
    }

    /// A SIPp call into the IVR: after the ACK the caller does `steps`, then `end` decides who
    /// hangs up. The scenario is written from `tests/sipp/ivr_caller.xml`.
    pub fn ivr_call(&self, steps: &[Step], end: End) -> Sipp {
        let template =
            std::fs::read_to_string(format!("{ROOT}/tests/sipp/ivr_caller.xml")).unwrap();
        let mut xml = String::new();
        for step in steps {
            match step {
                Step::Pause(ms) => xml.push_str(&format!("  <pause milliseconds=\"{ms}\"/>\n")),
                Step::Key(k) => {
                    let file = match k {
                        '#' => "pound".to_owned(),
                        '*' => "star".to_owned(),
                        d => d.to_string(),
                    };
                    xml.push_str(&format!(
                        "  <nop><action><exec play_pcap_audio=\"/usr/share/sip-tester/dtmf_2833_{file}.pcap\"/></action></nop>\n  <pause milliseconds=\"200\"/>\n"
                    ));
                }
                Step::Speak => xml.push_str(
                    "  <nop><action><exec play_pcap_audio=\"/usr/share/sip-tester/g711a.pcap\"/></action></nop>\n",
                ),
                Step::Play(path) => xml.push_str(&format!(
                    "  <nop><action><exec play_pcap_audio=\"{}\"/></action></nop>\n",
                    path.display()
                )),
            }
        }
        let end = match end {
            End::CallerHangsUp => CALLER_BYE.to_owned(),
            End::HotlineHangsUp { within_ms } => hotline_bye(within_ms),
            End::Referred => format!("{}{}", refer_accepted(), hotline_bye(5000)),
            End::ReferRefused { within_ms } => {
                format!("{}{}", refer_refused(), hotline_bye(within_ms))
            }
        };
        let xml = template
            .replace("  <!-- STEPS -->\n", &xml)
            .replace("  <!-- END -->\n", &end);
        self.sipp_written("ivr_caller", &xml)
    }

    /// An agent's desk phone (`tests/sipp/agent_phone.xml`) that, `after_ms` after the call is
    /// bridged to it, says what `pcap` holds (see [`speech_pcap`]), then waits for the BYE.
    pub fn agent_phone_saying(&self, pcap: &Path, after_ms: u64) -> Sipp {
        let template =
            std::fs::read_to_string(format!("{ROOT}/tests/sipp/agent_phone.xml")).unwrap();
        let speech = format!(
            "  <pause milliseconds=\"{after_ms}\"/>\n  <nop><action><exec play_pcap_audio=\"{}\"/></action></nop>\n",
            pcap.display()
        );
        assert!(template.contains("  <!-- ANSWERED -->\n"));
        self.sipp_written(
            "agent_phone",
            &template.replace("  <!-- ANSWERED -->\n", &speech),
        )
    }

    /// A SIPp run named after `scenario` that plays `xml`, written from its template into the
    /// test's directory.
    fn sipp_written(&self, scenario: &str, xml: &str) -> Sipp {
        let n = self.runs.get() + 1;
        let path = self.dir.path().join(format!("{scenario}-{n}.xml"));
        std::fs::write(&path, xml).unwrap();
        let mut sipp = self.sipp(scenario);
        sipp.scenario = path.display().to_string();
        sipp
    }

    pub async fn supervisor(&self) -> Api {
        Api::login(&self.http, "supervisor", PASSWORD).await
    }

    pub async fn agent(&self) -> Api {
        Api::login(&self.http, "agent", PASSWORD).await
    }
}

impl Drop for Hotline {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        if std::thread::panicking() {
            eprintln!("===== hotline log =====\n{}", self.log());
            let mut logs: Vec<PathBuf> = std::fs::read_dir(self.dir.path())
                .into_iter()
                .flatten()
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|x| x == "log") && *p != self.log_path())
                .collect();
            logs.sort();
            for path in logs {
                let text = std::fs::read_to_string(&path).unwrap_or_default();
                eprintln!(
                    "===== {} =====\n{text}",
                    path.file_name().unwrap().to_string_lossy()
                );
            }
        }
    }
}

/// A 1-second 440 Hz greeting at a high level, 44.1 kHz stereo, so the hotline resamples and
/// mixes it down before playing it.
pub fn write_greeting(path: &Path) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let spec = hound::WavSpec {
        channels: 2,
        sample_rate: 44_100,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut w = hound::WavWriter::create(path, spec).unwrap();
    for i in 0..44_100 {
        let t = f64::from(i) / 44_100.0;
        let s = ((t * 440.0 * std::f64::consts::TAU).sin() * 20_000.0) as i16;
        w.write_sample(s).unwrap();
        w.write_sample(s).unwrap();
    }
    w.finalize().unwrap();
}

// =============================================================================================
// SIPp
// =============================================================================================

/// One SIPp invocation, to be run to its end or spawned in the background.
pub struct Sipp {
    pub dir: PathBuf,
    pub name: String,
    pub scenario: String,
    pub target: SocketAddr,
    pub ip: String,
    pub number: String,
    pub pause_ms: u64,
    pub extra: Vec<String>,
    /// The local SIP port (`-p`); a free one when None.
    pub port: Option<u16>,
}

impl Sipp {
    /// What `<pause/>` waits (`-d`).
    pub fn pause_ms(mut self, ms: u64) -> Sipp {
        self.pause_ms = ms;
        self
    }

    /// Calls from this local address (`-i`; loopback aliases work on Linux).
    pub fn calling_from(mut self, ip: &str) -> Sipp {
        self.ip = ip.into();
        self
    }

    /// Listens on this SIP port (`-p`): for a SIPp that plays a phone to be called.
    pub fn on_port(mut self, port: u16) -> Sipp {
        self.port = Some(port);
        self
    }

    /// Dials this number (`-s`).
    pub fn dialing(mut self, number: &str) -> Sipp {
        self.number = number.into();
        self
    }

    pub fn arg(mut self, arg: &str) -> Sipp {
        self.extra.push(arg.into());
        self
    }

    pub fn args<const N: usize>(mut self, args: [&str; N]) -> Sipp {
        self.extra.extend(args.iter().map(|a| a.to_string()));
        self
    }

    pub fn spawn(self) -> RunningSipp {
        let ip: IpAddr = self.ip.parse().unwrap();
        let messages = self.dir.join(format!("sipp-{}.msgs.log", self.name));
        let errors = self.dir.join(format!("sipp-{}.errs.log", self.name));
        let sip_port = self.port.unwrap_or_else(|| free_udp_port(ip));
        // SIPp binds its SIP port before its media ports (audio, RTCP, video, video RTCP): a
        // media range found free must not contain the SIP port it is about to take.
        let media_port = loop {
            let p = free_media_ports(ip);
            if !(p..p + 4).contains(&sip_port) {
                break p;
            }
        };
        let mut cmd = tokio::process::Command::new("sipp");
        cmd.current_dir(&self.dir)
            .args(["-sf", &self.scenario, "-s", &self.number])
            .arg(self.target.to_string())
            .args(["-i", &self.ip])
            .args(["-p", &sip_port.to_string()])
            .args(["-mp", &media_port.to_string()])
            .args(["-m", "1", "-d", &self.pause_ms.to_string()])
            .args(["-timeout", "60s", "-timeout_error", "-nostdin"])
            .args(["-trace_err", "-error_file"])
            .arg(&errors)
            .args(["-trace_msg", "-message_file"])
            .arg(&messages)
            .args(&self.extra)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        let child = cmd
            .spawn()
            .expect("sipp (Debian package sip-tester) must be on the PATH");
        RunningSipp {
            child,
            name: self.name,
            messages,
            errors,
        }
    }

    pub async fn run(self) -> SippRun {
        self.spawn().finish().await
    }
}

pub struct RunningSipp {
    pub child: tokio::process::Child,
    pub name: String,
    pub messages: PathBuf,
    pub errors: PathBuf,
}

impl RunningSipp {
    pub async fn finish(self) -> SippRun {
        let out = self.child.wait_with_output().await.unwrap();
        let mut screen = String::from_utf8_lossy(&out.stdout).into_owned();
        screen.push_str(&String::from_utf8_lossy(&out.stderr));
        SippRun::read(self.name, out.status, screen, &self.messages, &self.errors)
    }

    /// Ends SIPp mid-call (its peer is gone).
    pub async fn kill(mut self) -> SippRun {
        self.child.kill().await.unwrap();
        let status = self.child.wait().await.unwrap();
        SippRun::read(
            self.name,
            status,
            String::new(),
            &self.messages,
            &self.errors,
        )
    }
}

/// What one SIPp run did: its exit status and the messages it sent and received.
pub struct SippRun {
    pub name: String,
    pub status: ExitStatus,
    pub screen: String,
    pub messages: String,
    pub errors: String,
}

impl SippRun {
    pub fn read(
        name: String,
        status: ExitStatus,
        screen: String,
        messages: &Path,
        errors: &Path,
    ) -> SippRun {
        SippRun {
            name,
            status,
            screen,
            messages: std::fs::read_to_string(messages).unwrap_or_default(),
            errors: std::fs::read_to_string(errors).unwrap_or_default(),
        }
    }

    #[track_caller]
    pub fn assert_success(&self) {
        assert!(
            self.status.success(),
            "SIPp {} failed ({}):\n{}\n--- errors ---\n{}",
            self.name,
            self.status,
            self.screen
                .lines()
                .rev()
                .take(30)
                .collect::<Vec<_>>()
                .into_iter()
                .rev()
                .collect::<Vec<_>>()
                .join("\n"),
            self.errors
        );
    }

    /// (sent?, message) for each message in the trace, in order.
    pub fn trace(&self) -> Vec<(bool, String)> {
        let mut out = Vec::new();
        for block in self
            .messages
            .split("----------------------------------------------- ")
            .skip(1)
        {
            let mut lines = block.splitn(3, '\n');
            let _time = lines.next();
            let kind = lines.next().unwrap_or("");
            let body = lines.next().unwrap_or("").trim_start_matches(['\r', '\n']);
            // SIPp logs bare LF line ends; make them the CRLF that went on the wire.
            let body = body.trim_end().replace("\r\n", "\n").replace('\n', "\r\n") + "\r\n";
            out.push((kind.contains(" sent "), body));
        }
        out
    }

    pub fn received(&self) -> Vec<String> {
        self.trace()
            .into_iter()
            .filter(|(sent, _)| !sent)
            .map(|(_, m)| m)
            .collect()
    }

    pub fn sent(&self) -> Vec<String> {
        self.trace()
            .into_iter()
            .filter(|(sent, _)| *sent)
            .map(|(_, m)| m)
            .collect()
    }

    /// Status codes of the responses received, in order, without `100 Trying` (hop by hop,
    /// and only sent when the answer takes a while).
    pub fn received_statuses(&self) -> Vec<u16> {
        self.received()
            .iter()
            .filter_map(|m| status_code(m))
            .filter(|c| *c != 100)
            .collect()
    }

    /// The first response received with this status.
    pub fn received_status(&self, code: u16) -> Option<String> {
        self.received()
            .into_iter()
            .find(|m| status_code(m) == Some(code))
    }

    /// The first request received with this method.
    pub fn received_request(&self, method: &str) -> Option<String> {
        self.received()
            .into_iter()
            .find(|m| m.starts_with(&format!("{method} ")))
    }

    /// The final status of the (last) INVITE transaction.
    pub fn invite_final_status(&self) -> u16 {
        self.received()
            .iter()
            .rev()
            .filter(|m| m.contains(" INVITE\r\n"))
            .filter_map(|m| status_code(m))
            .find(|c| *c >= 200)
            .unwrap_or_else(|| panic!("no final response to an INVITE in SIPp {}", self.name))
    }

    /// The Call-ID of the call SIPp placed.
    pub fn call_id(&self) -> String {
        self.sent()
            .iter()
            .find_map(|m| {
                m.lines()
                    .find_map(|l| l.strip_prefix("Call-ID: "))
                    .map(str::to_owned)
            })
            .unwrap_or_else(|| panic!("SIPp {} sent nothing", self.name))
    }
}

pub fn status_code(message: &str) -> Option<u16> {
    message.strip_prefix("SIP/2.0 ")?.get(..3)?.parse().ok()
}

/// The version field of an SDP body's `o=` line.
pub fn sdp_origin_version(message: &str) -> u64 {
    message
        .lines()
        .find_map(|l| l.strip_prefix("o="))
        .and_then(|o| o.split(' ').nth(2)?.parse().ok())
        .unwrap_or_else(|| panic!("no o= line in {message}"))
}

pub fn free_udp_port(ip: IpAddr) -> u16 {
    UdpSocket::bind((ip, 0))
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A queues file with one queue, `12319-intake` (Chinese and English), that overflows to
/// `overflow` after `max_wait` seconds and tells waiting callers where they stand every second.
pub fn intake_queue(max_wait: u64, overflow: &str) -> String {
    format!(
        "service_level_secs = 20\n\n[[queue]]\nname = \"12319-intake\"\nlanguages = [\"zh\", \"en\"]\n\
         ring_timeout_secs = 15\nmax_wait_secs = {max_wait}\nmax_length = 10\noverflow = \"{overflow}\"\n\
         music_on_hold = \"hold_music\"\nwrap_up_secs = 10\nannounce_every_secs = 1\n"
    )
}

/// An even port with the three above it free: SIPp's RTP, RTCP and echo ports (`-mp`).
pub fn free_media_ports(ip: IpAddr) -> u16 {
    for _ in 0..100 {
        let port = free_udp_port(ip);
        if !port.is_multiple_of(2) || port > 65_530 {
            continue;
        }
        let held: Vec<_> = (1..4).map(|k| UdpSocket::bind((ip, port + k))).collect();
        if held.iter().all(Result::is_ok) {
            return port;
        }
    }
    panic!("no four free UDP ports in a row on {ip}");
}

/// `name=value` from a log line (value up to the next space).
pub fn field<'a>(line: &'a str, name: &str) -> &'a str {
    let start = line
        .find(&format!(" {name}="))
        .unwrap_or_else(|| panic!("no {name}= in {line}"))
        + name.len()
        + 2;
    line[start..].split(' ').next().unwrap_or("")
}

// =============================================================================================
// HTTP: what a supervisor sees
// =============================================================================================

impl Api {
    /// The call record of `call_id` once it has ended (records are written asynchronously).
    pub async fn ended_call(&self, call_id: &str) -> Value {
        let deadline = Instant::now() + RECORD_TIMEOUT;
        loop {
            let (status, page) = self.get("/api/v1/calls?per_page=200").await;
            assert_eq!(status, StatusCode::OK, "{page}");
            let call = page["items"]
                .as_array()
                .unwrap()
                .iter()
                .find(|c| c["call_id"] == call_id)
                .cloned();
            match call {
                Some(c) if c["ended_at"].is_string() => return c,
                other => assert!(
                    Instant::now() < deadline,
                    "call {call_id} has no ended record after {RECORD_TIMEOUT:?}: {other:?}"
                ),
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The first call on record that is answered and not ended.
    pub async fn call_in_progress(&self) -> Value {
        let deadline = Instant::now() + RECORD_TIMEOUT;
        loop {
            let (_, page) = self.get("/api/v1/calls").await;
            let talking = page["items"].as_array().and_then(|calls| {
                calls
                    .iter()
                    .find(|c| c["answered_at"].is_string() && c["ended_at"].is_null())
                    .cloned()
            });
            if let Some(call) = talking {
                return call;
            }
            assert!(Instant::now() < deadline, "no call was answered: {page}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// The call's recording, downloaded as a supervisor plays it.
    pub async fn recording(&self, call: &Value) -> Recording {
        assert!(call["recording_path"].is_string(), "no recording: {call}");
        let res = self
            .http
            .get(format!(
                "{}/api/v1/calls/{}/recording",
                self.base, call["id"]
            ))
            .bearer_auth(&self.token)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::OK);
        assert_eq!(res.headers()["content-type"], "audio/wav");
        Recording::parse(&res.bytes().await.unwrap())
    }

    /// Waits until a gauge reads `value` (it is set just after the call record is sent).
    pub async fn wait_for_metric(&self, series: &str, value: f64) {
        let deadline = Instant::now() + Duration::from_secs(2);
        loop {
            let now = metric(&self.metrics().await, series);
            if now == Some(value) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{series} is {now:?}, not {value}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    pub async fn metrics(&self) -> String {
        let res = self
            .http
            .get(format!("{}/metrics", self.base))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::OK);
        res.text().await.unwrap()
    }
}

/// The value of one Prometheus sample (`name{labels}` exactly as rendered), if present.
pub fn metric(text: &str, series: &str) -> Option<f64> {
    text.lines().find_map(|l| {
        l.strip_prefix(series)?
            .strip_prefix(' ')?
            .trim()
            .parse()
            .ok()
    })
}

// =============================================================================================
// Recordings
// =============================================================================================

/// A call recording: left channel the caller, right channel the hotline.
pub struct Recording {
    pub caller: Vec<i16>,
    pub hotline: Vec<i16>,
}

impl Recording {
    /// Parses a WAV; it must be 8 kHz 16-bit stereo.
    pub fn parse(bytes: &[u8]) -> Recording {
        let mut reader = hound::WavReader::new(Cursor::new(bytes)).expect("a WAV file");
        let spec = reader.spec();
        assert_eq!(
            (
                spec.channels,
                spec.sample_rate,
                spec.bits_per_sample,
                spec.sample_format
            ),
            (2, 8000, 16, hound::SampleFormat::Int),
            "recording format"
        );
        let samples: Vec<i16> = reader
            .samples::<i16>()
            .collect::<Result<_, _>>()
            .expect("every sample reads");
        Recording {
            caller: samples.iter().step_by(2).copied().collect(),
            hotline: samples.iter().skip(1).step_by(2).copied().collect(),
        }
    }

    /// Samples per channel.
    pub fn samples(&self) -> usize {
        self.caller.len()
    }

    pub fn duration_ms(&self) -> f64 {
        self.samples() as f64 / 8.0
    }

    /// The recording is as long as the call record says the call was, within 100 ms.
    #[track_caller]
    pub fn assert_lasts(&self, call_ms: i64) {
        let diff = self.duration_ms() - call_ms as f64;
        assert!(
            diff.abs() <= 100.0,
            "recording lasts {:.0} ms, the call {call_ms} ms",
            self.duration_ms()
        );
    }

    pub fn caller(&self, from_s: f64, to_s: f64) -> &[i16] {
        span(&self.caller, from_s, to_s)
    }
}

#[track_caller]
pub fn span(samples: &[i16], from_s: f64, to_s: f64) -> &[i16] {
    let (a, b) = ((from_s * 8000.0) as usize, (to_s * 8000.0) as usize);
    assert!(
        b <= samples.len(),
        "recording has {} samples, wanted up to {b}",
        samples.len()
    );
    &samples[a..b]
}

pub fn rms(samples: &[i16]) -> f64 {
    let sum: f64 = samples.iter().map(|&s| f64::from(s) * f64::from(s)).sum();
    (sum / samples.len().max(1) as f64).sqrt()
}

/// The greeting is on `channel`: a 440 Hz tone that starts within half a second, lasts one
/// second, and is followed by silence. Returns where it starts, in samples.
#[track_caller]
pub fn assert_greeting(channel: &[i16], what: &str) -> usize {
    let start = onset(channel, 4000).unwrap_or_else(|| panic!("{what}: no greeting"));
    assert!(
        start < 4000,
        "{what}: the greeting starts {} ms in",
        start / 8
    );
    // From 50 to 950 ms into it: mostly loud, and at 440 Hz where it is.
    let (hz, loud) = tone(span(
        channel,
        start as f64 / 8000.0 + 0.05,
        start as f64 / 8000.0 + 0.95,
    ));
    assert!(
        loud >= 0.8,
        "{what}: only {:.0} % of the greeting's second is loud",
        loud * 100.0
    );
    assert!(
        (420.0..460.0).contains(&hz),
        "{what}: the greeting is at {hz:.0} Hz, not 440 Hz"
    );
    let after = rms(span(
        channel,
        start as f64 / 8000.0 + 1.1,
        start as f64 / 8000.0 + 1.5,
    ));
    assert!(
        after < 100.0,
        "{what}: RMS {after:.0} after the greeting's second"
    );
    start
}

/// Frequency (from zero crossings) of the loud 20-ms frames, and the share of frames that are
/// loud: lost or late packets are silent frames, which must not be taken for a lower pitch.
pub fn tone(samples: &[i16]) -> (f64, f64) {
    let frames: Vec<&[i16]> = samples.chunks_exact(160).collect();
    let loud: Vec<&&[i16]> = frames.iter().filter(|f| rms(f) > 2000.0).collect();
    let crossings: usize = loud
        .iter()
        .map(|f| f.windows(2).filter(|w| (w[0] < 0) != (w[1] < 0)).count())
        .sum();
    let seconds = loud.len() as f64 * 159.0 / 8000.0;
    (
        crossings as f64 / 2.0 / seconds.max(f64::MIN_POSITIVE),
        loud.len() as f64 / frames.len().max(1) as f64,
    )
}

/// Index of the first sample louder than `threshold`.
pub fn onset(samples: &[i16], threshold: i16) -> Option<usize> {
    samples
        .iter()
        .position(|s| s.unsigned_abs() > threshold.unsigned_abs())
}

// =============================================================================================
// Prompts as tones
// =============================================================================================

/// Every prompt name of the shipped catalogue, each a 240-ms tone at a frequency of its own
/// followed by 60 ms of silence, so the recording's hotline channel can be read back as the
/// list of prompts played ([`ToneMap::heard`]).
pub struct ToneMap {
    /// (name, frequency in Hz), 30 Hz apart.
    pub tones: Vec<(String, f64)>,
}

/// Each test prompt: tone, then silence (so that back-to-back prompts stay apart).
const TONE_MS: usize = 240;
const GAP_MS: usize = 60;

impl ToneMap {
    /// The names in `config/prompts.toml`, sorted, from 400 Hz up.
    pub fn shipped() -> ToneMap {
        let text = std::fs::read_to_string(format!("{ROOT}/config/prompts.toml")).unwrap();
        let doc: toml::Table = toml::from_str(&text).unwrap();
        let mut names: Vec<String> = doc["prompt"].as_table().unwrap().keys().cloned().collect();
        names.sort();
        let tones = names
            .into_iter()
            .enumerate()
            .map(|(i, n)| (n, 400.0 + 30.0 * i as f64))
            .collect::<Vec<_>>();
        assert!(
            tones.last().unwrap().1 < 3400.0,
            "too many prompts for the band"
        );
        ToneMap { tones }
    }

    /// Writes `<dir>/<lang>/<name>.wav` for both languages (8 kHz mono).
    pub fn write(&self, dir: &Path) {
        let spec = hound::WavSpec {
            channels: 1,
            sample_rate: 8000,
            bits_per_sample: 16,
            sample_format: hound::SampleFormat::Int,
        };
        for lang in ["zh", "en"] {
            for (name, hz) in &self.tones {
                let path = dir.join(lang).join(format!("{name}.wav"));
                std::fs::create_dir_all(path.parent().unwrap()).unwrap();
                let mut w = hound::WavWriter::create(&path, spec).unwrap();
                for i in 0..(TONE_MS * 8) {
                    let t = i as f64 / 8000.0;
                    w.write_sample(((t * hz * std::f64::consts::TAU).sin() * 12_000.0) as i16)
                        .unwrap();
                }
                for _ in 0..(GAP_MS * 8) {
                    w.write_sample(0i16).unwrap();
                }
                w.finalize().unwrap();
            }
        }
    }

    /// The prompts played on `channel`, in order: each run of loud 20-ms frames of one
    /// frequency (at least `min_frames` long, so a prompt cut by a key after 60 ms still
    /// counts), named by that frequency; a run at no prompt's frequency is `?<Hz>`. A prompt cut
    /// by a key is followed by the next without a gap: the change of pitch splits them.
    pub fn heard(&self, channel: &[i16], min_frames: usize) -> Vec<String> {
        self.runs(channel, min_frames)
            .into_iter()
            .map(|(_, hz)| self.name(hz))
            .collect()
    }

    /// The name of the prompt at `hz`.
    pub fn name(&self, hz: f64) -> String {
        self.tones
            .iter()
            .find(|(_, f)| (hz - f).abs() < 12.0)
            .map(|(n, _)| n.clone())
            .unwrap_or_else(|| format!("?{hz:.0}"))
    }

    /// (first sample, frequency) of each run of loud frames of one frequency.
    pub fn runs(&self, channel: &[i16], min_frames: usize) -> Vec<(usize, f64)> {
        let mut out = Vec::new();
        // (start frame, frequencies of its frames)
        let mut run: Option<(usize, Vec<f64>)> = None;
        let flush = |run: &mut Option<(usize, Vec<f64>)>, out: &mut Vec<(usize, f64)>| {
            if let Some((start, freqs)) = run.take()
                && freqs.len() >= min_frames
            {
                let mut sorted = freqs.clone();
                sorted.sort_by(f64::total_cmp);
                out.push((start * 160, sorted[sorted.len() / 2]));
            }
        };
        for (i, frame) in channel.chunks_exact(160).enumerate() {
            let hz = (rms(frame) > 1500.0).then(|| frame_pitch(frame)).flatten();
            match (hz, run.as_mut()) {
                (Some(hz), Some((_, freqs))) if (hz - freqs[freqs.len() / 2]).abs() < 8.0 => {
                    freqs.push(hz)
                }
                (Some(hz), _) => {
                    flush(&mut run, &mut out);
                    run = Some((i, vec![hz]));
                }
                (None, _) => flush(&mut run, &mut out),
            }
        }
        flush(&mut run, &mut out);
        out
    }
}

/// The pitch of one frame of a pure tone, from its first and last zero crossing (linearly
/// interpolated, so within a hertz or two); None with fewer than three crossings.
fn frame_pitch(frame: &[i16]) -> Option<f64> {
    let crossings: Vec<f64> = frame
        .windows(2)
        .enumerate()
        .filter(|(_, w)| (w[0] < 0) != (w[1] < 0))
        .map(|(i, w)| {
            let (a, b) = (f64::from(w[0]), f64::from(w[1]));
            i as f64 + a / (a - b)
        })
        .collect();
    if crossings.len() < 3 {
        return None;
    }
    let span = crossings[crossings.len() - 1] - crossings[0];
    Some((crossings.len() - 1) as f64 / 2.0 / (span / 8000.0))
}

/// The ticket status read back for a keyed number, as prompt names: `ticket_is`, the digits,
/// `ticket_status_is`, `status/<code>`.
pub fn status_read_back(keyed: &str, status: &str) -> Vec<String> {
    let mut names = vec!["ticket_is".to_owned()];
    names.extend(keyed.chars().map(|d| format!("digits/{d}")));
    names.push("ticket_status_is".to_owned());
    names.push(format!("status/{status}"));
    names
}

/// What an IVR caller does after the call is answered.
#[derive(Debug, Clone)]
pub enum Step {
    /// Waits.
    Pause(u64),
    /// Presses a key (RFC 4733, 140 ms, then 200 ms of nothing).
    Key(char),
    /// Starts talking: SIPp's 7-second A-law speech capture, played in the background.
    Speak,
    /// Starts playing this capture (see [`speech_pcap`]) in the background.
    Play(PathBuf),
}

/// Writes `wav` (8 kHz mono, 16-bit) as a capture SIPp can play: G.711 A-law RTP, 20 ms a
/// packet, in Ethernet/IPv4/UDP frames (SIPp rewrites the addresses and ports). Returns how long
/// it plays.
pub fn speech_pcap(wav: &Path, out: &Path) -> Duration {
    let mut reader = hound::WavReader::open(wav).unwrap();
    let spec = reader.spec();
    assert_eq!(
        (spec.channels, spec.sample_rate),
        (1, 8000),
        "{}",
        wav.display()
    );
    let pcm: Vec<i16> = reader.samples::<i16>().map(Result::unwrap).collect();
    // The classic pcap header: magic, version 2.4, no zone, snap length, Ethernet.
    let mut file = 0xa1b2_c3d4u32.to_le_bytes().to_vec();
    file.extend_from_slice(&2u16.to_le_bytes());
    file.extend_from_slice(&4u16.to_le_bytes());
    for word in [0u32, 0, 65_535, 1] {
        file.extend_from_slice(&word.to_le_bytes());
    }
    let mut n = 0;
    for (i, chunk) in pcm.chunks(160).enumerate() {
        let mut payload: Vec<u8> = chunk
            .iter()
            .map(|&x| sip_gateway::g711::alaw_encode(x))
            .collect();
        payload.resize(160, 0xd5);
        let mut rtp = vec![0x80, if i == 0 { 0x88 } else { 0x08 }];
        rtp.extend_from_slice(&(i as u16).to_be_bytes());
        rtp.extend_from_slice(&((i as u32) * 160).to_be_bytes());
        rtp.extend_from_slice(&0x4854_4c31u32.to_be_bytes());
        rtp.extend_from_slice(&payload);
        let udp_len = 8 + rtp.len();
        let ip_len = 20 + udp_len;
        let mut frame = vec![0, 0, 0, 0, 0, 2, 0, 0, 0, 0, 0, 1, 0x08, 0x00];
        frame.extend_from_slice(&[0x45, 0]);
        frame.extend_from_slice(&(ip_len as u16).to_be_bytes());
        frame.extend_from_slice(&[0, 0, 0, 0, 64, 17, 0, 0, 127, 0, 0, 1, 127, 0, 0, 1]);
        frame.extend_from_slice(&6000u16.to_be_bytes());
        frame.extend_from_slice(&6002u16.to_be_bytes());
        frame.extend_from_slice(&(udp_len as u16).to_be_bytes());
        frame.extend_from_slice(&[0, 0]);
        frame.extend_from_slice(&rtp);
        let at_us = i as u64 * 20_000;
        file.extend_from_slice(&((at_us / 1_000_000) as u32).to_le_bytes());
        file.extend_from_slice(&((at_us % 1_000_000) as u32).to_le_bytes());
        file.extend_from_slice(&(frame.len() as u32).to_le_bytes());
        file.extend_from_slice(&(frame.len() as u32).to_le_bytes());
        file.extend_from_slice(&frame);
        n += 1;
    }
    std::fs::write(out, file).unwrap();
    Duration::from_millis(n * 20)
}

/// Who ends an IVR call.
#[derive(Debug, Clone, Copy)]
pub enum End {
    /// The caller sends BYE.
    CallerHangsUp,
    /// The hotline must send BYE within this many milliseconds; the caller answers 200.
    HotlineHangsUp {
        /// Longest wait for it.
        within_ms: u64,
    },
    /// The hotline transfers the caller: the caller's side (a carrier, an SBC) accepts the
    /// REFER with 202, reports the new call answered (NOTIFY, `SIP/2.0 200 OK`), and the
    /// hotline must then hang up.
    Referred,
    /// The caller's side refuses the REFER (603); the hotline must carry on with the caller and
    /// hang up within this many milliseconds.
    ReferRefused {
        /// Longest wait for the hotline's BYE.
        within_ms: u64,
    },
}

const CALLER_BYE: &str = r#"  <send retrans="500">
    <![CDATA[
      BYE [next_url] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      From: "13900001234" <sip:13900001234@[local_ip]:[local_port]>;tag=[pid]SIPpTag00[call_number]
      To: <sip:[service]@[remote_ip]:[remote_port]>[peer_tag_param]
      Call-ID: [call_id]
      CSeq: 2 BYE
      Max-Forwards: 70
      Content-Length: 0

    ]]>
  </send>
  <recv response="200" crlf="true"/>
"#;

/// The hotline's BYE, expected within `within_ms`, answered 200.
fn hotline_bye(within_ms: u64) -> String {
    format!(
        "  <recv request=\"BYE\" timeout=\"{within_ms}\"/>\n{}",
        reply("200 OK")
    )
}

/// A REFER from the hotline, expected within 15 s.
const RECV_REFER: &str = "  <recv request=\"REFER\" timeout=\"15000\"/>\n";

/// The caller side accepting a transfer (202) and reporting the new call answered (NOTIFY
/// with `SIP/2.0 200 OK`); the hotline's BYE follows.
fn refer_accepted() -> String {
    format!("{RECV_REFER}{}{NOTIFY_ANSWERED}", reply("202 Accepted"))
}

/// The caller side refusing a transfer.
fn refer_refused() -> String {
    format!("{RECV_REFER}{}", reply("603 Decline"))
}

/// A response to the request SIPp received last, without a body.
fn reply(status: &str) -> String {
    format!(
        "  <send>\n    <![CDATA[\n      SIP/2.0 {status}\n      [last_Via:]\n      [last_From:]\n      \
         [last_To:]\n      [last_Call-ID:]\n      [last_CSeq:]\n      Content-Length: 0\n\n    ]]>\n  </send>\n"
    )
}

const NOTIFY_ANSWERED: &str = r#"  <pause milliseconds="300"/>
  <send retrans="500">
    <![CDATA[
      NOTIFY [next_url] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      From: "13900001234" <sip:13900001234@[local_ip]:[local_port]>;tag=[pid]SIPpTag00[call_number]
      To: <sip:[service]@[remote_ip]:[remote_port]>[peer_tag_param]
      Call-ID: [call_id]
      CSeq: 2 NOTIFY
      Max-Forwards: 70
      Event: refer
      Subscription-State: terminated;reason=noresource
      Content-Type: message/sipfrag
      Content-Length: [len]

      SIP/2.0 200 OK
    ]]>
  </send>
  <recv response="200"/>
"#;
