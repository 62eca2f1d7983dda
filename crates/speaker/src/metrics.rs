//! The speaker's metrics, with MetalLB's names.
//!
//! ```text
//!   Registry (prometheus-client)  metallb_k8s_client_*, metallb_speaker_announced{service,protocol,node,ip}
//!   responder Counters            metallb_layer2_{requests_received,responses_sent,gratuitous_sent}{ip}
//!                                 ironlb_layer2_frames_dropped_total{reason}
//!   conflicts (speaker)           ironlb_layer2_address_conflicts_total{ip}
//!   membership Stats              ironlb_membership_{datagrams_received,...}_total
//!   BGP sessions (bgp_runtime)    metallb_bgp_{session_up,updates_total,announced_prefixes_total,
//!                                 pending_prefixes_total}{peer="addr:port"}
//! ```
//!
//! MetalLB's layer 2 counters carry no `_total` suffix; prometheus-client always appends one
//! to counters, so those are written by [`render`] itself, with the same names and labels as
//! MetalLB's, keeping existing dashboards working.

use ironlb_k8s::metrics::{K8sClientMetrics, MetricsRegistry};
use ironlb_l2::responder::Counters;
use ironlb_membership::Stats;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

/// Labels of `metallb_speaker_announced`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct AnnouncedLabels {
    /// `namespace/name`.
    pub service: String,
    /// `layer2`.
    pub protocol: String,
    /// This node.
    pub node: String,
    /// The address.
    pub ip: String,
}

/// What one BGP session shows (`metallb_bgp_*{peer}`), refreshed by the BGP runtime.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BgpPeerFigures {
    /// The session is Established.
    pub session_up: bool,
    /// UPDATE messages sent.
    pub updates_sent: u64,
    /// Prefixes the peer has from us now.
    pub announced_prefixes: u64,
    /// Wanted prefixes not sent (session down, family not negotiated).
    pub pending_prefixes: u64,
}

/// What one BFD session shows (`metallb_bfd_*{peer}`), refreshed by the BGP runtime.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BfdPeerFigures {
    /// The session is Up.
    pub session_up: bool,
    /// Control packets received.
    pub control_packet_input: u64,
    /// Control packets sent.
    pub control_packet_output: u64,
    /// Echo packets received (no Echo function: 0).
    pub echo_packet_input: u64,
    /// Echo packets sent (no Echo function: 0).
    pub echo_packet_output: u64,
    /// Times the session went Up.
    pub session_up_events: u64,
    /// Times the session left Up.
    pub session_down_events: u64,
}

/// Everything `/metrics` shows.
#[derive(Clone)]
pub struct SpeakerMetrics {
    /// The registry of prometheus-client metrics.
    pub registry: Arc<MetricsRegistry>,
    /// `metallb_k8s_client_*`.
    pub k8s: K8sClientMetrics,
    /// `metallb_speaker_announced`: 1 per announced (Service, address).
    pub announced: Family<AnnouncedLabels, Gauge>,
    /// The responder's counters.
    pub responder: Arc<Counters>,
    /// Conflicts reported per address.
    pub conflicts: Arc<Mutex<BTreeMap<IpAddr, u64>>>,
    /// The membership's counters, when membership runs.
    pub membership: Arc<Mutex<Option<Stats>>>,
    /// BGP sessions by MetalLB's `peer` label (`address:port`).
    pub bgp: Arc<Mutex<BTreeMap<String, BgpPeerFigures>>>,
    /// BFD sessions by MetalLB's `peer` label (the address).
    pub bfd: Arc<Mutex<BTreeMap<String, BfdPeerFigures>>>,
}

impl SpeakerMetrics {
    /// Creates and registers every metric.
    pub fn new() -> Self {
        let mut registry = MetricsRegistry::default();
        let k8s = K8sClientMetrics::register(&mut registry);
        let announced = Family::<AnnouncedLabels, Gauge>::default();
        registry.register(
            "metallb_speaker_announced",
            "Services being announced from this node. This is desired state, it does not guarantee that the routing protocols have converged.",
            announced.clone(),
        );
        SpeakerMetrics {
            registry: Arc::new(registry),
            k8s,
            announced,
            responder: Arc::default(),
            conflicts: Arc::default(),
            membership: Arc::default(),
            bgp: Arc::default(),
            bfd: Arc::default(),
        }
    }

    /// Counts one conflict for `ip`.
    pub fn conflict(&self, ip: IpAddr) {
        if let Ok(mut m) = self.conflicts.lock() {
            *m.entry(ip).or_default() += 1;
        }
    }
}

impl Default for SpeakerMetrics {
    fn default() -> Self {
        Self::new()
    }
}

fn counter_header(out: &mut String, name: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} counter");
}

/// The text exposition of every speaker metric.
pub fn render(m: &SpeakerMetrics) -> String {
    let base = ironlb_k8s::metrics::encode(&m.registry);
    let mut out = base.strip_suffix("# EOF\n").unwrap_or(&base).to_string();
    let by_ip = m.responder.by_address();
    type Pick = fn(&ironlb_l2::responder::AddressCounts) -> u64;
    let families: [(&str, &str, Pick); 3] = [
        (
            "metallb_layer2_requests_received",
            "Number of layer2 requests received for owned IPs",
            |c| c.requests_received,
        ),
        (
            "metallb_layer2_responses_sent",
            "Number of layer2 responses sent for owned IPs",
            |c| c.responses_sent,
        ),
        (
            "metallb_layer2_gratuitous_sent",
            "Number of gratuitous layer2 packets sent for owned IPs",
            |c| c.gratuitous_sent,
        ),
    ];
    for (name, help, pick) in families {
        counter_header(&mut out, name, help);
        for (ip, c) in &by_ip {
            let _ = writeln!(out, "{name}{{ip=\"{ip}\"}} {}", pick(c));
        }
    }
    counter_header(
        &mut out,
        "ironlb_layer2_frames_dropped_total",
        "Malformed ARP/NDP frames dropped, by reason",
    );
    for (reason, n) in m.responder.dropped_by_reason() {
        let _ = writeln!(
            out,
            "ironlb_layer2_frames_dropped_total{{reason=\"{}\"}} {n}",
            reason.reason()
        );
    }
    counter_header(
        &mut out,
        "ironlb_layer2_address_conflicts_total",
        "Times another host was seen claiming an address this node announces (or is about to)",
    );
    if let Ok(c) = m.conflicts.lock() {
        for (ip, n) in c.iter() {
            let _ = writeln!(
                out,
                "ironlb_layer2_address_conflicts_total{{ip=\"{ip}\"}} {n}"
            );
        }
    }
    for (name, v) in [
        ("ironlb_layer2_probes_sent_total", m.responder.probes_sent()),
        ("ironlb_layer2_send_errors_total", m.responder.send_errors()),
    ] {
        counter_header(&mut out, name, "Layer 2 responder counter");
        let _ = writeln!(out, "{name} {v}");
    }
    if let Ok(Some(s)) = m.membership.lock().map(|s| *s) {
        for (name, v) in [
            ("ironlb_membership_datagrams_received_total", s.received),
            ("ironlb_membership_datagrams_sent_total", s.sent),
            (
                "ironlb_membership_dropped_unauthenticated_total",
                s.dropped_unauthenticated,
            ),
            (
                "ironlb_membership_dropped_replayed_total",
                s.dropped_replayed,
            ),
            (
                "ironlb_membership_dropped_not_member_total",
                s.dropped_not_member,
            ),
            ("ironlb_membership_dropped_invalid_total", s.dropped_invalid),
        ] {
            counter_header(&mut out, name, "Membership socket counter");
            let _ = writeln!(out, "{name} {v}");
        }
    }
    render_bgp(m, &mut out);
    render_bfd(m, &mut out);
    out.push_str("# EOF\n");
    out
}

/// `metallb_bgp_*{peer}`: MetalLB's native speaker's names, types and labels (the two
/// `_total` gauges included).
fn render_bgp(m: &SpeakerMetrics, out: &mut String) {
    let Ok(peers) = m.bgp.lock() else { return };
    type Pick = fn(&BgpPeerFigures) -> u64;
    let families: [(&str, &str, &str, Pick); 4] = [
        (
            "metallb_bgp_session_up",
            "gauge",
            "BGP session state (1 is up, 0 is down)",
            |f| u64::from(f.session_up),
        ),
        (
            "metallb_bgp_updates_total",
            "counter",
            "Number of BGP UPDATE messages sent",
            |f| f.updates_sent,
        ),
        (
            "metallb_bgp_announced_prefixes_total",
            "gauge",
            "Number of prefixes currently being advertised on the BGP session",
            |f| f.announced_prefixes,
        ),
        (
            "metallb_bgp_pending_prefixes_total",
            "gauge",
            "Number of prefixes that should be advertised on the BGP session",
            |f| f.pending_prefixes,
        ),
    ];
    for (name, kind, help, pick) in families {
        // OpenMetrics names a counter family without its samples' `_total`.
        let family = if kind == "counter" {
            name.strip_suffix("_total").unwrap_or(name)
        } else {
            name
        };
        let _ = writeln!(out, "# HELP {family} {help}");
        let _ = writeln!(out, "# TYPE {family} {kind}");
        for (peer, f) in peers.iter() {
            let _ = writeln!(out, "{name}{{peer=\"{peer}\"}} {}", pick(f));
        }
    }
}

/// `metallb_bfd_*{peer}`: MetalLB's names (FRR mode), types and labels.
fn render_bfd(m: &SpeakerMetrics, out: &mut String) {
    let Ok(peers) = m.bfd.lock() else { return };
    type Pick = fn(&BfdPeerFigures) -> u64;
    let families: [(&str, &str, &str, Pick); 7] = [
        (
            "metallb_bfd_session_up",
            "gauge",
            "BFD session state (1 is up, 0 is down)",
            |f| u64::from(f.session_up),
        ),
        (
            "metallb_bfd_control_packet_input",
            "counter",
            "Number of received BFD control packets",
            |f| f.control_packet_input,
        ),
        (
            "metallb_bfd_control_packet_output",
            "counter",
            "Number of sent BFD control packets",
            |f| f.control_packet_output,
        ),
        (
            "metallb_bfd_echo_packet_input",
            "counter",
            "Number of received BFD echo packets",
            |f| f.echo_packet_input,
        ),
        (
            "metallb_bfd_echo_packet_output",
            "counter",
            "Number of sent BFD echo packets",
            |f| f.echo_packet_output,
        ),
        (
            "metallb_bfd_session_up_events",
            "counter",
            "Number of BFD session up events",
            |f| f.session_up_events,
        ),
        (
            "metallb_bfd_session_down_events",
            "counter",
            "Number of BFD session down events",
            |f| f.session_down_events,
        ),
    ];
    for (name, kind, help, pick) in families {
        let _ = writeln!(out, "# HELP {name} {help}");
        let _ = writeln!(out, "# TYPE {name} {kind}");
        for (peer, f) in peers.iter() {
            let _ = writeln!(out, "{name}{{peer=\"{peer}\"}} {}", pick(f));
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn names_and_labels_are_metallbs() {
        let m = SpeakerMetrics::new();
        m.announced
            .get_or_create(&AnnouncedLabels {
                service: "default/web".into(),
                protocol: "layer2".into(),
                node: "node1".into(),
                ip: "10.0.0.150".into(),
            })
            .set(1);
        m.conflict("10.0.0.150".parse().unwrap());
        let text = render(&m);
        assert!(
            text.contains(
                "metallb_speaker_announced{service=\"default/web\",protocol=\"layer2\",node=\"node1\",ip=\"10.0.0.150\"} 1"
            ),
            "{text}"
        );
        assert!(text.contains("# TYPE metallb_layer2_requests_received counter"));
        assert!(text.contains("ironlb_layer2_address_conflicts_total{ip=\"10.0.0.150\"} 1"));
        assert!(text.contains("ironlb_layer2_frames_dropped_total{reason=\"truncated_arp\"} 0"));
        assert!(text.ends_with("# EOF\n"));
        assert_eq!(text.matches("# EOF").count(), 1);
    }

    #[test]
    fn bgp_session_metrics_carry_the_peer() {
        let m = SpeakerMetrics::new();
        m.bgp.lock().unwrap().insert(
            "10.0.0.1:179".into(),
            BgpPeerFigures {
                session_up: true,
                updates_sent: 7,
                announced_prefixes: 3,
                pending_prefixes: 1,
            },
        );
        let text = render(&m);
        for line in [
            "# TYPE metallb_bgp_session_up gauge",
            "metallb_bgp_session_up{peer=\"10.0.0.1:179\"} 1",
            "# TYPE metallb_bgp_updates counter",
            "metallb_bgp_updates_total{peer=\"10.0.0.1:179\"} 7",
            "metallb_bgp_announced_prefixes_total{peer=\"10.0.0.1:179\"} 3",
            "metallb_bgp_pending_prefixes_total{peer=\"10.0.0.1:179\"} 1",
        ] {
            assert!(text.contains(line), "{line} missing:\n{text}");
        }
        assert!(text.ends_with("# EOF\n"));
    }

    #[test]
    fn bfd_session_metrics_carry_the_peer() {
        let m = SpeakerMetrics::new();
        m.bfd.lock().unwrap().insert(
            "10.0.0.1".into(),
            BfdPeerFigures {
                session_up: true,
                control_packet_input: 5,
                control_packet_output: 6,
                session_up_events: 1,
                ..BfdPeerFigures::default()
            },
        );
        let text = render(&m);
        for line in [
            "metallb_bfd_session_up{peer=\"10.0.0.1\"} 1",
            "metallb_bfd_control_packet_input{peer=\"10.0.0.1\"} 5",
            "metallb_bfd_control_packet_output{peer=\"10.0.0.1\"} 6",
            "metallb_bfd_echo_packet_input{peer=\"10.0.0.1\"} 0",
            "metallb_bfd_session_up_events{peer=\"10.0.0.1\"} 1",
            "metallb_bfd_session_down_events{peer=\"10.0.0.1\"} 0",
        ] {
            assert!(text.contains(line), "{line} missing:\n{text}");
        }
    }
}
