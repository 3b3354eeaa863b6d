//! A recording host for native tests: run a driver's logic under plain
//! `cargo test` and assert what it asked the host to do.
//!
//! ```
//! use mydocker_driver_sdk::mock::{MockHost, Op};
//! use mydocker_driver_sdk::{Host, Netns};
//!
//! let mut host = MockHost::new();
//! host.create_veth("veth0", "eth0").unwrap();
//! assert!(host.has_link(Netns::Container, "eth0"));
//! assert_eq!(host.ops()[0], Op::CreateVeth { host: "veth0".into(), container: "eth0".into() });
//! ```

use std::collections::BTreeMap;
use std::net::Ipv4Addr;

use crate::host::Host;
use crate::types::*;

/// One call a driver made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    /// [`Host::create_bridge`]: the bridge's name.
    CreateBridge(String),
    /// [`Host::create_veth`].
    CreateVeth {
        /// The end in the host namespace.
        host: String,
        /// The end inside the container.
        container: String,
    },
    /// [`Host::create_macvlan`].
    CreateMacvlan {
        /// The link's name inside the container.
        name: String,
        /// The host link it sits on.
        parent: String,
        /// The macvlan mode.
        mode: MacvlanMode,
    },
    /// [`Host::create_ipvlan`].
    CreateIpvlan {
        /// The link's name inside the container.
        name: String,
        /// The host link it sits on.
        parent: String,
        /// The ipvlan mode.
        mode: IpvlanMode,
    },
    /// [`Host::set_master`].
    SetMaster {
        /// The host link being attached.
        name: String,
        /// The bridge it is attached to.
        master: String,
    },
    /// [`Host::set_up`]: namespace, link.
    SetUp(Netns, String),
    /// [`Host::set_mtu`]: namespace, link, MTU.
    SetMtu(Netns, String, u32),
    /// [`Host::delete_link`]: namespace, link.
    DeleteLink(Netns, String),
    /// [`Host::add_address`]: namespace, link, address.
    AddAddress(Netns, String, Ipv4Net),
    /// [`Host::delete_address`]: namespace, link, address.
    DeleteAddress(Netns, String, Ipv4Net),
    /// [`Host::add_default_route`]: namespace, gateway.
    AddDefaultRoute(Netns, Ipv4Addr),
    /// [`Host::masquerade`]: the bridge.
    Masquerade(String),
    /// [`Host::unmasquerade`]: the bridge.
    Unmasquerade(String),
    /// [`Host::publish_ports`]: the mappings.
    PublishPorts(Vec<PortMapping>),
    /// [`Host::unpublish_ports`]: the mappings.
    UnpublishPorts(Vec<PortMapping>),
    /// [`Host::set_sysctl`]: key, value.
    SetSysctl(Sysctl, String),
}

/// A host that records every mutation and keeps a model of the links, so
/// `get_link` answers consistently. Read-only calls are not recorded.
#[derive(Debug, Default)]
pub struct MockHost {
    ops: Vec<Op>,
    links: BTreeMap<(Netns, String), LinkInfo>,
    networks: Vec<Network>,
    default_route: Option<String>,
    failures: Vec<(String, Error)>,
    /// Log lines, as (level, message).
    pub logs: Vec<(Level, String)>,
}

fn link(name: &str, kind: &str) -> LinkInfo {
    LinkInfo {
        name: name.to_string(),
        kind: kind.to_string(),
        mtu: 1500,
        mac: String::new(),
        up: false,
    }
}

impl MockHost {
    /// A host namespace with only `lo` (and the container's `lo`).
    pub fn new() -> Self {
        let mut h = MockHost::default();
        h.links.insert((Netns::Host, "lo".into()), link("lo", ""));
        h.links
            .insert((Netns::Container, "lo".into()), link("lo", ""));
        h
    }

    /// Adds an existing host link (e.g. the parent of a macvlan).
    pub fn with_host_link(mut self, name: &str, kind: &str) -> Self {
        self.links
            .insert((Netns::Host, name.into()), link(name, kind));
        self
    }

    /// What `driver_networks` returns.
    pub fn with_networks(mut self, networks: Vec<Network>) -> Self {
        self.networks = networks;
        self
    }

    /// What `default_route_interface` returns.
    pub fn with_default_route(mut self, link: &str) -> Self {
        self.default_route = Some(link.into());
        self
    }

    /// Makes the next call of `operation` (the method name, e.g.
    /// "publish_ports") fail with `error`.
    pub fn fail_on(mut self, operation: &str, error: Error) -> Self {
        self.failures.push((operation.into(), error));
        self
    }

    /// Every mutation so far, in order.
    pub fn ops(&self) -> &[Op] {
        &self.ops
    }

    /// Forgets the recorded operations (the link model stays).
    pub fn clear_ops(&mut self) {
        self.ops.clear();
    }

    /// Whether the link model has `name` in `ns`.
    pub fn has_link(&self, ns: Netns, name: &str) -> bool {
        self.links.contains_key(&(ns, name.to_string()))
    }

    /// Names of the links in `ns`.
    pub fn links(&self, ns: Netns) -> Vec<String> {
        self.links
            .keys()
            .filter(|(n, _)| *n == ns)
            .map(|(_, name)| name.clone())
            .collect()
    }

    fn check(&mut self, operation: &str) -> Result<()> {
        if let Some(i) = self.failures.iter().position(|(o, _)| o == operation) {
            return Err(self.failures.remove(i).1);
        }
        Ok(())
    }

    fn create(&mut self, ns: Netns, name: &str, kind: &str) -> Result<()> {
        if self.has_link(ns, name) {
            return Err(Error::HostFailure(format!(
                "creating link {name}: already exists"
            )));
        }
        self.links.insert((ns, name.to_string()), link(name, kind));
        Ok(())
    }

    fn existing(&mut self, ns: Netns, name: &str) -> Result<&mut LinkInfo> {
        self.links
            .get_mut(&(ns, name.to_string()))
            .ok_or_else(|| Error::NotFound(format!("{name}: no such link")))
    }
}

impl Host for MockHost {
    fn create_bridge(&mut self, name: &str) -> Result<()> {
        self.check("create_bridge")?;
        self.create(Netns::Host, name, "bridge")?;
        self.ops.push(Op::CreateBridge(name.into()));
        Ok(())
    }
    fn create_veth(&mut self, host_name: &str, container_name: &str) -> Result<()> {
        self.check("create_veth")?;
        self.create(Netns::Host, host_name, "veth")?;
        self.create(Netns::Container, container_name, "veth")?;
        self.ops.push(Op::CreateVeth {
            host: host_name.into(),
            container: container_name.into(),
        });
        Ok(())
    }
    fn create_macvlan(&mut self, name: &str, parent: &str, mode: MacvlanMode) -> Result<()> {
        self.check("create_macvlan")?;
        self.existing(Netns::Host, parent)?;
        self.create(Netns::Container, name, "macvlan")?;
        self.ops.push(Op::CreateMacvlan {
            name: name.into(),
            parent: parent.into(),
            mode,
        });
        Ok(())
    }
    fn create_ipvlan(&mut self, name: &str, parent: &str, mode: IpvlanMode) -> Result<()> {
        self.check("create_ipvlan")?;
        self.existing(Netns::Host, parent)?;
        self.create(Netns::Container, name, "ipvlan")?;
        self.ops.push(Op::CreateIpvlan {
            name: name.into(),
            parent: parent.into(),
            mode,
        });
        Ok(())
    }
    fn set_master(&mut self, name: &str, master: &str) -> Result<()> {
        self.check("set_master")?;
        self.existing(Netns::Host, name)?;
        self.existing(Netns::Host, master)?;
        self.ops.push(Op::SetMaster {
            name: name.into(),
            master: master.into(),
        });
        Ok(())
    }
    fn set_up(&mut self, ns: Netns, name: &str) -> Result<()> {
        self.check("set_up")?;
        self.existing(ns, name)?.up = true;
        self.ops.push(Op::SetUp(ns, name.into()));
        Ok(())
    }
    fn set_mtu(&mut self, ns: Netns, name: &str, mtu: u32) -> Result<()> {
        self.check("set_mtu")?;
        self.existing(ns, name)?.mtu = mtu;
        self.ops.push(Op::SetMtu(ns, name.into(), mtu));
        Ok(())
    }
    fn delete_link(&mut self, ns: Netns, name: &str) -> Result<()> {
        self.check("delete_link")?;
        let kind = self.existing(ns, name)?.kind.clone();
        self.links.remove(&(ns, name.to_string()));
        if kind == "veth" {
            // Deleting one end of a veth takes the other with it; the model
            // cannot know the peer's name, so drop container veths too.
            let other = if ns == Netns::Host {
                Netns::Container
            } else {
                Netns::Host
            };
            self.links
                .retain(|(n, _), l| !(*n == other && l.kind == "veth"));
        }
        self.ops.push(Op::DeleteLink(ns, name.into()));
        Ok(())
    }
    fn get_link(&mut self, ns: Netns, name: &str) -> Result<Option<LinkInfo>> {
        self.check("get_link")?;
        Ok(self.links.get(&(ns, name.to_string())).cloned())
    }
    fn driver_networks(&mut self) -> Result<Vec<Network>> {
        self.check("driver_networks")?;
        Ok(self.networks.clone())
    }
    fn default_route_interface(&mut self) -> Result<Option<String>> {
        self.check("default_route_interface")?;
        Ok(self.default_route.clone())
    }
    fn add_address(&mut self, ns: Netns, name: &str, address: Ipv4Net) -> Result<()> {
        self.check("add_address")?;
        self.existing(ns, name)?;
        self.ops.push(Op::AddAddress(ns, name.into(), address));
        Ok(())
    }
    fn delete_address(&mut self, ns: Netns, name: &str, address: Ipv4Net) -> Result<()> {
        self.check("delete_address")?;
        self.existing(ns, name)?;
        self.ops.push(Op::DeleteAddress(ns, name.into(), address));
        Ok(())
    }
    fn add_default_route(&mut self, ns: Netns, gateway: Ipv4Addr) -> Result<()> {
        self.check("add_default_route")?;
        self.ops.push(Op::AddDefaultRoute(ns, gateway));
        Ok(())
    }
    fn masquerade(&mut self, bridge: &str) -> Result<()> {
        self.check("masquerade")?;
        self.ops.push(Op::Masquerade(bridge.into()));
        Ok(())
    }
    fn unmasquerade(&mut self, bridge: &str) -> Result<()> {
        self.check("unmasquerade")?;
        self.ops.push(Op::Unmasquerade(bridge.into()));
        Ok(())
    }
    fn publish_ports(&mut self, ports: &[PortMapping]) -> Result<()> {
        self.check("publish_ports")?;
        self.ops.push(Op::PublishPorts(ports.to_vec()));
        Ok(())
    }
    fn unpublish_ports(&mut self, ports: &[PortMapping]) -> Result<()> {
        self.check("unpublish_ports")?;
        self.ops.push(Op::UnpublishPorts(ports.to_vec()));
        Ok(())
    }
    fn set_sysctl(&mut self, key: Sysctl, value: &str) -> Result<()> {
        self.check("set_sysctl")?;
        self.ops.push(Op::SetSysctl(key, value.into()));
        Ok(())
    }
    fn log(&mut self, level: Level, message: &str) {
        self.logs.push((level, message.into()));
    }
}

/// A network for tests: `subnet` like "10.0.0.0/24", gateway = first host.
pub fn network(name: &str, subnet: &str, options: &[(&str, &str)]) -> Network {
    let subnet: Ipv4Net = subnet.parse().expect("test subnet");
    let subnet = subnet.trunc();
    let gateway = subnet.hosts().next().expect("subnet has hosts");
    Network {
        id: format!(
            "{:0>64}",
            name.bytes().map(|b| format!("{b:02x}")).collect::<String>()
        )
        .chars()
        .rev()
        .take(64)
        .collect(),
        name: name.into(),
        subnet,
        gateway,
        options: Options::new(options.iter().map(|(k, v)| (k.to_string(), v.to_string()))),
        data: Data::new(),
    }
}

/// An endpoint for tests: the n-th address of the network (n >= 2).
pub fn endpoint(network: &Network, container_id: &str, interface: &str, n: u32) -> Endpoint {
    let base = u32::from(network.subnet.network());
    Endpoint {
        network: network.clone(),
        container_id: container_id.into(),
        interface: interface.into(),
        address: Ipv4Net::new(Ipv4Addr::from(base + n), network.subnet.prefix_len())
            .expect("valid prefix"),
        gateway: network.gateway,
        ports: Vec::new(),
        data: Data::new(),
    }
}
