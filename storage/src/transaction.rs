//! A write transaction: every statement in it lands together at [`WriteTx::commit`], or none
//! does.

use sqlx::{Postgres, Sqlite};

use crate::error::Result;
use crate::pool::Backend;
use crate::statement::{BothRows, Statement};

/// A write transaction; dropped without [`WriteTx::commit`], it rolls back.
pub enum WriteTx {
    /// On SQLite's one writer connection, begun `IMMEDIATE`.
    Sqlite(sqlx::Transaction<'static, Sqlite>),
    /// On a pooled PostgreSQL connection.
    Postgres(sqlx::Transaction<'static, Postgres>),
}

impl WriteTx {
    /// The backend this transaction runs on, for statements whose dialects differ.
    pub fn backend(&self) -> Backend {
        match self {
            Self::Sqlite(_) => Backend::Sqlite,
            Self::Postgres(_) => Backend::Postgres,
        }
    }

    /// Runs a statement and returns how many rows it changed.
    pub async fn execute(&mut self, statement: Statement<'_>) -> Result<u64> {
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
    pub async fn fetch_all<T: BothRows>(&mut self, statement: Statement<'_>) -> Result<Vec<T>> {
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
    pub async fn commit(self) -> Result<()> {
        match self {
            Self::Sqlite(transaction) => transaction.commit().await?,
            Self::Postgres(transaction) => transaction.commit().await?,
        }
        Ok(())
    }
}
