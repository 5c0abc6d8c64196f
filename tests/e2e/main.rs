//! End-to-end tests: the real adapter built from source, the real sandbox, a real HTTP
//! server and client on 127.0.0.1, the real SQLite store in a temporary folder.

mod adapter_cache;
mod console;
mod delivery;
mod drop_folder;
mod fixtures;
mod generator;
mod hostile;
mod hosts;
mod http;
mod journal;
mod life;
mod lifecycle;
mod postgres_tls;
mod review;
mod sandbox;
mod store;
mod support;
mod tenancy;
mod trxhd;
mod xdomea;
