//! `owlmesh up --tls`: a private CA and a certificate for every child in `<data-dir>/tls/`,
//! handed to each child as `--tls-cert`, `--tls-key` and `--tls-ca`, and one for the
//! commands run next to it, which find it there by themselves.
//!
//! The CA is made once and kept (so a CA copied elsewhere stays good); the certificates are
//! issued anew on every start, for the addresses the mesh is reached by on this run.

use std::ffi::OsString;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};

use anyhow::Context;
use owlmesh_mesh::tls::{CertificateAuthority, ClientTls, TlsSetting};

use super::plan::ChildSpec;
use crate::identity::{
    CA_CERTIFICATE_FILE, COMMAND_CERTIFICATE_FILE, COMMAND_KEY_FILE, TLS_FOLDER,
};

/// The CA's private key, beside its certificate; only `up` reads it.
const CA_KEY_FILE: &str = "ca.key";
/// What the commands' certificate is called inside it.
const COMMAND_NAME: &str = "owlmesh command";

/// The mesh's certificates, settled before anything starts.
pub(super) struct MeshCertificates {
    folder: PathBuf,
    authority: CertificateAuthority,
    /// The names and addresses every certificate is good for.
    hosts: Vec<String>,
    /// Whether the CA was made just now.
    created: bool,
}

impl MeshCertificates {
    /// Loads or makes the CA in `<data_dir>/tls`, issues the commands' certificate, and
    /// returns the TLS `up` itself calls the mesh with (as a command does). `listen` are the
    /// fixed addresses of the mesh: certificates name their hosts besides loopback.
    pub(super) fn prepare(
        data_dir: &Path,
        listen: &[SocketAddr],
    ) -> anyhow::Result<(Self, TlsSetting)> {
        let folder = data_dir.join(TLS_FOLDER);
        std::fs::create_dir_all(&folder)
            .with_context(|| format!("cannot create {}", folder.display()))?;
        let (authority, created) = authority(&folder)?;
        let certificates = Self {
            folder,
            authority,
            hosts: hosts(listen),
            created,
        };
        let (certificate, key) = certificates.issue(COMMAND_NAME, COMMAND_CERTIFICATE_FILE)?;
        let client = ClientTls::from_files(&certificates.ca(), Some((&certificate, &key)))?;
        let setting = TlsSetting {
            server: None,
            client: Some(client),
        };
        Ok((certificates, setting))
    }

    /// Issues each child's certificate and adds the flags that hand it over.
    pub(super) fn attach(&self, specs: &mut [ChildSpec]) -> anyhow::Result<()> {
        for spec in specs {
            let (certificate, key) = self.issue(&spec.id, &format!("{}.pem", spec.id))?;
            spec.args.extend([
                OsString::from("--tls-cert"),
                certificate.into_os_string(),
                OsString::from("--tls-key"),
                key.into_os_string(),
                OsString::from("--tls-ca"),
                self.ca().into_os_string(),
            ]);
        }
        Ok(())
    }

    /// Issues a certificate named `name` into `file` and its key beside it (`.key`, 0600).
    fn issue(&self, name: &str, file: &str) -> anyhow::Result<(PathBuf, PathBuf)> {
        let issued = self.authority.issue(name, &self.hosts)?;
        let certificate = self.folder.join(file);
        let key = certificate.with_extension("key");
        write_private(&key, &issued.key_pem)?;
        std::fs::write(&certificate, &issued.certificate_pem)
            .with_context(|| format!("cannot write {}", certificate.display()))?;
        Ok((certificate, key))
    }

    /// The CA's certificate file.
    pub(super) fn ca(&self) -> PathBuf {
        self.folder.join(CA_CERTIFICATE_FILE)
    }

    /// What the console says about them, and how to call the mesh with grpcurl.
    pub(super) fn describe(
        &self,
        directory: SocketAddr,
        token_header: Option<&str>,
    ) -> [String; 2] {
        let folder = self.folder.display();
        let made = if self.created { ", made now" } else { "" };
        let header = token_header
            .map(|header| format!(" -H \"{header}\""))
            .unwrap_or_default();
        [
            format!(
                "tls: mutual, private CA {folder}/{CA_CERTIFICATE_FILE}{made}; a certificate per \
                 service in {folder}; commands run from this folder use {COMMAND_CERTIFICATE_FILE} \
                 (elsewhere give --tls-ca, --tls-cert and --tls-key)"
            ),
            format!(
                "grpcurl -cacert {folder}/{CA_CERTIFICATE_FILE} -cert {folder}/{COMMAND_CERTIFICATE_FILE} \
                 -key {folder}/{COMMAND_KEY_FILE}{header} {directory} list"
            ),
        ]
    }
}

/// The CA of `folder`, made (and written) when it has none; whether it was made.
fn authority(folder: &Path) -> anyhow::Result<(CertificateAuthority, bool)> {
    let certificate = folder.join(CA_CERTIFICATE_FILE);
    let key = folder.join(CA_KEY_FILE);
    if certificate.exists() && key.exists() {
        let read = |path: &Path| {
            std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))
        };
        let origin = key.display().to_string();
        let authority = CertificateAuthority::load(&read(&certificate)?, &read(&key)?, &origin)?;
        return Ok((authority, false));
    }
    let authority = CertificateAuthority::generate()?;
    write_private(&key, &authority.key_pem())?;
    std::fs::write(&certificate, authority.certificate_pem())
        .with_context(|| format!("cannot write {}", certificate.display()))?;
    Ok((authority, true))
}

/// Loopback by address and by name, and the hosts of the fixed listen addresses when they
/// are particular addresses (a wildcard is reached by addresses `up` cannot know).
fn hosts(listen: &[SocketAddr]) -> Vec<String> {
    let mut hosts = vec![
        "127.0.0.1".to_owned(),
        "::1".to_owned(),
        "localhost".to_owned(),
    ];
    for address in listen {
        let ip: IpAddr = address.ip();
        let host = ip.to_string();
        if !ip.is_unspecified() && !hosts.contains(&host) {
            hosts.push(host);
        }
    }
    hosts
}

/// Writes a private key readable by its owner only.
fn write_private(path: &Path, text: &str) -> anyhow::Result<()> {
    use std::io::Write as _;
    use std::os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _};
    let cannot = || format!("cannot write {}", path.display());
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .with_context(cannot)?;
    // A file that existed keeps its mode through `open`: narrow it too.
    file.set_permissions(std::fs::Permissions::from_mode(0o600))
        .with_context(cannot)?;
    file.write_all(text.as_bytes()).with_context(cannot)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt as _;

    use super::*;

    #[test]
    fn certificates_name_loopback_and_the_fixed_addresses_once() {
        let listen = [
            "127.0.0.1:7700".parse().unwrap(),
            "0.0.0.0:7780".parse().unwrap(),
            "192.0.2.7:7700".parse().unwrap(),
        ];
        assert_eq!(
            hosts(&listen),
            ["127.0.0.1", "::1", "localhost", "192.0.2.7"]
        );
    }

    #[test]
    fn the_authority_is_kept_and_every_child_gets_its_own_files() {
        let data = tempfile::tempdir().unwrap();
        let listen = ["127.0.0.1:7700".parse().unwrap()];
        let (first, _) = MeshCertificates::prepare(data.path(), &listen).unwrap();
        assert!(first.created);
        let ca = std::fs::read_to_string(first.ca()).unwrap();
        let (second, _) = MeshCertificates::prepare(data.path(), &listen).unwrap();
        assert!(!second.created, "a second start keeps the CA");
        assert_eq!(std::fs::read_to_string(second.ca()).unwrap(), ca);

        let mut specs = vec![ChildSpec {
            kind: super::super::plan::Kind::Scraper,
            index: 0,
            id: "scraper-0".into(),
            args: vec!["scraper".into()],
        }];
        second.attach(&mut specs).unwrap();
        let folder = data.path().join(TLS_FOLDER);
        let line: Vec<_> = specs[0].args.iter().map(|a| a.to_string_lossy()).collect();
        assert_eq!(
            line.join(" "),
            format!(
                "scraper --tls-cert {0}/scraper-0.pem --tls-key {0}/scraper-0.key --tls-ca {0}/ca.pem",
                folder.display()
            )
        );
        for key in ["ca.key", "scraper-0.key", "client.key"] {
            let mode = std::fs::metadata(folder.join(key))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600, "{key}");
        }
    }
}
