//! mydocker's built-in bridge driver, as a WebAssembly component.
//!
//! A network is a Linux bridge holding the gateway address, with IPv4
//! forwarding on and the subnet masqueraded when it leaves through any other
//! link. Each container joins through a veth pair: the container end is
//! created directly inside the container's namespace, the host end is
//! attached to the bridge. Published ports become DNAT intents; the host
//! writes the actual rules.

wit_bindgen::generate!({
    world: "network-driver",
    path: "../../wit",
});

use exports::mydocker::network::driver::Guest;
use mydocker::network::host;
use mydocker::network::types::{
    DriverError, DriverInfo, EndpointConfig, EndpointInfo, KeyValue, Netns, NetworkConfig,
    OptionSpec, Sysctl,
};

struct Bridge;

const OPT_BRIDGE_NAME: &str = "bridge_name";
const OPT_MTU: &str = "mtu";
const OPT_MASQUERADE: &str = "enable_ip_masquerade";
const KNOWN_OPTIONS: &[&str] = &[OPT_BRIDGE_NAME, OPT_MTU, OPT_MASQUERADE];

/// Driver data keys (stored by the host, given back on later calls).
const DATA_BRIDGE: &str = "bridge";
const DATA_MASQUERADE: &str = "masquerade";
const DATA_HOST_VETH: &str = "host_interface";

fn lookup<'a>(pairs: &'a [KeyValue], key: &str) -> Option<&'a str> {
    pairs
        .iter()
        .rev()
        .find(|kv| kv.key == key)
        .map(|kv| kv.value.as_str())
}

fn valid_ifname(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 15
        && name != "."
        && name != ".."
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.')
}

/// Parsed, validated network options.
struct Options {
    bridge_name: Option<String>,
    mtu: Option<u32>,
    masquerade: bool,
}

fn parse_options(network: &NetworkConfig) -> Result<Options, DriverError> {
    for kv in &network.options {
        if !KNOWN_OPTIONS.contains(&kv.key.as_str()) {
            return Err(DriverError::InvalidOption(format!(
                "unknown option '{}' for the bridge driver (accepted: {})",
                kv.key,
                KNOWN_OPTIONS.join(", ")
            )));
        }
    }
    let bridge_name = match lookup(&network.options, OPT_BRIDGE_NAME) {
        Some(n) if !valid_ifname(n) => {
            return Err(DriverError::InvalidOption(format!(
                "{OPT_BRIDGE_NAME}='{n}' is not a valid interface name (1-15 of A-Z a-z 0-9 - _ .)"
            )))
        }
        Some(n) => Some(n.to_string()),
        None => None,
    };
    let mtu = match lookup(&network.options, OPT_MTU) {
        Some(m) => match m.parse::<u32>() {
            Ok(v) if (68..=65535).contains(&v) => Some(v),
            _ => {
                return Err(DriverError::InvalidOption(format!(
                    "{OPT_MTU}='{m}' must be a number from 68 to 65535"
                )))
            }
        },
        None => None,
    };
    let masquerade = match lookup(&network.options, OPT_MASQUERADE) {
        None | Some("true") => true,
        Some("false") => false,
        Some(v) => {
            return Err(DriverError::InvalidOption(format!(
                "{OPT_MASQUERADE}='{v}' must be true or false"
            )))
        }
    };
    Ok(Options {
        bridge_name,
        mtu,
        masquerade,
    })
}

/// Named after the network when that is a usable interface name, like
/// Docker's `-o com.docker.network.bridge.name`, else `br-<id prefix>`.
fn bridge_name(network: &NetworkConfig, opts: &Options) -> String {
    if let Some(n) = &opts.bridge_name {
        return n.clone();
    }
    if valid_ifname(&network.name) {
        return network.name.clone();
    }
    format!("br-{}", &network.id[..network.id.len().min(12)])
}

/// A stable host-side veth name per (network, container), so a retry or a
/// recovery after a crash finds the same link.
fn host_veth_name(endpoint: &EndpointConfig) -> String {
    // FNV-1a: tiny, deterministic, no dependency.
    let mut hash: u32 = 0x811c_9dc5;
    for b in endpoint
        .network
        .id
        .bytes()
        .chain([b'/'])
        .chain(endpoint.container_id.bytes())
    {
        hash ^= b as u32;
        hash = hash.wrapping_mul(0x0100_0193);
    }
    format!("veth{hash:08x}")
}

fn data(pairs: &[(&str, String)]) -> Vec<KeyValue> {
    pairs
        .iter()
        .map(|(k, v)| KeyValue {
            key: k.to_string(),
            value: v.clone(),
        })
        .collect()
}

fn network_bridge(network: &NetworkConfig) -> Result<String, DriverError> {
    lookup(&network.driver_data, DATA_BRIDGE)
        .map(str::to_string)
        .ok_or_else(|| {
            DriverError::NotFound(format!(
                "network {} has no bridge recorded; its state is incomplete",
                network.name
            ))
        })
}

fn ignore_not_found(r: Result<(), DriverError>) -> Result<(), DriverError> {
    match r {
        Err(DriverError::NotFound(_)) => Ok(()),
        other => other,
    }
}

impl Guest for Bridge {
    fn info() -> DriverInfo {
        let opt = |name: &str, description: &str| OptionSpec {
            name: name.into(),
            description: description.into(),
        };
        DriverInfo {
            name: "bridge".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            description: "Linux bridge with NAT and published ports (Docker's default network)"
                .into(),
            api_version: "0.1.0".into(),
            capabilities: vec![
                "bridge".into(),
                "veth".into(),
                "nat".into(),
                "publish-port".into(),
                "sysctl:ip_forward".into(),
            ],
            options: vec![
                opt(
                    OPT_BRIDGE_NAME,
                    "name of the bridge (default: the network name, or br-<id>)",
                ),
                opt(OPT_MTU, "MTU of the bridge and the container interfaces"),
                opt(
                    OPT_MASQUERADE,
                    "masquerade traffic leaving the subnet (true|false, default true)",
                ),
            ],
        }
    }

    fn create_network(network: NetworkConfig) -> Result<Vec<KeyValue>, DriverError> {
        let opts = parse_options(&network)?;
        let bridge = bridge_name(&network, &opts);
        if host::get_link(Netns::Host, &bridge)?.is_some() {
            return Err(DriverError::InvalidOption(format!(
                "a link named {bridge} already exists on the host; choose another with -o {OPT_BRIDGE_NAME}=NAME"
            )));
        }
        host::create_bridge(&bridge)?;
        if let Some(mtu) = opts.mtu {
            host::set_mtu(Netns::Host, &bridge, mtu)?;
        }
        let gateway = mydocker::network::types::Ipv4Cidr {
            address: network.gateway,
            prefix_len: network.subnet.prefix_len,
        };
        host::add_address(Netns::Host, &bridge, gateway)?;
        host::set_up(Netns::Host, &bridge)?;
        host::set_sysctl(Sysctl::IpForward, "1")?;
        if opts.masquerade {
            host::masquerade(&bridge)?;
        }
        let mut out = vec![
            (DATA_BRIDGE, bridge),
            (DATA_MASQUERADE, opts.masquerade.to_string()),
        ];
        if let Some(mtu) = opts.mtu {
            out.push((OPT_MTU, mtu.to_string()));
        }
        Ok(data(&out))
    }

    fn delete_network(network: NetworkConfig) -> Result<(), DriverError> {
        let bridge = network_bridge(&network)?;
        if lookup(&network.driver_data, DATA_MASQUERADE) != Some("false") {
            host::unmasquerade(&bridge)?;
        }
        // ip_forward stays on: other networks or the admin may rely on it.
        ignore_not_found(host::delete_link(Netns::Host, &bridge))
    }

    fn connect(endpoint: EndpointConfig) -> Result<EndpointInfo, DriverError> {
        let bridge = network_bridge(&endpoint.network)?;
        let veth = host_veth_name(&endpoint);
        let ifname = endpoint.interface_name.clone();
        host::create_veth(&veth, &ifname)?;
        if let Some(mtu) = lookup(&endpoint.network.driver_data, OPT_MTU) {
            let mtu: u32 = mtu.parse().map_err(|_| {
                DriverError::InvalidOption(format!("recorded mtu '{mtu}' is not a number"))
            })?;
            host::set_mtu(Netns::Host, &veth, mtu)?;
            host::set_mtu(Netns::Container, &ifname, mtu)?;
        }
        host::set_master(&veth, &bridge)?;
        host::add_address(Netns::Container, &ifname, endpoint.address)?;
        host::set_up(Netns::Container, &ifname)?;
        host::set_up(Netns::Container, "lo")?;
        // Only the first network of a container provides its default route,
        // as in Docker; a second one would clash with it. (A route through
        // an interface that is up but has no carrier yet is accepted.)
        if ifname == "eth0" {
            host::add_default_route(Netns::Container, endpoint.gateway)?;
        }
        // The host end goes up last: carrier comes on, and the kernel's
        // deferred link-state work (which holds the RTNL lock and walks every
        // port of the bridge) then runs after our netlink calls instead of
        // making the next one wait — that wait grew with the number of
        // containers on the bridge.
        host::set_up(Netns::Host, &veth)?;
        if !endpoint.port_mappings.is_empty() {
            host::publish_ports(&endpoint.port_mappings)?;
        }
        Ok(EndpointInfo {
            host_interface: Some(veth.clone()),
            driver_data: data(&[(DATA_HOST_VETH, veth)]),
        })
    }

    fn disconnect(endpoint: EndpointConfig) -> Result<(), DriverError> {
        let veth = lookup(&endpoint.driver_data, DATA_HOST_VETH)
            .map(str::to_string)
            .unwrap_or_else(|| host_veth_name(&endpoint));
        if !endpoint.port_mappings.is_empty() {
            host::unpublish_ports(&endpoint.port_mappings)?;
        }
        // Deleting the host end removes the container end with it.
        ignore_not_found(host::delete_link(Netns::Host, &veth))
    }
}

export!(Bridge);
