//! The control socket: a Unix stream socket (by default `/run/mptun/<tun>.sock`)
//! through which `mptun status` (and later `mptun addr ...`) talks to a running daemon.
//!
//! Protocol: newline-delimited JSON, one request line answered by one response line;
//! a client may send several requests on one connection.
//!
//! ```text
//! -> {"cmd":"status"}
//! <- {"ok":true,"status":{...}}          (see crate::status for the Status keys)
//! -> {"cmd":"frobnicate"}
//! <- {"ok":false,"error":"unknown command `frobnicate` ..."}
//! ```
//!
//! A request line longer than [`MAX_REQUEST`] bytes gets an error response and the
//! connection is closed; so is a connection that sends nothing for the read timeout.

use std::fmt;
use std::io;
use std::os::unix::fs::{DirBuilderExt, FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};

use crate::status::Status;

/// Longest request line the server accepts, newline excluded.
pub const MAX_REQUEST: usize = 64 * 1024;
/// How long the server waits for (the rest of) a request line before hanging up.
pub const DEFAULT_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// How long [`request`] waits for the whole exchange.
pub const DEFAULT_CLIENT_TIMEOUT: Duration = Duration::from_secs(5);
/// Longest response line the client accepts (a status with very many connections
/// is large, but not this large).
const MAX_RESPONSE: usize = 64 * 1024 * 1024;

/// A request, tagged by `"cmd"`: `{"cmd":"status"}`. Commands with arguments become
/// struct variants, e.g. `AddrAdd { addr: String }` ↔ `{"cmd":"addr_add","addr":...}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "cmd", rename_all = "snake_case")]
pub enum Request {
    /// The daemon's [`Status`].
    Status,
    /// Answer for one more address, with path-manager flags: `IP[,FLAG...]` as
    /// `--addr` takes it.
    AddrAdd { addr: String },
    /// Stop answering for an address: MPTCP peers get REMOVE_ADDR and lose the
    /// subflows on it.
    AddrDel { addr: String },
    /// Mark an address backup or not (MP_PRIO on its subflows).
    AddrSet { addr: String, backup: bool },
}

impl Request {
    /// The `cmd` values the server understands, for error messages.
    pub const COMMANDS: &'static [&'static str] = &["status", "addr_add", "addr_del", "addr_set"];
}

/// A response: `{"ok":true, ...payload}` or `{"ok":false,"error":"..."}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Response {
    pub ok: bool,
    /// Present in the answer to `status`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<Box<Status>>,
    /// Present when `ok` is false.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl Response {
    /// Success without a payload.
    pub fn ok() -> Self {
        Response {
            ok: true,
            status: None,
            error: None,
        }
    }

    /// Success carrying a status.
    pub fn status(status: Status) -> Self {
        Response {
            status: Some(Box::new(status)),
            ..Response::ok()
        }
    }

    /// Failure with a one-line message.
    pub fn error(msg: impl Into<String>) -> Self {
        Response {
            ok: false,
            status: None,
            error: Some(msg.into()),
        }
    }

    /// The status of a successful `status` answer, or the daemon's error.
    pub fn into_status(self) -> Result<Status, ControlError> {
        match self {
            Response {
                ok: true,
                status: Some(s),
                ..
            } => Ok(*s),
            Response { ok: true, .. } => Err(ControlError::Protocol(
                "the daemon answered without a status".into(),
            )),
            Response { error, .. } => Err(ControlError::Daemon(
                error.unwrap_or_else(|| "unspecified error".into()),
            )),
        }
    }
}

/// Parses one request line; the error is the message to send back.
pub fn parse_request(line: &[u8]) -> Result<Request, String> {
    let value: serde_json::Value =
        serde_json::from_slice(line).map_err(|e| format!("malformed request: {e}"))?;
    let Some(cmd) = value.get("cmd") else {
        return Err("malformed request: missing \"cmd\"".into());
    };
    let Some(cmd) = cmd.as_str().map(str::to_owned) else {
        return Err("malformed request: \"cmd\" must be a string".into());
    };
    if !Request::COMMANDS.contains(&cmd.as_str()) {
        return Err(format!(
            "unknown command `{cmd}` (known: {})",
            Request::COMMANDS.join(", ")
        ));
    }
    serde_json::from_value(value).map_err(|e| format!("bad arguments to `{cmd}`: {e}"))
}

/// The daemon's end of the control socket. Removes its socket file when dropped (or
/// on [`ControlServer::close`]), unless the file has since been replaced.
#[derive(Debug)]
pub struct ControlServer {
    listener: Option<UnixListener>,
    path: PathBuf,
    /// Device and inode of the socket file we created.
    identity: Option<(u64, u64)>,
    read_timeout: Duration,
}

impl ControlServer {
    /// Binds the control socket at `path`.
    ///
    /// Creates the parent directory (mode 0755) if it is missing. If a socket file is
    /// already there, connects to it first: if a daemon answers, fails with
    /// `AddrInUse` ("another mptun is running on PATH"); if nobody listens, the file
    /// is stale and is replaced. A file there that is not a socket is left alone
    /// (`AlreadyExists`).
    pub async fn bind(path: &Path) -> io::Result<ControlServer> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            if !dir.exists() {
                std::fs::DirBuilder::new()
                    .recursive(true)
                    .mode(0o755)
                    .create(dir)?;
                // The mode above is filtered by the umask; the directory must be
                // searchable by everyone so unprivileged `mptun status` can work.
                std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755))?;
            }
        }

        match std::fs::symlink_metadata(path) {
            Ok(meta) => {
                if !meta.file_type().is_socket() {
                    return Err(io::Error::new(
                        io::ErrorKind::AlreadyExists,
                        format!("{} exists and is not a socket", path.display()),
                    ));
                }
                match UnixStream::connect(path).await {
                    Ok(_) => {
                        return Err(io::Error::new(
                            io::ErrorKind::AddrInUse,
                            format!("another mptun is running on {}", path.display()),
                        ))
                    }
                    Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => {
                        std::fs::remove_file(path).or_else(|e| {
                            if e.kind() == io::ErrorKind::NotFound {
                                Ok(())
                            } else {
                                Err(e)
                            }
                        })?;
                    }
                    Err(e) => {
                        return Err(io::Error::new(
                            e.kind(),
                            format!("cannot check existing socket {}: {e}", path.display()),
                        ))
                    }
                }
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }

        let listener = UnixListener::bind(path).map_err(|e| {
            io::Error::new(
                e.kind(),
                format!("cannot bind control socket {}: {e}", path.display()),
            )
        })?;
        let identity = std::fs::symlink_metadata(path)
            .ok()
            .map(|m| (m.dev(), m.ino()));
        Ok(ControlServer {
            listener: Some(listener),
            path: path.to_path_buf(),
            identity,
            read_timeout: DEFAULT_READ_TIMEOUT,
        })
    }

    /// The socket's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// How long a client may take to send a request line (default
    /// [`DEFAULT_READ_TIMEOUT`]); an idle client is disconnected after this.
    pub fn set_read_timeout(&mut self, timeout: Duration) {
        self.read_timeout = timeout;
    }

    /// Serves clients until the returned future is dropped (then the socket file is
    /// removed). Each client gets its own task; `handler` answers each request and
    /// should be quick (it may lock the driver's state, but must not await).
    pub async fn serve<F>(mut self, handler: F)
    where
        F: Fn(Request) -> Response + Send + Sync + 'static,
    {
        let handler = Arc::new(handler);
        let listener = self.listener.take().expect("listener present until closed");
        // Keep `self` alive (and so the socket file) for as long as we serve.
        let _guard = self;
        let read_timeout = _guard.read_timeout;
        loop {
            match listener.accept().await {
                Ok((stream, _)) => {
                    let handler = Arc::clone(&handler);
                    tokio::spawn(async move {
                        // A client that misbehaves or goes away only ends its own task.
                        let _ = serve_client(stream, &*handler, read_timeout).await;
                    });
                }
                // Out of file descriptors or the like: back off instead of spinning.
                Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
            }
        }
    }

    /// Stops listening and removes the socket file.
    pub fn close(mut self) {
        self.cleanup();
    }

    fn cleanup(&mut self) {
        self.listener = None;
        if let Some(identity) = self.identity.take() {
            // Remove the file only if it is still the socket we created.
            if let Ok(m) = std::fs::symlink_metadata(&self.path) {
                if (m.dev(), m.ino()) == identity {
                    let _ = std::fs::remove_file(&self.path);
                }
            }
        }
    }
}

impl Drop for ControlServer {
    fn drop(&mut self) {
        self.cleanup();
    }
}

async fn serve_client<F>(stream: UnixStream, handler: &F, read_timeout: Duration) -> io::Result<()>
where
    F: Fn(Request) -> Response,
{
    let (read, mut write) = stream.into_split();
    let mut reader = BufReader::new(read);
    let mut line = Vec::new();
    loop {
        line.clear();
        // At most MAX_REQUEST bytes plus the newline; one byte more means too long.
        let mut limited = (&mut reader).take(MAX_REQUEST as u64 + 1);
        let n = match tokio::time::timeout(read_timeout, limited.read_until(b'\n', &mut line)).await
        {
            Ok(r) => r?,
            Err(_) => return Ok(()), // idle or too slow: hang up
        };
        if n == 0 {
            return Ok(());
        }
        let complete = line.last() == Some(&b'\n');
        if complete {
            line.pop();
        }
        if line.len() > MAX_REQUEST {
            let resp = Response::error(format!("request too large (max {MAX_REQUEST} bytes)"));
            write_response(&mut write, &resp).await?;
            write.shutdown().await?;
            return Ok(());
        }
        if line.iter().all(u8::is_ascii_whitespace) {
            if complete {
                continue; // blank line
            }
            return Ok(());
        }
        let resp = match parse_request(&line) {
            Ok(req) => handler(req),
            Err(msg) => Response::error(msg),
        };
        write_response(&mut write, &resp).await?;
        if !complete {
            return Ok(()); // EOF without a newline: answered the last request
        }
    }
}

async fn write_response<W: AsyncWriteExt + Unpin>(w: &mut W, resp: &Response) -> io::Result<()> {
    let mut out = serde_json::to_vec(resp).map_err(io::Error::other)?;
    out.push(b'\n');
    w.write_all(&out).await?;
    w.flush().await
}

/// What can go wrong for a control client.
#[derive(Debug)]
pub enum ControlError {
    /// No daemon at that path (missing socket, nobody listening, no permission).
    Connect { path: PathBuf, source: io::Error },
    /// Reading or writing the socket failed after connecting.
    Io(io::Error),
    /// The daemon did not answer in time.
    Timeout(Duration),
    /// The answer was not a valid response.
    Protocol(String),
    /// The daemon answered `{"ok":false,"error":...}`.
    Daemon(String),
}

/// `io::Error`'s display with the " (os error N)" suffix removed.
fn io_message(e: &io::Error) -> String {
    let s = e.to_string();
    match s.rfind(" (os error ") {
        Some(i) if s.ends_with(')') => s[..i].to_string(),
        _ => s,
    }
}

impl fmt::Display for ControlError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ControlError::Connect { path, source } => write!(
                f,
                "cannot reach mptun at {}: {} (is `mptun run` running?)",
                path.display(),
                io_message(source)
            ),
            ControlError::Io(e) => write!(f, "control socket: {}", io_message(e)),
            ControlError::Timeout(d) => {
                write!(f, "mptun did not answer within {:.1}s", d.as_secs_f64())
            }
            ControlError::Protocol(m) => write!(f, "bad answer from mptun: {m}"),
            ControlError::Daemon(m) => write!(f, "mptun: {m}"),
        }
    }
}

impl std::error::Error for ControlError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ControlError::Connect { source, .. } => Some(source),
            ControlError::Io(e) => Some(e),
            _ => None,
        }
    }
}

/// Sends one request to the daemon at `path` and returns its response (which may be
/// `ok: false`), within [`DEFAULT_CLIENT_TIMEOUT`].
pub async fn request(path: &Path, req: &Request) -> Result<Response, ControlError> {
    request_with_timeout(path, req, DEFAULT_CLIENT_TIMEOUT).await
}

/// [`request`] with an explicit timeout for the whole exchange.
pub async fn request_with_timeout(
    path: &Path,
    req: &Request,
    timeout: Duration,
) -> Result<Response, ControlError> {
    tokio::time::timeout(timeout, exchange(path, req))
        .await
        .unwrap_or(Err(ControlError::Timeout(timeout)))
}

async fn exchange(path: &Path, req: &Request) -> Result<Response, ControlError> {
    let stream = UnixStream::connect(path)
        .await
        .map_err(|source| ControlError::Connect {
            path: path.to_path_buf(),
            source,
        })?;
    let (read, mut write) = stream.into_split();
    let mut line = serde_json::to_vec(req).map_err(|e| ControlError::Protocol(e.to_string()))?;
    line.push(b'\n');
    write.write_all(&line).await.map_err(ControlError::Io)?;
    write.flush().await.map_err(ControlError::Io)?;

    let mut answer = Vec::new();
    BufReader::new(read)
        .take(MAX_RESPONSE as u64)
        .read_until(b'\n', &mut answer)
        .await
        .map_err(ControlError::Io)?;
    if answer.last() != Some(&b'\n') {
        return Err(ControlError::Protocol(if answer.is_empty() {
            "connection closed without an answer".into()
        } else {
            "incomplete answer".into()
        }));
    }
    serde_json::from_slice(&answer).map_err(|e| ControlError::Protocol(e.to_string()))
}

/// Asks the daemon at `path` for its status: what `mptun status` does.
pub async fn fetch_status(path: &Path) -> Result<Status, ControlError> {
    request(path, &Request::Status).await?.into_status()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::status::{counters_from, ServiceStatus};
    use std::sync::atomic::{AtomicU32, Ordering};

    /// A fresh, empty directory under the system temp dir.
    fn temp_dir(name: &str) -> PathBuf {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("mptun-ctl-{}-{n}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    fn sample_status() -> Status {
        Status {
            tun: "mptun0".into(),
            addresses: vec!["10.10.1.2".parse().unwrap()],
            uptime_s: 1.5,
            connections: vec![],
            services: vec![ServiceStatus {
                kind: "sink".into(),
                port: 9,
                connections: 2,
                bytes: 100,
                sha256: None,
            }],
            counters: counters_from(&Default::default()),
        }
    }

    async fn start(path: &Path) -> tokio::task::JoinHandle<()> {
        let server = ControlServer::bind(path).await.unwrap();
        tokio::spawn(server.serve(|req| match req {
            Request::Status => Response::status(sample_status()),
            Request::AddrDel { addr } if addr == "10.0.0.9" => Response::ok(),
            _ => Response::error("not here"),
        }))
    }

    /// Sends raw bytes and reads every line until the server closes.
    async fn raw_exchange(path: &Path, bytes: Vec<u8>) -> Vec<String> {
        let stream = UnixStream::connect(path).await.unwrap();
        let (read, mut write) = stream.into_split();
        // Write concurrently: the server may hang up before taking everything.
        let writer = tokio::spawn(async move {
            let _ = write.write_all(&bytes).await;
            let _ = write.shutdown().await;
            write
        });
        let mut out = String::new();
        tokio::time::timeout(
            Duration::from_secs(5),
            BufReader::new(read).read_to_string(&mut out),
        )
        .await
        .expect("server closes the connection")
        .unwrap();
        drop(writer.await);
        out.lines().map(str::to_owned).collect()
    }

    #[tokio::test]
    async fn status_request_is_answered_by_the_handler() {
        let dir = temp_dir("status");
        let path = dir.join("mptun0.sock");
        let task = start(&path).await;

        let resp = request(&path, &Request::Status).await.unwrap();
        assert!(resp.ok);
        assert_eq!(resp.status.as_deref(), Some(&sample_status()));
        assert_eq!(fetch_status(&path).await.unwrap(), sample_status());

        // The raw wire form: exact keys.
        let lines = raw_exchange(
            &path,
            b"{\"cmd\":\"status\"}\n\n{\"cmd\":\"status\"}\n".to_vec(),
        )
        .await;
        assert_eq!(lines.len(), 2, "{lines:?}");
        let v: serde_json::Value = serde_json::from_str(&lines[0]).unwrap();
        assert_eq!(v["ok"], true);
        assert_eq!(v["status"]["tun"], "mptun0");
        assert_eq!(v["status"]["services"][0]["bytes"], 100);
        assert!(v.get("error").is_none());

        task.abort();
        let _ = task.await;
        assert!(!path.exists(), "socket file removed when the server stops");
        let _ = std::fs::remove_dir_all(dir);
    }

    #[tokio::test]
    async fn addr_commands_carry_their_arguments() {
        let dir = temp_dir("addr");
        let path = dir.join("a.sock");
        let task = start(&path).await;
        let del = Request::AddrDel {
            addr: "10.0.0.9".into(),
        };
        assert!(request(&path, &del).await.unwrap().ok);
        let set = Request::AddrSet {
            addr: "10.0.0.9".into(),
            backup: true,
        };
        let resp = request(&path, &set).await.unwrap();
        assert!(!resp.ok);
        assert_eq!(resp.error.as_deref(), Some("not here"));
        let lines = raw_exchange(
            &path,
            b"{\"cmd\":\"addr_set\",\"addr\":\"10.0.0.9\"}\n".to_vec(),
        )
        .await;
        assert!(
            lines[0].contains("bad arguments to `addr_set`"),
            "{lines:?}"
        );
        task.abort();
        let _ = task.await;
        let _ = std::fs::remove_dir_all(dir);
    }

    #[tokio::test]
    async fn unknown_and_malformed_commands_get_errors() {
        let dir = temp_dir("unknown");
        let path = dir.join("c.sock");
        let task = start(&path).await;

        let lines = raw_exchange(
            &path,
            b"{\"cmd\":\"frobnicate\"}\nnot json\n{\"x\":1}\n{\"cmd\":\"status\"}\n".to_vec(),
        )
        .await;
        assert_eq!(lines.len(), 4, "{lines:?}");
        let v: Vec<serde_json::Value> = lines
            .iter()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(v[0]["ok"], false);
        let err = v[0]["error"].as_str().unwrap();
        assert!(err.contains("unknown command `frobnicate`"), "{err}");
        assert_eq!(v[1]["ok"], false);
        assert!(v[1]["error"]
            .as_str()
            .unwrap()
            .starts_with("malformed request"));
        assert_eq!(v[2]["ok"], false);
        assert!(v[2]["error"].as_str().unwrap().contains("missing \"cmd\""));
        assert_eq!(v[3]["ok"], true, "errors do not end the session");

        let resp = Response::error("nope");
        match resp.into_status() {
            Err(ControlError::Daemon(m)) => assert_eq!(m, "nope"),
            other => panic!("{other:?}"),
        }
        task.abort();
        let _ = std::fs::remove_dir_all(dir);
    }

    #[tokio::test]
    async fn oversized_request_gets_an_error_and_the_connection_closes() {
        let dir = temp_dir("big");
        let path = dir.join("c.sock");
        let task = start(&path).await;

        let mut big = b"{\"cmd\":\"status\",\"pad\":\"".to_vec();
        big.resize(MAX_REQUEST + 1000, b'x');
        big.extend_from_slice(b"\"}\n{\"cmd\":\"status\"}\n");
        let lines = raw_exchange(&path, big).await;
        assert_eq!(lines.len(), 1, "closed after the error: {lines:?}");
        let v: serde_json::Value = serde_json::from_str(&lines[0]).unwrap();
        assert_eq!(v["ok"], false);
        assert!(v["error"].as_str().unwrap().contains("too large"), "{v}");

        // A request of exactly the limit is still read.
        let mut max = b"{\"cmd\":\"status\",\"pad\":\"".to_vec();
        max.resize(MAX_REQUEST - 2, b'x');
        max.extend_from_slice(b"\"}\n");
        assert_eq!(max.len(), MAX_REQUEST + 1);
        let lines = raw_exchange(&path, max).await;
        assert_eq!(lines.len(), 1);
        let v: serde_json::Value = serde_json::from_str(&lines[0]).unwrap();
        assert_eq!(v["ok"], true, "{v}");

        task.abort();
        let _ = std::fs::remove_dir_all(dir);
    }

    #[tokio::test]
    async fn idle_client_is_disconnected() {
        let dir = temp_dir("idle");
        let path = dir.join("c.sock");
        let mut server = ControlServer::bind(&path).await.unwrap();
        server.set_read_timeout(Duration::from_millis(100));
        let task = tokio::spawn(server.serve(|_| Response::ok()));

        let mut stream = UnixStream::connect(&path).await.unwrap();
        stream.write_all(b"{\"cmd\":").await.unwrap();
        let mut buf = Vec::new();
        let n = tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut buf))
            .await
            .expect("server hangs up on an idle client")
            .unwrap();
        assert_eq!(n, 0);
        task.abort();
        let _ = std::fs::remove_dir_all(dir);
    }

    #[tokio::test]
    async fn stale_socket_file_is_replaced() {
        let dir = temp_dir("stale");
        let path = dir.join("c.sock");
        // A socket file nobody listens on, as a crashed daemon leaves behind.
        drop(std::os::unix::net::UnixListener::bind(&path).unwrap());
        assert!(path.exists());

        let task = start(&path).await;
        assert!(request(&path, &Request::Status).await.unwrap().ok);
        task.abort();
        let _ = std::fs::remove_dir_all(dir);
    }

    #[tokio::test]
    async fn a_regular_file_is_not_replaced() {
        let dir = temp_dir("file");
        let path = dir.join("c.sock");
        std::fs::write(&path, b"keep me").unwrap();
        let err = ControlServer::bind(&path).await.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::AlreadyExists);
        assert_eq!(std::fs::read(&path).unwrap(), b"keep me");
        let _ = std::fs::remove_dir_all(dir);
    }

    #[tokio::test]
    async fn second_server_on_a_live_socket_fails() {
        let dir = temp_dir("live");
        let path = dir.join("c.sock");
        let task = start(&path).await;

        let err = ControlServer::bind(&path).await.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::AddrInUse);
        assert_eq!(
            err.to_string(),
            format!("another mptun is running on {}", path.display())
        );
        // The first server is unharmed.
        assert!(request(&path, &Request::Status).await.unwrap().ok);
        task.abort();
        let _ = std::fs::remove_dir_all(dir);
    }

    #[tokio::test]
    async fn missing_parent_directory_is_created_0755_and_close_removes_the_socket() {
        let dir = temp_dir("parent");
        let path = dir.join("run").join("mptun").join("mptun0.sock");
        let server = ControlServer::bind(&path).await.unwrap();
        let mode = std::fs::metadata(path.parent().unwrap())
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o755);
        assert!(path.exists());
        assert_eq!(server.path(), path);
        server.close();
        assert!(!path.exists());
        let _ = std::fs::remove_dir_all(dir);
    }

    #[tokio::test]
    async fn client_without_a_daemon_says_so() {
        let dir = temp_dir("missing");
        let path = dir.join("mptun0.sock");
        let err = request(&path, &Request::Status).await.unwrap_err();
        assert!(matches!(err, ControlError::Connect { .. }), "{err:?}");
        assert_eq!(
            err.to_string(),
            format!(
                "cannot reach mptun at {}: No such file or directory (is `mptun run` running?)",
                path.display()
            )
        );

        // A stale socket: connection refused, same kind of error.
        drop(std::os::unix::net::UnixListener::bind(&path).unwrap());
        let err = fetch_status(&path).await.unwrap_err();
        assert!(matches!(err, ControlError::Connect { .. }), "{err:?}");
        assert!(err.to_string().contains("Connection refused"), "{err}");
        let _ = std::fs::remove_dir_all(dir);
    }

    #[tokio::test]
    async fn client_times_out_on_a_silent_daemon() {
        let dir = temp_dir("silent");
        let path = dir.join("c.sock");
        let _listener = UnixListener::bind(&path).unwrap(); // never accepts or answers
        let err = request_with_timeout(&path, &Request::Status, Duration::from_millis(100))
            .await
            .unwrap_err();
        assert!(matches!(err, ControlError::Timeout(_)), "{err:?}");
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn request_wire_form() {
        assert_eq!(
            serde_json::to_string(&Request::Status).unwrap(),
            r#"{"cmd":"status"}"#
        );
        assert_eq!(parse_request(br#"{"cmd":"status"}"#), Ok(Request::Status));
        assert_eq!(
            serde_json::to_string(&Response::error("x")).unwrap(),
            r#"{"ok":false,"error":"x"}"#
        );
        assert_eq!(
            serde_json::to_string(&Response::ok()).unwrap(),
            r#"{"ok":true}"#
        );
    }
}
