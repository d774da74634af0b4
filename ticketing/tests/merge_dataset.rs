//! Measures duplicate merging on the labelled set `tests/data/merge/submissions.jsonl`.
//!
//! The submissions are replayed in time order through [`merge::decide`] with the default policy,
//! as intake would see them: each is compared with the tickets open at that moment (the first
//! report of every predicted group, created at most the window before). An automatic merge joins
//! its target, right or wrong; a suggestion is settled as an agent would, by the truth label
//! (confirmed when the right ticket is on the list, else rejected); anything else opens a ticket.
//! A category the citizen did not give is suggested from the text ([`Catalogue::suggest`]), as
//! intake does.
//!
//! Precision of automatic merging = correct merges / all merges (correct: the target's cluster is
//! the submission's). Recall = correct merges / submissions for which a ticket of their cluster
//! was open. Print the report with
//! `cargo nextest run -p ticketing --test merge_dataset --no-capture`.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::str::FromStr;

use jiff::Timestamp;
use serde::Deserialize;
use ticketing::category::Catalogue;
use ticketing::merge::{self, Candidate, Decision, MergePolicy, Submission};
use ticketing::model::Location;
use ticketing::{Channel, TicketNumber};

const DATA: &str = include_str!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../tests/data/merge/submissions.jsonl"
));
const CATEGORIES: &str = include_str!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../config/categories.toml"
));

/// One line of the data set.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct Row {
    id: String,
    cluster: String,
    at: Timestamp,
    channel: String,
    content: String,
    category: Option<String>,
    address: Option<String>,
    lat: Option<f64>,
    lon: Option<f64>,
    grid_code: Option<String>,
}

fn rows() -> Vec<Row> {
    DATA.lines()
        .enumerate()
        .filter(|(_, line)| !line.trim().is_empty())
        .map(|(n, line)| {
            serde_json::from_str(line).unwrap_or_else(|e| panic!("line {}: {e}", n + 1))
        })
        .collect()
}

fn catalogue() -> Catalogue {
    Catalogue::from_toml(CATEGORIES).unwrap()
}

/// Where the categories come from in a replay.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Categories {
    /// As labelled; a missing one stays missing.
    AsGiven,
    /// A missing one is suggested from the text.
    Suggested,
}

/// What the replay counted, per submission.
#[derive(Debug, Default)]
struct Report {
    submissions: usize,
    /// A ticket of the submission's cluster was open when it came in.
    available: usize,
    merged_right: usize,
    merged_wrong: Vec<String>,
    /// Suggestions that listed a ticket of the submission's cluster.
    suggested_right: usize,
    /// Suggestions that did not.
    suggested_wrong: usize,
    /// Available, but neither merged into nor suggested correctly.
    missed: usize,
    /// Tickets that reached `raise_priority_at` reports.
    raised: usize,
}

fn ratio(a: usize, b: usize) -> f64 {
    if b == 0 { 1.0 } else { a as f64 / b as f64 }
}

impl Report {
    fn merged(&self) -> usize {
        self.merged_right + self.merged_wrong.len()
    }
    fn precision(&self) -> f64 {
        ratio(self.merged_right, self.merged())
    }
    fn recall(&self) -> f64 {
        ratio(self.merged_right, self.available)
    }
    fn flagged_right(&self) -> usize {
        self.merged_right + self.suggested_right
    }
    fn precision_with_suggestions(&self) -> f64 {
        let flagged = self.merged() + self.suggested_right + self.suggested_wrong;
        ratio(self.flagged_right(), flagged)
    }
    fn recall_with_suggestions(&self) -> f64 {
        ratio(self.flagged_right(), self.available)
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "  submissions {}, of which {} had a ticket of their cluster open",
            self.submissions, self.available
        )?;
        writeln!(
            f,
            "  auto-merged {}: correct {}, incorrect {} — precision {:.3}, recall {:.3}",
            self.merged(),
            self.merged_right,
            self.merged_wrong.len(),
            self.precision(),
            self.recall()
        )?;
        writeln!(
            f,
            "  suggested {}: with the right ticket {}, without {}; missed {}",
            self.suggested_right + self.suggested_wrong,
            self.suggested_right,
            self.suggested_wrong,
            self.missed
        )?;
        writeln!(
            f,
            "  merged or suggested: precision {:.3}, recall {:.3}",
            self.precision_with_suggestions(),
            self.recall_with_suggestions()
        )?;
        writeln!(
            f,
            "  tickets raised to urgent by report count: {}",
            self.raised
        )?;
        for wrong in &self.merged_wrong {
            writeln!(f, "  incorrect merge: {wrong}")?;
        }
        Ok(())
    }
}

/// An open ticket in the replay: the first report of a predicted group.
struct Open {
    candidate: Candidate,
    cluster: String,
    first: String,
}

fn replay(rows: &[Row], policy: &MergePolicy, categories: Categories) -> Report {
    let catalogue = catalogue();
    let mut rows = rows.to_vec();
    rows.sort_by(|a, b| (a.at, &a.id).cmp(&(b.at, &b.id)));
    let mut open: Vec<Open> = Vec::new();
    let mut report = Report::default();
    let mut sequence = 0;
    for row in &rows {
        report.submissions += 1;
        open.retain(|o| row.at.duration_since(o.candidate.created_at) <= policy.window());
        let available = open.iter().any(|o| o.cluster == row.cluster);
        report.available += usize::from(available);
        let category = match categories {
            Categories::AsGiven => row.category.clone(),
            Categories::Suggested => row
                .category
                .clone()
                .or_else(|| catalogue.suggest(&row.content).map(|c| c.id.clone())),
        };
        let location = Location {
            address: row.address.clone(),
            lat: row.lat,
            lon: row.lon,
            grid_code: row.grid_code.clone(),
        };
        let submission = Submission {
            content: row.content.clone(),
            category: category.clone(),
            location: location.clone(),
            at: row.at,
        };
        let candidates: Vec<Candidate> = open.iter().map(|o| o.candidate.clone()).collect();
        let target = match merge::decide(&submission, &candidates, policy) {
            Decision::Merge(m) => {
                let target = open
                    .iter()
                    .position(|o| o.candidate.number == m.number)
                    .unwrap();
                if open[target].cluster == row.cluster {
                    report.merged_right += 1;
                } else {
                    let o = &open[target];
                    report.merged_wrong.push(format!(
                        "{} ({}) into the ticket of {} ({}), score {:.3}",
                        row.id, row.cluster, o.first, o.cluster, m.score
                    ));
                }
                Some(target)
            }
            Decision::Suggest(list) => {
                // The agent confirms the right ticket if it is listed, else rejects them all.
                let right = list.iter().find_map(|m| {
                    open.iter()
                        .position(|o| o.candidate.number == m.number && o.cluster == row.cluster)
                });
                if right.is_some() {
                    report.suggested_right += 1;
                } else {
                    report.suggested_wrong += 1;
                    report.missed += usize::from(available);
                }
                right
            }
            Decision::New => {
                report.missed += usize::from(available);
                None
            }
        };
        match target {
            Some(i) => {
                let reports = &mut open[i].candidate.reports;
                *reports += 1;
                if *reports == policy.raise_priority_at {
                    report.raised += 1;
                }
            }
            None => {
                sequence += 1;
                let day = row
                    .at
                    .to_zoned(jiff::tz::TimeZone::fixed(jiff::tz::offset(8)))
                    .date();
                open.push(Open {
                    candidate: Candidate {
                        number: TicketNumber::new("12319", day, sequence),
                        content: row.content.clone(),
                        category,
                        location,
                        created_at: row.at,
                        reports: 1,
                    },
                    cluster: row.cluster.clone(),
                    first: row.id.clone(),
                });
            }
        }
    }
    report
}

#[test]
fn the_data_set_is_well_formed() {
    let rows = rows();
    let catalogue = catalogue();
    assert!(rows.len() >= 220, "{} submissions", rows.len());
    let ids: BTreeSet<&str> = rows.iter().map(|r| r.id.as_str()).collect();
    assert_eq!(ids.len(), rows.len(), "ids repeat");
    let mut clusters: BTreeMap<&str, usize> = BTreeMap::new();
    for r in &rows {
        *clusters.entry(&r.cluster).or_default() += 1;
        Channel::from_str(&r.channel).unwrap_or_else(|e| panic!("{}: {e}", r.id));
        if let Some(c) = &r.category {
            assert!(
                catalogue.get(c).is_some(),
                "{}: category {c} is not in categories.toml",
                r.id
            );
        }
        assert_eq!(
            r.lat.is_some(),
            r.lon.is_some(),
            "{}: lat without lon",
            r.id
        );
        if let (Some(lat), Some(lon)) = (r.lat, r.lon) {
            // 亳州 city.
            assert!(
                (33.7..34.0).contains(&lat) && (115.6..116.0).contains(&lon),
                "{}",
                r.id
            );
        }
        if let Some(g) = &r.grid_code {
            assert!(
                g.len() == 15 && g.bytes().all(|b| b.is_ascii_digit()),
                "{}: grid {g}",
                r.id
            );
        }
        assert!(!r.content.trim().is_empty(), "{}", r.id);
    }
    let groups = clusters.values().filter(|&&n| n >= 2).count();
    assert!(
        (60..=80).contains(&groups),
        "{groups} clusters with 2 or more reports"
    );
    assert!(clusters.values().all(|&n| n <= 8));
    let first = rows.iter().map(|r| r.at).min().unwrap();
    let last = rows.iter().map(|r| r.at).max().unwrap();
    let days = last.duration_since(first).as_hours() / 24;
    assert!(days >= 25, "the set spans {days} days");
}

#[test]
fn automatic_merging_is_precise_on_the_labelled_set() {
    let rows = rows();
    let policy = MergePolicy::default();
    policy.validate().unwrap();
    let given = replay(&rows, &policy, Categories::AsGiven);
    let report = replay(&rows, &policy, Categories::Suggested);
    println!("duplicate merging, default policy {policy:?}");
    println!("categories as labelled (a missing one stays missing):\n{given}");
    println!("missing categories suggested from the text (as intake does):\n{report}");

    assert!(
        report.available >= 80,
        "{} duplicates in reach",
        report.available
    );
    assert!(
        report.precision() >= 0.95,
        "precision of automatic merging\n{report}"
    );
    assert!(
        report.recall() >= 0.5,
        "recall of automatic merging\n{report}"
    );
    assert!(
        report.recall_with_suggestions() >= 0.8,
        "recall of merging or suggesting\n{report}"
    );
    assert!(
        given.precision() >= 0.9,
        "without suggested categories\n{given}"
    );
}

#[test]
fn merging_switched_off_opens_a_ticket_for_every_report() {
    let policy = MergePolicy {
        enabled: false,
        ..MergePolicy::default()
    };
    let report = replay(&rows(), &policy, Categories::Suggested);
    assert_eq!(
        report.merged() + report.suggested_right + report.suggested_wrong,
        0
    );
    assert_eq!(report.missed, report.available);
}
