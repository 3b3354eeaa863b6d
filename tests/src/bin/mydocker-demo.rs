//! The article's scenario, inside sandbox namespaces: a bridge network
//! `testbridge` on 10.0.0.1/24, two "containers" (plain network namespaces
//! until `mydocker run` lands) joined to it, pings between them, to the
//! host and to the outside through masquerade, and a published port
//! reached from the outside. Everything lives in namespaces this process
//! holds, so it all disappears when the demo ends, however it ends.

use std::time::Duration;

use mydocker::runtime::{ConnectRequest, PortMapping, Protocol, Runtime};
use mydocker_tests::{retry, Netns, Sandbox, HOST_ADDR, OUTSIDE_ADDR};

/// Container ids are 64 hex characters, as Docker's.
const C1: &str = "c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1";
const C2: &str = "c2c2c2c2c2c2c2c2c2c2c2c2c2c2c2c2c2c2c2c2c2c2c2c2c2c2c2c2c2c2c2c2";

fn banner(text: &str) {
    println!("\n\x1b[1m$ {text}\x1b[0m");
}

fn show(ns: &Netns, label: &str, args: &[&str]) {
    banner(&format!("[{label}] {}", args.join(" ")));
    let out = ns.run(args);
    print!("{}", String::from_utf8_lossy(&out.stdout));
    eprint!("{}", String::from_utf8_lossy(&out.stderr));
}

fn mydocker(sb: &Sandbox, args: &[&str]) {
    banner(&format!("mydocker {}", args.join(" ")));
    let out = sb.mydocker(args);
    print!("{}", String::from_utf8_lossy(&out.stdout));
    eprint!("{}", String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "mydocker {args:?} failed");
}

fn main() {
    let sb = Sandbox::new();
    let c1 = Netns::new();
    let c2 = Netns::new();
    println!("sandbox: a \"host\" namespace ({HOST_ADDR}) and an \"outside\" one ({OUTSIDE_ADDR}); state in {}", sb.root.path().display());

    mydocker(&sb, &["driver", "list"]);
    mydocker(
        &sb,
        &[
            "network",
            "create",
            "--driver",
            "bridge",
            "--subnet",
            "10.0.0.1/24",
            "testbridge",
        ],
    );
    mydocker(&sb, &["network", "list"]);

    banner("connect two containers (library: runtime.connect), the first with -p 8080:80");
    let root = sb.root.path().to_path_buf();
    let (fd1, fd2) = (c1.fd(), c2.fd());
    let endpoints = sb.host.enter(move || {
        let rt = Runtime::open(&root).expect("open state root");
        let ports = [PortMapping {
            host_ip: None,
            host_port: 8080,
            container_port: 80,
            protocol: Protocol::Tcp,
        }];
        let a = rt
            .connect(ConnectRequest {
                network: "testbridge",
                container_id: C1,
                netns: fd1,
                port_mappings: &ports,
            })
            .expect("connect c1");
        let b = rt
            .connect(ConnectRequest {
                network: "testbridge",
                container_id: C2,
                netns: fd2,
                port_mappings: &[],
            })
            .expect("connect c2");
        vec![a, b]
    });
    for e in &endpoints {
        println!(
            "container {}: {} {}/{} mac {} host side {}",
            &e.container_id[..12],
            e.interface,
            e.address,
            e.prefix_len,
            e.mac,
            e.host_interface.as_deref().unwrap_or("-")
        );
    }

    show(&c1, "container c1", &["ip", "addr"]);
    show(&c2, "container c2", &["ip", "-br", "addr"]);
    show(&c1, "container c1", &["ip", "route"]);
    show(&c1, "container c1", &["ping", "-c", "2", "10.0.0.3"]);
    show(&sb.host, "host", &["ping", "-c", "1", "10.0.0.2"]);
    show(&c2, "container c2", &["ping", "-c", "1", OUTSIDE_ADDR]);

    banner("[container c1] echo hello-from-c1 | nc -l -p 80   (in the background)");
    let server = c1.spawn_sh("while true; do echo hello-from-c1 | busybox nc -l -p 80; done");
    banner(&format!("[outside] nc {HOST_ADDR} 8080"));
    let mut reply = String::new();
    retry(Duration::from_secs(5), || {
        let out = sb
            .outside
            .run(&["busybox", "nc", "-w", "1", HOST_ADDR, "8080"]);
        reply = String::from_utf8_lossy(&out.stdout).trim().to_string();
        !reply.is_empty()
    });
    println!("{reply}");
    drop(server);

    show(
        &sb.host,
        "host",
        &["sh", "-c", "iptables-save -t nat | grep MYDOCKER"],
    );
    mydocker(&sb, &["network", "inspect", "testbridge"]);

    banner("disconnect both containers (library: runtime.disconnect), then remove the network");
    let root = sb.root.path().to_path_buf();
    let (fd1, fd2) = (c1.fd(), c2.fd());
    sb.host.enter(move || {
        let rt = Runtime::open(&root).expect("open state root");
        rt.disconnect("testbridge", C1, Some(fd1))
            .expect("disconnect c1");
        rt.disconnect("testbridge", C2, Some(fd2))
            .expect("disconnect c2");
    });
    mydocker(&sb, &["network", "rm", "testbridge"]);
    show(&sb.host, "host", &["ip", "-br", "link"]);
    let left = sb.host.mydocker_rules();
    println!(
        "\nmydocker firewall lines left in the host namespace: {}",
        left.len()
    );
    assert_eq!(reply, "hello-from-c1", "published port did not answer");
    println!("demo finished: all namespaces are released as this process exits");
}
