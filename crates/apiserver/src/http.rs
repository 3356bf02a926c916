//! Connections, authentication and routing (responses: [`crate::resp`]).

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use hyper::body::Incoming;
use hyper::header::AUTHORIZATION;
use hyper::Request;
use hyper_util::rt::TokioIo;
use serde_json::{json, Value};
use tokio::net::TcpStream;

use crate::kind::Kind;
use crate::resp::{json_value, status, text, Resp};
use crate::routes::Target;
use crate::store::Store;

/// What every connection needs.
pub(crate) struct Shared {
    pub store: Store,
    pub token: String,
    pub tls: tokio_rustls::TlsAcceptor,
}

/// Serve one TCP connection: TLS handshake, then HTTP/1.1.
pub(crate) async fn serve_connection(shared: Arc<Shared>, tcp: TcpStream) {
    let _ = tcp.set_nodelay(true);
    let handshake = tokio::time::timeout(Duration::from_secs(10), shared.tls.accept(tcp)).await;
    let tls = match handshake {
        Ok(Ok(tls)) => tls,
        Ok(Err(e)) => {
            tracing::debug!("TLS handshake failed: {e}");
            return;
        }
        Err(_) => return,
    };
    let service = hyper::service::service_fn(move |req| {
        let shared = shared.clone();
        async move { Ok::<_, Infallible>(handle(&shared, req).await) }
    });
    if let Err(e) = hyper::server::conn::http1::Builder::new()
        .keep_alive(true)
        .serve_connection(TokioIo::new(tls), service)
        .await
    {
        tracing::debug!("connection ended: {e}");
    }
}

async fn handle(shared: &Shared, req: Request<Incoming>) -> Resp {
    let path = req.uri().path().to_string();
    tracing::debug!("{} {}", req.method(), req.uri());
    if matches!(path.as_str(), "/healthz" | "/livez" | "/readyz") {
        return text(200, "ok");
    }
    if !authorized(&req, &shared.token) {
        return status(401, "Unauthorized", "Unauthorized");
    }
    let segs: Vec<&str> = path.trim_matches('/').split('/').collect();
    match segs.as_slice() {
        ["version"] => json_value(200, &version()),
        ["api"] => json_value(
            200,
            &json!({"kind": "APIVersions", "versions": ["v1"],
                    "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": ""}]}),
        ),
        ["apis"] => json_value(200, &group_list()),
        ["api", "v1"] => json_value(200, &resource_list("v1")),
        ["apis", "networking.k8s.io"] => json_value(200, &group()),
        ["apis", "networking.k8s.io", "v1"] => {
            json_value(200, &resource_list("networking.k8s.io/v1"))
        }
        ["api", "v1", rest @ ..] | ["apis", "networking.k8s.io", "v1", rest @ ..] => {
            let rest: Vec<String> = rest.iter().map(|s| crate::util::url_decode(s)).collect();
            match target(&rest) {
                Some((at, rest)) => crate::routes::resource(&shared.store, at, req, rest).await,
                None => status(
                    404,
                    "NotFound",
                    "the server could not find the requested resource",
                ),
            }
        }
        ["ferry-admin", "v1", rest @ ..] => {
            let rest: Vec<String> = rest.iter().map(|s| crate::util::url_decode(s)).collect();
            crate::admin::handle(&shared.store, req, &rest).await
        }
        _ => status(
            404,
            "NotFound",
            "the server could not find the requested resource",
        ),
    }
}

/// Constant-time check of `Authorization: Bearer <token>`.
fn authorized(req: &Request<Incoming>, token: &str) -> bool {
    let Some(given) = req
        .headers()
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
    else {
        return false;
    };
    let (a, b) = (given.trim().as_bytes(), token.as_bytes());
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn version() -> Value {
    json!({
        "major": "1", "minor": "33", "gitVersion": "v1.33.0-ferry",
        "gitCommit": "ferry", "gitTreeState": "clean", "buildDate": "2025-01-01T00:00:00Z",
        "goVersion": "none", "compiler": "rustc", "platform": "linux/amd64"
    })
}

/// The resource a path under a group version names, and what follows:
/// `nodes/N`, `namespaces/N`, `pods`, `namespaces/NS/pods/N/status`, ...
fn target(rest: &[String]) -> Option<(Target, &[String])> {
    let of = |plural: &str| Kind::ALL.into_iter().find(|k| k.plural() == plural);
    match rest {
        [ns, ns_name, plural, rest @ ..] if ns == "namespaces" => {
            let kind = of(plural).filter(|k| k.namespaced())?;
            let namespace = Some(ns_name.clone());
            Some((Target { kind, namespace }, rest))
        }
        [plural, rest @ ..] => {
            let kind = of(plural)?;
            Some((
                Target {
                    kind,
                    namespace: None,
                },
                rest,
            ))
        }
        [] => None,
    }
}

fn group() -> Value {
    let gv = json!({"groupVersion": "networking.k8s.io/v1", "version": "v1"});
    json!({"kind": "APIGroup", "apiVersion": "v1", "name": "networking.k8s.io",
           "versions": [gv], "preferredVersion": gv})
}

fn group_list() -> Value {
    let mut g = group();
    if let Some(m) = g.as_object_mut() {
        m.remove("kind");
        m.remove("apiVersion");
    }
    json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": [g]})
}

/// Discovery for `v1` or `networking.k8s.io/v1`.
fn resource_list(group_version: &str) -> Value {
    let verbs = json!(["create", "delete", "get", "list", "patch", "update", "watch"]);
    let mut resources = Vec::new();
    for k in Kind::ALL
        .into_iter()
        .filter(|k| k.api_version() == group_version)
    {
        let (plural, singular) = (k.plural(), k.name().to_lowercase());
        let namespaced = k.namespaced();
        resources.push(json!({"name": plural, "singularName": singular,
            "namespaced": namespaced, "kind": k.name(), "verbs": verbs}));
        if k != Kind::NetworkPolicy {
            resources.push(
                json!({"name": format!("{plural}/status"), "singularName": "",
                "namespaced": namespaced, "kind": k.name(), "verbs": ["get", "patch", "update"]}),
            );
        }
    }
    json!({"kind": "APIResourceList", "groupVersion": group_version, "resources": resources})
}
