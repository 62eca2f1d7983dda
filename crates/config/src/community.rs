//! BGP communities: `a:b` (standard, 16 bits each) and `large:a:b:c` (large, 32 bits each).

use std::fmt;

/// One BGP community value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum BgpCommunity {
    /// RFC 1997 community, `asn:value` packed into 32 bits.
    Standard(u32),
    /// RFC 8092 large community: global administrator, two local data parts.
    Large(u32, u32, u32),
}

impl fmt::Display for BgpCommunity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Standard(v) => write!(f, "{}:{}", v >> 16, v & 0xffff),
            Self::Large(a, b, c) => write!(f, "large:{a}:{b}:{c}"),
        }
    }
}

/// Whether `text` is meant as a literal community (rather than an alias name).
pub(crate) fn looks_literal(text: &str) -> bool {
    text.contains(':')
}

/// Parses a literal community.
pub fn parse_community(text: &str) -> Result<BgpCommunity, String> {
    if let Some(rest) = text.strip_prefix("large:") {
        let parts: Vec<&str> = rest.split(':').collect();
        if parts.len() != 3 {
            return Err(format!(
                "{text:?} is not a valid large community: expected large:a:b:c"
            ));
        }
        let mut nums = [0u32; 3];
        for (n, p) in nums.iter_mut().zip(&parts) {
            *n = p.parse().map_err(|_| {
                format!("{text:?} is not a valid large community: {p:?} is not a 32-bit number")
            })?;
        }
        return Ok(BgpCommunity::Large(nums[0], nums[1], nums[2]));
    }
    let parts: Vec<&str> = text.split(':').collect();
    if parts.len() != 2 {
        return Err(format!(
            "{text:?} is not a valid community: expected a:b (standard) or large:a:b:c (large)"
        ));
    }
    let mut nums = [0u32; 2];
    for (n, p) in nums.iter_mut().zip(&parts) {
        *n = u32::from(p.parse::<u16>().map_err(|_| {
            format!("{text:?} is not a valid community: {p:?} is not a 16-bit number")
        })?);
    }
    Ok(BgpCommunity::Standard((nums[0] << 16) | nums[1]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_prints() {
        assert_eq!(
            parse_community("65535:65282"),
            Ok(BgpCommunity::Standard(0xffff_ff02))
        );
        assert_eq!(
            parse_community("large:1:2:3"),
            Ok(BgpCommunity::Large(1, 2, 3))
        );
        assert!(parse_community("65536:1").is_err());
        assert!(parse_community("1:2:3").is_err());
        assert!(parse_community("large:1:2").is_err());
        assert!(parse_community("large:1:2:4294967296").is_err());
        assert_eq!(BgpCommunity::Standard(0x0001_0002).to_string(), "1:2");
    }
}
