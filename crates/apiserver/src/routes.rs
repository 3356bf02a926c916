//! One resource's routes (`/api/v1/nodes…`, `/api/v1/namespaces/NS/pods…`,
//! ...): list (paged), watch, get, create, replace, patch, delete, and the
//! `status` subresource; the same code for every [`Kind`].

use std::ops::Bound;
use std::time::Duration;

use hyper::body::Incoming;
use hyper::header::CONTENT_TYPE;
use hyper::{Method, Request};
use serde_json::{json, Value};

use crate::kind::{key, Key, Kind};
use crate::list;
use crate::patch::{self, PatchKind};
use crate::resp::{json_bytes, method_not_allowed, read_json, status, store_error, Resp};
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
    fn filter(&self, at: &Target) -> Result<Filter, String> {
        Ok(Filter {
            kind: at.kind,
            namespace: at.namespace.clone(),
            labels: LabelSelector::parse(self.get("labelSelector").unwrap_or(""))?,
            fields: FieldSelector::parse(self.get("fieldSelector").unwrap_or(""), at.kind)?,
        })
    }
}

/// Which objects a request is about: a kind, and for namespaced kinds the
/// namespace in the URL (`None`: every namespace, list and watch only).
pub(crate) struct Target {
    pub kind: Kind,
    pub namespace: Option<String>,
}

impl Target {
    fn key(&self, name: &str) -> Key {
        key(self.kind, self.namespace.as_deref().unwrap_or(""), name)
    }

    /// Whether the URL names one object (a namespaced kind needs its
    /// namespace for that).
    fn addresses_objects(&self) -> bool {
        !self.kind.namespaced() || self.namespace.is_some()
    }

    /// `body` made this target's: kind, apiVersion and namespace set; a
    /// different kind or namespace is an error message for a 400.
    fn own(&self, mut body: Value) -> Result<Value, String> {
        if let Some(k) = body["kind"].as_str().filter(|k| *k != self.kind.name()) {
            return Err(format!("a {k} cannot be stored as {}", self.kind.plural()));
        }
        if let Some(ns) = &self.namespace {
            if let Some(given) = body["metadata"]["namespace"].as_str().filter(|g| g != ns) {
                return Err(format!("the namespace of the provided object ({given}) does not match the namespace sent on the request ({ns})"));
            }
            body["metadata"]["namespace"] = json!(ns);
        }
        Ok(body)
    }
}

pub(crate) async fn resource(
    store: &Store,
    at: Target,
    req: Request<Incoming>,
    rest: &[String],
) -> Resp {
    let query = Query(parse_query(req.uri().query()));
    let method = req.method().clone();
    let one = at.addresses_objects();
    match (rest, &method) {
        ([], &Method::GET) if query.flag("watch") => watch(store, &at, &query),
        ([], &Method::GET) => list(store, &at, &query),
        ([], &Method::POST) if one => match read_json(req).await.map(|v| at.own(v)) {
            Ok(Ok(v)) => match store.create(at.kind, v) {
                Ok(obj) => json_bytes(201, obj.json.clone()),
                Err(e) => store_error(&e),
            },
            Ok(Err(m)) => status(400, "BadRequest", &m),
            Err(r) => r,
        },
        ([name], &Method::GET) | ([name, _], &Method::GET) if one && is_status_or_main(rest) => {
            match store.get_obj(&at.key(name)) {
                Some(obj) => json_bytes(200, obj.json.clone()),
                None => store_error(&crate::StoreError::NotFound(at.kind.plural(), name.clone())),
            }
        }
        ([name], &Method::DELETE) if one => match store.delete(&at.key(name)) {
            Ok(obj) => json_bytes(200, obj.json.clone()),
            Err(e) => store_error(&e),
        },
        ([name], &Method::PATCH) if one => patch(store, req, &query, &at, name, Scope::Main).await,
        ([name, sub], &Method::PATCH) if one && sub == "status" => {
            patch(store, req, &query, &at, name, Scope::Status).await
        }
        ([name], &Method::PUT) if one => replace(store, req, &at, name, Scope::Main).await,
        ([name, sub], &Method::PUT) if one && sub == "status" => {
            replace(store, req, &at, name, Scope::Status).await
        }
        ([], _) => method_not_allowed(&method),
        ([_] | [_, _], _) if one && is_status_or_main(rest) => method_not_allowed(&method),
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

fn watch(store: &Store, at: &Target, q: &Query) -> Resp {
    let filter = match q.filter(at) {
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

/// A continue token as the apiserver makes them; `last` is `ns/name` for
/// namespaced kinds.
fn encode_continue(rv: u64, last: &str) -> String {
    let start = format!("{last}\u{0}");
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

fn list(store: &Store, at: &Target, q: &Query) -> Resp {
    let filter = match q.filter(at) {
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
    let kind = at.kind;
    let st = store.lock();
    let list_rv = resume.as_ref().map_or(st.rv, |(rv, _)| *rv);
    let lower = match &resume {
        Some((_, start)) => match start.split_once('/') {
            Some((ns, name)) if kind.namespaced() => Bound::Excluded(key(kind, ns, name)),
            _ => Bound::Excluded(key(kind, "", start)),
        },
        None => Bound::Included(key(kind, at.namespace.as_deref().unwrap_or(""), "")),
    };
    let upper = match (&at.namespace, filter.fields.exact_name()) {
        (_, Some(name)) if !kind.namespaced() => Bound::Included(key(kind, "", name)),
        (Some(ns), Some(name)) => Bound::Included(key(kind, ns, name)),
        (Some(ns), None) => Bound::Included(key(kind, ns, "\u{10ffff}")),
        (None, _) => Bound::Included(key(kind, "\u{10ffff}", "")),
    };
    let (mut items, mut remaining) = (Vec::new(), 0usize);
    if range_is_valid(&lower, &upper) {
        for (_, obj) in st.objects.range((lower, upper)) {
            if !filter.matches(obj) {
                continue;
            }
            if items.len() < limit {
                items.push(obj.clone());
            } else {
                remaining += 1;
            }
        }
    }
    drop(st);
    let token = (remaining > 0)
        .then(|| {
            items.last().map(|o| match kind.namespaced() {
                true => encode_continue(list_rv, &format!("{}/{}", o.namespace, o.name)),
                false => encode_continue(list_rv, &o.name),
            })
        })
        .flatten();
    list::response(kind, list_rv, token.as_deref(), remaining, items)
}

/// `BTreeMap::range` panics on an empty or reversed range.
fn range_is_valid(lower: &Bound<Key>, upper: &Bound<Key>) -> bool {
    match (lower, upper) {
        (Bound::Excluded(l), Bound::Included(u)) => l < u,
        (Bound::Included(l), Bound::Included(u)) => l <= u,
        _ => true,
    }
}

async fn patch(
    store: &Store,
    req: Request<Incoming>,
    q: &Query,
    at: &Target,
    name: &str,
    scope: Scope,
) -> Resp {
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
    if kind == PatchKind::Apply && scope == Scope::Main && store.get_obj(&at.key(name)).is_none() {
        let mut v = body;
        v["metadata"]["name"] = json!(name);
        let v = match at.own(v) {
            Ok(v) => v,
            Err(m) => return status(400, "BadRequest", &m),
        };
        return match store.create(at.kind, v) {
            Ok(obj) => json_bytes(201, obj.json.clone()),
            Err(e) => store_error(&e),
        };
    }
    let result = store.update(&at.key(name), scope, |v| {
        patch::apply(kind, v, &body).map_err(crate::StoreError::Invalid)
    });
    match result {
        Ok(obj) => json_bytes(200, obj.json.clone()),
        Err(e) => store_error(&e),
    }
}

async fn replace(
    store: &Store,
    req: Request<Incoming>,
    at: &Target,
    name: &str,
    scope: Scope,
) -> Resp {
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
    let body = match at.own(body) {
        Ok(b) => b,
        Err(m) => return status(400, "BadRequest", &m),
    };
    match store.update(&at.key(name), scope, move |v| {
        *v = body;
        Ok(())
    }) {
        Ok(obj) => json_bytes(200, obj.json.clone()),
        Err(e) => store_error(&e),
    }
}
