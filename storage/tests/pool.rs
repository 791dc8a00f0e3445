//! The storage layer on every backend: migrations land in the table a store names, writes
//! are all-or-nothing, and SQLite writers in several processes queue instead of failing.

use owlmesh_storage::testing::{TestDatabase, each_backend};
use owlmesh_storage::{Backend, Durability, Param, Pool, Schema, Statement};

const FILE: &str = "notes.sqlite3";

fn schema() -> Schema {
    Schema::new(
        sqlx::migrate!("tests/migrations/sqlite"),
        sqlx::migrate!("tests/migrations/postgres"),
    )
    .tracked_in("_notes_migrations")
}

async fn open(database: &TestDatabase) -> Pool {
    let pool = Pool::connect(database.url(), 4, &schema())
        .await
        .expect("open the test database");
    assert_eq!(pool.backend(), database.backend());
    pool
}

async fn count(pool: &Pool) -> i64 {
    let rows: Vec<(i64,)> = pool
        .fetch_all(Statement::new("SELECT COUNT(*) FROM notes"))
        .await
        .unwrap();
    rows[0].0
}

#[tokio::test]
async fn migrations_are_tracked_in_the_table_the_store_names() {
    each_backend(FILE, async |database| {
        let pool = open(database).await;
        let applied: Vec<(i64,)> = pool
            .fetch_all(Statement::new("SELECT version FROM _notes_migrations"))
            .await
            .unwrap();
        assert_eq!(applied, vec![(1,)]);
        let reopened = open(database).await;
        assert_eq!(count(&reopened).await, 0, "migrating again changes nothing");
        reopened.close().await;
        pool.close().await;
    })
    .await;
}

#[tokio::test]
async fn a_write_lands_whole_or_not_at_all() {
    each_backend(FILE, async |database| {
        let pool = open(database).await;
        let mut insert = Statement::new("INSERT INTO notes (body, size) VALUES ");
        insert.push_row([Param::Text("it's \"quoted\""), Param::OptionalInt(None)]);
        insert.push_sql(", ");
        insert.push_row([Param::Text("ü"), Param::Int(2)]);
        let mut transaction = pool.begin_write().await.unwrap();
        assert_eq!(transaction.execute(insert).await.unwrap(), 2);
        transaction.commit().await.unwrap();

        let mut abandoned = pool.begin_write().await.unwrap();
        let statement = Statement::new("INSERT INTO notes (body) VALUES ($1)").text("lost");
        abandoned.execute(statement).await.unwrap();
        drop(abandoned);

        let rows: Vec<(String, Option<i64>)> = pool
            .fetch_all(Statement::new("SELECT body, size FROM notes ORDER BY id"))
            .await
            .unwrap();
        assert_eq!(
            rows,
            vec![
                ("it's \"quoted\"".to_owned(), None),
                ("ü".to_owned(), Some(2))
            ]
        );
        pool.close().await;
    })
    .await;
}

#[tokio::test]
async fn an_sqlite_file_is_in_wal_mode() {
    let database = TestDatabase::sqlite(FILE);
    let pool = open(&database).await;
    let Pool::Sqlite { reader, .. } = &pool else {
        panic!("a file path opens SQLite");
    };
    let (mode,): (String,) = sqlx::query_as("PRAGMA journal_mode")
        .fetch_one(reader)
        .await
        .unwrap();
    assert_eq!(mode, "wal");
    pool.close().await;
    database.remove().await;
}

/// SQLite's `synchronous` is what the durability level promises: FULL (2) flushes the
/// log at every commit, NORMAL (1) at checkpoints; the writer and the readers agree.
#[tokio::test]
async fn an_sqlite_file_syncs_as_its_durability_level_says() {
    for (durability, expected) in [(Durability::PowerLoss, 2), (Durability::ProcessCrash, 1)] {
        let database = TestDatabase::sqlite(FILE);
        let pool = Pool::connect_durable(database.url(), 4, durability, &schema())
            .await
            .unwrap();
        let Pool::Sqlite { reader, writer } = &pool else {
            panic!("a file path opens SQLite");
        };
        for connections in [writer, reader] {
            let (synchronous,): (i64,) = sqlx::query_as("PRAGMA synchronous")
                .fetch_one(connections)
                .await
                .unwrap();
            assert_eq!(synchronous, expected, "{durability}");
        }
        pool.close().await;
        database.remove().await;
    }
}

/// Two pools on one file stand for two processes. Each transaction reads before it writes,
/// which under a deferred `BEGIN` fails with SQLITE_BUSY as soon as two of them overlap.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sqlite_writers_of_several_processes_queue_instead_of_failing() {
    const WRITERS: i64 = 8;
    const WRITES: i64 = 25;
    let database = TestDatabase::sqlite(FILE);
    let first = open(&database).await;
    let second = open(&database).await;
    assert_eq!(first.backend(), Backend::Sqlite);
    let mut tasks = Vec::new();
    for writer in 0..WRITERS {
        let pool = if writer % 2 == 0 { &first } else { &second }.clone();
        tasks.push(tokio::spawn(async move {
            for _ in 0..WRITES {
                let mut transaction = pool.begin_write().await?;
                let seen: Vec<(i64,)> = transaction
                    .fetch_all(Statement::new("SELECT COUNT(*) FROM notes"))
                    .await?;
                let statement = Statement::new("INSERT INTO notes (body, size) VALUES ($1, $2)")
                    .text("counted")
                    .int(seen[0].0);
                transaction.execute(statement).await?;
                transaction.commit().await?;
            }
            Ok::<_, owlmesh_storage::StorageError>(())
        }));
    }
    for task in tasks {
        task.await.unwrap().expect("every write transaction lands");
    }
    assert_eq!(count(&first).await, WRITERS * WRITES);
    let sizes: Vec<(i64,)> = first
        .fetch_all(Statement::new("SELECT size FROM notes ORDER BY id"))
        .await
        .unwrap();
    let in_order: Vec<(i64,)> = (0..WRITERS * WRITES).map(|n| (n,)).collect();
    assert_eq!(
        sizes, in_order,
        "each writer saw every write before its own"
    );
    first.close().await;
    second.close().await;
    database.remove().await;
}

/// A PostgreSQL session of ours that goes silent inside a transaction (its host vanished)
/// is ended by the server after POSTGRES_IDLE_IN_TRANSACTION_TIMEOUT, so its row locks do
/// not hold up the others; a URL that sets its own bound keeps it.
#[tokio::test]
async fn postgres_sessions_end_a_silent_transaction_unless_the_url_says_otherwise() {
    let Some(database) = TestDatabase::postgres().await else {
        return;
    };
    let timeout = owlmesh_storage::POSTGRES_IDLE_IN_TRANSACTION_TIMEOUT;
    let separator = if database.url().contains('?') {
        '&'
    } else {
        '?'
    };
    let own = format!(
        "{}{separator}options=-c%20idle_in_transaction_session_timeout%3D7000",
        database.url()
    );
    for (url, expected) in [
        (
            database.url().to_owned(),
            format!("{}ms", timeout.as_millis()),
        ),
        (own, "7s".to_owned()),
    ] {
        let pool = Pool::connect(&url, 2, &schema()).await.unwrap();
        let Pool::Postgres(connections) = &pool else {
            panic!("a postgres:// URL opens PostgreSQL");
        };
        let (setting,): (String,) = sqlx::query_as("SHOW idle_in_transaction_session_timeout")
            .fetch_one(connections)
            .await
            .unwrap();
        assert_eq!(setting, expected, "{url}");
        pool.close().await;
    }
    database.remove().await;
}
