//! Per-address rate limits (token buckets, sans-IO: the time is passed in) and the client's
//! address behind a reverse proxy. Used by the web form, the app's login codes and staff logins.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::http::HeaderMap;

/// Above this many tracked addresses, full buckets are swept before adding more.
const SWEEP_ABOVE: usize = 10_000;

/// Token buckets per client address: each address holds up to `burst` tokens, one is spent per
/// request, and they come back at a steady rate. IPv6 addresses count per /64 (one subscriber's
/// network); IPv4-mapped IPv6 counts as the IPv4 address.
#[derive(Debug)]
pub struct RateLimiter {
    burst: f64,
    per_second: f64,
    buckets: Mutex<HashMap<IpAddr, Bucket>>,
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

impl RateLimiter {
    /// `burst` requests at once, then `per_hour` spread over the hour (both at least 1).
    pub fn new(burst: u32, per_hour: u32) -> Self {
        RateLimiter {
            burst: f64::from(burst.max(1)),
            per_second: f64::from(per_hour.max(1)) / 3600.0,
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Spends one of `client`'s tokens at `now`; `Err(wait)` when there is none, with how long
    /// until the next one.
    pub fn take(&self, client: IpAddr, now: Instant) -> Result<(), Duration> {
        let key = bucket_key(client);
        let mut map = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        if map.len() > SWEEP_ABOVE {
            map.retain(|_, b| self.level(b, now) < self.burst);
        }
        let bucket = map.entry(key).or_insert(Bucket {
            tokens: self.burst,
            at: now,
        });
        let tokens = self.level(bucket, now);
        if tokens >= 1.0 {
            *bucket = Bucket {
                tokens: tokens - 1.0,
                at: now,
            };
            Ok(())
        } else {
            *bucket = Bucket { tokens, at: now };
            Err(Duration::from_secs_f64((1.0 - tokens) / self.per_second))
        }
    }

    /// The bucket's tokens at `now` (refilled since it was last touched, capped at the burst).
    fn level(&self, b: &Bucket, now: Instant) -> f64 {
        let since = now.saturating_duration_since(b.at).as_secs_f64();
        (b.tokens + since * self.per_second).min(self.burst)
    }
}

fn bucket_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let s = v6.segments();
                IpAddr::V6(Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
            }
        },
    }
}

/// Whose word counts for the client's address: `[http]` `client_ip_header` and
/// `trusted_proxies`. Behind a reverse proxy every request comes from the proxy, so per-address
/// limits (web form, app login codes, staff logins) need the address it saw.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProxyTrust {
    /// The header a reverse proxy puts the client's address in (`X-Forwarded-For`,
    /// `X-Real-IP`); `None`: the connection's address is the client's.
    pub header: Option<String>,
    /// Peers whose `header` is believed.
    pub trusted: Vec<IpAddr>,
}

impl ProxyTrust {
    /// The client's address: the connection's, unless a proxy header is configured and the
    /// connection comes from a trusted proxy. `X-Forwarded-For` is read from the right (the
    /// entry our proxy appended), other headers as one address.
    pub fn client_address(&self, peer: SocketAddr, headers: &HeaderMap) -> IpAddr {
        let peer_ip = bucket_key(peer.ip());
        let Some(name) = &self.header else {
            return peer_ip;
        };
        if !self.trusted.iter().any(|p| bucket_key(*p) == peer_ip) {
            return peer_ip;
        }
        headers
            .get_all(name.as_str())
            .iter()
            .filter_map(|v| v.to_str().ok())
            .collect::<Vec<_>>()
            .join(",")
            .rsplit(',')
            .map(str::trim)
            .find(|s| !s.is_empty())
            .and_then(|s| s.parse::<IpAddr>().ok())
            .unwrap_or(peer_ip)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    #[test]
    fn a_burst_then_a_steady_rate_per_address() {
        let limiter = RateLimiter::new(3, 60); // one a minute after three at once
        let t0 = Instant::now();
        let a: IpAddr = "203.0.113.7".parse().unwrap();
        let b: IpAddr = "203.0.113.8".parse().unwrap();
        for i in 0..3 {
            assert_eq!(limiter.take(a, t0), Ok(()), "request {i}");
        }
        let wait = limiter.take(a, t0).unwrap_err();
        assert_eq!(wait.as_secs(), 60);
        // Another address has its own bucket.
        assert_eq!(limiter.take(b, t0), Ok(()));
        // After half a minute the token is half back; after a minute it is whole.
        let wait = limiter.take(a, t0 + Duration::from_secs(30)).unwrap_err();
        assert_eq!(wait.as_secs(), 30);
        assert_eq!(limiter.take(a, t0 + Duration::from_secs(60)), Ok(()));
        assert!(limiter.take(a, t0 + Duration::from_secs(61)).is_err());
        // A long pause refills to the burst, never beyond.
        let later = t0 + Duration::from_secs(3600);
        for _ in 0..3 {
            assert_eq!(limiter.take(a, later), Ok(()));
        }
        assert!(limiter.take(a, later).is_err());
    }

    #[test]
    fn ipv6_counts_per_64_and_mapped_v4_as_v4() {
        let limiter = RateLimiter::new(1, 1);
        let t = Instant::now();
        assert!(limiter.take("2001:db8:1:2::1".parse().unwrap(), t).is_ok());
        assert!(
            limiter
                .take("2001:db8:1:2::ffff".parse().unwrap(), t)
                .is_err()
        );
        assert!(limiter.take("2001:db8:1:3::1".parse().unwrap(), t).is_ok());
        assert!(limiter.take("192.0.2.1".parse().unwrap(), t).is_ok());
        assert!(
            limiter
                .take("::ffff:192.0.2.1".parse().unwrap(), t)
                .is_err()
        );
    }

    #[test]
    fn the_proxy_header_counts_only_when_configured_and_from_a_trusted_proxy() {
        let mut headers = HeaderMap::new();
        headers.insert(
            "x-forwarded-for",
            HeaderValue::from_static("198.51.100.9, 203.0.113.5"),
        );
        let local: SocketAddr = "127.0.0.1:50000".parse().unwrap();
        let remote: SocketAddr = "192.0.2.44:50000".parse().unwrap();
        let mut cfg = ProxyTrust {
            header: None,
            trusted: vec![IpAddr::from([127, 0, 0, 1])],
        };
        // Not configured: the header is anybody's to forge.
        assert_eq!(
            cfg.client_address(local, &headers),
            local.ip(),
            "header ignored"
        );
        cfg.header = Some("X-Forwarded-For".into());
        // The proxy appended the address it saw last.
        assert_eq!(
            cfg.client_address(local, &headers),
            "203.0.113.5".parse::<IpAddr>().unwrap()
        );
        // From a peer that is not a trusted proxy the header is ignored.
        assert_eq!(cfg.client_address(remote, &headers), remote.ip());
        // A header that is missing or garbage falls back to the peer.
        let mut junk = HeaderMap::new();
        junk.insert("x-forwarded-for", HeaderValue::from_static("unknown"));
        assert_eq!(cfg.client_address(local, &junk), local.ip());
        assert_eq!(cfg.client_address(local, &HeaderMap::new()), local.ip());
    }
}
