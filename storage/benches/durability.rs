//! What each durability level costs a store: SQLite write transactions on a file, committed
//! one after another as the frontier and the archive commit theirs, at each level in turn.
//!
//! Run with `cargo bench -p owlmesh-storage --bench durability` (`DURABILITY_COMMITS=N`
//! commits per run, `DURABILITY_ROUNDS=N` rounds; the levels alternate within each round so
//! that the machine's drift falls on both alike). Prints the median time per commit of each
//! level, for transactions of one row and of 256 rows.

use std::time::{Duration, Instant};

use owlmesh_storage::testing::TestDatabase;
use owlmesh_storage::{Durability, Param, Pool, Schema, Statement};

const LEVELS: [Durability; 2] = [Durability::ProcessCrash, Durability::PowerLoss];
const ROWS_PER_COMMIT: [usize; 2] = [1, 256];

fn schema() -> Schema {
    Schema::new(
        sqlx::migrate!("tests/migrations/sqlite"),
        sqlx::migrate!("tests/migrations/postgres"),
    )
}

fn setting(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|value| value.parse().ok())
        .unwrap_or(default)
}

/// Time per commit of `commits` transactions of `rows` rows each, on a fresh file.
async fn run(durability: Durability, rows: usize, commits: usize) -> anyhow::Result<Duration> {
    let database = TestDatabase::sqlite("bench.sqlite3");
    let pool = Pool::connect_durable(database.url(), 2, durability, &schema()).await?;
    let body = "x".repeat(200);
    let started = Instant::now();
    for _ in 0..commits {
        let mut insert = Statement::new("INSERT INTO notes (body, size) VALUES ");
        for row in 0..rows {
            if row > 0 {
                insert.push_sql(", ");
            }
            insert.push_row([Param::Text(&body), Param::Int(row as i64)]);
        }
        let mut transaction = pool.begin_write().await?;
        transaction.execute(insert).await?;
        transaction.commit().await?;
    }
    let elapsed = started.elapsed();
    pool.close().await;
    database.remove().await;
    Ok(elapsed / commits as u32)
}

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let commits = setting("DURABILITY_COMMITS", 500);
    let rounds = setting("DURABILITY_ROUNDS", 5);
    println!("durability: {commits} commits per run, {rounds} rounds, levels alternating");
    for rows in ROWS_PER_COMMIT {
        let mut samples = vec![Vec::new(); LEVELS.len()];
        for round in 0..rounds {
            // Alternate which level goes first, so neither always runs on a warmer disk.
            for turn in 0..LEVELS.len() {
                let index = (turn + round) % LEVELS.len();
                samples[index].push(run(LEVELS[index], rows, commits).await?);
            }
        }
        for (level, samples) in LEVELS.iter().zip(samples) {
            let per_commit = median(samples);
            println!(
                "{rows:>4} rows per commit, {:<13} {:>8.1} µs per commit ({:>6.0} commits/s)",
                level.name(),
                per_commit.as_secs_f64() * 1e6,
                1.0 / per_commit.as_secs_f64()
            );
        }
    }
    Ok(())
}
