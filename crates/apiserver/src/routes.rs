//! `/api/v1/nodes…`: list (paged), watch, get, create, replace, patch,
//! delete, and the `status` subresource.

use std::ops::Bound;
use std::time::Duration;

use hyper::body::Incoming;
use hyper::header::CONTENT_TYPE;
use hyper::{Method, Request};
use serde_json::{json, Value};

use crate::http::{json_bytes, method_not_allowed, read_json, status, store_error, Resp};
use crate::list;
use crate::patch::{self, PatchKind};
use crate::selector::{FieldSelector, Filter, LabelSelector};
use crate::store::{Scope, Store};
use crate::util::{base64_decode, base64_url, parse_query};
use crate::watch::{self, WatchRequest};

/// Watches without `timeoutSeconds` end after this long (the apiserver's
/// default `--min-request-timeout`).
const DEFAULT_WATCH_TIMEOUT: Duration = Duration::from_secs(1800);

struct Query(Vec<(String, String)>);

impl Query {
    fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    fn flag(&self, key: &str) -> bool {
        matches!(self.get(key), Some("" | "1" | "true" | "True"))
    }

    /// The selectors; a bad one is an error message for a 400.
    fn filter(&self) -> Result<Filter, String> {
        Ok(Filter {
            labels: LabelSelector::parse(self.get("labelSelector").unwrap_or(""))?,
            fields: FieldSelector::parse(self.get("fieldSelector").unwrap_or(""))?,
        })
    }
}

pub(crate) async fn nodes(store: &Store, req: Request<Incoming>, rest: &[String]) -> Resp {
    let query = Query(parse_query(req.uri().query()));
    let method = req.method().clone();
    match (rest, &method) {
        ([], &Method::GET) if query.flag("watch") => watch(store, &query),
        ([], &Method::GET) => list(store, &query),
        ([], &Method::POST) => match read_json(req).await {
            Ok(v) => match store.create(v) {
                Ok(obj) => json_bytes(201, obj.json.clone()),
                Err(e) => store_error(&e),
            },
            Err(r) => r,
        },
        ([name], &Method::GET) | ([name, _], &Method::GET) if is_status_or_main(rest) => {
            match store.get_obj(name) {
                Some(obj) => json_bytes(200, obj.json.clone()),
                None => store_error(&crate::StoreError::NotFound(name.clone())),
            }
        }
        ([name], &Method::DELETE) => match store.delete(name) {
            Ok(obj) => json_bytes(200, obj.json.clone()),
            Err(e) => store_error(&e),
        },
        ([name], &Method::PATCH) => patch(store, req, &query, name, Scope::Main).await,
        ([name, sub], &Method::PATCH) if sub == "status" => {
            patch(store, req, &query, name, Scope::Status).await
        }
        ([name], &Method::PUT) => replace(store, req, name, Scope::Main).await,
        ([name, sub], &Method::PUT) if sub == "status" => {
            replace(store, req, name, Scope::Status).await
        }
        ([_] | [_, _], _) if is_status_or_main(rest) => method_not_allowed(&method),
        _ => status(
            404,
            "NotFound",
            "the server could not find the requested resource",
        ),
    }
}

fn is_status_or_main(rest: &[String]) -> bool {
    rest.len() == 1 || rest.get(1).is_some_and(|s| s == "status")
}

fn parse_rv(s: Option<&str>) -> Result<Option<u64>, String> {
    match s {
        None | Some("") | Some("0") => Ok(None),
        Some(s) => s
            .parse()
            .map(Some)
            .map_err(|_| format!("invalid resource version: {s:?}")),
    }
}

fn watch(store: &Store, q: &Query) -> Resp {
    let filter = match q.filter() {
        Ok(f) => f,
        Err(m) => return status(400, "BadRequest", &m),
    };
    let since = match parse_rv(q.get("resourceVersion")) {
        Ok(rv) => rv,
        Err(m) => return status(400, "BadRequest", &m),
    };
    let timeout = q
        .get("timeoutSeconds")
        .and_then(|t| t.parse::<u64>().ok())
        .filter(|t| *t > 0)
        .map(Duration::from_secs)
        .unwrap_or(DEFAULT_WATCH_TIMEOUT);
    watch::respond(
        store.clone(),
        WatchRequest {
            since,
            filter,
            timeout,
            bookmarks: q.flag("allowWatchBookmarks"),
            initial_events_end: q.flag("sendInitialEvents"),
        },
    )
}

/// A continue token as the apiserver makes them.
fn encode_continue(rv: u64, last_name: &str) -> String {
    let start = format!("{last_name}\u{0}");
    base64_url(
        json!({"v": "meta.k8s.io/v1", "rv": rv, "start": start})
            .to_string()
            .as_bytes(),
    )
}

fn decode_continue(token: &str) -> Option<(u64, String)> {
    let v: Value = serde_json::from_slice(&base64_decode(token)?).ok()?;
    let rv = v["rv"].as_u64()?;
    let start = v["start"].as_str()?.trim_end_matches('\u{0}').to_string();
    Some((rv, start))
}

fn list(store: &Store, q: &Query) -> Resp {
    let filter = match q.filter() {
        Ok(f) => f,
        Err(m) => return status(400, "BadRequest", &m),
    };
    let limit = match q.get("limit").map(str::parse::<usize>) {
        None | Some(Ok(0)) => usize::MAX,
        Some(Ok(n)) => n,
        Some(Err(_)) => return status(400, "BadRequest", "limit must be a number"),
    };
    let resume = match q.get("continue").filter(|c| !c.is_empty()) {
        None => None,
        Some(token) => match decode_continue(token) {
            Some(r) => Some(r),
            None => return status(400, "BadRequest", "continue key is not valid"),
        },
    };
    if let Some((rv, _)) = &resume {
        if *rv < store.compacted() {
            return status(
                410,
                "Expired",
                "The provided continue parameter is too old to display a consistent list \
                 result. You can start a new list without the continue parameter.",
            );
        }
    }
    let st = store.lock();
    let list_rv = resume.as_ref().map_or(st.rv, |(rv, _)| *rv);
    let lower = match &resume {
        Some((_, start)) => Bound::Excluded(start.clone()),
        None => Bound::Unbounded,
    };
    let mut items = Vec::new();
    let mut remaining = 0usize;
    let candidates: Box<dyn Iterator<Item = _>> = match filter.fields.exact_name() {
        Some(name) => Box::new(
            st.objects
                .get_key_value(name)
                .filter(|(k, _)| match &lower {
                    Bound::Excluded(s) => k.as_str() > s.as_str(),
                    _ => true,
                })
                .into_iter(),
        ),
        None => Box::new(
            st.objects
                .range::<String, _>((lower.clone(), Bound::Unbounded)),
        ),
    };
    for (_, obj) in candidates {
        if !filter.matches(&obj.name, &obj.labels) {
            continue;
        }
        if items.len() < limit {
            items.push(obj.clone());
        } else {
            remaining += 1;
        }
    }
    drop(st);
    let token = (remaining > 0)
        .then(|| items.last().map(|o| encode_continue(list_rv, &o.name)))
        .flatten();
    list::response(list_rv, token.as_deref(), remaining, items)
}

async fn patch(store: &Store, req: Request<Incoming>, q: &Query, name: &str, scope: Scope) -> Resp {
    let ct = req
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    let Some(kind) = PatchKind::from_content_type(&ct) else {
        return status(
            415,
            "UnsupportedMediaType",
            &format!("the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml (got {ct:?})"),
        );
    };
    if kind == PatchKind::Apply && q.get("fieldManager").is_none_or(str::is_empty) {
        return status(
            422,
            "Invalid",
            "PatchOptions.meta.k8s.io \"\" is invalid: fieldManager: Required value: is required for apply patch",
        );
    }
    let body = match read_json(req).await {
        Ok(v) => v,
        Err(r) => return r,
    };
    if !body.is_object() || body.get("metadata").is_some_and(|m| !m.is_object()) {
        return status(400, "BadRequest", "the patch must be a JSON object");
    }
    if kind == PatchKind::Apply && scope == Scope::Main && store.get_obj(name).is_none() {
        let mut v = body;
        v["metadata"]["name"] = json!(name);
        return match store.create(v) {
            Ok(obj) => json_bytes(201, obj.json.clone()),
            Err(e) => store_error(&e),
        };
    }
    let result = store.update(name, scope, |v| {
        patch::apply(kind, v, &body).map_err(crate::StoreError::Invalid)
    });
    match result {
        Ok(obj) => json_bytes(200, obj.json.clone()),
        Err(e) => store_error(&e),
    }
}

async fn replace(store: &Store, req: Request<Incoming>, name: &str, scope: Scope) -> Resp {
    let body = match read_json(req).await {
        Ok(v) => v,
        Err(r) => return r,
    };
    if let Some(given) = body["metadata"]["name"].as_str() {
        if given != name {
            return status(
                400,
                "BadRequest",
                &format!(
                    "the name of the object ({given}) does not match the name on the URL ({name})"
                ),
            );
        }
    }
    match store.update(name, scope, move |v| {
        *v = body;
        Ok(())
    }) {
        Ok(obj) => json_bytes(200, obj.json.clone()),
        Err(e) => store_error(&e),
    }
}
