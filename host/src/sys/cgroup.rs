//! Control groups for containers: resource limits (memory, CPU quota,
//! cpuset, pids), process placement, OOM detection and clean teardown.
//!
//! Both cgroup layouts are supported and chosen at run time by [`detect`]:
//!
//! * **v2** (unified): `/sys/fs/cgroup/cgroup.controllers` exists. A container
//!   gets one directory, `/sys/fs/cgroup/<prefix>/<name>`; the controllers we
//!   need are enabled top-down in each ancestor's `cgroup.subtree_control`.
//! * **v1** (per-controller hierarchies, possibly with an empty `unified`
//!   mount next to them, i.e. "hybrid"): a container gets one directory per
//!   hierarchy we use (memory, cpu, cpuacct, cpuset, pids), each at
//!   `<mount point>/<prefix>/<name>`. Mount points are read from
//!   `/proc/self/mountinfo` rather than assumed, because distributions mount
//!   co-mounted controllers differently (`cpu,cpuacct` vs. separate mounts).
//!
//! Design notes (the "why"s):
//!
//! * **v1 cpuset needs `cpuset.cpus` / `cpuset.mems` filled in.** A freshly
//!   created v1 cpuset directory has both empty (unless the parent has
//!   `cgroup.clone_children`), and the kernel refuses to attach tasks to it
//!   (`ENOSPC`). A child's sets must also be a subset of its parent's, so every
//!   directory on the way down — including the shared `<prefix>` directories —
//!   gets the parent's values copied in when empty.
//! * **Swap.** A memory limit that can be dodged by swapping is not a limit,
//!   so we also cap memory+swap: v1 `memory.memsw.limit_in_bytes` = the memory
//!   limit (the file only exists with swap accounting enabled; `EINVAL` and
//!   `ENOENT` are ignored), v2 `memory.swap.max` = 0 when the file exists.
//! * **`EBUSY` on teardown.** `rmdir` of a cgroup fails with `EBUSY` while it
//!   still has tasks (or child cgroups). After `SIGKILL`, tasks leave the
//!   cgroup asynchronously, so [`Cgroup::destroy`] kills, then retries `rmdir`
//!   with a short back-off for a bounded time, re-killing anything that showed
//!   up meanwhile (e.g. a fork racing the first kill).
//! * **No leaks.** [`Cgroup::create`] records every directory it made and
//!   removes them (leaf first) if anything later fails. Shared `<prefix>`
//!   directories are removed only if empty, so concurrent creators are safe.
//! * **Never writes pid 0.** Writing `0` to `cgroup.procs` moves the *writer*,
//!   i.e. this process, so [`Cgroup::add_process`] rejects non-positive pids.

use std::fs::{self, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::thread;
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

/// Where both layouts are mounted on every mainstream distribution.
const CGROUP_ROOT: &str = "/sys/fs/cgroup";
const MOUNTINFO: &str = "/proc/self/mountinfo";
/// CFS period used for `cpu_quota`; 100ms is the kernel default.
const CPU_PERIOD_US: u64 = 100_000;
/// How long [`Cgroup::destroy`] keeps retrying `rmdir` on `EBUSY`.
const DESTROY_TIMEOUT: Duration = Duration::from_secs(5);
/// How often [`Cgroup::create`] restarts when a parent directory disappears
/// under it (another process removed an empty `<prefix>` directory).
const CREATE_ATTEMPTS: usize = 5;
/// v1 controllers we place containers in. cpuacct only matters when it is a
/// separate hierarchy (when co-mounted with cpu it is the same directory).
const V1_CONTROLLERS: [&str; 5] = ["memory", "cpu", "cpuacct", "cpuset", "pids"];
/// v2 controllers we try to enable for our subtree.
const V2_CONTROLLERS: [&str; 4] = ["memory", "cpu", "cpuset", "pids"];
const MAX_NAME_LEN: usize = 128;

/// Resource limits; `None` leaves the kernel default (or, when re-creating an
/// existing cgroup, whatever value it already has).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Resources {
    /// Memory limit in bytes: v1 `memory.limit_in_bytes`, v2 `memory.max`.
    /// Swap is disabled too where possible (v1 `memory.memsw.limit_in_bytes`
    /// set to the same value, v2 `memory.swap.max` = 0). The kernel rounds
    /// the limit down to a multiple of the page size.
    pub memory_bytes: Option<u64>,
    /// CPUs, e.g. 0.5 → quota 50000us per 100000us period (v1
    /// `cpu.cfs_period_us`/`cpu.cfs_quota_us`, v2 `cpu.max`). Must be finite
    /// and > 0; the kernel refuses quotas below 1000us (0.01 CPU).
    pub cpu_quota: Option<f64>,
    /// CPU list such as "0" or "0-1" (`cpuset.cpus`).
    pub cpuset_cpus: Option<String>,
    /// Maximum number of tasks (`pids.max`).
    pub pids_max: Option<u64>,
}

#[derive(Debug, thiserror::Error)]
pub enum CgroupError {
    #[error("cgroup {path}: {message}")]
    Io { path: PathBuf, message: String },
    #[error("invalid cgroup name '{0}'")]
    InvalidName(String),
    #[error("the {0} cgroup controller is not available on this machine")]
    MissingController(&'static str),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Version {
    V1,
    V2,
}

/// v2 if the unified hierarchy is mounted at /sys/fs/cgroup, else v1
/// (including "hybrid" systems with an extra cgroup2 mount at
/// /sys/fs/cgroup/unified, which has no controllers we could use).
pub fn detect() -> Version {
    if Path::new(CGROUP_ROOT).join("cgroup.controllers").exists() {
        Version::V2
    } else {
        Version::V1
    }
}

/// One directory of the container's cgroup, in one hierarchy.
#[derive(Debug, Clone)]
struct Dir {
    /// Mount point of the hierarchy (v1) or the unified root (v2).
    root: PathBuf,
    /// `root/<prefix>/<name>`.
    path: PathBuf,
    /// Controllers attached to this hierarchy that we care about.
    controllers: Vec<&'static str>,
}

impl Dir {
    fn has(&self, controller: &str) -> bool {
        self.controllers.contains(&controller)
    }
}

/// A cgroup named `<prefix>/<name>` (e.g. "mydocker/<container-id>") in every
/// controller we use.
#[derive(Debug, Clone)]
pub struct Cgroup {
    version: Version,
    /// Path segments below each root: the prefix segments, then the name.
    segments: Vec<String>,
    dirs: Vec<Dir>,
}

impl Cgroup {
    /// Creates (mkdir -p, idempotent) the cgroup in each hierarchy: v1 memory,
    /// cpu, cpuset, pids (and cpuacct if separate); v2 the unified dir,
    /// enabling +memory +cpu +cpuset +pids in the parents'
    /// `cgroup.subtree_control` where needed. Applies resources. On any
    /// failure removes what it created, so nothing leaks.
    ///
    /// A controller that is absent is only an error
    /// ([`CgroupError::MissingController`]) if a resource needs it.
    pub fn create(prefix: &str, name: &str, res: &Resources) -> Result<Cgroup, CgroupError> {
        validate(prefix, name)?;
        let version = detect();
        let cg = match version {
            Version::V1 => Cgroup::locate_v1(prefix, name, read_v1_mounts()?),
            Version::V2 => Cgroup::locate_v2(prefix, name, read_v2_controllers()?),
        };
        cg.check_controllers(res)?;
        let cpu_quota_us = cpu_quota_us(res, &cg)?;

        let mut created = Vec::new();
        let result = (|| {
            for dir in &cg.dirs {
                cg.make_dir(dir, &mut created)?;
            }
            cg.apply(res, cpu_quota_us)
        })();
        if let Err(e) = result {
            tracing::debug!(error = %e, "cgroup creation failed; removing what was created");
            // Leaf first, so the shared prefix dirs are empty when we get to
            // them; those still used by someone else stay (EBUSY/ENOTEMPTY).
            for path in created.iter().rev() {
                if let Err(err) = fs::remove_dir(path) {
                    if err.kind() != io::ErrorKind::NotFound {
                        tracing::debug!(path = %path.display(), error = %err, "cleanup rmdir");
                    }
                }
            }
            return Err(e);
        }
        tracing::debug!(paths = ?cg.paths(), "created cgroup");
        Ok(cg)
    }

    /// Re-opens an existing cgroup by name (for later cleanup by another
    /// process); Ok even if some dirs are gone. Nothing is touched on disk.
    ///
    /// An invalid name (or an unreadable mountinfo) yields a cgroup with no
    /// directories, on which every operation is a harmless no-op, so a bad
    /// name can never make [`Cgroup::destroy`] act outside its own tree.
    pub fn open(prefix: &str, name: &str) -> Cgroup {
        let empty = |version| Cgroup {
            version,
            segments: Vec::new(),
            dirs: Vec::new(),
        };
        if let Err(e) = validate(prefix, name) {
            tracing::warn!(error = %e, "Cgroup::open with an invalid name; it manages nothing");
            return empty(detect());
        }
        match detect() {
            Version::V1 => match read_v1_mounts() {
                Ok(mounts) => Cgroup::locate_v1(prefix, name, mounts),
                Err(e) => {
                    tracing::warn!(error = %e, "cannot locate cgroup v1 hierarchies");
                    empty(Version::V1)
                }
            },
            // Controllers only matter for create; list them all for lookups.
            Version::V2 => Cgroup::locate_v2(prefix, name, V2_CONTROLLERS.to_vec()),
        }
    }

    /// Moves a process into the cgroup in every hierarchy (writes the pid to
    /// each `cgroup.procs`). Threads follow their process.
    pub fn add_process(&self, pid: i32) -> Result<(), CgroupError> {
        if pid <= 0 {
            // "0" would move the calling process itself.
            let path = self
                .dirs
                .first()
                .map(|d| d.path.join("cgroup.procs"))
                .unwrap_or_default();
            return Err(io_error(path, format!("refusing to add pid {pid}")));
        }
        for dir in &self.dirs {
            write_file(&dir.path.join("cgroup.procs"), &pid.to_string())?;
        }
        Ok(())
    }

    /// Pids currently in the cgroup (from the memory or unified hierarchy's
    /// `cgroup.procs`), sorted. Empty if the cgroup does not exist.
    pub fn processes(&self) -> Vec<i32> {
        let dir = self
            .dirs
            .iter()
            .find(|d| d.has("memory"))
            .or(self.dirs.first());
        let Some(dir) = dir else { return Vec::new() };
        let mut pids = read_pids(&dir.path.join("cgroup.procs"));
        pids.sort_unstable();
        pids.dedup();
        pids
    }

    /// Kills every process still inside (SIGKILL, by reading `cgroup.procs`;
    /// v2 also uses `cgroup.kill` if present), then rmdirs every directory
    /// (child cgroups made inside ours included), retrying briefly because
    /// rmdir returns EBUSY until the killed tasks are gone. Idempotent:
    /// missing dirs are fine. Never touches anything outside its own
    /// directories; the shared `<prefix>` directories are left in place.
    ///
    /// The calling process is never signalled; if it is inside, this fails
    /// with EBUSY after the timeout.
    pub fn destroy(&self) -> Result<(), CgroupError> {
        let deadline = Instant::now() + DESTROY_TIMEOUT;
        let mut delay = Duration::from_millis(1);
        let me = std::process::id() as i32;
        loop {
            // 1. Kill everything in every hierarchy (a process may be in one
            //    hierarchy but not another if add_process failed halfway).
            let mut pids = Vec::new();
            for dir in &self.dirs {
                if self.version == Version::V2 {
                    let kill_file = dir.path.join("cgroup.kill");
                    if kill_file.exists() {
                        // Kills the whole subtree atomically, forks included.
                        if let Err(e) = write_file(&kill_file, "1") {
                            tracing::debug!(error = %e, "cgroup.kill");
                        }
                    }
                }
                collect_pids(&dir.path, &mut pids);
            }
            pids.sort_unstable();
            pids.dedup();
            for &pid in &pids {
                if pid == me || pid <= 0 {
                    tracing::warn!(pid, "not killing this pid (it is the calling process)");
                    continue;
                }
                match kill(Pid::from_raw(pid), Signal::SIGKILL) {
                    Ok(()) | Err(Errno::ESRCH) => {}
                    Err(e) => tracing::debug!(pid, error = %e, "kill"),
                }
            }

            // 2. Remove the directories (deepest first).
            let mut busy = None;
            for dir in &self.dirs {
                match remove_tree(&dir.path) {
                    Ok(()) => {}
                    Err((path, err)) if err.raw_os_error() == Some(libc::EBUSY) => {
                        busy = Some((path, err));
                    }
                    Err((path, err)) => {
                        return Err(io_error(
                            path,
                            format!("removing directory: {}", errstr(&err)),
                        ));
                    }
                }
            }
            let Some((path, err)) = busy else {
                tracing::debug!(paths = ?self.paths(), "destroyed cgroup");
                return Ok(());
            };
            if Instant::now() >= deadline {
                let left = read_pids(&path.join("cgroup.procs"));
                return Err(io_error(
                    path,
                    format!(
                        "removing directory: {} (still busy after {:?}; processes inside: {:?})",
                        errstr(&err),
                        DESTROY_TIMEOUT,
                        left
                    ),
                ));
            }
            thread::sleep(delay);
            delay = (delay * 2).min(Duration::from_millis(50));
        }
    }

    /// The directories it manages (for tests / diagnostics).
    pub fn paths(&self) -> Vec<PathBuf> {
        self.dirs.iter().map(|d| d.path.clone()).collect()
    }

    /// Whether the kernel OOM-killed something in this cgroup (v1
    /// `memory.oom_control` "oom_kill N" > 0, needs Linux >= 4.13; v2
    /// `memory.events` "oom_kill N" > 0). False if unknown.
    pub fn oom_killed(&self) -> bool {
        let Some(dir) = self.dirs.iter().find(|d| d.has("memory")) else {
            return false;
        };
        let file = match self.version {
            Version::V1 => "memory.oom_control",
            Version::V2 => "memory.events",
        };
        let Ok(text) = fs::read_to_string(dir.path.join(file)) else {
            return false;
        };
        text.lines().any(|line| {
            let mut words = line.split_whitespace();
            words.next() == Some("oom_kill")
                && words
                    .next()
                    .and_then(|n| n.parse::<u64>().ok())
                    .is_some_and(|n| n > 0)
        })
    }

    // ----- internals -----

    fn locate_v1(prefix: &str, name: &str, mounts: Vec<(&'static str, PathBuf)>) -> Cgroup {
        let segments = segments(prefix, name);
        let mut dirs: Vec<Dir> = Vec::new();
        for (controller, root) in mounts {
            // Co-mounted controllers (e.g. cpu,cpuacct) share one directory.
            if let Some(dir) = dirs.iter_mut().find(|d| d.root == root) {
                dir.controllers.push(controller);
                continue;
            }
            let path = join(&root, &segments);
            dirs.push(Dir {
                root,
                path,
                controllers: vec![controller],
            });
        }
        Cgroup {
            version: Version::V1,
            segments,
            dirs,
        }
    }

    fn locate_v2(prefix: &str, name: &str, controllers: Vec<&'static str>) -> Cgroup {
        let segments = segments(prefix, name);
        let root = PathBuf::from(CGROUP_ROOT);
        let path = join(&root, &segments);
        Cgroup {
            version: Version::V2,
            segments,
            dirs: vec![Dir {
                root,
                path,
                controllers,
            }],
        }
    }

    fn has(&self, controller: &str) -> bool {
        self.dirs.iter().any(|d| d.has(controller))
    }

    fn dir(&self, controller: &'static str) -> Result<&Dir, CgroupError> {
        self.dirs
            .iter()
            .find(|d| d.has(controller))
            .ok_or(CgroupError::MissingController(controller))
    }

    fn check_controllers(&self, res: &Resources) -> Result<(), CgroupError> {
        let needed = [
            (res.memory_bytes.is_some(), "memory"),
            (res.cpu_quota.is_some(), "cpu"),
            (res.cpuset_cpus.is_some(), "cpuset"),
            (res.pids_max.is_some(), "pids"),
        ];
        for (wanted, controller) in needed {
            if wanted && !self.has(controller) {
                return Err(CgroupError::MissingController(controller));
            }
        }
        if self.dirs.is_empty() {
            return Err(CgroupError::MissingController("memory"));
        }
        Ok(())
    }

    /// mkdir -p of `dir.path`, recording what it created. Restarts if a
    /// parent vanishes meanwhile (a concurrent cleanup removed an empty
    /// prefix directory between our mkdirs).
    fn make_dir(&self, dir: &Dir, created: &mut Vec<PathBuf>) -> Result<(), CgroupError> {
        let mut attempt = 0;
        loop {
            attempt += 1;
            match self.make_dir_once(dir, created) {
                Err(Retry::Vanished(e)) if attempt < CREATE_ATTEMPTS => {
                    tracing::debug!(error = %e, "parent cgroup vanished; retrying");
                }
                Err(Retry::Vanished(e) | Retry::Fatal(e)) => return Err(e),
                Ok(()) => return Ok(()),
            }
        }
    }

    fn make_dir_once(&self, dir: &Dir, created: &mut Vec<PathBuf>) -> Result<(), Retry> {
        let v1_cpuset = self.version == Version::V1 && dir.has("cpuset");
        let mut current = dir.root.clone();
        for segment in &self.segments {
            if self.version == Version::V2 {
                // Controllers must be enabled in every ancestor, top-down,
                // before they show up in the level below.
                self.enable_v2_controllers(dir, &current)?;
            }
            let parent = current.clone();
            current.push(segment);
            match fs::create_dir(&current) {
                Ok(()) => created.push(current.clone()),
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
                Err(e) => {
                    let err = io_error(&current, format!("creating directory: {}", errstr(&e)));
                    return Err(if e.kind() == io::ErrorKind::NotFound {
                        Retry::Vanished(err)
                    } else {
                        Retry::Fatal(err)
                    });
                }
            }
            if v1_cpuset {
                // Also for pre-existing dirs: a concurrent creator may have
                // made it and not yet filled it in.
                for file in ["cpuset.cpus", "cpuset.mems"] {
                    copy_if_empty(&parent.join(file), &current.join(file))?;
                }
            }
        }
        Ok(())
    }

    /// Enables our controllers in `parent/cgroup.subtree_control` (v2).
    /// Controllers the parent lacks are skipped; `check_controllers` already
    /// made sure that requested ones exist at the root.
    fn enable_v2_controllers(&self, dir: &Dir, parent: &Path) -> Result<(), Retry> {
        let available = read_words(&parent.join("cgroup.controllers")).map_err(Retry::from)?;
        let control = parent.join("cgroup.subtree_control");
        let enabled = read_words(&control).map_err(Retry::from)?;
        for &controller in &dir.controllers {
            if enabled.iter().any(|c| c == controller) {
                continue;
            }
            if !available.iter().any(|c| c == controller) {
                // Not delegated to this subtree.
                return Err(Retry::Fatal(CgroupError::MissingController(controller)));
            }
            write_file(&control, &format!("+{controller}")).map_err(Retry::from)?;
        }
        Ok(())
    }

    fn apply(&self, res: &Resources, cpu_quota_us: Option<u64>) -> Result<(), CgroupError> {
        match self.version {
            Version::V1 => self.apply_v1(res, cpu_quota_us),
            Version::V2 => self.apply_v2(res, cpu_quota_us),
        }
    }

    fn apply_v1(&self, res: &Resources, cpu_quota_us: Option<u64>) -> Result<(), CgroupError> {
        if let Some(bytes) = res.memory_bytes {
            let dir = &self.dir("memory")?.path;
            let limit = dir.join("memory.limit_in_bytes");
            let memsw = dir.join("memory.memsw.limit_in_bytes");
            let value = bytes.to_string();
            match write_file_raw(&limit, &value) {
                Ok(()) => {}
                // memory.limit_in_bytes may not exceed memsw; when raising
                // the limit of an existing cgroup, raise memsw first.
                Err(e) if e.raw_os_error() == Some(libc::EINVAL) && memsw.exists() => {
                    write_memsw(&memsw, &value)?;
                    write_file(&limit, &value)?;
                }
                Err(e) => {
                    return Err(io_error(&limit, format!("writing {value}: {}", errstr(&e))));
                }
            }
            // memory + swap == memory, i.e. no swap. Only present with swap
            // accounting enabled (swapaccount=1).
            write_memsw(&memsw, &value)?;
        }
        if let Some(quota) = cpu_quota_us {
            let dir = &self.dir("cpu")?.path;
            write_file(&dir.join("cpu.cfs_period_us"), &CPU_PERIOD_US.to_string())?;
            write_file(&dir.join("cpu.cfs_quota_us"), &quota.to_string())?;
        }
        if let Some(cpus) = &res.cpuset_cpus {
            // cpuset.mems was copied from the parent in make_dir_once.
            write_file(&self.dir("cpuset")?.path.join("cpuset.cpus"), cpus)?;
        }
        if let Some(max) = res.pids_max {
            write_file(&self.dir("pids")?.path.join("pids.max"), &max.to_string())?;
        }
        Ok(())
    }

    fn apply_v2(&self, res: &Resources, cpu_quota_us: Option<u64>) -> Result<(), CgroupError> {
        if let Some(bytes) = res.memory_bytes {
            let dir = &self.dir("memory")?.path;
            write_file(&dir.join("memory.max"), &bytes.to_string())?;
            // Absent when the kernel has no swap accounting.
            let swap = dir.join("memory.swap.max");
            if swap.exists() {
                write_file(&swap, "0")?;
            }
        }
        if let Some(quota) = cpu_quota_us {
            let dir = &self.dir("cpu")?.path;
            write_file(&dir.join("cpu.max"), &format!("{quota} {CPU_PERIOD_US}"))?;
        }
        if let Some(cpus) = &res.cpuset_cpus {
            write_file(&self.dir("cpuset")?.path.join("cpuset.cpus"), cpus)?;
        }
        if let Some(max) = res.pids_max {
            write_file(&self.dir("pids")?.path.join("pids.max"), &max.to_string())?;
        }
        Ok(())
    }
}

/// Error while creating, telling whether a restart may help.
enum Retry {
    Vanished(CgroupError),
    Fatal(CgroupError),
}

impl From<CgroupError> for Retry {
    fn from(e: CgroupError) -> Self {
        Retry::Fatal(e)
    }
}

/// Validates before anything touches the filesystem, so a hostile name such
/// as "../../x" can never escape the hierarchy.
fn validate(prefix: &str, name: &str) -> Result<(), CgroupError> {
    fn segment_ok(s: &str) -> bool {
        !s.is_empty()
            && s != "."
            && s != ".."
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
    }
    let len_ok = |s: &str| (1..=MAX_NAME_LEN).contains(&s.len());
    if !len_ok(prefix) || !prefix.split('/').all(segment_ok) {
        return Err(CgroupError::InvalidName(prefix.to_string()));
    }
    if !len_ok(name) || !segment_ok(name) {
        return Err(CgroupError::InvalidName(name.to_string()));
    }
    Ok(())
}

fn segments(prefix: &str, name: &str) -> Vec<String> {
    prefix
        .split('/')
        .chain(std::iter::once(name))
        .map(str::to_string)
        .collect()
}

fn join(root: &Path, segments: &[String]) -> PathBuf {
    let mut path = root.to_path_buf();
    path.extend(segments);
    path
}

fn cpu_quota_us(res: &Resources, cg: &Cgroup) -> Result<Option<u64>, CgroupError> {
    let Some(cpus) = res.cpu_quota else {
        return Ok(None);
    };
    if !cpus.is_finite() || cpus <= 0.0 || cpus * CPU_PERIOD_US as f64 > u32::MAX as f64 {
        let file = match cg.version {
            Version::V1 => "cpu.cfs_quota_us",
            Version::V2 => "cpu.max",
        };
        let path = cg.dir("cpu")?.path.join(file);
        return Err(io_error(
            path,
            format!("invalid CPU quota {cpus}: must be a positive number of CPUs"),
        ));
    }
    Ok(Some((cpus * CPU_PERIOD_US as f64).round() as u64))
}

/// Mount point of each v1 controller we use, from /proc/self/mountinfo.
fn read_v1_mounts() -> Result<Vec<(&'static str, PathBuf)>, CgroupError> {
    let text = fs::read_to_string(MOUNTINFO)
        .map_err(|e| io_error(MOUNTINFO, format!("reading: {}", errstr(&e))))?;
    Ok(parse_v1_mounts(&text))
}

/// Parses mountinfo lines:
/// `id parent maj:min root mount-point options [optional...] - fstype source super-options`
fn parse_v1_mounts(text: &str) -> Vec<(&'static str, PathBuf)> {
    let mut found: Vec<(&'static str, PathBuf)> = Vec::new();
    for line in text.lines() {
        let Some((left, right)) = line.split_once(" - ") else {
            continue;
        };
        let mut right = right.split_whitespace();
        if right.next() != Some("cgroup") {
            continue;
        }
        let Some(options) = right.nth(1) else {
            continue;
        };
        let Some(mount_point) = left.split_whitespace().nth(4) else {
            continue;
        };
        for option in options.split(',') {
            let Some(&controller) = V1_CONTROLLERS.iter().find(|c| **c == option) else {
                continue;
            };
            // The first mount of a hierarchy wins (later ones are usually
            // bind mounts of the same thing).
            if !found.iter().any(|(c, _)| *c == controller) {
                found.push((controller, PathBuf::from(unescape_mountinfo(mount_point))));
            }
        }
    }
    found
}

/// mountinfo escapes space, tab, newline and backslash as `\ooo`.
fn unescape_mountinfo(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\' && i + 4 <= bytes.len() {
            let oct = std::str::from_utf8(&bytes[i + 1..i + 4]).unwrap_or("");
            if let Ok(b) = u8::from_str_radix(oct, 8) {
                out.push(b);
                i += 4;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Controllers of ours that the v2 root offers.
fn read_v2_controllers() -> Result<Vec<&'static str>, CgroupError> {
    let available = read_words(&Path::new(CGROUP_ROOT).join("cgroup.controllers"))?;
    Ok(V2_CONTROLLERS
        .into_iter()
        .filter(|c| available.iter().any(|a| a == c))
        .collect())
}

fn write_memsw(path: &Path, value: &str) -> Result<(), CgroupError> {
    match write_file_raw(path, value) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound || e.raw_os_error() == Some(libc::EINVAL) => {
            tracing::debug!(path = %path.display(), error = %e, "swap limit not applied");
            Ok(())
        }
        Err(e) => Err(io_error(path, format!("writing {value}: {}", errstr(&e)))),
    }
}

/// v1 cpuset: a child's cpus/mems start empty and must be a subset of the
/// parent's; copy the parent's so tasks can be attached.
fn copy_if_empty(from: &Path, to: &Path) -> Result<(), Retry> {
    let current = fs::read_to_string(to).map_err(|e| {
        let err = io_error(to, format!("reading: {}", errstr(&e)));
        if e.kind() == io::ErrorKind::NotFound {
            Retry::Vanished(err)
        } else {
            Retry::Fatal(err)
        }
    })?;
    if !current.trim().is_empty() {
        return Ok(());
    }
    let value = fs::read_to_string(from)
        .map_err(|e| Retry::Fatal(io_error(from, format!("reading: {}", errstr(&e)))))?;
    write_file_raw(to, value.trim()).map_err(|e| {
        let err = io_error(to, format!("writing {}: {}", value.trim(), errstr(&e)));
        if e.kind() == io::ErrorKind::NotFound {
            Retry::Vanished(err)
        } else {
            Retry::Fatal(err)
        }
    })
}

/// Writes a control file in a single write(2), without O_CREAT/O_TRUNC (a
/// missing file must be reported as missing, not "permission denied").
fn write_file_raw(path: &Path, value: &str) -> io::Result<()> {
    let mut file = OpenOptions::new().write(true).open(path)?;
    let n = file.write(value.as_bytes())?;
    if n != value.len() {
        return Err(io::Error::new(io::ErrorKind::WriteZero, "short write"));
    }
    Ok(())
}

fn write_file(path: &Path, value: &str) -> Result<(), CgroupError> {
    write_file_raw(path, value)
        .map_err(|e| io_error(path, format!("writing {value}: {}", errstr(&e))))
}

fn read_words(path: &Path) -> Result<Vec<String>, CgroupError> {
    let text =
        fs::read_to_string(path).map_err(|e| io_error(path, format!("reading: {}", errstr(&e))))?;
    Ok(text.split_whitespace().map(str::to_string).collect())
}

fn read_pids(path: &Path) -> Vec<i32> {
    fs::read_to_string(path)
        .map(|text| text.lines().filter_map(|l| l.trim().parse().ok()).collect())
        .unwrap_or_default()
}

/// Pids in `dir` and in any cgroups created below it.
fn collect_pids(dir: &Path, pids: &mut Vec<i32>) {
    pids.extend(read_pids(&dir.join("cgroup.procs")));
    for sub in subdirs(dir) {
        collect_pids(&sub, pids);
    }
}

/// Child cgroups (cgroupfs has only regular files and directories; symlinks
/// are not followed).
fn subdirs(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = fs::read_dir(dir) else {
        return Vec::new();
    };
    entries
        .filter_map(Result::ok)
        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
        .map(|e| e.path())
        .collect()
}

/// rmdir `dir` and the cgroups inside it, deepest first. Missing is fine.
/// (Control files need no unlinking: rmdir of a cgroup removes them.)
fn remove_tree(dir: &Path) -> Result<(), (PathBuf, io::Error)> {
    for sub in subdirs(dir) {
        remove_tree(&sub)?;
    }
    match fs::remove_dir(dir) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err((dir.to_path_buf(), e)),
    }
}

fn io_error(path: impl Into<PathBuf>, message: String) -> CgroupError {
    CgroupError::Io {
        path: path.into(),
        message,
    }
}

/// "Invalid argument" rather than "Invalid argument (os error 22)".
fn errstr(e: &io::Error) -> String {
    match e.raw_os_error() {
        Some(code) => Errno::from_raw(code).desc().to_string(),
        None => e.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::process::ExitStatusExt;
    use std::process::{Child, Command, Stdio};
    use std::sync::atomic::{AtomicUsize, Ordering};

    const TEST_PREFIX: &str = "mydocker-test";

    fn unique_name() -> String {
        static N: AtomicUsize = AtomicUsize::new(0);
        format!(
            "{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::SeqCst)
        )
    }

    /// Destroys the cgroup (and kills/reaps our child) even when the test
    /// panics. Built from `open` before `create`, so it covers a create that
    /// fails halfway too.
    struct Guard {
        cg: Cgroup,
        child: Option<Child>,
    }

    impl Guard {
        fn new(name: &str) -> Guard {
            Guard {
                cg: Cgroup::open(TEST_PREFIX, name),
                child: None,
            }
        }
    }

    impl Drop for Guard {
        fn drop(&mut self) {
            if let Some(child) = &mut self.child {
                // Only our own child, by pid.
                let _ = child.kill();
                let _ = child.wait();
            }
            if let Err(e) = self.cg.destroy() {
                eprintln!("test cleanup: {e}");
            }
            // The shared test parent, if no other test still uses it.
            for path in self.cg.paths() {
                if let Some(parent) = path.parent() {
                    let _ = fs::remove_dir(parent);
                }
            }
        }
    }

    fn read(path: &Path) -> String {
        fs::read_to_string(path)
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
            .trim()
            .to_string()
    }

    fn dir_of(cg: &Cgroup, controller: &str) -> PathBuf {
        cg.dirs
            .iter()
            .find(|d| d.has(controller))
            .unwrap_or_else(|| panic!("no {controller} dir"))
            .path
            .clone()
    }

    fn is_root() -> bool {
        use std::os::unix::fs::MetadataExt;
        // /proc/self is owned by our effective uid.
        fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0)
    }

    #[test]
    fn validates_names() {
        for (prefix, name) in [
            ("mydocker", ""),
            ("mydocker", "."),
            ("mydocker", ".."),
            ("mydocker", "a/b"),
            ("mydocker", "a b"),
            ("mydocker", "ü"),
            ("mydocker", &"x".repeat(129)),
            ("", "x"),
            ("/mydocker", "x"),
            ("mydocker/", "x"),
            ("a//b", "x"),
            ("a/../b", "x"),
            ("..", "x"),
            (".", "x"),
            (&"p".repeat(129), "x"),
        ] {
            assert!(
                matches!(validate(prefix, name), Err(CgroupError::InvalidName(_))),
                "{prefix:?} {name:?} accepted"
            );
        }
        for (prefix, name) in [
            ("mydocker", "abc-DEF_1.2"),
            ("a/b/c", "x"),
            ("mydocker", &"x".repeat(128)),
            ("my.docker", "..."),
        ] {
            validate(prefix, name).unwrap_or_else(|e| panic!("{prefix:?} {name:?}: {e}"));
        }
    }

    #[test]
    fn invalid_names_rejected_before_touching_filesystem() {
        let res = Resources {
            memory_bytes: Some(1 << 26),
            ..Default::default()
        };
        let bad = format!("{}-bad/..", unique_name());
        let err = Cgroup::create(TEST_PREFIX, &bad, &res).unwrap_err();
        assert!(
            matches!(err, CgroupError::InvalidName(ref n) if *n == bad),
            "{err}"
        );
        assert_eq!(err.to_string(), format!("invalid cgroup name '{bad}'"));
        // Nothing was created for the valid-looking part either.
        let first = bad.split('/').next().unwrap();
        for path in Cgroup::open(TEST_PREFIX, first).paths() {
            assert!(!path.exists(), "{} created", path.display());
        }
        // Neither the invalid prefix.
        let prefix = format!("mydocker-test-{}", unique_name());
        assert!(Cgroup::create(&format!("{prefix}//x"), "y", &res).is_err());
        for path in Cgroup::open(&prefix, "x").paths() {
            assert!(
                !path.parent().unwrap().exists(),
                "{} created",
                path.display()
            );
        }
        // And open() of an invalid name manages nothing.
        let cg = Cgroup::open("..", "x");
        assert!(cg.paths().is_empty());
        cg.destroy().unwrap();
    }

    #[test]
    fn parses_mountinfo() {
        let text = "\
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu,cpuacct rw,relatime shared:7 - cgroup cgroup rw,cpu,cpuacct
35 31 0:32 / /sys/fs/cgroup/mem\\040ory rw,relatime - cgroup cgroup rw,memory
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
99 31 0:32 / /elsewhere rw,relatime - cgroup cgroup rw,memory
";
        let mounts = parse_v1_mounts(text);
        assert_eq!(
            mounts,
            vec![
                ("cpu", PathBuf::from("/sys/fs/cgroup/cpu,cpuacct")),
                ("cpuacct", PathBuf::from("/sys/fs/cgroup/cpu,cpuacct")),
                ("memory", PathBuf::from("/sys/fs/cgroup/mem ory")),
            ]
        );
        let cg = Cgroup::locate_v1("a/b", "c", mounts);
        assert_eq!(
            cg.paths(),
            vec![
                PathBuf::from("/sys/fs/cgroup/cpu,cpuacct/a/b/c"),
                PathBuf::from("/sys/fs/cgroup/mem ory/a/b/c"),
            ]
        );
    }

    #[test]
    fn create_applies_resources_and_destroy_removes() {
        if !is_root() {
            eprintln!("skipped: needs root");
            return;
        }
        let name = unique_name();
        let guard = Guard::new(&name);
        let res = Resources {
            memory_bytes: Some(64 << 20),
            cpu_quota: Some(0.5),
            cpuset_cpus: Some("0".into()),
            pids_max: Some(42),
        };
        let cg = Cgroup::create(TEST_PREFIX, &name, &res).unwrap();
        assert_eq!(cg.paths(), guard.cg.paths());
        for path in cg.paths() {
            assert!(path.is_dir(), "{} missing", path.display());
        }
        match cg.version {
            Version::V1 => {
                let mem = dir_of(&cg, "memory");
                assert_eq!(
                    read(&mem.join("memory.limit_in_bytes")),
                    (64u64 << 20).to_string()
                );
                let memsw = mem.join("memory.memsw.limit_in_bytes");
                if memsw.exists() {
                    assert_eq!(read(&memsw), (64u64 << 20).to_string());
                }
                let cpu = dir_of(&cg, "cpu");
                assert_eq!(read(&cpu.join("cpu.cfs_period_us")), "100000");
                assert_eq!(read(&cpu.join("cpu.cfs_quota_us")), "50000");
                let cpuset = dir_of(&cg, "cpuset");
                assert_eq!(read(&cpuset.join("cpuset.cpus")), "0");
                assert!(!read(&cpuset.join("cpuset.mems")).is_empty());
                assert_eq!(read(&dir_of(&cg, "pids").join("pids.max")), "42");
                // cpuacct is its own hierarchy on this machine's layout.
                if cg.dirs.iter().any(|d| d.has("cpuacct") && !d.has("cpu")) {
                    assert!(dir_of(&cg, "cpuacct").is_dir());
                }
            }
            Version::V2 => {
                let dir = &cg.paths()[0];
                assert_eq!(read(&dir.join("memory.max")), (64u64 << 20).to_string());
                assert_eq!(read(&dir.join("cpu.max")), "50000 100000");
                assert_eq!(read(&dir.join("cpuset.cpus")), "0");
                assert_eq!(read(&dir.join("pids.max")), "42");
            }
        }
        // Idempotent.
        Cgroup::create(TEST_PREFIX, &name, &res).unwrap();
        assert!(!cg.oom_killed());
        assert!(cg.processes().is_empty());

        cg.destroy().unwrap();
        for path in cg.paths() {
            assert!(!path.exists(), "{} left behind", path.display());
        }
        drop(guard);
    }

    #[test]
    fn failed_create_leaves_nothing() {
        if !is_root() {
            eprintln!("skipped: needs root");
            return;
        }
        let name = unique_name();
        let guard = Guard::new(&name);
        let res = Resources {
            cpuset_cpus: Some("9999".into()),
            ..Default::default()
        };
        let err = Cgroup::create(TEST_PREFIX, &name, &res).unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("cpuset.cpus: writing 9999: "), "{msg}");
        for path in guard.cg.paths() {
            assert!(!path.exists(), "{} leaked", path.display());
        }
        let res = Resources {
            cpu_quota: Some(f64::NAN),
            ..Default::default()
        };
        let err = Cgroup::create(TEST_PREFIX, &name, &res).unwrap_err();
        assert!(err.to_string().contains("invalid CPU quota"), "{err}");
        for path in guard.cg.paths() {
            assert!(!path.exists(), "{} leaked", path.display());
        }
    }

    #[test]
    fn add_process_and_destroy_kills_it() {
        if !is_root() {
            eprintln!("skipped: needs root");
            return;
        }
        let name = unique_name();
        let mut guard = Guard::new(&name);
        let cg = Cgroup::create(TEST_PREFIX, &name, &Resources::default()).unwrap();
        let child = Command::new("sleep").arg("30").spawn().unwrap();
        let pid = child.id() as i32;
        guard.child = Some(child);

        assert!(cg.add_process(0).is_err());
        assert!(cg.add_process(-1).is_err());
        cg.add_process(pid).unwrap();
        assert_eq!(cg.processes(), vec![pid]);
        for path in cg.paths() {
            assert!(read_pids(&path.join("cgroup.procs")).contains(&pid));
        }

        cg.destroy().unwrap();
        let status = guard.child.as_mut().unwrap().wait().unwrap();
        assert_eq!(status.signal(), Some(libc::SIGKILL), "{status:?}");
        for path in cg.paths() {
            assert!(!path.exists(), "{} left behind", path.display());
        }
    }

    #[test]
    fn memory_limit_is_enforced() {
        if !is_root() {
            eprintln!("skipped: needs root");
            return;
        }
        let name = unique_name();
        let mut guard = Guard::new(&name);
        let res = Resources {
            memory_bytes: Some(32 << 20),
            ..Default::default()
        };
        let cg = Cgroup::create(TEST_PREFIX, &name, &res).unwrap();
        // The shell waits for a line on stdin so it is inside the cgroup
        // before it (and its children) allocate ~200 MB in a shell variable.
        let child = Command::new("/bin/sh")
            .arg("-c")
            .arg(r#"read _ && x=$(head -c 200000000 /dev/zero | tr '\0' a) && echo done"#)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let pid = child.id() as i32;
        guard.child = Some(child);
        cg.add_process(pid).unwrap();
        let child = guard.child.as_mut().unwrap();
        child.stdin.take().unwrap().write_all(b"go\n").unwrap();
        let status = child.wait().unwrap();
        let mut out = String::new();
        io::Read::read_to_string(child.stdout.as_mut().unwrap(), &mut out).unwrap();
        assert_eq!(
            status.signal(),
            Some(libc::SIGKILL),
            "{status:?}, stdout {out:?}"
        );
        assert!(!out.contains("done"));
        assert!(cg.oom_killed());
        cg.destroy().unwrap();
    }

    #[test]
    fn destroy_twice_is_ok() {
        if !is_root() {
            eprintln!("skipped: needs root");
            return;
        }
        let name = unique_name();
        let _guard = Guard::new(&name);
        let cg = Cgroup::create(TEST_PREFIX, &name, &Resources::default()).unwrap();
        cg.destroy().unwrap();
        cg.destroy().unwrap();
        // A never-created one, re-opened by name, too.
        Cgroup::open(TEST_PREFIX, &unique_name()).destroy().unwrap();
        assert!(!Cgroup::open(TEST_PREFIX, &name).oom_killed());
        assert!(Cgroup::open(TEST_PREFIX, &name).processes().is_empty());
    }
}
