//! The hostile-driver suite: a driver (written with the SDK) tries what it
//! must not; each attempt fails with the exact error and afterwards no
//! link, address, route, rule, sysctl, IP allocation or state file differs.

use mydocker::runtime::{ConnectRequest, Runtime};
use mydocker_tests::{driver_wasm, Netns, Sandbox};

/// Everything a driver could have changed, as text.
fn world(sb: &Sandbox, containers: &[&Netns]) -> String {
    let mut out = String::new();
    out += &sb
        .host
        .ok(&["ip", "-o", "link", "show"])
        .lines()
        .map(|l| {
            // Link counters and flags change with traffic; names, masters and
            // mtus are what a driver could alter.
            let name = l.split(": ").nth(1).unwrap_or("");
            let mtu = l
                .split(" mtu ")
                .nth(1)
                .and_then(|r| r.split(' ').next())
                .unwrap_or("");
            let master = l
                .split(" master ")
                .nth(1)
                .and_then(|r| r.split(' ').next())
                .unwrap_or("-");
            format!("link {name} mtu {mtu} master {master}\n")
        })
        .collect::<String>();
    out += &sb.host.ok(&["ip", "-o", "-4", "addr", "show"]);
    // A bridge's carrier ("linkdown") follows its ports, not the driver.
    out += &sb
        .host
        .ok(&["ip", "-4", "route", "show", "table", "all"])
        .replace(" linkdown", "");
    out += &sb
        .host
        .ok(&["iptables-save"])
        .lines()
        .filter(|l| !l.starts_with('#') && !l.starts_with(':'))
        .collect::<Vec<_>>()
        .join("\n");
    out += &sb.host.ok(&["cat", "/proc/sys/net/ipv4/ip_forward"]);
    for c in containers {
        out += &c.ok(&["ip", "-o", "-4", "addr", "show"]);
        out += &c.ok(&["ip", "route", "show"]);
    }
    for (path, digest) in sb.state_snapshot() {
        out += &format!("{} {digest}\n", path.display());
    }
    out
}

#[test]
fn hostile_create_network_attempts_are_denied_and_leave_no_trace() {
    let sb = Sandbox::new();
    sb.mydocker_ok(&["driver", "install", "--yes", &driver_wasm("hostile_driver")]);
    // Something to attack: another network's bridge (made by bridge.wasm).
    sb.mydocker_ok(&["network", "create", "--subnet", "10.1.0.0/24", "victim"]);
    let before = world(&sb, &[]);

    let cases: &[(&[&str], &str)] = &[
        (
            &["mode=delete-host-link", "target=ext0"],
            "driver hostile: denied: driver hostile may not change link ext0",
        ),
        (
            &["mode=delete-host-link", "target=victim"],
            "may not change link victim",
        ),
        (
            &["mode=mtu-foreign", "target=ext0"],
            "may not change link ext0",
        ),
        (
            &["mode=addr-on-foreign", "target=ext0"],
            "may not change link ext0",
        ),
        (
            &["mode=enslave-foreign", "target=ext0"],
            "may not change link ext0",
        ),
        (
            &["mode=masquerade-foreign", "target=victim"],
            "was not granted capability 'nat'",
        ),
        (
            &["mode=undeclared-capability"],
            "was not granted capability 'sysctl:ip_forward'",
        ),
        (
            &["mode=host-default-route"],
            "drivers may not change the host's default route",
        ),
        (
            &["mode=container-outside-connect"],
            "only reachable during connect and disconnect",
        ),
        (
            &["mode=addr-outside-subnet"],
            "address 192.0.2.99 is outside the network's subnet 10.9.0.0/24",
        ),
        (
            &["mode=many-links"],
            "exceeded its quota of 256 changes in one call",
        ),
        (
            &["mode=huge-string"],
            "driver hostile failed: it ran out of memory (limit 64 MiB)",
        ),
        (
            &["mode=halfway"],
            "driver hostile: failed halfway on purpose",
        ),
    ];
    for (opts, expected) in cases {
        let mut args = vec![
            "network",
            "create",
            "--driver",
            "hostile",
            "--subnet",
            "10.9.0.0/24",
        ];
        for o in *opts {
            args.extend(["-o", o]);
        }
        args.push("evil");
        let err = sb.mydocker_err(&args);
        assert!(
            err.contains(expected),
            "{opts:?}: expected '{expected}' in: {err}"
        );
        assert_eq!(world(&sb, &[]), before, "{opts:?} left a trace");
    }
    // The driver behaving is fine; the victim network still works.
    sb.mydocker_ok(&[
        "network",
        "create",
        "--driver",
        "hostile",
        "--subnet",
        "10.9.0.0/24",
        "fine",
    ]);
    sb.mydocker_ok(&["network", "rm", "fine", "victim"]);
}

#[test]
fn hostile_connect_attempts_are_contained() {
    let sb = Sandbox::new();
    sb.mydocker_ok(&["driver", "install", "--yes", &driver_wasm("hostile_driver")]);
    sb.mydocker_ok(&["network", "create", "--subnet", "10.1.0.0/24", "victim"]);
    let bystander = Netns::new();
    let root = sb.root.path().to_path_buf();
    let fd = bystander.fd();
    let victim_veth = sb.host.enter(move || {
        let rt = Runtime::open(&root).unwrap();
        let id = "b".repeat(64);
        rt.connect(ConnectRequest {
            network: "victim",
            container_id: &id,
            netns: fd,
            port_mappings: &[],
        })
        .unwrap()
        .host_interface
        .unwrap()
    });
    let target = format!("target={victim_veth}");
    let cases: Vec<(Vec<&str>, &str, &str)> = vec![
        (
            vec!["connect=loop"],
            "l1",
            "driver hostile failed: it exceeded its time limit of 1000 ms",
        ),
        (
            vec!["connect=delete-foreign", &target],
            "l2",
            "may not change link veth",
        ),
        (
            vec!["connect=wrong-address"],
            "l3",
            "the container may only get its own address",
        ),
        (
            vec!["connect=halfway"],
            "l4",
            "connect failed halfway on purpose",
        ),
    ];
    for (opts, name, expected) in cases {
        let mut args = vec![
            "network",
            "create",
            "--driver",
            "hostile",
            "--subnet",
            "10.9.0.0/24",
        ];
        for o in &opts {
            args.extend(["-o", o]);
        }
        args.push(name);
        sb.mydocker_ok(&args);
        let c = Netns::new();
        let before = world(&sb, &[&c, &bystander]);
        let root = sb.root.path().to_path_buf();
        let fd = c.fd();
        let net = name.to_string();
        let err = sb.host.enter(move || {
            let rt = Runtime::open(&root).unwrap();
            let id = "c".repeat(64);
            rt.connect(ConnectRequest {
                network: &net,
                container_id: &id,
                netns: fd,
                port_mappings: &[],
            })
            .unwrap_err()
            .to_string()
        });
        assert!(
            err.contains(expected),
            "{opts:?}: expected '{expected}' in: {err}"
        );
        assert_eq!(
            world(&sb, &[&c, &bystander]),
            before,
            "{opts:?} left a trace"
        );
        assert!(bystander.ping("10.1.0.1"), "the bystander lost its network");
        sb.mydocker_ok(&["network", "rm", name]);
    }
}

#[test]
fn killed_mid_operation_is_rolled_back_by_the_next_command() {
    let sb = Sandbox::with_busybox();
    let before = world(&sb, &[]);
    // SIGKILL after the bridge exists and has its address (2nd change).
    let out = sb
        .host
        .command(mydocker_tests::mydocker_bin())
        .env("MYDOCKER_FAULT", "driver-change:2")
        .arg("--root")
        .arg(sb.root.path())
        .args(["network", "create", "--subnet", "10.3.0.0/24", "n"])
        .output()
        .unwrap();
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(out.status.signal(), Some(9), "the fault point did not fire");
    assert!(
        sb.host.links().contains(&"n".to_string()),
        "the bridge should exist before recovery"
    );
    // Any next command finishes the undo.
    sb.mydocker_ok(&["network", "ls"]);
    assert_eq!(world(&sb, &[]), before);
    assert_eq!(
        sb.mydocker_ok(&["system", "gc"]).trim(),
        "nothing to recover"
    );

    // The same in the middle of a container's connect (in its supervisor):
    // veth made, address allocated, then the process dies.
    sb.mydocker_ok(&["network", "create", "--subnet", "10.3.0.0/24", "n"]);
    let before = world(&sb, &[]);
    let out = sb
        .host
        .command(mydocker_tests::mydocker_bin())
        .env("MYDOCKER_FAULT", "driver-change:3")
        .arg("--root")
        .arg(sb.root.path())
        .args([
            "run", "-d", "--name", "k", "--net", "n", "busybox", "sleep", "100",
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("supervisor died"), "{err}");
    sb.mydocker_ok(&["system", "gc"]);
    assert!(sb.ps().is_empty(), "{:?}", sb.ps());
    assert_eq!(world(&sb, &[]), before);
    let inspect: serde_json::Value =
        serde_json::from_str(&sb.mydocker_ok(&["network", "inspect", "n"])).unwrap();
    assert!(inspect[0]["endpoints"].as_array().unwrap().is_empty());
    // The address is free again.
    let o = sb.mydocker(&[
        "run", "--rm", "--net", "n", "busybox", "ip", "-4", "addr", "show", "eth0",
    ]);
    assert!(String::from_utf8_lossy(&o.stdout).contains("10.3.0.2/24"));
    sb.mydocker_ok(&["network", "rm", "n"]);
}

#[test]
fn dry_run_prints_the_plan_and_touches_nothing() {
    let sb = Sandbox::new();
    let before = world(&sb, &[]);
    let out = sb.mydocker_ok(&[
        "network",
        "create",
        "--dry-run",
        "--subnet",
        "10.4.0.0/24",
        "-o",
        "bridge_name=plan0",
        "planned",
    ]);
    assert!(
        out.contains("network planned would be created by:"),
        "{out}"
    );
    assert!(out.contains("create bridge plan0"), "{out}");
    assert!(out.contains("add 10.4.0.1/24 to plan0"), "{out}");
    assert!(out.contains("masquerade 10.4.0.0/24"), "{out}");
    assert_eq!(world(&sb, &[]), before);
    assert_eq!(sb.mydocker_ok(&["network", "ls"]).lines().count(), 1);
}
