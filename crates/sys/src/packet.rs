//! Raw `AF_PACKET` sockets bound to one interface, blocking and async (tokio).

use crate::{cvt, cvt_size};
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use tokio::io::Interest;
use tokio::io::unix::AsyncFd;

const ETH_P_ARP: u16 = 0x0806;
const ETH_P_IPV6: u16 = 0x86dd;
const ETH_P_IP: u16 = 0x0800;

/// What a packet socket receives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    /// Every ARP frame.
    Arp,
    /// IPv6 frames carrying ICMPv6 Neighbor Solicitations or Advertisements (a classic BPF
    /// filter in the kernel drops the rest), plus IPv6 frames too short to tell (under 55
    /// bytes), so truncated solicitations can be counted.
    Ndp,
    /// IPv4 frames carrying unfragmented UDP to port 3785, BFD Echo packets (RFC 5881 §4; a
    /// classic BPF filter in the kernel drops the rest). Sent frames are IPv4.
    BfdEcho,
}

impl Protocol {
    fn ethertype(self) -> u16 {
        match self {
            Protocol::Arp => ETH_P_ARP,
            Protocol::Ndp => ETH_P_IPV6,
            Protocol::BfdEcho => ETH_P_IP,
        }
    }

    fn filter(self) -> Option<&'static [libc::sock_filter]> {
        match self {
            Protocol::Arp => None,
            Protocol::Ndp => Some(&NDP_FILTER),
            Protocol::BfdEcho => Some(&BFD_ECHO_FILTER),
        }
    }
}

/// How a received frame was addressed (`sll_pkttype`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PacketType {
    /// To this host's MAC.
    Host,
    /// Broadcast.
    Broadcast,
    /// Multicast.
    Multicast,
    /// To another host (promiscuous mode).
    OtherHost,
    /// Sent by this host (packet sockets see outgoing frames too).
    Outgoing,
    /// Anything else.
    Other(u8),
}

impl From<u8> for PacketType {
    fn from(t: u8) -> Self {
        match t {
            0 => PacketType::Host,
            1 => PacketType::Broadcast,
            2 => PacketType::Multicast,
            3 => PacketType::OtherHost,
            4 => PacketType::Outgoing,
            t => PacketType::Other(t),
        }
    }
}

/// `ld len; jge 55 ? next : accept; ldb [20]; jeq 58 ? next : drop; ldb [54];
/// jeq 135 ? accept : next; jeq 136 ? accept : drop; accept: ret 256K; drop: ret 0`.
/// Offsets: Ethernet 14 + IPv6 next header at 6 = 20; ICMPv6 type at 14 + 40 = 54.
const NDP_FILTER: [libc::sock_filter; 9] = [
    bpf(0x80, 0, 0, 0),       // ld len (BPF_LD|BPF_W|BPF_LEN)
    bpf(0x35, 0, 5, 55),      // jge #55 (BPF_JMP|BPF_JGE|BPF_K)
    bpf(0x30, 0, 0, 20),      // ldb [20] (BPF_LD|BPF_B|BPF_ABS)
    bpf(0x15, 0, 4, 58),      // jeq #58 (BPF_JMP|BPF_JEQ|BPF_K)
    bpf(0x30, 0, 0, 54),      // ldb [54]
    bpf(0x15, 1, 0, 135),     // jeq #135
    bpf(0x15, 0, 1, 136),     // jeq #136
    bpf(0x06, 0, 0, 0x40000), // ret #262144 (BPF_RET|BPF_K)
    bpf(0x06, 0, 0, 0),       // ret #0
];

/// `ldb [23]; jeq 17 ? next : drop; ldh [20]; jset 0x1fff ? drop : next; ldxb 4*([14]&0xf);
/// ldh [x+16]; jeq 3785 ? accept : drop; accept: ret 256K; drop: ret 0`.
/// Offsets: Ethernet 14 + IPv4 protocol at 9 = 23, flags/fragment offset at 6 = 20; the UDP
/// destination port 2 bytes into the UDP header, after the IPv4 header of IHL × 4 bytes.
const BFD_ECHO_FILTER: [libc::sock_filter; 9] = [
    bpf(0x30, 0, 0, 23),      // ldb [23]
    bpf(0x15, 0, 6, 17),      // jeq #17 (UDP)
    bpf(0x28, 0, 0, 20),      // ldh [20] (BPF_LD|BPF_H|BPF_ABS)
    bpf(0x45, 4, 0, 0x1fff),  // jset #0x1fff: a fragment (BPF_JMP|BPF_JSET|BPF_K)
    bpf(0xb1, 0, 0, 14),      // ldxb 4*([14]&0xf) (BPF_LDX|BPF_B|BPF_MSH)
    bpf(0x48, 0, 0, 16),      // ldh [x+16] (BPF_LD|BPF_H|BPF_IND)
    bpf(0x15, 0, 1, 3785),    // jeq #3785
    bpf(0x06, 0, 0, 0x40000), // ret #262144
    bpf(0x06, 0, 0, 0),       // ret #0
];

const fn bpf(code: u16, jt: u8, jf: u8, k: u32) -> libc::sock_filter {
    libc::sock_filter { code, jt, jf, k }
}

/// A raw packet socket bound to one interface; frames include the Ethernet header.
#[derive(Debug)]
pub struct PacketSocket {
    fd: OwnedFd,
    ifindex: u32,
}

impl PacketSocket {
    /// Opens a non-blocking socket on interface `ifindex` receiving `protocol`.
    pub fn open(ifindex: u32, protocol: Protocol) -> io::Result<Self> {
        // Created with protocol 0 (receives nothing) so the filter is in place before the
        // bind below starts delivery: no unfiltered frame slips in between.
        // SAFETY: plain socket(2) call; the result is checked before use.
        let fd = cvt(unsafe {
            libc::socket(
                libc::AF_PACKET,
                libc::SOCK_RAW | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
                0,
            )
        })?;
        // SAFETY: `fd` is a fresh descriptor that nothing else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        if let Some(filter) = protocol.filter() {
            let prog = libc::sock_fprog {
                len: filter.len() as u16,
                filter: filter.as_ptr().cast_mut(),
            };
            // SAFETY: `prog` points at a static filter program; the kernel copies it during
            // the call and never writes through the pointer.
            cvt(unsafe {
                libc::setsockopt(
                    fd.as_raw_fd(),
                    libc::SOL_SOCKET,
                    libc::SO_ATTACH_FILTER,
                    (&raw const prog).cast(),
                    std::mem::size_of::<libc::sock_fprog>() as libc::socklen_t,
                )
            })?;
        }
        // SAFETY: sockaddr_ll is plain old data; all-zero is a valid value.
        let mut addr: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
        addr.sll_family = libc::AF_PACKET as u16;
        addr.sll_protocol = protocol.ethertype().to_be();
        addr.sll_ifindex = ifindex as i32;
        // SAFETY: `addr` is a valid sockaddr_ll and its exact size is passed.
        cvt(unsafe {
            libc::bind(
                fd.as_raw_fd(),
                (&raw const addr).cast(),
                std::mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t,
            )
        })?;
        Ok(PacketSocket { fd, ifindex })
    }

    /// The interface it is bound to.
    pub fn ifindex(&self) -> u32 {
        self.ifindex
    }

    /// Sends one whole Ethernet frame out of the bound interface.
    pub fn send(&self, frame: &[u8]) -> io::Result<usize> {
        // SAFETY: `frame` is valid for reads of its length for the whole call.
        cvt_size(unsafe { libc::send(self.fd.as_raw_fd(), frame.as_ptr().cast(), frame.len(), 0) })
    }

    /// Receives one frame into `buf`: its length (the frame is cut to `buf`'s size if longer)
    /// and how it was addressed. `WouldBlock` when nothing is queued.
    pub fn recv(&self, buf: &mut [u8]) -> io::Result<(usize, PacketType)> {
        // SAFETY: sockaddr_ll is plain old data; all-zero is a valid value.
        let mut from: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
        let mut from_len = std::mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t;
        // SAFETY: `buf` is valid for writes of its length, `from`/`from_len` describe a
        // writable sockaddr_ll; all outlive the call.
        let n = cvt_size(unsafe {
            libc::recvfrom(
                self.fd.as_raw_fd(),
                buf.as_mut_ptr().cast(),
                buf.len(),
                0,
                (&raw mut from).cast(),
                &raw mut from_len,
            )
        })?;
        Ok((n.min(buf.len()), PacketType::from(from.sll_pkttype)))
    }
}

impl AsRawFd for PacketSocket {
    fn as_raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }
}

impl AsFd for PacketSocket {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

/// A [`PacketSocket`] driven by tokio (must be created inside a runtime).
#[derive(Debug)]
pub struct AsyncPacketSocket {
    inner: AsyncFd<PacketSocket>,
}

impl AsyncPacketSocket {
    /// Opens a socket as [`PacketSocket::open`] and registers it with the runtime.
    pub fn open(ifindex: u32, protocol: Protocol) -> io::Result<Self> {
        let socket = PacketSocket::open(ifindex, protocol)?;
        // SAFETY: the AsyncFd owns `socket`, whose OwnedFd stays open and unchanged until the
        // AsyncFd drops it, and `as_raw_fd` always returns that descriptor.
        let inner = unsafe {
            AsyncFd::register_with_interest(socket, Interest::READABLE | Interest::WRITABLE)
        }
        .map_err(io::Error::from)?;
        Ok(AsyncPacketSocket { inner })
    }

    /// The interface it is bound to.
    pub fn ifindex(&self) -> u32 {
        self.inner.get_ref().ifindex()
    }

    /// Waits for and receives one frame.
    pub async fn recv(&self, buf: &mut [u8]) -> io::Result<(usize, PacketType)> {
        loop {
            let mut guard = self.inner.readable().await?;
            match guard.try_io(|s| s.get_ref().recv(buf)) {
                Ok(result) => return result,
                Err(_would_block) => continue,
            }
        }
    }

    /// Sends one frame, waiting if the socket's buffer is full.
    pub async fn send(&self, frame: &[u8]) -> io::Result<usize> {
        loop {
            let mut guard = self.inner.writable().await?;
            match guard.try_io(|s| s.get_ref().send(frame)) {
                Ok(result) => return result,
                Err(_would_block) => continue,
            }
        }
    }
}
