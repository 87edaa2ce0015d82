//! Command line (clap).
//!
//! The daemon's interface to users and scripts: `mptun run ...` starts the stack on a
//! TUN device, `mptun status ...` queries a running daemon over its control socket.
//!
//! Parsing is done in two steps:
//!
//! 1. clap parses each value on its own ([`AddrSpec`], [`ForwardSpec`],
//!    [`LocalForwardSpec`], [`ImpairArg`], ports, MTU, TUN name). A bad value is a
//!    one-line clap error and exit status 2.
//! 2. [`Cli::validate`] (or [`RunArgs::validate`]) checks what needs several
//!    options at once: the MTU against the address families, port clashes between
//!    services, `--impair` addresses that are not `--addr` addresses.
//!
//! [`Cli::parse_validated`] does both and reports a validation failure the same way
//! clap reports a bad value (one line on stderr, exit status 2).

// The field doc comments are written for `--help` (clap shows them verbatim), so
// they contain `[::1]:80` and `<TUN>`, which rustdoc would read as links and tags.
#![allow(rustdoc::broken_intra_doc_links, rustdoc::invalid_html_tags)]

use mptun_stack::impair::ImpairSpec;
use mptun_stack::{CcAlgorithm, SchedulerKind, SynCookies, TokenPrefix};
use std::collections::HashMap;
use std::ffi::OsString;
use std::fmt;
use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use clap::error::ErrorKind;
use clap::{Args, CommandFactory, Parser, Subcommand, ValueHint};

/// TUN device used when `--tun` is not given.
pub const DEFAULT_TUN: &str = "mptun0";
/// MTU used when `--mtu` is not given.
pub const DEFAULT_MTU: u16 = 1500;
/// Smallest MTU accepted when every address is IPv4 (RFC 791 minimum reassembly size).
pub const MIN_MTU_IPV4: u16 = 576;
/// Smallest MTU accepted when any address is IPv6 (RFC 8200 minimum link MTU).
pub const MIN_MTU_IPV6: u16 = 1280;
/// TUN transmit queue length used when `--txqueuelen` is not given.
pub const DEFAULT_TXQUEUELEN: u32 = 10_000;
/// Directory of the control sockets when `--control` is not given.
pub const DEFAULT_CONTROL_DIR: &str = "/run/mptun";
/// Longest Linux interface name in bytes (IFNAMSIZ - 1).
pub const MAX_TUN_NAME_LEN: usize = 15;

const LOGGING_HELP: &str = "\
Logging:
  There is no --log option: logging is configured with the RUST_LOG environment
  variable, in tracing's EnvFilter syntax. Examples:
    RUST_LOG=mptun=debug                  daemon debug messages
    RUST_LOG=info,mptun_stack=trace       everything at info, the TCP engine at trace";

/// A one-line description of a bad argument or a bad combination of arguments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CliError {
    msg: String,
    at: Option<(&'static str, usize)>,
}

impl CliError {
    fn new(msg: impl Into<String>) -> Self {
        Self {
            msg: msg.into(),
            at: None,
        }
    }

    /// Blames the `index`th value of the argument `id` (a `RunArgs` field),
    /// so that a configuration file can name the line it came from.
    fn at(mut self, id: &'static str, index: usize) -> Self {
        self.at = Some((id, index));
        self
    }

    /// The message (without a trailing newline).
    pub fn message(&self) -> &str {
        &self.msg
    }

    /// The argument (its id) and which of its values the error is about.
    pub fn location(&self) -> Option<(&'static str, usize)> {
        self.at
    }
}

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.msg)
    }
}

impl std::error::Error for CliError {}

/// What `mptun --version` prints after the name: the crate's version and the
/// git commit it was built from ("unknown" outside a repository; `build.rs`).
pub const VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (commit ",
    env!("MPTUN_GIT_COMMIT"),
    ")"
);

/// mptun: a userspace TCP/MPTCP stack that owns a Linux TUN interface.
///
/// mptun reads raw IP packets from a TUN device, runs them through its own TCP
/// engine (extended with Multipath TCP), and writes its segments back, so real
/// Linux hosts see a genuine TCP/MPTCP peer. `mptun run` starts the stack with its
/// services; `mptun status` asks a running instance what it is doing.
#[derive(Debug, Clone, PartialEq, Eq, Parser)]
#[command(name = "mptun", version = VERSION, propagate_version = true, after_long_help = LOGGING_HELP)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Clone, PartialEq, Eq, Subcommand)]
// Parsed once at start-up; boxing the larger variant would buy nothing.
#[allow(clippy::large_enum_variant)]
pub enum Command {
    /// Create the TUN device and run the stack and its services until stopped.
    Run(RunArgs),
    /// Show the state of a running mptun (addresses, connections, subflows).
    Status(StatusArgs),
    /// Change the addresses of a running mptun (like `ip mptcp endpoint`).
    Addr(AddrArgs),
    /// Print the path events of a running mptun as they happen (like `ip mptcp
    /// monitor`).
    ///
    /// One line per event of an MPTCP connection: CREATED, ESTABLISHED and
    /// CLOSED; SF_ESTABLISHED and SF_CLOSED for each subflow (with `error=`,
    /// `reset_reason=` and why in words); ANNOUNCED and REMOVED for the
    /// peer's addresses, LOCAL_ANNOUNCED and LOCAL_REMOVED for ours;
    /// SF_PRIORITY when a subflow becomes a backup or stops being one;
    /// FALLBACK (with why) and MP_FAIL. Runs until interrupted or the daemon
    /// stops. A reader too slow for the daemon is told how many events it
    /// lost.
    Monitor(MonitorArgs),
    /// Read a configuration file as `mptun run --config FILE` would, and print
    /// the configuration it amounts to (TOML, every setting, defaults too).
    ///
    /// Exit status 0 if the file is good, 2 if not (with the file, line and
    /// key of the first error).
    CheckConfig(CheckConfigArgs),
    /// Print a shell completion script to stdout.
    ///
    /// bash: `mptun completions bash > /etc/bash_completion.d/mptun`;
    /// zsh: into a directory of `$fpath` as `_mptun`; fish:
    /// `~/.config/fish/completions/mptun.fish`.
    Completions(CompletionsArgs),
    /// Print the manual page (roff) to stdout: mptun(1), or mptun-COMMAND(1).
    ///
    /// `mptun man | man -l -` reads it; `mptun man --dir DIR` writes every page
    /// (mptun.1, mptun-run.1, ...) into DIR instead.
    Man(ManArgs),
}

/// Options of `mptun completions`.
#[derive(Debug, Clone, PartialEq, Eq, Args)]
pub struct CompletionsArgs {
    /// The shell to complete for.
    #[arg(value_enum, value_name = "SHELL")]
    pub shell: clap_complete::Shell,
}

/// Options of `mptun man`.
#[derive(Debug, Clone, PartialEq, Eq, Args)]
pub struct ManArgs {
    /// The subcommand whose page to print (mptun-COMMAND(1)); none: mptun(1).
    #[arg(value_name = "COMMAND")]
    pub command: Option<String>,
    /// Write all pages into this directory instead of one to stdout.
    #[arg(long, value_name = "DIR", value_hint = ValueHint::DirPath, conflicts_with = "command")]
    pub dir: Option<PathBuf>,
}

/// Options of `mptun check-config`.
#[derive(Debug, Clone, PartialEq, Eq, Args)]
pub struct CheckConfigArgs {
    /// The configuration file (TOML).
    #[arg(value_name = "FILE", value_hint = ValueHint::FilePath)]
    pub file: PathBuf,
}

/// Options of `mptun addr`.
#[derive(Debug, Clone, PartialEq, Eq, Args)]
pub struct AddrArgs {
    #[command(subcommand)]
    pub op: AddrOp,

    /// Control socket of the instance [default: /run/mptun/<TUN>.sock].
    #[arg(long, global = true, value_name = "PATH", value_hint = ValueHint::FilePath)]
    pub control: Option<PathBuf>,

    /// TUN device of the instance; used to find its control socket.
    #[arg(long, global = true, value_name = "NAME", default_value = DEFAULT_TUN, value_parser = parse_tun_name)]
    pub tun: String,
}

impl AddrArgs {
    pub fn control_path(&self) -> PathBuf {
        control_path(self.control.as_deref(), &self.tun)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Subcommand)]
pub enum AddrOp {
    /// Answer for another address: IP[,signal][,subflow][,backup] as --addr.
    /// `signal` announces it on MPTCP connections accepted elsewhere;
    /// `subflow` opens subflows from it on connections mptun initiated.
    Add {
        #[arg(value_name = "IP[,FLAG...]", value_parser = parse_addr_spec_str)]
        spec: String,
    },
    /// Stop answering for an address; MPTCP peers get REMOVE_ADDR and its
    /// subflows are closed.
    Del {
        #[arg(value_name = "IP")]
        addr: IpAddr,
    },
    /// Mark an address backup or not; its subflows send MP_PRIO.
    Set {
        #[arg(value_name = "IP")]
        addr: IpAddr,
        #[arg(value_enum)]
        prio: Prio,
    },
}

/// The priority `mptun addr set` gives an address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Prio {
    Backup,
    Nobackup,
}

/// Checks an `IP[,FLAG...]` argument early (exit 2 on a typo) but keeps the text
/// for the control request.
fn parse_addr_spec_str(s: &str) -> Result<String, CliError> {
    s.parse::<AddrSpec>().map(|_| s.to_string())
}

/// Options of `mptun run`.
#[derive(Debug, Clone, PartialEq, Eq, Args)]
pub struct RunArgs {
    /// Read the settings from FILE (TOML; see examples/mptun.toml); options
    /// given here too override the file's.
    ///
    /// Every option below has a key in the file (--mtu is `mtu` in `[tun]`,
    /// each --addr an `[[address]]` table, ...). An option given on the
    /// command line replaces the file's value; a list option (--addr, --echo,
    /// --forward, ...) replaces the file's whole list. `mptun check-config
    /// FILE` shows what a file amounts to.
    #[arg(long, value_name = "FILE", value_hint = ValueHint::FilePath)]
    pub config: Option<PathBuf>,

    /// TUN device to create (or attach to).
    ///
    /// A Linux interface name: 1 to 15 bytes, without '/', ':' or whitespace.
    /// It also names the default control socket (see --control).
    #[arg(long, value_name = "NAME", default_value = DEFAULT_TUN, value_parser = parse_tun_name)]
    pub tun: String,

    /// An address the stack answers for (repeatable; at least one; the first is the primary).
    ///
    /// IPv4 or IPv6, optionally followed by comma-separated flags for the
    /// multipath path manager:
    ///   signal   announce this address to MPTCP peers (ADD_ADDR), so they can
    ///            open additional subflows to it;
    ///   subflow  open additional subflows from this address on connections the
    ///            stack initiates;
    ///   backup   subflows over this address are backup paths, used only when no
    ///            other path works.
    /// Examples: --addr 10.10.1.2 --addr 10.10.2.2,signal --addr fd00::2,subflow,backup
    #[arg(
        verbatim_doc_comment,
        long = "addr",
        value_name = "IP[,FLAG...]",
        required_unless_present = "config"
    )]
    pub addrs: Vec<AddrSpec>,

    /// MTU of the TUN device, in bytes.
    ///
    /// 576 to 65535; at least 1280 if any --addr is IPv6. The stack derives its
    /// maximum segment size from it.
    #[arg(long, value_name = "N", default_value_t = DEFAULT_MTU, value_parser = parse_mtu)]
    pub mtu: u16,

    /// Transmit queue length of the TUN device, in packets.
    ///
    /// Packets the kernel routes into the TUN device wait in this queue until
    /// mptun reads them; when it is full they are dropped. The kernel's default
    /// for TUN devices (500) drops packets whenever the daemon falls briefly
    /// behind a sender at full speed, which TCP then treats as congestion. The
    /// default, 10000 packets (15 MB at a 1500-byte MTU), absorbs such bursts.
    #[arg(long, value_name = "N", default_value_t = DEFAULT_TXQUEUELEN, value_parser = parse_txqueuelen)]
    pub txqueuelen: u32,

    /// Don't use the TUN device's TCP segmentation and checksum offloads.
    ///
    /// By default the device is opened with a virtio-net header (IFF_VNET_HDR)
    /// and TCP offloads, so the kernel hands over TCP super-packets of up to
    /// 64 KiB and takes them from mptun, instead of one read or write per
    /// 1500-byte packet. mptun falls back to plain packets by itself when the
    /// kernel refuses, and uses them on a persistent device it only attaches to;
    /// this option forces them.
    #[arg(long)]
    pub no_offload: bool,

    /// Echo service: listen on PORT and send every byte received back (repeatable).
    #[arg(long = "echo", value_name = "PORT", value_parser = parse_port)]
    pub echo: Vec<u16>,

    /// Sink service: listen on PORT, read and discard everything, count the bytes (repeatable).
    #[arg(long = "sink", value_name = "PORT", value_parser = parse_port)]
    pub sink: Vec<u16>,

    /// Character generator (RFC 864): listen on PORT and send every connection
    /// an endless stream of text lines until the client closes it; what the
    /// client sends is discarded (repeatable). A download test: read what you
    /// want, then close.
    #[arg(long = "chargen", value_name = "PORT", value_parser = parse_port)]
    pub chargen: Vec<u16>,

    /// Sinks also compute the SHA-256 of each connection's bytes (logged and shown
    /// by `status`), to check transfers end to end. Costs about a CPU second per GB.
    #[arg(long)]
    pub sink_sha256: bool,

    /// Relay each connection accepted on PORT to a TCP backend reached through the OS (repeatable).
    ///
    /// HOST is an IP address or a host name (resolved when a connection is
    /// relayed); an IPv6 literal goes in brackets.
    /// Examples: --forward 80=127.0.0.1:8080 --forward 22=backend.lan:22 --forward 443=[::1]:8443
    #[arg(verbatim_doc_comment, long = "forward", value_name = "PORT=HOST:PORT")]
    pub forward: Vec<ForwardSpec>,

    /// Accept OS TCP connections on LADDR:LPORT and, for each, open a stack connection to RADDR:RPORT (repeatable).
    ///
    /// The reverse of --forward: local programs connect to LADDR:LPORT through
    /// the OS, and mptun carries their bytes over its own (MP)TCP connection to
    /// RADDR:RPORT. IPv6 addresses go in brackets.
    /// Examples: --local-forward 127.0.0.1:9000=10.10.1.1:5201
    ///           --local-forward [::1]:9000=[fd00::1]:5201
    #[arg(
        verbatim_doc_comment,
        long = "local-forward",
        value_name = "LADDR:LPORT=RADDR:RPORT"
    )]
    pub local_forward: Vec<LocalForwardSpec>,

    /// SOCKS5 service on PORT of the stack's addresses: the concentrator end of a gateway.
    ///
    /// Clients (a `mptun --transparent` gateway over MPTCP, or any SOCKS5
    /// client, MPTCP or plain TCP) ask it to CONNECT to an IPv4 or IPv6 address
    /// or a host name (resolved by the host's resolver); each target is dialled
    /// from the host's own sockets and relayed, as --forward does. Only CONNECT
    /// is served. It refuses to run as an open proxy: give --socks5-allow,
    /// --socks5-users, or both (then a client needs both).
    /// Example: --socks5 1080 --socks5-allow 10.20.0.0/16,fd20::/48
    #[arg(verbatim_doc_comment, long = "socks5", value_name = "PORT", value_parser = parse_port)]
    pub socks5: Option<u16>,

    /// Client source prefixes --socks5 serves (comma-separated, repeatable); others get "not allowed".
    #[arg(
        long = "socks5-allow",
        value_name = "PREFIX,...",
        value_delimiter = ',',
        requires = "socks5"
    )]
    pub socks5_allow: Vec<ipnet::IpNet>,

    /// Accounts for --socks5 (RFC 1929 username/password): FILE has one `user:password` a line.
    ///
    /// `#` starts a comment line. FILE must not be readable by others (mode 0600
    /// or 0640), since it holds passwords; mptun keeps only their digests.
    #[arg(long = "socks5-users", value_name = "FILE", requires = "socks5", value_hint = ValueHint::FilePath)]
    pub socks5_users: Option<PathBuf>,

    /// Gateway: accept TCP to ANY address the host routes into the TUN, answering as that destination.
    ///
    /// Each connection is carried to --upstream and relayed both ways; a
    /// destination that refuses or cannot be reached resets the client's
    /// connection. Route only TCP from the LAN into the TUN
    /// (scripts/gateway-routes.sh; the README's gateway section); mptun's own
    /// upstream subflows leave through the TUN too and are never caught again
    /// (they come from its own addresses).
    #[arg(long, requires = "upstream")]
    pub transparent: bool,

    /// Where --transparent and --socks5-listen connections go: socks5://ADDR:PORT (a concentrator, e.g. `mptun --socks5`, over MPTCP) or direct.
    ///
    /// socks5://: an MPTCP connection from mptun's addresses (a subflow from
    /// each `subflow` address) to the SOCKS5 server, which CONNECTs to the
    /// original destination. direct: dial the destination from the host.
    #[arg(long, value_name = "URL")]
    pub upstream: Option<crate::gateway::Upstream>,

    /// Gateway: a SOCKS5 server (no authentication) on a host socket, for applications set to use a proxy.
    ///
    /// Each CONNECT (to an address or a host name) takes the same way as
    /// --transparent connections: to --upstream. On an address other than
    /// loopback give --socks5-listen-allow. Example: --socks5-listen 127.0.0.1:1080
    #[arg(
        verbatim_doc_comment,
        long,
        value_name = "ADDR:PORT",
        requires = "upstream"
    )]
    pub socks5_listen: Option<SocketAddr>,

    /// Client source prefixes --socks5-listen serves (comma-separated, repeatable); others get "not allowed".
    #[arg(
        long,
        value_name = "PREFIX,...",
        value_delimiter = ',',
        requires = "socks5_listen"
    )]
    pub socks5_listen_allow: Vec<ipnet::IpNet>,

    /// The scheduler of the MPTCP connections to a socks5:// --upstream (default: --scheduler).
    ///
    /// E.g. overflow with a metered WAN's address marked backup
    /// (`--addr ADDR,subflow,backup`): that link carries only what the others
    /// cannot. The concentrator's own --scheduler decides the other direction.
    #[arg(long, value_name = "NAME", value_parser = parse_scheduler, requires = "upstream")]
    pub upstream_scheduler: Option<SchedulerKind>,

    /// Username and password for a socks5:// --upstream: FILE holds one `user:password` line (mode 0600).
    #[arg(long, value_name = "FILE", requires = "upstream", value_hint = ValueHint::FilePath)]
    pub upstream_credentials: Option<PathBuf>,

    /// Write every packet read from or written to the TUN device to FILE (pcap, LINKTYPE_RAW).
    ///
    /// FILE must not exist: it is created new, mode 0600 (it holds every payload
    /// and the MPTCP keys), and an existing file or a symbolic link there is
    /// refused (exit status 1). Open it with Wireshark or tcpdump -r.
    #[arg(long, value_name = "FILE", value_hint = ValueHint::FilePath)]
    pub pcap: Option<PathBuf>,

    /// Control socket that `mptun status` talks to [default: /run/mptun/<TUN>.sock].
    ///
    /// A Unix socket path. Without this option it is derived from --tun, so
    /// several instances on different TUN devices do not clash. The socket is
    /// mode 0600: only root and mptun's user may connect (see --control-group).
    /// Its directory is created if missing; mptun refuses to use one (or one
    /// above it) that another user owns or could change (writable by others
    /// without the sticky bit), or that is a symbolic link.
    #[arg(long, value_name = "PATH", value_hint = ValueHint::FilePath)]
    pub control: Option<PathBuf>,

    /// Let the members of GROUP (a name or a gid) use the control socket.
    ///
    /// The socket becomes mode 0660 with group GROUP. Its members may read
    /// `mptun status`, without MPTCP keys; changing addresses (`mptun addr`)
    /// stays reserved to root and mptun's own user, whoever connects.
    #[arg(long, value_name = "GROUP")]
    pub control_group: Option<String>,

    /// Serve Prometheus metrics on ADDR:PORT (plain HTTP, `GET /metrics`).
    ///
    /// A host TCP socket, e.g. 127.0.0.1:9100 or [::1]:9100. The metrics are
    /// what `mptun status` shows (counters, connections by state, each
    /// address's and subflow's RTT, cwnd and bytes, memory, relays, threads),
    /// in the Prometheus text format. They name peers' addresses (never keys),
    /// and anyone who reaches ADDR:PORT may read them: keep it on loopback
    /// or behind a firewall.
    #[arg(verbatim_doc_comment, long, value_name = "ADDR:PORT", value_parser = parse_metrics_addr)]
    pub metrics: Option<SocketAddr>,

    /// How long --forward waits for its backend to accept a connection.
    ///
    /// A backend that does not answer within DURATION (e.g. 500ms, 10s, 1m) is
    /// given up, and the client's connection is reset. Also bounds the stack's
    /// connection attempt of each --local-forward connection.
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = parse_connect_timeout)]
    pub connect_timeout: Duration,

    /// Close --forward and --local-forward connections idle for DURATION.
    ///
    /// When no byte has moved in either direction for DURATION (e.g. 30s, 10m,
    /// 1h), both sides of the relayed connection are reset. 0 turns this off.
    #[arg(long, value_name = "DURATION", default_value = "10m", value_parser = parse_duration)]
    pub idle_timeout: Duration,

    /// Relayed connections (--forward, --local-forward, --socks5, --transparent) at a time.
    ///
    /// Past N, a new client is refused at once in a way it understands (a
    /// reset; a SOCKS5 client gets "general failure"), counted in `status` and
    /// logged; the ones in progress go on.
    #[arg(long, value_name = "N", default_value_t = 16384, value_parser = clap::value_parser!(u32).range(1..))]
    pub max_relays: u32,

    /// Memory all connections together may hold, e.g. 256M or 2G (K, M, G: powers of 1024).
    ///
    /// Buffers start small and grow with what each connection moves and its
    /// reader takes. Past half of SIZE they stop growing and shrink back as
    /// they drain; at SIZE new connections, MPTCP subflows and out-of-order
    /// data are refused until memory is given back. `auto`: an eighth of the
    /// machine's RAM, between 64 MiB and 4 GiB.
    #[arg(long, value_name = "SIZE", default_value = "auto", value_parser = parse_memory_size)]
    pub max_memory: MemorySize,

    /// Connections one peer (an IPv4 address, or an IPv6 /64) may have open
    /// to mptun at a time; its further SYNs are answered with a reset.
    #[arg(long, value_name = "N", default_value_t = 1024, value_parser = clap::value_parser!(u32).range(1..))]
    pub max_conns_per_source: u32,

    /// Connections in all (a closed one that waits out TIME_WAIT is a small
    /// record apart, at most 65,536 of them); further SYNs are dropped.
    #[arg(long, value_name = "N", default_value_t = 65536, value_parser = clap::value_parser!(u32).range(1..))]
    pub max_connections: u32,

    /// When listeners answer SYNs with SYN cookies (RFC 4987), keeping no
    /// state until the handshake completes: on-overflow (when a port's backlog
    /// of half-open connections is full, as under a SYN flood), always, or off.
    #[arg(long, value_name = "WHEN", default_value = "on-overflow", value_parser = parse_syn_cookies)]
    pub syn_cookies: SynCookies,

    /// Plain TCP only: MPTCP options from peers are ignored and never sent.
    #[arg(long, conflicts_with_all = ["checksum"])]
    pub no_mptcp: bool,

    /// MPTCP versions allowed: 1 (RFC 8684, what Linux speaks), 0 (RFC 6824,
    /// the multipath-tcp.org kernel), or both as `1,0`. As a server, mptun
    /// answers the version a client offers if allowed; as a client it offers the
    /// highest, and when a v1 SYN gets plain TCP back and 0 is allowed, it opens
    /// the connection again with v0 (once; see --no-v0-retry). v0 runs with DSS
    /// checksums.
    #[arg(long, value_name = "VERSIONS", default_value = "1", value_parser = parse_mptcp_versions)]
    pub mptcp_version: MptcpVersions,

    /// With `--mptcp-version 1,0`: never open a connection again with v0.
    #[arg(long)]
    pub no_v0_retry: bool,

    /// Ask for MPTCP DSS checksums (they are used when either side asks; Linux
    /// asks with `net.mptcp.checksum_enabled=1`).
    #[arg(long)]
    pub checksum: bool,

    /// How an MPTCP connection spreads data over its subflows: minrtt (the
    /// lowest-RTT subflow with room; backups only when no active subflow is
    /// left), roundrobin, redundant (every byte on every subflow), or overflow
    /// (primary plus overflow: backups also carry what the active subflows
    /// cannot, whenever all of them are full).
    #[arg(long, value_name = "NAME", default_value = "minrtt", value_parser = parse_scheduler)]
    pub scheduler: SchedulerKind,

    /// The most a connection's send buffer grows to, e.g. 4M or 16M (K, M, G:
    /// powers of 1024; 64K to 1G), like Linux's `net.ipv4.tcp_wmem` maximum.
    ///
    /// It holds what was sent and not yet acknowledged and what the
    /// application wrote ahead; it starts at 64 KiB and follows the
    /// congestion window. One connection carries at most about this much per
    /// round trip: 4M keeps 670 Mbit/s going over a 50 ms path. Raise it for
    /// faster long paths; more than the path needs costs memory and speed.
    #[arg(long, value_name = "SIZE", default_value = "4M", value_parser = parse_buffer_size)]
    pub send_buffer: u64,

    /// The most a connection's receive buffer, and so the window it offers,
    /// grows to, e.g. 8M (K, M, G: powers of 1024; 64K to 1G), like Linux's
    /// `net.ipv4.tcp_rmem` maximum.
    ///
    /// It starts at 128 KiB and follows what the application reads per round
    /// trip; a peer sends at most about this much per round trip.
    #[arg(long, value_name = "SIZE", default_value = "8M", value_parser = parse_buffer_size)]
    pub recv_buffer: u64,

    /// Congestion control: cubic or newreno per subflow, or lia (RFC 6356) or
    /// olia, coupled across an MPTCP connection's subflows so that it is fair to
    /// single-path TCP at a shared bottleneck (NewReno on a single path).
    #[arg(long, value_name = "NAME", default_value = "cubic", value_parser = parse_cc)]
    pub cc: CcAlgorithm,

    /// Subflows an MPTCP connection may add to its first (like Linux's
    /// `ip mptcp limits set subflows N`).
    #[arg(long, value_name = "N", default_value_t = 2, value_parser = clap::value_parser!(u8).range(0..=8))]
    pub max_subflows: u8,

    /// ADD_ADDR announcements an MPTCP connection acts on by opening subflows
    /// (like Linux's `add_addr_accepted`; Linux's default is 0).
    #[arg(long, value_name = "N", default_value_t = 0, value_parser = clap::value_parser!(u8).range(0..=8))]
    pub max_add_addr_accepted: u8,

    /// Tell MPTCP peers not to open subflows to the address they connected
    /// to (RFC 8684's "C" flag; Linux: `net.mptcp.allow_join_initial_addr_port=0`).
    ///
    /// For instances behind a load balancer that shares one address among
    /// them: a join to that address could reach another instance. Give each
    /// instance an address of its own with the `signal` flag (--addr
    /// ADDR,signal); peers join that one instead, even Linux peers that
    /// accept no ADD_ADDR otherwise.
    #[arg(long)]
    pub deny_join_initial_addr: bool,

    /// Engine threads (default: one per CPU). Each runs its own engine on its
    /// own queue of a multiqueue TUN device; the kernel spreads flows over
    /// the queues, and a segment that reaches the wrong one (an MP_JOIN, say)
    /// is handed to the engine that holds its connection. The connection
    /// limits hold for all together; --max-memory is shared out evenly among
    /// them. Tokens carry
    /// the thread's index after --instance-id's bits: at most 8 bits in all.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..=256))]
    pub threads: Option<u16>,

    /// For tests: every other packet read from a TUN queue is first handed to
    /// the next thread's engine, as if the kernel had picked the wrong queue.
    #[arg(long, hide = true)]
    pub debug_misroute: bool,

    /// Instance id ID in the first BITS bits (1-8) of every MPTCP token,
    /// e.g. `3/4`: for load balancers that route MP_JOINs by token to the
    /// instance that owns the connection. Keys are drawn until their token
    /// fits (2^BITS draws on average).
    #[arg(long, value_name = "ID/BITS", value_parser = parse_instance_id)]
    pub instance_id: Option<TokenPrefix>,

    /// Fault injection on packets to and from one local address (repeatable).
    ///
    /// ADDR is one of the --addr addresses (IPv6 in brackets); SPEC is a
    /// comma-separated list of impairments:
    ///   delay=10ms jitter=5ms loss=1% dup=0.5% corrupt=0.1% rate=20mbit seed=7
    /// Examples: --impair 10.10.1.2:delay=10ms,loss=1%
    ///           --impair [fd00::2]:rate=20mbit,seed=7
    #[arg(verbatim_doc_comment, long = "impair", value_name = "ADDR:SPEC")]
    pub impair: Vec<ImpairArg>,

    /// Don't add host routes for the --addr addresses through the TUN device.
    ///
    /// Use this when routing is set up by other means.
    #[arg(long)]
    pub no_routes: bool,

    /// Testing aid: seed the random number generator with N (initial sequence
    /// numbers, MPTCP keys and nonces, ports).
    ///
    /// Makes runs reproducible, e.g. in tests, and every secret predictable to
    /// anyone who knows N: never on a network you care about (mptun warns).
    /// Without it the secrets come from 256 bits of the operating system's
    /// entropy, drawn at startup and never logged.
    #[arg(long, value_name = "N")]
    pub seed: Option<u64>,

    /// What to log: a level (`error`, `warn`, `info`, `debug`, `trace`) or
    /// directives as RUST_LOG takes them (`info,mptun::control=debug`)
    /// [default: info].
    ///
    /// RUST_LOG, when set at start, wins over it. A reload (SIGHUP) applies
    /// a changed value without a restart.
    #[arg(long, value_name = "FILTER", value_parser = parse_log_filter)]
    pub log_level: Option<String>,
}

/// Options of `mptun status`.
#[derive(Debug, Clone, PartialEq, Eq, Args)]
pub struct StatusArgs {
    /// Control socket of the instance to query [default: /run/mptun/<TUN>.sock].
    #[arg(long, value_name = "PATH", value_hint = ValueHint::FilePath)]
    pub control: Option<PathBuf>,

    /// TUN device of the instance to query; used to find its control socket.
    #[arg(long, value_name = "NAME", default_value = DEFAULT_TUN, value_parser = parse_tun_name)]
    pub tun: String,

    /// Print the status as JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

/// Options of `mptun monitor`.
#[derive(Debug, Clone, PartialEq, Eq, Args)]
pub struct MonitorArgs {
    /// Control socket of the instance to watch [default: /run/mptun/<TUN>.sock].
    #[arg(long, value_name = "PATH", value_hint = ValueHint::FilePath)]
    pub control: Option<PathBuf>,

    /// TUN device of the instance to watch; used to find its control socket.
    #[arg(long, value_name = "NAME", default_value = DEFAULT_TUN, value_parser = parse_tun_name)]
    pub tun: String,

    /// One JSON object per line instead of text.
    #[arg(long)]
    pub json: bool,
}

impl MonitorArgs {
    /// The control socket path: `--control`, or `/run/mptun/<tun>.sock`.
    pub fn control_path(&self) -> PathBuf {
        control_path(self.control.as_deref(), &self.tun)
    }
}

/// The control socket: `--control`, or the TUN device's default (`run`,
/// `status`, `addr` and `monitor` alike).
fn control_path(control: Option<&std::path::Path>, tun: &str) -> PathBuf {
    control.map_or_else(|| default_control_path(tun), PathBuf::from)
}

/// The control socket path for a TUN device when `--control` is not given.
pub fn default_control_path(tun: &str) -> PathBuf {
    PathBuf::from(DEFAULT_CONTROL_DIR).join(format!("{tun}.sock"))
}

impl Cli {
    /// Checks the combinations of options that clap cannot check value by value.
    pub fn validate(&self) -> Result<(), CliError> {
        match &self.command {
            Command::Run(run) => run.validate(),
            Command::Status(_)
            | Command::Monitor(_)
            | Command::Addr(_)
            | Command::CheckConfig(_)
            | Command::Completions(_)
            | Command::Man(_) => Ok(()),
        }
    }

    /// Parses `args` (the first item is the program name) and validates the result.
    ///
    /// A validation failure becomes a clap error of kind
    /// [`ErrorKind::ValueValidation`], so it prints and exits (status 2) like any
    /// other bad argument.
    pub fn try_parse_validated_from<I, T>(args: I) -> Result<Self, clap::Error>
    where
        I: IntoIterator<Item = T>,
        T: Into<OsString> + Clone,
    {
        let cli = Self::try_parse_from(args)?;
        cli.validate()
            .map_err(|e| Self::command().error(ErrorKind::ValueValidation, e))?;
        Ok(cli)
    }

    /// Parses and validates the process's arguments; on error prints it and exits
    /// (status 2 for bad arguments, 0 for `--help` and `--version`).
    pub fn parse_validated() -> Self {
        Self::try_parse_validated_from(std::env::args_os()).unwrap_or_else(|e| e.exit())
    }
}

impl RunArgs {
    /// The control socket path: `--control`, or `/run/mptun/<tun>.sock`.
    pub fn control_path(&self) -> PathBuf {
        control_path(self.control.as_deref(), &self.tun)
    }

    /// Engine threads: `--threads`, or one per CPU (at most what the token
    /// bits left by `--instance-id` allow).
    pub fn threads(&self) -> usize {
        match self.threads {
            Some(n) => usize::from(n),
            None => {
                let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
                let spare = TokenPrefix::MAX_BITS - self.instance_id.map_or(0, |p| p.bits());
                cpus.min(1 << spare)
            }
        }
    }

    /// The primary address: the first `--addr`.
    ///
    /// # Panics
    /// If there is no address; clap never produces such a `RunArgs` (see [`Self::validate`]).
    pub fn primary_addr(&self) -> &AddrSpec {
        &self.addrs[0]
    }

    /// Whether any `--addr` is IPv6.
    pub fn has_ipv6(&self) -> bool {
        self.addrs.iter().any(|a| a.addr.is_ipv6())
    }

    /// The smallest MTU the addresses allow: 1280 with any IPv6 address, else 576.
    pub fn min_mtu(&self) -> u16 {
        if self.has_ipv6() {
            MIN_MTU_IPV6
        } else {
            MIN_MTU_IPV4
        }
    }

    /// Checks the combinations of options that clap cannot check value by value:
    /// at least one address and no address twice; the MTU against the address
    /// families; no stack port used by two services; no local-forward listening
    /// address twice; each `--impair` address is an `--addr` address, at most once.
    pub fn validate(&self) -> Result<(), CliError> {
        if self.addrs.is_empty() {
            return Err(CliError::new("at least one --addr is required"));
        }
        if self
            .control_group
            .as_deref()
            .is_some_and(|g| g.trim().is_empty())
        {
            return Err(
                CliError::new("--control-group needs a group name or gid").at("control_group", 0)
            );
        }
        for (i, a) in self.addrs.iter().enumerate() {
            if self.addrs[..i].iter().any(|b| b.addr == a.addr) {
                return Err(
                    CliError::new(format!("--addr {} is given twice", a.addr)).at("addrs", i)
                );
            }
        }
        let threads = self.threads();
        let blame = if self.threads.is_some() || self.instance_id.is_none() {
            "threads"
        } else {
            "instance_id"
        };
        crate::shards::token_prefix(self.instance_id, threads - 1, threads)
            .map_err(|e| CliError::new(format!("--threads {threads}: {e}")).at(blame, 0))?;

        if self.mtu < self.min_mtu() {
            let why = if self.has_ipv6() {
                "with an IPv6 --addr (IPv6 requires an MTU of at least 1280)"
            } else {
                "for IPv4"
            };
            return Err(CliError::new(format!(
                "--mtu {} is too small {why}: the minimum is {}",
                self.mtu,
                self.min_mtu()
            ))
            .at("mtu", 0));
        }

        let mut ports: HashMap<u16, &str> = HashMap::new();
        let services = (self.echo.iter().copied().enumerate())
            .map(|(i, p)| (p, "--echo", "echo", i))
            .chain((self.sink.iter().copied().enumerate()).map(|(i, p)| (p, "--sink", "sink", i)))
            .chain(
                (self.chargen.iter().copied().enumerate())
                    .map(|(i, p)| (p, "--chargen", "chargen", i)),
            )
            .chain(
                (self.forward.iter().enumerate()).map(|(i, f)| (f.port, "--forward", "forward", i)),
            )
            .chain(self.socks5.iter().map(|&p| (p, "--socks5", "socks5", 0)));
        for (port, option, id, i) in services {
            if let Some(previous) = ports.insert(port, option) {
                return Err(CliError::new(format!(
                    "port {port} is used by both {previous} and {option}"
                ))
                .at(id, i));
            }
        }

        if self.upstream.is_some() && !self.transparent && self.socks5_listen.is_none() {
            return Err(CliError::new(
                "--upstream is where --transparent or --socks5-listen connections go: give one of them",
            )
            .at("upstream", 0));
        }
        if let Some(l) = self.socks5_listen {
            if !l.ip().is_loopback() && self.socks5_listen_allow.is_empty() {
                return Err(CliError::new(format!(
                    "--socks5-listen {l} would be an open proxy to whoever reaches {}: give --socks5-listen-allow PREFIX,...",
                    l.ip()
                ))
                .at("socks5_listen", 0));
            }
        }
        if self.socks5.is_some() && self.socks5_allow.is_empty() && self.socks5_users.is_none() {
            return Err(CliError::new(
                "--socks5 would be an open proxy: give --socks5-allow PREFIX,... or --socks5-users FILE",
            )
            .at("socks5", 0));
        }

        for (i, lf) in self.local_forward.iter().enumerate() {
            if self.local_forward[..i]
                .iter()
                .any(|o| o.listen == lf.listen)
            {
                return Err(CliError::new(format!(
                    "--local-forward listens on {} twice",
                    lf.listen
                ))
                .at("local_forward", i));
            }
        }

        for (i, imp) in self.impair.iter().enumerate() {
            if !self.addrs.iter().any(|a| a.addr == imp.addr) {
                return Err(CliError::new(format!(
                    "--impair {}: not one of the --addr addresses",
                    imp.addr
                ))
                .at("impair", i));
            }
            if self.impair[..i].iter().any(|o| o.addr == imp.addr) {
                return Err(CliError::new(format!(
                    "--impair is given twice for {}; put all impairments in one SPEC",
                    imp.addr
                ))
                .at("impair", i));
            }
            imp.spec.parse::<ImpairSpec>().map_err(|e| {
                CliError::new(format!("--impair {}: {e}", imp.addr)).at("impair", i)
            })?;
        }
        Ok(())
    }
}

impl StatusArgs {
    /// The control socket path: `--control`, or `/run/mptun/<tun>.sock`.
    pub fn control_path(&self) -> PathBuf {
        control_path(self.control.as_deref(), &self.tun)
    }
}

/// `--metrics`: an IP address and a port other than 0.
fn parse_metrics_addr(s: &str) -> Result<SocketAddr, CliError> {
    let addr: SocketAddr = s.parse().map_err(|_| {
        CliError::new(format!(
            "'{s}' is not ADDR:PORT (e.g. 127.0.0.1:9100, or [::1]:9100 for IPv6)"
        ))
    })?;
    if addr.port() == 0 {
        return Err(CliError::new("port 0 is not allowed (use 1 to 65535)"));
    }
    Ok(addr)
}

/// A TCP port number other than 0.
pub fn parse_port(s: &str) -> Result<u16, CliError> {
    match s.parse::<u16>() {
        Ok(0) => Err(CliError::new("port 0 is not allowed (use 1 to 65535)")),
        Ok(p) => Ok(p),
        Err(_) => Err(CliError::new(format!(
            "'{s}' is not a port number (use 1 to 65535)"
        ))),
    }
}

fn parse_mtu(s: &str) -> Result<u16, CliError> {
    let range = || format!("the MTU must be between {MIN_MTU_IPV4} and 65535");
    match s.parse::<u32>() {
        Ok(n) if (u32::from(MIN_MTU_IPV4)..=65535).contains(&n) => Ok(n as u16),
        Ok(_) => Err(CliError::new(range())),
        Err(_) => Err(CliError::new(format!("not a number; {}", range()))),
    }
}

/// A duration: a number with a unit (`ms`, `s`, `m`, `h`; a bare number is in
/// seconds), e.g. `500ms`, `10s`, `1.5m`, `0`.
pub fn parse_duration(s: &str) -> Result<Duration, CliError> {
    let t = s.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let bad = || {
        CliError::new(format!(
            "'{s}' is not a duration (a number with ms, s, m or h, e.g. 500ms, 10s, 10m)"
        ))
    };
    let n: f64 = num.parse().map_err(|_| bad())?;
    let secs = match unit.trim() {
        "ms" => n / 1000.0,
        "" | "s" => n,
        "m" | "min" => n * 60.0,
        "h" => n * 3600.0,
        _ => return Err(bad()),
    };
    Duration::try_from_secs_f64(secs)
        .ok()
        .filter(|d| d.as_secs() <= 365 * 24 * 3600)
        .ok_or_else(|| CliError::new(format!("'{s}' is out of range (at most a year)")))
}

fn parse_connect_timeout(s: &str) -> Result<Duration, CliError> {
    match parse_duration(s)? {
        Duration::ZERO => Err(CliError::new("the connect timeout must be above 0")),
        d => Ok(d),
    }
}

fn parse_txqueuelen(s: &str) -> Result<u32, CliError> {
    match s.parse::<u32>() {
        Ok(0) => Err(CliError::new("the queue length must be at least 1")),
        Ok(n) => Ok(n),
        Err(_) => Err(CliError::new("not a number of packets")),
    }
}

fn parse_tun_name(s: &str) -> Result<String, CliError> {
    if s.is_empty() {
        return Err(CliError::new("the interface name is empty"));
    }
    if s.len() > MAX_TUN_NAME_LEN {
        return Err(CliError::new(format!(
            "the interface name is {} bytes long; Linux allows at most {MAX_TUN_NAME_LEN}",
            s.len()
        )));
    }
    if s == "." || s == ".." {
        return Err(CliError::new("'.' and '..' are not interface names"));
    }
    if let Some(c) = s
        .chars()
        .find(|c| *c == '/' || *c == ':' || c.is_whitespace())
    {
        return Err(CliError::new(format!(
            "the interface name must not contain {c:?}"
        )));
    }
    Ok(s.to_owned())
}

/// Rejects addresses that can't be an endpoint's own or a peer's address.
fn check_unicast(ip: IpAddr, what: &str) -> Result<(), CliError> {
    if ip.is_unspecified() {
        return Err(CliError::new(format!(
            "{what} {ip} is the unspecified address"
        )));
    }
    if ip.is_multicast() {
        return Err(CliError::new(format!("{what} {ip} is a multicast address")));
    }
    if let IpAddr::V4(v4) = ip {
        if v4.is_broadcast() {
            return Err(CliError::new(format!(
                "{what} {ip} is the broadcast address"
            )));
        }
    }
    if let IpAddr::V6(v6) = ip {
        if let Some(v4) = v6.to_ipv4_mapped() {
            return Err(CliError::new(format!(
                "{what} {ip} is IPv4-mapped; write it as {v4}"
            )));
        }
    }
    Ok(())
}

/// Splits `"[v6]rest"` into the IPv6 address and `rest`.
fn split_bracketed_v6(s: &str) -> Option<Result<(Ipv6Addr, &str), CliError>> {
    let inner = s.strip_prefix('[')?;
    let Some((ip, rest)) = inner.split_once(']') else {
        return Some(Err(CliError::new("missing ']' after the IPv6 address")));
    };
    Some(
        ip.parse::<Ipv6Addr>()
            .map(|ip| (ip, rest))
            .map_err(|_| CliError::new(format!("'{ip}' is not an IPv6 address"))),
    )
}

/// The multipath flags an [`AddrSpec`] accepts.
pub const ADDR_FLAGS: [&str; 3] = ["signal", "subflow", "backup"];

/// One `--addr IP[,FLAG...]`: an address the stack answers for, with its
/// path-manager flags. Repeated flags are accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AddrSpec {
    /// The address.
    pub addr: IpAddr,
    /// Announce the address to MPTCP peers (ADD_ADDR).
    pub signal: bool,
    /// Open additional subflows from this address.
    pub subflow: bool,
    /// Subflows over this address are backup paths.
    pub backup: bool,
}

impl AddrSpec {
    /// An address without flags.
    pub fn new(addr: IpAddr) -> Self {
        Self {
            addr,
            signal: false,
            subflow: false,
            backup: false,
        }
    }
}

impl FromStr for AddrSpec {
    type Err = CliError;

    fn from_str(s: &str) -> Result<Self, CliError> {
        let mut parts = s.split(',');
        let ip = parts.next().unwrap_or_default().trim();
        if ip.is_empty() {
            return Err(CliError::new("missing IP address before the flags"));
        }
        let addr: IpAddr = ip.parse().map_err(|_| {
            let hint = if ip.starts_with('[') {
                " (write IPv6 addresses without brackets here)"
            } else {
                ""
            };
            CliError::new(format!("'{ip}' is not an IPv4 or IPv6 address{hint}"))
        })?;
        check_unicast(addr, "address")?;
        let mut spec = AddrSpec::new(addr);
        for flag in parts {
            match flag.trim() {
                "signal" => spec.signal = true,
                "subflow" => spec.subflow = true,
                "backup" => spec.backup = true,
                "" => {
                    return Err(CliError::new(format!(
                        "empty flag after ','; valid flags: {}",
                        ADDR_FLAGS.join(", ")
                    )))
                }
                other => {
                    return Err(CliError::new(format!(
                        "unknown address flag '{other}'; valid flags: {}",
                        ADDR_FLAGS.join(", ")
                    )))
                }
            }
        }
        Ok(spec)
    }
}

impl fmt::Display for AddrSpec {
    /// Formats as accepted by `--addr` (flags in canonical order).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.addr)?;
        for (set, name) in [self.signal, self.subflow, self.backup]
            .into_iter()
            .zip(ADDR_FLAGS)
        {
            if set {
                write!(f, ",{name}")?;
            }
        }
        Ok(())
    }
}

/// One `--forward PORT=HOST:PORT`: connections accepted by the stack on `port`
/// are relayed to `host:host_port` through the OS.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ForwardSpec {
    /// Stack port to listen on.
    pub port: u16,
    /// Backend host: an IP address (IPv6 without brackets) or a host name, to be
    /// resolved when connecting.
    pub host: String,
    /// Backend port.
    pub host_port: u16,
}

impl ForwardSpec {
    /// The backend as `(host, port)`, ready for `std::net::ToSocketAddrs` or
    /// `TcpStream::connect` (which accept IPv6 literals without brackets there).
    pub fn backend(&self) -> (&str, u16) {
        (&self.host, self.host_port)
    }
}

fn is_host_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 253
        && s.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        })
}

impl FromStr for ForwardSpec {
    type Err = CliError;

    fn from_str(s: &str) -> Result<Self, CliError> {
        let Some((port, target)) = s.split_once('=') else {
            return Err(CliError::new(
                "expected PORT=HOST:PORT, e.g. 80=127.0.0.1:8080 or 80=[::1]:8080",
            ));
        };
        let port = parse_port(port.trim())?;
        let (host, host_port) = if let Some(v6) = split_bracketed_v6(target) {
            let (ip, rest) = v6?;
            let Some(p) = rest.strip_prefix(':') else {
                return Err(CliError::new(format!("missing ':PORT' after [{ip}]")));
            };
            (ip.to_string(), p)
        } else {
            let Some((host, p)) = target.rsplit_once(':') else {
                return Err(CliError::new(format!(
                    "missing ':PORT' in backend '{target}'"
                )));
            };
            if host.contains(':') {
                return Err(CliError::new(format!(
                    "put the IPv6 address in brackets: {port}=[{host}]:{p}"
                )));
            }
            if !is_host_name(host) {
                return Err(CliError::new(format!(
                    "'{host}' is not an IP address or host name"
                )));
            }
            (host.to_owned(), p)
        };
        let host_port = parse_port(host_port)?;
        Ok(ForwardSpec {
            port,
            host,
            host_port,
        })
    }
}

impl fmt::Display for ForwardSpec {
    /// Formats as accepted by `--forward`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.host.contains(':') {
            write!(f, "{}=[{}]:{}", self.port, self.host, self.host_port)
        } else {
            write!(f, "{}={}:{}", self.port, self.host, self.host_port)
        }
    }
}

/// One `--local-forward LADDR:LPORT=RADDR:RPORT`: OS connections accepted on
/// `listen` are carried by stack connections to `remote`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LocalForwardSpec {
    /// Where to listen through the OS (may be an unspecified address such as 0.0.0.0).
    pub listen: SocketAddr,
    /// Where the stack connects to.
    pub remote: SocketAddr,
}

fn parse_socket_addr(s: &str, what: &str) -> Result<SocketAddr, CliError> {
    let sa: SocketAddr = s.trim().parse().map_err(|_| {
        CliError::new(format!(
            "{what} '{s}' is not IP:PORT (IPv6 in brackets, e.g. [::1]:9000)"
        ))
    })?;
    if sa.port() == 0 {
        return Err(CliError::new(format!(
            "{what} '{s}': port 0 is not allowed (use 1 to 65535)"
        )));
    }
    Ok(sa)
}

impl FromStr for LocalForwardSpec {
    type Err = CliError;

    fn from_str(s: &str) -> Result<Self, CliError> {
        let Some((listen, remote)) = s.split_once('=') else {
            return Err(CliError::new(
                "expected LADDR:LPORT=RADDR:RPORT, e.g. 127.0.0.1:9000=10.10.1.1:5201",
            ));
        };
        let listen = parse_socket_addr(listen, "listening address")?;
        let remote = parse_socket_addr(remote, "remote address")?;
        check_unicast(remote.ip(), "remote address")?;
        Ok(LocalForwardSpec { listen, remote })
    }
}

impl fmt::Display for LocalForwardSpec {
    /// Formats as accepted by `--local-forward`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}={}", self.listen, self.remote)
    }
}

/// One `--impair ADDR:SPEC`: fault injection on the packets to and from one
/// local address. `spec` is kept as text (non-empty) for the impairment parser.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImpairArg {
    /// The local (`--addr`) address whose packets are impaired.
    pub addr: IpAddr,
    /// The impairments, e.g. `delay=10ms,loss=1%`; not parsed here.
    pub spec: String,
}

impl FromStr for ImpairArg {
    type Err = CliError;

    fn from_str(s: &str) -> Result<Self, CliError> {
        let (addr, spec) = if let Some(v6) = split_bracketed_v6(s) {
            let (ip, rest) = v6?;
            let Some(spec) = rest.strip_prefix(':') else {
                return Err(CliError::new(format!("missing ':SPEC' after [{ip}]")));
            };
            (IpAddr::V6(ip), spec)
        } else {
            let Some((ip, spec)) = s.split_once(':') else {
                return Err(CliError::new(
                    "expected ADDR:SPEC, e.g. 10.10.1.2:loss=1% or [fd00::2]:loss=1%",
                ));
            };
            let ip = ip.parse().map_err(|_| {
                CliError::new(format!(
                    "'{ip}' is not an IPv4 address (IPv6 goes in brackets, e.g. [fd00::2]:loss=1%)"
                ))
            })?;
            (IpAddr::V4(ip), spec)
        };
        if spec.trim().is_empty() {
            return Err(CliError::new(format!(
                "empty impairment after '{addr}:', e.g. delay=10ms,loss=1%"
            )));
        }
        Ok(ImpairArg {
            addr,
            spec: spec.to_owned(),
        })
    }
}

impl fmt::Display for ImpairArg {
    /// Formats as accepted by `--impair`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.addr {
            IpAddr::V4(ip) => write!(f, "{ip}:{}", self.spec),
            IpAddr::V6(ip) => write!(f, "[{ip}]:{}", self.spec),
        }
    }
}

/// The MPTCP versions `--mptcp-version` allows, highest first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MptcpVersions(pub Vec<u8>);

impl MptcpVersions {
    pub fn allows(&self, v: u8) -> bool {
        self.0.contains(&v)
    }
}

impl fmt::Display for MptcpVersions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let v: Vec<String> = self.0.iter().map(|v| v.to_string()).collect();
        f.write_str(&v.join(","))
    }
}

fn parse_cc(s: &str) -> Result<CcAlgorithm, String> {
    match s {
        "cubic" => Ok(CcAlgorithm::Cubic),
        "newreno" | "reno" => Ok(CcAlgorithm::NewReno),
        "lia" => Ok(CcAlgorithm::Lia),
        "olia" => Ok(CcAlgorithm::Olia),
        other => Err(format!(
            "unknown congestion control '{other}'; valid: cubic, newreno, lia, olia"
        )),
    }
}

/// `--max-memory`: a size, or `auto` (decided from the machine's RAM when
/// the daemon starts).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MemorySize {
    Auto,
    Bytes(u64),
}

fn parse_memory_size(s: &str) -> Result<MemorySize, String> {
    if s.trim().eq_ignore_ascii_case("auto") {
        return Ok(MemorySize::Auto);
    }
    let bytes = parse_size(s).ok_or_else(|| {
        format!("invalid size '{s}': a number with K, M or G (e.g. 512M, 2G), or auto")
    })?;
    if bytes < 1 << 20 {
        return Err(format!(
            "--max-memory {s} is below the least useful budget, 1M"
        ));
    }
    Ok(MemorySize::Bytes(bytes))
}

/// `--send-buffer`, `--recv-buffer`: from the buffers' starting size to the
/// largest window TCP can offer (2^30 bytes with window scaling).
fn parse_buffer_size(s: &str) -> Result<u64, String> {
    let bad = || format!("invalid size '{s}': a number with K, M or G from 64K to 1G (e.g. 4M)");
    parse_size(s)
        .filter(|b| (64 << 10..=1 << 30).contains(b))
        .ok_or_else(bad)
}

/// Bytes from a number with an optional K, M or G (powers of 1024, an `i`
/// and a `B` after it allowed: 4M, 4MiB, 4096k).
fn parse_size(s: &str) -> Option<u64> {
    let t = s.trim();
    let digits = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let n: u64 = t[..digits].parse().ok()?;
    let shift = match t[digits..]
        .to_ascii_uppercase()
        .trim_end_matches(['B', 'I'])
    {
        "" => 0,
        "K" => 10,
        "M" => 20,
        "G" => 30,
        _ => return None,
    };
    n.checked_shl(shift).filter(|b| b >> shift == n)
}

#[cfg(test)]
#[test]
fn memory_sizes() {
    assert_eq!(parse_memory_size("auto"), Ok(MemorySize::Auto));
    assert_eq!(parse_memory_size("64M"), Ok(MemorySize::Bytes(64 << 20)));
    assert_eq!(parse_memory_size("2G"), Ok(MemorySize::Bytes(2 << 30)));
    assert_eq!(parse_memory_size("2GiB"), Ok(MemorySize::Bytes(2 << 30)));
    assert_eq!(parse_memory_size("4096k"), Ok(MemorySize::Bytes(4 << 20)));
    assert_eq!(parse_memory_size("1048576"), Ok(MemorySize::Bytes(1 << 20)));
    assert!(parse_memory_size("M").is_err());
    assert!(parse_memory_size("1.5G").is_err());
    assert!(parse_memory_size("512K").is_err());
    assert!(parse_memory_size("99999999999999G").is_err());
}

#[cfg(test)]
#[test]
fn buffer_sizes() {
    assert_eq!(parse_buffer_size("4M"), Ok(4 << 20));
    assert_eq!(parse_buffer_size("64K"), Ok(64 << 10));
    assert_eq!(parse_buffer_size("1G"), Ok(1 << 30));
    assert_eq!(parse_buffer_size("16MiB"), Ok(16 << 20));
    for bad in ["63K", "2G", "auto", "", "-4M", "4T", "99999999999999G"] {
        let e = parse_buffer_size(bad).unwrap_err();
        assert!(e.contains("64K to 1G"), "{bad}: {e}");
    }
}

fn parse_syn_cookies(s: &str) -> Result<SynCookies, String> {
    match s {
        "on-overflow" => Ok(SynCookies::OnOverflow),
        "always" => Ok(SynCookies::Always),
        "off" => Ok(SynCookies::Off),
        other => Err(format!(
            "unknown SYN cookie mode '{other}'; valid: on-overflow, always, off"
        )),
    }
}

fn parse_scheduler(s: &str) -> Result<SchedulerKind, String> {
    match s {
        "minrtt" => Ok(SchedulerKind::MinRtt),
        "roundrobin" => Ok(SchedulerKind::RoundRobin),
        "redundant" => Ok(SchedulerKind::Redundant),
        "overflow" => Ok(SchedulerKind::Overflow),
        other => Err(format!(
            "unknown scheduler '{other}'; valid: minrtt, roundrobin, redundant, overflow"
        )),
    }
}

/// A filter `tracing_subscriber::EnvFilter` accepts, kept as text (the
/// daemon builds the filter, and a reload compares the text).
fn parse_log_filter(s: &str) -> Result<String, String> {
    tracing_subscriber::EnvFilter::builder()
        .parse(s)
        .map(|_| s.to_owned())
        .map_err(|e| format!("`{s}` is not a log filter: {e}"))
}

fn parse_instance_id(s: &str) -> Result<TokenPrefix, String> {
    let (id, bits) = s
        .split_once('/')
        .ok_or_else(|| format!("`{s}` is not ID/BITS (e.g. 3/4)"))?;
    let bits: u8 = bits
        .trim()
        .parse()
        .map_err(|_| format!("BITS in `{s}` is not a number from 1 to 8"))?;
    let id: u32 = id
        .trim()
        .parse()
        .map_err(|_| format!("ID in `{s}` is not a number"))?;
    TokenPrefix::new(id, bits).ok_or_else(|| {
        format!("`{s}`: BITS must be 1 to 8 and ID below 2^BITS (ID/BITS, e.g. 3/4)")
    })
}

fn parse_mptcp_versions(s: &str) -> Result<MptcpVersions, String> {
    let mut v = Vec::new();
    for part in s.split(',') {
        match part.trim() {
            "1" => v.push(1),
            "0" => v.push(0),
            other => {
                return Err(format!(
                    "unknown MPTCP version `{other}` (expected 1, 0 or 1,0)"
                ))
            }
        }
    }
    v.sort_unstable_by(|a, b| b.cmp(a));
    v.dedup();
    Ok(MptcpVersions(v))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{Ipv4Addr, SocketAddrV6};

    fn v4(a: u8, b: u8, c: u8, d: u8) -> IpAddr {
        IpAddr::V4(Ipv4Addr::new(a, b, c, d))
    }

    fn err<T: FromStr<Err = CliError> + fmt::Debug>(s: &str) -> String {
        s.parse::<T>().unwrap_err().to_string()
    }

    fn run(args: &[&str]) -> RunArgs {
        let cli = Cli::try_parse_from(["mptun", "run"].iter().chain(args)).unwrap();
        match cli.command {
            Command::Run(r) => r,
            other => panic!("expected run, got {other:?}"),
        }
    }

    fn run_err(args: &[&str]) -> clap::Error {
        Cli::try_parse_from(["mptun", "run"].iter().chain(args)).unwrap_err()
    }

    #[test]
    fn addr_spec_parses() {
        assert_eq!(
            "10.0.0.1".parse::<AddrSpec>().unwrap(),
            AddrSpec::new(v4(10, 0, 0, 1))
        );
        let a: AddrSpec = "fd00::2,signal,backup".parse().unwrap();
        assert_eq!(a.addr, "fd00::2".parse::<IpAddr>().unwrap());
        assert!(a.signal && !a.subflow && a.backup);
        let a: AddrSpec = "10.0.0.1,subflow,subflow".parse().unwrap();
        assert!(!a.signal && a.subflow && !a.backup);
        let a: AddrSpec = "10.0.0.1,signal,subflow,backup".parse().unwrap();
        assert_eq!(a.to_string(), "10.0.0.1,signal,subflow,backup");
        assert_eq!(a.to_string().parse::<AddrSpec>().unwrap(), a);
    }

    #[test]
    fn addr_spec_rejects() {
        let e = err::<AddrSpec>("10.0.0.1,bakup");
        assert!(e.contains("'bakup'"), "{e}");
        assert!(e.contains("signal, subflow, backup"), "{e}");
        assert!(err::<AddrSpec>("10.0.0.1,").contains("empty flag"));
        assert!(err::<AddrSpec>("10.0.0.256").contains("not an IPv4 or IPv6 address"));
        assert!(err::<AddrSpec>("[fd00::1]").contains("without brackets"));
        assert!(err::<AddrSpec>(",signal").contains("missing IP"));
        assert!(err::<AddrSpec>("0.0.0.0").contains("unspecified"));
        assert!(err::<AddrSpec>("::").contains("unspecified"));
        assert!(err::<AddrSpec>("224.0.0.1").contains("multicast"));
        assert!(err::<AddrSpec>("255.255.255.255").contains("broadcast"));
        assert!(err::<AddrSpec>("::ffff:10.0.0.1").contains("write it as 10.0.0.1"));
    }

    #[test]
    fn forward_spec_parses() {
        let f: ForwardSpec = "80=127.0.0.1:8080".parse().unwrap();
        assert_eq!(
            f,
            ForwardSpec {
                port: 80,
                host: "127.0.0.1".into(),
                host_port: 8080
            }
        );
        let f: ForwardSpec = "443=[::1]:8443".parse().unwrap();
        assert_eq!(f.host, "::1");
        assert_eq!(f.backend(), ("::1", 8443));
        assert_eq!(f.to_string(), "443=[::1]:8443");
        let f: ForwardSpec = "22=backend.example-1.lan:2222".parse().unwrap();
        assert_eq!(f.backend(), ("backend.example-1.lan", 2222));
        assert_eq!(f.to_string(), "22=backend.example-1.lan:2222");
    }

    #[test]
    fn forward_spec_rejects() {
        assert!(err::<ForwardSpec>("80").contains("expected PORT=HOST:PORT"));
        assert!(err::<ForwardSpec>("0=host:80").contains("port 0"));
        assert!(err::<ForwardSpec>("80=host:0").contains("port 0"));
        assert!(err::<ForwardSpec>("x=host:80").contains("not a port number"));
        assert!(err::<ForwardSpec>("80=host:65536").contains("not a port number"));
        assert!(err::<ForwardSpec>("80=host").contains("missing ':PORT'"));
        assert!(err::<ForwardSpec>("80=::1:80").contains("80=[::1]:80"));
        assert!(err::<ForwardSpec>("80=[::1]").contains("missing ':PORT'"));
        assert!(err::<ForwardSpec>("80=[::1:80").contains("missing ']'"));
        assert!(err::<ForwardSpec>("80=[1.2.3.4]:80").contains("not an IPv6 address"));
        assert!(err::<ForwardSpec>("80=:80").contains("not an IP address or host name"));
        assert!(err::<ForwardSpec>("80=a b:80").contains("not an IP address or host name"));
    }

    #[test]
    fn local_forward_spec_parses() {
        let l: LocalForwardSpec = "127.0.0.1:9000=10.10.1.1:5201".parse().unwrap();
        assert_eq!(l.listen, SocketAddr::new(v4(127, 0, 0, 1), 9000));
        assert_eq!(l.remote, SocketAddr::new(v4(10, 10, 1, 1), 5201));
        let l: LocalForwardSpec = "[::1]:9000=[fd00::1]:5201".parse().unwrap();
        assert_eq!(
            l.remote,
            SocketAddr::V6(SocketAddrV6::new("fd00::1".parse().unwrap(), 5201, 0, 0))
        );
        assert_eq!(l.to_string(), "[::1]:9000=[fd00::1]:5201");
        // Listening on all addresses is fine.
        assert!("0.0.0.0:9000=10.0.0.1:80"
            .parse::<LocalForwardSpec>()
            .is_ok());
    }

    #[test]
    fn local_forward_spec_rejects() {
        assert!(err::<LocalForwardSpec>("127.0.0.1:9000").contains("expected LADDR"));
        assert!(err::<LocalForwardSpec>("::1:9000=[fd00::1]:80").contains("in brackets"));
        assert!(err::<LocalForwardSpec>("127.0.0.1:0=10.0.0.1:80").contains("port 0"));
        assert!(err::<LocalForwardSpec>("127.0.0.1:9=10.0.0.1:0").contains("port 0"));
        assert!(err::<LocalForwardSpec>("127.0.0.1:9=0.0.0.0:80").contains("unspecified"));
        assert!(err::<LocalForwardSpec>("localhost:9=10.0.0.1:80").contains("not IP:PORT"));
    }

    #[test]
    fn impair_arg_parses() {
        let i: ImpairArg = "10.10.1.2:delay=10ms,jitter=5ms,loss=1%,seed=7"
            .parse()
            .unwrap();
        assert_eq!(i.addr, v4(10, 10, 1, 2));
        assert_eq!(i.spec, "delay=10ms,jitter=5ms,loss=1%,seed=7");
        let i: ImpairArg = "[fd00::2]:loss=1%".parse().unwrap();
        assert_eq!(i.addr, "fd00::2".parse::<IpAddr>().unwrap());
        assert_eq!(i.spec, "loss=1%");
        assert_eq!(i.to_string(), "[fd00::2]:loss=1%");
    }

    #[test]
    fn impair_arg_rejects() {
        assert!(err::<ImpairArg>("10.0.0.1").contains("expected ADDR:SPEC"));
        assert!(err::<ImpairArg>("10.0.0.1:").contains("empty impairment"));
        assert!(err::<ImpairArg>("[fd00::2]: ").contains("empty impairment"));
        assert!(err::<ImpairArg>("fd00::2:loss=1%").contains("IPv6 goes in brackets"));
        assert!(err::<ImpairArg>("[fd00::2]loss=1%").contains("missing ':SPEC'"));
        assert!(err::<ImpairArg>("host:loss=1%").contains("not an IPv4 address"));
    }

    #[test]
    fn full_run_command_line() {
        let cli = Cli::try_parse_from([
            "mptun",
            "run",
            "--tun",
            "tun7",
            "--addr",
            "10.10.1.2",
            "--addr",
            "10.10.2.2,signal,backup",
            "--addr",
            "fd00::2,subflow",
            "--mtu",
            "1400",
            "--txqueuelen",
            "2000",
            "--no-offload",
            "--echo",
            "7",
            "--echo",
            "1007",
            "--sink",
            "9",
            "--chargen",
            "19",
            "--forward",
            "80=localhost:8080",
            "--local-forward",
            "127.0.0.1:9000=10.10.1.1:5201",
            "--pcap",
            "/tmp/x.pcap",
            "--control",
            "/tmp/ctl.sock",
            "--control-group",
            "mptun",
            "--connect-timeout",
            "500ms",
            "--idle-timeout",
            "0",
            "--max-relays",
            "50",
            "--max-memory",
            "512M",
            "--max-conns-per-source",
            "10",
            "--max-connections",
            "1000",
            "--syn-cookies",
            "always",
            "--no-mptcp",
            "--scheduler",
            "roundrobin",
            "--cc",
            "olia",
            "--send-buffer",
            "16M",
            "--recv-buffer",
            "512K",
            "--max-subflows",
            "4",
            "--max-add-addr-accepted",
            "2",
            "--deny-join-initial-addr",
            "--instance-id",
            "3/4",
            "--threads",
            "2",
            "--impair",
            "[fd00::2]:loss=1%",
            "--no-routes",
            "--seed",
            "42",
        ])
        .unwrap();
        let expected = Cli {
            command: Command::Run(RunArgs {
                config: None,
                tun: "tun7".into(),
                addrs: vec![
                    AddrSpec::new(v4(10, 10, 1, 2)),
                    AddrSpec {
                        addr: v4(10, 10, 2, 2),
                        signal: true,
                        subflow: false,
                        backup: true,
                    },
                    AddrSpec {
                        addr: "fd00::2".parse().unwrap(),
                        signal: false,
                        subflow: true,
                        backup: false,
                    },
                ],
                mtu: 1400,
                txqueuelen: 2000,
                no_offload: true,
                echo: vec![7, 1007],
                sink: vec![9],
                chargen: vec![19],
                sink_sha256: false,
                forward: vec![ForwardSpec {
                    port: 80,
                    host: "localhost".into(),
                    host_port: 8080,
                }],
                local_forward: vec![LocalForwardSpec {
                    listen: SocketAddr::new(v4(127, 0, 0, 1), 9000),
                    remote: SocketAddr::new(v4(10, 10, 1, 1), 5201),
                }],
                socks5: None,
                socks5_allow: vec![],
                socks5_users: None,
                transparent: false,
                upstream: None,
                socks5_listen: None,
                socks5_listen_allow: vec![],
                upstream_scheduler: None,
                upstream_credentials: None,
                pcap: Some("/tmp/x.pcap".into()),
                control: Some("/tmp/ctl.sock".into()),
                control_group: Some("mptun".into()),
                metrics: None,
                connect_timeout: Duration::from_millis(500),
                idle_timeout: Duration::ZERO,
                max_relays: 50,
                max_memory: MemorySize::Bytes(512 << 20),
                max_conns_per_source: 10,
                max_connections: 1000,
                syn_cookies: SynCookies::Always,
                no_mptcp: true,
                mptcp_version: MptcpVersions(vec![1]),
                no_v0_retry: false,
                checksum: false,
                scheduler: SchedulerKind::RoundRobin,
                cc: CcAlgorithm::Olia,
                send_buffer: 16 << 20,
                recv_buffer: 512 << 10,
                max_subflows: 4,
                max_add_addr_accepted: 2,
                deny_join_initial_addr: true,
                instance_id: TokenPrefix::new(3, 4),
                threads: Some(2),
                debug_misroute: false,
                impair: vec![ImpairArg {
                    addr: "fd00::2".parse().unwrap(),
                    spec: "loss=1%".into(),
                }],
                no_routes: true,
                seed: Some(42),
                log_level: None,
            }),
        };
        assert_eq!(cli, expected);
        cli.validate().unwrap();
        let Command::Run(r) = &cli.command else {
            unreachable!()
        };
        assert_eq!(r.control_path(), PathBuf::from("/tmp/ctl.sock"));
        assert_eq!(r.primary_addr().addr, v4(10, 10, 1, 2));
    }

    #[test]
    fn run_defaults() {
        let r = run(&["--addr", "10.0.0.1"]);
        assert_eq!(r.tun, "mptun0");
        assert_eq!(r.mtu, 1500);
        assert_eq!(r.txqueuelen, 10_000);
        assert_eq!(r.control, None);
        assert_eq!(r.control_path(), PathBuf::from("/run/mptun/mptun0.sock"));
        assert!(r.echo.is_empty() && r.sink.is_empty() && r.forward.is_empty());
        assert!(r.local_forward.is_empty() && r.impair.is_empty());
        assert!(!r.no_mptcp && !r.no_routes && !r.no_offload);
        assert_eq!((r.pcap, r.seed), (None, None));
        assert_eq!(r.control_group, None);
        assert_eq!(r.connect_timeout, Duration::from_secs(10));
        assert_eq!(r.idle_timeout, Duration::from_secs(600));
        assert_eq!(r.max_memory, MemorySize::Auto);
        assert_eq!(r.max_conns_per_source, 1024);
        assert_eq!(r.max_connections, 65536);
        assert_eq!(r.max_relays, 16384);
        assert_eq!(r.syn_cookies, SynCookies::OnOverflow);
        assert_eq!((r.send_buffer, r.recv_buffer), (4 << 20, 8 << 20));

        let r = run(&["--addr", "10.0.0.1", "--tun", "foo"]);
        assert_eq!(r.control_path(), PathBuf::from("/run/mptun/foo.sock"));
    }

    #[test]
    fn status_args() {
        let cli = Cli::try_parse_from(["mptun", "status", "--json"]).unwrap();
        let Command::Status(s) = cli.command else {
            panic!("expected status")
        };
        assert!(s.json);
        assert_eq!(s.tun, "mptun0");
        assert_eq!(s.control_path(), PathBuf::from("/run/mptun/mptun0.sock"));

        let cli = Cli::try_parse_from(["mptun", "status", "--tun", "foo"]).unwrap();
        let Command::Status(s) = cli.command else {
            panic!("expected status")
        };
        assert!(!s.json);
        assert_eq!(s.control_path(), PathBuf::from("/run/mptun/foo.sock"));

        let cli = Cli::try_parse_from(["mptun", "status", "--control", "/x.sock"]).unwrap();
        let Command::Status(s) = cli.command else {
            panic!("expected status")
        };
        assert_eq!(s.control_path(), PathBuf::from("/x.sock"));
    }

    #[test]
    fn durations_parse() {
        let d = |s| parse_duration(s).unwrap();
        assert_eq!(d("0"), Duration::ZERO);
        assert_eq!(d("10"), Duration::from_secs(10));
        assert_eq!(d("10s"), Duration::from_secs(10));
        assert_eq!(d("500ms"), Duration::from_millis(500));
        assert_eq!(d("1.5m"), Duration::from_secs(90));
        assert_eq!(d("10min"), Duration::from_secs(600));
        assert_eq!(d("2h"), Duration::from_secs(7200));
        for bad in ["", "s", "-1s", "10 parsecs", "1e9h", "1.2.3s"] {
            assert!(parse_duration(bad).is_err(), "{bad:?}");
        }
        assert!(parse_connect_timeout("0s").is_err());
        let e = Cli::try_parse_validated_from([
            "mptun",
            "run",
            "--addr",
            "10.0.0.1",
            "--control-group",
            " ",
        ])
        .unwrap_err();
        assert_eq!(e.exit_code(), 2);
        assert!(e.to_string().contains("--control-group"), "{e}");
    }

    #[test]
    fn mptcp_versions_parse_highest_first() {
        let r = run(&["--addr", "10.0.0.1", "--mptcp-version", "0,1"]);
        assert_eq!(r.mptcp_version, MptcpVersions(vec![1, 0]));
        assert!(r.mptcp_version.allows(0) && r.mptcp_version.allows(1));
        let r = run(&["--addr", "10.0.0.1", "--mptcp-version", "0"]);
        assert!(!r.mptcp_version.allows(1));
        assert_eq!(
            run_err(&["--addr", "10.0.0.1", "--mptcp-version", "2"]).exit_code(),
            2
        );
    }

    #[test]
    fn addr_subcommands_parse() {
        let cli = Cli::try_parse_from(["mptun", "addr", "add", "10.10.2.2,signal,backup"]).unwrap();
        let Command::Addr(a) = &cli.command else {
            panic!("expected addr")
        };
        assert_eq!(
            a.op,
            AddrOp::Add {
                spec: "10.10.2.2,signal,backup".into()
            }
        );
        assert_eq!(a.control_path(), PathBuf::from("/run/mptun/mptun0.sock"));
        let cli = Cli::try_parse_from([
            "mptun",
            "addr",
            "set",
            "fd00::2",
            "nobackup",
            "--control",
            "/x.sock",
        ])
        .unwrap();
        let Command::Addr(a) = &cli.command else {
            panic!("expected addr")
        };
        assert_eq!(
            a.op,
            AddrOp::Set {
                addr: "fd00::2".parse().unwrap(),
                prio: Prio::Nobackup
            }
        );
        assert_eq!(a.control_path(), PathBuf::from("/x.sock"));
        for bad in [
            &["mptun", "addr", "add", "10.0.0.1,fast"][..],
            &["mptun", "addr", "del", "nowhere"],
            &["mptun", "addr", "set", "10.0.0.1", "sometimes"],
            &["mptun", "addr"],
        ] {
            let e = Cli::try_parse_from(bad).unwrap_err();
            assert_eq!(e.exit_code(), 2, "{bad:?}: {e}");
        }
    }

    #[test]
    fn bad_arguments_exit_with_2() {
        let e = run_err(&[]);
        assert_eq!(e.kind(), ErrorKind::MissingRequiredArgument);
        assert_eq!(e.exit_code(), 2);
        assert!(e.to_string().contains("--addr"), "{e}");

        let e = run_err(&["--addr", "10.0.0.1,bogus"]);
        assert_eq!(e.exit_code(), 2);
        let msg = e.to_string();
        assert!(
            msg.contains("for '--addr <IP[,FLAG...]>': unknown address flag 'bogus'"),
            "{msg}"
        );
        assert_eq!(
            msg.lines().next().unwrap(),
            "error: invalid value '10.0.0.1,bogus' for '--addr <IP[,FLAG...]>': \
             unknown address flag 'bogus'; valid flags: signal, subflow, backup"
        );

        for args in [
            &["--addr", "10.0.0.1", "--echo", "0"][..],
            &["--addr", "10.0.0.1", "--sink", "70000"],
            &["--addr", "10.0.0.1", "--mtu", "575"],
            &["--addr", "10.0.0.1", "--mtu", "65536"],
            &["--addr", "10.0.0.1", "--txqueuelen", "0"],
            &["--addr", "10.0.0.1", "--tun", "a/b"],
            &["--addr", "10.0.0.1", "--tun", "sixteen-chars-xx"],
            &["--addr", "10.0.0.1", "--seed", "-1"],
            &["--addr", "10.0.0.1", "--impair", "10.0.0.1:"],
            &["--addr", "10.0.0.1", "--scheduler", "fastest"],
            &["--addr", "10.0.0.1", "--cc", "bbr"],
            &["--addr", "10.0.0.1", "--max-subflows", "9"],
            &["--addr", "10.0.0.1", "--max-add-addr-accepted", "-1"],
            &["--addr", "10.0.0.1", "--connect-timeout", "0"],
            &["--addr", "10.0.0.1", "--idle-timeout", "soon"],
            &["--addr", "10.0.0.1", "--idle-timeout", "5d"],
            &["--addr", "10.0.0.1", "--max-memory", "12X"],
            &["--addr", "10.0.0.1", "--max-memory", "100K"],
            &["--addr", "10.0.0.1", "--max-memory", "99999999999G"],
            &["--addr", "10.0.0.1", "--max-memory", "-1"],
            &["--addr", "10.0.0.1", "--max-conns-per-source", "0"],
            &["--addr", "10.0.0.1", "--max-connections", "0"],
            &["--addr", "10.0.0.1", "--syn-cookies", "sometimes"],
            &["--addr", "10.0.0.1", "--instance-id", "3"],
            &["--addr", "10.0.0.1", "--instance-id", "16/4"],
            &["--addr", "10.0.0.1", "--instance-id", "0/0"],
            &["--addr", "10.0.0.1", "--instance-id", "1/9"],
            &["--addr", "10.0.0.1", "--instance-id", "x/2"],
        ] {
            let e = run_err(args);
            assert_eq!(e.exit_code(), 2, "{args:?}: {e}");
        }
        assert_eq!(
            Cli::try_parse_from(["mptun"]).unwrap_err().exit_code(),
            2,
            "a subcommand is required"
        );
    }

    #[test]
    fn validate_mtu_against_address_families() {
        let r = run(&["--addr", "10.0.0.1", "--mtu", "576"]);
        r.validate().unwrap();
        let r = run(&["--addr", "10.0.0.1", "--addr", "fd00::1", "--mtu", "1279"]);
        let e = r.validate().unwrap_err();
        assert!(e.message().contains("--mtu 1279"), "{e}");
        assert!(e.message().contains("at least 1280"), "{e}");
        run(&["--addr", "fd00::1", "--mtu", "1280"])
            .validate()
            .unwrap();

        // Through the validating entry point it is an exit-2 clap error.
        let e =
            Cli::try_parse_validated_from(["mptun", "run", "--addr", "fd00::1", "--mtu", "1000"])
                .unwrap_err();
        assert_eq!(e.exit_code(), 2);
        assert!(e.to_string().contains("at least 1280"), "{e}");
        assert!(Cli::try_parse_validated_from(["mptun", "run", "--addr", "fd00::1"]).is_ok());
    }

    #[test]
    fn socks5_is_never_an_open_proxy() {
        let run = |extra: &[&str]| {
            let mut args = vec!["mptun", "run", "--tun", "t0", "--addr", "10.0.0.1"];
            args.extend_from_slice(extra);
            Cli::try_parse_validated_from(args)
        };
        let e = run(&["--socks5", "1080"]).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::ValueValidation);
        assert!(e.to_string().contains("open proxy"), "{e}");
        let ok = run(&["--socks5", "1080", "--socks5-allow", "10.0.0.0/8,fd00::/8"]).unwrap();
        let Command::Run(r) = ok.command else {
            panic!("a run command")
        };
        assert_eq!(r.socks5_allow.len(), 2);
        let e = run(&["--socks5-allow", "10.0.0.0/8"]).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::MissingRequiredArgument);
        let e = run(&["--socks5", "1080", "--socks5-allow", "10.0.0.0/33"]).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::ValueValidation);
        let e = run(&[
            "--socks5",
            "7",
            "--echo",
            "7",
            "--socks5-allow",
            "10.0.0.0/8",
        ])
        .unwrap_err();
        assert!(e.to_string().contains("port 7"), "{e}");
    }

    #[test]
    fn socks5_listen_is_never_an_open_proxy_and_needs_an_upstream() {
        let run = |extra: &[&str]| {
            let mut args = vec!["mptun", "run", "--tun", "t0", "--addr", "10.0.0.1"];
            args.extend_from_slice(extra);
            Cli::try_parse_validated_from(args)
        };
        let up = ["--upstream", "socks5://10.40.1.2:1080"];
        let e = run(&up).unwrap_err();
        assert!(
            e.to_string().contains("--transparent or --socks5-listen"),
            "{e}"
        );
        let e = run(&["--socks5-listen", "127.0.0.1:1080"]).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::MissingRequiredArgument);
        let ok = run(&[up[0], up[1], "--socks5-listen", "127.0.0.1:1080"]).unwrap();
        let Command::Run(r) = ok.command else {
            panic!("a run command")
        };
        assert_eq!(r.socks5_listen, Some("127.0.0.1:1080".parse().unwrap()));
        assert!(!r.transparent);
        let e = run(&[up[0], up[1], "--socks5-listen", "0.0.0.0:1080"]).unwrap_err();
        assert!(e.to_string().contains("open proxy"), "{e}");
        let lan = [up[0], up[1], "--socks5-listen", "[::]:1080"];
        let ok = run(&[
            &lan[..],
            &["--socks5-listen-allow", "fd50::/64,192.168.50.0/24"],
        ]
        .concat());
        assert_eq!(ok.map(|_| ()).map_err(|e| e.to_string()), Ok(()));
        let e = run(&["--socks5-listen-allow", "10.0.0.0/8"]).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::MissingRequiredArgument);
    }

    #[test]
    fn validate_conflicts() {
        let e = |args: &[&str]| run(args).validate().unwrap_err().to_string();
        assert!(e(&["--addr", "10.0.0.1", "--addr", "10.0.0.1,signal"]).contains("twice"));
        assert_eq!(
            e(&["--addr", "10.0.0.1", "--echo", "7", "--sink", "7"]),
            "port 7 is used by both --echo and --sink"
        );
        assert_eq!(
            e(&["--addr", "10.0.0.1", "--sink", "19", "--chargen", "19"]),
            "port 19 is used by both --sink and --chargen"
        );
        assert!(
            e(&["--addr", "10.0.0.1", "--echo", "80", "--forward", "80=h:1"]).contains("--forward")
        );
        assert!(e(&[
            "--addr",
            "10.0.0.1",
            "--local-forward",
            "127.0.0.1:9=10.0.0.2:1",
            "--local-forward",
            "127.0.0.1:9=10.0.0.2:2",
        ])
        .contains("127.0.0.1:9 twice"));
        assert!(e(&["--addr", "10.0.0.1", "--impair", "10.0.0.2:loss=1%"])
            .contains("not one of the --addr addresses"));
        assert!(e(&[
            "--addr",
            "10.0.0.1",
            "--impair",
            "10.0.0.1:loss=1%",
            "--impair",
            "10.0.0.1:delay=1ms",
        ])
        .contains("given twice"));
        let too_many = e(&[
            "--addr",
            "10.0.0.1",
            "--instance-id",
            "1/7",
            "--threads",
            "4",
        ]);
        assert!(
            too_many.contains("--threads 4") && too_many.contains("more than 8"),
            "{too_many}"
        );
        run(&[
            "--addr",
            "10.0.0.1",
            "--instance-id",
            "1/7",
            "--threads",
            "2",
        ])
        .validate()
        .unwrap();
        // The default never asks for more bits than --instance-id leaves.
        let r = run(&["--addr", "10.0.0.1", "--instance-id", "3/8"]);
        assert_eq!(r.threads(), 1);
        r.validate().unwrap();
        // A programmatically built RunArgs without addresses is rejected, not a panic.
        let mut r = run(&["--addr", "10.0.0.1"]);
        r.addrs.clear();
        assert!(r.validate().unwrap_err().message().contains("--addr"));
    }

    #[test]
    fn help_renders_and_documents_every_option() {
        Cli::command().debug_assert();
        let mut cmd = Cli::command();
        let top = cmd.render_long_help().to_string();
        assert!(top.contains("RUST_LOG=mptun=debug"), "{top}");
        assert!(top.contains("run") && top.contains("status"), "{top}");
        assert!(top.contains("check-config"), "{top}");

        let run_help = cmd
            .find_subcommand_mut("run")
            .unwrap()
            .render_long_help()
            .to_string();
        for opt in [
            "--config <FILE>",
            "--tun <NAME>",
            "--addr <IP[,FLAG...]>",
            "--mtu <N>",
            "--txqueuelen <N>",
            "--no-offload",
            "--echo <PORT>",
            "--sink <PORT>",
            "--forward <PORT=HOST:PORT>",
            "--local-forward <LADDR:LPORT=RADDR:RPORT>",
            "--pcap <FILE>",
            "--control <PATH>",
            "--control-group <GROUP>",
            "--connect-timeout <DURATION>",
            "--idle-timeout <DURATION>",
            "--max-relays <N>",
            "--max-memory <SIZE>",
            "--max-conns-per-source <N>",
            "--max-connections <N>",
            "--syn-cookies <WHEN>",
            "--no-mptcp",
            "--impair <ADDR:SPEC>",
            "--no-routes",
            "--seed <N>",
        ] {
            assert!(run_help.contains(opt), "run help lacks {opt}:\n{run_help}");
        }
        for text in [
            "signal",
            "subflow",
            "backup",
            "[default: mptun0]",
            "10000",
            "500",
        ] {
            assert!(
                run_help.contains(text),
                "run help lacks {text}:\n{run_help}"
            );
        }

        let status_help = cmd
            .find_subcommand_mut("status")
            .unwrap()
            .render_long_help()
            .to_string();
        for opt in ["--control <PATH>", "--tun <NAME>", "--json"] {
            assert!(
                status_help.contains(opt),
                "status help lacks {opt}:\n{status_help}"
            );
        }
    }
}
