//! Privileged operations on the Linux host: netlink, firewall, sysctls,
//! namespaces. Knows nothing about WebAssembly or drivers.

pub mod cgroup;
pub mod container;
pub mod firewall;
pub mod netlink;
pub mod nsexec;
pub mod sysctl;

/// Why an interface name is unusable, or `None` if the kernel will take it.
///
/// The kernel allows 1..=15 bytes (IFNAMSIZ - 1) without '/', ':' or
/// whitespace, and not "." or ".."; we are stricter (ASCII letters, digits,
/// '-', '_', '.') so names are also safe in iptables rules and file names.
pub fn interface_name_problem(name: &str) -> Option<&'static str> {
    if name.is_empty() {
        return Some("it is empty");
    }
    if name.len() > 15 {
        return Some("it is longer than 15 bytes");
    }
    if name == "." || name == ".." {
        return Some("'.' and '..' are reserved");
    }
    if !name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.')
    {
        return Some("only ASCII letters, digits, '-', '_' and '.' are allowed");
    }
    None
}

#[cfg(test)]
mod tests {
    use super::interface_name_problem;

    #[test]
    fn interface_names() {
        assert!(interface_name_problem("eth0").is_none());
        assert!(interface_name_problem("br-0123456789a").is_none());
        assert!(interface_name_problem("").is_some());
        assert!(interface_name_problem("0123456789abcdef").is_some());
        assert!(interface_name_problem("a/b").is_some());
        assert!(interface_name_problem("a b").is_some());
        assert!(interface_name_problem("..").is_some());
        assert!(interface_name_problem("é").is_some());
    }
}
