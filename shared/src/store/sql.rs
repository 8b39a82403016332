//! How the store's statements reach Postgres. Prepared, a statement is parsed once per pooled
//! connection and then costs one round trip; but a named statement is session state, which a
//! transaction-mode pooler (PgBouncer, RDS Proxy) cannot share between clients: PgBouncer sends
//! the next statement to another server connection where the name is unknown, RDS Proxy pins the
//! session to one connection for good. Unnamed, each statement goes out with its parameters'
//! types (tokio-postgres' `query_typed`) as Parse, Bind and Execute in one round trip, and leaves
//! nothing behind on the connection.

use std::ops::{Deref, DerefMut};

use chrono::{DateTime, NaiveDate, Utc};
use deadpool_postgres::GenericClient;
use tokio_postgres::types::{ToSql, Type};
use tokio_postgres::GenericClient as _;
use tokio_postgres::Row;
use uuid::Uuid;

use super::StoreError;
use crate::xray;

/// `DB_STATEMENTS`: `prepared` or `unnamed`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StatementMode {
    /// Parsed once per connection and reused (Postgres direct, or a session-mode pooler).
    Prepared,
    /// One round trip each, no session state (behind a transaction-mode pooler).
    Unnamed,
}

impl std::str::FromStr for StatementMode {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "prepared" => Ok(Self::Prepared),
            "unnamed" => Ok(Self::Unnamed),
            other => Err(format!("{other:?}: expected prepared or unnamed")),
        }
    }
}

/// The Postgres type a Rust value is sent as: an unnamed statement names its parameters' types,
/// as the server is not asked to infer them first.
pub trait PgType {
    const TYPE: Type;
}

macro_rules! pg_types {
    ($($rust:ty => $pg:ident),* $(,)?) => { $(impl PgType for $rust { const TYPE: Type = Type::$pg; })* };
}

pg_types!(
    bool => BOOL, i32 => INT4, i64 => INT8, f64 => FLOAT8, str => TEXT, String => TEXT,
    Uuid => UUID, DateTime<Utc> => TIMESTAMPTZ, NaiveDate => DATE, serde_json::Value => JSONB,
    [i64] => INT8_ARRAY, [Uuid] => UUID_ARRAY, [String] => TEXT_ARRAY, Vec<&str> => TEXT_ARRAY,
    Vec<i64> => INT8_ARRAY, Vec<Uuid> => UUID_ARRAY, Vec<String> => TEXT_ARRAY,
    Vec<Option<&str>> => TEXT_ARRAY,
);

impl<T: PgType + ?Sized> PgType for &T {
    const TYPE: Type = T::TYPE;
}

impl<T: PgType> PgType for Option<T> {
    const TYPE: Type = T::TYPE;
}

/// A statement parameter: a value and the type it is sent as.
pub trait Param: ToSql + Sync {
    fn pg_type(&self) -> Type;
}

impl<T: PgType + ToSql + Sync> Param for T {
    fn pg_type(&self) -> Type {
        T::TYPE
    }
}

pub(crate) type Params<'a> = &'a [&'a dyn Param];

/// A pooled connection, or a transaction on one, that runs statements as its pool says.
pub(crate) struct Conn<C> {
    inner: C,
    mode: StatementMode,
}

impl Conn<deadpool_postgres::Object> {
    pub(crate) fn new(inner: deadpool_postgres::Object, mode: StatementMode) -> Self {
        Self { inner, mode }
    }

    pub(crate) async fn transaction(&mut self) -> Result<Conn<deadpool_postgres::Transaction<'_>>, StoreError> {
        let inner = xray::traced(xray::postgres("BEGIN"), self.inner.transaction()).await?;
        Ok(Conn { inner, mode: self.mode })
    }
}

impl Conn<deadpool_postgres::Transaction<'_>> {
    pub(crate) async fn commit(self) -> Result<(), StoreError> {
        Ok(xray::traced(xray::postgres("COMMIT"), self.inner.commit()).await?)
    }
}

impl<C> Deref for Conn<C> {
    type Target = C;

    fn deref(&self) -> &C {
        &self.inner
    }
}

impl<C> DerefMut for Conn<C> {
    fn deref_mut(&mut self) -> &mut C {
        &mut self.inner
    }
}

/// tokio-postgres' own client under a deadpool one: it has the typed queries deadpool's
/// `GenericClient` lacks.
pub(crate) trait Typed: GenericClient {
    fn typed(&self) -> &(impl tokio_postgres::GenericClient + Sync);
}

impl Typed for deadpool_postgres::Object {
    fn typed(&self) -> &(impl tokio_postgres::GenericClient + Sync) {
        &***self
    }
}

impl Typed for deadpool_postgres::Transaction<'_> {
    fn typed(&self) -> &(impl tokio_postgres::GenericClient + Sync) {
        &**self
    }
}

/// A helper that runs a statement the pool's way: `$prepared` on the connection's cached
/// prepared statement, or `$unnamed` with the parameters' types.
macro_rules! statement {
    ($name:ident -> $output:ty, $prepared:ident, $unnamed:ident) => {
        pub(crate) async fn $name(&self, sql: &str, params: Params<'_>) -> Result<$output, StoreError> {
            xray::traced(xray::postgres(sql), async {
                Ok(match self.mode {
                    StatementMode::Prepared => {
                        self.inner.$prepared(&self.inner.prepare_cached(sql).await?, &untyped(params)).await?
                    }
                    StatementMode::Unnamed => self.inner.typed().$unnamed(sql, &typed(params)).await?,
                })
            })
            .await
        }
    };
}

impl<C: Typed + Send + Sync> Conn<C> {
    statement!(query_cached -> Vec<Row>, query, query_typed);
    statement!(query_one_cached -> Row, query_one, query_typed_one);
    statement!(query_opt_cached -> Option<Row>, query_opt, query_typed_opt);
    statement!(execute_cached -> u64, execute, execute_typed);
}

fn untyped<'a>(params: Params<'a>) -> Vec<&'a (dyn ToSql + Sync)> {
    params.iter().map(|p| *p as &(dyn ToSql + Sync)).collect()
}

fn typed<'a>(params: Params<'a>) -> Vec<(&'a (dyn ToSql + Sync), Type)> {
    params.iter().map(|p| (*p as &(dyn ToSql + Sync), p.pg_type())).collect()
}
