//! The two sqlx backends behind one small interface: connecting and migrating, and running a
//! [`Statement`] on the pool or in a write transaction. Statements use `$n` placeholders, which
//! SQLite and PostgreSQL both accept, so the SQL of the rest of the store is written once.

use std::borrow::Cow;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions, PgRow};
use sqlx::query::Query;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteRow,
    SqliteSynchronous,
};
use sqlx::{AssertSqlSafe, Database, Encode, FromRow, Postgres, Sqlite, Type};
use tokio::sync::{Mutex, OwnedMutexGuard};

use crate::error::Result;

/// How long an SQLite connection waits for another process's lock before failing.
const SQLITE_BUSY_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a caller waits for a free pooled connection.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(30);

/// One bound value of a [`Statement`].
#[derive(Debug, Clone, Copy)]
pub(crate) enum Param<'a> {
    Text(&'a str),
    Int(i64),
}

/// SQL text with `$n` placeholders and the values bound to them, in order.
#[derive(Debug)]
pub(crate) struct Statement<'a> {
    sql: Cow<'static, str>,
    params: Vec<Param<'a>>,
}

impl<'a> Statement<'a> {
    /// A statement whose placeholders are written into `sql` by the caller.
    pub(crate) fn new(sql: impl Into<Cow<'static, str>>) -> Self {
        Self {
            sql: sql.into(),
            params: Vec::new(),
        }
    }

    /// Binds the next placeholder to a text.
    pub(crate) fn text(mut self, value: &'a str) -> Self {
        self.params.push(Param::Text(value));
        self
    }

    /// Binds the next placeholder to an integer.
    pub(crate) fn int(mut self, value: i64) -> Self {
        self.params.push(Param::Int(value));
        self
    }

    /// Appends SQL text.
    pub(crate) fn push_sql(&mut self, sql: &str) {
        self.sql.to_mut().push_str(sql);
    }

    /// Appends a placeholder for `param` to the SQL text and binds it.
    pub(crate) fn push_bind(&mut self, param: Param<'a>) {
        self.params.push(param);
        let placeholder = format!("${}", self.params.len());
        self.sql.to_mut().push_str(&placeholder);
    }

    /// Appends one parenthesized row of placeholders, `($k, …)`, binding `row` to it.
    pub(crate) fn push_row(&mut self, row: impl IntoIterator<Item = Param<'a>>) {
        self.push_sql("(");
        for (position, param) in row.into_iter().enumerate() {
            if position > 0 {
                self.push_sql(", ");
            }
            self.push_bind(param);
        }
        self.push_sql(")");
    }

    fn into_query<DB>(self) -> Query<'a, DB, DB::Arguments>
    where
        DB: Database,
        for<'t> &'t str: Encode<'t, DB> + Type<DB>,
        for<'t> i64: Encode<'t, DB> + Type<DB>,
    {
        let mut query = sqlx::query(AssertSqlSafe(self.sql));
        for param in self.params {
            query = match param {
                Param::Text(text) => query.bind(text),
                Param::Int(int) => query.bind(int),
            };
        }
        query
    }
}

/// A row type that both backends can decode.
pub(crate) trait AnyRow:
    for<'r> FromRow<'r, SqliteRow> + for<'r> FromRow<'r, PgRow> + Send + Unpin
{
}

impl<T> AnyRow for T where
    T: for<'r> FromRow<'r, SqliteRow> + for<'r> FromRow<'r, PgRow> + Send + Unpin
{
}

/// The connection pool of the chosen backend.
#[derive(Debug, Clone)]
pub(crate) enum Backend {
    /// SQLite allows one writer at a time; the lock queues this process's writers in order
    /// instead of letting them spin on the database's busy timeout.
    Sqlite {
        pool: SqlitePool,
        write_lock: Arc<Mutex<()>>,
    },
    Postgres {
        pool: PgPool,
    },
}

/// A transaction that writes; dropped without [`WriteTransaction::commit`], it rolls back.
pub(crate) enum WriteTransaction {
    Sqlite {
        transaction: sqlx::Transaction<'static, Sqlite>,
        _write_guard: OwnedMutexGuard<()>,
    },
    Postgres {
        transaction: sqlx::Transaction<'static, Postgres>,
    },
}

/// Whether `url` names a PostgreSQL database rather than an SQLite file.
pub fn is_postgres_url(url: &str) -> bool {
    url.starts_with("postgres://") || url.starts_with("postgresql://")
}

impl Backend {
    /// Connects to `url` (`postgres://…`, `sqlite:…`, or a plain file path for SQLite) and
    /// brings the schema up to date.
    pub(crate) async fn connect(url: &str, max_connections: u32) -> Result<Self> {
        if is_postgres_url(url) {
            let options = PgConnectOptions::from_str(url)?;
            let pool = PgPoolOptions::new()
                .max_connections(max_connections)
                .acquire_timeout(ACQUIRE_TIMEOUT)
                .connect_with(options)
                .await?;
            sqlx::migrate!("migrations/postgres").run(&pool).await?;
            return Ok(Self::Postgres { pool });
        }
        let options = if url.starts_with("sqlite:") {
            SqliteConnectOptions::from_str(url)?
        } else {
            SqliteConnectOptions::new().filename(url)
        };
        let options = options
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(SQLITE_BUSY_TIMEOUT);
        let pool = SqlitePoolOptions::new()
            .max_connections(max_connections)
            .acquire_timeout(ACQUIRE_TIMEOUT)
            .connect_with(options)
            .await?;
        sqlx::migrate!("migrations/sqlite").run(&pool).await?;
        let write_lock = Arc::new(Mutex::new(()));
        Ok(Self::Sqlite { pool, write_lock })
    }

    /// `"sqlite"` or `"postgres"`.
    pub(crate) fn name(&self) -> &'static str {
        match self {
            Self::Sqlite { .. } => "sqlite",
            Self::Postgres { .. } => "postgres",
        }
    }

    /// Runs a read-only query and decodes every row.
    pub(crate) async fn fetch_all<T: AnyRow>(&self, statement: Statement<'_>) -> Result<Vec<T>> {
        let rows = match self {
            Self::Sqlite { pool, .. } => {
                let rows = statement.into_query().fetch_all(pool).await?;
                rows.iter().map(T::from_row).collect::<Result<_, _>>()?
            }
            Self::Postgres { pool } => {
                let rows = statement.into_query().fetch_all(pool).await?;
                rows.iter().map(T::from_row).collect::<Result<_, _>>()?
            }
        };
        Ok(rows)
    }

    /// Starts a transaction that writes, waiting for this process's other SQLite writers.
    pub(crate) async fn begin_write(&self) -> Result<WriteTransaction> {
        Ok(match self {
            Self::Sqlite { pool, write_lock } => {
                let write_guard = write_lock.clone().lock_owned().await;
                WriteTransaction::Sqlite {
                    transaction: pool.begin().await?,
                    _write_guard: write_guard,
                }
            }
            Self::Postgres { pool } => WriteTransaction::Postgres {
                transaction: pool.begin().await?,
            },
        })
    }

    /// Closes every pooled connection.
    pub(crate) async fn close(&self) {
        match self {
            Self::Sqlite { pool, .. } => pool.close().await,
            Self::Postgres { pool } => pool.close().await,
        }
    }
}

impl WriteTransaction {
    /// Runs a statement and returns how many rows it changed.
    pub(crate) async fn execute(&mut self, statement: Statement<'_>) -> Result<u64> {
        let result = match self {
            Self::Sqlite { transaction, .. } => {
                let done = statement.into_query().execute(&mut **transaction).await?;
                done.rows_affected()
            }
            Self::Postgres { transaction } => {
                let done = statement.into_query().execute(&mut **transaction).await?;
                done.rows_affected()
            }
        };
        Ok(result)
    }

    /// Runs a statement and decodes the rows it returns.
    pub(crate) async fn fetch_all<T: AnyRow>(
        &mut self,
        statement: Statement<'_>,
    ) -> Result<Vec<T>> {
        let rows = match self {
            Self::Sqlite { transaction, .. } => {
                let rows = statement.into_query().fetch_all(&mut **transaction).await?;
                rows.iter().map(T::from_row).collect::<Result<_, _>>()?
            }
            Self::Postgres { transaction } => {
                let rows = statement.into_query().fetch_all(&mut **transaction).await?;
                rows.iter().map(T::from_row).collect::<Result<_, _>>()?
            }
        };
        Ok(rows)
    }

    /// Makes every write of the transaction durable.
    pub(crate) async fn commit(self) -> Result<()> {
        match self {
            Self::Sqlite { transaction, .. } => transaction.commit().await?,
            Self::Postgres { transaction } => transaction.commit().await?,
        }
        Ok(())
    }
}
