//! Postgres persistence. Each submodule holds the SQL of one table group; every statement
//! filters on the tenant, except the typing-expiry sweep, which is system-wide by nature.

mod archive;
mod blocks;
pub mod messages;
mod metrics;
mod migrations;
mod pins;
mod reports;
pub mod rooms;
mod sql;
pub mod tls;
mod typing;
mod users;
mod webhooks;

pub use archive::{ArchiveStep, ArchivedMonth, ArchivedPlace, MonthWritten};
pub use blocks::Blocked;
pub use messages::{Edited, Inserted, NewMessage, ReactionChange, ReadPosition, ReadResult};
pub use metrics::{RoomMetrics, TenantMetrics};
pub use migrations::{migrate, MIGRATIONS};
pub use pins::{Pinned, StoredPin};
pub use reports::{Closing, Filed, ReportFilter};
pub use rooms::{Members, Membership, NewRoom, RoomVersion};
pub use sql::StatementMode;
pub use typing::ExpiredTyping;
pub use users::WentOffline;

use std::future::Future;
use std::time::Duration;

use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod, Runtime};

use sql::Conn;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database unavailable: {0}")]
    Pool(#[from] deadpool_postgres::PoolError),
    #[error("database error: {}", with_causes(.0))]
    Db(#[from] tokio_postgres::Error),
    #[error("invalid database configuration: {0}")]
    Config(String),
    #[error("corrupt row: {0}")]
    Corrupt(String),
}

/// tokio-postgres' errors name only their kind ("db error", "error performing TLS handshake"):
/// the reason, such as the server's message or the certificate's fault, is in their sources.
fn with_causes(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text = format!("{text}: {cause}");
        source = cause.source();
    }
    text
}

impl StoreError {
    /// The database is unreachable, gone or too slow (a statement timed out): worth a retry.
    pub fn is_unavailable(&self) -> bool {
        match self {
            StoreError::Pool(_) => true,
            StoreError::Db(e) => e.is_closed() || e.code() == Some(&tokio_postgres::error::SqlState::QUERY_CANCELED),
            _ => false,
        }
    }
}

/// The pool of Postgres connections, created once per process and shared by every handler.
#[derive(Clone)]
pub struct Store {
    pool: Pool,
    statements: StatementMode,
}

impl Store {
    /// A pool of at most `max_size` connections. Getting a connection, and every statement,
    /// gives up after `timeout`, so an unreachable or stuck database answers with an error.
    /// TLS is as the URL's `sslmode` says (see [`tls`]). Unnamed statements set nothing on the
    /// session, not even the statement timeout (a transaction-mode pooler refuses startup
    /// options): behind a pooler it is the database role's (`ALTER ROLE … SET statement_timeout`).
    ///
    /// Prepared statements keep one generic plan each (`plan_cache_mode`). Left to choose,
    /// Postgres plans a statement for its parameters whenever that looks cheaper, and a tenant
    /// newer than the statistics looks empty: the insert of a message was then planned on most
    /// executions, and planned for a tenant it took to be empty (README, "Plans for tenants the
    /// statistics do not know"). `tests/tests/partitioning.rs` checks the generic plans.
    pub fn connect(
        database_url: &str,
        max_size: usize,
        timeout: Duration,
        statements: StatementMode,
    ) -> Result<Self, StoreError> {
        let (mut config, tls) = tls::config(database_url)?;
        config.connect_timeout(timeout);
        if statements == StatementMode::Prepared {
            config
                .options(format!("-c statement_timeout={} -c plan_cache_mode=force_generic_plan", timeout.as_millis()));
        }
        let manager = Manager::from_config(config, tls, ManagerConfig { recycling_method: RecyclingMethod::Fast });
        let pool = Pool::builder(manager)
            .max_size(max_size)
            .runtime(Runtime::Tokio1)
            .wait_timeout(Some(timeout))
            .create_timeout(Some(timeout))
            .recycle_timeout(Some(timeout))
            .build()
            .map_err(|e| StoreError::Config(e.to_string()))?;
        Ok(Self { pool, statements })
    }

    /// Whether the database answers.
    pub async fn ping(&self) -> Result<(), StoreError> {
        self.client().await?.simple_query("SELECT 1").await?;
        Ok(())
    }

    async fn client(&self) -> Result<Conn<deadpool_postgres::Object>, StoreError> {
        let client = self.pool.get().await.inspect_err(|err| {
            if matches!(err, deadpool_postgres::PoolError::Timeout(_)) {
                crate::metrics::count(crate::metrics::Counter::DbPoolTimeouts, 1);
            }
        })?;
        Ok(Conn::new(client, self.statements))
    }

    pub async fn migrate(&self) -> Result<Vec<&'static str>, StoreError> {
        let mut client = self.client().await?;
        migrate(&mut client).await
    }
}

/// One connection outside the pool (tools, tests), with the same TLS as the pool's; the
/// connection future must be spawned for the client to work.
pub async fn connect_one(
    database_url: &str,
) -> Result<
    (tokio_postgres::Client, impl Future<Output = Result<(), tokio_postgres::Error>> + Send + 'static),
    StoreError,
> {
    let (config, tls) = tls::config(database_url)?;
    Ok(config.connect(tls).await?)
}
