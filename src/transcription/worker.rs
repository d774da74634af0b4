//! The service's transcription: every finished recording is queued ([`Queue`]) as a job row, and
//! this node's workers ([`start`]) claim jobs, transcribe the file on a thread of their own at a
//! low priority, and store the transcript — or the failure, which the store retries with backoff.
//!
//! The database is the queue, so jobs survive restarts and several nodes share them (each claim is
//! a lease, kept alive while the file is decoded). Without a model the service runs all the same:
//! it says so once, keeps queueing, looks for a model every few seconds, and works through the
//! backlog once one is imported.

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use jiff::Timestamp;
use serde::Serialize;
use ticketing::Store;
use ticketing::calls::recording_file;
use ticketing::transcripts::{
    JobState, NewSegment, NewTranscript, NewTranscriptionJob, Speaker, TranscriptionBacklog,
    TranscriptionJob,
};
use tokio::sync::{Notify, oneshot};
use tracing::Instrument as _;
use transcribe::engine::{Engine, Language};
use transcribe::recording::{Outcome, TranscribeError};
use utoipa::ToSchema;

use super::TranscriptionConfig;

/// How long a claim lasts before another worker may take the job over; renewed every quarter of
/// it while the file is being decoded.
const LEASE: Duration = Duration::from_secs(120);

/// How often an idle worker looks for jobs another node queued (its own node wakes it at once).
const IDLE_POLL: Duration = Duration::from_secs(5);

/// How long to wait after the database failed to answer.
const DATABASE_RETRY: Duration = Duration::from_secs(5);

/// Where recordings enter the transcription queue. Cheap to clone.
#[derive(Clone)]
pub struct Queue {
    store: Store,
    wake: Arc<Notify>,
}

impl Queue {
    /// A queue on `store`; its workers are woken by `enqueue`.
    pub fn new(store: Store) -> Queue {
        Queue {
            store,
            wake: Arc::new(Notify::new()),
        }
    }

    /// Queues a recording (idempotent on its path) and wakes a worker.
    pub async fn enqueue(
        &self,
        job: &NewTranscriptionJob,
    ) -> Result<i64, ticketing::store::StoreError> {
        let id = self
            .store
            .enqueue_transcription(job, Timestamp::now())
            .await?;
        self.wake.notify_one();
        Ok(id)
    }

    /// Queues the voicemails left and the calls that ended in the last `days` days without a
    /// job, and wakes the workers. Voicemails first: a call that left one is not queued itself.
    pub async fn backfill(&self, days: u32) -> Result<u64, ticketing::store::StoreError> {
        let now = Timestamp::now();
        let since = now
            .checked_sub(jiff::SignedDuration::from_hours(24 * i64::from(days)))
            .unwrap_or(Timestamp::UNIX_EPOCH);
        let voicemails = self
            .store
            .enqueue_untranscribed_voicemails(since, now)
            .await?;
        let calls = self.store.enqueue_untranscribed_calls(since, now).await?;
        if voicemails > 0 || calls > 0 {
            tracing::info!(
                voicemails,
                calls,
                "queued the voicemails and recordings of ended calls that had no transcription job"
            );
        }
        let queued = voicemails + calls;
        if queued > 0 {
            self.wake.notify_waiters();
        }
        Ok(queued)
    }
}

/// What the API tells about this node's transcription (`GET /api/v1/transcription`).
#[derive(Debug, Clone, Default, Serialize, ToSchema)]
pub struct Status {
    /// Recordings are queued for transcription.
    pub enabled: bool,
    /// Workers on this node (0: other nodes transcribe).
    pub workers: u16,
    /// Threads per worker.
    pub threads: u16,
    /// The language decoded when the call does not say.
    pub language: String,
    /// The model file loaded; `None` while there is none (transcription waits for one).
    pub model: Option<String>,
    /// What to do when there is no model.
    pub hint: Option<String>,
    /// Jobs per state, across all nodes.
    pub backlog: TranscriptionBacklog,
}

/// This node's transcription, as the API reads it.
#[derive(Clone, Default)]
pub struct Handle {
    status: Arc<RwLock<Status>>,
}

impl Handle {
    /// The current status; its backlog is left for the caller to read from the store.
    pub fn status(&self) -> Status {
        self.status
            .read()
            .map(|s| s.clone())
            .unwrap_or_else(|e| e.into_inner().clone())
    }

    fn update(&self, f: impl FnOnce(&mut Status)) {
        let mut guard = self.status.write().unwrap_or_else(|e| e.into_inner());
        f(&mut guard);
    }
}

/// What every worker of this node shares.
struct Context {
    store: Store,
    wake: Arc<Notify>,
    data_dir: PathBuf,
    config: TranscriptionConfig,
    words: Vec<String>,
    node: String,
}

/// Starts this node's transcription: queues the backlog of voicemails and calls without a job,
/// then (with `workers` > 0) loads the model — or waits for one, saying so in the log — and runs
/// the workers. Returns at once; the work goes on in tasks.
pub fn start(
    queue: &Queue,
    config: TranscriptionConfig,
    data_dir: &Path,
    words: Vec<String>,
    node: String,
) -> Handle {
    let handle = Handle::default();
    handle.update(|s| {
        s.enabled = config.enabled;
        s.workers = if config.enabled { config.workers } else { 0 };
        s.threads = config.threads;
        s.language = config.language.clone();
    });
    if !config.enabled {
        tracing::info!("transcription is off (transcription.enabled = false)");
        return handle;
    }
    let backfill = queue.clone();
    let days = config.backfill_days;
    tokio::spawn(async move {
        if let Err(e) = backfill.backfill(days).await {
            tracing::error!(error = %e, "cannot queue untranscribed voicemails and calls");
        }
    });
    if config.workers == 0 {
        tracing::info!("transcription: recordings are queued; other nodes transcribe them");
        return handle;
    }
    let ctx = Arc::new(Context {
        store: queue.store.clone(),
        wake: queue.wake.clone(),
        data_dir: data_dir.to_path_buf(),
        config,
        words,
        node,
    });
    let status = handle.clone();
    tokio::spawn(async move {
        let Some((engine, name)) = load_model(&ctx, &status).await else {
            return;
        };
        status.update(|s| {
            s.model = Some(engine.path().display().to_string());
            s.hint = None;
        });
        metrics::gauge!("hotline_transcription_model_loaded").set(1.0);
        tracing::info!(
            model = %engine.path().display(),
            workers = ctx.config.workers,
            threads = ctx.config.threads,
            "transcription on"
        );
        let name = Arc::new(name);
        for n in 1..=ctx.config.workers {
            tokio::spawn(run_worker(
                ctx.clone(),
                engine.clone(),
                name.clone(),
                format!("{}/{n}", ctx.node),
            ));
        }
    });
    handle
}

/// Whether a model is there to load now (for the console line at start).
pub fn model_available(config: &TranscriptionConfig, data_dir: &Path) -> bool {
    !config.enabled
        || config.workers == 0
        || super::resolve_model(config.model.clone(), data_dir).is_ok_and(|p| p.is_file())
}

/// Loads the configured or default model, waiting (and saying so once) until there is one.
/// `None` only if the runtime is shutting down.
async fn load_model(ctx: &Context, status: &Handle) -> Option<(Arc<Engine>, String)> {
    let models = super::models_dir(&ctx.data_dir);
    let mut told: Option<String> = None;
    loop {
        let found = match &ctx.config.model {
            Some(path) => Some(path.clone()).filter(|p| p.is_file()),
            None => transcribe::model::default_model(&models),
        };
        let problem = match found {
            Some(path) => {
                let p = path.clone();
                match tokio::task::spawn_blocking(move || Engine::load(&p)).await {
                    Ok(Ok(engine)) => {
                        let name = model_name(&path);
                        return Some((Arc::new(engine), name));
                    }
                    Ok(Err(e)) => e.to_string(),
                    Err(_) => return None,
                }
            }
            None => match &ctx.config.model {
                Some(path) => format!("transcription.model {} does not exist", path.display()),
                None => super::no_model_hint(&models),
            },
        };
        if told.as_deref() != Some(problem.as_str()) {
            tracing::warn!(
                "transcription is off: {problem}; recordings are queued and will be transcribed once a model is there"
            );
            status.update(|s| {
                s.model = None;
                s.hint = Some(problem.clone());
            });
            metrics::gauge!("hotline_transcription_model_loaded").set(0.0);
            told = Some(problem);
        }
        tokio::time::sleep(Duration::from_secs(ctx.config.model_check_seconds)).await;
    }
}

/// The model's name in transcripts: its manifest's name, else the file's stem.
fn model_name(path: &Path) -> String {
    let stem = path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "whisper".into());
    path.parent()
        .and_then(|dir| transcribe::model::list(dir).ok())
        .and_then(|models| models.into_iter().find(|m| m.path == path))
        .map_or(stem, |m| m.name)
}

/// One worker: claims the job due longest, transcribes it, stores the outcome; sleeps until
/// woken (a recording queued on this node) or the idle poll when there is nothing to do.
async fn run_worker(ctx: Arc<Context>, engine: Arc<Engine>, model: Arc<String>, worker: String) {
    loop {
        let claimed = ctx
            .store
            .claim_transcription(&worker, Timestamp::now(), LEASE)
            .await;
        match claimed {
            Ok(Some(job)) => {
                let span = tracing::info_span!("transcription", job = job.id, path = %job.recording_path, attempt = job.attempts);
                process(&ctx, &engine, &model, &worker, job)
                    .instrument(span)
                    .await;
            }
            Ok(None) => {
                tokio::select! {
                    () = ctx.wake.notified() => {}
                    () = tokio::time::sleep(IDLE_POLL) => {}
                }
            }
            Err(e) => {
                tracing::error!(%worker, error = %e, "cannot claim a transcription job");
                tokio::time::sleep(DATABASE_RETRY).await;
            }
        }
    }
}

/// Transcribes one claimed job and records the outcome.
async fn process(
    ctx: &Context,
    engine: &Arc<Engine>,
    model: &str,
    worker: &str,
    job: TranscriptionJob,
) {
    let outcome = match recording_file(&ctx.data_dir, &job.recording_path) {
        Ok(path) => decode_holding_lease(ctx, engine, &job, path).await,
        Err(e) => Err(format!("refused: {e}")),
    };
    let now = Timestamp::now();
    let result = match outcome {
        Ok(outcome) => {
            let transcript = to_new_transcript(model, &outcome);
            let audio_s = transcript.duration_ms as f64 / 1000.0;
            let busy_s = outcome.processing.as_secs_f64();
            match ctx.store.finish_transcription(&job, &transcript, now).await {
                Ok(Some(done)) => {
                    metrics::counter!("hotline_transcriptions_total", "result" => "done")
                        .increment(1);
                    metrics::counter!("hotline_transcription_audio_seconds_total")
                        .increment(audio_s.round() as u64);
                    metrics::histogram!("hotline_transcription_real_time_factor")
                        .record(if audio_s > 0.0 { busy_s / audio_s } else { 0.0 });
                    tracing::info!(
                        %worker,
                        segments = transcript.segments.len(),
                        audio_s,
                        busy_s,
                        ticket = done.filled_ticket.as_ref().map(|t| t.to_string()),
                        "transcribed"
                    );
                    Ok(())
                }
                Ok(None) => {
                    lost(worker);
                    Ok(())
                }
                Err(e) => Err(e),
            }
        }
        Err(reason) => match ctx.store.fail_transcription(&job, &reason, now).await {
            Ok(Some(JobState::Failed)) => {
                metrics::counter!("hotline_transcriptions_total", "result" => "failed")
                    .increment(1);
                tracing::error!(%worker, error = %reason, "transcription failed for good; queue it again from the API once the cause is fixed");
                Ok(())
            }
            Ok(Some(_)) => {
                metrics::counter!("hotline_transcriptions_total", "result" => "retry").increment(1);
                tracing::warn!(%worker, error = %reason, "transcription failed; it will be tried again");
                Ok(())
            }
            Ok(None) => {
                lost(worker);
                Ok(())
            }
            Err(e) => Err(e),
        },
    };
    if let Err(e) = result {
        // The lease runs out and the job is claimed again: nothing is lost.
        tracing::error!(%worker, error = %e, "cannot store the transcription's outcome");
    }
}

fn lost(worker: &str) {
    metrics::counter!("hotline_transcriptions_total", "result" => "lost").increment(1);
    tracing::warn!(
        %worker,
        "the job's lease was lost (taken over or queued again); its outcome is dropped"
    );
}

/// Decodes the file on a thread of its own (whisper holds a core for seconds), renewing the
/// claim's lease meanwhile.
async fn decode_holding_lease(
    ctx: &Context,
    engine: &Arc<Engine>,
    job: &TranscriptionJob,
    path: PathBuf,
) -> Result<Outcome, String> {
    let language = job
        .language
        .as_deref()
        .unwrap_or(ctx.config.language.as_str());
    let language = Language::parse(language).map_err(|e| e.to_string())?;
    let options = super::decode_options(language, ctx.config.threads, ctx.config.beam, &ctx.words);
    let (tx, mut rx) = oneshot::channel::<Result<Outcome, TranscribeError>>();
    let engine = engine.clone();
    let nice = ctx.config.nice;
    std::thread::Builder::new()
        .name(format!("transcribe-{}", job.id))
        .spawn(move || {
            lower_priority(nice);
            let _ = tx.send(transcribe::recording::transcribe_file(
                &engine, &path, &options,
            ));
        })
        .map_err(|e| format!("cannot start a transcription thread: {e}"))?;
    let mut renew = tokio::time::interval(LEASE / 4);
    renew.tick().await;
    loop {
        tokio::select! {
            result = &mut rx => {
                return match result {
                    Ok(r) => r.map_err(|e| e.to_string()),
                    Err(_) => Err("the transcription thread died".into()),
                };
            }
            _ = renew.tick() => {
                match ctx.store.extend_transcription_lease(job, Timestamp::now(), LEASE).await {
                    Ok(true) => {}
                    Ok(false) => tracing::warn!("lease lost while transcribing"),
                    Err(e) => tracing::warn!(error = %e, "cannot renew the lease"),
                }
            }
        }
    }
}

/// The store's form of a transcript.
fn to_new_transcript(model: &str, outcome: &Outcome) -> NewTranscript {
    let t = &outcome.transcript;
    NewTranscript {
        model: model.to_owned(),
        language: t.language.clone(),
        duration_ms: i64::try_from(t.duration_ms).unwrap_or(i64::MAX),
        processing_ms: i64::try_from(outcome.processing.as_millis()).unwrap_or(i64::MAX),
        segments: t
            .segments
            .iter()
            .map(|s| NewSegment {
                speaker: match s.speaker {
                    transcribe::timeline::Speaker::Caller => Speaker::Caller,
                    transcribe::timeline::Speaker::Hotline => Speaker::Hotline,
                },
                start_ms: i64::try_from(s.start_ms).unwrap_or(i64::MAX),
                end_ms: i64::try_from(s.end_ms).unwrap_or(i64::MAX),
                text: s.text.clone(),
            })
            .collect(),
    }
}

/// Lowers this thread's priority (Linux: niceness is per thread, and the threads whisper starts
/// from it inherit it), so the media loops of live calls are scheduled first.
fn lower_priority(nice: i32) {
    #[cfg(target_os = "linux")]
    {
        // SAFETY: setpriority on the calling thread (who = 0) has no memory effects.
        let rc = unsafe { libc::setpriority(libc::PRIO_PROCESS, 0, nice) };
        if rc != 0 {
            tracing::debug!(nice, "cannot lower the transcription thread's priority");
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = nice;
}

#[cfg(test)]
mod tests {
    use super::*;
    use transcribe::timeline::{Segment, Transcript};

    fn outcome() -> Outcome {
        Outcome {
            transcript: Transcript {
                language: "zh".into(),
                duration_ms: 9_500,
                segments: vec![
                    Segment {
                        start_ms: 0,
                        end_ms: 1_200,
                        speaker: transcribe::timeline::Speaker::Hotline,
                        text: "您好，城管热线".into(),
                    },
                    Segment {
                        start_ms: 1_500,
                        end_ms: 4_000,
                        speaker: transcribe::timeline::Speaker::Caller,
                        text: "人民路的井盖丢了".into(),
                    },
                ],
            },
            processing: Duration::from_millis(1_900),
            speech_ms: 3_700,
        }
    }

    #[test]
    fn a_transcript_keeps_times_speakers_and_cost() {
        let t = to_new_transcript("whisper-base", &outcome());
        assert_eq!(t.model, "whisper-base");
        assert_eq!((t.duration_ms, t.processing_ms), (9_500, 1_900));
        assert_eq!(t.segments[0].speaker, Speaker::Hotline);
        assert_eq!(
            (
                t.segments[1].speaker,
                t.segments[1].start_ms,
                t.segments[1].end_ms
            ),
            (Speaker::Caller, 1_500, 4_000)
        );
        assert_eq!(t.text(), "您好，城管热线\n人民路的井盖丢了");
    }
}
