//! End to end over SIP: the real `hotline` binary on random ports, called by real SIPp processes
//! playing the scenarios in `tests/sipp/`. Each test is something a caller, a trunk or an
//! attacker does; it checks what SIPp saw on the wire, the call record a supervisor reads over
//! HTTP, and the recording by its content: its length against the call's, and on each channel
//! the energy or the 440 Hz greeting tone that should be there.
//!
//! Needs `sipp` with PCAP play (Debian `sip-tester`) on the PATH. Runs on SQLite in a temporary
//! data directory per test; when a test fails it prints the hotline's log and SIPp's logs.

mod common;

use common::sip::*;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::Value;

// ---------------------------------------------------------------------------------------------
// Calls answered, heard and hung up
// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn caller_is_answered_and_hangs_up() {
    let hotline = Hotline::start(|_| {});
    let run = hotline.sipp("caller_speaks").pause_ms(2000).run().await;
    run.assert_success();
    assert_eq!(run.invite_final_status(), 200);

    let api = hotline.supervisor().await;
    let call = api.ended_call(&run.call_id()).await;
    assert_eq!(call["hotline"], "12319");
    assert_eq!(call["from_number"], CALLER);
    assert_eq!(call["to_number"], "12319");
    assert_eq!(call["trunk"], "local");
    assert_eq!(call["ended_by"], "caller");
    assert_eq!(call["end_code"], 200);
    assert_eq!(call["end_reason"], "caller hung up");
    let duration = call["duration_ms"].as_i64().unwrap();
    assert!(
        (1900..3500).contains(&duration),
        "a 2 s call lasted {duration} ms"
    );

    let recording = api.recording(&call).await;
    recording.assert_lasts(duration);
    // SIPp sends real speech from right after its ACK: the caller channel carries it...
    let speech = rms(recording.caller(0.0, 2.0));
    assert!(
        speech > 500.0,
        "caller channel RMS {speech:.0} over the first 2 s: silence?"
    );
    // ...and the hotline channel the 1-second 440 Hz greeting, then silence.
    assert_greeting(&recording.hotline, "the hotline channel");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn carrier_delayed_offer_is_answered() {
    // An INVITE without SDP: we offer in the 200, the caller answers in the ACK.
    let hotline = Hotline::start(|_| {});
    let run = hotline.sipp("delayed_offer").pause_ms(2000).run().await;
    run.assert_success();
    let ok = run.received_status(200).expect("a 200 OK");
    assert!(ok.contains("Content-Type: application/sdp"), "{ok}");
    let api = hotline.supervisor().await;
    let call = api.ended_call(&run.call_id()).await;
    assert_eq!(call["ended_by"], "caller");
    let recording = api.recording(&call).await;
    recording.assert_lasts(call["duration_ms"].as_i64().unwrap());
    // The caller's media went where the ACK's answer said it comes from.
    let speech = rms(recording.caller(0.0, 1.8));
    assert!(
        speech > 500.0,
        "caller channel RMS {speech:.0}: no audio after a delayed offer?"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn caller_hears_the_greeting() {
    let hotline = Hotline::start(|_| {});
    // SIPp echoes every RTP packet it receives: what the caller heard comes back as the caller.
    let run = hotline
        .sipp("caller_hears_prompt")
        .pause_ms(2000)
        .arg("-rtp_echo")
        .run()
        .await;
    run.assert_success();

    let api = hotline.supervisor().await;
    let call = api.ended_call(&run.call_id()).await;
    assert_eq!(call["ended_by"], "caller");
    let recording = api.recording(&call).await;
    recording.assert_lasts(call["duration_ms"].as_i64().unwrap());

    let sent = assert_greeting(&recording.hotline, "the hotline channel");
    let back = assert_greeting(
        &recording.caller,
        "the caller channel (the greeting as SIPp received it)",
    );
    // It is the echo, not the prompt leaking into the caller side: it comes after the prompt,
    // by the round trip and the jitter buffer.
    let lag_ms = (back as f64 - sent as f64) / 8.0;
    assert!(
        (20.0..400.0).contains(&lag_ms),
        "echo came back {lag_ms:.0} ms after the prompt"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hotline_hangs_up_a_call_without_rtp() {
    let hotline = Hotline::start(|sip| sip.no_rtp_seconds = 1);
    let started = Instant::now();
    let run = hotline.sipp("hotline_hangs_up").run().await;
    run.assert_success();
    let bye = run.received_request("BYE").expect("a BYE from the hotline");
    assert!(bye.contains("Reason: SIP;cause=408"), "{bye}");
    assert!(started.elapsed() < Duration::from_secs(5));

    let api = hotline.supervisor().await;
    let call = api.ended_call(&run.call_id()).await;
    assert_eq!(call["ended_by"], "system");
    assert_eq!(call["end_code"], 408);
    assert_eq!(call["end_reason"], "no RTP for 1 s");
    let duration = call["duration_ms"].as_i64().unwrap();
    assert!(
        (950..1600).contains(&duration),
        "torn down after {duration} ms"
    );
    let recording = api.recording(&call).await;
    recording.assert_lasts(duration);
    let caller = rms(recording.caller(0.0, 0.9));
    assert!(
        caller < 50.0,
        "SIPp sent nothing, yet the caller channel has RMS {caller:.0}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn caller_that_never_acks_is_hung_up() {
    // The watchdog is off, so only the missing ACK can end this call (after 64*T1 = 32 s).
    let hotline = Hotline::start(|sip| sip.no_rtp_seconds = 0);
    let run = hotline.sipp("no_ack").run().await;
    run.assert_success();
    let oks = run
        .received()
        .iter()
        .filter(|m| status_code(m) == Some(200))
        .count();
    assert!(
        oks >= 5,
        "the 200 OK is retransmitted while no ACK comes ({oks} seen)"
    );
    assert!(
        run.received_request("BYE").is_some(),
        "the hotline ends the dialog"
    );

    let api = hotline.supervisor().await;
    let call = api.ended_call(&run.call_id()).await;
    assert_eq!(call["ended_by"], "system");
    assert_eq!(call["end_code"], 408);
    assert_eq!(call["end_reason"], "no ACK for the 200 OK");
    let duration = call["duration_ms"].as_i64().unwrap();
    assert!(
        (30_000..36_000).contains(&duration),
        "torn down after {duration} ms"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn session_timer_is_agreed_and_refreshed_by_update() {
    let hotline = Hotline::start(|_| {});
    let run = hotline.sipp("session_refresh").pause_ms(500).run().await;
    // The scenario checks Session-Expires: 90;refresher=uac and Require: timer on the 200 to the
    // INVITE and the interval again on the 200 to the UPDATE.
    run.assert_success();
    let answers = run
        .received()
        .iter()
        .filter(|m| status_code(m) == Some(200) && m.contains("Session-Expires: 90;refresher=uac"))
        .count();
    assert!(
        answers >= 2,
        "INVITE and UPDATE both answered with the interval"
    );
    let api = hotline.supervisor().await;
    let call = api.ended_call(&run.call_id()).await;
    assert_eq!(call["ended_by"], "caller");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn too_short_session_interval_gets_422() {
    let hotline = Hotline::start(|_| {});
    let run = hotline.sipp("session_too_small").run().await;
    run.assert_success();
    let refusal = run.received_status(422).expect("a 422");
    assert!(refusal.contains("Min-SE: 90"), "{refusal}");
    let api = hotline.supervisor().await;
    let call = api.ended_call(&run.call_id()).await;
    assert_eq!(call["end_code"], 422);
    assert!(call["answered_at"].is_null());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn caller_cancels_while_it_rings() {
    let hotline = Hotline::start(|sip| sip.answer_delay_ms = 3000);
    let run = hotline.sipp("cancel_before_answer").run().await;
    run.assert_success();
    assert_eq!(run.received_statuses(), [180, 200, 487]);
    assert!(run.received_status(200).unwrap().contains("CSeq: 1 CANCEL"));

    let api = hotline.supervisor().await;
    let call = api.ended_call(&run.call_id()).await;
    assert_eq!(call["ended_by"], "caller");
    assert_eq!(call["end_code"], 487);
    assert_eq!(call["answered_at"], Value::Null);
    assert_eq!(call["duration_ms"], Value::Null);
    assert_eq!(call["recording_path"], Value::Null);
    assert!(
        !hotline.log().contains("call answered"),
        "a cancelled call must not be answered"
    );
}

// ---------------------------------------------------------------------------------------------
// Keypad and hold
// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keypad_digits_by_rfc4733_are_recognised_once() {
    let hotline = Hotline::start(|_| {});
    let run = hotline.sipp("dtmf_rfc4733").run().await;
    run.assert_success();
    let call_id = run.call_id();
    let api = hotline.supervisor().await;
    let call = api.ended_call(&call_id).await;
    assert_eq!(call["ended_by"], "caller");

    // Every RFC 4733 packet of a press (start, updates, three end packets) makes one digit.
    assert_eq!(
        hotline.digits(&call_id),
        ["2 by rfc4733", "1 by rfc4733", "# by rfc4733"]
    );
    let metrics = api.metrics().await;
    assert_eq!(
        metric(&metrics, r#"hotline_dtmf_digits_total{via="rfc4733"}"#),
        Some(3.0)
    );
    assert_eq!(
        metric(&metrics, r#"hotline_dtmf_digits_total{via="info"}"#),
        None
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keypad_digits_by_sip_info_are_recognised() {
    let hotline = Hotline::start(|_| {});
    let run = hotline.sipp("dtmf_info").run().await;
    run.assert_success();
    let call_id = run.call_id();
    let oks = run
        .received()
        .into_iter()
        .filter(|m| m.starts_with("SIP/2.0 200") && m.contains(" INFO\r\n"))
        .count();
    assert_eq!(oks, 2, "both INFOs answered 200");

    let api = hotline.supervisor().await;
    api.ended_call(&call_id).await;
    assert_eq!(hotline.digits(&call_id), ["5 by info", "# by info"]);
    let metrics = api.metrics().await;
    assert_eq!(
        metric(&metrics, r#"hotline_dtmf_digits_total{via="info"}"#),
        Some(2.0)
    );
    assert_eq!(
        metric(&metrics, r#"hotline_dtmf_digits_total{via="rfc4733"}"#),
        None
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn caller_puts_the_hotline_on_hold_and_back() {
    // The hold lasts longer than the no-RTP limit: a held call must not be torn down.
    let hotline = Hotline::start(|sip| sip.no_rtp_seconds = 2);
    let run = hotline.sipp("hold_unhold").pause_ms(3000).run().await;
    run.assert_success();
    let answers: Vec<String> = run
        .received()
        .into_iter()
        .filter(|m| m.starts_with("SIP/2.0 200") && m.contains(" INVITE\r\n"))
        .collect();
    assert_eq!(answers.len(), 3, "the call and two re-INVITEs answered");
    assert!(
        answers[1].contains("a=recvonly"),
        "hold answered recvonly: {}",
        answers[1]
    );
    assert!(
        answers[2].contains("a=sendrecv"),
        "unhold answered sendrecv: {}",
        answers[2]
    );
    let versions: Vec<u64> = answers.iter().map(|a| sdp_origin_version(a)).collect();
    assert!(
        versions[0] < versions[1] && versions[1] < versions[2],
        "each new answer has a new o= version: {versions:?}"
    );

    let call_id = run.call_id();
    let api = hotline.supervisor().await;
    let call = api.ended_call(&call_id).await;
    assert_eq!(call["ended_by"], "caller");
    assert_eq!(call["end_code"], 200);
    let duration = call["duration_ms"].as_i64().unwrap();
    assert!(duration > 3500, "held call lasted only {duration} ms");
    api.recording(&call).await.assert_lasts(duration);
    let changes: Vec<String> = hotline
        .log()
        .lines()
        .filter(|l| l.contains("session changed") && l.contains(&format!("call_id={call_id} ")))
        .map(|l| field(l, "hold").to_owned())
        .collect();
    assert_eq!(changes, ["true", "false"]);
}

// ---------------------------------------------------------------------------------------------
// Hostile and unwelcome traffic
// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_burst_does_not_disturb_the_next_call() {
    let mut hotline = Hotline::start(|_| {});
    let burst = hostile_datagrams(hotline.sip);
    let answered = send_burst(hotline.sip, &burst);
    for (i, (message, expect)) in burst.iter().enumerate() {
        let got = answered.get(&burst_call_id(i));
        match expect {
            Expect::BadRequest => assert_eq!(
                got.map(Vec::len),
                Some(1),
                "datagram {i} should get one 400: {}",
                preview(message)
            ),
            Expect::Silence => assert!(
                got.is_none(),
                "datagram {i} should get no answer: {}",
                preview(message)
            ),
        }
    }
    let replies: Vec<&String> = answered.values().flatten().collect();
    assert!(
        replies
            .iter()
            .all(|r| r.starts_with("SIP/2.0 400 Bad Request\r\n")),
        "{replies:?}"
    );
    let refusable = burst
        .iter()
        .filter(|(_, e)| *e == Expect::BadRequest)
        .count();
    assert_eq!(
        replies.len(),
        refusable,
        "one 400 for each refusable datagram"
    );
    hostile_tcp(hotline.tcp);

    let run = hotline.sipp("malformed_invite").run().await;
    run.assert_success();
    assert_eq!(run.received_statuses(), [400]);

    let call = hotline.sipp("caller_speaks").pause_ms(2000).run().await;
    call.assert_success();
    let api = hotline.supervisor().await;
    let record = api.ended_call(&call.call_id()).await;
    assert_eq!(record["ended_by"], "caller");
    assert_eq!(record["end_code"], 200);
    let recording = api.recording(&record).await;
    recording.assert_lasts(record["duration_ms"].as_i64().unwrap());
    assert!(rms(recording.caller(0.0, 2.0)) > 500.0);
    assert_greeting(&recording.hotline, "the hotline channel after the burst");

    let (_, page) = api.get("/api/v1/calls").await;
    assert_eq!(page["total"], 1, "only the good call is on record: {page}");
    let metrics = api.metrics().await;
    assert_eq!(
        metric(&metrics, r#"hotline_sip_malformed_total{answer="400"}"#),
        Some((replies.len() + 1) as f64),
        "every 400 the guard sent was received"
    );
    hotline.assert_alive();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_source_is_refused() {
    // The only trunk is 127.0.0.1; the caller comes from 127.0.0.2.
    let hotline = Hotline::start(|_| {});
    let run = hotline
        .sipp("refused")
        .calling_from("127.0.0.2")
        .run()
        .await;
    run.assert_success();
    assert_eq!(run.invite_final_status(), 403);
    let refused_id = run.call_id();
    assert!(hotline.log().contains(&format!(
        "call_id={refused_id} reason=\"source address is not on any trunk\""
    )));

    // A good call afterwards: once its record is written, any record of the refused one would be.
    let good = hotline.sipp("caller_speaks").pause_ms(300).run().await;
    good.assert_success();
    let api = hotline.supervisor().await;
    api.ended_call(&good.call_id()).await;
    let (_, page) = api.get("/api/v1/calls").await;
    let ids: Vec<&str> = page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["call_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, [good.call_id()], "no record of the refused call");
    let metrics = api.metrics().await;
    assert_eq!(
        metric(
            &metrics,
            r#"hotline_sip_refused_total{reason="source address is not on any trunk"}"#
        ),
        Some(1.0)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn desk_phone_authenticates_with_digest() {
    let hotline = Hotline::start(|sip| {
        sip.trunks = vec![Trunk {
            name: "desk",
            addresses: vec![],
            credentials: Some(("desk1", "s3cret-desk")),
        }]
    });
    // A wrong password: challenged, then refused; no call.
    let wrong = hotline
        .sipp("digest_auth")
        .args(["-au", "desk1", "-ap", "guess"])
        .run()
        .await;
    assert!(
        !wrong.status.success(),
        "a wrong password must not get through"
    );
    assert_eq!(wrong.received_statuses(), [401, 403]);
    assert!(
        wrong
            .received_status(401)
            .unwrap()
            .contains("WWW-Authenticate: Digest realm=\"hotline\"")
    );
    assert!(
        wrong
            .sent()
            .iter()
            .any(|m| m.starts_with("INVITE") && m.contains("Authorization: Digest"))
    );

    // The right one: challenged, admitted, answered.
    let right = hotline
        .sipp("digest_auth")
        .args(["-au", "desk1", "-ap", "s3cret-desk"])
        .run()
        .await;
    right.assert_success();
    assert_eq!(right.invite_final_status(), 200);

    let api = hotline.supervisor().await;
    let call = api.ended_call(&right.call_id()).await;
    assert_eq!(call["trunk"], "desk");
    assert_eq!(call["ended_by"], "caller");
    let (_, page) = api.get("/api/v1/calls").await;
    assert_eq!(
        page["total"], 1,
        "the refused attempt left no record: {page}"
    );
    assert!(hotline.log().contains("reason=\"wrong digest response\""));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_number_gets_404() {
    let hotline = Hotline::start(|_| {});
    let run = hotline.sipp("refused").dialing("99999").run().await;
    run.assert_success();
    assert_eq!(run.invite_final_status(), 404);

    let api = hotline.supervisor().await;
    let call = api.ended_call(&run.call_id()).await;
    assert_eq!(call["hotline"], Value::Null);
    assert_eq!(call["to_number"], "99999");
    assert_eq!(call["from_number"], CALLER);
    assert_eq!(call["ended_by"], "system");
    assert_eq!(call["end_code"], 404);
    assert_eq!(call["end_reason"], "number not in service");
    assert_eq!(call["answered_at"], Value::Null);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn full_system_answers_503_with_retry_after() {
    let hotline = Hotline::start(|sip| {
        sip.max_calls = 1;
        sip.retry_after_seconds = 7;
    });
    let api = hotline.supervisor().await;
    // The one line is taken by a call held in the background...
    let first = hotline.sipp("caller_speaks").pause_ms(3000).spawn();
    api.call_in_progress().await;
    // ...so the next caller is told to come back later.
    let second = hotline.sipp("refused").run().await;
    second.assert_success();
    assert_eq!(second.invite_final_status(), 503);
    let busy = second.received_status(503).unwrap();
    assert!(busy.contains("Retry-After: 7\r\n"), "{busy}");

    let first = first.finish().await;
    first.assert_success();
    let call = api.ended_call(&first.call_id()).await;
    assert_eq!(
        (call["ended_by"].as_str(), call["end_code"].as_i64()),
        (Some("caller"), Some(200))
    );
    let call = api.ended_call(&second.call_id()).await;
    assert_eq!(call["ended_by"], "system");
    assert_eq!(call["end_code"], 503);
    assert_eq!(call["end_reason"], "all lines busy");
    assert_eq!(call["answered_at"], Value::Null);
    assert_eq!(
        metric(&api.metrics().await, "hotline_calls_busy_total"),
        Some(1.0)
    );
    api.wait_for_metric("hotline_calls_active", 0.0).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unsupported_codec_gets_488() {
    let hotline = Hotline::start(|_| {});
    let run = hotline.sipp("unsupported_media").run().await;
    run.assert_success();
    assert_eq!(run.invite_final_status(), 488);
    assert!(
        run.received_status(488)
            .unwrap()
            .contains("Warning: 399 hotline")
    );

    let api = hotline.supervisor().await;
    let call = api.ended_call(&run.call_id()).await;
    assert_eq!(call["end_code"], 488);
    assert_eq!(call["end_reason"], "no acceptable media");
    assert_eq!(call["answered_at"], Value::Null);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sbc_keepalive_is_answered() {
    let hotline = Hotline::start(|_| {});
    let run = hotline.sipp("options_keepalive").run().await;
    run.assert_success();
    let ok = run.received_status(200).unwrap();
    assert!(
        ok.contains("Allow: INVITE, ACK, BYE, CANCEL, OPTIONS, INFO, UPDATE, PRACK"),
        "{ok}"
    );
    // A stranger's OPTIONS learns nothing.
    let stranger = hotline
        .sipp("options_keepalive")
        .calling_from("127.0.0.2")
        .run()
        .await;
    assert!(!stranger.status.success());
    assert_eq!(stranger.received_statuses(), [403]);
    let api = hotline.supervisor().await;
    let (_, page) = api.get("/api/v1/calls").await;
    assert_eq!(page["total"], 0, "keepalives are not calls");
}

// ---------------------------------------------------------------------------------------------
// Crash
// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn caller_over_tcp_is_answered() {
    let hotline = Hotline::start(|_| {});
    let run = hotline
        .sipp("caller_speaks")
        .pause_ms(1000)
        .args(["-t", "t1"])
        .run()
        .await;
    run.assert_success();
    // The Contact of the 200 says TCP, so the caller's in-dialog requests stay on TCP.
    let ok = run.received_status(200).expect("a 200 OK");
    let contact = ok
        .lines()
        .find(|l| l.to_ascii_lowercase().starts_with("contact:"))
        .unwrap_or_else(|| panic!("no Contact in {ok}"));
    assert!(
        contact.to_ascii_lowercase().contains("transport=tcp"),
        "{contact}"
    );
    let api = hotline.supervisor().await;
    let call = api.ended_call(&run.call_id()).await;
    assert_eq!(call["ended_by"], "caller");
    assert!(
        call["source"].as_str().unwrap_or("").starts_with("tcp:"),
        "{call}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sip_over_tls_is_answered() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let hotline = Hotline::start(|sip| sip.tls_port = Some(port));
    let request = format!(
        "OPTIONS sip:12319@127.0.0.1:{port};transport=tls SIP/2.0\r\n\
         Via: SIP/2.0/TLS 127.0.0.1:5999;branch=z9hG4bK-tls1\r\n\
         From: <sip:sbc@127.0.0.1>;tag=1\r\nTo: <sip:12319@127.0.0.1>\r\n\
         Call-ID: tls-keepalive@127.0.0.1\r\nCSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\n\
         Content-Length: 0\r\n\r\n"
    );
    // A real TLS client (openssl s_client) speaks the request and prints what comes back.
    let mut child = Command::new("openssl")
        .args([
            "s_client",
            "-quiet",
            "-connect",
            &format!("127.0.0.1:{port}"),
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("openssl must be installed");
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(request.as_bytes()).unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut status = String::new();
    let reader = std::thread::spawn(move || stdout.read_line(&mut status).map(|_| status));
    let deadline = Instant::now() + Duration::from_secs(10);
    while !reader.is_finished() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    drop(stdin);
    let _ = child.kill();
    let _ = child.wait();
    let status = reader.join().unwrap().unwrap_or_default();
    assert_eq!(status.trim(), "SIP/2.0 200 OK", "log:\n{}", hotline.log());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recording_survives_kill_9() {
    let mut hotline = Hotline::start(|_| {});
    let api = hotline.supervisor().await;
    let caller = hotline.sipp("caller_speaks").pause_ms(10_000).spawn();
    let call = api.call_in_progress().await;
    tokio::time::sleep(Duration::from_millis(2500)).await;
    hotline.kill_9();
    let caller = caller.kill().await;

    // Straight after the crash the file opens and plays at least to its last full second.
    let path = hotline
        .data()
        .join(call["recording_path"].as_str().unwrap());
    let written = std::fs::metadata(&path).unwrap().len();
    let written_samples = (written - 44) / 4;
    assert!(
        (2 * 8000..3 * 8000 + 4000).contains(&written_samples),
        "about 2.5 s written before the kill, found {written_samples} samples"
    );
    let crashed = Recording::parse(&std::fs::read(&path).unwrap());
    let full_seconds = written_samples / 8000 * 8000;
    assert!(
        crashed.samples() as u64 >= full_seconds,
        "after kill -9 the file plays {} samples, less than its last full second ({full_seconds})",
        crashed.samples()
    );
    assert!(
        rms(crashed.caller(0.0, 2.0)) > 500.0,
        "the caller's speech is in the crashed file"
    );

    // Restarted on the same data: the header is repaired to everything written, the call closed.
    hotline.restart();
    let api = hotline.supervisor().await;
    let (status, record) = api.get(&format!("/api/v1/calls/{}", call["id"])).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(record["call_id"], caller.call_id());
    assert!(record["ended_at"].is_string(), "{record}");
    assert_eq!(record["ended_by"], "system");
    assert_eq!(record["end_reason"], "node restarted");
    assert_eq!(record["end_code"], Value::Null);
    let repaired = api.recording(&record).await;
    let diff = repaired.samples() as i64 - written_samples as i64;
    assert!(
        diff.abs() <= 160,
        "repaired to {} samples, {written_samples} were written",
        repaired.samples()
    );
    assert!(hotline.log().contains("recording repaired after a crash"));
    assert!(rms(repaired.caller(0.0, 2.0)) > 500.0);
    assert_greeting(
        &repaired.hotline,
        "the hotline channel of the repaired file",
    );
}

// =============================================================================================
// Hostile traffic
// =============================================================================================

#[derive(Debug, Clone, Copy, PartialEq)]
enum Expect {
    /// The guard answers `400 Bad Request`.
    BadRequest,
    /// Not answerable (no Call-ID, not text): dropped without a word.
    Silence,
}

fn burst_call_id(i: usize) -> String {
    format!("burst-{i}@192.0.2.66")
}

/// A well-formed INVITE from the burst's own socket; Content-Length comes before the other
/// headers so that every cut after it leaves a message that is still answerable.
fn invite(call_id: &str, from: SocketAddr, to: SocketAddr, cseq: &str, extra: &str) -> String {
    let sdp = "v=0\r\no=x 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 9 RTP/AVP 8\r\na=rtpmap:8 PCMA/8000\r\n";
    format!(
        "INVITE sip:12319@{to} SIP/2.0\r\nContent-Length: {len}\r\nVia: SIP/2.0/UDP {from};branch=z9hG4bK-{call_id}\r\n\
         From: <sip:13900009999@{from}>;tag=burst\r\nTo: <sip:12319@{to}>\r\nCall-ID: {call_id}\r\nCSeq: {cseq}\r\n\
         Max-Forwards: 70\r\n{extra}Contact: <sip:13900009999@{from}>\r\nContent-Type: application/sdp\r\n\r\n{sdp}",
        len = sdp.len()
    )
}

/// About 300 hostile datagrams, each with what the hotline must do about it.
fn hostile_datagrams(to: SocketAddr) -> Vec<(Vec<u8>, Expect)> {
    // The burst is sent from a socket bound later; the Via names a placeholder port (responses
    // go to the datagram's source anyway).
    let from: SocketAddr = "127.0.0.1:9".parse().unwrap();
    let mut out: Vec<(Vec<u8>, Expect)> = Vec::new();
    let mut rng = 0x2545_f491_4f6c_dd1du64;
    let mut next = move || {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng
    };
    let id = |out: &Vec<(Vec<u8>, Expect)>| burst_call_id(out.len());
    for _ in 0..60 {
        // Random bytes, binary or printable: nothing to answer.
        let len = 1 + (next() % 1400) as usize;
        let printable = next() % 2 == 0;
        let bytes: Vec<u8> = (0..len)
            .map(|_| {
                let b = next() as u8;
                if printable { b' ' + b % 94 } else { b }
            })
            .collect();
        out.push((bytes, Expect::Silence));
    }
    for k in 0..80 {
        // An INVITE cut short anywhere after its Content-Length line.
        let full = invite(&id(&out), from, to, "1 INVITE", "");
        let keep_from = full.find("Via:").unwrap();
        let cut = keep_from + (full.len() - keep_from - 1) * (k + 1) / 81;
        let mut bytes = full.into_bytes();
        bytes.truncate(cut);
        // Answerable once the cut leaves a CSeq line (Via, From, To and Call-ID come before it).
        let expect = if String::from_utf8_lossy(&bytes).contains("\r\nCSeq:") {
            Expect::BadRequest
        } else {
            Expect::Silence
        };
        out.push((bytes, expect));
    }
    for _ in 0..30 {
        // A body promised but not sent.
        let msg = with_content_length(&invite(&id(&out), from, to, "1 INVITE", ""), 9999);
        out.push((msg.into_bytes(), Expect::BadRequest));
    }
    for _ in 0..30 {
        // No Call-ID: a response could not be matched, so none is sent.
        let call_id = id(&out);
        let msg = invite(&call_id, from, to, "1 INVITE", "")
            .replace(&format!("Call-ID: {call_id}\r\n"), "");
        out.push((msg.into_bytes(), Expect::Silence));
    }
    for n in 0..40 {
        // Valid-looking requests with a bad CSeq.
        let cseq = [
            "one INVITE",
            "1 BYE",
            "-5 INVITE",
            "1",
            "99999999999 INVITE",
            "1 INVITE extra",
            "0x10 INVITE",
            "1 invite",
        ];
        let msg = invite(&id(&out), from, to, cseq[n % cseq.len()], "");
        out.push((msg.into_bytes(), Expect::BadRequest));
    }
    for _ in 0..20 {
        // NUL bytes in the From header.
        let msg =
            invite(&id(&out), from, to, "1 INVITE", "").replace(";tag=burst", ";tag=bu\0\0rst");
        out.push((msg.into_bytes(), Expect::BadRequest));
    }
    for _ in 0..10 {
        // NUL bytes alone.
        out.push((vec![0u8; 1 + (next() % 1000) as usize], Expect::Silence));
    }
    for _ in 0..20 {
        // A 60 KB header line: far more than any SIP request over UDP.
        let padding = format!("X-Padding: {}\r\n", "a".repeat(60_000));
        let msg = invite(&id(&out), from, to, "1 INVITE", &padding);
        out.push((msg.into_bytes(), Expect::BadRequest));
    }
    for boundary in [1024, 1500, 2048, 4096, 8192, 16_384, 32_768] {
        // A 60 KB INVITE whose headers end exactly at a buffer-sized offset: a receiver that cut
        // the datagram there would see a complete INVITE without its offer, and answer it.
        let call_id = id(&out);
        let full = invite(&call_id, from, to, "1 INVITE", "");
        let head: String = full
            .split("\r\n\r\n")
            .next()
            .unwrap()
            .lines()
            .filter(|l| !l.starts_with("Content-Length:"))
            .map(|l| format!("{l}\r\n"))
            .collect();
        let padding = boundary - head.len() - "X-Padding: \r\n\r\n".len();
        let mut msg = format!("{head}X-Padding: {}\r\n\r\n", "p".repeat(padding));
        assert_eq!(msg.len(), boundary);
        msg.push_str("v=0\r\no=x 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 9 RTP/AVP 8\r\n");
        msg.push_str(&format!("a=x-junk:{}\r\n", "j".repeat(60_000 - msg.len())));
        out.push((msg.into_bytes(), Expect::BadRequest));
    }
    out
}

/// The message with another Content-Length value.
fn with_content_length(msg: &str, len: usize) -> String {
    let start = msg.find("Content-Length: ").unwrap() + "Content-Length: ".len();
    let end = start + msg[start..].find('\r').unwrap();
    format!("{}{len}{}", &msg[..start], &msg[end..])
}

fn preview(message: &[u8]) -> String {
    String::from_utf8_lossy(&message[..message.len().min(300)]).into_owned()
}

/// Sends the burst from one socket and collects the replies by Call-ID.
fn send_burst(
    to: SocketAddr,
    burst: &[(Vec<u8>, Expect)],
) -> std::collections::HashMap<String, Vec<String>> {
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    socket
        .set_read_timeout(Some(Duration::from_millis(50)))
        .unwrap();
    let mut replies: std::collections::HashMap<String, Vec<String>> =
        std::collections::HashMap::new();
    let mut buf = vec![0u8; 65_536];
    let mut drain =
        |socket: &UdpSocket, replies: &mut std::collections::HashMap<String, Vec<String>>| {
            while let Ok(n) = socket.recv(&mut buf) {
                let text = String::from_utf8_lossy(&buf[..n]).into_owned();
                let call_id = text
                    .lines()
                    .find_map(|l| l.strip_prefix("Call-ID: "))
                    .unwrap_or("(none)")
                    .to_owned();
                replies.entry(call_id).or_default().push(text);
            }
        };
    for (i, (message, _)) in burst.iter().enumerate() {
        socket.send_to(message, to).unwrap();
        if i % 50 == 49 {
            drain(&socket, &mut replies);
        }
    }
    // The stragglers: stop when nothing came for a while.
    socket
        .set_read_timeout(Some(Duration::from_millis(500)))
        .unwrap();
    drain(&socket, &mut replies);
    replies
}

/// A few TCP connections that send garbage and hang up.
fn hostile_tcp(to: SocketAddr) {
    let junk: [&[u8]; 4] = [
        b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03 definitely not SIP\r\n\r\n",
        b"INVITE sip:12319@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/TCP 127.0.0.1:9\r\nContent-Length: 9999\r\n\r\nv=0",
        &[0u8; 4096],
        b"OPTIONS sip:x SIP/2.0\r\nX: \xff\xfe\r\n\r\n",
    ];
    for bytes in junk {
        let mut stream = TcpStream::connect(to).unwrap();
        let _ = stream.write_all(bytes);
        let _ = stream.shutdown(std::net::Shutdown::Write);
        stream
            .set_read_timeout(Some(Duration::from_millis(200)))
            .unwrap();
        let mut ignored = Vec::new();
        let _ = stream.read_to_end(&mut ignored);
    }
    let mut big = TcpStream::connect(to).unwrap();
    let _ = big.write_all(
        format!(
            "INVITE sip:12319@x SIP/2.0\r\nX-Padding: {}\r\n",
            "b".repeat(60_000)
        )
        .as_bytes(),
    );
    drop(big);
}
