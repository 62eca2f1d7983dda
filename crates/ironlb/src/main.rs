//! `ironlb`: a MetalLB-compatible load balancer for bare-metal Kubernetes.
//!
//! One binary, one subcommand per component; each lives in its own module and exposes
//! `Args` (clap) and `run(Args)`. Adding a component is one [`Command`] variant and one module.

use clap::{Parser, Subcommand};
use ironlb::controller;
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "ironlb",
    version,
    about = "MetalLB-compatible load balancer for bare-metal Kubernetes"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Assigns addresses to LoadBalancer Services and serves the admission webhook.
    Controller(controller::Args),
    /// Announces Service addresses from this node (Layer 2: ARP/NDP).
    Speaker(ironlb_speaker::Args),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("ironlb: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        match cli.command {
            Command::Controller(args) => controller::run(args).await,
            Command::Speaker(args) => ironlb_speaker::run(args).await,
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("ironlb: {e:#}");
            ExitCode::FAILURE
        }
    }
}
