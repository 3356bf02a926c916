//! `/ferry-admin/v1/…`: change the cluster while clients run (same token;
//! the routes are listed in the crate docs).
//!
//! Every change is written to the state dir before the reply.

use hyper::body::Incoming;
use hyper::{Method, Request};
use serde_json::{json, Value};

use crate::error::StoreError;
use crate::kind::{key, Kind};
use crate::list;
use crate::resp::{
    json_bytes, json_value, method_not_allowed, read_json, status, store_error, Resp,
};
use crate::store::{Scope, Store};

pub(crate) async fn handle(store: &Store, req: Request<Incoming>, rest: &[String]) -> Resp {
    let method = req.method().clone();
    let resp = match (rest, &method) {
        ([s], &Method::GET) if s == "state" => {
            return json_value(
                200,
                &json!({
                    "resourceVersion": store.resource_version().to_string(),
                    "nodes": store.len(),
                    "oldestWatchable": store.compacted().to_string(),
                }),
            )
        }
        ([n], &Method::GET) if n == "nodes" => {
            let (rv, objs) = store.snapshot_of(Kind::Node);
            return list::response(Kind::Node, rv, None, 0, objs);
        }
        ([n], &Method::POST | &Method::PUT) if n == "nodes" => match read_json(req).await {
            Ok(body) => add(store, body),
            Err(r) => return r,
        },
        ([n, name], &Method::GET) if n == "nodes" => {
            return match store.get_obj(&key(Kind::Node, "", name)) {
                Some(obj) => json_bytes(200, obj.json.clone()),
                None => store_error(&StoreError::NotFound("nodes", name.clone())),
            }
        }
        ([n, name], &Method::PATCH) if n == "nodes" => match read_json(req).await {
            Ok(patch) => store
                .update(&key(Kind::Node, "", name), Scope::All, |v| {
                    crate::patch::merge_patch(v, &patch);
                    Ok(())
                })
                .map(|o| json_bytes(200, o.json.clone())),
            Err(r) => return r,
        },
        ([n, name], &Method::DELETE) if n == "nodes" => store
            .delete(&key(Kind::Node, "", name))
            .map(|o| json_bytes(200, o.json.clone())),
        ([n] | [n, _], _) if n == "nodes" => return method_not_allowed(&method),
        _ => return status(404, "NotFound", "no such admin resource"),
    };
    let resp = match resp {
        Ok(r) => r,
        Err(e) => return store_error(&e),
    };
    let flushing = store.clone();
    match tokio::task::spawn_blocking(move || flushing.flush()).await {
        Ok(Ok(())) => resp,
        Ok(Err(e)) => store_error(&e),
        Err(e) => status(500, "InternalError", &e.to_string()),
    }
}

/// Add or replace one node, or each node of a list.
fn add(store: &Store, body: Value) -> Result<Resp, StoreError> {
    let is_list = body["kind"]
        .as_str()
        .is_some_and(|k| k == "List" || k == "NodeList")
        || body.get("items").is_some_and(Value::is_array);
    if !is_list {
        let obj = store.upsert(Kind::Node, body, false)?;
        return Ok(json_bytes(200, obj.json.clone()));
    }
    let mut objs = Vec::new();
    for item in body["items"].as_array().into_iter().flatten() {
        objs.push(store.upsert(Kind::Node, item.clone(), false)?);
    }
    Ok(json_bytes(
        200,
        list::encode(Kind::Node, store.resource_version(), &objs),
    ))
}
