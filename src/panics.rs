//! What the daemon does about panics.
//!
//! A panic is a bug. tokio catches a panic in a spawned task and lets the rest run
//! on, which is fine for a task that held nothing shared (a control client, say)
//! but not for one that held the engine's lock: the engine may be half updated,
//! and running on could corrupt connections or panic again at every turn. So:
//!
//! - [`install`] adds to the default panic hook (which prints the message) a
//!   record of the message and location ([`last`]) and a wake-up of the driver;
//! - the driver stops at its next turn if the engine's mutex is poisoned
//!   (`Handle::is_poisoned`), and `mptun run` runs the driver in its own task and
//!   treats its panic the same way: it exits with status 1 and
//!   `internal error: <message>` after removing the control socket, the routes and
//!   the TUN device, without touching the engine again (no graceful close).
//!
//! `panic = "abort"` would also stop the daemon, but would leave the TUN device,
//! its routes and the control socket behind, and could not say what happened in
//! one line.

use std::panic::PanicHookInfo;
use std::sync::Mutex;

static LAST: Mutex<Option<String>> = Mutex::new(None);

/// Tests that panic on purpose and read [`last`] take this, so that their panics
/// do not interleave.
#[cfg(test)]
pub(crate) static TEST_SERIAL: Mutex<()> = Mutex::new(());

/// What the hook calls after recording a panic.
type Wake = Box<dyn Fn() + Send + Sync>;
static WAKE: Mutex<Option<Wake>> = Mutex::new(None);

/// Installs the hook (once per process) and makes `wake` what it calls after
/// each panic, to wake the driver (a later call replaces it).
pub fn install(wake: impl Fn() + Send + Sync + 'static) {
    *WAKE.lock().unwrap_or_else(|e| e.into_inner()) = Some(Box::new(wake));
    static INSTALLED: std::sync::Once = std::sync::Once::new();
    INSTALLED.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            record(info);
            previous(info);
            if let Some(wake) = &*WAKE.lock().unwrap_or_else(|e| e.into_inner()) {
                wake();
            }
        }));
    });
}

/// "MESSAGE at FILE:LINE" of a panic.
fn describe(info: &PanicHookInfo<'_>) -> String {
    let payload = info.payload();
    let msg = payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "panic with a non-string payload".to_string());
    match info.location() {
        Some(l) => format!("{msg} at {}:{}", l.file(), l.line()),
        None => msg,
    }
}

fn record(info: &PanicHookInfo<'_>) {
    let text = describe(info);
    *LAST.lock().unwrap_or_else(|e| e.into_inner()) = Some(text);
}

/// The most recent panic seen by the hook: "MESSAGE at FILE:LINE".
pub fn last() -> Option<String> {
    LAST.lock().unwrap_or_else(|e| e.into_inner()).clone()
}

/// The message of a panic payload (as from `JoinError::into_panic`), or the
/// hook's record of it.
pub fn message(payload: Box<dyn std::any::Any + Send>) -> String {
    let msg = payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned());
    // The hook's record has the location too; prefer it when it is this panic.
    match (msg, last()) {
        (Some(m), Some(l)) if l.starts_with(&m) => l,
        (Some(m), _) => m,
        (None, Some(l)) => l,
        (None, None) => "panic with a non-string payload".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    #[test]
    fn the_hook_records_and_wakes() {
        let _serial = TEST_SERIAL.lock().unwrap_or_else(|e| e.into_inner());
        let woken = Arc::new(AtomicUsize::new(0));
        let w = woken.clone();
        install(move || {
            w.fetch_add(1, Ordering::SeqCst);
        });
        let r = std::thread::spawn(|| panic!("engine exploded: {}", 42)).join();
        let payload = r.unwrap_err();
        let last = last().unwrap();
        assert!(
            last.starts_with("engine exploded: 42 at src/panics.rs:"),
            "{last}"
        );
        assert!(woken.load(Ordering::SeqCst) >= 1);
        let m = message(payload);
        assert!(
            m.starts_with("engine exploded: 42 at src/panics.rs:"),
            "{m}"
        );
        assert_eq!(message(Box::new(7u8)), last);
    }
}
