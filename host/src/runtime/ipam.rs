//! Host-side IPv4 address management (IPAM) for a single network.
//!
//! A [`Pool`] owns one IPv4 subnet, its gateway address, and the set of
//! addresses currently handed out to containers. It is pure logic plus serde:
//! there is no file I/O here. The caller persists the pool (as JSON, with
//! atomic writes under a lock) and reloads it on the next command.
//!
//! # Why ranges in memory, and ranges *or* a bitmap on disk
//!
//! A `/8` has 16,777,214 usable hosts. A bitmap would cost 2 MiB per network
//! even when only one container is attached, and a JSON list of addresses
//! grows by ~12 bytes per container. Allocation is "lowest free address first",
//! so in practice the allocated set is a handful of dense runs. In memory we
//! therefore keep it as a sorted map of disjoint, non-adjacent, inclusive
//! ranges (`start -> end`, as `u32`), merging neighbours on insert and
//! splitting on release: allocation is O(log n) in the number of runs, and one
//! million sequential allocations in a `/8` serialize to about a hundred bytes.
//!
//! A *fragmented* set (every other address, or random addresses after churn)
//! has as many runs as addresses, and a range list of a million runs is
//! ~20 MB of JSON. So the on-disk form is hybrid: when serializing we estimate
//! both encodings cheaply (the range list's exact JSON length from digit
//! counts, the bitmap's from its span) and write the smaller one:
//!
//! - `"allocated": [[start, end], ...]` (few runs), or
//! - `"bitmap": {"start": s, "len": n, "bits": "<base64>"}`, where bit `i`
//!   (least significant bit first within each byte) says whether address
//!   `s + i` is allocated; it spans the first to the last allocated address.
//!
//! The bitmap never exceeds one bit per usable host, so the state file is
//! bounded whatever the pattern: for a `/8` at most 2 MiB of bits, i.e.
//! ~2.8 MB of base64 (the range list is only chosen when it is smaller still).
//! Building the bitmap costs O(span / 8 + runs) (whole bytes are filled at
//! once) and decoding it skips all-zero / all-one 64-bit words and walks only
//! the bit transitions inside the others, so both stay proportional to the
//! bytes on disk plus the number of runs.
//!
//! # Why validation on deserialize
//!
//! The state file lives on disk and may be edited, truncated or corrupted.
//! Deserialization goes through a raw representation ([`PoolRepr`]) and
//! `TryFrom`, which checks every invariant the allocator relies on (ranges
//! sorted, disjoint, within the usable hosts, not covering the gateway; a
//! bitmap within the usable hosts, gateway bit clear, padding bits zero,
//! length consistent, canonical base64, and never together with ranges). A
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
///
/// Serialized through [`PoolRepr`]: as a range list or as a bitmap, whichever
/// is smaller (see the module documentation).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(try_from = "PoolRepr")]
pub struct Pool {
    subnet: Ipv4Net,
    gateway: Ipv4Addr,
    ranges: BTreeMap<u32, u32>,
    count: u64,
}

/// On-disk representation of a [`Pool`], compact JSON, one of:
///
/// - `{"version":1,"subnet":"10.0.0.0/8","gateway":"10.0.0.1","allocated":[[start,end],...]}`
/// - `{"version":1,"subnet":"10.0.0.0/8","gateway":"10.0.0.1","allocated":[],"bitmap":{"start":s,"len":n,"bits":"<base64>"}}`
///
/// Ranges are inclusive `u32` pairs: compact for a few runs, exact and
/// trivially validated. The bitmap bounds the size for fragmented sets. At
/// most one of a non-empty `allocated` and `bitmap` may be present; both
/// absent (or `allocated` empty without `bitmap`) is an empty pool. A file
/// with a bitmap is rejected by older readers (unknown field) rather than
/// silently read as an empty pool.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct PoolRepr {
    version: u32,
    subnet: Ipv4Net,
    gateway: Ipv4Addr,
    #[serde(default)]
    allocated: Vec<(u32, u32)>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "deserialize_present"
    )]
    bitmap: Option<BitmapRepr>,
}

/// Allocated addresses as a bitmap: bit `i` (least significant bit first
/// within each byte) is set iff address `start + i` is allocated, for
/// `i < len`. `bits` is standard, padded base64 of exactly `ceil(len / 8)`
/// bytes; the unused high bits of the last byte are zero.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct BitmapRepr {
    start: u32,
    len: u32,
    bits: String,
}

/// `"bitmap": null` is rejected: the field is either absent or a bitmap.
fn deserialize_present<'de, D>(deserializer: D) -> Result<Option<BitmapRepr>, D::Error>
where
    D: serde::Deserializer<'de>,
{
    BitmapRepr::deserialize(deserializer).map(Some)
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

/// Number of decimal digits of `n`.
fn decimal_len(n: u32) -> usize {
    n.checked_ilog10().map_or(1, |l| l as usize + 1)
}

/// Length of the base64 (standard, padded) encoding of `bytes` bytes.
fn base64_len(bytes: usize) -> usize {
    bytes.div_ceil(3) * 4
}

/// Number of bytes of a bitmap of `len` bits.
fn bitmap_bytes(len: u32) -> usize {
    (len as usize).div_ceil(8)
}

/// Sets bits `from..=to` of an LSB-first bitmap, whole bytes at a time.
fn set_bits(buf: &mut [u8], from: usize, to: usize) {
    debug_assert!(from <= to && to / 8 < buf.len());
    let (first_byte, first_bit) = (from / 8, from % 8);
    let (last_byte, last_bit) = (to / 8, to % 8);
    let head = 0xFFu8 << first_bit;
    let tail = 0xFFu8 >> (7 - last_bit);
    if first_byte == last_byte {
        buf[first_byte] |= head & tail;
    } else {
        buf[first_byte] |= head;
        buf[first_byte + 1..last_byte].fill(0xFF);
        buf[last_byte] |= tail;
    }
}

impl Pool {
    /// Exact length of the compact JSON of the range list between the
    /// brackets of `"allocated":[...]`.
    ///
    /// O(1) when the lowest and the highest allocated address have as many
    /// decimal digits (then all do, e.g. anywhere in 10.0.0.0/8); otherwise
    /// the digits are counted, O(runs).
    fn ranges_json_len(&self) -> usize {
        let n = self.ranges.len();
        let (Some((&first, _)), Some((_, &last))) =
            (self.ranges.first_key_value(), self.ranges.last_key_value())
        else {
            return 0;
        };
        // "[s,e]" per range, plus a comma between ranges.
        let digits = decimal_len(first);
        if digits == decimal_len(last) {
            return n * (2 * digits + 4) - 1;
        }
        let items: usize = self
            .ranges
            .iter()
            .map(|(&s, &e)| decimal_len(s) + decimal_len(e) + 3)
            .sum();
        items + n - 1
    }

    /// `(start, len)` of the bitmap: from the first to the last allocated
    /// address. `None` for an empty pool.
    fn bitmap_span(&self) -> Option<(u32, u32)> {
        let (&first, _) = self.ranges.first_key_value()?;
        let (_, &last) = self.ranges.last_key_value()?;
        // first >= network + 1 >= 1 and last <= u32::MAX - 1: no overflow.
        Some((first, last - first + 1))
    }

    /// Exact length of the compact JSON of `,"bitmap":{...}`, i.e. what the
    /// bitmap form adds to a pool with an empty `"allocated":[]`.
    fn bitmap_json_len(&self) -> Option<usize> {
        let (start, len) = self.bitmap_span()?;
        // ,"bitmap":{"start":  ,"len":  ,"bits":"  "}
        Some(
            r#","bitmap":{"start":,"len":,"bits":""}"#.len()
                + decimal_len(start)
                + decimal_len(len)
                + base64_len(bitmap_bytes(len)),
        )
    }

    /// True if the bitmap form is strictly smaller than the range list.
    /// Cheap: O(1) for the bitmap, O(runs) digit counting for the ranges.
    fn prefer_bitmap(&self) -> bool {
        self.bitmap_json_len()
            .is_some_and(|bitmap| bitmap < self.ranges_json_len())
    }

    /// The bitmap form; O(span / 8 + runs). `None` for an empty pool.
    fn encode_bitmap(&self) -> Option<BitmapRepr> {
        use base64::Engine as _;
        let (start, len) = self.bitmap_span()?;
        let mut buf = vec![0u8; bitmap_bytes(len)];
        for (&s, &e) in &self.ranges {
            set_bits(&mut buf, (s - start) as usize, (e - start) as usize);
        }
        Some(BitmapRepr {
            start,
            len,
            bits: base64::engine::general_purpose::STANDARD.encode(&buf),
        })
    }

    /// Validates a bitmap against this (empty) pool's subnet and gateway and
    /// returns its runs as canonical ranges (sorted, disjoint, non-adjacent).
    ///
    /// Whole 64-bit words that continue the current state (all zeros outside
    /// a run, all ones inside one) are skipped; in the others only the bit
    /// transitions are visited. O(bytes / 8 + runs).
    fn decode_bitmap(&self, bitmap: &BitmapRepr) -> Result<Vec<(u32, u32)>, InvalidPoolState> {
        use base64::Engine as _;
        let BitmapRepr { start, len, bits } = bitmap;
        let (start, len) = (*start, *len);
        let (lo, hi) = self.usable_bounds();
        if len == 0 {
            return Err(InvalidPoolState("bitmap is empty (len 0)".into()));
        }
        if start < lo || start > hi {
            return Err(InvalidPoolState(format!(
                "bitmap start {} is outside the usable hosts of {}",
                Ipv4Addr::from(start),
                self.subnet
            )));
        }
        // Last address covered, in u64: start + len - 1 may exceed u32::MAX.
        let end = u64::from(start) + u64::from(len) - 1;
        if end > u64::from(hi) {
            return Err(InvalidPoolState(format!(
                "bitmap of {len} bits from {} extends beyond the usable hosts of {}",
                Ipv4Addr::from(start),
                self.subnet
            )));
        }
        // Now start + len - 1 <= hi: every address below is a valid u32.
        let end = end as u32;
        let nbytes = bitmap_bytes(len);
        // Checked before decoding so a wrong length costs nothing.
        if bits.len() != base64_len(nbytes) {
            return Err(InvalidPoolState(format!(
                "bitmap of {len} bits must be {} base64 characters, found {}",
                base64_len(nbytes),
                bits.len()
            )));
        }
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(bits)
            .map_err(|e| InvalidPoolState(format!("bitmap is not valid base64: {e}")))?;
        if bytes.len() != nbytes {
            return Err(InvalidPoolState(format!(
                "bitmap of {len} bits must be {nbytes} byte(s), found {}",
                bytes.len()
            )));
        }
        let used_in_last = len % 8;
        if used_in_last != 0 && bytes[nbytes - 1] & (0xFFu8 << used_in_last) != 0 {
            return Err(InvalidPoolState(
                "bitmap has non-zero padding bits after its last bit".into(),
            ));
        }
        let gw = u32::from(self.gateway);
        if start <= gw && gw <= end {
            let i = (gw - start) as usize;
            if bytes[i / 8] & (1 << (i % 8)) != 0 {
                return Err(InvalidPoolState(format!(
                    "bitmap covers the gateway {}",
                    self.gateway
                )));
            }
        }

        // Bits past `len` are zero (padding checked above, and the last
        // partial word is zero-extended), so a run still open at the end ends
        // exactly at `end`, and every transition is at a position <= len.
        let mut ranges = Vec::new();
        let mut run_start: Option<u32> = None;
        let mut on_word = |pos: u32, word: u64, run_start: &mut Option<u32>| {
            let in_run = run_start.is_some();
            if (word == 0 && !in_run) || (word == u64::MAX && in_run) {
                return;
            }
            // Bit i is set where bit i differs from bit i - 1 (or, for bit
            // 0, from the state carried over from the previous word).
            let mut transitions = word ^ ((word << 1) | u64::from(in_run));
            while transitions != 0 {
                let p = pos + transitions.trailing_zeros();
                transitions &= transitions - 1;
                match run_start.take() {
                    None => *run_start = Some(p),
                    // p >= 1 here: a run started at a lower position.
                    Some(s) => ranges.push((start + s, start + (p - 1))),
                }
            }
        };
        let mut chunks = bytes.chunks_exact(8);
        let mut pos: u32 = 0;
        for chunk in chunks.by_ref() {
            let word = u64::from_le_bytes(chunk.try_into().expect("8-byte chunk"));
            on_word(pos, word, &mut run_start);
            // Wraps only after the last word of a 2^32-bit bitmap, unused.
            pos = pos.wrapping_add(64);
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut last = [0u8; 8];
            last[..rest.len()].copy_from_slice(rest);
            on_word(pos, u64::from_le_bytes(last), &mut run_start);
        }
        if let Some(s) = run_start {
            ranges.push((start + s, end));
        }
        Ok(ranges)
    }

    /// Validates a range list against this (empty) pool's subnet and gateway
    /// and returns it canonical (adjacent ranges merged).
    fn check_ranges(
        &self,
        allocated: Vec<(u32, u32)>,
    ) -> Result<Vec<(u32, u32)>, InvalidPoolState> {
        let (lo, hi) = self.usable_bounds();
        let gw = u32::from(self.gateway);
        let mut ranges: Vec<(u32, u32)> = Vec::with_capacity(allocated.len());
        for (start, end) in allocated {
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
                    self.subnet
                )));
            }
            if start <= gw && gw <= end {
                return Err(InvalidPoolState(format!(
                    "range {} covers the gateway {}",
                    show(start, end),
                    self.gateway
                )));
            }
            match ranges.last_mut() {
                Some(&mut (_, prev)) if start <= prev => {
                    return Err(InvalidPoolState(format!(
                        "range {} overlaps or is out of order",
                        show(start, end)
                    )));
                }
                // Adjacent ranges are legal but not canonical: merge them so
                // that equality and the non-adjacency invariant hold.
                // `prev < start`, so `start >= 1`.
                Some((_, prev)) if *prev == start - 1 => *prev = end,
                _ => ranges.push((start, end)),
            }
        }
        Ok(ranges)
    }
}

impl From<&Pool> for PoolRepr {
    fn from(pool: &Pool) -> Self {
        let (allocated, bitmap) = if pool.prefer_bitmap() {
            (Vec::new(), pool.encode_bitmap())
        } else {
            (pool.ranges.iter().map(|(&s, &e)| (s, e)).collect(), None)
        };
        PoolRepr {
            version: FORMAT_VERSION,
            subnet: pool.subnet,
            gateway: pool.gateway,
            allocated,
            bitmap,
        }
    }
}

/// Serializes through [`PoolRepr`] without cloning the pool.
impl Serialize for Pool {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        PoolRepr::from(self).serialize(serializer)
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
        let ranges = match repr.bitmap {
            Some(_) if !repr.allocated.is_empty() => {
                return Err(InvalidPoolState(
                    "both \"allocated\" ranges and a \"bitmap\" are present".into(),
                ))
            }
            Some(bitmap) => pool.decode_bitmap(&bitmap)?,
            None => pool.check_ranges(repr.allocated)?,
        };
        pool.count = ranges.iter().map(|&(s, e)| u64::from(e - s) + 1).sum();
        // Sorted input: built in bulk, O(n).
        pool.ranges = ranges.into_iter().collect();
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
        assert!(json.len() < 200, "{} bytes", json.len());
        assert!(!json.contains("bitmap"), "{json}");
        assert_eq!(serde_json::from_str::<Pool>(&json).unwrap(), p);
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

    /// Compact JSON of `p` in each encoding, whatever `Serialize` would pick:
    /// `(ranges, bitmap)`; the bitmap is `None` for an empty pool.
    fn both_forms(p: &Pool) -> (String, Option<String>) {
        let repr = |allocated, bitmap| PoolRepr {
            version: FORMAT_VERSION,
            subnet: p.subnet,
            gateway: p.gateway,
            allocated,
            bitmap,
        };
        let ranges = repr(p.ranges.iter().map(|(&s, &e)| (s, e)).collect(), None);
        let bitmap = p.encode_bitmap().map(|b| repr(Vec::new(), Some(b)));
        (
            serde_json::to_string(&ranges).unwrap(),
            bitmap.map(|b| serde_json::to_string(&b).unwrap()),
        )
    }

    /// A pool with the given canonical ranges, built directly (fast in debug
    /// builds); the invariants are re-checked by a JSON round trip.
    fn pool_with_ranges(subnet: &str, ranges: Vec<(u32, u32)>) -> Pool {
        let mut p = Pool::new(net(subnet), None).unwrap();
        p.count = ranges.iter().map(|&(s, e)| u64::from(e - s) + 1).sum();
        p.ranges = ranges.into_iter().collect();
        p
    }

    fn b64(bytes: &[u8]) -> String {
        use base64::Engine as _;
        base64::engine::general_purpose::STANDARD.encode(bytes)
    }

    #[test]
    fn fragmented_pool_serializes_as_bitmap() {
        let mut p = Pool::new(net("10.0.0.0/24"), None).unwrap();
        for last in [2u8, 4, 6, 8, 10] {
            p.allocate_specific(Ipv4Addr::new(10, 0, 0, last)).unwrap();
        }
        let json = serde_json::to_string(&p).unwrap();
        // .2 .4 .6 .8 .10 -> bits 0, 2, 4, 6, 8 from .2 -> 0x55 0x01.
        assert_eq!(
            json,
            r#"{"version":1,"subnet":"10.0.0.0/24","gateway":"10.0.0.1","allocated":[],"bitmap":{"start":167772162,"len":9,"bits":"VQE="}}"#
        );
        let back: Pool = serde_json::from_str(&json).unwrap();
        assert_eq!(back, p);
        assert_eq!(back.allocated_count(), 5);
        assert_eq!(back.ranges.len(), 5);

        // Dense again -> back to ranges.
        for last in [3u8, 5, 7, 9] {
            p.allocate_specific(Ipv4Addr::new(10, 0, 0, last)).unwrap();
        }
        let json = serde_json::to_string(&p).unwrap();
        assert_eq!(
            json,
            r#"{"version":1,"subnet":"10.0.0.0/24","gateway":"10.0.0.1","allocated":[[167772162,167772170]]}"#
        );
        assert_eq!(serde_json::from_str::<Pool>(&json).unwrap(), p);
    }

    #[test]
    fn bitmap_decoding_handles_word_boundaries_and_gateway_gap() {
        // Runs crossing 64-bit words, a run to the very last bit, and a
        // gateway in the middle of the bitmap (its bit clear).
        let n = "10.0.0.0/22";
        let mut p = Pool::new(net(n), Some(ip("10.0.1.100"))).unwrap();
        let base = u32::from(ip("10.0.0.0"));
        let gw = u32::from(ip("10.0.1.100"));
        let mut model = BTreeSet::new();
        for off in (3..70).chain((120..=200).step_by(3)).chain(250..=300) {
            let a = base + off;
            p.allocate_specific(Ipv4Addr::from(a)).unwrap();
            model.insert(a);
        }
        for a in (gw - 40..gw)
            .chain(gw + 1..gw + 3)
            .chain((gw + 10..gw + 200).step_by(2))
        {
            p.allocate_specific(Ipv4Addr::from(a)).unwrap();
            model.insert(a);
        }
        let json = serde_json::to_string(&p).unwrap();
        assert!(json.contains("\"bitmap\""), "{json}");
        let back: Pool = serde_json::from_str(&json).unwrap();
        assert_eq!(back, p);
        let got: Vec<u32> = back.allocated().into_iter().map(u32::from).collect();
        assert_eq!(got, model.into_iter().collect::<Vec<_>>());

        // Full 64-bit words of ones (skipped fast), the bitmap ending on a
        // word boundary inside a run.
        let lo = base + 2;
        let q = pool_with_ranges(n, vec![(lo, lo + 127), (lo + 129, lo + 129 + 62)]);
        let bm = q.encode_bitmap().unwrap();
        assert_eq!(bm.len, 192);
        let json = serde_json::to_string(&PoolRepr {
            version: 1,
            subnet: q.subnet,
            gateway: q.gateway,
            allocated: vec![],
            bitmap: Some(bm),
        })
        .unwrap();
        assert_eq!(serde_json::from_str::<Pool>(&json).unwrap(), q);
    }

    /// The size estimates used to choose the encoding are exact.
    fn check_estimates(p: &Pool) {
        let empty = serde_json::to_string(&PoolRepr {
            version: FORMAT_VERSION,
            subnet: p.subnet,
            gateway: p.gateway,
            allocated: Vec::new(),
            bitmap: None,
        })
        .unwrap()
        .len();
        let (ranges, bitmap) = both_forms(p);
        assert_eq!(ranges.len(), empty + p.ranges_json_len(), "{ranges}");
        match bitmap {
            Some(bitmap) => {
                assert_eq!(
                    bitmap.len(),
                    empty + p.bitmap_json_len().unwrap(),
                    "{bitmap}"
                )
            }
            None => assert!(p.ranges.is_empty()),
        }
    }

    #[test]
    fn size_estimates_are_exact() {
        let cases: [(&str, Option<&str>, &[u32]); 4] = [
            // All addresses with 9 digits (the O(1) path).
            (
                "10.0.0.0/16",
                Some("10.0.3.7"),
                &[2, 3, 9, 100, 101, 102, 5000, 65534],
            ),
            // 5.245.225.0 is 100,000,000: 8 and 9 digits mixed.
            ("5.245.224.0/22", None, &[2, 3, 255, 256, 257, 300, 1000]),
            (
                "0.0.0.0/0",
                Some("255.255.255.254"),
                &[1, 9, 10, 99, 100, 1_000_000],
            ),
            ("0.0.0.0/0", None, &[]),
        ];
        for (subnet, gw, offsets) in cases {
            let mut p = Pool::new(net(subnet), gw.map(ip)).unwrap();
            let base = u32::from(p.subnet.network());
            for off in offsets {
                p.allocate_specific(Ipv4Addr::from(base + off)).unwrap();
            }
            check_estimates(&p);
        }
    }

    #[test]
    fn tampered_bitmap_rejected() {
        // 10.0.0.0/24: network 167772160, .1 = 167772161 (gateway), .2 =
        // 167772162, .254 = 167772414 (last usable), .255 = 167772415.
        let pool = |gw: &str, bitmap: serde_json::Value| {
            serde_json::json!({
                "version": 1,
                "subnet": "10.0.0.0/24",
                "gateway": gw,
                "allocated": [],
                "bitmap": bitmap,
            })
        };
        let bm = |start: u32, len: u32, bytes: &[u8]| serde_json::json!({"start": start, "len": len, "bits": b64(bytes)});
        let raw = |start: u32, len: u32, bits: &str| serde_json::json!({"start": start, "len": len, "bits": bits});
        let gw = "10.0.0.1";
        // Bit 98 from .2 is 10.0.0.100.
        let mut gw_bit = vec![0u8; 13];
        gw_bit[98 / 8] |= 1 << (98 % 8);
        let cases: Vec<(&str, serde_json::Value)> = vec![
            // start below the usable hosts (network address), bit set or not
            ("usable hosts", pool(gw, bm(167772160, 8, &[0x01]))),
            ("usable hosts", pool(gw, bm(167772160, 8, &[0x04]))),
            // start is the broadcast address / outside the subnet
            ("usable hosts", pool(gw, bm(167772415, 1, &[0x01]))),
            ("usable hosts", pool(gw, bm(167772500, 1, &[0x01]))),
            ("usable hosts", pool(gw, bm(0, 1, &[0x01]))),
            // bits beyond the usable hosts (covering broadcast), set or not
            ("beyond", pool(gw, bm(167772410, 6, &[0x20]))),
            ("beyond", pool(gw, bm(167772410, 6, &[0x01]))),
            ("beyond", pool(gw, bm(167772162, u32::MAX, &[0x01]))),
            // covers the gateway, at the start or in the middle
            ("gateway", pool(gw, bm(167772161, 1, &[0x01]))),
            ("gateway", pool("10.0.0.100", bm(167772162, 100, &gw_bit))),
            // non-zero padding bits in the last byte
            ("padding", pool(gw, bm(167772162, 4, &[0x10]))),
            ("padding", pool(gw, bm(167772162, 9, &[0xFF, 0x02]))),
            ("padding", pool(gw, bm(167772162, 1, &[0x80]))),
            // byte count inconsistent with len
            ("must be", pool(gw, bm(167772162, 9, &[0x01]))),
            ("must be", pool(gw, bm(167772162, 8, &[0x01, 0x00]))),
            ("must be", pool(gw, bm(167772162, 8, &[]))),
            // empty bitmap
            ("empty", pool(gw, bm(167772162, 0, &[]))),
            // bad base64 (of the right length)
            ("base64", pool(gw, raw(167772162, 8, "!!!!"))),
            ("base64", pool(gw, raw(167772162, 8, "AR=="))), // non-canonical
            ("base64", pool(gw, raw(167772162, 8, "-w=="))), // URL-safe alphabet
            ("base64", pool(gw, raw(167772162, 8, "AQ=A"))),
            ("base64", pool(gw, raw(167772162, 8, "===="))),
            ("base64", pool(gw, raw(167772162, 8, "AQ\n="))),
            ("base64", pool(gw, raw(167772162, 16, "AQA"))),
            // both encodings at once
            (
                "both",
                serde_json::json!({
                    "version": 1, "subnet": "10.0.0.0/24", "gateway": gw,
                    "allocated": [[167772200, 167772200]],
                    "bitmap": {"start": 167772162, "len": 1, "bits": "AQ=="},
                }),
            ),
            // wrong shapes
            ("", pool(gw, serde_json::Value::Null)),
            ("", pool(gw, serde_json::json!("AQ=="))),
            (
                "",
                pool(gw, serde_json::json!({"start": 167772162, "bits": "AQ=="})),
            ),
            (
                "",
                pool(gw, serde_json::json!({"start": 167772162, "len": 1})),
            ),
            ("", pool(gw, serde_json::json!({"len": 1, "bits": "AQ=="}))),
            (
                "",
                pool(
                    gw,
                    serde_json::json!({"start": 167772162, "len": 1, "bits": "AQ==", "x": 1}),
                ),
            ),
            (
                "",
                pool(
                    gw,
                    serde_json::json!({"start": -1, "len": 1, "bits": "AQ=="}),
                ),
            ),
            (
                "",
                pool(
                    gw,
                    serde_json::json!({"start": 167772162, "len": 4294967296u64, "bits": "AQ=="}),
                ),
            ),
            (
                "",
                pool(
                    gw,
                    serde_json::json!({"start": 167772162, "len": 1, "bits": 1}),
                ),
            ),
            (
                "",
                pool(
                    gw,
                    serde_json::json!({"start": 167772162, "len": 1, "bits": [1]}),
                ),
            ),
            (
                "",
                pool(
                    gw,
                    serde_json::json!({"start": "10.0.0.2", "len": 1, "bits": "AQ=="}),
                ),
            ),
        ];
        for (why, c) in cases {
            let err = match serde_json::from_value::<Pool>(c.clone()) {
                Ok(p) => panic!("accepted {c}: {p:?}"),
                Err(e) => e.to_string(),
            };
            assert!(err.contains(why), "{c}: {err} (expected {why:?})");
            // Same through the string parser used for files.
            assert!(serde_json::from_str::<Pool>(&c.to_string()).is_err(), "{c}");
        }

        // The valid neighbours of those cases are accepted.
        let ok = |v: serde_json::Value| serde_json::from_value::<Pool>(v).unwrap();
        let p = ok(pool(gw, bm(167772162, 4, &[0x09])));
        assert_eq!(p.allocated(), vec![ip("10.0.0.2"), ip("10.0.0.5")]);
        let p = ok(pool(gw, bm(167772409, 6, &[0x20])));
        assert_eq!(p.allocated(), vec![ip("10.0.0.254")]);
        let p = ok(pool(gw, bm(167772162, 8, &[0x00])));
        assert_eq!(p.allocated_count(), 0);
        let p = ok(serde_json::json!({"version": 1, "subnet": "10.0.0.0/24", "gateway": gw}));
        assert_eq!(p, Pool::new(net("10.0.0.0/24"), None).unwrap());
        let mut gw_clear = vec![0xFFu8; 13];
        gw_clear[12] = 0x0F; // 100 bits = 12 bytes + 4
        gw_clear[98 / 8] &= !(1 << (98 % 8));
        let p = ok(pool("10.0.0.100", bm(167772162, 100, &gw_clear)));
        assert_eq!(p.allocated_count(), 99);
        assert_eq!(p.ranges.len(), 2);

        // Top of the address space: the gateway is the last usable host.
        let top = |bytes: &[u8]| {
            serde_json::json!({
                "version": 1, "subnet": "0.0.0.0/0", "gateway": "255.255.255.254",
                "bitmap": {"start": 4294967292u32, "len": 3, "bits": b64(bytes)},
            })
        };
        let p = ok(top(&[0x03]));
        assert_eq!(
            p.allocated(),
            vec![ip("255.255.255.252"), ip("255.255.255.253")]
        );
        assert!(serde_json::from_value::<Pool>(top(&[0x04])).is_err());
        let too_long = serde_json::json!({
            "version": 1, "subnet": "0.0.0.0/0", "gateway": "255.255.255.254",
            "bitmap": {"start": 4294967292u32, "len": 4, "bits": b64(&[0x03])},
        });
        assert!(serde_json::from_value::<Pool>(too_long).is_err());
    }

    #[test]
    fn million_every_other_in_slash8_under_10mb() {
        let base = u32::from(ip("10.0.0.2"));
        let p = pool_with_ranges(
            "10.0.0.0/8",
            (0..1_000_000u32)
                .map(|i| (base + 2 * i, base + 2 * i))
                .collect(),
        );
        assert_eq!(p.allocated_count(), 1_000_000);
        let json = serde_json::to_vec(&p).unwrap();
        eprintln!("1M every-other in /8: {} bytes", json.len());
        assert!(json.len() <= 10_000_000, "{} bytes", json.len());
        // ~2M bits: a bitmap of ~250 KB, ~333 KB in base64.
        assert!(json.len() < 400_000, "{} bytes", json.len());
        let (ranges, _) = both_forms(&p);
        assert!(ranges.len() > 20_000_000, "{} bytes", ranges.len());
        let mut back: Pool = serde_json::from_slice(&json).unwrap();
        assert_eq!(back, p);
        assert_eq!(back.allocate().unwrap(), ip("10.0.0.3"));
        assert!(back.is_allocated(Ipv4Addr::from(base + 2 * 999_999)));
        assert!(!back.is_allocated(Ipv4Addr::from(base + 2 * 1_000_000)));
        // Pretty-printing changes nothing substantial in the bitmap form.
        assert!(serde_json::to_vec_pretty(&p).unwrap().len() <= 10_000_000);
    }

    #[test]
    fn million_random_in_slash8_under_10mb() {
        let n = net("10.0.0.0/8");
        let (lo, hi) = Pool::new(n, None).unwrap().usable_bounds();
        let gw = lo;
        let mut x: u64 = 0x2545_F491_4F6C_DD1D;
        let mut addrs: Vec<u32> = Vec::with_capacity(1_100_000);
        while addrs.len() < 1_100_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let a = lo + (x % u64::from(hi - lo + 1)) as u32;
            if a != gw {
                addrs.push(a);
            }
        }
        addrs.sort_unstable();
        addrs.dedup();
        addrs.truncate(1_000_000);
        assert_eq!(addrs.len(), 1_000_000);
        let mut ranges: Vec<(u32, u32)> = Vec::new();
        for &a in &addrs {
            match ranges.last_mut() {
                Some((_, e)) if *e + 1 == a => *e = a,
                _ => ranges.push((a, a)),
            }
        }
        let p = pool_with_ranges("10.0.0.0/8", ranges);
        assert_eq!(p.allocated_count(), 1_000_000);
        let json = serde_json::to_vec(&p).unwrap();
        eprintln!(
            "1M random in /8: {} ranges, {} bytes",
            p.ranges.len(),
            json.len()
        );
        assert!(json.len() <= 10_000_000, "{} bytes", json.len());
        // Bounded by the whole /8 as a bitmap: 2 MiB of bits in base64.
        assert!(json.len() <= 2_900_000, "{} bytes", json.len());
        let back: Pool = serde_json::from_slice(&json).unwrap();
        assert_eq!(back, p);
        let got: Vec<u32> = back.allocated().into_iter().map(u32::from).collect();
        assert_eq!(got, addrs);
    }

    /// Release-mode measurements; run with
    /// `cargo test --release -p mydocker --lib ipam::tests::perf -- --ignored --nocapture`.
    #[test]
    #[ignore]
    fn perf_million_in_slash8() {
        use std::time::Instant;
        let n = net("10.0.0.0/8");
        let (lo, hi) = Pool::new(n, None).unwrap().usable_bounds();
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
        type Candidates = Box<dyn FnMut(u32) -> u32>;
        let patterns: [(&str, Candidates); 3] = [
            ("every-other", Box::new(move |i| lo + 1 + 2 * i)),
            ("sequential", Box::new(move |i| lo + 1 + i)),
            (
                "random",
                Box::new(move |_| {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    lo + 1 + (x % u64::from(hi - lo)) as u32
                }),
            ),
        ];
        for (name, mut next) in patterns {
            let mut p = Pool::new(n, None).unwrap();
            let t = Instant::now();
            let mut i = 0;
            while p.allocated_count() < 1_000_000 {
                let _ = p.allocate_specific(Ipv4Addr::from(next(i)));
                i += 1;
            }
            let fill = t.elapsed();
            let t = Instant::now();
            let json = serde_json::to_vec(&p).unwrap();
            let ser = t.elapsed();
            let t = Instant::now();
            let back: Pool = serde_json::from_slice(&json).unwrap();
            let de = t.elapsed();
            assert_eq!(back, p);
            let t = Instant::now();
            let bitmap = p.prefer_bitmap();
            let choose = t.elapsed();
            let t = Instant::now();
            let encoded = p.encode_bitmap().unwrap();
            let encode = t.elapsed();
            let t = Instant::now();
            let decoded = p.decode_bitmap(&encoded).unwrap();
            let decode = t.elapsed();
            assert_eq!(decoded.len(), p.ranges.len());
            let mut q = back;
            let t = Instant::now();
            let a = q.allocate().unwrap();
            let alloc = t.elapsed();
            eprintln!(
                "{name}: {} ranges, {} bytes ({}), fill {fill:?}, serialize {ser:?} \
                 (of which choosing {choose:?}, building the bitmap {encode:?}), \
                 deserialize {de:?} (of which bitmap to ranges {decode:?}), \
                 allocate {alloc:?} -> {a}",
                p.ranges.len(),
                json.len(),
                if bitmap { "bitmap" } else { "ranges" },
            );
        }
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
        fn round_trip_both_encodings(
            base in any::<u32>(),
            prefix in 14u8..=30,
            gw_choice in proptest::option::of(any::<u32>()),
            window_log in 2u32..=16,
            picks in proptest::collection::vec(any::<u32>(), 0..600),
            releases in proptest::collection::vec(any::<u32>(), 0..50),
        ) {
            let subnet = Ipv4Net::new(Ipv4Addr::from(base), prefix).unwrap().trunc();
            let network = u32::from(subnet.network());
            let broadcast = u32::from(subnet.broadcast());
            let usable = broadcast - network - 1;
            let gateway = gw_choice.map(|g| Ipv4Addr::from(network + 1 + g % usable));
            let mut pool = Pool::new(subnet, gateway).unwrap();
            // Picks concentrated in a window (somewhere in the subnet) so that
            // dense, fragmented and sparse sets all occur.
            let window = usable.min(1 << window_log);
            let offset = base % (usable - window + 1);
            let mut model = BTreeSet::new();
            for r in picks {
                let a = network + 1 + offset + r % window;
                if pool.allocate_specific(Ipv4Addr::from(a)).is_ok() {
                    model.insert(a);
                }
            }
            for r in releases {
                let a = network + 1 + offset + r % window;
                prop_assert_eq!(pool.release(Ipv4Addr::from(a)), model.remove(&a));
            }

            let json = serde_json::to_string(&pool).unwrap();
            let back: Pool = serde_json::from_str(&json).unwrap();
            prop_assert_eq!(&back, &pool);
            let got: Vec<u32> = back.allocated().into_iter().map(u32::from).collect();
            prop_assert_eq!(got, model.iter().copied().collect::<Vec<_>>());

            // The smaller encoding was chosen, and the estimates are exact.
            check_estimates(&pool);
            let (ranges, bitmap) = both_forms(&pool);
            prop_assert_eq!(json.contains("\"bitmap\""), pool.prefer_bitmap());
            prop_assert!(json.len() <= ranges.len());
            if let Some(bitmap) = bitmap {
                prop_assert!(json.len() <= bitmap.len());
                // Both forms decode to the same pool.
                prop_assert_eq!(&serde_json::from_str::<Pool>(&bitmap).unwrap(), &pool);
                prop_assert_eq!(&serde_json::from_str::<Pool>(&ranges).unwrap(), &pool);
            } else {
                prop_assert!(model.is_empty());
            }
            // Pretty JSON (other writers) round-trips too.
            let pretty = serde_json::to_string_pretty(&pool).unwrap();
            prop_assert_eq!(serde_json::from_str::<Pool>(&pretty).unwrap(), pool);
        }

        #[test]
        fn arbitrary_bitmap_never_panics(
            prefix in 0u8..=32,
            base in any::<u32>(),
            gw in any::<u32>(),
            start_off in any::<u32>(),
            len in 0u32..200,
            bytes in proptest::collection::vec(any::<u8>(), 0..30),
        ) {
            let subnet = Ipv4Net::new(Ipv4Addr::from(base), prefix).unwrap().trunc();
            let network = u32::from(subnet.network());
            let gateway = network.wrapping_add(gw % 64);
            let start = network.wrapping_add(start_off % 64).wrapping_sub(2);
            let json = serde_json::json!({
                "version": 1,
                "subnet": subnet.to_string(),
                "gateway": Ipv4Addr::from(gateway).to_string(),
                "bitmap": {"start": start, "len": len, "bits": b64(&bytes)},
            });
            if let Ok(mut p) = serde_json::from_value::<Pool>(json) {
                // Whatever was accepted must round-trip and behave.
                let back: Pool = serde_json::from_str(&serde_json::to_string(&p).unwrap()).unwrap();
                prop_assert_eq!(&back, &p);
                for a in p.allocated() {
                    prop_assert!(p.is_assignable(u32::from(a)));
                }
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
