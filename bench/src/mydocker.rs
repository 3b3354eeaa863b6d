//! mydocker through its library: the runtime's connect / disconnect (the
//! bridge.wasm driver, IPAM, state files, one iptables-restore), and
//! network create / remove. No container process is involved.

use std::os::fd::OwnedFd;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use mydocker::runtime::{ConnectRequest, CreateNetwork, PortMapping, Protocol, Runtime};
use mydocker::sys::firewall::processes_spawned_in_process;
use mydocker_tests::{Netns, Sandbox};

use crate::sandbox::host_ports;

const NETWORK: &str = "bench";

fn port_mappings(i: usize) -> Vec<PortMapping> {
    host_ports(i)
        .into_iter()
        .zip([80, 81])
        .map(|(host_port, container_port)| PortMapping {
            host_ip: None,
            host_port,
            container_port,
            protocol: Protocol::Tcp,
        })
        .collect()
}

fn create(rt: &Runtime, name: &str, subnet: &str) {
    rt.create_network(&CreateNetwork {
        name: name.into(),
        driver: "bridge".into(),
        subnet: subnet.into(),
        ..Default::default()
    })
    .unwrap_or_else(|e| panic!("network create {name}: {e}"));
}

fn connect(rt: &Runtime, i: usize, netns: OwnedFd, ports: bool) -> Duration {
    let id = format!("{i:064x}");
    let maps = if ports { port_mappings(i) } else { Vec::new() };
    let t = Instant::now();
    rt.connect(ConnectRequest {
        network: NETWORK,
        container_id: &id,
        netns,
        port_mappings: &maps,
    })
    .unwrap_or_else(|e| panic!("connect {i}: {e}"));
    t.elapsed()
}

fn disconnect(rt: &Runtime, i: usize, netns: OwnedFd) -> Duration {
    let id = format!("{i:064x}");
    let t = Instant::now();
    rt.disconnect(NETWORK, &id, Some(netns))
        .unwrap_or_else(|e| panic!("disconnect {i}: {e}"));
    t.elapsed()
}

/// What one connect/disconnect run measured.
pub struct Run {
    pub up: Vec<Duration>,
    pub down: Vec<Duration>,
    /// iptables processes spawned per connect (after the first, which may
    /// create the port chains of a fresh namespace).
    pub firewall_per_connect: f64,
}

fn root(sb: &Sandbox) -> PathBuf {
    sb.root.path().to_path_buf()
}

/// `reps` connect + disconnect pairs, one fresh container namespace each.
pub fn connect_disconnect(sb: &Sandbox, reps: usize, ports: bool) -> Run {
    let containers: Vec<Netns> = (0..reps).map(|_| Netns::new()).collect();
    let fds: Vec<(OwnedFd, OwnedFd)> = containers.iter().map(|c| (c.fd(), c.fd())).collect();
    let root = root(sb);
    sb.host.enter(move || {
        let rt = Runtime::open(&root).expect("open state root");
        create(&rt, NETWORK, "10.91.0.0/16");
        let (mut up, mut down) = (Vec::new(), Vec::new());
        let mut spawned_after_first = 0;
        for (i, (fd, fd2)) in fds.into_iter().enumerate() {
            let before = processes_spawned_in_process();
            up.push(connect(&rt, i, fd, ports));
            if i > 0 {
                spawned_after_first += processes_spawned_in_process() - before;
            }
            down.push(disconnect(&rt, i, fd2));
        }
        rt.remove_network(NETWORK).expect("network rm");
        Run {
            up,
            down,
            firewall_per_connect: spawned_after_first as f64 / (reps.max(2) - 1) as f64,
        }
    })
}

/// `n` containers connected one after another (2 ports each), all kept.
pub fn scale(sb: &Sandbox, n: usize) -> Vec<Duration> {
    let containers: Vec<Netns> = (0..n).map(|_| Netns::new()).collect();
    let fds: Vec<(OwnedFd, OwnedFd)> = containers.iter().map(|c| (c.fd(), c.fd())).collect();
    let root = root(sb);
    sb.host.enter(move || {
        let rt = Runtime::open(&root).expect("open state root");
        create(&rt, NETWORK, "10.91.0.0/16");
        let (ups, downs): (Vec<_>, Vec<_>) = fds.into_iter().unzip();
        let times = ups
            .into_iter()
            .enumerate()
            .map(|(i, fd)| connect(&rt, i, fd, true))
            .collect();
        for (i, fd) in downs.into_iter().enumerate() {
            disconnect(&rt, i, fd);
        }
        rt.remove_network(NETWORK).expect("network rm");
        times
    })
}

/// `reps` network create + remove pairs (bridge, NAT rules, state files).
pub fn create_remove(sb: &Sandbox, reps: usize) -> (Vec<Duration>, Vec<Duration>) {
    let root = root(sb);
    sb.host.enter(move || {
        let rt = Runtime::open(&root).expect("open state root");
        let (mut up, mut down) = (Vec::new(), Vec::new());
        for i in 0..reps {
            let name = format!("net{i}");
            let t = Instant::now();
            create(&rt, &name, &format!("10.{}.0.0/16", 100 + i % 100));
            up.push(t.elapsed());
            let t = Instant::now();
            rt.remove_network(&name)
                .unwrap_or_else(|e| panic!("network rm {name}: {e}"));
            down.push(t.elapsed());
        }
        (up, down)
    })
}
