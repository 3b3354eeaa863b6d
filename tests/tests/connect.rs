//! The library's connect/disconnect, with plain namespaces standing in for
//! containers: real links, real packets, all inside the sandbox.

use mydocker::runtime::{ConnectRequest, CreateNetwork, PortMapping, Protocol, Runtime};
use mydocker_tests::{Netns, Sandbox, HOST_ADDR, OUTSIDE_ADDR};

const C1: &str = "c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1";
const C2: &str = "c2c2c2c2c2c2c2c2c2c2c2c2c2c2c2c2c2c2c2c2c2c2c2c2c2c2c2c2c2c2c2c2";

#[test]
fn two_namespaces_on_one_bridge_talk_reach_outside_and_publish_ports() {
    let sb = Sandbox::new();
    let c1 = Netns::new();
    let c2 = Netns::new();
    let root = sb.root.path().to_path_buf();
    let (fd1, fd2) = (c1.fd(), c2.fd());

    let (e1, e2) = sb.host.enter(move || {
        let rt = Runtime::open(&root).unwrap();
        rt.create_network(&CreateNetwork {
            name: "testbridge".into(),
            driver: "bridge".into(),
            subnet: "10.0.0.1/24".into(),
            ..Default::default()
        })
        .unwrap();
        let ports = [
            PortMapping {
                host_ip: None,
                host_port: 8080,
                container_port: 80,
                protocol: Protocol::Tcp,
            },
            PortMapping {
                host_ip: Some("192.0.2.1".parse().unwrap()),
                host_port: 5353,
                container_port: 53,
                protocol: Protocol::Udp,
            },
        ];
        let e1 = rt
            .connect(ConnectRequest {
                network: "testbridge",
                container_id: C1,
                netns: fd1,
                port_mappings: &ports,
            })
            .unwrap();
        let e2 = rt
            .connect(ConnectRequest {
                network: "testbridge",
                container_id: C2,
                netns: fd2,
                port_mappings: &[],
            })
            .unwrap();
        (e1, e2)
    });
    assert_eq!(e1.address.to_string(), "10.0.0.2");
    assert_eq!(e2.address.to_string(), "10.0.0.3");
    assert_eq!(e1.interface, "eth0");
    assert_eq!(e1.mac.len(), 17);

    // The container end is eth0 inside the namespace, up, with the address
    // and a default route via the gateway.
    let a = c1.ok(&["ip", "-4", "-o", "addr", "show", "dev", "eth0"]);
    assert!(a.contains("10.0.0.2/24"), "{a}");
    let r = c1.ok(&["ip", "route", "show", "default"]);
    assert!(r.contains("via 10.0.0.1 dev eth0"), "{r}");
    // The host end is attached to the bridge.
    let host_if = e1.host_interface.clone().unwrap();
    assert!(
        host_if.starts_with("veth") && host_if.len() == 12,
        "{host_if}"
    );
    let l = sb.host.ok(&["ip", "-o", "link", "show", &host_if]);
    assert!(l.contains("master testbridge"), "{l}");
    // The network is IPv4-only: neither end autoconfigures IPv6, so no
    // link-local address and no DAD/MLD multicast flooded to every port of
    // the bridge. Both ends have a single queue.
    let c6 = c1.ok(&["ip", "-6", "-o", "addr", "show", "dev", "eth0"]);
    assert!(c6.trim().is_empty(), "container eth0 has IPv6: {c6}");
    let h6 = sb
        .host
        .ok(&["ip", "-6", "-o", "addr", "show", "dev", &host_if]);
    assert!(h6.trim().is_empty(), "host end has IPv6: {h6}");
    for detail in [
        c1.ok(&["ip", "-d", "link", "show", "eth0"]),
        sb.host.ok(&["ip", "-d", "link", "show", &host_if]),
    ] {
        assert!(
            detail.contains("addrgenmode none") && detail.contains("numtxqueues 1 numrxqueues 1"),
            "{detail}"
        );
    }

    // Neighbours on the bridge, the host, and the outside via masquerade
    // (the outside namespace has no route to 10.0.0.0/24).
    assert!(c1.ping("10.0.0.3"));
    assert!(c2.ping("10.0.0.2"));
    assert!(sb.host.ping("10.0.0.2"));
    assert!(sb.host.ping("10.0.0.3"));
    assert!(c1.ping(OUTSIDE_ADDR));
    assert!(c2.ping(OUTSIDE_ADDR));

    // A TCP server in c1 behind -p 8080:80: reachable from the outside via
    // the host's address, and from the host itself.
    let server = c1.spawn_sh("while true; do echo hello-from-c1 | busybox nc -l -p 80; done");
    let from_outside = sb.outside.fetch(HOST_ADDR, "8080");
    let from_host = sb.host.fetch(HOST_ADDR, "8080");
    drop(server);
    assert_eq!(from_outside.as_deref(), Some("hello-from-c1"));
    assert_eq!(from_host.as_deref(), Some("hello-from-c1"));

    let rules = sb.host.mydocker_rules();
    assert!(
        rules
            .iter()
            .any(|r| r.contains("--dport 8080") && r.contains("10.0.0.2:80")),
        "{rules:#?}"
    );
    assert!(
        rules
            .iter()
            .any(|r| r.contains("-d 192.0.2.1/32 -p udp") && r.contains("10.0.0.2:53")),
        "{rules:#?}"
    );

    // Disconnect and remove: no veth, no rule, addresses released.
    let root = sb.root.path().to_path_buf();
    let (fd1, fd2) = (c1.fd(), c2.fd());
    let allocated = sb.host.enter(move || {
        let rt = Runtime::open(&root).unwrap();
        rt.disconnect("testbridge", C1, Some(fd1)).unwrap();
        rt.disconnect("testbridge", C2, Some(fd2)).unwrap();
        let allocated = rt.allocated_addresses("testbridge").unwrap();
        rt.remove_network("testbridge").unwrap();
        allocated
    });
    assert!(allocated.is_empty(), "{allocated:?}");
    assert!(!c1.links().iter().any(|l| l == "eth0"));
    assert!(!sb
        .host
        .links()
        .iter()
        .any(|l| l.starts_with("veth") || l == "testbridge"));
    assert!(
        sb.host.mydocker_rules().is_empty(),
        "{:#?}",
        sb.host.mydocker_rules()
    );
}

#[test]
fn released_address_is_reused_and_removal_waits_for_endpoints() {
    let sb = Sandbox::new();
    let c1 = Netns::new();
    let c2 = Netns::new();
    let root = sb.root.path().to_path_buf();
    let (fd1, fd2, fd1b) = (c1.fd(), c2.fd(), c1.fd());
    sb.host.enter(move || {
        let rt = Runtime::open(&root).unwrap();
        rt.create_network(&CreateNetwork {
            name: "n".into(),
            driver: "bridge".into(),
            subnet: "10.7.0.0/29".into(),
            ..Default::default()
        })
        .unwrap();
        let e1 = rt
            .connect(ConnectRequest {
                network: "n",
                container_id: C1,
                netns: fd1,
                port_mappings: &[],
            })
            .unwrap();
        assert_eq!(e1.address.to_string(), "10.7.0.2");
        // Connecting the same container twice is refused and changes nothing.
        let err = rt
            .connect(ConnectRequest {
                network: "n",
                container_id: C1,
                netns: fd1b,
                port_mappings: &[],
            })
            .unwrap_err();
        assert!(err.to_string().contains("already connected"), "{err}");
        // Removal is refused while an endpoint remains.
        let err = rt.remove_network("n").unwrap_err();
        assert!(err.to_string().contains("still has 1 endpoint"), "{err}");
        // The namespace is gone before disconnect (container exited):
        // disconnect still cleans up.
        rt.disconnect("n", C1, None).unwrap();
        let e2 = rt
            .connect(ConnectRequest {
                network: "n",
                container_id: C2,
                netns: fd2,
                port_mappings: &[],
            })
            .unwrap();
        assert_eq!(
            e2.address.to_string(),
            "10.7.0.2",
            "released address is handed out again"
        );
        rt.disconnect("n", C2, None).unwrap();
        rt.remove_network("n").unwrap();
    });
    assert!(!sb.host.links().iter().any(|l| l.starts_with("veth")));
}

#[test]
fn failed_connect_rolls_back_links_and_address() {
    let sb = Sandbox::new();
    let c1 = Netns::new();
    // Port 0 passes the driver but the host refuses it at publish time,
    // after the veth, address and route exist: all must be rolled back.
    let root = sb.root.path().to_path_buf();
    let fd1 = c1.fd();
    let err = sb.host.enter(move || {
        let rt = Runtime::open(&root).unwrap();
        rt.create_network(&CreateNetwork {
            name: "n".into(),
            driver: "bridge".into(),
            subnet: "10.8.0.0/24".into(),
            ..Default::default()
        })
        .unwrap();
        let bad = [PortMapping {
            host_ip: None,
            host_port: 0,
            container_port: 80,
            protocol: Protocol::Tcp,
        }];
        let err = rt
            .connect(ConnectRequest {
                network: "n",
                container_id: C1,
                netns: fd1,
                port_mappings: &bad,
            })
            .unwrap_err()
            .to_string();
        assert!(rt.allocated_addresses("n").unwrap().is_empty());
        assert!(rt.endpoints("n").unwrap().is_empty());
        rt.remove_network("n").unwrap();
        err
    });
    assert!(
        err.contains("driver bridge") && err.contains("port 0"),
        "{err}"
    );
    assert!(!c1.links().iter().any(|l| l == "eth0"), "{:?}", c1.links());
    assert!(!sb.host.links().iter().any(|l| l.starts_with("veth")));
}

#[test]
fn concurrent_connects_get_distinct_addresses() {
    const N: usize = 8;
    let sb = Sandbox::new();
    let containers: Vec<Netns> = (0..N).map(|_| Netns::new()).collect();
    let root = sb.root.path().to_path_buf();
    sb.host.enter({
        let root = root.clone();
        move || {
            Runtime::open(&root)
                .unwrap()
                .create_network(&CreateNetwork {
                    name: "busy".into(),
                    driver: "bridge".into(),
                    subnet: "10.9.0.0/24".into(),
                    ..Default::default()
                })
                .unwrap();
        }
    });
    // Each thread opens its own Runtime, as separate processes would: the
    // per-network flock is what keeps their allocations apart.
    let handles: Vec<_> = containers
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let fd = c.fd();
            let root = root.clone();
            let host = sb.host.fd();
            std::thread::spawn(move || {
                nix::sched::setns(&host, nix::sched::CloneFlags::CLONE_NEWNET).unwrap();
                let id = format!("{i:064x}");
                let rt = Runtime::open(&root).unwrap();
                rt.connect(ConnectRequest {
                    network: "busy",
                    container_id: &id,
                    netns: fd,
                    port_mappings: &[],
                })
                .unwrap()
                .address
            })
        })
        .collect();
    let mut addrs: Vec<_> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    addrs.sort();
    addrs.dedup();
    assert_eq!(addrs.len(), N, "{addrs:?}");
    for c in &containers {
        assert!(c.ping("10.9.0.1"));
    }

    // The CLI refuses to remove a network that still has endpoints.
    let err = sb.mydocker_err(&["network", "rm", "busy"]);
    assert!(err.contains("still has 8 endpoint(s)"), "{err}");

    let fds: Vec<_> = containers.iter().map(|c| c.fd()).collect();
    sb.host.enter(move || {
        let rt = Runtime::open(&root).unwrap();
        for (i, fd) in fds.into_iter().enumerate() {
            rt.disconnect("busy", &format!("{i:064x}"), Some(fd))
                .unwrap();
        }
        assert!(rt.allocated_addresses("busy").unwrap().is_empty());
        rt.remove_network("busy").unwrap();
    });
    assert!(sb.host.mydocker_rules().is_empty());
}
