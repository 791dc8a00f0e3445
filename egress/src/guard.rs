//! The guard itself: the networks the operator allowed, and the verdict on one address.

use std::net::IpAddr;
use std::sync::Arc;

use ipnet::IpNet;
use url::{Host, Url};

use crate::ranges::{SpecialRange, embedded_v4};
use crate::resolver::GuardedResolver;

/// Decides which addresses outbound requests may reach: every public address, and a special
/// one (see [`SpecialRange`]) only inside a network the operator allowed. The default allows
/// no special address. Cheap to clone.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EgressGuard {
    allowed: Arc<[IpNet]>,
}

/// A connection the guard refused: the address, and the range that made it refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("blocked address {address} ({range})")]
pub struct BlockedAddress {
    /// The address that would have been dialled.
    pub address: IpAddr,
    /// Why it is refused.
    pub range: SpecialRange,
}

impl EgressGuard {
    /// A guard that allows, besides public addresses, those inside `networks`.
    pub fn allowing(networks: impl IntoIterator<Item = IpNet>) -> Self {
        let allowed: Vec<IpNet> = networks
            .into_iter()
            .map(|network| network.trunc())
            .collect();
        Self {
            allowed: allowed.into(),
        }
    }

    /// The networks allowed besides the public internet.
    pub fn allowed(&self) -> &[IpNet] {
        &self.allowed
    }

    /// Whether a connection to `address` may be made.
    pub fn check(&self, address: IpAddr) -> Result<(), BlockedAddress> {
        let Some(range) = SpecialRange::of(address) else {
            return Ok(());
        };
        // `[::ffff:10.0.0.7]` is inside an allowed `10.0.0.0/8` as `10.0.0.7` is.
        let as_v4 = match address {
            IpAddr::V6(v6) => embedded_v4(v6).map(IpAddr::V4),
            IpAddr::V4(_) => None,
        };
        let inside = |address: IpAddr| self.allowed.iter().any(|net| net.contains(&address));
        if inside(address) || as_v4.is_some_and(inside) {
            return Ok(());
        }
        Err(BlockedAddress { address, range })
    }

    /// Whether `url` may be fetched as far as its host tells: a literal address is checked
    /// here; a name is checked on the addresses it resolves to, by [`EgressGuard::resolver`].
    pub fn check_url(&self, url: &Url) -> Result<(), BlockedAddress> {
        match url.host() {
            Some(Host::Ipv4(v4)) => self.check(IpAddr::V4(v4)),
            Some(Host::Ipv6(v6)) => self.check(IpAddr::V6(v6)),
            Some(Host::Domain(_)) | None => Ok(()),
        }
    }

    /// A DNS resolver for reqwest that hands the client only the addresses this guard allows,
    /// so the address checked is the address dialled (no second lookup to rebind).
    pub fn resolver(&self) -> GuardedResolver {
        GuardedResolver::new(self.clone())
    }
}

/// The [`BlockedAddress`] somewhere in `error`'s chain of causes, e.g. inside a reqwest
/// connect error.
pub fn blocked_cause<'a>(
    error: &'a (dyn std::error::Error + 'static),
) -> Option<&'a BlockedAddress> {
    let mut cause = Some(error);
    while let Some(error) = cause {
        if let Some(blocked) = error.downcast_ref::<BlockedAddress>() {
            return Some(blocked);
        }
        cause = error.source();
    }
    None
}

/// Parses one allowed network: a CIDR block (`10.0.0.0/8`, `fd00::/8`) or a single address.
pub fn parse_network(text: &str) -> Result<IpNet, String> {
    let text = text.trim();
    if let Ok(network) = text.parse::<IpNet>() {
        return Ok(network);
    }
    if let Ok(address) = text.parse::<IpAddr>() {
        return Ok(IpNet::from(address));
    }
    Err(format!(
        "{text:?} is not a network: write an address with a prefix length, e.g. 10.0.0.0/8 \
         or fd00::/8, or a single address"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn address(text: &str) -> IpAddr {
        text.parse().expect("an address")
    }

    #[test]
    fn by_default_only_public_addresses_pass() {
        let guard = EgressGuard::default();
        assert_eq!(guard.check(address("93.184.216.34")), Ok(()));
        let refused = guard.check(address("10.0.0.7")).expect_err("private");
        assert_eq!(
            refused.to_string(),
            "blocked address 10.0.0.7 (private network)"
        );
        assert!(guard.check(address("127.0.0.1")).is_err());
        assert!(guard.check(address("::1")).is_err());
    }

    #[test]
    fn an_allowed_network_opens_exactly_itself() {
        let guard = EgressGuard::allowing([parse_network("127.0.0.2").expect("valid")]);
        assert_eq!(guard.check(address("127.0.0.2")), Ok(()));
        assert!(guard.check(address("127.0.0.3")).is_err());
        let guard = EgressGuard::allowing([parse_network("10.1.0.0/16").expect("valid")]);
        assert_eq!(guard.check(address("10.1.200.3")), Ok(()));
        assert_eq!(guard.check(address("::ffff:10.1.200.3")), Ok(()));
        assert!(guard.check(address("10.2.0.1")).is_err());
    }

    #[test]
    fn literal_hosts_are_checked_and_names_are_left_to_resolution() {
        let guard = EgressGuard::default();
        let url = |text: &str| Url::parse(text).expect("a URL");
        assert!(guard.check_url(&url("http://127.0.0.1:8080/")).is_err());
        assert!(guard.check_url(&url("http://[::ffff:7f00:1]/")).is_err());
        // The URL parser reads every IPv4 spelling, so `0x7f.1` is 127.0.0.1 too.
        assert!(guard.check_url(&url("http://0x7f.1/")).is_err());
        assert_eq!(guard.check_url(&url("http://localhost/")), Ok(()));
    }

    #[test]
    fn networks_parse_with_or_without_a_prefix() {
        assert_eq!(
            parse_network(" 10.0.0.0/8 ").expect("valid").to_string(),
            "10.0.0.0/8"
        );
        assert_eq!(parse_network("::1").expect("valid").to_string(), "::1/128");
        let error = parse_network("10.0.0.0/33").expect_err("bad prefix");
        assert!(error.contains("is not a network"), "{error}");
    }
}
