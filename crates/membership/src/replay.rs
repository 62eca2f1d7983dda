//! Replay protection for authenticated frames (pure, no I/O).
//!
//! The HMAC proves a frame came from a holder of the key, not that it is new. Foca's
//! incarnation rules do not make replays harmless: a recorded `Ack` from a now-dead speaker
//! matches a current probe whenever the `u8` probe number comes round again (1 in 256), and a
//! recorded "leave" or "X is down" of an earlier life is harmless only because the boot id
//! moved on. Choice: every frame carries the sender's timestamp (µs, strictly increasing per
//! sender, see [`SendClock`]) and its node name under the tag, and a receiver accepts it only
//! if:
//!
//! 1. it is within `max_skew` of the receiver's clock (stale recordings are refused outright; this
//!    asks node clocks to agree within that bound, which NTP on cluster nodes gives easily), and
//! 2. it is newer than `highest - reorder_window` for that sender and not seen before (an
//!    IPsec-style sliding window: UDP reordering within the window is tolerated, duplicates are
//!    not).
//!
//! A frame recorded on its way to one member and replayed to another is refused by foca itself:
//! the SWIM header names its destination identity.
//!
//! Residual exposure, documented: a receiver that just restarted has no window yet and accepts a
//! replay of the last `max_skew` of traffic once; the effect is bounded to looking alive for one
//! probe cycle, after which probing decides again.

use std::collections::{BTreeSet, HashMap};

/// Why a frame was refused as a replay.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ReplayError {
    /// The timestamp is further than `max_skew` from the receiver's clock.
    #[error("timestamp outside the clock-skew window")]
    Stale,
    /// Older than the sender's reorder window.
    #[error("older than the reorder window")]
    TooOld,
    /// This exact timestamp from this sender was accepted already.
    #[error("duplicate")]
    Duplicate,
}

#[derive(Debug, Default)]
struct SenderWindow {
    highest: u64,
    seen: BTreeSet<u64>,
}

/// Per-sender sliding windows of accepted timestamps.
#[derive(Debug)]
pub struct ReplayGuard {
    max_skew_us: u64,
    window_us: u64,
    senders: HashMap<String, SenderWindow>,
}

impl ReplayGuard {
    /// A guard refusing frames further than `max_skew_us` from now or older than `window_us`
    /// behind the newest frame of their sender.
    pub fn new(max_skew_us: u64, window_us: u64) -> ReplayGuard {
        ReplayGuard {
            max_skew_us,
            window_us,
            senders: HashMap::new(),
        }
    }

    /// Accepts (and remembers) or refuses the frame `sent_us` from `sender`, at receiver time
    /// `now_us`.
    pub fn check(&mut self, sender: &str, sent_us: u64, now_us: u64) -> Result<(), ReplayError> {
        if sent_us.abs_diff(now_us) > self.max_skew_us {
            return Err(ReplayError::Stale);
        }
        let w = match self.senders.get_mut(sender) {
            Some(w) => w,
            None => self.senders.entry(sender.to_owned()).or_default(),
        };
        if sent_us.saturating_add(self.window_us) < w.highest {
            return Err(ReplayError::TooOld);
        }
        if !w.seen.insert(sent_us) {
            return Err(ReplayError::Duplicate);
        }
        if sent_us > w.highest {
            w.highest = sent_us;
            let floor = w.highest.saturating_sub(self.window_us);
            // Everything below the floor is refused by the TooOld rule already.
            w.seen = w.seen.split_off(&floor);
        }
        Ok(())
    }

    /// Forgets senders for which `keep` is false (members removed from the desired set).
    pub fn retain(&mut self, mut keep: impl FnMut(&str) -> bool) {
        self.senders.retain(|name, _| keep(name));
    }

    /// How many senders are tracked.
    pub fn senders(&self) -> usize {
        self.senders.len()
    }
}

/// Hands out strictly increasing send timestamps from a wall clock that may stand still or step
/// back a little.
#[derive(Debug, Default)]
pub struct SendClock {
    last: u64,
}

impl SendClock {
    /// The timestamp for the next frame: `now_us`, or one more than the previous one.
    pub fn next(&mut self, now_us: u64) -> u64 {
        self.last = now_us.max(self.last.saturating_add(1));
        self.last
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: u64 = 1_000_000;

    #[test]
    fn accepts_in_order_and_refuses_duplicates() {
        let mut g = ReplayGuard::new(30 * S, S);
        let now = 100 * S;
        assert_eq!(g.check("a", now, now), Ok(()));
        assert_eq!(g.check("a", now + 1, now), Ok(()));
        assert_eq!(g.check("a", now, now), Err(ReplayError::Duplicate));
        // Another sender has its own window.
        assert_eq!(g.check("b", now, now), Ok(()));
    }

    #[test]
    fn tolerates_reordering_inside_the_window_only() {
        let mut g = ReplayGuard::new(30 * S, S);
        let now = 100 * S;
        assert_eq!(g.check("a", now + 500_000, now), Ok(()));
        assert_eq!(
            g.check("a", now, now),
            Ok(()),
            "0.5 s late is inside a 1 s window"
        );
        assert_eq!(g.check("a", now + 2 * S, now), Ok(()));
        assert_eq!(
            g.check("a", now + 900_000, now),
            Err(ReplayError::TooOld),
            "1.1 s behind the newest"
        );
    }

    #[test]
    fn refuses_stale_and_future_frames() {
        let mut g = ReplayGuard::new(30 * S, S);
        let now = 1000 * S;
        assert_eq!(g.check("a", now - 31 * S, now), Err(ReplayError::Stale));
        assert_eq!(g.check("a", now + 31 * S, now), Err(ReplayError::Stale));
        assert_eq!(g.check("a", now - 29 * S, now), Ok(()));
    }

    #[test]
    fn window_memory_stays_bounded() {
        let mut g = ReplayGuard::new(u64::MAX, 1000);
        for t in 0..100_000u64 {
            assert_eq!(g.check("a", t * 10, 0), Ok(()));
        }
        let w = g.senders.get("a").expect("tracked");
        assert!(w.seen.len() <= 101, "{} timestamps kept", w.seen.len());
    }

    #[test]
    fn retain_forgets_senders() {
        let mut g = ReplayGuard::new(30 * S, S);
        g.check("a", 5, 5).expect("ok");
        g.check("b", 5, 5).expect("ok");
        g.retain(|n| n == "a");
        assert_eq!(g.senders(), 1);
    }

    #[test]
    fn send_clock_is_strictly_increasing() {
        let mut c = SendClock::default();
        assert_eq!(c.next(10), 10);
        assert_eq!(c.next(10), 11);
        assert_eq!(
            c.next(5),
            12,
            "a clock stepping back does not repeat a timestamp"
        );
        assert_eq!(c.next(100), 100);
    }
}
