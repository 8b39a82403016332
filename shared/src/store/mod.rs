//! Postgres persistence. Each submodule holds the SQL of one table group; every statement
//! filters on the tenant, except the typing-expiry sweep, which is system-wide by nature.

mod archive;
pub mod messages;
mod metrics;
mod migrations;
mod rooms;
pub mod tls;
mod typing;
mod users;

pub use archive::ArchivedMonth;
pub use messages::{Inserted, NewMessage, ReadPosition, ReadResult};
pub use metrics::{RoomMetrics, TenantMetrics};
pub use migrations::{migrate, MIGRATIONS};
pub use rooms::{Membership, NewRoom};
pub use typing::ExpiredTyping;

use std::future::Future;
use std::time::Duration;

use deadpool_postgres::{GenericClient, Manager, ManagerConfig, Pool, RecyclingMethod, Runtime};
use tokio_postgres::types::ToSql;
use tokio_postgres::Row;

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
}

impl Store {
    /// A pool of at most `max_size` connections. Getting a connection, and every statement,
    /// gives up after `timeout`, so an unreachable or stuck database answers with an error.
    /// TLS is as the URL's `sslmode` says (see [`tls`]).
    pub fn connect(database_url: &str, max_size: usize, timeout: Duration) -> Result<Self, StoreError> {
        let (mut config, tls) = tls::config(database_url)?;
        config.connect_timeout(timeout).options(format!("-c statement_timeout={}", timeout.as_millis()));
        let manager = Manager::from_config(config, tls, ManagerConfig { recycling_method: RecyclingMethod::Fast });
        let pool = Pool::builder(manager)
            .max_size(max_size)
            .runtime(Runtime::Tokio1)
            .wait_timeout(Some(timeout))
            .create_timeout(Some(timeout))
            .recycle_timeout(Some(timeout))
            .build()
            .map_err(|e| StoreError::Config(e.to_string()))?;
        Ok(Self { pool })
    }

    /// Whether the database answers.
    pub async fn ping(&self) -> Result<(), StoreError> {
        self.client().await?.simple_query("SELECT 1").await?;
        Ok(())
    }

    async fn client(&self) -> Result<deadpool_postgres::Object, StoreError> {
        Ok(self.pool.get().await?)
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

type Params<'a> = &'a [&'a (dyn ToSql + Sync)];

/// Statements prepared once per pooled connection and reused: a statement given as text costs
/// two round trips (prepare, then execute), a prepared one costs one.
pub(crate) trait Prepared: GenericClient {
    fn query_cached<'a>(
        &'a self,
        sql: &'a str,
        params: Params<'a>,
    ) -> impl Future<Output = Result<Vec<Row>, tokio_postgres::Error>> + Send + 'a {
        async move { self.query(&self.prepare_cached(sql).await?, params).await }
    }

    fn query_one_cached<'a>(
        &'a self,
        sql: &'a str,
        params: Params<'a>,
    ) -> impl Future<Output = Result<Row, tokio_postgres::Error>> + Send + 'a {
        async move { self.query_one(&self.prepare_cached(sql).await?, params).await }
    }

    fn query_opt_cached<'a>(
        &'a self,
        sql: &'a str,
        params: Params<'a>,
    ) -> impl Future<Output = Result<Option<Row>, tokio_postgres::Error>> + Send + 'a {
        async move { self.query_opt(&self.prepare_cached(sql).await?, params).await }
    }

    fn execute_cached<'a>(
        &'a self,
        sql: &'a str,
        params: Params<'a>,
    ) -> impl Future<Output = Result<u64, tokio_postgres::Error>> + Send + 'a {
        async move { self.execute(&self.prepare_cached(sql).await?, params).await }
    }
}

impl<T: GenericClient> Prepared for T {}
