//! The answer to a call of a service this port does not serve: UNIMPLEMENTED, naming the
//! method and the services that are served here.
//!
//! tonic's own fallback answers UNIMPLEMENTED with an empty message, which leaves someone
//! who dialled the wrong port (a dispatcher method on the directory, say) with nothing to go
//! on.

use std::sync::Arc;

use axum::http::Uri;
use tonic::Status;
use tonic::body::Body;

/// The router's fallback: every path that no served service claimed ends up here.
pub(super) fn fallback(router: axum::Router, served: &[&'static str]) -> axum::Router {
    let served: Arc<str> = served.join(", ").into();
    router.fallback(move |uri: Uri| {
        let served = Arc::clone(&served);
        async move { answer(uri.path(), &served) }
    })
}

/// A trailers-only gRPC reply: status and message in the headers, no body, which every gRPC
/// client reads as the call's final status.
fn answer(path: &str, served: &str) -> http::Response<Body> {
    // gRPC paths are "/package.Service/Method"; the method is named as grpcurl spells it.
    let method = path.strip_prefix('/').unwrap_or(path);
    let message = format!("{method} is not served here; this port serves {served}");
    Status::unimplemented(message).into_http()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_answer_names_the_method_and_the_served_services() {
        let response = answer(
            "/owlmesh.v1.Dispatcher/SubmitJob",
            "owlmesh.v1.Directory, X",
        );
        let status = Status::from_header_map(response.headers()).expect("a grpc-status header");
        assert_eq!(status.code(), tonic::Code::Unimplemented);
        assert_eq!(
            status.message(),
            "owlmesh.v1.Dispatcher/SubmitJob is not served here; this port serves \
             owlmesh.v1.Directory, X"
        );
    }
}
