//! One contiguous block of a pool, with the addresses in use kept as sorted runs, so that the
//! lowest free address is found in O(log runs) instead of MetalLB's O(used) walk.
//!
//! ```text
//!   first                                                        last
//!   |[##########]....[###].[#######]..........................|
//!     run 0            run 1  run 2        (runs: BTreeMap start -> end)
//!   lowest free = end of the run holding `first` + 1 (or `first` itself)
//! ```
//!
//! Runs never touch: two runs are always separated by at least one free, assignable address.
//! With `avoidBuggyIPs`, a run also swallows the .255/.0 addresses next to its used ones, so
//! "end + 1" of a run is (after at most two buggy addresses) free. The lookup is therefore a
//! bounded number of `BTreeMap::range` calls: O(log runs) <= O(log used).

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::service::IpFamily;

/// An address as a number: IPv4 in the low 32 bits.
pub(crate) fn to_u128(ip: IpAddr) -> (IpFamily, u128) {
    match ip {
        IpAddr::V4(a) => (IpFamily::V4, u128::from(u32::from(a))),
        IpAddr::V6(a) => (IpFamily::V6, u128::from(a)),
    }
}

/// The inverse of [`to_u128`]. IPv4 values are always < 2^32 here (they come from IPv4 ranges).
pub(crate) fn from_u128(family: IpFamily, n: u128) -> IpAddr {
    match family {
        IpFamily::V4 => IpAddr::V4(Ipv4Addr::from(u32::try_from(n).unwrap_or(u32::MAX))),
        IpFamily::V6 => IpAddr::V6(Ipv6Addr::from(n)),
    }
}

/// Whether an IPv4 address (as a number) ends in .0 or .255.
fn ends_in_0_or_255(n: u128) -> bool {
    matches!(n & 0xff, 0 | 0xff)
}

/// How many numbers in `[0, n)` end in .0 or .255.
fn buggy_below(n: u128) -> u128 {
    n.div_ceil(256) + n / 256
}

/// A contiguous block of addresses `first..=last` of one family, tracking which are in use.
///
/// Used by the [`crate::Allocator`] for every range of every pool; public so the benchmark can
/// measure it alone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AddressBlock {
    family: IpFamily,
    first: u128,
    last: u128,
    avoid_buggy: bool,
    capacity: u128,
    in_use: u128,
    /// Disjoint, non-touching runs `start -> end` (inclusive) of used (and swallowed buggy)
    /// addresses.
    runs: BTreeMap<u128, u128>,
}

impl AddressBlock {
    /// A block from `first` to `last` inclusive; `None` if the ends are of different families,
    /// out of order, or the block is the whole IPv6 space (2^128 addresses do not fit a u128).
    /// `avoid_buggy_ips` only affects IPv4 blocks.
    pub fn new(first: IpAddr, last: IpAddr, avoid_buggy_ips: bool) -> Option<Self> {
        let (family, first) = to_u128(first);
        let (last_family, last) = to_u128(last);
        if family != last_family || first > last {
            return None;
        }
        let avoid_buggy = avoid_buggy_ips && family == IpFamily::V4;
        let size = (last - first).checked_add(1)?;
        let capacity = if avoid_buggy {
            size - (buggy_below(last + 1) - buggy_below(first))
        } else {
            size
        };
        Some(Self {
            family,
            first,
            last,
            avoid_buggy,
            capacity,
            in_use: 0,
            runs: BTreeMap::new(),
        })
    }

    /// The family of the block.
    pub fn family(&self) -> IpFamily {
        self.family
    }

    /// The first address.
    pub fn first(&self) -> IpAddr {
        from_u128(self.family, self.first)
    }

    /// The last address.
    pub fn last(&self) -> IpAddr {
        from_u128(self.family, self.last)
    }

    /// How many addresses may be handed out (excluding .0/.255 under `avoidBuggyIPs`). Exact.
    pub fn capacity(&self) -> u128 {
        self.capacity
    }

    /// How many addresses are in use. Exact.
    pub fn in_use(&self) -> u128 {
        self.in_use
    }

    /// Whether every assignable address is in use.
    pub fn is_full(&self) -> bool {
        self.in_use == self.capacity
    }

    /// How many runs of used addresses are stored (memory is proportional to this).
    pub fn runs(&self) -> usize {
        self.runs.len()
    }

    /// Whether the address lies in the block (of the same family).
    pub fn contains(&self, ip: IpAddr) -> bool {
        let (family, n) = to_u128(ip);
        family == self.family && self.first <= n && n <= self.last
    }

    /// Whether the address may be handed out at all (in the block and not .0/.255 under
    /// `avoidBuggyIPs`).
    pub fn is_assignable(&self, ip: IpAddr) -> bool {
        self.contains(ip) && !self.is_buggy(to_u128(ip).1)
    }

    /// Whether the address is in use.
    pub fn is_used(&self, ip: IpAddr) -> bool {
        let (family, n) = to_u128(ip);
        family == self.family && !self.is_buggy(n) && self.run_containing(n).is_some()
    }

    /// The lowest free assignable address, in O(log runs).
    pub fn first_free(&self) -> Option<IpAddr> {
        let mut c = self.first;
        // Bounded: after a run, at most two swallowed-or-not buggy addresses precede a free one
        // (see the module doc), so this loops at most a handful of times.
        loop {
            if let Some((_, end)) = self.run_containing(c) {
                if end >= self.last {
                    return None;
                }
                c = end + 1;
            }
            if self.is_buggy(c) {
                if c >= self.last {
                    return None;
                }
                c += 1;
                continue;
            }
            return Some(from_u128(self.family, c));
        }
    }

    /// Marks an address used; `false` (and no change) if it is outside the block, not
    /// assignable, or already used.
    pub fn mark_used(&mut self, ip: IpAddr) -> bool {
        if !self.is_assignable(ip) || self.is_used(ip) {
            return false;
        }
        let n = to_u128(ip).1;
        let (mut lo, mut hi) = (n, n);
        // Swallow the buggy neighbours so runs separated only by .255/.0 become one.
        while lo > self.first && self.is_buggy(lo - 1) {
            lo -= 1;
        }
        while hi < self.last && self.is_buggy(hi + 1) {
            hi += 1;
        }
        // Merge with runs touching [lo, hi] on the left ...
        while let Some((&s, &e)) = self.runs.range(..=n).next_back() {
            if e.saturating_add(1) < lo {
                break;
            }
            self.runs.remove(&s);
            lo = lo.min(s);
            hi = hi.max(e);
        }
        // ... and on the right.
        while let Some((&s, &e)) = self.runs.range(n..=hi.saturating_add(1)).next() {
            self.runs.remove(&s);
            hi = hi.max(e);
        }
        self.runs.insert(lo, hi);
        self.in_use += 1;
        true
    }

    /// Marks an address free; `false` (and no change) if it was not in use.
    pub fn mark_free(&mut self, ip: IpAddr) -> bool {
        if !self.is_used(ip) {
            return false;
        }
        let n = to_u128(ip).1;
        let Some((s, e)) = self.run_containing(n) else {
            return false;
        };
        self.runs.remove(&s);
        if s < n && !self.only_buggy(s, n - 1) {
            self.runs.insert(s, n - 1);
        }
        if n < e && !self.only_buggy(n + 1, e) {
            self.runs.insert(n + 1, e);
        }
        self.in_use -= 1;
        true
    }

    /// The run `(start, end)` containing `n`, if any.
    fn run_containing(&self, n: u128) -> Option<(u128, u128)> {
        self.runs
            .range(..=n)
            .next_back()
            .filter(|(_, e)| **e >= n)
            .map(|(s, e)| (*s, *e))
    }

    fn is_buggy(&self, n: u128) -> bool {
        self.avoid_buggy && ends_in_0_or_255(n)
    }

    /// Whether `s..=e` (at most a few addresses when it matters) holds no used address.
    fn only_buggy(&self, s: u128, e: u128) -> bool {
        // A run fragment longer than two cannot be all buggy (.255 and .0 are the only
        // neighbours that are).
        e - s < 2 && (s..=e).all(|n| self.is_buggy(n))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests may unwrap
mod tests {
    use super::*;

    fn v4(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn capacity_counts_buggy_addresses_exactly() {
        let b = AddressBlock::new(v4("10.0.0.0"), v4("10.0.3.255"), true).unwrap();
        assert_eq!(b.capacity(), 1024 - 8);
        let b = AddressBlock::new(v4("10.0.0.255"), v4("10.0.1.0"), true).unwrap();
        assert_eq!(b.capacity(), 0);
        assert_eq!(b.first_free(), None);
        let b = AddressBlock::new(v4("10.0.0.1"), v4("10.0.0.254"), true).unwrap();
        assert_eq!(b.capacity(), 254);
    }

    #[test]
    fn whole_ipv6_space_is_refused_but_half_is_exact() {
        assert!(
            AddressBlock::new(
                v4("::"),
                v4("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"),
                false
            )
            .is_none()
        );
        let b = AddressBlock::new(
            v4("::"),
            v4("7fff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"),
            false,
        )
        .unwrap();
        assert_eq!(b.capacity(), 1u128 << 127);
    }

    #[test]
    fn buggy_runs_merge_and_split() {
        let mut b = AddressBlock::new(v4("10.0.0.0"), v4("10.0.2.255"), true).unwrap();
        for i in 1..=254 {
            assert!(b.mark_used(v4(&format!("10.0.0.{i}"))));
        }
        assert_eq!(b.first_free(), Some(v4("10.0.1.1")));
        assert!(b.mark_used(v4("10.0.1.1")));
        assert_eq!(b.runs(), 1);
        assert!(b.mark_free(v4("10.0.1.1")));
        assert_eq!(b.first_free(), Some(v4("10.0.1.1")));
        assert!(!b.mark_used(v4("10.0.1.0")));
        assert!(!b.mark_free(v4("10.0.1.2")));
    }
}
