//! A PostgreSQL database of its own for one test, on the server [`POSTGRES_URL_VARIABLE`]
//! names, dropped when the test ends, failed or not. Without that variable there is none,
//! and the run says loudly, past the harness's output capture, what was not tested.

use std::io::Write as _;
use std::net::{SocketAddr, ToSocketAddrs as _};
use std::sync::Once;

use anyhow::Context;
use sqlx::Connection as _;

/// The variable naming the PostgreSQL server to test against, as the storage tests read it
/// (e.g. `postgres://postgres@127.0.0.1:5432/test`).
pub const POSTGRES_URL_VARIABLE: &str = "OWLMESH_TEST_POSTGRES_URL";

/// A database made for one test; dropped (its sessions closed first) with this value.
pub struct FreshDatabase {
    /// The server's URL, as given, where the database is dropped from.
    server: String,
    /// The database's name.
    name: String,
    /// The database's URL on the server.
    url: url::Url,
}

impl FreshDatabase {
    /// A database `<prefix>_<random>` on the test server, or `None` where no server is
    /// given, after a notice (once per test binary) that `skipped` was not tested.
    pub async fn create(prefix: &str, skipped: &str) -> anyhow::Result<Option<Self>> {
        let Some(server) = std::env::var(POSTGRES_URL_VARIABLE)
            .ok()
            .filter(|url| !url.is_empty())
        else {
            static NOTICE: Once = Once::new();
            NOTICE.call_once(|| {
                let notice = format!(
                    "\n\n*** POSTGRESQL SKIPPED: {skipped}; set {POSTGRES_URL_VARIABLE} (e.g. \
                     postgres://postgres@127.0.0.1:5432/test) to run it ***\n\n"
                );
                std::io::stderr().write_all(notice.as_bytes()).ok();
            });
            return Ok(None);
        };
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)?
            .as_nanos();
        let name = format!("{prefix}_{}_{nanos}", std::process::id());
        let mut connection = sqlx::PgConnection::connect(&server)
            .await
            .with_context(|| format!("connect to {server}"))?;
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(&mut connection)
            .await?;
        connection.close().await.ok();
        let mut url = url::Url::parse(&server)?;
        url.set_path(&name);
        Ok(Some(Self { server, name, url }))
    }

    /// The database's URL on the server, as this process reaches it.
    pub fn url(&self) -> &str {
        self.url.as_str()
    }

    /// The server's address, which a forwarder forwards to.
    pub fn server_address(&self) -> anyhow::Result<SocketAddr> {
        let host = self
            .url
            .host_str()
            .context("the server URL names no host")?;
        let port = self.url.port().unwrap_or(5432);
        (host, port)
            .to_socket_addrs()?
            .next()
            .with_context(|| format!("{host} has no address"))
    }

    /// The database's URL reached at `address` instead (a forwarder to the server).
    pub fn url_via(&self, address: SocketAddr) -> String {
        let mut url = self.url.clone();
        url.set_ip_host(address.ip())
            .expect("a postgres URL has a host");
        url.set_port(Some(address.port()))
            .expect("a postgres URL has a port");
        url.to_string()
    }
}

/// Rows of `table` in `schema` of the database at `url`.
pub async fn count_rows(url: &str, schema: &str, table: &str) -> i64 {
    let mut connection = sqlx::PgConnection::connect(url).await.unwrap();
    let statement = format!("SELECT count(*) FROM {schema}.{table}");
    let (rows,): (i64,) = sqlx::query_as(sqlx::AssertSqlSafe(statement))
        .fetch_one(&mut connection)
        .await
        .unwrap();
    connection.close().await.ok();
    rows
}

impl Drop for FreshDatabase {
    /// Drops the database on a thread of its own (a drop cannot await, and may run while a
    /// test panics); an error is printed, not raised.
    fn drop(&mut self) {
        let server = self.server.clone();
        let statement = format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name);
        let dropped = std::thread::spawn(move || -> anyhow::Result<()> {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            runtime.block_on(async {
                let mut connection = sqlx::PgConnection::connect(&server).await?;
                sqlx::query(sqlx::AssertSqlSafe(statement))
                    .execute(&mut connection)
                    .await?;
                connection.close().await.ok();
                anyhow::Ok(())
            })
        })
        .join();
        match dropped {
            Ok(Ok(())) => {}
            Ok(Err(error)) => eprintln!("cleanup: drop database {}: {error:#}", self.name),
            Err(_) => eprintln!("cleanup: dropping database {} panicked", self.name),
        }
    }
}
