//! systemd's service notification protocol (`sd_notify(3)`), for `Type=notify`
//! units: `READY=1` once the daemon serves, `WATCHDOG=1` while its engines are
//! alive, `STOPPING=1` when a graceful shutdown begins.
//!
//! The protocol is one datagram of `KEY=VALUE` lines to the AF_UNIX socket
//! named by `NOTIFY_SOCKET` (a path, or `@name` in the abstract namespace), so
//! std's `UnixDatagram` does it in a few lines; without `NOTIFY_SOCKET` every
//! call here does nothing. A failed send never stops the daemon: it is logged
//! once (systemd may simply not be listening any more).

use std::os::unix::net::UnixDatagram;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use tracing::{debug, warn};

/// Where notifications go, if anywhere (`NOTIFY_SOCKET`).
pub struct Notifier {
    target: Option<Target>,
    /// A failure was logged already.
    failed: AtomicBool,
}

struct Target {
    socket: UnixDatagram,
    addr: std::os::unix::net::SocketAddr,
}

/// `NOTIFY_SOCKET`'s value as an address: `@name` is abstract (Linux), anything
/// else starting with `/` a path. Other forms (e.g. `vsock:`) are not ours.
pub fn parse_socket(value: &str) -> Result<std::os::unix::net::SocketAddr, String> {
    if let Some(name) = value.strip_prefix('@') {
        use std::os::linux::net::SocketAddrExt;
        return std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes())
            .map_err(|e| format!("NOTIFY_SOCKET {value}: {e}"));
    }
    if value.starts_with('/') {
        return std::os::unix::net::SocketAddr::from_pathname(value)
            .map_err(|e| format!("NOTIFY_SOCKET {value}: {e}"));
    }
    Err(format!(
        "NOTIFY_SOCKET {value}: not a path or @abstract name"
    ))
}

/// How often to send `WATCHDOG=1`: half of `WATCHDOG_USEC` (as systemd
/// advises), if the watchdog is on and meant for us (`WATCHDOG_PID` absent or
/// ours).
pub fn watchdog_interval(usec: Option<&str>, pid: Option<&str>, me: u32) -> Option<Duration> {
    if let Some(pid) = pid {
        if pid.trim().parse::<u32>().ok() != Some(me) {
            return None;
        }
    }
    let usec: u64 = usec?.trim().parse().ok()?;
    (usec > 0).then(|| Duration::from_micros(usec / 2))
}

/// The `READY=1` message: the main PID (so that systemd follows us even if it
/// started a wrapper) and a status line for `systemctl status`.
pub fn ready_message(pid: u32, status: &str) -> String {
    format!("READY=1\nMAINPID={pid}\nSTATUS={}\n", one_line(status))
}

/// The `RELOADING=1` message: systemd wants the time the reload began on
/// CLOCK_MONOTONIC, in microseconds, to tell it from an earlier one; `READY=1`
/// ends it.
pub fn reloading_message(monotonic_usec: u64, status: &str) -> String {
    format!(
        "RELOADING=1\nMONOTONIC_USEC={monotonic_usec}\nSTATUS={}\n",
        one_line(status)
    )
}

/// CLOCK_MONOTONIC now, in microseconds (0 if it cannot be read, which
/// Linux never does).
pub fn monotonic_usec() -> u64 {
    nix::time::clock_gettime(nix::time::ClockId::CLOCK_MONOTONIC).map_or(0, |t| {
        (t.tv_sec() as u64).saturating_mul(1_000_000) + (t.tv_nsec() as u64) / 1000
    })
}

/// The `STOPPING=1` message.
pub fn stopping_message(status: &str) -> String {
    format!("STOPPING=1\nSTATUS={}\n", one_line(status))
}

/// A STATUS value may not hold a newline (it would start another key).
fn one_line(s: &str) -> String {
    s.replace('\n', " ")
}

impl Notifier {
    /// From the environment; does nothing if `NOTIFY_SOCKET` is unset or bad.
    pub fn from_env() -> Notifier {
        let target = std::env::var("NOTIFY_SOCKET")
            .ok()
            .filter(|v| !v.is_empty())
            .and_then(|v| match Self::connect(&v) {
                Ok(t) => Some(t),
                Err(e) => {
                    warn!("service notifications off: {e}");
                    None
                }
            });
        Notifier {
            target,
            failed: AtomicBool::new(false),
        }
    }

    /// To the socket at `value` (as `NOTIFY_SOCKET` would name it), whatever
    /// the environment says.
    pub fn to(value: &str) -> Result<Notifier, String> {
        Ok(Notifier {
            target: Some(Self::connect(value)?),
            failed: AtomicBool::new(false),
        })
    }

    fn connect(value: &str) -> Result<Target, String> {
        let addr = parse_socket(value)?;
        let socket = UnixDatagram::unbound().map_err(|e| format!("NOTIFY_SOCKET: {e}"))?;
        // Sent from the async runtime's thread: a full queue at systemd's end
        // must not stall the engine (the message is dropped, as a lost ping).
        socket
            .set_nonblocking(true)
            .map_err(|e| format!("NOTIFY_SOCKET: {e}"))?;
        Ok(Target { socket, addr })
    }

    /// Whether notifications are sent at all.
    pub fn enabled(&self) -> bool {
        self.target.is_some()
    }

    /// The watchdog interval systemd asked of us, if any (and if we notify).
    pub fn watchdog(&self) -> Option<Duration> {
        if !self.enabled() {
            return None;
        }
        watchdog_interval(
            std::env::var("WATCHDOG_USEC").ok().as_deref(),
            std::env::var("WATCHDOG_PID").ok().as_deref(),
            std::process::id(),
        )
    }

    /// Send `message` (lines of `KEY=VALUE`); a failure is logged once.
    pub fn send(&self, message: &str) {
        let Some(t) = &self.target else { return };
        match t.socket.send_to_addr(message.as_bytes(), &t.addr) {
            Ok(_) => debug!(message = message.trim_end(), "service notification sent"),
            Err(e) => {
                if !self.failed.swap(true, Ordering::Relaxed) {
                    warn!("service notification failed (further failures not logged): {e}");
                }
            }
        }
    }

    pub fn ready(&self, status: &str) {
        self.send(&ready_message(std::process::id(), status));
    }

    /// A reload begins (`READY=1` ends it).
    pub fn reloading(&self, status: &str) {
        if self.enabled() {
            self.send(&reloading_message(monotonic_usec(), status));
        }
    }

    pub fn stopping(&self, status: &str) {
        self.send(&stopping_message(status));
    }

    pub fn watchdog_ping(&self) {
        self.send("WATCHDOG=1\n");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn watchdog_interval_is_half_of_watchdog_usec() {
        assert_eq!(
            watchdog_interval(Some("10000000"), None, 7),
            Some(Duration::from_secs(5))
        );
        assert_eq!(
            watchdog_interval(Some("3000000"), Some("7"), 7),
            Some(Duration::from_millis(1500))
        );
    }

    #[test]
    fn watchdog_is_off_when_absent_zero_bad_or_for_another_process() {
        assert_eq!(watchdog_interval(None, None, 7), None);
        assert_eq!(watchdog_interval(Some("0"), None, 7), None);
        assert_eq!(watchdog_interval(Some("5s"), None, 7), None);
        assert_eq!(watchdog_interval(Some("-1"), None, 7), None);
        assert_eq!(watchdog_interval(Some("1000000"), Some("8"), 7), None);
        assert_eq!(watchdog_interval(Some("1000000"), Some("x"), 7), None);
    }

    #[test]
    fn messages_are_key_value_lines() {
        assert_eq!(
            ready_message(42, "serving 10.0.0.1"),
            "READY=1\nMAINPID=42\nSTATUS=serving 10.0.0.1\n"
        );
        assert_eq!(
            reloading_message(1234567, "reloading"),
            "RELOADING=1\nMONOTONIC_USEC=1234567\nSTATUS=reloading\n"
        );
        assert_eq!(
            stopping_message("a\nb"),
            "STOPPING=1\nSTATUS=a b\n",
            "a newline in the status would start another key"
        );
    }

    #[test]
    fn socket_addresses_path_and_abstract() {
        use std::os::linux::net::SocketAddrExt;
        let a = parse_socket("@mptun/notify").unwrap();
        assert_eq!(a.as_abstract_name(), Some(&b"mptun/notify"[..]));
        let p = parse_socket("/run/systemd/notify").unwrap();
        assert_eq!(
            p.as_pathname(),
            Some(std::path::Path::new("/run/systemd/notify"))
        );
        assert!(parse_socket("vsock:2:1234").is_err());
        assert!(parse_socket("relative").is_err());
    }

    #[test]
    fn datagrams_reach_a_bound_socket_path_and_abstract() {
        let dir = std::env::temp_dir().join(format!("mptun-notify-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("n.sock");
        let _ = std::fs::remove_file(&path);
        let listener = UnixDatagram::bind(&path).unwrap();
        let n = Notifier {
            target: Some(Notifier::connect(path.to_str().unwrap()).unwrap()),
            failed: AtomicBool::new(false),
        };
        n.ready("up");
        n.watchdog_ping();
        let mut buf = [0u8; 256];
        let k = listener.recv(&mut buf).unwrap();
        let first = std::str::from_utf8(&buf[..k]).unwrap();
        assert!(first.starts_with("READY=1\nMAINPID="), "{first}");
        assert!(first.ends_with("STATUS=up\n"), "{first}");
        let k = listener.recv(&mut buf).unwrap();
        assert_eq!(&buf[..k], b"WATCHDOG=1\n");
        let _ = std::fs::remove_dir_all(&dir);

        use std::os::linux::net::SocketAddrExt;
        let name = format!("mptun-notify-test-{}", std::process::id());
        let addr = std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes()).unwrap();
        let listener = UnixDatagram::bind_addr(&addr).unwrap();
        let n = Notifier {
            target: Some(Notifier::connect(&format!("@{name}")).unwrap()),
            failed: AtomicBool::new(false),
        };
        n.reloading("again");
        let k = listener.recv(&mut buf).unwrap();
        let msg = std::str::from_utf8(&buf[..k]).unwrap();
        let usec: u64 = msg
            .strip_prefix("RELOADING=1\nMONOTONIC_USEC=")
            .and_then(|r| r.strip_suffix("\nSTATUS=again\n"))
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("{msg:?}"));
        // The same clock as std's Instant on Linux: a later reading is not smaller.
        assert!(usec > 0 && monotonic_usec() >= usec);
        n.stopping("bye");
        let k = listener.recv(&mut buf).unwrap();
        assert_eq!(&buf[..k], b"STOPPING=1\nSTATUS=bye\n");
    }

    #[test]
    fn a_send_to_nobody_fails_quietly() {
        let n = Notifier {
            target: Some(Notifier::connect("/nonexistent/mptun/notify.sock").unwrap()),
            failed: AtomicBool::new(false),
        };
        n.watchdog_ping();
        n.watchdog_ping();
        assert!(n.failed.load(Ordering::Relaxed));
    }
}
