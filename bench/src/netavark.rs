//! netavark (Podman's network tool): `setup` and `teardown` of a bridge
//! network with the same subnet and port mappings. netavark does no IPAM —
//! Podman allocates the address and passes it as `static_ips` — so it is
//! given one here, and its times exclude address allocation.
//!
//! netavark removes the bridge and the network's NAT rules when the last
//! container leaves; a "keeper" container stays attached throughout so that
//! each measured setup/teardown is a container joining/leaving an existing
//! network, as for the other systems.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use mydocker_tests::{Netns, Sandbox};
use serde_json::{json, Value};

use crate::sandbox::{container_ip, containers, host_ports, pipe, NsPath};

pub const BINARY: &str = "/usr/lib/podman/netavark";

pub fn installed() -> bool {
    Path::new(BINARY).is_file()
}

struct Network {
    config: tempfile::TempDir,
    keeper: (Netns, NsPath),
}

fn options(i: Option<usize>, ports: bool) -> Value {
    let (id, ip) = match i {
        Some(i) => (format!("{i:064x}"), container_ip("10.93", i)),
        None => (format!("{:064x}", u64::MAX), "10.93.0.2".to_string()),
    };
    let port_mappings: Vec<Value> = match (i, ports) {
        (Some(i), true) => host_ports(i)
            .into_iter()
            .zip([80, 81])
            .map(|(h, c)| json!({ "host_ip": "", "container_port": c, "host_port": h, "range": 1, "protocol": "tcp" }))
            .collect(),
        _ => Vec::new(),
    };
    json!({
        "container_id": id,
        "container_name": format!("c{}", &id[56..]),
        "port_mappings": port_mappings,
        "networks": { "benchnet": { "static_ips": [ip], "interface_name": "eth0" } },
        "network_info": { "benchnet": {
            "name": "benchnet",
            "id": "6d2a5c0b0f4e3b8f1a9c7d6e5f4a3b2c1d0e9f8a7b6c5d4e3f2a1b0c9d8e7f6a",
            "driver": "bridge",
            "network_interface": "nvbench0",
            "subnets": [{ "subnet": "10.93.0.0/16", "gateway": "10.93.0.1" }],
            "ipv6_enabled": false, "internal": false, "dns_enabled": false,
            "ipam_options": { "driver": "host-local" }
        }}
    })
}

impl Network {
    fn new(sb: &Sandbox) -> Network {
        let config = tempfile::tempdir().expect("tempdir");
        let c = Netns::new();
        let p = NsPath::of(&c);
        let net = Network {
            config,
            keeper: (c, p),
        };
        net.run(sb, "setup", &net.keeper.1, &options(None, false));
        net
    }

    fn run(&self, sb: &Sandbox, verb: &str, ns: &NsPath, opts: &Value) -> Duration {
        let mut cmd: Command = sb.host.command(BINARY);
        cmd.arg("--config")
            .arg(self.config.path())
            .args([verb, &ns.path]);
        // netavark tells a running firewalld about its networks over the
        // system D-Bus, which would change the machine's own firewall; the
        // benchmark must stay inside its namespaces.
        cmd.env("DBUS_SYSTEM_BUS_ADDRESS", "unix:path=/nonexistent");
        let input = opts.to_string();
        let t = Instant::now();
        pipe(cmd, &input);
        t.elapsed()
    }

    fn close(self, sb: &Sandbox) {
        self.run(sb, "teardown", &self.keeper.1, &options(None, false));
    }
}

/// `reps` setup + teardown pairs, one fresh container namespace each.
pub fn connect_disconnect(
    sb: &Sandbox,
    reps: usize,
    ports: bool,
) -> (Vec<Duration>, Vec<Duration>) {
    let net = Network::new(sb);
    let (mut up, mut down) = (Vec::new(), Vec::new());
    for i in 0..reps {
        let c = Netns::new();
        let ns = NsPath::of(&c);
        let opts = options(Some(i), ports);
        up.push(net.run(sb, "setup", &ns, &opts));
        down.push(net.run(sb, "teardown", &ns, &opts));
    }
    net.close(sb);
    (up, down)
}

/// `n` containers set up one after another (2 ports each), all kept.
pub fn scale(sb: &Sandbox, n: usize) -> Vec<Duration> {
    let net = Network::new(sb);
    let containers = containers(n);
    let times = containers
        .iter()
        .enumerate()
        .map(|(i, (_, ns))| net.run(sb, "setup", ns, &options(Some(i), true)))
        .collect();
    for (i, (_, ns)) in containers.iter().enumerate() {
        net.run(sb, "teardown", ns, &options(Some(i), true));
    }
    net.close(sb);
    times
}
