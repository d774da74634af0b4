//! Ticket rows: insert with a per-day number, load, search, and change through the workflow.

use jiff::Timestamp;
use serde::Serialize;
use sqlx::AssertSqlSafe;
use sqlx::Row;
use sqlx::any::AnyRow;
use utoipa::ToSchema;

use super::{
    Backend, Bind, Page, Store, StoreError, arguments, escape_like, from_millis, parse, to_millis,
};
use crate::model::{
    Attachment, Channel, Location, NewTicket, PhoneNumber, Priority, Reporter, Ticket, TicketNumber,
};
use crate::workflow::{AuditEvent, Status, Transition, WorkState};

/// Search criteria for the ticket list; every field narrows the result.
#[derive(Debug, Clone, Default)]
pub struct TicketFilter {
    /// Any of these statuses (all when empty).
    pub status: Vec<Status>,
    /// A category ID or its prefix (`C01` for every 公用设施 component).
    pub category: Option<String>,
    /// Dispatched to this department.
    pub department: Option<String>,
    /// Came in through this channel.
    pub channel: Option<Channel>,
    /// Only tickets whose running clock is (or is not) past due.
    pub overdue: Option<bool>,
    /// Received at or after.
    pub from: Option<Timestamp>,
    /// Received before.
    pub to: Option<Timestamp>,
    /// Text in the content, the address or the number.
    pub text: Option<String>,
    /// Reported by this citizen (their tickets in the app, on WeChat, by phone).
    pub reporter: Option<ReporterKey>,
    /// 1-based page.
    pub page: u32,
    /// Page size (1..=200).
    pub per_page: u32,
}

/// How a citizen is known on a channel, to find the tickets they reported.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReporterKey {
    /// The full phone number.
    Phone(String),
    /// A WeChat follower's openid.
    Wechat(String),
    /// A city app account.
    App(String),
}

impl ReporterKey {
    fn column_and_value(&self) -> (&'static str, &str) {
        match self {
            ReporterKey::Phone(v) => ("phone", v),
            ReporterKey::Wechat(v) => ("wechat_openid", v),
            ReporterKey::App(v) => ("app_user", v),
        }
    }
}

/// A ticket as the list shows it: enough to pick one, no reporter details.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct TicketSummary {
    /// Public number.
    pub number: TicketNumber,
    /// Owning hotline.
    pub hotline: String,
    /// Where it came in.
    pub channel: Channel,
    /// Where it stands.
    pub status: Status,
    /// 紧急 or 一般.
    pub priority: Priority,
    /// Category ID.
    pub category: Option<String>,
    /// Department it is dispatched to.
    pub department: Option<String>,
    /// The first 120 characters of the content.
    pub excerpt: String,
    /// Address.
    pub address: Option<String>,
    /// When the running stage is due.
    #[schema(value_type = Option<String>, format = DateTime)]
    pub due: Option<Timestamp>,
    /// Whether the running stage is past due.
    pub overdue: bool,
    /// Received.
    #[schema(value_type = String, format = DateTime)]
    pub created_at: Timestamp,
    /// Last change.
    #[schema(value_type = String, format = DateTime)]
    pub updated_at: Timestamp,
}

pub(super) const TICKET_COLUMNS: &str = "t.id, t.number, t.hotline, t.channel, t.status, t.priority, t.category, \
    t.department, t.content, t.address, t.lat, t.lon, t.grid_code, t.work_state, t.current_due, \
    t.created_at, t.updated_at, (SELECT m.number FROM tickets m WHERE m.id = t.merged_into) AS merged_number";

impl Store {
    /// Writes a new ticket, its first audit event and its number (the next of the local day for
    /// the hotline) in one transaction. The caller has validated `new`. With an idempotency
    /// `key` already used by an earlier submission nothing is written and that ticket's number
    /// comes back instead; the key is stored in the same transaction as the ticket.
    #[allow(clippy::too_many_arguments)]
    pub(crate) async fn insert_ticket(
        &self,
        new: &NewTicket,
        hotline: &str,
        channel: Channel,
        day: jiff::civil::Date,
        state: &WorkState,
        event: &AuditEvent,
        origin: &Origin<'_>,
        suggestions: &[crate::merge::Match],
    ) -> Result<Inserted, StoreError> {
        let key = origin.key;
        match self
            .try_insert_ticket(
                new,
                hotline,
                channel,
                day,
                state,
                event,
                origin,
                suggestions,
            )
            .await
        {
            // Two requests with one key raced past the look-up (PostgreSQL): the loser reads
            // the winner's ticket.
            Err(StoreError::Database(e)) if key.is_some() && is_unique_violation(&e) => {
                let key = key.unwrap_or_default();
                match self.ticket_for_key(key).await? {
                    Some(number) => Ok(Inserted::Existing(number)),
                    None => Err(StoreError::Database(e)),
                }
            }
            other => other,
        }
    }

    /// The ticket an idempotency key was used for, if it was.
    pub async fn ticket_for_key(&self, key: &str) -> Result<Option<TicketNumber>, StoreError> {
        let mut conn = self.pool.acquire().await?;
        key_owner(&mut conn, key).await
    }

    #[allow(clippy::too_many_arguments)]
    async fn try_insert_ticket(
        &self,
        new: &NewTicket,
        hotline: &str,
        channel: Channel,
        day: jiff::civil::Date,
        state: &WorkState,
        event: &AuditEvent,
        origin: &Origin<'_>,
        suggestions: &[crate::merge::Match],
    ) -> Result<Inserted, StoreError> {
        let key = origin.key;
        let now = event.at;
        let work_state =
            serde_json::to_string(state).map_err(|e| StoreError::corrupt("tickets", e))?;
        let mut w = self.write().await?;
        if let Some(key) = key
            && let Some(number) = key_owner(&mut w.tx, key).await?
        {
            // The owner may be in this batch, not yet on disk: wait for it before telling.
            w.commit().await?;
            return Ok(Inserted::Existing(number));
        }
        let sequence: i64 = sqlx::query_scalar(
            "INSERT INTO ticket_sequences (hotline, day, last) VALUES ($1, $2, 1) \
             ON CONFLICT (hotline, day) DO UPDATE SET last = ticket_sequences.last + 1 \
             RETURNING last",
        )
        .bind(hotline)
        .bind(day.to_string())
        .fetch_one(&mut *w.tx)
        .await?;
        let number = TicketNumber::new(hotline, day, sequence);
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO tickets (number, hotline, channel, status, priority, category, department, \
             content, address, lat, lon, grid_code, work_state, current_due, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $15) RETURNING id",
        )
        .bind(number.as_str())
        .bind(hotline)
        .bind(channel.as_str())
        .bind(state.status.as_str())
        .bind(state.priority.as_str())
        .bind(state.category.as_deref())
        .bind(state.department.as_deref())
        .bind(&new.content)
        .bind(new.location.address.as_deref())
        .bind(new.location.lat)
        .bind(new.location.lon)
        .bind(new.location.grid_code.as_deref())
        .bind(work_state)
        .bind(state.current_due().map(to_millis))
        .bind(to_millis(now))
        // Not a cached statement: sqlx 0.9's `Any` driver types a missing `f64` as PostgreSQL
        // `real` (its null arms are swapped) and a cached statement keeps the types of its first
        // use, so a located report after an unlocated one would be refused. Test:
        // `channels_intake::located_reports_after_unlocated_ones`.
        .persistent(false)
        .fetch_one(&mut *w.tx)
        .await?;
        insert_reporter(&mut w.tx, id, &new.reporter, now).await?;
        for a in &new.attachments {
            insert_attachment(&mut w.tx, id, a, now).await?;
        }
        insert_event(&mut w.tx, id, event).await?;
        if let Some(key) = key {
            insert_key(&mut w.tx, key, id, now).await?;
        }
        if let Some((channel, sender)) = origin.thread {
            super::threads::upsert(&mut w.tx, channel, sender, id, now).await?;
        }
        super::merges::insert_suggestions(&mut w.tx, id, suggestions, now).await?;
        w.commit().await?;
        Ok(Inserted::New(Box::new(Ticket {
            id,
            number,
            hotline: hotline.to_owned(),
            channel,
            reporters: vec![new.reporter.clone()],
            content: new.content.clone(),
            location: new.location.clone(),
            attachments: new.attachments.clone(),
            work: state.clone(),
            merged_into: None,
            created_at: now,
            updated_at: now,
        })))
    }

    /// 补充: adds words, attachments and missing location fields to a ticket, with the audit
    /// event `event_for` makes from the ticket as it is, in one transaction. A `key` already used
    /// makes this a replay and nothing is written; `Ok(None)` means there is no such ticket.
    pub(crate) async fn supplement_ticket<E, F>(
        &self,
        number: &TicketNumber,
        add: &Supplement,
        origin: &Origin<'_>,
        event_for: F,
    ) -> Result<Option<Supplemented>, E>
    where
        E: From<StoreError>,
        F: FnOnce(&Ticket) -> Result<AuditEvent, E>,
    {
        let key = origin.key;
        let mut w = self.write().await.map_err(E::from)?;
        if let Some(key) = key
            && let Some(owner) = key_owner(&mut w.tx, key).await.map_err(E::from)?
        {
            // The owner may be in this batch, not yet on disk: wait for it before telling.
            w.commit().await.map_err(E::from)?;
            return Ok(Some(Supplemented::Replayed(owner)));
        }
        let lock = match self.backend {
            Backend::Postgres => " FOR UPDATE OF t",
            Backend::Sqlite => "",
        };
        let sql = format!("SELECT {TICKET_COLUMNS} FROM tickets t WHERE t.number = $1{lock}");
        let row = sqlx::query(AssertSqlSafe(sql))
            .bind(number.as_str())
            .fetch_optional(&mut *w.tx)
            .await
            .map_err(|e| E::from(e.into()))?;
        let Some(row) = row else { return Ok(None) };
        let mut ticket = load_ticket(&mut w.tx, &row).await.map_err(E::from)?;
        let event = event_for(&ticket)?;
        let now = event.at;
        if let Some(text) = add
            .content
            .as_deref()
            .map(str::trim)
            .filter(|t| !t.is_empty())
        {
            ticket.content = format!("{}\n{text}", ticket.content);
        }
        let loc = &mut ticket.location;
        if loc.address.is_none() {
            loc.address.clone_from(&add.location.address);
        }
        if loc.lat.is_none() && loc.lon.is_none() {
            loc.lat = add.location.lat;
            loc.lon = add.location.lon;
        }
        if loc.grid_code.is_none() {
            loc.grid_code.clone_from(&add.location.grid_code);
        }
        sqlx::query(
            "UPDATE tickets SET content = $1, address = $2, lat = $3, lon = $4, grid_code = $5, \
             updated_at = $6, version = version + 1 WHERE id = $7",
        )
        .bind(&ticket.content)
        .bind(ticket.location.address.as_deref())
        .bind(ticket.location.lat)
        .bind(ticket.location.lon)
        .bind(ticket.location.grid_code.as_deref())
        .bind(to_millis(now))
        .bind(ticket.id)
        // Not a cached statement: sqlx 0.9's `Any` driver types a missing `f64` as PostgreSQL
        // `real` (its null arms are swapped) and a cached statement keeps the types of its first
        // use, so a located report after an unlocated one would be refused. Test:
        // `channels_intake::located_reports_after_unlocated_ones`.
        .persistent(false)
        .execute(&mut *w.tx)
        .await
        .map_err(|e| E::from(e.into()))?;
        for a in &add.attachments {
            insert_attachment(&mut w.tx, ticket.id, a, now)
                .await
                .map_err(E::from)?;
            ticket.attachments.push(a.clone());
        }
        insert_event(&mut w.tx, ticket.id, &event)
            .await
            .map_err(E::from)?;
        if let Some(key) = key {
            insert_key(&mut w.tx, key, ticket.id, now)
                .await
                .map_err(E::from)?;
        }
        if let Some((channel, sender)) = origin.thread {
            super::threads::upsert(&mut w.tx, channel, sender, ticket.id, now)
                .await
                .map_err(E::from)?;
        }
        w.commit().await.map_err(E::from)?;
        ticket.updated_at = now;
        Ok(Some(Supplemented::Done(Box::new(ticket))))
    }

    /// The ticket with this number, with its reporters and attachments.
    pub async fn ticket(&self, number: &TicketNumber) -> Result<Option<Ticket>, StoreError> {
        let sql = format!("SELECT {TICKET_COLUMNS} FROM tickets t WHERE t.number = $1");
        let mut conn = self.pool.acquire().await?;
        let Some(row) = sqlx::query(AssertSqlSafe(sql))
            .bind(number.as_str())
            .fetch_optional(&mut *conn)
            .await?
        else {
            return Ok(None);
        };
        load_ticket(&mut conn, &row).await.map(Some)
    }

    /// Applies `step` to the ticket's current state under a write lock and stores the result with
    /// its audit event. `step` sees the whole ticket (for visibility checks) and may refuse; then
    /// nothing is written.
    pub(crate) async fn change_ticket<E, F>(
        &self,
        number: &TicketNumber,
        step: F,
    ) -> Result<Option<(Ticket, AuditEvent)>, E>
    where
        E: From<StoreError>,
        F: FnOnce(&Ticket) -> Result<Transition, E>,
    {
        let mut w = self.write().await.map_err(E::from)?;
        let lock = match self.backend {
            Backend::Postgres => " FOR UPDATE OF t",
            Backend::Sqlite => "",
        };
        let sql = format!("SELECT {TICKET_COLUMNS} FROM tickets t WHERE t.number = $1{lock}");
        let row = sqlx::query(AssertSqlSafe(sql))
            .bind(number.as_str())
            .fetch_optional(&mut *w.tx)
            .await
            .map_err(|e| E::from(e.into()))?;
        let Some(row) = row else { return Ok(None) };
        let mut ticket = load_ticket(&mut w.tx, &row).await.map_err(E::from)?;
        let Transition { state, event } = step(&ticket)?;
        let work_state = serde_json::to_string(&state)
            .map_err(|e| E::from(StoreError::corrupt("tickets", e)))?;
        sqlx::query(
            "UPDATE tickets SET status = $1, priority = $2, category = $3, department = $4, \
             work_state = $5, current_due = $6, updated_at = $7, version = version + 1 WHERE id = $8",
        )
        .bind(state.status.as_str())
        .bind(state.priority.as_str())
        .bind(state.category.as_deref())
        .bind(state.department.as_deref())
        .bind(work_state)
        .bind(state.current_due().map(to_millis))
        .bind(to_millis(event.at))
        .bind(ticket.id)
        .execute(&mut *w.tx)
        .await
        .map_err(|e| E::from(e.into()))?;
        insert_event(&mut w.tx, ticket.id, &event)
            .await
            .map_err(E::from)?;
        w.commit().await.map_err(E::from)?;
        ticket.work = state;
        ticket.updated_at = event.at;
        Ok(Some((ticket, event)))
    }

    /// The audit trail of a ticket, oldest first.
    pub async fn events(&self, ticket_id: i64) -> Result<Vec<AuditEvent>, StoreError> {
        let rows = sqlx::query(
            "SELECT at, actor_id, actor_name, role, action, from_status, to_status, note, data \
             FROM ticket_events WHERE ticket_id = $1 ORDER BY id",
        )
        .bind(ticket_id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                const T: &str = "ticket_events";
                let from: Option<String> = row.try_get("from_status")?;
                let data: String = row.try_get("data")?;
                Ok(AuditEvent {
                    at: from_millis(T, row.try_get("at")?)?,
                    actor_id: row.try_get("actor_id")?,
                    actor_name: row.try_get("actor_name")?,
                    role: parse(T, row, "role")?,
                    action: parse(T, row, "action")?,
                    from: from
                        .map(|s| s.parse().map_err(|e| StoreError::corrupt(T, e)))
                        .transpose()?,
                    to: parse(T, row, "to_status")?,
                    note: row.try_get("note")?,
                    data: serde_json::from_str(&data).map_err(|e| StoreError::corrupt(T, e))?,
                })
            })
            .collect()
    }

    /// Searches tickets; newest first.
    pub async fn list_tickets(
        &self,
        filter: &TicketFilter,
        now: Timestamp,
    ) -> Result<Page<TicketSummary>, StoreError> {
        let mut clauses: Vec<String> = Vec::new();
        let mut binds: Vec<Bind> = Vec::new();
        let next = |b: Bind, binds: &mut Vec<Bind>| {
            binds.push(b);
            format!("${}", binds.len())
        };
        if !filter.status.is_empty() {
            let marks: Vec<String> = filter
                .status
                .iter()
                .map(|s| next(Bind::Text(s.as_str().to_owned()), &mut binds))
                .collect();
            clauses.push(format!("t.status IN ({})", marks.join(", ")));
        }
        if let Some(c) = &filter.category {
            let p = next(Bind::Text(format!("{}%", escape_like(c))), &mut binds);
            clauses.push(format!("t.category LIKE {p} ESCAPE '\\'"));
        }
        if let Some(d) = &filter.department {
            let p = next(Bind::Text(d.clone()), &mut binds);
            clauses.push(format!("t.department = {p}"));
        }
        if let Some(c) = filter.channel {
            let p = next(Bind::Text(c.as_str().to_owned()), &mut binds);
            clauses.push(format!("t.channel = {p}"));
        }
        match filter.overdue {
            Some(true) => {
                let p = next(Bind::Int(to_millis(now)), &mut binds);
                clauses.push(format!("t.current_due IS NOT NULL AND t.current_due < {p}"));
            }
            Some(false) => {
                let p = next(Bind::Int(to_millis(now)), &mut binds);
                clauses.push(format!("(t.current_due IS NULL OR t.current_due >= {p})"));
            }
            None => {}
        }
        if let Some(from) = filter.from {
            let p = next(Bind::Int(to_millis(from)), &mut binds);
            clauses.push(format!("t.created_at >= {p}"));
        }
        if let Some(to) = filter.to {
            let p = next(Bind::Int(to_millis(to)), &mut binds);
            clauses.push(format!("t.created_at < {p}"));
        }
        if let Some(text) = filter
            .text
            .as_deref()
            .map(str::trim)
            .filter(|t| !t.is_empty())
        {
            let p = next(Bind::Text(format!("%{}%", escape_like(text))), &mut binds);
            clauses.push(format!(
                "(t.content LIKE {p} ESCAPE '\\' OR t.address LIKE {p} ESCAPE '\\' OR t.number LIKE {p} ESCAPE '\\')"
            ));
        }
        if let Some(key) = &filter.reporter {
            let (column, value) = key.column_and_value();
            let p = next(Bind::Text(value.to_owned()), &mut binds);
            clauses.push(format!(
                "EXISTS (SELECT 1 FROM ticket_reporters r WHERE r.ticket_id = t.id AND r.{column} = {p})"
            ));
        }
        let where_sql = if clauses.is_empty() {
            String::new()
        } else {
            format!(" WHERE {}", clauses.join(" AND "))
        };
        let per_page = filter.per_page.clamp(1, 200);
        let page = filter.page.max(1);
        let count_sql = format!("SELECT COUNT(*) FROM tickets t{where_sql}");
        let list_sql = format!(
            "SELECT t.number, t.hotline, t.channel, t.status, t.priority, t.category, t.department, \
             t.content, t.address, t.current_due, t.created_at, t.updated_at FROM tickets t{where_sql} \
             ORDER BY t.created_at DESC, t.id DESC LIMIT {per_page} OFFSET {}",
            (i64::from(page) - 1) * i64::from(per_page)
        );
        let total: i64 = sqlx::query_scalar_with(AssertSqlSafe(count_sql), arguments(&binds)?)
            .fetch_one(&self.pool)
            .await?;
        let rows = sqlx::query_with(AssertSqlSafe(list_sql), arguments(&binds)?)
            .fetch_all(&self.pool)
            .await?;
        let items = rows
            .iter()
            .map(|row| {
                const T: &str = "tickets";
                let content: String = row.try_get("content")?;
                let due = row
                    .try_get::<Option<i64>, _>("current_due")?
                    .map(|ms| from_millis(T, ms))
                    .transpose()?;
                Ok(TicketSummary {
                    number: TicketNumber::parse(&row.try_get::<String, _>("number")?)
                        .map_err(|e| StoreError::corrupt(T, e))?,
                    hotline: row.try_get("hotline")?,
                    channel: parse(T, row, "channel")?,
                    status: parse(T, row, "status")?,
                    priority: parse(T, row, "priority")?,
                    category: row.try_get("category")?,
                    department: row.try_get("department")?,
                    excerpt: content.chars().take(120).collect(),
                    address: row.try_get("address")?,
                    due,
                    overdue: due.is_some_and(|d| now > d),
                    created_at: from_millis(T, row.try_get("created_at")?)?,
                    updated_at: from_millis(T, row.try_get("updated_at")?)?,
                })
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        Ok(Page {
            items,
            total,
            page,
            per_page,
        })
    }

    /// How many tickets are in each status (for metrics and the wallboard).
    pub async fn status_counts(&self) -> Result<Vec<(Status, i64)>, StoreError> {
        let rows = sqlx::query("SELECT status, COUNT(*) AS n FROM tickets GROUP BY status")
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|row| Ok((parse("tickets", row, "status")?, row.try_get("n")?)))
            .collect()
    }

    /// How many open tickets are past their running deadline at `now`.
    pub async fn overdue_count(&self, now: Timestamp) -> Result<i64, StoreError> {
        Ok(sqlx::query_scalar(
            "SELECT COUNT(*) FROM tickets WHERE current_due IS NOT NULL AND current_due < $1",
        )
        .bind(to_millis(now))
        .fetch_one(&self.pool)
        .await?)
    }
}

/// What [`Store::insert_ticket`] did.
#[derive(Debug)]
pub(crate) enum Inserted {
    /// A new ticket.
    New(Box<Ticket>),
    /// The idempotency key had been used for this ticket; nothing was written.
    Existing(TicketNumber),
}

/// Where a submission came from, for what is written with it in the same transaction.
#[derive(Debug, Clone, Copy, Default)]
pub struct Origin<'a> {
    /// The channel's idempotency key (`wechat:msg:…`, `app:…`): a second submission with it
    /// makes nothing new.
    pub key: Option<&'a str>,
    /// The sender's conversation thread on a messaging channel, pointed at the ticket.
    pub thread: Option<(Channel, &'a str)>,
}

impl<'a> Origin<'a> {
    /// Only an idempotency key.
    pub fn keyed(key: &'a str) -> Self {
        Origin {
            key: Some(key),
            thread: None,
        }
    }
}

/// What a citizen adds to an open report.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Supplement {
    /// More words, appended on a new line.
    pub content: Option<String>,
    /// Location fields the ticket does not have yet (existing ones are kept).
    pub location: Location,
    /// Photos, voice notes.
    pub attachments: Vec<Attachment>,
}

/// What [`Store::supplement_ticket`] did.
#[derive(Debug)]
pub(crate) enum Supplemented {
    /// Written: the ticket as it is now.
    Done(Box<Ticket>),
    /// The key had been used (for this or another ticket); nothing was written.
    Replayed(TicketNumber),
}

async fn key_owner(
    conn: &mut sqlx::AnyConnection,
    key: &str,
) -> Result<Option<TicketNumber>, StoreError> {
    let number: Option<String> = sqlx::query_scalar(
        "SELECT t.number FROM intake_keys k JOIN tickets t ON t.id = k.ticket_id WHERE k.key = $1",
    )
    .bind(key)
    .fetch_optional(conn)
    .await?;
    number
        .map(|n| TicketNumber::parse(&n).map_err(|e| StoreError::corrupt("intake_keys", e)))
        .transpose()
}

async fn insert_key(
    conn: &mut sqlx::AnyConnection,
    key: &str,
    ticket_id: i64,
    at: Timestamp,
) -> Result<(), StoreError> {
    sqlx::query("INSERT INTO intake_keys (key, ticket_id, created_at) VALUES ($1, $2, $3)")
        .bind(key)
        .bind(ticket_id)
        .bind(to_millis(at))
        .execute(conn)
        .await?;
    Ok(())
}

fn is_unique_violation(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(d) if d.is_unique_violation())
}

async fn insert_attachment(
    conn: &mut sqlx::AnyConnection,
    ticket_id: i64,
    a: &Attachment,
    at: Timestamp,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO ticket_attachments (ticket_id, kind, uri, content_type, note, added_at) \
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(ticket_id)
    .bind(a.kind.as_str())
    .bind(&a.uri)
    .bind(a.content_type.as_deref())
    .bind(a.note.as_deref())
    .bind(to_millis(at))
    .execute(conn)
    .await?;
    Ok(())
}

async fn insert_reporter(
    conn: &mut sqlx::AnyConnection,
    ticket_id: i64,
    r: &Reporter,
    at: Timestamp,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO ticket_reporters (ticket_id, name, phone, wechat_openid, app_user, reported_at) \
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(ticket_id)
    .bind(r.name.as_deref())
    .bind(r.phone.as_ref().map(PhoneNumber::full))
    .bind(r.wechat_openid.as_deref())
    .bind(r.app_user.as_deref())
    .bind(to_millis(at))
    .execute(conn)
    .await?;
    Ok(())
}

pub(super) async fn insert_event(
    conn: &mut sqlx::AnyConnection,
    ticket_id: i64,
    e: &AuditEvent,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO ticket_events (ticket_id, at, actor_id, actor_name, role, action, from_status, \
         to_status, note, data) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
    )
    .bind(ticket_id)
    .bind(to_millis(e.at))
    .bind(e.actor_id)
    .bind(&e.actor_name)
    .bind(e.role.as_str())
    .bind(e.action.as_str())
    .bind(e.from.map(Status::as_str))
    .bind(e.to.as_str())
    .bind(e.note.as_deref())
    .bind(e.data.to_string())
    .execute(conn)
    .await?;
    Ok(())
}

pub(super) async fn load_ticket(
    conn: &mut sqlx::AnyConnection,
    row: &AnyRow,
) -> Result<Ticket, StoreError> {
    const T: &str = "tickets";
    let id: i64 = row.try_get("id")?;
    let work: String = row.try_get("work_state")?;
    let work: WorkState = serde_json::from_str(&work).map_err(|e| StoreError::corrupt(T, e))?;
    let reporters = sqlx::query(
        "SELECT name, phone, wechat_openid, app_user FROM ticket_reporters WHERE ticket_id = $1 ORDER BY id",
    )
    .bind(id)
    .fetch_all(&mut *conn)
    .await?
    .iter()
    .map(|r| {
        let phone: Option<String> = r.try_get("phone")?;
        Ok(Reporter {
            name: r.try_get("name")?,
            phone: phone
                .map(|p| PhoneNumber::parse(&p).map_err(|e| StoreError::corrupt("ticket_reporters", e)))
                .transpose()?,
            wechat_openid: r.try_get("wechat_openid")?,
            app_user: r.try_get("app_user")?,
        })
    })
    .collect::<Result<Vec<_>, StoreError>>()?;
    let attachments = sqlx::query(
        "SELECT kind, uri, content_type, note FROM ticket_attachments WHERE ticket_id = $1 ORDER BY id",
    )
    .bind(id)
    .fetch_all(&mut *conn)
    .await?
    .iter()
    .map(|r| {
        Ok(Attachment {
            kind: parse("ticket_attachments", r, "kind")?,
            uri: r.try_get("uri")?,
            content_type: r.try_get("content_type")?,
            note: r.try_get("note")?,
        })
    })
    .collect::<Result<Vec<_>, StoreError>>()?;
    let merged: Option<String> = row.try_get("merged_number")?;
    Ok(Ticket {
        id,
        number: TicketNumber::parse(&row.try_get::<String, _>("number")?)
            .map_err(|e| StoreError::corrupt(T, e))?,
        hotline: row.try_get("hotline")?,
        channel: parse(T, row, "channel")?,
        reporters,
        content: row.try_get("content")?,
        location: Location {
            address: row.try_get("address")?,
            lat: row.try_get("lat")?,
            lon: row.try_get("lon")?,
            grid_code: row.try_get("grid_code")?,
        },
        attachments,
        work,
        merged_into: merged
            .map(|m| TicketNumber::parse(&m).map_err(|e| StoreError::corrupt(T, e)))
            .transpose()?,
        created_at: from_millis(T, row.try_get("created_at")?)?,
        updated_at: from_millis(T, row.try_get("updated_at")?)?,
    })
}
