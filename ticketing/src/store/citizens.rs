//! Citizens of the city app: accounts by phone, login codes and bearer tokens (hashes only; the
//! caller hashes), the points ledger and ratings. The decisions (is this code right, may a code be
//! sent, how many points) are [`crate::citizens`]'s; this module keeps the rows.

use jiff::Timestamp;
use serde::Serialize;
use sqlx::Row;
use sqlx::any::AnyRow;
use utoipa::ToSchema;

use super::{Store, StoreError, from_millis, to_millis};
use crate::audit::AuditEntry;
use crate::calendar::WorkCalendar;
use crate::citizens::{PendingCode, Rating, Reason, RewardRule};
use crate::model::TicketNumber;
use crate::workflow::{ActionKind, Status};

const T: &str = "citizens";

/// A city-app account.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct Citizen {
    /// Account id; also the `app_user` of the reports they make.
    pub id: i64,
    /// The verified phone number (digits, maybe a leading +).
    pub phone: String,
    /// Points balance (积分).
    pub points: i64,
    /// When the account was made (first login).
    #[schema(value_type = String, format = DateTime)]
    pub created_at: Timestamp,
}

impl Citizen {
    /// The `app_user` written on their reports and searched for their ticket list.
    pub fn app_user(&self) -> String {
        self.id.to_string()
    }
}

/// One line of a citizen's points ledger.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct PointsEntry {
    /// The report that earned them.
    pub ticket: TicketNumber,
    /// Why.
    pub reason: Reason,
    /// What the citizen reads.
    pub label: &'static str,
    /// Points given (0 when the daily cap was reached).
    pub points: i64,
    /// The centre's local day the award counts for (`YYYY-MM-DD`).
    pub day: String,
    /// When the step that earned them happened.
    #[schema(value_type = String, format = DateTime)]
    pub at: Timestamp,
}

/// A rating as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct StoredRating {
    /// 1–5.
    pub stars: u8,
    /// The citizen's words.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
    /// When.
    #[schema(value_type = String, format = DateTime)]
    pub rated_at: Timestamp,
}

fn rating_from_row(r: &AnyRow) -> Result<StoredRating, StoreError> {
    let stars: i64 = r.try_get("stars")?;
    Ok(StoredRating {
        stars: u8::try_from(stars).map_err(|e| StoreError::corrupt("ticket_ratings", e))?,
        comment: r.try_get("comment")?,
        rated_at: from_millis("ticket_ratings", r.try_get("rated_at")?)?,
    })
}

fn citizen_from_row(r: &AnyRow) -> Result<Citizen, StoreError> {
    Ok(Citizen {
        id: r.try_get("id")?,
        phone: r.try_get("phone")?,
        points: r.try_get("points")?,
        created_at: from_millis(T, r.try_get("created_at")?)?,
    })
}

impl Store {
    /// When codes were sent to `phone` at or after `since`.
    pub async fn code_sends_since(
        &self,
        phone: &str,
        since: Timestamp,
    ) -> Result<Vec<Timestamp>, StoreError> {
        let rows: Vec<i64> = sqlx::query_scalar(
            "SELECT sent_at FROM citizen_codes WHERE phone = $1 AND sent_at >= $2 ORDER BY sent_at",
        )
        .bind(phone)
        .bind(to_millis(since))
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter()
            .map(|ms| from_millis("citizen_codes", ms))
            .collect()
    }

    /// Stores a code just sent (its hash); it replaces any earlier code of the phone.
    pub async fn add_code(
        &self,
        phone: &str,
        code_hash: &str,
        now: Timestamp,
        expires_at: Timestamp,
    ) -> Result<i64, StoreError> {
        let mut w = self.write().await?;
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO citizen_codes (phone, code_hash, sent_at, expires_at) VALUES ($1, $2, $3, $4) RETURNING id",
        )
        .bind(phone)
        .bind(code_hash)
        .bind(to_millis(now))
        .bind(to_millis(expires_at))
        .fetch_one(&mut *w.tx)
        .await?;
        w.commit().await?;
        Ok(id)
    }

    /// Takes back a code whose sending failed, so it neither counts against the limit nor logs in.
    pub async fn remove_code(&self, id: i64) -> Result<(), StoreError> {
        let mut w = self.write().await?;
        sqlx::query("DELETE FROM citizen_codes WHERE id = $1")
            .bind(id)
            .execute(&mut *w.tx)
            .await?;
        w.commit().await
    }

    /// The latest code sent to `phone`, if any.
    pub async fn latest_code(&self, phone: &str) -> Result<Option<PendingCode>, StoreError> {
        let row = sqlx::query(
            "SELECT id, code_hash, expires_at, attempts, used_at FROM citizen_codes \
             WHERE phone = $1 ORDER BY id DESC LIMIT 1",
        )
        .bind(phone)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| {
            let attempts: i64 = r.try_get("attempts")?;
            Ok(PendingCode {
                id: r.try_get("id")?,
                code_hash: r.try_get("code_hash")?,
                expires_at: from_millis("citizen_codes", r.try_get("expires_at")?)?,
                attempts: u32::try_from(attempts).unwrap_or(u32::MAX),
                used: r.try_get::<Option<i64>, _>("used_at")?.is_some(),
            })
        })
        .transpose()
    }

    /// Counts a wrong try on a code.
    pub async fn code_failed(&self, id: i64) -> Result<(), StoreError> {
        let mut w = self.write().await?;
        sqlx::query("UPDATE citizen_codes SET attempts = attempts + 1 WHERE id = $1")
            .bind(id)
            .execute(&mut *w.tx)
            .await?;
        w.commit().await
    }

    /// Spends the code `code_id` (accepted by the check) and logs `phone` in: the account is made
    /// on first login, and the token (its hash) is stored, all in one transaction. `None` when the
    /// code was spent meanwhile (two logins racing with one code).
    pub async fn redeem_code(
        &self,
        code_id: i64,
        phone: &str,
        token_hash: &str,
        now: Timestamp,
        token_expires: Timestamp,
    ) -> Result<Option<Citizen>, StoreError> {
        let mut w = self.write().await?;
        let spent = sqlx::query(
            "UPDATE citizen_codes SET used_at = $1 WHERE id = $2 AND phone = $3 AND used_at IS NULL",
        )
        .bind(to_millis(now))
        .bind(code_id)
        .bind(phone)
        .execute(&mut *w.tx)
        .await?
        .rows_affected();
        if spent != 1 {
            // Spent by a writer of this batch, perhaps: on disk before we say so.
            w.commit().await?;
            return Ok(None);
        }
        let row = sqlx::query(
            "INSERT INTO citizens (phone, created_at, last_login_at) VALUES ($1, $2, $2) \
             ON CONFLICT (phone) DO UPDATE SET last_login_at = excluded.last_login_at \
             RETURNING id, phone, points, created_at",
        )
        .bind(phone)
        .bind(to_millis(now))
        .fetch_one(&mut *w.tx)
        .await?;
        let citizen = citizen_from_row(&row)?;
        sqlx::query(
            "INSERT INTO citizen_tokens (token_hash, citizen_id, created_at, expires_at) VALUES ($1, $2, $3, $4)",
        )
        .bind(token_hash)
        .bind(citizen.id)
        .bind(to_millis(now))
        .bind(to_millis(token_expires))
        .execute(&mut *w.tx)
        .await?;
        w.commit().await?;
        Ok(Some(citizen))
    }

    /// The citizen a bearer token (its hash) belongs to, while it has not expired.
    pub async fn citizen_by_token(
        &self,
        token_hash: &str,
        now: Timestamp,
    ) -> Result<Option<Citizen>, StoreError> {
        let row = sqlx::query(
            "SELECT c.id, c.phone, c.points, c.created_at FROM citizen_tokens k \
             JOIN citizens c ON c.id = k.citizen_id WHERE k.token_hash = $1 AND k.expires_at > $2",
        )
        .bind(token_hash)
        .bind(to_millis(now))
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(citizen_from_row).transpose()
    }

    /// Ends a citizen's login (the token stops working).
    pub async fn end_citizen_token(&self, token_hash: &str) -> Result<(), StoreError> {
        let mut w = self.write().await?;
        sqlx::query("DELETE FROM citizen_tokens WHERE token_hash = $1")
            .bind(token_hash)
            .execute(&mut *w.tx)
            .await?;
        w.commit().await
    }

    /// A citizen's points balance and ledger, newest first.
    pub async fn points_ledger(
        &self,
        citizen_id: i64,
    ) -> Result<(i64, Vec<PointsEntry>), StoreError> {
        let balance: Option<i64> = sqlx::query_scalar("SELECT points FROM citizens WHERE id = $1")
            .bind(citizen_id)
            .fetch_optional(&self.pool)
            .await?;
        let rows = sqlx::query(
            "SELECT t.number, p.reason, p.points, p.day, p.awarded_at FROM citizen_points p \
             JOIN tickets t ON t.id = p.ticket_id WHERE p.citizen_id = $1 ORDER BY p.id DESC LIMIT 500",
        )
        .bind(citizen_id)
        .fetch_all(&self.pool)
        .await?;
        let entries = rows
            .iter()
            .map(|r| {
                let number: String = r.try_get("number")?;
                let reason: Reason = super::parse("citizen_points", r, "reason")?;
                Ok(PointsEntry {
                    ticket: TicketNumber::parse(&number)
                        .map_err(|e| StoreError::corrupt("citizen_points", e))?,
                    reason,
                    label: reason.label(),
                    points: r.try_get("points")?,
                    day: r.try_get("day")?,
                    at: from_millis("citizen_points", r.try_get("awarded_at")?)?,
                })
            })
            .collect::<Result<_, StoreError>>()?;
        Ok((balance.unwrap_or(0), entries))
    }

    /// One round of the points worker: reads ticket events after `after`, and for every 立案 or
    /// 结案 of a ticket with city-app reporters gives each of them what `rule` says (capped per
    /// day of `calendar`). Returns the awards made and the last event read (the next cursor).
    /// Replaying events awards nothing twice: the ledger is unique per citizen, ticket and reason.
    pub async fn award_points_after(
        &self,
        after: i64,
        limit: u32,
        rule: &RewardRule,
        calendar: &WorkCalendar,
    ) -> Result<(usize, i64), StoreError> {
        let rows = sqlx::query(
            "SELECT e.id, e.ticket_id, e.action, e.to_status, e.at FROM ticket_events e \
             WHERE e.id > $1 ORDER BY e.id LIMIT $2",
        )
        .bind(after)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        let mut last = after;
        let mut awarded = 0;
        for r in &rows {
            let event_id: i64 = r.try_get("id")?;
            last = last.max(event_id);
            let action: ActionKind = super::parse("ticket_events", r, "action")?;
            let to: Status = super::parse("ticket_events", r, "to_status")?;
            let Some(reason) = Reason::for_event(action, to).filter(|r| rule.pays(*r)) else {
                continue;
            };
            let ticket_id: i64 = r.try_get("ticket_id")?;
            let at = from_millis("ticket_events", r.try_get("at")?)?;
            let day = calendar.local_date(at).to_string();
            let users: Vec<String> = sqlx::query_scalar(
                "SELECT DISTINCT app_user FROM ticket_reporters WHERE ticket_id = $1 AND app_user IS NOT NULL",
            )
            .bind(ticket_id)
            .fetch_all(&self.pool)
            .await?;
            for user in users {
                // An app_user the app did not write (another system's id) earns nothing.
                let Ok(citizen_id) = user.parse::<i64>() else {
                    continue;
                };
                if self
                    .award(citizen_id, ticket_id, reason, rule, &day, event_id, at)
                    .await?
                {
                    awarded += 1;
                }
            }
        }
        Ok((awarded, last))
    }

    /// Records one award (possibly 0 points, when the day's cap is reached) and adds it to the
    /// balance, in one transaction that first locks the citizen's row, so the cap holds across
    /// nodes. `false` when it was awarded before or the citizen does not exist.
    #[allow(clippy::too_many_arguments)]
    async fn award(
        &self,
        citizen_id: i64,
        ticket_id: i64,
        reason: Reason,
        rule: &RewardRule,
        day: &str,
        event_id: i64,
        at: Timestamp,
    ) -> Result<bool, StoreError> {
        let mut w = self.write().await?;
        let exists = sqlx::query("UPDATE citizens SET points = points WHERE id = $1")
            .bind(citizen_id)
            .execute(&mut *w.tx)
            .await?
            .rows_affected();
        if exists != 1 {
            return Ok(false);
        }
        // SUM of a BIGINT is NUMERIC on PostgreSQL, which the Any driver cannot decode.
        let today: i64 = sqlx::query_scalar(
            "SELECT CAST(COALESCE(SUM(points), 0) AS BIGINT) FROM citizen_points WHERE citizen_id = $1 AND day = $2",
        )
        .bind(citizen_id)
        .bind(day)
        .fetch_one(&mut *w.tx)
        .await?;
        let points = rule.award(reason, u64::try_from(today).unwrap_or(0));
        let inserted = sqlx::query(
            "INSERT INTO citizen_points (citizen_id, ticket_id, reason, points, day, event_id, awarded_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (citizen_id, ticket_id, reason) DO NOTHING",
        )
        .bind(citizen_id)
        .bind(ticket_id)
        .bind(reason.as_str())
        .bind(i64::from(points))
        .bind(day)
        .bind(event_id)
        .bind(to_millis(at))
        .execute(&mut *w.tx)
        .await?
        .rows_affected();
        if inserted == 1 && points > 0 {
            sqlx::query("UPDATE citizens SET points = points + $1 WHERE id = $2")
                .bind(i64::from(points))
                .bind(citizen_id)
                .execute(&mut *w.tx)
                .await?;
        }
        w.commit().await?;
        if inserted == 1 {
            tracing::info!(
                citizen = citizen_id,
                ticket_id,
                reason = reason.as_str(),
                points,
                "points awarded"
            );
        }
        Ok(inserted == 1)
    }

    /// The citizen's rating of a ticket, if they gave one.
    pub async fn rating(
        &self,
        ticket_id: i64,
        citizen_id: i64,
    ) -> Result<Option<StoredRating>, StoreError> {
        let row = sqlx::query(
            "SELECT stars, comment, rated_at FROM ticket_ratings WHERE ticket_id = $1 AND citizen_id = $2",
        )
        .bind(ticket_id)
        .bind(citizen_id)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(rating_from_row).transpose()
    }

    /// Every citizen rating of a ticket, oldest first (what staff see).
    pub async fn ratings_of(&self, ticket_id: i64) -> Result<Vec<StoredRating>, StoreError> {
        let rows = sqlx::query(
            "SELECT stars, comment, rated_at FROM ticket_ratings WHERE ticket_id = $1 ORDER BY rated_at, citizen_id",
        )
        .bind(ticket_id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(rating_from_row).collect()
    }

    /// Stores a checked rating and its entry in the audit log (action `ticket.rate`, target
    /// `ticket:<number>`) in one transaction. `false` when this citizen had rated the ticket.
    pub async fn add_rating(
        &self,
        ticket_id: i64,
        number: &TicketNumber,
        citizen_id: i64,
        rating: &Rating,
        now: Timestamp,
    ) -> Result<bool, StoreError> {
        let mut w = self.write().await?;
        let inserted = sqlx::query(
            "INSERT INTO ticket_ratings (ticket_id, citizen_id, stars, comment, rated_at) \
             VALUES ($1, $2, $3, $4, $5) ON CONFLICT (ticket_id, citizen_id) DO NOTHING",
        )
        .bind(ticket_id)
        .bind(citizen_id)
        .bind(i64::from(rating.stars))
        .bind(rating.comment.as_deref())
        .bind(to_millis(now))
        .execute(&mut *w.tx)
        .await?
        .rows_affected();
        if inserted != 1 {
            // Rated by a writer of this batch, perhaps: on disk before we say so.
            w.commit().await?;
            return Ok(false);
        }
        let entry = AuditEntry {
            at: now,
            actor_id: None,
            actor_name: format!("市民（城市App 用户 {citizen_id}）"),
            role: None,
            action: "ticket.rate".into(),
            target: format!("ticket:{number}"),
            detail: serde_json::json!({
                "citizen": citizen_id,
                "stars": rating.stars,
                "comment": rating.comment,
            }),
            address: None,
        };
        super::audit::insert_audit(&mut w.tx, &entry).await?;
        w.commit().await?;
        Ok(true)
    }
}
