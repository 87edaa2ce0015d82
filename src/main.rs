//! `mptun`: a userspace TCP/MPTCP stack on a Linux TUN interface.
//!
//! The daemon (TUN device, event loop, services, control socket) is being built on
//! top of the `mptun-stack` engine; this binary currently parses its command line.

use clap::Parser;

/// mptun — a userspace TCP/MPTCP stack that owns a Linux TUN interface.
///
/// mptun reads raw IP packets from a TUN device, runs them through its own TCP
/// engine (extended with Multipath TCP), and writes its segments back, so real
/// Linux hosts see a genuine TCP/MPTCP peer.
///
/// This build contains the sans-IO TCP engine (crate `mptun-stack`); the daemon
/// subcommands (`run`, `status`) arrive with the TUN driver.
#[derive(Debug, Parser)]
#[command(name = "mptun", version, about, long_about)]
struct Cli {}

fn main() {
    let _cli = Cli::parse();
    println!(
        "mptun {}: the TCP engine is built; the TUN daemon is not yet. See --help.",
        env!("CARGO_PKG_VERSION")
    );
}
