//! Several daemons on one PostgreSQL database and one object store.
//!
//! Any node takes uploads and API calls and serves `/repos/` (from the
//! stored generations, `objects.rs`). One node at a time *leads*: it holds
//! a session-level PostgreSQL advisory lock on a connection of its own,
//! and only the leader publishes, runs retention and the sweeps, syncs the
//! advisory feeds and re-opens expired approvals. When the leader dies its
//! connection closes, PostgreSQL releases the lock, and another node takes
//! it within [`RETRY`]; its start-up check finds every distribution whose
//! stored generation is behind the database and publishes it.
//!
//! A change committed on any node is announced with `NOTIFY` (channel
//! [`CHANNEL`], payload `<schema> <kind> <distribution>`), so the leader
//! hears of it at once and publishes it after the usual 250 ms of
//! coalescing. A forced publish asked of another node is forwarded the
//! same way, and that node waits for the new generation row.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use sqlx::Connection;
use sqlx::postgres::{PgConnection, PgListener};
use tokio::sync::watch;

use crate::db::Db;

/// The notification channel of every repod installation on the server;
/// the payload names the schema.
pub const CHANNEL: &str = "repod_publish";
/// How often a node that does not lead tries to take the lock, and how
/// often the leader checks that its connection still holds it.
pub const RETRY: Duration = Duration::from_secs(1);
/// How long [`Cluster::take_sole`] waits for the lock.
pub const SOLE_WAIT: Duration = Duration::from_secs(5);
/// Advisory lock class of the leader lock (the writers' lock is another).
const LEAD_CLASS: i32 = 1919247461;

/// What a notification asks of the leader.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ask {
    /// A change was committed: publish after the usual coalescing.
    Changed,
    /// Publish now (an API call waits on another node).
    Force,
    /// The distribution's rows were prepared again: drop what is kept of
    /// them, then publish.
    Rendering,
    /// Rebuild the distribution's tree from scratch now (`init`).
    Rebuild,
    /// A new generation of the distribution is live (to every node: load
    /// it now rather than at the next poll).
    Live,
}

impl Ask {
    fn word(self) -> &'static str {
        match self {
            Ask::Changed => "changed",
            Ask::Force => "force",
            Ask::Rendering => "rendering",
            Ask::Rebuild => "rebuild",
            Ask::Live => "live",
        }
    }
}

pub struct Cluster {
    url: String,
    db: Db,
    leading: watch::Sender<bool>,
    /// The fencing token of this node's lead (0 while it does not lead).
    epoch: AtomicI64,
    /// `current_schema()`: which installation on the server this is.
    schema: String,
}

impl Cluster {
    /// Joins the installation at `url` (the same database the pool uses).
    pub async fn join(url: &str, db: Db) -> Result<Arc<Cluster>, sqlx::Error> {
        let (schema,): (String,) = sqlx::query_as("SELECT CAST(current_schema() AS TEXT)")
            .fetch_one(&db)
            .await?;
        Ok(Arc::new(Cluster {
            url: url.to_owned(),
            db,
            leading: watch::Sender::new(false),
            epoch: AtomicI64::new(0),
            schema,
        }))
    }

    /// Whether this node leads now.
    pub fn leading(&self) -> bool {
        *self.leading.borrow()
    }

    /// The fencing token of this node's lead, 0 while it does not lead:
    /// a publish passes the one it started under to [`check_fence`].
    pub fn epoch(&self) -> i64 {
        self.epoch.load(Ordering::SeqCst)
    }

    /// Changes of [`Cluster::leading`].
    pub fn watch(&self) -> watch::Receiver<bool> {
        self.leading.subscribe()
    }

    /// Takes the lead whenever it is free and holds it while the
    /// connection lives. Runs for the daemon's life.
    pub async fn contend(self: Arc<Self>) {
        loop {
            match self.hold().await {
                Ok(()) => {}
                Err(e) => tracing::warn!("leader lock connection: {e}"),
            }
            self.epoch.store(0, Ordering::SeqCst);
            if self.leading.send_replace(false) {
                tracing::error!("lost the lead: publishing stops until it is taken again");
            }
            tokio::time::sleep(RETRY).await;
        }
    }

    async fn hold(&self) -> Result<(), sqlx::Error> {
        let mut conn = PgConnection::connect(&self.url).await?;
        loop {
            if try_lock(&mut conn).await? {
                break;
            }
            tokio::time::sleep(RETRY).await;
        }
        let epoch = bump_epoch(&mut conn).await?;
        self.epoch.store(epoch, Ordering::SeqCst);
        tracing::info!(
            epoch,
            "leading: this node publishes and runs the background work"
        );
        self.leading.send_replace(true);
        // Held while the session lives; a dead connection is a lost lead.
        loop {
            tokio::time::sleep(RETRY).await;
            sqlx::query("SELECT 1").execute(&mut conn).await?;
        }
    }

    /// Takes the leader lock once, for a process that must be the only
    /// publisher of the installation at `url`: an offline `repod publish`
    /// of a cluster, or the one daemon of PostgreSQL with a local data
    /// directory. `None` when another process still holds it after
    /// [`SOLE_WAIT`] (a process killed a moment ago releases it once
    /// PostgreSQL notices its connection closed). Held while the returned
    /// connection lives.
    pub async fn take_sole(url: &str) -> Result<Option<PgConnection>, sqlx::Error> {
        let mut conn = PgConnection::connect(url).await?;
        let deadline = tokio::time::Instant::now() + SOLE_WAIT;
        loop {
            if try_lock(&mut conn).await? {
                // Fences off a leader that lost the lock mid-publish.
                bump_epoch(&mut conn).await?;
                return Ok(Some(conn));
            }
            if tokio::time::Instant::now() >= deadline {
                return Ok(None);
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Announces `ask` about `dist` to the leader (fire and forget: a lost
    /// notification is caught by the leader's start-up check).
    pub fn announce(self: &Arc<Self>, ask: Ask, dist: &str) {
        let this = self.clone();
        let payload = format!("{} {} {dist}", self.schema, ask.word());
        tokio::spawn(async move {
            let sent = sqlx::query("SELECT pg_notify($1, $2)")
                .bind(CHANNEL)
                .bind(&payload)
                .execute(&this.db)
                .await;
            if let Err(e) = sent {
                tracing::warn!("cannot announce a change to the leader: {e}");
            }
        });
    }

    /// Calls `heard` with every announcement of this installation, for
    /// the daemon's life (reconnecting after a failure).
    pub async fn listen(self: Arc<Self>, heard: impl Fn(Ask, &str) + Send + 'static) {
        loop {
            if let Err(e) = self.listen_once(&heard).await {
                tracing::warn!("listening for announcements: {e}");
            }
            tokio::time::sleep(RETRY).await;
        }
    }

    async fn listen_once(&self, heard: &impl Fn(Ask, &str)) -> Result<(), sqlx::Error> {
        let mut listener = PgListener::connect(&self.url).await?;
        listener.listen(CHANNEL).await?;
        loop {
            let note = listener.recv().await?;
            let mut parts = note.payload().splitn(3, ' ');
            let (Some(schema), Some(kind), Some(dist)) = (parts.next(), parts.next(), parts.next())
            else {
                continue;
            };
            if schema != self.schema {
                continue;
            }
            let ask = [
                Ask::Changed,
                Ask::Force,
                Ask::Rendering,
                Ask::Rebuild,
                Ask::Live,
            ]
            .into_iter()
            .find(|a| a.word() == kind);
            if let Some(ask) = ask {
                heard(ask, dist);
            }
        }
    }
}

/// Tries once to take the leader lock on `conn` (held while it lives).
async fn try_lock(conn: &mut PgConnection) -> Result<bool, sqlx::Error> {
    let (got,): (bool,) =
        sqlx::query_as("SELECT pg_try_advisory_lock($1, hashtext(current_schema()))")
            .bind(LEAD_CLASS)
            .fetch_one(conn)
            .await?;
    Ok(got)
}

/// Starts a new lead: the next fencing token.
async fn bump_epoch(conn: &mut PgConnection) -> Result<i64, sqlx::Error> {
    let (epoch,): (i64,) = sqlx::query_as(
        "INSERT INTO leader_epochs (id, epoch) VALUES (1, 1) \
         ON CONFLICT (id) DO UPDATE SET epoch = leader_epochs.epoch + 1 RETURNING epoch",
    )
    .fetch_one(conn)
    .await?;
    Ok(epoch)
}

/// Inside the transaction that makes a generation live: whether `epoch`
/// (the lead a publish started under) is still the current one. The row
/// stays share-locked until the transaction ends, so a new leader's bump
/// waits for it: a stale publish either commits before the new lead
/// begins, or is refused.
pub async fn check_fence(
    tx: &mut sqlx::AnyConnection,
    epoch: i64,
) -> Result<Option<i64>, sqlx::Error> {
    let current: Option<(i64,)> =
        sqlx::query_as("SELECT epoch FROM leader_epochs WHERE id = 1 FOR SHARE")
            .fetch_optional(tx)
            .await?;
    let current = current.map_or(0, |c| c.0);
    Ok((current != epoch).then_some(current))
}
