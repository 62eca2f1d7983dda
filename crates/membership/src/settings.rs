//! Protocol timings, tuned for sub-second detection on a LAN.

use std::num::{NonZeroU8, NonZeroUsize};
use std::time::Duration;

/// Timings of probing, suspicion, gossip and replay protection.
///
/// The defaults detect a dead speaker in about a quarter of a second on a LAN: a member is
/// suspected one probe period after a survivor first probes it and declared down
/// `suspect_to_down_after` later (see the crate docs for the measured figures and the
/// false-positive trade-off).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    /// How often each member probes one other member (round robin in random order).
    pub probe_period: Duration,
    /// How long to wait for a direct `Ack` before asking others to probe indirectly.
    pub probe_rtt: Duration,
    /// How many members are asked to probe indirectly.
    pub indirect_probes: NonZeroUsize,
    /// How long a suspected member has to refute before it is declared down.
    pub suspect_to_down_after: Duration,
    /// How often pending updates are gossiped (only when there are any).
    pub gossip_interval: Duration,
    /// How often desired members that are not live are (re)announced to.
    pub announce_interval: Duration,
    /// How long a down member is remembered (stale gossip cannot resurrect it meanwhile).
    pub remove_down_after: Duration,
    /// Largest accepted distance between a frame's timestamp and the receiver's clock: node
    /// clocks must agree within it (a node further off is refused, counted as replayed).
    pub max_clock_skew: Duration,
    /// How far behind a sender's newest frame a reordered frame may still arrive.
    pub reorder_window: Duration,
    /// Largest foca payload per datagram (the frame adds at most 300 bytes).
    pub max_payload: NonZeroUsize,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            probe_period: Duration::from_millis(50),
            probe_rtt: Duration::from_millis(20),
            indirect_probes: NonZeroUsize::MIN.saturating_add(2),
            suspect_to_down_after: Duration::from_millis(200),
            gossip_interval: Duration::from_millis(30),
            announce_interval: Duration::from_millis(500),
            remove_down_after: Duration::from_secs(15),
            max_clock_skew: Duration::from_secs(30),
            reorder_window: Duration::from_secs(2),
            max_payload: NonZeroUsize::MIN.saturating_add(1099),
        }
    }
}

impl Settings {
    /// How many times an update is piggybacked: memberlist's `4·log10(n+1)`, but at least 6 —
    /// with a 200 ms suspicion, a suspicion and its refutation must not run out of copies in a
    /// small cluster where every copy crosses the same few lossy links.
    pub fn max_transmissions(cluster_size: usize) -> NonZeroU8 {
        let n = f64::from(u32::try_from(cluster_size).unwrap_or(u32::MAX));
        let tx = ((n + 1.0).log10() * 4.0).ceil().clamp(6.0, 255.0);
        // In 3..=255 after the clamp.
        NonZeroU8::new(tx as u8).unwrap_or(NonZeroU8::MAX)
    }

    /// The foca configuration for a cluster of `cluster_size` desired members.
    pub fn foca_config(&self, cluster_size: usize) -> foca::Config {
        foca::Config {
            probe_period: self.probe_period,
            probe_rtt: self.probe_rtt,
            num_indirect_probes: self.indirect_probes,
            max_transmissions: Self::max_transmissions(cluster_size),
            suspect_to_down_after: self.suspect_to_down_after,
            remove_down_after: Some(self.remove_down_after),
            max_packet_size: self.max_payload,
            // Tell a member we declared down, so it renews its identity and rejoins at once.
            notify_down_members: true,
            // Our own announce loop covers joining and healing (see `announce_interval`), and
            // targets only the members Kubernetes wants; foca's periodic announces stay off.
            periodic_announce: None,
            periodic_announce_to_down_members: None,
            periodic_gossip: Some(foca::PeriodicParams {
                frequency: self.gossip_interval,
                num_members: self.indirect_probes,
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transmissions_grow_with_the_cluster() {
        assert_eq!(Settings::max_transmissions(1).get(), 6);
        assert_eq!(Settings::max_transmissions(3).get(), 6);
        assert_eq!(Settings::max_transmissions(100).get(), 9);
        assert_eq!(Settings::max_transmissions(5000).get(), 15);
    }

    #[test]
    fn defaults_are_sub_second() {
        let s = Settings::default();
        assert!(s.probe_rtt < s.probe_period);
        assert!(s.probe_period * 3 + s.suspect_to_down_after < Duration::from_secs(1));
    }
}
