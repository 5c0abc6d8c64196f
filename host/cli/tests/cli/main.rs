//! The `efile-bridge` binary as users and operators run it: commands, exit codes, and the
//! crash harness that kills a serving host with SIGKILL under load, and the failover of three
//! hosts on one PostgreSQL database.

mod commands;
mod crash;
mod failover;
mod support;
