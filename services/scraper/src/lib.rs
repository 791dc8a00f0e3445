//! The owlmesh scraper service.
