//! `…List` documents from stored objects, without building one big
//! buffer: responses stream in chunks, snapshots go through a `BufWriter`.

use std::convert::Infallible;
use std::io::Write;
use std::sync::Arc;

use bytes::Bytes;
use futures::StreamExt;
use http_body_util::{BodyExt, StreamBody};
use hyper::body::Frame;
use serde_json::json;

use crate::kind::Kind;
use crate::obj::Obj;
use crate::resp::{json_headers, Resp};

/// Bytes per response chunk.
const CHUNK: usize = 64 << 10;

/// `kind: None` is a plain `List` (the state dir's mixed snapshot).
fn head(kind: Option<Kind>, rv: u64, continue_token: Option<&str>, remaining: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(256);
    let (list, api_version) = match kind {
        Some(k) => (format!("{}List", k.name()), k.api_version()),
        None => ("List".to_string(), "v1"),
    };
    out.extend_from_slice(
        format!(
            r#"{{"kind":"{list}","apiVersion":"{api_version}","metadata":{{"resourceVersion":""#
        )
        .as_bytes(),
    );
    out.extend_from_slice(rv.to_string().as_bytes());
    out.push(b'"');
    if let Some(token) = continue_token {
        out.extend_from_slice(br#","continue":"#);
        out.extend_from_slice(json!(token).to_string().as_bytes());
        out.extend_from_slice(format!(r#","remainingItemCount":{remaining}"#).as_bytes());
    }
    out.extend_from_slice(br#"},"items":["#);
    out
}

const TAIL: &[u8] = b"]}\n";

/// Write a whole list (no continue token).
pub(crate) fn write(
    w: &mut impl Write,
    kind: Option<Kind>,
    rv: u64,
    objs: &[Arc<Obj>],
) -> std::io::Result<()> {
    w.write_all(&head(kind, rv, None, 0))?;
    for (i, o) in objs.iter().enumerate() {
        if i > 0 {
            w.write_all(b",")?;
        }
        w.write_all(&o.json)?;
    }
    w.write_all(TAIL)
}

/// A whole list in memory (for small lists).
pub(crate) fn encode(kind: Kind, rv: u64, objs: &[Arc<Obj>]) -> Bytes {
    let mut out = Vec::with_capacity(objs.iter().map(|o| o.json.len() + 1).sum::<usize>() + 256);
    write(&mut out, Some(kind), rv, objs).expect("writing to a Vec");
    Bytes::from(out)
}

/// A `200 OK` streaming the list in chunks of about 64 KiB.
pub(crate) fn response(
    kind: Kind,
    rv: u64,
    continue_token: Option<&str>,
    remaining: usize,
    objs: Vec<Arc<Obj>>,
) -> Resp {
    let head = head(Some(kind), rv, continue_token, remaining);
    let state = (Some(head), objs, 0usize);
    let stream = futures::stream::unfold(state, |(head, objs, next)| async move {
        let mut buf = match head {
            Some(h) => h,
            None if next > objs.len() => return None,
            None => Vec::with_capacity(CHUNK + 8192),
        };
        let mut i = next;
        while i < objs.len() && buf.len() < CHUNK {
            if i > 0 {
                buf.push(b',');
            }
            buf.extend_from_slice(&objs[i].json);
            i += 1;
        }
        if i == objs.len() {
            buf.extend_from_slice(TAIL);
            i += 1; // done after this chunk
        }
        let frame = Ok::<_, Infallible>(Frame::data(Bytes::from(buf)));
        Some((frame, (None, objs, i)))
    });
    let mut resp = hyper::Response::new(BodyExt::boxed_unsync(StreamBody::new(stream.boxed())));
    json_headers(&mut resp);
    resp
}
