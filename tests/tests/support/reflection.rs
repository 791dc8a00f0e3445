//! A small grpcurl: lists services through server reflection and calls a method with JSON,
//! using only what the server's reflection tells it about the messages.

use anyhow::{Context, bail};
use bytes::{Buf, BufMut};
use owlmesh_mesh::auth::MeshChannel;
use prost::Message;
use prost_reflect::{DescriptorPool, DynamicMessage, MessageDescriptor};
use prost_types::{FileDescriptorProto, FileDescriptorSet};
use tokio_stream::StreamExt;
use tonic::codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder};
use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;
use tonic_reflection::pb::v1::{ServerReflectionRequest, ServerReflectionResponse};

async fn ask(channel: &MeshChannel, request: MessageRequest) -> anyhow::Result<MessageResponse> {
    let mut client = ServerReflectionClient::new(channel.clone());
    let request = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(request),
    };
    let mut answers = client
        .server_reflection_info(tokio_stream::iter([request]))
        .await?
        .into_inner();
    let answer: ServerReflectionResponse = answers.next().await.context("no answer")??;
    answer.message_response.context("empty answer")
}

/// The fully-qualified names of the services the server offers (`grpcurl list`).
pub async fn list_services(channel: &MeshChannel) -> anyhow::Result<Vec<String>> {
    match ask(channel, MessageRequest::ListServices(String::new())).await? {
        MessageResponse::ListServicesResponse(list) => Ok(list
            .service
            .into_iter()
            .map(|service| service.name)
            .collect()),
        other => bail!("unexpected answer {other:?}"),
    }
}

/// [`list_services`] through the older v1alpha reflection, which grpcurl before 1.8.7 speaks.
pub async fn list_services_v1alpha(channel: &MeshChannel) -> anyhow::Result<Vec<String>> {
    use tonic_reflection::pb::v1alpha::ServerReflectionRequest;
    use tonic_reflection::pb::v1alpha::server_reflection_client::ServerReflectionClient;
    use tonic_reflection::pb::v1alpha::server_reflection_request::MessageRequest;
    use tonic_reflection::pb::v1alpha::server_reflection_response::MessageResponse;
    let request = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let mut answers = ServerReflectionClient::new(channel.clone())
        .server_reflection_info(tokio_stream::iter([request]))
        .await?
        .into_inner();
    let answer = answers.next().await.context("no answer")??;
    match answer.message_response.context("empty answer")? {
        MessageResponse::ListServicesResponse(list) => Ok(list
            .service
            .into_iter()
            .map(|service| service.name)
            .collect()),
        other => bail!("unexpected answer {other:?}"),
    }
}

/// The descriptors the server gives for `symbol` and everything it imports, asked for file by
/// file as grpcurl does: the server answers each request with the one file asked for.
pub async fn descriptors(channel: &MeshChannel, symbol: &str) -> anyhow::Result<DescriptorPool> {
    let mut request = MessageRequest::FileContainingSymbol(symbol.into());
    let mut file = Vec::new();
    let mut wanted = Vec::new();
    loop {
        let answer = ask(channel, request).await?;
        let MessageResponse::FileDescriptorResponse(files) = answer else {
            bail!("unexpected answer {answer:?}");
        };
        for bytes in &files.file_descriptor_proto {
            let proto = FileDescriptorProto::decode(bytes.as_slice())?;
            wanted.extend(proto.dependency.iter().cloned());
            file.push(proto);
        }
        wanted.retain(|name| !file.iter().any(|known| known.name() == name));
        match wanted.pop() {
            Some(name) => request = MessageRequest::FileByFilename(name),
            None => break,
        }
    }
    // The pool takes the files in any order.
    Ok(DescriptorPool::from_file_descriptor_set(
        FileDescriptorSet { file },
    )?)
}

/// Calls `service/method` with a JSON request, as `grpcurl -d JSON` does, and returns the
/// JSON answer.
pub async fn call_json(
    channel: &MeshChannel,
    service: &str,
    method: &str,
    request_json: &str,
) -> Result<serde_json::Value, tonic::Status> {
    let pool = descriptors(channel, service)
        .await
        .map_err(|error| tonic::Status::internal(error.to_string()))?;
    let method_descriptor = pool
        .get_service_by_name(service)
        .and_then(|s| s.methods().find(|m| m.name() == method))
        .ok_or_else(|| tonic::Status::internal(format!("no method {service}/{method}")))?;
    let mut deserializer = serde_json::Deserializer::from_str(request_json);
    let request = DynamicMessage::deserialize(method_descriptor.input(), &mut deserializer)
        .map_err(|error| tonic::Status::invalid_argument(error.to_string()))?;
    let mut grpc = tonic::client::Grpc::new(channel.clone());
    grpc.ready()
        .await
        .map_err(|error| tonic::Status::unavailable(error.to_string()))?;
    let path = format!("/{service}/{method}").parse().expect("valid path");
    let codec = DynamicCodec(method_descriptor.output());
    let answer = grpc
        .unary(tonic::Request::new(request), path, codec)
        .await?
        .into_inner();
    Ok(serde_json::to_value(&answer).expect("dynamic messages serialize"))
}

/// Encodes dynamic requests and decodes answers of a known message type.
struct DynamicCodec(MessageDescriptor);

impl Codec for DynamicCodec {
    type Encode = DynamicMessage;
    type Decode = DynamicMessage;
    type Encoder = DynamicCodec;
    type Decoder = DynamicCodec;

    fn encoder(&mut self) -> Self::Encoder {
        DynamicCodec(self.0.clone())
    }

    fn decoder(&mut self) -> Self::Decoder {
        DynamicCodec(self.0.clone())
    }
}

impl Encoder for DynamicCodec {
    type Item = DynamicMessage;
    type Error = tonic::Status;

    fn encode(&mut self, item: Self::Item, buf: &mut EncodeBuf<'_>) -> Result<(), Self::Error> {
        let bytes = item.encode_to_vec();
        buf.put_slice(&bytes);
        Ok(())
    }
}

impl Decoder for DynamicCodec {
    type Item = DynamicMessage;
    type Error = tonic::Status;

    fn decode(&mut self, buf: &mut DecodeBuf<'_>) -> Result<Option<Self::Item>, Self::Error> {
        let bytes = buf.copy_to_bytes(buf.remaining());
        DynamicMessage::decode(self.0.clone(), bytes)
            .map(Some)
            .map_err(|error| tonic::Status::internal(error.to_string()))
    }
}
