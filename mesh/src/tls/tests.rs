//! A server that requires client certificates, over real sockets on loopback: who gets in
//! and who does not, and bad files named at load.

use std::path::Path;

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_client::HealthClient;

use super::{CertificateAuthority, ClientTls, IssuedCertificate, ServerTls};
use crate::client::{ChannelOptions, connect_with_tls};
use crate::grpc::GrpcServer;

/// What a client can dial a certificate by: the address the tests serve on.
fn loopback() -> Vec<String> {
    vec!["127.0.0.1".to_owned(), "localhost".to_owned()]
}

/// Serves health only, with mutual TLS under `authority`; returns its address.
async fn mutual_tls_server(
    authority: &CertificateAuthority,
    shutdown: &CancellationToken,
) -> String {
    let issued = authority.issue("server", &loopback()).expect("issued");
    let tls = ServerTls::from_pem(
        &issued.certificate_pem,
        &issued.key_pem,
        Some(authority.certificate_pem()),
    )
    .expect("server tls");
    assert!(tls.requires_client_certificate());
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let address = listener.local_addr().expect("address").to_string();
    let server = GrpcServer::new().with_tls(tls);
    server.health().set_serving().await;
    tokio::spawn(server.serve(listener, shutdown.clone()));
    address
}

/// Connects with `tls` and asks for health: the status, or why it failed.
async fn check(address: &str, tls: Option<&ClientTls>) -> Result<i32, String> {
    let channel = connect_with_tls(address, &ChannelOptions::default(), tls)
        .await
        .map_err(|error| format!("connect: {error:?}"))?;
    let answer = HealthClient::new(channel)
        .check(HealthCheckRequest::default())
        .await
        .map_err(|status| format!("call: {status:?}"))?;
    Ok(answer.into_inner().status)
}

fn client(authority: &CertificateAuthority, issued: Option<&IssuedCertificate>) -> ClientTls {
    let identity = issued.map(|issued| (issued.certificate_pem.as_str(), issued.key_pem.as_str()));
    ClientTls::from_pem(authority.certificate_pem(), identity).expect("client tls")
}

#[tokio::test]
async fn a_mutual_tls_server_lets_in_only_clients_with_a_certificate_of_its_ca() {
    let authority = CertificateAuthority::generate().expect("ca");
    let shutdown = CancellationToken::new();
    let address = mutual_tls_server(&authority, &shutdown).await;
    let serving = tonic_health::pb::health_check_response::ServingStatus::Serving as i32;

    let member = authority.issue("member", &loopback()).expect("issued");
    let with_certificate = client(&authority, Some(&member));
    assert!(with_certificate.presents_certificate());
    assert_eq!(check(&address, Some(&with_certificate)).await, Ok(serving));

    let without_certificate = client(&authority, None);
    let refused = check(&address, Some(&without_certificate)).await;
    assert!(refused.is_err(), "no client certificate: {refused:?}");

    let plaintext = check(&address, None).await;
    assert!(plaintext.is_err(), "plain HTTP/2: {plaintext:?}");

    // A certificate of another CA is no way in, nor is trusting another CA's server.
    let stranger = CertificateAuthority::generate().expect("other ca");
    let foreign = stranger.issue("stranger", &loopback()).expect("issued");
    let with_foreign = ClientTls::from_pem(
        authority.certificate_pem(),
        Some((&foreign.certificate_pem, &foreign.key_pem)),
    )
    .expect("client tls");
    let refused = check(&address, Some(&with_foreign)).await;
    assert!(refused.is_err(), "another CA's certificate: {refused:?}");
    let misled = check(&address, Some(&client(&stranger, Some(&foreign)))).await;
    assert!(misled.is_err(), "a server of another CA: {misled:?}");
    shutdown.cancel();
}

#[tokio::test]
async fn a_certificate_without_the_address_dialled_is_refused() {
    let authority = CertificateAuthority::generate().expect("ca");
    let issued = authority
        .issue("elsewhere", &["192.0.2.1".to_owned()])
        .expect("issued");
    let tls = ServerTls::from_pem(&issued.certificate_pem, &issued.key_pem, None).expect("tls");
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let address = listener.local_addr().expect("address").to_string();
    let shutdown = CancellationToken::new();
    tokio::spawn(
        GrpcServer::new()
            .with_tls(tls)
            .serve(listener, shutdown.clone()),
    );
    let answer = check(&address, Some(&client(&authority, None))).await;
    assert!(answer.is_err(), "{answer:?}");
    shutdown.cancel();
}

#[test]
fn bad_files_are_named_with_what_is_wrong() {
    let folder = tempfile::tempdir().expect("tempdir");
    let write = |name: &str, text: &str| {
        let path = folder.path().join(name);
        std::fs::write(&path, text).expect("write");
        path
    };
    let authority = CertificateAuthority::generate().expect("ca");
    let first = authority.issue("first", &loopback()).expect("issued");
    let second = authority.issue("second", &loopback()).expect("issued");
    let certificate = write("first.pem", &first.certificate_pem);
    let other_key = write("second.key", &second.key_pem);
    let not_pem = write("notes.txt", "hello");
    let missing = folder.path().join("missing.pem");

    let message = |result: Result<ServerTls, super::TlsError>| match result {
        Ok(_) => panic!("accepted"),
        Err(error) => error.to_string(),
    };
    let mismatch = message(ServerTls::from_files(&certificate, &other_key, None));
    assert!(
        mismatch.starts_with(&format!("{}: is not the key of", other_key.display())),
        "{mismatch}"
    );
    let no_certificate = message(ServerTls::from_files(&not_pem, &other_key, None));
    assert!(
        no_certificate.starts_with(&format!("{}: holds no PEM certificate", not_pem.display())),
        "{no_certificate}"
    );
    let unreadable = message(ServerTls::from_files(&missing, &other_key, None));
    assert!(
        unreadable.starts_with(&format!("{}: cannot read", missing.display())),
        "{unreadable}"
    );
    let bad_ca = ClientTls::from_files(&not_pem, None).expect_err("no CA in it");
    assert!(bad_ca.to_string().contains(&not_pem.display().to_string()));
    assert!(ClientTls::from_files(Path::new(&certificate), None).is_ok());
}

#[tokio::test]
async fn a_loaded_authority_issues_certificates_that_chain_to_its_certificate() {
    let made = CertificateAuthority::generate().expect("ca");
    let loaded = CertificateAuthority::load(made.certificate_pem(), &made.key_pem(), "ca.key")
        .expect("loaded");
    let issued = loaded.issue("later", &loopback()).expect("issued");
    let tls = ServerTls::from_pem(&issued.certificate_pem, &issued.key_pem, None).expect("tls");
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let address = listener.local_addr().expect("address").to_string();
    let shutdown = CancellationToken::new();
    let server = GrpcServer::new().with_tls(tls);
    server.health().set_serving().await;
    tokio::spawn(server.serve(listener, shutdown.clone()));
    let answer = check(&address, Some(&client(&made, None))).await;
    assert!(
        answer.is_ok(),
        "trusting the certificate made first: {answer:?}"
    );
    shutdown.cancel();

    let other = CertificateAuthority::generate().expect("other");
    let refused = CertificateAuthority::load(made.certificate_pem(), &other.key_pem(), "ca.key");
    assert!(refused.is_err(), "a key that is not the CA's");
}
