//! A running host for one test.

use std::sync::Arc;
use std::time::Duration;

use efile_bridge_pipeline::{Config, Pipeline};
use tokio::sync::oneshot;

pub struct Host {
    pub dir: tempfile::TempDir,
    pub pipeline: Arc<Pipeline>,
    pub base: String,
    pub client: reqwest::Client,
    /// Sent as `Authorization: Bearer` by [`Host::post`] and [`Host::get`].
    pub token: Option<String>,
    stop: Option<oneshot::Sender<()>>,
    server: Option<tokio::task::JoinHandle<()>>,
}

impl Host {
    /// The default test config (München and Frankfurt, XMeld adapter) in a fresh folder.
    pub async fn start() -> Self {
        Self::start_with(|_| {}).await
    }

    /// Like [`Host::start`], with changes to the config.
    pub async fn start_with(change: impl FnOnce(&mut Config)) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut config = efile_bridge_tests::config(dir.path());
        change(&mut config);
        Self::start_in(dir, config).await
    }

    pub async fn start_in(dir: tempfile::TempDir, config: Config) -> Self {
        let pipeline = Arc::new(Pipeline::start(config).expect("pipeline starts"));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let http = pipeline.config().http;
        let (stop, stopped) = oneshot::channel::<()>();
        let options = efile_bridge_server::http::Options::from_config(&pipeline.config().http).expect("http options");
        let server = tokio::spawn(efile_bridge_server::http::serve(pipeline.clone(), listener, options, async move {
            let _ = stopped.await;
        }));
        let mut client = reqwest::Client::builder().timeout(Duration::from_secs(30));
        let base = match &http.tls_cert {
            None => format!("http://{addr}"),
            Some(cert) => {
                // The test certificate is self-signed for `localhost`: trust it, resolve it here.
                let pem = std::fs::read(cert).expect("cert");
                client = client
                    .add_root_certificate(reqwest::Certificate::from_pem(&pem).expect("pem"))
                    .resolve("localhost", addr);
                format!("https://localhost:{}", addr.port())
            }
        };
        let client = client.build().expect("client");
        Self { dir, pipeline, base, client, token: None, stop: Some(stop), server: Some(server) }
    }

    pub async fn post(&self, body: impl Into<reqwest::Body>) -> (u16, serde_json::Value) {
        self.post_as(body, "application/xml").await
    }

    pub async fn post_as(&self, body: impl Into<reqwest::Body>, content_type: &str) -> (u16, serde_json::Value) {
        let mut req = self.client.post(format!("{}/v1/messages", self.base));
        if let Some(t) = &self.token {
            req = req.bearer_auth(t);
        }
        let resp = req.header("content-type", content_type).body(body).send().await.expect("post");
        let status = resp.status().as_u16();
        (status, resp.json().await.expect("json body"))
    }

    pub async fn get(&self, path: &str) -> (u16, serde_json::Value) {
        let mut req = self.client.get(format!("{}{path}", self.base));
        if let Some(t) = &self.token {
            req = req.bearer_auth(t);
        }
        let resp = req.send().await.expect("get");
        let status = resp.status().as_u16();
        (status, resp.json().await.expect("json body"))
    }

    /// Long-polls a message until it is processed or failed.
    pub async fn wait_processed(&self, uuid: &str) -> serde_json::Value {
        for _ in 0..10 {
            let (status, body) = self.get(&format!("/v1/messages/{uuid}?wait=10")).await;
            assert_eq!(status, 200, "{body}");
            if body["state"] != "accepted" {
                return body;
            }
        }
        panic!("message {uuid} was not processed");
    }

    /// The tenant's citizens.
    pub async fn citizens(&self, ags: &str) -> Vec<serde_json::Value> {
        let (status, body) = self.get(&format!("/v1/tenants/{ags}/citizens")).await;
        assert_eq!(status, 200, "{body}");
        body.as_array().expect("array").clone()
    }

    /// Stops the server and returns the data folder (the pipeline is dropped).
    pub async fn stop(mut self) -> tempfile::TempDir {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(h) = self.server.take() {
            let _ = h.await;
        }
        self.dir
    }
}

/// The message with another `nachrichtenUUID` (and so a new message to the journal).
pub fn with_uuid(xml: &[u8], uuid: &str) -> Vec<u8> {
    let text = String::from_utf8(xml.to_vec()).expect("utf-8");
    let start = text.find("<nachrichtenUUID>").expect("uuid element") + "<nachrichtenUUID>".len();
    let end = start + text[start..].find('<').expect("end");
    format!("{}{uuid}{}", &text[..start], &text[end..]).into_bytes()
}

/// The message with every `ags:` kennung replaced.
pub fn with_parties(xml: &[u8], reader: &str, author: &str) -> Vec<u8> {
    String::from_utf8(xml.to_vec())
        .expect("utf-8")
        // Through a placeholder, so that swapping the two parties works.
        .replace("ags:09162000", "ags:\u{0}reader")
        .replace("ags:06412000", &format!("ags:{author}"))
        .replace("ags:\u{0}reader", &format!("ags:{reader}"))
        .into_bytes()
}

/// The `nachrichtenUUID` of a message.
pub fn uuid_of(xml: &[u8]) -> String {
    efile_bridge_intake::check(xml, &efile_bridge_intake::Limits::default()).expect("valid").message_uuid
}

/// Runs the full verification of the host's store.
pub async fn verify(host: &Host) -> Result<efile_bridge_store::VerifyReport, efile_bridge_store::StoreError> {
    let store = host.pipeline.store();
    tokio::task::spawn_blocking(move || store.verify(&|_| {})).await.expect("join")
}
