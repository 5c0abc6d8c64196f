//! The sandbox: loads adapter components and runs one fresh, isolated instance per message.
//!
//! A tour:
//! - [`Runtime::new`] builds one wasmtime [`Engine`] for the process with the pooling
//!   allocator (instances come from pre-reserved slots, so a fresh instance costs
//!   microseconds), epoch interruption (the CPU budget) and a bounded wasm stack.
//! - [`Runtime::load`] compiles a component once per content hash (on-disk cache of
//!   precompiled artefacts under `cache_dir`, keyed by SHA-256 of the component and the
//!   engine's compatibility hash), links it, and keeps an [`InstancePre`] so instantiation
//!   skips all import resolution. It calls `describe` once to learn what the adapter handles.
//! - [`Runtime::map`] creates a new [`Store`] and instance for every message and drops both
//!   afterwards: one citizen's data never stays in an instance that sees the next message.
//!   The store carries the memory limit and the epoch deadline; traps are classified into a
//!   [`SandboxError`] an operator can act on.
//!
//! What the adapter can reach: the `host` interface of the WIT world (logging at debug level
//! and its tenant's config), stdio (stdin empty, stdout and stderr kept as a bounded tail),
//! an empty environment and a deterministic random source, so that `map` is a pure function
//! of its inputs and replays give identical records. Files, sockets, clocks and every other
//! import stop the call with [`SandboxError::Denied`] (see `capabilities`). What the adapter
//! hands the host is copied within [`SandboxLimits::max_output_bytes`].

mod bindings;
mod capabilities;
mod console;

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use efile_bridge_model::{AdapterInfo, EfileRecord, MappingError, MessageInfo};
use sha2::{Digest, Sha256};
use wasmtime::component::{Component, HasSelf, InstancePre, Linker, ResourceTable};
use wasmtime::{Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig, ResourceLimiter, Store, Trap};
use wasmtime_wasi::{WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView};

use bindings::{Adapter, AdapterPre, LogLevel};
use capabilities::Denied;
use console::Tail;

/// How often the epoch advances; the CPU budget is counted in these ticks.
const EPOCH_TICK: Duration = Duration::from_millis(5);

/// The wasm call stack an instance may use, in bytes (engine-wide). Deep enough for any
/// recursive descent over a message the intake accepts (at most 64 levels of nesting).
const MAX_WASM_STACK: usize = 1024 * 1024;

/// Longest message or XML path of a mapping error kept, in bytes: it goes into the journal.
const MAX_ERROR_TEXT: usize = 1024;

/// Longest panic message kept, in bytes.
const MAX_PANIC_TEXT: usize = 512;

/// How wasmtime words running out of hostcall fuel. Its error type is private, so the
/// message is matched; `tests/e2e/sandbox.rs` fails if an upgrade changes it.
const HOSTCALL_FUEL_EXHAUSTED: &str = "fuel allocated for hostcalls has been exhausted";

/// Limits for one adapter call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SandboxLimits {
    /// Wall-clock budget for one `map` call, rounded up to the epoch tick (5 ms).
    pub cpu_budget: Duration,
    /// Largest linear memory an instance may grow to, in bytes.
    pub max_memory_bytes: usize,
    /// Most bytes the host copies out of one call: every string and attachment byte of the
    /// records, plus what each record, identifier, metadata pair and attachment takes in
    /// the host; also the most one `log` or `config-get` call may pass.
    pub max_output_bytes: usize,
}

impl Default for SandboxLimits {
    fn default() -> Self {
        // A 30 KB message maps in well under a millisecond; a second is a generous ceiling that
        // still stops a runaway loop long before a sender times out. Output: a message's
        // records repeat its content a few times plus attachments, which the intake caps at
        // the body size (16 MiB by default).
        Self {
            cpu_budget: Duration::from_secs(1),
            max_memory_bytes: 64 * 1024 * 1024,
            max_output_bytes: 16 * 1024 * 1024,
        }
    }
}

/// Engine-wide settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuntimeConfig {
    /// Where precompiled components are cached; `None` disables the cache.
    pub cache_dir: Option<PathBuf>,
    /// How many instances may be alive at once (pool slots).
    pub max_instances: u32,
    /// The hard ceiling for [`SandboxLimits::max_memory_bytes`].
    pub max_memory_bytes: usize,
}

impl Default for RuntimeConfig {
    fn default() -> Self {
        Self { cache_dir: None, max_instances: 128, max_memory_bytes: 256 * 1024 * 1024 }
    }
}

/// Why an adapter call did not produce records.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SandboxError {
    /// The adapter reported a mapping error.
    #[error("adapter could not map the message: {0}")]
    Mapping(MappingError),
    /// The CPU budget ran out.
    #[error("adapter `{adapter}` exceeded its cpu budget of {budget_ms} ms")]
    CpuBudget {
        /// Adapter name.
        adapter: String,
        /// Budget.
        budget_ms: u128,
    },
    /// The memory limit was hit.
    #[error("adapter `{adapter}` exceeded its memory limit of {limit} bytes")]
    Memory {
        /// Adapter name.
        adapter: String,
        /// Limit.
        limit: usize,
    },
    /// The wasm call stack ran out (unbounded recursion).
    #[error("adapter `{adapter}` overflowed its call stack of {limit} bytes")]
    StackOverflow {
        /// Adapter name.
        adapter: String,
        /// Stack size.
        limit: usize,
    },
    /// The records (or a `log` line) were larger than [`SandboxLimits::max_output_bytes`].
    #[error("adapter `{adapter}` returned more than its output limit of {limit} bytes")]
    OutputTooLarge {
        /// Adapter name.
        adapter: String,
        /// Limit.
        limit: usize,
    },
    /// The adapter (written in Rust) panicked; location and message as it printed them.
    #[error("adapter `{adapter}` panicked at {location}: {message}")]
    Panic {
        /// Adapter name.
        adapter: String,
        /// `FILE:LINE:COLUMN` in the adapter's source.
        location: String,
        /// The panic message, cut to [`MAX_PANIC_TEXT`] bytes.
        message: String,
    },
    /// The adapter called an import the sandbox does not grant (files, sockets, clocks, ...).
    #[error("adapter `{adapter}` tried to use {capability} (`{import}`), which the sandbox does not grant")]
    Denied {
        /// Adapter name.
        adapter: String,
        /// What the import would have reached, e.g. `the network`.
        capability: String,
        /// The import, `interface#function`.
        import: String,
    },
    /// The adapter trapped for another reason (e.g. an out-of-bounds access, `exit`).
    #[error("adapter `{adapter}` trapped: {trap}")]
    Trap {
        /// Adapter name.
        adapter: String,
        /// wasmtime's description.
        trap: String,
    },
    /// No free instance slot, or another host-side failure.
    #[error("adapter `{adapter}` could not be run: {reason}")]
    Host {
        /// Adapter name.
        adapter: String,
        /// What went wrong.
        reason: String,
    },
}

/// Why an adapter could not be loaded.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LoadError {
    /// Not a valid component, or it imports something the host does not offer.
    #[error("component {hash} is not a valid adapter: {reason}")]
    Invalid {
        /// Content hash.
        hash: String,
        /// Why.
        reason: String,
    },
    /// The cache directory could not be used.
    #[error("component cache {path}: {source}")]
    Cache {
        /// Path.
        path: PathBuf,
        /// Cause.
        source: std::io::Error,
    },
}

/// A loaded adapter, ready to be instantiated per message.
pub struct LoadedAdapter {
    info: AdapterInfo,
    content_hash: String,
    pre: AdapterPre<SandboxState>,
}

impl LoadedAdapter {
    /// What the adapter said about itself.
    pub fn info(&self) -> &AdapterInfo {
        &self.info
    }

    /// SHA-256 of the component bytes, hex.
    pub fn content_hash(&self) -> &str {
        &self.content_hash
    }
}

impl std::fmt::Debug for LoadedAdapter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoadedAdapter").field("info", &self.info).field("content_hash", &self.content_hash).finish()
    }
}

/// Bytes of each linear memory kept resident between instances (a mapping of a 30 KB
/// message touches well under this).
const KEEP_RESIDENT: usize = 4 * 1024 * 1024;

/// Per-store state: what one adapter call can see.
pub struct SandboxState {
    wasi: WasiCtx,
    table: ResourceTable,
    limiter: MemoryLimiter,
    config: Arc<BTreeMap<String, String>>,
    tenant: Arc<str>,
    adapter: Arc<str>,
    stdout: Tail,
    stderr: Tail,
}

impl WasiView for SandboxState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView { ctx: &mut self.wasi, table: &mut self.table }
    }
}

impl bindings::Host for SandboxState {
    fn log(&mut self, level: LogLevel, message: String) {
        // Adapters see personal data, so nothing they say is logged above debug.
        let level = match level {
            LogLevel::Trace => "trace",
            LogLevel::Debug => "debug",
            LogLevel::Info => "info",
            LogLevel::Warn => "warn",
            LogLevel::Error => "error",
        };
        tracing::debug!(tenant = %self.tenant, adapter = %self.adapter, adapter_level = level, "{message}");
    }

    fn config_get(&mut self, key: String) -> Option<String> {
        self.config.get(&key).cloned()
    }
}

impl bindings::wit::Host for SandboxState {}

struct MemoryLimiter {
    max: usize,
    denied: bool,
}

impl ResourceLimiter for MemoryLimiter {
    fn memory_growing(&mut self, _current: usize, desired: usize, _maximum: Option<usize>) -> wasmtime::Result<bool> {
        let ok = desired <= self.max;
        self.denied |= !ok;
        Ok(ok)
    }

    fn table_growing(&mut self, _current: usize, desired: usize, _maximum: Option<usize>) -> wasmtime::Result<bool> {
        Ok(desired <= 100_000)
    }
}

/// The process-wide sandbox.
pub struct Runtime {
    engine: Engine,
    linker: Linker<SandboxState>,
    config: RuntimeConfig,
    loaded: Mutex<HashMap<String, Arc<LoadedAdapter>>>,
    compilations: AtomicU64,
    ticker_stop: Arc<AtomicBool>,
}

impl std::fmt::Debug for Runtime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Runtime").field("config", &self.config).finish_non_exhaustive()
    }
}

impl Drop for Runtime {
    fn drop(&mut self) {
        self.ticker_stop.store(true, Ordering::Relaxed);
    }
}

impl Runtime {
    /// Builds the engine, the linker and the epoch ticker.
    pub fn new(config: RuntimeConfig) -> Result<Self, LoadError> {
        let mut pool = PoolingAllocationConfig::default();
        pool.total_component_instances(config.max_instances)
            .total_core_instances(config.max_instances * 4)
            .total_memories(config.max_instances * 2)
            .total_tables(config.max_instances * 4)
            .max_memory_size(config.max_memory_bytes)
            .max_memories_per_component(4)
            .max_tables_per_component(8)
            .max_core_instances_per_component(16)
            // Keep a few slots warm so their pages need not be faulted in again.
            .max_unused_warm_slots(config.max_instances / 4)
            // A fresh instance per message would otherwise page-fault its whole heap in again
            // on every call; resetting the first pages with memset keeps them resident.
            .linear_memory_keep_resident(KEEP_RESIDENT)
            .table_keep_resident(64 * 1024)
            .pagemap_scan(wasmtime::Enabled::Auto);
        let mut wasm = Config::new();
        wasm.wasm_component_model(true)
            .epoch_interruption(true)
            .max_wasm_stack(MAX_WASM_STACK)
            .allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
        let engine =
            Engine::new(&wasm).map_err(|e| LoadError::Invalid { hash: "-".into(), reason: format!("engine: {e}") })?;
        let mut linker = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_sync(&mut linker)
            .and_then(|()| Adapter::add_to_linker::<_, HasSelf<_>>(&mut linker, |s| s))
            .map_err(|e| LoadError::Invalid { hash: "-".into(), reason: format!("linker: {e}") })?;

        let ticker_stop = Arc::new(AtomicBool::new(false));
        let stop = ticker_stop.clone();
        let ticking = engine.weak();
        std::thread::Builder::new()
            .name("efile-epoch".into())
            .spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    std::thread::sleep(EPOCH_TICK);
                    match ticking.upgrade() {
                        Some(engine) => engine.increment_epoch(),
                        None => break,
                    }
                }
            })
            .map_err(|e| LoadError::Cache { path: PathBuf::new(), source: e })?;

        Ok(Self {
            engine,
            linker,
            config,
            loaded: Mutex::new(HashMap::new()),
            compilations: AtomicU64::new(0),
            ticker_stop,
        })
    }

    /// Loads (or returns the already loaded) adapter for these component bytes.
    pub fn load(&self, wasm: &[u8]) -> Result<Arc<LoadedAdapter>, LoadError> {
        let hash = hex::encode(Sha256::digest(wasm));
        if let Some(a) = self.lock_loaded().get(&hash) {
            return Ok(a.clone());
        }
        let invalid = |reason: String| LoadError::Invalid { hash: hash.clone(), reason };
        let component = self.compile(&hash, wasm)?;
        let linker = capabilities::linker_for(&self.linker, &self.engine, &component)
            .map_err(|e| invalid(format!("linker: {e:#}")))?;
        let pre: InstancePre<SandboxState> =
            linker.instantiate_pre(&component).map_err(|e| invalid(format!("{e:#}")))?;
        let pre = AdapterPre::new(pre).map_err(|e| invalid(format!("{e:#}")))?;
        let mut store = self.store(Arc::from("-"), Arc::from("loading"), Arc::default(), &SandboxLimits::default());
        let instance = pre.instantiate(&mut store).map_err(|e| invalid(format!("{e:#}")))?;
        let info: AdapterInfo =
            instance.call_describe(&mut store).map_err(|e| invalid(format!("describe: {e:#}")))?.into();
        tracing::info!(adapter = %info.name, version = %info.version, hash = %hash, "adapter loaded");
        let loaded = Arc::new(LoadedAdapter { info, content_hash: hash.clone(), pre });
        self.lock_loaded().insert(hash, loaded.clone());
        Ok(loaded)
    }

    fn lock_loaded(&self) -> std::sync::MutexGuard<'_, HashMap<String, Arc<LoadedAdapter>>> {
        // A panic while holding this lock cannot leave the map half-updated (single insert).
        self.loaded.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// How many components this runtime has compiled with Cranelift. Loading bytes it already
    /// loaded, or whose precompiled artefact is in the cache directory, does not count: with
    /// a warm cache a restart compiles nothing, however many tenants share an adapter.
    pub fn compilations(&self) -> u64 {
        self.compilations.load(Ordering::Relaxed)
    }

    fn compile(&self, hash: &str, wasm: &[u8]) -> Result<Component, LoadError> {
        let invalid = |reason: String| LoadError::Invalid { hash: hash.to_owned(), reason };
        let Some(dir) = &self.config.cache_dir else {
            self.compilations.fetch_add(1, Ordering::Relaxed);
            return Component::new(&self.engine, wasm).map_err(|e| invalid(format!("{e:#}")));
        };
        let compat = {
            use std::hash::{Hash, Hasher};
            let mut h = std::collections::hash_map::DefaultHasher::new();
            self.engine.precompile_compatibility_hash().hash(&mut h);
            h.finish()
        };
        let path = dir.join(format!("{hash}-{compat:016x}.cwasm"));
        if path.exists() {
            // SAFETY: files in the cache directory are written only by `Engine::precompile_component`
            // below (atomically, via rename) and are keyed by the engine's compatibility hash;
            // the data directory is the operator's and not writable by senders or adapters.
            #[allow(unsafe_code, reason = "deserializing our own precompiled artefact")]
            let cached = unsafe { Component::deserialize_file(&self.engine, &path) };
            match cached {
                Ok(c) => return Ok(c),
                Err(e) => {
                    tracing::warn!(path = %path.display(), error = %e, "ignoring unusable cached component")
                }
            }
        }
        self.compilations.fetch_add(1, Ordering::Relaxed);
        let bytes = self.engine.precompile_component(wasm).map_err(|e| invalid(format!("{e:#}")))?;
        let cache_err = |source| LoadError::Cache { path: path.clone(), source };
        std::fs::create_dir_all(dir).map_err(cache_err)?;
        let tmp = path.with_extension("tmp");
        std::fs::write(&tmp, &bytes).and_then(|()| std::fs::rename(&tmp, &path)).map_err(cache_err)?;
        #[allow(unsafe_code, reason = "deserializing the artefact we just produced")]
        // SAFETY: `bytes` was produced by `precompile_component` of this very engine.
        let component = unsafe { Component::deserialize(&self.engine, &bytes) };
        component.map_err(|e| invalid(format!("{e:#}")))
    }

    fn store(
        &self,
        tenant: Arc<str>,
        adapter: Arc<str>,
        config: Arc<BTreeMap<String, String>>,
        limits: &SandboxLimits,
    ) -> Store<SandboxState> {
        let mut wasi = WasiCtxBuilder::new();
        // Determinism: same input, same output. No entropy reaches the adapter. The clocks are
        // denied at link time (`capabilities`); frozen ones here keep it so should a clock
        // interface ever be granted.
        wasi.secure_random(wasmtime_wasi::Deterministic::new(vec![0]))
            .insecure_random(wasmtime_wasi::Deterministic::new(vec![0]))
            .insecure_random_seed(0)
            // The standard library asks for a few bytes at a time; the host allocates what is
            // asked for before the guest's memory limit sees it.
            .max_random_size(64 * 1024)
            .wall_clock(FrozenClock)
            .monotonic_clock(FrozenClock);
        // Enough for a panic message; more when someone reads the output in the debug log.
        let keep = if tracing::enabled!(tracing::Level::DEBUG) { 64 * 1024 } else { 4 * 1024 };
        let (stdout, stderr) = (Tail::new(keep), Tail::new(keep));
        wasi.stdout(stdout.clone()).stderr(stderr.clone());
        let state = SandboxState {
            wasi: wasi.build(),
            table: ResourceTable::new(),
            limiter: MemoryLimiter { max: limits.max_memory_bytes.min(self.config.max_memory_bytes), denied: false },
            config,
            tenant,
            adapter,
            stdout,
            stderr,
        };
        let mut store = Store::new(&self.engine, state);
        store.limiter(|s| &mut s.limiter);
        // wasmtime charges every string byte and every list element (at its size in the host)
        // against this as it copies a result or a host call's arguments out of the instance,
        // before copying it. Counting per occurrence, it also stops many records pointing at
        // one big buffer from multiplying in host memory.
        store.set_hostcall_fuel(limits.max_output_bytes);
        let ticks = limits.cpu_budget.as_millis().div_ceil(EPOCH_TICK.as_millis()).max(1);
        store.set_epoch_deadline(u64::try_from(ticks).unwrap_or(u64::MAX));
        store.epoch_deadline_trap();
        store
    }

    /// Maps one message in a fresh instance of `adapter`.
    pub fn map(
        &self,
        adapter: &LoadedAdapter,
        tenant_config: Arc<BTreeMap<String, String>>,
        limits: &SandboxLimits,
        info: &MessageInfo,
        xml: &str,
    ) -> Result<Vec<EfileRecord>, SandboxError> {
        let name: Arc<str> = Arc::from(adapter.info.name.as_str());
        let mut store = self.store(Arc::from(info.tenant_ags.as_str()), name.clone(), tenant_config, limits);
        let result =
            adapter.pre.instantiate(&mut store).and_then(|instance| instance.call_map(&mut store, &(info.into()), xml));
        flush_output(&store);
        match result {
            Ok(Ok(records)) => Ok(records.into_iter().map(Into::into).collect()),
            Ok(Err(e)) => {
                let mut e: MappingError = e.into();
                e.message = truncate(&e.message, MAX_ERROR_TEXT);
                e.xml_path = truncate(&e.xml_path, MAX_ERROR_TEXT);
                Err(SandboxError::Mapping(e))
            }
            Err(e) => Err(classify(e, &store, &name, limits)),
        }
    }

    /// The engine, for tools that precompile.
    pub fn engine(&self) -> &Engine {
        &self.engine
    }
}

fn flush_output(store: &Store<SandboxState>) {
    let state = store.data();
    if tracing::enabled!(tracing::Level::DEBUG) {
        for (stream, tail) in [("stdout", &state.stdout), ("stderr", &state.stderr)] {
            let text = tail.text();
            if !text.is_empty() {
                tracing::debug!(tenant = %state.tenant, adapter = %state.adapter, stream, "{text}");
            }
        }
    }
}

/// Turns a failed call into the reason an operator reads. The memory limiter is asked first:
/// a denied allocation makes the guest abort with a plain trap that would hide the cause.
fn classify(e: wasmtime::Error, store: &Store<SandboxState>, adapter: &str, limits: &SandboxLimits) -> SandboxError {
    let adapter = adapter.to_owned();
    if store.data().limiter.denied {
        return SandboxError::Memory { adapter, limit: store.data().limiter.max };
    }
    if let Some(denied) = e.downcast_ref::<Denied>() {
        return SandboxError::Denied {
            adapter,
            capability: denied.capability().to_owned(),
            import: denied.import.clone(),
        };
    }
    if let Some(exit) = e.downcast_ref::<wasmtime_wasi::I32Exit>() {
        return SandboxError::Trap { adapter, trap: format!("called exit({}) instead of returning", exit.0) };
    }
    match e.downcast_ref::<Trap>() {
        Some(Trap::Interrupt) => SandboxError::CpuBudget { adapter, budget_ms: limits.cpu_budget.as_millis() },
        Some(Trap::StackOverflow) => SandboxError::StackOverflow { adapter, limit: MAX_WASM_STACK },
        Some(Trap::UnreachableCodeReached) => match console::panic_message(&store.data().stderr.text()) {
            Some((location, message)) => {
                SandboxError::Panic { adapter, location, message: truncate(&message, MAX_PANIC_TEXT) }
            }
            None => SandboxError::Trap { adapter, trap: Trap::UnreachableCodeReached.to_string() },
        },
        Some(trap) => SandboxError::Trap { adapter, trap: trap.to_string() },
        None if format!("{e:#}").contains(HOSTCALL_FUEL_EXHAUSTED) => {
            SandboxError::OutputTooLarge { adapter, limit: limits.max_output_bytes }
        }
        None => SandboxError::Host { adapter, reason: format!("{e:#}") },
    }
}

/// `text` cut to at most `max` bytes at a character boundary, with `…` if it was cut.
fn truncate(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_owned();
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &text[..end])
}

struct FrozenClock;

impl wasmtime_wasi::HostWallClock for FrozenClock {
    fn resolution(&self) -> Duration {
        Duration::from_secs(1)
    }
    fn now(&self) -> Duration {
        Duration::ZERO
    }
}

impl wasmtime_wasi::HostMonotonicClock for FrozenClock {
    fn resolution(&self) -> u64 {
        1_000_000_000
    }
    fn now(&self) -> u64 {
        0
    }
}

#[cfg(test)]
mod tests {
    use super::truncate;

    #[test]
    fn truncation_keeps_whole_characters() {
        assert_eq!(truncate("abc", 3), "abc");
        assert_eq!(truncate("abcd", 3), "abc…");
        // `ä` is two bytes; a cut inside it backs off to the boundary before.
        assert_eq!(truncate("aää", 2), "a…");
    }
}
