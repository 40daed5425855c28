//! The command line: pyeval's own options, the limits and grants they ask for, and
//! python's arguments (read by `invocation`).

use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use clap::{ArgAction, Parser};
use pyeval::{Evaluator, EvaluatorBuilder, FileLimits, Fuel, Grants, InputFile, Limits, Mount};

/// Run Python in a WebAssembly sandbox. Arguments after the options are Python's own,
/// as `python` takes them: `-c CODE`, `SCRIPT ARGS...`, `-m MODULE`, `-` (stdin).
#[derive(Parser, Debug)]
#[command(name = "pyeval", version, disable_version_flag = true)]
pub struct Cli {
    /// Run a stock CPython WASI build (a core module with `_start`, such as
    /// target/cpython/python.wasm) or a component exporting wasi:cli/run, instead of the
    /// evaluator.
    #[arg(long, value_name = "FILE.wasm", conflicts_with_all = ["component", "tools_config", "allow_host"])]
    pub python: Option<PathBuf>,

    #[command(flatten)]
    pub component: ComponentArg,

    /// Standard library of that build, mounted read-only at /usr/local/lib/python3.13
    /// [default: the `stdlib` directory beside FILE.wasm, else that of `just build-cpython`].
    #[arg(long, value_name = "DIR", requires = "python")]
    pub stdlib: Option<PathBuf>,

    #[command(flatten)]
    pub limits: LimitArgs,

    /// Print the outcome as one JSON object (evaluator only).
    #[arg(long, conflicts_with = "python")]
    pub json: bool,

    /// After the run, print fuel remaining, initial fuel and percent consumed to stderr.
    #[arg(long)]
    pub stats: bool,

    /// Make a host directory visible: HOST[:GUEST][:ro|:rw], read-only by default. Repeatable.
    #[arg(long = "mount", value_name = "HOST[:GUEST][:ro|:rw]")]
    mounts: Vec<Mount>,

    /// Set an environment variable in the guest (it sees no others). Repeatable.
    #[arg(long = "env", value_name = "KEY=VALUE", value_parser = parse_env)]
    env: Vec<(String, String)>,

    /// Copy a host file into the code's working directory, as NAME (a relative path;
    /// default: the file's own name). Repeatable.
    #[arg(long = "file", value_name = "HOST[:NAME]", conflicts_with = "python")]
    files: Vec<FileArg>,

    /// Write the files the code creates or changes in its working directory under DIR
    /// (made if missing), at their paths.
    #[arg(long, value_name = "DIR", conflicts_with = "python")]
    pub output_dir: Option<PathBuf>,

    /// Run in the session kept in FILE: its variables, imports and files from earlier runs
    /// (none if FILE does not exist yet); written back after the run unless a limit
    /// stopped it. It holds the interpreter's memory: keep it as private as the data the
    /// code handles.
    #[arg(long, value_name = "FILE", conflicts_with = "python")]
    pub session: Option<PathBuf>,

    #[command(flatten)]
    pub tools: ToolsArg,

    #[command(flatten)]
    pub network: NetworkArgs,

    /// Print version.
    #[arg(long, action = ArgAction::Version)]
    version: Option<bool>,

    /// Python's arguments.
    #[arg(
        trailing_var_arg = true,
        allow_hyphen_values = true,
        value_name = "PYTHON ARGS"
    )]
    pub args: Vec<String>,
}

/// Tools of other MCP servers granted to evaluated code (shared by every subcommand that
/// evaluates).
#[derive(clap::Args, Debug, Clone, Default)]
pub struct ToolsArg {
    /// An MCP client's configuration ({"mcpServers": {NAME: {"command": ..., "args": [...],
    /// "env": {...}}}}): each server is started, and its tools are callable from the code
    /// as NAME.TOOL(...).
    #[arg(long, value_name = "FILE")]
    pub tools_config: Option<PathBuf>,
}

impl ToolsArg {
    /// Starts the configured servers on `runtime` (which then drives their connections)
    /// and returns them; none without a configuration.
    pub fn connect(
        &self,
        runtime: &tokio::runtime::Runtime,
    ) -> Result<Option<pyeval_server::mcp_tools::McpTools>> {
        self.tools_config
            .as_deref()
            .map(|path| runtime.block_on(pyeval_server::mcp_tools::McpTools::connect(path)))
            .transpose()
    }
}

/// What evaluated code may reach on the network (shared by every subcommand that
/// evaluates): nothing without `--allow-host`.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct NetworkArgs {
    /// Let the code send HTTP(S) requests to these hosts: [METHOD,...] HOST[:PORT], where
    /// HOST is a name, `*.DOMAIN` (its subdomains), an address or `*` (any host), and PORT
    /// a number or `*` (default: 80 and 443). E.g. `api.github.com`, `GET,HEAD
    /// *.example.com:8443`. Loopback, private, link-local and other special addresses stay
    /// refused, also behind a name, unless --allow-address names them. Repeatable.
    #[arg(long = "allow-host", value_name = "RULE")]
    pub allow_host: Vec<pyeval::network::HostRule>,

    /// Let requests reach these special addresses (loopback, private, ...): ADDRESS or
    /// ADDRESS/PREFIX, e.g. 127.0.0.1 or 10.0.0.0/8. Repeatable.
    #[arg(long = "allow-address", value_name = "RANGE", requires = "allow_host")]
    pub allow_address: Vec<pyeval::network::AddressRange>,

    /// A secret the code uses without seeing it: its environment variable NAME holds a
    /// placeholder, which the host replaces by VALUE in the headers of requests to HOSTS
    /// (rules as --allow-host's, comma-separated). Without =VALUE, the value is the host's
    /// environment variable NAME. Repeatable.
    #[arg(
        long = "secret",
        value_name = "NAME[=VALUE]@HOSTS",
        requires = "allow_host"
    )]
    pub secrets: Vec<String>,

    /// Trust the CA certificates in this PEM file for HTTPS, besides the public roots.
    #[arg(long = "ca-cert", value_name = "FILE", requires = "allow_host")]
    pub ca_cert: Option<PathBuf>,
}

impl NetworkArgs {
    /// The network grant these options ask for; none without `--allow-host`.
    pub fn network(&self) -> Result<Option<pyeval::network::Network>> {
        if self.allow_host.is_empty() {
            return Ok(None);
        }
        let mut network = pyeval::network::Network::new();
        network.hosts = self.allow_host.clone();
        network.addresses = self.allow_address.clone();
        for text in &self.secrets {
            let text = match text.split_once('=') {
                Some(_) => text.clone(),
                None => {
                    let (name, hosts) = text
                        .rsplit_once('@')
                        .with_context(|| format!("--secret {text}: expected NAME[=VALUE]@HOSTS"))?;
                    let value = std::env::var(name).with_context(|| {
                        format!("--secret {text}: no environment variable {name} to take the value from")
                    })?;
                    format!("{name}={value}@{hosts}")
                }
            };
            network =
                network.with_secret(text.parse().map_err(|e| anyhow::anyhow!("--secret: {e}"))?);
        }
        if let Some(path) = &self.ca_cert {
            let pem = std::fs::read(path)
                .with_context(|| format!("--ca-cert: cannot read {}", path.display()))?;
            network = network
                .trust_pem(&pem)
                .with_context(|| format!("--ca-cert {}", path.display()))?;
        }
        Ok(Some(network))
    }
}

/// Which evaluator component to run (shared by every subcommand that evaluates).
#[derive(clap::Args, Debug, Clone, Default)]
pub struct ComponentArg {
    /// Run an evaluator component built with packages (`just build-component-with`, such
    /// as target/pyeval-sci.wasm) instead of the embedded one, which has the stdlib only.
    #[arg(long, value_name = "FILE.wasm")]
    pub component: Option<PathBuf>,
}

impl ComponentArg {
    /// A builder of the evaluator this option asks for.
    pub fn builder(&self) -> EvaluatorBuilder {
        match &self.component {
            Some(path) => Evaluator::builder().component_file(path),
            None => Evaluator::builder(),
        }
    }
}

/// The evaluator's memory budget, for the servers (`serve`, `mcp`).
#[derive(clap::Args, Debug)]
pub struct BudgetArg {
    /// MiB of memory all instances together may grow by; -1 for no bound [default: three
    /// quarters of the memory this process may use: the machine's, or its cgroup's limit].
    #[arg(long, value_name = "MIB", allow_negative_numbers = true)]
    memory_budget: Option<i64>,
}

impl BudgetArg {
    /// `builder` with this budget.
    pub fn apply(&self, builder: EvaluatorBuilder) -> anyhow::Result<EvaluatorBuilder> {
        Ok(match self.memory_budget {
            None => builder,
            Some(-1) => builder.memory_budget(None),
            Some(mib @ 1..) => builder.memory_budget(Some(
                usize::try_from(mib)
                    .ok()
                    .and_then(|m| m.checked_mul(1 << 20))
                    .ok_or_else(|| {
                        anyhow::anyhow!(
                            "--memory-budget {mib} MiB is more than this machine can address"
                        )
                    })?,
            )),
            Some(other) => anyhow::bail!(
                "--memory-budget must be a number of MiB above 0, or -1 for no bound (got {other})"
            ),
        })
    }
}

/// `--file HOST[:NAME]`: a host file, and its path in the working directory.
#[derive(Debug, Clone)]
pub struct FileArg {
    host: PathBuf,
    name: String,
}

impl std::str::FromStr for FileArg {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let (host, name) = match s.rsplit_once(':') {
            Some((host, name)) if !host.is_empty() => (PathBuf::from(host), name.to_owned()),
            _ => {
                let host = PathBuf::from(s);
                let name = host
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .ok_or_else(|| format!("{s:?} names no file"))?;
                (host, name)
            }
        };
        pyeval::check_file_path(&name)?;
        Ok(FileArg { host, name })
    }
}

impl FileArg {
    /// The file's contents under its name.
    fn read(&self) -> Result<InputFile> {
        let data = std::fs::read(&self.host)
            .with_context(|| format!("--file: cannot read {}", self.host.display()))?;
        Ok(InputFile::new(self.name.clone(), data))
    }
}

fn parse_env(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.is_empty() => Ok((k.to_owned(), v.to_owned())),
        _ => Err(format!("expected KEY=VALUE, got {s:?}")),
    }
}

impl Cli {
    /// The limits the options ask for; out-of-range values are refused.
    pub fn limits(&self) -> Result<Limits> {
        self.limits.limits()
    }

    /// The mounts, environment and files the options grant (the files read now).
    pub fn grants(&self) -> Result<Grants> {
        let mut grants = Grants::new();
        grants.mounts = self.mounts.clone();
        grants.env = self.env.clone();
        grants.network = self.network.network()?;
        for file in &self.files {
            grants.files.push(file.read()?);
        }
        Ok(grants)
    }
}

/// The limits of each run (for `serve` and `mcp`: of each request, and the most a request
/// may ask for).
#[derive(clap::Args, Debug)]
pub struct LimitArgs {
    /// Fuel budget (roughly, wasm instructions); underscores allowed; -1 for no limit.
    #[arg(
        long,
        env = "INITIAL_FUEL",
        default_value = "1_000_000_000",
        value_name = "N",
        allow_negative_numbers = true
    )]
    pub fuel: Fuel,

    /// Cap on the interpreter's memory, in MiB.
    #[arg(long, value_name = "MIB", default_value_t = (pyeval::DEFAULT_MEMORY_BYTES >> 20) as u64)]
    memory: u64,

    /// Wall-clock limit of a run, in seconds, including time blocked in host calls.
    #[arg(long, value_name = "SECONDS", default_value_t = pyeval::DEFAULT_WALL_TIME.as_secs_f64())]
    timeout: f64,

    /// Bytes of stdout and of stderr kept (evaluator only); the rest is dropped.
    #[arg(long, value_name = "BYTES", default_value_t = pyeval::DEFAULT_OUTPUT_BYTES)]
    max_output: u32,

    /// Files given to the code, and files returned from it, at most (evaluator only).
    #[arg(long, value_name = "N", default_value_t = pyeval::DEFAULT_MAX_FILES)]
    max_files: u32,

    /// Bytes of the files given, and of those returned, in all (evaluator only).
    #[arg(long, value_name = "BYTES", default_value_t = pyeval::DEFAULT_FILE_BYTES)]
    max_file_bytes: u64,
}

impl LimitArgs {
    /// The limits the options ask for; out-of-range values are refused.
    pub fn limits(&self) -> Result<Limits> {
        let wall_time = pyeval::wall_time_from_secs(self.timeout)
            .map_err(|e| anyhow::anyhow!("--timeout {e}"))?;
        let Some(memory_bytes) = self
            .memory
            .checked_mul(1 << 20)
            .and_then(|b| usize::try_from(b).ok())
        else {
            bail!(
                "--memory {} MiB is more than this machine can address",
                self.memory
            );
        };
        Ok(Limits::default()
            .with_fuel(self.fuel)
            .with_memory_bytes(memory_bytes)
            .with_wall_time(wall_time)
            .with_output_bytes(self.max_output)
            .with_file_limits(FileLimits::new(self.max_files, self.max_file_bytes)))
    }
}
