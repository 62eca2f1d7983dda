//! BFD, Bidirectional Forwarding Detection (RFC 5880, single hop per RFC 5881, asynchronous
//! mode), so a BGP session to a router goes down within the detection time of a link failure
//! rather than the BGP hold time.
//!
//! ```text
//!   params   BFDProfile ─> BfdParams            (pure)
//!   packet   ControlPacket::encode / decode     (pure, fuzzed)
//!   session  Session::handle(now, Event) ─> [Action]   (pure state machine, timers as deadlines)
//!   network  UDP sockets: rx port 3784 with TTL, tx from 49152-65535 with TTL 255
//!   manager  BfdManager (one task, every session) ─> BfdHandle { state, up, counters }
//!   echo     Echo frames (pure): IPv4/UDP 3785 from and to our own address, to the peer's MAC
//! ```
//!
//! The Echo function (`echoMode`; IPv4 sessions only, IPv6 sessions run without it): echoes
//! are sent as raw Ethernet frames through a packet socket to the peer's MAC, come back through
//! the peer's forwarding and are read from the same packet socket (before the IP layer, which
//! would drop a packet with one of our own addresses as its source). We do not loop the peer's echoes: every packet
//! advertises a Required Min Echo RX Interval of 0 (RFC 5880 §6.8.9).

pub mod echo;
pub mod manager;
pub mod network;
pub mod packet;
pub mod params;
pub mod session;

pub use manager::{
    AddError, BfdCounters, BfdHandle, BfdManager, BfdPeer, BfdState, DropCounters, ManagerConfig,
};
pub use packet::{ControlPacket, DecodeError, Diag, State};
pub use params::BfdParams;
pub use session::{Action, Event, Session};
