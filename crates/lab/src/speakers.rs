//! Running `ironlb speaker` in a lab as a DaemonSet would: one per node, inside the node's
//! network namespace, as the `speaker` ServiceAccount with exactly the RBAC in `deploy/speaker`.
//!
//! ```text
//!   deploy/controller/namespace.yaml, deploy/speaker/{serviceaccount,rbac,daemonset}.yaml --apply--> lab
//!   Secret metallb-system/memberlist (secretkey: random, created if missing) --> <lab>/speaker-memberlist/secretkey
//!   DaemonSet "speaker": the lab agent marks its Pods Running with the node IP (hostNetwork);
//!     the Pods only exist to own the ServiceL2Status objects and to tell who should be a member
//!   per node i:  ip netns exec ilb-<lab>-node<i>  ironlb speaker --kubeconfig <token> ...
//!     METALLB_NODE_NAME=node<i>  METALLB_POD_NAME=<its speaker Pod>  --ml-bindaddr 10.0.0.(230+i)
//!     as proc::Daemon "ironlb-speaker-node<i>"
//! ```
//!
//! Why `--interfaces-exclude mgmt0`: each lab node has `eth0` (the LAN), `kube-ipvs0` (NOARP, and
//! excluded by MetalLB's default list) and `mgmt0`, a veth whose far end is a bridge in the
//! *host* namespace, there only so the node reaches the API server. The generic interface rules
//! (up, ARP on, not a bridge/bond port, not a default-excluded name) accept mgmt0, and answering
//! or sending gratuitous ARP there would put lab frames on the host's bridge. A real cluster
//! excludes such a management link the same way.

use crate::Lab;
use crate::components::{
    NAMESPACE, apply_server_side, deploy_dir, long_token, write_token_kubeconfig,
};
use crate::proc::{Daemon, in_netns};
use anyhow::{Context, Result, bail};
use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::{Pod, Secret};
use kube::api::{Api, ListParams, PostParams};
use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

/// The speaker's ServiceAccount.
pub const SPEAKER_SERVICE_ACCOUNT: &str = "speaker";
/// The Secret holding the membership key (`secretkey`), as MetalLB names it.
pub const MEMBERLIST_SECRET: &str = "memberlist";
/// The label selector of the speaker Pods (`--ml-labels`).
pub const SPEAKER_LABELS: &str = "app=metallb,component=speaker";
/// The metrics port of every speaker (inside its node's namespace, on 127.0.0.1).
pub const SPEAKER_METRICS_PORT: u16 = 7472;

/// How to run the speakers.
#[derive(Debug, Clone)]
pub struct SpeakerOptions {
    /// The `ironlb` binary.
    pub binary: PathBuf,
    /// Run membership (with the memberlist key); without it every Node counts as live.
    pub membership: bool,
    /// More flags for `ironlb speaker`.
    pub extra_args: Vec<String>,
}

impl SpeakerOptions {
    /// Speakers from `binary`, with membership.
    pub fn new(binary: impl Into<PathBuf>) -> Self {
        SpeakerOptions {
            binary: binary.into(),
            membership: true,
            extra_args: Vec::new(),
        }
    }
}

/// One node's speaker.
#[derive(Debug, Clone)]
pub struct NodeSpeaker {
    /// `node<i>`.
    pub node: String,
    /// The node's network namespace.
    pub netns: String,
    /// The node's LAN IPv4 address (`--ml-bindaddr`).
    pub ipv4: std::net::Ipv4Addr,
    /// Its speaker Pod (`METALLB_POD_NAME`).
    pub pod: String,
    /// The process (pid, log).
    pub daemon: Daemon,
}

/// The speakers of a lab.
#[derive(Debug, Clone)]
pub struct Speakers {
    /// One per node, node1 first.
    pub nodes: Vec<NodeSpeaker>,
    /// The kubeconfig they use (the speaker ServiceAccount's token).
    pub kubeconfig: PathBuf,
    /// The memberlist key file.
    pub key_file: PathBuf,
    /// What they were started with.
    pub options: SpeakerOptions,
}

/// Applies the Namespace and `deploy/speaker` (ServiceAccount, RBAC, DaemonSet).
pub fn apply_speaker_manifests(lab: &Lab) -> Result<()> {
    let files = [
        deploy_dir().join("controller/namespace.yaml"),
        deploy_dir().join("speaker/serviceaccount.yaml"),
        deploy_dir().join("speaker/rbac.yaml"),
        deploy_dir().join("speaker/daemonset.yaml"),
    ];
    for file in files {
        let text = std::fs::read(&file).with_context(|| format!("reading {}", file.display()))?;
        apply_server_side(lab, &text).with_context(|| format!("applying {}", file.display()))?;
    }
    Ok(())
}

/// The memberlist key, creating the Secret with a random key if it is missing.
pub async fn ensure_memberlist_secret(lab: &Lab) -> Result<Vec<u8>> {
    use base64::Engine;
    let secrets: Api<Secret> = Api::namespaced(lab.client().await?, NAMESPACE);
    if let Some(s) = secrets.get_opt(MEMBERLIST_SECRET).await? {
        return s
            .data
            .and_then(|d| d.get("secretkey").map(|v| v.0.clone()))
            .context("Secret memberlist has no secretkey");
    }
    let mut raw = [0u8; 96];
    std::fs::File::open("/dev/urandom")?.read_exact(&mut raw)?;
    let key = base64::engine::general_purpose::STANDARD
        .encode(raw)
        .into_bytes();
    let secret = Secret {
        metadata: kube::api::ObjectMeta {
            name: Some(MEMBERLIST_SECRET.into()),
            namespace: Some(NAMESPACE.into()),
            ..Default::default()
        },
        data: Some(BTreeMap::from([(
            "secretkey".to_string(),
            ByteString(key.clone()),
        )])),
        ..Default::default()
    };
    match secrets.create(&PostParams::default(), &secret).await {
        Ok(_) => Ok(key),
        // Created meanwhile by someone else: use theirs.
        Err(kube::Error::Api(s)) if s.code == 409 => Box::pin(ensure_memberlist_secret(lab)).await,
        Err(e) => Err(e.into()),
    }
}

/// The Running speaker Pod of each node, waiting up to `timeout` for all of them.
pub async fn speaker_pods(lab: &Lab, timeout: Duration) -> Result<BTreeMap<String, String>> {
    let pods: Api<Pod> = Api::namespaced(lab.client().await?, NAMESPACE);
    let deadline = Instant::now() + timeout;
    loop {
        let list = pods
            .list(&ListParams::default().labels(SPEAKER_LABELS))
            .await?;
        let running: BTreeMap<String, String> = list
            .items
            .iter()
            .filter(|p| p.metadata.deletion_timestamp.is_none())
            .filter(|p| p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running"))
            .filter_map(|p| {
                Some((
                    p.spec.as_ref()?.node_name.clone()?,
                    p.metadata.name.clone()?,
                ))
            })
            .collect();
        if lab
            .topo
            .node_names()
            .iter()
            .all(|n| running.contains_key(n))
        {
            return Ok(running);
        }
        if Instant::now() > deadline {
            bail!("speaker Pods not Running on every node after {timeout:?}: {running:?}");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Starts one speaker per node with membership (see the module docs). The demo's entry point.
pub async fn start_speakers(lab: &Lab, ironlb_bin: &Path) -> Result<Speakers> {
    start_speakers_with(lab, SpeakerOptions::new(ironlb_bin)).await
}

/// Starts one speaker per node with these options.
pub async fn start_speakers_with(lab: &Lab, options: SpeakerOptions) -> Result<Speakers> {
    apply_speaker_manifests(lab)?;
    let key = ensure_memberlist_secret(lab).await?;
    let key_dir = lab.dir.join("speaker-memberlist");
    std::fs::create_dir_all(&key_dir)?;
    let key_file = key_dir.join("secretkey");
    std::fs::write(&key_file, &key)?;
    let token = long_token(lab, NAMESPACE, SPEAKER_SERVICE_ACCOUNT, 86_400).await?;
    let kubeconfig = lab.dir.join("ironlb-speaker.kubeconfig");
    write_token_kubeconfig(
        lab,
        &kubeconfig,
        "system:serviceaccount:metallb-system:speaker",
        &token,
    )?;
    let pods = speaker_pods(lab, Duration::from_secs(30)).await?;
    let nodes = lab
        .topo
        .node_hosts()
        .into_iter()
        .map(|h| NodeSpeaker {
            pod: pods.get(&h.name).cloned().unwrap_or_default(),
            daemon: Daemon::new(&lab.dir, &format!("ironlb-speaker-{}", h.name)),
            node: h.name,
            netns: h.netns,
            ipv4: h.ipv4,
        })
        .collect();
    let speakers = Speakers {
        nodes,
        kubeconfig,
        key_file,
        options,
    };
    for i in 1..=speakers.nodes.len() {
        speakers.start(i)?;
    }
    for i in 1..=speakers.nodes.len() {
        speakers.wait_healthy(i, Duration::from_secs(20)).await?;
    }
    Ok(speakers)
}

impl Speakers {
    /// Node `i`'s speaker (1-based).
    pub fn node(&self, i: usize) -> Result<&NodeSpeaker> {
        self.nodes
            .get(i.wrapping_sub(1))
            .with_context(|| format!("no speaker for node{i}"))
    }

    /// The speaker of the node called `name`.
    pub fn by_name(&self, name: &str) -> Result<&NodeSpeaker> {
        self.nodes
            .iter()
            .find(|n| n.node == name)
            .with_context(|| format!("no speaker for {name}"))
    }

    /// Starts node `i`'s speaker (again); does nothing if it runs.
    pub fn start(&self, i: usize) -> Result<()> {
        let n = self.node(i)?;
        let bin = self.options.binary.to_string_lossy().to_string();
        let kubeconfig = self.kubeconfig.to_string_lossy().to_string();
        let port = SPEAKER_METRICS_PORT.to_string();
        let ip = n.ipv4.to_string();
        let mut args: Vec<&str> = vec![
            &bin,
            "speaker",
            "--kubeconfig",
            &kubeconfig,
            "--namespace",
            NAMESPACE,
            "--host",
            "127.0.0.1",
            "--port",
            &port,
            "--ml-bindaddr",
            &ip,
            "--ml-labels",
            SPEAKER_LABELS,
            "--interfaces-exclude",
            "mgmt0",
            // The tests read the speakers' logs as text lines.
            "--log-format",
            "text",
        ];
        let key = self.key_file.to_string_lossy().to_string();
        if self.options.membership {
            args.extend(["--ml-secret-key-path", &key]);
        }
        args.extend(self.options.extra_args.iter().map(String::as_str));
        let mut cmd: Command = in_netns(&n.netns, &args);
        cmd.env_remove("KUBECONFIG")
            .env("METALLB_NODE_NAME", &n.node)
            .env("METALLB_POD_NAME", &n.pod)
            .env("RUST_LOG", "info,kube=warn");
        n.daemon.start(cmd)
    }

    /// `kill -9` of node `i`'s speaker (a crash: no membership leave).
    pub fn kill(&self, i: usize) -> Result<()> {
        let n = self.node(i)?;
        let pid = n.daemon.pid().context("speaker not running")?;
        let pid = nix::unistd::Pid::from_raw(pid);
        let _ = nix::sys::signal::killpg(pid, nix::sys::signal::Signal::SIGKILL);
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL);
        n.daemon.stop(Duration::ZERO);
        Ok(())
    }

    /// Stops node `i`'s speaker with SIGTERM (it leaves the membership gracefully).
    pub fn stop(&self, i: usize) -> Result<()> {
        self.node(i)?.daemon.stop(Duration::from_secs(3));
        Ok(())
    }

    /// Kills node `i`'s speaker if it runs, then starts it again and waits until it serves.
    pub async fn restart(&self, i: usize) -> Result<()> {
        if self.node(i)?.daemon.is_running() {
            self.kill(i)?;
        }
        self.start(i)?;
        self.wait_healthy(i, Duration::from_secs(20)).await
    }

    /// GET `path` from node `i`'s speaker (inside its namespace).
    pub fn http_get(&self, i: usize, path: &str) -> Result<String> {
        let n = self.node(i)?;
        let url = format!("http://127.0.0.1:{SPEAKER_METRICS_PORT}{path}");
        crate::proc::run_in(&n.netns, &["curl", "-sf", "-m", "2", &url])
    }

    /// Node `i`'s `/metrics`.
    pub fn metrics(&self, i: usize) -> Result<String> {
        self.http_get(i, "/metrics")
    }

    /// Waits until node `i`'s speaker answers `/healthz` (fails early if it exits).
    pub async fn wait_healthy(&self, i: usize, timeout: Duration) -> Result<()> {
        let n = self.node(i)?;
        let deadline = Instant::now() + timeout;
        loop {
            n.daemon.ensure_running()?;
            if self.http_get(i, "/healthz").is_ok() {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!(
                    "speaker on {} not healthy after {timeout:?}; log:\n{}",
                    n.node,
                    crate::proc::log_tail(&n.daemon.log_file, 20)
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}
