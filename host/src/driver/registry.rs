//! Which drivers exist: the built-in ones shipped inside the binary and
//! those installed under `<root>/drivers`.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use wasmtime::component::Component;

use super::bindings::{wit, API_VERSION};
use super::engine::{CacheOutcome, DriverCallError, DriverEngine};
use super::host_impl::{CallContext, HostSys, Scope};
use crate::store;

/// Drivers compiled into the mydocker binary (see host/build.rs).
const BUILTIN: &[(&str, &[u8])] = &[(
    "bridge",
    include_bytes!(concat!(env!("OUT_DIR"), "/bridge.wasm")),
)];

#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error("unknown driver '{name}' (known drivers: {known}); give a registered name or a path to a .wasm file")]
    Unknown { name: String, known: String },
    #[error("cannot read driver file {path}: {error}")]
    Read {
        path: PathBuf,
        error: std::io::Error,
    },
    #[error("{path} is not a usable driver: {reason}")]
    Invalid { path: String, reason: String },
    #[error("a different driver named '{name}' is already installed (sha256 {existing}); remove it first or rename the new one")]
    NameTaken { name: String, existing: String },
    #[error("driver '{name}' changed on disk: recorded sha256 {recorded}, file has {actual}; reinstall it with `mydocker driver install`")]
    Tampered {
        name: String,
        recorded: String,
        actual: String,
    },
    #[error("driver {name} asks for capability '{capability}', which mydocker does not know (known: {known})")]
    UnknownCapability {
        name: String,
        capability: String,
        known: String,
    },
    #[error("--allow {capability}: driver {name} does not ask for it (it asks for: {asked})")]
    NotRequested {
        name: String,
        capability: String,
        asked: String,
    },
    #[error("{name} is a built-in driver and cannot be removed")]
    Builtin { name: String },
    #[error("driver {name} is used by network(s) {networks}; remove them first")]
    InUse { name: String, networks: String },
    #[error(transparent)]
    Call(#[from] DriverCallError),
    #[error(transparent)]
    Store(#[from] store::StoreError),
}

/// Where a driver came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DriverSource {
    Builtin,
    Installed,
}

/// What a driver said about itself, as the host stores and shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DriverInfo {
    pub name: String,
    pub version: String,
    pub description: String,
    pub api_version: String,
    pub capabilities: Vec<String>,
    pub options: Vec<(String, String)>,
}

impl From<wit::DriverInfo> for DriverInfo {
    fn from(i: wit::DriverInfo) -> Self {
        DriverInfo {
            name: i.name,
            version: i.version,
            description: i.description,
            api_version: i.api_version,
            capabilities: i.capabilities,
            options: i
                .options
                .into_iter()
                .map(|o| (o.name, o.description))
                .collect(),
        }
    }
}

/// Metadata of an installed driver, stored beside its .wasm file.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct InstalledMeta {
    name: String,
    sha256: String,
    original_path: String,
    granted: Vec<String>,
}

/// A loaded driver, ready to call.
#[derive(Clone)]
pub struct Driver {
    pub info: DriverInfo,
    pub sha256: String,
    pub source: DriverSource,
    pub granted: BTreeSet<String>,
    pub component: Component,
    pub cache: CacheOutcome,
}

impl Driver {
    pub fn name(&self) -> &str {
        &self.info.name
    }
}

pub struct Registry {
    dir: PathBuf,
    engine: Arc<DriverEngine>,
    sys: Arc<HostSys>,
}

/// Capabilities the host implements; a driver asking for anything else is
/// refused at install.
pub const KNOWN_CAPABILITIES: &[&str] = &[
    "bridge",
    "veth",
    "macvlan",
    "ipvlan",
    "nat",
    "publish-port",
    "sysctl:ip_forward",
];

pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

fn valid_driver_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
}

/// Same major (and, before 1.0, same minor) version as the host's contract.
fn api_compatible(driver_api: &str) -> bool {
    let parse = |v: &str| -> Option<(u64, u64)> {
        let mut it = v.split('.');
        let major = it.next()?.parse().ok()?;
        let minor = it.next()?.parse().ok()?;
        Some((major, minor))
    };
    match (parse(driver_api), parse(API_VERSION)) {
        (Some((dmaj, dmin)), Some((hmaj, hmin))) => dmaj == hmaj && (hmaj > 0 || dmin == hmin),
        _ => false,
    }
}

impl Registry {
    pub fn new(dir: &Path, engine: Arc<DriverEngine>, sys: Arc<HostSys>) -> Registry {
        Registry {
            dir: dir.to_path_buf(),
            engine,
            sys,
        }
    }

    pub fn engine(&self) -> &Arc<DriverEngine> {
        &self.engine
    }

    pub fn sys(&self) -> &Arc<HostSys> {
        &self.sys
    }

    fn builtin(name: &str) -> Option<&'static [u8]> {
        BUILTIN.iter().find(|(n, _)| *n == name).map(|(_, b)| *b)
    }

    /// The sha256 of a built-in driver, hashed once per process: the bytes
    /// are part of the binary and cannot change under us.
    fn builtin_sha256(name: &str) -> Option<&'static str> {
        static HASHES: OnceLock<Vec<(&str, String)>> = OnceLock::new();
        HASHES
            .get_or_init(|| BUILTIN.iter().map(|(n, b)| (*n, sha256_hex(b))).collect())
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, h)| h.as_str())
    }

    fn installed_names(&self) -> Vec<String> {
        let mut names = Vec::new();
        if let Ok(entries) = std::fs::read_dir(&self.dir) {
            for e in entries.flatten() {
                let p = e.path();
                if p.extension().is_some_and(|x| x == "json") {
                    if let Some(stem) = p.file_stem().and_then(|s| s.to_str()) {
                        names.push(stem.to_string());
                    }
                }
            }
        }
        names.sort();
        names
    }

    /// Every known driver name, built-in first.
    pub fn names(&self) -> Vec<String> {
        let mut names: Vec<String> = BUILTIN.iter().map(|(n, _)| n.to_string()).collect();
        for n in self.installed_names() {
            if !names.contains(&n) {
                names.push(n);
            }
        }
        names
    }

    fn unknown(&self, name: &str) -> RegistryError {
        RegistryError::Unknown {
            name: name.to_string(),
            known: self.names().join(", "),
        }
    }

    /// Compiles (or loads from cache) and validates a component.
    fn load_bytes(
        &self,
        label: &str,
        bytes: &[u8],
        sha256: &str,
        source: DriverSource,
        granted: Option<BTreeSet<String>>,
    ) -> Result<Driver, RegistryError> {
        let invalid = |reason: String| RegistryError::Invalid {
            path: label.to_string(),
            reason,
        };
        let (component, cache) = self
            .engine
            .load(label, bytes, sha256)
            .map_err(|e| match e {
                DriverCallError::Load { reason, .. } => invalid(reason),
                other => RegistryError::Call(other),
            })?;
        // A driver built for another contract version would fail to link
        // with a cryptic message; say which versions are involved instead.
        match self.engine.contract_version(&component) {
            Some(v) if !api_compatible(&v) => {
                return Err(invalid(format!(
                    "it was built for contract mydocker:network@{v}, this mydocker implements @{API_VERSION}"
                )))
            }
            Some(_) => {}
            None => {
                return Err(invalid(format!(
                    "it does not export the mydocker:network@{API_VERSION} driver interface"
                )))
            }
        }
        let ctx = CallContext::new(label, BTreeSet::new(), self.sys.clone(), Scope::Info);
        let info: DriverInfo = match self.engine.info(&component, ctx) {
            Ok(info) => info.into(),
            Err(DriverCallError::Trapped { reason, .. })
            | Err(DriverCallError::Load { reason, .. }) => {
                return Err(invalid(format!(
                "it does not implement the mydocker:network@{API_VERSION} driver world ({reason})"
            )))
            }
            Err(e) => return Err(e.into()),
        };
        if !valid_driver_name(&info.name) {
            return Err(invalid(format!(
                "its info() gives the name '{}'; names are 1-64 characters of a-z, 0-9, '-' and '_'",
                info.name
            )));
        }
        if !api_compatible(&info.api_version) {
            return Err(invalid(format!(
                "it was built for contract mydocker:network@{}, this mydocker implements @{API_VERSION}",
                info.api_version
            )));
        }
        let granted = granted.unwrap_or_else(|| info.capabilities.iter().cloned().collect());
        Ok(Driver {
            info,
            sha256: sha256.to_string(),
            source,
            granted,
            component,
            cache,
        })
    }

    fn meta_path(&self, name: &str) -> PathBuf {
        self.dir.join(format!("{name}.json"))
    }

    fn wasm_path(&self, name: &str) -> PathBuf {
        self.dir.join(format!("{name}.wasm"))
    }

    /// Loads a driver by registered name.
    pub fn get(&self, name: &str) -> Result<Driver, RegistryError> {
        if let (Some(bytes), Some(sha256)) = (Self::builtin(name), Self::builtin_sha256(name)) {
            // Built-in drivers come pre-granted with what they declare.
            return self.load_bytes(name, bytes, sha256, DriverSource::Builtin, None);
        }
        if !valid_driver_name(name) {
            return Err(self.unknown(name));
        }
        let Some(meta) = store::read_json::<InstalledMeta>(&self.meta_path(name))? else {
            return Err(self.unknown(name));
        };
        let path = self.wasm_path(name);
        let bytes = std::fs::read(&path).map_err(|error| RegistryError::Read {
            path: path.clone(),
            error,
        })?;
        let actual = sha256_hex(&bytes);
        if actual != meta.sha256 {
            return Err(RegistryError::Tampered {
                name: name.to_string(),
                recorded: meta.sha256,
                actual,
            });
        }
        let mut driver = self.load_bytes(
            name,
            &bytes,
            &actual,
            DriverSource::Installed,
            Some(meta.granted.into_iter().collect()),
        )?;
        // Installed under another name (--name): that is its name here.
        driver.info.name = name.to_string();
        Ok(driver)
    }

    /// Resolves what the user typed after `--driver`: a registered name, a
    /// path to a .wasm file (installed on first use), or the file name of a
    /// registered driver ("bridge.wasm").
    pub fn resolve(&self, spec: &str) -> Result<Driver, RegistryError> {
        let looks_like_file = spec.ends_with(".wasm") || spec.contains('/');
        if !looks_like_file {
            return self.get(spec);
        }
        let path = Path::new(spec);
        if !path.exists() {
            if !spec.contains('/') {
                let stem = spec.trim_end_matches(".wasm");
                if self.names().iter().any(|n| n == stem) {
                    return self.get(stem);
                }
            }
            return Err(RegistryError::Read {
                path: path.to_path_buf(),
                error: std::io::Error::from(std::io::ErrorKind::NotFound),
            });
        }
        self.install(path, None)
    }

    /// Like [`resolve`](Self::resolve), but a driver named by its file is
    /// only loaded, never registered.
    pub fn resolve_without_install(&self, spec: &str) -> Result<Driver, RegistryError> {
        let path = Path::new(spec);
        if (spec.ends_with(".wasm") || spec.contains('/')) && path.is_file() {
            return self.probe(path);
        }
        self.resolve(spec)
    }

    /// Validates a .wasm driver and records it under its own name (or
    /// `name`), granting `allow` (default: everything it declares).
    /// Reinstalling an identical file is a no-op.
    pub fn install(&self, path: &Path, name: Option<&str>) -> Result<Driver, RegistryError> {
        self.install_with(path, name, None)
    }

    pub fn install_with(
        &self,
        path: &Path,
        name: Option<&str>,
        allow: Option<&BTreeSet<String>>,
    ) -> Result<Driver, RegistryError> {
        let bytes = std::fs::read(path).map_err(|error| RegistryError::Read {
            path: path.to_path_buf(),
            error,
        })?;
        let sha = sha256_hex(&bytes);
        let label = path.display().to_string();
        let mut driver = self.load_bytes(&label, &bytes, &sha, DriverSource::Installed, None)?;
        let name = name
            .map(str::to_string)
            .unwrap_or_else(|| driver.info.name.clone());
        if !valid_driver_name(&name) {
            return Err(RegistryError::Invalid {
                path: label,
                reason: format!("'{name}' is not a valid driver name (a-z, 0-9, '-', '_')"),
            });
        }
        for cap in &driver.info.capabilities {
            if !KNOWN_CAPABILITIES.contains(&cap.as_str()) {
                return Err(RegistryError::UnknownCapability {
                    name,
                    capability: cap.clone(),
                    known: KNOWN_CAPABILITIES.join(", "),
                });
            }
        }
        let granted: BTreeSet<String> = match allow {
            None => driver.info.capabilities.iter().cloned().collect(),
            Some(allow) => {
                if let Some(extra) = allow.iter().find(|c| !driver.info.capabilities.contains(c)) {
                    return Err(RegistryError::NotRequested {
                        name,
                        capability: extra.clone(),
                        asked: driver.info.capabilities.join(", "),
                    });
                }
                allow.clone()
            }
        };
        if let Some(builtin) = Self::builtin(&name) {
            let existing = sha256_hex(builtin);
            if existing == sha {
                driver.source = DriverSource::Builtin;
                return Ok(driver);
            }
            return Err(RegistryError::NameTaken { name, existing });
        }
        if let Some(meta) = store::read_json::<InstalledMeta>(&self.meta_path(&name))? {
            if meta.sha256 == sha {
                driver.granted = meta.granted.into_iter().collect();
                driver.info.name = name;
                return Ok(driver);
            }
            return Err(RegistryError::NameTaken {
                name,
                existing: meta.sha256,
            });
        }
        store::ensure_private_dir(&self.dir)?;
        store::write_atomic(&self.wasm_path(&name), &bytes)?;
        let meta = InstalledMeta {
            name: name.clone(),
            sha256: sha,
            original_path: std::fs::canonicalize(path)
                .unwrap_or_else(|_| path.to_path_buf())
                .display()
                .to_string(),
            granted: granted.iter().cloned().collect(),
        };
        store::write_json(&self.meta_path(&name), &meta)?;
        driver.info.name = name;
        driver.granted = granted;
        Ok(driver)
    }

    /// Validates a .wasm driver without registering it.
    pub fn probe(&self, path: &Path) -> Result<Driver, RegistryError> {
        let bytes = std::fs::read(path).map_err(|error| RegistryError::Read {
            path: path.to_path_buf(),
            error,
        })?;
        let sha = sha256_hex(&bytes);
        self.load_bytes(
            &path.display().to_string(),
            &bytes,
            &sha,
            DriverSource::Installed,
            None,
        )
    }

    /// Removes an installed driver, its file and its compiled artifact.
    /// `users` are the networks still using it (refused if any).
    pub fn remove(&self, name: &str, users: &[String]) -> Result<(), RegistryError> {
        if Self::builtin(name).is_some() {
            return Err(RegistryError::Builtin {
                name: name.to_string(),
            });
        }
        if !valid_driver_name(name) {
            return Err(self.unknown(name));
        }
        let Some(meta) = store::read_json::<InstalledMeta>(&self.meta_path(name))? else {
            return Err(self.unknown(name));
        };
        if !users.is_empty() {
            return Err(RegistryError::InUse {
                name: name.to_string(),
                networks: users.join(", "),
            });
        }
        // The metadata goes first: without it the driver no longer exists.
        store::remove_file(&self.meta_path(name))?;
        store::remove_file(&self.wasm_path(name))?;
        store::remove_file(&self.engine.cache_path(&meta.sha256))?;
        Ok(())
    }

    /// The file a driver is loaded from (`None` for built-ins) and where it
    /// was installed from.
    pub fn files(&self, name: &str) -> Option<(PathBuf, String)> {
        let meta = store::read_json::<InstalledMeta>(&self.meta_path(name)).ok()??;
        Some((self.wasm_path(name), meta.original_path))
    }

    /// Every known driver, loaded. Drivers that fail to load are reported
    /// with their error instead of hiding the rest.
    pub fn list(&self) -> Vec<(String, Result<Driver, RegistryError>)> {
        self.names()
            .into_iter()
            .map(|n| {
                let d = self.get(&n);
                (n, d)
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_versions() {
        assert!(api_compatible("0.1.0"));
        assert!(api_compatible("0.1.7"));
        assert!(!api_compatible("0.2.0"));
        assert!(!api_compatible("1.1.0"));
        assert!(!api_compatible("garbage"));
    }

    #[test]
    fn driver_names() {
        assert!(valid_driver_name("bridge"));
        assert!(valid_driver_name("my-driver_2"));
        assert!(!valid_driver_name("Bridge"));
        assert!(!valid_driver_name("../x"));
        assert!(!valid_driver_name(""));
    }
}
