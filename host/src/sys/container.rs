//! Starting a process in new namespaces and turning it into a container:
//! the parent side (`spawn`) and the child side (`init_main`, which runs as
//! PID 1 of the new PID namespace before exec'ing the user's command).
//!
//! Handshake: the child gets two pipes, fd 3 and fd 4. It blocks reading
//! its `InitSpec` from fd 3 until EOF, so the parent can put it in its
//! cgroup and set up its network first ("the command starts only after its
//! network is ready"). fd 4 is close-on-exec in the child: EOF on it means
//! the exec succeeded; anything else is the error message.

use std::ffi::CString;
use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::path::{Path, PathBuf};

use nix::mount::{mount, umount2, MntFlags, MsFlags};
use nix::sched::CloneFlags;
use nix::sys::stat::{makedev, mknod, Mode, SFlag};
use nix::unistd::{chdir, pivot_root, Pid};
use serde::{Deserialize, Serialize};

/// The hidden argv[1] that makes the mydocker binary act as container init.
pub const INIT_ARG: &str = "__init";
const SPEC_FD: RawFd = 3;
const ERR_FD: RawFd = 4;

/// Default PATH inside containers (as Docker's).
pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// One bind mount from the host into the container.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BindMount {
    pub host: PathBuf,
    pub container: PathBuf,
    pub read_only: bool,
}

/// Everything the child needs to become the container.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InitSpec {
    /// Image layer (read-only lower dir of the overlay).
    pub lower: PathBuf,
    pub upper: PathBuf,
    pub work: PathBuf,
    /// Where the overlay is mounted before pivot_root.
    pub merged: PathBuf,
    pub binds: Vec<BindMount>,
    pub hostname: String,
    pub args: Vec<String>,
    /// "KEY=VALUE" entries.
    pub env: Vec<String>,
    /// Stdio is a pty slave: become session leader with it as controlling tty.
    pub tty: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum SpawnError {
    #[error("cannot start the container process: {0}")]
    Clone(String),
    #[error("{0}")]
    Init(String),
}

/// Which namespaces the child gets (UTS, PID, mount and IPC always).
#[derive(Debug, Clone, Copy)]
pub struct Namespaces {
    pub network: bool,
}

/// A child waiting for its spec.
pub struct Spawned {
    pub pid: Pid,
    spec_tx: File,
    err_rx: File,
}

fn pipe() -> Result<(OwnedFd, OwnedFd), SpawnError> {
    nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)
        .map_err(|e| SpawnError::Clone(format!("pipe: {e}")))
}

/// Clones a child into new namespaces that execs `/proc/self/exe __init`
/// with the given stdio. The child is our child (SIGCHLD on exit).
pub fn spawn(ns: Namespaces, stdio: [RawFd; 3]) -> Result<Spawned, SpawnError> {
    let (spec_rx, spec_tx) = pipe()?;
    let (err_rx, err_tx) = pipe()?;
    // Everything the child touches is prepared here: after clone only
    // async-signal-safe calls are allowed (the parent has threads).
    let exe = CString::new("/proc/self/exe").unwrap();
    let argv0 = CString::new("mydocker-init").unwrap();
    let argv1 = CString::new(INIT_ARG).unwrap();
    let argv = [argv0.as_ptr(), argv1.as_ptr(), std::ptr::null()];
    let (spec_raw, err_raw) = (spec_rx.as_raw_fd(), err_tx.as_raw_fd());
    let mut flags = CloneFlags::CLONE_NEWUTS
        | CloneFlags::CLONE_NEWPID
        | CloneFlags::CLONE_NEWNS
        | CloneFlags::CLONE_NEWIPC;
    if ns.network {
        flags |= CloneFlags::CLONE_NEWNET;
    }
    let mut stack = vec![0u8; 256 * 1024];
    let child = Box::new(move || -> isize {
        // SAFETY: raw syscalls only, on descriptors that stay open in the
        // parent until clone returns.
        unsafe {
            // Move the pipes above stdio first so dup2 onto 0..2 or 3..4
            // cannot clobber them.
            let spec = libc::fcntl(spec_raw, libc::F_DUPFD_CLOEXEC, 10);
            let err = libc::fcntl(err_raw, libc::F_DUPFD_CLOEXEC, 10);
            for (i, fd) in stdio.iter().enumerate() {
                if *fd != i as RawFd && libc::dup2(*fd, i as RawFd) < 0 {
                    libc::_exit(126);
                }
            }
            if libc::dup2(spec, SPEC_FD) < 0 || libc::dup2(err, ERR_FD) < 0 {
                libc::_exit(126);
            }
            libc::execv(exe.as_ptr(), argv.as_ptr());
            libc::_exit(127)
        }
    });
    // SAFETY: the callback only performs async-signal-safe operations.
    let pid = unsafe { nix::sched::clone(child, &mut stack, flags, Some(libc::SIGCHLD)) }
        .map_err(|e| SpawnError::Clone(format!("clone: {e}")))?;
    drop(spec_rx);
    drop(err_tx);
    Ok(Spawned {
        pid,
        spec_tx: File::from(spec_tx),
        err_rx: File::from(err_rx),
    })
}

impl Spawned {
    /// Sends the spec; returns once the user's command has been exec'd, or
    /// with the child's own error message.
    pub fn start(mut self, spec: &InitSpec) -> Result<(), SpawnError> {
        let json = serde_json::to_vec(spec).map_err(|e| SpawnError::Init(e.to_string()))?;
        // A write error means the child died; its message (if any) says why.
        let _ = self.spec_tx.write_all(&json);
        drop(self.spec_tx);
        let mut msg = String::new();
        let _ = self.err_rx.read_to_string(&mut msg);
        if msg.is_empty() {
            Ok(())
        } else {
            Err(SpawnError::Init(msg))
        }
    }
}

/// The child side. Never returns: exec's the command or exits 127.
pub fn init_main() -> ! {
    // SAFETY: fds 3 and 4 were set up by `spawn` for this process.
    let mut spec_rx = unsafe { File::from_raw_fd(SPEC_FD) };
    let mut err_tx = unsafe { File::from_raw_fd(ERR_FD) };
    let fail = |err_tx: &mut File, msg: String| -> ! {
        let _ = err_tx.write_all(msg.as_bytes());
        std::process::exit(127)
    };
    let mut buf = Vec::new();
    if spec_rx.read_to_end(&mut buf).is_err() || buf.is_empty() {
        // The parent gave up before starting us.
        std::process::exit(1);
    }
    drop(spec_rx);
    let spec: InitSpec = match serde_json::from_slice(&buf) {
        Ok(s) => s,
        Err(e) => fail(&mut err_tx, format!("bad init spec: {e}")),
    };
    if let Err(msg) = become_container(&spec) {
        fail(&mut err_tx, msg);
    }
    let err = exec_command(&spec.args, &spec.env, ERR_FD);
    fail(&mut err_tx, err)
}

fn mnt(
    src: Option<&str>,
    target: &Path,
    fstype: Option<&str>,
    flags: MsFlags,
    data: Option<&str>,
) -> Result<(), String> {
    mount(src, target, fstype, flags, data).map_err(|e| {
        format!(
            "mounting {} on {}: {e}",
            fstype.or(src).unwrap_or("?"),
            target.display()
        )
    })
}

/// Joins `inner` (absolute, container view) under `root`.
fn under(root: &Path, inner: &Path) -> PathBuf {
    root.join(inner.strip_prefix("/").unwrap_or(inner))
}

fn become_container(spec: &InitSpec) -> Result<(), String> {
    // Nothing we mount may propagate back to the host's mount namespace;
    // and every mount below dies with this namespace when the container
    // exits, so there is nothing to unmount on the host afterwards.
    mnt(
        None,
        Path::new("/"),
        None,
        MsFlags::MS_REC | MsFlags::MS_PRIVATE,
        None,
    )?;
    let root = &spec.merged;
    let overlay = format!(
        "lowerdir={},upperdir={},workdir={}",
        spec.lower.display(),
        spec.upper.display(),
        spec.work.display()
    );
    mnt(
        Some("overlay"),
        root,
        Some("overlay"),
        MsFlags::empty(),
        Some(&overlay),
    )?;

    for b in &spec.binds {
        let target = under(root, &b.container);
        if b.host.is_dir() {
            std::fs::create_dir_all(&target)
        } else {
            if let Some(p) = target.parent() {
                std::fs::create_dir_all(p)
                    .map_err(|e| format!("volume {}: {e}", b.container.display()))?;
            }
            std::fs::OpenOptions::new()
                .create(true)
                .truncate(false)
                .write(true)
                .open(&target)
                .map(|_| ())
        }
        .map_err(|e| format!("volume {}: {e}", b.container.display()))?;
        mnt(
            Some(b.host.to_str().unwrap_or_default()),
            &target,
            None,
            MsFlags::MS_BIND | MsFlags::MS_REC,
            None,
        )?;
        if b.read_only {
            // A bind mount only becomes read-only through a remount.
            mnt(
                None,
                &target,
                None,
                MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY | MsFlags::MS_REC,
                None,
            )?;
        }
    }

    let proc_dir = root.join("proc");
    std::fs::create_dir_all(&proc_dir).map_err(|e| format!("/proc: {e}"))?;
    mnt(
        Some("proc"),
        &proc_dir,
        Some("proc"),
        MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC,
        None,
    )?;
    let sys_dir = root.join("sys");
    std::fs::create_dir_all(&sys_dir).map_err(|e| format!("/sys: {e}"))?;
    mnt(
        Some("sysfs"),
        &sys_dir,
        Some("sysfs"),
        MsFlags::MS_RDONLY | MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC,
        None,
    )?;
    setup_dev(root)?;

    // pivot_root needs the new root to be a mount point (it is: the
    // overlay) and a directory under it for the old root.
    let old = root.join(".pivot_root");
    std::fs::create_dir_all(&old).map_err(|e| format!("pivot dir: {e}"))?;
    pivot_root(root, &old).map_err(|e| format!("pivot_root into {}: {e}", root.display()))?;
    chdir("/").map_err(|e| format!("chdir /: {e}"))?;
    umount2("/.pivot_root", MntFlags::MNT_DETACH)
        .map_err(|e| format!("detaching old root: {e}"))?;
    let _ = std::fs::remove_dir("/.pivot_root");

    nix::unistd::sethostname(&spec.hostname).map_err(|e| format!("sethostname: {e}"))?;
    if spec.tty {
        nix::unistd::setsid().map_err(|e| format!("setsid: {e}"))?;
        // SAFETY: TIOCSCTTY on our stdin, which is the pty slave.
        if unsafe { libc::ioctl(0, libc::TIOCSCTTY, 0) } < 0 {
            return Err(format!("TIOCSCTTY: {}", std::io::Error::last_os_error()));
        }
    }
    Ok(())
}

fn setup_dev(root: &Path) -> Result<(), String> {
    let dev = root.join("dev");
    std::fs::create_dir_all(&dev).map_err(|e| format!("/dev: {e}"))?;
    mnt(
        Some("tmpfs"),
        &dev,
        Some("tmpfs"),
        MsFlags::MS_NOSUID | MsFlags::MS_STRICTATIME,
        Some("mode=755,size=65536k"),
    )?;
    let nodes: [(&str, u64, u64); 6] = [
        ("null", 1, 3),
        ("zero", 1, 5),
        ("full", 1, 7),
        ("random", 1, 8),
        ("urandom", 1, 9),
        ("tty", 5, 0),
    ];
    for (name, major, minor) in nodes {
        let path = dev.join(name);
        mknod(
            &path,
            SFlag::S_IFCHR,
            Mode::from_bits_truncate(0o666),
            makedev(major, minor),
        )
        .map_err(|e| format!("mknod /dev/{name}: {e}"))?;
        // mknod honours the umask; the nodes must be usable by everyone.
        std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o666))
            .map_err(|e| format!("chmod /dev/{name}: {e}"))?;
    }
    let pts = dev.join("pts");
    std::fs::create_dir_all(&pts).map_err(|e| format!("/dev/pts: {e}"))?;
    // A private devpts instance: the container sees only its own ptys.
    mnt(
        Some("devpts"),
        &pts,
        Some("devpts"),
        MsFlags::MS_NOSUID | MsFlags::MS_NOEXEC,
        Some("newinstance,ptmxmode=0666,mode=0620"),
    )?;
    let shm = dev.join("shm");
    std::fs::create_dir_all(&shm).map_err(|e| format!("/dev/shm: {e}"))?;
    mnt(
        Some("shm"),
        &shm,
        Some("tmpfs"),
        MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC,
        Some("mode=1777,size=65536k"),
    )?;
    let links = [
        ("ptmx", "pts/ptmx"),
        ("fd", "/proc/self/fd"),
        ("stdin", "/proc/self/fd/0"),
        ("stdout", "/proc/self/fd/1"),
        ("stderr", "/proc/self/fd/2"),
    ];
    for (name, target) in links {
        std::os::unix::fs::symlink(target, dev.join(name))
            .map_err(|e| format!("/dev/{name}: {e}"))?;
    }
    Ok(())
}

/// exec's `args` with `env`, searching PATH from `env`. Returns only on
/// failure, with a message for the user. `keep_open` is closed-on-exec.
pub fn exec_command(args: &[String], env: &[String], keep_open: RawFd) -> String {
    if args.is_empty() {
        return "no command given".into();
    }
    let to_c = |v: &[String]| -> Result<Vec<CString>, String> {
        v.iter()
            .map(|s| CString::new(s.as_str()).map_err(|_| format!("'{s}' contains a NUL byte")))
            .collect()
    };
    let (cargs, cenv) = match (to_c(args), to_c(env)) {
        (Ok(a), Ok(e)) => (a, e),
        (Err(m), _) | (_, Err(m)) => return m,
    };
    // The error pipe must close when exec succeeds.
    if keep_open >= 0 {
        // SAFETY: plain fcntl on a descriptor we own.
        unsafe {
            libc::fcntl(keep_open, libc::F_SETFD, libc::FD_CLOEXEC);
        }
    }
    // execvpe searches the PATH of the *current* environment, so set it.
    let path = env
        .iter()
        .find_map(|e| e.strip_prefix("PATH="))
        .unwrap_or(DEFAULT_PATH);
    std::env::set_var("PATH", path);
    let err = nix::unistd::execvpe(&cargs[0], &cargs, &cenv).unwrap_err();
    match err {
        nix::errno::Errno::ENOENT => format!(
            "executable file '{}' not found in the container's PATH",
            args[0]
        ),
        nix::errno::Errno::EACCES => format!("'{}': permission denied", args[0]),
        e => format!("cannot exec '{}': {e}", args[0]),
    }
}
