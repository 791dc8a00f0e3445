//! Hosts for the multi-host tests: Linux network namespaces made by the test, each with one
//! address in a private subnet, joined by veth pairs to a bridge in a namespace of its own.
//! The test process itself (the root namespace) joins the bridge too, at the subnet's `.1`,
//! where the test site is served. A [`Network`] removes all of it when dropped, panics
//! included; [`Network::create`] returns `None` after a loud notice where namespaces cannot
//! be made (not root, no iproute2).

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::io::Write as _;
use std::net::{IpAddr, Ipv4Addr};
use std::process::Command;
use std::sync::Mutex;

use anyhow::{Context, bail};

use super::mesh::Place;

/// The first two octets of every test subnet (`10.213.<n>.0/24`): private, and not a range
/// the machine's own networks use.
const SUBNET_PREFIX: [u8; 2] = [10, 213];

/// Host `i` of a network gets `<subnet>.<FIRST_HOST_OCTET + i>`; `.1` is the root namespace.
const FIRST_HOST_OCTET: u8 = 10;

/// The root namespace's address on the bridge (last octet).
const ROOT_OCTET: u8 = 1;

/// Subnets this test process uses now, so that two networks of one run never share one.
static SUBNETS_IN_USE: Mutex<Vec<u8>> = Mutex::new(Vec::new());

/// One "host": a network namespace with one address on the test bridge.
#[derive(Debug, Clone)]
pub struct Host {
    /// What the test calls it (e.g. "directory").
    pub name: String,
    /// The namespace's name, unique to this run.
    pub namespace: String,
    /// Its address on the bridge.
    pub address: Ipv4Addr,
    /// Its veth's bridge-side end, in the bridge's namespace.
    bridge_port: String,
}

impl Host {
    /// Where a process of this host runs: under `ip netns exec`, listening on every address
    /// of the namespace (0.0.0.0) and reached at, and advertising, the host's address.
    pub fn place(&self) -> Place {
        Place {
            command_prefix: ["ip", "netns", "exec", &self.namespace]
                .map(str::to_owned)
                .to_vec(),
            host: IpAddr::V4(self.address),
            listen: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
        }
    }
}

/// The hosts of one test, their bridge and the root namespace's link to it.
#[derive(Debug)]
pub struct Network {
    /// The namespace holding the bridge (a switch nobody runs processes in).
    switch: String,
    /// The root namespace's end of its veth pair.
    root_link: String,
    /// The third octet of the subnet.
    subnet: u8,
    hosts: Vec<Host>,
}

impl Network {
    /// Makes one namespace per name, or prints a loud SKIPPED notice naming `test` and
    /// returns `None` where this machine cannot make namespaces. A failure once namespaces
    /// can be made is a failure of the test.
    pub fn create(test: &str, names: &[&str]) -> anyhow::Result<Option<Self>> {
        if let Err(reason) = can_make_namespaces() {
            // On the real stderr: the test harness would swallow `eprintln!` of a passing test.
            let notice = format!(
                "\n!!!!!!!! SKIPPED {test}: network namespaces cannot be made here ({reason})\n\
                 !!!!!!!! the multi-host suite needs root and iproute2 (`ip`), as in CI\n\n"
            );
            std::io::stderr().write_all(notice.as_bytes()).ok();
            return Ok(None);
        }
        let suffix = random_suffix();
        let subnet = claim_subnet()?;
        let mut network = Self {
            switch: format!("owl-{suffix}-switch"),
            root_link: format!("owl{suffix}"),
            subnet,
            hosts: Vec::new(),
        };
        // From here on, dropping `network` removes whatever was made, should a step fail.
        network.make_switch(&suffix)?;
        for (index, name) in names.iter().enumerate() {
            network.add_host(&suffix, index, name)?;
        }
        Ok(Some(network))
    }

    /// The host named `name`.
    pub fn host(&self, name: &str) -> &Host {
        self.hosts
            .iter()
            .find(|host| host.name == name)
            .unwrap_or_else(|| panic!("no host named {name}"))
    }

    /// The root namespace's address on the bridge, where the test process serves the site.
    pub fn root_address(&self) -> Ipv4Addr {
        self.address(ROOT_OCTET)
    }

    /// The test subnet, as `--allow-network` takes it.
    pub fn subnet(&self) -> String {
        format!("{}/24", self.address(0))
    }

    /// Cuts `name` off the bridge by taking the bridge's end of its link down: its packets
    /// are dropped from then on, nobody gets a FIN or an RST, as when a machine vanishes.
    pub fn cut(&self, name: &str) -> anyhow::Result<()> {
        let port = &self.host(name).bridge_port;
        ip(&["-n", &self.switch, "link", "set", port, "down"])
    }

    /// Joins `name` to the bridge again after [`Network::cut`].
    pub fn join(&self, name: &str) -> anyhow::Result<()> {
        let port = &self.host(name).bridge_port;
        ip(&["-n", &self.switch, "link", "set", port, "up"])
    }

    fn address(&self, last: u8) -> Ipv4Addr {
        let [first, second] = SUBNET_PREFIX;
        Ipv4Addr::new(first, second, self.subnet, last)
    }

    fn make_switch(&mut self, suffix: &str) -> anyhow::Result<()> {
        let bridge = format!("owlbr-{suffix}");
        ip(&["netns", "add", &self.switch])?;
        ip(&["-n", &self.switch, "link", "add", &bridge, "type", "bridge"])?;
        ip(&["-n", &self.switch, "link", "set", &bridge, "up"])?;
        ip(&[
            "link",
            "add",
            &self.root_link,
            "type",
            "veth",
            "peer",
            "name",
            "root",
            "netns",
            &self.switch,
        ])?;
        ip(&[
            "-n",
            &self.switch,
            "link",
            "set",
            "root",
            "master",
            &bridge,
            "up",
        ])?;
        let root = format!("{}/24", self.root_address());
        ip(&["addr", "add", &root, "dev", &self.root_link])?;
        ip(&["link", "set", &self.root_link, "up"])
    }

    fn add_host(&mut self, suffix: &str, index: usize, name: &str) -> anyhow::Result<()> {
        let octet = u8::try_from(index)
            .ok()
            .and_then(|index| FIRST_HOST_OCTET.checked_add(index))
            .context("too many hosts for one subnet")?;
        let host = Host {
            name: name.to_owned(),
            namespace: format!("owl-{suffix}-{index}"),
            address: self.address(octet),
            bridge_port: format!("host{index}"),
        };
        ip(&["netns", "add", &host.namespace])?;
        self.hosts.push(host.clone());
        let bridge = format!("owlbr-{suffix}");
        let namespace = host.namespace.as_str();
        ip(&[
            "link",
            "add",
            "name",
            "eth0",
            "netns",
            namespace,
            "type",
            "veth",
            "peer",
            "name",
            &host.bridge_port,
            "netns",
            &self.switch,
        ])?;
        ip(&[
            "-n",
            &self.switch,
            "link",
            "set",
            &host.bridge_port,
            "master",
            &bridge,
            "up",
        ])?;
        let address = format!("{}/24", host.address);
        ip(&["-n", namespace, "addr", "add", &address, "dev", "eth0"])?;
        ip(&["-n", namespace, "link", "set", "eth0", "up"])?;
        ip(&["-n", namespace, "link", "set", "lo", "up"])
    }
}

impl Drop for Network {
    /// Kills what still runs in the hosts, then deletes the namespaces (their veths and the
    /// bridge go with them) and the root's link. Errors are printed, not raised: a drop
    /// during a panic must not panic again.
    fn drop(&mut self) {
        let namespaces = self
            .hosts
            .iter()
            .map(|host| host.namespace.clone())
            .chain([self.switch.clone()]);
        for namespace in namespaces {
            kill_processes_in(&namespace);
            if let Err(error) = ip(&["netns", "del", &namespace]) {
                eprintln!("cleanup: {error:#}");
            }
        }
        // Gone with its peer in the switch namespace already, unless that failed.
        let _ = ip(&["link", "del", &self.root_link]);
        if let Ok(mut subnets) = SUBNETS_IN_USE.lock() {
            subnets.retain(|subnet| *subnet != self.subnet);
        }
    }
}

/// Why namespaces cannot be made here, if they cannot.
fn can_make_namespaces() -> Result<(), String> {
    let user = Command::new("id")
        .arg("-u")
        .output()
        .map_err(|error| format!("id -u: {error}"))?;
    if String::from_utf8_lossy(&user.stdout).trim() != "0" {
        return Err("not running as root".into());
    }
    match Command::new("ip").arg("-V").output() {
        Ok(output) if output.status.success() => Ok(()),
        Ok(_) => Err("`ip -V` failed".into()),
        Err(error) => Err(format!("iproute2's `ip` is missing: {error}")),
    }
}

/// Runs `ip ARGS…`; an error carries its stderr.
fn ip(args: &[&str]) -> anyhow::Result<()> {
    let output = Command::new("ip").args(args).output().context("run ip")?;
    if !output.status.success() {
        bail!(
            "ip {} failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    Ok(())
}

/// SIGKILLs every process still in `namespace`: those of the test's mesh are killed when
/// it drops too, but one that was being restarted may not be in it.
fn kill_processes_in(namespace: &str) {
    let Ok(output) = Command::new("ip")
        .args(["netns", "pids", namespace])
        .output()
    else {
        return;
    };
    for pid in String::from_utf8_lossy(&output.stdout).split_whitespace() {
        let _ = Command::new("kill").args(["-KILL", pid]).status();
    }
}

/// Six hex digits, different in every network of every run.
fn random_suffix() -> String {
    let mut hasher = RandomState::new().build_hasher();
    hasher.write_u32(std::process::id());
    format!("{:06x}", hasher.finish() & 0xff_ffff)
}

/// A free third octet for the subnet: not used by this process, nor routed on this machine
/// (another run's network, or anything else).
fn claim_subnet() -> anyhow::Result<u8> {
    let mut in_use = SUBNETS_IN_USE.lock().expect("subnet list");
    let start = RandomState::new().build_hasher().finish() as u8;
    for offset in 0..=u8::MAX {
        let candidate = start.wrapping_add(offset);
        if candidate == 0 || candidate == u8::MAX || in_use.contains(&candidate) {
            continue;
        }
        let [first, second] = SUBNET_PREFIX;
        let prefix = format!("{first}.{second}.{candidate}.0/24");
        let routes = Command::new("ip")
            .args(["-4", "route", "show", &prefix])
            .output()
            .context("ip route show")?;
        if routes.stdout.is_empty() {
            in_use.push(candidate);
            return Ok(candidate);
        }
    }
    bail!(
        "no free subnet in {}.{}.0.0/16",
        SUBNET_PREFIX[0],
        SUBNET_PREFIX[1]
    )
}
