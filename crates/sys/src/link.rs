//! Network interfaces of the calling thread's namespace, over rtnetlink.

use crate::{cvt, cvt_size};
use std::io;
use std::net::Ipv6Addr;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

/// One network interface.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Interface {
    /// Interface index.
    pub index: u32,
    /// Name (`eth0`).
    pub name: String,
    /// Hardware address, when it is a 6-byte (Ethernet) one.
    pub mac: Option<[u8; 6]>,
    /// Administratively up (`IFF_UP`).
    pub up: bool,
    /// Carrier and up (`IFF_RUNNING`).
    pub running: bool,
    /// ARP is off (`IFF_NOARP`).
    pub noarp: bool,
    /// The loopback interface.
    pub loopback: bool,
    /// Supports broadcast (`IFF_BROADCAST`).
    pub broadcast: bool,
    /// The index of the bridge or bond this interface is a port of (`IFLA_MASTER`), if any.
    pub master: Option<u32>,
}

impl Interface {
    /// A port of a bridge or bond: its own address is not where the LAN reaches the node.
    pub fn is_member(&self) -> bool {
        self.master.is_some()
    }
}

const NLMSG_HDR_LEN: usize = 16;
const IFINFOMSG_LEN: usize = 16;
const IFLA_ADDRESS: u16 = 1;
const IFLA_IFNAME: u16 = 3;
const IFLA_MASTER: u16 = 10;

fn align4(n: usize) -> usize {
    (n + 3) & !3
}

/// Every interface of the calling thread's network namespace.
pub fn interfaces() -> io::Result<Vec<Interface>> {
    // SAFETY: plain socket(2) call; the result is checked before use.
    let fd = cvt(unsafe {
        libc::socket(
            libc::AF_NETLINK,
            libc::SOCK_RAW | libc::SOCK_CLOEXEC,
            libc::NETLINK_ROUTE,
        )
    })?;
    // SAFETY: `fd` is a fresh descriptor that nothing else owns.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    let seq: u32 = 1;
    let mut req = [0u8; NLMSG_HDR_LEN + IFINFOMSG_LEN];
    let len = req.len() as u32;
    req[0..4].copy_from_slice(&len.to_ne_bytes());
    req[4..6].copy_from_slice(&libc::RTM_GETLINK.to_ne_bytes());
    let flags = (libc::NLM_F_REQUEST | libc::NLM_F_DUMP) as u16;
    req[6..8].copy_from_slice(&flags.to_ne_bytes());
    req[8..12].copy_from_slice(&seq.to_ne_bytes());
    // ifinfomsg: family AF_UNSPEC, everything else zero.
    // An unconnected, unbound netlink socket sends to the kernel (port 0) and is bound
    // automatically.
    // SAFETY: `req` is valid for reads of its length for the whole call.
    cvt_size(unsafe { libc::send(fd.as_raw_fd(), req.as_ptr().cast(), req.len(), 0) })?;
    let mut out = Vec::new();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        // SAFETY: `buf` is valid for writes of its length for the whole call.
        let n =
            cvt_size(unsafe { libc::recv(fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len(), 0) })?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "netlink closed",
            ));
        }
        if parse_link_messages(&buf[..n], seq, &mut out)? {
            return Ok(out);
        }
    }
}

/// Parses one datagram of the RTM_GETLINK dump; `Ok(true)` at NLMSG_DONE.
fn parse_link_messages(mut data: &[u8], seq: u32, out: &mut Vec<Interface>) -> io::Result<bool> {
    let bad = || io::Error::new(io::ErrorKind::InvalidData, "malformed netlink message");
    while data.len() >= NLMSG_HDR_LEN {
        let len = u32::from_ne_bytes(data[0..4].try_into().map_err(|_| bad())?) as usize;
        let kind = u16::from_ne_bytes([data[4], data[5]]);
        let msg_seq = u32::from_ne_bytes(data[8..12].try_into().map_err(|_| bad())?);
        if len < NLMSG_HDR_LEN || len > data.len() {
            return Err(bad());
        }
        let body = &data[NLMSG_HDR_LEN..len];
        data = data.get(align4(len)..).unwrap_or(&[]);
        if msg_seq != seq {
            continue;
        }
        match kind {
            k if k == libc::NLMSG_DONE as u16 => return Ok(true),
            k if k == libc::NLMSG_ERROR as u16 => {
                let code = body
                    .get(0..4)
                    .map(|b| i32::from_ne_bytes([b[0], b[1], b[2], b[3]]))
                    .ok_or_else(bad)?;
                if code != 0 {
                    return Err(io::Error::from_raw_os_error(-code));
                }
            }
            libc::RTM_NEWLINK => {
                if body.len() < IFINFOMSG_LEN {
                    return Err(bad());
                }
                let index = i32::from_ne_bytes([body[4], body[5], body[6], body[7]]) as u32;
                let flags = u32::from_ne_bytes([body[8], body[9], body[10], body[11]]) as i32;
                let mut iface = Interface {
                    index,
                    name: String::new(),
                    mac: None,
                    up: flags & libc::IFF_UP != 0,
                    running: flags & libc::IFF_RUNNING != 0,
                    noarp: flags & libc::IFF_NOARP != 0,
                    loopback: flags & libc::IFF_LOOPBACK != 0,
                    broadcast: flags & libc::IFF_BROADCAST != 0,
                    master: None,
                };
                let mut attrs = &body[IFINFOMSG_LEN..];
                while attrs.len() >= 4 {
                    let alen = usize::from(u16::from_ne_bytes([attrs[0], attrs[1]]));
                    let atype = u16::from_ne_bytes([attrs[2], attrs[3]]) & 0x3fff;
                    if alen < 4 || alen > attrs.len() {
                        return Err(bad());
                    }
                    let value = &attrs[4..alen];
                    match atype {
                        IFLA_IFNAME => {
                            let end = value.iter().position(|&b| b == 0).unwrap_or(value.len());
                            iface.name = String::from_utf8_lossy(&value[..end]).into_owned();
                        }
                        IFLA_ADDRESS => {
                            if let Ok(mac) = <[u8; 6]>::try_from(value) {
                                iface.mac = Some(mac);
                            }
                        }
                        IFLA_MASTER => {
                            if let Ok(b) = <[u8; 4]>::try_from(value) {
                                iface.master = Some(u32::from_ne_bytes(b));
                            }
                        }
                        _ => {}
                    }
                    attrs = attrs.get(align4(alen)..).unwrap_or(&[]);
                }
                out.push(iface);
            }
            _ => {}
        }
    }
    Ok(false)
}

/// The link-local IPv6 address of interface `ifindex` in the calling thread's namespace, if
/// it has one (read from `/proc/thread-self/net/if_inet6`, which follows the thread's
/// namespace).
pub fn ipv6_link_local(ifindex: u32) -> io::Result<Option<Ipv6Addr>> {
    let text = std::fs::read_to_string("/proc/thread-self/net/if_inet6")?;
    Ok(parse_if_inet6(&text, ifindex))
}

fn parse_if_inet6(text: &str, ifindex: u32) -> Option<Ipv6Addr> {
    text.lines().find_map(|line| {
        let mut f = line.split_whitespace();
        let addr = f.next()?;
        let index = u32::from_str_radix(f.next()?, 16).ok()?;
        let _prefix = f.next()?;
        let scope = u32::from_str_radix(f.next()?, 16).ok()?;
        if index != ifindex || scope != 0x20 || addr.len() != 32 {
            return None;
        }
        let mut octets = [0u8; 16];
        for (i, o) in octets.iter_mut().enumerate() {
            *o = u8::from_str_radix(addr.get(2 * i..2 * i + 2)?, 16).ok()?;
        }
        Some(Ipv6Addr::from(octets))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn if_inet6_lines_give_the_link_local_address() {
        let text = "fd100000000000000000000000000231 02 40 00 80 eth0\n\
                    fe80000000000000001b00fffe0000e7 02 40 20 80 eth0\n\
                    fe800000000000000000000000000001 03 40 20 80 mgmt0\n";
        assert_eq!(
            parse_if_inet6(text, 2),
            Some("fe80::1b:ff:fe00:e7".parse().expect("addr"))
        );
        assert_eq!(parse_if_inet6(text, 7), None);
    }

    #[test]
    fn loopback_is_listed_with_its_flags() {
        let all = interfaces().expect("netlink dump");
        let lo = all.iter().find(|i| i.name == "lo").expect("lo exists");
        assert!(lo.loopback);
        assert_eq!(lo.index, 1);
    }
}
