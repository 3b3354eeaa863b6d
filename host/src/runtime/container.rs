//! Containers: create, start, supervise, stop, remove, list, exec, logs.
//!
//! On disk, under `<root>/containers/<id>/`: `config.json` (what the user
//! asked for, never changes), `status.json` (what is happening, rewritten
//! atomically at each transition), `container.log` (stdout+stderr of a
//! detached container), and the overlay's `upper/`, `work/`, `merged/`.
//! Mounts live only in the container's own mount namespace, so they vanish
//! with it; cgroups, endpoints and addresses are released by whoever sees
//! the container exit (its supervisor, or `stop`/`rm` if that is gone).

use std::collections::BTreeMap;
use std::fs::File;
use std::os::fd::{AsRawFd, RawFd};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::sys::wait::{waitpid, WaitStatus};
use nix::unistd::Pid;
use serde::{Deserialize, Serialize};

use super::image::{ImageError, ImageStore};
use super::network::{ConnectRequest, NetworkError, PortMapping, Protocol};
use super::spec::{PortSpec, VolumeSpec};
use super::Runtime;
use crate::driver::host_impl::fault_point;
use crate::store::{self, Lock, StoreError};
use crate::sys::cgroup::{Cgroup, CgroupError, Resources};
use crate::sys::container::{
    self as ctr, BindMount, InitSpec, Namespaces, SpawnError, DEFAULT_PATH,
};
use crate::sys::netlink::Netlink;

const CGROUP_PREFIX: &str = "mydocker";
const RECORD_VERSION: u32 = 1;

#[derive(Debug, thiserror::Error)]
pub enum ContainerError {
    #[error("container {0} not found (see `mydocker ps -a`)")]
    NotFound(String),
    #[error(
        "container name '{0}' is already in use; remove that container or choose another name"
    )]
    NameInUse(String),
    #[error("container {0} is not running")]
    NotRunning(String),
    #[error("container {0} is running: stop it first or use rm -f")]
    Running(String),
    #[error("container id prefix '{0}' is ambiguous; give more characters or the name")]
    Ambiguous(String),
    #[error("host port {port}/{protocol} is already published by container {container}")]
    PortInUse {
        port: u16,
        protocol: Protocol,
        container: String,
    },
    #[error("-p needs a network: it cannot be used with --net {0}")]
    PortsWithoutNetwork(String),
    #[error(transparent)]
    Image(#[from] ImageError),
    #[error(transparent)]
    Network(#[from] NetworkError),
    #[error(transparent)]
    Cgroup(#[from] CgroupError),
    #[error(transparent)]
    Spawn(#[from] SpawnError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("{0}")]
    Sys(String),
}

type Result<T> = std::result::Result<T, ContainerError>;

/// How a container is networked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NetMode {
    /// Own namespace with only `lo`.
    None,
    /// The host's namespace.
    Host,
    /// Own namespace joined to this network.
    Network(String),
}

impl NetMode {
    pub fn parse(s: &str) -> NetMode {
        match s {
            "none" => NetMode::None,
            "host" => NetMode::Host,
            other => NetMode::Network(other.to_string()),
        }
    }
}

/// What the user asked for (`config.json`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ContainerConfig {
    pub version: u32,
    pub id: String,
    pub name: String,
    pub image: String,
    pub command: Vec<String>,
    pub env: Vec<(String, String)>,
    pub volumes: Vec<VolumeSpec>,
    pub memory: Option<u64>,
    pub cpus: Option<f64>,
    pub cpuset_cpus: Option<String>,
    pub net: NetMode,
    pub ports: Vec<PortSpec>,
    pub auto_remove: bool,
    pub hostname: String,
    pub tty: bool,
    pub interactive: bool,
    pub detach: bool,
    pub created: u64,
}

/// Lifecycle state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum State {
    Created,
    Running,
    Exited,
}

/// One network the container is attached to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attachment {
    pub network: String,
    pub interface: String,
    pub address: std::net::Ipv4Addr,
    pub prefix_len: u8,
    pub ports: Vec<PortMapping>,
}

/// What is happening (`status.json`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ContainerStatus {
    pub state: State,
    /// PID of the container's init in our PID namespace.
    pub pid: Option<i32>,
    /// Start time of `pid` (clock ticks since boot), to detect PID reuse.
    pub pid_start: Option<u64>,
    pub exit_code: Option<i32>,
    pub oom_killed: bool,
    pub started: Option<u64>,
    pub finished: Option<u64>,
    pub attachments: Vec<Attachment>,
    pub error: Option<String>,
    /// The process starting the container (pid, start time) while it sets
    /// it up: its endpoints are not stray while that process lives.
    #[serde(default)]
    pub starter: Option<(i32, u64)>,
}

impl ContainerStatus {
    fn created() -> Self {
        ContainerStatus {
            state: State::Created,
            pid: None,
            pid_start: None,
            exit_code: None,
            oom_killed: false,
            started: None,
            finished: None,
            attachments: Vec::new(),
            error: None,
            starter: None,
        }
    }

    /// Whether the process that was starting this container still lives.
    pub fn starter_alive(&self) -> bool {
        self.starter
            .is_some_and(|(pid, start)| process_start_time(pid) == Some(start))
    }
}

/// A container as `ps` and `inspect` show it.
#[derive(Debug, Clone, Serialize)]
pub struct ContainerView {
    pub config: ContainerConfig,
    pub status: ContainerStatus,
    /// Running according to the kernel, not only the status file.
    pub alive: bool,
}

/// `mydocker run` input after parsing.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    pub name: Option<String>,
    pub image: String,
    pub command: Vec<String>,
    pub env: Vec<(String, String)>,
    pub volumes: Vec<VolumeSpec>,
    pub memory: Option<u64>,
    pub cpus: Option<f64>,
    pub cpuset_cpus: Option<String>,
    pub net: Option<NetMode>,
    pub ports: Vec<PortSpec>,
    pub auto_remove: bool,
    pub hostname: Option<String>,
    pub tty: bool,
    pub interactive: bool,
    pub detach: bool,
}

/// Standard streams for the container's init.
#[derive(Debug, Clone, Copy)]
pub struct Stdio {
    pub fds: [RawFd; 3],
}

fn now_unix() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Start time of a process (field 22 of /proc/PID/stat), if it exists.
pub fn process_start_time(pid: i32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may contain spaces and parentheses: split after the
    // last ')'.
    let rest = &stat[stat.rfind(')')? + 2..];
    rest.split_whitespace().nth(19)?.parse().ok()
}

fn random_hex(bytes: usize) -> Result<String> {
    let mut b = vec![0u8; bytes];
    getrandom::fill(&mut b).map_err(|e| ContainerError::Sys(format!("no randomness: {e}")))?;
    Ok(hex::encode(b))
}

const ADJECTIVES: &[&str] = &[
    "brave", "calm", "eager", "fancy", "gentle", "happy", "jolly", "keen", "lucid", "merry",
    "nifty", "proud", "quiet", "sharp", "tender", "vivid", "witty", "zealous",
];
const NOUNS: &[&str] = &[
    "babbage", "curie", "darwin", "euler", "fermi", "gauss", "hopper", "kepler", "lovelace",
    "noether", "pascal", "ritchie", "shannon", "turing", "volta", "wozniak",
];

fn signal_exit_code(status: WaitStatus) -> Option<i32> {
    match status {
        WaitStatus::Exited(_, code) => Some(code),
        WaitStatus::Signaled(_, sig, _) => Some(128 + sig as i32),
        _ => None,
    }
}

impl Runtime {
    pub fn images(&self) -> ImageStore {
        ImageStore::new(self.root())
    }

    fn containers_dir(&self) -> PathBuf {
        self.root().join("containers")
    }

    fn container_dir(&self, id: &str) -> PathBuf {
        self.containers_dir().join(id)
    }

    pub fn log_path(&self, id: &str) -> PathBuf {
        self.container_dir(id).join("container.log")
    }

    fn container_lock(&self, id: &str) -> Result<Lock> {
        Ok(Lock::exclusive(&self.container_dir(id).join("lock"))?)
    }

    pub fn container_config(&self, id: &str) -> Result<ContainerConfig> {
        store::read_json(&self.container_dir(id).join("config.json"))?
            .ok_or_else(|| ContainerError::NotFound(id.to_string()))
    }

    pub fn container_status(&self, id: &str) -> Result<ContainerStatus> {
        store::read_json(&self.container_dir(id).join("status.json"))?
            .ok_or_else(|| ContainerError::NotFound(id.to_string()))
    }

    fn write_status(&self, id: &str, status: &ContainerStatus) -> Result<()> {
        Ok(store::write_json(
            &self.container_dir(id).join("status.json"),
            status,
        )?)
    }

    fn container_ids(&self) -> Result<Vec<String>> {
        let dir = self.containers_dir();
        let entries = match std::fs::read_dir(&dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(StoreError::io(&dir, e).into()),
        };
        Ok(entries
            .flatten()
            .filter(|e| e.path().join("config.json").is_file())
            .filter_map(|e| e.file_name().into_string().ok())
            .collect())
    }

    /// Reconciles state with the kernel: containers recorded as running
    /// whose process is gone (their supervisor died too) are cleaned up,
    /// host links attached to our networks' bridges that no endpoint
    /// refers to are deleted, and interrupted operations are rolled back.
    /// With `dry_run`, only says what it would do.
    pub fn gc(&self, dry_run: bool) -> Result<Vec<String>> {
        let mut report = Vec::new();
        if dry_run {
            let pending = crate::driver::journal::orphans(&self.root().join("journal")).len();
            if pending > 0 {
                report.push(format!(
                    "would roll back {pending} interrupted operation(s)"
                ));
            }
        } else {
            report.extend(self.recover_journals());
        }
        for id in self.container_ids()? {
            let status = self.container_status(&id)?;
            if status.state == State::Running && !is_alive(&status) {
                let name = self
                    .container_config(&id)
                    .map(|c| c.name)
                    .unwrap_or_default();
                report.push(format!(
                    "{} container {name} whose process is gone",
                    if dry_run {
                        "would clean up"
                    } else {
                        "cleaned up"
                    }
                ));
                if !dry_run {
                    self.cleanup_container(&id, None)?;
                }
            }
        }
        // Endpoints of known containers that are not running (a run killed
        // between connect and recording it, say).
        let known: std::collections::BTreeSet<String> = self.container_ids()?.into_iter().collect();
        for net in self.networks()? {
            for ep in self.endpoints(&net.name)? {
                if !known.contains(&ep.container_id) {
                    continue;
                }
                let alive = self
                    .container_status(&ep.container_id)
                    .map(|s| is_alive(&s) || s.starter_alive())
                    .unwrap_or(false);
                if !alive {
                    report.push(format!(
                        "{} endpoint of stopped container {} on network {}",
                        if dry_run { "would release" } else { "released" },
                        &ep.container_id[..12],
                        net.name
                    ));
                    if !dry_run {
                        match self.disconnect(&net.name, &ep.container_id, None) {
                            Ok(()) | Err(NetworkError::NotConnected { .. }) => {}
                            Err(e) => return Err(e.into()),
                        }
                    }
                }
            }
        }
        let referenced: std::collections::BTreeSet<String> = self
            .networks()?
            .iter()
            .flat_map(|n| self.endpoints(&n.name).unwrap_or_default())
            .filter_map(|e| e.host_interface)
            .collect();
        let bridges: std::collections::BTreeSet<String> = self
            .networks()?
            .into_iter()
            .flat_map(|n| n.owned_links)
            .collect();
        let sys = self.sys_handles();
        if let Ok(nl) = sys.netlink() {
            let links = nl.links().map_err(|e| ContainerError::Sys(e.to_string()))?;
            let names: std::collections::BTreeMap<u32, String> =
                links.iter().map(|l| (l.index, l.name.clone())).collect();
            for link in &links {
                let on_ours = link
                    .master
                    .and_then(|m| names.get(&m))
                    .is_some_and(|m| bridges.contains(m));
                if on_ours && link.kind == "veth" && !referenced.contains(&link.name) {
                    report.push(format!(
                        "{} stray link {}",
                        if dry_run { "would delete" } else { "deleted" },
                        link.name
                    ));
                    if !dry_run {
                        nl.delete_link(&link.name)
                            .map_err(|e| ContainerError::Sys(e.to_string()))?;
                    }
                }
            }
        }
        // Rules in our chains that no network or endpoint recorded. This
        // assumes one state root per network namespace (the chains are
        // shared by everything in the namespace).
        if let Ok(fw) = sys.firewall() {
            let mut expected = std::collections::BTreeSet::new();
            for net in self.networks()? {
                for r in &net.owned_rules {
                    expected.extend(r.lines());
                }
                for ep in self.endpoints(&net.name)? {
                    for r in &ep.owned_rules {
                        expected.extend(r.lines());
                    }
                }
            }
            let stray: Vec<String> = fw
                .list_ours()
                .map_err(|e| ContainerError::Sys(e.to_string()))?
                .into_iter()
                .filter(|l| !expected.contains(l))
                .collect();
            for line in &stray {
                report.push(format!(
                    "{} stray firewall rule: {line}",
                    if dry_run { "would remove" } else { "removed" }
                ));
            }
            if !dry_run && !stray.is_empty() {
                fw.remove_listed(&stray)
                    .map_err(|e| ContainerError::Sys(e.to_string()))?;
            }
        }
        Ok(report)
    }

    /// After a reboot nothing runs any more: record that, and release
    /// their cgroups (the endpoints are released network-side).
    pub(crate) fn mark_containers_exited_after_reboot(&self) {
        let Ok(ids) = self.container_ids() else {
            return;
        };
        for id in ids {
            let Ok(mut status) = self.container_status(&id) else {
                continue;
            };
            if status.state == State::Running {
                // Gone with the reboot on a real machine; destroy is a no-op then.
                let _ = Cgroup::open(CGROUP_PREFIX, &id).destroy();
                status.state = State::Exited;
                status.pid = None;
                status.pid_start = None;
                status.attachments.clear();
                status.error = Some("the machine rebooted".into());
                let _ = self.write_status(&id, &status);
            }
        }
    }

    /// Every container, newest first.
    pub fn containers(&self) -> Result<Vec<ContainerView>> {
        let mut out = Vec::new();
        for id in self.container_ids()? {
            let config = self.container_config(&id)?;
            let status = self.container_status(&id)?;
            let alive = is_alive(&status);
            out.push(ContainerView {
                config,
                status,
                alive,
            });
        }
        out.sort_by(|a, b| {
            b.config
                .created
                .cmp(&a.config.created)
                .then(a.config.name.cmp(&b.config.name))
        });
        Ok(out)
    }

    /// Resolves a name, a full id or a unique id prefix.
    pub fn find_container(&self, what: &str) -> Result<String> {
        let ids = self.container_ids()?;
        if ids.iter().any(|i| i == what) {
            return Ok(what.to_string());
        }
        for id in &ids {
            if let Ok(cfg) = self.container_config(id) {
                if cfg.name == what {
                    return Ok(id.clone());
                }
            }
        }
        if what.len() >= 3 && what.bytes().all(|b| b.is_ascii_hexdigit()) {
            let matches: Vec<&String> = ids.iter().filter(|i| i.starts_with(what)).collect();
            match matches.len() {
                1 => return Ok(matches[0].clone()),
                n if n > 1 => return Err(ContainerError::Ambiguous(what.to_string())),
                _ => {}
            }
        }
        Err(ContainerError::NotFound(what.to_string()))
    }

    fn generate_name(&self, taken: &[String]) -> Result<String> {
        for _ in 0..64 {
            let r = random_hex(2)?;
            let n = u16::from_str_radix(&r, 16).unwrap_or(0) as usize;
            let name = format!(
                "{}_{}",
                ADJECTIVES[n % ADJECTIVES.len()],
                NOUNS[(n / 31) % NOUNS.len()]
            );
            if !taken.contains(&name) {
                return Ok(name);
            }
        }
        random_hex(6)
    }

    /// Published ports of every endpoint of every network (for conflicts).
    fn published_ports(&self) -> Result<Vec<(PortMapping, String)>> {
        let mut out = Vec::new();
        for net in self.networks()? {
            for ep in self.endpoints(&net.name)? {
                for p in ep.port_mappings {
                    out.push((p, ep.container_id.clone()));
                }
            }
        }
        Ok(out)
    }

    fn check_ports(&self, ports: &[PortMapping]) -> Result<()> {
        let used = self.published_ports()?;
        for p in ports {
            if let Some((_, owner)) = used.iter().find(|(u, _)| {
                u.protocol == p.protocol
                    && u.host_port == p.host_port
                    && (u.host_ip.is_none() || p.host_ip.is_none() || u.host_ip == p.host_ip)
            }) {
                let name = self
                    .container_config(owner)
                    .map(|c| c.name)
                    .unwrap_or_else(|_| owner[..owner.len().min(12)].to_string());
                return Err(ContainerError::PortInUse {
                    port: p.host_port,
                    protocol: p.protocol,
                    container: name,
                });
            }
        }
        Ok(())
    }

    /// Validates a `run` and records the container (state `created`).
    /// Nothing is created if any input is bad.
    pub fn create_container(&self, opts: &RunOptions) -> Result<ContainerConfig> {
        self.images().get(&opts.image)?;
        let net = opts
            .net
            .clone()
            .unwrap_or(NetMode::Network("bridge".into()));
        match &net {
            NetMode::Network(name) => {
                self.network(name)?;
            }
            NetMode::None | NetMode::Host if !opts.ports.is_empty() => {
                let mode = if net == NetMode::None { "none" } else { "host" };
                return Err(ContainerError::PortsWithoutNetwork(mode.into()));
            }
            _ => {}
        }
        let ports: Vec<PortMapping> = opts.ports.iter().map(to_mapping).collect();
        self.check_ports(&ports)?;

        store::ensure_private_dir(&self.containers_dir())?;
        let _lock = Lock::exclusive(&self.root().join("containers.lock"))?;
        let taken: Vec<String> = self
            .container_ids()?
            .iter()
            .filter_map(|id| self.container_config(id).ok())
            .map(|c| c.name)
            .collect();
        let name = match &opts.name {
            Some(n) if taken.contains(n) => return Err(ContainerError::NameInUse(n.clone())),
            Some(n) => n.clone(),
            None => self.generate_name(&taken)?,
        };
        let id = random_hex(32)?;
        let config = ContainerConfig {
            version: RECORD_VERSION,
            id: id.clone(),
            name,
            image: opts.image.clone(),
            command: opts.command.clone(),
            env: opts.env.clone(),
            volumes: opts.volumes.clone(),
            memory: opts.memory,
            cpus: opts.cpus,
            cpuset_cpus: opts.cpuset_cpus.clone(),
            net,
            ports: opts.ports.clone(),
            auto_remove: opts.auto_remove,
            hostname: opts
                .hostname
                .clone()
                .unwrap_or_else(|| id[..12].to_string()),
            tty: opts.tty,
            interactive: opts.interactive,
            detach: opts.detach,
            created: now_unix(),
        };
        let dir = self.container_dir(&id);
        let made = (|| -> Result<()> {
            for sub in ["upper", "work", "merged"] {
                store::ensure_private_dir(&dir.join(sub))?;
            }
            self.write_status(&id, &ContainerStatus::created())?;
            store::write_json(&dir.join("config.json"), &config)?;
            Ok(())
        })();
        if let Err(e) = made {
            let _ = std::fs::remove_dir_all(&dir);
            return Err(e);
        }
        Ok(config)
    }

    fn container_env(&self, cfg: &ContainerConfig) -> Vec<String> {
        let mut env: BTreeMap<String, String> = BTreeMap::new();
        env.insert("PATH".into(), DEFAULT_PATH.into());
        env.insert("HOSTNAME".into(), cfg.hostname.clone());
        if cfg.tty {
            env.insert("TERM".into(), "xterm".into());
        }
        let mut out: Vec<String> = env.into_iter().map(|(k, v)| format!("{k}={v}")).collect();
        // User values come last and win, in the order given.
        let user: Vec<String> = cfg.env.iter().map(|(k, v)| format!("{k}={v}")).collect();
        out.retain(|e| {
            let key = e.split('=').next().unwrap_or("");
            !cfg.env.iter().any(|(k, _)| k == key)
        });
        out.extend(user);
        out
    }

    fn cgroup_resources(cfg: &ContainerConfig) -> Resources {
        Resources {
            memory_bytes: cfg.memory,
            cpu_quota: cfg.cpus,
            cpuset_cpus: cfg.cpuset_cpus.clone(),
            pids_max: None,
        }
    }

    /// Starts a created container: cgroup, namespaces, network, then the
    /// command. On failure everything made so far is released and the
    /// status records the error. Returns the init's PID.
    pub fn start_container(&self, id: &str, stdio: Stdio) -> Result<i32> {
        let cfg = self.container_config(id)?;
        let result = self.start_inner(&cfg, stdio);
        if let Err(e) = &result {
            let mut status = self
                .container_status(id)
                .unwrap_or_else(|_| ContainerStatus::created());
            status.state = State::Exited;
            status.exit_code = Some(127);
            status.error = Some(e.to_string());
            status.finished = Some(now_unix());
            let _ = self.write_status(id, &status);
        }
        result
    }

    fn start_inner(&self, cfg: &ContainerConfig, stdio: Stdio) -> Result<i32> {
        let me = std::process::id() as i32;
        let mut starting = ContainerStatus::created();
        starting.starter = process_start_time(me).map(|t| (me, t));
        self.write_status(&cfg.id, &starting)?;
        let image_root = self.images().rootfs(&cfg.image);
        let cgroup = Cgroup::create(CGROUP_PREFIX, &cfg.id, &Self::cgroup_resources(cfg))?;
        let own_netns = cfg.net != NetMode::Host;
        let child = match ctr::spawn(Namespaces { network: own_netns }, stdio.fds) {
            Ok(c) => c,
            Err(e) => {
                let _ = cgroup.destroy();
                return Err(e.into());
            }
        };
        let pid = child.pid.as_raw();
        let mut attachments = Vec::new();
        let fail = |this: &Self, attachments: &[Attachment], e: ContainerError| -> ContainerError {
            let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
            let _ = waitpid(Pid::from_raw(pid), None);
            for a in attachments {
                let _ = this.disconnect(&a.network, &cfg.id, None);
            }
            let _ = cgroup.destroy();
            e
        };
        if let Err(e) = cgroup.add_process(pid) {
            return Err(fail(self, &attachments, e.into()));
        }
        match &cfg.net {
            NetMode::Network(name) => {
                let netns = match File::open(format!("/proc/{pid}/ns/net")) {
                    Ok(f) => f,
                    Err(e) => {
                        return Err(fail(
                            self,
                            &attachments,
                            ContainerError::Sys(format!("container netns: {e}")),
                        ))
                    }
                };
                let ports: Vec<PortMapping> = cfg.ports.iter().map(to_mapping).collect();
                // Port conflicts are checked again under a lock: two runs
                // may have passed the early check at the same time.
                let connected = Lock::exclusive(&self.root().join("ports.lock"))
                    .map_err(ContainerError::from)
                    .and_then(|_lock| {
                        self.check_ports(&ports)?;
                        Ok(self.connect(ConnectRequest {
                            network: name,
                            container_id: &cfg.id,
                            netns: netns.into(),
                            port_mappings: &ports,
                        })?)
                    });
                match connected {
                    Ok(ep) => attachments.push(Attachment {
                        network: name.clone(),
                        interface: ep.interface,
                        address: ep.address,
                        prefix_len: ep.prefix_len,
                        ports: ep.port_mappings,
                    }),
                    Err(e) => return Err(fail(self, &attachments, e)),
                }
            }
            NetMode::None => {
                let up = File::open(format!("/proc/{pid}/ns/net"))
                    .map_err(|e| e.to_string())
                    .and_then(|f| {
                        Netlink::open_in(std::os::fd::AsFd::as_fd(&f)).map_err(|e| e.to_string())
                    })
                    .and_then(|nl| nl.set_up("lo", true).map_err(|e| e.to_string()));
                if let Err(e) = up {
                    return Err(fail(
                        self,
                        &attachments,
                        ContainerError::Sys(format!("bringing up lo: {e}")),
                    ));
                }
            }
            NetMode::Host => {}
        }
        let mut status = ContainerStatus::created();
        status.state = State::Running;
        status.pid = Some(pid);
        status.pid_start = process_start_time(pid);
        status.started = Some(now_unix());
        fault_point("run-after-connect", 1);
        status.attachments = attachments.clone();
        if let Err(e) = self.write_status(&cfg.id, &status) {
            return Err(fail(self, &attachments, e));
        }
        let dir = self.container_dir(&cfg.id);
        let spec = InitSpec {
            lower: image_root,
            upper: dir.join("upper"),
            work: dir.join("work"),
            merged: dir.join("merged"),
            binds: cfg
                .volumes
                .iter()
                .map(|v| BindMount {
                    host: v.host.clone(),
                    container: v.container.clone(),
                    read_only: v.read_only,
                })
                .collect(),
            hostname: cfg.hostname.clone(),
            args: cfg.command.clone(),
            env: self.container_env(cfg),
            tty: cfg.tty,
        };
        if let Err(e) = child.start(&spec) {
            return Err(fail(self, &attachments, e.into()));
        }
        Ok(pid)
    }

    /// Waits for the container's init (our child) to exit, then releases
    /// everything. Returns the exit code (128+N for signal N).
    pub fn wait_container(&self, id: &str, pid: i32) -> Result<i32> {
        let code = loop {
            match waitpid(Pid::from_raw(pid), None) {
                Ok(s) => {
                    if let Some(code) = signal_exit_code(s) {
                        break code;
                    }
                }
                Err(nix::errno::Errno::EINTR) => continue,
                Err(e) => return Err(ContainerError::Sys(format!("waiting for container: {e}"))),
            }
        };
        self.cleanup_container(id, Some(code))?;
        Ok(code)
    }

    /// Releases what a stopped container held (endpoints, addresses,
    /// cgroup) and records it as exited. Idempotent; for `--rm` containers
    /// also removes them.
    pub fn cleanup_container(&self, id: &str, exit_code: Option<i32>) -> Result<()> {
        let cfg = self.container_config(id)?;
        {
            let _lock = self.container_lock(id)?;
            let mut status = self.container_status(id)?;
            let cgroup = Cgroup::open(CGROUP_PREFIX, id);
            let oom = cgroup.oom_killed();
            // Every network holding an endpoint of this container, recorded
            // in its status or not (a start killed between connect and the
            // status write leaves only the endpoint).
            let mut networks: std::collections::BTreeSet<String> = status
                .attachments
                .iter()
                .map(|a| a.network.clone())
                .collect();
            for net in self.networks()? {
                if self.endpoint_path(&net.name, id).is_file() {
                    networks.insert(net.name);
                }
            }
            for network in &networks {
                match self.disconnect(network, id, None) {
                    Ok(())
                    | Err(NetworkError::NotConnected { .. })
                    | Err(NetworkError::NotFound(_)) => {}
                    Err(e) => {
                        tracing::warn!(container = id, network = %network, "disconnect failed: {e}")
                    }
                }
            }
            cgroup.destroy()?;
            // The shared "mydocker" parent goes too once it is empty, so a
            // machine without containers carries no trace of us (rmdir
            // fails harmlessly while other containers use it).
            for dir in cgroup.paths() {
                if let Some(parent) = dir.parent() {
                    let _ = std::fs::remove_dir(parent);
                }
            }
            status.attachments.clear();
            if status.state != State::Exited || status.exit_code.is_none() {
                status.exit_code = exit_code.or(status.exit_code);
            }
            status.state = State::Exited;
            status.oom_killed |= oom;
            status.pid = None;
            status.pid_start = None;
            status.finished.get_or_insert(now_unix());
            self.write_status(id, &status)?;
        }
        if cfg.auto_remove {
            self.remove_container_dir(id)?;
        }
        Ok(())
    }

    fn remove_container_dir(&self, id: &str) -> Result<()> {
        let dir = self.container_dir(id);
        // config.json first: once it is gone the container no longer exists.
        store::remove_file(&dir.join("config.json"))?;
        match std::fs::remove_dir_all(&dir) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(StoreError::io(&dir, e).into()),
        }
    }

    /// SIGTERM, then SIGKILL after `timeout`; returns once the container
    /// is cleaned up.
    pub fn stop_container(&self, id: &str, timeout: Duration) -> Result<()> {
        let status = self.container_status(id)?;
        let Some(pid) = status.pid.filter(|_| is_alive(&status)) else {
            if status.state == State::Running {
                // Its supervisor died with it: finish the job here.
                self.cleanup_container(id, None)?;
                return Ok(());
            }
            return Err(ContainerError::NotRunning(id.to_string()));
        };
        let target = Pid::from_raw(pid);
        let _ = kill(target, Signal::SIGTERM);
        fault_point("stop-after-signal", 1);
        if !wait_gone(pid, status.pid_start, timeout) {
            let _ = kill(target, Signal::SIGKILL);
            wait_gone(pid, status.pid_start, Duration::from_secs(10));
        }
        // The supervisor normally records the exit and releases resources;
        // give it a moment, then do it ourselves if it is not there.
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            match self.container_status(id) {
                Ok(s) if s.state == State::Exited => return Ok(()),
                Err(ContainerError::NotFound(_)) => return Ok(()), // --rm removed it
                _ => std::thread::sleep(Duration::from_millis(20)),
            }
        }
        self.cleanup_container(id, Some(128 + libc::SIGKILL))
    }

    /// `rm`: refused for a running container unless `force` (then killed).
    pub fn remove_container(&self, id: &str, force: bool) -> Result<()> {
        let status = self.container_status(id)?;
        if is_alive(&status) {
            if !force {
                return Err(ContainerError::Running(id.to_string()));
            }
            self.stop_container(id, Duration::ZERO)?;
        } else if status.state != State::Exited {
            // Created (never started, or its starter died) or Running with a
            // dead process: release whatever it may hold (cgroup, endpoints).
            self.cleanup_container(id, None)?;
        }
        fault_point("rm-after-cleanup", 1);
        if self.container_dir(id).exists() {
            self.remove_container_dir(id)?;
        }
        Ok(())
    }

    /// Joins a running container to another network (`network connect`).
    pub fn connect_container(&self, network: &str, id: &str) -> Result<Attachment> {
        let status = self.container_status(id)?;
        let pid = status
            .pid
            .filter(|_| is_alive(&status))
            .ok_or_else(|| ContainerError::NotRunning(id.to_string()))?;
        let cfg = self.container_config(id)?;
        if cfg.net == NetMode::Host {
            return Err(ContainerError::Sys(format!(
                "container {} uses the host's network and cannot join other networks",
                cfg.name
            )));
        }
        let netns = File::open(format!("/proc/{pid}/ns/net"))
            .map_err(|e| ContainerError::Sys(format!("container netns: {e}")))?;
        let _lock = self.container_lock(id)?;
        let ep = self.connect(ConnectRequest {
            network,
            container_id: id,
            netns: netns.into(),
            port_mappings: &[],
        })?;
        let att = Attachment {
            network: network.to_string(),
            interface: ep.interface,
            address: ep.address,
            prefix_len: ep.prefix_len,
            ports: Vec::new(),
        };
        let mut status = self.container_status(id)?;
        status.attachments.push(att.clone());
        self.write_status(id, &status)?;
        Ok(att)
    }

    /// Detaches a running container from a network (`network disconnect`).
    pub fn disconnect_container(&self, network: &str, id: &str) -> Result<()> {
        let status = self.container_status(id)?;
        let netns = status
            .pid
            .filter(|_| is_alive(&status))
            .and_then(|pid| File::open(format!("/proc/{pid}/ns/net")).ok())
            .map(Into::into);
        let _lock = self.container_lock(id)?;
        self.disconnect(network, id, netns)?;
        let mut status = self.container_status(id)?;
        status.attachments.retain(|a| a.network != network);
        self.write_status(id, &status)?;
        Ok(())
    }

    /// The environment and cgroup an `exec` joins.
    pub fn exec_spec(
        &self,
        id: &str,
        args: Vec<String>,
        tty: bool,
    ) -> Result<crate::sys::nsexec::ExecSpec> {
        let status = self.container_status(id)?;
        let cfg = self.container_config(id)?;
        let pid = status
            .pid
            .filter(|_| is_alive(&status))
            .ok_or_else(|| ContainerError::NotRunning(cfg.name.clone()))?;
        let mut env = self.container_env(&cfg);
        if tty && !env.iter().any(|e| e.starts_with("TERM=")) {
            env.push("TERM=xterm".into());
        }
        Ok(crate::sys::nsexec::ExecSpec {
            pid,
            own_netns: cfg.net != NetMode::Host,
            args,
            env,
            tty,
            cgroup_procs: Cgroup::open(CGROUP_PREFIX, id)
                .paths()
                .into_iter()
                .map(|p| p.join("cgroup.procs"))
                .filter(|p| p.exists())
                .collect(),
        })
    }
}

fn to_mapping(p: &PortSpec) -> PortMapping {
    *p
}

/// Whether the status's process still runs (same PID *and* start time).
pub fn is_alive(status: &ContainerStatus) -> bool {
    match (status.state, status.pid) {
        (State::Running, Some(pid)) => {
            let start = process_start_time(pid);
            start.is_some()
                && (status.pid_start.is_none() || start == status.pid_start)
                && !is_zombie(pid)
        }
        _ => false,
    }
}

fn is_zombie(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| s.rfind(')').map(|i| s[i + 2..].starts_with('Z')))
        .unwrap_or(false)
}

fn wait_gone(pid: i32, start: Option<u64>, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        let now = process_start_time(pid);
        if now.is_none() || (start.is_some() && now != start) || is_zombie(pid) {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Opens the log file for a detached container's stdout/stderr.
pub fn open_log(path: &std::path::Path) -> std::io::Result<File> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(path)
}

/// Raw fd helper for stdio arrays.
pub fn raw(f: &impl AsRawFd) -> RawFd {
    f.as_raw_fd()
}
