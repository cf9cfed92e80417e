//! `switchyard`: run the gateway all in one process, or one service per process.

use std::{io::Write, path::PathBuf};

use anyhow::Context;
use clap::{CommandFactory, Parser, Subcommand};
use switchyard::{
    SwitchyardConfig,
    admin::Listeners,
    role::{Role, listen_address, run_role},
    serve::run_all_in_one,
};
use switchyard_common::{config::process_environment, shutdown::shutdown_signal, telemetry};
use tokio_util::sync::CancellationToken;

/// Switchyard, an LLM API gateway.
#[derive(Parser)]
#[command(version, about)]
struct Cli {
    /// Config file (YAML). `SWITCHYARD__SECTION__FIELD` variables override it.
    #[arg(long, short, global = true, default_value = "config/switchyard.yaml")]
    config: PathBuf,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run every service in this process (the default way on one machine).
    Serve,
    /// Run one service as its own process.
    Run {
        /// The service: edge, router, adapter, control-plane, ledger or cache.
        role: Role,
    },
    /// Validate the config file and exit.
    CheckConfig,
    /// Print the config file's JSON Schema.
    ConfigSchema,
    /// Manage a running gateway through its admin API: routes, keys,
    /// budgets, the audit log; apply and export config files.
    Ctl(Box<switchyard::ctl::CtlArgs>),
}

fn main() -> anyhow::Result<std::process::ExitCode> {
    let cli = Cli::parse();
    match cli.command {
        Command::ConfigSchema => {
            std::io::stdout()
                .write_all(switchyard::config::config_schema().as_bytes())
                .context("writing to stdout")?;
            return Ok(std::process::ExitCode::SUCCESS);
        }
        Command::Ctl(args) => {
            return Ok(std::process::ExitCode::from(switchyard::ctl::run(
                *args,
                Cli::command,
            )));
        }
        _ => {}
    }
    let environment = process_environment();
    let config = SwitchyardConfig::load(&cli.config, &environment)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let service_name = match &cli.command {
        Command::Run { role } => format!("switchyard-{role}"),
        _ => "switchyard".to_owned(),
    };
    // Inside the runtime: the span exporter's channel lives on it. Dropped
    // before the runtime (declared after it), so queued spans are sent and
    // queued log lines flushed on exit.
    let _telemetry = {
        let _runtime = runtime.enter();
        telemetry::init(&config.telemetry, &service_name)?
    };
    runtime.block_on(async move {
        let shutdown = CancellationToken::new();
        let on_signal = shutdown.clone();
        // Detached: lives for the whole process; cancels the token on SIGINT/SIGTERM.
        switchyard_common::task::spawn_detached(
            "listens for SIGINT/SIGTERM for the whole process",
            async move {
                shutdown_signal().await;
                on_signal.cancel();
            },
        );
        match cli.command {
            Command::CheckConfig => {
                writeln!(std::io::stdout(), "config ok").context("writing to stdout")?;
                Ok(())
            }
            Command::Serve => {
                let listeners = bind("serve", config.edge.listen, config.admin.listen).await?;
                run_all_in_one(config, environment, Some(cli.config), listeners, shutdown).await
            }
            Command::Run { role } => {
                let listeners = bind(
                    &role.to_string(),
                    listen_address(role, &config),
                    config.admin.of_role(role),
                )
                .await?;
                run_role(
                    role,
                    config,
                    environment,
                    Some(cli.config),
                    listeners,
                    shutdown,
                )
                .await
            }
            Command::ConfigSchema | Command::Ctl(_) => Ok(()),
        }
    })?;
    Ok(std::process::ExitCode::SUCCESS)
}

/// Binds the service and admin addresses and announces both bound
/// addresses on stdout as one JSON line, so supervisors and tests can use
/// port 0.
async fn bind(
    role: &str,
    address: std::net::SocketAddr,
    admin: std::net::SocketAddr,
) -> anyhow::Result<Listeners> {
    let listeners = Listeners::bind(address, admin).await?;
    let bound = listeners.service.local_addr()?;
    let admin_bound = listeners.admin.local_addr()?;
    let mut stdout = std::io::stdout().lock();
    writeln!(
        stdout,
        r#"{{"event":"listening","role":"{role}","address":"{bound}","admin_address":"{admin_bound}"}}"#
    )
    .and_then(|()| stdout.flush())
    .context("writing to stdout")?;
    Ok(listeners)
}
