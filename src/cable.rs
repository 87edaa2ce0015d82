//! Two engines joined in memory, as two drivers and a cable would join them:
//! for tests of the socket layer and the services without a TUN device.

use crate::socket::{Handle, Shared};
use mptun_stack::{Config, Stack};
use std::net::IpAddr;
use std::time::Duration;

/// An engine answering at `addr`, with its randomness from `seed`.
pub fn engine(seed: u64, addr: &str) -> Handle {
    let mut s = Stack::new(Config {
        seed: seed.into(),
        ..Config::default()
    });
    s.add_address(addr.parse::<IpAddr>().expect("an IP address"));
    Handle::new(Shared::new(s))
}

/// Moves packets between the two engines and runs their timers, until the
/// task is dropped or aborted.
pub fn spawn_cable(a: Handle, b: Handle) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut buf = vec![0u8; 2048];
        loop {
            let mut moved = false;
            for (from, to) in [(&a, &b), (&b, &a)] {
                loop {
                    let pkt = {
                        let mut s = from.lock();
                        let now = s.now();
                        s.stack.handle_timeout(now);
                        s.dispatch_events();
                        s.stack
                            .poll_transmit(now, &mut buf)
                            .map(|n| buf[..n].to_vec())
                    };
                    let Some(pkt) = pkt else { break };
                    moved = true;
                    let mut s = to.lock();
                    let now = s.now();
                    s.stack.handle_packet(now, &pkt);
                    s.dispatch_events();
                }
            }
            if !moved {
                tokio::select! {
                    _ = a.notified() => {}
                    _ = b.notified() => {}
                    _ = tokio::time::sleep(Duration::from_millis(1)) => {}
                }
            }
        }
    })
}
