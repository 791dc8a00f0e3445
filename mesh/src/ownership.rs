//! Host ownership: which scraper owns which host. One scraper owns a host so that its
//! politeness, robots.txt cache and connections need no coordination.
//!
//! Owners are placed by [`HostOwners`], the consistent-hash ring over scraper ids keyed by
//! the job crate's `HostKey`, in every process that asks. Two places ask, over two member
//! sets, and that is the one difference between their answers:
//! - the dispatcher assigns a host's URLs to its owner among the scrapers that have a work
//!   session open with it (it can send work to no other);
//! - the directory's `Route` answers with the owner among the scrapers registered with it.
//!
//! Once every registered scraper has its session open (a scraper opens it as soon as it has
//! registered), both sets are the same and so are the owners; while a scraper is joining or
//! leaving, `Route` may name it before or after the dispatcher does.

use owlmesh_job::canonicalize;

use crate::ring::HashRouter;

/// The kind scrapers register as; its routes are host owners.
pub const SCRAPER_KIND: &str = "scraper";

/// Which of a set of scrapers owns each host.
#[derive(Debug, Default, Clone)]
pub struct HostOwners {
    ring: HashRouter,
}

impl HostOwners {
    /// The owners among these scraper ids.
    pub fn new<I, S>(scraper_ids: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Self {
            ring: HashRouter::new(scraper_ids),
        }
    }

    /// The id of the scraper that owns the host with key `host` (as `HostKey` spells it);
    /// `None` when there is no scraper.
    pub fn owner_of(&self, host: &str) -> Option<&str> {
        self.ring.route(host)
    }
}

/// The host key a `Route` for scrapers means: a URL stands for its host's key, so
/// `https://Example.com/a` and `http://example.com/b` both ask about `example.com`; any
/// other key is taken as a host key already written.
pub fn host_route_key(key: &str) -> String {
    match canonicalize(key.trim()) {
        Ok(url) => url.host_key().into(),
        Err(_) => key.trim().to_ascii_lowercase(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_url_routes_as_its_host() {
        assert_eq!(host_route_key("https://Example.com/a?b=1"), "example.com");
        assert_eq!(
            host_route_key("http://example.com:8080/"),
            "example.com:8080"
        );
        assert_eq!(host_route_key(" Example.COM "), "example.com");
        assert_eq!(host_route_key("127.0.0.2:8081"), "127.0.0.2:8081");
    }

    #[test]
    fn owners_are_the_same_for_the_same_scrapers_in_any_order() {
        let one = HostOwners::new(["scraper-0", "scraper-1", "scraper-2"]);
        let other = HostOwners::new(["scraper-2", "scraper-0", "scraper-1"]);
        for host in (0..200).map(|n| format!("host-{n}.test")) {
            assert_eq!(one.owner_of(&host), other.owner_of(&host), "{host}");
        }
        assert_eq!(HostOwners::default().owner_of("a.test"), None);
    }
}
