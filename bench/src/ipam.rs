//! IPAM on a /8 with 1,000,000 addresses taken: the time of one allocate
//! (+ release, to keep the state constant) in memory, the full persisted
//! cycle a connect pays (read `ipam.json`, allocate, write it back
//! atomically), and the size of the state file.

use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use mydocker::runtime::ipam::{parse_subnet, Pool};
use mydocker::store;

pub const TAKEN: u32 = 1_000_000;

/// What one layout of the taken addresses measured.
pub struct Measured {
    pub layout: &'static str,
    pub allocate: Vec<Duration>,
    pub persisted_cycle: Vec<Duration>,
    pub bytes_on_disk: u64,
}

fn empty_pool() -> Pool {
    Pool::new(parse_subnet("10.0.0.0/8").expect("subnet"), None).expect("pool")
}

/// What `lowest free first` produces on a fresh network: one dense run.
fn sequential() -> Pool {
    let mut pool = empty_pool();
    for _ in 0..TAKEN {
        pool.allocate().expect("allocate");
    }
    pool
}

/// The worst layout for a range-based allocator: every other address taken
/// (1M runs), as after heavy churn that freed every second container.
fn fragmented() -> Pool {
    let mut pool = empty_pool();
    let base = u32::from(Ipv4Addr::new(10, 0, 0, 2));
    for k in 0..TAKEN {
        pool.allocate_specific(Ipv4Addr::from(base + 2 * k))
            .expect("allocate_specific");
    }
    pool
}

fn measure(layout: &'static str, mut pool: Pool, reps: usize) -> Measured {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("ipam.json");
    // As the runtime's save_pool does: compact JSON, atomic, not flushed.
    let save = |pool: &Pool| store::write_json_for_this_boot(&path, pool).expect("write ipam.json");
    save(&pool);
    let bytes_on_disk = std::fs::metadata(&path).expect("stat").len();

    let mut allocate = Vec::with_capacity(reps);
    for _ in 0..reps {
        let t = Instant::now();
        let a = pool.allocate().expect("allocate");
        allocate.push(t.elapsed());
        pool.release(a);
    }
    let cycles = reps.min(20);
    let mut persisted_cycle = Vec::with_capacity(cycles);
    for _ in 0..cycles {
        let t = Instant::now();
        let mut p: Pool = store::read_json(&path).expect("read").expect("present");
        let a = p.allocate().expect("allocate");
        save(&p);
        persisted_cycle.push(t.elapsed());
        p.release(a);
        save(&p);
    }
    Measured {
        layout,
        allocate,
        persisted_cycle,
        bytes_on_disk,
    }
}

pub fn run(reps: usize) -> Vec<Measured> {
    vec![
        measure("1M sequential", sequential(), reps),
        measure("1M fragmented", fragmented(), reps),
    ]
}
