//! The ironlb lab: a real Kubernetes control plane and a real LAN on one machine.
//!
//! ```text
//!   Lab ── ControlPlane (etcd, kube-apiserver, controller-manager, scheduler; tools/kube builds)
//!     ├─── Topology     (network namespaces: node1..N, client, router, ext-client, lan switch)
//!     ├─── Router       (FRR | BIRD | GoBGP in the router namespace)
//!     └─── either agent (plays kubelet: Nodes, Leases, Pods Ready, Service addresses on nodes)
//!          or nodes     (real nodes: containerd + runc + CNI bridge, kubelet, kube-proxy
//!                        nftables; images from `images`, imported into each node)
//! ```
//!
//! The kubelet imitation (the default) starts in seconds and runs no containers: the tests of
//! ironlb's own logic use it for speed. [`LabOptions::real_nodes`] runs real Pods instead, for
//! what only real nodes show (kube-proxy forwarding, installs from manifests, the demo).
//!
//! The `ironlb-lab` binary and the end-to-end tests use the same [`Lab`]. A lab started from a
//! test ([`Lab::start`]) has a unique name and is torn down when dropped, also when the test
//! panics; `ironlb-lab down --all` cleans up after a process that was killed.

pub mod agent;
pub mod components;
pub mod controlplane;
pub mod demo;
pub mod images;
pub mod install;
pub mod network;
pub mod nodes;
pub mod pki;
pub mod proc;
pub mod progress;
pub mod router;
pub mod speakers;
pub mod testing;

use anyhow::{Context, Result, bail};
pub use controlplane::ControlPlane;
use k8s_openapi::api::core::v1::ServiceAccount;
use kube::Client;
use kube::api::{Api, Patch, PatchParams, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
pub use network::{Host, Topology};
pub use progress::Progress;
pub use router::{Router, RouterKind};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::process::Output;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

/// Where labs keep their state: `$IRONLB_LAB_ROOT` or `/run/ironlb-lab`.
pub fn lab_root() -> PathBuf {
    std::env::var_os("IRONLB_LAB_ROOT")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/run/ironlb-lab"))
}

/// Where built artefacts are cached across labs and checkouts (`$IRONLB_CACHE`, else
/// `$XDG_CACHE_HOME/ironlb` or `~/.cache/ironlb`), as `tools/kube/build.sh` has it.
pub fn cache_root() -> PathBuf {
    if let Some(dir) = std::env::var_os("IRONLB_CACHE") {
        return PathBuf::from(dir);
    }
    let base = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
        .unwrap_or_else(|| PathBuf::from("/var/cache"));
    base.join("ironlb")
}

/// What to build.
#[derive(Debug, Clone)]
pub struct LabOptions {
    /// The lab's name (namespaces are `ilb-<name>-*`); letters, digits and `-`, at most 12.
    pub name: String,
    /// Number of nodes (1..=20).
    pub nodes: u8,
    /// The routing daemon in the router namespace.
    pub router: RouterKind,
    /// Print no progress lines.
    pub quiet: bool,
    /// The lab belongs to this process (tests): once the process is gone, `down --stale`
    /// removes it.
    pub owned_by_process: bool,
    /// Real nodes (containerd, kubelet, kube-proxy in every node namespace) instead of the
    /// kubelet imitation.
    pub real_nodes: bool,
}

impl Default for LabOptions {
    fn default() -> Self {
        LabOptions {
            name: "lab".into(),
            nodes: 3,
            router: RouterKind::Frr,
            quiet: false,
            owned_by_process: false,
            real_nodes: false,
        }
    }
}

impl LabOptions {
    /// Options for a test: a name unique to this process and call, quiet.
    pub fn for_test() -> Self {
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        LabOptions {
            name: format!("t{}x{n}", std::process::id() % 100_000),
            quiet: true,
            owned_by_process: true,
            ..LabOptions::default()
        }
    }
}

/// What a later command needs to find a running lab again (`<dir>/lab.json`).
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Saved {
    name: String,
    slot: u8,
    nodes: u8,
    router: String,
    bin: PathBuf,
    /// The process that owns a test lab; such a lab is stale once that process is gone.
    #[serde(default)]
    owner: Option<u32>,
    /// Real nodes (kubelet, containerd, kube-proxy) rather than the kubelet imitation.
    #[serde(default)]
    real_nodes: bool,
}

/// A running lab.
pub struct Lab {
    /// The network.
    pub topo: Topology,
    /// `<root>/<name>`.
    pub dir: PathBuf,
    /// etcd and the Kubernetes components.
    pub control_plane: ControlPlane,
    /// The routing daemon.
    pub router: Router,
    /// Whether the nodes are real (kubelet, containerd, kube-proxy) or imitated.
    pub real_nodes: bool,
    agent: Option<AgentThread>,
    teardown_on_drop: bool,
}

impl std::fmt::Debug for Lab {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Lab")
            .field("name", &self.topo.lab)
            .field("dir", &self.dir)
            .finish()
    }
}

fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 12
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
}

/// Claims the lowest free slot (0..100) for `name` by creating `<root>/.slots/<k>` exclusively.
fn claim_slot(name: &str) -> Result<u8> {
    let slots = lab_root().join(".slots");
    std::fs::create_dir_all(&slots)?;
    let host_links = network::host_links();
    for k in 0..100u8 {
        // A namespace that outlived its lab (a process still inside) keeps its veths, and so
        // the host ends on its management bridge: such a slot is not free whatever the claims say.
        if network::slot_links(k, &host_links).next().is_some() {
            continue;
        }
        let path = slots.join(k.to_string());
        match std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)
        {
            Ok(_) => {
                std::fs::write(&path, name)?;
                return Ok(k);
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e).context("claiming a lab slot"),
        }
    }
    bail!("all 100 lab slots are taken: run `ironlb-lab down --all`")
}

impl Lab {
    /// Brings the lab up, or completes a half-built one: every step that is already done is
    /// skipped. Nodes are registered before this returns. The kubelet imitation (agent) is not
    /// started: [`Lab::start`] runs it in-process, the CLI as a daemon.
    pub fn up(opts: &LabOptions) -> Result<Lab> {
        if !valid_name(&opts.name) {
            bail!("lab name {:?}: use 1-12 letters, digits or '-'", opts.name);
        }
        let mut progress = if opts.quiet {
            Progress::quiet("lab")
        } else {
            Progress::new("lab")
        };
        let dir = lab_root().join(&opts.name);
        std::fs::create_dir_all(&dir)
            .with_context(|| format!("creating {} (the lab needs root)", dir.display()))?;
        let saved_path = dir.join("lab.json");
        let saved: Option<Saved> = std::fs::read(&saved_path)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok());
        if let Some(s) = &saved
            && s.real_nodes != opts.real_nodes
        {
            bail!(
                "lab {:?} was built {} real nodes: `ironlb-lab down --name {}` first",
                opts.name,
                if s.real_nodes { "with" } else { "without" },
                opts.name
            );
        }
        let slot = match &saved {
            Some(s) => s.slot,
            None => claim_slot(&opts.name)?,
        };
        let topo = Topology {
            lab: opts.name.clone(),
            slot,
            nodes: opts.nodes,
        };
        let bin = match saved.as_ref().map(|s| s.bin.clone()) {
            Some(bin) if bin.join("kube-apiserver").exists() && bin.join("kubelet").exists() => bin,
            _ => controlplane::kube_bin_dir()?,
        };
        std::fs::write(
            &saved_path,
            serde_json::to_vec_pretty(&Saved {
                name: opts.name.clone(),
                slot,
                nodes: opts.nodes,
                router: opts.router.to_string(),
                bin: bin.clone(),
                owner: saved
                    .as_ref()
                    .map_or(opts.owned_by_process.then(std::process::id), |s| s.owner),
                real_nodes: opts.real_nodes,
            })?,
        )?;
        progress.step("kubernetes binaries ready");
        let mut lab = Lab::assemble(topo, dir, bin, opts.router, opts.real_nodes);
        // From here on a failure tears down what was built.
        lab.teardown_on_drop = true;
        lab.topo.create()?;
        progress.step(&format!(
            "network: {} nodes, client, router, ext-client",
            opts.nodes
        ));
        controlplane::start_egress_proxy(
            &lab.dir,
            &lab.topo.netns("node1"),
            &lab.control_plane.egress_socket(),
            &[
                network::LAN_V4,
                network::LAN_V6,
                nodes::CLUSTER_CIDR,
                controlplane::SERVICE_CIDR,
                controlplane::SERVICE_CIDR_V6,
            ],
        )?;
        lab.control_plane.start(&mut progress)?;
        lab.router.start(&lab.topo)?;
        progress.step(&format!("router running {}", opts.router));
        if opts.real_nodes {
            // No node HTTP servers: real Pods answer on the nodes, and those would take their
            // ports.
            nodes::start(&lab, &mut progress)?;
        } else {
            router::start_node_httpds(&lab.dir, &lab.topo)?;
            progress.step("node HTTP servers listening on :80");
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            runtime.block_on(async {
                let client = lab.client().await?;
                agent::register_nodes(&client, &lab.topo).await
            })?;
            progress.step("nodes registered");
        }
        lab.teardown_on_drop = false;
        Ok(lab)
    }

    fn assemble(
        topo: Topology,
        dir: PathBuf,
        bin: PathBuf,
        router: RouterKind,
        real_nodes: bool,
    ) -> Lab {
        let control_plane = ControlPlane {
            dir: dir.clone(),
            bin,
            address: topo.mgmt_host_ip(),
            slot: topo.slot,
        };
        let router = Router::new(router, &dir, &topo);
        Lab {
            topo,
            dir,
            control_plane,
            router,
            real_nodes,
            agent: None,
            teardown_on_drop: false,
        }
    }

    /// Finds the lab called `name` that an earlier `up` built.
    pub fn open(name: &str) -> Result<Lab> {
        let dir = lab_root().join(name);
        let saved: Saved = serde_json::from_slice(
            &std::fs::read(dir.join("lab.json"))
                .with_context(|| format!("no lab {name:?} (run `ironlb-lab up`)"))?,
        )?;
        let router = match saved.router.as_str() {
            "bird" => RouterKind::Bird,
            "gobgp" => RouterKind::Gobgp,
            _ => RouterKind::Frr,
        };
        let topo = Topology {
            lab: saved.name,
            slot: saved.slot,
            nodes: saved.nodes,
        };
        Ok(Lab::assemble(
            topo,
            dir,
            saved.bin,
            router,
            saved.real_nodes,
        ))
    }

    /// For tests: brings up a lab with a unique name, runs the agent in this process (unless
    /// the nodes are real), and tears everything down when the returned value is dropped.
    pub async fn start(opts: LabOptions) -> Result<Lab> {
        tokio::task::spawn_blocking(down_stale).await?;
        let mut lab = tokio::task::spawn_blocking(move || Lab::up(&opts)).await??;
        lab.teardown_on_drop = true;
        if !lab.real_nodes {
            lab.agent = Some(AgentThread::spawn(
                lab.control_plane.admin_kubeconfig(),
                lab.topo.clone(),
            )?);
        }
        Ok(lab)
    }

    /// Imports an image archive (see [`images`]) into every real node's containerd.
    pub fn import_image(&self, archive: &images::ImageArchive) -> Result<()> {
        if !self.real_nodes {
            bail!(
                "lab {} imitates its kubelets and runs no containers",
                self.topo.lab
            );
        }
        nodes::import_everywhere(&self.dir, &self.topo, archive)
    }

    /// `kill -9` of container `id` (a containerd ID) on the real node `node` (`node2`).
    pub fn kill_container(&self, node: &str, id: &str) -> Result<()> {
        let i = node
            .strip_prefix("node")
            .and_then(|i| i.parse::<u8>().ok())
            .filter(|i| (1..=self.topo.nodes).contains(i))
            .with_context(|| format!("{node} is not a node of lab {}", self.topo.lab))?;
        if !self.real_nodes {
            bail!("lab {} runs no containers", self.topo.lab);
        }
        nodes::kill_container(&self.dir, &self.topo, i, id)
    }

    /// Starts the agent as a daemon of the lab (for `ironlb-lab up`): `exe agent --name <lab>`.
    pub fn start_agent_daemon(&self, exe: &Path) -> Result<()> {
        let d = proc::Daemon::new(&self.dir, "agent");
        let mut cmd = std::process::Command::new(exe);
        cmd.args(["agent", "--name", &self.topo.lab]);
        d.start(cmd)?;
        std::thread::sleep(Duration::from_millis(200));
        d.ensure_running()
    }

    /// The admin kubeconfig.
    pub fn kubeconfig(&self) -> PathBuf {
        self.control_plane.admin_kubeconfig()
    }

    /// A client with the admin's credentials (group system:masters).
    pub async fn client(&self) -> Result<Client> {
        let config = self.admin_config().await?;
        Ok(Client::try_from(config)?)
    }

    async fn admin_config(&self) -> Result<kube::Config> {
        let kubeconfig = Kubeconfig::read_from(self.kubeconfig())?;
        Ok(kube::Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default()).await?)
    }

    /// A client that authenticates as ServiceAccount `namespace/name` with a token from the
    /// TokenRequest API, exactly as a pod would. The ServiceAccount is created if missing; what
    /// it may do is up to RBAC.
    pub async fn client_for_service_account(&self, namespace: &str, name: &str) -> Result<Client> {
        let token = self.service_account_token(namespace, name).await?;
        let mut config = self.admin_config().await?;
        config.auth_info = kube::config::AuthInfo {
            token: Some(token.into()),
            ..Default::default()
        };
        Ok(Client::try_from(config)?)
    }

    /// A fresh token (1 h) for ServiceAccount `namespace/name`, creating the account if missing.
    pub async fn service_account_token(&self, namespace: &str, name: &str) -> Result<String> {
        let admin = self.client().await?;
        let sas: Api<ServiceAccount> = Api::namespaced(admin, namespace);
        let sa = serde_json::json!({
            "apiVersion": "v1", "kind": "ServiceAccount",
            "metadata": {"name": name, "namespace": namespace},
        });
        sas.patch(name, &PatchParams::apply("ironlb-lab"), &Patch::Apply(&sa))
            .await?;
        let request = serde_json::json!({
            "apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest",
            "spec": {"expirationSeconds": 3600},
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

    /// Runs `args` inside host `host`'s namespace (`node1`, `client`, `router`, `ext-client`).
    pub fn exec(&self, host: &str, args: &[&str]) -> Result<Output> {
        let h = self
            .topo
            .host(host)
            .with_context(|| format!("no host {host:?} in lab {}", self.topo.lab))?;
        Ok(proc::in_netns(&h.netns, args)
            .stdin(std::process::Stdio::null())
            .output()?)
    }

    /// Like [`Lab::exec`], but a non-zero exit is an error; returns stdout.
    pub fn exec_ok(&self, host: &str, args: &[&str]) -> Result<String> {
        let out = self.exec(host, args)?;
        proc::check(&format!("[{host}]"), args, out)
    }

    /// The MACs that answered `arping -c <count>` for `ip` sent from `host`'s eth0, one per
    /// answer, lower case (the lab's own view of who answers ARP for an address).
    pub fn arp_answers(&self, host: &str, ip: &str, count: u32) -> Result<Vec<String>> {
        let (count, wait) = (count.to_string(), (count + 1).to_string());
        let out = self.exec(
            host,
            &["arping", "-c", &count, "-w", &wait, "-i", "eth0", ip],
        )?;
        // "60 bytes from 02:1b:00:00:00:e7 (10.0.0.150): index=0 time=..."
        Ok(String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter(|l| l.contains("bytes from"))
            .filter_map(|l| l.split_whitespace().nth(3).map(str::to_lowercase))
            .collect())
    }

    /// The MACs in the Neighbor Advertisements `ndisc6` got for `ip` from `host`'s eth0
    /// (up to 3 solicitations, 1 s apart), lower case.
    pub fn ndp_answers(&self, host: &str, ip: &str) -> Result<Vec<String>> {
        let out = self.exec(
            host,
            &["ndisc6", "-m", "-n", "-r", "3", "-w", "1000", ip, "eth0"],
        )?;
        Ok(String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter(|l| l.contains("Target link-layer address"))
            .filter_map(|l| l.split_whitespace().last().map(str::to_lowercase))
            .collect())
    }

    /// `kubectl apply -f -` of `yaml` as admin; returns kubectl's stdout, or an error that
    /// carries its stderr (for a rejected object: the API server's or webhook's message).
    pub fn kubectl_apply(&self, yaml: &str) -> Result<String> {
        use std::io::Write;
        let mut child = self
            .kubectl()
            .args(["apply", "-f", "-"])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .context("starting kubectl")?;
        child
            .stdin
            .take()
            .context("kubectl's stdin")?
            .write_all(yaml.as_bytes())?;
        let out = child.wait_with_output()?;
        proc::check("kubectl", &["apply", "-f", "-"], out)
    }

    /// `kubectl` as admin against this lab.
    pub fn kubectl(&self) -> std::process::Command {
        self.control_plane.kubectl()
    }

    /// What is running: hosts with their interfaces, the API server, the router.
    pub fn status(&self) -> Result<serde_json::Value> {
        let mut hosts = serde_json::Map::new();
        for h in self.topo.hosts() {
            let links: serde_json::Value = proc::run("ip", &["-n", &h.netns, "-j", "addr", "show"])
                .ok()
                .and_then(|s| serde_json::from_str(&s).ok())
                .unwrap_or(serde_json::Value::Null);
            let interfaces: Vec<serde_json::Value> = links
                .as_array()
                .into_iter()
                .flatten()
                .filter(|l| l["ifname"] != "lo")
                .map(|l| {
                    let addrs: Vec<String> = l["addr_info"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .filter_map(|a| Some(format!("{}/{}", a["local"].as_str()?, a["prefixlen"])))
                        .collect();
                    serde_json::json!({"name": l["ifname"], "mac": l["address"], "addresses": addrs})
                })
                .collect();
            hosts.insert(
                h.name.clone(),
                serde_json::json!({
                    "netns": h.netns, "ipv4": h.ipv4, "ipv6": h.ipv6, "mac": h.mac,
                    "interfaces": interfaces,
                }),
            );
        }
        let router = self.topo.router();
        Ok(serde_json::json!({
            "name": self.topo.lab,
            "dir": self.dir,
            "kubeconfig": self.kubeconfig(),
            "apiServer": self.control_plane.server_url(),
            "nodes": self.topo.node_names(),
            "realNodes": self.real_nodes,
            "hosts": hosts,
            "router": {
                "kind": self.router.kind, "asn": network::ROUTER_ASN,
                "ipv4": router.ipv4, "ipv6": router.ipv6, "netns": router.netns,
            },
            "nodeAsn": network::NODE_ASN,
            "lan": {"ipv4": network::LAN_V4, "ipv6": network::LAN_V6},
            "controlPlane": self.control_plane.daemons().iter()
                .map(|d| (d.name.clone(), d.is_running())).collect::<std::collections::BTreeMap<_, _>>(),
        }))
    }

    /// Stops everything and removes every namespace, link, process and file of this lab.
    pub fn down(mut self) {
        self.teardown();
        self.teardown_on_drop = false;
    }

    fn teardown(&mut self) {
        if let Some(agent) = self.agent.take() {
            agent.stop();
        }
        // Real nodes first: their containers, mounts and cgroups need the daemons' state.
        nodes::teardown(&self.dir, &self.topo);
        // Daemons first (agent, httpds, router, control plane), then the namespaces.
        if let Ok(entries) = std::fs::read_dir(&self.dir) {
            for entry in entries.flatten() {
                let name = entry.file_name().to_string_lossy().to_string();
                let control_plane = [
                    "etcd",
                    "kube-apiserver",
                    "kube-controller-manager",
                    "kube-scheduler",
                ];
                match name.strip_suffix(".pid") {
                    Some(stem) if !control_plane.contains(&stem) => {
                        proc::Daemon::new(&self.dir, stem).stop(Duration::from_secs(2));
                    }
                    _ => {}
                }
            }
        }
        self.router.stop();
        self.control_plane.stop();
        self.topo.destroy();
        remove_lab_dir(&self.dir);
        let _ = std::fs::remove_file(lab_root().join(".slots").join(self.topo.slot.to_string()));
    }

    /// What of this lab still exists on the machine (namespaces, host links, processes, files).
    pub fn leftovers(&self) -> Vec<String> {
        let mut left = self.topo.leftovers();
        left.extend(nodes::leftovers(&self.dir, &self.topo));
        if self.dir.exists() {
            left.push(self.dir.display().to_string());
        }
        left
    }
}

/// Removes a lab's directory, unless something is still mounted below it: removing the files
/// of a Pod's hostPath volume would remove the host's own.
fn remove_lab_dir(dir: &Path) {
    let mounted = nodes::mounts_under(dir);
    if mounted.is_empty() {
        let _ = std::fs::remove_dir_all(dir);
    } else {
        tracing::error!(
            dir = %dir.display(),
            mounts = ?mounted,
            "still mounted below the lab directory: left in place"
        );
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        if self.teardown_on_drop {
            self.teardown();
        }
    }
}

/// Removes the test labs under [`lab_root`] whose owning process is gone (a test run that was
/// killed). Labs of live processes and labs started with `ironlb-lab up` are left alone.
pub fn down_stale() {
    let Ok(entries) = std::fs::read_dir(lab_root()) else {
        return;
    };
    for entry in entries.flatten() {
        let saved: Option<Saved> = std::fs::read(entry.path().join("lab.json"))
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok());
        let Some(saved) = saved else { continue };
        let stale = saved
            .owner
            .is_some_and(|pid| !i32::try_from(pid).is_ok_and(proc::pid_alive));
        if let (true, Ok(lab)) = (stale, Lab::open(&saved.name)) {
            lab.down();
        }
    }
}

/// Removes every lab under [`lab_root`] and any `ilb-*` namespace or `ilbm*` host link left
/// behind by a process that was killed.
pub fn down_all() {
    let root = lab_root();
    let mut unknown = Vec::new();
    if let Ok(entries) = std::fs::read_dir(&root) {
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().to_string();
            if name.starts_with('.') {
                continue;
            }
            match Lab::open(&name) {
                Ok(lab) => lab.down(),
                Err(_) => unknown.push(entry.path()),
            }
        }
    }
    for ns in network::netns_with_prefix("ilb-") {
        proc::kill_netns_processes(&ns);
    }
    // Containers of real nodes live in cgroups, not in the node namespaces.
    nodes::sweep(&root);
    for ns in network::netns_with_prefix("ilb-") {
        let _ = proc::run("ip", &["netns", "del", &ns]);
    }
    for dir in unknown {
        remove_lab_dir(&dir);
    }
    for name in network::host_links() {
        if name.starts_with("ilbm") {
            let _ = proc::run("ip", &["link", "del", &name]);
        }
    }
    let _ = std::fs::remove_dir_all(root.join(".slots"));
}

/// The agent running on its own thread and runtime, so it outlives no test and needs no
/// particular runtime flavour from the caller.
struct AgentThread {
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    handle: Option<std::thread::JoinHandle<()>>,
}

impl AgentThread {
    fn spawn(kubeconfig: PathBuf, topo: Topology) -> Result<Self> {
        let (stop, stopped) = tokio::sync::oneshot::channel();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let handle = std::thread::Builder::new()
            .name(format!("lab-agent-{}", topo.lab))
            .spawn(move || {
                runtime.block_on(async move {
                    let agent = async {
                        let kc = Kubeconfig::read_from(&kubeconfig)?;
                        let config =
                            kube::Config::from_custom_kubeconfig(kc, &KubeConfigOptions::default())
                                .await?;
                        agent::run(Client::try_from(config)?, topo).await
                    };
                    tokio::select! {
                        result = agent => if let Err(e) = result {
                            tracing::error!(error = %e, "lab agent stopped");
                        },
                        _ = stopped => {}
                    }
                });
            })?;
        Ok(AgentThread {
            stop: Some(stop),
            handle: Some(handle),
        })
    }

    fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(handle) = self.handle.take() {
            let _ = handle.join();
        }
    }
}
