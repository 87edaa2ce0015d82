//! systemd's watchdog (`WatchdogSec=`): `WATCHDOG=1` only while every engine
//! is alive.
//!
//! A timer alone would prove only that the runtime thread it runs on is
//! responsive. Each round therefore wakes every shard's driver and, one
//! interval later, checks that each finished a turn since (`Handle::turns`):
//! a driver that is deadlocked, stuck in a turn, or gone (its thread panicked)
//! makes none, and then the pings stop and systemd restarts the daemon after
//! `WATCHDOG_USEC`. An engine poisoned by a panic stops them too. The task
//! runs on shard 0's runtime, so a blocked shard 0 stops them as well.

use crate::notify::Notifier;
use crate::shards::Mesh;
use std::sync::Arc;
use std::time::Duration;
use tracing::warn;

/// The shards that made no turn between two readings of their turn counts
/// (`before` taken when they were woken, `now` one interval later), or whose
/// engine is poisoned.
pub fn stalled(before: &[u64], now: &[u64], poisoned: &[bool]) -> Vec<usize> {
    (0..now.len())
        .filter(|&i| before.get(i) == Some(&now[i]) || poisoned.get(i) == Some(&true))
        .collect()
}

fn turns(mesh: &Mesh) -> Vec<u64> {
    mesh.handles().map(|h| h.turns()).collect()
}

/// Ping systemd every `interval` (half of `WATCHDOG_USEC`) while all shards
/// turn; runs until aborted (the graceful shutdown aborts it after
/// `STOPPING=1`).
pub async fn run(mesh: Arc<Mesh>, notifier: Arc<Notifier>, interval: Duration) {
    let mut before = turns(&mesh);
    mesh.kick_all();
    let mut withheld = false;
    loop {
        tokio::time::sleep(interval).await;
        let now = turns(&mesh);
        let poisoned: Vec<bool> = mesh.handles().map(|h| h.is_poisoned()).collect();
        let stalled = stalled(&before, &now, &poisoned);
        if stalled.is_empty() {
            notifier.watchdog_ping();
            withheld = false;
        } else if !withheld {
            warn!(
                shards = ?stalled,
                "an engine made no turn in {interval:?}: watchdog pings withheld"
            );
            withheld = true;
        }
        before = now;
        // The next round's proof: each driver serves this wake-up with a turn.
        mesh.kick_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_shard_without_a_turn_is_stalled() {
        assert!(stalled(&[1, 5], &[2, 9], &[false, false]).is_empty());
        assert_eq!(stalled(&[1, 5], &[2, 5], &[false, false]), [1]);
        assert_eq!(stalled(&[1, 5], &[1, 5], &[false, false]), [0, 1]);
    }

    /// The task itself: pings while stand-in drivers answer every wake-up
    /// with a turn; none once one of them stops turning.
    #[tokio::test]
    async fn pings_stop_when_one_driver_stops_turning() {
        use crate::socket::{Handle, Shared};
        use mptun_stack::{Config, Stack};
        use std::os::unix::net::UnixDatagram;
        use std::sync::atomic::{AtomicBool, Ordering};

        let dir = std::env::temp_dir().join(format!("mptun-watchdog-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("notify.sock");
        let _ = std::fs::remove_file(&path);
        let listener = UnixDatagram::bind(&path).unwrap();
        listener.set_nonblocking(true).unwrap();
        let pings = || {
            let mut n = 0;
            let mut buf = [0u8; 64];
            while let Ok(k) = listener.recv(&mut buf) {
                assert_eq!(&buf[..k], b"WATCHDOG=1\n");
                n += 1;
            }
            n
        };
        let handles: Vec<Handle> = (0..2)
            .map(|_| Handle::new(Shared::new(Stack::new(Config::default()))))
            .collect();
        let stuck = Arc::new(AtomicBool::new(false));
        for (i, h) in handles.iter().cloned().enumerate() {
            let stuck = stuck.clone();
            tokio::spawn(async move {
                loop {
                    h.notified().await;
                    if i == 1 && stuck.load(Ordering::Relaxed) {
                        continue;
                    }
                    h.count_turn();
                }
            });
        }
        let mesh = Mesh::new(handles, None);
        let notifier = Arc::new(Notifier::to(path.to_str().unwrap()).unwrap());
        let interval = Duration::from_millis(40);
        let task = tokio::spawn(run(mesh, notifier, interval));
        tokio::time::sleep(interval * 8).await;
        let alive = pings();
        assert!(alive >= 5, "{alive} pings in 8 intervals");
        stuck.store(true, Ordering::Relaxed);
        tokio::time::sleep(interval * 2).await;
        pings(); // at most one round was already under way
        tokio::time::sleep(interval * 8).await;
        assert_eq!(pings(), 0, "pings while shard 1 makes no turn");
        task.abort();
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_poisoned_engine_is_stalled_even_if_it_turned() {
        assert_eq!(stalled(&[1, 5], &[2, 6], &[true, false]), [0]);
    }
}
