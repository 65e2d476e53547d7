//! `natrium`: the broker binary, started with nats-server's command-line flags.

use anyhow::anyhow;
use natrium::cli::{self, Command};
use natrium::options::Options;
use natrium::server::{Server, NATRIUM_VERSION};
use std::io::Write;
use std::process::ExitCode;
use std::sync::Arc;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let command = match cli::parse(args) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("natrium: {e}");
            println!("{}", cli::usage());
            return ExitCode::from(1);
        }
    };
    match command {
        Command::Help => {
            println!("{}", cli::usage());
            ExitCode::SUCCESS
        }
        Command::Version => {
            println!("natrium: v{NATRIUM_VERSION}");
            ExitCode::SUCCESS
        }
        Command::CheckConfig(opts) => {
            let file = opts
                .config_file
                .as_ref()
                .map_or_else(|| "<none>".to_string(), |p| p.display().to_string());
            // A plugin that would stop start-up fails the test too.
            match natrium::path::check_plugins(&opts) {
                Ok(0) => {}
                Ok(n) => eprintln!("natrium: {n} plugin(s) loaded and checked"),
                Err(e) => {
                    eprintln!("natrium: configuration file {file}: {e}");
                    return ExitCode::from(1);
                }
            }
            eprintln!("natrium: configuration file {file} is valid");
            ExitCode::SUCCESS
        }
        Command::Plugin(args) => natrium::tool::plugin_command(args),
        Command::Signal { signal, pid } => match cli::send_signal(signal, pid) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("natrium: {e}");
                ExitCode::from(1)
            }
        },
        // The library's errors include their causes in their text, so an error is printed
        // with `{}`: anyhow's `{:#}` would repeat every cause.
        Command::Run(opts) => match run(opts) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                tracing::error!(target: "natrium::fatal", "{e}");
                let _ = writeln!(std::io::stderr(), "natrium: {e}");
                ExitCode::from(1)
            }
        },
    }
}

fn run(opts: Options) -> anyhow::Result<()> {
    natrium::logging::init(
        opts.logging.debug,
        opts.logging.trace,
        opts.logging.logtime,
        opts.logging.file.as_deref(),
    )?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| anyhow!("starting the runtime: {e}"))?;
    runtime.block_on(async move {
        let server = Server::new(opts)?;
        spawn_signal_handlers(server.clone())?;
        server.run().await?;
        Ok(())
    })
}

/// SIGINT/SIGTERM: graceful shutdown. SIGHUP: reload the configuration file.
/// SIGUSR2: lame-duck mode. SIGUSR1: acknowledged (log reopen).
fn spawn_signal_handlers(server: Arc<Server>) -> anyhow::Result<()> {
    use tokio::signal::unix::{signal, SignalKind};
    let handler = |kind: SignalKind, name: &str| {
        signal(kind).map_err(|e| anyhow!("installing {name} handler: {e}"))
    };
    let mut int = handler(SignalKind::interrupt(), "SIGINT")?;
    let mut term = handler(SignalKind::terminate(), "SIGTERM")?;
    let mut hup = handler(SignalKind::hangup(), "SIGHUP")?;
    let mut usr2 = handler(SignalKind::user_defined2(), "SIGUSR2")?;
    // SIGUSR1 (`--signal reopen`) must not kill the server; log files are opened in append
    // mode, so rotation tools that copy-truncate keep working.
    let mut usr1 = handler(SignalKind::user_defined1(), "SIGUSR1")?;
    tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = int.recv() => stop(&server, "interrupt"),
                _ = term.recv() => stop(&server, "terminated"),
                _ = hup.recv() => reload(&server),
                _ = usr1.recv() => {
                    tracing::info!("Trapped \"user defined signal 1\": log file reopen is not needed (append mode)");
                }
                _ = usr2.recv() => {
                    tokio::spawn(server.clone().lame_duck());
                }
            }
        }
    });
    Ok(())
}

/// Stops the server; nothing here may fail or block, whatever became of stdout and stderr.
fn stop(server: &Server, signal: &str) {
    tracing::info!("Trapped \"{signal}\" signal");
    server.shutdown();
}

fn reload(server: &Server) {
    tracing::info!("Trapped \"hangup\" signal");
    let _ = server.reload_from_sources();
}
