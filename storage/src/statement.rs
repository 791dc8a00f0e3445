//! A statement: SQL text with `$n` placeholders, which SQLite and PostgreSQL both accept, and
//! the values bound to them in order.

use std::borrow::Cow;

use sqlx::postgres::PgRow;
use sqlx::query::Query;
use sqlx::sqlite::SqliteRow;
use sqlx::{AssertSqlSafe, Database, Encode, FromRow, Type};

/// One bound value of a [`Statement`].
#[derive(Debug, Clone, Copy)]
pub enum Param<'a> {
    /// An integer.
    Int(i64),
    /// An integer or NULL.
    OptionalInt(Option<i64>),
    /// A text (a JSON batch is a text too).
    Text(&'a str),
    /// Bytes.
    Bytes(&'a [u8]),
}

/// SQL text and the values bound to its placeholders.
///
/// The text is usually a `&'static str` written once per backend; a statement that grows
/// with its input (one row of placeholders per record) builds its text with
/// [`Statement::push_sql`] and [`Statement::push_row`].
#[derive(Debug)]
pub struct Statement<'a> {
    sql: Cow<'static, str>,
    params: Vec<Param<'a>>,
}

impl<'a> Statement<'a> {
    /// A statement with nothing bound yet.
    pub fn new(sql: impl Into<Cow<'static, str>>) -> Self {
        Self {
            sql: sql.into(),
            params: Vec::new(),
        }
    }

    /// Binds the next placeholder to an integer.
    pub fn int(mut self, value: i64) -> Self {
        self.params.push(Param::Int(value));
        self
    }

    /// Binds the next placeholder to an integer or NULL.
    pub fn optional_int(mut self, value: Option<i64>) -> Self {
        self.params.push(Param::OptionalInt(value));
        self
    }

    /// Binds the next placeholder to a text.
    pub fn text(mut self, value: &'a str) -> Self {
        self.params.push(Param::Text(value));
        self
    }

    /// Binds the next placeholder to bytes.
    pub fn bytes(mut self, value: &'a [u8]) -> Self {
        self.params.push(Param::Bytes(value));
        self
    }

    /// Appends SQL text.
    pub fn push_sql(&mut self, sql: &str) {
        self.sql.to_mut().push_str(sql);
    }

    /// Appends a placeholder for `param` to the SQL text and binds it.
    pub fn push_bind(&mut self, param: Param<'a>) {
        self.params.push(param);
        let placeholder = format!("${}", self.params.len());
        self.sql.to_mut().push_str(&placeholder);
    }

    /// Appends one parenthesized row of placeholders, `($k, …)`, binding `row` to it.
    pub fn push_row(&mut self, row: impl IntoIterator<Item = Param<'a>>) {
        self.push_sql("(");
        for (position, param) in row.into_iter().enumerate() {
            if position > 0 {
                self.push_sql(", ");
            }
            self.push_bind(param);
        }
        self.push_sql(")");
    }

    pub(crate) fn into_query<DB>(self) -> Query<'a, DB, DB::Arguments>
    where
        DB: Database,
        for<'t> &'t str: Encode<'t, DB> + Type<DB>,
        for<'t> &'t [u8]: Encode<'t, DB> + Type<DB>,
        for<'t> i64: Encode<'t, DB> + Type<DB>,
        for<'t> Option<i64>: Encode<'t, DB> + Type<DB>,
    {
        // Every text is either written in the source or built from placeholders alone; values
        // only ever travel as bound parameters.
        let mut query = sqlx::query(AssertSqlSafe(self.sql));
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
pub trait BothRows:
    for<'r> FromRow<'r, SqliteRow> + for<'r> FromRow<'r, PgRow> + Send + Unpin
{
}

impl<T> BothRows for T where
    T: for<'r> FromRow<'r, SqliteRow> + for<'r> FromRow<'r, PgRow> + Send + Unpin
{
}
