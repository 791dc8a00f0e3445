//! The owlmesh dispatcher: owns the URL frontier, hands URLs to scrapers, schedules recrawls.

pub mod canonical;
pub mod spec;
