//! What an idle connection to a built-in service costs in heap (issue 12: 10,000
//! idle connections to `--echo` must cost mptun little each). Two engines joined
//! by an in-memory wire as in `socket_api.rs`, the whole process's live heap
//! counted by a global allocator: this file holds a single test, so nothing else
//! allocates meanwhile.
//!
//! The echo and the sink used to hold a 256 KiB copy buffer per connection for
//! as long as it was open, even when nothing moved; t_idle_conns measured ~140 KiB
//! of RSS per idle connection from it, t_ooo_flood up to ~250 KiB.

use mptun::cable::{engine, spawn_cable};
use mptun::services;
use mptun::socket::Handle;
use std::alloc::{GlobalAlloc, Layout, System};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicIsize, Ordering};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

struct Counting;

static LIVE: AtomicIsize = AtomicIsize::new(0);

// SAFETY: every call is passed to `System` unchanged; only sizes are counted.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            LIVE.fetch_add(layout.size() as isize, Ordering::Relaxed);
        }
        p
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        let p = unsafe { System.alloc_zeroed(layout) };
        if !p.is_null() {
            LIVE.fetch_add(layout.size() as isize, Ordering::Relaxed);
        }
        p
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) };
        LIVE.fetch_sub(layout.size() as isize, Ordering::Relaxed);
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            LIVE.fetch_add(
                new_size as isize - layout.size() as isize,
                Ordering::Relaxed,
            );
        }
        p
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

const CONNS: usize = 200;

/// Live heap per connection (both engines, both applications) once CONNS
/// connections to `port` each sent 16 bytes (and, with `echo`, read them back)
/// and idle.
async fn heap_per_idle_connection(
    client: &Handle,
    server: &Handle,
    port: u16,
    echo: bool,
) -> isize {
    let remote: SocketAddr = format!("10.0.0.2:{port}").parse().unwrap();
    let idle = || async {
        // Let the last ACKs and window updates go out.
        tokio::time::sleep(Duration::from_millis(300)).await;
    };
    let before = LIVE.load(Ordering::Relaxed);
    let mut streams = Vec::with_capacity(CONNS);
    for i in 0..CONNS {
        let mut s = client.connect(remote).await.expect("connect");
        let msg = [i as u8; 16];
        s.write_all(&msg).await.unwrap();
        if echo {
            let mut back = [0u8; 16];
            s.read_exact(&mut back).await.unwrap();
            assert_eq!(back, msg);
        }
        streams.push(s);
    }
    idle().await;
    let with = LIVE.load(Ordering::Relaxed);
    // Each service connection saw its 16 bytes.
    assert_eq!(server.lock().open_connections(), CONNS);
    drop(streams);
    (with - before) / CONNS as isize
}

/// An OS echo server on 127.0.0.1 whose connections hold 64 bytes each (in
/// their task), for `--forward`.
async fn small_os_echo_server() -> SocketAddr {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let (mut s, _) = l.accept().await.unwrap();
            tokio::spawn(async move {
                let mut buf = [0u8; 64];
                loop {
                    match s.read(&mut buf).await {
                        Ok(0) | Err(_) => break,
                        Ok(n) => {
                            if s.write_all(&buf[..n]).await.is_err() {
                                break;
                            }
                        }
                    }
                }
            });
        }
    });
    addr
}

#[tokio::test]
async fn idle_service_connections_hold_no_copy_buffer() {
    let client = engine(21, "10.0.0.1");
    let server = engine(22, "10.0.0.2");
    let _wire = spawn_cable(client.clone(), server.clone());
    services::echo(&server, 7).unwrap();
    let sink = services::sink(&server, 9, true).unwrap();
    let backend = small_os_echo_server().await;
    services::forward(
        &server,
        80,
        backend.ip().to_string(),
        backend.port(),
        services::RelayTimeouts::default(),
        &mptun::relays::Relays::new(1000),
    )
    .unwrap();

    let closed = || async {
        tokio::time::timeout(Duration::from_secs(10), async {
            while server.lock().open_connections() > 0 || client.lock().open_connections() > 0 {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        })
        .await
        .expect("connections closed");
    };
    // Warm-up: tables, the runtime's and the engines' first allocations.
    for (port, echo) in [(7, true), (9, false), (80, true)] {
        heap_per_idle_connection(&client, &server, port, echo).await;
        closed().await;
    }

    let echo = heap_per_idle_connection(&client, &server, 7, true).await;
    closed().await;
    let sink_per = heap_per_idle_connection(&client, &server, 9, false).await;
    closed().await;
    let forward = heap_per_idle_connection(&client, &server, 80, true).await;
    closed().await;
    eprintln!(
        "live heap per idle connection, both sides: echo {echo} B, sink {sink_per} B, \
         forward (with its OS connection and backend) {forward} B"
    );
    // Two engines' connection state and a task or two per connection: a few
    // KiB. A copy buffer of the service (256 KiB while bytes move; tokio's
    // copy_bidirectional held two for the relay's life) must not stay.
    for (name, per) in [("echo", echo), ("sink", sink_per), ("forward", forward)] {
        assert!(
            per < 16 * 1024,
            "{name}: {per} bytes of live heap per idle connection"
        );
    }
    assert!(sink.connections.load(Ordering::Relaxed) >= 2 * CONNS as u64);
}
