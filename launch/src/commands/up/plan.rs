//! What `owlmesh up` starts: one command line per child, the same on every run, so a
//! script (or a person reading `ps`) can tell what is what.

use std::ffi::OsString;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

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
        ChildSpec {
            kind: Kind::Dispatcher,
            index,
            id,
            args,
        }
    });
    let archivers = (0..shape.archivers).map(|index| {
        let id = format!("archiver-{index}");
        let database = archive_database(&shape.data_dir, index);
        let mut args = arguments(["archiver", "--id", &id, "--database"]);
        args.push(database.into_os_string());
        args.extend(arguments([
            "--directory",
            &directory,
            "--listen",
            SERVICE_LISTEN,
            "--data-dir",
        ]));
        args.push(data_dir.to_owned());
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
                "dispatcher --priority 0 --directory 127.0.0.1:7700 --data-dir /data --listen 127.0.0.1:0 --id dispatcher-0",
                "dispatcher --priority 1 --directory 127.0.0.1:7700 --data-dir /data --listen 127.0.0.1:0 --id dispatcher-1",
                "archiver --id archiver-0 --database /data/archive-0.sqlite --directory 127.0.0.1:7700 --listen 127.0.0.1:0 --data-dir /data",
                "archiver --id archiver-1 --database /data/archive-1.sqlite --directory 127.0.0.1:7700 --listen 127.0.0.1:0 --data-dir /data",
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
