//! Layer 2 mode: ARP and NDP codecs, the owner of each Service address, and the responder.
//!
//! ```text
//!   owner::select_owner / OwnerIndex   (pure)  -> which addresses this node owns
//!        |
//!        v  watch channel of Announcements
//!   responder (async, raw sockets via ironlb-sys)
//!        |-- arp::ArpFrame   decode requests, encode replies and gratuitous ARP   (pure)
//!        '-- ndp::NdpFrame   decode NS, encode NA / unsolicited NA                (pure)
//! ```
//!
//! The codecs never panic on input: every malformed frame is a [`DecodeError`] whose
//! [`DecodeError::reason`] the responder counts.

pub mod arp;
mod error;
pub mod ethernet;
pub mod ndp;
pub mod owner;
pub mod responder;

pub use arp::{ArpFrame, ArpOperation};
pub use error::{DecodeError, EncodeError};
pub use ethernet::MacAddr;
pub use ndp::{AdvertisementFlags, NdpFrame, NdpMessage};
pub use owner::{Decision, NoOwner, NodeInfo, OwnerIndex, ServiceInfo, Settings, select_owner};
