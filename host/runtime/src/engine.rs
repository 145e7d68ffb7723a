//! The one wasmtime engine: pooling allocator, epoch interruption and its ticker.

use crate::error::RuntimeError;
use std::path::PathBuf;
use std::time::Duration;
use wasmtime::{Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig, WasmBacktraceDetails};

/// The key that authenticates cached compiled components; never printed.
#[derive(Clone, Copy)]
pub struct CacheKey(pub [u8; 32]);

impl std::fmt::Debug for CacheKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CacheKey([redacted])")
    }
}

/// How the host runs plugins. The defaults suit a 2-core host with a few
/// dozen plugin instances live at once.
#[derive(Debug, Clone)]
pub struct RuntimeOptions {
    /// Where compiled components are cached (`None`: compile in memory).
    pub cache_dir: Option<PathBuf>,
    /// The key that authenticates cached components (the host derives it from the master
    /// key); without one nothing is cached on disk.
    pub cache_key: Option<CacheKey>,
    /// Deadline of one plugin call, unless the tenant sets one.
    pub default_deadline: Duration,
    /// Memory limit of one plugin instance in MiB, unless the tenant sets one.
    pub default_memory_mib: u64,
    /// Hard ceiling for any instance's memory (the pooling slot size) in MiB.
    pub max_memory_mib: u64,
    /// Instances that may be in a call at once; further calls wait for a slot.
    pub max_instances: u32,
    /// Idle warm instances kept across all tenants and plugins.
    pub max_idle_instances: u32,
    /// Warm instances kept idle per (tenant, plugin version).
    pub warm_per_tenant: usize,
    /// How often the epoch advances; deadlines are checked at this granularity.
    pub epoch_tick: Duration,
    /// Use the pooling allocator (faster instantiation).
    pub pooling: bool,
    /// Of `max_instances`, how many draft rule sets (tests, impact previews) may hold at
    /// once over all tenants; 0: a quarter (at least 1).
    pub draft_instances: u32,
    /// How many of those one tenant may hold; 0: half of them (at least 1).
    pub draft_instances_per_tenant: u32,
}

impl Default for RuntimeOptions {
    fn default() -> Self {
        Self {
            cache_dir: None,
            cache_key: None,
            default_deadline: Duration::from_secs(10),
            default_memory_mib: 128,
            max_memory_mib: 512,
            max_instances: 64,
            max_idle_instances: 128,
            warm_per_tenant: 4,
            epoch_tick: Duration::from_millis(5),
            pooling: true,
            draft_instances: 0,
            draft_instances_per_tenant: 0,
        }
    }
}

impl RuntimeOptions {
    /// Draft calls in a call at once, over all tenants (never all of the slots).
    pub fn draft_limit(&self) -> usize {
        let limit = match self.draft_instances {
            0 => self.max_instances / 4,
            n => n.min(self.max_instances.saturating_sub(1)),
        };
        limit.max(1) as usize
    }

    /// Draft calls one tenant may have in a call at once.
    pub fn draft_limit_per_tenant(&self) -> usize {
        match self.draft_instances_per_tenant {
            0 => (self.draft_limit() / 2).max(1),
            n => (n as usize).min(self.draft_limit()),
        }
    }

    /// Sized for `workers` concurrent calls: each can keep a warm instance of each plugin.
    pub fn for_workers(workers: usize) -> Self {
        let workers = workers.max(1);
        let defaults = RuntimeOptions::default();
        RuntimeOptions {
            warm_per_tenant: defaults.warm_per_tenant.max(workers),
            max_instances: defaults.max_instances.max(2 * workers as u32),
            max_idle_instances: defaults.max_idle_instances.max(4 * workers as u32),
            ..defaults
        }
    }
}

/// Bytes of a reused pooling slot reset in place (memset) rather than decommitted:
/// small plugins touch about this much, so reuse avoids their page faults. With
/// `pagemap_scan` only the dirty pages among them are reset.
const KEEP_RESIDENT: usize = 256 << 10;

/// Builds the engine. Python components hold ~40 core instances each, so the
/// core-instance pool is sized from `max_instances` with that in mind. Linear
/// memories keep wasmtime's default 4 GiB reservation with guard pages, so
/// compiled code needs no explicit bounds checks (about 2x faster guest code).
pub(crate) fn build_engine(options: &RuntimeOptions) -> Result<Engine, RuntimeError> {
    let mut config = Config::new();
    config.wasm_component_model(true);
    config.epoch_interruption(true);
    config.wasm_backtrace_details(WasmBacktraceDetails::Enable);
    config.async_stack_size(2 << 20);
    config.max_wasm_stack(1 << 20);
    // `TENURE_WASM_PERFMAP=1`: name plugin functions for `perf` (/tmp/perf-<pid>.map).
    if std::env::var_os("TENURE_WASM_PERFMAP").is_some() {
        config.profiler(wasmtime::ProfilingStrategy::PerfMap);
    }
    if options.pooling {
        // Slots for every instance that can be live: busy ones plus idle warm ones.
        let n = (options.max_instances + options.max_idle_instances).max(1);
        let mut pool = PoolingAllocationConfig::default();
        pool.total_component_instances(n)
            .total_core_instances(n.saturating_mul(50))
            .total_memories(n.saturating_mul(2))
            .total_tables(n.saturating_mul(50))
            .total_stacks(n)
            .max_memories_per_component(32)
            .max_tables_per_component(64)
            .max_core_instances_per_component(64)
            .max_tables_per_module(8)
            .table_elements(200_000)
            .max_core_instance_size(8 << 20)
            .max_component_instance_size(8 << 20)
            .max_memory_size((options.max_memory_mib as usize) << 20)
            .max_unused_warm_slots(n / 2)
            .linear_memory_keep_resident(KEEP_RESIDENT)
            .table_keep_resident(KEEP_RESIDENT)
            // Linux 6.7+: reset only the pages the last instance dirtied, found with the
            // PAGEMAP_SCAN ioctl, instead of all of the first KEEP_RESIDENT bytes
            // (pooled instantiate + call 21 -> 18 us); older kernels keep the memset.
            .pagemap_scan(wasmtime::Enabled::Auto);
        config.allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
    }
    Engine::new(&config).map_err(|e| RuntimeError::Engine(format!("{e:#}")))
}

/// Advances the engine's epoch every `tick` until the engine is dropped.
pub(crate) fn start_epoch_ticker(engine: &Engine, tick: Duration) {
    let weak = engine.weak();
    let spawned = std::thread::Builder::new()
        .name("tenure-epoch".into())
        .spawn(move || {
            while let Some(engine) = weak.upgrade() {
                engine.increment_epoch();
                drop(engine);
                std::thread::sleep(tick);
            }
        });
    if let Err(e) = spawned {
        tracing::error!(error = %e, "cannot start the epoch ticker; plugin deadlines will not fire");
    }
}
