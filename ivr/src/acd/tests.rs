//! Sans-IO tests of the ACD with virtual time: no sleeps, no sockets.

use std::time::Duration;

use jiff::Timestamp;

use super::*;

const EPOCH: i64 = 1_763_900_000;

fn t(secs: i64) -> Timestamp {
    Timestamp::from_second(EPOCH + secs).unwrap()
}

fn queue(name: &str, strategy: Strategy) -> QueueConfig {
    QueueConfig {
        strategy,
        ring_timeout_secs: 10,
        max_wait_secs: 120,
        max_length: 10,
        wrap_up_secs: 0,
        ..QueueConfig::new(name)
    }
}

/// An ACD driven in virtual time, with helpers named after what callers and agents do.
struct Center {
    acd: Acd,
    now: Timestamp,
}

impl Center {
    fn new(queues: Vec<QueueConfig>) -> Self {
        Self::with(AcdConfig {
            queues,
            ..AcdConfig::default()
        })
    }
    fn with(config: AcdConfig) -> Self {
        Center {
            acd: Acd::new(config).unwrap(),
            now: t(0),
        }
    }
    fn at(&mut self, secs: i64) -> &mut Self {
        self.now = t(secs);
        self
    }
    fn ev(&mut self, event: AcdEvent) -> Vec<AcdAction> {
        let out = self.acd.handle(self.now, event);
        self.acd.check_consistency();
        out
    }
    /// Moves the clock to `secs`, ticking at every timeout on the way; returns all actions.
    fn run_until(&mut self, secs: i64) -> Vec<AcdAction> {
        let end = t(secs);
        let mut out = Vec::new();
        while let Some(next) = self.acd.poll_timeout().filter(|n| *n <= end) {
            self.now = next;
            out.extend(self.ev(AcdEvent::Tick));
        }
        self.now = end;
        out.extend(self.ev(AcdEvent::Tick));
        out
    }
    fn login(&mut self, agent: &str, skills: &[&str], languages: &[&str]) -> Vec<AcdAction> {
        self.ev(AcdEvent::AgentLogin {
            agent: agent.into(),
            skills: skills.iter().map(|s| s.to_string()).collect(),
            languages: languages.iter().map(|s| s.to_string()).collect(),
        })
    }
    fn call(&mut self, call: &str, queue: &str) -> Vec<AcdAction> {
        self.call_from(call, queue, None, Some("13800000000"))
    }
    fn call_from(
        &mut self,
        call: &str,
        queue: &str,
        language: Option<&str>,
        number: Option<&str>,
    ) -> Vec<AcdAction> {
        self.ev(AcdEvent::CallQueued {
            call: call.into(),
            queue: queue.into(),
            language: language.map(str::to_owned),
            caller_number: number.map(str::to_owned),
        })
    }
    fn answer(&mut self, agent: &str, call: &str) -> Vec<AcdAction> {
        self.ev(AcdEvent::AgentAnswered {
            agent: agent.into(),
            call: call.into(),
        })
    }
    fn agent_hangs_up(&mut self, agent: &str, call: &str) -> Vec<AcdAction> {
        self.ev(AcdEvent::AgentHungUp {
            agent: agent.into(),
            call: call.into(),
        })
    }
    fn caller_hangs_up(&mut self, call: &str) -> Vec<AcdAction> {
        self.ev(AcdEvent::CallerHungUp { call: call.into() })
    }
    fn state(&self, agent: &str) -> AgentState {
        self.acd.agent_stats(&agent.into()).unwrap().state
    }
    fn stats(&self, queue: &str) -> QueueStats {
        self.acd.stats(queue, self.now).unwrap()
    }
}

fn rings(actions: &[AcdAction]) -> Vec<(String, String)> {
    actions
        .iter()
        .filter_map(|a| match a {
            AcdAction::RingAgent { agent, call } => Some((agent.0.clone(), call.0.clone())),
            _ => None,
        })
        .collect()
}
fn cancels(actions: &[AcdAction]) -> Vec<(String, String)> {
    actions
        .iter()
        .filter_map(|a| match a {
            AcdAction::CancelRing { agent, call } => Some((agent.0.clone(), call.0.clone())),
            _ => None,
        })
        .collect()
}
fn bridges(actions: &[AcdAction]) -> Vec<(String, String)> {
    actions
        .iter()
        .filter_map(|a| match a {
            AcdAction::Bridge { call, agent } => Some((agent.0.clone(), call.0.clone())),
            _ => None,
        })
        .collect()
}
fn overflows(actions: &[AcdAction]) -> Vec<(String, OverflowTarget)> {
    actions
        .iter()
        .filter_map(|a| match a {
            AcdAction::Overflow { call, to } => Some((call.0.clone(), to.clone())),
            _ => None,
        })
        .collect()
}
fn pair(agent: &str, call: &str) -> (String, String) {
    (agent.to_owned(), call.to_owned())
}

// ----- configuration -----

#[test]
fn example_configuration_parses_with_defaults() {
    let config = AcdConfig::from_toml(
        r#"
        service_level_secs = 15

        [[queue]]
        name = "12319-intake"
        skills = ["intake"]
        languages = ["zh", "en"]
        strategy = "round_robin"
        ring_timeout_secs = 12
        max_wait_secs = 90
        max_length = 20
        overflow = { queue = "12319-general" }
        announce_every_secs = 30
        music_on_hold = "moh-12319"
        wrap_up_secs = 15

        [[queue]]
        name = "12319-general"
        strategy = "ring_all"
        overflow = "callback"

        [[queue]]
        name = "12345-intake"
        "#,
    )
    .unwrap();
    assert_eq!(config.service_level_secs, 15);
    assert_eq!(config.max_missed_offers, 2);
    let intake = &config.queues[0];
    assert_eq!(intake.strategy, Strategy::RoundRobin);
    assert_eq!(
        intake.overflow,
        OverflowTarget::Queue("12319-general".into())
    );
    assert_eq!(intake.announce_every_secs, Some(30));
    assert_eq!(config.queues[1].overflow, OverflowTarget::Callback);
    assert_eq!(config.queues[1].strategy, Strategy::RingAll);
    let defaults = &config.queues[2];
    assert_eq!(defaults.strategy, Strategy::LongestIdle);
    assert_eq!(defaults.overflow, OverflowTarget::Voicemail);
    assert_eq!(
        (
            defaults.ring_timeout_secs,
            defaults.max_wait_secs,
            defaults.wrap_up_secs
        ),
        (15, 300, 10)
    );
    assert_eq!(AcdConfig::from_toml("").unwrap().service_level_secs, 20);
}

#[test]
fn configuration_errors_name_the_queue_and_problem() {
    let err = |text: &str| AcdConfig::from_toml(text).unwrap_err();

    let e = err("[[queue]]\nname = \"a\"\noverflow = { queue = \"nowhere\" }");
    assert_eq!(
        e,
        ConfigError::UnknownOverflowQueue {
            queue: "a".into(),
            target: "nowhere".into()
        }
    );
    assert!(
        e.to_string()
            .contains("`a` overflows to unknown queue `nowhere`"),
        "{e}"
    );

    let e = err(r#"
        [[queue]]
        name = "a"
        overflow = { queue = "b" }
        [[queue]]
        name = "b"
        overflow = { queue = "c" }
        [[queue]]
        name = "c"
        overflow = { queue = "a" }
    "#);
    assert_eq!(
        e,
        ConfigError::OverflowCycle {
            cycle: vec!["a".into(), "b".into(), "c".into(), "a".into()]
        }
    );
    assert!(e.to_string().contains("a → b → c → a"), "{e}");

    let e = err("[[queue]]\nname = \"self\"\noverflow = { queue = \"self\" }");
    assert!(matches!(e, ConfigError::OverflowCycle { .. }), "{e}");

    let e = err("[[queue]]\nname = \"a\"\nring_timeout_secs = 0");
    assert_eq!(
        e,
        ConfigError::Zero {
            queue: "a".into(),
            field: "ring_timeout_secs"
        }
    );
    assert_eq!(
        e.to_string(),
        "queue `a`: `ring_timeout_secs` must be greater than zero"
    );
    for field in ["max_wait_secs", "max_length", "announce_every_secs"] {
        let e = err(&format!("[[queue]]\nname = \"q\"\n{field} = 0"));
        assert_eq!(
            e,
            ConfigError::Zero {
                queue: "q".into(),
                field
            }
        );
    }
    assert_eq!(
        err("[[queue]]\nname = \"a\"\n[[queue]]\nname = \"a\""),
        ConfigError::DuplicateQueue { queue: "a".into() }
    );
    assert_eq!(
        err("[[queue]]\nname = \" \""),
        ConfigError::EmptyName { index: 1 }
    );
    assert_eq!(err("service_level_secs = 0"), ConfigError::ZeroServiceLevel);
    assert!(matches!(
        err("[[queue]]\nname = \"a\"\nstrategy = \"random\""),
        ConfigError::Toml(_)
    ));
    assert!(matches!(
        err("[[queue]]\nname = \"a\"\nring_timeout = 5"),
        ConfigError::Toml(_)
    ));
    // Acd::new validates too.
    let bad = AcdConfig {
        service_level_secs: 0,
        ..AcdConfig::default()
    };
    assert!(Acd::new(bad).is_err());
}

// ----- strategies -----

#[test]
fn longest_idle_agent_gets_the_call() {
    let mut c = Center::new(vec![queue("q", Strategy::LongestIdle)]);
    c.at(0).login("carol", &[], &[]);
    c.at(5).login("alice", &[], &[]);
    c.at(9).login("bob", &[], &[]);
    assert_eq!(rings(&c.at(10).call("c1", "q")), [pair("carol", "c1")]);
    assert_eq!(bridges(&c.answer("carol", "c1")), [pair("carol", "c1")]);
    assert_eq!(rings(&c.call("c2", "q")), [pair("alice", "c2")]);
    c.answer("alice", "c2");
    // Carol's call ends at 20 (no wrap-up): she is now the most recently idle.
    c.at(20).agent_hangs_up("carol", "c1");
    assert_eq!(rings(&c.at(21).call("c3", "q")), [pair("bob", "c3")]);
    c.answer("bob", "c3");
    assert_eq!(rings(&c.call("c4", "q")), [pair("carol", "c4")]);
}

#[test]
fn round_robin_takes_turns_in_agent_order() {
    let mut c = Center::new(vec![queue("q", Strategy::RoundRobin)]);
    for a in ["a1", "a2", "a3"] {
        c.login(a, &[], &[]);
    }
    let mut order = Vec::new();
    for i in 0..5 {
        let call = format!("c{i}");
        let r = rings(&c.at(i).call(&call, "q"));
        assert_eq!(r.len(), 1);
        order.push(r[0].0.clone());
        c.answer(&r[0].0, &call);
        c.agent_hangs_up(&r[0].0, &call);
    }
    assert_eq!(order, ["a1", "a2", "a3", "a1", "a2"]);
}

#[test]
fn ring_all_first_to_answer_wins_and_the_others_are_cancelled() {
    let mut c = Center::new(vec![queue("q", Strategy::RingAll)]);
    for a in ["a1", "a2", "a3"] {
        c.login(a, &[], &[]);
    }
    let r = rings(&c.call("c1", "q"));
    assert_eq!(r, [pair("a1", "c1"), pair("a2", "c1"), pair("a3", "c1")]);
    let out = c.at(3).answer("a2", "c1");
    assert_eq!(bridges(&out), [pair("a2", "c1")]);
    assert_eq!(cancels(&out), [pair("a1", "c1"), pair("a3", "c1")]);
    assert_eq!(c.state("a1"), AgentState::Available);
    assert_eq!(c.state("a2"), AgentState::Busy);
    // A second answer arriving late is torn down, not bridged.
    let late = c.answer("a3", "c1");
    assert!(bridges(&late).is_empty());
    assert_eq!(cancels(&late), [pair("a3", "c1")]);
    // Losing a ring-all race is not a missed offer.
    assert_eq!(c.acd.agent_stats(&"a1".into()).unwrap().missed, 0);
}

#[test]
fn ring_all_timeout_cancels_everyone_and_rings_again() {
    let mut c = Center::new(vec![queue("q", Strategy::RingAll)]);
    c.login("a1", &[], &[]);
    c.login("a2", &[], &[]);
    c.call("c1", "q");
    let out = c.run_until(10);
    assert_eq!(cancels(&out), [pair("a1", "c1"), pair("a2", "c1")]);
    // Both missed once (below the limit of 2): a new round starts at once.
    assert_eq!(rings(&out), [pair("a1", "c1"), pair("a2", "c1")]);
}

#[test]
fn skills_and_language_choose_the_agent() {
    let mut q = queue("q", Strategy::LongestIdle);
    q.skills = vec!["intake".into()];
    q.languages = vec!["zh".into(), "en".into()];
    let mut c = Center::new(vec![q]);
    c.at(0).login("no-skill", &[], &["zh", "en"]);
    c.at(0).login("cantonese-only", &["intake"], &["yue"]);
    c.at(1).login("zh-only", &["intake"], &["zh"]);
    c.at(2)
        .login("bilingual", &["intake", "dispatch"], &["zh", "en"]);
    assert_eq!(
        rings(&c.at(3).call_from("en-call", "q", Some("en"), None)),
        [pair("bilingual", "en-call")]
    );
    assert_eq!(
        rings(&c.call_from("zh-call", "q", Some("zh"), None)),
        [pair("zh-only", "zh-call")]
    );
    // Nobody qualified left: the caller waits.
    assert!(rings(&c.call_from("another", "q", Some("zh"), None)).is_empty());
    // An agent speaking none of the queue's languages never qualifies.
    assert!(rings(&c.call_from("no-language", "q", None, None)).is_empty());
    assert_eq!(
        c.stats("q").waiting,
        4,
        "two ringing, two with nobody qualified"
    );
}

// ----- ring timeout and missed offers -----

#[test]
fn ring_timeout_offers_the_call_to_the_next_agent() {
    let mut c = Center::new(vec![queue("q", Strategy::LongestIdle)]);
    c.at(0).login("a1", &[], &[]);
    c.at(1).login("a2", &[], &[]);
    assert_eq!(rings(&c.at(2).call("c1", "q")), [pair("a1", "c1")]);
    assert_eq!(c.acd.poll_timeout(), Some(t(12)));
    assert!(rings(&c.run_until(11)).is_empty());
    let out = c.run_until(12);
    assert_eq!(cancels(&out), [pair("a1", "c1")]);
    assert_eq!(rings(&out), [pair("a2", "c1")]);
    assert_eq!(c.state("a1"), AgentState::Available);
    let a1 = c.acd.agent_stats(&"a1".into()).unwrap();
    assert_eq!((a1.offered, a1.missed, a1.missed_in_a_row), (1, 1, 1));
    // The gateway reporting no answer (SIP 480) is the same thing; the call comes back to a1.
    let out = c.at(15).ev(AcdEvent::AgentNoAnswer {
        agent: "a2".into(),
        call: "c1".into(),
    });
    assert_eq!(rings(&out), [pair("a1", "c1")]);
    // a1 misses a second time in a row: put on break (not ready), a2 is tried again.
    let out = c.run_until(25);
    assert_eq!(c.state("a1"), AgentState::Break);
    assert_eq!(rings(&out), [pair("a2", "c1")]);
    assert_eq!(bridges(&c.at(26).answer("a2", "c1")), [pair("a2", "c1")]);
    assert_eq!(c.acd.agent_stats(&"a2".into()).unwrap().missed_in_a_row, 0);
    // Ready again resets the count.
    c.ev(AcdEvent::AgentReady { agent: "a1".into() });
    assert_eq!(c.acd.agent_stats(&"a1".into()).unwrap().missed_in_a_row, 0);
}

#[test]
fn rejection_goes_to_the_next_agent_and_counts_as_missed() {
    let mut c = Center::new(vec![queue("q", Strategy::RoundRobin)]);
    c.login("a1", &[], &[]);
    c.login("a2", &[], &[]);
    c.call("c1", "q");
    let out = c.ev(AcdEvent::AgentRejected {
        agent: "a1".into(),
        call: "c1".into(),
    });
    assert_eq!(rings(&out), [pair("a2", "c1")]);
    assert_eq!(c.acd.agent_stats(&"a1".into()).unwrap().missed, 1);
    // A rejection for an offer that is not ringing changes nothing.
    let out = c.ev(AcdEvent::AgentRejected {
        agent: "a1".into(),
        call: "c1".into(),
    });
    assert!(out.is_empty(), "{out:?}");
}

#[test]
fn max_missed_offers_zero_never_forces_a_break() {
    let mut c = Center::with(AcdConfig {
        max_missed_offers: 0,
        queues: vec![queue("q", Strategy::LongestIdle)],
        ..AcdConfig::default()
    });
    c.login("a1", &[], &[]);
    c.call("c1", "q");
    c.run_until(100);
    let a1 = c.acd.agent_stats(&"a1".into()).unwrap();
    assert_eq!(a1.state, AgentState::Ringing);
    assert_eq!(a1.missed, 10);
}

// ----- overflow -----

#[test]
fn max_wait_overflows_to_another_queue_then_voicemail() {
    let mut first = queue("first", Strategy::LongestIdle);
    first.max_wait_secs = 60;
    first.overflow = OverflowTarget::Queue("second".into());
    let mut second = queue("second", Strategy::LongestIdle);
    second.max_wait_secs = 30;
    let mut c = Center::new(vec![first, second]);
    c.call("c1", "first");
    assert_eq!(c.acd.poll_timeout(), Some(t(60)));
    let out = c.run_until(60);
    assert_eq!(
        overflows(&out),
        [("c1".to_owned(), OverflowTarget::Queue("second".into()))]
    );
    assert_eq!(c.acd.waiting_calls("second"), [CallId::from("c1")]);
    assert_eq!(
        (c.stats("first").overflowed, c.stats("second").offered),
        (1, 1)
    );
    // Max wait restarts in the second queue.
    assert!(overflows(&c.run_until(89)).is_empty());
    assert_eq!(
        overflows(&c.run_until(90)),
        [("c1".to_owned(), OverflowTarget::Voicemail)]
    );
    assert_eq!(c.acd.poll_timeout(), None);
}

#[test]
fn max_wait_cancels_a_ringing_offer_before_overflowing() {
    let mut q = queue("q", Strategy::LongestIdle);
    q.max_wait_secs = 5;
    let mut c = Center::new(vec![q]);
    c.login("a1", &[], &[]);
    c.call("c1", "q");
    let out = c.run_until(5);
    assert_eq!(cancels(&out), [pair("a1", "c1")]);
    assert_eq!(
        overflows(&out),
        [("c1".to_owned(), OverflowTarget::Voicemail)]
    );
    assert_eq!(c.state("a1"), AgentState::Available);
    assert!(bridges(&c.answer("a1", "c1")).is_empty());
}

#[test]
fn max_wait_overflow_to_callback_creates_a_callback_task() {
    let mut q = queue("12319-intake", Strategy::LongestIdle);
    q.overflow = OverflowTarget::Callback;
    let mut c = Center::new(vec![q]);
    c.at(0)
        .call_from("c1", "12319-intake", Some("zh"), Some("13912345678"));
    c.at(0).call_from("withheld", "12319-intake", None, None);
    let out = c.run_until(120);
    assert_eq!(
        overflows(&out),
        [
            ("c1".to_owned(), OverflowTarget::Callback),
            ("withheld".to_owned(), OverflowTarget::Voicemail)
        ]
    );
    let tasks: Vec<&CallbackTask> = out
        .iter()
        .filter_map(|a| match a {
            AcdAction::CreateCallbackTask(task) => Some(task),
            _ => None,
        })
        .collect();
    assert_eq!(
        tasks,
        [&CallbackTask {
            call: "c1".into(),
            caller_number: "13912345678".into(),
            queue: "12319-intake".into(),
            language: Some("zh".into()),
            requested_at: t(120),
        }]
    );
    assert!(CallbackOutcome::NoAnswer.should_retry());
    assert!(!CallbackOutcome::WrongNumber.should_retry());
}

#[test]
fn max_length_overflows_new_callers_at_once() {
    let mut q = queue("q", Strategy::LongestIdle);
    q.max_length = 2;
    q.overflow = OverflowTarget::Callback;
    let mut c = Center::new(vec![q]);
    assert!(overflows(&c.call("c1", "q")).is_empty());
    assert!(overflows(&c.call("c2", "q")).is_empty());
    let out = c.call("c3", "q");
    assert_eq!(
        overflows(&out),
        [("c3".to_owned(), OverflowTarget::Callback)]
    );
    assert!(matches!(out.last(), Some(AcdAction::CreateCallbackTask(task)) if task.call.0 == "c3"));
    let s = c.stats("q");
    assert_eq!((s.offered, s.waiting, s.overflowed), (3, 2, 1));
}

#[test]
fn full_overflow_queue_passes_the_caller_on() {
    let mut a = queue("a", Strategy::LongestIdle);
    a.max_length = 1;
    a.overflow = OverflowTarget::Queue("b".into());
    let mut b = queue("b", Strategy::LongestIdle);
    b.max_length = 1;
    let mut c = Center::new(vec![a, b]);
    c.call("c1", "a");
    c.call("c2", "a");
    let out = c.call("c3", "a");
    assert_eq!(
        overflows(&out),
        [
            ("c3".to_owned(), OverflowTarget::Queue("b".into())),
            ("c3".to_owned(), OverflowTarget::Voicemail)
        ]
    );
}

#[test]
fn unknown_queue_sends_the_caller_to_voicemail() {
    let mut c = Center::new(vec![queue("q", Strategy::LongestIdle)]);
    assert_eq!(
        overflows(&c.call("c1", "nope")),
        [("c1".to_owned(), OverflowTarget::Voicemail)]
    );
}

// ----- abandoned calls -----

#[test]
fn caller_hanging_up_while_waiting_is_abandoned_and_the_ring_is_cancelled() {
    let mut c = Center::new(vec![queue("q", Strategy::LongestIdle)]);
    c.login("a1", &[], &[]);
    c.call("c1", "q");
    c.call("c2", "q");
    let out = c.at(4).caller_hangs_up("c1");
    assert_eq!(cancels(&out), [pair("a1", "c1")]);
    // a1 is free again and gets the next caller; the withdrawal is not a miss.
    assert_eq!(rings(&out), [pair("a1", "c2")]);
    assert_eq!(c.acd.agent_stats(&"a1".into()).unwrap().missed, 0);
    c.caller_hangs_up("c2");
    let s = c.stats("q");
    assert_eq!(
        (s.offered, s.abandoned, s.waiting, s.answered),
        (2, 2, 0, 0)
    );
    // Hanging up twice or for an unknown call does nothing.
    assert!(c.caller_hangs_up("c2").is_empty());
    assert!(c.caller_hangs_up("ghost").is_empty());
}

#[test]
fn answer_after_the_caller_hung_up_is_not_bridged() {
    let mut c = Center::new(vec![queue("q", Strategy::LongestIdle)]);
    c.login("a1", &[], &[]);
    c.call("c1", "q");
    c.at(3).caller_hangs_up("c1");
    let out = c.at(3).answer("a1", "c1");
    assert!(bridges(&out).is_empty());
    assert_eq!(cancels(&out), [pair("a1", "c1")]);
    assert_eq!(c.state("a1"), AgentState::Available);
    assert_eq!(c.stats("q").answered, 0);
}

// ----- agent state changes racing offers -----

#[test]
fn break_while_ringing_withdraws_the_offer_and_rings_the_next_agent() {
    let mut c = Center::new(vec![queue("q", Strategy::LongestIdle)]);
    c.at(0).login("a1", &[], &[]);
    c.at(1).login("a2", &[], &[]);
    c.at(2).call("c1", "q");
    let out = c.at(3).ev(AcdEvent::AgentBreak { agent: "a1".into() });
    assert_eq!(cancels(&out), [pair("a1", "c1")]);
    assert_eq!(rings(&out), [pair("a2", "c1")]);
    assert_eq!(c.state("a1"), AgentState::Break);
    // The answer that crossed the break on the wire is refused.
    assert!(bridges(&c.answer("a1", "c1")).is_empty());
    assert_eq!(bridges(&c.answer("a2", "c1")), [pair("a2", "c1")]);
    assert_eq!(c.acd.agent_stats(&"a1".into()).unwrap().missed, 0);
}

#[test]
fn logout_while_ringing_withdraws_the_offer_and_the_caller_keeps_waiting() {
    let mut c = Center::new(vec![queue("q", Strategy::LongestIdle)]);
    c.login("a1", &[], &[]);
    c.call("c1", "q");
    let out = c.at(1).ev(AcdEvent::AgentLogout { agent: "a1".into() });
    assert_eq!(cancels(&out), [pair("a1", "c1")]);
    assert!(rings(&out).is_empty());
    assert_eq!(c.state("a1"), AgentState::Offline);
    assert_eq!(c.stats("q").waiting, 1);
    // Logging back in offers the call again.
    assert_eq!(rings(&c.at(5).login("a1", &[], &[])), [pair("a1", "c1")]);
}

#[test]
fn break_or_logout_during_a_call_takes_effect_when_it_ends() {
    let mut q = queue("q", Strategy::LongestIdle);
    q.wrap_up_secs = 30;
    let mut c = Center::new(vec![q]);
    c.login("a1", &[], &[]);
    c.login("a2", &[], &[]);
    c.call("c1", "q");
    c.answer("a1", "c1");
    c.call("c2", "q");
    c.answer("a2", "c2");
    c.ev(AcdEvent::AgentBreak { agent: "a1".into() });
    c.ev(AcdEvent::AgentLogout { agent: "a2".into() });
    assert_eq!(
        (c.state("a1"), c.state("a2")),
        (AgentState::Busy, AgentState::Busy)
    );
    c.at(60).agent_hangs_up("a1", "c1");
    c.at(60).caller_hangs_up("c2");
    assert_eq!(
        (c.state("a1"), c.state("a2")),
        (AgentState::Break, AgentState::Offline)
    );
}

// ----- wrap-up -----

#[test]
fn wrap_up_is_respected_before_the_next_offer() {
    let mut q = queue("q", Strategy::LongestIdle);
    q.wrap_up_secs = 30;
    let mut c = Center::new(vec![q]);
    c.login("a1", &[], &[]);
    c.at(0).call("c1", "q");
    c.at(5).answer("a1", "c1");
    c.at(65).agent_hangs_up("a1", "c1");
    assert_eq!(c.state("a1"), AgentState::WrapUp);
    assert!(rings(&c.at(70).call("c2", "q")).is_empty());
    assert!(rings(&c.run_until(94)).is_empty());
    assert_eq!(rings(&c.run_until(95)), [pair("a1", "c2")]);
    // Handle time = 60 s talk + 30 s wrap-up.
    assert_eq!(
        c.stats("q").average_handle_time,
        Some(Duration::from_secs(90))
    );
    assert_eq!(
        c.acd.agent_stats(&"a1".into()).unwrap().average_handle_time,
        Some(Duration::from_secs(90))
    );
}

#[test]
fn ready_ends_wrap_up_early() {
    let mut q = queue("q", Strategy::LongestIdle);
    q.wrap_up_secs = 30;
    let mut c = Center::new(vec![q]);
    c.login("a1", &[], &[]);
    c.call("c1", "q");
    c.answer("a1", "c1");
    c.at(10).agent_hangs_up("a1", "c1");
    c.at(11).call("c2", "q");
    let out = c.at(14).ev(AcdEvent::AgentReady { agent: "a1".into() });
    assert_eq!(rings(&out), [pair("a1", "c2")]);
    assert_eq!(
        c.stats("q").average_handle_time,
        Some(Duration::from_secs(14))
    );
}

// ----- statistics -----

#[test]
fn service_level_counts_answers_within_the_threshold_over_answered_and_abandoned() {
    let mut q = queue("q", Strategy::LongestIdle);
    q.ring_timeout_secs = 60;
    let config = AcdConfig {
        service_level_secs: 15,
        queues: vec![q],
        ..AcdConfig::default()
    };
    let mut c = Center::with(config);
    assert_eq!(c.stats("q").service_level, None);
    c.at(0).login("a1", &[], &[]);
    // Answered after 15 s (within), 16 s (not within), abandoned, overflowed (left out).
    c.at(100).call("fast", "q");
    c.at(115).answer("a1", "fast");
    c.at(115).agent_hangs_up("a1", "fast");
    c.ev(AcdEvent::AgentBreak { agent: "a1".into() });
    c.at(200).call("slow", "q");
    c.at(216).ev(AcdEvent::AgentReady { agent: "a1".into() });
    c.at(216).answer("a1", "slow");
    c.at(300).call("gone", "q");
    c.at(310).caller_hangs_up("gone");
    let s = c.stats("q");
    assert_eq!(
        (
            s.offered,
            s.answered,
            s.answered_within_service_level,
            s.abandoned
        ),
        (3, 2, 1, 1)
    );
    assert_eq!(s.service_level, Some(1.0 / 3.0));
    assert_eq!(s.service_level_threshold, Duration::from_secs(15));
    // Average speed of answer: (15 + 0) / 2; slow was rung at 216 and answered at once.
    assert_eq!(
        s.average_speed_of_answer,
        Some(Duration::from_millis(15_500))
    );
}

#[test]
fn longest_wait_is_the_head_of_the_queue() {
    let mut c = Center::new(vec![queue("q", Strategy::LongestIdle)]);
    c.at(10).call("c1", "q");
    c.at(25).call("c2", "q");
    c.at(40);
    let s = c.stats("q");
    assert_eq!((s.waiting, s.longest_wait), (2, Duration::from_secs(30)));
    c.caller_hangs_up("c1");
    assert_eq!(c.stats("q").longest_wait, Duration::from_secs(15));
    assert!(c.acd.stats("other", t(0)).is_none());
    assert!(c.acd.agent_stats(&"nobody".into()).is_none());
}

#[test]
fn announcements_give_position_and_estimated_wait() {
    let mut q = queue("q", Strategy::LongestIdle);
    q.announce_every_secs = Some(30);
    q.assumed_handle_secs = 120;
    q.max_wait_secs = 1000;
    let mut c = Center::new(vec![q]);
    let announce = |actions: &[AcdAction]| -> Vec<(String, usize, Option<Duration>)> {
        actions
            .iter()
            .filter_map(|a| match a {
                AcdAction::Announce {
                    call,
                    position,
                    estimated_wait,
                } => Some((call.0.clone(), *position, *estimated_wait)),
                _ => None,
            })
            .collect()
    };
    // Nobody logged in: the wait cannot be estimated.
    let out = c.at(0).call("c1", "q");
    assert!(
        matches!(out.first(), Some(AcdAction::PlayMusicOnHold { prompt, .. }) if prompt == "moh-default")
    );
    assert_eq!(announce(&out), [("c1".to_owned(), 1, None)]);
    // Two agents logged in but busy: position × 120 s ÷ 2.
    for a in ["a1", "a2"] {
        c.login(a, &[], &[]);
    }
    c.answer("a1", "c1");
    c.at(1).call("c2", "q");
    c.answer("a2", "c2");
    c.at(2).call("c3", "q");
    assert_eq!(
        announce(&c.at(3).call("c4", "q")),
        [("c4".to_owned(), 2, Some(Duration::from_secs(120)))]
    );
    // One call handled in 30 s: the queue's own average replaces the assumption.
    c.at(30).agent_hangs_up("a1", "c1");
    c.answer("a1", "c3");
    let out = c.run_until(33);
    assert_eq!(
        announce(&out),
        [("c4".to_owned(), 1, Some(Duration::from_secs(15)))]
    );
    assert_eq!(announce(&c.run_until(62)), []);
    assert_eq!(
        announce(&c.run_until(63)),
        [("c4".to_owned(), 1, Some(Duration::from_secs(15)))]
    );
}

#[test]
fn time_going_backwards_does_not_panic_or_misfire() {
    let mut c = Center::new(vec![queue("q", Strategy::LongestIdle)]);
    c.login("a1", &[], &[]);
    c.at(100).call("c1", "q");
    c.at(50).answer("a1", "c1");
    c.at(0).agent_hangs_up("a1", "c1");
    let s = c.stats("q");
    assert_eq!(s.average_speed_of_answer, Some(Duration::ZERO));
    assert_eq!(s.average_handle_time, Some(Duration::ZERO));
    let mut far = Center::new(vec![queue("q", Strategy::LongestIdle)]);
    far.now = Timestamp::MAX;
    far.call("c1", "q");
    assert_eq!(far.acd.poll_timeout(), Some(Timestamp::MAX));
}

// ----- random event sequences -----

mod random {
    use std::collections::{BTreeMap, BTreeSet};

    use proptest::prelude::{
        Just, ProptestConfig, TestCaseError, any, prop_assert, prop_assert_eq, prop_assert_ne,
        prop_oneof, proptest,
    };
    use proptest::strategy::Strategy as Gen;

    use super::*;

    #[derive(Debug, Clone)]
    enum Op {
        Advance(i64),
        Tick,
        Queue {
            queue: usize,
            language: Option<usize>,
            number: bool,
        },
        CallerHangUp(usize),
        AnswerRinging(usize),
        Answer(usize, usize),
        Reject(usize, usize),
        NoAnswer(usize, usize),
        AgentHangUpConnected(usize),
        AgentHangUp(usize, usize),
        Login {
            agent: usize,
            skill: bool,
            languages: usize,
        },
        Logout(usize),
        Break(usize),
        Ready(usize),
    }

    fn op() -> impl Gen<Value = Op> {
        prop_oneof![
            3 => (0i64..40).prop_map(Op::Advance),
            1 => Just(Op::Tick),
            4 => (0usize..4, proptest::option::of(0usize..3), any::<bool>())
                .prop_map(|(queue, language, number)| Op::Queue { queue, language, number }),
            1 => (0usize..20).prop_map(Op::CallerHangUp),
            4 => (0usize..8).prop_map(Op::AnswerRinging),
            1 => (0usize..6, 0usize..20).prop_map(|(a, c)| Op::Answer(a, c)),
            1 => (0usize..6, 0usize..20).prop_map(|(a, c)| Op::Reject(a, c)),
            1 => (0usize..6, 0usize..20).prop_map(|(a, c)| Op::NoAnswer(a, c)),
            2 => (0usize..8).prop_map(Op::AgentHangUpConnected),
            1 => (0usize..6, 0usize..20).prop_map(|(a, c)| Op::AgentHangUp(a, c)),
            2 => (0usize..6, any::<bool>(), 0usize..4)
                .prop_map(|(agent, skill, languages)| Op::Login { agent, skill, languages }),
            1 => (0usize..6).prop_map(Op::Logout),
            1 => (0usize..6).prop_map(Op::Break),
            1 => (0usize..6).prop_map(Op::Ready),
        ]
    }

    fn config(max_missed_offers: u32) -> AcdConfig {
        let mut a = queue("a", Strategy::LongestIdle);
        a.skills = vec!["intake".into()];
        a.max_length = 3;
        a.max_wait_secs = 60;
        a.wrap_up_secs = 5;
        a.overflow = OverflowTarget::Queue("b".into());
        a.announce_every_secs = Some(20);
        a.languages = vec!["zh".into(), "en".into()];
        let mut b = queue("b", Strategy::RingAll);
        b.max_wait_secs = 40;
        b.max_length = 4;
        b.overflow = OverflowTarget::Callback;
        let mut c = queue("c", Strategy::RoundRobin);
        c.max_wait_secs = 90;
        c.max_length = 2;
        c.wrap_up_secs = 12;
        c.overflow = OverflowTarget::Queue("a".into());
        AcdConfig {
            service_level_secs: 20,
            max_missed_offers,
            queues: vec![a, b, c],
        }
    }

    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    enum Fate {
        Waiting,
        Bridged,
        Overflowed,
        Abandoned,
    }

    /// What the gateway knows, rebuilt from the actions, with the invariants checked on the way.
    #[derive(Default)]
    struct World {
        calls: Vec<CallId>,
        fate: BTreeMap<CallId, Fate>,
        rings: BTreeSet<(AgentId, CallId)>,
        on_call: BTreeMap<AgentId, CallId>,
    }

    impl World {
        fn apply(&mut self, actions: &[AcdAction]) -> Result<(), TestCaseError> {
            for action in actions {
                match action {
                    AcdAction::RingAgent { agent, call } => {
                        prop_assert_eq!(
                            self.fate.get(call),
                            Some(&Fate::Waiting),
                            "rang for a call not waiting"
                        );
                        prop_assert!(
                            !self.on_call.contains_key(agent),
                            "rang {} while on a call",
                            agent
                        );
                        prop_assert!(
                            self.rings.iter().all(|(a, _)| a != agent),
                            "{} rung twice",
                            agent
                        );
                        self.rings.insert((agent.clone(), call.clone()));
                    }
                    AcdAction::CancelRing { agent, call } => {
                        self.rings.remove(&(agent.clone(), call.clone()));
                    }
                    AcdAction::Bridge { call, agent } => {
                        prop_assert!(
                            self.rings.remove(&(agent.clone(), call.clone())),
                            "bridged without a ring"
                        );
                        prop_assert_eq!(
                            self.fate.get(call),
                            Some(&Fate::Waiting),
                            "call {} bridged twice or after it ended",
                            call
                        );
                        prop_assert!(
                            !self.on_call.contains_key(agent),
                            "agent {} bridged to two calls",
                            agent
                        );
                        self.fate.insert(call.clone(), Fate::Bridged);
                        self.on_call.insert(agent.clone(), call.clone());
                    }
                    AcdAction::Overflow { call, to } => {
                        prop_assert_eq!(self.fate.get(call), Some(&Fate::Waiting));
                        prop_assert!(
                            self.rings.iter().all(|(_, c)| c != call),
                            "overflowed while ringing"
                        );
                        if !matches!(to, OverflowTarget::Queue(_)) {
                            self.fate.insert(call.clone(), Fate::Overflowed);
                        }
                    }
                    AcdAction::CreateCallbackTask(task) => {
                        prop_assert_eq!(self.fate.get(&task.call), Some(&Fate::Overflowed));
                        prop_assert!(!task.caller_number.is_empty());
                    }
                    AcdAction::Announce { call, position, .. } => {
                        prop_assert_eq!(self.fate.get(call), Some(&Fate::Waiting));
                        prop_assert!(*position >= 1);
                    }
                    AcdAction::PlayMusicOnHold { .. } | AcdAction::AgentStateChanged { .. } => {}
                }
            }
            Ok(())
        }

        fn call(&self, i: usize) -> CallId {
            self.calls
                .get(i % self.calls.len().max(1))
                .cloned()
                .unwrap_or_else(|| "ghost".into())
        }
    }

    fn agent(i: usize) -> AgentId {
        AgentId(format!("agent{i}"))
    }

    const LANGUAGES: [&str; 3] = ["zh", "en", "yue"];

    fn run(ops: Vec<Op>, max_missed_offers: u32) -> Result<(), TestCaseError> {
        let mut acd = Acd::new(config(max_missed_offers)).unwrap();
        let mut world = World::default();
        let mut now = t(0);
        for op in ops {
            let event = match op {
                Op::Advance(s) => {
                    now = now.checked_add(jiff::SignedDuration::from_secs(s)).unwrap();
                    AcdEvent::Tick
                }
                Op::Tick => AcdEvent::Tick,
                Op::Queue {
                    queue,
                    language,
                    number,
                } => {
                    let call = CallId(format!("call{}", world.calls.len()));
                    world.calls.push(call.clone());
                    world.fate.insert(call.clone(), Fate::Waiting);
                    AcdEvent::CallQueued {
                        call,
                        queue: ["a", "b", "c", "missing"][queue].into(),
                        language: language.map(|l| LANGUAGES[l].to_owned()),
                        caller_number: number.then(|| "13800000000".to_owned()),
                    }
                }
                Op::CallerHangUp(i) => {
                    let call = world.call(i);
                    match world.fate.get(&call) {
                        Some(Fate::Waiting) => {
                            world.fate.insert(call.clone(), Fate::Abandoned);
                        }
                        Some(Fate::Bridged) => world.on_call.retain(|_, c| *c != call),
                        _ => {}
                    }
                    AcdEvent::CallerHungUp { call }
                }
                Op::AnswerRinging(i) => {
                    match world.rings.iter().nth(i % world.rings.len().max(1)) {
                        Some((agent, call)) => AcdEvent::AgentAnswered {
                            agent: agent.clone(),
                            call: call.clone(),
                        },
                        None => AcdEvent::Tick,
                    }
                }
                Op::Answer(a, c) => AcdEvent::AgentAnswered {
                    agent: agent(a),
                    call: world.call(c),
                },
                Op::Reject(a, c) | Op::NoAnswer(a, c) => {
                    let (agent, call) = (agent(a), world.call(c));
                    world.rings.remove(&(agent.clone(), call.clone()));
                    if matches!(op, Op::Reject(..)) {
                        AcdEvent::AgentRejected { agent, call }
                    } else {
                        AcdEvent::AgentNoAnswer { agent, call }
                    }
                }
                Op::AgentHangUpConnected(i) => {
                    match world
                        .on_call
                        .iter()
                        .nth(i % world.on_call.len().max(1))
                        .map(|(a, c)| (a.clone(), c.clone()))
                    {
                        Some((agent, call)) => {
                            world.on_call.remove(&agent);
                            AcdEvent::AgentHungUp { agent, call }
                        }
                        None => AcdEvent::Tick,
                    }
                }
                Op::AgentHangUp(a, c) => {
                    let (agent, call) = (agent(a), world.call(c));
                    if world.on_call.get(&agent) == Some(&call) {
                        world.on_call.remove(&agent);
                    }
                    AcdEvent::AgentHungUp { agent, call }
                }
                Op::Login {
                    agent: a,
                    skill,
                    languages,
                } => AcdEvent::AgentLogin {
                    agent: agent(a),
                    skills: if skill { vec!["intake".into()] } else { vec![] },
                    languages: LANGUAGES
                        .iter()
                        .take(languages)
                        .map(|l| l.to_string())
                        .collect(),
                },
                Op::Logout(a) => AcdEvent::AgentLogout { agent: agent(a) },
                Op::Break(a) => AcdEvent::AgentBreak { agent: agent(a) },
                Op::Ready(a) => AcdEvent::AgentReady { agent: agent(a) },
            };
            let actions = acd.handle(now, event);
            world.apply(&actions)?;
            acd.check_consistency();
            if let Some(next) = acd.poll_timeout() {
                prop_assert!(
                    next > now,
                    "poll_timeout {next} not after handled time {now}"
                );
            }
        }
        // Let time run out: every waiting caller must leave the queues.
        let mut steps = 0;
        while let Some(next) = acd.poll_timeout() {
            steps += 1;
            prop_assert!(steps < 10_000, "timers never settle");
            now = next;
            let actions = acd.handle(now, AcdEvent::Tick);
            world.apply(&actions)?;
            acd.check_consistency();
        }
        for (call, fate) in &world.fate {
            prop_assert_ne!(
                *fate,
                Fate::Waiting,
                "{} neither bridged, overflowed nor abandoned",
                call
            );
        }
        for q in ["a", "b", "c"] {
            let s = acd.stats(q, now).unwrap();
            prop_assert_eq!(s.waiting, 0);
            prop_assert_eq!(s.offered, s.answered + s.abandoned + s.overflowed);
            prop_assert!(s.answered_within_service_level <= s.answered);
        }
        Ok(())
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 2_000, ..ProptestConfig::default() })]

        #[test]
        fn random_event_sequences_keep_the_invariants(ops in proptest::collection::vec(op(), 0..120), missed in 0u32..3) {
            run(ops, missed)?;
        }
    }
}

#[test]
fn the_shipped_queues_are_valid() {
    let config = AcdConfig::from_toml(include_str!("../../../config/queues.toml")).unwrap();
    let names: Vec<&str> = config.queues.iter().map(|q| q.name.as_str()).collect();
    assert_eq!(names, ["12319-intake", "12345-intake", "12345-consult"]);
    assert_eq!(config.service_level_secs, 20);
    Acd::new(config).unwrap();
}
