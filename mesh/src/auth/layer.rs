//! The server side: one tower layer, on every server, that checks each call's bearer token
//! against the table of [`super::policy`] before the call reaches a service.

use std::sync::Arc;
use std::task::{Context, Poll};

use futures::future::{Either, Ready, ready};
use http::HeaderValue;
use tonic::Status;
use tower::{Layer, Service};

use super::policy::{Access, access};
use super::roles::Roles;
use super::tokens::{TokenFingerprint, TokenSet};

/// Adds [`AuthService`] around a server's routes; with no token set every call passes.
#[derive(Debug, Clone, Default)]
pub struct AuthLayer {
    trusted: Option<Arc<TokenSet>>,
}

impl AuthLayer {
    /// Checks calls against `trusted`; `None` lets every call through.
    pub fn new(trusted: Option<Arc<TokenSet>>) -> Self {
        Self { trusted }
    }
}

impl<S> Layer<S> for AuthLayer {
    type Service = AuthService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        AuthService {
            inner,
            trusted: self.trusted.clone(),
        }
    }
}

/// Who made a call, as the layer found it: the services read it from the request's
/// extensions, e.g. so that the directory lets only the token that registered an instance
/// replace it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Caller {
    /// Which of the server's tokens the call carried (its place in the token file).
    pub token: usize,
    /// That token's roles.
    pub roles: Roles,
    /// That token's fingerprint, which the directory publishes with what it registered.
    pub fingerprint: TokenFingerprint,
}

impl Caller {
    /// The caller of `request`, when its server checks tokens.
    pub fn of<T>(request: &tonic::Request<T>) -> Option<Caller> {
        request.extensions().get::<Caller>().copied()
    }
}

/// Answers UNAUTHENTICATED or PERMISSION_DENIED itself, or hands the call on.
#[derive(Debug, Clone)]
pub struct AuthService<S> {
    inner: S,
    trusted: Option<Arc<TokenSet>>,
}

impl<S, B> Service<http::Request<B>> for AuthService<S>
where
    S: Service<http::Request<B>, Response = http::Response<tonic::body::Body>>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = Either<Ready<Result<S::Response, S::Error>>, S::Future>;

    fn poll_ready(&mut self, context: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(context)
    }

    fn call(&mut self, mut request: http::Request<B>) -> Self::Future {
        if let Some(trusted) = &self.trusted {
            let header = request.headers().get(http::header::AUTHORIZATION);
            match authorize(trusted, request.uri().path(), header) {
                Ok(Some(caller)) => {
                    request.extensions_mut().insert(caller);
                }
                Ok(None) => {}
                Err(status) => return Either::Left(ready(Ok(status.into_http()))),
            }
        }
        Either::Right(self.inner.call(request))
    }
}

/// Whether a call of `path` with this `authorization` header may go ahead (with who made
/// it; nobody for an open call), and if not, the status that says what is missing.
pub fn authorize(
    trusted: &TokenSet,
    path: &str,
    authorization: Option<&HeaderValue>,
) -> Result<Option<Caller>, Status> {
    let needed = access(path);
    let needs = match needed {
        Access::Open => return Ok(None),
        Access::AnyRole => "a token".to_owned(),
        Access::Role(role) => format!("a token with the role {role}"),
    };
    let Some(header) = authorization else {
        return Err(Status::unauthenticated(format!(
            "{path} needs {needs}, sent as `authorization: Bearer TOKEN`; \
             give the command --token-file FILE or --token TOKEN"
        )));
    };
    let token = header
        .to_str()
        .ok()
        .and_then(|value| value.strip_prefix("Bearer "))
        .ok_or_else(|| Status::unauthenticated("the authorization header is not `Bearer TOKEN`"))?;
    let Some((token, roles)) = trusted.find(token.trim()) else {
        return Err(Status::unauthenticated(
            "the bearer token is not one this mesh accepts",
        ));
    };
    match needed {
        Access::Role(role) if !roles.contains(role) => Err(Status::permission_denied(format!(
            "{path} needs the role {role}; this token has {roles}"
        ))),
        _ => Ok(trusted.fingerprint(token).map(|fingerprint| Caller {
            token,
            roles,
            fingerprint,
        })),
    }
}

#[cfg(test)]
mod tests {
    use tonic::Code;

    use super::*;
    use crate::auth::{Role, Roles};

    const ALL: &str = "allallallallallallall";
    const READER: &str = "readerreaderreaderreader";

    fn trusted() -> TokenSet {
        TokenSet::parse(&format!("{ALL}\n{READER} reader\n"), "tokens").expect("valid")
    }

    fn call(path: &str, header: Option<&str>) -> Result<Option<Caller>, Status> {
        let header = header.map(|text| HeaderValue::from_str(text).expect("header"));
        authorize(&trusted(), path, header.as_ref())
    }

    #[test]
    fn each_refusal_says_what_was_missing() {
        let submit = "/owlmesh.v1.Dispatcher/SubmitJob";
        let missing = call(submit, None).expect_err("no token");
        assert_eq!(missing.code(), Code::Unauthenticated);
        assert!(
            missing
                .message()
                .contains("needs a token with the role operator")
                && missing.message().contains("--token-file"),
            "{}",
            missing.message()
        );
        let wrong = call(submit, Some("Bearer nottherightoneatall")).expect_err("unknown");
        assert_eq!(wrong.code(), Code::Unauthenticated);
        let basic = call(submit, Some("Basic abc")).expect_err("not bearer");
        assert_eq!(basic.code(), Code::Unauthenticated);
        let reader = call(submit, Some(&format!("Bearer {READER}"))).expect_err("reader");
        assert_eq!(reader.code(), Code::PermissionDenied);
        assert_eq!(
            reader.message(),
            "/owlmesh.v1.Dispatcher/SubmitJob needs the role operator; this token has reader"
        );
    }

    #[test]
    fn the_right_token_passes_and_health_is_open() {
        assert!(
            call(
                "/owlmesh.v1.Dispatcher/SubmitJob",
                Some(&format!("Bearer {ALL}"))
            )
            .is_ok()
        );
        assert!(
            call(
                "/owlmesh.v1.Dispatcher/GetJob",
                Some(&format!("Bearer {READER}"))
            )
            .is_ok()
        );
        assert!(
            call(
                "/owlmesh.v1.Directory/Watch",
                Some(&format!("Bearer {READER}"))
            )
            .is_ok()
        );
        assert_eq!(call("/grpc.health.v1.Health/Check", None).unwrap(), None);
        let reader = call(
            "/owlmesh.v1.Directory/List",
            Some(&format!("Bearer {READER}")),
        );
        let expected = Caller {
            token: 1,
            roles: Roles::of([Role::Reader]),
            fingerprint: TokenFingerprint::of(READER),
        };
        assert_eq!(
            reader.unwrap(),
            Some(expected),
            "the caller is the file's second token"
        );
        assert_eq!(Roles::of([Role::Reader]).to_string(), "reader");
    }
}
