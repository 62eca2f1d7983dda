//! The system calls Layer 2 needs, and the only crate of ironlb with `unsafe` code:
//!
//! ```text
//!   netns::enter_netns        setns(2) for the calling thread (tests, tools)
//!   link::interfaces          RTM_GETLINK dump over rtnetlink: index, name, MAC, flags, master
//!   link::ipv6_link_local     the interface's fe80:: address (/proc/thread-self/net/if_inet6)
//!   packet::PacketSocket      AF_PACKET raw socket on one interface (ARP, or NDP via BPF)
//!   packet::AsyncPacketSocket the same under tokio's AsyncFd
//!   multicast::Ipv6Memberships joining solicited-node groups (IPV6_JOIN_GROUP, so MLD reports
//!                             go out and snooping switches forward the solicitations)
//!   memory::release_free_heap malloc_trim(3): freed heap pages back to the kernel
//! ```
//! Everything here works on the network namespace of the *calling thread*, so a thread that
//! entered a namespace with [`netns::enter_netns`] sees that namespace's interfaces (that is
//! also why interfaces are listed over netlink rather than from `/sys/class/net`, whose view
//! belongs to whoever mounted sysfs). Every `unsafe` block carries a `// SAFETY:` comment.
#![allow(unsafe_code)]

pub mod link;
pub mod md5;
pub mod memory;
pub mod multicast;
pub mod netns;
pub mod packet;

use std::io;

/// `Err(last OS error)` when a libc call returned -1.
fn cvt(ret: libc::c_int) -> io::Result<libc::c_int> {
    if ret == -1 {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret)
    }
}

/// As [`cvt`] for calls returning `ssize_t`.
fn cvt_size(ret: libc::ssize_t) -> io::Result<usize> {
    if ret < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret as usize)
    }
}
