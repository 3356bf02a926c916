//! ferry under real container runtimes: the harness shared by this
//! crate's integration tests (`tests/containerd.rs`, `tests/podman.rs`)
//! and the `runtime-bench` binary.
//!
//! - [`Containerd`]: a private containerd 1.6 with CRI, started inside a
//!   node netns ([`ferry_testkit::Node`]), torn down on drop.
//! - [`Cri`]: a blocking runtime/v1 client over its unix socket, making
//!   the calls kubelet makes ([`pod_config`], [`tcp_port`]).
//! - [`Podman`]: podman 4.3 with its CNI backend and private storage,
//!   run inside a node netns, its containers removed on drop.
//! - [`CniDirs`]: the plugin and config dirs a runtime is pointed at, with
//!   [`ferry_conflist`] / [`ptp_conflist`] and a recorder keeping every
//!   plugin [`Invocation`] (environment, stdin, stdout, exit status).
//! - [`look`]: the leak and reachability views the tests assert on.
//! - [`image`]: a busybox rootfs and a docker-archive pause image, both
//!   made offline from `/bin/busybox` (busybox-static).
//!
//! Setup follows `/work/shared/notes/runtimes-offline.md`. Test-side code:
//! it shells out to `containerd`, `ctr`, `runc`, `podman`, `tar`.

pub mod cni;
pub mod containerd;
pub mod cri;
pub mod error;
pub mod image;
pub mod look;
pub mod plugins;
pub mod podman;
pub mod procs;

pub use cni::{ferry_conflist, ptp_conflist, CniDirs, Invocation, FERRY_NETWORK, POD_SUBNET};
pub use containerd::Containerd;
pub use cri::{pod_config, tcp_port, Cri, PodStatus};
pub use error::{HarnessError, Result};
pub use podman::Podman;
