//! The owlmesh archiver service.
