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
//!
//! Access: the socket is mode 0600 (only the daemon's user may connect), or 0660
//! with the group of [`SocketAccess::group`] (`--control-group`). Each connection's
//! peer is identified with `SO_PEERCRED`: only root (uid 0) and the daemon's own uid
//! are *privileged*. Commands that change anything ([`Request::changes_state`]) are
//! refused to everyone else with `{"ok":false,"error":"permission denied: ..."}`
//! (logged at WARN with the peer's uid and pid); the handler learns who asks
//! ([`Caller`]) so that `status` can hide secrets (MPTCP keys) from them.
//!
//! The socket's directory is created if missing (each missing component mode 0755,
//! without following symbolic links), and refused if it, any directory above it, or
//! a file already at the socket's path is owned by someone other than root or the
//! daemon's user, or is writable by others (or by a group other than root's)
//! without the sticky bit; the socket's own directory must not be a symbolic link.

use std::fmt;
use std::fs::Metadata;
use std::io;
use std::os::unix::fs::{DirBuilderExt, FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::unix::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{UnixListener, UnixStream};
use tracing::warn;

use crate::monitor::{EventSender, MonitorLine, MAX_WATCHERS};
use crate::status::Status;
use std::sync::atomic::{AtomicUsize, Ordering};
use tokio::sync::broadcast;

/// Longest request line the server accepts, newline excluded.
pub const MAX_REQUEST: usize = 64 * 1024;
/// How long the server waits for (the rest of) a request line before hanging up.
pub const DEFAULT_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// How long the server waits for a response line (or a monitor's event) to
/// be taken by the client before hanging up: a client that sends requests
/// and never reads its answers holds no task and no snapshot for ever.
pub const WRITE_TIMEOUT: Duration = Duration::from_secs(10);
/// Connections from unprivileged callers (`--control-group` members) open at
/// once; more are told so and closed. Root and the daemon's user are not
/// counted: a group member cannot crowd them out.
pub const MAX_UNPRIVILEGED_CLIENTS: usize = 32;
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
    /// Stream path events (`mptun monitor`): an `ok` response, then one
    /// [`MonitorLine`] per line until the client hangs up.
    Monitor,
}

impl Request {
    /// The `cmd` values the server understands, for error messages.
    pub const COMMANDS: &'static [&'static str] =
        &["status", "addr_add", "addr_del", "addr_set", "monitor"];

    /// The request's `cmd` value.
    pub fn cmd(&self) -> &'static str {
        match self {
            Request::Status => "status",
            Request::AddrAdd { .. } => "addr_add",
            Request::AddrDel { .. } => "addr_del",
            Request::AddrSet { .. } => "addr_set",
            Request::Monitor => "monitor",
        }
    }

    /// Whether the request changes the daemon's state: only privileged callers
    /// (root or the daemon's user) may send it.
    pub fn changes_state(&self) -> bool {
        !matches!(self, Request::Status | Request::Monitor)
    }
}

/// A client's credentials, from `SO_PEERCRED` (as of its `connect`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Peer {
    pub uid: u32,
    pub gid: u32,
    /// Absent when the client is in another PID namespace.
    pub pid: Option<i32>,
}

/// Who sends a request, as the handler sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Caller {
    /// `None` if the credentials could not be read (then not privileged).
    pub peer: Option<Peer>,
    /// Root (uid 0) or the daemon's own uid: may change the daemon's state and see
    /// its secrets (MPTCP keys).
    pub privileged: bool,
}

impl Caller {
    /// The caller of a connection whose credentials are `peer`, privileged if its
    /// uid is one of `privileged_uids` (root's and the daemon's).
    pub fn from_peer(peer: Option<Peer>, privileged_uids: &[u32]) -> Self {
        Caller {
            peer,
            privileged: peer.is_some_and(|p| privileged_uids.contains(&p.uid)),
        }
    }
}

/// Who may connect to the control socket.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SocketAccess {
    /// `None`: mode 0600, the daemon's user only. `Some(gid)`: mode 0660 and this
    /// group, whose members may connect (read `status`, without secrets).
    pub group: Option<u32>,
}

impl SocketAccess {
    /// The socket file's permission bits.
    pub fn mode(&self) -> u32 {
        if self.group.is_some() {
            0o660
        } else {
            0o600
        }
    }
}

/// The effective uid and gid of this process (from `/proc/self/status`).
pub fn process_ids() -> io::Result<(u32, u32)> {
    let status = std::fs::read_to_string("/proc/self/status")?;
    let field = |name: &str| -> io::Result<u32> {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            // Real, effective, saved, filesystem: the second is the effective one.
            .and_then(|rest| rest.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
            .ok_or_else(|| io::Error::other(format!("no {name} line in /proc/self/status")))
    };
    Ok((field("Uid:")?, field("Gid:")?))
}

/// A group given by name or number (`--control-group`): its gid. Names are looked
/// up with `getent group` (so NSS sources such as LDAP count), falling back to
/// `/etc/group` where `getent` is missing.
pub fn resolve_group(group: &str) -> io::Result<u32> {
    if let Ok(gid) = group.parse::<u32>() {
        return Ok(gid);
    }
    let not_found = || io::Error::new(io::ErrorKind::NotFound, format!("no group named '{group}'"));
    let line = match std::process::Command::new("getent")
        .args(["group", "--", group])
        .output()
    {
        Ok(out) if out.status.success() => String::from_utf8_lossy(&out.stdout).into_owned(),
        Ok(_) => return Err(not_found()),
        Err(_) => std::fs::read_to_string("/etc/group")?
            .lines()
            .find(|l| l.split(':').next() == Some(group))
            .ok_or_else(not_found)?
            .to_string(),
    };
    // name:password:gid:members
    line.trim()
        .split(':')
        .nth(2)
        .and_then(|g| g.parse().ok())
        .ok_or_else(|| io::Error::other(format!("cannot read the gid of group '{group}'")))
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
    /// Callers with these uids are privileged: root and the daemon's own uid.
    privileged_uids: Vec<u32>,
    /// Where `monitor` requests subscribe, if the daemon publishes events.
    monitor: Option<EventSender>,
}

/// An `io::Error` of `kind` with `msg`.
fn refuse(kind: io::ErrorKind, msg: String) -> io::Error {
    io::Error::new(kind, msg)
}

/// `e` with the path it concerns in front.
fn at(path: &Path, e: io::Error) -> io::Error {
    io::Error::new(e.kind(), format!("{}: {}", path.display(), io_message(&e)))
}

/// `path` made absolute (relative to the working directory) and lexically
/// normalised (`.` dropped, `..` taking off the previous component), so that what
/// is checked is exactly what is bound.
fn normalize(path: &Path) -> io::Result<PathBuf> {
    let abs = if path.is_absolute() {
        path.to_path_buf()
    } else {
        std::env::current_dir()?.join(path)
    };
    let mut out = PathBuf::new();
    for c in abs.components() {
        match c {
            Component::ParentDir => {
                out.pop();
            }
            Component::CurDir => {}
            other => out.push(other),
        }
    }
    Ok(out)
}

/// A directory (or file) the control socket may depend on: owned by root or the
/// daemon's user, and not writable by others, nor by a group other than root's or
/// the daemon's, unless it has the sticky bit (like /tmp, where only a file's
/// owner may remove or rename it).
fn check_trusted(path: &Path, meta: &Metadata, uid: u32, gid: u32) -> io::Result<()> {
    let mode = meta.mode() & 0o7777;
    if meta.uid() != 0 && meta.uid() != uid {
        return Err(refuse(
            io::ErrorKind::PermissionDenied,
            format!(
                "{} is owned by uid {}, not by root or mptun's user (uid {uid}); refusing to use it",
                path.display(),
                meta.uid()
            ),
        ));
    }
    let sticky = mode & 0o1000 != 0;
    if !sticky && mode & 0o002 != 0 {
        return Err(refuse(
            io::ErrorKind::PermissionDenied,
            format!(
                "{} is writable by everyone (mode {mode:04o}) without the sticky bit; refusing to use it",
                path.display()
            ),
        ));
    }
    if !sticky && mode & 0o020 != 0 && meta.gid() != 0 && meta.gid() != gid {
        return Err(refuse(
            io::ErrorKind::PermissionDenied,
            format!(
                "{} is writable by group {} (mode {mode:04o}) without the sticky bit; refusing to use it",
                path.display(),
                meta.gid()
            ),
        ));
    }
    Ok(())
}

/// Every directory on the way to `dir`, itself included, is trusted
/// ([`check_trusted`]); missing ones are created (mode 0755, one at a time, never
/// through a symbolic link). `dir` itself must not be a symbolic link; one above it
/// (such as /var/run -> /run) is followed and where it leads checked as well.
fn prepare_dir(dir: &Path, uid: u32, gid: u32) -> io::Result<()> {
    let components: Vec<Component> = dir.components().collect();
    let mut cur = PathBuf::new();
    for (i, c) in components.iter().enumerate() {
        cur.push(c);
        let last = i + 1 == components.len();
        let meta = match std::fs::symlink_metadata(&cur) {
            Ok(m) => m,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                match std::fs::DirBuilder::new().mode(0o755).create(&cur) {
                    Ok(()) => {
                        // The mode above is filtered by the umask; the directory
                        // must be searchable so that --control-group members (and
                        // anyone, for sockets of their own) can reach the socket.
                        std::fs::set_permissions(&cur, std::fs::Permissions::from_mode(0o755))
                            .map_err(|e| at(&cur, e))?;
                    }
                    Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
                    Err(e) => {
                        return Err(io::Error::new(
                            e.kind(),
                            format!("cannot create {}: {}", cur.display(), io_message(&e)),
                        ))
                    }
                }
                std::fs::symlink_metadata(&cur).map_err(|e| at(&cur, e))?
            }
            Err(e) => return Err(at(&cur, e)),
        };
        if meta.file_type().is_symlink() {
            if last {
                return Err(refuse(
                    io::ErrorKind::PermissionDenied,
                    format!(
                        "{} is a symbolic link; the control socket's directory must be a real directory",
                        cur.display()
                    ),
                ));
            }
            // Only whoever may write the directory holding the link (checked
            // above) can change it; where it leads must be trusted too.
            let target = std::fs::canonicalize(&cur).map_err(|e| at(&cur, e))?;
            let mut p = PathBuf::new();
            for t in target.components() {
                p.push(t);
                let m = std::fs::metadata(&p).map_err(|e| at(&p, e))?;
                check_trusted(&p, &m, uid, gid)?;
            }
            continue;
        }
        if !meta.is_dir() {
            return Err(refuse(
                io::ErrorKind::NotADirectory,
                format!("{} is not a directory", cur.display()),
            ));
        }
        check_trusted(&cur, &meta, uid, gid)?;
    }
    Ok(())
}

/// Binds a listening socket at `path` with the mode and group of `access`, so that
/// it never exists there with other permissions: it is bound in a private
/// directory (mode 0700) next to `path`, given its mode and group, then hard-linked
/// into place (which fails if something appeared at `path` meanwhile).
fn bind_private(
    dir: &Path,
    path: &Path,
    access: SocketAccess,
    uid: u32,
) -> io::Result<UnixListener> {
    let tmp_dir = dir.join(format!(".mptun-{}", std::process::id()));
    // A leftover of an earlier process that had our pid.
    if let Ok(m) = std::fs::symlink_metadata(&tmp_dir) {
        if m.is_dir() && m.uid() == uid {
            let _ = std::fs::remove_dir_all(&tmp_dir);
        }
    }
    std::fs::DirBuilder::new()
        .mode(0o700)
        .create(&tmp_dir)
        .map_err(|e| at(&tmp_dir, e))?;
    let tmp = tmp_dir.join("s");
    let result = (|| {
        std::fs::set_permissions(&tmp_dir, std::fs::Permissions::from_mode(0o700))?;
        let listener = UnixListener::bind(&tmp)?;
        std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(access.mode()))?;
        if let Some(gid) = access.group {
            std::os::unix::fs::chown(&tmp, None, Some(gid)).map_err(|e| {
                io::Error::new(
                    e.kind(),
                    format!(
                        "cannot give the control socket to group {gid}: {}",
                        io_message(&e)
                    ),
                )
            })?;
        }
        match std::fs::hard_link(&tmp, path) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                return Err(refuse(
                    io::ErrorKind::AddrInUse,
                    format!(
                        "{} appeared while the control socket was being created (another mptun starting?)",
                        path.display()
                    ),
                ))
            }
            // A file system without hard links: rename instead.
            Err(_) => std::fs::rename(&tmp, path)?,
        }
        Ok(listener)
    })();
    let _ = std::fs::remove_file(&tmp);
    let _ = std::fs::remove_dir(&tmp_dir);
    result
}

impl ControlServer {
    /// Binds the control socket at `path`, mode 0600, or 0660 with the group of
    /// `access`.
    ///
    /// Creates the parent directory (mode 0755) if it is missing; refuses a
    /// directory on the way that someone other than root or the daemon's user could
    /// change (see [`prepare_dir`]'s rules in the module documentation). If a file
    /// is already at `path`: a symbolic link, or a socket owned by someone else, is
    /// refused (`PermissionDenied`); a file that is not a socket is left alone
    /// (`AlreadyExists`); for a socket, it connects first: if a daemon answers,
    /// fails with `AddrInUse` ("another mptun is running on PATH"); if nobody
    /// listens, the file is stale and is replaced.
    pub async fn bind(path: &Path, access: SocketAccess) -> io::Result<ControlServer> {
        let (uid, gid) = process_ids()?;
        let path = normalize(path)?;
        let (Some(dir), Some(_)) = (path.parent(), path.file_name()) else {
            return Err(refuse(
                io::ErrorKind::InvalidInput,
                format!("{} is not a path for a socket", path.display()),
            ));
        };
        prepare_dir(dir, uid, gid)?;

        match std::fs::symlink_metadata(&path) {
            Ok(meta) => {
                if meta.file_type().is_symlink() {
                    return Err(refuse(
                        io::ErrorKind::PermissionDenied,
                        format!(
                            "{} is a symbolic link; refusing to replace it",
                            path.display()
                        ),
                    ));
                }
                if !meta.file_type().is_socket() {
                    return Err(io::Error::new(
                        io::ErrorKind::AlreadyExists,
                        format!("{} exists and is not a socket", path.display()),
                    ));
                }
                if meta.uid() != 0 && meta.uid() != uid {
                    return Err(refuse(
                        io::ErrorKind::PermissionDenied,
                        format!(
                            "{} is a socket owned by uid {}, not by root or mptun's user (uid {uid}); refusing to replace it",
                            path.display(),
                            meta.uid()
                        ),
                    ));
                }
                match UnixStream::connect(&path).await {
                    Ok(_) => {
                        return Err(io::Error::new(
                            io::ErrorKind::AddrInUse,
                            format!("another mptun is running on {}", path.display()),
                        ))
                    }
                    Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => {
                        std::fs::remove_file(&path).or_else(|e| {
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
            Err(e) => return Err(at(&path, e)),
        }

        let listener = bind_private(dir, &path, access, uid).map_err(|e| {
            io::Error::new(
                e.kind(),
                format!(
                    "cannot bind control socket {}: {}",
                    path.display(),
                    io_message(&e)
                ),
            )
        })?;
        let identity = std::fs::symlink_metadata(&path)
            .ok()
            .map(|m| (m.dev(), m.ino()));
        let mut privileged_uids = vec![0, uid];
        privileged_uids.dedup();
        Ok(ControlServer {
            listener: Some(listener),
            path,
            identity,
            read_timeout: DEFAULT_READ_TIMEOUT,
            privileged_uids,
            monitor: None,
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
    /// removed). Each client gets its own task; `handler` answers each request
    /// (told who asks) and should be quick (it may lock the driver's state, but
    /// must not await). Requests that change state reach it only from privileged
    /// callers; the others get "permission denied".
    pub async fn serve<F>(mut self, handler: F)
    where
        F: Fn(&Caller, Request) -> Response + Send + Sync + 'static,
    {
        let handler = Arc::new(handler);
        let listener = self.listener.take().expect("listener present until closed");
        // Keep `self` alive (and so the socket file) for as long as we serve.
        let guard = self;
        let read_timeout = guard.read_timeout;
        let privileged_uids: Arc<[u32]> = guard.privileged_uids.clone().into();
        let monitor = Watch {
            events: guard.monitor.clone(),
            watchers: Arc::new(AtomicUsize::new(0)),
            unprivileged: Arc::new(AtomicUsize::new(0)),
        };
        let unprivileged = Arc::new(AtomicUsize::new(0));
        loop {
            match listener.accept().await {
                Ok((stream, _)) => {
                    let handler = Arc::clone(&handler);
                    let peer = stream.peer_cred().ok().map(|c| Peer {
                        uid: c.uid(),
                        gid: c.gid(),
                        pid: c.pid(),
                    });
                    let caller = Caller::from_peer(peer, &privileged_uids);
                    let uids = Arc::clone(&privileged_uids);
                    let monitor = monitor.clone();
                    let slot = (!caller.privileged)
                        .then(|| Slot::take(&unprivileged, MAX_UNPRIVILEGED_CLIENTS));
                    tokio::spawn(async move {
                        if let Some(None) = slot {
                            let resp = Response::error(format!(
                                "too many control clients (at most {MAX_UNPRIVILEGED_CLIENTS} unprivileged ones at once)"
                            ));
                            let (_, mut write) = stream.into_split();
                            let _ = write_response(&mut write, &resp).await;
                            return;
                        }
                        // A client that misbehaves or goes away only ends its own task.
                        let client = Client {
                            caller,
                            privileged_uids: &uids,
                            read_timeout,
                            monitor,
                        };
                        let _ = serve_client(stream, client, &*handler).await;
                    });
                }
                // Out of file descriptors or the like: back off instead of spinning.
                Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
            }
        }
    }

    /// Serve `monitor` requests from `events`.
    pub fn set_monitor(&mut self, events: EventSender) {
        self.monitor = Some(events);
    }

    /// Only callers with these uids are privileged (tests).
    #[cfg(test)]
    fn set_privileged_uids(&mut self, uids: Vec<u32>) {
        self.privileged_uids = uids;
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

/// Refusals logged at most this often (each one is answered anyway): a
/// group member repeating a refused command cannot flood the journal, whose
/// rate limit would then drop the daemon's other messages.
const DENIED_LOG_EVERY: Duration = Duration::from_secs(1);

/// Whether to log a refusal now, and how many went unlogged before it.
fn log_refusal() -> Option<u64> {
    use std::sync::Mutex;
    use std::time::Instant;
    static LAST: Mutex<(Option<Instant>, u64)> = Mutex::new((None, 0));
    let mut last = LAST.lock().unwrap_or_else(|e| e.into_inner());
    let now = Instant::now();
    if last
        .0
        .is_some_and(|t| now.duration_since(t) < DENIED_LOG_EVERY)
    {
        last.1 += 1;
        return None;
    }
    let unlogged = core::mem::take(&mut last.1);
    last.0 = Some(now);
    Some(unlogged)
}

/// The answer to a request `caller` may not send.
fn denied(req: &Request, caller: &Caller, privileged_uids: &[u32]) -> Response {
    let log = log_refusal();
    let who = match caller.peer {
        Some(p) => {
            if let Some(unlogged) = log {
                warn!(
                    uid = p.uid,
                    gid = p.gid,
                    pid = p.pid.unwrap_or(0),
                    cmd = req.cmd(),
                    unlogged,
                    "control socket: command refused to an unprivileged client"
                );
            }
            format!("you are uid {}", p.uid)
        }
        None => {
            if let Some(unlogged) = log {
                warn!(
                    cmd = req.cmd(),
                    unlogged, "control socket: command refused to a client without credentials"
                );
            }
            "your credentials are unknown".to_string()
        }
    };
    let uids: Vec<String> = privileged_uids.iter().map(u32::to_string).collect();
    Response::error(format!(
        "permission denied: `{}` changes the daemon and needs root or mptun's user (uid {}); {who}",
        req.cmd(),
        uids.join(" or ")
    ))
}

/// The event channel `monitor` requests subscribe to, and how many do
/// (all, and unprivileged ones).
#[derive(Clone)]
struct Watch {
    events: Option<EventSender>,
    watchers: Arc<AtomicUsize>,
    unprivileged: Arc<AtomicUsize>,
}

/// One of a bounded number of places, given back when dropped.
struct Slot(Arc<AtomicUsize>);

impl Slot {
    /// A place if fewer than `max` of `count`'s are taken.
    fn take(count: &Arc<AtomicUsize>, max: usize) -> Option<Slot> {
        if count.fetch_add(1, Ordering::SeqCst) >= max {
            count.fetch_sub(1, Ordering::SeqCst);
            return None;
        }
        Some(Slot(count.clone()))
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// One control client as the server sees it.
struct Client<'a> {
    caller: Caller,
    privileged_uids: &'a [u32],
    read_timeout: Duration,
    monitor: Watch,
}

async fn serve_client<F>(stream: UnixStream, client: Client<'_>, handler: &F) -> io::Result<()>
where
    F: Fn(&Caller, Request) -> Response,
{
    let Client {
        caller,
        privileged_uids,
        read_timeout,
        monitor,
    } = client;
    let (read, mut write) = stream.into_split();
    let mut reader = BufReader::new(read);
    let mut line = Vec::new();
    // A request must come within the read timeout of the last answer (or of
    // connecting): blank lines do not hold a connection open.
    let mut deadline = tokio::time::Instant::now() + read_timeout;
    loop {
        line.clear();
        // At most MAX_REQUEST bytes plus the newline; one byte more means too long.
        let mut limited = (&mut reader).take(MAX_REQUEST as u64 + 1);
        let n = match tokio::time::timeout_at(deadline, limited.read_until(b'\n', &mut line)).await
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
            Ok(req) if req.changes_state() && !caller.privileged => {
                denied(&req, &caller, privileged_uids)
            }
            Ok(Request::Monitor) => {
                return stream_events(reader, write, &monitor, caller.privileged).await
            }
            Ok(req) => handler(&caller, req),
            Err(msg) => Response::error(msg),
        };
        write_response(&mut write, &resp).await?;
        if !complete {
            return Ok(()); // EOF without a newline: answered the last request
        }
        deadline = tokio::time::Instant::now() + read_timeout;
    }
}

/// Answer `monitor`: `ok`, then every event as a line until the client hangs
/// up (anything else it sends is ignored) or the daemon stops. A client that
/// falls behind is told how many events it lost.
async fn stream_events<R, W>(
    mut reader: R,
    mut write: W,
    watch: &Watch,
    privileged: bool,
) -> io::Result<()>
where
    R: tokio::io::AsyncRead + Unpin,
    W: AsyncWriteExt + Unpin,
{
    let Some(events) = &watch.events else {
        let resp = Response::error("this daemon publishes no events");
        return write_response(&mut write, &resp).await;
    };
    let Some(_place) = Slot::take(&watch.watchers, MAX_WATCHERS) else {
        let resp = Response::error(format!("too many monitors (at most {MAX_WATCHERS})"));
        return write_response(&mut write, &resp).await;
    };
    // Half the places at most for unprivileged callers: the others stay
    // for root and the daemon's user.
    let mine = (!privileged).then(|| Slot::take(&watch.unprivileged, MAX_WATCHERS / 2));
    if let Some(None) = mine {
        let resp = Response::error(format!(
            "too many monitors (at most {} for unprivileged callers)",
            MAX_WATCHERS / 2
        ));
        return write_response(&mut write, &resp).await;
    }
    // Subscribed before `ok` goes out: nothing after it is missed.
    let mut rx = events.subscribe();
    write_response(&mut write, &Response::ok()).await?;
    let mut sink = [0u8; 256];
    loop {
        let line = tokio::select! {
            ev = rx.recv() => match ev {
                Ok(e) => MonitorLine::Event(Box::new((*e).clone())),
                Err(broadcast::error::RecvError::Lagged(n)) => MonitorLine::Lost { lost: n },
                Err(broadcast::error::RecvError::Closed) => return Ok(()),
            },
            r = reader.read(&mut sink) => match r {
                Ok(0) | Err(_) => return Ok(()),
                Ok(_) => continue,
            },
        };
        let mut out = serde_json::to_vec(&line).map_err(io::Error::other)?;
        out.push(b'\n');
        write_line(&mut write, &out).await?;
    }
}

async fn write_response<W: AsyncWriteExt + Unpin>(w: &mut W, resp: &Response) -> io::Result<()> {
    let mut out = serde_json::to_vec(resp).map_err(io::Error::other)?;
    out.push(b'\n');
    write_line(w, &out).await
}

/// Write a whole line within [`WRITE_TIMEOUT`], or fail.
async fn write_line<W: AsyncWriteExt + Unpin>(w: &mut W, line: &[u8]) -> io::Result<()> {
    let write = async {
        w.write_all(line).await?;
        w.flush().await
    };
    match tokio::time::timeout(WRITE_TIMEOUT, write).await {
        Ok(r) => r,
        Err(_) => Err(io::Error::new(
            io::ErrorKind::TimedOut,
            "control client takes no answers",
        )),
    }
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
            ControlError::Connect { path, source }
                if source.kind() == io::ErrorKind::PermissionDenied =>
            {
                write!(
                    f,
                    "cannot reach mptun at {}: {} (the control socket is for root and mptun's \
                     user, and for the group of `mptun run --control-group`)",
                    path.display(),
                    io_message(source)
                )
            }
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

/// Connect to the daemon at `path` and send `req`; the connection's halves.
async fn send_request(
    path: &Path,
    req: &Request,
) -> Result<(OwnedReadHalf, OwnedWriteHalf), ControlError> {
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
    Ok((read, write))
}

async fn exchange(path: &Path, req: &Request) -> Result<Response, ControlError> {
    let (read, _write) = send_request(path, req).await?;

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

/// `mptun monitor`: subscribe to the daemon's events at `path` and hand each
/// line to `on_line` until the daemon goes away (`Ok`) or `on_line` says
/// stop (false).
pub async fn monitor(
    path: &Path,
    mut on_line: impl FnMut(MonitorLine) -> bool,
) -> Result<(), ControlError> {
    // The write half stays open: closing it is how a watcher hangs up.
    let (read, _write) = tokio::time::timeout(
        DEFAULT_CLIENT_TIMEOUT,
        send_request(path, &Request::Monitor),
    )
    .await
    .map_err(|_| ControlError::Timeout(DEFAULT_CLIENT_TIMEOUT))??;
    let mut reader = BufReader::new(read);
    let mut first = Vec::new();
    tokio::time::timeout(DEFAULT_CLIENT_TIMEOUT, reader.read_until(b'\n', &mut first))
        .await
        .map_err(|_| ControlError::Timeout(DEFAULT_CLIENT_TIMEOUT))?
        .map_err(ControlError::Io)?;
    let resp: Response = serde_json::from_slice(&first).map_err(|e| {
        ControlError::Protocol(if first.is_empty() {
            "connection closed without an answer".into()
        } else {
            e.to_string()
        })
    })?;
    if !resp.ok {
        return Err(ControlError::Daemon(
            resp.error.unwrap_or_else(|| "unspecified error".into()),
        ));
    }
    let mut buf = Vec::new();
    loop {
        buf.clear();
        let n = (&mut reader)
            .take(MAX_REQUEST as u64)
            .read_until(b'\n', &mut buf)
            .await
            .map_err(ControlError::Io)?;
        if n == 0 {
            return Ok(());
        }
        let l: MonitorLine =
            serde_json::from_slice(&buf).map_err(|e| ControlError::Protocol(e.to_string()))?;
        if !on_line(l) {
            return Ok(());
        }
    }
}

/// Asks the daemon at `path` for its status: what `mptun status` does.
pub async fn fetch_status(path: &Path) -> Result<Status, ControlError> {
    request(path, &Request::Status).await?.into_status()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::status::{counters_from, MemoryStatus, ServiceStatus};
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
            shards: Vec::new(),
            limits: Default::default(),
            reload: None,
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
            keys_redacted: false,
            memory: MemoryStatus::default(),
            paths: vec![],
            relays: Default::default(),
        }
    }

    async fn start(path: &Path) -> tokio::task::JoinHandle<()> {
        let server = ControlServer::bind(path, SocketAccess::default())
            .await
            .unwrap();
        tokio::spawn(server.serve(|_, req| match req {
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
        let mut server = ControlServer::bind(&path, SocketAccess::default())
            .await
            .unwrap();
        server.set_read_timeout(Duration::from_millis(100));
        let task = tokio::spawn(server.serve(|_, _| Response::ok()));

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

    /// Found by review: blank lines reset the read timeout, so a client
    /// sending one every few seconds held its connection for ever.
    #[tokio::test]
    async fn blank_lines_do_not_hold_a_connection_open() {
        let dir = temp_dir("blank");
        let path = dir.join("c.sock");
        let mut server = ControlServer::bind(&path, SocketAccess::default())
            .await
            .unwrap();
        server.set_read_timeout(Duration::from_millis(200));
        let task = tokio::spawn(server.serve(|_, _| Response::ok()));
        let mut stream = UnixStream::connect(&path).await.unwrap();
        let closed = tokio::time::timeout(Duration::from_secs(5), async {
            loop {
                tokio::time::sleep(Duration::from_millis(50)).await;
                if stream.write_all(b"\n").await.is_err() {
                    return;
                }
                let mut b = [0u8; 1];
                if let Ok(Ok(0)) =
                    tokio::time::timeout(Duration::from_millis(1), stream.read(&mut b)).await
                {
                    return;
                }
            }
        })
        .await;
        assert!(closed.is_ok(), "blank lines kept the connection open");
        task.abort();
        let _ = std::fs::remove_dir_all(dir);
    }

    /// Found by review: any number of connections from a `--control-group`
    /// member each held a task and a descriptor. Unprivileged ones are
    /// bounded; the daemon's user (this test, here privileged) is not.
    #[tokio::test]
    async fn unprivileged_clients_are_bounded() {
        let dir = temp_dir("many");
        let path = dir.join("c.sock");
        let mut server = ControlServer::bind(&path, SocketAccess::default())
            .await
            .unwrap();
        server.set_privileged_uids(vec![]);
        let task = tokio::spawn(server.serve(|_, _| Response::status(sample_status())));
        let status = b"{\"cmd\":\"status\"}\n";
        let mut held = Vec::new();
        for _ in 0..MAX_UNPRIVILEGED_CLIENTS {
            let stream = UnixStream::connect(&path).await.unwrap();
            let (read, mut write) = stream.into_split();
            write.write_all(status).await.unwrap();
            let mut reader = BufReader::new(read);
            let mut line = String::new();
            reader.read_line(&mut line).await.unwrap();
            assert!(line.contains("\"ok\":true"), "{line}");
            held.push((reader, write));
        }
        // The next is told so, before it even asks.
        let mut refused = String::new();
        let mut stream = UnixStream::connect(&path).await.unwrap();
        let _ = stream.read_to_string(&mut refused).await;
        assert!(refused.contains("too many control clients"), "{refused}");
        // One goes: its place is free again.
        drop(held.pop());
        let ok = tokio::time::timeout(Duration::from_secs(5), async {
            loop {
                let mut stream = UnixStream::connect(&path).await.unwrap();
                let _ = stream.write_all(status).await;
                let mut line = String::new();
                let _ = BufReader::new(stream).read_line(&mut line).await;
                if line.contains("\"ok\":true") {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
        .await;
        assert!(ok.is_ok(), "the freed place was not given back");
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
        let err = ControlServer::bind(&path, SocketAccess::default())
            .await
            .unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::AlreadyExists);
        assert_eq!(std::fs::read(&path).unwrap(), b"keep me");
        let _ = std::fs::remove_dir_all(dir);
    }

    #[tokio::test]
    async fn second_server_on_a_live_socket_fails() {
        let dir = temp_dir("live");
        let path = dir.join("c.sock");
        let task = start(&path).await;

        let err = ControlServer::bind(&path, SocketAccess::default())
            .await
            .unwrap_err();
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
        let server = ControlServer::bind(&path, SocketAccess::default())
            .await
            .unwrap();
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

    /// Mode bits of `path` (not following a symbolic link).
    fn mode_of(path: &Path) -> u32 {
        std::fs::symlink_metadata(path).unwrap().mode() & 0o7777
    }

    #[tokio::test]
    async fn socket_is_0600_by_default_and_0660_with_a_group() {
        let dir = temp_dir("modes");
        let path = dir.join("a.sock");
        let server = ControlServer::bind(&path, SocketAccess::default())
            .await
            .unwrap();
        assert_eq!(mode_of(&path), 0o600);
        server.close();

        let (_, gid) = process_ids().unwrap();
        let access = SocketAccess { group: Some(gid) };
        let server = ControlServer::bind(&path, access).await.unwrap();
        assert_eq!(mode_of(&path), 0o660);
        assert_eq!(std::fs::metadata(&path).unwrap().gid(), gid);
        // Served through the final name; nothing left of the private directory.
        let task = tokio::spawn(server.serve(|_, _| Response::ok()));
        assert!(request(&path, &Request::Status).await.unwrap().ok);
        let names: Vec<_> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["a.sock"]);
        task.abort();
        let _ = std::fs::remove_dir_all(dir);
    }

    #[tokio::test]
    async fn unsafe_directories_and_links_are_refused() {
        let dir = temp_dir("unsafe");
        let open = dir.join("open");
        std::fs::create_dir(&open).unwrap();
        std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o777)).unwrap();
        let err = ControlServer::bind(&open.join("c.sock"), SocketAccess::default())
            .await
            .unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::PermissionDenied);
        assert!(
            err.to_string()
                .contains("writable by everyone (mode 0777) without the sticky bit"),
            "{err}"
        );
        // Also when the socket is further down: nothing is created below it.
        let err = ControlServer::bind(&open.join("x").join("c.sock"), SocketAccess::default())
            .await
            .unwrap_err();
        assert!(err.to_string().contains("writable by everyone"), "{err}");
        assert!(!open.join("x").exists());

        // With the sticky bit (like /tmp) it is fine.
        std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o1777)).unwrap();
        ControlServer::bind(&open.join("c.sock"), SocketAccess::default())
            .await
            .unwrap()
            .close();

        // The socket's directory must not be a symbolic link.
        let real = dir.join("real");
        std::fs::create_dir(&real).unwrap();
        let link = dir.join("link");
        std::os::unix::fs::symlink(&real, &link).unwrap();
        let err = ControlServer::bind(&link.join("c.sock"), SocketAccess::default())
            .await
            .unwrap_err();
        assert!(err.to_string().contains("is a symbolic link"), "{err}");
        assert!(std::fs::read_dir(&real).unwrap().next().is_none());
        // A directory above it may be (e.g. /var/run -> /run), if where it leads
        // is trusted.
        std::fs::create_dir(real.join("sub")).unwrap();
        ControlServer::bind(&link.join("sub").join("c.sock"), SocketAccess::default())
            .await
            .unwrap()
            .close();

        // A symbolic link at the socket's path, dangling or not, is not replaced.
        let sock = real.join("c.sock");
        for target in [dir.join("nowhere"), dir.join("victim")] {
            let _ = std::fs::remove_file(&sock);
            std::os::unix::fs::symlink(&target, &sock).unwrap();
            let err = ControlServer::bind(&sock, SocketAccess::default())
                .await
                .unwrap_err();
            assert!(err.to_string().contains("is a symbolic link"), "{err}");
            assert!(std::fs::symlink_metadata(&sock)
                .unwrap()
                .file_type()
                .is_symlink());
        }
        assert!(!dir.join("nowhere").exists());
        let _ = std::fs::remove_dir_all(dir);
    }

    #[tokio::test]
    async fn paths_owned_by_someone_else_are_refused() {
        if process_ids().unwrap().0 != 0 {
            eprintln!("skipped: needs root to give files away");
            return;
        }
        let dir = temp_dir("owner");
        let theirs = dir.join("theirs");
        std::fs::create_dir(&theirs).unwrap();
        std::os::unix::fs::chown(&theirs, Some(65534), Some(65534)).unwrap();
        let err = ControlServer::bind(&theirs.join("c.sock"), SocketAccess::default())
            .await
            .unwrap_err();
        assert!(err.to_string().contains("is owned by uid 65534"), "{err}");

        // A stale socket someone else left is not replaced either.
        let sock = dir.join("c.sock");
        drop(std::os::unix::net::UnixListener::bind(&sock).unwrap());
        std::os::unix::fs::chown(&sock, Some(65534), None).unwrap();
        let err = ControlServer::bind(&sock, SocketAccess::default())
            .await
            .unwrap_err();
        assert!(
            err.to_string().contains("socket owned by uid 65534"),
            "{err}"
        );
        assert!(sock.exists());

        // A group-writable directory of another group (not root's, not ours).
        let shared = dir.join("shared");
        std::fs::create_dir(&shared).unwrap();
        std::os::unix::fs::chown(&shared, None, Some(65534)).unwrap();
        std::fs::set_permissions(&shared, std::fs::Permissions::from_mode(0o775)).unwrap();
        let err = ControlServer::bind(&shared.join("c.sock"), SocketAccess::default())
            .await
            .unwrap_err();
        assert!(err.to_string().contains("writable by group 65534"), "{err}");
        let _ = std::fs::remove_dir_all(dir);
    }

    #[tokio::test]
    async fn unprivileged_callers_read_but_cannot_change() {
        let dir = temp_dir("priv");
        let path = dir.join("c.sock");
        let mut server = ControlServer::bind(&path, SocketAccess::default())
            .await
            .unwrap();
        // Nobody is privileged, so this test's own process is not either.
        server.set_privileged_uids(vec![]);
        let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
        let s = seen.clone();
        let task = tokio::spawn(server.serve(move |caller, req| {
            s.lock().unwrap().push((caller.privileged, req.cmd()));
            Response::ok()
        }));
        assert!(request(&path, &Request::Status).await.unwrap().ok);
        for req in [
            Request::AddrAdd {
                addr: "10.0.0.9".into(),
            },
            Request::AddrDel {
                addr: "10.0.0.9".into(),
            },
            Request::AddrSet {
                addr: "10.0.0.9".into(),
                backup: true,
            },
        ] {
            let resp = request(&path, &req).await.unwrap();
            assert!(!resp.ok);
            let e = resp.error.unwrap();
            let (uid, _) = process_ids().unwrap();
            assert!(
                e.starts_with(&format!("permission denied: `{}`", req.cmd())),
                "{e}"
            );
            assert!(e.contains(&format!("you are uid {uid}")), "{e}");
        }
        // The handler saw the status request only, from an unprivileged caller.
        assert_eq!(*seen.lock().unwrap(), [(false, "status")]);
        task.abort();
        let _ = task.await;

        // By default the daemon's own uid is privileged.
        let server = ControlServer::bind(&path, SocketAccess::default())
            .await
            .unwrap();
        let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
        let s = seen.clone();
        let task = tokio::spawn(server.serve(move |caller, req| {
            s.lock().unwrap().push((caller.privileged, req.cmd()));
            Response::ok()
        }));
        let del = Request::AddrDel {
            addr: "10.0.0.9".into(),
        };
        assert!(request(&path, &del).await.unwrap().ok);
        assert_eq!(*seen.lock().unwrap(), [(true, "addr_del")]);
        task.abort();
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn callers_and_groups() {
        let peer = |uid| {
            Some(Peer {
                uid,
                gid: uid,
                pid: Some(1),
            })
        };
        assert!(Caller::from_peer(peer(0), &[0, 1000]).privileged);
        assert!(Caller::from_peer(peer(1000), &[0, 1000]).privileged);
        assert!(!Caller::from_peer(peer(65534), &[0, 1000]).privileged);
        assert!(!Caller::from_peer(None, &[0, 1000]).privileged);
        assert!(Request::AddrAdd { addr: "x".into() }.changes_state());
        assert!(!Request::Status.changes_state());
        for cmd in Request::COMMANDS {
            assert!(parse_request(
                format!("{{\"cmd\":\"{cmd}\",\"addr\":\"x\",\"backup\":true}}").as_bytes()
            )
            .is_ok_and(|r| r.cmd() == *cmd));
        }

        assert_eq!(resolve_group("0").unwrap(), 0);
        assert_eq!(resolve_group("root").unwrap(), 0);
        let e = resolve_group("no-such-group-mptun").unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::NotFound);
        assert_eq!(e.to_string(), "no group named 'no-such-group-mptun'");

        let (uid, gid) = process_ids().unwrap();
        let dir = temp_dir("ids");
        let m = std::fs::metadata(&dir).unwrap();
        assert_eq!((m.uid(), m.gid()), (uid, gid));
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

#[cfg(test)]
mod monitor_tests {
    use super::*;
    use crate::monitor::{channel, MonitorEvent};

    fn event(n: u64) -> Arc<MonitorEvent> {
        let line = format!(r#"{{"time_ms":{n},"event":"CLOSED","token":"00000001","shard":0}}"#);
        Arc::new(serde_json::from_str(&line).unwrap())
    }

    async fn serving(name: &str, events: Option<EventSender>) -> PathBuf {
        serving_as(name, events, true).await
    }

    /// `privileged`: whether this test's process is (else nobody is).
    async fn serving_as(name: &str, events: Option<EventSender>, privileged: bool) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("mptun-mon-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("m.sock");
        let mut server = ControlServer::bind(&path, SocketAccess::default())
            .await
            .unwrap();
        if let Some(tx) = events {
            server.set_monitor(tx);
        }
        if !privileged {
            server.set_privileged_uids(vec![]);
        }
        tokio::spawn(server.serve(|_, _| Response::error("not here")));
        path
    }

    /// Runs `mptun monitor`'s client until it has `n` lines.
    fn watch(path: PathBuf, n: usize) -> tokio::task::JoinHandle<Vec<MonitorLine>> {
        tokio::spawn(async move {
            let mut got = Vec::new();
            monitor(&path, |l| {
                got.push(l);
                got.len() < n
            })
            .await
            .unwrap();
            got
        })
    }

    async fn until_watched(tx: &EventSender, watchers: usize) {
        while tx.receiver_count() < watchers {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    #[tokio::test]
    async fn events_stream_to_every_watcher_in_order() {
        let tx = channel();
        let path = serving("order", Some(tx.clone())).await;
        let a = watch(path.clone(), 3);
        let b = watch(path, 3);
        until_watched(&tx, 2).await;
        for n in 1..=3 {
            tx.send(event(n)).unwrap();
        }
        for w in [a, b] {
            let got = w.await.unwrap();
            let times: Vec<u64> = got
                .iter()
                .map(|l| match l {
                    MonitorLine::Event(e) => e.time_ms,
                    other => panic!("{other:?}"),
                })
                .collect();
            assert_eq!(times, [1, 2, 3]);
        }
        // Both watchers hung up: the server let go of their subscriptions.
        tokio::time::timeout(Duration::from_secs(5), until_gone(&tx))
            .await
            .expect("subscriptions dropped");
    }

    async fn until_gone(tx: &EventSender) {
        while tx.receiver_count() > 0 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    #[tokio::test]
    async fn a_watcher_that_falls_behind_is_told_how_much_it_lost() {
        let tx = channel();
        let path = serving("lag", Some(tx.clone())).await;
        // Subscribe by hand and send everything before reading a line.
        let stream = UnixStream::connect(&path).await.unwrap();
        let (read, mut write) = stream.into_split();
        write.write_all(b"{\"cmd\":\"monitor\"}\n").await.unwrap();
        let mut reader = BufReader::new(read);
        let mut first = String::new();
        reader.read_line(&mut first).await.unwrap();
        assert_eq!(first.trim(), r#"{"ok":true}"#);
        let extra = 10;
        for n in 0..(crate::monitor::MONITOR_BACKLOG as u64 + extra) {
            tx.send(event(n)).unwrap();
        }
        let mut line = String::new();
        reader.read_line(&mut line).await.unwrap();
        assert_eq!(
            serde_json::from_str::<MonitorLine>(&line).unwrap(),
            MonitorLine::Lost { lost: extra }
        );
    }

    #[tokio::test]
    async fn watchers_are_bounded_and_a_daemon_without_events_says_so() {
        let path = serving("none", None).await;
        let e = monitor(&path, |_| true).await.unwrap_err();
        assert!(e.to_string().contains("publishes no events"), "{e}");

        let tx = channel();
        let path = serving("many", Some(tx.clone())).await;
        let held: Vec<_> = (0..MAX_WATCHERS).map(|_| watch(path.clone(), 1)).collect();
        until_watched(&tx, MAX_WATCHERS).await;
        let e = monitor(&path, |_| true).await.unwrap_err();
        assert!(e.to_string().contains("too many monitors"), "{e}");
        tx.send(event(1)).unwrap();
        for h in held {
            h.await.unwrap();
        }
    }

    /// Found by review: a group member could hold every monitor place, and
    /// root's `mptun monitor` was refused. Unprivileged callers get half.
    #[tokio::test]
    async fn unprivileged_watchers_leave_places_for_the_others() {
        let tx = channel();
        let path = serving_as("half", Some(tx.clone()), false).await;
        let held: Vec<_> = (0..MAX_WATCHERS / 2)
            .map(|_| watch(path.clone(), 1))
            .collect();
        until_watched(&tx, MAX_WATCHERS / 2).await;
        let e = monitor(&path, |_| true).await.unwrap_err();
        assert!(e.to_string().contains("for unprivileged callers"), "{e}");
        tx.send(event(1)).unwrap();
        for h in held {
            h.await.unwrap();
        }
    }
}
