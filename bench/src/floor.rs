//! The floor: the same kernel work as a bridge connect, done the cheapest
//! way a shell could — one `ip -batch` per namespace and one
//! `iptables-restore` for the port rules.

use std::time::{Duration, Instant};

use mydocker_tests::{Netns, Sandbox};

use crate::sandbox::{container_ip, host_ports, run_in, NsPath};

const BRIDGE: &str = "brfloor";

fn dnat_rules(i: usize, verb: &str) -> String {
    let ip = container_ip("10.90", i);
    let [a, b] = host_ports(i);
    format!(
        "*nat\n{verb} PREROUTING -p tcp -m tcp --dport {a} -j DNAT --to-destination {ip}:80\n\
         {verb} PREROUTING -p tcp -m tcp --dport {b} -j DNAT --to-destination {ip}:81\nCOMMIT\n"
    )
}

fn connect(sb: &Sandbox, i: usize, c: &Netns, ports: bool) -> Duration {
    let ns = NsPath::of(c);
    let ip = container_ip("10.90", i);
    let t = Instant::now();
    // The same kernel work as mydocker's bridge driver: one queue per veth
    // end (no RCU wait in the kernel), no IPv6 autoconfiguration.
    let host = format!(
        "link add vf{i} numtxqueues 1 numrxqueues 1 type veth \
         peer name eth0 numtxqueues 1 numrxqueues 1 netns {}\n\
         link set vf{i} addrgenmode none\nlink set vf{i} master {BRIDGE}\nlink set vf{i} up\n",
        ns.path
    );
    let container = format!(
        "link set eth0 addrgenmode none\naddr add {ip}/16 dev eth0\nlink set eth0 up\n\
         route add default via 10.90.0.1\n"
    );
    run_in(&sb.host, "ip", &["-batch", "-"], &host);
    run_in(c, "ip", &["-batch", "-"], &container);
    if ports {
        run_in(
            &sb.host,
            "iptables-restore",
            &["-w", "--noflush"],
            &dnat_rules(i, "-A"),
        );
    }
    t.elapsed()
}

fn disconnect(sb: &Sandbox, i: usize, ports: bool) -> Duration {
    let t = Instant::now();
    run_in(
        &sb.host,
        "ip",
        &["-batch", "-"],
        &format!("link del vf{i}\n"),
    );
    if ports {
        run_in(
            &sb.host,
            "iptables-restore",
            &["-w", "--noflush"],
            &dnat_rules(i, "-D"),
        );
    }
    t.elapsed()
}

/// The network's NAT rule (added with "-A", removed with "-D").
fn masquerade(verb: &str) -> [&str; 13] {
    [
        "iptables",
        "-w",
        "-t",
        "nat",
        verb,
        "POSTROUTING",
        "-s",
        "10.90.0.0/16",
        "!",
        "-o",
        BRIDGE,
        "-j",
        "MASQUERADE",
    ]
}

struct Bridge<'a>(&'a Sandbox);

impl<'a> Bridge<'a> {
    fn up(sb: &'a Sandbox) -> Bridge<'a> {
        sb.host.ok(&["ip", "link", "add", BRIDGE, "type", "bridge"]);
        sb.host
            .ok(&["ip", "addr", "add", "10.90.0.1/16", "dev", BRIDGE]);
        sb.host.ok(&["ip", "link", "set", BRIDGE, "up"]);
        sb.host.ok(&masquerade("-A"));
        Bridge(sb)
    }
}

impl Drop for Bridge<'_> {
    fn drop(&mut self) {
        let _ = self.0.host.run(&["ip", "link", "del", BRIDGE]);
        let _ = self.0.host.run(&masquerade("-D"));
    }
}

/// `reps` connect + disconnect pairs, one fresh container namespace each.
pub fn connect_disconnect(
    sb: &Sandbox,
    reps: usize,
    ports: bool,
) -> (Vec<Duration>, Vec<Duration>) {
    let _bridge = Bridge::up(sb);
    let (mut up, mut down) = (Vec::new(), Vec::new());
    for i in 0..reps {
        let c = Netns::new();
        up.push(connect(sb, i, &c, ports));
        down.push(disconnect(sb, i, ports));
    }
    (up, down)
}

/// `n` containers connected one after another (2 ports each), all kept.
pub fn scale(sb: &Sandbox, n: usize) -> Vec<Duration> {
    let _bridge = Bridge::up(sb);
    let containers: Vec<Netns> = (0..n).map(|_| Netns::new()).collect();
    let times = containers
        .iter()
        .enumerate()
        .map(|(i, c)| connect(sb, i, c, true))
        .collect();
    for i in 0..n {
        disconnect(sb, i, true);
    }
    times
}
