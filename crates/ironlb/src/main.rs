//! `ironlb`: a MetalLB-compatible load balancer for bare-metal Kubernetes.
//!
//! One binary, one subcommand per component; each lives in its own module and exposes
//! `Args` (clap) and `run(Args)`. Adding a component is one [`Command`] variant and one module.

use clap::{Parser, Subcommand};
use ironlb_controller as controller;
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

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use clap::CommandFactory;
    use serde_json::Value;

    /// The first container of the workload in `deploy/<rel>`.
    fn container(rel: &str) -> Value {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../deploy")
            .join(rel);
        let text = std::fs::read_to_string(&path).unwrap();
        let workload: Value = serde_yaml::from_str(&text).unwrap();
        workload["spec"]["template"]["spec"]["containers"][0].clone()
    }

    fn strings(v: &Value) -> Vec<String> {
        v.as_array()
            .unwrap()
            .iter()
            .map(|s| s.as_str().unwrap().to_string())
            .collect()
    }

    /// The `containerPort` of the port named `name`.
    fn named_port(c: &Value, name: &str) -> u64 {
        c["ports"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["name"] == name)
            .and_then(|p| p["containerPort"].as_u64())
            .unwrap()
    }

    /// What a probe's `port` (a number or a port name) means.
    fn probe_port(c: &Value, probe: &str) -> u64 {
        let port = &c[probe]["httpGet"]["port"];
        port.as_u64()
            .unwrap_or_else(|| named_port(c, port.as_str().unwrap()))
    }

    /// The environment variables `ironlb <sub>` reads.
    fn known_env(sub: &str) -> Vec<String> {
        Cli::command()
            .find_subcommand(sub)
            .unwrap()
            .get_arguments()
            .filter_map(|a| a.get_env())
            .map(|e| e.to_string_lossy().into_owned())
            .collect()
    }

    fn check_env(c: &Value, sub: &str) {
        let known = known_env(sub);
        for var in c["env"].as_array().unwrap() {
            let name = var["name"].as_str().unwrap();
            assert!(
                known.iter().any(|k| k == name),
                "{sub}: the manifest sets {name}, which `ironlb {sub}` does not read (it reads {known:?})"
            );
        }
    }

    #[test]
    fn the_controller_deployment_uses_only_flags_and_variables_that_exist() {
        let c = container("controller/deployment.yaml");
        let args = strings(&c["args"]);
        let cli = Cli::try_parse_from(std::iter::once("ironlb".to_string()).chain(args.clone()))
            .unwrap_or_else(|e| panic!("{args:?}: {e}"));
        let Command::Controller(parsed) = cli.command else {
            panic!("{args:?} is not `controller`");
        };
        check_env(&c, "controller");
        assert_eq!(named_port(&c, "monitoring"), u64::from(parsed.port));
        assert_eq!(
            named_port(&c, "webhook-server"),
            u64::from(parsed.webhook_listen.port())
        );
        for probe in ["livenessProbe", "readinessProbe"] {
            assert_eq!(
                probe_port(&c, probe),
                u64::from(parsed.health_probe_port),
                "{probe}"
            );
        }
    }

    #[test]
    fn the_speaker_daemonset_uses_only_flags_and_variables_that_exist() {
        let c = container("speaker/daemonset.yaml");
        let args = strings(&c["args"]);
        // The node name comes from METALLB_NODE_NAME in a Pod.
        let argv = std::iter::once("ironlb".to_string())
            .chain(args.clone())
            .chain(["--node-name".to_string(), "node1".to_string()]);
        let cli = Cli::try_parse_from(argv).unwrap_or_else(|e| panic!("{args:?}: {e}"));
        let Command::Speaker(parsed) = cli.command else {
            panic!("{args:?} is not `speaker`");
        };
        check_env(&c, "speaker");
        assert_eq!(named_port(&c, "monitoring"), u64::from(parsed.port));
        assert_eq!(
            named_port(&c, "memberlist-udp"),
            u64::from(parsed.ml_bindport)
        );
        for probe in ["livenessProbe", "readinessProbe"] {
            assert_eq!(probe_port(&c, probe), u64::from(parsed.port), "{probe}");
        }
        // Root with NET_RAW only, as MetalLB's speaker.
        let sc = &c["securityContext"];
        assert_eq!(sc["runAsUser"], 0);
        assert_eq!(sc["capabilities"]["add"], serde_json::json!(["NET_RAW"]));
        assert_eq!(sc["capabilities"]["drop"], serde_json::json!(["ALL"]));
    }
}
