//! Benchmarks of mydocker's in-process hot paths: IPAM, state (de)serialization
//! and file writes, and driver loading/calls.
//!
//! Run with `cargo bench -p mydocker --bench hot_paths` (add a filter such as
//! `-- ipam` to run a subset). Everything here is in-process: no network
//! interface, namespace or firewall rule is touched, so it runs unprivileged.
//! The driver benches need the bridge driver built for wasm32-wasip2
//! (`scripts/build.sh`).

use std::collections::BTreeSet;
use std::fmt;
use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::sync::LazyLock;

use divan::counter::BytesCount;
use divan::Bencher;
use mydocker::runtime::ipam::{parse_subnet, Pool};

fn main() {
    divan::main();
}

/// Addresses taken in the large pools.
const TAKEN: u32 = 1_000_000;

/// A pool shape, as found in a network's `ipam.json`.
#[derive(Debug, Clone, Copy)]
enum PoolKind {
    /// A /16 with one container attached: the common case.
    Small,
    /// A /8 with 1,000,000 addresses handed out lowest-free first: a single
    /// dense run.
    Seq1M,
    /// A /8 with every other address of the first 2,000,000 taken (as after
    /// every other container of a 1M-container network was removed):
    /// 1,000,000 separate runs, the worst case of the range encoding.
    Fragmented,
}

impl fmt::Display for PoolKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            PoolKind::Small => "small",
            PoolKind::Seq1M => "seq_1m",
            PoolKind::Fragmented => "fragmented",
        })
    }
}

static SMALL: LazyLock<Pool> = LazyLock::new(|| {
    let mut pool = Pool::new(parse_subnet("172.18.0.0/16").unwrap(), None).unwrap();
    pool.allocate().unwrap();
    pool
});

static SEQ_1M: LazyLock<Pool> = LazyLock::new(|| {
    let mut pool = Pool::new(parse_subnet("10.0.0.0/8").unwrap(), None).unwrap();
    for _ in 0..TAKEN {
        pool.allocate().unwrap();
    }
    pool
});

static FRAGMENTED: LazyLock<Pool> = LazyLock::new(|| {
    let mut pool = Pool::new(parse_subnet("10.0.0.0/8").unwrap(), None).unwrap();
    // The gateway is 10.0.0.1; take 10.0.0.2, 10.0.0.4, ... (2M addresses
    // spanned, 1M taken).
    let base = u32::from(pool.subnet().network());
    for i in 1..=TAKEN {
        pool.allocate_specific(Ipv4Addr::from(base + 2 * i))
            .unwrap();
    }
    pool
});

impl PoolKind {
    const ALL: [PoolKind; 3] = [PoolKind::Small, PoolKind::Seq1M, PoolKind::Fragmented];

    fn pool(self) -> &'static Pool {
        match self {
            PoolKind::Small => &SMALL,
            PoolKind::Seq1M => &SEQ_1M,
            PoolKind::Fragmented => &FRAGMENTED,
        }
    }
}

mod ipam {
    use super::*;

    /// `Pool::allocate` (lowest free address) followed by `Pool::release` of
    /// that address, on a large pool built once outside the timed section.
    ///
    /// This is the IPAM work of every `run --network` / container removal;
    /// it must stay O(log runs) however many containers the network has.
    /// Allocating then releasing leaves the pool as it was, so every
    /// iteration measures the same state.
    #[divan::bench(args = [PoolKind::Seq1M, PoolKind::Fragmented])]
    fn allocate_release(bencher: Bencher, kind: PoolKind) {
        let mut pool = kind.pool().clone();
        let mut allocate_release = move || {
            let addr = pool.allocate().unwrap();
            assert!(pool.release(addr));
            addr
        };
        // Warm the caches first: divan tunes the sample size on the first
        // run, and a cold one would make it settle on one iteration per
        // sample, below the timer's useful precision.
        allocate_release();
        bencher.bench_local(allocate_release);
    }
}

mod state {
    use super::*;
    use mydocker::runtime::NetworkRecord;
    use mydocker::store;

    /// Serializing a pool to compact JSON, as `save_pool` does before every
    /// write of a network's `ipam.json`.
    ///
    /// Every connect/disconnect rewrites the pool, so its encoding size
    /// drives both CPU time and the bytes fsynced.
    #[divan::bench(args = PoolKind::ALL, max_time = 3)]
    fn pool_serialize(bencher: Bencher, kind: PoolKind) {
        let pool = kind.pool();
        // Also a warm-up, for divan's sample-size tuning.
        let len = serde_json::to_vec(pool).unwrap().len();
        bencher
            .counter(BytesCount::new(len))
            .bench(|| serde_json::to_vec(pool).unwrap());
    }

    /// Parsing and validating a pool from its JSON, as `store::read_json`
    /// does at every command that touches the network's IPAM state.
    ///
    /// Deserialization re-checks every invariant (sorted, disjoint ranges
    /// inside the subnet), so it is the slowest half of the round trip.
    #[divan::bench(args = PoolKind::ALL, max_time = 3)]
    fn pool_deserialize(bencher: Bencher, kind: PoolKind) {
        let bytes = serde_json::to_vec(kind.pool()).unwrap();
        // Warm-up, for divan's sample-size tuning (see `allocate_release`).
        serde_json::from_slice::<Pool>(&bytes).unwrap();
        bencher
            .counter(BytesCount::of_slice(&bytes))
            .bench(|| serde_json::from_slice::<Pool>(&bytes).unwrap());
    }

    /// A typical `network.json` of a bridge network, as written by
    /// `network create`.
    fn network_record() -> NetworkRecord {
        serde_json::from_value(serde_json::json!({
            "version": 1,
            "id": "5f0c3b1a9e2d4c7b8a6f1e0d2c3b4a59",
            "name": "backend",
            "driver": {
                "name": "bridge",
                "version": "0.1.0",
                "sha256": "9b2f6c1d0e4a7b3c5d8e9f0a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e"
            },
            "subnet": "172.18.0.0/16",
            "gateway": "172.18.0.1",
            "options": [["mtu", "1500"]],
            "driver_data": [["bridge", "mdbr-5f0c3b1a9e"]],
            "created": 1_764_400_000u64,
            "owned_links": ["mdbr-5f0c3b1a9e"],
            "owned_rules": [
                {"Masquerade": {"subnet": "172.18.0.0/16", "bridge": "mdbr-5f0c3b1a9e"}},
                {"ForwardBridge": {"bridge": "mdbr-5f0c3b1a9e"}}
            ]
        }))
        .expect("the sample network record matches NetworkRecord")
    }

    /// A private scratch directory on the same disk as the state root would
    /// typically be (not a tmpfs, where fsync is free).
    fn scratch_dir() -> tempfile::TempDir {
        tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap()
    }

    /// `store::write_atomic` of a small network state file: temp file,
    /// write, fsync, rename over the old file, fsync of the directory.
    ///
    /// Every state change goes through it; the two fsyncs, not the JSON,
    /// are the real cost of a state update.
    #[divan::bench(max_time = 5)]
    fn write_atomic(bencher: Bencher) {
        let dir = scratch_dir();
        let path = dir.path().join("network.json");
        let bytes = serde_json::to_vec_pretty(&network_record()).unwrap();
        bencher
            .counter(BytesCount::of_slice(&bytes))
            .bench_local(|| store::write_atomic(&path, &bytes).unwrap());
    }

    /// `store::write_json_for_this_boot` of the same IPAM pool a connect
    /// writes: temp file, write, rename, no flush (boot-scoped state; see
    /// the store docs). Compare with `write_atomic`.
    #[divan::bench(max_time = 5)]
    fn write_for_this_boot(bencher: Bencher) {
        let dir = scratch_dir();
        let path = dir.path().join("ipam.json");
        let pool = PoolKind::Small.pool();
        bencher.bench_local(|| store::write_json_for_this_boot(&path, pool).unwrap());
    }

    /// `store::read_json` of the same small network state file (warm page
    /// cache): open, read, parse. Commands such as `network ls` do this for
    /// every network.
    #[divan::bench]
    fn read_json(bencher: Bencher) {
        let dir = scratch_dir();
        let path = dir.path().join("network.json");
        store::write_json(&path, &network_record()).unwrap();
        store::read_json::<NetworkRecord>(&path).unwrap();
        bencher.bench_local(|| {
            store::read_json::<NetworkRecord>(&path)
                .unwrap()
                .expect("the state file exists")
        });
    }
}

mod driver {
    use super::*;
    use mydocker::driver::engine::CacheOutcome;
    use mydocker::driver::registry::sha256_hex;
    use mydocker::driver::{CallContext, DriverEngine, HostSys, Limits, Scope};
    use wasmtime::component::Component;

    /// The bridge driver's component bytes (the same file host/build.rs
    /// embeds as the built-in driver).
    fn bridge_wasm() -> Vec<u8> {
        let dir = std::env::var_os("MYDOCKER_DRIVERS_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| {
                PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/wasm32-wasip2/release")
            });
        let path = dir.join("bridge.wasm");
        std::fs::read(&path).unwrap_or_else(|e| {
            panic!(
                "cannot read the bridge driver at {}: {e}; run scripts/build.sh first",
                path.display()
            )
        })
    }

    /// An engine with its own empty cache directory, and the bridge driver.
    struct Fixture {
        _cache: tempfile::TempDir,
        engine: DriverEngine,
        bytes: Vec<u8>,
        sha256: String,
    }

    impl Fixture {
        fn new() -> Fixture {
            let bytes = bridge_wasm();
            let sha256 = sha256_hex(&bytes);
            let cache = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
            let engine = DriverEngine::new(&cache.path().join("cache"), Limits::default())
                .unwrap_or_else(|e| panic!("{e}"));
            Fixture {
                _cache: cache,
                engine,
                bytes,
                sha256,
            }
        }

        fn load(&self) -> (Component, CacheOutcome) {
            self.engine
                .load("bridge", &self.bytes, &self.sha256)
                .unwrap_or_else(|e| panic!("{e}"))
        }

        /// Compiles the driver once so that the cache is warm.
        fn warm() -> (Fixture, Component) {
            let fx = Fixture::new();
            let (component, _) = fx.load();
            assert!(fx.engine.is_cached(&fx.sha256));
            (fx, component)
        }
    }

    /// `DriverEngine::load` from the precompiled cache: deserializing (and
    /// mmapping) the `.cwasm` written by an earlier compile.
    ///
    /// Every mydocker command that calls a driver pays this once per
    /// process, so it bounds the latency of `run`, `network create` etc.
    #[divan::bench]
    fn load_cached(bencher: Bencher) {
        let (fx, _) = Fixture::warm();
        bencher.bench_local(|| {
            let (component, outcome) = fx.load();
            assert_eq!(outcome, CacheOutcome::Hit);
            component
        });
    }

    /// Instantiating an already-loaded component in a fresh store (with the
    /// WASI context, limits and epoch deadline) and calling its `info()`
    /// export, as the registry does to validate every driver it loads.
    ///
    /// Every driver call gets a fresh instance, so this is the fixed
    /// overhead of each call into a driver.
    #[divan::bench]
    fn instantiate_info(bencher: Bencher) {
        let (fx, component) = Fixture::warm();
        let sys = HostSys::new();
        bencher.bench_local(|| {
            let ctx = CallContext::new("bridge", BTreeSet::new(), sys.clone(), Scope::Info);
            fx.engine
                .info(&component, ctx)
                .unwrap_or_else(|e| panic!("{e}"))
        });
    }

    /// `DriverEngine::load` with an empty cache: Cranelift compilation of
    /// the component, serialization and the atomic write of the `.cwasm`.
    ///
    /// Paid on first use of a driver and after every upgrade of mydocker
    /// or the driver; slow (~150 ms), hence few samples.
    #[divan::bench(sample_count = 10, sample_size = 1)]
    fn load_cold(bencher: Bencher) {
        let fx = Fixture::new();
        let cached = fx.engine.cache_path(&fx.sha256);
        bencher
            .with_inputs(|| match std::fs::remove_file(&cached) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => panic!("{}: {e}", cached.display()),
            })
            .bench_local_values(|()| {
                let (component, outcome) = fx.load();
                assert_eq!(outcome, CacheOutcome::Compiled);
                component
            });
    }
}
