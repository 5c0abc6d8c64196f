//! The `efile-bridge` binary as users and operators run it: commands, exit codes, and the
//! crash harness that kills a serving host with SIGKILL under load.

mod commands;
mod crash;
mod support;
