//! CNI specification types for ferry: versions, the execution environment,
//! network configuration, results in every version from 0.3.0 to 1.1.0, and
//! the spec's error codes. Pure data: no I/O happens in this crate.

pub mod config;
pub mod env;
pub mod error;
pub mod result;
pub mod version;

pub use config::{NetConf, ValidAttachment};
pub use env::{Command, Env};
pub use error::{CniError, Code};
pub use result::{CniResult, Dns, Interface, IpConfig, Route};
pub use version::Version;
