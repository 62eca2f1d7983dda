//! `ironlb speaker` in Layer 2 mode: on every node, decides which Service addresses this node
//! owns and answers ARP/NDP for exactly those.
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
//!     '--> metrics::SpeakerMetrics  -> GET /metrics
//! ```
//!
//! Every speaker computes the same owners from the same inputs ([`ironlb_l2::select_owner`]),
//! so no coordination is needed beyond liveness. Without a membership key, every Node counts as
//! live (MetalLB without memberlist).

pub mod args;
pub mod metrics;
mod runtime;
pub mod state;
pub mod status;

pub use args::Args;
pub use runtime::run;
