//! Responses: JSON bodies, the `Status` error bodies, reading a JSON
//! request body. Used by the routes and by the connection code, and
//! depending on neither.

use std::convert::Infallible;

use bytes::Bytes;
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::header::{HeaderValue, CONTENT_TYPE};
use hyper::{Method, Request, Response};
use serde_json::{json, Value};

use crate::error::StoreError;

pub(crate) type Body = UnsyncBoxBody<Bytes, Infallible>;
pub(crate) type Resp = Response<Body>;

/// Largest request body accepted (the apiserver's limit is 3 MiB).
const MAX_BODY: usize = 3 << 20;

/// Read a request body (bounded) as JSON.
pub(crate) async fn read_json(req: Request<Incoming>) -> Result<Value, Resp> {
    let body = match Limited::new(req.into_body(), MAX_BODY).collect().await {
        Ok(b) => b.to_bytes(),
        Err(e) => return Err(status(413, "RequestEntityTooLarge", &e.to_string())),
    };
    serde_json::from_slice(&body)
        .map_err(|e| status(400, "BadRequest", &format!("the body is not JSON: {e}")))
}

pub(crate) fn json_headers(resp: &mut Resp) {
    resp.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
}

pub(crate) fn json_bytes(code: u16, bytes: Bytes) -> Resp {
    let mut resp = Response::new(Full::new(bytes).boxed_unsync());
    *resp.status_mut() = hyper::StatusCode::from_u16(code).unwrap_or_default();
    json_headers(&mut resp);
    resp
}

pub(crate) fn json_value(code: u16, v: &Value) -> Resp {
    json_bytes(code, Bytes::from(v.to_string()))
}

pub(crate) fn text(code: u16, body: &'static str) -> Resp {
    let mut resp = Response::new(Full::new(Bytes::from_static(body.as_bytes())).boxed_unsync());
    *resp.status_mut() = hyper::StatusCode::from_u16(code).unwrap_or_default();
    resp
}

/// A `Status` object, as in every apiserver error.
pub(crate) fn status_value(code: u16, reason: &str, message: &str) -> Value {
    json!({
        "kind": "Status", "apiVersion": "v1", "metadata": {},
        "status": "Failure", "message": message, "reason": reason, "code": code
    })
}

pub(crate) fn status(code: u16, reason: &str, message: &str) -> Resp {
    json_value(code, &status_value(code, reason, message))
}

pub(crate) fn store_error(e: &StoreError) -> Resp {
    let (code, reason) = e.code();
    let mut v = status_value(code, reason, &e.to_string());
    if let StoreError::NotFound(kind, name) | StoreError::AlreadyExists(kind, name) = e {
        v["details"] = json!({"name": name, "kind": kind});
    }
    json_value(code, &v)
}

pub(crate) fn method_not_allowed(method: &Method) -> Resp {
    status(
        405,
        "MethodNotAllowed",
        &format!("the server does not allow this method on the requested resource: {method}"),
    )
}
