//! Duplicate reports (重复件): which open ticket, if any, a new report is about.
//!
//! Many citizens report the same broken manhole through the phone, WeChat, the app and the web.
//! On intake a new [`Submission`] is compared with the open tickets near it in space and time
//! ([`Candidate`]s) and [`decide`] says what to do: merge it automatically into one
//! ([`Decision::Merge`]), offer the agent the likely ones to confirm or reject
//! ([`Decision::Suggest`]), or open a new ticket ([`Decision::New`]).
//!
//! A candidate is first *gated*: outside the time window or farther than the distance limit it
//! is not a duplicate whatever it says. What passes is [`score`]d from three pieces of evidence:
//!
//! - **category** (weight 0.4): the same 小类 is strong evidence; a different 小类 of the same
//!   大类 (`C0114` 井盖 and `C0118` 路灯) is evidence *against*, because both reports were
//!   classified and came out different; an unknown category is neutral; categories of different
//!   大类 or kind never merge automatically (at most they are suggested);
//! - **place** (weight 0.3): closeness in metres (haversine), else the same 单元网格 or the same
//!   address, else unknown; a report with no location at all is never merged automatically;
//! - **text** (weight 0.3): character-bigram containment of the normalised texts (Chinese has no
//!   spaces, so words cannot be split reliably; bigrams of characters work without a dictionary).
//!
//! The default thresholds were tuned on the labelled set in `tests/data/merge/` (replayed by
//! `ticketing/tests/merge_dataset.rs`), for a precision of automatic merging of at least 0.95.
//!
//! Invariant: no I/O, no clock — the time of a report is passed in.

use std::collections::BTreeSet;

use jiff::{SignedDuration, Timestamp};
use serde::Deserialize;

use crate::model::{Location, TicketNumber};

/// How duplicates are found and merged: the `[merge]` table of `hotline.toml`. Every key is
/// optional; the defaults are [`MergePolicy::default`].
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MergePolicy {
    /// Look for duplicates at all. When false, [`decide`] always answers [`Decision::New`].
    pub enabled: bool,
    /// Two reports with coordinates farther apart than this (metres) are never duplicates.
    pub distance_m: f64,
    /// A report is compared only with tickets created at most this many hours before it.
    pub window_hours: u32,
    /// Score from which a report is merged without asking (0..=1).
    pub auto_merge: f64,
    /// Score from which a candidate is offered to the agent (0..=1, at most `auto_merge`).
    pub suggest: f64,
    /// Number of reports at which a merged ticket becomes 紧急; 0: never.
    pub raise_priority_at: u32,
}

impl Default for MergePolicy {
    fn default() -> Self {
        MergePolicy {
            enabled: true,
            distance_m: 150.0,
            window_hours: 72,
            auto_merge: 0.65,
            suggest: 0.4,
            raise_priority_at: 5,
        }
    }
}

/// A `[merge]` table that cannot work; the message names the key and what to do.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum PolicyError {
    /// A threshold outside 0..=1.
    #[error("merge.{key} = {value}: a score threshold must be between 0 and 1")]
    Threshold {
        /// `auto_merge` or `suggest`.
        key: &'static str,
        /// The configured value.
        value: f64,
    },
    /// The suggestion band would lie above automatic merging.
    #[error(
        "merge.suggest = {suggest} is above merge.auto_merge = {auto_merge}: suggestions are the \
         band below automatic merging; lower suggest or raise auto_merge"
    )]
    SuggestAboveAutoMerge {
        /// The configured `suggest`.
        suggest: f64,
        /// The configured `auto_merge`.
        auto_merge: f64,
    },
    /// A distance that is not a positive number of metres.
    #[error("merge.distance_m = {0}: give a positive number of metres, e.g. 150")]
    Distance(f64),
    /// A window of zero hours would never find a duplicate.
    #[error("merge.window_hours = 0: give the number of hours a ticket stays a candidate, e.g. 72")]
    Window,
}

impl MergePolicy {
    /// Checks the values; call it when the configuration is loaded.
    pub fn validate(&self) -> Result<(), PolicyError> {
        for (key, value) in [("auto_merge", self.auto_merge), ("suggest", self.suggest)] {
            if !(0.0..=1.0).contains(&value) {
                return Err(PolicyError::Threshold { key, value });
            }
        }
        if self.suggest > self.auto_merge {
            return Err(PolicyError::SuggestAboveAutoMerge {
                suggest: self.suggest,
                auto_merge: self.auto_merge,
            });
        }
        if !(self.distance_m.is_finite() && self.distance_m > 0.0) {
            return Err(PolicyError::Distance(self.distance_m));
        }
        if self.window_hours == 0 {
            return Err(PolicyError::Window);
        }
        Ok(())
    }

    /// The time window as a duration.
    pub fn window(&self) -> SignedDuration {
        SignedDuration::from_hours(i64::from(self.window_hours))
    }
}

/// What a new report says, before it is a ticket.
#[derive(Debug, Clone, PartialEq)]
pub struct Submission {
    /// The citizen's words (or the agent's summary of a call).
    pub content: String,
    /// Category ID (`C0101`) if one was chosen or suggested.
    pub category: Option<String>,
    /// Where, as far as it is known.
    pub location: Location,
    /// When it was received.
    pub at: Timestamp,
}

/// An open ticket a new report may be a duplicate of.
#[derive(Debug, Clone, PartialEq)]
pub struct Candidate {
    /// The ticket.
    pub number: TicketNumber,
    /// Its content.
    pub content: String,
    /// Its category ID, if classified.
    pub category: Option<String>,
    /// Its location.
    pub location: Location,
    /// When it was created; the window is counted from here.
    pub created_at: Timestamp,
    /// How many reports it already stands for (1 for a ticket nothing was merged into). Not part
    /// of the score; after a merge the caller checks `reports + 1` with [`raises_priority`].
    pub reports: u32,
}

/// A candidate that scored high enough to act on.
#[derive(Debug, Clone, PartialEq)]
pub struct Match {
    /// The open ticket.
    pub number: TicketNumber,
    /// Its score, 0..=1.
    pub score: f64,
}

/// What to do with a new report.
#[derive(Debug, Clone, PartialEq)]
pub enum Decision {
    /// No open ticket is about the same problem: open a new one.
    New,
    /// Offer these to the agent, best first (at most [`MAX_SUGGESTIONS`]).
    Suggest(Vec<Match>),
    /// The same problem as this ticket: merge without asking.
    Merge(Match),
}

/// The most candidates a suggestion lists.
pub const MAX_SUGGESTIONS: usize = 5;

/// How two categories relate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Relation {
    /// The same 小类.
    Same,
    /// Different 小类 of the same kind and 大类 (`C0114` and `C0102`).
    Related,
    /// One side has no category.
    Unknown,
    /// Different 大类 or kind.
    Unrelated,
}

/// Relates two category IDs: same ID, same kind letter and 大类 (the first 3 characters,
/// `C01` of `C0101`), unknown when either is missing, unrelated otherwise.
pub fn category_relation(a: Option<&str>, b: Option<&str>) -> Relation {
    match (a, b) {
        (Some(a), Some(b)) if a == b => Relation::Same,
        (Some(a), Some(b)) => match (a.get(..3), b.get(..3)) {
            (Some(x), Some(y)) if x == y => Relation::Related,
            _ => Relation::Unrelated,
        },
        _ => Relation::Unknown,
    }
}

/// Words citizens (and agents' call summaries) put around every report that say nothing about
/// the problem; [`normalize`] drops them so that they do not make unrelated reports look alike.
/// Longer phrases come first so that they are removed whole.
pub const FILLER: &[&str] = &[
    "市民来电反映",
    "请尽快处理",
    "我要反映",
    "我想反映",
    "市民来电",
    "来电反映",
    "相关部门",
    "有关部门",
    "尽快处理",
    "处理一下",
    "反映一下",
    "请处理",
    "你好",
    "您好",
    "请问",
    "麻烦",
    "投诉",
    "举报",
    "一下",
    "谢谢",
];

/// The text as compared: full-width ASCII folded to half-width, ASCII lower-cased, everything
/// that is not a letter or digit (spaces, ，。！？、；：“”（） and their ASCII forms) dropped, then
/// the [`FILLER`] phrases removed.
pub fn normalize(text: &str) -> String {
    let mut out: String = text
        .chars()
        .map(|c| match c {
            // U+FF01..=U+FF5E mirror ASCII 0x21..=0x7E.
            '\u{FF01}'..='\u{FF5E}' => char::from_u32(c as u32 - 0xFEE0).unwrap_or(c),
            _ => c,
        })
        .filter(|c| c.is_alphanumeric())
        .map(|c| c.to_ascii_lowercase())
        .collect();
    for filler in FILLER {
        if out.contains(filler) {
            out = out.replace(filler, "");
        }
    }
    out
}

/// The distinct character bigrams of a normalised text; a one-character text is its own gram.
fn bigrams(normalized: &str) -> BTreeSet<(char, char)> {
    let chars: Vec<char> = normalized.chars().collect();
    match chars.as_slice() {
        [] => BTreeSet::new(),
        [only] => BTreeSet::from([(*only, '\0')]),
        _ => chars.windows(2).map(|w| (w[0], w[1])).collect(),
    }
}

/// How much of the shorter text's character bigrams the other contains, 0..=1 (the overlap
/// coefficient). Containment rather than Dice because reports differ a lot in length: "井盖丢了"
/// in the app and a paragraph on the web describe the same hole.
pub fn text_similarity(a: &str, b: &str) -> f64 {
    let (a, b) = (bigrams(&normalize(a)), bigrams(&normalize(b)));
    let shorter = a.len().min(b.len());
    if shorter == 0 {
        return 0.0;
    }
    a.intersection(&b).count() as f64 / shorter as f64
}

/// Great-circle distance in metres between two WGS-84 points (haversine, mean Earth radius).
pub fn haversine_m(lat1: f64, lon1: f64, lat2: f64, lon2: f64) -> f64 {
    const EARTH_RADIUS_M: f64 = 6_371_008.8;
    let (p1, p2) = (lat1.to_radians(), lat2.to_radians());
    let dp = p2 - p1;
    let dl = (lon2 - lon1).to_radians();
    let h = (dp / 2.0).sin().powi(2) + p1.cos() * p2.cos() * (dl / 2.0).sin().powi(2);
    2.0 * EARTH_RADIUS_M * h.sqrt().min(1.0).asin()
}

/// How close two reports are known to be.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Proximity {
    /// Both have coordinates, this many metres apart.
    Metres(f64),
    /// No coordinates on one side, but the same 单元网格 or the same address.
    SamePlace,
    /// Something is known on both sides, but nothing that compares.
    Unknown,
    /// One side has no location at all.
    Missing,
}

fn coordinates(l: &Location) -> Option<(f64, f64)> {
    match (l.lat, l.lon) {
        (Some(lat), Some(lon)) if lat.is_finite() && lon.is_finite() => Some((lat, lon)),
        _ => None,
    }
}

fn non_empty(s: &Option<String>) -> Option<&str> {
    s.as_deref().map(str::trim).filter(|s| !s.is_empty())
}

/// Whether a report says where (coordinates, a grid or an address): only such a report can be
/// merged without a person, so intake looks for duplicates of it at once.
pub fn has_place(l: &Location) -> bool {
    coordinates(l).is_some() || non_empty(&l.grid_code).is_some() || non_empty(&l.address).is_some()
}

fn proximity(a: &Location, b: &Location) -> Proximity {
    if let (Some((lat1, lon1)), Some((lat2, lon2))) = (coordinates(a), coordinates(b)) {
        return Proximity::Metres(haversine_m(lat1, lon1, lat2, lon2));
    }
    if !has_place(a) || !has_place(b) {
        return Proximity::Missing;
    }
    if let (Some(x), Some(y)) = (non_empty(&a.grid_code), non_empty(&b.grid_code))
        && x == y
    {
        return Proximity::SamePlace;
    }
    if let (Some(x), Some(y)) = (non_empty(&a.address), non_empty(&b.address)) {
        let (x, y) = (normalize(x), normalize(y));
        if !x.is_empty() && x == y {
            return Proximity::SamePlace;
        }
    }
    Proximity::Unknown
}

const WEIGHT_CATEGORY: f64 = 0.4;
const WEIGHT_PLACE: f64 = 0.3;
const WEIGHT_TEXT: f64 = 0.3;

/// Scores how likely `cand` is the ticket `sub` reports again, 0..=1; `None` when it cannot be:
/// created more than the window before (or after) the report, or with coordinates farther than
/// `distance_m`. Candidates whose category is unrelated, or where either side has no location at
/// all, score just below `auto_merge` at most, so they can be suggested but never merged
/// without a person.
pub fn score(sub: &Submission, cand: &Candidate, policy: &MergePolicy) -> Option<f64> {
    let age = sub.at.duration_since(cand.created_at);
    if age.abs() > policy.window() {
        return None;
    }
    let proximity = proximity(&sub.location, &cand.location);
    let place = match proximity {
        Proximity::Metres(d) if d > policy.distance_m => return None,
        // 1 on the spot, 0.5 at the limit: phone GPS wanders by tens of metres.
        Proximity::Metres(d) => 1.0 - 0.5 * d / policy.distance_m,
        Proximity::SamePlace => 0.75,
        Proximity::Unknown | Proximity::Missing => 0.3,
    };
    let relation = category_relation(sub.category.as_deref(), cand.category.as_deref());
    let category = match relation {
        Relation::Same => 1.0,
        Relation::Unknown => 0.6,
        Relation::Related => 0.3,
        Relation::Unrelated => 0.0,
    };
    // Containment of half the bigrams already says the two describe the same thing.
    let text = (2.0 * text_similarity(&sub.content, &cand.content)).min(1.0);
    let value = WEIGHT_CATEGORY * category + WEIGHT_PLACE * place + WEIGHT_TEXT * text;
    if relation == Relation::Unrelated || proximity == Proximity::Missing {
        Some(value.min(below(policy.auto_merge)))
    } else {
        Some(value)
    }
}

/// The largest score that is still below `threshold`.
fn below(threshold: f64) -> f64 {
    (threshold - 1e-9).max(0.0)
}

/// Decides what to do with `sub` given the open tickets `candidates`: [`Decision::Merge`] into the
/// best one if it scores at least `auto_merge`, else [`Decision::Suggest`] those scoring at least
/// `suggest` (best first, at most [`MAX_SUGGESTIONS`]), else [`Decision::New`]. Equal scores keep
/// the order of `candidates`.
pub fn decide(sub: &Submission, candidates: &[Candidate], policy: &MergePolicy) -> Decision {
    if !policy.enabled {
        return Decision::New;
    }
    let mut scored: Vec<Match> = candidates
        .iter()
        .filter_map(|cand| {
            score(sub, cand, policy).map(|score| Match {
                number: cand.number.clone(),
                score,
            })
        })
        .filter(|m| m.score >= policy.suggest)
        .collect();
    scored.sort_by(|a, b| b.score.total_cmp(&a.score));
    match scored.first() {
        None => Decision::New,
        Some(best) if best.score >= policy.auto_merge => Decision::Merge(best.clone()),
        Some(_) => {
            scored.truncate(MAX_SUGGESTIONS);
            Decision::Suggest(scored)
        }
    }
}

/// Whether a ticket that now stands for `reports` reports (after a merge) should become 紧急:
/// at `raise_priority_at` or more, never when that is 0.
pub fn raises_priority(reports: u32, policy: &MergePolicy) -> bool {
    policy.raise_priority_at != 0 && reports >= policy.raise_priority_at
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 魏武大道与芍花路交叉口 in 亳州.
    const LAT: f64 = 33.8446;
    const LON: f64 = 115.7786;

    fn at(hhmm: &str) -> Timestamp {
        format!("2026-11-03T{hhmm}:00+08:00").parse().unwrap()
    }

    fn place(lat: f64, lon: f64) -> Location {
        Location {
            address: None,
            lat: Some(lat),
            lon: Some(lon),
            grid_code: None,
        }
    }

    /// `metres_north` of the crossing.
    fn north(metres_north: f64) -> Location {
        place(LAT + metres_north / 111_000.0, LON)
    }

    fn sub(
        content: &str,
        category: Option<&str>,
        location: Location,
        when: Timestamp,
    ) -> Submission {
        Submission {
            content: content.into(),
            category: category.map(Into::into),
            location,
            at: when,
        }
    }

    fn cand(
        seq: i64,
        content: &str,
        category: Option<&str>,
        location: Location,
        when: Timestamp,
    ) -> Candidate {
        Candidate {
            number: TicketNumber::new("12319", jiff::civil::date(2026, 11, 3), seq),
            content: content.into(),
            category: category.map(Into::into),
            location,
            created_at: when,
            reports: 1,
        }
    }

    fn manhole() -> Candidate {
        cand(
            1,
            "你好，魏武大道和芍花路十字路口东南角的井盖没了，一个大黑洞，早上骑电动车差点掉进去！",
            Some("C0114"),
            north(0.0),
            at("07:40"),
        )
    }

    #[test]
    fn the_same_manhole_reported_two_ways_merges() {
        let policy = MergePolicy::default();
        let call = sub(
            "市民来电反映：魏武大道与芍花路交叉口东南角一处井盖丢失，井口裸露，请尽快处理。",
            Some("C0114"),
            north(40.0),
            at("08:05"),
        );
        let s = score(&call, &manhole(), &policy).unwrap();
        assert!(s >= policy.auto_merge, "{s}");
        assert_eq!(
            decide(&call, &[manhole()], &policy),
            Decision::Merge(Match {
                number: manhole().number,
                score: s
            })
        );
    }

    #[test]
    fn the_same_crossing_with_another_problem_is_not_merged() {
        let policy = MergePolicy::default();
        // Naming the same crossing makes the texts alike: at most an agent is asked.
        let lamp = sub(
            "魏武大道芍花路路口的路灯一排都不亮，黑乎乎的，过马路很危险",
            Some("C0118"),
            north(30.0),
            at("19:30"),
        );
        let s = score(&lamp, &manhole(), &policy).unwrap();
        assert!(s < policy.auto_merge, "{s}");
        assert!(!matches!(
            decide(&lamp, &[manhole()], &policy),
            Decision::Merge(_)
        ));
        // Without the place in the words nothing is left in common but the spot.
        let short = sub("路灯不亮", Some("C0118"), north(30.0), at("19:30"));
        let s = score(&short, &manhole(), &policy).unwrap();
        assert!(s < policy.suggest, "{s}");
        assert_eq!(decide(&short, &[manhole()], &policy), Decision::New);
    }

    #[test]
    fn the_same_words_2_km_away_are_not_candidates() {
        let far = Submission {
            location: north(2_000.0),
            ..sub(&manhole().content, Some("C0114"), north(0.0), at("08:00"))
        };
        assert_eq!(score(&far, &manhole(), &MergePolicy::default()), None);
    }

    #[test]
    fn a_report_after_the_window_is_a_new_occurrence() {
        let policy = MergePolicy::default();
        let mut later = sub(&manhole().content, Some("C0114"), north(10.0), at("07:40"));
        later.at += SignedDuration::from_hours(72);
        assert!(
            score(&later, &manhole(), &policy).is_some(),
            "72 h is still inside"
        );
        later.at += SignedDuration::from_mins(1);
        assert_eq!(score(&later, &manhole(), &policy), None);
        assert_eq!(decide(&later, &[manhole()], &policy), Decision::New);
    }

    #[test]
    fn the_same_grid_cell_counts_as_near_without_coordinates() {
        let policy = MergePolicy::default();
        let cell = |grid: &str| Location {
            address: Some("合欢路碧桂园小区东门".into()),
            lat: None,
            lon: None,
            grid_code: Some(grid.into()),
        };
        let ticket = cand(
            7,
            "碧桂园东门外的垃圾好几天没人拉了，堆成小山",
            Some("E0102"),
            Location {
                address: Some("碧桂园东门".into()),
                ..cell("341602004007123")
            },
            at("08:40"),
        );
        let call = sub(
            "市民来电反映：合欢路碧桂园小区东门外暴露垃圾多日未清运，请环卫部门处理。",
            Some("E0102"),
            cell("341602004007123"),
            at("12:40"),
        );
        let same_cell = score(&call, &ticket, &policy).unwrap();
        let other = sub(
            &call.content,
            Some("E0102"),
            cell("341602004007124"),
            call.at,
        );
        let other_cell = score(&other, &ticket, &policy).unwrap();
        assert!(same_cell >= policy.auto_merge, "{same_cell}");
        assert!(other_cell < same_cell, "{other_cell} < {same_cell}");
    }

    #[test]
    fn a_report_without_any_location_is_only_suggested() {
        let policy = MergePolicy::default();
        let nowhere = sub(
            &manhole().content,
            Some("C0114"),
            Location::default(),
            at("08:00"),
        );
        let s = score(&nowhere, &manhole(), &policy).unwrap();
        assert!(s < policy.auto_merge && s >= policy.suggest, "{s}");
        assert!(
            matches!(decide(&nowhere, &[manhole()], &policy), Decision::Suggest(v) if v.len() == 1)
        );
    }

    #[test]
    fn unrelated_categories_are_never_merged_automatically() {
        let policy = MergePolicy::default();
        let waste = sub(&manhole().content, Some("E0102"), north(0.0), at("08:00"));
        let s = score(&waste, &manhole(), &policy).unwrap();
        assert!(s < policy.auto_merge, "{s}");
    }

    #[test]
    fn suggestions_are_best_first_and_capped() {
        let policy = MergePolicy {
            suggest: 0.0,
            auto_merge: 1.0,
            ..MergePolicy::default()
        };
        let candidates: Vec<Candidate> = (0..8)
            .map(|i| {
                cand(
                    i,
                    "井盖没了",
                    Some("C0114"),
                    north(f64::from(i as u32 + 1) * 15.0),
                    at("07:00"),
                )
            })
            .collect();
        let report = sub("井盖没了", Some("C0114"), north(0.0), at("08:00"));
        let Decision::Suggest(list) = decide(&report, &candidates, &policy) else {
            panic!("expected suggestions");
        };
        assert_eq!(list.len(), MAX_SUGGESTIONS);
        assert_eq!(list[0].number, candidates[0].number);
        assert!(list.windows(2).all(|w| w[0].score >= w[1].score));
        assert_eq!(
            decide(
                &report,
                &candidates,
                &MergePolicy {
                    enabled: false,
                    ..policy
                }
            ),
            Decision::New
        );
    }

    #[test]
    fn normalisation_drops_punctuation_width_case_and_filler() {
        assert_eq!(normalize("你好，井盖 丢了！！谢谢"), "井盖丢了");
        assert_eq!(normalize("ＫＴＶ噪音（１２点后）"), "ktv噪音12点后");
        assert_eq!(
            normalize("市民来电反映：“路灯”不亮，请尽快处理。"),
            "路灯不亮"
        );
        assert_eq!(normalize("Hello, World"), "helloworld");
    }

    #[test]
    fn text_similarity_is_containment_of_bigrams() {
        assert_eq!(text_similarity("井盖丢了", "你好，井盖丢了！"), 1.0);
        assert_eq!(text_similarity("井盖丢了", "路灯不亮"), 0.0);
        assert_eq!(text_similarity("", "路灯不亮"), 0.0);
        let short = text_similarity("井盖丢了", "魏武大道芍花路口井盖丢了很危险");
        assert_eq!(short, 1.0, "the short report is contained in the long one");
        let partial = text_similarity("井盖丢了", "井盖坏了");
        assert!((partial - 1.0 / 3.0).abs() < 1e-9, "{partial}");
    }

    #[test]
    fn haversine_matches_known_distances() {
        // One degree of latitude is 111.2 km on a sphere of the mean radius.
        let degree = haversine_m(33.0, 115.0, 34.0, 115.0);
        assert!((degree - 111_195.0).abs() < 5.0, "{degree}");
        // 亳州 to 合肥 (31.8206 N, 117.2272 E) is about 262 km as the crow flies.
        let hefei = haversine_m(33.8446, 115.7786, 31.8206, 117.2272);
        assert!((hefei - 262_000.0).abs() < 3_000.0, "{hefei}");
        assert_eq!(haversine_m(LAT, LON, LAT, LON), 0.0);
    }

    #[test]
    fn categories_relate_by_kind_and_major_class() {
        assert_eq!(
            category_relation(Some("C0114"), Some("C0114")),
            Relation::Same
        );
        assert_eq!(
            category_relation(Some("C0114"), Some("C0102")),
            Relation::Related
        );
        assert_eq!(
            category_relation(Some("C0101"), Some("E0101")),
            Relation::Unrelated
        );
        assert_eq!(
            category_relation(Some("C0101"), Some("C0201")),
            Relation::Unrelated
        );
        assert_eq!(category_relation(None, Some("C0201")), Relation::Unknown);
    }

    #[test]
    fn priority_is_raised_at_the_configured_count() {
        let policy = MergePolicy::default();
        assert!(!raises_priority(4, &policy));
        assert!(raises_priority(5, &policy));
        let never = MergePolicy {
            raise_priority_at: 0,
            ..policy
        };
        assert!(!raises_priority(100, &never));
    }

    #[test]
    fn the_policy_reads_from_toml_and_refuses_nonsense() {
        let policy: MergePolicy = toml::from_str("distance_m = 200\nauto_merge = 0.8").unwrap();
        assert_eq!(policy.distance_m, 200.0);
        assert_eq!(policy.window_hours, 72);
        assert_eq!(policy.validate(), Ok(()));
        assert_eq!(MergePolicy::default().validate(), Ok(()));
        let err = toml::from_str::<MergePolicy>("distnce_m = 200")
            .unwrap_err()
            .to_string();
        assert!(err.contains("distnce_m"), "{err}");

        let check = |p: MergePolicy| p.validate().unwrap_err().to_string();
        let base = MergePolicy::default();
        let inverted = check(MergePolicy {
            suggest: 0.9,
            auto_merge: 0.7,
            ..base.clone()
        });
        assert!(
            inverted.contains("merge.suggest = 0.9 is above merge.auto_merge = 0.7"),
            "{inverted}"
        );
        let big = check(MergePolicy {
            auto_merge: 1.5,
            ..base.clone()
        });
        assert!(big.contains("merge.auto_merge = 1.5"), "{big}");
        let nan = check(MergePolicy {
            distance_m: f64::NAN,
            ..base.clone()
        });
        assert!(nan.contains("merge.distance_m"), "{nan}");
        let zero = check(MergePolicy {
            window_hours: 0,
            ..base
        });
        assert!(zero.contains("merge.window_hours"), "{zero}");
    }
}
