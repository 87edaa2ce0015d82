//! The engine's cost per byte, for `scripts/bench_cost.sh`: one fixed transfer
//! between two stacks in memory (1 Gbit/s, 1 ms each way, no loss, virtual
//! time), every
//! call into the sending stack made inside [`sender`] and every call into the
//! receiving one inside [`receiver`], so that
//! `valgrind --tool=callgrind --toggle-collect='*cost::sender*'` counts the
//! instructions of one side only. Instruction counts repeat from run to run on
//! a machine whose timings do not.
//!
//! ```text
//! cargo run --release -p mptun-stack --example cost -- tcp 32
//! cargo run --release -p mptun-stack --example cost -- mptcp 32 --offload
//! ```
//!
//! `--offload` moves the packets as the daemon does over a TUN with offloads:
//! the stacks hand over super-packets of up to 44 segments
//! (`Stack::poll_transmit_gso`) with partial checksums, and take them whole
//! (`Stack::handle_super_packet`) without checking checksums, as from the
//! kernel's GRO; the wire still spends each super-packet's bytes' time.
//!
//! `--direct` has the receiving application take the bytes with a direct
//! reader (`Stack::set_direct_reader`), as the daemon's sink and relays do,
//! instead of `recv` into a buffer of its own.
//!
//! Prints one JSON line (bytes, segments each way, virtual duration).

use mptun_stack::wire::TxChecksum;
use mptun_stack::{Config, ConnId, Event, Instant, Stack};
use std::collections::VecDeque;
use std::hint::black_box;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

const PORT: u16 = 5001;
/// One-way delay of the path (both directions).
const DELAY: Duration = Duration::from_millis(1);
/// The path's rate each way, in bytes per microsecond (1 Gbit/s): packets
/// arrive one by one, spaced as on a wire, so the receiver acknowledges as
/// it would on a real path instead of once per window.
const BYTES_PER_US: u64 = 125;
const CHUNK: usize = 64 * 1024;
/// Segments in one super-packet with `--offload` (as the daemon asks).
const BURST: usize = 64;

/// Calls into each stack. Besides the count they keep [`sender`] and
/// [`receiver`] from being identical code, which the compiler would fold
/// into one function under one name.
static CALLS: [AtomicU64; 2] = [AtomicU64::new(0), AtomicU64::new(0)];

/// Every call into the sending stack: a frame of its own for callgrind.
#[inline(never)]
fn sender<R>(f: impl FnOnce() -> R) -> R {
    CALLS[0].fetch_add(1, Ordering::Relaxed);
    black_box(f())
}

/// Every call into the receiving stack.
#[inline(never)]
fn receiver<R>(f: impl FnOnce() -> R) -> R {
    CALLS[1].fetch_add(1, Ordering::Relaxed);
    black_box(f())
}

struct Host {
    stack: Stack,
    is_sender: bool,
}

impl Host {
    fn call<R>(&mut self, f: impl FnOnce(&mut Stack) -> R) -> R {
        if self.is_sender {
            sender(|| f(&mut self.stack))
        } else {
            receiver(|| f(&mut self.stack))
        }
    }
}

fn config(seed: u64, mptcp: bool) -> Config {
    let mut c = Config {
        seed: seed.into(),
        ..Config::default()
    };
    c.mptcp.enabled = mptcp;
    c
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let offload = args.iter().any(|a| a == "--offload");
    let direct = args.iter().any(|a| a == "--direct");
    let args: Vec<&String> = args
        .iter()
        .filter(|a| *a != "--offload" && *a != "--direct")
        .collect();
    let (mptcp, mib) = match args.as_slice() {
        [kind, mib] if *kind == "tcp" || *kind == "mptcp" => match mib.parse::<u64>() {
            Ok(m) if m > 0 => (*kind == "mptcp", m),
            _ => return usage(),
        },
        _ => return usage(),
    };
    match run(mptcp, mib << 20, offload, direct) {
        Ok(line) => {
            println!("{line}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("cost: {e}");
            ExitCode::FAILURE
        }
    }
}

fn usage() -> ExitCode {
    eprintln!("usage: cost tcp|mptcp MIB [--offload] [--direct]");
    ExitCode::from(2)
}

fn run(mptcp: bool, total: u64, offload: bool, direct: bool) -> Result<String, String> {
    let a_ip = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1));
    let b_ip = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2));
    let mut hosts = [
        Host {
            stack: Stack::new(config(1, mptcp)),
            is_sender: true,
        },
        Host {
            stack: Stack::new(config(2, mptcp)),
            is_sender: false,
        },
    ];
    hosts[0].stack.add_address(a_ip);
    hosts[1].stack.add_address(b_ip);
    if offload {
        for h in hosts.iter_mut() {
            h.stack.set_tx_checksum(TxChecksum::Partial);
        }
    }
    let burst = if offload { BURST } else { 1 };
    hosts[1]
        .call(|s| s.listen(PORT))
        .map_err(|e| format!("listen: {e:?}"))?;
    let mut now = Instant::ZERO;
    let tx = hosts[0]
        .call(|s| s.connect(now, None, SocketAddr::new(b_ip, PORT)))
        .map_err(|e| format!("connect: {e:?}"))?;
    let mut rx: Option<ConnId> = None;
    let data = vec![0x5au8; CHUNK];
    let mut buf = vec![0u8; CHUNK];
    let mut pkt = vec![0u8; 65536];
    // Packets in flight: (arrival, to host, bytes, segments it holds).
    let mut wire: VecDeque<(Instant, usize, Vec<u8>, usize)> = VecDeque::new();
    let (mut sent, mut received, mut shut, mut eof) = (0u64, 0u64, false, false);
    let mut segments = [0u64; 2];
    // Bytes the direct reader took (`--direct`).
    let taken = Arc::new(AtomicU64::new(0));
    // When each direction's wire is free again (unbounded queue: no loss).
    let mut busy_until = [Instant::ZERO; 2];
    let deadline = Instant::ZERO + Duration::from_secs(600);
    while !eof {
        if now > deadline {
            return Err(format!(
                "no end after 600 s virtual: {received} of {total} bytes"
            ));
        }
        while wire.front().is_some_and(|(at, _, _, _)| *at <= now) {
            let (_, to, p, segs) = wire.pop_front().expect("checked");
            hosts[to].call(|s| match (offload, segs) {
                (false, _) => s.handle_packet(now, &p),
                (true, 1) => s.handle_packet_checksum_offloaded(now, &p),
                (true, n) => s.handle_super_packet(now, &p, n),
            });
        }
        for h in hosts.iter_mut() {
            if h.stack.poll_timeout().is_some_and(|t| t <= now) {
                h.call(|s| s.handle_timeout(now));
            }
        }
        while let Some(ev) = hosts[1].call(|s| s.poll_event()) {
            if let Event::Accepted { id, .. } = ev {
                rx = Some(id);
                if direct {
                    let taken = taken.clone();
                    let reader = move |part: &[u8]| {
                        black_box(part);
                        taken.fetch_add(part.len() as u64, Ordering::Relaxed);
                        part.len()
                    };
                    hosts[1]
                        .call(|s| s.set_direct_reader(id, Some(Box::new(reader))))
                        .map_err(|e| format!("set_direct_reader: {e:?}"))?;
                }
            }
        }
        while hosts[0].call(|s| s.poll_event()).is_some() {}
        // The sender's application: as much as the stack takes, then its FIN.
        while sent < total {
            let n = (total - sent).min(CHUNK as u64) as usize;
            match hosts[0].call(|s| s.send(tx, &data[..n])) {
                Ok(0) => break,
                Ok(k) => sent += k as u64,
                Err(e) => return Err(format!("send: {e:?}")),
            }
        }
        if sent == total && !shut {
            hosts[0]
                .call(|s| s.shutdown(tx))
                .map_err(|e| format!("shutdown: {e:?}"))?;
            shut = true;
        }
        // The receiver's: everything there is, until the end of the stream.
        if let Some(id) = rx {
            loop {
                match hosts[1].call(|s| s.recv(id, &mut buf)) {
                    Ok(0) => break,
                    Ok(k) => received += k as u64,
                    Err(mptun_stack::Error::Finished) => {
                        received += taken.load(Ordering::Relaxed);
                        eof = true;
                        break;
                    }
                    Err(e) => return Err(format!("recv: {e:?}")),
                }
            }
        }
        for (i, h) in hosts.iter_mut().enumerate() {
            while let Some(t) = h.call(|s| s.poll_transmit_gso(now, &mut pkt, burst)) {
                let (len, segs) = (t.len, t.segments);
                segments[i] += segs as u64;
                let start = busy_until[i].max(now);
                busy_until[i] = start + Duration::from_micros((len as u64).div_ceil(BYTES_PER_US));
                wire.push_back((busy_until[i] + DELAY, 1 - i, pkt[..len].to_vec(), segs));
            }
        }
        let next = [
            wire.front().map(|(at, _, _, _)| *at),
            hosts[0].stack.poll_timeout(),
            hosts[1].stack.poll_timeout(),
        ]
        .into_iter()
        .flatten()
        .min();
        match next {
            Some(t) if t > now => now = t,
            Some(_) => {}
            None if eof => {}
            None => return Err(format!("stalled at {received} of {total} bytes")),
        }
    }
    if received != total {
        return Err(format!("received {received} of {total} bytes"));
    }
    let mptcp_seen = hosts[1]
        .stack
        .info(rx.expect("accepted"))
        .is_some_and(|i| i.mptcp.is_some());
    if mptcp_seen != mptcp {
        return Err(format!(
            "asked for mptcp={mptcp}, the connection had mptcp={mptcp_seen}"
        ));
    }
    Ok(format!(
        "{{\"mptcp\": {mptcp}, \"offload\": {offload}, \"bytes\": {total}, \"segments_sender\": {}, \"segments_receiver\": {}, \"calls_sender\": {}, \"calls_receiver\": {}, \"virtual_ms\": {}}}",
        segments[0],
        segments[1],
        CALLS[0].load(Ordering::Relaxed),
        CALLS[1].load(Ordering::Relaxed),
        now.as_millis()
    ))
}
