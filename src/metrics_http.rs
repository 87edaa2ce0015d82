//! The `--metrics` listener: a minimal HTTP/1.1 responder for Prometheus.
//!
//! `GET /metrics` (or `HEAD`; a query string is ignored) answers 200 with
//! the exposition of the moment; any other path 404, any other method 405,
//! anything that is not a request line 400. One request per connection
//! (`Connection: close`): a scraper asks once every few seconds, so keep-alive
//! would buy nothing and cost a state machine. Hand-written rather than a web
//! framework because that is all there is to it, and every bound is visible
//! here: a request head of at most [`MAX_REQUEST`] bytes, read within
//! [`READ_TIMEOUT`]; the response written within [`WRITE_TIMEOUT`]; at most
//! [`MAX_CLIENTS`] connections at once (more are closed at once). Nothing a
//! client sends can panic it or keep a task forever.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;

/// Largest request head (request line and headers) accepted.
pub const MAX_REQUEST: usize = 8 * 1024;
/// How long a client may take to send its request head.
pub const READ_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a client may take to take the response.
pub const WRITE_TIMEOUT: Duration = Duration::from_secs(10);
/// Connections served at once.
pub const MAX_CLIENTS: usize = 16;

/// The exposition, made at each scrape.
pub type Render = Arc<dyn Fn() -> String + Send + Sync>;

/// The serving task; dropping it stops serving and closes the listener.
pub struct MetricsTask(tokio::task::JoinHandle<()>);

impl Drop for MetricsTask {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Binds the listener (before anything else changes, so that a port in use
/// stops the daemon at once, with the address in the message).
pub async fn bind(addr: SocketAddr) -> io::Result<TcpListener> {
    TcpListener::bind(addr).await
}

/// Serves `GET /metrics` on `listener` with what `render` returns.
pub fn serve(listener: TcpListener, render: Render) -> MetricsTask {
    let slots = Arc::new(Semaphore::new(MAX_CLIENTS));
    MetricsTask(tokio::spawn(async move {
        loop {
            match listener.accept().await {
                Ok((stream, _)) => {
                    // Past MAX_CLIENTS the connection is dropped (closed) at once.
                    let Ok(permit) = slots.clone().try_acquire_owned() else {
                        continue;
                    };
                    let render = render.clone();
                    tokio::spawn(async move {
                        // A client that misbehaves or goes away only ends its own task.
                        let _ = serve_client(stream, &*render).await;
                        drop(permit);
                    });
                }
                // Out of file descriptors or the like: back off instead of spinning.
                Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
            }
        }
    }))
}

/// What a request head asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reply {
    /// 200 with the exposition; `head`: without the body.
    Metrics {
        head: bool,
    },
    NotFound,
    MethodNotAllowed,
    BadRequest,
    TooLarge,
}

/// Reads the request head: up to the blank line that ends it, at most
/// [`MAX_REQUEST`] bytes. `None` when the client closed or timed out
/// before finishing it (nothing to answer).
async fn read_head(stream: &mut TcpStream) -> Option<Result<Vec<u8>, Reply>> {
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 1024];
    let read = async {
        loop {
            if let Some(end) = head_end(&buf) {
                buf.truncate(end);
                return Some(Ok(buf));
            }
            if buf.len() > MAX_REQUEST {
                return Some(Err(Reply::TooLarge));
            }
            match stream.read(&mut chunk).await {
                Ok(0) | Err(_) => return None,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        }
    };
    tokio::time::timeout(READ_TIMEOUT, read)
        .await
        .ok()
        .flatten()
}

/// Where the head ends (the blank line; bare LF tolerated), if it has.
fn head_end(buf: &[u8]) -> Option<usize> {
    let crlf = buf.windows(4).position(|w| w == b"\r\n\r\n");
    let lf = buf.windows(2).position(|w| w == b"\n\n");
    match (crlf, lf) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// The reply to a request head (its first line decides).
pub fn classify(head: &[u8]) -> Reply {
    let Ok(text) = std::str::from_utf8(head) else {
        return Reply::BadRequest;
    };
    let line = text.lines().next().unwrap_or("");
    let mut parts = line.split(' ');
    let (Some(method), Some(target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Reply::BadRequest;
    };
    if !version.starts_with("HTTP/1.") || target.is_empty() || method.is_empty() {
        return Reply::BadRequest;
    }
    let path = target.split_once('?').map_or(target, |(p, _)| p);
    match (method, path) {
        ("GET", "/metrics") => Reply::Metrics { head: false },
        ("HEAD", "/metrics") => Reply::Metrics { head: true },
        ("GET" | "HEAD", _) => Reply::NotFound,
        _ => Reply::MethodNotAllowed,
    }
}

/// The response's bytes.
pub fn response(reply: Reply, render: &dyn Fn() -> String) -> Vec<u8> {
    let (status, content_type, body, head) = match reply {
        Reply::Metrics { head } => ("200 OK", crate::metrics::CONTENT_TYPE, render(), head),
        Reply::NotFound => (
            "404 Not Found",
            "text/plain; charset=utf-8",
            "Not found: the metrics are at /metrics\n".into(),
            false,
        ),
        Reply::MethodNotAllowed => (
            "405 Method Not Allowed",
            "text/plain; charset=utf-8",
            "Only GET and HEAD\n".into(),
            false,
        ),
        Reply::BadRequest => (
            "400 Bad Request",
            "text/plain; charset=utf-8",
            "Bad request\n".into(),
            false,
        ),
        Reply::TooLarge => (
            "431 Request Header Fields Too Large",
            "text/plain; charset=utf-8",
            "Request too large\n".into(),
            false,
        ),
    };
    let allow = if reply == Reply::MethodNotAllowed {
        "Allow: GET, HEAD\r\n"
    } else {
        ""
    };
    let mut out = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n{allow}Connection: close\r\n\r\n",
        body.len()
    )
    .into_bytes();
    if !head {
        out.extend_from_slice(body.as_bytes());
    }
    out
}

async fn serve_client(
    mut stream: TcpStream,
    render: &(dyn Fn() -> String + Send + Sync),
) -> io::Result<()> {
    let reply = match read_head(&mut stream).await {
        None => return Ok(()),
        Some(Ok(head)) => classify(&head),
        Some(Err(reply)) => reply,
    };
    let bytes = response(reply, render);
    tokio::time::timeout(WRITE_TIMEOUT, async {
        stream.write_all(&bytes).await?;
        stream.shutdown().await
    })
    .await
    .unwrap_or_else(|_| Err(io::ErrorKind::TimedOut.into()))
}

#[cfg(test)]
#[path = "metrics_http_tests.rs"]
mod tests;
