//! Where the mesh may connect when it goes outside itself: the pages and robots.txt files a
//! scraper fetches, and the webhooks an archiver delivers to. A job names the URLs; the
//! operator decides which networks they may lead to.
//!
//! The rule is default deny for everything that is not the public internet (see
//! [`SpecialRange`]), opened per network with [`EgressGuard::allowing`] (the services'
//! `--allow-network CIDR`). It is applied to the address actually dialled: literal addresses
//! by [`EgressGuard::check_url`] before each request (and each redirect hop), names by the
//! [`GuardedResolver`] that every guarded client resolves with.

mod guard;
mod ranges;
mod resolver;

pub use guard::{BlockedAddress, EgressGuard, blocked_cause, parse_network};
pub use ipnet::IpNet;
pub use ranges::SpecialRange;
pub use resolver::GuardedResolver;
