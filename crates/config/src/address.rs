//! Address blocks: parsing `CIDR` / `start-end`, summarising ranges into CIDRs, overlaps.

use ipnet::IpNet;
use ironlb_allocator::AddressRange;
use std::net::IpAddr;

/// A parsed address block as an inclusive interval of one family (v4 numbers fit in u128 too).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Interval {
    pub v6: bool,
    pub start: u128,
    pub end: u128,
}

impl Interval {
    pub fn overlaps(&self, other: &Interval) -> bool {
        self.v6 == other.v6 && self.start <= other.end && other.start <= self.end
    }

    fn bits(&self) -> u32 {
        if self.v6 { 128 } else { 32 }
    }

    /// The shortest prefix length among the CIDRs that exactly cover this interval (MetalLB's
    /// "lowest mask" of a range's summary; for a CIDR, its own prefix length).
    pub fn lowest_mask(&self) -> u8 {
        let bits = self.bits();
        let mut lowest = bits;
        let mut cur = self.start;
        loop {
            // The largest aligned block starting at `cur` that stays within `end`.
            let align = if cur == 0 {
                bits
            } else {
                cur.trailing_zeros().min(bits)
            };
            let span = self.end - cur; // addresses after `cur`
            let fit = if span == u128::MAX {
                128
            } else {
                128 - (span + 1).leading_zeros() - 1
            };
            let size_bits = align.min(fit);
            lowest = lowest.min(bits - size_bits);
            let step = if size_bits >= 128 {
                u128::MAX
            } else {
                (1u128 << size_bits) - 1
            };
            match cur.checked_add(step) {
                Some(last) if last < self.end => cur = last + 1,
                _ => break,
            }
        }
        // `bits - size_bits` is at most 128.
        u8::try_from(lowest).unwrap_or(u8::MAX)
    }
}

fn to_u128(ip: IpAddr) -> u128 {
    match ip {
        IpAddr::V4(v4) => u128::from(u32::from(v4)),
        IpAddr::V6(v6) => u128::from(v6),
    }
}

/// Parses one entry of `spec.addresses` as MetalLB does: a CIDR (host bits allowed and
/// dropped) or `start-end` (spaces around the addresses allowed, one family, start <= end).
pub(crate) fn parse_block(text: &str) -> Result<(AddressRange, Interval), String> {
    if let Some((a, b)) = text.split_once('-') {
        let start: IpAddr = a.trim().parse().map_err(|_| {
            format!(
                "{text:?} is not a valid range: {:?} is not an IP address",
                a.trim()
            )
        })?;
        let end: IpAddr = b.trim().parse().map_err(|_| {
            format!(
                "{text:?} is not a valid range: {:?} is not an IP address",
                b.trim()
            )
        })?;
        if start.is_ipv4() != end.is_ipv4() {
            return Err(format!(
                "{text:?} is not a valid range: {start} and {end} are of different address families"
            ));
        }
        if to_u128(start) > to_u128(end) {
            return Err(format!(
                "{text:?} is not a valid range: the start {start} is after the end {end}"
            ));
        }
        let interval = Interval {
            v6: start.is_ipv6(),
            start: to_u128(start),
            end: to_u128(end),
        };
        return Ok((AddressRange::Range { start, end }, interval));
    }
    let net: IpNet = text.trim().parse().map_err(|_| {
        format!(
            "{text:?} is not a valid CIDR (expected e.g. 10.0.0.0/24) or range (10.0.0.1-10.0.0.9)"
        )
    })?;
    let net = net.trunc();
    let interval = Interval {
        v6: matches!(net, IpNet::V6(_)),
        start: to_u128(net.network()),
        end: to_u128(net.broadcast()),
    };
    Ok((AddressRange::Cidr(net), interval))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lowest(text: &str) -> u8 {
        parse_block(text).map(|(_, i)| i.lowest_mask()).unwrap_or(0)
    }

    #[test]
    fn lowest_mask_of_cidrs_and_ranges() {
        assert_eq!(lowest("10.0.0.0/24"), 24);
        assert_eq!(lowest("10.0.0.1/24"), 24);
        assert_eq!(lowest("10.0.0.0-10.0.0.255"), 24);
        // 10.0.0.1-10.0.0.255 = .1/32 .2/31 .4/30 ... .128/25
        assert_eq!(lowest("10.0.0.1-10.0.0.255"), 25);
        assert_eq!(lowest("10.0.0.150-10.0.0.180"), 28);
        assert_eq!(lowest("0.0.0.0-255.255.255.255"), 0);
        assert_eq!(lowest("::-ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"), 0);
        assert_eq!(lowest("10.0.0.7-10.0.0.7"), 32);
        assert_eq!(lowest("fc00::/124"), 124);
    }
}
