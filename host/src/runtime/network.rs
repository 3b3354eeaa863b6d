//! Networks and endpoints: create, list, inspect, remove, connect,
//! disconnect. IPAM is done here, on the host; drivers only receive the
//! addresses.
//!
//! On disk, under `<root>/networks/<name>/`:
//! `network.json` (the record), `ipam.json` (allocated addresses),
//! `endpoints/<container-id>.json`, and `lock` (per-network flock).
//! `<root>/networks.lock` serializes creation and removal, which must see
//! every network at once (names, overlapping subnets).

use std::collections::BTreeSet;
use std::net::Ipv4Addr;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use ipnet::Ipv4Net;
use serde::{Deserialize, Serialize};

use super::ipam::{self, IpamError, Pool};
use super::Runtime;
use crate::driver::bindings::{from_cidr, from_ipv4, wit};
use crate::driver::host_impl::{apply_kernel_undo, fault_point, PeerSource};
use crate::driver::journal::{self, Journal, OperationKind, Undo};
use crate::driver::{
    CallContext, ContainerNs, Driver, DriverCallError, DriverSource, RegistryError, Scope,
};
use crate::store::{self, Lock, StoreError};
use crate::sys::firewall::Rule;

/// Names reserved by `--net` for special modes.
const RESERVED_NAMES: &[&str] = &["none", "host", "bridge-default"];
const RECORD_VERSION: u32 = 1;

#[derive(Debug, thiserror::Error)]
pub enum NetworkError {
    #[error("invalid network name '{name}': {reason}")]
    InvalidName { name: String, reason: &'static str },
    #[error("network {0} already exists")]
    Exists(String),
    #[error("subnet {subnet} overlaps network {other} ({other_subnet}); choose a subnet that does not overlap")]
    Overlap {
        subnet: Ipv4Net,
        other: String,
        other_subnet: Ipv4Net,
    },
    #[error("network {0} not found (see `mydocker network list`)")]
    NotFound(String),
    #[error("network {name} still has {count} endpoint(s) ({containers}); stop or disconnect them first")]
    HasEndpoints {
        name: String,
        count: usize,
        containers: String,
    },
    #[error("container {container} is already connected to network {network}")]
    AlreadyConnected { network: String, container: String },
    #[error("container {container} is not connected to network {network}")]
    NotConnected { network: String, container: String },
    #[error("invalid option '{0}': expected key=value")]
    InvalidOption(String),
    #[error("invalid container id '{0}': expected 1-64 characters of 0-9 a-f")]
    InvalidContainerId(String),
    #[error("network {network}: {error}")]
    Ipam { network: String, error: IpamError },
    #[error(transparent)]
    Subnet(#[from] IpamError),
    #[error(transparent)]
    Registry(#[from] RegistryError),
    #[error(transparent)]
    Driver(#[from] DriverCallError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("network {network} was created with driver {driver} sha256 {recorded}…, but the installed {driver} is {actual}…; reinstall the driver it was created with")]
    DriverChanged {
        network: String,
        driver: String,
        recorded: String,
        actual: String,
    },
    #[error("{0}")]
    Sys(String),
}

type Result<T> = std::result::Result<T, NetworkError>;

/// The driver a network was created with.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DriverRef {
    pub name: String,
    pub version: String,
    pub sha256: String,
}

/// A network as stored in `network.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NetworkRecord {
    pub version: u32,
    pub id: String,
    pub name: String,
    pub driver: DriverRef,
    pub subnet: Ipv4Net,
    pub gateway: Ipv4Addr,
    pub options: Vec<(String, String)>,
    pub driver_data: Vec<(String, String)>,
    /// Seconds since the Unix epoch.
    pub created: u64,
    /// Host links the driver created for this network: the only ones it
    /// may change later (besides those of each endpoint).
    #[serde(default)]
    pub owned_links: Vec<String>,
    /// Firewall rules added for this network (for garbage collection).
    #[serde(default)]
    pub owned_rules: Vec<Rule>,
}

impl NetworkRecord {
    /// The bridge (or other host link) the driver reported, if any.
    pub fn bridge(&self) -> Option<&str> {
        self.driver_data
            .iter()
            .find(|(k, _)| k == "bridge")
            .map(|(_, v)| v.as_str())
    }

    fn to_wit(&self) -> wit::NetworkConfig {
        wit::NetworkConfig {
            id: self.id.clone(),
            name: self.name.clone(),
            subnet: from_cidr(self.subnet.network(), self.subnet.prefix_len()),
            gateway: from_ipv4(self.gateway),
            options: kv_to_wit(&self.options),
            driver_data: kv_to_wit(&self.driver_data),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    Tcp,
    Udp,
}

impl std::fmt::Display for Protocol {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Protocol::Tcp => "tcp",
            Protocol::Udp => "udp",
        })
    }
}

/// `-p [HOST-IP:]HOST-PORT:CONTAINER-PORT[/PROTOCOL]`
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct PortMapping {
    pub host_ip: Option<Ipv4Addr>,
    pub host_port: u16,
    pub container_port: u16,
    pub protocol: Protocol,
}

impl PortMapping {
    fn to_wit(self) -> wit::PortMapping {
        wit::PortMapping {
            host_ip: self.host_ip.map(from_ipv4),
            host_port: self.host_port,
            container_port: self.container_port,
            protocol: match self.protocol {
                Protocol::Tcp => wit::Protocol::Tcp,
                Protocol::Udp => wit::Protocol::Udp,
            },
        }
    }
}

impl std::fmt::Display for PortMapping {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.host_ip {
            Some(ip) => write!(f, "{ip}:")?,
            None => f.write_str("0.0.0.0:")?,
        }
        write!(
            f,
            "{}->{}/{}",
            self.host_port, self.container_port, self.protocol
        )
    }
}

/// One container's membership of one network, as stored on disk.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EndpointRecord {
    pub container_id: String,
    pub network: String,
    /// Interface name inside the container ("eth0").
    pub interface: String,
    pub address: Ipv4Addr,
    pub prefix_len: u8,
    pub gateway: Ipv4Addr,
    pub mac: String,
    pub host_interface: Option<String>,
    pub port_mappings: Vec<PortMapping>,
    pub driver_data: Vec<(String, String)>,
    /// Links the driver created for this endpoint, as (in the container?,
    /// name): the only ones, with the network's, it may change at disconnect.
    #[serde(default)]
    pub owned_links: Vec<(bool, String)>,
    /// Firewall rules added for this endpoint (for garbage collection).
    #[serde(default)]
    pub owned_rules: Vec<Rule>,
}

/// Most items a driver may hand back as data, and their size: the host
/// stores them, so a driver must not make the state grow without bound.
const MAX_DRIVER_DATA_ITEMS: usize = 64;
const MAX_DRIVER_DATA_BYTES: usize = 4096;

fn check_driver_data(driver: &str, data: &[wit::KeyValue]) -> Result<()> {
    let too_big = data.len() > MAX_DRIVER_DATA_ITEMS
        || data
            .iter()
            .any(|kv| kv.key.len() + kv.value.len() > MAX_DRIVER_DATA_BYTES);
    if too_big {
        return Err(NetworkError::Driver(DriverCallError::Driver {
            driver: driver.to_string(),
            error: wit::DriverError::Denied(format!(
                "returned more data than the host keeps (at most {MAX_DRIVER_DATA_ITEMS} items of {MAX_DRIVER_DATA_BYTES} bytes)"
            )),
            rollback_failures: Vec::new(),
        }));
    }
    Ok(())
}

/// `network create` input, as the user typed it.
#[derive(Debug, Clone, Default)]
pub struct CreateNetwork {
    pub name: String,
    pub driver: String,
    pub subnet: String,
    pub gateway: Option<String>,
    /// `key=value` strings.
    pub options: Vec<String>,
}

/// What `connect` needs.
pub struct ConnectRequest<'a> {
    pub network: &'a str,
    pub container_id: &'a str,
    /// The container's network namespace (`/proc/PID/ns/net`, or a
    /// bind-mounted nsfs file).
    pub netns: OwnedFd,
    pub port_mappings: &'a [PortMapping],
}

fn kv_to_wit(pairs: &[(String, String)]) -> Vec<wit::KeyValue> {
    pairs
        .iter()
        .map(|(k, v)| wit::KeyValue {
            key: k.clone(),
            value: v.clone(),
        })
        .collect()
}

fn kv_from_wit(pairs: Vec<wit::KeyValue>) -> Vec<(String, String)> {
    pairs.into_iter().map(|kv| (kv.key, kv.value)).collect()
}

/// Why a network name is unusable: it becomes a directory name and a JSON
/// key, and may become a bridge name.
pub fn network_name_problem(name: &str) -> Option<&'static str> {
    if name.is_empty() {
        return Some("it is empty");
    }
    if name.len() > 64 {
        return Some("it is longer than 64 characters");
    }
    let first = name.as_bytes()[0];
    if !first.is_ascii_alphanumeric() {
        return Some("it must start with a letter or digit");
    }
    if !name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.')
    {
        return Some("only ASCII letters, digits, '-', '_' and '.' are allowed");
    }
    if RESERVED_NAMES.contains(&name) {
        return Some("the name is reserved");
    }
    None
}

fn check_name(name: &str) -> Result<()> {
    match network_name_problem(name) {
        Some(reason) => Err(NetworkError::InvalidName {
            name: name.to_string(),
            reason,
        }),
        None => Ok(()),
    }
}

fn check_container_id(id: &str) -> Result<()> {
    if id.is_empty() || id.len() > 64 || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(NetworkError::InvalidContainerId(id.to_string()));
    }
    Ok(())
}

fn parse_options(raw: &[String]) -> Result<Vec<(String, String)>> {
    raw.iter()
        .map(|o| match o.split_once('=') {
            Some((k, v)) if !k.is_empty() && !k.contains(char::is_whitespace) => {
                Ok((k.to_string(), v.to_string()))
            }
            _ => Err(NetworkError::InvalidOption(o.clone())),
        })
        .collect()
}

fn random_id() -> Result<String> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|e| NetworkError::Sys(format!("no randomness: {e}")))?;
    Ok(hex::encode(bytes))
}

fn now_unix() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

impl Runtime {
    fn networks_dir(&self) -> PathBuf {
        self.root().join("networks")
    }

    fn network_dir(&self, name: &str) -> PathBuf {
        self.networks_dir().join(name)
    }

    fn global_lock(&self) -> Result<Lock> {
        Ok(Lock::exclusive(&self.root().join("networks.lock"))?)
    }

    fn network_lock(&self, name: &str) -> Result<Lock> {
        Ok(Lock::exclusive(&self.network_dir(name).join("lock"))?)
    }

    /// Loads one network's record.
    pub fn network(&self, name: &str) -> Result<NetworkRecord> {
        check_name(name).map_err(|_| NetworkError::NotFound(name.to_string()))?;
        let path = self.network_dir(name).join("network.json");
        let record: NetworkRecord =
            store::read_json(&path)?.ok_or_else(|| NetworkError::NotFound(name.to_string()))?;
        if record.version > RECORD_VERSION {
            return Err(StoreError::Corrupt {
                path,
                reason: format!(
                    "it was written by a newer mydocker (format {}, this one reads {RECORD_VERSION})",
                    record.version
                ),
            }
            .into());
        }
        Ok(record)
    }

    /// After a reboot: every endpoint died with its namespace; give all
    /// addresses back (the network records themselves stay). Returns whether
    /// every network was reset.
    pub(crate) fn forget_endpoints_after_reboot(&self) -> bool {
        let Ok(networks) = self.networks() else {
            return false;
        };
        let mut all = true;
        for net in networks {
            let Ok(_lock) = self.network_lock(&net.name) else {
                all = false;
                continue;
            };
            // Every endpoint died with the boot, so the pool starts empty.
            // Built afresh rather than by releasing addresses: these files
            // are not flushed (see `save_pool`), so a power loss may have
            // left them damaged.
            let dir = self.network_dir(&net.name).join("endpoints");
            for e in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
                all &= store::remove_file_for_this_boot(&e.path()).is_ok();
            }
            all &= Pool::new(net.subnet, Some(net.gateway))
                .map_err(NetworkError::from)
                .and_then(|pool| self.save_pool(&net.name, &pool))
                .is_ok();
        }
        all
    }

    /// Re-creates what the driver made for a network if it is gone (after a
    /// reboot, or removed by hand): the first use of a network brings it
    /// back.
    fn ensure_network_ready(
        &self,
        record: NetworkRecord,
        driver: &Driver,
    ) -> Result<NetworkRecord> {
        if record.owned_links.is_empty() {
            return Ok(record);
        }
        let nl = self.sys_handles();
        let nl = nl.netlink().map_err(NetworkError::Sys)?;
        let mut missing = false;
        for link in &record.owned_links {
            if nl
                .link(link)
                .map_err(|e| NetworkError::Sys(e.to_string()))?
                .is_none()
            {
                missing = true;
            }
        }
        if !missing {
            return Ok(record);
        }
        tracing::warn!(network = %record.name, "re-creating the network's links and rules");
        // Whatever is left of it goes first, so the driver starts clean.
        let _ = self.call_delete_network(driver, &record);
        let mut fresh = record.clone();
        fresh.driver_data.clear();
        fresh.owned_links.clear();
        let ctx = self.call_context(
            driver,
            &record.name,
            Scope::Network {
                subnet: record.subnet,
            },
        )?;
        let journal = self.begin_journal(OperationKind::CreateNetwork, &record.name, None)?;
        let config = fresh.to_wit();
        let outcome = self.registry()?.engine().call_keep(
            &driver.component,
            ctx.with_journal(journal.clone()),
            |d, s| d.mydocker_network_driver().call_create_network(s, &config),
            |ctx| (ctx.created.clone(), ctx.created_rules.clone()),
        );
        let (data, (created, rules)) = match outcome {
            Ok(v) => v,
            Err(e) => {
                finish_journal(journal);
                return Err(e.into());
            }
        };
        fresh.driver_data = kv_from_wit(data);
        fresh.owned_links = created
            .into_iter()
            .filter(|(c, _)| !c)
            .map(|(_, n)| n)
            .collect();
        fresh.owned_rules = rules;
        let saved = store::write_json(&self.network_dir(&record.name).join("network.json"), &fresh);
        finish_journal(journal);
        saved?;
        Ok(fresh)
    }

    /// All networks, sorted by name.
    pub fn networks(&self) -> Result<Vec<NetworkRecord>> {
        read_networks(&self.networks_dir())
    }

    /// Endpoints of a network, sorted by container id.
    pub fn endpoints(&self, network: &str) -> Result<Vec<EndpointRecord>> {
        let dir = self.network_dir(network).join("endpoints");
        let entries = match std::fs::read_dir(&dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(StoreError::io(&dir, e).into()),
        };
        let mut paths: Vec<PathBuf> = entries
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "json"))
            .collect();
        paths.sort();
        let mut out = Vec::new();
        for p in paths {
            if let Some(rec) = store::read_json(&p)? {
                out.push(rec);
            }
        }
        Ok(out)
    }

    fn load_pool(&self, network: &NetworkRecord) -> Result<Pool> {
        let path = self.network_dir(&network.name).join("ipam.json");
        match store::read_json::<Pool>(&path)? {
            // A pool for another subnet would hand out addresses the
            // network's bridge and routes do not cover.
            Some(pool) if pool.subnet() != network.subnet || pool.gateway() != network.gateway => {
                Err(StoreError::Corrupt {
                    path,
                    reason: format!(
                        "it is for {} via {}, but the network is {} via {}",
                        pool.subnet(),
                        pool.gateway(),
                        network.subnet,
                        network.gateway
                    ),
                }
                .into())
            }
            Some(pool) => Ok(pool),
            None => Err(StoreError::Corrupt {
                path,
                reason: "the file is missing".into(),
            }
            .into()),
        }
    }

    /// Allocations live as long as the boot (a reboot resets them, see
    /// `forget_endpoints_after_reboot`), so the pool is written atomically
    /// but not flushed; compact, as a fragmented pool is a bitmap of up to
    /// a few MB.
    fn save_pool(&self, network: &str, pool: &Pool) -> Result<()> {
        Ok(store::write_json_for_this_boot(
            &self.network_dir(network).join("ipam.json"),
            pool,
        )?)
    }

    /// The driver a network was created with — the same code, or an error
    /// saying it changed. Built-in drivers change with the mydocker binary
    /// and are trusted to keep their networks working.
    fn driver_for(&self, network: &NetworkRecord) -> Result<Driver> {
        let driver = self.registry()?.get(&network.driver.name)?;
        if driver.sha256 != network.driver.sha256 && driver.source != DriverSource::Builtin {
            return Err(NetworkError::DriverChanged {
                network: network.name.clone(),
                driver: network.driver.name.clone(),
                recorded: network.driver.sha256[..12.min(network.driver.sha256.len())].to_string(),
                actual: driver.sha256[..12].to_string(),
            });
        }
        Ok(driver)
    }

    /// The context of one driver call. `network` is the network the call is
    /// about; every other network of the same driver is visible read-only.
    fn call_context(&self, driver: &Driver, network: &str, scope: Scope) -> Result<CallContext> {
        self.call_context_owning(driver, network, scope, Vec::new())
    }

    fn call_context_owning(
        &self,
        driver: &Driver,
        network: &str,
        scope: Scope,
        owned: Vec<(bool, String)>,
    ) -> Result<CallContext> {
        let dir = self.networks_dir();
        let (driver_name, network) = (driver.name().to_string(), network.to_string());
        let peers: PeerSource = Box::new(move || {
            Ok(read_networks(&dir)
                .map_err(|e| e.to_string())?
                .into_iter()
                .filter(|n| n.driver.name == driver_name && n.name != network)
                .map(|n| n.to_wit())
                .collect())
        });
        Ok(CallContext::new(
            driver.name(),
            driver.granted.clone(),
            self.registry()?.sys().clone(),
            scope,
        )
        .with_peers(peers)
        .with_owned(owned))
    }

    fn journal_dir(&self) -> PathBuf {
        self.root().join("journal")
    }

    fn begin_journal(
        &self,
        kind: OperationKind,
        network: &str,
        container: Option<&str>,
    ) -> Result<Arc<Mutex<Journal>>> {
        let dir = self.journal_dir();
        let mut j = Journal::begin(&dir).map_err(|e| StoreError::io(&dir, e))?;
        j.record(&Undo::Operation {
            kind,
            network: network.to_string(),
            container: container.map(str::to_string),
        })
        .map_err(|e| StoreError::io(&dir, e))?;
        Ok(Arc::new(Mutex::new(j)))
    }

    /// Finishes what processes that died mid-operation left: every journal
    /// nobody holds is either a finished operation (its record exists:
    /// just forget it) or an interrupted one (undo it, newest first).
    /// Returns a line per journal handled.
    pub fn recover_journals(&self) -> Vec<String> {
        let mut report = Vec::new();
        for orphan in journal::orphans(&self.journal_dir()) {
            let finished = match orphan.steps.first() {
                Some(Undo::Operation {
                    kind: OperationKind::CreateNetwork,
                    network,
                    ..
                }) => self.network(network).is_ok(),
                Some(Undo::Operation {
                    kind: OperationKind::Connect,
                    network,
                    container,
                }) => container
                    .as_deref()
                    .is_some_and(|c| self.endpoint_path(network, c).is_file()),
                _ => false,
            };
            if !finished {
                let sys = self.sys_handles();
                for step in orphan.steps.iter().rev() {
                    let outcome = match step {
                        Undo::ReleaseAddress { network, address } => {
                            self.release_address(network, *address)
                        }
                        other => apply_kernel_undo(&sys, None, other),
                    };
                    if let Err(e) = outcome {
                        tracing::warn!("recovery of {}: {e}", orphan.path.display());
                    }
                }
                report.push(format!(
                    "rolled back an interrupted operation ({} changes)",
                    orphan.steps.len().saturating_sub(1)
                ));
            }
            orphan.done();
        }
        report
    }

    fn release_address(&self, network: &str, address: Ipv4Addr) -> std::result::Result<(), String> {
        let Ok(record) = self.network(network) else {
            return Ok(());
        };
        let _lock = self.network_lock(network).map_err(|e| e.to_string())?;
        let mut pool = self.load_pool(&record).map_err(|e| e.to_string())?;
        if pool.release(address) {
            self.save_pool(network, &pool).map_err(|e| e.to_string())?;
        }
        Ok(())
    }

    pub(crate) fn endpoint_path(&self, network: &str, container: &str) -> PathBuf {
        self.network_dir(network)
            .join("endpoints")
            .join(format!("{container}.json"))
    }

    /// `mydocker network create`.
    pub fn create_network(&self, req: &CreateNetwork) -> Result<NetworkRecord> {
        self.create_network_inner(req, false).map(|(r, _)| r)
    }

    /// `network create --dry-run`: validates everything and runs the
    /// driver against a recording host; returns what it would do. Nothing
    /// is changed.
    pub fn plan_network(&self, req: &CreateNetwork) -> Result<Vec<String>> {
        self.create_network_inner(req, true).map(|(_, plan)| plan)
    }

    fn create_network_inner(
        &self,
        req: &CreateNetwork,
        dry_run: bool,
    ) -> Result<(NetworkRecord, Vec<String>)> {
        check_name(&req.name)?;
        let subnet = ipam::parse_subnet(&req.subnet)?;
        let gateway = req
            .gateway
            .as_deref()
            .map(ipam::parse_gateway)
            .transpose()?;
        let pool = Pool::new(subnet, gateway)?;
        let options = parse_options(&req.options)?;
        let driver = if dry_run {
            // A dry run must not even register a driver named by its file.
            self.registry()?.resolve_without_install(&req.driver)?
        } else {
            self.registry()?.resolve(&req.driver)?
        };

        let _lock = self.global_lock()?;
        let existing = self.networks()?;
        if existing.iter().any(|n| n.name == req.name) || self.network_dir(&req.name).exists() {
            return Err(NetworkError::Exists(req.name.clone()));
        }
        if let Some(other) = existing
            .iter()
            .find(|n| n.subnet.contains(&subnet.network()) || subnet.contains(&n.subnet.network()))
        {
            return Err(NetworkError::Overlap {
                subnet,
                other: other.name.clone(),
                other_subnet: other.subnet,
            });
        }

        let mut record = NetworkRecord {
            version: RECORD_VERSION,
            id: random_id()?,
            name: req.name.clone(),
            driver: DriverRef {
                name: driver.name().to_string(),
                version: driver.info.version.clone(),
                sha256: driver.sha256.clone(),
            },
            subnet,
            gateway: pool.gateway(),
            options,
            driver_data: Vec::new(),
            created: now_unix(),
            owned_links: Vec::new(),
            owned_rules: Vec::new(),
        };
        let ctx = self.call_context(&driver, &record.name, Scope::Network { subnet })?;
        let config = record.to_wit();
        if dry_run {
            let (_, plan) = self.registry()?.engine().call_keep(
                &driver.component,
                ctx.dry_run(),
                |d, s| d.mydocker_network_driver().call_create_network(s, &config),
                |ctx| ctx.planned.clone(),
            )?;
            return Ok((record, plan));
        }
        let journal = self.begin_journal(OperationKind::CreateNetwork, &req.name, None)?;
        let outcome = self.registry()?.engine().call_keep(
            &driver.component,
            ctx.with_journal(journal.clone()),
            |d, s| d.mydocker_network_driver().call_create_network(s, &config),
            |ctx| (ctx.created.clone(), ctx.created_rules.clone()),
        );
        let finish = finish_journal;
        let (data, (created, rules)) = match outcome {
            Ok(v) => v,
            Err(e) => {
                finish(journal);
                return Err(e.into());
            }
        };
        record.owned_links = created
            .into_iter()
            .filter(|(in_container, _)| !in_container)
            .map(|(_, name)| name)
            .collect();
        record.owned_rules = rules;
        let persisted = check_driver_data(driver.name(), &data).and_then(|()| {
            record.driver_data = kv_from_wit(data);
            fault_point("create-network-before-record", 1);
            let dir = self.network_dir(&req.name);
            store::ensure_private_dir(&dir.join("endpoints"))?;
            self.save_pool(&req.name, &pool)?;
            store::write_json(&dir.join("network.json"), &record)?;
            Ok(())
        });
        if let Err(e) = persisted {
            // Without a record nobody could remove what the driver made.
            let _ = self.call_delete_network(&driver, &record);
            let _ = std::fs::remove_dir_all(self.network_dir(&req.name));
            finish(journal);
            return Err(e);
        }
        finish(journal);
        Ok((record, Vec::new()))
    }

    fn call_delete_network(&self, driver: &Driver, record: &NetworkRecord) -> Result<()> {
        let ctx = self.call_context_owning(
            driver,
            &record.name,
            Scope::Network {
                subnet: record.subnet,
            },
            record
                .owned_links
                .iter()
                .map(|n| (false, n.clone()))
                .collect(),
        )?;
        let config = record.to_wit();
        self.registry()?
            .engine()
            .call(&driver.component, ctx, |d, s| {
                d.mydocker_network_driver().call_delete_network(s, &config)
            })?;
        Ok(())
    }

    /// `mydocker network remove`: refused while endpoints remain.
    pub fn remove_network(&self, name: &str) -> Result<()> {
        let _global = self.global_lock()?;
        let record = self.network(name)?;
        let _lock = self.network_lock(name)?;
        let endpoints = self.endpoints(name)?;
        if !endpoints.is_empty() {
            let containers: Vec<&str> = endpoints
                .iter()
                .map(|e| &e.container_id[..e.container_id.len().min(12)])
                .collect();
            return Err(NetworkError::HasEndpoints {
                name: name.to_string(),
                count: endpoints.len(),
                containers: containers.join(", "),
            });
        }
        let driver = self.driver_for(&record)?;
        self.call_delete_network(&driver, &record)?;
        fault_point("remove-network-after-driver", 1);
        remove_network_dir(&self.network_dir(name))?;
        if self.networks()?.is_empty() {
            self.remove_empty_firewall_chains();
        }
        Ok(())
    }

    /// Drops our (empty) firewall chains and their jumps once nothing uses
    /// them, so a host without networks carries no trace of mydocker. Chains
    /// still holding rules (another state root in the same namespace) stay.
    fn remove_empty_firewall_chains(&self) {
        let Ok(registry) = self.registry() else {
            return;
        };
        let Ok(fw) = registry.sys().firewall() else {
            return;
        };
        match fw.list_ours() {
            Ok(rules) if rules.is_empty() => {
                if let Err(e) = fw.remove_chains() {
                    tracing::warn!("cannot remove empty firewall chains: {e}");
                }
            }
            Ok(_) => {}
            Err(e) => tracing::warn!("cannot list firewall rules: {e}"),
        }
    }

    /// Joins a container (any network namespace) to a network: allocates
    /// its address, runs the driver's `connect`, and records the endpoint.
    /// On any failure the address is released and the driver's changes are
    /// rolled back.
    pub fn connect(&self, req: ConnectRequest<'_>) -> Result<EndpointRecord> {
        check_container_id(req.container_id)?;
        let record = self.network(req.network)?;
        let _lock = self.network_lock(req.network)?;
        // Re-read under the lock: the network may have been removed meanwhile.
        let record = match self.network(req.network) {
            Ok(r) => r,
            Err(_) => return Err(NetworkError::NotFound(record.name)),
        };
        let endpoint_path = self.endpoint_path(req.network, req.container_id);
        if endpoint_path.exists() {
            return Err(NetworkError::AlreadyConnected {
                network: req.network.to_string(),
                container: req.container_id.to_string(),
            });
        }
        let driver = self.driver_for(&record)?;
        let record = self.ensure_network_ready(record, &driver)?;
        let container =
            ContainerNs::open(req.netns).map_err(|e| NetworkError::Sys(e.to_string()))?;
        let interface = free_interface_name(&container)?;

        let mut pool = self.load_pool(&record)?;
        let address = pool.allocate().map_err(|error| NetworkError::Ipam {
            network: record.name.clone(),
            error,
        })?;
        // The journal learns about the address before the pool file does, so
        // a crash from here on never leaks it.
        let journal =
            self.begin_journal(OperationKind::Connect, &record.name, Some(req.container_id))?;
        let finish = finish_journal;
        let journaled = journal
            .lock()
            .map_err(|_| NetworkError::Sys("journal poisoned".into()))
            .and_then(|mut j| {
                j.record(&Undo::ReleaseAddress {
                    network: record.name.clone(),
                    address,
                })
                .map_err(|e| StoreError::io(self.journal_dir(), e).into())
            });
        if let Err(e) = journaled.and_then(|()| self.save_pool(&record.name, &pool)) {
            finish(journal);
            return Err(e);
        }
        let release = |pool: &mut Pool| {
            pool.release(address);
            let _ = self.save_pool(&record.name, pool);
        };

        let config = wit::EndpointConfig {
            network: record.to_wit(),
            container_id: req.container_id.to_string(),
            interface_name: interface.clone(),
            address: from_cidr(address, record.subnet.prefix_len()),
            gateway: from_ipv4(record.gateway),
            port_mappings: req.port_mappings.iter().map(|p| p.to_wit()).collect(),
            driver_data: Vec::new(),
        };
        let ctx = match self.call_context_owning(
            &driver,
            &record.name,
            Scope::Endpoint {
                subnet: record.subnet,
                address,
                container: Some(container),
            },
            record
                .owned_links
                .iter()
                .map(|n| (false, n.clone()))
                .collect(),
        ) {
            Ok(c) => c.with_journal(journal.clone()),
            Err(e) => {
                release(&mut pool);
                finish(journal);
                return Err(e);
            }
        };
        let outcome = self.registry()?.engine().call_keep(
            &driver.component,
            ctx,
            |d, s| d.mydocker_network_driver().call_connect(s, &config),
            |ctx| {
                (
                    container_mac(ctx, &interface),
                    ctx.created.clone(),
                    ctx.created_rules.clone(),
                )
            },
        );
        let (info, (mac, created, rules)) = match outcome {
            Ok(v) => v,
            Err(e) => {
                release(&mut pool);
                finish(journal);
                return Err(e.into());
            }
        };
        let endpoint = EndpointRecord {
            container_id: req.container_id.to_string(),
            network: record.name.clone(),
            interface,
            address,
            prefix_len: record.subnet.prefix_len(),
            gateway: record.gateway,
            mac,
            host_interface: info.host_interface.clone(),
            port_mappings: req.port_mappings.to_vec(),
            driver_data: kv_from_wit(info.driver_data.clone()),
            owned_links: created,
            owned_rules: rules,
        };
        fault_point("connect-before-record", 1);
        let recorded = check_driver_data(driver.name(), &info.driver_data)
            .and_then(|()| Ok(store::write_json_for_this_boot(&endpoint_path, &endpoint)?));
        if let Err(e) = recorded {
            let _ = self.call_disconnect(&driver, &record, &endpoint, None);
            release(&mut pool);
            finish(journal);
            return Err(e);
        }
        finish(journal);
        Ok(endpoint)
    }

    fn call_disconnect(
        &self,
        driver: &Driver,
        record: &NetworkRecord,
        endpoint: &EndpointRecord,
        netns: Option<OwnedFd>,
    ) -> Result<()> {
        let container = match netns {
            Some(fd) => Some(ContainerNs::open(fd).map_err(|e| NetworkError::Sys(e.to_string()))?),
            None => None,
        };
        let owned = record
            .owned_links
            .iter()
            .map(|n| (false, n.clone()))
            .chain(endpoint.owned_links.iter().cloned())
            .collect();
        let ctx = self.call_context_owning(
            driver,
            &record.name,
            Scope::Endpoint {
                subnet: record.subnet,
                address: endpoint.address,
                container,
            },
            owned,
        )?;
        let config = wit::EndpointConfig {
            network: record.to_wit(),
            container_id: endpoint.container_id.clone(),
            interface_name: endpoint.interface.clone(),
            address: from_cidr(endpoint.address, endpoint.prefix_len),
            gateway: from_ipv4(endpoint.gateway),
            port_mappings: endpoint.port_mappings.iter().map(|p| p.to_wit()).collect(),
            driver_data: kv_to_wit(&endpoint.driver_data),
        };
        self.registry()?
            .engine()
            .call(&driver.component, ctx, |d, s| {
                d.mydocker_network_driver().call_disconnect(s, &config)
            })?;
        Ok(())
    }

    /// Undoes `connect`: the driver's `disconnect`, then the address goes
    /// back to the pool and the endpoint record is removed. `netns` may be
    /// `None` when the container's namespace is already gone.
    pub fn disconnect(
        &self,
        network: &str,
        container_id: &str,
        netns: Option<OwnedFd>,
    ) -> Result<()> {
        check_container_id(container_id)?;
        let record = self.network(network)?;
        let _lock = self.network_lock(network)?;
        let endpoint_path = self
            .network_dir(network)
            .join("endpoints")
            .join(format!("{container_id}.json"));
        let Some(endpoint) = store::read_json::<EndpointRecord>(&endpoint_path)? else {
            return Err(NetworkError::NotConnected {
                network: network.to_string(),
                container: container_id.to_string(),
            });
        };
        let driver = self.driver_for(&record)?;
        self.call_disconnect(&driver, &record, &endpoint, netns)?;
        fault_point("disconnect-after-driver", 1);
        let mut pool = self.load_pool(&record)?;
        pool.release(endpoint.address);
        self.save_pool(network, &pool)?;
        store::remove_file_for_this_boot(&endpoint_path)?;
        Ok(())
    }

    /// Addresses currently allocated in a network.
    pub fn allocated_addresses(&self, network: &str) -> Result<Vec<Ipv4Addr>> {
        let record = self.network(network)?;
        Ok(self.load_pool(&record)?.allocated())
    }

    /// Drivers used by existing networks (name → networks).
    pub fn networks_using_driver(&self, driver: &str) -> Result<BTreeSet<String>> {
        Ok(self
            .networks()?
            .into_iter()
            .filter(|n| n.driver.name == driver)
            .map(|n| n.name)
            .collect())
    }
}

/// Every network recorded under `dir`, sorted by name.
fn read_networks(dir: &Path) -> Result<Vec<NetworkRecord>> {
    let entries = std::fs::read_dir(dir).map_err(|e| StoreError::io(dir, e))?;
    let mut names: Vec<String> = entries
        .flatten()
        .filter(|e| e.path().is_dir())
        .filter_map(|e| e.file_name().into_string().ok())
        .filter(|n| network_name_problem(n).is_none())
        .collect();
    names.sort();
    let mut out = Vec::new();
    for name in names {
        // A directory without network.json is a creation that never
        // finished; it is not a network.
        if let Some(rec) = store::read_json(&dir.join(&name).join("network.json"))? {
            out.push(rec);
        }
    }
    Ok(out)
}

/// Ends an operation's journal once nothing else holds it.
fn finish_journal(j: Arc<Mutex<Journal>>) {
    if let Ok(Ok(j)) = Arc::try_unwrap(j).map(|m| m.into_inner()) {
        j.finish();
    }
}

/// The first `ethN` not yet present in the container.
fn free_interface_name(container: &ContainerNs) -> Result<String> {
    for n in 0..1024 {
        let name = format!("eth{n}");
        match container.netlink.link(&name) {
            Ok(None) => return Ok(name),
            Ok(Some(_)) => continue,
            Err(e) => return Err(NetworkError::Sys(e.to_string())),
        }
    }
    Err(NetworkError::Sys(
        "the container already has 1024 interfaces".into(),
    ))
}

fn container_mac(ctx: &CallContext, interface: &str) -> String {
    match &ctx.scope {
        Scope::Endpoint {
            container: Some(c), ..
        } => c
            .netlink
            .link(interface)
            .ok()
            .flatten()
            .map(|l| l.mac)
            .unwrap_or_default(),
        _ => String::new(),
    }
}

fn remove_network_dir(dir: &Path) -> Result<()> {
    // network.json goes first: once it is gone the network no longer exists,
    // whatever else a crash leaves behind in the directory.
    store::remove_file(&dir.join("network.json"))?;
    std::fs::remove_dir_all(dir).map_err(|e| StoreError::io(dir, e))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn options_need_a_key_and_an_equals_sign() {
        assert_eq!(
            parse_options(&["a=b".into(), "c=".into(), "d=e=f".into()]).unwrap(),
            [
                ("a".into(), "b".into()),
                ("c".into(), "".into()),
                ("d".into(), "e=f".into())
            ]
        );
        for bad in ["", "=x", "novalue", "a b=c"] {
            assert!(parse_options(&[bad.to_string()]).is_err(), "{bad}");
        }
    }

    proptest! {
        #[test]
        fn options_never_panic_and_round_trip(raw in proptest::collection::vec(".{0,40}", 0..6)) {
            if let Ok(parsed) = parse_options(&raw) {
                let back: Vec<String> = parsed.iter().map(|(k, v)| format!("{k}={v}")).collect();
                prop_assert_eq!(back, raw);
            }
        }

        #[test]
        fn network_names_never_panic(name in ".{0,80}") {
            let _ = network_name_problem(&name);
        }

        #[test]
        fn state_records_load_or_fail_cleanly(text in ".{0,200}") {
            let _ = serde_json::from_str::<NetworkRecord>(&text);
            let _ = serde_json::from_str::<EndpointRecord>(&text);
        }
    }
}
