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
    /// Run garbage collection now, online (servers may keep serving), and print what it freed.
    /// Refused while another GC is pending or running anywhere in the cluster.
    Gc(GcArgs),
}

#[derive(clap::Args)]
struct GcArgs {
    /// Report what would be deleted; delete nothing.
    #[arg(long)]
    dry_run: bool,
    /// Also delete artifacts without tags (not index children or signatures/SBOMs).
    #[arg(long)]
    delete_untagged: bool,
    /// Override `gc.window`: blobs used more recently than this stay (e.g. "2h", "0s").
    #[arg(long, value_parser = humantime::parse_duration)]
    window: Option<std::time::Duration>,
    /// Storage deletions in flight (default `gc.workers`).
    #[arg(long)]
    workers: Option<u32>,
    /// Print the report as JSON.
    #[arg(long)]
    json: bool,
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
            Command::Gc(args) => gc(config, args).await,
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

/// `berth gc`: the same run as a GC job, recorded in the history, with a progress bar on a
/// terminal.
async fn gc(mut config: Config, args: GcArgs) -> anyhow::Result<()> {
    use server::jobs;
    use std::io::IsTerminal;
    if let Some(w) = args.window {
        config.gc.window = w;
    }
    let db = server::db::Db::connect(&config.database).await?;
    db.migrate().await?;
    let storage = server::storage::from_config(&config.storage)?;
    let params = server::gc::GcParams {
        dry_run: args.dry_run,
        delete_untagged: args.delete_untagged,
        workers: args.workers,
    };
    let params_json = serde_json::to_value(&params)?;
    let worker = jobs::worker_name();
    let user = std::env::var("USER").unwrap_or_else(|_| "cli".into());
    let new = jobs::NewJob {
        kind: "gc",
        job_kind: "CLI",
        parameters: &params_json,
        unique_key: Some("gc"),
        created_by: &user,
    };
    let Some(id) = jobs::start_inline(&db, &new, &worker).await? else {
        anyhow::bail!("a garbage collection is already pending or running (GET /api/v2.0/system/gc)");
    };
    let ctx = jobs::JobCtx::new(id, &worker, "CLI", &params_json.to_string());
    let env = server::gc::Env { db: db.clone(), storage, config: config.gc.clone() };
    let bar = if std::io::stderr().is_terminal() {
        let bar = indicatif::ProgressBar::new(0);
        bar.set_style(
            indicatif::ProgressStyle::with_template("{spinner} {msg:>9} [{bar:40}] {pos}/{len} {elapsed}")
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
                .progress_chars("=> "),
        );
        Some(bar)
    } else {
        None
    };
    let ticker = bar.clone().map(|bar| {
        let ctx = ctx.clone();
        tokio::spawn(async move {
            loop {
                let p = ctx.progress();
                bar.set_message(p["phase"].as_str().unwrap_or("").to_string());
                bar.set_length(p["total"].as_u64().unwrap_or(0));
                bar.set_position(p["done"].as_u64().unwrap_or(0));
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            }
        })
    });
    let outcome =
        jobs::run_claimed(&db, ctx, |ctx| async move { server::gc::run_with(&env, ctx).await }).await;
    if let Some(t) = ticker {
        t.abort();
    }
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    let r = &outcome.result;
    if args.json {
        println!(
            "{}",
            serde_json::json!({ "id": id, "status": outcome.status, "report": r, "error": outcome.error })
        );
    } else {
        let verb = if params.dry_run { "would free" } else { "freed" };
        println!(
            "gc {id} {}: {verb} {} bytes ({} blobs, {} manifests, {} untagged artifacts, {} upload sessions) in {} ms",
            outcome.status, r["bytes"], r["blobs"], r["manifests"], r["artifacts"], r["uploads"], r["duration_ms"]
        );
        println!("log: GET /api/v2.0/system/gc/{id}/log");
    }
    match outcome.status {
        "success" => Ok(()),
        "stopped" => anyhow::bail!("garbage collection {id} was stopped"),
        _ => anyhow::bail!("garbage collection {id} failed: {}", outcome.error),
    }
}
