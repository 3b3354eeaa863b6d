//! Parsers for `mydocker run` flag values.
//!
//! Every parser takes the raw string the user typed and returns either a typed
//! value or a [`SpecError`] whose message is a single line that names the
//! offending input (quoted, control characters escaped, very long inputs
//! shortened) and says what was expected, e.g.
//!
//! ```text
//! invalid port mapping '70000:80': host port 70000 is out of range (1-65535); expected [HOST-IP:]HOST-PORT:CONTAINER-PORT[/tcp|udp]
//! ```
//!
//! | flag | parser | value |
//! | --- | --- | --- |
//! | `-p` | [`parse_port`] | [`PortSpec`] |
//! | `-v` | [`parse_volume`] | [`VolumeSpec`] (checks the host path exists) |
//! | `-m` | [`parse_memory`] | bytes (`u64`, at least 6 MiB) |
//! | `--cpus` | [`parse_cpus`] | `f64` in `0.01..=1024` |
//! | `--cpuset-cpus` | [`parse_cpuset`] | normalized list such as `0-2,4` |
//! | `-e` | [`parse_env`] | `(key, value)` |
//! | `--name` | [`parse_container_name`] | name |
//! | `--hostname` | [`parse_hostname`] | hostname |
//! | image argument | [`parse_image_name`] | image name |
//!
//! The only parser that touches the file system is [`parse_volume`], which
//! calls `std::fs::metadata` on the host path after all syntax checks pass.
//! No parser panics on any input.

use std::net::Ipv4Addr;
use std::path::{Component, Path, PathBuf};

/// A rejected flag value. `message` is one line, names the input and says
/// what was expected.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("{message}")]
pub struct SpecError {
    pub message: String,
}

impl SpecError {
    fn new(message: impl Into<String>) -> Self {
        SpecError {
            message: message.into(),
        }
    }
}

/// Longest slice of user input quoted verbatim in an error message.
const MAX_QUOTED_CHARS: usize = 200;

/// Renders user input for an error message: control characters (and quotes)
/// escaped so the message stays on one line, and long inputs shortened.
fn q(s: &str) -> String {
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i == MAX_QUOTED_CHARS {
            out.push_str("...");
            break;
        }
        out.extend(c.escape_debug());
    }
    out
}

// ---------------------------------------------------------------------------
// -p
// ---------------------------------------------------------------------------

/// A published port (`-p`) is the network layer's port mapping;
/// `host_ip: None` means all interfaces (0.0.0.0).
pub use super::network::{PortMapping as PortSpec, Protocol};

const PORT_EXPECTED: &str = "expected [HOST-IP:]HOST-PORT:CONTAINER-PORT[/tcp|udp]";

/// Parses one port number field; `what` is "host" or "container".
fn parse_port_number(field: &str, what: &str) -> Result<u16, String> {
    if field.is_empty() {
        return Err(format!("{what} port is empty"));
    }
    if field.contains('-') {
        return Err(format!(
            "port ranges are not supported ({what} port '{}'); publish each port separately",
            q(field)
        ));
    }
    if !field.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("{what} port '{}' is not a number", q(field)));
    }
    match field.parse::<u64>() {
        Ok(n) if (1..=65535).contains(&n) => Ok(n as u16),
        Ok(n) => Err(format!("{what} port {n} is out of range (1-65535)")),
        Err(_) => Err(format!(
            "{what} port {} is out of range (1-65535)",
            q(field)
        )),
    }
}

/// Parses a `-p` value: `8080:80`, `127.0.0.1:8080:80`, `8080:80/udp`,
/// `0.0.0.0:53:53/udp`. Host IP 0.0.0.0 normalizes to `None`. A bare
/// container port (random host port), port ranges and IPv6 host addresses are
/// not supported.
pub fn parse_port(s: &str) -> Result<PortSpec, SpecError> {
    let err = |reason: String| {
        SpecError::new(format!(
            "invalid port mapping '{}': {reason}; {PORT_EXPECTED}",
            q(s)
        ))
    };
    if s.is_empty() {
        return Err(err("value is empty".into()));
    }
    if s.chars().any(char::is_whitespace) {
        return Err(err("contains whitespace".into()));
    }
    let (main, protocol) = match s.split_once('/') {
        None => (s, Protocol::Tcp),
        Some((main, "tcp")) => (main, Protocol::Tcp),
        Some((main, "udp")) => (main, Protocol::Udp),
        Some((_, "")) => return Err(err("protocol after '/' is empty".into())),
        Some((_, p)) => {
            return Err(err(format!(
                "unknown protocol '{}' (only tcp and udp are supported)",
                q(p)
            )))
        }
    };
    let parts: Vec<&str> = main.split(':').collect();
    let (ip_part, host_part, ctr_part) = match parts.as_slice() {
        [_] => {
            return Err(err(
                "no host port given (publishing on a random host port is not supported)".into(),
            ))
        }
        [h, c] => (None, *h, *c),
        [ip, h, c] => (Some(*ip), *h, *c),
        _ => {
            return Err(err(
                "too many ':' separators (IPv6 host addresses are not supported)".into(),
            ))
        }
    };
    let host_ip = match ip_part {
        None => None,
        Some("") => return Err(err("host IP is empty".into())),
        Some(ip) => match ip.parse::<Ipv4Addr>() {
            Ok(a) if a.is_unspecified() => None,
            Ok(a) => Some(a),
            Err(_) => {
                return Err(err(format!(
                    "host IP '{}' is not a valid IPv4 address",
                    q(ip)
                )))
            }
        },
    };
    let host_port = parse_port_number(host_part, "host").map_err(err)?;
    let container_port = parse_port_number(ctr_part, "container").map_err(err)?;
    Ok(PortSpec {
        host_ip,
        host_port,
        container_port,
        protocol,
    })
}

// ---------------------------------------------------------------------------
// -v
// ---------------------------------------------------------------------------

/// A bind mount (`-v HOST:CTR[:ro|rw]`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct VolumeSpec {
    pub host: PathBuf,
    pub container: PathBuf,
    pub read_only: bool,
}

const VOLUME_EXPECTED: &str = "expected HOST-PATH:CONTAINER-PATH[:ro|rw] with absolute paths";

/// Parses a `-v` value. Both paths must be absolute; the container path must
/// not be `/` nor contain `..`; the mode is `ro` or `rw` (default `rw`).
/// After the syntax checks, the host path must exist (`std::fs::metadata`).
pub fn parse_volume(s: &str) -> Result<VolumeSpec, SpecError> {
    let err = |reason: String| {
        SpecError::new(format!(
            "invalid volume '{}': {reason}; {VOLUME_EXPECTED}",
            q(s)
        ))
    };
    if s.is_empty() {
        return Err(err("value is empty".into()));
    }
    if s.contains('\0') {
        return Err(err("contains a NUL byte".into()));
    }
    let parts: Vec<&str> = s.split(':').collect();
    let (host, ctr, mode) = match parts.as_slice() {
        [_] => return Err(err("missing ':' and container path".into())),
        [h, c] => (*h, *c, None),
        [h, c, m] => (*h, *c, Some(*m)),
        _ => return Err(err("too many ':' separators".into())),
    };
    if host.is_empty() {
        return Err(err("host path is empty".into()));
    }
    if ctr.is_empty() {
        return Err(err("container path is empty".into()));
    }
    let read_only = match mode {
        None | Some("rw") => false,
        Some("ro") => true,
        Some("") => return Err(err("mode after the last ':' is empty".into())),
        Some(m) => return Err(err(format!("unknown mode '{}' (use ro or rw)", q(m)))),
    };
    let host_path = Path::new(host);
    let ctr_path = Path::new(ctr);
    if !host_path.is_absolute() {
        return Err(err(format!("host path '{}' is not absolute", q(host))));
    }
    if !ctr_path.is_absolute() {
        return Err(err(format!("container path '{}' is not absolute", q(ctr))));
    }
    if ctr_path
        .components()
        .all(|c| matches!(c, Component::RootDir | Component::CurDir))
    {
        return Err(err("container path must not be '/'".into()));
    }
    if ctr_path.components().any(|c| c == Component::ParentDir) {
        return Err(err(format!(
            "container path '{}' must not contain '..'",
            q(ctr)
        )));
    }
    match std::fs::metadata(host_path) {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(SpecError::new(format!(
                "volume '{}': host path {} does not exist",
                q(s),
                q(host)
            )))
        }
        Err(e) => {
            return Err(SpecError::new(format!(
                "volume '{}': host path {} cannot be accessed: {}",
                q(s),
                q(host),
                q(&e.to_string())
            )))
        }
    }
    Ok(VolumeSpec {
        host: host_path.to_path_buf(),
        container: ctr_path.to_path_buf(),
        read_only,
    })
}

// ---------------------------------------------------------------------------
// -m
// ---------------------------------------------------------------------------

/// Docker's minimum memory limit.
pub const MIN_MEMORY_BYTES: u64 = 6 * 1024 * 1024;

const MEMORY_EXPECTED: &str =
    "expected an integer with an optional unit b, k, m or g (e.g. 64m, 1g), at least 6m";

/// Parses a `-m` value: an integer with an optional case-insensitive unit
/// `b`, `k`, `m`, `g` (optionally followed by `b`, as in `64mb`), in bytes.
/// Fractions are rejected; the result must be at least 6 MiB and fit a u64.
pub fn parse_memory(s: &str) -> Result<u64, SpecError> {
    let err = |reason: String| {
        SpecError::new(format!(
            "invalid memory limit '{}': {reason}; {MEMORY_EXPECTED}",
            q(s)
        ))
    };
    if s.is_empty() {
        return Err(err("value is empty".into()));
    }
    if s.chars().any(char::is_whitespace) {
        return Err(err("contains whitespace".into()));
    }
    if s.starts_with('-') {
        return Err(err("must be positive".into()));
    }
    let split = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    let (number, unit) = s.split_at(split);
    if !number.bytes().any(|b| b.is_ascii_digit()) {
        return Err(err("does not start with a number".into()));
    }
    if number.contains('.') {
        return Err(err(
            "fractions are not supported; use an integer (e.g. 1536m instead of 1.5g)".into(),
        ));
    }
    let multiplier: u64 = match unit.to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" => 1 << 10,
        "m" | "mb" => 1 << 20,
        "g" | "gb" => 1 << 30,
        _ => {
            return Err(err(format!(
                "unknown unit '{}' (use b, k, m or g)",
                q(unit)
            )))
        }
    };
    let too_large = || err("too large (does not fit in 64 bits)".into());
    let n: u64 = number.parse().map_err(|_| too_large())?;
    let bytes = n.checked_mul(multiplier).ok_or_else(too_large)?;
    if bytes == 0 {
        return Err(err("must be greater than 0".into()));
    }
    if bytes < MIN_MEMORY_BYTES {
        return Err(err(format!(
            "{bytes} bytes is below the minimum of 6 MiB (Docker's minimum memory limit)"
        )));
    }
    Ok(bytes)
}

// ---------------------------------------------------------------------------
// --cpus
// ---------------------------------------------------------------------------

const CPUS_EXPECTED: &str = "expected a decimal number of CPUs from 0.01 to 1024 (e.g. 0.5)";

/// Parses `--cpus`: a plain positive decimal (`2`, `0.5`, `.5`) between 0.01
/// and 1024 inclusive. Signs, exponents, NaN and infinity are rejected.
pub fn parse_cpus(s: &str) -> Result<f64, SpecError> {
    let err = |reason: String| {
        SpecError::new(format!(
            "invalid --cpus '{}': {reason}; {CPUS_EXPECTED}",
            q(s)
        ))
    };
    if s.is_empty() {
        return Err(err("value is empty".into()));
    }
    if s.starts_with('-') {
        return Err(err("must be positive".into()));
    }
    let digits = s.bytes().filter(u8::is_ascii_digit).count();
    let dots = s.bytes().filter(|&b| b == b'.').count();
    if digits == 0 || dots > 1 || digits + dots != s.len() {
        return Err(err("not a decimal number".into()));
    }
    let v: f64 = s.parse().map_err(|_| err("not a decimal number".into()))?;
    if !v.is_finite() || v > 1024.0 {
        return Err(err("above the maximum of 1024".into()));
    }
    if v == 0.0 {
        return Err(err("must be greater than 0".into()));
    }
    if v < 0.01 {
        return Err(err("below the minimum of 0.01".into()));
    }
    Ok(v)
}

// ---------------------------------------------------------------------------
// --cpuset-cpus
// ---------------------------------------------------------------------------

const CPUSET_EXPECTED: &str = "expected CPU numbers and ranges such as 0, 0-1, 0,2 or 0-2,4";

/// Parses `--cpuset-cpus` (`0`, `0-1`, `0,2`, `0-2,4`). Every CPU must be
/// below `ncpus`. Returns the normalized list: sorted, merged ranges, e.g.
/// `"2,0-1,3"` becomes `"0-3"`.
pub fn parse_cpuset(s: &str, ncpus: usize) -> Result<String, SpecError> {
    let err = |reason: String| {
        SpecError::new(format!(
            "invalid --cpuset-cpus '{}': {reason}; {CPUSET_EXPECTED}",
            q(s)
        ))
    };
    if s.is_empty() {
        return Err(err("value is empty".into()));
    }
    if s.chars().any(char::is_whitespace) {
        return Err(err("contains whitespace".into()));
    }
    let missing = |cpu: &str| {
        let have = match ncpus {
            0 => "this machine reports no CPUs".to_string(),
            1 => "this machine has 1 CPU, numbered 0".to_string(),
            n => format!("this machine has {n} CPUs, numbered 0-{}", n - 1),
        };
        err(format!("cpu {} does not exist ({have})", q(cpu)))
    };
    let number = |t: &str| -> Result<usize, SpecError> {
        if t.is_empty() || !t.bytes().all(|b| b.is_ascii_digit()) {
            return Err(err(format!("'{}' is not a CPU number", q(t))));
        }
        t.parse::<usize>().map_err(|_| missing(t))
    };
    let mut ranges: Vec<(usize, usize)> = Vec::new();
    for item in s.split(',') {
        if item.is_empty() {
            return Err(err("empty entry in the list".into()));
        }
        let (lo, hi) = match item.split_once('-') {
            None => {
                let n = number(item)?;
                (n, n)
            }
            Some((a, b)) => {
                let (lo, hi) = (number(a)?, number(b)?);
                if lo > hi {
                    return Err(err(format!(
                        "range '{}' is reversed (write LOW-HIGH)",
                        q(item)
                    )));
                }
                (lo, hi)
            }
        };
        if hi >= ncpus {
            return Err(missing(&lo.max(ncpus).to_string()));
        }
        ranges.push((lo, hi));
    }
    ranges.sort_unstable();
    let mut merged: Vec<(usize, usize)> = Vec::new();
    for (lo, hi) in ranges {
        match merged.last_mut() {
            Some(last) if lo <= last.1.saturating_add(1) => last.1 = last.1.max(hi),
            _ => merged.push((lo, hi)),
        }
    }
    Ok(merged
        .iter()
        .map(|&(lo, hi)| {
            if lo == hi {
                lo.to_string()
            } else {
                format!("{lo}-{hi}")
            }
        })
        .collect::<Vec<_>>()
        .join(","))
}

// ---------------------------------------------------------------------------
// -e
// ---------------------------------------------------------------------------

/// Parses `-e KEY=VALUE`. The key matches `[A-Za-z_][A-Za-z0-9_]*`; the value
/// may be empty and may contain `=` (split at the first `=`), but not a NUL
/// byte. `-e KEY` alone (copy from the host environment) is not supported.
pub fn parse_env(s: &str) -> Result<(String, String), SpecError> {
    let err = |reason: String| {
        SpecError::new(format!("invalid environment variable '{}': {reason}", q(s)))
    };
    let Some((key, value)) = s.split_once('=') else {
        return Err(err(
            "missing '=VALUE'; use KEY=VALUE (copying a variable from the host environment is not supported)"
                .into(),
        ));
    };
    let key_ok = key
        .bytes()
        .enumerate()
        .all(|(i, b)| b == b'_' || b.is_ascii_alphabetic() || (i > 0 && b.is_ascii_digit()));
    if key.is_empty() {
        return Err(err("name before '=' is empty; use KEY=VALUE".into()));
    }
    if !key_ok {
        return Err(err(format!(
            "name '{}' must match [A-Za-z_][A-Za-z0-9_]*; use KEY=VALUE",
            q(key)
        )));
    }
    if value.contains('\0') {
        return Err(err("value contains a NUL byte".into()));
    }
    Ok((key.to_string(), value.to_string()))
}

// ---------------------------------------------------------------------------
// --name, --hostname, image
// ---------------------------------------------------------------------------

/// Parses a container name: `[a-zA-Z0-9][a-zA-Z0-9_.-]{0,127}`.
pub fn parse_container_name(s: &str) -> Result<String, SpecError> {
    let ok = !s.is_empty()
        && s.len() <= 128
        && s.bytes()
            .enumerate()
            .all(|(i, b)| b.is_ascii_alphanumeric() || (i > 0 && matches!(b, b'_' | b'.' | b'-')));
    if ok {
        return Ok(s.to_string());
    }
    let reason = if s.is_empty() {
        "name is empty"
    } else if s.len() > 128 {
        "longer than 128 characters"
    } else if !s.as_bytes()[0].is_ascii_alphanumeric() {
        "must start with a letter or digit"
    } else {
        "contains a character other than letters, digits, '_', '.' or '-'"
    };
    Err(SpecError::new(format!(
        "invalid container name '{}': {reason}; names must match [a-zA-Z0-9][a-zA-Z0-9_.-]{{0,127}}",
        q(s)
    )))
}

/// Parses `--hostname`: dot-separated labels of 1-63 `[A-Za-z0-9-]`, not
/// starting or ending with `-`, at most 253 characters in total.
pub fn parse_hostname(s: &str) -> Result<String, SpecError> {
    let err = |reason: String| {
        SpecError::new(format!(
            "invalid hostname '{}': {reason}; expected dot-separated labels of 1-63 letters, digits or '-' (not starting or ending with '-'), at most 253 characters",
            q(s)
        ))
    };
    if s.is_empty() {
        return Err(err("hostname is empty".into()));
    }
    if s.len() > 253 {
        return Err(err(format!("{} characters is too long", s.len())));
    }
    for label in s.split('.') {
        if label.is_empty() {
            return Err(err("empty label (leading, trailing or doubled '.')".into()));
        }
        if label.len() > 63 {
            return Err(err(format!(
                "label '{}' is longer than 63 characters",
                q(label)
            )));
        }
        if !label
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        {
            return Err(err(format!(
                "label '{}' contains a character other than letters, digits or '-'",
                q(label)
            )));
        }
        if label.starts_with('-') || label.ends_with('-') {
            return Err(err(format!("label '{}' starts or ends with '-'", q(label))));
        }
    }
    Ok(s.to_string())
}

/// Parses an image name: `[a-z0-9][a-z0-9_.-]{0,127}`. There are no
/// registries, repository paths or tags.
pub fn parse_image_name(s: &str) -> Result<String, SpecError> {
    let ok = !s.is_empty()
        && s.len() <= 128
        && s.bytes().enumerate().all(|(i, b)| {
            b.is_ascii_lowercase()
                || b.is_ascii_digit()
                || (i > 0 && matches!(b, b'_' | b'.' | b'-'))
        });
    if ok {
        return Ok(s.to_string());
    }
    let reason = if s.is_empty() {
        "name is empty"
    } else if s.len() > 128 {
        "longer than 128 characters"
    } else if s.contains(':') {
        "tags are not supported"
    } else if s.contains('/') {
        "registries and repository paths are not supported"
    } else if s.bytes().any(|b| b.is_ascii_uppercase()) {
        "must be lowercase"
    } else if !matches!(s.as_bytes()[0], b'a'..=b'z' | b'0'..=b'9') {
        "must start with a lowercase letter or digit"
    } else {
        "contains a character other than lowercase letters, digits, '_', '.' or '-'"
    };
    Err(SpecError::new(format!(
        "invalid image name '{}': {reason}; image names must match [a-z0-9][a-z0-9_.-]{{0,127}} (no registry, path or tag)",
        q(s)
    )))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Asserts `r` is an error whose message names `input` and is one line.
    fn assert_err<T: std::fmt::Debug>(r: Result<T, SpecError>, input: &str, needle: &str) {
        let e = r.expect_err(input);
        assert!(
            e.message.contains(&format!("'{input}'")),
            "message does not name input {input:?}: {}",
            e.message
        );
        assert!(
            e.message.contains(needle),
            "message for {input:?} lacks {needle:?}: {}",
            e.message
        );
        assert!(!e.message.contains('\n'), "multi-line: {}", e.message);
    }

    fn ps(ip: Option<[u8; 4]>, h: u16, c: u16, p: Protocol) -> PortSpec {
        PortSpec {
            host_ip: ip.map(Ipv4Addr::from),
            host_port: h,
            container_port: c,
            protocol: p,
        }
    }

    // ----- ports -----

    #[test]
    fn port_accepts_examples() {
        use Protocol::*;
        assert_eq!(parse_port("8080:80"), Ok(ps(None, 8080, 80, Tcp)));
        assert_eq!(
            parse_port("127.0.0.1:8080:80"),
            Ok(ps(Some([127, 0, 0, 1]), 8080, 80, Tcp))
        );
        assert_eq!(parse_port("8080:80/udp"), Ok(ps(None, 8080, 80, Udp)));
        assert_eq!(parse_port("8080:80/tcp"), Ok(ps(None, 8080, 80, Tcp)));
        assert_eq!(parse_port("0.0.0.0:53:53/udp"), Ok(ps(None, 53, 53, Udp)));
        assert_eq!(parse_port("1:65535"), Ok(ps(None, 1, 65535, Tcp)));
    }

    #[test]
    fn port_rejects_examples() {
        assert_err(parse_port("80"), "80", "no host port");
        assert_err(parse_port("a:b"), "a:b", "host port 'a' is not a number");
        assert_err(
            parse_port("70000:80"),
            "70000:80",
            "host port 70000 is out of range (1-65535)",
        );
        assert_err(parse_port("0:80"), "0:80", "host port 0 is out of range");
        assert_err(
            parse_port("8080:0"),
            "8080:0",
            "container port 0 is out of range",
        );
        assert_err(
            parse_port("8080:80/icmp"),
            "8080:80/icmp",
            "unknown protocol 'icmp'",
        );
        assert_err(parse_port("8080:80/"), "8080:80/", "protocol");
        assert_err(
            parse_port("1.2.3:80:80"),
            "1.2.3:80:80",
            "not a valid IPv4 address",
        );
        assert_err(parse_port("::1:80:80"), "::1:80:80", "IPv6");
        assert_err(
            parse_port("8000-8010:80"),
            "8000-8010:80",
            "ranges are not supported",
        );
        assert_err(parse_port(""), "", "empty");
        assert_err(parse_port(" "), " ", "whitespace");
        assert_err(parse_port(" 8080:80"), " 8080:80", "whitespace");
        assert_err(parse_port("8080:80 "), "8080:80 ", "whitespace");
        assert_err(parse_port("1:2:3:4"), "1:2:3:4", "too many ':'");
        assert_err(parse_port(":8080:80"), ":8080:80", "host IP is empty");
        assert_err(parse_port(":80"), ":80", "host port is empty");
        assert_err(parse_port("80:"), "80:", "container port is empty");
        assert_err(parse_port("+80:80"), "+80:80", "not a number");
        assert_err(
            parse_port("99999999999999999999999:80"),
            "99999999999999999999999:80",
            "out of range",
        );
    }

    #[test]
    fn port_display() {
        use Protocol::*;
        assert_eq!(ps(None, 8080, 80, Tcp).to_string(), "0.0.0.0:8080->80/tcp");
        assert_eq!(
            ps(Some([127, 0, 0, 1]), 53, 5353, Udp).to_string(),
            "127.0.0.1:53->5353/udp"
        );
        assert_eq!(Tcp.to_string(), "tcp");
        assert_eq!(Udp.to_string(), "udp");
    }

    // ----- volumes -----

    #[test]
    fn volume_accepts_examples() {
        assert_eq!(
            parse_volume("/tmp:/data"),
            Ok(VolumeSpec {
                host: "/tmp".into(),
                container: "/data".into(),
                read_only: false
            })
        );
        assert!(parse_volume("/tmp:/data:ro").unwrap().read_only);
        assert!(!parse_volume("/tmp:/data:rw").unwrap().read_only);
        assert_eq!(
            parse_volume("/:/mnt/host").unwrap().host,
            PathBuf::from("/")
        );
    }

    #[test]
    fn volume_rejects_examples() {
        let missing = format!("/definitely/not/here-{}", std::process::id());
        let input = format!("{missing}:/data");
        let e = parse_volume(&input).unwrap_err();
        assert_eq!(
            e.message,
            format!("volume '{input}': host path {missing} does not exist")
        );
        assert_err(parse_volume(""), "", "empty");
        assert_err(parse_volume("/tmp"), "/tmp", "container path");
        assert_err(parse_volume(":/data"), ":/data", "host path is empty");
        assert_err(parse_volume("/tmp:"), "/tmp:", "container path is empty");
        assert_err(
            parse_volume("/tmp:/data:xyz"),
            "/tmp:/data:xyz",
            "unknown mode 'xyz'",
        );
        assert_err(parse_volume("/tmp:/data:"), "/tmp:/data:", "mode");
        assert_err(
            parse_volume("tmp:/data"),
            "tmp:/data",
            "host path 'tmp' is not absolute",
        );
        assert_err(
            parse_volume("/tmp:data"),
            "/tmp:data",
            "container path 'data' is not absolute",
        );
        assert_err(parse_volume("/tmp:/"), "/tmp:/", "must not be '/'");
        assert_err(parse_volume("/tmp:/./"), "/tmp:/./", "must not be '/'");
        assert_err(parse_volume("/tmp:/a/../etc"), "/tmp:/a/../etc", "'..'");
        assert_err(
            parse_volume("/tmp:/data:ro:x"),
            "/tmp:/data:ro:x",
            "too many ':'",
        );
        assert_err(parse_volume("/tmp:/data\0"), "/tmp:/data\\0", "NUL");
    }

    // ----- memory -----

    #[test]
    fn memory_accepts_examples() {
        const M: u64 = 1 << 20;
        assert_eq!(parse_memory("64m"), Ok(64 * M));
        assert_eq!(parse_memory("64M"), Ok(64 * M));
        assert_eq!(parse_memory("64mb"), Ok(64 * M));
        assert_eq!(parse_memory("64MB"), Ok(64 * M));
        assert_eq!(parse_memory("1g"), Ok(1 << 30));
        assert_eq!(parse_memory("1Gb"), Ok(1 << 30));
        assert_eq!(parse_memory("8192k"), Ok(8 * M));
        assert_eq!(parse_memory("6m"), Ok(MIN_MEMORY_BYTES));
        assert_eq!(parse_memory("6291456"), Ok(MIN_MEMORY_BYTES));
        assert_eq!(parse_memory("6291456b"), Ok(MIN_MEMORY_BYTES));
        assert_eq!(parse_memory("17179869183g"), Ok(17179869183 << 30));
    }

    #[test]
    fn memory_rejects_examples() {
        assert_err(parse_memory("1.5g"), "1.5g", "use an integer");
        assert_err(parse_memory("512k"), "512k", "minimum of 6 MiB");
        assert_err(parse_memory("1048576"), "1048576", "minimum of 6 MiB");
        assert_err(parse_memory("6291455"), "6291455", "minimum of 6 MiB");
        assert_err(parse_memory("0"), "0", "greater than 0");
        assert_err(parse_memory("0m"), "0m", "greater than 0");
        assert_err(parse_memory("-64m"), "-64m", "positive");
        assert_err(parse_memory("abc"), "abc", "number");
        assert_err(parse_memory("64x"), "64x", "unknown unit 'x'");
        assert_err(parse_memory("64t"), "64t", "unknown unit");
        assert_err(parse_memory("64mib"), "64mib", "unknown unit");
        assert_err(parse_memory("m"), "m", "number");
        assert_err(parse_memory(""), "", "empty");
        assert_err(parse_memory("64 m"), "64 m", "whitespace");
        assert_err(parse_memory("+64m"), "+64m", "number");
        assert_err(parse_memory("17179869184g"), "17179869184g", "too large");
        assert_err(
            parse_memory("99999999999999999999999"),
            "99999999999999999999999",
            "too large",
        );
    }

    // ----- cpus -----

    #[test]
    fn cpus_accepts_examples() {
        assert_eq!(parse_cpus("0.5"), Ok(0.5));
        assert_eq!(parse_cpus("2"), Ok(2.0));
        assert_eq!(parse_cpus(".5"), Ok(0.5));
        assert_eq!(parse_cpus("0.01"), Ok(0.01));
        assert_eq!(parse_cpus("1024"), Ok(1024.0));
    }

    #[test]
    fn cpus_rejects_examples() {
        assert_err(parse_cpus("0"), "0", "greater than 0");
        assert_err(parse_cpus("0.0"), "0.0", "greater than 0");
        assert_err(parse_cpus("-1"), "-1", "positive");
        assert_err(parse_cpus("0.001"), "0.001", "minimum of 0.01");
        assert_err(parse_cpus("1024.5"), "1024.5", "maximum of 1024");
        assert_err(parse_cpus("NaN"), "NaN", "not a decimal");
        assert_err(parse_cpus("inf"), "inf", "not a decimal");
        assert_err(parse_cpus("1e2"), "1e2", "not a decimal");
        assert_err(parse_cpus("+1"), "+1", "not a decimal");
        assert_err(parse_cpus("abc"), "abc", "not a decimal");
        assert_err(parse_cpus("1.2.3"), "1.2.3", "not a decimal");
        assert_err(parse_cpus("."), ".", "not a decimal");
        assert_err(parse_cpus(""), "", "empty");
        let huge = "9".repeat(400);
        assert!(parse_cpus(&huge).unwrap_err().message.contains("maximum"));
    }

    // ----- cpuset -----

    #[test]
    fn cpuset_accepts_examples() {
        assert_eq!(parse_cpuset("0", 4).as_deref(), Ok("0"));
        assert_eq!(parse_cpuset("0-1", 4).as_deref(), Ok("0-1"));
        assert_eq!(parse_cpuset("0,2", 4).as_deref(), Ok("0,2"));
        assert_eq!(parse_cpuset("0-2,4", 8).as_deref(), Ok("0-2,4"));
        assert_eq!(parse_cpuset("3,0-1,2", 4).as_deref(), Ok("0-3"));
        assert_eq!(parse_cpuset("1-1,1", 4).as_deref(), Ok("1"));
        assert_eq!(parse_cpuset("0-2,1-3", 4).as_deref(), Ok("0-3"));
    }

    #[test]
    fn cpuset_rejects_examples() {
        assert_err(
            parse_cpuset("4", 4),
            "4",
            "cpu 4 does not exist (this machine has 4 CPUs, numbered 0-3)",
        );
        assert_err(parse_cpuset("2-7", 4), "2-7", "cpu 4 does not exist");
        assert_err(parse_cpuset("1", 1), "1", "this machine has 1 CPU,");
        assert_err(parse_cpuset("0", 0), "0", "no CPUs");
        assert_err(parse_cpuset("3-1", 4), "3-1", "reversed");
        assert_err(parse_cpuset("", 4), "", "empty");
        assert_err(parse_cpuset("0,,1", 4), "0,,1", "empty entry");
        assert_err(parse_cpuset("0,", 4), "0,", "empty entry");
        assert_err(parse_cpuset("a", 4), "a", "'a' is not a CPU number");
        assert_err(parse_cpuset("0-", 4), "0-", "not a CPU number");
        assert_err(parse_cpuset("0-1-2", 4), "0-1-2", "not a CPU number");
        assert_err(parse_cpuset("0, 1", 4), "0, 1", "whitespace");
        assert_err(
            parse_cpuset("99999999999999999999999", 4),
            "99999999999999999999999",
            "does not exist",
        );
    }

    // ----- env -----

    #[test]
    fn env_accepts_examples() {
        let kv = |k: &str, v: &str| Ok((k.to_string(), v.to_string()));
        assert_eq!(parse_env("K=V"), kv("K", "V"));
        assert_eq!(parse_env("K="), kv("K", ""));
        assert_eq!(parse_env("K=a=b"), kv("K", "a=b"));
        assert_eq!(parse_env("_x9=1 2"), kv("_x9", "1 2"));
    }

    #[test]
    fn env_rejects_examples() {
        assert_err(parse_env("K"), "K", "use KEY=VALUE");
        assert_err(parse_env("=V"), "=V", "empty");
        assert_err(parse_env("9K=V"), "9K=V", "[A-Za-z_][A-Za-z0-9_]*");
        assert_err(parse_env("A-B=V"), "A-B=V", "[A-Za-z_][A-Za-z0-9_]*");
        assert_err(parse_env(" K=V"), " K=V", "[A-Za-z_][A-Za-z0-9_]*");
        assert_err(parse_env(""), "", "KEY=VALUE");
    }

    // ----- names -----

    #[test]
    fn container_name_examples() {
        for ok in ["web", "Web-1", "a", "9_x.y-z"] {
            assert_eq!(parse_container_name(ok).as_deref(), Ok(ok));
        }
        let max = "a".repeat(128);
        assert!(parse_container_name(&max).is_ok());
        let pat = "[a-zA-Z0-9][a-zA-Z0-9_.-]{0,127}";
        for bad in ["", "-web", "_web", ".web", "we b", "we/b", "wé"] {
            assert_err(parse_container_name(bad), bad, pat);
        }
        let long = "a".repeat(129);
        assert_err(parse_container_name(&long), &long, "longer than 128");
    }

    #[test]
    fn hostname_examples() {
        for ok in ["web", "my-host", "a.b.c", "Host1.example.com", "1"] {
            assert_eq!(parse_hostname(ok).as_deref(), Ok(ok));
        }
        let label63 = "a".repeat(63);
        assert!(parse_hostname(&label63).is_ok());
        let total253 = [label63.as_str(); 4].join(".")[..253].to_string();
        assert!(parse_hostname(&total253).is_ok(), "{total253}");
        for (bad, why) in [
            ("", "empty"),
            ("-web", "starts or ends with '-'"),
            ("web-", "starts or ends with '-'"),
            ("a..b", "empty label"),
            ("a.", "empty label"),
            (".a", "empty label"),
            ("we_b", "other than letters"),
            ("we b", "other than letters"),
        ] {
            assert_err(parse_hostname(bad), bad, why);
        }
        let label64 = "a".repeat(64);
        assert_err(parse_hostname(&label64), &label64, "longer than 63");
        let total254 = format!("{total253}a");
        assert!(parse_hostname(&total254)
            .unwrap_err()
            .message
            .contains("254 characters is too long"));
    }

    #[test]
    fn image_name_examples() {
        for ok in ["alpine", "busybox", "my-image_1.0", "0abc"] {
            assert_eq!(parse_image_name(ok).as_deref(), Ok(ok));
        }
        for (bad, why) in [
            ("", "empty"),
            ("Alpine", "lowercase"),
            ("alpine:3.19", "tags are not supported"),
            ("library/alpine", "repository paths are not supported"),
            ("-alpine", "must start with"),
            ("alp ine", "other than lowercase"),
        ] {
            assert_err(parse_image_name(bad), bad, why);
        }
        let long = "a".repeat(129);
        assert_err(parse_image_name(&long), &long, "longer than 128");
        assert!(parse_image_name(&long[..128]).is_ok());
    }

    #[test]
    fn long_input_is_shortened_in_message() {
        let long = "x".repeat(10_000);
        let e = parse_port(&long).unwrap_err();
        assert!(e.message.len() < 500, "{}", e.message.len());
        assert!(e.message.contains("..."));
    }

    // ----- properties -----

    fn all_parsers(s: &str) -> Vec<Option<String>> {
        vec![
            parse_port(s).err().map(|e| e.message),
            parse_volume(s).err().map(|e| e.message),
            parse_memory(s).err().map(|e| e.message),
            parse_cpus(s).err().map(|e| e.message),
            parse_cpuset(s, 0).err().map(|e| e.message),
            parse_cpuset(s, 8).err().map(|e| e.message),
            parse_cpuset(s, usize::MAX).err().map(|e| e.message),
            parse_env(s).err().map(|e| e.message),
            parse_container_name(s).err().map(|e| e.message),
            parse_hostname(s).err().map(|e| e.message),
            parse_image_name(s).err().map(|e| e.message),
        ]
    }

    fn unit_strategy() -> impl Strategy<Value = (&'static str, u64)> {
        prop::sample::select(vec![
            ("", 1u64),
            ("b", 1),
            ("B", 1),
            ("k", 1 << 10),
            ("K", 1 << 10),
            ("kb", 1 << 10),
            ("KB", 1 << 10),
            ("m", 1 << 20),
            ("M", 1 << 20),
            ("mb", 1 << 20),
            ("mB", 1 << 20),
            ("g", 1 << 30),
            ("G", 1 << 30),
            ("gb", 1 << 30),
            ("Gb", 1 << 30),
        ])
    }

    proptest! {
        #[test]
        fn no_parser_panics_and_errors_are_one_line(s in any::<String>()) {
            for m in all_parsers(&s).into_iter().flatten() {
                prop_assert!(!m.contains('\n') && !m.contains('\r'), "{}", m);
            }
        }

        #[test]
        fn no_parser_panics_on_flag_like_input(s in "[0-9a-zA-Z:/.,=_ +-]{0,40}") {
            for m in all_parsers(&s).into_iter().flatten() {
                prop_assert!(!m.contains('\n'), "{}", m);
            }
        }

        #[test]
        fn port_round_trip(
            ip in any::<Option<[u8; 4]>>(),
            h in 1u16..,
            c in 1u16..,
            udp in any::<bool>(),
        ) {
            let protocol = if udp { Protocol::Udp } else { Protocol::Tcp };
            let text = match ip {
                Some(ip) => format!("{}:{h}:{c}/{protocol}", Ipv4Addr::from(ip)),
                None => format!("{h}:{c}/{protocol}"),
            };
            let host_ip = ip.map(Ipv4Addr::from).filter(|a| !a.is_unspecified());
            let want = PortSpec { host_ip, host_port: h, container_port: c, protocol };
            prop_assert_eq!(parse_port(&text), Ok(want));
        }

        #[test]
        fn memory_round_trip(n in prop_oneof![0u64..100_000, any::<u64>()], (unit, mult) in unit_strategy()) {
            let text = format!("{n}{unit}");
            match n.checked_mul(mult) {
                Some(b) if b >= MIN_MEMORY_BYTES => prop_assert_eq!(parse_memory(&text), Ok(b)),
                _ => prop_assert!(parse_memory(&text).is_err()),
            }
        }

        #[test]
        fn cpus_round_trip(hundredths in 1u32..=102_400) {
            let text = format!("{}.{:02}", hundredths / 100, hundredths % 100);
            let v = parse_cpus(&text).unwrap();
            prop_assert!((v - f64::from(hundredths) / 100.0).abs() < 1e-9);
        }

        #[test]
        fn cpuset_normalization_is_idempotent_and_exact(
            cpus in prop::collection::btree_set(0usize..64, 1..20),
            ncpus in 64usize..200,
        ) {
            // Give the set as a shuffled-looking list of single CPUs.
            let text = cpus.iter().rev().map(|c| c.to_string()).collect::<Vec<_>>().join(",");
            let norm = parse_cpuset(&text, ncpus).unwrap();
            prop_assert_eq!(parse_cpuset(&norm, ncpus), Ok(norm.clone()));
            // Expanding the normalized form gives back the same set.
            let mut expanded = std::collections::BTreeSet::new();
            for item in norm.split(',') {
                let (lo, hi) = item.split_once('-').unwrap_or((item, item));
                let (lo, hi): (usize, usize) = (lo.parse().unwrap(), hi.parse().unwrap());
                expanded.extend(lo..=hi);
            }
            prop_assert_eq!(expanded, cpus);
        }

        #[test]
        fn env_round_trip(k in "[A-Za-z_][A-Za-z0-9_]{0,20}", v in "[^\u{0}]{0,30}") {
            prop_assert_eq!(parse_env(&format!("{k}={v}")), Ok((k, v)));
        }

        #[test]
        fn valid_names_accepted(s in "[a-zA-Z0-9][a-zA-Z0-9_.-]{0,127}") {
            prop_assert_eq!(parse_container_name(&s), Ok(s.clone()));
            let lower = s.to_ascii_lowercase();
            prop_assert_eq!(parse_image_name(&lower), Ok(lower.clone()));
        }

        #[test]
        fn valid_hostnames_accepted(labels in prop::collection::vec("[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?", 1..4)) {
            let s = labels.join(".");
            prop_assert_eq!(parse_hostname(&s), Ok(s.clone()));
        }
    }
}
