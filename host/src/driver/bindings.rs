//! Rust types and traits generated from `wit/network.wit`.

wasmtime::component::bindgen!({
    path: "../wit",
    world: "network-driver",
});

pub use self::exports::mydocker::network::driver as exports_driver;
pub use self::mydocker::network::host as wit_host;
pub use self::mydocker::network::types as wit;

use std::net::Ipv4Addr;

/// The contract version this host implements.
pub const API_VERSION: &str = "0.1.0";

pub fn to_ipv4(a: wit::Ipv4Address) -> Ipv4Addr {
    Ipv4Addr::new(a.0, a.1, a.2, a.3)
}

pub fn from_ipv4(a: Ipv4Addr) -> wit::Ipv4Address {
    let o = a.octets();
    (o[0], o[1], o[2], o[3])
}

pub fn from_cidr(addr: Ipv4Addr, prefix_len: u8) -> wit::Ipv4Cidr {
    wit::Ipv4Cidr {
        address: from_ipv4(addr),
        prefix_len,
    }
}

/// A driver error as a user reads it (the generated Display is Debug-like).
pub fn describe(e: &wit::DriverError) -> String {
    match e {
        wit::DriverError::InvalidOption(m) => format!("invalid option: {m}"),
        wit::DriverError::Denied(m) => format!("denied: {m}"),
        wit::DriverError::NotFound(m) => format!("not found: {m}"),
        wit::DriverError::HostFailure(m) => m.clone(),
    }
}

impl std::fmt::Display for wit::Protocol {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            wit::Protocol::Tcp => "tcp",
            wit::Protocol::Udp => "udp",
        })
    }
}
