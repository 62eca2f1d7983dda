//! The lab's network: Linux network namespaces joined by veth pairs.
//!
//! ```text
//!   host ns: bridge ilbm<slot> 169.254.<100+slot>.1/24  <- management link only (API server)
//!      |  mgmt0 169.254.<100+slot>.<10+i>
//!   node1 .. nodeN  eth0 10.0.0.231.. / fd10::231..   dummy kube-ipvs0 (Service addresses)
//!      |                                                   
//!   lan ns: bridge br0 ------- client eth0 10.0.0.100 / fd10::100
//!      |
//!   router eth0 10.0.0.1 / fd10::1      eth1 10.0.1.1 / fd11::1 ---- ext-client eth0 10.0.1.2 / fd11::2
//! ```
//!
//! Every lab address exists only inside the lab's namespaces. The host namespace gets exactly one
//! link-local /24 on the management bridge, through which node namespaces reach the API server.

use crate::proc::{kill_netns_processes, run, run_in};
use anyhow::{Context, Result, bail};
use serde::Serialize;
use std::net::{Ipv4Addr, Ipv6Addr};

/// First IPv4 host byte of the nodes: node1 is 10.0.0.231, as in the reference scenario.
const NODE_BASE: u8 = 230;
/// The router's ASN in every router flavour.
pub const ROUTER_ASN: u32 = 64512;
/// The ASN the lab suggests for the nodes (eBGP); iBGP tests use [`ROUTER_ASN`].
pub const NODE_ASN: u32 = 64513;
/// The LAN prefix (IPv4).
pub const LAN_V4: &str = "10.0.0.0/24";
/// The LAN prefix (IPv6 ULA).
pub const LAN_V6: &str = "fd10::/64";
/// The name of the dummy interface holding Service addresses on each node (as kube-proxy IPVS).
pub const IPVS_DUMMY: &str = "kube-ipvs0";

/// The shape of one lab's network.
#[derive(Debug, Clone, Serialize)]
pub struct Topology {
    /// The lab's name: namespaces are `ilb-<name>-<host>`.
    pub lab: String,
    /// The lab's slot: picks its management subnet 169.254.(100+slot).0/24 and host link names.
    pub slot: u8,
    /// How many nodes.
    pub nodes: u8,
}

/// One host of the lab (a namespace with an `eth0` on a LAN).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Host {
    /// `node1`, `client`, `router`, `ext-client`.
    pub name: String,
    /// The network namespace it lives in.
    pub netns: String,
    /// The address of `eth0`.
    pub ipv4: Ipv4Addr,
    /// The IPv6 address of `eth0`.
    pub ipv6: Ipv6Addr,
    /// The fixed MAC address of `eth0`.
    pub mac: String,
}

impl Topology {
    /// The namespace name of host `host` (`node1`, `client`, `router`, `ext-client`, `lan`).
    pub fn netns(&self, host: &str) -> String {
        format!("ilb-{}-{}", self.lab, host)
    }

    /// The names of the nodes: `node1` … `nodeN`.
    pub fn node_names(&self) -> Vec<String> {
        (1..=self.nodes).map(|i| format!("node{i}")).collect()
    }

    /// Node `i` (1-based).
    pub fn node(&self, i: u8) -> Host {
        let last = NODE_BASE + i;
        Host {
            name: format!("node{i}"),
            netns: self.netns(&format!("node{i}")),
            ipv4: Ipv4Addr::new(10, 0, 0, last),
            ipv6: v6_with_decimal_suffix(0xfd10, 0, last),
            mac: format!("02:1b:00:00:00:{last:02x}"),
        }
    }

    /// Every node.
    pub fn node_hosts(&self) -> Vec<Host> {
        (1..=self.nodes).map(|i| self.node(i)).collect()
    }

    /// The client on the LAN.
    pub fn client(&self) -> Host {
        Host {
            name: "client".into(),
            netns: self.netns("client"),
            ipv4: Ipv4Addr::new(10, 0, 0, 100),
            ipv6: v6_with_decimal_suffix(0xfd10, 0, 100),
            mac: "02:1b:00:00:00:64".into(),
        }
    }

    /// The router, on the LAN side.
    pub fn router(&self) -> Host {
        Host {
            name: "router".into(),
            netns: self.netns("router"),
            ipv4: Ipv4Addr::new(10, 0, 0, 1),
            ipv6: v6_with_decimal_suffix(0xfd10, 0, 1),
            mac: "02:1b:00:00:00:01".into(),
        }
    }

    /// The client behind the router (on 10.0.1.0/24).
    pub fn ext_client(&self) -> Host {
        Host {
            name: "ext-client".into(),
            netns: self.netns("ext-client"),
            ipv4: Ipv4Addr::new(10, 0, 1, 2),
            ipv6: v6_with_decimal_suffix(0xfd11, 0, 2),
            mac: "02:1b:00:00:01:02".into(),
        }
    }

    /// Every host with an address (nodes, client, router, ext-client).
    pub fn hosts(&self) -> Vec<Host> {
        let mut hosts = self.node_hosts();
        hosts.extend([self.client(), self.router(), self.ext_client()]);
        hosts
    }

    /// The host called `name`, if it exists.
    pub fn host(&self, name: &str) -> Option<Host> {
        self.hosts().into_iter().find(|h| h.name == name)
    }

    /// Every namespace of the lab, the LAN switch included.
    pub fn all_netns(&self) -> Vec<String> {
        let mut all: Vec<String> = self.hosts().into_iter().map(|h| h.netns).collect();
        all.push(self.netns("lan"));
        all
    }

    /// The host side of the management link: the API server listens here.
    pub fn mgmt_host_ip(&self) -> Ipv4Addr {
        Ipv4Addr::new(169, 254, 100 + self.slot, 1)
    }

    /// Node `i`'s end of the management link.
    pub fn mgmt_node_ip(&self, i: u8) -> Ipv4Addr {
        Ipv4Addr::new(169, 254, 100 + self.slot, 10 + i)
    }

    /// The management bridge's name in the host namespace.
    pub fn mgmt_bridge(&self) -> String {
        format!("ilbm{}", self.slot)
    }

    /// Builds the whole network; steps that are already done are skipped, so this is idempotent.
    pub fn create(&self) -> Result<()> {
        if self.nodes == 0 || self.nodes > 20 {
            bail!("a lab has 1 to 20 nodes, not {}", self.nodes);
        }
        for ns in self.all_netns() {
            ensure_netns(&ns)?;
        }
        let lan = self.netns("lan");
        if !link_exists(&lan, "br0") {
            run("ip", &["-n", &lan, "link", "add", "br0", "type", "bridge"])?;
            // NDP uses solicited-node multicast groups; snooping would hide them until a querier
            // exists, so the lab switch floods multicast like a simple switch.
            run(
                "ip",
                &[
                    "-n",
                    &lan,
                    "link",
                    "set",
                    "br0",
                    "type",
                    "bridge",
                    "mcast_snooping",
                    "0",
                ],
            )?;
            run("ip", &["-n", &lan, "link", "set", "br0", "up"])?;
        }
        let mut lan_hosts = self.node_hosts();
        lan_hosts.extend([self.client(), self.router()]);
        for h in &lan_hosts {
            // The switch port is named after the host, so `tcpdump -i node1` in the lan ns works.
            self.plug(h, "eth0", &lan, &h.name, "br0")?;
            self.address(
                h,
                "eth0",
                &format!("{}/24", h.ipv4),
                &format!("{}/64", h.ipv6),
            )?;
        }
        // The router's second leg and the client behind it: a direct veth, no switch.
        let router = self.router();
        let ext = self.ext_client();
        if !link_exists(&router.netns, "eth1") {
            run(
                "ip",
                &[
                    "link",
                    "add",
                    "eth1",
                    "netns",
                    &router.netns,
                    "type",
                    "veth",
                    "peer",
                    "name",
                    "eth0",
                    "netns",
                    &ext.netns,
                ],
            )?;
            run(
                "ip",
                &["-n", &ext.netns, "link", "set", "eth0", "address", &ext.mac],
            )?;
        }
        self.address(&router, "eth1", "10.0.1.1/24", "fd11::1/64")?;
        self.address(
            &ext,
            "eth0",
            &format!("{}/24", ext.ipv4),
            &format!("{}/64", ext.ipv6),
        )?;
        for (key, value) in [
            ("net.ipv4.ip_forward", "1"),
            ("net.ipv6.conf.all.forwarding", "1"),
        ] {
            run_in(
                &router.netns,
                &["sysctl", "-q", "-w", &format!("{key}={value}")],
            )?;
        }
        // Everyone on the LAN uses the router; the router knows only the lab's own prefixes.
        for h in self.node_hosts().iter().chain([&self.client(), &ext]) {
            let (gw4, gw6) = if h.name == "ext-client" {
                ("10.0.1.1", "fd11::1")
            } else {
                ("10.0.0.1", "fd10::1")
            };
            run(
                "ip",
                &["-n", &h.netns, "route", "replace", "default", "via", gw4],
            )?;
            run(
                "ip",
                &[
                    "-n", &h.netns, "-6", "route", "replace", "default", "via", gw6,
                ],
            )?;
        }
        for (i, node) in (1..=self.nodes).zip(self.node_hosts()) {
            self.node_extras(i, &node)?;
        }
        Ok(())
    }

    /// kube-proxy-in-IPVS-mode imitation and the management link for node `i`.
    fn node_extras(&self, i: u8, node: &Host) -> Result<()> {
        // Strict ARP, as kube-proxy sets it: the kernel answers ARP only for addresses on the
        // receiving interface, so Service addresses on kube-ipvs0 are answered by ironlb alone.
        for (key, value) in [
            ("net.ipv4.conf.all.arp_ignore", "1"),
            ("net.ipv4.conf.all.arp_announce", "2"),
        ] {
            run_in(
                &node.netns,
                &["sysctl", "-q", "-w", &format!("{key}={value}")],
            )?;
        }
        if !link_exists(&node.netns, IPVS_DUMMY) {
            // kube-proxy uses a `dummy` link; kernels without that module (like this lab's
            // VMs) get a bridge without ports and with ARP off, which behaves the same: its
            // addresses are local, and nothing is ever sent or answered on it.
            let kind = if dummy_links_supported() {
                "dummy"
            } else {
                "bridge"
            };
            run(
                "ip",
                &["-n", &node.netns, "link", "add", IPVS_DUMMY, "type", kind],
            )?;
            run(
                "ip",
                &[
                    "-n",
                    &node.netns,
                    "link",
                    "set",
                    IPVS_DUMMY,
                    "arp",
                    "off",
                    "up",
                ],
            )?;
        }
        let bridge = self.mgmt_bridge();
        if run("ip", &["link", "show", "dev", &bridge]).is_err() {
            run("ip", &["link", "add", &bridge, "type", "bridge"])?;
            run(
                "ip",
                &[
                    "addr",
                    "add",
                    &format!("{}/24", self.mgmt_host_ip()),
                    "dev",
                    &bridge,
                ],
            )?;
            run("ip", &["link", "set", &bridge, "up"])?;
        }
        if !link_exists(&node.netns, "mgmt0") {
            let host_end = format!("{bridge}n{i}");
            run(
                "ip",
                &[
                    "link",
                    "add",
                    "mgmt0",
                    "netns",
                    &node.netns,
                    "type",
                    "veth",
                    "peer",
                    "name",
                    &host_end,
                ],
            )?;
            run("ip", &["link", "set", &host_end, "master", &bridge, "up"])?;
            run(
                "ip",
                &[
                    "-n",
                    &node.netns,
                    "addr",
                    "add",
                    &format!("{}/24", self.mgmt_node_ip(i)),
                    "dev",
                    "mgmt0",
                ],
            )?;
            run("ip", &["-n", &node.netns, "link", "set", "mgmt0", "up"])?;
        }
        Ok(())
    }

    /// Creates a veth `ifname` in `h`'s namespace whose peer `port` sits in `switch_ns` on `bridge`.
    fn plug(
        &self,
        h: &Host,
        ifname: &str,
        switch_ns: &str,
        port: &str,
        bridge: &str,
    ) -> Result<()> {
        if link_exists(&h.netns, ifname) {
            return Ok(());
        }
        run(
            "ip",
            &[
                "link", "add", ifname, "netns", &h.netns, "type", "veth", "peer", "name", port,
                "netns", switch_ns,
            ],
        )?;
        run(
            "ip",
            &["-n", &h.netns, "link", "set", ifname, "address", &h.mac],
        )?;
        run(
            "ip",
            &["-n", switch_ns, "link", "set", port, "master", bridge, "up"],
        )?;
        Ok(())
    }

    /// Gives `ifname` in `h`'s namespace its addresses (DAD off: the lab has no duplicates by
    /// construction, and DAD would delay every start by a second) and brings it up.
    fn address(&self, h: &Host, ifname: &str, v4: &str, v6: &str) -> Result<()> {
        let existing = run("ip", &["-n", &h.netns, "-o", "addr", "show", "dev", ifname])?;
        let plain = |cidr: &str| format!(" {cidr} ");
        if !existing.contains(&plain(v4)) {
            run("ip", &["-n", &h.netns, "addr", "add", v4, "dev", ifname])?;
        }
        if !existing.contains(&plain(v6)) {
            run(
                "ip",
                &["-n", &h.netns, "addr", "add", v6, "dev", ifname, "nodad"],
            )?;
        }
        run("ip", &["-n", &h.netns, "link", "set", ifname, "up"])?;
        Ok(())
    }

    /// Removes every namespace (after killing what runs inside) and the management bridge.
    /// Safe to call on a half-built or already removed lab.
    pub fn destroy(&self) {
        for ns in self.all_netns() {
            if netns_exists(&ns) {
                kill_netns_processes(&ns);
                let _ = run("ip", &["netns", "del", &ns]);
            }
        }
        // The host ends go explicitly: a namespace whose processes take a moment to die keeps
        // its veths (and their host ends) alive until then.
        for link in slot_links(self.slot, &host_links()) {
            let _ = run("ip", &["link", "del", link]);
        }
    }

    /// The namespaces and host links of this lab that exist right now (empty after `destroy`).
    pub fn leftovers(&self) -> Vec<String> {
        let mut left: Vec<String> = self
            .all_netns()
            .into_iter()
            .filter(|ns| netns_exists(ns))
            .collect();
        left.extend(slot_links(self.slot, &host_links()).cloned());
        left
    }
}

/// An IPv6 address `<prefix>::<suffix>` where the suffix is written with the decimal digits of
/// the IPv4 host byte (node 10.0.0.231 is fd10::231), so the two are easy to match by eye.
fn v6_with_decimal_suffix(first: u16, second: u16, last: u8) -> Ipv6Addr {
    let digits = format!("{last}");
    let group = u16::from_str_radix(&digits, 16).unwrap_or(0);
    Ipv6Addr::new(first, second, 0, 0, 0, 0, 0, group)
}

/// The names of the links in the host namespace.
pub fn host_links() -> Vec<String> {
    run("ip", &["-o", "link", "show"])
        .map(|links| {
            links
                .lines()
                .filter_map(|l| l.split(": ").nth(1))
                .map(|name| name.split('@').next().unwrap_or(name).to_string())
                .collect()
        })
        .unwrap_or_default()
}

/// The host links that belong to slot `slot`: its management bridge `ilbm<slot>` and the host
/// ends `ilbm<slot>n<i>` of its nodes' management links.
pub fn slot_links(slot: u8, links: &[String]) -> impl Iterator<Item = &String> {
    let bridge = format!("ilbm{slot}");
    links.iter().filter(move |name| {
        name.as_str() == bridge
            || name
                .strip_prefix(&bridge)
                .and_then(|rest| rest.strip_prefix('n'))
                .is_some_and(|i| !i.is_empty() && i.bytes().all(|b| b.is_ascii_digit()))
    })
}

/// Whether network namespace `ns` exists.
pub fn netns_exists(ns: &str) -> bool {
    std::path::Path::new("/run/netns").join(ns).exists()
}

/// Every namespace whose name starts with `prefix`.
pub fn netns_with_prefix(prefix: &str) -> Vec<String> {
    std::fs::read_dir("/run/netns")
        .map(|dir| {
            dir.filter_map(|e| e.ok())
                .filter_map(|e| e.file_name().into_string().ok())
                .filter(|n| n.starts_with(prefix))
                .collect()
        })
        .unwrap_or_default()
}

/// Whether this kernel can create `dummy` links (it may lack the module).
fn dummy_links_supported() -> bool {
    static SUPPORTED: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *SUPPORTED.get_or_init(|| {
        let probe = "ilbdummyprobe";
        let ok = run("ip", &["link", "add", probe, "type", "dummy"]).is_ok();
        if ok {
            let _ = run("ip", &["link", "del", probe]);
        }
        ok
    })
}

fn ensure_netns(ns: &str) -> Result<()> {
    if !netns_exists(ns) {
        run("ip", &["netns", "add", ns]).context("creating network namespaces needs root")?;
    }
    run("ip", &["-n", ns, "link", "set", "lo", "up"])?;
    Ok(())
}

fn link_exists(ns: &str, ifname: &str) -> bool {
    run("ip", &["-n", ns, "link", "show", "dev", ifname]).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn topo() -> Topology {
        Topology {
            lab: "t".into(),
            slot: 3,
            nodes: 3,
        }
    }

    #[test]
    fn node_addresses_follow_the_reference_scenario() {
        let t = topo();
        let n1 = t.node(1);
        assert_eq!(n1.ipv4, Ipv4Addr::new(10, 0, 0, 231));
        assert_eq!(n1.ipv6.to_string(), "fd10::231");
        assert_eq!(n1.mac, "02:1b:00:00:00:e7");
        assert_eq!(t.node(3).ipv4, Ipv4Addr::new(10, 0, 0, 233));
        assert_eq!(t.netns("node2"), "ilb-t-node2");
    }

    #[test]
    fn every_host_has_a_distinct_address_and_mac() {
        let hosts = topo().hosts();
        for (i, a) in hosts.iter().enumerate() {
            for b in &hosts[i + 1..] {
                assert_ne!(a.ipv4, b.ipv4);
                assert_ne!(a.ipv6, b.ipv6);
                assert_ne!(a.mac, b.mac);
                assert_ne!(a.netns, b.netns);
            }
        }
    }

    #[test]
    fn slot_links_are_told_apart_from_other_slots() {
        let links: Vec<String> = ["ilbm1", "ilbm1n2", "ilbm10", "ilbm10n1", "ilbm1x", "eth0"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let of1: Vec<&String> = slot_links(1, &links).collect();
        assert_eq!(of1, ["ilbm1", "ilbm1n2"]);
        let of10: Vec<&String> = slot_links(10, &links).collect();
        assert_eq!(of10, ["ilbm10", "ilbm10n1"]);
        assert_eq!(slot_links(2, &links).count(), 0);
    }

    #[test]
    fn management_subnet_is_link_local_and_per_slot() {
        let t = topo();
        assert_eq!(t.mgmt_host_ip(), Ipv4Addr::new(169, 254, 103, 1));
        assert_eq!(t.mgmt_node_ip(2), Ipv4Addr::new(169, 254, 103, 12));
        assert!(t.mgmt_host_ip().is_link_local());
        assert!(t.mgmt_bridge().len() <= 15);
    }
}
