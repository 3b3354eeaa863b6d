//! `mydocker network …` and `mydocker driver list` through the real binary,
//! asserting the kernel state inside the sandbox "host" namespace.

use mydocker_tests::Sandbox;

#[test]
fn create_inspect_list_remove_bridge_network() {
    let sb = Sandbox::new();
    // The article's exact command: host bits set in the subnet.
    let out = sb.mydocker_ok(&[
        "network",
        "create",
        "--driver",
        "bridge",
        "--subnet",
        "10.0.0.1/24",
        "testbridge",
    ]);
    assert_eq!(out.trim(), "testbridge");

    // The bridge exists, is up and holds the gateway address.
    let link = sb.host.ok(&["ip", "-d", "link", "show", "testbridge"]);
    assert!(link.contains("bridge"), "{link}");
    assert!(link.contains("state UP") || link.contains(",UP"), "{link}");
    let addr = sb
        .host
        .ok(&["ip", "-4", "-o", "addr", "show", "dev", "testbridge"]);
    assert!(addr.contains("10.0.0.1/24"), "{addr}");
    assert_eq!(
        sb.host.ok(&["cat", "/proc/sys/net/ipv4/ip_forward"]).trim(),
        "1"
    );
    // Our NAT chain holds the masquerade rule, reached from POSTROUTING.
    let rules = sb.host.mydocker_rules();
    assert!(
        rules
            .iter()
            .any(|r| r == "-A MYDOCKER-POSTROUTING -s 10.0.0.0/24 ! -o testbridge -j MASQUERADE"),
        "{rules:#?}"
    );
    assert!(
        rules
            .iter()
            .any(|r| r == "-A POSTROUTING -j MYDOCKER-POSTROUTING"),
        "{rules:#?}"
    );

    // A driver named by its file name, and explicit gateway + bridge name.
    sb.mydocker_ok(&[
        "network",
        "create",
        "--driver",
        "bridge.wasm",
        "--subnet",
        "10.1.0.0/24",
        "br2",
    ]);
    sb.mydocker_ok(&[
        "network",
        "create",
        "--subnet",
        "10.2.0.0/16",
        "--gateway",
        "10.2.0.254",
        "-o",
        "bridge_name=mybr0",
        "n3",
    ]);
    let addr = sb
        .host
        .ok(&["ip", "-4", "-o", "addr", "show", "dev", "mybr0"]);
    assert!(addr.contains("10.2.0.254/16"), "{addr}");

    let table = sb.mydocker_ok(&["network", "ls"]);
    let lines: Vec<&str> = table.lines().collect();
    assert_eq!(
        lines[0].split_whitespace().collect::<Vec<_>>(),
        ["NAME", "DRIVER", "SUBNET", "GATEWAY"]
    );
    assert_eq!(
        lines[1].split_whitespace().collect::<Vec<_>>(),
        ["br2", "bridge", "10.1.0.0/24", "10.1.0.1"]
    );
    assert_eq!(
        lines[2].split_whitespace().collect::<Vec<_>>(),
        ["n3", "bridge", "10.2.0.0/16", "10.2.0.254"]
    );
    assert_eq!(
        lines[3].split_whitespace().collect::<Vec<_>>(),
        ["testbridge", "bridge", "10.0.0.0/24", "10.0.0.1"]
    );

    let json: serde_json::Value =
        serde_json::from_str(&sb.mydocker_ok(&["network", "list", "--format", "json"])).unwrap();
    assert_eq!(json.as_array().unwrap().len(), 3);

    let inspect: serde_json::Value =
        serde_json::from_str(&sb.mydocker_ok(&["network", "inspect", "n3"])).unwrap();
    let n3 = &inspect[0];
    assert_eq!(n3["name"], "n3");
    assert_eq!(n3["subnet"], "10.2.0.0/16");
    assert_eq!(n3["gateway"], "10.2.0.254");
    assert_eq!(n3["bridge"], "mybr0");
    assert_eq!(n3["driver"]["name"], "bridge");
    assert_eq!(n3["driver"]["sha256"].as_str().unwrap().len(), 64);
    assert_eq!(n3["options"]["bridge_name"], "mybr0");
    assert_eq!(n3["id"].as_str().unwrap().len(), 64);
    assert!(n3["endpoints"].as_array().unwrap().is_empty());

    // Remove accepts several names; afterwards nothing of ours remains.
    let out = sb.mydocker_ok(&["network", "rm", "testbridge", "br2", "n3"]);
    assert_eq!(out.lines().collect::<Vec<_>>(), ["testbridge", "br2", "n3"]);
    let links = sb.host.links();
    for gone in ["testbridge", "br2", "mybr0"] {
        assert!(!links.iter().any(|l| l == gone), "{gone} left: {links:?}");
    }
    assert!(
        sb.host.mydocker_rules().is_empty(),
        "{:#?}",
        sb.host.mydocker_rules()
    );
    assert_eq!(sb.mydocker_ok(&["network", "ls"]).lines().count(), 1);
}

#[test]
fn long_network_name_gets_br_id_bridge() {
    let sb = Sandbox::new();
    sb.mydocker_ok(&[
        "network",
        "create",
        "--subnet",
        "10.3.0.0/24",
        "a-rather-long-network-name",
    ]);
    let inspect: serde_json::Value = serde_json::from_str(&sb.mydocker_ok(&[
        "network",
        "inspect",
        "a-rather-long-network-name",
    ]))
    .unwrap();
    let id = inspect[0]["id"].as_str().unwrap();
    let bridge = format!("br-{}", &id[..12]);
    assert_eq!(inspect[0]["bridge"], bridge.as_str());
    assert!(sb.host.links().contains(&bridge));
    sb.mydocker_ok(&["network", "rm", "a-rather-long-network-name"]);
    assert!(!sb.host.links().contains(&bridge));
}

#[test]
fn driver_list_shows_builtin_bridge_and_cache_is_reused() {
    let sb = Sandbox::new();
    let out = sb.mydocker_ok(&["driver", "list"]);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(
        lines[0].split_whitespace().collect::<Vec<_>>(),
        ["NAME", "VERSION", "API", "CAPABILITIES", "SHA256", "SOURCE"]
    );
    let row: Vec<&str> = lines[1].split_whitespace().collect();
    assert_eq!(row[0], "bridge");
    assert_eq!(row[2], "0.1.0");
    assert_eq!(row[3], "bridge,veth,nat,publish-port,sysctl:ip_forward");
    assert_eq!(row[4].len(), 12);
    assert_eq!(row[5], "builtin");

    // The first use compiled the driver into the cache ...
    let cache: Vec<_> = std::fs::read_dir(sb.root.path().join("cache"))
        .unwrap()
        .flatten()
        .collect();
    assert_eq!(cache.len(), 1);
    let cached = cache[0].path();
    assert!(cached
        .file_name()
        .unwrap()
        .to_str()
        .unwrap()
        .starts_with(&row[4][..12]));
    let before = std::fs::metadata(&cached).unwrap();

    // ... and later uses load it instead of recompiling: the file is not
    // rewritten and the log says "loaded from cache", never "compiled".
    for (i, subnet) in ["10.4.0.0/24", "10.5.0.0/24"].iter().enumerate() {
        let name = format!("n{i}");
        let out = sb
            .host
            .command(mydocker_tests::mydocker_bin())
            .env("MYDOCKER_LOG", "debug")
            .arg("--root")
            .arg(sb.root.path())
            .args(["network", "create", "--subnet", subnet, &name])
            .output()
            .unwrap();
        assert!(out.status.success());
        let log = String::from_utf8_lossy(&out.stderr);
        assert!(log.contains("driver loaded from cache"), "{log}");
        assert!(!log.contains("driver compiled"), "{log}");
    }
    let after = std::fs::metadata(&cached).unwrap();
    use std::os::unix::fs::MetadataExt;
    assert_eq!(before.ino(), after.ino());
    assert_eq!(before.mtime_nsec(), after.mtime_nsec());
    sb.mydocker_ok(&["network", "rm", "n0", "n1"]);
}

#[test]
fn bad_input_is_one_line_error_and_changes_nothing() {
    let sb = Sandbox::new();
    sb.mydocker_ok(&["network", "create", "--subnet", "10.0.0.0/24", "existing"]);
    let links_before = sb.host.links();
    let rules_before = sb.host.mydocker_rules();
    let state_before = sb.state_snapshot();

    let not_a_driver = sb.root.path().join("../not-a-driver.wasm");
    std::fs::write(&not_a_driver, b"\0asm garbage").unwrap();
    let not_a_driver = not_a_driver.to_str().unwrap().to_string();

    let cases: Vec<(Vec<&str>, &str)> = vec![
        (vec!["network", "create", "nosubnet"], "--subnet"),
        (
            vec!["network", "create", "--subnet", "banana", "x"],
            "invalid subnet 'banana'",
        ),
        (
            vec!["network", "create", "--subnet", "10.9.0.0", "x"],
            "invalid subnet '10.9.0.0'",
        ),
        (
            vec!["network", "create", "--subnet", "10.9.0.0/33", "x"],
            "invalid subnet",
        ),
        (
            vec![
                "network",
                "create",
                "--subnet",
                "10.9.0.0/24",
                "--gateway",
                "10.8.0.1",
                "x",
            ],
            "gateway 10.8.0.1",
        ),
        (
            vec![
                "network",
                "create",
                "--subnet",
                "10.9.0.0/24",
                "--gateway",
                "10.9.0.255",
                "x",
            ],
            "gateway 10.9.0.255",
        ),
        (
            vec!["network", "create", "--subnet", "10.9.0.0/31", "x"],
            "too small",
        ),
        (
            vec!["network", "create", "--subnet", "10.9.0.0/32", "x"],
            "too small",
        ),
        (
            vec!["network", "create", "--subnet", "10.9.0.0/24", "existing"],
            "network existing already exists",
        ),
        (
            vec!["network", "create", "--subnet", "10.0.0.128/25", "x"],
            "overlaps network existing",
        ),
        (
            vec!["network", "create", "--subnet", "10.0.0.0/8", "x"],
            "overlaps network existing",
        ),
        (
            vec![
                "network",
                "create",
                "--subnet",
                "10.9.0.0/24",
                "--driver",
                "nope",
                "x",
            ],
            "unknown driver 'nope' (known drivers: bridge)",
        ),
        (
            vec![
                "network",
                "create",
                "--subnet",
                "10.9.0.0/24",
                "--driver",
                &not_a_driver,
                "x",
            ],
            "not a usable driver",
        ),
        (
            vec![
                "network",
                "create",
                "--subnet",
                "10.9.0.0/24",
                "--driver",
                "./missing.wasm",
                "x",
            ],
            "cannot read driver file",
        ),
        (
            vec![
                "network",
                "create",
                "--subnet",
                "10.9.0.0/24",
                "-o",
                "nokey",
                "x",
            ],
            "invalid option 'nokey'",
        ),
        (
            vec![
                "network",
                "create",
                "--subnet",
                "10.9.0.0/24",
                "-o",
                "color=red",
                "x",
            ],
            "unknown option 'color'",
        ),
        (
            vec![
                "network",
                "create",
                "--subnet",
                "10.9.0.0/24",
                "-o",
                "bridge_name=this-is-way-too-long",
                "x",
            ],
            "not a valid interface name",
        ),
        (
            vec![
                "network",
                "create",
                "--subnet",
                "10.9.0.0/24",
                "-o",
                "bridge_name=ext0",
                "x",
            ],
            "already exists on the host",
        ),
        (
            vec!["network", "create", "--subnet", "10.9.0.0/24", "a/b"],
            "invalid network name 'a/b'",
        ),
        (
            vec!["network", "create", "--subnet", "10.9.0.0/24", ".."],
            "invalid network name '..'",
        ),
        (
            vec!["network", "create", "--subnet", "10.9.0.0/24", "has space"],
            "invalid network name",
        ),
        (
            vec!["network", "create", "--subnet", "10.9.0.0/24", "none"],
            "reserved",
        ),
        (vec!["network", "rm", "ghost"], "network ghost not found"),
        (
            vec!["network", "inspect", "ghost"],
            "network ghost not found",
        ),
    ];
    for (args, expected) in &cases {
        let err = sb.mydocker_err(args);
        assert!(
            err.contains(expected),
            "{args:?}: expected '{expected}' in: {err}"
        );
    }
    assert_eq!(sb.host.links(), links_before);
    assert_eq!(sb.host.mydocker_rules(), rules_before);
    assert_eq!(sb.state_snapshot(), state_before);
}

#[test]
fn corrupt_state_file_is_named_and_left_alone() {
    let sb = Sandbox::new();
    sb.mydocker_ok(&["network", "create", "--subnet", "10.0.0.0/24", "n"]);
    let file = sb.root.path().join("networks/n/network.json");
    std::fs::write(&file, b"{\"truncated\": ").unwrap();
    for args in [
        vec!["network", "ls"],
        vec!["network", "inspect", "n"],
        vec!["network", "rm", "n"],
    ] {
        let err = sb.mydocker_err(&args);
        assert!(
            err.contains(file.to_str().unwrap()) && err.contains("corrupt"),
            "{err}"
        );
    }
    assert_eq!(std::fs::read(&file).unwrap(), b"{\"truncated\": ");
    // The bridge is still there: nothing was torn down on a bad read.
    assert!(sb.host.links().contains(&"n".to_string()));
}
