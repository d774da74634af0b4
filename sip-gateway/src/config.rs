//! `[sip]` in `hotline.toml`: where the gateway listens, which trunks may call it, media and
//! timer settings. Every key has a default so a bare `[sip]` runs a local test line.

use std::net::{IpAddr, SocketAddr};
use std::ops::RangeInclusive;
use std::path::PathBuf;
use std::time::Duration;

use ipnet::IpNet;
use serde::Deserialize;

use crate::g711::Codec;

/// The gateway's settings, as written in `[sip]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GatewayConfig {
    /// Address for SIP over UDP and TCP (`HOTLINE_SIP_LISTEN`).
    pub listen: String,
    /// Address for SIP over TLS; off when empty.
    pub tls_listen: String,
    /// PEM certificate chain for TLS.
    pub tls_cert: Option<PathBuf>,
    /// PEM private key for TLS.
    pub tls_key: Option<PathBuf>,
    /// The address written into SDP and Contact when the listen address is a wildcard or
    /// behind NAT; empty: the listen address, or the first non-loopback interface.
    pub public_ip: Option<IpAddr>,
    /// RTP ports, `"20000-29999"`; each call takes an even port and the odd one above it for RTCP.
    pub rtp_ports: String,
    /// Calls held at once; the next INVITE gets 503 with `Retry-After`.
    pub max_calls: usize,
    /// The `Retry-After` seconds sent with that 503.
    pub retry_after_seconds: u32,
    /// Codecs by preference: `PCMA` and/or `PCMU`.
    pub codecs: Vec<String>,
    /// A call without any RTP from the caller for this long is torn down (0: never).
    pub no_rtp_seconds: u64,
    /// A call is ended by the hotline after this long (protects against stuck calls).
    pub max_call_minutes: u64,
    /// Session interval (RFC 4028) asked for when the caller proposes none but supports timers.
    pub session_expires: u32,
    /// The smallest session interval accepted; smaller proposals get 422.
    pub min_se: u32,
    /// Receive jitter buffer depth in 20-ms frames.
    pub jitter_frames: usize,
    /// Delay between 180 Ringing and 200 OK, in milliseconds.
    pub answer_delay_ms: u64,
    /// A caller's message (voicemail) ends after this many seconds of silence (0: only `#`,
    /// hang-up or the flow's maximum length end it).
    pub message_silence_seconds: u64,
    /// Record answered calls (stereo WAV under `<data_dir>/recordings/`).
    pub record: bool,
    /// Who may send calls: carrier trunks, SBCs, desk phones.
    #[serde(rename = "trunk")]
    pub trunks: Vec<TrunkConfig>,
}

impl Default for GatewayConfig {
    fn default() -> Self {
        GatewayConfig {
            listen: "0.0.0.0:5060".into(),
            tls_listen: String::new(),
            tls_cert: None,
            tls_key: None,
            public_ip: None,
            rtp_ports: "20000-29999".into(),
            max_calls: 1000,
            retry_after_seconds: 30,
            codecs: vec!["PCMA".into(), "PCMU".into()],
            no_rtp_seconds: 30,
            max_call_minutes: 120,
            session_expires: 1800,
            min_se: 90,
            jitter_frames: 3,
            answer_delay_ms: 0,
            message_silence_seconds: 6,
            record: true,
            trunks: Vec::new(),
        }
    }
}

/// One source of calls: addresses it may come from and/or digest credentials it must present.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrunkConfig {
    /// A name for logs and call records (`carrier-a`, `sbc`, `desk`).
    pub name: String,
    /// Source networks allowed (`"10.1.2.0/24"`, `"127.0.0.1"`); empty: any source with valid
    /// credentials.
    #[serde(default)]
    pub addresses: Vec<String>,
    /// Digest user name; when set, INVITEs must authenticate.
    pub username: Option<String>,
    /// Digest password.
    pub password: Option<String>,
}

/// Why the `[sip]` section cannot be used; each names the key.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ConfigError {
    /// A key holds a value that does not parse.
    #[error("sip.{key}: {problem}")]
    Invalid {
        /// The key.
        key: String,
        /// What is wrong and what is expected.
        problem: String,
    },
}

fn invalid(key: impl Into<String>, problem: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        key: key.into(),
        problem: problem.into(),
    }
}

/// A trunk after its addresses are parsed.
#[derive(Debug, Clone)]
pub struct Trunk {
    /// Its name.
    pub name: String,
    /// Allowed source networks (empty: any).
    pub networks: Vec<IpNet>,
    /// Digest credentials (user, password), if required.
    pub credentials: Option<(String, String)>,
}

/// The `[sip]` section checked and turned into the values the gateway runs on.
#[derive(Debug, Clone)]
pub struct Settings {
    /// UDP and TCP address.
    pub listen: SocketAddr,
    /// TLS address with certificate and key files.
    pub tls: Option<(SocketAddr, PathBuf, PathBuf)>,
    /// Address for SDP and Contact, if configured.
    pub public_ip: Option<IpAddr>,
    /// RTP port range.
    pub rtp_ports: RangeInclusive<u16>,
    /// Concurrent call limit.
    pub max_calls: usize,
    /// `Retry-After` with 503.
    pub retry_after: u32,
    /// Codec preference.
    pub codecs: Vec<Codec>,
    /// No-RTP timeout (None: off).
    pub no_rtp: Option<Duration>,
    /// Longest call.
    pub max_call: Duration,
    /// RFC 4028 session interval we propose.
    pub session_expires: u32,
    /// RFC 4028 smallest interval.
    pub min_se: u32,
    /// Jitter buffer depth.
    pub jitter_frames: usize,
    /// 180 → 200 delay.
    pub answer_delay: Duration,
    /// Silence that ends a caller's message.
    pub message_silence: Option<Duration>,
    /// Whether to record.
    pub record: bool,
    /// Who may call.
    pub trunks: Vec<Trunk>,
}

impl GatewayConfig {
    /// Checks every value; the error names the key to fix.
    pub fn settings(&self) -> Result<Settings, ConfigError> {
        let listen: SocketAddr = self.listen.parse().map_err(|_| {
            invalid(
                "listen",
                format!("`{}` is not an address like 0.0.0.0:5060", self.listen),
            )
        })?;
        let tls = if self.tls_listen.is_empty() {
            None
        } else {
            let addr: SocketAddr = self.tls_listen.parse().map_err(|_| {
                invalid(
                    "tls_listen",
                    format!("`{}` is not an address like 0.0.0.0:5061", self.tls_listen),
                )
            })?;
            let cert = self
                .tls_cert
                .clone()
                .ok_or_else(|| invalid("tls_cert", "required with tls_listen"))?;
            let key = self
                .tls_key
                .clone()
                .ok_or_else(|| invalid("tls_key", "required with tls_listen"))?;
            Some((addr, cert, key))
        };
        let rtp_ports = parse_port_range(&self.rtp_ports)?;
        if self.max_calls == 0 {
            return Err(invalid("max_calls", "must be at least 1"));
        }
        let mut codecs = Vec::new();
        for name in &self.codecs {
            let codec = Codec::from_name(name)
                .ok_or_else(|| invalid("codecs", format!("`{name}` is not PCMA or PCMU")))?;
            if !codecs.contains(&codec) {
                codecs.push(codec);
            }
        }
        if codecs.is_empty() {
            return Err(invalid("codecs", "list at least one of PCMA, PCMU"));
        }
        if self.min_se < 90 {
            return Err(invalid("min_se", "RFC 4028 requires at least 90 seconds"));
        }
        if self.session_expires < self.min_se {
            return Err(invalid("session_expires", "must not be below min_se"));
        }
        if !(1..=50).contains(&self.jitter_frames) {
            return Err(invalid("jitter_frames", "must be 1 to 50 frames of 20 ms"));
        }
        if self.max_call_minutes == 0 {
            return Err(invalid("max_call_minutes", "must be at least 1"));
        }
        let mut trunks = Vec::new();
        for (i, t) in self.trunks.iter().enumerate() {
            let key = format!("trunk[{i}] ({})", t.name);
            let mut networks = Vec::new();
            for a in &t.addresses {
                let net = a
                    .parse::<IpNet>()
                    .or_else(|_| a.parse::<IpAddr>().map(IpNet::from))
                    .map_err(|_| {
                        invalid(
                            format!("{key}.addresses"),
                            format!("`{a}` is not an address or network"),
                        )
                    })?;
                networks.push(net);
            }
            let credentials = match (&t.username, &t.password) {
                (Some(u), Some(p)) => Some((u.clone(), p.clone())),
                (None, None) => None,
                _ => return Err(invalid(key, "username and password go together")),
            };
            if networks.is_empty() && credentials.is_none() {
                return Err(invalid(
                    key,
                    "give addresses, credentials or both: a trunk open to anyone would make the hotline a toll-fraud relay",
                ));
            }
            trunks.push(Trunk {
                name: t.name.clone(),
                networks,
                credentials,
            });
        }
        Ok(Settings {
            listen,
            tls,
            public_ip: self.public_ip,
            rtp_ports,
            max_calls: self.max_calls,
            retry_after: self.retry_after_seconds,
            codecs,
            no_rtp: (self.no_rtp_seconds > 0).then(|| Duration::from_secs(self.no_rtp_seconds)),
            max_call: Duration::from_secs(self.max_call_minutes * 60),
            session_expires: self.session_expires,
            min_se: self.min_se,
            jitter_frames: self.jitter_frames,
            answer_delay: Duration::from_millis(self.answer_delay_ms),
            message_silence: (self.message_silence_seconds > 0)
                .then(|| Duration::from_secs(self.message_silence_seconds)),
            record: self.record,
            trunks,
        })
    }
}

fn parse_port_range(text: &str) -> Result<RangeInclusive<u16>, ConfigError> {
    let bad = || {
        invalid(
            "rtp_ports",
            format!("`{text}` is not a range like 20000-29999"),
        )
    };
    let (lo, hi) = text.split_once('-').ok_or_else(bad)?;
    let lo: u16 = lo.trim().parse().map_err(|_| bad())?;
    let hi: u16 = hi.trim().parse().map_err(|_| bad())?;
    if lo < 1024 || hi < lo.saturating_add(3) {
        return Err(invalid(
            "rtp_ports",
            "need at least two port pairs at or above 1024",
        ));
    }
    Ok(lo..=hi)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(toml_text: &str) -> Result<Settings, ConfigError> {
        let c: GatewayConfig = toml::from_str(toml_text).expect("toml");
        c.settings()
    }

    #[test]
    fn defaults_are_usable() {
        let s = GatewayConfig::default().settings().unwrap();
        assert_eq!(s.rtp_ports, 20000..=29999);
        assert_eq!(s.codecs, vec![Codec::Pcma, Codec::Pcmu]);
        assert_eq!(s.no_rtp, Some(Duration::from_secs(30)));
    }

    #[test]
    fn trunk_without_any_check_is_refused() {
        let err = cfg("[[trunk]]\nname = \"open\"\n").unwrap_err();
        assert!(err.to_string().contains("toll-fraud"), "{err}");
    }

    #[test]
    fn trunk_addresses_accept_hosts_and_networks() {
        let s =
            cfg("[[trunk]]\nname = \"c\"\naddresses = [\"10.0.0.0/8\", \"127.0.0.1\"]\n").unwrap();
        assert_eq!(s.trunks[0].networks.len(), 2);
        assert!(s.trunks[0].networks[1].contains(&"127.0.0.1".parse::<IpAddr>().unwrap()));
        let err = cfg("[[trunk]]\nname = \"c\"\naddresses = [\"ten\"]\n").unwrap_err();
        assert!(err.to_string().contains("`ten`"), "{err}");
    }

    #[test]
    fn bad_values_name_their_key() {
        assert!(
            cfg("rtp_ports = \"9-3\"")
                .unwrap_err()
                .to_string()
                .starts_with("sip.rtp_ports")
        );
        assert!(
            cfg("codecs = [\"G729\"]")
                .unwrap_err()
                .to_string()
                .contains("G729")
        );
        assert!(
            cfg("min_se = 30")
                .unwrap_err()
                .to_string()
                .starts_with("sip.min_se")
        );
        assert!(
            cfg("listen = \"nowhere\"")
                .unwrap_err()
                .to_string()
                .starts_with("sip.listen")
        );
    }
}
