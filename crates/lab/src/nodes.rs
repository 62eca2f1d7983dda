//! Real nodes: each node namespace runs what a Kubernetes node runs — containerd with runc and
//! the CNI bridge, a kubelet and kube-proxy in nftables mode — each with state of its own, so
//! several nodes share the machine without seeing each other's Pods.
//!
//! ```text
//!   host (mount namespace and cgroups shared; only the network is per node)
//!   └─ node<i> network namespace, entered with `nsenter --net` only
//!        containerd  <lab>/node<i>/containerd/{root,state}  socket <lab>/node<i>/containerd.sock
//!          runc (root <lab>/node<i>/runc)   CNI bridge cni0 10.244.<i>.1/24, host-local IPAM
//!        kubelet     --root-dir <lab>/node<i>/kubelet   cgroupRoot /ilb-<lab>-node<i>
//!                    identity system:node:node<i> (group system:nodes), from the lab's CA
//!        kube-proxy  nftables mode, identity system:kube-proxy
//!        routes      10.244.<j>.0/24 via 10.0.0.(230+j) for every other node j
//!        nft table   ilb-lab: 10.200.0.1:443 (Service `kubernetes`) -> the API server, and
//!                    what leaves through mgmt0 (towards the host) is masqueraded
//! ```
//!
//! Why it is set up this way is in the shared `notes/real-nodes.md`: `ip netns exec` would
//! remount /sys and hide the cgroups, root here cannot lower an oom_score_adj (containerd
//! clamps it), and crun refuses the hybrid cgroup layout. Teardown ([`teardown`]) stops the daemons, deletes the
//! containers, kills whatever is left in the node's cgroups, unmounts everything under the
//! node's directory and removes its cgroups, so nothing outlives the lab.

use crate::images::{self, ImageArchive};
use crate::network::Topology;
use crate::pki::Pki;
use crate::proc::{Daemon, run, run_in};
use crate::progress::Progress;
use anyhow::{Context, Result, bail};
use k8s_openapi::api::core::v1::Node;
use kube::Client;
use kube::api::{Api, ListParams, Patch, PatchParams};
use serde_json::json;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

/// Every node's Pod CIDR lies in here (kube-proxy's `clusterCIDR`).
pub const CLUSTER_CIDR: &str = "10.244.0.0/16";
/// Where the CNI plugins are (Debian's `containernetworking-plugins`).
pub const CNI_BIN_DIR: &str = "/usr/lib/cni";
/// The PATH the node daemons run with (kube-proxy needs `nft`, the kubelet `mount`).
const DAEMON_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
/// Where the kubelet links every container's log, whatever its `podLogsDir` (hard-coded).
const CONTAINER_LOG_LINKS: &str = "/var/log/containers";
/// Where libcni caches results on the host (containerd 1.6 cannot move it).
const CNI_CACHE_RESULTS: &str = "/var/lib/cni/results";
/// Where containerd 1.6's shims put their sockets (hard-coded).
const SHIM_SOCKETS: &str = "/run/containerd/s";
/// How long `up` waits for every kubelet to report its Node Ready.
const READY_LIMIT: Duration = Duration::from_secs(180);
/// The field manager of what the lab writes into Node objects.
const MANAGER: &str = "ironlb-lab";

/// Node `i`'s Pod CIDR (1-based): 10.244.<i>.0/24.
pub fn pod_cidr(i: u8) -> String {
    format!("10.244.{i}.0/24")
}

/// Everything one real node keeps, all under `<lab>/node<i>/`.
#[derive(Debug, Clone)]
pub struct NodePaths {
    /// `node<i>`.
    pub name: String,
    /// 1-based index.
    pub index: u8,
    /// The node's network namespace.
    pub netns: String,
    /// `<lab>/node<i>`: pid files, logs, configs, and all state below.
    pub dir: PathBuf,
    /// containerd's gRPC socket.
    pub socket: PathBuf,
    /// The cgroup (in every hierarchy) under which the kubelet puts the node's Pods.
    pub cgroup_root: String,
}

impl NodePaths {
    /// The paths of node `i` of the lab in `lab_dir`.
    pub fn new(lab_dir: &Path, topo: &Topology, i: u8) -> NodePaths {
        let name = format!("node{i}");
        let dir = lab_dir.join(&name);
        NodePaths {
            netns: topo.netns(&name),
            socket: dir.join("containerd.sock"),
            cgroup_root: format!("/{}", topo.netns(&name)),
            name,
            index: i,
            dir,
        }
    }

    /// `ctr` against this node's containerd, in the namespace the kubelet uses.
    fn ctr(&self, args: &[&str]) -> Result<String> {
        let socket = self.socket.display().to_string();
        let mut all = vec![
            "--address",
            &socket,
            "--namespace",
            "k8s.io",
            "--timeout",
            "5s",
        ];
        all.extend_from_slice(args);
        run("ctr", &all)
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.dir.join(rel)
    }

    fn daemon(&self, name: &str) -> Daemon {
        Daemon::new(&self.dir, name)
    }

    /// The CNI network's name; unique per node and lab, so libcni's host-wide cache files
    /// can be told apart at teardown.
    fn network_name(&self) -> String {
        self.netns.clone()
    }
}

/// containerd's configuration for one node: its own root, state and socket, runc, the lab's
/// sandbox image, the node's CNI directory, and `restrict_oom_score_adj` (root here lacks
/// CAP_SYS_RESOURCE, so the kubelet's -998 for sandboxes would make runc fail).
pub fn containerd_config(p: &NodePaths) -> String {
    let d = |rel: &str| p.path(rel).display().to_string();
    format!(
        r#"# Written by ironlb-lab for {name}: everything this containerd keeps lives under {dir}.
version = 2
root = "{root}"
state = "{state}"
# The opt plugin would create /opt/containerd on the host; the other snapshotters are unused.
disabled_plugins = ["io.containerd.internal.v1.opt", "io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper"]

[grpc]
  address = "{socket}"

[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "{pause}"
  restrict_oom_score_adj = true
  # Pod network namespaces under this node's state, not in the host's /run/netns.
  netns_mounts_under_state_dir = true
  [plugins."io.containerd.grpc.v1.cri".containerd]
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
        Root = "{runc}"
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "{CNI_BIN_DIR}"
    conf_dir = "{cni}"
"#,
        name = p.name,
        dir = p.dir.display(),
        root = d("containerd/root"),
        state = d("containerd/state"),
        socket = p.socket.display(),
        pause = images::PAUSE_IMAGE,
        runc = d("runc"),
        cni = d("cni/net.d"),
    )
}

/// The node's CNI network: a bridge `cni0` that is the Pods' default gateway, addresses from
/// the node's Pod CIDR (IPAM state kept under the node's directory, not /var/lib/cni).
pub fn cni_config(p: &NodePaths) -> serde_json::Value {
    let cidr = pod_cidr(p.index);
    json!({
        "cniVersion": "1.0.0",
        "name": p.network_name(),
        "plugins": [{
            "type": "bridge",
            "bridge": "cni0",
            "isGateway": true,
            "isDefaultGateway": true,
            // A Pod reaching its own Service through kube-proxy comes back over the bridge.
            "hairpinMode": true,
            "ipam": {
                "type": "host-local",
                "ranges": [[{"subnet": cidr, "gateway": format!("10.244.{}.1", p.index)}]],
                "dataDir": p.path("cni/ipam"),
            },
        }],
    })
}

/// The kubelet's configuration (see `notes/real-nodes.md` for why each setting is needed).
pub fn kubelet_config(p: &NodePaths, client_ca: &Path) -> serde_json::Value {
    json!({
        "apiVersion": "kubelet.config.k8s.io/v1beta1",
        "kind": "KubeletConfiguration",
        "cgroupDriver": "cgroupfs",
        "cgroupRoot": p.cgroup_root,
        "cgroupsPerQOS": true,
        "enforceNodeAllocatable": [],
        "failSwapOn": false,
        "failCgroupV1": false,
        "protectKernelDefaults": false,
        "makeIPTablesUtilChains": false,
        "port": 10250,
        "healthzPort": 10248,
        "healthzBindAddress": "127.0.0.1",
        "readOnlyPort": 0,
        "containerRuntimeEndpoint": format!("unix://{}", p.socket.display()),
        // Nothing can be pulled back once evicted or collected.
        "evictionHard": {},
        "imageGCHighThresholdPercent": 100,
        "podLogsDir": p.path("pod-logs"),
        // No DNS server in the lab: Pods get a resolv.conf without nameservers.
        "resolvConf": p.path("resolv.conf"),
        "clusterDomain": "cluster.local",
        "rotateCertificates": false,
        "serializeImagePulls": false,
        "authentication": {
            "anonymous": {"enabled": false},
            "webhook": {"enabled": true},
            "x509": {"clientCAFile": client_ca},
        },
        "authorization": {"mode": "Webhook"},
    })
}

/// kube-proxy's configuration: nftables mode, leaving the host's conntrack settings alone
/// (`maxPerCore: 0` and zero timeouts mean "do not touch").
pub fn kube_proxy_config(p: &NodePaths) -> serde_json::Value {
    json!({
        "apiVersion": "kubeproxy.config.k8s.io/v1alpha1",
        "kind": "KubeProxyConfiguration",
        "mode": "nftables",
        "clientConnection": {"kubeconfig": p.path("kube-proxy.kubeconfig")},
        "hostnameOverride": p.name,
        "clusterCIDR": CLUSTER_CIDR,
        "conntrack": {
            "maxPerCore": 0,
            "tcpEstablishedTimeout": "0s",
            "tcpCloseWaitTimeout": "0s",
        },
        "metricsBindAddress": "127.0.0.1:10249",
        "healthzBindAddress": "0.0.0.0:10256",
    })
}

/// The lab's own nftables table in a node namespace.
///
/// The `kubernetes` Service: the API server listens on the host end of the management link, a
/// link-local address, which the API refuses in Endpoints ("may not be in the link-local
/// range"), so the Service has no endpoints and kube-proxy rejects connections to it. In-cluster
/// clients (a controller Pod, a hostNetwork speaker) need it, so the lab plays its endpoint:
/// 10.200.0.1:443 is sent to the API server before kube-proxy's chains (priority -110 and
/// later) see the packet.
///
/// Whatever leaves through mgmt0 towards the host (those same connections from Pods) is
/// masqueraded to the node's link-local address, the only one the host knows: no lab address
/// ever reaches the host namespace.
fn lab_ruleset(api: std::net::Ipv4Addr, api_port: u16) -> String {
    let service = crate::controlplane::KUBERNETES_SERVICE_IP;
    let dnat = format!("ip daddr {service} tcp dport 443 dnat to {api}:{api_port}");
    // Declaring then flushing the table makes loading it again idempotent.
    format!(
        "table ip ilb-lab {{}}\nflush table ip ilb-lab\ntable ip ilb-lab {{
  chain api-prerouting {{
    type nat hook prerouting priority -150; policy accept;
    {dnat}
  }}
  chain api-output {{
    type nat hook output priority -150; policy accept;
    {dnat}
  }}
  chain postrouting {{
    type nat hook postrouting priority srcnat + 10; policy accept;
    oifname \"mgmt0\" ip saddr != 169.254.0.0/16 masquerade
  }}
}}
"
    )
}

/// A command that runs `program` in `netns` with only the network namespace entered: `ip
/// netns exec` would also remount /sys, and the kubelet and runc would no longer find the
/// cgroup mounts.
fn in_net_only(netns: &str, program: &Path, args: &[String]) -> Command {
    let mut cmd = Command::new("nsenter");
    cmd.arg(format!("--net=/run/netns/{netns}"))
        .arg("--")
        .arg(program)
        .args(args)
        .env("PATH", DAEMON_PATH);
    cmd
}

/// Brings up (or completes) real nodes in every node namespace of `lab` and waits until every
/// Node is Ready. Steps already done are skipped, so this is idempotent.
pub fn start(lab: &crate::Lab, progress: &mut Progress) -> Result<()> {
    let topo = &lab.topo;
    let node_bin = &lab.control_plane.bin;
    let nodes: Vec<NodePaths> = (1..=topo.nodes)
        .map(|i| NodePaths::new(&lab.dir, topo, i))
        .collect();
    let archives = [images::pause_image()?, images::apps_image()?];
    progress.step("images built: pause (sandbox), apps:v1");

    let pki = Pki::new(&lab.dir);
    let server = lab.control_plane.server_url();
    for p in &nodes {
        prepare(p, &pki, &server, &lab.kubeconfig())?;
        let d = p.daemon("containerd");
        if !d.is_running() {
            let config = p.path("containerd.toml").display().to_string();
            d.start(in_net_only(
                &p.netns,
                Path::new("containerd"),
                &["--config".into(), config],
            ))?;
        }
    }
    for p in &nodes {
        wait_containerd(p)?;
        for archive in &archives {
            images::import(archive, &p.socket)?;
        }
    }
    progress.step(&format!(
        "containerd running on {} nodes, images imported",
        nodes.len()
    ));

    for p in &nodes {
        node_network(p, topo, lab.control_plane.address)?;
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let client = runtime.block_on(lab.client())?;
    runtime.block_on(register_pod_cidrs(&client, topo))?;
    for p in &nodes {
        start_kubelet(p, node_bin, topo)?;
        start_kube_proxy(p, node_bin)?;
    }
    progress.step("Pod CIDRs registered, routes set, kubelet and kube-proxy started");
    let runtime_version = runtime.block_on(wait_ready(&client, &nodes))?;
    progress.step(&format!("{} nodes Ready ({runtime_version})", nodes.len()));
    Ok(())
}

/// Imports `archive` into every real node's containerd of the lab in `lab_dir`.
pub fn import_everywhere(lab_dir: &Path, topo: &Topology, archive: &ImageArchive) -> Result<()> {
    for i in 1..=topo.nodes {
        images::import(archive, &NodePaths::new(lab_dir, topo, i).socket)?;
    }
    Ok(())
}

/// Directories, configuration files, client identities and cgroups of one node.
fn prepare(p: &NodePaths, pki: &Pki, server: &str, admin_kubeconfig: &Path) -> Result<()> {
    for rel in [
        "containerd/root",
        "containerd/state",
        "runc",
        "cni/net.d",
        "cni/ipam",
        "kubelet",
        "pod-logs",
    ] {
        std::fs::create_dir_all(p.path(rel))
            .with_context(|| format!("creating {}", p.path(rel).display()))?;
    }
    std::fs::write(p.path("containerd.toml"), containerd_config(p))?;
    std::fs::write(
        p.path("cni/net.d/10-lab.conflist"),
        serde_json::to_vec_pretty(&cni_config(p))?,
    )?;
    std::fs::write(p.path("resolv.conf"), "# the lab has no DNS server\n")?;
    std::fs::write(
        p.path("kubelet.json"),
        serde_json::to_vec_pretty(&kubelet_config(p, &pki.path("ca.crt")))?,
    )?;
    std::fs::write(
        p.path("kube-proxy.json"),
        serde_json::to_vec_pretty(&kube_proxy_config(p))?,
    )?;
    // The kubelet's own identity, so the Node authorizer and NodeRestriction judge it as they
    // would a real node's. A PKI from before the CA key was kept cannot issue it.
    let node_file = format!("node-{}", p.name);
    let kubelet_kubeconfig = match pki.ensure_client(
        &node_file,
        &format!("system:node:{}", p.name),
        Some("system:nodes"),
    ) {
        Ok(()) => pki.kubeconfig_for(&node_file, server)?,
        Err(e) => {
            tracing::warn!(node = %p.name, error = %e, "kubelet runs with the admin kubeconfig");
            std::fs::read_to_string(admin_kubeconfig)?
        }
    };
    std::fs::write(p.path("kubelet.kubeconfig"), kubelet_kubeconfig)?;
    // The default RBAC binds system:node-proxier to this user.
    let proxy_kubeconfig = match pki.ensure_client("kube-proxy", "system:kube-proxy", None) {
        Ok(()) => pki.kubeconfig_for("kube-proxy", server)?,
        Err(_) => std::fs::read_to_string(admin_kubeconfig)?,
    };
    std::fs::write(p.path("kube-proxy.kubeconfig"), proxy_kubeconfig)?;
    create_cgroups(&p.cgroup_root)
}

/// Waits until containerd answers on its socket.
fn wait_containerd(p: &NodePaths) -> Result<()> {
    let d = p.daemon("containerd");
    let socket = p.socket.display().to_string();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        d.ensure_running()?;
        if run("ctr", &["--address", &socket, "version"]).is_ok() {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!(
                "containerd on {} not answering after 30 s; log tail:\n{}",
                p.name,
                crate::proc::log_tail(&d.log_file, 20)
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Forwarding, routes to every other node's Pods, and the lab's nftables table.
fn node_network(p: &NodePaths, topo: &Topology, api: std::net::Ipv4Addr) -> Result<()> {
    run_in(&p.netns, &["sysctl", "-q", "-w", "net.ipv4.ip_forward=1"])?;
    for (j, host) in (1u8..).zip(topo.node_hosts()) {
        if j == p.index {
            continue;
        }
        run(
            "ip",
            &[
                "-n",
                &p.netns,
                "route",
                "replace",
                &pod_cidr(j),
                "via",
                &host.ipv4.to_string(),
                "dev",
                "eth0",
            ],
        )?;
    }
    let rules = p.path("lab.nft");
    std::fs::write(&rules, lab_ruleset(api, crate::controlplane::API_PORT))?;
    run_in(&p.netns, &["nft", "-f", &rules.display().to_string()])?;
    Ok(())
}

/// Gives every Node its Pod CIDR before its kubelet registers it (the kubelet keeps an
/// existing Node's spec), so `spec.podCIDR` and the node's CNI range always agree.
pub async fn register_pod_cidrs(client: &Client, topo: &Topology) -> Result<()> {
    let nodes: Api<Node> = Api::all(client.clone());
    for (i, host) in (1u8..).zip(topo.node_hosts()) {
        let node = json!({
            "apiVersion": "v1", "kind": "Node",
            "metadata": {"name": host.name},
            "spec": {"podCIDR": pod_cidr(i), "podCIDRs": [pod_cidr(i)]},
        });
        nodes
            .patch(
                &host.name,
                &PatchParams::apply(MANAGER).force(),
                &Patch::Apply(&node),
            )
            .await
            .with_context(|| format!("setting the Pod CIDR of {}", host.name))?;
    }
    Ok(())
}

fn start_kubelet(p: &NodePaths, node_bin: &Path, topo: &Topology) -> Result<()> {
    let d = p.daemon("kubelet");
    if d.is_running() {
        return Ok(());
    }
    let host = topo.node(p.index);
    let arg = |flag: &str, rel: &str| format!("--{flag}={}", p.path(rel).display());
    d.start(in_net_only(
        &p.netns,
        &node_bin.join("kubelet"),
        &[
            arg("config", "kubelet.json"),
            arg("kubeconfig", "kubelet.kubeconfig"),
            arg("root-dir", "kubelet"),
            // The default (/var/lib/kubelet/pki) is not derived from --root-dir.
            arg("cert-dir", "kubelet/pki"),
            format!("--hostname-override={}", p.name),
            format!("--node-ip={},{}", host.ipv4, host.ipv6),
            "--v=0".into(),
        ],
    ))
}

fn start_kube_proxy(p: &NodePaths, node_bin: &Path) -> Result<()> {
    let d = p.daemon("kube-proxy");
    if d.is_running() {
        return Ok(());
    }
    d.start(in_net_only(
        &p.netns,
        &node_bin.join("kube-proxy"),
        &[
            format!("--config={}", p.path("kube-proxy.json").display()),
            "--v=0".into(),
        ],
    ))
}

/// Waits until every node's kubelet reports its Node Ready; returns the runtime version.
async fn wait_ready(client: &Client, nodes: &[NodePaths]) -> Result<String> {
    let api: Api<Node> = Api::all(client.clone());
    let deadline = tokio::time::Instant::now() + READY_LIMIT;
    loop {
        for p in nodes {
            for name in ["containerd", "kubelet", "kube-proxy"] {
                p.daemon(name).ensure_running()?;
            }
        }
        let list = api.list(&ListParams::default()).await?;
        let mut waiting = Vec::new();
        let mut runtime = String::new();
        for p in nodes {
            let node = list
                .items
                .iter()
                .find(|n| n.metadata.name.as_deref() == Some(&p.name));
            let status = node.and_then(|n| n.status.as_ref());
            let version = status
                .and_then(|s| s.node_info.as_ref())
                .map(|i| i.container_runtime_version.clone())
                .unwrap_or_default();
            let ready = status
                .and_then(|s| s.conditions.as_ref())
                .and_then(|cs| cs.iter().find(|c| c.type_ == "Ready"));
            match ready {
                Some(c) if c.status == "True" && version.starts_with("containerd://") => {
                    runtime = version;
                }
                Some(c) => waiting.push(format!(
                    "{}: Ready={} {}",
                    p.name,
                    c.status,
                    c.message.clone().unwrap_or_default()
                )),
                None => waiting.push(format!("{}: not registered by its kubelet yet", p.name)),
            }
        }
        if waiting.is_empty() {
            return Ok(runtime);
        }
        if tokio::time::Instant::now() > deadline {
            let logs: Vec<String> = nodes
                .iter()
                .map(|p| {
                    let log = &p.daemon("kubelet").log_file;
                    format!(
                        "{} ({}):\n{}",
                        p.name,
                        log.display(),
                        crate::proc::log_tail(log, 8)
                    )
                })
                .collect();
            bail!(
                "nodes not Ready after {READY_LIMIT:?}: {}\n{}",
                waiting.join("; "),
                logs.join("\n")
            );
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

// ---------------------------------------------------------------------------------------------
// cgroups and mounts

/// The mount points of the cgroup hierarchies (v1 controllers and the unified v2 one).
fn cgroup_hierarchies() -> Vec<PathBuf> {
    let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    mounts(&info)
        .into_iter()
        .filter(|(_, fstype)| fstype == "cgroup" || fstype == "cgroup2")
        .map(|(point, _)| PathBuf::from(point))
        .collect()
}

/// (mount point, filesystem type) of every line of a mountinfo text, in order.
fn mounts(mountinfo: &str) -> Vec<(String, String)> {
    mountinfo
        .lines()
        .filter_map(|line| {
            let (left, right) = line.split_once(" - ")?;
            let point = left.split(' ').nth(4)?;
            let fstype = right.split(' ').next()?;
            Some((unescape_mount_path(point), fstype.to_string()))
        })
        .collect()
}

/// mountinfo writes space, tab, newline and backslash as `\ooo` octal escapes.
fn unescape_mount_path(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let octal = bytes
            .get(i + 1..i + 4)
            .filter(|d| bytes[i] == b'\\' && d.iter().all(|c| (b'0'..=b'7').contains(c)))
            .and_then(|d| u8::from_str_radix(std::str::from_utf8(d).ok()?, 8).ok());
        match octal {
            Some(b) => {
                out.push(b);
                i += 4;
            }
            None => {
                out.push(bytes[i]);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The mount points at or under `dir`, deepest (latest mounted) first.
pub fn mounts_under(dir: &Path) -> Vec<PathBuf> {
    let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let mut found: Vec<PathBuf> = mounts(&info)
        .into_iter()
        .map(|(point, _)| PathBuf::from(point))
        .filter(|point| point.starts_with(dir))
        .collect();
    found.reverse();
    found
}

/// Detaches every mount at or under `dir` (pod volumes, container root filesystems, Pod
/// network namespaces, the kubelet's own bind mount of its root directory).
fn unmount_under(dir: &Path) {
    use nix::mount::{MntFlags, umount2};
    for _ in 0..5 {
        let points = mounts_under(dir);
        if points.is_empty() {
            return;
        }
        for point in points {
            let _ = umount2(&point, MntFlags::MNT_DETACH);
        }
    }
}

/// Creates the node's cgroup root in every hierarchy; the kubelet refuses to start without it.
fn create_cgroups(root: &str) -> Result<()> {
    let rel = root.trim_start_matches('/');
    for hierarchy in cgroup_hierarchies() {
        let dir = hierarchy.join(rel);
        if dir.exists() {
            continue;
        }
        std::fs::create_dir(&dir).with_context(|| format!("creating cgroup {}", dir.display()))?;
        // A new cpuset starts with no CPUs and no memory nodes, and then takes no tasks.
        for file in ["cpuset.cpus", "cpuset.mems"] {
            if let Ok(value) = std::fs::read_to_string(hierarchy.join(file)) {
                let _ = std::fs::write(dir.join(file), value.trim());
            }
        }
    }
    Ok(())
}

/// Every directory of the cgroup tree at `dir`, deepest first.
fn cgroup_tree(dir: &Path) -> Vec<PathBuf> {
    let mut all = vec![dir.to_path_buf()];
    let mut i = 0;
    while i < all.len() {
        if let Ok(entries) = std::fs::read_dir(&all[i]) {
            for e in entries.flatten() {
                if e.file_type().is_ok_and(|t| t.is_dir()) {
                    all.push(e.path());
                }
            }
        }
        i += 1;
    }
    all.reverse();
    all
}

/// The processes in the cgroup tree `root` of any hierarchy.
fn cgroup_pids(root: &str) -> Vec<i32> {
    let rel = root.trim_start_matches('/');
    let mut pids = Vec::new();
    for hierarchy in cgroup_hierarchies() {
        let top = hierarchy.join(rel);
        if !top.exists() {
            continue;
        }
        for dir in cgroup_tree(&top) {
            if let Ok(procs) = std::fs::read_to_string(dir.join("cgroup.procs")) {
                pids.extend(procs.lines().filter_map(|l| l.trim().parse::<i32>().ok()));
            }
        }
    }
    pids.sort_unstable();
    pids.dedup();
    pids
}

/// Kills every process in the cgroup tree `root` (the node's containers) and removes the tree
/// in every hierarchy, innermost directories first.
fn remove_cgroups(root: &str) {
    use nix::sys::signal::{Signal, kill};
    use nix::unistd::Pid;
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let pids = cgroup_pids(root);
        if pids.is_empty() || Instant::now() > deadline {
            break;
        }
        for pid in pids {
            let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let rel = root.trim_start_matches('/');
    for hierarchy in cgroup_hierarchies() {
        let top = hierarchy.join(rel);
        if !top.exists() {
            continue;
        }
        // A cgroup whose last task just died can refuse removal for a moment.
        for _ in 0..20 {
            for dir in cgroup_tree(&top) {
                let _ = std::fs::remove_dir(&dir);
            }
            if !top.exists() {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// The cgroup directories of `root` that exist, in any hierarchy.
fn existing_cgroups(root: &str) -> Vec<PathBuf> {
    let rel = root.trim_start_matches('/');
    cgroup_hierarchies()
        .into_iter()
        .map(|h| h.join(rel))
        .filter(|d| d.exists())
        .collect()
}

// ---------------------------------------------------------------------------------------------
// teardown

/// Stops node `p`'s containers gracefully through containerd, so the shims clean up after
/// themselves (their sockets live in the host's /run/containerd/s).
fn delete_tasks(p: &NodePaths) {
    if !p.daemon("containerd").is_running() {
        return;
    }
    let Ok(tasks) = p.ctr(&["tasks", "ls", "--quiet"]) else {
        return;
    };
    let ids: Vec<&str> = tasks.split_whitespace().collect();
    for id in &ids {
        let _ = p.ctr(&["tasks", "kill", "--all", "--signal", "SIGKILL", id]);
    }
    for id in &ids {
        let _ = p.ctr(&["tasks", "delete", "--force", id]);
    }
}

/// `kill -9` of every process of container `id` on node `i`, through its containerd (as a
/// crash would: the kubelet sees the container exit and restarts it).
pub fn kill_container(lab_dir: &Path, topo: &Topology, i: u8, id: &str) -> Result<()> {
    NodePaths::new(lab_dir, topo, i)
        .ctr(&["tasks", "kill", "--all", "--signal", "SIGKILL", id])
        .map(|_| ())
}

/// The container ids containerd still has task state for (killed without being deleted).
fn leftover_task_ids(p: &NodePaths) -> Vec<String> {
    std::fs::read_dir(p.path("containerd/state/io.containerd.runtime.v2.task/k8s.io"))
        .map(|dir| {
            dir.flatten()
                .filter_map(|e| e.file_name().into_string().ok())
                .collect()
        })
        .unwrap_or_default()
}

/// The host-wide socket path containerd 1.6's shim of container `id` listens on:
/// /run/containerd/s/<sha256 of "<containerd address>/<namespace>/<id>">.
fn shim_socket(p: &NodePaths, id: &str) -> PathBuf {
    use sha2::{Digest, Sha256};
    let digest = Sha256::digest(format!("{}/k8s.io/{id}", p.socket.display()).as_bytes());
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    Path::new(SHIM_SOCKETS).join(hex)
}

/// The ids of the Pod sandboxes containerd's CRI plugin knows on node `p`.
fn sandbox_ids(p: &NodePaths) -> Vec<String> {
    std::fs::read_dir(p.path("containerd/root/io.containerd.grpc.v1.cri/sandboxes"))
        .map(|dir| {
            dir.flatten()
                .filter_map(|e| e.file_name().into_string().ok())
                .collect()
        })
        .unwrap_or_default()
}

/// Host files that name this node's things: the kubelet's log links and libcni's cache
/// (`<network>-<sandbox id>-<interface>`: the node's bridge network, and the loopback network
/// containerd adds to every sandbox, which is named the same on every node).
fn host_files(p: &NodePaths) -> Vec<PathBuf> {
    let mut files = Vec::new();
    if let Ok(links) = std::fs::read_dir(CONTAINER_LOG_LINKS) {
        for link in links.flatten() {
            if std::fs::read_link(link.path()).is_ok_and(|target| target.starts_with(&p.dir)) {
                files.push(link.path());
            }
        }
    }
    if let Ok(results) = std::fs::read_dir(CNI_CACHE_RESULTS) {
        let prefix = format!("{}-", p.network_name());
        let sandboxes: Vec<String> = sandbox_ids(p).iter().map(|id| format!("-{id}-")).collect();
        for r in results.flatten() {
            let name = r.file_name().to_string_lossy().to_string();
            if name.starts_with(&prefix) || sandboxes.iter().any(|id| name.contains(id)) {
                files.push(r.path());
            }
        }
    }
    files
}

/// Stops and removes everything real nodes of the lab in `lab_dir` made: daemons, containers,
/// mounts, cgroups and the host files that name them. Safe on a lab without real nodes, a
/// half-built one, or one already torn down. The node namespaces themselves go later, with
/// the rest of the network.
pub fn teardown(lab_dir: &Path, topo: &Topology) {
    for i in 1..=topo.nodes {
        let p = NodePaths::new(lab_dir, topo, i);
        if !p.dir.exists() && existing_cgroups(&p.cgroup_root).is_empty() {
            continue;
        }
        // The kubelet first, or it would restart what is being stopped.
        p.daemon("kubelet").stop(Duration::from_secs(3));
        p.daemon("kube-proxy").stop(Duration::from_secs(2));
        delete_tasks(&p);
        p.daemon("containerd").stop(Duration::from_secs(3));
        // Shims (in the node's namespace) and containers (in the node's cgroups) that survived.
        crate::proc::kill_netns_processes(&p.netns);
        remove_cgroups(&p.cgroup_root);
        unmount_under(&p.dir);
        for id in leftover_task_ids(&p) {
            let _ = std::fs::remove_file(shim_socket(&p, &id));
        }
        for file in host_files(&p) {
            let _ = std::fs::remove_file(file);
        }
    }
    // /run/containerd/s itself stays: another lab's shim may be creating its socket there.
}

/// What real nodes of this lab left on the machine: processes naming the lab's directory
/// (containerd, kubelet, kube-proxy, shims), cgroups, mounts, and host files.
pub fn leftovers(lab_dir: &Path, topo: &Topology) -> Vec<String> {
    let mut left: Vec<String> = processes_naming(lab_dir)
        .into_iter()
        .map(|(pid, cmd)| format!("process {pid}: {cmd}"))
        .collect();
    for point in mounts_under(lab_dir) {
        left.push(format!("mount {}", point.display()));
    }
    for i in 1..=topo.nodes {
        let p = NodePaths::new(lab_dir, topo, i);
        for dir in existing_cgroups(&p.cgroup_root) {
            left.push(format!("cgroup {}", dir.display()));
        }
        for file in host_files(&p) {
            left.push(format!("file {}", file.display()));
        }
    }
    left
}

/// The network namespaces of the Pods (not hostNetwork) on real node `i`: enter one with
/// `nsenter --net=<file>` to send what a Pod sends.
pub fn pod_network_namespaces(lab_dir: &Path, topo: &Topology, i: u8) -> Vec<PathBuf> {
    let dir =
        NodePaths::new(lab_dir, topo, i).path("containerd/state/io.containerd.grpc.v1.cri/netns");
    std::fs::read_dir(dir)
        .map(|d| d.flatten().map(|e| e.path()).collect())
        .unwrap_or_default()
}

/// Every process that belongs to the real nodes of the lab in `lab_dir`: the daemons and
/// shims (their command lines name the lab's directory) and the containers (in the nodes'
/// cgroups).
pub fn processes(lab_dir: &Path, topo: &Topology) -> Vec<i32> {
    let mut pids: Vec<i32> = processes_naming(lab_dir)
        .into_iter()
        .map(|(pid, _)| pid)
        .collect();
    for i in 1..=topo.nodes {
        pids.extend(cgroup_pids(&NodePaths::new(lab_dir, topo, i).cgroup_root));
    }
    pids.sort_unstable();
    pids.dedup();
    pids
}

/// Live processes whose command line mentions `dir`, as (pid, command line).
pub fn processes_naming(dir: &Path) -> Vec<(i32, String)> {
    let needle = dir.display().to_string();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    let mut found = Vec::new();
    for e in entries.flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<i32>().ok()) else {
            continue;
        };
        let Ok(raw) = std::fs::read(e.path().join("cmdline")) else {
            continue;
        };
        let cmd = String::from_utf8_lossy(&raw).replace('\0', " ");
        if cmd.contains(&needle) && pid != std::process::id() as i32 && crate::proc::pid_alive(pid)
        {
            found.push((pid, cmd.trim().to_string()));
        }
    }
    found
}

/// For `down --all`: removes what real nodes of labs that are gone left behind — cgroups named
/// `ilb-*` (after killing their processes), mounts under the labs' root, and the kubelet's log
/// links into it.
pub fn sweep(lab_root: &Path) {
    let mut roots: Vec<String> = Vec::new();
    for hierarchy in cgroup_hierarchies() {
        if let Ok(entries) = std::fs::read_dir(&hierarchy) {
            for e in entries.flatten() {
                let name = e.file_name().to_string_lossy().to_string();
                if name.starts_with("ilb-") && e.path().is_dir() && !roots.contains(&name) {
                    roots.push(name);
                }
            }
        }
    }
    for root in roots {
        remove_cgroups(&format!("/{root}"));
    }
    unmount_under(lab_root);
    if let Ok(links) = std::fs::read_dir(CONTAINER_LOG_LINKS) {
        for link in links.flatten() {
            if std::fs::read_link(link.path()).is_ok_and(|t| t.starts_with(lab_root)) {
                let _ = std::fs::remove_file(link.path());
            }
        }
    }
    if let Ok(results) = std::fs::read_dir(CNI_CACHE_RESULTS) {
        for r in results.flatten() {
            if r.file_name().to_string_lossy().starts_with("ilb-") {
                let _ = std::fs::remove_file(r.path());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn paths() -> NodePaths {
        let topo = Topology {
            lab: "t".into(),
            slot: 0,
            nodes: 3,
        };
        NodePaths::new(Path::new("/run/ironlb-lab/t"), &topo, 2)
    }

    #[test]
    fn every_node_keeps_its_state_under_its_own_directory() {
        let p = paths();
        assert_eq!(p.dir, Path::new("/run/ironlb-lab/t/node2"));
        assert_eq!(p.cgroup_root, "/ilb-t-node2");
        let config = containerd_config(&p);
        for line in config.lines() {
            for key in ["root =", "state =", "address =", "Root =", "conf_dir ="] {
                if line.trim_start().starts_with(key) {
                    assert!(line.contains("/run/ironlb-lab/t/node2/"), "{line}");
                }
            }
        }
        assert!(config.contains("restrict_oom_score_adj = true"));
        assert!(config.contains(images::PAUSE_IMAGE));
        let kubelet = kubelet_config(&p, Path::new("/ca.crt"));
        assert_eq!(kubelet["cgroupRoot"], "/ilb-t-node2");
        assert_eq!(kubelet["podLogsDir"], "/run/ironlb-lab/t/node2/pod-logs");
        assert_eq!(
            kubelet["containerRuntimeEndpoint"],
            "unix:///run/ironlb-lab/t/node2/containerd.sock"
        );
    }

    #[test]
    fn the_cni_range_is_the_nodes_pod_cidr() {
        let cni = cni_config(&paths());
        let range = &cni["plugins"][0]["ipam"]["ranges"][0][0];
        assert_eq!(range["subnet"], "10.244.2.0/24");
        assert_eq!(range["gateway"], "10.244.2.1");
        assert_eq!(cni["name"], "ilb-t-node2");
        assert_eq!(
            cni["plugins"][0]["ipam"]["dataDir"],
            "/run/ironlb-lab/t/node2/cni/ipam"
        );
    }

    #[test]
    fn the_kubernetes_service_leads_to_the_api_server() {
        let rules = lab_ruleset(std::net::Ipv4Addr::new(169, 254, 103, 1), 6443);
        assert_eq!(
            rules
                .matches("ip daddr 10.200.0.1 tcp dport 443 dnat to 169.254.103.1:6443")
                .count(),
            2,
            "from Pods (prerouting) and from the node itself (output):\n{rules}"
        );
        assert!(rules.contains("oifname \"mgmt0\" ip saddr != 169.254.0.0/16 masquerade"));
    }

    #[test]
    fn kube_proxy_runs_nftables_and_leaves_conntrack_alone() {
        let c = kube_proxy_config(&paths());
        assert_eq!(c["mode"], "nftables");
        assert_eq!(c["conntrack"]["maxPerCore"], 0);
        assert_eq!(c["hostnameOverride"], "node2");
    }

    #[test]
    fn mountinfo_lines_are_parsed_and_unescaped() {
        let info = "36 35 98:0 / /mnt/with\\040space rw,noatime master:1 - ext3 /dev/root rw\n\
                    40 25 0:35 / /sys/fs/cgroup/memory rw shared:17 - cgroup cgroup rw,memory\n\
                    41 25 0:36 / /sys/fs/cgroup/unified rw - cgroup2 cgroup2 rw\n";
        assert_eq!(
            mounts(info),
            vec![
                ("/mnt/with space".to_string(), "ext3".to_string()),
                ("/sys/fs/cgroup/memory".to_string(), "cgroup".to_string()),
                ("/sys/fs/cgroup/unified".to_string(), "cgroup2".to_string()),
            ]
        );
        assert_eq!(unescape_mount_path("a\\134b\\011"), "a\\b\t");
        assert_eq!(unescape_mount_path("trailing\\"), "trailing\\");
    }

    #[test]
    fn shim_sockets_are_named_by_address_namespace_and_id() {
        let p = paths();
        let s = shim_socket(&p, "abc");
        assert!(s.starts_with(SHIM_SOCKETS));
        assert_eq!(s.file_name().map(|n| n.len()), Some(64));
        assert_ne!(s, shim_socket(&p, "abd"));
    }
}
