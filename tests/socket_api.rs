//! The async stream API without a TUN: two engines joined by an in-memory wire,
//! each behind a `Handle`, with the built-in echo service on one and a client
//! stream on the other. Exercises listener, connect, AsyncRead/AsyncWrite,
//! half-close, refused connects and release.

use mptun::cable::{engine, spawn_cable};
use mptun::relays::Relays;
use mptun::services;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn data(n: usize) -> Vec<u8> {
    (0..n).map(|i| (i * 7 + i / 251) as u8).collect()
}

#[tokio::test]
async fn echo_through_streams_and_half_close() {
    let client = engine(1, "10.0.0.1");
    let server = engine(2, "10.0.0.2");
    let _wire = spawn_cable(client.clone(), server.clone());
    let stats = services::echo(&server, 7).unwrap();

    let remote: SocketAddr = "10.0.0.2:7".parse().unwrap();
    let stream = client.connect(remote).await.expect("connect");
    let (mut rd, mut wr) = tokio::io::split(stream);
    let sent = data(1 << 20);
    let to_send = sent.clone();
    let writer = tokio::spawn(async move {
        for chunk in to_send.chunks(10_000) {
            wr.write_all(chunk).await.unwrap();
        }
        wr.shutdown().await.unwrap();
    });
    let mut got = Vec::new();
    tokio::time::timeout(Duration::from_secs(30), rd.read_to_end(&mut got))
        .await
        .expect("echo finished in time")
        .unwrap();
    writer.await.unwrap();
    assert_eq!(got.len(), sent.len());
    assert!(got == sent, "echoed bytes differ");
    assert_eq!(
        stats.bytes.load(std::sync::atomic::Ordering::Relaxed),
        1 << 20
    );
}

#[tokio::test]
async fn connect_to_closed_port_is_refused() {
    let client = engine(3, "10.0.0.1");
    let server = engine(4, "10.0.0.2");
    let _wire = spawn_cable(client.clone(), server.clone());
    let err = match client.connect("10.0.0.2:9".parse().unwrap()).await {
        Ok(_) => panic!("connected to a closed port"),
        Err(e) => e,
    };
    assert_eq!(err.kind(), std::io::ErrorKind::ConnectionRefused);
}

#[tokio::test]
async fn many_concurrent_streams() {
    let client = engine(5, "10.0.0.1");
    let server = engine(6, "10.0.0.2");
    let _wire = spawn_cable(client.clone(), server.clone());
    services::echo(&server, 7).unwrap();
    let mut tasks = Vec::new();
    for i in 0..50usize {
        let client = client.clone();
        tasks.push(tokio::spawn(async move {
            let mut s = client.connect("10.0.0.2:7".parse().unwrap()).await.unwrap();
            let msg: Vec<u8> = (0..20_000).map(|j| (i + j) as u8).collect();
            s.write_all(&msg).await.unwrap();
            s.shutdown().await.unwrap();
            let mut back = Vec::new();
            s.read_to_end(&mut back).await.unwrap();
            assert!(back == msg, "stream {i} echoed wrong bytes");
        }));
    }
    for t in tasks {
        tokio::time::timeout(Duration::from_secs(60), t)
            .await
            .expect("in time")
            .unwrap();
    }
    // Every stream was dropped: the engine finishes closing on its own.
    let open = client.lock().stack.connections().len();
    assert_eq!(open, 0);
}

/// `--chargen`: the client reads RFC 864's lines for as long as it likes,
/// what it sends meanwhile is discarded, and its close ends the connection on
/// the server too (its stack answers the data still coming with a RST).
#[tokio::test]
async fn chargen_streams_until_the_client_closes() {
    let client = engine(11, "10.0.0.1");
    let server = engine(12, "10.0.0.2");
    let _wire = spawn_cable(client.clone(), server.clone());
    let stats = mptun::chargen::chargen(&server, 19).unwrap();
    let mut s = client
        .connect("10.0.0.2:19".parse().unwrap())
        .await
        .unwrap();
    s.write_all(&data(100_000)).await.unwrap();
    let want = 3 << 20;
    let mut got = vec![0u8; want];
    tokio::time::timeout(Duration::from_secs(30), s.read_exact(&mut got))
        .await
        .expect("in time")
        .unwrap();
    assert!(
        got == mptun::chargen::pattern(want),
        "not the chargen pattern"
    );
    drop(s);
    let gone = async {
        while server.lock().stack.connection_count() > 0 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    };
    tokio::time::timeout(Duration::from_secs(30), gone)
        .await
        .expect("the server let the connection go");
    assert_eq!(
        stats.connections.load(std::sync::atomic::Ordering::Relaxed),
        1
    );
    assert!(stats.bytes.load(std::sync::atomic::Ordering::Relaxed) >= want as u64);
}

/// The sink hashes the bytes where the engine holds them (no copy of its
/// own): every byte counted, and the digest is the data's.
#[tokio::test]
async fn sink_counts_and_hashes_every_byte_in_place() {
    use sha2::{Digest, Sha256};
    let client = engine(13, "10.0.0.1");
    let server = engine(14, "10.0.0.2");
    let _wire = spawn_cable(client.clone(), server.clone());
    let stats = services::sink(&server, 9, true).unwrap();
    let sent = data(3 << 20);
    let mut s = client.connect("10.0.0.2:9".parse().unwrap()).await.unwrap();
    s.write_all(&sent).await.unwrap();
    s.shutdown().await.unwrap();
    let done = async {
        while stats.last_sha256.lock().unwrap().is_none() {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    };
    tokio::time::timeout(Duration::from_secs(30), done)
        .await
        .expect("the sink finished");
    let want: String = Sha256::digest(&sent)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert_eq!(
        stats.last_sha256.lock().unwrap().as_deref(),
        Some(&want[..])
    );
    assert_eq!(
        stats.bytes.load(std::sync::atomic::Ordering::Relaxed),
        sent.len() as u64
    );
}

/// An OS echo server on 127.0.0.1 (tokio's TCP), one task per connection.
async fn os_echo_server() -> SocketAddr {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let (mut s, _) = l.accept().await.unwrap();
            tokio::spawn(async move {
                let (mut r, mut w) = s.split();
                tokio::io::copy(&mut r, &mut w).await.unwrap();
                w.shutdown().await.unwrap();
            });
        }
    });
    addr
}

/// `stream`: write `data` in pieces, half-close, read everything back.
async fn echo_through<S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + 'static>(
    stream: S,
    data: Vec<u8>,
) -> Vec<u8> {
    let (mut rd, mut wr) = tokio::io::split(stream);
    let writer = tokio::spawn(async move {
        for chunk in data.chunks(10_000) {
            wr.write_all(chunk).await.unwrap();
        }
        wr.shutdown().await.unwrap();
    });
    let mut got = Vec::new();
    tokio::time::timeout(Duration::from_secs(60), rd.read_to_end(&mut got))
        .await
        .expect("echo finished in time")
        .unwrap();
    writer.await.unwrap();
    got
}

#[tokio::test]
async fn forward_relays_both_ways_with_half_close() {
    // Stack client -> --forward on the server stack -> OS echo server.
    let client = engine(7, "10.0.0.1");
    let server = engine(8, "10.0.0.2");
    let _wire = spawn_cable(client.clone(), server.clone());
    let backend = os_echo_server().await;
    let stats = services::forward(
        &server,
        80,
        backend.ip().to_string(),
        backend.port(),
        services::RelayTimeouts::default(),
        &Relays::new(100),
    )
    .unwrap();
    let sent = data(3 << 20);
    let stream = client
        .connect("10.0.0.2:80".parse().unwrap())
        .await
        .unwrap();
    let got = echo_through(stream, sent.clone()).await;
    assert_eq!(got.len(), sent.len());
    assert!(got == sent, "relayed bytes differ");
    // Counted once per direction read.
    tokio::time::timeout(Duration::from_secs(10), async {
        while stats.bytes.load(std::sync::atomic::Ordering::Relaxed) < 2 * (3 << 20) {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .expect("relay counted both directions");
}

/// Stack to OS, the bytes written in place from the engine's buffer: an OS
/// backend that reads slowly (small reads with pauses) pushes back through
/// the socket's buffer, and every byte still arrives, in order, with the end
/// of the stream after them.
#[tokio::test]
async fn forward_writes_in_place_to_a_slow_os_reader() {
    use sha2::{Digest, Sha256};
    let client = engine(15, "10.0.0.1");
    let server = engine(16, "10.0.0.2");
    let _wire = spawn_cable(client.clone(), server.clone());
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let backend = l.local_addr().unwrap();
    let reader = tokio::spawn(async move {
        let (mut s, _) = l.accept().await.unwrap();
        let (mut hash, mut total, mut buf) = (Sha256::new(), 0usize, vec![0u8; 4096]);
        loop {
            let n = s.read(&mut buf).await.unwrap();
            if n == 0 {
                break;
            }
            hash.update(&buf[..n]);
            total += n;
            if total % (256 << 10) < 4096 {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        }
        (total, hash.finalize().to_vec())
    });
    let _stats = services::forward(
        &server,
        81,
        backend.ip().to_string(),
        backend.port(),
        services::RelayTimeouts::default(),
        &Relays::new(100),
    )
    .unwrap();
    let sent = data(8 << 20);
    let mut stream = client
        .connect("10.0.0.2:81".parse().unwrap())
        .await
        .unwrap();
    stream.write_all(&sent).await.unwrap();
    stream.shutdown().await.unwrap();
    let (total, digest) = tokio::time::timeout(Duration::from_secs(60), reader)
        .await
        .expect("the backend got everything in time")
        .unwrap();
    assert_eq!(total, sent.len());
    assert_eq!(
        digest,
        Sha256::digest(&sent).to_vec(),
        "relayed bytes differ"
    );
}

#[tokio::test]
async fn local_forward_relays_both_ways_with_half_close() {
    // OS client -> --local-forward on the client stack -> echo on the server stack.
    let client = engine(9, "10.0.0.1");
    let server = engine(10, "10.0.0.2");
    let _wire = spawn_cable(client.clone(), server.clone());
    services::echo(&server, 7).unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let listen: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    services::local_forward(
        &mptun::shards::Mesh::new(vec![client.clone()], None),
        listen,
        "10.0.0.2:7".parse().unwrap(),
        services::RelayTimeouts::default(),
        &Relays::new(100),
    )
    .await
    .unwrap();
    let sent = data(3 << 20);
    let os = tokio::net::TcpStream::connect(listen).await.unwrap();
    let got = echo_through(os, sent.clone()).await;
    assert_eq!(got.len(), sent.len());
    assert!(got == sent, "relayed bytes differ");
}

#[tokio::test]
async fn relays_past_the_limit_are_reset_and_counted() {
    let client = engine(11, "10.0.0.1");
    let server = engine(12, "10.0.0.2");
    let _wire = spawn_cable(client.clone(), server.clone());
    let backend = os_echo_server().await;
    let relays = Relays::new(1);
    services::forward(
        &server,
        80,
        backend.ip().to_string(),
        backend.port(),
        services::RelayTimeouts::default(),
        &relays,
    )
    .unwrap();
    let to = "10.0.0.2:80".parse().unwrap();
    let mut first = client.connect(to).await.unwrap();
    first.write_all(b"ping").await.unwrap();
    let mut buf = [0u8; 4];
    first.read_exact(&mut buf).await.unwrap();
    let active = relays.snapshot();
    assert_eq!(active.len(), 1);
    assert_eq!(active[0].service, "forward");
    assert_eq!(active[0].client, first.local_addr().unwrap());
    assert_eq!(active[0].target, backend.to_string());
    assert_eq!(active[0].up.load(std::sync::atomic::Ordering::Relaxed), 4);

    // Reset at once: the RST may even beat the end of the handshake here.
    let refused = match client.connect(to).await {
        Err(e) => e.kind(),
        Ok(mut second) => {
            let r = tokio::time::timeout(Duration::from_secs(10), second.read(&mut buf))
                .await
                .expect("the refused client hears at once");
            r.map_or_else(|e| e.kind(), |n| panic!("read {n} bytes"))
        }
    };
    assert_eq!(refused, std::io::ErrorKind::ConnectionReset);
    assert_eq!(relays.refused(), 1);
    assert_eq!(relays.snapshot().len(), 1, "the first goes on");

    drop(first);
    tokio::time::timeout(Duration::from_secs(10), async {
        while !relays.snapshot().is_empty() {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .expect("a finished relay leaves the list");
}
