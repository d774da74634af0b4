//! Time limits (时限) as written in config: "2h" of natural time, "1wd" of
//! working time, and so on, turned into deadlines on a [`WorkCalendar`].

use std::fmt;
use std::str::FromStr;

use jiff::{SignedDuration, Timestamp};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::calendar::WorkCalendar;

const MINUTES_PER_HOUR: i64 = 60;
const MINUTES_PER_DAY: i64 = 24 * MINUTES_PER_HOUR;

/// The longest limit accepted, in days (about ten years): anything longer is a
/// typo, and refusing it keeps deadline arithmetic quick.
const MAX_DAYS: i64 = 3660;

/// The forms accepted, for error messages.
const ACCEPTED: &str = "a positive whole number followed by a unit: m, h, d (natural minutes, hours, days) \
     or wm, wh, wd (working minutes, hours, days), e.g. \"30m\", \"2h\", \"90wm\", \"5wd\"";

/// A stage's time limit as configured: natural time or working time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limit {
    /// Natural (wall-clock) minutes: nights, weekends and holidays count.
    Minutes(i64),
    /// Working minutes, counted only inside the calendar's work periods.
    WorkingMinutes(i64),
    /// Working days, each worth [`WorkCalendar::minutes_per_day`] working minutes.
    WorkingDays(i64),
}

/// Why a time limit string was rejected; the message quotes the text and lists the accepted forms.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LimitError {
    /// Not a number followed by a known unit (missing or unknown unit, sign, inner whitespace, …).
    #[error("time limit {text:?} is not {ACCEPTED}")]
    Format {
        /// The text as written.
        text: String,
    },
    /// A zero limit would make everything overdue at once.
    #[error("time limit {text:?} is zero; it must be {ACCEPTED}")]
    Zero {
        /// The text as written.
        text: String,
    },
    /// Longer than [`MAX_DAYS`] days (or too big to count at all).
    #[error(
        "time limit {text:?} is too long; it can be at most {MAX_DAYS} days (\"{MAX_DAYS}d\", \"{MAX_DAYS}wd\")"
    )]
    TooLarge {
        /// The text as written.
        text: String,
    },
}

impl Limit {
    /// The instant the limit runs out for something started at `start`:
    /// natural minutes add real time, working minutes and days are counted on
    /// `cal`. A limit that is not positive (only possible when built in code)
    /// yields `start`; a sum past the end of representable time yields
    /// [`Timestamp::MAX`].
    pub fn deadline(&self, start: Timestamp, cal: &WorkCalendar) -> Timestamp {
        match *self {
            Limit::Minutes(n) if n <= 0 => start,
            Limit::Minutes(n) => n
                .checked_mul(60)
                .and_then(|secs| start.checked_add(SignedDuration::from_secs(secs)).ok())
                .unwrap_or(Timestamp::MAX),
            Limit::WorkingMinutes(n) => cal.add_working_minutes(start, n),
            Limit::WorkingDays(n) => {
                cal.add_working_minutes(start, n.saturating_mul(cal.minutes_per_day()))
            }
        }
    }
}

impl FromStr for Limit {
    type Err = LimitError;

    /// Parses "10m", "2h", "3d", "90wm", "5wh" or "1wd"; surrounding whitespace is ignored.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let text = s.trim();
        let format = || LimitError::Format { text: s.to_owned() };
        let split = text
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(text.len());
        let (digits, unit) = text.split_at(split);
        if digits.is_empty() {
            return Err(format());
        }
        // Validate the unit before the number, so "99999999999999999999x" is a format error.
        let (per_unit, working) = match unit {
            "m" => (1, false),
            "h" => (MINUTES_PER_HOUR, false),
            "d" => (MINUTES_PER_DAY, false),
            "wm" => (1, true),
            "wh" => (MINUTES_PER_HOUR, true),
            "wd" => (0, true),
            _ => return Err(format()),
        };
        let too_large = || LimitError::TooLarge { text: s.to_owned() };
        // Only ASCII digits remain, so the only possible failure is overflow.
        let n: i64 = digits.parse().map_err(|_| too_large())?;
        if n == 0 {
            return Err(LimitError::Zero { text: s.to_owned() });
        }
        if unit == "wd" {
            return if n <= MAX_DAYS {
                Ok(Limit::WorkingDays(n))
            } else {
                Err(too_large())
            };
        }
        let minutes = n
            .checked_mul(per_unit)
            .filter(|&m| m <= MAX_DAYS * MINUTES_PER_DAY)
            .ok_or_else(too_large)?;
        Ok(if working {
            Limit::WorkingMinutes(minutes)
        } else {
            Limit::Minutes(minutes)
        })
    }
}

impl fmt::Display for Limit {
    /// Writes the shortest form in the largest whole unit ("120m" is written "2h"),
    /// which parses back to the same value.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Limit::Minutes(n) if n > 0 && n % MINUTES_PER_DAY == 0 => {
                write!(f, "{}d", n / MINUTES_PER_DAY)
            }
            Limit::Minutes(n) if n > 0 && n % MINUTES_PER_HOUR == 0 => {
                write!(f, "{}h", n / MINUTES_PER_HOUR)
            }
            Limit::Minutes(n) => write!(f, "{n}m"),
            Limit::WorkingMinutes(n) if n > 0 && n % MINUTES_PER_HOUR == 0 => {
                write!(f, "{}wh", n / MINUTES_PER_HOUR)
            }
            Limit::WorkingMinutes(n) => write!(f, "{n}wm"),
            Limit::WorkingDays(n) => write!(f, "{n}wd"),
        }
    }
}

impl Serialize for Limit {
    /// Serialized as its config string, e.g. "2h".
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Limit {
    /// Deserialized from its config string, e.g. "2h".
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::calendar::CalendarConfig;
    use jiff::civil::date;
    use jiff::tz::TimeZone;
    use proptest::prelude::*;

    fn cal() -> WorkCalendar {
        WorkCalendar::from_config(&CalendarConfig {
            holidays: vec!["2026-10-01..2026-10-07".into()],
            workdays: vec!["2026-09-20".into(), "2026-10-10".into()],
            ..CalendarConfig::default()
        })
        .unwrap()
    }

    fn sh(y: i16, mo: i8, d: i8, h: i8, mi: i8) -> Timestamp {
        let tz = TimeZone::get("Asia/Shanghai").unwrap();
        tz.to_timestamp(date(y, mo, d).at(h, mi, 0, 0)).unwrap()
    }

    #[test]
    fn parses_every_unit() {
        let cases = [
            ("10m", Limit::Minutes(10)),
            ("2h", Limit::Minutes(120)),
            ("3d", Limit::Minutes(3 * 1440)),
            ("90wm", Limit::WorkingMinutes(90)),
            ("5wh", Limit::WorkingMinutes(300)),
            ("1wd", Limit::WorkingDays(1)),
            ("  2h\n", Limit::Minutes(120)),
            ("007m", Limit::Minutes(7)),
            ("3660d", Limit::Minutes(3660 * 1440)),
            ("3660wd", Limit::WorkingDays(3660)),
        ];
        for (text, want) in cases {
            assert_eq!(text.parse::<Limit>(), Ok(want), "{text:?}");
        }
    }

    #[test]
    fn displays_in_largest_whole_unit() {
        assert_eq!(Limit::Minutes(10).to_string(), "10m");
        assert_eq!(Limit::Minutes(120).to_string(), "2h");
        assert_eq!(Limit::Minutes(90).to_string(), "90m");
        assert_eq!(Limit::Minutes(2880).to_string(), "2d");
        assert_eq!(Limit::Minutes(1500).to_string(), "25h");
        assert_eq!(Limit::WorkingMinutes(90).to_string(), "90wm");
        assert_eq!(Limit::WorkingMinutes(300).to_string(), "5wh");
        assert_eq!(Limit::WorkingDays(1).to_string(), "1wd");
        for text in ["10m", "2h", "3d", "90wm", "5wh", "1wd"] {
            assert_eq!(text.parse::<Limit>().unwrap().to_string(), text);
        }
    }

    #[test]
    fn rejects_bad_text() {
        for bad in [
            "", "   ", "10", "m", "wd", "-5m", "+5m", "10 m", "1 0m", "10mm", "10w", "10y", "1.5h",
            "10M", "١٠m", "10m 5m",
        ] {
            let e = bad.parse::<Limit>().expect_err(bad);
            assert_eq!(
                e,
                LimitError::Format {
                    text: bad.to_owned()
                },
                "{bad:?}"
            );
        }
        assert_eq!(
            "0m".parse::<Limit>(),
            Err(LimitError::Zero { text: "0m".into() })
        );
        assert_eq!(
            "00wd".parse::<Limit>(),
            Err(LimitError::Zero {
                text: "00wd".into()
            })
        );
        for big in [
            "3661d",
            "3661wd",
            "87841h",
            "5270401wm",
            "99999999999999999999m",
            "153722867280912931m",
        ] {
            let e = big.parse::<Limit>().expect_err(big);
            assert_eq!(
                e,
                LimitError::TooLarge {
                    text: big.to_owned()
                },
                "{big:?}"
            );
        }
    }

    #[test]
    fn error_messages_show_text_and_forms() {
        let e = "10 minutes".parse::<Limit>().unwrap_err().to_string();
        assert!(e.contains("\"10 minutes\""), "{e}");
        assert!(e.contains("wm, wh, wd"), "{e}");
        let e = "0h".parse::<Limit>().unwrap_err().to_string();
        assert!(e.contains("\"0h\"") && e.contains("zero"), "{e}");
        let e = "9999wd".parse::<Limit>().unwrap_err().to_string();
        assert!(e.contains("\"9999wd\"") && e.contains("3660"), "{e}");
    }

    #[test]
    fn serde_as_string() {
        #[derive(Debug, Deserialize, Serialize, PartialEq)]
        struct Stage {
            limit: Limit,
        }
        let stage: Stage = toml::from_str("limit = \"5wh\"").unwrap();
        assert_eq!(stage.limit, Limit::WorkingMinutes(300));
        assert_eq!(toml::to_string(&stage).unwrap().trim(), "limit = \"5wh\"");
        assert_eq!(
            serde_json::to_string(&Limit::Minutes(120)).unwrap(),
            "\"2h\""
        );
        assert_eq!(
            serde_json::from_str::<Limit>("\"1wd\"").unwrap(),
            Limit::WorkingDays(1)
        );
        let e = toml::from_str::<Stage>("limit = \"5 wh\"")
            .unwrap_err()
            .to_string();
        assert!(e.contains("\"5 wh\""), "{e}");
        assert!(serde_json::from_str::<Limit>("5").is_err());
    }

    #[test]
    fn deadline_natural_time() {
        let c = cal();
        // Natural time runs through the night and the holiday.
        let start = sh(2026, 9, 30, 16, 0);
        assert_eq!(
            Limit::Minutes(30).deadline(start, &c),
            sh(2026, 9, 30, 16, 30)
        );
        assert_eq!(
            "2h".parse::<Limit>().unwrap().deadline(start, &c),
            sh(2026, 9, 30, 18, 0)
        );
        assert_eq!(
            "3d".parse::<Limit>().unwrap().deadline(start, &c),
            sh(2026, 10, 3, 16, 0)
        );
        assert_eq!(Limit::Minutes(0).deadline(start, &c), start);
        assert_eq!(Limit::Minutes(-10).deadline(start, &c), start);
        assert_eq!(Limit::Minutes(i64::MAX).deadline(start, &c), Timestamp::MAX);
    }

    #[test]
    fn deadline_working_time() {
        let c = cal();
        let start = sh(2026, 9, 30, 16, 0);
        assert_eq!(
            Limit::WorkingMinutes(90).deadline(start, &c),
            sh(2026, 9, 30, 17, 30)
        );
        assert_eq!(
            "3wh".parse::<Limit>().unwrap().deadline(start, &c),
            sh(2026, 10, 8, 9, 0)
        );
        assert_eq!(
            "1wd".parse::<Limit>().unwrap().deadline(start, &c),
            sh(2026, 10, 8, 16, 0)
        );
        // 10-09 (Fri), then the make-up Saturday 10-10.
        assert_eq!(
            Limit::WorkingDays(3).deadline(start, &c),
            sh(2026, 10, 10, 16, 0)
        );
        assert_eq!(Limit::WorkingDays(0).deadline(start, &c), start);
        // Absurd values built in code stay total.
        assert_eq!(
            Limit::WorkingDays(i64::MAX).deadline(sh(9999, 12, 1, 9, 0), &c),
            Timestamp::MAX
        );
    }

    fn any_limit() -> impl Strategy<Value = Limit> {
        prop_oneof![
            (1i64..=MAX_DAYS * MINUTES_PER_DAY).prop_map(Limit::Minutes),
            (1i64..=MAX_DAYS * MINUTES_PER_DAY).prop_map(Limit::WorkingMinutes),
            (1i64..=MAX_DAYS).prop_map(Limit::WorkingDays),
        ]
    }

    proptest! {
        #[test]
        fn display_round_trips(limit in any_limit()) {
            prop_assert_eq!(limit.to_string().parse::<Limit>(), Ok(limit));
        }
    }
}
