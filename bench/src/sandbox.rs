//! Running programs inside the benchmark's namespaces.

use std::io::Write;
use std::os::fd::{AsRawFd, OwnedFd};
use std::process::{Command, Stdio};

use mydocker_tests::Netns;

/// Feeds `input` to a command on stdin and returns its stdout; panics with
/// its stderr if it fails (a broken peer must not produce a timing).
pub fn pipe(mut cmd: Command, input: &str) -> Vec<u8> {
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    child
        .stdin
        .take()
        .expect("stdin is piped")
        .write_all(input.as_bytes())
        .unwrap_or_else(|e| panic!("{cmd:?}: writing stdin: {e}"));
    let out = child.wait_with_output().expect("wait");
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// Runs `program args` inside `ns` with `input` on stdin.
pub fn run_in(ns: &Netns, program: &str, args: &[&str], input: &str) {
    let mut cmd = ns.command(program);
    cmd.args(args);
    pipe(cmd, input);
}

/// A path other processes can open to reach a namespace held only by a
/// descriptor of this process (CNI and netavark want a path).
pub struct NsPath {
    _fd: OwnedFd,
    pub path: String,
}

impl NsPath {
    pub fn of(ns: &Netns) -> NsPath {
        let fd = ns.fd();
        let path = format!("/proc/{}/fd/{}", std::process::id(), fd.as_raw_fd());
        NsPath { _fd: fd, path }
    }
}

/// Address of container `i` in a /16 whose first 256 addresses are left for
/// gateways and fixed peers.
pub fn container_ip(prefix: &str, i: usize) -> String {
    format!("{prefix}.{}.{}", 1 + i / 250, 2 + i % 250)
}

/// Host ports of container `i`: two distinct ones per container.
pub fn host_ports(i: usize) -> [u16; 2] {
    [10000 + i as u16, 20000 + i as u16]
}

/// `n` fresh container namespaces, each with the path peers open it by.
pub fn containers(n: usize) -> Vec<(Netns, NsPath)> {
    (0..n)
        .map(|_| {
            let c = Netns::new();
            let p = NsPath::of(&c);
            (c, p)
        })
        .collect()
}
