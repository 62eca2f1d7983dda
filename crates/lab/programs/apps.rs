//! The walkthrough's `registry.cn-hangzhou.aliyuncs.com/nginx-k8s/apps:v1`, which cannot be pulled
//! in the lab: a tiny HTTP server that answers every request with the name of its Pod, the
//! node it runs on (when known) and the address the request arrived at, so a client sees which
//! Pod served it. Built as a static binary by the lab (`src/images.rs`); std only.
//!
//! ```text
//!   GET / ──> "deploy-xiuxian-9ddcfd7db-4dwd2 on node2 at 10.244.2.3\n"
//!   POD_NAME  (downward API) or the hostname (a Pod's hostname is its name)
//!   NODE_NAME (downward API; left out when unset, as in the walkthrough's Deployment)
//!   PORT      (default 80)
//! ```

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::time::Duration;

unsafe extern "C" {
    fn signal(signum: i32, handler: extern "C" fn(i32)) -> usize;
    fn _exit(code: i32) -> !;
}

extern "C" fn stop(_: i32) {
    // SAFETY: _exit is async-signal-safe, and nothing needs flushing.
    unsafe { _exit(0) }
}

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

fn pod_name() -> String {
    env("POD_NAME")
        .or_else(|| env("HOSTNAME"))
        .or_else(|| std::fs::read_to_string("/proc/sys/kernel/hostname").ok())
        .map(|n| n.trim().to_string())
        .unwrap_or_else(|| "unknown".into())
}

fn answer(mut conn: TcpStream, who: &str) {
    let _ = conn.set_read_timeout(Some(Duration::from_secs(5)));
    // Read the request head (up to the blank line); the request itself does not matter.
    let mut head = Vec::new();
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < 16 * 1024 {
        match conn.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => head.extend_from_slice(&buf[..n]),
        }
    }
    let at = conn
        .local_addr()
        .map(|a| a.ip().to_canonical().to_string())
        .unwrap_or_default();
    let body = format!("{who} at {at}\n");
    let response = format!(
        "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = conn.write_all(response.as_bytes());
}

fn main() {
    // As PID 1 of its container the process ignores SIGTERM unless it handles it, and every
    // Pod deletion would wait out the 30 s grace period.
    for signum in [2, 15] {
        // SAFETY: installs a handler that only calls _exit.
        unsafe { signal(signum, stop) };
    }
    let port: u16 = env("PORT").and_then(|p| p.parse().ok()).unwrap_or(80);
    let who = match env("NODE_NAME") {
        Some(node) => format!("{} on {node}", pod_name()),
        None => pod_name(),
    };
    // [::] takes IPv4 too; a Pod whose namespace has IPv6 off gets 0.0.0.0.
    let listener = match TcpListener::bind(("::", port)) {
        Ok(l) => l,
        Err(_) => match TcpListener::bind(("0.0.0.0", port)) {
            Ok(l) => l,
            Err(e) => {
                eprintln!("apps: cannot listen on port {port}: {e}");
                std::process::exit(1);
            }
        },
    };
    println!("apps: {who} listening on port {port}");
    for conn in listener.incoming().flatten() {
        let who = who.clone();
        std::thread::spawn(move || answer(conn, &who));
    }
}
