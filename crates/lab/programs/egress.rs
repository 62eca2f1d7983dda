//! The API server's way into the lab: an HTTP CONNECT proxy on a Unix socket, run inside a
//! node's network namespace. The API server (on the host) reaches kubelets (logs, exec),
//! webhooks behind Services and aggregated APIs through it, as its egress selector's `cluster`
//! network, so none of those connections is ever routed by the host: lab addresses exist only
//! inside the lab's namespaces. Built as a static binary by the lab (`src/images.rs`); std only.
//!
//! ```text
//!   kube-apiserver ──uds <lab>/egress.sock── CONNECT 10.0.0.232:10250 ──> egress (node1 netns)
//!                                                   ──TCP──> kubelet of node2 over the LAN
//!   usage: egress <socket> <allowed CIDR>...   (anything else is refused: 403)
//! ```

use std::io::{Read, Write};
use std::net::{IpAddr, SocketAddr, TcpStream};
use std::os::unix::net::{UnixListener, UnixStream};
use std::time::Duration;

/// A CIDR as (network, prefix length).
type Cidr = (IpAddr, u8);

fn parse_cidr(s: &str) -> Option<Cidr> {
    let (ip, len) = s.split_once('/')?;
    let ip: IpAddr = ip.parse().ok()?;
    let len: u8 = len.parse().ok()?;
    let max = if ip.is_ipv4() { 32 } else { 128 };
    (len <= max).then_some((ip, len))
}

fn contains((net, len): Cidr, ip: IpAddr) -> bool {
    let bits = |ip: IpAddr| match ip {
        IpAddr::V4(v4) => (u128::from(u32::from(v4)), 32u32),
        IpAddr::V6(v6) => (u128::from(v6), 128u32),
    };
    let ((n, width), (a, width_a)) = (bits(net), bits(ip.to_canonical()));
    if width != width_a {
        return false;
    }
    let shift = width - u32::from(len);
    let mask = if shift >= 128 { 0 } else { u128::MAX << shift };
    (n & mask) == (a & mask)
}

/// Reads the request head (up to the blank line) one byte at a time, so that nothing the
/// client sends after it is swallowed.
fn read_head(conn: &mut UnixStream) -> Option<String> {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        if head.len() > 8192 || conn.read(&mut byte).ok()? == 0 {
            return None;
        }
        head.push(byte[0]);
    }
    String::from_utf8(head).ok()
}

fn reply(conn: &mut UnixStream, status: &str) {
    let _ = conn.write_all(format!("HTTP/1.1 {status}\r\n\r\n").as_bytes());
}

fn serve(mut client: UnixStream, allowed: &[Cidr]) {
    let _ = client.set_read_timeout(Some(Duration::from_secs(10)));
    let Some(head) = read_head(&mut client) else {
        return;
    };
    let target = head
        .lines()
        .next()
        .and_then(|line| line.strip_prefix("CONNECT "))
        .and_then(|rest| rest.split(' ').next())
        .and_then(|hostport| hostport.parse::<SocketAddr>().ok());
    // Only addresses of the lab: no names (that would need a DNS server outside the lab).
    let Some(target) = target.filter(|t| allowed.iter().any(|c| contains(*c, t.ip()))) else {
        reply(&mut client, "403 Forbidden");
        return;
    };
    let server = match TcpStream::connect_timeout(&target, Duration::from_secs(5)) {
        Ok(s) => s,
        Err(_) => {
            reply(&mut client, "502 Bad Gateway");
            return;
        }
    };
    reply(&mut client, "200 Connection established");
    let _ = client.set_read_timeout(None);
    let (Ok(mut client_r), Ok(mut server_w)) = (client.try_clone(), server.try_clone()) else {
        return;
    };
    let upstream = std::thread::spawn(move || {
        let _ = std::io::copy(&mut client_r, &mut server_w);
        let _ = server_w.shutdown(std::net::Shutdown::Write);
    });
    let (mut server_r, mut client_w) = (server, client);
    let _ = std::io::copy(&mut server_r, &mut client_w);
    let _ = client_w.shutdown(std::net::Shutdown::Write);
    let _ = upstream.join();
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some((socket, cidrs)) = args.split_first() else {
        eprintln!("usage: egress <socket> <allowed CIDR>...");
        std::process::exit(2);
    };
    let allowed: Vec<Cidr> = cidrs.iter().filter_map(|c| parse_cidr(c)).collect();
    if allowed.len() != cidrs.len() {
        eprintln!("egress: not a CIDR among {cidrs:?}");
        std::process::exit(2);
    }
    let _ = std::fs::remove_file(socket);
    let listener = match UnixListener::bind(socket) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("egress: cannot listen on {socket}: {e}");
            std::process::exit(1);
        }
    };
    println!("egress: listening on {socket}, allowing {cidrs:?}");
    let allowed: &'static [Cidr] = Box::leak(allowed.into_boxed_slice());
    for conn in listener.incoming().flatten() {
        std::thread::spawn(move || serve(conn, allowed));
    }
}
