//! Tests of `run --config` and `check-config` (`config_merge`, `config_file`).

use super::*;
use crate::cli::{AddrSpec, MemorySize};
use crate::config_file::KEYS;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

/// A configuration file of its own for each call (tests run in parallel).
fn write(text: &str) -> PathBuf {
    static N: AtomicUsize = AtomicUsize::new(0);
    let path = std::env::temp_dir().join(format!(
        "mptun-config-test-{}-{}.toml",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::write(&path, text).unwrap();
    path
}

fn example(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("examples")
        .join(name)
}

fn run_with(path: &Path, extra: &[&str]) -> Result<RunArgs, ArgsError> {
    let mut argv: Vec<OsString> = vec!["mptun".into(), "run".into()];
    argv.extend(extra.iter().map(OsString::from));
    argv.extend(["--config".into(), path.as_os_str().to_owned()]);
    match parse_args(argv)?.command {
        Command::Run(r) => Ok(r),
        other => panic!("a run command, not {other:?}"),
    }
}

fn run_text(text: &str, extra: &[&str]) -> RunArgs {
    run_with(&write(text), extra).unwrap_or_else(|e| panic!("{e:?}"))
}

/// The error a file makes, as `mptun: ...` prints it, with the file's name
/// replaced by FILE; and that it exits 2.
fn config_err(text: &str, extra: &[&str]) -> String {
    let path = write(text);
    let e = run_with(&path, extra).expect_err("a bad file");
    assert_eq!(e.exit_code(), 2, "{e:?}");
    let ArgsError::Config(e) = e else {
        panic!("a configuration error, not {e:?}")
    };
    if extra.is_empty() {
        let check = check_config(&path).expect_err("check-config fails alike");
        assert_eq!(check.exit_code(), 2);
    }
    e.to_string().replace(&path.display().to_string(), "FILE")
}

const ADDR: &str = "[[address]]\nip = \"10.0.0.1\"\n";

#[test]
fn every_run_option_has_a_key() {
    let cmd = Cli::command();
    let run = cmd.find_subcommand("run").unwrap();
    let ids: Vec<&str> = run
        .get_arguments()
        .map(|a| a.get_id().as_str())
        .filter(|id| !["config", "help"].contains(id))
        .collect();
    for id in &ids {
        assert!(key_of(id).is_some(), "--{id} has no key in the file");
    }
    for k in KEYS {
        assert!(ids.contains(&k.id), "{} names no option", k.key);
    }
}

#[test]
fn the_examples_parse_and_run() {
    let r = run_with(&example("mptun.toml"), &[]).unwrap();
    assert_eq!(r.tun, "mptun0");
    assert_eq!(
        r.addrs,
        vec![
            "10.10.1.2".parse::<AddrSpec>().unwrap(),
            "10.10.2.2,signal".parse().unwrap()
        ]
    );
    assert_eq!((r.echo.clone(), r.sink.clone()), (vec![7], vec![9]));
    assert_eq!(r.forward[0].to_string(), "8080=127.0.0.1:80");
    assert_eq!(
        r.local_forward[0].to_string(),
        "127.0.0.1:6000=10.10.1.1:5000"
    );
    assert!(!r.no_offload && !r.no_mptcp && !r.transparent);
    check_config(&example("mptun.toml")).unwrap();

    let g = run_with(&example("gateway.toml"), &[]).unwrap();
    assert!(g.transparent);
    assert_eq!(g.addrs[1], "10.20.2.2,subflow".parse().unwrap());
    assert_eq!(g.upstream.unwrap().to_string(), "socks5://10.40.1.2:1080");
    assert_eq!(g.socks5_listen, Some("127.0.0.1:1080".parse().unwrap()));
    check_config(&example("gateway.toml")).unwrap();
}

#[test]
fn the_command_line_overrides_the_file() {
    let file = format!(
        "{ADDR}[[address]]\nip = \"10.0.0.2\"\nsignal = true\n\
         [tun]\nmtu = 1400\nname = \"f0\"\n[services]\necho = [7, 8]\n\
         [limits]\nidle-timeout = \"1m\"\n[mptcp]\nscheduler = \"redundant\"\n"
    );
    let r = run_text(
        &file,
        &[
            "--mtu",
            "1300",
            "--addr",
            "10.9.9.9",
            "--echo",
            "9",
            "--no-mptcp",
        ],
    );
    assert_eq!(r.mtu, 1300);
    assert_eq!(
        r.addrs,
        vec!["10.9.9.9".parse().unwrap()],
        "replaced, not added"
    );
    assert_eq!(r.echo, vec![9], "replaced, not added");
    assert!(r.no_mptcp);
    // What the command line leaves alone comes from the file.
    assert_eq!(r.tun, "f0");
    assert_eq!(r.scheduler, mptun_stack::SchedulerKind::Redundant);
    assert_eq!(r.idle_timeout, Duration::from_secs(60));
}

#[test]
fn a_default_does_not_override_the_file() {
    let r = run_text(
        &format!(
            "{ADDR}[tun]\nmtu = 1400\ntxqueuelen = 20\n[limits]\nmax-memory = \"64M\"\n\
             connect-timeout = \"500ms\"\n[tcp]\ncc = \"olia\"\nsend-buffer = \"16M\"\n"
        ),
        &[],
    );
    assert_eq!(r.mtu, 1400);
    assert_eq!(r.txqueuelen, 20);
    assert_eq!(r.max_memory, MemorySize::Bytes(64 << 20));
    assert_eq!(r.connect_timeout, Duration::from_millis(500));
    assert_eq!(r.cc, mptun_stack::CcAlgorithm::Olia);
    assert_eq!((r.send_buffer, r.recv_buffer), (16 << 20, 8 << 20));
    // A file without the option leaves the command line's default.
    let r = run_text(ADDR, &[]);
    assert_eq!(r.mtu, crate::cli::DEFAULT_MTU);
}

#[test]
fn check_config_output_reads_back_the_same() {
    for name in ["mptun.toml", "gateway.toml"] {
        let mut a = run_with(&example(name), &[]).unwrap();
        let printed = check_config(&example(name)).unwrap();
        let mut b = run_with(&write(&printed), &[]).unwrap();
        a.config = None;
        b.config = None;
        assert_eq!(a, b, "{name}:\n{printed}");
    }
    // Every setting away from its default, and back.
    let argv = [
        "--tun",
        "t9",
        "--addr",
        "10.0.0.1,backup",
        "--addr",
        "fd00::1,signal,subflow",
        "--mtu",
        "1400",
        "--txqueuelen",
        "7",
        "--no-offload",
        "--echo",
        "7",
        "--sink",
        "9",
        "--sink-sha256",
        "--forward",
        "80=[::1]:8080",
        "--local-forward",
        "[::1]:9000=[fd00::9]:5201",
        "--socks5",
        "1080",
        "--socks5-allow",
        "10.0.0.0/8",
        "--socks5-users",
        "/etc/u",
        "--transparent",
        "--upstream",
        "socks5://10.4.0.1:1080",
        "--socks5-listen",
        "[::]:1081",
        "--socks5-listen-allow",
        "fd00::/8",
        "--upstream-scheduler",
        "overflow",
        "--upstream-credentials",
        "/etc/c",
        "--pcap",
        "/tmp/p",
        "--control",
        "/tmp/c.sock",
        "--control-group",
        "wheel",
        "--metrics",
        "[::1]:9100",
        "--connect-timeout",
        "1500ms",
        "--idle-timeout",
        "0",
        "--max-relays",
        "5",
        "--max-memory",
        "3M",
        "--max-conns-per-source",
        "3",
        "--max-connections",
        "4",
        "--syn-cookies",
        "always",
        "--mptcp-version",
        "1,0",
        "--no-v0-retry",
        "--scheduler",
        "redundant",
        "--cc",
        "lia",
        "--send-buffer",
        "1G",
        "--recv-buffer",
        "640K",
        "--max-subflows",
        "8",
        "--max-add-addr-accepted",
        "3",
        "--deny-join-initial-addr",
        "--threads",
        "2",
        "--debug-misroute",
        "--instance-id",
        "1/2",
        "--impair",
        "[fd00::1]:loss=1%",
        "--no-routes",
        "--seed",
        "42",
        "--log-level",
        "info,mptun::control=debug",
    ];
    let cli = Cli::try_parse_validated_from(["mptun", "run"].iter().chain(&argv)).unwrap();
    let Command::Run(a) = cli.command else {
        unreachable!()
    };
    let printed = render(&a).unwrap();
    let mut b = run_with(&write(&printed), &[]).unwrap();
    b.config = None;
    assert_eq!(a, b, "{printed}");
    // And a file with checksums on (no --no-mptcp) reads back too.
    let mut a = run_text(&format!("{ADDR}[mptcp]\nchecksum = true\n"), &[]);
    assert!(a.checksum);
    let mut b = run_with(&write(&render(&a).unwrap()), &[]).unwrap();
    a.config = None;
    b.config = None;
    assert_eq!(a, b);
}

#[test]
fn errors_name_the_file_the_line_and_the_key() {
    let cases: &[(&str, &str)] = &[
        // Unknown keys, in a table, an array of tables and at the top.
        (
            "[tun]\nname = \"x0\"\nbogus = 1\n",
            "FILE:3:1: tun.bogus: unknown field `bogus`, expected one of `name`, `mtu`, `txqueuelen`, `offload`, `routes`, `threads`",
        ),
        (
            "[[address]]\nip = \"10.0.0.1\"\nsignl = true\n",
            "FILE:3:1: address.signl: unknown field `signl`, expected one of `ip`, `signal`, `subflow`, `backup`",
        ),
        (
            "mtu = 1500\n",
            "FILE:1:1: mtu: unknown field `mtu`, expected one of `tun`, `address`, `services`, `socks5`, `gateway`, `tcp`, `mptcp`, `limits`, `control`, `debug`, `log`",
        ),
        // Wrong types.
        (
            "[tun]\nmtu = \"big\"\n",
            "FILE:2:7: tun.mtu: invalid type: string \"big\", expected an integer",
        ),
        (
            "[mptcp]\nchecksum = \"yes\"\n",
            "FILE:2:12: mptcp.checksum: invalid type: string \"yes\", expected a boolean",
        ),
        (
            "[services]\necho = 7\n",
            "FILE:2:8: services.echo: invalid type: integer `7`, expected an array",
        ),
        // Bad values, with the command line's own words.
        (
            "[[address]]\nip = \"10.0.0.300\"\n",
            "FILE:2:6: address: '10.0.0.300' is not an IPv4 or IPv6 address",
        ),
        (
            "[[address]]\nip = \"10.0.0.1,signal\"\n",
            "FILE:2:6: address.ip: write the flags as `signal = true` etc., not in the address",
        ),
        (
            &format!("{ADDR}[services]\necho = [7, 0]\n"),
            "FILE:4:12: services.echo: port 0 is not allowed (use 1 to 65535)",
        ),
        (
            &format!("{ADDR}[limits]\nmax-memory = \"12X\"\n"),
            "FILE:4:14: limits.max-memory: invalid size '12X': a number with K, M or G (e.g. 512M, 2G), or auto",
        ),
        (
            &format!("{ADDR}[mptcp]\nmax-subflows = 9\n"),
            "FILE:4:16: mptcp.max-subflows: 9 is not in 0..=8",
        ),
        // Conflicts and duplicates, at the line that makes them.
        (
            "[[address]]\nip = \"10.0.0.1\"\n\n[[address]]\nip = \"10.0.0.1\"\nsignal = true\n",
            "FILE:5:6: address: address 10.0.0.1 is given twice",
        ),
        (
            &format!("{ADDR}[mptcp]\nenabled = false\nchecksum = true\n"),
            "FILE:4:11: mptcp.enabled: mptcp.enabled = false cannot be used with mptcp.checksum = true",
        ),
        (
            &format!("{ADDR}[gateway]\ntransparent = true\n"),
            "FILE:4:15: gateway.transparent: gateway.transparent = true needs gateway.upstream",
        ),
        (
            &format!("{ADDR}[services]\necho = [7]\nsink = [8, 7]\n"),
            "FILE:5:12: services.sink: port 7 is used by both services.echo and services.sink",
        ),
        (
            &format!("{ADDR}[socks5]\nport = 1080\n"),
            "FILE:4:8: socks5.port: socks5.port would be an open proxy: give socks5.allow PREFIX,... or socks5.users FILE",
        ),
        (
            "[tun]\nmtu = 1500\n",
            "FILE: at least one address is required",
        ),
        ("[services\n", "FILE:1:10: unclosed table, expected `]`"),
        (
            &format!("{ADDR}[log]\nlevel = \"mptun=loud\"\n"),
            "FILE:4:9: log.level: `mptun=loud` is not a log filter: error parsing level filter: expected one of \"off\", \"error\", \"warn\", \"info\", \"debug\", \"trace\", or a number 0-5",
        ),
    ];
    for (text, want) in cases {
        assert_eq!(&config_err(text, &[]), want, "for:\n{text}");
    }
    let e = run_with(Path::new("/nonexistent/mptun.toml"), &[]).unwrap_err();
    assert_eq!(e.exit_code(), 2);
    assert!(
        matches!(&e, ArgsError::Config(c) if c.to_string().starts_with("/nonexistent/mptun.toml: cannot read it")),
        "{e:?}"
    );
}

#[test]
fn errors_between_file_and_command_line() {
    // The file's value clashes with the command line's: the file's line.
    assert_eq!(
        config_err(&format!("{ADDR}[services]\nsink = [7]\n"), &["--echo", "7"]),
        "FILE:4:9: services.sink: port 7 is used by both --echo and services.sink"
    );
    assert_eq!(
        config_err(
            &format!("{ADDR}[mptcp]\nchecksum = true\n"),
            &["--no-mptcp"]
        ),
        "FILE:4:12: mptcp.checksum: mptcp.checksum = true cannot be used with --no-mptcp"
    );
    // Only the command line is wrong: a command-line error, as without a file.
    let path = write(ADDR);
    let e = run_with(&path, &["--echo", "7", "--sink", "7"]).unwrap_err();
    assert_eq!(e.exit_code(), 2);
    let ArgsError::Clap(e) = e else {
        panic!("a command-line error, not {e:?}")
    };
    assert!(
        e.to_string()
            .contains("port 7 is used by both --echo and --sink"),
        "{e}"
    );
    let e = run_with(&path, &["--mtu", "5"]).unwrap_err();
    assert!(matches!(e, ArgsError::Clap(_)), "{e:?}");
    // Its usage line does not list the file's settings as if typed.
    let ArgsError::Clap(e) = run_with(&path, &["--bogus"]).unwrap_err() else {
        panic!("a command-line error")
    };
    assert!(e.to_string().contains("'--bogus'"), "{e}");
    assert!(!e.to_string().contains("--addr"), "{e}");
    // The file's companion satisfies the command line's option.
    let r = run_text(
        &format!("{ADDR}[gateway]\nupstream = \"direct\"\n"),
        &["--transparent"],
    );
    assert!(r.transparent);
}

#[test]
fn without_config_the_command_line_is_unchanged() {
    let cli = parse_args(["mptun", "run", "--addr", "10.0.0.1"]).unwrap();
    assert!(matches!(cli.command, Command::Run(r) if r.config.is_none()));
    let e = parse_args(["mptun", "run"]).unwrap_err();
    assert_eq!(e.exit_code(), 2);
    assert!(matches!(e, ArgsError::Clap(_)));
}
