//! mydocker: a Docker-like container runtime whose network drivers are
//! sandboxed WebAssembly components.
//!
//! Layers point down only: `cli` → `runtime` → `driver` → `sys` → `store`.

pub mod cli;
pub mod driver;
pub mod runtime;
pub mod store;
pub mod sys;
