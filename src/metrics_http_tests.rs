//! Tests of the `--metrics` HTTP responder over real loopback sockets.

use super::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

async fn server() -> (SocketAddr, MetricsTask) {
    let listener = bind("127.0.0.1:0".parse().unwrap()).await.unwrap();
    let addr = listener.local_addr().unwrap();
    let render: Render = Arc::new(|| "# HELP x An x.\n# TYPE x gauge\nx 1\n".to_string());
    (addr, serve(listener, render))
}

/// Sends `req`, then reads until the server closes; the whole response.
async fn exchange(addr: SocketAddr, req: &[u8]) -> String {
    let mut s = TcpStream::connect(addr).await.unwrap();
    // The server may close (or reset) before reading it all: fine.
    let _ = s.write_all(req).await;
    let mut out = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(10), s.read_to_end(&mut out))
        .await
        .expect("the server closes the connection");
    String::from_utf8_lossy(&out).into_owned()
}

fn header<'a>(resp: &'a str, name: &str) -> Option<&'a str> {
    let head = resp.split("\r\n\r\n").next()?;
    head.lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        k.eq_ignore_ascii_case(name).then(|| v.trim())
    })
}

#[tokio::test]
async fn get_metrics_is_200_with_the_text_format() {
    let (addr, _task) = server().await;
    let resp = exchange(
        addr,
        b"GET /metrics HTTP/1.1\r\nHost: x\r\nAccept: */*\r\n\r\n",
    )
    .await;
    assert!(resp.starts_with("HTTP/1.1 200 OK\r\n"), "{resp}");
    assert_eq!(
        header(&resp, "Content-Type"),
        Some("text/plain; version=0.0.4; charset=utf-8")
    );
    let body = resp.split_once("\r\n\r\n").unwrap().1;
    assert_eq!(body, "# HELP x An x.\n# TYPE x gauge\nx 1\n");
    assert_eq!(
        header(&resp, "Content-Length"),
        Some(&*body.len().to_string())
    );
    assert_eq!(header(&resp, "Connection"), Some("close"));

    // A query string is ignored; HEAD has the headers only; bare LFs pass.
    let resp = exchange(addr, b"GET /metrics?x=1 HTTP/1.0\n\n").await;
    assert!(resp.starts_with("HTTP/1.1 200 OK\r\n"), "{resp}");
    let resp = exchange(addr, b"HEAD /metrics HTTP/1.1\r\n\r\n").await;
    assert!(resp.starts_with("HTTP/1.1 200 OK\r\n"), "{resp}");
    assert!(resp.ends_with("\r\n\r\n"), "{resp}");
}

#[tokio::test]
async fn other_paths_and_methods_are_refused() {
    let (addr, _task) = server().await;
    for path in ["/", "/metricsx", "/metrics/", "/status"] {
        let resp = exchange(addr, format!("GET {path} HTTP/1.1\r\n\r\n").as_bytes()).await;
        assert!(
            resp.starts_with("HTTP/1.1 404 Not Found\r\n"),
            "{path}: {resp}"
        );
    }
    let resp = exchange(addr, b"POST /metrics HTTP/1.1\r\nContent-Length: 0\r\n\r\n").await;
    assert!(resp.starts_with("HTTP/1.1 405 "), "{resp}");
    assert_eq!(header(&resp, "Allow"), Some("GET, HEAD"));
}

#[tokio::test]
async fn garbage_and_oversized_requests_are_closed_and_the_server_goes_on() {
    let (addr, _task) = server().await;
    for garbage in [
        &b"\r\n\r\n"[..],
        b"GET\r\n\r\n",
        b"GET /metrics\r\n\r\n",
        b"GET /metrics SMTP/1.0\r\n\r\n",
        b"GET  /metrics HTTP/1.1\r\n\r\n",
        b"\xff\xfe\x00 /metrics HTTP/1.1\r\n\r\n",
    ] {
        let resp = exchange(addr, garbage).await;
        assert!(resp.starts_with("HTTP/1.1 400 "), "{garbage:?}: {resp}");
    }
    // A head past MAX_REQUEST: 431 (or a reset while the rest is unread),
    // never a hang.
    let mut big = b"GET /metrics HTTP/1.1\r\nX: ".to_vec();
    big.resize(MAX_REQUEST * 4, b'a');
    let resp = exchange(addr, &big).await;
    assert!(
        resp.is_empty() || resp.starts_with("HTTP/1.1 431 "),
        "{resp}"
    );
    // A client that connects and goes away, or sends half a request.
    drop(TcpStream::connect(addr).await.unwrap());
    let mut half = TcpStream::connect(addr).await.unwrap();
    half.write_all(b"GET /met").await.unwrap();
    half.shutdown().await.unwrap();
    let mut sink = Vec::new();
    let _ = half.read_to_end(&mut sink).await;
    // Still serving.
    let resp = exchange(addr, b"GET /metrics HTTP/1.1\r\n\r\n").await;
    assert!(resp.starts_with("HTTP/1.1 200 OK\r\n"), "{resp}");
}

#[tokio::test(start_paused = true)]
async fn a_silent_client_is_dropped_after_the_read_timeout() {
    let (addr, _task) = server().await;
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(b"GET /metrics HTTP/1.1\r\n").await.unwrap();
    let mut out = Vec::new();
    // Paused time: the timeout fires as soon as everything is idle.
    let n = tokio::time::timeout(READ_TIMEOUT * 2, s.read_to_end(&mut out))
        .await
        .expect("closed by the read timeout")
        .unwrap_or(0);
    assert_eq!(n, 0, "nothing is answered to an unfinished request");
}

#[test]
fn classify_reads_the_request_line() {
    assert_eq!(
        classify(b"GET /metrics HTTP/1.1"),
        Reply::Metrics { head: false }
    );
    assert_eq!(
        classify(b"HEAD /metrics HTTP/1.0\r\nHost: a"),
        Reply::Metrics { head: true }
    );
    assert_eq!(classify(b"GET /other HTTP/1.1"), Reply::NotFound);
    assert_eq!(
        classify(b"DELETE /metrics HTTP/1.1"),
        Reply::MethodNotAllowed
    );
    assert_eq!(classify(b"GET /metrics HTTP/2"), Reply::BadRequest);
    assert_eq!(classify(b""), Reply::BadRequest);
}
