//! `mptun`: a userspace TCP/MPTCP stack on a Linux TUN interface.

use mptun::cli::Command;
use std::ffi::OsString;
use std::process::ExitCode;
use std::sync::Arc;

fn main() -> ExitCode {
    // Bad arguments exit 2 (inside clap, with a one-line error), and so does a
    // bad configuration file (`mptun: FILE:LINE:COL: KEY: ...`).
    let argv: Vec<OsString> = std::env::args_os().collect();
    let cli = mptun::config_merge::parse_args(argv.clone()).unwrap_or_else(|e| e.exit());
    if let Command::CheckConfig(args) = &cli.command {
        return match mptun::config_merge::check_config(&args.file) {
            Ok(toml) => {
                print!("{toml}");
                ExitCode::SUCCESS
            }
            Err(e) => e.exit(),
        };
    }
    // Generated text on stdout, before any logging or runtime.
    match &cli.command {
        Command::Completions(args) => {
            mptun::manuals::completions(args.shell, &mut std::io::stdout());
            return ExitCode::SUCCESS;
        }
        Command::Man(args) => {
            return match mptun::manuals::man(args) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("mptun: {e}");
                    ExitCode::from(1)
                }
            };
        }
        _ => {}
    }
    let level = match &cli.command {
        Command::Run(args) => args.log_level.as_deref(),
        _ => None,
    };
    let log = Arc::new(mptun::logging::init(level));
    // One thread: the driver and the services it wakes share a core without
    // cross-thread wake-ups or lock contention (measured faster on this path).
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("mptun: cannot start the async runtime: {e}");
            return ExitCode::from(1);
        }
    };
    let result = match cli.command {
        Command::Run(args) => {
            let source = mptun::daemon::ReloadSource {
                argv,
                log: Some(log),
            };
            match rt.block_on(mptun::daemon::run(args, source)) {
                Ok(()) => Ok(()),
                Err(e) if e.is_internal() => {
                    // The engine may be inconsistent: exit now, without dropping the
                    // runtime's tasks (which would call into it). The device, its
                    // routes and the control socket are already removed.
                    eprintln!("mptun: {e}");
                    std::process::exit(1);
                }
                Err(e) => Err(e.to_string()),
            }
        }
        Command::Status(args) => rt.block_on(mptun::control_glue::status(args)),
        Command::Addr(args) => rt.block_on(mptun::control_glue::addr(args)),
        Command::Monitor(args) => rt.block_on(mptun::control_glue::monitor(args)),
        Command::CheckConfig(_) | Command::Completions(_) | Command::Man(_) => {
            unreachable!("answered above")
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("mptun: {e}");
            ExitCode::from(1)
        }
    }
}
