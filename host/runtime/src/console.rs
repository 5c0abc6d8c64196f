//! The adapter's stdout and stderr: the last few KiB of each, kept in memory.
//!
//! Writing never fails and never blocks, however much an adapter prints (a stream that
//! refused writes past a capacity would trap chatty adapters, and only when someone had
//! turned debug logging on). What is kept serves two readers: debug logging after the call,
//! and the panic message the standard library prints to stderr right before it aborts,
//! which becomes the [`crate::SandboxError::Panic`] reason.

use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};

use bytes::Bytes;
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::p2::{OutputStream, Pollable, StreamResult};

/// A stream that keeps the last `keep` bytes written to it.
#[derive(Clone)]
pub(crate) struct Tail {
    keep: usize,
    bytes: Arc<Mutex<Vec<u8>>>,
}

impl Tail {
    pub(crate) fn new(keep: usize) -> Self {
        Self { keep, bytes: Arc::default() }
    }

    /// What is kept, lossily decoded.
    pub(crate) fn text(&self) -> String {
        String::from_utf8_lossy(&self.lock()).into_owned()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<u8>> {
        // A poisoned buffer still holds bytes that are fine to show.
        self.bytes.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn push(&self, data: &[u8]) {
        let mut kept = self.lock();
        let data = &data[data.len().saturating_sub(self.keep)..];
        let overflow = (kept.len() + data.len()).saturating_sub(self.keep);
        kept.drain(..overflow);
        kept.extend_from_slice(data);
    }
}

impl IsTerminal for Tail {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for Tail {
    fn p2_stream(&self) -> Box<dyn OutputStream> {
        Box::new(self.clone())
    }

    fn async_stream(&self) -> Box<dyn tokio::io::AsyncWrite + Send + Sync> {
        Box::new(self.clone())
    }
}

#[wasmtime_wasi::async_trait]
impl Pollable for Tail {
    async fn ready(&mut self) {}
}

impl OutputStream for Tail {
    fn write(&mut self, bytes: Bytes) -> StreamResult<()> {
        self.push(&bytes);
        Ok(())
    }

    fn flush(&mut self) -> StreamResult<()> {
        Ok(())
    }

    fn check_write(&mut self) -> StreamResult<usize> {
        // Any amount is fine: what does not fit pushes the oldest bytes out.
        Ok(64 * 1024)
    }
}

impl tokio::io::AsyncWrite for Tail {
    fn poll_write(self: Pin<&mut Self>, _: &mut Context<'_>, buf: &[u8]) -> Poll<std::io::Result<usize>> {
        self.push(buf);
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

/// The location and message of the last Rust panic in `stderr`, as the standard library's
/// default hook prints it: `thread '…' panicked at FILE:LINE:COL:\nMESSAGE\nnote: …`.
pub(crate) fn panic_message(stderr: &str) -> Option<(String, String)> {
    let start = stderr.rfind("panicked at ")? + "panicked at ".len();
    let rest = &stderr[start..];
    let (location, message) = rest.split_once(":\n")?;
    let message = message.split("\nnote: ").next().unwrap_or_default().trim_end();
    Some((location.to_owned(), message.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_tail_keeps_the_last_bytes() {
        let tail = Tail::new(4);
        tail.push(b"ab");
        tail.push(b"cde");
        assert_eq!(tail.text(), "bcde");
        tail.push(b"0123456789");
        assert_eq!(tail.text(), "6789");
    }

    #[test]
    fn a_panic_is_found_with_location_and_message() {
        let stderr = "noise\nthread '<unnamed>' panicked at src/lib.rs:7:9:\nno value\nfor you\nnote: run with `RUST_BACKTRACE=1` environment variable to display a backtrace\n";
        assert_eq!(panic_message(stderr), Some(("src/lib.rs:7:9".into(), "no value\nfor you".into())));
        assert_eq!(panic_message("nothing to see"), None);
    }
}
