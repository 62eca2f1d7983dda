//! Running ironlb's own components in a lab, as they run in a cluster: each as its own
//! ServiceAccount with exactly the RBAC shipped in `deploy/`, never as admin.
//!
//! ```text
//!   deploy/controller/{namespace,serviceaccount,rbac}.yaml --kubectl apply (admin)--> lab
//!   deploy/controller/webhook.yaml, the BGPPeer CRD's conversion webhook
//!                                   --service refs rewritten to url https://127.0.0.1:<port>--> lab
//!   TokenRequest (ServiceAccount metallb-system/controller) --> <lab>/ironlb-controller.kubeconfig
//!   `ironlb controller --kubeconfig ... --port P --health-probe-port H --webhook-listen 127.0.0.1:W`
//!        as proc::Daemon "ironlb-controller" (host namespace; the API server is reachable there)
//! ```

use crate::Lab;
use crate::proc::Daemon;
use anyhow::{Context, Result, bail};
use k8s_openapi::api::core::v1::ServiceAccount;
use kube::api::{Api, PostParams};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The namespace ironlb runs in.
pub const NAMESPACE: &str = "metallb-system";
/// The controller's ServiceAccount.
pub const CONTROLLER_SERVICE_ACCOUNT: &str = "controller";
/// The controller's daemon name (pid and log files in the lab directory).
pub const CONTROLLER_DAEMON: &str = "ironlb-controller";

/// The checkout's `deploy/` directory.
pub fn deploy_dir() -> PathBuf {
    checkout_path("deploy")
}

/// Installs ironlb's CRDs (server-side apply of `deploy/crds`) and waits until the API server
/// serves them all.
pub fn install_crds(lab: &Lab) -> Result<()> {
    let crds = deploy_dir().join("crds");
    for args in [
        vec!["apply", "--server-side", "-f", &*crds.to_string_lossy()],
        vec![
            "wait",
            "--for=condition=Established",
            "crd",
            "--all",
            "--timeout=60s",
        ],
    ] {
        let out = lab.kubectl().args(&args).output()?;
        if !out.status.success() {
            bail!("kubectl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
        }
    }
    Ok(())
}

/// `rel` inside the ironlb checkout being worked in: the first directory, from the current one
/// upwards, that is an ironlb checkout (tests run in their crate's directory, the CLI from the
/// root); else the checkout this crate was compiled from. Not simply the latter: Cargo reuses a
/// build of the same sources from another clone that shares the target directory, and that
/// clone may be gone (or hold other files) by the time the artefact runs.
pub fn checkout_path(rel: &str) -> PathBuf {
    if let Ok(mut dir) = std::env::current_dir() {
        loop {
            if dir.join("crates/lab/Cargo.toml").is_file() && dir.join(rel).exists() {
                return dir.join(rel);
            }
            if !dir.pop() {
                break;
            }
        }
    }
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .join(rel)
}

/// The `ironlb` binary next to the running executable (same target directory), if built.
pub fn ironlb_next_to_current_exe() -> Result<PathBuf> {
    let exe = std::env::current_exe()?;
    let dir = exe.parent().context("the executable has no directory")?;
    // Test and bench executables live in target/<profile>/deps.
    for candidate in [dir.join("ironlb"), dir.join("../ironlb")] {
        if candidate.is_file() {
            return Ok(candidate);
        }
    }
    bail!(
        "no ironlb binary next to {}: run `cargo build -p ironlb` (same profile) first",
        exe.display()
    )
}

/// Builds the `ironlb` binary of the running executable's profile and target directory, then
/// returns its path. For benches of other packages: `cargo bench` builds only the bench's own
/// package, so a bench that runs `ironlb` from `target/release` would otherwise run whatever
/// build happened to be there last (a stale one once gave figures of an older speaker).
/// `IRONLB_BENCH_NO_BUILD=1` skips the build (e.g. a binary put there by hand).
pub fn build_ironlb_for_current_exe() -> Result<PathBuf> {
    let exe = std::env::current_exe()?;
    // target/<profile>/deps/<bench> -> target/<profile> -> target
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .context("the executable is not in target/<profile>/deps")?;
    let target_dir = profile_dir
        .parent()
        .context("the profile directory has no parent")?;
    let profile = profile_dir
        .file_name()
        .and_then(|n| n.to_str())
        .context("the profile directory has no name")?;
    if std::env::var("IRONLB_BENCH_NO_BUILD").is_ok_and(|v| v == "1") {
        return ironlb_next_to_current_exe();
    }
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    // `debug` is the dev profile's directory; `release` serves both release and bench, and
    // benches are what call this: building with the bench profile keeps the units' fingerprints
    // those of `cargo bench` (with `release` the two builds rebuilt each other's crates, minutes
    // of fat LTO on every run).
    let profile_arg = match profile {
        "debug" => "dev",
        "release" => "bench",
        other => other,
    };
    let started = Instant::now();
    eprintln!("[build] cargo build --profile {profile_arg} -p ironlb --bin ironlb ...");
    let status = Command::new(cargo)
        .args([
            "build",
            "--profile",
            profile_arg,
            "-p",
            "ironlb",
            "--bin",
            "ironlb",
        ])
        .env("CARGO_TARGET_DIR", target_dir)
        .current_dir(
            checkout_path("Cargo.toml")
                .parent()
                .unwrap_or(Path::new(".")),
        )
        .status()
        .context("running cargo")?;
    if !status.success() {
        bail!("cargo build of ironlb failed: {status}");
    }
    eprintln!(
        "[build] ironlb ({profile}) up to date after {:.1} s",
        started.elapsed().as_secs_f64()
    );
    let bin = profile_dir.join("ironlb");
    anyhow::ensure!(bin.is_file(), "{} was not built", bin.display());
    Ok(bin)
}

/// How to run the controller.
#[derive(Debug, Clone)]
pub struct ControllerOptions {
    /// The `ironlb` binary.
    pub binary: PathBuf,
    /// Serve the admission webhook (the lab's API server calls it on 127.0.0.1).
    pub webhook: bool,
    /// More flags for `ironlb controller` (e.g. `--lb-class`).
    pub extra_args: Vec<String>,
    /// Daemon name (pid / log file stem); `ironlb-controller` unless several run at once.
    pub name: String,
}

impl ControllerOptions {
    /// The controller from `binary`, with the webhook.
    pub fn new(binary: impl Into<PathBuf>) -> Self {
        ControllerOptions {
            binary: binary.into(),
            webhook: true,
            extra_args: Vec::new(),
            name: CONTROLLER_DAEMON.to_string(),
        }
    }
}

/// A controller started in a lab.
#[derive(Debug, Clone)]
pub struct Controller {
    /// Its daemon (pid, log).
    pub daemon: Daemon,
    /// `http://127.0.0.1:<port>/metrics`.
    pub metrics_port: u16,
    /// `/healthz`, `/readyz`.
    pub health_port: u16,
    /// The webhook's HTTPS port on 127.0.0.1 (0 when disabled).
    pub webhook_port: u16,
    /// The kubeconfig it uses (its ServiceAccount's token).
    pub kubeconfig: PathBuf,
    /// What it was started with.
    pub options: ControllerOptions,
}

fn free_port() -> Result<u16> {
    let l = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(l.local_addr()?.port())
}

/// `kubectl apply --server-side --force-conflicts -f -` of `input` (YAML or JSON) as admin:
/// how the lab applies what it takes from `deploy/` (server-side, as [`install_crds`] applies
/// the CRDs), taking over fields another field manager set before.
pub fn apply_server_side(lab: &Lab, input: &[u8]) -> Result<()> {
    let args = ["apply", "--server-side", "--force-conflicts", "-f", "-"];
    let mut cmd = lab.kubectl();
    cmd.args(args);
    let out = crate::proc::output_with_input(cmd, input)?;
    crate::proc::check("kubectl", &args, out).map(|_| ())
}

/// Applies the controller's Namespace, ServiceAccount and RBAC from `deploy/controller`.
pub fn apply_controller_rbac(lab: &Lab) -> Result<()> {
    let dir = deploy_dir().join("controller");
    for file in ["namespace.yaml", "serviceaccount.yaml", "rbac.yaml"] {
        let text = std::fs::read(dir.join(file))
            .with_context(|| format!("reading deploy/controller/{file}"))?;
        apply_server_side(lab, &text)
            .with_context(|| format!("applying deploy/controller/{file}"))?;
    }
    Ok(())
}

/// `deploy/controller/webhook.yaml`'s ValidatingWebhookConfiguration with every `service`
/// client config replaced by `url: https://127.0.0.1:<port><path>` (a lab has no pod network;
/// the API server reaches the controller on loopback).
pub fn lab_webhook_configuration(port: u16) -> Result<serde_json::Value> {
    let text = std::fs::read_to_string(deploy_dir().join("controller/webhook.yaml"))?;
    for doc in serde_yaml::Deserializer::from_str(&text) {
        let mut v: serde_json::Value = serde::Deserialize::deserialize(doc)?;
        if v["kind"] != "ValidatingWebhookConfiguration" {
            continue;
        }
        for hook in v["webhooks"].as_array_mut().into_iter().flatten() {
            let path = hook["clientConfig"]["service"]["path"]
                .as_str()
                .unwrap_or("/")
                .to_string();
            hook["clientConfig"] =
                serde_json::json!({"url": format!("https://127.0.0.1:{port}{path}")});
        }
        return Ok(v);
    }
    bail!("deploy/controller/webhook.yaml has no ValidatingWebhookConfiguration")
}

/// `deploy/crds/metallb.io_bgppeers.yaml` with its conversion webhook's `service` replaced by
/// `url: https://127.0.0.1:<port>/convert`, as [`lab_webhook_configuration`] does for the
/// validating webhooks (the controller injects only the caBundle, into whichever it finds).
pub fn lab_bgppeer_crd(port: u16) -> Result<serde_json::Value> {
    let text = std::fs::read_to_string(deploy_dir().join("crds/metallb.io_bgppeers.yaml"))?;
    let mut crd: serde_json::Value = serde_yaml::from_str(&text)?;
    let client_config = &mut crd["spec"]["conversion"]["webhook"]["clientConfig"];
    let path = client_config["service"]["path"]
        .as_str()
        .context("deploy/crds/metallb.io_bgppeers.yaml has no conversion webhook Service")?
        .to_string();
    *client_config = serde_json::json!({"url": format!("https://127.0.0.1:{port}{path}")});
    Ok(crd)
}

/// A token for `namespace/name` valid for `seconds` (the ServiceAccount must exist).
pub async fn long_token(lab: &Lab, namespace: &str, name: &str, seconds: i64) -> Result<String> {
    let sas: Api<ServiceAccount> = Api::namespaced(lab.client().await?, namespace);
    let request = serde_json::json!({
        "apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest",
        "spec": {"expirationSeconds": seconds},
    });
    let response: serde_json::Value = sas
        .create_subresource("token", name, &PostParams::default(), &request)
        .await
        .with_context(|| format!("TokenRequest for {namespace}/{name}"))?;
    response["status"]["token"]
        .as_str()
        .map(str::to_string)
        .context("TokenRequest answered without a token")
}

/// Writes a kubeconfig for the lab's API server with a bearer token.
pub fn write_token_kubeconfig(lab: &Lab, path: &Path, user: &str, token: &str) -> Result<()> {
    let ca = lab.dir.join("pki/ca.crt");
    let config = serde_json::json!({
        "apiVersion": "v1", "kind": "Config",
        "clusters": [{"name": "lab", "cluster": {
            "server": lab.control_plane.server_url(),
            "certificate-authority": ca,
        }}],
        "users": [{"name": user, "user": {"token": token}}],
        "contexts": [{"name": user, "context": {"cluster": "lab", "user": user}}],
        "current-context": user,
    });
    std::fs::write(path, serde_json::to_vec_pretty(&config)?)?;
    Ok(())
}

/// Installs the controller's RBAC (and webhook configuration) and starts `ironlb controller`
/// as its ServiceAccount; returns once its `/healthz` answers.
pub async fn start_controller(lab: &Lab, options: ControllerOptions) -> Result<Controller> {
    apply_controller_rbac(lab)?;
    let token = long_token(lab, NAMESPACE, CONTROLLER_SERVICE_ACCOUNT, 86_400).await?;
    let kubeconfig = lab.dir.join(format!("{}.kubeconfig", options.name));
    write_token_kubeconfig(
        lab,
        &kubeconfig,
        "system:serviceaccount:metallb-system:controller",
        &token,
    )?;
    let webhook_port = if options.webhook { free_port()? } else { 0 };
    if options.webhook {
        let vwc = lab_webhook_configuration(webhook_port)?;
        apply_server_side(lab, &serde_json::to_vec(&vwc)?)?;
        apply_server_side(lab, &serde_json::to_vec(&lab_bgppeer_crd(webhook_port)?)?)?;
    }
    let controller = Controller {
        daemon: Daemon::new(&lab.dir, &options.name),
        metrics_port: free_port()?,
        health_port: free_port()?,
        webhook_port,
        kubeconfig,
        options,
    };
    controller.start()?;
    controller.wait_healthy(Duration::from_secs(20)).await?;
    Ok(controller)
}

impl Controller {
    /// Starts (again) the daemon with the same ports and kubeconfig.
    pub fn start(&self) -> Result<()> {
        let mut cmd = Command::new(&self.options.binary);
        cmd.arg("controller")
            .arg("--kubeconfig")
            .arg(&self.kubeconfig)
            .args(["--namespace", NAMESPACE, "--log-format", "text"])
            .args(["--host", "127.0.0.1"])
            .args(["--port", &self.metrics_port.to_string()])
            .args(["--health-probe-port", &self.health_port.to_string()]);
        if self.options.webhook {
            cmd.args([
                "--webhook-mode",
                "enabled",
                "--webhook-listen",
                &format!("127.0.0.1:{}", self.webhook_port),
                "--webhook-url-base",
                &format!("https://127.0.0.1:{}", self.webhook_port),
            ]);
        } else {
            cmd.args(["--webhook-mode", "disabled"]);
        }
        cmd.args(&self.options.extra_args);
        cmd.env_remove("KUBECONFIG");
        self.daemon.start(cmd)
    }

    /// Stops the daemon: SIGTERM, or SIGKILL at once when `kill` (a crash).
    pub fn stop(&self, kill: bool) {
        let grace = if kill {
            Duration::ZERO
        } else {
            Duration::from_secs(3)
        };
        if kill && let Some(pid) = self.daemon.pid() {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
        self.daemon.stop(grace);
    }

    async fn get(&self, port: u16, path: &str) -> Result<(u16, String)> {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut s = tokio::net::TcpStream::connect(("127.0.0.1", port)).await?;
        s.write_all(
            format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
                .as_bytes(),
        )
        .await?;
        let mut buf = Vec::new();
        s.read_to_end(&mut buf).await?;
        let text = String::from_utf8_lossy(&buf).into_owned();
        let code = text
            .split_whitespace()
            .nth(1)
            .and_then(|c| c.parse().ok())
            .unwrap_or(0);
        let body = text
            .split_once("\r\n\r\n")
            .map(|(_, b)| b.to_string())
            .unwrap_or_default();
        Ok((code, body))
    }

    /// The `/metrics` text.
    pub async fn metrics(&self) -> Result<String> {
        let (code, body) = self.get(self.metrics_port, "/metrics").await?;
        if code != 200 {
            bail!("/metrics answered {code}");
        }
        Ok(body)
    }

    /// Whether `/readyz` answers 200.
    pub async fn is_ready(&self) -> bool {
        matches!(self.get(self.health_port, "/readyz").await, Ok((200, _)))
    }

    /// Waits until `/healthz` answers 200 (fails early if the process exits).
    pub async fn wait_healthy(&self, timeout: Duration) -> Result<()> {
        self.wait_for(timeout, "/healthz").await
    }

    /// Waits until `/readyz` answers 200: stores synced, configuration loaded, webhook serving.
    pub async fn wait_ready(&self, timeout: Duration) -> Result<()> {
        self.wait_for(timeout, "/readyz").await
    }

    async fn wait_for(&self, timeout: Duration, path: &str) -> Result<()> {
        let deadline = Instant::now() + timeout;
        loop {
            self.daemon.ensure_running()?;
            if let Ok((200, _)) = self.get(self.health_port, path).await {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!(
                    "controller not answering {path} after {timeout:?}; log:\n{}",
                    crate::proc::log_tail(&self.daemon.log_file, 20)
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

/// Builds the `ironlb` binary statically linked (glibc's static libraries, `crt-static`; the
/// musl target cannot be installed here) for the image the lab's real nodes run, in its own
/// target directory (`$IRONLB_CACHE/static-target`) so that the workspace's builds are not
/// disturbed; returns its path. The dev profile: fast to build, and what the tests need.
pub fn static_ironlb() -> Result<PathBuf> {
    let cache = std::env::var_os("IRONLB_CACHE")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache/ironlb")))
        .context("neither IRONLB_CACHE nor HOME is set")?;
    let target_dir = cache.join("static-target");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let started = Instant::now();
    eprintln!("[lab] building a static ironlb for the image (cold: a few minutes)");
    let status = Command::new(&cargo)
        .args([
            "build",
            "-p",
            "ironlb",
            "--bin",
            "ironlb",
            "--target",
            "x86_64-unknown-linux-gnu",
        ])
        .arg("--manifest-path")
        .arg(checkout_path("Cargo.toml"))
        .env("CARGO_TARGET_DIR", &target_dir)
        .env("RUSTFLAGS", "-C target-feature=+crt-static")
        .stdout(Stdio::null())
        .status()
        .with_context(|| format!("running {cargo} build"))?;
    if !status.success() {
        bail!("building the static ironlb failed ({status})");
    }
    eprintln!(
        "[lab] static ironlb built in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    Ok(target_dir.join("x86_64-unknown-linux-gnu/debug/ironlb"))
}

/// `deploy/ironlb-native.yaml` as the lab applies it to real nodes: unchanged but for the
/// speaker, which must never answer on the node's management link to the host (`mgmt0`, the
/// lab's own, not part of any cluster a user has), and the image tag the lab imported.
pub fn lab_native_manifest(image_tag: &str) -> Result<String> {
    let text = std::fs::read_to_string(deploy_dir().join("ironlb-native.yaml"))
        .context("reading deploy/ironlb-native.yaml")?;
    let speaker_args = "args: [speaker, --port=7472, --log-level=info]";
    if !text.contains(speaker_args) {
        bail!("deploy/ironlb-native.yaml: the speaker's args are not `{speaker_args}` any more");
    }
    Ok(text
        .replace(
            speaker_args,
            "args: [speaker, --port=7472, --log-level=info, --interfaces-exclude=mgmt0]",
        )
        .replace(
            "image: ironlb/ironlb:latest",
            &format!("image: ironlb/ironlb:{image_tag}"),
        ))
}

/// Runs one of the checkout's tool scripts (`tools/helm/build.sh`, `tools/metallb/fetch.sh`,
/// …), which print the path of what they built or fetched on their last line, and returns it.
pub fn tool_path(script: &str) -> Result<PathBuf> {
    let out = Command::new("bash")
        .arg(checkout_path(script))
        .output()
        .with_context(|| format!("running {script}"))?;
    if !out.status.success() {
        bail!(
            "{script} failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let last = text
        .lines()
        .last()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .with_context(|| format!("{script} printed no path"))?;
    Ok(PathBuf::from(last))
}
