//! robots.txt: fetched once per origin, cached until it expires, consulted before every
//! fetch. Parsing is `texting_robots`'.
//!
//! What an answer means follows RFC 9309:
//! - 2xx: the rules apply (the first `DEFAULT_MAX_ROBOTS_BYTES` are read);
//! - 4xx, or too many redirects: there are no rules, everything is allowed;
//! - 5xx, 429, timeouts and connection failures: the site is "unreachable" and nothing may
//!   be fetched for now. The verdict is cached for a short while only, and when an earlier
//!   copy of the rules exists it is used instead (the RFC allows crawlers to).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use texting_robots::Robot;
use tokio::sync::OnceCell;
use url::Url;

use crate::fetch::{BodyPolicy, FetchError, FetchOptions, Fetcher};

/// How long fetched rules (or their absence) are trusted.
pub(crate) const DEFAULT_ROBOTS_TTL: Duration = Duration::from_secs(60 * 60);
/// How long an unreachable robots.txt blocks its origin before it is asked for again.
pub(crate) const DEFAULT_UNREACHABLE_TTL: Duration = Duration::from_secs(60);
/// How much of a robots.txt is read.
pub(crate) const DEFAULT_MAX_ROBOTS_BYTES: u64 = 500 * 1024;
/// Crawl-delay beyond this is cut to it: a delay of hours would outlive every lease.
pub(crate) const MAX_CRAWL_DELAY: Duration = Duration::from_secs(60);
/// Origins remembered before expired entries are swept.
const SWEEP_ABOVE: usize = 10_000;

/// How the [`RobotsCache`] behaves. Every field has a default.
#[derive(Debug, Clone)]
pub struct RobotsConfig {
    /// See `DEFAULT_ROBOTS_TTL`.
    pub ttl: Duration,
    /// See `DEFAULT_UNREACHABLE_TTL`.
    pub unreachable_ttl: Duration,
    /// See `DEFAULT_MAX_ROBOTS_BYTES`.
    pub max_bytes: u64,
}

impl Default for RobotsConfig {
    fn default() -> Self {
        Self {
            ttl: DEFAULT_ROBOTS_TTL,
            unreachable_ttl: DEFAULT_UNREACHABLE_TTL,
            max_bytes: DEFAULT_MAX_ROBOTS_BYTES,
        }
    }
}

/// What robots.txt says about one URL.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum RobotsVerdict {
    /// May be fetched; `crawl_delay` is the host's Crawl-delay for this agent, if any.
    Allowed {
        /// The Crawl-delay, at most `MAX_CRAWL_DELAY`.
        crawl_delay: Option<Duration>,
    },
    /// robots.txt forbids it.
    Disallowed,
    /// robots.txt could not be read: nothing on this origin may be fetched until it is.
    Unreachable {
        /// When robots.txt will be asked for again.
        retry_after: Duration,
    },
}

impl RobotsVerdict {
    /// Whether the URL may be fetched now.
    pub fn is_allowed(&self) -> bool {
        matches!(self, Self::Allowed { .. })
    }

    /// What the robots.txt body `text` says about `url` for `user_agent`, by the same parse
    /// and matching a fetched copy gets: the one parse point of robots.txt, public so that
    /// its fuzz target (`fuzz/fuzz_targets/robots.rs`) drives it.
    pub fn of_text(text: &[u8], url: &Url, user_agent: &str) -> Self {
        let file = RobotsFile {
            expires_at: Instant::now() + DEFAULT_ROBOTS_TTL,
            rules: Arc::new(Rules::Parsed(ParsedRobots::new(text.to_vec()))),
        };
        file.verdict(url, user_agent)
    }
}

/// robots.txt files by origin, fetched on first use. Concurrent first uses of one origin
/// share one fetch.
#[derive(Debug)]
pub struct RobotsCache {
    fetcher: Fetcher,
    config: RobotsConfig,
    origins: Mutex<HashMap<String, Arc<Slot>>>,
}

/// One origin's robots.txt, being fetched or fetched.
type Slot = OnceCell<Arc<RobotsFile>>;

#[derive(Debug)]
struct RobotsFile {
    expires_at: Instant,
    /// Shared so that an expired file's rules can stand in while robots.txt is unreachable.
    rules: Arc<Rules>,
}

#[derive(Debug)]
enum Rules {
    AllowAll,
    Unreachable,
    Parsed(ParsedRobots),
}

/// A robots.txt body and its rules compiled per agent token, on first use.
#[derive(Debug)]
struct ParsedRobots {
    text: Vec<u8>,
    by_agent: Mutex<HashMap<String, Option<Arc<Robot>>>>,
}

impl RobotsCache {
    /// A cache that fetches with `fetcher`.
    pub fn new(fetcher: Fetcher, config: RobotsConfig) -> Self {
        Self {
            fetcher,
            config,
            origins: Mutex::new(HashMap::new()),
        }
    }

    /// What robots.txt says about `url` for `user_agent`, fetching it when not cached.
    pub async fn check(&self, url: &Url, user_agent: &str) -> RobotsVerdict {
        let Some(origin) = origin_key(url) else {
            return RobotsVerdict::Disallowed;
        };
        let (slot, stale) = self.slot(&origin);
        let file = slot
            .get_or_init(|| self.fetch(url, user_agent, stale))
            .await;
        file.verdict(url, user_agent)
    }

    /// The verdict from the cache alone: `None` when `url`'s robots.txt is not cached or has
    /// expired. Useful where waiting for a fetch is not possible, e.g. to vet a redirect.
    pub fn check_cached(&self, url: &Url, user_agent: &str) -> Option<RobotsVerdict> {
        let origin = origin_key(url)?;
        let slot = self.lock().get(&origin).cloned()?;
        let file = slot.get()?;
        (file.expires_at > Instant::now()).then(|| file.verdict(url, user_agent))
    }

    /// Forgets the robots.txt of `url`'s origin, e.g. when its host moved to another scraper.
    pub fn forget(&self, url: &Url) {
        if let Some(origin) = origin_key(url) {
            self.lock().remove(&origin);
        }
    }

    /// The slot to wait on for `origin`, and the expired file it replaces, if any.
    fn slot(&self, origin: &str) -> (Arc<Slot>, Option<Arc<RobotsFile>>) {
        let now = Instant::now();
        let mut origins = self.lock();
        if let Some(slot) = origins.get(origin) {
            match slot.get() {
                Some(file) if file.expires_at <= now => {
                    let stale = Arc::clone(file);
                    let fresh = Arc::new(Slot::new());
                    origins.insert(origin.to_owned(), Arc::clone(&fresh));
                    return (fresh, Some(stale));
                }
                _ => return (Arc::clone(slot), None),
            }
        }
        if origins.len() >= SWEEP_ABOVE {
            origins.retain(|_, slot| slot.get().is_none_or(|file| file.expires_at > now));
        }
        let fresh = Arc::new(Slot::new());
        origins.insert(origin.to_owned(), Arc::clone(&fresh));
        (fresh, None)
    }

    async fn fetch(
        &self,
        url: &Url,
        user_agent: &str,
        stale: Option<Arc<RobotsFile>>,
    ) -> Arc<RobotsFile> {
        let Some(robots_url) = robots_url(url) else {
            return self.file(Rules::AllowAll);
        };
        let options = FetchOptions {
            user_agent: Some(user_agent),
            body: BodyPolicy::Prefix,
            max_body_bytes: Some(self.config.max_bytes),
            ..FetchOptions::default()
        };
        let rules = match self.fetcher.fetch_with(&robots_url, &options).await {
            Ok(fetched) => Rules::Parsed(ParsedRobots::new(fetched.body.unwrap_or_default())),
            Err(failure) if is_unreachable(&failure.error) => {
                tracing::debug!(%robots_url, error = %failure, "robots.txt unreachable");
                return self.unreachable(stale);
            }
            Err(_) => Rules::AllowAll,
        };
        self.file(rules)
    }

    /// An unreachable robots.txt: the previous rules if there are some, else a block, both
    /// only until the next try.
    fn unreachable(&self, stale: Option<Arc<RobotsFile>>) -> Arc<RobotsFile> {
        let expires_at = Instant::now() + self.config.unreachable_ttl;
        let rules = stale
            .map(|file| Arc::clone(&file.rules))
            .filter(|rules| !matches!(**rules, Rules::Unreachable))
            .unwrap_or_else(|| Arc::new(Rules::Unreachable));
        Arc::new(RobotsFile { expires_at, rules })
    }

    fn file(&self, rules: Rules) -> Arc<RobotsFile> {
        Arc::new(RobotsFile {
            expires_at: Instant::now() + self.config.ttl,
            rules: Arc::new(rules),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Arc<Slot>>> {
        self.origins.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl RobotsFile {
    fn verdict(&self, url: &Url, user_agent: &str) -> RobotsVerdict {
        match &*self.rules {
            Rules::AllowAll => RobotsVerdict::Allowed { crawl_delay: None },
            Rules::Unreachable => RobotsVerdict::Unreachable {
                retry_after: self.expires_at.saturating_duration_since(Instant::now()),
            },
            Rules::Parsed(parsed) => match parsed.robot(agent_token(user_agent)) {
                None => RobotsVerdict::Allowed { crawl_delay: None },
                Some(robot) if robot.allowed(url.as_str()) => RobotsVerdict::Allowed {
                    crawl_delay: robot.delay.and_then(crawl_delay),
                },
                Some(_) => RobotsVerdict::Disallowed,
            },
        }
    }
}

impl ParsedRobots {
    fn new(text: Vec<u8>) -> Self {
        Self {
            text,
            by_agent: Mutex::new(HashMap::new()),
        }
    }

    /// The rules for `agent`; `None` when the file does not parse, which allows everything.
    fn robot(&self, agent: &str) -> Option<Arc<Robot>> {
        let mut by_agent = self.by_agent.lock().unwrap_or_else(PoisonError::into_inner);
        by_agent
            .entry(agent.to_owned())
            .or_insert_with(|| Robot::new(agent, &self.text).ok().map(Arc::new))
            .clone()
    }
}

/// Whether a robots.txt failure means "unreachable" (block for now) rather than "no rules".
fn is_unreachable(error: &FetchError) -> bool {
    matches!(
        error,
        FetchError::ServerError { .. }
            | FetchError::RateLimited { .. }
            | FetchError::Timeout { .. }
            | FetchError::Connect { .. }
            | FetchError::Transport { .. }
    )
}

/// The product token robots.txt groups are matched on: `owlmesh` of `owlmesh/1.0 (+url)`.
pub(crate) fn agent_token(user_agent: &str) -> &str {
    let token = user_agent
        .split(|c: char| c == '/' || c.is_whitespace())
        .next()
        .unwrap_or_default();
    if token.is_empty() { "*" } else { token }
}

/// A Crawl-delay in seconds as a duration, rounded to the millisecond (`0.2` is an inexact
/// f32) and at most `MAX_CRAWL_DELAY`.
fn crawl_delay(seconds: f32) -> Option<Duration> {
    if !seconds.is_finite() || seconds <= 0.0 {
        return None;
    }
    let millis = (f64::from(seconds) * 1000.0)
        .round()
        .min(MAX_CRAWL_DELAY.as_millis() as f64);
    (millis >= 1.0).then(|| Duration::from_millis(millis as u64))
}

/// `scheme://host:port`, the unit robots.txt applies to.
fn origin_key(url: &Url) -> Option<String> {
    let host = url.host_str()?;
    let port = url.port_or_known_default()?;
    Some(format!("{}://{host}:{port}", url.scheme()))
}

/// The robots.txt URL of `url`'s origin.
fn robots_url(url: &Url) -> Option<Url> {
    let mut robots = url.join("/robots.txt").ok()?;
    robots.set_query(None);
    robots.set_fragment(None);
    robots.set_username("").ok()?;
    robots.set_password(None).ok()?;
    Some(robots)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_agent_token_is_the_product_name() {
        assert_eq!(
            agent_token("owlmesh-test/1.0 (+https://x.example)"),
            "owlmesh-test"
        );
        assert_eq!(agent_token("owlmesh"), "owlmesh");
        assert_eq!(agent_token(""), "*");
    }

    #[test]
    fn crawl_delays_are_capped_and_zero_means_none() {
        assert_eq!(crawl_delay(1.5), Some(Duration::from_millis(1500)));
        assert_eq!(crawl_delay(0.2), Some(Duration::from_millis(200)));
        assert_eq!(crawl_delay(f32::NAN), None);
        assert_eq!(crawl_delay(86_400.0), Some(MAX_CRAWL_DELAY));
        assert_eq!(crawl_delay(0.0), None);
        assert_eq!(crawl_delay(-1.0), None);
    }

    #[test]
    fn robots_txt_lives_at_the_origin_root() {
        let url = Url::parse("https://u:p@example.com:8443/a/b?c=d#e").unwrap();
        assert_eq!(
            robots_url(&url).unwrap().as_str(),
            "https://example.com:8443/robots.txt"
        );
        assert_eq!(origin_key(&url).unwrap(), "https://example.com:8443");
    }

    #[test]
    fn parsed_rules_apply_per_agent() {
        let file = RobotsFile {
            expires_at: Instant::now() + Duration::from_secs(60),
            rules: Arc::new(Rules::Parsed(ParsedRobots::new(
                b"User-agent: *\nDisallow: /private/\nCrawl-delay: 2\n\nUser-agent: greedy\nDisallow: /\n".to_vec(),
            ))),
        };
        let private = Url::parse("http://h/private/x").unwrap();
        let public = Url::parse("http://h/public").unwrap();
        assert_eq!(file.verdict(&private, "owlmesh"), RobotsVerdict::Disallowed);
        assert_eq!(
            file.verdict(&public, "owlmesh/1.0"),
            RobotsVerdict::Allowed {
                crawl_delay: Some(Duration::from_secs(2))
            }
        );
        assert_eq!(file.verdict(&public, "Greedy"), RobotsVerdict::Disallowed);
    }

    #[test]
    fn a_body_read_as_text_gives_the_verdict_a_fetched_copy_gives() {
        let text = b"User-agent: *\nDisallow: /private/\nCrawl-delay: 2\n";
        let private = Url::parse("http://h/private/x").unwrap();
        let public = Url::parse("http://h/public").unwrap();
        assert_eq!(
            RobotsVerdict::of_text(text, &private, "owlmesh/1.0"),
            RobotsVerdict::Disallowed
        );
        assert_eq!(
            RobotsVerdict::of_text(text, &public, "owlmesh/1.0"),
            RobotsVerdict::Allowed {
                crawl_delay: Some(Duration::from_secs(2))
            }
        );
        assert!(RobotsVerdict::of_text(b"\xff\xfe garbage", &private, "owlmesh").is_allowed());
    }
}
