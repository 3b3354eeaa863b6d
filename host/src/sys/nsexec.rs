//! `mydocker exec`: run a command inside a running container's namespaces
//! and cgroup.
//!
//! A process can only enter a mount namespace while single-threaded, and
//! entering a PID namespace only affects its children, so the CLI re-execs
//! itself as a fresh single-threaded helper (`__nsexec`) that joins the
//! namespaces and forks the command as a child inside them.

use std::os::fd::OwnedFd;
use std::path::PathBuf;

use nix::sched::{setns, CloneFlags};
use nix::sys::wait::{waitpid, WaitStatus};
use nix::unistd::{fork, ForkResult};
use serde::{Deserialize, Serialize};

use super::container::exec_command;

pub const NSEXEC_ARG: &str = "__nsexec";

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ExecSpec {
    /// PID (in our namespace) of the container's init.
    pub pid: i32,
    /// Whether the container has its own network namespace.
    pub own_netns: bool,
    pub args: Vec<String>,
    pub env: Vec<String>,
    pub tty: bool,
    /// `cgroup.procs` files to join so the command shares the limits.
    pub cgroup_procs: Vec<PathBuf>,
}

fn die(msg: String) -> ! {
    eprintln!("mydocker exec: {msg}");
    std::process::exit(126)
}

/// Entry point of the helper. Never returns.
pub fn nsexec_main(spec_json: &str) -> ! {
    let spec: ExecSpec =
        serde_json::from_str(spec_json).unwrap_or_else(|e| die(format!("bad spec: {e}")));
    let me = std::process::id().to_string();
    for procs in &spec.cgroup_procs {
        if let Err(e) = std::fs::write(procs, &me) {
            die(format!("joining cgroup {}: {e}", procs.display()));
        }
    }
    // Open every namespace first: after joining the mount namespace,
    // /proc is the container's and no longer shows the target by our pid.
    let mut kinds = vec![
        ("ipc", CloneFlags::CLONE_NEWIPC),
        ("uts", CloneFlags::CLONE_NEWUTS),
    ];
    if spec.own_netns {
        kinds.push(("net", CloneFlags::CLONE_NEWNET));
    }
    kinds.push(("pid", CloneFlags::CLONE_NEWPID));
    kinds.push(("mnt", CloneFlags::CLONE_NEWNS));
    let fds: Vec<(OwnedFd, CloneFlags, &str)> = kinds
        .into_iter()
        .map(|(name, flag)| {
            let path = format!("/proc/{}/ns/{name}", spec.pid);
            match std::fs::File::open(&path) {
                Ok(f) => (OwnedFd::from(f), flag, name),
                Err(e) => die(format!(
                    "container process {} is gone ({path}: {e})",
                    spec.pid
                )),
            }
        })
        .collect();
    for (fd, flag, name) in &fds {
        if let Err(e) = setns(fd, *flag) {
            die(format!("entering the {name} namespace: {e}"));
        }
    }
    drop(fds);
    // SAFETY: this helper is single-threaded (nothing spawned threads).
    match unsafe { fork() } {
        Ok(ForkResult::Child) => {
            let _ = nix::unistd::chdir("/");
            if spec.tty {
                let _ = nix::unistd::setsid();
                // SAFETY: stdin is the pty slave handed to us.
                unsafe { libc::ioctl(0, libc::TIOCSCTTY, 0) };
            }
            let msg = exec_command(&spec.args, &spec.env, -1);
            eprintln!("mydocker exec: {msg}");
            std::process::exit(127)
        }
        Ok(ForkResult::Parent { child }) => {
            // Signals meant for the command reach it through the terminal
            // or the process group; this helper only reports its status.
            loop {
                match waitpid(child, None) {
                    Ok(WaitStatus::Exited(_, code)) => std::process::exit(code),
                    Ok(WaitStatus::Signaled(_, sig, _)) => std::process::exit(128 + sig as i32),
                    Ok(_) => continue,
                    Err(nix::errno::Errno::EINTR) => continue,
                    Err(e) => die(format!("waiting for the command: {e}")),
                }
            }
        }
        Err(e) => die(format!("fork: {e}")),
    }
}

/// Builds the argv for the helper.
pub fn helper_args(spec: &ExecSpec) -> Vec<String> {
    vec![
        NSEXEC_ARG.to_string(),
        serde_json::to_string(spec).expect("serializable"),
    ]
}
