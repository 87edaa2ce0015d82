//! Tests of the reload plan (`reload.rs`): two configurations in, actions
//! and the keys left alone out; a bad file changes nothing.

use super::*;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};

/// A file of its own per test (tests run in parallel).
fn file(text: &str) -> PathBuf {
    static N: AtomicUsize = AtomicUsize::new(0);
    let path = std::env::temp_dir().join(format!(
        "mptun-reload-test-{}-{}.toml",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::write(&path, text).unwrap();
    path
}

fn argv(path: &Path, extra: &[&str]) -> Vec<OsString> {
    let mut v: Vec<OsString> = vec!["mptun".into(), "run".into()];
    v.extend(extra.iter().map(OsString::from));
    v.extend(["--config".into(), path.as_os_str().to_owned()]);
    v
}

fn args(text: &str) -> RunArgs {
    parse_again(&argv(&file(text), &[])).unwrap()
}

const BASE: &str = r#"
[tun]
mtu = 1500
[[address]]
ip = "10.10.1.2"
[[address]]
ip = "10.10.2.2"
signal = true
[services]
echo = [7]
[limits]
max-connections = 1000
"#;

fn spec(s: &str) -> AddrSpec {
    s.parse().unwrap()
}

#[test]
fn the_same_file_plans_nothing() {
    assert_eq!(plan(&args(BASE), &args(BASE), false), Plan::default());
}

#[test]
fn addresses_limits_and_the_log_are_applied_the_rest_is_reported() {
    let new = r#"
[tun]
mtu = 1400
threads = 3
[[address]]
ip = "10.10.2.2"
signal = true
backup = true
[[address]]
ip = "10.10.3.2"
signal = true
[services]
echo = [7, 17]
[mptcp]
max-subflows = 4
[limits]
max-connections = 10
max-memory = "64M"
max-relays = 5
connect-timeout = "3s"
[log]
level = "debug"
"#;
    let p = plan(&args(BASE), &args(new), false);
    assert_eq!(
        p.actions,
        vec![
            // Added first, removed last: never without an address.
            Action::AddAddress(spec("10.10.3.2,signal")),
            Action::ChangeFlags {
                from: spec("10.10.2.2,signal"),
                to: spec("10.10.2.2,signal,backup"),
            },
            Action::RemoveAddress("10.10.1.2".parse().unwrap()),
            Action::Limit {
                id: "max_subflows",
                from: "2".into(),
                to: "4".into()
            },
            Action::Limit {
                id: "max_memory",
                from: "auto".into(),
                to: "64M".into()
            },
            Action::Limit {
                id: "max_connections",
                from: "1000".into(),
                to: "10".into()
            },
            Action::Limit {
                id: "max_relays",
                from: "16384".into(),
                to: "5".into()
            },
            Action::LogLevel {
                from: None,
                to: Some("debug".into())
            },
        ]
    );
    let keys: Vec<&str> = p.not_applied.iter().map(|n| n.key).collect();
    assert_eq!(
        keys,
        [
            "tun.mtu",
            "tun.threads",
            "services.echo",
            "limits.connect-timeout"
        ]
    );
    let mtu = &p.not_applied[0];
    assert_eq!((mtu.from.as_str(), mtu.to.as_str()), ("1500", "1400"));
    assert_eq!(mtu.why, RESTART);
    let descriptions: Vec<String> = p.actions.iter().map(Action::describe).collect();
    assert_eq!(descriptions[0], "address: added 10.10.3.2,signal");
    assert_eq!(
        descriptions[1],
        "address: 10.10.2.2 flags signal -> signal,backup"
    );
    assert_eq!(descriptions[2], "address: removed 10.10.1.2");
    assert_eq!(descriptions[5], "limits.max-connections: 1000 -> 10");
    assert_eq!(descriptions[7], "log.level: (default) -> debug");
}

#[test]
fn switches_are_named_as_the_file_writes_them() {
    let off = BASE.replace("mtu = 1500", "mtu = 1500\noffload = false");
    let p = plan(&args(BASE), &args(&off), false);
    assert!(p.actions.is_empty());
    let n = &p.not_applied[0];
    assert_eq!(
        (n.key, n.from.as_str(), n.to.as_str()),
        ("tun.offload", "true", "false")
    );
}

#[test]
fn rust_log_keeps_the_log_level() {
    let new = format!("{BASE}[log]\nlevel = \"debug\"\n");
    let p = plan(&args(BASE), &args(&new), true);
    assert!(p.actions.is_empty());
    assert_eq!(p.not_applied[0].key, "log.level");
    assert_eq!(p.not_applied[0].why, RUST_LOG_WINS);
}

#[test]
fn the_command_line_still_wins_on_reload() {
    let path = file(BASE);
    let extra = ["--max-connections", "5"];
    let r = Reloader::new(
        argv(&path, &extra),
        parse_again(&argv(&path, &extra)).unwrap(),
        1,
        None,
    );
    assert_eq!(r.running().max_connections, 5);
    std::fs::write(
        &path,
        BASE.replace("max-connections = 1000", "max-connections = 7"),
    )
    .unwrap();
    let (new, p) = r.prepare().unwrap();
    assert_eq!(new.max_connections, 5);
    assert_eq!(p, Plan::default());
}

#[test]
fn a_bad_file_plans_nothing_and_names_file_line_and_key() {
    let path = file(BASE);
    let r = Reloader::new(argv(&path, &[]), args(BASE), 1, None);
    std::fs::write(
        &path,
        BASE.replace("max-connections = 1000", "max-connections = \"many\""),
    )
    .unwrap();
    let e = r.prepare().unwrap_err();
    assert!(
        e.starts_with(&format!(
            "{}:12:19: limits.max-connections: ",
            path.display()
        )),
        "{e}"
    );
    std::fs::write(
        &path,
        BASE.replace("ip = \"10.10.1.2\"", "ip = \"10.10.2.2\""),
    )
    .unwrap();
    let e = r.prepare().unwrap_err();
    assert!(
        e.ends_with(":7:6: address: address 10.10.2.2 is given twice"),
        "{e}"
    );
    // Nothing was taken from either: a good file is planned against the start.
    std::fs::write(&path, BASE.replace("1000", "999")).unwrap();
    let (_, p) = r.prepare().unwrap();
    assert_eq!(p.actions.len(), 1, "only 1000 -> 999: {p:?}");
    std::fs::remove_file(&path).unwrap();
    assert!(r.prepare().unwrap_err().contains("cannot read it"));
}

#[test]
fn without_a_file_there_is_nothing_to_reload() {
    let argv: Vec<OsString> = ["mptun", "run", "--addr", "10.0.0.1"]
        .map(OsString::from)
        .to_vec();
    let running = parse_again(&argv).unwrap();
    let r = Reloader::new(argv, running, 1, None);
    assert!(r.prepare().unwrap_err().contains("without --config"));
}

#[test]
fn every_live_argument_is_adopted() {
    let (a, b) = (args(BASE), args(&BASE.replace("1000", "3")));
    let mut running = a.clone();
    adopt_live(&mut running, &b);
    running.config.clone_from(&b.config);
    assert_eq!(running, b);
    for id in LIVE {
        assert!(key_of(id).is_some(), "{id}");
    }
}
