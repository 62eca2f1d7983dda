//! The README's main job: the walkthrough's reference scenario on the lab's real nodes, as a
//! MetalLB user runs it, then a speaker crash and the address's failover, measured.
//!
//! ```text
//!   lab up (real kubelets) -> ironlb's image into every node -> kubectl apply -f ironlb-native.yaml
//!   -> controller 1/1, speaker 3/3 -> pool + L2Advertisement -> deploy-ns-svc.yaml (5 Pods)
//!   -> svc-xiuxian-lb 10.0.0.150 -> curl through it and every node's NodePort
//!   -> kill -9 of the announcing node's speaker: ARP moves to the next node, requests keep
//!      being answered, the kubelet restarts the speaker and it takes the address back
//! ```

use crate::install::{self, ShellLoop, WALKTHROUGH_IP, kubectl, unix_now, wait_for};
use crate::{Lab, LabOptions, Progress, RouterKind, components};
use anyhow::{Context, Result, anyhow};
use std::time::Duration;

/// Runs the demo on the lab `name` (made, or completed, with real nodes); the lab stays up.
pub fn run(name: &str) -> Result<()> {
    let mut progress = Progress::new("demo");
    let lab = Lab::up(&LabOptions {
        name: name.to_string(),
        nodes: 3,
        router: RouterKind::Frr,
        real_nodes: true,
        ..LabOptions::default()
    })?;
    progress.step(
        "lab up: kube-apiserver, etcd, controller-manager, scheduler; node1-3 each with a real kubelet, containerd, runc, the bridge CNI and kube-proxy (nftables)",
    );
    let size = install::import_ironlb_image(&lab, "latest")?;
    progress.step(&format!(
        "image ironlb/ironlb:latest (one static ironlb, a {:.0} MB dev build; the Dockerfile's stripped release build is ~19 MB) built and imported into node1-3's containerd",
        size as f64 / 1e6
    ));
    install_ironlb(&lab, &mut progress)?;
    let external = walkthrough(&lab, &mut progress)?;
    requests(&lab, &external, &mut progress)?;
    failover(&lab, &external, &mut progress)?;
    progress.step("demo finished; the lab stays up: `./dev down` removes it");
    println!("export KUBECONFIG={}", lab.kubeconfig().display());
    Ok(())
}

/// `kubectl <args>`, printed as the walkthrough prints it.
fn show(lab: &Lab, args: &[&str]) -> Result<()> {
    let out = kubectl(lab, args).map_err(|e| anyhow!("kubectl {}: {e}", args.join(" ")))?;
    println!("$ kubectl {}\n{}", args.join(" "), out.trim_end());
    Ok(())
}

/// Steps 3-6: the manifest applied, the controller and a speaker per node running.
fn install_ironlb(lab: &Lab, progress: &mut Progress) -> Result<()> {
    let manifest = components::lab_native_manifest("latest")?;
    let out = install::apply_manifest(lab, &manifest)?;
    println!(
        "$ kubectl apply -f deploy/ironlb-native.yaml\n{}",
        out.trim_end()
    );
    progress.step(
        "deploy/ironlb-native.yaml applied (the speaker told to leave the lab's mgmt0 link alone)",
    );
    install::wait_rollout(
        lab,
        "metallb-system",
        "deploy/controller",
        Duration::from_secs(180),
    )?;
    install::wait_rollout(
        lab,
        "metallb-system",
        "ds/speaker",
        Duration::from_secs(180),
    )?;
    progress.step("deployment.apps/controller 1/1, daemonset.apps/speaker 3/3");
    show(lab, &["get", "nodes", "-o", "wide"])?;
    show(
        lab,
        &[
            "get",
            "deploy,rs,svc,po",
            "-n",
            "metallb-system",
            "-o",
            "wide",
        ],
    )
}

/// Steps 7-8: the pool, the advertisement and the application, verbatim; returns the
/// Service's EXTERNAL-IP.
fn walkthrough(lab: &Lab, progress: &mut Progress) -> Result<String> {
    for out in install::apply_walkthrough(lab)? {
        println!("{}", out.trim_end());
    }
    progress.step("metallb-config.yaml (IPAddressPool linuxnet, L2Advertisement xixi) and deploy-ns-svc.yaml applied");
    install::wait_rollout(
        lab,
        "haha",
        "deploy/deploy-xiuxian",
        Duration::from_secs(180),
    )?;
    progress.step("deployment.apps/deploy-xiuxian 5/5");
    let external =
        install::wait_external_ip(lab, "haha", "svc-xiuxian-lb", Duration::from_secs(60))?;
    progress.step(&format!("svc-xiuxian-lb got EXTERNAL-IP {external}"));
    if external != WALKTHROUGH_IP {
        return Err(anyhow!(
            "svc-xiuxian-lb got {external}, the walkthrough's is {WALKTHROUGH_IP}"
        ));
    }
    show(
        lab,
        &["get", "deploy,rs,po,svc", "-n", "haha", "-o", "wide"],
    )?;
    show(
        lab,
        &[
            "get",
            "ipaddresspool,l2advertisement,configurationstate",
            "-n",
            "metallb-system",
        ],
    )?;
    show(
        lab,
        &[
            "get",
            "events",
            "-n",
            "haha",
            "--field-selector",
            "involvedObject.kind=Service",
        ],
    )?;
    Ok(external)
}

/// The walkthrough's checks: the address, from the client, reaches the Pods through
/// kube-proxy, and the NodePort answers on every node.
fn requests(lab: &Lab, ip: &str, progress: &mut Progress) -> Result<()> {
    let url = format!("http://{ip}/");
    install::wait_served(lab, &url, Duration::from_secs(60))?;
    let mut pods = std::collections::BTreeSet::new();
    for _ in 0..10 {
        let body = lab.exec_ok("client", &["curl", "-s", "-S", "--max-time", "2", &url])?;
        println!("client$ curl {url}   -> {}", body.trim());
        pods.insert(
            body.split_whitespace()
                .next()
                .unwrap_or_default()
                .to_string(),
        );
    }
    progress.step(&format!(
        "10 requests to {url} from client answered by {} different Pods",
        pods.len()
    ));
    for node in lab.topo.node_hosts() {
        let url = format!("http://{}:30120/", node.ipv4);
        let body = lab.exec_ok("client", &["curl", "-s", "-S", "--max-time", "2", &url])?;
        println!("client$ curl {url}   -> {}", body.trim());
    }
    progress.step("the NodePort 30120 answers on every node");
    Ok(())
}

/// The node whose LAN MAC is `mac`.
fn node_of_mac(lab: &Lab, mac: &str) -> Option<String> {
    lab.topo
        .node_hosts()
        .into_iter()
        .find(|h| h.mac.eq_ignore_ascii_case(mac))
        .map(|h| h.name)
}

/// Waits until `arping -c 3` from the client gets its answers for `ip` all from one node that
/// is not `not` (arping also counts gratuitous replies, so there may be more than three);
/// returns that node.
fn arp_owner(lab: &Lab, ip: &str, not: Option<&str>, limit: Duration) -> Result<String> {
    wait_for(&format!("one node answering ARP for {ip}"), limit, || {
        let macs = lab
            .arp_answers("client", ip, 3)
            .map_err(|e| format!("{e:#}"))?;
        let node = macs.first().and_then(|m| node_of_mac(lab, m));
        match node {
            Some(node)
                if macs.len() >= 3 && macs.iter().all(|m| *m == macs[0]) && not != Some(&node) =>
            {
                println!(
                    "client$ arping -c 3 -i eth0 {ip}   -> {} answers, all from {} ({node})",
                    macs.len(),
                    macs[0]
                );
                Ok(node)
            }
            _ => Err(format!("answers {macs:?}")),
        }
    })
}

/// The announcing node's speaker killed (`kill -9` of its container, as a crash): the time
/// until another node answers ARP for the address, the requests that failed meanwhile, and the
/// kubelet's restart of the speaker taking the address back.
fn failover(lab: &Lab, ip: &str, progress: &mut Progress) -> Result<()> {
    let owner = arp_owner(lab, ip, None, Duration::from_secs(30))?;
    progress.step(&format!("exactly one node answers ARP for {ip}: {owner}"));
    let (pod, id, restarts) =
        install::container_on(lab, "metallb-system", "component=speaker", &owner)?;
    let macs: Vec<(String, String)> = lab
        .topo
        .node_hosts()
        .into_iter()
        .map(|h| (h.mac.to_lowercase(), h.name))
        .collect();
    // The client keeps asking who has the address; tcpdump stamps every ARP packet about it
    // (answers and the new owner's gratuitous ones).
    let sniff = ShellLoop::start(
        lab,
        "client",
        "demo-arp",
        &format!("exec tcpdump -i eth0 -l -n -e -tt arp and host {ip} 2>/dev/null"),
    )?;
    let ask = ShellLoop::start(
        lab,
        "client",
        "demo-arping",
        &format!("while :; do arping -c 1 -w 1 -i eth0 {ip} >/dev/null; done"),
    )?;
    let curls = ShellLoop::requests(lab, "client", "demo-requests", &format!("http://{ip}/"))?;
    std::thread::sleep(Duration::from_millis(700));
    let killed = unix_now();
    lab.kill_container(&owner, &id)?;
    progress.step(&format!(
        "kill -9 of {pod} on {owner} (its container, through {owner}'s containerd)"
    ));
    let owner_mac = lab
        .topo
        .node_hosts()
        .into_iter()
        .find(|h| h.name == owner)
        .map(|h| h.mac.to_lowercase())
        .context("owner's MAC")?;
    let name_of = |mac: &str| macs.iter().find(|(m, _)| m == mac).map(|(_, n)| n.clone());
    let (moved_after, next, packet) = wait_for(
        "another node answering ARP",
        Duration::from_secs(20),
        || {
            sniff
                .lines()
                .into_iter()
                .filter(|(t, _)| *t >= killed)
                .find_map(|(t, line)| {
                    // "02:1b:00:00:00:e9 > ff:ff:ff:ff:ff:ff, ethertype ARP …: Reply 10.0.0.150 is-at …"
                    let src = line.split_whitespace().next()?;
                    let node = name_of(src).filter(|_| src != owner_mac)?;
                    let what = line.rsplit_once(": ")?.1.to_string();
                    // An answer or a gratuitous ARP, not a probe (who-has … tell 0.0.0.0).
                    let claims = what.contains(&format!("{ip} is-at"))
                        || what.contains(&format!("tell {ip},"));
                    claims.then_some((t - killed, node, what))
                })
                .ok_or_else(|| "not yet".to_string())
        },
    )?;
    drop(ask);
    progress.step(&format!(
        "{next} took {ip} over {moved_after:.3} s after the kill (client's tcpdump: {packet})"
    ));
    let back = wait_for(
        "the speaker restarted by the kubelet",
        Duration::from_secs(60),
        || {
            let (_, _, now) =
                install::container_on(lab, "metallb-system", "component=speaker", &owner)
                    .map_err(|e| format!("{e:#}"))?;
            (now > restarts)
                .then_some(now)
                .ok_or_else(|| format!("restarts {now}"))
        },
    )?;
    progress.step(&format!(
        "the kubelet restarted the speaker on {owner} (restart count {back})"
    ));
    let home = arp_owner(lab, ip, Some(&next), Duration::from_secs(60))?;
    progress.step(&format!(
        "{home} answers ARP for {ip} again (the same ranking as before the crash)"
    ));
    let (sent, failed) = curls.failures_since(killed);
    drop((sniff, curls));
    progress.step(&format!(
        "requests to http://{ip}/ from the kill until now: {sent} sent, {failed} failed (the old owner's kube-proxy kept forwarding what reached it)"
    ));
    Ok(())
}
