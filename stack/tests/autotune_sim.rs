//! Buffer auto-tuning over the simulated network: memory follows the path's
//! bandwidth-delay product, not the configured ceiling, and the windows still
//! grow to fill a long fat path (TCP and MPTCP, both directions of the
//! transfer's buffers: the sender's and the receiver's).

mod sim;

use core::time::Duration;
use sim::*;

fn link(mbit: u64, delay_ms: u64, queue: usize) -> LinkParams {
    LinkParams {
        delay: Duration::from_millis(delay_ms),
        rate: Some(mbit * 1_000_000 / 8),
        queue,
        ..LinkParams::default()
    }
}

fn transfer(mptcp: bool, bytes: u64, path: LinkParams) -> (f64, [usize; 2]) {
    let mut sc = Scenario::basic(5, bytes, 0, path);
    sc.client_config.mptcp.enabled = mptcp;
    sc.server_config.mptcp.enabled = mptcp;
    let r = run_transfer(&sc).expect("transfer");
    if mptcp {
        assert_eq!(r.counters[1].mptcp_connections, 1, "{:?}", r.counters[1]);
    }
    let goodput = bytes as f64 / r.completion.as_secs_f64();
    (goodput, r.peak_memory)
}

/// A 20 Mbit/s path with a 40 ms round trip (a bandwidth-delay product of
/// 100 KB, 64 KiB of queue): the configured 8 MiB buffers never fill, and
/// each end holds at most what the path needs, while the transfer runs at
/// the path's rate.
#[test]
fn memory_follows_the_path_not_the_ceiling() {
    for mptcp in [false, true] {
        let rate = 20e6 / 8.0;
        let (goodput, peak) = transfer(mptcp, 16 << 20, link(20, 20, 64 * 1024));
        eprintln!(
            "{}: {:.1} Mbit/s, peak memory client {} KiB, server {} KiB",
            if mptcp { "MPTCP" } else { "TCP" },
            goodput * 8.0 / 1e6,
            peak[0] / 1024,
            peak[1] / 1024
        );
        assert!(
            goodput > 0.85 * rate,
            "goodput {goodput:.0} B/s of {rate:.0}"
        );
        for p in peak {
            assert!(p <= 2 << 20, "{p} bytes held for a 100 KB path");
        }
    }
}

/// 200 Mbit/s over a 100 ms round trip (2.5 MB in flight): the windows must
/// grow far past their starting 128 KiB for the transfer to run near the
/// path's rate.
#[test]
fn windows_grow_to_fill_a_long_fat_path() {
    for mptcp in [false, true] {
        let rate = 200e6 / 8.0;
        let (goodput, peak) = transfer(mptcp, 96 << 20, link(200, 50, 16 << 20));
        eprintln!(
            "{}: {:.1} Mbit/s, peak memory client {} KiB, server {} KiB",
            if mptcp { "MPTCP" } else { "TCP" },
            goodput * 8.0 / 1e6,
            peak[0] / 1024,
            peak[1] / 1024
        );
        assert!(
            goodput > 0.7 * rate,
            "goodput {goodput:.0} B/s of {rate:.0}"
        );
    }
}
