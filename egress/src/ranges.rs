//! The address ranges that are not the public internet: where a cloud's metadata service, a
//! home router, a database or the mesh's own ports live. A crawl reaches none of them unless
//! the operator allows it.
//!
//! The table follows IANA's special-purpose address registries (RFC 6890 and its updates).
//! IPv6 addresses that carry an IPv4 address (mapped, NAT64, 6to4) are judged by the IPv4
//! address they lead to, so that `[::ffff:127.0.0.1]` is loopback as `127.0.0.1` is.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// A kind of address that is refused by default.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SpecialRange {
    /// `0.0.0.0/8`, `::`: "this host"; dialling it reaches the local machine.
    Unspecified,
    /// `127.0.0.0/8`, `::1`.
    Loopback,
    /// `10.0.0.0/8`, `172.16.0.0/12`, `192.168.0.0/16` (RFC 1918).
    Private,
    /// `100.64.0.0/10`, carrier-grade NAT (RFC 6598); some clouds serve metadata here.
    SharedAddressSpace,
    /// `169.254.0.0/16`, `fe80::/10`.
    LinkLocal,
    /// `169.254.169.254`, `fd00:ec2::254`, `100.100.100.200`: cloud metadata services,
    /// which hand out credentials to whoever asks.
    CloudMetadata,
    /// `fc00::/7` (RFC 4193), IPv6's private networks.
    UniqueLocal,
    /// `224.0.0.0/4`, `ff00::/8`.
    Multicast,
    /// `255.255.255.255`.
    Broadcast,
    /// Documentation, benchmarking, protocol-assignment and reserved ranges: `192.0.0.0/24`,
    /// `192.0.2.0/24`, `198.18.0.0/15`, `198.51.100.0/24`, `203.0.113.0/24`, `240.0.0.0/4`,
    /// `2001::/23`, `2001:db8::/32` and IPv6 outside `2000::/3`. Nothing a crawl should find
    /// there.
    Reserved,
}

impl SpecialRange {
    /// The range an address belongs to, `None` for a public address.
    pub fn of(address: IpAddr) -> Option<Self> {
        match address {
            IpAddr::V4(v4) => Self::of_v4(v4),
            IpAddr::V6(v6) => Self::of_v6(v6),
        }
    }

    fn of_v4(address: Ipv4Addr) -> Option<Self> {
        let [a, b, c, _] = address.octets();
        if address == Ipv4Addr::new(169, 254, 169, 254)
            || address == Ipv4Addr::new(100, 100, 100, 200)
        {
            return Some(Self::CloudMetadata);
        }
        Some(match (a, b, c) {
            (0, _, _) => Self::Unspecified,
            (127, _, _) => Self::Loopback,
            (10, _, _) | (172, 16..=31, _) | (192, 168, _) => Self::Private,
            (100, 64..=127, _) => Self::SharedAddressSpace,
            (169, 254, _) => Self::LinkLocal,
            (224..=239, _, _) => Self::Multicast,
            _ if address.is_broadcast() => Self::Broadcast,
            (240..=255, _, _)
            | (192, 0, 0)
            | (192, 0, 2)
            | (198, 18..=19, _)
            | (198, 51, 100)
            | (203, 0, 113) => Self::Reserved,
            _ => return None,
        })
    }

    fn of_v6(address: Ipv6Addr) -> Option<Self> {
        if address.is_unspecified() {
            return Some(Self::Unspecified);
        }
        if address.is_loopback() {
            return Some(Self::Loopback);
        }
        if let Some(v4) = embedded_v4(address) {
            return Self::of_v4(v4);
        }
        let segments = address.segments();
        if address == Ipv6Addr::new(0xfd00, 0x0ec2, 0, 0, 0, 0, 0, 0x0254) {
            return Some(Self::CloudMetadata);
        }
        Some(match segments[0] {
            0xfe80..=0xfebf => Self::LinkLocal,
            0xfc00..=0xfdff => Self::UniqueLocal,
            0xff00..=0xffff => Self::Multicast,
            0x2001 if segments[1] < 0x0200 || segments[1] == 0x0db8 => Self::Reserved,
            // Global unicast is 2000::/3; everything else left (`100::/64` among it) is
            // unassigned or reserved.
            0x2000..=0x3fff => return None,
            _ => Self::Reserved,
        })
    }

    /// How the range is named in a refusal, e.g. `private network`.
    pub fn describe(self) -> &'static str {
        match self {
            Self::Unspecified => "unspecified address",
            Self::Loopback => "loopback",
            Self::Private => "private network",
            Self::SharedAddressSpace => "shared address space",
            Self::LinkLocal => "link-local network",
            Self::CloudMetadata => "cloud metadata service",
            Self::UniqueLocal => "unique-local network",
            Self::Multicast => "multicast",
            Self::Broadcast => "broadcast",
            Self::Reserved => "reserved range",
        }
    }
}

impl fmt::Display for SpecialRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.describe())
    }
}

/// The IPv4 address an IPv6 address leads to: IPv4-mapped `::ffff:a.b.c.d`, the deprecated
/// IPv4-compatible `::a.b.c.d`, NAT64 `64:ff9b::a.b.c.d` and 6to4 `2002:aabb:ccdd::`.
pub(crate) fn embedded_v4(address: Ipv6Addr) -> Option<Ipv4Addr> {
    let segments = address.segments();
    let low = |high: u16, low: u16| {
        let [a, b] = high.to_be_bytes();
        let [c, d] = low.to_be_bytes();
        Ipv4Addr::new(a, b, c, d)
    };
    match segments {
        [0, 0, 0, 0, 0, 0xffff, high, low_half] | [0, 0, 0, 0, 0, 0, high, low_half] => {
            Some(low(high, low_half))
        }
        [0x0064, 0xff9b, 0, 0, 0, 0, high, low_half] => Some(low(high, low_half)),
        [0x2002, high, low_half, ..] => Some(low(high, low_half)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn range(text: &str) -> Option<SpecialRange> {
        SpecialRange::of(text.parse().expect("an address"))
    }

    #[test]
    fn every_refused_kind_is_recognised() {
        let cases = [
            ("0.0.0.0", SpecialRange::Unspecified),
            ("::", SpecialRange::Unspecified),
            ("127.0.0.1", SpecialRange::Loopback),
            ("127.255.0.9", SpecialRange::Loopback),
            ("::1", SpecialRange::Loopback),
            ("10.0.0.7", SpecialRange::Private),
            ("172.31.255.1", SpecialRange::Private),
            ("192.168.1.1", SpecialRange::Private),
            ("100.64.0.1", SpecialRange::SharedAddressSpace),
            ("169.254.1.1", SpecialRange::LinkLocal),
            ("fe80::1", SpecialRange::LinkLocal),
            ("169.254.169.254", SpecialRange::CloudMetadata),
            ("fd00:ec2::254", SpecialRange::CloudMetadata),
            ("100.100.100.200", SpecialRange::CloudMetadata),
            ("fd12:3456::1", SpecialRange::UniqueLocal),
            ("224.0.0.1", SpecialRange::Multicast),
            ("ff02::1", SpecialRange::Multicast),
            ("255.255.255.255", SpecialRange::Broadcast),
            ("240.0.0.1", SpecialRange::Reserved),
            ("192.0.2.10", SpecialRange::Reserved),
            ("198.18.0.1", SpecialRange::Reserved),
            ("2001:db8::1", SpecialRange::Reserved),
            ("100::1", SpecialRange::Reserved),
        ];
        for (address, expected) in cases {
            assert_eq!(range(address), Some(expected), "{address}");
        }
    }

    #[test]
    fn ipv6_forms_of_ipv4_addresses_are_judged_by_the_ipv4_address() {
        assert_eq!(range("::ffff:127.0.0.1"), Some(SpecialRange::Loopback));
        assert_eq!(range("::ffff:10.1.2.3"), Some(SpecialRange::Private));
        assert_eq!(range("::127.0.0.1"), Some(SpecialRange::Loopback));
        assert_eq!(
            range("64:ff9b::a9fe:a9fe"),
            Some(SpecialRange::CloudMetadata)
        );
        assert_eq!(range("2002:c0a8:0101::1"), Some(SpecialRange::Private));
        assert_eq!(range("::ffff:93.184.216.34"), None);
    }

    #[test]
    fn public_addresses_are_not_special() {
        for address in [
            "93.184.216.34",
            "8.8.8.8",
            "172.32.0.1",
            "100.128.0.1",
            "2606:4700::1111",
            "2a00:1450::1",
        ] {
            assert_eq!(range(address), None, "{address}");
        }
    }

    proptest! {
        #[test]
        fn every_ipv6_form_of_an_ipv4_address_is_judged_alike(bits: u32) {
            let v4 = Ipv4Addr::from(bits);
            let expected = SpecialRange::of(IpAddr::V4(v4));
            let [a, b, c, d] = v4.octets();
            let high = u16::from_be_bytes([a, b]);
            let low = u16::from_be_bytes([c, d]);
            for form in [
                v4.to_ipv6_mapped(),
                Ipv6Addr::new(0x64, 0xff9b, 0, 0, 0, 0, high, low),
                Ipv6Addr::new(0x2002, high, low, 0, 0, 0, 0, 1),
            ] {
                prop_assert_eq!(SpecialRange::of(IpAddr::V6(form)), expected, "{}", form);
            }
        }
    }
}
