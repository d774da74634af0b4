//! Write transactions, and group commit on SQLite.
//!
//! SQLite has one writer at a time and every commit waits for the disk (`synchronous = FULL`).
//! When many writers queue — a burst of WeChat messages, say — committing each on its own spends
//! most of the time in fsync. So writers that arrive while another holds the write turn join its
//! transaction: each does its work inside a savepoint, releases it, and hands the open transaction
//! to the next in line; the last of the batch (or the `MAX_BATCH`th) commits once for all and
//! tells every member the outcome. No member returns before the commit that holds its work, so a
//! caller that replies "accepted" has its data on disk; a member that fails or gives up has its
//! savepoint rolled back and the others go on. PostgreSQL writers run side by side and commit
//! on their own (the server does its own group commit).

use std::ops::{Deref, DerefMut};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use sqlx::{Any, AnyConnection, AnyPool, Transaction};
use tokio::sync::{Mutex, OwnedMutexGuard, oneshot};

use super::StoreError;

/// Most writers sharing one commit; bounds how long the first of them waits.
const MAX_BATCH: usize = 128;

/// How often a member waiting for its batch checks that someone will still commit it (the writer
/// it was handed to may have been cancelled before taking it).
const ORPHAN_CHECK: Duration = Duration::from_millis(10);

/// What a member learns when its batch ends.
type Outcome = Result<(), Arc<sqlx::Error>>;

/// SQLite's write turn, shared by every clone of a store.
#[derive(Default)]
pub(crate) struct WriteTurn {
    /// Holding the lock is having the turn; inside is the batch still open, if any.
    slot: Arc<Mutex<Option<Batch>>>,
    /// Writers waiting for the lock: while there are any, a finished member hands over.
    waiting: AtomicUsize,
    /// Batches begun so far; their ids.
    next_batch: AtomicU64,
}

/// An open transaction shared by the members of a group commit.
struct Batch {
    id: u64,
    tx: Transaction<'static, Any>,
    /// Whether the last member left without releasing its savepoint (it failed or was dropped):
    /// the next one rolls it back first.
    dirty: bool,
    /// One per member that released its savepoint and waits for the commit.
    done: Vec<oneshot::Sender<Outcome>>,
}

/// The open transaction a [`WriteTx`] writes through; dereferences to the connection.
pub(crate) struct TxSlot(Option<Transaction<'static, Any>>);

impl Deref for TxSlot {
    type Target = AnyConnection;

    fn deref(&self) -> &AnyConnection {
        self.0
            .as_deref()
            .expect("a write transaction is open until it ends")
    }
}

impl DerefMut for TxSlot {
    fn deref_mut(&mut self) -> &mut AnyConnection {
        self.0
            .as_deref_mut()
            .expect("a write transaction is open until it ends")
    }
}

/// A write transaction: on SQLite it holds the write turn until it ends. Dropping it without
/// [`WriteTx::commit`] rolls its work back. End it with `commit` whenever the result depends on
/// what was read through it, even if nothing was written: on SQLite what it read may be another
/// member's work, on disk only once the batch commits.
pub(crate) struct WriteTx {
    pub(crate) tx: TxSlot,
    member: Option<Member>,
}

/// A SQLite writer's place in its batch.
struct Member {
    turn: Arc<WriteTurn>,
    guard: OwnedMutexGuard<Option<Batch>>,
    id: u64,
    done: Vec<oneshot::Sender<Outcome>>,
}

/// Decrements the waiting count when a writer stops waiting, whether it got the turn or not.
struct Waiting<'a>(&'a AtomicUsize);

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

impl WriteTurn {
    /// Takes the write turn, joining the open batch if there is one.
    pub(crate) async fn begin(self: &Arc<Self>, pool: &AnyPool) -> Result<WriteTx, StoreError> {
        let mut guard = {
            self.waiting.fetch_add(1, Ordering::SeqCst);
            let _waiting = Waiting(&self.waiting);
            self.slot.clone().lock_owned().await
        };
        let mut batch = match guard.take() {
            Some(b) => b,
            None => Batch {
                id: self.next_batch.fetch_add(1, Ordering::Relaxed),
                tx: pool.begin_with("BEGIN IMMEDIATE").await?,
                dirty: false,
                done: Vec::new(),
            },
        };
        if batch.dirty {
            if let Err(e) = roll_back_member(&mut batch.tx).await {
                fail(batch, e);
                return Err(StoreError::Database(sqlx::Error::Protocol(
                    "the shared write transaction failed; try again".into(),
                )));
            }
            batch.dirty = false;
        }
        if let Err(e) = sqlx::raw_sql("SAVEPOINT member")
            .execute(&mut *batch.tx)
            .await
        {
            fail(batch, e);
            return Err(StoreError::Database(sqlx::Error::Protocol(
                "the shared write transaction failed; try again".into(),
            )));
        }
        Ok(WriteTx {
            tx: TxSlot(Some(batch.tx)),
            member: Some(Member {
                turn: self.clone(),
                guard,
                id: batch.id,
                done: batch.done,
            }),
        })
    }
}

impl WriteTx {
    /// A transaction of its own (PostgreSQL).
    pub(crate) fn alone(tx: Transaction<'static, Any>) -> WriteTx {
        WriteTx {
            tx: TxSlot(Some(tx)),
            member: None,
        }
    }

    /// Makes the work durable; on SQLite it returns once the batch holding it is committed.
    pub(crate) async fn commit(mut self) -> Result<(), StoreError> {
        let mut tx = self.tx.0.take().expect("open until it ends");
        let Some(mut member) = self.member.take() else {
            tx.commit().await?;
            return Ok(());
        };
        if let Err(e) = sqlx::raw_sql("RELEASE member").execute(&mut *tx).await {
            *member.guard = Some(Batch {
                id: member.id,
                tx,
                dirty: true,
                done: member.done,
            });
            return Err(e.into());
        }
        let (sender, mut outcome) = oneshot::channel();
        member.done.push(sender);
        let batch = Batch {
            id: member.id,
            tx,
            dirty: false,
            done: member.done,
        };
        let hand_over =
            member.turn.waiting.load(Ordering::SeqCst) > 0 && batch.done.len() < MAX_BATCH;
        if !hand_over {
            finish(batch).await;
            drop(member.guard);
            return received(outcome.await);
        }
        let id = batch.id;
        *member.guard = Some(batch);
        drop(member.guard);
        loop {
            tokio::select! {
                r = &mut outcome => return received(r),
                () = tokio::time::sleep(ORPHAN_CHECK) => {
                    // Nobody took the turn after all (the writer waiting was cancelled): finish
                    // the batch here.
                    if let Ok(mut slot) = member.turn.slot.clone().try_lock_owned()
                        && let Some(batch) = slot.take()
                    {
                        if batch.id == id {
                            finish(batch).await;
                        } else {
                            *slot = Some(batch);
                        }
                    }
                }
            }
        }
    }
}

impl Drop for WriteTx {
    fn drop(&mut self) {
        let (Some(tx), Some(mut member)) = (self.tx.0.take(), self.member.take()) else {
            return;
        };
        if member.done.is_empty() {
            // Alone in its batch: dropping the transaction rolls it back.
            return;
        }
        // Others' work shares this transaction: leave it for the next writer, or for the
        // members waiting on it, to roll this savepoint back and commit the rest.
        *member.guard = Some(Batch {
            id: member.id,
            tx,
            dirty: true,
            done: std::mem::take(&mut member.done),
        });
    }
}

fn received(r: Result<Outcome, oneshot::error::RecvError>) -> Result<(), StoreError> {
    match r {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(StoreError::Commit(e)),
        Err(_) => Err(StoreError::Database(sqlx::Error::Protocol(
            "the shared write transaction was abandoned; try again".into(),
        ))),
    }
}

async fn roll_back_member(tx: &mut Transaction<'static, Any>) -> Result<(), sqlx::Error> {
    sqlx::raw_sql("ROLLBACK TO member; RELEASE member")
        .execute(&mut **tx)
        .await
        .map(drop)
}

/// Commits a batch and tells its members.
async fn finish(mut batch: Batch) {
    if batch.dirty
        && let Err(e) = roll_back_member(&mut batch.tx).await
    {
        fail(batch, e);
        return;
    }
    let result = batch.tx.commit().await.map_err(Arc::new);
    for member in batch.done {
        let _ = member.send(result.clone());
    }
}

/// Tells every member of a batch that it failed; dropping the transaction rolls it back.
fn fail(batch: Batch, e: sqlx::Error) {
    tracing::error!(error = %e, members = batch.done.len(), "shared write transaction failed");
    let e = Arc::new(e);
    for member in batch.done {
        let _ = member.send(Err(e.clone()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{Store, StoreOptions};

    async fn store() -> (Store, tempfile::TempDir) {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("w.db").display());
        let store = Store::connect(StoreOptions::new(url)).await.unwrap();
        sqlx::raw_sql("CREATE TABLE w (k INTEGER PRIMARY KEY)")
            .execute(&store.pool)
            .await
            .unwrap();
        (store, dir)
    }

    async fn keys(store: &Store) -> Vec<i64> {
        sqlx::query_scalar("SELECT k FROM w ORDER BY k")
            .fetch_all(&store.pool)
            .await
            .unwrap()
    }

    async fn insert(w: &mut WriteTx, k: i64) -> Result<(), sqlx::Error> {
        sqlx::query("INSERT INTO w (k) VALUES ($1)")
            .bind(k)
            .execute(&mut *w.tx)
            .await
            .map(drop)
    }

    fn batches(store: &Store) -> u64 {
        let turn = store.write_turn.as_ref().unwrap();
        turn.next_batch.load(Ordering::Relaxed)
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn queued_writers_share_commits_and_all_land() {
        let (store, _dir) = store().await;
        let mut set = tokio::task::JoinSet::new();
        for k in 0..300 {
            let store = store.clone();
            set.spawn(async move {
                let mut w = store.write().await.unwrap();
                insert(&mut w, k).await.unwrap();
                w.commit().await.unwrap();
                // Once commit returns, the row is on disk and visible to every reader.
                let seen: i64 = sqlx::query_scalar("SELECT count(*) FROM w WHERE k = $1")
                    .bind(k)
                    .fetch_one(&store.pool)
                    .await
                    .unwrap();
                assert_eq!(seen, 1, "row {k} visible after its commit");
            });
        }
        while let Some(r) = set.join_next().await {
            r.unwrap();
        }
        assert_eq!(keys(&store).await, (0..300).collect::<Vec<_>>());
        let batches = batches(&store);
        assert!(batches < 150, "300 queued writers took {batches} commits");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_member_that_fails_loses_only_its_own_work() {
        let (store, _dir) = store().await;
        let mut set = tokio::task::JoinSet::new();
        for k in 0..120 {
            let store = store.clone();
            set.spawn(async move {
                let mut w = store.write().await.unwrap();
                insert(&mut w, k).await.unwrap();
                match k % 3 {
                    // Gives up after writing (an error in its own logic): dropped.
                    0 => Err(()),
                    // Hits a database error (a duplicate key) after writing, then gives up.
                    1 => {
                        assert!(insert(&mut w, k).await.is_err());
                        Err(())
                    }
                    _ => {
                        w.commit().await.unwrap();
                        Ok(k)
                    }
                }
            });
        }
        let mut committed = Vec::new();
        while let Some(r) = set.join_next().await {
            if let Ok(k) = r.unwrap() {
                committed.push(k);
            }
        }
        committed.sort_unstable();
        assert_eq!(committed.len(), 40);
        assert_eq!(keys(&store).await, committed);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_writer_cancelled_in_the_queue_strands_no_batch() {
        let (store, _dir) = store().await;
        let mut first = store.write().await.unwrap();
        insert(&mut first, 1).await.unwrap();
        // A second writer queues behind the first...
        let mut queued = Box::pin(store.write());
        assert!(
            tokio::time::timeout(Duration::from_millis(20), &mut queued)
                .await
                .is_err()
        );
        // ...so the first hands its open batch over when it commits, and the second is then
        // cancelled before it ever runs: the first must still see its work committed.
        let commit = tokio::spawn(first.commit());
        tokio::time::sleep(Duration::from_millis(20)).await;
        drop(queued);
        tokio::time::timeout(Duration::from_secs(2), commit)
            .await
            .expect("the stranded batch is committed")
            .unwrap()
            .unwrap();
        assert_eq!(keys(&store).await, [1]);
        // And the turn is free for the next writer.
        let mut next = store.write().await.unwrap();
        insert(&mut next, 2).await.unwrap();
        next.commit().await.unwrap();
        assert_eq!(keys(&store).await, [1, 2]);
    }
}
