//! The adapter SDK: everything an adapter author needs, and nothing of the host.
//!
//! An adapter is a Rust library crate built for `wasm32-wasip2`. It implements [`Adapter`]
//! with plain Rust types from [`model`] and exports it with [`export_adapter!`]:
//!
//! ```ignore
//! use efile_bridge_sdk::prelude::*;
//!
//! pub struct MyAdapter;
//!
//! impl Adapter for MyAdapter {
//!     fn describe() -> AdapterInfo { /* name, version, message kinds, config keys */ }
//!     fn map(info: &MessageInfo, xml: &str, config: &dyn Config) -> Result<Vec<EfileRecord>, MappingError> {
//!         let doc = Document::parse(xml)?;
//!         /* read the message, build records */
//!     }
//! }
//!
//! efile_bridge_sdk::export_adapter!(MyAdapter);
//! ```
//!
//! Because `map` takes and returns native types, the same mapping code runs natively in unit
//! tests and benchmarks (pass a `BTreeMap<String, String>` as [`Config`]); the WIT conversion
//! happens only in the code [`export_adapter!`] generates, and only on `wasm32`.
//!
//! Modules:
//! - [`xml`]: a small, namespace-aware DOM over quick-xml for XÖV messages, with XML paths in
//!   every error;
//! - [`person`]: partial dates (`teilbekanntesDatum`), DIN 91379 name normalisation and the
//!   citizen fingerprint;
//! - [`retention`]: calendar arithmetic for retention deadlines.

pub mod person;
pub mod retention;
pub mod xml;

#[doc(hidden)]
pub mod guest;

pub use efile_bridge_model as model;

use std::collections::BTreeMap;

use model::{AdapterInfo, EfileRecord, MappingError, MessageInfo};

/// A tenant's adapter configuration, as the adapter sees it.
pub trait Config {
    /// The value of `key`, if the tenant set it.
    fn get(&self, key: &str) -> Option<String>;
}

impl Config for BTreeMap<String, String> {
    fn get(&self, key: &str) -> Option<String> {
        BTreeMap::get(self, key).cloned()
    }
}

/// What an adapter implements.
pub trait Adapter {
    /// Name, version, message kinds and config keys.
    fn describe() -> AdapterInfo;

    /// Maps one message into e-file records.
    fn map(info: &MessageInfo, xml: &str, config: &dyn Config) -> Result<Vec<EfileRecord>, MappingError>;
}

/// Everything an adapter usually imports.
pub mod prelude {
    pub use crate::model::{
        AdapterInfo, Attachment, CitizenRef, Confidentiality, ConfigKey, DocumentType, EfileRecord, ErrorCode,
        Identifier, IdentifierKind, MappingError, MessageInfo, MessageKind, Retention,
    };
    pub use crate::xml::{Document, Element};
    pub use crate::{Adapter, Config};
}

/// Exports `$adapter` (a type implementing [`Adapter`]) as the component's `describe` and `map`.
///
/// Expands to nothing on non-wasm targets, so adapter crates can also be linked natively
/// (tests, benchmarks) side by side.
#[macro_export]
macro_rules! export_adapter {
    ($adapter:ty) => {
        #[cfg(target_arch = "wasm32")]
        const _: () = {
            struct __EfileBridgeGuest;
            impl $crate::guest::Guest for __EfileBridgeGuest {
                fn describe() -> $crate::guest::wit::AdapterInfo {
                    $crate::guest::describe::<$adapter>()
                }
                fn map(
                    info: $crate::guest::wit::MessageInfo,
                    xml: ::std::string::String,
                ) -> ::std::result::Result<
                    ::std::vec::Vec<$crate::guest::wit::EfileRecord>,
                    $crate::guest::wit::MappingError,
                > {
                    $crate::guest::map::<$adapter>(info, &xml)
                }
            }
    $crate::guest::__export_adapter_world!(__EfileBridgeGuest with_types_in $crate::guest);
        };
    };
}
