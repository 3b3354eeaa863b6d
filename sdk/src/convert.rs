//! Between the generated WIT types and the SDK's.

use std::net::Ipv4Addr;

use crate::bindings::mydocker::network::types as wit;
use crate::types::*;

pub fn ip_from_wit(a: wit::Ipv4Address) -> Ipv4Addr {
    Ipv4Addr::new(a.0, a.1, a.2, a.3)
}

pub fn ip_to_wit(a: Ipv4Addr) -> wit::Ipv4Address {
    let o = a.octets();
    (o[0], o[1], o[2], o[3])
}

pub fn cidr_from_wit(c: wit::Ipv4Cidr) -> Ipv4Net {
    Ipv4Net::new(ip_from_wit(c.address), c.prefix_len.min(32)).expect("prefix clamped to 32")
}

pub fn cidr_to_wit(c: Ipv4Net) -> wit::Ipv4Cidr {
    wit::Ipv4Cidr {
        address: ip_to_wit(c.addr()),
        prefix_len: c.prefix_len(),
    }
}

fn pairs(kv: Vec<wit::KeyValue>) -> Vec<(String, String)> {
    kv.into_iter().map(|kv| (kv.key, kv.value)).collect()
}

pub fn data_to_wit(d: &Data) -> Vec<wit::KeyValue> {
    d.iter()
        .map(|(k, v)| wit::KeyValue {
            key: k.to_string(),
            value: v.to_string(),
        })
        .collect()
}

fn data_from_wit(kv: Vec<wit::KeyValue>) -> Data {
    pairs(kv)
        .into_iter()
        .fold(Data::new(), |d, (k, v)| d.with(&k, v))
}

pub fn network_from_wit(n: wit::NetworkConfig) -> Network {
    Network {
        id: n.id,
        name: n.name,
        subnet: cidr_from_wit(n.subnet).trunc(),
        gateway: ip_from_wit(n.gateway),
        options: Options::new(pairs(n.options)),
        data: data_from_wit(n.driver_data),
    }
}

pub fn port_from_wit(p: wit::PortMapping) -> PortMapping {
    PortMapping {
        host_ip: p.host_ip.map(ip_from_wit),
        host_port: p.host_port,
        container_port: p.container_port,
        protocol: match p.protocol {
            wit::Protocol::Tcp => Protocol::Tcp,
            wit::Protocol::Udp => Protocol::Udp,
        },
    }
}

pub fn port_to_wit(p: PortMapping) -> wit::PortMapping {
    wit::PortMapping {
        host_ip: p.host_ip.map(ip_to_wit),
        host_port: p.host_port,
        container_port: p.container_port,
        protocol: match p.protocol {
            Protocol::Tcp => wit::Protocol::Tcp,
            Protocol::Udp => wit::Protocol::Udp,
        },
    }
}

pub fn endpoint_from_wit(e: wit::EndpointConfig) -> Endpoint {
    Endpoint {
        network: network_from_wit(e.network),
        container_id: e.container_id,
        interface: e.interface_name,
        address: cidr_from_wit(e.address),
        gateway: ip_from_wit(e.gateway),
        ports: e.port_mappings.into_iter().map(port_from_wit).collect(),
        data: data_from_wit(e.driver_data),
    }
}

pub fn err_from_wit(e: wit::DriverError) -> Error {
    match e {
        wit::DriverError::InvalidOption(m) => Error::InvalidOption(m),
        wit::DriverError::Denied(m) => Error::Denied(m),
        wit::DriverError::NotFound(m) => Error::NotFound(m),
        wit::DriverError::HostFailure(m) => Error::HostFailure(m),
    }
}

pub fn err_to_wit(e: Error) -> wit::DriverError {
    match e {
        Error::InvalidOption(m) => wit::DriverError::InvalidOption(m),
        Error::Denied(m) => wit::DriverError::Denied(m),
        Error::NotFound(m) => wit::DriverError::NotFound(m),
        Error::HostFailure(m) => wit::DriverError::HostFailure(m),
    }
}

pub fn info_to_wit(i: Info) -> wit::DriverInfo {
    wit::DriverInfo {
        name: i.name,
        version: i.version,
        description: i.description,
        api_version: crate::API_VERSION.to_string(),
        capabilities: i.capabilities,
        options: i
            .options
            .into_iter()
            .map(|(name, description)| wit::OptionSpec { name, description })
            .collect(),
    }
}

pub fn netns_to_wit(n: Netns) -> wit::Netns {
    match n {
        Netns::Host => wit::Netns::Host,
        Netns::Container => wit::Netns::Container,
    }
}

pub fn macvlan_to_wit(m: MacvlanMode) -> wit::MacvlanMode {
    match m {
        MacvlanMode::Bridge => wit::MacvlanMode::Bridge,
        MacvlanMode::Private => wit::MacvlanMode::Private,
        MacvlanMode::Vepa => wit::MacvlanMode::Vepa,
        MacvlanMode::Passthru => wit::MacvlanMode::Passthru,
    }
}

pub fn ipvlan_to_wit(m: IpvlanMode) -> wit::IpvlanMode {
    match m {
        IpvlanMode::L2 => wit::IpvlanMode::L2,
        IpvlanMode::L3 => wit::IpvlanMode::L3,
        IpvlanMode::L3s => wit::IpvlanMode::L3s,
    }
}

pub fn link_from_wit(l: wit::LinkInfo) -> LinkInfo {
    LinkInfo {
        name: l.name,
        kind: l.kind,
        mtu: l.mtu,
        mac: l.mac,
        up: l.up,
    }
}
