//! The HTTP API.
//!
//! | method and path | answer |
//! |---|---|
//! | `POST /v1/messages` (XML body) | 202 receipt; 200 the first receipt for a duplicate; 400/413/415/422/503 with `{error, reason}` |
//! | `GET /v1/messages/{uuid}[?wait=SECONDS]` | status and the documents it produced; `wait` long-polls until processed |
//! | `GET /v1/tenants/{ags}/citizens` | the tenant's citizens |
//! | `GET /v1/tenants/{ags}/citizens/{id}` | one citizen's e-file |
//! | `GET /v1/messages/{uuid}/proof` | a receipt: the acceptance entry, its inclusion proof and a signed checkpoint covering it |
//! | `GET /v1/checkpoints/latest`, `GET /v1/checkpoints/{size}` | signed checkpoints |
//! | `POST /v1/checkpoints` | signs a checkpoint now (if the journal grew) and returns the latest |
//! | `GET /v1/checkpoints/consistency?from=M&to=N` | RFC 6962 consistency proof between two tree sizes |
//! | `GET /v1/public-key` | the installation's checkpoint key, for auditors |
//! | `GET /healthz`, `GET /readyz` | liveness, readiness (storage can write) |

use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use efile_bridge_intake::ErrorClass;
use efile_bridge_pipeline::{Pipeline, SubmitError, Submitted};
use efile_bridge_store::MessageState;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::header::{CONTENT_TYPE, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde::Serialize;
use tokio::net::TcpListener;

type Body = Full<Bytes>;

/// Serves the API on `listener` until `shutdown` resolves; in-flight requests are finished.
pub async fn serve(pipeline: Arc<Pipeline>, listener: TcpListener, shutdown: impl Future<Output = ()>) {
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let (stream, peer) = match accepted {
                    Ok(a) => a,
                    Err(e) => {
                        tracing::warn!(error = %e, "accept failed");
                        continue;
                    }
                };
                let pipeline = pipeline.clone();
                let service = hyper::service::service_fn(move |req| {
                    let pipeline = pipeline.clone();
                    async move { Ok::<_, Infallible>(route(&pipeline, req).await) }
                });
                let conn = hyper::server::conn::http1::Builder::new()
                    .timer(hyper_util::rt::TokioTimer::new())
                    // A sender that stalls while sending headers is cut off.
                    .header_read_timeout(Duration::from_secs(10))
                    .serve_connection(TokioIo::new(stream), service);
                let conn = graceful.watch(conn);
                tokio::spawn(async move {
                    if let Err(e) = conn.await {
                        tracing::debug!(%peer, error = %e, "connection ended with an error");
                    }
                });
            }
            () = &mut shutdown => break,
        }
    }
    tokio::select! {
        () = graceful.shutdown() => {}
        () = tokio::time::sleep(Duration::from_secs(10)) => tracing::warn!("connections still open after 10 s; closing"),
    }
}

fn json<T: Serialize>(status: StatusCode, value: &T) -> Response<Body> {
    let body = serde_json::to_vec(value).unwrap_or_else(|_| b"{}".to_vec());
    let mut resp = Response::new(Full::new(Bytes::from(body)));
    *resp.status_mut() = status;
    resp.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    resp
}

#[derive(Serialize)]
struct ErrorBody<'a> {
    error: &'a str,
    reason: String,
}

fn error(status: StatusCode, code: &str, reason: impl Into<String>) -> Response<Body> {
    json(status, &ErrorBody { error: code, reason: reason.into() })
}

async fn route(pipeline: &Pipeline, req: Request<Incoming>) -> Response<Body> {
    let path = req.uri().path().to_owned();
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    match (req.method(), segments.as_slice()) {
        (&Method::POST, ["v1", "messages"]) => post_message(pipeline, req).await,
        (&Method::GET, ["v1", "messages", uuid, "proof"]) => {
            let store = pipeline.store();
            let uuid = uuid.to_ascii_lowercase();
            blocking(move || {
                Ok(match store.receipt(None, &uuid)? {
                    Some(r) => json(StatusCode::OK, &r),
                    None => error(StatusCode::NOT_FOUND, "not_found", format!("no message {uuid}")),
                })
            })
            .await
        }
        (&Method::GET, ["v1", "checkpoints", "latest"]) => {
            let store = pipeline.store();
            blocking(move || Ok(checkpoint_or_404(store.latest_checkpoint()?, "no checkpoint has been signed yet")))
                .await
        }
        (&Method::POST, ["v1", "checkpoints"]) => {
            let store = pipeline.store();
            blocking(move || Ok(checkpoint_or_404(store.checkpoint()?, "the journal is empty"))).await
        }
        (&Method::GET, ["v1", "checkpoints", "consistency"]) => {
            let param = |k| query_param(req.uri().query(), k).and_then(|v| v.parse::<u64>().ok());
            let (Some(from), Some(to)) = (param("from"), param("to")) else {
                return error(StatusCode::BAD_REQUEST, "bad_query", "give from=SIZE&to=SIZE as whole numbers");
            };
            let store = pipeline.store();
            blocking(move || match store.consistency_proof(from, to) {
                Ok(proof) => Ok(json(
                    StatusCode::OK,
                    &serde_json::json!({"from": from, "to": to, "proof": proof.iter().map(hex::encode).collect::<Vec<_>>()}),
                )),
                Err(efile_bridge_store::StoreError::NotFound(reason)) => {
                    Ok(error(StatusCode::NOT_FOUND, "not_found", reason))
                }
                Err(e) => Err(e),
            })
            .await
        }
        (&Method::GET, ["v1", "checkpoints", size]) => {
            let Ok(size) = size.parse::<u64>() else {
                return error(StatusCode::BAD_REQUEST, "bad_size", format!("`{size}` is not a tree size"));
            };
            let store = pipeline.store();
            blocking(move || {
                Ok(checkpoint_or_404(store.checkpoint_at(size)?, &format!("no checkpoint at tree size {size}")))
            })
            .await
        }
        (&Method::GET, ["v1", "public-key"]) => {
            let key = pipeline.store().public_key().to_json();
            let mut resp = Response::new(Full::new(Bytes::from(key)));
            resp.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
            resp
        }
        (&Method::GET, ["v1", "messages", uuid]) => {
            let wait = query_param(req.uri().query(), "wait").and_then(|w| w.parse::<u64>().ok()).unwrap_or(0).min(30);
            get_message(pipeline, uuid, Duration::from_secs(wait)).await
        }
        (&Method::GET, ["v1", "tenants", ags, "citizens"]) => {
            let store = pipeline.store();
            let ags = (*ags).to_owned();
            blocking(move || store.citizens(&ags).map(|c| json(StatusCode::OK, &c))).await
        }
        (&Method::GET, ["v1", "tenants", ags, "citizens", id]) => {
            let store = pipeline.store();
            let (ags, id) = ((*ags).to_owned(), (*id).to_owned());
            blocking(move || {
                Ok(match store.citizen_file(&ags, &id)? {
                    Some(file) => json(StatusCode::OK, &file),
                    None => error(StatusCode::NOT_FOUND, "not_found", format!("tenant {ags} has no citizen {id}")),
                })
            })
            .await
        }
        (&Method::GET, ["healthz"]) => json(StatusCode::OK, &serde_json::json!({"status": "ok"})),
        (&Method::GET, ["readyz"]) => {
            if pipeline.store().healthy() {
                json(StatusCode::OK, &serde_json::json!({"status": "ready"}))
            } else {
                error(StatusCode::SERVICE_UNAVAILABLE, "storage_unhealthy", "the last storage commit failed")
            }
        }
        (
            _,
            ["v1", "messages"]
            | ["v1", "messages", _]
            | ["v1", "tenants", _, "citizens", ..]
            | ["healthz"]
            | ["readyz"],
        ) => error(
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
            format!("{} is not allowed on {path}", req.method()),
        ),
        _ => error(StatusCode::NOT_FOUND, "not_found", format!("no route for {path}")),
    }
}

fn checkpoint_or_404(cp: Option<efile_bridge_store::journal::checkpoint::Checkpoint>, why: &str) -> Response<Body> {
    match cp {
        Some(cp) => json(StatusCode::OK, &cp),
        None => error(StatusCode::NOT_FOUND, "not_found", why),
    }
}

fn query_param<'a>(query: Option<&'a str>, key: &str) -> Option<&'a str> {
    query?.split('&').filter_map(|kv| kv.split_once('=')).find(|(k, _)| *k == key).map(|(_, v)| v)
}

async fn blocking(
    f: impl FnOnce() -> Result<Response<Body>, efile_bridge_store::StoreError> + Send + 'static,
) -> Response<Body> {
    match tokio::task::spawn_blocking(f).await {
        Ok(Ok(resp)) => resp,
        Ok(Err(e)) => {
            tracing::error!(error = %e, "storage read failed");
            error(StatusCode::SERVICE_UNAVAILABLE, "storage_unavailable", "storage read failed")
        }
        Err(_) => error(StatusCode::INTERNAL_SERVER_ERROR, "internal", "request handler failed"),
    }
}

fn is_xml(content_type: Option<&HeaderValue>) -> bool {
    let Some(ct) = content_type.and_then(|v| v.to_str().ok()) else {
        return false;
    };
    let mime = ct.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
    mime == "application/xml" || mime == "text/xml" || mime.ends_with("+xml")
}

async fn post_message(pipeline: &Pipeline, req: Request<Incoming>) -> Response<Body> {
    if !is_xml(req.headers().get(CONTENT_TYPE)) {
        return error(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "send the message as application/xml",
        );
    }
    let limit = pipeline.config().limits.max_body_bytes;
    let declared = req
        .headers()
        .get(hyper::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|n| n > limit) {
        return error(
            StatusCode::PAYLOAD_TOO_LARGE,
            "too_large",
            format!("message is larger than the limit of {limit} bytes"),
        );
    }
    let body = match Limited::new(req.into_body(), limit).collect().await {
        Ok(b) => b.to_bytes(),
        Err(e) if e.downcast_ref::<http_body_util::LengthLimitError>().is_some() => {
            return error(
                StatusCode::PAYLOAD_TOO_LARGE,
                "too_large",
                format!("message is larger than the limit of {limit} bytes"),
            );
        }
        Err(e) => {
            return error(StatusCode::BAD_REQUEST, "body_unreadable", format!("could not read the body: {e}"));
        }
    };
    match pipeline.submit(body.to_vec()).await {
        Ok(Submitted::Accepted(receipt)) => json(StatusCode::ACCEPTED, &receipt),
        Ok(Submitted::Duplicate(receipt)) => json(StatusCode::OK, &receipt),
        Err(e) => submit_error(&e),
    }
}

/// Maps a refusal to its status and short body. Also used by the drop folder's error files.
pub fn submit_error(e: &SubmitError) -> Response<Body> {
    match e {
        SubmitError::Intake(i) => {
            let status = match i.class() {
                ErrorClass::Malformed => StatusCode::BAD_REQUEST,
                ErrorClass::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
                ErrorClass::Unacceptable => StatusCode::UNPROCESSABLE_ENTITY,
            };
            tracing::info!(error = i.code(), "message refused at intake");
            error(status, i.code(), i.to_string())
        }
        SubmitError::UnknownTenant { .. } => error(StatusCode::UNPROCESSABLE_ENTITY, "unknown_tenant", e.to_string()),
        SubmitError::NoAdapter { .. } => error(StatusCode::UNPROCESSABLE_ENTITY, "no_adapter", e.to_string()),
        SubmitError::Storage(s) => {
            tracing::error!(error = %s, "message could not be stored");
            error(
                StatusCode::SERVICE_UNAVAILABLE,
                "storage_unavailable",
                "the message could not be stored; send it again",
            )
        }
        _ => error(StatusCode::SERVICE_UNAVAILABLE, "shutting_down", e.to_string()),
    }
}

async fn get_message(pipeline: &Pipeline, uuid: &str, wait: Duration) -> Response<Body> {
    let uuid = uuid.to_ascii_lowercase();
    let deadline = tokio::time::Instant::now() + wait;
    let mut processed = pipeline.processed();
    loop {
        let store = pipeline.store();
        let id = uuid.clone();
        let status = tokio::task::spawn_blocking(move || store.message_status(None, &id)).await;
        let status = match status {
            Ok(Ok(s)) => s,
            Ok(Err(e)) => {
                tracing::error!(error = %e, "storage read failed");
                return error(StatusCode::SERVICE_UNAVAILABLE, "storage_unavailable", "storage read failed");
            }
            Err(_) => {
                return error(StatusCode::INTERNAL_SERVER_ERROR, "internal", "request handler failed");
            }
        };
        match status {
            None => {
                return error(StatusCode::NOT_FOUND, "not_found", format!("no message {uuid}"));
            }
            Some(s) if s.state != MessageState::Accepted => return json(StatusCode::OK, &s),
            Some(s) => {
                // Wait for the next processed message, then look again.
                if tokio::time::timeout_at(deadline, processed.changed()).await.is_err() {
                    return json(StatusCode::OK, &s);
                }
            }
        }
    }
}
