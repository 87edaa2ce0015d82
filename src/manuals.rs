//! `mptun completions SHELL` and `mptun man`: generated from the command line's
//! definition (`crate::cli::Cli`), so they never disagree with `--help`.

use crate::cli::{Cli, ManArgs};
use clap::CommandFactory;
use std::io::{self, Write};

/// The completion script for `shell`.
pub fn completions(shell: clap_complete::Shell, out: &mut dyn Write) {
    clap_complete::generate(shell, &mut Cli::command(), "mptun", out);
}

/// mptun(1), or mptun-COMMAND(1) for `command`.
pub fn man_page(command: Option<&str>, out: &mut dyn Write) -> Result<(), String> {
    let mut cli = Cli::command().disable_help_subcommand(true);
    cli.build();
    let cmd = match command {
        None => cli,
        Some(name) => {
            let sub = cli
                .find_subcommand(name)
                .ok_or_else(|| format!("man: no command {name:?}"))?;
            // Built, it is displayed as "mptun-run": the page's title, as
            // `--dir` names its file.
            sub.clone()
        }
    };
    clap_mangen::Man::new(cmd)
        .render(out)
        .map_err(|e| format!("man: {e}"))
}

/// `mptun man [COMMAND] [--dir DIR]`.
pub fn man(args: &ManArgs) -> Result<(), String> {
    match &args.dir {
        Some(dir) => clap_mangen::generate_to(Cli::command(), dir)
            .map_err(|e| format!("man --dir {}: {e}", dir.display())),
        None => {
            let mut page = Vec::new();
            man_page(args.command.as_deref(), &mut page)?;
            io::stdout()
                .write_all(&page)
                .map_err(|e| format!("man: {e}"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn completions_for_each_shell_name_the_commands() {
        use clap_complete::Shell;
        for shell in [Shell::Bash, Shell::Zsh, Shell::Fish] {
            let mut out = Vec::new();
            completions(shell, &mut out);
            let script = String::from_utf8(out).unwrap();
            assert!(script.len() > 200, "{shell}: {script}");
            // fish names long options without their dashes (`-l tun`).
            for word in [
                "run",
                "status",
                "check-config",
                "tun",
                "echo",
                "socks5-listen",
            ] {
                assert!(script.contains(word), "{shell} completion lacks {word}");
            }
        }
    }

    #[test]
    fn the_man_pages_have_a_title_and_the_run_options() {
        let mut out = Vec::new();
        man_page(None, &mut out).unwrap();
        let top = String::from_utf8(out).unwrap();
        assert!(top.contains("\n.TH mptun 1 "), "{top}");
        assert!(top.contains("mptun\\-run(1)"), "subcommands listed: {top}");
        let mut out = Vec::new();
        man_page(Some("run"), &mut out).unwrap();
        let run = String::from_utf8(out).unwrap();
        assert!(run.contains("\n.TH mptun-run 1 "), "{run}");
        for option in ["\\-\\-tun", "\\-\\-echo", "\\-\\-config", "\\-\\-threads"] {
            assert!(run.contains(option), "mptun-run(1) lacks {option}");
        }
        assert!(man_page(Some("nonesuch"), &mut Vec::new()).is_err());
    }

    #[test]
    fn man_dir_writes_every_page() {
        let dir = std::env::temp_dir().join(format!("mptun-man-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        man(&ManArgs {
            command: None,
            dir: Some(dir.clone()),
        })
        .unwrap();
        for page in ["mptun.1", "mptun-run.1", "mptun-status.1", "mptun-man.1"] {
            assert!(dir.join(page).exists(), "{page}");
        }
        let _ = std::fs::remove_dir_all(&dir);
    }
}
