//! What `python`'s own arguments ask for.

use std::path::PathBuf;

/// Options of `python` accepted and ignored, shared with the guest's `wasi:cli/run`.
const IGNORED_OPTIONS: &str = include_str!("../../guest-adapter/src/ignored_options.txt");

/// One way of running Python, as `python ARGS...` would.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Invocation {
    /// `-c CODE [ARGS...]`.
    Code { code: String, argv: Vec<String> },
    /// `SCRIPT [ARGS...]`: a file on the host.
    Script { path: PathBuf, argv: Vec<String> },
    /// `-m MODULE [ARGS...]`.
    Module { name: String, argv: Vec<String> },
    /// `-` or no argument with stdin not a terminal: the program is read from stdin.
    Stdin { argv: Vec<String> },
    /// No argument and stdin a terminal.
    Interactive,
    /// `-V` or `--version`.
    Version,
}

/// Whether `arg` is one of [`IGNORED_OPTIONS`].
fn is_ignored(arg: &str) -> bool {
    IGNORED_OPTIONS
        .lines()
        .map(str::trim)
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
        .any(|option| option == arg)
}

impl Invocation {
    /// Parses python's arguments; `stdin_is_terminal` decides what no argument means.
    pub fn parse(args: &[String], stdin_is_terminal: bool) -> Result<Self, String> {
        let skipped = args.iter().take_while(|a| is_ignored(a)).count();
        let args = &args[skipped..];
        let rest = |from: usize| args.get(from..).unwrap_or_default().to_vec();
        match args.first().map(String::as_str) {
            None if stdin_is_terminal => Ok(Invocation::Interactive),
            None => Ok(Invocation::Stdin {
                argv: vec![String::new()],
            }),
            Some("-V" | "--version") => Ok(Invocation::Version),
            Some("-") => Ok(Invocation::Stdin {
                argv: args.to_vec(),
            }),
            Some(flag @ ("-c" | "-m")) => {
                let value = args
                    .get(1)
                    .ok_or_else(|| format!("argument expected for the {flag} option"))?
                    .clone();
                Ok(if flag == "-c" {
                    Invocation::Code {
                        code: value,
                        argv: [vec!["-c".to_owned()], rest(2)].concat(),
                    }
                } else {
                    Invocation::Module {
                        argv: [vec![value.clone()], rest(2)].concat(),
                        name: value,
                    }
                })
            }
            Some(flag) if flag.starts_with('-') => Err(format!(
                "unsupported Python option {flag} (supported: -c CODE, -m MODULE, SCRIPT, -, -V)"
            )),
            Some(script) => Ok(Invocation::Script {
                path: PathBuf::from(script),
                argv: args.to_vec(),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str], tty: bool) -> Result<Invocation, String> {
        let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        Invocation::parse(&args, tty)
    }

    #[test]
    fn every_form() {
        assert_eq!(
            parse(&["-c", "print(1)", "a"], false),
            Ok(Invocation::Code {
                code: "print(1)".into(),
                argv: vec!["-c".into(), "a".into()]
            })
        );
        assert_eq!(
            parse(&["-m", "json.tool", "x"], false),
            Ok(Invocation::Module {
                name: "json.tool".into(),
                argv: vec!["json.tool".into(), "x".into()]
            })
        );
        assert_eq!(
            parse(&["s.py", "-v"], false),
            Ok(Invocation::Script {
                path: "s.py".into(),
                argv: vec!["s.py".into(), "-v".into()]
            })
        );
        assert_eq!(
            parse(&["-", "x"], true),
            Ok(Invocation::Stdin {
                argv: vec!["-".into(), "x".into()]
            })
        );
        assert_eq!(parse(&[], true), Ok(Invocation::Interactive));
        assert_eq!(
            parse(&[], false),
            Ok(Invocation::Stdin {
                argv: vec![String::new()]
            })
        );
        assert_eq!(parse(&["-V"], false), Ok(Invocation::Version));
    }

    #[test]
    fn ignores_what_the_guest_ignores() {
        assert_eq!(
            parse(&["-u", "-B", "-c", "pass"], false),
            Ok(Invocation::Code {
                code: "pass".into(),
                argv: vec!["-c".into()]
            })
        );
        assert_eq!(parse(&["-I"], true), Ok(Invocation::Interactive));
        // Only before the program: after it they are the program's arguments.
        assert_eq!(
            parse(&["s.py", "-u"], false),
            Ok(Invocation::Script {
                path: "s.py".into(),
                argv: vec!["s.py".into(), "-u".into()]
            })
        );
    }

    #[test]
    fn refuses_what_it_cannot_do() {
        assert!(parse(&["-c"], false).is_err());
        assert!(parse(&["-X", "dev"], false).is_err());
    }
}
