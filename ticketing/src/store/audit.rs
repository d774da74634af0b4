//! The general audit log (`audit_log`): append and read back by target.

use sqlx::Row;

use super::{Store, StoreError, from_millis, to_millis};
use crate::audit::AuditEntry;

const T: &str = "audit_log";

impl Store {
    /// Appends an entry (committed when this returns) and returns its id.
    pub async fn write_audit(&self, entry: &AuditEntry) -> Result<i64, StoreError> {
        let mut w = self.write().await?;
        let id = insert_audit(&mut w.tx, entry).await?;
        w.commit().await?;
        Ok(id)
    }

    /// Every entry about `target` (`call:42`), oldest first.
    pub async fn list_audit(&self, target: &str) -> Result<Vec<AuditEntry>, StoreError> {
        sqlx::query(
            "SELECT at, actor_id, actor_name, role, action, target, detail, address \
             FROM audit_log WHERE target = $1 ORDER BY id",
        )
        .bind(target)
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(|row| {
            let role: Option<String> = row.try_get("role")?;
            let detail: String = row.try_get("detail")?;
            Ok(AuditEntry {
                at: from_millis(T, row.try_get("at")?)?,
                actor_id: row.try_get("actor_id")?,
                actor_name: row.try_get("actor_name")?,
                role: role
                    .map(|r| r.parse().map_err(|e| StoreError::corrupt(T, e)))
                    .transpose()?,
                action: row.try_get("action")?,
                target: row.try_get("target")?,
                detail: serde_json::from_str(&detail).map_err(|e| StoreError::corrupt(T, e))?,
                address: row.try_get("address")?,
            })
        })
        .collect()
    }
}

/// Appends an entry inside a transaction (one that also changes what the entry is about).
pub(super) async fn insert_audit(
    conn: &mut sqlx::AnyConnection,
    entry: &AuditEntry,
) -> Result<i64, StoreError> {
    Ok(sqlx::query_scalar(
        "INSERT INTO audit_log (at, actor_id, actor_name, role, action, target, detail, address) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING id",
    )
    .bind(to_millis(entry.at))
    .bind(entry.actor_id)
    .bind(&entry.actor_name)
    .bind(entry.role.map(|r| r.as_str()))
    .bind(&entry.action)
    .bind(&entry.target)
    .bind(entry.detail.to_string())
    .bind(entry.address.as_deref())
    .fetch_one(conn)
    .await?)
}
