//! End to end through the IVR: the real `hotline` binary answers SIPp callers who press keys
//! (RFC 4733), talk and wait, and the tests check what a caller would notice — which prompts
//! they heard, in order, read off the recording (every prompt is a tone of its own, see
//! `ToneMap`) — and what staff find afterwards over HTTP: the message ticket, the callback task,
//! the queue figures.
//!
//! Needs `sipp` (Debian `sip-tester`) with its DTMF and speech captures.

mod common;

use common::Api;
use common::sip::*;

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{Value, json};

/// How long a ticket made from a message may take to appear after the call.
const TICKET_TIMEOUT: Duration = Duration::from_secs(5);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn caller_checks_ticket_status_by_dtmf() {
    let hotline = Hotline::start(|sip| sip.tone_prompts = true);
    let agent = hotline.agent().await;
    let ticket = agent
        .post_ok(
            "/api/v1/tickets",
            json!({"content": "幸福路污水井盖丢失", "category": "C0102",
                   "reporter": {"phone": "13700001111"}}),
        )
        .await;
    let number = ticket["number"].as_str().unwrap().to_owned();
    let filed = agent
        .post_ok(
            &format!("/api/v1/tickets/{number}/transitions"),
            json!({"action": "file"}),
        )
        .await;
    assert_eq!(filed["ticket"]["status"], "filed", "{filed}");
    // 12319-20261201-000001 is keyed as the date and the serial: 20261201000001, then #.
    let keyed: String = number.split('-').skip(1).collect();
    assert_eq!(keyed.len(), 14);

    let mut steps = vec![
        Step::Pause(700),
        Step::Key('1'), // 普通话, during the language prompt
        Step::Pause(500),
        Step::Key('2'), // check a ticket, during the menu
        Step::Pause(500),
    ];
    steps.extend(keyed.chars().map(Step::Key));
    steps.push(Step::Key('#'));
    steps.push(Step::Pause(6500)); // 17 prompts of the read-back, 300 ms each
    let run = hotline
        .ivr_call(&steps, End::CallerHangsUp)
        .arg("-rtp_echo")
        .run()
        .await;
    run.assert_success();
    let call_id = run.call_id();
    let mut keys = vec!["1 by rfc4733".to_owned(), "2 by rfc4733".to_owned()];
    keys.extend(keyed.chars().map(|d| format!("{d} by rfc4733")));
    keys.push("# by rfc4733".to_owned());
    assert_eq!(hotline.digits(&call_id), keys, "every key once");

    let api = hotline.supervisor().await;
    let call = api.ended_call(&call_id).await;
    assert_eq!(call["ended_by"], "caller");
    let recording = api.recording(&call).await;
    let tones = ToneMap::shipped();
    let heard = tones.heard(&recording.hotline, 3);
    assert_eq!(
        heard.first().map(String::as_str),
        Some("welcome_12319"),
        "{heard:?}"
    );
    assert_contains_run(
        &heard,
        &status_read_back(&keyed, "filed"),
        "the hotline channel",
    );
    // SIPp echoed what it received: the read-back reached the caller over RTP.
    let echoed = tones.heard(&recording.caller, 3);
    assert_contains_run(
        &echoed,
        &status_read_back(&keyed, "filed"),
        "the caller channel (SIPp's echo)",
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn caller_with_an_unknown_ticket_number_is_told_so() {
    let hotline = Hotline::start(|sip| sip.tone_prompts = true);
    let mut steps = vec![
        Step::Pause(700),
        Step::Key('1'),
        Step::Pause(500),
        Step::Key('2'),
        Step::Pause(500),
    ];
    steps.extend("20200101999999".chars().map(Step::Key));
    steps.push(Step::Key('#'));
    steps.push(Step::Pause(1500));
    let run = hotline.ivr_call(&steps, End::CallerHangsUp).run().await;
    run.assert_success();
    let api = hotline.supervisor().await;
    let call = api.ended_call(&run.call_id()).await;
    let heard = ToneMap::shipped().heard(&api.recording(&call).await.hotline, 3);
    // Not found: said so, and asked for the number again.
    assert_contains_run(
        &heard,
        &["ticket_not_found".to_owned(), "enter_ticket".to_owned()],
        "the hotline channel",
    );
    assert!(!heard.iter().any(|p| p.starts_with("status/")), "{heard:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn caller_with_a_gas_leak_is_transferred_to_the_utility() {
    let hotline = Hotline::start(|sip| sip.tone_prompts = true);
    let steps = [
        Step::Pause(700),
        Step::Key('1'),
        Step::Pause(500),
        Step::Key('4'), // 燃气泄漏等紧急抢修
    ];
    let run = hotline.ivr_call(&steps, End::Referred).run().await;
    run.assert_success();
    let refer = run.received_request("REFER").expect("a REFER");
    // To the number of the flow's transfer node, at the trunk the call came from.
    assert!(
        refer.contains("Refer-To: <sip:962777@127.0.0.1:"),
        "{refer}"
    );
    let api = hotline.supervisor().await;
    let call = api.ended_call(&run.call_id()).await;
    assert_eq!(call["ended_by"], "hotline");
    assert_eq!(call["end_reason"], "transferred to 962777", "{call}");
    let heard = ToneMap::shipped().heard(&api.recording(&call).await.hotline, 3);
    assert_eq!(
        heard.last().map(String::as_str),
        Some("transfer"),
        "{heard:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn caller_whose_transfer_is_refused_is_not_dropped() {
    let hotline = Hotline::start(|sip| {
        sip.tone_prompts = true;
        sip.queues = Some(intake_queue(2, "callback"));
    });
    let steps = [
        Step::Pause(700),
        Step::Key('1'),
        Step::Pause(500),
        Step::Key('4'),
    ];
    let run = hotline
        .ivr_call(&steps, End::ReferRefused { within_ms: 15_000 })
        .run()
        .await;
    run.assert_success();
    let api = hotline.supervisor().await;
    let call = api.ended_call(&run.call_id()).await;
    let heard = ToneMap::shipped().heard(&api.recording(&call).await.hotline, 3);
    // The flow's `failed` node queues the caller for an agent; with none free for 2 s, the
    // queue takes their number.
    let transfer = heard
        .iter()
        .position(|p| p == "transfer")
        .expect("transfer prompt");
    let hold = heard
        .iter()
        .position(|p| p == "hold_music")
        .expect("then the queue");
    assert!(transfer < hold, "{heard:?}");
    assert_contains_run(
        &heard,
        &["callback_recorded".to_owned(), "goodbye".to_owned()],
        "the hotline channel",
    );
    let tasks = hotline.agent().await.get_ok("/api/v1/callbacks").await;
    assert_eq!(tasks[0]["call_id"], run.call_id(), "{tasks}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_hours_caller_leaves_a_message_that_becomes_a_ticket() {
    let hotline = Hotline::start(|sip| {
        sip.tone_prompts = true;
        sip.closed_today = true;
    });
    let steps = [
        Step::Pause(700),
        Step::Key('1'),
        // after_hours, leave_message, beep: 900 ms.
        Step::Pause(1100),
        Step::Speak,
        Step::Pause(7300),
    ];
    let run = hotline.ivr_call(&steps, End::CallerHangsUp).run().await;
    run.assert_success();
    let call_id = run.call_id();

    let api = hotline.supervisor().await;
    let call = api.ended_call(&call_id).await;
    assert_eq!(call["ended_by"], "caller");
    let heard = ToneMap::shipped().heard(&api.recording(&call).await.hotline, 3);
    assert_contains_run(
        &heard,
        &[
            "after_hours".to_owned(),
            "leave_message".to_owned(),
            "beep".to_owned(),
        ],
        "the hotline channel",
    );
    assert!(
        !heard.iter().any(|p| p == "menu_12319"),
        "closed: no menu {heard:?}"
    );

    // The message is a phone ticket with the caller as reporter and the recording attached.
    let agent = hotline.agent().await;
    let ticket = agent.ticket_from(CALLER).await;
    assert_eq!(ticket["channel"], "phone");
    assert_eq!(ticket["status"], "received");
    assert_eq!(ticket["hotline"], "12319");
    assert!(
        ticket["content"].as_str().unwrap().contains("电话留言"),
        "{ticket}"
    );
    let attachment = &ticket["attachments"][0];
    assert_eq!(attachment["kind"], "recording");
    let uri = attachment["uri"].as_str().unwrap();
    assert!(uri.starts_with("messages/"), "{uri}");
    let (seconds, speech) = message_audio(&hotline.data().join(uri));
    assert!(
        (6.0..8.5).contains(&seconds),
        "the message lasts {seconds:.1} s; the caller spoke ~7 s before hanging up"
    );
    assert!(speech > 500.0, "the message is silent (RMS {speech:.0})");
    // The trail says the IVR took it, and the call record points at it.
    let events = agent
        .get_ok(&format!(
            "/api/v1/tickets/{}/events",
            ticket["number"].as_str().unwrap()
        ))
        .await;
    assert_eq!(events[0]["actor_name"], "IVR", "{events}");
    let call = api.ended_call(&call_id).await;
    assert!(call["ticket_id"].is_i64(), "{call}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queued_caller_without_agents_gets_a_callback_at_max_wait() {
    let hotline = Hotline::start(|sip| {
        sip.tone_prompts = true;
        sip.queues = Some(intake_queue(3, "callback"));
    });
    let steps = [
        Step::Pause(700),
        Step::Key('1'),
        Step::Pause(500),
        Step::Key('1'), // report a problem: queue 12319-intake
    ];
    let started = Instant::now();
    let run = hotline
        .ivr_call(&steps, End::HotlineHangsUp { within_ms: 15_000 })
        .run()
        .await;
    run.assert_success();
    let call_id = run.call_id();
    assert!(started.elapsed() < Duration::from_secs(10));

    let api = hotline.supervisor().await;
    let call = api.ended_call(&call_id).await;
    assert_eq!(call["ended_by"], "hotline", "{call}");
    let recording = api.recording(&call).await;
    let heard = ToneMap::shipped().heard(&recording.hotline, 3);
    let hold = heard.iter().filter(|p| *p == "hold_music").count();
    assert!(hold >= 1, "hold music while waiting: {heard:?}");
    // Every second: first in line, no agent to estimate the wait from: "all agents are busy".
    let busy = heard.iter().filter(|p| *p == "all_busy").count();
    assert!(
        (1..=4).contains(&busy),
        "announcements while waiting: {heard:?}"
    );
    assert!(
        !heard.iter().any(|p| p == "queue_wait"),
        "no estimate without agents: {heard:?}"
    );
    assert_contains_run(
        &heard,
        &["callback_recorded".to_owned(), "goodbye".to_owned()],
        "the hotline channel",
    );
    // Waited the 3 s of max wait in the queue: from the menu to the callback notice.
    let waited = seconds_between(&recording.hotline, "menu_12319", "callback_recorded");
    assert!((2.5..4.5).contains(&waited), "waited {waited:.1} s");

    // The task is there for agents, with the number to call.
    let agent = hotline.agent().await;
    let tasks = agent.get_ok("/api/v1/callbacks").await;
    let task = &tasks[0];
    assert_eq!(tasks.as_array().unwrap().len(), 1, "{tasks}");
    assert_eq!(task["caller_number"], CALLER);
    assert_eq!(task["queue"], "12319-intake");
    assert_eq!(task["hotline"], "12319");
    assert_eq!(task["call_id"], call_id);
    let id = task["id"].as_i64().unwrap();
    // No answer keeps it open; reached closes it; a closed task takes no more attempts.
    let after = agent
        .post_ok(
            &format!("/api/v1/callbacks/{id}/attempts"),
            json!({"outcome": "no_answer"}),
        )
        .await;
    assert_eq!(after["attempts"], 1);
    assert!(after["closed_at"].is_null(), "{after}");
    let after = agent
        .post_ok(
            &format!("/api/v1/callbacks/{id}/attempts"),
            json!({"outcome": "reached", "note": "已记录井盖位置"}),
        )
        .await;
    assert_eq!(after["attempts"], 2);
    assert_eq!(after["last_outcome"], "reached");
    assert_eq!(after["last_agent"], "agent");
    assert!(after["closed_at"].is_string(), "{after}");
    let (status, problem) = agent
        .post(
            &format!("/api/v1/callbacks/{id}/attempts"),
            json!({"outcome": "busy"}),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{problem}");
    assert_eq!(problem["code"], "callback_closed");
    assert_eq!(agent.get_ok("/api/v1/callbacks").await, json!([]));
    let closed = agent.get_ok("/api/v1/callbacks?state=closed").await;
    assert_eq!(closed[0]["id"], id);

    // The queue's figures count it.
    let queues = agent.get_ok("/api/v1/queues").await;
    let intake = &queues["queues"][0];
    assert_eq!(intake["name"], "12319-intake");
    assert_eq!(intake["offered"], 1, "{queues}");
    assert_eq!(intake["overflowed"], 1);
    assert_eq!(intake["waiting"], 0);
    assert_eq!(intake["answered"], 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queued_caller_who_hangs_up_is_counted_as_abandoned() {
    let hotline = Hotline::start(|sip| {
        sip.tone_prompts = true;
        sip.queues = Some(intake_queue(30, "voicemail"));
    });
    let steps = [
        Step::Pause(700),
        Step::Key('1'),
        Step::Pause(500),
        Step::Key('0'), // an agent, please
        Step::Pause(2000),
    ];
    let run = hotline.ivr_call(&steps, End::CallerHangsUp).run().await;
    run.assert_success();
    let agent = hotline.agent().await;
    agent.ended_call(&run.call_id()).await;
    let deadline = Instant::now() + Duration::from_secs(3);
    loop {
        let queues = agent.get_ok("/api/v1/queues").await;
        let intake = &queues["queues"][0];
        if intake["abandoned"] == 1 {
            assert_eq!(intake["offered"], 1);
            assert_eq!(intake["waiting"], 0);
            assert_eq!(intake["service_level"], 0.0, "{queues}");
            break;
        }
        assert!(Instant::now() < deadline, "{queues}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(agent.get_ok("/api/v1/callbacks").await, json!([]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queued_caller_is_answered_by_an_agent_desk_phone() {
    let hotline = Hotline::start(|sip| {
        sip.tone_prompts = true;
        sip.queues = Some(intake_queue(20, "callback"));
    });
    // The agent's phone: SIPp answering on a port of its own, echoing what it hears.
    let port = free_udp_port("127.0.0.1".parse().unwrap());
    let phone = hotline
        .sipp("agent_phone")
        .on_port(port)
        .arg("-rtp_echo")
        .spawn();
    let agent = hotline.agent().await;
    let (status, view) = agent
        .post(
            "/api/v1/agents/me/state",
            json!({"state": "ready", "contact": format!("sip:agent@127.0.0.1:{port}"), "languages": ["zh"]}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{view}");
    assert_eq!(view["agents"][0]["agent"], "agent");
    assert_eq!(view["agents"][0]["state"], "available");

    let steps = [
        Step::Pause(700),
        Step::Key('1'),
        Step::Pause(500),
        Step::Key('1'), // report a problem: the queue rings the agent, who answers in 300 ms
        Step::Pause(1500),
        Step::Speak,
        Step::Pause(3000),
    ];
    let run = hotline.ivr_call(&steps, End::CallerHangsUp).run().await;
    run.assert_success();
    let phone = phone.finish().await;
    phone.assert_success();
    let invite = phone
        .received_request("INVITE")
        .expect("the phone was rung");
    assert!(
        invite.contains(&format!("X-Hotline-Call: {}", run.call_id())),
        "{invite}"
    );
    assert!(
        phone.received_request("BYE").is_some(),
        "hung up when the caller did"
    );

    let api = hotline.supervisor().await;
    let call = api.ended_call(&run.call_id()).await;
    assert_eq!(call["ended_by"], "caller");
    let recording = api.recording(&call).await;
    // The caller spoke from ~2.7 s; the agent's phone sent it back: the caller heard the agent.
    let talk = recording.hotline.len() as f64 / 8000.0;
    let heard_agent = rms(span(&recording.hotline, talk - 2.5, talk - 0.3));
    assert!(
        heard_agent > 300.0,
        "the agent is silent on the hotline channel (RMS {heard_agent:.0})"
    );
    let said = rms(span(&recording.caller, talk - 2.5, talk - 0.3));
    assert!(said > 300.0, "the caller is silent (RMS {said:.0})");
    // And it is the caller's own voice coming back through the agent's phone (no hold music):
    // the hotline channel follows the caller channel a round trip later.
    let (lag_ms, similarity) = best_echo(
        span(&recording.caller, talk - 2.5, talk - 0.5),
        span(&recording.hotline, talk - 2.5, talk - 0.2),
    );
    assert!(
        similarity > 0.6 && (20.0..250.0).contains(&lag_ms),
        "the hotline channel is not the agent's echo of the caller: correlation {similarity:.2} at {lag_ms:.0} ms"
    );
    let heard = ToneMap::shipped().heard(&recording.hotline, 3);
    assert!(
        !heard
            .iter()
            .any(|p| p == "callback_recorded" || p == "leave_message"),
        "answered, not overflowed: {heard:?}"
    );

    let deadline = Instant::now() + Duration::from_secs(3);
    loop {
        let view = agent.get_ok("/api/v1/queues").await;
        let (q, a) = (&view["queues"][0], &view["agents"][0]);
        if q["handled"] == 1 {
            assert_eq!(q["answered"], 1, "{view}");
            assert_eq!(q["answered_within_service_level"], 1);
            assert_eq!(q["abandoned"], 0);
            assert_eq!(a["answered"], 1);
            assert_eq!(a["state"], "wrap_up", "{view}");
            break;
        }
        assert!(Instant::now() < deadline, "{view}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(agent.get_ok("/api/v1/callbacks").await, json!([]));
    // The agent goes on break: the desk says so.
    let (_, view) = agent
        .post("/api/v1/agents/me/state", json!({"state": "break"}))
        .await;
    assert_eq!(view["agents"][0]["state"], "break", "{view}");
    let (status, problem) = agent
        .post(
            "/api/v1/agents/me/state",
            json!({"state": "ready", "contact": "http://x"}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{problem}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unanswered_agent_phone_is_cancelled_and_the_next_agent_rung() {
    let queues =
        intake_queue(20, "callback").replace("ring_timeout_secs = 15", "ring_timeout_secs = 2");
    let hotline = Hotline::start(|sip| {
        sip.tone_prompts = true;
        sip.queues = Some(queues);
    });
    let ip = "127.0.0.1".parse().unwrap();
    let (away_port, desk_port) = (free_udp_port(ip), free_udp_port(ip));
    let away = hotline
        .sipp("agent_phone_unanswered")
        .on_port(away_port)
        .spawn();
    let desk = hotline
        .sipp("agent_phone")
        .on_port(desk_port)
        .arg("-rtp_echo")
        .spawn();
    // The agent away from the desk logged in first: longest idle, rung first.
    let away_agent = hotline.agent().await;
    away_agent
        .post_ok(
            "/api/v1/agents/me/state",
            json!({"state": "ready", "contact": format!("sip:agent@127.0.0.1:{away_port}")}),
        )
        .await;
    tokio::time::sleep(Duration::from_millis(50)).await;
    let supervisor = hotline.supervisor().await;
    supervisor
        .post_ok(
            "/api/v1/agents/me/state",
            json!({"state": "ready", "contact": format!("sip:duty@127.0.0.1:{desk_port}")}),
        )
        .await;

    let steps = [
        Step::Pause(700),
        Step::Key('1'),
        Step::Pause(500),
        Step::Key('1'),
        Step::Pause(4000), // 2 s ringing the first phone, then the second answers in 300 ms
        Step::Speak,
        Step::Pause(1500),
    ];
    let run = hotline.ivr_call(&steps, End::CallerHangsUp).run().await;
    run.assert_success();
    let away = away.finish().await;
    away.assert_success();
    assert!(
        away.received_request("CANCEL").is_some(),
        "the first phone was cancelled"
    );
    let desk = desk.finish().await;
    desk.assert_success();
    assert!(desk.received_request("BYE").is_some());

    let deadline = Instant::now() + Duration::from_secs(3);
    loop {
        let view = supervisor.get_ok("/api/v1/queues").await;
        let agent = |name: &str| {
            view["agents"]
                .as_array()
                .unwrap()
                .iter()
                .find(|a| a["agent"] == name)
                .cloned()
                .unwrap_or(Value::Null)
        };
        let (a, s) = (agent("agent"), agent("supervisor"));
        if s["handled"] == 1 {
            assert_eq!(
                (a["offered"].clone(), a["missed"].clone()),
                (json!(1), json!(1)),
                "{view}"
            );
            assert_eq!(a["answered"], 0);
            assert_eq!(s["answered"], 1);
            assert_eq!(view["queues"][0]["answered"], 1);
            break;
        }
        assert!(Instant::now() < deadline, "{view}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

// ---------------------------------------------------------------------------------------------

/// `want` appears in `heard` as consecutive prompts.
#[track_caller]
fn assert_contains_run(heard: &[String], want: &[String], what: &str) {
    assert!(
        heard.windows(want.len()).any(|w| w == want),
        "{what}: expected {want:?} in a row, heard {heard:?}"
    );
}

/// Seconds from the start of the first `from` prompt to the start of the first `to` prompt.
fn seconds_between(channel: &[i16], from: &str, to: &str) -> f64 {
    let tones = ToneMap::shipped();
    let runs = tones.runs(channel, 3);
    let at = |name: &str| {
        runs.iter()
            .find(|(_, hz)| tones.name(*hz) == name)
            .map(|(start, _)| *start as f64 / 8000.0)
            .unwrap_or_else(|| panic!("no {name} on the channel"))
    };
    at(to) - at(from)
}

/// The delay (ms) at which `later` best matches `earlier`, and the normalised correlation there.
fn best_echo(earlier: &[i16], later: &[i16]) -> (f64, f64) {
    let n = earlier.len();
    let energy = |x: &[i16]| x.iter().map(|&s| f64::from(s).powi(2)).sum::<f64>().sqrt();
    let mut best = (0.0, 0.0);
    for lag in (0..(later.len() - n).min(2400)).step_by(8) {
        let window = &later[lag..lag + n];
        let dot: f64 = earlier
            .iter()
            .zip(window)
            .map(|(&a, &b)| f64::from(a) * f64::from(b))
            .sum();
        let c = dot / (energy(earlier) * energy(window)).max(1.0);
        if c > best.1 {
            best = (lag as f64 / 8.0, c);
        }
    }
    best
}

/// A message file: its length in seconds and the RMS of its middle.
fn message_audio(path: &std::path::Path) -> (f64, f64) {
    let mut reader = hound::WavReader::open(path).unwrap();
    let spec = reader.spec();
    assert_eq!(
        (spec.channels, spec.sample_rate),
        (1, 8000),
        "a mono 8 kHz message"
    );
    let samples: Vec<i16> = reader.samples::<i16>().map(Result::unwrap).collect();
    let seconds = samples.len() as f64 / 8000.0;
    let middle = &samples[samples.len() / 4..samples.len() * 3 / 4];
    (seconds, rms(middle))
}

impl Api {
    /// POST JSON; must succeed.
    async fn post_ok(&self, path: &str, body: Value) -> Value {
        let (status, value) = self.post(path, body).await;
        assert!(status.is_success(), "POST {path}: {status} {value}");
        value
    }

    /// GET; must succeed.
    async fn get_ok(&self, path: &str) -> Value {
        let (status, value) = self.get(path).await;
        assert_eq!(status, StatusCode::OK, "GET {path}: {value}");
        value
    }

    /// The ticket reported from `phone`, once the message has been made one.
    async fn ticket_from(&self, phone: &str) -> Value {
        let deadline = Instant::now() + TICKET_TIMEOUT;
        loop {
            let page = self.get_ok("/api/v1/tickets").await;
            if let Some(t) = page["items"].as_array().and_then(|items| items.first()) {
                let number = t["number"].as_str().unwrap();
                let ticket = self.get_ok(&format!("/api/v1/tickets/{number}")).await;
                assert_eq!(ticket["reporters"][0]["phone"], phone, "{ticket}");
                return ticket;
            }
            assert!(
                Instant::now() < deadline,
                "no ticket after {TICKET_TIMEOUT:?}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}
