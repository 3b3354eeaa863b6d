//! IPAM: subnet/gateway parsers and the persisted `Pool` (state file
//! `ipam.json`). Errors are fine, panics are not; accepted values
//! round-trip, and a loaded pool allocates only assignable, distinct addresses.
#![no_main]

use std::collections::HashSet;
use std::net::Ipv4Addr;

use libfuzzer_sys::fuzz_target;
use mydocker::runtime::ipam::{parse_gateway, parse_subnet, IpamError, Pool};

fn check_pool(mut pool: Pool) {
    // Serialized form re-parses to an equal pool.
    let json = serde_json::to_vec(&pool).expect("serialize pool");
    let back: Pool = serde_json::from_slice(&json).expect("re-parse serialized pool");
    assert_eq!(back, pool, "pool JSON round-trip");

    let subnet = pool.subnet();
    let gateway = pool.gateway();
    let mut seen = HashSet::new();
    for _ in 0..8 {
        match pool.allocate() {
            Ok(a) => {
                assert!(subnet.contains(&a), "{a} outside {subnet}");
                assert_ne!(a, subnet.network(), "allocated network address");
                assert_ne!(a, subnet.broadcast(), "allocated broadcast address");
                assert_ne!(a, gateway, "allocated the gateway");
                assert!(seen.insert(a), "{a} allocated twice");
                // It is now taken.
                assert!(matches!(
                    pool.clone().allocate_specific(a),
                    Err(IpamError::AlreadyAllocated { .. })
                ));
            }
            Err(IpamError::Exhausted { .. }) => break,
            Err(e) => panic!("unexpected allocate error: {e}"),
        }
    }
    let json = serde_json::to_vec(&pool).expect("serialize pool");
    let back: Pool = serde_json::from_slice(&json).expect("re-parse pool after allocations");
    assert_eq!(back, pool, "pool JSON round-trip after allocations");
}

fuzz_target!(|data: &[u8]| {
    // Raw bytes as a state file.
    if let Ok(pool) = serde_json::from_slice::<Pool>(data) {
        check_pool(pool);
    }

    let s = String::from_utf8_lossy(data);
    let s = s.as_ref();

    if let Ok(net) = parse_subnet(s) {
        assert_eq!(net, net.trunc(), "parse_subnet must normalize");
        assert_eq!(parse_subnet(&net.to_string()), Ok(net));
    }
    if let Ok(gw) = parse_gateway(s) {
        assert_eq!(parse_gateway(&gw.to_string()), Ok(gw));
    }

    // "SUBNET GATEWAY" (or just "SUBNET") as `network create` would get them.
    let (sub, gw) = match s.split_once(' ') {
        Some((a, b)) => (a, Some(b)),
        None => (s, None),
    };
    if let Ok(net) = parse_subnet(sub) {
        let gw: Option<Option<Ipv4Addr>> = match gw {
            None => Some(None),
            Some(g) => parse_gateway(g).ok().map(Some),
        };
        if let Some(gw) = gw {
            if let Ok(pool) = Pool::new(net, gw) {
                check_pool(pool);
            }
        }
    }
});
