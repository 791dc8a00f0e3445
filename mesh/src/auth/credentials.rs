//! The client side: the token every outgoing call carries.

use tonic::metadata::{AsciiMetadataValue, MetadataValue};
use tonic::service::Interceptor;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;

use super::tokens::Token;

/// A channel whose calls carry this process's token (see [`super::install`]).
pub type MeshChannel = InterceptedService<Channel, Credentials>;

/// What a client sends to prove who it is: `authorization: Bearer TOKEN`, or nothing.
#[derive(Clone, Default)]
pub struct Credentials {
    header: Option<AsciiMetadataValue>,
}

impl Credentials {
    /// Sends `token` as a bearer token.
    pub fn bearer(token: &Token) -> Self {
        let value = MetadataValue::try_from(format!("Bearer {}", token.expose()))
            .expect("a checked token is printable ASCII");
        Self {
            header: Some(value),
        }
    }

    /// Wraps `channel` so that its calls carry these credentials.
    pub fn attach(&self, channel: Channel) -> MeshChannel {
        InterceptedService::new(channel, self.clone())
    }
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let shown = match self.header {
            Some(_) => "Credentials(bearer …)",
            None => "Credentials(none)",
        };
        f.write_str(shown)
    }
}

impl Interceptor for Credentials {
    fn call(
        &mut self,
        mut request: tonic::Request<()>,
    ) -> Result<tonic::Request<()>, tonic::Status> {
        if let Some(header) = &self.header {
            request
                .metadata_mut()
                .insert("authorization", header.clone());
        }
        Ok(request)
    }
}
