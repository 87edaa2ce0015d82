//! The TUN device layer: one Linux TUN interface carrying raw IPv4/IPv6 packets.
//!
//! [`Tun::create`] opens (or attaches to) a TUN device through the `tun-rs` crate in
//! layer-3 mode (`IFF_TUN | IFF_NO_PI`, no packet-information header), sets its MTU
//! and transmit queue length, brings it up and adds one host route per configured
//! address. Routes are added with iproute2's `ip` command (see docs/DEPENDENCIES.md).
//!
//! With offloads (the default, [`TunConfig::offload`]) a device we create is opened
//! with `IFF_VNET_HDR` and `TUNSETOFFLOAD` (TCP segmentation for IPv4 and IPv6,
//! checksum): every frame read or written starts with a virtio-net header, and TCP
//! frames may be super-packets of up to 64 KiB (see `crate::gso`). When the kernel
//! refuses, and on a persistent device we only attach to (the offload mask is
//! device-wide and would outlive us), the device is opened without them, and every
//! read and write is exactly one IP packet.
//!
//! This module contains no `unsafe`: the ioctls live inside `tun-rs`. It is the one
//! place in the project where `unsafe` would be allowed, with a `// SAFETY:` comment on
//! each block, should a future need arise.

use std::fmt;
use std::io;
use std::net::IpAddr;
use std::path::Path;
use std::process::Command;

/// The default transmit queue length. The kernel's default of 500 drops packets
/// when the stack writes at full speed.
pub const DEFAULT_TXQUEUELEN: u32 = 10_000;

/// The longest interface name Linux accepts (`IFNAMSIZ` - 1).
pub const MAX_NAME_LEN: usize = 15;

/// What [`Tun::create`] sets up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TunConfig {
    /// Interface name, 1 to 15 bytes, e.g. `mptun0`.
    pub name: String,
    /// Interface MTU; the largest packet [`Tun::send`] may write and [`Tun::recv`]
    /// will return.
    pub mtu: u16,
    /// Transmit queue length ([`DEFAULT_TXQUEUELEN`] is a good value).
    pub txqueuelen: u32,
    /// Addresses that get a host route (`/32` or `/128`) through the device.
    pub routes: Vec<IpAddr>,
    /// When false, `routes` is ignored and no route is added or removed.
    pub add_routes: bool,
    /// Ask for TCP segmentation and checksum offloads (`IFF_VNET_HDR`); falls back
    /// to plain packets if the kernel refuses. See [`Tun::offload`].
    pub offload: bool,
    /// Queues (`IFF_MULTI_QUEUE` when more than one): the kernel spreads
    /// flows over them; see [`Tun::take_queues`].
    pub queues: usize,
}

/// Why [`Tun::create`] failed.
#[derive(Debug)]
pub enum TunError {
    /// Not allowed to open `/dev/net/tun` or create the device (device name).
    PermissionDenied(String),
    /// The name is taken by an interface that is not a TUN device (device name).
    NameInUse(String),
    /// The TUN device exists and another process has it open (device name).
    Busy(String),
    /// The name is not a valid interface name (the name, and why).
    InvalidName(String, &'static str),
    /// `Tun::create` was called outside a tokio runtime.
    NoRuntime(String),
    /// A configuration step on the device failed (device name, step, cause).
    Setup(String, &'static str, io::Error),
    /// An `ip` command failed (device name, the command line, its stderr or status).
    Command(String, String, String),
    /// Any other I/O error.
    Io(io::Error),
}

impl fmt::Display for TunError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TunError::PermissionDenied(n) => write!(
                f,
                "cannot create TUN device {n}: permission denied \
                 (run as root or grant CAP_NET_ADMIN)"
            ),
            TunError::NameInUse(n) => write!(
                f,
                "cannot create TUN device {n}: name in use by a non-TUN interface"
            ),
            TunError::Busy(n) => write!(
                f,
                "cannot create TUN device {n}: it exists and is already in use by another process"
            ),
            TunError::InvalidName(n, why) => {
                write!(f, "cannot create TUN device {n:?}: invalid name ({why})")
            }
            TunError::NoRuntime(n) => write!(
                f,
                "cannot create TUN device {n}: Tun::create must be called inside a tokio runtime"
            ),
            TunError::Setup(n, step, e) => write!(f, "cannot {step} on TUN device {n}: {e}"),
            TunError::Command(n, cmd, err) => {
                write!(f, "configuring TUN device {n}: `{cmd}` failed: {err}")
            }
            TunError::Io(e) => write!(f, "TUN device I/O error: {e}"),
        }
    }
}

impl std::error::Error for TunError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            TunError::Setup(_, _, e) | TunError::Io(e) => Some(e),
            _ => None,
        }
    }
}

impl From<io::Error> for TunError {
    fn from(e: io::Error) -> Self {
        TunError::Io(e)
    }
}

/// An open TUN device. Reading and writing go through `&self`, so one task (or
/// several, via `Arc<Tun>`) may receive and send at the same time.
pub struct Tun {
    dev: Option<tun_rs::AsyncDevice>,
    name: String,
    mtu: u16,
    /// Frames carry a virtio-net header and may be TCP super-packets.
    offload: bool,
    /// True when `create` made the device; false when it attached to an existing
    /// (persistent) one, which teardown then leaves in place.
    created: bool,
    /// Host routes that `create` added and teardown removes.
    routes: Vec<IpAddr>,
    /// The device's further queues, until [`Tun::take_queues`].
    queues: Vec<tun_rs::SyncDevice>,
}

/// A further queue of a multiqueue device, not yet registered with a
/// runtime: [`TunQueue::attach`] it in the runtime that will use it.
pub struct TunQueue {
    dev: tun_rs::SyncDevice,
    name: String,
    mtu: u16,
    offload: bool,
}

impl TunQueue {
    /// The queue as a [`Tun`] of the current tokio runtime. Dropping or
    /// tearing it down closes only this queue: the device, its routes and
    /// its removal stay with the `Tun` that created it.
    pub fn attach(self) -> io::Result<Tun> {
        Ok(Tun {
            dev: Some(tun_rs::AsyncDevice::new(self.dev)?),
            name: self.name,
            mtu: self.mtu,
            offload: self.offload,
            created: false,
            routes: Vec::new(),
            queues: Vec::new(),
        })
    }
}

impl fmt::Debug for Tun {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Tun")
            .field("name", &self.name)
            .field("mtu", &self.mtu)
            .field("offload", &self.offload)
            .field("created", &self.created)
            .field("routes", &self.routes)
            .field("open", &self.dev.is_some())
            .finish()
    }
}

/// What the name refers to before we open it.
enum Existing {
    None,
    Tun,
    Other,
}

fn existing_kind(name: &str) -> Existing {
    if !Path::new("/sys/class/net").join(name).exists() {
        return Existing::None;
    }
    match tun_flags(name) {
        Some(v) if v & IFF_TUN != 0 => Existing::Tun,
        _ => Existing::Other,
    }
}

const IFF_TUN: u32 = 0x0001;
const IFF_MULTI_QUEUE: u32 = 0x0100;

/// The flags of the TUN/TAP device `name` (sysfs `tun_flags`, hex such as
/// "0x1001"); `None` if it has none (no such device, or not TUN/TAP). An
/// unreadable value counts as no flags.
fn tun_flags(name: &str) -> Option<u32> {
    let flags =
        std::fs::read_to_string(Path::new("/sys/class/net").join(name).join("tun_flags")).ok()?;
    Some(u32::from_str_radix(flags.trim().trim_start_matches("0x"), 16).unwrap_or(0))
}

/// Whether the existing TUN device `name` takes several queues
/// (`IFF_MULTI_QUEUE`); `None` if there is no TUN device of that name.
pub fn existing_multi_queue(name: &str) -> Option<bool> {
    tun_flags(name)
        .filter(|v| v & IFF_TUN != 0)
        .map(|v| v & IFF_MULTI_QUEUE != 0)
}

fn validate_name(name: &str) -> Result<(), TunError> {
    let bad = |why| Err(TunError::InvalidName(name.to_string(), why));
    if name.is_empty() {
        return bad("empty");
    }
    if name.len() > MAX_NAME_LEN {
        return bad("longer than 15 bytes");
    }
    if name == "." || name == ".." {
        return bad("reserved");
    }
    if name
        .bytes()
        .any(|b| b == b'/' || b == b':' || b.is_ascii_whitespace() || b.is_ascii_control())
    {
        return bad("contains '/', ':', whitespace or a control character");
    }
    if name.contains('%') {
        return bad("contains '%'");
    }
    Ok(())
}

fn host_prefix(addr: &IpAddr) -> String {
    match addr {
        IpAddr::V4(a) => format!("{a}/32"),
        IpAddr::V6(a) => format!("{a}/128"),
    }
}

/// Runs `ip ARGS`, mapping failure to [`TunError::Command`] with ip's stderr.
fn run_ip(dev: &str, args: &[&str]) -> Result<(), TunError> {
    let cmdline = format!("ip {}", args.join(" "));
    let out = Command::new("ip")
        .args(args)
        .output()
        .map_err(|e| TunError::Command(dev.to_string(), cmdline.clone(), e.to_string()))?;
    if out.status.success() {
        Ok(())
    } else {
        let err = String::from_utf8_lossy(&out.stderr).trim().to_string();
        let err = if err.is_empty() {
            out.status.to_string()
        } else {
            err
        };
        Err(TunError::Command(dev.to_string(), cmdline, err))
    }
}

/// Add (`add` true, with `ip route replace`) or remove a host route for `addr`
/// through the device `dev`: for addresses added or removed at run time.
pub fn host_route(dev: &str, addr: IpAddr, add: bool) -> Result<(), TunError> {
    let prefix = host_prefix(&addr);
    let verb = if add { "replace" } else { "del" };
    if add && addr.is_ipv6() {
        let knob = format!("/proc/sys/net/ipv6/conf/{dev}/disable_ipv6");
        if Path::new(&knob).exists() {
            let _ = std::fs::write(&knob, "0");
        }
    }
    run_ip(dev, &route_args(verb, &prefix, &addr, dev))
}

fn route_args<'a>(verb: &'a str, prefix: &'a str, addr: &IpAddr, dev: &'a str) -> Vec<&'a str> {
    let family = if addr.is_ipv4() { "-4" } else { "-6" };
    vec![family, "route", verb, prefix, "dev", dev]
}

impl Tun {
    /// Creates the TUN device `cfg.name` (or attaches to an existing persistent TUN
    /// device of that name), sets its MTU and transmit queue length, brings it up and,
    /// unless `!cfg.add_routes`, adds a host route (`/32` or `/128`, with `ip route
    /// replace`) through it for each address in `cfg.routes`. When any route is IPv6,
    /// IPv6 is enabled on the device first (`disable_ipv6` = 0).
    ///
    /// Must be called from inside a tokio runtime (the descriptor is registered with
    /// its reactor); otherwise it returns [`TunError::NoRuntime`]. Needs `CAP_NET_ADMIN`.
    ///
    /// On failure, whatever was set up so far is removed again.
    pub fn create(cfg: &TunConfig) -> Result<Tun, TunError> {
        let name = cfg.name.as_str();
        validate_name(name)?;
        if tokio::runtime::Handle::try_current().is_err() {
            return Err(TunError::NoRuntime(name.to_string()));
        }
        let created = match existing_kind(name) {
            Existing::None => true,
            Existing::Tun => false,
            Existing::Other => return Err(TunError::NameInUse(name.to_string())),
        };

        let multi_queue = cfg.queues > 1;
        let open = |offload: bool| {
            tun_rs::DeviceBuilder::new()
                .name(name)
                .inherit_enable_state()
                .offload(offload)
                .multi_queue(multi_queue)
                .build_sync()
        };
        // The offload mask is device-wide state that outlives our descriptor: on a
        // persistent device we only attach to, a later user would inherit it. So
        // offloads only on a device we create (and that goes away with us).
        let mut offload = cfg.offload && created;
        if cfg.offload && !created {
            tracing::info!("attaching to the persistent TUN device {name}: no offloads");
        }
        let mut opened = open(offload);
        if offload {
            if let Err(e) = &opened {
                // Only a refusal of the offloads themselves falls back; errors that
                // would recur without them are reported as they are.
                if !matches!(
                    e.kind(),
                    io::ErrorKind::PermissionDenied | io::ErrorKind::ResourceBusy
                ) {
                    tracing::warn!(
                        "TUN offloads not available on {name} ({e}); using plain packets"
                    );
                    offload = false;
                    opened = open(false);
                }
            }
        }
        let sync = opened.map_err(|e| match e.kind() {
            // EPERM / EACCES
            io::ErrorKind::PermissionDenied => TunError::PermissionDenied(name.to_string()),
            // EBUSY
            io::ErrorKind::ResourceBusy => TunError::Busy(name.to_string()),
            // TUNSETIFF answers EINVAL when the name belongs to another kind of
            // interface (one that appeared after our check, or a TAP device).
            io::ErrorKind::InvalidInput if !matches!(existing_kind(name), Existing::None) => {
                TunError::NameInUse(name.to_string())
            }
            _ => TunError::Setup(name.to_string(), "open /dev/net/tun", e),
        })?;
        // Further queues are opened now, while nothing else can have changed
        // the device; each one gets the device's offloads.
        let queues = (1..cfg.queues)
            .map(|_| sync.try_clone())
            .collect::<io::Result<Vec<_>>>()
            .map_err(|e| TunError::Setup(name.to_string(), "open a further queue", e))?;
        let dev = tun_rs::AsyncDevice::new(sync)
            .map_err(|e| TunError::Setup(name.to_string(), "register the device with tokio", e))?;

        // From here on, `tun` owns what has been set up: dropping it on an error
        // return tears it down.
        let mut tun = Tun {
            dev: Some(dev),
            name: name.to_string(),
            mtu: cfg.mtu,
            offload,
            created,
            routes: Vec::new(),
            queues,
        };
        tun.configure(cfg)?;
        Ok(tun)
    }

    fn configure(&mut self, cfg: &TunConfig) -> Result<(), TunError> {
        let name = self.name.clone();
        let dev = self.dev.as_ref().expect("configure runs on an open device");
        let setup = |step: &'static str| {
            let name = name.clone();
            move |e| TunError::Setup(name, step, e)
        };
        dev.set_mtu(cfg.mtu).map_err(setup("set the MTU"))?;
        dev.set_tx_queue_len(cfg.txqueuelen)
            .map_err(setup("set the transmit queue length"))?;
        dev.enabled(true).map_err(setup("bring the device up"))?;

        if !cfg.add_routes {
            return Ok(());
        }
        if cfg.routes.iter().any(IpAddr::is_ipv6) {
            let knob = format!("/proc/sys/net/ipv6/conf/{name}/disable_ipv6");
            if Path::new(&knob).exists() {
                std::fs::write(&knob, "0").map_err(setup("enable IPv6"))?;
            }
        }
        for addr in &cfg.routes {
            let prefix = host_prefix(addr);
            run_ip(&name, &route_args("replace", &prefix, addr, &name))?;
            if !self.routes.contains(addr) {
                self.routes.push(*addr);
            }
        }
        Ok(())
    }

    /// The further queues opened by `create` (`TunConfig::queues` - 1), for
    /// other threads; this `Tun` keeps the first.
    pub fn take_queues(&mut self) -> Vec<TunQueue> {
        std::mem::take(&mut self.queues)
            .into_iter()
            .map(|dev| TunQueue {
                dev,
                name: self.name.clone(),
                mtu: self.mtu,
                offload: self.offload,
            })
            .collect()
    }

    /// The interface name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The MTU set by `create`: the largest packet `send` accepts and `recv` returns.
    pub fn mtu(&self) -> u16 {
        self.mtu
    }

    /// True when offloads are on: every frame `recv`/`send` carry starts with a
    /// virtio-net header (`crate::gso::VNET_HDR_LEN` bytes), and a TCP frame may be a
    /// super-packet of up to 64 KiB. False: a frame is exactly one IP packet.
    pub fn offload(&self) -> bool {
        self.offload
    }

    fn dev(&self) -> io::Result<&tun_rs::AsyncDevice> {
        self.dev
            .as_ref()
            .ok_or_else(|| io::Error::new(io::ErrorKind::NotConnected, "TUN device was torn down"))
    }

    /// Awaits one frame (one raw IPv4/IPv6 packet, no packet-information header;
    /// with [`offload`](Self::offload), a virtio-net header and a packet or TCP
    /// super-packet) and copies it into `buf`. A longer frame is truncated, so pass
    /// at least `mtu()` bytes, or `crate::gso::MAX_FRAME` with offloads. Cancel safe.
    pub async fn recv(&self, buf: &mut [u8]) -> io::Result<usize> {
        self.dev()?.recv(buf).await
    }

    /// Reads one packet if one is ready; `Err(WouldBlock)` otherwise. Use it after
    /// `recv` returns to drain every packet that is ready before awaiting again.
    ///
    /// It trusts tokio's readiness flag: once a read has hit `WouldBlock`, it keeps
    /// answering `WouldBlock` until the reactor has seen the descriptor become readable
    /// again, which happens only while the task yields. So never spin on `try_recv`
    /// alone; await `recv` when it says `WouldBlock`.
    pub fn try_recv(&self, buf: &mut [u8]) -> io::Result<usize> {
        self.dev()?.try_recv(buf)
    }

    /// Writes one frame (see [`recv`](Self::recv)), waiting while the device cannot
    /// take it.
    pub async fn send(&self, frame: &[u8]) -> io::Result<usize> {
        self.dev()?.send(frame).await
    }

    /// Writes one frame if the device can take it now; `Err(WouldBlock)` otherwise.
    pub fn try_send(&self, frame: &[u8]) -> io::Result<usize> {
        self.dev()?.try_send(frame)
    }

    /// As [`try_send`](Self::try_send), one frame from several buffers
    /// (`writev`): the headers from one, the payload from where it is held.
    pub fn try_send_vectored(&self, parts: &[io::IoSlice<'_>]) -> io::Result<usize> {
        self.dev()?.try_send_vectored(parts)
    }

    /// Writes one plain IP packet (at most `mtu()` bytes), with an empty virtio-net
    /// header in front when offloads are on; waits while the device cannot take it.
    pub async fn send_packet(&self, pkt: &[u8]) -> io::Result<usize> {
        if !self.offload {
            return self.send(pkt).await;
        }
        let hdr = [0u8; crate::gso::VNET_HDR_LEN];
        let bufs = [io::IoSlice::new(&hdr), io::IoSlice::new(pkt)];
        self.dev()?.send_vectored(&bufs).await
    }

    /// [`send_packet`](Self::send_packet) if the device can take it now;
    /// `Err(WouldBlock)` otherwise.
    pub fn try_send_packet(&self, pkt: &[u8]) -> io::Result<usize> {
        if !self.offload {
            return self.try_send(pkt);
        }
        let hdr = [0u8; crate::gso::VNET_HDR_LEN];
        let bufs = [io::IoSlice::new(&hdr), io::IoSlice::new(pkt)];
        self.dev()?.try_send_vectored(&bufs)
    }

    /// The device went away under us (deleted): close the descriptor and forget
    /// the routes, which the kernel removed with it, so that `teardown` has
    /// nothing left to undo (and no errors to print about it).
    pub fn forget_device(&mut self) {
        self.routes.clear();
        self.created = false;
        self.dev = None;
        self.queues.clear();
    }

    /// Removes what `create` configured: the routes it added, and the device itself if
    /// `create` made it (a pre-existing persistent device is left, minus our routes).
    /// Idempotent; also run by `Drop`. Failures are reported on stderr, not returned:
    /// there is nothing a caller could do about them during shutdown.
    pub fn teardown(&mut self) {
        let name = self.name.clone();
        for addr in std::mem::take(&mut self.routes) {
            // Only while the device exists: its removal drops its routes anyway.
            if self.dev.is_some() || Path::new("/sys/class/net").join(&name).exists() {
                let prefix = host_prefix(&addr);
                if let Err(e) = run_ip(&name, &route_args("del", &prefix, &addr, &name)) {
                    eprintln!("mptun: teardown: {e}");
                }
            }
        }
        self.queues.clear();
        if let Some(dev) = self.dev.take() {
            // Closing the last descriptor of a non-persistent TUN device deletes it.
            drop(dev);
            if self.created && Path::new("/sys/class/net").join(&name).exists() {
                // Someone made it persistent meanwhile; it is still ours to remove.
                if let Err(e) = run_ip(&name, &["link", "delete", "dev", &name]) {
                    eprintln!("mptun: teardown: {e}");
                }
            }
        }
    }
}

impl Drop for Tun {
    fn drop(&mut self) {
        self.teardown();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{Ipv4Addr, Ipv6Addr, UdpSocket};
    use std::time::Duration;

    /// The device tests need root (CAP_NET_ADMIN) and /dev/net/tun; without them they
    /// print a note and pass.
    fn euid() -> Option<u32> {
        std::fs::read_to_string("/proc/self/status")
            .ok()
            .and_then(|s| {
                s.lines()
                    .find(|l| l.starts_with("Uid:"))
                    .and_then(|l| l.split_whitespace().nth(2).map(str::to_string))
            })
            .and_then(|u| u.parse::<u32>().ok())
    }

    fn can_run() -> bool {
        if euid() != Some(0) || !Path::new("/dev/net/tun").exists() {
            eprintln!("skipped: needs root and /dev/net/tun");
            return false;
        }
        true
    }

    /// Deletes the link when the test ends, however it ends.
    struct LinkGuard(String);

    impl Drop for LinkGuard {
        fn drop(&mut self) {
            if Path::new("/sys/class/net").join(&self.0).exists() {
                let _ = Command::new("ip")
                    .args(["link", "delete", "dev", &self.0])
                    .output();
            }
        }
    }

    fn ip_out(args: &[&str]) -> String {
        let out = Command::new("ip").args(args).output().expect("run ip");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn sysfs(name: &str, attr: &str) -> String {
        std::fs::read_to_string(Path::new("/sys/class/net").join(name).join(attr))
            .unwrap_or_default()
            .trim()
            .to_string()
    }

    /// A persistent single-queue TUN device `name` (`ip tuntap add`).
    fn add_persistent(name: &str) {
        let out = Command::new("ip")
            .args(["tuntap", "add", "dev", name, "mode", "tun"])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    fn exists(name: &str) -> bool {
        Path::new("/sys/class/net").join(name).exists()
    }

    fn test_addrs() -> (Ipv4Addr, Ipv6Addr) {
        let pid = std::process::id();
        let v4 = Ipv4Addr::new(198, 18, (pid >> 8) as u8, (pid % 250 + 2) as u8);
        let v6 = Ipv6Addr::new(0xfd00, 0x6d70, 0x7475, 0, 0, 0, 1, pid as u16);
        (v4, v6)
    }

    fn checksum(data: &[u8]) -> u16 {
        let mut sum = 0u32;
        for c in data.chunks(2) {
            let w = if c.len() == 2 {
                u16::from_be_bytes([c[0], c[1]])
            } else {
                u16::from_be_bytes([c[0], 0])
            };
            sum += u32::from(w);
        }
        while sum > 0xffff {
            sum = (sum & 0xffff) + (sum >> 16);
        }
        !(sum as u16)
    }

    /// An IPv4 ICMP echo request from `src` to `dst`.
    fn icmp_echo(src: Ipv4Addr, dst: Ipv4Addr) -> Vec<u8> {
        let mut icmp = vec![8, 0, 0, 0, 0x12, 0x34, 0, 1];
        icmp.extend_from_slice(b"mptun tun test");
        let c = checksum(&icmp);
        icmp[2..4].copy_from_slice(&c.to_be_bytes());
        let total = (20 + icmp.len()) as u16;
        let mut p = vec![0x45, 0];
        p.extend_from_slice(&total.to_be_bytes());
        p.extend_from_slice(&[0, 1, 0x40, 0, 64, 1, 0, 0]);
        p.extend_from_slice(&src.octets());
        p.extend_from_slice(&dst.octets());
        let c = checksum(&p);
        p[10..12].copy_from_slice(&c.to_be_bytes());
        p.extend_from_slice(&icmp);
        p
    }

    /// If `pkt` is an IPv4 UDP datagram to `dst`, its payload.
    fn udp_payload_to(pkt: &[u8], dst: Ipv4Addr) -> Option<&[u8]> {
        if pkt.len() < 28 || pkt[0] >> 4 != 4 || pkt[9] != 17 {
            return None;
        }
        if pkt[16..20] != dst.octets() {
            return None;
        }
        let ihl = usize::from(pkt[0] & 0x0f) * 4;
        pkt.get(ihl + 8..)
    }

    #[test]
    fn rejects_bad_names_and_missing_runtime() {
        let mut cfg = TunConfig {
            name: String::new(),
            mtu: 1400,
            txqueuelen: DEFAULT_TXQUEUELEN,
            routes: vec![],
            add_routes: false,
            offload: false,
            queues: 1,
        };
        for bad in ["", "0123456789abcdef", "a/b", "a b", ".."] {
            cfg.name = bad.to_string();
            let e = Tun::create(&cfg).unwrap_err();
            assert!(matches!(e, TunError::InvalidName(..)), "{bad:?}: {e}");
        }
        cfg.name = "mptnort0".to_string();
        let e = Tun::create(&cfg).unwrap_err();
        assert!(matches!(e, TunError::NoRuntime(_)), "{e}");
        assert!(!exists("mptnort0"));
    }

    #[test]
    fn tun_can_be_shared_between_tasks() {
        fn send_sync<T: Send + Sync>() {}
        send_sync::<Tun>();
        send_sync::<TunError>();
    }

    #[test]
    fn error_messages_are_one_clear_line() {
        let n = || "mptun0".to_string();
        assert_eq!(
            TunError::PermissionDenied(n()).to_string(),
            "cannot create TUN device mptun0: permission denied \
             (run as root or grant CAP_NET_ADMIN)"
        );
        assert_eq!(
            TunError::NameInUse(n()).to_string(),
            "cannot create TUN device mptun0: name in use by a non-TUN interface"
        );
        let e = TunError::Command(n(), "ip -4 route replace".into(), "RTNETLINK: boom".into());
        assert!(e.to_string().contains("RTNETLINK: boom"));
        for e in [
            TunError::Busy(n()),
            TunError::NoRuntime(n()),
            TunError::Setup(n(), "set the MTU", io::Error::other("x")),
            TunError::Io(io::Error::other("x")),
        ] {
            assert!(!e.to_string().contains('\n'));
        }
    }

    #[tokio::test]
    async fn create_configure_carry_packets_and_teardown() {
        if !can_run() {
            return;
        }
        let name = format!("mpta{}", std::process::id());
        let _guard = LinkGuard(name.clone());
        let (v4, v6) = test_addrs();
        let cfg = TunConfig {
            name: name.clone(),
            mtu: 1400,
            txqueuelen: DEFAULT_TXQUEUELEN,
            routes: vec![v4.into(), v6.into()],
            add_routes: true,
            offload: false,
            queues: 1,
        };
        let mut tun = Tun::create(&cfg).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(tun.name(), name);
        assert_eq!(tun.mtu(), 1400);

        // Up, with the MTU and queue length asked for.
        assert_eq!(sysfs(&name, "mtu"), "1400");
        assert_eq!(sysfs(&name, "tx_queue_len"), "10000");
        let flags = u32::from_str_radix(sysfs(&name, "flags").trim_start_matches("0x"), 16);
        assert_eq!(flags.unwrap() & 1, 1, "IFF_UP");
        // Both host routes point at the device.
        let dev = format!("dev {name} ");
        assert!(ip_out(&["-4", "route", "get", &v4.to_string()]).contains(&dev));
        assert!(ip_out(&["-6", "route", "get", &v6.to_string()]).contains(&dev));
        assert!(ip_out(&["-4", "route", "show", "dev", &name]).contains(&v4.to_string()));
        assert!(ip_out(&["-6", "route", "show", "dev", &name]).contains(&v6.to_string()));

        // A UDP datagram to the routed address comes out of the device as an IPv4
        // packet (other traffic, such as IPv6 router solicitations, is skipped).
        let sock = UdpSocket::bind("0.0.0.0:0").unwrap();
        sock.send_to(b"hello mptun", (v4, 9)).unwrap();
        let mut buf = vec![0u8; 2048];
        tokio::time::timeout(Duration::from_secs(5), async {
            loop {
                let n = tun.recv(&mut buf).await.unwrap();
                if udp_payload_to(&buf[..n], v4) == Some(b"hello mptun") {
                    break;
                }
            }
        })
        .await
        .expect("UDP datagram read from the TUN device");

        // Drain, then two more datagrams: after the runtime has seen the readiness,
        // try_recv returns both without awaiting, then WouldBlock.
        while tun.try_recv(&mut buf).is_ok() {}
        sock.send_to(b"two", (v4, 9)).unwrap();
        sock.send_to(b"three", (v4, 9)).unwrap();
        tokio::time::sleep(Duration::from_millis(200)).await;
        let mut got = Vec::new();
        loop {
            match tun.try_recv(&mut buf) {
                Ok(n) => {
                    if let Some(p) = udp_payload_to(&buf[..n], v4) {
                        got.push(p.to_vec());
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) => panic!("try_recv: {e}"),
            }
        }
        assert_eq!(got, vec![b"two".to_vec(), b"three".to_vec()]);

        // Writing IP packets into the device works.
        let echo = icmp_echo(v4, Ipv4Addr::new(198, 18, 0, 1));
        assert_eq!(tun.send(&echo).await.unwrap(), echo.len());
        assert_eq!(tun.try_send(&echo).unwrap(), echo.len());

        // Teardown removes the device and its routes, and may run twice.
        tun.teardown();
        assert!(!exists(&name), "device removed");
        assert!(!ip_out(&["-4", "route", "show"]).contains(&v4.to_string()));
        assert!(!ip_out(&["-6", "route", "show"]).contains(&v6.to_string()));
        tun.teardown();
        let e = tun.try_recv(&mut buf).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::NotConnected);
    }

    #[tokio::test]
    async fn offload_frames_carry_a_virtio_net_header() {
        use crate::gso::{VnetHdr, MAX_FRAME, VNET_HDR_LEN};
        if !can_run() {
            return;
        }
        let name = format!("mpto{}", std::process::id());
        let _guard = LinkGuard(name.clone());
        let v4 = Ipv4Addr::new(198, 19, test_addrs().0.octets()[2], 11);
        let cfg = TunConfig {
            name: name.clone(),
            mtu: 1500,
            txqueuelen: DEFAULT_TXQUEUELEN,
            routes: vec![v4.into()],
            add_routes: true,
            offload: true,
            queues: 1,
        };
        let tun = Tun::create(&cfg).unwrap_or_else(|e| panic!("{e}"));
        assert!(tun.offload(), "this kernel takes TUN offloads");
        // The device now claims TCP segmentation offload.
        let flags = std::fs::read_to_string(format!("/sys/class/net/{name}/tun_flags")).unwrap();
        let flags = u32::from_str_radix(flags.trim().trim_start_matches("0x"), 16).unwrap();
        assert_ne!(flags & 0x4000, 0, "IFF_VNET_HDR");

        let sock = UdpSocket::bind("0.0.0.0:0").unwrap();
        sock.send_to(b"hello offload", (v4, 9)).unwrap();
        let mut buf = vec![0u8; MAX_FRAME];
        tokio::time::timeout(Duration::from_secs(5), async {
            loop {
                let n = tun.recv(&mut buf).await.unwrap();
                assert!(VnetHdr::parse(&buf[..n]).is_some());
                if udp_payload_to(&buf[VNET_HDR_LEN..n], v4) == Some(b"hello offload") {
                    break;
                }
            }
        })
        .await
        .expect("UDP datagram read from the TUN device after a virtio-net header");

        // Plain packets are written with an empty header in front.
        let echo = icmp_echo(v4, Ipv4Addr::new(198, 18, 0, 1));
        assert_eq!(
            tun.send_packet(&echo).await.unwrap(),
            VNET_HDR_LEN + echo.len()
        );
        assert_eq!(
            tun.try_send_packet(&echo).unwrap(),
            VNET_HDR_LEN + echo.len()
        );
        drop(tun);
        assert!(!exists(&name));
    }

    /// The other side of `can_run`: without root, creating fails with a clear reason.
    #[tokio::test]
    async fn permission_denied_without_root() {
        if euid() == Some(0) || !Path::new("/dev/net/tun").exists() {
            eprintln!("skipped: needs a non-root user");
            return;
        }
        let cfg = TunConfig {
            name: format!("mpte{}", std::process::id()),
            mtu: 1400,
            txqueuelen: DEFAULT_TXQUEUELEN,
            routes: vec![],
            add_routes: false,
            offload: false,
            queues: 1,
        };
        let e = Tun::create(&cfg).unwrap_err();
        assert!(matches!(e, TunError::PermissionDenied(_)), "{e}");
    }

    #[tokio::test]
    async fn name_taken_by_a_non_tun_interface() {
        if !can_run() {
            return;
        }
        let name = format!("mptb{}", std::process::id());
        let _guard = LinkGuard(name.clone());
        let out = Command::new("ip")
            .args(["link", "add", &name, "type", "dummy"])
            .output()
            .unwrap();
        if !out.status.success() {
            eprintln!(
                "skipped: cannot create a dummy link: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            return;
        }
        let cfg = TunConfig {
            name: name.clone(),
            mtu: 1400,
            txqueuelen: DEFAULT_TXQUEUELEN,
            routes: vec![],
            add_routes: true,
            offload: false,
            queues: 1,
        };
        let e = Tun::create(&cfg).unwrap_err();
        assert!(matches!(e, TunError::NameInUse(ref n) if *n == name), "{e}");
        assert_eq!(
            e.to_string(),
            format!("cannot create TUN device {name}: name in use by a non-TUN interface")
        );
        assert!(exists(&name), "the other interface is left alone");
    }

    #[tokio::test]
    async fn attaching_to_a_persistent_device_leaves_it_in_place() {
        if !can_run() {
            return;
        }
        let name = format!("mptc{}", std::process::id());
        let _guard = LinkGuard(name.clone());
        add_persistent(&name);
        let v4 = Ipv4Addr::new(198, 19, test_addrs().0.octets()[2], 7);
        let cfg = TunConfig {
            name: name.clone(),
            mtu: 1280,
            txqueuelen: 4000,
            routes: vec![v4.into()],
            add_routes: true,
            offload: true,
            queues: 1,
        };
        let mut tun = Tun::create(&cfg).unwrap_or_else(|e| panic!("{e}"));
        assert!(
            !tun.offload(),
            "no device-wide offload state left on a device we keep"
        );
        assert_eq!(sysfs(&name, "mtu"), "1280");
        assert_eq!(sysfs(&name, "tx_queue_len"), "4000");
        assert!(ip_out(&["-4", "route", "show", "dev", &name]).contains(&v4.to_string()));
        drop(tun.try_recv(&mut [0u8; 64]));

        // While we hold it, a second open is refused as busy.
        let e = Tun::create(&cfg).unwrap_err();
        assert!(matches!(e, TunError::Busy(_)), "{e}");

        tun.teardown();
        assert!(exists(&name), "pre-existing persistent device kept");
        assert!(!ip_out(&["-4", "route", "show", "dev", &name]).contains(&v4.to_string()));
    }

    #[tokio::test]
    async fn a_multiqueue_device_hands_out_its_further_queues() {
        if !can_run() {
            return;
        }
        let name = format!("mptq{}", std::process::id());
        let _guard = LinkGuard(name.clone());
        assert_eq!(existing_multi_queue(&name), None);
        let cfg = TunConfig {
            name: name.clone(),
            mtu: 1500,
            txqueuelen: 1000,
            routes: vec![],
            add_routes: false,
            offload: true,
            queues: 3,
        };
        let mut tun = Tun::create(&cfg).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(existing_multi_queue(&name), Some(true));
        let queues = tun.take_queues();
        assert_eq!(queues.len(), 2);
        assert!(tun.take_queues().is_empty());
        let mut attached: Vec<Tun> = queues.into_iter().map(|q| q.attach().unwrap()).collect();
        for q in &attached {
            assert_eq!(
                q.offload(),
                tun.offload(),
                "every queue gets the device's offloads"
            );
            assert_eq!(
                q.try_recv(&mut [0u8; 64]).unwrap_err().kind(),
                io::ErrorKind::WouldBlock
            );
        }
        // A further queue's teardown leaves the device to its creator.
        attached[0].teardown();
        assert!(exists(&name));
        attached.clear();
        tun.teardown();
        assert!(!exists(&name));

        // A persistent device made with one queue says so.
        add_persistent(&name);
        assert_eq!(existing_multi_queue(&name), Some(false));
    }

    #[tokio::test]
    async fn no_routes_when_add_routes_is_false() {
        if !can_run() {
            return;
        }
        let name = format!("mptd{}", std::process::id());
        let _guard = LinkGuard(name.clone());
        let v4 = Ipv4Addr::new(198, 19, test_addrs().0.octets()[2], 9);
        let cfg = TunConfig {
            name: name.clone(),
            mtu: 1500,
            txqueuelen: DEFAULT_TXQUEUELEN,
            routes: vec![v4.into()],
            add_routes: false,
            offload: false,
            queues: 1,
        };
        let tun = Tun::create(&cfg).unwrap_or_else(|e| panic!("{e}"));
        assert!(exists(&name));
        assert!(!ip_out(&["-4", "route", "show", "dev", &name]).contains(&v4.to_string()));
        drop(tun);
        assert!(!exists(&name), "Drop tears the device down");
    }
}
