//! ironlb's BGP speaker: announces Service addresses to routers.
//!
//! ```text
//!   packet   (pure)  bytes <-> Message: OPEN / UPDATE / NOTIFICATION / KEEPALIVE / ROUTE-REFRESH,
//!                    framing (check, then parse), RFC 4271 / 7606 error classification
//!   rib      (pure)  wanted announcements -> Adj-RIB-Out delta -> fewest UPDATE messages
//!   session::fsm     (pure)  RFC 4271 §8 state machine: Event in, Actions out, no I/O, no clock
//!   session::driver  (async) one TCP connection per peer, timers, runs the FSM, sends deltas
//! ```
//!
//! Everything except `session::driver` runs in tests without privileges or sockets.

pub mod packet;
pub mod rib;
pub mod session;

pub use packet::message::Message;
