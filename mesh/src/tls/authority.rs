//! A private certificate authority: what `owlmesh up --tls` signs every service's and
//! command's certificate with, and what the tests make meshes with.
//!
//! Every certificate it issues is good for both ends of a connection (server and client
//! authentication), since every member both serves and calls the others.

use std::time::{SystemTime, UNIX_EPOCH};

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, date_time_ymd,
};

use super::TlsError;

/// The CA's name; issued certificates name it as their issuer, so a CA loaded from its
/// key signs certificates that chain to the certificate made with it.
const AUTHORITY_NAME: &str = "owlmesh private CA";
/// Years a CA certificate is valid.
const AUTHORITY_YEARS: i32 = 10;
/// Years an issued certificate is valid (`owlmesh up --tls` issues new ones on every start).
const CERTIFICATE_YEARS: i32 = 2;

/// A CA: its certificate (PEM) and the key it signs with.
pub struct CertificateAuthority {
    certificate_pem: String,
    issuer: Issuer<'static, KeyPair>,
}

/// A certificate and its private key, both PEM.
pub struct IssuedCertificate {
    /// The certificate, signed by the CA.
    pub certificate_pem: String,
    /// Its private key (PKCS#8): keep it private.
    pub key_pem: String,
}

impl CertificateAuthority {
    /// A new CA with a fresh key.
    pub fn generate() -> Result<Self, TlsError> {
        let key = KeyPair::generate().map_err(|error| failed("CA key", error))?;
        let params = authority_params(this_year());
        let certificate = params
            .self_signed(&key)
            .map_err(|error| failed("CA certificate", error))?;
        Ok(Self {
            certificate_pem: certificate.pem(),
            issuer: Issuer::new(params, key),
        })
    }

    /// The CA made earlier by [`CertificateAuthority::generate`], from its certificate and
    /// key (PEM); `origin` names where they came from in errors.
    pub fn load(certificate_pem: &str, key_pem: &str, origin: &str) -> Result<Self, TlsError> {
        let key = KeyPair::from_pem(key_pem)
            .map_err(|error| TlsError::new(origin, format!("not a usable CA key: {error}")))?;
        // Fails unless the key is the certificate's, which then keeps signing for it.
        super::ServerTls::from_pem(certificate_pem, key_pem, None)
            .map_err(|error| TlsError::new(origin, error))?;
        Ok(Self {
            certificate_pem: certificate_pem.to_owned(),
            issuer: Issuer::new(authority_params(this_year()), key),
        })
    }

    /// The CA's certificate (PEM): what clients and servers trust.
    pub fn certificate_pem(&self) -> &str {
        &self.certificate_pem
    }

    /// The CA's private key (PEM): whoever holds it can issue certificates of the mesh.
    pub fn key_pem(&self) -> String {
        self.issuer.key().serialize_pem()
    }

    /// A certificate named `name` for these host names and IP addresses (what callers dial),
    /// good for serving and for calling.
    pub fn issue(&self, name: &str, hosts: &[String]) -> Result<IssuedCertificate, TlsError> {
        let mut params = CertificateParams::new(hosts.to_vec())
            .map_err(|error| TlsError::new(name, format!("bad host name: {error}")))?;
        params.distinguished_name = distinguished_name(name);
        let year = this_year();
        params.not_before = date_time_ymd(year - 1, 1, 1);
        params.not_after = date_time_ymd(year + CERTIFICATE_YEARS, 12, 31);
        params.is_ca = IsCa::ExplicitNoCa;
        params.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyEncipherment,
        ];
        params.extended_key_usages = vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ];
        params.use_authority_key_identifier_extension = true;
        let key = KeyPair::generate().map_err(|error| failed(name, error))?;
        let certificate = params
            .signed_by(&key, &self.issuer)
            .map_err(|error| failed(name, error))?;
        Ok(IssuedCertificate {
            certificate_pem: certificate.pem(),
            key_pem: key.serialize_pem(),
        })
    }
}

/// The CA's parameters; the same for every load of the same CA but for the validity,
/// which only its own certificate carries.
fn authority_params(year: i32) -> CertificateParams {
    let mut params = CertificateParams::default();
    params.distinguished_name = distinguished_name(AUTHORITY_NAME);
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    params.not_before = date_time_ymd(year - 1, 1, 1);
    params.not_after = date_time_ymd(year + AUTHORITY_YEARS, 12, 31);
    params
}

fn distinguished_name(common_name: &str) -> DistinguishedName {
    let mut name = DistinguishedName::new();
    name.push(DnType::OrganizationName, "owlmesh");
    name.push(DnType::CommonName, common_name);
    name
}

/// The current year, near enough for validity periods that start a year back.
fn this_year() -> i32 {
    const SECONDS_PER_YEAR: u64 = 31_556_952;
    let seconds = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_secs());
    1970 + (seconds / SECONDS_PER_YEAR) as i32
}

fn failed(what: &str, error: rcgen::Error) -> TlsError {
    TlsError::new(what, format!("cannot make it: {error}"))
}
