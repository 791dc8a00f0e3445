//! Name resolution that keeps the guard's word: the addresses a name resolves to are checked
//! before reqwest sees them, so a name pointing at a private address is refused however it
//! was reached (a seed, a link, a redirect, robots.txt), and no later lookup can swap in
//! another address.

use std::net::SocketAddr;

use reqwest::dns::{Addrs, Name, Resolve, Resolving};

use crate::guard::EgressGuard;

/// A reqwest resolver: the system's (`getaddrinfo`, as reqwest's own), then the guard.
#[derive(Debug, Clone)]
pub struct GuardedResolver {
    guard: EgressGuard,
}

impl GuardedResolver {
    pub(crate) fn new(guard: EgressGuard) -> Self {
        Self { guard }
    }
}

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let guard = self.guard.clone();
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let found: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let mut first_refusal = None;
            let mut allowed = Vec::with_capacity(found.len());
            for address in found {
                match guard.check(address.ip()) {
                    Ok(()) => allowed.push(address),
                    Err(refused) => {
                        first_refusal.get_or_insert(refused);
                    }
                }
            }
            // A name with some allowed addresses is reached on those alone.
            match (allowed.is_empty(), first_refusal) {
                (true, Some(refused)) => Err(refused.into()),
                _ => Ok(Box::new(allowed.into_iter()) as Addrs),
            }
        })
    }
}
