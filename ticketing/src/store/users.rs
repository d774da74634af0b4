//! Users (staff accounts) and their login sessions. Password hashing is the caller's business:
//! this layer stores and returns the PHC string as given.

use jiff::Timestamp;
use serde::Serialize;
use sqlx::AssertSqlSafe;
use sqlx::Row;
use sqlx::any::AnyRow;
use utoipa::ToSchema;

use super::{Store, StoreError, duplicate_or, from_millis, to_millis};
use crate::workflow::{Actor, Role};

/// A staff account.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct User {
    /// Database id.
    pub id: i64,
    /// Login name.
    pub username: String,
    /// Name shown in the audit trail.
    pub display_name: String,
    /// What they may do.
    pub role: Role,
    /// For department users: which department.
    pub department: Option<String>,
    /// Argon2 PHC string; never serialized.
    #[serde(skip)]
    pub password_hash: String,
    /// When the account was made.
    #[schema(value_type = String, format = DateTime)]
    pub created_at: Timestamp,
    /// Set when the account may no longer log in.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub disabled_at: Option<Timestamp>,
}

impl User {
    /// The user as the workflow and the audit trail see them.
    pub fn actor(&self) -> Actor {
        Actor {
            id: self.id,
            name: self.display_name.clone(),
            role: self.role,
            department: self.department.clone(),
        }
    }
}

/// What is needed to add a user.
#[derive(Debug, Clone)]
pub struct NewUser {
    /// Login name (unique).
    pub username: String,
    /// Name shown in the audit trail.
    pub display_name: String,
    /// Role.
    pub role: Role,
    /// Department, for department users.
    pub department: Option<String>,
    /// Argon2 PHC string.
    pub password_hash: String,
}

/// A login session, found by the SHA-256 of its bearer token.
#[derive(Debug, Clone)]
pub struct Session {
    /// Whose.
    pub user: User,
    /// Until when.
    pub expires_at: Timestamp,
}

const USER_COLUMNS: &str = "u.id, u.username, u.display_name, u.role, u.department, u.password_hash, u.created_at, u.disabled_at";

fn user_from_row(row: &AnyRow) -> Result<User, StoreError> {
    const T: &str = "users";
    let role: String = row.try_get("role")?;
    Ok(User {
        id: row.try_get("id")?,
        username: row.try_get("username")?,
        display_name: row.try_get("display_name")?,
        role: role.parse().map_err(|e| StoreError::corrupt(T, e))?,
        department: row.try_get("department")?,
        password_hash: row.try_get("password_hash")?,
        created_at: from_millis(T, row.try_get("created_at")?)?,
        disabled_at: row
            .try_get::<Option<i64>, _>("disabled_at")?
            .map(|ms| from_millis(T, ms))
            .transpose()?,
    })
}

impl Store {
    /// Adds a user; a taken username is [`StoreError::Duplicate`].
    pub async fn add_user(&self, new: &NewUser, now: Timestamp) -> Result<User, StoreError> {
        let mut w = self.write().await?;
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO users (username, display_name, role, department, password_hash, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
        )
        .bind(&new.username)
        .bind(&new.display_name)
        .bind(new.role.as_str())
        .bind(new.department.as_deref())
        .bind(&new.password_hash)
        .bind(to_millis(now))
        .fetch_one(&mut *w.tx)
        .await
        .map_err(|e| duplicate_or(e, || format!("user `{}`", new.username)))?;
        w.commit().await?;
        Ok(User {
            id,
            username: new.username.clone(),
            display_name: new.display_name.clone(),
            role: new.role,
            department: new.department.clone(),
            password_hash: new.password_hash.clone(),
            created_at: now,
            disabled_at: None,
        })
    }

    /// The user with this login name.
    pub async fn user_by_username(&self, username: &str) -> Result<Option<User>, StoreError> {
        let sql = format!("SELECT {USER_COLUMNS} FROM users u WHERE u.username = $1");
        sqlx::query(AssertSqlSafe(sql))
            .bind(username)
            .fetch_optional(&self.pool)
            .await?
            .as_ref()
            .map(user_from_row)
            .transpose()
    }

    /// All users, by login name.
    pub async fn users(&self) -> Result<Vec<User>, StoreError> {
        let sql = format!("SELECT {USER_COLUMNS} FROM users u ORDER BY u.username");
        sqlx::query(AssertSqlSafe(sql))
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(user_from_row)
            .collect()
    }

    /// Records a new session for a token (stored as its hash only).
    pub async fn create_session(
        &self,
        token_hash: &str,
        user_id: i64,
        now: Timestamp,
        expires_at: Timestamp,
    ) -> Result<(), StoreError> {
        let mut w = self.write().await?;
        sqlx::query("DELETE FROM sessions WHERE expires_at < $1")
            .bind(to_millis(now))
            .execute(&mut *w.tx)
            .await?;
        sqlx::query(
            "INSERT INTO sessions (token_hash, user_id, created_at, expires_at) VALUES ($1, $2, $3, $4)",
        )
        .bind(token_hash)
        .bind(user_id)
        .bind(to_millis(now))
        .bind(to_millis(expires_at))
        .execute(&mut *w.tx)
        .await?;
        w.commit().await
    }

    /// The live session for a token hash: not expired, user not disabled.
    pub async fn session(
        &self,
        token_hash: &str,
        now: Timestamp,
    ) -> Result<Option<Session>, StoreError> {
        let sql = format!(
            "SELECT {USER_COLUMNS}, s.expires_at FROM sessions s JOIN users u ON u.id = s.user_id \
             WHERE s.token_hash = $1 AND s.expires_at > $2 AND u.disabled_at IS NULL"
        );
        let Some(row) = sqlx::query(AssertSqlSafe(sql))
            .bind(token_hash)
            .bind(to_millis(now))
            .fetch_optional(&self.pool)
            .await?
        else {
            return Ok(None);
        };
        Ok(Some(Session {
            user: user_from_row(&row)?,
            expires_at: from_millis("sessions", row.try_get("expires_at")?)?,
        }))
    }

    /// Ends a session (logout).
    pub async fn delete_session(&self, token_hash: &str) -> Result<(), StoreError> {
        let mut w = self.write().await?;
        sqlx::query("DELETE FROM sessions WHERE token_hash = $1")
            .bind(token_hash)
            .execute(&mut *w.tx)
            .await?;
        w.commit().await
    }
}
