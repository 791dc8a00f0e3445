//! A whole mesh of real `owlmesh` processes on loopback, with one data folder, and the CLI
//! to drive it as a person would; over mutual TLS when started with [`TestMesh::start_with_tls`],
//! and on hosts of their own when started with a [`Placement`].

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::Duration;

use anyhow::{Context, bail};
use owlmesh_mesh::auth::MeshChannel;
use owlmesh_mesh::client::{ChannelOptions, connect_with_tls};
use owlmesh_mesh::tls::{CertificateAuthority, ClientTls};

use super::{OwlmeshProcess, owlmesh_bin};

/// How many of each service to start.
#[derive(Debug, Clone, Copy)]
pub struct Topology {
    pub dispatchers: usize,
    pub scrapers: usize,
    pub archivers: usize,
}

/// Where one process of a mesh runs: the command it is started under (none by default), the
/// address others reach it at (`host`, 127.0.0.1 by default) and the address it listens on
/// (`listen`, a free port of it; `host` by default). A process listening on an unspecified
/// address (0.0.0.0) registers `host` with `--advertise HOST:0`, as on a machine of its own.
#[derive(Debug, Clone)]
pub struct Place {
    pub command_prefix: Vec<String>,
    pub host: IpAddr,
    pub listen: IpAddr,
}

impl Default for Place {
    fn default() -> Self {
        let loopback = IpAddr::V4(Ipv4Addr::LOCALHOST);
        Self {
            command_prefix: Vec::new(),
            host: loopback,
            listen: loopback,
        }
    }
}

impl Place {
    /// The `--listen` (and, listening on an unspecified address, `--advertise`) arguments
    /// of a service here, on `port` (0: a free one).
    fn listen_args(&self, port: u16) -> Vec<String> {
        let mut args = vec![
            "--listen".to_owned(),
            SocketAddr::new(self.listen, port).to_string(),
        ];
        if self.listen.is_unspecified() {
            // Port 0 stands for the port bound.
            args.extend([
                "--advertise".into(),
                SocketAddr::new(self.host, 0).to_string(),
            ]);
        }
        args
    }

    /// The address a process here that bound `bound` is dialled at: `host` with its port.
    fn reached_at(&self, bound: SocketAddr) -> SocketAddr {
        SocketAddr::new(self.host, bound.port())
    }
}

/// Where each process of a mesh runs; an instance without a place of its own runs on
/// loopback in this machine's namespace.
#[derive(Debug, Clone, Default)]
pub struct Placement {
    pub directory: Place,
    pub dispatchers: Vec<Place>,
    pub scrapers: Vec<Place>,
    pub archivers: Vec<Place>,
}

impl Placement {
    /// The place of instance `index` of `kind`.
    pub fn of(&self, kind: Kind, index: usize) -> Place {
        let places = match kind {
            Kind::Dispatcher => &self.dispatchers,
            Kind::Scraper => &self.scrapers,
            Kind::Archiver => &self.archivers,
        };
        places.get(index).cloned().unwrap_or_default()
    }
}

/// The directory's lease TTL in a test mesh.
pub const LEASE_TTL: Duration = Duration::from_secs(2);

/// A running mesh; every process is killed when it is dropped.
pub struct TestMesh {
    pub directory: OwlmeshProcess,
    pub dispatchers: Vec<OwlmeshProcess>,
    pub scrapers: Vec<OwlmeshProcess>,
    pub archivers: Vec<OwlmeshProcess>,
    pub data_dir: tempfile::TempDir,
    /// Extra arguments of every dispatcher this mesh starts (e.g. `--lease 3s`).
    pub dispatcher_args: Vec<String>,
    /// Extra arguments of every scraper this mesh starts (e.g. `--slots 16`).
    pub scraper_args: Vec<String>,
    /// Variables in the environment of every process this mesh starts, CLI runs included.
    pub environment: Vec<(String, String)>,
    /// What this test process dials the mesh with, when it runs over TLS.
    pub tls: Option<MeshTls>,
    /// Where its processes run.
    pub placement: Placement,
    /// The PostgreSQL database of the archivers' shards, each in schema `archive_N`; `None`
    /// for an SQLite file per shard in the data folder.
    pub archive_database: Option<String>,
}

/// The TLS of a [`TestMesh`]: its private CA, its files and what this process dials it with.
pub struct MeshTls {
    pub client: ClientTls,
    /// `ca.pem`, and `member.pem` with `member.key`, which this process and the CLI runs
    /// present; each service's own `<id>.pem` and `<id>.key`.
    pub folder: tempfile::TempDir,
    authority: CertificateAuthority,
}

impl MeshTls {
    /// A fresh CA and the client certificate of this process and the CLI runs (named for
    /// loopback, as any member's).
    fn generate() -> anyhow::Result<Self> {
        let folder = tempfile::tempdir()?;
        let authority = CertificateAuthority::generate()?;
        std::fs::write(folder.path().join("ca.pem"), authority.certificate_pem())?;
        let mut tls = Self {
            client: ClientTls::from_pem(authority.certificate_pem(), None)?,
            folder,
            authority,
        };
        let (certificate, key) = tls.issue("member", IpAddr::V4(Ipv4Addr::LOCALHOST))?;
        tls.client = ClientTls::from_files(&tls.file("ca.pem"), Some((&certificate, &key)))?;
        Ok(tls)
    }

    /// The `OWLMESH_TLS_*` variables of every process and CLI run: the CA, and the client
    /// certificate (a service serves with its own, given by [`MeshTls::service_args`]).
    fn environment(&self) -> Vec<(String, String)> {
        [
            ("OWLMESH_TLS_CA", "ca.pem"),
            ("OWLMESH_TLS_CERT", "member.pem"),
            ("OWLMESH_TLS_KEY", "member.key"),
        ]
        .map(|(name, file)| (name.to_owned(), self.file(file).display().to_string()))
        .to_vec()
    }

    /// `--tls-cert` and `--tls-key` of a certificate of its own for service `id`, naming the
    /// address it is reached at (`host`) and loopback.
    fn service_args(&self, id: &str, host: IpAddr) -> anyhow::Result<Vec<String>> {
        let (certificate, key) = self.issue(id, host)?;
        Ok(vec![
            "--tls-cert".into(),
            certificate.display().to_string(),
            "--tls-key".into(),
            key.display().to_string(),
        ])
    }

    /// Issues `name` a certificate for `host` and 127.0.0.1 and writes it (and its key)
    /// into the folder; returns both paths.
    fn issue(&self, name: &str, host: IpAddr) -> anyhow::Result<(PathBuf, PathBuf)> {
        let mut hosts = vec![Ipv4Addr::LOCALHOST.to_string(), "localhost".to_owned()];
        if !host.is_loopback() {
            hosts.push(host.to_string());
        }
        let issued = self.authority.issue(name, &hosts)?;
        let certificate = self.file(&format!("{name}.pem"));
        let key = self.file(&format!("{name}.key"));
        std::fs::write(&certificate, &issued.certificate_pem)?;
        std::fs::write(&key, &issued.key_pem)?;
        Ok((certificate, key))
    }

    fn file(&self, name: &str) -> PathBuf {
        self.folder.path().join(name)
    }
}

/// How a [`TestMesh`] is started, beyond how many of each service.
#[derive(Default)]
pub struct MeshSetup<'a> {
    /// Where each process runs (loopback by default).
    pub placement: Placement,
    /// Extra arguments of every dispatcher (also when started again).
    pub dispatcher_args: &'a [&'a str],
    /// Extra arguments of every scraper (also when started again).
    pub scraper_args: &'a [&'a str],
    /// Variables in the environment of every process, CLI runs included.
    pub environment: &'a [(&'a str, &'a str)],
    /// Mutual TLS: a private CA of the mesh's own issues every service a certificate for the
    /// address it is reached at, and this process and the CLI runs a client certificate.
    pub tls: bool,
    /// A PostgreSQL URL: the archivers' shards go there, each in schema `archive_N`, as
    /// `owlmesh up --archive-database` puts them.
    pub archive_database: Option<String>,
}

/// A kind of service a [`TestMesh`] runs several of.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Dispatcher,
    Scraper,
    Archiver,
}

impl TestMesh {
    /// Starts a directory, then the services, each registered before the next kind starts.
    pub async fn start(topology: Topology, extra_scraper_args: &[&str]) -> anyhow::Result<Self> {
        Self::start_with(topology, &[], extra_scraper_args).await
    }

    /// [`TestMesh::start`], with extra arguments for the dispatchers and the scrapers (also
    /// used when they are started again).
    pub async fn start_with(
        topology: Topology,
        dispatcher_args: &[&str],
        scraper_args: &[&str],
    ) -> anyhow::Result<Self> {
        Self::start_with_environment(topology, dispatcher_args, scraper_args, &[]).await
    }

    /// [`TestMesh::start_with_environment`] over mutual TLS: a private CA of its own issues
    /// each service a certificate, served and called with (`--tls-cert`, `--tls-key`,
    /// `OWLMESH_TLS_CA`), and the CLI runs and this process one to call with
    /// (`OWLMESH_TLS_*`, [`TestMesh::channel`]).
    pub async fn start_with_tls(
        topology: Topology,
        environment: &[(&str, &str)],
    ) -> anyhow::Result<Self> {
        let setup = MeshSetup {
            environment,
            tls: true,
            ..MeshSetup::default()
        };
        Self::start_placed(topology, setup).await
    }

    /// A channel to one of its processes, carrying the tests' token, over TLS when the mesh
    /// runs with it.
    pub async fn channel(&self, address: impl std::fmt::Display) -> anyhow::Result<MeshChannel> {
        super::test_token_file();
        let address = address.to_string();
        let options = ChannelOptions::default();
        let tls = self.tls.as_ref().map(|tls| &tls.client);
        Ok(connect_with_tls(&address, &options, tls).await?)
    }

    /// The `GetStats` snapshot of one of its processes, over TLS when the mesh runs with it.
    pub async fn stats(
        &self,
        process: &OwlmeshProcess,
    ) -> anyhow::Result<owlmesh_proto::v1::Stats> {
        use owlmesh_proto::v1::GetStatsRequest;
        use owlmesh_proto::v1::telemetry_client::TelemetryClient;
        let mut client = TelemetryClient::new(self.channel(process.address).await?);
        Ok(client.get_stats(GetStatsRequest {}).await?.into_inner())
    }

    /// [`TestMesh::start_with`], with these variables in the environment of every process.
    pub async fn start_with_environment(
        topology: Topology,
        dispatcher_args: &[&str],
        scraper_args: &[&str],
        environment: &[(&str, &str)],
    ) -> anyhow::Result<Self> {
        let setup = MeshSetup {
            dispatcher_args,
            scraper_args,
            environment,
            ..MeshSetup::default()
        };
        Self::start_placed(topology, setup).await
    }

    /// Starts a mesh as `setup` says: a directory, then the services, each registered before
    /// the next kind starts.
    pub async fn start_placed(topology: Topology, setup: MeshSetup<'_>) -> anyhow::Result<Self> {
        let data_dir = tempfile::tempdir()?;
        let tls = setup.tls.then(MeshTls::generate).transpose()?;
        // Every process and command of the mesh checks and sends the tests' token (and
        // trusts the mesh's CA); a test's own variables come after, so they may override it.
        let token_file = super::test_token_file().display().to_string();
        let mut environment = vec![("OWLMESH_TOKEN_FILE".to_owned(), token_file)];
        environment.extend(tls.iter().flat_map(MeshTls::environment));
        environment.extend(
            setup
                .environment
                .iter()
                .map(|(name, value)| (name.to_string(), value.to_string())),
        );
        let directory = start_directory(&setup.placement.directory, 0, &environment, tls.as_ref());
        let directory = directory.await?;
        let owned = |args: &[&str]| args.iter().map(|arg| arg.to_string()).collect();
        let mut mesh = Self {
            directory,
            dispatchers: Vec::new(),
            scrapers: Vec::new(),
            archivers: Vec::new(),
            data_dir,
            dispatcher_args: owned(setup.dispatcher_args),
            scraper_args: owned(setup.scraper_args),
            environment,
            tls,
            placement: setup.placement,
            archive_database: setup.archive_database,
        };
        for index in 0..topology.archivers {
            let process = mesh.start_archiver(index).await?;
            mesh.archivers.push(process);
        }
        for index in 0..topology.dispatchers {
            let process = mesh.start_dispatcher(index).await?;
            mesh.dispatchers.push(process);
        }
        let scraper_args: Vec<String> = mesh.scraper_args.clone();
        let scraper_args: Vec<&str> = scraper_args.iter().map(String::as_str).collect();
        for index in 0..topology.scrapers {
            let process = mesh.start_scraper(index, &scraper_args).await?;
            mesh.scrapers.push(process);
        }
        let expected = topology.dispatchers + topology.scrapers + topology.archivers;
        mesh.wait_registered(expected).await?;
        Ok(mesh)
    }

    /// Waits until `count` instances are registered in the directory.
    pub async fn wait_registered(&self, count: usize) -> anyhow::Result<()> {
        let started = std::time::Instant::now();
        loop {
            let services = self.cli_json(&["services"]).await?;
            if services.as_array().map_or(0, Vec::len) == count {
                return Ok(());
            }
            if started.elapsed() > Duration::from_secs(20) {
                bail!("expected {count} registered instances, the directory has {services}");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The directory's address, for `--directory`.
    pub fn directory_address(&self) -> String {
        self.directory.address.to_string()
    }

    fn data(&self) -> &Path {
        self.data_dir.path()
    }

    fn common_args(&self, kind: Kind, index: usize, id: String) -> Vec<String> {
        let mut args = self.placement.of(kind, index).listen_args(0);
        args.extend([
            "--directory".into(),
            self.directory_address(),
            "--data-dir".into(),
            self.data().display().to_string(),
            "--id".into(),
            id,
        ]);
        args
    }

    /// Starts archiver `index` with its own shard: a file, or a schema of the mesh's
    /// archive database.
    pub async fn start_archiver(&self, index: usize) -> anyhow::Result<OwlmeshProcess> {
        let database = match &self.archive_database {
            Some(url) => {
                let separator = if url.contains('?') { '&' } else { '?' };
                format!("{url}{separator}options=-c%20search_path%3Darchive_{index}")
            }
            None => {
                let file = self.data().join(format!("archive-{index}.sqlite"));
                file.display().to_string()
            }
        };
        let mut args = vec!["archiver".to_owned()];
        args.extend(self.common_args(Kind::Archiver, index, format!("archiver-{index}")));
        args.extend(["--database".into(), database]);
        self.start_process(Kind::Archiver, index, &args).await
    }

    /// Starts dispatcher `index` with priority `index` (and the mesh's dispatcher arguments).
    pub async fn start_dispatcher(&self, index: usize) -> anyhow::Result<OwlmeshProcess> {
        let mut args = vec!["dispatcher".to_owned()];
        args.extend(self.common_args(Kind::Dispatcher, index, format!("dispatcher-{index}")));
        args.extend(["--priority".into(), index.to_string()]);
        args.extend(self.dispatcher_args.iter().cloned());
        self.start_process(Kind::Dispatcher, index, &args).await
    }

    /// The running processes of one kind.
    pub fn group(&mut self, kind: Kind) -> &mut Vec<OwlmeshProcess> {
        match kind {
            Kind::Dispatcher => &mut self.dispatchers,
            Kind::Scraper => &mut self.scrapers,
            Kind::Archiver => &mut self.archivers,
        }
    }

    /// Starts instance `index` of `kind` again with the same id, priority, database and
    /// arguments (a new port), in place of the old process, which is killed first if it
    /// still runs.
    pub async fn restart(&mut self, kind: Kind, index: usize) -> anyhow::Result<()> {
        self.group(kind)[index].kill().await;
        let process = match kind {
            Kind::Dispatcher => self.start_dispatcher(index).await?,
            Kind::Scraper => {
                let args: Vec<String> = self.scraper_args.clone();
                let args: Vec<&str> = args.iter().map(String::as_str).collect();
                self.start_scraper(index, &args).await?
            }
            Kind::Archiver => self.start_archiver(index).await?,
        };
        self.group(kind)[index] = process;
        Ok(())
    }

    /// Starts the directory again on the address it had (killing the old one if it runs).
    /// It starts empty: every instance registers again with its next heartbeat.
    pub async fn restart_directory(&mut self) -> anyhow::Result<()> {
        self.directory.kill().await;
        let place = &self.placement.directory;
        let port = self.directory.address.port();
        let started = std::time::Instant::now();
        // The old socket may take a moment to be released.
        self.directory = loop {
            match start_directory(place, port, &self.environment, self.tls.as_ref()).await {
                Ok(process) => break process,
                Err(error) if started.elapsed() > Duration::from_secs(5) => return Err(error),
                Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
            }
        };
        Ok(())
    }

    /// How many instances of each kind are all there should be.
    pub fn expected_instances(&self) -> usize {
        self.dispatchers.len() + self.scrapers.len() + self.archivers.len()
    }

    /// Starts scraper `index`.
    pub async fn start_scraper(
        &self,
        index: usize,
        extra: &[&str],
    ) -> anyhow::Result<OwlmeshProcess> {
        let mut args = vec!["scraper".to_owned()];
        args.extend(self.common_args(Kind::Scraper, index, format!("scraper-{index}")));
        // The test sites are on loopback, which a scraper refuses unless allowed; a test of
        // the guard says which networks it allows itself.
        if !extra.contains(&"--allow-network") {
            args.extend(["--allow-network".into(), "127.0.0.0/8".into()]);
        }
        args.extend(extra.iter().map(|arg| arg.to_string()));
        self.start_process(Kind::Scraper, index, &args).await
    }

    /// Runs an `owlmesh` client command against this mesh and returns its output.
    pub async fn cli(&self, args: &[&str]) -> anyhow::Result<Output> {
        let mut command = tokio::process::Command::new(owlmesh_bin());
        command
            .args(args)
            .args(["--directory", &self.directory_address()])
            .envs(self.environment.iter().cloned());
        Ok(command.output().await?)
    }

    /// Runs a client command with `--json` and parses its stdout.
    pub async fn cli_json(&self, args: &[&str]) -> anyhow::Result<serde_json::Value> {
        let mut all: Vec<&str> = args.to_vec();
        all.push("--json");
        let output = self.cli(&all).await?;
        if !output.status.success() {
            bail!(
                "owlmesh {} failed: {}",
                args.join(" "),
                String::from_utf8_lossy(&output.stderr)
            );
        }
        serde_json::from_slice(&output.stdout).context("parse --json output")
    }

    /// Writes a job file into the data folder and submits it; returns the job id.
    pub async fn submit(&self, toml: &str) -> anyhow::Result<String> {
        let path: PathBuf = self.data().join(format!("job-{}.toml", rand_suffix()));
        std::fs::write(&path, toml)?;
        let answer = self
            .cli_json(&["job", "submit", &path.display().to_string()])
            .await?;
        Ok(answer["id"].as_str().context("job id")?.to_owned())
    }

    /// Waits until the job's state is `done` (or fails on a final state or the deadline).
    pub async fn wait_done(
        &self,
        id: &str,
        deadline: Duration,
    ) -> anyhow::Result<serde_json::Value> {
        let started = std::time::Instant::now();
        loop {
            let status = self.cli_json(&["job", "status", id]).await?;
            match status["state"].as_str() {
                Some("done") => return Ok(status),
                Some("cancelled" | "failed") => bail!("job ended {status}"),
                _ => {}
            }
            if started.elapsed() > deadline {
                bail!("job not done after {deadline:?}: {status}");
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }

    /// The index of the scraper that owns `host` on the directory's ring (`owlmesh route`).
    pub async fn scraper_owning(&self, host: &str) -> usize {
        let route = self.cli_json(&["route", "scraper", host]).await.unwrap();
        let id = route["id"].as_str().unwrap();
        id.strip_prefix("scraper-").unwrap().parse().unwrap()
    }

    /// Those of `hosts` that scraper `index` owns on the directory's ring.
    pub async fn hosts_owned_by(&self, index: usize, hosts: Vec<String>) -> Vec<String> {
        let mut owned = Vec::new();
        for host in hosts {
            if self.scraper_owning(&host).await == index {
                owned.push(host);
            }
        }
        owned
    }

    /// Asserts that job `id`'s export holds every product of `site` exactly once.
    pub async fn assert_every_product_once(&self, id: &str, site: &owlmesh_site::Site) {
        let items = self.export(id, false).await.unwrap();
        let urls: std::collections::BTreeSet<String> = items
            .iter()
            .filter_map(|item| item["url"].as_str().map(str::to_owned))
            .collect();
        let expected: std::collections::BTreeSet<String> = site
            .expected_products()
            .into_iter()
            .map(|product| product.url)
            .collect();
        assert_eq!(urls, expected, "every product");
        assert_eq!(items.len(), expected.len(), "every product exactly once");
    }

    /// The job's exported data items (or documents), one JSON value per line.
    pub async fn export(
        &self,
        id: &str,
        documents: bool,
    ) -> anyhow::Result<Vec<serde_json::Value>> {
        let mut args = vec!["export", id, "--format", "jsonl"];
        if documents {
            args.push("--documents");
        }
        let output = self.cli(&args).await?;
        if !output.status.success() {
            bail!("export failed: {}", String::from_utf8_lossy(&output.stderr));
        }
        String::from_utf8(output.stdout)?
            .lines()
            .map(|line| serde_json::from_str(line).context("export line"))
            .collect()
    }
}

impl TestMesh {
    async fn start_process(
        &self,
        kind: Kind,
        index: usize,
        args: &[String],
    ) -> anyhow::Result<OwlmeshProcess> {
        let place = self.placement.of(kind, index);
        let mut args = args.to_vec();
        if let Some(tls) = &self.tls {
            // The instance id follows `--id`.
            let id = args.iter().skip_while(|arg| *arg != "--id").nth(1);
            let id = id.context("a service's arguments name its --id")?;
            args.extend(tls.service_args(id, place.host)?);
        }
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let mut process =
            OwlmeshProcess::start_under(&place.command_prefix, &args, &self.environment).await?;
        process.address = place.reached_at(process.address);
        Ok(process)
    }
}

/// Starts a directory at `place` on `port` (0: a free one), with a certificate of its own
/// over TLS. It registers nobody, itself included: it takes no --advertise, and the others
/// are given the address it is reached at.
async fn start_directory(
    place: &Place,
    port: u16,
    environment: &[(String, String)],
    tls: Option<&MeshTls>,
) -> anyhow::Result<OwlmeshProcess> {
    let listen = SocketAddr::new(place.listen, port).to_string();
    let ttl = format!("{}ms", LEASE_TTL.as_millis());
    let mut args: Vec<String> = ["directory", "--listen", &listen, "--lease-ttl", &ttl]
        .map(str::to_owned)
        .to_vec();
    if let Some(tls) = tls {
        args.extend(tls.service_args("directory", place.host)?);
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let mut process =
        OwlmeshProcess::start_under(&place.command_prefix, &args, environment).await?;
    process.address = place.reached_at(process.address);
    Ok(process)
}

fn rand_suffix() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

impl TestMesh {
    /// Events of a job from every archiver shard (optionally of one kind).
    pub async fn events(
        &self,
        job_id: &str,
        kind: &str,
    ) -> anyhow::Result<Vec<owlmesh_proto::v1::Event>> {
        use owlmesh_proto::v1::QueryEventsRequest;
        use owlmesh_proto::v1::archiver_client::ArchiverClient;
        let services = self.cli_json(&["services"]).await?;
        let mut events = Vec::new();
        for service in services.as_array().context("services list")? {
            if service["kind"] != "archiver" {
                continue;
            }
            let address = service["address"].as_str().context("address")?;
            let mut client = ArchiverClient::new(self.channel(address).await?);
            let mut page_token = String::new();
            loop {
                let request = QueryEventsRequest {
                    job_id: job_id.into(),
                    kind: kind.into(),
                    limit: 1000,
                    page_token: page_token.clone(),
                    ..Default::default()
                };
                let page = client.query_events(request).await?.into_inner();
                events.extend(page.events);
                if page.next_page_token.is_empty() {
                    break;
                }
                page_token = page.next_page_token;
            }
        }
        Ok(events)
    }
}
