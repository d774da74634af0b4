//! Transcription end to end: a caller leaves a spoken message over SIP (SIPp playing espeak-ng
//! speech through the telephone band), the service — started without a model — says that
//! transcription is off and queues the voicemail (the call left nothing else to transcribe);
//! once the model is imported the backlog is transcribed with the real whisper model, the
//! voicemail's transcript becomes its ticket's content and answers for the call, served as JSON
//! and SRT and found by search. And a call an agent answered (a SIPp desk phone that speaks) is
//! transcribed per side of its stereo recording, in the language the caller chose.

mod common;

use std::io::BufRead as _;
use std::time::{Duration, Instant};

use common::sip::{End, Hotline, Step, free_udp_port, intake_queue, speech_pcap};
use reqwest::StatusCode;
use transcribe::model::Quantize;
use transcribe::testing;

/// Whisper on the test machine's two cores, shared with the other tests: a cold model load and
/// one recording.
const TRANSCRIPT_TIMEOUT: Duration = Duration::from_secs(600);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_voicemail_is_transcribed_into_its_ticket_once_a_model_is_imported() {
    let utterance = testing::corpus()
        .into_iter()
        .find(|u| u.id == "en02")
        .unwrap();
    let wav = testing::telephone_wav(&utterance).unwrap();
    // Prepared before the service starts: the model import is the slow part on a fresh machine.
    let model = testing::base_model(Quantize::Q8_0);

    let mut hotline = Hotline::start(|sip| {
        sip.tone_prompts = true;
        sip.closed_today = true;
        sip.extra =
            "[transcription]\nworkers = 1\nthreads = 2\nbeam = 1\nmodel_check_seconds = 1\n".into();
    });
    // The console says transcription is off and how to turn it on.
    let mut line = String::new();
    hotline
        ._stdout
        .as_mut()
        .unwrap()
        .read_line(&mut line)
        .unwrap();
    assert!(
        line.starts_with("transcription off until a model is there")
            && line.contains("hotline model import"),
        "{line:?}"
    );

    let pcap = hotline.dir.path().join("speech.pcap");
    let speech = speech_pcap(&wav, &pcap);
    // Language 2 (English), closed: after_hours, leave_message, beep; then the message.
    let steps = [
        Step::Pause(700),
        Step::Key('2'),
        Step::Pause(1100),
        Step::Play(pcap),
        Step::Pause(speech.as_millis() as u64 + 1200),
    ];
    let run = hotline.ivr_call(&steps, End::CallerHangsUp).run().await;
    run.assert_success();
    let call_id = run.call_id();

    let supervisor = hotline.supervisor().await;
    let agent = hotline.agent().await;
    let call = supervisor.ended_call(&call_id).await;
    let id = call["id"].as_i64().unwrap();
    let ticket = wait_for(&agent, "the voicemail's ticket", |agent| async move {
        let (_, page) = agent.get("/api/v1/tickets").await;
        page["items"].as_array().and_then(|i| i.first()).cloned()
    })
    .await;
    let number = ticket["number"].as_str().unwrap().to_owned();
    let (_, ticket) = agent.get(&format!("/api/v1/tickets/{number}")).await;
    assert!(
        ticket["content"].as_str().unwrap().contains("电话留言"),
        "{ticket}"
    );

    // No model: the recordings wait in the queue, and the API says so.
    let (status, problem) = agent.get(&format!("/api/v1/calls/{id}/transcript")).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{problem}");
    assert_eq!(problem["code"], "transcript_pending", "{problem}");
    let (status, state) = supervisor.get("/api/v1/transcription").await;
    assert_eq!(status, StatusCode::OK, "{state}");
    assert!(state["model"].is_null(), "{state}");
    assert!(
        state["hint"]
            .as_str()
            .unwrap()
            .contains("hotline model import"),
        "{state}"
    );
    assert_eq!(
        state["backlog"]["queued"], 1,
        "the voicemail only: the call's own recording repeats it, so it is not queued: {state}"
    );
    assert!(
        hotline.log().contains("transcription is off"),
        "the log says it too"
    );

    // The model arrives (as `hotline model import` leaves it); the backlog is worked off.
    let models = hotline.data().join("models");
    std::fs::create_dir_all(&models).unwrap();
    std::os::unix::fs::symlink(&model, models.join("whisper-base-q8_0.bin")).unwrap();
    let content = wait_for(&agent, "the transcript in the ticket", |agent| {
        let number = number.clone();
        async move {
            let (_, t) = agent.get(&format!("/api/v1/tickets/{number}")).await;
            let content = t["content"].as_str()?.to_owned();
            (!content.contains("电话留言")).then_some(content)
        }
    })
    .await;
    let lower = content.to_lowercase();
    assert!(
        lower.contains("street light") || lower.contains("streetlight"),
        "the citizen's words are the ticket's content: {content:?}"
    );
    let cer = transcribe::cer::char_error_rate(&utterance.text, &content);
    assert!(cer < 0.3, "CER {cer:.2}: {content:?}");

    // The ticket's trail keeps the placeholder: a 补充 by 语音转写.
    let (_, events) = agent.get(&format!("/api/v1/tickets/{number}/events")).await;
    let last = events.as_array().unwrap().last().unwrap().clone();
    assert_eq!(last["actor_name"], "语音转写", "{events}");

    // The voicemail is the ticket's transcript, all the caller's.
    let (status, mine) = agent
        .get(&format!("/api/v1/tickets/{number}/transcripts"))
        .await;
    assert_eq!(status, StatusCode::OK, "{mine}");
    let voicemail = mine
        .as_array()
        .unwrap()
        .iter()
        .find(|t| {
            t["recording_path"]
                .as_str()
                .unwrap()
                .starts_with("messages/")
        })
        .unwrap_or_else(|| panic!("no voicemail transcript: {mine}"))
        .clone();
    assert_eq!(voicemail["language"], "en", "the caller chose English");
    assert!(
        voicemail["segments"]
            .as_array()
            .unwrap()
            .iter()
            .all(|s| s["speaker"] == "caller"),
        "{voicemail}"
    );

    // The call left only a message: its transcript is the voicemail's.
    let transcript = wait_for(&agent, "the call's transcript", |agent| async move {
        let (status, t) = agent.get(&format!("/api/v1/calls/{id}/transcript")).await;
        (status == StatusCode::OK).then_some(t)
    })
    .await;
    assert_eq!(transcript["call_id"], id);
    assert_eq!(
        transcript["recording_path"], voicemail["recording_path"],
        "{transcript}"
    );
    assert_ne!(transcript["recording_path"], call["recording_path"]);
    assert!(transcript["duration_ms"].as_i64().unwrap() + 1000 > speech.as_millis() as i64);
    let segments = transcript["segments"].as_array().unwrap();
    assert!(
        segments.iter().any(|s| s["speaker"] == "caller"),
        "{transcript}"
    );
    let starts: Vec<i64> = segments
        .iter()
        .map(|s| s["start_ms"].as_i64().unwrap())
        .collect();
    assert!(starts.is_sorted(), "one timeline: {starts:?}");

    let srt = agent
        .fetch(&format!("/api/v1/calls/{id}/transcript?format=srt"), &[])
        .await;
    assert_eq!(srt.status(), StatusCode::OK);
    assert!(
        srt.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/x-subrip")
    );
    assert_eq!(srt.headers()["cache-control"], "no-store");
    let srt = srt.text().await.unwrap();
    assert!(srt.starts_with("1\n") && srt.contains(" --> "), "{srt}");
    assert!(srt.contains("市民"), "the speaker is named: {srt}");

    // Search finds the voicemail by what was said, with its ticket.
    let (status, hits) = agent.get("/api/v1/transcripts?q=light").await;
    assert_eq!(status, StatusCode::OK, "{hits}");
    let hit = hits
        .as_array()
        .unwrap()
        .iter()
        .find(|h| h["ticket_number"] == number.as_str())
        .unwrap_or_else(|| panic!("no hit with ticket {number}: {hits}"));
    assert!(
        hit["snippet"]
            .as_str()
            .unwrap()
            .to_lowercase()
            .contains("light"),
        "{hit}"
    );
    let (status, problem) = agent.get("/api/v1/transcripts?q=%20").await;
    assert_eq!(
        (status, problem["code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("empty_query"))
    );

    // The queue is empty; the one job is done.
    let (_, state) = supervisor.get("/api/v1/transcription").await;
    assert!(
        state["model"]
            .as_str()
            .unwrap()
            .ends_with("whisper-base-q8_0.bin"),
        "{state}"
    );
    assert_eq!(state["backlog"]["done"], 1, "{state}");
    assert_eq!(state["backlog"]["queued"], 0, "{state}");
    // Agents may not run the queue.
    let (status, _) = agent.get("/api/v1/transcription").await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let metrics = reqwest::get(format!("{}/metrics", hotline.http))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("hotline_transcriptions_total{result=\"done\"} 1"),
        "{metrics}"
    );
    assert!(metrics.contains("hotline_transcription_jobs{state=\"done\"} 1"));

    // An operator transcribes the voicemail again; the job runs once more.
    let job = voicemail["job_id"].as_i64().unwrap();
    let (status, again) = supervisor
        .post(
            &format!("/api/v1/transcription/jobs/{job}/retry"),
            serde_json::json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{again}");
    assert_eq!(again["attempts"], 0);
    let (status, problem) = supervisor
        .post(
            "/api/v1/transcription/jobs/999999/retry",
            serde_json::json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{problem}");
    hotline.assert_alive();
}

/// A caller who chose English in the IVR talks with an agent's desk phone; the stereo recording
/// is transcribed side by side — the caller's words on the caller's channel, the agent's on the
/// hotline's, in English because the IVR spoke English, in one timeline.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_with_an_agent_is_transcribed_per_side_in_the_callers_language() {
    let said = |id: &str| {
        let u = testing::corpus().into_iter().find(|u| u.id == id).unwrap();
        let wav = testing::telephone_wav(&u).unwrap();
        (u, wav)
    };
    let (caller_says, caller_wav) = said("en02");
    let (agent_says, agent_wav) = said("en04");
    let model = testing::base_model(Quantize::Q8_0);

    let mut hotline = Hotline::start(|sip| {
        sip.tone_prompts = true;
        sip.queues = Some(intake_queue(20, "callback"));
        sip.extra =
            "[transcription]\nworkers = 1\nthreads = 2\nbeam = 1\nmodel_check_seconds = 1\n".into();
    });
    let models = hotline.data().join("models");
    std::fs::create_dir_all(&models).unwrap();
    std::os::unix::fs::symlink(&model, models.join("whisper-base-q8_0.bin")).unwrap();

    let caller_pcap = hotline.dir.path().join("caller.pcap");
    let caller_len = speech_pcap(&caller_wav, &caller_pcap).as_millis() as u64;
    let agent_pcap = hotline.dir.path().join("agent.pcap");
    let agent_len = speech_pcap(&agent_wav, &agent_pcap).as_millis() as u64;
    // The agent answers about 2 s into the call and lets the caller speak first (from ~3 s).
    let port = free_udp_port("127.0.0.1".parse().unwrap());
    let phone = hotline
        .agent_phone_saying(&agent_pcap, caller_len + 2_000)
        .on_port(port)
        .spawn();
    let agent = hotline.agent().await;
    let (status, view) = agent
        .post(
            "/api/v1/agents/me/state",
            serde_json::json!({"state": "ready", "contact": format!("sip:agent@127.0.0.1:{port}"), "languages": ["en"]}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{view}");

    // English (2), report a problem (1): the queue rings the agent's phone.
    let steps = [
        Step::Pause(700),
        Step::Key('2'),
        Step::Pause(500),
        Step::Key('1'),
        Step::Pause(1500),
        Step::Play(caller_pcap),
        Step::Pause(caller_len + 2_000 + agent_len + 1_500),
    ];
    let run = hotline.ivr_call(&steps, End::CallerHangsUp).run().await;
    run.assert_success();
    let phone = phone.finish().await;
    phone.assert_success();

    let supervisor = hotline.supervisor().await;
    let call = supervisor.ended_call(&run.call_id()).await;
    assert_eq!(call["language"], "en", "{call}");
    let id = call["id"].as_i64().unwrap();
    let transcript = wait_for(&supervisor, "the call's transcript", |api| async move {
        let (status, t) = api.get(&format!("/api/v1/calls/{id}/transcript")).await;
        (status == StatusCode::OK).then_some(t)
    })
    .await;
    assert_eq!(transcript["recording_path"], call["recording_path"]);
    assert_eq!(transcript["language"], "en", "{transcript}");
    let segments = transcript["segments"].as_array().unwrap();
    let side = |speaker: &str| -> (String, Vec<i64>) {
        let mine: Vec<&serde_json::Value> = segments
            .iter()
            .filter(|s| s["speaker"] == speaker)
            .collect();
        let text = mine
            .iter()
            .map(|s| s["text"].as_str().unwrap())
            .collect::<Vec<_>>()
            .join(" ");
        let starts = mine
            .iter()
            .map(|s| s["start_ms"].as_i64().unwrap())
            .collect();
        (text, starts)
    };
    let (caller_text, caller_starts) = side("caller");
    let (hotline_text, hotline_starts) = side("hotline");
    let (caller_lower, hotline_lower) = (caller_text.to_lowercase(), hotline_text.to_lowercase());
    assert!(
        caller_lower.contains("street light") || caller_lower.contains("streetlight"),
        "the caller's words on the caller's side: {transcript}"
    );
    assert!(
        hotline_lower.contains("truck"),
        "the agent's words on the hotline's side: {transcript}"
    );
    assert!(
        !caller_lower.contains("truck") && !hotline_lower.contains("light"),
        "each side only hears its own channel: {transcript}"
    );
    for (text, reference) in [(&caller_text, &caller_says), (&hotline_text, &agent_says)] {
        let cer = transcribe::cer::char_error_rate(&reference.text, text);
        assert!(cer < 0.3, "CER {cer:.2}: {text:?} for {:?}", reference.text);
    }
    // One timeline: the caller spoke first, the agent answered after.
    let starts: Vec<i64> = segments
        .iter()
        .map(|s| s["start_ms"].as_i64().unwrap())
        .collect();
    assert!(starts.is_sorted(), "one timeline: {starts:?}");
    let agent_spoke = segments
        .iter()
        .find(|s| {
            s["speaker"] == "hotline"
                && s["text"].as_str().unwrap().to_lowercase().contains("truck")
        })
        .unwrap()["start_ms"]
        .as_i64()
        .unwrap();
    let caller_spoke = caller_starts[0];
    assert!(
        caller_spoke < agent_spoke,
        "the caller spoke before the agent: caller {caller_starts:?}, agent {hotline_starts:?}"
    );
    // The hotline side opened with the IVR's tone prompts: tones are not speech, so nothing
    // was written for them and the agent's words carry the agent's time.
    assert!(
        hotline_starts.iter().all(|&t| t > caller_spoke),
        "text for the IVR's tones: {transcript}"
    );
    let srt = supervisor
        .fetch(&format!("/api/v1/calls/{id}/transcript?format=srt"), &[])
        .await
        .text()
        .await
        .unwrap();
    assert!(
        srt.contains("市民") && srt.contains("话务员"),
        "both speakers named: {srt}"
    );
    hotline.assert_alive();
}

/// Polls `probe` until it gives a value.
async fn wait_for<'a, F, Fut, T>(api: &'a common::Api, what: &str, probe: F) -> T
where
    F: Fn(&'a common::Api) -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + TRANSCRIPT_TIMEOUT;
    loop {
        if let Some(v) = probe(api).await {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "{what}: nothing after {TRANSCRIPT_TIMEOUT:?}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}
