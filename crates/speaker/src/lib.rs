//! `ironlb speaker`: on every node, decides which Service addresses this node announces — in
//! Layer 2 mode it answers ARP/NDP for the addresses it owns; in BGP mode it announces them to
//! the BGPPeers that select it (see [`bgp_plan`] and [`bgp_runtime`]).
//!
//! ```text
//!   kube-apiserver                                       other speakers (UDP 7946, HMAC)
//!     | Services, EndpointSlices, Nodes,                     |
//!     | metallb.io config (ConfigStores), speaker Pods       v
//!     v                                                 membership (foca SWIM) --live set--.
//!   runtime main loop ---------------------------------------------------------------------+
//!     |  state::SpeakerState (pure): Nodes ∩ live -> l2::OwnerIndex -> owned Services      |
//!     |                                                                                    |
//!     +--watch<Announcements>--> l2::responder (raw sockets: answers, gratuitous, probes)  |
//!     |                              '--Conflict--> Event addressConflict + metric + log --'
//!     +--watch<DesiredStatuses>--> status::StatusWriter (ServiceL2Status, owner = our Pod)
//!     +--> EventSink (nodeAssigned / announceFailed), ConfigurationState speaker-<node>
//!     +--> bgp_runtime::BgpSpeaker: bgp_plan (pure) -> one ironlb_bgp Session per peer
//!     |        (+ BFD), ServiceBGPStatus, nodeAssigned (bgp)
//!     '--> metrics::SpeakerMetrics  -> GET /metrics
//! ```
//!
//! Every speaker computes the same owners from the same inputs ([`ironlb_l2::select_owner`]),
//! so no coordination is needed beyond liveness. Without a membership key, every Node counts as
//! live (MetalLB without memberlist).

pub mod args;
pub mod bgp_plan;
pub mod bgp_runtime;
pub mod metrics;
mod runtime;
pub mod state;
pub mod status;

pub use args::Args;
pub use runtime::run;

/// What this ironlb build serves ([`ironlb_config::Features::served`]).
pub fn features() -> ironlb_config::Features {
    ironlb_config::Features::served()
}
