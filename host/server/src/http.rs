//! The HTTP API.
//!
//! Clerk tokens (`[[tenant.clerk]]`) read their tenant's citizens, documents and review
//! items, up to their clearance; they post no messages and read no message status.
//!
//! Every call but `/healthz`, `/readyz` and the console's files carries `Authorization: Bearer TOKEN` (unless the
//! operator chose `auth.mode = "open"` on a loopback address). A tenant token sees only its
//! own tenant; an admin token sees all and may use `/v1/admin/*` and `/metrics`.
//!
//! | method and path | who | answer |
//! |---|---|---|
//! | `POST /v1/messages` (XML body) | tenant, admin | 202 receipt; 200 the first receipt for a duplicate; 400, 401, 403, 408, 413, 415, 422, 429, 503 with `{error, reason}` |
//! | `GET /v1/messages/{uuid}[?wait=SECONDS]` | tenant, admin | status and the documents it produced; `wait` long-polls |
//! | `GET /v1/messages/{uuid}/proof` | tenant, admin | a receipt: acceptance entry, inclusion proof, signed checkpoint |
//! | `GET /v1/tenants/{ags}/citizens[?name=&birth_date=]` | tenant, admin | the tenant's citizens, searchable |
//! | `GET /v1/tenants/{ags}/citizens/{id}` | tenant, admin | one citizen's e-file, documents in date order |
//! | `GET /v1/tenants/{ags}/documents/{id}` | tenant, clerk, admin | one document: where it is filed, its versions, its message |
//! | `GET /v1/tenants/{ags}/documents/{id}/original`, `.../attachments/{n}` | tenant, clerk, admin | the original XML, attachment `n` (from 0), as downloads; 410 once deleted by retention |
//! | `GET /v1/tenants/{ags}/documents/{id}/proof` | tenant, clerk, admin | the journal receipt of the latest version (entry, inclusion proof, signed checkpoint) |
//! | `GET /v1/session` | any token | role, tenant, clerk name, clearance and the tenants the token may read (for the console) |
//! | `GET /v1/tenants/{ags}/reviews[?all=true]` | tenant, admin | records waiting for a clerk (ambiguous citizen match) |
//! | `GET /v1/tenants/{ags}/reviews/{id}` | tenant, admin | one review item, its candidates and the waiting record |
//! | `POST /v1/tenants/{ags}/reviews/{id}` (JSON) | tenant, admin | decides it: `{"decision":"assign","citizen":ID}` or `{"decision":"new-citizen"}`, optional `"clerk"`; 200, 404, 409 decided already, 422 not a candidate |
//! | `GET /v1/checkpoints/latest`, `/v1/checkpoints/{size}`, `/v1/checkpoints/consistency?from=M&to=N` | any token | signed checkpoints, consistency proofs |
//! | `POST /v1/checkpoints` | admin | signs a checkpoint now |
//! | `GET /v1/public-key` | anyone | the installation's checkpoint key |
//! | `GET /v1/admin/tenants` | admin | tenants, their adapters and message counts |
//! | `GET /v1/admin/messages[?tenant=&state=&limit=]` | admin | messages, newest first (`state=failed`: dead letters) |
//! | `GET /v1/admin/deliveries[?tenant=&state=&limit=]`, `/v1/admin/deliveries/{id}` | admin | delivery of each record version to each sink, newest first |
//! | `GET /v1/admin/deadletters[?tenant=]`, `/v1/admin/deadletters/{id}` | admin | deliveries that failed for good, with every attempt's error |
//! | `POST /v1/admin/deadletters/{id}/redeliver`, `.../discard` (JSON `{"reason", "operator"}`) | admin | queue again, or give up (reason required); both journaled |
//! | `GET /v1/admin/adapters` | admin | installed adapter packages and every tenant's switches |
//! | `POST /v1/admin/adapters` (package body, `Efile-Signature` header) | admin | verify and install a signed package; 201, 422 refused (unsigned, untrusted, other world, manifest mismatch), 409 |
//! | `POST /v1/admin/tenants/{ags}/adapters/activate` (`{"adapter": "NAME@VERSION", "type"?}`), `.../rollback` | admin | switch a tenant's adapter now, or undo its latest switch; journaled |
//! | `POST /v1/admin/adapters/{name@version}/remove` | admin | remove a version no tenant uses |
//! | `POST /v1/admin/tenants/{ags}/adapters/shadow/start` (`{"adapter"}`), `.../stop`; `GET .../shadow[?limit=]` | admin | a live shadow run beside the active adapter; its comparisons |
//! | `GET /v1/admin/flow` | admin | per tenant: message counts, last 24 h, latency p50/p95/max, latest failure |
//! | `GET /v1/admin/checkpoints[?limit=]` | admin | the latest signed checkpoints, newest first |
//! | `GET /v1/admin/verify`, `POST /v1/admin/verify` | admin | the latest `verify` outcome (any host or the CLI); start one in the background (202, 409 running) |
//! | `GET /metrics` | admin | Prometheus text format |
//! | `GET /console/` | anyone (the app holds no data; it asks for a token) | the web console |
//! | `GET /healthz`, `GET /readyz` | anyone | liveness, readiness (storage can write) |

use std::convert::Infallible;
use std::future::Future;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use efile_bridge_intake::ErrorClass;
use efile_bridge_pipeline::{AuthError, Caller, Pipeline, SubmitError, Submitted};
use efile_bridge_store::{DeliveryState, MessageState, StoreError};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::header::{AUTHORIZATION, CONTENT_TYPE, HeaderValue, RETRY_AFTER};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde::Serialize;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;

mod views;

type Body = Full<Bytes>;

/// Listener settings.
#[derive(Clone)]
pub struct Options {
    /// HTTPS when set.
    pub tls: Option<Arc<rustls::ServerConfig>>,
    /// Most connections served at once.
    pub max_connections: usize,
    /// Time allowed for the request headers.
    pub header_timeout: Duration,
    /// Time allowed for the request body.
    pub body_timeout: Duration,
}

impl std::fmt::Debug for Options {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Options")
            .field("tls", &self.tls.is_some())
            .field("max_connections", &self.max_connections)
            .finish_non_exhaustive()
    }
}

impl Options {
    /// From the operator config (reads the TLS files).
    pub fn from_config(config: &efile_bridge_pipeline::config::HttpConfig) -> Result<Self, String> {
        let tls = match (&config.tls_cert, &config.tls_key) {
            (Some(cert), Some(key)) => Some(Arc::new(tls_config(cert, key)?)),
            _ => None,
        };
        Ok(Self {
            tls,
            max_connections: config.max_connections,
            header_timeout: Duration::from_secs(config.header_timeout_secs),
            body_timeout: Duration::from_secs(config.body_timeout_secs),
        })
    }
}

impl Default for Options {
    fn default() -> Self {
        Self {
            tls: None,
            max_connections: 1024,
            header_timeout: Duration::from_secs(10),
            body_timeout: Duration::from_secs(30),
        }
    }
}

/// A rustls server config from PEM certificate chain and key files.
pub fn tls_config(cert: &Path, key: &Path) -> Result<rustls::ServerConfig, String> {
    use rustls_pki_types::pem::PemObject as _;
    use rustls_pki_types::{CertificateDer, PrivateKeyDer};
    let certs = CertificateDer::pem_file_iter(cert)
        .and_then(|i| i.collect::<Result<Vec<_>, _>>())
        .map_err(|e| format!("tls certificate {}: {e}", cert.display()))?;
    if certs.is_empty() {
        return Err(format!("tls certificate {}: no certificate in the file", cert.display()));
    }
    let key = PrivateKeyDer::from_pem_file(key).map_err(|e| format!("tls key {}: {e}", key.display()))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .and_then(|b| b.with_no_client_auth().with_single_cert(certs, key))
        .map(|mut c| {
            c.alpn_protocols = vec![b"http/1.1".to_vec()];
            c
        })
        .map_err(|e| format!("tls: {e}"))
}

/// Serves the API on `listener` until `shutdown` resolves; in-flight requests are finished.
pub async fn serve(
    pipeline: Arc<Pipeline>,
    listener: TcpListener,
    options: Options,
    shutdown: impl Future<Output = ()>,
) {
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let permits = Arc::new(tokio::sync::Semaphore::new(options.max_connections));
    let tls = options.tls.clone().map(tokio_rustls::TlsAcceptor::from);
    tokio::pin!(shutdown);
    loop {
        // At the connection limit, stop accepting: new clients wait in the kernel backlog.
        let permit = tokio::select! {
            p = permits.clone().acquire_owned() => match p { Ok(p) => p, Err(_) => break },
            () = &mut shutdown => break,
        };
        tokio::select! {
            accepted = listener.accept() => {
                let (stream, peer) = match accepted {
                    Ok(a) => a,
                    Err(e) => {
                        tracing::warn!(error = %e, "accept failed");
                        continue;
                    }
                };
                let _ = stream.set_nodelay(true);
                let (pipeline, options, watcher) = (pipeline.clone(), options.clone(), graceful.watcher());
                match &tls {
                    None => {
                        tokio::spawn(async move {
                            connection(pipeline, stream, options, watcher, peer).await;
                            drop(permit);
                        });
                    }
                    Some(acceptor) => {
                        let acceptor = acceptor.clone();
                        tokio::spawn(async move {
                            match tokio::time::timeout(options.header_timeout, acceptor.accept(stream)).await {
                                Ok(Ok(tls)) => connection(pipeline, tls, options, watcher, peer).await,
                                Ok(Err(e)) => tracing::debug!(%peer, error = %e, "tls handshake failed"),
                                Err(_) => tracing::debug!(%peer, "tls handshake timed out"),
                            }
                            drop(permit);
                        });
                    }
                }
            }
            () = &mut shutdown => break,
        }
    }
    tokio::select! {
        () = graceful.shutdown() => {}
        () = tokio::time::sleep(Duration::from_secs(10)) => tracing::warn!("connections still open after 10 s; closing"),
    }
}

async fn connection<S: AsyncRead + AsyncWrite + Unpin + Send + 'static>(
    pipeline: Arc<Pipeline>,
    stream: S,
    options: Options,
    watcher: hyper_util::server::graceful::Watcher,
    peer: std::net::SocketAddr,
) {
    let body_timeout = options.body_timeout;
    let service = hyper::service::service_fn(move |req| {
        let pipeline = pipeline.clone();
        async move { Ok::<_, Infallible>(route(&pipeline, req, body_timeout).await) }
    });
    let conn = hyper::server::conn::http1::Builder::new()
        .timer(hyper_util::rt::TokioTimer::new())
        // A sender that stalls while sending headers is cut off.
        .header_read_timeout(options.header_timeout)
        .serve_connection(TokioIo::new(stream), service);
    if let Err(e) = watcher.watch(conn).await {
        tracing::debug!(%peer, error = %e, "connection ended with an error");
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

fn forbidden_tenant(ags: &str) -> Response<Body> {
    error(StatusCode::FORBIDDEN, "forbidden", format!("this token may not read tenant {ags}"))
}

async fn route(pipeline: &Pipeline, req: Request<Incoming>, body_timeout: Duration) -> Response<Body> {
    let mut resp = route_inner(pipeline, req, body_timeout).await;
    // Answers carry citizens' data: never cached, never sniffed into something else, never
    // framed. (Console files set their own, stricter policy.)
    let headers = resp.headers_mut();
    for (name, value) in [
        ("x-content-type-options", "nosniff"),
        ("cache-control", "no-store"),
        ("content-security-policy", "default-src 'none'; frame-ancestors 'none'"),
    ] {
        if !headers.contains_key(name) {
            headers.insert(name, HeaderValue::from_static(value));
        }
    }
    resp
}

async fn route_inner(pipeline: &Pipeline, req: Request<Incoming>, body_timeout: Duration) -> Response<Body> {
    let path = req.uri().path().to_owned();
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    // Public routes first.
    match (req.method(), segments.as_slice()) {
        (&Method::GET, ["healthz"]) => return json(StatusCode::OK, &serde_json::json!({"status": "ok"})),
        (&Method::GET, ["readyz"]) => {
            return if pipeline.store().healthy() {
                json(StatusCode::OK, &serde_json::json!({"status": "ready"}))
            } else {
                error(StatusCode::SERVICE_UNAVAILABLE, "storage_unhealthy", "the last storage commit failed")
            };
        }
        (&Method::GET, ["console", ..]) => return views::console(&path),
        (&Method::GET, ["v1", "public-key"]) => {
            let key = pipeline.store().public_key().to_json();
            let mut resp = Response::new(Full::new(Bytes::from(key)));
            resp.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
            return resp;
        }
        _ => {}
    }
    let authorization = req.headers().get(AUTHORIZATION).and_then(|v| v.to_str().ok());
    let caller = match pipeline.authenticate(authorization) {
        Ok(c) => c,
        Err(e) => {
            let code = if e == AuthError::Missing { "unauthenticated" } else { "invalid_token" };
            let mut resp = error(StatusCode::UNAUTHORIZED, code, e.to_string());
            resp.headers_mut().insert("www-authenticate", HeaderValue::from_static("Bearer"));
            return resp;
        }
    };
    match (req.method(), segments.as_slice()) {
        (&Method::GET, ["v1", "session"]) => views::session(pipeline, &caller),
        // A message's status names its documents' titles whatever their confidentiality.
        (_, ["v1", "messages", ..]) if matches!(caller, Caller::Clerk { .. }) => {
            error(StatusCode::FORBIDDEN, "forbidden", "clerk tokens read citizens' files, not messages")
        }
        (&Method::POST, ["v1", "messages"]) => post_message(pipeline, req, &caller, body_timeout).await,
        (&Method::GET, ["v1", "messages", uuid, "proof"]) => {
            let store = pipeline.store();
            let uuid = uuid.to_ascii_lowercase();
            let tenant = own_tenant(&caller);
            blocking(move || {
                Ok(match store.receipt(tenant.as_deref(), &uuid)? {
                    Some(r) => json(StatusCode::OK, &r),
                    None => error(StatusCode::NOT_FOUND, "not_found", format!("no message {uuid}")),
                })
            })
            .await
        }
        (&Method::GET, ["v1", "messages", uuid]) => {
            let wait = query_param(req.uri().query(), "wait").and_then(|w| w.parse::<u64>().ok()).unwrap_or(0).min(30);
            get_message(pipeline, uuid, own_tenant(&caller), Duration::from_secs(wait)).await
        }
        (&Method::GET, ["v1", "tenants", ags, "citizens"]) => {
            if !caller.may_read(ags) {
                return forbidden_tenant(ags);
            }
            let store = pipeline.store();
            let ags = (*ags).to_owned();
            let name = query_param(req.uri().query(), "name").map(percent_decode);
            let birth = query_param(req.uri().query(), "birth_date").map(percent_decode);
            blocking(move || {
                store.search_citizens(&ags, name.as_deref(), birth.as_deref()).map(|c| json(StatusCode::OK, &c))
            })
            .await
        }
        (&Method::GET, ["v1", "tenants", ags, "citizens", id]) => {
            if !caller.may_read(ags) {
                return forbidden_tenant(ags);
            }
            let store = pipeline.store();
            let (ags, id) = ((*ags).to_owned(), (*id).to_owned());
            let clearance = caller.clearance();
            blocking(move || {
                Ok(match store.citizen_file(&ags, &id)? {
                    Some(mut file) => {
                        file.withhold_above(clearance);
                        json(StatusCode::OK, &file)
                    }
                    None => error(StatusCode::NOT_FOUND, "not_found", format!("tenant {ags} has no citizen {id}")),
                })
            })
            .await
        }
        (&Method::GET, ["v1", "tenants", ags, "documents", id, rest @ ..]) => {
            if !caller.may_read(ags) {
                return forbidden_tenant(ags);
            }
            let (ags, id) = ((*ags).to_owned(), (*id).to_owned());
            let part = match rest {
                [] => views::Part::Detail,
                ["original"] => views::Part::Original,
                ["proof"] => return views::proof(pipeline, &caller, ags, id).await,
                ["attachments", n] => match n.parse() {
                    Ok(n) => views::Part::Attachment(n),
                    Err(_) => {
                        return error(
                            StatusCode::BAD_REQUEST,
                            "bad_request",
                            format!("`{n}` is not an attachment number"),
                        );
                    }
                },
                _ => return error(StatusCode::NOT_FOUND, "not_found", format!("no route for {path}")),
            };
            views::document(pipeline, &caller, ags, id, part).await
        }
        (&Method::GET, ["v1", "tenants", ags, "reviews"]) => {
            if !caller.may_read(ags) {
                return forbidden_tenant(ags);
            }
            let store = pipeline.store();
            let ags = (*ags).to_owned();
            let open_only = query_param(req.uri().query(), "all") != Some("true");
            let clearance = caller.clearance();
            blocking(move || {
                let mut items = store.reviews(Some(&ags), open_only)?;
                if clearance < efile_bridge_model::Confidentiality::Secret {
                    // A waiting record above the clerk's clearance is not the clerk's to decide.
                    let mut visible = Vec::with_capacity(items.len());
                    for item in items {
                        if review_visible(store.as_ref(), &ags, &item.review_id, clearance)? {
                            visible.push(item);
                        }
                    }
                    items = visible;
                }
                Ok(json(StatusCode::OK, &items))
            })
            .await
        }
        (&Method::GET, ["v1", "tenants", ags, "reviews", id]) => {
            if !caller.may_read(ags) {
                return forbidden_tenant(ags);
            }
            let store = pipeline.store();
            let (ags, id) = ((*ags).to_owned(), (*id).to_owned());
            let clearance = caller.clearance();
            blocking(move || {
                Ok(match store.review(Some(&ags), &id)?.filter(|(_, r)| r.confidentiality <= clearance) {
                    Some((review, record)) => {
                        let mut record = serde_json::to_value(&record).unwrap_or_default();
                        // Names and sizes are enough to decide; the bytes can be megabytes.
                        if let Some(list) = record["attachments"].as_array_mut() {
                            for a in list.iter_mut() {
                                let size = a["data"].as_str().map_or(0, |b| b.len() / 4 * 3);
                                if let Some(a) = a.as_object_mut() {
                                    a.remove("data");
                                    a.insert("approximate_bytes".into(), size.into());
                                }
                            }
                        }
                        json(StatusCode::OK, &serde_json::json!({"review": review, "record": record}))
                    }
                    None => error(StatusCode::NOT_FOUND, "not_found", format!("tenant {ags} has no review item {id}")),
                })
            })
            .await
        }
        (&Method::POST, ["v1", "tenants", ags, "reviews", id]) => {
            if !caller.may_read(ags) {
                return forbidden_tenant(ags);
            }
            let (ags, id) = ((*ags).to_owned(), (*id).to_owned());
            decide_review(pipeline, req, &caller, ags, id, body_timeout).await
        }
        (&Method::GET, ["v1", "checkpoints", "latest"]) => {
            let store = pipeline.store();
            blocking(move || Ok(checkpoint_or_404(store.latest_checkpoint()?, "no checkpoint has been signed yet")))
                .await
        }
        (&Method::POST, ["v1", "checkpoints"]) if caller.is_admin() => {
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
                Err(StoreError::NotFound(reason)) => Ok(error(StatusCode::NOT_FOUND, "not_found", reason)),
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
        (_, ["v1", "admin", ..] | ["metrics"]) | (&Method::POST, ["v1", "checkpoints"]) if !caller.is_admin() => {
            error(StatusCode::FORBIDDEN, "forbidden", "this needs an admin token")
        }
        (&Method::GET, ["metrics"]) => {
            let lock = pipeline.store().write_lock();
            let mut resp = Response::new(Full::new(Bytes::from(pipeline.metrics().render(&lock))));
            resp.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static("text/plain; version=0.0.4"));
            resp
        }
        (&Method::GET, ["v1", "admin", "flow"]) => views::flow(pipeline).await,
        (&Method::GET, ["v1", "admin", "checkpoints"]) => {
            views::checkpoints(pipeline, limit_of(req.uri().query())).await
        }
        (&Method::GET, ["v1", "admin", "verify"]) => views::last_verify(pipeline).await,
        (&Method::POST, ["v1", "admin", "verify"]) => views::start_verify(pipeline),
        (&Method::GET, ["v1", "admin", "tenants"]) => {
            let tenants = pipeline.tenants();
            let store = pipeline.store();
            blocking(move || {
                let counts = store.message_counts()?;
                let out: Vec<_> = tenants
                    .into_iter()
                    .map(|t| {
                        let mine: serde_json::Map<String, serde_json::Value> = counts
                            .iter()
                            .filter(|c| c.tenant == t.ags)
                            .map(|c| (c.state.as_str().to_owned(), c.count.into()))
                            .collect();
                        let mut v = serde_json::to_value(&t).unwrap_or_default();
                        v["messages"] = serde_json::Value::Object(mine);
                        v
                    })
                    .collect();
                Ok(json(StatusCode::OK, &out))
            })
            .await
        }
        (&Method::GET, ["v1", "admin", "messages"]) => {
            let q = req.uri().query();
            let tenant = query_param(q, "tenant").map(str::to_owned);
            let state = match parsed_state(q, MessageState::parse, "accepted, processed or failed") {
                Ok(s) => s,
                Err(why) => return error(StatusCode::BAD_REQUEST, "bad_query", why),
            };
            let limit = limit_of(q);
            let store = pipeline.store();
            blocking(move || store.messages(tenant.as_deref(), state, limit).map(|m| json(StatusCode::OK, &m))).await
        }
        (&Method::GET, ["v1", "admin", "adapters"]) => {
            let store = pipeline.store();
            blocking(move || {
                let installed = store.installed_adapters()?;
                let switches = store.activations(None)?;
                Ok(json(StatusCode::OK, &serde_json::json!({"installed": installed, "switches": switches})))
            })
            .await
        }
        (&Method::POST, ["v1", "admin", "adapters"]) => install_adapter(pipeline, req, &caller, body_timeout).await,
        (&Method::POST, ["v1", "admin", "adapters", adapter, "remove"]) => {
            let Some((name, version)) = adapter.split_once('@').map(|(n, v)| (n.to_owned(), v.to_owned())) else {
                return error(StatusCode::BAD_REQUEST, "bad_request", format!("`{adapter}` is not NAME@VERSION"));
            };
            let body = match read_json(req, body_timeout).await {
                Ok(b) => b,
                Err(resp) => return resp,
            };
            let by = operator_of(&caller, &body);
            let store = pipeline.store();
            blocking(move || store.remove_adapter(&name, &version, &by).map(|a| json(StatusCode::OK, &a))).await
        }
        (&Method::GET, ["v1", "admin", "tenants", ags, "adapters", "shadow"]) => {
            let (store, ags) = (pipeline.store(), (*ags).to_owned());
            let limit = limit_of(req.uri().query());
            blocking(move || store.shadow_results(&ags, limit).map(|r| json(StatusCode::OK, &r))).await
        }
        (&Method::POST, ["v1", "admin", "tenants", ags, "adapters", "shadow", action @ ("start" | "stop")]) => {
            let (ags, action) = ((*ags).to_owned(), *action);
            let body = match read_json(req, body_timeout).await {
                Ok(b) => b,
                Err(resp) => return resp,
            };
            let by = operator_of(&caller, &body);
            let store = pipeline.store();
            let started = if action == "stop" {
                let store = store.clone();
                tokio::task::spawn_blocking(move || store.stop_shadow(&ags, &by)).await
            } else {
                let (name, version) = match requested_adapter(pipeline, &body, &ags, "*") {
                    Ok(a) => a,
                    Err((status, code, why)) => return error(status, code, why),
                };
                let store = store.clone();
                tokio::task::spawn_blocking(move || store.start_shadow(&ags, &name, &version, &by)).await
            };
            applied(pipeline, started.map(|r| r.map(|idx| serde_json::json!({"journal_index": idx})))).await
        }
        (&Method::POST, ["v1", "admin", "tenants", ags, "adapters", action @ ("activate" | "rollback")]) => {
            let (ags, action) = ((*ags).to_owned(), *action);
            let body = match read_json(req, body_timeout).await {
                Ok(b) => b,
                Err(resp) => return resp,
            };
            let by = operator_of(&caller, &body);
            let store = pipeline.store();
            let result = if action == "rollback" {
                let store = store.clone();
                tokio::task::spawn_blocking(move || store.rollback_adapter(&ags, &by)).await
            } else {
                let scope = body["type"].as_str().unwrap_or("*").to_owned();
                let (name, version) = match requested_adapter(pipeline, &body, &ags, &scope) {
                    Ok(a) => a,
                    Err((status, code, why)) => return error(status, code, why),
                };
                let store = store.clone();
                tokio::task::spawn_blocking(move || store.activate_adapter(&ags, &scope, &name, &version, &by)).await
            };
            applied(pipeline, result).await
        }
        (&Method::GET, ["v1", "admin", "deliveries" | "deadletters"]) => {
            let q = req.uri().query();
            let tenant = query_param(q, "tenant").map(str::to_owned);
            let state = if segments[2] == "deadletters" {
                Some(DeliveryState::Dead)
            } else {
                match parsed_state(q, DeliveryState::parse, "pending, delivered, dead or discarded") {
                    Ok(s) => s,
                    Err(why) => return error(StatusCode::BAD_REQUEST, "bad_query", why),
                }
            };
            let limit = limit_of(q);
            let store = pipeline.store();
            blocking(move || store.deliveries(tenant.as_deref(), state, limit).map(|d| json(StatusCode::OK, &d))).await
        }
        (&Method::GET, ["v1", "admin", "deliveries" | "deadletters", id]) => {
            let (store, id) = (pipeline.store(), (*id).to_owned());
            blocking(move || {
                Ok(match store.delivery(None, &id)? {
                    Some(d) => json(StatusCode::OK, &d),
                    None => error(StatusCode::NOT_FOUND, "not_found", format!("no delivery {id}")),
                })
            })
            .await
        }
        (&Method::POST, ["v1", "admin", "deadletters", id, action @ ("redeliver" | "discard")]) => {
            let (id, action) = ((*id).to_owned(), *action);
            let body = match read_json(req, body_timeout).await {
                Ok(b) => b,
                Err(resp) => return resp,
            };
            let operator = body.get("operator").and_then(|o| o.as_str()).filter(|o| !o.trim().is_empty());
            let by = decided_by(&caller, None) + &operator.map(|o| format!(" operator:{o}")).unwrap_or_default();
            let store = pipeline.store();
            let wake = pipeline.clone_delivery_wake();
            if action == "redeliver" {
                return blocking(move || {
                    let d = store.redeliver(None, &id, &by)?;
                    wake.notify_one();
                    Ok(json(StatusCode::OK, &d))
                })
                .await;
            }
            let Some(reason) = body.get("reason").and_then(|r| r.as_str()).filter(|r| !r.trim().is_empty()) else {
                return error(StatusCode::BAD_REQUEST, "bad_request", "say why: {\"reason\": \"...\"}");
            };
            let reason = reason.to_owned();
            blocking(move || store.discard(None, &id, &by, &reason).map(|d| json(StatusCode::OK, &d))).await
        }
        (
            _,
            ["v1", "messages", ..]
            | ["v1", "checkpoints", ..]
            | ["v1", "tenants", _, "citizens" | "reviews", ..]
            | ["v1", "admin", ..]
            | ["metrics"],
        ) => error(
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
            format!("{} is not allowed on {path}", req.method()),
        ),
        _ => error(StatusCode::NOT_FOUND, "not_found", format!("no route for {path}")),
    }
}

/// Who decided, as the journal records it: the credential, plus the clerk's name if given.
fn decided_by(caller: &Caller, clerk: Option<&str>) -> String {
    let credential = match caller {
        Caller::Tenant(t) => format!("tenant-token:{t}"),
        Caller::Admin => "admin-token".to_owned(),
        Caller::Open => "open-mode".to_owned(),
        // The configured name, not one the body claims.
        Caller::Clerk { ags, name, .. } => return format!("clerk-token:{ags} clerk:{name}"),
    };
    match clerk {
        Some(name) => format!("{credential} clerk:{name}"),
        None => credential,
    }
}

/// `POST /v1/tenants/{ags}/reviews/{id}` with `{"decision": "assign", "citizen": ID}` or
/// `{"decision": "new-citizen"}`, and optionally `"clerk": NAME`.
async fn decide_review(
    pipeline: &Pipeline,
    req: Request<Incoming>,
    caller: &Caller,
    ags: String,
    id: String,
    body_timeout: Duration,
) -> Response<Body> {
    const LIMIT: usize = 16 * 1024;
    let body = match tokio::time::timeout(body_timeout, Limited::new(req.into_body(), LIMIT).collect()).await {
        Ok(Ok(b)) => b.to_bytes(),
        Ok(Err(_)) => {
            return error(StatusCode::BAD_REQUEST, "bad_request", format!("send at most {LIMIT} bytes of JSON"));
        }
        Err(_) => return error(StatusCode::REQUEST_TIMEOUT, "body_timeout", "the body did not arrive in time"),
    };
    let mut value: serde_json::Value = match serde_json::from_slice(&body) {
        Ok(v) => v,
        Err(e) => return error(StatusCode::BAD_REQUEST, "bad_request", format!("body is not JSON: {e}")),
    };
    let clerk = value.as_object_mut().and_then(|o| o.remove("clerk"));
    let clerk = match clerk {
        None => None,
        Some(serde_json::Value::String(c)) if !c.trim().is_empty() && c.len() <= 200 => Some(c),
        Some(_) => return error(StatusCode::BAD_REQUEST, "bad_request", "`clerk` must be a non-empty name"),
    };
    let decision: efile_bridge_store::ReviewDecision = match serde_json::from_value(value) {
        Ok(d) => d,
        Err(e) => {
            return error(
                StatusCode::BAD_REQUEST,
                "bad_request",
                format!(
                    "expected {{\"decision\": \"assign\", \"citizen\": ID}} or {{\"decision\": \"new-citizen\"}}: {e}"
                ),
            );
        }
    };
    let by = decided_by(caller, clerk.as_deref());
    let store = pipeline.store();
    let clearance = caller.clearance();
    blocking(move || {
        if !review_visible(store.as_ref(), &ags, &id, clearance)? {
            return Ok(error(StatusCode::NOT_FOUND, "not_found", format!("tenant {ags} has no review item {id}")));
        }
        store.decide_review(Some(&ags), &id, decision, &by).map(|item| json(StatusCode::OK, &item))
    })
    .await
}

/// Whether review item `id` of `ags` exists and its waiting record is within `clearance`.
fn review_visible(
    store: &dyn efile_bridge_store::Storage,
    ags: &str,
    id: &str,
    clearance: efile_bridge_model::Confidentiality,
) -> Result<bool, StoreError> {
    Ok(store.review(Some(ags), id)?.is_some_and(|(_, record)| record.confidentiality <= clearance))
}

/// `?state=` parsed with `parse`; `allowed` lists the values for the error.
fn parsed_state<T>(q: Option<&str>, parse: fn(&str) -> Option<T>, allowed: &str) -> Result<Option<T>, String> {
    match query_param(q, "state") {
        None => Ok(None),
        Some(s) => parse(s).map(Some).ok_or_else(|| format!("state `{s}` is not {allowed}")),
    }
}

/// `?limit=`, default 100, at most 10 000.
fn limit_of(q: Option<&str>) -> u32 {
    query_param(q, "limit").and_then(|l| l.parse().ok()).unwrap_or(100).min(10_000)
}

/// The `{"adapter": "NAME@VERSION"}` of a switch or shadow request, checked against the config
/// and the registry for `scope`; otherwise the status, code and reason to answer.
fn requested_adapter(
    pipeline: &Pipeline,
    body: &serde_json::Value,
    ags: &str,
    scope: &str,
) -> Result<(String, String), (StatusCode, &'static str, String)> {
    let Some((name, version)) = body["adapter"].as_str().and_then(|a| a.split_once('@')) else {
        return Err((StatusCode::BAD_REQUEST, "bad_request", "send {\"adapter\": \"NAME@VERSION\"}".into()));
    };
    let store = pipeline.store();
    efile_bridge_pipeline::adapters::check_activation(&pipeline.config(), store.as_ref(), ags, scope, name, version)
        .map_err(|why| (StatusCode::UNPROCESSABLE_ENTITY, "rejected", why))?;
    Ok((name.to_owned(), version.to_owned()))
}

/// Answers an adapter registry change once the running settings include it.
async fn applied<T: Serialize>(
    pipeline: &Pipeline,
    result: Result<Result<T, StoreError>, tokio::task::JoinError>,
) -> Response<Body> {
    match result {
        Ok(Ok(value)) => match pipeline.refresh_adapters().await {
            Ok(()) => json(StatusCode::OK, &value),
            Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, "not_applied", e.to_string()),
        },
        Ok(Err(StoreError::NotFound(r))) => error(StatusCode::NOT_FOUND, "not_found", r),
        Ok(Err(StoreError::Conflict(r))) => error(StatusCode::CONFLICT, "conflict", r),
        Ok(Err(e)) => error(StatusCode::SERVICE_UNAVAILABLE, "storage_unavailable", e.to_string()),
        Err(_) => error(StatusCode::INTERNAL_SERVER_ERROR, "internal", "request handler failed"),
    }
}

/// The journal's operator identity: the credential, and the `operator` the body names.
fn operator_of(caller: &Caller, body: &serde_json::Value) -> String {
    let named = body.get("operator").and_then(|o| o.as_str()).filter(|o| !o.trim().is_empty());
    decided_by(caller, None) + &named.map(|o| format!(" operator:{o}")).unwrap_or_default()
}

/// `POST /v1/admin/adapters`: the package file as the body, its detached signature (the
/// `.sig` file's JSON) in the `Efile-Signature` header.
async fn install_adapter(
    pipeline: &Pipeline,
    req: Request<Incoming>,
    caller: &Caller,
    body_timeout: Duration,
) -> Response<Body> {
    const LIMIT: usize = 64 * 1024 * 1024;
    let signature = match req.headers().get("efile-signature").map(|v| v.to_str()) {
        None => None,
        Some(Ok(text)) => match serde_json::from_str::<efile_bridge_package::Signature>(text) {
            Ok(sig) => Some(sig),
            Err(e) => return error(StatusCode::BAD_REQUEST, "bad_request", format!("Efile-Signature: {e}")),
        },
        Some(Err(_)) => return error(StatusCode::BAD_REQUEST, "bad_request", "Efile-Signature is not ASCII"),
    };
    let operator = req.headers().get("efile-operator").and_then(|v| v.to_str().ok()).map(str::to_owned);
    let body = match tokio::time::timeout(body_timeout, Limited::new(req.into_body(), LIMIT).collect()).await {
        Ok(Ok(b)) => b.to_bytes(),
        Ok(Err(_)) => {
            return error(StatusCode::PAYLOAD_TOO_LARGE, "too_large", format!("packages up to {LIMIT} bytes"));
        }
        Err(_) => return error(StatusCode::REQUEST_TIMEOUT, "body_timeout", "the body did not arrive in time"),
    };
    let by = operator_of(caller, &serde_json::json!({"operator": operator}));
    let (config, runtime, store) = (pipeline.config(), pipeline.runtime(), pipeline.store());
    let installed = tokio::task::spawn_blocking(move || {
        efile_bridge_pipeline::adapters::install(&config, &runtime, store.as_ref(), &body, signature.as_ref(), &by)
    })
    .await;
    match installed {
        Ok(Ok(a)) => json(StatusCode::CREATED, &a),
        Ok(Err(efile_bridge_pipeline::adapters::InstallError::Store(StoreError::Conflict(r)))) => {
            error(StatusCode::CONFLICT, "conflict", r)
        }
        Ok(Err(e @ efile_bridge_pipeline::adapters::InstallError::Io { .. })) => {
            tracing::error!(error = %e, "cannot install a package");
            error(StatusCode::INTERNAL_SERVER_ERROR, "internal", "cannot write the package")
        }
        Ok(Err(e)) => error(StatusCode::UNPROCESSABLE_ENTITY, "refused", e.to_string()),
        Err(_) => error(StatusCode::INTERNAL_SERVER_ERROR, "internal", "request handler failed"),
    }
}

/// A small JSON request body (an empty body is `{}`).
async fn read_json(req: Request<Incoming>, body_timeout: Duration) -> Result<serde_json::Value, Response<Body>> {
    const LIMIT: usize = 16 * 1024;
    let body = match tokio::time::timeout(body_timeout, Limited::new(req.into_body(), LIMIT).collect()).await {
        Ok(Ok(b)) => b.to_bytes(),
        Ok(Err(_)) => {
            return Err(error(StatusCode::BAD_REQUEST, "bad_request", format!("send at most {LIMIT} bytes of JSON")));
        }
        Err(_) => return Err(error(StatusCode::REQUEST_TIMEOUT, "body_timeout", "the body did not arrive in time")),
    };
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(serde_json::json!({}));
    }
    serde_json::from_slice(&body)
        .map_err(|e| error(StatusCode::BAD_REQUEST, "bad_request", format!("body is not JSON: {e}")))
}

fn own_tenant(caller: &Caller) -> Option<String> {
    match caller {
        Caller::Tenant(t) | Caller::Clerk { ags: t, .. } => Some(t.clone()),
        Caller::Admin | Caller::Open => None,
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

/// `%XX` and `+` decoding for query values.
fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                match u8::from_str_radix(std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or("zz"), 16) {
                    Ok(b) => {
                        out.push(b);
                        i += 2;
                    }
                    Err(_) => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

async fn blocking(f: impl FnOnce() -> Result<Response<Body>, StoreError> + Send + 'static) -> Response<Body> {
    match tokio::task::spawn_blocking(f).await {
        Ok(Ok(resp)) => resp,
        Ok(Err(StoreError::NotFound(reason))) => error(StatusCode::NOT_FOUND, "not_found", reason),
        Ok(Err(StoreError::Conflict(reason))) => error(StatusCode::CONFLICT, "conflict", reason),
        Ok(Err(StoreError::Rejected(reason))) => error(StatusCode::UNPROCESSABLE_ENTITY, "rejected", reason),
        Ok(Err(e)) => {
            tracing::error!(error = %e, "storage read failed");
            error(StatusCode::SERVICE_UNAVAILABLE, "storage_unavailable", "storage read failed")
        }
        Err(_) => error(StatusCode::INTERNAL_SERVER_ERROR, "internal", "request handler failed"),
    }
}

fn is_xml(content_type: Option<&HeaderValue>) -> bool {
    let Some(ct) = content_type.and_then(|v| v.to_str().ok()) else { return false };
    let mime = ct.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
    mime == "application/xml" || mime == "text/xml" || mime.ends_with("+xml")
}

/// Reads and discards a body we refuse before reading it, up to `max` bytes, so the client
/// can finish sending and read our answer (closing on unread data resets the connection).
async fn drain(body: Incoming, max: usize, timeout: Duration) {
    let _ = tokio::time::timeout(timeout, Limited::new(body, max).collect()).await;
}

async fn post_message(
    pipeline: &Pipeline,
    req: Request<Incoming>,
    caller: &Caller,
    body_timeout: Duration,
) -> Response<Body> {
    let limit = pipeline.max_body_bytes();
    let declared = req
        .headers()
        .get(hyper::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if !is_xml(req.headers().get(CONTENT_TYPE)) {
        drain(req.into_body(), limit, body_timeout).await;
        return error(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "send the message as application/xml",
        );
    }
    if let Some(n) = declared.filter(|n| *n > limit) {
        // A little over the limit: let it arrive and answer; far over: answer and close.
        if n <= limit.saturating_mul(2) {
            drain(req.into_body(), n, body_timeout).await;
        }
        return error(
            StatusCode::PAYLOAD_TOO_LARGE,
            "too_large",
            format!("message is larger than the limit of {limit} bytes"),
        );
    }
    let body = match tokio::time::timeout(body_timeout, Limited::new(req.into_body(), limit).collect()).await {
        Err(_) => {
            return error(
                StatusCode::REQUEST_TIMEOUT,
                "body_timeout",
                format!("the body did not arrive within {} s", body_timeout.as_secs()),
            );
        }
        Ok(Ok(b)) => b.to_bytes(),
        Ok(Err(e)) if e.downcast_ref::<http_body_util::LengthLimitError>().is_some() => {
            return error(
                StatusCode::PAYLOAD_TOO_LARGE,
                "too_large",
                format!("message is larger than the limit of {limit} bytes"),
            );
        }
        Ok(Err(e)) => {
            return error(StatusCode::BAD_REQUEST, "body_unreadable", format!("could not read the body: {e}"));
        }
    };
    match pipeline.submit(body.to_vec(), caller).await {
        Ok(Submitted::Accepted(receipt)) => json(StatusCode::ACCEPTED, &receipt),
        Ok(Submitted::Duplicate(receipt)) => json(StatusCode::OK, &receipt),
        Err(e) => submit_error(&e),
    }
}

/// Maps a refusal to its status and short body. Also used by the drop folder's error files.
pub fn submit_error(e: &SubmitError) -> Response<Body> {
    let code = efile_bridge_pipeline::error_code(e);
    match e {
        SubmitError::Intake(i) => {
            let status = match i.class() {
                ErrorClass::Malformed => StatusCode::BAD_REQUEST,
                ErrorClass::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
                ErrorClass::Unacceptable => StatusCode::UNPROCESSABLE_ENTITY,
            };
            tracing::info!(error = code, "message refused at intake");
            error(status, code, i.to_string())
        }
        SubmitError::UnknownTenant { .. } | SubmitError::NoAdapter { .. } => {
            error(StatusCode::UNPROCESSABLE_ENTITY, code, e.to_string())
        }
        SubmitError::Forbidden(_) => error(StatusCode::FORBIDDEN, code, e.to_string()),
        SubmitError::RateLimited { .. } => {
            let mut resp = error(StatusCode::TOO_MANY_REQUESTS, code, e.to_string());
            resp.headers_mut().insert(RETRY_AFTER, HeaderValue::from_static("1"));
            resp
        }
        SubmitError::Storage(s) => {
            tracing::error!(error = %s, "message could not be stored");
            error(StatusCode::SERVICE_UNAVAILABLE, code, "the message could not be stored; send it again")
        }
        _ => error(StatusCode::SERVICE_UNAVAILABLE, code, e.to_string()),
    }
}

async fn get_message(pipeline: &Pipeline, uuid: &str, tenant: Option<String>, wait: Duration) -> Response<Body> {
    let uuid = uuid.to_ascii_lowercase();
    let deadline = tokio::time::Instant::now() + wait;
    let mut processed = pipeline.processed();
    loop {
        let store = pipeline.store();
        let (id, t) = (uuid.clone(), tenant.clone());
        let status = tokio::task::spawn_blocking(move || store.message_status(t.as_deref(), &id)).await;
        let status = match status {
            Ok(Ok(s)) => s,
            Ok(Err(e)) => {
                tracing::error!(error = %e, "storage read failed");
                return error(StatusCode::SERVICE_UNAVAILABLE, "storage_unavailable", "storage read failed");
            }
            Err(_) => return error(StatusCode::INTERNAL_SERVER_ERROR, "internal", "request handler failed"),
        };
        match status {
            None => return error(StatusCode::NOT_FOUND, "not_found", format!("no message {uuid}")),
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

#[cfg(test)]
mod tests {
    #[test]
    fn query_values_are_decoded() {
        assert_eq!(super::percent_decode("K%C3%B6hler+Tobias"), "Köhler Tobias");
        assert_eq!(super::percent_decode("100%"), "100%");
        assert_eq!(super::percent_decode("%zz"), "%zz");
    }
}
