//! Containers on networks through the real binary, in sandbox namespaces:
//! the article's scenario end to end, the lifecycle, limits and bad input.

use std::io::{Read, Write};
use std::os::unix::process::CommandExt;
use std::process::Stdio;
use std::time::Duration;

use mydocker_tests::{busybox_tar, retry, Sandbox, HOST_ADDR, OUTSIDE_ADDR};

/// Nothing a container held is left: links, DNAT rules, cgroups, mounts.
fn assert_nothing_left(sb: &Sandbox, ids: &[String]) {
    let links = sb.host.links();
    assert!(
        !links.iter().any(|l| l.starts_with("veth")),
        "veth left: {links:?}"
    );
    let rules = sb.host.mydocker_rules();
    assert!(
        !rules.iter().any(|r| r.contains("DNAT --to")),
        "DNAT left: {rules:#?}"
    );
    for id in ids {
        for ctl in ["memory", "cpu", "pids", "cpuset"] {
            let p = format!("/sys/fs/cgroup/{ctl}/mydocker/{id}");
            assert!(!std::path::Path::new(&p).exists(), "cgroup left: {p}");
        }
    }
    let root = sb.root.path().to_str().unwrap().to_string();
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(!mounts.contains(&root), "mount left under {root}");
}

fn id_of(sb: &Sandbox, name: &str) -> String {
    sb.container(name).unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string()
}

fn out(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

#[test]
fn article_scenario_end_to_end() {
    let sb = Sandbox::with_busybox();
    assert!(sb.mydocker_ok(&["images"]).contains("busybox"));
    sb.mydocker_ok(&[
        "network",
        "create",
        "--driver",
        "bridge",
        "--subnet",
        "10.0.0.1/24",
        "testbridge",
    ]);
    // The article's single-dash spelling works too.
    sb.mydocker_ok(&[
        "run",
        "-d",
        "-name",
        "c1",
        "-net",
        "testbridge",
        "busybox",
        "sleep",
        "1000",
    ]);
    sb.mydocker_ok(&[
        "run",
        "-d",
        "--name",
        "c2",
        "--net",
        "testbridge",
        "busybox",
        "sleep",
        "1000",
    ]);
    let inspect: serde_json::Value =
        serde_json::from_str(&sb.mydocker_ok(&["inspect", "c1"])).unwrap();
    assert_eq!(inspect[0]["networks"][0]["address"], "10.0.0.2");
    assert_eq!(inspect[0]["state"], "running");
    let c1 = sb.container("c1").unwrap();
    let c2 = sb.container("c2").unwrap();
    assert_eq!(c1["ips"][0]["address"], "10.0.0.2");
    assert_eq!(c2["ips"][0]["address"], "10.0.0.3");
    let table = sb.mydocker_ok(&["ps"]);
    assert!(
        table
            .lines()
            .any(|l| l.contains(" c1 ") && l.contains("10.0.0.2") && l.contains("Up ")),
        "{table}"
    );

    // Containers ping each other; the host pings a container; a container
    // reaches the outside through masquerade.
    assert!(sb
        .mydocker(&["exec", "c1", "ping", "-c", "1", "-W", "2", "10.0.0.3"])
        .status
        .success());
    assert!(sb
        .mydocker(&["exec", "c2", "ping", "-c", "1", "-W", "2", "10.0.0.2"])
        .status
        .success());
    assert!(sb.host.ping("10.0.0.2"));
    assert!(sb
        .mydocker(&["exec", "c1", "ping", "-c", "1", "-W", "2", OUTSIDE_ADDR])
        .status
        .success());
    let ip = out(&sb.mydocker(&["exec", "c1", "ip", "addr"]));
    assert!(
        ip.contains("inet 10.0.0.2/24") && ip.contains("eth0"),
        "{ip}"
    );

    // -p 8080:80 with nc -l -p 80 inside: reachable from the outside via the
    // host's address, and from the host itself.
    sb.mydocker_ok(&[
        "run",
        "-d",
        "--name",
        "web",
        "-p",
        "8080:80",
        "--net",
        "testbridge",
        "busybox",
        "sh",
        "-c",
        "while true; do echo hello-from-web | nc -l -p 80; done",
    ]);
    assert_eq!(
        sb.outside.fetch(HOST_ADDR, "8080").as_deref(),
        Some("hello-from-web")
    );
    assert_eq!(
        sb.host.fetch(HOST_ADDR, "8080").as_deref(),
        Some("hello-from-web")
    );
    let ps = sb.mydocker_ok(&["ps"]);
    assert!(ps.contains("0.0.0.0:8080->80/tcp"), "{ps}");

    let ids: Vec<String> = ["c1", "c2", "web"].iter().map(|n| id_of(&sb, n)).collect();
    sb.mydocker_ok(&["stop", "-t", "1", "c1", "c2", "web"]);
    sb.mydocker_ok(&["rm", "c1", "c2", "web"]);
    assert!(sb.ps().is_empty());
    assert_nothing_left(&sb, &ids);
    let inspect: serde_json::Value =
        serde_json::from_str(&sb.mydocker_ok(&["network", "inspect", "testbridge"])).unwrap();
    assert!(inspect[0]["endpoints"].as_array().unwrap().is_empty());
    // The addresses are free again: the next container gets 10.0.0.2.
    let o = sb.mydocker(&[
        "run",
        "--rm",
        "--net",
        "testbridge",
        "busybox",
        "ip",
        "-4",
        "addr",
        "show",
        "eth0",
    ]);
    assert!(out(&o).contains("10.0.0.2/24"), "{}", out(&o));
    sb.mydocker_ok(&["network", "rm", "testbridge"]);
}

#[test]
fn interactive_tty_session_returns_exit_code() {
    let sb = Sandbox::with_busybox();
    let pty = nix::pty::openpty(None, None).unwrap();
    let slave = pty.slave.try_clone().unwrap();
    let mut cmd = sb.host.command(mydocker_tests::mydocker_bin());
    cmd.arg("--root")
        .arg(sb.root.path())
        .args(["run", "-it", "--net", "none", "busybox", "sh"])
        .stdin(Stdio::from(slave.try_clone().unwrap()))
        .stdout(Stdio::from(slave.try_clone().unwrap()))
        .stderr(Stdio::from(slave));
    // SAFETY: setsid and ioctl are async-signal-safe.
    unsafe {
        cmd.pre_exec(|| {
            nix::unistd::setsid().map_err(std::io::Error::from)?;
            if nix::libc::ioctl(0, nix::libc::TIOCSCTTY, 0) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let mut child = cmd.spawn().unwrap();
    // The Command still holds copies of the slave: the master only reports
    // EOF/EIO once every slave descriptor is closed.
    drop(cmd);
    drop(pty.slave);
    let mut master = std::fs::File::from(pty.master);
    master.write_all(b"echo h''i; exit 3\n").unwrap();
    let mut output = Vec::new();
    let reader = std::thread::spawn(move || {
        let mut buf = [0u8; 1024];
        while let Ok(n) = master.read(&mut buf) {
            if n == 0 {
                break;
            }
            output.extend_from_slice(&buf[..n]);
        }
        output
    });
    let status = child.wait().unwrap();
    let output = String::from_utf8_lossy(&reader.join().unwrap()).into_owned();
    assert_eq!(status.code(), Some(3), "{output}");
    // The command echo'd by the terminal contains h''i; only the shell's
    // output contains the plain word.
    assert!(output.lines().any(|l| l.trim() == "hi"), "{output:?}");
}

#[test]
fn memory_limit_kills_a_process_over_it() {
    let sb = Sandbox::with_busybox();
    // dd allocates its whole block size: 64 MiB under a 16 MiB limit.
    let o = sb.mydocker(&[
        "run",
        "--rm",
        "--net",
        "none",
        "-m",
        "16m",
        "busybox",
        "dd",
        "if=/dev/zero",
        "of=/dev/null",
        "bs=64M",
        "count=1",
    ]);
    assert_eq!(
        o.status.code(),
        Some(137),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    // The same under a generous limit succeeds.
    let o = sb.mydocker(&[
        "run",
        "--rm",
        "--net",
        "none",
        "-m",
        "256m",
        "busybox",
        "dd",
        "if=/dev/zero",
        "of=/dev/null",
        "bs=64M",
        "count=1",
    ]);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
}

#[test]
fn cpu_limits_land_in_the_container_cgroup() {
    let sb = Sandbox::with_busybox();
    sb.mydocker_ok(&[
        "run",
        "-d",
        "--name",
        "cpu",
        "--net",
        "none",
        "--cpus",
        "0.5",
        "--cpuset-cpus",
        "0",
        "-m",
        "64m",
        "busybox",
        "sleep",
        "1000",
    ]);
    let id = id_of(&sb, "cpu");
    let read = |p: &str| {
        std::fs::read_to_string(p)
            .unwrap_or_default()
            .trim()
            .to_string()
    };
    if std::path::Path::new("/sys/fs/cgroup/cgroup.controllers").exists() {
        let dir = format!("/sys/fs/cgroup/mydocker/{id}");
        assert_eq!(read(&format!("{dir}/cpu.max")), "50000 100000");
        assert_eq!(read(&format!("{dir}/cpuset.cpus")), "0");
        assert_eq!(read(&format!("{dir}/memory.max")), "67108864");
    } else {
        assert_eq!(
            read(&format!(
                "/sys/fs/cgroup/cpu/mydocker/{id}/cpu.cfs_quota_us"
            )),
            "50000"
        );
        assert_eq!(
            read(&format!("/sys/fs/cgroup/cpuset/mydocker/{id}/cpuset.cpus")),
            "0"
        );
        assert_eq!(
            read(&format!(
                "/sys/fs/cgroup/memory/mydocker/{id}/memory.limit_in_bytes"
            )),
            "67108864"
        );
    }
    sb.mydocker_ok(&["rm", "-f", "cpu"]);
    assert_nothing_left(&sb, &[id]);
}

#[test]
fn env_volumes_hostname_and_arguments_are_visible_inside() {
    let sb = Sandbox::with_busybox();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("in.txt"), "from-the-host").unwrap();
    let ro = tempfile::tempdir().unwrap();
    let v = format!("{}:/data", dir.path().display());
    let vro = format!("{}:/ro:ro", ro.path().display());
    let o = sb.mydocker(&[
        "run", "--rm", "--net", "none", "-e", "FOO=bar baz", "-e", "EMPTY=", "-v", &v, "-v", &vro,
        "--hostname", "box1", "busybox", "sh", "-c",
        "echo \"$FOO\"; cat /data/in.txt; echo; echo written > /data/out.txt; hostname; touch /ro/x 2>/dev/null || echo ro-refused; echo \"$1|$2\"",
        "argv0", "a b", "-c",
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let text = out(&o);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        lines,
        ["bar baz", "from-the-host", "box1", "ro-refused", "a b|-c"],
        "{text}"
    );
    assert_eq!(
        std::fs::read_to_string(dir.path().join("out.txt")).unwrap(),
        "written\n"
    );
    assert!(!ro.path().join("x").exists());
}

#[test]
fn rm_flag_and_self_exiting_containers_release_everything() {
    let sb = Sandbox::with_busybox();
    sb.mydocker_ok(&["network", "create", "--subnet", "10.4.0.0/24", "n"]);
    let o = sb.mydocker(&["run", "--rm", "--net", "n", "busybox", "true"]);
    assert!(o.status.success());
    assert!(sb.ps().is_empty(), "--rm left {:?}", sb.ps());
    assert_eq!(
        std::fs::read_dir(sb.root.path().join("containers"))
            .unwrap()
            .count(),
        0
    );

    // A detached container that exits by itself gives its address back
    // without any further command.
    let id = sb.mydocker_ok(&[
        "run",
        "-d",
        "--name",
        "short",
        "--net",
        "n",
        "-p",
        "9090:90",
        "busybox",
        "sh",
        "-c",
        "echo bye; exit 7",
    ]);
    let id = id.trim().to_string();
    assert!(sb.wait_exited("short"));
    let c = sb.container("short").unwrap();
    assert_eq!(c["exit_code"], 7);
    assert_eq!(sb.mydocker_ok(&["logs", "short"]), "bye\n");
    let inspect: serde_json::Value =
        serde_json::from_str(&sb.mydocker_ok(&["network", "inspect", "n"])).unwrap();
    assert!(
        inspect[0]["endpoints"].as_array().unwrap().is_empty(),
        "{inspect}"
    );
    assert_nothing_left(&sb, std::slice::from_ref(&id));
    sb.mydocker_ok(&["rm", "short"]);
    sb.mydocker_ok(&["network", "rm", "n"]);
}

#[test]
fn logs_follow_and_network_connect_to_running_container() {
    let sb = Sandbox::with_busybox();
    sb.mydocker_ok(&["network", "create", "--subnet", "10.5.0.0/24", "one"]);
    sb.mydocker_ok(&["network", "create", "--subnet", "10.6.0.0/24", "other"]);
    sb.mydocker_ok(&[
        "run",
        "-d",
        "--name",
        "app",
        "--net",
        "one",
        "busybox",
        "sh",
        "-c",
        "for i in 1 2 3; do echo line$i; sleep 0.2; done; sleep 1000",
    ]);
    // Second network: eth1 with an address of "other".
    sb.mydocker_ok(&["network", "connect", "other", "app"]);
    let ip = out(&sb.mydocker(&["exec", "app", "ip", "-4", "addr", "show", "eth1"]));
    assert!(ip.contains("10.6.0.2/24"), "{ip}");
    assert!(sb.host.ping("10.6.0.2"));
    assert_eq!(
        sb.container("app").unwrap()["ips"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
    sb.mydocker_ok(&["network", "disconnect", "other", "app"]);
    let o = sb.mydocker(&["exec", "app", "ip", "link", "show", "eth1"]);
    assert!(!o.status.success());
    assert!(retry(Duration::from_secs(5), || sb
        .mydocker_ok(&["logs", "app"])
        == "line1\nline2\nline3\n"));

    // logs -f ends when the container stops.
    let follower = sb
        .host
        .command(mydocker_tests::mydocker_bin())
        .arg("--root")
        .arg(sb.root.path())
        .args(["logs", "-f", "app"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    sb.mydocker_ok(&["stop", "-t", "1", "app"]);
    let o = follower.wait_with_output().unwrap();
    assert_eq!(out(&o), "line1\nline2\nline3\n");
    // Removing a network with a running container is refused; stopped is fine.
    sb.mydocker_ok(&[
        "run", "-d", "--name", "holder", "--net", "one", "busybox", "sleep", "1000",
    ]);
    let err = sb.mydocker_err(&["network", "rm", "one"]);
    assert!(err.contains("still has 1 endpoint"), "{err}");
    sb.mydocker_ok(&["rm", "-f", "holder", "app"]);
    sb.mydocker_ok(&["network", "rm", "one", "other"]);
    assert!(sb.host.mydocker_rules().is_empty());
}

#[test]
fn net_none_and_host_modes() {
    let sb = Sandbox::with_busybox();
    let o = sb.mydocker(&["run", "--rm", "--net", "none", "busybox", "ip", "link"]);
    let links = out(&o);
    assert!(
        links.contains("lo:") && links.contains("UP") && !links.contains("eth0"),
        "{links}"
    );
    // --net host sees the sandbox host's own link.
    let o = sb.mydocker(&["run", "--rm", "--net", "host", "busybox", "ip", "link"]);
    assert!(out(&o).contains("ext0"), "{}", out(&o));
}

#[test]
fn bad_input_is_refused_and_changes_nothing() {
    let sb = Sandbox::with_busybox();
    sb.mydocker_ok(&["network", "create", "--subnet", "10.7.0.0/24", "n"]);
    sb.mydocker_ok(&[
        "run", "-d", "--name", "taken", "--net", "n", "-p", "8080:80", "busybox", "sleep", "1000",
    ]);
    sb.mydocker_ok(&[
        "run", "-d", "--name", "stopped", "--net", "none", "busybox", "true",
    ]);
    assert!(sb.wait_exited("stopped"));
    let links = sb.host.links();
    let rules = sb.host.mydocker_rules();
    let state = sb.state_snapshot();
    let missing = format!("{}/nope:/x", sb.root.path().display());
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (vec!["run", "ghostimage"], "image ghostimage not found"),
        (
            vec!["run", "--net", "ghostnet", "busybox", "true"],
            "network ghostnet not found",
        ),
        (
            vec!["run", "--name", "taken", "--net", "none", "busybox", "true"],
            "'taken' is already in use",
        ),
        (
            vec!["run", "-p", "80", "--net", "n", "busybox", "true"],
            "'80'",
        ),
        (
            vec!["run", "-p", "a:b", "--net", "n", "busybox", "true"],
            "'a:b'",
        ),
        (
            vec!["run", "-p", "70000:80", "--net", "n", "busybox", "true"],
            "'70000:80'",
        ),
        (
            vec!["run", "-p", "8080:80/icmp", "--net", "n", "busybox", "true"],
            "'8080:80/icmp'",
        ),
        (
            vec!["run", "-p", "8080:80", "--net", "n", "busybox", "true"],
            "8080/tcp is already published by container taken",
        ),
        (
            vec!["run", "-p", "8081:80", "--net", "none", "busybox", "true"],
            "--net none",
        ),
        (
            vec![
                "run",
                "-v",
                "relative:/x",
                "--net",
                "none",
                "busybox",
                "true",
            ],
            "relative",
        ),
        (
            vec!["run", "-v", &missing, "--net", "none", "busybox", "true"],
            "does not exist",
        ),
        (
            vec!["run", "-m", "lots", "--net", "none", "busybox", "true"],
            "'lots'",
        ),
        (
            vec!["run", "--net", "none", "busybox", "no-such-command"],
            "not found",
        ),
        (vec!["exec", "ghost", "true"], "container ghost not found"),
        (vec!["exec", "stopped", "true"], "is not running"),
        (vec!["stop", "ghost"], "container ghost not found"),
        (vec!["stop", "stopped"], "is not running"),
        (vec!["logs", "ghost"], "container ghost not found"),
        (vec!["rm", "taken"], "is running"),
        (vec!["network", "rm", "n"], "still has 1 endpoint"),
        (
            vec!["network", "connect", "ghostnet", "taken"],
            "network ghostnet not found",
        ),
    ];
    for (args, expected) in &cases {
        let err = sb.mydocker_err(args);
        assert!(
            err.contains(expected),
            "{args:?}: expected '{expected}' in: {err}"
        );
    }
    assert_eq!(sb.host.links(), links);
    assert_eq!(sb.host.mydocker_rules(), rules);
    assert_eq!(sb.state_snapshot(), state);
    sb.mydocker_ok(&["rm", "-f", "taken", "stopped"]);
    sb.mydocker_ok(&["network", "rm", "n"]);
    let _ = busybox_tar();
}
