//! IPv6 multicast group membership on an interface.

use crate::cvt;
use std::io;
use std::net::Ipv6Addr;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

/// A socket holding IPv6 multicast memberships; dropping it leaves every group it joined.
/// The kernel sends the MLD reports, so switches that snoop MLD forward the group's traffic.
#[derive(Debug)]
pub struct Ipv6Memberships {
    fd: OwnedFd,
}

impl Ipv6Memberships {
    /// A socket with no membership yet (in the calling thread's namespace).
    pub fn new() -> io::Result<Self> {
        // SAFETY: plain socket(2) call; the result is checked before use.
        let fd =
            cvt(unsafe { libc::socket(libc::AF_INET6, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) })?;
        // SAFETY: `fd` is a fresh descriptor that nothing else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        Ok(Ipv6Memberships { fd })
    }

    /// Joins `group` on interface `ifindex`.
    pub fn join(&self, group: Ipv6Addr, ifindex: u32) -> io::Result<()> {
        self.membership(libc::IPV6_ADD_MEMBERSHIP, group, ifindex)
    }

    /// Leaves `group` on interface `ifindex`.
    pub fn leave(&self, group: Ipv6Addr, ifindex: u32) -> io::Result<()> {
        self.membership(libc::IPV6_DROP_MEMBERSHIP, group, ifindex)
    }

    fn membership(&self, option: libc::c_int, group: Ipv6Addr, ifindex: u32) -> io::Result<()> {
        let mreq = libc::ipv6_mreq {
            ipv6mr_multiaddr: libc::in6_addr {
                s6_addr: group.octets(),
            },
            ipv6mr_interface: ifindex,
        };
        // SAFETY: `mreq` is a valid ipv6_mreq that outlives the call, and its size is passed.
        cvt(unsafe {
            libc::setsockopt(
                self.fd.as_raw_fd(),
                libc::IPPROTO_IPV6,
                option,
                (&raw const mreq).cast(),
                std::mem::size_of::<libc::ipv6_mreq>() as libc::socklen_t,
            )
        })?;
        Ok(())
    }
}
