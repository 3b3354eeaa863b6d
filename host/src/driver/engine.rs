//! One wasmtime engine per process, the precompiled-component cache, and
//! bounded driver calls.

use std::fs;
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use wasmtime::component::{Component, HasSelf, Linker, ResourceTable};
use wasmtime::{CallHook, Config, Engine, Store, StoreLimits, StoreLimitsBuilder, UpdateDeadline};
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;
use wasmtime_wasi::{WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView};

use super::bindings::{describe, wit, NetworkDriver};
use super::host_impl::CallContext;
use crate::store;

/// How often the epoch ticks; the call deadline is a number of ticks.
const EPOCH_TICK: Duration = Duration::from_millis(10);
/// Captured guest stderr (panic messages), bounded.
const STDERR_CAPACITY: usize = 64 * 1024;

/// Resource bounds of one driver call.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Wall-clock budget of one call, host work included.
    pub timeout: Duration,
    /// Largest linear memory a driver instance may grow to.
    pub memory_bytes: usize,
    /// Wasm stack size; deeper recursion traps.
    pub stack_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            timeout: Duration::from_secs(1),
            memory_bytes: 64 << 20,
            stack_bytes: 512 << 10,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum DriverCallError {
    /// The driver returned an error of the contract.
    #[error("driver {driver}: {}{}", describe(.error), rollback_note(.rollback_failures))]
    Driver {
        driver: String,
        error: wit::DriverError,
        rollback_failures: Vec<String>,
    },
    /// The driver trapped, ran out of time or memory, or panicked.
    #[error("driver {driver} failed: {reason}{}", rollback_note(.rollback_failures))]
    Trapped {
        driver: String,
        reason: String,
        rollback_failures: Vec<String>,
    },
    /// The component could not be compiled, loaded or instantiated.
    #[error("driver {driver}: {reason}")]
    Load { driver: String, reason: String },
}

fn rollback_note(failures: &[String]) -> String {
    if failures.is_empty() {
        String::new()
    } else {
        format!(
            " (and undoing its changes failed: {}; run `mydocker system gc`)",
            failures.join("; ")
        )
    }
}

/// Whether a load hit the precompiled cache.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CacheOutcome {
    Hit,
    Compiled,
}

pub struct HostState {
    wasi: WasiCtx,
    table: ResourceTable,
    limits: StoreLimits,
    ctx: CallContext,
    /// When the current host call started, and the total spent in host
    /// calls: the time limit is on the driver's own work, so a host call
    /// slowed by a busy machine (iptables' lock, netlink) is not charged.
    host_since: Option<Instant>,
    host_time: Duration,
}

impl WasiView for HostState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

pub struct DriverEngine {
    engine: Engine,
    linker: Linker<HostState>,
    cache_dir: PathBuf,
    limits: Limits,
}

impl DriverEngine {
    pub fn new(cache_dir: &Path, limits: Limits) -> Result<DriverEngine, DriverCallError> {
        let load_err = |reason: String| DriverCallError::Load {
            driver: "(engine)".into(),
            reason,
        };
        let mut config = Config::new();
        config.epoch_interruption(true);
        config.max_wasm_stack(limits.stack_bytes);
        let engine = Engine::new(&config).map_err(|e| load_err(e.to_string()))?;
        let mut linker = Linker::<HostState>::new(&engine);
        // Rust std guests import wasi:cli / wasi:io even when unused; they get
        // an empty context: no preopens, no env, no args, no sockets.
        wasmtime_wasi::p2::add_to_linker_sync(&mut linker).map_err(|e| load_err(e.to_string()))?;
        NetworkDriver::add_to_linker::<HostState, HasSelf<CallContext>>(&mut linker, |s| {
            &mut s.ctx
        })
        .map_err(|e| load_err(e.to_string()))?;
        start_epoch_ticker(&engine);
        Ok(DriverEngine {
            engine,
            linker,
            cache_dir: cache_dir.to_path_buf(),
            limits,
        })
    }

    /// The version of the `mydocker:network` contract a component was
    /// built against, read from its export/import names.
    pub fn contract_version(&self, component: &Component) -> Option<String> {
        let ty = component.component_type();
        let names: Vec<String> = ty
            .exports(&self.engine)
            .map(|(n, _)| n.to_string())
            .chain(ty.imports(&self.engine).map(|(n, _)| n.to_string()))
            .collect();
        names.iter().find_map(|n| {
            n.strip_prefix("mydocker:network/")
                .and_then(|rest| rest.split_once('@'))
                .map(|(_, v)| v.to_string())
        })
    }

    pub fn limits(&self) -> Limits {
        self.limits
    }

    /// Where the precompiled artifact of a driver lives.
    pub fn cache_path(&self, sha256: &str) -> PathBuf {
        let mut h = std::collections::hash_map::DefaultHasher::new();
        self.engine.precompile_compatibility_hash().hash(&mut h);
        self.cache_dir
            .join(format!("{sha256}-{:016x}.cwasm", h.finish()))
    }

    /// Whether a precompiled artifact for this driver exists.
    pub fn is_cached(&self, sha256: &str) -> bool {
        self.cache_path(sha256).is_file()
    }

    /// Compiles a driver, or loads it from the cache. The cache key is the
    /// driver's sha256 plus the engine's compatibility hash, and only files
    /// this host wrote into its private cache directory are deserialized.
    pub fn load(
        &self,
        name: &str,
        bytes: &[u8],
        sha256: &str,
    ) -> Result<(Component, CacheOutcome), DriverCallError> {
        let err = |reason: String| DriverCallError::Load {
            driver: name.to_string(),
            reason,
        };
        let path = self.cache_path(sha256);
        if path.is_file() {
            let started = Instant::now();
            // SAFETY: deserialize trusts its input. The file lives in the
            // 0700 cache directory under the state root and was written by
            // this host via `serialize`; its name binds it to the source's
            // sha256 and this engine's compatibility hash.
            match unsafe { Component::deserialize_file(&self.engine, &path) } {
                Ok(c) => {
                    tracing::debug!(driver = name, elapsed = ?started.elapsed(), "driver loaded from cache");
                    return Ok((c, CacheOutcome::Hit));
                }
                Err(e) => {
                    tracing::warn!(driver = name, file = %path.display(), "ignoring unusable cache file: {e}");
                }
            }
        }
        let started = Instant::now();
        let component = Component::new(&self.engine, bytes)
            .map_err(|e| err(format!("not a valid WebAssembly component: {e}")))?;
        tracing::info!(driver = name, elapsed = ?started.elapsed(), "driver compiled");
        let serialized = component
            .serialize()
            .map_err(|e| err(format!("cannot serialize compiled driver: {e}")))?;
        store::ensure_private_dir(&self.cache_dir).map_err(|e| err(e.to_string()))?;
        store::write_atomic(&path, &serialized).map_err(|e| err(e.to_string()))?;
        Ok((component, CacheOutcome::Compiled))
    }

    /// Runs one export of a driver in a fresh store with the configured
    /// limits. On a driver error or a trap the changes recorded in `ctx` are
    /// rolled back; the store is dropped after every call, never reused.
    pub fn call<R>(
        &self,
        component: &Component,
        ctx: CallContext,
        f: impl FnOnce(
            &NetworkDriver,
            &mut Store<HostState>,
        ) -> wasmtime::Result<Result<R, wit::DriverError>>,
    ) -> Result<R, DriverCallError> {
        self.call_keep(component, ctx, f, |_| ()).map(|(r, ())| r)
    }

    /// Like [`call`](Self::call), and on success also runs `after` on the
    /// call's context (e.g. to read what the driver made) before it is
    /// dropped.
    pub fn call_keep<R, A>(
        &self,
        component: &Component,
        ctx: CallContext,
        f: impl FnOnce(
            &NetworkDriver,
            &mut Store<HostState>,
        ) -> wasmtime::Result<Result<R, wit::DriverError>>,
        after: impl FnOnce(&CallContext) -> A,
    ) -> Result<(R, A), DriverCallError> {
        let driver = ctx.driver.clone();
        let stderr = MemoryOutputPipe::new(STDERR_CAPACITY);
        let wasi = WasiCtxBuilder::new().stderr(stderr.clone()).build();
        let limits = StoreLimitsBuilder::new()
            .memory_size(self.limits.memory_bytes)
            .instances(16)
            .tables(16)
            .memories(16)
            .build();
        let mut store = Store::new(
            &self.engine,
            HostState {
                wasi,
                table: ResourceTable::new(),
                limits,
                ctx,
                host_since: None,
                host_time: Duration::ZERO,
            },
        );
        store.limiter(|s| &mut s.limits);
        store.call_hook(|mut s, hook| {
            let data = s.data_mut();
            match hook {
                CallHook::CallingHost => data.host_since = Some(Instant::now()),
                CallHook::ReturningFromHost => {
                    if let Some(t) = data.host_since.take() {
                        data.host_time += t.elapsed();
                    }
                }
                _ => {}
            }
            Ok(())
        });
        let timeout = self.limits.timeout;
        // A backstop on wall-clock time too, for a driver that spins on
        // cheap host calls instead of its own code.
        let wall_limit = (timeout * 10).max(Duration::from_secs(10));
        let started = Instant::now();
        let ticks = (timeout.as_millis() / EPOCH_TICK.as_millis()).max(1) as u64;
        store.set_epoch_deadline(ticks);
        store.epoch_deadline_callback(move |s| {
            let wall = started.elapsed();
            let own = wall.saturating_sub(s.data().host_time);
            if own >= timeout || wall >= wall_limit {
                return Ok(UpdateDeadline::Interrupt);
            }
            let left = (timeout - own).as_millis() / EPOCH_TICK.as_millis();
            Ok(UpdateDeadline::Continue((left as u64).max(1)))
        });

        let outcome = NetworkDriver::instantiate(&mut store, component, &self.linker)
            .and_then(|bindings| f(&bindings, &mut store));
        let ctx = &mut store.data_mut().ctx;
        match outcome {
            Ok(Ok(value)) => {
                ctx.commit();
                let extra = after(ctx);
                Ok((value, extra))
            }
            Ok(Err(error)) => {
                let rollback_failures = ctx.rollback();
                Err(DriverCallError::Driver {
                    driver,
                    error,
                    rollback_failures,
                })
            }
            Err(trap) => {
                let rollback_failures = ctx.rollback();
                let reason = describe_trap(&trap, &stderr.contents(), self.limits);
                Err(DriverCallError::Trapped {
                    driver,
                    reason,
                    rollback_failures,
                })
            }
        }
    }

    /// Calls `info()` (no host access allowed).
    pub fn info(
        &self,
        component: &Component,
        ctx: CallContext,
    ) -> Result<wit::DriverInfo, DriverCallError> {
        self.call(component, ctx, |d, s| {
            d.mydocker_network_driver().call_info(s).map(Ok)
        })
    }
}

fn describe_trap(trap: &wasmtime::Error, stderr: &[u8], limits: Limits) -> String {
    let code = trap.downcast_ref::<wasmtime::Trap>();
    match code {
        Some(wasmtime::Trap::Interrupt) => {
            return format!(
                "it exceeded its time limit of {} ms and was stopped",
                limits.timeout.as_millis()
            )
        }
        Some(wasmtime::Trap::StackOverflow) => {
            return format!("it overflowed its {} KiB stack", limits.stack_bytes / 1024)
        }
        _ => {}
    }
    let stderr = String::from_utf8_lossy(stderr);
    // Rust guests report allocation failure and panics on stderr before
    // they abort, which is more useful than the trap itself.
    if stderr.contains("memory allocation of") {
        return format!(
            "it ran out of memory (limit {} MiB)",
            limits.memory_bytes >> 20
        );
    }
    let mut lines = stderr.lines().skip_while(|l| !l.contains("panicked at"));
    if let Some(location) = lines.next() {
        let message = lines.next().unwrap_or("").trim();
        let location = location.trim().trim_end_matches(':');
        return format!("it panicked: {message} ({location})");
    }
    match code {
        Some(code) => format!("it trapped: {code}"),
        None => first_line(&format!("{trap:#}")).to_string(),
    }
}

fn first_line(s: &str) -> &str {
    s.lines().next().unwrap_or(s)
}

fn start_epoch_ticker(engine: &Engine) {
    let weak = engine.weak();
    // The ticker ends on its own once the engine is dropped.
    let _ = std::thread::Builder::new()
        .name("mydocker-epoch".into())
        .spawn(move || loop {
            std::thread::sleep(EPOCH_TICK);
            match weak.upgrade() {
                Some(engine) => engine.increment_epoch(),
                None => break,
            }
        });
}

/// Removes cache files that no longer match any known driver or engine.
pub fn prune_cache(cache_dir: &Path, keep: &[PathBuf]) {
    if let Ok(entries) = fs::read_dir(cache_dir) {
        for entry in entries.flatten() {
            let path = entry.path();
            if path.extension().is_some_and(|e| e == "cwasm") && !keep.contains(&path) {
                let _ = fs::remove_file(&path);
            }
        }
    }
}
