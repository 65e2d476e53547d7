//! Accepting clients: the listener loop, the max-connections check, the TLS handshake
//! (before or after INFO), and the INFO a new client gets first.

use super::{conn, info, Server};
use crate::client::Client;
use crate::proto;
use crate::tls;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::runtime::Handle;

use crate::path::Handshake;

const ACCEPT_MIN_SLEEP: Duration = Duration::from_millis(10);
const ACCEPT_MAX_SLEEP: Duration = Duration::from_secs(1);

impl Server {
    /// Accepts until told to stop; the listener closes when this returns.
    ///
    /// Accepting runs on a thread of its own (a single-threaded runtime), so a new client is
    /// accepted, counted as a pending handshake — which shortens the busy readers' turns — and
    /// handed to the main runtime even while every worker is busy moving messages.
    pub(super) async fn accept_loop(self: Arc<Self>, listener: TcpListener) {
        let main = tokio::runtime::Handle::current();
        let (done, finished) = tokio::sync::oneshot::channel::<()>();
        let server = self.clone();
        let listener = match listener.into_std() {
            Ok(l) => l,
            Err(e) => {
                tracing::error!("cannot hand the listener to the accept thread: {e}");
                return;
            }
        };
        let spawned = std::thread::Builder::new()
            .name("natrium-accept".into())
            .spawn(move || {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build();
                match runtime {
                    Ok(rt) => rt.block_on(server.accept_on(listener, main)),
                    Err(e) => tracing::error!("cannot start the accept thread's runtime: {e}"),
                }
                let _ = done.send(());
            });
        if let Err(e) = spawned {
            tracing::error!("cannot start the accept thread: {e}");
            return;
        }
        let _ = finished.await;
    }

    /// The accept thread's loop: each accepted socket is served on the `main` runtime.
    async fn accept_on(self: Arc<Self>, listener: std::net::TcpListener, main: Handle) {
        let listener = match TcpListener::from_std(listener) {
            Ok(l) => l,
            Err(e) => {
                tracing::error!("cannot listen on the accept thread: {e}");
                return;
            }
        };
        let mut stop = self.stop_accepting.subscribe();
        // After an accept error (usually out of file descriptors) wait, doubling from 10 ms
        // up to 1 s while errors continue, as nats-server does.
        let mut backoff = ACCEPT_MIN_SLEEP;
        loop {
            let accepted = tokio::select! {
                r = listener.accept() => r,
                _ = stop.wait_for(|s| *s) => return,
            };
            match accepted {
                Ok((sock, addr)) => {
                    backoff = ACCEPT_MIN_SLEEP;
                    let _ = sock.set_nodelay(true);
                    let handshake = Handshake::start(&self.core);
                    let cid = self.next_client_id();
                    match sock.into_std() {
                        Ok(sock) => {
                            main.spawn(self.clone().serve_accepted(sock, addr, cid, handshake));
                        }
                        Err(e) => tracing::error!("{addr} - cid:{cid} - cannot hand over: {e}"),
                    }
                }
                Err(e) => {
                    tracing::error!("Temporary client accept error ({e}), sleeping {backoff:?}");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(ACCEPT_MAX_SLEEP);
                }
            }
        }
    }

    /// Registers an accepted socket with this (the main) runtime and serves it.
    async fn serve_accepted(
        self: Arc<Self>,
        sock: std::net::TcpStream,
        addr: SocketAddr,
        cid: u64,
        handshake: Handshake,
    ) {
        match TcpStream::from_std(sock) {
            Ok(sock) => self.serve_conn(sock, addr, cid, handshake).await,
            Err(e) => tracing::error!("{addr} - cid:{cid} - cannot register the socket: {e}"),
        }
    }

    async fn serve_conn(
        self: Arc<Self>,
        mut sock: TcpStream,
        addr: SocketAddr,
        cid: u64,
        handshake: Handshake,
    ) {
        let opts = self.options();
        let client = Arc::new(Client::new(cid, addr));
        tracing::debug!("{addr} - cid:{cid} - Client connection created");
        self.stats.total_connections.fetch_add(1, Ordering::Relaxed);
        let nonce = self
            .user_directory()
            .needs_nonce()
            .then(crate::auth::nkeys::generate_nonce);
        let info = info::client_info(&self, &client, nonce.as_deref());
        if self.num_clients() >= opts.limits.max_connections as usize {
            let mut b = bytes::BytesMut::new();
            proto::write_info(&mut b, &info);
            proto::write_err(&mut b, proto::ServerError::MaxConnectionsExceeded.text());
            let _ = tokio::time::timeout(Duration::from_secs(2), sock.write_all(&b)).await;
            tracing::warn!("{addr} - cid:{cid} - Maximum connections exceeded, connection closed");
            return;
        }
        self.register(client.clone());
        let acceptor = self.tls.read().clone();
        let Some(acceptor) = acceptor else {
            return self
                .serve_plain(sock, client, opts, nonce, &info, handshake)
                .await;
        };
        let tls_opts = opts.tls.clone().unwrap_or_default();
        let tls_first = tls_opts.handshake_first
            && match tls_opts.handshake_first_fallback {
                None => true,
                // TLS first if the client starts it within the window; else INFO first.
                Some(window) => starts_tls(&sock, window).await,
            };
        if !tls_first {
            let mut b = bytes::BytesMut::new();
            proto::write_info(&mut b, &info);
            if sock.write_all(&b).await.is_err() {
                self.core.unregister(&client);
                return;
            }
            // `allow_non_tls`: a client that answers the INFO without a TLS handshake
            // stays plain (its INFO said `tls_available`, not `tls_required`).
            if opts.allow_non_tls && !starts_tls(&sock, opts.limits.auth_timeout).await {
                let (rd, wr) = sock.into_split();
                return conn::run(self.core.clone(), client, opts, nonce, handshake, rd, wr).await;
            }
        }
        let stream = match tokio::time::timeout(tls_opts.timeout, acceptor.accept(sock)).await {
            Ok(Ok(s)) => s,
            Ok(Err(e)) => {
                tracing::error!("{addr} - cid:{cid} - TLS handshake error: {e}");
                self.core.unregister(&client);
                return;
            }
            Err(_) => {
                tracing::error!("{addr} - cid:{cid} - TLS handshake timeout");
                self.core.unregister(&client);
                return;
            }
        };
        {
            let (_, session) = stream.get_ref();
            let version = session.protocol_version().map(|v| format!("{v:?}"));
            let identity = session
                .peer_certificates()
                .and_then(|c| c.first())
                .and_then(|c| tls::CertIdentity::from_der(c))
                .map(Arc::new);
            let mut meta = client.meta.lock();
            meta.tls_version = version;
            meta.tls_identity = identity;
        }
        if tls_first {
            let mut b = bytes::BytesMut::new();
            proto::write_info(&mut b, &info);
            client.queue_raw(&b);
        }
        let (rd, wr) = tokio::io::split(stream);
        conn::run(self.core.clone(), client, opts, nonce, handshake, rd, wr).await;
    }

    /// A connection without TLS: INFO, then the protocol.
    async fn serve_plain(
        self: Arc<Self>,
        sock: TcpStream,
        client: Arc<Client>,
        opts: Arc<crate::options::Options>,
        nonce: Option<String>,
        info: &[u8],
        handshake: Handshake,
    ) {
        let mut b = bytes::BytesMut::new();
        proto::write_info(&mut b, info);
        client.queue_raw(&b);
        let (rd, wr) = sock.into_split();
        conn::run(self.core.clone(), client, opts, nonce, handshake, rd, wr).await;
    }
}

/// Whether the client's first bytes, if any arrive within `window`, open a TLS handshake (a
/// TLS record of type handshake, 0x16). Nothing is consumed.
async fn starts_tls(sock: &TcpStream, window: Duration) -> bool {
    let mut first = [0u8; 1];
    matches!(
        tokio::time::timeout(window, sock.peek(&mut first)).await,
        Ok(Ok(1)) if first[0] == 0x16
    )
}
