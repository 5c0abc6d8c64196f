//! efile-bridge-store
