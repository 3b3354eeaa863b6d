//! Sandboxes for integration tests: network namespaces held only by file
//! descriptors of the test process.
//!
//! Nothing here is named (no /run/netns entries) and nothing runs in the
//! machine's root namespace: every command is started with `setns` into a
//! sandbox namespace before `exec`. When the test ends — even by a panic or
//! a kill — the descriptors close and the kernel destroys the namespaces,
//! their links, addresses, routes and firewall rules with them.

use std::ffi::OsStr;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use nix::sched::{setns, unshare, CloneFlags};

/// A network namespace owned by this test.
pub struct Netns {
    fd: OwnedFd,
}

impl Netns {
    /// A fresh, empty namespace (loopback up).
    pub fn new() -> Netns {
        let fd = std::thread::spawn(|| {
            unshare(CloneFlags::CLONE_NEWNET)
                .expect("unshare(CLONE_NEWNET): tests must run as root");
            std::fs::File::open("/proc/thread-self/ns/net")
                .map(OwnedFd::from)
                .expect("open /proc/thread-self/ns/net")
        })
        .join()
        .unwrap();
        let ns = Netns { fd };
        ns.ok(&["ip", "link", "set", "lo", "up"]);
        ns
    }

    pub fn fd(&self) -> OwnedFd {
        self.fd.try_clone().unwrap()
    }

    /// A command that will run inside this namespace.
    pub fn command(&self, program: impl AsRef<OsStr>) -> Command {
        let mut cmd = Command::new(program);
        let raw = self.fd.as_raw_fd();
        // SAFETY: only async-signal-safe work (one setns syscall) happens
        // between fork and exec.
        unsafe {
            cmd.pre_exec(move || {
                if libc_setns(raw) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        cmd
    }

    /// Runs a command inside; returns its output whatever the exit status.
    pub fn run(&self, args: &[&str]) -> Output {
        self.command(args[0])
            .args(&args[1..])
            .stdin(Stdio::null())
            .output()
            .unwrap_or_else(|e| panic!("cannot run {args:?}: {e}"))
    }

    /// Runs a command inside and panics with its stderr if it fails.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "{args:?} failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Runs `f` on a thread that lives inside this namespace (for library
    /// calls, whose netlink sockets and iptables children follow the thread).
    pub fn enter<R: Send + 'static>(&self, f: impl FnOnce() -> R + Send + 'static) -> R {
        let fd = self.fd();
        std::thread::spawn(move || {
            setns(fd.as_fd(), CloneFlags::CLONE_NEWNET).expect("setns");
            f()
        })
        .join()
        .unwrap_or_else(|p| std::panic::resume_unwind(p))
    }

    /// Starts `sh -c script` inside, in its own process group; the whole
    /// group is killed when the returned guard drops.
    pub fn spawn_sh(&self, script: &str) -> Background {
        let child = self
            .command("sh")
            .args(["-c", script])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {script}: {e}"));
        Background { child }
    }

    /// Connects to ADDR:PORT from inside (busybox nc), retrying briefly, and
    /// returns what the server sent, if anything.
    pub fn fetch(&self, addr: &str, port: &str) -> Option<String> {
        let mut got = None;
        retry(Duration::from_secs(5), || {
            let out = self.run(&["busybox", "nc", "-w", "1", addr, port]);
            let text = String::from_utf8_lossy(&out.stdout).trim().to_string();
            if text.is_empty() {
                false
            } else {
                got = Some(text);
                true
            }
        });
        got
    }

    /// Link names in this namespace.
    pub fn links(&self) -> Vec<String> {
        self.ok(&["ip", "-o", "link", "show"])
            .lines()
            .filter_map(|l| l.split(": ").nth(1))
            .map(|n| n.split('@').next().unwrap().to_string())
            .collect()
    }

    /// Our iptables lines in this namespace (anything mentioning MYDOCKER).
    pub fn mydocker_rules(&self) -> Vec<String> {
        self.ok(&["iptables-save"])
            .lines()
            .filter(|l| l.contains("MYDOCKER"))
            .map(str::to_string)
            .collect()
    }

    /// Pings `addr` once, retrying for a short while (a fresh bridge port
    /// may take a moment to forward).
    pub fn ping(&self, addr: &str) -> bool {
        retry(Duration::from_secs(5), || {
            self.run(&["ping", "-c", "1", "-W", "1", addr])
                .status
                .success()
        })
    }
}

/// A background process group started by a test; killed on drop.
pub struct Background {
    child: std::process::Child,
}

impl Drop for Background {
    fn drop(&mut self) {
        // Only the group this test started (its leader's pid is the pgid).
        let _ = nix::sys::signal::killpg(
            nix::unistd::Pid::from_raw(self.child.id() as i32),
            nix::sys::signal::Signal::SIGKILL,
        );
        let _ = self.child.wait();
    }
}

fn libc_setns(fd: i32) -> i32 {
    // nix's setns wants a BorrowedFd; in pre_exec we only hold the raw one.
    unsafe { nix::libc::setns(fd, nix::libc::CLONE_NEWNET) }
}

/// Retries `f` until it returns true or the deadline passes.
pub fn retry(limit: Duration, mut f: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    loop {
        if f() {
            return true;
        }
        if start.elapsed() > limit {
            return false;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Addresses used by the sandboxes: TEST-NET-1 (RFC 5737), only ever
/// assigned inside namespaces the test made.
pub const HOST_ADDR: &str = "192.0.2.1";
pub const OUTSIDE_ADDR: &str = "192.0.2.2";

/// A "host" namespace (where mydocker runs) joined by a veth to an
/// "outside" namespace that plays the internet, plus a private state root.
pub struct Sandbox {
    pub host: Netns,
    pub outside: Netns,
    pub root: tempfile::TempDir,
    /// Simulated boot id passed to mydocker (see `reboot`).
    boot_id: Option<String>,
}

impl Sandbox {
    pub fn new() -> Sandbox {
        let (host, outside) = Self::namespaces();
        Sandbox {
            host,
            outside,
            root: tempfile::tempdir().unwrap(),
            boot_id: None,
        }
    }

    /// Simulates a reboot: every process recorded in the state root is
    /// killed (supervisors first), the host and outside namespaces are
    /// replaced by fresh ones (all links and rules gone), and mydocker sees
    /// a new boot id. The state root survives.
    pub fn reboot(&mut self) {
        let dir = self.root.path().join("containers");
        for e in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            let Ok(text) = std::fs::read_to_string(e.path().join("status.json")) else {
                continue;
            };
            let Ok(v) = serde_json::from_str::<serde_json::Value>(&text) else {
                continue;
            };
            let Some(pid) = v["pid"].as_i64() else {
                continue;
            };
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
            let ppid = stat
                .rsplit(')')
                .next()
                .and_then(|r| r.split_whitespace().nth(1))
                .and_then(|p| p.parse::<i32>().ok());
            for p in ppid.into_iter().chain([pid as i32]) {
                let _ = nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(p),
                    nix::sys::signal::Signal::SIGKILL,
                );
            }
        }
        std::thread::sleep(Duration::from_millis(200));
        let (host, outside) = Self::namespaces();
        self.host = host;
        self.outside = outside;
        self.boot_id = Some(format!("simulated-boot-{}", std::process::id()));
    }

    fn namespaces() -> (Netns, Netns) {
        let host = Netns::new();
        let outside = Netns::new();
        host.ok(&[
            "ip", "link", "add", "ext0", "type", "veth", "peer", "name", "out0",
        ]);
        // Move the peer by pid is impossible here (no process lives in the
        // outside namespace), so hand ip the namespace file through /proc.
        let outside_fd = outside.fd();
        let path = format!("/proc/{}/fd/{}", std::process::id(), outside_fd.as_raw_fd());
        host.ok(&["ip", "link", "set", "out0", "netns", &path]);
        drop(outside_fd);
        host.ok(&[
            "ip",
            "addr",
            "add",
            &format!("{HOST_ADDR}/24"),
            "dev",
            "ext0",
        ]);
        host.ok(&["ip", "link", "set", "ext0", "up"]);
        outside.ok(&[
            "ip",
            "addr",
            "add",
            &format!("{OUTSIDE_ADDR}/24"),
            "dev",
            "out0",
        ]);
        outside.ok(&["ip", "link", "set", "out0", "up"]);
        // The outside's default route points at the host, like an ISP's
        // router would; container subnets are still unknown to it, so
        // replies only find their way back through masquerade.
        host.ok(&["ip", "route", "add", "default", "via", OUTSIDE_ADDR]);
        (host, outside)
    }

    /// A command running the real mydocker binary in the host namespace.
    pub fn mydocker_command(&self) -> Command {
        let mut cmd = self.host.command(mydocker_bin());
        if let Some(id) = &self.boot_id {
            cmd.env("MYDOCKER_BOOT_ID", id);
        }
        cmd.arg("--root").arg(self.root.path());
        cmd
    }

    /// Runs the real mydocker binary inside the host namespace.
    pub fn mydocker(&self, args: &[&str]) -> Output {
        self.mydocker_command()
            .args(args)
            .stdin(Stdio::null())
            .output()
            .expect("run mydocker")
    }

    /// Runs mydocker and asserts success; returns stdout.
    pub fn mydocker_ok(&self, args: &[&str]) -> String {
        let out = self.mydocker(args);
        assert!(
            out.status.success(),
            "mydocker {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Runs mydocker expecting failure; returns stderr (asserted one line).
    pub fn mydocker_err(&self, args: &[&str]) -> String {
        let out = self.mydocker(args);
        assert!(
            !out.status.success(),
            "mydocker {args:?} unexpectedly succeeded: {}",
            String::from_utf8_lossy(&out.stdout)
        );
        let err = String::from_utf8_lossy(&out.stderr).into_owned();
        assert_eq!(
            err.trim_end().lines().count(),
            1,
            "expected a one-line error, got: {err}"
        );
        assert!(err.starts_with("mydocker: "), "{err}");
        err
    }

    /// Every file under the state root with a digest of its content, for
    /// "nothing changed" assertions (lock files, the compile cache and the
    /// read-only image layers excluded).
    pub fn state_snapshot(&self) -> Vec<(PathBuf, String)> {
        let mut out = Vec::new();
        walk(self.root.path(), self.root.path(), &mut out);
        out.sort();
        out
    }
}

impl Drop for Sandbox {
    /// Containers a failed test left running would keep the sandbox
    /// namespaces (and their cgroups) alive: remove them through mydocker,
    /// then kill any process still recorded in this root (only ours).
    fn drop(&mut self) {
        let dir = self.root.path().join("containers");
        let Ok(entries) = std::fs::read_dir(&dir) else {
            return;
        };
        for e in entries.flatten() {
            let id = e.file_name().to_string_lossy().into_owned();
            if e.path().join("config.json").is_file() {
                let _ = self.mydocker(&["rm", "-f", &id]);
            }
            if let Ok(text) = std::fs::read_to_string(e.path().join("status.json")) {
                if let Ok(v) = serde_json::from_str::<serde_json::Value>(&text) {
                    if let Some(pid) = v["pid"].as_i64() {
                        let _ = nix::sys::signal::kill(
                            nix::unistd::Pid::from_raw(pid as i32),
                            nix::sys::signal::Signal::SIGKILL,
                        );
                    }
                }
            }
        }
    }
}

impl Default for Sandbox {
    fn default() -> Self {
        Self::new()
    }
}

impl Default for Netns {
    fn default() -> Self {
        Self::new()
    }
}

fn digest(bytes: &[u8]) -> String {
    // FNV-1a is plenty to notice a change in a test.
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        h = (h ^ *b as u64).wrapping_mul(0x0100_0000_01b3);
    }
    format!("{}:{h:016x}", bytes.len())
}

fn walk(base: &Path, dir: &Path, out: &mut Vec<(PathBuf, String)>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let p = e.path();
        let rel = p.strip_prefix(base).unwrap().to_path_buf();
        let is_lock = p.extension().is_some_and(|x| x == "lock")
            || p.file_name().is_some_and(|n| n == "lock");
        // boot_id is written by the first command of each boot.
        if rel.starts_with("cache")
            || is_lock
            || rel.ends_with("rootfs")
            || rel == Path::new("boot_id")
        {
            continue;
        }
        if p.is_dir() {
            // Directories appear on first use (journal/, networks/); only
            // what is in them matters.
            walk(base, &p, out);
        } else {
            out.push((rel, digest(&std::fs::read(&p).unwrap_or_default())));
        }
    }
}

/// A busybox rootfs tarball built from Debian's busybox-static by
/// scripts/make-busybox-image.sh, cached under target/ across test runs.
pub fn busybox_tar() -> PathBuf {
    static TAR: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    TAR.get_or_init(|| {
        let repo = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
        let dir = repo.join("target/test-images");
        std::fs::create_dir_all(&dir).unwrap();
        let tar = dir.join("busybox.tar");
        if !tar.is_file() {
            let tmp = dir.join(format!("busybox.tar.{}", std::process::id()));
            let out = Command::new(repo.join("scripts/make-busybox-image.sh"))
                .arg(&tmp)
                .output()
                .expect("run scripts/make-busybox-image.sh");
            assert!(
                out.status.success(),
                "make-busybox-image.sh: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            std::fs::rename(&tmp, &tar).unwrap();
        }
        tar
    })
    .clone()
}

impl Sandbox {
    /// A sandbox with the busybox image imported.
    pub fn with_busybox() -> Sandbox {
        let sb = Sandbox::new();
        sb.mydocker_ok(&[
            "image",
            "import",
            busybox_tar().to_str().unwrap(),
            "busybox",
        ]);
        sb
    }

    /// Parsed `ps -a --format json`.
    pub fn ps(&self) -> Vec<serde_json::Value> {
        serde_json::from_str::<Vec<serde_json::Value>>(
            &self.mydocker_ok(&["ps", "-a", "--format", "json"]),
        )
        .unwrap()
    }

    /// The `ps` entry of a container by name.
    pub fn container(&self, name: &str) -> Option<serde_json::Value> {
        self.ps().into_iter().find(|c| c["name"] == name)
    }

    /// Waits until the named container is no longer running.
    pub fn wait_exited(&self, name: &str) -> bool {
        // "exited" with a null exit code means the process is gone but its
        // supervisor has not recorded the exit yet.
        retry(Duration::from_secs(20), || match self.container(name) {
            Some(c) => c["state"] == "exited" && !c["exit_code"].is_null(),
            None => true,
        })
    }
}

/// A driver component built by scripts/build.sh (e.g. "macvlan",
/// "hostile_driver").
pub fn driver_wasm(name: &str) -> String {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../target/wasm32-wasip2/release")
        .join(format!("{name}.wasm"));
    assert!(p.is_file(), "{} missing: run scripts/build.sh", p.display());
    p.to_str().unwrap().to_string()
}

/// The mydocker binary next to this test executable (target/<profile>/).
pub fn mydocker_bin() -> PathBuf {
    if let Some(p) = std::env::var_os("MYDOCKER_BIN") {
        return PathBuf::from(p);
    }
    // Tests live in target/<profile>/deps, binaries in target/<profile>.
    let exe = std::env::current_exe().unwrap();
    let dir = exe.parent().unwrap();
    let bin = [dir.join("mydocker"), dir.parent().unwrap().join("mydocker")]
        .into_iter()
        .find(|p| p.is_file())
        .unwrap_or_else(|| {
            panic!(
                "mydocker binary not found near {}: build it first with `cargo build -p mydocker`",
                exe.display()
            )
        });
    bin
}
