//! `ferryd`: ferry's node agent. See the library docs (`ferryd::`) for the
//! pieces; this file only parses the command line, sets up logging and the
//! runtime, and dispatches.

use anyhow::Context;
use clap::Parser;
use ferryd::cli::{Cli, Command};

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    ferryd::logging::init();
    match run(cli) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<()> {
    let command = cli.subcommand();
    let opts = cli.opts;
    if command == Command::Uninstall {
        let removed = ferryd::uninstall::run(&opts).context("uninstall")?;
        if removed.nothing() {
            println!("nothing to remove");
        } else {
            println!("removed: {removed:?}");
        }
        return Ok(());
    }
    ferryd::kube_client::install_crypto_provider();
    // One thread runs the agent; blocking work (netlink, files, FRR) goes
    // to tokio's blocking pool. Small and enough for one node's agent.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .max_blocking_threads(4)
        .build()
        .context("tokio runtime")?;
    rt.block_on(async move {
        match command {
            Command::Run => ferryd::agent::run(opts, false).await.context("run"),
            Command::Install => ferryd::agent::run(opts, true).await.context("install"),
            Command::Prepare => {
                let done = ferryd::prepare::run(&opts).await.context("prepare")?;
                println!("prepared: {done:?}");
                Ok(())
            }
            Command::Status => {
                print!("{}", ferryd::status::gather(&opts).await);
                Ok(())
            }
            Command::Gc => gc_once(&opts).await,
            Command::Uninstall => unreachable!("handled above"),
        }
    })
}

/// `ferryd gc`: one collection, what it did on stdout.
async fn gc_once(opts: &ferryd::cli::Opts) -> anyhow::Result<()> {
    let settings = ferryd::ipam_gc::Settings::from_opts(opts);
    let collected = ferryd::ipam_gc::collect_once(&settings, Default::default())
        .await
        .context("IPAM GC")?
        .context("IPAM GC needs a CRI socket: --cri-socket (or /run/containerd/containerd.sock)")?;
    println!(
        "live sandboxes: {}\nreleased: {}",
        collected.live,
        collected.released.len()
    );
    for ip in &collected.released {
        println!("  {ip}");
    }
    for (id, ifname) in &collected.attachments {
        println!("  attachment {id}/{ifname}");
    }
    println!("veths removed: {}", collected.veths.len());
    for v in &collected.veths {
        println!("  {} ({}/{})", v.name, v.container_id, v.ifname);
    }
    Ok(())
}
