//! What the host lends a driver during a call, as a trait so driver logic
//! can run against the real host (inside wasm) or a [`MockHost`](crate::mock::MockHost)
//! (in `cargo test`).

use std::net::Ipv4Addr;

use crate::types::*;

/// The host's operations. Every call is checked by the host against the
/// driver's granted capabilities and the current call's scope; changes are
/// undone by the host if the call fails.
pub trait Host {
    /// Creates a bridge in the host namespace (capability `bridge`).
    fn create_bridge(&mut self, name: &str) -> Result<()>;
    /// Creates a veth pair, `container_name` directly inside the container
    /// (capability `veth`).
    fn create_veth(&mut self, host_name: &str, container_name: &str) -> Result<()>;
    /// Creates a macvlan on host link `parent`, inside the container as `name`.
    fn create_macvlan(&mut self, name: &str, parent: &str, mode: MacvlanMode) -> Result<()>;
    /// Creates an ipvlan on host link `parent`, inside the container as `name`.
    fn create_ipvlan(&mut self, name: &str, parent: &str, mode: IpvlanMode) -> Result<()>;
    /// Attaches host link `name` to bridge `master`.
    fn set_master(&mut self, name: &str, master: &str) -> Result<()>;
    /// Brings link `name` in `ns` up; the link must be one this driver created
    /// for the network or endpoint (or the container's `lo`).
    fn set_up(&mut self, ns: Netns, name: &str) -> Result<()>;
    /// Sets the MTU (68..=65535) of link `name` in `ns`; the link must be this driver's.
    fn set_mtu(&mut self, ns: Netns, name: &str, mtu: u32) -> Result<()>;
    /// Deletes link `name` in `ns` (one veth end takes the other with it); the
    /// link must be this driver's.
    fn delete_link(&mut self, ns: Netns, name: &str) -> Result<()>;
    /// Read-only: a link's details, `None` if absent.
    fn get_link(&mut self, ns: Netns, name: &str) -> Result<Option<LinkInfo>>;
    /// Read-only: other networks of this same driver.
    fn driver_networks(&mut self) -> Result<Vec<Network>>;
    /// Read-only: the host link carrying the default route.
    fn default_route_interface(&mut self) -> Result<Option<String>>;
    /// Adds `address` to this driver's link `name` in `ns`: within the network's
    /// subnet, and in the container only the endpoint's own address.
    fn add_address(&mut self, ns: Netns, name: &str, address: Ipv4Net) -> Result<()>;
    /// Removes `address` from this driver's link `name` in `ns`.
    fn delete_address(&mut self, ns: Netns, name: &str, address: Ipv4Net) -> Result<()>;
    /// Adds the default route via `gateway` (inside the network's subnet); only
    /// [`Netns::Container`] is allowed.
    fn add_default_route(&mut self, ns: Netns, gateway: Ipv4Addr) -> Result<()>;
    /// Masquerade the network's subnet leaving through anything but `bridge` (capability `nat`).
    fn masquerade(&mut self, bridge: &str) -> Result<()>;
    /// Undoes [`masquerade`](Host::masquerade) for `bridge` (capability `nat`).
    fn unmasquerade(&mut self, bridge: &str) -> Result<()>;
    /// DNAT the mappings to the endpoint's address (capability `publish-port`).
    fn publish_ports(&mut self, ports: &[PortMapping]) -> Result<()>;
    /// Undoes [`publish_ports`](Host::publish_ports) (capability `publish-port`).
    fn unpublish_ports(&mut self, ports: &[PortMapping]) -> Result<()>;
    /// Sets an allow-listed sysctl (capability `sysctl:<name>`).
    fn set_sysctl(&mut self, key: Sysctl, value: &str) -> Result<()>;
    /// A line in mydocker's log, tagged with the driver's name.
    fn log(&mut self, level: Level, message: &str);
}

/// The real host, reached through the component's imports.
pub struct WasmHost;

// On non-wasm targets the generated imports are stubs that panic; drivers
// are only ever called through them inside a component.
mod wasm {
    use super::*;
    use crate::bindings::mydocker::network::host as h;
    use crate::convert::*;

    impl Host for WasmHost {
        fn create_bridge(&mut self, name: &str) -> Result<()> {
            h::create_bridge(name).map_err(err_from_wit)
        }
        fn create_veth(&mut self, host_name: &str, container_name: &str) -> Result<()> {
            h::create_veth(host_name, container_name).map_err(err_from_wit)
        }
        fn create_macvlan(&mut self, name: &str, parent: &str, mode: MacvlanMode) -> Result<()> {
            h::create_macvlan(name, parent, macvlan_to_wit(mode)).map_err(err_from_wit)
        }
        fn create_ipvlan(&mut self, name: &str, parent: &str, mode: IpvlanMode) -> Result<()> {
            h::create_ipvlan(name, parent, ipvlan_to_wit(mode)).map_err(err_from_wit)
        }
        fn set_master(&mut self, name: &str, master: &str) -> Result<()> {
            h::set_master(name, master).map_err(err_from_wit)
        }
        fn set_up(&mut self, ns: Netns, name: &str) -> Result<()> {
            h::set_up(netns_to_wit(ns), name).map_err(err_from_wit)
        }
        fn set_mtu(&mut self, ns: Netns, name: &str, mtu: u32) -> Result<()> {
            h::set_mtu(netns_to_wit(ns), name, mtu).map_err(err_from_wit)
        }
        fn delete_link(&mut self, ns: Netns, name: &str) -> Result<()> {
            h::delete_link(netns_to_wit(ns), name).map_err(err_from_wit)
        }
        fn get_link(&mut self, ns: Netns, name: &str) -> Result<Option<LinkInfo>> {
            h::get_link(netns_to_wit(ns), name)
                .map(|l| l.map(link_from_wit))
                .map_err(err_from_wit)
        }
        fn driver_networks(&mut self) -> Result<Vec<Network>> {
            h::driver_networks()
                .map(|v| v.into_iter().map(network_from_wit).collect())
                .map_err(err_from_wit)
        }
        fn default_route_interface(&mut self) -> Result<Option<String>> {
            h::default_route_interface().map_err(err_from_wit)
        }
        fn add_address(&mut self, ns: Netns, name: &str, address: Ipv4Net) -> Result<()> {
            h::add_address(netns_to_wit(ns), name, cidr_to_wit(address)).map_err(err_from_wit)
        }
        fn delete_address(&mut self, ns: Netns, name: &str, address: Ipv4Net) -> Result<()> {
            h::delete_address(netns_to_wit(ns), name, cidr_to_wit(address)).map_err(err_from_wit)
        }
        fn add_default_route(&mut self, ns: Netns, gateway: Ipv4Addr) -> Result<()> {
            h::add_default_route(netns_to_wit(ns), ip_to_wit(gateway)).map_err(err_from_wit)
        }
        fn masquerade(&mut self, bridge: &str) -> Result<()> {
            h::masquerade(bridge).map_err(err_from_wit)
        }
        fn unmasquerade(&mut self, bridge: &str) -> Result<()> {
            h::unmasquerade(bridge).map_err(err_from_wit)
        }
        fn publish_ports(&mut self, ports: &[PortMapping]) -> Result<()> {
            let ports: Vec<_> = ports.iter().map(|p| port_to_wit(*p)).collect();
            h::publish_ports(&ports).map_err(err_from_wit)
        }
        fn unpublish_ports(&mut self, ports: &[PortMapping]) -> Result<()> {
            let ports: Vec<_> = ports.iter().map(|p| port_to_wit(*p)).collect();
            h::unpublish_ports(&ports).map_err(err_from_wit)
        }
        fn set_sysctl(&mut self, key: Sysctl, value: &str) -> Result<()> {
            let key = match key {
                Sysctl::IpForward => crate::bindings::mydocker::network::types::Sysctl::IpForward,
            };
            h::set_sysctl(key, value).map_err(err_from_wit)
        }
        fn log(&mut self, level: Level, message: &str) {
            use crate::bindings::mydocker::network::types::LogLevel;
            let level = match level {
                Level::Debug => LogLevel::Debug,
                Level::Info => LogLevel::Info,
                Level::Warn => LogLevel::Warn,
                Level::Error => LogLevel::Error,
            };
            h::log(level, message)
        }
    }
}

/// The usual container side of `connect`, once the interface exists inside
/// the container: its address, the interface and `lo` up, and — for the
/// container's first network — the default route via the gateway.
pub fn configure_container_interface(host: &mut dyn Host, endpoint: &Endpoint) -> Result<()> {
    host.add_address(Netns::Container, &endpoint.interface, endpoint.address)?;
    host.set_up(Netns::Container, &endpoint.interface)?;
    host.set_up(Netns::Container, "lo")?;
    if endpoint.is_primary() {
        host.add_default_route(Netns::Container, endpoint.gateway)?;
    }
    Ok(())
}
