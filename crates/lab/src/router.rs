//! The lab's router: FRR (default), BIRD or GoBGP in the `router` namespace, and the node HTTP
//! servers that stand in for the Service's pods.

use crate::network::{NODE_ASN, ROUTER_ASN, Topology};
use crate::proc::{Daemon, in_netns, run_in};
use anyhow::{Context, Result, bail};
use serde::Serialize;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Which routing daemon runs in the router namespace.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, clap::ValueEnum, Default)]
#[serde(rename_all = "lowercase")]
pub enum RouterKind {
    /// FRR (zebra + bgpd + bfdd): installs ECMP routes into the router's kernel.
    #[default]
    Frr,
    /// BIRD 2.
    Bird,
    /// GoBGP.
    Gobgp,
}

impl std::fmt::Display for RouterKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            RouterKind::Frr => "frr",
            RouterKind::Bird => "bird",
            RouterKind::Gobgp => "gobgp",
        })
    }
}

/// The routing daemon of one lab.
#[derive(Debug, Clone)]
pub struct Router {
    /// Which daemon.
    pub kind: RouterKind,
    /// `<lab>/router`: configs, sockets, pid files and logs.
    pub dir: PathBuf,
    /// The router's namespace.
    pub netns: String,
}

const FRR_DAEMONS: [&str; 3] = ["zebra", "bgpd", "bfdd"];

impl Router {
    /// The router of `topo`, with files under `lab_dir/router`.
    pub fn new(kind: RouterKind, lab_dir: &Path, topo: &Topology) -> Self {
        Router {
            kind,
            dir: lab_dir.join("router"),
            netns: topo.netns("router"),
        }
    }

    fn daemons(&self) -> Vec<Daemon> {
        match self.kind {
            RouterKind::Frr => FRR_DAEMONS
                .iter()
                .map(|d| Daemon::new(&self.dir, d))
                .collect(),
            RouterKind::Bird => vec![Daemon::new(&self.dir, "bird")],
            RouterKind::Gobgp => vec![Daemon::new(&self.dir, "gobgpd")],
        }
    }

    /// Writes the default configuration (one eBGP neighbor per node, ASN 64513, ECMP on) and
    /// starts the daemon(s) unless running; waits until the daemon answers its CLI.
    pub fn start(&self, topo: &Topology) -> Result<()> {
        std::fs::create_dir_all(&self.dir)?;
        match self.kind {
            RouterKind::Frr => self.start_frr(topo)?,
            RouterKind::Bird => {
                std::fs::write(self.dir.join("bird.conf"), bird_config(topo))?;
                let d = Daemon::new(&self.dir, "bird");
                d.start(in_netns(
                    &self.netns,
                    &[
                        "bird",
                        "-f",
                        "-c",
                        &self.path("bird.conf"),
                        "-s",
                        &self.path("bird.ctl"),
                        "-P",
                        &self.path("bird.pidfile"),
                    ],
                ))?;
            }
            RouterKind::Gobgp => {
                std::fs::write(self.dir.join("gobgpd.toml"), gobgp_config(topo))?;
                let d = Daemon::new(&self.dir, "gobgpd");
                d.start(in_netns(
                    &self.netns,
                    &[
                        "gobgpd",
                        "-f",
                        &self.path("gobgpd.toml"),
                        "--api-hosts=127.0.0.1:50051",
                    ],
                ))?;
            }
        }
        let start = Instant::now();
        loop {
            for d in self.daemons() {
                d.ensure_running()?;
            }
            if self.cli_ready() {
                return Ok(());
            }
            if start.elapsed() > Duration::from_secs(20) {
                bail!(
                    "{} did not answer its CLI within 20 s (logs in {})",
                    self.kind,
                    self.dir.display()
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn path(&self, file: &str) -> String {
        self.dir.join(file).display().to_string()
    }

    fn start_frr(&self, topo: &Topology) -> Result<()> {
        std::fs::write(self.dir.join("zebra.conf"), "hostname router\n")?;
        std::fs::write(self.dir.join("bfdd.conf"), "hostname router\n")?;
        std::fs::write(self.dir.join("bgpd.conf"), frr_bgp_config(topo))?;
        // FRR's daemons drop to user `frr`, which must own the socket directory and configs.
        proc_chown_frr(&self.dir)?;
        for daemon in FRR_DAEMONS {
            let d = Daemon::new(&self.dir, daemon);
            let bin = format!("/usr/lib/frr/{daemon}");
            let conf = self.path(&format!("{daemon}.conf"));
            let pid = self.path(&format!("{daemon}.frrpid"));
            let zserv = self.path("zserv.api");
            let vty = self.dir.display().to_string();
            let args = [
                bin.as_str(),
                "-f",
                &conf,
                "-i",
                &pid,
                "--vty_socket",
                &vty,
                "-z",
                &zserv,
                "-P",
                "0",
            ];
            d.start(in_netns(&self.netns, &args))?;
            if daemon == "zebra" {
                // bgpd and bfdd connect to zebra's socket at start-up.
                wait_for(&self.dir.join("zserv.api"), Duration::from_secs(10))?;
            }
        }
        Ok(())
    }

    /// Runs a command of the router's CLI (`vtysh -c`, `birdc`, `gobgp`) and returns its output.
    pub fn cli(&self, args: &[&str]) -> Result<String> {
        let vty = self.dir.display().to_string();
        let ctl = self.path("bird.ctl");
        let mut full: Vec<&str> = match self.kind {
            RouterKind::Frr => vec!["vtysh", "--vty_socket", &vty],
            RouterKind::Bird => vec!["birdc", "-s", &ctl],
            RouterKind::Gobgp => vec!["gobgp", "-u", "127.0.0.1", "-p", "50051"],
        };
        if self.kind == RouterKind::Frr {
            for a in args {
                full.extend(["-c", a]);
            }
        } else {
            full.extend(args);
        }
        run_in(&self.netns, &full)
    }

    fn cli_ready(&self) -> bool {
        match self.kind {
            RouterKind::Frr => self.cli(&["show bgp summary json"]).is_ok(),
            RouterKind::Bird => self
                .cli(&["show", "status"])
                .is_ok_and(|s| s.contains("Daemon is up")),
            RouterKind::Gobgp => self.cli(&["global"]).is_ok(),
        }
    }

    /// Stops the daemon(s).
    pub fn stop(&self) {
        for d in self.daemons().iter().rev() {
            d.stop(Duration::from_secs(2));
        }
    }
}

fn proc_chown_frr(dir: &Path) -> Result<()> {
    crate::proc::run("chown", &["-R", "frr:frr", &dir.display().to_string()])
        .context("FRR needs its `frr` user (Debian package frr)")?;
    Ok(())
}

fn wait_for(path: &Path, limit: Duration) -> Result<()> {
    let start = Instant::now();
    while !path.exists() {
        if start.elapsed() > limit {
            bail!("{} did not appear within {limit:?}", path.display());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Ok(())
}

/// FRR's bgpd: eBGP to every node (ASN 64513), ECMP over all of them, IPv4 and IPv6.
pub fn frr_bgp_config(topo: &Topology) -> String {
    let router = topo.router();
    let mut c = format!(
        "hostname router\nlog stdout informational\n!\nrouter bgp {ROUTER_ASN}\n bgp router-id {}\n no bgp ebgp-requires-policy\n no bgp default ipv4-unicast\n bgp bestpath as-path multipath-relax\n",
        router.ipv4
    );
    for node in topo.node_hosts() {
        c += &format!(" neighbor {} remote-as {NODE_ASN}\n", node.ipv4);
        c += &format!(" neighbor {} remote-as {NODE_ASN}\n", node.ipv6);
    }
    for (af, v6) in [("ipv4", false), ("ipv6", true)] {
        c +=
            &format!(" address-family {af} unicast\n  maximum-paths 16\n  maximum-paths ibgp 16\n");
        for node in topo.node_hosts() {
            let addr = if v6 {
                node.ipv6.to_string()
            } else {
                node.ipv4.to_string()
            };
            c += &format!("  neighbor {addr} activate\n");
        }
        c += " exit-address-family\n";
    }
    c + "!\n"
}

/// BIRD 2: one eBGP protocol per node and family; routes exported to the router's kernel.
pub fn bird_config(topo: &Topology) -> String {
    let router = topo.router();
    let mut c = format!(
        "router id {};\nprotocol device {{}}\nprotocol kernel k4 {{ ipv4 {{ export all; }}; merge paths on; }}\nprotocol kernel k6 {{ ipv6 {{ export all; }}; merge paths on; }}\n",
        router.ipv4
    );
    for (i, node) in topo.node_hosts().iter().enumerate() {
        c += &format!(
            "protocol bgp node{n}v4 {{ local {} as {ROUTER_ASN}; neighbor {} as {NODE_ASN}; ipv4 {{ import all; export none; }}; }}\n",
            router.ipv4,
            node.ipv4,
            n = i + 1
        );
        c += &format!(
            "protocol bgp node{n}v6 {{ local {} as {ROUTER_ASN}; neighbor {} as {NODE_ASN}; ipv6 {{ import all; export none; }}; }}\n",
            router.ipv6,
            node.ipv6,
            n = i + 1
        );
    }
    c
}

/// GoBGP: one neighbor per node address, IPv4 and IPv6 unicast.
pub fn gobgp_config(topo: &Topology) -> String {
    let router = topo.router();
    let mut c = format!(
        "[global.config]\n  as = {ROUTER_ASN}\n  router-id = \"{}\"\n  port = 179\n",
        router.ipv4
    );
    for node in topo.node_hosts() {
        for (addr, family) in [
            (node.ipv4.to_string(), "ipv4-unicast"),
            (node.ipv6.to_string(), "ipv6-unicast"),
        ] {
            c += &format!(
                "\n[[neighbors]]\n  [neighbors.config]\n    neighbor-address = \"{addr}\"\n    peer-as = {NODE_ASN}\n  [[neighbors.afi-safis]]\n    [neighbors.afi-safis.config]\n      afi-safi-name = \"{family}\"\n"
            );
        }
    }
    c
}

/// The script each node's HTTP server runs per connection: it reads the request head and
/// answers with the node's name, so a client sees which node served it.
fn httpd_script(node: &str) -> String {
    let body = format!("{node}\n");
    format!(
        "#!/bin/sh\nwhile IFS= read -r line; do\n  case \"$line\" in \"\"|\"$(printf '\\r')\") break;; esac\ndone\nprintf 'HTTP/1.0 200 OK\\r\\nContent-Type: text/plain\\r\\nContent-Length: {}\\r\\nConnection: close\\r\\n\\r\\n{node}\\n'\n",
        body.len()
    )
}

/// Starts, in every node namespace, an HTTP server on port 80 (IPv4 and IPv6) answering with the
/// node's name.
pub fn start_node_httpds(lab_dir: &Path, topo: &Topology) -> Result<()> {
    for node in topo.node_hosts() {
        let script = lab_dir.join(format!("httpd-{}.sh", node.name));
        std::fs::write(&script, httpd_script(&node.name))?;
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755))
                .context("chmod httpd script")?;
        }
        let d = Daemon::new(lab_dir, &format!("httpd-{}", node.name));
        d.start(in_netns(
            &node.netns,
            &[
                "socat",
                "TCP6-LISTEN:80,fork,reuseaddr,ipv6only=0",
                &format!("SYSTEM:{}", script.display()),
            ],
        ))?;
    }
    Ok(())
}
