//! One client connection's tasks: the reader moves bytes from the socket into its
//! [`Session`], the writer moves what was queued for the client to the socket. Nothing here
//! knows the protocol beyond the timers it drives (ping, auth timeout, expiry).
//!
//! ```text
//!  socket ──read──▶ reader task ──▶ Session::process ──▶ receivers' Outbound (mutex)
//!                                                            │ notify once per batch
//!  socket ◀─write── writer task ◀──────── swap buffer ◀──────┘
//! ```

use crate::client::{Client, CloseReason};
use crate::options::Options;
use crate::path::{Core, Flow, Handshake, Session};
use bytes::{Buf, BytesMut};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

const MIN_READ: usize = 512;
const MAX_READ: usize = 64 * 1024;
/// Bytes of input a reader processes at a time (see `read_loop`)…
const TURN: usize = 32 * 1024;
/// …and how long it keeps its worker before it lets other tasks run while some connection
/// waits for its handshake…
const TURN_TIME: Duration = Duration::from_micros(125);
/// …and otherwise.
const TURN_TIME_ALONE: Duration = Duration::from_millis(1);

/// Drives a connection whose transport is ready (plain, or TLS after its handshake).
pub(crate) async fn run<R, W>(
    core: Arc<Core>,
    client: Arc<Client>,
    opts: Arc<Options>,
    nonce: Option<String>,
    handshake: Handshake,
    rd: R,
    wr: W,
) where
    R: AsyncRead + Unpin + Send + 'static,
    W: AsyncWrite + Unpin + Send + 'static,
{
    let writer = tokio::spawn(write_loop(
        core.clone(),
        client.clone(),
        wr,
        opts.limits.write_deadline,
    ));
    let mut session = Session::new(core, client, &opts, nonce, handshake);
    let reason = read_loop(&mut session, rd, &opts).await;
    session.cleanup(reason);
    let _ = writer.await;
}

/// Takes whatever is queued and writes it, until the client is closed and drained.
async fn write_loop<W: AsyncWrite + Unpin>(
    core: Arc<Core>,
    client: Arc<Client>,
    mut wr: W,
    deadline: Duration,
) {
    let mut spare = BytesMut::new();
    loop {
        let (mut chunk, closed) = {
            let mut out = client.out.lock();
            out.flush_pending = false;
            (std::mem::replace(&mut out.buf, spare), out.closed)
        };
        if chunk.is_empty() {
            spare = chunk;
            if closed.is_some() {
                break;
            }
            client.wake_writer.notified().await;
            continue;
        }
        match tokio::time::timeout(deadline, wr.write_all(&chunk)).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                tracing::debug!("{} - write error: {e}", client.label());
                client.mark_closed(CloseReason::WriteError);
                break;
            }
            Err(_) => {
                core.slow_consumer(&client, CloseReason::SlowConsumerWriteDeadline);
                break;
            }
        }
        chunk.clear();
        // Don't keep a burst's worth of memory around for an idle client.
        if chunk.capacity() > 4 * MAX_READ {
            chunk = BytesMut::new();
        }
        spare = chunk;
    }
    let _ = tokio::time::timeout(Duration::from_secs(1), wr.shutdown()).await;
}

/// Reads until the connection ends; returns why.
async fn read_loop<R: AsyncRead + Unpin>(
    session: &mut Session,
    mut rd: R,
    opts: &Options,
) -> CloseReason {
    let client = session.client().clone();
    let mut buf = BytesMut::new();
    let mut read_size = MIN_READ;
    let mut short_reads = 0u32;
    let mut ping = tokio::time::interval_at(
        tokio::time::Instant::now() + opts.limits.ping_interval,
        opts.limits.ping_interval,
    );
    let auth_deadline = tokio::time::sleep(opts.limits.auth_timeout);
    tokio::pin!(auth_deadline);
    // Input already read that may hold complete operations not yet processed (a turn
    // processes at most `TURN` bytes): process it before reading more.
    let mut pending = false;
    let mut turn_started = std::time::Instant::now();
    loop {
        if !pending {
            if buf.capacity() - buf.len() < read_size {
                buf.reserve(read_size);
            }
            let timer_flow = tokio::select! {
                biased;
                _ = client.wake_reader.notified() => {
                    return client.close_reason().unwrap_or(CloseReason::ServerShutdown);
                }
                r = rd.read_buf(&mut buf) => match r {
                    Ok(0) => return CloseReason::ClientClosed,
                    Ok(n) => {
                        if n >= read_size && read_size < MAX_READ {
                            read_size *= 2;
                            short_reads = 0;
                        } else if n < read_size / 2 {
                            short_reads += 1;
                            if short_reads > 2 && read_size > MIN_READ {
                                read_size /= 2;
                                short_reads = 0;
                            }
                        }
                        None
                    }
                    Err(e) => {
                        tracing::debug!("{} - read error: {e}", client.label());
                        return CloseReason::ReadError;
                    }
                },
                _ = ping.tick() => Some(session.on_ping_timer(opts.limits.max_pings_out)),
                _ = expiry(session.expires) => Some(session.on_expired()),
                _ = &mut auth_deadline, if session.auth_required && !session.connected => {
                    Some(session.on_auth_timeout())
                }
            };
            match timer_flow {
                Some(Flow::Close(reason)) => return reason,
                Some(_) => continue,
                None => {}
            }
            client
                .last_activity
                .store(crate::util::unix_nanos(), Ordering::Relaxed);
        } else if let Some(reason) = client.close_reason() {
            // Closed (slow consumer, kicked, shut down) with input left: drop it.
            return reason;
        }
        session.begin_batch();
        loop {
            let (consumed, more, flow) = process_turn(session, &buf);
            buf.advance(consumed);
            pending = more;
            session.end_batch();
            match wait_and_decide(session, flow).await {
                // The batch stopped at a CONNECT that took time; the rest of it now.
                Ok(true) => continue,
                Ok(false) => break,
                Err(reason) => return reason,
            }
        }
        if buf.is_empty() && buf.capacity() > 4 * MAX_READ {
            buf = BytesMut::new();
        }
        // Parsing and routing never yield, and a busy socket always has more to read. Without
        // turns a publisher keeps its worker for tokio's whole budget (up to 128 reads,
        // megabytes of messages) while new connections wait for their INFO: after a turn's
        // work, go to the back of the queue. Turns are short while a connection is waiting
        // for its handshake (accepted on a thread of its own, see `accept`), longer otherwise:
        // each yield costs a busy publisher a little throughput.
        let turn = if session.core().handshakes_pending() {
            TURN_TIME
        } else {
            TURN_TIME_ALONE
        };
        if turn_started.elapsed() >= turn {
            tokio::task::yield_now().await;
            turn_started = std::time::Instant::now();
        } else if !pending {
            tokio::task::consume_budget().await;
        }
    }
}

/// Processes one turn of `buf`: the complete operations in its first `TURN` bytes (or the
/// first operation, when that alone is longer). Returns the bytes consumed, whether complete
/// operations may remain, and the flow.
fn process_turn(session: &mut Session, buf: &[u8]) -> (usize, bool, Flow) {
    if buf.len() > TURN {
        let (consumed, flow) = session.process(&buf[..TURN]);
        if consumed > 0 || !matches!(flow, Flow::Continue) {
            return (consumed, true, flow);
        }
    }
    let (consumed, flow) = session.process(buf);
    (consumed, false, flow)
}

/// Carries out what a batch stopped for: an authorizer plugin's or the auth callout's
/// decision, a password check off the workers, a back-off delay (`failure_backoff`, slept by
/// this connection's task alone; a shutdown or a kick ends it).
/// Returns whether the batch stopped early, or why the connection ends.
async fn wait_and_decide(session: &mut Session, mut flow: Flow) -> Result<bool, CloseReason> {
    let mut stopped = false;
    loop {
        flow = match flow {
            Flow::Continue => return Ok(stopped),
            Flow::Close(reason) => return Err(reason),
            Flow::Authorize(pending) => {
                let (co, request) = *pending;
                session.authorize(co, request).await
            }
            Flow::Backoff(pending) => {
                let (co, at) = *pending;
                let client = session.client().clone();
                tokio::select! {
                    biased;
                    _ = client.wake_reader.notified() => {
                        return Err(client.close_reason().unwrap_or(CloseReason::ServerShutdown));
                    }
                    _ = tokio::time::sleep_until(at) => {}
                }
                session.check_credentials(co)
            }
            Flow::Verify(co) => session.check_credentials_off_worker(*co).await,
            Flow::Callout(pending) => {
                let (co, policy) = *pending;
                session.callout(co, policy).await
            }
        };
        session.end_batch();
        stopped = true;
    }
}

/// Resolves at the authorization's expiry; never when there is none.
async fn expiry(at: Option<tokio::time::Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}
