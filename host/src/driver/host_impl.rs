//! The host side of the contract: what a driver may do during one call.
//!
//! Every import checks the driver's granted capabilities and the call's
//! scope before it touches the kernel, and every change it makes pushes its
//! inverse onto `undo`, so a failed or trapped call can be rolled back in
//! reverse order.

use std::collections::BTreeSet;
use std::net::Ipv4Addr;
use std::os::fd::{AsFd, OwnedFd};
use std::sync::{Arc, OnceLock};

use ipnet::Ipv4Net;
use netlink_packet_route::link::{IpVlanMode, MacVlanMode};

use super::bindings::{to_ipv4, wit, wit_host};
use crate::sys::firewall::{Firewall, Protocol, Rule};
use crate::sys::netlink::{Netlink, NetlinkError};
use crate::sys::sysctl::{self, Sysctl};

type DErr = wit::DriverError;

/// Privileged handles shared by all calls of one mydocker process, opened on
/// first use (a `network list` never opens a netlink socket).
#[derive(Default)]
pub struct HostSys {
    netlink: OnceLock<Result<Netlink, String>>,
    firewall: OnceLock<Result<Firewall, String>>,
}

impl HostSys {
    pub fn new() -> Arc<HostSys> {
        Arc::new(HostSys::default())
    }

    pub fn netlink(&self) -> Result<&Netlink, String> {
        self.netlink
            .get_or_init(|| Netlink::open_current().map_err(|e| e.to_string()))
            .as_ref()
            .map_err(Clone::clone)
    }

    pub fn firewall(&self) -> Result<&Firewall, String> {
        self.firewall
            .get_or_init(|| Firewall::new().map_err(|e| e.to_string()))
            .as_ref()
            .map_err(Clone::clone)
    }
}

/// The container namespace of the `connect`/`disconnect` in progress.
pub struct ContainerNs {
    pub fd: OwnedFd,
    pub netlink: Netlink,
}

impl ContainerNs {
    pub fn open(fd: OwnedFd) -> Result<ContainerNs, NetlinkError> {
        let netlink = Netlink::open_in(fd.as_fd())?;
        Ok(ContainerNs { fd, netlink })
    }
}

/// What the call in progress is about; bounds what the driver may touch.
pub enum Scope {
    /// `info()`: no host access at all.
    Info,
    /// `create-network` / `delete-network`.
    Network { subnet: Ipv4Net },
    /// `connect` / `disconnect` of one endpoint.
    Endpoint {
        subnet: Ipv4Net,
        address: Ipv4Addr,
        /// `None` when the container's namespace no longer exists (its
        /// links died with it); container operations then fail NotFound.
        container: Option<ContainerNs>,
    },
}

/// One recorded inverse of a change a driver made.
#[derive(Debug)]
enum Undo {
    DeleteLink {
        container: bool,
        name: String,
    },
    DeleteAddress {
        container: bool,
        name: String,
        addr: Ipv4Addr,
        prefix: u8,
    },
    DeleteDefaultRoute {
        container: bool,
        gateway: Ipv4Addr,
    },
    Firewall {
        add: Vec<Rule>,
        remove: Vec<Rule>,
    },
    Sysctl {
        key: Sysctl,
        old: String,
    },
}

/// Everything the host knows during one driver call.
pub struct CallContext {
    pub driver: String,
    pub grants: BTreeSet<String>,
    pub sys: Arc<HostSys>,
    pub scope: Scope,
    undo: Vec<Undo>,
    /// Host links created during this call (name), for reporting.
    pub created_links: Vec<String>,
    /// Other networks of the same driver (`driver-networks`).
    pub peers: Vec<wit::NetworkConfig>,
}

impl CallContext {
    pub fn new(driver: &str, grants: BTreeSet<String>, sys: Arc<HostSys>, scope: Scope) -> Self {
        CallContext {
            driver: driver.to_string(),
            grants,
            sys,
            scope,
            undo: Vec::new(),
            created_links: Vec::new(),
            peers: Vec::new(),
        }
    }

    /// Sets what `driver-networks` returns.
    pub fn with_peers(mut self, peers: Vec<wit::NetworkConfig>) -> Self {
        self.peers = peers;
        self
    }

    /// Forgets the recorded inverses: the call succeeded.
    pub fn commit(&mut self) {
        self.undo.clear();
    }

    /// Applies the recorded inverses in reverse order; returns what could
    /// not be undone (each message names the thing).
    pub fn rollback(&mut self) -> Vec<String> {
        let mut failures = Vec::new();
        while let Some(step) = self.undo.pop() {
            tracing::debug!(driver = %self.driver, ?step, "rolling back");
            if let Err(e) = self.apply_undo(&step) {
                failures.push(e);
            }
        }
        failures
    }

    fn apply_undo(&self, step: &Undo) -> Result<(), String> {
        let ignore_missing = |r: Result<(), NetlinkError>| match r {
            Err(e) if !e.is_not_found() => Err(e.to_string()),
            _ => Ok(()),
        };
        match step {
            Undo::DeleteLink { container, name } => ignore_missing(
                self.netlink_for(*container)
                    .map_err(err_text)?
                    .delete_link(name),
            ),
            Undo::DeleteAddress {
                container,
                name,
                addr,
                prefix,
            } => ignore_missing(
                self.netlink_for(*container)
                    .map_err(err_text)?
                    .delete_address(name, *addr, *prefix),
            ),
            Undo::DeleteDefaultRoute { container, gateway } => {
                // A route vanishes with its link; a missing route is fine.
                let _ = self
                    .netlink_for(*container)
                    .map_err(err_text)?
                    .delete_default_route(*gateway);
                Ok(())
            }
            Undo::Firewall { add, remove } => self
                .sys
                .firewall()?
                .apply(add, remove)
                .map_err(|e| e.to_string()),
            Undo::Sysctl { key, old } => sysctl::write(*key, old).map_err(|e| e.to_string()),
        }
    }

    fn require(&self, capability: &str) -> Result<(), DErr> {
        if self.grants.contains(capability) {
            Ok(())
        } else {
            tracing::warn!(driver = %self.driver, capability, "denied: capability not granted");
            Err(DErr::Denied(format!(
                "driver {} was not granted capability '{capability}'",
                self.driver
            )))
        }
    }

    fn container(&self) -> Result<&ContainerNs, DErr> {
        match &self.scope {
            Scope::Endpoint {
                container: Some(container),
                ..
            } => Ok(container),
            Scope::Endpoint {
                container: None, ..
            } => Err(DErr::NotFound(
                "the container's network namespace no longer exists".into(),
            )),
            _ => Err(DErr::Denied(
                "the container namespace is only reachable during connect and disconnect".into(),
            )),
        }
    }

    fn netlink_for(&self, container: bool) -> Result<&Netlink, DErr> {
        if matches!(self.scope, Scope::Info) {
            return Err(DErr::Denied("info() may not call the host".into()));
        }
        if container {
            Ok(&self.container()?.netlink)
        } else {
            self.sys.netlink().map_err(DErr::HostFailure)
        }
    }

    fn netlink(&self, ns: wit::Netns) -> Result<&Netlink, DErr> {
        self.netlink_for(matches!(ns, wit::Netns::Container))
    }

    fn subnet(&self) -> Result<Ipv4Net, DErr> {
        match &self.scope {
            Scope::Network { subnet } | Scope::Endpoint { subnet, .. } => Ok(*subnet),
            Scope::Info => Err(DErr::Denied("info() may not call the host".into())),
        }
    }

    fn endpoint_address(&self) -> Result<Ipv4Addr, DErr> {
        match &self.scope {
            Scope::Endpoint { address, .. } => Ok(*address),
            _ => Err(DErr::Denied(
                "ports can only be published during connect and disconnect".into(),
            )),
        }
    }
}

fn err_text(e: DErr) -> String {
    e.to_string()
}

fn valid_name(name: &str) -> Result<(), DErr> {
    match crate::sys::interface_name_problem(name) {
        None => Ok(()),
        Some(why) => Err(DErr::InvalidOption(format!(
            "'{name}' is not a valid interface name: {why}"
        ))),
    }
}

fn nl_err(e: NetlinkError) -> DErr {
    match e {
        NetlinkError::NotFound { .. } => DErr::NotFound(e.to_string()),
        other => DErr::HostFailure(other.to_string()),
    }
}

/// EOPNOTSUPP when creating a link means the kernel lacks that link type.
fn unsupported_kind(e: NetlinkError, kind: &str, config: &str) -> DErr {
    if e.to_string().contains("Operation not supported") {
        return DErr::HostFailure(format!(
            "this kernel cannot create {kind} links ({config} is not enabled)"
        ));
    }
    nl_err(e)
}

fn port_rules(mappings: &[wit::PortMapping], dest: Ipv4Addr) -> Result<Vec<Rule>, DErr> {
    mappings
        .iter()
        .map(|m| {
            if m.host_port == 0 || m.container_port == 0 {
                return Err(DErr::InvalidOption(format!(
                    "port mapping {}:{} uses port 0",
                    m.host_port, m.container_port
                )));
            }
            Ok(Rule::PublishPort {
                protocol: match m.protocol {
                    wit::Protocol::Tcp => Protocol::Tcp,
                    wit::Protocol::Udp => Protocol::Udp,
                },
                host_ip: m.host_ip.map(to_ipv4),
                host_port: m.host_port,
                dest,
                dest_port: m.container_port,
            })
        })
        .collect()
}

fn masquerade_rules(subnet: Ipv4Net, bridge: &str) -> Vec<Rule> {
    vec![
        Rule::Masquerade {
            subnet,
            bridge: bridge.to_string(),
        },
        Rule::ForwardBridge {
            bridge: bridge.to_string(),
        },
    ]
}

impl wit::Host for CallContext {}

impl wit_host::Host for CallContext {
    fn create_bridge(&mut self, name: String) -> Result<(), DErr> {
        self.require("bridge")?;
        valid_name(&name)?;
        let nl = self.netlink_for(false)?;
        nl.create_bridge(&name).map_err(nl_err)?;
        self.created_links.push(name.clone());
        self.undo.push(Undo::DeleteLink {
            container: false,
            name,
        });
        Ok(())
    }

    fn create_veth(&mut self, host_name: String, container_name: String) -> Result<(), DErr> {
        self.require("veth")?;
        valid_name(&host_name)?;
        valid_name(&container_name)?;
        let container = self.container()?;
        let nl = self.netlink_for(false)?;
        nl.create_veth(&host_name, &container_name, container.fd.as_fd())
            .map_err(nl_err)?;
        self.created_links.push(host_name.clone());
        self.undo.push(Undo::DeleteLink {
            container: false,
            name: host_name,
        });
        Ok(())
    }

    fn create_macvlan(
        &mut self,
        name: String,
        parent: String,
        mode: wit::MacvlanMode,
    ) -> Result<(), DErr> {
        self.require("macvlan")?;
        valid_name(&name)?;
        valid_name(&parent)?;
        let mode = match mode {
            wit::MacvlanMode::Bridge => MacVlanMode::Bridge,
            wit::MacvlanMode::Private => MacVlanMode::Private,
            wit::MacvlanMode::Vepa => MacVlanMode::Vepa,
            wit::MacvlanMode::Passthru => MacVlanMode::Passthrough,
        };
        let container = self.container()?;
        let nl = self.netlink_for(false)?;
        nl.create_macvlan(&name, &parent, mode, container.fd.as_fd())
            .map_err(|e| unsupported_kind(e, "macvlan", "CONFIG_MACVLAN"))?;
        self.undo.push(Undo::DeleteLink {
            container: true,
            name,
        });
        Ok(())
    }

    fn create_ipvlan(
        &mut self,
        name: String,
        parent: String,
        mode: wit::IpvlanMode,
    ) -> Result<(), DErr> {
        self.require("ipvlan")?;
        valid_name(&name)?;
        valid_name(&parent)?;
        let mode = match mode {
            wit::IpvlanMode::L2 => IpVlanMode::L2,
            wit::IpvlanMode::L3 => IpVlanMode::L3,
            wit::IpvlanMode::L3s => IpVlanMode::L3S,
        };
        let container = self.container()?;
        let nl = self.netlink_for(false)?;
        nl.create_ipvlan(&name, &parent, mode, container.fd.as_fd())
            .map_err(|e| unsupported_kind(e, "ipvlan", "CONFIG_IPVLAN"))?;
        self.undo.push(Undo::DeleteLink {
            container: true,
            name,
        });
        Ok(())
    }

    fn set_master(&mut self, name: String, master: String) -> Result<(), DErr> {
        valid_name(&name)?;
        valid_name(&master)?;
        self.netlink_for(false)?
            .set_master(&name, &master)
            .map_err(nl_err)
    }

    fn set_up(&mut self, ns: wit::Netns, name: String) -> Result<(), DErr> {
        valid_name(&name)?;
        self.netlink(ns)?.set_up(&name, true).map_err(nl_err)
    }

    fn set_mtu(&mut self, ns: wit::Netns, name: String, mtu: u32) -> Result<(), DErr> {
        valid_name(&name)?;
        if !(68..=65535).contains(&mtu) {
            return Err(DErr::InvalidOption(format!(
                "mtu {mtu} is out of range (68..=65535)"
            )));
        }
        self.netlink(ns)?.set_mtu(&name, mtu).map_err(nl_err)
    }

    fn delete_link(&mut self, ns: wit::Netns, name: String) -> Result<(), DErr> {
        valid_name(&name)?;
        self.netlink(ns)?.delete_link(&name).map_err(nl_err)
    }

    fn get_link(&mut self, ns: wit::Netns, name: String) -> Result<Option<wit::LinkInfo>, DErr> {
        valid_name(&name)?;
        let link = self.netlink(ns)?.link(&name).map_err(nl_err)?;
        Ok(link.map(|l| wit::LinkInfo {
            name: l.name,
            kind: l.kind,
            mtu: l.mtu,
            mac: l.mac,
            up: l.up,
        }))
    }

    fn driver_networks(&mut self) -> Result<Vec<wit::NetworkConfig>, DErr> {
        if matches!(self.scope, Scope::Info) {
            return Err(DErr::Denied("info() may not call the host".into()));
        }
        Ok(self.peers.clone())
    }

    fn default_route_interface(&mut self) -> Result<Option<String>, DErr> {
        self.netlink_for(false)?
            .default_route_interface()
            .map_err(nl_err)
    }

    fn add_address(
        &mut self,
        ns: wit::Netns,
        name: String,
        address: wit::Ipv4Cidr,
    ) -> Result<(), DErr> {
        valid_name(&name)?;
        if address.prefix_len > 32 {
            return Err(DErr::InvalidOption(format!(
                "prefix length {} is out of range",
                address.prefix_len
            )));
        }
        let container = matches!(ns, wit::Netns::Container);
        let addr = to_ipv4(address.address);
        self.netlink(ns)?
            .add_address(&name, addr, address.prefix_len)
            .map_err(nl_err)?;
        self.undo.push(Undo::DeleteAddress {
            container,
            name,
            addr,
            prefix: address.prefix_len,
        });
        Ok(())
    }

    fn delete_address(
        &mut self,
        ns: wit::Netns,
        name: String,
        address: wit::Ipv4Cidr,
    ) -> Result<(), DErr> {
        valid_name(&name)?;
        self.netlink(ns)?
            .delete_address(&name, to_ipv4(address.address), address.prefix_len)
            .map_err(nl_err)
    }

    fn add_default_route(&mut self, ns: wit::Netns, gateway: wit::Ipv4Address) -> Result<(), DErr> {
        let container = matches!(ns, wit::Netns::Container);
        let gateway = to_ipv4(gateway);
        self.netlink(ns)?
            .add_default_route(gateway)
            .map_err(nl_err)?;
        self.undo
            .push(Undo::DeleteDefaultRoute { container, gateway });
        Ok(())
    }

    fn masquerade(&mut self, bridge: String) -> Result<(), DErr> {
        self.require("nat")?;
        valid_name(&bridge)?;
        let rules = masquerade_rules(self.subnet()?, &bridge);
        let fw = self.sys.firewall().map_err(DErr::HostFailure)?;
        fw.apply(&rules, &[])
            .map_err(|e| DErr::HostFailure(e.to_string()))?;
        self.undo.push(Undo::Firewall {
            add: Vec::new(),
            remove: rules,
        });
        Ok(())
    }

    fn unmasquerade(&mut self, bridge: String) -> Result<(), DErr> {
        self.require("nat")?;
        valid_name(&bridge)?;
        let rules = masquerade_rules(self.subnet()?, &bridge);
        let fw = self.sys.firewall().map_err(DErr::HostFailure)?;
        fw.apply(&[], &rules)
            .map_err(|e| DErr::HostFailure(e.to_string()))
    }

    fn publish_ports(&mut self, mappings: Vec<wit::PortMapping>) -> Result<(), DErr> {
        self.require("publish-port")?;
        let rules = port_rules(&mappings, self.endpoint_address()?)?;
        if rules.is_empty() {
            return Ok(());
        }
        let fw = self.sys.firewall().map_err(DErr::HostFailure)?;
        fw.apply(&rules, &[])
            .map_err(|e| DErr::HostFailure(e.to_string()))?;
        self.undo.push(Undo::Firewall {
            add: Vec::new(),
            remove: rules,
        });
        Ok(())
    }

    fn unpublish_ports(&mut self, mappings: Vec<wit::PortMapping>) -> Result<(), DErr> {
        self.require("publish-port")?;
        let rules = port_rules(&mappings, self.endpoint_address()?)?;
        if rules.is_empty() {
            return Ok(());
        }
        let fw = self.sys.firewall().map_err(DErr::HostFailure)?;
        fw.apply(&[], &rules)
            .map_err(|e| DErr::HostFailure(e.to_string()))
    }

    fn set_sysctl(&mut self, key: wit::Sysctl, value: String) -> Result<(), DErr> {
        let (cap, key) = match key {
            wit::Sysctl::IpForward => ("sysctl:ip_forward", Sysctl::Ipv4Forward),
        };
        self.require(cap)?;
        if matches!(self.scope, Scope::Info) {
            return Err(DErr::Denied("info() may not call the host".into()));
        }
        if value != "0" && value != "1" {
            return Err(DErr::InvalidOption(format!(
                "{} accepts 0 or 1, not '{value}'",
                key.name()
            )));
        }
        let old = sysctl::read(key).map_err(|e| DErr::HostFailure(e.to_string()))?;
        if old == value {
            return Ok(());
        }
        sysctl::write(key, &value).map_err(|e| DErr::HostFailure(e.to_string()))?;
        self.undo.push(Undo::Sysctl { key, old });
        Ok(())
    }

    fn log(&mut self, level: wit::LogLevel, message: String) {
        // Bounded so a driver cannot flood the terminal with one call.
        let message: String = message.chars().take(4096).collect();
        let driver = &self.driver;
        match level {
            wit::LogLevel::Debug => tracing::debug!(driver = %driver, "{message}"),
            wit::LogLevel::Info => tracing::info!(driver = %driver, "{message}"),
            wit::LogLevel::Warn => tracing::warn!(driver = %driver, "{message}"),
            wit::LogLevel::Error => tracing::error!(driver = %driver, "{message}"),
        }
    }
}
