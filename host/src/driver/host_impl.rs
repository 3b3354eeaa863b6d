//! The host side of the contract: what a driver may do during one call.
//!
//! Every import checks, before it touches the kernel: the driver's granted
//! capabilities, the call's scope (the container namespace only during
//! connect/disconnect), ownership (a driver may change only links it made
//! for this network or endpoint) and a per-call quota of changes. Every
//! change writes its inverse to the journal first, so a failed or trapped
//! call — or a killed mydocker — can be rolled back in reverse order.

use std::collections::BTreeSet;
use std::net::Ipv4Addr;
use std::os::fd::{AsFd, OwnedFd};
use std::sync::{Arc, Mutex, OnceLock};

use ipnet::Ipv4Net;
use netlink_packet_route::link::{IpVlanMode, MacVlanMode};

use super::bindings::{to_ipv4, wit, wit_host};
use super::journal::{Journal, Undo};
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

/// Produces the other networks of the calling driver on demand.
pub type PeerSource = Box<dyn Fn() -> Result<Vec<wit::NetworkConfig>, String> + Send + Sync>;

/// Most changes one driver call may make (a runaway loop creating links
/// is stopped long before it exhausts the kernel).
pub const MAX_CHANGES_PER_CALL: usize = 256;
/// Most port mappings accepted in one publish/unpublish.
const MAX_PORTS_PER_CALL: usize = 1024;

/// Everything the host knows during one driver call.
pub struct CallContext {
    pub driver: String,
    pub grants: BTreeSet<String>,
    pub sys: Arc<HostSys>,
    pub scope: Scope,
    undo: Vec<Undo>,
    journal: Option<Arc<Mutex<Journal>>>,
    changes: usize,
    /// Links this driver owns for the network/endpoint of this call, as
    /// (in the container namespace?, name). Grows with what it creates.
    owned: BTreeSet<(bool, String)>,
    /// Links created during this call, as (in the container?, name): the
    /// host records them as owned by the network or endpoint.
    pub created: Vec<(bool, String)>,
    /// Firewall rules added during this call: the host records them as the
    /// network's or endpoint's, so garbage collection knows what is ours.
    pub created_rules: Vec<Rule>,
    /// Other networks of the same driver (`driver-networks`).
    peers: Option<PeerSource>,
    /// Record mutations instead of applying them (`--dry-run`).
    dry_run: bool,
    /// What a dry run would have done, one line per operation.
    pub planned: Vec<String>,
}

impl CallContext {
    pub fn new(driver: &str, grants: BTreeSet<String>, sys: Arc<HostSys>, scope: Scope) -> Self {
        CallContext {
            driver: driver.to_string(),
            grants,
            sys,
            scope,
            undo: Vec::new(),
            journal: None,
            changes: 0,
            owned: BTreeSet::new(),
            created: Vec::new(),
            created_rules: Vec::new(),
            peers: None,
            dry_run: false,
            planned: Vec::new(),
        }
    }

    /// Links the driver may change in this call (recorded at earlier
    /// create-network / connect calls), as (in the container?, name).
    pub fn with_owned(mut self, owned: impl IntoIterator<Item = (bool, String)>) -> Self {
        self.owned.extend(owned);
        self
    }

    /// Writes every inverse to `journal` before the change is applied. The
    /// caller keeps a handle and finishes the journal when the whole
    /// operation (driver call and bookkeeping around it) is over.
    pub fn with_journal(mut self, journal: Arc<Mutex<Journal>>) -> Self {
        self.journal = Some(journal);
        self
    }

    /// Records mutations without applying them.
    pub fn dry_run(mut self) -> Self {
        self.dry_run = true;
        self
    }

    /// Sets how `driver-networks` is answered. It is asked for only by
    /// the rare driver that needs it, so the host reads the other networks'
    /// state then, not on every call.
    pub fn with_peers(mut self, peers: PeerSource) -> Self {
        self.peers = Some(peers);
        self
    }

    /// Forgets the recorded inverses: the call succeeded.
    pub fn commit(&mut self) {
        self.undo.clear();
    }

    /// Counts one change against the quota and journals its inverse
    /// *before* the change is made. In a dry run, records `plan` instead
    /// and tells the caller to skip the change (returns false).
    fn before_change(&mut self, plan: String, inverse: Option<Undo>) -> Result<bool, DErr> {
        self.changes += 1;
        if self.changes > MAX_CHANGES_PER_CALL {
            return Err(DErr::Denied(format!(
                "driver {} exceeded its quota of {MAX_CHANGES_PER_CALL} changes in one call",
                self.driver
            )));
        }
        if self.dry_run {
            self.planned.push(plan);
            return Ok(false);
        }
        if let (Some(j), Some(step)) = (self.journal.as_ref(), inverse.as_ref()) {
            j.lock()
                .map_err(|_| DErr::HostFailure("rollback journal poisoned".into()))?
                .record(step)
                .map_err(|e| {
                    DErr::HostFailure(format!("cannot write the rollback journal: {e}"))
                })?;
        }
        Ok(true)
    }

    /// The change is applied: remember how to undo it in this process.
    fn after_change(&mut self, inverse: Option<Undo>) {
        if let Some(step) = inverse {
            self.undo.push(step);
        }
        fault_point("driver-change", self.changes);
    }

    fn require_owned(&self, container: bool, name: &str) -> Result<(), DErr> {
        if self.dry_run || self.owned.contains(&(container, name.to_string())) {
            return Ok(());
        }
        // The container's loopback belongs to the container being joined.
        if container && name == "lo" {
            return Ok(());
        }
        tracing::info!(driver = %self.driver, link = name, "denied: link not owned");
        Err(DErr::Denied(format!(
            "driver {} may not change link {name}{}: it did not create it for this network or endpoint",
            self.driver,
            if container { " in the container" } else { "" }
        )))
    }

    /// macvlan and ipvlan: a link on host link `parent`, created straight
    /// inside the container as `name`. `kind` is also the capability.
    fn create_on_parent(
        &mut self,
        kind: &str,
        config: &str,
        name: String,
        parent: String,
        create: impl FnOnce(
            &Netlink,
            &str,
            &str,
            std::os::fd::BorrowedFd<'_>,
        ) -> Result<(), NetlinkError>,
    ) -> Result<(), DErr> {
        self.require(kind)?;
        valid_name(&name)?;
        valid_name(&parent)?;
        self.container()?;
        let undo = Undo::DeleteLink {
            container: true,
            name: name.clone(),
        };
        let plan = format!("create {kind} {name} on {parent} in the container");
        if self.before_change(plan, Some(undo.clone()))? {
            let container = self.container()?;
            create(
                self.netlink_for(false)?,
                &name,
                &parent,
                container.fd.as_fd(),
            )
            .map_err(|e| unsupported_kind(e, kind, config))?;
            self.after_change(Some(undo));
        }
        self.own(true, &name);
        Ok(())
    }

    fn own(&mut self, container: bool, name: &str) {
        self.owned.insert((container, name.to_string()));
        self.created.push((container, name.to_string()));
    }

    /// Applies the recorded inverses in reverse order; returns what could
    /// not be undone (each message names the thing).
    pub fn rollback(&mut self) -> Vec<String> {
        let mut failures = Vec::new();
        let container = match &self.scope {
            Scope::Endpoint {
                container: Some(c), ..
            } => Some(&c.netlink),
            _ => None,
        };
        while let Some(step) = self.undo.pop() {
            tracing::debug!(driver = %self.driver, ?step, "rolling back");
            if let Err(e) = apply_kernel_undo(&self.sys, container, &step) {
                failures.push(e);
            }
        }
        failures
    }

    fn require(&self, capability: &str) -> Result<(), DErr> {
        if self.grants.contains(capability) {
            Ok(())
        } else {
            tracing::info!(driver = %self.driver, capability, "denied: capability not granted");
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

/// Applies one inverse to the kernel. `container` is the container's
/// namespace when still known; without it container-side steps are skipped
/// (those links die with the namespace). IPAM steps are the runtime's.
pub fn apply_kernel_undo(
    sys: &HostSys,
    container: Option<&Netlink>,
    step: &Undo,
) -> Result<(), String> {
    let nl = |in_container: bool| -> Result<Option<&Netlink>, String> {
        if in_container {
            Ok(container)
        } else {
            sys.netlink().map(Some)
        }
    };
    let ignore_missing = |r: Result<(), NetlinkError>| match r {
        Err(e) if !e.is_not_found() => Err(e.to_string()),
        _ => Ok(()),
    };
    match step {
        Undo::DeleteLink { container, name } => match nl(*container)? {
            Some(n) => ignore_missing(n.delete_link(name)),
            None => Ok(()),
        },
        Undo::DeleteAddress {
            container,
            name,
            addr,
            prefix,
        } => match nl(*container)? {
            Some(n) => ignore_missing(n.delete_address(name, *addr, *prefix)),
            None => Ok(()),
        },
        Undo::DeleteDefaultRoute { container, gateway } => {
            // A route vanishes with its link; a missing route is fine.
            if let Some(n) = nl(*container)? {
                let _ = n.delete_default_route(*gateway);
            }
            Ok(())
        }
        Undo::Firewall { add, remove } => sys
            .firewall()?
            .apply(add, remove)
            .map_err(|e| e.to_string()),
        Undo::Sysctl { key, old } => sysctl::write(*key, old).map_err(|e| e.to_string()),
        Undo::ReleaseAddress { .. } | Undo::Operation { .. } => Ok(()),
    }
}

/// Test hook: with `MYDOCKER_FAULT=<point>:<n>` in a debug build, the
/// process SIGKILLs itself at the n-th pass through `point`, to prove that
/// the journal brings the machine back.
pub fn fault_point(point: &str, n: usize) {
    #[cfg(debug_assertions)]
    if let Ok(spec) = std::env::var("MYDOCKER_FAULT") {
        if let Some((p, count)) = spec.split_once(':') {
            if p == point && count.parse::<usize>().ok() == Some(n) {
                let _ = nix::sys::signal::raise(nix::sys::signal::Signal::SIGKILL);
            }
        }
    }
    #[cfg(not(debug_assertions))]
    let _ = (point, n);
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
        if nl.link(&name).map_err(nl_err)?.is_some() {
            return Err(DErr::InvalidOption(format!(
                "a link named {name} already exists on the host"
            )));
        }
        let undo = Undo::DeleteLink {
            container: false,
            name: name.clone(),
        };
        if self.before_change(format!("create bridge {name}"), Some(undo.clone()))? {
            self.netlink_for(false)?
                .create_bridge(&name)
                .map_err(nl_err)?;
            self.after_change(Some(undo));
        }
        self.own(false, &name);
        Ok(())
    }

    fn create_veth(&mut self, host_name: String, container_name: String) -> Result<(), DErr> {
        self.require("veth")?;
        valid_name(&host_name)?;
        valid_name(&container_name)?;
        self.container()?;
        let undo = Undo::DeleteLink {
            container: false,
            name: host_name.clone(),
        };
        let plan = format!("create veth {host_name} with peer {container_name} in the container");
        if self.before_change(plan, Some(undo.clone()))? {
            let container = self.container()?;
            self.netlink_for(false)?
                .create_veth(&host_name, &container_name, container.fd.as_fd())
                .map_err(nl_err)?;
            self.after_change(Some(undo));
            // Our networks are IPv4-only; a bridge port needs no address at
            // all (see Netlink::disable_ipv6_autoconf for the cost otherwise).
            // Only an optimisation: a failure is logged, and the call stays
            // all-or-nothing for the driver.
            for (container, name) in [(false, &host_name), (true, &container_name)] {
                if let Ok(nl) = self.netlink_for(container) {
                    if let Err(e) = nl.disable_ipv6_autoconf(name) {
                        tracing::warn!(link = %name, "leaving IPv6 autoconfiguration on: {e}");
                    }
                }
            }
        }
        self.own(false, &host_name);
        self.own(true, &container_name);
        Ok(())
    }

    fn create_macvlan(
        &mut self,
        name: String,
        parent: String,
        mode: wit::MacvlanMode,
    ) -> Result<(), DErr> {
        let mode = match mode {
            wit::MacvlanMode::Bridge => MacVlanMode::Bridge,
            wit::MacvlanMode::Private => MacVlanMode::Private,
            wit::MacvlanMode::Vepa => MacVlanMode::Vepa,
            wit::MacvlanMode::Passthru => MacVlanMode::Passthrough,
        };
        self.create_on_parent("macvlan", "CONFIG_MACVLAN", name, parent, |nl, n, p, ns| {
            nl.create_macvlan(n, p, mode, ns)
        })
    }

    fn create_ipvlan(
        &mut self,
        name: String,
        parent: String,
        mode: wit::IpvlanMode,
    ) -> Result<(), DErr> {
        let mode = match mode {
            wit::IpvlanMode::L2 => IpVlanMode::L2,
            wit::IpvlanMode::L3 => IpVlanMode::L3,
            wit::IpvlanMode::L3s => IpVlanMode::L3S,
        };
        self.create_on_parent("ipvlan", "CONFIG_IPVLAN", name, parent, |nl, n, p, ns| {
            nl.create_ipvlan(n, p, mode, ns)
        })
    }

    fn set_master(&mut self, name: String, master: String) -> Result<(), DErr> {
        valid_name(&name)?;
        valid_name(&master)?;
        self.require_owned(false, &name)?;
        self.require_owned(false, &master)?;
        // The link is ours and goes away with its undo; no separate inverse.
        if self.before_change(format!("attach {name} to {master}"), None)? {
            self.netlink_for(false)?
                .set_master(&name, &master)
                .map_err(nl_err)?;
            self.after_change(None);
        }
        Ok(())
    }

    fn set_up(&mut self, ns: wit::Netns, name: String) -> Result<(), DErr> {
        valid_name(&name)?;
        let container = matches!(ns, wit::Netns::Container);
        self.require_owned(container, &name)?;
        if self.before_change(format!("set {name} up{}", where_(container)), None)? {
            self.netlink(ns)?.set_up(&name, true).map_err(nl_err)?;
            self.after_change(None);
        }
        Ok(())
    }

    fn set_mtu(&mut self, ns: wit::Netns, name: String, mtu: u32) -> Result<(), DErr> {
        valid_name(&name)?;
        if !(68..=65535).contains(&mtu) {
            return Err(DErr::InvalidOption(format!(
                "mtu {mtu} is out of range (68..=65535)"
            )));
        }
        let container = matches!(ns, wit::Netns::Container);
        self.require_owned(container, &name)?;
        if self.before_change(
            format!("set mtu {mtu} on {name}{}", where_(container)),
            None,
        )? {
            self.netlink(ns)?.set_mtu(&name, mtu).map_err(nl_err)?;
            self.after_change(None);
        }
        Ok(())
    }

    fn delete_link(&mut self, ns: wit::Netns, name: String) -> Result<(), DErr> {
        valid_name(&name)?;
        let container = matches!(ns, wit::Netns::Container);
        self.require_owned(container, &name)?;
        // Deletions happen on teardown; their inverse (re-creating) is not
        // what anyone wants after a failed teardown, so none is journaled.
        if self.before_change(format!("delete {name}{}", where_(container)), None)? {
            self.netlink(ns)?.delete_link(&name).map_err(nl_err)?;
            self.after_change(None);
        }
        Ok(())
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
        match &self.peers {
            Some(source) => source().map_err(DErr::HostFailure),
            None => Ok(Vec::new()),
        }
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
        self.require_owned(container, &name)?;
        let addr = to_ipv4(address.address);
        // Only addresses of this network: the gateway on the host side, the
        // endpoint's own address in the container.
        let subnet = self.subnet()?;
        if !subnet.contains(&addr) {
            return Err(DErr::Denied(format!(
                "address {addr} is outside the network's subnet {subnet}"
            )));
        }
        if container && self.endpoint_address()? != addr {
            return Err(DErr::Denied(format!(
                "the container may only get its own address, not {addr}"
            )));
        }
        let undo = Undo::DeleteAddress {
            container,
            name: name.clone(),
            addr,
            prefix: address.prefix_len,
        };
        let plan = format!(
            "add {addr}/{} to {name}{}",
            address.prefix_len,
            where_(container)
        );
        if self.before_change(plan, Some(undo.clone()))? {
            self.netlink(ns)?
                .add_address(&name, addr, address.prefix_len)
                .map_err(nl_err)?;
            self.after_change(Some(undo));
        }
        Ok(())
    }

    fn delete_address(
        &mut self,
        ns: wit::Netns,
        name: String,
        address: wit::Ipv4Cidr,
    ) -> Result<(), DErr> {
        valid_name(&name)?;
        let container = matches!(ns, wit::Netns::Container);
        self.require_owned(container, &name)?;
        let addr = to_ipv4(address.address);
        if self.before_change(
            format!("remove {addr} from {name}{}", where_(container)),
            None,
        )? {
            self.netlink(ns)?
                .delete_address(&name, addr, address.prefix_len)
                .map_err(nl_err)?;
            self.after_change(None);
        }
        Ok(())
    }

    fn add_default_route(&mut self, ns: wit::Netns, gateway: wit::Ipv4Address) -> Result<(), DErr> {
        if !matches!(ns, wit::Netns::Container) {
            return Err(DErr::Denied(
                "drivers may not change the host's default route".into(),
            ));
        }
        let gateway = to_ipv4(gateway);
        let subnet = self.subnet()?;
        if !subnet.contains(&gateway) {
            return Err(DErr::Denied(format!(
                "gateway {gateway} is outside the network's subnet {subnet}"
            )));
        }
        let undo = Undo::DeleteDefaultRoute {
            container: true,
            gateway,
        };
        if self.before_change(
            format!("add default route via {gateway} in the container"),
            Some(undo.clone()),
        )? {
            self.netlink(ns)?
                .add_default_route(gateway)
                .map_err(nl_err)?;
            self.after_change(Some(undo));
        }
        Ok(())
    }

    fn masquerade(&mut self, bridge: String) -> Result<(), DErr> {
        self.require("nat")?;
        valid_name(&bridge)?;
        self.require_owned(false, &bridge)?;
        let subnet = self.subnet()?;
        let rules = masquerade_rules(subnet, &bridge);
        let undo = Undo::Firewall {
            add: Vec::new(),
            remove: rules.clone(),
        };
        if self.before_change(
            format!("masquerade {subnet} leaving through anything but {bridge}"),
            Some(undo.clone()),
        )? {
            let fw = self.sys.firewall().map_err(DErr::HostFailure)?;
            fw.apply(&rules, &[])
                .map_err(|e| DErr::HostFailure(e.to_string()))?;
            self.after_change(Some(undo));
        }
        self.created_rules.extend(rules);
        Ok(())
    }

    fn unmasquerade(&mut self, bridge: String) -> Result<(), DErr> {
        self.require("nat")?;
        valid_name(&bridge)?;
        self.require_owned(false, &bridge)?;
        let rules = masquerade_rules(self.subnet()?, &bridge);
        if self.before_change(format!("stop masquerading for {bridge}"), None)? {
            let fw = self.sys.firewall().map_err(DErr::HostFailure)?;
            fw.apply(&[], &rules)
                .map_err(|e| DErr::HostFailure(e.to_string()))?;
            self.after_change(None);
        }
        Ok(())
    }

    fn publish_ports(&mut self, mappings: Vec<wit::PortMapping>) -> Result<(), DErr> {
        self.require("publish-port")?;
        if mappings.len() > MAX_PORTS_PER_CALL {
            return Err(DErr::Denied(format!(
                "at most {MAX_PORTS_PER_CALL} port mappings per call"
            )));
        }
        // The destination is always the endpoint's own address: a driver
        // cannot point a published port anywhere else.
        let dest = self.endpoint_address()?;
        let rules = port_rules(&mappings, dest)?;
        if rules.is_empty() {
            return Ok(());
        }
        let undo = Undo::Firewall {
            add: Vec::new(),
            remove: rules.clone(),
        };
        if self.before_change(
            format!("publish {} port(s) to {dest}", rules.len()),
            Some(undo.clone()),
        )? {
            let fw = self.sys.firewall().map_err(DErr::HostFailure)?;
            fw.apply(&rules, &[])
                .map_err(|e| DErr::HostFailure(e.to_string()))?;
            self.after_change(Some(undo));
        }
        self.created_rules.extend(rules);
        Ok(())
    }

    fn unpublish_ports(&mut self, mappings: Vec<wit::PortMapping>) -> Result<(), DErr> {
        self.require("publish-port")?;
        if mappings.len() > MAX_PORTS_PER_CALL {
            return Err(DErr::Denied(format!(
                "at most {MAX_PORTS_PER_CALL} port mappings per call"
            )));
        }
        let rules = port_rules(&mappings, self.endpoint_address()?)?;
        if rules.is_empty() {
            return Ok(());
        }
        if self.before_change(format!("unpublish {} port(s)", rules.len()), None)? {
            let fw = self.sys.firewall().map_err(DErr::HostFailure)?;
            fw.apply(&[], &rules)
                .map_err(|e| DErr::HostFailure(e.to_string()))?;
            self.after_change(None);
        }
        Ok(())
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
        let undo = Undo::Sysctl { key, old };
        if self.before_change(format!("set {} = {value}", key.name()), Some(undo.clone()))? {
            sysctl::write(key, &value).map_err(|e| DErr::HostFailure(e.to_string()))?;
            self.after_change(Some(undo));
        }
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

fn where_(container: bool) -> &'static str {
    if container {
        " in the container"
    } else {
        ""
    }
}
