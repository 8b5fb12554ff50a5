//! The sandbox: one wasmtime `Engine` for the whole daemon, the compiled
//! component cache, and the limits every call runs under.
//!
//! Every limit is applied here and nowhere else: the pooling allocator bounds
//! how many instances exist at once and how big a linear memory may get, a
//! [`StoreLimiter`] caps the memory of each store, and an epoch ticker turns
//! the per-call deadline into a trap. Each call gets a fresh `Store` made from
//! an `InstancePre`, so a store that trapped is dropped, never reused, and no
//! state leaks from one call into the next.

use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use rand::SeedableRng;
use rand::rngs::StdRng;
use sha2::{Digest, Sha256};
use wasmtime::component::{Component, Linker, ResourceTable};
use wasmtime::{
    Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig, ResourceLimiter, Store,
    Trap,
};
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;
use wasmtime_wasi::{
    HostMonotonicClock, HostWallClock, WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView,
};

use super::PluginError;
use crate::metrics::PluginCalls;

/// The wasmtime version compiled components are cached for; pinned with `=`
/// in host/Cargo.toml so this cannot drift from the real one.
pub const WASMTIME_VERSION: &str = "48.0.8";

/// How often the epoch advances; deadlines are a whole number of ticks.
const EPOCH_TICK: Duration = Duration::from_millis(10);

/// How much of a plugin's stderr (e.g. a panic message) is kept for errors.
const STDERR_CAPTURE: usize = 4096;

/// Resource limits for plugin calls.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Linear memory a single call may use, all memories of the store together.
    pub memory_bytes: usize,
    /// Wall-clock budget of one call (instantiation included).
    pub call_timeout: Duration,
    /// Plugin instances alive at the same time (sizes the pooling allocator).
    pub max_instances: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            memory_bytes: 256 << 20,
            call_timeout: Duration::from_secs(10),
            max_instances: 64,
        }
    }
}

/// How a component was obtained: from the on-disk cache or compiled now.
#[derive(Debug, Clone, Copy, serde::Serialize)]
pub struct LoadStats {
    pub from_cache: bool,
    pub millis: f64,
}

/// Per-store state: an empty WASI context and the memory accounting.
pub struct CallState {
    wasi: WasiCtx,
    table: ResourceTable,
    limiter: StoreLimiter,
    stderr: MemoryOutputPipe,
}

impl WasiView for CallState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

/// Caps the total linear memory of a store and remembers that it said no,
/// so the resulting trap can be reported as "memory limit" rather than as
/// whatever the guest did after its allocation failed.
struct StoreLimiter {
    cap: usize,
    used: usize,
    denied: bool,
}

impl ResourceLimiter for StoreLimiter {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        let grown = self.used + desired.saturating_sub(current);
        if grown > self.cap {
            self.denied = true;
            return Ok(false);
        }
        self.used = grown;
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(desired <= 1_000_000)
    }
}

/// The only time a plugin can read: always the Unix epoch. Plugins get the
/// time they need (e.g. a publish date) as an argument, so their output
/// depends on their input alone.
struct FrozenClock;

impl HostWallClock for FrozenClock {
    fn resolution(&self) -> Duration {
        Duration::from_secs(1)
    }
    fn now(&self) -> Duration {
        Duration::ZERO
    }
}

impl HostMonotonicClock for FrozenClock {
    fn resolution(&self) -> u64 {
        1_000_000_000
    }
    fn now(&self) -> u64 {
        0
    }
}

/// Advances the engine's epoch until dropped.
struct Ticker {
    stop: Arc<AtomicBool>,
}

impl Ticker {
    fn start(engine: Engine) -> Ticker {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        std::thread::Builder::new()
            .name("repod-epoch".into())
            .spawn(move || {
                while !flag.load(Ordering::Relaxed) {
                    std::thread::sleep(EPOCH_TICK);
                    engine.increment_epoch();
                }
            })
            .expect("spawn epoch ticker thread");
        Ticker { stop }
    }
}

impl Drop for Ticker {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// The engine, its linker and limits. Cheap to share behind an `Arc`.
pub struct Runtime {
    engine: Engine,
    linker: Linker<CallState>,
    limits: Limits,
    cache_dir: Option<PathBuf>,
    cache_tag: String,
    /// Every call's duration and every failure, recorded in `run`.
    calls: PluginCalls,
    _ticker: Ticker,
}

impl Runtime {
    /// Builds the engine. `cache_dir`, when given, holds compiled components.
    pub fn new(limits: Limits, cache_dir: Option<PathBuf>) -> anyhow::Result<Runtime> {
        let mut pool = PoolingAllocationConfig::default();
        let n = limits.max_instances.max(1);
        pool.total_component_instances(n)
            .total_core_instances(n * 20)
            .total_memories(n * 4)
            .total_tables(n * 8)
            // Fiber stacks serve async calls only, which plugins never make;
            // the default of 1000 cost ~1000 mprotect calls at every start.
            .total_stacks(n)
            .max_memory_size(limits.memory_bytes);

        let mut config = Config::new();
        config
            .wasm_component_model(true)
            .epoch_interruption(true)
            .allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
        let engine = Engine::new(&config).map_err(|e| anyhow::anyhow!("{e:?}"))?;

        let mut linker = Linker::new(&engine);
        // A Rust wasip2 guest imports wasi:cli and wasi:io even when it never
        // uses them; they are linked against an empty context (see `store`).
        wasmtime_wasi::p2::add_to_linker_sync(&mut linker)
            .map_err(|e| anyhow::anyhow!("linking WASI: {e:?}"))?;

        let mut hasher = DefaultHasher::new();
        engine.precompile_compatibility_hash().hash(&mut hasher);
        let cache_tag = format!("wasmtime{WASMTIME_VERSION}-{:016x}", hasher.finish());

        if let Some(dir) = &cache_dir {
            std::fs::create_dir_all(dir)?;
        }
        Ok(Runtime {
            _ticker: Ticker::start(engine.clone()),
            engine,
            linker,
            limits,
            cache_dir,
            cache_tag,
            calls: PluginCalls::default(),
        })
    }

    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// The call metrics (`GET /metrics` registers them).
    pub fn calls(&self) -> &PluginCalls {
        &self.calls
    }

    /// A [`PluginError::BadOutput`]: `function` returned something the
    /// host's checks refuse. Counted as a failed call.
    pub(super) fn bad_output(
        &self,
        plugin: &str,
        function: &'static str,
        why: String,
    ) -> PluginError {
        self.calls.failed(plugin, function, "bad-output");
        PluginError::BadOutput {
            plugin: plugin.into(),
            function: function.into(),
            message: why,
        }
    }

    pub(super) fn engine(&self) -> &Engine {
        &self.engine
    }

    pub(super) fn linker(&self) -> &Linker<CallState> {
        &self.linker
    }

    /// Path of the cached compilation of a wasm with this SHA-256.
    fn cache_path(&self, sha256: &str) -> Option<PathBuf> {
        self.cache_dir
            .as_ref()
            .map(|d| d.join(format!("{sha256}-{}.cwasm", self.cache_tag)))
    }

    /// Compiles `wasm`, or loads its cached compilation. The cache is keyed by
    /// the wasm's SHA-256, the wasmtime version and the engine settings.
    pub fn load_component(
        &self,
        wasm: &[u8],
        sha256: &str,
    ) -> Result<(Component, LoadStats), PluginError> {
        let start = Instant::now();
        let cached = self.cache_path(sha256);
        if let Some(path) = cached.as_deref().filter(|p| p.exists()) {
            // Read into memory rather than `deserialize_file`, which mmaps:
            // a cache file truncated under a live mapping would SIGBUS the
            // daemon. SAFETY: the file was written by `Component::serialize`
            // with this same engine configuration into the daemon's private
            // data dir; deserialize still checks the version/settings header.
            let loaded = std::fs::read(path)
                .map_err(|e| wasmtime::Error::msg(e.to_string()))
                .and_then(|bytes| unsafe { Component::deserialize(&self.engine, bytes) });
            match loaded {
                Ok(component) => {
                    let stats = LoadStats {
                        from_cache: true,
                        millis: start.elapsed().as_secs_f64() * 1e3,
                    };
                    return Ok((component, stats));
                }
                Err(e) => {
                    tracing::warn!(path = %path.display(), "discarding unusable compiled plugin cache: {e:?}");
                    let _ = std::fs::remove_file(path);
                }
            }
        }
        let component = self.compile(wasm)?;
        if let Some(path) = cached
            && let Err(e) = write_cache(&component, &path)
        {
            tracing::warn!(path = %path.display(), "cannot cache compiled plugin: {e:#}");
        }
        let stats = LoadStats {
            from_cache: false,
            millis: start.elapsed().as_secs_f64() * 1e3,
        };
        Ok((component, stats))
    }

    /// Compiles without looking at the cache (benchmarks use this).
    pub fn compile(&self, wasm: &[u8]) -> Result<Component, PluginError> {
        if !wasm.starts_with(b"\0asm") {
            return Err(PluginError::Load(
                "not a WebAssembly file (missing \\0asm magic)".into(),
            ));
        }
        Component::new(&self.engine, wasm).map_err(|e| {
            PluginError::Load(format!(
                "not a valid WebAssembly component: {}",
                root_cause(&e)
            ))
        })
    }

    /// A fresh store with every limit applied.
    pub(super) fn store(&self) -> Store<CallState> {
        let stderr = MemoryOutputPipe::new(STDERR_CAPTURE);
        // No preopened dirs, env, args or sockets; a frozen clock and a
        // fixed-seed RNG (Rust's std asks for random hash keys at start), so
        // a plugin's output depends on its input alone. Only stderr is
        // captured, so a panic message can be reported.
        let wasi = WasiCtxBuilder::new()
            .stderr(stderr.clone())
            .wall_clock(FrozenClock)
            .monotonic_clock(FrozenClock)
            .secure_random(StdRng::seed_from_u64(0))
            .insecure_random(StdRng::seed_from_u64(0))
            .insecure_random_seed(0)
            .allow_tcp(false)
            .allow_udp(false)
            .allow_ip_name_lookup(false)
            .build();
        let state = CallState {
            wasi,
            table: ResourceTable::new(),
            limiter: StoreLimiter {
                cap: self.limits.memory_bytes,
                used: 0,
                denied: false,
            },
            stderr,
        };
        let mut store = Store::new(&self.engine, state);
        store.limiter(|s| &mut s.limiter);
        // One extra tick: the first one is partial, and a call must get at
        // least its whole budget.
        let ticks = self
            .limits
            .call_timeout
            .as_millis()
            .div_ceil(EPOCH_TICK.as_millis())
            + 1;
        store.set_epoch_deadline(ticks as u64);
        store.epoch_deadline_trap();
        store
    }

    /// Runs `call` in a fresh store and turns a trap into a [`PluginError`]
    /// that says why: deadline, memory cap, or the guest's own failure.
    /// `function` names the contract function for the metrics.
    pub(super) fn run<R>(
        &self,
        plugin: &str,
        function: &'static str,
        call: impl FnOnce(&mut Store<CallState>) -> wasmtime::Result<R>,
    ) -> Result<R, PluginError> {
        let mut store = self.store();
        let started = Instant::now();
        let result = call(&mut store);
        self.calls.observe(plugin, function, started.elapsed());
        let failed = |reason: &'static str| self.calls.failed(plugin, function, reason);
        match result {
            Ok(r) => Ok(r),
            Err(e) => {
                let state = store.data();
                if state.limiter.denied {
                    failed("memory-limit");
                    return Err(PluginError::MemoryLimit {
                        plugin: plugin.into(),
                        limit_mib: self.limits.memory_bytes >> 20,
                    });
                }
                if matches!(e.downcast_ref::<Trap>(), Some(Trap::Interrupt)) {
                    failed("timeout");
                    return Err(PluginError::Timeout {
                        plugin: plugin.into(),
                        millis: started.elapsed().as_millis() as u64,
                    });
                }
                let stderr = String::from_utf8_lossy(&state.stderr.contents())
                    .lines()
                    .map(str::trim)
                    .filter(|l| !l.is_empty() && !l.starts_with("note: run with"))
                    .collect::<Vec<_>>()
                    .join(" ");
                let mut message = root_cause(&e);
                if !stderr.is_empty() {
                    message = format!("{message}; plugin stderr: {stderr}");
                }
                failed("trapped");
                Err(PluginError::Trapped {
                    plugin: plugin.into(),
                    message,
                })
            }
        }
    }
}

fn write_cache(component: &Component, path: &Path) -> anyhow::Result<()> {
    let bytes = component
        .serialize()
        .map_err(|e| anyhow::anyhow!("{e:?}"))?;
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, bytes)?;
    std::fs::rename(&tmp, path)?;
    Ok(())
}

/// A one-line reason for a failed call: the trap code when there is one
/// (the wasm backtrace that wasmtime attaches helps nobody reading an API
/// error), else the innermost error message.
fn root_cause(e: &wasmtime::Error) -> String {
    if let Some(trap) = e.downcast_ref::<Trap>() {
        return format!("trapped: {trap}");
    }
    let text = format!("{e:?}");
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with("Stack backtrace"))
        .take(6)
        .collect::<Vec<_>>()
        .join(" / ")
}

/// Lowercase hex SHA-256 of `bytes`.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}
