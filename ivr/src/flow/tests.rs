//! Flows and sessions driven with virtual time: no sleeps, no sockets.

use std::sync::Arc;

use jiff::{SignedDuration, Timestamp};
use proptest::prelude::*;

use super::*;

const FLOW_12319: &str = include_str!("../../../config/ivr/12319.toml");
const FLOW_12345: &str = include_str!("../../../config/ivr/12345.toml");

/// 10:00 in Beijing on a Monday.
fn t0() -> Timestamp {
    "2026-11-23T02:00:00Z".parse().unwrap()
}

fn open() -> Arc<dyn Calendar> {
    Arc::new(|_: Timestamp| true)
}

fn closed() -> Arc<dyn Calendar> {
    Arc::new(|_: Timestamp| false)
}

/// One caller on one flow, with a virtual clock and the timer the gateway would have pending.
struct Call {
    session: Session,
    now: Timestamp,
    timer: Option<(TimerId, Timestamp)>,
    log: Vec<Action>,
}

impl Call {
    fn new(flow: &Flow, calendar: Arc<dyn Calendar>) -> Call {
        let mut call = Call {
            session: Session::new(flow, calendar),
            now: t0(),
            timer: None,
            log: Vec::new(),
        };
        let actions = call.session.start(call.now);
        call.track(&actions);
        call
    }

    fn track(&mut self, actions: &[Action]) {
        for a in actions {
            match a {
                Action::StartTimer { id, at } => self.timer = Some((*id, *at)),
                Action::CancelTimer(id) if self.timer.map(|t| t.0) == Some(*id) => {
                    self.timer = None
                }
                _ => {}
            }
        }
        self.log.extend(actions.iter().cloned());
    }

    fn send(&mut self, event: Event) -> Vec<Action> {
        let actions = self.session.handle(self.now, event);
        self.track(&actions);
        actions
    }

    fn finish_prompt(&mut self) -> Vec<Action> {
        self.send(Event::PromptFinished)
    }

    fn press(&mut self, keys: &str) -> Vec<Action> {
        let mut all = Vec::new();
        for k in keys.chars() {
            self.now += SignedDuration::from_millis(300);
            all.extend(self.send(Event::Digit(k)));
        }
        all
    }

    /// Lets virtual time run to the pending timer and fires it.
    fn wait_for_timer(&mut self) -> Vec<Action> {
        let (id, at) = self.timer.take().expect("a timer is pending");
        self.now = at;
        self.send(Event::TimerFired(id))
    }

    fn node(&self) -> &str {
        self.session.current_node()
    }
}

/// The prompts of every `Play` in `actions`, as `lang/name`.
fn heard(actions: &[Action]) -> Vec<String> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Play(p) => Some(p),
            _ => None,
        })
        .flatten()
        .map(|p| format!("{}/{}", p.lang, p.name))
        .collect()
}

fn flow(text: &str) -> Flow {
    Flow::from_toml("test.toml", text).unwrap_or_else(|e| panic!("{e}"))
}

fn flow_error(text: &str) -> FlowError {
    Flow::from_toml("config/ivr/bad.toml", text).expect_err("the flow should be rejected")
}

fn flow_12319() -> Flow {
    Flow::from_toml("config/ivr/12319.toml", FLOW_12319).unwrap_or_else(|e| panic!("{e}"))
}

fn flow_12345() -> Flow {
    Flow::from_toml("config/ivr/12345.toml", FLOW_12345).unwrap_or_else(|e| panic!("{e}"))
}

/// 12319 caller past welcome and language (zh by key 1), at the main menu prompt.
fn at_main_menu_12319() -> Call {
    let mut call = Call::new(&flow_12319(), open());
    call.finish_prompt();
    call.press("1");
    assert_eq!(call.node(), "main_menu");
    call
}

// ---- the example flows, end to end ---------------------------------------------------------

#[test]
fn caller_checks_ticket_status_by_dtmf_on_12319() {
    let mut call = Call::new(&flow_12319(), open());
    assert_eq!(heard(&call.log), ["zh/welcome_12319"]);
    let a = call.finish_prompt();
    assert_eq!(heard(&a), ["zh/choose_language", "en/choose_language"]);
    call.finish_prompt();
    let a = call.press("1");
    assert_eq!(heard(&a), ["zh/menu_12319"]);
    call.finish_prompt();
    let a = call.press("2");
    assert_eq!(heard(&a), ["zh/enter_ticket"]);
    call.finish_prompt();
    let a = call.press("20261123000042#");
    assert!(
        a.contains(&Action::LookUpTicket {
            number: "12319-20261123-000042".into()
        }),
        "the lookup carries the canonical number: {a:?}"
    );
    assert_eq!(call.session.variable("ticket"), Some("20261123000042"));
    let a = call.send(Event::TicketStatus {
        found: true,
        status: Some("dispatched".into()),
    });
    let mut expected = vec!["zh/ticket_is".to_owned()];
    expected.extend("20261123000042".chars().map(|d| format!("zh/digits/{d}")));
    expected.extend([
        "zh/ticket_status_is".to_owned(),
        "zh/status/dispatched".to_owned(),
    ]);
    assert_eq!(heard(&a), expected);
    call.finish_prompt();
    assert_eq!(call.node(), "after_status");
    call.finish_prompt();
    let a = call.wait_for_timer();
    assert_eq!(heard(&a), ["zh/goodbye"]);
    assert_eq!(call.finish_prompt(), [Action::Hangup]);
    assert_eq!(call.session.outcome(), Some(Outcome::HungUp));
}

#[test]
fn english_caller_checks_ticket_on_12345_and_hears_english() {
    let mut call = Call::new(&flow_12345(), open());
    call.finish_prompt();
    call.press("2");
    assert_eq!(call.session.language(), Lang::En);
    call.finish_prompt();
    call.press("3");
    call.finish_prompt();
    let a = call.press("20261123000042#");
    assert!(a.contains(&Action::LookUpTicket {
        number: "12345-20261123-000042".into()
    }));
    let a = call.send(Event::TicketStatus {
        found: true,
        status: Some("closed".into()),
    });
    let h = heard(&a);
    assert_eq!(h.first().map(String::as_str), Some("en/ticket_is"));
    assert_eq!(h.last().map(String::as_str), Some("en/status/closed"));
}

#[test]
fn caller_reports_a_problem_and_is_queued_on_12319() {
    let mut call = at_main_menu_12319();
    let a = call.press("1");
    assert_eq!(
        a.last(),
        Some(&Action::Enqueue {
            queue: "12319-intake".into()
        })
    );
    assert_eq!(call.send(Event::QueueOutcome(QueueOutcome::Answered)), []);
    assert_eq!(call.session.outcome(), Some(Outcome::Answered));
    assert_eq!(
        call.send(Event::Digit('1')),
        [],
        "the flow is done once an agent answers"
    );
}

#[test]
fn caller_asks_for_an_agent_with_zero() {
    let mut call = at_main_menu_12319();
    let a = call.press("0");
    assert_eq!(
        a.last(),
        Some(&Action::Enqueue {
            queue: "12319-intake".into()
        })
    );
}

#[test]
fn consultation_goes_to_its_own_queue_on_12345() {
    let mut call = Call::new(&flow_12345(), open());
    call.finish_prompt();
    call.press("1");
    let a = call.press("2");
    assert_eq!(
        a.last(),
        Some(&Action::Enqueue {
            queue: "12345-consult".into()
        })
    );
}

#[test]
fn after_hours_caller_leaves_a_message_that_becomes_a_ticket() {
    let mut call = Call::new(&flow_12319(), closed());
    call.finish_prompt();
    let a = call.press("1");
    assert_eq!(heard(&a), ["zh/after_hours"]);
    let a = call.finish_prompt();
    assert_eq!(heard(&a), ["zh/leave_message", "zh/beep"]);
    let a = call.finish_prompt();
    assert_eq!(a[0], Action::StartRecording { max_seconds: 120 });
    call.now += SignedDuration::from_secs(20);
    let a = call.press("#");
    assert_eq!(a[0], Action::StopRecording);
    let a = call.send(Event::RecordingFinished {
        duration_ms: 20_000,
    });
    assert_eq!(a[0], Action::CreateVoicemailTicket);
    assert_eq!(heard(&a), ["zh/message_saved"]);
    let a = call.finish_prompt();
    assert_eq!(heard(&a), ["zh/goodbye"]);
    assert_eq!(call.finish_prompt(), [Action::Hangup]);
}

#[test]
fn caller_leaves_a_message_with_three() {
    let mut call = at_main_menu_12319();
    let a = call.press("3");
    assert_eq!(heard(&a), ["zh/leave_message", "zh/beep"]);
}

#[test]
fn queue_outcomes_lead_where_the_flow_says() {
    let cases = [
        (QueueOutcome::Voicemail, "voicemail"),
        (QueueOutcome::CallbackRequested, "callback_noted"),
        (QueueOutcome::OverflowToNode("consult".into()), "consult"),
        (
            QueueOutcome::OverflowToNode("no_such_node".into()),
            "voicemail",
        ),
        (QueueOutcome::OverflowToNode("goodbye".into()), "voicemail"), // not in `overflow`
    ];
    for (outcome, node) in cases {
        let mut call = Call::new(&flow_12345(), open());
        call.finish_prompt();
        call.press("1");
        call.press("1");
        call.send(Event::QueueOutcome(outcome.clone()));
        assert_eq!(call.node(), node, "{outcome:?}");
    }
    let mut call = Call::new(&flow_12345(), open());
    call.finish_prompt();
    call.press("1");
    call.press("1");
    let a = call.send(Event::QueueOutcome(QueueOutcome::OverflowToNode(
        "consult".into(),
    )));
    assert_eq!(
        a,
        [Action::Enqueue {
            queue: "12345-consult".into()
        }]
    );
}

#[test]
fn example_flows_list_their_prompts_and_queues() {
    let f = flow_12319();
    let names = f.prompt_names();
    for n in [
        "welcome_12319",
        "menu_12319",
        "beep",
        "digits/0",
        "digits/9",
        "status/dispatched",
        "goodbye",
    ] {
        assert!(names.contains(n), "{n} missing from {names:?}");
    }
    assert_eq!(f.queues().into_iter().collect::<Vec<_>>(), ["12319-intake"]);
    assert_eq!(
        flow_12345().queues().into_iter().collect::<Vec<_>>(),
        ["12345-consult", "12345-intake"]
    );
    assert_eq!(f.hotline(), "12319");
    assert_eq!(f.start_node(), "welcome");
}

#[test]
fn every_prompt_of_the_example_flows_is_in_the_prompt_set() {
    let prompts: toml::Table =
        toml::from_str(include_str!("../../../config/prompts.toml")).unwrap();
    let known = prompts["prompt"].as_table().unwrap();
    for f in [flow_12319(), flow_12345()] {
        for name in f.prompt_names() {
            assert!(
                known.contains_key(&name),
                "{}: prompt `{name}` is not in config/prompts.toml",
                f.file_name()
            );
        }
    }
}

// ---- play, menu, barge-in, retries ---------------------------------------------------------

const MENU: &str = r##"
hotline = "1"
start = "menu"
[nodes.menu]
kind = "menu"
prompts = ["menu"]
options = { "1" = "one", "#" = "bye" }
timeout_ms = 3000
max_retries = 2
no_input_prompts = ["no_input"]
invalid_prompts = ["invalid"]
fallback = "fallback"
[nodes.one]
kind = "play"
prompts = ["one_a", "one_b"]
next = "bye"
[nodes.fallback]
kind = "transfer"
number = "+8602112345678"
prompts = ["transfer"]
[nodes.bye]
kind = "hangup"
"##;

#[test]
fn play_node_ignores_keys_and_continues_when_its_prompts_end() {
    let mut call = Call::new(&flow(MENU), open());
    call.finish_prompt();
    let a = call.press("1");
    assert_eq!(heard(&a), ["zh/one_a", "zh/one_b"]);
    assert_eq!(call.press("1"), [], "no barge-in on a play node");
    assert_eq!(
        call.finish_prompt(),
        [Action::Hangup],
        "a hangup without prompts hangs up at once"
    );
}

#[test]
fn menu_waits_for_a_key_after_its_prompt() {
    let mut call = Call::new(&flow(MENU), open());
    assert_eq!(heard(&call.log), ["zh/menu"]);
    let a = call.finish_prompt();
    assert!(
        matches!(a[..], [Action::StartTimer { at, .. }] if at == t0() + SignedDuration::from_secs(3))
    );
    let a = call.press("1");
    assert!(matches!(a[0], Action::CancelTimer(_)));
    assert_eq!(call.node(), "one");
}

#[test]
fn a_key_during_the_menu_prompt_stops_it_and_counts() {
    let mut call = Call::new(&flow(MENU), open());
    let a = call.press("1");
    assert_eq!(a[0], Action::StopPlayback);
    assert_eq!(heard(&a), ["zh/one_a", "zh/one_b"]);
    assert_eq!(call.node(), "one");
}

#[test]
fn a_wrong_key_during_the_prompt_stops_it_and_replays_with_the_invalid_prompt() {
    let mut call = Call::new(&flow(MENU), open());
    let a = call.press("7");
    assert_eq!(a[0], Action::StopPlayback);
    assert_eq!(heard(&a), ["zh/invalid", "zh/menu"]);
}

#[test]
fn menu_timeouts_retry_with_the_no_input_prompt_then_fall_back() {
    let mut call = Call::new(&flow(MENU), open());
    call.finish_prompt();
    assert_eq!(heard(&call.wait_for_timer()), ["zh/no_input", "zh/menu"]);
    call.finish_prompt();
    assert_eq!(heard(&call.wait_for_timer()), ["zh/no_input", "zh/menu"]);
    call.finish_prompt();
    let a = call.wait_for_timer();
    assert_eq!(
        heard(&a),
        ["zh/transfer"],
        "third failure with max_retries = 2 goes to the fallback"
    );
    assert_eq!(
        call.finish_prompt(),
        [Action::Transfer {
            number: "+8602112345678".into()
        }]
    );
    assert_eq!(call.session.outcome(), Some(Outcome::Transferred));
}

#[test]
fn a_refused_transfer_continues_at_the_failed_node_or_hangs_up() {
    let text = MENU.replace(
        "prompts = [\"transfer\"]\n",
        "prompts = [\"transfer\"]\nfailed = \"sorry\"\n[nodes.sorry]\nkind = \"play\"\nprompts = [\"sorry\"]\nnext = \"bye\"\n",
    );
    let mut call = Call::new(&flow(&text), open());
    call.finish_prompt();
    call.wait_for_timer();
    call.finish_prompt();
    call.wait_for_timer();
    call.finish_prompt();
    call.wait_for_timer();
    assert!(matches!(
        call.finish_prompt()[..],
        [Action::Transfer { .. }]
    ));
    assert_eq!(call.session.outcome(), Some(Outcome::Transferred));
    assert_eq!(
        call.press("1"),
        [],
        "keys do nothing while the trunk transfers"
    );
    let a = call.send(Event::TransferFailed);
    assert_eq!(heard(&a), ["zh/sorry"]);
    assert_eq!(call.session.outcome(), None, "the flow goes on");
    assert_eq!(call.finish_prompt(), [Action::Hangup]);
    assert_eq!(
        call.send(Event::TransferFailed),
        [],
        "only after a transfer"
    );

    // Without `failed`, a failed transfer ends the call.
    let mut call = Call::new(&flow(MENU), open());
    for _ in 0..3 {
        call.finish_prompt();
        call.wait_for_timer();
    }
    call.finish_prompt();
    assert_eq!(call.send(Event::TransferFailed), [Action::Hangup]);
    assert_eq!(call.session.outcome(), Some(Outcome::HungUp));
}

#[test]
fn invalid_keys_and_timeouts_count_together() {
    let mut call = Call::new(&flow(MENU), open());
    call.finish_prompt();
    call.press("9");
    call.finish_prompt();
    call.wait_for_timer();
    call.finish_prompt();
    call.press("*");
    assert_eq!(call.node(), "fallback");
}

#[test]
fn a_stale_timer_is_ignored() {
    let mut call = Call::new(&flow(MENU), open());
    let a = call.finish_prompt();
    let Action::StartTimer { id: first, .. } = a[0] else {
        panic!("{a:?}")
    };
    call.press("5"); // invalid: the first timer is cancelled, the prompt replays
    assert_eq!(call.send(Event::TimerFired(first)), []);
    assert_eq!(call.send(Event::TimerFired(TimerId(999))), []);
    let a = call.finish_prompt();
    let Action::StartTimer { id: second, .. } = a[0] else {
        panic!("{a:?}")
    };
    assert_ne!(first, second);
    assert_eq!(
        heard(&call.send(Event::TimerFired(second))),
        ["zh/no_input", "zh/menu"]
    );
    assert_eq!(
        call.send(Event::TimerFired(second)),
        [],
        "a timer fires once"
    );
}

#[test]
fn odd_events_are_ignored() {
    let mut call = Call::new(&flow(MENU), open());
    assert_eq!(call.send(Event::Digit('x')), []);
    assert_eq!(call.send(Event::RecordingFinished { duration_ms: 5 }), []);
    assert_eq!(
        call.send(Event::TicketStatus {
            found: true,
            status: None
        }),
        []
    );
    assert_eq!(call.send(Event::QueueOutcome(QueueOutcome::Answered)), []);
    assert_eq!(call.session.start(t0()), [], "start twice does nothing");
    let mut fresh = Session::new(&flow(MENU), open());
    assert_eq!(
        fresh.handle(t0(), Event::Digit('1')),
        [],
        "events before start are ignored"
    );
}

#[test]
fn caller_hanging_up_mid_menu_cancels_the_timer_and_ends() {
    let mut call = Call::new(&flow(MENU), open());
    let a = call.finish_prompt();
    let Action::StartTimer { id, .. } = a[0] else {
        panic!()
    };
    assert_eq!(call.send(Event::CallerHungUp), [Action::CancelTimer(id)]);
    assert_eq!(call.session.outcome(), Some(Outcome::CallerHungUp));
    assert_eq!(call.send(Event::TimerFired(id)), []);
    assert_eq!(call.send(Event::PromptFinished), []);
}

// ---- collect -------------------------------------------------------------------------------

const COLLECT: &str = r#"
hotline = "1"
start = "enter"
[nodes.enter]
kind = "collect"
prompts = ["enter"]
var = "code"
min_digits = 3
max_digits = 5
first_digit_timeout_ms = 8000
inter_digit_timeout_ms = 2000
max_retries = 1
no_input_prompts = ["no_input"]
invalid_prompts = ["invalid"]
fallback = "bye"
next = "done"
[nodes.done]
kind = "hangup"
prompts = ["thanks"]
[nodes.bye]
kind = "hangup"
prompts = ["bye"]
"#;

#[test]
fn collect_ends_on_the_terminator() {
    let mut call = Call::new(&flow(COLLECT), open());
    call.finish_prompt();
    let a = call.press("123#");
    assert_eq!(heard(&a), ["zh/thanks"]);
    assert_eq!(call.session.variable("code"), Some("123"));
}

#[test]
fn collect_ends_at_max_digits() {
    let mut call = Call::new(&flow(COLLECT), open());
    call.finish_prompt();
    call.press("1234");
    assert_eq!(call.node(), "enter");
    call.press("5");
    assert_eq!(call.session.variable("code"), Some("12345"));
    assert_eq!(call.node(), "done");
}

#[test]
fn collect_first_digit_timeout_then_inter_digit_timeout() {
    let mut call = Call::new(&flow(COLLECT), open());
    let a = call.finish_prompt();
    assert!(
        matches!(a[..], [Action::StartTimer { at, .. }] if at == t0() + SignedDuration::from_secs(8))
    );
    let a = call.press("1");
    let Some(Action::StartTimer { at, .. }) = a.last() else {
        panic!("{a:?}")
    };
    assert_eq!(
        *at,
        call.now + SignedDuration::from_secs(2),
        "inter-digit timeout after a key"
    );
    call.press("2");
    let a = call.wait_for_timer();
    assert_eq!(
        heard(&a),
        ["zh/invalid", "zh/enter"],
        "too few digits when the keys stop"
    );
    call.finish_prompt();
    call.press("123");
    call.wait_for_timer();
    assert_eq!(
        call.session.variable("code"),
        Some("123"),
        "enough digits: the pause ends the entry"
    );
}

#[test]
fn collect_no_input_then_fallback() {
    let mut call = Call::new(&flow(COLLECT), open());
    call.finish_prompt();
    assert_eq!(heard(&call.wait_for_timer()), ["zh/no_input", "zh/enter"]);
    call.finish_prompt();
    assert_eq!(heard(&call.wait_for_timer()), ["zh/bye"]);
}

#[test]
fn collect_rejects_too_short_entry_and_star() {
    let mut call = Call::new(&flow(COLLECT), open());
    call.finish_prompt();
    assert_eq!(heard(&call.press("12#")), ["zh/invalid", "zh/enter"]);
    let a = call.press("1*");
    assert_eq!(
        a[0],
        Action::StopPlayback,
        "typing ahead barges in on the replay"
    );
    assert_eq!(call.node(), "bye");
    assert_eq!(call.session.variable("code"), None);
}

#[test]
fn a_bare_terminator_counts_as_no_input() {
    let mut call = Call::new(&flow(COLLECT), open());
    call.finish_prompt();
    assert_eq!(heard(&call.press("#")), ["zh/no_input", "zh/enter"]);
}

#[test]
fn collect_prompt_can_be_keyed_over() {
    let mut call = Call::new(&flow(COLLECT), open());
    let a = call.press("1");
    assert_eq!(a[0], Action::StopPlayback);
    call.press("23#");
    assert_eq!(call.session.variable("code"), Some("123"));
}

// ---- language, hours -----------------------------------------------------------------------

#[test]
fn language_choice_sets_the_language_of_later_prompts() {
    let mut call = Call::new(&flow_12319(), open());
    call.finish_prompt();
    let a = call.press("2");
    assert_eq!(call.session.language(), Lang::En);
    assert_eq!(heard(&a), ["en/menu_12319"]);
}

#[test]
fn language_retries_in_both_languages_then_keeps_the_default() {
    let mut call = Call::new(&flow_12319(), open());
    call.finish_prompt();
    call.finish_prompt();
    let a = call.wait_for_timer();
    assert_eq!(
        heard(&a),
        [
            "zh/no_input",
            "en/no_input",
            "zh/choose_language",
            "en/choose_language"
        ]
    );
    let a = call.press("7");
    assert_eq!(
        heard(&a),
        ["zh/menu_12319"],
        "max_retries = 1: second failure goes on in zh"
    );
    assert_eq!(call.session.language(), Lang::Zh);
}

#[test]
fn with_language_starts_in_english() {
    let s = Session::new(&flow_12319(), open()).with_language(Lang::En);
    assert_eq!(s.language(), Lang::En);
}

#[test]
fn hours_asks_the_calendar_at_the_time_given() {
    let text = r#"
hotline = "1"
start = "h"
[nodes.h]
kind = "hours"
open = "o"
closed = "c"
[nodes.o]
kind = "hangup"
prompts = ["open"]
[nodes.c]
kind = "hangup"
prompts = ["closed"]
"#;
    let f = flow(text);
    // Open from 09:00 to 17:00 UTC+8.
    let cal: Arc<dyn Calendar> = Arc::new(|at: Timestamp| {
        let h = at
            .to_zoned(jiff::tz::TimeZone::fixed(jiff::tz::offset(8)))
            .hour();
        (9..17).contains(&h)
    });
    let mut s = Session::new(&f, cal.clone());
    assert_eq!(heard(&s.start(t0())), ["zh/open"]);
    let mut s = Session::new(&f, cal);
    assert_eq!(
        heard(&s.start(t0() + SignedDuration::from_hours(12))),
        ["zh/closed"]
    );
}

// ---- record --------------------------------------------------------------------------------

#[test]
fn recording_ends_by_the_gateway_without_a_key() {
    let mut call = Call::new(&flow_12319(), closed());
    call.finish_prompt();
    call.press("1");
    call.finish_prompt();
    call.finish_prompt();
    let a = call.send(Event::RecordingFinished {
        duration_ms: 120_000,
    });
    assert!(matches!(a[0], Action::CancelTimer(_)), "{a:?}");
    assert_eq!(a[1], Action::CreateVoicemailTicket);
}

#[test]
fn recording_guard_timer_stops_a_recording_the_gateway_forgot() {
    let mut call = Call::new(&flow_12319(), closed());
    call.finish_prompt();
    call.press("1");
    call.finish_prompt();
    let a = call.finish_prompt();
    let Action::StartTimer { at, .. } = a[1] else {
        panic!("{a:?}")
    };
    assert_eq!(at, call.now + SignedDuration::from_secs(130));
    assert_eq!(call.wait_for_timer(), [Action::StopRecording]);
    assert_eq!(call.press("#"), [], "already stopping");
    let a = call.send(Event::RecordingFinished {
        duration_ms: 120_000,
    });
    assert_eq!(a[0], Action::CreateVoicemailTicket);
}

#[test]
fn caller_hanging_up_while_recording_still_leaves_a_message() {
    let mut call = Call::new(&flow_12319(), closed());
    call.finish_prompt();
    call.press("1");
    call.finish_prompt();
    call.finish_prompt();
    let a = call.send(Event::CallerHungUp);
    assert!(
        matches!(a[..], [Action::CancelTimer(_), Action::StopRecording]),
        "{a:?}"
    );
    assert!(!call.session.is_finished());
    assert_eq!(
        call.send(Event::RecordingFinished { duration_ms: 9_000 }),
        [Action::CreateVoicemailTicket]
    );
    assert_eq!(call.session.outcome(), Some(Outcome::CallerHungUp));
}

#[test]
fn keys_during_the_voicemail_prompt_are_ignored() {
    let mut call = at_main_menu_12319();
    call.press("3");
    assert_eq!(call.press("#5"), []);
    assert_eq!(
        call.finish_prompt()[0],
        Action::StartRecording { max_seconds: 120 }
    );
}

// ---- lookup --------------------------------------------------------------------------------

fn at_lookup_12319(number: &str) -> (Call, Vec<Action>) {
    let mut call = at_main_menu_12319();
    call.press("2");
    call.finish_prompt();
    let a = call.press(number);
    (call, a)
}

#[test]
fn unknown_ticket_says_not_found_and_asks_again() {
    let (mut call, _) = at_lookup_12319("20261123999999#");
    let a = call.send(Event::TicketStatus {
        found: false,
        status: None,
    });
    assert_eq!(heard(&a), ["zh/ticket_not_found"]);
    let a = call.finish_prompt();
    assert_eq!(heard(&a), ["zh/enter_ticket"]);
}

#[test]
fn a_status_without_a_prompt_reads_the_number_only() {
    let (mut call, _) = at_lookup_12319("20261123000042#");
    let a = call.send(Event::TicketStatus {
        found: true,
        status: Some("../../etc/passwd".into()),
    });
    let h = heard(&a);
    assert_eq!(h.len(), 15);
    assert!(h.iter().all(|p| !p.contains("status")), "{h:?}");
}

#[test]
fn lookup_without_an_answer_times_out_as_not_found() {
    let (mut call, a) = at_lookup_12319("20261123000042#");
    assert!(matches!(a.last(), Some(Action::StartTimer { .. })));
    let a = call.wait_for_timer();
    assert_eq!(heard(&a), ["zh/ticket_not_found"]);
    assert_eq!(
        call.send(Event::TicketStatus {
            found: true,
            status: Some("closed".into())
        }),
        [],
        "too late"
    );
}

#[test]
fn caller_hanging_up_during_lookup_ends_the_session() {
    let (mut call, _) = at_lookup_12319("20261123000042#");
    let a = call.send(Event::CallerHungUp);
    assert!(matches!(a[..], [Action::CancelTimer(_)]));
    assert_eq!(
        call.send(Event::TicketStatus {
            found: true,
            status: None
        }),
        []
    );
}

#[test]
fn canonical_numbers() {
    assert_eq!(
        canonical_number("12319", "20261123000042").as_deref(),
        Some("12319-20261123-000042")
    );
    assert_eq!(
        canonical_number("12345", "202611231234567").as_deref(),
        Some("12345-20261123-1234567")
    );
    assert_eq!(canonical_number("12319", "2026112300004"), None);
    assert_eq!(canonical_number("12319", "2026112300004x"), None);
}

#[test]
fn a_malformed_number_is_not_looked_up() {
    let text = r#"
hotline = "1"
start = "enter"
[nodes.enter]
kind = "collect"
prompts = ["enter"]
var = "t"
min_digits = 4
max_digits = 20
fallback = "bye"
next = "lookup"
[nodes.lookup]
kind = "lookup"
var = "t"
prefix = "12319"
not_found_prompts = ["nf"]
found = "bye"
not_found = "bye"
[nodes.bye]
kind = "hangup"
"#;
    let mut call = Call::new(&flow(text), open());
    call.finish_prompt();
    let a = call.press("1234#");
    assert_eq!(heard(&a), ["zh/nf"]);
    assert!(!a.iter().any(|a| matches!(a, Action::LookUpTicket { .. })));
}

// ---- validation ----------------------------------------------------------------------------

#[test]
fn validation_names_file_node_and_problem() {
    let e = flow_error(&MENU.replace(r#"fallback = "fallback""#, r#"fallback = "nowhere""#));
    assert_eq!(e.node.as_deref(), Some("menu"));
    assert_eq!(
        e.problem,
        Problem::UnknownTarget {
            field: "fallback".into(),
            target: "nowhere".into()
        }
    );
    assert_eq!(
        e.to_string(),
        "config/ivr/bad.toml: node `menu`: `fallback` goes to `nowhere`, which is not a node in this file"
    );
}

#[test]
fn unknown_option_target() {
    let e = flow_error(&MENU.replace(r#""1" = "one""#, r#""1" = "oen""#));
    assert_eq!(
        e.problem,
        Problem::UnknownTarget {
            field: "options.\"1\"".into(),
            target: "oen".into()
        }
    );
}

#[test]
fn unreachable_node() {
    let e = flow_error(&format!("{MENU}\n[nodes.orphan]\nkind = \"hangup\"\n"));
    assert_eq!(
        (e.node.as_deref(), &e.problem),
        (Some("orphan"), &Problem::Unreachable)
    );
    assert!(e.to_string().contains("node `orphan`: unreachable"), "{e}");
}

#[test]
fn loop_without_input() {
    let text = r#"
hotline = "1"
start = "a"
[nodes.a]
kind = "play"
prompts = ["a"]
next = "b"
[nodes.b]
kind = "hours"
open = "a"
closed = "c"
[nodes.c]
kind = "hangup"
"#;
    let e = flow_error(text);
    assert_eq!(
        e.problem,
        Problem::LoopWithoutInput(vec!["a".into(), "b".into(), "a".into()])
    );
    assert!(
        e.to_string()
            .contains("loop without caller input: a → b → a"),
        "{e}"
    );
}

#[test]
fn menu_falling_back_to_itself_is_a_loop_without_input() {
    let e = flow_error(
        &MENU
            .replace(r#"fallback = "fallback""#, r#"fallback = "menu""#)
            .replace("[nodes.fallback]", "[nodes.fallback_unused]"),
    );
    // The renamed node is now unreachable or the loop is found first; either names a node.
    assert!(
        matches!(
            e.problem,
            Problem::LoopWithoutInput(_) | Problem::Unreachable
        ),
        "{e}"
    );
    let e = flow_error(
        r#"
hotline = "1"
start = "m"
[nodes.m]
kind = "menu"
prompts = ["m"]
options = { "1" = "x" }
fallback = "m"
[nodes.x]
kind = "hangup"
"#,
    );
    assert_eq!(
        e.problem,
        Problem::LoopWithoutInput(vec!["m".into(), "m".into()])
    );
}

#[test]
fn a_loop_through_a_menu_key_is_fine() {
    flow(
        &MENU
            .replace(r#""1" = "one""#, r#""1" = "loop""#)
            .replace("[nodes.one]", "[nodes.loop]")
            .replace(r#"next = "bye""#, r#"next = "menu""#),
    );
}

#[test]
fn missing_or_empty_prompt_list() {
    let e = flow_error(&MENU.replace(r#"prompts = ["one_a", "one_b"]"#, ""));
    assert_eq!(e.node.as_deref(), Some("one"));
    assert!(
        matches!(&e.problem, Problem::Definition(m) if m.contains("prompts")),
        "{e}"
    );
    let e = flow_error(&MENU.replace(r#"prompts = ["one_a", "one_b"]"#, "prompts = []"));
    assert_eq!(e.problem, Problem::MissingPrompts("prompts".into()));
}

#[test]
fn bad_digit_keys() {
    for bad in [r#""12""#, r#""x""#, r#""""#] {
        let e = flow_error(&MENU.replace(r#""1" = "one""#, &format!(r#"{bad} = "one""#)));
        assert!(matches!(e.problem, Problem::BadDigitKey(_)), "{bad}: {e}");
        assert_eq!(e.node.as_deref(), Some("menu"));
    }
    let e = flow_error(&COLLECT.replace("max_digits = 5", "max_digits = 5\nterminator = \"5\""));
    assert!(matches!(e.problem, Problem::BadDigitKey(_)), "{e}");
}

#[test]
fn min_digits_above_max() {
    let e = flow_error(&COLLECT.replace("min_digits = 3", "min_digits = 6"));
    assert_eq!(
        (e.node.as_deref(), e.problem),
        (Some("enter"), Problem::DigitRange { min: 6, max: 5 })
    );
    let e = flow_error(&COLLECT.replace("min_digits = 3", "min_digits = 0"));
    assert_eq!(e.problem, Problem::DigitRange { min: 0, max: 5 });
}

#[test]
fn other_definition_errors() {
    let cases: Vec<(String, &str)> = vec![
        ("not toml [".into(), "not a flow definition"),
        ("hotline = \"1\"\nstart = \"a\"\n".into(), "no nodes"),
        (
            MENU.replace(r#"start = "menu""#, r#"start = "nope""#),
            "`start = \"nope\"` names no node",
        ),
        (
            MENU.replace(r#"kind = "play""#, r#"kind = "dance""#),
            "node `one`: unknown variant `dance`",
        ),
        (
            MENU.replace("timeout_ms = 3000", "timeout_ms = 3000\ntimout = 1"),
            "node `menu`: unknown field `timout`",
        ),
        (
            MENU.replace("timeout_ms = 3000", "timeout_ms = 0"),
            "`timeout_ms` = 0 is out of range",
        ),
        (
            MENU.replace("+8602112345678", "call-me"),
            "transfer number `call-me`",
        ),
        (
            MENU.replace(r#"["one_a", "one_b"]"#, r#"["one a"]"#),
            "prompt name `one a`",
        ),
        (
            MENU.replace(r#"["one_a", "one_b"]"#, r#"["../x"]"#),
            "prompt name `../x`",
        ),
        (
            MENU.replace("max_retries = 2", "max_retries = 99"),
            "`max_retries` = 99",
        ),
        (
            FLOW_12319.replace(
                r#"var = "ticket"
prefix"#,
                r#"var = "tikcet"
prefix"#,
            ),
            "node `lookup`: variable `tikcet` is read here but no collect node stores it",
        ),
        (
            FLOW_12319.replace(
                r#"queue = "12319-intake"
voicemail = "voicemail"
callback = "callback_noted"
fallback = "voicemail"

[nodes.agent]"#,
                r#"queue = "12319 intake"
voicemail = "voicemail"
callback = "callback_noted"
fallback = "voicemail"

[nodes.agent]"#,
            ),
            "node `report`: `queue` = `12319 intake`",
        ),
    ];
    for (text, expected) in cases {
        let e = flow_error(&text);
        let msg = e.to_string();
        assert!(msg.starts_with("config/ivr/bad.toml: "), "{msg}");
        assert!(msg.contains(expected), "expected `{expected}` in `{msg}`");
    }
}

// ---- never panics, always bounded ----------------------------------------------------------

fn any_event() -> impl Strategy<Value = Event> {
    prop_oneof![
        4 => prop::sample::select(vec!['0', '1', '2', '3', '4', '5', '9', '*', '#', 'A', 'x', '中']).prop_map(Event::Digit),
        4 => Just(Event::PromptFinished),
        3 => (0u64..8).prop_map(|i| Event::TimerFired(TimerId(i))),
        1 => (0u64..200_000).prop_map(|duration_ms| Event::RecordingFinished { duration_ms }),
        1 => (any::<bool>(), prop::option::of(prop::sample::select(vec!["closed", "dispatched", "", "weird/../x"])))
            .prop_map(|(found, s)| Event::TicketStatus { found, status: s.map(str::to_owned) }),
        1 => prop::sample::select(vec![
            QueueOutcome::Answered,
            QueueOutcome::Voicemail,
            QueueOutcome::CallbackRequested,
            QueueOutcome::OverflowToNode("consult".into()),
            QueueOutcome::OverflowToNode("x".into()),
        ]).prop_map(Event::QueueOutcome),
        1 => Just(Event::CallerHungUp),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2_000))]

    #[test]
    fn random_events_never_panic_and_stay_bounded(
        which in 0usize..2,
        is_open in any::<bool>(),
        events in prop::collection::vec((any::<i64>(), any_event()), 0..120),
    ) {
        let f = if which == 0 { flow_12319() } else { flow_12345() };
        let cal: Arc<dyn Calendar> = if is_open { open() } else { closed() };
        let mut s = Session::new(&f, cal);
        let start = s.start(Timestamp::MAX);
        prop_assert!(start.len() <= 4);
        let mut pending: Option<TimerId> = None;
        for (secs, event) in events {
            let now = Timestamp::from_second(secs.rem_euclid(253_402_207_200)).unwrap_or(Timestamp::UNIX_EPOCH);
            // Fire the real pending timer half the time, so deep paths are reached too.
            let event = match (event, pending) {
                (Event::TimerFired(TimerId(i)), Some(id)) if i % 2 == 0 => Event::TimerFired(id),
                (e, _) => e,
            };
            let actions = s.handle(now, event);
            prop_assert!(actions.len() <= 8, "{actions:?}");
            for a in &actions {
                match a {
                    Action::StartTimer { id, .. } => pending = Some(*id),
                    Action::CancelTimer(id) if pending == Some(*id) => pending = None,
                    Action::Play(p) => prop_assert!(!p.is_empty() && p.len() <= 32),
                    _ => {}
                }
            }
            if s.is_finished() {
                prop_assert_eq!(s.handle(now, Event::Digit('1')), vec![]);
            }
        }
        // Hanging up always ends the call in a few more actions, whatever state it is in.
        let a = s.handle(t0(), Event::CallerHungUp);
        prop_assert!(a.len() <= 2);
        let b = s.handle(t0(), Event::RecordingFinished { duration_ms: 1 });
        prop_assert!(b.len() <= 1);
        prop_assert!(s.is_finished());
        prop_assert_eq!(s.handle(t0(), Event::PromptFinished), vec![]);
    }

    #[test]
    fn random_flow_text_never_panics(text in "\\PC{0,400}") {
        let _ = Flow::from_toml("fuzz.toml", &text);
    }

    #[test]
    fn mutated_example_flows_never_panic(cut in 0usize..4000, junk in "[a-z_\"=\\[\\]\\n ]{0,12}") {
        let mut text = FLOW_12319.to_owned();
        let cut = cut.min(text.len());
        if text.is_char_boundary(cut) {
            text.insert_str(cut, &junk);
        }
        if let Ok(f) = Flow::from_toml("fuzz.toml", &text) {
            let mut s = Session::new(&f, open());
            let _ = s.start(t0());
            for e in [Event::PromptFinished, Event::Digit('2'), Event::PromptFinished, Event::Digit('1')] {
                let _ = s.handle(t0(), e);
            }
        }
    }
}
