//! Benchmark baseline, not part of mptun: a TCP server on a Linux TUN device built on
//! smoltcp, the library a user might pick instead of mptun.
//!
//! `smoltcp-sink --tun NAME --addr IPV4 --port PORT --mode sink|source [--bytes N] [--buf N]`
//!
//! * `sink`: accept a connection on PORT, read and discard everything until the peer
//!   closes, then close.
//! * `source`: accept a connection on PORT, write N zero bytes, then close.
//!
//! One connection at a time; the socket listens again after each. smoltcp creates
//! the TUN device (or attaches to an existing one); the caller brings it up and
//! routes the address to it (scripts/bench.sh does). The loop is the usual smoltcp
//! one: `Interface::poll`, serve the socket, then `phy::wait` on the TUN fd for
//! at most `Interface::poll_delay`.

use std::os::unix::io::AsRawFd;
use std::process::ExitCode;

use smoltcp::iface::{Config, Interface, SocketSet};
use smoltcp::phy::{wait as phy_wait, Medium, TunTapInterface};
use smoltcp::socket::tcp;
use smoltcp::time::Instant;
use smoltcp::wire::{HardwareAddress, IpAddress, IpCidr, Ipv4Address};

#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    Sink,
    Source,
}

struct Opts {
    tun: String,
    addr: Ipv4Address,
    port: u16,
    mode: Mode,
    bytes: u64,
    buf: usize,
}

const USAGE: &str = "usage: smoltcp-sink --tun NAME --addr IPV4 --port PORT --mode sink|source [--bytes N] [--buf BYTES]";

fn parse_opts() -> Result<Opts, String> {
    let mut tun = None;
    let mut addr = None;
    let mut port = None;
    let mut mode = Mode::Sink;
    let mut bytes = 1u64 << 30;
    let mut buf = 4usize << 20;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut val = || args.next().ok_or_else(|| format!("{a} needs a value"));
        match a.as_str() {
            "--tun" => tun = Some(val()?),
            "--addr" => addr = Some(val()?.parse().map_err(|e| format!("--addr: {e}"))?),
            "--port" => port = Some(val()?.parse().map_err(|e| format!("--port: {e}"))?),
            "--mode" => {
                mode = match val()?.as_str() {
                    "sink" => Mode::Sink,
                    "source" => Mode::Source,
                    m => return Err(format!("--mode: unknown mode {m}")),
                }
            }
            "--bytes" => bytes = val()?.parse().map_err(|e| format!("--bytes: {e}"))?,
            "--buf" => buf = val()?.parse().map_err(|e| format!("--buf: {e}"))?,
            "-h" | "--help" => return Err(String::new()),
            _ => return Err(format!("unknown argument {a}")),
        }
    }
    Ok(Opts {
        tun: tun.ok_or("--tun is required")?,
        addr: addr.ok_or("--addr is required")?,
        port: port.ok_or("--port is required")?,
        mode,
        bytes,
        buf,
    })
}

fn main() -> ExitCode {
    let opts = match parse_opts() {
        Ok(o) => o,
        Err(e) => {
            if !e.is_empty() {
                eprintln!("smoltcp-sink: {e}");
            }
            eprintln!("{USAGE}");
            return ExitCode::from(2);
        }
    };
    match run(&opts) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("smoltcp-sink: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(o: &Opts) -> std::io::Result<()> {
    let mut device = TunTapInterface::new(&o.tun, Medium::Ip)?;
    let fd = device.as_raw_fd();

    let mut config = Config::new(HardwareAddress::Ip);
    config.random_seed = seed();
    let mut iface = Interface::new(config, &mut device, Instant::now());
    iface.update_ip_addrs(|addrs| {
        addrs
            .push(IpCidr::new(IpAddress::Ipv4(o.addr), 32))
            .expect("one address fits");
    });

    let rx = tcp::SocketBuffer::new(vec![0; o.buf]);
    let tx = tcp::SocketBuffer::new(vec![0; o.buf]);
    let mut sockets = SocketSet::new(vec![]);
    let handle = sockets.add(tcp::Socket::new(rx, tx));
    eprintln!(
        "smoltcp-sink: {} on {}:{} via {} (buffers {} bytes)",
        if o.mode == Mode::Sink {
            "sink"
        } else {
            "source"
        },
        o.addr,
        o.port,
        o.tun,
        o.buf
    );

    // Bytes moved on the current connection; None while listening.
    let mut moved: Option<u64> = None;
    loop {
        iface.poll(Instant::now(), &mut device, &mut sockets);
        let sock = sockets.get_mut::<tcp::Socket>(handle);
        if !sock.is_open() {
            if let Some(n) = moved.take() {
                eprintln!("smoltcp-sink: connection done, {n} bytes");
            }
            sock.listen(o.port).map_err(std::io::Error::other)?;
        }
        let mut busy = false;
        if sock.is_active() && moved.is_none() {
            moved = Some(0);
        }
        if let Some(n) = moved.as_mut() {
            match o.mode {
                Mode::Sink => {
                    while sock.can_recv() {
                        let got = sock
                            .recv(|b| (b.len(), b.len()))
                            .map_err(std::io::Error::other)?;
                        *n += got as u64;
                        busy = true;
                    }
                    if !sock.may_recv() && sock.state() == tcp::State::CloseWait {
                        sock.close();
                        busy = true;
                    }
                }
                Mode::Source => {
                    while *n < o.bytes && sock.can_send() {
                        let left = o.bytes - *n;
                        let put = sock
                            .send(|b| {
                                let k = b.len().min(usize::try_from(left).unwrap_or(usize::MAX));
                                (k, k)
                            })
                            .map_err(std::io::Error::other)?;
                        if put == 0 {
                            break;
                        }
                        *n += put as u64;
                        busy = true;
                    }
                    if *n == o.bytes && sock.may_send() {
                        sock.close();
                        busy = true;
                    }
                    // Discard anything the client sends.
                    while sock.can_recv() {
                        sock.recv(|b| (b.len(), ()))
                            .map_err(std::io::Error::other)?;
                    }
                }
            }
        }
        if busy {
            continue;
        }
        let delay = iface.poll_delay(Instant::now(), &sockets);
        phy_wait(fd, delay)?;
    }
}

/// A seed for smoltcp's ISN generation; the benchmark needs no strong randomness.
fn seed() -> u64 {
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0);
    t ^ (u64::from(std::process::id()) << 32)
}
