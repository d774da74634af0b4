//! Session timers (RFC 4028): a dialog whose peer vanished without a BYE is torn down when the
//! session is not refreshed in time. Sans-IO: negotiation from the INVITE's headers, and the
//! instant at which the call must act.

use std::time::{Duration, Instant};

/// Which side refreshes the session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refresher {
    /// The caller sends re-INVITE/UPDATE; we expect them.
    Uac,
    /// We send the refreshing UPDATE/re-INVITE.
    Uas,
}

/// The negotiated session timer of one dialog.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionTimer {
    /// Session interval in seconds.
    pub interval: u32,
    /// Who refreshes.
    pub refresher: Refresher,
    /// Whether the caller listed `timer` in Supported (then our 2xx carries `Require: timer`).
    pub peer_supports: bool,
    last_refresh: Instant,
}

/// What the headers of an INVITE ask for.
#[derive(Debug, Clone, Default)]
pub struct TimerRequest<'a> {
    /// `Session-Expires` value (`1800;refresher=uac`).
    pub session_expires: Option<&'a str>,
    /// `Min-SE` value.
    pub min_se: Option<&'a str>,
    /// `timer` is in `Supported`.
    pub supported: bool,
}

/// Why a session timer request is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TimerError {
    /// Interval below our minimum: answer 422 with `Min-SE`.
    #[error("session interval too small; Min-SE is {min_se}")]
    TooSmall {
        /// Our minimum.
        min_se: u32,
    },
    /// The header does not parse: answer 400.
    #[error("malformed Session-Expires or Min-SE")]
    Malformed,
}

/// What to do at [`SessionTimer::deadline`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimerAction {
    /// Send a refresh (we are the refresher).
    Refresh,
    /// The peer failed to refresh: send BYE.
    Expire,
}

impl SessionTimer {
    /// Negotiates from an initial INVITE. `None`: the caller uses no timer and we impose none
    /// (the no-RTP watchdog still guards the call).
    pub fn negotiate(
        req: &TimerRequest<'_>,
        default_interval: u32,
        min_se: u32,
        now: Instant,
    ) -> Result<Option<SessionTimer>, TimerError> {
        let peer_min = match req.min_se {
            Some(v) => parse_delta(v).ok_or(TimerError::Malformed)?,
            None => 0,
        };
        let Some(se) = req.session_expires else {
            if !req.supported {
                return Ok(None);
            }
            // The caller supports timers but asked for none: we may ask (RFC 4028 §9).
            return Ok(Some(SessionTimer {
                interval: default_interval.max(min_se).max(peer_min),
                refresher: Refresher::Uac,
                peer_supports: true,
                last_refresh: now,
            }));
        };
        let mut parts = se.split(';');
        let interval = parse_delta(parts.next().unwrap_or("")).ok_or(TimerError::Malformed)?;
        if interval < min_se {
            return Err(TimerError::TooSmall { min_se });
        }
        let asked = parts
            .filter_map(|p| p.trim().split_once('='))
            .find(|(k, _)| k.trim().eq_ignore_ascii_case("refresher"))
            .map(|(_, v)| v.trim().to_ascii_lowercase());
        let refresher = match asked.as_deref() {
            Some("uac") => Refresher::Uac,
            Some("uas") => Refresher::Uas,
            Some(_) => return Err(TimerError::Malformed),
            // Unspecified: the caller refreshes if it can, else we do (§9).
            None if req.supported => Refresher::Uac,
            None => Refresher::Uas,
        };
        Ok(Some(SessionTimer {
            interval,
            refresher,
            peer_supports: req.supported,
            last_refresh: now,
        }))
    }

    /// Headers for our 2xx: `Session-Expires` and, if the caller supports it, `Require: timer`.
    pub fn response_headers(&self) -> Vec<(&'static str, String)> {
        let who = match self.refresher {
            Refresher::Uac => "uac",
            Refresher::Uas => "uas",
        };
        let mut h = vec![(
            "Session-Expires",
            format!("{};refresher={who}", self.interval),
        )];
        if self.peer_supports {
            h.push(("Require", "timer".to_string()));
        }
        h
    }

    /// A refresh happened (a re-INVITE or UPDATE from either side got its 2xx).
    pub fn refreshed(&mut self, now: Instant, interval: Option<u32>) {
        self.last_refresh = now;
        if let Some(i) = interval {
            self.interval = i;
        }
    }

    /// When to act and what to do then: refresh at half the interval when we refresh; when
    /// the caller refreshes, expire at the interval minus min(32 s, interval / 3) (§10).
    pub fn deadline(&self) -> (Instant, TimerAction) {
        let interval = Duration::from_secs(u64::from(self.interval));
        match self.refresher {
            Refresher::Uas => (self.last_refresh + interval / 2, TimerAction::Refresh),
            Refresher::Uac => {
                let margin = Duration::from_secs(32).min(interval / 3);
                (self.last_refresh + interval - margin, TimerAction::Expire)
            }
        }
    }
}

fn parse_delta(v: &str) -> Option<u32> {
    v.split(';').next()?.trim().parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req<'a>(se: Option<&'a str>, min: Option<&'a str>, supported: bool) -> TimerRequest<'a> {
        TimerRequest {
            session_expires: se,
            min_se: min,
            supported,
        }
    }

    #[test]
    fn no_timer_when_the_caller_knows_none() {
        let now = Instant::now();
        assert_eq!(
            SessionTimer::negotiate(&req(None, None, false), 1800, 90, now),
            Ok(None)
        );
    }

    #[test]
    fn the_callers_interval_and_refresher_are_honoured() {
        let now = Instant::now();
        let t = SessionTimer::negotiate(&req(Some("600;refresher=uac"), None, true), 1800, 90, now)
            .unwrap()
            .unwrap();
        assert_eq!(t.interval, 600);
        assert_eq!(t.refresher, Refresher::Uac);
        assert_eq!(
            t.response_headers(),
            vec![
                ("Session-Expires", "600;refresher=uac".to_string()),
                ("Require", "timer".to_string())
            ]
        );
        // Expires at 600 - 32 s without a refresh.
        assert_eq!(
            t.deadline(),
            (now + Duration::from_secs(568), TimerAction::Expire)
        );
    }

    #[test]
    fn too_small_gets_422_with_our_minimum() {
        let now = Instant::now();
        assert_eq!(
            SessionTimer::negotiate(&req(Some("60"), None, true), 1800, 90, now),
            Err(TimerError::TooSmall { min_se: 90 })
        );
        assert_eq!(
            SessionTimer::negotiate(&req(Some("soon"), None, true), 1800, 90, now),
            Err(TimerError::Malformed)
        );
    }

    #[test]
    fn a_caller_without_timer_support_leaves_refreshing_to_us() {
        let now = Instant::now();
        let t = SessionTimer::negotiate(&req(Some("120"), None, false), 1800, 90, now)
            .unwrap()
            .unwrap();
        assert_eq!(t.refresher, Refresher::Uas);
        assert_eq!(
            t.response_headers().len(),
            1,
            "no Require: timer to a peer that does not support it"
        );
        assert_eq!(
            t.deadline(),
            (now + Duration::from_secs(60), TimerAction::Refresh)
        );
    }

    #[test]
    fn a_refresh_moves_the_deadline() {
        let now = Instant::now();
        let mut t =
            SessionTimer::negotiate(&req(Some("90;refresher=uac"), None, true), 1800, 90, now)
                .unwrap()
                .unwrap();
        t.refreshed(now + Duration::from_secs(50), None);
        // 90 - min(32, 30) = 60 s after the refresh.
        assert_eq!(t.deadline().0, now + Duration::from_secs(110));
    }

    #[test]
    fn supported_without_session_expires_gets_our_default() {
        let now = Instant::now();
        let t = SessionTimer::negotiate(&req(None, Some("300"), true), 1800, 90, now)
            .unwrap()
            .unwrap();
        assert_eq!(t.interval, 1800);
        assert_eq!(t.refresher, Refresher::Uac);
    }
}
