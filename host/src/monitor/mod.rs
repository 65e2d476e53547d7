//! HTTP monitoring: `/varz`, `/connz`, `/subsz`, `/healthz` shaped like nats-server's JSON (so
//! dashboards and the Prometheus NATS exporter read them), and `/metrics` in Prometheus text.
//!
//! The HTTP side is deliberately tiny: GET only, one request per connection.

mod endpoints;
mod http;

use crate::server::Server;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

pub use http::Request;

/// Requests served per endpoint, reported as `http_req_stats` in /varz.
pub(crate) type ReqStats = Arc<parking_lot::Mutex<std::collections::BTreeMap<String, u64>>>;

/// Serves monitoring requests until shutdown.
pub async fn serve(server: Arc<Server>, listener: TcpListener, mut stop: watch::Receiver<bool>) {
    let stats = ReqStats::default();
    loop {
        let accepted = tokio::select! {
            r = listener.accept() => r,
            _ = stop.wait_for(|s| *s) => return,
        };
        match accepted {
            Ok((sock, _)) => {
                tokio::spawn(handle(server.clone(), stats.clone(), sock));
            }
            Err(e) => {
                tracing::error!("Error accepting monitoring connection: {e}");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}

async fn handle(server: Arc<Server>, stats: ReqStats, mut sock: TcpStream) {
    let mut buf = Vec::with_capacity(1024);
    let head = tokio::time::timeout(Duration::from_secs(5), async {
        let mut chunk = [0u8; 1024];
        loop {
            let n = sock.read(&mut chunk).await.ok()?;
            if n == 0 {
                return None;
            }
            buf.extend_from_slice(&chunk[..n]);
            if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                return Some(end);
            }
            if buf.len() > 16 * 1024 {
                return None;
            }
        }
    })
    .await;
    let response = match head {
        Ok(Some(end)) => match http::Request::parse(&buf[..end]) {
            Some(req) => endpoints::route(&server, &stats, &req),
            None => http::Response::text(400, "Bad Request\n"),
        },
        _ => return,
    };
    let _ = tokio::time::timeout(Duration::from_secs(10), sock.write_all(&response.encode())).await;
    let _ = sock.shutdown().await;
}
