//! The `switchyard` command: `serve`, `check`, `route-test`, `plugins`, `completions`, `man`.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context as _;
use clap::{Parser, Subcommand, ValueEnum};

use switchyard::app::serve;
use switchyard::cli::route_test;
use switchyard::config::load::{load_file, LoadedConfig};
use switchyard::config::ConfigErrors;
use switchyard::runtime::Runtime;

/// mimalloc, built with `no_thp`: it does not ask for transparent huge pages, whose 2 MiB
/// first-touch zeroing cost 7-14% of the CPU under load on the VMs measured (docs/PERFORMANCE.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// `switchyard --version`: the release and the commit it was built from.
const VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (",
    env!("SWITCHYARD_COMMIT"),
    ")"
);

#[derive(Parser)]
#[command(name = "switchyard", version = VERSION, about = "Self-hosted alert router")]
struct Cli {
    /// Log format on stderr.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text, env = "SWITCHYARD_LOG_FORMAT")]
    log_format: LogFormat,
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

#[derive(clap::Args)]
struct ConfigArg {
    /// Path of routes.yaml.
    #[arg(
        short = 'c',
        long = "config",
        env = "SWITCHYARD_CONFIG",
        default_value = "routes.yaml"
    )]
    config: PathBuf,
}

#[derive(Subcommand)]
enum Command {
    /// Run the server.
    Serve(ConfigArg),
    /// Check routes.yaml: exit 0 with a summary, or 1 with every error as file:line:col.
    Check(ConfigArg),
    /// List the adapter plugins loaded from `plugins.dir`: name, version and file.
    Plugins(ConfigArg),
    /// Run a payload through a source's adapter and the routes, offline.
    RouteTest {
        #[command(flatten)]
        config: ConfigArg,
        /// The source whose adapter reads the payload.
        #[arg(long)]
        source: String,
        /// The endpoints you expect (comma-separated); exit 1 when they differ.
        #[arg(long, value_delimiter = ',')]
        expect: Option<Vec<String>>,
        /// Test at this moment (RFC 3339, e.g. 2026-12-05T18:30:00+01:00) instead of now:
        /// which silences and time intervals hold then.
        #[arg(long)]
        at: Option<String>,
        /// The payload file (JSON).
        payload: PathBuf,
    },
    /// Print a shell completion script (e.g. `switchyard completions bash > /etc/bash_completion.d/switchyard`).
    Completions {
        /// bash, zsh, fish, elvish or powershell.
        shell: clap_complete::Shell,
    },
    /// Print the man page (roff), e.g. `switchyard man > /usr/local/share/man/man1/switchyard.1`.
    Man,
    /// Exit 0 when a switchyard answers 200 on /healthz at this address, else 1 (a container
    /// or service health check). `0.0.0.0` and `[::]` mean this host.
    Health {
        /// The address it listens on.
        #[arg(long, env = "SWITCHYARD_LISTEN", default_value = "127.0.0.1:8080")]
        listen: String,
    },
}

/// Logs go to stderr: at `info` for `serve`, at `warn` for the commands that print an answer
/// (so their output is the answer); `RUST_LOG` overrides both.
fn init_logging(format: LogFormat, default_level: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_level));
    use std::io::IsTerminal as _;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        // Colour only for a person at a terminal; values escaped so none can forge a line.
        LogFormat::Text => builder
            .with_ansi(std::io::stderr().is_terminal())
            .fmt_fields(switchyard::logfmt::text_fields())
            .init(),
        LogFormat::Json => builder.json().init(),
    }
}

/// Loads and builds the config, printing every error; `None` when there were errors.
fn load(path: &Path) -> Option<(LoadedConfig, Runtime)> {
    let print = |errors: ConfigErrors| {
        for e in errors.iter() {
            eprintln!("{e}");
        }
    };
    let loaded = match load_file(path) {
        Ok(c) => c,
        Err(errors) => {
            print(errors);
            return None;
        }
    };
    match Runtime::build(&loaded) {
        Ok(rt) => {
            for w in &rt.warnings {
                eprintln!("warning: {w}");
            }
            Some((loaded, rt))
        }
        Err(errors) => {
            print(errors);
            None
        }
    }
}

fn main() -> anyhow::Result<ExitCode> {
    let cli = Cli::parse();
    let level = match cli.command {
        Command::Serve(_) => "info",
        _ => "warn",
    };
    init_logging(cli.log_format, level);
    match cli.command {
        Command::Completions { shell } => {
            let mut cmd = <Cli as clap::CommandFactory>::command();
            let mut out = Vec::new();
            clap_complete::generate(shell, &mut cmd, "switchyard", &mut out);
            print_all(&out)
        }
        Command::Health { listen } => Ok(match switchyard::cli::health(&listen) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("unhealthy: {e}");
                ExitCode::from(1)
            }
        }),
        Command::Man => {
            let cmd = <Cli as clap::CommandFactory>::command();
            let mut out = Vec::new();
            clap_mangen::Man::new(cmd)
                .render(&mut out)
                .context("rendering the man page")?;
            print_all(&out)
        }
        Command::Check(c) => {
            let Some((loaded, rt)) = load(&c.config) else {
                eprintln!("{}: invalid", c.config.display());
                return Ok(ExitCode::from(1));
            };
            println!(
                "{}: OK: {} sources, {} endpoints, {} routes, {} plugins, default: {}",
                c.config.display(),
                rt.sources.len(),
                rt.endpoints.len(),
                loaded.raw.routes.len(),
                rt.plugins.iter().count(),
                if loaded.raw.default.is_empty() {
                    "(drop)".to_string()
                } else {
                    loaded.raw.default.join(", ")
                }
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Plugins(c) => {
            let Some((loaded, rt)) = load(&c.config) else {
                eprintln!("{}: invalid", c.config.display());
                return Ok(ExitCode::from(1));
            };
            match &loaded.raw.plugins {
                None => println!("no plugins: `plugins.dir` is not set"),
                Some(p) if rt.plugins.iter().next().is_none() => {
                    println!("no plugins in {}", p.dir)
                }
                Some(_) => {
                    println!("{:<24} {:<12} FILE", "NAME", "VERSION");
                    for p in rt.plugins.iter() {
                        println!("{:<24} {:<12} {}", p.name, p.version, p.file.display());
                    }
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::RouteTest {
            config,
            source,
            expect,
            at,
            payload,
        } => {
            let Some((_, rt)) = load(&config.config) else {
                return Ok(ExitCode::from(1));
            };
            let at = match at.as_deref().map(chrono::DateTime::parse_from_rfc3339) {
                None => None,
                Some(Ok(t)) => Some(t.with_timezone(&chrono::Utc)),
                Some(Err(e)) => {
                    eprintln!("--at: not an RFC 3339 time: {e}");
                    return Ok(ExitCode::from(2));
                }
            };
            let body = std::fs::read(&payload)
                .with_context(|| format!("cannot read {}", payload.display()))?;
            match route_test(&rt, at, &source, &body, expect.as_deref()) {
                Ok(report) => {
                    print!("{}", report.text);
                    Ok(if report.expectation_met {
                        ExitCode::SUCCESS
                    } else {
                        ExitCode::from(1)
                    })
                }
                Err(e) => {
                    eprintln!("{}: {e}", payload.display());
                    Ok(ExitCode::from(1))
                }
            }
        }
        Command::Serve(c) => {
            let Some((_, rt)) = load(&c.config) else {
                eprintln!("{}: invalid; not starting", c.config.display());
                return Ok(ExitCode::from(1));
            };
            // One TLS crypto provider for every outbound client, installed before any is made.
            let _ = rustls::crypto::ring::default_provider().install_default();
            run_server(rt)?;
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// Writes `out` to stdout; a reader that stops early (`| head`) is not an error.
fn print_all(out: &[u8]) -> anyhow::Result<ExitCode> {
    use std::io::Write as _;
    match std::io::stdout().write_all(out) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(e).context("writing to stdout"),
        _ => Ok(ExitCode::SUCCESS),
    }
}

#[actix_web::main]
async fn run_server(rt: Runtime) -> anyhow::Result<()> {
    let listen = rt.listen;
    serve(rt)
        .await
        .with_context(|| format!("serving on {listen}"))
}
