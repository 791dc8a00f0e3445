//! The catalogue job for the test site: `owlmesh_site`'s, the one job every crawl of the
//! site uses, under the path some suites still import it from.

// Every test binary compiles the support modules; not every one uses this.
#![allow(unused_imports)]

pub use owlmesh_site::CatalogueJob;
