//! Reliability: concurrent mydocker processes, a simulated reboot, unsafe
//! state roots and state files from the future.

use std::collections::BTreeSet;
use std::os::unix::fs::PermissionsExt;

use mydocker_tests::Sandbox;

#[test]
fn concurrent_network_creates_make_one_network_per_subnet() {
    let sb = Sandbox::new();
    // 32 processes, 8 distinct subnets, 4 contenders each (and a /16 that
    // overlaps them all).
    let results: Vec<(String, bool, String)> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..32)
            .map(|i| {
                let sb = &sb;
                s.spawn(move || {
                    let subnet = if i == 31 {
                        "10.60.0.0/16".to_string()
                    } else {
                        format!("10.60.{}.0/24", i % 8)
                    };
                    let name = format!("net{i}");
                    let out = sb.mydocker(&["network", "create", "--subnet", &subnet, &name]);
                    (
                        subnet,
                        out.status.success(),
                        String::from_utf8_lossy(&out.stderr).into_owned(),
                    )
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let nets: Vec<serde_json::Value> =
        serde_json::from_str(&sb.mydocker_ok(&["network", "ls", "--format", "json"])).unwrap();
    let subnets: BTreeSet<String> = nets
        .iter()
        .map(|n| n["subnet"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        nets.len(),
        subnets.len(),
        "two networks share a subnet: {nets:#?}"
    );
    let won = results.iter().filter(|r| r.1).count();
    assert_eq!(won, nets.len());
    assert!(
        (8..=9).contains(&won) || won == 1,
        "{won} networks: {nets:#?}"
    );
    for (subnet, ok, err) in &results {
        if !ok {
            assert!(
                err.contains("overlaps network") && err.lines().count() == 1,
                "{subnet}: {err}"
            );
        }
    }
    // Every recorded network has its bridge, and nothing else was left.
    let links = sb.host.links();
    for n in &nets {
        assert!(
            links.contains(&n["name"].as_str().unwrap().to_string()),
            "{links:?}"
        );
    }
    assert_eq!(links.len(), 2 + nets.len(), "{links:?}");
}

#[test]
fn many_concurrent_runs_get_distinct_addresses_and_clean_up() {
    const N: usize = 64;
    let sb = Sandbox::with_busybox();
    sb.mydocker_ok(&["network", "create", "--subnet", "10.61.0.0/24", "busy"]);
    let ok = std::thread::scope(|s| {
        let handles: Vec<_> = (0..N)
            .map(|i| {
                let sb = &sb;
                s.spawn(move || {
                    let name = format!("c{i}");
                    sb.mydocker(&[
                        "run", "-d", "--name", &name, "--net", "busy", "busybox", "sleep", "600",
                    ])
                    .status
                    .success()
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap())
            .filter(|ok| *ok)
            .count()
    });
    assert_eq!(ok, N);
    let ps = sb.ps();
    let ips: BTreeSet<String> = ps
        .iter()
        .map(|c| c["ips"][0]["address"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(ips.len(), N, "addresses are not distinct");
    assert!(ps.iter().all(|c| c["state"] == "running"));
    for ip in ips.iter().step_by(8) {
        assert!(sb.host.ping(ip), "{ip} does not answer");
    }
    std::thread::scope(|s| {
        for chunk in ps.chunks(16) {
            let sb = &sb;
            s.spawn(move || {
                let names: Vec<&str> = chunk.iter().map(|c| c["name"].as_str().unwrap()).collect();
                let mut args = vec!["rm", "-f"];
                args.extend(names);
                sb.mydocker_ok(&args);
            });
        }
    });
    assert!(sb.ps().is_empty());
    assert!(!sb.host.links().iter().any(|l| l.starts_with("veth")));
    let inspect: serde_json::Value =
        serde_json::from_str(&sb.mydocker_ok(&["network", "inspect", "busy"])).unwrap();
    assert!(inspect[0]["endpoints"].as_array().unwrap().is_empty());
    sb.mydocker_ok(&["network", "rm", "busy"]);
}

#[test]
fn after_a_reboot_networks_survive_and_containers_are_exited() {
    let mut sb = Sandbox::with_busybox();
    sb.mydocker_ok(&["network", "create", "--subnet", "10.62.0.0/24", "n"]);
    sb.mydocker_ok(&[
        "run", "-d", "--name", "c1", "--net", "n", "busybox", "sleep", "600",
    ]);
    sb.reboot();
    assert!(
        !sb.host.links().contains(&"n".to_string()),
        "fresh namespace"
    );
    let ls = sb.mydocker_ok(&["network", "ls"]);
    assert!(ls.contains("10.62.0.0/24"), "{ls}");
    let c = sb.container("c1").unwrap();
    assert_eq!(c["state"], "exited");
    assert_eq!(c["error"], "the machine rebooted");
    let inspect: serde_json::Value =
        serde_json::from_str(&sb.mydocker_ok(&["network", "inspect", "n"])).unwrap();
    assert!(inspect[0]["endpoints"].as_array().unwrap().is_empty());
    // First use re-creates the bridge and NAT; the address is free again.
    let o = sb.mydocker(&[
        "run",
        "--rm",
        "--net",
        "n",
        "busybox",
        "sh",
        "-c",
        "ip -4 addr show eth0; ping -c 1 -W 2 192.0.2.2",
    ]);
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        o.status.success() && out.contains("10.62.0.2/24"),
        "{out}{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(sb.host.links().contains(&"n".to_string()));
    assert!(sb
        .host
        .mydocker_rules()
        .iter()
        .any(|r| r.contains("10.62.0.0/24")));
    sb.mydocker_ok(&["rm", "c1"]);
    sb.mydocker_ok(&["network", "rm", "n"]);
    assert!(sb.host.mydocker_rules().is_empty());
}

/// ipam.json and endpoint records live only as long as the boot and are not
/// flushed to disk, so a power loss may leave them torn. The reset after the
/// reboot must not care.
#[test]
fn after_a_reboot_torn_addresses_and_endpoints_are_reset() {
    let mut sb = Sandbox::with_busybox();
    sb.mydocker_ok(&["network", "create", "--subnet", "10.64.0.0/24", "n"]);
    sb.mydocker_ok(&[
        "run", "-d", "--name", "c1", "--net", "n", "busybox", "sleep", "600",
    ]);
    sb.reboot();
    let net = sb.root.path().join("networks/n");
    std::fs::write(net.join("ipam.json"), b"").unwrap();
    let endpoints: Vec<_> = std::fs::read_dir(net.join("endpoints"))
        .unwrap()
        .flatten()
        .collect();
    assert_eq!(endpoints.len(), 1);
    std::fs::write(endpoints[0].path(), b"{\"container_id\": \"tr").unwrap();

    let o = sb.mydocker(&[
        "run", "--rm", "--net", "n", "busybox", "ip", "-4", "addr", "show", "eth0",
    ]);
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        o.status.success() && out.contains("10.64.0.2/24"),
        "{out}{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let inspect: serde_json::Value =
        serde_json::from_str(&sb.mydocker_ok(&["network", "inspect", "n"])).unwrap();
    assert!(inspect[0]["endpoints"].as_array().unwrap().is_empty());
    sb.mydocker_ok(&["rm", "c1"]);
    sb.mydocker_ok(&["network", "rm", "n"]);
    assert!(sb.host.mydocker_rules().is_empty());
}

/// A boot id that cannot be read is not a reboot: resetting a live machine
/// would hand the running containers' addresses out again.
#[test]
fn an_unreadable_boot_id_resets_nothing() {
    let sb = Sandbox::with_busybox();
    sb.mydocker_ok(&["network", "create", "--subnet", "10.65.0.0/24", "n"]);
    sb.mydocker_ok(&[
        "run", "-d", "--name", "c1", "--net", "n", "busybox", "sleep", "600",
    ]);
    let out = sb
        .mydocker_command()
        .env("MYDOCKER_BOOT_ID", "")
        .args(["network", "inspect", "n"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let inspect: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(inspect[0]["endpoints"].as_array().unwrap().len(), 1);
    assert_eq!(sb.container("c1").unwrap()["state"], "running");
    sb.mydocker_ok(&["rm", "-f", "c1"]);
    sb.mydocker_ok(&["network", "rm", "n"]);
}

#[test]
fn unsafe_state_roots_and_future_state_files_are_refused() {
    let sb = Sandbox::new();
    sb.mydocker_ok(&["network", "create", "--subnet", "10.63.0.0/24", "n"]);
    let root = sb.root.path();
    std::fs::set_permissions(root, std::fs::Permissions::from_mode(0o777)).unwrap();
    let err = sb.mydocker_err(&["network", "ls"]);
    assert!(err.contains("writable by other users (mode 777)"), "{err}");
    std::fs::set_permissions(root, std::fs::Permissions::from_mode(0o700)).unwrap();
    nix::unistd::chown(root, Some(nix::unistd::Uid::from_raw(65534)), None).unwrap();
    let err = sb.mydocker_err(&["network", "ls"]);
    assert!(err.contains("owned by uid 65534"), "{err}");
    nix::unistd::chown(root, Some(nix::unistd::Uid::from_raw(0)), None).unwrap();

    let file = root.join("networks/n/network.json");
    let text = std::fs::read_to_string(&file).unwrap();
    std::fs::write(&file, text.replace("\"version\": 1", "\"version\": 7")).unwrap();
    let err = sb.mydocker_err(&["network", "inspect", "n"]);
    assert!(
        err.contains("written by a newer mydocker (format 7"),
        "{err}"
    );
    std::fs::write(&file, text).unwrap();
    sb.mydocker_ok(&["network", "rm", "n"]);
}

#[test]
fn system_gc_reconciles_dead_containers_and_stray_links() {
    let sb = Sandbox::with_busybox();
    sb.mydocker_ok(&["network", "create", "--subnet", "10.64.0.0/24", "n"]);
    sb.mydocker_ok(&[
        "run", "-d", "--name", "c1", "--net", "n", "-p", "7070:70", "busybox", "sleep", "600",
    ]);
    // The container and its supervisor die without a word (OOM killer,
    // kill -9 by an admin): nobody releases the address or the port rule.
    let pid = sb.container("c1").unwrap()["pid"].as_i64().unwrap() as i32;
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let ppid: i32 = stat
        .rsplit(')')
        .next()
        .unwrap()
        .split_whitespace()
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    for p in [ppid, pid] {
        nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(p),
            nix::sys::signal::Signal::SIGKILL,
        )
        .unwrap();
    }
    std::thread::sleep(std::time::Duration::from_millis(300));
    // And someone left a veth on our bridge.
    sb.host.ok(&[
        "ip",
        "link",
        "add",
        "vethstray",
        "type",
        "veth",
        "peer",
        "name",
        "vethstrayp",
    ]);
    sb.host
        .ok(&["ip", "link", "set", "vethstray", "master", "n"]);
    // And a DNAT rule in our chain that no container owns.
    sb.host.ok(&[
        "iptables",
        "-t",
        "nat",
        "-A",
        "MYDOCKER-DNAT",
        "-p",
        "tcp",
        "-m",
        "tcp",
        "--dport",
        "9999",
        "-j",
        "DNAT",
        "--to-destination",
        "10.64.0.99:99",
    ]);

    let plan = sb.mydocker_ok(&["system", "gc", "--dry-run"]);
    assert!(plan.contains("would clean up container c1"), "{plan}");
    assert!(plan.contains("would delete stray link vethstray"), "{plan}");
    assert!(
        plan.contains("would remove stray firewall rule") && plan.contains("--dport 9999"),
        "{plan}"
    );
    assert!(sb.host.links().contains(&"vethstray".to_string()));
    assert!(sb
        .host
        .mydocker_rules()
        .iter()
        .any(|r| r.contains("--dport 7070")));

    let done = sb.mydocker_ok(&["system", "gc"]);
    assert!(
        done.contains("cleaned up container c1") && done.contains("deleted stray link vethstray"),
        "{done}"
    );
    assert!(!sb.host.links().iter().any(|l| l.starts_with("veth")));
    assert!(!sb
        .host
        .mydocker_rules()
        .iter()
        .any(|r| r.contains("--dport 7070") || r.contains("--dport 9999")));
    // The network's own masquerade rule is kept.
    assert!(sb
        .host
        .mydocker_rules()
        .iter()
        .any(|r| r.contains("-s 10.64.0.0/24")));
    let inspect: serde_json::Value =
        serde_json::from_str(&sb.mydocker_ok(&["network", "inspect", "n"])).unwrap();
    assert!(inspect[0]["endpoints"].as_array().unwrap().is_empty());
    assert_eq!(
        sb.mydocker_ok(&["system", "gc"]).trim(),
        "nothing to recover"
    );
    sb.mydocker_ok(&["rm", "c1"]);
    // prune: exited containers and unused networks go.
    sb.mydocker_ok(&[
        "run", "-d", "--name", "done", "--net", "n", "busybox", "true",
    ]);
    assert!(sb.wait_exited("done"));
    assert_eq!(sb.mydocker_ok(&["container", "prune"]).trim(), "done");
    assert_eq!(sb.mydocker_ok(&["network", "prune"]).trim(), "n");
    assert!(sb.host.mydocker_rules().is_empty());
}

/// Runs mydocker with a fault point that SIGKILLs it at that step.
fn killed_at(sb: &Sandbox, point: &str, args: &[&str]) {
    let out = sb
        .mydocker_command()
        .env("MYDOCKER_FAULT", format!("{point}:1"))
        .args(args)
        .output()
        .unwrap();
    use std::os::unix::process::ExitStatusExt;
    // `run -d` reports its supervisor's death instead of dying itself.
    assert!(
        out.status.signal() == Some(9) || !out.status.success(),
        "{point}: the fault did not fire"
    );
}

#[test]
fn crash_at_each_step_then_gc_leaves_a_consistent_machine() {
    let sb = Sandbox::with_busybox();
    let clean_links = sb.host.links();

    // network create, killed after the driver but before the record.
    killed_at(
        &sb,
        "create-network-before-record",
        &["network", "create", "--subnet", "10.65.0.0/24", "n"],
    );
    sb.mydocker_ok(&["system", "gc"]);
    assert_eq!(sb.host.links(), clean_links, "create: bridge leaked");
    assert!(sb
        .host
        .mydocker_rules()
        .iter()
        .all(|r| !r.contains("10.65.0.0")));
    assert!(!sb.mydocker_ok(&["network", "ls"]).contains("10.65.0.0"));

    // run -d, its supervisor killed right after connecting.
    sb.mydocker_ok(&["network", "create", "--subnet", "10.65.0.0/24", "n"]);
    killed_at(
        &sb,
        "run-after-connect",
        &[
            "run", "-d", "--name", "r", "--net", "n", "-p", "6060:60", "busybox", "sleep", "600",
        ],
    );
    sb.mydocker_ok(&["system", "gc"]);
    assert!(
        !sb.host.links().iter().any(|l| l.starts_with("veth")),
        "run: veth leaked"
    );
    assert!(
        !sb.host.mydocker_rules().iter().any(|r| r.contains("6060")),
        "run: DNAT leaked"
    );
    let inspect: serde_json::Value =
        serde_json::from_str(&sb.mydocker_ok(&["network", "inspect", "n"])).unwrap();
    assert!(
        inspect[0]["endpoints"].as_array().unwrap().is_empty(),
        "run: address leaked"
    );
    assert!(sb.ps().iter().all(|c| c["state"] != "running"));

    // network disconnect of a running container, killed after the driver.
    sb.mydocker_ok(&["network", "create", "--subnet", "10.66.0.0/24", "m"]);
    sb.mydocker_ok(&[
        "run", "-d", "--name", "c", "--net", "n", "busybox", "sleep", "600",
    ]);
    sb.mydocker_ok(&["network", "connect", "m", "c"]);
    killed_at(
        &sb,
        "disconnect-after-driver",
        &["network", "disconnect", "m", "c"],
    );
    // Retrying finishes it: the driver's teardown is idempotent.
    sb.mydocker_ok(&["network", "disconnect", "m", "c"]);
    let inspect: serde_json::Value =
        serde_json::from_str(&sb.mydocker_ok(&["network", "inspect", "m"])).unwrap();
    assert!(inspect[0]["endpoints"].as_array().unwrap().is_empty());

    // stop, killed right after sending SIGTERM: the container is untouched
    // or stopping, and a second stop finishes the job.
    killed_at(&sb, "stop-after-signal", &["stop", "-t", "1", "c"]);
    sb.mydocker_ok(&["stop", "-t", "1", "c"]);
    assert!(sb.wait_exited("c"));

    // rm, killed after releasing everything but before deleting the record.
    killed_at(&sb, "rm-after-cleanup", &["rm", "-f", "c"]);
    sb.mydocker_ok(&["rm", "-f", "c"]);
    assert!(sb.container("c").is_none());
    assert!(!sb.host.links().iter().any(|l| l.starts_with("veth")));

    // network rm, killed after the driver tore it down.
    killed_at(&sb, "remove-network-after-driver", &["network", "rm", "m"]);
    // The network is not lost: it is still listed, and removing it again works.
    assert!(sb.mydocker_ok(&["network", "ls"]).contains("10.66.0.0/24"));
    sb.mydocker_ok(&["network", "rm", "m"]);

    for name in sb
        .ps()
        .iter()
        .map(|c| c["name"].as_str().unwrap().to_string())
        .collect::<Vec<_>>()
    {
        sb.mydocker_ok(&["rm", "-f", &name]);
    }
    sb.mydocker_ok(&["network", "rm", "n"]);
    assert_eq!(sb.host.links(), clean_links);
    assert!(
        sb.host.mydocker_rules().is_empty(),
        "{:#?}",
        sb.host.mydocker_rules()
    );
}

/// One table of malformed input across every command and flag: each is a
/// one-line error naming the culprit, a non-zero exit, and no change to the
/// state root, links or rules.
#[test]
fn malformed_input_table() {
    let sb = Sandbox::with_busybox();
    sb.mydocker_ok(&["network", "create", "--subnet", "10.70.0.0/24", "n"]);
    let long = "a".repeat(300);
    let v_missing = format!("{}/missing:/x", sb.root.path().display());
    let v_rx = format!("{}:/x:rx", sb.root.path().display());
    let table: Vec<(Vec<&str>, &str)> = vec![
        // network names and CIDRs
        (
            vec!["network", "create", "--subnet", "10.71.0.0/24", "a/b"],
            "a/b",
        ),
        (
            vec!["network", "create", "--subnet", "10.71.0.0/24", ".."],
            "'..'",
        ),
        (
            vec![
                "network",
                "create",
                "--subnet",
                "10.71.0.0/24",
                "with space",
            ],
            "with space",
        ),
        (
            vec!["network", "create", "--subnet", "10.71.0.0/24", &long],
            "longer than 64",
        ),
        (
            vec!["network", "create", "--subnet", "10.71.0.0/24", "réseau"],
            "réseau",
        ),
        (
            vec!["network", "create", "--subnet", "10.71.0.0/33", "x"],
            "10.71.0.0/33",
        ),
        (
            vec!["network", "create", "--subnet", "300.1.1.1/24", "x"],
            "300.1.1.1/24",
        ),
        (
            vec!["network", "create", "--subnet", "10.71.0.0/24 ", "x"],
            "10.71.0.0/24 ",
        ),
        (
            vec!["network", "create", "--subnet", "fd00::/64", "x"],
            "fd00::/64",
        ),
        (
            vec!["network", "create", "--subnet", "", "x"],
            "invalid subnet",
        ),
        (
            vec![
                "network",
                "create",
                "--subnet",
                "10.71.0.0/24",
                "--gateway",
                "10.71.0.0",
                "x",
            ],
            "10.71.0.0",
        ),
        (
            vec![
                "network",
                "create",
                "--subnet",
                "10.71.0.0/24",
                "--gateway",
                "banana",
                "x",
            ],
            "banana",
        ),
        (
            vec![
                "network",
                "create",
                "--subnet",
                "10.71.0.0/24",
                "-o",
                "=v",
                "x",
            ],
            "'=v'",
        ),
        (
            vec![
                "network",
                "create",
                "--subnet",
                "10.71.0.0/24",
                "-o",
                "mtu=9",
                "x",
            ],
            "mtu='9'",
        ),
        (
            vec![
                "network",
                "create",
                "--subnet",
                "10.71.0.0/24",
                "-o",
                "enable_ip_masquerade=maybe",
                "x",
            ],
            "maybe",
        ),
        (
            vec![
                "network",
                "create",
                "--subnet",
                "10.71.0.0/24",
                "--driver",
                "Bad Name",
                "x",
            ],
            "Bad Name",
        ),
        (
            vec!["network", "connect", "n", "ghost"],
            "container ghost not found",
        ),
        // ports
        (
            vec!["run", "--net", "n", "-p", "0:80", "busybox", "true"],
            "'0:80'",
        ),
        (
            vec!["run", "--net", "n", "-p", "65536:80", "busybox", "true"],
            "'65536:80'",
        ),
        (
            vec!["run", "--net", "n", "-p", "8000-8010:80", "busybox", "true"],
            "ranges",
        ),
        (
            vec!["run", "--net", "n", "-p", "8080:80/sctp", "busybox", "true"],
            "sctp",
        ),
        (
            vec![
                "run",
                "--net",
                "n",
                "-p",
                "1.2.3:8080:80",
                "busybox",
                "true",
            ],
            "1.2.3",
        ),
        (
            vec!["run", "--net", "n", "-p", "", "busybox", "true"],
            "invalid port mapping",
        ),
        // env, volumes, limits, names
        (
            vec!["run", "--net", "none", "-e", "1BAD=x", "busybox", "true"],
            "1BAD",
        ),
        (
            vec!["run", "--net", "none", "-e", "NOVALUE", "busybox", "true"],
            "NOVALUE",
        ),
        (
            vec!["run", "--net", "none", "-v", &v_missing, "busybox", "true"],
            "does not exist",
        ),
        (
            vec![
                "run",
                "--net",
                "none",
                "-v",
                "/tmp:relative",
                "busybox",
                "true",
            ],
            "relative",
        ),
        (
            vec!["run", "--net", "none", "-v", &v_rx, "busybox", "true"],
            ":rx",
        ),
        (
            vec![
                "run",
                "--net",
                "none",
                "-v",
                "/tmp:/x/../y",
                "busybox",
                "true",
            ],
            "..",
        ),
        (
            vec!["run", "--net", "none", "-m", "1.5g", "busybox", "true"],
            "1.5g",
        ),
        (
            vec!["run", "--net", "none", "-m", "1k", "busybox", "true"],
            "6 MiB",
        ),
        (
            vec!["run", "--net", "none", "--cpus", "-1", "busybox", "true"],
            "-1",
        ),
        (
            vec!["run", "--net", "none", "--cpus", "NaN", "busybox", "true"],
            "NaN",
        ),
        (
            vec![
                "run",
                "--net",
                "none",
                "--cpuset-cpus",
                "4096",
                "busybox",
                "true",
            ],
            "4096",
        ),
        (
            vec!["run", "--net", "none", "--name=-bad", "busybox", "true"],
            "-bad",
        ),
        (
            vec!["run", "--net", "none", "--name", &long, "busybox", "true"],
            "invalid container name",
        ),
        (
            vec![
                "run",
                "--net",
                "none",
                "--hostname",
                "bad_host!",
                "busybox",
                "true",
            ],
            "bad_host!",
        ),
        (vec!["run", "--net", "none", "BusyBox", "true"], "BusyBox"),
        (
            vec!["run", "--net", "none", "busy:latest", "true"],
            "busy:latest",
        ),
        (
            vec!["run", "--net", "ghost", "busybox", "true"],
            "network ghost not found",
        ),
        // images and drivers
        (
            vec!["image", "import", "/nonexistent.tar", "img"],
            "/nonexistent.tar",
        ),
        (
            vec!["image", "import", "/etc/hostname", "img"],
            "not a tar archive",
        ),
        (vec!["image", "rm", "ghost"], "image ghost not found"),
        (vec!["driver", "inspect", "ghost"], "unknown driver 'ghost'"),
        (
            vec!["driver", "install", "--yes", "/etc/hostname"],
            "not a usable driver",
        ),
        (vec!["driver", "new", "Bad Name"], "Bad Name"),
        // containers that do not exist
        (vec!["logs", "ghost"], "ghost"),
        (vec!["inspect", "ghost"], "ghost"),
        (vec!["rm", "ghost"], "ghost"),
    ];
    let links = sb.host.links();
    let rules = sb.host.mydocker_rules();
    let state = sb.state_snapshot();
    for (args, culprit) in &table {
        let err = sb.mydocker_err(args);
        assert!(
            err.contains(culprit),
            "{args:?}: '{culprit}' not named in: {err}"
        );
    }
    assert_eq!(sb.host.links(), links);
    assert_eq!(sb.host.mydocker_rules(), rules);
    assert_eq!(sb.state_snapshot(), state);

    // Damaged state files: named, refused, left untouched.
    let file = sb.root.path().join("networks/n/network.json");
    let good = std::fs::read_to_string(&file).unwrap();
    for bad in [
        "",
        "{\"version\": 1, \"id\": ",
        "[1, 2, 3]",
        &good.replace("\"version\": 1", "\"version\": \"one\""),
        &good.replace("\"version\": 1", "\"version\": 99"),
    ] {
        std::fs::write(&file, bad).unwrap();
        let err = sb.mydocker_err(&["network", "inspect", "n"]);
        assert!(err.contains(file.to_str().unwrap()), "{err}");
        assert_eq!(std::fs::read_to_string(&file).unwrap(), bad);
    }
    std::fs::write(&file, good).unwrap();
    let ipam = sb.root.path().join("networks/n/ipam.json");
    std::fs::write(&ipam, "{\"version\":1,\"subnet\":\"10.70.0.0/24\",\"gateway\":\"10.70.0.1\",\"allocated\":[[5,1]]}").unwrap();
    let err = sb.mydocker_err(&["run", "--rm", "--net", "n", "busybox", "true"]);
    assert!(err.contains("ipam.json"), "{err}");
    // Well-formed, but for another subnet than the network's.
    std::fs::write(
        &ipam,
        "{\"version\":1,\"subnet\":\"10.71.0.0/24\",\"gateway\":\"10.71.0.1\",\"allocated\":[]}",
    )
    .unwrap();
    let err = sb.mydocker_err(&["run", "--rm", "--net", "n", "busybox", "true"]);
    assert!(
        err.contains("ipam.json") && err.contains("10.71.0.0/24") && err.contains("10.70.0.0/24"),
        "{err}"
    );
    eprintln!(
        "malformed inputs tried: {} commands + 7 damaged state files",
        table.len()
    );
}

#[test]
fn network_rm_racing_container_starts_never_half_removes() {
    let sb = Sandbox::with_busybox();
    sb.mydocker_ok(&["network", "create", "--subnet", "10.72.0.0/24", "race"]);
    let (runs, removed) = std::thread::scope(|s| {
        let runs: Vec<_> = (0..8)
            .map(|i| {
                let sb = &sb;
                s.spawn(move || {
                    let name = format!("r{i}");
                    sb.mydocker(&[
                        "run", "-d", "--name", &name, "--net", "race", "busybox", "sleep", "600",
                    ])
                    .status
                    .success()
                })
            })
            .collect();
        let sb = &sb;
        let rm = s.spawn(move || sb.mydocker(&["network", "rm", "race"]).status.success());
        let ok: Vec<bool> = runs.into_iter().map(|h| h.join().unwrap()).collect();
        (ok, rm.join().unwrap())
    });
    let started = runs.iter().filter(|ok| **ok).count();
    let nets = sb.mydocker_ok(&["network", "ls"]);
    if removed {
        // Removed before any container joined: nothing of it is left, and
        // every run after that failed cleanly.
        assert_eq!(started, 0, "a container joined a removed network");
        assert!(!nets.contains("race"));
        assert!(!sb
            .host
            .links()
            .iter()
            .any(|l| l == "race" || l.starts_with("veth")));
        assert!(sb.host.mydocker_rules().is_empty());
    } else {
        // Refused because containers had joined: the network is whole.
        assert!(nets.contains("race"));
        assert!(sb.host.links().contains(&"race".to_string()));
        let inspect: serde_json::Value =
            serde_json::from_str(&sb.mydocker_ok(&["network", "inspect", "race"])).unwrap();
        assert_eq!(inspect[0]["endpoints"].as_array().unwrap().len(), started);
    }
    for c in sb.ps() {
        sb.mydocker_ok(&["rm", "-f", c["name"].as_str().unwrap()]);
    }
    let _ = sb.mydocker(&["network", "rm", "race"]);
    assert!(sb.host.mydocker_rules().is_empty());
}
