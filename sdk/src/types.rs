//! The values a driver works with, parsed and typed.

use std::fmt;
use std::net::Ipv4Addr;
use std::str::FromStr;

pub use ipnet::Ipv4Net;

/// Why a driver call failed. Each message should name the thing concerned
/// and, where it can, what to do about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Error {
    /// A user-supplied option is unknown or has a bad value.
    InvalidOption(String),
    /// The host refused an operation (capability not granted, not ours).
    Denied(String),
    /// Something the driver referred to does not exist.
    NotFound(String),
    /// The kernel or the host failed to carry out an allowed operation.
    HostFailure(String),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::InvalidOption(m) => write!(f, "invalid option: {m}"),
            Error::Denied(m) => write!(f, "denied: {m}"),
            Error::NotFound(m) => write!(f, "not found: {m}"),
            Error::HostFailure(m) => f.write_str(m),
        }
    }
}

impl std::error::Error for Error {}

impl Error {
    /// Whether this is [`Error::NotFound`] (handy for idempotent teardown).
    pub fn is_not_found(&self) -> bool {
        matches!(self, Error::NotFound(_))
    }
}

/// Result of a driver call.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Turns `Err(NotFound)` into `Ok(())`: teardown should succeed when the
/// thing is already gone.
pub fn ignore_not_found(r: Result<()>) -> Result<()> {
    match r {
        Err(e) if e.is_not_found() => Ok(()),
        other => other,
    }
}

/// `-o key=value` options of a network, in the order given.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Options {
    pairs: Vec<(String, String)>,
}

impl Options {
    /// Builds options from pairs (mostly for tests).
    pub fn new<K: Into<String>, V: Into<String>>(pairs: impl IntoIterator<Item = (K, V)>) -> Self {
        Options {
            pairs: pairs
                .into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect(),
        }
    }

    /// The value of `key` (the last one if given twice).
    pub fn get(&self, key: &str) -> Option<&str> {
        self.pairs
            .iter()
            .rev()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// The value of `key`, or an [`Error::InvalidOption`] saying it is required.
    pub fn require(&self, key: &str) -> Result<&str> {
        self.get(key).ok_or_else(|| {
            Error::InvalidOption(format!("option '{key}' is required (-o {key}=VALUE)"))
        })
    }

    /// Parses `key` as `T`; `Ok(None)` when absent, an error naming the key
    /// and value when it does not parse.
    pub fn parse<T: FromStr>(&self, key: &str) -> Result<Option<T>>
    where
        T::Err: fmt::Display,
    {
        match self.get(key) {
            None => Ok(None),
            Some(v) => v
                .parse::<T>()
                .map(Some)
                .map_err(|e| Error::InvalidOption(format!("{key}='{v}': {e}"))),
        }
    }

    /// The value of `key`, which must be one of `allowed`; `default` when absent.
    pub fn one_of<'a>(
        &'a self,
        key: &str,
        allowed: &[&'a str],
        default: &'a str,
    ) -> Result<&'a str> {
        match self.get(key) {
            None => Ok(default),
            Some(v) if allowed.contains(&v) => Ok(v),
            Some(v) => Err(Error::InvalidOption(format!(
                "{key}='{v}' is not one of: {}",
                allowed.join(", ")
            ))),
        }
    }

    /// Refuses options whose key is not in `known`.
    pub fn check_known(&self, driver: &str, known: &[&str]) -> Result<()> {
        for (k, _) in &self.pairs {
            if !known.contains(&k.as_str()) {
                return Err(Error::InvalidOption(format!(
                    "unknown option '{k}' for the {driver} driver (accepted: {})",
                    known.join(", ")
                )));
            }
        }
        Ok(())
    }

    /// All pairs, in order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.pairs.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }
}

/// Data a driver asks the host to keep for it (returned by
/// `create_network`/`connect`, given back on later calls).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Data {
    pairs: Vec<(String, String)>,
}

impl Data {
    /// Empty data.
    pub fn new() -> Self {
        Data::default()
    }

    /// Adds or replaces `key`.
    pub fn with(mut self, key: &str, value: impl ToString) -> Self {
        self.set(key, value);
        self
    }

    /// Adds or replaces `key`.
    pub fn set(&mut self, key: &str, value: impl ToString) {
        let value = value.to_string();
        match self.pairs.iter_mut().find(|(k, _)| k == key) {
            Some(slot) => slot.1 = value,
            None => self.pairs.push((key.to_string(), value)),
        }
    }

    /// The value of `key`, if set.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.pairs
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// The value of `key`, or an error saying the network's state is incomplete.
    pub fn require(&self, key: &str) -> Result<&str> {
        self.get(key).ok_or_else(|| {
            Error::NotFound(format!(
                "driver data '{key}' is missing; the state is incomplete"
            ))
        })
    }

    /// All pairs, in insertion order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.pairs.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }
}

/// A network as the host validated and recorded it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Network {
    /// 64 hex characters.
    pub id: String,
    /// The user's name for the network.
    pub name: String,
    /// The subnet, host bits cleared.
    pub subnet: Ipv4Net,
    /// The gateway address the host reserved for this network.
    pub gateway: Ipv4Addr,
    /// The `-o key=value` options.
    pub options: Options,
    /// What `create_network` returned (empty during it).
    pub data: Data,
}

impl Network {
    /// The gateway with the subnet's prefix length (to put on a bridge).
    pub fn gateway_cidr(&self) -> Ipv4Net {
        Ipv4Net::new(self.gateway, self.subnet.prefix_len()).expect("prefix from a valid subnet")
    }
}

/// Transport protocol of a published port.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Protocol {
    /// TCP.
    Tcp,
    /// UDP.
    Udp,
}

/// `-p [HOST-IP:]HOST-PORT:CONTAINER-PORT[/PROTOCOL]`
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PortMapping {
    /// Only traffic to this host address is published; `None` = any local address.
    pub host_ip: Option<Ipv4Addr>,
    /// The port on the host.
    pub host_port: u16,
    /// The port in the container it forwards to.
    pub container_port: u16,
    /// TCP or UDP.
    pub protocol: Protocol,
}

/// One container joining one network.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    /// The network being joined.
    pub network: Network,
    /// The container's id (64 hex characters).
    pub container_id: String,
    /// Name the container-side interface must get ("eth0", "eth1", ...).
    pub interface: String,
    /// The allocated address with the subnet's prefix length.
    pub address: Ipv4Net,
    /// The network's gateway, for the container's default route.
    pub gateway: Ipv4Addr,
    /// Ports to publish to `address`.
    pub ports: Vec<PortMapping>,
    /// What `connect` returned (empty during it).
    pub data: Data,
}

impl Endpoint {
    /// Whether this is the container's first network, which provides its
    /// default route (as in Docker).
    pub fn is_primary(&self) -> bool {
        self.interface == "eth0"
    }
}

/// What `connect` reports back.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Joined {
    /// The host-side interface, if any.
    pub host_interface: Option<String>,
    /// Data the host keeps and passes back as `endpoint.data` at `disconnect`.
    pub data: Data,
}

/// Which namespace an operation applies to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Netns {
    /// The host's own namespace.
    Host,
    /// The container of the `connect`/`disconnect` in progress.
    Container,
}

/// The kernel's macvlan modes (see ip-link(8)).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MacvlanMode {
    /// Macvlans on the same parent talk to each other directly.
    Bridge,
    /// Macvlans on the same parent cannot talk to each other.
    Private,
    /// Traffic between macvlans on the same parent goes out via the external switch.
    Vepa,
    /// A single macvlan takes over the parent (one per parent).
    Passthru,
}

/// The kernel's ipvlan modes (see ip-link(8)).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum IpvlanMode {
    /// Layer 2: switching on the parent, ARP and broadcast work.
    L2,
    /// Layer 3: routing on the parent, no broadcast or multicast.
    L3,
    /// Like `L3`, but traffic also passes the host's netfilter (conntrack).
    L3s,
}

/// What the host reports about an existing link.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkInfo {
    /// The link's name.
    pub name: String,
    /// "bridge", "veth", "macvlan", "ipvlan", "dummy", ... or "" if none.
    pub kind: String,
    /// The link's MTU.
    pub mtu: u32,
    /// "aa:bb:cc:dd:ee:ff", or "" for links without one.
    pub mac: String,
    /// Whether the link is administratively up.
    pub up: bool,
}

/// Allow-listed sysctls.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Sysctl {
    /// net.ipv4.ip_forward of the host namespace.
    IpForward,
}

/// Severity of a log line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    /// Detail for debugging.
    Debug,
    /// Normal progress.
    Info,
    /// Something unexpected that did not fail the call.
    Warn,
    /// A failure.
    Error,
}

/// Capabilities a driver can ask for in [`Info::capabilities`].
pub mod capability {
    /// [`Host::create_bridge`](crate::Host::create_bridge).
    pub const BRIDGE: &str = "bridge";
    /// [`Host::create_veth`](crate::Host::create_veth).
    pub const VETH: &str = "veth";
    /// [`Host::create_macvlan`](crate::Host::create_macvlan).
    pub const MACVLAN: &str = "macvlan";
    /// [`Host::create_ipvlan`](crate::Host::create_ipvlan).
    pub const IPVLAN: &str = "ipvlan";
    /// [`Host::masquerade`](crate::Host::masquerade) and `unmasquerade`.
    pub const NAT: &str = "nat";
    /// [`Host::publish_ports`](crate::Host::publish_ports) and `unpublish_ports`.
    pub const PUBLISH_PORT: &str = "publish-port";
    /// [`Host::set_sysctl`](crate::Host::set_sysctl) with [`Sysctl::IpForward`](crate::Sysctl::IpForward).
    pub const SYSCTL_IP_FORWARD: &str = "sysctl:ip_forward";
}

/// What a driver says about itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Info {
    /// Registry name: a-z, 0-9, '-' and '_'.
    pub name: String,
    /// The driver's own version.
    pub version: String,
    /// One line shown in `driver list` / `driver inspect`.
    pub description: String,
    /// See [`capability`].
    pub capabilities: Vec<String>,
    /// (name, description) of each `-o` option.
    pub options: Vec<(String, String)>,
}
