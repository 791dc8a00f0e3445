//! Connecting to a database, bringing its schema up to date, and the connections kept open.

use std::str::FromStr;
use std::time::Duration;

use sqlx::migrate::Migrator;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::sqlite::SqliteSynchronous;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions};

use crate::durability::Durability;
use crate::error::Result;
use crate::statement::{BothRows, Statement};
use crate::transaction::WriteTx;

/// How long an SQLite connection waits for another process's write lock before failing.
const SQLITE_BUSY_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a caller waits for a free pooled connection.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a PostgreSQL session of ours may sit inside a transaction without sending the
/// next statement before the server ends it (`idle_in_transaction_session_timeout`).
///
/// A process whose host vanishes mid-transaction (no FIN, no RST) would otherwise keep its
/// row locks until the server's TCP keep-alive notices, two hours by default, and a standby
/// dispatcher taking over would wait on them all that time. Our transactions never pause
/// between statements for more than the time to build the next one (microseconds to a few
/// milliseconds), so half a second only ever ends a dead one. A URL that sets the parameter
/// itself (`options=-c idle_in_transaction_session_timeout=…`) keeps its own.
pub const POSTGRES_IDLE_IN_TRANSACTION_TIMEOUT: Duration = Duration::from_millis(500);

/// Which database a store lives in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// An SQLite file: the embedded default.
    Sqlite,
    /// A PostgreSQL server.
    Postgres,
}

impl Backend {
    /// `"sqlite"` or `"postgres"`.
    pub fn name(self) -> &'static str {
        match self {
            Self::Sqlite => "sqlite",
            Self::Postgres => "postgres",
        }
    }
}

/// Whether `url` names a PostgreSQL database rather than an SQLite file.
pub fn is_postgres_url(url: &str) -> bool {
    url.starts_with("postgres://") || url.starts_with("postgresql://")
}

/// A store's embedded migrations for each backend (from `sqlx::migrate!`).
#[derive(Debug)]
pub struct Schema {
    sqlite: Migrator,
    postgres: Migrator,
}

impl Schema {
    /// The migrations of each backend, tracked in sqlx's default `_sqlx_migrations` table.
    pub fn new(sqlite: Migrator, postgres: Migrator) -> Self {
        Self { sqlite, postgres }
    }

    /// Tracks the migrations in `table` instead, so that stores sharing one database keep
    /// their histories apart. A store's table is never renamed once it has shipped.
    pub fn tracked_in(mut self, table: &'static str) -> Self {
        self.sqlite.dangerous_set_table_name(table);
        self.postgres.dangerous_set_table_name(table);
        self
    }
}

/// The open connections of one database.
#[derive(Debug, Clone)]
pub enum Pool {
    /// SQLite allows one writer: the writer pool holds a single connection, so this process's
    /// writers queue for it instead of spinning on the busy timeout, and every write
    /// transaction starts `IMMEDIATE`, so writers of other processes queue on the file lock
    /// before reading anything they will write. Readers use their own pool, which WAL keeps
    /// from ever waiting for the writer.
    Sqlite {
        /// The one connection that writes.
        writer: SqlitePool,
        /// Connections that only read.
        reader: SqlitePool,
    },
    /// PostgreSQL serves concurrent writers itself; one pool does both.
    Postgres(PgPool),
}

impl Pool {
    /// Connects to `url` (`postgres://…`, `sqlite:…` or a plain SQLite file path, created if
    /// missing) and runs the migrations of its backend. `max_connections` bounds the
    /// PostgreSQL pool and SQLite's reader pool; SQLite always has one writer.
    pub async fn connect(url: &str, max_connections: u32, schema: &Schema) -> Result<Self> {
        Self::connect_durable(url, max_connections, Durability::default(), schema).await
    }

    /// Connects as [`Self::connect`] does, with SQLite committing to `durability`.
    /// PostgreSQL keeps the server's own `synchronous_commit` (by default `on`: power-loss
    /// durable), which is the database administrator's to lower.
    pub async fn connect_durable(
        url: &str,
        max_connections: u32,
        durability: Durability,
        schema: &Schema,
    ) -> Result<Self> {
        let max_connections = max_connections.max(1);
        if is_postgres_url(url) {
            connect_postgres(url, max_connections, &schema.postgres).await
        } else {
            connect_sqlite(url, max_connections, durability, &schema.sqlite).await
        }
    }

    /// The backend these connections talk to.
    pub fn backend(&self) -> Backend {
        match self {
            Self::Sqlite { .. } => Backend::Sqlite,
            Self::Postgres(_) => Backend::Postgres,
        }
    }

    /// Runs a read-only statement outside any write transaction and decodes every row.
    pub async fn fetch_all<T: BothRows>(&self, statement: Statement<'_>) -> Result<Vec<T>> {
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

    /// Starts a write transaction, waiting for the writer connection on SQLite.
    pub async fn begin_write(&self) -> Result<WriteTx> {
        Ok(match self {
            Self::Sqlite { writer, .. } => {
                WriteTx::Sqlite(writer.begin_with("BEGIN IMMEDIATE").await?)
            }
            Self::Postgres(pool) => WriteTx::Postgres(pool.begin().await?),
        })
    }

    /// Closes every connection.
    pub async fn close(&self) {
        match self {
            Self::Sqlite { writer, reader } => {
                reader.close().await;
                writer.close().await;
            }
            Self::Postgres(pool) => pool.close().await,
        }
    }
}

async fn connect_postgres(url: &str, max_connections: u32, migrator: &Migrator) -> Result<Pool> {
    let mut options = PgConnectOptions::from_str(url)?;
    if let Some(schema) = search_path_schema(&options) {
        create_schema(&options, &schema).await?;
    }
    let given = options.get_options().unwrap_or_default();
    if !given.contains("idle_in_transaction_session_timeout") {
        let timeout = POSTGRES_IDLE_IN_TRANSACTION_TIMEOUT.as_millis().to_string();
        options = options.options([("idle_in_transaction_session_timeout", timeout)]);
    }
    let pool = PgPoolOptions::new()
        .max_connections(max_connections)
        .acquire_timeout(ACQUIRE_TIMEOUT)
        .connect_with(options)
        .await?;
    migrator.run(&pool).await?;
    Ok(Pool::Postgres(pool))
}

/// The schema a URL selects with `options[search_path]=NAME` (or `options=-c
/// search_path=NAME`): the first of the last `search_path` given, which is where the store's
/// tables and its migration history are made. Several stores then share one database, each
/// in its own schema (the archiver shards of `owlmesh up`, for one).
fn search_path_schema(options: &PgConnectOptions) -> Option<String> {
    let settings = options.get_options()?;
    let path = settings
        .split_whitespace()
        .filter_map(|word| word.strip_prefix("search_path="))
        .next_back()?;
    let first = path.split(',').next()?.trim().trim_matches('"');
    (!first.is_empty() && first != "$user").then(|| first.to_owned())
}

/// Creates `schema` when it is missing: the connection's search path names it, so the
/// migrations that follow make their tables there.
async fn create_schema(options: &PgConnectOptions, schema: &str) -> Result<()> {
    use sqlx::Connection;
    let mut connection = sqlx::PgConnection::connect_with(options).await?;
    // An identifier cannot be bound as a parameter: quoted, with quotes doubled.
    let quoted = schema.replace('"', "\"\"");
    let statement = format!("CREATE SCHEMA IF NOT EXISTS \"{quoted}\"");
    sqlx::query(sqlx::AssertSqlSafe(statement))
        .execute(&mut connection)
        .await?;
    connection.close().await?;
    Ok(())
}

async fn connect_sqlite(
    url: &str,
    readers: u32,
    durability: Durability,
    migrator: &Migrator,
) -> Result<Pool> {
    // In WAL mode NORMAL syncs the log only at checkpoints: a commit is safe from a killed
    // process at once, from a power loss only after the next checkpoint. FULL syncs the log
    // at every commit.
    let synchronous = match durability {
        Durability::PowerLoss => SqliteSynchronous::Full,
        Durability::ProcessCrash => SqliteSynchronous::Normal,
    };
    let options = if url.starts_with("sqlite:") {
        SqliteConnectOptions::from_str(url)?
    } else {
        SqliteConnectOptions::new().filename(url)
    }
    .create_if_missing(true)
    .journal_mode(SqliteJournalMode::Wal)
    .synchronous(synchronous)
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
    migrator.run(&writer).await?;
    // An in-memory database exists once per connection: its readers must be its writer.
    let reader = if url.contains(":memory:") || url.contains("mode=memory") {
        writer.clone()
    } else {
        SqlitePoolOptions::new()
            .max_connections(readers)
            .acquire_timeout(ACQUIRE_TIMEOUT)
            .connect_with(options)
            .await?
    };
    Ok(Pool::Sqlite { writer, reader })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn schema_of(url: &str) -> Option<String> {
        search_path_schema(&PgConnectOptions::from_str(url).unwrap())
    }

    #[test]
    fn the_schema_is_the_first_of_the_last_search_path_given() {
        let server = "postgres://owlmesh@db.internal:5432/owlmesh";
        assert_eq!(schema_of(server), None);
        let encoded = format!("{server}?options=-c%20search_path%3Darchive_1");
        assert_eq!(schema_of(&encoded).as_deref(), Some("archive_1"));
        let bracketed = format!("{server}?options[search_path]=archive_0,public");
        assert_eq!(schema_of(&bracketed).as_deref(), Some("archive_0"));
        let twice = format!("{bracketed}&options=-c%20search_path%3Darchive_2");
        assert_eq!(schema_of(&twice).as_deref(), Some("archive_2"));
        let user = format!("{server}?options[search_path]=$user");
        assert_eq!(schema_of(&user), None);
    }
}
