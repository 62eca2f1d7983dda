//! What the tests and benches of every crate share when they drive a lab: waiting for a
//! condition, packet captures and raw frames in a lab host, LoadBalancer Services and the
//! addresses the lab puts on its nodes, the Events ironlb reports, and kubectl.
//!
//! ```text
//!   eventually(what, limit, check) -- check() every 200 ms --+-- true | Some(v) | Ok(v) --> v
//!                                                           +-- false | None | Err(why): again;
//!                                                               past limit: panic(what, why)
//!   create_service ........... wait_service_address    (the controller allocates)
//!   set_status_addresses ..... wait_kube_ipvs0         (the test plays the controller)
//!   events, wait_event                                 (metallb-controller, metallb-speaker)
//!   Capture (tcpdump), send_frames, arping, ndisc6     (the LAN, seen from a lab host)
//!   kubectl, kubectl_get_json, apply_ok                (as admin)
//! ```
//!
//! The helpers panic with a message instead of returning errors: a failed step fails the test.

use crate::Lab;
use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::events::v1::Event;
use kube::Client;
use kube::api::{Api, ListParams, Patch, PatchParams, PostParams};
use serde_json::{Value, json};
use std::path::PathBuf;
use std::process::{Child, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use tokio::time::Instant;

/// How often [`eventually`] checks.
const POLL: Duration = Duration::from_millis(200);

/// How long the Service and Event waits give the controller and the speakers.
pub const LIMIT: Duration = Duration::from_secs(20);

/// What one check of [`eventually`] found: done (with a value) or not yet (with why not).
pub trait Outcome {
    /// What [`eventually`] returns once the check passes.
    type Value;
    /// `Ok(value)` when done, `Err(why not yet)` otherwise.
    fn into_result(self) -> Result<Self::Value, String>;
}

impl Outcome for bool {
    type Value = ();
    fn into_result(self) -> Result<(), String> {
        if self { Ok(()) } else { Err("false".into()) }
    }
}

impl<T> Outcome for Option<T> {
    type Value = T;
    fn into_result(self) -> Result<T, String> {
        self.ok_or_else(|| "None".into())
    }
}

impl<T> Outcome for Result<T, String> {
    type Value = T;
    fn into_result(self) -> Result<T, String> {
        self
    }
}

/// Runs `check` every 200 ms until it passes (`true`, `Some(v)` or `Ok(v)`) and returns its
/// value, printing `[elapsed] what`; panics naming `what` and the last `Err` once `limit`
/// has passed.
pub async fn eventually<R: Outcome>(
    what: &str,
    limit: Duration,
    mut check: impl AsyncFnMut() -> R,
) -> R::Value {
    let start = Instant::now();
    loop {
        match check().await.into_result() {
            Ok(value) => {
                eprintln!("[{:6.1}s] {what}", start.elapsed().as_secs_f64());
                return value;
            }
            Err(last) => assert!(
                start.elapsed() < limit,
                "{what} not seen within {limit:?} (last: {last})"
            ),
        }
        tokio::time::sleep(POLL).await;
    }
}

/// [`eventually`] `get` returns `want`; the panic shows the last value it returned.
pub async fn eventually_eq<T, W>(
    what: &str,
    limit: Duration,
    want: &W,
    mut get: impl AsyncFnMut() -> T,
) where
    T: PartialEq<W> + std::fmt::Debug,
    W: std::fmt::Debug + ?Sized,
{
    eventually(&format!("{what}: {want:?}"), limit, async || {
        let got = get().await;
        if got == *want {
            Ok(())
        } else {
            Err(format!("{got:?}"))
        }
    })
    .await
}

/// A tcpdump on the eth0 of a lab host, writing what it sees to a file in the lab's directory
/// until dropped.
pub struct Capture {
    child: Child,
    file: PathBuf,
}

impl Capture {
    /// Starts capturing what `filter` (a tcpdump expression) selects, with MAC addresses.
    pub fn start(lab: &Lab, host: &str, filter: &str) -> Capture {
        Capture::start_with(lab, host, &[], filter)
    }

    /// The same with more tcpdump flags (e.g. `-tt` for unix timestamps).
    pub fn start_with(lab: &Lab, host: &str, flags: &[&str], filter: &str) -> Capture {
        static SEQ: AtomicUsize = AtomicUsize::new(0);
        let seq = SEQ.fetch_add(1, Ordering::Relaxed);
        let file = lab
            .dir
            .join(format!("tcpdump-{host}-{}-{seq}.txt", std::process::id()));
        let out = std::fs::File::create(&file)
            .unwrap_or_else(|e| panic!("creating {}: {e}", file.display()));
        let mut argv = vec!["tcpdump", "-l", "-U", "-n", "-e"];
        argv.extend_from_slice(flags);
        argv.extend_from_slice(&["-i", "eth0"]);
        argv.extend(filter.split_whitespace());
        let child = crate::proc::in_netns(&lab.topo.netns(host), &argv)
            .stdout(out)
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("starting tcpdump in {host}: {e}"));
        // tcpdump needs a moment to open its socket.
        std::thread::sleep(Duration::from_millis(700));
        Capture { child, file }
    }

    /// What it printed so far.
    pub fn text(&self) -> String {
        std::fs::read_to_string(&self.file).unwrap_or_default()
    }
}

impl Drop for Capture {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Sends raw Ethernet frames out of `host`'s eth0.
pub fn send_frames(lab: &Lab, host: &str, frames: Vec<Vec<u8>>) {
    send_frames_on(lab, host, "eth0", frames)
}

/// Sends raw Ethernet frames out of interface `iface` of the lab namespace `host` (`lan` is
/// the switch: its ports are named after the hosts they lead to), from a thread that enters
/// the namespace.
pub fn send_frames_on(lab: &Lab, host: &str, iface: &str, frames: Vec<Vec<u8>>) {
    use ironlb_sys::{link, netns, packet};
    let ns = lab.topo.netns(host);
    let iface = iface.to_string();
    let sent = std::thread::spawn(move || -> std::io::Result<()> {
        netns::enter_netns(&netns::named_netns_path(&ns))?;
        let index = link::interfaces()?
            .into_iter()
            .find(|i| i.name == iface)
            .ok_or_else(|| std::io::Error::other(format!("no interface {iface} in {ns}")))?
            .index;
        let socket = packet::PacketSocket::open(index, packet::Protocol::Arp)?;
        for f in frames {
            socket.send(&f)?;
        }
        Ok(())
    })
    .join()
    .expect("the frame sender does not panic");
    if let Err(e) = sent {
        panic!("sending frames from {host}: {e}");
    }
}

/// The MACs that answered `arping -c count` for `ip` from the client, one per answer.
pub fn arping(lab: &Lab, ip: &str, count: u32) -> Vec<String> {
    lab.arp_answers("client", ip, count)
        .unwrap_or_else(|e| panic!("arping {ip}: {e:#}"))
}

/// The MACs in the Neighbor Advertisements `ndisc6` got for `ip` from the client.
pub fn ndisc6(lab: &Lab, ip: &str) -> Vec<String> {
    lab.ndp_answers("client", ip)
        .unwrap_or_else(|e| panic!("ndisc6 {ip}: {e:#}"))
}

/// `kubectl args…` as admin; its stdout, or a panic quoting its stderr.
pub fn kubectl(lab: &Lab, args: &[&str]) -> String {
    let out = lab
        .kubectl()
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("running kubectl: {e}"));
    assert!(
        out.status.success(),
        "kubectl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// `kubectl get <resource> <name> -o json` in namespace `ns` as admin: the object, or kubectl's
/// error (e.g. not found, or not served in that version).
pub fn kubectl_get_json(lab: &Lab, ns: &str, resource: &str, name: &str) -> Result<Value, String> {
    let out = lab
        .kubectl()
        .args(["-n", ns, "get", resource, name, "-o", "json"])
        .output()
        .map_err(|e| format!("running kubectl: {e}"))?;
    if !out.status.success() {
        return Err(String::from_utf8_lossy(&out.stderr).into_owned());
    }
    serde_json::from_slice(&out.stdout).map_err(|e| format!("kubectl's JSON: {e}"))
}

/// `kubectl apply` of `yaml` as admin, panicking with kubectl's error and the manifest.
pub fn apply_ok(lab: &Lab, yaml: &str) {
    if let Err(e) = lab.kubectl_apply(yaml) {
        panic!("apply failed: {e:#}\n{yaml}");
    }
}

/// Merges `b` into `a`: objects key by key, anything else replaced (`null` too, which removes
/// an optional field once deserialized).
pub fn merge_json(a: &mut Value, b: &Value) {
    match (a, b) {
        (Value::Object(a), Value::Object(b)) => {
            for (k, v) in b {
                merge_json(a.entry(k.clone()).or_insert(Value::Null), v);
            }
        }
        (a, b) => *a = b.clone(),
    }
}

/// Creates the LoadBalancer Service `ns/name` with port `port`/TCP, selecting the Pods
/// labelled `app: name`; `extra` is merged into the object (e.g.
/// `{"metadata": {"annotations": {...}}, "spec": {...}}`).
pub async fn create_service(
    client: &Client,
    ns: &str,
    name: &str,
    port: u16,
    extra: Value,
) -> Service {
    let mut svc = json!({
        "apiVersion": "v1", "kind": "Service",
        "metadata": {"name": name, "namespace": ns},
        "spec": {"type": "LoadBalancer", "ports": [{"port": port, "protocol": "TCP"}],
                 "selector": {"app": name}},
    });
    merge_json(&mut svc, &extra);
    let svc: Service = serde_json::from_value(svc).expect("a Service");
    Api::namespaced(client.clone(), ns)
        .create(&PostParams::default(), &svc)
        .await
        .unwrap_or_else(|e| panic!("creating Service {ns}/{name}: {e}"))
}

/// The first `status.loadBalancer.ingress[*].ip` of a Service.
pub fn first_address(svc: &Service) -> Option<String> {
    svc.status
        .as_ref()?
        .load_balancer
        .as_ref()?
        .ingress
        .as_ref()?
        .iter()
        .find_map(|i| i.ip.clone())
}

/// Waits (up to [`LIMIT`]) until the Service `ns/name` has an address; returns the first.
pub async fn wait_service_address(client: &Client, ns: &str, name: &str) -> String {
    let api: Api<Service> = Api::namespaced(client.clone(), ns);
    eventually(&format!("{ns}/{name} has an address"), LIMIT, async || {
        let svc = api.get(name).await.map_err(|e| e.to_string())?;
        first_address(&svc).ok_or_else(|| format!("status {:?}", svc.status))
    })
    .await
}

/// Writes `ips` as the Service's `status.loadBalancer.ingress`, as a load balancer
/// controller would.
pub async fn set_status_addresses(client: &Client, ns: &str, name: &str, ips: &[&str]) {
    let ingress: Vec<Value> = ips.iter().map(|ip| json!({"ip": ip})).collect();
    let status = json!({"status": {"loadBalancer": {"ingress": ingress}}});
    Api::<Service>::namespaced(client.clone(), ns)
        .patch_status(name, &PatchParams::default(), &Patch::Merge(&status))
        .await
        .unwrap_or_else(|e| panic!("status of {ns}/{name}: {e}"));
}

/// Whether `ip` sits on `node`'s kube-ipvs0 (where the lab, as kube-proxy in IPVS mode
/// would, puts every LoadBalancer address, so that the node's HTTP server accepts it).
pub fn on_kube_ipvs0(lab: &Lab, node: &str, ip: &str) -> bool {
    lab.exec_ok(node, &["ip", "-o", "addr", "show", "dev", "kube-ipvs0"])
        .is_ok_and(|out| out.contains(&format!(" {ip}/")))
}

/// Waits until every node of the lab has each of `ips` on its kube-ipvs0.
pub async fn wait_kube_ipvs0(lab: &Lab, ips: &[&str], limit: Duration) {
    eventually(
        &format!("{ips:?} on every node's kube-ipvs0"),
        limit,
        async || {
            let nodes = lab.topo.node_names();
            let missing: Vec<&String> = nodes
                .iter()
                .filter(|n| !ips.iter().all(|ip| on_kube_ipvs0(lab, n, ip)))
                .collect();
            if missing.is_empty() {
                Ok(())
            } else {
                Err(format!("missing on {missing:?}"))
            }
        },
    )
    .await
}

/// An Event ironlb reported, as the tests compare it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReportedEvent {
    /// `Normal` or `Warning`.
    pub type_: String,
    /// MetalLB's reason, e.g. `IPAllocated`, `nodeAssigned`.
    pub reason: String,
    /// The message.
    pub note: String,
}

/// The Events ironlb (`metallb-controller`, `metallb-speaker`) reported about the object
/// `ns/name`. The API server's own Events (its ClusterIP repair loop may warn about a Service
/// created an instant earlier) are not ours and are left out.
pub async fn events(client: &Client, ns: &str, name: &str) -> Vec<ReportedEvent> {
    Api::<Event>::namespaced(client.clone(), ns)
        .list(&ListParams::default())
        .await
        .unwrap_or_else(|e| panic!("listing Events in {ns}: {e}"))
        .items
        .into_iter()
        .filter(|e| e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some(name))
        .filter(|e| {
            e.reporting_controller
                .as_deref()
                .is_some_and(|r| r.starts_with("metallb-"))
        })
        .map(|e| ReportedEvent {
            type_: e.type_.unwrap_or_default(),
            reason: e.reason.unwrap_or_default(),
            note: e.note.unwrap_or_default(),
        })
        .collect()
}

/// Waits (up to [`LIMIT`]) for an Event `reason` about `ns/name` whose note contains
/// `note_contains` (`""`: any note); returns the note.
pub async fn wait_event(
    client: &Client,
    ns: &str,
    name: &str,
    reason: &str,
    note_contains: &str,
) -> String {
    eventually(
        &format!("Event {reason} about {ns}/{name} containing {note_contains:?}"),
        LIMIT,
        async || {
            let notes: Vec<String> = events(client, ns, name)
                .await
                .into_iter()
                .filter(|e| e.reason == reason)
                .map(|e| e.note)
                .collect();
            match notes.iter().find(|n| n.contains(note_contains)) {
                Some(n) => Ok(n.clone()),
                None => Err(format!("{reason} notes: {notes:?}")),
            }
        },
    )
    .await
}
