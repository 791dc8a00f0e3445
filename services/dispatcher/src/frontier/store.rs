//! The two sqlx backends behind one small interface: connecting and migrating, and running a
//! [`Statement`] on the read pool or inside a write transaction ([`Tx`]).

use std::str::FromStr;
use std::time::Duration;

use sqlx::migrate::Migrator;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions, PgRow};
use sqlx::query::Query;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteRow,
    SqliteSynchronous,
};
use sqlx::{Database, Encode, FromRow, Postgres, Sqlite, Type};

use super::error::Result;
use super::sql::{POSTGRES, SQLITE, Statements};

/// How long an SQLite connection waits for another connection's write lock before failing.
const SQLITE_BUSY_TIMEOUT: Duration = Duration::from_secs(10);
/// Read connections of an SQLite frontier; WAL lets them read while the one writer writes.
const SQLITE_READERS: u32 = 4;
/// How long a caller waits for a free pooled connection.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(30);
/// The frontier keeps its own migrations table, so it can share a PostgreSQL database (and its
/// `_sqlx_migrations`) with the archive.
const MIGRATIONS_TABLE: &str = "_frontier_migrations";

/// One bound value of a [`Statement`].
#[derive(Debug, Clone, Copy)]
enum Param<'a> {
    Int(i64),
    OptionalInt(Option<i64>),
    Text(&'a str),
    Bytes(&'a [u8]),
}

/// SQL text and the values bound to its `$n` placeholders, in order.
#[derive(Debug)]
pub(super) struct Statement<'a> {
    sql: &'static str,
    params: Vec<Param<'a>>,
}

impl<'a> Statement<'a> {
    /// A statement with nothing bound yet.
    pub(super) fn new(sql: &'static str) -> Self {
        Self {
            sql,
            params: Vec::new(),
        }
    }

    /// Binds the next placeholder to an integer.
    pub(super) fn int(mut self, value: i64) -> Self {
        self.params.push(Param::Int(value));
        self
    }

    /// Binds the next placeholder to an integer or NULL.
    pub(super) fn optional_int(mut self, value: Option<i64>) -> Self {
        self.params.push(Param::OptionalInt(value));
        self
    }

    /// Binds the next placeholder to a text (a JSON batch is a text too).
    pub(super) fn text(mut self, value: &'a str) -> Self {
        self.params.push(Param::Text(value));
        self
    }

    /// Binds the next placeholder to bytes.
    pub(super) fn bytes(mut self, value: &'a [u8]) -> Self {
        self.params.push(Param::Bytes(value));
        self
    }

    fn into_query<DB>(self) -> Query<'a, DB, DB::Arguments>
    where
        DB: Database,
        for<'t> &'t str: Encode<'t, DB> + Type<DB>,
        for<'t> &'t [u8]: Encode<'t, DB> + Type<DB>,
        for<'t> i64: Encode<'t, DB> + Type<DB>,
        for<'t> Option<i64>: Encode<'t, DB> + Type<DB>,
    {
        let mut query = sqlx::query(self.sql);
        for param in self.params {
            query = match param {
                Param::Int(value) => query.bind(value),
                Param::OptionalInt(value) => query.bind(value),
                Param::Text(value) => query.bind(value),
                Param::Bytes(value) => query.bind(value),
            };
        }
        query
    }
}

/// A row type both backends can decode.
pub(super) trait BothRows:
    for<'r> FromRow<'r, SqliteRow> + for<'r> FromRow<'r, PgRow> + Send + Unpin
{
}

impl<T> BothRows for T where
    T: for<'r> FromRow<'r, SqliteRow> + for<'r> FromRow<'r, PgRow> + Send + Unpin
{
}

/// Which database a frontier lives in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// An SQLite file: the embedded default.
    Sqlite,
    /// A PostgreSQL server.
    Postgres,
}

/// Whether `url` names a PostgreSQL database rather than an SQLite file.
pub fn is_postgres_url(url: &str) -> bool {
    url.starts_with("postgres://") || url.starts_with("postgresql://")
}

/// The connection pools of the chosen backend.
#[derive(Debug, Clone)]
pub(super) enum FrontierPool {
    /// SQLite allows one writer: the writer pool holds a single connection, so this process's
    /// writers queue for it instead of spinning on the busy timeout, and every write
    /// transaction starts `IMMEDIATE`, so writers of other processes queue on the file lock
    /// before reading anything they will write. Readers use their own pool, which WAL keeps
    /// from ever waiting for the writer.
    Sqlite {
        writer: SqlitePool,
        reader: SqlitePool,
    },
    Postgres(PgPool),
}

/// A write transaction; dropped without [`Tx::commit`], it rolls back.
pub(super) enum Tx {
    Sqlite(sqlx::Transaction<'static, Sqlite>),
    Postgres(sqlx::Transaction<'static, Postgres>),
}

impl FrontierPool {
    /// Connects to `url` (`postgres://…`, `sqlite:…` or a plain SQLite file path) and brings
    /// the schema up to date.
    pub(super) async fn connect(url: &str, max_connections: u32) -> Result<Self> {
        if is_postgres_url(url) {
            connect_postgres(url, max_connections).await
        } else {
            connect_sqlite(url).await
        }
    }

    /// The backend this pool talks to.
    pub(super) fn backend(&self) -> Backend {
        match self {
            Self::Sqlite { .. } => Backend::Sqlite,
            Self::Postgres(_) => Backend::Postgres,
        }
    }

    /// The statements in this backend's dialect.
    pub(super) fn sql(&self) -> &'static Statements {
        match self {
            Self::Sqlite { .. } => &SQLITE,
            Self::Postgres(_) => &POSTGRES,
        }
    }

    /// Runs a read-only statement outside any write transaction and decodes every row.
    pub(super) async fn fetch_all<T: BothRows>(&self, statement: Statement<'_>) -> Result<Vec<T>> {
        let rows = match self {
            Self::Sqlite { reader, .. } => {
                let rows = statement.into_query().fetch_all(reader).await?;
                rows.iter().map(T::from_row).collect::<Result<_, _>>()?
            }
            Self::Postgres(pool) => {
                let rows = statement.into_query().fetch_all(pool).await?;
                rows.iter().map(T::from_row).collect::<Result<_, _>>()?
            }
        };
        Ok(rows)
    }

    /// Starts a write transaction.
    pub(super) async fn begin(&self) -> Result<Tx> {
        Ok(match self {
            Self::Sqlite { writer, .. } => Tx::Sqlite(writer.begin_with("BEGIN IMMEDIATE").await?),
            Self::Postgres(pool) => Tx::Postgres(pool.begin().await?),
        })
    }

    /// Closes every pooled connection.
    pub(super) async fn close(&self) {
        match self {
            Self::Sqlite { writer, reader } => {
                reader.close().await;
                writer.close().await;
            }
            Self::Postgres(pool) => pool.close().await,
        }
    }
}

async fn connect_postgres(url: &str, max_connections: u32) -> Result<FrontierPool> {
    let pool = PgPoolOptions::new()
        .max_connections(max_connections)
        .acquire_timeout(ACQUIRE_TIMEOUT)
        .connect_with(PgConnectOptions::from_str(url)?)
        .await?;
    migrator(sqlx::migrate!("migrations/postgres"))
        .run(&pool)
        .await?;
    Ok(FrontierPool::Postgres(pool))
}

async fn connect_sqlite(url: &str) -> Result<FrontierPool> {
    let options = if url.starts_with("sqlite:") {
        SqliteConnectOptions::from_str(url)?
    } else {
        SqliteConnectOptions::new().filename(url)
    }
    .create_if_missing(true)
    .journal_mode(SqliteJournalMode::Wal)
    .synchronous(SqliteSynchronous::Normal)
    .busy_timeout(SQLITE_BUSY_TIMEOUT);
    // The one writer connection is kept for good: its page cache and prepared statements stay
    // warm, and an in-memory database lives exactly as long as it does.
    let writer = SqlitePoolOptions::new()
        .max_connections(1)
        .idle_timeout(None)
        .max_lifetime(None)
        .acquire_timeout(ACQUIRE_TIMEOUT)
        .connect_with(options.clone())
        .await?;
    migrator(sqlx::migrate!("migrations/sqlite"))
        .run(&writer)
        .await?;
    // An in-memory database exists once per connection: its readers must be its writer.
    let reader = if url.contains(":memory:") || url.contains("mode=memory") {
        writer.clone()
    } else {
        SqlitePoolOptions::new()
            .max_connections(SQLITE_READERS)
            .acquire_timeout(ACQUIRE_TIMEOUT)
            .connect_with(options)
            .await?
    };
    Ok(FrontierPool::Sqlite { writer, reader })
}

/// The embedded migrations, tracked in the frontier's own table (never renamed since).
fn migrator(mut embedded: Migrator) -> Migrator {
    embedded.dangerous_set_table_name(MIGRATIONS_TABLE);
    embedded
}

impl Tx {
    /// The statements in this transaction's dialect.
    pub(super) fn sql(&self) -> &'static Statements {
        match self {
            Self::Sqlite(_) => &SQLITE,
            Self::Postgres(_) => &POSTGRES,
        }
    }

    /// Runs a statement and returns how many rows it changed.
    pub(super) async fn execute(&mut self, statement: Statement<'_>) -> Result<u64> {
        let changed = match self {
            Self::Sqlite(transaction) => {
                let done = statement.into_query().execute(&mut **transaction).await?;
                done.rows_affected()
            }
            Self::Postgres(transaction) => {
                let done = statement.into_query().execute(&mut **transaction).await?;
                done.rows_affected()
            }
        };
        Ok(changed)
    }

    /// Runs a statement and decodes the rows it returns.
    pub(super) async fn fetch_all<T: BothRows>(
        &mut self,
        statement: Statement<'_>,
    ) -> Result<Vec<T>> {
        let rows = match self {
            Self::Sqlite(transaction) => {
                let rows = statement.into_query().fetch_all(&mut **transaction).await?;
                rows.iter().map(T::from_row).collect::<Result<_, _>>()?
            }
            Self::Postgres(transaction) => {
                let rows = statement.into_query().fetch_all(&mut **transaction).await?;
                rows.iter().map(T::from_row).collect::<Result<_, _>>()?
            }
        };
        Ok(rows)
    }

    /// Makes every write of the transaction durable, all at once.
    pub(super) async fn commit(self) -> Result<()> {
        match self {
            Self::Sqlite(transaction) => transaction.commit().await?,
            Self::Postgres(transaction) => transaction.commit().await?,
        }
        Ok(())
    }
}
