//! Helpers every test suite of owlmesh shares: waiting for a condition with a deadline,
//! rather than sleeping for "long enough". The site the tests crawl, its known truth and its
//! job are `owlmesh-site`. End-to-end tests of the real processes live in `tests/`.
//!
//! This library depends on no owlmesh crate, so every crate can dev-depend on it.

mod eventually;

pub use eventually::{eventually, eventually_true};
