//! Turns the SIP gateway's call events into call detail records, and tidies up after a crash:
//! calls this node left open are closed and their recordings' headers repaired, so every file
//! opens and plays up to its last second.

use std::path::Path;

use jiff::Timestamp;
use sip_gateway::{CallEvent, EndedBy};
use ticketing::Store;
use ticketing::calls::{self, CallEnd, NewCall};
use tokio::sync::mpsc;

/// This node's name in call records: `HOTLINE_NODE`, else the host name.
pub fn node_name() -> String {
    std::env::var("HOTLINE_NODE")
        .ok()
        .filter(|n| !n.is_empty())
        .or_else(|| {
            std::fs::read_to_string("/proc/sys/kernel/hostname")
                .ok()
                .map(|h| h.trim().to_string())
        })
        .filter(|n| !n.is_empty())
        .unwrap_or_else(|| "local".into())
}

/// Closes the calls this node left running and repairs the recordings of the last three days.
/// Days are counted in the calendar's time zone, as the gateway files recordings by it.
pub async fn recover(
    store: &Store,
    data_dir: &Path,
    node: &str,
    timezone: &jiff::tz::TimeZone,
) -> anyhow::Result<()> {
    let closed = store
        .close_interrupted_calls(Timestamp::now(), Some(node))
        .await?;
    if closed > 0 {
        tracing::warn!(
            closed,
            "closed calls left open by an earlier run of this node"
        );
    }
    let root = data_dir.join("recordings");
    let today = Timestamp::now().to_zoned(timezone.clone()).date();
    let days: Vec<_> = (0..3)
        .filter_map(|d| today.checked_sub(jiff::Span::new().days(d)).ok())
        .map(|d| root.join(format!("{:04}/{:02}/{:02}", d.year(), d.month(), d.day())))
        .collect();
    let repaired = tokio::task::spawn_blocking(move || {
        let mut changed = 0usize;
        for day in days {
            for (path, result) in sip_gateway::recording::repair_all(&day) {
                match result {
                    Ok(r) if r.changed => {
                        changed += 1;
                        tracing::info!(path = %path.display(), seconds = r.duration.as_secs_f64(), "recording repaired after a crash");
                    }
                    Ok(_) => {}
                    Err(e) => tracing::warn!(path = %path.display(), error = %e, "recording cannot be repaired"),
                }
            }
        }
        changed
    })
    .await?;
    if repaired > 0 {
        tracing::warn!(repaired, "recordings repaired");
    }
    Ok(())
}

/// Writes call events as they come until the gateway drops its sender.
pub async fn write_records(
    store: Store,
    mut events: mpsc::UnboundedReceiver<CallEvent>,
    node: String,
) {
    while let Some(event) = events.recv().await {
        let result = match &event {
            CallEvent::Started(s) => store
                .call_started(&NewCall {
                    call_id: s.call_id.clone(),
                    hotline: s.hotline.clone(),
                    from_number: Some(s.from_number.clone()).filter(|n| !n.is_empty()),
                    from_uri: Some(s.from_uri.clone()).filter(|n| !n.is_empty()),
                    to_number: Some(s.to_number.clone()).filter(|n| !n.is_empty()),
                    source: Some(s.source.clone()).filter(|n| !n.is_empty()),
                    trunk: s.trunk.clone(),
                    started_at: s.at,
                    node: Some(node.clone()),
                })
                .await
                .map(|_| ()),
            CallEvent::Answered {
                call_id,
                at,
                recording,
            } => store
                .call_answered(call_id, *at, recording.as_deref())
                .await
                .map(|_| ()),
            CallEvent::Ended {
                call_id,
                at,
                ended_by,
                code,
                reason,
                recording_bytes,
                ..
            } => store
                .call_ended(
                    call_id,
                    &CallEnd {
                        at: *at,
                        ended_by: match ended_by {
                            EndedBy::Caller => calls::EndedBy::Caller,
                            EndedBy::Hotline => calls::EndedBy::Hotline,
                            EndedBy::System => calls::EndedBy::System,
                        },
                        code: *code,
                        reason: reason.clone(),
                    },
                    *recording_bytes,
                )
                .await
                .map(|_| ()),
            CallEvent::Digit { .. } => Ok(()),
        };
        if let Err(e) = result {
            tracing::error!(error = %e, ?event, "writing the call record failed");
            metrics::counter!("hotline_cdr_write_failures_total").increment(1);
        }
    }
}
