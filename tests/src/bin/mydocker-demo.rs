//! The article's scenario, inside sandbox namespaces: a bridge network
//! `testbridge` on 10.0.0.1/24, two busybox containers on it that ping each
//! other, the host and the outside (through masquerade), and a web server
//! published with `-p 8080:80`, reached from the outside and from the host.
//! Everything lives in namespaces this process holds; it is all cleaned up
//! at the end, and the kernel drops whatever is left if the demo dies.

use mydocker_tests::{Netns, Sandbox, HOST_ADDR, OUTSIDE_ADDR};

fn banner(text: &str) {
    println!("\n\x1b[1m$ {text}\x1b[0m");
}

fn show(ns: &Netns, label: &str, args: &[&str]) {
    banner(&format!("[{label}] {}", args.join(" ")));
    let out = ns.run(args);
    print!("{}", String::from_utf8_lossy(&out.stdout));
    eprint!("{}", String::from_utf8_lossy(&out.stderr));
}

fn mydocker(sb: &Sandbox, args: &[&str]) -> String {
    banner(&format!("mydocker {}", args.join(" ")));
    let out = sb.mydocker(args);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    print!("{stdout}");
    eprint!("{}", String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "mydocker {args:?} failed");
    stdout
}

fn main() {
    println!("building the busybox image from Debian's busybox-static ...");
    let sb = Sandbox::with_busybox();
    println!(
        "sandbox: a \"host\" namespace ({HOST_ADDR}) and an \"outside\" one ({OUTSIDE_ADDR}); state in {}",
        sb.root.path().display()
    );

    mydocker(&sb, &["images"]);
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
    for name in ["c1", "c2"] {
        mydocker(
            &sb,
            &[
                "run",
                "-d",
                "-name",
                name,
                "-net",
                "testbridge",
                "busybox",
                "sleep",
                "3600",
            ],
        );
    }
    mydocker(
        &sb,
        &[
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
            "while true; do echo hello from the web container | nc -l -p 80; done",
        ],
    );
    mydocker(&sb, &["ps"]);
    mydocker(&sb, &["exec", "c1", "ip", "addr"]);
    mydocker(&sb, &["exec", "c2", "ip", "-4", "addr", "show", "eth0"]);
    mydocker(&sb, &["exec", "c1", "ip", "route"]);
    mydocker(&sb, &["exec", "c1", "ping", "-c", "2", "10.0.0.3"]);
    show(&sb.host, "host", &["ping", "-c", "1", "10.0.0.2"]);
    mydocker(&sb, &["exec", "c2", "ping", "-c", "1", OUTSIDE_ADDR]);

    for (ns, label) in [(&sb.outside, "outside"), (&sb.host, "host")] {
        banner(&format!("[{label}] nc {HOST_ADDR} 8080"));
        let reply = ns.fetch(HOST_ADDR, "8080").unwrap_or_default();
        println!("{reply}");
        assert!(
            reply.contains("hello"),
            "the published port did not answer from {label}"
        );
    }
    show(
        &sb.host,
        "host",
        &["sh", "-c", "iptables-save -t nat | grep MYDOCKER"],
    );

    mydocker(&sb, &["stop", "-t", "1", "c1", "c2", "web"]);
    mydocker(&sb, &["rm", "c1", "c2", "web"]);
    mydocker(&sb, &["network", "rm", "testbridge"]);
    show(&sb.host, "host", &["ip", "-br", "link"]);
    println!(
        "\nmydocker firewall lines left in the host namespace: {}",
        sb.host.mydocker_rules().len()
    );
    println!("demo finished: nothing is left behind");
}
