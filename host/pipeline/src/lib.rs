//! efile-bridge-pipeline
