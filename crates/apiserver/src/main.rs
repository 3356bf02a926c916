//! `ferry-apiserver`: run the server, or change its nodes as a client.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use std::fmt::Write as _;
use std::io::Write as _;

use anyhow::{bail, Context, Result};
use clap::{Parser, Subcommand, ValueEnum};
use ferry_apiserver::{
    generate_nodes, load_nodes, ApiServer, GenOptions, IpFamily, ServerConfig, KUBECONFIG,
};
use serde_json::Value;

#[derive(Parser)]
#[command(
    version,
    about = "A small Kubernetes API server for Nodes, Namespaces, Pods and NetworkPolicies (ferry test/lab tool)"
)]
struct Cli {
    /// Server state: ca.crt, ca.key, token, kubeconfig, nodes.json.
    #[arg(
        long,
        global = true,
        env = "FERRY_APISERVER_STATE",
        default_value = "."
    )]
    state_dir: PathBuf,
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Clone, Copy, ValueEnum)]
enum Family {
    V4,
    V6,
    Dual,
}

#[derive(Subcommand)]
enum Cmd {
    /// Serve HTTPS until SIGINT/SIGTERM.
    Serve {
        /// ADDR:PORT (port 0: any free port; see the kubeconfig written).
        #[arg(long, default_value = "127.0.0.1:6443")]
        listen: SocketAddr,
        /// Bearer token (default: state_dir/token, else a random one).
        #[arg(long, env = "FERRY_APISERVER_TOKEN", conflicts_with = "token_file")]
        token: Option<String>,
        /// Read the bearer token from this file.
        #[arg(long)]
        token_file: Option<PathBuf>,
        /// Seed nodes (a Node/NodeList JSON file or a dir of them), used
        /// when the state dir has no store yet.
        #[arg(long)]
        nodes: Vec<PathBuf>,
        /// Also seed N generated nodes (node-0 … node-N-1).
        #[arg(long, default_value_t = 0)]
        generate: usize,
        /// Address family of generated nodes.
        #[arg(long, value_enum, default_value = "v4")]
        family: Family,
        /// Extra serving-certificate SANs (IPs or DNS names).
        #[arg(long)]
        san: Vec<String>,
        /// Watch events kept for resuming watches.
        #[arg(long, default_value_t = 1000)]
        history: usize,
    },
    /// Change or show the nodes of a running server (uses state_dir/kubeconfig).
    Node {
        #[command(subcommand)]
        cmd: NodeCmd,
    },
}

#[derive(Subcommand)]
enum NodeCmd {
    /// Add or replace nodes from a Node or NodeList JSON file (`-`: stdin).
    Add { file: PathBuf },
    /// Delete a node.
    Delete { name: String },
    /// JSON merge patch a node (any part, status too).
    Patch { name: String, json: String },
    /// Print one node as JSON.
    Get { name: String },
    /// List nodes: name, resourceVersion, InternalIPs, podCIDRs, Ready.
    List,
}

fn main() -> Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let _ = rustls::crypto::ring::default_provider().install_default();
    let cli = Cli::parse();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    match cli.cmd {
        Cmd::Serve {
            listen,
            token,
            token_file,
            nodes,
            generate,
            family,
            san,
            history,
        } => {
            let token = match (token, token_file) {
                (Some(t), _) => t,
                (None, Some(f)) => std::fs::read_to_string(&f)
                    .with_context(|| format!("reading {}", f.display()))?
                    .trim()
                    .to_string(),
                (None, None) => String::new(),
            };
            let mut seed = Vec::new();
            for path in &nodes {
                seed.extend(load_nodes(path)?);
            }
            let family = match family {
                Family::V4 => IpFamily::V4,
                Family::V6 => IpFamily::V6,
                Family::Dual => IpFamily::Dual,
            };
            seed.extend(generate_nodes(
                generate,
                &GenOptions {
                    family,
                    ..GenOptions::default()
                },
            ));
            let cfg = ServerConfig {
                listen,
                token,
                state_dir: cli.state_dir,
                sans: san,
                history,
            };
            rt.block_on(serve(cfg, seed))
        }
        Cmd::Node { cmd } => rt.block_on(node(&cli.state_dir, cmd)),
    }
}

async fn serve(cfg: ServerConfig, seed: Vec<k8s_openapi::api::core::v1::Node>) -> Result<()> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut server = ApiServer::start(cfg, seed).await?;
    println!("listening on {}", server.url());
    println!("kubeconfig {}", server.kubeconfig_path().display());
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
    server.stop().await;
    server.store().flush()?;
    Ok(())
}

async fn client(state_dir: &Path) -> Result<kube::Client> {
    let path = state_dir.join(KUBECONFIG);
    let kc = kube::config::Kubeconfig::read_from(&path)
        .with_context(|| format!("reading {}", path.display()))?;
    let config =
        kube::Config::from_custom_kubeconfig(kc, &kube::config::KubeConfigOptions::default())
            .await?;
    Ok(kube::Client::try_from(config)?)
}

async fn call(client: &kube::Client, method: &str, path: &str, body: Vec<u8>) -> Result<Value> {
    let req = hyper::Request::builder()
        .method(method)
        .uri(format!("/ferry-admin/v1/{path}"))
        .header("content-type", "application/json")
        .body(body)?;
    let text = client.request_text(req).await?;
    Ok(serde_json::from_str(&text)?)
}

async fn node(state_dir: &Path, cmd: NodeCmd) -> Result<()> {
    let client = client(state_dir).await?;
    let mut out = String::new();
    let seg = |name: &str| format!("nodes/{}", name);
    match cmd {
        NodeCmd::Add { file } => {
            let data = if file.as_os_str() == "-" {
                let mut s = Vec::new();
                std::io::Read::read_to_end(&mut std::io::stdin(), &mut s)?;
                s
            } else {
                std::fs::read(&file).with_context(|| format!("reading {}", file.display()))?
            };
            serde_json::from_slice::<Value>(&data).context("the file is not JSON")?;
            let v = call(&client, "POST", "nodes", data).await?;
            let items = match v.get("items").and_then(Value::as_array) {
                Some(items) => items.clone(),
                None => vec![v],
            };
            for item in items {
                writeln!(
                    out,
                    "node/{} stored (resourceVersion {})",
                    item["metadata"]["name"].as_str().unwrap_or("?"),
                    item["metadata"]["resourceVersion"].as_str().unwrap_or("?")
                )?;
            }
        }
        NodeCmd::Delete { name } => {
            check_name(&name)?;
            call(&client, "DELETE", &seg(&name), Vec::new()).await?;
            writeln!(out, "node/{name} deleted")?;
        }
        NodeCmd::Patch { name, json } => {
            check_name(&name)?;
            serde_json::from_str::<Value>(&json).context("the patch is not JSON")?;
            let v = call(&client, "PATCH", &seg(&name), json.into_bytes()).await?;
            writeln!(
                out,
                "node/{name} patched (resourceVersion {})",
                v["metadata"]["resourceVersion"].as_str().unwrap_or("?")
            )?;
        }
        NodeCmd::Get { name } => {
            check_name(&name)?;
            let v = call(&client, "GET", &seg(&name), Vec::new()).await?;
            writeln!(out, "{}", serde_json::to_string_pretty(&v)?)?;
        }
        NodeCmd::List => {
            let v = call(&client, "GET", "nodes", Vec::new()).await?;
            writeln!(
                out,
                "{:<24} {:>8} {:<32} {:<36} READY",
                "NAME", "RV", "INTERNAL-IP", "POD-CIDRS"
            )?;
            for item in v["items"].as_array().into_iter().flatten() {
                writeln!(out, "{}", row(item))?;
            }
        }
    }
    print(&out)
}

/// Print to stdout; a closed pipe (`| head`) is not an error.
fn print(text: &str) -> Result<()> {
    match std::io::stdout().lock().write_all(text.as_bytes()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(e.into()),
        _ => Ok(()),
    }
}

fn check_name(name: &str) -> Result<()> {
    if name.is_empty() || name.contains('/') || name.contains('?') {
        bail!("invalid node name {name:?}");
    }
    Ok(())
}

fn row(item: &Value) -> String {
    let s = |v: &Value| v.as_str().unwrap_or("").to_string();
    let ips: Vec<String> = item["status"]["addresses"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|a| a["type"] == "InternalIP")
        .map(|a| s(&a["address"]))
        .collect();
    let cidrs: Vec<String> = item["spec"]["podCIDRs"]
        .as_array()
        .into_iter()
        .flatten()
        .map(s)
        .collect();
    let ready = item["status"]["conditions"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|c| c["type"] == "Ready")
        .map(|c| s(&c["status"]))
        .unwrap_or_else(|| "Unknown".into());
    format!(
        "{:<24} {:>8} {:<32} {:<36} {}",
        s(&item["metadata"]["name"]),
        s(&item["metadata"]["resourceVersion"]),
        ips.join(","),
        cidrs.join(","),
        ready
    )
}
