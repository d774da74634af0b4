//! Duplicate merging in storage: finding candidates for the sans-IO [`crate::merge`] decision,
//! merging a report into the ticket that handles its problem (both trails, the reporters copied,
//! one transaction), undoing it, and the suggestions agents decide on.

use jiff::{SignedDuration, Timestamp};
use sqlx::AssertSqlSafe;
use sqlx::Row;

use super::tickets::{TICKET_COLUMNS, insert_event, load_ticket};
use super::{Backend, Store, StoreError, from_millis, to_millis};
use crate::merge::{Candidate, Match, Submission};
use crate::model::{Location, Ticket, TicketNumber};
use crate::workflow::{Transition, WorkState};

/// Open tickets further than this many degrees of latitude are never near (≈ 1.1 km), so the
/// candidate query can use a box before the exact distance.
const MAX_BOX_DEG: f64 = 0.01;

/// A suggested duplicate waiting for an agent.
#[derive(Debug, Clone, PartialEq, serde::Serialize, utoipa::ToSchema)]
pub struct Suggestion {
    /// The open ticket this report may duplicate.
    pub number: TicketNumber,
    /// How alike they are (0–1).
    pub score: f64,
    /// Its content, shortened.
    pub excerpt: String,
}

impl Store {
    /// Open, unmerged tickets that may report the same problem as `sub`: received within
    /// `window` before it, and near it (a box around its coordinates, the same grid or the same
    /// address), or of the same big class of category when it has no place at all. Newest first.
    pub async fn merge_candidates(
        &self,
        sub: &Submission,
        window: SignedDuration,
        distance_m: f64,
        exclude: Option<i64>,
    ) -> Result<Vec<Candidate>, StoreError> {
        let since = to_millis(sub.at - window);
        let loc = &sub.location;
        let mut near = Vec::new();
        let mut sql = format!(
            "SELECT t.id, t.number, t.content, t.category, t.address, t.lat, t.lon, t.grid_code, t.created_at \
             FROM tickets t WHERE t.merged_into IS NULL AND t.status NOT IN ('rejected', 'closed') \
             AND t.created_at >= {since} AND t.id <> {}",
            exclude.unwrap_or(-1)
        );
        let mut texts: Vec<String> = Vec::new();
        if let (Some(lat), Some(lon)) = (loc.lat, loc.lon) {
            let dlat = (distance_m / 111_000.0).min(MAX_BOX_DEG);
            let dlon = dlat / lat.to_radians().cos().abs().max(0.1);
            near.push(format!(
                "(t.lat BETWEEN {} AND {} AND t.lon BETWEEN {} AND {})",
                lat - dlat,
                lat + dlat,
                lon - dlon,
                lon + dlon
            ));
        }
        if let Some(g) = &loc.grid_code {
            texts.push(g.clone());
            near.push(format!("t.grid_code = ${}", texts.len()));
        }
        if let Some(a) = loc
            .address
            .as_deref()
            .map(str::trim)
            .filter(|a| !a.is_empty())
        {
            texts.push(a.to_owned());
            near.push(format!("t.address = ${}", texts.len()));
        }
        if near.is_empty() {
            match &sub.category {
                // The same big class (`E01` of `E0102`): a related category may still be the
                // same problem, as `merge::category_relation` says.
                Some(c) => {
                    texts.push(format!("{}%", c.get(..3).unwrap_or(c)));
                    near.push(format!("t.category LIKE ${}", texts.len()));
                }
                None => return Ok(Vec::new()),
            }
        }
        // Without a place only a suggestion is possible: the newest few are enough.
        let limit = if texts.len() == near.len()
            && loc.lat.is_none()
            && loc.grid_code.is_none()
            && loc.address.is_none()
        {
            50
        } else {
            200
        };
        sql.push_str(&format!(
            " AND ({}) ORDER BY t.created_at DESC LIMIT {limit}",
            near.join(" OR ")
        ));
        let mut q = sqlx::query(AssertSqlSafe(sql));
        for t in &texts {
            q = q.bind(t.clone());
        }
        let rows = q.fetch_all(&self.pool).await?;
        rows.iter()
            .map(|r| {
                let number: String = r.try_get("number")?;
                Ok(Candidate {
                    number: TicketNumber::parse(&number)
                        .map_err(|e| StoreError::corrupt("tickets", e))?,
                    content: r.try_get("content")?,
                    category: r.try_get("category")?,
                    location: Location {
                        address: r.try_get("address")?,
                        lat: r.try_get("lat")?,
                        lon: r.try_get("lon")?,
                        grid_code: r.try_get("grid_code")?,
                    },
                    created_at: from_millis("tickets", r.try_get("created_at")?)?,
                    // Not part of the score; the merge itself counts the reporters.
                    reports: 1,
                })
            })
            .collect()
    }

    /// Merges `source` into `target` in one transaction: `step` sees both tickets and returns
    /// their transitions (the workflow's [`crate::workflow::merge`]). The source's reporters
    /// are copied onto the target, marked as coming from it. `Ok(None)` when either is missing.
    pub(crate) async fn merge_tickets<E, F>(
        &self,
        source: &TicketNumber,
        target: &TicketNumber,
        step: F,
    ) -> Result<Option<(Ticket, Ticket)>, E>
    where
        E: From<StoreError>,
        F: FnOnce(&Ticket, &Ticket) -> Result<(Transition, Transition), E>,
    {
        let mut w = self.write().await.map_err(E::from)?;
        let Some(mut src) = locked(&mut w.tx, self.backend, source)
            .await
            .map_err(E::from)?
        else {
            return Ok(None);
        };
        let Some(mut dst) = locked(&mut w.tx, self.backend, target)
            .await
            .map_err(E::from)?
        else {
            return Ok(None);
        };
        let (s, d) = step(&src, &dst)?;
        write_state(&mut w.tx, src.id, &s.state, s.event.at, Some(dst.id))
            .await
            .map_err(E::from)?;
        write_state(&mut w.tx, dst.id, &d.state, d.event.at, None)
            .await
            .map_err(E::from)?;
        sqlx::query(
            "INSERT INTO ticket_reporters (ticket_id, name, phone, wechat_openid, app_user, reported_at, merged_from) \
             SELECT $1, name, phone, wechat_openid, app_user, reported_at, $2 FROM ticket_reporters \
             WHERE ticket_id = $2 AND merged_from IS NULL",
        )
        .bind(dst.id)
        .bind(src.id)
        .execute(&mut *w.tx)
        .await
        .map_err(|e| E::from(e.into()))?;
        insert_event(&mut w.tx, src.id, &s.event)
            .await
            .map_err(E::from)?;
        insert_event(&mut w.tx, dst.id, &d.event)
            .await
            .map_err(E::from)?;
        sqlx::query(
            "UPDATE merge_suggestions SET decided_at = $1, decision = 'merged' WHERE ticket_id = $2 AND decided_at IS NULL",
        )
        .bind(to_millis(s.event.at))
        .bind(src.id)
        .execute(&mut *w.tx)
        .await
        .map_err(|e| E::from(e.into()))?;
        // Read back inside the transaction: the reporters list now includes the copies.
        let src_after = reload(&mut w.tx, src.id).await.map_err(E::from)?;
        let dst_after = reload(&mut w.tx, dst.id).await.map_err(E::from)?;
        w.commit().await.map_err(E::from)?;
        src = src_after;
        dst = dst_after;
        Ok(Some((src, dst)))
    }

    /// Undoes the merge of `source`: `step` gets the merged ticket and the state it had before
    /// (kept in the merge event) and returns the restoring transition; the reporters copied onto
    /// the target go, and the target's trail says so. `Ok(None)` when there is no such ticket.
    pub(crate) async fn unmerge_ticket<E, F, G>(
        &self,
        source: &TicketNumber,
        step: F,
        target_event: G,
    ) -> Result<Option<(Ticket, TicketNumber)>, E>
    where
        E: From<StoreError>,
        F: FnOnce(&Ticket, Option<WorkState>) -> Result<Transition, E>,
        G: FnOnce(&Ticket, &Ticket) -> crate::workflow::AuditEvent,
    {
        let mut w = self.write().await.map_err(E::from)?;
        let Some(src) = locked(&mut w.tx, self.backend, source)
            .await
            .map_err(E::from)?
        else {
            return Ok(None);
        };
        let target_id: Option<i64> =
            sqlx::query_scalar("SELECT merged_into FROM tickets WHERE id = $1")
                .bind(src.id)
                .fetch_one(&mut *w.tx)
                .await
                .map_err(|e| E::from(e.into()))?;
        let before: Option<String> = sqlx::query_scalar(
            "SELECT data FROM ticket_events WHERE ticket_id = $1 AND action = 'merge' ORDER BY id DESC LIMIT 1",
        )
        .bind(src.id)
        .fetch_optional(&mut *w.tx)
        .await
        .map_err(|e| E::from(e.into()))?;
        let before = before
            .and_then(|d| serde_json::from_str::<serde_json::Value>(&d).ok())
            .and_then(|d| serde_json::from_value::<WorkState>(d["before"].clone()).ok());
        let restore = step(&src, before.filter(|_| target_id.is_some()))?;
        let Some(target_id) = target_id else {
            return Ok(None);
        };
        let dst = reload(&mut w.tx, target_id).await.map_err(E::from)?;
        write_state(&mut w.tx, src.id, &restore.state, restore.event.at, None)
            .await
            .map_err(E::from)?;
        sqlx::query("UPDATE tickets SET merged_into = NULL WHERE id = $1")
            .bind(src.id)
            .execute(&mut *w.tx)
            .await
            .map_err(|e| E::from(e.into()))?;
        sqlx::query("DELETE FROM ticket_reporters WHERE ticket_id = $1 AND merged_from = $2")
            .bind(target_id)
            .bind(src.id)
            .execute(&mut *w.tx)
            .await
            .map_err(|e| E::from(e.into()))?;
        insert_event(&mut w.tx, src.id, &restore.event)
            .await
            .map_err(E::from)?;
        let event = target_event(&src, &dst);
        insert_event(&mut w.tx, target_id, &event)
            .await
            .map_err(E::from)?;
        let after = reload(&mut w.tx, src.id).await.map_err(E::from)?;
        w.commit().await.map_err(E::from)?;
        Ok(Some((after, dst.number)))
    }

    /// Records suggested duplicates of a ticket for an agent to decide on.
    pub async fn suggest_duplicates(
        &self,
        ticket: &TicketNumber,
        matches: &[Match],
        at: Timestamp,
    ) -> Result<(), StoreError> {
        if matches.is_empty() {
            return Ok(());
        }
        let mut w = self.write().await?;
        for m in matches {
            sqlx::query(
                "INSERT INTO merge_suggestions (ticket_id, candidate_id, score, created_at) \
                 SELECT s.id, c.id, $3, $4 FROM tickets s, tickets c WHERE s.number = $1 AND c.number = $2 \
                 ON CONFLICT (ticket_id, candidate_id) DO NOTHING",
            )
            .bind(ticket.as_str())
            .bind(m.number.as_str())
            .bind(m.score)
            .bind(to_millis(at))
            .execute(&mut *w.tx)
            .await?;
        }
        w.commit().await
    }

    /// The undecided duplicate suggestions of a ticket, best first.
    pub async fn suggestions(&self, ticket: &TicketNumber) -> Result<Vec<Suggestion>, StoreError> {
        let rows = sqlx::query(
            "SELECT c.number, m.score, c.content FROM merge_suggestions m \
             JOIN tickets s ON s.id = m.ticket_id JOIN tickets c ON c.id = m.candidate_id \
             WHERE s.number = $1 AND m.decided_at IS NULL ORDER BY m.score DESC",
        )
        .bind(ticket.as_str())
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                let number: String = r.try_get("number")?;
                let content: String = r.try_get("content")?;
                Ok(Suggestion {
                    number: TicketNumber::parse(&number)
                        .map_err(|e| StoreError::corrupt("merge_suggestions", e))?,
                    score: r.try_get("score")?,
                    excerpt: content.chars().take(60).collect(),
                })
            })
            .collect()
    }

    /// Records suggested duplicates for a ticket already stored (its place came later); one
    /// suggested, or decided on, before stays as it was.
    pub async fn add_suggestions(
        &self,
        ticket_id: i64,
        matches: &[Match],
        at: Timestamp,
    ) -> Result<(), StoreError> {
        if matches.is_empty() {
            return Ok(());
        }
        let mut w = self.write().await?;
        insert_suggestions(&mut w.tx, ticket_id, matches, at).await?;
        w.commit().await
    }

    /// The agent says `candidate` is not a duplicate of `ticket`. False when there was no such
    /// open suggestion.
    pub async fn reject_suggestion(
        &self,
        ticket: &TicketNumber,
        candidate: &TicketNumber,
        at: Timestamp,
    ) -> Result<bool, StoreError> {
        let mut w = self.write().await?;
        let n = sqlx::query(
            "UPDATE merge_suggestions SET decided_at = $1, decision = 'rejected' \
             WHERE decided_at IS NULL AND ticket_id = (SELECT id FROM tickets WHERE number = $2) \
             AND candidate_id = (SELECT id FROM tickets WHERE number = $3)",
        )
        .bind(to_millis(at))
        .bind(ticket.as_str())
        .bind(candidate.as_str())
        .execute(&mut *w.tx)
        .await?
        .rows_affected();
        w.commit().await?;
        Ok(n > 0)
    }
}

async fn locked(
    conn: &mut sqlx::AnyConnection,
    backend: Backend,
    number: &TicketNumber,
) -> Result<Option<Ticket>, StoreError> {
    let lock = match backend {
        Backend::Postgres => " FOR UPDATE OF t",
        Backend::Sqlite => "",
    };
    let sql = format!("SELECT {TICKET_COLUMNS} FROM tickets t WHERE t.number = $1{lock}");
    let row = sqlx::query(AssertSqlSafe(sql))
        .bind(number.as_str())
        .fetch_optional(&mut *conn)
        .await?;
    match row {
        Some(row) => load_ticket(conn, &row).await.map(Some),
        None => Ok(None),
    }
}

async fn reload(conn: &mut sqlx::AnyConnection, id: i64) -> Result<Ticket, StoreError> {
    let sql = format!("SELECT {TICKET_COLUMNS} FROM tickets t WHERE t.id = $1");
    let row = sqlx::query(AssertSqlSafe(sql))
        .bind(id)
        .fetch_one(&mut *conn)
        .await?;
    load_ticket(conn, &row).await
}

async fn write_state(
    conn: &mut sqlx::AnyConnection,
    id: i64,
    state: &WorkState,
    at: Timestamp,
    merged_into: Option<i64>,
) -> Result<(), StoreError> {
    let work_state = serde_json::to_string(state).map_err(|e| StoreError::corrupt("tickets", e))?;
    sqlx::query(
        "UPDATE tickets SET status = $1, priority = $2, category = $3, department = $4, \
         work_state = $5, current_due = $6, updated_at = $7, version = version + 1, \
         merged_into = COALESCE($8, merged_into) WHERE id = $9",
    )
    .bind(state.status.as_str())
    .bind(state.priority.as_str())
    .bind(state.category.as_deref())
    .bind(state.department.as_deref())
    .bind(work_state)
    .bind(state.current_due().map(to_millis))
    .bind(to_millis(at))
    .bind(merged_into)
    .bind(id)
    .execute(conn)
    .await?;
    Ok(())
}

/// Writes a new ticket's suggested duplicates inside its intake transaction.
pub(super) async fn insert_suggestions(
    conn: &mut sqlx::AnyConnection,
    ticket_id: i64,
    matches: &[Match],
    at: Timestamp,
) -> Result<(), StoreError> {
    for m in matches {
        sqlx::query(
            "INSERT INTO merge_suggestions (ticket_id, candidate_id, score, created_at) \
             SELECT $1, c.id, $3, $4 FROM tickets c WHERE c.number = $2 \
             ON CONFLICT (ticket_id, candidate_id) DO NOTHING",
        )
        .bind(ticket_id)
        .bind(m.number.as_str())
        .bind(m.score)
        .bind(to_millis(at))
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}
