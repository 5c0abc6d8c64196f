//! What an adapter may import, and what happens when it uses anything else.
//!
//! The base linker holds wasmtime-wasi's whole WASI 0.2 implementation, but an adapter only
//! reaches the interfaces in [`GRANTED`]. For every other import of a component (files,
//! sockets, clocks, HTTP, whatever a later WASI adds) [`linker_for`] defines a stub under the
//! exact name the component imports; an exact name takes precedence over wasmtime's
//! semver-compatible match, so the real implementation is never reached. Calling a stub
//! stops the call with [`Denied`], which names the import.
//!
//! Denied at the call rather than refused at load: Rust's standard library makes a component
//! import sockets, files and clocks as soon as any code path might use them, so refusing
//! such components would refuse adapters that never touch them.
//!
//! A denied interface may use a resource type of a granted one (a clock's `subscribe`
//! returns a `wasi:io/poll` pollable); its stub must then name the very host type the
//! granted interface is linked with, or the component does not type-check.

use std::fmt;

use wasmtime::Engine;
use wasmtime::component::types::ComponentItem;
use wasmtime::component::{Component, Linker, LinkerInstance, ResourceType};
use wasmtime_wasi::p2::{DynInputStream, DynOutputStream, DynPollable, IoError};

use crate::SandboxState;

/// Interface prefixes an adapter may import, with why:
///
/// - `wasi:io/`: the streams stdout and stderr are written through;
/// - `wasi:cli/`: stdin (empty), stdout and stderr (a bounded tail, see `console`), an empty
///   environment and argument list (the standard library reads `RUST_BACKTRACE` on a
///   panic), and `exit`, which ends the call as an error;
/// - `wasi:random/`: a fixed, deterministic source (the standard library seeds `HashMap`
///   from it), so replays give the same records;
/// - `efile-bridge:adapter/`: the contract itself (`log`, `config-get`).
const GRANTED: &[&str] = &["wasi:io/", "wasi:cli/", "wasi:random/", "efile-bridge:adapter/"];

/// An adapter called an import the sandbox does not grant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Denied {
    /// `interface#function`, as the component imports it.
    pub(crate) import: String,
}

impl Denied {
    /// What the import would have reached, for an operator.
    pub(crate) fn capability(&self) -> &'static str {
        let interface = self.import.split('#').next().unwrap_or_default();
        match interface.split_once('/').map(|(package, _)| package) {
            Some("wasi:filesystem") => "the file system",
            Some("wasi:sockets") => "the network",
            Some("wasi:http") => "http",
            Some("wasi:clocks") => "a clock",
            _ => "an import",
        }
    }
}

impl fmt::Display for Denied {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "`{}` is not granted", self.import)
    }
}

impl std::error::Error for Denied {}

/// Stands in for the resource types of denied interfaces.
struct DeniedResource;

/// `base` plus a denying stub for every import of `component` outside [`GRANTED`].
pub(crate) fn linker_for(
    base: &Linker<SandboxState>,
    engine: &Engine,
    component: &Component,
) -> wasmtime::Result<Linker<SandboxState>> {
    let ty = component.component_type();
    let imports: Vec<_> = ty.imports(engine).collect();
    let is_granted = |name: &str| GRANTED.iter().any(|granted| name.starts_with(granted));
    // The resource types the component imports through granted interfaces, with the host
    // type each is linked with.
    let mut shared = Vec::new();
    for (name, item) in imports.iter().filter(|(name, _)| is_granted(name)) {
        if let ComponentItem::ComponentInstance(instance) = &item.ty {
            for (export, item) in instance.exports(engine) {
                if let (ComponentItem::Resource(ty), Some(host)) = (item.ty, granted_resource(name, export)) {
                    shared.push((ty, host));
                }
            }
        }
    }
    let resource = |ty: &ResourceType| {
        shared.iter().find(|(t, _)| t == ty).map_or(ResourceType::host::<DeniedResource>(), |(_, host)| *host)
    };
    let mut linker = base.clone();
    linker.allow_shadowing(true);
    for (name, item) in imports.iter().filter(|(name, _)| !is_granted(name)) {
        match &item.ty {
            ComponentItem::ComponentInstance(instance) => {
                let mut stubs = linker.instance(name)?;
                for (export, item) in instance.exports(engine) {
                    stub(&mut stubs, export, &item.ty, format!("{name}#{export}"), &resource)?;
                }
            }
            item => stub(&mut linker.root(), name, item, (*name).to_owned(), &resource)?,
        }
    }
    Ok(linker)
}

/// The host type wasmtime-wasi links a granted interface's resource with, for the
/// resources denied interfaces also use.
fn granted_resource(interface: &str, name: &str) -> Option<ResourceType> {
    let unversioned = interface.split('@').next().unwrap_or_default();
    Some(match (unversioned, name) {
        ("wasi:io/poll", "pollable") => ResourceType::host::<DynPollable>(),
        ("wasi:io/streams", "input-stream") => ResourceType::host::<DynInputStream>(),
        ("wasi:io/streams", "output-stream") => ResourceType::host::<DynOutputStream>(),
        ("wasi:io/error", "error") => ResourceType::host::<IoError>(),
        _ => return None,
    })
}

fn stub(
    linker: &mut LinkerInstance<'_, SandboxState>,
    name: &str,
    item: &ComponentItem,
    import: String,
    resource: &impl Fn(&ResourceType) -> ResourceType,
) -> wasmtime::Result<()> {
    match item {
        ComponentItem::ComponentFunc(_) => {
            linker.func_new(name, move |_, _, _, _| Err(wasmtime::Error::new(Denied { import: import.clone() })))
        }
        // No value of a denied interface's own resource is ever made, so its destructor never runs.
        ComponentItem::Resource(ty) => linker.resource(name, resource(ty), |_, _| Ok(())),
        // Types need no definition; modules and components are not WASI and fail to link,
        // which `Runtime::load` reports.
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capabilities_are_named_by_package() {
        let denied = |import: &str| Denied { import: import.into() }.capability();
        assert_eq!(denied("wasi:sockets/tcp-create-socket@0.2.6#create-tcp-socket"), "the network");
        assert_eq!(denied("wasi:filesystem/preopens@0.2.0#get-directories"), "the file system");
        assert_eq!(denied("wasi:clocks/wall-clock@0.2.6#now"), "a clock");
        assert_eq!(denied("wasi:http/outgoing-handler@0.2.6#handle"), "http");
        assert_eq!(denied("example:thing/x#y"), "an import");
    }
}
