//! ironlb installed on the lab's real nodes the way a MetalLB user installs MetalLB (the
//! walkthrough's steps 3-8), shared by `ironlb-lab demo` and the install tests:
//!
//! ```text
//!   static ironlb --buildah--> ironlb/ironlb:<tag> --ctr import--> node1..3 containerd
//!   kubectl apply -f deploy/ironlb-native.yaml   (lab: speaker --interfaces-exclude=mgmt0)
//!   rollout status deploy/controller, ds/speaker
//!   kubectl apply -f metallb-config.yaml, reference-scenario.yaml   (verbatim)
//!   svc-xiuxian-lb EXTERNAL-IP 10.0.0.150 --curl from client--> kube-proxy --> one of 5 Pods
//! ```
//!
//! Every wait here polls with a limit and returns an error naming what it waited for and the
//! last thing it saw.

use crate::{Lab, components, images, proc};
use anyhow::{Context, Result, bail};
use std::time::{Duration, Instant};

/// The walkthrough's Service address.
pub const WALKTHROUGH_IP: &str = "10.0.0.150";

/// Polls `check` every 300 ms until it returns `Ok`, for at most `limit`; the error names
/// `what` and the last failure.
pub fn wait_for<T>(
    what: &str,
    limit: Duration,
    mut check: impl FnMut() -> Result<T, String>,
) -> Result<T> {
    let start = Instant::now();
    loop {
        match check() {
            Ok(v) => return Ok(v),
            Err(e) if start.elapsed() >= limit => {
                bail!("{what}: not seen within {limit:?} (last: {e})")
            }
            Err(_) => std::thread::sleep(Duration::from_millis(300)),
        }
    }
}

/// `kubectl <args>` as admin; stdout, or kubectl's stderr as the error.
pub fn kubectl(lab: &Lab, args: &[&str]) -> Result<String, String> {
    let out = lab
        .kubectl()
        .args(args)
        .output()
        .map_err(|e| e.to_string())?;
    proc::check("kubectl", args, out).map_err(|e| format!("{e:#}"))
}

/// Builds ironlb's image (a static `ironlb`, tagged `ironlb/ironlb:<tag>`) and imports it
/// into every node's containerd; returns its size in bytes.
pub fn import_ironlb_image(lab: &Lab, tag: &str) -> Result<u64> {
    let binary = components::static_ironlb()?;
    let image = images::ironlb_image(&binary, tag)?;
    lab.import_image(&image)?;
    Ok(std::fs::metadata(&binary).map(|m| m.len()).unwrap_or(0))
}

/// `kubectl apply -f -` of `manifest` (the lab's copy of `deploy/ironlb-native.yaml`);
/// returns kubectl's lines (`namespace/metallb-system created`, …).
pub fn apply_manifest(lab: &Lab, manifest: &str) -> Result<String> {
    lab.kubectl_apply(manifest)
}

/// Waits for `kubectl rollout status` of `what` (e.g. `deploy/controller`, `ds/speaker`) in
/// `namespace`: every replica updated and available.
pub fn wait_rollout(lab: &Lab, namespace: &str, what: &str, limit: Duration) -> Result<()> {
    let timeout = format!("--timeout={}s", limit.as_secs().max(1));
    kubectl(lab, &["-n", namespace, "rollout", "status", what, &timeout])
        .map(|_| ())
        .map_err(|e| anyhow::anyhow!("rollout of {namespace}/{what}: {e}"))
}

/// Steps 4-8 of the walkthrough, its files applied as they are: the pool `linuxnet` and the
/// L2Advertisement `xixi`, then the Namespace `haha`, the Deployment and the Service. The
/// first is retried while the webhook's Service has no ready endpoint yet.
pub fn apply_walkthrough(lab: &Lab) -> Result<Vec<String>> {
    let demo = components::checkout_path("crates/lab/demo");
    let mut printed = Vec::new();
    for file in ["metallb-config.yaml", "reference-scenario.yaml"] {
        let path = demo.join(file);
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("reading {}", path.display()))?;
        let out = wait_for(
            &format!("kubectl apply -f {file}"),
            Duration::from_secs(60),
            || lab.kubectl_apply(&text).map_err(|e| format!("{e:#}")),
        )?;
        printed.push(out);
    }
    Ok(printed)
}

/// Waits until the Service `namespace/name` has an EXTERNAL-IP; returns it.
pub fn wait_external_ip(lab: &Lab, namespace: &str, name: &str, limit: Duration) -> Result<String> {
    wait_for(
        &format!("an EXTERNAL-IP for {namespace}/{name}"),
        limit,
        || {
            let ip = kubectl(
                lab,
                &[
                    "-n",
                    namespace,
                    "get",
                    "svc",
                    name,
                    "-o",
                    "jsonpath={.status.loadBalancer.ingress[*].ip}",
                ],
            )?;
            let ip = ip.trim();
            if ip.is_empty() {
                Err("none yet".into())
            } else {
                Ok(ip.to_string())
            }
        },
    )
}

/// Waits until `url`, fetched with curl from `client`, answers; returns the body.
pub fn wait_served(lab: &Lab, url: &str, limit: Duration) -> Result<String> {
    wait_for(&format!("curl {url} from client"), limit, || {
        lab.exec_ok("client", &["curl", "-s", "-S", "--max-time", "2", url])
            .map_err(|e| format!("{e:#}"))
    })
}

/// The containerd ID of the first container of the Pod selected by `selector` in `namespace`
/// on `node`, with its Pod's name and restart count.
pub fn container_on(
    lab: &Lab,
    namespace: &str,
    selector: &str,
    node: &str,
) -> Result<(String, String, u32)> {
    let field = format!("spec.nodeName={node}");
    let out = kubectl(
        lab,
        &[
            "-n",
            namespace,
            "get",
            "pod",
            "-l",
            selector,
            "--field-selector",
            &field,
            "-o",
            "jsonpath={.items[0].metadata.name} {.items[0].status.containerStatuses[0].containerID} {.items[0].status.containerStatuses[0].restartCount}",
        ],
    )
    .map_err(|e| anyhow::anyhow!("{e}"))?;
    let mut words = out.split_whitespace();
    let (Some(pod), Some(id), Some(restarts)) = (words.next(), words.next(), words.next()) else {
        bail!("no running Pod {selector} on {node}: {out:?}");
    };
    let id = id
        .strip_prefix("containerd://")
        .with_context(|| format!("{pod}: container {id} is not containerd's"))?;
    Ok((
        pod.to_string(),
        id.to_string(),
        restarts.parse().unwrap_or(0),
    ))
}

/// A shell loop run in a host of the lab, its stdout (lines `<unix time> <rest>`) logged to
/// `<lab>/<name>.txt`; killed with its process group when dropped.
pub struct ShellLoop {
    child: std::process::Child,
    log: std::path::PathBuf,
}

impl ShellLoop {
    /// Starts `sh -c script` in `host`'s namespace.
    pub fn start(lab: &Lab, host: &str, name: &str, script: &str) -> Result<ShellLoop> {
        use std::os::unix::process::CommandExt;
        let log = lab.dir.join(format!("{name}.txt"));
        let child = proc::in_netns(&lab.topo.netns(host), &["sh", "-c", script])
            .stdout(std::fs::File::create(&log)?)
            .stderr(std::process::Stdio::null())
            .process_group(0)
            .spawn()
            .with_context(|| format!("starting {name} in {host}"))?;
        Ok(ShellLoop { child, log })
    }

    /// A loop asking `url` with curl (1 s limit) every 50 ms; each line is the answer or
    /// `FAILED`.
    pub fn requests(lab: &Lab, host: &str, name: &str, url: &str) -> Result<ShellLoop> {
        let script = format!(
            "while :; do r=$(curl -s -m 1 {url} || echo FAILED); echo \"$(date +%s.%N) $r\"; sleep 0.05; done"
        );
        ShellLoop::start(lab, host, name, &script)
    }

    /// The lines so far, as (unix time, rest of the line).
    pub fn lines(&self) -> Vec<(f64, String)> {
        std::fs::read_to_string(&self.log)
            .unwrap_or_default()
            .lines()
            .filter_map(|l| {
                let (t, r) = l.split_once(' ')?;
                Some((t.parse().ok()?, r.trim().to_string()))
            })
            .collect()
    }

    /// The time of the first line at or after `since` (unix seconds) that reads `answer`.
    pub fn first_from(&self, answer: &str, since: f64) -> Option<f64> {
        self.lines()
            .into_iter()
            .find(|(t, r)| *t >= since && r == answer)
            .map(|(t, _)| t)
    }

    /// Of the requests logged at or after `since`: (sent, failed).
    pub fn failures_since(&self, since: f64) -> (usize, usize) {
        let lines: Vec<_> = self
            .lines()
            .into_iter()
            .filter(|(t, _)| *t >= since)
            .collect();
        let failed = lines
            .iter()
            .filter(|(_, r)| r == "FAILED" || r.is_empty())
            .count();
        (lines.len(), failed)
    }
}

impl Drop for ShellLoop {
    fn drop(&mut self) {
        if let Ok(pid) = i32::try_from(self.child.id()) {
            let _ = nix::sys::signal::killpg(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
        let _ = self.child.wait();
    }
}

/// Unix time now, in seconds.
pub fn unix_now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}
