//! The `switchyard` binary as a library: the config file, and the functions
//! that start the services — all in one process ([`serve::run_all_in_one`])
//! or one service per process ([`role::run_role`]), each with its admin
//! listener ([`admin`]). The binary and the
//! end-to-end tests call these same functions. [`ctl`] is the admin
//! API's command line.
//!
//! This is the only crate (with the tests) that wires several services together.

pub mod admin;
pub mod config;
pub mod ctl;
pub mod role;
pub mod serve;
pub mod watch;

pub use config::SwitchyardConfig;
