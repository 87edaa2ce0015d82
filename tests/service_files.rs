//! What a packager installs: `mptun --version` names the commit, completions
//! and man pages come out of the binary, and contrib/systemd/mptun@.service
//! passes `systemd-analyze verify` (skipped where systemd-analyze is missing).

use std::path::Path;
use std::process::Command;

fn mptun(args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_mptun"))
        .args(args)
        .output()
        .expect("run mptun");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn version_names_the_git_commit() {
    let (ok, out, _) = mptun(&["--version"]);
    assert!(ok);
    let want_prefix = format!("mptun {} (commit ", env!("CARGO_PKG_VERSION"));
    let commit = out
        .trim_end()
        .strip_prefix(&want_prefix)
        .and_then(|r| r.strip_suffix(')'))
        .unwrap_or_else(|| panic!("{out:?}"));
    // The commit of the checkout the test binary was built from, when that is
    // a git repository; "unknown" when it is not (a tarball).
    let head = Command::new("git")
        .args(["rev-parse", "--short=9", "HEAD"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string());
    match head {
        Some(h) => assert_eq!(commit, h, "{out}"),
        None => assert_eq!(commit, "unknown", "{out}"),
    }
}

#[test]
fn completions_and_man_pages_come_out_of_the_binary() {
    for shell in ["bash", "zsh", "fish"] {
        let (ok, out, err) = mptun(&["completions", shell]);
        assert!(ok, "{shell}: {err}");
        assert!(
            out.contains("run") && out.contains("status"),
            "{shell}: {out}"
        );
    }
    let (ok, _, err) = mptun(&["completions", "tcsh"]);
    assert!(!ok && err.contains("tcsh"), "{err}");
    let (ok, out, _) = mptun(&["man", "run"]);
    assert!(ok && out.contains("\n.TH mptun-run 1 ") && out.contains("\\-\\-echo"));
    let (ok, _, err) = mptun(&["man", "nonesuch"]);
    assert!(!ok && err.contains("nonesuch"), "{err}");
}

#[test]
fn the_systemd_unit_verifies() {
    let analyze = Path::new("/usr/bin/systemd-analyze");
    if !analyze.exists() {
        eprintln!("skipped: no {}", analyze.display());
        return;
    }
    let unit = Path::new(env!("CARGO_MANIFEST_DIR")).join("contrib/systemd/mptun@.service");
    let text = std::fs::read_to_string(&unit).unwrap();
    assert!(text.contains("ExecStart=/usr/local/bin/mptun run --config /etc/mptun/%i.toml"));
    // `systemctl reload` is SIGHUP, which mptun answers with a reload.
    assert!(text.contains("\nExecReload=/bin/kill -HUP $MAINPID\n"));
    // systemd-analyze wants an executable at ExecStart: this test's binary.
    let text = text.replace("/usr/local/bin/mptun", env!("CARGO_BIN_EXE_mptun"));
    let dir = std::env::temp_dir().join(format!("mptun-unit-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let instance = dir.join("mptun@verify.service");
    std::fs::write(&instance, text).unwrap();
    let out = Command::new(analyze)
        .args(["verify", "--man=no"])
        .arg(&instance)
        .output()
        .unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "systemd-analyze verify: {err}");
    // An unknown or misspelt key is only a warning (exit 0): none either.
    let about_unit: Vec<&str> = err.lines().filter(|l| l.contains("mptun@")).collect();
    assert!(about_unit.is_empty(), "systemd-analyze verify: {err}");
}
