//! The bundled demo: a shop of a few thousand products over two loopback hosts, generated
//! in code from a fixed seed and served in-process, and the job that crawls it. It needs no
//! files and no network, so `owlmesh up --demo` shows a real crawl on a fresh machine.

mod catalogue;
mod pages;
mod server;
mod spec;

#[cfg(test)]
mod tests;

pub(crate) use catalogue::{Catalogue, DEFAULT_PRODUCTS, MAX_PRODUCTS};
pub(crate) use server::DemoSite;
pub(crate) use spec::{DEMO_JOB_NAME, PRODUCT_HANDLER, job_spec};
