//! The WebAssembly driver host: one wasmtime engine, a compile cache, the
//! driver registry and the implementation of the contract's host imports.

pub mod bindings;
pub mod engine;
pub mod host_impl;
pub mod journal;
pub mod registry;

pub use engine::{DriverCallError, DriverEngine, Limits};
pub use host_impl::{CallContext, ContainerNs, HostSys, Scope};
pub use registry::{Driver, DriverInfo, DriverSource, Registry, RegistryError, KNOWN_CAPABILITIES};
