//! Hosts: the one [`HostKey`] that routing, politeness and the frontier all key a host by,
//! and the [`AllowedHosts`] of a job.
//!
//! A host key is the host, plus `:port` when the port is not the scheme's default: so
//! `http://example.com/` and `https://example.com/` are one host (one owner, one politeness
//! gate), while `http://127.0.0.2:8081/` is a host of its own. An `allowed_hosts` entry
//! without a port allows its host on every port; with a port, on that port only.

use std::fmt;

use url::Url;

/// The key of a URL's host: `example.com`, `127.0.0.2:8081`, `[::1]:8080`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct HostKey(String);

impl HostKey {
    /// The key of `url`'s host; `None` for a URL without one (not http(s)).
    pub fn of(url: &Url) -> Option<Self> {
        if !is_web_url(url) {
            return None;
        }
        let host = url.host_str()?;
        Some(Self(match url.port() {
            Some(port) => format!("{host}:{port}"),
            None => host.to_owned(),
        }))
    }

    /// The key as text, as stored and routed.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for HostKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<HostKey> for String {
    fn from(key: HostKey) -> Self {
        key.0
    }
}

impl AsRef<str> for HostKey {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

/// Whether `url` is one owlmesh fetches: http or https, with a host.
pub fn is_web_url(url: &Url) -> bool {
    matches!(url.scheme(), "http" | "https") && url.host_str().is_some_and(|host| !host.is_empty())
}

/// One entry of `allowed_hosts`: a host, and the one port it is limited to, if any.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct AllowedHost {
    host: String,
    port: Option<u16>,
}

impl AllowedHost {
    /// Reads `host` or `host:port` (an IPv6 address in brackets); `None` when it is neither.
    pub fn parse(entry: &str) -> Option<Self> {
        let entry = entry.trim();
        if entry.is_empty() || entry.contains(['/', '?', '#', '@', '\\']) {
            return None;
        }
        let (host, port) = match entry.rsplit_once(':') {
            Some((host, port)) if !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit()) => {
                (host, Some(port.parse::<u16>().ok()?))
            }
            _ => (entry, None),
        };
        // The url crate lowercases, checks and normalises the host as it does for a link.
        let url = Url::parse(&format!("http://{host}/")).ok()?;
        if url.port().is_some() || url.path() != "/" || !url.username().is_empty() {
            return None;
        }
        Some(Self {
            host: url.host_str().filter(|host| !host.is_empty())?.to_owned(),
            port,
        })
    }

    /// The entry a seed stands for: its host, with its port when that is not the default.
    pub fn of_seed(url: &Url) -> Option<Self> {
        is_web_url(url).then(|| Self {
            host: url.host_str().unwrap_or_default().to_owned(),
            port: url.port(),
        })
    }

    /// Whether this entry allows `url`'s host (and port, when the entry names one).
    pub fn allows(&self, url: &Url) -> bool {
        url.host_str() == Some(self.host.as_str())
            && self
                .port
                .is_none_or(|port| url.port_or_known_default() == Some(port))
    }
}

impl fmt::Display for AllowedHost {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.port {
            Some(port) => write!(f, "{}:{port}", self.host),
            None => f.write_str(&self.host),
        }
    }
}

/// A job's allowed hosts: the only hosts it fetches from.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AllowedHosts(Vec<AllowedHost>);

impl AllowedHosts {
    /// The set of these entries, each once.
    pub fn new(entries: impl IntoIterator<Item = AllowedHost>) -> Self {
        let mut hosts: Vec<AllowedHost> = Vec::new();
        for entry in entries {
            if !hosts.contains(&entry) {
                hosts.push(entry);
            }
        }
        Self(hosts)
    }

    /// Whether any entry allows `url`.
    pub fn allows(&self, url: &Url) -> bool {
        is_web_url(url) && self.0.iter().any(|entry| entry.allows(url))
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn url(text: &str) -> Url {
        Url::parse(text).expect("test url")
    }

    #[test]
    fn http_and_https_of_one_host_share_a_key_and_other_ports_do_not() {
        let key = |text| HostKey::of(&url(text)).expect("web url").to_string();
        assert_eq!(key("http://Example.com/a"), "example.com");
        assert_eq!(key("https://example.com:443/b"), "example.com");
        assert_eq!(key("http://example.com:8080/"), "example.com:8080");
        assert_eq!(key("http://[::1]:8080/"), "[::1]:8080");
        assert_eq!(HostKey::of(&url("mailto:a@b.example")), None);
        assert_eq!(HostKey::of(&url("file:///etc/passwd")), None);
    }

    #[test]
    fn an_entry_without_a_port_allows_every_port_and_one_with_a_port_only_that_one() {
        let any_port = AllowedHost::parse("Example.COM").expect("host");
        assert!(any_port.allows(&url("http://example.com/")));
        assert!(any_port.allows(&url("https://example.com/")));
        assert!(any_port.allows(&url("http://example.com:8080/")));
        assert!(!any_port.allows(&url("http://www.example.com/")));
        let one_port = AllowedHost::parse("127.0.0.2:8081").expect("host:port");
        assert!(one_port.allows(&url("http://127.0.0.2:8081/x")));
        assert!(!one_port.allows(&url("http://127.0.0.2/x")));
        let default_port = AllowedHost::parse("example.com:443").expect("host:port");
        assert!(default_port.allows(&url("https://example.com/")));
        assert!(!default_port.allows(&url("http://example.com/")));
    }

    #[test]
    fn entries_that_are_not_hosts_are_refused() {
        for entry in ["", "http://x/", "x/y", "a@b", "x:99999", "x?y", "[::1"] {
            assert_eq!(AllowedHost::parse(entry), None, "{entry:?}");
        }
        assert_eq!(
            AllowedHost::parse(" [::1]:8080 ").map(|h| h.to_string()),
            Some("[::1]:8080".to_owned())
        );
    }

    proptest! {
        #[test]
        fn a_seed_allows_itself_and_keys_alike(
            host in "[a-z]{1,8}(\\.[a-z]{1,5}){0,2}",
            port in proptest::option::of(1u16..),
            https in any::<bool>(),
        ) {
            let scheme = if https { "https" } else { "http" };
            let text = match port {
                Some(port) => format!("{scheme}://{host}:{port}/p"),
                None => format!("{scheme}://{host}/p"),
            };
            let seed = url(&text);
            let entry = AllowedHost::of_seed(&seed).expect("web url");
            prop_assert!(entry.allows(&seed));
            prop_assert_eq!(
                AllowedHost::parse(&entry.to_string()),
                Some(entry.clone())
            );
            prop_assert_eq!(entry.to_string(), HostKey::of(&seed).expect("key").to_string());
        }
    }
}
