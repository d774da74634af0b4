//! Citizens of the city app (城市 app, like 我家亳州): logging in with a one-time code sent to
//! their phone, what they are told about their tickets, and the points (积分) they earn for reports
//! that turn out to be real cases. Sans-IO: every decision here takes `now` and stored values and
//! returns what to do; the store ([`crate::store::Store`]'s citizen methods) keeps the rows and
//! the binary sends the codes.
//!
//! *Codes:* 6 digits, kept only as a hash, valid for [`CodePolicy::ttl`], given up after
//! [`CodePolicy::attempts`] wrong tries, and sent at most [`CodePolicy::per_hour`] times an hour
//! per phone with [`CodePolicy::interval`] between two sends. Only the latest code of a phone
//! counts.
//!
//! *Points:* [`RewardRule`] gives points when a report is filed (立案: the centre found it a real
//! case) and optionally when it is closed (结案), at most [`RewardRule::daily_cap`] a day per
//! citizen. An award is unique per citizen, ticket and [`Reason`], so replaying the event stream
//! awards nothing twice.

use jiff::{SignedDuration, Timestamp};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::workflow::{ActionKind, Status};

/// How one-time login codes are handed out and checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CodePolicy {
    /// How long a code is valid after it was sent.
    pub ttl: SignedDuration,
    /// Wrong tries allowed on one code; then it is void and a new one must be requested.
    pub attempts: u32,
    /// Codes sent to one phone within any hour.
    pub per_hour: u32,
    /// Least time between two codes to the same phone.
    pub interval: SignedDuration,
}

impl Default for CodePolicy {
    /// 5 minutes, 5 tries, 5 codes an hour, one a minute.
    fn default() -> Self {
        CodePolicy {
            ttl: SignedDuration::from_mins(5),
            attempts: 5,
            per_hour: 5,
            interval: SignedDuration::from_mins(1),
        }
    }
}

/// A stored code, as the check needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingCode {
    /// Its row.
    pub id: i64,
    /// The hash of the code (the binary decides the hash; the check compares).
    pub code_hash: String,
    /// When it stops being valid.
    pub expires_at: Timestamp,
    /// Wrong tries so far.
    pub attempts: u32,
    /// Whether it was already used to log in.
    pub used: bool,
}

/// The outcome of a login attempt with a code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CodeCheck {
    /// The code is right: log the citizen in and spend the code.
    Accepted,
    /// Wrong code; `left` more tries on this code.
    Wrong {
        /// Tries left before the code is void.
        left: u32,
    },
    /// No code was requested for this phone, or the latest one was already used.
    NoCode,
    /// The code is past its time.
    Expired,
    /// Too many wrong tries on this code.
    Exhausted,
}

/// Why a code is not sent now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SendRefusal {
    /// The previous code was sent less than [`CodePolicy::interval`] ago.
    TooSoon {
        /// Seconds until a new one may be sent.
        retry_after: u64,
    },
    /// [`CodePolicy::per_hour`] codes were sent within the last hour.
    HourlyLimit {
        /// Seconds until the oldest of them leaves the hour.
        retry_after: u64,
    },
}

impl SendRefusal {
    /// Seconds to wait before asking again.
    pub fn retry_after(self) -> u64 {
        match self {
            SendRefusal::TooSoon { retry_after } | SendRefusal::HourlyLimit { retry_after } => {
                retry_after
            }
        }
    }
}

fn secs_until(from: Timestamp, to: Timestamp) -> u64 {
    let d = to.duration_since(from);
    // Round up: "wait 0 s" would invite an immediate retry that is refused again.
    u64::try_from(d.as_secs() + i64::from(d.subsec_nanos() > 0)).unwrap_or(0)
}

impl CodePolicy {
    /// Whether a code may be sent now, given when the codes of the last hour (or more) to this
    /// phone were sent, in any order.
    pub fn may_send(&self, sent: &[Timestamp], now: Timestamp) -> Result<(), SendRefusal> {
        let hour_ago = now - SignedDuration::from_hours(1);
        let mut recent: Vec<Timestamp> = sent.iter().copied().filter(|t| *t > hour_ago).collect();
        recent.sort();
        if let Some(&last) = recent.last()
            && now < last + self.interval
        {
            return Err(SendRefusal::TooSoon {
                retry_after: secs_until(now, last + self.interval),
            });
        }
        if recent.len() >= self.per_hour as usize {
            // The send that frees a slot: the oldest that keeps the count at the limit.
            let oldest = recent[recent.len() - self.per_hour as usize];
            return Err(SendRefusal::HourlyLimit {
                retry_after: secs_until(now, oldest + SignedDuration::from_hours(1)).max(1),
            });
        }
        Ok(())
    }

    /// Checks the code a citizen typed against the latest stored code; `matches` tells whether
    /// the typed code is the one a stored hash was made from (a slow, salted hash: see the
    /// binary's `citizens::code_hash`). It is not called for a spent, exhausted or expired code.
    pub fn check(
        &self,
        code: Option<&PendingCode>,
        matches: impl FnOnce(&str) -> bool,
        now: Timestamp,
    ) -> CodeCheck {
        let Some(code) = code.filter(|c| !c.used) else {
            return CodeCheck::NoCode;
        };
        if code.attempts >= self.attempts {
            return CodeCheck::Exhausted;
        }
        if now >= code.expires_at {
            return CodeCheck::Expired;
        }
        if matches(&code.code_hash) {
            CodeCheck::Accepted
        } else {
            CodeCheck::Wrong {
                left: self.attempts - code.attempts - 1,
            }
        }
    }
}

/// Whether `code` is a well-formed code: exactly 6 ASCII digits.
pub fn is_code_shaped(code: &str) -> bool {
    code.len() == 6 && code.bytes().all(|b| b.is_ascii_digit())
}

/// Why points were given.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Reason {
    /// The report was filed (立案): the centre found it a real case.
    Filed,
    /// The department's work on it passed 核查 (the centre checked the problem is fixed).
    Verified,
    /// The reported problem was closed (结案).
    Closed,
}

impl Reason {
    /// The stable code stored in the ledger.
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::Filed => "filed",
            Reason::Verified => "verified",
            Reason::Closed => "closed",
        }
    }

    /// What the citizen reads in their ledger.
    pub fn label(self) -> &'static str {
        match self {
            Reason::Filed => "反映的问题经核实立案",
            Reason::Verified => "反映的问题经核查已处置到位",
            Reason::Closed => "反映的问题已办结",
        }
    }

    /// The reason a ticket event earns, if any: a 立案 step, a 核查 that passed, or a 结案 step
    /// (not the closing of a duplicate by a merge).
    pub fn for_event(action: ActionKind, to: Status) -> Option<Reason> {
        match (action, to) {
            (ActionKind::File, Status::Filed) => Some(Reason::Filed),
            (ActionKind::Verify, Status::AwaitingCallback) => Some(Reason::Verified),
            (ActionKind::Close, Status::Closed) => Some(Reason::Closed),
            _ => None,
        }
    }
}

impl std::str::FromStr for Reason {
    type Err = crate::model::UnknownCode;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "filed" => Ok(Reason::Filed),
            "verified" => Ok(Reason::Verified),
            "closed" => Ok(Reason::Closed),
            _ => Err(crate::model::UnknownCode {
                kind: "points reason",
                value: s.chars().take(64).collect(),
            }),
        }
    }
}

/// How many points a verified report earns (`[app.points]`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RewardRule {
    /// Points when the report is filed (立案). 0 turns it off.
    pub on_file: u32,
    /// Points when the department's work on it passes 核查. 0 (the default) turns it off.
    pub on_verify: u32,
    /// Extra points when it is closed (结案). 0 turns it off.
    pub on_close: u32,
    /// Most points one citizen earns in one calendar day (the centre's local day); 0 = no cap.
    pub daily_cap: u32,
}

impl Default for RewardRule {
    /// 10 on filing, none on 核查, 5 on closing, 50 a day.
    fn default() -> Self {
        RewardRule {
            on_file: 10,
            on_verify: 0,
            on_close: 5,
            daily_cap: 50,
        }
    }
}

impl RewardRule {
    /// Whether `reason` earns anything at all (a reason set to 0 is off: no ledger entry).
    pub fn pays(&self, reason: Reason) -> bool {
        self.award(reason, 0) > 0
    }

    /// The points to award for `reason` to a citizen who already earned `today` points this day.
    /// The cap may cut an award short or to 0 (recorded all the same, so the citizen sees why).
    pub fn award(&self, reason: Reason, today: u64) -> u32 {
        let full = match reason {
            Reason::Filed => self.on_file,
            Reason::Verified => self.on_verify,
            Reason::Closed => self.on_close,
        };
        if self.daily_cap == 0 {
            return full;
        }
        let room = u64::from(self.daily_cap).saturating_sub(today);
        full.min(u32::try_from(room).unwrap_or(u32::MAX))
    }
}

/// What a citizen is told about a status: the centre's internal steps read as plain words (the
/// WeChat account, the app and the web form all say the same).
pub fn status_for_citizens(status: Status) -> &'static str {
    match status {
        Status::Received => "已受理，待审核",
        Status::Rejected => "不予立案",
        Status::Filed => "已立案，待派遣",
        Status::Dispatched | Status::Returned => "已派遣，待承办单位签收",
        Status::InProgress => "承办单位处置中",
        Status::Completed => "已处置，待核查",
        Status::AwaitingCallback => "已办结，待回访",
        Status::AwaitingClose | Status::Closed => "已办结",
    }
}

/// One step of a ticket as a citizen is told it (app, web look-up), or `None` for the centre's
/// internal steps (extensions, escalations, the report a merge went into). Staff notes and
/// names are never shown.
pub fn step_for_citizens(action: ActionKind, to: Status) -> Option<&'static str> {
    Some(match action {
        ActionKind::Create => "已受理您的反映",
        ActionKind::Supplement => "已收到您补充的情况",
        ActionKind::File => "经核实已立案",
        ActionKind::Reject => "经审核不予立案",
        ActionKind::AnswerOnSpot => "已直接答复办结",
        ActionKind::Dispatch => "已派遣至承办单位",
        ActionKind::Accept => "承办单位已签收，正在处置",
        ActionKind::Return => "正在重新派遣",
        ActionKind::Complete => "承办单位已处置完毕，待核查",
        ActionKind::Verify if matches!(to, Status::InProgress | Status::Dispatched) => {
            "核查未通过，已要求重新处置"
        }
        ActionKind::Verify => "经核查已处置到位",
        ActionKind::Callback => "已回访",
        ActionKind::Close => "已结案",
        ActionKind::Merge if to == Status::Closed => "已与其他市民反映的同一问题合并办理",
        ActionKind::Unmerge => "已恢复单独办理",
        ActionKind::Merge
        | ActionKind::Escalate
        | ActionKind::RequestExtension
        | ActionKind::DecideExtension => return None,
    })
}

/// A rating (评价) a citizen gives the result of a closed ticket.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Rating {
    /// 1 (very dissatisfied) to 5 (very satisfied).
    pub stars: u8,
    /// What the citizen adds, if anything.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
}

/// Why a rating is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RatingError {
    /// Stars outside 1–5.
    #[error("评分须为 1 到 5 星")]
    Stars,
    /// A comment longer than [`MAX_COMMENT_CHARS`].
    #[error("评价内容最多 {MAX_COMMENT_CHARS} 个字")]
    CommentTooLong,
    /// The ticket is not closed yet.
    #[error("工单尚未办结（当前状态：{0}），办结后才能评价")]
    NotClosed(&'static str),
    /// This citizen already rated this ticket.
    #[error("您已评价过该工单，每个工单只能评价一次")]
    AlreadyRated,
}

/// The longest comment on a rating.
pub const MAX_COMMENT_CHARS: usize = 500;

impl Rating {
    /// Checks the rating itself and that the ticket, in `status`, may be rated (it is 已结案, not
    /// merged away into another ticket).
    pub fn check(&self, status: Status, merged: bool) -> Result<Rating, RatingError> {
        if !(1..=5).contains(&self.stars) {
            return Err(RatingError::Stars);
        }
        let comment = self
            .comment
            .as_deref()
            .map(str::trim)
            .filter(|c| !c.is_empty());
        if comment.is_some_and(|c| c.chars().count() > MAX_COMMENT_CHARS) {
            return Err(RatingError::CommentTooLong);
        }
        if status != Status::Closed || merged {
            let shown = if merged {
                "已合并办理"
            } else {
                status_for_citizens(status)
            };
            return Err(RatingError::NotClosed(shown));
        }
        Ok(Rating {
            stars: self.stars,
            comment: comment.map(str::to_owned),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(secs: i64) -> Timestamp {
        Timestamp::from_second(1_800_000_000 + secs).unwrap()
    }

    fn code(attempts: u32, used: bool) -> PendingCode {
        PendingCode {
            id: 1,
            code_hash: "abc".into(),
            expires_at: at(300),
            attempts,
            used,
        }
    }

    #[test]
    fn a_code_is_accepted_once_and_only_in_time() {
        let p = CodePolicy::default();
        assert_eq!(
            p.check(Some(&code(0, false)), |h| h == "abc", at(10)),
            CodeCheck::Accepted
        );
        assert_eq!(
            p.check(Some(&code(0, true)), |h| h == "abc", at(10)),
            CodeCheck::NoCode
        );
        assert_eq!(p.check(None, |h| h == "abc", at(10)), CodeCheck::NoCode);
        assert_eq!(
            p.check(Some(&code(0, false)), |h| h == "abc", at(300)),
            CodeCheck::Expired
        );
        assert_eq!(
            p.check(Some(&code(0, false)), |h| h == "abd", at(10)),
            CodeCheck::Wrong { left: 4 }
        );
        assert_eq!(
            p.check(Some(&code(4, false)), |h| h == "abd", at(10)),
            CodeCheck::Wrong { left: 0 }
        );
        // After the last wrong try even the right code is refused.
        assert_eq!(
            p.check(Some(&code(5, false)), |h| h == "abc", at(10)),
            CodeCheck::Exhausted
        );
    }

    #[test]
    fn sends_are_spaced_and_limited_per_hour() {
        let p = CodePolicy::default();
        assert_eq!(p.may_send(&[], at(0)), Ok(()));
        assert_eq!(
            p.may_send(&[at(0)], at(20)),
            Err(SendRefusal::TooSoon { retry_after: 40 })
        );
        assert_eq!(p.may_send(&[at(0)], at(60)), Ok(()));
        let five: Vec<_> = (0..5).map(|i| at(i * 600)).collect();
        // The oldest of the five leaves the hour at 3600.
        assert_eq!(
            p.may_send(&five, at(2500)),
            Err(SendRefusal::HourlyLimit { retry_after: 1100 })
        );
        assert_eq!(p.may_send(&five, at(3600)), Ok(()));
        // Old sends do not count, whatever their order.
        let mixed = [at(-7200), at(2400), at(-3601)];
        assert_eq!(p.may_send(&mixed, at(2500)), Ok(()));
    }

    #[test]
    fn codes_are_six_digits() {
        assert!(is_code_shaped("012345"));
        for bad in ["12345", "1234567", "12345a", "１２３４５６", ""] {
            assert!(!is_code_shaped(bad), "{bad}");
        }
    }

    #[test]
    fn rewards_follow_the_rule_and_the_daily_cap() {
        let rule = RewardRule {
            on_file: 10,
            on_verify: 3,
            on_close: 5,
            daily_cap: 25,
        };
        assert_eq!(rule.award(Reason::Filed, 0), 10);
        assert_eq!(rule.award(Reason::Verified, 0), 3);
        assert_eq!(rule.award(Reason::Closed, 0), 5);
        assert_eq!(rule.award(Reason::Filed, 20), 5);
        assert_eq!(rule.award(Reason::Filed, 25), 0);
        assert_eq!(rule.award(Reason::Filed, 1000), 0);
        let uncapped = RewardRule {
            daily_cap: 0,
            ..rule
        };
        assert_eq!(uncapped.award(Reason::Filed, 1000), 10);
        assert!(rule.pays(Reason::Verified));
        assert!(
            !RewardRule::default().pays(Reason::Verified),
            "off by default"
        );
    }

    #[test]
    fn only_filing_a_passed_check_and_closing_earn_points() {
        assert_eq!(
            Reason::for_event(ActionKind::File, Status::Filed),
            Some(Reason::Filed)
        );
        assert_eq!(
            Reason::for_event(ActionKind::Close, Status::Closed),
            Some(Reason::Closed)
        );
        assert_eq!(
            Reason::for_event(ActionKind::Verify, Status::AwaitingCallback),
            Some(Reason::Verified)
        );
        // A failed 核查, a duplicate closed by a merge, a rejection, a dispatch: nothing.
        assert_eq!(
            Reason::for_event(ActionKind::Verify, Status::InProgress),
            None
        );
        assert_eq!(Reason::for_event(ActionKind::Merge, Status::Closed), None);
        assert_eq!(
            Reason::for_event(ActionKind::Reject, Status::Rejected),
            None
        );
        assert_eq!(
            Reason::for_event(ActionKind::Dispatch, Status::Dispatched),
            None
        );
        for r in [Reason::Filed, Reason::Verified, Reason::Closed] {
            assert_eq!(r.as_str().parse::<Reason>().unwrap(), r);
        }
    }

    #[test]
    fn ratings_come_after_closure() {
        let r = |stars, comment: Option<&str>| Rating {
            stars,
            comment: comment.map(str::to_owned),
        };
        assert_eq!(
            r(4, Some("  很及时 ")).check(Status::Closed, false),
            Ok(r(4, Some("很及时")))
        );
        assert_eq!(
            r(5, Some("   ")).check(Status::Closed, false),
            Ok(r(5, None))
        );
        assert_eq!(
            r(0, None).check(Status::Closed, false),
            Err(RatingError::Stars)
        );
        assert_eq!(
            r(6, None).check(Status::Closed, false),
            Err(RatingError::Stars)
        );
        let long = "好".repeat(MAX_COMMENT_CHARS + 1);
        assert_eq!(
            r(3, Some(&long)).check(Status::Closed, false),
            Err(RatingError::CommentTooLong)
        );
        let e = r(3, None).check(Status::InProgress, false).unwrap_err();
        assert!(e.to_string().contains("尚未办结"), "{e}");
        assert!(r(3, None).check(Status::Closed, true).is_err());
    }

    #[test]
    fn internal_steps_are_not_shown_to_citizens() {
        assert_eq!(
            step_for_citizens(ActionKind::RequestExtension, Status::InProgress),
            None
        );
        assert_eq!(
            step_for_citizens(ActionKind::Escalate, Status::InProgress),
            None
        );
        assert_eq!(
            step_for_citizens(ActionKind::File, Status::Filed),
            Some("经核实已立案")
        );
        assert_eq!(
            step_for_citizens(ActionKind::Verify, Status::InProgress),
            Some("核查未通过，已要求重新处置")
        );
        assert_eq!(
            step_for_citizens(ActionKind::Verify, Status::AwaitingCallback),
            Some("经核查已处置到位")
        );
        // The merge is told on the report that went in, not on the ticket it went into.
        assert_eq!(
            step_for_citizens(ActionKind::Merge, Status::InProgress),
            None
        );
        assert!(step_for_citizens(ActionKind::Merge, Status::Closed).is_some());
    }
}
