//! efile-bridge-sdk
