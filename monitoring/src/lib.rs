//! The owlmesh monitoring dashboard.
