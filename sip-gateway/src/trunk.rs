//! Who may send calls: the configured trunks (carrier, SBC, desk phones), matched by source
//! address and/or HTTP digest credentials (RFC 3261 §22, RFC 2617). Anything else is refused,
//! because a hotline that accepts INVITEs from anywhere becomes a toll-fraud relay.
//!
//! Sans-IO: [`Admission::check`] takes the source, the method and the raw `Authorization` value
//! with the current time, and returns a [`Verdict`]. Nonces are stateless (time + MAC) so
//! several nodes behind a load balancer accept each other's challenges.

use std::net::IpAddr;

use md5::Md5;
use sha2::Digest as _;
use sha2::Sha256;

use crate::config::Trunk;

/// How long a nonce stays good, in seconds; older ones get a fresh challenge with `stale=true`.
pub const NONCE_LIFETIME: u64 = 300;

/// The outcome of checking an INVITE's origin.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Accepted; the call belongs to this trunk.
    Admit {
        /// Trunk name, for the call record.
        trunk: String,
    },
    /// Credentials needed or stale: answer 401 with this `WWW-Authenticate` value.
    Challenge {
        /// The header value.
        www_authenticate: String,
    },
    /// Refused: answer 403 and log the reason.
    Refuse {
        /// Why, for the log (never sent to the peer in detail).
        reason: &'static str,
    },
}

/// The trunk table with the secret that signs nonces.
#[derive(Debug, Clone)]
pub struct Admission {
    trunks: Vec<Trunk>,
    realm: String,
    secret: [u8; 32],
}

impl Admission {
    /// Builds the table; `secret` signs nonces (random per start, or shared across nodes).
    pub fn new(trunks: Vec<Trunk>, realm: impl Into<String>, secret: [u8; 32]) -> Self {
        Admission {
            trunks,
            realm: realm.into(),
            secret,
        }
    }

    /// Whether no trunk is configured (the gateway then refuses every call and says so at start).
    pub fn is_empty(&self) -> bool {
        self.trunks.is_empty()
    }

    /// Checks one request from `source`. `authorization` is the raw `Authorization` header value.
    pub fn check(
        &self,
        source: IpAddr,
        method: &str,
        authorization: Option<&str>,
        now_secs: u64,
    ) -> Verdict {
        let source = canonical(source);
        let candidates: Vec<&Trunk> = self
            .trunks
            .iter()
            .filter(|t| t.networks.is_empty() || t.networks.iter().any(|n| n.contains(&source)))
            .collect();
        if candidates.is_empty() {
            return Verdict::Refuse {
                reason: "source address is not on any trunk",
            };
        }
        if let Some(open) = candidates.iter().find(|t| t.credentials.is_none()) {
            return Verdict::Admit {
                trunk: open.name.clone(),
            };
        }
        let Some(raw) = authorization else {
            return self.challenge(now_secs, false);
        };
        let Some(auth) = DigestResponse::parse(raw) else {
            return Verdict::Refuse {
                reason: "malformed Authorization header",
            };
        };
        if auth.realm != self.realm {
            return self.challenge(now_secs, false);
        }
        match self.nonce_age(&auth.nonce, now_secs) {
            None => {
                return Verdict::Refuse {
                    reason: "forged nonce",
                };
            }
            Some(age) if age > NONCE_LIFETIME => return self.challenge(now_secs, true),
            Some(_) => {}
        }
        for trunk in candidates {
            let Some((user, password)) = &trunk.credentials else {
                continue;
            };
            if *user != auth.username {
                continue;
            }
            if auth.expected(password, method) == auth.response.to_ascii_lowercase() {
                return Verdict::Admit {
                    trunk: trunk.name.clone(),
                };
            }
            return Verdict::Refuse {
                reason: "wrong digest response",
            };
        }
        Verdict::Refuse {
            reason: "unknown digest user",
        }
    }

    fn challenge(&self, now_secs: u64, stale: bool) -> Verdict {
        let nonce = self.nonce(now_secs);
        let mut v = format!(
            "Digest realm=\"{}\", nonce=\"{nonce}\", algorithm=MD5, qop=\"auth\"",
            self.realm
        );
        if stale {
            v.push_str(", stale=true");
        }
        Verdict::Challenge {
            www_authenticate: v,
        }
    }

    /// `<issued-at hex>.<mac>`: stateless, verifiable by any node with the same secret.
    fn nonce(&self, now_secs: u64) -> String {
        let ts = format!("{now_secs:x}");
        format!("{ts}.{}", self.mac(&ts))
    }

    fn mac(&self, ts: &str) -> String {
        let mut h = Sha256::new();
        sha2::Digest::update(&mut h, self.secret);
        sha2::Digest::update(&mut h, ts.as_bytes());
        sha2::Digest::update(&mut h, self.realm.as_bytes());
        hex::encode(&sha2::Digest::finalize(h)[..12])
    }

    /// The nonce's age in seconds, or None when it was not issued by us.
    fn nonce_age(&self, nonce: &str, now_secs: u64) -> Option<u64> {
        let (ts, mac) = nonce.split_once('.')?;
        if mac != self.mac(ts) {
            return None;
        }
        let issued = u64::from_str_radix(ts, 16).ok()?;
        Some(now_secs.saturating_sub(issued))
    }
}

/// An IPv4-mapped IPv6 source (dual-stack sockets) is matched as IPv4.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
        v4 => v4,
    }
}

/// The parameters of a `Digest` Authorization header.
#[derive(Debug, Default)]
struct DigestResponse {
    username: String,
    realm: String,
    nonce: String,
    uri: String,
    response: String,
    qop: Option<String>,
    nc: Option<String>,
    cnonce: Option<String>,
}

impl DigestResponse {
    fn parse(raw: &str) -> Option<DigestResponse> {
        let rest = raw.trim();
        let rest = rest
            .strip_prefix("Digest")
            .or_else(|| rest.strip_prefix("digest"))?;
        let mut d = DigestResponse::default();
        for (key, value) in params(rest) {
            let value = value.to_string();
            match key.to_ascii_lowercase().as_str() {
                "username" => d.username = value,
                "realm" => d.realm = value,
                "nonce" => d.nonce = value,
                "uri" => d.uri = value,
                "response" => d.response = value,
                "qop" => d.qop = Some(value),
                "nc" => d.nc = Some(value),
                "cnonce" => d.cnonce = Some(value),
                "algorithm" if !value.eq_ignore_ascii_case("md5") => return None,
                _ => {}
            }
        }
        if d.username.is_empty() || d.nonce.is_empty() || d.uri.is_empty() || d.response.is_empty()
        {
            return None;
        }
        Some(d)
    }

    /// RFC 2617 §3.2.2.1 with MD5, with or without `qop=auth`.
    fn expected(&self, password: &str, method: &str) -> String {
        let ha1 = md5_hex(&format!("{}:{}:{password}", self.username, self.realm));
        let ha2 = md5_hex(&format!("{method}:{}", self.uri));
        match (&self.qop, &self.nc, &self.cnonce) {
            (Some(qop), Some(nc), Some(cnonce)) => {
                md5_hex(&format!("{ha1}:{}:{nc}:{cnonce}:{qop}:{ha2}", self.nonce))
            }
            _ => md5_hex(&format!("{ha1}:{}:{ha2}", self.nonce)),
        }
    }
}

fn md5_hex(s: &str) -> String {
    hex::encode(Md5::digest(s.as_bytes()))
}

/// Splits `a="x, y", b=z` into pairs, honouring quotes.
fn params(s: &str) -> Vec<(&str, &str)> {
    let mut out = Vec::new();
    let mut rest = s.trim_start_matches([' ', ',']);
    while let Some(eq) = rest.find('=') {
        let key = rest[..eq].trim().trim_start_matches(',').trim();
        let after = rest[eq + 1..].trim_start();
        let (value, next) = if let Some(q) = after.strip_prefix('"') {
            match q.find('"') {
                Some(end) => (&q[..end], &q[end + 1..]),
                None => (q, ""),
            }
        } else {
            match after.find(',') {
                Some(end) => (after[..end].trim(), &after[end..]),
                None => (after.trim(), ""),
            }
        };
        out.push((key, value));
        rest = next.trim_start_matches([' ', ',']);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use ipnet::IpNet;

    fn trunk(name: &str, nets: &[&str], creds: Option<(&str, &str)>) -> Trunk {
        Trunk {
            name: name.into(),
            networks: nets.iter().map(|n| n.parse::<IpNet>().unwrap()).collect(),
            credentials: creds.map(|(u, p)| (u.into(), p.into())),
        }
    }

    fn admission() -> Admission {
        Admission::new(
            vec![
                trunk("carrier", &["10.1.0.0/16"], None),
                trunk("desk", &[], Some(("desk1", "s3cret"))),
            ],
            "hotline",
            [7; 32],
        )
    }

    fn answer(challenge: &str, user: &str, password: &str, uri: &str) -> String {
        let nonce = challenge
            .split("nonce=\"")
            .nth(1)
            .unwrap()
            .split('"')
            .next()
            .unwrap();
        let d = DigestResponse {
            username: user.into(),
            realm: "hotline".into(),
            nonce: nonce.into(),
            uri: uri.into(),
            qop: Some("auth".into()),
            nc: Some("00000001".into()),
            cnonce: Some("abcdef".into()),
            ..Default::default()
        };
        let resp = d.expected(password, "INVITE");
        format!(
            "Digest username=\"{user}\", realm=\"hotline\", nonce=\"{nonce}\", uri=\"{uri}\", response=\"{resp}\", algorithm=MD5, qop=auth, nc=00000001, cnonce=\"abcdef\""
        )
    }

    #[test]
    fn the_carrier_network_is_admitted_by_address() {
        let v = admission().check("10.1.2.3".parse().unwrap(), "INVITE", None, 1000);
        assert_eq!(
            v,
            Verdict::Admit {
                trunk: "carrier".into()
            }
        );
        let mapped = "::ffff:10.1.2.3".parse().unwrap();
        assert_eq!(
            admission().check(mapped, "INVITE", None, 1000),
            Verdict::Admit {
                trunk: "carrier".into()
            }
        );
    }

    #[test]
    fn others_are_challenged_then_admitted_with_the_right_password() {
        let a = admission();
        let Verdict::Challenge { www_authenticate } =
            a.check("192.0.2.9".parse().unwrap(), "INVITE", None, 1000)
        else {
            panic!("expected a challenge");
        };
        assert!(www_authenticate.starts_with("Digest realm=\"hotline\""));
        let good = answer(&www_authenticate, "desk1", "s3cret", "sip:12319@hotline");
        assert_eq!(
            a.check("192.0.2.9".parse().unwrap(), "INVITE", Some(&good), 1010),
            Verdict::Admit {
                trunk: "desk".into()
            }
        );
        let bad = answer(&www_authenticate, "desk1", "guess", "sip:12319@hotline");
        assert_eq!(
            a.check("192.0.2.9".parse().unwrap(), "INVITE", Some(&bad), 1010),
            Verdict::Refuse {
                reason: "wrong digest response"
            }
        );
    }

    #[test]
    fn a_forged_or_stale_nonce_is_not_accepted() {
        let a = admission();
        let forged = "Digest username=\"desk1\", realm=\"hotline\", nonce=\"3e8.000000000000000000000000\", uri=\"sip:x\", response=\"00\"";
        assert_eq!(
            a.check("192.0.2.9".parse().unwrap(), "INVITE", Some(forged), 1000),
            Verdict::Refuse {
                reason: "forged nonce"
            }
        );
        let Verdict::Challenge { www_authenticate } =
            a.check("192.0.2.9".parse().unwrap(), "INVITE", None, 1000)
        else {
            panic!()
        };
        let late = answer(&www_authenticate, "desk1", "s3cret", "sip:12319@hotline");
        let Verdict::Challenge { www_authenticate } = a.check(
            "192.0.2.9".parse().unwrap(),
            "INVITE",
            Some(&late),
            1000 + NONCE_LIFETIME + 1,
        ) else {
            panic!("expected a stale challenge")
        };
        assert!(www_authenticate.ends_with("stale=true"));
    }

    #[test]
    fn with_no_matching_trunk_everything_is_refused() {
        let a = Admission::new(
            vec![trunk("carrier", &["10.1.0.0/16"], None)],
            "hotline",
            [1; 32],
        );
        assert!(matches!(
            a.check("8.8.8.8".parse().unwrap(), "INVITE", None, 0),
            Verdict::Refuse { .. }
        ));
    }

    #[test]
    fn the_rfc_2617_example_digest() {
        // RFC 2617 §3.5 (HTTP, but the same arithmetic): Mufasa / Circle Of Life.
        let d = DigestResponse {
            username: "Mufasa".into(),
            realm: "testrealm@host.com".into(),
            nonce: "dcd98b7102dd2f0e8b11d0f600bfb0c093".into(),
            uri: "/dir/index.html".into(),
            qop: Some("auth".into()),
            nc: Some("00000001".into()),
            cnonce: Some("0a4f113b".into()),
            ..Default::default()
        };
        assert_eq!(
            d.expected("Circle Of Life", "GET"),
            "6629fae49393a05397450978507c4ef1"
        );
    }

    #[test]
    fn params_split_with_quotes_and_commas() {
        let p = params(" username=\"a, b\", nc=00000001,qop=auth");
        assert_eq!(
            p,
            vec![("username", "a, b"), ("nc", "00000001"), ("qop", "auth")]
        );
        assert!(DigestResponse::parse("Basic abc").is_none());
        assert!(DigestResponse::parse("Digest garbage").is_none());
    }
}
