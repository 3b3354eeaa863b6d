//! The few sysctls mydocker sets, by name, never by arbitrary path.

use std::path::PathBuf;

/// Sysctls mydocker may set. Network sysctls under /proc/sys/net resolve
/// against the network namespace of the thread that opens them, so writing
/// from the host namespace changes only that namespace.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Sysctl {
    Ipv4Forward,
}

impl Sysctl {
    pub fn path(self) -> PathBuf {
        match self {
            Sysctl::Ipv4Forward => PathBuf::from("/proc/sys/net/ipv4/ip_forward"),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Sysctl::Ipv4Forward => "net.ipv4.ip_forward",
        }
    }
}

#[derive(Debug, thiserror::Error)]
#[error("sysctl {name}: {message}")]
pub struct SysctlError {
    pub name: &'static str,
    pub message: String,
}

pub fn read(key: Sysctl) -> Result<String, SysctlError> {
    std::fs::read_to_string(key.path())
        .map(|s| s.trim().to_string())
        .map_err(|e| SysctlError {
            name: key.name(),
            message: e.to_string(),
        })
}

pub fn write(key: Sysctl, value: &str) -> Result<(), SysctlError> {
    if value.is_empty() || !value.bytes().all(|b| b.is_ascii_digit()) {
        return Err(SysctlError {
            name: key.name(),
            message: format!("'{value}' is not a number"),
        });
    }
    std::fs::write(key.path(), value).map_err(|e| SysctlError {
        name: key.name(),
        message: e.to_string(),
    })
}
