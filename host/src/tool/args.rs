//! The flags of `natrium plugin …`: GNU style (`--flag value`, `--flag=value`), repeatable
//! where a list makes sense, positionals anywhere. Each subcommand declares its flags; an
//! unknown one is an error that names it.

use std::time::Duration;

use super::ToolError;

/// A flag a subcommand accepts.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Flag {
    pub name: &'static str,
    /// Takes a value (otherwise it is a switch).
    pub value: bool,
}

pub(crate) const fn valued(name: &'static str) -> Flag {
    Flag { name, value: true }
}

pub(crate) const fn switch(name: &'static str) -> Flag {
    Flag { name, value: false }
}

/// The parsed command line of one subcommand.
#[derive(Debug, Default)]
pub(crate) struct Args {
    pub positional: Vec<String>,
    given: Vec<(&'static str, String)>,
}

/// Parses `args` against `flags`; `--help`/`-h` is always accepted.
pub(crate) fn parse(args: &[String], flags: &[Flag]) -> Result<Args, ToolError> {
    let mut out = Args::default();
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        let Some(body) = arg.strip_prefix("--").or_else(|| arg.strip_prefix('-')) else {
            out.positional.push(arg.clone());
            continue;
        };
        if arg == "-" {
            out.positional.push(arg.clone());
            continue;
        }
        if body.is_empty() {
            // `--`: everything after it is positional.
            out.positional.extend(it.by_ref().cloned());
            break;
        }
        let (name, inline) = match body.split_once('=') {
            Some((n, v)) => (n, Some(v.to_string())),
            None => (body, None),
        };
        if name == "help" || name == "h" {
            out.given.push(("help", String::new()));
            continue;
        }
        let flag = flags
            .iter()
            .find(|f| f.name == name)
            .ok_or_else(|| ToolError::Usage(format!("unknown flag --{name}")))?;
        let value = match (flag.value, inline) {
            (true, Some(v)) => v,
            (true, None) => it
                .next()
                .cloned()
                .ok_or_else(|| ToolError::Usage(format!("--{name} needs a value")))?,
            (false, None) => String::new(),
            (false, Some(_)) => {
                return Err(ToolError::Usage(format!("--{name} takes no value")));
            }
        };
        out.given.push((flag.name, value));
    }
    Ok(out)
}

impl Args {
    pub fn has(&self, name: &str) -> bool {
        self.given.iter().any(|(n, _)| *n == name)
    }

    /// The last value given for `name`.
    pub fn value(&self, name: &str) -> Option<&str> {
        self.given
            .iter()
            .rev()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.as_str())
    }

    /// Every value given for `name`, in order.
    pub fn values(&self, name: &str) -> Vec<&str> {
        self.given
            .iter()
            .filter(|(n, _)| *n == name)
            .map(|(_, v)| v.as_str())
            .collect()
    }

    /// Whether any of `names` was given.
    pub fn any(&self, names: &[&str]) -> bool {
        names.iter().any(|n| self.has(n))
    }

    /// `--name DURATION` (Go syntax: `5ms`, `1.5s`).
    pub fn duration(&self, name: &str) -> Result<Option<Duration>, ToolError> {
        self.value(name)
            .map(|v| {
                crate::config::parse_duration(v)
                    .map_err(|e| ToolError::Usage(format!("--{name}: {e}")))
            })
            .transpose()
    }

    /// `--name SIZE` with nats-server's suffixes (`64MB`, `512k`).
    pub fn size(&self, name: &str) -> Result<Option<usize>, ToolError> {
        let Some(v) = self.value(name) else {
            return Ok(None);
        };
        let bad = || ToolError::Usage(format!("--{name}: {v:?} is not a size (e.g. 64MB)"));
        let split = v.find(|c: char| !c.is_ascii_digit()).unwrap_or(v.len());
        let (digits, suffix) = v.split_at(split);
        let n: i64 = digits.parse().map_err(|_| bad())?;
        let mult = crate::config::size_multiplier(suffix).ok_or_else(bad)?;
        n.checked_mul(mult)
            .and_then(|b| usize::try_from(b).ok())
            .map(Some)
            .ok_or_else(bad)
    }

    /// `--name N`.
    pub fn number(&self, name: &str) -> Result<Option<u64>, ToolError> {
        self.value(name)
            .map(|v| {
                v.parse()
                    .map_err(|_| ToolError::Usage(format!("--{name}: {v:?} is not a number")))
            })
            .transpose()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FLAGS: &[Flag] = &[valued("world"), valued("header"), switch("json")];

    fn args(line: &str) -> Vec<String> {
        line.split_whitespace().map(String::from).collect()
    }

    #[test]
    fn values_positionals_and_switches() -> Result<(), ToolError> {
        let a = parse(
            &args("a.wasm --world=mapper --header K:V --json --header X:Y -- --not-a-flag"),
            FLAGS,
        )?;
        assert_eq!(a.positional, ["a.wasm", "--not-a-flag"]);
        assert_eq!(a.value("world"), Some("mapper"));
        assert_eq!(a.values("header"), ["K:V", "X:Y"]);
        assert!(a.has("json") && !a.has("help"));
        assert!(parse(&args("-h"), FLAGS)?.has("help"));
        Ok(())
    }

    #[test]
    fn mistakes_are_named() {
        let err = |line: &str| match parse(&args(line), FLAGS) {
            Err(e) => e.to_string(),
            Ok(a) => format!("parsed: {a:?}"),
        };
        assert_eq!(err("--wrold mapper"), "unknown flag --wrold");
        assert_eq!(err("--world"), "--world needs a value");
        assert_eq!(err("--json=yes"), "--json takes no value");
    }

    #[test]
    fn sizes_and_durations() -> Result<(), ToolError> {
        let flags = [valued("memory"), valued("deadline")];
        let a = parse(&args("--memory 64MB --deadline 1.5ms"), &flags)?;
        assert_eq!(a.size("memory")?, Some(64 << 20));
        assert_eq!(a.duration("deadline")?, Some(Duration::from_micros(1500)));
        let bad = parse(&args("--memory lots"), &flags)?;
        assert!(bad.size("memory").is_err());
        Ok(())
    }
}
