//! Storage: one repository layer over SQLite (default, a WAL file) and PostgreSQL (scale-out),
//! through sqlx's `Any` driver and one migration set per backend.
//!
//! Tables: tickets and their trail (`tickets`), staff and sessions (`users`), call detail records
//! (`calls`), the general audit log (`audit`), city-app citizens with their codes, tokens, points
//! and ratings (`citizens`), transcription jobs and transcripts with their full-text search
//! (`transcripts`).
//!
//! Invariant: only this module writes ticket rows, and every ticket change writes its audit event
//! in the same transaction.

mod audit;
mod callbacks;
mod calls;
mod citizens;
mod merges;
mod outbox;
mod threads;
mod tickets;
mod transcripts;
mod users;
mod write;

use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use sqlx::any::{AnyConnectOptions, AnyPoolOptions, AnyRow};
use sqlx::{AnyPool, Executor, Row};
use utoipa::ToSchema;

pub use callbacks::AttemptError;
pub use citizens::{Citizen, PointsEntry, StoredRating};
pub use merges::Suggestion;
pub use outbox::{PendingFetch, TicketChange};
pub use threads::Thread;
pub(crate) use tickets::{Inserted, Supplemented};
pub use tickets::{Origin, ReporterKey, Supplement, TicketFilter, TicketSummary};
pub use users::{NewUser, Session, User};

/// Which database a [`Store`] talks to; the few statements that differ pick their dialect by it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// Embedded SQLite file.
    Sqlite,
    /// PostgreSQL server.
    Postgres,
}

/// Why a storage operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database refused or could not be reached.
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    /// A migration failed.
    #[error("migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// The URL names a database kind hotline does not run on.
    #[error("unsupported database URL `{0}`: use sqlite://PATH or postgres://...")]
    UnsupportedUrl(String),
    /// A stored row that does not decode (hand-edited database or a bug).
    #[error("corrupt row in {table}: {detail}")]
    Corrupt {
        /// Which table.
        table: &'static str,
        /// What was wrong.
        detail: String,
    },
    /// A unique key already taken (a username, say).
    #[error("{0} already exists")]
    Duplicate(String),
    /// A value the store must not keep (a recording path that leaves the data directory).
    #[error("{0}")]
    Invalid(String),
    /// The commit shared with other writers failed (SQLite group commit): nothing of it stayed.
    #[error("database error at commit: {0}")]
    Commit(Arc<sqlx::Error>),
}

impl StoreError {
    pub(crate) fn corrupt(table: &'static str, detail: impl ToString) -> Self {
        StoreError::Corrupt {
            table,
            detail: detail.to_string(),
        }
    }
}

/// How to open a [`Store`].
#[derive(Debug, Clone)]
pub struct StoreOptions {
    /// `sqlite:///path/to/hotline.db` or `postgres://user@host/db`.
    pub url: String,
    /// Pool size; SQLite readers share it, its writers take turns.
    pub max_connections: u32,
    /// PostgreSQL only: the schema to work in (tests use one each).
    pub pg_schema: Option<String>,
}

impl StoreOptions {
    /// Defaults for a URL.
    pub fn new(url: impl Into<String>) -> Self {
        StoreOptions {
            url: url.into(),
            max_connections: 16,
            pg_schema: None,
        }
    }
}

/// The handle to the database; cheap to clone.
#[derive(Clone)]
pub struct Store {
    pool: AnyPool,
    backend: Backend,
    /// SQLite has one writer at a time: queue writers here instead of spinning on SQLITE_BUSY,
    /// and let the queue share commits ([`write`]).
    write_turn: Option<Arc<write::WriteTurn>>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("backend", &self.backend)
            .finish()
    }
}

static SQLITE_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");
static POSTGRES_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

impl Store {
    /// Opens a pool. A SQLite file is created if missing and put in WAL mode.
    pub async fn connect(options: StoreOptions) -> Result<Store, StoreError> {
        sqlx::any::install_default_drivers();
        let backend = if options.url.starts_with("sqlite:") {
            Backend::Sqlite
        } else if options.url.starts_with("postgres:") || options.url.starts_with("postgresql:") {
            Backend::Postgres
        } else {
            return Err(StoreError::UnsupportedUrl(options.url));
        };
        let url = match backend {
            Backend::Sqlite if !options.url.contains("mode=") => {
                let sep = if options.url.contains('?') { '&' } else { '?' };
                format!("{}{sep}mode=rwc", options.url)
            }
            _ => options.url.clone(),
        };
        let connect: AnyConnectOptions = url.parse()?;
        let schema = options.pg_schema.clone();
        let pool = AnyPoolOptions::new()
            .max_connections(options.max_connections.max(1))
            .acquire_timeout(Duration::from_secs(10))
            .after_connect(move |conn, _meta| {
                let schema = schema.clone();
                Box::pin(async move {
                    match backend {
                        Backend::Sqlite => {
                            conn.execute(sqlx::raw_sql(
                                "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; \
                                 PRAGMA foreign_keys = ON; PRAGMA busy_timeout = 10000;",
                            ))
                            .await?;
                        }
                        Backend::Postgres => {
                            if let Some(schema) = schema {
                                let sql = format!("SET search_path TO \"{schema}\"");
                                conn.execute(sqlx::raw_sql(sqlx::AssertSqlSafe(sql)))
                                    .await?;
                            }
                        }
                    }
                    Ok(())
                })
            })
            .connect_with(connect)
            .await?;
        Ok(Store {
            pool,
            backend,
            write_turn: (backend == Backend::Sqlite).then(Arc::default),
        })
    }

    /// Brings the schema up to date; safe to run at every start.
    pub async fn migrate(&self) -> Result<(), StoreError> {
        match self.backend {
            Backend::Sqlite => SQLITE_MIGRATIONS.run(&self.pool).await?,
            Backend::Postgres => POSTGRES_MIGRATIONS.run(&self.pool).await?,
        }
        Ok(())
    }

    /// Which database this is.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// The pool, for the rare caller that needs a raw query (health checks).
    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    /// Answers when the database does.
    pub async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    /// Closes the pool (at shutdown, so SQLite checkpoints its WAL).
    pub async fn close(&self) {
        self.pool.close().await;
    }

    /// A write transaction. On SQLite it waits its turn and takes the write lock at once
    /// (`BEGIN IMMEDIATE`), so it never fails half-way on a busy database, and it may share its
    /// commit with the writers queued behind it ([`write`]).
    pub(crate) async fn write(&self) -> Result<WriteTx, StoreError> {
        match &self.write_turn {
            Some(turn) => turn.begin(&self.pool).await,
            None => Ok(WriteTx::alone(self.pool.begin().await?)),
        }
    }
}

pub(crate) use write::WriteTx;

/// Timestamps are stored as milliseconds since the Unix epoch on both backends.
pub(crate) fn to_millis(t: jiff::Timestamp) -> i64 {
    t.as_millisecond()
}

pub(crate) fn from_millis(table: &'static str, ms: i64) -> Result<jiff::Timestamp, StoreError> {
    jiff::Timestamp::from_millisecond(ms).map_err(|e| StoreError::corrupt(table, e))
}

/// Maps a unique-key violation to [`StoreError::Duplicate`].
pub(crate) fn duplicate_or(err: sqlx::Error, what: impl FnOnce() -> String) -> StoreError {
    match &err {
        sqlx::Error::Database(db) if db.is_unique_violation() => StoreError::Duplicate(what()),
        _ => StoreError::Database(err),
    }
}

/// One page of results and the total count.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Page<T> {
    /// This page's items.
    pub items: Vec<T>,
    /// How many match in all.
    pub total: i64,
    /// This page's number (1-based).
    pub page: u32,
    /// Page size.
    pub per_page: u32,
}

/// A bind value of a dynamic query (filters that are present or not).
pub(crate) enum Bind {
    /// Text.
    Text(String),
    /// Integer (timestamps in ms, ids).
    Int(i64),
}

/// A text column parsed into a code type; a value that does not parse is a corrupt row.
pub(crate) fn parse<T: std::str::FromStr>(
    table: &'static str,
    row: &AnyRow,
    col: &str,
) -> Result<T, StoreError>
where
    T::Err: std::fmt::Display,
{
    let text: String = row.try_get(col)?;
    text.parse()
        .map_err(|e: T::Err| StoreError::corrupt(table, format!("{col}: {e}")))
}

/// `s` with the `LIKE` wildcards escaped (use with `ESCAPE '\\'`).
pub(crate) fn escape_like(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for ch in s.chars() {
        if matches!(ch, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(ch);
    }
    out
}

/// The bind values of a dynamic query, in placeholder order (built anew for each statement run).
pub(crate) fn arguments(binds: &[Bind]) -> Result<sqlx::any::AnyArguments, StoreError> {
    use sqlx::Arguments as _;
    let mut args = sqlx::any::AnyArguments::default();
    for b in binds {
        match b {
            Bind::Text(s) => args.add(s.clone()),
            Bind::Int(i) => args.add(*i),
        }
        .map_err(sqlx::Error::Encode)?;
    }
    Ok(args)
}
