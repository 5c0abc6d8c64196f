//! efile-bridge-devkit
