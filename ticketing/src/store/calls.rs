//! Call detail records: written by the gateway as a call goes (started, answered, ended), closed
//! after a crash, read and searched by staff.
//!
//! Every write is idempotent in the way SIP needs: a retransmitted INVITE adds no second row, a
//! second 200 OK does not move the answer time, a second BYE does not move the end.

use jiff::Timestamp;
use sqlx::AssertSqlSafe;
use sqlx::Row;
use sqlx::any::AnyRow;

use super::{Bind, Page, Store, StoreError, arguments, escape_like, from_millis, parse, to_millis};
use crate::calls::{Call, CallEnd, CallFilter, EndedBy, NewCall};

const T: &str = "calls";

const CALL_COLUMNS: &str = "c.id, c.call_id, c.hotline, c.from_number, c.from_uri, c.to_number, \
    c.source, c.trunk, c.started_at, c.answered_at, c.ended_at, c.ended_by, c.end_code, \
    c.end_reason, c.duration_ms, c.recording_path, c.recording_bytes, c.node, c.ticket_id, \
    c.language";

/// What a restart writes into the calls it finds still running.
const INTERRUPTED_REASON: &str = "node restarted";

impl Store {
    /// Records a call that has just arrived and returns its row id. Idempotent on the Call-ID:
    /// for a retransmitted INVITE it returns the existing row's id and changes nothing.
    pub async fn call_started(&self, new: &NewCall) -> Result<i64, StoreError> {
        let mut w = self.write().await?;
        let inserted: Option<i64> = sqlx::query_scalar(
            "INSERT INTO calls (call_id, hotline, from_number, from_uri, to_number, source, trunk, \
             started_at, node) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) \
             ON CONFLICT (call_id) DO NOTHING RETURNING id",
        )
        .bind(&new.call_id)
        .bind(new.hotline.as_deref())
        .bind(new.from_number.as_deref())
        .bind(new.from_uri.as_deref())
        .bind(new.to_number.as_deref())
        .bind(new.source.as_deref())
        .bind(new.trunk.as_deref())
        .bind(to_millis(new.started_at))
        .bind(new.node.as_deref())
        .fetch_optional(&mut *w.tx)
        .await?;
        let id = match inserted {
            Some(id) => id,
            None => {
                sqlx::query_scalar("SELECT id FROM calls WHERE call_id = $1")
                    .bind(&new.call_id)
                    .fetch_one(&mut *w.tx)
                    .await?
            }
        };
        w.commit().await?;
        Ok(id)
    }

    /// Marks a running call answered at `at`, with the recording it is being written to (relative
    /// to the data directory). Returns `false`, changing nothing, when the call is unknown, already
    /// answered or already ended.
    pub async fn call_answered(
        &self,
        call_id: &str,
        at: Timestamp,
        recording_path: Option<&str>,
    ) -> Result<bool, StoreError> {
        let mut w = self.write().await?;
        let done = sqlx::query(
            "UPDATE calls SET answered_at = $2, recording_path = COALESCE($3, recording_path) \
             WHERE call_id = $1 AND answered_at IS NULL AND ended_at IS NULL",
        )
        .bind(call_id)
        .bind(to_millis(at))
        .bind(recording_path)
        .execute(&mut *w.tx)
        .await?;
        w.commit().await?;
        Ok(done.rows_affected() == 1)
    }

    /// Records the end of a call: who, the SIP code, why, the recording's final size and the
    /// language the IVR spoke. The talk time is computed from the answer time (none for an
    /// unanswered call). Returns `false`, changing nothing, when the call is unknown or already
    /// ended (a retransmitted BYE).
    pub async fn call_ended(
        &self,
        call_id: &str,
        end: &CallEnd,
        recording_bytes: Option<u64>,
    ) -> Result<bool, StoreError> {
        let mut w = self.write().await?;
        let done = sqlx::query(
            "UPDATE calls SET ended_at = $2, ended_by = $3, end_code = $4, end_reason = $5, \
             recording_bytes = $6, language = COALESCE($7, language), \
             duration_ms = CASE WHEN answered_at IS NULL THEN NULL \
             WHEN answered_at < $2 THEN $2 - answered_at ELSE 0 END \
             WHERE call_id = $1 AND ended_at IS NULL",
        )
        .bind(call_id)
        .bind(to_millis(end.at))
        .bind(end.ended_by.as_str())
        .bind(i32::from(end.code))
        .bind(&end.reason)
        .bind(recording_bytes.map(|b| i64::try_from(b).unwrap_or(i64::MAX)))
        .bind(end.language.as_deref())
        .execute(&mut *w.tx)
        .await?;
        w.commit().await?;
        Ok(done.rows_affected() == 1)
    }

    /// Links the ticket opened in a call (a voicemail, an agent's intake) to its record;
    /// false when the call is unknown.
    pub async fn link_call_ticket(
        &self,
        call_id: &str,
        ticket_id: i64,
    ) -> Result<bool, StoreError> {
        let mut w = self.write().await?;
        let done = sqlx::query("UPDATE calls SET ticket_id = $2 WHERE call_id = $1")
            .bind(call_id)
            .bind(ticket_id)
            .execute(&mut *w.tx)
            .await?;
        w.commit().await?;
        Ok(done.rows_affected() == 1)
    }

    /// At start-up: closes the calls `node` left running when it stopped without ending them (a
    /// crash, a kill). They end at `at`, by `system`, with the reason `node restarted` and no SIP
    /// code; their talk time stays unknown (`NULL`) since the real end is. `node` `None` closes the
    /// calls recorded without a node name. Returns how many were closed.
    pub async fn close_interrupted_calls(
        &self,
        at: Timestamp,
        node: Option<&str>,
    ) -> Result<u64, StoreError> {
        let sql = format!(
            "UPDATE calls SET ended_at = $1, ended_by = $2, end_reason = $3 \
             WHERE ended_at IS NULL AND {}",
            if node.is_some() {
                "node = $4"
            } else {
                "node IS NULL"
            }
        );
        let mut w = self.write().await?;
        let mut query = sqlx::query(AssertSqlSafe(sql))
            .bind(to_millis(at))
            .bind(EndedBy::System.as_str())
            .bind(INTERRUPTED_REASON);
        if let Some(node) = node {
            query = query.bind(node);
        }
        let done = query.execute(&mut *w.tx).await?;
        w.commit().await?;
        Ok(done.rows_affected())
    }

    /// The call with this row id.
    pub async fn get_call(&self, id: i64) -> Result<Option<Call>, StoreError> {
        let sql = format!("SELECT {CALL_COLUMNS} FROM calls c WHERE c.id = $1");
        sqlx::query(AssertSqlSafe(sql))
            .bind(id)
            .fetch_optional(&self.pool)
            .await?
            .as_ref()
            .map(call_from_row)
            .transpose()
    }

    /// The call with this SIP Call-ID.
    pub async fn get_call_by_call_id(&self, call_id: &str) -> Result<Option<Call>, StoreError> {
        let sql = format!("SELECT {CALL_COLUMNS} FROM calls c WHERE c.call_id = $1");
        sqlx::query(AssertSqlSafe(sql))
            .bind(call_id)
            .fetch_optional(&self.pool)
            .await?
            .as_ref()
            .map(call_from_row)
            .transpose()
    }

    /// Searches calls, newest first. `page` is 1-based; `per_page` is held to 1..=200.
    pub async fn list_calls(
        &self,
        filter: &CallFilter,
        page: u32,
        per_page: u32,
    ) -> Result<Page<Call>, StoreError> {
        let mut clauses: Vec<String> = Vec::new();
        let mut binds: Vec<Bind> = Vec::new();
        let next = |b: Bind, binds: &mut Vec<Bind>| {
            binds.push(b);
            format!("${}", binds.len())
        };
        if let Some(h) = filter.hotline.as_deref().filter(|h| !h.is_empty()) {
            let p = next(Bind::Text(h.to_owned()), &mut binds);
            clauses.push(format!("c.hotline = {p}"));
        }
        if let Some(number) = filter.number.as_deref().map(searchable_number)
            && !number.is_empty()
        {
            let p = next(
                Bind::Text(format!("%{}%", escape_like(&number))),
                &mut binds,
            );
            clauses.push(format!(
                "(c.from_number LIKE {p} ESCAPE '\\' OR c.to_number LIKE {p} ESCAPE '\\')"
            ));
        }
        if let Some(since) = filter.since {
            let p = next(Bind::Int(to_millis(since)), &mut binds);
            clauses.push(format!("c.started_at >= {p}"));
        }
        if let Some(until) = filter.until {
            let p = next(Bind::Int(to_millis(until)), &mut binds);
            clauses.push(format!("c.started_at < {p}"));
        }
        match filter.answered {
            Some(true) => clauses.push("c.answered_at IS NOT NULL".to_owned()),
            Some(false) => clauses.push("c.answered_at IS NULL".to_owned()),
            None => {}
        }
        if let Some(by) = filter.ended_by {
            let p = next(Bind::Text(by.as_str().to_owned()), &mut binds);
            clauses.push(format!("c.ended_by = {p}"));
        }
        let where_sql = if clauses.is_empty() {
            String::new()
        } else {
            format!(" WHERE {}", clauses.join(" AND "))
        };
        let per_page = per_page.clamp(1, 200);
        let page = page.max(1);
        let count_sql = format!("SELECT COUNT(*) FROM calls c{where_sql}");
        let list_sql = format!(
            "SELECT {CALL_COLUMNS} FROM calls c{where_sql} \
             ORDER BY c.started_at DESC, c.id DESC LIMIT {per_page} OFFSET {}",
            (i64::from(page) - 1) * i64::from(per_page)
        );
        let total: i64 = sqlx::query_scalar_with(AssertSqlSafe(count_sql), arguments(&binds)?)
            .fetch_one(&self.pool)
            .await?;
        let items = sqlx::query_with(AssertSqlSafe(list_sql), arguments(&binds)?)
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(call_from_row)
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Page {
            items,
            total,
            page,
            per_page,
        })
    }
}

/// A number as typed (`139-0000 1234`) reduced to what is stored (`13900001234`).
fn searchable_number(typed: &str) -> String {
    typed
        .chars()
        .filter(|c| !matches!(c, ' ' | '-' | '(' | ')'))
        .collect()
}

fn call_from_row(row: &AnyRow) -> Result<Call, StoreError> {
    let time = |col: &str| -> Result<Option<Timestamp>, StoreError> {
        row.try_get::<Option<i64>, _>(col)?
            .map(|ms| from_millis(T, ms))
            .transpose()
    };
    let ended_by: Option<String> = row.try_get("ended_by")?;
    Ok(Call {
        id: row.try_get("id")?,
        call_id: row.try_get("call_id")?,
        hotline: row.try_get("hotline")?,
        from_number: row.try_get("from_number")?,
        from_uri: row.try_get("from_uri")?,
        to_number: row.try_get("to_number")?,
        source: row.try_get("source")?,
        trunk: row.try_get("trunk")?,
        started_at: from_millis(T, row.try_get("started_at")?)?,
        answered_at: time("answered_at")?,
        ended_at: time("ended_at")?,
        ended_by: match ended_by {
            Some(_) => Some(parse(T, row, "ended_by")?),
            None => None,
        },
        end_code: row
            .try_get::<Option<i32>, _>("end_code")?
            .map(|c| u16::try_from(c).map_err(|_| StoreError::corrupt(T, format!("end_code {c}"))))
            .transpose()?,
        end_reason: row.try_get("end_reason")?,
        duration_ms: row.try_get("duration_ms")?,
        recording_path: row.try_get("recording_path")?,
        recording_bytes: row
            .try_get::<Option<i64>, _>("recording_bytes")?
            .map(|b| {
                u64::try_from(b).map_err(|_| StoreError::corrupt(T, format!("recording_bytes {b}")))
            })
            .transpose()?,
        node: row.try_get("node")?,
        ticket_id: row.try_get("ticket_id")?,
        language: row.try_get("language")?,
    })
}
