//! A small Kubernetes API server for Nodes, Namespaces, Pods and
//! NetworkPolicies, to run ferryd (kube-rs) against without a real cluster.
//!
//! It speaks the real wire format closely enough for unmodified kube-rs
//! clients, watchers and reflectors:
//!
//! * HTTPS with its own CA (kept in the state dir; `ca.crt`), bearer-token
//!   auth (401 `Status` otherwise), HTTP/1.1.
//! * `GET /api/v1/nodes` — `NodeList`, `limit`/`continue` paging,
//!   `labelSelector`, `fieldSelector` (`metadata.name`).
//! * `GET /api/v1/nodes?watch=true&resourceVersion=RV` — chunked watch
//!   events after RV from a bounded history, then live; too old an RV gets
//!   an `ERROR` event with a 410 `Expired` `Status`; `timeoutSeconds`,
//!   `allowWatchBookmarks`, `sendInitialEvents` (streaming lists).
//! * `GET/PUT/PATCH/DELETE /api/v1/nodes/NAME`, `POST /api/v1/nodes`,
//!   `GET/PUT/PATCH /api/v1/nodes/NAME/status` — merge, strategic merge
//!   (conditions merged by `type`) and apply (JSON) patches; the main
//!   resource ignores `status` changes and `/status` ignores `spec`, as the
//!   real node strategy does; a stale `metadata.resourceVersion` is a 409.
//! * The same verbs, list/watch machinery and resourceVersions for
//!   `/api/v1/namespaces[/NAME]` (cluster-scoped; deleting one deletes its
//!   pods and policies at once), `/api/v1/pods` and
//!   `/api/v1/namespaces/NS/pods[/NAME[/status]]` (field selectors
//!   `spec.nodeName`, `status.phase`, `status.podIP`,
//!   `metadata.namespace`), `/apis/networking.k8s.io/v1/networkpolicies`
//!   and `/apis/networking.k8s.io/v1/namespaces/NS/networkpolicies[/NAME]`.
//!   A namespaced object needs its namespace to exist (404 otherwise).
//!   Every object is checked against its k8s-openapi type (422).
//!   [`Store::put_object`] / [`Store::remove`] do the same from Rust.
//! * `/version`, `/api`, `/api/v1`, `/apis`, `/apis/networking.k8s.io[/v1]`,
//!   `/healthz`.
//! * `/ferry-admin/v1/…` (same token) to change the cluster while clients
//!   run, and [`Store`] to do the same from Rust; admin changes are on
//!   disk before the reply:
//!
//! | request                              | does                                  |
//! |--------------------------------------|---------------------------------------|
//! | `GET  /ferry-admin/v1/nodes`         | `NodeList` of every node              |
//! | `POST /ferry-admin/v1/nodes`         | add or replace a `Node` (or each item of a `NodeList`) |
//! | `GET  /ferry-admin/v1/nodes/NAME`    | the node                              |
//! | `PATCH /ferry-admin/v1/nodes/NAME`   | JSON merge patch of any part (status too) |
//! | `DELETE /ferry-admin/v1/nodes/NAME`  | delete the node                       |
//! | `GET  /ferry-admin/v1/state`         | `{"resourceVersion","nodes","oldestWatchable"}` |
//!
//! The `ferry-apiserver` binary wraps this: `serve --listen ADDR:PORT
//! --state-dir DIR [--token T|--token-file F] [--nodes FILE_OR_DIR]
//! [--generate N] [--san S]`, writing `ca.crt`, `token` and `kubeconfig`
//! into the state dir, and `node add|delete|patch|get|list` clients that
//! use that kubeconfig.
//!
//! One global resourceVersion counter (like etcd's revision) orders every
//! change; the store is persisted in the state dir, so a restarted server
//! continues the same cluster with larger resourceVersions.
//! [`ApiServer::stop`] / [`ApiServer::restart`] simulate an API outage.

mod admin;
mod error;
mod fixtures;
mod http;
mod kind;
mod kubeconfig;
mod list;
mod obj;
mod patch;
mod persist;
mod resp;
mod routes;
mod selector;
mod server;
mod store;
mod tls;
mod util;
mod watch;

pub use error::{ServerError, StoreError};
pub use fixtures::{
    fixture_control_plane, fixture_node, generate_nodes, load_nodes, node_ipv4, node_ipv6,
    pod_cidr_v4, pod_cidr_v6, GenOptions, IpFamily, CONTROL_PLANE_JSON, WORKER_JSON,
};
pub use kind::Kind;
pub use kubeconfig::{render as render_kubeconfig, server_url};
pub use patch::{merge_patch, PatchKind};
pub use server::{ApiServer, RunningServer, ServerConfig, KUBECONFIG, TOKEN};
pub use store::Store;

/// File name of the CA certificate in the state dir.
pub const CA_CERT: &str = tls::CA_CERT;
/// File name of the persisted node store (a `NodeList`) in the state dir.
pub const SNAPSHOT: &str = persist::SNAPSHOT;
