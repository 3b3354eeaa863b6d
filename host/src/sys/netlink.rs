//! Links, addresses and routes through rtnetlink, behind a blocking API.
//!
//! rtnetlink is async; the rest of mydocker is synchronous (wasmtime host
//! calls are sync), so each [`Netlink`] owns a small current-thread tokio
//! runtime and blocks on it. A netlink socket stays bound to the network
//! namespace it was opened in, which is how we talk to a container's
//! namespace without moving the whole process: [`Netlink::open_in`] opens the
//! socket on a short-lived thread that has `setns`-ed into the target.

use std::net::{IpAddr, Ipv4Addr};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd};

use futures::TryStreamExt;
use netlink_packet_route::address::AddressAttribute;
use netlink_packet_route::link::{
    AfSpecInet6, AfSpecUnspec, In6AddrGenMode, InfoData, InfoKind, InfoVeth, IpVlanMode,
    LinkAttribute, LinkFlags, LinkInfo, LinkMessage, MacVlanMode,
};
use netlink_packet_route::route::{RouteAddress, RouteAttribute, RouteMessage};
use rtnetlink::{
    Handle, LinkBridge, LinkIpVlan, LinkMacVlan, LinkMessageBuilder, LinkUnspec, LinkVeth,
    RouteMessageBuilder,
};

/// A failed netlink operation, naming what was being done to what.
#[derive(Debug, thiserror::Error)]
pub enum NetlinkError {
    #[error("{op} {target}: no such link")]
    NotFound { op: &'static str, target: String },
    #[error("{op} {target}: already exists")]
    AlreadyExists { op: &'static str, target: String },
    #[error("{op} {target}: {message}")]
    Kernel {
        op: &'static str,
        target: String,
        message: String,
        /// The kernel's errno, when it gave one.
        errno: Option<i32>,
    },
    #[error("cannot open a netlink socket: {0}")]
    Open(String),
}

impl NetlinkError {
    fn from_rtnl(op: &'static str, target: impl Into<String>, err: rtnetlink::Error) -> Self {
        let target = target.into();
        if let rtnetlink::Error::NetlinkError(msg) = &err {
            if let Some(code) = msg.code {
                let errno = -code.get();
                if errno == libc::ENODEV {
                    return NetlinkError::NotFound { op, target };
                }
                if errno == libc::EEXIST {
                    return NetlinkError::AlreadyExists { op, target };
                }
                return NetlinkError::Kernel {
                    op,
                    target,
                    message: std::io::Error::from_raw_os_error(errno).to_string(),
                    errno: Some(errno),
                };
            }
        }
        NetlinkError::Kernel {
            op,
            target,
            message: err.to_string(),
            errno: None,
        }
    }

    pub fn is_not_found(&self) -> bool {
        matches!(self, NetlinkError::NotFound { .. })
    }
}

type Result<T> = std::result::Result<T, NetlinkError>;

/// What we report about a link.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkDetails {
    pub index: u32,
    pub name: String,
    pub kind: String,
    pub mtu: u32,
    pub mac: String,
    pub up: bool,
    /// Index of the bridge this link is attached to, if any.
    pub master: Option<u32>,
}

/// A netlink connection bound to one network namespace.
pub struct Netlink {
    rt: tokio::runtime::Runtime,
    handle: Handle,
}

fn new_runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .build()
        .map_err(|e| NetlinkError::Open(e.to_string()))
}

impl Netlink {
    /// Opens a connection in the calling thread's network namespace.
    pub fn open_current() -> Result<Netlink> {
        let rt = new_runtime()?;
        let handle = {
            let _enter = rt.enter();
            let (conn, handle, _) =
                rtnetlink::new_connection().map_err(|e| NetlinkError::Open(e.to_string()))?;
            rt.spawn(conn);
            handle
        };
        Ok(Netlink { rt, handle })
    }

    /// Opens a connection inside the network namespace referred to by `netns`
    /// (an open `/proc/PID/ns/net` or bind-mounted nsfs file).
    pub fn open_in(netns: BorrowedFd<'_>) -> Result<Netlink> {
        let rt = new_runtime()?;
        let netns = netns
            .try_clone_to_owned()
            .map_err(|e| NetlinkError::Open(format!("duplicating the netns descriptor: {e}")))?;
        let rt_handle = rt.handle().clone();
        // setns only affects the calling thread, and the socket keeps the
        // namespace it was created in, so a throwaway thread does the switch
        // and the rest of the process never leaves its own namespace.
        let opened = std::thread::spawn(move || {
            nix::sched::setns(netns.as_fd(), nix::sched::CloneFlags::CLONE_NEWNET)
                .map_err(|e| NetlinkError::Open(format!("entering the container netns: {e}")))?;
            let _enter = rt_handle.enter();
            let (conn, handle, _) =
                rtnetlink::new_connection().map_err(|e| NetlinkError::Open(e.to_string()))?;
            Ok::<_, NetlinkError>((conn, handle))
        })
        .join()
        .map_err(|_| NetlinkError::Open("netns thread panicked".into()))??;
        let (conn, handle) = opened;
        rt.spawn(conn);
        Ok(Netlink { rt, handle })
    }

    fn link_message(&self, name: &str) -> Result<Option<LinkMessage>> {
        let mut req = self
            .handle
            .link()
            .get()
            .match_name(name.to_string())
            .execute();
        match self.rt.block_on(req.try_next()) {
            Ok(msg) => Ok(msg),
            Err(e) => match NetlinkError::from_rtnl("looking up link", name, e) {
                NetlinkError::NotFound { .. } => Ok(None),
                other => Err(other),
            },
        }
    }

    fn index_of(&self, op: &'static str, name: &str) -> Result<u32> {
        match self.link_message(name)? {
            Some(msg) => Ok(msg.header.index),
            None => Err(NetlinkError::NotFound {
                op,
                target: name.to_string(),
            }),
        }
    }

    fn name_of(&self, index: u32) -> Result<Option<String>> {
        let mut req = self.handle.link().get().match_index(index).execute();
        match self.rt.block_on(req.try_next()) {
            Ok(Some(msg)) => Ok(Some(details_of(&msg).name)),
            Ok(None) => Ok(None),
            Err(e) => match NetlinkError::from_rtnl("looking up link", index.to_string(), e) {
                NetlinkError::NotFound { .. } => Ok(None),
                other => Err(other),
            },
        }
    }

    /// The link's details, or `None` if there is no link of that name.
    pub fn link(&self, name: &str) -> Result<Option<LinkDetails>> {
        Ok(self.link_message(name)?.as_ref().map(details_of))
    }

    /// All links of this namespace.
    pub fn links(&self) -> Result<Vec<LinkDetails>> {
        let req = self.handle.link().get().execute();
        let msgs: Vec<LinkMessage> = self
            .rt
            .block_on(req.try_collect())
            .map_err(|e| NetlinkError::from_rtnl("listing links", "", e))?;
        Ok(msgs.iter().map(details_of).collect())
    }

    fn add_link(&self, target: &str, msg: LinkMessage) -> Result<()> {
        let req = self.handle.link().add(msg);
        self.rt
            .block_on(req.execute())
            .map_err(|e| NetlinkError::from_rtnl("creating link", target, e))
    }

    /// Changes a link. Messages name the link rather than carry its index:
    /// the kernel looks the name up itself (RTM_SETLINK with index 0), which
    /// saves a lookup round trip per change.
    fn set_link(&self, op: &'static str, target: &str, msg: LinkMessage) -> Result<()> {
        let req = self.handle.link().set(msg);
        self.rt
            .block_on(req.execute())
            .map_err(|e| NetlinkError::from_rtnl(op, target, e))
    }

    /// Creates a bridge, left down.
    pub fn create_bridge(&self, name: &str) -> Result<()> {
        self.add_link(name, LinkMessageBuilder::<LinkBridge>::new(name).build())
    }

    /// Creates a veth pair whose `peer` end is created directly in the
    /// namespace `peer_netns` (a veth end created in the host first would
    /// clash with host links named like the container's `eth0`).
    ///
    /// Both ends are created with one TX and one RX queue. Otherwise the
    /// kernel sizes them for every possible CPU and then shrinks them to one
    /// (veth_init_queues), and shrinking a registered device waits for an
    /// expedited RCU grace period while holding the RTNL lock: 0.5-1.3 ms per
    /// veth on a 2-core VM, growing with load, and serializing every other
    /// netlink user meanwhile.
    pub fn create_veth(&self, name: &str, peer: &str, peer_netns: BorrowedFd<'_>) -> Result<()> {
        let mut peer_msg = LinkUnspec::new_with_name(peer)
            .setns_by_fd(peer_netns.as_raw_fd())
            .build();
        with_one_queue(&mut peer_msg);
        let mut msg = LinkVeth::new(name, peer)
            .set_info_data(InfoData::Veth(InfoVeth::Peer(peer_msg)))
            .build();
        with_one_queue(&mut msg);
        self.add_link(name, msg)
    }

    /// Creates a macvlan on `parent` (a link of this namespace), directly
    /// inside `netns` under `name`.
    pub fn create_macvlan(
        &self,
        name: &str,
        parent: &str,
        mode: MacVlanMode,
        netns: BorrowedFd<'_>,
    ) -> Result<()> {
        let parent_index = self.index_of("creating macvlan on", parent)?;
        let msg = LinkMacVlan::new(name, parent_index, mode)
            .setns_by_fd(netns.as_raw_fd())
            .build();
        self.add_link(name, msg)
    }

    /// Creates an ipvlan on `parent`, directly inside `netns` under `name`.
    pub fn create_ipvlan(
        &self,
        name: &str,
        parent: &str,
        mode: IpVlanMode,
        netns: BorrowedFd<'_>,
    ) -> Result<()> {
        let parent_index = self.index_of("creating ipvlan on", parent)?;
        let msg = LinkIpVlan::new(name, parent_index, mode)
            .setns_by_fd(netns.as_raw_fd())
            .build();
        self.add_link(name, msg)
    }

    /// Turns off IPv6 address autoconfiguration on a link (addrgenmode
    /// none): no link-local address, hence no duplicate address detection,
    /// router solicitations or MLD reports. On a bridge every such multicast
    /// is copied to every port, so with N containers each new one cost the
    /// kernel O(N) work in softirq, and connects slowed as networks grew.
    /// A kernel without IPv6 has nothing to turn off.
    pub fn disable_ipv6_autoconf(&self, name: &str) -> Result<()> {
        const OP: &str = "turning off IPv6 autoconfiguration on";
        let mut msg = LinkUnspec::new_with_name(name).build();
        msg.attributes
            .push(LinkAttribute::AfSpecUnspec(vec![AfSpecUnspec::Inet6(
                vec![AfSpecInet6::AddrGenMode(In6AddrGenMode::None)],
            )]));
        match self.set_link(OP, name, msg) {
            Err(NetlinkError::Kernel {
                errno: Some(libc::EAFNOSUPPORT),
                ..
            }) => Ok(()),
            other => other,
        }
    }

    pub fn set_master(&self, name: &str, master: &str) -> Result<()> {
        let master_index = self.index_of("attaching to", master)?;
        let msg = LinkUnspec::new_with_name(name)
            .controller(master_index)
            .build();
        self.set_link("attaching", name, msg)
    }

    pub fn set_up(&self, name: &str, up: bool) -> Result<()> {
        let builder = LinkUnspec::new_with_name(name);
        let msg = if up { builder.up() } else { builder.down() }.build();
        self.set_link("setting state of", name, msg)
    }

    pub fn set_mtu(&self, name: &str, mtu: u32) -> Result<()> {
        let msg = LinkUnspec::new_with_name(name).mtu(mtu).build();
        self.set_link("setting mtu of", name, msg)
    }

    pub fn delete_link(&self, name: &str) -> Result<()> {
        let index = self.index_of("deleting", name)?;
        self.rt
            .block_on(self.handle.link().del(index).execute())
            .map_err(|e| NetlinkError::from_rtnl("deleting", name, e))
    }

    pub fn add_address(&self, name: &str, addr: Ipv4Addr, prefix_len: u8) -> Result<()> {
        let index = self.index_of("adding address to", name)?;
        let target = format!("{addr}/{prefix_len} on {name}");
        self.rt
            .block_on(
                self.handle
                    .address()
                    .add(index, IpAddr::V4(addr), prefix_len)
                    .execute(),
            )
            .map_err(|e| NetlinkError::from_rtnl("adding address", target, e))
    }

    /// IPv4 addresses on a link, as (address, prefix length).
    pub fn addresses(&self, name: &str) -> Result<Vec<(Ipv4Addr, u8)>> {
        let index = self.index_of("listing addresses of", name)?;
        let req = self
            .handle
            .address()
            .get()
            .set_link_index_filter(index)
            .execute();
        let msgs: Vec<_> = self
            .rt
            .block_on(req.try_collect())
            .map_err(|e| NetlinkError::from_rtnl("listing addresses of", name, e))?;
        let mut out = Vec::new();
        for msg in msgs {
            for attr in &msg.attributes {
                if let AddressAttribute::Address(IpAddr::V4(a)) = attr {
                    out.push((*a, msg.header.prefix_len));
                }
            }
        }
        Ok(out)
    }

    pub fn delete_address(&self, name: &str, addr: Ipv4Addr, prefix_len: u8) -> Result<()> {
        let index = self.index_of("removing address from", name)?;
        let target = format!("{addr}/{prefix_len} on {name}");
        let req = self
            .handle
            .address()
            .get()
            .set_link_index_filter(index)
            .set_address_filter(IpAddr::V4(addr))
            .set_prefix_length_filter(prefix_len)
            .execute();
        let msgs: Vec<_> = self
            .rt
            .block_on(req.try_collect())
            .map_err(|e| NetlinkError::from_rtnl("removing address", target.clone(), e))?;
        let Some(msg) = msgs.into_iter().next() else {
            return Err(NetlinkError::NotFound {
                op: "removing address",
                target,
            });
        };
        self.rt
            .block_on(self.handle.address().del(msg).execute())
            .map_err(|e| NetlinkError::from_rtnl("removing address", target, e))
    }

    pub fn add_default_route(&self, gateway: Ipv4Addr) -> Result<()> {
        let msg = RouteMessageBuilder::<Ipv4Addr>::new()
            .gateway(gateway)
            .build();
        self.rt
            .block_on(self.handle.route().add(msg).execute())
            .map_err(|e| {
                NetlinkError::from_rtnl("adding default route via", gateway.to_string(), e)
            })
    }

    pub fn delete_default_route(&self, gateway: Ipv4Addr) -> Result<()> {
        let msg = RouteMessageBuilder::<Ipv4Addr>::new()
            .gateway(gateway)
            .build();
        self.rt
            .block_on(self.handle.route().del(msg).execute())
            .map_err(|e| {
                NetlinkError::from_rtnl("removing default route via", gateway.to_string(), e)
            })
    }

    fn ipv4_routes(&self) -> Result<Vec<RouteMessage>> {
        let req = self
            .handle
            .route()
            .get(RouteMessageBuilder::<Ipv4Addr>::new().build())
            .execute();
        self.rt
            .block_on(req.try_collect())
            .map_err(|e| NetlinkError::from_rtnl("listing routes", "", e))
    }

    /// The IPv4 default route's gateway, if there is one.
    pub fn default_gateway(&self) -> Result<Option<Ipv4Addr>> {
        for route in self.ipv4_routes()? {
            if route.header.destination_prefix_length != 0 || !is_main_table(&route) {
                continue;
            }
            for attr in &route.attributes {
                if let RouteAttribute::Gateway(RouteAddress::Inet(gw)) = attr {
                    return Ok(Some(*gw));
                }
            }
        }
        Ok(None)
    }

    /// The link carrying the IPv4 default route, if there is one.
    pub fn default_route_interface(&self) -> Result<Option<String>> {
        for route in self.ipv4_routes()? {
            if route.header.destination_prefix_length != 0 || !is_main_table(&route) {
                continue;
            }
            for attr in &route.attributes {
                if let RouteAttribute::Oif(index) = attr {
                    return self.name_of(*index);
                }
            }
        }
        Ok(None)
    }
}

fn is_main_table(route: &RouteMessage) -> bool {
    const MAIN: u32 = 254;
    let table = route
        .attributes
        .iter()
        .find_map(|a| match a {
            RouteAttribute::Table(t) => Some(*t),
            _ => None,
        })
        .unwrap_or(route.header.table as u32);
    table == MAIN
}

/// Asks for a single TX and RX queue (see [`Netlink::create_veth`]).
fn with_one_queue(msg: &mut LinkMessage) {
    msg.attributes.push(LinkAttribute::NumTxQueues(1));
    msg.attributes.push(LinkAttribute::NumRxQueues(1));
}

fn details_of(msg: &LinkMessage) -> LinkDetails {
    let mut d = LinkDetails {
        index: msg.header.index,
        name: String::new(),
        kind: String::new(),
        mtu: 0,
        mac: String::new(),
        up: msg.header.flags.contains(LinkFlags::Up),
        master: None,
    };
    for attr in &msg.attributes {
        match attr {
            LinkAttribute::IfName(n) => d.name = n.clone(),
            LinkAttribute::Mtu(m) => d.mtu = *m,
            LinkAttribute::Controller(c) => d.master = Some(*c),
            LinkAttribute::Address(bytes) if bytes.len() == 6 => {
                d.mac = bytes
                    .iter()
                    .map(|b| format!("{b:02x}"))
                    .collect::<Vec<_>>()
                    .join(":")
            }
            LinkAttribute::LinkInfo(infos) => {
                for info in infos {
                    if let LinkInfo::Kind(kind) = info {
                        d.kind = kind_name(kind);
                    }
                }
            }
            _ => {}
        }
    }
    d
}

fn kind_name(kind: &InfoKind) -> String {
    kind.to_string()
}
