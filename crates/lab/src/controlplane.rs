//! The lab's control plane: etcd, kube-apiserver, kube-controller-manager and kube-scheduler,
//! built from the Go modules in `tools/kube` and run as daemons of the lab.
//!
//! ```text
//!   etcd 127.0.0.1:<port>  <--  kube-apiserver https://169.254.<100+slot>.1:6443  <-- kubectl, tests,
//!                                   ^            ^     |                                ironlb (nodes
//!                    controller-manager      scheduler  |                               via mgmt0)
//!                                                       '-- to kubelets, Services (webhooks):
//!                                                           <lab>/egress.sock -> egress proxy
//!                                                           inside node1's namespace
//! ```
//!
//! The API server never dials a lab address from the host: its egress selector sends the
//! `cluster` network (kubelets for logs and exec, webhooks and APIs behind Services) through
//! the lab's `egress` proxy ([`start_egress_proxy`]), which runs inside a node namespace and
//! connects only to lab addresses. Webhooks given by URL (the lab's 127.0.0.1 ones) are the
//! `controlplane` network and are dialled directly.

use crate::pki::{CLIENTS, Pki};
use crate::proc::{Daemon, in_netns};
use crate::progress::Progress;
use anyhow::{Context, Result, bail};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The API server's port on the management address.
pub const API_PORT: u16 = 6443;
/// The Service ClusterIP range; it does not overlap the lab LAN (10.0.0.0/24).
pub const SERVICE_CIDR: &str = "10.200.0.0/16";
/// The `kubernetes` Service's ClusterIP: the first address of [`SERVICE_CIDR`].
pub const KUBERNETES_SERVICE_IP: &str = "10.200.0.1";
/// The IPv6 Service ClusterIP range, so dual-stack Services (PreferDualStack,
/// RequireDualStack, IPv6 SingleStack) can be created; it does not overlap the LAN's fd10::/64.
pub const SERVICE_CIDR_V6: &str = "fd10:200::/108";

/// Where the Kubernetes and etcd binaries are: `$IRONLB_KUBE_BIN` if set, else built (or taken
/// from the cache) by `tools/kube/build.sh`, which prints its progress.
pub fn kube_bin_dir() -> Result<PathBuf> {
    static DIR: std::sync::Mutex<Option<PathBuf>> = std::sync::Mutex::new(None);
    let mut cached = DIR.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(dir) = cached.as_ref() {
        return Ok(dir.clone());
    }
    let dir = build_kube_bins()?;
    *cached = Some(dir.clone());
    Ok(dir)
}

fn build_kube_bins() -> Result<PathBuf> {
    if let Ok(dir) = std::env::var("IRONLB_KUBE_BIN") {
        return Ok(PathBuf::from(dir));
    }
    let script = crate::components::checkout_path("tools/kube/build.sh");
    let out = Command::new("bash")
        .arg(&script)
        .stdin(Stdio::null())
        .stderr(Stdio::inherit())
        .output()
        .with_context(|| format!("running {}", script.display()))?;
    if !out.status.success() {
        bail!("{} failed ({})", script.display(), out.status);
    }
    let stdout = String::from_utf8_lossy(&out.stdout);
    let dir = stdout.lines().last().unwrap_or_default().trim().to_string();
    if dir.is_empty() {
        bail!("{} printed no binary directory", script.display());
    }
    Ok(PathBuf::from(dir))
}

/// Starts the lab's egress proxy (`programs/egress.rs`) inside network namespace `netns`,
/// listening on `socket` and connecting only into `allowed` (CIDRs of the lab).
pub fn start_egress_proxy(dir: &Path, netns: &str, socket: &Path, allowed: &[&str]) -> Result<()> {
    let d = Daemon::new(dir, "egress");
    if d.is_running() {
        return Ok(());
    }
    let program = crate::images::lab_program("egress")?;
    let program = program.display().to_string();
    let socket = socket.display().to_string();
    let mut args = vec![program.as_str(), socket.as_str()];
    args.extend_from_slice(allowed);
    d.start(in_netns(netns, &args))
}

/// The control plane of one lab.
#[derive(Debug, Clone)]
pub struct ControlPlane {
    /// The lab's directory (logs, pid files, data, pki).
    pub dir: PathBuf,
    /// The directory with kube-apiserver, etcd, …
    pub bin: PathBuf,
    /// The address the API server listens on and advertises (the host end of the mgmt link).
    pub address: std::net::Ipv4Addr,
    /// The lab's slot, which picks etcd's loopback ports.
    pub slot: u8,
}

impl ControlPlane {
    /// `https://<address>:6443`.
    pub fn server_url(&self) -> String {
        format!("https://{}:{}", self.address, API_PORT)
    }

    /// The admin kubeconfig's path.
    pub fn admin_kubeconfig(&self) -> PathBuf {
        self.dir.join("kubeconfig")
    }

    fn etcd_ports(&self) -> (u16, u16) {
        let base = 32379 + 2 * u16::from(self.slot);
        (base, base + 1)
    }

    /// The daemons, in start order.
    pub fn daemons(&self) -> Vec<Daemon> {
        [
            "etcd",
            "kube-apiserver",
            "kube-controller-manager",
            "kube-scheduler",
        ]
        .iter()
        .map(|n| Daemon::new(&self.dir, n))
        .collect()
    }

    /// The Unix socket of the egress proxy the API server reaches the lab's network through.
    pub fn egress_socket(&self) -> PathBuf {
        self.dir.join("egress.sock")
    }

    /// Starts whatever is not running and waits until the API server is ready and the
    /// `default` namespace and ServiceAccount exist.
    pub fn start(&self, progress: &mut Progress) -> Result<()> {
        let pki = Pki::new(&self.dir);
        let kubelet_client = self.write_credentials(&pki)?;
        let egress_config = self.write_egress_config()?;
        progress.step("certificates and kubeconfigs ready");

        let etcd = self.ensure_daemon("etcd", || self.etcd_command())?;
        let apiserver = self.ensure_daemon("kube-apiserver", || {
            self.apiserver_command(&pki, &egress_config, kubelet_client)
        })?;
        progress.step("etcd and kube-apiserver started");
        self.wait_ready(&apiserver, &etcd, Duration::from_secs(90))?;
        progress.step("kube-apiserver ready");

        self.ensure_daemon("kube-controller-manager", || {
            self.controller_manager_command(&pki)
        })?;
        self.ensure_daemon("kube-scheduler", || {
            self.component_command("kube-scheduler", "scheduler")
        })?;
        progress.step("controller-manager and scheduler started");
        Ok(())
    }

    /// The daemon `name`, started with `command()` unless it is running already.
    fn ensure_daemon(&self, name: &str, command: impl FnOnce() -> Command) -> Result<Daemon> {
        let daemon = Daemon::new(&self.dir, name);
        if !daemon.is_running() {
            daemon.start(command())?;
        }
        Ok(daemon)
    }

    /// The certificates and every client's kubeconfig. Returns whether the API server has its
    /// client certificate towards kubelets (logs, exec): system:masters passes their webhook
    /// authorization. A PKI from before the CA key was kept goes without.
    fn write_credentials(&self, pki: &Pki) -> Result<bool> {
        pki.ensure(&[
            std::net::IpAddr::V4(self.address),
            "127.0.0.1".parse()?,
            KUBERNETES_SERVICE_IP.parse()?,
        ])?;
        for client in CLIENTS {
            let path = self.dir.join(match client.file {
                "admin" => "kubeconfig".to_string(),
                other => format!("{other}.kubeconfig"),
            });
            std::fs::write(&path, pki.kubeconfig(&client, &self.server_url())?)?;
        }
        Ok(pki
            .ensure_client(
                "apiserver-kubelet-client",
                "kube-apiserver-kubelet-client",
                Some("system:masters"),
            )
            .is_ok())
    }

    /// The API server's egress selector configuration: the `cluster` network through the
    /// egress proxy's socket. Returns its path.
    fn write_egress_config(&self) -> Result<PathBuf> {
        let path = self.dir.join("egress-selector.json");
        std::fs::write(
            &path,
            serde_json::to_vec_pretty(&serde_json::json!({
                "apiVersion": "apiserver.k8s.io/v1beta1",
                "kind": "EgressSelectorConfiguration",
                "egressSelections": [{
                    "name": "cluster",
                    "connection": {
                        "proxyProtocol": "HTTPConnect",
                        "transport": {"uds": {"udsName": self.egress_socket()}},
                    },
                }],
            }))?,
        )?;
        Ok(path)
    }

    /// etcd on loopback, on the lab slot's ports, without fsync (the lab's data is disposable).
    fn etcd_command(&self) -> Command {
        let (client_port, peer_port) = self.etcd_ports();
        let data = self.dir.join("etcd-data");
        let mut cmd = Command::new(self.bin.join("etcd"));
        cmd.args([
            "--name=lab",
            &format!("--data-dir={}", data.display()),
            &format!("--listen-client-urls=http://127.0.0.1:{client_port}"),
            &format!("--advertise-client-urls=http://127.0.0.1:{client_port}"),
            &format!("--listen-peer-urls=http://127.0.0.1:{peer_port}"),
            &format!("--initial-advertise-peer-urls=http://127.0.0.1:{peer_port}"),
            &format!("--initial-cluster=lab=http://127.0.0.1:{peer_port}"),
            "--unsafe-no-fsync",
            "--log-level=warn",
        ]);
        cmd
    }

    fn apiserver_command(&self, pki: &Pki, egress_config: &Path, kubelet_client: bool) -> Command {
        let (client_port, _) = self.etcd_ports();
        let p = |f: &str| pki.path(f).display().to_string();
        let mut cmd = Command::new(self.bin.join("kube-apiserver"));
        cmd.args([
            format!("--etcd-servers=http://127.0.0.1:{client_port}"),
            format!("--bind-address={}", self.address),
            format!("--advertise-address={}", self.address),
            format!("--secure-port={API_PORT}"),
            format!("--tls-cert-file={}", p("apiserver.crt")),
            format!("--tls-private-key-file={}", p("apiserver.key")),
            format!("--client-ca-file={}", p("ca.crt")),
            format!("--service-account-key-file={}", p("sa.pub")),
            format!("--service-account-signing-key-file={}", p("sa.key")),
            "--service-account-issuer=https://kubernetes.default.svc.cluster.local".into(),
            format!("--service-cluster-ip-range={SERVICE_CIDR},{SERVICE_CIDR_V6}"),
            // Node first: a real node's kubelet (system:node:<name>) may touch only its
            // own Node and the Pods, Secrets and ConfigMaps bound to it, as in a cluster.
            "--authorization-mode=Node,RBAC".into(),
            "--enable-admission-plugins=NodeRestriction".into(),
            "--allow-privileged=true".into(),
            format!("--egress-selector-config-file={}", egress_config.display()),
            // By address, never by name: a name would be looked up in the host's DNS.
            "--kubelet-preferred-address-types=InternalIP".into(),
            "--profiling=false".into(),
            format!("--cert-dir={}", self.dir.join("apiserver-certs").display()),
            "--v=0".into(),
        ]);
        if kubelet_client {
            cmd.args([
                format!(
                    "--kubelet-client-certificate={}",
                    p("apiserver-kubelet-client.crt")
                ),
                format!("--kubelet-client-key={}", p("apiserver-kubelet-client.key")),
            ]);
        }
        cmd
    }

    /// A controller-manager or scheduler: its kubeconfig (`<name>.kubeconfig`), the management
    /// address, no leader election (one of each).
    fn component_command(&self, binary: &str, kubeconfig: &str) -> Command {
        let mut cmd = Command::new(self.bin.join(binary));
        cmd.args([
            format!(
                "--kubeconfig={}",
                self.dir.join(format!("{kubeconfig}.kubeconfig")).display()
            ),
            format!("--bind-address={}", self.address),
            "--leader-elect=false".into(),
            "--v=0".into(),
        ]);
        cmd
    }

    fn controller_manager_command(&self, pki: &Pki) -> Command {
        let mut cmd = self.component_command("kube-controller-manager", "controller-manager");
        cmd.args([
            format!(
                "--service-account-private-key-file={}",
                pki.path("sa.key").display()
            ),
            format!("--root-ca-file={}", pki.path("ca.crt").display()),
            "--use-service-account-credentials=true".into(),
            // The lab is its own kubelet; NotReady pods are evicted after this long.
            "--node-monitor-grace-period=40s".into(),
        ]);
        cmd
    }

    /// Polls `/readyz` with the admin credentials until it answers ok.
    fn wait_ready(&self, apiserver: &Daemon, etcd: &Daemon, limit: Duration) -> Result<()> {
        let start = Instant::now();
        loop {
            etcd.ensure_running()?;
            apiserver.ensure_running()?;
            if self.kubectl_ok(&["get", "--raw", "/readyz"]) {
                return Ok(());
            }
            if start.elapsed() > limit {
                bail!(
                    "kube-apiserver not ready after {limit:?}; log tail:\n{}",
                    crate::proc::log_tail(&apiserver.log_file, 20)
                );
            }
            std::thread::sleep(Duration::from_millis(250));
        }
    }

    /// `kubectl` against this control plane as admin.
    pub fn kubectl(&self) -> Command {
        let mut cmd = Command::new(self.bin.join("kubectl"));
        cmd.arg(format!(
            "--kubeconfig={}",
            self.admin_kubeconfig().display()
        ));
        cmd
    }

    fn kubectl_ok(&self, args: &[&str]) -> bool {
        self.kubectl()
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    }

    /// Stops every daemon (reverse order).
    pub fn stop(&self) {
        for d in self.daemons().iter().rev() {
            d.stop(Duration::from_secs(3));
        }
    }
}
