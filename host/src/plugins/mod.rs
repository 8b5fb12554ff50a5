//! Plugins: the WebAssembly sandbox and the loaded distribution families and
//! scanner policies.
//!
//! This module is the only part of the host that touches wasmtime. The rest of
//! the daemon sees [`PluginHost`], the plain-data contract types re-exported
//! as [`contract`] and [`policy_contract`], and [`PluginError`].
//!
//! - `runtime`: one Engine, the compiled-component cache and every limit.
//! - `registry`: discovery, loading, name and distribution ownership.
//! - `checks`: validation of everything a plugin returns.

mod bindings;
pub mod checks;
mod registry;
mod runtime;
pub mod shared;

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use tokio::sync::{Mutex, Semaphore};

pub use registry::{
    CONTRACT_VERSION, Failure, Family, Plugin, PluginKind, PluginMeta, PluginSections, Policy,
    Registry, load_plugin,
};
pub use runtime::{Limits, LoadStats, Runtime, WASMTIME_VERSION, sha256_hex};

/// Records and enums of the `family` interface, as the host sees them.
pub mod contract {
    pub use super::bindings::family::exports::repod::plugin::family::*;
    pub use super::bindings::family::repod::plugin::types::{ContainerFormat, Field};

    /// The value of `key` in an `extensions` list (the contract's way to
    /// grow a record), if present.
    pub fn extension<'a>(extensions: &'a [Field], key: &str) -> Option<&'a str> {
        extensions
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

/// Records and enums of the `policy` interface, as the host sees them.
pub mod policy_contract {
    pub use super::bindings::policy::exports::repod::plugin::policy::*;
}

/// Why a plugin call or load failed.
#[derive(Debug, thiserror::Error)]
pub enum PluginError {
    #[error("plugin {plugin} did not finish within its deadline ({millis} ms)")]
    Timeout { plugin: String, millis: u64 },
    #[error("plugin {plugin} exceeded its memory limit of {limit_mib} MiB")]
    MemoryLimit { plugin: String, limit_mib: usize },
    #[error("plugin {plugin} failed: {message}")]
    Trapped { plugin: String, message: String },
    #[error("plugin {plugin} returned unusable output from {function}: {message}")]
    BadOutput {
        plugin: String,
        function: String,
        message: String,
    },
    /// The plugin refused the request; the message is meant for the user.
    #[error("{0}")]
    Rejected(String),
    #[error("{0}")]
    Load(String),
}

/// Why an admin's plugin upload or removal was refused.
#[derive(Debug, thiserror::Error)]
pub enum InstallError {
    #[error("the plugin cannot be loaded: {0}")]
    Broken(#[from] PluginError),
    #[error("{0}")]
    Conflict(String),
    #[error("no plugin named {0} is loaded")]
    NotFound(String),
    #[error("cannot write the plugin directory: {0}")]
    Io(#[from] std::io::Error),
}

/// The daemon's plugin set: the current [`Registry`] plus the operations that
/// replace it. Reads are lock-free snapshots (`registry()`); changes are
/// serialised and swap in a whole new registry.
pub struct PluginHost {
    runtime: Arc<Runtime>,
    dir: PathBuf,
    sections: PluginSections,
    current: RwLock<Arc<Registry>>,
    changes: Mutex<()>,
    permits: Semaphore,
}

impl PluginHost {
    /// Starts the runtime and loads every plugin in `dir`. Broken plugins are
    /// logged and listed, never fatal.
    pub fn start(
        limits: Limits,
        dir: &Path,
        cache_dir: Option<PathBuf>,
        sections: PluginSections,
    ) -> anyhow::Result<PluginHost> {
        std::fs::create_dir_all(dir)?;
        let permits = Semaphore::new(limits.max_instances as usize);
        let runtime = Arc::new(Runtime::new(limits, cache_dir)?);
        let registry = Registry::scan(&runtime, dir, &sections);
        Ok(PluginHost {
            runtime,
            dir: dir.to_owned(),
            sections,
            current: RwLock::new(Arc::new(registry)),
            changes: Mutex::new(()),
            permits,
        })
    }

    pub fn registry(&self) -> Arc<Registry> {
        self.current.read().expect("registry lock").clone()
    }

    fn swap(&self, next: Registry) -> Arc<Registry> {
        let next = Arc::new(next);
        *self.current.write().expect("registry lock") = next.clone();
        next
    }

    /// Runs plugin work on the blocking pool, at most as many at once as the
    /// instance pool holds, so a burst queues instead of failing.
    pub async fn blocking<T: Send + 'static>(
        &self,
        work: impl FnOnce(Arc<Registry>) -> T + Send + 'static,
    ) -> T {
        let _permit = self
            .permits
            .acquire()
            .await
            .expect("semaphore never closed");
        let registry = self.registry();
        tokio::task::spawn_blocking(move || work(registry))
            .await
            .expect("plugin work panicked")
    }

    /// Rescans the plugin directory.
    pub async fn reload(&self) -> Arc<Registry> {
        let _guard = self.changes.lock().await;
        let (runtime, dir, sections) = (
            self.runtime.clone(),
            self.dir.clone(),
            self.sections.clone(),
        );
        let next = tokio::task::spawn_blocking(move || Registry::scan(&runtime, &dir, &sections))
            .await
            .expect("plugin scan panicked");
        self.swap(next)
    }

    /// Loads `wasm`, and if it works and clashes with nothing, stores it as
    /// `<name>.wasm` and makes it live, replacing a plugin of the same name.
    /// Returns the plugin and whether it replaced one. A refused upload
    /// leaves the directory and the live set untouched.
    pub async fn install(&self, wasm: Vec<u8>) -> Result<(Arc<Plugin>, bool), InstallError> {
        let _guard = self.changes.lock().await;
        let runtime = self.runtime.clone();
        let sections = self.sections.clone();
        let plugin = tokio::task::spawn_blocking(move || {
            load_plugin(&runtime, "upload", &wasm, &sections).map(|mut p| {
                p.meta.file = format!("{}.wasm", p.meta.name);
                (p, wasm)
            })
        })
        .await
        .expect("plugin load panicked");
        let (plugin, wasm) = plugin?;
        let name = plugin.meta.name.clone();
        let current = self.registry();
        let previous_file = current.plugin(&name).map(|p| p.meta.file.clone());
        let next = current.with(plugin).map_err(InstallError::Conflict)?;

        let target = self.dir.join(format!("{name}.wasm"));
        write_atomically(&target, &wasm)?;
        let replaced = previous_file.is_some();
        if let Some(old) = previous_file.filter(|f| *f != format!("{name}.wasm")) {
            std::fs::remove_file(self.dir.join(old))?;
        }
        let next = self.swap(next);
        let plugin = next.plugin(&name).expect("just inserted").clone();
        Ok((plugin, replaced))
    }

    /// Unloads plugin `name` and deletes its file.
    pub async fn remove(&self, name: &str) -> Result<(), InstallError> {
        let _guard = self.changes.lock().await;
        let current = self.registry();
        let plugin = current
            .plugin(name)
            .ok_or_else(|| InstallError::NotFound(name.into()))?;
        std::fs::remove_file(self.dir.join(&plugin.meta.file))?;
        self.swap(current.without(name));
        Ok(())
    }

    pub fn limits(&self) -> &Limits {
        self.runtime.limits()
    }

    /// Durations and failures of every plugin call (`GET /metrics`).
    pub fn calls(&self) -> &crate::metrics::PluginCalls {
        self.runtime.calls()
    }
}

fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let tmp = path.with_extension("wasm.part");
    let mut f = std::fs::File::create(&tmp)?;
    f.write_all(bytes)?;
    f.sync_all()?;
    std::fs::rename(&tmp, path)
}
