//! What a guest can reach: the per-store state, the memory limiter, the `host` imports, and a
//! locked-down WASI.
//!
//! Guests built for `wasm32-wasip2` import some `wasi:*` interfaces even when they never use
//! them (Rust's std imports stdio, clocks, random, filesystem…), so the linker offers
//! `wasmtime-wasi`, configured with no preopened directories, no environment, no arguments,
//! no sockets (TCP, UDP and name lookups refused, every address check denied), an empty stdin,
//! and stdout/stderr captured into the broker log with the plugin's name.
//!
//! One thing `wasmtime-wasi`'s synchronous bindings cannot do: their blocking functions
//! (`blocking-write-and-flush`, `pollable.block`, …) call tokio's `Handle::block_on`, which
//! panics on a tokio worker thread — exactly where the broker calls transformers. So
//! `wasi:io/streams` and `wasi:io/poll` are shadowed by [`SafeIo`], which polls each operation
//! once without blocking: writes to our log sinks complete at once; anything that would
//! really wait (a sleep, a read from a pipe) traps instead. Plugins may not block.

use std::future::Future;
use std::pin::{pin, Pin};
use std::sync::Arc;
use std::task::{Context, Poll, Waker};

use bytes::Bytes;
use wasmtime::component::{HasData, Linker, Resource, ResourceTable};
use wasmtime::{Engine, ResourceLimiter};
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::p2::bindings::sync::io::{poll as sync_poll, streams as sync_streams};
use wasmtime_wasi::p2::{OutputStream, StreamError, StreamResult};
use wasmtime_wasi::{WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView};
use wasmtime_wasi_io::bindings::wasi::io::poll::{
    Host as AsyncPollHost, HostPollable as AsyncHostPollable,
};
use wasmtime_wasi_io::bindings::wasi::io::streams::{
    HostInputStream as AsyncHostInputStream, HostOutputStream as AsyncHostOutputStream,
};
use wasmtime_wasi_io::poll::DynPollable;
use wasmtime_wasi_io::streams::{DynInputStream, DynOutputStream};

use super::bindings::{wit_host, wit_kv, wit_pending};
use super::kv::KvGrant;
use super::types::{HeadersRef, MessageRef};
use std::ops::Range;

/// Longest log line (from `host.log` or stdio) kept; the rest is cut.
const MAX_LOG_LINE: usize = 4096;
/// Table elements a guest may grow its tables to.
const MAX_TABLE_ELEMENTS: usize = 100_000;

/// What every plugin instance's store knows about its plugin.
#[derive(Debug)]
pub(crate) struct PluginMeta {
    pub name: Arc<str>,
    pub config_json: String,
    /// Lower-case hex SHA-256 of the component (which build this is).
    pub sha256: String,
    /// The binding's `kv` grant, if any.
    pub kv: Option<KvGrant>,
}

/// The data of one `Store`: one per pooled instance.
pub(crate) struct HostState {
    pub meta: Arc<PluginMeta>,
    pub wasi: WasiCtx,
    pub table: ResourceTable,
    pub limiter: Limiter,
    /// The messages of the `transform-pending` call under way (empty otherwise).
    pub pending: PendingBatch,
    /// The account of the call under way (empty between calls): where `kv` reads.
    pub account: String,
}

/// A batch of messages staged for one `transform-pending` call: their bytes copied into one
/// buffer that is reused from call to call, so staging a message allocates nothing.
#[derive(Default)]
pub(crate) struct PendingBatch {
    bytes: Vec<u8>,
    items: Vec<Staged>,
}

struct Staged {
    subject: Range<usize>,
    reply: Option<Range<usize>>,
    /// A whole header block, or empty.
    headers: Range<usize>,
    payload: Range<usize>,
}

impl PendingBatch {
    pub fn stage(&mut self, msgs: &[MessageRef<'_>]) {
        self.bytes.clear();
        self.items.clear();
        for m in msgs {
            let subject = self.put(m.subject);
            let reply = m.reply.map(|r| self.put(r));
            let headers = match m.headers {
                HeadersRef::None => self.bytes.len()..self.bytes.len(),
                HeadersRef::Block(b) => self.put(b),
                HeadersRef::Fields([]) => self.bytes.len()..self.bytes.len(),
                HeadersRef::Fields(f) => {
                    let block = crate::proto::headers::HeaderBlock::from_fields(f).finish();
                    self.put(&block)
                }
            };
            let payload = self.put(m.payload);
            self.items.push(Staged {
                subject,
                reply,
                headers,
                payload,
            });
        }
    }

    fn put(&mut self, b: &[u8]) -> Range<usize> {
        let start = self.bytes.len();
        self.bytes.extend_from_slice(b);
        start..self.bytes.len()
    }

    pub fn clear(&mut self) {
        self.items.clear();
        // Keep the buffer for the next batch, unless one huge batch inflated it.
        if self.bytes.capacity() > 16 << 20 {
            self.bytes = Vec::new();
        }
        self.bytes.clear();
    }

    fn item(&self, index: u32) -> Option<&Staged> {
        self.items.get(usize::try_from(index).ok()?)
    }

    fn slice(&self, r: &Range<usize>) -> &[u8] {
        self.bytes.get(r.clone()).unwrap_or_default()
    }
}

impl HostState {
    pub fn new(meta: Arc<PluginMeta>, memory_limit: usize) -> Self {
        let wasi = locked_down_wasi(&meta.name);
        HostState {
            meta,
            wasi,
            table: ResourceTable::new(),
            limiter: Limiter::new(memory_limit),
            pending: PendingBatch::default(),
            account: String::new(),
        }
    }

    /// Records the account of the call about to run (`None`: a call for no account).
    pub fn set_account(&mut self, account: Option<&str>) {
        self.account.clear();
        if let Some(a) = account {
            self.account.push_str(a);
        }
    }
}

impl WasiView for HostState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

fn locked_down_wasi(plugin: &Arc<str>) -> WasiCtx {
    let mut b = WasiCtxBuilder::new();
    b.stdout(LogSink {
        plugin: plugin.clone(),
        stream: "stdout",
    })
    .stderr(LogSink {
        plugin: plugin.clone(),
        stream: "stderr",
    })
    .allow_tcp(false)
    .allow_udp(false)
    .allow_ip_name_lookup(false)
    .socket_addr_check(|_, _| Box::pin(async { false }));
    b.build()
}

/// Caps the total linear memory of one instance (all its memories together) and its tables.
/// Remembers that it refused, so that the resulting trap is reported as `OutOfMemory`.
pub(crate) struct Limiter {
    limit: usize,
    used: usize,
    pub hit: bool,
}

impl Limiter {
    fn new(limit: usize) -> Self {
        Limiter {
            limit,
            used: 0,
            hit: false,
        }
    }
}

impl Limiter {
    /// The linear memory this instance holds now (it never shrinks: also its peak).
    pub fn used(&self) -> usize {
        self.used
    }
}

impl ResourceLimiter for Limiter {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        let total = self.used.saturating_sub(current).saturating_add(desired);
        if total > self.limit {
            self.hit = true;
            wasmtime::bail!(
                "memory limit of {} bytes exceeded (growing to {total})",
                self.limit
            );
        }
        self.used = total;
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired > MAX_TABLE_ELEMENTS {
            self.hit = true;
            wasmtime::bail!("table limit of {MAX_TABLE_ELEMENTS} elements exceeded");
        }
        Ok(true)
    }
}

fn clip(s: &str) -> &str {
    if s.len() <= MAX_LOG_LINE {
        return s;
    }
    let mut end = MAX_LOG_LINE;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

impl wit_host::Host for HostState {
    fn log(&mut self, level: wit_host::Level, message: String, fields: Vec<(String, String)>) {
        let plugin = &*self.meta.name;
        let message = clip(&message);
        let mut f = String::new();
        for (k, v) in &fields {
            if f.len() >= MAX_LOG_LINE {
                break;
            }
            if !f.is_empty() {
                f.push(' ');
            }
            f.push_str(k);
            f.push('=');
            f.push_str(v);
        }
        let fields = clip(&f);
        match level {
            wit_host::Level::Trace => {
                tracing::trace!(target: "natrium::plugin", plugin, fields, "{message}")
            }
            wit_host::Level::Debug => {
                tracing::debug!(target: "natrium::plugin", plugin, fields, "{message}")
            }
            wit_host::Level::Info => {
                tracing::info!(target: "natrium::plugin", plugin, fields, "{message}")
            }
            wit_host::Level::Warn => {
                tracing::warn!(target: "natrium::plugin", plugin, fields, "{message}")
            }
            wit_host::Level::Error => {
                tracing::error!(target: "natrium::plugin", plugin, fields, "{message}")
            }
        }
    }

    fn config(&mut self) -> String {
        self.meta.config_json.clone()
    }

    fn now(&mut self) -> u64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
            .unwrap_or(0)
    }
}

impl wit_pending::Host for HostState {
    fn subject(&mut self, index: u32) -> String {
        let p = &self.pending;
        p.item(index)
            .map(|m| String::from_utf8_lossy(p.slice(&m.subject)).into_owned())
            .unwrap_or_default()
    }

    fn reply(&mut self, index: u32) -> Option<String> {
        let p = &self.pending;
        let r = p.item(index)?.reply.as_ref()?;
        Some(String::from_utf8_lossy(p.slice(r)).into_owned())
    }

    fn headers(&mut self, index: u32) -> Vec<wit_pending::Header> {
        let p = &self.pending;
        p.item(index)
            .map(|m| crate::proto::headers::fields(p.slice(&m.headers)))
            .unwrap_or_default()
            .into_iter()
            .map(|(name, value)| wit_pending::Header { name, value })
            .collect()
    }

    fn payload(&mut self, index: u32) -> Vec<u8> {
        let p = &self.pending;
        p.item(index)
            .map(|m| p.slice(&m.payload).to_vec())
            .unwrap_or_default()
    }

    fn payload_len(&mut self, index: u32) -> u32 {
        self.pending
            .item(index)
            .map_or(0, |m| u32::try_from(m.payload.len()).unwrap_or(u32::MAX))
    }
}

impl wit_kv::Host for HostState {
    fn get(&mut self, key: String) -> Result<Option<Vec<u8>>, String> {
        super::kv::get(self.meta.kv.as_ref(), &self.account, &key)
    }
}

/// A linker with everything a plugin may import: `natrium:plugin/host`, `pending`, `kv` (which
/// answers only with a grant; a component importing it without one is refused at load) and
/// locked-down WASI.
pub(crate) fn linker(engine: &Engine) -> wasmtime::Result<Linker<HostState>> {
    let mut linker = Linker::new(engine);
    wasmtime_wasi::p2::add_to_linker_sync(&mut linker)?;
    // Replace the blocking parts of wasi:io (see the module docs).
    linker.allow_shadowing(true);
    sync_streams::add_to_linker::<HostState, SafeIo>(&mut linker, |s| SafeTable(&mut s.table))?;
    sync_poll::add_to_linker::<HostState, SafeIo>(&mut linker, |s| SafeTable(&mut s.table))?;
    linker.allow_shadowing(false);
    wit_host::add_to_linker::<HostState, wasmtime::component::HasSelf<HostState>>(
        &mut linker,
        |s| s,
    )?;
    wit_pending::add_to_linker::<HostState, wasmtime::component::HasSelf<HostState>>(
        &mut linker,
        |s| s,
    )?;
    wit_kv::add_to_linker::<HostState, wasmtime::component::HasSelf<HostState>>(
        &mut linker,
        |s| s,
    )?;
    Ok(linker)
}

// ---- stdout / stderr → log -------------------------------------------------------------

/// A guest's stdout or stderr: each write becomes a log line attributed to the plugin.
#[derive(Clone)]
struct LogSink {
    plugin: Arc<str>,
    stream: &'static str,
}

impl LogSink {
    fn emit(&self, bytes: &[u8]) {
        let text = String::from_utf8_lossy(bytes);
        let text = clip(text.trim_end_matches(['\n', '\r']));
        if text.is_empty() {
            return;
        }
        let plugin = &*self.plugin;
        if self.stream == "stderr" {
            tracing::warn!(target: "natrium::plugin", plugin, stream = self.stream, "{text}");
        } else {
            tracing::info!(target: "natrium::plugin", plugin, stream = self.stream, "{text}");
        }
    }
}

impl IsTerminal for LogSink {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for LogSink {
    fn async_stream(&self) -> Box<dyn tokio::io::AsyncWrite + Send + Sync> {
        Box::new(self.clone())
    }

    fn p2_stream(&self) -> Box<dyn OutputStream> {
        Box::new(self.clone())
    }
}

impl tokio::io::AsyncWrite for LogSink {
    fn poll_write(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        self.emit(buf);
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

#[wasmtime_wasi::async_trait]
impl wasmtime_wasi::p2::Pollable for LogSink {
    async fn ready(&mut self) {}
}

impl OutputStream for LogSink {
    fn write(&mut self, bytes: Bytes) -> StreamResult<()> {
        self.emit(&bytes);
        Ok(())
    }

    fn flush(&mut self) -> StreamResult<()> {
        Ok(())
    }

    fn check_write(&mut self) -> StreamResult<usize> {
        Ok(64 * 1024)
    }
}

// ---- non-blocking wasi:io ------------------------------------------------------------

/// `HasData` marker for [`SafeTable`].
pub(crate) struct SafeIo;

impl HasData for SafeIo {
    type Data<'a> = SafeTable<'a>;
}

/// The resource table, seen through `wasi:io` functions that never block the thread.
pub(crate) struct SafeTable<'a>(&'a mut ResourceTable);

/// Polls `f` once. `None` when it would have to wait.
fn poll_once<F: Future>(f: F) -> Option<F::Output> {
    let mut f = pin!(f);
    let mut cx = Context::from_waker(Waker::noop());
    match f.as_mut().poll(&mut cx) {
        Poll::Ready(v) => Some(v),
        Poll::Pending => None,
    }
}

fn would_block() -> wasmtime::Error {
    wasmtime::format_err!("plugins may not block (sleep, wait or blocking I/O)")
}

fn nonblocking<T>(f: impl Future<Output = StreamResult<T>>) -> StreamResult<T> {
    poll_once(f).unwrap_or_else(|| Err(StreamError::Trap(would_block())))
}

/// Pollables may be backed by tokio timers, which need a runtime context to be polled.
fn poll_pollable<T>(f: impl Future<Output = wasmtime::Result<T>>) -> Option<wasmtime::Result<T>> {
    if tokio::runtime::Handle::try_current().is_err() {
        return None;
    }
    poll_once(f)
}

impl sync_streams::Host for SafeTable<'_> {
    fn convert_stream_error(
        &mut self,
        err: StreamError,
    ) -> wasmtime::Result<sync_streams::StreamError> {
        sync_streams::Host::convert_stream_error(self.0, err)
    }
}

impl sync_streams::HostOutputStream for SafeTable<'_> {
    fn drop(&mut self, stream: Resource<DynOutputStream>) -> wasmtime::Result<()> {
        poll_once(AsyncHostOutputStream::drop(self.0, stream)).unwrap_or_else(|| Err(would_block()))
    }

    fn check_write(&mut self, stream: Resource<DynOutputStream>) -> StreamResult<u64> {
        sync_streams::HostOutputStream::check_write(self.0, stream)
    }

    fn write(&mut self, stream: Resource<DynOutputStream>, bytes: Vec<u8>) -> StreamResult<()> {
        sync_streams::HostOutputStream::write(self.0, stream, bytes)
    }

    fn blocking_write_and_flush(
        &mut self,
        stream: Resource<DynOutputStream>,
        bytes: Vec<u8>,
    ) -> StreamResult<()> {
        nonblocking(AsyncHostOutputStream::blocking_write_and_flush(
            self.0, stream, bytes,
        ))
    }

    fn blocking_write_zeroes_and_flush(
        &mut self,
        stream: Resource<DynOutputStream>,
        len: u64,
    ) -> StreamResult<()> {
        nonblocking(AsyncHostOutputStream::blocking_write_zeroes_and_flush(
            self.0, stream, len,
        ))
    }

    fn subscribe(
        &mut self,
        stream: Resource<DynOutputStream>,
    ) -> wasmtime::Result<Resource<DynPollable>> {
        sync_streams::HostOutputStream::subscribe(self.0, stream)
    }

    fn write_zeroes(&mut self, stream: Resource<DynOutputStream>, len: u64) -> StreamResult<()> {
        sync_streams::HostOutputStream::write_zeroes(self.0, stream, len)
    }

    fn flush(&mut self, stream: Resource<DynOutputStream>) -> StreamResult<()> {
        sync_streams::HostOutputStream::flush(self.0, stream)
    }

    fn blocking_flush(&mut self, stream: Resource<DynOutputStream>) -> StreamResult<()> {
        nonblocking(AsyncHostOutputStream::blocking_flush(
            self.0,
            Resource::new_borrow(stream.rep()),
        ))
    }

    fn splice(
        &mut self,
        dst: Resource<DynOutputStream>,
        src: Resource<DynInputStream>,
        len: u64,
    ) -> StreamResult<u64> {
        sync_streams::HostOutputStream::splice(self.0, dst, src, len)
    }

    fn blocking_splice(
        &mut self,
        dst: Resource<DynOutputStream>,
        src: Resource<DynInputStream>,
        len: u64,
    ) -> StreamResult<u64> {
        nonblocking(AsyncHostOutputStream::blocking_splice(
            self.0, dst, src, len,
        ))
    }
}

impl sync_streams::HostInputStream for SafeTable<'_> {
    fn drop(&mut self, stream: Resource<DynInputStream>) -> wasmtime::Result<()> {
        poll_once(AsyncHostInputStream::drop(self.0, stream)).unwrap_or_else(|| Err(would_block()))
    }

    fn read(&mut self, stream: Resource<DynInputStream>, len: u64) -> StreamResult<Vec<u8>> {
        sync_streams::HostInputStream::read(self.0, stream, len)
    }

    fn blocking_read(
        &mut self,
        stream: Resource<DynInputStream>,
        len: u64,
    ) -> StreamResult<Vec<u8>> {
        nonblocking(AsyncHostInputStream::blocking_read(self.0, stream, len))
    }

    fn skip(&mut self, stream: Resource<DynInputStream>, len: u64) -> StreamResult<u64> {
        sync_streams::HostInputStream::skip(self.0, stream, len)
    }

    fn blocking_skip(&mut self, stream: Resource<DynInputStream>, len: u64) -> StreamResult<u64> {
        nonblocking(AsyncHostInputStream::blocking_skip(self.0, stream, len))
    }

    fn subscribe(
        &mut self,
        stream: Resource<DynInputStream>,
    ) -> wasmtime::Result<Resource<DynPollable>> {
        sync_streams::HostInputStream::subscribe(self.0, stream)
    }
}

impl sync_poll::Host for SafeTable<'_> {
    fn poll(&mut self, pollables: Vec<Resource<DynPollable>>) -> wasmtime::Result<Vec<u32>> {
        match poll_pollable(AsyncPollHost::poll(self.0, pollables)) {
            Some(r) => r,
            None => Err(would_block()),
        }
    }
}

impl sync_poll::HostPollable for SafeTable<'_> {
    fn ready(&mut self, pollable: Resource<DynPollable>) -> wasmtime::Result<bool> {
        Ok(poll_pollable(AsyncHostPollable::ready(self.0, pollable))
            .transpose()?
            .unwrap_or(false))
    }

    fn block(&mut self, pollable: Resource<DynPollable>) -> wasmtime::Result<()> {
        match poll_pollable(AsyncHostPollable::block(self.0, pollable)) {
            Some(r) => r,
            None => Err(would_block()),
        }
    }

    fn drop(&mut self, pollable: Resource<DynPollable>) -> wasmtime::Result<()> {
        AsyncHostPollable::drop(self.0, pollable)
    }
}
