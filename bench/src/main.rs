//! `bare-crawl`: the benchmark's practical ceiling. One process crawls the bench site with
//! the same rules as owlmesh's job and the Scrapy spider (obey robots.txt, follow `a[href]`
//! within the allowed hosts, never PDFs, extract title, price and SKU from product pages),
//! but with nothing else: no persistence, no RPC, no politeness beyond a fixed number of
//! requests in flight. It prints one JSON summary line on stdout.

mod extract;

use std::collections::{HashMap, HashSet, VecDeque};
use std::fs::File;
use std::io::{BufWriter, Write as _};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use clap::Parser;
use texting_robots::Robot;
use tokio::task::JoinSet;
use url::Url;

use crate::extract::{Extractor, Page};

/// Requests in flight unless told otherwise: 32 per host over the bench's 4 hosts, the
/// same budget as the owlmesh job and the Scrapy spider.
const DEFAULT_CONCURRENCY: usize = 128;
/// Attempts per URL when the transport fails (the bench's nginx should never fail).
const ATTEMPTS: u8 = 3;
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// Crawls a site in one process, as fast as it goes.
#[derive(Debug, Parser)]
#[command(name = "bare-crawl", version, about)]
struct Options {
    /// Start URLs, comma-separated.
    #[arg(
        long,
        env = "BARE_CRAWL_SEEDS",
        value_delimiter = ',',
        default_value = "http://127.0.0.11:8080/"
    )]
    seeds: Vec<String>,
    /// Hosts links may lead to, as `host:port`, comma-separated.
    #[arg(
        long,
        env = "BARE_CRAWL_ALLOW",
        value_delimiter = ',',
        default_value = "127.0.0.11:8080"
    )]
    allow: Vec<String>,
    /// Requests in flight, over all hosts together.
    #[arg(long, env = "BARE_CRAWL_CONCURRENCY", default_value_t = DEFAULT_CONCURRENCY)]
    concurrency: usize,
    /// Where the items go, one JSON object per line.
    #[arg(long, env = "BARE_CRAWL_OUT", default_value = "bare-items.jsonl")]
    out: PathBuf,
    /// The User-Agent sent, and matched against robots.txt.
    #[arg(long, env = "BARE_CRAWL_USER_AGENT", default_value = "owlmesh-bench")]
    user_agent: String,
}

/// What the crawl did, printed as one JSON line.
#[derive(Debug, Default, serde::Serialize)]
struct Summary {
    pages: u64,
    items: u64,
    /// Answers other than 200 with HTML, and transport failures after the last attempt.
    failed: u64,
    /// URLs robots.txt kept out.
    disallowed: u64,
    elapsed_s: f64,
    pages_per_s: f64,
}

/// A URL waiting for a fetch, with the attempts it has had.
type Pending = (Url, u8);

/// What a fetch task hands back to the loop.
enum Fetched {
    Page(Page),
    /// Not a 200 HTML answer: counted, not retried.
    Skipped,
    Failed(Pending, reqwest::Error),
}

/// Which paths each host's robots.txt lets the crawl fetch; `None` allows everything.
struct RobotsRules {
    by_host: HashMap<String, Option<Robot>>,
}

impl RobotsRules {
    /// Fetches every allowed host's robots.txt once, all at the same time. As RFC 9309 says:
    /// a 4xx allows everything; a 5xx or no answer keeps the crawl off the host.
    async fn fetch(client: &reqwest::Client, agent: &str, hosts: &[String]) -> Self {
        let mut tasks = JoinSet::new();
        for host in hosts {
            let client = client.clone();
            let host = host.clone();
            tasks.spawn(async move {
                let answer = fetch_robots(&client, &host).await;
                (host, answer)
            });
        }
        let mut by_host = HashMap::new();
        while let Some(Ok((host, answer))) = tasks.join_next().await {
            let rules = match answer {
                Ok((status, body)) if status.is_success() => Robot::new(agent, &body).ok(),
                Ok((status, _)) if status.is_client_error() => None,
                _ => Robot::new(agent, b"User-agent: *\nDisallow: /\n").ok(),
            };
            by_host.insert(host, rules);
        }
        Self { by_host }
    }

    fn allows(&self, url: &Url) -> bool {
        let host = match (url.host_str(), url.port_or_known_default()) {
            (Some(host), Some(port)) => format!("{host}:{port}"),
            _ => return false,
        };
        match self.by_host.get(&host) {
            Some(Some(robot)) => robot.allowed(url.as_str()),
            Some(None) => true,
            None => false,
        }
    }
}

/// One host's robots.txt: its status and body.
async fn fetch_robots(
    client: &reqwest::Client,
    host: &str,
) -> reqwest::Result<(reqwest::StatusCode, Vec<u8>)> {
    let response = client
        .get(format!("http://{host}/robots.txt"))
        .send()
        .await?;
    let status = response.status();
    Ok((status, response.bytes().await?.to_vec()))
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let options = Options::parse();
    anyhow::ensure!(options.concurrency > 0, "--concurrency must be at least 1");
    let started = Instant::now();
    let summary = crawl(&options).await?;
    let summary = Summary {
        elapsed_s: started.elapsed().as_secs_f64(),
        pages_per_s: summary.pages as f64 / started.elapsed().as_secs_f64(),
        ..summary
    };
    eprintln!(
        "bare-crawl: {} pages, {} items in {:.2} s: {:.0} pages/s ({} failed, {} kept out by robots.txt)",
        summary.pages,
        summary.items,
        summary.elapsed_s,
        summary.pages_per_s,
        summary.failed,
        summary.disallowed
    );
    println!("{}", serde_json::to_string(&summary)?);
    Ok(())
}

/// The crawl loop. It alone owns the frontier, the seen set and the output, so nothing is
/// locked; fetching and parsing run in tasks spread over the runtime's threads.
async fn crawl(options: &Options) -> anyhow::Result<Summary> {
    // reqwest is built without a TLS provider of its own; the bench only speaks plain HTTP,
    // but a client cannot be made without one. An error means one is installed already.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let client = reqwest::Client::builder()
        .user_agent(options.user_agent.clone())
        .no_proxy()
        .tcp_nodelay(true)
        .pool_max_idle_per_host(options.concurrency)
        .timeout(REQUEST_TIMEOUT)
        .build()
        .context("building the HTTP client")?;
    let extractor = Arc::new(Extractor::new(&options.allow)?);
    let robots = RobotsRules::fetch(&client, &options.user_agent, &options.allow).await;
    let file = File::create(&options.out)
        .with_context(|| format!("creating {}", options.out.display()))?;
    let mut out = BufWriter::with_capacity(1 << 16, file);

    let mut summary = Summary::default();
    let mut seen: HashSet<String> = HashSet::new();
    let mut queue: VecDeque<Pending> = VecDeque::new();
    let mut admit = |url: Url, summary: &mut Summary, queue: &mut VecDeque<Pending>| {
        if seen.contains(url.as_str()) {
            return;
        }
        seen.insert(url.as_str().to_owned());
        if robots.allows(&url) {
            queue.push_back((url, 0));
        } else {
            summary.disallowed += 1;
        }
    };
    for seed in &options.seeds {
        let mut url = Url::parse(seed).with_context(|| format!("seed {seed:?}"))?;
        url.set_fragment(None);
        admit(url, &mut summary, &mut queue);
    }

    let mut tasks = JoinSet::new();
    loop {
        while tasks.len() < options.concurrency {
            let Some(pending) = queue.pop_front() else {
                break;
            };
            tasks.spawn(fetch(client.clone(), Arc::clone(&extractor), pending));
        }
        let Some(joined) = tasks.join_next().await else {
            break;
        };
        match joined.context("a fetch task panicked")? {
            Fetched::Page(page) => {
                summary.pages += 1;
                if let Some(item) = page.item {
                    serde_json::to_writer(&mut out, &item)?;
                    out.write_all(b"\n")?;
                    summary.items += 1;
                }
                for link in page.links {
                    admit(link, &mut summary, &mut queue);
                }
            }
            Fetched::Skipped => summary.failed += 1,
            Fetched::Failed((url, attempts), error) if attempts + 1 < ATTEMPTS => {
                eprintln!("bare-crawl: {url}: {error}; retrying");
                queue.push_back((url, attempts + 1));
            }
            Fetched::Failed((url, _), error) => {
                eprintln!("bare-crawl: {url}: {error}; giving up");
                summary.failed += 1;
            }
        }
    }
    out.flush()?;
    Ok(summary)
}

/// Fetches one page and extracts from it, on whichever runtime thread is free.
async fn fetch(client: reqwest::Client, extractor: Arc<Extractor>, pending: Pending) -> Fetched {
    let url = &pending.0;
    let response = match client.get(url.clone()).send().await {
        Ok(response) => response,
        Err(error) => return Fetched::Failed(pending, error),
    };
    let is_html = response
        .headers()
        .get(reqwest::header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| value.starts_with("text/html"));
    if response.status() != reqwest::StatusCode::OK || !is_html {
        return Fetched::Skipped;
    }
    match response.text().await {
        Ok(body) => Fetched::Page(extractor.extract(url, &body)),
        Err(error) => Fetched::Failed(pending, error),
    }
}
