//! Tests of the site: its content without sockets, its server over real ones, its static
//! files, and its one job.

mod job;
mod server;
mod shop;
mod static_site;
