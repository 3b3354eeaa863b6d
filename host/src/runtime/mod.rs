//! What mydocker manages: networks and their endpoints, with host-side IPAM.

pub mod container;
pub mod image;
pub mod ipam;
pub mod network;
pub mod spec;

use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use crate::driver::{DriverEngine, HostSys, Limits, Registry};
use crate::store;

pub use network::{
    ConnectRequest, CreateNetwork, EndpointRecord, NetworkError, NetworkRecord, PortMapping,
    Protocol,
};

/// Identifies the current boot. Tests simulate a reboot by overriding it
/// (debug builds only).
fn boot_id() -> String {
    #[cfg(debug_assertions)]
    if let Ok(id) = std::env::var("MYDOCKER_BOOT_ID") {
        return id;
    }
    std::fs::read_to_string("/proc/sys/kernel/random/boot_id")
        .map(|s| s.trim().to_string())
        .unwrap_or_default()
}

/// Default state root, like Docker's /var/lib/docker.
pub const DEFAULT_ROOT: &str = "/var/lib/mydocker";

/// An open state root: the entry point of the library.
pub struct Runtime {
    root: PathBuf,
    limits: Limits,
    sys: Arc<HostSys>,
    registry: OnceLock<Registry>,
}

impl Runtime {
    /// Opens (creating if needed, mode 0700) the state root.
    pub fn open(root: &Path) -> Result<Runtime, store::StoreError> {
        Self::open_with_limits(root, Limits::default())
    }

    pub fn open_with_limits(root: &Path, limits: Limits) -> Result<Runtime, store::StoreError> {
        store::ensure_private_dir(root)?;
        store::check_private(root)?;
        store::ensure_private_dir(&root.join("networks"))?;
        let rt = Runtime {
            root: root.to_path_buf(),
            limits,
            sys: HostSys::new(),
            registry: OnceLock::new(),
        };
        rt.notice_reboot()?;
        // A mydocker killed mid-operation left its journal behind: finish
        // undoing it before doing anything else.
        if std::fs::read_dir(root.join("journal")).is_ok_and(|mut d| d.next().is_some()) {
            for line in rt.recover_journals() {
                tracing::warn!("{line}");
            }
        }
        Ok(rt)
    }

    /// After a reboot every link, rule and process is gone but the state
    /// root is not: containers that were running are exited, their
    /// endpoints and addresses are released, pending journals are moot.
    /// Networks stay; their first use re-creates what the driver made.
    ///
    /// An unreadable boot id is never taken for a reboot: resetting a live
    /// machine's endpoints would hand their addresses out twice. The new
    /// boot id is recorded only once every network was reset, so a reset
    /// that could not finish (a network locked or unwritable) is retried by
    /// the next command.
    fn notice_reboot(&self) -> Result<(), store::StoreError> {
        let current = boot_id();
        if current.is_empty() {
            tracing::warn!("cannot read the boot id; not checking for a reboot");
            return Ok(());
        }
        let path = self.root.join("boot_id");
        let recorded = || std::fs::read_to_string(&path).unwrap_or_default();
        if recorded().trim() == current {
            return Ok(());
        }
        // Two commands started after a reboot must not both reset: the
        // second would forget what the first connected meanwhile. Decide
        // again under a lock.
        let _lock = store::Lock::exclusive(&self.root.join("boot.lock"))?;
        let recorded = recorded();
        if recorded.trim() == current {
            return Ok(());
        }
        if !recorded.is_empty() {
            tracing::warn!("the machine rebooted since the last run: releasing what died with it");
            let _ = std::fs::remove_dir_all(self.root.join("journal"));
            let reset = self.forget_endpoints_after_reboot();
            self.mark_containers_exited_after_reboot();
            if !reset {
                tracing::warn!(
                    "could not reset every network after the reboot; the next command retries"
                );
                return Ok(());
            }
        }
        store::write_atomic(&path, current.as_bytes())
    }

    /// The privileged handles (netlink, firewall), without the wasm engine.
    pub(crate) fn sys_handles(&self) -> Arc<HostSys> {
        self.sys.clone()
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The driver registry; the wasmtime engine is created on first use so
    /// read-only commands stay cheap.
    pub fn registry(&self) -> Result<&Registry, NetworkError> {
        if let Some(r) = self.registry.get() {
            return Ok(r);
        }
        let engine = DriverEngine::new(&self.root.join("cache"), self.limits)?;
        let registry = Registry::new(
            &self.root.join("drivers"),
            Arc::new(engine),
            self.sys.clone(),
        );
        Ok(self.registry.get_or_init(|| registry))
    }
}
