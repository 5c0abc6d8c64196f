//! The doors into the pipeline: the HTTP API and the drop folder.
//!
//! - [`http::serve`] answers the API on a listener until shutdown. Every refusal is a status
//!   and a short JSON body `{"error": CODE, "reason": TEXT}`; message content never reaches
//!   a log line at info level.
//! - [`drop_folder::run`] watches every tenant's `DROP/<AGS>/inbox/` and feeds files to the same
//!   pipeline with that tenant's rights.

pub mod drop_folder;
pub mod http;
