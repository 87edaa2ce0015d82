//! `mptun monitor`: the engines' path events (`Stack::poll_path_event`) as
//! lines for whoever watches through the control socket, named and laid out
//! as `ip mptcp monitor` prints Linux's where they overlap.
//!
//! Every shard hands its events to one broadcast channel; a watcher that
//! falls more than [`MONITOR_BACKLOG`] events behind is told how many it
//! lost instead of holding the daemon's memory.

use mptun_stack::{LocalReset, PathEvent, PathEventKind, SubflowEnd, SubflowRef};
use serde::{Deserialize, Serialize};
use std::fmt::Write as _;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};
use tokio::sync::broadcast;

/// Events a watcher may lag behind before it loses some.
pub const MONITOR_BACKLOG: usize = 1024;
/// Watchers at once (each is a control-socket client of root, mptun's user
/// or `--control-group`).
pub const MAX_WATCHERS: usize = 32;

pub type EventSender = broadcast::Sender<Arc<MonitorEvent>>;

/// The channel every shard sends into.
pub fn channel() -> EventSender {
    broadcast::channel(MONITOR_BACKLOG).0
}

/// One event as the monitor prints it. Fields absent from an event are
/// left out of its JSON.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MonitorEvent {
    /// Milliseconds since the Unix epoch.
    pub time_ms: u64,
    /// `CREATED`, `ESTABLISHED`, `CLOSED`, `ANNOUNCED`, `REMOVED`,
    /// `LOCAL_ANNOUNCED`, `LOCAL_REMOVED`, `SF_ESTABLISHED`, `SF_CLOSED`,
    /// `SF_PRIORITY`, `FALLBACK`, `MP_FAIL`.
    pub event: String,
    /// The connection's MPTCP token (ours), as Linux prints it.
    pub token: String,
    /// The engine shard holding the connection.
    pub shard: usize,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remid: Option<u8>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub locid: Option<u8>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub saddr: Option<IpAddr>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub daddr: Option<IpAddr>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sport: Option<u16>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dport: Option<u16>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backup: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server_side: Option<bool>,
    /// SF_CLOSED: the errno Linux would report (0 for a clean close).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<u32>,
    /// SF_CLOSED: the MP_TCPRST reason code sent or received.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reset_reason: Option<u8>,
    /// MP_FAIL: whether we sent it (else the peer did).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sent: Option<bool>,
    /// Why, in words (SF_CLOSED, FALLBACK).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// What the control socket streams to a watcher: an event, or how many it
/// missed by falling behind.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum MonitorLine {
    Lost { lost: u64 },
    Event(Box<MonitorEvent>),
}

impl MonitorEvent {
    fn new(shard: usize, e: &PathEvent, at: SystemTime) -> Self {
        MonitorEvent {
            time_ms: at
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_millis() as u64),
            event: e.kind.name().to_string(),
            token: format!("{:08x}", e.token),
            shard,
            remid: None,
            locid: None,
            saddr: None,
            daddr: None,
            sport: None,
            dport: None,
            backup: None,
            server_side: None,
            error: None,
            reset_reason: None,
            sent: None,
            reason: None,
        }
    }

    fn with_ends(mut self, local: SocketAddr, remote: SocketAddr) -> Self {
        self.saddr = Some(local.ip());
        self.daddr = Some(remote.ip());
        self.sport = Some(local.port());
        self.dport = Some(remote.port());
        self
    }

    fn with_subflow(self, sf: &SubflowRef) -> Self {
        let mut e = self.with_ends(sf.local, sf.remote);
        e.locid = Some(sf.local_id);
        e.remid = Some(sf.remote_id);
        e.backup = Some(sf.backup);
        e
    }

    /// Shard `shard`'s event `e`, seen at `at`.
    pub fn from_path_event(shard: usize, e: &PathEvent, at: SystemTime) -> Self {
        let base = MonitorEvent::new(shard, e, at);
        match e.kind {
            PathEventKind::Created {
                local,
                remote,
                server_side,
            }
            | PathEventKind::Established {
                local,
                remote,
                server_side,
            } => {
                let mut m = base.with_ends(local, remote);
                m.locid = Some(0);
                m.remid = Some(0);
                m.server_side = Some(server_side);
                m
            }
            PathEventKind::Closed => base,
            PathEventKind::Announced { id, addr, port } => MonitorEvent {
                remid: Some(id),
                daddr: Some(addr),
                dport: port,
                ..base
            },
            PathEventKind::Removed { id } => MonitorEvent {
                remid: Some(id),
                ..base
            },
            PathEventKind::LocalAnnounced { id, addr } => MonitorEvent {
                locid: Some(id),
                saddr: Some(addr),
                ..base
            },
            PathEventKind::LocalRemoved { id } => MonitorEvent {
                locid: Some(id),
                ..base
            },
            PathEventKind::SubflowEstablished(sf) | PathEventKind::SubflowPriority(sf) => {
                base.with_subflow(&sf)
            }
            PathEventKind::SubflowClosed { subflow, end } => {
                let mut m = base.with_subflow(&subflow);
                m.error = Some(end.errno());
                m.reset_reason = end.reset_reason();
                m.reason = Some(describe_end(end));
                m
            }
            PathEventKind::Fallback { reason } => MonitorEvent {
                reason: Some(reason.to_string()),
                ..base
            },
            PathEventKind::MpFail { sent } => MonitorEvent {
                sent: Some(sent),
                ..base
            },
        }
    }

    /// One line as `ip mptcp monitor` prints it: the event name right-aligned
    /// in brackets, then `key=value` fields (`saddr4`/`saddr6` by family).
    pub fn to_text(&self) -> String {
        // iproute2's width; our longer names (LOCAL_ANNOUNCED) overflow it.
        let mut s = format!("[{:>14}] token={}", self.event, self.token);
        let mut field = |k: &str, v: &dyn std::fmt::Display| {
            let _ = write!(s, " {k}={v}");
        };
        if let Some(v) = self.remid {
            field("remid", &v);
        }
        if let Some(v) = self.locid {
            field("locid", &v);
        }
        for (name, a) in [("saddr", self.saddr), ("daddr", self.daddr)] {
            if let Some(a) = a {
                let fam = if a.is_ipv4() { "4" } else { "6" };
                field(&format!("{name}{fam}"), &a);
            }
        }
        if let Some(v) = self.sport {
            field("sport", &v);
        }
        if let Some(v) = self.dport {
            field("dport", &v);
        }
        if let Some(v) = self.backup {
            field("backup", &u8::from(v));
        }
        if let Some(v) = self.error {
            field("error", &v);
        }
        if let Some(v) = self.reset_reason {
            field("reset_reason", &v);
        }
        if let Some(v) = self.sent {
            field("sent", &u8::from(v));
        }
        if self.server_side == Some(true) {
            s.push_str(" server_side");
        }
        if let Some(r) = &self.reason {
            let _ = write!(s, " reason=\"{r}\"");
        }
        s
    }
}

/// A subflow's end in words.
pub fn describe_end(end: SubflowEnd) -> String {
    let code = |r: Option<u8>| r.map_or(String::new(), |r| format!(" (MP_TCPRST {})", rst_name(r)));
    match end {
        SubflowEnd::Closed => "closed".into(),
        SubflowEnd::ResetByPeer { reason } => format!("reset by the peer{}", code(reason)),
        SubflowEnd::Refused { reason } => format!("join refused by the peer{}", code(reason)),
        SubflowEnd::TimedOut => "timed out".into(),
        SubflowEnd::Unreachable => "destination unreachable".into(),
        SubflowEnd::Reset(LocalReset::MptcpError(r)) => {
            format!("reset by us: MPTCP error{}", code(Some(r)))
        }
        SubflowEnd::Reset(why) => format!("reset by us: {}", why.as_str()),
        SubflowEnd::Aborted => "aborted".into(),
    }
}

/// RFC 8684 §3.6's names for MP_TCPRST reason codes.
fn rst_name(code: u8) -> String {
    let name = match code {
        0 => "unspecified",
        1 => "MPTCP-specific error",
        2 => "lack of resources",
        3 => "administratively prohibited",
        4 => "too much outstanding data",
        5 => "unacceptable performance",
        6 => "middlebox interference",
        _ => return format!("reason {code}"),
    };
    format!("{code}: {name}")
}

/// Where a shard sends its events.
#[derive(Debug, Clone)]
pub struct Publisher {
    pub shard: usize,
    pub tx: EventSender,
}

impl Publisher {
    /// Hand over one event: built only when someone watches; always logged
    /// at debug level (`RUST_LOG=mptun::monitor=debug`).
    pub fn publish(&self, e: &PathEvent) {
        let watched = self.tx.receiver_count() > 0;
        if !watched && !tracing::enabled!(tracing::Level::DEBUG) {
            return;
        }
        let m = MonitorEvent::from_path_event(self.shard, e, SystemTime::now());
        tracing::debug!(shard = self.shard, "{}", m.to_text());
        if watched {
            let _ = self.tx.send(Arc::new(m));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mptun_stack::ConnId;

    fn sf() -> SubflowRef {
        SubflowRef {
            local: "10.0.2.1:40000".parse().unwrap(),
            remote: "10.0.1.2:5201".parse().unwrap(),
            local_id: 2,
            remote_id: 0,
            backup: false,
        }
    }

    fn ev(kind: PathEventKind) -> MonitorEvent {
        let e = PathEvent {
            id: ConnId(1),
            token: 0x0ee54d63,
            kind,
        };
        MonitorEvent::from_path_event(0, &e, UNIX_EPOCH)
    }

    #[test]
    fn lines_read_like_ip_mptcp_monitor() {
        let e = ev(PathEventKind::SubflowEstablished(sf()));
        assert_eq!(
            e.to_text(),
            "[SF_ESTABLISHED] token=0ee54d63 remid=0 locid=2 saddr4=10.0.2.1 \
             daddr4=10.0.1.2 sport=40000 dport=5201 backup=0"
        );
        let e = ev(PathEventKind::Announced {
            id: 3,
            addr: "fd00::2".parse().unwrap(),
            port: None,
        });
        assert_eq!(
            e.to_text(),
            "[     ANNOUNCED] token=0ee54d63 remid=3 daddr6=fd00::2"
        );
        let e = ev(PathEventKind::SubflowClosed {
            subflow: sf(),
            end: SubflowEnd::Refused { reason: Some(3) },
        });
        let t = e.to_text();
        assert!(t.starts_with("[     SF_CLOSED] token=0ee54d63"), "{t}");
        assert!(
            t.ends_with(
                "error=111 reset_reason=3 reason=\"join refused by the peer \
                 (MP_TCPRST 3: administratively prohibited)\""
            ),
            "{t}"
        );
    }

    #[test]
    fn json_leaves_out_what_an_event_lacks_and_reads_back() {
        let e = ev(PathEventKind::Removed { id: 4 });
        let j = serde_json::to_string(&MonitorLine::Event(Box::new(e.clone()))).unwrap();
        assert_eq!(
            j,
            r#"{"time_ms":0,"event":"REMOVED","token":"0ee54d63","shard":0,"remid":4}"#
        );
        let back: MonitorLine = serde_json::from_str(&j).unwrap();
        assert_eq!(back, MonitorLine::Event(Box::new(e)));
        let lost: MonitorLine = serde_json::from_str(r#"{"lost":7}"#).unwrap();
        assert_eq!(lost, MonitorLine::Lost { lost: 7 });
    }

    #[test]
    fn nothing_is_built_or_kept_without_a_watcher() {
        let p = Publisher {
            shard: 1,
            tx: channel(),
        };
        let e = PathEvent {
            id: ConnId(1),
            token: 1,
            kind: PathEventKind::Closed,
        };
        p.publish(&e);
        let mut rx = p.tx.subscribe();
        p.publish(&e);
        let got = rx.try_recv().unwrap();
        assert_eq!(got.event, "CLOSED");
        assert_eq!(got.shard, 1);
        assert!(
            rx.try_recv().is_err(),
            "the event before subscribing is gone"
        );
    }
}
