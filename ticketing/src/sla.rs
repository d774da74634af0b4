//! Time limits (时限) per stage, category and priority, on the working calendar.
//!
//! Sans-IO: every function takes the instant a stage starts and returns its due time.

use std::collections::HashMap;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::calendar::WorkCalendar;
use crate::category::Catalogue;
use crate::limit::Limit;
use crate::model::Priority;

/// A stage of the closed loop that has its own clock.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Stage {
    /// 立案: the centre decides whether the report is a case.
    File,
    /// 派遣: the centre sends it to a department.
    Dispatch,
    /// 签收: the department acknowledges it.
    Accept,
    /// 处置: the department does the work.
    Dispose,
    /// 核查: the centre checks the work.
    Verify,
    /// 回访: the citizen is asked whether they are satisfied.
    Callback,
}

impl Stage {
    /// The Chinese name shown to users.
    pub fn label_zh(self) -> &'static str {
        match self {
            Stage::File => "立案",
            Stage::Dispatch => "派遣",
            Stage::Accept => "签收",
            Stage::Dispose => "处置",
            Stage::Verify => "核查",
            Stage::Callback => "回访",
        }
    }
}

/// The `[sla]` table of `config/hotline.toml`: default limits per stage, with shorter ones for 紧急.
/// A category's own `dispose`/`dispose_urgent` override the 处置 defaults.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SlaConfig {
    /// 立案 (natural time: the centre works around the clock).
    pub file: Limit,
    /// 立案 for 紧急.
    pub file_urgent: Limit,
    /// 派遣.
    pub dispatch: Limit,
    /// 派遣 for 紧急.
    pub dispatch_urgent: Limit,
    /// 签收 by the department.
    pub accept: Limit,
    /// 签收 for 紧急.
    pub accept_urgent: Limit,
    /// 处置 when the category sets none.
    pub dispose: Limit,
    /// 处置 for 紧急 when the category sets none.
    pub dispose_urgent: Limit,
    /// 核查.
    pub verify: Limit,
    /// 核查 for 紧急.
    pub verify_urgent: Limit,
    /// 回访 ("the day after 办结").
    pub callback: Limit,
    /// 回访 for 紧急.
    pub callback_urgent: Limit,
}

impl Default for SlaConfig {
    fn default() -> Self {
        SlaConfig {
            file: Limit::Minutes(10),
            file_urgent: Limit::Minutes(5),
            dispatch: Limit::Minutes(30),
            dispatch_urgent: Limit::Minutes(10),
            accept: Limit::Minutes(60),
            accept_urgent: Limit::Minutes(15),
            dispose: Limit::WorkingDays(3),
            dispose_urgent: Limit::Minutes(240),
            verify: Limit::Minutes(60),
            verify_urgent: Limit::Minutes(30),
            callback: Limit::WorkingDays(1),
            callback_urgent: Limit::WorkingDays(1),
        }
    }
}

/// The SLA policy: configured limits, per-category overrides and the calendar they run on.
#[derive(Debug, Clone)]
pub struct Sla {
    calendar: WorkCalendar,
    config: SlaConfig,
    dispose: HashMap<String, (Option<Limit>, Option<Limit>)>,
}

impl Sla {
    /// Combines the defaults with the catalogue's 处置 limits.
    pub fn new(calendar: WorkCalendar, config: SlaConfig, catalogue: &Catalogue) -> Self {
        let dispose = catalogue
            .iter()
            .filter(|c| c.dispose.is_some() || c.dispose_urgent.is_some())
            .map(|c| (c.id.clone(), (c.dispose, c.dispose_urgent)))
            .collect();
        Sla {
            calendar,
            config,
            dispose,
        }
    }

    /// The working calendar deadlines are counted on.
    pub fn calendar(&self) -> &WorkCalendar {
        &self.calendar
    }

    /// The limit that applies to a stage of a ticket with this category and priority.
    pub fn limit(&self, stage: Stage, category: Option<&str>, priority: Priority) -> Limit {
        let c = &self.config;
        let urgent = priority == Priority::Urgent;
        let pick = |normal: Limit, urgent_limit: Limit| if urgent { urgent_limit } else { normal };
        match stage {
            Stage::File => pick(c.file, c.file_urgent),
            Stage::Dispatch => pick(c.dispatch, c.dispatch_urgent),
            Stage::Accept => pick(c.accept, c.accept_urgent),
            Stage::Verify => pick(c.verify, c.verify_urgent),
            Stage::Callback => pick(c.callback, c.callback_urgent),
            Stage::Dispose => {
                let own = category.and_then(|id| self.dispose.get(id));
                match (urgent, own) {
                    (false, Some((Some(l), _))) => *l,
                    (true, Some((_, Some(l)))) => *l,
                    // An urgent ticket in a category with only a normal limit gets the shorter of
                    // the two, so 紧急 never waits longer than 一般.
                    (true, Some((Some(l), None))) => self.shorter(*l, c.dispose_urgent),
                    _ => pick(c.dispose, c.dispose_urgent),
                }
            }
        }
    }

    /// When a stage that starts at `start` is due.
    pub fn due(
        &self,
        stage: Stage,
        category: Option<&str>,
        priority: Priority,
        start: Timestamp,
    ) -> Timestamp {
        self.limit(stage, category, priority)
            .deadline(start, &self.calendar)
    }

    fn shorter(&self, a: Limit, b: Limit) -> Limit {
        // Compare on a fixed reference instant; limits of different kinds are not comparable
        // otherwise. A Monday 08:00 local start treats working and natural time fairly.
        let reference = jiff::civil::date(2026, 1, 5)
            .at(8, 0, 0, 0)
            .to_zoned(self.calendar.timezone().clone())
            .map(|z| z.timestamp())
            .unwrap_or(Timestamp::UNIX_EPOCH);
        if a.deadline(reference, &self.calendar) <= b.deadline(reference, &self.calendar) {
            a
        } else {
            b
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::calendar::CalendarConfig;

    fn sla() -> Sla {
        let catalogue = Catalogue::from_toml(
            r#"
[[major]]
kind = "component"
code = "01"
name = "公用设施"
[[major.minor]]
code = "0102"
name = "污水井盖"
dispose = "2h"
dispose_urgent = "1h"
[[major.minor]]
code = "0110"
name = "路灯"
dispose = "1wd"
"#,
        )
        .unwrap();
        let calendar = WorkCalendar::from_config(&CalendarConfig::default()).unwrap();
        Sla::new(calendar, SlaConfig::default(), &catalogue)
    }

    #[test]
    fn category_limits_override_defaults() {
        let sla = sla();
        assert_eq!(
            sla.limit(Stage::Dispose, Some("C0102"), Priority::Normal),
            Limit::Minutes(120)
        );
        assert_eq!(
            sla.limit(Stage::Dispose, Some("C0102"), Priority::Urgent),
            Limit::Minutes(60)
        );
        assert_eq!(
            sla.limit(Stage::Dispose, None, Priority::Normal),
            Limit::WorkingDays(3)
        );
        assert_eq!(
            sla.limit(Stage::Dispatch, Some("C0102"), Priority::Urgent),
            Limit::Minutes(10)
        );
    }

    #[test]
    fn urgent_never_waits_longer_than_normal() {
        let sla = sla();
        // 路灯 has 1 working day; the urgent default is 4 natural hours, which is shorter.
        assert_eq!(
            sla.limit(Stage::Dispose, Some("C0110"), Priority::Urgent),
            Limit::Minutes(240)
        );
    }

    #[test]
    fn due_counts_working_time_for_disposal() {
        let sla = sla();
        // Friday 2026-11-20 17:00 Shanghai + 1 working day = Monday 17:00.
        let start: Timestamp = "2026-11-20T09:00:00Z".parse().unwrap();
        let due = sla.due(Stage::Dispose, Some("C0110"), Priority::Normal, start);
        assert_eq!(due, "2026-11-23T09:00:00Z".parse::<Timestamp>().unwrap());
    }
}
