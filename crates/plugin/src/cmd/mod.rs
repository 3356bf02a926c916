//! One module per CNI verb; each reads top to bottom.

mod add;
mod check;
mod del;
mod gc;
mod status;

pub use add::add;
pub use check::check;
pub use del::del;
pub use gc::gc;
pub use status::status;

use std::os::unix::fs::MetadataExt;
use std::path::Path;

use ferry_cni::{CniError, Code, Env};
use ferry_netns::NetNs;

use crate::conf::PluginConf;

/// Everything one invocation was given.
pub struct Invocation<'a> {
    pub env: &'a Env,
    pub conf: &'a PluginConf,
    /// The config exactly as read, for delegates.
    pub stdin: &'a [u8],
}

/// Open `CNI_NETNS`, refusing a path that is missing, not a network
/// namespace, or the plugin's own namespace (skel's check).
pub fn open_pod_ns(path: &Path) -> Result<NetNs, CniError> {
    let bad = |msg: String| CniError::new(Code::InvalidEnvironment, msg);
    let ns = NetNs::open(path).map_err(|e| {
        bad(format!(
            "CNI_NETNS {} is not a usable netns: {e}",
            path.display()
        ))
    })?;
    let own = std::fs::metadata("/proc/self/ns/net");
    let theirs = std::fs::metadata(path);
    if let (Ok(a), Ok(b)) = (own, theirs) {
        if a.dev() == b.dev() && a.ino() == b.ino() {
            return Err(bad(
                "CNI_NETNS is the plugin's own netns; refusing to configure the host".into(),
            ));
        }
    }
    Ok(ns)
}
