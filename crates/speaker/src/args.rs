//! `ironlb speaker` flags: MetalLB's speaker flags and environment variables, plus a few of
//! ironlb's own.

use ironlb_membership::Settings;
use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

/// `ironlb speaker` flags.
#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// The node this speaker runs on.
    #[arg(long, env = "METALLB_NODE_NAME")]
    pub node_name: String,
    /// This speaker's Pod (owner of its ServiceL2Status objects, Event instance).
    #[arg(long, env = "METALLB_POD_NAME")]
    pub pod_name: Option<String>,
    /// The namespace ironlb runs in and reads its configuration from.
    #[arg(long, env = "METALLB_NAMESPACE", default_value = ironlb_api::DEFAULT_NAMESPACE)]
    pub namespace: String,
    /// Membership: the address to bind (default: the node's first InternalIP).
    #[arg(long, env = "METALLB_ML_BIND_ADDR")]
    pub ml_bindaddr: Option<IpAddr>,
    /// Membership: the UDP port.
    #[arg(long, env = "METALLB_ML_BIND_PORT", default_value_t = 7946)]
    pub ml_bindport: u16,
    /// Membership: label selector of the speaker Pods (who should be a member; default: every
    /// Node at its InternalIP).
    #[arg(long, env = "METALLB_ML_LABELS")]
    pub ml_labels: Option<String>,
    /// Membership: the mounted `memberlist` Secret (a directory holding `secretkey`, or the key
    /// file itself). Without it there is no membership: every Node counts as live (MetalLB
    /// without memberlist).
    #[arg(long, env = "METALLB_ML_SECRET_KEY_PATH")]
    pub ml_secret_key_path: Option<PathBuf>,
    /// Handle only Services with this spec.loadBalancerClass (default: only Services without one).
    #[arg(long, env = "METALLB_LB_CLASS")]
    pub lb_class: Option<String>,
    /// Ignore the node.kubernetes.io/exclude-from-external-load-balancers label.
    #[arg(long)]
    pub ignore_exclude_lb: bool,
    /// Address to serve /metrics on.
    #[arg(long, env = "METALLB_HOST", default_value = "0.0.0.0")]
    pub host: String,
    /// Port to serve /metrics (and /healthz) on.
    #[arg(long, env = "METALLB_ML_PORT", default_value_t = 7472)]
    pub port: u16,
    /// Log level: all, debug, info, warn, error, none.
    #[arg(long, env = "METALLB_LOG_LEVEL", default_value = "info")]
    pub log_level: String,
    /// Log format: JSON lines (MetalLB's) or text.
    #[arg(long, value_enum, default_value_t = ironlb_k8s::runtime::LogFormat::Json)]
    pub log_format: ironlb_k8s::runtime::LogFormat,
    /// Deprecated spelling of `--log-format json`.
    #[arg(long, hide = true)]
    pub log_json: bool,
    /// Interfaces never to answer on, in addition to MetalLB's defaults (docker*, veth*,
    /// kube-ipvs*, ...): comma-separated exact names or prefixes written `name*`.
    #[arg(long, value_delimiter = ',')]
    pub interfaces_exclude: Vec<String>,
    /// Gratuitous ARP / unsolicited NA frames sent on gaining an address (the first at once).
    #[arg(long, default_value_t = 5)]
    pub gratuitous_count: u32,
    /// Milliseconds between the gratuitous announcements sent on gaining an address.
    #[arg(long, default_value_t = 1100)]
    pub gratuitous_interval_ms: u64,
    /// Interval in seconds for periodic gratuitous ARP/NDP announcements. 0 disables periodic
    /// announcements.
    #[arg(long, value_name = "SECONDS", default_value_t = 0)]
    pub gratuitous_arp_interval: u32,
    /// At start, how long to wait for the other members before announcing anything (ends early
    /// once every desired member is live). Keeps a restarted speaker from claiming addresses
    /// that live peers own.
    #[arg(long, default_value_t = 1500)]
    pub join_wait_ms: u64,
    /// Membership: milliseconds between probes of one peer by this speaker (round robin). Lower
    /// detects faster; see `ironlb_membership` for the false-positive trade-off.
    #[arg(long, default_value_t = default_ms(|s| s.probe_period))]
    pub ml_probe_period_ms: u64,
    /// Membership: milliseconds to wait for a direct acknowledgement before probing indirectly.
    #[arg(long, default_value_t = default_ms(|s| s.probe_rtt))]
    pub ml_probe_rtt_ms: u64,
    /// Membership: milliseconds a suspected peer has to refute before it is declared down.
    #[arg(long, default_value_t = default_ms(|s| s.suspect_to_down_after))]
    pub ml_suspicion_ms: u64,
    /// A speaker that sees none of its peers live takes over no new address until it has
    /// been so, with a usable interface, for this long (then it is the sole survivor): a node
    /// cut off from the others must not claim every address.
    #[arg(long, default_value_t = 3000)]
    pub sole_survivor_after_ms: u64,
    /// The kubeconfig to use (default: in-cluster or $KUBECONFIG).
    #[arg(long, env = "KUBECONFIG")]
    pub kubeconfig: Option<PathBuf>,
}

fn default_ms(field: fn(&Settings) -> Duration) -> u64 {
    u64::try_from(field(&Settings::default()).as_millis()).unwrap_or(u64::MAX)
}

impl Args {
    /// The log format (`--log-json` still means JSON).
    pub fn log_format(&self) -> ironlb_k8s::runtime::LogFormat {
        if self.log_json {
            ironlb_k8s::runtime::LogFormat::Json
        } else {
            self.log_format
        }
    }

    /// How often every announced address is announced again (`--gratuitous-arp-interval`);
    /// `None` when off.
    pub fn periodic_gratuitous(&self) -> Option<Duration> {
        (self.gratuitous_arp_interval > 0)
            .then(|| Duration::from_secs(u64::from(self.gratuitous_arp_interval)))
    }

    /// The membership timings these flags ask for (the rest at their defaults).
    pub fn membership_settings(&self) -> Settings {
        Settings {
            probe_period: Duration::from_millis(self.ml_probe_period_ms.max(1)),
            probe_rtt: Duration::from_millis(self.ml_probe_rtt_ms.max(1)),
            suspect_to_down_after: Duration::from_millis(self.ml_suspicion_ms.max(1)),
            ..Settings::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        args: Args,
    }

    fn parse(extra: &[&str]) -> Result<Args, clap::Error> {
        let argv = ["speaker", "--node-name", "node1"].iter().chain(extra);
        Cli::try_parse_from(argv).map(|c| c.args)
    }

    #[test]
    fn periodic_gratuitous_announcements_take_metallbs_flag_in_seconds_and_are_off_by_default()
    -> Result<(), clap::Error> {
        assert_eq!(parse(&[])?.periodic_gratuitous(), None);
        assert_eq!(
            parse(&["--gratuitous-arp-interval", "0"])?.periodic_gratuitous(),
            None
        );
        assert_eq!(
            parse(&["--gratuitous-arp-interval", "30"])?.periodic_gratuitous(),
            Some(Duration::from_secs(30))
        );
        assert!(parse(&["--gratuitous-arp-interval", "-1"]).is_err());
        assert!(parse(&["--gratuitous-arp-interval", "1.5"]).is_err());
        Ok(())
    }
}
