//! The shared test kit, plus the binaries this package builds.

#![allow(dead_code, unused_imports)]

pub use ferry_testkit::*;

pub const FERRY: &str = env!("CARGO_BIN_EXE_ferry");
pub const FERRY_IPAM: &str = env!("CARGO_BIN_EXE_ferry-ipam");
