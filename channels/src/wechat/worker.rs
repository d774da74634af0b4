//! The WeChat worker: what is done after a follower has had their answer. It downloads the photos
//! and voice notes that messages only referenced (`wechat-media:<id>` attachments), checking and
//! stripping photos like any upload, and tells followers when their ticket moves on, by
//! customer-service message. Both queues are database rows, so a restart loses nothing.

use std::path::PathBuf;
use std::time::Duration;

use jiff::{SignedDuration, Timestamp};
use ticketing::store::{PendingFetch, StoreError, TicketChange};
use ticketing::{ActionKind, Tickets};

use super::account::status_for_citizens;
use super::api::{ApiError, WechatApi};
use crate::media;
use crate::photo::{self, PhotoFormat, PhotoLimits};

/// The scheme of attachments still at WeChat.
const SCHEME: &str = "wechat-media:";
/// The event-stream cursor this worker keeps.
const CURSOR: &str = "wechat_notices";
/// Tries before a media download is given up.
const MAX_ATTEMPTS: u32 = 8;

/// Downloads media and sends notices; run [`Worker::run`] in a task.
pub struct Worker {
    api: WechatApi,
    tickets: Tickets,
    data_dir: PathBuf,
    limits: PhotoLimits,
}

impl Worker {
    /// A worker storing media under `data_dir/media/`.
    pub fn new(api: WechatApi, tickets: Tickets, data_dir: PathBuf) -> Self {
        Worker {
            api,
            tickets,
            data_dir,
            limits: PhotoLimits::default(),
        }
    }

    /// Works until the task is dropped: a round every `every`.
    pub async fn run(self, every: Duration) {
        loop {
            let now = Timestamp::now();
            if let Err(e) = self.fetch_media(now).await {
                tracing::warn!(error = %e, "WeChat media downloads: database unavailable");
            }
            if let Err(e) = self.notify().await {
                tracing::warn!(error = %e, "WeChat notices: database unavailable");
            }
            tokio::time::sleep(every).await;
        }
    }

    /// One round of downloads; how many attachments were stored.
    pub async fn fetch_media(&self, now: Timestamp) -> Result<usize, StoreError> {
        let store = self.tickets.store();
        let mut stored = 0;
        for job in store.pending_fetches(SCHEME, now, 20).await? {
            match self.fetch_one(&job, now).await {
                Ok((uri, mime)) => {
                    if store
                        .fetched(job.attachment_id, &job.uri, &uri, Some(&mime))
                        .await?
                    {
                        stored += 1;
                        tracing::info!(ticket = %job.ticket, %uri, "WeChat media stored");
                    }
                }
                Err(Failure { message, retry }) => {
                    let attempts = job.attempts + 1;
                    let retry_at =
                        (retry && attempts < MAX_ATTEMPTS).then(|| now + backoff(attempts));
                    tracing::warn!(ticket = %job.ticket, attempts, error = %message, gave_up = retry_at.is_none(), "WeChat media not stored");
                    store
                        .fetch_failed(job.attachment_id, &message, retry_at, now)
                        .await?;
                }
            }
        }
        Ok(stored)
    }

    async fn fetch_one(
        &self,
        job: &PendingFetch,
        now: Timestamp,
    ) -> Result<(String, String), Failure> {
        let media_id = job.uri.strip_prefix(SCHEME).unwrap_or_default();
        let media = self
            .api
            .download_media(media_id)
            .await
            .map_err(Failure::api)?;
        let (bytes, ext, mime) = if PhotoFormat::sniff(&media.bytes).is_some() {
            let p = photo::inspect(&media.bytes, &self.limits).map_err(|e| Failure {
                message: format!("{}: {e}", e.code()),
                retry: false,
            })?;
            (p.cleaned, p.format.extension(), p.format.mime().to_owned())
        } else {
            // Voice notes (AMR, Speex) and anything else WeChat holds: kept as sent.
            let mime = media
                .content_type
                .clone()
                .unwrap_or_else(|| "application/octet-stream".into());
            let ext = match mime.as_str() {
                "audio/amr" => "amr",
                "audio/speex" => "speex",
                "audio/mpeg" | "audio/mp3" => "mp3",
                "video/mp4" => "mp4",
                _ => "bin",
            };
            (media.bytes, ext, mime)
        };
        let day = self.tickets.sla().calendar().local_date(now);
        let stem = format!("{}-{}", job.ticket, job.attachment_id);
        let rel = media::relative_path(day, &stem, ext);
        media::write(&self.data_dir, &rel, &bytes)
            .await
            .map_err(|e| Failure {
                message: format!("cannot write {rel}: {e}"),
                retry: true,
            })?;
        Ok((rel, mime))
    }

    /// One round of notices; how many were sent. A notice WeChat cannot take now (network, busy)
    /// stops the round and is sent next time; one it will never take (the follower left, the
    /// 48-hour window passed) is logged and skipped.
    pub async fn notify(&self) -> Result<usize, StoreError> {
        let store = self.tickets.store();
        let cursor = store.event_cursor(CURSOR).await?;
        let (changes, last) = store.wechat_changes_after(cursor, 100).await?;
        let mut sent = 0;
        for change in &changes {
            let Some(text) = notice_text(change) else {
                continue;
            };
            for openid in &change.wechat_openids {
                match self.api.send_text(openid, &text).await {
                    Ok(()) => sent += 1,
                    Err(e) if e.is_retryable() => {
                        tracing::warn!(ticket = %change.ticket, error = %e, "WeChat notice deferred");
                        store.set_event_cursor(CURSOR, change.event_id - 1).await?;
                        return Ok(sent);
                    }
                    Err(e) => {
                        tracing::warn!(ticket = %change.ticket, code = e.code(), error = %e, "WeChat notice not deliverable");
                    }
                }
            }
        }
        store.set_event_cursor(CURSOR, last).await?;
        Ok(sent)
    }
}

/// What a follower is told about a change, or `None` for steps that are the centre's own business.
pub fn notice_text(change: &TicketChange) -> Option<String> {
    let number = &change.ticket;
    let step = match change.action {
        ActionKind::Dispatch => "已派遣至承办单位处理",
        ActionKind::Reject => "经审核不予立案",
        ActionKind::AnswerOnSpot => "已答复办结",
        ActionKind::Complete => "承办单位已处置完毕，待核查",
        ActionKind::Close => "已办结",
        // The report merged away is told where it went; the target's reporters are not told
        // about each new duplicate.
        ActionKind::Merge if change.status == ticketing::Status::Closed => {
            "已与其他市民反映的同一问题合并办理"
        }
        _ => return None,
    };
    Some(format!(
        "您反映的问题（工单 {number}）{step}。\n当前状态：{}。\n发送工单号可查看详情。",
        status_for_citizens(change.status)
    ))
}

fn backoff(attempts: u32) -> SignedDuration {
    // 30 s, 1 min, 2 min ... capped at an hour.
    let secs = 30i64.saturating_mul(1 << attempts.saturating_sub(1).min(7));
    SignedDuration::from_secs(secs.min(3600))
}

struct Failure {
    message: String,
    retry: bool,
}

impl Failure {
    fn api(e: ApiError) -> Failure {
        Failure {
            retry: e.is_retryable(),
            message: format!("{}: {e}", e.code()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_and_is_capped() {
        assert_eq!(backoff(1), SignedDuration::from_secs(30));
        assert_eq!(backoff(2), SignedDuration::from_secs(60));
        assert_eq!(backoff(4), SignedDuration::from_secs(240));
        assert_eq!(backoff(30), SignedDuration::from_secs(3600));
    }
}
