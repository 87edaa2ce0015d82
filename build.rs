//! Records the git commit the binary is built from, for `mptun --version`
//! (`MPTUN_GIT_COMMIT`): "unknown" where there is no git or no repository (a
//! `cargo install` from a published tarball).

use std::path::PathBuf;
use std::process::Command;

fn git(args: &[&str]) -> Option<String> {
    let out = Command::new("git").args(args).output().ok()?;
    if !out.status.success() {
        return None;
    }
    let s = String::from_utf8(out.stdout).ok()?.trim().to_string();
    (!s.is_empty()).then_some(s)
}

/// Whether the sources are a git checkout of their own: a package unpacked
/// somewhere inside another repository (a home directory kept in git) must not
/// report that repository's commit.
fn own_checkout() -> bool {
    let Some(top) = git(&["rev-parse", "--show-toplevel"]) else {
        return false;
    };
    let here = std::env::var_os("CARGO_MANIFEST_DIR").map(PathBuf::from);
    let canon = |p: &std::path::Path| std::fs::canonicalize(p).ok();
    here.is_some_and(|h| canon(&h).is_some() && canon(&h) == canon(top.as_ref()))
}

fn main() {
    let own = own_checkout();
    let commit = own
        .then(|| git(&["rev-parse", "--short=9", "HEAD"]))
        .flatten();
    println!(
        "cargo:rustc-env=MPTUN_GIT_COMMIT={}",
        commit.as_deref().unwrap_or("unknown")
    );
    // Rebuild when HEAD moves (checkout, or a commit on the branch it names),
    // not on every build: only the files that record it, and only those that
    // exist (a missing one would make cargo run this script every time).
    println!("cargo:rerun-if-changed=build.rs");
    if !own {
        return;
    }
    let Some(git_dir) = git(&["rev-parse", "--git-dir"]).map(PathBuf::from) else {
        return;
    };
    // Branches live in the common directory (the same one but in a worktree).
    let common = git(&["rev-parse", "--git-common-dir"]).map_or(git_dir.clone(), PathBuf::from);
    let mut watch = vec![git_dir.join("HEAD"), common.join("packed-refs")];
    if let Some(r) = git(&["symbolic-ref", "-q", "HEAD"]) {
        watch.push(common.join(r));
    }
    for p in watch.into_iter().filter(|p| p.exists()) {
        println!("cargo:rerun-if-changed={}", p.display());
    }
}
