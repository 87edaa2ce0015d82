//! `mptun run --config FILE [OPTIONS]` and `mptun check-config FILE`: the
//! file and the command line made into one `RunArgs`.
//!
//! The file's settings become command-line arguments (`--mtu=1400`, one
//! `--addr=...` per `[[address]]`), put in front of the ones actually given,
//! and the whole is parsed by clap and checked by [`RunArgs::validate`] as
//! any command line is. So values, conflicts and cross-checks have one
//! definition. An argument given on the command line keeps the file's out
//! altogether (clap's `ValueSource` tells which were given, so a default
//! never overrides the file), and a list option's values replace the file's
//! list instead of adding to it.
//!
//! The price is in the errors: each file value is first run through its
//! argument's own value parser, where its span is known; what can only go
//! wrong once everything is together (a conflict, a missing companion, a
//! duplicate address) is traced back to the setting that caused it and its
//! line, and `--flags` in the message become file keys.

use crate::cli::{Cli, CliError, Command, RunArgs};
use crate::config_file::{key_of, FileConfig, Setting, KEYS};
use clap::error::{ContextKind, ContextValue, ErrorKind};
use clap::parser::ValueSource;
use clap::{CommandFactory, Parser};
use std::collections::HashSet;
use std::ffi::OsString;
use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};

/// A configuration file that cannot be used: `FILE:LINE:COL: KEY: MESSAGE`,
/// as much of it as is known. Exit status 2, like a bad argument.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub file: PathBuf,
    /// Line and column, from 1.
    pub pos: Option<(usize, usize)>,
    pub key: Option<String>,
    pub msg: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if let Some((line, col)) = self.pos {
            write!(f, ":{line}:{col}")?;
        }
        if let Some(key) = &self.key {
            write!(f, ": {key}")?;
        }
        write!(f, ": {}", self.msg)
    }
}

impl std::error::Error for ConfigError {}

/// Why the arguments cannot be used.
#[derive(Debug)]
pub enum ArgsError {
    /// On the command line: clap prints it (and `--help` is one of these).
    Clap(clap::Error),
    /// In the configuration file.
    Config(ConfigError),
}

impl ArgsError {
    /// Prints the error and exits: 2 for a bad file, clap's own choice otherwise.
    pub fn exit(self) -> ! {
        match self {
            ArgsError::Clap(e) => e.exit(),
            ArgsError::Config(e) => {
                eprintln!("mptun: {e}");
                std::process::exit(2)
            }
        }
    }
}

impl ArgsError {
    /// The exit status [`exit`](Self::exit) ends with.
    pub fn exit_code(&self) -> i32 {
        match self {
            ArgsError::Clap(e) => e.exit_code(),
            ArgsError::Config(_) => 2,
        }
    }
}

impl From<ConfigError> for ArgsError {
    fn from(e: ConfigError) -> Self {
        ArgsError::Config(e)
    }
}

/// Parses and validates the command line, reading `run --config FILE`'s file.
pub fn parse_args<I, T>(args: I) -> Result<Cli, ArgsError>
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    let args: Vec<OsString> = args.into_iter().map(Into::into).collect();
    // A first look, errors ignored, for --config and for which options the
    // command line gives; the real parse comes once the file is in.
    let peek = Cli::command()
        .ignore_errors(true)
        .try_get_matches_from(&args)
        .ok();
    let run = peek.as_ref().and_then(|m| m.subcommand_matches("run"));
    let Some((run, path)) = run.and_then(|r| Some((r, r.get_one::<PathBuf>("config")?))) else {
        return Cli::try_parse_validated_from(args).map_err(ArgsError::Clap);
    };
    let given: HashSet<String> = run
        .ids()
        .filter(|id| run.value_source(id.as_str()) == Some(ValueSource::CommandLine))
        .map(|id| id.as_str().to_owned())
        .collect();
    let file = ConfigFile::load(path)?;
    // `run` is the first argument: the top level has no options of its own
    // but --help and --version, which never get this far.
    let split = (args.iter().skip(1).position(|a| a == "run")).map_or(args.len(), |i| i + 2);
    let build = |skip: Option<&'static str>| {
        let mut argv = args[..split].to_vec();
        argv.extend(file.argv(|id| !given.contains(id) && Some(id) != skip));
        argv.extend_from_slice(&args[split..]);
        argv
    };
    file.parse(&build, &given).map_err(|e| match e {
        // A mistake of the command line alone: clap's message without the
        // file's arguments in its usage line.
        ArgsError::Clap(e) => match Cli::try_parse_from(&args) {
            Err(plain) if plain.kind() == e.kind() => ArgsError::Clap(plain),
            _ => ArgsError::Clap(e),
        },
        other => other,
    })
}

/// `mptun check-config FILE`: the effective configuration as TOML.
pub fn check_config(path: &Path) -> Result<String, ArgsError> {
    let file = ConfigFile::load(path)?;
    let build = |skip: Option<&'static str>| {
        let mut argv: Vec<OsString> = vec!["mptun".into(), "run".into()];
        argv.extend(file.argv(|id| Some(id) != skip));
        argv.extend(["--config".into(), path.as_os_str().to_owned()]);
        argv
    };
    let cli = file.parse(&build, &HashSet::new())?;
    let Command::Run(run) = cli.command else {
        unreachable!("built as a run command")
    };
    render(&run).map_err(|msg| {
        ArgsError::Config(ConfigError {
            file: path.to_owned(),
            pos: None,
            key: None,
            msg,
        })
    })
}

/// The configuration file that says what `run` says (every setting).
pub fn render(run: &RunArgs) -> Result<String, String> {
    let cfg = FileConfig::from_run_args(run)?;
    toml::to_string(&cfg).map_err(|e| e.to_string())
}

/// A configuration file, read and checked value by value.
pub struct ConfigFile {
    path: PathBuf,
    text: String,
    settings: Vec<Setting>,
}

impl ConfigFile {
    /// Reads `path`: TOML syntax, keys and types, then every value through
    /// the parser of the argument it stands for.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        // Whoever can write it controls the daemon (`trusted_file`).
        let text = crate::trusted_file::read(path, crate::trusted_file::Exposure::Readable)
            .map_err(|e| ConfigError {
                file: path.to_owned(),
                pos: None,
                key: None,
                msg: match e {
                    crate::trusted_file::Refused::Io(e) => format!("cannot read it: {e}"),
                    crate::trusted_file::Refused::Untrusted(e) => format!("cannot use it: {e}"),
                },
            })?;
        Self::from_text(path, text)
    }

    /// As [`load`](Self::load), for a file already read.
    pub fn from_text(path: &Path, text: String) -> Result<Self, ConfigError> {
        let mut file = ConfigFile {
            path: path.to_owned(),
            text,
            settings: Vec::new(),
        };
        let cfg: FileConfig = match toml::from_str(&file.text) {
            Ok(cfg) => cfg,
            Err(e) => {
                let span = e.span().unwrap_or(0..0);
                let key = key_path_at(&file.text, span.start);
                return Err(file.error(Some(span), key, toml_message(e.message())));
            }
        };
        file.settings = cfg
            .settings()
            .map_err(|(msg, span)| file.error(Some(span), Some("address.ip".into()), msg))?;
        // clap's value parsers are reachable only through a parse: one per
        // value, alone but for --config (which makes --addr optional). Its
        // value errors come before any check of other arguments.
        let cmd = Cli::command();
        let run = cmd.find_subcommand("run").expect("the run subcommand");
        for s in &file.settings {
            let long = long_name(run, s.id);
            for (value, span) in &s.values {
                let argv = ["mptun", "run", "--config", "-"].map(OsString::from);
                let one = OsString::from(format!("--{long}={value}"));
                let err = Cli::command()
                    .try_get_matches_from(argv.into_iter().chain([one]))
                    .err()
                    .filter(|e| {
                        matches!(
                            e.kind(),
                            ErrorKind::ValueValidation | ErrorKind::InvalidValue
                        )
                    });
                if let Some(e) = err {
                    return Err(file.error(Some(span.clone()), file_key(s.id), clap_reason(&e)));
                }
            }
        }
        Ok(file)
    }

    /// What the file says, as `mptun run` arguments, for the ids `take`s.
    fn argv(&self, take: impl Fn(&'static str) -> bool) -> Vec<OsString> {
        let cmd = Cli::command();
        let run = cmd.find_subcommand("run").expect("the run subcommand");
        let mut out = Vec::new();
        for s in self.settings.iter().filter(|s| take(s.id)) {
            let long = long_name(run, s.id);
            if s.values.is_empty() {
                out.push(format!("--{long}").into());
            }
            // `--x=VALUE`: a value may begin with '-'.
            for (v, _) in &s.values {
                out.push(format!("--{long}={v}").into());
            }
        }
        out
    }

    /// Parses the arguments `build` makes (`build(Some(id))`: without the
    /// file's setting of `id`) and validates them; an error the file caused
    /// names the file, the line and the key.
    fn parse(
        &self,
        build: &dyn Fn(Option<&'static str>) -> Vec<OsString>,
        given: &HashSet<String>,
    ) -> Result<Cli, ArgsError> {
        let from_file = |id: &str| !given.contains(id) && self.setting(id).is_some();
        let cli = match Cli::try_parse_from(build(None)) {
            Ok(cli) => cli,
            Err(e) => return Err(self.clap_error(e, build, &from_file)),
        };
        let Command::Run(run) = &cli.command else {
            return Ok(cli);
        };
        match run.validate() {
            Ok(()) => Ok(cli),
            Err(e) => Err(self.validation_error(e, given)),
        }
    }

    fn setting(&self, id: &str) -> Option<&Setting> {
        self.settings.iter().find(|s| s.id == id)
    }

    fn error(&self, span: Option<Range<usize>>, key: Option<String>, msg: String) -> ConfigError {
        ConfigError {
            file: self.path.clone(),
            pos: span.map(|s| line_col(&self.text, s.start)),
            key,
            msg,
        }
    }

    /// A `validate()` error: at the file's line if the value it blames came
    /// from the file.
    fn validation_error(&self, e: CliError, given: &HashSet<String>) -> ArgsError {
        let msg = to_file_terms(e.message(), |id| !given.contains(id));
        match e.location() {
            Some((id, _)) if given.contains(id) => {
                ArgsError::Clap(Cli::command().error(ErrorKind::ValueValidation, msg))
            }
            Some((id, i)) if self.setting(id).is_some() => {
                let s = self.setting(id).expect("checked");
                let span = s.values.get(i).map_or(s.span.clone(), |v| v.1.clone());
                ArgsError::Config(self.error(Some(span), file_key(id), msg))
            }
            _ => ArgsError::Config(self.error(None, None, msg)),
        }
    }

    /// A clap error of the merged arguments. A conflict or a missing
    /// companion the file is part of is put in the file's terms, at the line
    /// of the setting that needs the other.
    fn clap_error(
        &self,
        e: clap::Error,
        build: &dyn Fn(Option<&'static str>) -> Vec<OsString>,
        from_file: &dyn Fn(&str) -> bool,
    ) -> ArgsError {
        let cmd = Cli::command();
        let run = cmd.find_subcommand("run").expect("the run subcommand");
        let ids: Vec<&'static str> = [ContextKind::InvalidArg, ContextKind::PriorArg]
            .into_iter()
            .filter_map(|k| e.get(k))
            .flat_map(|v| match v {
                ContextValue::String(s) => vec![s.clone()],
                ContextValue::Strings(v) => v.clone(),
                _ => Vec::new(),
            })
            .filter_map(|flag| id_of_flag(run, &flag))
            .collect();
        let name = |id: &str| {
            if from_file(id) {
                file_phrase(id)
            } else {
                format!("--{}", long_name(run, id))
            }
        };
        match e.kind() {
            ErrorKind::ArgumentConflict if ids.len() == 2 => {
                let Some(&blamed) = ids.iter().find(|id| from_file(id)) else {
                    return ArgsError::Clap(e);
                };
                let other = if blamed == ids[0] { ids[1] } else { ids[0] };
                let s = self.setting(blamed).expect("from the file");
                let msg = format!("{} cannot be used with {}", name(blamed), name(other));
                ArgsError::Config(self.error(Some(s.span.clone()), file_key(blamed), msg))
            }
            ErrorKind::MissingRequiredArgument if !ids.is_empty() => {
                // clap names what is missing, not what needs it: leave each
                // of the file's settings out in turn until the error goes.
                let missing = ids[0];
                let still_missing = |argv: Vec<OsString>| {
                    Cli::try_parse_from(argv).is_err_and(|e2| {
                        e2.kind() == ErrorKind::MissingRequiredArgument
                            && e2.get(ContextKind::InvalidArg) == e.get(ContextKind::InvalidArg)
                    })
                };
                let needs = self
                    .settings
                    .iter()
                    .filter(|s| from_file(s.id))
                    .find(|s| !still_missing(build(Some(s.id))));
                match needs {
                    Some(s) => {
                        // Missing, so not on the command line: the file is where it goes.
                        let msg = format!("{} needs {}", name(s.id), file_phrase(missing));
                        ArgsError::Config(self.error(Some(s.span.clone()), file_key(s.id), msg))
                    }
                    None => ArgsError::Clap(e),
                }
            }
            _ => ArgsError::Clap(e),
        }
    }
}

fn long_name(run: &clap::Command, id: &str) -> String {
    run.get_arguments()
        .find(|a| a.get_id() == id)
        .and_then(|a| a.get_long())
        .expect("every key names a long option")
        .to_owned()
}

/// The id of the argument a clap message shows as `--long <VALUE>`.
fn id_of_flag(run: &clap::Command, shown: &str) -> Option<&'static str> {
    let long = shown.strip_prefix("--")?.split([' ', '=']).next()?;
    let arg = run.get_arguments().find(|a| a.get_long() == Some(long))?;
    KEYS.iter()
        .find(|k| k.id == arg.get_id().as_str())
        .map(|k| k.id)
}

fn file_key(id: &str) -> Option<String> {
    key_of(id).map(|k| k.key.to_owned())
}

/// How a message names an argument set in the file: its key, and for a
/// switch the value that turns it on (`mptcp.enabled = false`).
fn file_phrase(id: &str) -> String {
    let Some(k) = key_of(id) else {
        return id.to_owned();
    };
    let cmd = Cli::command();
    let run = cmd.find_subcommand("run").expect("the run subcommand");
    let switch = run
        .get_arguments()
        .find(|a| a.get_id() == id)
        .is_some_and(|a| !a.get_action().takes_values());
    match (switch, k.negated) {
        (true, true) => format!("{} = false", k.key),
        (true, false) => format!("{} = true", k.key),
        _ => k.key.to_owned(),
    }
}

/// `msg` with each `--option` whose id `in_file` accepts named by its file
/// key instead.
fn to_file_terms(msg: &str, in_file: impl Fn(&str) -> bool) -> String {
    let cmd = Cli::command();
    let run = cmd.find_subcommand("run").expect("the run subcommand");
    let mut out = String::with_capacity(msg.len());
    let mut rest = msg;
    while let Some(at) = rest.find("--") {
        out.push_str(&rest[..at]);
        let word_end = rest[at + 2..]
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '-'))
            .map_or(rest.len(), |e| at + 2 + e);
        let flag = &rest[at..word_end];
        match id_of_flag(run, flag).filter(|id| in_file(id)) {
            Some(id) => out.push_str(&file_phrase(id)),
            None => out.push_str(flag),
        }
        rest = &rest[word_end..];
    }
    out.push_str(rest);
    out
}

/// The reason of a value parser's error, without clap's framing.
fn clap_reason(e: &clap::Error) -> String {
    if let Some(src) = std::error::Error::source(e) {
        return src.to_string();
    }
    let text = e.to_string();
    let first = text.lines().next().unwrap_or_default();
    first.strip_prefix("error: ").unwrap_or(first).to_owned()
}

/// serde's words for Rust types, in TOML's.
fn toml_message(msg: &str) -> String {
    msg.trim()
        .replace("expected i64", "expected an integer")
        .replace("expected u64", "expected a non-negative integer")
        .replace("a sequence", "an array")
}

fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let col = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, col)
}

/// The dotted key (array indices left out: the line says which) whose key or
/// value holds byte `offset`. Tables are searched whole, not by their spans:
/// a `[table]`'s span is its header alone.
fn key_path_at(text: &str, offset: usize) -> Option<String> {
    use toml::de::{DeTable, DeValue};
    fn in_table(t: &DeTable<'_>, at: usize, path: &mut Vec<String>) -> bool {
        for (k, v) in t {
            path.push(k.get_ref().to_string());
            if k.span().contains(&at) || in_value(v.get_ref(), at, path) {
                return true;
            }
            if v.span().contains(&at) {
                return true;
            }
            path.pop();
        }
        false
    }
    fn in_value(v: &DeValue<'_>, at: usize, path: &mut Vec<String>) -> bool {
        match v {
            DeValue::Table(t) => in_table(t, at, path),
            DeValue::Array(a) => a.iter().any(|e| in_value(e.get_ref(), at, path)),
            _ => false,
        }
    }
    let root = DeTable::parse(text).ok()?;
    let mut path = Vec::new();
    in_table(root.get_ref(), offset, &mut path).then(|| path.join("."))
}

#[cfg(test)]
#[path = "config_tests.rs"]
mod tests;
