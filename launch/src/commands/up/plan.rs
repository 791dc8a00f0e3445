//! What `owlmesh up` starts: one command line per child, the same on every run, so a
//! script (or a person reading `ps`) can tell what is what.

use std::ffi::OsString;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::{Path, PathBuf};

use owlmesh_archiver::Durability;
use owlmesh_egress::IpNet;

/// The kinds of child, in the order they are stopped: workers first, so nothing is left
/// waiting on a service that is already gone, and the directory last.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(super) enum Kind {
    Scraper,
    Monitoring,
    Dispatcher,
    Archiver,
    Directory,
}

impl Kind {
    /// The subcommand, which is also the kind the child prints and registers as.
    pub(super) fn name(self) -> &'static str {
        match self {
            Self::Scraper => "scraper",
            Self::Monitoring => "monitoring",
            Self::Dispatcher => "dispatcher",
            Self::Archiver => "archiver",
            Self::Directory => "directory",
        }
    }

    /// Where its rows go in the table: in start order, the directory first.
    pub(super) fn start_rank(self) -> u8 {
        match self {
            Self::Directory => 0,
            Self::Dispatcher => 1,
            Self::Archiver => 2,
            Self::Scraper => 3,
            Self::Monitoring => 4,
        }
    }
}

/// One child process: what it is and the arguments it runs with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct ChildSpec {
    pub(super) kind: Kind,
    /// Its place among the children of its kind, from 0.
    pub(super) index: u32,
    /// Its instance id, which also names its log file.
    pub(super) id: String,
    /// The arguments after the executable, starting with the subcommand.
    pub(super) args: Vec<OsString>,
}

/// How many services of each kind to start, and where their data goes.
#[derive(Debug, Clone)]
pub(super) struct MeshShape {
    pub(super) dispatchers: u32,
    pub(super) scrapers: u32,
    pub(super) archivers: u32,
    /// Absolute, so the children's command lines name it whatever their working folder.
    pub(super) data_dir: PathBuf,
    /// Handed to every scraper and archiver as `--allow-network`.
    pub(super) allowed_networks: Vec<IpNet>,
    /// Handed to every dispatcher and archiver as `--durability`.
    pub(super) durability: Durability,
    /// The dispatchers' shared frontier, a `postgres://` URL; `None` for the SQLite file in
    /// the data folder.
    pub(super) frontier_database: Option<String>,
    /// The archive's PostgreSQL database, each shard in a schema of its own
    /// ([`archive_shard_url`]); `None` for an SQLite file per shard in the data folder.
    pub(super) archive_database: Option<String>,
}

impl MeshShape {
    /// Where the frontier and the archive are, for people: the URLs without their password.
    pub(super) fn storage(&self) -> [String; 2] {
        let frontier = match &self.frontier_database {
            Some(url) => format!("frontier: PostgreSQL {}", without_password(url)),
            None => format!(
                "frontier: SQLite {}",
                self.data_dir.join(FRONTIER_FILE_NAME).display()
            ),
        };
        let archive = match &self.archive_database {
            Some(url) => format!(
                "archive: PostgreSQL {}, schemas {}",
                without_password(url),
                shard_names(self.archivers, archive_schema)
            ),
            None => format!(
                "archive: SQLite {}",
                shard_names(self.archivers, |index| archive_database(
                    &self.data_dir,
                    index
                )
                .display()
                .to_string())
            ),
        };
        [frontier, archive]
    }
}

/// The frontier's SQLite file in the data folder, the dispatchers' default.
const FRONTIER_FILE_NAME: &str = owlmesh_dispatcher::frontier::SQLITE_FILE_NAME;

/// `first … last` of the shards' names, or the one.
fn shard_names(shards: u32, name: impl Fn(u32) -> String) -> String {
    match shards {
        0 => "none".into(),
        1 => name(0),
        _ => format!("{} … {}", name(0), name(shards - 1)),
    }
}

/// `url` with its password, if any, replaced by `***`.
fn without_password(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut parsed) if parsed.password().is_some() => {
            let _ = parsed.set_password(Some("***"));
            parsed.to_string()
        }
        _ => url.to_owned(),
    }
}

/// Every child listens on an ephemeral port of the loopback interface and says which.
const SERVICE_LISTEN: &str = "127.0.0.1:0";

/// The directory, at the address `owlmesh up` was given.
pub(super) fn directory(listen: SocketAddr) -> ChildSpec {
    ChildSpec {
        kind: Kind::Directory,
        index: 0,
        id: "directory".into(),
        args: arguments(["directory", "--listen", &listen.to_string()]),
    }
}

/// Dispatchers (priority 0, 1, … sharing the default frontier file), archivers (one
/// database file each) and scrapers, all pointed at the directory.
pub(super) fn services(shape: &MeshShape, directory: SocketAddr) -> Vec<ChildSpec> {
    let directory = directory.to_string();
    let data_dir = shape.data_dir.as_os_str();
    let dispatchers = (0..shape.dispatchers).map(|index| {
        let id = format!("dispatcher-{index}");
        let mut args = arguments(["dispatcher", "--priority", &index.to_string()]);
        args.extend(arguments(["--directory", &directory, "--data-dir"]));
        args.push(data_dir.to_owned());
        args.extend(arguments(["--listen", SERVICE_LISTEN, "--id", &id]));
        if let Some(url) = &shape.frontier_database {
            args.extend(arguments(["--database", url]));
        }
        args.extend(arguments(["--durability", shape.durability.name()]));
        ChildSpec {
            kind: Kind::Dispatcher,
            index,
            id,
            args,
        }
    });
    let archivers = (0..shape.archivers).map(|index| {
        let id = format!("archiver-{index}");
        let database = match &shape.archive_database {
            Some(url) => archive_shard_url(url, index).into(),
            None => archive_database(&shape.data_dir, index).into_os_string(),
        };
        let mut args = arguments(["archiver", "--id", &id, "--database"]);
        args.push(database);
        args.extend(arguments([
            "--directory",
            &directory,
            "--listen",
            SERVICE_LISTEN,
            "--data-dir",
        ]));
        args.push(data_dir.to_owned());
        args.extend(arguments(["--durability", shape.durability.name()]));
        args.extend(allow_networks(shape));
        ChildSpec {
            kind: Kind::Archiver,
            index,
            id,
            args,
        }
    });
    let scrapers = (0..shape.scrapers).map(|index| {
        let id = format!("scraper-{index}");
        let mut args = arguments([
            "scraper",
            "--directory",
            &directory,
            "--listen",
            SERVICE_LISTEN,
        ]);
        args.extend(arguments(["--id", &id, "--data-dir"]));
        args.push(data_dir.to_owned());
        args.extend(allow_networks(shape));
        ChildSpec {
            kind: Kind::Scraper,
            index,
            id,
            args,
        }
    });
    dispatchers.chain(archivers).chain(scrapers).collect()
}

/// `--allow-network CIDR` for each network the shape allows.
fn allow_networks(shape: &MeshShape) -> Vec<OsString> {
    shape
        .allowed_networks
        .iter()
        .flat_map(|network| arguments(["--allow-network", &network.to_string()]))
        .collect()
}

/// The dashboard; `help` is its `--help` text, which says which of the common flags
/// (`--directory`, `--id`, `--data-dir`) this build's `monitoring` takes.
pub(super) fn monitoring(
    listen: SocketAddr,
    directory: SocketAddr,
    data_dir: &Path,
    help: &str,
) -> ChildSpec {
    let id = "monitoring";
    let mut args = arguments(["monitoring", "--listen", &listen.to_string()]);
    // On every interface the dashboard must say where the others reach it: here, on this
    // machine, at the port it binds.
    if listen.ip().is_unspecified() && help.contains("--advertise") {
        let advertise = SocketAddr::new(dialable(listen).ip(), 0);
        args.extend(arguments(["--advertise", &advertise.to_string()]));
    }
    if help.contains("--directory") {
        args.extend(arguments(["--directory", &directory.to_string()]));
    }
    if help.contains("--id") {
        args.extend(arguments(["--id", id]));
    }
    if help.contains("--data-dir") {
        args.push("--data-dir".into());
        args.push(data_dir.as_os_str().to_owned());
    }
    ChildSpec {
        kind: Kind::Monitoring,
        index: 0,
        id: id.into(),
        args,
    }
}

/// The address the children dial for a listener of `up`: loopback of its family when it
/// listens on every interface, since every child runs on this machine and 0.0.0.0 is no
/// address to dial (nor one the certificates of `--tls` name).
pub(super) fn dialable(listen: SocketAddr) -> SocketAddr {
    match listen.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => {
            SocketAddr::new(Ipv4Addr::LOCALHOST.into(), listen.port())
        }
        IpAddr::V6(ip) if ip.is_unspecified() => {
            SocketAddr::new(Ipv6Addr::LOCALHOST.into(), listen.port())
        }
        _ => listen,
    }
}

/// Archiver shard `index`'s schema in a PostgreSQL archive database.
pub(super) fn archive_schema(index: u32) -> String {
    format!("archive_{index}")
}

/// Archiver shard `index`'s PostgreSQL URL: `url` with the shard's schema as its search path,
/// which the storage layer creates when it is missing. Schemas rather than a database per
/// shard, since creating a schema needs only the rights of the database's owner, not the
/// server-wide CREATEDB; a search path given in `url` is overridden.
pub(super) fn archive_shard_url(url: &str, index: u32) -> String {
    let separator = if url.contains('?') { '&' } else { '?' };
    let schema = archive_schema(index);
    format!("{url}{separator}options=-c%20search_path%3D{schema}")
}

/// Archiver shard `index`'s own SQLite file.
pub(super) fn archive_database(data_dir: &Path, index: u32) -> PathBuf {
    data_dir.join(format!("archive-{index}.sqlite"))
}

fn arguments<const N: usize>(words: [&str; N]) -> Vec<OsString> {
    words.into_iter().map(OsString::from).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shape() -> MeshShape {
        MeshShape {
            dispatchers: 2,
            scrapers: 3,
            archivers: 2,
            data_dir: PathBuf::from("/data"),
            allowed_networks: Vec::new(),
            durability: Durability::PowerLoss,
            frontier_database: None,
            archive_database: None,
        }
    }

    fn line(spec: &ChildSpec) -> String {
        let words: Vec<_> = spec
            .args
            .iter()
            .map(|word| word.to_string_lossy())
            .collect();
        words.join(" ")
    }

    #[test]
    fn each_service_gets_the_contract_command_line() {
        let directory: SocketAddr = "127.0.0.1:7700".parse().unwrap();
        let specs = services(&shape(), directory);
        let lines: Vec<String> = specs.iter().map(line).collect();
        assert_eq!(
            lines,
            [
                "dispatcher --priority 0 --directory 127.0.0.1:7700 --data-dir /data --listen 127.0.0.1:0 --id dispatcher-0 --durability power-loss",
                "dispatcher --priority 1 --directory 127.0.0.1:7700 --data-dir /data --listen 127.0.0.1:0 --id dispatcher-1 --durability power-loss",
                "archiver --id archiver-0 --database /data/archive-0.sqlite --directory 127.0.0.1:7700 --listen 127.0.0.1:0 --data-dir /data --durability power-loss",
                "archiver --id archiver-1 --database /data/archive-1.sqlite --directory 127.0.0.1:7700 --listen 127.0.0.1:0 --data-dir /data --durability power-loss",
                "scraper --directory 127.0.0.1:7700 --listen 127.0.0.1:0 --id scraper-0 --data-dir /data",
                "scraper --directory 127.0.0.1:7700 --listen 127.0.0.1:0 --id scraper-1 --data-dir /data",
                "scraper --directory 127.0.0.1:7700 --listen 127.0.0.1:0 --id scraper-2 --data-dir /data",
            ]
        );
        assert_eq!(
            line(&super::directory(directory)),
            "directory --listen 127.0.0.1:7700"
        );
    }

    #[test]
    fn allowed_networks_reach_the_scrapers_and_archivers_only() {
        let directory: SocketAddr = "127.0.0.1:7700".parse().unwrap();
        let shape = MeshShape {
            allowed_networks: vec!["10.0.0.0/8".parse().unwrap(), "::1/128".parse().unwrap()],
            ..shape()
        };
        for spec in services(&shape, directory) {
            let allows =
                line(&spec).ends_with("--allow-network 10.0.0.0/8 --allow-network ::1/128");
            assert_eq!(allows, spec.kind != Kind::Dispatcher, "{}", line(&spec));
        }
    }

    #[test]
    fn postgres_puts_the_frontier_in_one_database_and_each_shard_in_its_schema() {
        let directory: SocketAddr = "127.0.0.1:7700".parse().unwrap();
        let postgres = MeshShape {
            frontier_database: Some("postgres://owlmesh:secret@db:5432/frontier".into()),
            archive_database: Some(
                "postgres://owlmesh:secret@db:5432/archive?sslmode=require".into(),
            ),
            ..shape()
        };
        let lines: Vec<String> = services(&postgres, directory).iter().map(line).collect();
        for dispatcher in &lines[..2] {
            assert!(
                dispatcher.contains("--database postgres://owlmesh:secret@db:5432/frontier "),
                "{dispatcher}"
            );
        }
        for (index, archiver) in lines[2..4].iter().enumerate() {
            let url = format!(
                "postgres://owlmesh:secret@db:5432/archive?sslmode=require&options=-c%20search_path%3Darchive_{index}"
            );
            assert!(
                archiver.contains(&format!("--database {url} ")),
                "{archiver}"
            );
        }
        assert_eq!(
            postgres.storage(),
            [
                "frontier: PostgreSQL postgres://owlmesh:***@db:5432/frontier",
                "archive: PostgreSQL postgres://owlmesh:***@db:5432/archive?sslmode=require, schemas archive_0 … archive_1",
            ]
        );
        assert_eq!(
            shape().storage(),
            [
                "frontier: SQLite /data/frontier.sqlite3",
                "archive: SQLite /data/archive-0.sqlite … /data/archive-1.sqlite",
            ]
        );
    }

    #[test]
    fn listeners_on_every_interface_are_dialled_and_advertised_on_loopback() {
        let any: SocketAddr = "0.0.0.0:7780".parse().unwrap();
        assert_eq!(dialable(any).to_string(), "127.0.0.1:7780");
        assert_eq!(
            dialable("[::]:7700".parse().unwrap()).to_string(),
            "[::1]:7700"
        );
        let own: SocketAddr = "192.0.2.7:7700".parse().unwrap();
        assert_eq!(dialable(own), own);
        let help = "  --directory <DIRECTORY>\n  --advertise <HOST:PORT>";
        let dashboard = monitoring(any, dialable(any), Path::new("/data"), help);
        assert_eq!(
            line(&dashboard),
            "monitoring --listen 0.0.0.0:7780 --advertise 127.0.0.1:0 --directory 127.0.0.1:7780"
        );
    }

    #[test]
    fn the_dashboard_gets_the_common_flags_it_takes() {
        let listen: SocketAddr = "127.0.0.1:7780".parse().unwrap();
        let directory: SocketAddr = "127.0.0.1:7700".parse().unwrap();
        let data_dir = Path::new("/data");
        let help = "  --directory <DIRECTORY>\n  --id <ID>\n  --data-dir <DATA_DIR>";
        let with = monitoring(listen, directory, data_dir, help);
        let without = monitoring(listen, directory, data_dir, "  --listen <LISTEN>");
        assert_eq!(
            line(&with),
            "monitoring --listen 127.0.0.1:7780 --directory 127.0.0.1:7700 --id monitoring --data-dir /data"
        );
        assert_eq!(line(&without), "monitoring --listen 127.0.0.1:7780");
    }

    #[test]
    fn workers_stop_first_and_the_directory_last() {
        let mut kinds = [
            Kind::Directory,
            Kind::Archiver,
            Kind::Scraper,
            Kind::Dispatcher,
        ];
        kinds.sort();
        assert_eq!(
            kinds,
            [
                Kind::Scraper,
                Kind::Dispatcher,
                Kind::Archiver,
                Kind::Directory
            ]
        );
    }
}
