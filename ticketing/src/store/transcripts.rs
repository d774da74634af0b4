//! The transcription queue and transcripts: queue a recording, claim it for a lease (`FOR UPDATE
//! SKIP LOCKED` on PostgreSQL; SQLite's writers take turns), finish or fail it fenced by the
//! claim, and read and search what was transcribed.
//!
//! A claim is fenced by the job's id, the worker's name and the claim's number (`attempts`): a
//! worker whose lease ran out and whose job another worker took can neither finish nor fail it.
//! Finishing stores the transcript (replacing the recording's earlier one in place), its
//! segments and its full-text entry, and fills a voicemail ticket's placeholder content, in the
//! one transaction that marks the job done.

use std::path::Path;
use std::time::Duration;

use jiff::Timestamp;
use sqlx::AssertSqlSafe;
use sqlx::Row;
use sqlx::any::AnyRow;

use super::{
    Backend, Bind, Store, StoreError, arguments, escape_like, from_millis, parse, to_millis,
};
use crate::calls::recording_file;
use crate::model::{AttachmentKind, Channel, TicketNumber};
use crate::service::MAX_CONTENT_CHARS;
use crate::transcripts::{
    Finished, JobKind, JobState, MAX_ATTEMPTS, NewTranscript, NewTranscriptionJob, Segment,
    StoredTranscript, TranscriptHit, TranscriptionBacklog, TranscriptionJob,
    content_with_transcript, retry_delay, snippet, voicemail_placeholder_language,
};
use crate::workflow::{self, Actor, Role, WorkState};

const JOBS: &str = "transcription_jobs";
const T: &str = "transcripts";

const JOB_COLUMNS: &str = "id, call_id, ticket_id, kind, recording_path, language, state, \
    attempts, next_at, claimed_by, lease_until, last_error, created_at, finished_at";

/// The ticket is the voicemail's, or the one linked to the call (perhaps after transcription).
const TRANSCRIPT_COLUMNS: &str = "t.id, t.job_id, t.call_id, \
    COALESCE(t.ticket_id, c.ticket_id) AS ticket_id, t.recording_path, t.model, t.language, \
    t.duration_ms, t.processing_ms, t.text, t.created_at";

/// Segments per `INSERT` (6 values each; well inside either database's limit on parameters).
const SEGMENTS_PER_INSERT: usize = 100;

/// Most hits a search returns.
const MAX_HITS: u32 = 100;

/// Who fills a voicemail ticket's content in its trail.
fn transcriber() -> Actor {
    Actor {
        id: 0,
        name: "语音转写".into(),
        role: Role::Agent,
        department: None,
    }
}

fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

impl Store {
    /// Queues a recording for transcription and returns the job's id. Idempotent on the
    /// recording path: for a file already queued (or done, or failed) it returns that job and
    /// changes nothing. A path that would leave the data directory is refused.
    pub async fn enqueue_transcription(
        &self,
        job: &NewTranscriptionJob,
        now: Timestamp,
    ) -> Result<i64, StoreError> {
        recording_file(Path::new(""), &job.recording_path)
            .map_err(|e| StoreError::Invalid(e.to_string()))?;
        let mut w = self.write().await?;
        let inserted: Option<i64> = sqlx::query_scalar(
            "INSERT INTO transcription_jobs (call_id, ticket_id, kind, recording_path, state, \
             attempts, next_at, created_at, language) VALUES ($1, $2, $3, $4, 'queued', 0, $5, $5, $6) \
             ON CONFLICT (recording_path) DO NOTHING RETURNING id",
        )
        .bind(job.call_id)
        .bind(job.ticket_id)
        .bind(job.kind.as_str())
        .bind(&job.recording_path)
        .bind(to_millis(now))
        .bind(job.language.as_deref())
        .fetch_optional(&mut *w.tx)
        .await?;
        let id = match inserted {
            Some(id) => id,
            None => {
                sqlx::query_scalar("SELECT id FROM transcription_jobs WHERE recording_path = $1")
                    .bind(&job.recording_path)
                    .fetch_one(&mut *w.tx)
                    .await?
            }
        };
        w.commit().await?;
        Ok(id)
    }

    /// Claims the job due longest (queued and due, or running under a lease that ran out before
    /// `now`: its worker died) for `worker` until `now + lease`, counting the try. Jobs whose
    /// lease ran out on their last allowed try are marked failed instead: a recording that kills
    /// its worker every time must not take the queue down with it. `None` when nothing is due.
    pub async fn claim_transcription(
        &self,
        worker: &str,
        now: Timestamp,
        lease: Duration,
    ) -> Result<Option<TranscriptionJob>, StoreError> {
        let now_ms = to_millis(now);
        let until = now_ms.saturating_add(millis(lease));
        // Several workers claim at once on PostgreSQL: each takes a row no other has locked, and
        // none waits for another. SQLite has one writer at a time.
        let skip_locked = match self.backend {
            Backend::Postgres => " FOR UPDATE SKIP LOCKED",
            Backend::Sqlite => "",
        };
        // SQLite, without statistics, prefers the (state, next_at) index and sorts every due
        // job to take one (1 ms with 20,000 queued); the partial index is already in due order
        // (0.1 ms). PostgreSQL picks it by itself.
        let due_index = match self.backend {
            Backend::Postgres => "",
            Backend::Sqlite => " INDEXED BY transcription_jobs_due",
        };
        let mut w = self.write().await?;
        let abandon = format!(
            "UPDATE transcription_jobs SET state = 'failed', finished_at = $1, lease_until = NULL, \
             last_error = $2 WHERE id IN (SELECT id FROM transcription_jobs \
             WHERE state = 'running' AND next_at < $1 AND attempts >= $3{skip_locked})"
        );
        let abandoned = sqlx::query(AssertSqlSafe(abandon))
            .bind(now_ms)
            .bind(format!(
                "gave up: the lease ran out on try {MAX_ATTEMPTS} of {MAX_ATTEMPTS} (the worker stopped or hung)"
            ))
            .bind(i64::from(MAX_ATTEMPTS))
            .execute(&mut *w.tx)
            .await?
            .rows_affected();
        if abandoned > 0 {
            tracing::warn!(
                jobs = abandoned,
                "transcription jobs failed: their workers stopped on every try"
            );
        }
        let claim = format!(
            "UPDATE transcription_jobs SET state = 'running', attempts = attempts + 1, \
             claimed_by = $1, lease_until = $2, next_at = $2 \
             WHERE id = (SELECT id FROM transcription_jobs{due_index} \
             WHERE state IN ('queued', 'running') AND next_at <= $3 \
             AND (state = 'queued' OR lease_until < $3) \
             ORDER BY next_at, id LIMIT 1{skip_locked}) \
             RETURNING {JOB_COLUMNS}"
        );
        let row = sqlx::query(AssertSqlSafe(claim))
            .bind(worker)
            .bind(until)
            .bind(now_ms)
            .fetch_optional(&mut *w.tx)
            .await?;
        let job = row.as_ref().map(job_from_row).transpose()?;
        w.commit().await?;
        if let Some(job) = &job {
            tracing::debug!(
                job = job.id,
                worker,
                attempt = job.attempts,
                "transcription claimed"
            );
        }
        Ok(job)
    }

    /// Moves the lease of a job `job`'s claim still holds to `now + lease` (a long recording);
    /// false when the claim is no longer this one's.
    pub async fn extend_transcription_lease(
        &self,
        job: &TranscriptionJob,
        now: Timestamp,
        lease: Duration,
    ) -> Result<bool, StoreError> {
        let until = to_millis(now).saturating_add(millis(lease));
        let mut w = self.write().await?;
        let done = fenced(
            sqlx::query(
                "UPDATE transcription_jobs SET lease_until = $4, next_at = $4 \
                 WHERE id = $1 AND state = 'running' AND claimed_by = $2 AND attempts = $3",
            ),
            job,
        )
        .bind(until)
        .execute(&mut *w.tx)
        .await?
        .rows_affected();
        w.commit().await?;
        Ok(done == 1)
    }

    /// Stores what the worker holding `job`'s claim made of the recording and marks the job
    /// done, in one transaction: the transcript (replacing the recording's earlier one, keeping
    /// its id), its segments, its full-text entry, and — for a voicemail whose ticket still has
    /// the IVR's placeholder content — the ticket's content, with a 补充 event that keeps the
    /// placeholder. `None`, storing nothing, when the claim is no longer this one's (its lease
    /// ran out and another worker took the job, or an operator queued it again).
    pub async fn finish_transcription(
        &self,
        job: &TranscriptionJob,
        transcript: &NewTranscript,
        now: Timestamp,
    ) -> Result<Option<Finished>, StoreError> {
        let now_ms = to_millis(now);
        let mut w = self.write().await?;
        let row = fenced(
            sqlx::query(
                "UPDATE transcription_jobs SET state = 'done', finished_at = $4, lease_until = NULL, \
                 last_error = NULL WHERE id = $1 AND state = 'running' AND claimed_by = $2 \
                 AND attempts = $3 RETURNING call_id, ticket_id, kind, recording_path",
            ),
            job,
        )
        .bind(now_ms)
        .fetch_optional(&mut *w.tx)
        .await?;
        let Some(row) = row else {
            // What was read may be another writer's work in this batch: end it with a commit.
            w.commit().await?;
            return Ok(None);
        };
        let call_id: Option<i64> = row.try_get("call_id")?;
        let ticket_id: Option<i64> = row.try_get("ticket_id")?;
        let kind: JobKind = parse(JOBS, &row, "kind")?;
        let path: String = row.try_get("recording_path")?;
        let text = transcript.text();
        let transcript_id: i64 = sqlx::query_scalar(
            "INSERT INTO transcripts (job_id, call_id, ticket_id, recording_path, model, language, \
             duration_ms, processing_ms, text, created_at) VALUES ($1, $2, \
             COALESCE($3, (SELECT c.ticket_id FROM calls c WHERE c.id = $2)), $4, $5, $6, $7, $8, $9, $10) \
             ON CONFLICT (recording_path) DO UPDATE SET job_id = excluded.job_id, \
             call_id = excluded.call_id, ticket_id = excluded.ticket_id, model = excluded.model, \
             language = excluded.language, duration_ms = excluded.duration_ms, \
             processing_ms = excluded.processing_ms, text = excluded.text, \
             created_at = excluded.created_at RETURNING id",
        )
        .bind(job.id)
        .bind(call_id)
        .bind(ticket_id)
        .bind(&path)
        .bind(&transcript.model)
        .bind(&transcript.language)
        .bind(transcript.duration_ms)
        .bind(transcript.processing_ms)
        .bind(&text)
        .bind(now_ms)
        .fetch_one(&mut *w.tx)
        .await?;
        sqlx::query("DELETE FROM transcript_segments WHERE transcript_id = $1")
            .bind(transcript_id)
            .execute(&mut *w.tx)
            .await?;
        insert_segments(&mut w.tx, transcript_id, &transcript.segments).await?;
        let filled_ticket = match (kind, ticket_id) {
            (JobKind::Message, Some(ticket_id)) => {
                let fill = Fill {
                    ticket_id,
                    transcript_id,
                    model: &transcript.model,
                    text: &text,
                    now,
                };
                fill_voicemail(&mut w.tx, self.backend, &fill).await?
            }
            _ => None,
        };
        w.commit().await?;
        tracing::info!(
            job = job.id,
            transcript = transcript_id,
            chars = text.chars().count(),
            ticket = filled_ticket.as_ref().map(TicketNumber::as_str),
            "transcription done"
        );
        Ok(Some(Finished {
            transcript_id,
            filled_ticket,
        }))
    }

    /// The worker holding `job`'s claim could not transcribe it: the job waits [`retry_delay`]
    /// and is tried again, or is `failed` after [`MAX_ATTEMPTS`] tries. Returns the state it is
    /// in now; `None`, changing nothing, when the claim is no longer this one's.
    pub async fn fail_transcription(
        &self,
        job: &TranscriptionJob,
        error: &str,
        now: Timestamp,
    ) -> Result<Option<JobState>, StoreError> {
        let error: String = error.chars().take(500).collect();
        let now_ms = to_millis(now);
        let (state, next_at, finished_at) = match retry_delay(job.attempts) {
            Some(d) => (JobState::Queued, now_ms.saturating_add(millis(d)), None),
            None => (JobState::Failed, now_ms, Some(now_ms)),
        };
        let mut w = self.write().await?;
        let done = fenced(
            sqlx::query(
                "UPDATE transcription_jobs SET state = $4, next_at = $5, finished_at = $6, \
                 lease_until = NULL, last_error = $7 \
                 WHERE id = $1 AND state = 'running' AND claimed_by = $2 AND attempts = $3",
            ),
            job,
        )
        .bind(state.as_str())
        .bind(next_at)
        .bind(finished_at)
        .bind(&error)
        .execute(&mut *w.tx)
        .await?
        .rows_affected();
        w.commit().await?;
        if done == 0 {
            return Ok(None);
        }
        match state {
            JobState::Failed => {
                tracing::warn!(job = job.id, attempts = job.attempts, %error, "transcription failed for good");
            }
            _ => {
                tracing::info!(job = job.id, attempts = job.attempts, %error, "transcription failed; will retry");
            }
        }
        Ok(Some(state))
    }

    /// An operator's "again": queues the job to run now with its tries counted from zero —
    /// a failed one, or a done one to transcribe again (with a better model, say; the new
    /// transcript replaces the old) — and returns it as it is now. A job a worker holds under a
    /// live lease is left alone (`None`), as is an unknown one.
    pub async fn requeue_transcription(
        &self,
        job_id: i64,
        now: Timestamp,
    ) -> Result<Option<TranscriptionJob>, StoreError> {
        let sql = format!(
            "UPDATE transcription_jobs SET state = 'queued', attempts = 0, next_at = $2, \
             claimed_by = NULL, lease_until = NULL, finished_at = NULL \
             WHERE id = $1 AND (state <> 'running' OR lease_until < $2) RETURNING {JOB_COLUMNS}"
        );
        let mut w = self.write().await?;
        let row = sqlx::query(AssertSqlSafe(sql))
            .bind(job_id)
            .bind(to_millis(now))
            .fetch_optional(&mut *w.tx)
            .await?;
        let job = row.as_ref().map(job_from_row).transpose()?;
        w.commit().await?;
        Ok(job)
    }

    /// Queues the recordings of calls that ended at or after `since` and have no job yet: those
    /// whose end was written while transcription was off, or just before a crash kept the call's
    /// job from being queued (calls closed at restart included). Empty recordings (a bare WAV
    /// header) are left out, and so are calls with a voicemail job: a call that left a message
    /// is the message (see [`Store::transcript_for_call`]). Run
    /// [`Store::enqueue_untranscribed_voicemails`] first, so that a voicemail whose job was lost
    /// keeps its call out too. Each is queued in the language its IVR spoke. Returns how many
    /// were queued.
    pub async fn enqueue_untranscribed_calls(
        &self,
        since: Timestamp,
        now: Timestamp,
    ) -> Result<u64, StoreError> {
        let mut w = self.write().await?;
        let done = sqlx::query(
            "INSERT INTO transcription_jobs (call_id, ticket_id, kind, recording_path, state, \
             attempts, next_at, created_at, language) \
             SELECT c.id, NULL, 'call', c.recording_path, 'queued', 0, $2, $2, c.language \
             FROM calls c \
             WHERE c.ended_at IS NOT NULL AND c.ended_at >= $1 AND c.recording_path IS NOT NULL \
             AND COALESCE(c.recording_bytes, 45) > 44 \
             AND NOT EXISTS (SELECT 1 FROM transcription_jobs j \
                             WHERE j.recording_path = c.recording_path) \
             AND NOT EXISTS (SELECT 1 FROM transcription_jobs m \
                             WHERE m.call_id = c.id AND m.kind = 'message') \
             ON CONFLICT (recording_path) DO NOTHING",
        )
        .bind(to_millis(since))
        .bind(to_millis(now))
        .execute(&mut *w.tx)
        .await?
        .rows_affected();
        w.commit().await?;
        Ok(done)
    }

    /// Queues the voicemails left at or after `since` that have no job: those stored while
    /// transcription was off, or just before a crash kept their job from being queued. A
    /// voicemail is a phone ticket with the IVR's message recording (`messages/…`) attached; its
    /// job is the one the IVR queues: kind message, with its ticket, the call linked to the
    /// ticket, and the language the caller chose, read from the ticket's placeholder content
    /// ([`voicemail_placeholder_language`]) — or left to the worker's configured language once
    /// someone rewrote the content. Returns how many were queued.
    pub async fn enqueue_untranscribed_voicemails(
        &self,
        since: Timestamp,
        now: Timestamp,
    ) -> Result<u64, StoreError> {
        let now_ms = to_millis(now);
        let mut w = self.write().await?;
        let found = sqlx::query(
            "SELECT k.id AS ticket_id, k.content, a.uri, \
             (SELECT MIN(c.id) FROM calls c WHERE c.ticket_id = k.id) AS call_id \
             FROM tickets k JOIN ticket_attachments a ON a.ticket_id = k.id \
             WHERE k.created_at >= $1 AND k.channel = $2 AND a.kind = $3 \
             AND a.uri LIKE 'messages/%' \
             AND NOT EXISTS (SELECT 1 FROM transcription_jobs j WHERE j.recording_path = a.uri) \
             ORDER BY a.id",
        )
        .bind(to_millis(since))
        .bind(Channel::Phone.as_str())
        .bind(AttachmentKind::Recording.as_str())
        .fetch_all(&mut *w.tx)
        .await?;
        let mut queued = 0;
        for row in &found {
            let ticket_id: i64 = row.try_get("ticket_id")?;
            let path: String = row.try_get("uri")?;
            if let Err(e) = recording_file(Path::new(""), &path) {
                tracing::warn!(ticket = ticket_id, %path, error = %e, "voicemail not queued for transcription");
                continue;
            }
            let content: String = row.try_get("content")?;
            let call_id: Option<i64> = row.try_get("call_id")?;
            queued += sqlx::query(
                "INSERT INTO transcription_jobs (call_id, ticket_id, kind, recording_path, state, \
                 attempts, next_at, created_at, language) \
                 VALUES ($1, $2, 'message', $3, 'queued', 0, $4, $4, $5) \
                 ON CONFLICT (recording_path) DO NOTHING",
            )
            .bind(call_id)
            .bind(ticket_id)
            .bind(&path)
            .bind(now_ms)
            .bind(voicemail_placeholder_language(&content))
            .execute(&mut *w.tx)
            .await?
            .rows_affected();
        }
        w.commit().await?;
        Ok(queued)
    }

    /// Queues every failed job again to run now, tries counted from zero (after the cause —
    /// a missing model, a full disk — is fixed). Returns how many.
    pub async fn retry_failed_transcriptions(&self, now: Timestamp) -> Result<u64, StoreError> {
        let mut w = self.write().await?;
        let done = sqlx::query(
            "UPDATE transcription_jobs SET state = 'queued', attempts = 0, next_at = $1, \
             claimed_by = NULL, lease_until = NULL, finished_at = NULL WHERE state = 'failed'",
        )
        .bind(to_millis(now))
        .execute(&mut *w.tx)
        .await?
        .rows_affected();
        w.commit().await?;
        Ok(done)
    }

    /// The job with this id.
    pub async fn transcription_job(
        &self,
        job_id: i64,
    ) -> Result<Option<TranscriptionJob>, StoreError> {
        self.job_where("id = $1", Bind::Int(job_id)).await
    }

    /// The job of a recording (its path relative to the data directory): whether its transcript
    /// is waiting, being made, or failed, and why.
    pub async fn transcription_job_for_recording(
        &self,
        recording_path: &str,
    ) -> Result<Option<TranscriptionJob>, StoreError> {
        self.job_where("recording_path = $1", Bind::Text(recording_path.to_owned()))
            .await
    }

    /// The job whose transcript is a call's ([`Store::transcript_for_call`]): its recording's,
    /// or, for a call without one — it only left a voicemail —, its newest voicemail's.
    pub async fn transcription_job_for_call(
        &self,
        call_id: i64,
    ) -> Result<Option<TranscriptionJob>, StoreError> {
        self.job_where(
            "call_id = $1 AND kind IN ('call', 'message') \
             ORDER BY CASE kind WHEN 'call' THEN 0 ELSE 1 END, id DESC LIMIT 1",
            Bind::Int(call_id),
        )
        .await
    }

    /// The jobs in `state`, newest first (the failed ones and their errors, for the console).
    pub async fn list_transcription_jobs(
        &self,
        state: JobState,
        limit: u32,
    ) -> Result<Vec<TranscriptionJob>, StoreError> {
        let sql = format!(
            "SELECT {JOB_COLUMNS} FROM transcription_jobs WHERE state = $1 ORDER BY id DESC LIMIT $2"
        );
        sqlx::query(AssertSqlSafe(sql))
            .bind(state.as_str())
            .bind(i64::from(limit.clamp(1, 1000)))
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(job_from_row)
            .collect()
    }

    /// How many jobs are in each state, and since when the oldest waiting one waits.
    pub async fn transcription_backlog(&self) -> Result<TranscriptionBacklog, StoreError> {
        let rows =
            sqlx::query("SELECT state, COUNT(*) AS n FROM transcription_jobs GROUP BY state")
                .fetch_all(&self.pool)
                .await?;
        let mut backlog = TranscriptionBacklog::default();
        for row in &rows {
            let n: i64 = row.try_get("n")?;
            match parse(JOBS, row, "state")? {
                JobState::Queued => backlog.queued = n,
                JobState::Running => backlog.running = n,
                JobState::Done => backlog.done = n,
                JobState::Failed => backlog.failed = n,
            }
        }
        let oldest: Option<i64> = sqlx::query_scalar(
            "SELECT MIN(created_at) FROM transcription_jobs WHERE state = 'queued'",
        )
        .fetch_one(&self.pool)
        .await?;
        backlog.oldest_queued_at = oldest.map(|ms| from_millis(JOBS, ms)).transpose()?;
        Ok(backlog)
    }

    /// The transcript of a call (the call record's row id): its recording's. A call whose
    /// recording has no job — it only left a voicemail, whose job is queued instead — answers
    /// with its newest voicemail's transcript (also its ticket's,
    /// [`Store::transcripts_for_ticket`]).
    pub async fn transcript_for_call(
        &self,
        call_id: i64,
    ) -> Result<Option<StoredTranscript>, StoreError> {
        let found = self
            .transcripts_where(
                "t.call_id = $1 AND (NOT EXISTS (SELECT 1 FROM transcription_jobs j \
                 WHERE j.id = t.job_id AND j.kind = 'message') \
                 OR NOT EXISTS (SELECT 1 FROM transcription_jobs j \
                 WHERE j.call_id = $1 AND j.kind = 'call'))",
                Bind::Int(call_id),
                " LIMIT 1",
            )
            .await?;
        Ok(found.into_iter().next())
    }

    /// The transcript of a recording (its path relative to the data directory).
    pub async fn transcript_for_recording(
        &self,
        recording_path: &str,
    ) -> Result<Option<StoredTranscript>, StoreError> {
        let found = self
            .transcripts_where(
                "t.recording_path = $1",
                Bind::Text(recording_path.to_owned()),
                "",
            )
            .await?;
        Ok(found.into_iter().next())
    }

    /// The transcripts of a ticket's recordings: its voicemail, and the calls linked to it.
    pub async fn transcripts_for_ticket(
        &self,
        ticket_id: i64,
    ) -> Result<Vec<StoredTranscript>, StoreError> {
        self.transcripts_where(
            "(t.ticket_id = $1 OR t.call_id IN (SELECT c2.id FROM calls c2 WHERE c2.ticket_id = $1))",
            Bind::Int(ticket_id),
            "",
        )
        .await
    }

    /// Transcripts containing `query` (case-insensitive), newest first (by when the recording
    /// was first transcribed), at most `limit` (1..=100), each with the text around the first
    /// match. Queries of three characters or more use the trigram index (FTS5 on SQLite,
    /// pg_trgm on PostgreSQL); shorter ones — a two-character Chinese word like 井盖 — are
    /// answered by a scan, newest first, that stops once `limit` are found.
    pub async fn search_transcripts(
        &self,
        query: &str,
        limit: u32,
    ) -> Result<Vec<TranscriptHit>, StoreError> {
        let query = query.trim();
        if query.is_empty() {
            return Ok(Vec::new());
        }
        let limit = limit.clamp(1, MAX_HITS);
        let trigrams = query.chars().count() >= 3;
        // Chinese has no case: a plain substring test gives the same answer as a case-folding
        // one, several times cheaper (on PostgreSQL `strpos` scans 7× and `LIKE` 3× faster than
        // `ILIKE`, and pg_trgm serves `LIKE` as it does `ILIKE`).
        let caseless = query.to_lowercase() == query && query.to_uppercase() == query;
        let like = format!("%{}%", escape_like(query));
        let (contains, fold) = match self.backend {
            Backend::Sqlite => ("instr", "LIKE"),
            Backend::Postgres => ("strpos", "ILIKE"),
        };
        // A test of `col` against `param`, and what to bind to it, for a scan.
        let scan = |col: &str, param: &str| {
            if caseless {
                (format!("{contains}({col}, {param}) > 0"), query.to_owned())
            } else {
                (format!("{col} {fold} {param} ESCAPE '\\'"), like.clone())
            }
        };
        // Newest first is by id, the order recordings were first transcribed (a transcript made
        // again keeps its id and place): FTS5 walks its rowids backwards and stops at `limit`,
        // a scan walks the table backwards.
        let (from, order) = match self.backend {
            Backend::Sqlite if trigrams => (
                "transcripts_fts f JOIN transcripts t ON t.id = f.rowid",
                "f.rowid",
            ),
            _ => ("transcripts t", "t.id"),
        };
        let (matches, first) = match self.backend {
            // An FTS5 phrase of trigrams: the query as one quoted string is a substring match.
            Backend::Sqlite if trigrams => (
                "transcripts_fts MATCH $1".to_owned(),
                format!("\"{}\"", query.replace('"', "\"\"")),
            ),
            // The trigram index serves `LIKE` and `ILIKE`.
            Backend::Postgres if trigrams => {
                let op = if caseless { "LIKE" } else { "ILIKE" };
                (format!("t.text {op} $1 ESCAPE '\\'"), like.clone())
            }
            // Too short for trigrams: a scan.
            _ => scan("t.text", "$1"),
        };
        let (in_segment, second) = scan("s.text", "$2");
        let sql = format!(
            "SELECT t.id, t.call_id, COALESCE(t.ticket_id, c.ticket_id) AS ticket_id, \
             k.number AS ticket_number, t.recording_path, t.text, t.created_at, \
             (SELECT MIN(s.start_ms) FROM transcript_segments s WHERE s.transcript_id = t.id \
             AND {in_segment}) AS at_ms \
             FROM {from} LEFT JOIN calls c ON c.id = t.call_id \
             LEFT JOIN tickets k ON k.id = COALESCE(t.ticket_id, c.ticket_id) \
             WHERE {matches} ORDER BY {order} DESC LIMIT $3"
        );
        let rows = sqlx::query(AssertSqlSafe(sql))
            .bind(first)
            .bind(second)
            .bind(i64::from(limit))
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|row| {
                let text: String = row.try_get("text")?;
                let number: Option<String> = row.try_get("ticket_number")?;
                Ok(TranscriptHit {
                    transcript_id: row.try_get("id")?,
                    call_id: row.try_get("call_id")?,
                    ticket_id: row.try_get("ticket_id")?,
                    ticket_number: number
                        .map(|n| TicketNumber::parse(&n).map_err(|e| StoreError::corrupt(T, e)))
                        .transpose()?,
                    recording_path: row.try_get("recording_path")?,
                    snippet: snippet(&text, query, 20, 60),
                    at_ms: row.try_get("at_ms")?,
                    created_at: from_millis(T, row.try_get("created_at")?)?,
                })
            })
            .collect()
    }

    /// The first job `clause` (on `transcription_jobs`, `$1` bound to `bind`) finds; the
    /// clause may end with its own `ORDER BY … LIMIT`.
    async fn job_where(
        &self,
        clause: &str,
        bind: Bind,
    ) -> Result<Option<TranscriptionJob>, StoreError> {
        let sql = format!("SELECT {JOB_COLUMNS} FROM transcription_jobs WHERE {clause}");
        sqlx::query_with(AssertSqlSafe(sql), arguments(&[bind])?)
            .fetch_optional(&self.pool)
            .await?
            .as_ref()
            .map(job_from_row)
            .transpose()
    }

    async fn transcripts_where(
        &self,
        clause: &str,
        bind: Bind,
        limit: &str,
    ) -> Result<Vec<StoredTranscript>, StoreError> {
        let sql = format!(
            "SELECT {TRANSCRIPT_COLUMNS} FROM transcripts t LEFT JOIN calls c ON c.id = t.call_id \
             WHERE {clause} ORDER BY t.id DESC{limit}"
        );
        let mut conn = self.pool.acquire().await?;
        let rows = sqlx::query_with(AssertSqlSafe(sql), arguments(&[bind])?)
            .fetch_all(&mut *conn)
            .await?;
        let mut out = Vec::with_capacity(rows.len());
        for row in &rows {
            let id: i64 = row.try_get("id")?;
            let segments = sqlx::query(
                "SELECT speaker, start_ms, end_ms, text FROM transcript_segments \
                 WHERE transcript_id = $1 ORDER BY seq",
            )
            .bind(id)
            .fetch_all(&mut *conn)
            .await?
            .iter()
            .map(|s| {
                Ok(Segment {
                    speaker: parse("transcript_segments", s, "speaker")?,
                    start_ms: s.try_get("start_ms")?,
                    end_ms: s.try_get("end_ms")?,
                    text: s.try_get("text")?,
                })
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
            out.push(StoredTranscript {
                id,
                job_id: row.try_get("job_id")?,
                call_id: row.try_get("call_id")?,
                ticket_id: row.try_get("ticket_id")?,
                recording_path: row.try_get("recording_path")?,
                model: row.try_get("model")?,
                language: row.try_get("language")?,
                duration_ms: row.try_get("duration_ms")?,
                processing_ms: row.try_get("processing_ms")?,
                text: row.try_get("text")?,
                created_at: from_millis(T, row.try_get("created_at")?)?,
                segments,
            });
        }
        Ok(out)
    }
}

/// Binds a claim's fence — `$1` job id, `$2` worker, `$3` claim number — to `query`.
fn fenced<'q>(
    query: sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments>,
    job: &TranscriptionJob,
) -> sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments> {
    query
        .bind(job.id)
        .bind(job.claimed_by.clone().unwrap_or_default())
        .bind(i64::from(job.attempts))
}

async fn insert_segments(
    conn: &mut sqlx::AnyConnection,
    transcript_id: i64,
    segments: &[Segment],
) -> Result<(), StoreError> {
    // Silence the recogniser marked as a segment has nothing to show or search.
    let segments: Vec<&Segment> = segments
        .iter()
        .filter(|s| !s.text.trim().is_empty())
        .collect();
    let mut seq = 0_i64;
    for chunk in segments.chunks(SEGMENTS_PER_INSERT) {
        let mut binds = Vec::with_capacity(chunk.len() * 6);
        let mut rows = Vec::with_capacity(chunk.len());
        for s in chunk {
            let n = binds.len();
            rows.push(format!(
                "(${}, ${}, ${}, ${}, ${}, ${})",
                n + 1,
                n + 2,
                n + 3,
                n + 4,
                n + 5,
                n + 6
            ));
            binds.extend([
                Bind::Int(transcript_id),
                Bind::Int(seq),
                Bind::Text(s.speaker.as_str().to_owned()),
                Bind::Int(s.start_ms),
                Bind::Int(s.end_ms),
                Bind::Text(s.text.trim().to_owned()),
            ]);
            seq += 1;
        }
        let sql = format!(
            "INSERT INTO transcript_segments (transcript_id, seq, speaker, start_ms, end_ms, text) \
             VALUES {}",
            rows.join(", ")
        );
        sqlx::query_with(AssertSqlSafe(sql), arguments(&binds)?)
            // One statement per chunk size: not worth a place in the statement cache.
            .persistent(false)
            .execute(&mut *conn)
            .await?;
    }
    Ok(())
}

/// What a voicemail's transcript puts on its ticket.
struct Fill<'a> {
    ticket_id: i64,
    transcript_id: i64,
    model: &'a str,
    text: &'a str,
    now: Timestamp,
}

/// Replaces the IVR's placeholder content of a voicemail's ticket by the transcript, with a
/// 补充 event (through the workflow, so a closed or merged ticket is left alone) whose data keeps
/// the content replaced. Returns the ticket's number when it did.
async fn fill_voicemail(
    conn: &mut sqlx::AnyConnection,
    backend: Backend,
    fill: &Fill<'_>,
) -> Result<Option<TicketNumber>, StoreError> {
    let lock = match backend {
        Backend::Postgres => " FOR UPDATE",
        Backend::Sqlite => "",
    };
    let sql = format!("SELECT number, content, work_state FROM tickets WHERE id = $1{lock}");
    let Some(row) = sqlx::query(AssertSqlSafe(sql))
        .bind(fill.ticket_id)
        .fetch_optional(&mut *conn)
        .await?
    else {
        return Ok(None);
    };
    let number: String = row.try_get("number")?;
    let number = TicketNumber::parse(&number).map_err(|e| StoreError::corrupt("tickets", e))?;
    let content: String = row.try_get("content")?;
    let text: String = fill.text.chars().take(MAX_CONTENT_CHARS).collect();
    let Some(new_content) = content_with_transcript(&content, &text) else {
        tracing::debug!(ticket = %number, "voicemail content already written: transcript not copied");
        return Ok(None);
    };
    let work: String = row.try_get("work_state")?;
    let work: WorkState =
        serde_json::from_str(&work).map_err(|e| StoreError::corrupt("tickets", e))?;
    let data = serde_json::json!({
        "source": "transcript",
        "transcript_id": fill.transcript_id,
        "model": fill.model,
        "replaced": content,
        "content": new_content,
    });
    let note = format!("留言录音转写为文字（{}）；原内容：{content}", fill.model);
    let event = match workflow::supplement(&work, &transcriber(), fill.now, Some(note), data) {
        Ok(event) => event,
        Err(e) => {
            tracing::info!(ticket = %number, reason = %e, "voicemail ticket not open: transcript not copied");
            return Ok(None);
        }
    };
    sqlx::query(
        "UPDATE tickets SET content = $1, updated_at = $2, version = version + 1 WHERE id = $3",
    )
    .bind(&new_content)
    .bind(to_millis(fill.now))
    .bind(fill.ticket_id)
    .execute(&mut *conn)
    .await?;
    super::tickets::insert_event(conn, fill.ticket_id, &event).await?;
    Ok(Some(number))
}

fn job_from_row(row: &AnyRow) -> Result<TranscriptionJob, StoreError> {
    let time = |col: &str| -> Result<Option<Timestamp>, StoreError> {
        row.try_get::<Option<i64>, _>(col)?
            .map(|ms| from_millis(JOBS, ms))
            .transpose()
    };
    let attempts: i32 = row.try_get("attempts")?;
    Ok(TranscriptionJob {
        id: row.try_get("id")?,
        call_id: row.try_get("call_id")?,
        ticket_id: row.try_get("ticket_id")?,
        kind: parse(JOBS, row, "kind")?,
        recording_path: row.try_get("recording_path")?,
        language: row.try_get("language")?,
        state: parse(JOBS, row, "state")?,
        attempts: u32::try_from(attempts)
            .map_err(|_| StoreError::corrupt(JOBS, format!("attempts {attempts}")))?,
        next_at: from_millis(JOBS, row.try_get("next_at")?)?,
        claimed_by: row.try_get("claimed_by")?,
        lease_until: time("lease_until")?,
        last_error: row.try_get("last_error")?,
        created_at: from_millis(JOBS, row.try_get("created_at")?)?,
        finished_at: time("finished_at")?,
    })
}
