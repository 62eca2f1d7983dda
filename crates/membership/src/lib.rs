//! Fast liveness of speakers: SWIM probing over UDP with every datagram authenticated.
//!
//! ```text
//!   Kubernetes (Nodes / speaker Pods)          the network (UDP 7946)
//!        | desired: name -> addr                    ^  datagrams: frame::seal / frame::open
//!        v  (watch::Receiver<DesiredMembers>)       |  HMAC-SHA256 tag, ReplayGuard window
//!   +---------------------------------------------------------------+
//!   |  runner task (tokio): socket, timers, announce loop           |
//!   |     foca::Foca<NodeId>  -- SWIM + suspicion + gossip           |
//!   +---------------------------------------------------------------+
//!        | live: watch::Receiver<BTreeSet<String>> (self included)
//!        | events: broadcast::Receiver<MemberEvent> (joined / failed / removed, with time)
//!        v
//!   the speaker's owner selection
//! ```
//!
//! *Kubernetes decides who should be a member, probing decides who is alive*: datagrams from
//! names outside the desired set are dropped, members learned from gossip but not desired are
//! kept down locally (never probed, never reported), and removed names are forgotten.
//!
//! # Security
//! Every datagram is a [`frame`]: HMAC-SHA256 over the whole datagram with a key derived from the
//! shared secret (the `secretkey` of the `memberlist` Secret). A datagram with a missing, short
//! or wrong tag is dropped and counted ([`Stats::dropped_unauthenticated`]), so a host without
//! the key can neither join nor forge a death. Replays of recorded datagrams are refused by a
//! per-sender timestamp window ([`replay`]); foca's incarnation rules alone do not stop them
//! (see the module docs for why).
//!
//! # Timing and the false-positive trade-off
//! Defaults ([`Settings::default`]): probe every 100 ms, direct `Ack` awaited 40 ms, then 3
//! indirect probes until the end of the period, 300 ms to refute a suspicion, updates gossiped
//! every 30 ms. A dead member is suspected by the first member to probe it (each member probes
//! every other in a shuffled round robin, so within `(n-1)` periods, usually the first one or
//! two), declared down `suspect_to_down_after` later, and the verdict is gossiped within a few
//! tens of milliseconds. Measured on loopback with 3 members over 20 kills: p50 ≈ 0.43 s, p99
//! ≈ 0.62 s (see `docs/benchmarks.md`, section "Membership").
//!
//! A *false positive* needs, for one probe of a live member with per-datagram loss `p`:
//! the direct round trip lost (`1-(1-p)²`), every one of the `k` indirect round trips lost
//! (`1-(1-p)⁴` each: ping-req, ping, ack, forwarded ack), and then every refutation lost for
//! 300 ms (the suspected member hears of the suspicion through ~10 gossip rounds and answers
//! with a higher incarnation). At `p = 5 %` and 3 members (`k = 1` helper):
//! `P(probe fails) ≈ 0.0975 · 0.185 ≈ 1.8 %`, i.e. about 0.36 suspicions per second across the
//! cluster (2 members · 10 probes/s · 1.8 %), almost all refuted; a refutation has to cross a
//! lossy link many times in a row to fail, so declared-down false positives are rare. With
//! `k = 3` helpers (≥ 5 members) `P(probe fails) ≈ 0.0975 · 0.185³ ≈ 0.06 %`. Halving
//! `suspect_to_down_after` shortens detection by 150 ms but halves the refutation chances.
//! A member wrongly declared down renews its identity and rejoins at once (a short flap, seen
//! as `Failed` then `Joined`). The measured count over 30 s at 5 % injected loss is recorded
//! in `docs/benchmarks.md`.

pub mod frame;
mod identity;
pub mod replay;
mod runner;
mod settings;

pub use identity::NodeId;
pub use runner::{DesiredMembers, EventKind, MemberEvent, Membership, MembershipConfig, Stats};
pub use settings::Settings;

/// Why membership could not start.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The UDP socket could not be bound.
    #[error("binding the membership socket on {addr}: {source}")]
    Bind {
        /// The address asked for.
        addr: std::net::SocketAddr,
        /// The cause.
        source: std::io::Error,
    },
    /// The node name does not fit the frame (more than 255 bytes).
    #[error("node name longer than 255 bytes")]
    NameTooLong,
}

/// Microseconds since the Unix epoch by the wall clock (0 if the clock is before 1970).
pub(crate) fn wall_clock_us() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}
