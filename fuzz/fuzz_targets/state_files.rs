//! State files (`network.json`, `config.json`, `status.json`) are read from a
//! disk that may hold anything: loading must return Ok or Err, never panic.
//! What loads re-serializes to something that loads back equal.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mydocker::runtime::container::{ContainerConfig, ContainerStatus};
use mydocker::runtime::NetworkRecord;

fuzz_target!(|data: &[u8]| {
    if let Ok(rec) = serde_json::from_slice::<NetworkRecord>(data) {
        let json = serde_json::to_vec(&rec).expect("serialize NetworkRecord");
        let back: NetworkRecord = serde_json::from_slice(&json).expect("re-parse NetworkRecord");
        assert_eq!(back, rec);
        let _ = rec.bridge();
    }

    if let Ok(cfg) = serde_json::from_slice::<ContainerConfig>(data) {
        let json = serde_json::to_vec(&cfg).expect("serialize ContainerConfig");
        let back: ContainerConfig =
            serde_json::from_slice(&json).expect("re-parse ContainerConfig");
        // serde_json's default float parser may be off by one ULP on odd
        // inputs, so compare `cpus` with a relative tolerance.
        let mut a = back.clone();
        let mut b = cfg.clone();
        match (a.cpus.take(), b.cpus.take()) {
            (None, None) => {}
            (Some(x), Some(y)) => assert!(
                x == y || ((x - y) / y).abs() < 1e-12,
                "cpus round-trip: {y} -> {x}"
            ),
            (x, y) => panic!("cpus round-trip: {y:?} -> {x:?}"),
        }
        assert_eq!(a, b);
    }

    if let Ok(st) = serde_json::from_slice::<ContainerStatus>(data) {
        let json = serde_json::to_vec(&st).expect("serialize ContainerStatus");
        let back: ContainerStatus =
            serde_json::from_slice(&json).expect("re-parse ContainerStatus");
        assert_eq!(back, st);
    }
});
