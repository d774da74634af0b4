//! The working calendar (工作日历): when departments are at work, so that
//! deadlines can be counted in working time.
//!
//! The calendar is sans-IO: every instant is passed in by the caller; nothing
//! here reads the clock.
//!
//! Working periods are given in local civil time ("08:00-12:00") in the
//! calendar's time zone. For every working day each period becomes an interval
//! of instants; all arithmetic ([`WorkCalendar::add_working_minutes`] and
//! [`WorkCalendar::working_minutes_between`]) is done on those same intervals,
//! exactly (to the nanosecond), so the two always agree with each other, even
//! across daylight-saving transitions in zones that have them.

use std::collections::BTreeSet;
use std::sync::Arc;

use jiff::Timestamp;
use jiff::civil::{Date, DateTime, Time, Weekday};
use jiff::tz::TimeZone;
use serde::{Deserialize, Serialize};

/// Nanoseconds in one minute, the unit deadlines are counted in.
const NANOS_PER_MINUTE: i128 = 60_000_000_000;

/// Minutes in a civil day; a period may end at exactly this ("24:00").
const MINUTES_PER_CIVIL_DAY: u16 = 24 * 60;

/// How many days in a row without any working time the calendar walks before
/// giving up. A validated calendar with weekly working days never gets near
/// this, but a long enough holiday list could; the walk must still end.
const MAX_IDLE_DAYS: u32 = 3660;

/// The longest holiday or make-up range accepted, in days (inclusive).
const MAX_RANGE_DAYS: u32 = 366;

/// Deserialized from the `[calendar]` table of config/hotline.toml.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct CalendarConfig {
    /// IANA time zone the work hours are in, e.g. "Asia/Shanghai".
    #[serde(default = "default_timezone")]
    pub timezone: String,
    /// Working periods of a working day, e.g. `["08:00-12:00", "14:00-18:00"]`.
    #[serde(default = "default_work_hours")]
    pub work_hours: Vec<String>,
    /// Days of the week that are off unless listed in `workdays`, e.g. `["sat", "sun"]`.
    #[serde(default = "default_weekend")]
    pub weekend: Vec<String>,
    /// Days off (法定节假日): "2026-10-01" or an inclusive range "2026-10-01..2026-10-07".
    #[serde(default)]
    pub holidays: Vec<String>,
    /// Make-up workdays (调休上班), same syntax as `holidays`; they win over the weekend.
    #[serde(default)]
    pub workdays: Vec<String>,
}

fn default_timezone() -> String {
    "Asia/Shanghai".to_owned()
}

fn default_work_hours() -> Vec<String> {
    vec!["08:00-12:00".to_owned(), "14:00-18:00".to_owned()]
}

fn default_weekend() -> Vec<String> {
    vec!["sat".to_owned(), "sun".to_owned()]
}

impl Default for CalendarConfig {
    /// Shanghai time, 08:00–12:00 and 14:00–18:00, Saturday and Sunday off, no holidays.
    fn default() -> Self {
        CalendarConfig {
            timezone: default_timezone(),
            work_hours: default_work_hours(),
            weekend: default_weekend(),
            holidays: Vec::new(),
            workdays: Vec::new(),
        }
    }
}

/// When a hotline's agents answer calls (the IVR's `hours` nodes), as written under
/// `[hotline.hours]`: periods of the day and which days. Holidays and make-up workdays come from
/// the `[calendar]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OpeningHours {
    /// Periods of an open day, e.g. `["08:00-20:00"]`; `["00:00-24:00"]` is the whole day.
    pub periods: Vec<String>,
    /// Which days those periods apply to.
    #[serde(default)]
    pub days: OpenDays,
}

/// The days a hotline is open.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum OpenDays {
    /// Every day of the year.
    #[default]
    EveryDay,
    /// Every day except the calendar's holidays (weekends are open).
    EveryDayButHolidays,
    /// The calendar's working days only (weekends and holidays closed, 调休 days open).
    WorkingDays,
}

impl OpeningHours {
    /// These hours as a calendar whose working time is the open time, on `base`'s time zone,
    /// holidays and make-up days. Errors name the key as in `[calendar]`; the caller adds which
    /// hotline.
    pub fn calendar(&self, base: &CalendarConfig) -> Result<WorkCalendar, CalendarError> {
        let (weekend, holidays, workdays) = match self.days {
            OpenDays::EveryDay => (vec![], vec![], vec![]),
            OpenDays::EveryDayButHolidays => (vec![], base.holidays.clone(), vec![]),
            OpenDays::WorkingDays => (
                base.weekend.clone(),
                base.holidays.clone(),
                base.workdays.clone(),
            ),
        };
        WorkCalendar::from_config(&CalendarConfig {
            timezone: base.timezone.clone(),
            work_hours: self.periods.clone(),
            weekend,
            holidays,
            workdays,
        })
    }
}

/// Why a `[calendar]` table was rejected; each message names the key to fix.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CalendarError {
    /// The time zone name is not in the time zone database.
    #[error(
        "calendar.timezone: {name:?} is not a known time zone; use an IANA name like \"Asia/Shanghai\""
    )]
    UnknownTimezone {
        /// The name as written in the config.
        name: String,
    },
    /// No working periods at all: nothing could ever be worked on.
    #[error(
        "calendar.work_hours: the list is empty; give at least one period like \"08:00-12:00\""
    )]
    NoWorkHours,
    /// A period that does not parse as `HH:MM-HH:MM`.
    #[error("calendar.work_hours: {text:?} is not a time range like \"08:00-12:00\"")]
    BadWorkPeriod {
        /// The period as written in the config.
        text: String,
    },
    /// A period whose end is not after its start (empty, or crossing midnight).
    #[error(
        "calendar.work_hours: {text:?} does not end after it starts; a period must lie within one day \
         (split a night shift into \"18:00-24:00\" and \"00:00-06:00\")"
    )]
    BackwardsWorkPeriod {
        /// The period as written in the config.
        text: String,
    },
    /// Two periods share some time.
    #[error(
        "calendar.work_hours: {first:?} and {second:?} overlap; periods must not share any time"
    )]
    OverlappingWorkPeriods {
        /// The earlier-starting period as written in the config.
        first: String,
        /// The later-starting period as written in the config.
        second: String,
    },
    /// A weekend entry that is not a day of the week.
    #[error(
        "calendar.weekend: {text:?} is not a day of the week; use mon, tue, wed, thu, fri, sat, sun \
         (or the full English names)"
    )]
    BadWeekday {
        /// The entry as written in the config.
        text: String,
    },
    /// Every day of the week is weekend.
    #[error(
        "calendar.weekend: every day of the week is listed; at least one weekday must be a working day"
    )]
    NoWorkingWeekday,
    /// A holiday or make-up entry that is neither a date nor a date range.
    #[error(
        "calendar.{key}: {text:?} is not a date like \"2026-10-01\" or a range like \"2026-10-01..2026-10-07\""
    )]
    BadDate {
        /// `holidays` or `workdays`.
        key: &'static str,
        /// The entry as written in the config.
        text: String,
    },
    /// A range whose last day is before its first day.
    #[error("calendar.{key}: {text:?} ends before it starts; write the earlier date first")]
    BackwardsRange {
        /// `holidays` or `workdays`.
        key: &'static str,
        /// The entry as written in the config.
        text: String,
    },
    /// A range so long it is almost certainly a typo.
    #[error(
        "calendar.{key}: {text:?} covers more than {max} days; split it or check the years",
        max = MAX_RANGE_DAYS
    )]
    RangeTooLong {
        /// `holidays` or `workdays`.
        key: &'static str,
        /// The entry as written in the config.
        text: String,
    },
    /// A date that is both a day off and a make-up workday.
    #[error(
        "calendar.holidays and calendar.workdays both list {date}; a date can only be one of them"
    )]
    HolidayAndWorkday {
        /// The date listed in both.
        date: Date,
    },
}

/// One working period of a day, in minutes after local midnight; `end` may be 1440 (24:00).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Period {
    start: u16,
    end: u16,
}

#[derive(Debug)]
struct Inner {
    tz: TimeZone,
    /// Sorted, non-overlapping, non-empty.
    periods: Vec<Period>,
    /// Indexed by `Weekday::to_monday_zero_offset`.
    weekend: [bool; 7],
    holidays: BTreeSet<Date>,
    workdays: BTreeSet<Date>,
    minutes_per_day: i64,
}

/// A validated calendar; cheap to clone (the data is shared behind an `Arc`).
#[derive(Debug, Clone)]
pub struct WorkCalendar {
    inner: Arc<Inner>,
}

impl WorkCalendar {
    /// Validates a `[calendar]` table; the only way to get a calendar, so every
    /// calendar in use has well-formed periods and at least one working weekday.
    pub fn from_config(cfg: &CalendarConfig) -> Result<Self, CalendarError> {
        let tz =
            TimeZone::get(cfg.timezone.trim()).map_err(|_| CalendarError::UnknownTimezone {
                name: cfg.timezone.clone(),
            })?;

        let periods = parse_work_hours(&cfg.work_hours)?;
        let minutes_per_day = periods.iter().map(|p| i64::from(p.end - p.start)).sum();

        let mut weekend = [false; 7];
        for text in &cfg.weekend {
            let day = parse_weekday(text)
                .ok_or_else(|| CalendarError::BadWeekday { text: text.clone() })?;
            weekend[weekday_index(day)] = true;
        }
        if weekend.iter().all(|&off| off) {
            return Err(CalendarError::NoWorkingWeekday);
        }

        let holidays = parse_dates("holidays", &cfg.holidays)?;
        let workdays = parse_dates("workdays", &cfg.workdays)?;
        if let Some(&date) = holidays.intersection(&workdays).next() {
            return Err(CalendarError::HolidayAndWorkday { date });
        }

        Ok(WorkCalendar {
            inner: Arc::new(Inner {
                tz,
                periods,
                weekend,
                holidays,
                workdays,
                minutes_per_day,
            }),
        })
    }

    /// The zone the work hours are in; callers need it to show deadlines in local time.
    pub fn timezone(&self) -> &TimeZone {
        &self.inner.tz
    }

    /// Whether departments work on `date`: make-up workdays always do, holidays
    /// never do, otherwise it depends on the weekend setting.
    pub fn is_working_day(&self, date: Date) -> bool {
        let inner = &*self.inner;
        if inner.workdays.contains(&date) {
            return true;
        }
        if inner.holidays.contains(&date) {
            return false;
        }
        !inner.weekend[weekday_index(date.weekday())]
    }

    /// Working minutes in one working day (480 with the defaults); converts
    /// limits given in working days into working minutes.
    pub fn minutes_per_day(&self) -> i64 {
        self.inner.minutes_per_day
    }

    /// The instant that lies `minutes` working minutes after `start`. If `start` is outside working time,
    /// counting begins at the next working period. A deadline that exactly fills a period ends at that
    /// period's end (12:00), not at the next period's start (14:00). minutes <= 0 returns start unchanged.
    ///
    /// Walks period by period, not minute by minute. If no working time is
    /// found for 3660 days in a row (only possible with a holiday list that
    /// long) the walk stops and returns the instant where it stopped; a
    /// deadline past the end of representable time is [`Timestamp::MAX`].
    pub fn add_working_minutes(&self, start: Timestamp, minutes: i64) -> Timestamp {
        if minutes <= 0 {
            return start;
        }
        self.add_nanos(start, i128::from(minutes) * NANOS_PER_MINUTE)
    }

    /// Working minutes in [from, to); 0 if to <= from. Whole minutes (floor), computed with second precision internally.
    ///
    /// (The sum is in fact exact to the nanosecond before flooring, so
    /// `working_minutes_between(s, add_working_minutes(s, m)) == m` always holds.)
    pub fn working_minutes_between(&self, from: Timestamp, to: Timestamp) -> i64 {
        let nanos = self.working_nanos_between(from, to);
        // Non-negative, so truncating division is floor. The total cannot
        // exceed the span of representable time, which fits an i64 of minutes.
        i64::try_from(nanos / NANOS_PER_MINUTE).unwrap_or(i64::MAX)
    }

    /// Whether `at` falls within working time: a working day, inside one of its periods.
    pub fn is_working_time(&self, at: Timestamp) -> bool {
        let local = self.inner.tz.to_datetime(at);
        if !self.is_working_day(local.date()) {
            return false;
        }
        let minute = u16::try_from(local.hour()).unwrap_or(0) * 60
            + u16::try_from(local.minute()).unwrap_or(0);
        self.inner
            .periods
            .iter()
            .any(|p| p.start <= minute && minute < p.end)
    }

    /// The local civil date of an instant in the calendar's timezone (used e.g. for per-day ticket numbers).
    pub fn local_date(&self, at: Timestamp) -> Date {
        self.inner.tz.to_datetime(at).date()
    }

    /// The day to start a walk from: the day before `at`'s local date, so that
    /// no interval containing `at` is missed even around odd offset changes.
    fn walk_start(&self, at: Timestamp) -> Date {
        let date = self.local_date(at);
        date.yesterday().unwrap_or(date)
    }

    /// Core of [`Self::add_working_minutes`]; `remaining` is positive.
    fn add_nanos(&self, start: Timestamp, mut remaining: i128) -> Timestamp {
        let cursor = start.as_nanosecond();
        // Working time never outruns natural time: if even the natural time
        // left before the end of representable time is too short, stop now
        // instead of walking millions of days.
        if remaining > Timestamp::MAX.as_nanosecond() - cursor {
            return Timestamp::MAX;
        }
        let mut day = self.walk_start(start);
        let mut idle_days = 0u32;
        loop {
            let mut worked = false;
            if self.is_working_day(day) {
                for &(s, e) in self.intervals(day).as_slice() {
                    if e <= cursor {
                        continue;
                    }
                    let s = s.max(cursor);
                    let len = e - s;
                    if remaining <= len {
                        // s + remaining <= e, and e is a valid instant.
                        return Timestamp::from_nanosecond(s + remaining).unwrap_or(Timestamp::MAX);
                    }
                    remaining -= len;
                    worked = true;
                }
            }
            if worked {
                idle_days = 0;
            } else {
                idle_days += 1;
                if idle_days > MAX_IDLE_DAYS {
                    let far =
                        Timestamp::from_nanosecond(self.day_start(day)).unwrap_or(Timestamp::MAX);
                    return far.max(start);
                }
            }
            match day.tomorrow() {
                Ok(next) => day = next,
                Err(_) => return Timestamp::MAX,
            }
        }
    }

    /// Exact working time in [from, to), in nanoseconds; 0 if to <= from.
    fn working_nanos_between(&self, from: Timestamp, to: Timestamp) -> i128 {
        if to <= from {
            return 0;
        }
        let (lo, hi) = (from.as_nanosecond(), to.as_nanosecond());
        let mut total = 0i128;
        let mut day = self.walk_start(from);
        while self.day_start(day) < hi {
            if self.is_working_day(day) {
                for &(s, e) in self.intervals(day).as_slice() {
                    let (s, e) = (s.max(lo), e.min(hi));
                    if s < e {
                        total += e - s;
                    }
                }
            }
            match day.tomorrow() {
                Ok(next) => day = next,
                Err(_) => break,
            }
        }
        total
    }

    /// The instant (nanoseconds since the Unix epoch) a local civil time maps
    /// to, by the usual "compatible" rule for gaps and folds; saturated to the
    /// ends of representable time near the years -9999 and 9999.
    fn instant_nanos(&self, dt: DateTime) -> i128 {
        match self.inner.tz.to_timestamp(dt) {
            Ok(ts) => ts.as_nanosecond(),
            Err(_) if dt.date().year() < 0 => Timestamp::MIN.as_nanosecond(),
            Err(_) => Timestamp::MAX.as_nanosecond(),
        }
    }

    /// The first instant of a local day.
    fn day_start(&self, day: Date) -> i128 {
        self.instant_nanos(day.to_datetime(Time::midnight()))
    }

    /// The working intervals of `day` as instants (nanoseconds since the Unix
    /// epoch), sorted and non-overlapping. Periods are mapped to instants,
    /// then clamped to the day's own bounds and to each other, so that
    /// intervals never overlap within a day or across days even when a period
    /// touches a DST gap.
    fn intervals(&self, day: Date) -> DayIntervals {
        let day_end = match day.tomorrow() {
            Ok(next) => self.day_start(next),
            Err(_) => Timestamp::MAX.as_nanosecond(),
        };
        let at_minute = |minute: u16| match clock(minute) {
            Some(time) => self.instant_nanos(day.to_datetime(time)),
            None => day_end,
        };
        let day_lo = self.day_start(day);
        let day_hi = day_end.max(day_lo);
        let mut out = DayIntervals::default();
        let mut prev_end = day_lo;
        for period in &self.inner.periods {
            let s = at_minute(period.start).clamp(prev_end, day_hi);
            let e = at_minute(period.end).clamp(s, day_hi);
            if s < e {
                out.push((s, e));
                prev_end = e;
            }
        }
        out
    }
}

/// The civil time `minute` minutes after midnight; `None` for 24:00.
fn clock(minute: u16) -> Option<Time> {
    let hour = i8::try_from(minute / 60).ok()?;
    let minute = i8::try_from(minute % 60).ok()?;
    Time::new(hour, minute, 0, 0).ok()
}

/// The intervals of one day without a heap allocation in the common case
/// (up to four periods a day).
#[derive(Default)]
struct DayIntervals {
    inline: [(i128, i128); 4],
    len: usize,
    spill: Vec<(i128, i128)>,
}

impl DayIntervals {
    fn push(&mut self, interval: (i128, i128)) {
        if !self.spill.is_empty() {
            self.spill.push(interval);
        } else if self.len < self.inline.len() {
            self.inline[self.len] = interval;
            self.len += 1;
        } else {
            self.spill.extend_from_slice(&self.inline[..self.len]);
            self.spill.push(interval);
        }
    }

    fn as_slice(&self) -> &[(i128, i128)] {
        if self.spill.is_empty() {
            &self.inline[..self.len]
        } else {
            &self.spill
        }
    }
}

fn weekday_index(day: Weekday) -> usize {
    // 0..=6 by definition.
    day.to_monday_zero_offset() as usize
}

fn parse_weekday(text: &str) -> Option<Weekday> {
    let day = match text.trim().to_ascii_lowercase().as_str() {
        "mon" | "monday" => Weekday::Monday,
        "tue" | "tuesday" => Weekday::Tuesday,
        "wed" | "wednesday" => Weekday::Wednesday,
        "thu" | "thursday" => Weekday::Thursday,
        "fri" | "friday" => Weekday::Friday,
        "sat" | "saturday" => Weekday::Saturday,
        "sun" | "sunday" => Weekday::Sunday,
        _ => return None,
    };
    Some(day)
}

/// Parses, sorts and checks the work periods.
fn parse_work_hours(texts: &[String]) -> Result<Vec<Period>, CalendarError> {
    if texts.is_empty() {
        return Err(CalendarError::NoWorkHours);
    }
    let mut periods = Vec::with_capacity(texts.len());
    for text in texts {
        let bad = || CalendarError::BadWorkPeriod { text: text.clone() };
        let (start, end) = text.trim().split_once('-').ok_or_else(bad)?;
        let start = parse_clock(start, false).ok_or_else(bad)?;
        let end = parse_clock(end, true).ok_or_else(bad)?;
        if end <= start {
            return Err(CalendarError::BackwardsWorkPeriod { text: text.clone() });
        }
        periods.push((Period { start, end }, text));
    }
    periods.sort_by_key(|(p, _)| (p.start, p.end));
    for pair in periods.windows(2) {
        let [(a, a_text), (b, b_text)] = pair else {
            continue;
        };
        if b.start < a.end {
            return Err(CalendarError::OverlappingWorkPeriods {
                first: (*a_text).clone(),
                second: (*b_text).clone(),
            });
        }
    }
    Ok(periods.into_iter().map(|(p, _)| p).collect())
}

/// Parses "HH:MM" (or "H:MM") into minutes after midnight. "24:00" is
/// accepted only as the end of a period.
fn parse_clock(text: &str, is_end: bool) -> Option<u16> {
    let (h, m) = text.trim().split_once(':')?;
    let digits = |s: &str, max_len: usize| {
        (!s.is_empty() && s.len() <= max_len && s.bytes().all(|b| b.is_ascii_digit()))
            .then(|| s.parse::<u16>().ok())
            .flatten()
    };
    let h = digits(h, 2)?;
    if m.len() != 2 {
        return None;
    }
    let m = digits(m, 2)?;
    if m >= 60 {
        return None;
    }
    let minute = h * 60 + m;
    if minute < MINUTES_PER_CIVIL_DAY || (is_end && minute == MINUTES_PER_CIVIL_DAY) {
        Some(minute)
    } else {
        None
    }
}

/// Parses a list of dates and inclusive ranges into the set of dates they cover.
fn parse_dates(key: &'static str, texts: &[String]) -> Result<BTreeSet<Date>, CalendarError> {
    let mut dates = BTreeSet::new();
    for text in texts {
        let bad = || CalendarError::BadDate {
            key,
            text: text.clone(),
        };
        let parse_one = |s: &str| -> Result<Date, CalendarError> {
            let s = s.trim();
            // Only the plain YYYY-MM-DD form, so the config reads unambiguously.
            let plain = s.len() == 10
                && s.bytes().enumerate().all(|(i, b)| match i {
                    4 | 7 => b == b'-',
                    _ => b.is_ascii_digit(),
                });
            if !plain {
                return Err(bad());
            }
            s.parse::<Date>().map_err(|_| bad())
        };
        let (first, last) = match text.split_once("..") {
            Some((a, b)) => (parse_one(a)?, parse_one(b)?),
            None => {
                let d = parse_one(text)?;
                (d, d)
            }
        };
        if last < first {
            return Err(CalendarError::BackwardsRange {
                key,
                text: text.clone(),
            });
        }
        let mut day = first;
        let mut count = 0u32;
        loop {
            count += 1;
            if count > MAX_RANGE_DAYS {
                return Err(CalendarError::RangeTooLong {
                    key,
                    text: text.clone(),
                });
            }
            dates.insert(day);
            if day >= last {
                break;
            }
            // `day < last`, so there is a next day.
            day = day.tomorrow().map_err(|_| bad())?;
        }
    }
    Ok(dates)
}

#[cfg(test)]
mod tests {
    use super::*;
    use jiff::civil::date;
    use proptest::prelude::*;

    /// The 2026 national holidays and make-up workdays (as far as these tests need them).
    fn china_2026() -> CalendarConfig {
        CalendarConfig {
            holidays: vec![
                "2026-01-01..2026-01-03".into(),
                "2026-02-15..2026-02-23".into(),
                "2026-10-01..2026-10-07".into(),
            ],
            workdays: vec![
                "2026-01-04".into(),
                "2026-02-14".into(),
                "2026-02-28".into(),
                "2026-09-20".into(),
                "2026-10-10".into(),
            ],
            ..CalendarConfig::default()
        }
    }

    fn cal() -> WorkCalendar {
        WorkCalendar::from_config(&china_2026()).expect("valid calendar")
    }

    /// A Shanghai wall-clock time as an instant.
    fn sh(y: i16, mo: i8, d: i8, h: i8, mi: i8) -> Timestamp {
        let tz = TimeZone::get("Asia/Shanghai").unwrap();
        tz.to_timestamp(date(y, mo, d).at(h, mi, 0, 0)).unwrap()
    }

    fn err(cfg: CalendarConfig) -> CalendarError {
        WorkCalendar::from_config(&cfg).expect_err("config should be rejected")
    }

    #[test]
    fn working_time_is_inside_a_period_of_a_working_day() {
        let c = cal();
        assert!(c.is_working_time(sh(2026, 3, 6, 8, 0)), "08:00 opens");
        assert!(c.is_working_time(sh(2026, 3, 6, 11, 59)));
        assert!(!c.is_working_time(sh(2026, 3, 6, 12, 0)), "lunch");
        assert!(!c.is_working_time(sh(2026, 3, 6, 18, 0)), "18:00 closes");
        assert!(!c.is_working_time(sh(2026, 3, 7, 9, 0)), "Saturday");
        assert!(!c.is_working_time(sh(2026, 10, 2, 9, 0)), "National Day");
        assert!(
            c.is_working_time(sh(2026, 10, 10, 9, 0)),
            "make-up Saturday"
        );
    }

    #[test]
    fn opening_hours_follow_their_days_setting() {
        let base = china_2026();
        let hours = |days| OpeningHours {
            periods: vec!["08:00-20:00".into()],
            days,
        };
        let every = hours(OpenDays::EveryDay).calendar(&base).unwrap();
        let but_holidays = hours(OpenDays::EveryDayButHolidays)
            .calendar(&base)
            .unwrap();
        let working = hours(OpenDays::WorkingDays).calendar(&base).unwrap();
        let saturday_evening = sh(2026, 3, 7, 19, 30);
        let holiday_noon = sh(2026, 10, 2, 12, 30);
        let late = sh(2026, 3, 6, 20, 0);
        assert!(every.is_working_time(saturday_evening) && every.is_working_time(holiday_noon));
        assert!(but_holidays.is_working_time(saturday_evening));
        assert!(!but_holidays.is_working_time(holiday_noon));
        assert!(
            !working.is_working_time(saturday_evening) && !working.is_working_time(holiday_noon)
        );
        assert!(
            working.is_working_time(sh(2026, 10, 10, 12, 30)),
            "调休 day open"
        );
        for c in [&every, &but_holidays, &working] {
            assert!(!c.is_working_time(late), "20:00 closes");
        }
        let all_day = OpeningHours {
            periods: vec!["00:00-24:00".into()],
            days: OpenDays::EveryDay,
        }
        .calendar(&base)
        .unwrap();
        assert!(all_day.is_working_time(sh(2026, 10, 2, 3, 15)));
        let bad = OpeningHours {
            periods: vec!["20:00-08:00".into()],
            days: OpenDays::EveryDay,
        };
        assert!(matches!(
            bad.calendar(&base),
            Err(CalendarError::BackwardsWorkPeriod { .. })
        ));
    }

    #[test]
    fn defaults() {
        let c = WorkCalendar::from_config(&CalendarConfig::default()).unwrap();
        assert_eq!(c.minutes_per_day(), 480);
        assert_eq!(c.timezone().iana_name(), Some("Asia/Shanghai"));
        assert!(c.is_working_day(date(2026, 3, 6)));
        assert!(!c.is_working_day(date(2026, 3, 7)));
        assert!(!c.is_working_day(date(2026, 3, 8)));
    }

    #[test]
    fn config_from_toml_uses_defaults_and_rejects_unknown_keys() {
        let cfg: CalendarConfig =
            toml::from_str("holidays = [\"2026-10-01..2026-10-07\"]").unwrap();
        assert_eq!(cfg.timezone, "Asia/Shanghai");
        assert_eq!(cfg.work_hours, default_work_hours());
        assert_eq!(cfg.weekend, default_weekend());
        assert_eq!(cfg.holidays.len(), 1);
        assert!(toml::from_str::<CalendarConfig>("work_hour = []").is_err());
    }

    #[test]
    fn working_days_2026() {
        let c = cal();
        assert!(!c.is_working_day(date(2026, 1, 1)));
        assert!(!c.is_working_day(date(2026, 1, 3)));
        assert_eq!(date(2026, 1, 4).weekday(), Weekday::Sunday);
        assert!(c.is_working_day(date(2026, 1, 4)));
        assert!(c.is_working_day(date(2026, 2, 14)));
        assert!(!c.is_working_day(date(2026, 2, 16)));
        assert!(c.is_working_day(date(2026, 2, 28)));
        assert!(c.is_working_day(date(2026, 9, 20)));
        assert!(!c.is_working_day(date(2026, 10, 5)));
        assert!(c.is_working_day(date(2026, 10, 8)));
        assert!(c.is_working_day(date(2026, 10, 10)));
        assert!(!c.is_working_day(date(2026, 10, 11)));
    }

    #[test]
    fn friday_evening_rolls_to_monday() {
        let c = cal();
        assert_eq!(date(2026, 3, 6).weekday(), Weekday::Friday);
        let start = sh(2026, 3, 6, 17, 0);
        assert_eq!(c.add_working_minutes(start, 120), sh(2026, 3, 9, 9, 0));
        assert_eq!(c.working_minutes_between(start, sh(2026, 3, 9, 9, 0)), 120);
    }

    #[test]
    fn filling_a_period_ends_at_its_end() {
        let c = cal();
        assert_eq!(
            c.add_working_minutes(sh(2026, 3, 5, 11, 30), 30),
            sh(2026, 3, 5, 12, 0)
        );
        assert_eq!(
            c.add_working_minutes(sh(2026, 3, 5, 11, 30), 31),
            sh(2026, 3, 5, 14, 1)
        );
        assert_eq!(
            c.add_working_minutes(sh(2026, 3, 5, 8, 0), 480),
            sh(2026, 3, 5, 18, 0)
        );
        assert_eq!(
            c.add_working_minutes(sh(2026, 3, 5, 8, 0), 481),
            sh(2026, 3, 6, 8, 1)
        );
    }

    #[test]
    fn outside_working_time_starts_at_next_period() {
        let c = cal();
        // Thursday evening → Friday morning.
        assert_eq!(
            c.add_working_minutes(sh(2026, 3, 5, 19, 0), 1),
            sh(2026, 3, 6, 8, 1)
        );
        // Lunch break → afternoon.
        assert_eq!(
            c.add_working_minutes(sh(2026, 3, 5, 12, 30), 10),
            sh(2026, 3, 5, 14, 10)
        );
        // Early morning → same day.
        assert_eq!(
            c.add_working_minutes(sh(2026, 3, 5, 6, 0), 60),
            sh(2026, 3, 5, 9, 0)
        );
        // Friday evening → Monday.
        assert_eq!(
            c.add_working_minutes(sh(2026, 3, 6, 19, 0), 1),
            sh(2026, 3, 9, 8, 1)
        );
    }

    #[test]
    fn non_positive_minutes_return_start() {
        let c = cal();
        let start = sh(2026, 3, 7, 3, 17);
        assert_eq!(c.add_working_minutes(start, 0), start);
        assert_eq!(c.add_working_minutes(start, -5), start);
        assert_eq!(c.add_working_minutes(start, i64::MIN), start);
    }

    #[test]
    fn national_day_is_skipped() {
        let c = cal();
        let start = sh(2026, 9, 30, 16, 0);
        let due = c.add_working_minutes(start, c.minutes_per_day());
        assert_eq!(due, sh(2026, 10, 8, 16, 0));
        assert_eq!(c.working_minutes_between(start, due), 480);
    }

    #[test]
    fn make_up_days_count() {
        let c = cal();
        // 2025-12-31 (Wed) 17:00: one hour left, then New Year 01-01..03, then make-up Sunday 01-04.
        assert_eq!(
            c.add_working_minutes(sh(2025, 12, 31, 17, 0), 120),
            sh(2026, 1, 4, 9, 0)
        );
        // Before Spring Festival: Friday 02-13, then make-up Saturday 02-14.
        assert_eq!(
            c.add_working_minutes(sh(2026, 2, 13, 17, 0), 120),
            sh(2026, 2, 14, 9, 0)
        );
        // From the make-up Saturday across the whole festival to Tuesday 02-24.
        assert_eq!(
            c.add_working_minutes(sh(2026, 2, 14, 17, 0), 120),
            sh(2026, 2, 24, 9, 0)
        );
        // Make-up Sunday before National Day.
        assert_eq!(
            c.add_working_minutes(sh(2026, 9, 19, 10, 0), 60),
            sh(2026, 9, 20, 9, 0)
        );
    }

    #[test]
    fn fifteen_working_days() {
        let c = cal();
        // Thursday 2026-09-24 09:00 + 15 working days.
        let start = sh(2026, 9, 24, 9, 0);
        let due = c.add_working_minutes(start, 15 * 480);
        // Working days from 9/24 09:00: 9/24(part), 9/25, 9/28, 9/29, 9/30, 10/8, 10/9, 10/10,
        // 10/12, 10/13, 10/14, 10/15, 10/16, 10/19, 10/20, and 10/21 until 09:00.
        assert_eq!(due, sh(2026, 10, 21, 9, 0));
        assert_eq!(c.working_minutes_between(start, due), 15 * 480);
    }

    #[test]
    fn timezone_matters() {
        let c = cal();
        // 09:00 UTC is 17:00 in Shanghai on Friday 2026-03-06.
        let start: Timestamp = "2026-03-06T09:00:00Z".parse().unwrap();
        let due = c.add_working_minutes(start, 120);
        assert_eq!(due, "2026-03-09T01:00:00Z".parse::<Timestamp>().unwrap());
        assert_eq!(
            c.local_date("2026-03-06T16:30:00Z".parse().unwrap()),
            date(2026, 3, 7)
        );

        let utc = WorkCalendar::from_config(&CalendarConfig {
            timezone: "UTC".into(),
            ..CalendarConfig::default()
        })
        .unwrap();
        // In a UTC calendar 09:00Z is Friday morning, so the same limit ends the same morning.
        assert_eq!(
            utc.add_working_minutes(start, 120),
            "2026-03-06T11:00:00Z".parse::<Timestamp>().unwrap()
        );
        assert_eq!(
            utc.local_date("2026-03-06T16:30:00Z".parse().unwrap()),
            date(2026, 3, 6)
        );
    }

    #[test]
    fn between_basics() {
        let c = cal();
        let a = sh(2026, 3, 5, 8, 0);
        assert_eq!(c.working_minutes_between(a, a), 0);
        assert_eq!(c.working_minutes_between(sh(2026, 3, 5, 18, 0), a), 0);
        assert_eq!(c.working_minutes_between(a, sh(2026, 3, 5, 18, 0)), 480);
        assert_eq!(
            c.working_minutes_between(sh(2026, 3, 5, 11, 0), sh(2026, 3, 5, 15, 0)),
            120
        );
        // Whole minutes, floored.
        let half = jiff::SignedDuration::from_secs(90);
        assert_eq!(
            c.working_minutes_between(a, a.checked_add(half).unwrap()),
            1
        );
        // A weekend in between contributes nothing.
        assert_eq!(
            c.working_minutes_between(sh(2026, 3, 7, 0, 0), sh(2026, 3, 9, 0, 0)),
            0
        );
    }

    #[test]
    fn sub_minute_start() {
        let c = cal();
        let start = sh(2026, 3, 5, 11, 59)
            .checked_add(jiff::SignedDuration::from_secs(30))
            .unwrap();
        let due = c.add_working_minutes(start, 1);
        assert_eq!(
            due,
            sh(2026, 3, 5, 14, 0)
                .checked_add(jiff::SignedDuration::from_secs(30))
                .unwrap()
        );
        assert_eq!(c.working_minutes_between(start, due), 1);
    }

    #[test]
    fn end_of_day_period() {
        let c = WorkCalendar::from_config(&CalendarConfig {
            work_hours: vec!["18:00-24:00".into()],
            weekend: vec![],
            ..CalendarConfig::default()
        })
        .unwrap();
        assert_eq!(c.minutes_per_day(), 360);
        assert_eq!(
            c.add_working_minutes(sh(2026, 3, 5, 23, 30), 30),
            sh(2026, 3, 6, 0, 0)
        );
        assert_eq!(
            c.add_working_minutes(sh(2026, 3, 5, 23, 30), 60),
            sh(2026, 3, 6, 18, 30)
        );
    }

    #[test]
    fn periods_are_sorted_and_adjacent_ones_allowed() {
        let c = WorkCalendar::from_config(&CalendarConfig {
            work_hours: vec![
                "14:00-18:00".into(),
                " 8:00 - 12:00 ".into(),
                "12:00-13:00".into(),
            ],
            ..CalendarConfig::default()
        })
        .unwrap();
        assert_eq!(c.minutes_per_day(), 540);
        assert_eq!(
            c.add_working_minutes(sh(2026, 3, 5, 7, 0), 300),
            sh(2026, 3, 5, 13, 0)
        );
        assert_eq!(
            c.add_working_minutes(sh(2026, 3, 5, 7, 0), 301),
            sh(2026, 3, 5, 14, 1)
        );
    }

    #[test]
    fn weekday_names() {
        let c = WorkCalendar::from_config(&CalendarConfig {
            weekend: vec!["FRIDAY".into(), "Sat".into(), " sun ".into()],
            ..CalendarConfig::default()
        })
        .unwrap();
        assert!(!c.is_working_day(date(2026, 3, 6)));
        assert!(c.is_working_day(date(2026, 3, 5)));
    }

    #[test]
    fn rejects_bad_timezone() {
        let e = err(CalendarConfig {
            timezone: "Asia/Shanghia".into(),
            ..CalendarConfig::default()
        });
        assert!(matches!(e, CalendarError::UnknownTimezone { .. }));
        assert!(
            e.to_string()
                .starts_with("calendar.timezone: \"Asia/Shanghia\""),
            "{e}"
        );
    }

    #[test]
    fn rejects_bad_work_hours() {
        let with = |hours: &[&str]| CalendarConfig {
            work_hours: hours.iter().map(|s| s.to_string()).collect(),
            ..CalendarConfig::default()
        };
        assert_eq!(err(with(&[])), CalendarError::NoWorkHours);
        let e = err(with(&["08:00-25:00"]));
        assert_eq!(
            e.to_string(),
            "calendar.work_hours: \"08:00-25:00\" is not a time range like \"08:00-12:00\""
        );
        for bad in [
            "0800-1200",
            "08:00",
            "08:60-09:00",
            "8-12",
            "08:00-12:00-13:00",
            "24:00-24:00",
            "aa:bb-cc:dd",
            "+8:00-12:00",
            "08:0-12:00",
            "",
        ] {
            assert!(
                matches!(err(with(&[bad])), CalendarError::BadWorkPeriod { .. }),
                "{bad:?} should be a format error"
            );
        }
        for bad in ["18:00-08:00", "08:00-08:00"] {
            let e = err(with(&[bad]));
            assert!(
                matches!(e, CalendarError::BackwardsWorkPeriod { .. }),
                "{bad:?}: {e}"
            );
        }
        let e = err(with(&["08:00-12:00", "13:00-18:00", "11:00-14:00"]));
        assert_eq!(
            e,
            CalendarError::OverlappingWorkPeriods {
                first: "08:00-12:00".into(),
                second: "11:00-14:00".into()
            }
        );
    }

    #[test]
    fn rejects_bad_weekend() {
        let e = err(CalendarConfig {
            weekend: vec!["sat".into(), "sonntag".into()],
            ..CalendarConfig::default()
        });
        assert_eq!(
            e,
            CalendarError::BadWeekday {
                text: "sonntag".into()
            }
        );
        let all = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];
        let e = err(CalendarConfig {
            weekend: all.iter().map(|s| s.to_string()).collect(),
            ..CalendarConfig::default()
        });
        assert_eq!(e, CalendarError::NoWorkingWeekday);
    }

    #[test]
    fn rejects_bad_dates() {
        let holidays = |h: &[&str]| CalendarConfig {
            holidays: h.iter().map(|s| s.to_string()).collect(),
            ..CalendarConfig::default()
        };
        for bad in [
            "2026-13-01",
            "2026-02-30",
            "26-10-01",
            "2026/10/01",
            "2026-10-01..",
            "2026-10-01...2026-10-02",
            "tomorrow",
        ] {
            let e = err(holidays(&[bad]));
            assert!(
                matches!(
                    e,
                    CalendarError::BadDate {
                        key: "holidays",
                        ..
                    }
                ),
                "{bad:?}: {e}"
            );
            assert!(e.to_string().starts_with("calendar.holidays: "), "{e}");
        }
        let e = err(holidays(&["2026-10-07..2026-10-01"]));
        assert!(matches!(e, CalendarError::BackwardsRange { .. }), "{e}");
        let e = err(holidays(&["2026-01-01..2027-01-02"]));
        assert!(matches!(e, CalendarError::RangeTooLong { .. }), "{e}");
        // 366 days inclusive is still fine.
        WorkCalendar::from_config(&holidays(&["2028-01-01..2028-12-31"])).unwrap();
        let e = err(CalendarConfig {
            workdays: vec!["2026-10-0x".into()],
            ..CalendarConfig::default()
        });
        assert!(e.to_string().starts_with("calendar.workdays: "), "{e}");
        let e = err(CalendarConfig {
            holidays: vec!["2026-10-01..2026-10-07".into()],
            workdays: vec!["2026-10-03".into()],
            ..CalendarConfig::default()
        });
        assert_eq!(
            e,
            CalendarError::HolidayAndWorkday {
                date: date(2026, 10, 3)
            }
        );
        assert!(e.to_string().contains("2026-10-03"), "{e}");
    }

    #[test]
    fn endless_holidays_still_terminate() {
        // Eleven years of holidays: there is no working time for more than 3660 days.
        let holidays = (2030..2041)
            .map(|y| format!("{y}-01-01..{y}-12-31"))
            .collect();
        let c = WorkCalendar::from_config(&CalendarConfig {
            holidays,
            ..CalendarConfig::default()
        })
        .unwrap();
        let start = sh(2029, 12, 31, 17, 0);
        let due = c.add_working_minutes(start, 120);
        assert!(due > sh(2039, 12, 1, 0, 0), "{due}");
        assert!(due < sh(2041, 1, 1, 0, 0), "{due}");
    }

    #[test]
    fn end_of_time_is_total() {
        let c = cal();
        assert_eq!(c.add_working_minutes(Timestamp::MAX, 1), Timestamp::MAX);
        assert_eq!(
            c.add_working_minutes(Timestamp::MIN, i64::MAX),
            Timestamp::MAX
        );
        // A century of working time is counted day by day, not minute by minute.
        let century = c.working_minutes_between(sh(2030, 1, 1, 0, 0), sh(2130, 1, 1, 0, 0));
        assert!(
            century > 100 * 250 * 480 && century < 100 * 262 * 480,
            "{century}"
        );
        let near_end = sh(9999, 12, 30, 9, 0);
        assert_eq!(c.add_working_minutes(near_end, 10 * 480), Timestamp::MAX);
        assert_eq!(c.working_minutes_between(Timestamp::MAX, Timestamp::MIN), 0);
        assert!(c.working_minutes_between(near_end, Timestamp::MAX) <= 2 * 480);
        let _ = c.local_date(Timestamp::MIN);
        let early = c.add_working_minutes(Timestamp::MIN, 10);
        assert!(
            early > Timestamp::MIN && early < sh(-9999, 1, 31, 0, 0),
            "{early}"
        );
        assert_eq!(c.working_minutes_between(Timestamp::MIN, early), 10);
    }

    #[test]
    fn dst_zone_stays_consistent() {
        // New York springs forward at 02:00 on 2026-03-08 and falls back at 02:00 on 2026-11-01.
        let c = WorkCalendar::from_config(&CalendarConfig {
            timezone: "America/New_York".into(),
            work_hours: vec![
                "00:00-02:30".into(),
                "02:30-03:00".into(),
                "03:00-24:00".into(),
            ],
            weekend: vec![],
            ..CalendarConfig::default()
        })
        .unwrap();
        let tz = c.timezone().clone();
        let day_start = |d: Date| tz.to_timestamp(d.to_datetime(Time::midnight())).unwrap();
        // The spring-forward day has 23 hours of working time, the fall-back day 25.
        let spring =
            c.working_minutes_between(day_start(date(2026, 3, 8)), day_start(date(2026, 3, 9)));
        assert_eq!(spring, 23 * 60);
        let fall =
            c.working_minutes_between(day_start(date(2026, 11, 1)), day_start(date(2026, 11, 2)));
        assert_eq!(fall, 25 * 60);
        let start = day_start(date(2026, 3, 7));
        assert_eq!(
            c.working_minutes_between(start, c.add_working_minutes(start, 3000)),
            3000
        );
    }

    /// Instants from mid-2025 to mid-2027, to the nanosecond.
    fn any_instant() -> impl Strategy<Value = Timestamp> {
        let lo = sh(2025, 6, 1, 0, 0).as_nanosecond();
        let hi = sh(2027, 6, 1, 0, 0).as_nanosecond();
        (lo..hi).prop_map(|n| Timestamp::from_nanosecond(n).unwrap())
    }

    /// Whole-minute instants over the same span.
    fn minute_instant() -> impl Strategy<Value = Timestamp> {
        let lo = sh(2025, 6, 1, 0, 0).as_second() / 60;
        let hi = sh(2027, 6, 1, 0, 0).as_second() / 60;
        (lo..hi).prop_map(|m| Timestamp::from_second(m * 60).unwrap())
    }

    proptest! {
        #[test]
        fn add_is_monotone(start in any_instant(), a in 0i64..20_000, b in 0i64..20_000) {
            let c = cal();
            let (m1, m2) = (a.min(b), a.max(b));
            let t1 = c.add_working_minutes(start, m1);
            let t2 = c.add_working_minutes(start, m2);
            prop_assert!(t1 >= start);
            prop_assert!(t1 <= t2);
        }

        #[test]
        fn between_inverts_add(start in any_instant(), m in 0i64..20_000) {
            let c = cal();
            let due = c.add_working_minutes(start, m);
            prop_assert_eq!(c.working_minutes_between(start, due), m);
        }

        #[test]
        fn between_is_additive(a in minute_instant(), b in minute_instant(), c_ in minute_instant()) {
            let c = cal();
            let mut v = [a, b, c_];
            v.sort();
            let [a, b, c_] = v;
            prop_assert_eq!(
                c.working_minutes_between(a, b) + c.working_minutes_between(b, c_),
                c.working_minutes_between(a, c_)
            );
        }

        #[test]
        fn exact_time_is_additive(a in any_instant(), b in any_instant(), c_ in any_instant()) {
            let c = cal();
            let mut v = [a, b, c_];
            v.sort();
            let [a, b, c_] = v;
            prop_assert_eq!(
                c.working_nanos_between(a, b) + c.working_nanos_between(b, c_),
                c.working_nanos_between(a, c_)
            );
        }

        #[test]
        fn dst_zone_between_inverts_add(offset_min in 0i64..(2 * 366 * 1440), m in 0i64..20_000) {
            let c = WorkCalendar::from_config(&CalendarConfig {
                timezone: "America/New_York".into(),
                work_hours: vec!["01:30-02:30".into(), "09:00-17:00".into(), "23:00-24:00".into()],
                ..CalendarConfig::default()
            })
            .unwrap();
            let start = Timestamp::from_second(sh(2025, 6, 1, 0, 0).as_second() + offset_min * 60).unwrap();
            let due = c.add_working_minutes(start, m);
            prop_assert!(due >= start);
            prop_assert_eq!(c.working_minutes_between(start, due), m);
        }
    }
}
