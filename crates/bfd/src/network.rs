//! The UDP sockets and nothing else (RFC 5881): one receive socket per address family on port
//! 3784 that reports each packet's TTL / hop limit, and one transmit socket per session bound to
//! a source port in 49152-65535, sending with TTL 255.

use nix::sys::socket::{
    ControlMessageOwned, MsgFlags, SockaddrStorage, recvmsg, setsockopt, sockopt,
};
use socket2::{Domain, Protocol, Socket, Type};
use std::io::{self, IoSliceMut};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::os::fd::AsRawFd;
use tokio::io::Interest;
use tokio::net::UdpSocket;

/// The BFD single-hop control port.
pub const CONTROL_PORT: u16 = 3784;
/// Source ports of BFD control packets (RFC 5881 §4).
pub const SOURCE_PORTS: std::ops::RangeInclusive<u16> = 49152..=65535;

/// One received datagram.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Received {
    /// Bytes in the buffer.
    pub len: usize,
    /// The sender.
    pub from: SocketAddr,
    /// The TTL / hop limit the packet arrived with, if the kernel reported it.
    pub ttl: Option<u8>,
}

/// Opens the receive socket of one family on `port` (all addresses), asking the kernel for
/// the TTL (IP_RECVTTL) or hop limit (IPV6_RECVHOPLIMIT) of every packet.
pub fn receive_socket(v6: bool, port: u16) -> io::Result<UdpSocket> {
    let (domain, addr) = if v6 {
        (
            Domain::IPV6,
            SocketAddr::new(IpAddr::V6(Ipv6Addr::UNSPECIFIED), port),
        )
    } else {
        (
            Domain::IPV4,
            SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), port),
        )
    };
    // No SO_REUSEADDR: a second BFD daemon in the namespace must fail here, not share the port.
    let s = Socket::new(domain, Type::DGRAM, Some(Protocol::UDP))?;
    if v6 {
        s.set_only_v6(true)?;
        setsockopt(&s, sockopt::Ipv6RecvHopLimit, &true)?;
    } else {
        setsockopt(&s, sockopt::Ipv4RecvTtl, &true)?;
    }
    s.bind(&addr.into())?;
    s.set_nonblocking(true)?;
    UdpSocket::from_std(s.into())
}

/// Opens a session's transmit socket: TTL / hop limit 255, bound to `local` (or any address of
/// the peer's family) and to the first free source port from `first` on, wrapping within
/// 49152-65535.
pub fn transmit_socket(peer: IpAddr, local: Option<IpAddr>, first: u16) -> io::Result<UdpSocket> {
    let v6 = peer.is_ipv6();
    let s = Socket::new(
        if v6 { Domain::IPV6 } else { Domain::IPV4 },
        Type::DGRAM,
        Some(Protocol::UDP),
    )?;
    if v6 {
        s.set_only_v6(true)?;
        s.set_unicast_hops_v6(255)?;
    } else {
        s.set_ttl_v4(255)?;
    }
    let ip = local.unwrap_or(if v6 {
        IpAddr::V6(Ipv6Addr::UNSPECIFIED)
    } else {
        IpAddr::V4(Ipv4Addr::UNSPECIFIED)
    });
    let span = (SOURCE_PORTS.end() - SOURCE_PORTS.start()) as u32 + 1;
    let start = first.max(*SOURCE_PORTS.start()) - SOURCE_PORTS.start();
    let mut last = io::Error::from(io::ErrorKind::AddrInUse);
    for i in 0..span {
        let port = SOURCE_PORTS.start() + ((start as u32 + i) % span) as u16;
        match s.bind(&SocketAddr::new(ip, port).into()) {
            Ok(()) => {
                s.set_nonblocking(true)?;
                return UdpSocket::from_std(s.into());
            }
            Err(e) if e.kind() == io::ErrorKind::AddrInUse => last = e,
            Err(e) => return Err(e),
        }
    }
    Err(last)
}

/// Receives one datagram with its TTL / hop limit.
pub async fn receive(socket: &UdpSocket, buf: &mut [u8]) -> io::Result<Received> {
    socket
        .async_io(Interest::READABLE, || recv_once(socket, buf))
        .await
}

/// Receives one datagram if one is queued, without waiting (None: none queued).
pub fn try_receive(socket: &UdpSocket, buf: &mut [u8]) -> io::Result<Option<Received>> {
    match recv_once(socket, buf) {
        Ok(r) => Ok(Some(r)),
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(None),
        Err(e) => Err(e),
    }
}

fn recv_once(socket: &UdpSocket, buf: &mut [u8]) -> io::Result<Received> {
    let mut cmsg = nix::cmsg_space!(CInt);
    let mut iov = [IoSliceMut::new(buf)];
    let msg = recvmsg::<SockaddrStorage>(
        socket.as_raw_fd(),
        &mut iov,
        Some(&mut cmsg),
        MsgFlags::MSG_DONTWAIT,
    )
    .map_err(io::Error::from)?;
    let mut ttl = None;
    if let Ok(cmsgs) = msg.cmsgs() {
        for c in cmsgs {
            match c {
                ControlMessageOwned::Ipv4Ttl(t) => ttl = u8::try_from(t).ok(),
                ControlMessageOwned::Ipv6HopLimit(t) => ttl = u8::try_from(t).ok(),
                _ => {}
            }
        }
    }
    let from = msg
        .address
        .and_then(|a| {
            a.as_sockaddr_in()
                .map(|a| SocketAddr::from(*a))
                .or_else(|| a.as_sockaddr_in6().map(|a| SocketAddr::from(*a)))
        })
        .ok_or_else(|| io::Error::other("datagram without a source address"))?;
    let from = match from {
        // An IPv4 sender seen through an IPv6 socket.
        SocketAddr::V6(a) => match a.ip().to_ipv4_mapped() {
            Some(v4) => SocketAddr::new(IpAddr::V4(v4), a.port()),
            None => from,
        },
        v4 => v4,
    };
    Ok(Received {
        len: msg.bytes,
        from,
        ttl,
    })
}

/// `int`, the size of both control messages' payload.
type CInt = i32;

/// Where echoes of a session go out: the peer's MAC and our interface toward it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EchoPath {
    /// The peer's MAC (from the neighbour table).
    pub peer_mac: [u8; 6],
    /// Our interface's MAC.
    pub local_mac: [u8; 6],
    /// Our interface's index.
    pub ifindex: u32,
    /// Our IPv4 address: source and destination of the echoes.
    pub local: Ipv4Addr,
}

/// Finds the [`EchoPath`] to `peer` in the calling thread's network namespace: the peer's
/// complete entry in `/proc/thread-self/net/arp`, its interface's index and MAC, and `local`
/// or else the address the kernel would send from.
pub fn echo_path(peer: Ipv4Addr, local: Option<Ipv4Addr>) -> io::Result<EchoPath> {
    let table = std::fs::read_to_string("/proc/thread-self/net/arp")?;
    let (peer_mac, dev) = crate::echo::arp_lookup(&table, peer).ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::NotFound,
            format!("no complete ARP entry for {peer}"),
        )
    })?;
    let ifindex = nix::net::if_::if_nametoindex(dev.as_str()).map_err(io::Error::from)?;
    let local_mac = nix::ifaddrs::getifaddrs()
        .map_err(io::Error::from)?
        .filter(|i| i.interface_name == dev)
        .find_map(|i| {
            i.address
                .and_then(|a| a.as_link_addr().and_then(|l| l.addr()))
        })
        .ok_or_else(|| io::Error::other(format!("no MAC address on {dev}")))?;
    let local = match local {
        Some(l) => l,
        None => {
            let s = std::net::UdpSocket::bind((Ipv4Addr::UNSPECIFIED, 0))?;
            s.connect((peer, CONTROL_PORT))?;
            match s.local_addr()?.ip() {
                IpAddr::V4(v4) => v4,
                IpAddr::V6(_) => return Err(io::Error::other("no IPv4 source address")),
            }
        }
    };
    Ok(EchoPath {
        peer_mac,
        local_mac,
        ifindex,
        local,
    })
}
