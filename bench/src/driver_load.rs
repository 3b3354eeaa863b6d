//! Driver load: the first use of bridge.wasm (compile + write the cache)
//! and every later use (map the cached artifact, instantiate, call info()),
//! the same path `network create` / `connect` take.

use std::sync::Arc;
use std::time::{Duration, Instant};

use mydocker::driver::{DriverEngine, HostSys, Limits, Registry};

pub struct Measured {
    pub engine_create: Vec<Duration>,
    pub cold: Vec<Duration>,
    pub warm: Vec<Duration>,
}

pub fn run(reps: usize, cold_reps: usize) -> Measured {
    let (mut engine_create, mut cold, mut warm) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..cold_reps {
        let root = tempfile::tempdir().expect("tempdir");
        let t = Instant::now();
        let engine = DriverEngine::new(&root.path().join("cache"), Limits::default())
            .expect("driver engine");
        engine_create.push(t.elapsed());
        let registry = Registry::new(
            &root.path().join("drivers"),
            Arc::new(engine),
            HostSys::new(),
        );
        let t = Instant::now();
        registry.get("bridge").expect("load bridge");
        cold.push(t.elapsed());
    }
    let root = tempfile::tempdir().expect("tempdir");
    let engine = Arc::new(
        DriverEngine::new(&root.path().join("cache"), Limits::default()).expect("driver engine"),
    );
    let registry = Registry::new(&root.path().join("drivers"), engine, HostSys::new());
    registry.get("bridge").expect("first load");
    for _ in 0..reps {
        let t = Instant::now();
        registry.get("bridge").expect("load bridge");
        warm.push(t.elapsed());
    }
    Measured {
        engine_create,
        cold,
        warm,
    }
}
