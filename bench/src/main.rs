//! Container network setup, side by side, inside sandbox namespaces:
//! the floor (one `ip -batch` per namespace + one `iptables-restore`),
//! mydocker's library connect/disconnect, and the CNI reference `bridge` +
//! `host-local` plugins (if /usr/lib/cni has them). Usage:
//! `cargo run --release -- [REPETITIONS]` from bench/ (see bench/README.md).

use std::io::Write;
use std::os::fd::AsRawFd;
use std::process::Stdio;
use std::time::{Duration, Instant};

use mydocker::runtime::{ConnectRequest, CreateNetwork, PortMapping, Protocol, Runtime};
use mydocker_tests::{Netns, Sandbox};

fn stats(name: &str, mut v: Vec<Duration>) -> (String, f64) {
    v.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    let median = ms(v[v.len() / 2]);
    let p95 = ms(v[(v.len() * 95 / 100).min(v.len() - 1)]);
    (
        format!("{name:<28} {median:>9.2} {p95:>9.2} {:>9.2}", ms(v[0])),
        median,
    )
}

fn run_in(ns: &Netns, program: &str, args: &[&str], input: &str) {
    let mut child = ns
        .command(program)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{program}: {e}"));
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{program} {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn fd_path(ns: &Netns) -> (std::os::fd::OwnedFd, String) {
    let fd = ns.fd();
    let path = format!("/proc/{}/fd/{}", std::process::id(), fd.as_raw_fd());
    (fd, path)
}

/// The same kernel work as a bridge connect, done the cheapest way.
fn floor(sb: &Sandbox, reps: usize, ports: bool) -> (Vec<Duration>, Vec<Duration>) {
    sb.host
        .ok(&["ip", "link", "add", "brfloor", "type", "bridge"]);
    sb.host
        .ok(&["ip", "addr", "add", "10.90.0.1/16", "dev", "brfloor"]);
    sb.host.ok(&["ip", "link", "set", "brfloor", "up"]);
    let (mut up, mut down) = (Vec::new(), Vec::new());
    for i in 0..reps {
        let c = Netns::new();
        let (_fd, path) = fd_path(&c);
        let ip = format!("10.90.{}.{}", 1 + i / 250, 2 + i % 250);
        let rules = format!(
            "*nat\n-A PREROUTING -p tcp -m tcp --dport {} -j DNAT --to-destination {ip}:80\n-A PREROUTING -p tcp -m tcp --dport {} -j DNAT --to-destination {ip}:81\nCOMMIT\n",
            10000 + i,
            20000 + i
        );
        let t = Instant::now();
        run_in(&sb.host, "ip", &["-batch", "-"], &format!(
            "link add vf{i} type veth peer name eth0 netns {path}\nlink set vf{i} master brfloor\nlink set vf{i} up\n"
        ));
        run_in(&c, "ip", &["-batch", "-"], &format!(
            "addr add {ip}/16 dev eth0\nlink set eth0 up\nlink set lo up\nroute add default via 10.90.0.1\n"
        ));
        if ports {
            run_in(&sb.host, "iptables-restore", &["-w", "--noflush"], &rules);
        }
        up.push(t.elapsed());
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
                &rules.replace("-A PREROUTING", "-D PREROUTING"),
            );
        }
        down.push(t.elapsed());
    }
    sb.host.ok(&["ip", "link", "del", "brfloor"]);
    (up, down)
}

/// mydocker's library connect/disconnect (the bridge.wasm driver).
fn mydocker(sb: &Sandbox, reps: usize, ports: bool) -> (Vec<Duration>, Vec<Duration>) {
    let root = sb.root.path().to_path_buf();
    let containers: Vec<Netns> = (0..reps).map(|_| Netns::new()).collect();
    let fds: Vec<_> = containers.iter().map(|c| (c.fd(), c.fd())).collect();
    sb.host.enter(move || {
        let rt = Runtime::open(&root).unwrap();
        let _ = rt.remove_network("bench");
        rt.create_network(&CreateNetwork {
            name: "bench".into(),
            driver: "bridge".into(),
            subnet: "10.91.0.0/16".into(),
            ..Default::default()
        })
        .unwrap();
        let (mut up, mut down) = (Vec::new(), Vec::new());
        for (i, (fd, fd2)) in fds.into_iter().enumerate() {
            let id = format!("{i:064x}");
            let maps = [
                PortMapping {
                    host_ip: None,
                    host_port: 10000 + i as u16,
                    container_port: 80,
                    protocol: Protocol::Tcp,
                },
                PortMapping {
                    host_ip: None,
                    host_port: 20000 + i as u16,
                    container_port: 81,
                    protocol: Protocol::Tcp,
                },
            ];
            let maps: &[PortMapping] = if ports { &maps } else { &[] };
            let t = Instant::now();
            rt.connect(ConnectRequest {
                network: "bench",
                container_id: &id,
                netns: fd,
                port_mappings: maps,
            })
            .unwrap();
            up.push(t.elapsed());
            let t = Instant::now();
            rt.disconnect("bench", &id, Some(fd2)).unwrap();
            down.push(t.elapsed());
        }
        rt.remove_network("bench").unwrap();
        (up, down)
    })
}

/// The CNI reference plugins, driven per the CNI spec.
fn cni(sb: &Sandbox, reps: usize, ports: bool) -> Option<(Vec<Duration>, Vec<Duration>)> {
    if !std::path::Path::new("/usr/lib/cni/bridge").exists() {
        return None;
    }
    let data = tempfile::tempdir().unwrap();
    let mut plugins = vec![serde_json::json!({
        "type": "bridge", "bridge": "cni0", "isGateway": true, "ipMasq": true,
        "ipam": { "type": "host-local", "subnet": "10.92.0.0/16", "dataDir": data.path() }
    })];
    if ports {
        plugins.push(
            serde_json::json!({ "type": "portmap", "capabilities": { "portMappings": true } }),
        );
    }
    let (mut up, mut down) = (Vec::new(), Vec::new());
    for i in 0..reps {
        let c = Netns::new();
        let (_fd, path) = fd_path(&c);
        let id = format!("cni{i}");
        // A conflist is executed plugin by plugin (the runtime's job, done
        // here as a runtime would).
        let run = |command: &str,
                   plugin: &serde_json::Value,
                   prev: Option<&serde_json::Value>|
         -> serde_json::Value {
            let mut conf = plugin.clone();
            conf["cniVersion"] = "1.0.0".into();
            conf["name"] = "benchnet".into();
            if let Some(p) = prev {
                conf["prevResult"] = p.clone();
            }
            if ports && conf["type"] == "portmap" {
                conf["runtimeConfig"] = serde_json::json!({ "portMappings": [
                    { "hostPort": 10000 + i, "containerPort": 80, "protocol": "tcp" },
                    { "hostPort": 20000 + i, "containerPort": 81, "protocol": "tcp" }
                ]});
            }
            let ty = conf["type"].as_str().unwrap().to_string();
            let mut child = sb
                .host
                .command(format!("/usr/lib/cni/{ty}"))
                .env("CNI_COMMAND", command)
                .env("CNI_CONTAINERID", &id)
                .env("CNI_NETNS", &path)
                .env("CNI_IFNAME", "eth0")
                .env("CNI_PATH", "/usr/lib/cni")
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap();
            child
                .stdin
                .take()
                .unwrap()
                .write_all(conf.to_string().as_bytes())
                .unwrap();
            let out = child.wait_with_output().unwrap();
            assert!(
                out.status.success(),
                "cni {ty} {command}: {}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
            serde_json::from_slice(&out.stdout).unwrap_or(serde_json::Value::Null)
        };
        let t = Instant::now();
        let mut prev: Option<serde_json::Value> = None;
        for p in &plugins {
            prev = Some(run("ADD", p, prev.as_ref()));
        }
        up.push(t.elapsed());
        let t = Instant::now();
        for p in plugins.iter().rev() {
            run("DEL", p, prev.as_ref());
        }
        down.push(t.elapsed());
    }
    Some((up, down))
}

fn main() {
    let reps: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(50);
    let sb = Sandbox::new();
    println!("{reps} repetitions per case, times in ms, inside sandbox namespaces\n");
    println!("{:<28} {:>9} {:>9} {:>9}", "case", "median", "p95", "min");
    for ports in [false, true] {
        let label = if ports { " +2 ports" } else { "" };
        let (fu, fd) = floor(&sb, reps, ports);
        let (f_line, f_med) = stats(&format!("floor connect{label}"), fu);
        println!("{f_line}");
        println!("{}", stats(&format!("floor disconnect{label}"), fd).0);
        let (mu, md) = mydocker(&sb, reps, ports);
        let (m_line, m_med) = stats(&format!("mydocker connect{label}"), mu);
        println!("{m_line}   ({:.2}x floor)", m_med / f_med);
        println!("{}", stats(&format!("mydocker disconnect{label}"), md).0);
        match cni(&sb, reps, ports) {
            Some((cu, cd)) => {
                let (c_line, c_med) = stats(&format!("CNI bridge ADD{label}"), cu);
                println!("{c_line}   (mydocker = {:.2}x CNI)", m_med / c_med);
                println!("{}", stats(&format!("CNI bridge DEL{label}"), cd).0);
            }
            None => {
                println!("CNI plugins not installed (apt-get install containernetworking-plugins)")
            }
        }
    }
}
