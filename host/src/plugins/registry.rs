//! Which plugins are loaded, which failed and why, and who owns each
//! distribution. A `Registry` is immutable: a reload or an upload builds a
//! new one and swaps it in, so in-flight calls keep the plugins they started
//! with.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::Serialize;

use super::bindings::{family as fam, policy as pol};
use super::contract::{
    ClientConfig, Distribution, FamilyInfo, Frame, Ordering, ParsedPackage, Prepared, Publication,
    PublishedFile,
};
use super::policy_contract::{Case, Decision, PolicyInfo};
use super::runtime::{CallState, LoadStats, Runtime, sha256_hex};
use super::{PluginError, checks};

/// The contract this host speaks (the `package` line of `wit/plugin.wit`).
pub const CONTRACT_VERSION: &str = "0.1.0";
const FAMILY_EXPORT: &str = "repod:plugin/family@";
const POLICY_EXPORT: &str = "repod:plugin/policy@";

/// Configuration sections for plugins, by plugin name, as JSON text.
pub type PluginSections = BTreeMap<String, String>;

/// What every plugin reports about itself.
#[derive(Debug, Clone, Serialize)]
pub struct PluginMeta {
    pub name: String,
    pub version: String,
    pub description: String,
    /// The `repod:plugin` contract version the component exports.
    pub contract: String,
    pub file: String,
    pub sha256: String,
    pub load: LoadStats,
}

/// A loaded distribution-family plugin.
pub struct Family {
    name: String,
    runtime: Arc<Runtime>,
    pre: fam::DistroFamilyPre<CallState>,
    pub info: FamilyInfo,
}

/// A loaded scanner-policy plugin.
pub struct Policy {
    name: String,
    runtime: Arc<Runtime>,
    pre: pol::ScannerPolicyPre<CallState>,
    pub info: PolicyInfo,
}

pub enum PluginKind {
    Family(Family),
    Policy(Policy),
}

pub struct Plugin {
    pub meta: PluginMeta,
    pub kind: PluginKind,
}

/// A `.wasm` that could not be loaded, kept for the listing.
#[derive(Debug, Clone, Serialize)]
pub struct Failure {
    pub file: String,
    pub error: String,
}

impl Family {
    fn call<R>(
        &self,
        function: &'static str,
        f: impl FnOnce(
            &fam::exports::repod::plugin::family::Guest,
            &mut wasmtime::Store<CallState>,
        ) -> wasmtime::Result<R>,
    ) -> Result<R, PluginError> {
        self.runtime.run(&self.name, function, |store| {
            let instance = self.pre.instantiate(&mut *store)?;
            f(instance.repod_plugin_family(), store)
        })
    }

    pub fn plugin_name(&self) -> &str {
        &self.name
    }

    pub fn distribution(&self, id: &str) -> Option<&Distribution> {
        self.info.distributions.iter().find(|d| d.id == id)
    }

    /// Validates, places and renders `packages` for `dist`; the inner
    /// `Err` is the plugin's rejection of that package, for the uploader.
    pub fn prepare(
        &self,
        dist: &Distribution,
        packages: &[ParsedPackage],
    ) -> Result<Vec<Result<Prepared, String>>, PluginError> {
        let out = self.call("prepare", |g, s| g.call_prepare(s, dist, packages))?;
        checks::count("prepare", &out, packages.len())
            .map_err(|e| self.runtime.bad_output(&self.name, "prepare", e))?;
        for p in out.iter().flatten() {
            checks::prepared(dist, p)
                .map_err(|e| self.runtime.bad_output(&self.name, "prepare", e))?;
        }
        for e in out.iter().filter_map(|r| r.as_ref().err()) {
            checks::label("rejection message", e, 4096)
                .map_err(|e| self.runtime.bad_output(&self.name, "prepare", e))?;
        }
        Ok(out)
    }

    pub fn compare_versions(
        &self,
        pairs: &[(String, String)],
    ) -> Result<Vec<Ordering>, PluginError> {
        let out = self.call("compare-versions", |g, s| g.call_compare_versions(s, pairs))?;
        checks::count("compare-versions", &out, pairs.len())
            .map_err(|e| self.runtime.bad_output(&self.name, "compare-versions", e))?;
        Ok(out)
    }

    pub fn render_frames(
        &self,
        dist: &Distribution,
        indexes: &[(String, u64)],
    ) -> Result<Vec<Frame>, PluginError> {
        let out = self
            .call("render-frames", |g, s| {
                g.call_render_frames(s, dist, indexes)
            })?
            .map_err(PluginError::Rejected)?;
        checks::frames(&out, indexes.len())
            .map_err(|e| self.runtime.bad_output(&self.name, "render-frames", e))?;
        Ok(out)
    }

    pub fn render_top_level(
        &self,
        dist: &Distribution,
        files: &[PublishedFile],
        now: u64,
    ) -> Result<Publication, PluginError> {
        let out = self
            .call("render-top-level", |g, s| {
                g.call_render_top_level(s, dist, files, now)
            })?
            .map_err(PluginError::Rejected)?;
        checks::publication(&out)
            .map_err(|e| self.runtime.bad_output(&self.name, "render-top-level", e))?;
        Ok(out)
    }

    pub fn render_client_config(
        &self,
        dist: &Distribution,
        base_url: &str,
        key_url: &str,
    ) -> Result<ClientConfig, PluginError> {
        let out = self
            .call("render-client-config", |g, s| {
                g.call_render_client_config(s, dist, base_url, key_url)
            })?
            .map_err(PluginError::Rejected)?;
        checks::client_config(&out).map_err(|e| {
            self.runtime
                .bad_output(&self.name, "render-client-config", e)
        })?;
        Ok(out)
    }
}

impl Policy {
    pub fn plugin_name(&self) -> &str {
        &self.name
    }

    /// One decision per case, under this policy's configured settings.
    pub fn evaluate(&self, cases: &[Case]) -> Result<Vec<Decision>, PluginError> {
        let out = self.runtime.run(&self.name, "evaluate", |store| {
            let instance = self.pre.instantiate(&mut *store)?;
            instance
                .repod_plugin_policy()
                .call_evaluate(store, &self.info.settings, cases)
        })?;
        checks::count("evaluate", &out, cases.len())
            .map_err(|e| self.runtime.bad_output(&self.name, "evaluate", e))?;
        for d in &out {
            checks::label("decision reason", &d.reason, 4096)
                .map_err(|e| self.runtime.bad_output(&self.name, "evaluate", e))?;
        }
        Ok(out)
    }
}

/// The names a component exports (interface names carry the contract version).
fn exported_contract(runtime: &Runtime, component: &wasmtime::component::Component) -> Vec<String> {
    component
        .component_type()
        .exports(runtime.engine())
        .map(|(name, _)| name.to_owned())
        .collect()
}

/// Compiles (or loads from cache), checks and describes one plugin.
pub fn load_plugin(
    runtime: &Arc<Runtime>,
    file: &str,
    wasm: &[u8],
    sections: &PluginSections,
) -> Result<Plugin, PluginError> {
    let sha256 = sha256_hex(wasm);
    let (component, load) = runtime.load_component(wasm, &sha256)?;
    let exports = exported_contract(runtime, &component);
    let speaks = |prefix: &str| {
        exports
            .iter()
            .find_map(|e| e.strip_prefix(prefix).map(str::to_owned))
    };
    let (family_version, policy_version) = (speaks(FAMILY_EXPORT), speaks(POLICY_EXPORT));
    let contract = match (&family_version, &policy_version) {
        (Some(v), _) | (None, Some(v)) => v.clone(),
        (None, None) => {
            return Err(PluginError::Load(format!(
                "exports neither {FAMILY_EXPORT}{CONTRACT_VERSION} nor {POLICY_EXPORT}{CONTRACT_VERSION} (exports: {})",
                if exports.is_empty() {
                    "nothing".into()
                } else {
                    exports.join(", ")
                }
            )));
        }
    };
    if !compatible(&contract) {
        return Err(PluginError::Load(format!(
            "built for contract repod:plugin@{contract}; this daemon speaks repod:plugin@{CONTRACT_VERSION}"
        )));
    }
    let instance_pre = runtime.linker().instantiate_pre(&component).map_err(|e| {
        PluginError::Load(format!(
            "imports something the sandbox does not provide: {e}"
        ))
    })?;

    let section = |name: &str| sections.get(name).cloned().unwrap_or_else(|| "{}".into());
    let incompatible =
        |e: wasmtime::Error| PluginError::Load(format!("does not match the contract: {e}"));

    if family_version.is_some() {
        let pre = fam::DistroFamilyPre::new(instance_pre).map_err(incompatible)?;
        let (plugin_info, result) = runtime.run(file, "describe", |store| {
            let instance = pre.instantiate(&mut *store)?;
            let plugin_info = instance.repod_plugin_plugin().call_info(&mut *store)?;
            let config = section(&plugin_info.name);
            let result = instance
                .repod_plugin_family()
                .call_describe(&mut *store, &config)?;
            Ok((plugin_info, result))
        })?;
        let (meta, info) = described(
            meta(runtime, plugin_info, contract, file, sha256, load)?,
            result,
        )?;
        checks::family_info(&info).map_err(|e| runtime.bad_output(&meta.name, "describe", e))?;
        let name = meta.name.clone();
        Ok(Plugin {
            meta,
            kind: PluginKind::Family(Family {
                name,
                runtime: runtime.clone(),
                pre,
                info,
            }),
        })
    } else {
        let pre = pol::ScannerPolicyPre::new(instance_pre).map_err(incompatible)?;
        let (plugin_info, result) = runtime.run(file, "describe", |store| {
            let instance = pre.instantiate(&mut *store)?;
            let plugin_info = instance.repod_plugin_plugin().call_info(&mut *store)?;
            let config = section(&plugin_info.name);
            let result = instance
                .repod_plugin_policy()
                .call_describe(&mut *store, &config)?;
            Ok((plugin_info, result))
        })?;
        let meta = meta(
            runtime,
            convert_policy_info(plugin_info),
            contract,
            file,
            sha256,
            load,
        )?;
        let (meta, info) = described(meta, result)?;
        checks::id("policy id", &info.id, 64)
            .map_err(|e| runtime.bad_output(&meta.name, "describe", e))?;
        checks::label("policy description", &info.description, 1024)
            .map_err(|e| runtime.bad_output(&meta.name, "describe", e))?;
        let name = meta.name.clone();
        Ok(Plugin {
            meta,
            kind: PluginKind::Policy(Policy {
                name,
                runtime: runtime.clone(),
                pre,
                info,
            }),
        })
    }
}

/// The outcome of `describe`: a refusal means the operator's config section
/// is wrong for this plugin.
fn described<T>(
    meta: PluginMeta,
    result: Result<T, String>,
) -> Result<(PluginMeta, T), PluginError> {
    match result {
        Ok(info) => Ok((meta, info)),
        Err(e) => Err(PluginError::Load(format!(
            "plugin {} rejected its configuration: {e}",
            meta.name
        ))),
    }
}

/// Same major (and, before 1.0, same minor): a 0.1.x plugin works with a
/// 0.1.y host. Anything else changed a record and would not link anyway.
fn compatible(version: &str) -> bool {
    let parts = |v: &str| -> Option<(u64, u64)> {
        let mut it = v.split('.');
        Some((it.next()?.parse().ok()?, it.next()?.parse().ok()?))
    };
    match (parts(version), parts(CONTRACT_VERSION)) {
        (Some((0, a)), Some((0, b))) => a == b,
        (Some((a, _)), Some((b, _))) => a == b,
        _ => false,
    }
}

/// Both worlds carry their own copy of `plugin-info`; the host uses the
/// family one.
fn convert_policy_info(
    p: pol::exports::repod::plugin::plugin::PluginInfo,
) -> fam::exports::repod::plugin::plugin::PluginInfo {
    fam::exports::repod::plugin::plugin::PluginInfo {
        name: p.name,
        version: p.version,
        description: p.description,
        extensions: p.extensions,
    }
}

fn meta(
    runtime: &Runtime,
    info: fam::exports::repod::plugin::plugin::PluginInfo,
    contract: String,
    file: &str,
    sha256: String,
    load: LoadStats,
) -> Result<PluginMeta, PluginError> {
    let check = |r: checks::CheckResult| r.map_err(|e| runtime.bad_output(file, "info", e));
    check(checks::id("plugin name", &info.name, 64))?;
    check(checks::label("plugin version", &info.version, 64))?;
    check(checks::label("plugin description", &info.description, 1024))?;
    Ok(PluginMeta {
        name: info.name,
        version: info.version,
        description: info.description,
        contract,
        file: file.into(),
        sha256,
        load,
    })
}

/// The plugins of one moment, indexed by name and by distribution.
#[derive(Default)]
pub struct Registry {
    plugins: BTreeMap<String, Arc<Plugin>>,
    failures: Vec<Failure>,
    /// Distribution id -> owning plugin name.
    owners: BTreeMap<String, String>,
}

impl Registry {
    /// Loads every `*.wasm` in `dir`, in file-name order. A plugin that fails
    /// to load, or that clashes with one loaded before it, is recorded as a
    /// failure and skipped.
    pub fn scan(runtime: &Arc<Runtime>, dir: &Path, sections: &PluginSections) -> Registry {
        let mut registry = Registry::default();
        let mut files: Vec<PathBuf> = match std::fs::read_dir(dir) {
            Ok(entries) => entries
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|x| x == "wasm"))
                .collect(),
            Err(e) => {
                registry.failures.push(Failure {
                    file: dir.display().to_string(),
                    error: format!("cannot read plugin directory: {e}"),
                });
                return registry;
            }
        };
        files.sort();
        for path in files {
            let file = path
                .file_name()
                .map(|f| f.to_string_lossy().into_owned())
                .unwrap_or_default();
            let loaded = std::fs::read(&path)
                .map_err(|e| PluginError::Load(format!("cannot read: {e}")))
                .and_then(|wasm| load_plugin(runtime, &file, &wasm, sections));
            match loaded
                .map_err(|e| e.to_string())
                .and_then(|p| registry.insert(p, false))
            {
                Ok(()) => {}
                Err(error) => {
                    tracing::error!(file, "plugin skipped: {error}");
                    registry.failures.push(Failure { file, error });
                }
            }
        }
        registry
    }

    /// Adds `plugin`; with `replace`, a loaded plugin of the same name gives
    /// way. Fails (changing nothing) on a name or distribution clash.
    fn insert(&mut self, plugin: Plugin, replace: bool) -> Result<(), String> {
        let name = plugin.meta.name.clone();
        if let Some(existing) = self.plugins.get(&name)
            && !replace
        {
            return Err(format!(
                "plugin name {name} is already taken by {}",
                existing.meta.file
            ));
        }
        if let PluginKind::Family(f) = &plugin.kind {
            for d in &f.info.distributions {
                if let Some(owner) = self.owners.get(&d.id).filter(|o| **o != name) {
                    return Err(format!(
                        "distribution {} is already provided by plugin {owner}",
                        d.id
                    ));
                }
            }
        }
        self.owners.retain(|_, owner| *owner != name);
        if let PluginKind::Family(f) = &plugin.kind {
            for d in &f.info.distributions {
                self.owners.insert(d.id.clone(), name.clone());
            }
        }
        self.plugins.insert(name, Arc::new(plugin));
        Ok(())
    }

    /// A copy of this registry with `plugin` added or replacing its namesake.
    pub fn with(&self, plugin: Plugin) -> Result<Registry, String> {
        let mut next = Registry {
            plugins: self.plugins.clone(),
            failures: self.failures.clone(),
            owners: self.owners.clone(),
        };
        next.insert(plugin, true)?;
        Ok(next)
    }

    /// A copy of this registry without the plugin `name`.
    pub fn without(&self, name: &str) -> Registry {
        let mut plugins = self.plugins.clone();
        plugins.remove(name);
        let mut owners = self.owners.clone();
        owners.retain(|_, owner| owner != name);
        Registry {
            plugins,
            failures: self.failures.clone(),
            owners,
        }
    }

    pub fn plugins(&self) -> impl Iterator<Item = &Arc<Plugin>> {
        self.plugins.values()
    }

    pub fn plugin(&self, name: &str) -> Option<&Arc<Plugin>> {
        self.plugins.get(name)
    }

    pub fn failures(&self) -> &[Failure] {
        &self.failures
    }

    /// The family plugin owning distribution `id`, and that distribution.
    pub fn distribution(&self, id: &str) -> Option<(&Family, &Distribution)> {
        let owner = self.owners.get(id)?;
        match &self.plugins.get(owner)?.kind {
            PluginKind::Family(f) => Some((f, f.distribution(id)?)),
            PluginKind::Policy(_) => None,
        }
    }

    /// Every distribution, in id order, with its family.
    pub fn distributions(&self) -> impl Iterator<Item = (&Family, &Distribution)> {
        self.owners.keys().filter_map(|id| self.distribution(id))
    }

    /// What `id`'s packages are prepared with: the owning plugin's bytes and
    /// the distribution record it described (config included), hashed.
    /// Stored renderings are stale once it changes.
    pub fn fingerprint(&self, id: &str) -> Option<String> {
        let owner = self.owners.get(id)?;
        let plugin = self.plugins.get(owner)?;
        let (family, dist) = self.distribution(id)?;
        let indexes: Vec<serde_json::Value> = dist
            .indexes
            .iter()
            .map(|i| {
                serde_json::json!([
                    i.path,
                    i.compressions
                        .iter()
                        .map(|c| format!("{c:?}"))
                        .collect::<Vec<_>>(),
                    i.keep_uncompressed,
                    i.checksum_named,
                    i.by_hash,
                    i.checksums,
                    i.extensions,
                ])
            })
            .collect();
        let record = serde_json::json!({
            "family": family.info.id,
            "format": format!("{:?}", family.info.format),
            "id": dist.id,
            "display_name": dist.display_name,
            "architectures": dist.architectures,
            "components": dist.components,
            "vulnerability": [dist.vulnerability.grype, dist.vulnerability.osv],
            "indexes": indexes,
            "settings": dist.settings,
            "extensions": dist.extensions,
        });
        Some(sha256_hex(
            format!("{}\n{record}", plugin.meta.sha256).as_bytes(),
        ))
    }

    pub fn policies(&self) -> impl Iterator<Item = &Policy> {
        self.plugins.values().filter_map(|p| match &p.kind {
            PluginKind::Policy(policy) => Some(policy),
            PluginKind::Family(_) => None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::compatible;

    #[test]
    fn contract_compatibility() {
        assert!(compatible("0.1.0"));
        assert!(compatible("0.1.7"));
        assert!(!compatible("0.2.0"));
        assert!(!compatible("1.1.0"));
        assert!(!compatible("garbage"));
    }
}
