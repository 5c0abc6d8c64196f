//! efile-bridge-server
