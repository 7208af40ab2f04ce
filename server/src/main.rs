//! `berth`: the server binary.
//!
//! `berth [--config FILE] [serve]` runs the service; `berth migrate` applies database
//! migrations and exits. Exit code 2 means bad configuration (one line names the key).

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use server::config::Config;
use server::state::AppState;

#[derive(Parser)]
#[command(name = "berth", version, about = "Enterprise container registry")]
struct Cli {
    /// Configuration file (default: ./berth.toml when it exists). Every key can also be set
    /// with BERTH_* environment variables; see berth.example.toml.
    #[arg(long, short, global = true, env = "BERTH_CONFIG")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Run the server (the default).
    Serve,
    /// Apply database migrations and exit.
    Migrate,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let config = match Config::load(cli.config.as_deref()) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    server::telemetry::init(&config.log);
    let rt = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = rt.block_on(async move {
        match cli.command.unwrap_or(Command::Serve) {
            Command::Migrate => {
                let db = server::db::Db::connect(&config.database).await?;
                db.migrate().await?;
                tracing::info!(database = db.kind.name(), "migrations applied");
                Ok(())
            }
            Command::Serve => {
                let external = config.external_base().to_string();
                let initial_password = config.admin.initial_password.clone();
                let state = AppState::build(config).await?;
                let initial = server::accounts::password_is(&state.db, "admin", &initial_password).await?;
                server::serve::serve(state, move |addr| {
                    tracing::info!(%addr, "listening");
                    println!("berth is running at {external}  (listening on {addr})");
                    if initial {
                        println!("portal login: admin / {initial_password}  (the initial password; change it after the first login)");
                    } else {
                        println!("portal login: admin  (the initial password has already been changed)");
                    }
                })
                .await
            }
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e:#}");
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
