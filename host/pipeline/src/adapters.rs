//! Adapter lifecycle: signed packages installed into the data directory, switched per tenant
//! without a restart.
//!
//! Installing verifies the package ([`efile_bridge_package::verify`]: a trusted publisher's
//! signature, the WIT world, the component digest), loads the component into the sandbox to
//! check that it is what the manifest says (name, version, message types), and only then
//! writes it to `DATA_DIR/adapters/NAME/VERSION/` and records it (`adapter-installed` entry).
//!
//! Which adapter maps a tenant's message: the operator config's `adapters` first, then the
//! registry's switches in force (`plugin activate`, for all message types the adapter handles
//! or one), newest last. A switch is applied by building new settings and swapping them in one
//! step: a message is mapped entirely with the settings it started with, and the message
//! records the adapter's name, version and content hash. A running host notices switches made
//! by the CLI within a second ([`watch`]).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Weak};
use std::time::Duration;

use efile_bridge_package::{Signature, Verified};
use efile_bridge_runtime::{LoadedAdapter, Runtime};
use efile_bridge_store::{Activation, InstalledAdapter, Storage, StoreError};

use crate::{Config, Shared, StartError};

/// Why an install was refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum InstallError {
    /// The package, its signature or its world.
    #[error(transparent)]
    Package(#[from] efile_bridge_package::PackageError),
    /// The component is not what the manifest says, or does not load.
    #[error("{0}")]
    Component(String),
    /// Storage.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Writing the files.
    #[error("cannot write {path}: {source}")]
    Io {
        /// Path.
        path: PathBuf,
        /// Cause.
        source: std::io::Error,
    },
}

/// Where an installed version's component lives.
pub fn component_path(data_dir: &Path, name: &str, version: &str) -> PathBuf {
    data_dir.join("adapters").join(name).join(version).join("adapter.wasm")
}

fn trusted(config: &Config) -> Vec<(String, String)> {
    config.trusted_publishers.iter().map(|p| (p.name.clone(), p.public_key.clone())).collect()
}

/// Verifies, checks and installs a package; `by` is the operator identity for the journal.
pub fn install(
    config: &Config,
    runtime: &Runtime,
    store: &dyn Storage,
    package: &[u8],
    signature: Option<&Signature>,
    by: &str,
) -> Result<InstalledAdapter, InstallError> {
    let Verified { package: p, publisher, package_sha256 } =
        efile_bridge_package::verify(package, signature, &trusted(config))?;
    let m = &p.manifest;
    let loaded = runtime
        .load(&p.component)
        .map_err(|e| InstallError::Component(format!("{}@{}: the component does not load: {e}", m.name, m.version)))?;
    let info = loaded.info();
    let mut declared = m.handles.clone();
    let mut actual = info.handles.clone();
    declared.sort();
    actual.sort();
    if info.name != m.name || info.version != m.version || declared != actual {
        return Err(InstallError::Component(format!(
            "the manifest says {}@{} handling {} message type(s), the component says {}@{} handling {}",
            m.name,
            m.version,
            declared.len(),
            info.name,
            info.version,
            actual.len()
        )));
    }
    let path = component_path(&config.data_dir, &m.name, &m.version);
    let dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
    let io = |path: &Path| {
        let path = path.to_owned();
        move |source| InstallError::Io { path, source }
    };
    std::fs::create_dir_all(&dir).map_err(io(&dir))?;
    std::fs::write(&path, &p.component).map_err(io(&path))?;
    let manifest = serde_json::to_value(m).unwrap_or_default();
    std::fs::write(dir.join("manifest.json"), serde_json::to_vec_pretty(&manifest).unwrap_or_default())
        .map_err(io(&dir))?;
    let record = InstalledAdapter {
        name: m.name.clone(),
        version: m.version.clone(),
        component_sha256: loaded.content_hash().to_owned(),
        package_sha256,
        publisher,
        manifest,
        installed_index: 0,
        removed_index: None,
    };
    Ok(store.register_adapter(record, by)?)
}

/// Checks a switch before it is recorded: the tenant exists, the version is installed and
/// handles the scope.
pub fn check_activation(
    config: &Config,
    store: &dyn Storage,
    tenant: &str,
    scope: &str,
    name: &str,
    version: &str,
) -> Result<(), String> {
    if !config.tenants.iter().any(|t| t.ags == tenant) {
        return Err(format!("tenant {tenant} is not configured"));
    }
    let installed = store.installed_adapters().map_err(|e| e.to_string())?;
    let Some(a) = installed.iter().find(|a| a.name == name && a.version == version && a.removed_index.is_none()) else {
        return Err(format!("{name}@{version} is not installed (see `plugin list`)"));
    };
    if scope != "*" {
        let handles = a.manifest["handles"].as_array().cloned().unwrap_or_default();
        if !handles.iter().any(|h| h["message_type"] == scope) {
            return Err(format!("{name}@{version} does not handle message type {scope}"));
        }
    }
    Ok(())
}

/// The switches in force and the installed versions they need, loaded.
pub(crate) struct Registry {
    current: Vec<Activation>,
    loaded: HashMap<(String, String), Arc<LoadedAdapter>>,
    /// Tenant -> live shadow candidate.
    shadows: HashMap<String, Arc<LoadedAdapter>>,
}

impl Registry {
    /// Reads the registry and loads every version a tenant has active.
    pub(crate) fn load(store: &dyn Storage, runtime: &Runtime, data_dir: &Path) -> Result<Self, StartError> {
        let activations = store.activations(None)?;
        // Latest switch per (tenant, scope), in order.
        let mut latest: Vec<Activation> = Vec::new();
        for a in activations {
            latest.retain(|x| !(x.tenant == a.tenant && x.scope == a.scope));
            latest.push(a);
        }
        let current: Vec<Activation> = latest.into_iter().filter(|a| a.name.is_some()).collect();
        let shadows = store.shadows()?;
        let mut loaded = HashMap::new();
        let wanted = current
            .iter()
            .filter_map(|a| Some((a.name.as_ref()?, a.version.as_ref()?)))
            .chain(shadows.iter().map(|(_, n, v)| (n, v)));
        for (name, version) in wanted {
            let key = (name.clone(), version.clone());
            if loaded.contains_key(&key) {
                continue;
            }
            let path = component_path(data_dir, name, version);
            let err = |reason: String| StartError::Adapter {
                name: format!("{name}@{version}"),
                path: path.display().to_string(),
                reason,
            };
            let bytes = std::fs::read(&path).map_err(|e| err(format!("cannot read installed component: {e}")))?;
            loaded.insert(key, runtime.load(&bytes).map_err(|e| err(e.to_string()))?);
        }
        let shadows = shadows.into_iter().filter_map(|(t, n, v)| Some((t, loaded.get(&(n, v))?.clone()))).collect();
        Ok(Self { current, loaded, shadows })
    }

    /// The tenant's live shadow candidate, if one runs.
    pub(crate) fn shadow(&self, tenant: &str) -> Option<Arc<LoadedAdapter>> {
        self.shadows.get(tenant).cloned()
    }

    /// Applies the tenant's switches to its routes.
    pub(crate) fn apply(
        &self,
        tenant: &str,
        routes: &mut HashMap<efile_bridge_model::MessageKind, Arc<LoadedAdapter>>,
    ) {
        for a in self.current.iter().filter(|a| a.tenant == tenant) {
            let (Some(name), Some(version)) = (&a.name, &a.version) else { continue };
            let Some(adapter) = self.loaded.get(&(name.clone(), version.clone())) else { continue };
            for kind in &adapter.info().handles {
                if a.scope == "*" || a.scope == kind.message_type {
                    routes.insert(kind.clone(), adapter.clone());
                }
            }
        }
    }

    /// The switches in force.
    pub(crate) fn current(&self) -> &[Activation] {
        &self.current
    }
}

/// Rebuilds the settings when the registry changed (a CLI command beside `serve`).
/// `seen` is the generation the running settings were built from.
pub(crate) async fn watch(shared: Weak<Shared>, seen: i64) {
    let mut seen = seen;
    loop {
        tokio::time::sleep(Duration::from_secs(1)).await;
        let Some(s) = shared.upgrade() else { return };
        let store = s.store.clone();
        let Ok(Ok(generation)) = tokio::task::spawn_blocking(move || store.registry_generation()).await else {
            continue;
        };
        if seen != generation {
            // On failure the previous settings stay and the next tick tries again.
            match crate::rebuild(&s, None).await {
                Ok(()) => seen = generation,
                Err(e) => tracing::error!(error = %e, "cannot apply the adapter registry; the previous adapters stay"),
            }
        }
    }
}
