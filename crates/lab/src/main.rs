//! `ironlb-lab`: bring the lab up and down, run commands in it, and run the demo.

use anyhow::{Context, Result, bail};
use clap::{Parser, Subcommand};
use ironlb_lab::{Lab, LabOptions, Progress, RouterKind};
use std::process::ExitCode;
use std::time::Instant;

#[derive(Parser)]
#[command(
    name = "ironlb-lab",
    about = "A real Kubernetes control plane and LAN in network namespaces"
)]
struct Args {
    /// The lab's name (namespaces are ilb-<name>-*).
    #[arg(long, global = true, default_value = "lab", env = "IRONLB_LAB")]
    name: String,
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Build (or complete) the lab and leave it running; prints `export KUBECONFIG=…` last.
    Up {
        /// Number of nodes.
        #[arg(long, default_value_t = 3)]
        nodes: u8,
        /// The routing daemon in the router namespace.
        #[arg(long, value_enum, default_value_t = RouterKind::Frr)]
        router: RouterKind,
        /// Also run ironlb's controller and one speaker per node from this checkout's build.
        #[arg(long)]
        with_ironlb: bool,
        /// Real nodes: containerd, runc, the CNI bridge, a kubelet and kube-proxy (nftables)
        /// in every node namespace, instead of the kubelet imitation.
        #[arg(long)]
        real_nodes: bool,
    },
    /// Remove everything the lab made (namespaces, links, processes, files).
    Down {
        /// Every lab on this machine, and anything a crashed run left behind.
        #[arg(long)]
        all: bool,
        /// Only the test labs whose test process is gone.
        #[arg(long, conflicts_with = "all")]
        stale: bool,
    },
    /// Run a command inside a host's namespace: node1…, client, router, ext-client.
    Exec {
        /// The host.
        host: String,
        /// The command and its arguments.
        #[arg(last = true, required = true)]
        command: Vec<String>,
    },
    /// kubectl against the lab, as admin.
    Kubectl {
        /// kubectl's arguments.
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// The lab's hosts, interfaces, MAC and IP addresses, router and API server.
    Status {
        /// Print JSON (for scripts).
        #[arg(long)]
        json: bool,
    },
    /// Build the lab's images (pause, apps:v1, and ironlb's from a static binary) and import
    /// them into every node of the lab when it runs real nodes; prints each archive.
    Images {
        /// A static `ironlb` binary to make `ironlb/ironlb:<tag>` from.
        #[arg(long)]
        ironlb: Option<std::path::PathBuf>,
        /// The tag of ironlb's image.
        #[arg(long, default_value = "dev")]
        tag: String,
    },
    /// Build the statically linked `ironlb` that ironlb's image holds; prints its path.
    StaticIronlb,
    /// The README's main job: the reference scenario, end to end.
    Demo,
    /// (internal) The kubelet imitation, run as a daemon by `up`.
    #[command(hide = true)]
    Agent,
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    let args = Args::parse();
    match run(args) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("ironlb-lab: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: Args) -> Result<ExitCode> {
    match args.command {
        Cmd::Up {
            nodes,
            router,
            with_ironlb,
            real_nodes,
        } => {
            if real_nodes && with_ironlb {
                // ironlb runs by hand beside the kubelet imitation; on real nodes it is
                // installed from its manifest instead, and the hand-run speakers' DaemonSet
                // would have the real kubelets look for an image nobody imported.
                bail!(
                    "--with-ironlb runs ironlb beside the kubelet imitation; not with --real-nodes"
                );
            }
            let lab = up(&args.name, nodes, router, real_nodes)?;
            if with_ironlb {
                run_ironlb(&lab)?;
            }
            println!("export KUBECONFIG={}", lab.kubeconfig().display());
        }
        Cmd::Down { all, stale } => {
            if all {
                ironlb_lab::down_all();
            } else if stale {
                ironlb_lab::down_stale();
            } else if let Ok(lab) = Lab::open(&args.name) {
                lab.down();
            }
            eprintln!("lab removed");
        }
        Cmd::Exec { host, command } => {
            let lab = Lab::open(&args.name)?;
            let h = lab
                .topo
                .host(&host)
                .with_context(|| format!("no host {host:?}"))?;
            let status = ironlb_lab::proc::in_netns(
                &h.netns,
                &command.iter().map(String::as_str).collect::<Vec<_>>(),
            )
            .status()?;
            return Ok(exit_code(status.code()));
        }
        Cmd::Kubectl { args: kargs } => {
            let lab = Lab::open(&args.name)?;
            let status = lab.kubectl().args(kargs).status()?;
            return Ok(exit_code(status.code()));
        }
        Cmd::Status { json } => {
            let lab = Lab::open(&args.name)?;
            let status = lab.status()?;
            if json {
                println!("{}", serde_json::to_string_pretty(&status)?);
            } else {
                print_status(&status);
            }
        }
        Cmd::Images { ironlb, tag } => images(&args.name, ironlb.as_deref(), &tag)?,
        Cmd::StaticIronlb => println!("{}", ironlb_lab::components::static_ironlb()?.display()),
        Cmd::Demo => ironlb_lab::demo::run(&args.name)?,
        Cmd::Agent => {
            let lab = Lab::open(&args.name)?;
            let runtime = tokio::runtime::Runtime::new()?;
            runtime.block_on(async {
                let client = lab.client().await?;
                ironlb_lab::agent::run(client, lab.topo.clone()).await
            })?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn images(name: &str, ironlb: Option<&std::path::Path>, tag: &str) -> Result<()> {
    use ironlb_lab::images;
    let mut progress = Progress::new("images");
    let mut archives = vec![images::pause_image()?, images::apps_image()?];
    if let Some(binary) = ironlb {
        archives.push(images::ironlb_image(binary, tag)?);
    }
    progress.step("built (or cached)");
    let lab = Lab::open(name).ok().filter(|lab| lab.real_nodes);
    for archive in &archives {
        if let Some(lab) = &lab {
            lab.import_image(archive)?;
        }
        println!("{} {}", archive.name, archive.path.display());
    }
    if lab.is_some() {
        progress.step(&format!("imported into every node of lab {name}"));
    }
    Ok(())
}

fn exit_code(code: Option<i32>) -> ExitCode {
    ExitCode::from(code.and_then(|c| u8::try_from(c).ok()).unwrap_or(1))
}

fn up(name: &str, nodes: u8, router: RouterKind, real_nodes: bool) -> Result<Lab> {
    let start = Instant::now();
    let lab = Lab::up(&LabOptions {
        name: name.to_string(),
        nodes,
        router,
        real_nodes,
        ..LabOptions::default()
    })?;
    let what = if real_nodes {
        "real nodes"
    } else {
        lab.start_agent_daemon(&std::env::current_exe()?)?;
        "agent running"
    };
    eprintln!(
        "[lab {:6.1}s] lab {name} is up ({what})",
        start.elapsed().as_secs_f64()
    );
    Ok(lab)
}

/// Runs ironlb's components from this checkout: the CRDs, the controller as its
/// ServiceAccount, and one speaker per node (inside the node's namespace) as theirs. The binary
/// is the `ironlb` next to this executable.
fn run_ironlb(lab: &Lab) -> Result<ironlb_lab::speakers::Speakers> {
    use ironlb_lab::components;
    let binary = components::ironlb_next_to_current_exe()?;
    let crds = components::deploy_dir().join("crds");
    kubectl_show(
        lab,
        &["apply", "--server-side", "-f", &crds.display().to_string()],
    )?;
    kubectl_show(
        lab,
        &[
            "wait",
            "--for=condition=Established",
            "crd",
            "--all",
            "--timeout=60s",
        ],
    )?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let controller = runtime.block_on(components::start_controller(
        lab,
        components::ControllerOptions::new(&binary),
    ))?;
    eprintln!(
        "[lab] ironlb controller running as metallb-system/controller (pid {}, log {}, metrics http://127.0.0.1:{}/metrics, webhook https://127.0.0.1:{})",
        controller.daemon.pid().unwrap_or_default(),
        controller.daemon.log_file.display(),
        controller.metrics_port,
        controller.webhook_port,
    );
    let speakers = runtime.block_on(ironlb_lab::speakers::start_speakers(lab, &binary))?;
    for s in &speakers.nodes {
        eprintln!(
            "[lab] ironlb speaker on {} running as metallb-system/speaker (pid {}, log {})",
            s.node,
            s.daemon.pid().unwrap_or_default(),
            s.daemon.log_file.display(),
        );
    }
    Ok(speakers)
}

fn print_status(status: &serde_json::Value) {
    println!(
        "lab {}  api {}  kubeconfig {}",
        status["name"], status["apiServer"], status["kubeconfig"]
    );
    println!(
        "router: {} AS{} {} {}",
        status["router"]["kind"],
        status["router"]["asn"],
        status["router"]["ipv4"],
        status["router"]["ipv6"]
    );
    if let Some(hosts) = status["hosts"].as_object() {
        for (name, h) in hosts {
            println!(
                "{name:<11} {:<15} {:<12} {}",
                h["ipv4"].as_str().unwrap_or(""),
                h["ipv6"].as_str().unwrap_or(""),
                h["mac"].as_str().unwrap_or("")
            );
        }
    }
}

fn kubectl_show(lab: &Lab, args: &[&str]) -> Result<String> {
    let out = lab.kubectl().args(args).output()?;
    ironlb_lab::proc::check("kubectl", args, out)
}
