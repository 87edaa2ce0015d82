//! Async streams over the stack's connections, used like tokio's TCP types.
//!
//! The engine lives in [`Shared`] behind a mutex that the driver task and every
//! stream lock briefly (never across an `.await`). Streams park their wakers in
//! the connection's slot; the driver wakes them when the engine reports events, and
//! streams poke the driver through a [`Notify`] whenever they gave the engine work
//! (data to send, window to reopen, a close).

use mptun_stack::endpoint::{CloseReason, Listen};
use mptun_stack::{ConnId, ConnectOptions, Error as StackError, Event, Instant, Room, Stack};
use rustc_hash::FxHashMap;
use std::collections::{HashMap, VecDeque};
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::Notify;

/// Application-side state of one connection.
#[derive(Debug, Default)]
struct ConnSlot {
    read: Option<Waker>,
    write: Option<Waker>,
    connect: Option<Waker>,
    established: bool,
    closed: Option<CloseReason>,
}

#[derive(Debug, Default)]
struct ListenerSlot {
    queue: VecDeque<(ConnId, SocketAddr)>,
    waker: Option<Waker>,
}

/// The engine plus what the async side needs to know about it.
pub struct Shared {
    pub stack: Stack,
    epoch: std::time::Instant,
    /// Handles are the engine's own numbers, never a peer's choice, so a
    /// fast hash (Fx) serves: this map is looked up for every event the
    /// engine raises, one or more per segment, and std's SipHash was ~3 % of
    /// the daemon's instructions in a bulk transfer.
    conns: FxHashMap<ConnId, ConnSlot>,
    listeners: HashMap<Listen, ListenerSlot>,
    accepting: bool,
    /// Where the engine's path events go (`mptun monitor`), if anywhere.
    publisher: Option<crate::monitor::Publisher>,
}

impl Shared {
    pub fn new(stack: Stack) -> Self {
        Shared {
            stack,
            epoch: std::time::Instant::now(),
            conns: FxHashMap::default(),
            listeners: HashMap::new(),
            accepting: true,
            publisher: None,
        }
    }

    /// Publish the engine's path events (turned on in the engine here).
    pub fn publish_to(&mut self, p: crate::monitor::Publisher) {
        self.stack.set_path_events(true);
        self.publisher = Some(p);
    }

    /// The engine's clock: microseconds since the daemon started.
    pub fn now(&self) -> Instant {
        Instant::from_micros(self.epoch.elapsed().as_micros() as u64)
    }

    /// Convert an engine instant back to the OS clock (for timers).
    pub fn to_std(&self, at: Instant) -> std::time::Instant {
        self.epoch + std::time::Duration::from_micros(at.as_micros())
    }

    pub fn uptime(&self) -> std::time::Duration {
        self.epoch.elapsed()
    }

    /// Hand the engine's events to the streams and listeners waiting on them.
    pub fn dispatch_events(&mut self) {
        if let Some(p) = &self.publisher {
            while let Some(e) = self.stack.poll_path_event() {
                p.publish(&e);
            }
        }
        while let Some(ev) = self.stack.poll_event() {
            match ev {
                Event::Accepted { id, on, remote, .. } => {
                    match self.listeners.get_mut(&on) {
                        Some(l) if self.accepting => {
                            self.conns.insert(
                                id,
                                ConnSlot {
                                    established: true,
                                    ..ConnSlot::default()
                                },
                            );
                            l.queue.push_back((id, remote));
                            if let Some(w) = l.waker.take() {
                                w.wake();
                            }
                        }
                        // Nobody accepts any more (shutting down or unlistened).
                        _ => {
                            let _ = self.stack.abort(id);
                        }
                    }
                }
                Event::Connected(id) => {
                    if let Some(s) = self.conns.get_mut(&id) {
                        s.established = true;
                        wake(&mut s.connect);
                    }
                }
                Event::Readable(id) => {
                    if let Some(s) = self.conns.get_mut(&id) {
                        wake(&mut s.read);
                    }
                }
                Event::Writable(id) => {
                    if let Some(s) = self.conns.get_mut(&id) {
                        wake(&mut s.write);
                    }
                }
                Event::Closed { id, reason } => {
                    if let Some(s) = self.conns.get_mut(&id) {
                        s.closed = Some(reason);
                        wake(&mut s.read);
                        wake(&mut s.write);
                        wake(&mut s.connect);
                    }
                }
            }
        }
    }

    /// Stop accepting: listeners are closed and queued connections reset.
    pub fn stop_accepting(&mut self) {
        self.accepting = false;
        for (on, mut l) in self.listeners.drain() {
            self.stack.unlisten_on(on);
            for (id, _) in l.queue.drain(..) {
                let _ = self.stack.abort(id);
                self.conns.remove(&id);
            }
            if let Some(w) = l.waker.take() {
                w.wake();
            }
        }
    }

    /// Connections the application still holds.
    pub fn open_connections(&self) -> usize {
        self.conns.len()
    }
}

fn wake(w: &mut Option<Waker>) {
    if let Some(w) = w.take() {
        w.wake();
    }
}

/// A cloneable reference to the engine for streams, listeners and services.
#[derive(Clone)]
pub struct Handle {
    shared: Arc<Mutex<Shared>>,
    notify: Arc<Notify>,
    /// Turns the driver has completed: the watchdog's proof that it is alive
    /// (`crate::watchdog`).
    turns: Arc<AtomicU64>,
}

impl Handle {
    pub fn new(shared: Shared) -> Self {
        Handle {
            shared: Arc::new(Mutex::new(shared)),
            notify: Arc::new(Notify::new()),
            turns: Arc::new(AtomicU64::new(0)),
        }
    }

    pub fn lock(&self) -> MutexGuard<'_, Shared> {
        match self.shared.lock() {
            Ok(guard) => guard,
            Err(poisoned) => {
                // Someone panicked while holding the engine: its state may be half
                // updated. The driver sees `is_poisoned` on its next turn and stops
                // the daemon ("internal error"); wake it, and let this caller
                // finish (panicking here too would only cascade, e.g. in `Drop`).
                self.notify.notify_one();
                poisoned.into_inner()
            }
        }
    }

    /// Whether a task panicked while holding the engine: nothing may rely on the
    /// engine's state any more (the daemon stops).
    pub fn is_poisoned(&self) -> bool {
        self.shared.is_poisoned()
    }

    /// A function that wakes the driver, for code outside the engine's users
    /// (the panic hook).
    pub fn waker(&self) -> impl Fn() + Send + Sync + 'static {
        let notify = Arc::clone(&self.notify);
        move || notify.notify_one()
    }

    /// The driver finished a turn (it took the engine's lock and served it).
    pub fn count_turn(&self) {
        self.turns.fetch_add(1, Ordering::Relaxed);
    }

    /// How many turns the driver has finished.
    pub fn turns(&self) -> u64 {
        self.turns.load(Ordering::Relaxed)
    }

    /// Wake the driver: the engine may have something to send.
    pub fn kick(&self) {
        self.notify.notify_one();
    }

    pub fn notified(&self) -> tokio::sync::futures::Notified<'_> {
        self.notify.notified()
    }

    /// Accept connections to `port` on every stack address.
    pub fn listen(&self, port: u16) -> io::Result<StackListener> {
        if port == 0 {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, "port 0"));
        }
        self.listen_on(Listen::Port(port))
    }

    /// Accept connections to `on` ([`Listen::Transparent`]: to any address
    /// that is not the stack's; [`StackStream::local_addr`] names it).
    pub fn listen_on(&self, on: Listen) -> io::Result<StackListener> {
        let mut s = self.lock();
        if !s.accepting {
            return Err(io::Error::other("stack is shutting down"));
        }
        s.stack.listen_on(on).map_err(to_io)?;
        s.listeners.insert(on, ListenerSlot::default());
        Ok(StackListener {
            handle: self.clone(),
            on,
        })
    }

    /// Open a connection from the stack to `remote`.
    pub async fn connect(&self, remote: SocketAddr) -> io::Result<StackStream> {
        let stream = self.start_connect(remote, ConnectOptions::default())?;
        stream.established().await?;
        Ok(stream)
    }

    /// [`connect`](Self::connect), given up after `timeout`: then the attempt is
    /// aborted (no more SYNs) and the error is `TimedOut`.
    pub async fn connect_timeout(
        &self,
        remote: SocketAddr,
        timeout: std::time::Duration,
    ) -> io::Result<StackStream> {
        self.connect_timeout_with(remote, timeout, ConnectOptions::default())
            .await
    }

    /// [`connect_timeout`](Self::connect_timeout) with `opts` (e.g. its own
    /// MPTCP scheduler).
    pub async fn connect_timeout_with(
        &self,
        remote: SocketAddr,
        timeout: std::time::Duration,
        opts: ConnectOptions,
    ) -> io::Result<StackStream> {
        let stream = self.start_connect(remote, opts)?;
        match tokio::time::timeout(timeout, stream.established()).await {
            Ok(r) => r.map(|()| stream),
            Err(_) => {
                stream.abort();
                Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!(
                        "no connection to {remote} within {:.1}s",
                        timeout.as_secs_f64()
                    ),
                ))
            }
        }
    }

    /// The stream of a connection being opened to `remote` (SYN queued).
    fn start_connect(&self, remote: SocketAddr, opts: ConnectOptions) -> io::Result<StackStream> {
        let id = {
            let mut s = self.lock();
            let now = s.now();
            let id = s
                .stack
                .connect_with(now, None, remote, opts)
                .map_err(to_io)?;
            s.conns.insert(id, ConnSlot::default());
            id
        };
        self.kick();
        Ok(StackStream {
            handle: self.clone(),
            id,
        })
    }
}

fn to_io(e: StackError) -> io::Error {
    let kind = match e {
        StackError::AddrInUse => io::ErrorKind::AddrInUse,
        StackError::NoLocalAddress => io::ErrorKind::AddrNotAvailable,
        StackError::Reset => io::ErrorKind::ConnectionReset,
        StackError::NotWritable => io::ErrorKind::BrokenPipe,
        StackError::InvalidConnection => io::ErrorKind::NotConnected,
        _ => io::ErrorKind::Other,
    };
    io::Error::new(kind, e)
}

fn close_error(reason: CloseReason) -> io::Error {
    let kind = match reason {
        CloseReason::Refused => io::ErrorKind::ConnectionRefused,
        CloseReason::Reset => io::ErrorKind::ConnectionReset,
        CloseReason::TimedOut => io::ErrorKind::TimedOut,
        CloseReason::Aborted => io::ErrorKind::ConnectionAborted,
        CloseReason::Unreachable => io::ErrorKind::HostUnreachable,
        CloseReason::Normal => io::ErrorKind::NotConnected,
    };
    io::Error::new(kind, format!("connection closed: {reason:?}"))
}

/// Accepts connections of one port, like `tokio::net::TcpListener`.
pub struct StackListener {
    handle: Handle,
    on: Listen,
}

impl StackListener {
    pub fn on(&self) -> Listen {
        self.on
    }

    /// The next accepted connection; an error once the stack stops accepting.
    pub async fn accept(&self) -> io::Result<(StackStream, SocketAddr)> {
        std::future::poll_fn(|cx| {
            let mut s = self.handle.lock();
            let Some(l) = s.listeners.get_mut(&self.on) else {
                return Poll::Ready(Err(io::Error::other("listener closed")));
            };
            if let Some((id, remote)) = l.queue.pop_front() {
                return Poll::Ready(Ok((
                    StackStream {
                        handle: self.handle.clone(),
                        id,
                    },
                    remote,
                )));
            }
            l.waker = Some(cx.waker().clone());
            Poll::Pending
        })
        .await
    }
}

impl Drop for StackListener {
    fn drop(&mut self) {
        let mut s = self.handle.lock();
        if let Some(mut l) = s.listeners.remove(&self.on) {
            s.stack.unlisten_on(self.on);
            for (id, _) in l.queue.drain(..) {
                let _ = s.stack.abort(id);
                s.conns.remove(&id);
            }
        }
    }
}

/// One connection of the stack, like `tokio::net::TcpStream`.
pub struct StackStream {
    handle: Handle,
    id: ConnId,
}

impl StackStream {
    pub fn id(&self) -> ConnId {
        self.id
    }

    fn addresses(&self) -> io::Result<(SocketAddr, SocketAddr)> {
        self.handle
            .lock()
            .stack
            .endpoints_of(self.id)
            .ok_or_else(|| io::Error::from(io::ErrorKind::NotConnected))
    }

    /// The local end: one of the stack's addresses, or for a transparent
    /// listener's connection the destination the peer meant to reach.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.addresses().map(|(local, _)| local)
    }

    /// The peer's address.
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.addresses().map(|(_, remote)| remote)
    }

    /// Bytes a read would return now without waiting (0 once closed).
    pub fn recv_available(&self) -> usize {
        self.handle
            .lock()
            .stack
            .recv_available(self.id)
            .unwrap_or(0)
    }

    /// Resets the connection (RST to the peer, MP_FASTCLOSE for MPTCP) and gives
    /// up the handle: for a relay that cannot serve it (backend unreachable, idle
    /// too long).
    pub fn abort(self) {
        {
            let mut s = self.handle.lock();
            s.conns.remove(&self.id);
            let _ = s.stack.abort(self.id);
        }
        self.handle.kick();
        // `Drop` then releases an id the engine no longer knows: harmless.
    }

    /// Waits until an active open completes (or fails).
    async fn established(&self) -> io::Result<()> {
        std::future::poll_fn(|cx| {
            let mut s = self.handle.lock();
            let slot = s
                .conns
                .get_mut(&self.id)
                .ok_or_else(|| io::Error::from(io::ErrorKind::NotConnected))?;
            if let Some(reason) = slot.closed {
                return Poll::Ready(Err(close_error(reason)));
            }
            if slot.established {
                return Poll::Ready(Ok(()));
            }
            slot.connect = Some(cx.waker().clone());
            Poll::Pending
        })
        .await
    }
}

// A stream reads and writes through `&self` (the engine is behind the handle's
// mutex, and the read and the write side park their own wakers), so `&StackStream`
// is a stream too: one task may read while another writes, as with tokio's
// `TcpStream::split`, without `tokio::io::split`'s shared lock.
impl StackStream {
    fn poll_read_ref(&self, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let wanted = buf.remaining() > 0;
        self.poll_recv(cx, wanted, |stack, id| {
            // Initialise (zero) only what this read may fill: a caller reading
            // into uninitialised capacity (`read_buf`) would otherwise have the
            // whole of it written, and made resident, on every read. At least
            // one byte, so that the end of the stream or a reset still shows.
            let avail = stack.recv_available(id).unwrap_or(0);
            let want = buf.remaining().min(avail.max(1));
            let n = stack.recv(id, buf.initialize_unfilled_to(want))?;
            buf.advance(n);
            Ok(n)
        })
        .map_ok(|_| ())
    }

    /// Read without copying: `f` is given the next bytes in place (slices of
    /// the engine's receive buffer, at most `max` in all) and returns how many
    /// of each it took. `Ready(Ok(0))` at the end of the stream (or for a `max`
    /// of 0). A reader that takes nothing of what it is offered waits for
    /// more, like one that was offered nothing. `f` runs with the engine
    /// locked: it must be quick (keep `max` modest), must not touch another
    /// stream of the same engine, and must not panic.
    pub fn poll_read_with(
        &self,
        cx: &mut Context<'_>,
        max: usize,
        f: impl FnMut(&[u8]) -> usize,
    ) -> Poll<io::Result<usize>> {
        self.poll_recv(cx, max > 0, |stack, id| stack.recv_with(id, max, f))
    }

    /// Waits until a read would return something: `true` with bytes to read,
    /// `false` at the end of the stream; an error after a reset.
    pub fn poll_readable(&self, cx: &mut Context<'_>) -> Poll<io::Result<bool>> {
        self.poll_recv(cx, true, |stack, id| {
            if stack.recv_available(id).unwrap_or(0) > 0 {
                return Ok(1);
            }
            // Takes nothing: tells the end (or a reset) from "nothing yet".
            stack.recv_with(id, 1, |_| 0)
        })
        .map_ok(|n| n > 0)
    }

    /// Give the stream a reader of its bytes as they arrive
    /// (`Stack::set_direct_reader`): while nothing waits to be read, the
    /// engine offers each segment's in-order bytes to `r` straight from the
    /// packet, and what it takes never reaches the receive buffer nor wakes
    /// a read. Reads return what it declined. It runs with the engine
    /// locked, inside packet processing: it must be quick and must not touch
    /// the engine. `None` takes it away (dropping it); the engine also drops
    /// it when the stream is dropped.
    pub fn set_direct_reader(&self, r: Option<Box<dyn mptun_stack::DirectReader>>) {
        let mut s = self.handle.lock();
        // A connection already gone has nothing more to offer.
        let _ = s.stack.set_direct_reader(self.id, r);
    }

    /// As [`poll_read_with`](Self::poll_read_with) without waiting: `Ok(0)`
    /// when there is nothing now (or the reader took nothing), or at the end.
    pub fn read_now_with(&self, max: usize, f: impl FnMut(&[u8]) -> usize) -> io::Result<usize> {
        // A read that wants nothing (`wanted` false) never parks a waker.
        let mut cx = Context::from_waker(std::task::Waker::noop());
        match self.poll_recv(&mut cx, false, |stack, id| stack.recv_with(id, max, f)) {
            Poll::Ready(r) => r,
            Poll::Pending => Ok(0),
        }
    }

    /// A read by `read` (`wanted`: the caller asked for at least a byte):
    /// waits while there is nothing, ends at a clean close, fails on a reset.
    fn poll_recv(
        &self,
        cx: &mut Context<'_>,
        wanted: bool,
        read: impl FnOnce(&mut Stack, ConnId) -> Result<usize, StackError>,
    ) -> Poll<io::Result<usize>> {
        let this = self;
        let mut s = this.handle.lock();
        let r = read(&mut s.stack, this.id);
        match r {
            Ok(0) if wanted => {
                // Bytes held that the reader declined: it waits for more.
                let declined = s.stack.recv_available(this.id).unwrap_or(0) > 0;
                let Some(slot) = s.conns.get_mut(&this.id) else {
                    return Poll::Ready(Err(io::ErrorKind::NotConnected.into()));
                };
                if let Some(reason) = slot.closed.filter(|_| !declined) {
                    // Closed with nothing left to read: a clean close reads as EOF.
                    return match reason {
                        CloseReason::Normal => Poll::Ready(Ok(0)),
                        other => Poll::Ready(Err(close_error(other))),
                    };
                }
                slot.read = Some(cx.waker().clone());
                Poll::Pending
            }
            Ok(n) => {
                // Reading may reopen the window: wake the driver if an update is due.
                let wake = s.stack.wants_transmit();
                drop(s);
                if wake {
                    this.handle.kick();
                }
                Poll::Ready(Ok(n))
            }
            Err(StackError::Finished) => Poll::Ready(Ok(0)),
            Err(e) => Poll::Ready(Err(to_io(e))),
        }
    }

    fn poll_write_ref(&self, cx: &mut Context<'_>, data: &[u8]) -> Poll<io::Result<usize>> {
        self.poll_send(cx, |stack, id| {
            let n = stack.send(id, data)?;
            // Bytes offered and none taken: the buffer is full.
            Ok((n > 0 || data.is_empty()).then_some(n))
        })
    }

    /// Write without copying: `fill` is given room in the engine's send
    /// buffer (`Room`, a `bytes::BufMut`: a chunk's worth at a time, at most
    /// `max` bytes in all) and appends to it, as tokio's `try_read_buf` of a
    /// socket does; a fill that leaves room ends the write. `Ready(Ok(n))`
    /// with the bytes queued (0 if `fill` brought none); waits while the
    /// buffer is full. `fill` runs with the engine locked: it must be quick,
    /// must not touch another stream of the same engine, and must not panic.
    pub fn poll_write_with(
        &self,
        cx: &mut Context<'_>,
        max: usize,
        mut fill: impl FnMut(&mut Room<'_>),
    ) -> Poll<io::Result<usize>> {
        self.poll_send(cx, |stack, id| {
            let mut offered = false;
            let n = stack.send_with(id, max, |room| {
                offered = true;
                fill(room)
            })?;
            // Not offered any room: the buffer this write went to (which
            // one, after an MPTCP fallback, is the stack's choice) is full,
            // and the stack reports `Writable` once it has room.
            Ok((offered || max == 0).then_some(n))
        })
    }

    /// A write by `send`: `Some(bytes taken)`, or `None` when the send
    /// buffer is full (the writer then waits for room).
    fn poll_send(
        &self,
        cx: &mut Context<'_>,
        send: impl FnOnce(&mut Stack, ConnId) -> Result<Option<usize>, StackError>,
    ) -> Poll<io::Result<usize>> {
        let this = self;
        let mut s = this.handle.lock();
        match send(&mut s.stack, this.id) {
            Ok(None) => {
                if let Some(slot) = s.conns.get_mut(&this.id) {
                    if let Some(reason) = slot.closed {
                        return Poll::Ready(Err(close_error(reason)));
                    }
                    slot.write = Some(cx.waker().clone());
                }
                Poll::Pending
            }
            Ok(Some(n)) => {
                drop(s);
                if n > 0 {
                    this.handle.kick();
                }
                Poll::Ready(Ok(n))
            }
            Err(e) => Poll::Ready(Err(to_io(e))),
        }
    }

    fn poll_shutdown_ref(&self) -> Poll<io::Result<()>> {
        let this = self;
        let r = this.handle.lock().stack.shutdown(this.id);
        this.handle.kick();
        match r {
            Ok(()) | Err(StackError::InvalidConnection) => Poll::Ready(Ok(())),
            Err(e) => Poll::Ready(Err(to_io(e))),
        }
    }
}

impl AsyncRead for StackStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        self.get_mut().poll_read_ref(cx, buf)
    }
}

impl AsyncWrite for StackStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.get_mut().poll_write_ref(cx, data)
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.get_mut().poll_shutdown_ref()
    }
}

impl AsyncRead for &StackStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        self.get_mut().poll_read_ref(cx, buf)
    }
}

impl AsyncWrite for &StackStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.get_mut().poll_write_ref(cx, data)
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.get_mut().poll_shutdown_ref()
    }
}

impl Drop for StackStream {
    fn drop(&mut self) {
        let mut s = self.handle.lock();
        s.conns.remove(&self.id);
        let _ = s.stack.release(self.id);
        drop(s);
        self.handle.kick();
    }
}
