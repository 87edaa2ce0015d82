//! Relaying a connection's bytes both ways between two ends, each a stack
//! connection or an OS one: `--forward` (stack -> OS), `--local-forward`
//! (OS -> stack), `--socks5` (stack -> OS) and the transparent gateway (stack ->
//! stack upstream, or OS with `--upstream direct`).

use crate::chunk::{Chunk, Linger};
use crate::relays::Relay;
use crate::services::ServiceStats;
use crate::socket::StackStream;
use std::io::{self, Write};
use std::os::fd::AsFd;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::tcp::{ReadHalf, WriteHalf};
use tokio::net::TcpStream;
use tokio::time::Instant;

/// Copy buffer per direction; large enough to keep a fast path busy.
pub(crate) const BUF: usize = 256 * 1024;

/// What a read waiting for data reads into (inside the connection's task: no
/// allocation of its own).
const WAIT_BUF: usize = 64;

/// How long a reader whose last read was bulk waits for more holding its
/// chunk's storage before letting it go. A reader faster than its peer drains
/// the stack and waits between every burst (a sink, every fraction of a
/// millisecond): letting go at each wait made the next read zero its storage
/// again (a tenth of the daemon's instructions in a bulk transfer into
/// `--sink`), while a connection that has gone quiet still holds nothing after
/// this (issue 12).
const LINGER: Duration = Duration::from_millis(20);

/// A read of at least this much is bulk: only then is the storage kept through
/// a wait. A connection trickling small reads more often than [`LINGER`]
/// (interactive traffic, a media stream) would otherwise hold up to [`BUF`]
/// for as long as it trickles.
const BULK: usize = 16 * 1024;

/// Storage a thread's readers keep through their waits, in all: enough for
/// a bulk transfer each way of a relay or two; beyond it readers let go as
/// they wait (16 echo connections in bulk would otherwise each add their
/// read storage to the peak: t_mem_echo).
const LINGER_BUDGET: usize = 2 * BUF;

/// The next bytes of `stream` into `chunk` (empty at the end of the stream),
/// holding no storage while the connection idles (issue 12: 10,000 idle
/// connections must not each keep a copy buffer). What the stack already holds
/// is read into the chunk's storage (at most [`IN_PLACE`] of it, kept while
/// bytes flow: `chunk.rs`; the engine's own chunk size, which the allocator
/// reuses well: storage of 256 KiB, let go and grown again as 16 echo
/// connections paused and resumed, fragmented its heap, `t_mem_echo`); with
/// nothing held, the reader waits up to [`LINGER`]
/// with that storage if its last read was [`BULK`] and its thread's readers
/// keep less than [`LINGER_BUDGET`], then lets it go and waits with a read
/// into a few bytes on the task's stack, copied out.
pub(crate) async fn next_chunk(stream: &StackStream, chunk: &mut Chunk) -> io::Result<()> {
    let mut rd = stream;
    let avail = stream.recv_available();
    if avail == 0 {
        if let Some(_kept) = linger(chunk.len() >= BULK, chunk) {
            // The read is cancel safe: bytes are taken only by a poll that
            // returns them.
            let room = chunk.room(chunk.storage_len());
            if let Ok(n) = tokio::time::timeout(LINGER, rd.read(room)).await {
                chunk.filled(n?);
                return Ok(());
            }
        }
        chunk.let_go();
        let mut wait = [0u8; WAIT_BUF];
        let n = rd.read(&mut wait).await?;
        chunk.set(&wait[..n]);
        return Ok(());
    }
    let n = rd.read(chunk.room(avail.min(IN_PLACE))).await?;
    chunk.filled(n);
    Ok(())
}

/// The next bytes of an OS connection, as [`next_chunk`] for the stack's: a
/// read of up to [`BUF`] bytes into the chunk's storage, kept while bytes flow
/// and, after a [`BULK`] read, for [`LINGER`] of waiting (within
/// [`LINGER_BUDGET`]); no storage while it
/// idles (the wait is `readable`). Empty at the end of the stream.
async fn next_os_chunk(os: &TcpStream, chunk: &mut Chunk) -> io::Result<()> {
    if chunk.holds_storage() {
        // Bytes flow: read again before waiting.
        let bulk = chunk.len() >= BULK;
        if try_read_os(os, chunk)? {
            return Ok(());
        }
        if let Some(_kept) = linger(bulk, chunk) {
            // Wait a moment holding the storage.
            let deadline = Instant::now() + LINGER;
            while let Ok(ready) = tokio::time::timeout_at(deadline, os.readable()).await {
                ready?;
                if try_read_os(os, chunk)? {
                    return Ok(());
                }
            }
        }
        chunk.let_go();
    }
    loop {
        os.readable().await?;
        // A stale readiness: wait again, holding nothing.
        if try_read_os(os, chunk)? {
            return Ok(());
        }
        chunk.let_go();
    }
}

/// Whether a reader waits holding `chunk`'s storage: after a [`BULK`] read
/// (`bulk`), within its thread's [`LINGER_BUDGET`], for as long as the guard
/// lives.
fn linger(bulk: bool, chunk: &Chunk) -> Option<Linger> {
    bulk.then(|| Linger::take(chunk.storage_len(), LINGER_BUDGET))
        .flatten()
}

/// A read of up to [`BUF`] bytes into `chunk` that does not wait: whether
/// one came.
fn try_read_os(os: &TcpStream, chunk: &mut Chunk) -> io::Result<bool> {
    match os.try_read(chunk.room(BUF)) {
        Ok(n) => {
            chunk.filled(n);
            Ok(true)
        }
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(false),
        Err(e) => Err(e),
    }
}

/// Closes an OS connection with a RST (`SO_LINGER` 0), not a FIN: the relay gives
/// up on it.
pub(crate) fn reset_os(os: TcpStream) {
    let _ = os.set_zero_linger();
    drop(os);
}

/// One end of a relayed connection.
pub enum End {
    Stack(StackStream),
    Os(TcpStream),
}

impl End {
    /// Gives up on the end: a RST (and MP_FASTCLOSE for MPTCP) for a stack
    /// connection, `SO_LINGER` 0 for an OS one.
    pub fn reset(self) {
        match self {
            End::Stack(s) => s.abort(),
            End::Os(o) => reset_os(o),
        }
    }

    fn split(&mut self) -> (Rd<'_>, Wr<'_>) {
        match self {
            End::Stack(s) => (Rd::Stack(s), Wr::Stack(s)),
            End::Os(o) => {
                let (r, w) = o.split();
                (Rd::Os(r), Wr::Os(w))
            }
        }
    }
}

enum Rd<'a> {
    Stack(&'a StackStream),
    Os(ReadHalf<'a>),
}

impl Rd<'_> {
    /// The next bytes into `chunk` (empty at the end of the stream), holding
    /// no buffer while the connection idles.
    async fn next(&mut self, chunk: &mut Chunk) -> io::Result<()> {
        match self {
            Rd::Stack(s) => next_chunk(s, chunk).await,
            Rd::Os(r) => next_os_chunk(r.as_ref(), chunk).await,
        }
    }
}

enum Wr<'a> {
    Stack(&'a StackStream),
    Os(WriteHalf<'a>),
}

impl Wr<'_> {
    fn writer(&mut self) -> &mut (dyn AsyncWrite + Unpin + Send) {
        match self {
            Wr::Stack(s) => s,
            Wr::Os(w) => w,
        }
    }
}

/// Copies both ways between `a` (the client's end) and `b` until both
/// directions are closed, counting the bytes into `rec` (each way, as they
/// move) and `stats`. With `idle`, once no byte has moved either
/// way for that long, both are reset and the error is `TimedOut`; any other
/// error (one end reset, a write refused) resets both as well.
///
/// Like `tokio::io::copy_bidirectional` (each direction shut down at the end of
/// its source, the first error ends both), but a relayed connection holds a copy
/// buffer only while bytes move: tokio's holds two zeroed buffers of [`BUF`]
/// for its whole life (issue 12: 512 KiB per idle relayed connection).
pub async fn relay(
    mut a: End,
    mut b: End,
    idle: Option<Duration>,
    stats: &ServiceStats,
    rec: &Relay,
) -> io::Result<()> {
    let activity = Activity::new();
    let (up0, down0) = (
        rec.up.load(Ordering::Relaxed),
        rec.down.load(Ordering::Relaxed),
    );
    let result = {
        let (mut a_rd, mut a_wr) = a.split();
        let (mut b_rd, mut b_wr) = b.split();
        let copy = async {
            tokio::try_join!(
                one_way(&mut a_rd, &mut b_wr, &activity, &rec.up),
                one_way(&mut b_rd, &mut a_wr, &activity, &rec.down),
            )
            .map(|_| ())
        };
        match idle {
            None => copy.await,
            Some(idle) => tokio::select! {
                r = copy => r,
                () = activity.idle_for(idle) => Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!("idle for {:.0}s; both sides reset", idle.as_secs_f64()),
                )),
            },
        }
    };
    let moved = (rec.up.load(Ordering::Relaxed) - up0) + (rec.down.load(Ordering::Relaxed) - down0);
    stats.bytes.fetch_add(moved, Ordering::Relaxed);
    // An error on either end (a reset, an idle timeout) resets both: a FIN
    // would tell the other end that the stream ended whole, and a download cut
    // short by a reset upstream would look complete to the LAN client.
    if result.is_err() {
        a.reset();
        b.reset();
    }
    result
}

/// Copies `from` into `to` until `from` ends, then shuts `to`'s writing down.
async fn one_way(
    from: &mut Rd<'_>,
    to: &mut Wr<'_>,
    activity: &Activity,
    moved: &Arc<AtomicU64>,
) -> io::Result<()> {
    match (&*from, &mut *to) {
        (Rd::Stack(s), Wr::Os(os)) => return stack_to_os(s, os, activity, moved).await,
        (Rd::Os(os), Wr::Stack(s)) => return os_to_stack(os, s, activity, moved).await,
        _ => {}
    }
    // Kept from one read to the next while bytes flow (`Rd::next` lets it
    // go when it waits).
    let mut chunk = Chunk::new();
    loop {
        from.next(&mut chunk).await?;
        if chunk.is_empty() {
            break;
        }
        activity.touch();
        moved.fetch_add(chunk.len() as u64, Ordering::Relaxed);
        write_all_noting(to.writer(), chunk.bytes(), activity).await?;
    }
    to.writer().shutdown().await
}

/// Stack to OS with no copy of the relay's own: the engine's bytes are
/// written into the OS socket straight from the packet as they arrive (a
/// direct reader, `StackStream::set_direct_reader`), and what waits in the
/// receive buffer (what the socket could not take at once) straight from
/// there (a `try_write` per slice, at most [`IN_PLACE`] a turn since the
/// engine is locked meanwhile), so this direction holds no storage of its
/// own.
async fn stack_to_os(
    from: &StackStream,
    to: &mut WriteHalf<'_>,
    activity: &Activity,
    moved: &Arc<AtomicU64>,
) -> io::Result<()> {
    // The direct reader writes through a descriptor of its own for the same
    // socket (the engine may hold the reader a little after the relay ends,
    // so it cannot borrow the relay's). A write it cannot make (a full
    // socket, an error) leaves the bytes for the loop below, which waits
    // for room and reports errors.
    if let Ok(fd) = to.as_ref().as_fd().try_clone_to_owned() {
        let os = std::net::TcpStream::from(fd);
        let (start, last_ms, moved) = (activity.start, activity.last_ms.clone(), moved.clone());
        let direct = move |part: &[u8]| match (&os).write(part) {
            Ok(n) => {
                Activity::touch_at(start, &last_ms);
                moved.fetch_add(n as u64, Ordering::Relaxed);
                n
            }
            Err(_) => 0,
        };
        from.set_direct_reader(Some(Box::new(direct)));
    }
    // Taken away however this ends (the relay dropped mid-way included):
    // its descriptor would keep the socket open.
    let guard = NoDirectReaderOnDrop(from);
    stack_to_os_buffered(from, to, activity, moved).await?;
    drop(guard);
    to.shutdown().await
}

struct NoDirectReaderOnDrop<'a>(&'a StackStream);

impl Drop for NoDirectReaderOnDrop<'_> {
    fn drop(&mut self) {
        self.0.set_direct_reader(None);
    }
}

async fn stack_to_os_buffered(
    from: &StackStream,
    to: &mut WriteHalf<'_>,
    activity: &Activity,
    moved: &AtomicU64,
) -> io::Result<()> {
    while std::future::poll_fn(|cx| from.poll_readable(cx)).await? {
        to.as_ref().writable().await?;
        let mut failed = None;
        let n = from.read_now_with(IN_PLACE, |part| match to.as_ref().try_write(part) {
            Ok(k) => k,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => 0,
            Err(e) => {
                failed = Some(e);
                0
            }
        })?;
        if let Some(e) = failed {
            return Err(e);
        }
        if n > 0 {
            activity.touch();
            moved.fetch_add(n as u64, Ordering::Relaxed);
        }
    }
    Ok(())
}

/// OS to stack with no copy of the relay's own: the socket is read straight
/// into the connection's send buffer (`StackStream::poll_write_with`, up to
/// [`BUF`] a turn), so this direction holds no storage of its own either.
async fn os_to_stack(
    from: &ReadHalf<'_>,
    mut to: &StackStream,
    activity: &Activity,
    moved: &AtomicU64,
) -> io::Result<()> {
    let os: &TcpStream = from.as_ref();
    loop {
        os.readable().await?;
        let (mut failed, mut end) = (None, false);
        let n = std::future::poll_fn(|cx| {
            to.poll_write_with(cx, BUF, |room| match os.try_read_buf(room) {
                // A room is never empty: no bytes is the end of the stream.
                Ok(0) => end = true,
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => failed = Some(e),
            })
        })
        .await?;
        if let Some(e) = failed {
            return Err(e);
        }
        if n > 0 {
            activity.touch();
            moved.fetch_add(n as u64, Ordering::Relaxed);
        }
        if end {
            break;
        }
    }
    to.shutdown().await
}

/// Bytes taken in place per turn, with the engine locked meanwhile: by
/// [`stack_to_os`] and by the sink (`services.rs`).
pub(crate) const IN_PLACE: usize = 64 * 1024;

/// When a relayed connection last moved a byte (either way), shared by its two
/// [`Tracked`] halves.
struct Activity {
    start: Instant,
    /// Milliseconds since `start` of the last byte read or written (shared
    /// with a stream's direct reader).
    last_ms: Arc<AtomicU64>,
}

impl Activity {
    fn new() -> Self {
        Activity {
            start: Instant::now(),
            last_ms: Arc::new(AtomicU64::new(0)),
        }
    }

    fn touch(&self) {
        Self::touch_at(self.start, &self.last_ms);
    }

    fn touch_at(start: Instant, last_ms: &AtomicU64) {
        let ms = start.elapsed().as_millis() as u64;
        last_ms.fetch_max(ms, Ordering::Relaxed);
    }

    /// Completes once nothing has moved for `idle`.
    async fn idle_for(&self, idle: Duration) {
        loop {
            let last = self.start + Duration::from_millis(self.last_ms.load(Ordering::Relaxed));
            let deadline = last + idle;
            if Instant::now() >= deadline {
                return;
            }
            tokio::time::sleep_until(deadline).await;
        }
    }
}

/// `write_all` that notes every step of progress in `activity` (a slow reader
/// still counts as traffic for the idle timeout).
async fn write_all_noting<W: AsyncWrite + Unpin + ?Sized>(
    w: &mut W,
    mut data: &[u8],
    activity: &Activity,
) -> io::Result<()> {
    while !data.is_empty() {
        let n = w.write(data).await?;
        if n == 0 {
            return Err(io::ErrorKind::WriteZero.into());
        }
        data = &data[n..];
        activity.touch();
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::relays::{Admitted, Relays};
    use std::net::SocketAddr;
    use std::sync::Arc;
    use tokio::net::TcpListener;

    /// A connected pair on loopback: (the end we dial, the end accepted).
    async fn pair() -> (TcpStream, TcpStream) {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let dial = TcpStream::connect(l.local_addr().unwrap());
        let (dialled, accepted) = tokio::join!(dial, l.accept());
        (dialled.unwrap(), accepted.unwrap().0)
    }

    /// Two engines joined by the in-process cable, and a connection between
    /// them: (the cable's task, the end dialled, the end accepted).
    async fn stack_pair(seed: u64) -> (tokio::task::JoinHandle<()>, StackStream, StackStream) {
        let client = crate::cable::engine(seed, "10.0.0.1");
        let server = crate::cable::engine(seed + 1, "10.0.0.2");
        let cable = crate::cable::spawn_cable(client.clone(), server.clone());
        let listener = server.listen(5).unwrap();
        let dialled = client.connect("10.0.0.2:5".parse().unwrap()).await.unwrap();
        let (accepted, _) = listener.accept().await.unwrap();
        (cable, dialled, accepted)
    }

    /// A relay record for a client at `client` and its service's figures.
    fn admitted(client: SocketAddr) -> (Arc<ServiceStats>, Admitted) {
        let rec = Relays::new(1).admit("test", client, "x:1".into()).unwrap();
        (ServiceStats::new("test", 1), rec)
    }

    /// A reader keeps its storage across a short wait after a bulk read (the
    /// next read zeroes nothing), lets it go once the connection has been
    /// quiet for [`LINGER`], and at once after a small read.
    #[tokio::test]
    async fn os_storage_outlives_a_short_wait_after_bulk_only() {
        let (mut w, r) = pair().await;
        let mut chunk = Chunk::new();
        w.write_all(&[7u8; BUF]).await.unwrap();
        next_os_chunk(&r, &mut chunk).await.unwrap();
        assert!(
            chunk.len() >= BULK,
            "one read of a 256 KiB write on loopback"
        );
        let mut got = chunk.len();
        while got < BUF {
            next_os_chunk(&r, &mut chunk).await.unwrap();
            got += chunk.len();
        }
        // (Small reads at the end of the write let the storage go.)
        w.write_all(&[7u8; 2 * BULK]).await.unwrap();
        next_os_chunk(&r, &mut chunk).await.unwrap();
        assert_eq!(chunk.len(), 2 * BULK);
        let grown = chunk.allocations();
        let late = tokio::spawn(async move {
            tokio::time::sleep(LINGER / 4).await;
            w.write_all(b"late").await.unwrap();
            w
        });
        next_os_chunk(&r, &mut chunk).await.unwrap();
        assert_eq!(chunk.bytes(), b"late");
        assert_eq!(
            chunk.allocations(),
            grown,
            "the storage was kept across the wait"
        );
        let mut w = late.await.unwrap();
        // After that small read the next wait holds nothing at all.
        let quiet = tokio::time::timeout(LINGER / 4, next_os_chunk(&r, &mut chunk)).await;
        assert!(quiet.is_err(), "nothing to read");
        assert!(!chunk.holds_storage(), "let go at once after a small read");
        // And after a bulk read, once quiet for LINGER.
        w.write_all(&[7u8; 2 * BULK]).await.unwrap();
        next_os_chunk(&r, &mut chunk).await.unwrap();
        assert_eq!(chunk.len(), 2 * BULK);
        let quiet = tokio::time::timeout(LINGER / 4, next_os_chunk(&r, &mut chunk)).await;
        assert!(
            quiet.is_err() && chunk.holds_storage(),
            "kept while waiting briefly"
        );
        let quiet = tokio::time::timeout(LINGER * 3, next_os_chunk(&r, &mut chunk)).await;
        assert!(
            quiet.is_err() && !chunk.holds_storage(),
            "let go once quiet"
        );
        // The waits cut short above gave their place in the budget back.
        assert!(Linger::take(LINGER_BUDGET, LINGER_BUDGET).is_some());
    }

    /// The same for a stack connection's reader (`next_chunk`).
    #[tokio::test]
    async fn stack_storage_outlives_a_short_wait_after_bulk_only() {
        let (_cable, mut w, r) = stack_pair(21).await;
        let mut chunk = Chunk::new();
        w.write_all(&[7u8; 2 * BULK]).await.unwrap();
        // All of it in the stack first, so that one read takes it.
        let arrived = async {
            while r.recv_available() < 2 * BULK {
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        };
        tokio::time::timeout(Duration::from_secs(10), arrived)
            .await
            .unwrap();
        next_chunk(&r, &mut chunk).await.unwrap();
        assert_eq!(chunk.len(), 2 * BULK);
        let grown = chunk.allocations();
        // Full segments (a small one would wait for the last ACK: Nagle).
        const LATE: usize = 8 * 1024;
        let late = tokio::spawn(async move {
            tokio::time::sleep(LINGER / 4).await;
            w.write_all(&[9u8; LATE]).await.unwrap();
            w
        });
        next_chunk(&r, &mut chunk).await.unwrap();
        assert!(!chunk.is_empty() && chunk.bytes().iter().all(|&b| b == 9));
        assert_eq!(
            chunk.allocations(),
            grown,
            "the storage was kept across the wait"
        );
        let _w = late.await.unwrap();
        let mut got = chunk.len();
        while got < LATE {
            next_chunk(&r, &mut chunk).await.unwrap();
            got += chunk.len();
        }
        // After small reads the next wait holds nothing at all.
        let quiet = tokio::time::timeout(LINGER / 4, next_chunk(&r, &mut chunk)).await;
        assert!(quiet.is_err(), "nothing to read");
        assert!(!chunk.holds_storage(), "let go at once after a small read");
        assert!(Linger::take(LINGER_BUDGET, LINGER_BUDGET).is_some());
    }

    /// Readers on one thread keep at most [`LINGER_BUDGET`] through their
    /// waits: beyond it, a bulk reader lets its storage go as it waits.
    #[tokio::test]
    async fn lingering_readers_share_a_budget() {
        let mut ends = Vec::new();
        for _ in 0..3 {
            ends.push(pair().await);
        }
        let mut chunks: Vec<Chunk> = (0..3).map(|_| Chunk::new()).collect();
        for ((w, r), chunk) in ends.iter_mut().zip(chunks.iter_mut()) {
            w.write_all(&[7u8; BUF]).await.unwrap();
            let mut got = 0;
            while got < BUF {
                next_os_chunk(r, chunk).await.unwrap();
                got += chunk.len();
            }
            // One more bulk read, so that the next wait may linger.
            w.write_all(&[7u8; 2 * BULK]).await.unwrap();
            next_os_chunk(r, chunk).await.unwrap();
            assert_eq!(chunk.len(), 2 * BULK);
            assert_eq!(chunk.storage_len(), BUF);
        }
        // All three wait at once.
        let [(_, r0), (_, r1), (_, r2)] = &ends[..] else {
            unreachable!()
        };
        let [c0, c1, c2] = &mut chunks[..] else {
            unreachable!()
        };
        let waits = async {
            tokio::join!(
                next_os_chunk(r0, c0),
                next_os_chunk(r1, c1),
                next_os_chunk(r2, c2)
            )
        };
        assert!(tokio::time::timeout(LINGER / 2, waits).await.is_err());
        let held = chunks.iter().filter(|c| c.holds_storage()).count();
        assert_eq!(
            held,
            LINGER_BUDGET / BUF,
            "only the budget's worth lingered"
        );
    }

    /// A download cut short by a reset upstream must reach the client as a
    /// reset: a FIN would make the truncated stream look whole.
    #[tokio::test]
    async fn a_reset_far_end_resets_the_client() {
        let (mut client, near) = pair().await;
        let (far, mut server) = pair().await;
        let (stats, rec) = admitted(client.local_addr().unwrap());
        let task =
            tokio::spawn(
                async move { relay(End::Os(near), End::Os(far), None, &stats, &rec).await },
            );
        server.write_all(b"partial").await.unwrap();
        let mut got = [0u8; 7];
        client.read_exact(&mut got).await.unwrap();
        assert_eq!(&got, b"partial");
        reset_os(server);
        let err = task.await.unwrap().expect_err("the relay ends in an error");
        assert_eq!(err.kind(), io::ErrorKind::ConnectionReset);
        let mut rest = Vec::new();
        let end = client.read_to_end(&mut rest).await;
        assert_eq!(
            end.map_err(|e| e.kind()),
            Err(io::ErrorKind::ConnectionReset),
            "the client saw a clean end of stream after {} more bytes",
            rest.len()
        );
    }

    /// A local client relayed into a stack connection (`--local-forward`):
    /// its bytes go from the socket straight into the send buffer, whole and
    /// in order through many waits for room (8 MiB through a buffer of a few
    /// hundred KiB), its half-close ends the stack connection's stream, and
    /// the other way still flows until the far end closes.
    #[tokio::test]
    async fn os_bytes_reach_the_stack_whole_and_in_order() {
        let (_cable, up, mut far) = stack_pair(31).await;
        let (mut local, near) = pair().await;
        let (stats, rec) = admitted(local.local_addr().unwrap());
        let task = tokio::spawn(async move {
            let r = relay(End::Os(near), End::Stack(up), None, &stats, &rec).await;
            (r, rec.up.load(Ordering::Relaxed))
        });
        const LEN: usize = 8 << 20;
        let data: Vec<u8> = (0..LEN as u32).map(|i| (i * 13 + i / 4099) as u8).collect();
        let sent = data.clone();
        let writer = tokio::spawn(async move {
            local.write_all(&sent).await.unwrap();
            local.shutdown().await.unwrap();
            local
        });
        let mut got = Vec::new();
        tokio::time::timeout(Duration::from_secs(60), far.read_to_end(&mut got))
            .await
            .expect("the relayed stream ended")
            .unwrap();
        assert!(
            got == data,
            "{} bytes arrived, not the ones sent",
            got.len()
        );
        let mut local = writer.await.unwrap();
        far.write_all(b"bye").await.unwrap();
        far.shutdown().await.unwrap();
        let mut back = Vec::new();
        local.read_to_end(&mut back).await.unwrap();
        assert_eq!(back, b"bye");
        let (r, up) = task.await.unwrap();
        r.unwrap();
        assert_eq!(up, LEN as u64);
    }

    /// A local client that resets mid-stream resets the stack connection:
    /// the far end must not take the cut stream for a whole one.
    #[tokio::test]
    async fn an_os_reset_resets_the_stack_end() {
        let (_cable, up, mut far) = stack_pair(33).await;
        let (mut local, near) = pair().await;
        let (stats, rec) = admitted(local.local_addr().unwrap());
        let task =
            tokio::spawn(
                async move { relay(End::Os(near), End::Stack(up), None, &stats, &rec).await },
            );
        local.write_all(b"partial").await.unwrap();
        let mut got = [0u8; 7];
        far.read_exact(&mut got).await.unwrap();
        assert_eq!(&got, b"partial");
        reset_os(local);
        let err = task.await.unwrap().expect_err("the relay ends in an error");
        assert_eq!(err.kind(), io::ErrorKind::ConnectionReset);
        let mut rest = Vec::new();
        let end = tokio::time::timeout(Duration::from_secs(10), far.read_to_end(&mut rest))
            .await
            .expect("the far end heard");
        assert!(
            end.is_err(),
            "the far end saw a clean end after {} more bytes",
            rest.len()
        );
    }

    #[tokio::test(start_paused = true)]
    async fn idle_for_waits_for_silence() {
        let a = Activity::new();
        let t0 = Instant::now();
        a.idle_for(Duration::from_secs(5)).await;
        assert_eq!(t0.elapsed(), Duration::from_secs(5));

        // Activity pushes the deadline back.
        let a = Arc::new(Activity::new());
        let b = a.clone();
        let t0 = Instant::now();
        let toucher = tokio::spawn(async move {
            for _ in 0..3 {
                tokio::time::sleep(Duration::from_secs(4)).await;
                b.touch();
            }
        });
        a.idle_for(Duration::from_secs(5)).await;
        assert_eq!(t0.elapsed(), Duration::from_secs(17));
        toucher.await.unwrap();
    }
}
