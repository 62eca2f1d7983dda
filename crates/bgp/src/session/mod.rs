//! One BGP session: the pure state machine ([`fsm`]) and the async driver that gives it a TCP
//! connection and a clock ([`driver`]).
//!
//! ```text
//!   watch<Announcements> ─┐                        ┌─> watch<SessionStatus>, SessionStats
//!                         v                        │
//!   TCP bytes ─check/parse─> Event ─> Fsm::handle ─> Vec<Action> ─> driver: send, connect,
//!   timers ───────────────────^                                      close, timers, RIB deltas
//! ```

pub mod driver;
pub mod fsm;
