//! Watch streams: newline-delimited `{"type":..,"object":..}` events,
//! replayed from history after the requested resourceVersion, then live.

use std::convert::Infallible;
use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;
use http_body_util::{BodyExt, StreamBody};
use hyper::body::Frame;
use serde_json::json;
use tokio::sync::watch;
use tokio::time::Instant;

use crate::error::StoreError;
use crate::kind::Kind;
use crate::resp::{json_headers, status_value, Resp};
use crate::selector::Filter;
use crate::store::{Event, EventType, Store};

/// How often a watch that allows bookmarks gets one.
const BOOKMARK_INTERVAL: Duration = Duration::from_secs(30);

/// A parsed watch request.
pub(crate) struct WatchRequest {
    /// `None`: resourceVersion unset or "0": start with the current state
    /// as synthetic ADDED events.
    pub since: Option<u64>,
    pub filter: Filter,
    pub timeout: Duration,
    pub bookmarks: bool,
    /// `sendInitialEvents=true`: end the initial events with a bookmark
    /// annotated `k8s.io/initial-events-end`.
    pub initial_events_end: bool,
}

struct Watch {
    store: Store,
    rx: watch::Receiver<u64>,
    last: u64,
    filter: Filter,
    deadline: Instant,
    bookmarks: bool,
    next_bookmark: Instant,
    initial: Option<Bytes>,
    done: bool,
}

/// The streaming response for a watch request.
pub(crate) fn respond(store: Store, req: WatchRequest) -> Resp {
    let rx = store.subscribe();
    let now = Instant::now();
    let (last, initial) = match req.since {
        Some(rv) => (rv, None),
        None => {
            let (rv, objs) = store.snapshot_of(req.filter.kind);
            let mut buf = Vec::new();
            for o in objs.iter().filter(|o| req.filter.matches(o)) {
                push_event(&mut buf, "ADDED", &o.json);
            }
            if req.initial_events_end {
                buf.extend_from_slice(&bookmark(req.filter.kind, rv, true));
            }
            (rv, Some(Bytes::from(buf)))
        }
    };
    let state = Watch {
        store,
        rx,
        last,
        filter: req.filter,
        deadline: now + req.timeout,
        bookmarks: req.bookmarks,
        next_bookmark: now + BOOKMARK_INTERVAL,
        initial,
        done: false,
    };
    let stream = futures::stream::unfold(state, |mut w| async move {
        let chunk = w.next_chunk().await?;
        Some((Ok::<_, Infallible>(Frame::data(chunk)), w))
    });
    let body = BodyExt::boxed_unsync(StreamBody::new(stream.boxed()));
    let mut resp = hyper::Response::new(body);
    json_headers(&mut resp);
    resp
}

impl Watch {
    async fn next_chunk(&mut self) -> Option<Bytes> {
        if let Some(chunk) = self.initial.take().filter(|c| !c.is_empty()) {
            return Some(chunk);
        }
        loop {
            if self.done {
                return None;
            }
            self.rx.borrow_and_update();
            match self.store.events_since(self.last) {
                Err(e @ StoreError::Expired { .. }) => {
                    self.done = true;
                    let status = status_value(410, "Expired", &e.to_string());
                    let line = json!({"type": "ERROR", "object": status});
                    return Some(Bytes::from(format!("{line}\n")));
                }
                Err(_) => return None,
                Ok(events) => {
                    if let Some(last) = events.last() {
                        self.last = last.rv;
                        let chunk = self.encode(&events);
                        if !chunk.is_empty() {
                            return Some(Bytes::from(chunk));
                        }
                    }
                }
            }
            tokio::select! {
                changed = self.rx.changed() => {
                    if changed.is_err() {
                        return None;
                    }
                }
                _ = tokio::time::sleep_until(self.deadline) => {
                    self.done = true;
                    return self.bookmarks.then(|| bookmark(self.filter.kind, self.last, false));
                }
                _ = tokio::time::sleep_until(self.next_bookmark), if self.bookmarks => {
                    self.next_bookmark = Instant::now() + BOOKMARK_INTERVAL;
                    return Some(bookmark(self.filter.kind, self.last, false));
                }
            }
        }
    }

    fn encode(&self, events: &[std::sync::Arc<Event>]) -> Vec<u8> {
        let mut buf = Vec::new();
        for ev in events {
            if let Some(kind) = visible_as(ev, &self.filter) {
                push_event(&mut buf, kind, &ev.obj.json);
            }
        }
        buf
    }
}

/// How an event looks through a selector: objects that start (stop)
/// matching (labels or fields) are ADDED (DELETED), like the apiserver's
/// watch cache does.
fn visible_as(ev: &Event, filter: &Filter) -> Option<&'static str> {
    let now = filter.matches(&ev.obj);
    let before = ev.prev.as_ref().is_some_and(|p| filter.matches(p));
    match (ev.kind, before, now) {
        (EventType::Added, _, true) => Some("ADDED"),
        (EventType::Deleted, true, _) => Some("DELETED"),
        (EventType::Modified, true, true) => Some("MODIFIED"),
        (EventType::Modified, false, true) => Some("ADDED"),
        (EventType::Modified, true, false) => Some("DELETED"),
        _ => None,
    }
}

fn push_event(buf: &mut Vec<u8>, kind: &str, object: &[u8]) {
    buf.extend_from_slice(br#"{"type":""#);
    buf.extend_from_slice(kind.as_bytes());
    buf.extend_from_slice(br#"","object":"#);
    buf.extend_from_slice(object);
    buf.extend_from_slice(b"}\n");
}

fn bookmark(kind: Kind, rv: u64, initial_end: bool) -> Bytes {
    let mut metadata = json!({"resourceVersion": rv.to_string()});
    if initial_end {
        metadata["annotations"] = json!({"k8s.io/initial-events-end": "true"});
    }
    let line = json!({
        "type": "BOOKMARK",
        "object": {"kind": kind.name(), "apiVersion": kind.api_version(), "metadata": metadata}
    });
    Bytes::from(format!("{line}\n"))
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::selector::{LabelSelector, Labels};
    use crate::store::Obj;

    fn ev(kind: EventType, now: &[(&str, &str)], before: Option<&[(&str, &str)]>) -> Event {
        let labels = |l: &[(&str, &str)]| -> Labels {
            l.iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        };
        let obj = |l: &[(&str, &str)]| {
            Arc::new(Obj {
                kind: Kind::Node,
                namespace: String::new(),
                name: "n".into(),
                rv: 1,
                labels: labels(l),
                fields: Vec::new(),
                json: Bytes::new(),
            })
        };
        Event {
            rv: 1,
            kind,
            obj: obj(now),
            prev: before.map(obj),
        }
    }

    #[test]
    fn selector_transitions() {
        let f = Filter {
            labels: LabelSelector::parse("role=worker").unwrap(),
            ..Filter::default()
        };
        let w: &[(&str, &str)] = &[("role", "worker")];
        let x: &[(&str, &str)] = &[("role", "x")];
        use EventType::*;
        assert_eq!(visible_as(&ev(Added, w, None), &f), Some("ADDED"));
        assert_eq!(visible_as(&ev(Added, x, None), &f), None);
        assert_eq!(visible_as(&ev(Modified, w, Some(w)), &f), Some("MODIFIED"));
        assert_eq!(visible_as(&ev(Modified, w, Some(x)), &f), Some("ADDED"));
        assert_eq!(visible_as(&ev(Modified, x, Some(w)), &f), Some("DELETED"));
        assert_eq!(visible_as(&ev(Modified, x, Some(x)), &f), None);
        assert_eq!(visible_as(&ev(Deleted, w, Some(w)), &f), Some("DELETED"));
        let all = Filter::default();
        assert_eq!(
            visible_as(&ev(Modified, x, Some(x)), &all),
            Some("MODIFIED")
        );
    }
}
