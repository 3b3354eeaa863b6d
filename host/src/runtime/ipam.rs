//! Host-side IPv4 address management (IPAM) for a single network.
//!
//! A [`Pool`] owns one IPv4 subnet, its gateway address, and the set of
//! addresses currently handed out to containers. It is pure logic plus serde:
//! there is no file I/O here. The caller persists the pool (as JSON, with
//! atomic writes under a lock) and reloads it on the next command.
//!
//! # Why ranges instead of a bitmap or a list of addresses
//!
//! A `/8` has 16,777,214 usable hosts. A bitmap would cost 2 MiB per network
//! even when only one container is attached, and a JSON list of addresses
//! grows by ~12 bytes per container. Allocation is "lowest free address first",
//! so in practice the allocated set is a handful of dense runs. We therefore
//! store it as a sorted map of disjoint, non-adjacent, inclusive ranges
//! (`start -> end`, as `u32`), merging neighbours on insert and splitting on
//! release. Memory and the serialized form are proportional to the number of
//! *runs*, not to the subnet size: one million sequential allocations in a
//! `/8` serialize to about a hundred bytes.
//!
//! # Why validation on deserialize
//!
//! The state file lives on disk and may be edited, truncated or corrupted.
//! Deserialization goes through a raw representation ([`PoolRepr`]) and
//! `TryFrom`, which checks every invariant the allocator relies on (ranges
//! sorted, disjoint, within the usable hosts, not covering the gateway). A
//! tampered file yields an error instead of a panic or a pool that would hand
//! out duplicate or reserved addresses.
//!
//! # Arithmetic
//!
//! Addresses are handled as `u32`. Every `+ 1` / `- 1` is either proven in
//! range by the usable-host bounds (network + 1 ..= broadcast - 1) or done with
//! checked arithmetic, so `0.0.0.0/0` and `255.255.255.252/30` are safe.

use std::collections::BTreeMap;
use std::fmt;
use std::net::Ipv4Addr;

use ipnet::Ipv4Net;
use serde::{Deserialize, Serialize};

/// Errors produced by subnet/gateway parsing and by pool operations.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum IpamError {
    #[error("invalid subnet '{input}': {reason}")]
    InvalidSubnet { input: String, reason: String },
    #[error("invalid gateway '{input}': {reason}")]
    InvalidGateway { input: String, reason: String },
    #[error(
        "subnet {subnet} is too small: a network needs at least a /30 (a gateway and one container)"
    )]
    SubnetTooSmall { subnet: Ipv4Net },
    #[error("gateway {gateway} is not a usable host address of {subnet}")]
    GatewayOutsideSubnet { gateway: Ipv4Addr, subnet: Ipv4Net },
    #[error("no free address left in {subnet}")]
    Exhausted { subnet: Ipv4Net },
    #[error("address {addr} is not a usable host address of {subnet}")]
    NotInPool { addr: Ipv4Addr, subnet: Ipv4Net },
    #[error("address {addr} is already allocated in {subnet}")]
    AlreadyAllocated { addr: Ipv4Addr, subnet: Ipv4Net },
}

/// Largest prefix length that still leaves room for a gateway and one
/// container (a /30 has exactly two usable hosts).
const MAX_PREFIX: u8 = 30;

/// Version of the serialized format; bumped on incompatible changes.
const FORMAT_VERSION: u32 = 1;

/// Parses a subnet in CIDR notation.
///
/// Accepts `"10.0.0.0/24"` and, like Docker, `"10.0.0.1/24"` (host bits set),
/// which is normalized to `10.0.0.0/24`. Rejects a missing prefix length,
/// a prefix length above 32, IPv6, surrounding whitespace, the empty string and
/// anything else that is not strict `a.b.c.d/n`. The error names the input so
/// the CLI message is actionable.
///
/// This does not check the minimum size; [`Pool::new`] does.
pub fn parse_subnet(input: &str) -> Result<Ipv4Net, IpamError> {
    let err = |reason: &str| IpamError::InvalidSubnet {
        input: input.to_string(),
        reason: reason.to_string(),
    };
    if input.is_empty() {
        return Err(err("empty string"));
    }
    if input.trim() != input {
        return Err(err("leading or trailing whitespace"));
    }
    let Some((addr_part, prefix_part)) = input.split_once('/') else {
        return Err(err(
            "missing prefix length (expected CIDR like 10.0.0.0/24)",
        ));
    };
    if addr_part.contains(':') {
        return Err(err("IPv6 subnets are not supported"));
    }
    let addr: Ipv4Addr = addr_part
        .parse()
        .map_err(|_| err("not a valid IPv4 address before '/'"))?;
    // Only plain decimal digits: rejects "+24", "", "24/8", netmask notation.
    if prefix_part.is_empty() || !prefix_part.bytes().all(|b| b.is_ascii_digit()) {
        return Err(err("prefix length must be a number between 0 and 32"));
    }
    if prefix_part.len() > 2 {
        return Err(err("prefix length must be a number between 0 and 32"));
    }
    let prefix: u8 = prefix_part
        .parse()
        .map_err(|_| err("prefix length must be a number between 0 and 32"))?;
    let net = Ipv4Net::new(addr, prefix)
        .map_err(|_| err("prefix length must be a number between 0 and 32"))?;
    Ok(net.trunc())
}

/// Parses a gateway address: a plain IPv4 address without a prefix length.
pub fn parse_gateway(input: &str) -> Result<Ipv4Addr, IpamError> {
    let err = |reason: &str| IpamError::InvalidGateway {
        input: input.to_string(),
        reason: reason.to_string(),
    };
    if input.is_empty() {
        return Err(err("empty string"));
    }
    if input.trim() != input {
        return Err(err("leading or trailing whitespace"));
    }
    if input.contains('/') {
        return Err(err("expected a plain IPv4 address without a prefix length"));
    }
    if input.contains(':') {
        return Err(err("IPv6 gateways are not supported"));
    }
    input
        .parse::<Ipv4Addr>()
        .map_err(|_| err("not a valid IPv4 address"))
}

/// Address pool of one network.
///
/// Invariants (established by [`Pool::new`] and re-checked on deserialize):
/// - `subnet` is normalized and its prefix is at most 30;
/// - `gateway` is a usable host (not the network or broadcast address);
/// - `ranges` holds inclusive `start -> end` ranges that are sorted, disjoint
///   and non-adjacent, lie within the usable hosts and never cover the gateway;
/// - `count` equals the number of addresses covered by `ranges`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "PoolRepr", into = "PoolRepr")]
pub struct Pool {
    subnet: Ipv4Net,
    gateway: Ipv4Addr,
    ranges: BTreeMap<u32, u32>,
    count: u64,
}

/// On-disk representation of a [`Pool`]:
/// `{"version":1,"subnet":"10.0.0.0/8","gateway":"10.0.0.1","allocated":[[start,end],...]}`.
///
/// Ranges are inclusive `u32` pairs: compact, exact and trivially validated.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct PoolRepr {
    version: u32,
    subnet: Ipv4Net,
    gateway: Ipv4Addr,
    allocated: Vec<(u32, u32)>,
}

/// Why a serialized pool was rejected. Only surfaces through serde errors.
#[derive(Debug)]
struct InvalidPoolState(String);

impl fmt::Display for InvalidPoolState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid IPAM state: {}", self.0)
    }
}

impl From<IpamError> for InvalidPoolState {
    fn from(e: IpamError) -> Self {
        InvalidPoolState(e.to_string())
    }
}

impl From<Pool> for PoolRepr {
    fn from(pool: Pool) -> Self {
        PoolRepr {
            version: FORMAT_VERSION,
            subnet: pool.subnet,
            gateway: pool.gateway,
            allocated: pool.ranges.into_iter().collect(),
        }
    }
}

impl TryFrom<PoolRepr> for Pool {
    type Error = InvalidPoolState;

    fn try_from(repr: PoolRepr) -> Result<Self, Self::Error> {
        if repr.version != FORMAT_VERSION {
            return Err(InvalidPoolState(format!(
                "unsupported version {} (expected {FORMAT_VERSION})",
                repr.version
            )));
        }
        let mut pool = Pool::new(repr.subnet, Some(repr.gateway))?;
        let (lo, hi) = pool.usable_bounds();
        let gw = u32::from(pool.gateway);
        let mut prev_end: Option<u32> = None;
        for (start, end) in repr.allocated {
            let show = |s: u32, e: u32| format!("[{}, {}]", Ipv4Addr::from(s), Ipv4Addr::from(e));
            if start > end {
                return Err(InvalidPoolState(format!(
                    "range {} has start after end",
                    show(start, end)
                )));
            }
            if start < lo || end > hi {
                return Err(InvalidPoolState(format!(
                    "range {} is outside the usable hosts of {}",
                    show(start, end),
                    pool.subnet
                )));
            }
            if start <= gw && gw <= end {
                return Err(InvalidPoolState(format!(
                    "range {} covers the gateway {}",
                    show(start, end),
                    pool.gateway
                )));
            }
            if let Some(prev) = prev_end {
                if start <= prev {
                    return Err(InvalidPoolState(format!(
                        "range {} overlaps or is out of order",
                        show(start, end)
                    )));
                }
            }
            prev_end = Some(end);
            // Adjacent ranges are legal but not canonical: merge them so that
            // equality and the non-adjacency invariant hold.
            let merged_start = match pool.ranges.last_key_value() {
                // `prev_end < start` was checked above, so `start >= 1`.
                Some((&s, &e)) if e == start - 1 => {
                    pool.ranges.remove(&s);
                    s
                }
                _ => start,
            };
            pool.ranges.insert(merged_start, end);
            pool.count += u64::from(end - start) + 1;
        }
        Ok(pool)
    }
}

impl Pool {
    /// Creates an empty pool.
    ///
    /// `subnet` must already be normalized (`subnet.trunc()`, as returned by
    /// [`parse_subnet`]), otherwise [`IpamError::InvalidSubnet`]. Its prefix
    /// must be at most 30, otherwise [`IpamError::SubnetTooSmall`]: a /31 or
    /// /32 has no room for both a gateway and a container.
    ///
    /// `gateway`: `None` picks the first usable address (network + 1);
    /// `Some(g)` must be a usable host of the subnet (not the network nor the
    /// broadcast address), otherwise [`IpamError::GatewayOutsideSubnet`].
    pub fn new(subnet: Ipv4Net, gateway: Option<Ipv4Addr>) -> Result<Pool, IpamError> {
        if subnet.trunc() != subnet {
            return Err(IpamError::InvalidSubnet {
                input: subnet.to_string(),
                reason: format!("host bits are set (did you mean {}?)", subnet.trunc()),
            });
        }
        if subnet.prefix_len() > MAX_PREFIX {
            return Err(IpamError::SubnetTooSmall { subnet });
        }
        let mut pool = Pool {
            subnet,
            gateway: Ipv4Addr::UNSPECIFIED,
            ranges: BTreeMap::new(),
            count: 0,
        };
        let (lo, hi) = pool.usable_bounds();
        let gw = match gateway {
            None => lo,
            Some(g) => {
                let g32 = u32::from(g);
                if g32 < lo || g32 > hi {
                    return Err(IpamError::GatewayOutsideSubnet { gateway: g, subnet });
                }
                g32
            }
        };
        pool.gateway = Ipv4Addr::from(gw);
        Ok(pool)
    }

    /// The (normalized) subnet managed by this pool.
    pub fn subnet(&self) -> Ipv4Net {
        self.subnet
    }

    /// The gateway address; it is reserved and never allocated.
    pub fn gateway(&self) -> Ipv4Addr {
        self.gateway
    }

    /// Inclusive bounds of the usable host addresses (network + 1 ..= broadcast - 1).
    ///
    /// The prefix is at most 30, so broadcast >= network + 3 and neither
    /// subtraction nor addition can overflow.
    fn usable_bounds(&self) -> (u32, u32) {
        let network = u32::from(self.subnet.network());
        let broadcast = u32::from(self.subnet.broadcast());
        (network + 1, broadcast - 1)
    }

    /// True if `addr` can ever be handed to a container: a usable host other
    /// than the gateway.
    fn is_assignable(&self, addr: u32) -> bool {
        let (lo, hi) = self.usable_bounds();
        lo <= addr && addr <= hi && addr != u32::from(self.gateway)
    }

    /// The range covering `addr`, if any (O(log n)).
    fn covering(&self, addr: u32) -> Option<(u32, u32)> {
        self.ranges
            .range(..=addr)
            .next_back()
            .filter(|(_, &end)| end >= addr)
            .map(|(&s, &e)| (s, e))
    }

    /// Allocates the lowest free address.
    ///
    /// Never returns the network address, the broadcast address or the
    /// gateway. Runs in O(log n) in the number of ranges: from the lowest
    /// candidate it jumps past the covering range, then past the gateway, at
    /// most a few times (ranges are non-adjacent, so the address after a range
    /// is free unless it is the gateway).
    pub fn allocate(&mut self) -> Result<Ipv4Addr, IpamError> {
        let (lo, hi) = self.usable_bounds();
        let gw = u32::from(self.gateway);
        let mut candidate = lo;
        loop {
            if candidate > hi {
                return Err(IpamError::Exhausted {
                    subnet: self.subnet,
                });
            }
            if candidate == gw {
                candidate = match candidate.checked_add(1) {
                    Some(c) => c,
                    None => {
                        return Err(IpamError::Exhausted {
                            subnet: self.subnet,
                        })
                    }
                };
                continue;
            }
            if let Some((_, end)) = self.covering(candidate) {
                candidate = match end.checked_add(1) {
                    Some(c) => c,
                    None => {
                        return Err(IpamError::Exhausted {
                            subnet: self.subnet,
                        })
                    }
                };
                continue;
            }
            self.insert(candidate);
            return Ok(Ipv4Addr::from(candidate));
        }
    }

    /// Claims a specific address, e.g. when re-attaching persisted container
    /// state.
    ///
    /// Errors: [`IpamError::NotInPool`] if `addr` is not a usable host of the
    /// subnet or is the gateway; [`IpamError::AlreadyAllocated`] if taken.
    pub fn allocate_specific(&mut self, addr: Ipv4Addr) -> Result<(), IpamError> {
        let a = u32::from(addr);
        if !self.is_assignable(a) {
            return Err(IpamError::NotInPool {
                addr,
                subnet: self.subnet,
            });
        }
        if self.covering(a).is_some() {
            return Err(IpamError::AlreadyAllocated {
                addr,
                subnet: self.subnet,
            });
        }
        self.insert(a);
        Ok(())
    }

    /// Inserts a free, assignable address, merging with neighbouring ranges.
    fn insert(&mut self, a: u32) {
        debug_assert!(self.is_assignable(a) && self.covering(a).is_none());
        // `a` is assignable, so network < a < broadcast: a - 1 and a + 1 cannot
        // overflow. Use checked ops anyway so a broken invariant cannot panic.
        let left = a.checked_sub(1).and_then(|p| {
            self.ranges
                .range(..=p)
                .next_back()
                .filter(|(_, &e)| e == p)
                .map(|(&s, _)| s)
        });
        let right_end = a
            .checked_add(1)
            .and_then(|n| self.ranges.get(&n).copied().map(|e| (n, e)));
        let start = left.unwrap_or(a);
        let end = match right_end {
            Some((n, e)) => {
                self.ranges.remove(&n);
                e
            }
            None => a,
        };
        // Overwrites the left neighbour's entry when merging left.
        self.ranges.insert(start, end);
        self.count += 1;
    }

    /// Releases `addr`. Returns `true` if it was allocated; `false` means
    /// there was nothing to do (releasing twice, or an address outside the
    /// pool, is not an error so that cleanup paths stay idempotent).
    pub fn release(&mut self, addr: Ipv4Addr) -> bool {
        let a = u32::from(addr);
        let Some((start, end)) = self.covering(a) else {
            return false;
        };
        self.ranges.remove(&start);
        if start < a {
            self.ranges.insert(start, a - 1);
        }
        if a < end {
            self.ranges.insert(a + 1, end);
        }
        self.count -= 1;
        true
    }

    /// True if `addr` is currently allocated.
    pub fn is_allocated(&self, addr: Ipv4Addr) -> bool {
        self.covering(u32::from(addr)).is_some()
    }

    /// Number of allocated addresses.
    pub fn allocated_count(&self) -> u64 {
        self.count
    }

    /// All allocated addresses in ascending order (for inspect / gc).
    ///
    /// Note that this materializes every address; use it for reporting, not
    /// on hot paths.
    pub fn allocated(&self) -> Vec<Ipv4Addr> {
        self.ranges
            .iter()
            .flat_map(|(&s, &e)| (s..=e).map(Ipv4Addr::from))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::BTreeSet;

    fn net(s: &str) -> Ipv4Net {
        parse_subnet(s).unwrap()
    }

    fn ip(s: &str) -> Ipv4Addr {
        s.parse().unwrap()
    }

    #[test]
    fn slash24_allocates_2_to_254_then_exhausted() {
        let mut p = Pool::new(net("10.0.0.0/24"), None).unwrap();
        assert_eq!(p.gateway(), ip("10.0.0.1"));
        for i in 2..=254u8 {
            assert_eq!(p.allocate().unwrap(), Ipv4Addr::new(10, 0, 0, i));
        }
        assert_eq!(
            p.allocate(),
            Err(IpamError::Exhausted {
                subnet: net("10.0.0.0/24")
            })
        );
        assert_eq!(p.allocated_count(), 253);
        assert!(!p.is_allocated(ip("10.0.0.1")));
        assert!(!p.is_allocated(ip("10.0.0.0")));
        assert!(!p.is_allocated(ip("10.0.0.255")));
        // One contiguous run -> one range.
        assert_eq!(p.ranges.len(), 1);
    }

    #[test]
    fn custom_gateway_254_first_alloc_is_1() {
        let mut p = Pool::new(net("10.0.0.0/24"), Some(ip("10.0.0.254"))).unwrap();
        assert_eq!(p.allocate().unwrap(), ip("10.0.0.1"));
        assert_eq!(p.allocate().unwrap(), ip("10.0.0.2"));
    }

    #[test]
    fn gateway_in_middle_is_skipped() {
        let mut p = Pool::new(net("10.0.0.0/29"), Some(ip("10.0.0.3"))).unwrap();
        let got: Vec<_> = std::iter::from_fn(|| p.allocate().ok()).collect();
        assert_eq!(
            got,
            vec![
                ip("10.0.0.1"),
                ip("10.0.0.2"),
                ip("10.0.0.4"),
                ip("10.0.0.5"),
                ip("10.0.0.6")
            ]
        );
    }

    #[test]
    fn release_then_reallocate_returns_lowest_freed() {
        let mut p = Pool::new(net("10.0.0.0/24"), None).unwrap();
        for _ in 0..10 {
            p.allocate().unwrap();
        }
        assert!(p.release(ip("10.0.0.7")));
        assert!(p.release(ip("10.0.0.4")));
        assert!(!p.release(ip("10.0.0.4")), "double release is a no-op");
        assert!(!p.release(ip("10.0.0.1")), "gateway is never allocated");
        assert!(!p.release(ip("192.168.0.1")));
        assert_eq!(p.allocated_count(), 8);
        assert_eq!(p.allocate().unwrap(), ip("10.0.0.4"));
        assert_eq!(p.allocate().unwrap(), ip("10.0.0.7"));
        assert_eq!(p.allocate().unwrap(), ip("10.0.0.12"));
    }

    #[test]
    fn slash30_gives_exactly_one() {
        let mut p = Pool::new(net("192.168.1.0/30"), None).unwrap();
        assert_eq!(p.allocate().unwrap(), ip("192.168.1.2"));
        assert!(matches!(p.allocate(), Err(IpamError::Exhausted { .. })));
    }

    #[test]
    fn slash31_and_slash32_rejected() {
        for s in ["10.0.0.0/31", "10.0.0.0/32"] {
            let n = net(s);
            assert_eq!(
                Pool::new(n, None),
                Err(IpamError::SubnetTooSmall { subnet: n })
            );
        }
    }

    #[test]
    fn unnormalized_subnet_rejected_by_new() {
        let n: Ipv4Net = "10.0.0.1/24".parse().unwrap();
        assert!(matches!(
            Pool::new(n, None),
            Err(IpamError::InvalidSubnet { .. })
        ));
    }

    #[test]
    fn parse_subnet_normalizes_host_bits() {
        assert_eq!(parse_subnet("10.0.0.1/24").unwrap(), net("10.0.0.0/24"));
        assert_eq!(
            parse_subnet("10.0.0.0/24").unwrap().to_string(),
            "10.0.0.0/24"
        );
        assert_eq!(parse_subnet("0.0.0.0/0").unwrap().prefix_len(), 0);
        assert_eq!(parse_subnet("10.1.2.3/32").unwrap().prefix_len(), 32);
    }

    #[test]
    fn parse_subnet_rejects_bad_inputs() {
        for bad in [
            "",
            "10.0.0.0",
            "10.0.0.0/33",
            "abc/24",
            "::1/64",
            " 10.0.0.0/24",
            "10.0.0.0/24 ",
            "10.0.0.0/",
            "/24",
            "10.0.0.0/+24",
            "10.0.0.0/-1",
            "10.0.0.0/255.255.255.0",
            "10.0.0.0/24/8",
            "10.0.0/24",
            "10.0.0.256/24",
            "10.0.0.0/0024",
            "10.0.0.0/99999999999999999999",
        ] {
            match parse_subnet(bad) {
                Err(IpamError::InvalidSubnet { input, reason }) => {
                    assert_eq!(input, bad);
                    assert!(!reason.is_empty());
                    let msg = parse_subnet(bad).unwrap_err().to_string();
                    assert!(msg.contains(&format!("'{bad}'")), "{msg}");
                }
                other => panic!("{bad:?} gave {other:?}"),
            }
        }
    }

    #[test]
    fn parse_gateway_works() {
        assert_eq!(parse_gateway("10.0.0.1").unwrap(), ip("10.0.0.1"));
        for bad in ["", "10.0.0.1/24", " 10.0.0.1", "x", "::1", "10.0.0.256"] {
            assert!(
                matches!(parse_gateway(bad), Err(IpamError::InvalidGateway { ref input, .. }) if input == bad),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn gateway_must_be_usable_host() {
        let n = net("10.0.0.0/24");
        for g in ["10.0.1.1", "10.0.0.0", "10.0.0.255", "0.0.0.0"] {
            assert_eq!(
                Pool::new(n, Some(ip(g))),
                Err(IpamError::GatewayOutsideSubnet {
                    gateway: ip(g),
                    subnet: n
                })
            );
        }
        assert!(Pool::new(n, Some(ip("10.0.0.254"))).is_ok());
    }

    #[test]
    fn allocate_specific_errors() {
        let n = net("10.0.0.0/24");
        let mut p = Pool::new(n, None).unwrap();
        p.allocate_specific(ip("10.0.0.50")).unwrap();
        assert!(p.is_allocated(ip("10.0.0.50")));
        assert_eq!(
            p.allocate_specific(ip("10.0.0.50")),
            Err(IpamError::AlreadyAllocated {
                addr: ip("10.0.0.50"),
                subnet: n
            })
        );
        for bad in ["10.0.0.0", "10.0.0.255", "10.0.0.1", "10.0.1.5"] {
            assert_eq!(
                p.allocate_specific(ip(bad)),
                Err(IpamError::NotInPool {
                    addr: ip(bad),
                    subnet: n
                })
            );
        }
        // Fill the gap around .50 and check merging.
        p.allocate_specific(ip("10.0.0.49")).unwrap();
        p.allocate_specific(ip("10.0.0.51")).unwrap();
        assert_eq!(p.ranges.len(), 1);
        assert_eq!(p.allocate().unwrap(), ip("10.0.0.2"));
        assert_eq!(
            p.allocated(),
            vec![
                ip("10.0.0.2"),
                ip("10.0.0.49"),
                ip("10.0.0.50"),
                ip("10.0.0.51")
            ]
        );
    }

    #[test]
    fn extremes_do_not_overflow() {
        // Top of the address space.
        let n = net("255.255.255.252/30");
        let mut p = Pool::new(n, None).unwrap();
        assert_eq!(p.allocate().unwrap(), ip("255.255.255.254"));
        assert!(matches!(p.allocate(), Err(IpamError::Exhausted { .. })));
        assert!(!p.is_allocated(ip("255.255.255.255")));
        assert!(!p.release(ip("255.255.255.255")));
        assert!(matches!(
            p.allocate_specific(ip("255.255.255.255")),
            Err(IpamError::NotInPool { .. })
        ));
        assert!(p.release(ip("255.255.255.254")));

        // Whole address space, gateway at the very top.
        let n = net("0.0.0.0/0");
        let mut p = Pool::new(n, Some(ip("255.255.255.254"))).unwrap();
        assert_eq!(p.allocate().unwrap(), ip("0.0.0.1"));
        p.allocate_specific(ip("255.255.255.253")).unwrap();
        assert!(matches!(
            p.allocate_specific(ip("255.255.255.255")),
            Err(IpamError::NotInPool { .. })
        ));
        assert!(matches!(
            p.allocate_specific(ip("0.0.0.0")),
            Err(IpamError::NotInPool { .. })
        ));
        let json = serde_json::to_string(&p).unwrap();
        assert_eq!(serde_json::from_str::<Pool>(&json).unwrap(), p);
    }

    #[test]
    fn serde_round_trip_and_format() {
        let mut p = Pool::new(net("10.0.0.0/24"), Some(ip("10.0.0.1"))).unwrap();
        for _ in 0..5 {
            p.allocate().unwrap();
        }
        p.allocate_specific(ip("10.0.0.100")).unwrap();
        p.release(ip("10.0.0.4"));
        let json = serde_json::to_string(&p).unwrap();
        assert_eq!(
            json,
            r#"{"version":1,"subnet":"10.0.0.0/24","gateway":"10.0.0.1","allocated":[[167772162,167772163],[167772165,167772166],[167772260,167772260]]}"#
        );
        let back: Pool = serde_json::from_str(&json).unwrap();
        assert_eq!(back, p);
        assert_eq!(back.allocated_count(), 5);
        // Empty pool round-trips too.
        let e = Pool::new(net("172.17.0.0/16"), None).unwrap();
        let back: Pool = serde_json::from_str(&serde_json::to_string(&e).unwrap()).unwrap();
        assert_eq!(back, e);
    }

    #[test]
    fn deserialize_merges_adjacent_ranges() {
        let json = r#"{"version":1,"subnet":"10.0.0.0/24","gateway":"10.0.0.1","allocated":[[167772162,167772163],[167772164,167772165]]}"#;
        let p: Pool = serde_json::from_str(json).unwrap();
        assert_eq!(p.ranges.len(), 1);
        assert_eq!(p.allocated_count(), 4);
        let mut q = Pool::new(net("10.0.0.0/24"), None).unwrap();
        for _ in 0..4 {
            q.allocate().unwrap();
        }
        assert_eq!(p, q);
    }

    #[test]
    fn tampered_json_rejected() {
        // 10.0.0.0 = 167772160, .1 = ..161, .255 = ..415
        let cases = [
            // overlapping
            r#"{"version":1,"subnet":"10.0.0.0/24","gateway":"10.0.0.1","allocated":[[167772162,167772170],[167772165,167772180]]}"#,
            // unsorted
            r#"{"version":1,"subnet":"10.0.0.0/24","gateway":"10.0.0.1","allocated":[[167772200,167772210],[167772162,167772170]]}"#,
            // duplicate
            r#"{"version":1,"subnet":"10.0.0.0/24","gateway":"10.0.0.1","allocated":[[167772162,167772162],[167772162,167772162]]}"#,
            // start > end
            r#"{"version":1,"subnet":"10.0.0.0/24","gateway":"10.0.0.1","allocated":[[167772170,167772162]]}"#,
            // outside subnet
            r#"{"version":1,"subnet":"10.0.0.0/24","gateway":"10.0.0.1","allocated":[[167772500,167772510]]}"#,
            // covers broadcast
            r#"{"version":1,"subnet":"10.0.0.0/24","gateway":"10.0.0.1","allocated":[[167772400,167772415]]}"#,
            // covers network
            r#"{"version":1,"subnet":"10.0.0.0/24","gateway":"10.0.0.254","allocated":[[167772160,167772162]]}"#,
            // contains gateway
            r#"{"version":1,"subnet":"10.0.0.0/24","gateway":"10.0.0.1","allocated":[[167772161,167772170]]}"#,
            r#"{"version":1,"subnet":"10.0.0.0/24","gateway":"10.0.0.100","allocated":[[167772162,167772300]]}"#,
            // gateway outside subnet / is broadcast
            r#"{"version":1,"subnet":"10.0.0.0/24","gateway":"10.0.1.1","allocated":[]}"#,
            r#"{"version":1,"subnet":"10.0.0.0/24","gateway":"10.0.0.255","allocated":[]}"#,
            // subnet with host bits / too small
            r#"{"version":1,"subnet":"10.0.0.1/24","gateway":"10.0.0.2","allocated":[]}"#,
            r#"{"version":1,"subnet":"10.0.0.0/31","gateway":"10.0.0.1","allocated":[]}"#,
            // wrong version
            r#"{"version":2,"subnet":"10.0.0.0/24","gateway":"10.0.0.1","allocated":[]}"#,
            // wrong types
            r#"{"version":"1","subnet":"10.0.0.0/24","gateway":"10.0.0.1","allocated":[]}"#,
            r#"{"version":1,"subnet":24,"gateway":"10.0.0.1","allocated":[]}"#,
            r#"{"version":1,"subnet":"10.0.0.0/24","gateway":"10.0.0.1","allocated":["10.0.0.2"]}"#,
            r#"{"version":1,"subnet":"10.0.0.0/24","gateway":"10.0.0.1","allocated":[[1,2,3]]}"#,
            r#"{"version":1,"subnet":"10.0.0.0/24","gateway":"10.0.0.1","allocated":[[-1,2]]}"#,
            r#"{"version":1,"subnet":"10.0.0.0/24","gateway":"10.0.0.1","allocated":[[4294967296,4294967296]]}"#,
            r#"{"version":1,"subnet":"10.0.0.0/24","gateway":"10.0.0.1","allocated":{}}"#,
            r#"{"version":1,"subnet":"fe80::/64","gateway":"10.0.0.1","allocated":[]}"#,
            // missing / unknown fields, garbage
            r#"{"version":1,"subnet":"10.0.0.0/24","allocated":[]}"#,
            r#"{"version":1,"subnet":"10.0.0.0/24","gateway":"10.0.0.1","allocated":[],"extra":1}"#,
            r#"[]"#,
            r#"null"#,
            r#""#,
            r#"{"version":1,"subnet":"10.0.0.0/24","gateway":"10.0.0.1","allocated":[[167772162,"#,
        ];
        for c in cases {
            assert!(serde_json::from_str::<Pool>(c).is_err(), "accepted: {c}");
        }
        // The error message explains the problem.
        let err = serde_json::from_str::<Pool>(cases[7])
            .unwrap_err()
            .to_string();
        assert!(err.contains("gateway"), "{err}");
    }

    #[test]
    fn million_sequential_in_slash8_is_fast_and_tiny() {
        let mut p = Pool::new(net("10.0.0.0/8"), None).unwrap();
        for _ in 0..1_000_000 {
            p.allocate().unwrap();
        }
        assert_eq!(p.allocated_count(), 1_000_000);
        // One more allocate: O(log n), jumps past the single range.
        let next = p.allocate().unwrap();
        assert_eq!(u32::from(next), u32::from(ip("10.0.0.2")) + 1_000_000);
        let json = serde_json::to_string(&p).unwrap();
        eprintln!("1M sequential in /8: {} bytes", json.len());
        assert!(json.len() < 1024, "{} bytes", json.len());
    }

    #[test]
    fn every_other_100k_in_slash8_under_10mb() {
        let mut p = Pool::new(net("10.0.0.0/8"), None).unwrap();
        let base = u32::from(ip("10.0.0.2"));
        for i in 0..100_000u32 {
            p.allocate_specific(Ipv4Addr::from(base + 2 * i)).unwrap();
        }
        assert_eq!(p.allocated_count(), 100_000);
        // Lowest free is the first hole.
        assert_eq!(p.allocate().unwrap(), ip("10.0.0.3"));
        let json = serde_json::to_string(&p).unwrap();
        eprintln!("100k every-other in /8: {} bytes", json.len());
        assert!(json.len() < 10 * 1024 * 1024, "{} bytes", json.len());
        assert_eq!(serde_json::from_str::<Pool>(&json).unwrap(), p);
    }

    #[test]
    fn random_100k_in_slash8_under_10mb() {
        let n = net("10.0.0.0/8");
        let mut p = Pool::new(n, None).unwrap();
        let base = u32::from(n.network());
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
        let mut model = BTreeSet::new();
        while model.len() < 100_000 {
            // xorshift64
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let a = base + (x % (1 << 24)) as u32;
            let r = p.allocate_specific(Ipv4Addr::from(a));
            if r.is_ok() {
                model.insert(a);
            }
        }
        assert_eq!(p.allocated_count(), 100_000);
        let json = serde_json::to_string(&p).unwrap();
        eprintln!("100k random in /8: {} bytes", json.len());
        assert!(json.len() < 10 * 1024 * 1024, "{} bytes", json.len());
        let back: Pool = serde_json::from_str(&json).unwrap();
        assert_eq!(back, p);
        let got: Vec<u32> = back.allocated().into_iter().map(u32::from).collect();
        assert_eq!(got, model.into_iter().collect::<Vec<_>>());
    }

    #[derive(Debug, Clone)]
    enum Op {
        Allocate,
        Release(u32),
        AllocateSpecific(u32),
    }

    fn op_strategy() -> impl Strategy<Value = Op> {
        prop_oneof![
            4 => Just(Op::Allocate),
            2 => any::<u32>().prop_map(Op::Release),
            1 => any::<u32>().prop_map(Op::AllocateSpecific),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        #[test]
        fn matches_model(
            base in any::<u32>(),
            prefix in 22u8..=30,
            gw_choice in proptest::option::of(any::<u32>()),
            ops in proptest::collection::vec(op_strategy(), 0..400),
        ) {
            let subnet = Ipv4Net::new(Ipv4Addr::from(base), prefix).unwrap().trunc();
            let network = u32::from(subnet.network());
            let broadcast = u32::from(subnet.broadcast());
            let size = broadcast - network + 1;
            let gateway = gw_choice.map(|g| Ipv4Addr::from(network + 1 + g % (size - 2)));
            let mut pool = Pool::new(subnet, gateway).unwrap();
            let gw = u32::from(pool.gateway());
            prop_assert!(gw > network && gw < broadcast);
            if gateway.is_none() {
                prop_assert_eq!(gw, network + 1);
            }
            let mut model: BTreeSet<u32> = BTreeSet::new();
            let lowest_free = |m: &BTreeSet<u32>| {
                (network + 1..broadcast).find(|a| *a != gw && !m.contains(a))
            };
            // Map an arbitrary u32 to an address near the subnet (including
            // network, broadcast, gateway and a few outside addresses).
            let pick = |r: u32| network.wrapping_add(r % (size + 4)).wrapping_sub(2);

            for op in ops {
                match op {
                    Op::Allocate => {
                        let got = pool.allocate();
                        match lowest_free(&model) {
                            Some(expected) => {
                                prop_assert_eq!(got, Ok(Ipv4Addr::from(expected)));
                                model.insert(expected);
                            }
                            None => prop_assert_eq!(got, Err(IpamError::Exhausted { subnet })),
                        }
                    }
                    Op::Release(r) => {
                        let a = pick(r);
                        prop_assert_eq!(pool.release(Ipv4Addr::from(a)), model.remove(&a));
                    }
                    Op::AllocateSpecific(r) => {
                        let a = pick(r);
                        let got = pool.allocate_specific(Ipv4Addr::from(a));
                        let addr = Ipv4Addr::from(a);
                        if a <= network || a >= broadcast || a == gw {
                            prop_assert_eq!(got, Err(IpamError::NotInPool { addr, subnet }));
                        } else if model.contains(&a) {
                            prop_assert_eq!(got, Err(IpamError::AlreadyAllocated { addr, subnet }));
                        } else {
                            prop_assert_eq!(got, Ok(()));
                            model.insert(a);
                        }
                    }
                }
                prop_assert_eq!(pool.allocated_count(), model.len() as u64);
            }

            // Never network/broadcast/gateway, no duplicates, same set.
            let got: Vec<u32> = pool.allocated().into_iter().map(u32::from).collect();
            let want: Vec<u32> = model.iter().copied().collect();
            prop_assert_eq!(&got, &want);
            prop_assert!(!model.contains(&network) && !model.contains(&broadcast) && !model.contains(&gw));
            for a in network.saturating_sub(1)..=broadcast.saturating_add(1) {
                prop_assert_eq!(pool.is_allocated(Ipv4Addr::from(a)), model.contains(&a));
            }
            // Ranges are canonical: sorted, disjoint, non-adjacent.
            let mut prev: Option<u32> = None;
            for (&s, &e) in &pool.ranges {
                prop_assert!(s <= e);
                if let Some(p) = prev {
                    prop_assert!(s > p + 1 || (s == p + 2 && p + 1 == gw));
                }
                prev = Some(e);
            }
            let json = serde_json::to_string(&pool).unwrap();
            let back: Pool = serde_json::from_str(&json).unwrap();
            prop_assert_eq!(back, pool);
        }

        #[test]
        fn arbitrary_json_never_panics(s in ".{0,200}") {
            let _ = serde_json::from_str::<Pool>(&s);
        }

        #[test]
        fn arbitrary_ranges_never_panic(
            ranges in proptest::collection::vec((any::<u32>(), any::<u32>()), 0..8),
            prefix in 0u8..=32,
            base in any::<u32>(),
            gw in any::<u32>(),
        ) {
            let subnet = Ipv4Net::new(Ipv4Addr::from(base), prefix).unwrap().trunc();
            let json = serde_json::json!({
                "version": 1,
                "subnet": subnet.to_string(),
                "gateway": Ipv4Addr::from(gw).to_string(),
                "allocated": ranges,
            });
            if let Ok(mut p) = serde_json::from_value::<Pool>(json) {
                // Whatever was accepted must behave.
                let before = p.allocated_count();
                if let Ok(a) = p.allocate() {
                    prop_assert!(p.is_allocated(a));
                    prop_assert_eq!(p.allocated_count(), before + 1);
                    prop_assert!(a != p.gateway());
                }
            }
        }

        #[test]
        fn parse_subnet_never_panics(s in ".{0,40}") {
            if let Ok(n) = parse_subnet(&s) {
                prop_assert_eq!(n, n.trunc());
            }
            let _ = parse_gateway(&s);
        }
    }
}
