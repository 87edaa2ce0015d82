//! The daemon's log: tracing to standard error, filtered by RUST_LOG when it
//! is set at start, else by `--log-level` (`[log] level`), else `info`. The
//! filter sits behind `tracing_subscriber::reload`, so a reload (SIGHUP) can
//! change it while the daemon runs.
//!
//! RUST_LOG wins because it is what one sets by hand for a single run (to
//! debug one start, say) over a file that is the service's lasting state; a
//! reload then leaves it alone and says so.

use std::io::IsTerminal;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{reload, EnvFilter, Registry};

/// The filter when nothing says otherwise.
pub const DEFAULT_FILTER: &str = "info";

/// Changes the running log filter.
pub struct LogControl {
    handle: reload::Handle<EnvFilter, Registry>,
    from_env: bool,
}

/// Installs the global subscriber, filtered by RUST_LOG if it is set and
/// valid, else by `level` (already checked by `--log-level`'s parser), else
/// [`DEFAULT_FILTER`].
pub fn init(level: Option<&str>) -> LogControl {
    let env = EnvFilter::try_from_default_env().ok();
    let from_env = env.is_some();
    let filter = env.unwrap_or_else(|| filter_of(level));
    let (layer, handle) = reload::Layer::new(filter);
    tracing_subscriber::registry()
        .with(layer)
        .with(
            tracing_subscriber::fmt::layer()
                .with_writer(std::io::stderr)
                .with_ansi(std::io::stderr().is_terminal()),
        )
        .init();
    LogControl { handle, from_env }
}

fn filter_of(level: Option<&str>) -> EnvFilter {
    let text = level.unwrap_or(DEFAULT_FILTER);
    EnvFilter::builder()
        .parse(text)
        .unwrap_or_else(|_| EnvFilter::new(DEFAULT_FILTER))
}

impl LogControl {
    /// RUST_LOG chose the filter at start (and keeps it).
    pub fn from_env(&self) -> bool {
        self.from_env
    }

    /// The filter `level` (`None`: the default) from now on.
    pub fn set(&self, level: Option<&str>) -> Result<(), String> {
        let text = level.unwrap_or(DEFAULT_FILTER);
        let filter = EnvFilter::builder()
            .parse(text)
            .map_err(|e| format!("`{text}` is not a log filter: {e}"))?;
        self.handle
            .reload(filter)
            .map_err(|e| format!("cannot change the log filter: {e}"))
    }
}
