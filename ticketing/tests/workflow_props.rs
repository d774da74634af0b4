//! Property tests for the ticket workflow state machine (`workflow::apply`).
//!
//! The test keeps its own, independent specification of which steps are legal (status table,
//! role table, department rule, content rules) and what each accepted step leads to, and checks
//! `apply` against it over random step sequences, together with the audit trail, clock and
//! counter invariants.

use jiff::{SignedDuration, Timestamp};
use proptest::prelude::*;
use ticketing::Priority;
use ticketing::calendar::{CalendarConfig, WorkCalendar};
use ticketing::category::Catalogue;
use ticketing::sla::{Sla, SlaConfig};
use ticketing::workflow::{
    self, Action, ActionKind, Actor, AuditEvent, Counters, Role, Satisfaction, Status, WorkState,
};

// ---------------------------------------------------------------------------------------------
// Fixtures

fn sla() -> Sla {
    let catalogue = Catalogue::from_toml(
        r#"
[[major]]
kind = "component"
code = "01"
name = "公用设施"
[[major.minor]]
code = "0101"
name = "上水井盖"
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

/// Monday 2026-11-16 09:00 in Shanghai.
fn t0() -> Timestamp {
    "2026-11-16T01:00:00Z".parse().unwrap()
}

fn actor(role: Role, department: Option<&str>) -> Actor {
    Actor {
        id: 7,
        name: "测试".into(),
        role,
        department: department.map(str::to_owned),
    }
}

// ---------------------------------------------------------------------------------------------
// The independent specification

const KINDS: [ActionKind; 13] = [
    ActionKind::File,
    ActionKind::Reject,
    ActionKind::AnswerOnSpot,
    ActionKind::Dispatch,
    ActionKind::Accept,
    ActionKind::Return,
    ActionKind::Complete,
    ActionKind::Verify,
    ActionKind::RequestExtension,
    ActionKind::DecideExtension,
    ActionKind::Escalate,
    ActionKind::Callback,
    ActionKind::Close,
];

const ROLES: [Role; 5] = [
    Role::Agent,
    Role::Dispatcher,
    Role::Department,
    Role::Supervisor,
    Role::Admin,
];

/// Which statuses each step may be taken in.
fn spec_status_ok(kind: ActionKind, status: Status) -> bool {
    use ActionKind as K;
    use Status as S;
    let table: &[(K, &[S])] = &[
        (K::File, &[S::Received]),
        (K::Reject, &[S::Received]),
        (K::AnswerOnSpot, &[S::Received]),
        (K::Dispatch, &[S::Filed, S::Returned]),
        (K::Accept, &[S::Dispatched]),
        (K::Return, &[S::Dispatched, S::InProgress]),
        (K::Complete, &[S::InProgress]),
        (K::Verify, &[S::Completed]),
        (K::RequestExtension, &[S::InProgress]),
        (K::DecideExtension, &[S::InProgress]),
        (
            K::Escalate,
            &[
                S::Received,
                S::Filed,
                S::Dispatched,
                S::InProgress,
                S::Returned,
                S::Completed,
                S::AwaitingCallback,
                S::AwaitingClose,
            ],
        ),
        (K::Callback, &[S::AwaitingCallback]),
        (K::Close, &[S::AwaitingClose]),
    ];
    table
        .iter()
        .find(|(k, _)| *k == kind)
        .is_some_and(|(_, s)| s.contains(&status))
}

/// Which roles may take each step.
fn spec_roles(kind: ActionKind) -> &'static [Role] {
    use ActionKind as K;
    use Role as R;
    match kind {
        K::File | K::Reject | K::AnswerOnSpot | K::Dispatch => {
            &[R::Agent, R::Dispatcher, R::Supervisor]
        }
        K::Accept | K::Return | K::Complete | K::RequestExtension => &[R::Department],
        K::Verify | K::DecideExtension | K::Close => &[R::Supervisor],
        K::Escalate => &[R::Dispatcher, R::Supervisor],
        K::Callback => &[R::Agent, R::Supervisor],
        K::Create => &[],
        K::Supplement | K::Merge | K::Unmerge => &[R::Agent, R::Dispatcher, R::Supervisor],
    }
}

/// Role, department and status rules together.
fn spec_allowed(state: &WorkState, actor: &Actor, kind: ActionKind) -> bool {
    if !spec_roles(kind).contains(&actor.role) {
        return false;
    }
    if actor.role == Role::Department
        && (actor.department.is_none() || actor.department != state.department)
    {
        return false;
    }
    spec_status_ok(kind, state.status)
}

fn blank(s: &str) -> bool {
    s.trim().is_empty()
}

fn spec_running_due(state: &WorkState) -> Option<Timestamp> {
    match state.clocks.last() {
        Some(c) if c.finished_at.is_none() => Some(c.due),
        _ => None,
    }
}

/// Given that the step is allowed, the status it leads to, or `None` if its content is refused.
fn spec_outcome(state: &WorkState, action: &Action, now: Timestamp) -> Option<Status> {
    use Status as S;
    match action {
        Action::File { category, .. } => match category {
            Some(c) if blank(c) => None,
            Some(_) => Some(S::Filed),
            None if state.category.is_some() => Some(S::Filed),
            None => None,
        },
        Action::Reject { reason } => (!blank(reason)).then_some(S::Rejected),
        Action::AnswerOnSpot { answer } => (!blank(answer)).then_some(S::AwaitingCallback),
        Action::Dispatch { department, .. } => (!blank(department)).then_some(S::Dispatched),
        Action::Accept { .. } => Some(S::InProgress),
        Action::Return { reason } => (!blank(reason)).then_some(S::Returned),
        Action::Complete { note, .. } => (!blank(note)).then_some(S::Completed),
        Action::Verify { passed, .. } => Some(if *passed {
            S::AwaitingCallback
        } else {
            S::InProgress
        }),
        Action::RequestExtension { until, reason } => {
            let due = spec_running_due(state).unwrap_or(now);
            let ok = !blank(reason) && state.extension.is_none() && now <= due && *until > due;
            ok.then_some(state.status)
        }
        Action::DecideExtension { .. } => state.extension.is_some().then_some(state.status),
        Action::Escalate { .. } => {
            let overdue = spec_running_due(state).is_some_and(|d| now > d);
            overdue.then_some(state.status)
        }
        Action::Callback { result, .. } => Some(match result {
            Satisfaction::Satisfied
            | Satisfaction::BasicallySatisfied
            | Satisfaction::Unreachable => S::AwaitingClose,
            Satisfaction::Dissatisfied if state.department.is_some() => S::Dispatched,
            Satisfaction::Dissatisfied => S::Filed,
        }),
        Action::Close { .. } => Some(S::Closed),
    }
}

fn spec_counters(before: Counters, action: &Action) -> Counters {
    let mut c = before;
    match action {
        Action::Return { .. } => c.returns += 1,
        Action::Verify { passed: false, .. } => c.reworks += 1,
        Action::Escalate { .. } => c.escalations += 1,
        Action::DecideExtension { approve: true, .. } => c.extensions += 1,
        Action::Callback {
            result: Satisfaction::Dissatisfied,
            ..
        } => c.reopens += 1,
        _ => {}
    }
    c
}

// ---------------------------------------------------------------------------------------------
// Random steps. Each step is raw random choices, interpreted against the current state so that
// sequences get somewhere: often a kind legal in the current status and a role allowed to take it,
// sometimes anything at all.

#[derive(Debug, Clone)]
struct Step {
    /// Pick among kinds legal in the status (true) or among all kinds (false).
    kind_biased: bool,
    kind_pick: usize,
    /// Pick among allowed roles (true) or among all five (false).
    role_biased: bool,
    role_pick: usize,
    /// Department actor: the ticket's own department (true) or one of A, B, none (false).
    dept_biased: bool,
    dept_pick: usize,
    text_pick: usize,
    category_pick: usize,
    priority_pick: usize,
    dept_field_pick: usize,
    flag: bool,
    satisfaction_pick: usize,
    /// Seconds added to the clock before the step.
    advance: i64,
    /// `until` relative to the current due (seconds).
    until_offset: i64,
}

fn step() -> impl Strategy<Value = Step> {
    (
        (
            prop::bool::weighted(0.85),
            0..64usize,
            prop::bool::weighted(0.85),
            0..64usize,
        ),
        (
            prop::bool::weighted(0.85),
            0..3usize,
            0..4usize,
            0..5usize,
            0..3usize,
        ),
        (0..5usize, any::<bool>(), 0..4usize),
        prop_oneof![
            3 => Just(0i64),
            6 => 0..3_600i64,
            1 => 0..3 * 86_400i64,
        ],
        prop_oneof![-2 * 86_400..=0i64, 1..5 * 86_400i64,],
    )
        .prop_map(
            |(
                (kind_biased, kind_pick, role_biased, role_pick),
                (dept_biased, dept_pick, text_pick, category_pick, priority_pick),
                (dept_field_pick, flag, satisfaction_pick),
                advance,
                until_offset,
            )| Step {
                kind_biased,
                kind_pick,
                role_biased,
                role_pick,
                dept_biased,
                dept_pick,
                text_pick,
                category_pick,
                priority_pick,
                dept_field_pick,
                flag,
                satisfaction_pick,
                advance,
                until_offset,
            },
        )
}

const TEXTS: [&str; 4] = ["原因", "", "   ", " 已处理 "];
const CATEGORIES: [Option<&str>; 5] = [
    None,
    Some("C0101"),
    Some("C0102"),
    Some("  "),
    Some(" C0110 "),
];
const DEPT_FIELDS: [&str; 5] = ["A", "B", " A ", "", " "];
const ACTOR_DEPTS: [Option<&str>; 3] = [Some("A"), Some("B"), None];

fn opt_text(i: usize) -> Option<String> {
    if i == 0 {
        None
    } else {
        Some(TEXTS[i % TEXTS.len()].to_owned())
    }
}

/// Turns a step into (actor, action, now) against the current state.
fn realise(step: &Step, state: &WorkState, prev_now: Timestamp) -> (Actor, Action, Timestamp) {
    let now = prev_now + SignedDuration::from_secs(step.advance);
    // Biased picks mostly avoid the dead end (Reject) and the no-op (Escalate) to get deeper.
    let legal: Vec<ActionKind> = KINDS
        .into_iter()
        .filter(|&k| spec_status_ok(k, state.status))
        .filter(|&k| step.kind_pick < 16 || !matches!(k, ActionKind::Reject | ActionKind::Escalate))
        .collect();
    let kind = if step.kind_biased && !legal.is_empty() {
        legal[step.kind_pick % legal.len()]
    } else {
        KINDS[step.kind_pick % KINDS.len()]
    };
    let roles = spec_roles(kind);
    let role = if step.role_biased && !roles.is_empty() {
        roles[step.role_pick % roles.len()]
    } else {
        ROLES[step.role_pick % ROLES.len()]
    };
    let department = if step.dept_biased && role == Role::Department {
        state.department.clone()
    } else {
        ACTOR_DEPTS[step.dept_pick].map(str::to_owned)
    };
    let actor = Actor {
        id: 1 + step.role_pick as i64,
        name: format!("user{}", step.role_pick),
        role,
        department,
    };
    let text = TEXTS[step.text_pick].to_owned();
    let due_base = spec_running_due(state).unwrap_or(now);
    let action = match kind {
        ActionKind::File => Action::File {
            category: CATEGORIES[step.category_pick].map(str::to_owned),
            priority: match step.priority_pick {
                0 => None,
                1 => Some(Priority::Normal),
                _ => Some(Priority::Urgent),
            },
            note: opt_text(step.text_pick),
        },
        ActionKind::Reject => Action::Reject { reason: text },
        ActionKind::AnswerOnSpot => Action::AnswerOnSpot { answer: text },
        ActionKind::Dispatch => Action::Dispatch {
            department: DEPT_FIELDS[step.dept_field_pick].to_owned(),
            note: opt_text(step.text_pick),
        },
        ActionKind::Accept => Action::Accept {
            note: opt_text(step.text_pick),
        },
        ActionKind::Return => Action::Return { reason: text },
        ActionKind::Complete => Action::Complete {
            note: text,
            photos: if step.flag {
                vec!["p1.jpg".into()]
            } else {
                vec![]
            },
        },
        ActionKind::Verify => Action::Verify {
            passed: step.flag,
            note: opt_text(step.text_pick),
        },
        ActionKind::RequestExtension => Action::RequestExtension {
            until: due_base + SignedDuration::from_secs(step.until_offset),
            reason: text,
        },
        ActionKind::DecideExtension => Action::DecideExtension {
            approve: step.flag,
            note: opt_text(step.text_pick),
        },
        ActionKind::Escalate => Action::Escalate {
            note: opt_text(step.text_pick),
        },
        ActionKind::Callback => Action::Callback {
            result: [
                Satisfaction::Satisfied,
                Satisfaction::BasicallySatisfied,
                Satisfaction::Dissatisfied,
                Satisfaction::Unreachable,
            ][step.satisfaction_pick],
            note: opt_text(step.text_pick),
            reporter: None,
        },
        ActionKind::Close => Action::Close {
            note: opt_text(step.text_pick),
        },
        ActionKind::Create | ActionKind::Supplement | ActionKind::Merge | ActionKind::Unmerge => {
            unreachable!()
        }
    };
    (actor, action, now)
}

fn start_state(category_pick: usize, urgent: bool, sla: &Sla) -> WorkState {
    let category = match category_pick {
        0 => None,
        _ => Some("C0101".to_owned()),
    };
    let priority = if urgent {
        Priority::Urgent
    } else {
        Priority::Normal
    };
    WorkState::received(t0(), category, priority, sla)
}

// ---------------------------------------------------------------------------------------------
// Invariant checks for one accepted step

fn check_clocks(
    before: &WorkState,
    after: &WorkState,
    action: &Action,
    now: Timestamp,
) -> Result<(), TestCaseError> {
    prop_assert!(
        after.clocks.len() >= before.clocks.len(),
        "clocks removed by {action:?}"
    );
    let extension_approved = matches!(action, Action::DecideExtension { approve: true, .. });
    let last = before.clocks.len().saturating_sub(1);
    for (i, (b, a)) in before.clocks.iter().zip(&after.clocks).enumerate() {
        prop_assert_eq!(a.stage, b.stage, "clock {} stage changed", i);
        prop_assert_eq!(a.started_at, b.started_at, "clock {} start changed", i);
        if b.finished_at.is_some() {
            prop_assert_eq!(a, b, "finished clock {} changed by {:?}", i, action);
        }
        if extension_approved && i == last && b.finished_at.is_none() {
            prop_assert!(a.due >= b.due, "extension moved due backwards");
        } else {
            prop_assert_eq!(a.due, b.due, "clock {} due moved by {:?}", i, action);
        }
        if let (Some(f), None) = (a.finished_at, b.finished_at) {
            prop_assert_eq!(f, now, "clock {} finished at another time than now", i);
        }
    }
    for c in &after.clocks[before.clocks.len()..] {
        prop_assert_eq!(c.started_at, now, "new clock not started now");
    }
    check_running(after)
}

fn check_running(state: &WorkState) -> Result<(), TestCaseError> {
    let running: Vec<usize> = state
        .clocks
        .iter()
        .enumerate()
        .filter(|(_, c)| c.finished_at.is_none())
        .map(|(i, _)| i)
        .collect();
    prop_assert!(
        running.len() <= 1,
        "more than one running clock: {:?}",
        state.clocks
    );
    if let Some(&i) = running.first() {
        prop_assert_eq!(i, state.clocks.len() - 1, "running clock is not the last");
    }
    if matches!(state.status, Status::Closed | Status::Rejected) {
        prop_assert!(running.is_empty(), "{} with a running clock", state.status);
    }
    Ok(())
}

fn check_counters(before: Counters, after: Counters) -> Result<(), TestCaseError> {
    prop_assert!(after.escalations >= before.escalations);
    prop_assert!(after.reworks >= before.reworks);
    prop_assert!(after.returns >= before.returns);
    prop_assert!(after.reopens >= before.reopens);
    prop_assert!(after.extensions >= before.extensions);
    Ok(())
}

fn check_trail(
    initial: Status,
    trail: &[(AuditEvent, Timestamp, ActionKind, Status)],
) -> Result<(), TestCaseError> {
    let mut prev_status = initial;
    let mut prev_at: Option<Timestamp> = None;
    for (event, now, kind, new_status) in trail {
        prop_assert_eq!(event.from, Some(prev_status), "broken to→from chain");
        prop_assert_eq!(event.to, *new_status);
        prop_assert_eq!(event.at, *now);
        prop_assert_eq!(event.action, *kind);
        if let Some(p) = prev_at {
            prop_assert!(event.at >= p, "audit times go backwards");
        }
        prev_at = Some(event.at);
        prev_status = event.to;
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// The properties

fn run_sequence(category_pick: usize, urgent: bool, steps: &[Step]) -> Result<(), TestCaseError> {
    let sla = sla();
    let mut state = start_state(category_pick, urgent, &sla);
    check_running(&state)?;
    let initial = state.status;
    let mut now = t0();
    let mut trail = Vec::new();
    for step in steps {
        let (actor, action, at) = realise(step, &state, now);
        now = at;
        let kind = action.kind();
        let snapshot = state.clone();
        let allowed = spec_allowed(&state, &actor, kind);
        let expected = if allowed {
            spec_outcome(&state, &action, now)
        } else {
            None
        };
        let result = workflow::apply(&state, &actor, &action, now, &sla);
        // Nothing changes on a refusal (and apply never mutates its input).
        prop_assert_eq!(&state, &snapshot);
        match (result, expected) {
            (Err(_), None) => {}
            (Err(e), Some(to)) => {
                return Err(TestCaseError::fail(format!(
                    "refused a step the spec allows (→ {to}): {e}\n state: {state:?}\n actor: {actor:?}\n action: {action:?}\n now: {now}"
                )));
            }
            (Ok(t), None) => {
                return Err(TestCaseError::fail(format!(
                    "accepted a step the spec refuses (allowed by role/dept/status: {allowed}): → {}\n state: {state:?}\n actor: {actor:?}\n action: {action:?}\n now: {now}",
                    t.state.status
                )));
            }
            (Ok(t), Some(to)) => {
                prop_assert_eq!(t.state.status, to, "wrong next status for {:?}", action);
                check_clocks(&state, &t.state, &action, now)?;
                check_counters(state.counters, t.state.counters)?;
                prop_assert_eq!(
                    t.state.counters,
                    spec_counters(state.counters, &action),
                    "counters for {:?}",
                    action
                );
                trail.push((t.event, now, kind, t.state.status));
                state = t.state;
            }
        }
    }
    check_trail(initial, &trail)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Legality, expected next status, clocks and counters, and the audit trail, in one walk.
    #[test]
    fn apply_matches_spec_and_keeps_invariants(
        category_pick in 0..2usize,
        urgent in any::<bool>(),
        steps in prop::collection::vec(step(), 1..30),
    ) {
        run_sequence(category_pick, urgent, &steps)?;
    }

    /// Fully random (unbiased) steps: everything the spec refuses must be refused.
    #[test]
    fn unbiased_steps_never_bypass_the_rules(
        category_pick in 0..2usize,
        urgent in any::<bool>(),
        steps in prop::collection::vec(
            step().prop_map(|mut s| { s.kind_biased = false; s.role_biased = false; s.dept_biased = false; s }),
            1..30,
        ),
    ) {
        run_sequence(category_pick, urgent, &steps)?;
    }
}

// ---------------------------------------------------------------------------------------------
// Plain tests

fn step_ok(
    state: &WorkState,
    actor: &Actor,
    action: Action,
    now: Timestamp,
    sla: &Sla,
) -> WorkState {
    let t = workflow::apply(state, actor, &action, now, sla)
        .unwrap_or_else(|e| panic!("{action:?} refused: {e}"));
    assert_eq!(t.event.from, Some(state.status));
    assert_eq!(t.event.to, t.state.status);
    t.state
}

/// A ticket walked from 受理 to 待回访 on time, one step a minute from `t0`.
fn walked_to_callback(sla: &Sla) -> WorkState {
    let agent = actor(Role::Agent, None);
    let min = |n: i64| t0() + SignedDuration::from_mins(n);
    let dispatcher = actor(Role::Dispatcher, None);
    let dept = actor(Role::Department, Some("A"));
    let supervisor = actor(Role::Supervisor, None);

    let s = WorkState::received(t0(), None, Priority::Normal, sla);
    let s = step_ok(
        &s,
        &agent,
        Action::File {
            category: Some("C0101".into()),
            priority: None,
            note: None,
        },
        min(1),
        sla,
    );
    assert_eq!(s.status, Status::Filed);
    let s = step_ok(
        &s,
        &dispatcher,
        Action::Dispatch {
            department: "A".into(),
            note: None,
        },
        min(2),
        sla,
    );
    assert_eq!(s.status, Status::Dispatched);
    let s = step_ok(&s, &dept, Action::Accept { note: None }, min(3), sla);
    assert_eq!(s.status, Status::InProgress);
    let s = step_ok(
        &s,
        &dept,
        Action::Complete {
            note: "已修复".into(),
            photos: vec![],
        },
        min(4),
        sla,
    );
    assert_eq!(s.status, Status::Completed);
    let s = step_ok(
        &s,
        &supervisor,
        Action::Verify {
            passed: true,
            note: None,
        },
        min(5),
        sla,
    );
    assert_eq!(s.status, Status::AwaitingCallback);
    s
}

#[test]
fn happy_path_closes_on_time() {
    let sla = sla();
    let min = |n: i64| t0() + SignedDuration::from_mins(n);
    let agent = actor(Role::Agent, None);
    let supervisor = actor(Role::Supervisor, None);
    let s = walked_to_callback(&sla);
    let s = step_ok(
        &s,
        &agent,
        Action::Callback {
            result: Satisfaction::Satisfied,
            note: None,
            reporter: None,
        },
        min(6),
        &sla,
    );
    assert_eq!(s.status, Status::AwaitingClose);
    let s = step_ok(&s, &supervisor, Action::Close { note: None }, min(7), &sla);
    assert_eq!(s.status, Status::Closed);

    assert_eq!(s.clocks.len(), 6, "one clock per stage: {:?}", s.clocks);
    for c in &s.clocks {
        assert_eq!(c.on_time(), Some(true), "clock {c:?}");
    }
    assert!(s.running_clock().is_none());
    assert_eq!(s.counters, Counters::default());
    assert_eq!(s.satisfaction, Some(Satisfaction::Satisfied));
}

#[test]
fn escalate_only_when_overdue() {
    let sla = sla();
    let dispatcher = actor(Role::Dispatcher, None);
    let s = WorkState::received(t0(), Some("C0101".into()), Priority::Normal, &sla);
    let due = s.current_due().unwrap();
    let action = Action::Escalate { note: None };

    // Not overdue: before and exactly at the deadline.
    for now in [t0() + SignedDuration::from_mins(1), due] {
        let err = workflow::apply(&s, &dispatcher, &action, now, &sla).unwrap_err();
        assert_eq!(err.code(), "not_overdue", "{err}");
    }

    // Overdue.
    let now = due + SignedDuration::from_secs(1);
    let t = workflow::apply(&s, &dispatcher, &action, now, &sla).unwrap();
    assert_eq!(t.state.status, Status::Received);
    assert_eq!(t.state.counters.escalations, 1);
    assert_eq!(t.state.clocks, s.clocks);
    assert_eq!(t.event.action, ActionKind::Escalate);

    // Still refused for a role that may not escalate, even when overdue.
    let agent = actor(Role::Agent, None);
    assert!(workflow::apply(&s, &agent, &action, now, &sla).is_err());
}

#[test]
fn every_reporter_is_called_back_and_the_unreachable_do_not_count_as_satisfied() {
    let sla = sla();
    let min = |n: i64| t0() + SignedDuration::from_mins(n);
    let agent = actor(Role::Agent, None);
    let three = workflow::Facts { reporters: 3 };
    let callback = |s: &WorkState, result, reporter, at| {
        workflow::apply_with(
            s,
            three,
            &agent,
            &Action::Callback {
                result,
                note: None,
                reporter,
            },
            at,
            &sla,
        )
    };
    let s = walked_to_callback(&sla);
    let t = callback(&s, Satisfaction::Unreachable, None, min(6)).unwrap();
    assert_eq!(t.state.status, Status::AwaitingCallback, "two more to ask");
    assert_eq!(t.event.to, Status::AwaitingCallback);
    assert!(
        t.state.running_clock().is_some(),
        "the 回访 clock still runs"
    );
    let t = callback(&t.state, Satisfaction::Satisfied, Some(2), min(7)).unwrap();
    assert_eq!(t.state.status, Status::AwaitingCallback);
    let again = callback(&t.state, Satisfaction::Satisfied, Some(2), min(7));
    assert!(matches!(
        again,
        Err(workflow::WorkflowError::AlreadyCalledBack { reporter: 2 })
    ));
    assert!(matches!(
        callback(&t.state, Satisfaction::Satisfied, Some(3), min(7)),
        Err(workflow::WorkflowError::NoSuchReporter {
            reporter: 3,
            reporters: 3
        })
    ));
    // The default is the next one not asked: reporter 1.
    let t = callback(&t.state, Satisfaction::Unreachable, None, min(8)).unwrap();
    assert_eq!(t.state.status, Status::AwaitingClose);
    let asked: Vec<u32> = t.state.callbacks.iter().map(|c| c.reporter).collect();
    assert_eq!(asked, [0, 2, 1]);
    assert_eq!(
        t.state.satisfaction,
        Some(Satisfaction::Satisfied),
        "of those reached"
    );
    assert!(t.state.running_clock().is_none());

    // Nobody reached: the ticket can still be closed, and says so.
    let one = |s: &WorkState| {
        workflow::apply(
            s,
            &agent,
            &Action::Callback {
                result: Satisfaction::Unreachable,
                note: Some("三次未接通".into()),
                reporter: None,
            },
            min(6),
            &sla,
        )
        .unwrap()
        .state
    };
    let s = one(&walked_to_callback(&sla));
    assert_eq!(s.status, Status::AwaitingClose);
    assert_eq!(s.satisfaction, Some(Satisfaction::Unreachable));

    // One not satisfied reopens at once, whoever is still to be asked; the next round starts
    // afresh.
    let t = callback(
        &walked_to_callback(&sla),
        Satisfaction::Dissatisfied,
        Some(1),
        min(6),
    )
    .unwrap();
    assert_eq!(t.state.status, Status::Dispatched);
    assert!(t.state.callbacks.is_empty());
    assert_eq!(t.state.counters.reopens, 1);
}
