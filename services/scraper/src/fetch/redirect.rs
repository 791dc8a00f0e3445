//! Redirects followed by hand: each hop recorded and checked against the caller's rule, loops
//! and over-long chains caught.

use std::collections::HashSet;

use owlmesh_job::is_web_url;
use reqwest::header::LOCATION;
use reqwest::{Response, StatusCode};
use url::Url;

use super::outcome::{FetchError, FetchFailure};
use super::{FetchOptions, header_text};

/// The redirect chain so far: the hops and every URL visited, to catch loops.
pub(super) struct Chain {
    visited: HashSet<String>,
    pub(super) redirects: Vec<Url>,
    limit: usize,
}

impl Chain {
    pub(super) fn new(first: &Url, limit: usize) -> Self {
        Self {
            visited: HashSet::from([first.as_str().to_owned()]),
            redirects: Vec::new(),
            limit,
        }
    }

    /// Records a hop to `next`, or says why it must not be taken.
    pub(super) fn hop(
        &mut self,
        next: &Url,
        options: &FetchOptions<'_>,
    ) -> std::result::Result<(), FetchError> {
        self.redirects.push(next.clone());
        if !self.visited.insert(next.as_str().to_owned()) {
            return Err(FetchError::RedirectLoop {
                url: next.to_string(),
            });
        }
        if self.redirects.len() > self.limit {
            return Err(FetchError::TooManyRedirects { limit: self.limit });
        }
        if options
            .may_follow
            .is_some_and(|may_follow| !may_follow(next))
        {
            return Err(FetchError::RedirectNotFollowed {
                location: next.to_string(),
            });
        }
        Ok(())
    }

    /// The failure `error`, after a last response of `status` (0 for none).
    pub(super) fn fail(&self, error: FetchError, status: u16) -> FetchFailure {
        FetchFailure {
            error,
            status,
            redirects: self.redirects.clone(),
        }
    }
}

/// The next URL when `response` is a redirect, `None` when it is not one.
pub(super) fn redirect_target(
    current: &Url,
    response: &Response,
) -> std::result::Result<Option<Url>, FetchError> {
    let status = response.status();
    if !status.is_redirection() || status == StatusCode::NOT_MODIFIED {
        return Ok(None);
    }
    let Some(location) = header_text(response, LOCATION) else {
        return Err(FetchError::UnexpectedStatus {
            status: status.as_u16(),
        });
    };
    let bad = || FetchError::BadRedirect {
        location: location.clone(),
    };
    let mut next = current.join(location.trim()).map_err(|_| bad())?;
    if !is_web_url(&next) {
        return Err(bad());
    }
    // A fragment never reaches the server, so it cannot make a hop different.
    next.set_fragment(None);
    Ok(Some(next))
}
